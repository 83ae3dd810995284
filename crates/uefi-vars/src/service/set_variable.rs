//! The SetVariable decision procedure, in edk2's order
//! (docs/reference/variables.md §4):
//!
//! 1. [`validate`](Service::validate): edk2 VariableServiceSetVariable's
//!    parameter checks (MdeModulePkg/Universal/Variable/RuntimeDxe/Variable.c):
//!    name, reserved attribute bits, the attribute combinations, the
//!    authentication descriptor's framing, the size limits;
//! 2. [`var_check`](Service::var_check): VarCheckLibSetVariableCheck (read-only
//!    variables, the variable policies and the HwErrRec name rule, the
//!    last two from EndOfDxe on);
//! 3. [`check_existing`](Service::check_existing): the stored variable's
//!    access at runtime and its attributes;
//! 4. [`authorise`](Service::authorise): AuthVariableLibProcessVariable
//!    (SecurityPkg/Library/AuthVariableLib/AuthService.c);
//! 5. [`plan`](Service::plan): UpdateVariable (delete, APPEND, runtime
//!    rules);
//! 6. [`commit`](Service::commit): the storage quota, the durable write,
//!    the store and the PK side effect.
//!
//! Where an answer differs from QEMU's, docs/compat.md has the row named in
//! the `compat:` comment (and [`Refusal::compat_id`]).

use std::cmp::Ordering;

use super::authvars;
use super::Service;
use crate::auth::{parse_auth2, Auth2, AuthClass, DescriptorFault, SecureBootDb};
use crate::codec::Auth2Header;
use crate::guid::{Guid, CUSTOM_MODE_ENABLE, HARDWARE_ERROR_VARIABLE, SECURE_BOOT_ENABLE_DISABLE};
use crate::name::VarName;
use crate::persist::Change;
use crate::policy::WriteRequest;
use crate::refusal::{Refusal, Refused};
use crate::siglist;
use crate::status::EfiStatus;
use crate::time::EfiTime;
use crate::variable::{attr, VarKey, Variable};

/// edk2's EFI_VARIABLE_ATTRIBUTES_MASK (RuntimeDxe/Variable.h): every bit
/// but AUTHENTICATED_WRITE_ACCESS, which AuthVariableLib judges.
const ATTRIBUTES_MASK: u32 = attr::NON_VOLATILE
    | attr::BOOTSERVICE_ACCESS
    | attr::RUNTIME_ACCESS
    | attr::HARDWARE_ERROR_RECORD
    | attr::TIME_BASED_AUTHENTICATED_WRITE_ACCESS
    | attr::APPEND_WRITE;

const ACCESS: u32 = attr::BOOTSERVICE_ACCESS | attr::RUNTIME_ACCESS;

/// edk2 AUTHINFO_SIZE (MdeModulePkg/Include/Library/AuthVariableLib.h):
/// MonotonicCount, WIN_CERTIFICATE_UEFI_GUID up to CertData and an
/// EFI_CERT_BLOCK_RSA_2048_SHA256, the only DataSize edk2 lets through with
/// AUTHENTICATED_WRITE_ACCESS.
const AUTHINFO_SIZE: usize = 8 + 24 + 16 + 256 + 256;

/// edk2 PcdMaxHardwareErrorVariableSize (MdeModulePkg.dec default) and the
/// AUTHENTICATED_VARIABLE_HEADER it includes.
const MAX_HW_ERROR_VARIABLE_SIZE: u64 = 0x8000;
const VARIABLE_HEADER_SIZE: u64 = 60;

/// One SetVariable as the guest (or a host tool) made it.
pub(super) struct SetRequest<'a> {
    pub(super) guid: Guid,
    pub(super) name: VarName,
    pub(super) attributes: u32,
    pub(super) data: &'a [u8],
}

impl SetRequest<'_> {
    fn key(&self) -> VarKey {
        VarKey::new(self.guid, self.name.clone())
    }

    fn has(&self, bits: u32) -> bool {
        self.attributes & bits != 0
    }

    fn append(&self) -> bool {
        self.has(attr::APPEND_WRITE)
    }
}

/// What the parameter checks found in the data.
struct Validated<'a> {
    /// The descriptor of a TIME_BASED_AUTHENTICATED_WRITE_ACCESS write
    /// (or what is wrong with it beyond its framing).
    auth: Option<Result<Auth2<'a>, DescriptorFault>>,
    /// The value after any descriptor.
    payload: &'a [u8],
    /// edk2's delete: no data (and no APPEND), or no access attribute.
    delete: bool,
}

/// The authorisation of a write: timestamp and signer to store.
#[derive(Default)]
struct Authorised {
    time: Option<EfiTime>,
    digest: Option<Vec<u8>>,
}

/// What the write does to the store.
enum Plan {
    Put(Variable),
    Delete,
}

impl Service {
    /// SetVariable: the guest's status; a refusal is also recorded
    /// ([`Service::take_refusals`]).
    pub(super) fn set(
        &mut self,
        guid: Guid,
        name: VarName,
        attributes: u32,
        data: &[u8],
    ) -> EfiStatus {
        let req = SetRequest {
            guid,
            name,
            attributes,
            data,
        };
        match self.try_set(&req) {
            Ok(()) => EfiStatus::SUCCESS,
            Err(refusal) => {
                let status = refusal.status();
                self.record_refusal(Refused {
                    guid: req.guid,
                    name: req.name,
                    refusal,
                });
                status
            }
        }
    }

    fn try_set(&mut self, req: &SetRequest<'_>) -> Result<(), Refusal> {
        let v = self.validate(req)?;
        let key = req.key();
        let old = self.store.get(&key).cloned();
        self.var_check(req, &v, old.as_ref())?;
        self.check_existing(req, old.as_ref())?;
        let auth = self.authorise(req, &v, old.as_ref())?;
        match self.plan(req, &v, auth, old.as_ref())? {
            Some(plan) => self.commit(&key, old.as_ref(), plan),
            None => Ok(()),
        }
    }

    /// edk2 VariableServiceSetVariable's checks before it looks at the
    /// store, in its order.
    fn validate<'a>(&self, req: &SetRequest<'a>) -> Result<Validated<'a>, Refusal> {
        let attributes = req.attributes;
        // compat: empty-name (QEMU accepts it and enumeration then loops)
        if req.name.is_empty() {
            return Err(Refusal::EmptyName);
        }
        // compat: attr-reserved-bits (QEMU: EFI_UNSUPPORTED, deletes ignore them)
        if attributes & !(ATTRIBUTES_MASK | attr::AUTHENTICATED_WRITE_ACCESS) != 0 {
            return Err(Refusal::ReservedAttributes { attributes });
        }
        // compat: attr-runtime-without-bs, attr-nv-only (QEMU judges by
        // the phase's access bit)
        if attributes & ACCESS == attr::RUNTIME_ACCESS {
            return Err(Refusal::RuntimeWithoutBootServices { attributes });
        }
        if attributes & ATTRIBUTES_MASK == attr::NON_VOLATILE {
            return Err(Refusal::NonVolatileOnly { attributes });
        }
        let payload = self.payload(req)?;
        let v = Validated {
            auth: req
                .has(attr::TIME_BASED_AUTHENTICATED_WRITE_ACCESS)
                .then(|| parse_auth2(req.data)),
            payload,
            delete: (payload.is_empty() && !req.append()) || !req.has(ACCESS),
        };
        self.check_sizes(req, payload.len())?;
        Ok(v)
    }

    /// The value after the authentication descriptor, edk2's PayloadSize.
    fn payload<'a>(&self, req: &SetRequest<'a>) -> Result<&'a [u8], Refusal> {
        let aw = req.has(attr::AUTHENTICATED_WRITE_ACCESS);
        if aw {
            // compat: auth-write-access (QEMU deletes on DataSize 0)
            if req.has(attr::TIME_BASED_AUTHENTICATED_WRITE_ACCESS)
                || req.data.len() != AUTHINFO_SIZE
            {
                return Err(Refusal::CountBasedAuthentication);
            }
            return Ok(&[]);
        }
        if !req.has(attr::TIME_BASED_AUTHENTICATED_WRITE_ACCESS) {
            return Ok(req.data);
        }
        let framing = Refusal::Descriptor(DescriptorFault::Framing);
        let hdr = Auth2Header::parse(req.data).ok_or(framing.clone())?;
        let off = usize::try_from(hdr.length)
            .ok()
            .and_then(|l| l.checked_add(EfiTime::SIZE));
        match off {
            Some(off) if hdr.length >= 24 && off <= req.data.len() => {
                req.data.get(off..).ok_or(framing)
            }
            _ => Err(framing),
        }
    }

    /// The size limits: HwErrRec's, MaxVariableSize, and our name limit.
    fn check_sizes(&self, req: &SetRequest<'_>, payload: usize) -> Result<(), Refusal> {
        let name_size = req.name.wire_size();
        // compat: name-size-limit (QEMU: bounded only by the storage size)
        if !req.data.is_empty() && name_size > self.config.max_name_size {
            return Err(Refusal::NameTooLong {
                size: name_size,
                max: self.config.max_name_size,
            });
        }
        if req.has(attr::HARDWARE_ERROR_RECORD) {
            return check_hw_error_size(name_size, payload);
        }
        self.check_variable_size(&req.name, payload)
    }

    /// edk2's MaxVariableSize check (name with NUL + payload), enforced only
    /// when `Config::max_variable_size` is set (compat: max-variable-size).
    fn check_variable_size(&self, name: &VarName, payload: usize) -> Result<(), Refusal> {
        let size = name.wire_size().saturating_add(payload as u64);
        match self.config.max_variable_size {
            Some(max) if size > max => Err(Refusal::TooLarge { size, max }),
            _ => Ok(()),
        }
    }

    /// VarCheckLibSetVariableCheck: read-only variables, this service's
    /// settings, and from EndOfDxe the HwErrRec rule and the policies.
    fn var_check(
        &self,
        req: &SetRequest<'_>,
        v: &Validated<'_>,
        old: Option<&Variable>,
    ) -> Result<(), Refusal> {
        // compat: read-only (QEMU lets the guest overwrite them)
        if authvars::is_read_only(&req.guid, &req.name) {
            return Err(Refusal::ReadOnly);
        }
        if self.phase.end_of_dxe {
            // compat: hw-error-record (VarCheckUefiLib IsHwErrRecVariable)
            let deleting = v.delete || req.attributes == 0;
            if !deleting && req.has(attr::HARDWARE_ERROR_RECORD) && !is_hw_err_rec(req) {
                return Err(Refusal::HwErrRecName);
            }
        }
        // compat: varcheck-property, uefi-defined-variables (edk2
        // VarCheckLibSetVariableCheck: the registered properties and
        // VarCheckUefiLib's checks of the UEFI-defined variables, then the
        // policy handler; all from EndOfDxe on)
        self.varcheck
            .check_write(&req.guid, &req.name, req.attributes, v.payload)
            .map_err(|status| Refusal::VarCheck { status })?;
        if self.phase.end_of_dxe {
            self.check_policy(req, v, old)?;
        }
        self.check_configuration(req, v, old)
    }

    fn check_policy(
        &self,
        req: &SetRequest<'_>,
        v: &Validated<'_>,
        old: Option<&Variable>,
    ) -> Result<(), Refusal> {
        let w = WriteRequest {
            guid: &req.guid,
            name: &req.name,
            attributes: req.attributes,
            data_size: v.payload.len() as u64,
            // ValidateSetVariable's own notion: no data and no APPEND
            is_delete: v.payload.is_empty() && !req.append(),
            exists: old.is_some(),
        };
        self.policies
            .check_write(&w, |g, n| {
                self.store
                    .get(&VarKey::new(*g, n.clone()))
                    .map(|v| v.data.clone())
            })
            .map_err(|status| Refusal::Policy { status })
    }

    /// QEMU's `force-secure-boot` and `disable-custom-mode`.
    fn check_configuration(
        &self,
        req: &SetRequest<'_>,
        v: &Validated<'_>,
        old: Option<&Variable>,
    ) -> Result<(), Refusal> {
        let is = |g: &Guid, n: &str| req.guid == *g && req.name.eq_str(n);
        let first = if v.delete {
            old.and_then(|o| o.data.first().copied())
        } else {
            v.payload.first().copied()
        };
        let sbe = is(&SECURE_BOOT_ENABLE_DISABLE, "SecureBootEnable");
        if self.config.force_secure_boot && sbe && first != Some(1) {
            return Err(Refusal::Configuration);
        }
        if self.config.disable_custom_mode && is(&CUSTOM_MODE_ENABLE, "CustomMode") {
            return Err(Refusal::Configuration);
        }
        Ok(())
    }

    /// The checks VariableServiceSetVariable makes on the stored variable.
    fn check_existing(&self, req: &SetRequest<'_>, old: Option<&Variable>) -> Result<(), Refusal> {
        let Some(o) = old else {
            return Ok(());
        };
        // compat: runtime-write (QEMU: EFI_ACCESS_DENIED)
        if self.phase.exit_boot_services && o.attributes & attr::RUNTIME_ACCESS == 0 {
            return Err(Refusal::RuntimeNotAccessible);
        }
        // compat: delete-attributes (QEMU ignores a delete's attributes)
        let requested = req.attributes & !attr::APPEND_WRITE;
        if req.attributes != 0 && requested != o.attributes {
            return Err(Refusal::AttributeMismatch {
                stored: o.attributes,
                requested: req.attributes,
            });
        }
        Ok(())
    }

    /// AuthVariableLibProcessVariable: the key hierarchy for the Secure
    /// Boot databases (ProcessVarWithPk, ProcessVarWithKek), the signer's
    /// identity for private authenticated variables (ProcessVariable).
    fn authorise(
        &self,
        req: &SetRequest<'_>,
        v: &Validated<'_>,
        old: Option<&Variable>,
    ) -> Result<Authorised, Refusal> {
        let class = AuthClass::classify(&req.guid, &req.name);
        let time_auth = req.has(attr::TIME_BASED_AUTHENTICATED_WRITE_ACCESS);
        if processed_with_pk(req) {
            if !req.has(attr::NON_VOLATILE) || !time_auth {
                return Err(Self::unauthenticated(req, v, old));
            }
            let sb_db = SecureBootDb::classify(&req.guid, &req.name).is_some();
            if sb_db && !v.delete && req.attributes & !attr::APPEND_WRITE != attr::SECURE_BOOT_DB {
                return Err(Refusal::SecureBootDbAttributes {
                    attributes: req.attributes,
                });
            }
        } else if req.has(attr::AUTHENTICATED_WRITE_ACCESS) {
            return Err(Refusal::CountBasedAuthentication);
        } else if !time_auth {
            if old.is_some_and(Variable::is_time_auth) {
                // compat: unauthenticated-delete (QEMU deletes without a signature)
                return Err(Refusal::UnauthenticatedDelete { database: false });
            }
            return Ok(Authorised::default());
        }
        let auth = match &v.auth {
            Some(Ok(a)) => a,
            Some(Err(fault)) => return Err(Refusal::Descriptor(*fault)),
            None => return Err(Refusal::Descriptor(DescriptorFault::Framing)),
        };
        let digest = self.authenticate(&req.guid, &req.name, req.attributes, class, auth, old)?;
        let time = self.authorised_time(req, auth, old)?;
        Ok(Authorised {
            time: Some(time),
            digest,
        })
    }

    /// A write without TIME_BASED_AUTHENTICATED_WRITE_ACCESS (or
    /// NON_VOLATILE) to a Secure Boot database: EFI_INVALID_PARAMETER
    /// (ProcessVarWithPk, ProcessVarWithKek).
    fn unauthenticated(req: &SetRequest<'_>, v: &Validated<'_>, old: Option<&Variable>) -> Refusal {
        if v.delete && old.is_some() {
            // compat: unauthenticated-delete (QEMU deletes without a signature)
            Refusal::UnauthenticatedDelete { database: true }
        } else {
            Refusal::SecureBootDbAttributes {
                attributes: req.attributes,
            }
        }
    }

    /// The timestamp to store: strictly later than the stored one (edk2
    /// VerifyTimeBasedPayload), or for APPEND the later of the two (edk2
    /// UpdateVariable).
    fn authorised_time(
        &self,
        req: &SetRequest<'_>,
        auth: &Auth2<'_>,
        old: Option<&Variable>,
    ) -> Result<EfiTime, Refusal> {
        let new = auth.timestamp;
        let Some(old) = old else {
            return Ok(new);
        };
        let order = old.time.chrono_cmp(&new);
        if req.append() {
            return Ok(if order == Ordering::Greater {
                old.time
            } else {
                new
            });
        }
        // compat: replay (edk2 wants a strictly later time; QEMU accepts equal)
        if order != Ordering::Less {
            return Err(Refusal::Replay {
                stored: old.time,
                new,
            });
        }
        Ok(new)
    }

    /// UpdateVariable: delete, APPEND, create, with its runtime rules.
    /// `None`: nothing changes.
    fn plan(
        &self,
        req: &SetRequest<'_>,
        v: &Validated<'_>,
        auth: Authorised,
        old: Option<&Variable>,
    ) -> Result<Option<Plan>, Refusal> {
        let runtime = self.phase.exit_boot_services;
        let Some(old) = old else {
            if v.payload.is_empty() && req.append() {
                // compat: append-empty (UEFI: no-op; QEMU deletes)
                return Ok(None);
            }
            if v.delete {
                // edk2 UpdateVariable answers EFI_NOT_FOUND; QEMU answers
                // EFI_SUCCESS, and real firmware sends such deletes on
                // every boot (the captures in tests/data), so QEMU's
                // answer stays.
                return Ok(None);
            }
            let nv_rt = attr::NON_VOLATILE | attr::RUNTIME_ACCESS;
            if runtime && req.attributes & nv_rt != nv_rt {
                // compat: runtime-write
                return Err(Refusal::RuntimeCreate {
                    attributes: req.attributes,
                });
            }
            return Ok(Some(Plan::Put(self.new_variable(
                req,
                v.payload.to_vec(),
                auth,
            ))));
        };
        if runtime && !old.is_non_volatile() {
            // compat: runtime-write (QEMU lets the OS change them)
            return Err(Refusal::RuntimeVolatile);
        }
        if v.delete {
            return Ok(Some(Plan::Delete));
        }
        if !req.append() {
            return Ok(Some(Plan::Put(self.new_variable(
                req,
                v.payload.to_vec(),
                auth,
            ))));
        }
        if v.payload.is_empty() {
            // compat: append-empty
            return Ok(None);
        }
        let data = self.appended(req, &old.data, v.payload)?;
        Ok(Some(Plan::Put(self.new_variable(req, data, auth))))
    }

    /// APPEND_WRITE: the Secure Boot databases merge their signature lists
    /// (edk2 FilterSignatureList, compat: append-merge); every other
    /// variable gets the new bytes after the old (compat:
    /// append-any-variable; QEMU: EFI_UNSUPPORTED).
    fn appended(&self, req: &SetRequest<'_>, old: &[u8], new: &[u8]) -> Result<Vec<u8>, Refusal> {
        let merged = if AuthClass::classify(&req.guid, &req.name) == AuthClass::Private {
            [old, new].concat()
        } else {
            siglist::append(old, new).ok_or(Refusal::NotSignatureList {
                problem: siglist::FormatProblem::Malformed,
            })?
        };
        if req.has(attr::HARDWARE_ERROR_RECORD) {
            check_hw_error_size(req.name.wire_size(), merged.len())?;
        } else {
            self.check_variable_size(&req.name, merged.len())?;
        }
        Ok(merged)
    }

    fn new_variable(&self, req: &SetRequest<'_>, data: Vec<u8>, auth: Authorised) -> Variable {
        let mut var = Variable::new(req.guid, req.name.clone(), req.attributes, data);
        if let Some(t) = auth.time {
            var.time = t;
        }
        var.digest = auth.digest;
        var
    }

    /// The storage quota, then the durable write before the store takes
    /// the change, then the PK side effect.
    fn commit(&mut self, key: &VarKey, old: Option<&Variable>, plan: Plan) -> Result<(), Refusal> {
        let new = match plan {
            Plan::Put(v) => Some(v),
            Plan::Delete => None,
        };
        let cost_old = old.map_or(0, |v| self.store.cost(v));
        let cost_new = new.as_ref().map_or(0, |v| self.store.cost(v));
        let needed = self
            .used_storage()
            .saturating_sub(cost_old)
            .saturating_add(cost_new);
        if needed > self.config.max_storage {
            return Err(Refusal::OutOfResources);
        }
        let non_volatile = new.as_ref().or(old).is_some_and(Variable::is_non_volatile);
        if non_volatile {
            // compat: store-write-failure (durable first, or nothing changes)
            self.persist_change(Change::to(key, new.as_ref()))
                .map_err(|_| Refusal::StoreWriteFailed)?;
        }
        self.store.remove(key);
        if let Some(n) = new {
            self.store.put(n);
        }
        if SecureBootDb::classify(&key.guid, &key.name) == Some(SecureBootDb::Pk) {
            // Enrolling or deleting PK switches the platform mode at once
            // (compat: pk-delete-mode; QEMU recomputes only on enrollment).
            self.init_secure_boot_state();
            if let Err(e) = self.save_store() {
                self.record_error(e);
            }
        }
        Ok(())
    }
}

/// The variables AuthVariableLibProcessVariable hands to ProcessVarWithPk
/// (and ProcessVarWithKek): PK, KEK, db, dbx and dbt, which must be
/// NON_VOLATILE and time-based authenticated (compat: dbt-dbr for dbt).
fn processed_with_pk(req: &SetRequest<'_>) -> bool {
    let dbt = crate::well_known::DBT.is(&req.guid, &req.name);
    SecureBootDb::classify(&req.guid, &req.name).is_some() || dbt
}

/// edk2's limit for a hardware error record: name (with NUL) and payload
/// within PcdMaxHardwareErrorVariableSize less the variable header.
fn check_hw_error_size(name_size: u64, payload: usize) -> Result<(), Refusal> {
    let size = name_size.saturating_add(payload as u64);
    let max = MAX_HW_ERROR_VARIABLE_SIZE.saturating_sub(VARIABLE_HEADER_SIZE);
    if size > max {
        // compat: hw-error-record (QEMU has no such limit)
        return Err(Refusal::HwErrRecTooLarge { size, max });
    }
    Ok(())
}

/// VarCheckUefiLib IsHwErrRecVariable: the hardware error namespace and
/// `HwErrRec` followed by four upper-case hexadecimal digits.
fn is_hw_err_rec(req: &SetRequest<'_>) -> bool {
    let units = req.name.units();
    let prefix: Vec<u16> = "HwErrRec".encode_utf16().collect();
    let hex = |u: &u16| matches!(*u, 0x30..=0x39 | 0x41..=0x46);
    req.guid == HARDWARE_ERROR_VARIABLE
        && units.len() == 12
        && units.starts_with(&prefix)
        && units.iter().skip(8).all(hex)
}
