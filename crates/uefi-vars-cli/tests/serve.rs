//! `uefi-vars serve` as its own process, driven through the client library
//! (`uefi_vars_serve::RemoteService`) over its Unix socket.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustix::process::{kill_process, Pid, Signal};
use uefi_vars::codec::{request, Layout};
use uefi_vars::guid::Guid;
use uefi_vars::name::VarName;
use uefi_vars::pcap::{self, RecordKind};
use uefi_vars::variable::Variable;
use uefi_vars::DeviceStatus;
use uefi_vars_serve::protocol::{
    read_frame, ErrorBody, ErrorCode, Frame, FrameType, Hello, MmRequest, ReadError, HEADER_LEN,
};
use uefi_vars_serve::{ClientError, RemoteService};

const IO_TIMEOUT: Duration = Duration::from_secs(10);

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data")
        .join(name)
}

/// A `uefi-vars serve` child with its store in `dir/store/` and its log in
/// `dir/serve-N.log`.
struct Serve {
    child: Child,
    socket: PathBuf,
    log: PathBuf,
}

fn store_path(dir: &Path) -> PathBuf {
    dir.join("store").join("vars.json")
}

impl Serve {
    fn start(dir: &Path, extra: &[&str]) -> Serve {
        std::fs::create_dir_all(dir.join("store")).unwrap();
        let socket = dir.join("serve.sock");
        let n = std::fs::read_dir(dir).unwrap().count();
        let log = dir.join(format!("serve-{n}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_uefi-vars"))
            .arg("serve")
            .arg("--store")
            .arg(store_path(dir))
            .arg("--socket")
            .arg(&socket)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Serve { child, socket, log }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Connects once the server listens (a stale socket file from a killed
    /// predecessor refuses connections until the new server has bound).
    fn connect(&mut self) -> RemoteService {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match RemoteService::connect_with_timeout(
                &self.socket,
                65536,
                Layout::X64,
                Some(IO_TIMEOUT),
            ) {
                Ok(c) => return c,
                Err(ClientError::Connect { .. }) if Instant::now() < deadline => {
                    if let Some(status) = self.child.try_wait().unwrap() {
                        panic!("server exited ({status}): {}", self.log_text());
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("connect: {e}\n{}", self.log_text()),
            }
        }
    }

    /// A raw connection, for hand-made frames.
    fn raw(&mut self) -> UnixStream {
        drop(self.connect());
        let s = UnixStream::connect(&self.socket).unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        s
    }

    fn signal(&self, sig: Signal) {
        kill_process(Pid::from_child(&self.child), sig).unwrap();
    }

    fn wait(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("server did not exit in {limit:?}: {}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A small xorshift generator, seeded from the clock (the seed is printed).
struct Rng(u64);

impl Rng {
    fn from_clock(what: &str) -> Rng {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            | 1;
        eprintln!("{what}: seed {seed:#x}");
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn test_guid() -> Guid {
    "5c6a1f4e-0a5b-4d5e-9f3c-1b2a3c4d5e6f".parse().unwrap()
}

const NV_BS_RT: u32 = 7;

fn var_name(i: usize) -> VarName {
    VarName::from(format!("ServeTest{i}").as_str())
}

/// The data written for counter value `v`: the value and some filler.
fn var_data(v: u64) -> Vec<u8> {
    let mut d = v.to_le_bytes().to_vec();
    d.extend(std::iter::repeat_n((v % 251) as u8, 56));
    d
}

fn value_of(data: &[u8]) -> u64 {
    u64::from_le_bytes(data[..8].try_into().unwrap())
}

/// EFI status of a variable-protocol reply (x64 layout).
fn efi_status(reply: &[u8]) -> u64 {
    u64::from_le_bytes(reply[32..40].try_into().unwrap())
}

fn set_var(client: &mut RemoteService, i: usize, v: u64) -> Result<(), ClientError> {
    let req = request::set_variable(
        Layout::X64,
        &test_guid(),
        &var_name(i).to_wire(),
        NV_BS_RT,
        &var_data(v),
    );
    let resp = client.communicate(&req)?;
    assert_eq!(resp.status, DeviceStatus::Success);
    assert_eq!(efi_status(resp.reply.as_deref().unwrap()), 0, "SetVariable");
    Ok(())
}

/// GetVariable: the counter value stored under name `i`, if any.
fn get_var(client: &mut RemoteService, i: usize) -> Option<u64> {
    let name = var_name(i).to_wire();
    let req = request::get_variable(Layout::X64, &test_guid(), &name, 256);
    let resp = client.communicate(&req).unwrap();
    let reply = resp.reply.unwrap();
    match efi_status(&reply) {
        0 => {
            let size = u64::from_le_bytes(reply[56..64].try_into().unwrap()) as usize;
            let at = 76 + name.len();
            Some(value_of(&reply[at..at + size]))
        }
        s => {
            assert_eq!(s, 0x8000_0000_0000_000E, "GetVariable status");
            None
        }
    }
}

/// Counter values by name index in a store file alone (which must parse):
/// what QEMU or virt-fw-vars would see after a clean stop.
fn stored_values(store: &Path) -> BTreeMap<usize, u64> {
    let text = std::fs::read(store).unwrap();
    let vars: Vec<Variable> = uefi_vars::persist::json::decode(&text)
        .unwrap_or_else(|e| panic!("store does not parse: {e}"));
    values_of(&vars)
}

/// Counter values in the store as any reader of it sees them: the JSON file
/// with its journal replayed.
fn loaded_values(store: &Path) -> BTreeMap<usize, u64> {
    use uefi_vars::persist::{JsonFile, Storage};
    let vars = JsonFile::new(store)
        .load()
        .unwrap_or_else(|e| panic!("store does not load: {e}"));
    values_of(&vars)
}

fn values_of(vars: &[Variable]) -> BTreeMap<usize, u64> {
    let mut out = BTreeMap::new();
    for v in vars.iter().filter(|v| v.guid == test_guid()) {
        let i: usize = v
            .name
            .to_string()
            .strip_prefix("ServeTest")
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(v.attributes, NV_BS_RT);
        assert_eq!(v.data, var_data(value_of(&v.data)));
        out.insert(i, value_of(&v.data));
    }
    out
}

/// Reads until the server closes; returns the frames it sent before.
fn drain(stream: &mut UnixStream) -> Vec<Frame> {
    let mut frames = Vec::new();
    loop {
        match read_frame(stream) {
            Ok(f) => frames.push(f),
            Err(ReadError::Closed) => return frames,
            Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return frames
            }
            Err(e) => panic!("while waiting for the server to close: {e}"),
        }
    }
}

fn error_code(frames: &[Frame]) -> Option<ErrorCode> {
    let f = frames.iter().find(|f| f.kind == FrameType::Error)?;
    Some(ErrorBody::decode(&f.body).unwrap().code)
}

fn write_all(stream: &mut UnixStream, bytes: &[u8]) {
    stream.write_all(bytes).unwrap();
}

/// The service process runs with a seccomp filter and no_new_privs.
fn assert_process_confined(srv: &Serve) {
    let status = std::fs::read_to_string(format!("/proc/{}/status", srv.child.id())).unwrap();
    if status.lines().any(|l| l.starts_with("Seccomp:")) && cfg!(target_arch = "x86_64") {
        assert!(status.contains("Seccomp:\t2"), "{status}");
        assert!(status.contains("NoNewPrivs:\t1"), "{status}");
    }
}

#[test]
fn real_trace_through_serve_gives_identical_replies_store_and_capture() {
    let t0 = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("serve.pcap");
    let mut srv = Serve::start(dir.path(), &["--pcap", capture.to_str().unwrap()]);
    let mut client = srv.connect();
    assert_process_confined(&srv);

    let trace = pcap::read_file(&data("ovmf-2boots-empty.pcap.gz")).unwrap();
    let (mut resets, mut identical) = (0, 0);
    let mut last: Option<Option<Vec<u8>>> = None;
    for (i, rec) in trace.iter().enumerate() {
        match rec.kind {
            RecordKind::Reset => {
                client.reset().unwrap();
                resets += 1;
            }
            RecordKind::Request => {
                last = Some(client.communicate(&rec.payload).unwrap().reply);
            }
            RecordKind::Reply => {
                let got = last.take().expect("reply without request");
                assert_eq!(
                    got.as_deref(),
                    Some(rec.payload.as_slice()),
                    "reply to record {i} differs"
                );
                identical += 1;
            }
            RecordKind::Other(_) => {}
        }
    }
    assert_eq!((resets, identical), (2, 1746));
    assert_eq!(client.take_host_error_count(), 0);

    // While the service runs, the store (JSON file and journal) holds
    // QEMU's final variables...
    let end = std::fs::read(data("ovmf-2boots-empty.end.json")).unwrap();
    let loaded = {
        use uefi_vars::persist::{JsonFile, Storage};
        JsonFile::new(store_path(dir.path())).load().unwrap()
    };
    assert!(
        loaded == uefi_vars::persist::json::decode(&end).unwrap(),
        "final store differs from ovmf-2boots-empty.end.json"
    );

    // ...and after a clean stop the JSON file alone is QEMU's, byte for byte.
    drop(client);
    srv.signal(Signal::TERM);
    assert_eq!(srv.wait(Duration::from_secs(10)).code(), Some(0));
    assert!(std::fs::read(store_path(dir.path())).unwrap() == end);

    // The capture holds the same records as QEMU's, in the same order...
    let ours = pcap::read_file(&capture).unwrap();
    assert_eq!(ours.len(), trace.len());
    for (i, (a, b)) in ours.iter().zip(&trace).enumerate() {
        assert_eq!((a.kind, &a.payload), (b.kind, &b.payload), "record {i}");
        assert!(!a.truncated);
    }
    // ...and `uefi-vars replay` accepts it.
    let out = Command::new(env!("CARGO_BIN_EXE_uefi-vars"))
        .arg("replay")
        .arg(&capture)
        .arg("--expect")
        .arg(data("ovmf-2boots-empty.end.json"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("identical:  1746"), "{text}");
    assert!(text.contains("mismatches: 0"), "{text}");
    eprintln!("trace through serve: {:?}", t0.elapsed());
}

#[test]
fn sigkill_mid_stream_leaves_the_last_acknowledged_store() {
    let t0 = Instant::now();
    let mut rng = Rng::from_clock("sigkill");
    let dir = tempfile::tempdir().unwrap();
    let store = store_path(dir.path());
    const NAMES: usize = 6;
    let mut acked: BTreeMap<usize, u64> = BTreeMap::new();
    let mut counter = 0u64;
    // Many kills at random points (issue 6); UEFI_VARS_SIGKILL_ITERATIONS
    // runs it longer locally.
    let iterations: usize = std::env::var("UEFI_VARS_SIGKILL_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    for iteration in 0..iterations {
        let mut srv = Serve::start(dir.path(), &[]);
        let mut client = srv.connect();
        // After the restart the service serves exactly what was acknowledged.
        for i in 0..NAMES {
            assert_eq!(get_var(&mut client, i), acked.get(&i).copied(), "name {i}");
        }

        let delay = Duration::from_millis(10 + rng.below(150));
        let pid = Pid::from_child(&srv.child);
        let killer = std::thread::spawn(move || {
            std::thread::sleep(delay);
            kill_process(pid, Signal::KILL).unwrap();
        });
        let started = Instant::now();
        let mut writes = 0;
        // The write whose answer never came (it may or may not have been
        // written when the process died).
        let in_flight = loop {
            counter += 1;
            let i = rng.below(NAMES as u64) as usize;
            if set_var(&mut client, i, counter).is_err() {
                break (i, counter);
            }
            acked.insert(i, counter);
            writes += 1;
            assert!(started.elapsed() < Duration::from_secs(10), "never killed");
        };
        killer.join().unwrap();
        let status = srv.wait(Duration::from_secs(5));
        assert_eq!(status.signal(), Some(9), "{status}");

        // The store loads and holds every acknowledged write; the one write
        // in flight may or may not have made it.
        let stored = loaded_values(&store);
        for i in 0..NAMES {
            let got = stored.get(&i).copied();
            let want = acked.get(&i).copied();
            let (j, v) = in_flight;
            if j == i && got == Some(v) {
                acked.insert(i, v);
            } else {
                assert_eq!(got, want, "name {i} after SIGKILL (iteration {iteration})");
            }
        }
        eprintln!(
            "iteration {iteration}: killed after {delay:?}, {writes} writes acknowledged, in flight {in_flight:?}"
        );
    }
    // And a last restart serves that state.
    let mut srv = Serve::start(dir.path(), &[]);
    let mut client = srv.connect();
    for i in 0..NAMES {
        assert_eq!(get_var(&mut client, i), acked.get(&i).copied());
    }
    eprintln!("sigkill test: {:?}", t0.elapsed());
}

#[test]
fn sigterm_finishes_the_request_and_exits_zero_with_the_store_intact() {
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("term.pcap");
    let mut srv = Serve::start(dir.path(), &["--pcap", capture.to_str().unwrap()]);
    let mut client = srv.connect();
    client.reset().unwrap();
    let mut acked = BTreeMap::new();
    let pid = Pid::from_child(&srv.child);
    let terminator = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(150));
        kill_process(pid, Signal::TERM).unwrap();
    });
    let started = Instant::now();
    let mut n = 0u64;
    let last_error = loop {
        n += 1;
        let i = (n % 4) as usize;
        match set_var(&mut client, i, n) {
            Ok(()) => {
                acked.insert(i, n);
            }
            Err(e) => break e,
        }
        assert!(started.elapsed() < Duration::from_secs(10));
    };
    terminator.join().unwrap();
    // The service either said it is shutting down or had closed already.
    match &last_error {
        ClientError::Refused { code, .. } => assert_eq!(*code, ErrorCode::ShuttingDown),
        ClientError::Closed | ClientError::Io(_) => {}
        e => panic!("unexpected error {e}"),
    }
    assert_eq!(srv.wait(Duration::from_secs(10)).code(), Some(0));
    // Every acknowledged write, and nothing else: the service answered every
    // request it took.
    assert_eq!(stored_values(&store_path(dir.path())), acked);
    // The capture was flushed: one reset, then a request and a reply per
    // acknowledged write.
    let recs = pcap::read_file(&capture).unwrap();
    let writes = usize::try_from(n - 1).unwrap();
    assert_eq!(recs.len(), 1 + 2 * writes, "{}", srv.log_text());
    assert_eq!(recs[0].kind, RecordKind::Reset);

    // SIGINT on an idle service: the same clean exit.
    let mut srv = Serve::start(dir.path(), &[]);
    drop(srv.connect());
    srv.signal(Signal::INT);
    assert_eq!(srv.wait(Duration::from_secs(10)).code(), Some(0));
    assert_eq!(stored_values(&store_path(dir.path())), acked);
}

#[test]
fn garbage_and_broken_clients_do_not_take_the_server_down() {
    let mut rng = Rng::from_clock("garbage");
    let dir = tempfile::tempdir().unwrap();
    let mut srv = Serve::start(dir.path(), &[]);
    let hello = Hello::new(65536, Layout::X64).encode().encode().unwrap();
    let mut expected = BTreeMap::new();
    let mut round = 0u64;
    let mut check_service = |srv: &mut Serve, what: &str| {
        let mut c = srv.connect();
        c.ping().unwrap_or_else(|e| panic!("after {what}: {e}"));
        round += 1;
        set_var(&mut c, 0, round).unwrap();
        expected.insert(0usize, round);
        assert_eq!(get_var(&mut c, 0), Some(round));
    };
    check_service(&mut srv, "start");

    // Random bytes.
    for _ in 0..5 {
        let mut s = srv.raw();
        let junk: Vec<u8> = (0..1 + rng.below(4000)).map(|_| rng.next() as u8).collect();
        let _ = s.write_all(&junk);
        let _ = s.shutdown(std::net::Shutdown::Write);
        drain(&mut s);
        check_service(&mut srv, "random bytes");
    }

    // A header announcing more than 64 KiB: refused at once.
    let mut s = srv.raw();
    write_all(&mut s, &[0x10, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
    assert_eq!(error_code(&drain(&mut s)), Some(ErrorCode::Protocol));
    check_service(&mut srv, "oversize length");

    // Half a HELLO, then the client goes away.
    let mut s = srv.raw();
    write_all(&mut s, &hello[..HEADER_LEN + 5]);
    drop(s);
    check_service(&mut srv, "half a frame");

    // Disconnect in the middle of an MM request (after the handshake).
    let mut s = srv.raw();
    write_all(&mut s, &hello);
    assert_eq!(read_frame(&mut s).unwrap().kind, FrameType::Welcome);
    let req = request::set_variable(
        Layout::X64,
        &test_guid(),
        &var_name(1).to_wire(),
        NV_BS_RT,
        &var_data(99),
    );
    let frame = MmRequest::encode(65536, &req).encode().unwrap();
    write_all(&mut s, &frame[..frame.len() - 3]);
    drop(s);
    check_service(&mut srv, "disconnect mid-request");

    // Unknown frame type after the handshake.
    let mut s = srv.raw();
    write_all(&mut s, &hello);
    assert_eq!(read_frame(&mut s).unwrap().kind, FrameType::Welcome);
    write_all(&mut s, &[0x77, 0x77, 0, 0, 0, 0, 0, 0]);
    assert_eq!(error_code(&drain(&mut s)), Some(ErrorCode::Protocol));
    check_service(&mut srv, "unknown frame type");

    // An MM request before the handshake; a bad magic; a bad word size.
    let mut s = srv.raw();
    write_all(&mut s, &frame);
    assert_eq!(error_code(&drain(&mut s)), Some(ErrorCode::Protocol));
    let mut bad = hello.clone();
    bad[HEADER_LEN] ^= 0xff;
    let mut s = srv.raw();
    write_all(&mut s, &bad);
    assert_eq!(error_code(&drain(&mut s)), Some(ErrorCode::BadMagic));
    let mut bad = hello.clone();
    bad[HEADER_LEN + 16] = 48;
    let mut s = srv.raw();
    write_all(&mut s, &bad);
    assert_eq!(error_code(&drain(&mut s)), Some(ErrorCode::BadWordSize));
    // A 32-bit guest while the service runs for a 64-bit one.
    match RemoteService::connect(&srv.socket, 65536, Layout::IA32) {
        Err(ClientError::Refused { code, .. }) => assert_eq!(code, ErrorCode::WordSizeMismatch),
        other => panic!("{other:?}"),
    }
    check_service(&mut srv, "handshake errors");

    // A second client while one is connected is refused; the first goes on.
    let mut first = srv.connect();
    match RemoteService::connect_with_timeout(&srv.socket, 65536, Layout::X64, Some(IO_TIMEOUT)) {
        Err(ClientError::Refused { code, message }) => {
            assert_eq!(code, ErrorCode::Busy, "{message}")
        }
        other => panic!("second client: {other:?}"),
    }
    first.ping().unwrap();
    drop(first);
    check_service(&mut srv, "second client");

    // A connection that closes without a byte.
    drop(srv.raw());
    check_service(&mut srv, "empty connection");

    assert!(srv.child.try_wait().unwrap().is_none());
    let log = srv.log_text();
    assert!(log.contains("protocol error"), "{log}");
    assert!(
        log.contains("disconnected in the middle of a frame"),
        "{log}"
    );
    assert!(log.contains("refused a second client"), "{log}");
    srv.signal(Signal::TERM);
    assert_eq!(srv.wait(Duration::from_secs(10)).code(), Some(0));
    assert_eq!(stored_values(&store_path(dir.path())), expected);
}

/// The sandbox of a real `serve` start-up, probed from inside (hidden
/// `--self-test-sandbox`). A layer may be missing only where the kernel
/// truly lacks it.
#[test]
fn sandbox_forbids_files_outside_the_store_network_and_processes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("store")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_uefi-vars"))
        .arg("serve")
        .arg("--store")
        .arg(store_path(dir.path()))
        .arg("--socket")
        .arg(dir.path().join("store").join("sock"))
        .arg("--self-test-sandbox")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!("kernel {}", kernel_release());
    eprintln!("{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "a probe behaved unexpectedly:\n{text}"
    );
    let line = |prefix: &str| -> String {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line {prefix:?} in\n{text}"))
            .to_string()
    };

    // Landlock: enforced unless the kernel really has none.
    if text.contains("landlock: enforced") {
        for probe in [
            "probe create a file outside the store directory: denied (Permission denied",
            "probe read a file outside the store directory (own executable): denied (Permission denied",
            "probe list the root directory: denied (Permission denied",
        ] {
            line(probe);
        }
    } else {
        let reason = line("landlock: not supported by this kernel");
        if let Some(config) = kernel_config() {
            let built_in = config.contains("CONFIG_SECURITY_LANDLOCK=y");
            assert!(
                !(built_in && reason.contains("not built into the kernel")),
                "the kernel has Landlock but the sandbox says otherwise: {reason}"
            );
        }
        assert!(
            std::env::var_os("UEFI_VARS_REQUIRE_LANDLOCK").is_none(),
            "UEFI_VARS_REQUIRE_LANDLOCK is set: {reason}"
        );
    }
    line("probe create, rename and remove a file in the store directory: allowed");
    line("probe start a thread: allowed");

    // seccomp: enforced wherever the kernel has it (all our architectures).
    let kernel_has_seccomp = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Seccomp:"));
    let arch_has_filter = cfg!(any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "riscv64"
    ));
    if kernel_has_seccomp && arch_has_filter {
        line("landlock");
        assert!(text.contains("seccomp: enforced"), "{text}");
        for probe in [
            "probe create an AF_INET socket (UDP, 127.0.0.1): denied (Operation not permitted",
            "probe create an AF_INET6 socket (TCP listener, ::1): denied (Operation not permitted",
            "probe create an AF_UNIX socket pair: denied (Operation not permitted",
            "probe start a process (a script in the store directory): denied (Operation not permitted",
        ] {
            line(probe);
        }
    }
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// The running kernel's build configuration, where it can be read.
fn kernel_config() -> Option<String> {
    if let Ok(c) = std::fs::read_to_string(format!("/boot/config-{}", kernel_release())) {
        return Some(c);
    }
    let out = Command::new("zcat").arg("/proc/config.gz").output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Two services never share a store: the second one refuses to start.
#[test]
fn a_second_service_on_the_same_store_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = Serve::start(dir.path(), &[]);
    drop(first.connect());
    let out = Command::new(env!("CARGO_BIN_EXE_uefi-vars"))
        .arg("serve")
        .arg("--store")
        .arg(store_path(dir.path()))
        .arg("--socket")
        .arg(dir.path().join("other.sock"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("in use by another uefi-vars service"), "{err}");
    // Nor a second one on the same socket.
    let out = Command::new(env!("CARGO_BIN_EXE_uefi-vars"))
        .arg("serve")
        .arg("--store")
        .arg(dir.path().join("store").join("other.json"))
        .arg("--socket")
        .arg(&first.socket)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("another service is listening"), "{err}");
    first.connect().ping().unwrap();
}

/// A frame cut short by the end of the stream: the connection is closed
/// without an answer, the service goes on.
#[test]
fn truncated_frame_then_eof_is_closed_without_answer() {
    let dir = tempfile::tempdir().unwrap();
    let mut srv = Serve::start(dir.path(), &[]);
    let mut s = srv.raw();
    write_all(
        &mut s,
        &[0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0xAA],
    );
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(rest.is_empty(), "{rest:?}");
    assert!(srv.child.try_wait().unwrap().is_none());
    let mut c = srv.connect();
    c.ping().unwrap();
}
