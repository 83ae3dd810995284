//! The side-by-side benchmark of issue 11, whose output is the tables of
//! docs/performance.md: reads against the peer crate virtfw-varstore
//! (interleaved round by round, so both see the same machine load), NV
//! write cost versus store size on the real filesystem, the real OVMF boot
//! pair with durable storage against in-memory storage and against the
//! floor that the disk's fdatasync sets, an authenticated write against
//! OpenSSL's own PKCS#7 verify of the same blob, and in-process capture
//! replay against the peer's `replay_pcap`. Whole-process replay against
//! the peer's `pcap-replay` binary is `scripts/bench-replay.sh`.
//!
//! Criterion (the `store_scaling` bench) measures one function at a time;
//! the ratios here need two subjects timed in alternation, so this harness
//! times rounds itself and prints medians: thread CPU time for what is
//! CPU-bound (reads, authenticated writes, in-process replay), wall time
//! for what waits on the disk (NV writes, the durable boot pair).
//!
//! `cargo bench -p uefi-vars --bench performance [-- SECTION...]` with
//! SECTION among `reads`, `writes`, `boot`, `auth`, `replay` (default:
//! all). Stores
//! live in the system's temporary directory (`TMPDIR`).

mod auth;
mod boot;
#[path = "../common/read_workload.rs"]
mod read_workload;
mod reads;
mod replay;
mod writes;

use std::time::Instant;

/// The median of `v` (sorted in place).
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Microseconds `f` takes.
pub fn time_us<R>(f: impl FnOnce() -> R) -> (f64, R) {
    let start = Instant::now();
    let r = f();
    (start.elapsed().as_secs_f64() * 1e6, r)
}

/// Microseconds of this thread's CPU time `f` takes. The CPU-bound
/// comparisons use this rather than wall time: on a machine shared with
/// other jobs, wall time also counts the time the scheduler gave them,
/// which lands on either subject at random.
pub fn cpu_us<R>(f: impl FnOnce() -> R) -> (f64, R) {
    let start = thread_cpu_ns();
    let r = f();
    ((thread_cpu_ns() - start) as f64 / 1e3, r)
}

fn thread_cpu_ns() -> i128 {
    use nix::time::{clock_gettime, ClockId};
    let ts = clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).expect("thread CPU clock");
    i128::from(ts.tv_sec()) * 1_000_000_000 + i128::from(ts.tv_nsec())
}

/// A path under the workspace root.
pub fn workspace_file(rel: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

fn main() {
    let wanted: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let run = |s: &str| wanted.is_empty() || wanted.iter().any(|w| w == s);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "machine: {} cores, load average {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    if run("reads") {
        reads::run();
    }
    if run("writes") {
        writes::run();
    }
    if run("boot") {
        boot::run();
    }
    if run("auth") {
        auth::run();
    }
    if run("replay") {
        replay::run();
    }
}
