//! A real boot pair (the OVMF capture, 1,746 requests, two resets) replayed
//! in process with the store in memory, in a JSON file with the journal,
//! and in a JSON file rewritten per change, interleaved run by run; medians
//! of 15 runs, each ending with a clean stop (compaction). Issue 11,
//! docs/performance.md.
//!
//! `cargo run --release -p uefi-vars --example boot_replay_cost`

use std::time::Instant;

use uefi_vars::persist::{JsonFile, MemoryStorage, Storage, SyncMode};
use uefi_vars::replay::replay;
use uefi_vars::{Config, Service};

fn run(records: &[uefi_vars::pcap::Record], storage: Box<dyn Storage>) -> f64 {
    let start = Instant::now();
    let mut svc = Service::new(Config::default(), storage).unwrap();
    let r = replay(&mut svc, records);
    assert_eq!(r.identical, 1746);
    assert!(r.mismatches.is_empty() && r.host_errors.is_empty());
    svc.compact().unwrap();
    drop(svc);
    start.elapsed().as_secs_f64() * 1e3
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/ovmf-2boots-empty.pcap.gz"
    );
    let records = uefi_vars::pcap::read_file(std::path::Path::new(path)).unwrap();
    let (mut mem, mut journal, mut full) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..15 {
        mem.push(run(&records, Box::new(MemoryStorage::new())));
        let dir = tempfile::tempdir().unwrap();
        let file = JsonFile::new(dir.path().join("j.json"));
        journal.push(run(&records, Box::new(file)));
        let file = JsonFile::new(dir.path().join("f.json")).with_sync(SyncMode::FullRewrite);
        full.push(run(&records, Box::new(file)));
    }
    let m = median(&mut mem);
    let j = median(&mut journal);
    let f = median(&mut full);
    println!("| storage | ms per boot pair (median of 15) | vs in-memory |");
    println!("| --- | --- | --- |");
    println!("| in memory | {m:.2} | 1.0× |");
    println!("| JSON file + journal | {j:.2} | {:.1}× |", j / m);
    println!(
        "| JSON file, full rewrite per change | {f:.2} | {:.1}× |",
        f / m
    );
}
