//! Hangs (issue 6 item 6): GetNextVariableName can never loop and policy
//! matching is bounded.
//!
//! A guest enumerates with GetNextVariableName from the empty name until
//! EFI_NOT_FOUND. The service must never hand back a name that leads the
//! walk in a circle: empty names are refused, names without a NUL inside
//! NameSize are refused, two name areas that differ only after the NUL (or
//! past NameSize) are the same variable, and a previous name that is not in
//! the store is EFI_INVALID_PARAMETER (no silent restart from the first).
//! Every test ends with a full walk bounded by the number of variables.

mod common;

use std::time::{Duration, Instant};

use uefi_vars::codec::policy_command::REGISTER as CMD_REGISTER;
use uefi_vars::codec::{request, Layout, PolicyEntryHeader};
use uefi_vars::guid::{Guid, END_OF_DXE_EVENT};
use uefi_vars::name::VarName;
use uefi_vars::policy::{PolicyLimits, POLICY_ENTRY_REVISION};
use uefi_vars::store::Visibility;
use uefi_vars::variable::{attr, VarKey, Variable};
use uefi_vars::{Config, EfiStatus, Service};

const NV_BS_RT: u32 = attr::NON_VOLATILE | attr::BOOTSERVICE_ACCESS | attr::RUNTIME_ACCESS;
const VENDOR: Guid = Guid::from_fields(0x1234_5678, 0x9abc, 0xdef0, [1, 2, 3, 4, 5, 6, 7, 8]);

fn status_at(layout: Layout, reply: &[u8], at: usize) -> EfiStatus {
    let raw = if layout == Layout::X64 {
        u64::from_le_bytes(reply[at..at + 8].try_into().unwrap())
    } else {
        let v = u64::from(u32::from_le_bytes(reply[at..at + 4].try_into().unwrap()));
        if v & (1 << 31) != 0 {
            (v & 0x7fff_ffff) | (1 << 63)
        } else {
            v
        }
    };
    EfiStatus(raw)
}

fn var_status(layout: Layout, reply: &[u8]) -> EfiStatus {
    status_at(layout, reply, layout.mm_header() + layout.uintn())
}

fn set_area(svc: &mut Service, guid: &Guid, area: &[u8], attrs: u32, data: &[u8]) -> EfiStatus {
    let layout = svc.config().layout;
    let req = request::set_variable(layout, guid, area, attrs, data);
    var_status(layout, &svc.communicate(&req).reply.unwrap())
}

fn units(u: &[u16]) -> Vec<u8> {
    u.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// One GetNextVariableName step from `area` (the previous name area).
fn next(svc: &mut Service, guid: &Guid, area: &[u8]) -> Result<(Guid, Vec<u8>), EfiStatus> {
    next_cap(svc, guid, area, 2048.max(area.len() as u64))
}

/// The same with NameSize = `capacity` (the area is zero-padded to it, so
/// `capacity == area.len()` sends exactly `area`).
fn next_cap(
    svc: &mut Service,
    guid: &Guid,
    area: &[u8],
    capacity: u64,
) -> Result<(Guid, Vec<u8>), EfiStatus> {
    let layout = svc.config().layout;
    let req = request::get_next_variable_name(layout, guid, area, capacity);
    let reply = svc.communicate(&req).reply.unwrap();
    match var_status(layout, &reply) {
        EfiStatus::SUCCESS => {
            let p = layout.var_payload_off();
            let g = Guid(reply[p..p + 16].try_into().unwrap());
            let n = layout.uintn();
            let mut size = [0u8; 8];
            size[..n].copy_from_slice(&reply[p + 16..p + 16 + n]);
            let size = u64::from_le_bytes(size) as usize;
            let off = p + layout.next_variable();
            Ok((g, reply[off..off + size].to_vec()))
        }
        s => Err(s),
    }
}

/// A full walk, at most len + 1 steps: terminates and sees each visible
/// variable once, in store order.
fn walk(svc: &mut Service) -> Vec<VarKey> {
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
    for _ in 0..=expected.len() {
        match next(svc, &guid, &area) {
            Ok((g, a)) => {
                let name = VarName::parse_wire(&a).expect("a returned name parses");
                assert!(!name.is_empty(), "the empty name was returned");
                assert_eq!(
                    name.wire_size() as usize,
                    a.len(),
                    "trailing bytes returned"
                );
                seen.push(VarKey::new(g, name));
                (guid, area) = (g, a);
            }
            Err(EfiStatus::NOT_FOUND) => {
                assert_eq!(seen, expected);
                return seen;
            }
            Err(s) => panic!("walk failed with {s:?} after {seen:?}"),
        }
    }
    panic!("the walk did not end after {} steps", expected.len() + 1);
}

fn svc(layout: Layout) -> Service {
    common::in_memory(Config::default().with_layout(layout))
}

#[test]
fn empty_names_are_refused_and_the_walk_ends() {
    for layout in [Layout::X64, Layout::IA32] {
        let mut s = svc(layout);
        let a = VarName::from("A").to_wire();
        assert_eq!(
            set_area(&mut s, &VENDOR, &a, NV_BS_RT, b"1"),
            EfiStatus::SUCCESS
        );
        for area in [vec![0, 0], vec![0, 0, 0x41, 0], vec![0; 64]] {
            assert_eq!(
                set_area(&mut s, &VENDOR, &area, NV_BS_RT, b"x"),
                EfiStatus::INVALID_PARAMETER
            );
        }
        // Authenticated and append writes with an empty name too.
        assert_eq!(
            set_area(&mut s, &VENDOR, &[0, 0], attr::SECURE_BOOT_DB, &[0; 64]),
            EfiStatus::INVALID_PARAMETER
        );
        assert_eq!(
            set_area(
                &mut s,
                &VENDOR,
                &[0, 0],
                NV_BS_RT | attr::APPEND_WRITE,
                b"x"
            ),
            EfiStatus::INVALID_PARAMETER
        );
        let seen = walk(&mut s);
        assert!(seen.iter().all(|k| !k.name.is_empty()));
    }
}

#[test]
fn names_without_nul_are_refused_everywhere() {
    for layout in [Layout::X64, Layout::IA32] {
        let mut s = svc(layout);
        let unterminated = units(&[0x41, 0x42]);
        assert_eq!(
            set_area(&mut s, &VENDOR, &unterminated, NV_BS_RT, b"\0\0"),
            EfiStatus::INVALID_PARAMETER,
            "the NUL in the data must not terminate the name"
        );
        // An odd NameSize cannot hold a UCS-2 NUL.
        assert_eq!(
            set_area(&mut s, &VENDOR, &[0x41, 0, 0], NV_BS_RT, b"1"),
            EfiStatus::INVALID_PARAMETER
        );
        for area in [&unterminated[..], &[0x41], &[]] {
            assert_eq!(
                next_cap(&mut s, &VENDOR, area, area.len() as u64),
                Err(EfiStatus::INVALID_PARAMETER),
                "{area:?}"
            );
        }
        walk(&mut s);
    }
}

#[test]
fn names_that_differ_only_after_the_nul_are_one_variable() {
    let mut s = svc(Layout::X64);
    let base = VarName::from("Same").to_wire();
    for junk in [
        &b"X\0"[..],
        b"\0\0",
        b"YYYYYYYY",
        b"\x41\x00\x42\x00\x00\x00",
    ] {
        let mut area = base.clone();
        area.extend_from_slice(junk);
        assert_eq!(
            set_area(&mut s, &VENDOR, &area, NV_BS_RT, junk),
            EfiStatus::SUCCESS
        );
    }
    let same: Vec<_> = s
        .store()
        .iter()
        .filter(|v| v.name == VarName::from("Same"))
        .collect();
    assert_eq!(same.len(), 1);
    // A walk that passes the previous name with junk after the NUL goes on
    // from the same variable.
    let mut area = base.clone();
    area.extend_from_slice(&[0x5a; 30]);
    let first = next(&mut s, &VENDOR, &area);
    let plain = next(&mut s, &VENDOR, &base);
    assert_eq!(first, plain);
    walk(&mut s);
}

#[test]
fn names_differing_only_past_name_size_are_not_confused() {
    // The name area is NameSize bytes; whatever follows (the data) is not
    // part of the name, even if it looks like one.
    let mut s = svc(Layout::X64);
    let a = VarName::from("Ab").to_wire();
    for tail in ["Ab", "AbC", "Ab\u{0}Z", ""] {
        let data: Vec<u8> = tail.encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
        let data = if data.is_empty() { vec![1] } else { data };
        assert_eq!(
            set_area(&mut s, &VENDOR, &a, NV_BS_RT, &data),
            EfiStatus::SUCCESS
        );
    }
    assert_eq!(
        s.store()
            .iter()
            .filter(|v| v.guid == VENDOR)
            .map(|v| v.name.to_string())
            .collect::<Vec<_>>(),
        ["Ab"]
    );
    // A GetNextVariableName whose NameSize cuts the name before its NUL is
    // refused even if the NUL follows just past NameSize.
    let layout = Layout::X64;
    let mut req = request::get_next_variable_name(layout, &VENDOR, &a, a.len() as u64);
    let ns_off = layout.var_payload_off() + 16;
    req[ns_off..ns_off + 8].copy_from_slice(&4u64.to_le_bytes());
    let reply = s.communicate(&req).reply.unwrap();
    assert_eq!(var_status(layout, &reply), EfiStatus::INVALID_PARAMETER);
    walk(&mut s);
}

#[test]
fn unknown_or_deleted_previous_names_do_not_restart_the_walk() {
    let mut s = svc(Layout::X64);
    for n in ["A", "B", "C"] {
        let w = VarName::from(n).to_wire();
        assert_eq!(
            set_area(&mut s, &VENDOR, &w, NV_BS_RT, b"1"),
            EfiStatus::SUCCESS
        );
    }
    let b = VarName::from("B").to_wire();
    assert!(next(&mut s, &VENDOR, &b).is_ok());
    // Delete B in the middle of a walk: continuing from B is an error, not
    // a jump back to the first variable (which would loop forever for a
    // guest that deletes as it walks).
    assert_eq!(
        set_area(&mut s, &VENDOR, &b, NV_BS_RT, b""),
        EfiStatus::SUCCESS
    );
    assert_eq!(next(&mut s, &VENDOR, &b), Err(EfiStatus::INVALID_PARAMETER));
    // Same name, other namespace: unknown.
    let c = VarName::from("C").to_wire();
    assert_eq!(
        next(&mut s, &Guid::default(), &c),
        Err(EfiStatus::INVALID_PARAMETER)
    );
    walk(&mut s);
}

#[test]
fn a_guest_deleting_every_variable_it_sees_terminates() {
    let mut s = svc(Layout::X64);
    for i in 0..300 {
        let w = VarName::from(format!("V{i}").as_str()).to_wire();
        assert_eq!(
            set_area(&mut s, &VENDOR, &w, NV_BS_RT, b"1"),
            EfiStatus::SUCCESS
        );
    }
    // Walk from the start each time, delete the first vendor variable seen.
    let mut steps = 0;
    loop {
        steps += 1;
        assert!(steps < 10_000, "does not terminate");
        let (mut g, mut a) = (Guid::default(), vec![0, 0]);
        let found = loop {
            match next(&mut s, &g, &a) {
                Ok((ng, na)) if ng == VENDOR => break Some(na),
                Ok((ng, na)) => (g, a) = (ng, na),
                Err(EfiStatus::NOT_FOUND) => break None,
                Err(e) => panic!("{e:?}"),
            }
        };
        match found {
            Some(area) => {
                assert_eq!(
                    set_area(&mut s, &VENDOR, &area, NV_BS_RT, b""),
                    EfiStatus::SUCCESS
                )
            }
            None => break,
        }
    }
    assert_eq!(steps, 301);
    walk(&mut s);
}

#[test]
fn walks_end_after_exit_boot_services_and_resets() {
    let mut s = svc(Layout::IA32);
    for (i, attrs) in [
        NV_BS_RT,
        attr::BOOTSERVICE_ACCESS,
        attr::NON_VOLATILE | attr::BOOTSERVICE_ACCESS,
    ]
    .into_iter()
    .enumerate()
    {
        let w = VarName::from(format!("V{i}").as_str()).to_wire();
        assert_eq!(
            set_area(&mut s, &VENDOR, &w, attrs, b"1"),
            EfiStatus::SUCCESS
        );
    }
    walk(&mut s);
    let req = request::event(Layout::IA32, &uefi_vars::guid::EXIT_BOOT_SERVICES_EVENT);
    s.communicate(&req);
    let rt = walk(&mut s);
    assert!(rt.iter().any(|k| k.name == VarName::from("V0")));
    assert!(!rt.iter().any(|k| k.name == VarName::from("V1")));
    s.reset().unwrap();
    walk(&mut s);
}

fn wildcard_policy(name: &[u16]) -> Vec<u8> {
    let nm = units(&[name, &[0]].concat());
    let h = PolicyEntryHeader {
        version: POLICY_ENTRY_REVISION,
        size: (44 + nm.len()) as u16,
        offset_to_name: 44,
        namespace: VENDOR,
        min_size: 0,
        max_size: u32::MAX,
        attributes_must_have: 0,
        attributes_cant_have: 0,
        lock_policy_type: 0,
    };
    let mut raw = h.encode().to_vec();
    raw.extend(nm);
    raw
}

/// Policy matching costs at most (number of policies) × (name length) unit
/// comparisons, both bounded by the policy limits; with the default limits
/// filled by the most expensive policies edk2 allows (255 wildcards, a
/// distinct long name each), SetVariable still answers quickly.
#[test]
fn policy_matching_is_bounded() {
    let limits = PolicyLimits::default();
    // A store large enough for the policies' storage charge (QEMU 11.1's
    // accounting, tests/storage_accounting.rs) and the variables below, so
    // the policy limits are what stops the REGISTERs.
    let mut s = common::in_memory(Config::default().with_max_storage(4 * 1024 * 1024));
    let hash = u16::from(b'#');
    // Every entry is 44 + 2 * (255 + 4 + 1) = 564 bytes: the byte budget
    // runs out before the count does, and every entry after the last that
    // fits is refused.
    let entry_len = wildcard_policy(&[hash; 259]).len();
    assert_eq!(entry_len, 564);
    let fit = (limits.max_total_bytes / entry_len).min(limits.max_policies);
    let mut registered = 0;
    for i in 0..limits.max_policies * 2 {
        // 255 '#' (the most edk2 allows) plus a distinct 4-digit tail.
        let mut name = vec![hash; 255];
        name.extend(format!("{i:04}").encode_utf16());
        let req = request::policy(Layout::X64, CMD_REGISTER, &wildcard_policy(&name));
        let reply = s.communicate(&req).reply.unwrap();
        let want = if i < fit {
            EfiStatus::SUCCESS
        } else {
            EfiStatus::OUT_OF_RESOURCES
        };
        assert_eq!(status_at(Layout::X64, &reply, 36), want, "entry {i}");
        registered += usize::from(i < fit);
    }
    // 256 wildcards are refused outright.
    let req = request::policy(Layout::X64, CMD_REGISTER, &wildcard_policy(&[hash; 256]));
    let reply = s.communicate(&req).reply.unwrap();
    assert_eq!(
        status_at(Layout::X64, &reply, 36),
        EfiStatus::INVALID_PARAMETER
    );
    let bytes: usize = s.policies().policies().iter().map(|p| p.raw.len()).sum();
    assert!(bytes <= limits.max_total_bytes);
    assert_eq!(s.policies().policies().len(), registered);
    assert!(limits.max_total_bytes - bytes < entry_len);
    s.communicate(&request::event(Layout::X64, &END_OF_DXE_EVENT));

    // Names of the matching length (every policy is a candidate) and long
    // names (rejected on length at once).
    let mut matching: Vec<u16> = "F".repeat(255).encode_utf16().collect();
    matching.extend("0001".encode_utf16());
    let started = Instant::now();
    for i in 0..200 {
        let name = if i % 2 == 0 {
            matching.clone()
        } else {
            vec![0x42; 500]
        };
        let area = units(&[&name[..], &[0]].concat());
        assert_eq!(
            set_area(&mut s, &VENDOR, &area, NV_BS_RT, b"1"),
            EfiStatus::SUCCESS
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "policy matching took {:?}",
        started.elapsed()
    );
    walk(&mut s);
}
