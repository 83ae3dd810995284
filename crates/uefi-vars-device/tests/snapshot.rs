//! Device snapshots: the real OVMF trace driven through the registers as
//! edk2 does it, with the device (registers, PIO buffer and offset, and the
//! service behind it) snapshotted and restored into a new device between
//! guest accesses — in the middle of initialisation, between the request
//! being put in guest RAM and DMA_MM, and between two PIO window accesses in
//! both directions. Every value the guest reads must be the one an
//! uninterrupted device gives, every reply the captured one, and the final
//! state the same.

mod common;

use std::path::PathBuf;

use common::{reference_crc32c, DMA_BUFFER};
use proptest::prelude::*;
use uefi_vars::pcap::{Record, RecordKind};
use uefi_vars::persist::{json, non_volatile, MemoryStorage};
use uefi_vars::service::snapshot::SnapshotError;
use uefi_vars::variable::Variable;
use uefi_vars::{Config, Service};
use uefi_vars_device::snapshot::{FORMAT_VERSION, MAGIC};
use uefi_vars_device::{regs, DeviceSnapshotError, DmaMemory, SparseRam, UefiVarsDevice};

type Dev = UefiVarsDevice<Service, SparseRam>;

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data")
        .join(name)
}

const OVMF: &str = "ovmf-2boots-empty.pcap.gz";
const OVMF_END: &str = "ovmf-2boots-empty.end.json";
const OVMF_REQUESTS: usize = 1746;

fn ovmf() -> Vec<Record> {
    uefi_vars::pcap::read_file(&data(OVMF)).unwrap()
}

fn new_device(use_pio: bool) -> Dev {
    let svc = common::new(Config::default(), Box::new(MemoryStorage::new())).unwrap();
    UefiVarsDevice::new(svc, common::guest_ram()).with_use_pio(use_pio)
}

/// What a migration does: snapshot the device, carry guest RAM over (the
/// VMM's job), restore into a new device whose service starts empty.
fn migrate(dev: &Dev) -> Dev {
    let blob = dev.snapshot();
    let ram = dev.memory().clone();
    let mut new = UefiVarsDevice::new(common::in_memory(Config::default()), ram);
    new.restore_into(&blob).unwrap();
    assert_eq!(new.snapshot(), blob, "snapshot of the restored device");
    assert_eq!(new.registers(), dev.registers());
    new
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Dma,
    /// PIO through the window with this access width.
    Pio(usize),
}

/// The test guest: edk2's driver sequence, logging every value it reads,
/// with a migration opportunity between any two register accesses.
struct Guest<F: Fn(u64) -> bool> {
    dev: Dev,
    mode: Mode,
    /// Every value the guest read, in order.
    log: Vec<u64>,
    /// Whether to migrate at opportunity n.
    migrate_at: F,
    opportunities: u64,
    migrations: usize,
    mid_transfer: usize,
    in_transfer: bool,
}

impl<F: Fn(u64) -> bool> Guest<F> {
    fn new(mode: Mode, migrate_at: F) -> Self {
        Guest {
            dev: new_device(matches!(mode, Mode::Pio(_))),
            mode,
            log: Vec::new(),
            migrate_at,
            opportunities: 0,
            migrations: 0,
            mid_transfer: 0,
            in_transfer: false,
        }
    }

    fn point(&mut self) {
        self.opportunities += 1;
        if (self.migrate_at)(self.opportunities) {
            self.migrate_now();
        }
    }

    fn migrate_now(&mut self) {
        self.dev = migrate(&self.dev);
        self.migrations += 1;
        if self.in_transfer {
            self.mid_transfer += 1;
        }
    }

    fn rd(&mut self, off: u64, width: usize) -> u64 {
        self.point();
        let v = common::rd(&mut self.dev, off, width);
        self.log.push(v);
        v
    }

    fn wr(&mut self, off: u64, width: usize, value: u64) {
        self.point();
        common::wr(&mut self.dev, off, width, value);
    }

    fn command(&mut self, cmd: u16) -> u16 {
        self.wr(regs::CMD_STS, 2, u64::from(cmd));
        let sts = self.rd(regs::CMD_STS, 2) as u16;
        assert_ne!(sts, regs::STS_BUSY);
        sts
    }

    /// edk2's VirtMmHwInit.
    fn init(&mut self) {
        assert_eq!(self.rd(regs::MAGIC, 2), 0x0EF1);
        assert_eq!(self.command(regs::CMD_RESET), regs::STS_SUCCESS);
        self.wr(regs::BUFFER_SIZE, 4, 0x10000);
        let flags = self.rd(regs::FLAGS, 4);
        assert_eq!(flags & 1 != 0, matches!(self.mode, Mode::Pio(_)));
        if self.mode == Mode::Dma {
            self.wr(regs::DMA_BUFFER_ADDR_LO, 4, DMA_BUFFER & 0xFFFF_FFFF);
            self.wr(regs::DMA_BUFFER_ADDR_HI, 4, DMA_BUFFER >> 32);
        }
    }

    /// One MM communication; returns CMD_STS and the guest's buffer.
    fn communicate(&mut self, request: &[u8]) -> (u16, Vec<u8>) {
        match self.mode {
            Mode::Dma => {
                self.point();
                self.dev.memory_mut().write_at(DMA_BUFFER, request).unwrap();
                let sts = self.command(regs::CMD_DMA_MM);
                self.point();
                let mut out = vec![0u8; request.len()];
                self.dev.memory().read_at(DMA_BUFFER, &mut out).unwrap();
                (sts, out)
            }
            Mode::Pio(width) => {
                let mut buffer = request.to_vec();
                buffer.resize(request.len().div_ceil(width) * width, 0xA5);
                self.pio_transfer(&mut buffer, width, true);
                let sts = self.command(regs::CMD_PIO_MM);
                self.pio_transfer(&mut buffer, width, false);
                buffer.truncate(request.len());
                (sts, buffer)
            }
        }
    }

    /// edk2's VirtMmHwPioTransfer: ZERO_OFFSET, the units, the CRC check.
    fn pio_transfer(&mut self, buffer: &mut [u8], width: usize, to_device: bool) {
        assert_eq!(self.command(regs::CMD_PIO_ZERO_OFFSET), regs::STS_SUCCESS);
        self.in_transfer = true;
        for unit in buffer.chunks_mut(width) {
            self.point();
            if to_device {
                self.dev.write(regs::PIO_BUFFER_TRANSFER, unit);
            } else {
                self.dev.read(regs::PIO_BUFFER_TRANSFER, unit);
            }
        }
        let crc = self.rd(regs::PIO_BUFFER_CRC32C, 4) as u32;
        self.in_transfer = false;
        assert_eq!(crc, reference_crc32c(buffer), "PIO CRC-32C");
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Played {
    requests: usize,
    identical: usize,
}

/// Plays the trace; a RESET record is a machine reset, followed by the
/// firmware initialising the device again. Migrates right after every
/// machine reset too (`migrate_after_reset`).
fn play<F: Fn(u64) -> bool>(
    trace: &[Record],
    guest: &mut Guest<F>,
    migrate_after_reset: bool,
) -> Played {
    let mut played = Played::default();
    let mut initialised = false;
    let mut pending: Option<(usize, Vec<u8>)> = None;
    for (i, rec) in trace.iter().enumerate() {
        match rec.kind {
            RecordKind::Reset => {
                guest.dev.reset().unwrap();
                if migrate_after_reset {
                    guest.migrate_now();
                }
                initialised = false;
            }
            RecordKind::Request => {
                if !initialised {
                    guest.init();
                    initialised = true;
                }
                played.requests += 1;
                let (sts, reply) = guest.communicate(&rec.payload);
                guest.log.push(u64::from(sts));
                pending = Some((i, reply));
            }
            RecordKind::Reply => {
                let (i, reply) = pending.take().expect("reply without request");
                assert!(
                    reply == rec.payload,
                    "record {i}: reply differs from the capture"
                );
                played.identical += 1;
            }
            _ => {}
        }
    }
    assert!(guest.dev.take_host_errors().is_empty());
    played
}

fn final_store(svc: &Service) -> String {
    let vars: Vec<&Variable> = svc.store().iter().collect();
    json::encode(&non_volatile(&vars)).unwrap()
}

/// Runs the trace uninterrupted and with migrations; everything the guest
/// read must agree, and so must the final device state.
fn compare(mode: Mode, period: u64) -> (usize, usize) {
    let trace = ovmf();
    let mut plain = Guest::new(mode, |_| false);
    let played = play(&trace, &mut plain, false);
    assert_eq!(
        played,
        Played {
            requests: OVMF_REQUESTS,
            identical: OVMF_REQUESTS
        }
    );

    let mut moved = Guest::new(mode, move |n| n % period == period / 2);
    let played = play(&trace, &mut moved, true);
    assert_eq!(played.identical, OVMF_REQUESTS, "{mode:?}");
    assert!(
        moved.log == plain.log,
        "{mode:?}: the guest read something else"
    );
    assert_eq!(moved.opportunities, plain.opportunities);
    assert_eq!(moved.dev.snapshot(), plain.dev.snapshot(), "{mode:?}");
    let expected = std::fs::read_to_string(data(OVMF_END)).unwrap();
    assert_eq!(final_store(moved.dev.backend()), expected);
    (moved.migrations, moved.mid_transfer)
}

#[test]
fn dma_mode_migrations_give_identical_replies() {
    // every 7th access: mid-init, between the request landing in RAM and
    // DMA_MM, between DMA_MM and reading the reply, ...
    let (migrations, _) = compare(Mode::Dma, 7);
    assert!(migrations > 1000, "{migrations}");
}

#[test]
fn pio_mode_migrations_mid_transfer_give_identical_replies() {
    let (migrations, mid_transfer) = compare(Mode::Pio(4), 211);
    assert!(migrations > 200, "{migrations}");
    assert!(mid_transfer > 150, "{mid_transfer}");
}

#[test]
fn pio_other_widths_migrations() {
    for width in [1, 8] {
        let (_, mid_transfer) = compare(Mode::Pio(width), 1009);
        assert!(mid_transfer > 10, "width {width}: {mid_transfer}");
    }
}

/// The device part by itself: every register and the PIO position come
/// back, and the transfer continues where it stopped.
#[test]
fn registers_and_pio_position_round_trip() {
    let mut dev = new_device(true);
    common::wr(&mut dev, regs::BUFFER_SIZE, 4, 0x1000);
    common::wr(&mut dev, regs::DMA_BUFFER_ADDR_LO, 4, 0x1234_5678);
    common::wr(&mut dev, regs::DMA_BUFFER_ADDR_HI, 4, 0x9abc_def0);
    common::wr(&mut dev, regs::CMD_STS, 2, 0x7777); // unknown command
    for b in 0..37u64 {
        common::wr(&mut dev, regs::PIO_BUFFER_TRANSFER, 1, b);
    }
    let restored = {
        let blob = dev.snapshot();
        let mut new = UefiVarsDevice::new(common::in_memory(Config::default()), SparseRam::new());
        assert!(!new.registers().use_pio);
        new.restore_into(&blob).unwrap();
        new
    };
    let mut restored = restored;
    assert_eq!(restored.registers(), dev.registers());
    assert_eq!(restored.registers().pio_offset, 37);
    assert!(
        restored.registers().use_pio,
        "FLAGS comes from the snapshot"
    );
    assert_eq!(
        common::rd(&mut restored, regs::CMD_STS, 2) as u16,
        regs::STS_ERR_NOT_SUPPORTED
    );
    for off in [0u64, 4, 8, 0x18, 0x1c] {
        assert_eq!(
            common::rd(&mut restored, off, 4),
            common::rd(&mut dev, off, 4),
            "{off:#x}"
        );
    }
    assert_eq!(restored.backend().buffer_size(), 0x1000);
    // both continue the transfer identically
    for b in 37..64u64 {
        common::wr(&mut dev, regs::PIO_BUFFER_TRANSFER, 1, b);
        common::wr(&mut restored, regs::PIO_BUFFER_TRANSFER, 1, b);
    }
    assert_eq!(
        common::rd(&mut restored, regs::PIO_BUFFER_CRC32C, 4),
        u64::from(reference_crc32c(&(0..64u8).collect::<Vec<_>>()))
    );
    assert_eq!(restored.snapshot(), dev.snapshot());
}

// ---------------------------------------------------------------------------
// Versions, truncation, corruption.

const HEADER: usize = 20;

fn seal(version: u32, body: &[u8]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(body);
    let crc = reference_crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

fn body(blob: &[u8]) -> &[u8] {
    &blob[HEADER..blob.len() - 4]
}

/// A device after a few requests of the trace, mid PIO transfer.
fn sample_device() -> Dev {
    let trace = ovmf();
    let mut guest = Guest::new(Mode::Pio(4), |_| false);
    guest.init();
    for rec in trace
        .iter()
        .filter(|r| r.kind == RecordKind::Request)
        .take(60)
    {
        guest.communicate(&rec.payload);
    }
    for b in 0..10u64 {
        common::wr(&mut guest.dev, regs::PIO_BUFFER_TRANSFER, 4, b);
    }
    guest.dev
}

fn sample_blob() -> &'static [u8] {
    static B: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    B.get_or_init(|| sample_device().snapshot())
}

type RestoreResult = Result<(), DeviceSnapshotError<SnapshotError>>;

fn restore(blob: &[u8]) -> (RestoreResult, Dev) {
    let mut dev = UefiVarsDevice::new(common::in_memory(Config::default()), common::guest_ram());
    let r = dev.restore_into(blob);
    (r, dev)
}

#[test]
fn version_and_envelope_errors() {
    let blob = sample_blob();
    let newer = seal(FORMAT_VERSION + 1, body(blob));
    let err = restore(&newer).0.unwrap_err();
    assert_eq!(
        err,
        DeviceSnapshotError::UnsupportedVersion {
            found: FORMAT_VERSION + 1,
            supported: FORMAT_VERSION
        }
    );
    assert!(err.to_string().contains("version 2"), "{err}");

    let mut magic = blob.to_vec();
    magic[3] ^= 0x20;
    assert_eq!(
        restore(&magic).0.unwrap_err(),
        DeviceSnapshotError::BadMagic
    );

    // a service snapshot is not a device snapshot
    let svc_blob = common::in_memory(Config::default()).snapshot();
    assert_eq!(
        restore(&svc_blob).0.unwrap_err(),
        DeviceSnapshotError::BadMagic
    );

    let mut longer = blob.to_vec();
    longer.extend_from_slice(&[0; 3]);
    assert_eq!(
        restore(&longer).0.unwrap_err(),
        DeviceSnapshotError::TrailingBytes { extra: 3 }
    );

    for len in (0..blob.len()).step_by(97).chain([blob.len() - 1]) {
        assert!(
            matches!(
                restore(&blob[..len]).0,
                Err(DeviceSnapshotError::Truncated { .. })
            ),
            "length {len}"
        );
    }

    for at in [
        HEADER,
        HEADER + 2,
        HEADER + 30,
        blob.len() - 100,
        blob.len() - 2,
    ] {
        let mut bad = blob.to_vec();
        bad[at] ^= 0x01;
        let err = restore(&bad).0.unwrap_err();
        assert!(
            matches!(err, DeviceSnapshotError::ChecksumMismatch { .. }),
            "byte {at}: {err:?}"
        );
    }
}

/// Body offsets: status 0, flags 2, BUFFER_SIZE 3, DMA lo 7, hi 11, PIO
/// offset 15, PIO length 19, PIO buffer 23, then the backend length (u64)
/// and the backend blob.
#[test]
fn invalid_device_fields_and_backend_errors() {
    let blob = sample_blob();
    let b = body(blob).to_vec();
    let check = |body: Vec<u8>, want: &str| {
        let err = restore(&seal(FORMAT_VERSION, &body)).0.unwrap_err();
        assert!(err.to_string().contains(want), "want {want:?}: {err}");
        err
    };
    let mut x = b.clone();
    x[0..2].copy_from_slice(&0x0099u16.to_le_bytes());
    check(x, "no status code");
    let mut x = b.clone();
    x[2] = 0x81;
    check(x, "unknown flags");
    let mut x = b.clone();
    x[3..7].copy_from_slice(&0x10001u32.to_le_bytes());
    check(x, "BUFFER_SIZE 65537");
    let mut x = b.clone();
    x[15..19].copy_from_slice(&0x20000u32.to_le_bytes());
    check(x, "PIO offset");
    let mut x = b.clone();
    x[19..23].copy_from_slice(&0x100u32.to_le_bytes());
    check(x, "PIO buffer of 256 bytes");
    let mut x = b.clone();
    x.push(1);
    check(x, "left after the last field");
    // the backend's blob is checked by the backend
    let pio_len = u32::from_le_bytes(b[19..23].try_into().unwrap()) as usize;
    let backend_at = 23 + pio_len + 8;
    let mut x = b.clone();
    x[backend_at + 40] ^= 0x10;
    let err = check(x, "backend state");
    assert!(matches!(
        err,
        DeviceSnapshotError::Backend(SnapshotError::ChecksumMismatch { .. })
    ));
    assert!(std::error::Error::source(&err).is_some());
}

/// A failed restore changes neither the registers nor the service.
#[test]
fn failed_restore_changes_nothing() {
    let mut dev = new_device(false);
    common::init(&mut dev, false);
    let before = dev.snapshot();
    let b = body(sample_blob());
    // device part fine, backend part corrupted
    let pio_len = u32::from_le_bytes(b[19..23].try_into().unwrap()) as usize;
    let mut x = b.to_vec();
    x[23 + pio_len + 8 + 100] ^= 1;
    assert!(dev.restore_into(&seal(FORMAT_VERSION, &x)).is_err());
    assert_eq!(dev.snapshot(), before);
    let mut bad = sample_blob().to_vec();
    bad[HEADER] ^= 1;
    assert!(dev.restore_into(&bad).is_err());
    assert_eq!(dev.snapshot(), before);
}

/// An accepted state must work: the guest can initialise the device and
/// talk to it, and the state round-trips.
fn exercise(mut dev: Dev) {
    let trace = ovmf();
    let _ = common::pio_communicate(&mut dev, &trace[1].payload, 4);
    common::init(&mut dev, true);
    for rec in trace
        .iter()
        .filter(|r| r.kind == RecordKind::Request)
        .take(5)
    {
        let _ = common::dma_communicate(&mut dev, &rec.payload);
        let _ = common::pio_communicate(&mut dev, &rec.payload, 4);
    }
    let blob = dev.snapshot();
    let (r, again) = restore(&blob);
    r.unwrap();
    assert_eq!(again.snapshot(), blob);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = restore(&bytes);
        if let (Ok(()), dev) = restore(&seal(FORMAT_VERSION, &bytes)) {
            exercise(dev);
        }
    }

    #[test]
    fn single_byte_mutation_is_detected(at in any::<prop::sample::Index>(), xor in 1u8..) {
        let mut bad = sample_blob().to_vec();
        let i = at.index(bad.len());
        bad[i] ^= xor;
        prop_assert!(restore(&bad).0.is_err());
    }

    /// A changed body byte with the checksum recomputed: refused exactly
    /// where its field may not hold the new value, and for that reason;
    /// otherwise the device is the changed one ([`check_device_mutation`]).
    #[test]
    fn resealed_mutation_is_refused_for_its_field_or_restored(
        at in any::<prop::sample::Index>(),
        xor in 1u8..,
    ) {
        let original = body(sample_blob());
        let i = at.index(original.len());
        if let Err(e) = check_device_mutation(original, i, xor, true) {
            prop_assert!(false, "{}", e);
        }
    }
}

/// The fields of a device snapshot body (device/snapshot.rs, format
/// version 1) and what a changed byte in each must give.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DevOutcome {
    /// Restored: the device's snapshot is the changed blob.
    Restored,
    /// Refused as malformed (unknown status code or flag bits, a length
    /// that no longer matches).
    Malformed,
    /// Refused as invalid, naming the field.
    Invalid(&'static str),
    /// The service snapshot inside refuses it (its own CRC-32C).
    Backend,
}

/// CMD_STS values a device can hold (QEMU include/hw/uefi/var-service-api.h:
/// UEFI_VARS_STS_SUCCESS 0x00, BUSY 0x01, ERR_UNKNOWN 0x10,
/// ERR_NOT_SUPPORTED 0x11, ERR_BAD_BUFFER_SIZE 0x12).
const STATUS_CODES: [u16; 5] = [0x00, 0x01, 0x10, 0x11, 0x12];

fn device_expected(original: &[u8], changed: &[u8], i: usize) -> DevOutcome {
    let u32_at = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    let buffer_size = u32_at(original, 3) as usize;
    let backend_at = 23 + buffer_size + 8;
    match i {
        0 | 1 => {
            let status = u16::from_le_bytes([changed[0], changed[1]]);
            if STATUS_CODES.contains(&status) {
                DevOutcome::Restored
            } else {
                DevOutcome::Malformed
            }
        }
        2 if changed[2] & !1 != 0 => DevOutcome::Malformed,
        2 => DevOutcome::Restored,
        // BUFFER_SIZE: above 64 KiB invalid, else no longer the PIO length.
        3..=6 if u32_at(changed, 3) > 64 * 1024 => DevOutcome::Invalid("BUFFER_SIZE"),
        3..=6 => DevOutcome::Malformed,
        // DMA address halves: any value.
        7..=14 => DevOutcome::Restored,
        15..=18 if u32_at(changed, 15) > 64 * 1024 => DevOutcome::Invalid("PIO offset"),
        15..=18 => DevOutcome::Restored,
        // The PIO length must equal BUFFER_SIZE.
        19..=22 => DevOutcome::Malformed,
        i if i < 23 + buffer_size => DevOutcome::Restored,
        // The backend length now runs past the end or leaves bytes over.
        i if i < backend_at => DevOutcome::Malformed,
        _ => DevOutcome::Backend,
    }
}

/// Restores `original` with byte `i` changed by `xor` (resealed) and checks
/// the outcome against [`device_expected`]; `work` also drives the
/// restored device.
fn check_device_mutation(
    original: &[u8],
    i: usize,
    xor: u8,
    work: bool,
) -> Result<DevOutcome, String> {
    let mut b = original.to_vec();
    b[i] ^= xor;
    let expected = device_expected(original, &b, i);
    let blob = seal(FORMAT_VERSION, &b);
    let (result, dev) = restore(&blob);
    let why = format!("body byte {i} ^ {xor:#x}: expected {expected:?}, got {result:?}");
    let ok = match (&expected, &result) {
        (DevOutcome::Restored, Ok(())) => {
            if dev.snapshot() != blob {
                return Err(format!("{why}: the restored device is not the changed one"));
            }
            if work {
                exercise(dev);
            }
            true
        }
        (DevOutcome::Malformed, Err(DeviceSnapshotError::Malformed { .. })) => true,
        (DevOutcome::Invalid(what), Err(DeviceSnapshotError::Invalid(m))) => m.starts_with(what),
        (DevOutcome::Backend, Err(DeviceSnapshotError::Backend(_))) => true,
        _ => false,
    };
    if ok {
        Ok(expected)
    } else {
        Err(why)
    }
}

/// Every register byte, the ends of the PIO buffer, the backend length and
/// the ends of the backend blob, each changed in its low and high bit:
/// every outcome of [`device_expected`] occurs, each where it should.
#[test]
fn every_resealed_register_change_is_refused_for_its_field_or_restored() {
    let original = body(sample_blob());
    let buffer_size = u32::from_le_bytes(original[3..7].try_into().unwrap()) as usize;
    let pio_end = 23 + buffer_size;
    let mut at: Vec<usize> = (0..23).collect();
    at.extend((23..23 + 16).chain(pio_end - 16..pio_end));
    at.extend(pio_end..pio_end + 8);
    at.extend((pio_end + 8..pio_end + 72).chain(original.len() - 16..original.len()));
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    for i in at {
        for xor in [0x01u8, 0x80] {
            let outcome = check_device_mutation(original, i, xor, false).unwrap();
            let key = match outcome {
                DevOutcome::Invalid(_) => "Invalid".to_string(),
                o => format!("{o:?}"),
            };
            *seen.entry(key).or_default() += 1;
        }
    }
    eprintln!("BUFFER_SIZE {buffer_size}: {seen:?}");
    for key in ["Restored", "Malformed", "Invalid", "Backend"] {
        assert!(seen.contains_key(key), "{key} never happened: {seen:?}");
    }
}
