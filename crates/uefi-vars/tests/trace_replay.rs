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
    Config {
        legacy_payload_size: true,
        legacy_storage_accounting: true,
        ..Config::default()
    }
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
