//! Fault injection for persistence tests: make the Nth write, fsync,
//! rename, journal append or fdatasync of a [`JsonFile`](super::JsonFile)
//! fail or stop short ([`FaultyFileOps`]), or the Nth save or change of any
//! [`Storage`] fail ([`FaultyStorage`]).
//!
//! Both are driven through a shared handle, so a test can arm a fault after
//! the storage has been handed to a [`Service`](crate::Service), and disarm
//! it to check that the service recovers.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::file::{FileOps, RealFileOps};
use super::{Change, PersistError, Storage};
use crate::store::VarStore;
use crate::variable::Variable;

/// A file-system call [`FaultyFileOps`] can break.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FileOp {
    /// Writing the content (the temporary file, or the store in place).
    Write,
    /// Truncating the store to the new length (in-place mode only).
    SetLen,
    /// fsync of the written file.
    SyncFile,
    /// Renaming the temporary file over the store (atomic mode only).
    Rename,
    /// fsync of the directory after the rename (or after creating the file).
    SyncDir,
    /// Appending a record to the journal.
    Append,
    /// fdatasync of the journal (after an append, or after cutting it).
    SyncData,
}

/// What happens at the faulty call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FaultKind {
    /// The call does nothing and returns an error.
    Fail,
    /// Only the first `n` bytes are written, then an error (ENOSPC style).
    /// For calls other than [`FileOp::Write`] and [`FileOp::Append`] this
    /// is [`FaultKind::Fail`].
    Short(usize),
    /// The call is performed and then reports an error (an fsync that
    /// wrote the data but says EIO).
    AfterEffect,
}

/// One armed fault: the `nth` call (counting from 1, since arming) of `op`
/// behaves as `kind`; with `sticky`, every later call of `op` too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// The file operation that fails.
    pub op: FileOp,
    /// Which call of it (1: the next one).
    pub nth: u64,
    /// How it fails.
    pub kind: FaultKind,
    /// Whether every later call fails too.
    pub sticky: bool,
}

#[derive(Debug, Default)]
struct State {
    fault: Option<Fault>,
    /// Calls of the faulty op since arming.
    seen: u64,
    /// Faults delivered since arming.
    fired: u64,
    /// Every call made, for tests that look at the sequence.
    log: Vec<FileOp>,
}

/// [`FileOps`] that performs the real calls except for one armed fault.
/// Clones share the same state.
#[derive(Clone, Debug, Default)]
pub struct FaultyFileOps {
    state: Arc<Mutex<State>>,
}

fn injected(op: FileOp) -> io::Error {
    io::Error::other(format!("injected fault at {op:?}"))
}

impl FaultyFileOps {
    /// File operations that pass everything to the real filesystem until a fault is armed.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Arms `fault` (replacing any other) and restarts the counts.
    pub fn arm(&self, fault: Fault) {
        let mut s = self.state();
        s.fault = Some(fault);
        s.seen = 0;
        s.fired = 0;
    }

    /// Disarms: every call is real again.
    pub fn clear(&self) {
        self.state().fault = None;
    }

    /// Faults delivered since the last [`arm`](Self::arm).
    pub fn fired(&self) -> u64 {
        self.state().fired
    }

    /// The calls made so far (faulty or not), oldest first.
    pub fn log(&self) -> Vec<FileOp> {
        self.state().log.clone()
    }

    /// Records a call of `op`; returns the fault kind to deliver, if any.
    fn check(&self, op: FileOp) -> Option<FaultKind> {
        let mut s = self.state();
        s.log.push(op);
        let fault = s.fault.filter(|f| f.op == op)?;
        s.seen = s.seen.saturating_add(1);
        let hit = s.seen == fault.nth || (fault.sticky && s.seen > fault.nth);
        if hit {
            s.fired = s.fired.saturating_add(1);
            Some(fault.kind)
        } else {
            None
        }
    }

    fn simple(&self, op: FileOp, real: impl FnOnce() -> io::Result<()>) -> io::Result<()> {
        match self.check(op) {
            None => real(),
            Some(FaultKind::AfterEffect) => {
                real()?;
                Err(injected(op))
            }
            Some(_) => Err(injected(op)),
        }
    }
}

impl FileOps for FaultyFileOps {
    fn write_all(&self, file: &mut File, data: &[u8]) -> io::Result<()> {
        match self.check(FileOp::Write) {
            None => RealFileOps.write_all(file, data),
            Some(FaultKind::Fail) => Err(injected(FileOp::Write)),
            Some(FaultKind::Short(n)) => {
                file.write_all(data.get(..n).unwrap_or(data))?;
                Err(injected(FileOp::Write))
            }
            Some(FaultKind::AfterEffect) => {
                file.write_all(data)?;
                Err(injected(FileOp::Write))
            }
        }
    }

    fn set_len(&self, file: &File, len: u64) -> io::Result<()> {
        self.simple(FileOp::SetLen, || RealFileOps.set_len(file, len))
    }

    fn sync_file(&self, file: &File) -> io::Result<()> {
        self.simple(FileOp::SyncFile, || RealFileOps.sync_file(file))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.simple(FileOp::Rename, || RealFileOps.rename(from, to))
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.simple(FileOp::SyncDir, || RealFileOps.sync_dir(dir))
    }

    fn append(&self, file: &File, offset: u64, data: &[u8]) -> io::Result<()> {
        match self.check(FileOp::Append) {
            None => RealFileOps.append(file, offset, data),
            Some(FaultKind::Fail) => Err(injected(FileOp::Append)),
            Some(FaultKind::Short(n)) => {
                file.write_all_at(data.get(..n).unwrap_or(data), offset)?;
                Err(injected(FileOp::Append))
            }
            Some(FaultKind::AfterEffect) => {
                file.write_all_at(data, offset)?;
                Err(injected(FileOp::Append))
            }
        }
    }

    fn sync_data(&self, file: &File) -> io::Result<()> {
        self.simple(FileOp::SyncData, || RealFileOps.sync_data(file))
    }
}

/// Wraps any [`Storage`] and fails its writes on demand: the `nth` save or
/// change after [`FaultyStorage::fail_nth_save`] (and, if `sticky`, every
/// later one) returns an error without reaching the inner storage. Loads
/// always pass through. Clones share the inner storage and the fault.
#[derive(Clone, Debug)]
pub struct FaultyStorage<S> {
    inner: Arc<Mutex<S>>,
    fault: Arc<Mutex<Option<(u64, bool, u64)>>>,
}

impl<S: Storage> FaultyStorage<S> {
    /// `inner` with no fault armed.
    pub fn new(inner: S) -> Self {
        FaultyStorage {
            inner: Arc::new(Mutex::new(inner)),
            fault: Arc::new(Mutex::new(None)),
        }
    }

    /// Fails the `nth` save from now on (1 = the next one).
    pub fn fail_nth_save(&self, nth: u64, sticky: bool) {
        *self.fault.lock().unwrap_or_else(PoisonError::into_inner) = Some((nth, sticky, 0));
    }

    /// Every save reaches the inner storage again.
    pub fn clear(&self) {
        *self.fault.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Runs `f` on the inner storage (e.g. to read what it holds).
    pub fn with_inner<R>(&self, f: impl FnOnce(&mut S) -> R) -> R {
        f(&mut self.inner.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl<S: Storage> Storage for FaultyStorage<S> {
    fn load(&mut self) -> Result<Vec<Variable>, PersistError> {
        self.with_inner(Storage::load)
    }

    fn save(&mut self, vars: &[&Variable]) -> Result<(), PersistError> {
        self.check()?;
        self.with_inner(|s| s.save(vars))
    }

    fn apply(&mut self, change: Change<'_>, before: &VarStore) -> Result<(), PersistError> {
        self.check()?;
        self.with_inner(|s| s.apply(change, before))
    }

    fn pending(&self) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pending()
    }

    fn take_warning(&mut self) -> Option<PersistError> {
        self.with_inner(Storage::take_warning)
    }
}

impl<S: Storage> FaultyStorage<S> {
    /// Counts one write; the injected error if this one must fail.
    fn check(&self) -> Result<(), PersistError> {
        let fail = {
            let mut f = self.fault.lock().unwrap_or_else(PoisonError::into_inner);
            match f.as_mut() {
                Some((nth, sticky, seen)) => {
                    *seen = seen.saturating_add(1);
                    *seen == *nth || (*sticky && *seen > *nth)
                }
                None => false,
            }
        };
        if fail {
            return Err(PersistError::io(
                Path::new("<faulty storage>"),
                "save",
                io::Error::other("injected save failure"),
            ));
        }
        Ok(())
    }
}
