//! The variable store: variables in enumeration order, looked up by key,
//! with storage accounting.
//!
//! Enumeration order is wire-visible: QEMU keeps one insertion-ordered list
//! (load order first, updates move to the tail), and real firmware walks it
//! with GetNextVariableName. We keep the same order with ordered indexes so
//! lookup and "next visible variable" are O(log n), not list scans.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use crate::variable::{Attributes, VarKey, Variable};

/// Which variables a caller may see: before ExitBootServices those with BS,
/// after it those with RT (docs/reference/mm-protocol.md §10).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Visibility {
    /// Before ExitBootServices: variables with BOOTSERVICE_ACCESS.
    BootServices,
    /// After ExitBootServices: variables with RUNTIME_ACCESS.
    Runtime,
    /// Every variable (host-side tools).
    All,
}

impl Visibility {
    /// Whether a variable with these attributes is visible.
    pub fn allows(self, attributes: u32) -> bool {
        match self {
            Visibility::BootServices => {
                Attributes::from(attributes).contains(Attributes::BOOTSERVICE_ACCESS)
            }
            Visibility::Runtime => {
                Attributes::from(attributes).contains(Attributes::RUNTIME_ACCESS)
            }
            Visibility::All => true,
        }
    }
}

/// Ordered, indexed variable storage.
#[derive(Clone, Debug, Default)]
pub struct VarStore {
    /// Key → position in `order`.
    index: BTreeMap<VarKey, u64>,
    /// Position → variable; positions only grow, so this is list order.
    order: BTreeMap<u64, Variable>,
    /// Positions of variables with BS (resp. RT), for O(log n) enumeration
    /// that skips invisible ones.
    bs_positions: BTreeSet<u64>,
    rt_positions: BTreeSet<u64>,
    next_pos: u64,
    used: u64,
    overhead: u64,
}

impl VarStore {
    /// `overhead` is the per-record cost added to name, data and digest sizes
    /// (QEMU counts 96 bytes, the size of its host record).
    pub fn new(overhead: u64) -> Self {
        VarStore {
            overhead,
            ..Default::default()
        }
    }

    /// The number of variables.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether the store holds no variable.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Bytes counted against the storage limit.
    pub fn used(&self) -> u64 {
        self.used
    }

    /// The per-variable overhead counted in the accounting.
    pub fn overhead(&self) -> u64 {
        self.overhead
    }

    /// What one variable costs in the accounting.
    pub fn cost(&self, var: &Variable) -> u64 {
        self.overhead
            .saturating_add(var.name_size())
            .saturating_add(var.data.len() as u64)
            .saturating_add(var.digest_size())
    }

    /// The variable with this key, if any.
    pub fn get(&self, key: &VarKey) -> Option<&Variable> {
        self.index.get(key).and_then(|pos| self.order.get(pos))
    }

    /// Inserts at the tail, replacing (and so moving) any variable with the
    /// same key.
    pub fn put(&mut self, var: Variable) {
        let key = var.key();
        self.remove(&key);
        let pos = self.next_pos;
        self.next_pos = self.next_pos.saturating_add(1);
        if var.attrs().contains(Attributes::BOOTSERVICE_ACCESS) {
            self.bs_positions.insert(pos);
        }
        if var.attrs().contains(Attributes::RUNTIME_ACCESS) {
            self.rt_positions.insert(pos);
        }
        self.used = self.used.saturating_add(self.cost(&var));
        self.index.insert(key, pos);
        self.order.insert(pos, var);
    }

    /// Removes and returns the variable with this key.
    pub fn remove(&mut self, key: &VarKey) -> Option<Variable> {
        let pos = self.index.remove(key)?;
        self.bs_positions.remove(&pos);
        self.rt_positions.remove(&pos);
        let var = self.order.remove(&pos)?;
        self.used = self.used.saturating_sub(self.cost(&var));
        Some(var)
    }

    /// Removes every variable for which `drop` is true, keeping order.
    pub fn retain(&mut self, mut keep: impl FnMut(&Variable) -> bool) {
        let doomed: Vec<VarKey> = self
            .order
            .values()
            .filter(|v| !keep(v))
            .map(Variable::key)
            .collect();
        for k in doomed {
            self.remove(&k);
        }
    }

    /// Removes every variable.
    pub fn clear(&mut self) {
        let overhead = self.overhead;
        *self = VarStore::new(overhead);
    }

    /// Variables in enumeration order.
    pub fn iter(&self) -> impl Iterator<Item = &Variable> {
        self.order.values()
    }

    fn first_after(&self, after: Bound<u64>, vis: Visibility) -> Option<&Variable> {
        let range = (after, Bound::Unbounded);
        let pos = match vis {
            Visibility::BootServices => self.bs_positions.range(range).next().copied(),
            Visibility::Runtime => self.rt_positions.range(range).next().copied(),
            Visibility::All => self.order.range(range).next().map(|(p, _)| *p),
        }?;
        self.order.get(&pos)
    }

    /// The first variable visible under `vis`.
    pub fn first_visible(&self, vis: Visibility) -> Option<&Variable> {
        self.first_after(Bound::Unbounded, vis)
    }

    /// The variable after `key` in store order that is visible under `vis`.
    /// `None` in the outer option: `key` is not in the store.
    pub(crate) fn next_visible(&self, key: &VarKey, vis: Visibility) -> Option<Option<&Variable>> {
        let pos = *self.index.get(key)?;
        Some(self.first_after(Bound::Excluded(pos), vis))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guid::GLOBAL_VARIABLE;

    fn var(name: &str, attributes: u32) -> Variable {
        Variable::new(GLOBAL_VARIABLE, name.into(), attributes, vec![1, 2, 3])
    }

    fn names(s: &VarStore) -> Vec<String> {
        s.iter().map(|v| v.name.to_string()).collect()
    }

    #[test]
    fn update_moves_to_tail() {
        let mut s = VarStore::new(96);
        s.put(var("A", 7));
        s.put(var("B", 7));
        s.put(var("C", 7));
        s.put(var("A", 7));
        assert_eq!(names(&s), ["B", "C", "A"]);
        assert_eq!(s.used(), 3 * (96 + 4 + 3));
    }

    #[test]
    fn enumeration_skips_invisible() {
        let mut s = VarStore::new(96);
        s.put(var("A", 3)); // NV|BS
        s.put(var("B", 7));
        s.put(var("C", 3));
        s.put(var("D", 5)); // NV|RT
        let k = |n: &str| VarKey::new(GLOBAL_VARIABLE, n.into());
        assert_eq!(
            s.first_visible(Visibility::Runtime)
                .unwrap()
                .name
                .to_string(),
            "B"
        );
        let n = s
            .next_visible(&k("B"), Visibility::Runtime)
            .unwrap()
            .unwrap();
        assert_eq!(n.name.to_string(), "D");
        let n = s
            .next_visible(&k("B"), Visibility::BootServices)
            .unwrap()
            .unwrap();
        assert_eq!(n.name.to_string(), "C");
        assert!(s.next_visible(&k("D"), Visibility::All).unwrap().is_none());
        assert!(s.next_visible(&k("X"), Visibility::All).is_none());
    }

    #[test]
    fn remove_and_retain_keep_accounting() {
        let mut s = VarStore::new(10);
        s.put(var("A", 3));
        s.put(var("B", 6));
        s.retain(|v| v.is_non_volatile());
        assert_eq!(names(&s), ["A"]);
        assert_eq!(s.used(), 10 + 4 + 3);
        s.remove(&VarKey::new(GLOBAL_VARIABLE, "A".into()));
        assert_eq!(s.used(), 0);
        assert!(s.is_empty());
    }
}
