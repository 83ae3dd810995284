//! VarCheck policy protocol handler (gVarCheckPolicyLibMmiHandlerGuid), as
//! edk2's VarCheckPolicyLibMmiHandler (MdeModulePkg/Library/
//! VarCheckPolicyLib/VarCheckPolicyLib.c, edk2-stable202605) answers it.
//!
//! Each message is decoded once into a [`PolicyCommand`], in edk2's check
//! order: Signature and Revision, then the command's own size checks
//! (every one EFI_INVALID_PARAMETER, as edk2's handler answers them), then
//! the command. REGISTER's structural validation and lock checks are
//! VariablePolicyLib's RegisterVariablePolicy (docs/compat.md
//! policy-framing, policy-validation).

use std::fmt;

use super::Service;
use crate::codec::{MmBuffer, POLICY_ENTRY_HEADER_SIZE};
use crate::guid::Guid;
use crate::name::VarName;
use crate::policy::Policy;
use crate::status::{DeviceStatus, EfiStatus};

// The signature, revision and command numbers are written once, in codec.
use crate::codec::policy_command::{
    DISABLE as CMD_DISABLE, DUMP as CMD_DUMP, GET_INFO as CMD_GET_INFO,
    GET_LOCK_VAR_STATE_INFO as CMD_GET_LOCK_VAR_STATE_INFO, IS_ENABLED as CMD_IS_ENABLED,
    LOCK as CMD_LOCK, REGISTER as CMD_REGISTER, REVISION, SIGNATURE,
};

/// edk2's VAR_CHECK_POLICY_MM_COMM_BUFFER_SIZE (four pages).
const POLICY_COMM_BUFFER_SIZE: usize = 4 * 4096;
/// VAR_CHECK_POLICY_COMM_DUMP_PARAMS size.
const DUMP_PARAMS_SIZE: usize = 13;
/// VAR_CHECK_POLICY_COMM_GET_INFO_PARAMS_END: InputVendorGuid,
/// InputVariableNameSize, OutputVariableNameSize and the output entry.
const GET_INFO_PARAMS_SIZE: usize = 16 + 4 + 4 + POLICY_ENTRY_HEADER_SIZE;

/// Which GET_INFO flavour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InfoKind {
    /// GET_INFO: the governing policy and its name.
    Policy,
    /// GET_LOCK_VAR_STATE_INFO: its LOCK_ON_VAR_STATE part and the state
    /// variable's name.
    LockVarState,
}

/// One policy message, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicyCommand {
    /// Signature is not `VCPC` or Revision is not 1.
    BadHeader {
        signature: u32,
        revision: u32,
    },
    /// The command's parameters do not fit MessageLength, or a REGISTER
    /// entry's Version, or Size against MessageLength, is wrong (edk2's
    /// handler answers EFI_INVALID_PARAMETER before the command runs).
    Truncated {
        command: u32,
    },
    Disable,
    IsEnabled,
    /// The entry's `Size` bytes.
    Register(Vec<u8>),
    Dump {
        page: u32,
    },
    Lock,
    GetInfo(GetInfo),
    Unknown(u32),
}

/// GET_INFO / GET_LOCK_VAR_STATE_INFO parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GetInfo {
    pub kind: InfoKind,
    pub guid: Guid,
    /// The input name (`None`: not NUL-terminated inside InputVariableNameSize).
    pub name: Option<VarName>,
    pub input_name_size: u32,
    /// OutputVariableNameSize as sent: the caller's capacity.
    pub output_name_size: u32,
}

impl fmt::Display for PolicyCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyCommand::BadHeader {
                signature,
                revision,
            } => write!(
                f,
                "policy message with signature {signature:#010x} revision {revision}"
            ),
            PolicyCommand::Truncated { command } => {
                write!(f, "policy command {command} with short parameters")
            }
            PolicyCommand::Disable => f.write_str("policy DISABLE"),
            PolicyCommand::IsEnabled => f.write_str("policy IS_ENABLED"),
            PolicyCommand::Register(raw) => {
                write!(f, "policy REGISTER of a {}-byte entry", raw.len())
            }
            PolicyCommand::Dump { page } => write!(f, "policy DUMP page {page}"),
            PolicyCommand::Lock => f.write_str("policy LOCK"),
            PolicyCommand::GetInfo(g) => {
                let what = match g.kind {
                    InfoKind::Policy => "GET_INFO",
                    InfoKind::LockVarState => "GET_LOCK_VAR_STATE_INFO",
                };
                let name = g
                    .name
                    .as_ref()
                    .and_then(VarName::to_string_lossless)
                    .unwrap_or_else(|| "<malformed name>".into());
                write!(f, "policy {what} {:?}:{name}", g.guid)
            }
            PolicyCommand::Unknown(c) => write!(f, "unknown policy command {c}"),
        }
    }
}

/// The parameters' offset and the size edk2's handler requires for them.
struct Frame {
    /// Absolute offset of the parameters (after the policy header).
    q: usize,
    /// MessageLength.
    ml: u64,
    /// Size of the policy header.
    ph: u64,
}

impl Frame {
    /// MessageLength holds the header and `extra` bytes of parameters.
    fn holds(&self, extra: usize) -> bool {
        self.ph.saturating_add(extra as u64) <= self.ml
    }
}

impl PolicyCommand {
    /// Decodes a policy message of at least the policy header.
    pub fn decode(buf: &MmBuffer) -> PolicyCommand {
        let layout = buf.layout();
        let h = layout.mm_header();
        let f = Frame {
            q: layout.policy_payload_off(),
            ml: buf.message_length(),
            ph: layout.policy_header() as u64,
        };
        let signature = buf.u32(h).unwrap_or(0);
        let revision = buf.u32(h.saturating_add(4)).unwrap_or(0);
        if signature != SIGNATURE || revision != REVISION {
            return PolicyCommand::BadHeader {
                signature,
                revision,
            };
        }
        let command = buf.u32(h.saturating_add(8)).unwrap_or(0);
        let truncated = PolicyCommand::Truncated { command };
        match command {
            CMD_DISABLE => PolicyCommand::Disable,
            CMD_IS_ENABLED if f.holds(1) => PolicyCommand::IsEnabled,
            CMD_REGISTER => decode_register(buf, &f).unwrap_or(truncated),
            CMD_DUMP if f.holds(DUMP_PARAMS_SIZE.saturating_add(dump_page_size(buf))) => {
                PolicyCommand::Dump {
                    page: buf.u32(f.q).unwrap_or(0),
                }
            }
            CMD_LOCK => PolicyCommand::Lock,
            CMD_GET_INFO | CMD_GET_LOCK_VAR_STATE_INFO => {
                decode_get_info(buf, &f, command).unwrap_or(truncated)
            }
            CMD_IS_ENABLED | CMD_DUMP => truncated,
            other => PolicyCommand::Unknown(other),
        }
    }

    /// The command number (`None`: a bad header, which leaves a dump in
    /// progress alone).
    pub fn number(&self) -> Option<u32> {
        Some(match self {
            PolicyCommand::BadHeader { .. } => return None,
            PolicyCommand::Truncated { command } | PolicyCommand::Unknown(command) => *command,
            PolicyCommand::Disable => CMD_DISABLE,
            PolicyCommand::IsEnabled => CMD_IS_ENABLED,
            PolicyCommand::Register(_) => CMD_REGISTER,
            PolicyCommand::Dump { .. } => CMD_DUMP,
            PolicyCommand::Lock => CMD_LOCK,
            PolicyCommand::GetInfo(g) => match g.kind {
                InfoKind::Policy => CMD_GET_INFO,
                InfoKind::LockVarState => CMD_GET_LOCK_VAR_STATE_INFO,
            },
        })
    }
}

/// VAR_CHECK_POLICY_MM_DUMP_BUFFER_SIZE for this layout.
fn dump_page_size(buf: &MmBuffer) -> usize {
    POLICY_COMM_BUFFER_SIZE.saturating_sub(
        buf.layout()
            .policy_payload_off()
            .saturating_add(DUMP_PARAMS_SIZE),
    )
}

/// VAR_CHECK_POLICY_MM_GET_INFO_BUFFER_SIZE for this layout.
fn get_info_buffer_size(buf: &MmBuffer) -> usize {
    POLICY_COMM_BUFFER_SIZE.saturating_sub(
        buf.layout()
            .policy_payload_off()
            .saturating_add(GET_INFO_PARAMS_SIZE),
    )
}

/// REGISTER's framing in edk2's handler: the fixed entry fits, Version is
/// known, Size is at least the fixed entry and fits MessageLength.
fn decode_register(buf: &MmBuffer, f: &Frame) -> Option<PolicyCommand> {
    if !f.holds(POLICY_ENTRY_HEADER_SIZE) {
        return None;
    }
    let version = buf.u32(f.q)?;
    let size = usize::from(buf.u16(f.q.saturating_add(4))?);
    if version != crate::policy::POLICY_ENTRY_REVISION
        || size < POLICY_ENTRY_HEADER_SIZE
        || !f.holds(size)
    {
        return None;
    }
    Some(PolicyCommand::Register(buf.slice(f.q, size)?.into_owned()))
}

/// GET_INFO's framing: edk2 wants the whole four-page message, and an
/// input name that leaves room in it.
fn decode_get_info(buf: &MmBuffer, f: &Frame, command: u32) -> Option<PolicyCommand> {
    let room = get_info_buffer_size(buf);
    if !f.holds(GET_INFO_PARAMS_SIZE.saturating_add(room)) {
        return None;
    }
    let guid = buf.guid(f.q)?;
    let input_name_size = buf.u32(f.q.saturating_add(16))?;
    let output_name_size = buf.u32(f.q.saturating_add(20))?;
    if usize::try_from(input_name_size).ok()? > room {
        return None;
    }
    let name_off = f.q.saturating_add(GET_INFO_PARAMS_SIZE);
    let name = buf
        .slice(name_off, input_name_size as usize)
        .and_then(|a| VarName::parse_wire(&a).ok());
    let kind = if command == CMD_GET_INFO {
        InfoKind::Policy
    } else {
        InfoKind::LockVarState
    };
    Some(PolicyCommand::GetInfo(GetInfo {
        kind,
        guid,
        name,
        input_name_size,
        output_name_size,
    }))
}

impl Service {
    pub(super) fn policy_protocol(&mut self, buf: &mut MmBuffer) -> DeviceStatus {
        let layout = buf.layout();
        if buf.message_length() < layout.policy_header() as u64 {
            return DeviceStatus::ErrBadBufferSize;
        }
        let command = PolicyCommand::decode(buf);
        // Any other command ends a dump in progress (edk2 compares the
        // command number).
        if command.number().is_some_and(|n| n != CMD_DUMP) {
            self.dump_cache = None;
        }
        let result = self.run_policy_command(buf, command);
        let _ = buf.put_status(layout.policy_result_off(), result);
        DeviceStatus::Success
    }

    fn run_policy_command(&mut self, buf: &mut MmBuffer, command: PolicyCommand) -> EfiStatus {
        let q = buf.layout().policy_payload_off();
        match command {
            // compat: policy-signature (QEMU ignores Signature and Revision)
            PolicyCommand::BadHeader { .. } => EfiStatus::INVALID_PARAMETER,
            // compat: policy-framing (QEMU: EFI_BAD_BUFFER_SIZE)
            PolicyCommand::Truncated { .. } => EfiStatus::INVALID_PARAMETER,
            // compat: policy-disable (QEMU: always UNSUPPORTED)
            PolicyCommand::Disable => match self.policies.disable(self.config.allow_policy_disable)
            {
                Ok(()) => EfiStatus::SUCCESS,
                Err(e) => e,
            },
            PolicyCommand::IsEnabled => {
                let _ = buf.put_u8(q, u8::from(self.policies.is_enabled()));
                EfiStatus::SUCCESS
            }
            PolicyCommand::Register(raw) => self.policy_register(&raw),
            PolicyCommand::Dump { page } => self.policy_dump(buf, page),
            // compat: policy-lock-twice (edk2 LockVariablePolicy)
            PolicyCommand::Lock => match self.policies.lock_interface() {
                Ok(()) => EfiStatus::SUCCESS,
                Err(e) => e,
            },
            PolicyCommand::GetInfo(g) => self.policy_get_info(buf, &g),
            PolicyCommand::Unknown(_) => EfiStatus::UNSUPPORTED,
        }
    }

    /// edk2 RegisterVariablePolicy: interface lock, structure
    /// (IsValidVariablePolicyStructure), exact duplicate, then room.
    fn policy_register(&mut self, raw: &[u8]) -> EfiStatus {
        if self.policies.is_locked() {
            return EfiStatus::WRITE_PROTECTED;
        }
        // compat: policy-validation (QEMU stores malformed entries)
        let Some(p) = Policy::parse(raw) else {
            return EfiStatus::INVALID_PARAMETER;
        };
        let size = raw.len() as u64;
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
    fn policy_dump(&mut self, buf: &mut MmBuffer, requested: u32) -> EfiStatus {
        let q = buf.layout().policy_payload_off();
        let page_size = dump_page_size(buf);
        let requested = requested as usize;
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

    /// GET_INFO / GET_LOCK_VAR_STATE_INFO as edk2's handler with
    /// GetVariablePolicyInfo / GetLockOnVariableStateVariablePolicyInfo:
    /// the output entry is zeroed first; the output name goes after the
    /// input name, and that area is NUL-filled when there is no name.
    fn policy_get_info(&mut self, buf: &mut MmBuffer, g: &GetInfo) -> EfiStatus {
        let q = buf.layout().policy_payload_off();
        let room = get_info_buffer_size(buf);
        let allowed = room.saturating_sub(g.input_name_size as usize);
        let entry_off = q.saturating_add(24);
        let _ = buf.put_bytes(entry_off, &[0u8; POLICY_ENTRY_HEADER_SIZE]);
        let Some(name) = &g.name else {
            return EfiStatus::INVALID_PARAMETER;
        };
        let Some(policy) = self.policies.best_match(&g.guid, name).cloned() else {
            return EfiStatus::NOT_FOUND;
        };
        let (entry, out_name): (Vec<u8>, Option<VarName>) = match g.kind {
            InfoKind::Policy => (policy.header.encode().to_vec(), policy.name.clone()),
            InfoKind::LockVarState => {
                let Some(state) = &policy.state else {
                    return EfiStatus::NOT_FOUND;
                };
                let mut e = state.namespace.0.to_vec();
                e.push(state.value);
                e.push(0);
                (e, Some(state.name.clone()))
            }
        };
        let _ = buf.put_bytes(entry_off, &entry);
        let out_off = q
            .saturating_add(GET_INFO_PARAMS_SIZE)
            .saturating_add(g.input_name_size as usize);
        let size_off = q.saturating_add(20);
        let Some(n) = out_name else {
            let _ = buf.put_u32(size_off, 0);
            let _ = buf.put_bytes(out_off, &vec![0u8; allowed]);
            return EfiStatus::SUCCESS;
        };
        let wire = n.to_wire();
        let _ = buf.put_u32(size_off, u32::try_from(wire.len()).unwrap_or(u32::MAX));
        if wire.len() > g.output_name_size as usize || wire.len() > allowed {
            return EfiStatus::BUFFER_TOO_SMALL;
        }
        let _ = buf.put_bytes(out_off, &wire);
        EfiStatus::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{request, Layout};

    fn decode(req: &[u8]) -> PolicyCommand {
        let buf = MmBuffer::stage(req, 0x10000, Layout::X64).unwrap();
        PolicyCommand::decode(&buf)
    }

    #[test]
    fn decoded_in_edk2_check_order() {
        // A wrong signature decides before the command's own sizes.
        let mut req = request::policy(Layout::X64, CMD_IS_ENABLED, &[]);
        req[24] = b'X';
        assert!(matches!(decode(&req), PolicyCommand::BadHeader { .. }));
        let req = request::policy(Layout::X64, CMD_IS_ENABLED, &[]);
        assert_eq!(
            decode(&req),
            PolicyCommand::Truncated {
                command: CMD_IS_ENABLED
            }
        );
        assert_eq!(
            decode(&request::policy(Layout::X64, CMD_IS_ENABLED, &[0])),
            PolicyCommand::IsEnabled
        );
        // REGISTER: the fixed entry, Version, then Size against MessageLength.
        let mut entry = vec![0u8; 46];
        entry[0..4].copy_from_slice(&crate::policy::POLICY_ENTRY_REVISION.to_le_bytes());
        entry[4..6].copy_from_slice(&46u16.to_le_bytes());
        assert_eq!(
            decode(&request::policy(Layout::X64, CMD_REGISTER, &entry)),
            PolicyCommand::Register(entry.clone())
        );
        assert_eq!(
            decode(&request::policy(Layout::X64, CMD_REGISTER, &entry[..45])),
            PolicyCommand::Truncated {
                command: CMD_REGISTER
            }
        );
        entry[0] = 2;
        assert_eq!(
            decode(&request::policy(Layout::X64, CMD_REGISTER, &entry)),
            PolicyCommand::Truncated {
                command: CMD_REGISTER
            }
        );
        // DUMP and GET_INFO want edk2's four-page buffer.
        assert_eq!(
            decode(&request::policy(Layout::X64, CMD_DUMP, &[0; 13])),
            PolicyCommand::Truncated { command: CMD_DUMP }
        );
        assert_eq!(
            decode(&request::policy(Layout::X64, CMD_DUMP, &[0; 16384 - 44])),
            PolicyCommand::Dump { page: 0 }
        );
        assert_eq!(
            decode(&request::policy(Layout::X64, 99, &[])),
            PolicyCommand::Unknown(99)
        );
    }

    #[test]
    fn display_names_the_command() {
        assert_eq!(PolicyCommand::Lock.to_string(), "policy LOCK");
        assert_eq!(
            PolicyCommand::Register(vec![0; 52]).to_string(),
            "policy REGISTER of a 52-byte entry"
        );
        assert_eq!(
            PolicyCommand::Truncated { command: 2 }.to_string(),
            "policy command 2 with short parameters"
        );
        let info = PolicyCommand::GetInfo(GetInfo {
            kind: InfoKind::LockVarState,
            guid: Guid::default(),
            name: Some(VarName::from("Boot0001")),
            input_name_size: 18,
            output_name_size: 0,
        });
        assert!(info
            .to_string()
            .starts_with("policy GET_LOCK_VAR_STATE_INFO"));
        assert!(info.to_string().ends_with(":Boot0001"));
    }
}
