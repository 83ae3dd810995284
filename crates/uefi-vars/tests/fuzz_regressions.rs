//! Regression tests for what the fuzz targets in `fuzz/` found
//! (docs/robustness.md lists each finding), plus a check that the signed
//! updates the structured fuzz target replays (`fuzz/data/auth`) still pass
//! verification, so the fuzzer keeps reaching past the signature check.
//! Every test ends with a full GetNextVariableName walk.

// Without the `openssl` feature the signature tests are left out, and the
// helpers only they use with them.
#![cfg_attr(not(feature = "openssl"), allow(dead_code, unused_imports))]

mod common;

use std::path::Path;

use uefi_vars::codec::{request, Layout};
use uefi_vars::guid::{Guid, GLOBAL_VARIABLE, IMAGE_SECURITY_DATABASE};
use uefi_vars::name::VarName;
use uefi_vars::store::Visibility;
use uefi_vars::variable::{attr, VarKey, Variable};
use uefi_vars::{Config, EfiStatus, Service};

const PRIVATE: Guid = Guid::from_fields(
    0x9999_9999,
    0x8888,
    0x7777,
    [0x66, 0x66, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55],
);

fn var_status(layout: Layout, reply: &[u8]) -> EfiStatus {
    let at = layout.mm_header() + layout.uintn();
    if layout == Layout::X64 {
        EfiStatus(u64::from_le_bytes(reply[at..at + 8].try_into().unwrap()))
    } else {
        let v = u64::from(u32::from_le_bytes(reply[at..at + 4].try_into().unwrap()));
        EfiStatus(if v & (1 << 31) != 0 {
            (v & 0x7fff_ffff) | (1 << 63)
        } else {
            v
        })
    }
}

/// A full GetNextVariableName walk: ends, and sees every visible variable
/// once in store order.
fn walk(svc: &mut Service) {
    let layout = svc.config().layout;
    let vis = if svc.phase().exit_boot_services {
        Visibility::Runtime
    } else {
        Visibility::BootServices
    };
    let expected: Vec<VarKey> = svc
        .store()
        .iter()
        .filter(|v| vis.allows(v.attributes))
        .map(Variable::key)
        .collect();
    let mut seen = Vec::new();
    let (mut guid, mut area) = (Guid::default(), vec![0u8, 0]);
    let p = layout.var_payload_off();
    for _ in 0..=expected.len() {
        let mut capacity = svc.config().max_storage.min(4096).max(area.len() as u64);
        let mut reply = Vec::new();
        for _ in 0..2 {
            let req = request::get_next_variable_name(layout, &guid, &area, capacity);
            reply = svc.communicate(&req).reply.unwrap();
            // As edk2's client: retry once with the NameSize asked for.
            let mut needed = [0u8; 8];
            needed[..layout.uintn()].copy_from_slice(&reply[p + 16..p + 16 + layout.uintn()]);
            let needed = u64::from_le_bytes(needed);
            if var_status(layout, &reply) != EfiStatus::BUFFER_TOO_SMALL || needed <= capacity {
                break;
            }
            capacity = needed;
        }
        match var_status(layout, &reply) {
            EfiStatus::SUCCESS => {}
            EfiStatus::NOT_FOUND => {
                assert_eq!(seen, expected);
                return;
            }
            s => panic!("walk failed with {s:?}"),
        }
        guid = Guid(reply[p..p + 16].try_into().unwrap());
        let mut size = [0u8; 8];
        size[..layout.uintn()].copy_from_slice(&reply[p + 16..p + 16 + layout.uintn()]);
        let off = p + layout.next_variable();
        area = reply[off..off + u64::from_le_bytes(size) as usize].to_vec();
        seen.push(VarKey::new(guid, VarName::parse_wire(&area).unwrap()));
    }
    panic!("walk did not end");
}

fn signed(svc: &mut Service, file: &str, guid: Guid, name: &str, append: bool) -> EfiStatus {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/data/auth");
    let data = std::fs::read(dir.join(format!("{file}.auth"))).unwrap();
    let attrs = attr::SECURE_BOOT_DB | if append { attr::APPEND_WRITE } else { 0 };
    let req = request::set_variable(
        Layout::X64,
        &guid,
        &VarName::from(name).to_wire(),
        attrs,
        &data,
    );
    var_status(Layout::X64, &svc.communicate(&req).reply.unwrap())
}

/// The fuzz target `service_ops` embeds these updates; replayed in order
/// they walk the whole Secure Boot key hierarchy, including refusals.
/// Needs a PKCS#7 verifier (the `openssl` feature); without one see
/// `without_a_verifier_a_signed_private_write_is_refused`.
#[cfg(feature = "openssl")]
#[test]
fn fuzz_signed_updates_pass_verification() {
    use EfiStatus as S;
    let (g, i) = (GLOBAL_VARIABLE, IMAGE_SECURITY_DATABASE);
    let steps: &[(&str, Guid, &str, bool, EfiStatus)] = &[
        ("00-PK", g, "PK", false, S::SUCCESS),
        ("01-KEK", g, "KEK", false, S::SUCCESS),
        ("02-KEK-append", g, "KEK", true, S::SUCCESS),
        ("03-db", i, "db", false, S::SUCCESS),
        ("04-db-append", i, "db", true, S::SUCCESS),
        ("05-dbx", i, "dbx", false, S::SUCCESS),
        ("06-db-by-PK", i, "db", false, S::SUCCESS),
        ("07-db-rogue", i, "db", false, S::SECURITY_VIOLATION),
        ("08-KEK-by-KEK", g, "KEK", false, S::SECURITY_VIOLATION),
        ("09-PK-rotate", g, "PK", false, S::SUCCESS),
        // PK is now the rogue certificate.
        ("10-PK-delete", g, "PK", false, S::SECURITY_VIOLATION),
        ("11-PK-del-rogue", g, "PK", false, S::SUCCESS),
        // Setup mode again: db needs no signature.
        ("12-db-delete", i, "db", false, S::SUCCESS),
        ("13-priv", PRIVATE, "FuzzPriv", false, S::SUCCESS),
        ("14-priv-update", PRIVATE, "FuzzPriv", false, S::SUCCESS),
        (
            "15-priv-rogue",
            PRIVATE,
            "FuzzPriv",
            false,
            S::SECURITY_VIOLATION,
        ),
        ("16-priv-delete", PRIVATE, "FuzzPriv", false, S::SUCCESS),
    ];
    let mut svc = common::in_memory(Config::default());
    for &(file, guid, name, append, expect) in steps {
        assert_eq!(signed(&mut svc, file, guid, name, append), expect, "{file}");
        walk(&mut svc);
    }
    assert!(svc
        .store()
        .get(&VarKey::new(PRIVATE, VarName::from("FuzzPriv")))
        .is_none());
}

fn next_status(svc: &mut Service, capacity: u64) -> (EfiStatus, u64) {
    let layout = svc.config().layout;
    let req = request::get_next_variable_name(layout, &Guid::default(), &[0, 0], capacity);
    let reply = svc.communicate(&req).reply.unwrap();
    let p = layout.var_payload_off() + 16;
    let size = u64::from_le_bytes(reply[p..p + 8].try_into().unwrap());
    (var_status(layout, &reply), size)
}

/// service_ops, finding 1 (harness): with a store smaller than the walk's
/// 2048-byte name buffer, GetNextVariableName answers OUT_OF_RESOURCES
/// (QEMU refuses any NameSize above the storage size, and so do we); a
/// name buffer within the store size walks normally.
#[test]
fn get_next_name_buffer_larger_than_a_tiny_store() {
    let mut svc = common::in_memory(Config::default().with_max_storage(1500));
    assert_eq!(next_status(&mut svc, 2048).0, EfiStatus::OUT_OF_RESOURCES);
    assert_eq!(next_status(&mut svc, 1500).0, EfiStatus::SUCCESS);
    walk(&mut svc);
}

/// service_ops, finding 2 (harness): a name longer than the guest's name
/// buffer (here 1801 characters, allowed by a raised `max_name_size`) gives
/// BUFFER_TOO_SMALL with the NameSize needed; retrying with it continues
/// the walk, which still ends.
#[test]
fn get_next_long_name_reports_the_size_needed() {
    let mut svc = common::in_memory(
        Config::default()
            .with_max_storage(16 * 1024)
            .with_max_name_size(46421),
    );
    let name = VarName::from_units(vec![0xffff; 1801]).to_wire();
    let req = request::set_variable(
        Layout::X64,
        &GLOBAL_VARIABLE,
        &name,
        attr::NON_VOLATILE | attr::BOOTSERVICE_ACCESS | attr::RUNTIME_ACCESS,
        &[45, 0],
    );
    assert_eq!(
        var_status(Layout::X64, &svc.communicate(&req).reply.unwrap()),
        EfiStatus::SUCCESS
    );
    // Walk to the variable before it, then ask with too small a buffer.
    let last = svc.store().iter().last().unwrap().key();
    assert_eq!(last.name.units().len(), 1801);
    let before = svc.store().iter().nth(svc.store().len() - 2).unwrap().key();
    let req =
        request::get_next_variable_name(Layout::X64, &before.guid, &before.name.to_wire(), 2048);
    let reply = svc.communicate(&req).reply.unwrap();
    assert_eq!(var_status(Layout::X64, &reply), EfiStatus::BUFFER_TOO_SMALL);
    let p = Layout::X64.var_payload_off() + 16;
    assert_eq!(
        u64::from_le_bytes(reply[p..p + 8].try_into().unwrap()),
        name.len() as u64
    );
    walk(&mut svc);
}

/// The first write of a private time-based authenticated variable must
/// verify its signature (edk2 AuthVariableLib
/// VerifyTimeBasedPayloadAndUpdate): accepted with the OpenSSL verifier,
/// refused when the library is built without one (`--no-default-features`,
/// crypto::NoCrypto).
#[test]
fn without_a_verifier_a_signed_private_write_is_refused() {
    let mut svc = common::in_memory(Config::default());
    let status = signed(&mut svc, "13-priv", PRIVATE, "FuzzPriv", false);
    let key = VarKey::new(PRIVATE, VarName::from("FuzzPriv"));
    if cfg!(feature = "openssl") {
        assert_eq!(status, EfiStatus::SUCCESS);
        assert!(svc.store().get(&key).is_some());
    } else {
        assert_eq!(status, EfiStatus::SECURITY_VIOLATION);
        assert!(svc.store().get(&key).is_none());
    }
}
