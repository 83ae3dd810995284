//! The service and its storage backend: what is written when, and what the
//! guest sees when a write fails (compat: store-write-failure).

mod common;

use std::sync::{Arc, Mutex};

use uefi_vars::codec::{request, Layout};
use uefi_vars::guid::GLOBAL_VARIABLE;
use uefi_vars::name::VarName;
use uefi_vars::persist::{json, JsonFile, MemoryStorage, PersistError, Storage, SyncMode};
use uefi_vars::variable::{attr, VarKey, Variable};
use uefi_vars::{Config, EfiStatus, Service};

/// A backend that fails every save while `fail` is set and records what it
/// was asked to save.
#[derive(Clone, Default)]
struct Flaky {
    fail: Arc<Mutex<bool>>,
    saved: Arc<Mutex<Vec<String>>>,
}

impl Storage for Flaky {
    fn load(&mut self) -> Result<Vec<Variable>, PersistError> {
        Ok(Vec::new())
    }
    fn save(&mut self, vars: &[&Variable]) -> Result<(), PersistError> {
        if *self.fail.lock().unwrap() {
            return Err(PersistError::Io {
                path: "/flaky/vars.json".into(),
                action: "write".into(),
                source: std::io::Error::other("injected failure"),
            });
        }
        let nv = uefi_vars::persist::non_volatile(vars);
        self.saved.lock().unwrap().push(json::encode(&nv).unwrap());
        Ok(())
    }
}

fn status(reply: &[u8]) -> EfiStatus {
    EfiStatus(u64::from_le_bytes(reply[32..40].try_into().unwrap()))
}

fn set(svc: &mut Service, name: &str, attrs: u32, data: &[u8]) -> EfiStatus {
    let req = request::set_variable(
        Layout::X64,
        &GLOBAL_VARIABLE,
        &VarName::from(name).to_wire(),
        attrs,
        data,
    );
    status(&svc.communicate(&req).reply.unwrap())
}

const NV_BS_RT: u32 = attr::NON_VOLATILE | attr::BOOTSERVICE_ACCESS | attr::RUNTIME_ACCESS;

#[test]
fn compat_store_write_failure_is_reported_and_nothing_changes() {
    let backend = Flaky::default();
    let mut svc = common::new(Config::default(), Box::new(backend.clone())).unwrap();
    assert_eq!(set(&mut svc, "Keep", NV_BS_RT, b"v1"), EfiStatus::SUCCESS);
    let saves_before = backend.saved.lock().unwrap().len();

    *backend.fail.lock().unwrap() = true;
    // QEMU would answer SUCCESS and only log the failed write.
    assert_eq!(
        set(&mut svc, "Keep", NV_BS_RT, b"v2"),
        EfiStatus::DEVICE_ERROR
    );
    assert_eq!(
        set(&mut svc, "New", NV_BS_RT, b"x"),
        EfiStatus::DEVICE_ERROR
    );
    assert_eq!(
        set(&mut svc, "Keep", NV_BS_RT, b""),
        EfiStatus::DEVICE_ERROR
    );
    let errors = svc.take_errors();
    assert_eq!(errors.len(), 3);
    assert!(
        errors[0].to_string().contains("injected failure"),
        "{}",
        errors[0]
    );

    let key = |n: &str| VarKey::new(GLOBAL_VARIABLE, VarName::from(n));
    assert_eq!(svc.store().get(&key("Keep")).unwrap().data, b"v1");
    assert!(svc.store().get(&key("New")).is_none());
    // volatile variables are not written, so they work during the outage
    assert_eq!(
        set(&mut svc, "Vol", attr::BOOTSERVICE_ACCESS, b"x"),
        EfiStatus::SUCCESS
    );

    *backend.fail.lock().unwrap() = false;
    assert_eq!(set(&mut svc, "Keep", NV_BS_RT, b"v3"), EfiStatus::SUCCESS);
    let saved = backend.saved.lock().unwrap();
    assert_eq!(saved.len(), saves_before + 1);
    let last = json::decode(saved.last().unwrap().as_bytes()).unwrap();
    let keep = last
        .iter()
        .find(|v| v.name == VarName::from("Keep"))
        .unwrap();
    assert_eq!(keep.data, b"v3");
    assert!(last.iter().all(|v| v.name != VarName::from("Vol")));
}

#[test]
fn reset_failure_is_returned_to_the_caller() {
    let backend = Flaky::default();
    let mut svc = common::new(Config::default(), Box::new(backend.clone())).unwrap();
    *backend.fail.lock().unwrap() = true;
    assert!(svc.reset().is_err());
}

/// The store's variable names as a fresh reader sees them: the JSON file
/// with its journal replayed (`JsonFile::load`), and the JSON file alone.
fn names_loaded(p: &std::path::Path) -> Vec<String> {
    let vars = JsonFile::new(p).load().unwrap();
    vars.iter().map(|v| v.name.to_string()).collect()
}

fn names_in_file(p: &std::path::Path) -> Vec<String> {
    json::decode(&std::fs::read(p).unwrap())
        .unwrap()
        .iter()
        .map(|v| v.name.to_string())
        .collect()
}

#[test]
fn every_non_volatile_change_is_written_in_store_order() {
    for sync in [SyncMode::Journal, SyncMode::FullRewrite] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vars.json");
        let file = || JsonFile::new(&path).with_sync(sync);
        let mut svc = common::new(Config::default(), Box::new(file())).unwrap();
        // start-up state: CustomMode and VendorKeysNv are the only NV
        // variables, and the reset wrote the JSON file whole
        assert_eq!(names_in_file(&path), ["CustomMode", "VendorKeysNv"]);
        assert_eq!(set(&mut svc, "A", NV_BS_RT, b"1"), EfiStatus::SUCCESS);
        assert_eq!(set(&mut svc, "B", NV_BS_RT, b"2"), EfiStatus::SUCCESS);
        assert_eq!(set(&mut svc, "A", NV_BS_RT, b"3"), EfiStatus::SUCCESS);
        assert_eq!(
            names_loaded(&path),
            ["CustomMode", "VendorKeysNv", "B", "A"]
        );
        assert_eq!(set(&mut svc, "B", NV_BS_RT, b""), EfiStatus::SUCCESS);
        assert_eq!(names_loaded(&path), ["CustomMode", "VendorKeysNv", "A"]);
        let journal = dir.path().join("vars.json.journal");
        if sync == SyncMode::FullRewrite {
            assert_eq!(names_in_file(&path), ["CustomMode", "VendorKeysNv", "A"]);
            assert!(!journal.exists());
        } else {
            // the JSON file alone is behind until the journal is compacted
            assert_eq!(names_in_file(&path), ["CustomMode", "VendorKeysNv"]);
            assert!(std::fs::metadata(&journal).unwrap().len() > 0);
        }

        // dropping the service that made the changes compacts
        drop(svc);
        assert_eq!(names_in_file(&path), ["CustomMode", "VendorKeysNv", "A"]);
        assert_eq!(std::fs::metadata(&journal).map_or(0, |m| m.len()), 0);
        let svc2 = common::new(Config::default(), Box::new(file())).unwrap();
        let a = svc2
            .store()
            .get(&VarKey::new(GLOBAL_VARIABLE, VarName::from("A")))
            .unwrap();
        assert_eq!(a.data, b"3");
    }
}

#[test]
fn reset_drops_volatile_and_keeps_non_volatile() {
    let mut svc = common::new(Config::default(), Box::new(MemoryStorage::new())).unwrap();
    assert_eq!(set(&mut svc, "Nv", NV_BS_RT, b"1"), EfiStatus::SUCCESS);
    assert_eq!(
        set(
            &mut svc,
            "Vol",
            attr::BOOTSERVICE_ACCESS | attr::RUNTIME_ACCESS,
            b"1"
        ),
        EfiStatus::SUCCESS
    );
    svc.reset().unwrap();
    assert!(svc
        .store()
        .get(&VarKey::new(GLOBAL_VARIABLE, "Nv".into()))
        .is_some());
    assert!(svc
        .store()
        .get(&VarKey::new(GLOBAL_VARIABLE, "Vol".into()))
        .is_none());
}
