//! Observers are installed by the caller, never picked up from the
//! environment (issue 9, item 3): what a `ServiceObserver` is told, what
//! the `CaptureObserver` writes, and that `UEFI_VARS_CAPTURE_DIR` alone
//! makes the library write nothing.

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use uefi_vars::codec::{request, Layout};
use uefi_vars::guid::GLOBAL_VARIABLE;
use uefi_vars::name::VarName;
use uefi_vars::pcap::{read_file, RecordKind};
use uefi_vars::persist::MemoryStorage;
use uefi_vars::service::capture::{CaptureInfo, EVENT_RECORD};
use uefi_vars::service::{Event, ServiceObserver};
use uefi_vars::variable::attr;
use uefi_vars::{testing, Config, EfiStatus, MmResponse, Service};

/// Writes down, in order, what it is told.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

impl ServiceObserver for Log {
    fn reset(&mut self) {
        self.0.lock().unwrap().push("reset".into());
    }
    fn event(&mut self, event: Event) {
        self.0.lock().unwrap().push(format!("{event:?}"));
    }
    fn exchange(&mut self, request: &[u8], response: &MmResponse) {
        let reply = response.reply.as_ref().map(Vec::len);
        self.0
            .lock()
            .unwrap()
            .push(format!("exchange {} {reply:?}", request.len()));
    }
}

fn query() -> Vec<u8> {
    request::query_variable_info(Layout::X64, attr::BOOTSERVICE_ACCESS)
}

#[test]
fn an_installed_observer_is_told_everything_in_order() {
    let mut svc = Service::in_memory(Config::default());
    let log = Log::default();
    assert!(svc.set_observer(Some(Box::new(log.clone()))).is_none());
    let q = query();
    svc.communicate(&q);
    // Too short for an MM header: refused framing, no reply.
    svc.communicate(&[0; 3]);
    svc.set_buffer_size(4096);
    let status = svc.set_variable(
        GLOBAL_VARIABLE,
        VarName::from("Observed"),
        attr::BOOTSERVICE_ACCESS,
        b"x",
    );
    assert_eq!(status, EfiStatus::SUCCESS);
    let blob = svc.snapshot();
    svc.restore_into(&blob).unwrap();
    svc.reset().unwrap();
    // Removed: told nothing more.
    assert!(svc.set_observer(None).is_some());
    svc.communicate(&q);
    assert_eq!(
        *log.0.lock().unwrap(),
        [
            format!("exchange {} Some({})", q.len(), q.len()),
            "exchange 3 None".into(),
            "BufferSize(4096)".into(),
            "HostWrite".into(),
            "Restore".into(),
            "reset".into(),
        ]
    );
}

#[test]
fn the_capture_observer_writes_the_power_on_reset_and_each_exchange() {
    let dir = tempfile::tempdir().unwrap();
    let mut svc = testing::in_memory(Config::default(), Some(dir.path()));
    // Nothing is written before the first request.
    assert_eq!(files(dir.path()), Vec::<String>::new());
    let q = query();
    let answer = svc.communicate(&q);
    svc.communicate(&[0; 3]);
    svc.set_buffer_size(4096);

    let files = files(dir.path());
    assert_eq!(files.len(), 2, "{files:?}");
    let pcap = files.iter().find(|f| f.ends_with(".pcap")).unwrap();
    let records = read_file(&dir.path().join(pcap)).unwrap();
    let kinds: Vec<RecordKind> = records.iter().map(|r| r.kind).collect();
    assert_eq!(
        kinds,
        [
            RecordKind::Reset,
            RecordKind::Request,
            RecordKind::Reply,
            RecordKind::Request,
            RecordKind::Other(EVENT_RECORD),
        ]
    );
    assert_eq!(records[1].payload, q);
    assert_eq!(Some(&records[2].payload), answer.reply.as_ref());
    assert_eq!(
        Event::decode(&records[4].payload),
        Some(Event::BufferSize(4096))
    );

    let sidecar = dir.path().join(pcap.replace(".pcap", ".json"));
    let info: CaptureInfo = serde_json::from_slice(&std::fs::read(sidecar).unwrap()).unwrap();
    assert!(info
        .thread
        .ends_with("writes_the_power_on_reset_and_each_exchange"));
    assert_eq!(info.start_store, None);
    assert_eq!(info.max_storage, Config::default().max_storage);
}

#[test]
fn a_capture_of_a_loaded_store_keeps_the_store_it_started_from() {
    let dir = tempfile::tempdir().unwrap();
    let mut seed = Service::in_memory(Config::default());
    let nv = attr::NON_VOLATILE | attr::BOOTSERVICE_ACCESS;
    let status = seed.set_variable(GLOBAL_VARIABLE, VarName::from("Kept"), nv, b"abc");
    assert_eq!(status, EfiStatus::SUCCESS);
    let vars: Vec<_> = seed.store().iter().collect();
    let text = uefi_vars::persist::json::encode(&uefi_vars::persist::non_volatile(&vars)).unwrap();
    let storage = Box::new(MemoryStorage::from_text(text.clone()));
    let mut svc = testing::new(Config::default(), storage, Some(dir.path())).unwrap();
    svc.communicate(&query());
    let start = files(dir.path())
        .into_iter()
        .find(|f| f.ends_with(".start.json"))
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join(start)).unwrap(),
        text
    );
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Set for the child run of the test below.
const CHILD: &str = "UEFI_VARS_OBSERVER_TEST_CHILD";

/// The test binary is run again with `UEFI_VARS_CAPTURE_DIR` set and
/// creates services every way an embedder can: the directory stays empty.
#[test]
fn the_capture_variable_alone_captures_nothing() {
    if std::env::var_os(CHILD).is_some() {
        let mut svcs = vec![
            Service::in_memory(Config::default()),
            Service::new(Config::default(), Box::new(MemoryStorage::new())).unwrap(),
            Service::open(Config::default(), Box::new(MemoryStorage::new())).unwrap(),
        ];
        for svc in &mut svcs {
            assert!(svc.communicate(&query()).reply.is_some());
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "the_capture_variable_alone_captures_nothing",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .env(testing::CAPTURE_DIR_VAR, dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    // The child really ran that one test.
    assert!(stdout.contains("1 passed"), "{stdout}");
    assert_eq!(files(dir.path()), Vec::<String>::new());
}

/// The house rule behind the test above, for every path: no source file of
/// the library or the device crate reads the process environment.
#[test]
fn no_library_source_reads_the_environment() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in [root.join("src"), root.join("../uefi-vars-device/src")] {
        collect_rs(&dir, &mut files);
    }
    assert!(files.len() > 20, "{files:?}");
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        // At run time; env!() at build time is no setting of the process.
        for needle in ["env::var", "var_os("] {
            assert!(!text.contains(needle), "{} uses {needle}", f.display());
        }
    }
}

fn collect_rs(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            collect_rs(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}
