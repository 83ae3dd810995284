//! Persistence: the storage trait and its backends.
//!
//! The service writes through a [`Storage`]: [`JsonFile`] for QEMU's JSON
//! store on disk (docs/reference/persistence.md §1), [`MemoryStorage`] when there is no file
//! (and in tests). Both use the codec in [`json`].

// Test helpers (house rule: behind the `testing` feature).
#[cfg(any(test, feature = "testing"))]
pub mod fault;
pub mod file;
#[cfg(feature = "store-formats")]
pub mod formats;
pub mod journal;
pub mod json;

use std::path::{Path, PathBuf};

use crate::store::VarStore;
use crate::variable::{VarKey, Variable};

pub use file::{FileOps, JsonFile, RealFileOps, SyncMode, WriteMode};
pub use journal::{JournalError, TornTail};
pub use json::FormatError;

/// One change of the stored content.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum Change<'a> {
    /// The variable is created or replaced, and moves to the end of the
    /// store order.
    Put(&'a Variable),
    /// The variable with this key goes away.
    Delete(&'a VarKey),
}

impl<'a> Change<'a> {
    /// The change that makes the store hold `new` under `key` (`None`:
    /// nothing). A volatile variable is not stored: putting one deletes.
    pub fn to(key: &'a VarKey, new: Option<&'a Variable>) -> Self {
        match new {
            Some(v) if v.is_non_volatile() => Change::Put(v),
            _ => Change::Delete(key),
        }
    }

    /// Whether `var` is the variable this change replaces or deletes.
    fn hits(&self, var: &Variable) -> bool {
        let (guid, name) = match self {
            Change::Put(v) => (&v.guid, &v.name),
            Change::Delete(k) => (&k.guid, &k.name),
        };
        var.guid == *guid && var.name == *name
    }

    /// The non-volatile variables of `before` with this change made, in
    /// order: what a backend that rewrites everything stores.
    pub fn merged<'s>(&self, before: &'s VarStore) -> Vec<&'s Variable>
    where
        'a: 's,
    {
        let mut out: Vec<&'s Variable> = before
            .iter()
            .filter(|v| v.is_non_volatile() && !self.hits(v))
            .collect();
        if let Change::Put(v) = self {
            out.push(v);
        }
        out
    }
}

/// Where the non-volatile variables live between runs.
pub trait Storage: Send {
    /// Variables in store order (an absent or empty store is empty).
    fn load(&mut self) -> Result<Vec<Variable>, PersistError>;

    /// Replaces the stored content with the non-volatile variables among
    /// `vars`, in order. Volatile ones (no NON_VOLATILE bit) are skipped.
    /// A journaling backend folds its journal in (compaction).
    fn save(&mut self, vars: &[&Variable]) -> Result<(), PersistError>;

    /// Makes one change durable before it is acknowledged. `before` is the
    /// service's store before the change (volatile variables included).
    /// The default rewrites everything; incremental backends record only
    /// the change.
    fn apply(&mut self, change: Change<'_>, before: &VarStore) -> Result<(), PersistError> {
        self.save(&change.merged(before))
    }

    /// Whether acknowledged changes live only in a journal, so that a
    /// [`save`](Self::save) would bring the primary file up to date.
    fn pending(&self) -> bool {
        false
    }

    /// A problem the backend met that did not fail the call it happened in
    /// (a torn journal tail dropped at load, a failed compaction after the
    /// change itself was made durable), oldest first.
    fn take_warning(&mut self) -> Option<PersistError> {
        None
    }
}

/// A persistence failure, naming the file (or the in-memory store).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PersistError {
    /// An I/O operation on `path` failed; `action` says which.
    #[error("{}: {action}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operation, in words.
        action: String,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The journal beside `path` cannot be replayed.
    #[error("{}: {source}", .path.display())]
    Journal {
        /// The JSON file the journal belongs to.
        path: PathBuf,
        /// Why the journal does not apply.
        #[source]
        source: JournalError,
    },
    /// A torn last journal record was dropped (it had not been
    /// acknowledged): a warning, the store opened without it.
    #[error(
        "{}: dropped an incomplete last record ({} bytes at offset {}: {}); \
         it was never acknowledged",
        .path.display(), .tail.bytes, .tail.offset, .tail.reason
    )]
    TornTail {
        /// The JSON file the journal belongs to.
        path: PathBuf,
        /// The dropped record.
        tail: TornTail,
    },
    /// A remote store (an etcd cluster) could not be read or written:
    /// the change was not acknowledged. `store` names it (its URL).
    #[error("{store}: {action}: {source}")]
    Remote {
        /// The store's URL.
        store: String,
        /// What was being done (read, write, compact, ...).
        action: String,
        /// The client's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The backend no longer owns the store it writes (its lease expired,
    /// another service took it over, or an earlier write's outcome could
    /// not be established): the change was not made, and the backend
    /// refuses every later one. `owner` is who holds the store now, when
    /// known.
    #[error(
        "{store}: this process no longer owns the store ({}); the change was not made and \
         nothing more will be written through this view",
        match .owner { Some(o) => format!("now owned by {o}"), None => "ownership lost".into() }
    )]
    Fenced {
        /// The store's URL.
        store: String,
        /// Who owns it now, when known.
        owner: Option<String>,
    },
    /// The content could not be decoded, or the variables could not be
    /// encoded. `file` is `None` for [`MemoryStorage`].
    #[error("{}: {source}", file_label(.file))]
    Format {
        /// The file, or `None` for [`MemoryStorage`].
        file: Option<PathBuf>,
        /// Why it does not decode or encode.
        #[source]
        source: FormatError,
    },
}

fn file_label(file: &Option<PathBuf>) -> String {
    match file {
        Some(p) => p.display().to_string(),
        None => "in-memory variable store".to_string(),
    }
}

impl PersistError {
    pub(crate) fn io(path: &Path, action: impl Into<String>, source: std::io::Error) -> Self {
        PersistError::Io {
            path: path.to_path_buf(),
            action: action.into(),
            source,
        }
    }

    /// The file involved, if any.
    pub fn path(&self) -> Option<&Path> {
        match self {
            PersistError::Io { path, .. }
            | PersistError::Journal { path, .. }
            | PersistError::TornTail { path, .. } => Some(path),
            PersistError::Format { file, .. } => file.as_deref(),
            PersistError::Remote { .. } | PersistError::Fenced { .. } => None,
        }
    }

    /// Whether this is [`PersistError::Fenced`]: the service must stop
    /// serving, its view of the store is no longer the store's.
    pub fn is_fenced(&self) -> bool {
        matches!(self, PersistError::Fenced { .. })
    }

    /// For an error about one entry: its index (in the file's `variables`
    /// array, or in the list given to `save`).
    pub fn record_index(&self) -> Option<usize> {
        match self {
            PersistError::Format {
                source: FormatError::Record { index, .. } | FormatError::Unencodable { index, .. },
                ..
            } => Some(*index),
            _ => None,
        }
    }

    /// For an error about one entry: its name, when it has a usable one.
    pub fn record_name(&self) -> Option<&str> {
        match self {
            PersistError::Format {
                source: FormatError::Record { name, .. },
                ..
            } => name.as_deref(),
            PersistError::Format {
                source: FormatError::Unencodable { name, .. },
                ..
            } => Some(name),
            _ => None,
        }
    }

    /// For a decoding error about one key of one entry: the key.
    pub fn record_field(&self) -> Option<&str> {
        match self {
            PersistError::Format {
                source: FormatError::Record { field, .. },
                ..
            } => field.as_deref(),
            _ => None,
        }
    }
}

/// The non-volatile variables among `vars`, in order.
pub fn non_volatile<'a>(vars: &[&'a Variable]) -> Vec<&'a Variable> {
    vars.iter()
        .copied()
        .filter(|v| v.is_non_volatile())
        .collect()
}

/// The store in memory. Loading a text given with
/// [`MemoryStorage::from_text`] goes through the JSON codec; saves and
/// changes are checked as the JSON encoder checks them (a variable a JSON
/// store could not hold is refused the same way) and then kept as
/// variables, so a change costs O(log n).
#[derive(Clone, Debug, Default)]
pub struct MemoryStorage {
    text: Option<String>,
    /// Set once something was saved or changed (then `text` is unused).
    vars: Option<VarStore>,
    saves: usize,
}

impl MemoryStorage {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store whose content is `text` (as if read from a file).
    pub fn from_text(text: impl Into<String>) -> Self {
        MemoryStorage {
            text: Some(text.into()),
            vars: None,
            saves: 0,
        }
    }

    /// The content as the JSON text a [`JsonFile`] would hold, `None` if
    /// nothing was ever saved or given.
    pub fn text(&self) -> Option<String> {
        match &self.vars {
            Some(store) => {
                let vars: Vec<&Variable> = store.iter().collect();
                // Every variable was checked when it came in.
                json::encode(&vars).ok()
            }
            None => self.text.clone(),
        }
    }

    /// How many saves and changes succeeded.
    pub fn save_count(&self) -> usize {
        self.saves
    }

    fn format_error(source: FormatError) -> PersistError {
        PersistError::Format { file: None, source }
    }

    /// The current variables, decoding the given text on first use.
    fn store(&mut self) -> Result<&mut VarStore, PersistError> {
        if self.vars.is_none() {
            let mut store = VarStore::new(0);
            for v in self.load()? {
                store.put(v);
            }
            self.vars = Some(store);
        }
        Ok(self.vars.get_or_insert_with(|| VarStore::new(0)))
    }
}

impl Storage for MemoryStorage {
    fn load(&mut self) -> Result<Vec<Variable>, PersistError> {
        if let Some(store) = &self.vars {
            return Ok(store.iter().cloned().collect());
        }
        match self.text.as_deref() {
            None | Some("") => Ok(Vec::new()),
            Some(text) => json::decode(text.as_bytes()).map_err(Self::format_error),
        }
    }

    fn save(&mut self, vars: &[&Variable]) -> Result<(), PersistError> {
        let nv = non_volatile(vars);
        json::check_store(&nv).map_err(Self::format_error)?;
        let mut store = VarStore::new(0);
        for v in nv {
            store.put(v.clone());
        }
        self.vars = Some(store);
        self.saves = self.saves.saturating_add(1);
        Ok(())
    }

    fn apply(&mut self, change: Change<'_>, _before: &VarStore) -> Result<(), PersistError> {
        match change {
            Change::Put(v) => {
                json::check_store(&[v]).map_err(Self::format_error)?;
                self.store()?.put(v.clone());
            }
            Change::Delete(k) => {
                self.store()?.remove(k);
            }
        }
        self.saves = self.saves.saturating_add(1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guid::GLOBAL_VARIABLE;
    use crate::name::VarName;

    #[test]
    fn memory_round_trip_skips_volatile() {
        let nv = Variable::new(GLOBAL_VARIABLE, VarName::from("Lang"), 7, b"eng\0".to_vec());
        let vol = Variable::new(GLOBAL_VARIABLE, VarName::from("Tmp"), 6, vec![1]);
        let mut m = MemoryStorage::new();
        assert!(m.load().unwrap().is_empty());
        m.save(&[&vol, &nv]).unwrap();
        assert_eq!(m.save_count(), 1);
        assert_eq!(m.load().unwrap(), vec![nv]);
        assert!(!m.text().unwrap().contains("Tmp"));
    }

    #[test]
    fn memory_errors_name_the_store_and_record() {
        let mut m = MemoryStorage::from_text(
            r#"{"version": 2, "variables": [{"name": "X", "guid": "8be4df61-93ca-11d2-aa0d-00e098032b8c", "attr": 7, "data": "0"}]}"#,
        );
        let e = m.load().unwrap_err();
        assert_eq!(e.record_index(), Some(0));
        assert_eq!(e.record_name(), Some("X"));
        assert_eq!(e.record_field(), Some("data"));
        assert!(
            e.to_string()
                .starts_with("in-memory variable store: variables[0]"),
            "{e}"
        );
    }
}
