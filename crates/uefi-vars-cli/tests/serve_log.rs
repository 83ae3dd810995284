//! The service log of a real `uefi-vars serve` process (issue 9 item 7):
//! exactly one line per refused guest write, in the text and the JSON
//! format, carrying the store, the variable and the status; nothing for an
//! accepted write; a level filter that drops the refusals.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{kill_process, Pid, Signal};
use uefi_vars::codec::{request, Layout};
use uefi_vars::guid::{Guid, GLOBAL_VARIABLE};
use uefi_vars::name::VarName;
use uefi_vars_client::{ClientError, RemoteService};

const IO_TIMEOUT: Duration = Duration::from_secs(10);
const VENDOR: Guid = Guid([0x5a; 16]);
/// NON_VOLATILE | BOOTSERVICE_ACCESS | RUNTIME_ACCESS.
const NV_BS_RT: u32 = 0x7;

/// Runs `uefi-vars serve` with `log_args`, makes one refused write (the
/// read-only `SecureBoot`: EFI_WRITE_PROTECTED, edk2 VarCheckLib's
/// read-only list) and one accepted write, stops it with SIGTERM and
/// returns its standard error and the store path.
fn serve_one_refusal(dir: &Path, log_args: &[&str]) -> (String, PathBuf) {
    let (mut child, mut client) = start(dir, log_args);
    let refused = request::set_variable(
        Layout::X64,
        &GLOBAL_VARIABLE,
        &VarName::from("SecureBoot").to_wire(),
        0x6,
        &[1],
    );
    assert_ne!(return_status(&mut client, &refused), 0);
    assert_eq!(return_status(&mut client, &accepted_write()), 0);
    drop(client);
    (stop(&mut child, dir), dir.join("vars.json"))
}

fn accepted_write() -> Vec<u8> {
    request::set_variable(
        Layout::X64,
        &VENDOR,
        &VarName::from("Accepted").to_wire(),
        NV_BS_RT,
        b"ok",
    )
}

/// `uefi-vars serve` on `dir/vars.json` with its log in `dir/serve.log`,
/// and a connected client.
fn start(dir: &Path, log_args: &[&str]) -> (Child, RemoteService) {
    let store = dir.join("vars.json");
    let socket = dir.join("serve.sock");
    let log = dir.join("serve.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_uefi-vars"))
        .arg("serve")
        .arg("--store")
        .arg(&store)
        .arg("--socket")
        .arg(&socket)
        .args(log_args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let client = connect(&mut child, &socket, &log);
    (child, client)
}

/// Stops the server with SIGTERM; its log.
fn stop(child: &mut Child, dir: &Path) -> String {
    kill_process(Pid::from_child(child), Signal::TERM).unwrap();
    let deadline = Instant::now() + IO_TIMEOUT;
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "serve did not stop");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::fs::read_to_string(dir.join("serve.log")).unwrap()
}

fn connect(child: &mut Child, socket: &Path, log: &Path) -> RemoteService {
    let deadline = Instant::now() + IO_TIMEOUT;
    loop {
        match RemoteService::connect_with_timeout(socket, 65536, Layout::X64, Some(IO_TIMEOUT)) {
            Ok(c) => return c,
            Err(ClientError::Connect { .. }) if Instant::now() < deadline => {
                if let Some(status) = child.try_wait().unwrap() {
                    panic!(
                        "serve exited ({status}): {}",
                        std::fs::read_to_string(log).unwrap_or_default()
                    );
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("connect: {e}"),
        }
    }
}

/// SMM_VARIABLE_COMMUNICATE_HEADER.ReturnStatus of the reply (after the
/// 24-byte MM header and the 8-byte function number).
fn return_status(client: &mut RemoteService, req: &[u8]) -> u64 {
    let reply = client.communicate(req).unwrap().reply.unwrap();
    u64::from_le_bytes(reply[32..40].try_into().unwrap())
}

#[test]
fn a_refused_write_is_one_text_line() {
    let dir = tempfile::tempdir().unwrap();
    let (log, store) = serve_one_refusal(dir.path(), &[]);
    let refusals: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("uefi_vars::refusal"))
        .collect();
    assert_eq!(refusals.len(), 1, "{log}");
    let line = refusals[0];
    assert!(line.contains(" INFO "), "{line}");
    assert!(line.contains("SetVariable refused"), "{line}");
    assert!(line.contains("name=SecureBoot"), "{line}");
    assert!(
        line.contains("guid=8be4df61-93ca-11d2-aa0d-00e098032b8c"),
        "{line}"
    );
    assert!(line.contains("status=EFI_WRITE_PROTECTED"), "{line}");
    // the typed reason and its docs/compat.md row (QEMU accepts the write)
    assert!(line.contains("compat=\"read-only\""), "{line}");
    assert!(line.contains("refusal=the variable is read-only"), "{line}");
    assert!(
        line.contains(&format!("store={}", store.display())),
        "{line}"
    );
    assert!(line.contains("client{id=1}"), "{line}");
    assert!(!log.contains("Accepted"), "{log}");
}

#[test]
fn a_refused_write_is_one_json_object_with_its_fields() {
    let dir = tempfile::tempdir().unwrap();
    let (log, store) = serve_one_refusal(dir.path(), &["--log-format", "json"]);
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(lines.len() > 2, "{log}");
    let refusals: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|v| v["target"] == "uefi_vars::refusal")
        .collect();
    assert_eq!(refusals.len(), 1, "{log}");
    let r = refusals[0];
    assert_eq!(r["level"], "INFO");
    assert_eq!(r["fields"]["name"], "SecureBoot");
    assert_eq!(r["fields"]["status"], "EFI_WRITE_PROTECTED");
    assert_eq!(r["fields"]["compat"], "read-only");
    assert_eq!(r["fields"]["refusal"], "the variable is read-only");
    assert_eq!(r["fields"]["guid"], "8be4df61-93ca-11d2-aa0d-00e098032b8c");
    assert_eq!(r["spans"][0]["name"], "serve");
    assert_eq!(r["spans"][0]["store"], store.display().to_string());
    assert_eq!(r["span"]["name"], "client");
    assert_eq!(r["span"]["id"], 1);
}

#[test]
fn log_level_warn_drops_refusals_and_info_lines() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = serve_one_refusal(dir.path(), &["--log-level", "warn"]);
    assert!(!log.contains("refus"), "{log}");
    assert!(!log.contains("listening on"), "{log}");
}

/// A store write that fails (the JSON file replaced by a non-empty
/// directory, so the atomic rename over it fails) is one WARN line naming
/// the store; the guest gets EFI_DEVICE_ERROR (docs/compat.md
/// store-write-failure), itself one refusal line.
#[test]
fn a_host_error_is_one_warn_line() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, mut client) = start(
        dir.path(),
        &["--sync", "full-rewrite", "--log-format", "json"],
    );
    let store = dir.path().join("vars.json");
    std::fs::remove_file(&store).unwrap();
    std::fs::create_dir(&store).unwrap();
    std::fs::write(store.join("keep"), b"").unwrap();
    let device_error = 0x8000_0000_0000_0007;
    assert_eq!(return_status(&mut client, &accepted_write()), device_error);
    assert_eq!(client.take_host_error_count(), 1);
    drop(client);
    let log = stop(&mut child, dir.path());
    let events: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let of = |target: &str| -> Vec<&serde_json::Value> {
        events.iter().filter(|v| v["target"] == target).collect()
    };
    let host_errors = of("uefi_vars::host_error");
    assert_eq!(host_errors.len(), 1, "{log}");
    assert_eq!(host_errors[0]["level"], "WARN");
    let error = host_errors[0]["fields"]["error"].as_str().unwrap();
    assert!(error.contains(&store.display().to_string()), "{error}");
    let refusals = of("uefi_vars::refusal");
    assert_eq!(refusals.len(), 1, "{log}");
    assert_eq!(refusals[0]["fields"]["status"], "EFI_DEVICE_ERROR");
    assert_eq!(refusals[0]["fields"]["compat"], "store-write-failure");
    assert_eq!(refusals[0]["fields"]["name"], "Accepted");
}

#[test]
fn a_bad_log_filter_is_a_start_up_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_uefi-vars"))
        .arg("serve")
        .arg("--store")
        .arg(dir.path().join("vars.json"))
        .arg("--socket")
        .arg(dir.path().join("serve.sock"))
        .args(["--log-level", "info,=x=y"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("log level filter"), "{err}");
}
