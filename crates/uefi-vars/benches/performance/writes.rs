//! NV write cost versus store size on the real filesystem: time, bytes
//! handed to write(2) and syncs (fsync, fdatasync, directory fsync) per
//! 32-byte SetVariable, for a store of n variables in a JSON file, with the
//! journal, with the full rewrite and with no file, interleaved in batches
//! of 20 so that all see the same machine load (a sync(1), untimed, before
//! each file batch so neither pays for the other's dirty pages); times are
//! the median batch.

use std::sync::Arc;
use std::time::Instant;

use uefi_vars::guid::GLOBAL_VARIABLE;
use uefi_vars::name::VarName;
use uefi_vars::persist::fault::{FaultyFileOps, FileOp};
use uefi_vars::persist::{json, JsonFile, MemoryStorage, SyncMode};
use uefi_vars::variable::{attr, Variable};
use uefi_vars::{Config, EfiStatus, Service};

use super::median;

const NV_BS_RT: u32 = attr::NON_VOLATILE | attr::BOOTSERVICE_ACCESS | attr::RUNTIME_ACCESS;

/// Bytes this process has passed to write(2) so far (`wchar`).
fn written() -> u64 {
    let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    io.lines()
        .find_map(|l| l.strip_prefix("wchar: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn syncs(ops: &FaultyFileOps) -> usize {
    ops.log()
        .iter()
        .filter(|op| matches!(op, FileOp::SyncFile | FileOp::SyncDir | FileOp::SyncData))
        .count()
}

struct Subject {
    _dir: tempfile::TempDir,
    ops: FaultyFileOps,
    svc: Service,
    batches: Vec<f64>,
    bytes: u64,
    syncs: usize,
    writes: u64,
}

fn subject(n: usize, sync: Option<SyncMode>) -> Subject {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vars.json");
    let vars: Vec<Variable> = (0..n)
        .map(|i| {
            Variable::new(
                GLOBAL_VARIABLE,
                VarName::from(format!("Var{i:05}").as_str()),
                NV_BS_RT,
                vec![0x5a; 32],
            )
        })
        .collect();
    let refs: Vec<&Variable> = vars.iter().collect();
    std::fs::write(&path, json::encode(&refs).unwrap()).unwrap();
    let ops = FaultyFileOps::new();
    let config = Config::default().with_max_storage(1 << 30);
    let svc = match sync {
        Some(sync) => {
            let file = JsonFile::new(&path)
                .with_sync(sync)
                .with_file_ops(Arc::new(ops.clone()));
            Service::new(config, Box::new(file)).unwrap()
        }
        None => {
            let text = std::fs::read_to_string(&path).unwrap();
            Service::new(config, Box::new(MemoryStorage::from_text(text))).unwrap()
        }
    };
    Subject {
        _dir: dir,
        ops,
        svc,
        batches: Vec::new(),
        bytes: 0,
        syncs: 0,
        writes: 0,
    }
}

fn batch(s: &mut Subject, first: usize, count: usize) {
    let syncs_before = syncs(&s.ops);
    let bytes_before = written();
    let start = Instant::now();
    for i in first..first + count {
        let mut data = vec![0xa5; 32];
        data[0] = i as u8;
        let name = VarName::from(format!("Hot{:02}", i % 8).as_str());
        let status = s.svc.set_variable(GLOBAL_VARIABLE, name, NV_BS_RT, &data);
        assert_eq!(status, EfiStatus::SUCCESS);
    }
    s.batches
        .push(start.elapsed().as_secs_f64() * 1e6 / count as f64);
    s.bytes += written().saturating_sub(bytes_before);
    s.syncs += syncs(&s.ops).saturating_sub(syncs_before);
    s.writes += count as u64;
}

/// sync(1): every dirty page of the machine written back.
fn flush_all() {
    let _ = std::process::Command::new("sync").status();
}

pub fn run() {
    let sizes = [10usize, 1000, 5000];
    println!();
    println!("| n | mode | µs/write (median batch) | bytes/write | syncs/write | speed-up |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for n in sizes {
        let mut full = subject(n, Some(SyncMode::FullRewrite));
        let mut journal = subject(n, Some(SyncMode::Journal));
        let mut memory = subject(n, None);
        let per_batch = 20;
        let rounds = if n >= 5000 { 10 } else { 25 };
        for r in 0..rounds {
            // ext4 commits all pending data at an fsync: flush what the
            // other subject left dirty first (untimed), so neither pays
            // for the other.
            flush_all();
            batch(&mut full, r * per_batch, per_batch);
            flush_all();
            batch(&mut journal, r * per_batch, per_batch);
            batch(&mut memory, r * per_batch, per_batch);
        }
        let f = median(&mut full.batches);
        let j = median(&mut journal.batches);
        let m = median(&mut memory.batches);
        for (name, s, t, up) in [
            ("full-rewrite", &full, f, String::new()),
            ("journal", &journal, j, format!("{:.1}×", f / j)),
            ("in memory (no file)", &memory, m, String::new()),
        ] {
            println!(
                "| {n} | {name} | {t:.1} | {} | {:.2} | {up} |",
                s.bytes / s.writes,
                s.syncs as f64 / s.writes as f64
            );
        }
    }
}
