//! The JSON store on disk.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::{json, non_volatile, PersistError, Storage};
use crate::variable::Variable;

/// How [`JsonFile::save`](Storage::save) replaces the file's content.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WriteMode {
    /// Write a temporary file in the same directory, fsync it, rename it over
    /// the target and fsync the directory. A crash leaves either the old or
    /// the new store, never a mix (at worst a stray `.NAME.tmp-*` file).
    /// The target's permission bits are kept (a new store is 0600, whatever
    /// the umask); its inode, owner and security label are not (the file
    /// is a new one). A symlink target is followed:
    /// the file it points to is replaced, the link stays.
    #[default]
    AtomicReplace,
    /// Rewrite the existing file: open it (creating it if missing), write the
    /// new content from offset 0, truncate to the new length, fsync. Keeps the
    /// inode, owner and label, for callers that were handed a prepared file
    /// (libvirt). **Not crash-atomic**: a crash or a failed write part way
    /// leaves a file mixing new and old content. QEMU itself writes this way
    /// (truncating first).
    InPlace,
}

/// The file-system calls that make a save durable, behind a trait so tests
/// can make any one of them fail or stop short ([`super::fault`]). Every
/// method defaults to the real call; [`RealFileOps`] is that.
pub trait FileOps: Send + Sync + std::fmt::Debug {
    /// Writes the whole of `data` at the file's position.
    fn write_all(&self, file: &mut File, data: &[u8]) -> io::Result<()> {
        file.write_all(data)
    }
    /// Truncates (or extends) the file to `len` bytes.
    fn set_len(&self, file: &File, len: u64) -> io::Result<()> {
        file.set_len(len)
    }
    /// fsync of a file's data and metadata.
    fn sync_file(&self, file: &File) -> io::Result<()> {
        file.sync_all()
    }
    /// rename(2).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }
    /// fsync of a directory (makes a rename or a creation durable).
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir).and_then(|d| d.sync_all())
    }
}

/// The real file-system calls.
#[derive(Clone, Copy, Debug, Default)]
pub struct RealFileOps;

impl FileOps for RealFileOps {}

/// QEMU's JSON variable store in a file.
///
/// Loading: a missing file or an empty file is an empty store (QEMU creates
/// the file at start). Every I/O error is returned with the path; nothing is
/// retried or swallowed.
#[derive(Clone, Debug)]
pub struct JsonFile {
    path: PathBuf,
    mode: WriteMode,
    ops: Arc<dyn FileOps>,
}

impl JsonFile {
    /// A store at `path`, written with [`WriteMode::AtomicReplace`].
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self::with_mode(path, WriteMode::default())
    }

    pub fn with_mode(path: impl Into<PathBuf>, mode: WriteMode) -> Self {
        JsonFile {
            path: path.into(),
            mode,
            ops: Arc::new(RealFileOps),
        }
    }

    /// Routes the writes, fsyncs and renames of `save` through `ops`
    /// (fault injection in tests).
    pub fn with_file_ops(mut self, ops: Arc<dyn FileOps>) -> Self {
        self.ops = ops;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn mode(&self) -> WriteMode {
        self.mode
    }

    /// Writes `text` as the whole content of the file, in the configured mode.
    pub fn write_text(&self, text: &str) -> Result<(), PersistError> {
        match self.mode {
            WriteMode::AtomicReplace => write_atomic(&*self.ops, &self.path, text.as_bytes()),
            WriteMode::InPlace => write_in_place(&*self.ops, &self.path, text.as_bytes()),
        }
    }
}

impl Storage for JsonFile {
    fn load(&mut self) -> Result<Vec<Variable>, PersistError> {
        let bytes = match fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(PersistError::io(&self.path, "read", e)),
        };
        if bytes.is_empty() {
            return Ok(Vec::new());
        }
        json::decode(&bytes).map_err(|source| PersistError::Format {
            file: Some(self.path.clone()),
            source,
        })
    }

    fn save(&mut self, vars: &[&Variable]) -> Result<(), PersistError> {
        let text = json::encode(&non_volatile(vars)).map_err(|source| PersistError::Format {
            file: Some(self.path.clone()),
            source,
        })?;
        self.write_text(&text)
    }
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn sync_dir(ops: &dyn FileOps, dir: &Path) -> Result<(), PersistError> {
    ops.sync_dir(dir)
        .map_err(|e| PersistError::io(dir, "fsync directory", e))
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Mode of a store file this module creates, whatever the umask. A
/// temporary file starts with at most this (no wider than the final mode)
/// and gets the final mode before it holds any data.
pub const NEW_FILE_MODE: u32 = 0o600;

fn write_atomic(ops: &dyn FileOps, path: &Path, content: &[u8]) -> Result<(), PersistError> {
    // Replace what a symlink points to, not the link.
    let target = match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => fs::canonicalize(path)
            .map_err(|e| PersistError::io(path, "resolve symbolic link", e))?,
        _ => path.to_path_buf(),
    };
    let Some(file_name) = target.file_name() else {
        return Err(PersistError::io(
            path,
            "find file name",
            io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"),
        ));
    };
    let dir = parent_dir(&target);
    // The store's mode, or NEW_FILE_MODE for a new store: never what the
    // umask would give (issue 12: a store can hold secrets).
    let mode = match fs::metadata(&target) {
        Ok(m) => m.permissions().mode() & 0o7777,
        Err(e) if e.kind() == io::ErrorKind::NotFound => NEW_FILE_MODE,
        Err(e) => return Err(PersistError::io(&target, "stat", e)),
    };

    // A fresh name in the same directory; never reuse an existing file.
    let (tmp_path, mut tmp) = {
        let mut attempt = 0u32;
        loop {
            let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
            let mut name = std::ffi::OsString::from(".");
            name.push(file_name);
            name.push(format!(".tmp-{}-{n}", std::process::id()));
            let candidate = dir.join(name);
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(NEW_FILE_MODE & mode)
                .open(&candidate)
            {
                Ok(f) => break (candidate, f),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 100 => {
                    attempt = attempt.wrapping_add(1);
                }
                Err(e) => {
                    return Err(PersistError::io(&candidate, "create temporary file", e));
                }
            }
        }
    };

    let written = (|| -> Result<(), PersistError> {
        tmp.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(|e| PersistError::io(&tmp_path, "set permissions", e))?;
        ops.write_all(&mut tmp, content)
            .map_err(|e| PersistError::io(&tmp_path, "write", e))?;
        ops.sync_file(&tmp)
            .map_err(|e| PersistError::io(&tmp_path, "fsync", e))?;
        ops.rename(&tmp_path, &target).map_err(|e| {
            PersistError::io(&target, format!("rename {} over it", tmp_path.display()), e)
        })
    })();
    drop(tmp);
    if let Err(err) = written {
        return Err(match fs::remove_file(&tmp_path) {
            Ok(()) => err,
            // Report the leftover rather than hide it.
            Err(cleanup) => PersistError::io(
                &tmp_path,
                format!("remove temporary file after failure ({err}), which also failed"),
                cleanup,
            ),
        });
    }
    sync_dir(ops, dir)
}

fn write_in_place(ops: &dyn FileOps, path: &Path, content: &[u8]) -> Result<(), PersistError> {
    let existed = match fs::metadata(path) {
        Ok(_) => true,
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => return Err(PersistError::io(path, "stat", e)),
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(NEW_FILE_MODE)
        .open(path)
        .map_err(|e| PersistError::io(path, "open for writing", e))?;
    if !existed {
        file.set_permissions(fs::Permissions::from_mode(NEW_FILE_MODE))
            .map_err(|e| PersistError::io(path, "set permissions", e))?;
    }
    ops.write_all(&mut file, content)
        .map_err(|e| PersistError::io(path, "write", e))?;
    ops.set_len(&file, content.len() as u64)
        .map_err(|e| PersistError::io(path, "truncate", e))?;
    ops.sync_file(&file)
        .map_err(|e| PersistError::io(path, "fsync", e))?;
    if !existed {
        sync_dir(ops, parent_dir(path))?;
    }
    Ok(())
}
