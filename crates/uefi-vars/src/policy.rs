//! Variable policy engine (edk2 VariablePolicyLib semantics): registration
//! with edk2's structural validation, best-match lookup by priority, and the
//! SetVariable check.
//!
//! Matching follows edk2, not QEMU: a namespace-wide (nameless) policy
//! matches every variable in its namespace at the lowest priority, and `#`
//! matches one ASCII hex digit. Among candidates the lowest priority number
//! wins (0 = exact name, n = n wildcards, 255 = nameless); ties go to the
//! earliest registered.

use crate::codec::{PolicyEntryHeader, LOCK_ON_VAR_STATE_HEADER_SIZE, POLICY_ENTRY_HEADER_SIZE};
use crate::guid::Guid;
use crate::name::VarName;
use crate::status::EfiStatus;

/// VARIABLE_POLICY_ENTRY_REVISION (1.0).
pub const POLICY_ENTRY_REVISION: u32 = 0x0001_0000;
/// VARIABLE_POLICY_NO_MAX_SIZE: no upper bound on the data size.
pub const NO_MAX_SIZE: u32 = u32::MAX;
const MATCH_PRIORITY_MIN: usize = 255;

/// Lock types (VARIABLE_POLICY_TYPE_*).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LockType {
    /// VARIABLE_POLICY_TYPE_NO_LOCK: only the size and attribute rules.
    NoLock = 0,
    /// VARIABLE_POLICY_TYPE_LOCK_NOW: no write once the interface is locked.
    LockNow = 1,
    /// VARIABLE_POLICY_TYPE_LOCK_ON_CREATE: no write once the variable exists.
    LockOnCreate = 2,
    /// VARIABLE_POLICY_TYPE_LOCK_ON_VAR_STATE: no write while another variable holds a value.
    LockOnVarState = 3,
}

impl LockType {
    fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => LockType::NoLock,
            1 => LockType::LockNow,
            2 => LockType::LockOnCreate,
            3 => LockType::LockOnVarState,
            _ => return None,
        })
    }
}

/// The state variable a LOCK_ON_VAR_STATE policy watches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VarStateLock {
    /// Namespace of the watched variable.
    pub namespace: Guid,
    /// The value (one byte) that locks.
    pub value: u8,
    /// Name of the watched variable.
    pub name: VarName,
}

/// One registered policy, kept with its raw entry for DUMP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// The entry's fixed header.
    pub header: PolicyEntryHeader,
    /// Its lock type.
    pub lock: LockType,
    /// `None`: namespace-wide.
    pub name: Option<VarName>,
    /// For LOCK_ON_VAR_STATE: the watched variable.
    pub state: Option<VarStateLock>,
    /// The entry as registered, for DUMP.
    pub raw: Vec<u8>,
}

impl Policy {
    /// Validates a raw VARIABLE_POLICY_ENTRY as edk2's
    /// `IsValidVariablePolicyStructure` does; `None` means
    /// EFI_INVALID_PARAMETER.
    pub fn parse(raw: &[u8]) -> Option<Policy> {
        let header = PolicyEntryHeader::parse(raw)?;
        let size = usize::from(header.size);
        let name_off = usize::from(header.offset_to_name);
        let raw = raw.get(..size)?;
        if header.version != POLICY_ENTRY_REVISION
            || size < POLICY_ENTRY_HEADER_SIZE
            || name_off < POLICY_ENTRY_HEADER_SIZE
            || size < name_off
            || header.max_size == 0
        {
            return None;
        }
        let lock = LockType::from_u8(header.lock_policy_type)?;
        let state = if lock == LockType::LockOnVarState {
            let st = raw.get(POLICY_ENTRY_HEADER_SIZE..name_off)?;
            let namespace = Guid(st.get(0..16)?.try_into().ok()?);
            let value = *st.get(16)?;
            // An empty state name ("" with its NUL) is valid in edk2 and QEMU.
            let name = terminated_exactly(st.get(LOCK_ON_VAR_STATE_HEADER_SIZE..)?)?;
            Some(VarStateLock {
                namespace,
                value,
                name,
            })
        } else {
            if name_off != POLICY_ENTRY_HEADER_SIZE {
                return None;
            }
            None
        };
        let name = if size == name_off {
            None
        } else {
            let n = terminated_exactly(raw.get(name_off..)?)?;
            let wildcards = n.units().iter().filter(|&&u| u == u16::from(b'#')).count();
            if wildcards > MATCH_PRIORITY_MIN {
                return None;
            }
            Some(n)
        };
        Some(Policy {
            header,
            lock,
            name,
            state,
            raw: raw.to_vec(),
        })
    }

    /// A LOCK_NOW policy for one variable (the legacy VariableLock request).
    pub fn lock_now(namespace: Guid, name: &VarName) -> Policy {
        let name_bytes = name.to_wire();
        let size = POLICY_ENTRY_HEADER_SIZE.saturating_add(name_bytes.len());
        let header = PolicyEntryHeader {
            version: POLICY_ENTRY_REVISION,
            size: u16::try_from(size).unwrap_or(u16::MAX),
            offset_to_name: POLICY_ENTRY_HEADER_SIZE as u16,
            namespace,
            min_size: 0,
            max_size: NO_MAX_SIZE,
            attributes_must_have: 0,
            attributes_cant_have: 0,
            lock_policy_type: LockType::LockNow as u8,
        };
        let mut raw = header.encode().to_vec();
        raw.extend_from_slice(&name_bytes);
        Policy {
            header,
            lock: LockType::LockNow,
            name: Some(name.clone()),
            state: None,
            raw,
        }
    }

    /// edk2 match priority of this policy for a variable, `None` if it does
    /// not apply.
    pub(crate) fn match_priority(&self, guid: &Guid, name: &VarName) -> Option<usize> {
        if self.header.namespace != *guid {
            return None;
        }
        let Some(pname) = &self.name else {
            return Some(MATCH_PRIORITY_MIN);
        };
        let (p, v) = (pname.units(), name.units());
        if p.len() != v.len() {
            return None;
        }
        let mut priority: usize = 0;
        for (&pc, &vc) in p.iter().zip(v) {
            // '#' matches a hex digit only, never a literal '#' (edk2
            // EvaluatePolicyMatch, QEMU uefi_str_equal_ex).
            if pc == u16::from(b'#') {
                if !is_hex_digit(vc) {
                    return None;
                }
                priority = priority.saturating_add(1);
            } else if pc != vc {
                return None;
            }
        }
        Some(priority)
    }

    pub(crate) fn same_target(&self, other: &Policy) -> bool {
        self.header.namespace == other.header.namespace && self.name == other.name
    }
}

fn is_hex_digit(u: u16) -> bool {
    u8::try_from(u).is_ok_and(|b| b.is_ascii_hexdigit())
}

/// A UCS-2 string that must end with its NUL exactly at the end of `area`.
fn terminated_exactly(area: &[u8]) -> Option<VarName> {
    if area.len() < 2 || area.len() % 2 != 0 {
        return None;
    }
    let name = VarName::parse_wire(area).ok()?;
    if name.wire_size() != area.len() as u64 {
        return None;
    }
    Some(name)
}

/// Limits that keep a guest from growing host memory through policies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PolicyLimits {
    /// Most policies stored at once.
    pub max_policies: usize,
    /// Most entry bytes stored at once.
    pub max_total_bytes: usize,
}

impl Default for PolicyLimits {
    fn default() -> Self {
        PolicyLimits {
            max_policies: 1024,
            max_total_bytes: 256 * 1024,
        }
    }
}

/// A SetVariable request as the policy check sees it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WriteRequest<'a> {
    pub guid: &'a Guid,
    pub name: &'a VarName,
    /// Attributes of the request (for a delete: those of the existing variable).
    pub attributes: u32,
    /// Payload size after any authentication descriptor.
    pub data_size: u64,
    pub is_delete: bool,
    /// Whether the variable exists now.
    pub exists: bool,
}

/// Registered policies plus the interface state.
#[derive(Clone, Debug, Default)]
pub struct PolicyEngine {
    policies: Vec<Policy>,
    total_bytes: usize,
    limits: PolicyLimits,
    /// Interface locked: no more registrations (LOCK command or EndOfDxe).
    locked: bool,
    /// Enforcement disabled (DISABLE command, where allowed).
    disabled: bool,
}

impl PolicyEngine {
    /// An empty, enabled, unlocked engine.
    pub fn new(limits: PolicyLimits) -> Self {
        PolicyEngine {
            limits,
            ..Default::default()
        }
    }

    /// The registered policies, in registration order.
    pub fn policies(&self) -> &[Policy] {
        &self.policies
    }

    /// Whether the interface is locked (no more REGISTER or DISABLE).
    pub fn is_locked(&self) -> bool {
        self.locked
    }

    /// Locks the interface.
    pub fn lock(&mut self) {
        self.locked = true;
    }

    /// edk2 LockVariablePolicy: a second LOCK is EFI_WRITE_PROTECTED.
    pub fn lock_interface(&mut self) -> Result<(), EfiStatus> {
        if self.locked {
            return Err(EfiStatus::WRITE_PROTECTED);
        }
        self.locked = true;
        Ok(())
    }

    /// Whether policies are enforced.
    pub fn is_enabled(&self) -> bool {
        !self.disabled
    }

    /// Forgets all policies and state (machine reset).
    pub fn clear(&mut self) {
        *self = PolicyEngine::new(self.limits);
    }

    /// Registers a policy (edk2 RegisterVariablePolicy).
    pub fn register(&mut self, policy: Policy) -> Result<(), EfiStatus> {
        if self.locked {
            return Err(EfiStatus::WRITE_PROTECTED);
        }
        if self.policies.iter().any(|p| p.same_target(&policy)) {
            return Err(EfiStatus::ALREADY_STARTED);
        }
        let total = self.total_bytes.saturating_add(policy.raw.len());
        if self.policies.len() >= self.limits.max_policies || total > self.limits.max_total_bytes {
            return Err(EfiStatus::OUT_OF_RESOURCES);
        }
        self.total_bytes = total;
        self.policies.push(policy);
        Ok(())
    }

    /// edk2 DisableVariablePolicy; `allowed` mirrors
    /// PcdAllowVariablePolicyEnforcementDisable.
    pub fn disable(&mut self, allowed: bool) -> Result<(), EfiStatus> {
        if self.disabled {
            return Err(EfiStatus::ALREADY_STARTED);
        }
        if self.locked || !allowed {
            return Err(EfiStatus::WRITE_PROTECTED);
        }
        self.disabled = true;
        Ok(())
    }

    /// The policy that governs a variable.
    pub(crate) fn best_match(&self, guid: &Guid, name: &VarName) -> Option<&Policy> {
        let mut best: Option<(usize, &Policy)> = None;
        for p in &self.policies {
            if let Some(prio) = p.match_priority(guid, name) {
                if best.is_none_or(|(b, _)| prio < b) {
                    best = Some((prio, p));
                }
            }
        }
        best.map(|(_, p)| p)
    }

    /// Concatenated raw entries in registration order (DUMP content).
    pub fn dump(&self) -> Vec<u8> {
        self.policies
            .iter()
            .flat_map(|p| p.raw.iter().copied())
            .collect()
    }

    /// edk2 ValidateSetVariable. `state_of` returns the data of a variable
    /// (for LOCK_ON_VAR_STATE).
    pub(crate) fn check_write(
        &self,
        w: &WriteRequest<'_>,
        state_of: impl Fn(&Guid, &VarName) -> Option<Vec<u8>>,
    ) -> Result<(), EfiStatus> {
        if self.disabled {
            return Ok(());
        }
        let Some(p) = self.best_match(w.guid, w.name) else {
            return Ok(());
        };
        let h = &p.header;
        if !w.is_delete {
            let too_small = h.min_size > 0 && w.data_size < u64::from(h.min_size);
            let too_big = h.max_size != NO_MAX_SIZE && w.data_size > u64::from(h.max_size);
            // edk2 checks the attributes as passed, APPEND included.
            let attrs = w.attributes;
            if too_small
                || too_big
                || attrs & h.attributes_must_have != h.attributes_must_have
                || attrs & h.attributes_cant_have != 0
            {
                return Err(EfiStatus::INVALID_PARAMETER);
            }
        }
        match p.lock {
            LockType::NoLock => Ok(()),
            LockType::LockNow => Err(EfiStatus::WRITE_PROTECTED),
            LockType::LockOnCreate if w.exists => Err(EfiStatus::WRITE_PROTECTED),
            LockType::LockOnCreate => Ok(()),
            LockType::LockOnVarState => {
                let locked = p.state.as_ref().is_some_and(|s| {
                    state_of(&s.namespace, &s.name).is_some_and(|d| d.as_slice() == [s.value])
                });
                if locked {
                    Err(EfiStatus::WRITE_PROTECTED)
                } else {
                    Ok(())
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guid::GLOBAL_VARIABLE;
    use crate::variable::attr;

    fn entry(name: Option<&str>, lock: u8, state: Option<(&str, u8)>) -> Vec<u8> {
        let mut st = Vec::new();
        if let Some((sname, value)) = state {
            st.extend_from_slice(&GLOBAL_VARIABLE.0);
            st.push(value);
            st.push(0);
            st.extend_from_slice(&VarName::from(sname).to_wire());
        }
        let nm = name.map(|n| VarName::from(n).to_wire()).unwrap_or_default();
        let h = PolicyEntryHeader {
            version: POLICY_ENTRY_REVISION,
            size: (44 + st.len() + nm.len()) as u16,
            offset_to_name: (44 + st.len()) as u16,
            namespace: GLOBAL_VARIABLE,
            min_size: 1,
            max_size: 8,
            attributes_must_have: attr::BOOTSERVICE_ACCESS,
            attributes_cant_have: attr::RUNTIME_ACCESS,
            lock_policy_type: lock,
        };
        let mut raw = h.encode().to_vec();
        raw.extend(st);
        raw.extend(nm);
        raw
    }

    fn req<'a>(name: &'a VarName, size: u64, attrs: u32, exists: bool) -> WriteRequest<'a> {
        WriteRequest {
            guid: &GLOBAL_VARIABLE,
            name,
            attributes: attrs,
            data_size: size,
            is_delete: size == 0,
            exists,
        }
    }

    #[test]
    fn validation_follows_edk2() {
        assert!(Policy::parse(&entry(Some("A"), 0, None)).is_some());
        assert!(Policy::parse(&entry(None, 0, None)).is_some());
        assert!(
            Policy::parse(&entry(Some("A"), 4, None)).is_none(),
            "lock type > 3"
        );
        let mut bad_version = entry(Some("A"), 0, None);
        bad_version[2] = 2;
        assert!(Policy::parse(&bad_version).is_none());
        let mut zero_max = entry(Some("A"), 0, None);
        zero_max[28..32].copy_from_slice(&0u32.to_le_bytes());
        assert!(Policy::parse(&zero_max).is_none());
        // name not terminated exactly at Size
        let mut unterminated = entry(Some("AB"), 0, None);
        let n = unterminated.len();
        unterminated[n - 2] = b'C';
        assert!(Policy::parse(&unterminated).is_none());
        // size larger than the buffer
        let raw = entry(Some("A"), 0, None);
        assert!(Policy::parse(&raw[..raw.len() - 1]).is_none());
        // a var-state policy needs its state name
        let p = Policy::parse(&entry(Some("A"), 3, Some(("S", 1)))).unwrap();
        assert_eq!(p.state.unwrap().name, VarName::from("S"));
        // non var-state policies must have OffsetToName == 44
        let mut off = entry(Some("A"), 1, Some(("S", 1)));
        off[40] = 1;
        assert!(Policy::parse(&off).is_none());
    }

    #[test]
    fn priority_exact_then_wildcards_then_namespace() {
        let mut e = PolicyEngine::new(PolicyLimits::default());
        e.register(Policy::parse(&entry(None, 0, None)).unwrap())
            .unwrap();
        e.register(Policy::parse(&entry(Some("Boot####"), 1, None)).unwrap())
            .unwrap();
        e.register(Policy::parse(&entry(Some("Boot00##"), 2, None)).unwrap())
            .unwrap();
        e.register(Policy::parse(&entry(Some("Boot0001"), 0, None)).unwrap())
            .unwrap();
        let lock_of = |n: &str| {
            e.best_match(&GLOBAL_VARIABLE, &VarName::from(n))
                .unwrap()
                .lock
        };
        assert_eq!(lock_of("Boot0001"), LockType::NoLock);
        assert_eq!(lock_of("Boot0002"), LockType::LockOnCreate);
        assert_eq!(lock_of("Boot1A2b"), LockType::LockNow);
        assert_eq!(lock_of("BootOrder"), LockType::NoLock); // namespace-wide
        assert_eq!(lock_of("Boot00G1"), LockType::NoLock); // G is not hex
        assert!(e
            .best_match(&Guid::default(), &VarName::from("Boot0001"))
            .is_none());
    }

    #[test]
    fn duplicates_lock_and_limits() {
        let mut e = PolicyEngine::new(PolicyLimits {
            max_policies: 2,
            max_total_bytes: 1000,
        });
        let p = Policy::parse(&entry(Some("A"), 0, None)).unwrap();
        e.register(p.clone()).unwrap();
        assert_eq!(e.register(p), Err(EfiStatus::ALREADY_STARTED));
        e.register(Policy::parse(&entry(Some("B"), 0, None)).unwrap())
            .unwrap();
        assert_eq!(
            e.register(Policy::parse(&entry(Some("C"), 0, None)).unwrap()),
            Err(EfiStatus::OUT_OF_RESOURCES)
        );
        e.lock();
        e.clear();
        assert!(!e.is_locked());
        e.lock();
        assert_eq!(
            e.register(Policy::parse(&entry(Some("D"), 0, None)).unwrap()),
            Err(EfiStatus::WRITE_PROTECTED)
        );
        assert_eq!(e.disable(true), Err(EfiStatus::WRITE_PROTECTED));
    }

    #[test]
    fn check_write_rules() {
        let none = |_: &Guid, _: &VarName| None;
        let mut e = PolicyEngine::new(PolicyLimits::default());
        e.register(Policy::parse(&entry(Some("A"), 0, None)).unwrap())
            .unwrap();
        e.register(Policy::parse(&entry(Some("C"), 2, None)).unwrap())
            .unwrap();
        e.register(Policy::parse(&entry(Some("N"), 1, None)).unwrap())
            .unwrap();
        e.register(Policy::parse(&entry(Some("V"), 3, Some(("S", 1)))).unwrap())
            .unwrap();
        let (a, c, n, v) = (
            VarName::from("A"),
            VarName::from("C"),
            VarName::from("N"),
            VarName::from("V"),
        );
        assert_eq!(e.check_write(&req(&a, 4, 3, false), none), Ok(()));
        assert_eq!(
            e.check_write(&req(&a, 9, 3, false), none),
            Err(EfiStatus::INVALID_PARAMETER)
        );
        assert_eq!(
            e.check_write(&req(&a, 4, 1, false), none),
            Err(EfiStatus::INVALID_PARAMETER)
        );
        assert_eq!(
            e.check_write(&req(&a, 4, 7, false), none),
            Err(EfiStatus::INVALID_PARAMETER)
        );
        // deletes skip size and attribute checks (edk2)
        assert_eq!(e.check_write(&req(&a, 0, 7, true), none), Ok(()));
        assert_eq!(e.check_write(&req(&c, 4, 3, false), none), Ok(()));
        assert_eq!(
            e.check_write(&req(&c, 4, 3, true), none),
            Err(EfiStatus::WRITE_PROTECTED)
        );
        assert_eq!(
            e.check_write(&req(&n, 4, 3, false), none),
            Err(EfiStatus::WRITE_PROTECTED)
        );
        let state = |val: Vec<u8>| {
            move |_: &Guid, n: &VarName| (n == &VarName::from("S")).then(|| val.clone())
        };
        assert_eq!(
            e.check_write(&req(&v, 4, 3, true), state(vec![1])),
            Err(EfiStatus::WRITE_PROTECTED)
        );
        assert_eq!(e.check_write(&req(&v, 4, 3, true), state(vec![0])), Ok(()));
        assert_eq!(
            e.check_write(&req(&v, 4, 3, true), state(vec![1, 1])),
            Ok(())
        );
        // compat: policy-append-attr (APPEND counts, as in edk2)
        let mut cant_append = entry(Some("P"), 0, None);
        cant_append[36..40].copy_from_slice(&attr::APPEND_WRITE.to_le_bytes());
        cant_append[32..36].copy_from_slice(&0u32.to_le_bytes());
        e.register(Policy::parse(&cant_append).unwrap()).unwrap();
        let pn = VarName::from("P");
        assert_eq!(e.check_write(&req(&pn, 4, 3, true), none), Ok(()));
        assert_eq!(
            e.check_write(&req(&pn, 0, 3 | attr::APPEND_WRITE, true), none),
            Ok(()),
            "delete skips attribute checks"
        );
        assert_eq!(
            e.check_write(&req(&pn, 4, 3 | attr::APPEND_WRITE, false), none),
            Err(EfiStatus::INVALID_PARAMETER)
        );
        // MustHave and CantHave may overlap (edk2 does not refuse it)
        let mut overlap = entry(Some("O"), 0, None);
        overlap[36..40].copy_from_slice(&attr::BOOTSERVICE_ACCESS.to_le_bytes());
        assert!(Policy::parse(&overlap).is_some());
        let mut d = e.clone();
        d.disable(true).unwrap();
        assert_eq!(d.check_write(&req(&n, 4, 3, false), none), Ok(()));
    }
}
