//! What the service process gives up once its socket, store directory and
//! capture file are open.
//!
//! - **Landlock** (when the kernel has it; best effort per ABI): every
//!   filesystem access right the kernel knows is handled, and only the
//!   store's directory (and, when the store is a symbolic link, the
//!   directory of its target) is granted, with all of them. Nothing else on
//!   any filesystem can be opened, created, removed or listed. TCP bind and
//!   connect are handled with no port allowed (ABI 4+), and the process is
//!   scoped (ABI 6+): no abstract Unix socket connections out of the
//!   sandbox, no signals to processes outside it.
//! - **seccomp** (x86_64, aarch64, riscv64): an allowlist ([`seccomp`]):
//!   the system calls the service makes once serving, some only with safe
//!   arguments (threads, not processes; no executable mappings); every other
//!   call fails with EPERM, `clone3` with ENOSYS (libc then falls back to
//!   `clone`). No new sockets, connections, processes, namespaces, mounts,
//!   id changes, io_uring, BPF, keyrings or tracing. `no_new_privs` is set.
//!   [`self_test`] probes from inside (`sandbox/probes.rs` for the raw calls).
//!
//! An `etcd://` store changes two things, and only for that store
//! (README "Running a fleet"): no directory is writable at all, Landlock
//! allows TCP connect to the ports of the configured etcd endpoints (and
//! no other), and the allowlist gains [`seccomp::NETWORK`]: new IPv4/IPv6
//! stream sockets and connect (the client reconnects when a member goes
//! away), and the epoll calls of the client's runtime.
//!
//! A kernel without Landlock or seccomp is logged and the service runs
//! without that layer; any other failure to set a layer up stops the
//! service.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

mod probes;
pub mod seccomp;

use landlock::{
    Access, AccessFs, AccessNet, LandlockStatus, Ruleset, RulesetAttr, RulesetCreatedAttr,
    RulesetStatus, Scope, ABI,
};

/// Outcome of the Landlock layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LandlockOutcome {
    /// Restricted. `full` when every requested right is known to this
    /// kernel; `abi` is the ABI in use.
    Enforced { abi: i32, full: bool },
    /// The kernel has no Landlock (not built in, or not enabled at boot).
    Unsupported(String),
}

/// Outcome of the seccomp layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SeccompOutcome {
    Enforced,
    /// No filter for this architecture, or no seccomp in the kernel.
    Unsupported(String),
}

/// What [`apply`] enforced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SandboxReport {
    pub landlock: LandlockOutcome,
    pub seccomp: SeccompOutcome,
    pub writable: Vec<PathBuf>,
    /// TCP ports the process may connect to (an etcd store's endpoints).
    pub connect_ports: Vec<u16>,
}

impl fmt::Display for SandboxReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.landlock {
            LandlockOutcome::Enforced { abi, full } => {
                let dirs: Vec<String> = self
                    .writable
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect();
                write!(
                    f,
                    "landlock: enforced (ABI {abi}{}), filesystem limited to {}",
                    if *full {
                        ""
                    } else {
                        "; rights of later ABIs are not available on this kernel"
                    },
                    dirs.join(", ")
                )?;
            }
            LandlockOutcome::Unsupported(why) => {
                write!(f, "landlock: not supported by this kernel ({why})")?
            }
        }
        f.write_str("; ")?;
        match &self.seccomp {
            SeccompOutcome::Enforced => write!(
                f,
                "seccomp: enforced (an allowlist of {} system calls, EPERM for every other)",
                seccomp::allowlist()
                    .len()
                    .saturating_add(if self.connect_ports.is_empty() {
                        0
                    } else {
                        seccomp::network_allowlist().len()
                    })
            )?,
            SeccompOutcome::Unsupported(why) => write!(f, "seccomp: not enforced ({why})")?,
        }
        if !self.connect_ports.is_empty() {
            let ports: Vec<String> = self.connect_ports.iter().map(u16::to_string).collect();
            write!(f, "; TCP connect only to port {}", ports.join(", "))?;
        }
        Ok(())
    }
}

/// Why the sandbox could not be set up (other than missing kernel support).
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("landlock: {0}")]
    Landlock(String),
    #[error("seccomp: {0}")]
    Seccomp(String),
}

/// The directories the service needs to write: the store's directory, and
/// that of the store's target when the store is a symbolic link.
pub fn store_dirs(store: &Path) -> io::Result<Vec<PathBuf>> {
    let parent = |p: &Path| -> PathBuf {
        match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        }
    };
    let mut dirs = vec![std::fs::canonicalize(parent(store))?];
    if let Ok(target) = std::fs::canonicalize(store) {
        let d = parent(&target);
        if !dirs.contains(&d) {
            dirs.push(d);
        }
    }
    Ok(dirs)
}

/// Restricts the calling process for good: every thread (the etcd
/// client's runtime threads included). `connect_ports`: the TCP ports the
/// process may connect to (none for a file store).
pub fn apply(writable: &[PathBuf], connect_ports: &[u16]) -> Result<SandboxReport, SandboxError> {
    // Read before Landlock closes /proc: a kernel built with seccomp shows
    // the field, so a refused filter there is a failure, not a missing
    // feature.
    let kernel_has_seccomp = std::fs::read_to_string("/proc/self/status")
        .map(|s| s.lines().any(|l| l.starts_with("Seccomp:")))
        .unwrap_or(false);
    let landlock = apply_landlock(writable, connect_ports)?;
    let seccomp = apply_seccomp(kernel_has_seccomp, !connect_ports.is_empty())?;
    Ok(SandboxReport {
        landlock,
        seccomp,
        writable: writable.to_vec(),
        connect_ports: connect_ports.to_vec(),
    })
}

fn apply_landlock(
    writable: &[PathBuf],
    connect_ports: &[u16],
) -> Result<LandlockOutcome, SandboxError> {
    // Ask for everything this crate knows; best effort keeps what the
    // running kernel supports.
    let want = ABI::V10;
    let err = |e: landlock::RulesetError| SandboxError::Landlock(e.to_string());
    let mut created = Ruleset::default()
        .handle_access(AccessFs::from_all(want))
        .map_err(err)?
        .handle_access(AccessNet::from_all(want))
        .map_err(err)?
        .scope(Scope::from_all(want))
        .map_err(err)?
        .create()
        .map_err(err)?;
    for dir in writable {
        let fd = landlock::PathFd::new(dir)
            .map_err(|e| SandboxError::Landlock(format!("{}: {e}", dir.display())))?;
        created = created
            .add_rule(landlock::PathBeneath::new(fd, AccessFs::from_all(want)))
            .map_err(err)?;
    }
    for &port in connect_ports {
        created = created
            .add_rule(landlock::NetPort::new(port, AccessNet::ConnectTcp))
            .map_err(err)?;
    }
    let status = created.restrict_self().map_err(err)?;
    match (status.landlock, status.ruleset) {
        (LandlockStatus::NotEnabled, _) => Ok(LandlockOutcome::Unsupported(
            "built in but not enabled at boot".into(),
        )),
        (LandlockStatus::NotImplemented, _) => Ok(LandlockOutcome::Unsupported(
            "not built into the kernel".into(),
        )),
        (_, RulesetStatus::NotEnforced) => Ok(LandlockOutcome::Unsupported(
            "the ruleset could not be enforced".into(),
        )),
        (
            LandlockStatus::Available {
                effective_abi,
                kernel_abi,
            },
            ruleset,
        ) => Ok(LandlockOutcome::Enforced {
            abi: kernel_abi.unwrap_or(effective_abi as i32),
            full: ruleset == RulesetStatus::FullyEnforced,
        }),
    }
}

#[cfg(any(
    target_arch = "x86_64",
    target_arch = "aarch64",
    target_arch = "riscv64"
))]
fn apply_seccomp(kernel_has_seccomp: bool, network: bool) -> Result<SeccompOutcome, SandboxError> {
    let arch = seccompiler::TargetArch::try_from(std::env::consts::ARCH)
        .map_err(|e| SandboxError::Seccomp(e.to_string()))?;
    let programs =
        seccomp::programs(arch, network).map_err(|e| SandboxError::Seccomp(e.to_string()))?;
    for prog in &programs {
        match seccompiler::apply_filter_all_threads(prog) {
            Ok(()) => {}
            Err(seccompiler::Error::Seccomp(e))
                if !kernel_has_seccomp && e.raw_os_error() == Some(EINVAL_RAW) =>
            {
                return Ok(SeccompOutcome::Unsupported(format!(
                    "the kernel has no seccomp filters: {e}"
                )));
            }
            Err(e) => return Err(SandboxError::Seccomp(e.to_string())),
        }
    }
    Ok(SeccompOutcome::Enforced)
}

#[cfg(not(any(
    target_arch = "x86_64",
    target_arch = "aarch64",
    target_arch = "riscv64"
)))]
fn apply_seccomp(
    _kernel_has_seccomp: bool,
    _network: bool,
) -> Result<SeccompOutcome, SandboxError> {
    Ok(SeccompOutcome::Unsupported(format!(
        "no filter for {}",
        std::env::consts::ARCH
    )))
}

const EPERM: u32 = 1;
const ENOSYS: u32 = 38;
const EINVAL_RAW: i32 = 22;

/// One probe of [`self_test`].
#[derive(Clone, Debug)]
pub struct Probe {
    pub name: String,
    /// `Ok(())` if the operation succeeded, the OS error otherwise.
    pub result: Result<(), String>,
    /// Whether this probe must fail given what was enforced.
    pub must_fail: bool,
    /// Whether this probe must succeed (the service needs it).
    pub must_succeed: bool,
    /// A failure must be EPERM: the seccomp filter's answer, not the
    /// kernel's to the probe's harmless arguments.
    pub must_be_eperm: bool,
}

impl Probe {
    pub fn as_expected(&self) -> bool {
        match &self.result {
            Ok(()) => !self.must_fail,
            Err(e) => !self.must_succeed && (!self.must_be_eperm || e.ends_with("(os error 1)")),
        }
    }
}

/// The forbidden system calls, called from the sandboxed process.
fn syscall_probes(seccomp_enforced: bool) -> Vec<Probe> {
    probes::run_all()
        .into_iter()
        .map(|(name, r)| Probe {
            name: format!("system call {name}"),
            result: r.map(drop).map_err(|e| e.to_string()),
            must_fail: seccomp_enforced,
            must_succeed: false,
            must_be_eperm: seccomp_enforced,
        })
        .collect()
}

/// What the forbidden system calls give outside any sandbox (the
/// baseline of the self-test): name and raw errno, `None` for success.
pub fn unsandboxed_syscall_answers() -> Vec<(&'static str, Option<i32>)> {
    probes::run_all()
        .into_iter()
        .map(|(name, r)| (name, r.err().map(|e| e.raw_os_error().unwrap_or(0))))
        .collect()
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let outcome = match &self.result {
            Ok(()) => "allowed".to_string(),
            Err(e) => format!("denied ({e})"),
        };
        let verdict = if self.as_expected() {
            "ok"
        } else {
            "UNEXPECTED"
        };
        write!(f, "probe {}: {outcome} [{verdict}]", self.name)
    }
}

fn probe(r: io::Result<()>) -> Result<(), String> {
    r.map_err(|e| e.to_string())
}

/// Runs, inside the sandbox, the operations it must forbid and those the
/// service needs. `store_dir` is the granted directory, `outside` a
/// writable directory outside it (its parent, typically).
pub fn self_test(report: &SandboxReport, store_dir: &Path, outside: &Path) -> Vec<Probe> {
    let ll = matches!(report.landlock, LandlockOutcome::Enforced { .. });
    let sc = report.seccomp == SeccompOutcome::Enforced;
    let pid = std::process::id();
    let mut probes = Vec::new();
    let mut push = |name: &str, result, must_fail, must_succeed| {
        probes.push(Probe {
            name: name.to_string(),
            result,
            must_fail,
            must_succeed,
            must_be_eperm: false,
        })
    };

    let inside = store_dir.join(format!(".sandbox-probe-{pid}"));
    push(
        "create, rename and remove a file in the store directory",
        probe((|| {
            std::fs::write(&inside, b"probe")?;
            let renamed = store_dir.join(format!(".sandbox-probe-{pid}.renamed"));
            std::fs::rename(&inside, &renamed)?;
            std::fs::File::open(store_dir)?.sync_all()?;
            std::fs::remove_file(&renamed)
        })()),
        false,
        true,
    );
    let out_file = outside.join(format!("uefi-vars-sandbox-probe-{pid}"));
    push(
        "create a file outside the store directory",
        probe(std::fs::write(&out_file, b"probe").inspect(|()| {
            let _ = std::fs::remove_file(&out_file);
        })),
        ll,
        false,
    );
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe"));
    push(
        "read a file outside the store directory (own executable)",
        probe(std::fs::File::open(&exe).map(drop)),
        ll,
        false,
    );
    push(
        "list the root directory",
        probe(std::fs::read_dir("/").map(drop)),
        ll,
        false,
    );
    push(
        "create an AF_INET socket (UDP, 127.0.0.1)",
        probe(std::net::UdpSocket::bind("127.0.0.1:0").map(drop)),
        sc,
        false,
    );
    push(
        "create an AF_INET6 socket (TCP listener, ::1)",
        probe(std::net::TcpListener::bind("[::1]:0").map(drop)),
        sc,
        false,
    );
    push(
        "create an AF_UNIX socket pair",
        probe(std::os::unix::net::UnixStream::pair().map(drop)),
        sc,
        false,
    );
    // A program inside the store directory, so that Landlock (which also
    // governs execution) lets the attempt reach fork/clone and seccomp.
    let program = store_dir.join(format!(".sandbox-probe-{pid}.sh"));
    push(
        "start a process (a script in the store directory)",
        probe((|| {
            use std::io::Write;
            use std::os::unix::fs::PermissionsExt;
            // fchmod: the umask is 0177 and chmod(2) is not allowed.
            let mut script = std::fs::File::create_new(&program)?;
            script.set_permissions(std::fs::Permissions::from_mode(0o700))?;
            script.write_all(b"#!/bin/sh\nexit 0\n")?;
            drop(script);
            let status = std::process::Command::new(&program).status();
            let _ = std::fs::remove_file(&program);
            status.map(drop)
        })()),
        sc,
        false,
    );
    push(
        "start a thread",
        probe(
            std::thread::Builder::new()
                .spawn(|| 7)
                .and_then(|h| h.join().map_err(|_| io::Error::other("thread panicked")))
                .map(drop),
        ),
        false,
        true,
    );
    probes.extend(syscall_probes(sc));
    probes
}
