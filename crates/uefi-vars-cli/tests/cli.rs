//! The `uefi-vars` binary, run as a user runs it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_uefi-vars"))
}

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data")
        .join(name)
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn replay_real_trace_reports_all_identical() {
    let trace = data("ovmf-2boots-empty.pcap.gz");
    let expect = data("ovmf-2boots-empty.end.json");
    let o = run(&[
        "replay",
        trace.to_str().unwrap(),
        "--expect",
        expect.to_str().unwrap(),
    ]);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    assert!(out.contains("requests:   1746"), "{out}");
    assert!(out.contains("identical:  1746"), "{out}");
    assert!(out.contains("mismatches: 0"), "{out}");
    assert!(out.contains("final store: identical"), "{out}");
}

#[test]
fn replay_reports_mismatches_with_offsets_and_fails() {
    // The Fedora capture comes from QEMU 10.0: without the legacy switches
    // the GET_PAYLOAD_SIZE reply differs (65496 vs 65536) in bytes
    // 0x28..0x2a, and QueryVariableInfo's remaining storage (QEMU 10.0 does
    // not count OVMF's 476 bytes of policies) in bytes 0x30..0x31.
    let trace = data("fedora-boot-1.pcap.gz");
    let o = run(&["replay", trace.to_str().unwrap()]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("mismatches: 2"), "{out}");
    assert!(
        out.contains("record 1 variable GET_PAYLOAD_SIZE: differs at 0x28 0x29 0x2a"),
        "{out}"
    );
    assert!(
        out.contains("record 1749 variable QUERY_VARIABLE_INFO: differs at 0x30 0x31"),
        "{out}"
    );
    // Expected and actual values, and what to do about it.
    assert!(
        out.contains("0x28..0x2b: expected 00 00 01, got d8 ff 00"),
        "{out}"
    );
    assert!(
        out.contains("payload size: expected 65536, got 65496"),
        "{out}"
    );
    assert!(
        out.contains("run again with --legacy-payload-size"),
        "{out}"
    );
    let o = run(&[
        "replay",
        trace.to_str().unwrap(),
        "--legacy-payload-size",
        "--legacy-storage-accounting",
        "--expect",
        data("fedora-boot-1.json").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stdout(&o));
}

#[test]
fn replay_writes_the_final_store() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("end.json");
    let o = run(&[
        "replay",
        data("fedora-boot-2.pcap.gz").to_str().unwrap(),
        "--legacy-payload-size",
        "--legacy-storage-accounting",
        "--store",
        data("fedora-boot-1.json").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stdout(&o));
    let ours: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data("fedora-boot-2.json")).unwrap()).unwrap();
    assert_eq!(ours, expected);
}

#[test]
fn list_and_get_decode_variables() {
    let store = data("fedora-boot-1.json");
    let o = run(&["list", "--store", store.to_str().unwrap()]);
    let out = stdout(&o);
    assert!(o.status.success());
    assert_eq!(out.lines().count(), 28);
    assert!(
        out.contains("EfiGlobalVariable                     NV|BS|AT"),
        "{out}"
    );
    assert!(out.lines().any(|l| l.contains("BootOrder")));

    let o = run(&["get", "Lang", "--store", store.to_str().unwrap()]);
    let out = stdout(&o);
    assert!(out.contains("attributes: 0x7 (NV|BS|RT)"), "{out}");
    assert!(out.contains("value:      \"eng\""), "{out}");

    let o = run(&["get", "Lang", "--raw", "--store", store.to_str().unwrap()]);
    assert_eq!(stdout(&o).trim(), "656e6700");

    // 5254001087CE exists under two GUIDs in this store
    let o = run(&["get", "5254001087CE", "--store", store.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("several GUIDs"), "{}", stderr(&o));
}

#[test]
fn set_and_delete_round_trip_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("vars.json");
    std::fs::copy(data("fedora-boot-1.json"), &store).unwrap();
    let s = store.to_str().unwrap();

    let o = run(&["set", "Greeting", "--utf16", "hello", "--store", s]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&["get", "Greeting", "--store", s]);
    assert!(stdout(&o).contains("\"hello\" (UCS-2)"), "{}", stdout(&o));
    let o = run(&[
        "set", "Greeting", "--hex", "0102", "--attr", "nv,bs", "--store", s,
    ]);
    // attributes of an existing variable cannot change
    assert_eq!(o.status.code(), Some(3));
    assert!(
        stderr(&o).contains("EFI_INVALID_PARAMETER"),
        "{}",
        stderr(&o)
    );
    // ... and says why, and what to do.
    assert!(
        stderr(&o).contains(
            "Greeting exists with attributes NV|BS|RT; a write cannot change them to NV|BS \
             (delete it first, or pass --attr nv,bs,rt)"
        ),
        "{}",
        stderr(&o)
    );
    let o = run(&["delete", "Greeting", "--store", s]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&["get", "Greeting", "--store", s]);
    assert_eq!(o.status.code(), Some(2));

    // an authenticated variable cannot be deleted without a signature
    // (with its own attributes, AT included, edk2's descriptor check
    // answers first: VariableServiceSetVariable)
    let o = run(&["delete", "VendorKeysNv", "--store", s]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        stderr(&o).contains("EFI_SECURITY_VIOLATION"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("VendorKeysNv is an authenticated variable (NV|BS|AT)"),
        "{}",
        stderr(&o)
    );
    let o = run(&[
        "set",
        "X",
        "--hex",
        "00",
        "--attr",
        "nv,bs,rt,at",
        "--store",
        s,
    ]);
    assert_eq!(o.status.code(), Some(3));

    // the file is still a valid store that virt-fw-vars style readers accept
    let vars = uefi_vars::persist::json::decode(&std::fs::read(&store).unwrap()).unwrap();
    assert_eq!(vars.len(), 28);
}

#[test]
fn bad_store_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("bad.json");
    std::fs::write(&store, r#"{"version":2,"variables":[{"name":"A","guid":"8be4df61-93ca-11d2-aa0d-00e098032b8c","attr":7,"data":"0g"}]}"#).unwrap();
    let o = run(&["list", "--store", store.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("bad.json") && err.contains("\"A\"") && err.contains("data"),
        "{err}"
    );
}

/// Wraps a bare PKCS#7 SignedData in a ContentInfo so `openssl cms` can read it.
fn content_info(signed_data: &[u8]) -> Vec<u8> {
    let oid = [
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02,
    ];
    let der_len = |n: usize| -> Vec<u8> {
        if n < 0x80 {
            vec![n as u8]
        } else if n < 0x100 {
            vec![0x81, n as u8]
        } else {
            vec![0x82, (n >> 8) as u8, n as u8]
        }
    };
    let mut ctx = vec![0xa0];
    ctx.extend(der_len(signed_data.len()));
    ctx.extend_from_slice(signed_data);
    let mut body = oid.to_vec();
    body.extend(ctx);
    let mut out = vec![0x30];
    out.extend(der_len(body.len()));
    out.extend(body);
    out
}

#[test]
fn enroll_sign_apply_with_an_independent_verifier() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let store = d.join("vars.json");
    let pki = d.join("pki");
    let s = store.to_str().unwrap();

    let o = run(&[
        "enroll",
        "--create",
        "--store",
        s,
        "--generate",
        pki.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("SetupMode=0 SecureBoot=1"),
        "{}",
        stdout(&o)
    );
    let o = run(&["list", "--store", s]);
    let out = stdout(&o);
    for v in [
        "PK  = [1xX509]",
        "KEK  = [1xX509]",
        "db  = [1xX509]",
        "SecureBootEnable  = 1",
    ] {
        assert!(out.contains(v), "{v} missing in\n{out}");
    }
    let o = run(&["get", "PK", "--store", s]);
    assert!(
        stdout(&o).contains("subject: CN=uefi-vars test PK"),
        "{}",
        stdout(&o)
    );

    // a second db certificate, appended with an update signed by KEK
    let auth = d.join("db.auth");
    let o = run(&[
        "sign",
        "db",
        "--key",
        pki.join("KEK.key").to_str().unwrap(),
        "--cert",
        pki.join("KEK.crt").to_str().unwrap(),
        "--x509",
        pki.join("PK.crt").to_str().unwrap(),
        "--append",
        "--time",
        "2030-01-01 00:00:00",
        "--out",
        auth.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));

    // openssl verifies our signature over the content UEFI defines
    let bytes = std::fs::read(&auth).unwrap();
    let len = u32::from_le_bytes(bytes[16..20].try_into().unwrap()) as usize;
    assert_eq!(
        &bytes[20..24],
        &[0x00, 0x02, 0xf1, 0x0e],
        "WIN_CERTIFICATE revision and type"
    );
    let p7 = &bytes[40..16 + len];
    let payload = &bytes[16 + len..];
    let mut content: Vec<u8> = "db".encode_utf16().flat_map(u16::to_le_bytes).collect();
    content.extend_from_slice(&uefi_vars::guid::IMAGE_SECURITY_DATABASE.0);
    content.extend_from_slice(&0x67u32.to_le_bytes());
    content.extend_from_slice(&bytes[0..16]);
    content.extend_from_slice(payload);
    std::fs::write(d.join("content.bin"), &content).unwrap();
    std::fs::write(d.join("sig.der"), content_info(p7)).unwrap();
    let v = Command::new("openssl")
        .current_dir(d)
        .args([
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            "sig.der",
            "-content",
            "content.bin",
            "-CAfile",
            "pki/KEK.crt",
            "-purpose",
            "any",
            "-out",
            "/dev/null",
        ])
        .output()
        .unwrap();
    assert!(
        v.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&v.stderr)
    );

    let o = run(&[
        "apply",
        "db",
        "--auth",
        auth.to_str().unwrap(),
        "--append",
        "--store",
        s,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&["list", "--store", s]);
    assert!(
        stdout(&o).contains("db  = [1xX509, 1xX509]"),
        "{}",
        stdout(&o)
    );
    // applying the same APPEND again is allowed (APPEND is exempt from the
    // time check in edk2) and changes nothing: the entry is already there
    let o = run(&[
        "apply",
        "db",
        "--auth",
        auth.to_str().unwrap(),
        "--append",
        "--store",
        s,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&["list", "--store", s]);
    assert!(
        stdout(&o).contains("db  = [1xX509, 1xX509]"),
        "{}",
        stdout(&o)
    );
    // a replacing update older than the stored time (2030 after the append) is a replay
    let old = d.join("old.auth");
    let o = run(&[
        "sign",
        "db",
        "--key",
        pki.join("KEK.key").to_str().unwrap(),
        "--cert",
        pki.join("KEK.crt").to_str().unwrap(),
        "--x509",
        pki.join("db.crt").to_str().unwrap(),
        "--time",
        "2029-12-31 23:59:59",
        "--out",
        old.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&["apply", "db", "--auth", old.to_str().unwrap(), "--store", s]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("SECURITY_VIOLATION"), "{}", stderr(&o));
    // ... and the message shows both times.
    assert!(
        stderr(&o).contains("timestamp 2029-12-31 23:59:59 is not later than the stored one 2030-"),
        "{}",
        stderr(&o)
    );
    // signed by the wrong key
    let bad = d.join("bad.auth");
    let o = run(&[
        "sign",
        "db",
        "--key",
        pki.join("db.key").to_str().unwrap(),
        "--cert",
        pki.join("db.crt").to_str().unwrap(),
        "--x509",
        pki.join("db.crt").to_str().unwrap(),
        "--append",
        "--out",
        bad.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    let o = run(&[
        "apply",
        "db",
        "--auth",
        bad.to_str().unwrap(),
        "--append",
        "--store",
        s,
    ]);
    assert!(stderr(&o).contains("SECURITY_VIOLATION"), "{}", stderr(&o));
    // ... naming the signer and who may sign.
    assert!(
        stderr(&o).contains(
            "does not verify against any KEK or PK certificate: signed by CN=uefi-vars test db; \
             allowed: CN=uefi-vars test KEK; CN=uefi-vars test PK"
        ),
        "{}",
        stderr(&o)
    );
    // Signed by the right key but without --append: the content differs.
    let o = run(&[
        "apply",
        "db",
        "--auth",
        old.to_str().unwrap(),
        "--append",
        "--store",
        s,
    ]);
    assert!(
        stderr(&o).contains("the signed content differs"),
        "{}",
        stderr(&o)
    );
    // A payload that is not a signature list: where it goes wrong.
    let junk = d.join("junk.esl");
    let mut bytes = vec![0u8; 28];
    bytes[16..20].copy_from_slice(&1000u32.to_le_bytes());
    std::fs::write(&junk, &bytes).unwrap();
    let junk_auth = d.join("junk.auth");
    ok(&run(&[
        "sign",
        "db",
        "--key",
        pki.join("KEK.key").to_str().unwrap(),
        "--cert",
        pki.join("KEK.crt").to_str().unwrap(),
        "--data",
        junk.to_str().unwrap(),
        "--append",
        "--out",
        junk_auth.to_str().unwrap(),
    ]));
    let o = run(&[
        "apply",
        "db",
        "--auth",
        p(&junk_auth),
        "--append",
        "--store",
        s,
    ]);
    refused(
        &o,
        "not a valid signature list: at offset 0x0: ListSize 1000 runs past the end of the payload (28 bytes left)",
    );
}

// ---------------------------------------------------------------------------
// Formats (issue 10 item 1) and a CLI that never loses data (item 5).

fn ok(o: &Output) {
    assert!(o.status.success(), "{}{}", stdout(o), stderr(o));
}

/// Exit status 3: understood, refused, nothing changed.
fn refused(o: &Output, needle: &str) {
    assert_eq!(o.status.code(), Some(3), "{}{}", stdout(o), stderr(o));
    assert!(
        stderr(o).contains(needle),
        "wanted {needle:?} in {}",
        stderr(o)
    );
}

/// Exit status 2: a file missing, unreadable or invalid.
fn failed(o: &Output, needle: &str) {
    assert_eq!(o.status.code(), Some(2), "{}{}", stdout(o), stderr(o));
    assert!(
        stderr(o).contains(needle),
        "wanted {needle:?} in {}",
        stderr(o)
    );
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn convert_round_trips_through_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let src = data("ovmf-2boots-empty.end.json");
    let original = std::fs::read_to_string(&src).unwrap();
    for (ext, format) in [
        ("fd", "fd"),
        ("aws", "aws"),
        ("qcow2", "qcow2"),
        ("img", "fd"),
    ] {
        let mid = d.join(format!("mid.{ext}"));
        let back = d.join(format!("back-{ext}.json"));
        let mut args = vec!["convert", p(&src), p(&mid)];
        if ext == "img" {
            args.extend(["--format", format, "--layout", "ovmf-2m"]);
        }
        ok(&run(&args));
        ok(&run(&["convert", p(&mid), p(&back)]));
        assert_eq!(
            std::fs::read_to_string(&back).unwrap(),
            original,
            "via {ext}"
        );
        // `list` reads the intermediate format directly.
        let o = run(&["list", "--store", p(&mid)]);
        ok(&o);
        assert!(stdout(&o).contains("BootOrder"), "{ext}: {}", stdout(&o));
    }
    let fd = std::fs::read(d.join("mid.fd")).unwrap();
    assert_eq!(fd.len(), 0x8_4000, "default layout is OVMF_VARS_4M.fd");
    assert_eq!(std::fs::read(d.join("mid.img")).unwrap().len(), 0x2_0000);
    assert!(std::fs::read(d.join("mid.qcow2"))
        .unwrap()
        .starts_with(b"QFI\xfb"));
}

#[test]
fn convert_debian_image_gives_virt_fw_vars_variables() {
    let dir = tempfile::tempdir().unwrap();
    for image in ["OVMF_VARS_4M.ms.fd", "OVMF_VARS_4M.fd"] {
        let src = Path::new("/usr/share/OVMF").join(image);
        assert!(
            src.exists(),
            "{image}: install Debian's ovmf (scripts/test.sh does)"
        );
        let ours = dir.path().join(format!("{image}.ours.json"));
        let theirs = dir.path().join(format!("{image}.vfw.json"));
        ok(&run(&["convert", p(&src), p(&ours)]));
        let o = Command::new("virt-fw-vars")
            .args(["-i", p(&src), "--output-json", p(&theirs)])
            .output()
            .expect("virt-fw-vars (pip install virt-firmware)");
        assert!(o.status.success());
        let key = |path: &Path| {
            let mut v: Vec<(String, String, u32, Vec<u8>)> =
                uefi_vars::persist::json::decode(&std::fs::read(path).unwrap())
                    .unwrap()
                    .into_iter()
                    .map(|v| (v.guid.to_string(), v.name.to_string(), v.attributes, v.data))
                    .collect();
            v.sort();
            v
        };
        assert_eq!(key(&ours), key(&theirs), "{image}");
    }
}

#[test]
fn a_store_that_does_not_fit_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.json");
    let store = dir.path().join("x.fd");
    let data = "ab".repeat(30_000);
    let mut vars = Vec::new();
    for i in 0..3 {
        vars.push(format!(
            r#"{{"name": "Big{i}", "guid": "8be4df61-93ca-11d2-aa0d-00e098032b8c", "attr": 7, "data": "{data}"}}"#
        ));
    }
    std::fs::write(
        &big,
        format!(r#"{{"version": 2, "variables": [{}]}}"#, vars.join(",")),
    )
    .unwrap();
    let o = run(&["convert", p(&big), p(&store), "--layout", "ovmf-2m"]);
    refused(&o, "has room for");
    assert!(!store.exists());
    ok(&run(&[
        "convert",
        p(&big),
        p(&store),
        "--layout",
        "ovmf-4m",
    ]));
}

#[test]
fn editing_an_fd_store_keeps_its_format_and_output_leaves_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let fd = dir.path().join("vars.fd");
    std::fs::copy("/usr/share/OVMF/OVMF_VARS_4M.ms.fd", &fd).unwrap();
    let before = std::fs::read(&fd).unwrap();
    let out = dir.path().join("edited.json");
    ok(&run(&[
        "set",
        "Hello",
        "--text",
        "hi",
        "--store",
        p(&fd),
        "--output",
        p(&out),
    ]));
    assert!(
        std::fs::read(&fd).unwrap() == before,
        "the input must not change"
    );
    assert!(std::fs::read_to_string(&out).unwrap().contains("\"Hello\""));
    ok(&run(&["set", "Hello", "--text", "hi", "--store", p(&fd)]));
    let after = std::fs::read(&fd).unwrap();
    assert_eq!(after.len(), before.len());
    assert_eq!(
        after[..0x64],
        before[..0x64],
        "volume and store headers kept"
    );
    let o = run(&["get", "Hello", "--raw", "--input", p(&fd)]);
    assert_eq!(stdout(&o).trim(), "6869");
}

#[test]
fn edits_refuse_a_store_held_by_serve() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("vars.json");
    std::fs::copy(data("fedora-boot-1.json"), &store).unwrap();
    let before = std::fs::read(&store).unwrap();
    let socket = dir.path().join("s.sock");
    let mut child = bin()
        .args(["serve", "--store", p(&store), "--socket", p(&socket)])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !socket.exists() {
        assert!(std::time::Instant::now() < deadline, "serve did not start");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let set = run(&["set", "X", "--text", "1", "--store", p(&store)]);
    let del = run(&["delete", "Lang", "--store", p(&store)]);
    let enroll = run(&[
        "enroll",
        "--store",
        p(&store),
        "--generate",
        p(&dir.path().join("pki")),
    ]);
    let auth = dir.path().join("db.auth");
    std::fs::write(&auth, [0u8; 64]).unwrap();
    let others = [
        run(&["apply", "db", "--auth", p(&auth), "--store", p(&store)]),
        run(&["enroll", "--enroll-redhat", "--store", p(&store)]),
        run(&["configure", "--set-shim-verbose", "--store", p(&store)]),
        run(&["set-true", "X", "--store", p(&store)]),
        run(&["set-false", "X", "--store", p(&store)]),
        run(&["compact", "--store", p(&store)]),
        // Converting onto the store is a write too.
        run(&["convert", "/usr/share/OVMF/OVMF_VARS_4M.ms.fd", p(&store)]),
    ];
    child.kill().unwrap();
    child.wait().unwrap();
    for o in [&set, &del, &enroll].into_iter().chain(&others) {
        refused(o, "in use by a running `uefi-vars serve`");
    }
    assert!(std::fs::read(&store).unwrap() == before);
    assert!(
        !dir.path().join("pki").exists(),
        "no key files for a refused enroll"
    );
    // Once the service is gone the same edit goes through.
    ok(&run(&["set", "X", "--text", "1", "--store", p(&store)]));
}

#[test]
fn a_missing_store_is_an_error_unless_create() {
    let dir = tempfile::tempdir().unwrap();
    let nope = dir.path().join("nope.json");
    failed(&run(&["list", "--store", p(&nope)]), "no such store");
    failed(&run(&["get", "Lang", "--store", p(&nope)]), "no such store");
    let auth = dir.path().join("db.auth");
    std::fs::write(&auth, [0u8; 64]).unwrap();
    failed(
        &run(&["apply", "db", "--auth", p(&auth), "--store", p(&nope)]),
        "pass --create",
    );
    failed(
        &run(&["set", "A", "--text", "1", "--store", p(&nope)]),
        "pass --create",
    );
    assert!(!nope.exists());
    ok(&run(&[
        "set",
        "A",
        "--text",
        "1",
        "--store",
        p(&nope),
        "--create",
    ]));
    assert!(stdout(&run(&["list", "--store", p(&nope)])).contains(" A "));
}

#[test]
fn enroll_generate_never_overwrites_keys_and_writes_private_keys_0600() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    std::fs::create_dir(&pki).unwrap();
    std::fs::write(pki.join("KEK.key"), "precious").unwrap();
    let store = dir.path().join("vars.json");
    let o = run(&[
        "enroll",
        "--create",
        "--store",
        p(&store),
        "--generate",
        p(&pki),
    ]);
    refused(&o, "never overwrites keys");
    assert_eq!(
        std::fs::read_to_string(pki.join("KEK.key")).unwrap(),
        "precious"
    );
    assert!(!pki.join("PK.key").exists() && !store.exists());

    let fresh = dir.path().join("fresh");
    ok(&run(&[
        "enroll",
        "--create",
        "--store",
        p(&store),
        "--generate",
        p(&fresh),
    ]));
    for f in ["PK", "KEK", "db"] {
        let mode = std::fs::metadata(fresh.join(format!("{f}.key")))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{f}.key");
        assert!(fresh.join(format!("{f}.crt")).exists());
    }
}

/// virt-fw-vars --enroll-generate CN: the generated certificates carry the
/// given common name (read back by openssl, not by our code).
#[test]
fn enroll_generate_cn_names_the_generated_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("vars.json");
    let pki = dir.path().join("pki");
    ok(&run(&[
        "enroll",
        "--create",
        "--store",
        p(&store),
        "--generate",
        p(&pki),
        "--generate-cn",
        "Example Corp",
    ]));
    for f in ["PK", "KEK", "db"] {
        let o = Command::new("openssl")
            .args(["x509", "-noout", "-subject", "-nameopt", "oneline", "-in"])
            .arg(pki.join(format!("{f}.crt")))
            .output()
            .expect("openssl");
        ok(&o);
        assert!(
            stdout(&o).contains(&format!("CN = Example Corp {f}")),
            "{f}: {}",
            stdout(&o)
        );
    }
    // Without --generate it is a usage error.
    let o = run(&["enroll", "--store", p(&store), "--generate-cn", "X"]);
    assert_eq!(o.status.code(), Some(64), "{}", stderr(&o));
}

#[test]
fn enroll_refuses_an_enrolled_store_unless_replace_keys() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("vars.json");
    let s = p(&store);
    ok(&run(&[
        "enroll",
        "--create",
        "--store",
        s,
        "--generate",
        p(&dir.path().join("a")),
    ]));
    let pk = |s: &str| stdout(&run(&["get", "PK", "--raw", "--store", s]));
    let first = pk(s);
    let second_pki = dir.path().join("b");
    let o = run(&["enroll", "--store", s, "--generate", p(&second_pki)]);
    refused(&o, "already enrolled");
    assert_eq!(pk(s), first);
    assert!(
        !second_pki.exists(),
        "key files are created only after the store is checked"
    );
    ok(&run(&[
        "enroll",
        "--store",
        s,
        "--generate",
        p(&second_pki),
        "--replace-keys",
    ]));
    assert_ne!(pk(s), first);
}

#[test]
fn enroll_checks_the_store_before_creating_key_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("bad.json");
    std::fs::write(&store, "{ not json").unwrap();
    let pki = dir.path().join("pki");
    let o = run(&["enroll", "--store", p(&store), "--generate", p(&pki)]);
    failed(&o, "bad.json");
    assert!(!pki.exists());
}

#[test]
fn a_read_only_store_is_not_replaced() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("vars.json");
    std::fs::copy(data("fedora-boot-1.json"), &store).unwrap();
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o444)).unwrap();
    let before = std::fs::read(&store).unwrap();
    let auth = dir.path().join("db.auth");
    std::fs::write(&auth, [0u8; 64]).unwrap();
    let pki = dir.path().join("pki");
    for args in [
        vec!["set", "X", "--text", "1"],
        vec!["delete", "Lang"],
        vec!["set", "X", "--text", "1", "--in-place"],
        vec!["apply", "db", "--auth", p(&auth)],
        vec!["enroll", "--generate", p(&pki)],
        vec!["enroll", "--distro-keys", "debian"],
        vec!["configure", "--set-boot-uri", "http://192.0.2.1/x.iso"],
        vec!["set-true", "X"],
    ] {
        let mut a = args.clone();
        a.extend(["--store", p(&store)]);
        refused(&run(&a), "read-only");
    }
    assert!(std::fs::read(&store).unwrap() == before);
    assert!(!pki.exists(), "no key files for a refused enroll");
    let mode = std::fs::metadata(&store).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o444);
    // A read-only output file is protected the same way.
    let out = dir.path().join("out.json");
    std::fs::write(&out, "").unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o444)).unwrap();
    refused(&run(&["convert", p(&store), p(&out)]), "read-only");
    let o = run(&[
        "set",
        "X",
        "--text",
        "1",
        "--store",
        p(&store),
        "-o",
        p(&out),
    ]);
    refused(&o, "read-only");
    assert_eq!(std::fs::read(&out).unwrap(), b"");
}

#[test]
fn sizes_no_guest_can_read_back_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("vars.json");
    std::fs::write(&store, "").unwrap();
    // 65536 - 40 (MM + variable headers) - 36 (ACCESS_VARIABLE) - 4 ("A\0").
    let max = 65536 - 40 - 36 - 4;
    let o = run(&[
        "set",
        "A",
        "--hex",
        &"00".repeat(max + 1),
        "--store",
        p(&store),
    ]);
    refused(&o, "more than a guest can ever read back");
    ok(&run(&[
        "set",
        "A",
        "--hex",
        &"00".repeat(max),
        "--store",
        p(&store),
    ]));

    // A 1 GiB file (sparse) is refused from its size, without reading it.
    let huge = dir.path().join("huge.bin");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let started = std::time::Instant::now();
    let o = run(&["set", "B", "--file", p(&huge), "--store", p(&store)]);
    refused(&o, "1073741824 bytes is larger than");
    let out = dir.path().join("x.auth");
    let o = run(&[
        "sign",
        "db",
        "--key",
        "k",
        "--cert",
        "c",
        "--data",
        p(&huge),
        "--out",
        p(&out),
    ]);
    refused(&o, "1073741824 bytes is larger than");
    assert!(!out.exists());
    let o = run(&["apply", "db", "--auth", p(&huge), "--store", p(&store)]);
    refused(&o, "1073741824 bytes is larger than");
    let o = run(&[
        "configure",
        "--set-sbat-level",
        p(&huge),
        "--store",
        p(&store),
    ]);
    refused(&o, "1073741824 bytes is larger than");
    let o = run(&[
        "enroll",
        "--enroll-redhat",
        "--add-dbx",
        p(&huge),
        "--store",
        p(&store),
    ]);
    refused(&o, "1073741824 bytes is larger than");
    // Certificate and key files too (an unreadable certificate: exit 2).
    let o = run(&["enroll", "--pk", p(&huge), "--store", p(&store)]);
    failed(
        &o,
        "1073741824 bytes is larger than a certificate file can be",
    );
    let o = run(&[
        "sign",
        "db",
        "--key",
        p(&huge),
        "--cert",
        p(&huge),
        "--delete",
        "--out",
        p(&out),
    ]);
    failed(&o, "1073741824 bytes is larger than a");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    // A value that fits the read limit but not a GetVariable reply.
    let sbat = dir.path().join("sbat.csv");
    std::fs::write(&sbat, vec![b'x'; 65_500]).unwrap();
    let before = std::fs::read(&store).unwrap();
    let o = run(&[
        "configure",
        "--set-sbat-level",
        p(&sbat),
        "--store",
        p(&store),
    ]);
    refused(&o, "more than a guest can ever read back");
    // A JSON store imported with --set-json is held to the same limit.
    let big = dir.path().join("big.json");
    std::fs::write(
        &big,
        format!(
            r#"{{"version": 2, "variables": [{{"name": "Big", "guid": "8be4df61-93ca-11d2-aa0d-00e098032b8c", "attr": 7, "data": "{}"}}]}}"#,
            "ab".repeat(70_000)
        ),
    )
    .unwrap();
    let o = run(&["configure", "--set-json", p(&big), "--store", p(&store)]);
    refused(
        &o,
        "Big: 70000 data bytes is more than a guest can ever read back",
    );
    assert!(std::fs::read(&store).unwrap() == before);
}

#[test]
fn exit_statuses_are_distinct_and_documented() {
    let o = run(&["--help"]);
    ok(&o);
    // Whitespace collapsed: clap wraps the help where its wrap_help
    // feature is on (a workspace build enables it for the peer crate).
    let help = stdout(&o).split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(help.contains("3 refused"), "{help}");
    let o = run(&["set", "--no-such-flag"]);
    assert_eq!(o.status.code(), Some(64), "usage error: {}", stderr(&o));
    // Command lines clap accepts but that cannot be carried out are usage
    // errors too, and say what is missing.
    let dir0 = tempfile::tempdir().unwrap();
    let s0 = dir0.path().join("v.json");
    for (args, why) in [
        (vec!["enroll", "--create"], "give the keys"),
        (vec!["configure", "--create"], "nothing to do"),
        (
            vec!["apply", "Foo", "--auth", "x.auth", "--create"],
            "--guid is needed for \"Foo\"",
        ),
        (
            vec!["set", "A", "--text", "1", "--attr", "nv,xx", "--create"],
            "unknown attribute \"XX\"",
        ),
        (
            vec!["sign", "db", "--key", "k", "--cert", "c", "--out", "o"],
            "give the payload",
        ),
    ] {
        let mut a = args.clone();
        if a[0] != "sign" {
            a.extend(["--store", p(&s0)]);
        }
        let o = run(&a);
        assert_eq!(o.status.code(), Some(64), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(why), "{args:?}: {}", stderr(&o));
        assert!(!s0.exists(), "{args:?}");
    }
    let o = run(&["list", "--store", "/nonexistent/x.json"]);
    assert_eq!(o.status.code(), Some(2), "failure");
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("v.json");
    std::fs::write(&store, "").unwrap();
    // Refused by the SetVariable rules (attributes of an existing variable
    // cannot change): exit 3, and the store is unchanged.
    ok(&run(&["set", "A", "--text", "hi", "--store", p(&store)]));
    let before = std::fs::read(&store).unwrap();
    let o = run(&[
        "set",
        "A",
        "--text",
        "x",
        "--attr",
        "nv,bs",
        "--store",
        p(&store),
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(std::fs::read(&store).unwrap() == before);
}

#[test]
fn guids_by_name_and_with_braces_and_short_text_as_text() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("v.json");
    std::fs::write(&store, "").unwrap();
    let s = p(&store);
    ok(&run(&[
        "set",
        "A",
        "--text",
        "hi",
        "--guid",
        "{605DAB50-E046-4300-ABB6-3DD810DD8B23}",
        "--store",
        s,
    ]));
    let o = run(&["get", "A", "--guid", "shim", "--store", s]);
    ok(&o);
    assert!(
        stdout(&o).contains("605dab50-e046-4300-abb6-3dd810dd8b23 (ShimLock)"),
        "{}",
        stdout(&o)
    );
    let o = run(&["list", "--store", s]);
    assert!(stdout(&o).contains("A  = \"hi\""), "{}", stdout(&o));
    let o = run(&["get", "A", "--guid", "EfiGlobalVariable", "--store", s]);
    failed(&o, "no variable \"A\" in 8be4df61");
    let o = run(&["get", "A", "--guid", "{bogus}", "--store", s]);
    failed(&o, "nor a known name");
}

#[test]
fn list_and_get_decode_boot_entries_and_speak_json() {
    let store = data("fedora-boot-1.json");
    let s = store.to_str().unwrap();
    let o = run(&["list", "--store", s]);
    ok(&o);
    let out = stdout(&o);
    for want in [
        "Boot0002  = \"UEFI QEMU QEMU HARDDISK \" PciRoot(0x0)/Pci(0x2,0x2)/Pci(0x0,0x0)/Scsi(0x0,0x0) [active] +16 bytes optional data",
        "BootOrder  = 0002, 0003, 0004, 0005, 0006, 0000, 0001",
        "Timeout  = 3 s",
        "PlatformLang  = \"en-US\"",
        "ErrOut  = PciRoot(0x0)/Pci(0x1f,0x0)/Serial(0x0)/Uart(115200,8,N,1)/VenMsg(ad15a0d6-8bec-4acf-a073-d01de77e2d88)",
        "MAC(5254001087ce,0x1)/IPv4(0.0.0.0,0x0,DHCP,0.0.0.0,0.0.0.0,0.0.0.0)",
    ] {
        assert!(out.contains(want), "{want:?} not in\n{out}");
    }
    // The same titles virt-fw-vars reads from the entries.
    let vfw = Command::new("virt-fw-vars")
        .args(["-i", s, "--print"])
        .output()
        .expect("virt-fw-vars");
    let vfw = String::from_utf8_lossy(&vfw.stdout);
    assert!(vfw.contains("title=\"UEFI QEMU QEMU HARDDISK \""), "{vfw}");

    let o = run(&["list", "--json", "--store", s]);
    ok(&o);
    let all: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 28);
    let boot = all.iter().find(|v| v["name"] == "Boot0002").unwrap();
    assert_eq!(boot["guid_name"], "EfiGlobalVariable");
    assert_eq!(boot["value"]["description"], "UEFI QEMU QEMU HARDDISK ");
    assert_eq!(boot["value"]["flags"], serde_json::json!(["active"]));
    let order = all.iter().find(|v| v["name"] == "BootOrder").unwrap();
    assert_eq!(
        order["value"],
        serde_json::json!(["0002", "0003", "0004", "0005", "0006", "0000", "0001"])
    );

    let dir = tempfile::tempdir().unwrap();
    let enrolled = dir.path().join("e.json");
    ok(&run(&[
        "enroll",
        "--create",
        "--store",
        p(&enrolled),
        "--generate",
        p(&dir.path().join("k")),
    ]));
    let o = run(&["get", "KEK", "--json", "--store", p(&enrolled)]);
    ok(&o);
    let kek: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let cert = &kek["signature_lists"][0]["entries"][0]["certificate"];
    assert_eq!(cert["subject"], "CN=uefi-vars test KEK");
    assert_eq!(kek["signature_lists"][0]["type"], "X509");
    assert_eq!(cert["sha256"].as_str().unwrap().len(), 64);
    assert!(kek["time"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn replay_reads_any_format_and_shows_what_differs_in_the_final_store() {
    let dir = tempfile::tempdir().unwrap();
    let start = dir.path().join("start.fd");
    ok(&run(&[
        "convert",
        p(&data("fedora-boot-1.json")),
        p(&start),
    ]));
    let end = dir.path().join("end.fd");
    let o = run(&[
        "replay",
        p(&data("fedora-boot-2.pcap.gz")),
        "--legacy-payload-size",
        "--store",
        p(&start),
        "--out",
        p(&end),
        "--expect",
        p(&data("fedora-boot-2.json")),
    ]);
    ok(&o);
    assert!(
        stdout(&o).contains("final store: identical"),
        "{}",
        stdout(&o)
    );
    assert!(
        std::fs::read(&end).unwrap().len() == 0x8_4000,
        "an .fd output"
    );

    // Against the wrong expectation: per variable, what differs.
    let o = run(&[
        "replay",
        p(&data("fedora-boot-2.pcap.gz")),
        "--legacy-payload-size",
        "--store",
        p(&start),
        "--expect",
        p(&data("fedora-boot-1.json")),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(out.contains("final store: DIFFERS"), "{out}");
    assert!(
        out.contains("differs: ") && out.contains("data expected "),
        "{out}"
    );
}

#[test]
fn errors_name_the_users_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("vars.json");
    std::fs::write(&store, "").unwrap();
    let out = dir.path().join("missing-dir").join("out.json");
    let o = run(&[
        "set",
        "A",
        "--text",
        "1",
        "--store",
        p(&store),
        "--output",
        p(&out),
    ]);
    failed(&o, &format!("{}: ", out.display()));
    assert!(!stderr(&o).contains("out.json.tmp"), "{}", stderr(&o));
    // A corrupt JSON store is named once, with where it goes wrong.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"version": 2, "variables": [{"name": "x"}]}"#).unwrap();
    for cmd in [
        &["list", "--store"][..],
        &["set", "A", "--text", "1", "--store"][..],
        &["configure", "--set-true", "A", "--store"][..],
        &["enroll", "--enroll-redhat", "--store"][..],
    ] {
        let mut a = cmd.to_vec();
        a.push(p(&bad));
        let o = run(&a);
        failed(
            &o,
            &format!(
                "uefi-vars: {}: variables[0] (name \"x\"), key \"guid\": missing",
                bad.display()
            ),
        );
    }
    // A corrupt .fd names the file and the offset.
    let fd = dir.path().join("broken.fd");
    let mut image = std::fs::read("/usr/share/OVMF/OVMF_VARS.fd").unwrap();
    image[0x32] ^= 0xff; // Checksum
    std::fs::write(&fd, &image).unwrap();
    failed(
        &run(&["list", "--store", p(&fd)]),
        &format!(
            "{}: edk2 image: firmware volume at offset 0x0: header checksum is wrong",
            fd.display()
        ),
    );
}

#[test]
fn export_auth_writes_signed_updates_that_apply_reproduces() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let a = d.join("a.json");
    let k = d.join("keys");
    ok(&run(&[
        "enroll",
        "--create",
        "--store",
        p(&a),
        "--generate",
        p(&k),
    ]));
    let out = d.join("auth");
    let key = |n: &str| k.join(n).to_str().unwrap().to_string();
    let args = [
        "export-auth".to_string(),
        p(&a).to_string(),
        p(&out).to_string(),
        "--pk-key".into(),
        key("PK.key"),
        "--pk-cert".into(),
        key("PK.crt"),
        "--kek-key".into(),
        key("KEK.key"),
        "--kek-cert".into(),
        key("KEK.crt"),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(&run(&args));
    for f in ["PK.auth", "KEK.auth", "db.auth"] {
        assert!(out.join(f).exists(), "{f}");
    }
    // Never overwrites.
    refused(&run(&args), "never overwrites");

    // A fresh store in setup mode takes db and KEK, then PK (self-signed).
    let b = d.join("b.json");
    std::fs::write(&b, "").unwrap();
    for n in ["db", "KEK", "PK"] {
        let f = out.join(format!("{n}.auth"));
        ok(&run(&["apply", n, "--auth", p(&f), "--store", p(&b)]));
    }
    for (n, g) in [("PK", "global"), ("KEK", "global"), ("db", "db")] {
        let get = |s: &Path| stdout(&run(&["get", n, "--guid", g, "--raw", "--store", p(s)]));
        assert_eq!(get(&a), get(&b), "{n}");
    }
    // The same KEK update again is a replay: refused, with both times shown.
    let o = run(&[
        "apply",
        "KEK",
        "--auth",
        p(&out.join("KEK.auth")),
        "--store",
        p(&b),
    ]);
    refused(&o, "not later than the stored one");
}

#[test]
fn extract_certs_gives_the_certificates_virt_fw_vars_extracts() {
    let dir = tempfile::tempdir().unwrap();
    let ours = dir.path().join("ours");
    let theirs = dir.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    let image = "/usr/share/OVMF/OVMF_VARS_4M.ms.fd";
    ok(&run(&[
        "list",
        "--store",
        image,
        "--extract-certs",
        p(&ours),
    ]));
    let o = Command::new("virt-fw-vars")
        .args(["-i", image, "--extract-certs"])
        .current_dir(&theirs)
        .output()
        .expect("virt-fw-vars");
    assert!(o.status.success());
    let fingerprints = |d: &Path| {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| openssl_x509_der(&std::fs::read(e.unwrap().path()).unwrap()))
            .collect();
        v.sort();
        v
    };
    let a = fingerprints(&ours);
    assert_eq!(a.len(), 5);
    assert_eq!(a, fingerprints(&theirs));
    // `get` shows each certificate's SHA-256 fingerprint, as openssl
    // computes it from the certificate virt-fw-vars extracted.
    let details = stdout(&run(&["get", "db", "--store", image]));
    let mut checked = 0;
    for e in std::fs::read_dir(&theirs).unwrap() {
        let path = e.unwrap().path();
        if !path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("db-")
        {
            continue;
        }
        let o = Command::new("openssl")
            .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
            .arg(&path)
            .output()
            .unwrap();
        let fp = String::from_utf8_lossy(&o.stdout);
        let hex: String = fp
            .split('=')
            .nth(1)
            .unwrap()
            .trim()
            .replace(':', "")
            .to_ascii_lowercase();
        assert!(
            details.contains(&format!("sha256:  {hex}")),
            "{hex} in\n{details}"
        );
        checked += 1;
    }
    assert_eq!(checked, 2, "Debian's db holds two certificates");
    // Existing files are not overwritten.
    failed(
        &run(&["get", "PK", "--store", image, "--extract-certs", p(&ours)]),
        "not overwritten",
    );
}

/// A PEM certificate's DER bytes as hex (through the openssl tool, not our code).
fn openssl_x509_der(pem: &[u8]) -> String {
    use std::io::Write;
    let mut child = Command::new("openssl")
        .args(["x509", "-outform", "DER"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(pem).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    out.stdout.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn completions_and_man_pages_come_from_the_clap_definitions() {
    for shell in ["bash", "zsh", "fish"] {
        let o = run(&["completions", shell]);
        ok(&o);
        let out = stdout(&o);
        assert!(
            out.contains("convert") && out.contains("extract-certs"),
            "{shell}"
        );
    }
    let o = run(&["man"]);
    ok(&o);
    assert!(stdout(&o).contains(".TH uefi-vars 1"), "{}", stdout(&o));
    assert!(stdout(&o).contains("export\\-auth"), "{}", stdout(&o));
    let o = run(&["man", "set"]);
    ok(&o);
    assert!(stdout(&o).contains(".TH uefi-vars-set 1"), "{}", stdout(&o));
    assert!(stdout(&o).contains("\\-\\-create"), "{}", stdout(&o));
    failed(&run(&["man", "nope"]), "no subcommand \"nope\"");
}

/// `configure` writes the same boot entries and shim variables as
/// virt-fw-vars' equivalent options, byte for byte; the one-shot URL entry
/// takes the first free Boot#### number (virt-fw-vars always overwrites
/// Boot0099).
#[test]
fn enroll_adds_hashes_mok_entries_and_verified_dbx_updates() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let k = d.join("k");
    ok(&run(&[
        "enroll",
        "--create",
        "--store",
        p(&d.join("a.json")),
        "--generate",
        p(&k),
    ]));
    let kp = |n: &str| k.join(n).to_str().unwrap().to_string();
    let sign_dbx = |key: &str, cert: &str, out: &Path| {
        ok(&run(&[
            "sign",
            "dbx",
            "--key",
            &kp(key),
            "--cert",
            &kp(cert),
            "--x509",
            &kp("db.crt"),
            "--append",
            "--out",
            p(out),
        ]));
    };
    let good = d.join("good.auth");
    let bad = d.join("bad.auth");
    sign_dbx("KEK.key", "KEK.crt", &good);
    sign_dbx("db.key", "db.crt", &bad);
    let h1 = "11".repeat(32);
    let h2 = "22".repeat(32);
    let enroll = |store: &Path, dbx: &Path, extra: &[&str]| {
        let (pk, kek, db) = (kp("PK.crt"), kp("KEK.crt"), kp("db.crt"));
        let mut a = vec![
            "enroll",
            "--create",
            "--store",
            p(store),
            "--pk",
            &pk,
            "--kek",
            &kek,
            "--db",
            &db,
            "--add-db-hash",
            &h1,
            "--add-dbx-hash",
            &h2,
            "--add-mok",
            &db,
            "--add-mok-hash",
            &h1,
            "--add-dbx",
            p(dbx),
        ];
        a.extend(extra);
        run(&a)
    };
    let b = d.join("b.json");
    ok(&enroll(&b, &good, &[]));
    let o = run(&["list", "--store", p(&b)]);
    let out = stdout(&o);
    for want in [
        "db  = [1xX509, 1xSHA256]",
        // The --add-dbx-hash entry joins the SHA-256 list already there
        // (one list per signature type, as virt-fw-vars builds it; presets.rs).
        "dbx  = [2xSHA256, 1xX509]",
        "MokList  = [1xX509, 1xSHA256]",
    ] {
        assert!(out.contains(want), "{want} in\n{out}");
    }
    let o = run(&["get", "db", "--json", "--store", p(&b)]);
    let db: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(db["signature_lists"][1]["entries"][0]["hash"], h1.as_str());

    // A dbx update not signed by a KEK is refused, and nothing is written.
    let c = d.join("c.json");
    let o = enroll(&c, &bad, &[]);
    refused(
        &o,
        "dbx update refused (EFI_SECURITY_VIOLATION): the signature does not verify against \
         any KEK or PK certificate: signed by CN=uefi-vars test db; allowed: CN=uefi-vars test KEK",
    );
    assert!(!c.exists());
    // Unless the user asks by name to write it in setup mode.
    ok(&enroll(&c, &bad, &["--dbx-in-setup-mode"]));
    assert!(stdout(&run(&["list", "--store", p(&c)])).contains("dbx  = [2xSHA256, 1xX509]"));
    // A bad hash is a clear error.
    failed(
        &run(&[
            "enroll",
            "--create",
            "--store",
            p(&d.join("x.json")),
            "--pk",
            &kp("PK.crt"),
            "--add-db-hash",
            "abc",
        ]),
        "hash \"abc\": odd number of hex digits",
    );
}

/// A store whose latest changes are only in its journal (the writer was
/// killed): `list` and `get` see them, `compact` folds them into the JSON
/// file, and edits are refused while a service holds the store's lock.
#[test]
fn journal_is_read_by_list_and_folded_by_compact() {
    use uefi_vars::persist::{JsonFile, Storage};
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("vars.json");
    std::fs::copy(data("fedora-boot-1.json"), &store).unwrap();
    let s = store.to_str().unwrap();
    let mut svc = uefi_vars::Service::open(
        uefi_vars::Config::default(),
        Box::new(JsonFile::new(&store)),
    )
    .unwrap();
    let status = svc.set_variable(
        uefi_vars::guid::GLOBAL_VARIABLE,
        "Journaled".into(),
        7,
        b"in the journal",
    );
    assert_eq!(status, uefi_vars::EfiStatus::SUCCESS);
    std::mem::forget(svc); // killed: no compaction
    let journal = dir.path().join("vars.json.journal");
    assert!(std::fs::metadata(&journal).unwrap().len() > 0);
    let file_only = std::fs::read(&store).unwrap();
    assert!(!String::from_utf8_lossy(&file_only).contains("Journaled"));

    let o = run(&["get", "Journaled", "--store", s]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("in the journal"), "{}", stdout(&o));

    // A running service holds the lock: no edit, no compaction meanwhile.
    let lock = uefi_vars_serve::server::lock_store(&store).unwrap();
    for args in [
        &["compact", "--store", s][..],
        &["set", "X", "--text", "x", "--store", s][..],
    ] {
        let o = run(args);
        // Exit 3: refused (README "Exit codes").
        assert_eq!(o.status.code(), Some(3), "{args:?}");
        assert!(stderr(&o).contains("in use"), "{}", stderr(&o));
    }
    drop(lock);

    let o = run(&["compact", "--store", s]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("journal compacted"), "{}", stdout(&o));
    assert_eq!(std::fs::metadata(&journal).unwrap().len(), 0);
    let vars = uefi_vars::persist::json::decode(&std::fs::read(&store).unwrap()).unwrap();
    assert_eq!(vars.last().unwrap().data, b"in the journal");
    assert_eq!(vars, JsonFile::new(&store).load().unwrap());
    let o = run(&["compact", "--store", s]);
    assert!(stdout(&o).contains("no journal"), "{}", stdout(&o));
}

/// Every option the installed virt-fw-vars offers (read from its own
/// `--help`) is named, as "virt-fw-vars OPTION", in the help paragraph of
/// the uefi-vars argument or subcommand that replaces it (issue 10: "`--help`
/// says which virt-fw-vars option it replaces"). Only -h/--help and
/// --loglevel (uefi-vars has no log levels) have no counterpart.
#[test]
fn every_virt_fw_vars_option_has_a_counterpart_named_in_help() {
    let o = Command::new("virt-fw-vars")
        .arg("--help")
        .output()
        .expect("virt-fw-vars (pip install virt-firmware)");
    ok(&o);
    let theirs = stdout(&o);
    // Each option line of their help starts with its spellings.
    let mut options: Vec<String> = Vec::new();
    for line in theirs.lines() {
        let t = line.trim_start();
        if !t.starts_with('-') || !line.starts_with("  -") {
            continue;
        }
        let long = t
            .split([' ', ','])
            .find(|w| w.starts_with("--"))
            .map(str::to_string);
        options.extend(long);
    }
    assert!(options.len() > 40, "parsed {options:?} from\n{theirs}");
    // Our help: every subcommand's about and arguments, one paragraph each.
    let ours = run(&["--help"]);
    let mut paragraphs: Vec<String> = help_paragraphs(&stdout(&ours));
    let subcommands: Vec<String> = stdout(&ours)
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  ") || l.is_empty())
        // a subcommand's line, not the wrapped continuation of its about
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|s| s != "help")
        .collect();
    assert!(subcommands.len() > 10, "{subcommands:?}");
    for sub in &subcommands {
        let o = run(&[sub, "--help"]);
        ok(&o);
        paragraphs.extend(help_paragraphs(&stdout(&o)));
    }
    let named = |opt: &str| {
        paragraphs.iter().any(|p| {
            p.contains("virt-fw-vars")
                && p.match_indices(opt).any(|(i, _)| {
                    p[i + opt.len()..]
                        .chars()
                        .next()
                        .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '-'))
                })
        })
    };
    let missing: Vec<&String> = options
        .iter()
        .filter(|o| !matches!(o.as_str(), "--help" | "--loglevel"))
        .filter(|o| !named(o))
        .collect();
    assert!(
        missing.is_empty(),
        "virt-fw-vars options no uefi-vars help names: {missing:?}"
    );
}

/// Help text split into paragraphs (blank-line separated), whitespace
/// collapsed.
fn help_paragraphs(help: &str) -> Vec<String> {
    help.split("\n\n")
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// qcow2 goes through qemu-img: without it (a PATH that lacks it) reading
/// or writing qcow2 fails with a message saying what to install, nothing is
/// written, and `--help` says so up front.
#[test]
fn qcow2_without_qemu_img_says_what_to_install() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let qcow2 = d.join("vars.qcow2");
    ok(&run(&[
        "convert",
        "/usr/share/OVMF/OVMF_VARS_4M.ms.fd",
        p(&qcow2),
    ]));
    let empty_path = d.join("bin");
    std::fs::create_dir(&empty_path).unwrap();
    let without = |args: &[&str]| bin().args(args).env("PATH", &empty_path).output().unwrap();
    let want =
        "qcow2 images need qemu-img, which is not installed (Debian: apt-get install qemu-utils)";
    let o = without(&["list", "--store", p(&qcow2)]);
    failed(&o, want);
    assert!(stderr(&o).contains(p(&qcow2)), "{}", stderr(&o));
    let out = d.join("new.qcow2");
    failed(
        &without(&["convert", "/usr/share/OVMF/OVMF_VARS_4M.ms.fd", p(&out)]),
        want,
    );
    assert!(!out.exists());
    for sub in ["list", "set", "convert"] {
        let o = run(&[sub, "--help"]);
        assert!(
            stdout(&o).contains("qemu-img, Debian") || stdout(&o).contains("qemu-img, Debian"),
            "{sub}: {}",
            stdout(&o)
        );
    }
}

/// issue 10 item 2: the well-known variables `list` decodes, each written
/// here with `set` (a load option copied from Debian's OVMF image), and
/// their JSON form.
#[test]
fn list_decodes_every_well_known_variable() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().join("v.json");
    let s = p(&s);
    let o = run(&[
        "get",
        "Boot0000",
        "--raw",
        "--store",
        "/usr/share/OVMF/OVMF_VARS_4M.ms.fd",
    ]);
    ok(&o);
    let option = stdout(&o).trim().to_string();
    let set = |name: &str, guid: &str, how: &str, value: &str| {
        ok(&run(&[
            "set", name, "--guid", guid, how, value, "--create", "--store", s,
        ]));
    };
    for n in ["Driver0001", "SysPrep0002", "PlatformRecovery0003"] {
        set(n, "global", "--hex", &option);
    }
    set("DriverOrder", "global", "--hex", "01000200");
    set("BootCurrent", "global", "--hex", "0300");
    set(
        "PlatformLangCodes",
        "global",
        "--hex",
        "656e2d55533b66722d465200",
    );
    set(
        "OsIndicationsSupported",
        "global",
        "--hex",
        "4b00000000000000",
    );
    set("OsIndications", "global", "--hex", "0100000000000000");
    set("MokSBState", "shim", "--hex", "01");
    set("SbatLevel", "shim", "--text", "sbat,1,2022052400\ngrub,2\n");
    // One EFI_SIGNATURE_LIST of one SHA-256 entry (owner, then the hash).
    let sha256_list = format!(
        "2616c4c14c509240aca941f936934328{}{}{}{}{}",
        "4c000000",
        "00000000",
        "30000000",
        "11".repeat(16),
        "ab".repeat(32)
    );
    set("MokListX", "shim", "--hex", &sha256_list);
    let o = run(&["list", "--store", s]);
    ok(&o);
    let out = stdout(&o);
    for want in [
        "Driver0001  = \"UiApp\" Fv(7cb8bdc9-f8eb-4f34-aaea-3ee4af6516a1)/FvFile(462caa21-7614-4503-836e-8ab6f4662331) [active,hidden,app]",
        "SysPrep0002  = \"UiApp\" Fv(",
        "PlatformRecovery0003  = \"UiApp\" Fv(",
        "DriverOrder  = 0001, 0002",
        "BootCurrent  = Boot0003",
        "PlatformLangCodes  = \"en-US;fr-FR\"",
        "OsIndicationsSupported  = 0x4b (BOOT_TO_FW_UI|TIMESTAMP_REVOCATION|FMP_CAPSULE_SUPPORTED|START_PLATFORM_RECOVERY)",
        "OsIndications  = 0x1 (BOOT_TO_FW_UI)",
        "MokSBState  = 1 (shim validation disabled)",
        "SbatLevel  = \"sbat,1,2022052400\\ngrub,2\"",
        "MokListX  = [1xSHA256]",
    ] {
        assert!(out.contains(want), "{want:?} not in\n{out}");
    }
    assert!(out.contains("ShimLock"), "vendor shown by name:\n{out}");
    let o = run(&["list", "--json", "--store", s]);
    let all: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let by = |n: &str| {
        all.as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == n)
            .unwrap()
            .clone()
    };
    assert_eq!(
        by("DriverOrder")["value"],
        serde_json::json!(["0001", "0002"])
    );
    assert_eq!(
        by("OsIndications")["value"]["flags"],
        serde_json::json!(["BOOT_TO_FW_UI"])
    );
    assert_eq!(by("MokSBState")["guid_name"], "ShimLock");
    assert_eq!(by("SysPrep0002")["value"]["description"], "UiApp");
}

/// (GUID, name, attributes, data, timestamp or None) of every variable.
type Essence = std::collections::BTreeSet<(String, String, u64, String, Option<String>)>;

/// A QEMU JSON store's variables; an all-zero timestamp is no timestamp,
/// and `with_time` false drops timestamps (uefivars writes none).
fn essence_of(path: &Path, with_time: bool) -> Essence {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    v["variables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            let time = x["time"]
                .as_str()
                .filter(|t| with_time && t.chars().any(|c| c != '0'))
                .map(str::to_string);
            (
                x["guid"].as_str().unwrap().to_string(),
                x["name"].as_str().unwrap().to_string(),
                x["attr"].as_u64().unwrap(),
                x["data"].as_str().unwrap().to_string(),
                time,
            )
        })
        .collect()
}

fn tool_json(tool: &str, args: &[&str], out: &Path) {
    let o = Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{tool}: {e} (pip install virt-firmware uefivars)"));
    assert!(o.status.success(), "{tool} {args:?}: {}", stderr(&o));
    assert!(out.exists(), "{tool} {args:?} wrote nothing");
}

/// issue 10 "Proof it works": the .fd, AWS blob and JSON that `uefi-vars
/// convert` writes from Debian's enrolled OVMF and AAVMF images are read
/// back by virt-fw-vars and uefivars with the variables virt-fw-vars reads
/// from the original image (uefivars keeps no timestamps and skips
/// certdb in images; it cannot read ArmVirt images at all).
#[test]
fn our_outputs_are_read_back_by_virt_fw_vars_and_uefivars() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for src in [
        "/usr/share/OVMF/OVMF_VARS_4M.ms.fd",
        "/usr/share/AAVMF/AAVMF_VARS.ms.fd",
    ] {
        let reference = d.join("reference.json");
        tool_json(
            "virt-fw-vars",
            &["-i", src, "--output-json", p(&reference)],
            &reference,
        );
        let want = essence_of(&reference, true);
        assert!(want.len() > 5, "{src}");
        let (json, fd, aws) = (d.join("ours.json"), d.join("ours.fd"), d.join("ours.aws"));
        for out in [&json, &fd, &aws] {
            ok(&run(&["convert", src, p(out)]));
        }
        assert_eq!(
            std::fs::metadata(&fd).unwrap().len(),
            std::fs::metadata(src).unwrap().len(),
            "{src}: the image keeps its layout"
        );
        let back = d.join("back.json");
        for (what, args) in [
            ("fd", vec!["-i", p(&fd)]),
            ("aws", vec!["-i", p(&aws)]),
            ("json", vec!["--set-json", p(&json)]),
        ] {
            let _ = std::fs::remove_file(&back);
            let mut a = args.clone();
            a.extend(["--output-json", p(&back)]);
            tool_json("virt-fw-vars", &a, &back);
            assert_eq!(
                essence_of(&back, true),
                want,
                "{src}: our {what} read by virt-fw-vars"
            );
        }
        let untimed = |e: &Essence, drop_certdb: bool| -> Essence {
            e.iter()
                .filter(|v| !(drop_certdb && v.1 == "certdb"))
                .map(|v| (v.0.clone(), v.1.clone(), v.2, v.3.clone(), None))
                .collect()
        };
        let mut inputs = vec![("json", &json), ("aws", &aws)];
        if src.contains("OVMF") {
            inputs.push(("edk2", &fd));
        }
        for (format, file) in inputs {
            let _ = std::fs::remove_file(&back);
            tool_json(
                "uefivars",
                &["-i", format, "-I", p(file), "-o", "json", "-O", p(&back)],
                &back,
            );
            let drop = format == "edk2";
            assert_eq!(
                untimed(&essence_of(&back, false), drop),
                untimed(&want, drop),
                "{src}: our {format} read by uefivars"
            );
        }
    }
}

/// issue 10 item 6: a refused `set`/`delete` says why, beyond the EFI
/// status name, and changes nothing.
#[test]
fn plain_refusals_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("v.json");
    ok(&run(&[
        "set",
        "A",
        "--text",
        "hi",
        "--create",
        "--store",
        p(&store),
    ]));
    let before = std::fs::read(&store).unwrap();
    let cases: [(&[&str], &str); 7] = [
        (&["set", "B", "--text", "x", "--attr", "nv,rt"], "runtime access (RT) needs boot-service access (BS) too"),
        (&["set", "C", "--text", "x", "--attr", "bs"], "would be volatile (no NV in --attr bs)"),
        (&["set", "E", "--text", "x", "--attr", "0x83"], "attribute bits 0x80 are not supported"),
        (&["set", "PK", "--text", "x"], "PK is a Secure Boot database: it is written only as a time-based authenticated variable"),
        (&["set", "A", "--text", "x", "--attr", "nv,bs"], "A exists with attributes NV|BS|RT; a write cannot change them to NV|BS"),
        (&["set", "SecureBoot", "--hex", "01"], "SecureBoot is read-only"),
        (&["set", "A", "--hex", ""], "empty data would delete the variable; use `delete`"),
    ];
    for (args, why) in cases {
        let mut a = args.to_vec();
        a.extend(["--store", p(&store)]);
        refused(&run(&a), why);
        assert!(std::fs::read(&store).unwrap() == before, "{args:?}");
    }
}

/// `list`/`get` into a pipe whose reader went away (`| head`) end quietly
/// instead of panicking.
#[test]
fn reading_commands_survive_a_closed_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().join("v.json");
    // 64000 data bytes: 128000 hex digits, more than a pipe buffers.
    ok(&run(&[
        "set",
        "A",
        "--hex",
        &"ab".repeat(64_000),
        "--create",
        "--store",
        p(&s),
    ]));
    for args in [
        vec!["get", "A", "--raw", "--store", p(&s)],
        vec!["get", "A", "--store", p(&s)],
        vec!["list", "--json", "--store", p(&s)],
    ] {
        let mut child = bin()
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let o = child.wait_with_output().unwrap();
        assert!(!stderr(&o).contains("panicked"), "{args:?}: {}", stderr(&o));
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
    }
}
