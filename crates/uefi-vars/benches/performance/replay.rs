//! In-process replay of a capture file against virtfw-varstore's
//! `replay_pcap`, alternately: both open the gzip capture and replay it
//! record by record (ours with in-memory storage and with no storage
//! writes at all is the same here: the in-memory store is the service's).

use uefi_vars::pcap::open_file;
use uefi_vars::replay::replay_stream;
use uefi_vars::{Config, Service};
use virtfw_varstore::pcap::parse::VarstorePcapParser;
use virtfw_varstore::pcap::replay::replay_pcap;
use virtfw_varstore::store::EfiVarStore;

use super::{cpu_us, median, workspace_file};

fn ours(path: &std::path::Path, config: &Config) {
    let mut svc = Service::in_memory(config.clone());
    let r = replay_stream(&mut svc, open_file(path).unwrap()).unwrap();
    assert!(r.mismatches.is_empty(), "{:?}", r.mismatches.first());
}

/// The replay alone, the capture already decoded.
fn ours_decoded(records: &[uefi_vars::pcap::Record], config: &Config) {
    let mut svc = Service::in_memory(config.clone());
    let r = uefi_vars::replay::replay(&mut svc, records);
    assert!(r.mismatches.is_empty(), "{:?}", r.mismatches.first());
}

/// Reading and decompressing the capture alone.
fn read_only(path: &std::path::Path) -> usize {
    open_file(path)
        .unwrap()
        .map(|r| r.unwrap().payload.len())
        .sum()
}

fn peer(path: &std::path::Path) {
    let mut store = EfiVarStore::new();
    let parser = VarstorePcapParser::new_file(path.to_str().unwrap()).unwrap();
    replay_pcap(parser, &mut store);
}

pub fn run() {
    println!();
    println!("| capture (in process) | uefi-vars CPU ms | virtfw-varstore replay_pcap CPU ms | ratio | of ours: reading the capture / replay alone |");
    println!("| --- | --- | --- | --- | --- |");
    let qemu_10 = Config::default()
        .with_legacy_payload_size(true)
        .with_legacy_storage_accounting(true);
    for (capture, config) in [
        ("ovmf-2boots-empty.pcap.gz", Config::default()),
        ("fedora-boot-1.pcap.gz", qemu_10),
    ] {
        let path = workspace_file(&format!("tests/data/{capture}"));
        let records = uefi_vars::pcap::read_file(&path).unwrap();
        let (mut o, mut p, mut r, mut d) = (vec![], vec![], vec![], vec![]);
        for _ in 0..30 {
            p.push(cpu_us(|| peer(&path)).0 / 1e3);
            r.push(cpu_us(|| read_only(&path)).0 / 1e3);
            d.push(cpu_us(|| ours_decoded(&records, &config)).0 / 1e3);
            o.push(cpu_us(|| ours(&path, &config)).0 / 1e3);
        }
        let (o, p) = (median(&mut o), median(&mut p));
        let (r, d) = (median(&mut r), median(&mut d));
        println!(
            "| {capture} | {o:.2} | {p:.2} | {:.2}× faster | {r:.2} / {d:.2} |",
            p / o
        );
    }
}
