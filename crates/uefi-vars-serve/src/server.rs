//! `uefi-vars serve`: one variable service (one store, one VM) on a Unix
//! socket.
//!
//! Start-up opens everything the process will ever need (the store's
//! directory, the listening socket, the capture file, the signal pipe),
//! then applies the [sandbox](crate::sandbox). Connections are served one
//! at a time: while a VMM is connected, any other connection is answered
//! with an ERROR frame (`busy`) and closed. The service state (boot phase,
//! volatile variables, policies) lives as long as the process, across
//! connections; it is created by the first handshake, which fixes the guest
//! word size for the life of the process.
//!
//! Every non-volatile write is durable before its reply is sent, so a
//! reply the VMM received is durable: appended to the store's journal
//! (`STORE.journal`, one fdatasync) by default, or with `--sync
//! full-rewrite` written into the JSON file itself (atomically, unless
//! `--in-place`). SIGTERM or SIGINT: the request being processed (and any
//! other complete request already received) is answered, the journal is
//! folded into the JSON file (which is then complete on its own), the
//! capture is flushed and synced, and the process exits 0.
//!
//! The server never trusts the socket: a malformed, unknown, oversized or
//! truncated frame, or a client that stalls in the middle of a frame, costs
//! that connection only.

use std::io::{self, Read, Write};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use uefi_vars::pcap::{FileSink, PcapWriter};
use uefi_vars::persist::{JsonFile, Storage, SyncMode, WriteMode};
use uefi_vars::service::MAX_BUFFER_SIZE;
use uefi_vars::{Config, Service};

use crate::protocol::{
    check_ping, expect_empty, layout_for_bits, ErrorBody, ErrorCode, Frame, FrameDecoder,
    FrameType, Hello, MmRequest, MmResponseBody, ResetDone, Welcome, MAGIC, PROTOCOL_VERSION,
};
use crate::sandbox::{self, SandboxReport};

/// How long a client may take to complete a frame it has started.
const STALL_TIMEOUT: Duration = Duration::from_secs(10);
/// The same bound once shutdown was requested.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// Bound on writing one answer to a client that does not read.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after a failed accept (the connection stays queued).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// How long a second client waits before it is refused: the current
/// connection may be on its way out.
const REFUSE_GRACE: Duration = Duration::from_millis(1000);
/// Bound on telling a second client that the service is busy.
const REFUSE_TIMEOUT: Duration = Duration::from_millis(500);

/// What `uefi-vars serve` was asked to do.
#[derive(Clone, Debug)]
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
}

/// A start-up or fatal run-time failure.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    Setup(String),
    #[error(transparent)]
    Sandbox(#[from] sandbox::SandboxError),
    #[error("poll: {0}")]
    Poll(io::Error),
}

fn setup(what: impl std::fmt::Display, e: impl std::fmt::Display) -> ServeError {
    ServeError::Setup(format!("{what}: {e}"))
}

/// Writes a line to the service log (standard error). A log that cannot
/// be written (closed pipe) is ignored rather than fatal.
pub fn log(msg: impl std::fmt::Display) {
    let _ = writeln!(
        io::stderr().lock(),
        "uefi-vars serve[{}]: {msg}",
        std::process::id()
    );
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
    writable: Vec<PathBuf>,
    connections: u64,
    /// Held (flock) for the life of the process.
    _lock: std::fs::File,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("opts", &self.opts)
            .field("sandbox", &self.sandbox)
            .finish_non_exhaustive()
    }
}

/// Takes the store's lock file (`.NAME.lock` beside it) so that a second
/// service (or a CLI edit) cannot run on the same store. The kernel drops
/// the lock when the process dies, however it dies.
pub fn lock_store(store: &Path) -> Result<std::fs::File, ServeError> {
    let name = store
        .file_name()
        .ok_or_else(|| setup(store.display(), "not a file name"))?;
    let mut lock_name = std::ffi::OsString::from(".");
    lock_name.push(name);
    lock_name.push(".lock");
    let path = store.with_file_name(lock_name);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| setup(path.display(), e))?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(file),
        Err(rustix::io::Errno::WOULDBLOCK) => Err(setup(
            store.display(),
            "the store is in use by another uefi-vars service",
        )),
        Err(e) => Err(setup(format!("{}: lock", path.display()), e)),
    }
}

/// Removes a socket file left by a service that is gone; refuses to touch
/// anything else or a socket someone still listens on.
fn prepare_socket(path: &Path) -> Result<(), ServeError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(setup(path.display(), e)),
    };
    if !meta.file_type().is_socket() {
        return Err(setup(path.display(), "exists and is not a socket"));
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(setup(
            path.display(),
            "another service is listening on this socket",
        )),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => std::fs::remove_file(path)
            .map_err(|e| setup(format!("{}: remove stale socket", path.display()), e)),
        Err(e) => Err(setup(path.display(), e)),
    }
}

impl Server {
    /// Everything before serving: check the store, bind the socket, open
    /// the capture, install the signal handlers, apply the sandbox.
    pub fn start(opts: ServeOptions) -> Result<Self, ServeError> {
        let writable = sandbox::store_dirs(&opts.store).map_err(|e| {
            setup(
                format!("{}: store directory", opts.store.display()),
                format!("{e} (the directory must exist)"),
            )
        })?;
        let lock = lock_store(&opts.store)?;
        // Refuse a store that cannot be read or parsed before anyone
        // connects; the service itself is created by the first handshake.
        JsonFile::with_mode(&opts.store, opts.write_mode)
            .with_sync(opts.sync)
            .load()
            .map_err(|e| ServeError::Setup(e.to_string()))?;

        prepare_socket(&opts.socket)?;
        let listener = UnixListener::bind(&opts.socket)
            .map_err(|e| setup(format!("{}: bind", opts.socket.display()), e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| setup("listener", e))?;

        let capture = match &opts.pcap {
            Some(path) => Some(
                PcapWriter::create(path)
                    .map_err(|e| setup(path.display(), e))?
                    .flush_each_record(true),
            ),
            None => None,
        };

        // OpenSSL reads its configuration when first used; do it while the
        // filesystem is still reachable.
        openssl::init();

        let term = Arc::new(AtomicBool::new(false));
        let (signal_rx, signal_tx) = UnixStream::pair().map_err(|e| setup("signal pipe", e))?;
        signal_rx
            .set_nonblocking(true)
            .map_err(|e| setup("signal pipe", e))?;
        for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
            signal_hook::flag::register(sig, Arc::clone(&term))
                .map_err(|e| setup("signal handler", e))?;
            let tx = signal_tx.try_clone().map_err(|e| setup("signal pipe", e))?;
            signal_hook::low_level::pipe::register(sig, tx)
                .map_err(|e| setup("signal handler", e))?;
        }
        drop(signal_tx);

        let mut server = Server {
            opts,
            listener,
            signal_rx,
            term,
            service: None,
            capture,
            sandbox: None,
            writable,
            connections: 0,
            _lock: lock,
        };
        if server.opts.sandbox {
            let report = sandbox::apply(&server.writable)?;
            log(&report);
            server.sandbox = Some(report);
        } else {
            log("sandbox disabled (--no-sandbox)");
        }
        Ok(server)
    }

    /// What the sandbox enforces (`None` with `--no-sandbox`).
    pub fn sandbox_report(&self) -> Option<&SandboxReport> {
        self.sandbox.as_ref()
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
        while !self.term.load(Ordering::SeqCst) {
            let mut fds = [
                PollFd::new(&self.listener, PollFlags::IN),
                PollFd::new(&self.signal_rx, PollFlags::IN),
            ];
            match poll(&mut fds, None) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(ServeError::Poll(e.into())),
            }
            let [listener, signal] = fds.map(|f| !f.revents().is_empty());
            if signal {
                self.drain_signals();
                continue;
            }
            if listener {
                match self.listener.accept() {
                    Ok((stream, _)) => self.serve_connection(stream),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => {
                        // E.g. out of descriptors: the connection stays
                        // queued, so do not spin on it.
                        log(format_args!("accept: {e}"));
                        std::thread::sleep(ACCEPT_BACKOFF);
                    }
                }
            }
        }
        self.finish();
        Ok(())
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

    /// Answers a connection that arrives while another is served.
    fn refuse(&mut self) {
        let mut stream = match self.listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) => {
                log(format_args!("accept: {e}"));
                std::thread::sleep(ACCEPT_BACKOFF);
                return;
            }
        };
        log("refused a second client: another VMM is connected");
        let _ = stream.set_nonblocking(false);
        let _ = stream.set_write_timeout(Some(REFUSE_TIMEOUT));
        let frame = ErrorBody::new(
            ErrorCode::Busy,
            "another client is connected to this service (one VMM per store)",
        )
        .encode();
        if let Ok(bytes) = frame.encode() {
            let _ = stream.write_all(&bytes);
        }
        let _ = stream.shutdown(std::net::Shutdown::Write);
    }

    fn serve_connection(&mut self, mut stream: UnixStream) {
        self.connections = self.connections.saturating_add(1);
        let id = self.connections;
        log(format_args!("client {id}: connected"));
        if let Err(e) = stream
            .set_nonblocking(false)
            .and_then(|()| stream.set_write_timeout(Some(WRITE_TIMEOUT)))
        {
            log(format_args!("client {id}: {e}"));
            return;
        }
        let mut conn = Connection {
            id,
            decoder: FrameDecoder::new(),
            max_buffer: None,
        };
        let mut buf = vec![0u8; 64 * 1024];
        let mut frame_started: Option<Instant> = None;
        let mut knock_since: Option<Instant> = None;
        loop {
            // Everything complete that has arrived is answered, in order.
            loop {
                let frame = match conn.decoder.next_frame() {
                    Ok(Some(frame)) => frame,
                    Ok(None) => break,
                    Err(e) => {
                        log(format_args!(
                            "client {id}: protocol error: {e}; closing the connection"
                        ));
                        let _ = send(
                            &mut stream,
                            &ErrorBody::new(ErrorCode::Protocol, e.to_string()).encode(),
                        );
                        return;
                    }
                };
                frame_started = None;
                match self.on_frame(&mut conn, frame) {
                    Ok(answer) => {
                        if let Err(e) = send(&mut stream, &answer) {
                            log(format_args!("client {id}: cannot send the answer: {e}"));
                            return;
                        }
                    }
                    Err(refusal) => {
                        log(format_args!(
                            "client {id}: {}: {}; closing the connection",
                            refusal.code, refusal.message
                        ));
                        let _ = send(&mut stream, &refusal.encode());
                        return;
                    }
                }
            }
            let pending = conn.decoder.pending();
            let terminating = self.term.load(Ordering::SeqCst);
            if terminating && pending == 0 {
                log(format_args!("client {id}: closing for shutdown"));
                let _ = send(
                    &mut stream,
                    &ErrorBody::new(ErrorCode::ShuttingDown, "the service is shutting down")
                        .encode(),
                );
                return;
            }
            // Deadlines: the frame in progress must complete; a client
            // knocking meanwhile is refused once the grace period is over
            // (the current connection may just be closing: its end of
            // stream can lag behind the new connection, e.g. while a
            // forked child still holds the descriptor).
            let frame_deadline = if pending == 0 {
                frame_started = None;
                None
            } else {
                let started = *frame_started.get_or_insert_with(Instant::now);
                let limit = if terminating {
                    SHUTDOWN_GRACE
                } else {
                    STALL_TIMEOUT
                };
                started.checked_add(limit)
            };
            let knock_deadline = knock_since.and_then(|k| k.checked_add(REFUSE_GRACE));
            let now = Instant::now();
            if frame_deadline.is_some_and(|d| d <= now) {
                log(format_args!(
                    "client {id}: stalled with {pending} bytes of an incomplete frame; closing the connection"
                ));
                return;
            }
            if knock_deadline.is_some_and(|d| d <= now) {
                self.refuse();
                knock_since = None;
                continue;
            }
            let timeout = match (frame_deadline, knock_deadline) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
            .map(|d| d.saturating_duration_since(now));
            let timespec = timeout.and_then(|t| Timespec::try_from(t).ok());
            // The listener is watched only until a knock is noticed.
            let watch_listener = knock_since.is_none();
            let mut fds = vec![
                PollFd::new(&stream, PollFlags::IN),
                PollFd::new(&self.signal_rx, PollFlags::IN),
            ];
            if watch_listener {
                fds.push(PollFd::new(&self.listener, PollFlags::IN));
            }
            match poll(&mut fds, timespec.as_ref()) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => {
                    log(format_args!("client {id}: poll: {e}"));
                    return;
                }
            }
            let ready: Vec<bool> = fds.iter().map(|f| !f.revents().is_empty()).collect();
            drop(fds);
            let readable = ready.first().copied().unwrap_or(false);
            let signal = ready.get(1).copied().unwrap_or(false);
            let knocking = ready.get(2).copied().unwrap_or(false);
            if signal {
                self.drain_signals();
            }
            if readable {
                match stream.read(&mut buf) {
                    Ok(0) => {
                        if pending == 0 {
                            log(format_args!("client {id}: disconnected"));
                        } else {
                            log(format_args!(
                                "client {id}: disconnected in the middle of a frame ({pending} bytes received)"
                            ));
                        }
                        return;
                    }
                    Ok(n) => conn.decoder.push(buf.get(..n).unwrap_or_default()),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => {
                        log(format_args!("client {id}: read: {e}"));
                        return;
                    }
                }
            }
            if knocking {
                knock_since = Some(Instant::now());
            }
        }
    }

    /// The answer to one frame, or the ERROR that ends the connection.
    fn on_frame(&mut self, conn: &mut Connection, frame: Frame) -> Result<Frame, ErrorBody> {
        let protocol =
            |e: crate::protocol::ProtocolError| ErrorBody::new(ErrorCode::Protocol, e.to_string());
        let Some(max_buffer) = conn.max_buffer else {
            if frame.kind != FrameType::Hello {
                return Err(ErrorBody::new(
                    ErrorCode::Protocol,
                    format!("expected HELLO, got {:?}", frame.kind),
                ));
            }
            let hello = Hello::decode(&frame.body).map_err(protocol)?;
            let welcome = self.handshake(conn.id, &hello)?;
            conn.max_buffer = Some(welcome.buffer_size);
            return Ok(welcome.encode());
        };
        match frame.kind {
            FrameType::MmRequest => {
                let req = MmRequest::decode(&frame.body, max_buffer).map_err(protocol)?;
                Ok(self.mm_request(conn.id, &req).encode())
            }
            FrameType::Reset => {
                expect_empty("RESET", &frame.body).map_err(protocol)?;
                Ok(self.machine_reset(conn.id).encode())
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

    fn handshake(&mut self, id: u64, hello: &Hello) -> Result<Welcome, ErrorBody> {
        if hello.magic != MAGIC {
            return Err(ErrorBody::new(ErrorCode::BadMagic, "bad HELLO magic"));
        }
        if hello.version == 0 {
            return Err(ErrorBody::new(
                ErrorCode::UnsupportedVersion,
                format!("protocol version 0; this service speaks 1 to {PROTOCOL_VERSION}"),
            ));
        }
        let version = hello.version.min(PROTOCOL_VERSION);
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
            Some(svc) if svc.config().layout != layout => {
                return Err(ErrorBody::new(
                    ErrorCode::WordSizeMismatch,
                    format!(
                        "this service runs for a {}-bit guest; restart it for a {}-bit one",
                        crate::protocol::word_bits(svc.config().layout),
                        hello.word_bits
                    ),
                ));
            }
            Some(_) => {}
            None => {
                let config = Config {
                    layout,
                    ..self.opts.config.clone()
                };
                let storage = JsonFile::with_mode(&self.opts.store, self.opts.write_mode)
                    .with_sync(self.opts.sync);
                let svc = Service::new(config, Box::new(storage))
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
        svc.set_buffer_size(req.buffer_size);
        let resp = svc.communicate(&req.request);
        let errors = svc.take_errors();
        for e in &errors {
            log(format_args!("client {id}: host error: {e}"));
        }
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
        let result = svc.reset();
        for e in svc.take_errors() {
            log(format_args!("client {id}: host error: {e}"));
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

struct Connection {
    id: u64,
    decoder: FrameDecoder,
    /// Set by the handshake.
    max_buffer: Option<u32>,
}

fn send(stream: &mut UnixStream, frame: &Frame) -> io::Result<()> {
    let bytes = frame
        .encode()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    stream.write_all(&bytes)
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
    let probes = sandbox::self_test(report, store_dir, &outside);
    let ok = probes.iter().all(sandbox::Probe::as_expected);
    lines.extend(probes.iter().map(ToString::to_string));
    Ok((lines, ok))
}
