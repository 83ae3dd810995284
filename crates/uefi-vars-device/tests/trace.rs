//! Real firmware captures played through the register interface, the way
//! edk2's VirtMmCommunicationDxe drives the device: every reply must be the
//! one QEMU gave, byte for byte, in DMA mode and in PIO mode.

mod common;

use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use common::*;
use uefi_vars::pcap::{read_records, PcapWriter, Record, RecordKind};
use uefi_vars::persist::{json, non_volatile, MemoryStorage};
use uefi_vars::{Config, Service};
use uefi_vars_device::{SparseRam, UefiVarsDevice};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data")
        .join(name)
}

fn records(name: &str) -> Vec<Record> {
    uefi_vars::pcap::read_file(&data(name)).unwrap()
}

fn service(config: Config, start: Option<&str>) -> Service {
    let storage = match start {
        Some(j) => MemoryStorage::from_text(std::fs::read_to_string(data(j)).unwrap()),
        None => MemoryStorage::new(),
    };
    common::new(config, Box::new(storage)).unwrap()
}

/// The Fedora captures come from QEMU 10.0, which answered GET_PAYLOAD_SIZE
/// with the whole buffer size and left policies out of the storage
/// accounting.
fn qemu_10_0() -> Config {
    Config::default()
        .with_legacy_payload_size(true)
        .with_legacy_storage_accounting(true)
}

#[derive(Clone, Copy, Debug)]
enum Mode {
    Dma,
    /// PIO through the window with this access width (edk2 uses 4).
    Pio(usize),
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Played {
    resets: usize,
    requests: usize,
    identical: usize,
}

/// Plays `trace` through a device over fake guest memory. A RESET record is
/// a machine reset, after which the firmware initialises the device again.
/// Every reply read back from the guest's buffer must equal the captured
/// reply, and every CMD_STS must equal what the bare service says for the
/// same request.
fn play(
    trace: &[Record],
    config: Config,
    start: Option<&str>,
    mode: Mode,
    capture: Option<PcapWriter<Shared>>,
) -> (Played, Service) {
    let mut reference = service(config.clone(), start);
    let use_pio = matches!(mode, Mode::Pio(_));
    let mut dev = UefiVarsDevice::new(service(config, start), guest_ram()).with_use_pio(use_pio);
    if let Some(c) = capture {
        dev.set_capture(Some(Box::new(c)));
    }
    let mut played = Played::default();
    let mut initialised = false;
    let mut pending: Option<(usize, Vec<u8>)> = None;
    for (i, rec) in trace.iter().enumerate() {
        match rec.kind {
            RecordKind::Reset => {
                played.resets += 1;
                dev.reset().unwrap();
                reference.reset().unwrap();
                initialised = false;
            }
            RecordKind::Request => {
                if !initialised {
                    init(&mut dev, false);
                    initialised = true;
                }
                played.requests += 1;
                let expect = reference.communicate(&rec.payload);
                let outcome = match mode {
                    Mode::Dma => dma_communicate(&mut dev, &rec.payload),
                    Mode::Pio(width) => pio_communicate(&mut dev, &rec.payload, width),
                };
                let Outcome::Done(sts, reply) = outcome else {
                    panic!("record {i}: {outcome:?}")
                };
                assert_eq!(sts, expect.status.code(), "record {i}: CMD_STS");
                pending = Some((i, reply));
            }
            RecordKind::Reply => {
                let (i, reply) = pending.take().expect("reply without request");
                assert_eq!(reply.len(), rec.payload.len(), "record {i}: reply length");
                if let Some(off) = reply.iter().zip(&rec.payload).position(|(a, b)| a != b) {
                    panic!("record {i} ({mode:?}): reply differs at offset {off}");
                }
                played.identical += 1;
            }
            _ => {}
        }
    }
    assert!(dev.take_host_errors().is_empty());
    let (svc, _ram): (Service, SparseRam) = dev.into_parts();
    (played, svc)
}

fn final_store(svc: &Service) -> String {
    let vars: Vec<_> = svc.store().iter().collect();
    json::encode(&non_volatile(&vars)).unwrap()
}

fn final_store_json(svc: &Service) -> serde_json::Value {
    serde_json::from_str(&final_store(svc)).unwrap()
}

fn expected_json(name: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(data(name)).unwrap()).unwrap()
}

const OVMF: &str = "ovmf-2boots-empty.pcap.gz";
const OVMF_END: &str = "ovmf-2boots-empty.end.json";

fn ovmf_expected() -> Played {
    Played {
        resets: 2,
        requests: 1746,
        identical: 1746,
    }
}

#[test]
fn ovmf_two_boots_dma() {
    let (played, svc) = play(&records(OVMF), Config::default(), None, Mode::Dma, None);
    assert_eq!(played, ovmf_expected());
    let expected = std::fs::read_to_string(data(OVMF_END)).unwrap();
    assert_eq!(final_store(&svc), expected);
}

#[test]
fn ovmf_two_boots_pio_dwords_as_edk2() {
    let (played, svc) = play(&records(OVMF), Config::default(), None, Mode::Pio(4), None);
    assert_eq!(played, ovmf_expected());
    let expected = std::fs::read_to_string(data(OVMF_END)).unwrap();
    assert_eq!(final_store(&svc), expected);
}

/// The widths QEMU mangles: here a 1-byte access moves one byte and an
/// 8-byte access eight.
#[test]
fn ovmf_two_boots_pio_other_widths() {
    let trace = records(OVMF);
    for width in [1usize, 2, 8] {
        let (played, _) = play(&trace, Config::default(), None, Mode::Pio(width), None);
        assert_eq!(played, ovmf_expected(), "width {width}");
    }
}

#[test]
fn fedora_boots_dma_and_pio() {
    for mode in [Mode::Dma, Mode::Pio(4)] {
        let (played, svc) = play(
            &records("fedora-boot-1.pcap.gz"),
            qemu_10_0(),
            None,
            mode,
            None,
        );
        assert_eq!(played.requests, 905, "{mode:?}");
        assert_eq!(played.identical, 905, "{mode:?}");
        assert_eq!(final_store_json(&svc), expected_json("fedora-boot-1.json"));

        let (played, svc) = play(
            &records("fedora-boot-2.pcap.gz"),
            qemu_10_0(),
            Some("fedora-boot-1.json"),
            mode,
            None,
        );
        assert_eq!(played.requests, 953, "{mode:?}");
        assert_eq!(played.identical, 953, "{mode:?}");
        assert_eq!(final_store_json(&svc), expected_json("fedora-boot-2.json"));
    }
}

#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The device's capture of a replayed boot is the original capture again
/// (record kinds and payloads; timestamps differ).
#[test]
fn capture_of_a_replay_reproduces_the_trace() {
    let trace = records(OVMF);
    let sink = Shared::default();
    let writer = PcapWriter::new(sink.clone()).unwrap();
    let (played, _) = play(&trace, Config::default(), None, Mode::Pio(4), Some(writer));
    assert_eq!(played, ovmf_expected());
    let captured = read_records(&sink.0.lock().unwrap()).unwrap();
    assert_eq!(captured.len(), trace.len());
    for (i, (got, want)) in captured.iter().zip(&trace).enumerate() {
        assert_eq!(got.kind, want.kind, "record {i}");
        assert_eq!(got.payload, want.payload, "record {i}");
        assert_eq!(got.orig_len, want.orig_len, "record {i}");
    }
}
