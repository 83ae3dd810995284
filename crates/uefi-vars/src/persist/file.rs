//! The JSON store on disk.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::journal::{self, EntryRef, FileId, JournalError, ReplayError, Replayed};
use super::{json, non_volatile, Change, PersistError, Storage};
use crate::store::VarStore;
use crate::variable::Variable;

/// When [`JsonFile`] brings the JSON file up to date.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SyncMode {
    /// Every change is appended to the journal beside the file
    /// (`NAME.journal`) and made durable with one `fdatasync`: no rewrite,
    /// no rename, no directory sync, cost independent of the store size.
    /// The JSON file is rewritten (compaction: the journal folded in, then
    /// emptied) when the journal outgrows a threshold, on every
    /// [`save`](Storage::save) (machine reset, clean stop,
    /// `uefi-vars compact`). Between compactions the JSON file alone is not
    /// current: read the store through [`JsonFile::load`], which replays
    /// the journal.
    ///
    /// A put of a variable identical to the stored one (same attributes,
    /// data, timestamp and signer) changes nothing on disk but its place in
    /// the store order (it moves to the end): its record is written without
    /// an fdatasync of its own, so every reader sees it at once and the
    /// next synced record makes it durable; a power failure before that can
    /// lose only the move (the content is the last acknowledged one). A
    /// save when the JSON file already holds exactly the store, with
    /// nothing pending, writes nothing.
    #[default]
    Journal,
    /// Every change rewrites the whole JSON file (in its [`WriteMode`]), so
    /// the file alone is current at all times; the cost grows with the
    /// store (one full encode and write, two fsyncs per change).
    FullRewrite,
}

/// Journal size beyond which a change triggers a compaction, at the least;
/// the threshold is twice the JSON file when that is larger, so the
/// rewrite's cost is spread over a number of changes that grows with it.
pub const DEFAULT_COMPACT_BYTES: u64 = 256 * 1024;

/// How [`JsonFile::save`](Storage::save) replaces the file's content.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
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
/// can make any one of them fail or stop short (`persist::fault`, `testing` feature). Every
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
    /// Writes the whole of `data` at `offset` (a journal append).
    fn append(&self, file: &File, offset: u64, data: &[u8]) -> io::Result<()> {
        file.write_all_at(data, offset)
    }
    /// fdatasync of a file (a journal append, or cutting the journal).
    fn sync_data(&self, file: &File) -> io::Result<()> {
        file.sync_data()
    }
}

/// The real file-system calls.
#[derive(Clone, Copy, Debug, Default)]
pub struct RealFileOps;

impl FileOps for RealFileOps {}

/// What this handle knows about the journal file.
#[derive(Debug, Default)]
struct JournalState {
    /// Open for appending, once a record was written.
    file: Option<File>,
    /// Whether the fields below describe the file (it was loaded, probed
    /// or written through this handle).
    known: bool,
    /// The JSON file the journal's records apply to.
    base: Option<FileId>,
    /// End of the valid part; 0: no header yet.
    end: u64,
    next_seq: u64,
    /// The file holds bytes past `end` (torn tail, failed append, obsolete
    /// journal): they are cut before the next record.
    cut: bool,
    /// A failed rewrite may have left the JSON file neither old nor new
    /// (in-place mode): the next change rewrites it whole.
    json_unsure: bool,
    /// Failed compactions in a row: each doubles the threshold.
    failures: u32,
}

/// QEMU's JSON variable store in a file, with a write-ahead journal
/// beside it ([`SyncMode`]; format and replay in [`journal`]).
///
/// Loading: a missing file or an empty file is an empty store (QEMU creates
/// the file at start); the journal, if any, is replayed onto it. Every I/O
/// error is returned with the path; nothing is retried or swallowed.
#[derive(Debug)]
pub struct JsonFile {
    path: PathBuf,
    journal_path: PathBuf,
    mode: WriteMode,
    sync: SyncMode,
    /// Fixed compaction threshold; `None`: the default rule.
    compact_at: Option<u64>,
    ops: Arc<dyn FileOps>,
    journal: JournalState,
    warnings: Vec<PersistError>,
}

/// `NAME.journal` beside `path`.
pub fn journal_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(std::ffi::OsString::from)
        .unwrap_or_default();
    name.push(".journal");
    path.with_file_name(name)
}

fn read_optional(path: &Path) -> Result<Vec<u8>, PersistError> {
    match fs::read(path) {
        Ok(bytes) => Ok(bytes),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(PersistError::io(path, "read", e)),
    }
}

impl JsonFile {
    /// A store at `path`, journaled ([`SyncMode::Journal`]), rewritten with
    /// [`WriteMode::AtomicReplace`].
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self::with_mode(path, WriteMode::default())
    }

    /// The JSON store at `path`, written in `mode`.
    pub fn with_mode(path: impl Into<PathBuf>, mode: WriteMode) -> Self {
        let path = path.into();
        JsonFile {
            journal_path: journal_path(&path),
            path,
            mode,
            sync: SyncMode::default(),
            compact_at: None,
            ops: Arc::new(RealFileOps),
            journal: JournalState::default(),
            warnings: Vec::new(),
        }
    }

    /// Chooses when the JSON file is rewritten.
    pub fn with_sync(mut self, sync: SyncMode) -> Self {
        self.sync = sync;
        self
    }

    /// Compacts once the journal holds more than `bytes`, instead of the
    /// default: more than [`DEFAULT_COMPACT_BYTES`] and more than twice the
    /// JSON file.
    pub fn with_compact_threshold(mut self, bytes: u64) -> Self {
        self.compact_at = Some(bytes);
        self
    }

    /// Routes the writes, fsyncs and renames of `save` through `ops`
    /// (fault injection in tests).
    pub fn with_file_ops(mut self, ops: Arc<dyn FileOps>) -> Self {
        self.ops = ops;
        self
    }

    /// The JSON file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The journal file (`NAME.journal`, created mode 0600 when first
    /// needed).
    pub fn journal_path(&self) -> &Path {
        &self.journal_path
    }

    /// How the file is rewritten.
    pub fn mode(&self) -> WriteMode {
        self.mode
    }

    /// When the file is rewritten.
    pub fn sync(&self) -> SyncMode {
        self.sync
    }

    /// Writes `text` as the whole content of the file, in the configured
    /// mode, bypassing the journal: only for a store without one.
    pub(crate) fn write_text(&self, text: &str) -> Result<(), PersistError> {
        match self.mode {
            WriteMode::AtomicReplace => write_atomic(&*self.ops, &self.path, text.as_bytes()),
            WriteMode::InPlace => write_in_place(&*self.ops, &self.path, text.as_bytes()),
        }
    }

    fn format_error(&self, source: json::FormatError) -> PersistError {
        PersistError::Format {
            file: Some(self.path.clone()),
            source,
        }
    }

    fn jio(&self, action: &str, e: io::Error) -> PersistError {
        PersistError::io(&self.journal_path, action, e)
    }

    /// Takes the state of a replay as this handle's own.
    fn adopt(&mut self, r: &Replayed, journal_len: u64) {
        let j = &mut self.journal;
        j.known = true;
        j.base = Some(r.json);
        j.next_seq = r.next_seq.max(1);
        j.end = r.append_at.unwrap_or(0);
        j.cut = journal_len > j.end;
        j.json_unsure = false;
        if let Some(tail) = &r.torn {
            self.warnings.push(PersistError::TornTail {
                path: self.journal_path.clone(),
                tail: tail.clone(),
            });
        }
    }

    /// Learns the journal's state without keeping the variables.
    fn ensure_known(&mut self) -> Result<(), PersistError> {
        if !self.journal.known {
            self.load()?;
        }
        Ok(())
    }

    fn threshold(&self) -> u64 {
        let base = self.journal.base.map_or(0, |b| b.len);
        self.compact_at
            .unwrap_or_else(|| DEFAULT_COMPACT_BYTES.max(base.saturating_mul(2)))
            .saturating_mul(1u64 << self.journal.failures.min(16))
    }

    fn open_journal(&mut self) -> Result<(), PersistError> {
        if self.journal.file.is_none() {
            let existed = fs::symlink_metadata(&self.journal_path).is_ok();
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(&self.journal_path)
                .map_err(|e| self.jio("open journal", e))?;
            if !existed {
                // Once per store: the new name must survive a crash, or the
                // records acknowledged in it would vanish with it.
                sync_dir(&*self.ops, parent_dir(&self.journal_path))?;
            }
            self.journal.file = Some(file);
        }
        Ok(())
    }

    fn journal_file(&self) -> Result<&File, PersistError> {
        self.journal
            .file
            .as_ref()
            .ok_or_else(|| self.jio("open journal", io::Error::other("not open")))
    }

    /// Cuts the journal back to its valid part and makes that durable.
    fn cut_journal(&mut self) -> Result<(), PersistError> {
        let end = self.journal.end;
        self.open_journal()?;
        let file = self.journal_file()?;
        let done = self
            .ops
            .set_len(file, end)
            .map_err(|e| PersistError::io(&self.journal_path, "truncate journal", e))
            .and_then(|()| {
                self.ops
                    .sync_data(file)
                    .map_err(|e| PersistError::io(&self.journal_path, "fdatasync journal", e))
            });
        done?;
        self.journal.cut = false;
        Ok(())
    }

    /// Appends one record (after the header if the journal is empty) and,
    /// with `sync`, makes it durable: a change is acknowledged only if this
    /// succeeds. Without `sync` (a record that changes only the store
    /// order) the next synced append or compaction makes it durable.
    fn append(&mut self, record: &[u8], sync: bool) -> Result<(), PersistError> {
        self.open_journal()?;
        if self.journal.cut {
            self.cut_journal()?;
        }
        let mut framed;
        let data: &[u8] = if self.journal.end == 0 {
            let base = match self.journal.base {
                Some(b) => b,
                None => FileId::of(&read_optional(&self.path)?),
            };
            self.journal.base = Some(base);
            framed = journal::encode_header(self.journal.next_seq, base);
            framed.extend_from_slice(record);
            &framed
        } else {
            record
        };
        let end = self.journal.end;
        let file = self.journal_file()?;
        let done = self
            .ops
            .append(file, end, data)
            .map_err(|e| PersistError::io(&self.journal_path, "append to journal", e))
            .and_then(|()| {
                if !sync {
                    return Ok(());
                }
                self.ops
                    .sync_data(file)
                    .map_err(|e| PersistError::io(&self.journal_path, "fdatasync journal", e))
            });
        if let Err(e) = done {
            // Not acknowledged: take the record back now if possible, in
            // any case before the next one.
            self.journal.cut = true;
            let _ = self.cut_journal();
            return Err(e);
        }
        self.journal.end = end.saturating_add(data.len() as u64);
        self.journal.next_seq = self.journal.next_seq.saturating_add(1);
        Ok(())
    }

    /// Whether the JSON file already holds exactly `target` and nothing is
    /// pending: a compaction would write the same bytes again (a reset or
    /// a clean stop right after another).
    fn is_current(&self, target: FileId) -> bool {
        let j = &self.journal;
        j.known && j.end == 0 && !j.cut && !j.json_unsure && j.base == Some(target)
    }

    /// After a failed rewrite: find out which JSON file is in place.
    fn after_failed_write(&mut self, target: FileId) {
        if self.journal.end == 0 {
            // No record depends on which file is in place: learn it when
            // the next journal header is written.
            self.journal.base = None;
            self.journal.json_unsure = self.mode == WriteMode::InPlace;
            return;
        }
        let actual = fs::read(&self.path).ok().map(|b| FileId::of(&b));
        match actual {
            Some(id) if Some(id) == self.journal.base => {}
            Some(id) if id == target => {
                // The new file is in place: the journal is obsolete.
                self.journal.base = Some(target);
                self.journal.end = 0;
                self.journal.cut = true;
                let _ = self.cut_journal();
            }
            _ => self.journal.json_unsure = true,
        }
    }

    /// Rewrites the JSON file with `vars` and empties the journal.
    fn compact(&mut self, vars: &[&Variable]) -> Result<(), PersistError> {
        let text = json::encode(&non_volatile(vars)).map_err(|e| self.format_error(e))?;
        let target = FileId::of(text.as_bytes());
        if self.is_current(target) {
            return Ok(());
        }
        if !self.journal.known && fs::symlink_metadata(&self.journal_path).is_ok() {
            self.ensure_known()?;
        }
        if self.journal.cut {
            self.cut_journal()?;
        }
        if self.journal.end > 0 {
            // Announce the new file, so that a crash after the rename but
            // before the journal is emptied leaves a journal that says it
            // is obsolete.
            let record = journal::encode_record(self.journal.next_seq, EntryRef::Compacted(target))
                .map_err(|e| self.format_error(e))?;
            self.append(&record, true)?;
        }
        if let Err(e) = self.write_text(&text) {
            self.after_failed_write(target);
            return Err(e);
        }
        self.journal.known = true;
        self.journal.base = Some(target);
        self.journal.json_unsure = false;
        self.journal.failures = 0;
        if self.journal.end > 0 {
            self.journal.end = 0;
            self.journal.cut = true;
            if let Err(e) = self.cut_journal() {
                // The JSON file is current; the journal is emptied before
                // its next record (and says it is obsolete meanwhile).
                self.warnings.push(e);
            }
        }
        Ok(())
    }
}

impl Storage for JsonFile {
    fn load(&mut self) -> Result<Vec<Variable>, PersistError> {
        let mut attempt = 0u32;
        loop {
            // The journal first: a compaction by another process between
            // the two reads then shows as a mismatch, and is read again.
            let journal_bytes = read_optional(&self.journal_path)?;
            let json_bytes = read_optional(&self.path)?;
            match journal::replay(&json_bytes, &journal_bytes) {
                Ok(r) => {
                    self.adopt(&r, journal_bytes.len() as u64);
                    return Ok(r.vars);
                }
                Err(ReplayError::Journal(JournalError::Mismatch { .. })) if attempt < 2 => {
                    attempt = attempt.saturating_add(1);
                }
                Err(ReplayError::Json(source)) => return Err(self.format_error(source)),
                Err(ReplayError::Journal(source)) => {
                    return Err(PersistError::Journal {
                        path: self.journal_path.clone(),
                        source,
                    })
                }
            }
        }
    }

    fn save(&mut self, vars: &[&Variable]) -> Result<(), PersistError> {
        self.compact(vars)
    }

    fn apply(&mut self, change: Change<'_>, before: &VarStore) -> Result<(), PersistError> {
        if self.sync == SyncMode::FullRewrite || self.journal.json_unsure {
            return self.compact(&change.merged(before));
        }
        // compat: json-journal (QEMU rewrites the whole file per change)
        self.ensure_known()?;
        let (entry, sync) = match change {
            // The same variable again (edk2's UpdateVariable returns before
            // writing when data and attributes are unchanged): the content
            // on disk is already right, only the store order moves, so the
            // record needs no fdatasync of its own (SyncMode::Journal).
            Change::Put(v) => (EntryRef::Put(v), before.get(&v.key()) != Some(v)),
            Change::Delete(k) => (EntryRef::Delete(k), true),
        };
        let record = journal::encode_record(self.journal.next_seq, entry)
            .map_err(|e| self.format_error(e))?;
        self.append(&record, sync)?;
        if self.journal.end > self.threshold() {
            if let Err(e) = self.compact(&change.merged(before)) {
                self.journal.failures = self.journal.failures.saturating_add(1);
                self.warnings.push(e);
            }
        }
        Ok(())
    }

    fn pending(&self) -> bool {
        let j = &self.journal;
        j.end > 0 || j.cut || j.json_unsure
    }

    fn take_warning(&mut self) -> Option<PersistError> {
        (!self.warnings.is_empty()).then(|| self.warnings.remove(0))
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
pub(crate) const NEW_FILE_MODE: u32 = 0o600;

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
