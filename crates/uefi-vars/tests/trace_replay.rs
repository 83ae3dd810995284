//! Real firmware traffic replayed through the service: every reply must be
//! byte-identical to what QEMU answered, and the final store must equal the
//! store QEMU wrote.

mod common;

use uefi_vars::persist::{json, MemoryStorage};
use uefi_vars::replay::{replay, ReplayReport};
use uefi_vars::{Config, Service};

fn data(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data")
        .join(name)
}

fn run(pcap: &str, start: Option<&str>) -> (ReplayReport, Service) {
    run_with(pcap, start, Config::default())
}

/// The Fedora captures come from QEMU 10.0, which answered GET_PAYLOAD_SIZE
/// with the whole buffer size.
fn qemu_10_0() -> Config {
    // The Fedora captures come from a QEMU 10: GET_PAYLOAD_SIZE answers the
    // whole buffer, and the QueryVariableInfo of fedora-boot-1 (record
    // 1749) leaves OVMF's policies out of the accounting (QEMU 11.1 counts
    // them: 476 bytes less; docs/compat.md "Storage accounting").
    Config::default()
        .with_legacy_payload_size(true)
        .with_legacy_storage_accounting(true)
}

fn run_with(pcap: &str, start: Option<&str>, config: Config) -> (ReplayReport, Service) {
    let records = uefi_vars::pcap::read_file(&data(pcap)).unwrap();
    let storage = match start {
        Some(j) => MemoryStorage::from_text(std::fs::read_to_string(data(j)).unwrap()),
        None => MemoryStorage::new(),
    };
    let mut svc = common::new(config, Box::new(storage)).unwrap();
    let report = replay(&mut svc, &records);
    (report, svc)
}

fn print_mismatches(r: &ReplayReport) {
    for m in r.mismatches.iter().take(20) {
        eprintln!(
            "record {} {}: offsets {:?}",
            m.record,
            m.what,
            &m.offsets()[..m.offsets().len().min(16)]
        );
        eprintln!("  req {:02x?}", &m.request[..m.request.len().min(120)]);
        eprintln!("  exp {:02x?}", &m.expected[..m.expected.len().min(120)]);
        eprintln!(
            "  got {:02x?}",
            m.actual.as_ref().map(|a| &a[..a.len().min(120)])
        );
    }
}

fn final_store_text(svc: &Service) -> String {
    let vars: Vec<_> = svc.store().iter().collect();
    json::encode(&uefi_vars::persist::non_volatile(&vars)).unwrap()
}

fn final_store_json(svc: &Service) -> serde_json::Value {
    serde_json::from_str(&final_store_text(svc)).unwrap()
}

fn expected_json(name: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(data(name)).unwrap()).unwrap()
}

#[test]
fn ovmf_two_boots_from_empty_store() {
    let (r, svc) = run("ovmf-2boots-empty.pcap.gz", None);
    print_mismatches(&r);
    assert_eq!(r.requests, 1746);
    assert_eq!(r.resets, 2);
    assert_eq!(r.mismatches.len(), 0);
    assert_eq!(r.identical, 1746);
    assert!(r.host_errors.is_empty(), "{:?}", r.host_errors);
    // QEMU wrote this file; our encoder must produce it byte for byte.
    let expected = std::fs::read_to_string(data("ovmf-2boots-empty.end.json")).unwrap();
    assert_eq!(final_store_text(&svc), expected);
}

#[test]
fn fedora_boot_1() {
    let (r, svc) = run_with("fedora-boot-1.pcap.gz", None, qemu_10_0());
    print_mismatches(&r);
    assert_eq!(r.requests, 905);
    assert_eq!(r.mismatches.len(), 0);
    assert_eq!(final_store_json(&svc), expected_json("fedora-boot-1.json"));
}

#[test]
fn fedora_boot_2() {
    let (r, svc) = run_with(
        "fedora-boot-2.pcap.gz",
        Some("fedora-boot-1.json"),
        qemu_10_0(),
    );
    print_mismatches(&r);
    assert_eq!(r.requests, 953);
    assert_eq!(r.mismatches.len(), 0);
    assert_eq!(final_store_json(&svc), expected_json("fedora-boot-2.json"));
}

/// Every capture again, read record by record (`pcap::open_file`,
/// `replay_stream`) into a service whose store is a JSON file on disk with
/// the journal on (small threshold, so compactions happen mid-boot too):
/// the same replies byte for byte, every reader of the store sees the
/// service's variables at the end, and after a clean stop the JSON file
/// alone is exactly what the in-memory run gives.
#[test]
fn every_capture_streamed_with_the_journal_on() {
    use uefi_vars::persist::{JsonFile, Storage};
    let cases = [
        ("ovmf-2boots-empty.pcap.gz", None, Config::default(), 1746),
        ("fedora-boot-1.pcap.gz", None, qemu_10_0(), 905),
        (
            "fedora-boot-2.pcap.gz",
            Some("fedora-boot-1.json"),
            qemu_10_0(),
            953,
        ),
    ];
    for (pcap, start, config, requests) in cases {
        let (in_memory, mem_svc) = run_with(pcap, start, config.clone());
        for threshold in [None, Some(2048)] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("vars.json");
            if let Some(j) = start {
                std::fs::copy(data(j), &path).unwrap();
            }
            let mut file = JsonFile::new(&path);
            if let Some(t) = threshold {
                file = file.with_compact_threshold(t);
            }
            let mut svc = Service::new(config.clone(), Box::new(file)).unwrap();
            let records = uefi_vars::pcap::open_file(&data(pcap)).unwrap();
            let r = uefi_vars::replay::replay_stream(&mut svc, records).unwrap();
            print_mismatches(&r);
            assert_eq!((r.requests, r.identical), (requests, requests), "{pcap}");
            assert_eq!(r, in_memory, "{pcap}");
            let live: Vec<_> = svc
                .store()
                .iter()
                .filter(|v| v.is_non_volatile())
                .cloned()
                .collect();
            assert_eq!(JsonFile::new(&path).load().unwrap(), live, "{pcap}");
            svc.compact().unwrap();
            assert_eq!(
                std::fs::read_to_string(&path).unwrap(),
                final_store_text(&mem_svc),
                "{pcap}"
            );
        }
    }
}
