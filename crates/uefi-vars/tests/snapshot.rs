//! Service snapshots (issue 4, item 4): snapshot → restore → continue gives
//! exactly the replies of an uninterrupted run; the blob round-trips byte
//! for byte; version, truncation and corruption are clear errors; no input
//! makes restore panic.
//!
//! The trace is the real OVMF capture (two boots, QEMU 11.1). A "migrated"
//! service is replaced by `Service::restore(snapshot)` at the chosen points
//! and runs next to an uninterrupted reference service; every response
//! (device status and reply bytes) must be the same, and the same as the
//! captured reply.

mod common;

use std::path::PathBuf;
use std::str::FromStr;

use proptest::prelude::*;
use uefi_vars::codec::Layout;
use uefi_vars::guid::Guid;
use uefi_vars::pcap::{Record, RecordKind};
use uefi_vars::persist::{json, non_volatile, JsonFile, MemoryStorage, PersistError, Storage};
use uefi_vars::policy::PolicyLimits;
use uefi_vars::service::snapshot::{crc32c, SnapshotError, FORMAT_VERSION, MAGIC};
use uefi_vars::variable::Variable;
use uefi_vars::{Config, DeviceStatus, EfiStatus, Service};

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

fn fresh() -> Service {
    common::new(Config::default(), Box::new(MemoryStorage::new())).unwrap()
}

/// Snapshot, restore into a new service on its own storage, and check the
/// restored service's snapshot is the same blob.
fn migrate(svc: &Service) -> Service {
    let blob = svc.snapshot();
    let mut restored =
        Service::restore(svc.config().clone(), Box::new(MemoryStorage::new()), &blob).unwrap();
    assert!(restored.take_errors().is_empty());
    assert_eq!(
        restored.snapshot(),
        blob,
        "snapshot of the restored service"
    );
    restored
}

fn final_store(svc: &Service) -> String {
    let vars: Vec<&Variable> = svc.store().iter().collect();
    json::encode(&non_volatile(&vars)).unwrap()
}

/// Every observable part of the state, compared field by field.
fn assert_same_state(a: &Service, b: &Service) {
    assert!(a.store().iter().eq(b.store().iter()), "variables");
    assert_eq!(a.store().used(), b.store().used(), "storage accounting");
    assert_eq!(a.policies().policies(), b.policies().policies(), "policies");
    assert_eq!(a.policies().is_locked(), b.policies().is_locked());
    assert_eq!(a.policies().is_enabled(), b.policies().is_enabled());
    assert_eq!(a.phase(), b.phase(), "boot phase");
    assert_eq!(a.buffer_size(), b.buffer_size(), "buffer size");
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Run {
    requests: usize,
    identical: usize,
    migrations: usize,
}

/// Plays `trace` through an uninterrupted service and a migrated one;
/// `migrate_after(record_index, record, requests_so_far)` says where the
/// migrated one is replaced by its restored snapshot. Returns both.
fn play_with_migrations(
    trace: &[Record],
    migrate_after: impl Fn(usize, &Record, usize) -> bool,
) -> (Run, Service, Service) {
    let mut reference = fresh();
    let mut svc = fresh();
    let mut run = Run::default();
    let mut pending = None;
    for (i, rec) in trace.iter().enumerate() {
        match rec.kind {
            RecordKind::Reset => {
                reference.reset().unwrap();
                svc.reset().unwrap();
            }
            RecordKind::Request => {
                run.requests += 1;
                let expect = reference.communicate(&rec.payload);
                let got = svc.communicate(&rec.payload);
                assert_eq!(got, expect, "record {i}: response after migrations");
                pending = got.reply;
            }
            RecordKind::Reply => {
                let reply = pending.take().expect("reply without request");
                assert_eq!(reply, rec.payload, "record {i}: captured reply");
                run.identical += 1;
            }
            _ => {}
        }
        if migrate_after(i, rec, run.requests) {
            svc = migrate(&svc);
            run.migrations += 1;
        }
    }
    assert!(reference.take_errors().is_empty());
    assert!(svc.take_errors().is_empty());
    (run, reference, svc)
}

/// The proof: snapshots after request 100 and 800, right after each RESET
/// record, around the boot-phase events, mid-enumeration; every reply
/// identical to the uninterrupted run and to the capture, same final store.
#[test]
fn migrate_at_chosen_points_and_continue_the_trace() {
    let trace = ovmf();
    let points = [1, 22, 57, 58, 100, 441, 442, 613, 800, 858, 926, 1500];
    let (run, reference, svc) = play_with_migrations(&trace, |_, rec, requests| {
        match rec.kind {
            RecordKind::Reset => true,
            // after the request's reply: the state the next request sees
            RecordKind::Reply => points.contains(&requests),
            _ => false,
        }
    });
    assert_eq!(run.requests, OVMF_REQUESTS);
    assert_eq!(run.identical, OVMF_REQUESTS);
    assert_eq!(run.migrations, 2 + points.len());
    assert_same_state(&reference, &svc);
    assert_eq!(svc.snapshot(), reference.snapshot());
    let expected = std::fs::read_to_string(data(OVMF_END)).unwrap();
    assert_eq!(final_store(&svc), expected);
}

/// The strongest form: the service is replaced by its restored snapshot
/// after every single record of both boots.
#[test]
fn migrate_after_every_record() {
    let trace = ovmf();
    let (run, reference, svc) = play_with_migrations(&trace, |_, _, _| true);
    assert_eq!(run.identical, OVMF_REQUESTS);
    assert_eq!(run.migrations, trace.len());
    assert_same_state(&reference, &svc);
    let expected = std::fs::read_to_string(data(OVMF_END)).unwrap();
    assert_eq!(final_store(&svc), expected);
}

/// A service that has replayed the first `requests` requests of the trace.
fn after_requests(trace: &[Record], requests: usize) -> Service {
    let mut svc = fresh();
    let mut n = 0;
    for rec in trace {
        match rec.kind {
            RecordKind::Reset => svc.reset().unwrap(),
            RecordKind::Request if n < requests => {
                svc.communicate(&rec.payload);
                n += 1;
            }
            RecordKind::Request => break,
            _ => {}
        }
    }
    svc
}

/// (a) snapshot → restore → snapshot is the same blob, and every part of the
/// state is equal, at several points of the trace.
#[test]
fn round_trip_is_exact() {
    let trace = ovmf();
    for requests in [0, 30, 100, 800, 1000, OVMF_REQUESTS] {
        let svc = after_requests(&trace, requests);
        let blob = svc.snapshot();
        assert_eq!(&blob[..8], &MAGIC);
        let restored = migrate(&svc);
        assert_same_state(&svc, &restored);
        // taking a snapshot changes nothing
        assert_eq!(svc.snapshot(), blob);
    }
    // mid-trace the state is not trivial
    let svc = after_requests(&trace, 800);
    assert!(svc.policies().policies().len() >= 6);
    assert!(svc.policies().is_locked());
    assert!(svc.phase().end_of_dxe && svc.phase().ready_to_boot);
    assert!(svc.store().iter().any(|v| !v.is_non_volatile()));
}

/// `restore_into` replaces whatever state the service had, and keeps its
/// storage (written with the restored variables).
#[test]
fn restore_into_replaces_the_state() {
    let trace = ovmf();
    let source = after_requests(&trace, 800);
    let blob = source.snapshot();
    let mut other = after_requests(&trace, 1500);
    other.restore_into(&blob).unwrap();
    assert_same_state(&source, &other);
    assert_eq!(other.snapshot(), blob);
}

/// Restoring rewrites the destination's store file with the snapshot's
/// non-volatile variables (as QEMU rewrites its JSON after an incoming
/// migration), without reading what the file held.
#[test]
fn restore_writes_the_store_file() {
    let dir = tempfile::tempdir().unwrap();
    let src_path = dir.path().join("source.json");
    let dst_path = dir.path().join("destination.json");
    let trace = ovmf();
    let mut source = common::new(Config::default(), Box::new(JsonFile::new(&src_path))).unwrap();
    let mut n = 0;
    for rec in &trace {
        if rec.kind == RecordKind::Request {
            source.communicate(&rec.payload);
            n += 1;
            if n == 800 {
                break;
            }
        }
    }
    // the source's changes are in its journal until it compacts
    source.compact().unwrap();
    // the destination's old file is not even valid: it is not read
    std::fs::write(&dst_path, "stale, not JSON").unwrap();
    let restored = Service::restore(
        Config::default(),
        Box::new(JsonFile::new(&dst_path)),
        &source.snapshot(),
    )
    .unwrap();
    let written = std::fs::read_to_string(&dst_path).unwrap();
    assert_eq!(written, std::fs::read_to_string(&src_path).unwrap());
    assert_eq!(written, final_store(&restored));
}

struct FailingStorage;

impl Storage for FailingStorage {
    fn load(&mut self) -> Result<Vec<Variable>, PersistError> {
        Ok(Vec::new())
    }
    fn save(&mut self, _: &[&Variable]) -> Result<(), PersistError> {
        Err(PersistError::Io {
            path: "/nonexistent/vars.json".into(),
            action: "write".into(),
            source: std::io::Error::other("disk full"),
        })
    }
}

/// A store write failing after a restore does not fail the restore: the
/// guest continues (as after any failed write) and the embedder learns of
/// it from `take_errors`.
#[test]
fn failed_store_write_is_a_host_error() {
    let source = after_requests(&ovmf(), 800);
    let mut restored = Service::restore(
        Config::default(),
        Box::new(FailingStorage),
        &source.snapshot(),
    )
    .unwrap();
    let errors = restored.take_errors();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].to_string().contains("disk full"));
    assert_same_state(&source, &restored);
}

// ---------------------------------------------------------------------------
// A policy DUMP in progress (the page cache travels with the snapshot).

fn g(text: &str) -> Guid {
    Guid::from_str(text).unwrap()
}

const CMD_REGISTER: u32 = 3;
const CMD_DUMP: u32 = 4;
/// edk2's 16 KiB policy buffer minus MM header, policy header and the
/// 13-byte DUMP parameters.
const PAGE: usize = 16384 - 24 - 20 - 13;

fn policy_req(command: u32, params: &[u8]) -> Vec<u8> {
    let mut m = u32::from_le_bytes(*b"VCPC").to_le_bytes().to_vec();
    m.extend_from_slice(&1u32.to_le_bytes());
    m.extend_from_slice(&command.to_le_bytes());
    m.extend_from_slice(&[0xaf; 8]);
    m.extend_from_slice(params);
    uefi_vars::codec::build_request(Layout::X64, &g("da1b0d11-d1a7-46c4-9dc9-f3714875c6eb"), &m)
}

fn policy_entry(i: usize) -> Vec<u8> {
    let name: Vec<u8> = format!("Policy{i:03}{}", "x".repeat(100))
        .encode_utf16()
        .chain([0])
        .flat_map(u16::to_le_bytes)
        .collect();
    let mut e = 0x0001_0000u32.to_le_bytes().to_vec();
    e.extend_from_slice(&u16::try_from(44 + name.len()).unwrap().to_le_bytes());
    e.extend_from_slice(&44u16.to_le_bytes());
    e.extend_from_slice(&g("11111111-2222-3333-4444-555555555555").0);
    e.extend_from_slice(&0u32.to_le_bytes());
    e.extend_from_slice(&u32::MAX.to_le_bytes());
    e.extend_from_slice(&[0; 8]);
    e.push((i % 3) as u8);
    e.extend_from_slice(&[0; 3]);
    e.extend_from_slice(&name);
    e
}

fn dump_req(page: u32) -> Vec<u8> {
    let mut params = page.to_le_bytes().to_vec();
    params.extend_from_slice(&[0xcc; 9]);
    params.extend_from_slice(&vec![0u8; PAGE]);
    policy_req(CMD_DUMP, &params)
}

fn policy_result(reply: &[u8]) -> EfiStatus {
    EfiStatus(u64::from_le_bytes(reply[36..44].try_into().unwrap()))
}

/// A guest migrated between two DUMP pages gets the rest of the table as if
/// nothing happened (edk2 fetches page 0 for the size, then pages 1..).
#[test]
fn migrate_in_the_middle_of_a_policy_dump() {
    let mut reference = common::in_memory(Config::default());
    for i in 0..200 {
        let resp = reference.communicate(&policy_req(CMD_REGISTER, &policy_entry(i)));
        assert_eq!(
            policy_result(resp.reply.as_deref().unwrap()),
            EfiStatus::SUCCESS
        );
    }
    let table = reference.policies().dump();
    assert!(table.len() > 3 * PAGE, "at least four pages");
    let mut migrated = migrate(&reference);
    // page 0 (the size), then pages 1.. until has_more is 0, migrating
    // after each
    let mut pages = Vec::new();
    let mut page = 0u32;
    loop {
        let req = dump_req(page);
        let expect = reference.communicate(&req);
        let got = migrated.communicate(&req);
        assert_eq!(got, expect, "page {page}");
        let reply = got.reply.unwrap();
        assert_eq!(policy_result(&reply), EfiStatus::SUCCESS, "page {page}");
        let total = u32::from_le_bytes(reply[48..52].try_into().unwrap()) as usize;
        let size = u32::from_le_bytes(reply[52..56].try_into().unwrap()) as usize;
        let has_more = reply[56];
        assert_eq!(total, table.len());
        pages.extend_from_slice(&reply[57..57 + size]);
        migrated = migrate(&migrated);
        if page > 0 && has_more == 0 {
            break;
        }
        page += 1;
    }
    assert_eq!(page, 4);
    assert_eq!(pages, table);
    // the cache is gone after the last page, in both
    let req = dump_req(1);
    let got = migrated.communicate(&req);
    assert_eq!(got, reference.communicate(&req));
    assert_eq!(policy_result(&got.reply.unwrap()), EfiStatus::TIMEOUT);
}

const CMD_DISABLE: u32 = 1;
const CMD_IS_ENABLED: u32 = 2;

fn set_var(svc: &mut Service, name: &str, data: &[u8]) -> EfiStatus {
    let n: Vec<u8> = name
        .encode_utf16()
        .chain([0])
        .flat_map(u16::to_le_bytes)
        .collect();
    let mut m = 3u64.to_le_bytes().to_vec();
    m.extend_from_slice(&[0xaf; 8]);
    m.extend_from_slice(&g("11111111-2222-3333-4444-555555555555").0);
    m.extend_from_slice(&(data.len() as u64).to_le_bytes());
    m.extend_from_slice(&(n.len() as u64).to_le_bytes());
    m.extend_from_slice(&7u32.to_le_bytes());
    m.extend_from_slice(&n);
    m.extend_from_slice(data);
    let req = uefi_vars::codec::build_request(
        Layout::X64,
        &g("ed32d533-99e6-4209-9cc0-2d72cdd998a7"),
        &m,
    );
    let reply = svc.communicate(&req).reply.unwrap();
    EfiStatus(u64::from_le_bytes(reply[32..40].try_into().unwrap()))
}

fn end_of_dxe(svc: &mut Service) {
    let req = uefi_vars::codec::build_request(
        Layout::X64,
        &g("02ce967a-dd7e-4ffc-9ee7-810cf0470880"),
        &[0],
    );
    assert_eq!(svc.communicate(&req).status, DeviceStatus::Success);
}

/// Enforcement switched off (where the configuration allows it) stays off
/// after a migration, and the destination does not re-check the permission.
#[test]
fn disabled_policy_enforcement_survives() {
    let config = Config::default().with_allow_policy_disable(true);
    let name = format!("Policy001{}", "x".repeat(100));
    // entry 1 is a LOCK_NOW policy for that name, enforced from EndOfDxe on
    let mut control = common::in_memory(config.clone());
    let mut svc = common::in_memory(config);
    for s in [&mut control, &mut svc] {
        let resp = s.communicate(&policy_req(CMD_REGISTER, &policy_entry(1)));
        assert_eq!(policy_result(&resp.reply.unwrap()), EfiStatus::SUCCESS);
    }
    let resp = svc.communicate(&policy_req(CMD_DISABLE, &[]));
    assert_eq!(policy_result(&resp.reply.unwrap()), EfiStatus::SUCCESS);
    let blob = svc.snapshot();
    let mut restored =
        Service::restore(Config::default(), Box::new(MemoryStorage::new()), &blob).unwrap();
    assert!(!restored.policies().is_enabled());
    let reply = restored
        .communicate(&policy_req(CMD_IS_ENABLED, &[0xcc]))
        .reply
        .unwrap();
    assert_eq!(reply[44], 0, "IS_ENABLED answers FALSE");
    for s in [&mut control, &mut svc, &mut restored] {
        end_of_dxe(s);
    }
    assert_eq!(
        set_var(&mut control, &name, b"1"),
        EfiStatus::WRITE_PROTECTED
    );
    assert_eq!(set_var(&mut svc, &name, b"1"), EfiStatus::SUCCESS);
    assert_eq!(set_var(&mut restored, &name, b"1"), EfiStatus::SUCCESS);
    assert_eq!(restored.snapshot(), svc.snapshot());
}

// ---------------------------------------------------------------------------
// (c) Version, truncation, corruption and configuration errors.

const HEADER: usize = 20;

/// Rebuilds the envelope around `body` with a valid checksum.
fn seal(version: u32, body: &[u8]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(body);
    let crc = crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

fn body(blob: &[u8]) -> &[u8] {
    &blob[HEADER..blob.len() - 4]
}

fn restore(blob: &[u8]) -> Result<Service, SnapshotError> {
    Service::restore(Config::default(), Box::new(MemoryStorage::new()), blob)
}

fn sample() -> Vec<u8> {
    after_requests(&ovmf(), 800).snapshot()
}

#[test]
fn newer_version_is_unsupported_version() {
    let blob = sample();
    let newer = seal(FORMAT_VERSION + 1, body(&blob));
    let err = restore(&newer).unwrap_err();
    assert_eq!(
        err,
        SnapshotError::UnsupportedVersion {
            found: FORMAT_VERSION + 1,
            supported: FORMAT_VERSION
        }
    );
    assert!(err.to_string().contains("version 2"), "{err}");
    // a newer format may lay out its body and trailer differently: the
    // version is checked first
    let mut other_layout = newer.clone();
    other_layout.truncate(HEADER + 3);
    other_layout[12..20].copy_from_slice(&0u64.to_le_bytes());
    assert!(matches!(
        restore(&other_layout),
        Err(SnapshotError::UnsupportedVersion { found: 2, .. })
    ));
    let zero = seal(0, body(&blob));
    assert!(matches!(
        restore(&zero),
        Err(SnapshotError::UnsupportedVersion { found: 0, .. })
    ));
}

#[test]
fn truncation_at_every_length_is_detected() {
    let blob = after_requests(&ovmf(), 30).snapshot();
    for len in 0..blob.len() {
        match restore(&blob[..len]) {
            Err(SnapshotError::Truncated { needed, available }) => {
                assert_eq!(available, len as u64);
                assert!(needed > available);
            }
            other => panic!("length {len}: {other:?}"),
        }
    }
    let err = restore(&blob[..blob.len() - 1]).unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");
}

#[test]
fn trailing_bytes_bad_magic_and_checksum() {
    let blob = sample();
    let mut longer = blob.clone();
    longer.push(0);
    assert_eq!(
        restore(&longer).unwrap_err(),
        SnapshotError::TrailingBytes { extra: 1 }
    );
    let mut magic = blob.clone();
    magic[0] ^= 1;
    assert_eq!(restore(&magic).unwrap_err(), SnapshotError::BadMagic);
    assert_eq!(
        restore(b"not a snapshot, but long enough").unwrap_err(),
        SnapshotError::BadMagic
    );
    for at in [
        HEADER,
        HEADER + 100,
        blob.len() / 2,
        blob.len() - 5,
        blob.len() - 1,
    ] {
        let mut bad = blob.clone();
        bad[at] ^= 0x40;
        let err = restore(&bad).unwrap_err();
        assert!(
            matches!(err, SnapshotError::ChecksumMismatch { .. }),
            "byte {at}: {err:?}"
        );
        assert!(err.to_string().contains("CRC-32C"), "{err}");
    }
}

/// A body with a valid checksum but impossible content (a forged or buggy
/// blob) is refused with a message naming the field.
#[test]
fn forged_bodies_are_refused_naming_the_problem() {
    let blob = sample();
    let b = body(&blob).to_vec();
    let check = |body: Vec<u8>, want: &str| {
        let err = restore(&seal(FORMAT_VERSION, &body)).unwrap_err();
        assert!(err.to_string().contains(want), "want {want:?}: {err}");
    };
    // body: uintn u8, phase u32, policy u32, buffer size u32, var count u32
    let mut x = b.clone();
    x[1] |= 0x80;
    check(x, "unknown boot phase flags");
    let mut x = b.clone();
    x[5] |= 0x04;
    check(x, "unknown policy flags");
    let mut x = b.clone();
    x[9..13].copy_from_slice(&0x10001u32.to_le_bytes());
    check(x, "buffer size 65537");
    let mut x = b.clone();
    x[13..17].copy_from_slice(&u32::MAX.to_le_bytes());
    check(x, "variable #");
    let mut x = b.clone();
    x.push(0);
    check(x, "1 bytes left after the last field");
    check(b[..b.len() - 1].to_vec(), "dump cache flag");
    // the first variable's name length is right after its GUID
    let mut x = b.clone();
    x[33..37].copy_from_slice(&0u32.to_le_bytes());
    check(x, "variable #0");
    // a flag byte must be 0 or 1: the dump cache flag is the last byte here
    let mut x = b.clone();
    let last = x.len() - 1;
    x[last] = 2;
    check(x, "neither 0 nor 1");
}

#[test]
fn word_size_and_policy_limits_come_from_the_destination() {
    let blob = sample();
    let ia32 = Config::default().with_layout(Layout::IA32);
    assert_eq!(
        Service::restore(ia32, Box::new(MemoryStorage::new()), &blob).unwrap_err(),
        SnapshotError::LayoutMismatch {
            snapshot: 8,
            config: 4
        }
    );
    let tight = Config::default().with_policy_limits(PolicyLimits {
        max_policies: 2,
        ..PolicyLimits::default()
    });
    let err = Service::restore(tight, Box::new(MemoryStorage::new()), &blob).unwrap_err();
    assert!(err.to_string().contains("policy limits"), "{err}");
    // other settings are the destination's: a different quota is accepted
    let bigger = Config::default().with_max_storage(1024 * 1024);
    let svc = Service::restore(bigger, Box::new(MemoryStorage::new()), &blob).unwrap();
    assert_eq!(svc.config().max_storage, 1024 * 1024);
}

/// A failed `restore_into` leaves the service exactly as it was.
#[test]
fn failed_restore_changes_nothing() {
    let trace = ovmf();
    let mut svc = after_requests(&trace, 100);
    let before = svc.snapshot();
    let mut bad = sample();
    let n = bad.len();
    bad[n / 2] ^= 1;
    assert!(svc.restore_into(&bad).is_err());
    let forged = seal(FORMAT_VERSION, &{
        let mut b = body(&sample()).to_vec();
        b.push(7);
        b
    });
    assert!(svc.restore_into(&forged).is_err());
    assert_eq!(svc.snapshot(), before);
    // and it still answers like its twin
    let mut twin = after_requests(&trace, 100);
    for rec in trace
        .iter()
        .filter(|r| r.kind == RecordKind::Request)
        .skip(100)
        .take(50)
    {
        assert_eq!(
            svc.communicate(&rec.payload),
            twin.communicate(&rec.payload)
        );
    }
}

// ---------------------------------------------------------------------------
// (d) No input makes restore panic.

/// A restored state must work: the next requests of the trace get answers
/// (not necessarily the captured ones) and the state round-trips.
fn exercise(mut svc: Service, trace: &[Record]) {
    for rec in trace
        .iter()
        .filter(|r| r.kind == RecordKind::Request)
        .skip(800)
        .take(40)
    {
        let resp = svc.communicate(&rec.payload);
        assert!(resp.reply.is_some() || resp.status != DeviceStatus::Success);
    }
    svc.reset().unwrap();
    let blob = svc.snapshot();
    assert_eq!(restore(&blob).unwrap().snapshot(), blob);
}

/// Every byte of a real snapshot body changed in turn (low bit, then high
/// bit), resealed: refused exactly where [`expected_outcome`] says and for
/// that reason, restored as changed everywhere else; every outcome occurs.
#[test]
fn every_resealed_byte_change_is_refused_for_its_field_or_restored() {
    let (_, blob) = fixtures();
    let original = body(blob);
    let fields = body_fields(original);
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    for field in &fields {
        for i in field.range.clone() {
            for xor in [0x01u8, 0x80] {
                let mut b = original.to_vec();
                b[i] ^= xor;
                let expected = expected_outcome(original, &b, field);
                let result = restore(&seal(FORMAT_VERSION, &b));
                let outcome = match &result {
                    Ok(_) => "restored",
                    Err(_) => "refused",
                };
                *seen.entry(format!("{expected:?} {outcome}")).or_default() += 1;
                check_outcome(field, expected, result, &b, &[]).unwrap();
            }
        }
    }
    eprintln!("{} body bytes: {seen:?}", original.len());
    for key in [
        "Restored restored",
        "LayoutMismatch refused",
        "Malformed refused",
        "Misread refused",
        "Invalid refused",
        "PolicyEither restored",
        "PolicyEither refused",
    ] {
        assert!(seen.contains_key(key), "{key} never happened: {seen:?}");
    }
}

/// A field of a snapshot body, as the format in service/snapshot.rs lays
/// it out.
#[derive(Clone, Debug)]
struct Field {
    range: std::ops::Range<usize>,
    kind: FieldKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FieldKind {
    /// The guest word size byte.
    WordSize,
    /// Boot phase (known bits 0x7) or policy flags (known bits 0x3).
    Flags(u32),
    BufferSize,
    /// A count, length or 0/1 flag: changing it changes how the rest reads.
    Structure,
    /// Variable `n`'s GUID, or unit of its name.
    Guid(usize),
    NameUnit(usize),
    Attributes,
    /// Bytes any value of which is a state the service can hold: the
    /// timestamp, data, signer digest, the DUMP page cache.
    Free,
    /// Policy entry `n`'s raw bytes.
    Policy(usize),
}

/// The fields of `body`, read as the format in service/snapshot.rs says.
fn body_fields(body: &[u8]) -> Vec<Field> {
    let mut fields = Vec::new();
    let mut at = 0usize;
    let u32_at = |at: usize| u32::from_le_bytes(body[at..at + 4].try_into().unwrap()) as usize;
    let push = |fields: &mut Vec<Field>, at: &mut usize, len: usize, kind| {
        fields.push(Field {
            range: *at..*at + len,
            kind,
        });
        *at += len;
    };
    push(&mut fields, &mut at, 1, FieldKind::WordSize);
    push(&mut fields, &mut at, 4, FieldKind::Flags(0x7));
    push(&mut fields, &mut at, 4, FieldKind::Flags(0x3));
    push(&mut fields, &mut at, 4, FieldKind::BufferSize);
    let vars_n = u32_at(at);
    push(&mut fields, &mut at, 4, FieldKind::Structure);
    for v in 0..vars_n {
        push(&mut fields, &mut at, 16, FieldKind::Guid(v));
        let units = u32_at(at);
        push(&mut fields, &mut at, 4, FieldKind::Structure);
        for _ in 0..units {
            push(&mut fields, &mut at, 2, FieldKind::NameUnit(v));
        }
        push(&mut fields, &mut at, 4, FieldKind::Attributes);
        push(&mut fields, &mut at, 16, FieldKind::Free);
        let len = u32_at(at);
        push(&mut fields, &mut at, 4, FieldKind::Structure);
        push(&mut fields, &mut at, len, FieldKind::Free);
        let has_digest = body[at] == 1;
        push(&mut fields, &mut at, 1, FieldKind::Structure);
        if has_digest {
            let len = u32_at(at);
            push(&mut fields, &mut at, 4, FieldKind::Structure);
            push(&mut fields, &mut at, len, FieldKind::Free);
        }
    }
    let policies_n = u32_at(at);
    push(&mut fields, &mut at, 4, FieldKind::Structure);
    for p in 0..policies_n {
        let len = u32_at(at);
        push(&mut fields, &mut at, 4, FieldKind::Structure);
        push(&mut fields, &mut at, len, FieldKind::Policy(p));
    }
    let has_dump = body[at] == 1;
    push(&mut fields, &mut at, 1, FieldKind::Structure);
    if has_dump {
        let len = u32_at(at);
        push(&mut fields, &mut at, 4, FieldKind::Structure);
        push(&mut fields, &mut at, len, FieldKind::Free);
    }
    assert_eq!(at, body.len(), "the test's reading of the format");
    fields.retain(|f| !f.range.is_empty());
    fields
}

/// What restoring `changed` (`original` with one byte of `field` changed)
/// must give.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// The changed state, exactly.
    Restored,
    /// The destination is a 64-bit guest: the word size is refused.
    LayoutMismatch,
    /// The format is broken (unknown flag bits).
    Malformed,
    /// A count, length or flag changed: the rest reads differently and
    /// is refused, as malformed (runs past the end, bytes left over, a flag
    /// byte not 0 or 1) or as invalid (e.g. a variable with no data).
    Misread,
    /// The body reads but describes a state the service cannot hold
    /// (service/snapshot.rs check_variable: NUL or surrogate in a name,
    /// APPEND_WRITE stored, a key twice, a buffer size above 64 KiB).
    Invalid,
    /// The changed key equals another variable's: refused at the later of
    /// the two.
    Duplicate(usize),
    /// A policy entry: restored if it still parses exactly as at
    /// registration, otherwise refused as invalid; both are checked.
    PolicyEither,
}

fn expected_outcome(original: &[u8], changed: &[u8], field: &Field) -> Outcome {
    let value = |b: &[u8]| {
        let mut v = [0u8; 4];
        v[..field.range.len().min(4)]
            .copy_from_slice(&b[field.range.start..][..field.range.len().min(4)]);
        u32::from_le_bytes(v)
    };
    let duplicate = |v: usize| {
        let keys = keys(changed, &body_fields(original));
        (0..keys.len())
            .find(|&o| o != v && keys[o] == keys[v])
            .map(|o| Outcome::Duplicate(o.max(v)))
    };
    match field.kind {
        FieldKind::WordSize => Outcome::LayoutMismatch,
        FieldKind::Flags(known) if value(changed) & !known != 0 => Outcome::Malformed,
        FieldKind::Flags(_) => Outcome::Restored,
        FieldKind::BufferSize if value(changed) > 64 * 1024 => Outcome::Invalid,
        FieldKind::BufferSize => Outcome::Restored,
        FieldKind::Structure => Outcome::Misread,
        FieldKind::Guid(v) => duplicate(v).unwrap_or(Outcome::Restored),
        FieldKind::NameUnit(v) => {
            let unit = value(changed) & 0xffff;
            if unit == 0 || (0xd800..=0xdfff).contains(&unit) {
                Outcome::Invalid
            } else {
                duplicate(v).unwrap_or(Outcome::Restored)
            }
        }
        FieldKind::Attributes if value(changed) & 0x40 != 0 => Outcome::Invalid,
        FieldKind::Attributes | FieldKind::Free => Outcome::Restored,
        FieldKind::Policy(_) => Outcome::PolicyEither,
    }
}

/// Each variable's key (GUID, name units) in `body`, laid out as `fields`
/// (those of the original: only a key byte differs where this is asked).
fn keys(body: &[u8], fields: &[Field]) -> Vec<([u8; 16], Vec<u16>)> {
    let mut vars: Vec<([u8; 16], Vec<u16>)> = Vec::new();
    for f in fields {
        match f.kind {
            FieldKind::Guid(v) => {
                assert_eq!(vars.len(), v);
                vars.push((body[f.range.clone()].try_into().unwrap(), Vec::new()));
            }
            FieldKind::NameUnit(v) => vars[v].1.push(u16::from_le_bytes([
                body[f.range.start],
                body[f.range.start + 1],
            ])),
            _ => {}
        }
    }
    vars
}

fn check_outcome(
    field: &Field,
    expected: Outcome,
    result: Result<Service, SnapshotError>,
    changed: &[u8],
    trace: &[Record],
) -> Result<(), TestCaseError> {
    let why = format!("{field:?}: expected {expected:?}");
    match (expected, result) {
        (Outcome::Restored | Outcome::PolicyEither, Ok(svc)) => {
            let again = svc.snapshot();
            prop_assert_eq!(body(&again), changed, "{}", why);
            if !trace.is_empty() {
                exercise(svc, trace);
            }
        }
        (Outcome::LayoutMismatch, Err(SnapshotError::LayoutMismatch { config: 8, .. }))
        | (Outcome::Malformed, Err(SnapshotError::Malformed { .. }))
        | (Outcome::Misread, Err(SnapshotError::Malformed { .. } | SnapshotError::Invalid(_))) => {}
        (Outcome::Invalid, Err(SnapshotError::Invalid(m))) => {
            let names_it = match field.kind {
                FieldKind::Guid(v) | FieldKind::NameUnit(v) => {
                    m.contains(&format!("variable #{v} "))
                }
                FieldKind::Attributes => m.contains("APPEND_WRITE"),
                FieldKind::BufferSize => m.contains("buffer size"),
                _ => false,
            };
            prop_assert!(names_it, "{}: {}", why, m);
        }
        (Outcome::Duplicate(at), Err(SnapshotError::Invalid(m))) => {
            prop_assert!(
                m.starts_with(&format!("variable #{at} ")) && m.ends_with("given twice"),
                "{}: {}",
                why,
                m
            );
        }
        (Outcome::PolicyEither, Err(SnapshotError::Invalid(m))) => {
            let FieldKind::Policy(p) = field.kind else {
                unreachable!()
            };
            prop_assert!(m.starts_with(&format!("policy #{p}:")), "{}: {}", why, m);
        }
        (_, other) => prop_assert!(false, "{}, got {:?}", why, other.map(|_| ())),
    }
    Ok(())
}

fn fixtures() -> &'static (Vec<Record>, Vec<u8>) {
    static F: std::sync::OnceLock<(Vec<Record>, Vec<u8>)> = std::sync::OnceLock::new();
    F.get_or_init(|| {
        let trace = ovmf();
        let blob = after_requests(&trace, 800).snapshot();
        (trace, blob)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = restore(&bytes);
        // past the envelope checks: a random body with a valid checksum
        if let Ok(svc) = restore(&seal(FORMAT_VERSION, &bytes)) {
            exercise(svc, &fixtures().0);
        }
    }

    /// Any single changed byte of a real snapshot is detected (CRC-32C
    /// catches every error burst up to 32 bits).
    #[test]
    fn single_byte_mutation_is_detected(at in any::<prop::sample::Index>(), xor in 1u8..) {
        let (_, blob) = fixtures();
        let mut bad = blob.clone();
        let i = at.index(bad.len());
        bad[i] ^= xor;
        prop_assert!(restore(&bad).is_err());
    }

    /// With the checksum recomputed (a forger, or a bug on the writing
    /// side), a changed body byte is refused exactly when the field it
    /// falls in may not hold the new value ([`expected_outcome`], from the
    /// format in service/snapshot.rs), and otherwise restores the changed
    /// state itself: its snapshot is the changed body.
    #[test]
    fn resealed_mutation_is_refused_for_its_field_or_restored(
        at in any::<prop::sample::Index>(),
        xor in 1u8..,
    ) {
        let (trace, blob) = fixtures();
        let original = body(blob);
        let mut b = original.to_vec();
        let i = at.index(b.len());
        b[i] ^= xor;
        let field = body_fields(original)
            .into_iter()
            .find(|f| f.range.contains(&i))
            .unwrap();
        let expected = expected_outcome(original, &b, &field);
        let result = restore(&seal(FORMAT_VERSION, &b));
        check_outcome(&field, expected, result, &b, trace)?;
    }

    /// Truncated, extended or spliced bodies with a valid checksum.
    #[test]
    fn resealed_truncation_and_insertion(
        at in any::<prop::sample::Index>(),
        insert in proptest::collection::vec(any::<u8>(), 0..8),
        cut in 0usize..8,
    ) {
        let (trace, blob) = fixtures();
        let b = body(blob);
        let i = at.index(b.len());
        let mut x = b[..i].to_vec();
        x.extend_from_slice(&insert);
        x.extend_from_slice(&b[(i + cut).min(b.len())..]);
        let result = restore(&seal(FORMAT_VERSION, &x));
        if x.first() != b.first() {
            // The word size byte is read first: a 64-bit destination
            // refuses anything else before looking further.
            prop_assert!(
                matches!(result, Err(SnapshotError::LayoutMismatch { config: 8, .. })),
                "word size {:?}: {:?}", x.first(), result.map(|_| ())
            );
        } else if x.len() != b.len() {
            // Every length field still describes the old body: it runs
            // past the end or leaves bytes over.
            prop_assert!(
                matches!(result, Err(SnapshotError::Malformed { .. } | SnapshotError::Invalid(_))),
                "{} bytes instead of {}: {:?}", x.len(), b.len(), result.map(|_| ())
            );
        } else if x == b {
            let svc = result.unwrap();
            prop_assert_eq!(svc.snapshot(), blob.clone());
            exercise(svc, trace);
        } else if let Ok(svc) = result {
            // A same-length splice: several bytes changed at once; what
            // restores is that state.
            let again = svc.snapshot();
            prop_assert_eq!(body(&again), x.as_slice());
            exercise(svc, trace);
        }
    }
}
