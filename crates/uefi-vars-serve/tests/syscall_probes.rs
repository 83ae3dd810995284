//! The self-test's forbidden system calls, run outside any sandbox: the
//! kernel answers each with something other than EPERM, so the EPERM the
//! sandboxed `--self-test-sandbox` reports is the seccomp filter's.

use uefi_vars_serve::sandbox::{seccomp, unsandboxed_syscall_answers};

#[test]
fn every_probe_reaches_the_kernel_with_a_harmless_call_when_unfiltered() {
    // As root every probe passes the capability checks and fails (or does
    // nothing) on its arguments; unprivileged, several would be refused
    // with EPERM by the kernel itself, which proves nothing.
    if rustix::process::geteuid().as_raw() != 0 {
        eprintln!("skipped: needs root (unprivileged, the kernel itself answers EPERM)");
        return;
    }
    let answers = unsandboxed_syscall_answers();
    assert_eq!(answers.len(), seccomp::MUST_DENY.len() + 1);
    for (name, errno) in &answers {
        eprintln!("{name}: {errno:?}");
        assert_ne!(*errno, Some(1), "{name} answers EPERM without the filter");
    }
    // The list, all probed.
    for name in [
        "io_uring_setup",
        "io_uring_enter",
        "io_uring_register",
        "unshare",
        "setns",
        "chroot",
        "mount",
        "setuid",
        "setgid",
        "setreuid",
        "setregid",
        "setresuid",
        "setresgid",
        "setfsuid",
        "setfsgid",
        "setgroups",
        "ptrace",
        "bpf",
        "perf_event_open",
        "keyctl",
        "add_key",
        "userfaultfd",
        "tgkill of another process",
    ] {
        assert!(answers.iter().any(|(n, _)| *n == name), "{name} not probed");
    }
    // Nothing changed: same ids, same root directory.
    assert_eq!(rustix::process::geteuid().as_raw(), 0);
    assert!(std::path::Path::new("/proc/self/status").exists());
}
