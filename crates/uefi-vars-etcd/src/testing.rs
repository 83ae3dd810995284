//! Test helper (the `testing` feature): etcd members started as real
//! `etcd` processes on loopback ports, data directories in a temporary
//! directory, stopped when the [`Cluster`] is dropped.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One member.
pub struct Member {
    pub name: String,
    pub client_port: u16,
    pub peer_port: u16,
    child: Option<Child>,
}

/// A cluster of `etcd` processes.
pub struct Cluster {
    dir: tempfile::TempDir,
    pub members: Vec<Member>,
    initial: String,
    tls: Option<TestTls>,
}

/// A test PKI made with the `openssl` tool: a CA, the members' server
/// certificate (for 127.0.0.1) and a client certificate.
#[derive(Clone, Debug)]
pub struct TestTls {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("the etcd TLS tests need the openssl tool");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl TestTls {
    /// Makes the PKI in `dir`.
    pub fn generate(dir: &std::path::Path) -> TestTls {
        let new_key = ["-newkey", "rsa:2048", "-nodes", "-days", "2"];
        let ca = [
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-subj",
            "/CN=uefi-vars test CA",
        ];
        openssl(dir, &[&["req", "-x509"][..], &new_key, &ca].concat());
        for (name, usage) in [("server", "serverAuth"), ("client", "clientAuth")] {
            let (k, csr, pem, ext) = (
                format!("{name}.key"),
                format!("{name}.csr"),
                format!("{name}.pem"),
                format!("{name}.ext"),
            );
            std::fs::write(
                dir.join(&ext),
                format!("subjectAltName=IP:127.0.0.1\nextendedKeyUsage={usage}\n"),
            )
            .expect("write the extension file");
            let subject = format!("/CN=uefi-vars test {name}");
            openssl(
                dir,
                &[
                    "req", "-newkey", "rsa:2048", "-nodes", "-keyout", &k, "-out", &csr, "-subj",
                    &subject,
                ],
            );
            openssl(
                dir,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &csr,
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-days",
                    "2",
                    "-out",
                    &pem,
                    "-extfile",
                    &ext,
                ],
            );
        }
        TestTls {
            ca: dir.join("ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client.key"),
        }
    }

    /// etcdctl's options for these files.
    fn etcdctl_args(&self) -> Vec<String> {
        vec![
            format!("--cacert={}", self.ca.display()),
            format!("--cert={}", self.client_cert.display()),
            format!("--key={}", self.client_key.display()),
        ]
    }
}

/// `n` distinct ports nobody listens on now (the kernel's choice; the
/// listeners are held until all are chosen, so none repeats).
fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a loopback port"))
        .collect();
    held.iter()
        .map(|l| l.local_addr().expect("local address").port())
        .collect()
}

/// The `etcd` binary, or a panic that says how to get it (tests fail,
/// never skip, when it is missing).
fn etcd_binary() -> &'static str {
    match Command::new("etcd").arg("--version").output() {
        Ok(o) if o.status.success() => "etcd",
        _ => panic!(
            "the etcd store tests need `etcd` on PATH (Debian: apt-get install etcd-server \
             etcd-client; scripts/test.sh installs them)"
        ),
    }
}

impl Cluster {
    /// Starts `n` members and waits until they answer. A port taken by
    /// another test in between is retried with new ports.
    pub fn start(n: usize) -> Cluster {
        Cluster::start_with(n, None)
    }

    /// Members that speak TLS to clients and require a client certificate
    /// signed by the test CA (`--client-cert-auth`).
    pub fn start_tls(n: usize, tls: TestTls) -> Cluster {
        Cluster::start_with(n, Some(tls))
    }

    fn start_with(n: usize, tls: Option<TestTls>) -> Cluster {
        etcd_binary();
        for _ in 0..4 {
            if let Some(c) = Cluster::try_start(n, tls.clone()) {
                return c;
            }
        }
        panic!("could not start {n} etcd members on loopback ports");
    }

    fn try_start(n: usize, tls: Option<TestTls>) -> Option<Cluster> {
        let dir = tempfile::tempdir().expect("temporary directory");
        let ports = free_ports(2 * n);
        let members: Vec<Member> = (0..n)
            .map(|i| Member {
                name: format!("m{i}"),
                client_port: ports[2 * i],
                peer_port: ports[2 * i + 1],
                child: None,
            })
            .collect();
        let initial = members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer_port))
            .collect::<Vec<_>>()
            .join(",");
        let mut c = Cluster {
            dir,
            members,
            initial,
            tls,
        };
        for i in 0..n {
            c.spawn(i);
        }
        for i in 0..n {
            if !c.ready_within(i, Duration::from_secs(20)) {
                let log = std::fs::read_to_string(c.log_path(i)).unwrap_or_default();
                if log.contains("address already in use") {
                    return None;
                }
                panic!("etcd member {i} not healthy: {log}");
            }
        }
        Some(c)
    }

    fn log_path(&self, i: usize) -> PathBuf {
        self.dir
            .path()
            .join(format!("{}.log", self.members[i].name))
    }

    fn spawn(&mut self, i: usize) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(i))
            .expect("member log");
        let m = &self.members[i];
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let client = format!("{scheme}://127.0.0.1:{}", m.client_port);
        let tls_args: Vec<String> = match &self.tls {
            Some(t) => vec![
                format!("--cert-file={}", t.server_cert.display()),
                format!("--key-file={}", t.server_key.display()),
                format!("--trusted-ca-file={}", t.ca.display()),
                "--client-cert-auth".into(),
            ],
            None => Vec::new(),
        };
        let peer = format!("http://127.0.0.1:{}", m.peer_port);
        let child = Command::new(etcd_binary())
            .arg("--name")
            .arg(&m.name)
            .arg("--data-dir")
            .arg(self.dir.path().join(&m.name))
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &self.initial])
            .args(["--initial-cluster-state", "new"])
            .args(["--initial-cluster-token", "uefi-vars-test"])
            // Fast elections: the tests kill leaders on purpose.
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            .args(&tls_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start etcd");
        self.members[i].child = Some(child);
    }

    /// Waits until member `i` answers a health check.
    pub fn wait_ready(&self, i: usize) {
        assert!(
            self.ready_within(i, Duration::from_secs(20)),
            "etcd member {i} not healthy: {}",
            std::fs::read_to_string(self.log_path(i)).unwrap_or_default()
        );
    }

    fn ready_within(&self, i: usize, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let ep = format!("127.0.0.1:{}", self.members[i].client_port);
        let tls = self
            .tls
            .as_ref()
            .map(TestTls::etcdctl_args)
            .unwrap_or_default();
        loop {
            let ok = Command::new("etcdctl")
                .env("ETCDCTL_API", "3")
                .args(&tls)
                .args([
                    "--endpoints",
                    &ep,
                    "--command-timeout",
                    "1s",
                    "endpoint",
                    "health",
                ])
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false);
            if ok {
                return true;
            }
            let exited = self.members[i].child.as_ref().is_none();
            if exited || Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `HOST:PORT,...` of every member.
    pub fn endpoints(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("127.0.0.1:{}", m.client_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The store URL of `vm` under prefix `uefi-vars`.
    pub fn url(&self, vm: &str) -> String {
        format!("etcd://{}/uefi-vars/{vm}", self.endpoints())
    }

    /// Kills member `i` (SIGKILL).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Restarts a killed member with its data directory.
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        self.spawn(i);
    }

    /// The index of the current leader, if a member reports one.
    pub fn leader(&self) -> Option<usize> {
        let out = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", &self.endpoints(), "--command-timeout", "1s"])
            .args(["endpoint", "status", "-w", "fields"])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        // Per endpoint: "MemberID" : N, "Leader" : N, ..., "Endpoint" : "...".
        let value = |l: &str| {
            l.split_once(':')
                .map(|(_, v)| v.trim().trim_matches('"').to_string())
                .unwrap_or_default()
        };
        let (mut member, mut leader) = (String::new(), String::new());
        for line in text.lines() {
            if line.starts_with("\"MemberID\"") {
                member = value(line);
            } else if line.starts_with("\"Leader\"") {
                leader = value(line);
            } else if line.starts_with("\"Endpoint\"") && !member.is_empty() && member == leader {
                let ep = value(line);
                return self
                    .members
                    .iter()
                    .position(|m| ep.ends_with(&format!(":{}", m.client_port)));
            }
        }
        None
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}
