//! `uefi-vars serve`: one variable service (one store, one VM) on a Unix
//! socket.
//!
//! Start-up opens everything the process will ever need (the store's
//! directory and lock, the listening socket, the capture file, the signal
//! pipe), drops to `--user` (or drops every capability), then applies the
//! sandbox ([`crate::sandbox`]). One client holds the service at a time; the
//! rules for who gets it, and for how long a connection may stay silent,
//! are the state machine in `server/conn.rs` (docs/serve-protocol.md, "Connection
//! policy"). The service state (boot phase, volatile variables, policies)
//! lives as long as the process, across connections; it is created by the
//! first handshake, which fixes the guest word size for the life of the
//! process.
//!
//! Every non-volatile write reaches the store file (atomically, unless
//! `--in-place`) before its reply is sent, so a reply the VMM received is
//! durable. An `etcd://` store ([`crate::remote`]) is owned from start-up
//! (in place of the lock file) and each write is a transaction fenced by
//! that ownership; a write the fence refuses is answered with
//! EFI_DEVICE_ERROR and the service stops ([`ServeError::Fenced`]). SIGTERM or SIGINT: the request being processed (and any other
//! complete request already received) is answered, the capture is flushed
//! and synced, and the process exits 0.
//!
//! The server never trusts the socket: a malformed, unknown, oversized or
//! truncated frame, or a client that stalls in the middle of a frame, costs
//! that connection only.

mod conn;

use std::io::{self, Read};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use uefi_vars::codec::Layout;
use uefi_vars::pcap::{FileSink, PcapWriter};
use uefi_vars::persist::{JsonFile, Storage, SyncMode, WriteMode};
use uefi_vars::service::MAX_BUFFER_SIZE;
use uefi_vars::{Config, Service};

pub use conn::{AllowList, ConnectionPolicy, Peer};
use conn::{Conn, Phase, ReadOutcome};

use crate::files;
use crate::privilege::{self, Account, PrivilegeReport};
use crate::sandbox::{self, SandboxReport};
use uefi_vars_client::protocol::{
    check_ping, expect_empty, layout_for_bits, ErrorBody, ErrorCode, Frame, FrameType, Hello,
    MmRequest, MmResponseBody, ResetDone, Welcome, MAGIC, PROTOCOL_VERSION,
};

/// How long a client may take to complete a frame it has started.
const STALL_TIMEOUT: Duration = Duration::from_secs(10);
/// The same bound once shutdown was requested.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// Bound on writing one answer to a client that does not read.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after a failed accept (the connection stays queued).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// How long a client whose HELLO arrived while an established client holds
/// the service waits before it is refused: the holder may be on its way
/// out (its end of stream can lag behind the new connection, e.g. while a
/// child the VMM forked still holds the descriptor).
const REFUSE_GRACE: Duration = Duration::from_millis(1000);
/// Connections accepted but not yet holding the service. More wait in the
/// listen queue; each candidate leaves within the HELLO deadline.
const MAX_CANDIDATES: usize = 8;
/// Connections taken from the listen queue per wake-up.
const ACCEPT_BATCH: usize = 16;

/// What `uefi-vars serve` was asked to do.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ServeOptions {
    pub store: PathBuf,
    pub socket: PathBuf,
    pub pcap: Option<PathBuf>,
    pub write_mode: WriteMode,
    /// Journal (default) or full rewrite per change.
    pub sync: SyncMode,
    /// Service settings; `layout` is replaced by the guest word size the
    /// first client announces.
    pub config: Config,
    /// Apply the Landlock/seccomp sandbox after start-up.
    pub sandbox: bool,
    /// Deadlines and who may connect.
    pub policy: ConnectionPolicy,
    /// Account to run as after start-up (`--user`/`--group`).
    pub user: Option<Account>,
    /// Group of the socket file (mode 0660 instead of 0600).
    pub socket_group: Option<u32>,
    /// Drop every capability after start-up (and switch to `user` when
    /// given). Off only for a server embedded in a process that must keep
    /// its own (the in-process tests); `user` needs it on.
    pub drop_privileges: bool,
    /// Connection and ownership of an `etcd://` store.
    pub etcd: crate::remote::EtcdSettings,
}

impl ServeOptions {
    /// Options with the defaults of the command line.
    pub fn new(store: PathBuf, socket: PathBuf) -> Self {
        ServeOptions {
            store,
            socket,
            pcap: None,
            write_mode: WriteMode::AtomicReplace,
            sync: SyncMode::Journal,
            config: Config::default(),
            sandbox: true,
            policy: ConnectionPolicy::default(),
            user: None,
            socket_group: None,
            drop_privileges: true,
            etcd: crate::remote::EtcdSettings::default(),
        }
    }
}

/// A start-up or fatal run-time failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    #[error("{0}")]
    Setup(String),
    #[error(transparent)]
    Sandbox(#[from] sandbox::SandboxError),
    #[error(transparent)]
    Privilege(#[from] privilege::PrivilegeError),
    #[error("poll: {0}")]
    Poll(io::Error),
    /// The store's backend was fenced (another service owns the store):
    /// the service stopped serving.
    #[error("stopped serving: {0}")]
    Fenced(String),
}

pub(crate) fn setup(what: impl std::fmt::Display, e: impl std::fmt::Display) -> ServeError {
    ServeError::Setup(format!("{what}: {e}"))
}

/// Writes a line to the service log ([`crate::logging`]; the subscriber
/// ignores a log that cannot be written, e.g. a closed pipe).
pub fn log(msg: impl std::fmt::Display) {
    tracing::info!(target: "uefi_vars_serve", "{msg}");
}

/// The process after start-up, before serving.
pub struct Server {
    opts: ServeOptions,
    listener: UnixListener,
    signal_rx: UnixStream,
    term: Arc<AtomicBool>,
    service: Option<Service>,
    capture: Option<PcapWriter<FileSink>>,
    sandbox: Option<SandboxReport>,
    privileges: Option<PrivilegeReport>,
    writable: Vec<PathBuf>,
    /// TCP ports the sandbox lets the process connect to (etcd members).
    ports: Vec<u16>,
    connections: u64,
    /// The connection the service is serving (Unproven or Established).
    holder: Option<Conn>,
    /// Accepted connections before their HELLO, or waiting for the slot.
    candidates: Vec<Conn>,
    buf: Vec<u8>,
    /// A store opened (and owned) at start-up, handed to the service at
    /// the first handshake: the etcd backend.
    storage: Option<Box<dyn Storage>>,
    /// Set when a write found the store owned by someone else.
    fenced: Option<String>,
    /// Held (flock) for the life of the process; none for an etcd store,
    /// whose ownership key plays that part.
    _lock: Option<std::fs::File>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("opts", &self.opts)
            .field("sandbox", &self.sandbox)
            .finish_non_exhaustive()
    }
}

/// The bound, secured listening socket.
fn bind_socket(opts: &ServeOptions) -> Result<UnixListener, ServeError> {
    files::prepare_socket(&opts.socket)?;
    let owner = opts.user.as_ref().map(|a| (a.uid, a.gid));
    let (listener, mode) = files::bind_socket(&opts.socket, owner, opts.socket_group)?;
    log(format_args!(
        "socket {} mode {mode:04o}",
        opts.socket.display()
    ));
    listener
        .set_nonblocking(true)
        .map_err(|e| setup("listener", e))?;
    Ok(listener)
}

fn open_capture(opts: &ServeOptions) -> Result<Option<PcapWriter<FileSink>>, ServeError> {
    let Some(path) = &opts.pcap else {
        return Ok(None);
    };
    let writer = PcapWriter::create(path)
        .map_err(|e| setup(path.display(), e))?
        .flush_each_record(true);
    if let Some(a) = &opts.user {
        files::chown_nofollow(path, Some(a.uid), Some(a.gid))?;
    }
    Ok(Some(writer))
}

/// SIGTERM/SIGINT set `term` and wake the poll loop through a socket pair.
fn install_signals() -> Result<(UnixStream, Arc<AtomicBool>), ServeError> {
    let term = Arc::new(AtomicBool::new(false));
    let (signal_rx, signal_tx) = UnixStream::pair().map_err(|e| setup("signal pipe", e))?;
    signal_rx
        .set_nonblocking(true)
        .map_err(|e| setup("signal pipe", e))?;
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&term))
            .map_err(|e| setup("signal handler", e))?;
        let tx = signal_tx.try_clone().map_err(|e| setup("signal pipe", e))?;
        signal_hook::low_level::pipe::register(sig, tx).map_err(|e| setup("signal handler", e))?;
    }
    Ok((signal_rx, term))
}

/// `--user` or, without it, the removal of every capability.
fn drop_privileges(opts: &ServeOptions) -> Result<Option<PrivilegeReport>, ServeError> {
    if opts.drop_privileges {
        let report = privilege::drop_privileges(opts.user.as_ref())?;
        log(&report);
        Ok(Some(report))
    } else if opts.user.is_some() {
        Err(ServeError::Setup(
            "--user needs the privilege drop, which is disabled".into(),
        ))
    } else {
        Ok(None)
    }
}

/// After the drop: the account can write the store's directory, and the
/// store (if any) can be read and parsed.
fn check_store(opts: &ServeOptions, writable: &[PathBuf]) -> Result<(), ServeError> {
    use rustix::fs::{access, Access};
    for dir in writable {
        access(dir, Access::WRITE_OK | Access::EXEC_OK).map_err(|e| {
            setup(
                dir.display(),
                format!("the service's account cannot write this directory ({e})"),
            )
        })?;
    }
    // Refuse a store that cannot be read or parsed before anyone
    // connects; the service itself is created by the first handshake.
    JsonFile::with_mode(&opts.store, opts.write_mode)
        .with_sync(opts.sync)
        .load()
        .map_err(|e| ServeError::Setup(e.to_string()))?;
    Ok(())
}

/// Takes the store's lock file (`.NAME.lock` beside it) so that a second
/// service (or a CLI edit) cannot run on the same store.
pub fn lock_store(store: &Path) -> Result<std::fs::File, ServeError> {
    files::lock_store(store, None)
}

impl Server {
    /// Everything before serving: lock the store and clean up after an
    /// earlier run, bind the socket, open the capture, install the signal
    /// handlers, drop privileges, check the store, apply the sandbox.
    ///
    /// Modes are set explicitly; during start-up the umask is 0177 so that
    /// nothing is wider in between (the socket between bind and chmod, the
    /// capture), and the caller's umask is restored before the sandbox
    /// (which does not allow umask(2)).
    pub fn start(opts: ServeOptions) -> Result<Self, ServeError> {
        let umask = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o177));
        let opened = Self::open(opts);
        rustix::process::umask(umask);
        let mut server = opened?;
        if server.opts.sandbox {
            let report = sandbox::apply(&server.writable, &server.ports)?;
            log(&report);
            server.sandbox = Some(report);
        } else {
            log("sandbox disabled (--no-sandbox)");
        }
        Ok(server)
    }

    /// Start-up up to the sandbox.
    fn open(opts: ServeOptions) -> Result<Self, ServeError> {
        let remote = crate::remote::is_remote(&opts.store);
        let writable = if remote {
            Vec::new()
        } else {
            sandbox::store_dirs(&opts.store).map_err(|e| {
                setup(
                    format!("{}: store directory", opts.store.display()),
                    format!("{e} (the directory must exist)"),
                )
            })?
        };
        let owner = opts.user.as_ref().map(|a| (a.uid, a.gid));
        let lock = if remote {
            None
        } else {
            Some(files::lock_store(&opts.store, owner)?)
        };
        let listener = bind_socket(&opts)?;
        let capture = open_capture(&opts)?;
        // OpenSSL reads its configuration when first used; do it while the
        // filesystem is still reachable.
        openssl::init();
        let (signal_rx, term) = install_signals()?;

        let privileges = drop_privileges(&opts)?;
        let (storage, ports) = if remote {
            // After the drop: the client's runtime threads start now and
            // inherit the service's account (rustix drops per thread).
            let opened = crate::remote::open(&opts.store, &opts.etcd)?;
            (Some(opened.storage), opened.ports)
        } else {
            // With the lock held, as the service's account (not as root,
            // in a directory that account may control).
            files::remove_stale_temporaries(&opts.store)?;
            check_store(&opts, &writable)?;
            (None, Vec::new())
        };
        let mut opts = opts;
        if opts.policy.allow.uids.is_empty() && opts.policy.allow.gids.is_empty() {
            let own = rustix::process::geteuid().as_raw();
            opts.policy.allow.uids.push(own);
        }
        log(format_args!(
            "clients allowed: {}; HELLO within {:?}, a first request within {:?}",
            opts.policy.allow, opts.policy.hello_timeout, opts.policy.idle_timeout
        ));
        Ok(Server {
            opts,
            listener,
            signal_rx,
            term,
            service: None,
            capture,
            sandbox: None,
            privileges,
            writable,
            connections: 0,
            holder: None,
            candidates: Vec::new(),
            buf: vec![0u8; 64 * 1024],
            storage,
            fenced: None,
            ports,
            _lock: lock,
        })
    }

    /// What the sandbox enforces (`None` with `--no-sandbox`).
    pub fn sandbox_report(&self) -> Option<&SandboxReport> {
        self.sandbox.as_ref()
    }

    /// The account and capabilities the process runs with.
    pub fn privilege_report(&self) -> Option<&PrivilegeReport> {
        self.privileges.as_ref()
    }

    /// The directories the sandbox leaves writable.
    pub fn writable_dirs(&self) -> &[PathBuf] {
        &self.writable
    }

    /// Serves until SIGTERM/SIGINT, then flushes the capture.
    pub fn run(mut self) -> Result<(), ServeError> {
        log(format_args!(
            "listening on {} (store {}{})",
            self.opts.socket.display(),
            self.opts.store.display(),
            match &self.opts.pcap {
                Some(p) => format!(", capture {}", p.display()),
                None => String::new(),
            }
        ));
        loop {
            if self.term.load(Ordering::SeqCst) {
                self.shed_candidates();
                if self.holder.is_none() {
                    break;
                }
            }
            self.turn()?;
            if let Some(why) = self.fenced.take() {
                // The reply (EFI_DEVICE_ERROR) went out; nothing more is
                // served or written with this view of the store.
                log(format_args!("stopping: {why}"));
                if let Some(capture) = self.capture.take() {
                    let _ = capture.finish();
                }
                return Err(ServeError::Fenced(why));
            }
        }
        self.finish();
        Ok(())
    }

    /// One wait for something to happen, and what follows from it.
    fn turn(&mut self) -> Result<(), ServeError> {
        let ready = self.wait()?;
        if ready.signal {
            self.drain_signals();
        }
        if ready.holder {
            self.read_holder();
        }
        for i in ready.candidates.into_iter().rev() {
            self.read_candidate(i);
        }
        if ready.listener {
            self.accept_new();
        }
        self.expire(Instant::now());
        self.fill_slot();
        self.serve_holder();
        Ok(())
    }

    fn deadline(&self) -> Option<Instant> {
        let stall = self.stall_limit();
        let policy = &self.opts.policy;
        self.holder
            .iter()
            .chain(&self.candidates)
            .filter_map(|c| c.deadline(policy, stall))
            .min()
    }

    /// Polls the signal pipe, the listener (while there is room for a
    /// candidate), the holder and the candidates awaiting their HELLO.
    fn wait(&mut self) -> Result<Ready, ServeError> {
        let timeout = self
            .deadline()
            .map(|d| d.saturating_duration_since(Instant::now()));
        let timespec = timeout.and_then(|t| Timespec::try_from(t).ok());
        let watch_listener =
            !self.term.load(Ordering::SeqCst) && self.candidates.len() < MAX_CANDIDATES;
        let mut fds = vec![PollFd::new(&self.signal_rx, PollFlags::IN)];
        if watch_listener {
            fds.push(PollFd::new(&self.listener, PollFlags::IN));
        }
        if let Some(h) = &self.holder {
            fds.push(PollFd::new(&h.stream, PollFlags::IN));
        }
        let reading: Vec<usize> = (0..self.candidates.len())
            .filter(|&i| {
                self.candidates
                    .get(i)
                    .is_some_and(|c| c.phase == Phase::AwaitHello)
            })
            .collect();
        for &i in &reading {
            if let Some(c) = self.candidates.get(i) {
                fds.push(PollFd::new(&c.stream, PollFlags::IN));
            }
        }
        match poll(&mut fds, timespec.as_ref()) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(ServeError::Poll(e.into())),
        }
        let mut flags = fds.iter().map(|f| !f.revents().is_empty());
        let signal = flags.next().unwrap_or(false);
        let listener = watch_listener && flags.next().unwrap_or(false);
        let holder = self.holder.is_some() && flags.next().unwrap_or(false);
        let candidates = reading
            .into_iter()
            .zip(flags)
            .filter_map(|(i, r)| r.then_some(i))
            .collect();
        Ok(Ready {
            signal,
            listener,
            holder,
            candidates,
        })
    }

    fn drain_signals(&mut self) {
        let mut buf = [0u8; 64];
        while let Ok(n) = self.signal_rx.read(&mut buf) {
            if n == 0 {
                break;
            }
        }
        if self.term.load(Ordering::SeqCst) {
            log("termination requested");
        }
    }

    fn finish(&mut self) {
        if let Some(capture) = self.capture.take() {
            if let Err(e) = capture.finish() {
                log(format_args!("capture: {e}"));
            }
        }
        let compacted = self.service.as_mut().map(Service::compact);
        match compacted {
            Some(Err(e)) => log(format_args!(
                "compacting the store failed ({e}); every acknowledged write is in its journal; exiting"
            )),
            _ => log("store complete; exiting"),
        }
    }

    fn shed_candidates(&mut self) {
        for mut c in self.candidates.drain(..) {
            log(format_args!("client {}: closing for shutdown", c.id));
            c.send_error(&ErrorBody::new(
                ErrorCode::ShuttingDown,
                "the service is shutting down",
            ));
        }
    }

    /// Takes what waits in the listen queue; each connection's peer is
    /// checked before anything is read from it.
    fn accept_new(&mut self) {
        for _ in 0..ACCEPT_BATCH {
            if self.candidates.len() >= MAX_CANDIDATES {
                return;
            }
            match self.listener.accept() {
                Ok((stream, _)) => self.admit(stream),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    // E.g. out of descriptors: the connection stays
                    // queued, so do not spin on it.
                    log(format_args!("accept: {e}"));
                    std::thread::sleep(ACCEPT_BACKOFF);
                    return;
                }
            }
        }
    }

    fn admit(&mut self, stream: UnixStream) {
        self.connections = self.connections.saturating_add(1);
        let id = self.connections;
        let peer = match Peer::of(&stream) {
            Ok(p) => p,
            Err(e) => {
                log(format_args!(
                    "client {id}: refused: no peer credentials ({e})"
                ));
                return;
            }
        };
        let mut conn = Conn::new(id, stream);
        if !self.opts.policy.allow.allows(&peer) {
            log(format_args!(
                "client {id}: refused: peer {peer} is not allowed to connect (allowed: {}; see --allow-uid/--allow-gid)",
                self.opts.policy.allow
            ));
            let _ = conn.stream.set_nonblocking(true);
            conn.send_error(&ErrorBody::new(
                ErrorCode::NotAllowed,
                format!("uid {} gid {} may not use this service", peer.uid, peer.gid),
            ));
            return;
        }
        if let Err(e) = conn.stream.set_nonblocking(true) {
            log(format_args!("client {id}: {e}"));
            return;
        }
        log(format_args!("client {id}: connected ({peer})"));
        self.candidates.push(conn);
    }
}

/// What [`Server::wait`] found ready.
struct Ready {
    signal: bool,
    listener: bool,
    holder: bool,
    /// Indexes into `candidates`, ascending.
    candidates: Vec<usize>,
}

/// The connection state machine's transitions.
impl Server {
    /// Reads a candidate's bytes; a complete HELLO decides its fate.
    fn read_candidate(&mut self, i: usize) {
        let Some(c) = self.candidates.get_mut(i) else {
            return;
        };
        let id = c.id;
        let (outcome, pending) = (c.read_some(&mut self.buf), c.decoder.pending());
        match outcome {
            ReadOutcome::Data => {}
            ReadOutcome::Nothing => return,
            ReadOutcome::Closed => {
                log(disconnect_message(id, pending));
                self.candidates.remove(i);
                return;
            }
            ReadOutcome::Failed(e) => {
                log(format_args!("client {id}: read: {e}"));
                self.candidates.remove(i);
                return;
            }
        }
        let frame = match c.decoder.next_frame() {
            Ok(None) => return,
            Ok(Some(frame)) => frame,
            Err(e) => {
                let e = ErrorBody::new(ErrorCode::Protocol, e.to_string());
                return self.drop_candidate(i, &e);
            }
        };
        c.frame_done();
        match self.hello_of(&frame) {
            Ok(hello) => self.on_hello(i, hello),
            Err(e) => self.drop_candidate(i, &e),
        }
    }

    fn hello_of(&self, frame: &Frame) -> Result<Hello, ErrorBody> {
        if frame.kind != FrameType::Hello {
            return Err(ErrorBody::new(
                ErrorCode::Protocol,
                format!("expected HELLO, got {:?}", frame.kind),
            ));
        }
        let hello = Hello::decode(&frame.body)
            .map_err(|e| ErrorBody::new(ErrorCode::Protocol, e.to_string()))?;
        self.check_hello(&hello)?;
        Ok(hello)
    }

    /// A candidate with a valid HELLO takes a free slot or one held by a
    /// client that has completed no request; otherwise it waits.
    fn on_hello(&mut self, i: usize, hello: Hello) {
        let takes_over = match &self.holder {
            None => true,
            Some(h) => h.phase == Phase::Unproven,
        };
        if !takes_over {
            if let Some(c) = self.candidates.get_mut(i) {
                c.enter(Phase::Waiting(hello));
            }
            return;
        }
        let conn = self.candidates.remove(i);
        if let Some(mut old) = self.holder.take() {
            log(format_args!(
                "client {}: replaced by client {} (it completed no request in {:?})",
                old.id,
                conn.id,
                old.since.elapsed()
            ));
            old.send_error(&ErrorBody::new(
                ErrorCode::Busy,
                "another client took over: this connection had completed no request",
            ));
        }
        self.promote(conn, &hello);
    }

    fn drop_candidate(&mut self, i: usize, error: &ErrorBody) {
        if i < self.candidates.len() {
            let mut c = self.candidates.remove(i);
            log(format_args!(
                "client {}: {}: {}; closing the connection",
                c.id, error.code, error.message
            ));
            c.send_error(error);
        }
    }

    /// Answers the HELLO and makes `conn` the holder.
    fn promote(&mut self, mut conn: Conn, hello: &Hello) {
        let id = conn.id;
        let welcome = match self.handshake(id, hello) {
            Ok(w) => w,
            Err(e) => {
                log(format_args!(
                    "client {id}: {}: {}; closing the connection",
                    e.code, e.message
                ));
                return conn.send_error(&e);
            }
        };
        let ready = conn
            .stream
            .set_nonblocking(false)
            .and_then(|()| conn.stream.set_write_timeout(Some(WRITE_TIMEOUT)))
            .and_then(|()| conn.send(&welcome.encode()));
        if let Err(e) = ready {
            log(format_args!("client {id}: cannot send WELCOME: {e}"));
            return;
        }
        conn.max_buffer = Some(welcome.buffer_size);
        conn.enter(Phase::Unproven);
        self.holder = Some(conn);
    }

    /// The slot is free: the longest-waiting candidate with a HELLO gets it.
    fn fill_slot(&mut self) {
        if self.holder.is_some() || self.term.load(Ordering::SeqCst) {
            return;
        }
        let waiting = self
            .candidates
            .iter()
            .position(|c| matches!(c.phase, Phase::Waiting(_)));
        if let Some(i) = waiting {
            let conn = self.candidates.remove(i);
            if let Phase::Waiting(hello) = conn.phase {
                log(format_args!(
                    "client {}: the service is free again",
                    conn.id
                ));
                self.promote(conn, &hello);
            }
        }
    }

    fn stall_limit(&self) -> Duration {
        if self.term.load(Ordering::SeqCst) {
            SHUTDOWN_GRACE
        } else {
            STALL_TIMEOUT
        }
    }

    /// Closes every connection past its deadline.
    fn expire(&mut self, now: Instant) {
        let (policy, stall) = (self.opts.policy.clone(), self.stall_limit());
        let mut i = 0;
        while let Some(c) = self.candidates.get(i) {
            if c.deadline(&policy, stall).is_none_or(|d| d > now) {
                i = i.saturating_add(1);
                continue;
            }
            let mut c = self.candidates.remove(i);
            let error = if let Phase::Waiting(_) = c.phase {
                log(format_args!(
                    "client {}: refused a second client: another VMM is connected",
                    c.id
                ));
                ErrorBody::new(
                    ErrorCode::Busy,
                    "another client is connected to this service (one VMM per store)",
                )
            } else {
                log(format_args!(
                    "client {}: no HELLO within {:?} of connecting ({} bytes received); closing the connection",
                    c.id,
                    policy.hello_timeout,
                    c.decoder.pending()
                ));
                ErrorBody::new(ErrorCode::Protocol, "no HELLO within the deadline")
            };
            c.send_error(&error);
        }
        let expired = self
            .holder
            .as_ref()
            .is_some_and(|h| h.deadline(&policy, stall).is_some_and(|d| d <= now));
        if let Some(h) = self.holder.take_if(|_| expired) {
            Self::expire_holder(h, &policy);
        }
    }

    fn expire_holder(mut h: Conn, policy: &ConnectionPolicy) {
        let pending = h.decoder.pending();
        if pending > 0 {
            log(format_args!(
                "client {}: stalled with {pending} bytes of an incomplete frame; closing the connection",
                h.id
            ));
        } else {
            log(format_args!(
                "client {}: completed no request within {:?} (--idle-timeout); closing the connection",
                h.id, policy.idle_timeout
            ));
            h.send_error(&ErrorBody::new(
                ErrorCode::Protocol,
                "no request within the idle timeout",
            ));
        }
    }

    fn read_holder(&mut self) {
        let Some(h) = self.holder.as_mut() else {
            return;
        };
        let (id, pending) = (h.id, h.decoder.pending());
        match h.read_some(&mut self.buf) {
            ReadOutcome::Data | ReadOutcome::Nothing => {}
            ReadOutcome::Closed => {
                log(disconnect_message(id, pending));
                self.holder = None;
            }
            ReadOutcome::Failed(e) => {
                log(format_args!("client {id}: read: {e}"));
                self.holder = None;
            }
        }
    }

    /// Answers, in order, every complete frame the holder sent; then, once
    /// shutdown was requested and no frame is in progress, says goodbye.
    fn serve_holder(&mut self) {
        let Some(mut h) = self.holder.take() else {
            return;
        };
        if self.answer_frames(&mut h).is_err() {
            return;
        }
        if self.term.load(Ordering::SeqCst) && h.decoder.pending() == 0 {
            log(format_args!("client {}: closing for shutdown", h.id));
            h.send_error(&ErrorBody::new(
                ErrorCode::ShuttingDown,
                "the service is shutting down",
            ));
            return;
        }
        self.holder = Some(h);
    }

    /// `Err` when the connection has ended.
    fn answer_frames(&mut self, h: &mut Conn) -> Result<(), ()> {
        let id = h.id;
        let max_buffer = h.max_buffer.unwrap_or(MAX_BUFFER_SIZE);
        loop {
            let frame = match h.decoder.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => return Ok(()),
                Err(e) => {
                    log(format_args!(
                        "client {id}: protocol error: {e}; closing the connection"
                    ));
                    h.send_error(&ErrorBody::new(ErrorCode::Protocol, e.to_string()));
                    return Err(());
                }
            };
            h.frame_done();
            match self.on_frame(id, max_buffer, frame) {
                Ok(answer) => {
                    if let Err(e) = h.send(&answer) {
                        log(format_args!("client {id}: cannot send the answer: {e}"));
                        return Err(());
                    }
                    if h.phase == Phase::Unproven {
                        h.enter(Phase::Established);
                    }
                }
                Err(refusal) => {
                    log(format_args!(
                        "client {id}: {}: {}; closing the connection",
                        refusal.code, refusal.message
                    ));
                    h.send_error(&refusal);
                    return Err(());
                }
            }
        }
    }
}

fn disconnect_message(id: u64, pending: usize) -> String {
    if pending == 0 {
        format!("client {id}: disconnected")
    } else {
        format!("client {id}: disconnected in the middle of a frame ({pending} bytes received)")
    }
}

impl Server {
    /// The answer to one frame from the slot holder, or the ERROR that
    /// ends the connection.
    fn on_frame(&mut self, id: u64, max_buffer: u32, frame: Frame) -> Result<Frame, ErrorBody> {
        let protocol = |e: uefi_vars_client::protocol::ProtocolError| {
            ErrorBody::new(ErrorCode::Protocol, e.to_string())
        };
        match frame.kind {
            FrameType::MmRequest => {
                let req = MmRequest::decode(&frame.body, max_buffer).map_err(protocol)?;
                Ok(self.mm_request(id, &req).encode())
            }
            FrameType::Reset => {
                expect_empty("RESET", &frame.body).map_err(protocol)?;
                Ok(self.machine_reset(id).encode())
            }
            FrameType::Ping => {
                check_ping("PING", &frame.body).map_err(protocol)?;
                Ok(Frame::new(FrameType::Pong, frame.body))
            }
            other => Err(ErrorBody::new(
                ErrorCode::Protocol,
                format!("unexpected {other:?} frame after the handshake"),
            )),
        }
    }

    /// The checks of a HELLO that need no service: magic, version, word
    /// size, and the word size of a service already running.
    fn check_hello(&self, hello: &Hello) -> Result<Layout, ErrorBody> {
        if hello.magic != MAGIC {
            return Err(ErrorBody::new(ErrorCode::BadMagic, "bad HELLO magic"));
        }
        if hello.version == 0 {
            return Err(ErrorBody::new(
                ErrorCode::UnsupportedVersion,
                format!("protocol version 0; this service speaks 1 to {PROTOCOL_VERSION}"),
            ));
        }
        let Some(layout) = layout_for_bits(hello.word_bits) else {
            return Err(ErrorBody::new(
                ErrorCode::BadWordSize,
                format!(
                    "guest word size {} bits (32 or 64 expected)",
                    hello.word_bits
                ),
            ));
        };
        match &self.service {
            Some(svc) if svc.config().layout != layout => Err(ErrorBody::new(
                ErrorCode::WordSizeMismatch,
                format!(
                    "this service runs for a {}-bit guest; restart it for a {}-bit one",
                    uefi_vars_client::protocol::word_bits(svc.config().layout),
                    hello.word_bits
                ),
            )),
            _ => Ok(layout),
        }
    }

    /// Answers a valid HELLO: creates the service on the first one.
    fn handshake(&mut self, id: u64, hello: &Hello) -> Result<Welcome, ErrorBody> {
        let layout = self.check_hello(hello)?;
        let version = hello.version.min(PROTOCOL_VERSION);
        match &self.service {
            Some(_) => {}
            None => {
                let config = self.opts.config.clone().with_layout(layout);
                let storage: Box<dyn Storage> = match self.storage.take() {
                    Some(s) => s,
                    None if crate::remote::is_remote(&self.opts.store) => {
                        return Err(ErrorBody::new(
                            ErrorCode::Store,
                            "the store was lost with a failed first handshake; restart the service",
                        ))
                    }
                    None => Box::new(
                        JsonFile::with_mode(&self.opts.store, self.opts.write_mode)
                            .with_sync(self.opts.sync),
                    ),
                };
                let svc = Service::new(config, storage)
                    .map_err(|e| ErrorBody::new(ErrorCode::Store, e.to_string()))?;
                log(format_args!(
                    "service started for a {}-bit guest ({} variables loaded)",
                    hello.word_bits,
                    svc.store().len()
                ));
                self.service = Some(svc);
            }
        }
        let buffer_size = hello.buffer_size.min(MAX_BUFFER_SIZE);
        log(format_args!(
            "client {id}: protocol {version}, {}-bit guest, buffer size {buffer_size}",
            hello.word_bits
        ));
        Ok(Welcome {
            version,
            buffer_size,
            word_bits: hello.word_bits,
        })
    }

    fn mm_request(&mut self, id: u64, req: &MmRequest) -> MmResponseBody {
        let Some(svc) = self.service.as_mut() else {
            // Unreachable: the handshake created the service.
            return MmResponseBody {
                status: uefi_vars::DeviceStatus::ErrUnknown.code(),
                reply: None,
                host_error: true,
            };
        };
        // The library logs each refused write and host error (one line
        // each, uefi_vars::refusal / uefi_vars::host_error); the span names
        // the connection.
        let _client = tracing::info_span!("client", id).entered();
        svc.set_buffer_size(req.buffer_size);
        let resp = svc.communicate(&req.request);
        let errors = svc.take_errors();
        // Host errors are logged by the library as they are recorded.
        self.note_fenced(&errors);
        if let Some(reply) = &resp.reply {
            // QEMU logs only requests that passed the framing checks, and
            // exactly the header plus MessageLength bytes (the reply's
            // length), whatever else a client appended.
            let request = req.request.get(..reply.len()).unwrap_or(&req.request);
            self.capture_with(|c| {
                c.request(request)?;
                c.reply(reply)
            });
        }
        MmResponseBody {
            status: resp.status.code(),
            reply: resp.reply,
            host_error: !errors.is_empty(),
        }
    }

    fn machine_reset(&mut self, id: u64) -> ResetDone {
        let Some(svc) = self.service.as_mut() else {
            return ResetDone {
                error: Some("no service".into()),
            };
        };
        let _client = tracing::info_span!("client", id).entered();
        let result = svc.reset();
        // Host errors are logged by the library as they are recorded.
        let errors = svc.take_errors();
        self.note_fenced(&errors);
        if let Err(uefi_vars::Error::Persist(p)) = &result {
            if p.is_fenced() {
                self.fenced = Some(p.to_string());
            }
        }
        self.capture_with(|c| c.reset());
        match result {
            Ok(()) => ResetDone { error: None },
            Err(e) => {
                log(format_args!("client {id}: machine reset: {e}"));
                ResetDone {
                    error: Some(e.to_string()),
                }
            }
        }
    }

    /// Remembers a fenced write among `errors`: the service stops after
    /// this answer.
    fn note_fenced(&mut self, errors: &[uefi_vars::Error]) {
        for e in errors {
            if let uefi_vars::Error::Persist(p) = e {
                if p.is_fenced() {
                    self.fenced = Some(p.to_string());
                }
            }
        }
    }

    /// Runs a capture call; a failure stops capturing (logged).
    fn capture_with(&mut self, f: impl FnOnce(&mut PcapWriter<FileSink>) -> io::Result<()>) {
        if let Some(capture) = self.capture.as_mut() {
            if let Err(e) = f(capture) {
                log(format_args!("capture failed, capturing stops: {e}"));
                self.capture = None;
            }
        }
    }
}

/// `uefi-vars serve --self-test-sandbox`: the start-up of a real service,
/// then probes of what the sandbox allows. Returns the report lines and
/// whether every probe behaved as the enforced layers require.
pub fn self_test(opts: ServeOptions) -> Result<(Vec<String>, bool), ServeError> {
    let server = Server::start(ServeOptions {
        sandbox: true,
        ..opts
    })?;
    let Some(report) = server.sandbox_report() else {
        return Err(ServeError::Setup("no sandbox report".into()));
    };
    let Some(store_dir) = server.writable_dirs().first() else {
        return Err(ServeError::Setup("no store directory".into()));
    };
    let outside = store_dir
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    let mut lines = vec![report.to_string()];
    if let Some(p) = server.privilege_report() {
        lines.push(p.to_string());
    }
    let allowed: Vec<&str> = sandbox::seccomp::allowlist()
        .iter()
        .map(|a| a.name)
        .collect();
    lines.push(format!("seccomp allowlist: {}", allowed.join(" ")));
    let probes = sandbox::self_test(report, store_dir, &outside);
    let ok = probes.iter().all(sandbox::Probe::as_expected);
    lines.extend(probes.iter().map(ToString::to_string));
    Ok((lines, ok))
}
