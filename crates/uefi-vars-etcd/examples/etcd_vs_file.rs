//! NV write latency and a full boot replay with the store in etcd versus
//! a JSON file with its journal, in the same run, interleaved: the real
//! OVMF boot pair (1,746 requests, two resets) replayed in process, and
//! 32-byte SetVariable writes one after another. etcd members are real
//! processes on loopback (one member, and a 3-member cluster), their data
//! in the system's temporary directory like the JSON file
//! (docs/performance.md "etcd stores").
//!
//! `cargo run --release -p uefi-vars-etcd --example etcd_vs_file`

use std::time::{Duration, Instant};

use uefi_vars::name::VarName;
use uefi_vars::persist::{JsonFile, Storage};
use uefi_vars::replay::replay;
use uefi_vars::{Config, EfiStatus, Service};
use uefi_vars_etcd::testing::Cluster;
use uefi_vars_etcd::{EtcdOptions, EtcdStore, EtcdUrl};

const RUNS: usize = 7;
const WRITES: usize = 200;

fn owned(url: &str) -> Box<dyn Storage> {
    let mut s = EtcdStore::connect(&EtcdUrl::parse(url).unwrap(), EtcdOptions::default()).unwrap();
    s.own().unwrap();
    Box::new(s)
}

/// One boot pair replayed, ending with a clean stop; milliseconds.
fn boot(records: &[uefi_vars::pcap::Record], storage: Box<dyn Storage>) -> f64 {
    let start = Instant::now();
    let mut svc = Service::new(Config::default(), storage).unwrap();
    let r = replay(&mut svc, records);
    assert_eq!(r.identical, 1746);
    assert!(r.mismatches.is_empty() && r.host_errors.is_empty());
    svc.compact().unwrap();
    drop(svc);
    start.elapsed().as_secs_f64() * 1e3
}

/// Per-write latencies of WRITES SetVariable calls.
fn writes(storage: Box<dyn Storage>) -> Vec<Duration> {
    let mut svc = Service::new(Config::default(), storage).unwrap();
    let guid = uefi_vars::guid::GLOBAL_VARIABLE;
    (0..WRITES)
        .map(|i| {
            let name = VarName::from(format!("Bench{}", i % 50).as_str());
            let t = Instant::now();
            let s = svc.set_variable(guid, name, 7, &[i as u8; 32]);
            let d = t.elapsed();
            assert_eq!(s, EfiStatus::SUCCESS);
            d
        })
        .collect()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn quantile(v: &mut [Duration], q: f64) -> f64 {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * q).round() as usize;
    v[i].as_secs_f64() * 1e3
}

fn main() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/ovmf-2boots-empty.pcap.gz"
    );
    let records = uefi_vars::pcap::read_file(std::path::Path::new(path)).unwrap();
    let one = Cluster::start(1);
    let three = Cluster::start(3);
    let dir = tempfile::tempdir().unwrap();
    let names = ["JSON file + journal", "etcd, 1 member", "etcd, 3 members"];
    let mut boots: [Vec<f64>; 3] = Default::default();
    let mut lat: [Vec<Duration>; 3] = Default::default();
    for run in 0..RUNS {
        let storages = |tag: &str| -> [Box<dyn Storage>; 3] {
            [
                Box::new(JsonFile::new(dir.path().join(format!("{tag}{run}.json")))),
                owned(&one.url(&format!("{tag}{run}"))),
                owned(&three.url(&format!("{tag}{run}"))),
            ]
        };
        for (i, s) in storages("boot").into_iter().enumerate() {
            boots[i].push(boot(&records, s));
        }
        for (i, s) in storages("nv").into_iter().enumerate() {
            lat[i].extend(writes(s));
        }
    }
    println!("| store | boot pair, ms (median of {RUNS}) | vs file | NV write p50 ms | p99 ms |");
    println!("| --- | --- | --- | --- | --- |");
    let base = median(&mut boots[0].clone());
    for i in 0..3 {
        let b = median(&mut boots[i]);
        println!(
            "| {} | {b:.1} | {:.1}× | {:.2} | {:.2} |",
            names[i],
            b / base,
            quantile(&mut lat[i], 0.5),
            quantile(&mut lat[i], 0.99)
        );
    }
}
