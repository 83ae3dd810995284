//! The real OVMF boot pair (tests/data/ovmf-2boots-empty.pcap.gz: 1,746
//! requests, two resets) replayed in process with the store in memory, in
//! a JSON file with the journal, and in a JSON file rewritten per change,
//! interleaved run by run, each run ending with a clean stop (compaction).
//! Alongside, the floor the disk sets: the journal's fdatasyncs per boot
//! pair times the median fdatasync of one 4 KiB block overwritten in a
//! preallocated file (the cheapest durable write there is: no allocation,
//! no size change, no metadata), and the same for a ~300-byte append at the
//! end of a growing file (what a journal record is).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use uefi_vars::pcap::Record;
use uefi_vars::persist::fault::{FaultyFileOps, FileOp};
use uefi_vars::persist::{JsonFile, MemoryStorage, Storage, SyncMode};
use uefi_vars::replay::replay;
use uefi_vars::{Config, Service};

use super::{median, time_us, workspace_file};

const RUNS: usize = 15;

/// Milliseconds for one boot pair on `storage`.
fn boot_pair(records: &[Record], storage: Box<dyn Storage>) -> f64 {
    let (us, ()) = time_us(|| {
        let mut svc = Service::new(Config::default(), storage).unwrap();
        let r = replay(&mut svc, records);
        assert_eq!(r.identical, 1746);
        assert!(r.mismatches.is_empty() && r.host_errors.is_empty());
        svc.compact().unwrap();
    });
    us / 1e3
}

fn journaled(
    dir: &std::path::Path,
    name: &str,
    sync: SyncMode,
    ops: &FaultyFileOps,
) -> Box<dyn Storage> {
    Box::new(
        JsonFile::new(dir.join(name))
            .with_sync(sync)
            .with_file_ops(Arc::new(ops.clone())),
    )
}

/// Calls of each kind `ops` saw: (fdatasync, fsync incl. directories,
/// renames, appends).
fn counts(ops: &FaultyFileOps) -> [usize; 4] {
    let log = ops.log();
    let n = |k: &[FileOp]| log.iter().filter(|op| k.contains(op)).count();
    [
        n(&[FileOp::SyncData]),
        n(&[FileOp::SyncFile, FileOp::SyncDir]),
        n(&[FileOp::Rename]),
        n(&[FileOp::Append]),
    ]
}

/// A zero-filled, synced file of 64 KiB whose blocks are allocated.
fn preallocated(dir: &std::path::Path) -> File {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(dir.join("floor"))
        .unwrap();
    f.write_all_at(&[0u8; 65536], 0).unwrap();
    f.sync_all().unwrap();
    f
}

/// Median µs of `count` writes of `block` at offset `at(i)`, each followed
/// by fdatasync.
fn sync_cost(f: &File, count: usize, block: &[u8], at: impl Fn(usize) -> u64) -> Vec<f64> {
    (0..count)
        .map(|i| {
            time_us(|| {
                f.write_all_at(block, at(i)).unwrap();
                f.sync_data().unwrap();
            })
            .0
        })
        .collect()
}

pub fn run() {
    let records =
        uefi_vars::pcap::read_file(&workspace_file("tests/data/ovmf-2boots-empty.pcap.gz"))
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (mut mem, mut journal, mut full) = (vec![], vec![], vec![]);
    let (mut floor4k, mut append) = (vec![], vec![]);
    let mut journal_counts = [0; 4];
    let mut full_counts = [0; 4];
    let block = [0xa5u8; 4096];
    let record = [0x5au8; 300];
    for run in 0..RUNS {
        mem.push(boot_pair(&records, Box::new(MemoryStorage::new())));
        let ops = FaultyFileOps::new();
        let name = format!("j{run}.json");
        journal.push(boot_pair(
            &records,
            journaled(dir.path(), &name, SyncMode::Journal, &ops),
        ));
        journal_counts = counts(&ops);
        let ops = FaultyFileOps::new();
        let name = format!("f{run}.json");
        full.push(boot_pair(
            &records,
            journaled(dir.path(), &name, SyncMode::FullRewrite, &ops),
        ));
        full_counts = counts(&ops);
        let f = preallocated(dir.path());
        floor4k.extend(sync_cost(&f, 40, &block, |i| (i % 16) as u64 * 4096));
        let g = File::create(dir.path().join(format!("append{run}"))).unwrap();
        append.extend(sync_cost(&g, 40, &record, |i| i as u64 * 300));
    }
    let (m, j, f) = (median(&mut mem), median(&mut journal), median(&mut full));
    let (s4k, sapp) = (median(&mut floor4k), median(&mut append));
    println!();
    println!(
        "| storage | ms per boot pair | vs in memory | fdatasync | fsync | rename | appends |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    println!("| in memory | {m:.2} | 1.0× | 0 | 0 | 0 | 0 |");
    for (label, t, c) in [
        ("JSON file + journal", j, journal_counts),
        ("JSON file, full rewrite per change", f, full_counts),
    ] {
        println!(
            "| {label} | {t:.2} | {:.1}× | {} | {} | {} | {} |",
            t / m,
            c[0],
            c[1],
            c[2],
            c[3]
        );
    }
    let syncs = journal_counts[0] + journal_counts[1];
    let floor = m + syncs as f64 * s4k / 1e3;
    println!();
    println!("| the disk's floor | value |");
    println!("| --- | --- |");
    println!("| fdatasync after overwriting one 4 KiB block of a preallocated file (median) | {s4k:.0} µs |");
    println!("| fdatasync after appending 300 bytes to a growing file (median) | {sapp:.0} µs |");
    println!(
        "| in memory + the journal's {syncs} syncs at the 4 KiB floor | {floor:.2} ms ({:.1}× in memory) |",
        floor / m
    );
    println!(
        "| 3× in memory leaves for all syncs | {:.2} ms ({:.0} µs per sync) |",
        2.0 * m,
        2.0 * m * 1e3 / syncs.max(1) as f64
    );
}
