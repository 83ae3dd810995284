//! The allowed differences between QEMU's device and ours, keyed by the
//! compat ids of `docs/compat.md`.
//!
//! [`observe`] sees every exchange: the request, both answers and our
//! store before and after it. When the answers differ it names the compat
//! id whose row describes exactly this request and these two answers for
//! the variable or policy it concerns, or `None` (an unlisted difference,
//! which fails the suite):
//!
//! - the rules (`rules::RULES`, one function per row) recognise a
//!   difference by the request itself and the state it meets;
//! - some listed differences leave QEMU's state different from ours (QEMU
//!   stores a variable we refuse, keeps a policy we refuse, charges the
//!   storage differently). The model (`model::Context`) keeps track of
//!   exactly what differs: which variables, what QEMU's copy of each costs,
//!   which policies only one side holds, the policies' storage charge on
//!   each side. A later difference is excused (`rules::FOLLOW_ONS`) only
//!   when the model says it follows: an answer about a differing variable,
//!   a write governed by a differing policy, a QueryVariableInfo whose
//!   RemainingVariableStorageSize is exactly what the model predicts for
//!   QEMU, an EFI_OUT_OF_RESOURCES on the side the model says is fuller.
//!
//! Adding a rule: one function in `rules.rs` and one line in
//! `rules::RULES` (plus the id in [`IDS`] and its row in docs/compat.md).

mod decode;
mod model;
mod rules;
#[cfg(test)]
mod tests;

use uefi_vars::codec;
use uefi_vars::store::VarStore;
use uefi_vars::variable::Attributes;
use uefi_vars::{EfiStatus, MmResponse};

pub use decode::brief;
use decode::{decode, efi_status, is_signature_db, u32_at, units, until_nul, Req};
pub use model::Context;
use rules::{record, Ex, FOLLOW_ONS, RULES};

/// Every compat id the classifier can return (all are rows of
/// docs/compat.md; a test checks that).
pub const IDS: &[&str] = &[
    NAME_SCAN_BOUND,
    NAME_CANONICAL,
    EMPTY_NAME,
    GET_INACCESSIBLE,
    APPEND_EMPTY,
    UNAUTHENTICATED_DELETE,
    AUTH_DESCRIPTOR,
    AUTH_TIME_FIELDS,
    READY_TO_BOOT_AT_RUNTIME,
    READY_TO_BOOT_ENDS_DXE,
    LOCK_VARIABLE_PHASE,
    POLICY_SIGNATURE,
    POLICY_VALIDATION,
    POLICY_LOCK_AT_END_OF_DXE,
    POLICY_DISABLE,
    POLICY_DUMP,
    POLICY_GET_INFO,
    POLICY_NAMESPACE_WIDE,
    POLICY_DELETE_CHECKS,
    JSON_NAMES,
    QEMU10_BOOT_FUNCTION_STATUS,
    QEMU10_GET_NEXT_FIRST,
    QEMU10_BUFFER_CHECK,
    NAME_SIZE_LIMIT,
    QUERY_REMAINING_SATURATES,
    READ_ONLY,
    APPEND_MERGE,
    PK_DELETE_MODE,
    DB_SIGNERS,
    DBT_DBR,
    PKCS7_WRAPPED,
    POLICY_LIMITS,
    POLICY_VAR_STATE,
    APPEND_TIME,
    POLICY_CHARGE_RESET,
    REPLAY,
    POLICY_FRAMING,
    POLICY_LOCK_TWICE,
    VARCHECK_PROPERTY,
    UEFI_DEFINED_VARIABLES,
    RUNTIME_CACHE,
    VARCHECK_BEFORE_LOOKUP,
    ATTR_RESERVED_BITS,
    ATTR_RUNTIME_WITHOUT_BS,
    ATTR_NV_ONLY,
    AUTH_WRITE_ACCESS,
    HW_ERROR_RECORD,
    RUNTIME_WRITE,
    DELETE_ATTRIBUTES,
    DELETE_NO_ACCESS,
    APPEND_ANY_VARIABLE,
];

pub const NAME_SCAN_BOUND: &str = "name-scan-bound";
pub const NAME_CANONICAL: &str = "name-canonical";
pub const EMPTY_NAME: &str = "empty-name";
pub const GET_INACCESSIBLE: &str = "get-inaccessible";
pub const APPEND_EMPTY: &str = "append-empty";
pub const UNAUTHENTICATED_DELETE: &str = "unauthenticated-delete";
pub const AUTH_DESCRIPTOR: &str = "auth-descriptor";
pub const AUTH_TIME_FIELDS: &str = "auth-time-fields";
pub const READY_TO_BOOT_AT_RUNTIME: &str = "ready-to-boot-at-runtime";
pub const READY_TO_BOOT_ENDS_DXE: &str = "ready-to-boot-ends-dxe";
pub const LOCK_VARIABLE_PHASE: &str = "lock-variable-phase";
pub const POLICY_SIGNATURE: &str = "policy-signature";
pub const POLICY_VALIDATION: &str = "policy-validation";
pub const POLICY_LOCK_AT_END_OF_DXE: &str = "policy-lock-at-end-of-dxe";
pub const POLICY_DISABLE: &str = "policy-disable";
pub const POLICY_DUMP: &str = "policy-dump";
pub const POLICY_GET_INFO: &str = "policy-get-info";
pub const POLICY_NAMESPACE_WIDE: &str = "policy-namespace-wide";
pub const POLICY_DELETE_CHECKS: &str = "policy-delete-checks";
pub const JSON_NAMES: &str = "json-names";
pub const QEMU10_BOOT_FUNCTION_STATUS: &str = "qemu10-boot-function-status";
pub const QEMU10_GET_NEXT_FIRST: &str = "qemu10-get-next-first";
pub const QEMU10_BUFFER_CHECK: &str = "qemu10-buffer-check";
pub const NAME_SIZE_LIMIT: &str = "name-size-limit";
pub const QUERY_REMAINING_SATURATES: &str = "query-remaining-saturates";
pub const READ_ONLY: &str = "read-only";
pub const APPEND_MERGE: &str = "append-merge";
pub const PK_DELETE_MODE: &str = "pk-delete-mode";
pub const DB_SIGNERS: &str = "db-signers";
pub const DBT_DBR: &str = "dbt-dbr";
pub const PKCS7_WRAPPED: &str = "pkcs7-wrapped";
pub const POLICY_LIMITS: &str = "policy-limits";
pub const POLICY_VAR_STATE: &str = "policy-var-state";
pub const APPEND_TIME: &str = "append-time";
pub const POLICY_CHARGE_RESET: &str = "policy-charge-reset";
pub const REPLAY: &str = "replay";
pub const POLICY_FRAMING: &str = "policy-framing";
pub const POLICY_LOCK_TWICE: &str = "policy-lock-twice";
pub const VARCHECK_PROPERTY: &str = "varcheck-property";
pub const UEFI_DEFINED_VARIABLES: &str = "uefi-defined-variables";
pub const RUNTIME_CACHE: &str = "runtime-cache";
pub const VARCHECK_BEFORE_LOOKUP: &str = "varcheck-before-lookup";
pub const ATTR_RESERVED_BITS: &str = "attr-reserved-bits";
pub const ATTR_RUNTIME_WITHOUT_BS: &str = "attr-runtime-without-bs";
pub const ATTR_NV_ONLY: &str = "attr-nv-only";
pub const AUTH_WRITE_ACCESS: &str = "auth-write-access";
pub const HW_ERROR_RECORD: &str = "hw-error-record";
pub const RUNTIME_WRITE: &str = "runtime-write";
pub const DELETE_ATTRIBUTES: &str = "delete-attributes";
pub const DELETE_NO_ACCESS: &str = "delete-no-access";
pub const APPEND_ANY_VARIABLE: &str = "append-any-variable";

/// `Config::max_name_size` by default (the oracle compares with it).
pub(crate) const MAX_NAME_SIZE: usize = 1024;

// The library's status and attribute tables, as the raw values the
// classifier compares with.
pub(crate) const SUCCESS: u64 = EfiStatus::SUCCESS.0;
pub(crate) const INVALID_PARAMETER: u64 = EfiStatus::INVALID_PARAMETER.0;
pub(crate) const UNSUPPORTED: u64 = EfiStatus::UNSUPPORTED.0;
pub(crate) const WRITE_PROTECTED: u64 = EfiStatus::WRITE_PROTECTED.0;
pub(crate) const BAD_BUFFER_SIZE: u64 = EfiStatus::BAD_BUFFER_SIZE.0;
pub(crate) const BUFFER_TOO_SMALL: u64 = EfiStatus::BUFFER_TOO_SMALL.0;
pub(crate) const OUT_OF_RESOURCES: u64 = EfiStatus::OUT_OF_RESOURCES.0;
pub(crate) const NOT_FOUND: u64 = EfiStatus::NOT_FOUND.0;
pub(crate) const ACCESS_DENIED: u64 = EfiStatus::ACCESS_DENIED.0;
pub(crate) const SECURITY_VIOLATION: u64 = EfiStatus::SECURITY_VIOLATION.0;
pub(crate) const ALREADY_STARTED: u64 = EfiStatus::ALREADY_STARTED.0;

pub(crate) const ATTR_NV: u32 = Attributes::NON_VOLATILE.bits();
pub(crate) const ATTR_TIME_AUTH: u32 = Attributes::TIME_BASED_AUTHENTICATED_WRITE_ACCESS.bits();
pub(crate) const ATTR_APPEND: u32 = Attributes::APPEND_WRITE.bits();
pub(crate) const ATTR_HW_ERROR: u32 = Attributes::HARDWARE_ERROR_RECORD.bits();
pub(crate) const ATTR_BS: u32 = Attributes::BOOTSERVICE_ACCESS.bits();
pub(crate) const ATTR_RT: u32 = Attributes::RUNTIME_ACCESS.bits();
pub(crate) const ATTR_HR: u32 = Attributes::HARDWARE_ERROR_RECORD.bits();
pub(crate) const ATTR_AW: u32 = Attributes::AUTHENTICATED_WRITE_ACCESS.bits();

/// One exchange: the request, both answers, our store after it and
/// before it (a SetVariable; otherwise `None`).
pub struct Exchange<'a> {
    pub request: &'a [u8],
    pub qemu_status: u16,
    pub qemu_reply: Option<&'a [u8]>,
    pub ours: &'a MmResponse,
    /// Both answers are identical.
    pub same: bool,
    pub store: &'a VarStore,
    pub before: Option<&'a VarStore>,
}

/// Sees one exchange; updates the context and returns the compat id
/// explaining a difference (`None`: no difference, or an unlisted one).
pub fn observe(ctx: &mut Context, x: &Exchange) -> Option<&'static str> {
    let req = decode(x.request);
    let policy = matches!(req, Req::Policy { .. });
    let ours_reply = x.ours.reply.as_deref();
    let ex = Ex {
        request: x.request,
        q: efi_status(x.qemu_reply, policy),
        o: efi_status(ours_reply, policy),
        req,
        qemu: x.qemu_reply,
        ours: ours_reply,
        same: x.same,
        store: x.store,
        before: x.before.unwrap_or(x.store),
    };
    let _ = x.qemu_status;
    let mut id = RULES.iter().find_map(|rule| rule(ctx, &ex));
    if !x.same && id.is_none() {
        id = FOLLOW_ONS.iter().find_map(|rule| rule(ctx, &ex));
    }
    let id = if x.same { None } else { id };
    record(ctx, &ex, id);
    id
}

/// Whether `request` is a SetVariable (the comparison then keeps our store
/// from before it for [`Exchange::before`]).
pub fn is_set_variable(request: &[u8]) -> bool {
    matches!(decode(request), Req::Var { function: 3, .. })
}

/// Requests QEMU 10.0.2 or QEMU 11.1.3 is known to crash on (docs/compat.md,
/// "QEMU 10.0" and "QEMU 11.1"): the description if `request` is one,
/// given our answer to it.
/// A run that crashes is repeated without the last such request before
/// the crash; any other crash fails the suite.
pub fn qemu10_crash_trigger(request: &[u8], ours: &MmResponse) -> Option<&'static str> {
    if let Some(why) = qemu11_crash_trigger(request) {
        return Some(why);
    }
    let Req::Var {
        function, access, ..
    } = decode(request)
    else {
        return None;
    };
    if function == codec::function::SET_VARIABLE {
        let a = access?;
        let key = until_nul(&units(&a.name));
        return (a.attributes & ATTR_TIME_AUTH != 0
            && a.data_size > 0
            && !is_signature_db(&a.guid, &key)
            && u32_at(&a.data, 16) == Some(24))
        .then_some("a private authenticated variable written without CertData (SIGSEGV)");
    }
    use codec::function::{
        GET_NEXT_VARIABLE_NAME, GET_PAYLOAD_SIZE, GET_VARIABLE, QUERY_VARIABLE_INFO,
    };
    (matches!(
        function,
        GET_VARIABLE | GET_NEXT_VARIABLE_NAME | QUERY_VARIABLE_INFO | GET_PAYLOAD_SIZE
    ) && efi_status(ours.reply.as_deref(), false) == Some(BAD_BUFFER_SIZE))
    .then_some("a reply that does not fit BUFFER_SIZE − 24 (written past QEMU's buffer)")
}

/// QEMU 11.1.3 aborts (an assertion in uefi_vars_add_policy) on a policy
/// REGISTER whose entry has no name bytes at all (Size == OffsetToName, a
/// namespace-wide policy as edk2 builds it). The conformance suite leaves
/// such requests out of what it sends QEMU 11.
pub fn qemu11_crash_trigger(request: &[u8]) -> Option<&'static str> {
    match decode(request) {
        Req::Policy {
            command: 3,
            entry: Some(e),
            ..
        } if e.no_name_bytes => {
            Some("a policy REGISTER without name bytes (Size == OffsetToName; SIGABRT)")
        }
        _ => None,
    }
}
