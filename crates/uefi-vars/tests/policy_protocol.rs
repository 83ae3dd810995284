//! The VarCheck policy protocol (docs/reference/policy.md) through `Service::communicate`:
//! REGISTER framing and validation, IS_ENABLED, DISABLE, LOCK, DUMP,
//! GET_INFO, and enforcement of every lock type on SetVariable.
//!
//! Requests are built byte by byte at the offsets docs/reference/policy.md gives. Expected
//! values come from the spec and QEMU's `hw/uefi/var-service-policy.c`;
//! where we follow edk2 instead (docs/compat.md) the test is named
//! `compat_<id>_…` and a comment gives QEMU's answer.

mod common;

use std::str::FromStr;

use uefi_vars::guid::Guid;
use uefi_vars::policy::PolicyLimits;
use uefi_vars::{Config, DeviceStatus, EfiStatus, MmResponse, Service};

fn g(text: &str) -> Guid {
    Guid::from_str(text).unwrap()
}
fn policy_mmi() -> Guid {
    g("da1b0d11-d1a7-46c4-9dc9-f3714875c6eb")
}
fn smm_variable() -> Guid {
    g("ed32d533-99e6-4209-9cc0-2d72cdd998a7")
}
fn end_of_dxe_event() -> Guid {
    g("02ce967a-dd7e-4ffc-9ee7-810cf0470880")
}
fn ready_to_boot_event() -> Guid {
    g("7ce88fb3-4bd7-4679-87a8-a8d8dee50d2b")
}
fn global() -> Guid {
    g("8be4df61-93ca-11d2-aa0d-00e098032b8c")
}
fn vendor() -> Guid {
    g("11111111-2222-3333-4444-555555555555")
}
fn other_vendor() -> Guid {
    g("66666666-7777-8888-9999-aaaaaaaaaaaa")
}
fn pkcs7_guid() -> Guid {
    g("4aafd29d-68df-49ee-8aa9-347d375665a7")
}
fn cert_x509() -> Guid {
    g("a5c059a1-94e4-4aa7-87b5-ab155c2bf072")
}

const NV: u32 = 0x01;
const BS: u32 = 0x02;
const RT: u32 = 0x04;
const AT: u32 = 0x20;
const AP: u32 = 0x40;
const NV_BS_RT: u32 = NV | BS | RT;

const JUNK: u64 = 0xafaf_afaf_afaf_afaf;

const CMD_DISABLE: u32 = 1;
const CMD_IS_ENABLED: u32 = 2;
const CMD_REGISTER: u32 = 3;
const CMD_DUMP: u32 = 4;
const CMD_LOCK: u32 = 5;
const CMD_GET_INFO: u32 = 6;
const CMD_GET_LOCK_VAR_STATE_INFO: u32 = 7;

const NO_LOCK: u8 = 0;
const LOCK_NOW: u8 = 1;
const LOCK_ON_CREATE: u8 = 2;
const LOCK_ON_VAR_STATE: u8 = 3;

/// Absolute offsets (docs/reference/policy.md §1): Result u64 at 36, parameters at 44.
const RESULT_OFF: usize = 36;
const PARAMS: usize = 44;
/// edk2's 16 KiB policy buffer minus MM header, policy header and the
/// 13-byte DUMP parameters (docs/reference/policy.md §2).
const PAGE: usize = 16384 - 24 - 20 - 13;

fn ucs2(s: &str) -> Vec<u8> {
    s.encode_utf16()
        .chain(std::iter::once(0))
        .flat_map(u16::to_le_bytes)
        .collect()
}

fn mm(header: &Guid, msg: &[u8]) -> Vec<u8> {
    let mut v = header.0.to_vec();
    v.extend_from_slice(&(msg.len() as u64).to_le_bytes());
    v.extend_from_slice(msg);
    v
}

fn policy_req_raw(signature: u32, revision: u32, command: u32, params: &[u8]) -> Vec<u8> {
    let mut m = signature.to_le_bytes().to_vec();
    m.extend_from_slice(&revision.to_le_bytes());
    m.extend_from_slice(&command.to_le_bytes());
    m.extend_from_slice(&JUNK.to_le_bytes());
    m.extend_from_slice(params);
    mm(&policy_mmi(), &m)
}

fn policy_req(command: u32, params: &[u8]) -> Vec<u8> {
    policy_req_raw(u32::from_le_bytes(*b"VCPC"), 1, command, params)
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}
fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}

fn call(svc: &mut Service, req: &[u8]) -> MmResponse {
    let resp = svc.communicate(req);
    if let Some(r) = &resp.reply {
        assert_eq!(r.len(), 24 + u64_at(req, 16) as usize, "reply length");
    }
    resp
}

fn reply(resp: &MmResponse) -> &[u8] {
    assert_eq!(resp.status, DeviceStatus::Success);
    resp.reply.as_deref().unwrap()
}

/// The policy Result of a command.
fn result(svc: &mut Service, req: &[u8]) -> EfiStatus {
    EfiStatus(u64_at(reply(&call(svc, req)), RESULT_OFF))
}

fn svc() -> Service {
    common::in_memory(Config::default())
}

/// A VARIABLE_POLICY_ENTRY (docs/reference/policy.md §3) with optional overrides of the
/// size fields, so malformed entries can be built too.
#[derive(Clone)]
struct Entry {
    version: u32,
    namespace: Guid,
    min: u32,
    max: u32,
    must: u32,
    cant: u32,
    lock: u8,
    /// (Namespace, Value, raw state-name bytes) for LOCK_ON_VAR_STATE.
    state: Option<(Guid, u8, Vec<u8>)>,
    /// Raw name bytes; `None` for a namespace-wide policy.
    name: Option<Vec<u8>>,
    size: Option<u16>,
    offset_to_name: Option<u16>,
}

impl Entry {
    fn named(namespace: Guid, name: &str) -> Self {
        Entry {
            version: 0x0001_0000,
            namespace,
            min: 0,
            max: u32::MAX,
            must: 0,
            cant: 0,
            lock: NO_LOCK,
            state: None,
            name: Some(ucs2(name)),
            size: None,
            offset_to_name: None,
        }
    }
    fn nameless(namespace: Guid) -> Self {
        Entry {
            name: None,
            ..Entry::named(namespace, "")
        }
    }
    fn lock(mut self, lock: u8) -> Self {
        self.lock = lock;
        self
    }
    fn sizes(mut self, min: u32, max: u32) -> Self {
        self.min = min;
        self.max = max;
        self
    }
    fn attrs(mut self, must: u32, cant: u32) -> Self {
        self.must = must;
        self.cant = cant;
        self
    }
    fn on_state(mut self, namespace: Guid, value: u8, name: &str) -> Self {
        self.lock = LOCK_ON_VAR_STATE;
        self.state = Some((namespace, value, ucs2(name)));
        self
    }
    fn bytes(&self) -> Vec<u8> {
        let mut st = Vec::new();
        if let Some((ns, value, name)) = &self.state {
            st.extend_from_slice(&ns.0);
            st.push(*value);
            st.push(0);
            st.extend_from_slice(name);
        }
        let name = self.name.clone().unwrap_or_default();
        let offset = self.offset_to_name.unwrap_or((44 + st.len()) as u16);
        let size = self.size.unwrap_or((44 + st.len() + name.len()) as u16);
        let mut e = self.version.to_le_bytes().to_vec();
        e.extend_from_slice(&size.to_le_bytes());
        e.extend_from_slice(&offset.to_le_bytes());
        e.extend_from_slice(&self.namespace.0);
        e.extend_from_slice(&self.min.to_le_bytes());
        e.extend_from_slice(&self.max.to_le_bytes());
        e.extend_from_slice(&self.must.to_le_bytes());
        e.extend_from_slice(&self.cant.to_le_bytes());
        e.push(self.lock);
        e.extend_from_slice(&[0, 0, 0]);
        e.extend_from_slice(&st);
        e.extend_from_slice(&name);
        e
    }
}

fn register_raw(svc: &mut Service, entry: &[u8]) -> EfiStatus {
    result(svc, &policy_req(CMD_REGISTER, entry))
}

fn register(svc: &mut Service, entry: &Entry) -> EfiStatus {
    register_raw(svc, &entry.bytes())
}

fn policy_count(svc: &Service) -> usize {
    svc.policies().policies().len()
}

// Variable protocol helpers (docs/reference/mm-protocol.md §4).

fn set(svc: &mut Service, guid: &Guid, name: &str, attrs: u32, data: &[u8]) -> EfiStatus {
    let n = ucs2(name);
    let mut m = 3u64.to_le_bytes().to_vec();
    m.extend_from_slice(&JUNK.to_le_bytes());
    m.extend_from_slice(&guid.0);
    m.extend_from_slice(&(data.len() as u64).to_le_bytes());
    m.extend_from_slice(&(n.len() as u64).to_le_bytes());
    m.extend_from_slice(&attrs.to_le_bytes());
    m.extend_from_slice(&n);
    m.extend_from_slice(data);
    EfiStatus(u64_at(reply(&call(svc, &mm(&smm_variable(), &m))), 32))
}

fn delete(svc: &mut Service, guid: &Guid, name: &str) -> EfiStatus {
    set(svc, guid, name, 0, &[])
}

fn exists(svc: &Service, guid: &Guid, name: &str) -> bool {
    svc.store()
        .iter()
        .any(|v| v.guid == *guid && v.name.to_string() == name)
}

fn end_of_dxe(svc: &mut Service) {
    let resp = call(svc, &mm(&end_of_dxe_event(), &[0]));
    assert_eq!(resp.status, DeviceStatus::Success);
    assert!(svc.phase().end_of_dxe);
}

// ---------------------------------------------------------------------------
// Framing of the policy header (docs/reference/policy.md §1).

#[test]
fn message_shorter_than_the_policy_header_is_device_bad_buffer_size() {
    let mut s = svc();
    let full = policy_req(CMD_LOCK, &[]);
    for ml in [0u64, 1, 12, 19] {
        let mut req = full.clone();
        req[16..24].copy_from_slice(&ml.to_le_bytes());
        req.truncate(24 + ml as usize);
        let resp = call(&mut s, &req);
        assert_eq!(resp.status, DeviceStatus::ErrBadBufferSize, "ml {ml}");
        assert_eq!(resp.reply.as_deref(), Some(&req[..]));
    }
    // the LOCK never ran
    assert!(!s.policies().is_locked());
    assert_eq!(result(&mut s, &full), EfiStatus::SUCCESS);
    assert!(s.policies().is_locked());
}

#[test]
fn unknown_commands_are_unsupported() {
    let mut s = svc();
    for cmd in [0u32, 8, 9, 0x100, u32::MAX] {
        assert_eq!(
            result(&mut s, &policy_req(cmd, &[0; 64])),
            EfiStatus::UNSUPPORTED,
            "cmd {cmd}"
        );
    }
}

#[test]
fn compat_policy_signature_and_revision_are_checked() {
    // QEMU ignores Signature and Revision and runs the command.
    let mut s = svc();
    let entry = Entry::named(vendor(), "V").bytes();
    for (sig, rev) in [
        (0u32, 1u32),
        (u32::from_le_bytes(*b"VCPD"), 1),
        (u32::from_le_bytes(*b"VCPC"), 2),
    ] {
        let req = policy_req_raw(sig, rev, CMD_REGISTER, &entry);
        assert_eq!(result(&mut s, &req), EfiStatus::INVALID_PARAMETER);
        let req = policy_req_raw(sig, rev, CMD_LOCK, &[]);
        assert_eq!(result(&mut s, &req), EfiStatus::INVALID_PARAMETER);
    }
    assert_eq!(policy_count(&s), 0);
    assert!(!s.policies().is_locked());
    assert_eq!(register_raw(&mut s, &entry), EfiStatus::SUCCESS);
}

// ---------------------------------------------------------------------------
// REGISTER (docs/reference/policy.md §4).

#[test]
fn register_stores_the_entry_verbatim() {
    let mut s = svc();
    let e = Entry::named(vendor(), "Boot####")
        .sizes(1, 8)
        .attrs(NV | BS, RT)
        .lock(LOCK_ON_CREATE);
    assert_eq!(register(&mut s, &e), EfiStatus::SUCCESS);
    assert_eq!(s.policies().policies()[0].raw, e.bytes());
    // the reply carries only Result
    let req = policy_req(CMD_REGISTER, &Entry::named(vendor(), "Other").bytes());
    let resp = call(&mut s, &req);
    let r = reply(&resp);
    assert_eq!(u64_at(r, RESULT_OFF), 0);
    assert_eq!(&r[PARAMS..], &req[PARAMS..]);
}

/// edk2 VarCheckPolicyLibMmiHandler (REGISTER framing: MessageLength,
/// Version, Size) and RegisterVariablePolicy → IsValidVariablePolicyStructure
/// (offsets): every inconsistency is EFI_INVALID_PARAMETER. QEMU answers
/// EFI_BAD_BUFFER_SIZE for all of them.
#[test]
fn compat_policy_framing_register_inconsistent_sizes_are_invalid_parameter() {
    let mut s = svc();
    let good = Entry::named(vendor(), "A");
    // 1. MessageLength < 20 + 44
    assert_eq!(
        register_raw(&mut s, &good.bytes()[..43]),
        EfiStatus::INVALID_PARAMETER
    );
    assert_eq!(register_raw(&mut s, &[]), EfiStatus::INVALID_PARAMETER);
    // 2. 20 + Size > MessageLength
    let mut e = good.clone();
    e.size = Some(44 + 4 + 2);
    assert_eq!(register(&mut s, &e), EfiStatus::INVALID_PARAMETER);
    e.size = Some(u16::MAX);
    assert_eq!(register(&mut s, &e), EfiStatus::INVALID_PARAMETER);
    // 3. Size < 44
    let mut e = good.clone();
    e.size = Some(43);
    assert_eq!(register(&mut s, &e), EfiStatus::INVALID_PARAMETER);
    // 4. OffsetToName < 44
    let mut e = good.clone();
    e.offset_to_name = Some(42);
    assert_eq!(register(&mut s, &e), EfiStatus::INVALID_PARAMETER);
    // 5. LOCK_ON_VAR_STATE with OffsetToName < 44 + 18
    let mut e = good.clone().lock(LOCK_ON_VAR_STATE);
    e.name = Some([vec![0u8; 16], ucs2("A")].concat());
    e.offset_to_name = Some(60);
    assert_eq!(register(&mut s, &e), EfiStatus::INVALID_PARAMETER);
    // 6. Size < OffsetToName
    let mut e = good.clone();
    e.offset_to_name = Some(48);
    e.size = Some(46);
    assert_eq!(register(&mut s, &e), EfiStatus::INVALID_PARAMETER);
    assert_eq!(policy_count(&s), 0);
    assert_eq!(register(&mut s, &good), EfiStatus::SUCCESS);
}

#[test]
fn register_name_with_a_surrogate_is_invalid_parameter() {
    // QEMU: uefi_str_is_valid on the name area.
    let mut s = svc();
    let mut e = Entry::named(vendor(), "");
    e.name = Some([0x41, 0x00, 0x00, 0xd8, 0x00, 0x00].to_vec());
    assert_eq!(register(&mut s, &e), EfiStatus::INVALID_PARAMETER);
    assert_eq!(policy_count(&s), 0);
}

#[test]
fn compat_policy_validation_edk2_structure_checks() {
    // QEMU stores each of these verbatim (EFI_SUCCESS); edk2's
    // IsValidVariablePolicyStructure and we refuse them.
    let mut s = svc();
    let base = Entry::named(vendor(), "Var");
    let mut cases: Vec<(&str, Entry)> = Vec::new();
    let mut e = base.clone();
    e.version = 0x0002_0000;
    cases.push(("version", e));
    cases.push(("MaxSize 0", base.clone().sizes(0, 0)));
    cases.push(("lock type 4", base.clone().lock(4)));
    cases.push(("lock type 0xff", base.clone().lock(0xff)));
    // a non-state policy with OffsetToName ≠ 44 (padding before the name)
    let mut e = base.clone();
    e.name = Some([vec![0u8; 2], ucs2("Var")].concat());
    e.offset_to_name = Some(46);
    cases.push(("offset 46", e));
    // the name has no NUL (QEMU does not require one)
    let mut e = base.clone();
    e.name = Some("Var".encode_utf16().flat_map(u16::to_le_bytes).collect());
    cases.push(("no NUL", e));
    // the NUL is not at the end of the entry
    let mut e = base.clone();
    e.name = Some([ucs2("Var"), ucs2("X")].concat());
    cases.push(("NUL before the end", e));
    // odd name area
    let mut e = base.clone();
    e.name = Some([ucs2("Var"), vec![0]].concat());
    cases.push(("odd name area", e));
    // state name not terminated exactly at OffsetToName
    let mut e = base.clone().on_state(vendor(), 1, "State");
    if let Some((_, _, n)) = &mut e.state {
        n.extend_from_slice(&[0x41, 0]);
    }
    cases.push(("state name padding", e));
    let mut e = base.clone().on_state(vendor(), 1, "");
    if let Some((_, _, n)) = &mut e.state {
        *n = "St".encode_utf16().flat_map(u16::to_le_bytes).collect();
    }
    cases.push(("state name without NUL", e));
    // more than 255 wildcards
    cases.push(("256 #", Entry::named(vendor(), &"#".repeat(256))));
    cases.push((
        "256 # with text",
        Entry::named(vendor(), &format!("A{}", "#".repeat(300))),
    ));
    for (what, e) in &cases {
        assert_eq!(register(&mut s, e), EfiStatus::INVALID_PARAMETER, "{what}");
    }
    assert_eq!(policy_count(&s), 0);
    // the boundaries that are fine
    assert_eq!(
        register(&mut s, &Entry::named(vendor(), &"#".repeat(254))),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        register(
            &mut s,
            &base
                .clone()
                .lock(LOCK_ON_VAR_STATE)
                .on_state(vendor(), 1, "S")
        ),
        EfiStatus::SUCCESS
    );
}

#[test]
fn register_accepts_a_namespace_wide_policy_and_an_empty_name() {
    let mut s = svc();
    let e = Entry::nameless(vendor());
    assert_eq!(e.bytes().len(), 44);
    assert_eq!(register(&mut s, &e), EfiStatus::SUCCESS);
    // "" with its NUL is a name (it matches only the empty name)
    assert_eq!(
        register(&mut s, &Entry::named(vendor(), "")),
        EfiStatus::SUCCESS
    );
    // a var-state policy whose state name is empty (NUL only): valid for
    // QEMU (OffsetToName ≥ 62) and for edk2 (NUL right before OffsetToName)
    let e = Entry::named(vendor(), "X").on_state(vendor(), 1, "");
    assert_eq!(register(&mut s, &e), EfiStatus::SUCCESS);
    assert_eq!(policy_count(&s), 3);
}

#[test]
fn register_duplicate_is_already_started() {
    let mut s = svc();
    assert_eq!(
        register(&mut s, &Entry::named(vendor(), "Dup")),
        EfiStatus::SUCCESS
    );
    // same namespace and name, whatever the rest says
    let other = Entry::named(vendor(), "Dup").lock(LOCK_NOW).sizes(1, 2);
    assert_eq!(register(&mut s, &other), EfiStatus::ALREADY_STARTED);
    // wildcards are compared literally
    assert_eq!(
        register(&mut s, &Entry::named(vendor(), "Boot####")),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        register(&mut s, &Entry::named(vendor(), "Boot####").lock(LOCK_NOW)),
        EfiStatus::ALREADY_STARTED
    );
    assert_eq!(
        register(&mut s, &Entry::named(vendor(), "Boot0001")),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        register(&mut s, &Entry::nameless(vendor())),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        register(&mut s, &Entry::nameless(vendor()).lock(LOCK_NOW)),
        EfiStatus::ALREADY_STARTED
    );
    // other namespace, or other case: not a duplicate
    assert_eq!(
        register(&mut s, &Entry::named(other_vendor(), "Dup")),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        register(&mut s, &Entry::named(vendor(), "dup")),
        EfiStatus::SUCCESS
    );
    assert_eq!(policy_count(&s), 6);
    // the first registration stays in force
    assert_eq!(
        s.policies().policies()[0].raw,
        Entry::named(vendor(), "Dup").bytes()
    );
}

#[test]
fn register_after_lock_is_write_protected() {
    let mut s = svc();
    assert_eq!(
        register(&mut s, &Entry::named(vendor(), "A")),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        result(&mut s, &policy_req(CMD_LOCK, &[])),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        register(&mut s, &Entry::named(vendor(), "B")),
        EfiStatus::WRITE_PROTECTED
    );
    // edk2's handler checks the framing before RegisterVariablePolicy
    // looks at the lock (QEMU: the lock first, EFI_WRITE_PROTECTED)
    assert_eq!(register_raw(&mut s, &[]), EfiStatus::INVALID_PARAMETER);
    assert_eq!(
        register(&mut s, &Entry::named(vendor(), "A")),
        EfiStatus::WRITE_PROTECTED
    );
    // compat: policy-lock-twice. LOCK again: edk2 LockVariablePolicy
    // answers EFI_WRITE_PROTECTED (QEMU: SUCCESS, idempotent)
    assert_eq!(
        result(&mut s, &policy_req(CMD_LOCK, &[])),
        EfiStatus::WRITE_PROTECTED
    );
    assert_eq!(policy_count(&s), 1);
    // a machine reset clears policies and the lock
    s.reset().unwrap();
    assert_eq!(policy_count(&s), 0);
    assert_eq!(
        register(&mut s, &Entry::named(vendor(), "B")),
        EfiStatus::SUCCESS
    );
}

#[test]
fn compat_policy_lock_at_end_of_dxe() {
    // QEMU leaves the interface open after EndOfDxe (the OS can register
    // policies at runtime, docs/reference/policy.md §7): SUCCESS there.
    let mut s = svc();
    assert_eq!(
        register(&mut s, &Entry::named(vendor(), "A")),
        EfiStatus::SUCCESS
    );
    end_of_dxe(&mut s);
    assert_eq!(
        register(&mut s, &Entry::named(vendor(), "B")),
        EfiStatus::WRITE_PROTECTED
    );
    assert_eq!(policy_count(&s), 1);
}

#[test]
fn compat_ready_to_boot_ends_dxe_locks_the_policy_interface() {
    // QEMU: ReadyToBoot is only recorded; REGISTER still succeeds.
    let mut s = svc();
    let resp = call(&mut s, &mm(&ready_to_boot_event(), &[0]));
    assert_eq!(resp.status, DeviceStatus::Success);
    assert_eq!(
        register(&mut s, &Entry::named(vendor(), "B")),
        EfiStatus::WRITE_PROTECTED
    );
}

#[test]
fn compat_policy_limits_out_of_resources() {
    // QEMU puts no limit on the number or size of policies.
    let mut s = common::in_memory(Config::default().with_policy_limits(PolicyLimits {
        max_policies: 2,
        max_total_bytes: 1 << 20,
    }));
    assert_eq!(
        register(&mut s, &Entry::named(vendor(), "A")),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        register(&mut s, &Entry::named(vendor(), "B")),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        register(&mut s, &Entry::named(vendor(), "C")),
        EfiStatus::OUT_OF_RESOURCES
    );
    // a duplicate is still reported as such
    assert_eq!(
        register(&mut s, &Entry::named(vendor(), "A")),
        EfiStatus::ALREADY_STARTED
    );
    assert_eq!(policy_count(&s), 2);

    // byte limit: "A" entries are 44 + 4 = 48 bytes each
    let mut s = common::in_memory(Config::default().with_policy_limits(PolicyLimits {
        max_policies: 100,
        max_total_bytes: 100,
    }));
    assert_eq!(
        register(&mut s, &Entry::named(vendor(), "A")),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        register(&mut s, &Entry::named(vendor(), "B")),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        register(&mut s, &Entry::named(vendor(), "C")),
        EfiStatus::OUT_OF_RESOURCES
    );
    assert_eq!(policy_count(&s), 2);
    // limits survive a reset, the count starts again
    s.reset().unwrap();
    assert_eq!(
        register(&mut s, &Entry::named(vendor(), &"L".repeat(40))),
        EfiStatus::OUT_OF_RESOURCES
    );
    assert_eq!(
        register(&mut s, &Entry::named(vendor(), "C")),
        EfiStatus::SUCCESS
    );
}

#[test]
fn default_policy_limits() {
    let l = Config::default().policy_limits;
    assert_eq!((l.max_policies, l.max_total_bytes), (1024, 256 * 1024));
}

// ---------------------------------------------------------------------------
// IS_ENABLED, DISABLE, LOCK (docs/reference/policy.md §2).

#[test]
fn is_enabled_reports_state() {
    let mut s = svc();
    let resp = call(&mut s, &policy_req(CMD_IS_ENABLED, &[0x55]));
    let r = reply(&resp);
    assert_eq!(u64_at(r, RESULT_OFF), 0);
    assert_eq!(r[PARAMS], 1);
    // compat: policy-framing. MessageLength 20: no room for State (QEMU:
    // BAD_BUFFER_SIZE; edk2 VarCheckPolicyLibMmiHandler: INVALID_PARAMETER)
    assert_eq!(
        result(&mut s, &policy_req(CMD_IS_ENABLED, &[])),
        EfiStatus::INVALID_PARAMETER
    );
}

#[test]
fn compat_policy_disable_is_write_protected_by_default() {
    // QEMU: DISABLE is always EFI_UNSUPPORTED.
    let mut s = svc();
    assert_eq!(
        register(&mut s, &Entry::named(vendor(), "L").lock(LOCK_NOW)),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        result(&mut s, &policy_req(CMD_DISABLE, &[])),
        EfiStatus::WRITE_PROTECTED
    );
    let resp = call(&mut s, &policy_req(CMD_IS_ENABLED, &[0]));
    assert_eq!(reply(&resp)[PARAMS], 1);
    end_of_dxe(&mut s);
    assert_eq!(
        set(&mut s, &vendor(), "L", NV_BS_RT, b"x"),
        EfiStatus::WRITE_PROTECTED
    );
}

#[test]
fn compat_policy_disable_when_allowed() {
    // edk2 with PcdAllowVariablePolicyEnforcementDisable; QEMU: UNSUPPORTED.
    let config = Config::default().with_allow_policy_disable(true);
    let mut s = common::in_memory(config.clone());
    assert_eq!(
        register(&mut s, &Entry::named(vendor(), "L").lock(LOCK_NOW)),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        result(&mut s, &policy_req(CMD_DISABLE, &[])),
        EfiStatus::SUCCESS
    );
    let resp = call(&mut s, &policy_req(CMD_IS_ENABLED, &[0x55]));
    assert_eq!(reply(&resp)[PARAMS], 0);
    assert_eq!(
        result(&mut s, &policy_req(CMD_DISABLE, &[])),
        EfiStatus::ALREADY_STARTED
    );
    end_of_dxe(&mut s);
    assert_eq!(
        set(&mut s, &vendor(), "L", NV_BS_RT, b"x"),
        EfiStatus::SUCCESS
    );
    // after LOCK (or EndOfDxe) disabling is refused
    let mut s = common::in_memory(config);
    assert_eq!(
        result(&mut s, &policy_req(CMD_LOCK, &[])),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        result(&mut s, &policy_req(CMD_DISABLE, &[])),
        EfiStatus::WRITE_PROTECTED
    );
    s.reset().unwrap();
    end_of_dxe(&mut s);
    assert_eq!(
        result(&mut s, &policy_req(CMD_DISABLE, &[])),
        EfiStatus::WRITE_PROTECTED
    );
}

// ---------------------------------------------------------------------------
// DUMP (docs/reference/policy.md §2, edk2 VarCheckPolicyLib).

struct Page {
    result: EfiStatus,
    total: u32,
    page_size: u32,
    has_more: u8,
    data: Vec<u8>,
}

fn dump(s: &mut Service, page: u32) -> Page {
    let mut params = page.to_le_bytes().to_vec();
    params.extend_from_slice(&[0xcc; 8]);
    params.push(0xcc);
    params.extend_from_slice(&vec![0u8; PAGE]);
    let req = policy_req(CMD_DUMP, &params);
    assert_eq!(req.len(), 16384);
    let resp = call(s, &req);
    let r = reply(&resp);
    let page_size = u32_at(r, PARAMS + 8);
    let data_len = (page_size as usize).min(PAGE);
    Page {
        result: EfiStatus(u64_at(r, RESULT_OFF)),
        total: u32_at(r, PARAMS + 4),
        page_size,
        has_more: r[PARAMS + 12],
        data: r[PARAMS + 13..PARAMS + 13 + data_len].to_vec(),
    }
}

fn many_policies(s: &mut Service, count: usize) -> Vec<u8> {
    let mut all = Vec::new();
    for i in 0..count {
        let name = format!("Policy{i:03}{}", "x".repeat(100));
        let e = match i % 4 {
            0 => Entry::named(vendor(), &name),
            1 => Entry::named(vendor(), &name).lock(LOCK_NOW).sizes(1, 100),
            2 => Entry::named(other_vendor(), &name).attrs(NV, RT),
            _ => Entry::named(vendor(), &name).on_state(global(), 1, "State"),
        };
        assert_eq!(register(s, &e), EfiStatus::SUCCESS);
        all.extend(e.bytes());
    }
    all
}

#[test]
fn compat_policy_dump_paginates() {
    // QEMU: DUMP is EFI_UNSUPPORTED.
    let mut s = svc();
    let expected = many_policies(&mut s, 80);
    assert!(expected.len() > PAGE && expected.len() < 2 * PAGE);
    let p0 = dump(&mut s, 0);
    assert_eq!(p0.result, EfiStatus::SUCCESS);
    assert_eq!(p0.total as usize, expected.len());
    assert_eq!(p0.page_size, 0);
    assert_eq!(p0.has_more, 1);
    let p1 = dump(&mut s, 1);
    assert_eq!(
        (p1.result, p1.total as usize),
        (EfiStatus::SUCCESS, expected.len())
    );
    assert_eq!(p1.page_size as usize, PAGE);
    assert_eq!(p1.has_more, 1);
    let p2 = dump(&mut s, 2);
    assert_eq!(p2.result, EfiStatus::SUCCESS);
    assert_eq!(p2.page_size as usize, expected.len() - PAGE);
    assert_eq!(p2.has_more, 0);
    assert_eq!([p1.data, p2.data].concat(), expected);
    // after the last page the cache is gone: no dump in progress
    let p = dump(&mut s, 1);
    assert_eq!(p.result, EfiStatus::TIMEOUT);
    assert_eq!((p.total, p.page_size, p.has_more), (0, 0, 0));
}

#[test]
fn compat_policy_dump_page_out_of_range_and_timeout() {
    let mut s = svc();
    let expected = many_policies(&mut s, 80);
    // page n without page 0
    let p = dump(&mut s, 1);
    assert_eq!(p.result, EfiStatus::TIMEOUT);
    assert_eq!((p.total, p.page_size, p.has_more), (0, 0, 0));
    assert_eq!(dump(&mut s, 0).result, EfiStatus::SUCCESS);
    // a page beyond the end
    let p = dump(&mut s, 3);
    assert_eq!(p.result, EfiStatus::INVALID_PARAMETER);
    assert_eq!(p.total as usize, expected.len());
    let p = dump(&mut s, u32::MAX);
    assert_eq!(p.result, EfiStatus::INVALID_PARAMETER);
    // the dump is still in progress: pages can be fetched in any order
    let p2 = dump(&mut s, 2);
    assert_eq!(p2.result, EfiStatus::SUCCESS);
    // another command in between ends it
    assert_eq!(dump(&mut s, 0).result, EfiStatus::SUCCESS);
    let _ = call(&mut s, &policy_req(CMD_IS_ENABLED, &[0]));
    assert_eq!(dump(&mut s, 1).result, EfiStatus::TIMEOUT);
    // page 0 restarts it and reflects policies registered since
    assert_eq!(
        register(&mut s, &Entry::named(global(), "Late")),
        EfiStatus::SUCCESS
    );
    let p0 = dump(&mut s, 0);
    assert_eq!(p0.total as usize, expected.len() + 44 + 10);
}

#[test]
fn compat_policy_dump_small_and_empty_tables() {
    let mut s = svc();
    // no policies: TotalSize 0, nothing more
    let p0 = dump(&mut s, 0);
    assert_eq!(
        (p0.result, p0.total, p0.page_size, p0.has_more),
        (EfiStatus::SUCCESS, 0, 0, 0)
    );
    assert_eq!(dump(&mut s, 1).result, EfiStatus::TIMEOUT);
    // one page
    let a = Entry::named(vendor(), "A").lock(LOCK_NOW);
    let b = Entry::nameless(global()).sizes(1, 10);
    assert_eq!(register(&mut s, &a), EfiStatus::SUCCESS);
    assert_eq!(register(&mut s, &b), EfiStatus::SUCCESS);
    let p0 = dump(&mut s, 0);
    assert_eq!((p0.total, p0.has_more), (48 + 44, 1));
    let p1 = dump(&mut s, 1);
    assert_eq!(
        (p1.result, p1.page_size, p1.has_more),
        (EfiStatus::SUCCESS, 92, 0)
    );
    assert_eq!(p1.data, [a.bytes(), b.bytes()].concat());
    // the dump needs edk2's full 16 KiB buffer
    let mut params = 0u32.to_le_bytes().to_vec();
    params.extend_from_slice(&[0; 9]);
    assert_eq!(
        result(&mut s, &policy_req(CMD_DUMP, &params)),
        EfiStatus::INVALID_PARAMETER
    );
}

// ---------------------------------------------------------------------------
// GET_INFO / GET_LOCK_VAR_STATE_INFO (newer edk2).

/// VAR_CHECK_POLICY_COMM_GET_INFO_PARAMS at abs 44: InputVendorGuid (16),
/// InputVariableNameSize u32 @60, OutputVariableNameSize u32 @64,
/// OutputPolicyEntry (44) @68, InputVariableName @112. edk2's client always
/// sends the full 16 KiB buffer.
fn get_info(
    s: &mut Service,
    command: u32,
    guid: &Guid,
    name: &str,
    out_cap: u32,
) -> (EfiStatus, Vec<u8>) {
    let n = ucs2(name);
    let mut params = guid.0.to_vec();
    params.extend_from_slice(&(n.len() as u32).to_le_bytes());
    params.extend_from_slice(&out_cap.to_le_bytes());
    params.extend_from_slice(&[0u8; 44]);
    params.extend_from_slice(&n);
    params.resize(16384 - 24 - 20, 0);
    let resp = call(s, &policy_req(command, &params));
    let r = reply(&resp).to_vec();
    (EfiStatus(u64_at(&r, RESULT_OFF)), r)
}

const OUT_NAME_SIZE: usize = 64;
const OUT_ENTRY: usize = 68;
const IN_NAME: usize = 112;

#[test]
fn compat_policy_get_info_returns_the_governing_policy() {
    // QEMU: GET_INFO is EFI_UNSUPPORTED.
    let mut s = svc();
    let wild = Entry::named(vendor(), "Boot####")
        .lock(LOCK_ON_CREATE)
        .sizes(2, 64);
    let exact = Entry::named(vendor(), "Boot0001").attrs(NV, 0);
    assert_eq!(register(&mut s, &wild), EfiStatus::SUCCESS);
    assert_eq!(register(&mut s, &exact), EfiStatus::SUCCESS);
    let (st, r) = get_info(&mut s, CMD_GET_INFO, &vendor(), "Boot00a2", 64);
    assert_eq!(st, EfiStatus::SUCCESS);
    assert_eq!(&r[OUT_ENTRY..OUT_ENTRY + 44], &wild.bytes()[..44]);
    assert_eq!(u32_at(&r, OUT_NAME_SIZE), 18);
    let out = IN_NAME + ucs2("Boot00a2").len();
    assert_eq!(&r[out..out + 18], &ucs2("Boot####")[..]);
    // the exact match wins
    let (st, r) = get_info(&mut s, CMD_GET_INFO, &vendor(), "Boot0001", 64);
    assert_eq!(st, EfiStatus::SUCCESS);
    assert_eq!(&r[OUT_ENTRY..OUT_ENTRY + 44], &exact.bytes()[..44]);
    // no policy
    let (st, _) = get_info(&mut s, CMD_GET_INFO, &vendor(), "BootOrder", 64);
    assert_eq!(st, EfiStatus::NOT_FOUND);
    let (st, _) = get_info(&mut s, CMD_GET_INFO, &other_vendor(), "Boot0001", 64);
    assert_eq!(st, EfiStatus::NOT_FOUND);
}

#[test]
fn compat_policy_get_info_name_buffer_too_small() {
    // edk2 GetVariablePolicyInfo: OutputVariableNameSize is the caller's
    // capacity; 0 (or too little) gives BUFFER_TOO_SMALL with the size
    // needed, and the entry is still returned.
    let mut s = svc();
    let wild = Entry::named(vendor(), "Boot####").lock(LOCK_NOW);
    assert_eq!(register(&mut s, &wild), EfiStatus::SUCCESS);
    for cap in [0u32, 2, 17] {
        let (st, r) = get_info(&mut s, CMD_GET_INFO, &vendor(), "Boot0001", cap);
        assert_eq!(st, EfiStatus::BUFFER_TOO_SMALL, "cap {cap}");
        assert_eq!(u32_at(&r, OUT_NAME_SIZE), 18);
        assert_eq!(&r[OUT_ENTRY..OUT_ENTRY + 44], &wild.bytes()[..44]);
        let out = IN_NAME + 18;
        assert!(r[out..out + 18].iter().all(|&b| b == 0), "name not written");
    }
    let (st, _) = get_info(&mut s, CMD_GET_INFO, &vendor(), "Boot0001", 18);
    assert_eq!(st, EfiStatus::SUCCESS);
}

#[test]
fn compat_policy_get_info_namespace_wide_policy_has_no_name() {
    let mut s = svc();
    let wide = Entry::nameless(vendor()).sizes(1, 4);
    assert_eq!(register(&mut s, &wide), EfiStatus::SUCCESS);
    // even with a zero-sized name buffer: there is no name to return
    let (st, r) = get_info(&mut s, CMD_GET_INFO, &vendor(), "Anything", 0);
    assert_eq!(st, EfiStatus::SUCCESS);
    assert_eq!(u32_at(&r, OUT_NAME_SIZE), 0);
    assert_eq!(&r[OUT_ENTRY..OUT_ENTRY + 44], &wide.bytes()[..]);
}

#[test]
fn compat_policy_get_info_lock_var_state() {
    let mut s = svc();
    let e = Entry::named(vendor(), "Guarded").on_state(global(), 7, "StateVar");
    assert_eq!(register(&mut s, &e), EfiStatus::SUCCESS);
    assert_eq!(
        register(&mut s, &Entry::named(vendor(), "Plain").lock(LOCK_NOW)),
        EfiStatus::SUCCESS
    );
    let (st, r) = get_info(
        &mut s,
        CMD_GET_LOCK_VAR_STATE_INFO,
        &vendor(),
        "Guarded",
        64,
    );
    assert_eq!(st, EfiStatus::SUCCESS);
    // VARIABLE_LOCK_ON_VAR_STATE_POLICY: Namespace, Value, Reserved
    assert_eq!(&r[OUT_ENTRY..OUT_ENTRY + 16], &global().0);
    assert_eq!(r[OUT_ENTRY + 16], 7);
    assert_eq!(u32_at(&r, OUT_NAME_SIZE), 18);
    let out = IN_NAME + ucs2("Guarded").len();
    assert_eq!(&r[out..out + 18], &ucs2("StateVar")[..]);
    let (st, r) = get_info(&mut s, CMD_GET_LOCK_VAR_STATE_INFO, &vendor(), "Guarded", 0);
    assert_eq!(st, EfiStatus::BUFFER_TOO_SMALL);
    assert_eq!(u32_at(&r, OUT_NAME_SIZE), 18);
    // GET_INFO on the same variable returns the policy name instead
    let (st, r) = get_info(&mut s, CMD_GET_INFO, &vendor(), "Guarded", 64);
    assert_eq!(st, EfiStatus::SUCCESS);
    assert_eq!(u32_at(&r, OUT_NAME_SIZE), 16);
    // a governing policy of another type
    let (st, _) = get_info(&mut s, CMD_GET_LOCK_VAR_STATE_INFO, &vendor(), "Plain", 64);
    assert_eq!(st, EfiStatus::NOT_FOUND);
    let (st, _) = get_info(&mut s, CMD_GET_LOCK_VAR_STATE_INFO, &vendor(), "None", 64);
    assert_eq!(st, EfiStatus::NOT_FOUND);
}

#[test]
fn compat_policy_get_info_short_requests() {
    let mut s = svc();
    assert_eq!(
        register(&mut s, &Entry::named(vendor(), "A")),
        EfiStatus::SUCCESS
    );
    // shorter than the fixed parameters
    assert_eq!(
        result(&mut s, &policy_req(CMD_GET_INFO, &[0; 67])),
        EfiStatus::INVALID_PARAMETER
    );
    // InputVariableNameSize past the message
    let mut params = vendor().0.to_vec();
    params.extend_from_slice(&100u32.to_le_bytes());
    params.extend_from_slice(&0u32.to_le_bytes());
    params.extend_from_slice(&[0; 44]);
    params.extend_from_slice(&ucs2("A"));
    assert_eq!(
        result(&mut s, &policy_req(CMD_GET_INFO, &params)),
        EfiStatus::INVALID_PARAMETER
    );
}

// ---------------------------------------------------------------------------
// Enforcement on SetVariable (docs/reference/policy.md §6): only after EndOfDxe.

#[test]
fn no_lock_size_and_attribute_limits() {
    let mut s = svc();
    let e = Entry::named(vendor(), "Sized")
        .sizes(2, 4)
        .attrs(NV | BS, RT);
    assert_eq!(register(&mut s, &e), EfiStatus::SUCCESS);
    // nothing is enforced before EndOfDxe
    assert_eq!(
        set(&mut s, &vendor(), "Sized", NV_BS_RT, &[0; 10]),
        EfiStatus::SUCCESS
    );
    assert_eq!(delete(&mut s, &vendor(), "Sized"), EfiStatus::SUCCESS);
    end_of_dxe(&mut s);
    let cases: [(u32, usize, EfiStatus); 8] = [
        (NV | BS, 1, EfiStatus::INVALID_PARAMETER), // below MinSize
        (NV | BS, 5, EfiStatus::INVALID_PARAMETER), // above MaxSize
        (BS, 3, EfiStatus::INVALID_PARAMETER),      // lacks NV
        (NV_BS_RT, 3, EfiStatus::INVALID_PARAMETER), // has RT
        (NV | BS, 2, EfiStatus::SUCCESS),
        (NV | BS, 4, EfiStatus::SUCCESS),
        (NV | BS, 3, EfiStatus::SUCCESS),
        (NV | BS, 0, EfiStatus::SUCCESS), // delete
    ];
    for (attrs, len, want) in cases {
        assert_eq!(
            set(&mut s, &vendor(), "Sized", attrs, &vec![7; len]),
            want,
            "{attrs:#x} {len}"
        );
    }
    assert!(!exists(&s, &vendor(), "Sized"));
    // other names and namespaces are not governed
    assert_eq!(
        set(&mut s, &vendor(), "Sized2", BS, &[1]),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        set(&mut s, &other_vendor(), "Sized", BS, &[1]),
        EfiStatus::SUCCESS
    );
}

#[test]
fn no_lock_checks_the_payload_size_of_authenticated_writes() {
    // The size checked is the payload after the auth descriptor.
    let mut s = svc();
    let e = Entry::named(global(), "KEK").sizes(0, 100).attrs(AT, 0);
    assert_eq!(register(&mut s, &e), EfiStatus::SUCCESS);
    end_of_dxe(&mut s);
    let list = |cert_len: usize| {
        let sig = 16 + cert_len as u32;
        let mut l = cert_x509().0.to_vec();
        l.extend_from_slice(&(28 + sig).to_le_bytes());
        l.extend_from_slice(&0u32.to_le_bytes());
        l.extend_from_slice(&sig.to_le_bytes());
        l.extend_from_slice(&vendor().0);
        l.extend(std::iter::repeat_n(0x30u8, cert_len));
        l
    };
    let auth = |sec: u8, payload: &[u8]| {
        let mut d = vec![0u8; 16];
        d[0..2].copy_from_slice(&2025u16.to_le_bytes());
        d[2] = 1;
        d[3] = 1;
        d[6] = sec;
        d.extend_from_slice(&24u32.to_le_bytes());
        d.extend_from_slice(&0x0200u16.to_le_bytes());
        d.extend_from_slice(&0x0ef1u16.to_le_bytes());
        d.extend_from_slice(&pkcs7_guid().0);
        d.extend_from_slice(payload);
        d
    };
    // 28 + 16 + 56 = 100 payload bytes (140 with the descriptor)
    assert_eq!(
        set(&mut s, &global(), "KEK", NV_BS_RT | AT, &auth(1, &list(56))),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        set(&mut s, &global(), "KEK", NV_BS_RT | AT, &auth(2, &list(57))),
        EfiStatus::INVALID_PARAMETER
    );
}

#[test]
fn lock_now() {
    let mut s = svc();
    assert_eq!(
        set(&mut s, &vendor(), "Existing", NV_BS_RT, b"1"),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        register(&mut s, &Entry::named(vendor(), "Existing").lock(LOCK_NOW)),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        register(&mut s, &Entry::named(vendor(), "New").lock(LOCK_NOW)),
        EfiStatus::SUCCESS
    );
    // writable until EndOfDxe
    assert_eq!(
        set(&mut s, &vendor(), "Existing", NV_BS_RT, b"2"),
        EfiStatus::SUCCESS
    );
    end_of_dxe(&mut s);
    assert_eq!(
        set(&mut s, &vendor(), "Existing", NV_BS_RT, b"3"),
        EfiStatus::WRITE_PROTECTED
    );
    assert_eq!(
        delete(&mut s, &vendor(), "Existing"),
        EfiStatus::WRITE_PROTECTED
    );
    assert_eq!(
        set(&mut s, &vendor(), "New", NV_BS_RT, b"1"),
        EfiStatus::WRITE_PROTECTED
    );
    assert!(!exists(&s, &vendor(), "New"));
    // a delete of a locked variable that does not exist is refused too:
    // edk2 ValidateSetVariable runs before the store is looked at
    // (compat: policy-delete-checks; QEMU: EFI_SUCCESS)
    assert_eq!(delete(&mut s, &vendor(), "New"), EfiStatus::WRITE_PROTECTED);
    // at runtime too
    let _ = call(
        &mut s,
        &mm(&g("27abf055-b1b8-4c26-8048-748f37baa2df"), &[0]),
    );
    assert_eq!(
        set(&mut s, &vendor(), "Existing", NV_BS_RT, b"4"),
        EfiStatus::WRITE_PROTECTED
    );
}

/// edk2 VariableServiceSetVariable: VarCheckLibSetVariableCheck (the
/// policies) runs before the stored variable is looked at, so a policy
/// violation decides over the runtime access fault (QEMU: its access
/// check first, EFI_ACCESS_DENIED; compat: runtime-write), and the
/// attribute checks decide over the policy.
#[test]
fn variable_service_set_variable_policy_before_access_fault() {
    let mut s = svc();
    assert_eq!(
        set(&mut s, &vendor(), "BsOnly", NV | BS, b"1"),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        register(&mut s, &Entry::named(vendor(), "BsOnly").sizes(1, 1)),
        EfiStatus::SUCCESS
    );
    end_of_dxe(&mut s);
    let _ = call(
        &mut s,
        &mm(&g("27abf055-b1b8-4c26-8048-748f37baa2df"), &[0]),
    );
    // too large for the policy and without RT at runtime: the policy decides
    assert_eq!(
        set(&mut s, &vendor(), "BsOnly", NV | BS, b"12"),
        EfiStatus::INVALID_PARAMETER
    );
    assert_eq!(
        s.last_refusal().unwrap().refusal,
        uefi_vars::Refusal::Policy {
            status: EfiStatus::INVALID_PARAMETER
        }
    );
    // within the policy: the runtime access fault
    assert_eq!(
        set(&mut s, &vendor(), "BsOnly", NV | BS, b"2"),
        EfiStatus::WRITE_PROTECTED
    );
    assert_eq!(
        s.last_refusal().unwrap().refusal,
        uefi_vars::Refusal::RuntimeNotAccessible
    );
    // a reserved bit decides over both
    assert_eq!(
        set(&mut s, &vendor(), "BsOnly", NV | BS | 0x80, b"12"),
        EfiStatus::INVALID_PARAMETER
    );
    assert_eq!(
        s.last_refusal().unwrap().refusal,
        uefi_vars::Refusal::ReservedAttributes {
            attributes: NV | BS | 0x80
        }
    );
}

#[test]
fn lock_on_create_allows_the_first_write_only() {
    let mut s = svc();
    assert_eq!(
        register(&mut s, &Entry::named(vendor(), "Once").lock(LOCK_ON_CREATE)),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        register(
            &mut s,
            &Entry::named(vendor(), "Early").lock(LOCK_ON_CREATE)
        ),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        set(&mut s, &vendor(), "Early", NV_BS_RT, b"1"),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        set(&mut s, &vendor(), "Early", NV_BS_RT, b"2"),
        EfiStatus::SUCCESS
    );
    end_of_dxe(&mut s);
    // created before EndOfDxe: already exists
    assert_eq!(
        set(&mut s, &vendor(), "Early", NV_BS_RT, b"3"),
        EfiStatus::WRITE_PROTECTED
    );
    assert_eq!(
        set(&mut s, &vendor(), "Once", NV_BS_RT, b"1"),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        set(&mut s, &vendor(), "Once", NV_BS_RT, b"2"),
        EfiStatus::WRITE_PROTECTED
    );
    assert_eq!(
        delete(&mut s, &vendor(), "Once"),
        EfiStatus::WRITE_PROTECTED
    );
    assert_eq!(
        set(&mut s, &vendor(), "Once", NV_BS_RT | AP, b"2"),
        EfiStatus::WRITE_PROTECTED
    );
}

#[test]
fn lock_on_var_state_follows_the_state_variable() {
    let mut s = svc();
    let e = Entry::named(vendor(), "Guarded").on_state(other_vendor(), 1, "State");
    assert_eq!(register(&mut s, &e), EfiStatus::SUCCESS);
    end_of_dxe(&mut s);
    // no state variable: writable
    assert_eq!(
        set(&mut s, &vendor(), "Guarded", NV_BS_RT, b"a"),
        EfiStatus::SUCCESS
    );
    // state = 1 (one byte equal to Value): locked, deletes included
    assert_eq!(
        set(&mut s, &other_vendor(), "State", BS | RT, &[1]),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        set(&mut s, &vendor(), "Guarded", NV_BS_RT, b"b"),
        EfiStatus::WRITE_PROTECTED
    );
    assert_eq!(
        delete(&mut s, &vendor(), "Guarded"),
        EfiStatus::WRITE_PROTECTED
    );
    // another value, or more than one byte: unlocked
    assert_eq!(
        set(&mut s, &other_vendor(), "State", BS | RT, &[0]),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        set(&mut s, &vendor(), "Guarded", NV_BS_RT, b"c"),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        set(&mut s, &other_vendor(), "State", BS | RT, &[1, 1]),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        set(&mut s, &vendor(), "Guarded", NV_BS_RT, b"d"),
        EfiStatus::SUCCESS
    );
    // locked again, then the state variable is deleted: unlocked
    assert_eq!(
        set(&mut s, &other_vendor(), "State", BS | RT, &[1]),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        set(&mut s, &vendor(), "Guarded", NV_BS_RT, b"e"),
        EfiStatus::WRITE_PROTECTED
    );
    assert_eq!(delete(&mut s, &other_vendor(), "State"), EfiStatus::SUCCESS);
    assert_eq!(
        set(&mut s, &vendor(), "Guarded", NV_BS_RT, b"f"),
        EfiStatus::SUCCESS
    );
    // a state variable of the same name in another namespace does not count
    assert_eq!(
        set(&mut s, &vendor(), "State", BS | RT, &[1]),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        set(&mut s, &vendor(), "Guarded", NV_BS_RT, b"g"),
        EfiStatus::SUCCESS
    );
}

#[test]
fn wildcards_match_one_hex_digit() {
    let mut s = svc();
    assert_eq!(
        register(&mut s, &Entry::named(vendor(), "Boot####").lock(LOCK_NOW)),
        EfiStatus::SUCCESS
    );
    end_of_dxe(&mut s);
    for name in ["Boot0001", "Boot00a1", "BootFFFF", "Bootbeef"] {
        assert_eq!(
            set(&mut s, &vendor(), name, NV_BS_RT, b"x"),
            EfiStatus::WRITE_PROTECTED,
            "{name}"
        );
    }
    for name in [
        "Boot000G",
        "Boot00001",
        "Boot001",
        "Boot####",
        "boot0001",
        "BootOrder",
        "Boot00 1",
    ] {
        assert_eq!(
            set(&mut s, &vendor(), name, NV_BS_RT, b"x"),
            EfiStatus::SUCCESS,
            "{name}"
        );
    }
}

#[test]
fn best_match_exact_then_fewer_wildcards() {
    let mut s = svc();
    // registered from least to most specific; the priority decides, not order
    assert_eq!(
        register(&mut s, &Entry::named(vendor(), "Boot####").lock(LOCK_NOW)),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        register(
            &mut s,
            &Entry::named(vendor(), "Boot00##").lock(LOCK_ON_CREATE)
        ),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        register(&mut s, &Entry::named(vendor(), "Boot0002")),
        EfiStatus::SUCCESS
    );
    end_of_dxe(&mut s);
    // exact NO_LOCK
    assert_eq!(
        set(&mut s, &vendor(), "Boot0002", NV_BS_RT, b"1"),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        set(&mut s, &vendor(), "Boot0002", NV_BS_RT, b"2"),
        EfiStatus::SUCCESS
    );
    // two wildcards: LOCK_ON_CREATE
    assert_eq!(
        set(&mut s, &vendor(), "Boot0003", NV_BS_RT, b"1"),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        set(&mut s, &vendor(), "Boot0003", NV_BS_RT, b"2"),
        EfiStatus::WRITE_PROTECTED
    );
    // four wildcards: LOCK_NOW
    assert_eq!(
        set(&mut s, &vendor(), "Boot1003", NV_BS_RT, b"1"),
        EfiStatus::WRITE_PROTECTED
    );
}

#[test]
fn compat_policy_namespace_wide_matches_every_name() {
    // QEMU: a nameless policy matches only the empty name, so these writes
    // would all be SUCCESS there.
    let mut s = svc();
    assert_eq!(
        register(&mut s, &Entry::nameless(vendor()).lock(LOCK_NOW)),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        register(&mut s, &Entry::named(vendor(), "Allowed")),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        register(&mut s, &Entry::named(vendor(), "Var#")),
        EfiStatus::SUCCESS
    );
    end_of_dxe(&mut s);
    assert_eq!(
        set(&mut s, &vendor(), "Anything", NV_BS_RT, b"x"),
        EfiStatus::WRITE_PROTECTED
    );
    assert_eq!(
        set(&mut s, &vendor(), "VarZ", NV_BS_RT, b"x"),
        EfiStatus::WRITE_PROTECTED
    );
    // named policies (exact or wildcard) take precedence
    assert_eq!(
        set(&mut s, &vendor(), "Allowed", NV_BS_RT, b"x"),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        set(&mut s, &vendor(), "Var7", NV_BS_RT, b"x"),
        EfiStatus::SUCCESS
    );
    // other namespaces are not affected
    assert_eq!(
        set(&mut s, &other_vendor(), "Anything", NV_BS_RT, b"x"),
        EfiStatus::SUCCESS
    );
}

#[test]
fn compat_policy_namespace_wide_size_limits() {
    let mut s = svc();
    assert_eq!(
        register(&mut s, &Entry::nameless(vendor()).sizes(0, 4)),
        EfiStatus::SUCCESS
    );
    end_of_dxe(&mut s);
    assert_eq!(
        set(&mut s, &vendor(), "Small", NV_BS_RT, b"1234"),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        set(&mut s, &vendor(), "Big", NV_BS_RT, b"12345"),
        EfiStatus::INVALID_PARAMETER
    );
}

/// edk2 VariableServiceSetVariable calls ValidateSetVariable before it
/// looks at the store: a delete of a variable that does not exist under a
/// LOCK_NOW policy is EFI_WRITE_PROTECTED (QEMU: EFI_SUCCESS, nothing to
/// delete), one under a NO_LOCK policy with limits is EFI_SUCCESS.
#[test]
fn compat_policy_delete_checks_delete_of_nothing() {
    let mut s = svc();
    assert_eq!(
        register(&mut s, &Entry::named(vendor(), "Locked").lock(LOCK_NOW)),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        register(&mut s, &Entry::named(vendor(), "Sized").sizes(4, 8)),
        EfiStatus::SUCCESS
    );
    end_of_dxe(&mut s);
    assert_eq!(
        delete(&mut s, &vendor(), "Locked"),
        EfiStatus::WRITE_PROTECTED
    );
    assert_eq!(
        s.last_refusal().unwrap().refusal,
        uefi_vars::Refusal::Policy {
            status: EfiStatus::WRITE_PROTECTED
        }
    );
    assert_eq!(delete(&mut s, &vendor(), "Sized"), EfiStatus::SUCCESS);
    assert!(!exists(&s, &vendor(), "Locked") && !exists(&s, &vendor(), "Sized"));
}

#[test]
fn compat_policy_delete_checks_skip_size_and_attributes() {
    // QEMU checks the *old* variable against the policy on a delete: these
    // deletes would be EFI_INVALID_PARAMETER there.
    let mut s = svc();
    assert_eq!(
        set(&mut s, &vendor(), "Big", NV_BS_RT, &[0; 32]),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        set(&mut s, &vendor(), "Rt", NV_BS_RT, &[0; 2]),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        register(&mut s, &Entry::named(vendor(), "Big").sizes(1, 8)),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        register(&mut s, &Entry::named(vendor(), "Rt").attrs(0, RT)),
        EfiStatus::SUCCESS
    );
    end_of_dxe(&mut s);
    // an update is checked
    assert_eq!(
        set(&mut s, &vendor(), "Big", NV_BS_RT, &[0; 32]),
        EfiStatus::INVALID_PARAMETER
    );
    assert_eq!(
        set(&mut s, &vendor(), "Rt", NV_BS_RT, &[0; 2]),
        EfiStatus::INVALID_PARAMETER
    );
    // a delete is not
    assert_eq!(delete(&mut s, &vendor(), "Big"), EfiStatus::SUCCESS);
    assert_eq!(delete(&mut s, &vendor(), "Rt"), EfiStatus::SUCCESS);
    assert!(!exists(&s, &vendor(), "Big") && !exists(&s, &vendor(), "Rt"));
}

#[test]
fn policies_are_cleared_by_a_reset() {
    let mut s = svc();
    assert_eq!(
        register(&mut s, &Entry::named(vendor(), "L").lock(LOCK_NOW)),
        EfiStatus::SUCCESS
    );
    end_of_dxe(&mut s);
    assert_eq!(
        set(&mut s, &vendor(), "L", NV_BS_RT, b"x"),
        EfiStatus::WRITE_PROTECTED
    );
    s.reset().unwrap();
    assert_eq!(policy_count(&s), 0);
    end_of_dxe(&mut s);
    assert_eq!(
        set(&mut s, &vendor(), "L", NV_BS_RT, b"x"),
        EfiStatus::SUCCESS
    );
}

// ---------------------------------------------------------------------------
// Ports of edk2's VariablePolicyUnitTest.c (MdeModulePkg/Library/
// VariablePolicyLib/VariablePolicyUnitTest/, edk2 commit 936e885bbc on
// refs/pull/5930; not on a stable tag) and VariableLockRequestToLockUnitTest.c
// (MdeModulePkg/Universal/Variable/RuntimeDxe/RuntimeDxeUnitTest/,
// edk2-stable202605): every case observable through the policy MM protocol
// and SetVariable, each named after its edk2 test function. edk2 calls
// ValidateSetVariable directly; here the same request is a SetVariable
// after EndOfDxe (when enforcement starts), in a vendor namespace so that
// VarCheckUefiLib's checks stay out of the way. Cases that test the
// library's C interface only (NULL pointers, init/deinit, a GetVariable
// stub failing with EFI_UNSUPPORTED or EFI_NOT_READY) have no MM form.

fn test_guid_1() -> Guid {
    g("f955ba2d-4a2c-480c-bfd1-3cc522610592")
}
fn test_guid_2() -> Guid {
    g("2dea799e-5e73-43b9-870e-c945ce82af3a")
}
const TEST_VAR_1: &str = "TestVar1";
const TEST_VAR_2: &str = "TestVar2";
const NV_BS: u32 = NV | BS;

/// EXPANDED_VARIABLE_POLICY_ENTRY as InitExpVarPolicyStrings builds it:
/// LOCK_ON_VAR_STATE on TestVar2 (Guid2, Value 1), the policy name `name`.
fn expanded(name: Option<&str>) -> Entry {
    let e = match name {
        Some(n) => Entry::named(test_guid_1(), n),
        None => Entry::nameless(test_guid_1()),
    };
    e.on_state(test_guid_2(), 1, TEST_VAR_2)
}

/// A policy on TestVar1 that LOCK_NOWs it, then enforcement.
fn enforce_after(s: &mut Service, entries: &[Entry]) {
    for e in entries {
        assert_eq!(register(s, e), EfiStatus::SUCCESS);
    }
    end_of_dxe(s);
}

fn lock_variable(s: &mut Service, guid: &Guid, name: &str) -> EfiStatus {
    let n = ucs2(name);
    let mut m = 8u64.to_le_bytes().to_vec();
    m.extend_from_slice(&JUNK.to_le_bytes());
    m.extend_from_slice(&guid.0);
    m.extend_from_slice(&(n.len() as u64).to_le_bytes());
    m.extend_from_slice(&n);
    EfiStatus(u64_at(reply(&call(s, &mm(&smm_variable(), &m))), 32))
}

/// PoliciesShouldMatchByNameAndGuid (EvaluatePolicyMatch): a LOCK_NOW
/// policy on TestVar1/Guid1 governs exactly that variable.
#[test]
fn edk2_policies_should_match_by_name_and_guid() {
    let mut s = svc();
    enforce_after(
        &mut s,
        &[Entry::named(test_guid_1(), TEST_VAR_1).lock(LOCK_NOW)],
    );
    assert_eq!(
        set(&mut s, &test_guid_1(), TEST_VAR_2, NV_BS, &[1]),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        set(&mut s, &test_guid_2(), TEST_VAR_1, NV_BS, &[1]),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        set(&mut s, &test_guid_1(), TEST_VAR_1, NV_BS, &[1]),
        EfiStatus::WRITE_PROTECTED
    );
}

/// WildcardPoliciesShouldMatchDigits: `#` matches one hex digit (either
/// case), never another character nor a literal `#`.
#[test]
fn edk2_wildcard_policies_should_match_digits() {
    let mut s = svc();
    enforce_after(
        &mut s,
        &[Entry::named(test_guid_1(), "Wildcard#VarName##").lock(LOCK_NOW)],
    );
    for name in [
        "Wildcard1VarName12",
        "Wildcard2VarName34",
        "WildcardBVarName56",
        "WildcardFVarName0A",
    ] {
        assert_eq!(
            set(&mut s, &test_guid_1(), name, NV_BS, &[1]),
            EfiStatus::WRITE_PROTECTED,
            "{name}"
        );
    }
    for name in [
        "WildcardZVarName56",
        "WildcardLVarName56",
        "Wildcard#VarName56",
    ] {
        assert_eq!(
            set(&mut s, &test_guid_1(), name, NV_BS, &[1]),
            EfiStatus::SUCCESS,
            "{name}"
        );
    }
}

/// WildcardPoliciesShouldMatchNamespaces: a nameless policy governs every
/// name of its namespace, `#` included, and no other namespace.
#[test]
fn edk2_wildcard_policies_should_match_namespaces() {
    let mut s = svc();
    enforce_after(&mut s, &[Entry::nameless(test_guid_1()).lock(LOCK_NOW)]);
    for name in [
        "Wildcard1VarName12",
        "Wildcard2VarName34",
        "WildcardBVarName56",
        "Wildcard#VarName56",
    ] {
        assert_eq!(
            set(&mut s, &test_guid_1(), name, NV_BS, &[1]),
            EfiStatus::WRITE_PROTECTED,
            "{name}"
        );
    }
    assert_eq!(
        set(&mut s, &test_guid_2(), "Wildcard1VarName12", NV_BS, &[1]),
        EfiStatus::SUCCESS
    );
}

/// MatchPrioritiesShouldFollowRules and BestMatchPriorityShouldBeObeyed
/// (GetBestPolicyMatch): the exact name first, then fewer `#`, then the
/// namespace-wide policy. Each policy allows a different MaxSize, so the
/// size at which a write is refused shows which one governs it.
#[test]
fn edk2_best_match_priority_should_be_obeyed() {
    let mut s = svc();
    let policy = |name: Option<&str>, max: u32| {
        match name {
            Some(n) => Entry::named(test_guid_1(), n),
            None => Entry::nameless(test_guid_1()),
        }
        .sizes(0, max)
    };
    enforce_after(
        &mut s,
        &[
            policy(None, 60),
            policy(Some("Wild##Card##Placeholder"), 50),
            policy(Some("Wild##Card#4Placeholder"), 40),
            policy(Some("Wild##Card34Placeholder"), 30),
            policy(Some("Wild#2Card34Placeholder"), 20),
            policy(Some("Wild12Card34Placeholder"), 10),
        ],
    );
    for (name, max) in [
        ("ArbitraryName", 60usize),
        ("Wild77Card77Placeholder", 50),
        ("Wild77Card74Placeholder", 40),
        ("Wild77Card34Placeholder", 30),
        ("Wild72Card34Placeholder", 20),
        ("Wild12Card34Placeholder", 10),
    ] {
        assert_eq!(
            set(&mut s, &test_guid_1(), name, NV_BS, &vec![1; max + 1]),
            EfiStatus::INVALID_PARAMETER,
            "{name}"
        );
        assert_eq!(
            set(&mut s, &test_guid_1(), name, NV_BS, &vec![1; max]),
            EfiStatus::SUCCESS,
            "{name}"
        );
    }
}

/// RegisterShouldAllowNamespaceWildcards, RegisterShouldAllowStateVarsForNamespaces.
#[test]
fn edk2_register_should_allow_namespace_wildcards_and_state_vars() {
    let mut s = svc();
    assert_eq!(
        register(&mut s, &Entry::nameless(test_guid_1())),
        EfiStatus::SUCCESS
    );
    let mut s = svc();
    assert_eq!(register(&mut s, &expanded(None)), EfiStatus::SUCCESS);
}

/// RegisterShouldRejectBadRevisions, RegisterShouldRejectBadSizes.
#[test]
fn edk2_register_should_reject_bad_revisions_and_sizes() {
    let mut s = svc();
    let mut e = Entry::named(test_guid_1(), TEST_VAR_1);
    e.version = u32::MAX;
    assert_eq!(register(&mut s, &e), EfiStatus::INVALID_PARAMETER);
    let mut e = Entry::named(test_guid_1(), TEST_VAR_1);
    e.size = Some(44 - 2);
    assert_eq!(register(&mut s, &e), EfiStatus::INVALID_PARAMETER);
    assert_eq!(policy_count(&s), 0);
}

/// RegisterShouldRejectBadOffsets.
#[test]
fn edk2_register_should_reject_bad_offsets() {
    let mut s = svc();
    let base = expanded(Some(TEST_VAR_1));
    let size = base.bytes().len() as u16;
    for offset in [size + 1, 44 - 2, 44 + 2, u16::MAX] {
        let mut e = base.clone();
        e.offset_to_name = Some(offset);
        assert_eq!(
            register(&mut s, &e),
            EfiStatus::INVALID_PARAMETER,
            "OffsetToName {offset}"
        );
    }
    assert_eq!(policy_count(&s), 0);
}

/// RegisterShouldRejectMissingStateStrings: a LOCK_ON_VAR_STATE entry
/// whose name starts right after the state header (no state name).
#[test]
fn edk2_register_should_reject_missing_state_strings() {
    let mut s = svc();
    let mut e = Entry::named(test_guid_1(), TEST_VAR_1).lock(LOCK_ON_VAR_STATE);
    let mut name = test_guid_2().0.to_vec();
    name.extend_from_slice(&[1, 0]);
    name.extend_from_slice(&ucs2(TEST_VAR_1));
    e.name = Some(name);
    e.offset_to_name = Some(44 + 18);
    assert_eq!(register(&mut s, &e), EfiStatus::INVALID_PARAMETER);
}

/// RegisterShouldRejectStringsMissingNull, RegisterShouldRejectMalformedStrings.
#[test]
fn edk2_register_should_reject_strings_missing_null_and_malformed() {
    let mut s = svc();
    let base = expanded(Some(TEST_VAR_1));
    let full = base.bytes().len() as u16;
    let offset = (44 + 18 + ucs2(TEST_VAR_2).len()) as u16;
    for (size, off) in [
        (full - 2, offset),     // the policy name loses its NUL
        (full - 2, offset - 2), // the state name loses its NUL
        (full - 1, offset),     // odd sizes
        (full - 1, offset - 1),
    ] {
        let mut e = base.clone();
        e.size = Some(size);
        e.offset_to_name = Some(off);
        let mut raw = e.bytes();
        if off != offset {
            // the name copied to the new offset, as the edk2 test does
            raw.truncate(off as usize);
            raw.extend_from_slice(&ucs2(TEST_VAR_1));
            raw.truncate(size as usize);
        }
        assert_eq!(
            register_raw(&mut s, &raw),
            EfiStatus::INVALID_PARAMETER,
            "Size {size} OffsetToName {off}"
        );
    }
    assert_eq!(policy_count(&s), 0);
}

/// RegisterShouldRejectUnpackedPolicies: a gap between the state name (or
/// the header) and the policy name.
#[test]
fn edk2_register_should_reject_unpacked_policies() {
    let mut s = svc();
    for base in [
        expanded(Some(TEST_VAR_1)),
        Entry::named(test_guid_1(), TEST_VAR_1),
    ] {
        let packed = base.bytes();
        let offset = packed.len() - ucs2(TEST_VAR_1).len();
        let mut raw = packed[..offset].to_vec();
        raw.extend_from_slice(&[0, 0]);
        raw.extend_from_slice(&ucs2(TEST_VAR_1));
        let size = raw.len() as u16;
        raw[4..6].copy_from_slice(&size.to_le_bytes());
        raw[6..8].copy_from_slice(&((offset + 2) as u16).to_le_bytes());
        assert_eq!(register_raw(&mut s, &raw), EfiStatus::INVALID_PARAMETER);
    }
}

/// RegisterShouldRejectBadPolicyConstraints (MaxSize 0),
/// RegisterShouldRejectUnknownLockPolicies, RegisterShouldRejectPolicesWithTooManyWildcards,
/// RegisterShouldRejectDuplicatePolicies.
#[test]
fn edk2_register_should_reject_bad_constraints_locks_wildcards_duplicates() {
    let mut s = svc();
    let e = Entry::named(test_guid_1(), TEST_VAR_1).sizes(0, 0);
    assert_eq!(register(&mut s, &e), EfiStatus::INVALID_PARAMETER);
    let e = Entry::named(test_guid_1(), TEST_VAR_1).lock(LOCK_ON_VAR_STATE + 1);
    assert_eq!(register(&mut s, &e), EfiStatus::INVALID_PARAMETER);
    let e = Entry::named(test_guid_1(), &"#".repeat(256));
    assert_eq!(register(&mut s, &e), EfiStatus::INVALID_PARAMETER);
    let e = Entry::named(test_guid_1(), TEST_VAR_1);
    assert_eq!(register(&mut s, &e), EfiStatus::SUCCESS);
    assert_eq!(register(&mut s, &e), EfiStatus::ALREADY_STARTED);
}

/// MinAndMaxSizePoliciesShouldBeHonored.
#[test]
fn edk2_min_and_max_size_policies_should_be_honored() {
    let mut s = svc();
    enforce_after(
        &mut s,
        &[Entry::named(test_guid_1(), TEST_VAR_1).sizes(10, 200)],
    );
    for (size, status) in [
        (201, EfiStatus::INVALID_PARAMETER),
        (9, EfiStatus::INVALID_PARAMETER),
        (11, EfiStatus::SUCCESS),
    ] {
        assert_eq!(
            set(&mut s, &test_guid_1(), TEST_VAR_1, NV_BS, &vec![0; size]),
            status,
            "{size} bytes"
        );
    }
}

/// AttributeMustPoliciesShouldBeHonored (the authenticated cases' 12
/// dummy bytes are refused before the policy: VariableServiceSetVariable's
/// EFI_VARIABLE_AUTHENTICATION_2 sanity check).
#[test]
fn edk2_attribute_must_policies_should_be_honored() {
    let mut s = svc();
    enforce_after(
        &mut s,
        &[Entry::named(test_guid_1(), TEST_VAR_1).attrs(NV_BS_RT, 0)],
    );
    let dummy = [0u8; 12];
    assert_eq!(
        set(&mut s, &test_guid_1(), TEST_VAR_1, BS | RT, &dummy),
        EfiStatus::INVALID_PARAMETER
    );
    assert_eq!(
        set(&mut s, &test_guid_1(), TEST_VAR_1, BS | RT | AT, &dummy),
        EfiStatus::SECURITY_VIOLATION
    );
    assert_eq!(
        set(&mut s, &test_guid_1(), TEST_VAR_1, NV_BS_RT, &dummy),
        EfiStatus::SUCCESS
    );
}

/// AttributeCantPoliciesShouldBeHonored.
#[test]
fn edk2_attribute_cant_policies_should_be_honored() {
    let mut s = svc();
    enforce_after(
        &mut s,
        &[Entry::named(test_guid_1(), TEST_VAR_1).attrs(0, AT)],
    );
    let dummy = [0u8; 12];
    assert_eq!(
        set(&mut s, &test_guid_1(), TEST_VAR_1, BS | RT | AT, &dummy),
        EfiStatus::SECURITY_VIOLATION
    );
    assert_eq!(
        set(&mut s, &test_guid_1(), TEST_VAR_1, NV_BS_RT, &dummy),
        EfiStatus::SUCCESS
    );
    assert!(exists(&s, &test_guid_1(), TEST_VAR_1));
}

/// VariablesShouldBeDeletableRegardlessOfSize.
#[test]
fn edk2_variables_should_be_deletable_regardless_of_size() {
    let mut s = svc();
    assert_eq!(
        set(&mut s, &test_guid_1(), TEST_VAR_1, NV_BS, &[1; 4]),
        EfiStatus::SUCCESS
    );
    enforce_after(
        &mut s,
        &[Entry::named(test_guid_1(), TEST_VAR_1).sizes(10, 200)],
    );
    assert_eq!(
        set(&mut s, &test_guid_1(), TEST_VAR_1, NV_BS, &[1; 4]),
        EfiStatus::INVALID_PARAMETER
    );
    assert_eq!(
        set(&mut s, &test_guid_1(), TEST_VAR_1, NV_BS, &[]),
        EfiStatus::SUCCESS
    );
    assert!(!exists(&s, &test_guid_1(), TEST_VAR_1));
}

/// LockNowPoliciesShouldBeHonored.
#[test]
fn edk2_lock_now_policies_should_be_honored() {
    let mut s = svc();
    enforce_after(
        &mut s,
        &[Entry::named(test_guid_1(), TEST_VAR_1).lock(LOCK_NOW)],
    );
    assert_eq!(
        set(&mut s, &test_guid_1(), TEST_VAR_1, NV_BS, &[1]),
        EfiStatus::WRITE_PROTECTED
    );
}

/// LockOnCreatePoliciesShouldBeHonored: writable while it does not exist.
#[test]
fn edk2_lock_on_create_policies_should_be_honored() {
    let mut s = svc();
    enforce_after(
        &mut s,
        &[Entry::named(test_guid_1(), TEST_VAR_1).lock(LOCK_ON_CREATE)],
    );
    assert_eq!(
        set(&mut s, &test_guid_1(), TEST_VAR_1, NV_BS, &[1; 10]),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        set(&mut s, &test_guid_1(), TEST_VAR_1, NV_BS, &[2; 10]),
        EfiStatus::WRITE_PROTECTED
    );
}

/// LockOnStatePoliciesShouldBeHonored: locked only while TestVar2 holds
/// exactly the one byte 1 (absent, larger, or another value: writable).
#[test]
fn edk2_lock_on_state_policies_should_be_honored() {
    let mut s = svc();
    enforce_after(&mut s, &[expanded(Some(TEST_VAR_1))]);
    let g2 = test_guid_2();
    assert_eq!(
        set(&mut s, &test_guid_1(), TEST_VAR_1, NV_BS, &[1]),
        EfiStatus::SUCCESS
    );
    for (state, status) in [
        (vec![1u8; 10], EfiStatus::SUCCESS),
        (vec![20], EfiStatus::SUCCESS),
        (vec![0], EfiStatus::SUCCESS),
        (vec![1], EfiStatus::WRITE_PROTECTED),
    ] {
        assert_eq!(
            set(&mut s, &g2, TEST_VAR_2, NV_BS, &state),
            EfiStatus::SUCCESS
        );
        assert_eq!(
            set(&mut s, &test_guid_1(), TEST_VAR_1, NV_BS, &[1]),
            status,
            "state {state:?}"
        );
    }
}

/// LockOnStatePoliciesShouldApplyToNamespaces.
#[test]
fn edk2_lock_on_state_policies_should_apply_to_namespaces() {
    let mut s = svc();
    enforce_after(&mut s, &[expanded(None)]);
    for name in [TEST_VAR_1, "TestVar3"] {
        assert_eq!(
            set(&mut s, &test_guid_1(), name, NV_BS, &[1]),
            EfiStatus::SUCCESS
        );
    }
    assert_eq!(
        set(&mut s, &test_guid_2(), TEST_VAR_2, NV_BS, &[1]),
        EfiStatus::SUCCESS
    );
    for name in [TEST_VAR_1, "TestVar3"] {
        assert_eq!(
            set(&mut s, &test_guid_1(), name, NV_BS, &[1]),
            EfiStatus::WRITE_PROTECTED
        );
    }
}

/// ShouldBeAbleToLockInterface (LockVariablePolicy twice: the second is
/// an error; DISABLE and REGISTER are refused once locked).
#[test]
fn edk2_should_be_able_to_lock_interface() {
    let mut s = svc();
    assert!(!s.policies().is_locked());
    assert_eq!(
        result(&mut s, &policy_req(CMD_LOCK, &[])),
        EfiStatus::SUCCESS
    );
    assert!(s.policies().is_locked());
    assert_eq!(
        result(&mut s, &policy_req(CMD_LOCK, &[])),
        EfiStatus::WRITE_PROTECTED
    );
    assert_eq!(
        result(&mut s, &policy_req(CMD_DISABLE, &[])),
        EfiStatus::WRITE_PROTECTED
    );
    assert_eq!(
        register(&mut s, &Entry::named(test_guid_1(), TEST_VAR_1)),
        EfiStatus::WRITE_PROTECTED
    );
}

/// compat: policy-lock-twice (edk2 LockVariablePolicy; QEMU: EFI_SUCCESS).
/// EndOfDxe locks the interface too, so a LOCK after it is the second.
#[test]
fn compat_policy_lock_twice() {
    let mut s = svc();
    end_of_dxe(&mut s);
    assert_eq!(
        result(&mut s, &policy_req(CMD_LOCK, &[])),
        EfiStatus::WRITE_PROTECTED
    );
}

fn disabling_svc() -> Service {
    common::in_memory(Config::default().with_allow_policy_disable(true))
}

fn is_enabled(s: &mut Service) -> u8 {
    let resp = call(s, &policy_req(CMD_IS_ENABLED, &[0x55]));
    reply(&resp)[PARAMS]
}

/// ShouldBeAbleToDisablePolicyEnforcement, ShouldNotBeAbleToDisablePoliciesTwice
/// (with PcdAllowVariablePolicyEnforcementDisable, `Config::allow_policy_disable`).
#[test]
fn edk2_should_be_able_to_disable_policy_enforcement_once() {
    let mut s = disabling_svc();
    assert_eq!(is_enabled(&mut s), 1);
    assert_eq!(
        register(&mut s, &Entry::named(test_guid_1(), TEST_VAR_1).sizes(0, 4)),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        result(&mut s, &policy_req(CMD_DISABLE, &[])),
        EfiStatus::SUCCESS
    );
    assert_eq!(is_enabled(&mut s), 0);
    assert_eq!(
        result(&mut s, &policy_req(CMD_DISABLE, &[])),
        EfiStatus::ALREADY_STARTED
    );
    end_of_dxe(&mut s);
    assert_eq!(
        set(&mut s, &test_guid_1(), TEST_VAR_1, NV_BS, &[1; 8]),
        EfiStatus::SUCCESS
    );
}

/// ShouldBeAbleToAddNewPoliciesAfterDisabled, ShouldBeAbleToLockAfterDisabled.
#[test]
fn edk2_should_be_able_to_add_policies_and_lock_after_disabled() {
    let mut s = disabling_svc();
    assert_eq!(
        result(&mut s, &policy_req(CMD_DISABLE, &[])),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        register(&mut s, &Entry::named(test_guid_1(), TEST_VAR_1)),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        result(&mut s, &policy_req(CMD_LOCK, &[])),
        EfiStatus::SUCCESS
    );
    assert!(s.policies().is_locked());
}

/// ShouldBeAbleToDumpThePolicyTable, ShouldBeAbleToDumpThePolicyTableAfterDisabled:
/// the table is every entry as registered, in order.
#[test]
fn edk2_should_be_able_to_dump_the_policy_table() {
    let mut s = disabling_svc();
    let a = Entry::named(test_guid_1(), TEST_VAR_1).sizes(1, 8);
    let b = expanded(Some("TestVar3"));
    assert_eq!(register(&mut s, &a), EfiStatus::SUCCESS);
    let table = [a.bytes(), b.bytes()].concat();
    assert_eq!(register(&mut s, &b), EfiStatus::SUCCESS);
    for disable in [false, true] {
        if disable {
            assert_eq!(
                result(&mut s, &policy_req(CMD_DISABLE, &[])),
                EfiStatus::SUCCESS
            );
        }
        let first = dump(&mut s, 0);
        assert_eq!(first.result, EfiStatus::SUCCESS);
        assert_eq!(first.total as usize, table.len());
        let page = dump(&mut s, 1);
        assert_eq!(page.result, EfiStatus::SUCCESS);
        assert_eq!(page.data, table);
        assert_eq!(page.has_more, 0);
    }
}

/// InfoExpectBufferTooSmall, InfoSucceedIfZeroSizedNameBufferNotNeeded,
/// InfoDoubleCallWithSizeReturnedShouldPass,
/// InfoReturnPolicyWithVariablePolicyNamePresent/NotPresent,
/// InfoExpectNotFound (GetVariablePolicyInfo).
#[test]
fn edk2_info_name_buffer_cases() {
    let mut s = svc();
    let named = Entry::named(test_guid_1(), TEST_VAR_1).sizes(1, 8);
    assert_eq!(register(&mut s, &named), EfiStatus::SUCCESS);
    let need = ucs2(TEST_VAR_1).len() as u32;
    let (st, r) = get_info(&mut s, CMD_GET_INFO, &test_guid_1(), TEST_VAR_1, need - 2);
    assert_eq!(st, EfiStatus::BUFFER_TOO_SMALL);
    assert_eq!(u32_at(&r, OUT_NAME_SIZE), need);
    let (st, r) = get_info(&mut s, CMD_GET_INFO, &test_guid_1(), TEST_VAR_1, need);
    assert_eq!(st, EfiStatus::SUCCESS);
    assert_eq!(&r[OUT_ENTRY..OUT_ENTRY + 44], &named.bytes()[..44]);
    let out = IN_NAME + ucs2(TEST_VAR_1).len();
    assert_eq!(&r[out..out + need as usize], &ucs2(TEST_VAR_1)[..]);
    // A namespace-wide policy has no name: a zero-sized buffer is fine,
    // and the name area comes back NUL-filled.
    let mut s = svc();
    assert_eq!(
        register(&mut s, &Entry::nameless(test_guid_1())),
        EfiStatus::SUCCESS
    );
    let (st, r) = get_info(&mut s, CMD_GET_INFO, &test_guid_1(), TEST_VAR_1, 0);
    assert_eq!(st, EfiStatus::SUCCESS);
    assert_eq!(u32_at(&r, OUT_NAME_SIZE), 0);
    assert!(r[out..].iter().all(|&b| b == 0));
    let (st, _) = get_info(&mut s, CMD_GET_INFO, &test_guid_2(), TEST_VAR_1, 0);
    assert_eq!(st, EfiStatus::NOT_FOUND);
}

/// LockStateInfoExpectBufferTooSmall, LockStateInfoDoubleCallWithSizeReturnedShouldPass,
/// LockStateInfoExpectNotFoundWrongPolicyType, LockStateInfoBestPolicyMatchWithMultipleOptions
/// (GetLockOnVariableStateVariablePolicyInfo).
#[test]
fn edk2_lock_state_info_cases() {
    let mut s = svc();
    assert_eq!(
        register(&mut s, &expanded(Some(TEST_VAR_1))),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        register(
            &mut s,
            &Entry::named(test_guid_1(), "TestVar3").lock(LOCK_NOW)
        ),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        register(&mut s, &expanded(Some("TestVar#"))),
        EfiStatus::SUCCESS
    );
    let need = ucs2(TEST_VAR_2).len() as u32;
    let (st, r) = get_info(
        &mut s,
        CMD_GET_LOCK_VAR_STATE_INFO,
        &test_guid_1(),
        TEST_VAR_1,
        2,
    );
    assert_eq!(st, EfiStatus::BUFFER_TOO_SMALL);
    assert_eq!(u32_at(&r, OUT_NAME_SIZE), need);
    let (st, r) = get_info(
        &mut s,
        CMD_GET_LOCK_VAR_STATE_INFO,
        &test_guid_1(),
        TEST_VAR_1,
        need,
    );
    assert_eq!(st, EfiStatus::SUCCESS);
    assert_eq!(&r[OUT_ENTRY..OUT_ENTRY + 16], &test_guid_2().0);
    assert_eq!(r[OUT_ENTRY + 16], 1);
    // the rest of the 44-byte output entry is zeroed
    assert!(r[OUT_ENTRY + 18..OUT_ENTRY + 44].iter().all(|&b| b == 0));
    let out = IN_NAME + ucs2(TEST_VAR_1).len();
    assert_eq!(&r[out..out + need as usize], &ucs2(TEST_VAR_2)[..]);
    // exact LOCK_NOW beats the wildcard: not a state policy
    let (st, _) = get_info(
        &mut s,
        CMD_GET_LOCK_VAR_STATE_INFO,
        &test_guid_1(),
        "TestVar3",
        need,
    );
    assert_eq!(st, EfiStatus::NOT_FOUND);
    // the wildcard state policy governs TestVar5
    let (st, _) = get_info(
        &mut s,
        CMD_GET_LOCK_VAR_STATE_INFO,
        &test_guid_1(),
        "TestVar5",
        need,
    );
    assert_eq!(st, EfiStatus::SUCCESS);
}

// VariableLockRequestToLockUnitTest.c, through LOCK_VARIABLE (function 8).

/// LockingWithoutAnyPoliciesShouldSucceed, LockingTwiceShouldSucceed.
#[test]
fn edk2_locking_without_any_policies_and_twice_should_succeed() {
    let mut s = svc();
    assert_eq!(
        lock_variable(&mut s, &test_guid_1(), TEST_VAR_1),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        lock_variable(&mut s, &test_guid_1(), TEST_VAR_1),
        EfiStatus::SUCCESS
    );
    assert_eq!(policy_count(&s), 1);
}

/// LockingALockedVariableShouldSucceed: a LOCK_NOW policy is there already.
#[test]
fn edk2_locking_a_locked_variable_should_succeed() {
    let mut s = svc();
    let e = Entry::named(test_guid_1(), TEST_VAR_1)
        .sizes(0, 200)
        .lock(LOCK_NOW);
    assert_eq!(register(&mut s, &e), EfiStatus::SUCCESS);
    assert_eq!(
        lock_variable(&mut s, &test_guid_1(), TEST_VAR_1),
        EfiStatus::SUCCESS
    );
    assert_eq!(policy_count(&s), 1);
}

fn var_state_on_test_var_1(s: &mut Service) {
    let e = Entry::named(test_guid_1(), TEST_VAR_1)
        .sizes(0, 200)
        .on_state(test_guid_2(), 1, TEST_VAR_2);
    assert_eq!(register(s, &e), EfiStatus::SUCCESS);
}

/// LockingAnUnlockedVariableShouldFail: a LOCK_ON_VAR_STATE policy whose
/// state variable does not exist.
#[test]
fn edk2_locking_an_unlocked_variable_should_fail() {
    let mut s = svc();
    var_state_on_test_var_1(&mut s);
    assert_eq!(
        lock_variable(&mut s, &test_guid_1(), TEST_VAR_1),
        EfiStatus::ACCESS_DENIED
    );
}

/// compat: lock-variable-phase. LockingALockedVariableWithMatchingDataShouldSucceed:
/// the state variable holds the policy's Value, so the variable is locked
/// already (ValidateSetVariable reads it) and the lock succeeds without a
/// new entry. QEMU also answers EFI_SUCCESS, but adds a LOCK_NOW policy.
#[test]
fn compat_lock_variable_phase_edk2_locking_a_locked_variable_with_matching_data_should_succeed() {
    let mut s = svc();
    var_state_on_test_var_1(&mut s);
    assert_eq!(
        set(&mut s, &test_guid_2(), TEST_VAR_2, NV_BS, &[1]),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        lock_variable(&mut s, &test_guid_1(), TEST_VAR_1),
        EfiStatus::SUCCESS
    );
    assert_eq!(policy_count(&s), 1);
}

/// LockingALockedVariableWithNonMatchingDataShouldFail.
#[test]
fn edk2_locking_a_locked_variable_with_non_matching_data_should_fail() {
    let mut s = svc();
    var_state_on_test_var_1(&mut s);
    assert_eq!(
        set(&mut s, &test_guid_2(), TEST_VAR_2, NV_BS, &[2]),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        lock_variable(&mut s, &test_guid_1(), TEST_VAR_1),
        EfiStatus::ACCESS_DENIED
    );
}

/// SettingPolicyForALockedVariableShouldFail.
#[test]
fn edk2_setting_policy_for_a_locked_variable_should_fail() {
    let mut s = svc();
    assert_eq!(
        lock_variable(&mut s, &test_guid_1(), TEST_VAR_1),
        EfiStatus::SUCCESS
    );
    let e = Entry::named(test_guid_1(), TEST_VAR_1)
        .sizes(0, 200)
        .on_state(test_guid_2(), 1, TEST_VAR_2);
    assert_eq!(register(&mut s, &e), EfiStatus::ALREADY_STARTED);
}
