//! Persistence: the storage trait and its backends.
//!
//! The service writes through a [`Storage`]: [`JsonFile`] for QEMU's JSON
//! store on disk (persistence.md §1), [`MemoryStorage`] when there is no file
//! (and in tests). Both use the codec in [`json`].

pub mod fault;
pub mod file;
pub mod formats;
pub mod json;

use std::path::{Path, PathBuf};

use crate::variable::Variable;

pub use file::{FileOps, JsonFile, RealFileOps, WriteMode};
pub use json::FormatError;

/// Where the non-volatile variables live between runs.
pub trait Storage: Send {
    /// Variables in file order (an absent or empty file is an empty store).
    fn load(&mut self) -> Result<Vec<Variable>, PersistError>;

    /// Replaces the stored content with the non-volatile variables among
    /// `vars`, in order. Volatile ones (no NON_VOLATILE bit) are skipped.
    fn save(&mut self, vars: &[&Variable]) -> Result<(), PersistError>;
}

/// A persistence failure, naming the file (or the in-memory store).
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// An I/O operation on `path` failed; `action` says which.
    #[error("{}: {action}: {source}", .path.display())]
    Io {
        path: PathBuf,
        action: String,
        #[source]
        source: std::io::Error,
    },
    /// The content could not be decoded, or the variables could not be
    /// encoded. `file` is `None` for [`MemoryStorage`].
    #[error("{}: {source}", file_label(.file))]
    Format {
        file: Option<PathBuf>,
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
            PersistError::Io { path, .. } => Some(path),
            PersistError::Format { file, .. } => file.as_deref(),
        }
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

/// Keeps the last saved store as JSON text in memory (exactly the text a
/// [`JsonFile`] would have written), so loading goes through the same codec.
#[derive(Clone, Debug, Default)]
pub struct MemoryStorage {
    text: Option<String>,
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
            saves: 0,
        }
    }

    /// The current JSON text, `None` if nothing was ever saved or given.
    pub fn text(&self) -> Option<&str> {
        self.text.as_deref()
    }

    /// How many times `save` succeeded.
    pub fn save_count(&self) -> usize {
        self.saves
    }
}

impl Storage for MemoryStorage {
    fn load(&mut self) -> Result<Vec<Variable>, PersistError> {
        match self.text.as_deref() {
            None | Some("") => Ok(Vec::new()),
            Some(text) => json::decode(text.as_bytes())
                .map_err(|source| PersistError::Format { file: None, source }),
        }
    }

    fn save(&mut self, vars: &[&Variable]) -> Result<(), PersistError> {
        let text = json::encode(&non_volatile(vars))
            .map_err(|source| PersistError::Format { file: None, source })?;
        self.text = Some(text);
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
