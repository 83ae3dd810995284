//! The rules of docs/compat.md, one function each, and the follow-ons.
//!
//! A rule sees one exchange ([`Ex`]: the decoded request, both answers,
//! our store before and after) and returns its compat id when the exchange
//! is exactly the difference its row describes, for the variable or policy
//! the request concerns. A rule may also note what the difference leaves
//! behind (a variable only one side changed, a policy only one side holds)
//! with [`Context::taint_key`] and friends. [`RULES`] are tried in order;
//! when none applies, [`FOLLOW_ONS`] ask the model whether the difference
//! follows from an earlier listed one (the same variable, a policy that
//! governs it, the storage accounting).
//!
//! Adding a rule: write `fn my_rule(ctx: &mut Context, ex: &Ex) ->
//! Option<&'static str>` and add it to [`RULES`] (and its id to
//! [`super::IDS`] and docs/compat.md).

use uefi_vars::guid::{Guid, CUSTOM_MODE_ENABLE, GLOBAL_VARIABLE, IMAGE_SECURITY_DATABASE};
use uefi_vars::store::{VarStore, Visibility};
use uefi_vars::time::EfiTime;
use uefi_vars::well_known;

use super::decode::*;
use super::model::{our_state, ours, Context, PolicyTarget, QemuVar};
use super::*;

/// One exchange as the rules see it.
pub(super) struct Ex<'a> {
    pub(super) request: &'a [u8],
    pub(super) req: Req,
    /// EFI status in QEMU's reply and in ours.
    pub(super) q: Option<u64>,
    pub(super) o: Option<u64>,
    pub(super) qemu: Option<&'a [u8]>,
    pub(super) ours: Option<&'a [u8]>,
    pub(super) same: bool,
    /// Our store after the request.
    pub(super) store: &'a VarStore,
    /// Our store before the request (SetVariable; otherwise the same as
    /// `store`).
    pub(super) before: &'a VarStore,
}

pub(super) type Rule = fn(&mut Context, &Ex) -> Option<&'static str>;

/// The rules, in the order they are tried.
pub(super) const RULES: &[Rule] = &[
    qemu10_buffer_check,
    malformed_name,
    name_canonical,
    name_size_limit,
    read_only,
    attr_reserved_bits,
    attr_runtime_without_bs,
    attr_nv_only,
    auth_write_access,
    hw_error_record,
    replay,
    pkcs7_wrapped,
    append_time,
    db_signers,
    dbt_dbr,
    append_merge,
    pk_delete_mode,
    get_inaccessible,
    append_empty,
    ready_to_boot_ends_dxe,
    policy_var_state,
    varcheck_write,
    policy_namespace_wide_write,
    policy_delete_checks,
    unauthenticated_delete,
    runtime_write,
    delete_attributes,
    delete_no_access,
    append_any_variable,
    auth_descriptor,
    auth_time_fields,
    lock_variable_phase,
    ready_to_boot_at_runtime,
    qemu10_boot_function_status,
    qemu10_get_next_first,
    varcheck_functions,
    policy_signature,
    policy_framing,
    policy_lock_twice,
    policy_disable,
    policy_validation,
    policy_lock_at_end_of_dxe,
    policy_limits,
    policy_namespace_wide_register,
    policy_dump,
    policy_get_info,
];

/// Differences that follow from an earlier listed one.
pub(super) const FOLLOW_ONS: &[Rule] = &[
    follows_from_variable,
    follows_from_policy,
    follows_from_accounting,
];

// ---------------------------------------------------------------------------
// Small accessors.

/// GET or SET: the function and the access structure.
fn access<'a>(ex: &'a Ex) -> Option<(u64, &'a Access)> {
    match &ex.req {
        Req::Var {
            function,
            access: Some(a),
            ..
        } => Some((*function, a)),
        _ => None,
    }
}

/// SET: the access structure.
fn set<'a>(ex: &'a Ex) -> Option<&'a Access> {
    access(ex).filter(|(f, _)| *f == 3).map(|(_, a)| a)
}

fn key_of(a: &Access) -> Key {
    (a.guid, until_nul(&units(&a.name)))
}

fn function(ex: &Ex) -> Option<u64> {
    match &ex.req {
        Req::Var { function, .. } => Some(*function),
        _ => None,
    }
}

fn policy_command<'a>(ex: &'a Ex<'a>) -> Option<(bool, u32, Option<&'a PolicyEntry>)> {
    match &ex.req {
        Req::Policy {
            signature_ok,
            command,
            entry,
        } => Some((*signature_ok, *command, entry.as_ref())),
        _ => None,
    }
}

fn is_auth(a: &Access) -> bool {
    a.attributes & ATTR_TIME_AUTH != 0
}

fn is_append(a: &Access) -> bool {
    a.attributes & ATTR_APPEND != 0
}

fn enforcing(ctx: &Context) -> bool {
    ctx.end_of_dxe || ctx.ready_to_boot
}

fn phase(ctx: &Context) -> Visibility {
    if ctx.runtime {
        Visibility::Runtime
    } else {
        Visibility::BootServices
    }
}

/// The EFI_TIME of an EFI_VARIABLE_AUTHENTICATION_2.
fn auth_time(a: &Access) -> Option<EfiTime> {
    Some(EfiTime(a.data.get(..16)?.try_into().ok()?))
}

/// User mode on our side before the request, with PK the same on both.
fn user_mode(ctx: &Context, ex: &Ex) -> bool {
    let pk: Key = (
        well_known::PK.guid,
        well_known::PK.name.encode_utf16().collect(),
    );
    ours(ex.before, &pk).is_some() && ctx.taint_id(&pk).is_none()
}

/// A name with bytes after its NUL (and a clean part before it).
fn has_trailing(a: &Access) -> bool {
    let u = units(&a.name);
    a.name.len() % 2 == 0
        && u.iter()
            .position(|&c| c == 0)
            .is_some_and(|p| p + 1 < u.len())
        && u.iter()
            .take_while(|&&c| c != 0)
            .all(|&c| !(0xd800..0xe000).contains(&c))
        && u.first().is_some_and(|&c| c != 0)
}

/// QEMU's copy after it accepted the SET `a` (`None`: not known).
pub(super) fn qemu_copy_after_set(a: &Access) -> Option<QemuVar> {
    let none = QemuVar {
        cost: 0,
        non_volatile: false,
    };
    if a.data_size == 0 {
        return Some(none);
    }
    let key = key_of(a);
    if is_auth(a) && is_append(a) && is_signature_db(&a.guid, &key.1) {
        // QEMU rebuilds the database (compat: append-merge).
        return None;
    }
    let payload = if is_auth(a) {
        auth2_payload_len(a)?
    } else {
        a.data_size
    };
    if payload == 0 {
        return Some(none);
    }
    // hw/uefi/var-service-vars.c variable_size(): the 96-byte record,
    // NameSize as sent, the data and the signer digest (SHA-256) of a
    // private authenticated variable.
    let digest = if is_auth(a) && !is_secure_boot_key(&a.guid, &key.1) {
        32
    } else {
        0
    };
    Some(QemuVar {
        cost: 96 + a.name.len() as u64 + payload + digest,
        non_volatile: a.attributes & ATTR_NV != 0,
    })
}

// ---------------------------------------------------------------------------
// Variable protocol rules.

/// compat: qemu10-buffer-check (QEMU 10 only).
fn qemu10_buffer_check(ctx: &mut Context, ex: &Ex) -> Option<&'static str> {
    if !ctx.qemu10() || ex.o != Some(BAD_BUFFER_SIZE) {
        return None;
    }
    if !matches!(ex.q, Some(SUCCESS) | Some(BUFFER_TOO_SMALL)) {
        return None;
    }
    let required = match (&ex.req, function(ex)?) {
        (
            Req::Var {
                access: Some(a), ..
            },
            1,
        ) => (16 + 36 + a.name.len() as u64).checked_add(a.data_size)?,
        (_, 2) => 16 + 24 + u64_at(ex.qemu?, 56)?,
        (_, 4) => 16 + 28,
        (_, 11) => 16 + 8,
        _ => return None,
    };
    let b = ctx.buffer();
    (required > b.saturating_sub(24) && required <= b).then_some(QEMU10_BUFFER_CHECK)
}

/// compat: name-scan-bound, empty-name.
fn malformed_name(ctx: &mut Context, ex: &Ex) -> Option<&'static str> {
    if let Req::Var {
        function: 2,
        next: Some((_, n)),
        ..
    } = &ex.req
    {
        return (!name_is_clean(n) && ex.o == Some(INVALID_PARAMETER)).then_some(NAME_SCAN_BOUND);
    }
    let (_, a) = access(ex)?;
    if name_is_clean(&a.name) || has_trailing(a) || ex.o != Some(INVALID_PARAMETER) {
        return None;
    }
    let _ = ctx;
    Some(if a.name.len() == 2 && units(&a.name) == [0] {
        EMPTY_NAME
    } else {
        NAME_SCAN_BOUND
    })
}

/// compat: name-canonical. Both answer by the name up to the NUL; QEMU
/// keeps the bytes after it (and counts them).
fn name_canonical(ctx: &mut Context, ex: &Ex) -> Option<&'static str> {
    let (f, a) = access(ex)?;
    if !has_trailing(a) {
        return None;
    }
    let key = key_of(a);
    if f == 3 && ex.q == Some(SUCCESS) {
        ctx.taint_key(key.clone(), NAME_CANONICAL, qemu_copy_after_set(a));
    }
    Some(ctx.taint_id(&key).unwrap_or(NAME_CANONICAL))
}

/// compat: name-size-limit.
fn name_size_limit(_: &mut Context, ex: &Ex) -> Option<&'static str> {
    let a = set(ex)?;
    (a.data_size > 0 && a.name.len() > MAX_NAME_SIZE && ex.o == Some(INVALID_PARAMETER))
        .then_some(NAME_SIZE_LIMIT)
}

/// compat: read-only. QEMU accepts the write (or refuses it for
/// attributes that differ from the stored ones); we refuse it first.
fn read_only(_: &mut Context, ex: &Ex) -> Option<&'static str> {
    let a = set(ex)?;
    let key = key_of(a);
    let other_attrs = ours(ex.before, &key)
        .is_some_and(|v| v.attributes != a.attributes & !ATTR_APPEND && a.data_size > 0);
    let qemu_ok = ex.q == Some(SUCCESS) || ex.q == Some(INVALID_PARAMETER) && other_attrs;
    (well_known::is_read_only_units(&a.guid, &key.1) && ex.o == Some(WRITE_PROTECTED) && qemu_ok)
        .then_some(READ_ONLY)
}

/// edk2's EFI_VARIABLE_ATTRIBUTES_MASK.
const ATTRIBUTES_MASK: u32 = 0x6f;

/// compat: attr-reserved-bits. Bits outside the mask and
/// AUTHENTICATED_WRITE_ACCESS: we refuse first, QEMU refuses a write
/// (EFI_UNSUPPORTED, or by access) and ignores them on a delete.
fn attr_reserved_bits(_: &mut Context, ex: &Ex) -> Option<&'static str> {
    let a = set(ex)?;
    (a.attributes & !(ATTRIBUTES_MASK | ATTR_AW) != 0 && ex.o == Some(INVALID_PARAMETER))
        .then_some(ATTR_RESERVED_BITS)
}

/// compat: attr-runtime-without-bs. RT without BS: we refuse (UNSUPPORTED
/// with AW); QEMU judges by the phase's access bit (stores it at runtime)
/// and deletes on DataSize 0.
fn attr_runtime_without_bs(_: &mut Context, ex: &Ex) -> Option<&'static str> {
    let a = set(ex)?;
    (a.attributes & (ATTR_BS | ATTR_RT) == ATTR_RT && ex.o == Some(attr_combination_status(a)))
        .then_some(ATTR_RUNTIME_WITHOUT_BS)
}

/// compat: attr-nv-only. NON_VOLATILE alone (within the mask).
fn attr_nv_only(_: &mut Context, ex: &Ex) -> Option<&'static str> {
    let a = set(ex)?;
    (a.attributes & ATTRIBUTES_MASK == ATTR_NV && ex.o == Some(attr_combination_status(a)))
        .then_some(ATTR_NV_ONLY)
}

/// edk2's status for an attribute combination it refuses.
fn attr_combination_status(a: &Access) -> u64 {
    if a.attributes & ATTR_AW != 0 {
        UNSUPPORTED
    } else {
        INVALID_PARAMETER
    }
}

/// compat: auth-write-access. AUTHENTICATED_WRITE_ACCESS: QEMU refuses
/// a write (EFI_UNSUPPORTED) but deletes on DataSize 0; we refuse both
/// (EFI_INVALID_PARAMETER for PK/KEK/db/dbx/dbt with DataSize 560).
fn auth_write_access(_: &mut Context, ex: &Ex) -> Option<&'static str> {
    let a = set(ex)?;
    if a.attributes & ATTR_AW == 0 {
        return None;
    }
    let key = key_of(a);
    let database = is_signature_db(&a.guid, &key.1) && !named(&key.1, "dbr");
    let ours_ok = match ex.o {
        Some(UNSUPPORTED) => true,
        Some(INVALID_PARAMETER) => database && a.data_size == 560,
        _ => false,
    };
    ours_ok.then_some(AUTH_WRITE_ACCESS)
}

/// compat: hw-error-record. QEMU has no rule for HARDWARE_ERROR_RECORD;
/// we refuse (EFI_INVALID_PARAMETER) one whose name and payload exceed
/// 0x8000 − 60 bytes, and from EndOfDxe one outside HwErrRec#### in the
/// hardware error namespace.
fn hw_error_record(ctx: &mut Context, ex: &Ex) -> Option<&'static str> {
    let a = set(ex)?;
    if a.attributes & ATTR_HR == 0 || ex.o != Some(INVALID_PARAMETER) {
        return None;
    }
    let payload = if is_auth(a) {
        auth2_payload_len(a)?
    } else {
        a.data_size
    };
    let too_large = a.name.len() as u64 + payload > 0x8000 - 60;
    let deleting = a.attributes & (ATTR_BS | ATTR_RT) == 0 || payload == 0 && !is_append(a);
    let misnamed = enforcing(ctx) && !deleting && !is_hw_err_rec(a);
    (too_large || misnamed).then_some(HW_ERROR_RECORD)
}

/// VarCheckUefiLib IsHwErrRecVariable.
fn is_hw_err_rec(a: &Access) -> bool {
    let hw = uefi_vars::guid::HARDWARE_ERROR_VARIABLE;
    let n = until_nul(&units(&a.name));
    let hex = |u: &u16| matches!(*u, 0x30..=0x39 | 0x41..=0x46);
    a.guid == hw
        && n.len() == 12
        && n.iter().copied().take(8).eq("HwErrRec".encode_utf16())
        && n.iter().skip(8).all(hex)
}

/// compat: runtime-write. After ExitBootServices: a stored variable
/// without RT, or a volatile one, is EFI_WRITE_PROTECTED for us (QEMU:
/// EFI_ACCESS_DENIED, or it changes the volatile one); a new variable
/// must be NV|RT (EFI_INVALID_PARAMETER; QEMU refuses one without RT by
/// access and stores a volatile one).
fn runtime_write(ctx: &mut Context, ex: &Ex) -> Option<&'static str> {
    let a = set(ex)?;
    if !ctx.runtime {
        return None;
    }
    let key = key_of(a);
    let nv_rt = ATTR_NV | ATTR_RT;
    match ours(ex.before, &key) {
        Some(v) if ex.o == Some(WRITE_PROTECTED) => {
            (v.attributes & ATTR_RT == 0 || !v.is_non_volatile()).then_some(RUNTIME_WRITE)
        }
        // A policy refuses the write to a variable without RT: edk2 checks
        // the policies before the stored variable, QEMU its access first.
        Some(v)
            if v.attributes & ATTR_RT == 0
                && ex.q == Some(ACCESS_DENIED)
                && matches!(ex.o, Some(INVALID_PARAMETER) | Some(WRITE_PROTECTED))
                && enforcing(ctx)
                && ctx.seen_policy_covers(&key) =>
        {
            Some(RUNTIME_WRITE)
        }
        // Attributes without RT for a stored variable with RT: QEMU's
        // visibility check of the new attributes answers first
        // (EFI_ACCESS_DENIED), ours is edk2's attribute comparison.
        Some(v) => (ex.o == Some(INVALID_PARAMETER)
            && ex.q == Some(ACCESS_DENIED)
            && a.data_size > 0
            && a.attributes & (ATTR_BS | ATTR_RT) != 0
            && a.attributes & ATTR_RT == 0
            && v.attributes & ATTR_RT != 0)
            .then_some(RUNTIME_WRITE),
        None => (ex.o == Some(INVALID_PARAMETER)
            && a.attributes & (ATTR_BS | ATTR_RT) != 0
            && a.attributes & nv_rt != nv_rt)
            .then_some(RUNTIME_WRITE),
    }
}

/// compat: delete-attributes. A delete (DataSize 0) whose non-zero
/// attributes differ from the stored ones: we refuse (EFI_INVALID_PARAMETER,
/// or EFI_SECURITY_VIOLATION when they carry TIME_BASED_AUTHENTICATED_WRITE_ACCESS:
/// edk2 checks the descriptor first); QEMU ignores a delete's attributes.
fn delete_attributes(_: &mut Context, ex: &Ex) -> Option<&'static str> {
    let a = set(ex)?;
    if a.data_size != 0 || a.attributes == 0 || ex.q != Some(SUCCESS) {
        return None;
    }
    if is_auth(a) && ex.o == Some(SECURITY_VIOLATION) {
        return Some(DELETE_ATTRIBUTES);
    }
    let stored = ours(ex.before, &key_of(a))?;
    (stored.attributes != a.attributes & !ATTR_APPEND && ex.o == Some(INVALID_PARAMETER))
        .then_some(DELETE_ATTRIBUTES)
}

/// compat: delete-no-access. Data with neither access attribute is a
/// delete for us (whatever follows from that: the delete, a refusal of
/// it); QEMU refuses it by access (EFI_ACCESS_DENIED).
fn delete_no_access(_: &mut Context, ex: &Ex) -> Option<&'static str> {
    let a = set(ex)?;
    (a.data_size > 0
        && a.attributes & (ATTR_BS | ATTR_RT) == 0
        && ex.q == Some(ACCESS_DENIED)
        && ex.o != Some(ACCESS_DENIED))
    .then_some(DELETE_NO_ACCESS)
}

/// compat: append-any-variable. APPEND onto a stored variable outside
/// the signature databases: we append, QEMU refuses (EFI_UNSUPPORTED).
fn append_any_variable(_: &mut Context, ex: &Ex) -> Option<&'static str> {
    let a = set(ex)?;
    let key = key_of(a);
    (is_append(a)
        && a.data_size > 0
        && !is_signature_db(&a.guid, &key.1)
        && ours(ex.before, &key).is_some()
        && ex.q == Some(UNSUPPORTED)
        && ex.o != Some(UNSUPPORTED))
    .then_some(APPEND_ANY_VARIABLE)
}

/// compat: replay. An authenticated write (not APPEND) dated exactly the
/// stored time: QEMU accepts it, we need a later one.
fn replay(_: &mut Context, ex: &Ex) -> Option<&'static str> {
    let a = set(ex)?;
    if !is_auth(a) || is_append(a) || ex.q != Some(SUCCESS) || ex.o != Some(SECURITY_VIOLATION) {
        return None;
    }
    let stored = ours(ex.before, &key_of(a))?.time;
    (auth_time(a)?.chrono_cmp(&stored) == std::cmp::Ordering::Equal).then_some(REPLAY)
}

/// compat: pkcs7-wrapped.
fn pkcs7_wrapped(_: &mut Context, ex: &Ex) -> Option<&'static str> {
    let a = set(ex)?;
    (is_auth(a)
        && ex.o == Some(SUCCESS)
        && ex.q == Some(SECURITY_VIOLATION)
        && cert_is_content_info(a))
    .then_some(PKCS7_WRAPPED)
}

/// compat: append-time. An authenticated APPEND to a signature database
/// with a timestamp older than the stored one: QEMU 10.0.2 refuses it,
/// QEMU 11.1.3 stores the older time, we keep the later.
fn append_time(ctx: &mut Context, ex: &Ex) -> Option<&'static str> {
    let a = set(ex)?;
    let key = key_of(a);
    if !is_auth(a) || !is_append(a) || !is_signature_db(&a.guid, &key.1) {
        return None;
    }
    let stored = ours(ex.before, &key)?.time;
    let older = auth_time(a)?.chrono_cmp(&stored) == std::cmp::Ordering::Less;
    if !older || ex.o != Some(SUCCESS) {
        return None;
    }
    match ex.q {
        Some(SECURITY_VIOLATION) if ctx.qemu10() => Some(APPEND_TIME),
        Some(SUCCESS) if !ctx.qemu10() => {
            // The data merge differs too (append-merge): QEMU's size is
            // not modelled.
            ctx.taint_key(key, APPEND_TIME, None);
            Some(APPEND_TIME)
        }
        _ => None,
    }
}

/// compat: db-signers. A user-mode db/dbx update with a signature (that
/// KEK does not verify, so QEMU refuses it; we accept PK as well).
fn db_signers(ctx: &mut Context, ex: &Ex) -> Option<&'static str> {
    let a = set(ex)?;
    let key = key_of(a);
    let signed = u32_at(&a.data, 16).is_some_and(|len| len > 24);
    (is_auth(a)
        && [well_known::DB, well_known::DBX]
            .iter()
            .any(|v| v.is_units(&a.guid, &key.1))
        && signed
        && user_mode(ctx, ex)
        && ex.o == Some(SUCCESS)
        && ex.q == Some(SECURITY_VIOLATION))
    .then_some(DB_SIGNERS)
}

/// compat: dbt-dbr. Signed writes as db (QEMU: a private variable), and
/// an unauthenticated or volatile dbt is EFI_INVALID_PARAMETER (QEMU
/// stores it).
fn dbt_dbr(_: &mut Context, ex: &Ex) -> Option<&'static str> {
    let a = set(ex)?;
    let key = key_of(a);
    let plain = !is_auth(a) || a.attributes & ATTR_NV == 0;
    if a.guid == IMAGE_SECURITY_DATABASE
        && named(&key.1, "dbt")
        && plain
        && ex.o == Some(INVALID_PARAMETER)
        && ex.q == Some(SUCCESS)
    {
        return Some(DBT_DBR);
    }
    (is_auth(a)
        && [well_known::DBT, well_known::DBR]
            .iter()
            .any(|v| v.is_units(&a.guid, &key.1))
        && ex.o == Some(SUCCESS)
        && ex.q == Some(SECURITY_VIOLATION))
    .then_some(DBT_DBR)
}

/// compat: append-merge. Both appended to a signature database, each in
/// its own way (QEMU's size is not modelled).
fn append_merge(ctx: &mut Context, ex: &Ex) -> Option<&'static str> {
    let a = set(ex)?;
    let key = key_of(a);
    if !(is_auth(a) && is_append(a) && is_signature_db(&a.guid, &key.1))
        || ex.q != Some(SUCCESS)
        || ex.o != Some(SUCCESS)
        || ours(ex.before, &key).is_none()
    {
        return None;
    }
    ctx.taint_key(key, APPEND_MERGE, None);
    Some(APPEND_MERGE)
}

/// compat: pk-delete-mode. PK deleted: we are in setup mode now, QEMU
/// after the reset.
fn pk_delete_mode(ctx: &mut Context, ex: &Ex) -> Option<&'static str> {
    let a = set(ex)?;
    let key = key_of(a);
    if ctx.pk_deleted && !ex.same && is_signature_db(&a.guid, &key.1) {
        return Some(PK_DELETE_MODE);
    }
    if !(is_auth(a)
        && a.guid == GLOBAL_VARIABLE
        && named(&key.1, "PK")
        && auth2_payload_len(a) == Some(0)
        && ex.q == Some(SUCCESS)
        && ex.o == Some(SUCCESS))
    {
        return None;
    }
    ctx.pk_deleted = true;
    let global = [
        "SetupMode",
        "SecureBoot",
        "AuditMode",
        "DeployedMode",
        "VendorKeys",
    ];
    for name in global {
        ctx.taint_key(
            (GLOBAL_VARIABLE, name.encode_utf16().collect()),
            PK_DELETE_MODE,
            None,
        );
    }
    ctx.taint_key(
        (CUSTOM_MODE_ENABLE, "CustomMode".encode_utf16().collect()),
        PK_DELETE_MODE,
        None,
    );
    Some(PK_DELETE_MODE)
}

/// compat: get-inaccessible.
fn get_inaccessible(_: &mut Context, ex: &Ex) -> Option<&'static str> {
    let (f, _) = access(ex)?;
    (f == 1 && ex.q == Some(ACCESS_DENIED) && ex.o == Some(NOT_FOUND)).then_some(GET_INACCESSIBLE)
}

/// compat: append-empty. QEMU deletes, we keep.
fn append_empty(ctx: &mut Context, ex: &Ex) -> Option<&'static str> {
    let a = set(ex)?;
    if a.data_size != 0 || !is_append(a) {
        return None;
    }
    let key = key_of(a);
    if ex.q == Some(SUCCESS) && ours(ex.before, &key).is_some() {
        let gone = QemuVar {
            cost: 0,
            non_volatile: false,
        };
        ctx.taint_key(key, APPEND_EMPTY, Some(gone));
    }
    Some(APPEND_EMPTY)
}

/// compat: ready-to-boot-ends-dxe. ReadyToBoot without EndOfDxe: we
/// enforce the policies, QEMU does not.
fn ready_to_boot_ends_dxe(ctx: &mut Context, ex: &Ex) -> Option<&'static str> {
    let a = set(ex)?;
    (ctx.ready_to_boot
        && !ctx.end_of_dxe
        && ex.q == Some(SUCCESS)
        && matches!(ex.o, Some(WRITE_PROTECTED) | Some(INVALID_PARAMETER))
        && ctx.seen_policy_covers(&key_of(a)))
    .then_some(READY_TO_BOOT_ENDS_DXE)
}

/// compat: policy-var-state.
fn policy_var_state(ctx: &mut Context, ex: &Ex) -> Option<&'static str> {
    let a = set(ex)?;
    (enforcing(ctx)
        && ex.q == Some(SUCCESS)
        && ex.o == Some(WRITE_PROTECTED)
        && ctx.var_state.contains(&a.guid))
    .then_some(POLICY_VAR_STATE)
}

/// compat: uefi-defined-variables, varcheck-property,
/// varcheck-before-lookup. After EndOfDxe we refuse a write as edk2's
/// VarCheckLibSetVariableCheck does (a variable of a namespace
/// VarCheckUefiLib owns, a HARDWARE_ERROR_RECORD write, or a variable
/// with a property the guest set); QEMU has no VarCheck: it accepts the
/// write, or refuses it for another reason found after the lookup.
fn varcheck_write(ctx: &mut Context, ex: &Ex) -> Option<&'static str> {
    let a = set(ex)?;
    if !enforcing(ctx) || !matches!(ex.o, Some(INVALID_PARAMETER) | Some(WRITE_PROTECTED)) {
        return None;
    }
    let key = key_of(a);
    let by_guest = ctx.varcheck_property_covers(&key);
    let uefi = uefi_vars::varcheck::is_uefi_defined_namespace(&a.guid)
        || a.attributes & ATTR_HW_ERROR != 0;
    if !by_guest && !uefi {
        return None;
    }
    match ex.q {
        Some(SUCCESS) if by_guest => Some(VARCHECK_PROPERTY),
        Some(SUCCESS) => Some(UEFI_DEFINED_VARIABLES),
        Some(q) if uefi_vars::EfiStatus(q).is_error() => Some(VARCHECK_BEFORE_LOOKUP),
        _ => None,
    }
}

/// compat: varcheck-property (functions 9 and 10) and runtime-cache
/// (12 and 14): QEMU answers EFI_UNSUPPORTED. A property we stored is
/// remembered: it governs later writes on our side only.
fn varcheck_functions(ctx: &mut Context, ex: &Ex) -> Option<&'static str> {
    let f = function(ex)?;
    if ex.q != Some(UNSUPPORTED) {
        return None;
    }
    match f {
        9 => {
            if ex.o == Some(SUCCESS) {
                if let Some(key) = property_request_key(ex.request) {
                    ctx.varcheck_properties.push(key);
                }
            }
            Some(VARCHECK_PROPERTY)
        }
        10 => Some(VARCHECK_PROPERTY),
        12 | 14 => Some(RUNTIME_CACHE),
        _ => None,
    }
}

/// The variable of a VAR_CHECK_VARIABLE_PROPERTY_SET (X64 layout: name at
/// payload offset 48, read up to its NUL).
fn property_request_key(request: &[u8]) -> Option<Key> {
    let guid = guid_at(request, 40)?;
    let name = request.get(40 + 48..)?;
    Some((guid, until_nul(&units(name))))
}

/// compat: policy-namespace-wide (a write in a namespace with a nameless
/// policy).
fn policy_namespace_wide_write(ctx: &mut Context, ex: &Ex) -> Option<&'static str> {
    let a = set(ex)?;
    (enforcing(ctx)
        && ex.q == Some(SUCCESS)
        && matches!(ex.o, Some(WRITE_PROTECTED) | Some(INVALID_PARAMETER))
        && ctx.namespace_wide.contains(&a.guid))
    .then_some(POLICY_NAMESPACE_WIDE)
}

/// compat: policy-delete-checks. Also a delete of a variable that does
/// not exist under a policy that locks it: we refuse (edk2 checks the
/// policy before the store), QEMU has nothing to delete.
fn policy_delete_checks(ctx: &mut Context, ex: &Ex) -> Option<&'static str> {
    let a = set(ex)?;
    if enforcing(ctx)
        && a.data_size == 0
        && !is_append(a)
        && ex.q == Some(SUCCESS)
        && ex.o == Some(WRITE_PROTECTED)
        && ours(ex.before, &key_of(a)).is_none()
        && ctx.seen_policy_covers(&key_of(a))
    {
        return Some(POLICY_DELETE_CHECKS);
    }
    (enforcing(ctx)
        && a.data_size == 0
        && !is_append(a)
        && ex.q == Some(INVALID_PARAMETER)
        && ex.o == Some(SUCCESS)
        && ctx.seen_policy_covers(&key_of(a)))
    .then_some(POLICY_DELETE_CHECKS)
}

/// compat: unauthenticated-delete. QEMU deletes an authenticated variable
/// without a signature; we refuse.
fn unauthenticated_delete(_: &mut Context, ex: &Ex) -> Option<&'static str> {
    let a = set(ex)?;
    let key = key_of(a);
    let stored_auth = ours(ex.before, &key).is_some_and(|v| v.is_time_auth());
    // With TIME_BASED_AUTHENTICATED_WRITE_ACCESS in the attributes edk2's
    // descriptor check answers first (EFI_SECURITY_VIOLATION).
    let plain_delete = a.data_size == 0
        && stored_auth
        && (matches!(ex.o, Some(INVALID_PARAMETER) | Some(WRITE_PROTECTED))
            || is_auth(a) && ex.o == Some(SECURITY_VIOLATION));
    // PK, KEK, db, dbx, dbt without NV and AT: edk2's ProcessVarWithPk
    // refuses, stored or not (QEMU deletes, or has nothing to delete).
    let processed_with_pk = is_secure_boot_key(&a.guid, &key.1)
        || a.guid == IMAGE_SECURITY_DATABASE && named(&key.1, "dbt");
    let unauthenticated_db_delete = a.data_size == 0
        && processed_with_pk
        && a.attributes & (ATTR_NV | ATTR_TIME_AUTH) != ATTR_NV | ATTR_TIME_AUTH
        && ex.o == Some(INVALID_PARAMETER);
    let empty_sb_write = is_auth(a)
        && is_secure_boot_key(&a.guid, &key.1)
        && auth2_payload_len(a) == Some(0)
        && ex.o == Some(INVALID_PARAMETER);
    ((plain_delete || empty_sb_write || unauthenticated_db_delete) && ex.q == Some(SUCCESS))
        .then_some(UNAUTHENTICATED_DELETE)
}

/// compat: auth-descriptor.
fn auth_descriptor(_: &mut Context, ex: &Ex) -> Option<&'static str> {
    let a = set(ex)?;
    (is_auth(a) && ex.o == Some(SECURITY_VIOLATION) && ex.q == Some(UNSUPPORTED))
        .then_some(AUTH_DESCRIPTOR)
}

/// compat: auth-time-fields.
fn auth_time_fields(_: &mut Context, ex: &Ex) -> Option<&'static str> {
    let a = set(ex)?;
    (is_auth(a)
        && ex.o == Some(SECURITY_VIOLATION)
        && ex.q == Some(SUCCESS)
        && auth_time(a).is_some_and(|t| !t.is_strict()))
    .then_some(AUTH_TIME_FIELDS)
}

/// compat: lock-variable-phase. A lock we refuse (or do not repeat)
/// leaves a LOCK_NOW policy on QEMU's side only.
fn lock_variable_phase(ctx: &mut Context, ex: &Ex) -> Option<&'static str> {
    let Req::Var {
        function: 8,
        next: Some((g, n)),
        ..
    } = &ex.req
    else {
        return None;
    };
    let late = ctx.end_of_dxe || ctx.ready_to_boot || ctx.runtime || ctx.policy_lock_seen;
    let name = until_nul(&units(n));
    // A policy for exactly this variable is there already: we answer as
    // edk2's VariableLockRequestToLock (EFI_ACCESS_DENIED unless it locks
    // the variable now), QEMU adds another.
    let has_policy = ctx
        .policies_seen
        .iter()
        .any(|p| p.namespace == *g && p.name.as_deref() == Some(&name[..]));
    let refused_late = matches!(ex.o, Some(ACCESS_DENIED) | Some(WRITE_PROTECTED)) && late;
    let explained = match ex.q {
        Some(SUCCESS) => {
            ex.o == Some(INVALID_PARAMETER) && !name_is_clean(n)
                || refused_late
                || ex.o == Some(ACCESS_DENIED) && has_policy
                || ex.o == Some(SUCCESS)
        }
        // QEMU 11.1 checks the name first; we check the phase first.
        Some(INVALID_PARAMETER) => !ctx.qemu10() && !name_is_clean(n) && refused_late,
        _ => false,
    };
    if !explained {
        return None;
    }
    // Both succeed for a variable whose LOCK_ON_VAR_STATE policy is in
    // force: we add nothing (VariableLockRequestToLock), QEMU a LOCK_NOW
    // policy, which keeps it locked when the state changes.
    let var_state_in_force = ex.o == Some(SUCCESS) && has_policy && ctx.var_state.contains(g);
    if ex.q == Some(SUCCESS) && (ex.o != Some(SUCCESS) || var_state_in_force) {
        ctx.diverged_policies.push(PolicyTarget {
            namespace: *g,
            name: Some(until_nul(&units(n))),
            id: LOCK_VARIABLE_PHASE,
        });
    }
    Some(LOCK_VARIABLE_PHASE)
}

/// compat: ready-to-boot-at-runtime.
fn ready_to_boot_at_runtime(ctx: &mut Context, ex: &Ex) -> Option<&'static str> {
    (function(ex)? == 5 && ctx.runtime && ex.o == Some(UNSUPPORTED))
        .then_some(READY_TO_BOOT_AT_RUNTIME)
}

/// compat: qemu10-boot-function-status. QEMU 10.0 leaves ReturnStatus as
/// the guest sent it.
fn qemu10_boot_function_status(ctx: &mut Context, ex: &Ex) -> Option<&'static str> {
    let f = function(ex)?;
    let sent = u64_at(ex.request, 32);
    (ctx.qemu10()
        && matches!(f, 5 | 6)
        && ex.o == Some(SUCCESS)
        && ex.q == sent
        && ex.q != Some(SUCCESS))
    .then_some(QEMU10_BOOT_FUNCTION_STATUS)
}

/// compat: qemu10-get-next-first. QEMU 10.0 answers the enumeration's
/// first request with the first variable in store order, one the phase
/// may not see; we answer with the first the phase may see.
fn qemu10_get_next_first(ctx: &mut Context, ex: &Ex) -> Option<&'static str> {
    let Req::Var {
        function: 2,
        next: Some((_, n)),
        ..
    } = &ex.req
    else {
        return None;
    };
    let answered = |s: Option<u64>| matches!(s, Some(SUCCESS) | Some(BUFFER_TOO_SMALL));
    if !ctx.qemu10() || n.len() < 2 || n[0] != 0 || n[1] != 0 || !answered(ex.q) {
        return None;
    }
    // QEMU's answer: the first variable in store order, hidden in this
    // phase (the order is ours where nothing differs).
    let vis = phase(ctx);
    let head = ex.store.iter().next()?;
    let hidden = !vis.allows(head.attributes)
        && reply_names(ex.qemu, head)
        && ctx
            .taint_id(&(head.guid, head.name.units().to_vec()))
            .is_none();
    let ours_ok = match (ex.o, ex.store.first_visible(vis)) {
        (s, Some(first)) if answered(s) => reply_names(ex.ours, first),
        (Some(NOT_FOUND), None) => true,
        _ => false,
    };
    (hidden && ours_ok).then_some(QEMU10_GET_NEXT_FIRST)
}

// ---------------------------------------------------------------------------
// Policy protocol rules.

fn target(e: &PolicyEntry, id: &'static str) -> PolicyTarget {
    PolicyTarget {
        namespace: e.namespace,
        name: (!e.nameless).then(|| e.name.clone()),
        id,
    }
}

/// compat: policy-signature. QEMU processes the command anyway.
fn policy_signature(ctx: &mut Context, ex: &Ex) -> Option<&'static str> {
    let (ok, command, entry) = policy_command(ex)?;
    if ok || ex.o != Some(INVALID_PARAMETER) {
        return None;
    }
    if ex.q == Some(SUCCESS) {
        match (command, entry) {
            (3, Some(e)) => ctx.diverged_policies.push(target(e, POLICY_SIGNATURE)),
            (5, _) => {
                ctx.lock_diverged.get_or_insert(POLICY_SIGNATURE);
            }
            _ => {}
        }
    }
    Some(POLICY_SIGNATURE)
}

/// A REGISTER edk2's handler refuses for its framing (MessageLength,
/// Version, Size) and, with `offsets`, one whose offsets QEMU's framing
/// refuses (edk2's IsValidVariablePolicyStructure refuses them too).
fn register_framing_bad(request: &[u8], offsets: bool) -> bool {
    let Some(ml) = u64_at(request, 16) else {
        return false;
    };
    let e = request.get(24 + 20..).unwrap_or_default();
    let (Some(version), Some(size), Some(name_off)) = (
        u32_at(e, 0),
        uefi_vars::codec::u16_at(e, 4, "Size").ok().map(u64::from),
        uefi_vars::codec::u16_at(e, 6, "OffsetToName")
            .ok()
            .map(u64::from),
    ) else {
        return true;
    };
    if ml < 20 + 44 || version != 0x0001_0000 || size < 44 || 20 + size > ml {
        return true;
    }
    // QEMU's VARIABLE_LOCK_ON_VAR_STATE_POLICY is padded to 20 bytes
    // (docs/reference/policy.md §3, §4 step 5).
    let state_min = if e.get(40) == Some(&3) { 44 + 20 } else { 44 };
    offsets && (name_off < state_min || size < name_off)
}

/// compat: policy-framing. Short parameters of IS_ENABLED and REGISTER,
/// and REGISTER entries with inconsistent sizes or offsets: edk2 answers
/// EFI_INVALID_PARAMETER, QEMU EFI_BAD_BUFFER_SIZE (or, its lock checked
/// first, EFI_WRITE_PROTECTED).
fn policy_framing(_: &mut Context, ex: &Ex) -> Option<&'static str> {
    let (ok, command, _) = policy_command(ex)?;
    if !ok || ex.o != Some(INVALID_PARAMETER) {
        return None;
    }
    let ml = u64_at(ex.request, 16)?;
    let explained = match (command, ex.q) {
        (2, Some(BAD_BUFFER_SIZE)) => ml < 21,
        (3, Some(BAD_BUFFER_SIZE)) => register_framing_bad(ex.request, true),
        (3, Some(WRITE_PROTECTED)) => register_framing_bad(ex.request, false),
        _ => false,
    };
    explained.then_some(POLICY_FRAMING)
}

/// compat: policy-lock-twice. A LOCK when our interface is locked already
/// (a LOCK before, or EndOfDxe): edk2 EFI_WRITE_PROTECTED, QEMU
/// EFI_SUCCESS. Both are locked afterwards.
fn policy_lock_twice(ctx: &mut Context, ex: &Ex) -> Option<&'static str> {
    let (ok, command, _) = policy_command(ex)?;
    let locked = ctx.policy_lock_seen || ctx.end_of_dxe || ctx.ready_to_boot;
    (ok && command == 5 && locked && ex.q == Some(SUCCESS) && ex.o == Some(WRITE_PROTECTED))
        .then_some(POLICY_LOCK_TWICE)
}

/// compat: policy-disable.
fn policy_disable(ctx: &mut Context, ex: &Ex) -> Option<&'static str> {
    let (_, command, _) = policy_command(ex)?;
    if command != 1 || ex.q != Some(UNSUPPORTED) {
        return None;
    }
    if ex.o == Some(SUCCESS) {
        ctx.disable_diverged.get_or_insert(POLICY_DISABLE);
    }
    Some(POLICY_DISABLE)
}

/// compat: policy-validation. QEMU stores an entry edk2 refuses (and then
/// answers EFI_ALREADY_STARTED to it).
fn policy_validation(ctx: &mut Context, ex: &Ex) -> Option<&'static str> {
    let (_, command, entry) = policy_command(ex)?;
    let e = entry?;
    if command != 3 || ex.o != Some(INVALID_PARAMETER) {
        return None;
    }
    match ex.q {
        // QEMU does not validate; it looks at the space (11.1) first.
        Some(OUT_OF_RESOURCES) if ctx.qemu_charges_policies() => Some(POLICY_VALIDATION),
        Some(SUCCESS) => {
            ctx.diverged_policies.push(target(e, POLICY_VALIDATION));
            Some(POLICY_VALIDATION)
        }
        // QEMU holds a policy for that name already (an earlier copy, or
        // a valid one both took): its duplicate check comes first.
        Some(ALREADY_STARTED) => ctx
            .policies_seen
            .iter()
            .chain(&ctx.diverged_policies)
            .any(|p| p.namespace == e.namespace && same_name(p, e))
            .then_some(POLICY_VALIDATION),
        _ => None,
    }
}

fn same_name(p: &PolicyTarget, e: &PolicyEntry) -> bool {
    match &p.name {
        None => e.nameless,
        Some(n) => !e.nameless && *n == e.name,
    }
}

/// compat: policy-lock-at-end-of-dxe.
fn policy_lock_at_end_of_dxe(ctx: &mut Context, ex: &Ex) -> Option<&'static str> {
    let (_, command, entry) = policy_command(ex)?;
    if command != 3 || ex.o != Some(WRITE_PROTECTED) || ex.q == Some(WRITE_PROTECTED) {
        return None;
    }
    if !enforcing(ctx) {
        return None;
    }
    if let (Some(SUCCESS), Some(e)) = (ex.q, entry) {
        ctx.diverged_policies
            .push(target(e, POLICY_LOCK_AT_END_OF_DXE));
    }
    Some(POLICY_LOCK_AT_END_OF_DXE)
}

/// compat: policy-limits. Our number of policies or bytes is reached
/// (not the storage: that is the accounting's follow-on).
fn policy_limits(ctx: &mut Context, ex: &Ex) -> Option<&'static str> {
    let (_, command, entry) = policy_command(ex)?;
    if command != 3 || ex.q != Some(SUCCESS) || ex.o != Some(OUT_OF_RESOURCES) {
        return None;
    }
    // Our store fuller than QEMU's explains it otherwise (the accounting).
    let storage_full = ctx
        .qemu_used(ex.store)
        .is_some_and(|q| q < ctx.our_used(ex.store));
    if storage_full {
        return None;
    }
    if let Some(e) = entry {
        ctx.diverged_policies.push(target(e, POLICY_LIMITS));
    }
    Some(POLICY_LIMITS)
}

/// compat: policy-namespace-wide (REGISTER). QEMU takes a nameless policy
/// and one for the empty name as the same entry.
fn policy_namespace_wide_register(ctx: &mut Context, ex: &Ex) -> Option<&'static str> {
    let (_, command, entry) = policy_command(ex)?;
    let e = entry?;
    if command != 3
        || ex.q != Some(ALREADY_STARTED)
        || ex.o != Some(SUCCESS)
        || !e.nameless
        || !ctx.namespace_wide.contains(&e.namespace)
    {
        return None;
    }
    ctx.diverged_policies.push(target(e, POLICY_NAMESPACE_WIDE));
    Some(POLICY_NAMESPACE_WIDE)
}

/// compat: policy-dump.
fn policy_dump(_: &mut Context, ex: &Ex) -> Option<&'static str> {
    let (_, command, _) = policy_command(ex)?;
    (command == 4 && ex.q == Some(UNSUPPORTED)).then_some(POLICY_DUMP)
}

/// compat: policy-get-info.
fn policy_get_info(_: &mut Context, ex: &Ex) -> Option<&'static str> {
    let (_, command, _) = policy_command(ex)?;
    (matches!(command, 6 | 7) && ex.q == Some(UNSUPPORTED)).then_some(POLICY_GET_INFO)
}

// ---------------------------------------------------------------------------
// Follow-ons.

/// An answer about a variable whose state differs (GET, SET, and a
/// GetNextVariableName from it or returning it).
fn follows_from_variable(ctx: &mut Context, ex: &Ex) -> Option<&'static str> {
    match &ex.req {
        Req::Var {
            access: Some(a), ..
        } => ctx.taint_id(&key_of(a)),
        Req::Var {
            function: 2,
            next: Some((g, n)),
            ..
        } => {
            let from = (*g, until_nul(&units(n)));
            ctx.taint_id(&from)
                .or_else(|| tainted_result(ctx, ex.qemu))
                .or_else(|| tainted_result(ctx, ex.ours))
        }
        _ => None,
    }
}

/// The differing variable a GetNextVariableName reply names. A reply too
/// small for the name (EFI_BUFFER_TOO_SMALL) carries its NameSize and as
/// much of it as fits: a differing variable of that size and prefix.
fn tainted_result(ctx: &Context, reply: Option<&[u8]>) -> Option<&'static str> {
    let r = reply?;
    let guid = guid_at(r, 40)?;
    let size = usize::try_from(u64_at(r, 56)?).ok()?;
    let area = r.get(64..64usize.checked_add(size)?.min(r.len()))?;
    let u = units(area);
    if let Some(end) = u.iter().position(|&c| c == 0) {
        return ctx.taint_id(&(guid, u[..end].to_vec()));
    }
    // (QEMU 10.0 may hold a name without its NUL: name-scan-bound.)
    ctx.taint
        .iter()
        .find(|((g, n), _)| {
            *g == guid && n.starts_with(&u) && (n.len() * 2 == size || (n.len() + 1) * 2 == size)
        })
        .map(|(_, t)| t.id)
}

/// Whether a GetNextVariableName reply (EFI_SUCCESS, or EFI_BUFFER_TOO_SMALL
/// with as much of the name as fits) names this variable.
fn reply_names(reply: Option<&[u8]>, v: &uefi_vars::variable::Variable) -> bool {
    let Some(r) = reply else {
        return false;
    };
    let (Some(g), Some(size)) = (guid_at(r, 40), u64_at(r, 56)) else {
        return false;
    };
    let wire = v.name.to_wire();
    let shown = r.get(64..).unwrap_or_default();
    let n = shown.len().min(wire.len());
    g == v.guid && size == wire.len() as u64 && shown[..n] == wire[..n]
}

/// A SetVariable governed by a policy only one side holds (once policies
/// are enforced), and policy answers that follow from an earlier listed
/// difference of the policy engines.
fn follows_from_policy(ctx: &mut Context, ex: &Ex) -> Option<&'static str> {
    if let Some(a) = set(ex) {
        return enforcing(ctx)
            .then(|| ctx.diverged_policy_id(&key_of(a)))
            .flatten();
    }
    let (_, command, entry) = policy_command(ex)?;
    match command {
        2 => ctx.disable_diverged,
        3 => {
            if ex.q == Some(WRITE_PROTECTED) && ctx.lock_diverged.is_some() {
                return ctx.lock_diverged;
            }
            let e = entry?;
            ctx.diverged_policies
                .iter()
                .find(|p| p.namespace == e.namespace && same_name(p, e))
                .map(|p| p.id)
        }
        _ => None,
    }
}

/// QueryVariableInfo and EFI_OUT_OF_RESOURCES answers that the model of
/// QEMU's accounting predicts.
fn follows_from_accounting(ctx: &mut Context, ex: &Ex) -> Option<&'static str> {
    if function(ex) == Some(4) {
        return query_follows(ctx, ex);
    }
    let is_register = matches!(policy_command(ex), Some((_, 3, _)));
    if set(ex).is_none() && !is_register {
        return None;
    }
    let qemu_full = ex.q == Some(OUT_OF_RESOURCES) && ex.o == Some(SUCCESS);
    let ours_full = ex.o == Some(OUT_OF_RESOURCES) && ex.q == Some(SUCCESS);
    if !qemu_full && !ours_full {
        return None;
    }
    let Some(qemu) = ctx.qemu_used(ex.before) else {
        return ctx.accounting_id(ex.before);
    };
    let our = ctx.our_used(ex.before);
    if (qemu_full && qemu > our) || (ours_full && qemu < our) {
        ctx.accounting_id(ex.before)
    } else {
        None
    }
}

fn query_follows(ctx: &mut Context, ex: &Ex) -> Option<&'static str> {
    let (qr, or) = (ex.qemu?, ex.ours?);
    if ex.q != Some(SUCCESS) || ex.o != Some(SUCCESS) || qr.len() != or.len() || qr.len() < 56 {
        return None;
    }
    // Only RemainingVariableStorageSize (abs 48) may differ.
    let rest_same = qr[..48] == or[..48] && qr[56..] == or[56..];
    if !rest_same {
        return None;
    }
    let max = u64_at(or, 40)?;
    let theirs = u64_at(qr, 48)?;
    let ours_field = u64_at(or, 48)?;
    let Some(used) = ctx.qemu_used(ex.store) else {
        return ctx.accounting_id(ex.store);
    };
    if theirs != max.wrapping_sub(used) {
        return None;
    }
    if used > max && ours_field == 0 && ctx.our_used(ex.store) >= max {
        return Some(QUERY_REMAINING_SATURATES);
    }
    ctx.accounting_id(ex.store)
}

// ---------------------------------------------------------------------------
// What every exchange leaves behind.

/// Updates the model after an exchange that `id` classified (`None`: the
/// same answers, or an unlisted difference).
pub(super) fn record(ctx: &mut Context, ex: &Ex, id: Option<&'static str>) {
    match &ex.req {
        Req::Var {
            function: 3,
            access: Some(a),
            ..
        } => record_set(ctx, ex, a, id),
        Req::Var {
            function: 8,
            next: Some((g, n)),
            ..
        } if ex.q == Some(SUCCESS) || ex.o == Some(SUCCESS) => {
            ctx.policies_seen.push(PolicyTarget {
                namespace: *g,
                name: Some(until_nul(&units(n))),
                id: LOCK_VARIABLE_PHASE,
            });
        }
        Req::Var { function: 5, .. } => ctx.ready_to_boot = true,
        Req::Var { function: 6, .. } => ctx.runtime = true,
        Req::Policy {
            command: 3,
            entry: Some(e),
            ..
        } => record_register(ctx, ex, e, id),
        Req::Policy { command: 5, .. } => {
            if ex.q == Some(SUCCESS) || ex.o == Some(SUCCESS) {
                ctx.policy_lock_seen = true;
            }
            // (policy-lock-twice: both are locked afterwards)
            if ex.q == Some(SUCCESS) && ex.o != Some(SUCCESS) && id != Some(POLICY_LOCK_TWICE) {
                ctx.lock_diverged
                    .get_or_insert(id.unwrap_or(POLICY_SIGNATURE));
            }
        }
        Req::Event(g) => record_event(ctx, g),
        _ => {}
    }
}

fn record_event(ctx: &mut Context, g: &Guid) {
    use uefi_vars::guid::{END_OF_DXE_EVENT, EXIT_BOOT_SERVICES_EVENT, READY_TO_BOOT_EVENT};
    if *g == END_OF_DXE_EVENT {
        ctx.end_of_dxe = true;
    } else if *g == READY_TO_BOOT_EVENT {
        ctx.ready_to_boot = true;
    } else if *g == EXIT_BOOT_SERVICES_EVENT {
        ctx.runtime = true;
    }
}

/// A SetVariable that took effect on one side only makes the variable
/// differ; on a variable that already differs, QEMU's copy follows what
/// QEMU did.
fn record_set(ctx: &mut Context, ex: &Ex, a: &Access, id: Option<&'static str>) {
    let key = key_of(a);
    let qemu_ok = ex.q == Some(SUCCESS);
    let ours_ok = ex.o == Some(SUCCESS);
    if ctx.taint.contains_key(&key) {
        if qemu_ok {
            let copy = qemu_copy_after_set(a);
            if let Some(t) = ctx.taint.get_mut(&key) {
                t.qemu = copy;
            }
        }
        return;
    }
    if qemu_ok == ours_ok {
        return;
    }
    let Some(id) = id else {
        // An unlisted difference fails the run; nothing is excused by it.
        return;
    };
    let copy = if qemu_ok {
        qemu_copy_after_set(a)
    } else {
        Some(our_state(ex.before, &key))
    };
    ctx.taint_key(key, id, copy);
}

fn record_register(ctx: &mut Context, ex: &Ex, e: &PolicyEntry, id: Option<&'static str>) {
    let qemu_ok = ex.q == Some(SUCCESS);
    let ours_ok = ex.o == Some(SUCCESS);
    if qemu_ok || ours_ok {
        ctx.policies_seen
            .push(target(e, id.unwrap_or(POLICY_VALIDATION)));
        if e.nameless {
            ctx.namespace_wide.insert(e.namespace);
        }
        if e.lock_type == 3 {
            ctx.var_state.insert(e.namespace);
        }
    }
    if ctx.qemu_charges_policies() {
        if qemu_ok {
            ctx.qemu_policy_charge = ctx.qemu_policy_charge.saturating_add(e.size);
        }
        if ours_ok {
            ctx.our_policy_charge = ctx.our_policy_charge.saturating_add(e.size);
        }
        if qemu_ok != ours_ok {
            if let Some(id) = id {
                ctx.charge_divergence.get_or_insert(id);
            }
        }
    }
}
