//! The classifier without QEMU: our answers come from the real service,
//! QEMU's are ours with the fields QEMU answers differently put in by hand
//! (as QEMU 10.0.2 and 11.1.3 answered them in the conformance runs).

use std::str::FromStr;

use uefi_vars::codec::{request, Layout};
use uefi_vars::guid::{Guid, EXIT_BOOT_SERVICES_EVENT, GLOBAL_VARIABLE, IMAGE_SECURITY_DATABASE};
use uefi_vars::name::VarName;
use uefi_vars::persist::MemoryStorage;
use uefi_vars::variable::Variable;
use uefi_vars::{Config, MmResponse, Service};

use super::*;

const L: Layout = Layout::X64;
const V10: (u32, u32) = (10, 0);
const V11: (u32, u32) = (11, 1);

fn ucs2(s: &str) -> Vec<u8> {
    let mut v: Vec<u8> = s.encode_utf16().flat_map(u16::to_le_bytes).collect();
    v.extend_from_slice(&[0, 0]);
    v
}

fn guid(s: &str) -> Guid {
    Guid::from_str(s).unwrap()
}

/// A run: our service, answering as QEMU `version` configured.
struct Run {
    svc: Service,
    ctx: Context,
}

impl Run {
    fn new(version: (u32, u32)) -> Run {
        Run::with_store(version, MemoryStorage::new())
    }

    fn with_store(version: (u32, u32), storage: MemoryStorage) -> Run {
        let config = Config::default()
            .with_legacy_payload_size(version < (11, 0))
            .with_legacy_storage_accounting(version < (11, 0));
        Run {
            svc: Service::new(config, Box::new(storage)).unwrap(),
            ctx: Context::new(version),
        }
    }

    /// Sends `req` to our service; QEMU's reply is ours changed by
    /// `qemu` (the identity: QEMU answered the same). Returns our reply
    /// and the classification.
    fn send(
        &mut self,
        req: &[u8],
        qemu: impl FnOnce(&mut Vec<u8>),
    ) -> (MmResponse, Option<&'static str>) {
        let before = is_set_variable(req).then(|| self.svc.store().clone());
        let ours = self.svc.communicate(req);
        let mut theirs = ours.reply.clone().unwrap();
        qemu(&mut theirs);
        let same = Some(&theirs) == ours.reply.as_ref();
        let id = observe(
            &mut self.ctx,
            &Exchange {
                request: req,
                qemu_status: 0,
                qemu_reply: Some(&theirs),
                ours: &ours,
                same,
                store: self.svc.store(),
                before: before.as_ref(),
            },
        );
        (ours, id)
    }

    fn same(&mut self, req: &[u8]) -> MmResponse {
        let (ours, id) = self.send(req, |_| {});
        assert_eq!(id, None);
        ours
    }

    fn reset(&mut self) {
        self.svc.reset().unwrap();
        self.ctx.reset(self.svc.store());
    }
}

fn var_status(r: &MmResponse) -> u64 {
    u64::from_le_bytes(r.reply.as_ref().unwrap()[32..40].try_into().unwrap())
}

fn policy_status(r: &MmResponse) -> u64 {
    u64::from_le_bytes(r.reply.as_ref().unwrap()[36..44].try_into().unwrap())
}

/// QEMU answered `status` instead (variable protocol).
fn var_answer(status: u64) -> impl FnOnce(&mut Vec<u8>) {
    move |r| r[32..40].copy_from_slice(&status.to_le_bytes())
}

/// QEMU answered `status` instead (policy protocol).
fn policy_answer(status: u64) -> impl FnOnce(&mut Vec<u8>) {
    move |r| r[36..44].copy_from_slice(&status.to_le_bytes())
}

/// QEMU reported `remaining` in QueryVariableInfo.
fn remaining_answer(remaining: u64) -> impl FnOnce(&mut Vec<u8>) {
    move |r| r[48..56].copy_from_slice(&remaining.to_le_bytes())
}

fn remaining(r: &MmResponse) -> u64 {
    u64::from_le_bytes(r.reply.as_ref().unwrap()[48..56].try_into().unwrap())
}

/// EFI_VARIABLE_AUTHENTICATION_2 with an empty CertData (what setup mode
/// accepts for KEK and db), dated 2024-01-`day`, then `payload`.
fn auth2(day: u8, payload: &[u8]) -> Vec<u8> {
    let mut d = vec![0u8; 16];
    d[0..2].copy_from_slice(&2024u16.to_le_bytes());
    d[2] = 1;
    d[3] = day;
    d.extend_from_slice(&24u32.to_le_bytes());
    d.extend_from_slice(&0x0200u16.to_le_bytes());
    d.extend_from_slice(&0x0ef1u16.to_le_bytes());
    d.extend_from_slice(&guid("4aafd29d-68df-49ee-8aa9-347d375665a7").0);
    d.extend_from_slice(payload);
    d
}

/// An EFI_CERT_SHA256 signature list with one entry.
fn sha256_list(fill: u8) -> Vec<u8> {
    let mut s = guid("c1c41626-504c-4092-aca9-41f936934328").0.to_vec();
    s.extend_from_slice(&76u32.to_le_bytes());
    s.extend_from_slice(&0u32.to_le_bytes());
    s.extend_from_slice(&48u32.to_le_bytes());
    s.extend_from_slice(&[0x11; 16]);
    s.extend_from_slice(&[fill; 32]);
    s
}

/// A NO_LOCK policy entry for `name` in `ns` with the given Version.
fn entry(ns: &Guid, name: &str, version: u32) -> Vec<u8> {
    let n = ucs2(name);
    let mut e = version.to_le_bytes().to_vec();
    e.extend_from_slice(&u16::try_from(44 + n.len()).unwrap().to_le_bytes());
    e.extend_from_slice(&44u16.to_le_bytes());
    e.extend_from_slice(&ns.0);
    e.extend_from_slice(&0u32.to_le_bytes());
    e.extend_from_slice(&u32::MAX.to_le_bytes());
    e.extend_from_slice(&[0; 12]);
    e.extend_from_slice(&n);
    e
}

const SIGDB: u32 = 0x27;
const APPEND: u32 = 0x40;

#[test]
fn a_kek_difference_is_not_absorbed_by_an_earlier_listed_one() {
    let mut run = Run::new(V10);
    // A listed difference on SecureBoot: QEMU stores it, we refuse.
    let sb = request::set_variable(L, &GLOBAL_VARIABLE, &ucs2("SecureBoot"), 6, &[1]);
    let (ours, id) = run.send(&sb, var_answer(SUCCESS));
    assert_eq!(var_status(&ours), WRITE_PROTECTED);
    assert_eq!(id, Some(READ_ONLY));
    // Answers about SecureBoot follow from it...
    let get = request::get_variable(L, &GLOBAL_VARIABLE, &ucs2("SecureBoot"), 16);
    assert_eq!(run.send(&get, |r| r[72] = 1).1, Some(READ_ONLY));
    // ... a refused KEK APPEND does not (neither db-signers nor
    // read-only: it concerns KEK).
    let kek = auth2(2, &sha256_list(1));
    run.same(&request::set_variable(
        L,
        &GLOBAL_VARIABLE,
        &ucs2("KEK"),
        SIGDB,
        &kek,
    ));
    let more = auth2(3, &sha256_list(2));
    let append = request::set_variable(L, &GLOBAL_VARIABLE, &ucs2("KEK"), SIGDB | APPEND, &more);
    let (ours, id) = run.send(&append, var_answer(SECURITY_VIOLATION));
    assert_eq!(var_status(&ours), SUCCESS);
    assert_eq!(id, None);
    // Nor is a later difference in another variable's GetVariable.
    let get = request::get_variable(L, &GLOBAL_VARIABLE, &ucs2("SetupMode"), 16);
    assert_eq!(run.send(&get, |r| r[72] ^= 1).1, None);
}

#[test]
fn db_signers_needs_a_signed_user_mode_update_of_db() {
    // Setup mode (no PK), no CertData: QEMU refusing it is not db-signers.
    let mut run = Run::new(V10);
    let db = request::set_variable(
        L,
        &IMAGE_SECURITY_DATABASE,
        &ucs2("db"),
        SIGDB,
        &auth2(2, &sha256_list(1)),
    );
    let (ours, id) = run.send(&db, var_answer(SECURITY_VIOLATION));
    assert_eq!(var_status(&ours), SUCCESS);
    assert_eq!(id, None);
}

#[test]
fn append_time_is_the_older_timestamp_only() {
    for (version, qemu, want) in [
        (V10, SECURITY_VIOLATION, Some(APPEND_TIME)),
        (V11, SECURITY_VIOLATION, None),
    ] {
        let mut run = Run::new(version);
        let name = ucs2("db");
        let db = |attrs, day, fill| {
            request::set_variable(
                L,
                &IMAGE_SECURITY_DATABASE,
                &name,
                attrs,
                &auth2(day, &sha256_list(fill)),
            )
        };
        run.same(&db(SIGDB, 2, 1));
        // An APPEND dated before the stored time.
        let (ours, id) = run.send(&db(SIGDB | APPEND, 1, 2), var_answer(qemu));
        assert_eq!(var_status(&ours), SUCCESS);
        assert_eq!(id, want, "{version:?}");
        // A later one that QEMU refused is something else.
        let mut run = Run::new(version);
        run.same(&db(SIGDB, 2, 1));
        let (_, id) = run.send(&db(SIGDB | APPEND, 3, 2), var_answer(qemu));
        assert_eq!(id, None, "{version:?}");
    }
}

/// A store whose first variable is boot-services only.
fn hidden_first() -> MemoryStorage {
    let v = Variable::new(
        guid("7e5ca0b2-44d1-4f08-a33c-109be25f7102"),
        VarName::from("Hidden"),
        3,
        vec![1],
    );
    let text = uefi_vars::persist::json::encode(&[&v]).unwrap();
    MemoryStorage::from_text(text)
}

/// A GetNextVariableName reply naming `g`/`name` instead of ours.
fn next_answer(g: Guid, name: &str) -> impl FnOnce(&mut Vec<u8>) {
    let n = ucs2(name);
    move |r| {
        r[32..40].copy_from_slice(&SUCCESS.to_le_bytes());
        r[40..56].copy_from_slice(&g.0);
        r[56..64].copy_from_slice(&(n.len() as u64).to_le_bytes());
        r[64..64 + n.len()].copy_from_slice(&n);
    }
}

#[test]
fn qemu10_get_next_first_needs_qemu10_and_the_hidden_variable() {
    let hidden = guid("7e5ca0b2-44d1-4f08-a33c-109be25f7102");
    let first = request::get_next_variable_name(L, &GLOBAL_VARIABLE, &ucs2(""), 64);
    for (version, answer, want) in [
        (V10, (hidden, "Hidden"), Some(QEMU10_GET_NEXT_FIRST)),
        (V11, (hidden, "Hidden"), None),
        // A variable the phase may see is not this row's difference.
        (V10, (GLOBAL_VARIABLE, "SecureBoot"), None),
    ] {
        let mut run = Run::with_store(version, hidden_first());
        run.same(&request::event(L, &EXIT_BOOT_SERVICES_EVENT));
        let (ours, id) = run.send(&first, next_answer(answer.0, answer.1));
        assert_eq!(var_status(&ours), SUCCESS);
        assert_eq!(id, want, "{version:?} {}", answer.1);
    }
}

#[test]
fn query_variable_info_follows_from_a_policy_only_qemu_holds() {
    let ns = guid("1b1d3f6c-0a1e-4b5a-9c11-528e3764d001");
    let query = request::query_variable_info(L, 7);
    for (version, charged) in [(V11, true), (V10, false)] {
        let mut run = Run::new(version);
        // Version 2: edk2 refuses it, QEMU stores it (policy-validation).
        let e = entry(&ns, "Abc", 2);
        let (ours, id) = run.send(&request::policy(L, 3, &e), policy_answer(SUCCESS));
        assert_eq!(policy_status(&ours), INVALID_PARAMETER);
        assert_eq!(id, Some(POLICY_VALIDATION));
        let ours_now = remaining(&run.svc.communicate(&query));
        let size = e.len() as u64;
        // QEMU 11 charges the 52 bytes: exactly that is excused.
        let (_, id) = run.send(&query, remaining_answer(ours_now - size));
        assert_eq!(id, charged.then_some(POLICY_VALIDATION), "{version:?}");
        let (_, id) = run.send(&query, remaining_answer(ours_now - size - 1));
        assert_eq!(id, None, "{version:?}");
    }
}

#[test]
fn a_policy_charge_kept_over_a_reset_is_policy_charge_reset() {
    let ns = guid("1b1d3f6c-0a1e-4b5a-9c11-528e3764d001");
    let query = request::query_variable_info(L, 7);
    for (version, want) in [(V11, Some(POLICY_CHARGE_RESET)), (V10, None)] {
        let mut run = Run::new(version);
        let e = entry(&ns, "Abc", 0x10000);
        assert_eq!(
            policy_status(&run.same(&request::policy(L, 3, &e))),
            SUCCESS
        );
        run.reset();
        let ours_now = remaining(&run.svc.communicate(&query));
        let (_, id) = run.send(&query, remaining_answer(ours_now - e.len() as u64));
        assert_eq!(id, want, "{version:?}");
    }
}

#[test]
fn a_variable_only_qemu_stored_is_counted_in_its_accounting() {
    // An empty-name variable (empty-name: QEMU stores it, we refuse):
    // QEMU's remaining is ours minus its 96 + 2 + 3 bytes, not anything.
    let query = request::query_variable_info(L, 7);
    let mut run = Run::new(V11);
    let set = request::set_variable(L, &GLOBAL_VARIABLE, &ucs2(""), 7, &[1, 2, 3]);
    let (ours, id) = run.send(&set, var_answer(SUCCESS));
    assert_eq!(var_status(&ours), INVALID_PARAMETER);
    assert_eq!(id, Some(EMPTY_NAME));
    let ours_now = remaining(&run.svc.communicate(&query));
    assert_eq!(
        run.send(&query, remaining_answer(ours_now - 101)).1,
        Some(EMPTY_NAME)
    );
    assert_eq!(run.send(&query, remaining_answer(ours_now - 100)).1, None);
    // Non-volatile in QEMU: still there after a reset.
    run.reset();
    let ours_now = remaining(&run.svc.communicate(&query));
    assert_eq!(
        run.send(&query, remaining_answer(ours_now - 101)).1,
        Some(EMPTY_NAME)
    );
}

#[test]
fn append_empty_leaves_the_variable_different() {
    // QEMU deletes, we keep: a later enumeration that differs there
    // follows from it; one elsewhere does not.
    let mut run = Run::new(V11);
    let name = ucs2("Boot0001");
    run.same(&request::set_variable(
        L,
        &GLOBAL_VARIABLE,
        &name,
        7,
        &[1; 10],
    ));
    let (_, id) = run.send(
        &request::set_variable(L, &GLOBAL_VARIABLE, &name, 7 | APPEND, &[]),
        |_| {},
    );
    assert_eq!(id, None);
    let get = request::get_variable(L, &GLOBAL_VARIABLE, &name, 64);
    assert_eq!(run.send(&get, var_answer(NOT_FOUND)).1, Some(APPEND_EMPTY));
    let other = request::get_variable(L, &GLOBAL_VARIABLE, &ucs2("SetupMode"), 64);
    assert_eq!(run.send(&other, var_answer(NOT_FOUND)).1, None);
}

fn end_of_dxe(run: &mut Run) {
    run.same(&request::event(L, &uefi_vars::guid::END_OF_DXE_EVENT));
}

#[test]
fn policy_framing_needs_a_framing_fault_of_that_request() {
    let mut run = Run::new(V11);
    let ns = guid("11111111-2222-3333-4444-555555555555");
    // IS_ENABLED with no room for State.
    let (ours, id) = run.send(&request::policy(L, 2, &[]), policy_answer(BAD_BUFFER_SIZE));
    assert_eq!(policy_status(&ours), INVALID_PARAMETER);
    assert_eq!(id, Some(POLICY_FRAMING));
    // REGISTER whose Size runs past MessageLength.
    let mut e = entry(&ns, "A", 0x10000);
    e[4] = 200;
    let (ours, id) = run.send(&request::policy(L, 3, &e), policy_answer(BAD_BUFFER_SIZE));
    assert_eq!(policy_status(&ours), INVALID_PARAMETER);
    assert_eq!(id, Some(POLICY_FRAMING));
    // A well-framed entry with MaxSize 0 that QEMU refused for its size:
    // not a framing fault, so unlisted.
    let mut e = entry(&ns, "B", 0x10000);
    e[28..32].copy_from_slice(&0u32.to_le_bytes());
    let (ours, id) = run.send(&request::policy(L, 3, &e), policy_answer(BAD_BUFFER_SIZE));
    assert_eq!(policy_status(&ours), INVALID_PARAMETER);
    assert_eq!(id, None);
}

#[test]
fn policy_lock_twice_needs_a_lock_before() {
    let mut run = Run::new(V11);
    // The first LOCK: same answers.
    run.same(&request::policy(L, 5, &[]));
    let (ours, id) = run.send(&request::policy(L, 5, &[]), policy_answer(SUCCESS));
    assert_eq!(policy_status(&ours), WRITE_PROTECTED);
    assert_eq!(id, Some(POLICY_LOCK_TWICE));
    // In a fresh boot with no lock, a refused LOCK is not lock-twice.
    let mut fresh = Run::new(V11);
    let (_, id) = fresh.send(&request::policy(L, 5, &[]), |r| {
        r[36..44].copy_from_slice(&WRITE_PROTECTED.to_le_bytes())
    });
    assert_eq!(id, None);
}

#[test]
fn uefi_defined_variables_concern_the_global_namespaces_after_end_of_dxe() {
    let mut run = Run::new(V11);
    let vendor = guid("11111111-2222-3333-4444-555555555555");
    // Before EndOfDxe nothing is checked: same answers.
    run.same(&request::set_variable(
        L,
        &GLOBAL_VARIABLE,
        &ucs2("NotDefined"),
        7,
        &[1],
    ));
    end_of_dxe(&mut run);
    let odd = request::set_variable(L, &GLOBAL_VARIABLE, &ucs2("BootOrder"), 7, &[1, 0, 2]);
    let (ours, id) = run.send(&odd, var_answer(SUCCESS));
    assert_eq!(var_status(&ours), INVALID_PARAMETER);
    assert_eq!(id, Some(UEFI_DEFINED_VARIABLES));
    // A vendor variable refused with the same status is not absorbed.
    let mine = request::set_variable(L, &vendor, &ucs2("Mine"), 7, &[1]);
    let (_, id) = run.send(&mine, |r| {
        r[32..40].copy_from_slice(&INVALID_PARAMETER.to_le_bytes())
    });
    assert_eq!(id, None);
}

/// SMM_VARIABLE_COMMUNICATE_VAR_CHECK_VARIABLE_PROPERTY (X64).
fn property_set(ns: &Guid, name: &str, attributes: u32, min: u64, max: u64) -> Vec<u8> {
    let n = ucs2(name);
    let mut p = ns.0.to_vec();
    p.extend_from_slice(&(n.len() as u64).to_le_bytes());
    p.extend_from_slice(&1u16.to_le_bytes());
    p.extend_from_slice(&0u16.to_le_bytes());
    p.extend_from_slice(&attributes.to_le_bytes());
    p.extend_from_slice(&min.to_le_bytes());
    p.extend_from_slice(&max.to_le_bytes());
    p.extend_from_slice(&n);
    request::variable(L, 9, &p)
}

#[test]
fn varcheck_property_governs_only_its_variable() {
    let mut run = Run::new(V11);
    let vendor = guid("11111111-2222-3333-4444-555555555555");
    let (ours, id) = run.send(
        &property_set(&vendor, "Small", 7, 1, 2),
        var_answer(UNSUPPORTED),
    );
    assert_eq!(var_status(&ours), SUCCESS);
    assert_eq!(id, Some(VARCHECK_PROPERTY));
    end_of_dxe(&mut run);
    let big = request::set_variable(L, &vendor, &ucs2("Small"), 7, &[1, 2, 3]);
    let (ours, id) = run.send(&big, var_answer(SUCCESS));
    assert_eq!(var_status(&ours), INVALID_PARAMETER);
    assert_eq!(id, Some(VARCHECK_PROPERTY));
    // Another vendor variable is not governed by it.
    let other = request::set_variable(L, &vendor, &ucs2("Other"), 7, &[1, 2, 3]);
    let (_, id) = run.send(&other, |r| {
        r[32..40].copy_from_slice(&INVALID_PARAMETER.to_le_bytes())
    });
    assert_eq!(id, None);
}

#[test]
fn runtime_cache_is_functions_12_and_14_only() {
    let mut run = Run::new(V11);
    let (ours, id) = run.send(&request::variable(L, 12, &[1; 48]), var_answer(UNSUPPORTED));
    assert_eq!(var_status(&ours), ACCESS_DENIED);
    assert_eq!(id, Some(RUNTIME_CACHE));
    // SYNC_RUNTIME_CACHE: UNSUPPORTED on both sides.
    run.same(&request::variable(L, 13, &[]));
    // GET_STATISTICS: UNSUPPORTED on both sides.
    run.same(&request::variable(L, 7, &[0; 64]));
}

/// A LOCK_ON_VAR_STATE entry on `name` in `ns`, state `state` = 1 in `ns`.
fn var_state_entry(ns: &Guid, name: &str, state: &str) -> Vec<u8> {
    let n = ucs2(name);
    let mut st = ns.0.to_vec();
    st.extend_from_slice(&[1, 0]);
    st.extend_from_slice(&ucs2(state));
    let mut e = 0x10000u32.to_le_bytes().to_vec();
    e.extend_from_slice(
        &u16::try_from(44 + st.len() + n.len())
            .unwrap()
            .to_le_bytes(),
    );
    e.extend_from_slice(&u16::try_from(44 + st.len()).unwrap().to_le_bytes());
    e.extend_from_slice(&ns.0);
    e.extend_from_slice(&0u32.to_le_bytes());
    e.extend_from_slice(&u32::MAX.to_le_bytes());
    e.extend_from_slice(&[0; 8]);
    e.extend_from_slice(&[3, 0, 0, 0]);
    e.extend_from_slice(&st);
    e.extend_from_slice(&n);
    e
}

#[test]
fn a_lock_of_a_var_state_locked_variable_leaves_qemu_a_lock_now_policy() {
    let mut run = Run::new(V11);
    let ns = guid("11111111-2222-3333-4444-555555555555");
    run.same(&request::policy(L, 3, &var_state_entry(&ns, "V", "S")));
    run.same(&request::set_variable(L, &ns, &ucs2("S"), 7, &[1]));
    // Both answer EFI_SUCCESS: we add nothing, QEMU a LOCK_NOW.
    let lock = request::lock_variable(L, &ns, &ucs2("V"));
    assert_eq!(var_status(&run.same(&lock)), SUCCESS);
    end_of_dxe(&mut run);
    run.same(&request::set_variable(L, &ns, &ucs2("S"), 7, &[2]));
    // The state changed: we accept the write, QEMU's LOCK_NOW refuses it.
    let write = request::set_variable(L, &ns, &ucs2("V"), 7, &[1]);
    let (ours, id) = run.send(&write, var_answer(WRITE_PROTECTED));
    assert_eq!(var_status(&ours), SUCCESS);
    assert_eq!(id, Some(LOCK_VARIABLE_PHASE));
    // Another variable of the namespace is not excused.
    let other = request::set_variable(L, &ns, &ucs2("W"), 7, &[1]);
    assert_eq!(run.send(&other, var_answer(WRITE_PROTECTED)).1, None);
}

#[test]
fn policy_framing_uses_qemus_var_state_structure_size() {
    let mut run = Run::new(V11);
    let ns = guid("11111111-2222-3333-4444-555555555555");
    // OffsetToName 62: edk2's packed state header with no state name;
    // QEMU's 20-byte structure makes it a framing fault.
    let mut e = var_state_entry(&ns, "Name", "");
    e[6..8].copy_from_slice(&62u16.to_le_bytes());
    let (ours, id) = run.send(&request::policy(L, 3, &e), policy_answer(BAD_BUFFER_SIZE));
    assert_eq!(policy_status(&ours), INVALID_PARAMETER);
    assert_eq!(id, Some(POLICY_FRAMING));
}

/// A vendor namespace for the SetVariable rules.
fn vendor() -> Guid {
    guid("11111111-2222-3333-4444-555555555555")
}

fn set_v(name: &str, attrs: u32, data: &[u8]) -> Vec<u8> {
    request::set_variable(L, &vendor(), &ucs2(name), attrs, data)
}

#[test]
fn attr_reserved_bits_needs_a_reserved_bit() {
    let mut run = Run::new(V11);
    let (ours, id) = run.send(&set_v("V", 0x87, b"x"), var_answer(UNSUPPORTED));
    assert_eq!(var_status(&ours), INVALID_PARAMETER);
    assert_eq!(id, Some(ATTR_RESERVED_BITS));
    // QEMU deletes (DataSize 0 ignores the bits): the variable differs
    run.same(&set_v("W", 7, b"x"));
    let (_, id) = run.send(&set_v("W", 0x107, &[]), var_answer(SUCCESS));
    assert_eq!(id, Some(ATTR_RESERVED_BITS));
    let get = request::get_variable(L, &vendor(), &ucs2("W"), 16);
    assert_eq!(
        run.send(&get, var_answer(NOT_FOUND)).1,
        Some(ATTR_RESERVED_BITS)
    );
    // without a reserved bit an INVALID_PARAMETER/UNSUPPORTED pair is not this row
    run.same(&set_v("X", 7, b"x"));
    let (ours, id) = run.send(&set_v("X", 3, b"y"), var_answer(UNSUPPORTED));
    assert_eq!(var_status(&ours), INVALID_PARAMETER);
    assert_eq!(id, None);
}

#[test]
fn attr_runtime_without_bs_and_nv_only_need_their_combination() {
    let mut run = Run::new(V11);
    let (ours, id) = run.send(&set_v("V", 5, b"x"), var_answer(ACCESS_DENIED));
    assert_eq!(var_status(&ours), INVALID_PARAMETER);
    assert_eq!(id, Some(ATTR_RUNTIME_WITHOUT_BS));
    let (ours, id) = run.send(&set_v("V", 1, b"x"), var_answer(ACCESS_DENIED));
    assert_eq!(var_status(&ours), INVALID_PARAMETER);
    assert_eq!(id, Some(ATTR_NV_ONLY));
    // after ExitBootServices QEMU stores NV|RT: a later GET follows
    run.same(&request::event(L, &EXIT_BOOT_SERVICES_EVENT));
    let (_, id) = run.send(&set_v("R", 5, b"x"), var_answer(SUCCESS));
    assert_eq!(id, Some(ATTR_RUNTIME_WITHOUT_BS));
    let get = request::get_variable(L, &vendor(), &ucs2("R"), 16);
    assert_eq!(
        run.send(&get, var_answer(SUCCESS)).1,
        Some(ATTR_RUNTIME_WITHOUT_BS)
    );
    // NV|BS|RT refused by QEMU is not either row
    let (_, id) = run.send(&set_v("N", 7, b"x"), var_answer(ACCESS_DENIED));
    assert_eq!(id, None);
}

#[test]
fn auth_write_access_is_the_aw_delete() {
    let mut run = Run::new(V11);
    run.same(&set_v("V", 7, b"x"));
    let (ours, id) = run.send(&set_v("V", 0x17, &[]), var_answer(SUCCESS));
    assert_eq!(var_status(&ours), UNSUPPORTED);
    assert_eq!(id, Some(AUTH_WRITE_ACCESS));
    // a plain delete that QEMU refused is not this row
    run.same(&set_v("W", 7, b"x"));
    let (_, id) = run.send(&set_v("W", 0, &[]), var_answer(UNSUPPORTED));
    assert_eq!(id, None);
}

#[test]
fn hw_error_record_needs_the_bit_and_end_of_dxe_for_the_name() {
    let mut run = Run::new(V11);
    // before EndOfDxe the name is not checked: both store it
    run.same(&set_v("Hr", 0xf, b"x"));
    run.same(&request::event(L, &uefi_vars::guid::END_OF_DXE_EVENT));
    let (ours, id) = run.send(&set_v("Hr2", 0xf, b"x"), var_answer(SUCCESS));
    assert_eq!(var_status(&ours), INVALID_PARAMETER);
    assert_eq!(id, Some(HW_ERROR_RECORD));
    // a size over 0x8000 − 60 in any phase
    let big = vec![1u8; 0x8000];
    let mut run = Run::new(V11);
    let (ours, id) = run.send(&set_v("Big", 0xf, &big), var_answer(SUCCESS));
    assert_eq!(var_status(&ours), INVALID_PARAMETER);
    assert_eq!(id, Some(HW_ERROR_RECORD));
    // (QEMU, fuller by it, refusing the next write follows from it)
    let (_, id) = run.send(&set_v("Big2", 7, &big), var_answer(OUT_OF_RESOURCES));
    assert_eq!(id, Some(HW_ERROR_RECORD));
    // the same size without HR is another matter
    let mut run = Run::new(V11);
    let (_, id) = run.send(&set_v("Big2", 7, &big), var_answer(OUT_OF_RESOURCES));
    assert_eq!(id, None);
}

#[test]
fn runtime_write_needs_runtime_and_the_stored_variable() {
    let mut run = Run::new(V11);
    run.same(&set_v("Bs", 3, b"x"));
    run.same(&set_v("Vol", 6, b"x"));
    // before ExitBootServices a WRITE_PROTECTED/ACCESS_DENIED pair is not this row
    let (_, id) = run.send(&set_v("Bs", 3, b"y"), var_answer(ACCESS_DENIED));
    assert_eq!(id, None);
    run.same(&request::event(L, &EXIT_BOOT_SERVICES_EVENT));
    let (ours, id) = run.send(&set_v("Bs", 3, b"y"), var_answer(ACCESS_DENIED));
    assert_eq!(var_status(&ours), WRITE_PROTECTED);
    assert_eq!(id, Some(RUNTIME_WRITE));
    // QEMU changes the volatile variable: GET then follows
    let (ours, id) = run.send(&set_v("Vol", 6, b"z"), var_answer(SUCCESS));
    assert_eq!(var_status(&ours), WRITE_PROTECTED);
    assert_eq!(id, Some(RUNTIME_WRITE));
    let get = request::get_variable(L, &vendor(), &ucs2("Vol"), 16);
    assert_eq!(run.send(&get, |r| r[78] = b'z').1, Some(RUNTIME_WRITE));
    // a volatile create
    let (ours, id) = run.send(&set_v("New", 6, b"x"), var_answer(SUCCESS));
    assert_eq!(var_status(&ours), INVALID_PARAMETER);
    assert_eq!(id, Some(RUNTIME_WRITE));
}

#[test]
fn delete_attributes_needs_other_attributes_than_the_stored() {
    let mut run = Run::new(V11);
    run.same(&set_v("V", 7, b"x"));
    let (ours, id) = run.send(&set_v("V", 3, &[]), var_answer(SUCCESS));
    assert_eq!(var_status(&ours), INVALID_PARAMETER);
    assert_eq!(id, Some(DELETE_ATTRIBUTES));
    // QEMU deleted it
    let get = request::get_variable(L, &vendor(), &ucs2("V"), 16);
    assert_eq!(
        run.send(&get, var_answer(NOT_FOUND)).1,
        Some(DELETE_ATTRIBUTES)
    );
    // a delete with the stored attributes both answer alike; a refusal
    // of it by QEMU is not this row
    run.same(&set_v("W", 7, b"x"));
    let (ours, id) = run.send(&set_v("W", 7, &[]), var_answer(INVALID_PARAMETER));
    assert_eq!(var_status(&ours), SUCCESS);
    assert_eq!(id, None);
}

#[test]
fn delete_no_access_needs_data_without_access_bits() {
    let mut run = Run::new(V11);
    run.same(&set_v("V", 7, b"x"));
    let (ours, id) = run.send(&set_v("V", 0, b"data"), var_answer(ACCESS_DENIED));
    assert_eq!(var_status(&ours), SUCCESS);
    assert_eq!(id, Some(DELETE_NO_ACCESS));
    // QEMU still has it
    let get = request::get_variable(L, &vendor(), &ucs2("V"), 16);
    let (_, id) = run.send(&get, |r| {
        r[32..40].copy_from_slice(&SUCCESS.to_le_bytes());
    });
    assert_eq!(id, Some(DELETE_NO_ACCESS));
    // with an access bit it is not this row
    let (_, id) = run.send(&set_v("W", 2, b"data"), var_answer(ACCESS_DENIED));
    assert_eq!(id, None);
}

#[test]
fn append_any_variable_needs_a_stored_plain_variable() {
    let mut run = Run::new(V11);
    run.same(&set_v("V", 7, b"one"));
    let (ours, id) = run.send(&set_v("V", 0x47, b"two"), var_answer(UNSUPPORTED));
    assert_eq!(var_status(&ours), SUCCESS);
    assert_eq!(id, Some(APPEND_ANY_VARIABLE));
    // no stored variable: both create it; QEMU refusing is not this row
    let (_, id) = run.send(&set_v("New", 0x47, b"x"), var_answer(UNSUPPORTED));
    assert_eq!(id, None);
    // KEK is append-merge's, not this row's
    let kek = auth2(2, &sha256_list(1));
    run.same(&request::set_variable(
        L,
        &GLOBAL_VARIABLE,
        &ucs2("KEK"),
        SIGDB,
        &kek,
    ));
    let more = auth2(3, &sha256_list(2));
    let append = request::set_variable(L, &GLOBAL_VARIABLE, &ucs2("KEK"), SIGDB | APPEND, &more);
    assert_eq!(run.send(&append, var_answer(UNSUPPORTED)).1, None);
}

#[test]
fn runtime_write_without_rt_to_a_variable_with_rt() {
    let mut run = Run::new(V11);
    run.same(&set_v("V", 7, b"x"));
    run.same(&request::event(L, &EXIT_BOOT_SERVICES_EVENT));
    let (ours, id) = run.send(&set_v("V", 3, b"y"), var_answer(ACCESS_DENIED));
    assert_eq!(var_status(&ours), INVALID_PARAMETER);
    assert_eq!(id, Some(RUNTIME_WRITE));
    // with RT in the request, an INVALID_PARAMETER/ACCESS_DENIED pair is not it
    let (ours, id) = run.send(&set_v("V", 6, b"y"), var_answer(ACCESS_DENIED));
    assert_eq!(var_status(&ours), INVALID_PARAMETER);
    assert_eq!(id, None);
}

#[test]
fn unauthenticated_delete_of_a_missing_database() {
    let mut run = Run::new(V11);
    let del = request::set_variable(L, &IMAGE_SECURITY_DATABASE, &ucs2("db"), 7, &[]);
    let (ours, id) = run.send(&del, var_answer(SUCCESS));
    assert_eq!(var_status(&ours), INVALID_PARAMETER);
    assert_eq!(id, Some(UNAUTHENTICATED_DELETE));
    // dbr is not one of them: a plain variable for edk2's AuthVariableLib
    let del = request::set_variable(L, &IMAGE_SECURITY_DATABASE, &ucs2("dbr"), 7, &[]);
    run.same(&del);
}

#[test]
fn runtime_write_policy_before_the_access_fault() {
    let mut run = Run::new(V11);
    run.same(&set_v("BsOnly", 3, b"1"));
    let mut e = entry(&vendor(), "BsOnly", 0x10000);
    e[24..28].copy_from_slice(&1u32.to_le_bytes()); // MinSize 1
    e[28..32].copy_from_slice(&1u32.to_le_bytes()); // MaxSize 1
    assert_eq!(
        policy_status(&run.same(&request::policy(L, 3, &e))),
        SUCCESS
    );
    run.same(&request::event(L, &uefi_vars::guid::END_OF_DXE_EVENT));
    run.same(&request::event(L, &EXIT_BOOT_SERVICES_EVENT));
    let (ours, id) = run.send(&set_v("BsOnly", 3, b"12"), var_answer(ACCESS_DENIED));
    assert_eq!(var_status(&ours), INVALID_PARAMETER);
    assert_eq!(id, Some(RUNTIME_WRITE));
    // another variable without a policy: no policy excuses it
    run.same(&set_v("Other", 7, b"1"));
    let (_, id) = run.send(&set_v("Other", 7, b"12"), var_answer(ACCESS_DENIED));
    assert_eq!(id, None);
}
