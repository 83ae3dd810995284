//! What the classifier remembers across a run: the boot phase, and a model
//! of where QEMU's state differs from ours after listed differences (which
//! variables, what QEMU's copy of each costs in its accounting, which
//! policies only one side holds, the policies' storage charge on each
//! side). Later differences are excused only when this model says they
//! follow from a listed one.

use std::collections::{BTreeMap, BTreeSet};

use uefi_vars::guid::Guid;
use uefi_vars::name::VarName;
use uefi_vars::store::VarStore;
use uefi_vars::variable::{VarKey, Variable};

use super::decode::Key;

/// QEMU's copy of a variable whose state differs from ours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct QemuVar {
    /// What it costs in QEMU's accounting (0: QEMU does not have it).
    pub(super) cost: u64,
    pub(super) non_volatile: bool,
}

/// A variable whose state differs: the id that caused it and, when known,
/// QEMU's copy.
#[derive(Clone, Debug)]
pub(super) struct Taint {
    pub(super) id: &'static str,
    /// `None`: QEMU's size is not known (e.g. its own APPEND merge).
    pub(super) qemu: Option<QemuVar>,
}

/// A policy one side holds and the other does not.
#[derive(Clone, Debug)]
pub(super) struct PolicyTarget {
    pub(super) namespace: Guid,
    /// The name pattern (`#` matches any one character); `None`: the
    /// whole namespace.
    pub(super) name: Option<Vec<u16>>,
    pub(super) id: &'static str,
}

impl PolicyTarget {
    pub(super) fn covers(&self, guid: &Guid, name: &[u16]) -> bool {
        if self.namespace != *guid {
            return false;
        }
        match &self.name {
            None => true,
            Some(p) if p.is_empty() => true,
            Some(p) => {
                p.len() == name.len()
                    && p.iter()
                        .zip(name)
                        .all(|(&a, &b)| a == b || a == u16::from(b'#'))
            }
        }
    }
}

/// What the classifier remembers across a run.
#[derive(Clone, Debug, Default)]
pub struct Context {
    /// (major, minor) of the QEMU compared with.
    pub(super) version: (u32, u32),
    /// Variables whose state differs.
    pub(super) taint: BTreeMap<Key, Taint>,
    /// The accounting model is lost (QEMU's size of some variable is not
    /// known): the id that lost it.
    pub(super) accounting_unknown: Option<&'static str>,
    /// Policies only one side holds (cleared at a reset, as both sides
    /// clear their policies).
    pub(super) diverged_policies: Vec<PolicyTarget>,
    /// Every policy either side accepted since the reset (REGISTER and
    /// LOCK_VARIABLE).
    pub(super) policies_seen: Vec<PolicyTarget>,
    /// Bytes QEMU charged for REGISTERed policies since it started (QEMU
    /// 11: never given back at a reset).
    pub(super) qemu_policy_charge: u64,
    /// Bytes we charged since the last reset.
    pub(super) our_policy_charge: u64,
    /// A reset left QEMU's charge standing (compat: policy-charge-reset).
    pub(super) charge_survived_reset: bool,
    /// The first REGISTER only QEMU (or only we) accepted: the charges
    /// differ because of it.
    pub(super) charge_divergence: Option<&'static str>,
    /// A policy LOCK took effect on QEMU's side only.
    pub(super) lock_diverged: Option<&'static str>,
    /// Policy DISABLE took effect on one side.
    pub(super) disable_diverged: Option<&'static str>,
    pub(super) end_of_dxe: bool,
    pub(super) ready_to_boot: bool,
    pub(super) runtime: bool,
    /// A policy LOCK command succeeded on either side.
    pub(super) policy_lock_seen: bool,
    /// BUFFER_SIZE as the guest set it (`None`: 64 KiB, as at every boot).
    pub(super) buffer_size: Option<u32>,
    /// Namespaces with a nameless (or empty-name) policy on either side.
    pub(super) namespace_wide: BTreeSet<Guid>,
    /// Namespaces with a LOCK_ON_VAR_STATE policy on either side.
    pub(super) var_state: BTreeSet<Guid>,
    /// PK was deleted (by an authenticated write) since the last reset.
    pub(super) pk_deleted: bool,
    /// VarCheck properties the guest set on our side (QEMU has none):
    /// namespace and name (a name ending in `####` as edk2's wildcard).
    pub(super) varcheck_properties: Vec<Key>,
}

/// The largest BUFFER_SIZE.
const MAX_BUFFER: u64 = 0x10000;

pub(super) fn var_key(key: &Key) -> VarKey {
    VarKey::new(key.0, VarName::from_units(key.1.clone()))
}

/// Our variable of that key.
pub(super) fn ours<'a>(store: &'a VarStore, key: &Key) -> Option<&'a Variable> {
    store.get(&var_key(key))
}

/// Our copy of a variable as QEMU's model would hold it.
pub(super) fn our_state(store: &VarStore, key: &Key) -> QemuVar {
    ours(store, key).map_or(
        QemuVar {
            cost: 0,
            non_volatile: false,
        },
        |v| QemuVar {
            cost: store.cost(v),
            non_volatile: v.is_non_volatile(),
        },
    )
}

impl Context {
    /// A context for comparing with QEMU `version` (major, minor).
    pub fn new(version: (u32, u32)) -> Self {
        Context {
            version,
            ..Context::default()
        }
    }

    pub(super) fn qemu10(&self) -> bool {
        self.version.0 == 10
    }

    /// QEMU charges REGISTERed policies to the storage (11.0 and later,
    /// as `qemu::legacy_storage_accounting` draws the line).
    pub(super) fn qemu_charges_policies(&self) -> bool {
        self.version >= (11, 0)
    }

    /// A machine reset, after ours (`store` is our store after it):
    /// volatile variables, policies and the boot phase go on both sides.
    pub fn reset(&mut self, store: &VarStore) {
        self.end_of_dxe = false;
        self.ready_to_boot = false;
        self.runtime = false;
        self.policy_lock_seen = false;
        self.buffer_size = None;
        self.namespace_wide.clear();
        self.var_state.clear();
        self.diverged_policies.clear();
        self.policies_seen.clear();
        self.disable_diverged = None;
        self.lock_diverged = None;
        if self.pk_deleted {
            // Both sides derive the mode variables from PK again.
            self.taint.retain(|_, t| t.id != super::PK_DELETE_MODE);
            if self.accounting_unknown == Some(super::PK_DELETE_MODE) {
                self.accounting_unknown = None;
            }
        }
        self.pk_deleted = false;
        self.varcheck_properties.clear();
        self.our_policy_charge = 0;
        if self.qemu_policy_charge > 0 {
            self.charge_survived_reset = true;
        }
        // QEMU drops its volatile copies; a variable neither side has any
        // more is the same again.
        self.taint.retain(|key, t| {
            if let Some(q) = &mut t.qemu {
                if !q.non_volatile {
                    q.cost = 0;
                }
                if q.cost == 0 && ours(store, key).is_none() {
                    return false;
                }
            }
            true
        });
    }

    /// The guest set BUFFER_SIZE (the size the device reported).
    pub fn set_buffer_size(&mut self, size: u32) {
        self.buffer_size = Some(size);
    }

    pub(super) fn buffer(&self) -> u64 {
        self.buffer_size.map_or(MAX_BUFFER, u64::from)
    }

    /// Marks `key` as different because of `id` (an earlier id stays).
    /// `qemu` is QEMU's copy after the request when known; a variable
    /// tainted for the first time whose QEMU copy is not given keeps the
    /// state it had before (`before`, both sides equal until now).
    pub(super) fn taint_key(&mut self, key: Key, id: &'static str, qemu: Option<QemuVar>) {
        let t = self.taint.entry(key).or_insert(Taint { id, qemu: None });
        if qemu.is_some() {
            t.qemu = qemu;
        }
    }

    pub(super) fn taint_id(&self, key: &Key) -> Option<&'static str> {
        self.taint.get(key).map(|t| t.id)
    }

    /// The id explaining a final-store difference in this variable.
    pub fn store_id(&self, guid: Guid, name: &VarName) -> Option<&'static str> {
        let units = super::decode::until_nul(name.units());
        if let Some(id) = self.taint_id(&(guid, units.clone())) {
            return Some(id);
        }
        units
            .iter()
            .any(|&u| u >= 0x80)
            .then_some(super::JSON_NAMES)
    }

    /// For a difference in the order of the final stores only: the id
    /// when the orders agree once the differing variables are left out.
    pub fn order_id(
        &self,
        ours: &[(Guid, Vec<u16>)],
        theirs: &[(Guid, Vec<u16>)],
    ) -> Option<&'static str> {
        let keep = |k: &&(Guid, Vec<u16>)| !self.taint.contains_key(*k);
        let a: Vec<_> = ours.iter().filter(keep).collect();
        let b: Vec<_> = theirs.iter().filter(keep).collect();
        if a != b {
            return None;
        }
        ours.iter().chain(theirs).find_map(|k| self.taint_id(k))
    }

    /// For QEMU's store file that our decoder refuses: a name-related
    /// listed difference that let QEMU store such a name.
    pub fn unreadable_store_id(&self) -> Option<&'static str> {
        self.taint.values().map(|t| t.id).find(|id| {
            [
                super::EMPTY_NAME,
                super::NAME_SCAN_BOUND,
                super::NAME_CANONICAL,
            ]
            .contains(id)
        })
    }

    /// QEMU's used storage as the model predicts it, from our store
    /// (`None`: the model is lost).
    pub(super) fn qemu_used(&self, store: &VarStore) -> Option<u64> {
        if self.accounting_unknown.is_some() {
            return None;
        }
        let mut used = i128::from(store.used());
        for (key, t) in &self.taint {
            let q = t.qemu?;
            used += i128::from(q.cost) - i128::from(our_state(store, key).cost);
        }
        used += i128::from(self.qemu_policy_charge);
        u64::try_from(used).ok()
    }

    /// Our used storage (variables and the policies' charge).
    pub(super) fn our_used(&self, store: &VarStore) -> u64 {
        store.used().saturating_add(self.our_policy_charge)
    }

    /// The id a difference in the accounting follows from: the policies'
    /// charge, else the first differing variable whose sizes differ.
    pub(super) fn accounting_id(&self, store: &VarStore) -> Option<&'static str> {
        if let Some(id) = self.accounting_unknown {
            return Some(id);
        }
        if self.qemu_policy_charge != self.our_policy_charge {
            if self.charge_survived_reset {
                return Some(super::POLICY_CHARGE_RESET);
            }
            if let Some(id) = self.charge_divergence {
                return Some(id);
            }
        }
        self.taint.iter().find_map(|(key, t)| {
            let q = t.qemu?;
            (q.cost != our_state(store, key).cost).then_some(t.id)
        })
    }

    /// A policy either side holds that governs this variable.
    pub(super) fn seen_policy_covers(&self, key: &Key) -> bool {
        self.policies_seen.iter().any(|p| p.covers(&key.0, &key.1))
    }

    /// A VarCheck property the guest set on our side governs this variable.
    pub(super) fn varcheck_property_covers(&self, key: &Key) -> bool {
        let hash = u16::from(b'#');
        self.varcheck_properties.iter().any(|(g, n)| {
            let wild = n.len() >= 4 && n[n.len() - 4..].iter().all(|&u| u == hash);
            *g == key.0
                && (*n == key.1
                    || wild && n.len() == key.1.len() && n[..n.len() - 4] == key.1[..n.len() - 4])
        })
    }

    /// The id of a policy only one side holds that governs this variable.
    pub(super) fn diverged_policy_id(&self, key: &Key) -> Option<&'static str> {
        self.diverged_policies
            .iter()
            .find(|p| p.covers(&key.0, &key.1))
            .map(|p| p.id)
    }
}
