//! The storage accounting QueryVariableInfo reports and SetVariable and
//! policy REGISTER are checked against, as QEMU 11.1 keeps it
//! (docs/compat.md "Storage accounting").
//!
//! Every variable costs 96 bytes (QEMU's host record) + NameSize + DataSize
//! (+ the digest of a private authenticated variable); QEMU 11.1 also
//! charges each policy a REGISTER stores with its entry size, and QEMU 10.0
//! did not (`Config::legacy_storage_accounting`). The expected numbers
//! below are what QEMU 11.1.3 (Debian 1:11.1.3+ds-2~bpo13+1) answered to
//! the same requests through the oracle's test guest
//! (crates/uefi-vars-qemu-oracle; its conformance suite compares every
//! QueryVariableInfo of the random sequences with QEMU 10.0 and 11.1).

use uefi_vars::codec::{request, Layout};
use uefi_vars::guid::GLOBAL_VARIABLE;
use uefi_vars::{Config, EfiStatus, Service};

const L: Layout = Layout::X64;
const NV_BS_RT: u32 = 7;
/// The Secure Boot state variables a reset creates (SetupMode 117,
/// SignatureSupport 210, SecureBoot 119, CustomMode 119, VendorKeysNv 123,
/// VendorKeys 119): QEMU 11.1.3 reports 261337 free of 262144 at boot.
const START_UP_USAGE: u64 = 807;

fn ucs2(s: &str) -> Vec<u8> {
    let mut v: Vec<u8> = s.encode_utf16().flat_map(u16::to_le_bytes).collect();
    v.extend_from_slice(&[0, 0]);
    v
}

fn var_status(s: &mut Service, req: &[u8]) -> EfiStatus {
    let r = s.communicate(req).reply.expect("reply");
    EfiStatus(u64::from_le_bytes(r[32..40].try_into().unwrap()))
}

fn policy_status(s: &mut Service, command: u32, params: &[u8]) -> EfiStatus {
    let r = s
        .communicate(&request::policy(L, command, params))
        .reply
        .expect("reply");
    EfiStatus(u64::from_le_bytes(r[36..44].try_into().unwrap()))
}

/// RemainingVariableStorageSize.
fn remaining(s: &mut Service) -> u64 {
    let r = s
        .communicate(&request::query_variable_info(L, NV_BS_RT))
        .reply
        .expect("reply");
    u64::from_le_bytes(r[48..56].try_into().unwrap())
}

/// A NO_LOCK policy for `name` in the global namespace: 44 + NameSize bytes.
fn entry(name: &str) -> Vec<u8> {
    let n = ucs2(name);
    let mut e = 0x0001_0000u32.to_le_bytes().to_vec();
    e.extend_from_slice(&u16::try_from(44 + n.len()).unwrap().to_le_bytes());
    e.extend_from_slice(&44u16.to_le_bytes());
    e.extend_from_slice(&GLOBAL_VARIABLE.0);
    e.extend_from_slice(&0u32.to_le_bytes()); // MinSize
    e.extend_from_slice(&u32::MAX.to_le_bytes()); // MaxSize
    e.extend_from_slice(&[0; 8]); // attributes must / can't have
    e.extend_from_slice(&[0; 4]); // NO_LOCK, reserved
    e.extend_from_slice(&n);
    e
}

fn set(s: &mut Service, name: &str, attrs: u32, data: &[u8]) -> EfiStatus {
    var_status(
        s,
        &request::set_variable(L, &GLOBAL_VARIABLE, &ucs2(name), attrs, data),
    )
}

#[test]
fn registered_policies_are_charged_their_entry_size() {
    let mut s = Service::in_memory(Config::default());
    let free = remaining(&mut s);
    assert_eq!(free, 262_144 - START_UP_USAGE);
    assert_eq!(policy_status(&mut s, 3, &entry("Abc")), EfiStatus::SUCCESS);
    assert_eq!(remaining(&mut s), free - 52);
    // A duplicate is refused and not charged.
    assert_eq!(
        policy_status(&mut s, 3, &entry("Abc")),
        EfiStatus::ALREADY_STARTED
    );
    assert_eq!(remaining(&mut s), free - 52);
    // LOCK_VARIABLE's LOCK_NOW policy is not charged.
    let lock = request::lock_variable(L, &GLOBAL_VARIABLE, &ucs2("Lk"));
    assert_eq!(var_status(&mut s, &lock), EfiStatus::SUCCESS);
    assert_eq!(remaining(&mut s), free - 52);
    // Variables on top: 96 + 8 + 3.
    assert_eq!(set(&mut s, "Nv1", NV_BS_RT, &[1; 3]), EfiStatus::SUCCESS);
    assert_eq!(remaining(&mut s), free - 52 - 107);
    assert_eq!(set(&mut s, "Nv1", NV_BS_RT, &[]), EfiStatus::SUCCESS);
    assert_eq!(remaining(&mut s), free - 52);
    // After LOCK, a refused REGISTER is not charged either.
    assert_eq!(policy_status(&mut s, 5, &[]), EfiStatus::SUCCESS);
    assert_eq!(
        policy_status(&mut s, 3, &entry("Post")),
        EfiStatus::WRITE_PROTECTED
    );
    assert_eq!(remaining(&mut s), free - 52);
}

#[test]
fn a_full_store_refuses_policies_and_variables() {
    let mut s = Service::in_memory(Config::default().with_max_storage(2048));
    assert_eq!(remaining(&mut s), 1241);
    // 44 + 112-byte name: 156 bytes each.
    let name = |i: usize| format!("Policy{i:03}{}", "x".repeat(46));
    for i in 0..7 {
        assert_eq!(
            policy_status(&mut s, 3, &entry(&name(i))),
            EfiStatus::SUCCESS
        );
    }
    assert_eq!(remaining(&mut s), 149);
    // QEMU 11.1.3 looks for a duplicate before it looks at the space.
    assert_eq!(
        policy_status(&mut s, 3, &entry(&name(0))),
        EfiStatus::ALREADY_STARTED
    );
    assert_eq!(
        policy_status(&mut s, 3, &entry(&"y".repeat(51))),
        EfiStatus::SUCCESS
    );
    assert_eq!(remaining(&mut s), 1);
    assert_eq!(
        policy_status(&mut s, 3, &entry("X")),
        EfiStatus::OUT_OF_RESOURCES
    );
    assert_eq!(
        set(&mut s, "Nv1", NV_BS_RT, &[1; 3]),
        EfiStatus::OUT_OF_RESOURCES
    );
    assert_eq!(remaining(&mut s), 1);
}

#[test]
fn legacy_accounting_leaves_policies_out() {
    // QEMU 10.0.2: REGISTER changes nothing in QueryVariableInfo.
    let mut s = Service::in_memory(Config::default().with_legacy_storage_accounting(true));
    let free = remaining(&mut s);
    assert_eq!(policy_status(&mut s, 3, &entry("Abc")), EfiStatus::SUCCESS);
    assert_eq!(remaining(&mut s), free);
    let mut s = Service::in_memory(
        Config::default()
            .with_max_storage(2048)
            .with_legacy_storage_accounting(true),
    );
    for i in 0..10 {
        let e = entry(&format!("Policy{i:03}{}", "x".repeat(46)));
        assert_eq!(policy_status(&mut s, 3, &e), EfiStatus::SUCCESS);
    }
    assert_eq!(set(&mut s, "Nv1", NV_BS_RT, &[1; 300]), EfiStatus::SUCCESS);
}

#[test]
fn compat_policy_charge_reset() {
    // QEMU 11.1.3 drops the policies at a machine reset but keeps their
    // charge (261285 free before and after the reset below, until QEMU
    // restarts); we give it back with the policies.
    let mut s = Service::in_memory(Config::default());
    let free = remaining(&mut s);
    assert_eq!(policy_status(&mut s, 3, &entry("Abc")), EfiStatus::SUCCESS);
    assert_eq!(remaining(&mut s), free - 52);
    s.reset().unwrap();
    assert_eq!(remaining(&mut s), free);
    // The same entry again after the reset: charged once, not twice.
    assert_eq!(policy_status(&mut s, 3, &entry("Abc")), EfiStatus::SUCCESS);
    assert_eq!(remaining(&mut s), free - 52);
}
