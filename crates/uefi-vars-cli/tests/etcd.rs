//! `uefi-vars serve` and the CLI on etcd stores (README "Running a
//! fleet"), against real etcd members the test starts on loopback ports
//! (uefi_vars_etcd::testing). They fail, not skip, without `etcd`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{kill_process, Pid, Signal};
use uefi_vars::codec::{request, Layout};
use uefi_vars::guid::Guid;
use uefi_vars::name::VarName;
use uefi_vars::pcap::{self, RecordKind};
use uefi_vars::variable::Variable;
use uefi_vars::DeviceStatus;
use uefi_vars_client::{ClientError, RemoteService};
use uefi_vars_etcd::testing::Cluster;
use uefi_vars_etcd::{EtcdOptions, EtcdStore, EtcdUrl};

const IO_TIMEOUT: Duration = Duration::from_secs(30);
const EFI_DEVICE_ERROR: u64 = 0x8000_0000_0000_0007;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data")
        .join(name)
}

fn cli(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_uefi-vars"))
        .args(args)
        .output()
        .unwrap()
}

/// A `uefi-vars serve` child on an etcd store; its log in `dir`.
struct Serve {
    child: Child,
    socket: PathBuf,
    log: PathBuf,
}

impl Serve {
    fn start(dir: &Path, name: &str, url: &str, extra: &[&str]) -> Serve {
        let socket = dir.join(format!("{name}.sock"));
        let log = dir.join(format!("{name}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_uefi-vars"))
            .args(["serve", "--store", url, "--socket"])
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

    fn connect(&mut self) -> RemoteService {
        let deadline = Instant::now() + Duration::from_secs(30);
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
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => {
                    std::thread::sleep(Duration::from_secs(1));
                    let status = self.child.try_wait().unwrap();
                    panic!("connect: {e} (server: {status:?})\n{}", self.log_text())
                }
            }
        }
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
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM, and a clean exit.
    fn stop(mut self) {
        self.signal(Signal::TERM);
        let status = self.wait(Duration::from_secs(20));
        assert_eq!(status.code(), Some(0), "{}", self.log_text());
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = kill_process(Pid::from_child(&self.child), Signal::CONT);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The store as any reader sees it, and who owns it.
fn etcd_store(url: &str) -> (Vec<Variable>, Option<String>) {
    let mut s = EtcdStore::connect(&EtcdUrl::parse(url).unwrap(), EtcdOptions::default()).unwrap();
    let vars = s.load_vars().unwrap();
    (vars, s.current_owner().unwrap())
}

fn decode(path: &Path) -> Vec<Variable> {
    uefi_vars::persist::json::decode(&std::fs::read(path).unwrap()).unwrap()
}

/// Replays a capture through the client; every reply must be QEMU's.
/// Returns (resets, identical replies).
fn replay(client: &mut RemoteService, trace: &Path) -> (usize, usize) {
    let records = pcap::read_file(trace).unwrap();
    let (mut resets, mut identical) = (0, 0);
    let mut last: Option<Option<Vec<u8>>> = None;
    for (i, rec) in records.iter().enumerate() {
        match rec.kind {
            RecordKind::Reset => {
                client.reset().unwrap();
                resets += 1;
            }
            RecordKind::Request => last = Some(client.communicate(&rec.payload).unwrap().reply),
            RecordKind::Reply => {
                let got = last.take().expect("reply without request");
                assert_eq!(
                    got.as_deref(),
                    Some(rec.payload.as_slice()),
                    "{}: reply to record {i} differs",
                    trace.display()
                );
                identical += 1;
            }
            _ => {}
        }
    }
    let replies = records
        .iter()
        .filter(|r| r.kind == RecordKind::Reply)
        .count();
    assert_eq!(identical, replies);
    (resets, identical)
}

#[test]
fn every_boot_capture_through_serve_on_etcd_gives_qemus_replies_and_end_store() {
    let t0 = Instant::now();
    let cluster = Cluster::start(1);
    let dir = tempfile::tempdir().unwrap();
    let legacy = ["--legacy-payload-size", "--legacy-storage-accounting"];
    // (capture, start store, end store, serve flags)
    let cases: [(&str, Option<&str>, &str, &[&str]); 3] = [
        (
            "ovmf-2boots-empty.pcap.gz",
            None,
            "ovmf-2boots-empty.end.json",
            &[],
        ),
        ("fedora-boot-1.pcap.gz", None, "fedora-boot-1.json", &legacy),
        (
            "fedora-boot-2.pcap.gz",
            Some("fedora-boot-1.json"),
            "fedora-boot-2.json",
            &legacy,
        ),
    ];
    for (n, (trace, start, end, flags)) in cases.into_iter().enumerate() {
        let url = cluster.url(&format!("vm{n}"));
        if let Some(start) = start {
            // `convert` from a file into etcd.
            let o = cli(&["convert", data(start).to_str().unwrap(), &url]);
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        }
        let mut srv = Serve::start(dir.path(), &format!("serve{n}"), &url, flags);
        let mut client = srv.connect();
        let status = std::fs::read_to_string(format!("/proc/{}/status", srv.child.id())).unwrap();
        assert!(status.contains("NoNewPrivs:\t1"), "{status}");
        let (resets, identical) = replay(&mut client, &data(trace));
        assert!(identical > 500, "{trace}: {identical} replies");
        assert_eq!(client.take_host_error_count(), 0, "{}", srv.log_text());

        // While the service runs, etcd holds QEMU's end state, and the
        // store is owned.
        let (vars, owner) = etcd_store(&url);
        assert!(
            vars == decode(&data(end)),
            "{trace}: store in etcd differs from {end}"
        );
        assert!(owner.is_some());
        drop(client);
        srv.stop();
        // A clean stop compacts and gives ownership up; `convert` out of
        // etcd gives the end state (byte for byte for QEMU 11's JSON).
        let (vars, owner) = etcd_store(&url);
        assert!(vars == decode(&data(end)));
        assert_eq!(owner, None);
        let out = dir.path().join(format!("out{n}.json"));
        let o = cli(&["convert", &url, out.to_str().unwrap()]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        if n == 0 {
            assert!(std::fs::read(&out).unwrap() == std::fs::read(data(end)).unwrap());
        }
        eprintln!("{trace}: {resets} resets, {identical} identical replies");
    }
    eprintln!("captures through serve on etcd: {:?}", t0.elapsed());
}

fn test_guid() -> Guid {
    "7d1e5f2a-93c4-4b6e-9a0f-3c2b1d4e5f60".parse().unwrap()
}

fn var_name(i: usize) -> VarName {
    VarName::from(format!("EtcdTest{i}").as_str())
}

/// SetVariable NV|BS|RT of `v` under name `i`; the EFI status.
fn set_var(client: &mut RemoteService, i: usize, v: u64) -> Result<u64, ClientError> {
    let req = request::set_variable(
        Layout::X64,
        &test_guid(),
        &var_name(i).to_wire(),
        7,
        &v.to_le_bytes(),
    );
    let resp = client.communicate(&req)?;
    assert_eq!(resp.status, DeviceStatus::Success);
    let reply = resp.reply.unwrap();
    Ok(u64::from_le_bytes(reply[32..40].try_into().unwrap()))
}

/// Values by name index among `vars`.
fn values(vars: &[Variable]) -> BTreeMap<usize, u64> {
    vars.iter()
        .filter(|v| v.guid == test_guid())
        .map(|v| {
            let i = v.name.to_string()["EtcdTest".len()..].parse().unwrap();
            (i, u64::from_le_bytes(v.data[..8].try_into().unwrap()))
        })
        .collect()
}

#[test]
fn a_second_owner_is_refused_and_cli_writes_to_an_owned_store_are_refused() {
    let cluster = Cluster::start(1);
    let dir = tempfile::tempdir().unwrap();
    let url = cluster.url("owned");
    let mut a = Serve::start(dir.path(), "a", &url, &[]);
    let mut client = a.connect();
    assert_eq!(set_var(&mut client, 0, 1).unwrap(), 0);
    let mut b = Serve::start(dir.path(), "b", &url, &[]);
    let status = b.wait(Duration::from_secs(20));
    assert!(!status.success());
    assert!(b.log_text().contains("is owned by"), "{}", b.log_text());
    let o = cli(&["set", "--store", &url, "--hex", "01", "Foo"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(
        err.contains("is owned by") && err.contains("stop the VM first"),
        "{err}"
    );
    // Reading is fine.
    let o = cli(&["list", "--store", &url]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("EtcdTest0"));
    drop(client);
    a.stop();
    // Once the owner stopped, the CLI writes.
    let o = cli(&["set", "--store", &url, "--hex", "01", "Foo"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Split brain and lease expiry: the owner is paused (SIGSTOP) past its
/// lease, a second service takes the store over, the first resumes.
#[test]
fn split_brain_paused_owner_loses_its_lease_and_its_next_write_fails() {
    let cluster = Cluster::start(1);
    let dir = tempfile::tempdir().unwrap();
    let url = cluster.url("split");
    let ttl = ["--etcd-lease-ttl", "2s"];
    let mut a = Serve::start(dir.path(), "a", &url, &ttl);
    let mut ca = a.connect();
    let mut acked: BTreeMap<usize, u64> = BTreeMap::new();
    for i in 0..20 {
        assert_eq!(set_var(&mut ca, i, 100 + i as u64).unwrap(), 0);
        acked.insert(i, 100 + i as u64);
    }
    a.signal(Signal::STOP);
    let paused = Instant::now();
    // B waits (bounded) for A's lease, then owns the store.
    let mut b = Serve::start(
        dir.path(),
        "b",
        &url,
        &["--etcd-lease-ttl", "2s", "--etcd-takeover-wait", "20s"],
    );
    let mut cb = b.connect();
    let took = paused.elapsed();
    assert!(took >= Duration::from_secs(1), "took over after {took:?}");
    for i in 10..30 {
        assert_eq!(set_var(&mut cb, i, 200 + i as u64).unwrap(), 0);
        acked.insert(i, 200 + i as u64);
    }
    // A resumes: its next write fails with EFI_DEVICE_ERROR, never
    // succeeds, and A stops serving.
    a.signal(Signal::CONT);
    let status = set_var(&mut ca, 0, 999);
    assert!(
        matches!(status, Ok(EFI_DEVICE_ERROR)),
        "{status:?}: {}",
        a.log_text()
    );
    let exit = a.wait(Duration::from_secs(20));
    assert!(!exit.success());
    assert!(
        a.log_text().contains("no longer owns the store"),
        "{}",
        a.log_text()
    );
    // B goes on acknowledging; A's refused write is nowhere.
    for i in 30..35 {
        assert_eq!(set_var(&mut cb, i, 300 + i as u64).unwrap(), 0);
        acked.insert(i, 300 + i as u64);
    }
    drop(cb);
    b.stop();
    let (vars, owner) = etcd_store(&url);
    assert_eq!(owner, None);
    assert_eq!(values(&vars), acked);
    eprintln!("B took over {took:?} after A was paused");
}

/// A 3-member cluster loses members (the leader among them) while a
/// guest writes: every acknowledged write survives, the store decodes.
#[test]
fn acknowledged_writes_survive_members_and_leaders_killed_and_restarted() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let mut cluster = Cluster::start(3);
    let dir = tempfile::tempdir().unwrap();
    let url = cluster.url("chaos");
    let mut srv = Serve::start(dir.path(), "serve", &url, &[]);
    let mut client = srv.connect();
    let stop = Arc::new(AtomicBool::new(false));
    let chaos = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut kills = Vec::new();
            let mut round = 0usize;
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(700));
                // Every other round the leader, else the next member.
                let victim = match round % 2 {
                    0 => cluster.leader().unwrap_or(0),
                    _ => round % 3,
                };
                let was_leader = cluster.leader() == Some(victim);
                cluster.kill(victim);
                std::thread::sleep(Duration::from_millis(1200));
                cluster.restart(victim);
                cluster.wait_ready(victim);
                kills.push((victim, was_leader));
                round += 1;
            }
            (cluster, kills)
        })
    };
    const NAMES: usize = 64;
    const WRITES: u64 = 1500;
    let t0 = Instant::now();
    let mut acked: BTreeMap<usize, u64> = BTreeMap::new();
    let mut failed: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
    let mut latencies = Vec::new();
    let mut k = 0u64;
    while k < WRITES && t0.elapsed() < Duration::from_secs(40) {
        let i = (k as usize) % NAMES;
        let t = Instant::now();
        match set_var(&mut client, i, k).unwrap() {
            0 => {
                acked.insert(i, k);
            }
            EFI_DEVICE_ERROR => failed.entry(i).or_default().push(k),
            s => panic!("SetVariable: status {s:#x}"),
        }
        latencies.push(t.elapsed());
        k += 1;
    }
    stop.store(true, Ordering::SeqCst);
    let (cluster, kills) = chaos.join().unwrap();
    let leaders = kills.iter().filter(|(_, l)| *l).count();
    assert!(k >= 1000, "only {k} writes in {:?}", t0.elapsed());
    assert!(leaders >= 1 && kills.len() >= 3, "kills {kills:?}");
    drop(client);
    srv.stop();
    let (vars, owner) = etcd_store(&cluster.url("chaos"));
    assert_eq!(owner, None);
    let stored = values(&vars);
    for (i, want) in &acked {
        let got = stored.get(i).copied();
        // The last acknowledged value, or a later write whose answer was
        // an error (it may have been made durable: never reported lost).
        let later_failed = failed
            .get(i)
            .is_some_and(|f| got.is_some_and(|g| g > *want && f.contains(&g)));
        assert!(
            got == Some(*want) || later_failed,
            "name {i}: acknowledged {want}, stored {got:?}"
        );
    }
    latencies.sort();
    let failures: usize = failed.values().map(Vec::len).sum();
    eprintln!(
        "{k} writes in {:?} ({failures} failed), {} member kills ({leaders} leaders); \
         latency p50 {:?} p99 {:?} max {:?}",
        t0.elapsed(),
        kills.len(),
        latencies[latencies.len() / 2],
        latencies[latencies.len() * 99 / 100],
        latencies[latencies.len() - 1]
    );
}

/// TLS with client certificates, as etcd users run it: serve with
/// --etcd-cacert/--etcd-cert/--etcd-key, the CLI with the URL's query;
/// without the client certificate the members refuse.
#[test]
fn tls_with_client_certificates_through_options_and_the_url_query() {
    use uefi_vars_etcd::testing::TestTls;
    let pki = tempfile::tempdir().unwrap();
    let tls = TestTls::generate(pki.path());
    let cluster = Cluster::start_tls(1, tls.clone());
    let dir = tempfile::tempdir().unwrap();
    let url = cluster.url("tls");
    let (ca, cert, key) = (
        tls.ca.to_str().unwrap(),
        tls.client_cert.to_str().unwrap(),
        tls.client_key.to_str().unwrap(),
    );
    let flags = ["--etcd-cacert", ca, "--etcd-cert", cert, "--etcd-key", key];
    let mut srv = Serve::start(dir.path(), "tls", &url, &flags);
    let mut client = srv.connect();
    assert_eq!(set_var(&mut client, 1, 42).unwrap(), 0);
    drop(client);
    srv.stop();
    let query = format!("{url}?cacert={ca}&cert={cert}&key={key}");
    let o = cli(&["get", "EtcdTest1", "--store", &query, "--raw"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "2a00000000000000"
    );
    // The CA alone is not enough for these members.
    let o = cli(&["list", "--store", &format!("{url}?cacert={ca}")]);
    assert!(!o.status.success());
}
