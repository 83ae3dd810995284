//! Differential conformance against QEMU's own `uefi-vars-x64` device.
//!
//! The same requests go to QEMU (through the test guest) and to our
//! service; every reply and the final stores are compared. A difference
//! must be listed in docs/compat.md (classified by `compat::observe`);
//! the suite fails on any unlisted one and prints: requests compared,
//! identical, listed differences per compat id, unlisted differences.
//!
//! Parts: (a) the real firmware captures of `tests/data`, their requests
//! re-sent to QEMU; (b) seeded random sequences; (c) both in DMA and PIO
//! transfer mode.
//!
//! Runs against every QEMU `scripts/install-qemu.sh` installs, each a
//! failure when missing: QEMU 11.1 from Debian trixie-backports in the
//! mmdebstrap root `qemu::QEMU11_ROOT` (run through that root's own
//! loader, `qemu::QemuRoot`) and the host's `qemu-system-x86_64` (QEMU
//! 10.0 from bookworm-backports), with gcc/ld for the guest. Our service
//! answers as the QEMU it is compared with (`qemu::config_for`). Set
//! `UEFI_VARS_SKIP_QEMU=1` to skip on a machine without them.
//!
//! The requests the project's own tests send are replayed through QEMU by
//! `unit_test_requests.rs`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use uefi_vars::pcap::read_file;
use uefi_vars::status::EfiStatus;
use uefi_vars::Config;
use uefi_vars_qemu_oracle::compare::{compare, Report};
use uefi_vars_qemu_oracle::qemu::{self, QemuOptions, QemuRun};
use uefi_vars_qemu_oracle::script::{steps_from_records, Step};
use uefi_vars_qemu_oracle::{compat, random};

/// Random sequences: seeds × steps, each run in DMA and in PIO mode.
const RANDOM_SEEDS: u64 = 8;
const RANDOM_STEPS: usize = 300;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data")
        .join(name)
}

/// Unbuffered stderr: not captured by the test harness, so the numbers
/// appear in CI logs.
fn say(text: &str) {
    let _ = std::io::stderr().write_all(text.as_bytes());
}

/// One QEMU to test against: its options, version line and the service
/// configuration that answers as it does.
type Oracle = (QemuOptions, String, Config);

/// The QEMUs to test against (QEMU 11.1 first), or none when skipping was
/// asked for.
fn qemus() -> Vec<Oracle> {
    if std::env::var_os("UEFI_VARS_SKIP_QEMU").is_some_and(|v| v == "1") {
        say("UEFI_VARS_SKIP_QEMU=1: QEMU conformance skipped\n");
        return Vec::new();
    }
    let q11 = QemuOptions::from_root(Path::new(qemu::QEMU11_ROOT)).unwrap_or_else(|e| {
        panic!(
            "QEMU 11.1 not runnable from {}: {e}; run scripts/install-qemu.sh",
            qemu::QEMU11_ROOT
        )
    });
    let mut out = Vec::new();
    for (opts, want) in [(q11, (11, 1)), (QemuOptions::default(), (10, 0))] {
        let version = opts
            .version_line()
            .unwrap_or_else(|e| panic!("{e}: run scripts/install-qemu.sh"));
        let v = qemu::parse_version(&version).expect("QEMU version");
        assert!(v >= want, "{version}: expected QEMU >= {want:?}");
        out.push((opts, version, qemu::config_for(v)));
    }
    out
}

struct Case {
    name: String,
    steps: Vec<Step>,
    start: Option<Vec<u8>>,
    pio: bool,
    /// The final store must be byte-identical (real traces).
    exact_store: bool,
}

fn trace_case(pcap: &str, start: Option<&str>, pio: bool) -> Case {
    let records = read_file(&data(pcap)).unwrap();
    Case {
        name: format!("{pcap} ({})", if pio { "PIO" } else { "DMA" }),
        steps: steps_from_records(&records),
        start: start.map(|s| std::fs::read(data(s)).unwrap()),
        pio,
        exact_store: true,
    }
}

fn run_case(case: &Case, opts: &QemuOptions) -> QemuRun {
    let opts = QemuOptions {
        pio: case.pio,
        ..opts.clone()
    };
    let run = qemu::run(&case.steps, case.start.as_deref(), &opts)
        .unwrap_or_else(|e| panic!("{}: {e}", case.name));
    assert_eq!(run.flags & 1, u32::from(case.pio), "{}: FLAGS", case.name);
    run
}

/// Runs the cases two at a time (QEMU is single-threaded under TCG; the
/// machine has 2 cores) and compares each.
fn run_cases(cases: &[Case], opts: &QemuOptions, config: &Config) -> Vec<(String, Report)> {
    let next = Mutex::new(0usize);
    let results = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let i = {
                    let mut n = next.lock().unwrap();
                    *n += 1;
                    *n - 1
                };
                let Some(case) = cases.get(i) else { break };
                let started = Instant::now();
                let run = run_case(case, opts);
                let report = compare(&run, case.start.as_deref(), config.clone(), None)
                    .unwrap_or_else(|e| panic!("{}: {e}", case.name));
                if case.exact_store {
                    assert!(
                        report.store.identical_text,
                        "{}: QEMU's final store differs from ours: {:?}",
                        case.name, report.store.differences
                    );
                }
                say(&format!(
                    "  {}: {} requests, {} identical, {} listed, {} unlisted, {} boots ({:.1?})\n",
                    case.name,
                    report.requests,
                    report.identical,
                    report.listed.values().sum::<usize>(),
                    report.unlisted(),
                    run.boots,
                    started.elapsed()
                ));
                results.lock().unwrap().push((i, case.name.clone(), report));
            });
        }
    });
    let mut r = results.into_inner().unwrap();
    r.sort_by_key(|(i, _, _)| *i);
    r.into_iter().map(|(_, n, rep)| (n, rep)).collect()
}

fn total(reports: &[(String, Report)]) -> Report {
    let mut t = Report::default();
    for (_, r) in reports {
        t.absorb(r);
    }
    t
}

#[test]
fn conformance_against_qemu() {
    for (opts, version, config) in qemus() {
        conformance(&opts, &version, &config);
    }
}

fn conformance(opts: &QemuOptions, version: &str, config: &Config) {
    let started = Instant::now();
    say(&format!("QEMU conformance: {version}\n"));
    let mut cases = Vec::new();
    for pio in [false, true] {
        cases.push(trace_case("ovmf-2boots-empty.pcap.gz", None, pio));
        cases.push(trace_case("fedora-boot-1.pcap.gz", None, pio));
        cases.push(trace_case(
            "fedora-boot-2.pcap.gz",
            Some("fedora-boot-1.json"),
            pio,
        ));
    }
    for seed in 1..=RANDOM_SEEDS {
        let pio = seed % 2 == 0;
        let mut steps = random::sequence_for(seed, RANDOM_STEPS, pio);
        if !version.contains("version 10.") {
            // QEMU 11.1.3 aborts on a policy without name bytes
            // (docs/compat.md "QEMU 11.1").
            steps.retain(
                |s| !matches!(s, Step::Request(r) if compat::qemu11_crash_trigger(r).is_some()),
            );
        }
        cases.push(Case {
            name: format!("random seed {seed} ({})", if pio { "PIO" } else { "DMA" }),
            steps,
            start: None,
            pio,
            exact_store: false,
        });
    }
    let reports = run_cases(&cases, opts, config);
    let t = total(&reports);
    say(&format!(
        "QEMU conformance total, {version} ({} runs, {:.1?}):\n{}",
        reports.len(),
        started.elapsed(),
        t.summary()
    ));
    assert!(t.requests > 0);
    assert_eq!(
        t.unlisted(),
        0,
        "unlisted differences from QEMU:\n{}",
        t.summary()
    );
}

/// The comparison has teeth: one wrong reply (GET_PAYLOAD_SIZE answering
/// one byte less) makes it report an unlisted difference.
#[test]
fn a_broken_reply_fails_the_comparison() {
    let Some((opts, _, config)) = qemus().into_iter().next() else {
        return;
    };
    let case = trace_case("ovmf-2boots-empty.pcap.gz", None, false);
    let run = run_case(&case, &opts);
    let clean = compare(&run, None, config.clone(), None).unwrap();
    assert_eq!(clean.unlisted(), 0, "{}", clean.summary());

    let tamper = |_: usize, request: &[u8], resp: &mut uefi_vars::MmResponse| {
        let is_payload_size = request.get(24..32) == Some(&11u64.to_le_bytes()[..]);
        if let (true, Some(reply)) = (is_payload_size, resp.reply.as_mut()) {
            reply[40] = reply[40].wrapping_sub(1);
        }
    };
    let broken = compare(&run, None, config, Some(&tamper)).unwrap();
    say(&format!(
        "deliberately broken GET_PAYLOAD_SIZE reply:\n{}",
        broken.summary()
    ));
    assert!(broken.unlisted() >= 1);
    assert!(broken
        .differences
        .iter()
        .all(|d| d.compat.is_none() && d.what.contains("GET_PAYLOAD_SIZE")));
}

/// A broken status in a reply that a listed difference would otherwise
/// cover is still caught: EXIT_BOOT_SERVICE answered with an error.
#[test]
fn a_wrong_status_is_not_excused() {
    let Some((opts, _, config)) = qemus().into_iter().next() else {
        return;
    };
    let case = trace_case("fedora-boot-1.pcap.gz", None, false);
    let run = run_case(&case, &opts);
    let tamper = |_: usize, request: &[u8], resp: &mut uefi_vars::MmResponse| {
        if request.get(24..32) == Some(&6u64.to_le_bytes()[..]) {
            if let Some(reply) = resp.reply.as_mut() {
                reply[32..40].copy_from_slice(&EfiStatus::DEVICE_ERROR.0.to_le_bytes());
            }
        }
    };
    let broken = compare(&run, None, config, Some(&tamper)).unwrap();
    assert!(broken.unlisted() >= 1, "{}", broken.summary());
}

/// Every id the classifier can name is a row of docs/compat.md.
#[test]
fn compat_ids_are_documented() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/compat.md"))
            .unwrap();
    for id in compat::IDS {
        assert!(
            doc.contains(&format!("| {id} |")),
            "compat id {id} is not a row of docs/compat.md"
        );
    }
}
