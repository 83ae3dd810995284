//! VarCheck policy protocol handler (gVarCheckPolicyLibMmiHandlerGuid).
//!
//! Framing checks follow QEMU (so malformed sizes get QEMU's status); the
//! commands QEMU leaves unimplemented (DISABLE, DUMP, GET_INFO,
//! GET_LOCK_VAR_STATE_INFO) and the structural validation of REGISTER follow
//! edk2's VarCheckPolicyLib / VariablePolicyLib (docs/compat.md).

use super::Service;
use crate::codec::{MmBuffer, LOCK_ON_VAR_STATE_HEADER_SIZE, POLICY_ENTRY_HEADER_SIZE};
use crate::name::VarName;
use crate::policy::{LockType, Policy};
use crate::status::{DeviceStatus, EfiStatus};

pub(crate) const SIGNATURE: u32 = u32::from_le_bytes(*b"VCPC");
pub(crate) const REVISION: u32 = 1;

/// VAR_CHECK_POLICY_COMMAND_DISABLE.
pub const CMD_DISABLE: u32 = 1;
/// VAR_CHECK_POLICY_COMMAND_IS_ENABLED.
pub const CMD_IS_ENABLED: u32 = 2;
/// VAR_CHECK_POLICY_COMMAND_REGISTER.
pub const CMD_REGISTER: u32 = 3;
/// VAR_CHECK_POLICY_COMMAND_DUMP.
pub const CMD_DUMP: u32 = 4;
/// VAR_CHECK_POLICY_COMMAND_LOCK.
pub const CMD_LOCK: u32 = 5;
/// VAR_CHECK_POLICY_COMMAND_GET_INFO.
pub const CMD_GET_INFO: u32 = 6;
/// VAR_CHECK_POLICY_COMMAND_GET_LOCK_VAR_STATE_INFO.
pub const CMD_GET_LOCK_VAR_STATE_INFO: u32 = 7;

/// edk2's VAR_CHECK_POLICY_MM_COMM_BUFFER_SIZE (four pages).
const POLICY_COMM_BUFFER_SIZE: usize = 4 * 4096;
/// VAR_CHECK_POLICY_COMM_DUMP_PARAMS size.
const DUMP_PARAMS_SIZE: usize = 13;
/// VAR_CHECK_POLICY_COMM_GET_INFO_PARAMS up to InputVariableName.
const GET_INFO_PARAMS_SIZE: usize = 16 + 4 + 4 + POLICY_ENTRY_HEADER_SIZE;

impl Service {
    pub(super) fn policy_protocol(&mut self, buf: &mut MmBuffer) -> DeviceStatus {
        let layout = buf.layout();
        let ph = layout.policy_header();
        let ml = buf.message_length();
        if ml < ph as u64 {
            return DeviceStatus::ErrBadBufferSize;
        }
        let h = layout.mm_header();
        let signature = buf.u32(h).unwrap_or(0);
        let revision = buf.u32(h.saturating_add(4)).unwrap_or(0);
        let command = buf.u32(h.saturating_add(8)).unwrap_or(0);
        let result = if signature != SIGNATURE || revision != REVISION {
            // compat: policy-signature (QEMU ignores Signature and Revision)
            EfiStatus::INVALID_PARAMETER
        } else {
            if command != CMD_DUMP {
                self.dump_cache = None;
            }
            match command {
                // compat: policy-disable (QEMU: always UNSUPPORTED)
                CMD_DISABLE => match self.policies.disable(self.config.allow_policy_disable) {
                    Ok(()) => EfiStatus::SUCCESS,
                    Err(e) => e,
                },
                CMD_IS_ENABLED => {
                    if ml < ph.saturating_add(1) as u64 {
                        EfiStatus::BAD_BUFFER_SIZE
                    } else {
                        let _ = buf.put_u8(
                            layout.policy_payload_off(),
                            u8::from(self.policies.is_enabled()),
                        );
                        EfiStatus::SUCCESS
                    }
                }
                CMD_REGISTER => self.policy_register(buf, ml),
                CMD_DUMP => self.policy_dump(buf, ml),
                CMD_LOCK => {
                    self.policies.lock();
                    EfiStatus::SUCCESS
                }
                CMD_GET_INFO | CMD_GET_LOCK_VAR_STATE_INFO => {
                    self.policy_get_info(buf, ml, command)
                }
                _ => EfiStatus::UNSUPPORTED,
            }
        };
        let _ = buf.put_status(layout.policy_result_off(), result);
        DeviceStatus::Success
    }

    fn policy_register(&mut self, buf: &MmBuffer, ml: u64) -> EfiStatus {
        if self.policies.is_locked() {
            return EfiStatus::WRITE_PROTECTED;
        }
        let layout = buf.layout();
        let ph = layout.policy_header() as u64;
        let q = layout.policy_payload_off();
        if ml < ph.saturating_add(POLICY_ENTRY_HEADER_SIZE as u64) {
            return EfiStatus::BAD_BUFFER_SIZE;
        }
        let size = u64::from(buf.u16(q.saturating_add(4)).unwrap_or(0));
        let name_off = u64::from(buf.u16(q.saturating_add(6)).unwrap_or(0));
        let lock_type = buf.u8(q.saturating_add(40)).unwrap_or(0);
        let hs = POLICY_ENTRY_HEADER_SIZE as u64;
        if ph.saturating_add(size) > ml
            || size < hs
            || name_off < hs
            || (lock_type == LockType::LockOnVarState as u8
                && name_off < hs.saturating_add(LOCK_ON_VAR_STATE_HEADER_SIZE as u64))
            || size < name_off
        {
            return EfiStatus::BAD_BUFFER_SIZE;
        }
        let Some(raw) = buf.slice(q, size as usize) else {
            return EfiStatus::BAD_BUFFER_SIZE;
        };
        match Policy::parse(&raw) {
            Some(p) => {
                if !self.policy_fits(&p, size) {
                    return EfiStatus::OUT_OF_RESOURCES;
                }
                match self.policies.register(p) {
                    Ok(()) => {
                        self.charge_policy(size);
                        EfiStatus::SUCCESS
                    }
                    Err(e) => e,
                }
            }
            // compat: policy-validation (QEMU stores malformed entries)
            None => EfiStatus::INVALID_PARAMETER,
        }
    }

    /// Whether a new policy of `size` bytes fits the storage in QEMU 11.1's
    /// accounting: checked after the duplicate check (QEMU 11.1.3 answers
    /// EFI_ALREADY_STARTED for a duplicate even when the store is full) and
    /// only for a policy that will be charged (not with
    /// `legacy_storage_accounting`).
    fn policy_fits(&self, p: &Policy, size: u64) -> bool {
        self.config.legacy_storage_accounting
            || self.policies.policies().iter().any(|q| q.same_target(p))
            || self.used_storage().saturating_add(size) <= self.config.max_storage
    }

    /// Charges a REGISTERed policy to the storage. LOCK_VARIABLE's LOCK_NOW
    /// policies are not charged, as in QEMU 11.1.3.
    fn charge_policy(&mut self, size: u64) {
        if !self.config.legacy_storage_accounting {
            self.policy_charge = self.policy_charge.saturating_add(size);
        }
    }

    /// Paginated DUMP as edk2: page 0 returns the total size and caches the
    /// table, pages 1.. return the data.
    fn policy_dump(&mut self, buf: &mut MmBuffer, ml: u64) -> EfiStatus {
        let layout = buf.layout();
        let q = layout.policy_payload_off();
        let page_size = POLICY_COMM_BUFFER_SIZE
            .saturating_sub(layout.policy_payload_off().saturating_add(DUMP_PARAMS_SIZE));
        let needed = layout
            .policy_header()
            .saturating_add(DUMP_PARAMS_SIZE)
            .saturating_add(page_size) as u64;
        if ml < needed {
            return EfiStatus::INVALID_PARAMETER;
        }
        let requested = buf.u32(q).unwrap_or(0) as usize;
        let write_params = |buf: &mut MmBuffer, total: usize, this_page: usize, more: bool| {
            let _ = buf.put_u32(
                q.saturating_add(4),
                u32::try_from(total).unwrap_or(u32::MAX),
            );
            let _ = buf.put_u32(
                q.saturating_add(8),
                u32::try_from(this_page).unwrap_or(u32::MAX),
            );
            let _ = buf.put_u8(q.saturating_add(12), u8::from(more));
        };
        if requested == 0 {
            let table = self.policies.dump();
            let total = table.len();
            write_params(buf, total, 0, total > 0);
            self.dump_cache = (total > 0).then_some(table);
            return EfiStatus::SUCCESS;
        }
        let Some(cache) = self.dump_cache.take() else {
            write_params(buf, 0, 0, false);
            return EfiStatus::TIMEOUT;
        };
        let pages = cache.len().div_ceil(page_size.max(1));
        if requested > pages {
            let total = cache.len();
            self.dump_cache = Some(cache);
            write_params(buf, total, page_size, true);
            return EfiStatus::INVALID_PARAMETER;
        }
        let start = page_size.saturating_mul(requested.saturating_sub(1));
        let chunk = cache.get(start..).unwrap_or_default();
        let chunk = chunk.get(..page_size.min(chunk.len())).unwrap_or_default();
        let last = requested == pages;
        write_params(buf, cache.len(), chunk.len(), !last);
        let _ = buf.put_bytes(q.saturating_add(DUMP_PARAMS_SIZE), chunk);
        if !last {
            self.dump_cache = Some(cache);
        }
        EfiStatus::SUCCESS
    }

    /// GET_INFO / GET_LOCK_VAR_STATE_INFO: the policy that governs a
    /// variable, with its name (or the state variable's name) after the
    /// input name.
    fn policy_get_info(&mut self, buf: &mut MmBuffer, ml: u64, command: u32) -> EfiStatus {
        let layout = buf.layout();
        let q = layout.policy_payload_off();
        let fixed = layout.policy_header().saturating_add(GET_INFO_PARAMS_SIZE) as u64;
        if ml < fixed {
            return EfiStatus::INVALID_PARAMETER;
        }
        let guid = buf.guid(q).unwrap_or_default();
        let in_size = u64::from(buf.u32(q.saturating_add(16)).unwrap_or(0));
        let Some(after_input) = fixed.checked_add(in_size).filter(|&e| e <= ml) else {
            return EfiStatus::INVALID_PARAMETER;
        };
        let name_off = q.saturating_add(GET_INFO_PARAMS_SIZE);
        let Some(name) = buf
            .slice(name_off, in_size as usize)
            .and_then(|a| VarName::parse_wire(&a).ok())
        else {
            return EfiStatus::INVALID_PARAMETER;
        };
        let Some(policy) = self.policies.best_match(&guid, &name).cloned() else {
            return EfiStatus::NOT_FOUND;
        };
        let out_off = name_off.saturating_add(in_size as usize);
        // OutputVariableNameSize is the caller's capacity (edk2: 0 asks for
        // the size and must get BUFFER_TOO_SMALL when there is a name).
        let requested = u64::from(buf.u32(q.saturating_add(20)).unwrap_or(0));
        let capacity = ml.saturating_sub(after_input).min(requested);
        let (entry, out_name): (Vec<u8>, Option<VarName>) = if command == CMD_GET_INFO {
            (policy.header.encode().to_vec(), policy.name.clone())
        } else {
            let Some(state) = &policy.state else {
                return EfiStatus::NOT_FOUND;
            };
            let mut e = state.namespace.0.to_vec();
            e.push(state.value);
            e.push(0);
            (e, Some(state.name.clone()))
        };
        let _ = buf.put_bytes(q.saturating_add(24), &entry);
        match out_name {
            None => {
                let _ = buf.put_u32(q.saturating_add(20), 0);
                EfiStatus::SUCCESS
            }
            Some(n) => {
                let wire = n.to_wire();
                let _ = buf.put_u32(
                    q.saturating_add(20),
                    u32::try_from(wire.len()).unwrap_or(u32::MAX),
                );
                if (wire.len() as u64) > capacity {
                    return EfiStatus::BUFFER_TOO_SMALL;
                }
                let _ = buf.put_bytes(out_off, &wire);
                EfiStatus::SUCCESS
            }
        }
    }
}
