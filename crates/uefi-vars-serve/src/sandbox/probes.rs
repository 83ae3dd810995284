//! Raw system calls for the sandbox self-test: each forbidden call of
//! [`super::seccomp::MUST_DENY`], with arguments that do nothing (invalid
//! descriptors, a path that does not exist, -1 ids, unknown operations), so
//! that without the filter the kernel answers something other than EPERM
//! (EBADF, ENOENT, EINVAL, ESRCH, EFAULT, EOPNOTSUPP, or a no-op success)
//! and under the filter the answer is EPERM. `tests/syscall_probes.rs` runs
//! them outside the sandbox to show that difference.
//!
//! The only unsafe code of the crate: `libc::syscall` is variadic and
//! unchecked. Every argument here is an integer, a null pointer, or a
//! pointer to a static NUL-terminated string; none of them can make the
//! kernel write to this process's memory.
#![allow(unsafe_code)]

use std::io;

use super::seccomp::MUST_DENY;

static MISSING: &[u8] = b"/nonexistent-uefi-vars-sandbox-probe\0";

/// The arguments of the probe for `name`.
fn arguments(name: &str) -> [libc::c_long; 6] {
    let path = MISSING.as_ptr() as libc::c_long;
    let minus1: libc::c_long = -1;
    match name {
        "io_uring_setup" => [0, 0, 0, 0, 0, 0],
        "io_uring_enter" | "io_uring_register" | "setns" => [minus1, 0, 0, 0, 0, 0],
        // An unknown flag: EINVAL before anything is unshared.
        "unshare" => [0x1, 0, 0, 0, 0, 0],
        "chroot" | "umount2" => [path, 0, 0, 0, 0, 0],
        "pivot_root" => [path, path, 0, 0, 0, 0],
        "mount" => [0, path, 0, 0, 0, 0],
        // -1 ids: EINVAL, or "leave unchanged".
        "setuid" | "setgid" | "setfsuid" | "setfsgid" => [minus1, 0, 0, 0, 0, 0],
        "setreuid" | "setregid" => [minus1, minus1, 0, 0, 0, 0],
        "setresuid" | "setresgid" => [minus1, minus1, minus1, 0, 0, 0],
        "setgroups" => [minus1, 0, 0, 0, 0, 0],
        // No such process.
        "ptrace" => [minus1, 0x3fff_ffff, 0, 0, 0, 0],
        "process_vm_writev" => [0x3fff_ffff, 0, 0, 0, 0, 1],
        "bpf" | "keyctl" => [minus1, 0, 0, 0, 0, 0],
        "perf_event_open" => [0, 0, minus1, minus1, 0, 0],
        "add_key" | "request_key" => [0, 0, 0, 0, 0, 0],
        // Unknown flags.
        "userfaultfd" => [0xffff, 0, 0, 0, 0, 0],
        // Signal 0 (a permission check) to init's main thread.
        OTHER_PROCESS_TGKILL => [1, 1, 0, 0, 0, 0],
        _ => [0, 0, 0, 0, 0, 0],
    }
}

/// One raw system call; its return value or the errno.
fn raw(nr: i64, a: [libc::c_long; 6]) -> io::Result<libc::c_long> {
    // SAFETY: see the module comment; the arguments never let the kernel
    // write into this process, and the calls change nothing when allowed.
    let r = unsafe { libc::syscall(nr as libc::c_long, a[0], a[1], a[2], a[3], a[4], a[5]) };
    if r == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// `tgkill` is allowed for the process's own threads only.
pub const OTHER_PROCESS_TGKILL: &str = "tgkill of another process";

/// Runs the probe of every call in `MUST_DENY`, then `tgkill` aimed at
/// another process: (name, outcome).
pub fn run_all() -> Vec<(&'static str, io::Result<libc::c_long>)> {
    MUST_DENY
        .iter()
        .chain(&[(OTHER_PROCESS_TGKILL, libc::SYS_tgkill)])
        .map(|&(name, nr)| (name, raw(nr, arguments(name))))
        .collect()
}
