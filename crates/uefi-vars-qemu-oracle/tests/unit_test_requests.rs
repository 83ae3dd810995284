//! Every request the project's own tests send, through QEMU's device as
//! well (issue 5, item 4b of the conformance suite).
//!
//! The test binaries of [`PACKAGES`] (library unit tests and every
//! integration test) are built with `cargo test --no-run` and run with
//! `UEFI_VARS_CAPTURE_DIR` set, so every `uefi_vars::Service` their
//! `tests/common` helpers create writes its own capture
//! (`uefi_vars::testing`, `uefi_vars::service::capture`). Nothing is
//! picked by hand: each capture is replayed through QEMU if QEMU's device
//! can be configured like that service (`captures::plan`: 64-bit guest,
//! default policy and name limits, `size` = max_storage, ...), up to the
//! first host-side change the requests do not carry, and compared reply by
//! reply with our service, in DMA mode and for every fourth capture also
//! in PIO mode. Identical captures run once. Differences are classified by
//! their docs/compat.md id as in `conformance.rs`; the suite fails on any
//! unlisted one, on a failed QEMU run, and on a capture whose replay does
//! not give the replies the test saw.
//!
//! Needs QEMU as `conformance.rs` does (`UEFI_VARS_SKIP_QEMU=1` skips).
//! The captures stay in `target/uefi-vars-captures` for
//! `uefi-vars-qemu-oracle captures` (README).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use uefi_vars_qemu_oracle::captures::{self, Compared};
use uefi_vars_qemu_oracle::qemu::{self, QemuOptions};

/// The packages whose tests are collected.
const PACKAGES: &[&str] = &["uefi-vars", "uefi-vars-device"];
/// Every n-th capture the PIO window can take also runs in PIO mode.
const PIO_EVERY: usize = 4;

fn say(text: &str) {
    let _ = std::io::stderr().write_all(text.as_bytes());
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The target directory cargo builds into (and the captures go under).
fn target_dir(workspace: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => workspace.join(d),
        None => workspace.join("target"),
    }
}

#[test]
fn unit_test_requests_against_qemu() {
    if std::env::var_os("UEFI_VARS_SKIP_QEMU").is_some_and(|v| v == "1") {
        say("UEFI_VARS_SKIP_QEMU=1: QEMU replay of the unit tests' requests skipped\n");
        return;
    }
    // QEMU 11.1 (mmdebstrap root, scripts/install-qemu.sh). QEMU 10.0 is
    // compared by conformance.rs only: replaying these requests through it
    // shows 5 differences the classifier does not list yet (a KEK write
    // with malformed descriptor sizes that QEMU 10.0.2 accepts, test
    // malformed_descriptor_sizes_are_security_violation; a name without
    // NUL, test names_without_nul_are_refused_everywhere); run it by hand
    // with `uefi-vars-qemu-oracle captures`.
    let q11 = QemuOptions::from_root(Path::new(qemu::QEMU11_ROOT)).unwrap_or_else(|e| {
        panic!(
            "QEMU 11.1 not runnable from {}: {e}; run scripts/install-qemu.sh",
            qemu::QEMU11_ROOT
        )
    });
    let mut opts = q11;
    let version = opts
        .version_line()
        .unwrap_or_else(|e| panic!("{e}: run scripts/install-qemu.sh"));
    let v = qemu::parse_version(&version).expect("QEMU version");
    assert!(v >= (11, 1), "{version}: expected QEMU >= 11.1");
    opts.bios = opts.fast_bios();
    opts.scratch = qemu::fast_scratch();
    let oracles = [(opts, version, v)];

    let started = Instant::now();
    let ws = workspace();
    let dir = target_dir(&ws).join("uefi-vars-captures");
    let runs = captures::collect_from_tests(Path::new(env!("CARGO")), &ws, PACKAGES, &dir).unwrap();
    let collected_in = started.elapsed();
    for r in runs.iter().filter(|r| !r.passed) {
        say(&format!("note: some tests of {} failed\n", r.binary));
    }
    let all = captures::load_dir(&dir).unwrap();

    for (opts, version, v) in &oracles {
        let replay_started = Instant::now();
        let progress = |c: &Compared| {
            if c.report.unlisted() > 0 {
                say(&format!(
                    "  {} [{}] ({}): {} unlisted\n",
                    c.name,
                    c.test,
                    if c.pio { "PIO" } else { "DMA" },
                    c.report.unlisted()
                ));
            }
        };
        let out = captures::replay_captures(
            &all,
            qemu::legacy_payload_size(*v),
            opts,
            PIO_EVERY,
            2,
            &progress,
        );
        say(&format!(
            "QEMU replay of the requests the tests send: {version}\n\
             firmware: {}; {} test binaries run with capturing in {:.1?}, QEMU runs in {:.1?}\n{}{}",
            opts.bios
                .as_ref()
                .map_or("SeaBIOS".to_string(), |b| b.display().to_string()),
            runs.len(),
            collected_in,
            replay_started.elapsed(),
            out.header(),
            out.total.summary()
        ));
        assert!(out.total.requests > 0);
        assert!(
            out.failures.is_empty(),
            "QEMU runs failed: {:#?}",
            out.failures
        );
        assert!(
            out.diverged.is_empty(),
            "replaying these captures does not give the replies the tests saw: {:#?}",
            out.diverged
        );
        assert_eq!(
            out.total.unlisted(),
            0,
            "unlisted differences from QEMU:\n{}",
            out.total.summary()
        );
    }
}
