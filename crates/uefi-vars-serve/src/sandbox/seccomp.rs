//! The seccomp allowlist: the system calls `serve` makes once it is
//! serving, and nothing else.
//!
//! Measured with `strace -f` over `crates/uefi-vars-cli/tests/serve.rs`
//! (every test, the OVMF capture replayed through the socket, SIGTERM and
//! SIGKILL runs, the self-test) on x86_64 glibc: everything the process
//! called after installing the filter is listed, plus the equivalents the
//! same library calls use on aarch64 and riscv64 (`renameat`/`renameat2`,
//! `unlinkat`), the fallbacks glibc takes on an older kernel (`fstat` and
//! `newfstatat` for `statx`), and two rare paths of the service (the sleep
//! after a failed accept, the abort of a panic).
//!
//! **Anything else fails with EPERM** rather than killing the process: a
//! call missed by the measurement (a rare glibc path) then becomes an
//! error the service reports (a host error, the store left as it was)
//! instead of the VM losing its variable service in the middle of a boot;
//! and the self-test can probe the forbidden calls from inside the
//! sandboxed process. What a compromised service could do is the same
//! either way: nothing the allowlist does not contain.
//!
//! `clone3` alone answers ENOSYS (a first filter, see [`programs`]): its
//! flags are behind a pointer seccomp cannot read, and libc falls back to
//! `clone` on ENOSYS, whose flags are checked (threads only).

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// What an allowed system call may be called with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Args {
    Any,
    /// `clone` creating a thread (CLONE_THREAD set), never a process.
    Thread,
    /// `mmap`/`mprotect` without PROT_EXEC: no new code after start-up.
    NoExec,
    /// `ioctl` FIONBIO or FIOCLEX only (what std's socket calls use).
    NonBlockOrCloexec,
    /// `tgkill` of a thread of this process (the abort of a panic), not
    /// of another process of the same user.
    OwnProcess,
    /// `socket(AF_INET or AF_INET6, SOCK_STREAM[ | flags], ...)`: a TCP
    /// connection to an etcd member, nothing else.
    InetStream,
}

/// One entry of the allowlist.
#[derive(Clone, Copy, Debug)]
pub struct Allowed {
    pub name: &'static str,
    pub nr: i64,
    pub args: Args,
}

const fn allow(name: &'static str, nr: i64, args: Args) -> Allowed {
    Allowed { name, nr, args }
}

use Args::{Any, InetStream, NoExec, NonBlockOrCloexec, OwnProcess, Thread};

/// On every architecture.
const COMMON: &[Allowed] = &[
    // Sockets already open: accept on the listener, the client's stream,
    // the signal pipe; SO_SNDTIMEO and SO_PEERCRED; shutdown after ERROR.
    allow("accept4", libc::SYS_accept4, Any),
    allow("recvfrom", libc::SYS_recvfrom, Any),
    allow("sendto", libc::SYS_sendto, Any),
    allow("setsockopt", libc::SYS_setsockopt, Any),
    allow("getsockopt", libc::SYS_getsockopt, Any),
    allow("shutdown", libc::SYS_shutdown, Any),
    allow("ppoll", libc::SYS_ppoll, Any),
    allow("ioctl", libc::SYS_ioctl, NonBlockOrCloexec),
    allow("fcntl", libc::SYS_fcntl, Any),
    // The log (stderr), the capture, the store and its temporary file.
    allow("read", libc::SYS_read, Any),
    allow("write", libc::SYS_write, Any),
    allow("openat", libc::SYS_openat, Any),
    allow("close", libc::SYS_close, Any),
    allow("statx", libc::SYS_statx, Any),
    allow("fstat", libc::SYS_fstat, Any),
    allow("newfstatat", libc::SYS_newfstatat, Any),
    allow("fchmod", libc::SYS_fchmod, Any),
    allow("fsync", libc::SYS_fsync, Any),
    // The store's journal: positioned appends, one fdatasync per write,
    // cut back to the last whole record (persist/file.rs).
    allow("pwrite64", libc::SYS_pwrite64, Any),
    allow("pread64", libc::SYS_pread64, Any),
    allow("lseek", libc::SYS_lseek, Any),
    allow("fdatasync", libc::SYS_fdatasync, Any),
    allow("ftruncate", libc::SYS_ftruncate, Any),
    allow("renameat2", libc::SYS_renameat2, Any),
    allow("unlinkat", libc::SYS_unlinkat, Any),
    allow("getrandom", libc::SYS_getrandom, Any),
    // Memory.
    allow("brk", libc::SYS_brk, Any),
    allow("mmap", libc::SYS_mmap, NoExec),
    allow("mprotect", libc::SYS_mprotect, NoExec),
    allow("munmap", libc::SYS_munmap, Any),
    allow("mremap", libc::SYS_mremap, Any),
    allow("madvise", libc::SYS_madvise, Any),
    // Threads (OpenSSL, std), their start and exit, locks.
    allow("clone", libc::SYS_clone, Thread),
    allow("set_robust_list", libc::SYS_set_robust_list, Any),
    allow("rseq", libc::SYS_rseq, Any),
    allow("sched_getaffinity", libc::SYS_sched_getaffinity, Any),
    allow("sched_yield", libc::SYS_sched_yield, Any),
    allow("futex", libc::SYS_futex, Any),
    allow("gettid", libc::SYS_gettid, Any),
    allow("getpid", libc::SYS_getpid, Any),
    allow("exit", libc::SYS_exit, Any),
    allow("exit_group", libc::SYS_exit_group, Any),
    // Signals: SIGTERM/SIGINT handlers, thread start, abort of a panic.
    allow("rt_sigreturn", libc::SYS_rt_sigreturn, Any),
    allow("rt_sigprocmask", libc::SYS_rt_sigprocmask, Any),
    allow("sigaltstack", libc::SYS_sigaltstack, Any),
    allow("tgkill", libc::SYS_tgkill, OwnProcess),
    allow("restart_syscall", libc::SYS_restart_syscall, Any),
    // Time: the backoff after a failed accept.
    allow("clock_gettime", libc::SYS_clock_gettime, Any),
    allow("clock_nanosleep", libc::SYS_clock_nanosleep, Any),
    allow("nanosleep", libc::SYS_nanosleep, Any),
];

/// The older names x86_64 glibc uses for the same operations.
#[cfg(target_arch = "x86_64")]
const ARCH: &[Allowed] = &[
    allow("rename", libc::SYS_rename, Any),
    allow("unlink", libc::SYS_unlink, Any),
];

/// aarch64 glibc renames with renameat (riscv64 has only renameat2).
#[cfg(target_arch = "aarch64")]
const ARCH: &[Allowed] = &[allow("renameat", libc::SYS_renameat, Any)];

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const ARCH: &[Allowed] = &[];

/// What an etcd store adds (crates/uefi-vars-etcd): the client's tokio
/// runtime waits in epoll and wakes itself through an eventfd, and its
/// gRPC channel opens a new TCP connection when a member goes away.
/// Measured with `strace -f` over the etcd serve tests
/// (crates/uefi-vars-cli/tests/etcd.rs), members killed included.
pub const NETWORK: &[Allowed] = &[
    allow("socket", libc::SYS_socket, InetStream),
    allow("connect", libc::SYS_connect, Any),
    allow("epoll_ctl", libc::SYS_epoll_ctl, Any),
    // epoll_wait on aarch64 and riscv64 (glibc has no other there).
    allow("epoll_pwait", libc::SYS_epoll_pwait, Any),
    // hyper writes HTTP/2 frames with vectored writes.
    allow("writev", libc::SYS_writev, Any),
];

/// The older names x86_64 uses for the same network operations.
#[cfg(target_arch = "x86_64")]
const NETWORK_ARCH: &[Allowed] = &[allow("epoll_wait", libc::SYS_epoll_wait, Any)];

#[cfg(not(target_arch = "x86_64"))]
const NETWORK_ARCH: &[Allowed] = &[];

/// The allowlist of this architecture for a file store, sorted by name.
pub fn allowlist() -> Vec<Allowed> {
    let mut all: Vec<Allowed> = COMMON.iter().chain(ARCH).copied().collect();
    all.sort_by_key(|a| a.name);
    all
}

/// What an etcd store adds to [`allowlist`] on this architecture, sorted.
pub fn network_allowlist() -> Vec<Allowed> {
    let mut all: Vec<Allowed> = NETWORK.iter().chain(NETWORK_ARCH).copied().collect();
    all.sort_by_key(|a| a.name);
    all
}

/// System calls the issue names as ones a compromised service must never
/// make (issue 12), with what else would reopen the same doors; none is in
/// the allowlist (a unit test holds this) and the self-test probes each.
pub const MUST_DENY: &[(&str, i64)] = &[
    ("io_uring_setup", libc::SYS_io_uring_setup),
    ("io_uring_enter", libc::SYS_io_uring_enter),
    ("io_uring_register", libc::SYS_io_uring_register),
    ("unshare", libc::SYS_unshare),
    ("setns", libc::SYS_setns),
    ("chroot", libc::SYS_chroot),
    ("pivot_root", libc::SYS_pivot_root),
    ("mount", libc::SYS_mount),
    ("umount2", libc::SYS_umount2),
    ("setuid", libc::SYS_setuid),
    ("setgid", libc::SYS_setgid),
    ("setreuid", libc::SYS_setreuid),
    ("setregid", libc::SYS_setregid),
    ("setresuid", libc::SYS_setresuid),
    ("setresgid", libc::SYS_setresgid),
    ("setfsuid", libc::SYS_setfsuid),
    ("setfsgid", libc::SYS_setfsgid),
    ("setgroups", libc::SYS_setgroups),
    ("ptrace", libc::SYS_ptrace),
    ("process_vm_writev", libc::SYS_process_vm_writev),
    ("bpf", libc::SYS_bpf),
    ("perf_event_open", libc::SYS_perf_event_open),
    ("keyctl", libc::SYS_keyctl),
    ("add_key", libc::SYS_add_key),
    ("request_key", libc::SYS_request_key),
    ("userfaultfd", libc::SYS_userfaultfd),
];

const CLONE_THREAD: u64 = 0x0001_0000;
const PROT_EXEC: u64 = 0x4;
/// asm-generic ioctl numbers, the same on the three architectures.
const FIONBIO: u64 = 0x5421;
const FIOCLEX: u64 = 0x5451;

fn rules(args: Args) -> Result<Vec<SeccompRule>, seccompiler::BackendError> {
    let cond = |arg, op, value| SeccompCondition::new(arg, SeccompCmpArgLen::Qword, op, value);
    Ok(match args {
        Any => Vec::new(),
        Thread => vec![SeccompRule::new(vec![cond(
            0,
            SeccompCmpOp::MaskedEq(CLONE_THREAD),
            CLONE_THREAD,
        )?])?],
        NoExec => vec![SeccompRule::new(vec![cond(
            2,
            SeccompCmpOp::MaskedEq(PROT_EXEC),
            0,
        )?])?],
        NonBlockOrCloexec => [FIONBIO, FIOCLEX]
            .into_iter()
            .map(|req| {
                let c = SeccompCondition::new(1, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, req)?;
                SeccompRule::new(vec![c])
            })
            .collect::<Result<_, _>>()?,
        InetStream => [libc::AF_INET, libc::AF_INET6]
            .into_iter()
            .map(|family| {
                let domain = SeccompCondition::new(
                    0,
                    SeccompCmpArgLen::Dword,
                    SeccompCmpOp::Eq,
                    family as u64,
                )?;
                // The type's low bits; SOCK_NONBLOCK/SOCK_CLOEXEC above.
                let kind = SeccompCondition::new(
                    1,
                    SeccompCmpArgLen::Dword,
                    SeccompCmpOp::MaskedEq(0xf),
                    libc::SOCK_STREAM as u64,
                )?;
                SeccompRule::new(vec![domain, kind])
            })
            .collect::<Result<_, _>>()?,
        OwnProcess => vec![SeccompRule::new(vec![SeccompCondition::new(
            0,
            SeccompCmpArgLen::Dword,
            SeccompCmpOp::Eq,
            u64::from(std::process::id()),
        )?])?],
    })
}

/// The two programs to install, in this order: `clone3` → ENOSYS, then
/// the allowlist (EPERM for the rest). The allowlist goes last because
/// installing a filter needs `prctl` and `seccomp`, which it forbids. It
/// lets `clone3` through to the first filter: the kernel runs every filter
/// and keeps the most restrictive answer, ENOSYS over "allow".
pub fn programs(
    arch: TargetArch,
    network: bool,
) -> Result<[BpfProgram; 2], seccompiler::BackendError> {
    let mut allowed: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    let extra = if network {
        network_allowlist()
    } else {
        Vec::new()
    };
    for a in allowlist().into_iter().chain(extra) {
        allowed.insert(a.nr, rules(a.args)?);
    }
    allowed.insert(libc::SYS_clone3, Vec::new());
    let allow: BpfProgram = SeccompFilter::new(
        allowed,
        SeccompAction::Errno(super::EPERM),
        SeccompAction::Allow,
        arch,
    )?
    .try_into()?;
    let mut clone3: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    clone3.insert(libc::SYS_clone3, Vec::new());
    let nosys: BpfProgram = SeccompFilter::new(
        clone3,
        SeccompAction::Allow,
        SeccompAction::Errno(super::ENOSYS),
        arch,
    )?
    .try_into()?;
    Ok([nosys, allow])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_that_must_be_denied_is_allowed() {
        let allowed = allowlist();
        for (name, nr) in MUST_DENY.iter().chain(&[
            ("socket", libc::SYS_socket),
            ("socketpair", libc::SYS_socketpair),
            ("connect", libc::SYS_connect),
            ("bind", libc::SYS_bind),
            ("listen", libc::SYS_listen),
            ("execve", libc::SYS_execve),
            ("execveat", libc::SYS_execveat),
            ("clone3", libc::SYS_clone3),
            ("prctl", libc::SYS_prctl),
            ("seccomp", libc::SYS_seccomp),
            ("capset", libc::SYS_capset),
        ]) {
            assert!(
                !allowed.iter().any(|a| a.nr == *nr || a.name == *name),
                "{name} is allowed"
            );
        }
    }

    #[test]
    fn the_readme_lists_the_etcd_additions_and_they_stay_narrow() {
        let readme = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"),
        )
        .unwrap();
        let start = readme.find("<!-- seccomp-allowlist-etcd -->").unwrap();
        let end = readme.find("<!-- /seccomp-allowlist-etcd -->").unwrap();
        let mut listed: Vec<&str> = readme[start..end].split('`').skip(1).step_by(2).collect();
        listed.sort_unstable();
        let mut ours: Vec<&str> = network_allowlist().iter().map(|a| a.name).collect();
        if cfg!(target_arch = "x86_64") {
            ours.sort_unstable();
            assert_eq!(listed, ours);
        }
        // Still refused with an etcd store: servers, other socket kinds,
        // processes.
        for name in ["bind", "listen", "socketpair", "execve", "clone3"] {
            assert!(!ours.contains(&name), "{name}");
        }
        let socket = NETWORK.iter().find(|a| a.name == "socket").unwrap();
        assert_eq!(socket.args, InetStream);
    }

    #[test]
    fn names_and_numbers_are_unique_and_the_programs_build() {
        let allowed = allowlist();
        let mut nrs: Vec<i64> = allowed.iter().map(|a| a.nr).collect();
        nrs.sort_unstable();
        nrs.dedup();
        assert_eq!(nrs.len(), allowed.len());
        let arch = TargetArch::try_from(std::env::consts::ARCH).unwrap();
        let [nosys, allow] = programs(arch, false).unwrap();
        assert!(!allow.is_empty() && !nosys.is_empty());
        let [nosys, allow] = programs(arch, true).unwrap();
        assert!(!allow.is_empty() && !nosys.is_empty());
    }
}
