//! The allowed differences between QEMU's device and ours, keyed by the
//! compat ids of `docs/compat.md`.
//!
//! [`observe`] sees every request with both answers. When they differ it
//! names the compat id whose row describes exactly this request and these
//! two answers, or `None` (an unlisted difference, which fails the suite).
//! Some listed differences leave the two stores different (QEMU stores a
//! variable we refuse, or deletes one we keep); later answers about that
//! variable, enumerations and the storage accounting then differ too. Those
//! are followed as *taint*: per variable, and for enumeration-wide state,
//! each remembering the compat id that caused it.

use std::collections::{BTreeMap, BTreeSet};

use uefi_vars::guid::{
    Guid, CUSTOM_MODE_ENABLE, END_OF_DXE_EVENT, EXIT_BOOT_SERVICES_EVENT, GLOBAL_VARIABLE,
    IMAGE_SECURITY_DATABASE, READY_TO_BOOT_EVENT, SMM_VARIABLE_PROTOCOL, VAR_CHECK_POLICY_MMI,
};
use uefi_vars::name::VarName;
use uefi_vars::MmResponse;

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

/// `Config::max_name_size` by default (the oracle compares with it).
const MAX_NAME_SIZE: usize = 1024;
/// The largest BUFFER_SIZE.
const MAX_BUFFER: u64 = 0x10000;

const SUCCESS: u64 = 0;
const ERR: u64 = 1 << 63;
const INVALID_PARAMETER: u64 = ERR | 2;
const UNSUPPORTED: u64 = ERR | 3;
const WRITE_PROTECTED: u64 = ERR | 8;
const BAD_BUFFER_SIZE: u64 = ERR | 4;
const BUFFER_TOO_SMALL: u64 = ERR | 5;
const OUT_OF_RESOURCES: u64 = ERR | 9;
const NOT_FOUND: u64 = ERR | 14;
const ACCESS_DENIED: u64 = ERR | 15;
const SECURITY_VIOLATION: u64 = ERR | 26;
const ALREADY_STARTED: u64 = ERR | 20;

const ATTR_NV: u32 = 0x01;
const ATTR_BS: u32 = 0x02;
const ATTR_RT: u32 = 0x04;
const ATTR_TIME_AUTH: u32 = 0x20;
const ATTR_APPEND: u32 = 0x40;

/// Variable key: vendor GUID and the name up to its first NUL.
type Key = (Guid, Vec<u16>);

/// What the classifier remembers across a run.
#[derive(Clone, Debug, Default)]
pub struct Context {
    /// Variables whose state may differ, with the id that caused it.
    taint: BTreeMap<Key, &'static str>,
    /// The set of variables (or their order) may differ: enumerations and
    /// storage accounting are affected.
    global: Option<&'static str>,
    /// The policy engines may differ (QEMU kept a policy we refused or
    /// the other way round): SetVariable answers may differ.
    policy: Option<&'static str>,
    /// Boot phase as the requests so far set it.
    end_of_dxe: bool,
    ready_to_boot: bool,
    runtime: bool,
    /// A policy LOCK command succeeded on either side.
    policy_lock_seen: bool,
    /// BUFFER_SIZE as the guest set it (`None`: 64 KiB, as at every boot).
    buffer_size: Option<u32>,
    /// A policy was registered on either side since the last reset.
    policies_registered: bool,
    /// Namespaces with a nameless (or empty-name) policy on either side.
    namespace_wide: BTreeSet<Guid>,
    /// Namespaces with a LOCK_ON_VAR_STATE policy on either side.
    var_state: BTreeSet<Guid>,
    /// PK was deleted (by an authenticated write) since the last reset.
    pk_deleted: bool,
}

impl Context {
    /// A machine reset: volatile state and policies go, the boot phase
    /// starts over. Non-volatile taint stays (the variables persist).
    pub fn reset(&mut self) {
        self.end_of_dxe = false;
        self.ready_to_boot = false;
        self.runtime = false;
        self.policy_lock_seen = false;
        self.policy = None;
        self.buffer_size = None;
        self.policies_registered = false;
        self.namespace_wide.clear();
        self.var_state.clear();
        self.pk_deleted = false;
    }

    /// The guest set BUFFER_SIZE (the size the device reported).
    pub fn set_buffer_size(&mut self, size: u32) {
        self.buffer_size = Some(size);
    }

    fn buffer(&self) -> u64 {
        self.buffer_size.map_or(MAX_BUFFER, u64::from)
    }

    /// Whether a reply needing `required` bytes (from abs 24) passes QEMU
    /// 10.0's buffer check (against BUFFER_SIZE) but not the current one
    /// (against BUFFER_SIZE − 24).
    fn qemu10_buffer_gap(&self, required: u64) -> bool {
        let b = self.buffer();
        required > b.saturating_sub(24) && required <= b
    }

    /// The id explaining a final-store difference in this variable.
    pub fn store_id(&self, guid: Guid, name: &VarName) -> Option<&'static str> {
        let units = until_nul(name.units());
        if let Some(id) = self.taint.get(&(guid, units.clone())) {
            return Some(id);
        }
        if units.iter().any(|&u| u >= 0x80) {
            return Some(JSON_NAMES);
        }
        self.global
    }

    /// Any taint (for a difference in variable order only).
    pub fn any_taint(&self) -> Option<&'static str> {
        self.global
            .or_else(|| self.taint.values().next().copied())
            .or(self.policy)
    }

    fn taint_key(&mut self, key: Key, id: &'static str) {
        self.taint.entry(key).or_insert(id);
        self.global.get_or_insert(id);
    }
}

fn until_nul(units: &[u16]) -> Vec<u16> {
    units.iter().copied().take_while(|&u| u != 0).collect()
}

fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(off..off + 8)?.try_into().ok()?))
}
fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(off..off + 4)?.try_into().ok()?))
}
fn guid_at(b: &[u8], off: usize) -> Option<Guid> {
    Some(Guid(b.get(off..off + 16)?.try_into().ok()?))
}
fn units(b: &[u8]) -> Vec<u16> {
    b.chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect()
}

/// A name area as edk2 requires it: even size, NUL at the end and nowhere
/// before, no surrogates, not empty.
fn name_is_clean(area: &[u8]) -> bool {
    let u = units(area);
    area.len() >= 4
        && area.len() % 2 == 0
        && u.last() == Some(&0)
        && u[..u.len() - 1]
            .iter()
            .all(|&c| c != 0 && !(0xd800..0xe000).contains(&c))
}

/// The decoded request, as far as the classifier needs it.
#[derive(Debug)]
enum Req {
    Var {
        function: u64,
        /// GET/SET: guid, data size, name area, attributes, data.
        access: Option<Access>,
        /// GET_NEXT / LOCK: guid, name area.
        next: Option<(Guid, Vec<u8>)>,
    },
    Policy {
        signature_ok: bool,
        command: u32,
        /// REGISTER: the entry.
        entry: Option<PolicyEntry>,
    },
    Event(Guid),
    Other,
}

#[derive(Debug)]
struct PolicyEntry {
    namespace: Guid,
    /// No name, or the empty name "".
    nameless: bool,
    lock_type: u8,
}

#[derive(Debug)]
struct Access {
    guid: Guid,
    data_size: u64,
    name: Vec<u8>,
    attributes: u32,
    data: Vec<u8>,
}

fn decode(req: &[u8]) -> Req {
    let Some(g) = guid_at(req, 0) else {
        return Req::Other;
    };
    let body = &req[24.min(req.len())..];
    if g == SMM_VARIABLE_PROTOCOL {
        let Some(function) = u64_at(body, 0) else {
            return Req::Other;
        };
        let p = &body[16.min(body.len())..];
        let access = (|| {
            let guid = guid_at(p, 0)?;
            let data_size = u64_at(p, 16)?;
            let name_size = usize::try_from(u64_at(p, 24)?).ok()?;
            let attributes = u32_at(p, 32)?;
            let name = p.get(36..36usize.checked_add(name_size)?)?.to_vec();
            let data = p
                .get(36 + name_size..)
                .map(|d| d[..d.len().min(data_size as usize)].to_vec())
                .unwrap_or_default();
            Some(Access {
                guid,
                data_size,
                name,
                attributes,
                data,
            })
        })();
        let next = (|| {
            let guid = guid_at(p, 0)?;
            let name_size = usize::try_from(u64_at(p, 16)?).ok()?;
            Some((guid, p.get(24..24usize.checked_add(name_size)?)?.to_vec()))
        })();
        Req::Var {
            function,
            access: if matches!(function, 1 | 3) {
                access
            } else {
                None
            },
            next: if matches!(function, 2 | 8) {
                next
            } else {
                None
            },
        }
    } else if g == VAR_CHECK_POLICY_MMI {
        let sig = u32_at(body, 0).unwrap_or(0);
        let rev = u32_at(body, 4).unwrap_or(0);
        let entry = (|| {
            let e = body.get(20..)?;
            let size = usize::from(u16::from_le_bytes(e.get(4..6)?.try_into().ok()?));
            let offset = usize::from(u16::from_le_bytes(e.get(6..8)?.try_into().ok()?));
            let name = e.get(offset.min(size)..size).unwrap_or_default();
            Some(PolicyEntry {
                namespace: guid_at(e, 8)?,
                nameless: name.iter().all(|&b| b == 0) && name.len() <= 2,
                lock_type: *e.get(40)?,
            })
        })();
        Req::Policy {
            signature_ok: sig == u32::from_le_bytes(*b"VCPC") && rev == 1,
            command: u32_at(body, 8).unwrap_or(0),
            entry,
        }
    } else {
        Req::Event(g)
    }
}

/// EFI status in a reply (variable protocol: abs 32; policy: abs 36).
fn efi_status(reply: Option<&[u8]>, policy: bool) -> Option<u64> {
    u64_at(reply?, if policy { 36 } else { 32 })
}

/// Name (up to the NUL) and GUID a GET_NEXT reply returned.
fn next_result(reply: Option<&[u8]>) -> Option<Key> {
    let r = reply?;
    let guid = guid_at(r, 40)?;
    let size = usize::try_from(u64_at(r, 56)?).ok()?;
    let name = r.get(64..64 + size.min(r.len().saturating_sub(64)))?;
    Some((guid, until_nul(&units(name))))
}

fn is_secure_boot_key(guid: &Guid, name: &[u16]) -> bool {
    let n = String::from_utf16_lossy(name);
    (*guid == GLOBAL_VARIABLE && (n == "PK" || n == "KEK"))
        || (*guid == IMAGE_SECURITY_DATABASE && (n == "db" || n == "dbx"))
}

/// At most 40 characters of a name, for reports.
fn short(name: &str) -> String {
    if name.chars().count() <= 40 {
        return name.to_string();
    }
    let head: String = name.chars().take(32).collect();
    format!("{head}...({} chars)", name.chars().count())
}

/// A one-line description of a request and an answer, for reports.
pub fn brief(request: &[u8], reply: Option<&[u8]>) -> String {
    match decode(request) {
        Req::Var {
            function,
            access,
            next,
        } => {
            let st = efi_status(reply, false).map_or("-".to_string(), |s| format!("{s:#x}"));
            let mut s = format!("var fn {function} status {st}");
            if let Some(a) = access {
                s += &format!(
                    " {} {:?} (size {}) attr {:#x} data {}",
                    a.guid,
                    short(&String::from_utf16_lossy(&units(&a.name))),
                    a.name.len(),
                    a.attributes,
                    a.data_size
                );
            }
            if let Some((g, n)) = next {
                s += &format!(
                    " {g} {:?}",
                    String::from_utf16_lossy(&until_nul(&units(&n)))
                );
                if function == 2 {
                    if let Some((g, n)) = next_result(reply) {
                        s += &format!(" -> {g} {:?}", String::from_utf16_lossy(&n));
                    }
                }
            }
            s
        }
        Req::Policy {
            signature_ok,
            command,
            ..
        } => format!(
            "policy cmd {command}{} result {}",
            if signature_ok { "" } else { " (bad signature)" },
            efi_status(reply, true).map_or("-".to_string(), |s| format!("{s:#x}"))
        ),
        Req::Event(g) => format!("event {g}"),
        Req::Other => "short request".to_string(),
    }
}

/// Sees one request and both answers (`same`: they are identical);
/// updates the context and returns the compat id explaining a difference.
pub fn observe(
    ctx: &mut Context,
    request: &[u8],
    qemu_status: u16,
    qemu_reply: Option<&[u8]>,
    ours: &MmResponse,
    same: bool,
) -> Option<&'static str> {
    let ours_reply = ours.reply.as_deref();
    let req = decode(request);
    let id = classify(ctx, &req, qemu_status, qemu_reply, ours_reply, same);
    track(ctx, &req, qemu_reply, ours_reply);
    if same {
        None
    } else {
        id
    }
}

fn classify(
    ctx: &mut Context,
    req: &Req,
    qemu_status: u16,
    qemu_reply: Option<&[u8]>,
    ours_reply: Option<&[u8]>,
    same: bool,
) -> Option<&'static str> {
    let _ = qemu_status;
    match req {
        Req::Var {
            function,
            access,
            next,
        } => {
            let q = efi_status(qemu_reply, false);
            let o = efi_status(ours_reply, false);
            match (*function, access, next) {
                (1 | 3, Some(a), _) => {
                    let id = classify_access(ctx, *function, a, q, o, same, qemu_reply, ours_reply);
                    // A write that took effect on one side only leaves the
                    // variable different: later answers about it follow.
                    if let Some(id) = id {
                        if *function == 3 && q != o && (q == Some(SUCCESS) || o == Some(SUCCESS)) {
                            ctx.taint_key((a.guid, until_nul(&units(&a.name))), id);
                        }
                    }
                    id
                }
                (2, _, Some((g, n))) => {
                    if !name_is_clean(n) && o == Some(INVALID_PARAMETER) {
                        return Some(NAME_SCAN_BOUND);
                    }
                    // The variable's NameSize, as QEMU wrote it back.
                    let needed = qemu_reply.and_then(|r| u64_at(r, 56));
                    if qemu10_buffer_check(ctx, q, o, needed.map(|ns| 16 + 24 + ns)) {
                        return Some(QEMU10_BUFFER_CHECK);
                    }
                    let key = (*g, until_nul(&units(n)));
                    if let Some(id) = ctx.taint.get(&key) {
                        return Some(id);
                    }
                    for r in [qemu_reply, ours_reply] {
                        if let Some(k) = next_result(r) {
                            if let Some(id) = ctx.taint.get(&k) {
                                return Some(id);
                            }
                        }
                    }
                    if n.len() >= 2 && n[0] == 0 && n[1] == 0 {
                        // QEMU 10.0 starts an enumeration at the first
                        // variable without the access check.
                        return Some(QEMU10_GET_NEXT_FIRST);
                    }
                    ctx.global
                }
                (4, _, _) => {
                    if qemu10_buffer_check(ctx, q, o, Some(16 + 28)) {
                        return Some(QEMU10_BUFFER_CHECK);
                    }
                    // RemainingVariableStorageSize: QEMU's wraps around when
                    // a loaded store is over the size, ours stops at 0.
                    let field = |r: Option<&[u8]>, off| r.and_then(|r| u64_at(r, off));
                    if q == Some(SUCCESS)
                        && o == Some(SUCCESS)
                        && field(ours_reply, 48) == Some(0)
                        && field(qemu_reply, 48) > field(qemu_reply, 40)
                        && field(qemu_reply, 40) == field(ours_reply, 40)
                    {
                        return Some(QUERY_REMAINING_SATURATES);
                    }
                    ctx.global
                }
                (11, _, _) => {
                    if qemu10_buffer_check(ctx, q, o, Some(16 + 8)) {
                        return Some(QEMU10_BUFFER_CHECK);
                    }
                    None
                }
                (5 | 6, _, _) => {
                    if *function == 5 && ctx.runtime && o == Some(UNSUPPORTED) {
                        return Some(READY_TO_BOOT_AT_RUNTIME);
                    }
                    // QEMU 10.0 leaves ReturnStatus as sent.
                    if o == Some(SUCCESS) && q != Some(SUCCESS) {
                        return Some(QEMU10_BOOT_FUNCTION_STATUS);
                    }
                    None
                }
                (8, _, Some((_, n))) => {
                    if q == Some(SUCCESS)
                        && (o == Some(INVALID_PARAMETER) && !name_is_clean(n)
                            || matches!(o, Some(ACCESS_DENIED) | Some(WRITE_PROTECTED))
                                && (ctx.end_of_dxe
                                    || ctx.ready_to_boot
                                    || ctx.runtime
                                    || ctx.policy_lock_seen)
                            || o == Some(SUCCESS))
                    {
                        // A lock we refuse (or do not repeat) leaves the
                        // policy engines different.
                        ctx.policy.get_or_insert(LOCK_VARIABLE_PHASE);
                        return Some(LOCK_VARIABLE_PHASE);
                    }
                    None
                }
                _ => None,
            }
        }
        Req::Policy {
            signature_ok,
            command,
            entry,
        } => {
            let q = efi_status(qemu_reply, true);
            let o = efi_status(ours_reply, true);
            if !signature_ok && o == Some(INVALID_PARAMETER) {
                if *command == 3 && q == Some(SUCCESS) || *command == 5 && q == Some(SUCCESS) {
                    ctx.policy.get_or_insert(POLICY_SIGNATURE);
                }
                return Some(POLICY_SIGNATURE);
            }
            match command {
                1 if q == Some(UNSUPPORTED) => Some(POLICY_DISABLE),
                2 => ctx.policy,
                3 => {
                    if o == Some(INVALID_PARAMETER) && q == Some(ALREADY_STARTED) {
                        // QEMU kept an earlier malformed copy of this entry.
                        Some(POLICY_VALIDATION)
                    } else if q == Some(SUCCESS) && o == Some(INVALID_PARAMETER) {
                        ctx.policy.get_or_insert(POLICY_VALIDATION);
                        Some(POLICY_VALIDATION)
                    } else if o == Some(WRITE_PROTECTED)
                        && q != Some(WRITE_PROTECTED)
                        && (ctx.end_of_dxe || ctx.ready_to_boot)
                    {
                        // We refuse before looking at the entry (edk2's
                        // order); QEMU registers it or finds it malformed.
                        if q == Some(SUCCESS) {
                            ctx.policy.get_or_insert(POLICY_LOCK_AT_END_OF_DXE);
                        }
                        Some(POLICY_LOCK_AT_END_OF_DXE)
                    } else if q == Some(SUCCESS) && o == Some(OUT_OF_RESOURCES) {
                        ctx.policy.get_or_insert(POLICY_LIMITS);
                        Some(POLICY_LIMITS)
                    } else if q == Some(ALREADY_STARTED)
                        && o == Some(SUCCESS)
                        && entry.as_ref().is_some_and(|e| {
                            e.nameless && ctx.namespace_wide.contains(&e.namespace)
                        })
                    {
                        // QEMU takes a nameless policy and one for the empty
                        // name as the same entry.
                        ctx.policy.get_or_insert(POLICY_NAMESPACE_WIDE);
                        Some(POLICY_NAMESPACE_WIDE)
                    } else {
                        ctx.policy
                    }
                }
                4 if q == Some(UNSUPPORTED) => Some(POLICY_DUMP),
                6 | 7 if q == Some(UNSUPPORTED) => Some(POLICY_GET_INFO),
                _ => None,
            }
        }
        Req::Event(_) | Req::Other => None,
    }
}

/// QEMU 10.0 checked a reply of `required` bytes (from abs 24) against
/// BUFFER_SIZE instead of BUFFER_SIZE − 24: it answers (writing past its
/// buffer) where we and later QEMU answer EFI_BAD_BUFFER_SIZE.
fn qemu10_buffer_check(
    ctx: &Context,
    q: Option<u64>,
    o: Option<u64>,
    required: Option<u64>,
) -> bool {
    o == Some(BAD_BUFFER_SIZE)
        && matches!(q, Some(SUCCESS) | Some(BUFFER_TOO_SMALL))
        && required.is_some_and(|r| ctx.qemu10_buffer_gap(r))
}

/// Read-only variables of the global namespace (edk2 AuthVariableLib).
const READ_ONLY_NAMES: &[&str] = &[
    "SetupMode",
    "SecureBoot",
    "SignatureSupport",
    "VendorKeys",
    "VendorKeysNv",
    "AuditMode",
    "DeployedMode",
    "PKDefault",
    "KEKDefault",
    "dbDefault",
    "dbxDefault",
    "dbtDefault",
];

fn named(name: &[u16], s: &str) -> bool {
    name.iter().copied().eq(s.encode_utf16())
}

/// PK, KEK, db, dbx, dbt, dbr: the signature databases.
fn is_signature_db(guid: &Guid, name: &[u16]) -> bool {
    (*guid == GLOBAL_VARIABLE && (named(name, "PK") || named(name, "KEK")))
        || (*guid == IMAGE_SECURITY_DATABASE
            && ["db", "dbx", "dbt", "dbr"].iter().any(|n| named(name, n)))
}

/// Length of the payload after an EFI_VARIABLE_AUTHENTICATION_2 header
/// (EFI_TIME, then a WIN_CERTIFICATE of dwLength bytes).
fn auth2_payload_len(a: &Access) -> Option<u64> {
    let cert = u64::from(u32_at(&a.data, 16)?);
    a.data_size.checked_sub(16 + cert)
}

/// The CertData of an EFI_VARIABLE_AUTHENTICATION_2 is a ContentInfo
/// (SEQUENCE, then the signedData OID) rather than a bare SignedData.
fn cert_is_content_info(a: &Access) -> bool {
    const SIGNED_DATA_OID: [u8; 11] = [
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02,
    ];
    let Some(cert) = a.data.get(40..) else {
        return false;
    };
    let skip = match (cert.first(), cert.get(1)) {
        (Some(0x30), Some(&l)) if l < 0x80 => 2,
        (Some(0x30), Some(0x80)) => 2,
        (Some(0x30), Some(&l)) if l > 0x80 => 2 + usize::from(l & 0x7f),
        _ => return false,
    };
    cert.get(skip..skip + SIGNED_DATA_OID.len()) == Some(&SIGNED_DATA_OID[..])
}

#[allow(clippy::too_many_arguments)]
fn classify_access(
    ctx: &mut Context,
    function: u64,
    a: &Access,
    q: Option<u64>,
    o: Option<u64>,
    same: bool,
    qemu_reply: Option<&[u8]>,
    ours_reply: Option<&[u8]>,
) -> Option<&'static str> {
    let _ = (qemu_reply, ours_reply);
    let u = units(&a.name);
    let key: Key = (a.guid, until_nul(&u));
    let set = function == 3;
    let clean = name_is_clean(&a.name);
    let auth = a.attributes & ATTR_TIME_AUTH != 0;
    if set && auth && q == Some(SUCCESS) && o == Some(SUCCESS) {
        if a.attributes & ATTR_APPEND != 0 && is_signature_db(&a.guid, &key.1) {
            // Both appended, each in its own way.
            ctx.taint_key(key.clone(), APPEND_MERGE);
        }
        if a.guid == GLOBAL_VARIABLE && named(&key.1, "PK") && auth2_payload_len(a) == Some(0) {
            // PK deleted: we are in setup mode now, QEMU after the reset.
            ctx.pk_deleted = true;
            for name in [
                "SetupMode",
                "SecureBoot",
                "AuditMode",
                "DeployedMode",
                "VendorKeys",
            ] {
                ctx.taint_key(
                    (GLOBAL_VARIABLE, name.encode_utf16().collect()),
                    PK_DELETE_MODE,
                );
            }
            ctx.taint_key(
                (CUSTOM_MODE_ENABLE, "CustomMode".encode_utf16().collect()),
                PK_DELETE_MODE,
            );
        }
    }
    if function == 1
        && qemu10_buffer_check(
            ctx,
            q,
            o,
            Some(16 + 36 + a.name.len() as u64).and_then(|n| n.checked_add(a.data_size)),
        )
    {
        return Some(QEMU10_BUFFER_CHECK);
    }
    // Malformed names: we refuse, QEMU may accept.
    if !clean {
        let empty = a.name.len() == 2 && u == [0];
        let trailing = a.name.len() % 2 == 0
            && u.iter()
                .position(|&c| c == 0)
                .is_some_and(|p| p + 1 < u.len())
            && u.iter()
                .take_while(|&&c| c != 0)
                .all(|&c| !(0xd800..0xe000).contains(&c))
            && !key.1.is_empty();
        if trailing {
            // Bytes after the NUL: both answer by the name up to the NUL;
            // QEMU keeps the trailing bytes (seen again in enumerations).
            if set && q == Some(SUCCESS) {
                ctx.taint_key(key.clone(), NAME_CANONICAL);
            }
            if !same {
                return Some(ctx.taint.get(&key).copied().unwrap_or(NAME_CANONICAL));
            }
            return None;
        }
        let id = if empty { EMPTY_NAME } else { NAME_SCAN_BOUND };
        if o == Some(INVALID_PARAMETER) {
            if set && q == Some(SUCCESS) {
                ctx.taint_key(key, id);
            }
            return Some(id);
        }
    }
    // Differences the request itself explains, before any earlier taint
    // of the variable.
    if set && !same {
        // A name longer than the limit (deletes are not refused).
        if a.data_size > 0 && a.name.len() > MAX_NAME_SIZE && o == Some(INVALID_PARAMETER) {
            return Some(NAME_SIZE_LIMIT);
        }
        if a.guid == GLOBAL_VARIABLE
            && READ_ONLY_NAMES.iter().any(|n| named(&key.1, n))
            && o == Some(WRITE_PROTECTED)
            && q == Some(SUCCESS)
        {
            return Some(READ_ONLY);
        }
        if auth && o == Some(SUCCESS) && q == Some(SECURITY_VIOLATION) {
            if cert_is_content_info(a) {
                return Some(PKCS7_WRAPPED);
            }
            if a.guid == IMAGE_SECURITY_DATABASE {
                if named(&key.1, "db") || named(&key.1, "dbx") {
                    return Some(DB_SIGNERS);
                }
                if named(&key.1, "dbt") || named(&key.1, "dbr") {
                    return Some(DBT_DBR);
                }
            }
        }
    }
    if let Some(id) = ctx.taint.get(&key) {
        if !same {
            return Some(id);
        }
    }
    if !set {
        // GET of a variable hidden in this phase.
        if q == Some(ACCESS_DENIED) && o == Some(NOT_FOUND) {
            return Some(GET_INACCESSIBLE);
        }
        return ctx.global.filter(|_| !same);
    }
    // APPEND of nothing: QEMU deletes, we keep.
    if a.data_size == 0 && a.attributes & ATTR_APPEND != 0 {
        if q == Some(SUCCESS) {
            ctx.taint_key(key, APPEND_EMPTY);
        }
        return (!same).then_some(APPEND_EMPTY);
    }
    if !same {
        if ctx.pk_deleted && is_signature_db(&a.guid, &key.1) {
            // QEMU stays in user mode until the reset.
            return Some(PK_DELETE_MODE);
        }
        if ctx.end_of_dxe || ctx.ready_to_boot {
            if q == Some(SUCCESS) && o == Some(WRITE_PROTECTED) && ctx.var_state.contains(&a.guid) {
                return Some(POLICY_VAR_STATE);
            }
            if q == Some(SUCCESS)
                && matches!(o, Some(WRITE_PROTECTED) | Some(INVALID_PARAMETER))
                && ctx.namespace_wide.contains(&a.guid)
            {
                return Some(POLICY_NAMESPACE_WIDE);
            }
            if a.data_size == 0
                && a.attributes & ATTR_APPEND == 0
                && q == Some(INVALID_PARAMETER)
                && o == Some(SUCCESS)
                && ctx.policies_registered
            {
                return Some(POLICY_DELETE_CHECKS);
            }
        }
    }
    // Deleting an authenticated variable without a signature.
    if a.data_size == 0
        && q == Some(SUCCESS)
        && matches!(o, Some(INVALID_PARAMETER) | Some(WRITE_PROTECTED))
    {
        ctx.taint_key(key, UNAUTHENTICATED_DELETE);
        return Some(UNAUTHENTICATED_DELETE);
    }
    if auth && o == Some(SECURITY_VIOLATION) {
        match q {
            Some(UNSUPPORTED) => return Some(AUTH_DESCRIPTOR),
            Some(SUCCESS) => {
                ctx.taint_key(key, AUTH_TIME_FIELDS);
                return Some(AUTH_TIME_FIELDS);
            }
            _ => {}
        }
    }
    if is_secure_boot_key(&a.guid, &key.1) && o == Some(INVALID_PARAMETER) && q == Some(SUCCESS) {
        ctx.taint_key(key, UNAUTHENTICATED_DELETE);
        return Some(UNAUTHENTICATED_DELETE);
    }
    let _ = (ATTR_NV, ATTR_BS, ATTR_RT, &a.data);
    if !same {
        if let Some(id) = ctx.policy {
            return Some(id);
        }
        return ctx.global;
    }
    None
}

/// Follows the boot phase and policy lock from the requests.
fn track(ctx: &mut Context, req: &Req, qemu_reply: Option<&[u8]>, ours: Option<&[u8]>) {
    match req {
        Req::Event(g) if *g == END_OF_DXE_EVENT => ctx.end_of_dxe = true,
        Req::Event(g) if *g == READY_TO_BOOT_EVENT => ctx.ready_to_boot = true,
        Req::Event(g) if *g == EXIT_BOOT_SERVICES_EVENT => ctx.runtime = true,
        Req::Var { function: 5, .. } => ctx.ready_to_boot = true,
        Req::Var { function: 6, .. } => ctx.runtime = true,
        Req::Policy { command: 5, .. }
            if efi_status(qemu_reply, true) == Some(SUCCESS)
                || efi_status(ours, true) == Some(SUCCESS) =>
        {
            ctx.policy_lock_seen = true;
        }
        Req::Policy {
            command: 3,
            entry: Some(e),
            ..
        } if efi_status(qemu_reply, true) == Some(SUCCESS)
            || efi_status(ours, true) == Some(SUCCESS) =>
        {
            ctx.policies_registered = true;
            if e.nameless {
                ctx.namespace_wide.insert(e.namespace);
            }
            if e.lock_type == 3 {
                ctx.var_state.insert(e.namespace);
            }
        }
        _ => {}
    }
}

/// Requests QEMU 10.0.2 is known to crash on (docs/compat.md, "QEMU
/// 10.0"): the description if `request` is one, given our answer to it.
/// A run that crashes is repeated without the last such request before
/// the crash; any other crash fails the suite.
pub fn qemu10_crash_trigger(request: &[u8], ours: &MmResponse) -> Option<&'static str> {
    let Req::Var {
        function, access, ..
    } = decode(request)
    else {
        return None;
    };
    if function == 3 {
        let a = access?;
        let key = until_nul(&units(&a.name));
        return (a.attributes & ATTR_TIME_AUTH != 0
            && a.data_size > 0
            && !is_signature_db(&a.guid, &key)
            && u32_at(&a.data, 16) == Some(24))
        .then_some("a private authenticated variable written without CertData (SIGSEGV)");
    }
    (matches!(function, 1 | 2 | 4 | 11)
        && efi_status(ours.reply.as_deref(), false) == Some(BAD_BUFFER_SIZE))
    .then_some("a reply that does not fit BUFFER_SIZE − 24 (written past QEMU's buffer)")
}
