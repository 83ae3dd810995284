//! The requests the project's own tests send, collected and prepared for
//! QEMU.
//!
//! The library's and the device crate's tests build their services through
//! `uefi_vars::testing` (their `tests/common`), which installs a capture
//! observer (`uefi_vars::service::capture::CaptureObserver`) when the test
//! binary finds `UEFI_VARS_CAPTURE_DIR` set: a pcap, a sidecar with the
//! configuration, and the starting store per service. The library itself
//! reads no environment variable. This module builds the test binaries of
//! the given packages (`cargo test --no-run`), runs each with that
//! variable set ([`collect_from_tests`]), reads the
//! captures back ([`load_dir`]) and decides for each ([`plan`]) whether QEMU
//! can reproduce it and which part:
//!
//! - the configuration must be one QEMU's device can have: 64-bit guest,
//!   the default policy limits, name-size limit and record overhead, no
//!   enforced MaximumVariableSize, policy DISABLE not allowed, the OpenSSL
//!   backend; the storage size, `force-secure-boot` and
//!   `disable-custom-mode` become device properties, and GET_PAYLOAD_SIZE
//!   is answered as the QEMU under test does (`legacy_payload_size`);
//! - the capture must start with the reset of its creation (a service that
//!   skipped it, `Service::open`, is not what QEMU powers on);
//! - it is kept up to the first host-side change the requests do not carry
//!   (a host `set_variable`, a snapshot restore, another PKCS#7 backend, a
//!   host error such as a failed store write, the capture's size limit);
//!   buffer-size changes are kept: the guest sets BUFFER_SIZE as well;
//! - replaying the kept part through a fresh service with the capture's own
//!   configuration must give back the replies the test saw; it is cut
//!   before the first request where it does not (the capture missed
//!   something), and such cuts are counted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use uefi_vars::pcap::{read_file, Record, RecordKind};
use uefi_vars::persist::MemoryStorage;
use uefi_vars::service::capture::{CaptureInfo, Event, EVENT_RECORD};
use uefi_vars::testing::CAPTURE_DIR_VAR;
use uefi_vars::{Config, Service};

use crate::compare::{compare, Report};
use crate::qemu::{self, QemuOptions};
use crate::script::{steps_from_records, Step, BUFFER_SIZE};
use crate::OracleError;

/// A test binary built by `cargo test --no-run`.
#[derive(Clone, Debug)]
pub struct TestBinary {
    /// `package/target` (e.g. `uefi-vars/variable_protocol`; the library's
    /// unit tests are `uefi-vars/lib`).
    pub name: String,
    pub path: PathBuf,
    /// The package directory (the tests' working directory under cargo).
    pub package_dir: PathBuf,
}

/// One test binary run with capturing on.
#[derive(Clone, Debug)]
pub struct TestRun {
    pub binary: String,
    /// The binary's exit status was success (its tests passed).
    pub passed: bool,
    pub elapsed: Duration,
}

/// Builds the test binaries of `packages` (lib, integration tests) in the
/// workspace at `workspace` with `cargo`, and lists them.
pub fn build_test_binaries(
    cargo: &Path,
    workspace: &Path,
    packages: &[&str],
) -> Result<Vec<TestBinary>, OracleError> {
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args([
            "test",
            "--no-run",
            "--message-format=json-render-diagnostics",
        ])
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"));
    for p in packages {
        cmd.args(["-p", p]);
    }
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| OracleError::Qemu(format!("cannot run {}: {e}", cargo.display())))?;
    if !out.status.success() {
        return Err(OracleError::Qemu(format!(
            "cargo test --no-run failed: {}",
            out.status
        )));
    }
    let mut bins = Vec::new();
    for line in out.stdout.split(|&b| b == b'\n') {
        let Ok(msg) = serde_json::from_slice::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] != "compiler-artifact" || msg["profile"]["test"] != true {
            continue;
        }
        let (Some(exe), Some(target), Some(manifest)) = (
            msg["executable"].as_str(),
            msg["target"]["name"].as_str(),
            msg["manifest_path"].as_str(),
        ) else {
            continue;
        };
        let package_dir = Path::new(manifest)
            .parent()
            .unwrap_or(workspace)
            .to_path_buf();
        let package = package_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let kinds = msg["target"]["kind"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let is_lib = kinds.iter().any(|k| k == "lib");
        let name = format!("{package}/{}", if is_lib { "lib" } else { target });
        bins.push(TestBinary {
            name,
            path: PathBuf::from(exe),
            package_dir,
        });
    }
    bins.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(bins)
}

/// Seed for proptest in the test binaries, so the collected requests are
/// the same on every run (`PROPTEST_RNG_SEED` in the environment wins).
pub const PROPTEST_SEED: &str = "20240905";

/// Runs `bin` with captures going to `dir` (its own test output is
/// discarded; a failing test still leaves its captures).
pub fn run_test_binary(bin: &TestBinary, dir: &Path) -> Result<TestRun, OracleError> {
    std::fs::create_dir_all(dir).map_err(|e| OracleError::io(dir, e))?;
    let started = Instant::now();
    let seed = std::env::var("PROPTEST_RNG_SEED").unwrap_or_else(|_| PROPTEST_SEED.to_string());
    let status = Command::new(&bin.path)
        .current_dir(&bin.package_dir)
        .env(CAPTURE_DIR_VAR, dir)
        .env("CARGO_MANIFEST_DIR", &bin.package_dir)
        .env("PROPTEST_RNG_SEED", seed)
        .arg("-q")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| OracleError::Qemu(format!("cannot run {}: {e}", bin.path.display())))?;
    Ok(TestRun {
        binary: bin.name.clone(),
        passed: status.success(),
        elapsed: started.elapsed(),
    })
}

/// Builds and runs the test binaries of `packages`, two at a time (a
/// binary's tests run in parallel but often end with one long test), each
/// capturing into its own subdirectory of `dir` (named after the binary).
pub fn collect_from_tests(
    cargo: &Path,
    workspace: &Path,
    packages: &[&str],
    dir: &Path,
) -> Result<Vec<TestRun>, OracleError> {
    let bins = build_test_binaries(cargo, workspace, packages)?;
    let _ = std::fs::remove_dir_all(dir);
    let next = Mutex::new(0usize);
    let runs = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let i = {
                    let Ok(mut n) = next.lock() else { break };
                    *n += 1;
                    *n - 1
                };
                let Some(bin) = bins.get(i) else { break };
                let r = run_test_binary(bin, &dir.join(bin.name.replace('/', "__")));
                if let Ok(mut runs) = runs.lock() {
                    runs.push((i, r));
                }
            });
        }
    });
    let mut runs = runs.into_inner().unwrap_or_default();
    runs.sort_by_key(|(i, _)| *i);
    runs.into_iter().map(|(_, r)| r).collect()
}

/// One capture as read back.
#[derive(Clone, Debug)]
pub struct Capture {
    /// Path of the pcap without `.pcap`, relative to the collection root.
    pub name: String,
    pub info: CaptureInfo,
    pub records: Vec<Record>,
    pub start_store: Option<Vec<u8>>,
}

/// Reads every capture under `dir` (recursively), sorted by name.
pub fn load_dir(dir: &Path) -> Result<Vec<Capture>, OracleError> {
    let mut out = Vec::new();
    load_into(dir, dir, &mut out)?;
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn load_into(root: &Path, dir: &Path, out: &mut Vec<Capture>) -> Result<(), OracleError> {
    let entries = std::fs::read_dir(dir).map_err(|e| OracleError::io(dir, e))?;
    for entry in entries {
        let path = entry.map_err(|e| OracleError::io(dir, e))?.path();
        if path.is_dir() {
            load_into(root, &path, out)?;
            continue;
        }
        if path.extension().is_none_or(|e| e != "pcap") {
            continue;
        }
        let sidecar = path.with_extension("json");
        let text = std::fs::read(&sidecar).map_err(|e| OracleError::io(&sidecar, e))?;
        let info: CaptureInfo = serde_json::from_slice(&text)
            .map_err(|e| OracleError::Guest(format!("{}: {e}", sidecar.display())))?;
        let start_store = match &info.start_store {
            Some(name) => {
                let p = path.with_file_name(name);
                Some(std::fs::read(&p).map_err(|e| OracleError::io(&p, e))?)
            }
            None => None,
        };
        let records = read_file(&path)?;
        let name = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .with_extension("")
            .display()
            .to_string();
        out.push(Capture {
            name,
            info,
            records,
            start_store,
        });
    }
    Ok(())
}

/// Why a capture is not replayed through QEMU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Skip {
    /// An IA32 guest (QEMU's device serves x64 guests).
    WordSize,
    /// Non-default policy limits (QEMU has none).
    PolicyLimits,
    /// Non-default name-size limit (QEMU has none).
    NameSizeLimit,
    /// An enforced MaximumVariableSize (QEMU only reports it).
    MaxVariableSize,
    /// Another per-variable overhead than QEMU's 96 bytes.
    RecordOverhead,
    /// Policy DISABLE allowed (QEMU does not implement it).
    PolicyDisable,
    /// No PKCS#7 backend (QEMU verifies signatures).
    NoCrypto,
    /// The service was opened without the power-on reset.
    NoPowerOnReset,
    /// No request before the first host-side change.
    NoRequests,
}

impl Skip {
    pub fn label(self) -> &'static str {
        match self {
            Skip::WordSize => "IA32 guest",
            Skip::PolicyLimits => "policy limits",
            Skip::NameSizeLimit => "name-size limit",
            Skip::MaxVariableSize => "enforced MaximumVariableSize",
            Skip::RecordOverhead => "record overhead",
            Skip::PolicyDisable => "policy DISABLE allowed",
            Skip::NoCrypto => "no PKCS#7 backend",
            Skip::NoPowerOnReset => "no power-on reset",
            Skip::NoRequests => "no request before a host-side change",
        }
    }
}

/// A capture prepared for QEMU.
#[derive(Clone, Debug)]
pub struct Planned {
    pub name: String,
    /// The test that sent it (thread name).
    pub test: String,
    /// The steps for the guest (the power-on reset left out: QEMU starts
    /// with one).
    pub steps: Vec<Step>,
    pub start_store: Option<Vec<u8>>,
    /// Our configuration for the comparison.
    pub config: Config,
    /// QEMU's `size`, `force-secure-boot`, `disable-custom-mode`.
    pub size: u64,
    pub force_secure_boot: bool,
    pub disable_custom_mode: bool,
    /// Requests in the capture, and how many of them are kept.
    pub captured_requests: usize,
    pub requests: usize,
    /// Why the capture was cut short, if it was.
    pub cut: Option<&'static str>,
    /// The self-check found a reply the replay does not reproduce.
    pub diverged: bool,
    /// Largest request kept, in bytes.
    pub max_request: usize,
    /// The guest changes BUFFER_SIZE.
    pub buffer_size_changes: bool,
}

impl Planned {
    /// Whether the PIO runs can take it: no buffer-size changes (the PIO
    /// window is moved in whole dwords, edk2 only uses page-sized buffers),
    /// no request over [`crate::random::PIO_MAX_REQUEST`] (QEMU 10.0.2
    /// corrupts its heap on large PIO transfers, docs/compat.md).
    pub fn pio_ok(&self) -> bool {
        !self.buffer_size_changes && self.max_request <= crate::random::PIO_MAX_REQUEST
    }

    /// A key under which identical replays compare identically.
    pub fn dedup_key(&self) -> (Vec<Step>, Option<Vec<u8>>, String) {
        (
            self.steps.clone(),
            self.start_store.clone(),
            format!(
                "{} {} {} {:?}",
                self.size, self.force_secure_boot, self.disable_custom_mode, self.config
            ),
        )
    }
}

/// Decides whether QEMU can reproduce `c` and prepares it; `legacy` is the
/// QEMU's GET_PAYLOAD_SIZE behaviour (`Config::legacy_payload_size`).
pub fn plan(c: &Capture, legacy: bool) -> Result<Planned, Skip> {
    let info = &c.info;
    let default = Config::default();
    let mut config = match info.config() {
        Some(cfg) if cfg.layout == uefi_vars::codec::Layout::X64 => cfg,
        _ => return Err(Skip::WordSize),
    };
    if config.policy_limits != default.policy_limits {
        return Err(Skip::PolicyLimits);
    }
    if config.max_name_size != default.max_name_size {
        return Err(Skip::NameSizeLimit);
    }
    if config.max_variable_size.is_some() {
        return Err(Skip::MaxVariableSize);
    }
    if config.record_overhead != default.record_overhead {
        return Err(Skip::RecordOverhead);
    }
    if config.allow_policy_disable {
        return Err(Skip::PolicyDisable);
    }
    if info.crypto != "openssl" {
        return Err(Skip::NoCrypto);
    }
    if c.records.first().map(|r| r.kind) != Some(RecordKind::Reset) {
        return Err(Skip::NoPowerOnReset);
    }
    let captured_requests = c
        .records
        .iter()
        .filter(|r| r.kind == RecordKind::Request)
        .count();

    // Up to the first host-side change the requests do not carry.
    let mut end = c.records.len();
    let mut cut = None;
    for (i, r) in c.records.iter().enumerate() {
        if r.kind != RecordKind::Other(EVENT_RECORD) {
            continue;
        }
        let why = match Event::decode(&r.payload) {
            Some(Event::BufferSize(_)) => continue,
            Some(Event::HostWrite) => "host set_variable",
            Some(Event::Restore) => "snapshot restore",
            Some(Event::Crypto) => "PKCS#7 backend replaced",
            Some(Event::HostError) => "host error",
            Some(Event::Truncated) => "capture size limit",
            // An event this oracle does not know may change anything.
            Some(_) | None => "unknown event",
        };
        end = i;
        cut = Some(why);
        break;
    }
    let mut kept = &c.records[..end];

    // The replay must give the replies the test saw.
    let mut diverged = false;
    if let Some(at) = self_check(kept, c.start_store.as_deref(), config.clone()) {
        kept = &kept[..at];
        cut = Some("replay differs from the capture");
        diverged = true;
    }

    let mut steps = steps_from_records(kept);
    // QEMU powers on with a reset: the capture's first record is that one.
    if steps.first() == Some(&Step::Reset) {
        steps.remove(0);
    }
    let requests = steps
        .iter()
        .filter(|s| matches!(s, Step::Request(_)))
        .count();
    if requests == 0 {
        return Err(Skip::NoRequests);
    }
    let max_request = steps
        .iter()
        .map(|s| match s {
            Step::Request(r) => r.len(),
            _ => 0,
        })
        .max()
        .unwrap_or(0);
    let buffer_size_changes = steps
        .iter()
        .any(|s| matches!(s, Step::BufferSize(n) if *n != BUFFER_SIZE as u32));
    let size = config.max_storage;
    let (force_secure_boot, disable_custom_mode) =
        (config.force_secure_boot, config.disable_custom_mode);
    config.legacy_payload_size = legacy;
    config.legacy_storage_accounting = legacy;
    Ok(Planned {
        name: c.name.clone(),
        test: info.thread.clone(),
        steps,
        start_store: c.start_store.clone(),
        config,
        size,
        force_secure_boot,
        disable_custom_mode,
        captured_requests,
        requests,
        cut,
        diverged,
        max_request,
        buffer_size_changes,
    })
}

/// Replays `records` through a fresh service with `config`; the index of
/// the first request record whose reply (or its absence) differs from the
/// capture's, if any.
fn self_check(records: &[Record], start: Option<&[u8]>, config: Config) -> Option<usize> {
    let storage = match start {
        Some(t) => MemoryStorage::from_text(String::from_utf8_lossy(t).into_owned()),
        None => MemoryStorage::new(),
    };
    let Ok(mut svc) = Service::new(config, Box::new(storage)) else {
        return Some(0);
    };
    // The first record is the reset `Service::new` just did (a second one
    // is not a no-op: the Secure Boot state variables move to the end).
    let mut i = usize::from(records.first().is_some_and(|r| r.kind == RecordKind::Reset));
    while i < records.len() {
        let r = &records[i];
        match r.kind {
            RecordKind::Reset if svc.reset().is_err() => return Some(i),
            RecordKind::Other(EVENT_RECORD) => {
                if let Some(Event::BufferSize(n)) = Event::decode(&r.payload) {
                    svc.set_buffer_size(n);
                }
            }
            RecordKind::Request => {
                let captured = records.get(i + 1).filter(|n| n.kind == RecordKind::Reply);
                // A request cut by the pcap snap length cannot be checked.
                if !r.truncated {
                    let ours = svc.communicate(&r.payload);
                    let same = match (&ours.reply, captured) {
                        (None, None) => true,
                        (Some(a), Some(b)) => {
                            a.get(..b.payload.len()) == Some(&b.payload[..])
                                && (b.truncated || a.len() == b.payload.len())
                        }
                        _ => false,
                    };
                    if !same {
                        return Some(i);
                    }
                } else {
                    svc.communicate(&r.payload);
                }
                if captured.is_some() {
                    i += 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Counts for the report: captures per reason they were not replayed.
pub fn skip_counts(skips: &[Skip]) -> BTreeMap<Skip, usize> {
    let mut m = BTreeMap::new();
    for s in skips {
        *m.entry(*s).or_default() += 1;
    }
    m
}

/// One capture run through QEMU and compared with our service.
#[derive(Clone, Debug)]
pub struct Compared {
    pub name: String,
    pub test: String,
    pub pio: bool,
    pub report: Report,
    pub boots: u32,
    pub elapsed: Duration,
    /// Requests left out because QEMU crashed on them (known QEMU 10.0.2
    /// crashes), described.
    pub crashes: Vec<String>,
}

/// Runs each `(capture, pio)` job through QEMU (`workers` at a time) and
/// compares; `on_done` sees every result as it comes. Results are in job
/// order; a QEMU failure is an `Err` naming the capture.
pub fn compare_planned(
    jobs: &[(&Planned, bool)],
    opts: &QemuOptions,
    workers: usize,
    on_done: &(dyn Fn(&Compared) + Sync),
) -> Vec<Result<Compared, String>> {
    let next = Mutex::new(0usize);
    let results = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..workers.max(1) {
            s.spawn(|| loop {
                let i = {
                    let Ok(mut n) = next.lock() else { break };
                    *n += 1;
                    *n - 1
                };
                let Some(&(p, pio)) = jobs.get(i) else { break };
                let result = compare_one(p, pio, opts);
                if let Ok(c) = &result {
                    on_done(c);
                }
                if let Ok(mut r) = results.lock() {
                    r.push((i, result));
                }
            });
        }
    });
    let mut r = results.into_inner().unwrap_or_default();
    r.sort_by_key(|(i, _)| *i);
    r.into_iter().map(|(_, c)| c).collect()
}

/// Crashes of QEMU a run may work around (each drops one request).
const MAX_CRASHES: usize = 4;

fn compare_one(p: &Planned, pio: bool, opts: &QemuOptions) -> Result<Compared, String> {
    let mode = if pio { "PIO" } else { "DMA" };
    let fail = |e: String| format!("{} ({mode}, {}): {e}", p.name, p.test);
    let opts = QemuOptions {
        pio,
        size: Some(p.size),
        force_secure_boot: p.force_secure_boot,
        disable_custom_mode: p.disable_custom_mode,
        ..opts.clone()
    };
    let started = Instant::now();
    let mut steps = p.steps.clone();
    let mut crashes = Vec::new();
    let mut retried = false;
    let run = loop {
        match qemu::run(&steps, p.start_store.as_deref(), &opts) {
            Ok(run) => break run,
            Err(OracleError::Crashed { step, message }) if crashes.len() < MAX_CRASHES => {
                // Heap corruption does not crash every time: once more as
                // it was, then without the request that caused it.
                if !retried {
                    retried = true;
                    continue;
                }
                retried = false;
                let Some((i, why)) = crash_trigger(&steps, step, p) else {
                    return Err(fail(format!("QEMU crashed at step {step}: {message}")));
                };
                crashes.push(format!(
                    "{} [{}] ({mode}) step {i}: {why}; {}",
                    p.name,
                    p.test,
                    match steps.get(i) {
                        Some(Step::Request(r)) => crate::compat::brief(r, None),
                        _ => String::new(),
                    }
                ));
                steps.remove(i);
            }
            Err(e) => return Err(fail(e.to_string())),
        }
    };
    if run.flags & 1 != u32::from(pio) {
        return Err(fail(format!("FLAGS {:#x}", run.flags)));
    }
    let report = compare(&run, p.start_store.as_deref(), p.config.clone(), None)
        .map_err(|e| fail(e.to_string()))?;
    Ok(Compared {
        name: p.name.clone(),
        test: p.test.clone(),
        pio,
        report,
        boots: run.boots,
        elapsed: started.elapsed(),
        crashes,
    })
}

/// The last request at or before `crashed_at` that QEMU 10.0.2 is known to
/// crash on ([`crate::compat::qemu10_crash_trigger`]), found by running our
/// service over the steps.
fn crash_trigger(steps: &[Step], crashed_at: usize, p: &Planned) -> Option<(usize, &'static str)> {
    let storage = match &p.start_store {
        Some(t) => MemoryStorage::from_text(String::from_utf8_lossy(t).into_owned()),
        None => MemoryStorage::new(),
    };
    let mut svc = Service::new(p.config.clone(), Box::new(storage)).ok()?;
    let mut found = None;
    for (i, step) in steps.iter().enumerate().take(crashed_at.saturating_add(1)) {
        match step {
            Step::Reset => {
                svc.reset().ok()?;
            }
            Step::BufferSize(n) => svc.set_buffer_size(*n),
            Step::Request(r) => {
                let ours = svc.communicate(r);
                if let Some(why) = crate::compat::qemu10_crash_trigger(r, &ours) {
                    found = Some((i, why));
                }
            }
        }
    }
    found
}

/// What [`replay_captures`] did.
#[derive(Debug, Default)]
pub struct SuiteOutcome {
    /// Captures read.
    pub collected: usize,
    /// Requests in them.
    pub collected_requests: usize,
    /// Captures QEMU cannot reproduce, per reason.
    pub skipped: BTreeMap<Skip, usize>,
    /// Captures replayed (after skipping) and how many of them were
    /// identical to another one (replayed once).
    pub replayable: usize,
    pub duplicates: usize,
    /// Replayed captures cut short, per reason.
    pub cut: BTreeMap<&'static str, usize>,
    /// Captures whose replay did not reproduce the test's replies.
    pub diverged: Vec<String>,
    /// Per capture and mode.
    pub results: Vec<Compared>,
    /// QEMU runs that failed.
    pub failures: Vec<String>,
    /// Requests left out because QEMU 10.0.2 crashed on them.
    pub crashes: Vec<String>,
    pub total: Report,
}

/// Plans every capture in `captures`, replays the unique ones through QEMU
/// in DMA mode and every `pio_every`-th of those the PIO window can take
/// also in PIO mode (0: none), and adds everything up.
pub fn replay_captures(
    captures: &[Capture],
    legacy: bool,
    opts: &QemuOptions,
    pio_every: usize,
    workers: usize,
    on_done: &(dyn Fn(&Compared) + Sync),
) -> SuiteOutcome {
    let mut out = SuiteOutcome {
        collected: captures.len(),
        collected_requests: captures
            .iter()
            .map(|c| {
                c.records
                    .iter()
                    .filter(|r| r.kind == RecordKind::Request)
                    .count()
            })
            .sum(),
        ..SuiteOutcome::default()
    };
    let mut planned = Vec::new();
    let mut skips = Vec::new();
    for c in captures {
        match plan(c, legacy) {
            Ok(p) => planned.push(p),
            Err(s) => skips.push(s),
        }
    }
    out.skipped = skip_counts(&skips);
    out.replayable = planned.len();
    let mut seen = std::collections::HashSet::new();
    let mut unique = Vec::new();
    for p in &planned {
        if let Some(why) = p.cut {
            *out.cut.entry(why).or_default() += 1;
        }
        if p.diverged {
            out.diverged.push(format!("{} ({})", p.name, p.test));
        }
        if seen.insert(p.dedup_key()) {
            unique.push(p);
        } else {
            out.duplicates += 1;
        }
    }
    // Longest first, so the two workers finish together.
    unique.sort_by_key(|p| std::cmp::Reverse(p.steps.len()));
    let mut jobs: Vec<(&Planned, bool)> = unique.iter().map(|p| (*p, false)).collect();
    let mut pio_candidates: Vec<&Planned> = unique.iter().copied().filter(|p| p.pio_ok()).collect();
    // By test and content: file names depend on the order the tests' threads
    // ran in, and the PIO subset must be the same on every run.
    let content = |p: &Planned| {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        p.dedup_key().hash(&mut h);
        h.finish()
    };
    pio_candidates.sort_by_cached_key(|p| (p.test.clone(), p.steps.len(), content(p)));
    if pio_every > 0 {
        jobs.extend(pio_candidates.iter().step_by(pio_every).map(|p| (*p, true)));
    }
    for r in compare_planned(&jobs, opts, workers, on_done) {
        match r {
            Ok(c) => {
                out.total.absorb(&c.report);
                out.crashes.extend(c.crashes.iter().cloned());
                out.results.push(c);
            }
            Err(e) => out.failures.push(e),
        }
    }
    out
}

impl SuiteOutcome {
    /// The lines the suite prints before [`Report::summary`].
    pub fn header(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "captures collected: {} ({} requests)",
            self.collected, self.collected_requests
        );
        let skipped: usize = self.skipped.values().sum();
        let _ = writeln!(s, "not reproducible by QEMU: {skipped}");
        for (k, n) in &self.skipped {
            let _ = writeln!(s, "  {}: {n}", k.label());
        }
        let _ = writeln!(
            s,
            "replayed: {} ({} identical to another capture, run once)",
            self.replayable, self.duplicates
        );
        for (k, n) in &self.cut {
            let _ = writeln!(s, "  cut short at {k}: {n}");
        }
        let dma = self.results.iter().filter(|c| !c.pio).count();
        let pio = self.results.len() - dma;
        let _ = writeln!(
            s,
            "QEMU runs: {dma} DMA, {pio} PIO, {} failed",
            self.failures.len()
        );
        let _ = writeln!(
            s,
            "requests left out (QEMU 10.0.2 crashed on them): {}",
            self.crashes.len()
        );
        for c in &self.crashes {
            let _ = writeln!(s, "  {c}");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uefi_vars::codec::{request, Layout};

    fn rec(kind: RecordKind, payload: Vec<u8>) -> Record {
        Record {
            orig_len: 4 + payload.len() as u32,
            kind,
            payload,
            ts_sec: 0,
            ts_usec: 0,
            truncated: false,
        }
    }

    /// A capture as the library writes it: each request with our reply.
    fn capture(config: &Config, steps: &[Result<Vec<u8>, Event>]) -> Capture {
        let mut svc = Service::in_memory(config.clone());
        let mut records = vec![rec(RecordKind::Reset, Vec::new())];
        for s in steps {
            match s {
                Ok(req) => {
                    records.push(rec(RecordKind::Request, req.clone()));
                    if let Some(r) = svc.communicate(req).reply {
                        records.push(rec(RecordKind::Reply, r));
                    }
                }
                Err(e) => {
                    if let Event::BufferSize(n) = e {
                        svc.set_buffer_size(*n);
                    }
                    records.push(rec(RecordKind::Other(EVENT_RECORD), e.encode().to_vec()));
                }
            }
        }
        let info: CaptureInfo = serde_json::from_value(serde_json::json!({
            "version": 1, "pid": 1, "thread": "t",
            "max_storage": config.max_storage,
            "max_variable_size": config.max_variable_size,
            "max_name_size": config.max_name_size,
            "record_overhead": config.record_overhead,
            "word_size": config.layout.uintn(),
            "max_policies": config.policy_limits.max_policies,
            "max_policy_bytes": config.policy_limits.max_total_bytes,
            "allow_policy_disable": config.allow_policy_disable,
            "force_secure_boot": config.force_secure_boot,
            "disable_custom_mode": config.disable_custom_mode,
            "legacy_payload_size": config.legacy_payload_size,
            "buffer_size": 65536, "crypto": "openssl", "start_store": null
        }))
        .unwrap();
        Capture {
            name: "c".into(),
            info,
            records,
            start_store: None,
        }
    }

    fn query() -> Vec<u8> {
        request::query_variable_info(Layout::X64, 7)
    }

    #[test]
    fn plans_up_to_the_first_host_side_change() {
        let c = capture(
            &Config::default(),
            &[
                Ok(query()),
                Err(Event::BufferSize(4096)),
                Ok(query()),
                Err(Event::HostWrite),
                Ok(query()),
            ],
        );
        let p = plan(&c, true).unwrap();
        assert_eq!(p.captured_requests, 3);
        assert_eq!(p.requests, 2);
        assert_eq!(p.cut, Some("host set_variable"));
        assert!(!p.diverged && p.buffer_size_changes && !p.pio_ok());
        assert!(p.config.legacy_payload_size);
        // the power-on reset is QEMU's own
        assert_eq!(p.steps[1], Step::BufferSize(4096));
        assert_eq!(p.steps.len(), 3);
    }

    #[test]
    fn refuses_what_qemu_cannot_be_configured_for() {
        let q = [Ok(query())];
        let ia32 = Config::default().with_layout(Layout::IA32);
        assert_eq!(
            plan(&capture(&ia32, &q), false).unwrap_err(),
            Skip::WordSize
        );
        let disable = Config::default().with_allow_policy_disable(true);
        assert_eq!(
            plan(&capture(&disable, &q), false).unwrap_err(),
            Skip::PolicyDisable
        );
        let restored = capture(&Config::default(), &[Err(Event::Restore), Ok(query())]);
        assert_eq!(plan(&restored, false).unwrap_err(), Skip::NoRequests);
        let mut opened = capture(&Config::default(), &q);
        opened.records.remove(0);
        assert_eq!(plan(&opened, false).unwrap_err(), Skip::NoPowerOnReset);
    }

    #[test]
    fn a_reply_the_replay_does_not_give_cuts_the_capture() {
        let mut c = capture(&Config::default(), &[Ok(query()), Ok(query()), Ok(query())]);
        // the second reply as if the store had held something else
        let second = c
            .records
            .iter()
            .enumerate()
            .filter(|(_, r)| r.kind == RecordKind::Reply)
            .nth(1)
            .unwrap()
            .0;
        c.records[second].payload[48] ^= 1;
        let p = plan(&c, false).unwrap();
        assert!(p.diverged);
        assert_eq!(p.requests, 1);
    }
}
