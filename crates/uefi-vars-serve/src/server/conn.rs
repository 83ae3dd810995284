//! One connection's state machine, and who may connect.
//!
//! ```text
//!   accept ──peer not allowed──▶ refused (ERROR NOT_ALLOWED)
//!     │
//!     ▼
//!  AwaitHello ──no HELLO within --hello-timeout──▶ closed
//!     │ HELLO (valid)
//!     ├── slot free, or its holder Unproven ──▶ Unproven (holder closed)
//!     └── slot held by an Established client ──▶ Waiting
//!  Waiting ──slot freed──▶ Unproven;  ──1 s──▶ refused (ERROR BUSY)
//!  Unproven ──a request answered──▶ Established
//!     └──no request within --idle-timeout──▶ closed
//!  Established: keeps the slot until it leaves (no idle limit: a guest
//!  may not touch its variables for days).
//! ```
//!
//! Only the slot holder (Unproven or Established) is served; candidates
//! (AwaitHello, Waiting) are read only until their HELLO is in, so a
//! squatter that connects first and sends nothing, or sends slowly, costs
//! the legitimate client nothing: its own HELLO makes it the holder.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use uefi_vars_client::protocol::{ErrorBody, Frame, FrameDecoder, Hello};

/// Who may connect: the peer's uid (SO_PEERCRED) in `uids`, or its
/// effective gid in `gids`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AllowList {
    pub uids: Vec<u32>,
    pub gids: Vec<u32>,
}

impl AllowList {
    pub fn new(uids: Vec<u32>, gids: Vec<u32>) -> Self {
        AllowList { uids, gids }
    }

    pub fn allows(&self, peer: &Peer) -> bool {
        self.uids.contains(&peer.uid) || self.gids.contains(&peer.gid)
    }
}

impl std::fmt::Display for AllowList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "uids {:?}, gids {:?}", self.uids, self.gids)
    }
}

/// The connection policy (`--hello-timeout`, `--idle-timeout`,
/// `--allow-uid`, `--allow-gid`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionPolicy {
    /// From accept to a complete HELLO.
    pub hello_timeout: Duration,
    /// From WELCOME to the first answered request.
    pub idle_timeout: Duration,
    /// Empty: the service's own uid only.
    pub allow: AllowList,
}

impl Default for ConnectionPolicy {
    fn default() -> Self {
        ConnectionPolicy {
            hello_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(10),
            allow: AllowList::default(),
        }
    }
}

/// The peer's credentials as the kernel recorded them at connect time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}

impl Peer {
    /// The kernel's record; `pid` is 0 when the peer is outside this
    /// process's pid namespace.
    pub fn of(stream: &UnixStream) -> io::Result<Peer> {
        let c = nix::sys::socket::getsockopt(stream, nix::sys::socket::sockopt::PeerCredentials)
            .map_err(io::Error::from)?;
        Ok(Peer {
            pid: c.pid(),
            uid: c.uid(),
            gid: c.gid(),
        })
    }
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {} uid {} gid {}", self.pid, self.uid, self.gid)
    }
}

/// Where a connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Accepted and allowed; its HELLO is not complete yet.
    AwaitHello,
    /// HELLO received while an established client holds the slot.
    Waiting(Hello),
    /// Holds the slot, WELCOME sent, no request answered yet.
    Unproven,
    /// Holds the slot and has had a request answered.
    Established,
}

pub struct Conn {
    pub id: u64,
    pub stream: UnixStream,
    pub decoder: FrameDecoder,
    pub phase: Phase,
    pub accepted: Instant,
    /// When the current phase began.
    pub since: Instant,
    /// When the first byte of the frame in progress arrived.
    pub frame_started: Option<Instant>,
    /// The negotiated buffer size (once WELCOME was sent).
    pub max_buffer: Option<u32>,
}

/// What reading from a connection gave.
pub enum ReadOutcome {
    Data,
    Nothing,
    Closed,
    Failed(io::Error),
}

impl Conn {
    pub fn new(id: u64, stream: UnixStream) -> Conn {
        let now = Instant::now();
        Conn {
            id,
            stream,
            decoder: FrameDecoder::new(),
            phase: Phase::AwaitHello,
            accepted: now,
            since: now,
            frame_started: None,
            max_buffer: None,
        }
    }

    pub fn enter(&mut self, phase: Phase) {
        self.phase = phase;
        self.since = Instant::now();
    }

    /// One read of what is available into the decoder.
    pub fn read_some(&mut self, buf: &mut [u8]) -> ReadOutcome {
        match self.stream.read(buf) {
            Ok(0) => ReadOutcome::Closed,
            Ok(n) => {
                self.decoder.push(buf.get(..n).unwrap_or_default());
                if self.frame_started.is_none() {
                    self.frame_started = Some(Instant::now());
                }
                ReadOutcome::Data
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
                ) =>
            {
                ReadOutcome::Nothing
            }
            Err(e) => ReadOutcome::Failed(e),
        }
    }

    /// Marks the frame in progress complete (or none in progress).
    pub fn frame_done(&mut self) {
        self.frame_started = (self.decoder.pending() > 0).then(Instant::now);
    }

    /// When this connection must have moved on, given the policy.
    pub fn deadline(&self, policy: &ConnectionPolicy, stall: Duration) -> Option<Instant> {
        let stalled = self.frame_started.and_then(|s| s.checked_add(stall));
        let phase = match self.phase {
            Phase::AwaitHello => self.accepted.checked_add(policy.hello_timeout),
            Phase::Waiting(_) => self.since.checked_add(super::REFUSE_GRACE),
            Phase::Unproven => self.since.checked_add(policy.idle_timeout),
            Phase::Established => None,
        };
        match (stalled, phase) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn send(&mut self, frame: &Frame) -> io::Result<()> {
        let bytes = frame
            .encode()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        self.stream.write_all(&bytes)
    }

    /// Best-effort ERROR frame, then the connection is dropped by the
    /// caller.
    pub fn send_error(&mut self, error: &ErrorBody) {
        let _ = self.send(&error.encode());
        let _ = self.stream.shutdown(std::net::Shutdown::Write);
    }
}
