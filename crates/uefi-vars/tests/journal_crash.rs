//! SIGKILL at random points while a process writes through the journal
//! (appends, and compactions: the threshold is small so that kills land in
//! those too). After each kill the store must load as the state after the
//! last acknowledged write, or after the one in flight; never torn, never
//! an error. The writer is this test binary run again (`journal_child`).
//!
//! Iterations: 12, or `UEFI_VARS_JOURNAL_KILLS` to run it longer.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use uefi_vars::guid::GLOBAL_VARIABLE;
use uefi_vars::name::VarName;
use uefi_vars::persist::{JsonFile, MemoryStorage, Storage};
use uefi_vars::variable::{attr, Variable};
use uefi_vars::{Config, EfiStatus, Service};

const NV_BS_RT: u32 = attr::NON_VOLATILE | attr::BOOTSERVICE_ACCESS | attr::RUNTIME_ACCESS;
const STORE_ENV: &str = "UEFI_VARS_JOURNAL_CHILD_STORE";
const START_ENV: &str = "UEFI_VARS_JOURNAL_CHILD_START";

/// Write number `i`: a set of one of seven names (sizes vary), every
/// eleventh a delete (of a name that may not exist: then nothing happens).
fn op(svc: &mut Service, i: u64) -> EfiStatus {
    let name = VarName::from(format!("Crash{}", i % 7).as_str());
    let data = if i % 11 == 0 {
        Vec::new()
    } else {
        let len = 1 + (i.wrapping_mul(37) % 300) as usize;
        let mut d = vec![(i % 251) as u8; len];
        d[0] = 1;
        d.extend_from_slice(&i.to_le_bytes());
        d
    };
    svc.set_variable(GLOBAL_VARIABLE, name, NV_BS_RT, &data)
}

/// The child: writes from START on, printing each acknowledged number.
#[test]
#[ignore = "run by sigkill_during_journaled_writes"]
fn journal_child() {
    let (Ok(store), Ok(start)) = (std::env::var(STORE_ENV), std::env::var(START_ENV)) else {
        return;
    };
    let start: u64 = start.parse().unwrap();
    let file = JsonFile::new(&store).with_compact_threshold(6000);
    let mut svc = Service::open(Config::default(), Box::new(file)).unwrap();
    let mut out = std::io::stdout().lock();
    for i in start.. {
        assert_eq!(op(&mut svc, i), EfiStatus::SUCCESS, "write {i}");
        assert!(svc.take_errors().is_empty());
        writeln!(out, "ack {i}").unwrap();
        out.flush().unwrap();
    }
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn nv(svc: &Service) -> Vec<Variable> {
    svc.store()
        .iter()
        .filter(|v| v.is_non_volatile())
        .cloned()
        .collect()
}

fn run_child(store: &Path, start: u64, delay: Duration) -> Option<u64> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "journal_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(STORE_ENV, store)
        .env(START_ENV, start.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut last = None;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // The first ack follows libtest's "test journal_child ... "
            // on the same line (no newline before the test's output).
            if let Some((_, n)) = line.rsplit_once("ack ") {
                last = Some(n.parse::<u64>().unwrap());
            }
        }
        last
    });
    std::thread::sleep(delay);
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "the child ended on its own: {status}");
    reader.join().unwrap()
}

#[test]
fn sigkill_during_journaled_writes() {
    let t0 = Instant::now();
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("seed {seed:#x}");
    let mut rng = Rng(seed);
    let iterations: usize = std::env::var("UEFI_VARS_JOURNAL_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("vars.json");
    // The model: the same writes through an in-memory store.
    let mut model = Service::open(Config::default(), Box::new(MemoryStorage::new())).unwrap();
    let mut next = 1u64;
    for iteration in 0..iterations {
        let delay = Duration::from_millis(20 + rng.below(200));
        let acked = run_child(&store, next, delay);
        let last = acked.unwrap_or(next - 1);
        for i in next..=last {
            assert_eq!(op(&mut model, i), EfiStatus::SUCCESS);
        }
        let mut file = JsonFile::new(&store);
        let loaded = file
            .load()
            .unwrap_or_else(|e| panic!("iteration {iteration} (seed {seed:#x}): {e}"));
        if loaded == nv(&model) {
            next = last + 1;
        } else {
            // The write in flight made it.
            assert_eq!(op(&mut model, last + 1), EfiStatus::SUCCESS);
            assert_eq!(
                loaded,
                nv(&model),
                "iteration {iteration} (seed {seed:#x}): neither the acknowledged state nor the next"
            );
            next = last + 2;
        }
        eprintln!(
            "iteration {iteration}: killed after {delay:?}, last acknowledged write {last}, journal {} bytes{}",
            std::fs::metadata(dir.path().join("vars.json.journal")).map_or(0, |m| m.len()),
            match file.take_warning() {
                Some(w) => format!(", {w}"),
                None => String::new(),
            }
        );
    }
    assert!(next > 20, "too few writes acknowledged in all ({next})");
    eprintln!(
        "{iterations} kills, {} writes, {:?}",
        next - 1,
        t0.elapsed()
    );
}
