//! The write-ahead journal beside the JSON store (persist::journal,
//! persist::file): faults injected into its appends, fdatasyncs and
//! compactions, damaged journals, and what every reader then sees. The
//! rule: the store reopens as the last acknowledged state (or, for the one
//! write whose answer was an error, possibly that write's state), never
//! torn, and damage that is not a torn tail is a typed error.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use uefi_vars::guid::GLOBAL_VARIABLE;
use uefi_vars::name::VarName;
use uefi_vars::persist::fault::{Fault, FaultKind, FaultyFileOps, FileOp};
use uefi_vars::persist::{json, JournalError, JsonFile, PersistError, Storage};
use uefi_vars::variable::{attr, Variable};
use uefi_vars::{Config, EfiStatus, Service};

const NV_BS_RT: u32 = attr::NON_VOLATILE | attr::BOOTSERVICE_ACCESS | attr::RUNTIME_ACCESS;

struct Rig {
    dir: tempfile::TempDir,
    ops: FaultyFileOps,
    svc: Service,
}

impl Rig {
    fn path(&self) -> PathBuf {
        self.dir.path().join("vars.json")
    }

    fn journal(&self) -> PathBuf {
        self.dir.path().join("vars.json.journal")
    }

    fn set(&mut self, name: &str, data: &[u8]) -> EfiStatus {
        self.svc
            .set_variable(GLOBAL_VARIABLE, VarName::from(name), NV_BS_RT, data)
    }

    /// The non-volatile variables the service holds, in order.
    fn live(&self) -> Vec<Variable> {
        live(&self.svc)
    }

    fn arm(&self, op: FileOp, kind: FaultKind, sticky: bool) {
        self.ops.arm(Fault {
            op,
            nth: 1,
            kind,
            sticky,
        });
    }
}

fn live(svc: &Service) -> Vec<Variable> {
    svc.store()
        .iter()
        .filter(|v| v.is_non_volatile())
        .cloned()
        .collect()
}

/// A fresh reader: the JSON file with the journal replayed, and its
/// warnings.
fn reopen(path: &Path) -> (Vec<Variable>, Vec<PersistError>) {
    let mut f = JsonFile::new(path);
    let vars = f.load().unwrap_or_else(|e| panic!("reopen: {e}"));
    let mut warnings = Vec::new();
    while let Some(w) = f.take_warning() {
        warnings.push(w);
    }
    (vars, warnings)
}

fn file_vars(path: &Path) -> Vec<Variable> {
    json::decode(&std::fs::read(path).unwrap()).unwrap()
}

/// A service on a journaled store holding two variables of its own; the
/// compaction threshold is `threshold` bytes.
fn rig(threshold: u64) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let ops = FaultyFileOps::new();
    let file = JsonFile::new(dir.path().join("vars.json"))
        .with_compact_threshold(threshold)
        .with_file_ops(Arc::new(ops.clone()));
    let svc = Service::new(Config::default(), Box::new(file)).unwrap();
    let mut r = Rig { dir, ops, svc };
    assert_eq!(r.set("Keep", b"old"), EfiStatus::SUCCESS);
    assert_eq!(r.set("Other", b"o"), EfiStatus::SUCCESS);
    r
}

#[test]
fn compat_json_journal_a_change_is_one_append_and_one_fdatasync() {
    let mut r = rig(1 << 20);
    let before = r.ops.log().len();
    assert_eq!(r.set("Keep", b"new"), EfiStatus::SUCCESS);
    assert_eq!(r.ops.log()[before..], [FileOp::Append, FileOp::SyncData]);
    // Created once, private to the owner.
    let mode = std::fs::metadata(r.journal()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // The JSON file alone is behind; every reader sees the change.
    assert!(!file_vars(&r.path()).iter().any(|v| v.data == b"new"));
    assert_eq!(reopen(&r.path()).0, r.live());
}

/// An append cut short (ENOSPC) or failing outright, and a failing or
/// lying fdatasync: the guest gets DEVICE_ERROR, nothing changes, the
/// record is taken back, and the store reopens as the last acknowledged
/// state with nothing to report.
#[test]
fn failed_append_or_fdatasync_is_not_acknowledged_and_taken_back() {
    let faults = [
        (FileOp::Append, FaultKind::Fail),
        (FileOp::Append, FaultKind::Short(0)),
        (FileOp::Append, FaultKind::Short(5)),
        (FileOp::Append, FaultKind::Short(100)),
        (FileOp::Append, FaultKind::AfterEffect),
        (FileOp::SyncData, FaultKind::Fail),
        (FileOp::SyncData, FaultKind::AfterEffect),
    ];
    for (op, kind) in faults {
        let ctx = format!("{op:?} {kind:?}");
        let mut r = rig(1 << 20);
        let acked = r.live();
        r.arm(op, kind, false);
        assert_eq!(r.set("Keep", b"refused"), EfiStatus::DEVICE_ERROR, "{ctx}");
        assert_eq!(r.live(), acked, "{ctx}");
        let errors = r.svc.take_errors();
        assert_eq!(errors.len(), 1, "{ctx}");
        assert!(
            errors[0].to_string().contains("injected"),
            "{ctx}: {}",
            errors[0]
        );
        let (vars, warnings) = reopen(&r.path());
        assert_eq!(vars, acked, "{ctx}");
        assert!(warnings.is_empty(), "{ctx}: {warnings:?}");
        // Writes work again and land after the last acknowledged record.
        assert_eq!(r.set("Keep", b"after"), EfiStatus::SUCCESS, "{ctx}");
        let (vars, warnings) = reopen(&r.path());
        assert_eq!(vars, r.live(), "{ctx}");
        assert!(warnings.is_empty(), "{ctx}: {warnings:?}");
    }
}

/// When the record cannot even be taken back (the truncate fails too), the
/// torn bytes stay in the file: a reader drops them as a torn tail and says
/// so; the writer cuts them before its next record.
#[test]
fn torn_tail_that_could_not_be_cut_is_dropped_and_reported() {
    let r = rig(1 << 20);
    let acked = r.live();
    let len_before = std::fs::metadata(r.journal()).unwrap().len();
    let path = r.path();
    let journal = r.journal();
    // The writer is gone (killed: no compaction) ...
    let Rig { dir: _dir, svc, .. } = r;
    std::mem::forget(svc);
    // ... in the middle of its next append: 30 bytes of a record.
    let mut torn = json::encode(&[&Variable::new(
        GLOBAL_VARIABLE,
        VarName::from("Keep"),
        NV_BS_RT,
        b"torn".to_vec(),
    )])
    .unwrap()
    .into_bytes();
    torn.truncate(30);
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&journal)
            .unwrap();
        f.write_all(&torn).unwrap();
    }
    let (vars, warnings) = reopen(&path);
    assert_eq!(vars, acked);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    match &warnings[0] {
        PersistError::TornTail { tail, .. } => {
            assert_eq!(tail.offset, len_before);
            assert_eq!(tail.bytes, 30);
        }
        other => panic!("{other}"),
    }
    // A service opening it reports the warning as a host error.
    let mut svc = Service::open(Config::default(), Box::new(JsonFile::new(&path))).unwrap();
    let errors = svc.take_errors();
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].to_string().contains("never acknowledged"),
        "{}",
        errors[0]
    );
    assert_eq!(live(&svc), acked);
    // Its first record cuts the garbage; the journal is clean again.
    assert_eq!(
        svc.set_variable(GLOBAL_VARIABLE, VarName::from("Keep"), NV_BS_RT, b"next"),
        EfiStatus::SUCCESS
    );
    let expect = live(&svc);
    std::mem::forget(svc); // no compaction: read the journal itself
    assert_eq!(reopen(&path).0, expect);
    assert!(reopen(&path).1.is_empty());
}

/// Compaction faults come after the change itself is durable: the write is
/// acknowledged, the failure is a host error, and the store reopens whole
/// whatever step failed (temporary file, its fsync, the rename, the
/// directory fsync, emptying the journal).
#[test]
fn compaction_faults_never_lose_an_acknowledged_write() {
    let faults = [
        (FileOp::Write, FaultKind::Short(10)),
        (FileOp::SyncFile, FaultKind::Fail),
        (FileOp::Rename, FaultKind::Fail),
        (FileOp::Rename, FaultKind::AfterEffect),
        (FileOp::SyncDir, FaultKind::Fail),
        (FileOp::SetLen, FaultKind::Fail),
    ];
    for (op, kind) in faults {
        let ctx = format!("{op:?} {kind:?}");
        // A tiny threshold: every change compacts.
        let mut r = rig(1);
        r.arm(op, kind, false);
        assert_eq!(r.set("Keep", b"acked"), EfiStatus::SUCCESS, "{ctx}");
        assert_eq!(r.ops.fired(), 1, "{ctx}");
        let errors = r.svc.take_errors();
        assert_eq!(errors.len(), 1, "{ctx}: {errors:?}");
        let (vars, warnings) = reopen(&r.path());
        assert_eq!(vars, r.live(), "{ctx}");
        assert!(warnings.is_empty(), "{ctx}: {warnings:?}");
        // Later changes still land, and a clean stop leaves the JSON file
        // complete on its own.
        assert_eq!(r.set("Other", b"later"), EfiStatus::SUCCESS, "{ctx}");
        assert_eq!(reopen(&r.path()).0, r.live(), "{ctx}");
        r.svc.compact().unwrap();
        assert_eq!(file_vars(&r.path()), r.live(), "{ctx}");
    }
}

/// A compaction that renamed the new file into place but could not empty
/// the journal leaves a journal that says it is obsolete: readers take the
/// JSON file alone.
#[test]
fn journal_left_behind_by_a_finished_compaction_is_ignored() {
    let mut r = rig(1 << 20);
    assert_eq!(r.set("Keep", b"new"), EfiStatus::SUCCESS);
    r.arm(FileOp::SetLen, FaultKind::Fail, true);
    r.svc.compact().unwrap();
    let expect = r.live();
    assert_eq!(file_vars(&r.path()), expect);
    assert!(std::fs::metadata(r.journal()).unwrap().len() > 0);
    let (vars, warnings) = reopen(&r.path());
    assert_eq!(vars, expect);
    assert!(warnings.is_empty(), "{warnings:?}");
    // The writer must not append behind the obsolete records while the
    // journal cannot be emptied: the change is refused.
    assert_eq!(r.set("Keep", b"x"), EfiStatus::DEVICE_ERROR);
    r.ops.clear();
    assert_eq!(r.set("Keep", b"y"), EfiStatus::SUCCESS);
    assert_eq!(reopen(&r.path()).0, r.live());
}

/// Damage that is not a torn tail, and a JSON file replaced behind the
/// journal's back, are typed errors naming the journal.
#[test]
fn damage_and_a_replaced_json_file_are_errors() {
    let mut r = rig(1 << 20);
    assert_eq!(r.set("Keep", b"v1"), EfiStatus::SUCCESS);
    assert_eq!(r.set("Keep", b"v2"), EfiStatus::SUCCESS);
    let journal = r.journal();
    let path = r.path();
    std::mem::forget(r.svc);
    let good = std::fs::read(&journal).unwrap();

    // A flipped bit in the first record (more follow).
    let mut bad = good.clone();
    bad[50] ^= 0x10;
    std::fs::write(&journal, &bad).unwrap();
    let err = JsonFile::new(&path).load().unwrap_err();
    assert!(
        matches!(
            &err,
            PersistError::Journal {
                source: JournalError::Corrupt { offset: 40, .. },
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.path(), Some(journal.as_path()));

    // A damaged header.
    let mut bad = good.clone();
    bad[3] = b'X';
    std::fs::write(&journal, &bad).unwrap();
    let err = JsonFile::new(&path).load().unwrap_err();
    assert!(
        matches!(
            &err,
            PersistError::Journal {
                source: JournalError::Header(_),
                ..
            }
        ),
        "{err}"
    );

    // The JSON file edited while changes are pending.
    std::fs::write(&journal, &good).unwrap();
    let mut vars = file_vars(&path);
    vars.pop();
    let refs: Vec<&Variable> = vars.iter().collect();
    std::fs::write(&path, json::encode(&refs).unwrap()).unwrap();
    let err = JsonFile::new(&path).load().unwrap_err();
    assert!(
        matches!(
            &err,
            PersistError::Journal {
                source: JournalError::Mismatch { .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("remove the journal"), "{err}");
}

/// The journal grows to the threshold, then one change compacts: the JSON
/// file is complete and the journal empty.
#[test]
fn threshold_compaction_folds_the_journal() {
    let mut r = rig(4096);
    let mut compacted = false;
    for i in 0..100u32 {
        assert_eq!(r.set("Hot", &i.to_le_bytes()), EfiStatus::SUCCESS);
        let len = std::fs::metadata(r.journal()).unwrap().len();
        assert!(len <= 4096 + 1024, "journal grew to {len}");
        if len == 0 {
            compacted = true;
            assert_eq!(file_vars(&r.path()), r.live());
        }
        assert_eq!(reopen(&r.path()).0, r.live(), "after write {i}");
    }
    assert!(compacted);
    assert!(r.svc.take_errors().is_empty());
}

/// A write of the same variable again (edk2 `UpdateVariable` returns before
/// writing when data and attributes are unchanged) moves it to the end of
/// the store order and nothing else: its record is appended without an
/// fdatasync of its own, every reader sees the new order at once, and the
/// next change's fdatasync makes both durable.
#[test]
fn identical_rewrite_is_appended_without_its_own_fdatasync() {
    let mut r = rig(1 << 20);
    let before = r.ops.log().len();
    assert_eq!(r.set("Keep", b"old"), EfiStatus::SUCCESS);
    assert_eq!(r.ops.log()[before..], [FileOp::Append]);
    let names: Vec<String> = r.live().iter().map(|v| v.name.to_string()).collect();
    assert_eq!(names[names.len() - 2..], ["Other", "Keep"]);
    let (seen, warnings) = reopen(&r.path());
    assert!(warnings.is_empty());
    assert_eq!(seen, r.live());
    assert_eq!(r.set("Third", b"3"), EfiStatus::SUCCESS);
    assert_eq!(
        r.ops.log()[before..],
        [FileOp::Append, FileOp::Append, FileOp::SyncData]
    );
    assert_eq!(reopen(&r.path()).0, r.live());
    assert!(r.svc.take_errors().is_empty());
}

/// A save (machine reset, clean stop) when the JSON file already holds
/// exactly the store and nothing is pending writes nothing; one with a
/// journaled move compacts.
#[test]
fn save_of_an_unchanged_store_writes_nothing() {
    let mut r = rig(1 << 20);
    r.svc.reset().unwrap();
    assert_eq!(file_vars(&r.path()), r.live());
    let before = r.ops.log().len();
    r.svc.reset().unwrap();
    r.svc.compact().unwrap();
    assert_eq!(r.ops.log().len(), before, "{:?}", &r.ops.log()[before..]);
    assert_eq!(r.set("Keep", b"old"), EfiStatus::SUCCESS);
    r.svc.compact().unwrap();
    assert!(r.ops.log()[before..].contains(&FileOp::Rename));
    assert_eq!(file_vars(&r.path()), r.live());
}
