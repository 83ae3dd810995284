//! Resource limits a guest can push against (issue 6 item 5): total stored
//! bytes (`Config::max_storage`), variable size (`Config::max_variable_size`,
//! enforced when set), name length (`Config::max_name_size`), number of
//! policies and policy bytes (`Config::policy_limits`). Each test pushes
//! 10,000 times past the limit and checks the EFI status the guest gets and
//! that what the host keeps (variables, accounted bytes, policies) stays
//! under the limit.

mod common;

use uefi_vars::codec::policy_command::REGISTER as CMD_REGISTER;
use uefi_vars::codec::{request, Layout, PolicyEntryHeader};
use uefi_vars::guid::{Guid, GLOBAL_VARIABLE};
use uefi_vars::name::VarName;
use uefi_vars::policy::{PolicyLimits, POLICY_ENTRY_REVISION};
use uefi_vars::variable::attr;
use uefi_vars::{Config, EfiStatus, Service};

const NV_BS_RT: u32 = attr::NON_VOLATILE | attr::BOOTSERVICE_ACCESS | attr::RUNTIME_ACCESS;
const BS: u32 = attr::BOOTSERVICE_ACCESS;
const ATTEMPTS: usize = 10_000;
const VENDOR: Guid = Guid::from_fields(0x1234_5678, 0x9abc, 0xdef0, [1, 2, 3, 4, 5, 6, 7, 8]);

fn var_status(reply: &[u8]) -> EfiStatus {
    EfiStatus(u64::from_le_bytes(reply[32..40].try_into().unwrap()))
}

fn policy_status(reply: &[u8]) -> EfiStatus {
    EfiStatus(u64::from_le_bytes(reply[36..44].try_into().unwrap()))
}

/// ReturnStatus of a variable reply: after the MM header and Function,
/// a UINTN (on IA32 the error bit is bit 31, widened to bit 63 here).
fn status_for(layout: Layout, reply: &[u8]) -> EfiStatus {
    let at = layout.mm_header() + layout.uintn();
    if layout == Layout::X64 {
        return var_status(reply);
    }
    let v = u64::from(u32::from_le_bytes(reply[at..at + 4].try_into().unwrap()));
    EfiStatus(if v & (1 << 31) != 0 {
        (v & 0x7fff_ffff) | (1 << 63)
    } else {
        v
    })
}

fn set_wire(svc: &mut Service, name: &[u8], attrs: u32, data: &[u8]) -> EfiStatus {
    let req = request::set_variable(Layout::X64, &VENDOR, name, attrs, data);
    var_status(&svc.communicate(&req).reply.unwrap())
}

fn set(svc: &mut Service, name: &str, attrs: u32, data: &[u8]) -> EfiStatus {
    set_wire(svc, &VarName::from(name).to_wire(), attrs, data)
}

/// (maximum, remaining, maximum variable size) from QueryVariableInfo.
fn query(svc: &mut Service) -> (u64, u64, u64) {
    let reply = svc
        .communicate(&request::query_variable_info(Layout::X64, NV_BS_RT))
        .reply
        .unwrap();
    assert_eq!(var_status(&reply), EfiStatus::SUCCESS);
    let at = |o: usize| u64::from_le_bytes(reply[o..o + 8].try_into().unwrap());
    (at(40), at(48), at(56))
}

fn accounted(svc: &Service) -> u64 {
    svc.store().iter().map(|v| svc.store().cost(v)).sum()
}

#[test]
fn total_storage_is_bounded() {
    let max = 8 * 1024;
    let mut svc = common::in_memory(Config::default().with_max_storage(max));
    // Each variable costs QEMU's 96-byte record overhead, its name
    // ("V00000" and NUL: 14 bytes) and its 100 data bytes; what the
    // power-on reset created (Secure Boot state variables) is already in.
    let cost = 96 + 14 + 100;
    let baseline = svc.store().used();
    let fit = ((max - baseline) / cost) as usize;
    assert!(fit > 10, "{fit}");
    let mut accepted = 0;
    for i in 0..ATTEMPTS {
        // Alternate non-volatile and volatile: both count.
        let attrs = if i % 2 == 0 { NV_BS_RT } else { BS };
        let status = set(&mut svc, &format!("V{i:05}"), attrs, &[i as u8; 100]);
        // Every write is accepted until the budget is spent, then every
        // one is refused.
        let want = if i < fit {
            EfiStatus::SUCCESS
        } else {
            EfiStatus::OUT_OF_RESOURCES
        };
        assert_eq!(status, want, "write {i}");
        accepted += usize::from(status == EfiStatus::SUCCESS);
        assert!(svc.store().used() <= max);
    }
    assert_eq!(accepted, fit);
    assert_eq!(svc.store().used(), baseline + fit as u64 * cost);
    // The budget is reached: less room left than one more variable needs.
    assert!(max - svc.store().used() < cost);
    assert_eq!(accounted(&svc), svc.store().used());
    let (m, remaining, _) = query(&mut svc);
    assert_eq!(m, max);
    assert_eq!(remaining, max - svc.store().used());
    // Growing an existing variable past the limit is refused too, and
    // shrinking or deleting frees room again.
    assert_eq!(
        set(&mut svc, "V00000", NV_BS_RT, &vec![1; max as usize]),
        EfiStatus::OUT_OF_RESOURCES
    );
    assert_eq!(set(&mut svc, "V00000", NV_BS_RT, b""), EfiStatus::SUCCESS);
    assert_eq!(
        set(&mut svc, "Fits", NV_BS_RT, &[7; 50]),
        EfiStatus::SUCCESS
    );
}

#[test]
fn variable_size_is_enforced_when_configured() {
    let mut svc = common::in_memory(Config::default().with_max_variable_size(Some(1000)));
    assert_eq!(query(&mut svc).2, 1000);
    // "Big" is 8 bytes with its NUL: 8 + 992 = 1000 fits, 1001 does not
    // (edk2: NameSize + DataSize > MaxVariableSize is INVALID_PARAMETER).
    assert_eq!(
        set(&mut svc, "Big", NV_BS_RT, &[1; 992]),
        EfiStatus::SUCCESS
    );
    let before = svc.store().used();
    for i in 0..ATTEMPTS {
        let name = format!("Big{}", i % 10);
        let size = 993 + i % 5000;
        assert_eq!(
            set(&mut svc, &name, NV_BS_RT, &vec![2; size]),
            EfiStatus::INVALID_PARAMETER
        );
    }
    assert_eq!(
        set(&mut svc, "Big", NV_BS_RT, &[1; 993]),
        EfiStatus::INVALID_PARAMETER
    );
    assert_eq!(svc.store().used(), before);
    assert_eq!(
        svc.store()
            .iter()
            .map(|v| v.name.wire_size() + v.data.len() as u64)
            .max(),
        Some(1000)
    );
    // Deleting is always possible.
    assert_eq!(set(&mut svc, "Big", NV_BS_RT, b""), EfiStatus::SUCCESS);
}

#[test]
fn variable_size_is_only_reported_by_default() {
    // QEMU: MaximumVariableSize = max_storage / 4, not enforced.
    let mut svc = common::in_memory(Config::default());
    assert_eq!(query(&mut svc).2, 64 * 1024);
    assert_eq!(
        set(&mut svc, "Large", NV_BS_RT, &[3; 65_000]),
        EfiStatus::SUCCESS
    );
}

#[test]
fn appended_size_is_checked_after_the_merge() {
    // Setup mode: db takes unsigned APPENDs, so the merged size is what
    // grows. An EFI_SIGNATURE_LIST of one SHA-256 hash is 28 + 16 + 32 bytes.
    let hash_list = |fill: u8| {
        let mut l = uefi_vars::guid::CERT_SHA256.0.to_vec();
        l.extend_from_slice(&76u32.to_le_bytes());
        l.extend_from_slice(&0u32.to_le_bytes());
        l.extend_from_slice(&48u32.to_le_bytes());
        l.extend_from_slice(&[0x11; 16]);
        l.extend_from_slice(&[fill; 32]);
        l
    };
    let auth = |fill: u8, day: u8| {
        let mut t = [0u8; 16];
        t[0..2].copy_from_slice(&2025u16.to_le_bytes());
        t[2] = 1;
        t[3] = day;
        uefi_vars::auth::build_auth2(&uefi_vars::time::EfiTime(t), &[], &hash_list(fill))
    };
    // "db" is 6 bytes: 6 + 3 * 76 = 234 fits a limit of 240, a fourth
    // entry does not.
    let mut svc = common::in_memory(Config::default().with_max_variable_size(Some(240)));
    let db = VarName::from("db").to_wire();
    let image = uefi_vars::guid::IMAGE_SECURITY_DATABASE;
    let write = |svc: &mut Service, fill: u8, day: u8, append: bool| {
        let a = attr::SECURE_BOOT_DB | if append { attr::APPEND_WRITE } else { 0 };
        let req = request::set_variable(Layout::X64, &image, &db, a, &auth(fill, day));
        var_status(&svc.communicate(&req).reply.unwrap())
    };
    assert_eq!(write(&mut svc, 1, 1, false), EfiStatus::SUCCESS);
    assert_eq!(write(&mut svc, 2, 2, true), EfiStatus::SUCCESS);
    assert_eq!(write(&mut svc, 3, 3, true), EfiStatus::SUCCESS);
    for i in 0..100u8 {
        assert_eq!(
            write(&mut svc, 4 + i, 4, true),
            EfiStatus::INVALID_PARAMETER
        );
    }
    // Appending an entry that is already there does not grow it.
    assert_eq!(write(&mut svc, 2, 5, true), EfiStatus::SUCCESS);
    let stored = svc
        .store()
        .iter()
        .find(|v| v.name == VarName::from("db"))
        .unwrap();
    assert_eq!(stored.data.len(), 3 * 76);
}

#[test]
fn name_size_is_bounded() {
    let mut svc = common::in_memory(Config::default());
    assert_eq!(svc.config().max_name_size, 1024);
    // 511 characters + NUL = 1024 bytes: the longest name accepted.
    let longest = "N".repeat(511);
    assert_eq!(set(&mut svc, &longest, NV_BS_RT, b"x"), EfiStatus::SUCCESS);
    let len_before = svc.store().len();
    let used_before = svc.store().used();
    for i in 0..ATTEMPTS {
        let name = format!("{i:05}{}", "L".repeat(507 + i % 2000));
        assert_eq!(
            set(&mut svc, &name, NV_BS_RT, b"x"),
            EfiStatus::INVALID_PARAMETER,
            "{} characters",
            name.len()
        );
    }
    assert_eq!(svc.store().len(), len_before);
    assert_eq!(svc.store().used(), used_before);
    // Trailing bytes after the NUL do not count: the name is what is stored.
    let mut area = VarName::from("Short").to_wire();
    area.extend_from_slice(&[0x41; 4000]);
    assert_eq!(
        set_wire(&mut svc, &area, NV_BS_RT, b"y"),
        EfiStatus::SUCCESS
    );
    // Configurable, and deleting an over-long name that does not exist is a
    // harmless no-op.
    let mut small = common::in_memory(Config::default().with_max_name_size(10));
    assert_eq!(set(&mut small, "ABCD", NV_BS_RT, b"x"), EfiStatus::SUCCESS);
    assert_eq!(
        set(&mut small, "ABCDE", NV_BS_RT, b"x"),
        EfiStatus::INVALID_PARAMETER
    );
    assert_eq!(set(&mut small, "ABCDE", NV_BS_RT, b""), EfiStatus::SUCCESS);
}

fn policy_entry(name: &str, lock: u8) -> Vec<u8> {
    let nm = VarName::from(name).to_wire();
    let h = PolicyEntryHeader {
        version: POLICY_ENTRY_REVISION,
        size: (44 + nm.len()) as u16,
        offset_to_name: 44,
        namespace: VENDOR,
        min_size: 0,
        max_size: u32::MAX,
        attributes_must_have: 0,
        attributes_cant_have: 0,
        lock_policy_type: lock,
    };
    let mut raw = h.encode().to_vec();
    raw.extend(nm);
    raw
}

fn register(svc: &mut Service, raw: &[u8]) -> EfiStatus {
    let req = request::policy(Layout::X64, CMD_REGISTER, raw);
    policy_status(&svc.communicate(&req).reply.unwrap())
}

#[test]
fn policy_count_is_bounded() {
    let limits = PolicyLimits {
        max_policies: 10,
        max_total_bytes: 1 << 20,
    };
    let mut svc = common::in_memory(Config::default().with_policy_limits(limits));
    let mut ok = 0;
    for i in 0..ATTEMPTS {
        match register(&mut svc, &policy_entry(&format!("P{i}"), 0)) {
            EfiStatus::SUCCESS => ok += 1,
            EfiStatus::OUT_OF_RESOURCES => {}
            s => panic!("unexpected {s:?}"),
        }
    }
    assert_eq!(ok, 10);
    assert_eq!(svc.policies().policies().len(), 10);
    // The legacy VariableLock request registers policies too, under the
    // same limit.
    for i in 0..ATTEMPTS {
        let req = request::lock_variable(
            Layout::X64,
            &VENDOR,
            &VarName::from(format!("L{i}").as_str()).to_wire(),
        );
        assert_eq!(
            var_status(&svc.communicate(&req).reply.unwrap()),
            EfiStatus::OUT_OF_RESOURCES
        );
    }
    assert_eq!(svc.policies().policies().len(), 10);
}

#[test]
fn policy_bytes_are_bounded() {
    let limits = PolicyLimits {
        max_policies: 1 << 20,
        max_total_bytes: 4096,
    };
    let mut svc = common::in_memory(Config::default().with_policy_limits(limits));
    // Each entry is its 44-byte header and its UCS-2 name with the NUL:
    // "<i>QQQ...Q" is 446 + 2 * digits(i) bytes. The budget counts entries
    // as registered (edk2 VariablePolicyLib RegisterVariablePolicy grows
    // its table by the entry's Size); an entry that does not fit any more
    // is refused with EFI_OUT_OF_RESOURCES and a later, smaller one may
    // still fit.
    let long = "Q".repeat(200);
    let mut total = 0;
    let mut accepted = 0;
    let mut refused = 0;
    for i in 0..ATTEMPTS {
        let entry = policy_entry(&format!("{i}{long}"), 0);
        let size = 44 + 2 * (i.to_string().len() + 200 + 1);
        assert_eq!(entry.len(), size);
        let want = if total + size <= 4096 {
            total += size;
            accepted += 1;
            EfiStatus::SUCCESS
        } else {
            refused += 1;
            EfiStatus::OUT_OF_RESOURCES
        };
        assert_eq!(register(&mut svc, &entry), want, "entry {i}");
    }
    // 4096 bytes take nine entries of 448 to 454 bytes; the rest is refused.
    assert_eq!((accepted, refused), (9, ATTEMPTS - 9));
    let bytes: usize = svc.policies().policies().iter().map(|p| p.raw.len()).sum();
    assert_eq!(bytes, total);
    assert_eq!(svc.policies().policies().len(), accepted);
    assert_eq!(svc.policies().dump().len(), bytes);
    // What is left (4096 - 9 * 448 = 64 bytes) takes a small entry ("S":
    // 48 bytes), then nothing more.
    assert_eq!(4096 - total, 64);
    assert_eq!(
        register(&mut svc, &policy_entry("S", 0)),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        register(&mut svc, &policy_entry("T", 0)),
        EfiStatus::OUT_OF_RESOURCES
    );
    // A machine reset forgets them all.
    svc.reset().unwrap();
    assert!(svc.policies().policies().is_empty());
}

#[test]
fn limits_hold_for_both_word_sizes() {
    for layout in [Layout::X64, Layout::IA32] {
        // [refused for room, stored] among the writes within the limits.
        let mut outcomes = [0usize; 2];
        let mut svc = common::in_memory(
            Config::default()
                .with_layout(layout)
                .with_max_storage(4096)
                .with_max_variable_size(Some(512))
                .with_max_name_size(64),
        );
        for i in 0..1000usize {
            let name = "n".repeat(1 + i % 40);
            let req = request::set_variable(
                layout,
                &GLOBAL_VARIABLE,
                &VarName::from(format!("{i}{name}").as_str()).to_wire(),
                NV_BS_RT,
                &vec![0x5a; i % 700 + 1],
            );
            let reply = svc.communicate(&req).reply.unwrap();
            assert_eq!(reply.len(), req.len());
            // The name ("<i>" then 1 to 40 n's, with its NUL) and the data
            // are within their limits or the write is INVALID_PARAMETER
            // (edk2 VariableServiceSetVariable); within them it is stored
            // or refused for room.
            let name_size = 2 * (i.to_string().len() + 1 + i % 40 + 1);
            let size = name_size + i % 700 + 1;
            let status = status_for(layout, &reply);
            if name_size > 64 || size > 512 {
                assert_eq!(status, EfiStatus::INVALID_PARAMETER, "{layout:?} {i}");
            } else {
                assert!(
                    [EfiStatus::SUCCESS, EfiStatus::OUT_OF_RESOURCES].contains(&status),
                    "{layout:?} {i}: {status:?}"
                );
                outcomes[usize::from(status == EfiStatus::SUCCESS)] += 1;
            }
            assert!(svc.store().used() <= 4096);
            for v in svc.store().iter() {
                assert!(v.name.wire_size() <= 64);
            }
        }
        // Both outcomes happened: the budget was reached.
        assert!(
            outcomes[0] > 0 && outcomes[1] > 0,
            "{layout:?} {outcomes:?}"
        );
    }
}
