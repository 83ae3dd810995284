//! `uefi-vars configure`, `set-true`, `set-false` against the real
//! virt-fw-vars (PyPI virt-firmware): the same options must write the same
//! variables byte for byte. Set UEFI_VARS_SKIP_VIRT_FW_VARS=1 to skip the
//! comparisons where virt-fw-vars is not installed.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_uefi-vars"))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn skip_virt_fw() -> bool {
    if std::env::var_os("UEFI_VARS_SKIP_VIRT_FW_VARS").is_some_and(|v| v == "1") {
        eprintln!("UEFI_VARS_SKIP_VIRT_FW_VARS=1: virt-fw-vars comparison skipped");
        return true;
    }
    false
}

type Vars = BTreeMap<(String, String), Value>;

/// The store's variables by (name, GUID).
fn load(path: &Path) -> Vars {
    let v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    v["variables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            let key = (
                x["name"].as_str().unwrap().to_string(),
                x["guid"].as_str().unwrap().to_string(),
            );
            (key, x.clone())
        })
        .collect()
}

fn virt_fw_vars(dir: &Path, args: &[&str]) -> Vars {
    let out = dir.join("virt-fw-vars.json");
    let o = Command::new("virt-fw-vars")
        .args(args)
        .arg("--output-json")
        .arg(&out)
        .output()
        .expect("virt-fw-vars not runnable: pip install virt-firmware (or set UEFI_VARS_SKIP_VIRT_FW_VARS=1)");
    assert!(o.status.success(), "virt-fw-vars {args:?}: {}", text(&o));
    load(&out)
}

fn configure(store: &Path, args: &[&str]) -> Output {
    bin()
        .arg("configure")
        .arg("--create")
        .arg("--store")
        .arg(store)
        .args(args)
        .output()
        .unwrap()
}

const SHIM: &str = "605dab50-e046-4300-abb6-3dd810dd8b23";
const GLOBAL: &str = "8be4df61-93ca-11d2-aa0d-00e098032b8c";

#[test]
fn boot_shim_and_boolean_options_write_what_virt_fw_vars_writes() {
    let dir = tempfile::tempdir().unwrap();
    let sbat = dir.path().join("sbat.csv");
    std::fs::write(&sbat, "sbat,1,2021030218\n").unwrap();
    let sbat = sbat.to_str().unwrap();
    let args = [
        "--set-true",
        "SecureBootEnable",
        "--set-false",
        "CustomMode",
        "--set-true",
        "Foo",
        "--set-boot-uri",
        "http://192.0.2.1/boot/disk.iso",
        "--append-boot-filepath",
        "/EFI/fedora/shimx64.efi",
        "--append-boot-filepath",
        "\\EFI\\Linux\\uki.efi console=ttyS0 quiet",
        "--set-shim-debug",
        "--set-shim-verbose",
        "--set-fallback-verbose",
        "--set-fallback-no-reboot",
        "--set-sbat-level",
        sbat,
    ];
    let store = dir.path().join("ours.json");
    let o = configure(&store, &args);
    assert!(o.status.success(), "{}", text(&o));
    let mine = load(&store);
    // What shim reads, in its namespace (rhboot/shim lib/guid.c).
    for n in [
        "SHIM_DEBUG",
        "SHIM_VERBOSE",
        "FALLBACK_VERBOSE",
        "FB_NO_REBOOT",
    ] {
        assert_eq!(
            mine[&(n.to_string(), SHIM.to_string())]["data"],
            "01000000",
            "{n}"
        );
    }
    assert_eq!(
        mine[&("BootNext".to_string(), GLOBAL.to_string())]["data"],
        "9900"
    );
    assert_eq!(
        mine[&("BootOrder".to_string(), GLOBAL.to_string())]["data"],
        "00000100"
    );
    if skip_virt_fw() {
        return;
    }
    let theirs = virt_fw_vars(dir.path(), &args);
    assert_eq!(
        mine.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>()
    );
    assert_eq!(mine.len(), 13);
    for (k, v) in &mine {
        assert_eq!(v, &theirs[k], "{k:?}");
    }
}

#[test]
fn set_json_imports_a_store_as_virt_fw_vars_does() {
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other.json");
    let o = configure(&other, &["--set-true", "Alpha", "--set-shim-verbose"]);
    assert!(o.status.success(), "{}", text(&o));
    let store = dir.path().join("ours.json");
    let o = configure(&store, &["--set-false", "Alpha", "--set-true", "Beta"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = configure(&store, &["--set-json", other.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let mine = load(&store);
    assert_eq!(mine.len(), 3);
    assert_eq!(
        mine[&("Alpha".to_string(), GLOBAL.to_string())]["data"],
        "01"
    );
    assert_eq!(
        mine[&("Beta".to_string(), GLOBAL.to_string())]["data"],
        "01"
    );
    if skip_virt_fw() {
        return;
    }
    let theirs = virt_fw_vars(
        dir.path(),
        &[
            "--set-false",
            "Alpha",
            "--set-true",
            "Beta",
            "--set-json",
            other.to_str().unwrap(),
        ],
    );
    assert_eq!(mine, theirs);
}

#[test]
fn set_boot_uri_never_overwrites_an_unrelated_boot0099() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s.json");
    let s = store.to_str().unwrap();
    // Boot0099 and Boot0000 booting a file: EFI_LOAD_OPTION, active,
    // FilePathListLength 14, description "a", FilePath "\a" + end node.
    let option = "01000000 0e00 61000000 04040a00 5c006100 0000 7fff0400";
    for n in ["Boot0099", "Boot0000"] {
        let o = bin()
            .args(["set", n, "--create", "--store", s, "--hex", option])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
    }
    let before = load(&store);
    let o = configure(&store, &["--set-boot-uri", "http://192.0.2.1/x.iso"]);
    assert!(o.status.success(), "{}", text(&o));
    let after = load(&store);
    let key = |n: &str| (n.to_string(), GLOBAL.to_string());
    assert_eq!(after[&key("Boot0099")], before[&key("Boot0099")]);
    assert_eq!(after[&key("BootNext")]["data"], "0100", "{}", text(&o));
    // A netboot entry made earlier is replaced in place.
    let o = configure(&store, &["--set-boot-uri", "http://192.0.2.1/y.iso"]);
    assert!(o.status.success(), "{}", text(&o));
    let again = load(&store);
    assert_ne!(again[&key("Boot0001")], after[&key("Boot0001")]);
    assert_eq!(again[&key("BootNext")]["data"], "0100");
    assert!(!again.contains_key(&key("Boot0002")));
}

#[test]
fn set_true_and_set_false_subcommands() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s.json");
    let s = store.to_str().unwrap();
    for (cmd, byte) in [("set-true", "01"), ("set-false", "00")] {
        let o = bin()
            .args([cmd, "SecureBootEnable", "--create", "--store", s])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        let v = load(&store);
        let e = &v[&(
            "SecureBootEnable".to_string(),
            "f0a30bc7-af08-4556-99c4-001009c93a44".to_string(),
        )];
        assert_eq!(e["data"], byte);
        assert_eq!(e["attr"], 3);
    }
    // Authenticated variables change only by signed updates.
    let o = bin()
        .args(["enroll", "--store", s, "--enroll-redhat"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let before = std::fs::read(&store).unwrap();
    let o = bin()
        .args(["set-true", "PK", "--store", s])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "a refusal: {}", text(&o));
    assert!(text(&o).contains("authenticated variable"), "{}", text(&o));
    assert_eq!(std::fs::read(&store).unwrap(), before);
}

#[test]
fn configure_refuses_bad_input_without_writing() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s.json");
    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, "not json").unwrap();
    let cases: [(&[&str], &str); 3] = [
        (&[], "nothing to do"),
        (
            &["--set-true", "A", "--set-json", junk.to_str().unwrap()],
            "junk.json",
        ),
        (
            &["--set-sbat-level", "/nonexistent/sbat"],
            "/nonexistent/sbat",
        ),
    ];
    for (args, why) in cases {
        let o = configure(&store, args);
        // Nothing asked for is a usage error (64); unreadable inputs fail (2).
        let want = if args.is_empty() { 64 } else { 2 };
        assert_eq!(o.status.code(), Some(want), "{args:?}");
        assert!(text(&o).contains(why), "{args:?}: {}", text(&o));
        assert!(!store.exists(), "{args:?} wrote the store");
    }
}

#[test]
fn every_configure_flag_says_which_virt_fw_vars_option_it_replaces() {
    let o = bin().args(["configure", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&o.stdout);
    for flag in [
        "--set-true",
        "--set-false",
        "--set-boot-uri",
        "--append-boot-filepath",
        "--set-shim-debug",
        "--set-shim-verbose",
        "--set-fallback-verbose",
        "--set-fallback-no-reboot",
        "--set-sbat-level",
        "--set-json",
    ] {
        let entry = help_entry(&help, flag.trim());
        assert!(
            entry.contains(&format!("virt-fw-vars {flag}")),
            "{flag}: {entry}"
        );
    }
}

/// The `--help` paragraph of `flag`, whitespace collapsed.
fn help_entry(help: &str, flag: &str) -> String {
    let lines: Vec<&str> = help.lines().collect();
    let first = lines
        .iter()
        .position(|l| l.trim_start().split([' ', ',']).next() == Some(flag))
        .unwrap_or_else(|| panic!("{flag} not in {help}"));
    lines[first..]
        .iter()
        .take_while(|l| !l.trim().is_empty())
        .flat_map(|l| l.split_whitespace())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Equal maps, or a panic naming the variables that differ (and how).
/// An all-zero "time" (which virt-fw-vars leaves out) is no timestamp.
fn same(a: &Vars, b: &Vars, what: &str) {
    let zero_time = "0".repeat(32);
    let norm = |m: &Vars| -> Vars {
        let mut m = m.clone();
        for v in m.values_mut() {
            if v["time"] == zero_time.as_str() {
                v.as_object_mut().unwrap().remove("time");
            }
        }
        m
    };
    let (a, b) = (&norm(a), &norm(b));
    let keys: std::collections::BTreeSet<_> = a.keys().chain(b.keys()).collect();
    let differ: Vec<String> = keys
        .into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            let short = |v: Option<&Value>| {
                v.map(|v| {
                    let t = v.to_string();
                    t.chars().take(200).collect::<String>()
                })
            };
            format!("{k:?}: {:?} / {:?}", short(a.get(k)), short(b.get(k)))
        })
        .collect();
    assert!(differ.is_empty(), "{what}: {differ:#?}");
}

/// The variables of a store in any format, read by virt-fw-vars.
fn virt_fw_vars_reads(dir: &Path, store: &Path) -> Vars {
    virt_fw_vars(dir, &["-i", store.to_str().unwrap()])
}

/// `configure`, `set-true` and `set-false` take any store format and write
/// any format (issue 10 item 1: `--input/--output` on the editing
/// commands), with the same result as virt-fw-vars on the same image.
#[test]
fn configure_edits_any_format_as_virt_fw_vars_does() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fd = d.join("vars.fd");
    std::fs::copy("/usr/share/OVMF/OVMF_VARS_4M.ms.fd", &fd).unwrap();
    let original = std::fs::read(&fd).unwrap();
    let args = [
        "--set-boot-uri",
        "http://192.0.2.1/boot/disk.iso",
        "--append-boot-filepath",
        "/EFI/debian/shimx64.efi",
        "--set-shim-verbose",
        "--set-true",
        "Foo",
    ];
    // Into a JSON output: the image itself is left alone.
    let json = d.join("ours.json");
    let o = bin()
        .args(["configure", "--store", fd.to_str().unwrap(), "--output"])
        .arg(&json)
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(std::fs::read(&fd).unwrap() == original, "input changed");
    let theirs = virt_fw_vars(d, &[&["-i", fd.to_str().unwrap()][..], &args].concat());
    same(&load(&json), &theirs, "JSON output / virt-fw-vars");
    // In place: the image stays an edk2 image of the same size.
    let o = bin()
        .args(["configure", "--store", fd.to_str().unwrap()])
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(std::fs::read(&fd).unwrap().len(), original.len());
    same(&virt_fw_vars_reads(d, &fd), &theirs, "edited .fd");
    // qcow2 in, qcow2 out; then set-false from qcow2 into an AWS blob.
    let qcow2 = d.join("vars.qcow2");
    let o = bin()
        .args(["set-true", "Bar", "--store", fd.to_str().unwrap(), "-o"])
        .arg(&qcow2)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(std::fs::read(&qcow2).unwrap().starts_with(b"QFI\xfb"));
    let aws = d.join("vars.aws");
    let o = bin()
        .args(["set-false", "Foo", "--input", qcow2.to_str().unwrap()])
        .arg("--output")
        .arg(&aws)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let blob = virt_fw_vars_reads(d, &aws);
    let key = |n: &str| (n.to_string(), GLOBAL.to_string());
    assert_eq!(blob[&key("Foo")]["data"], "00");
    assert_eq!(blob[&key("Bar")]["data"], "01");
    assert_eq!(virt_fw_vars_reads(d, &qcow2)[&key("Foo")]["data"], "01");
    let mut rest = blob.clone();
    let mut want = theirs.clone();
    for m in [&mut rest, &mut want] {
        m.remove(&key("Foo"));
        m.remove(&key("Bar"));
    }
    same(&rest, &want, "AWS output keeps every other variable");
}

/// A missing store is an error for `configure` and `set-true` too, unless
/// --create is given (issue 10 item 5).
#[test]
fn configure_needs_create_for_a_missing_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("nope.fd");
    for args in [
        &["configure", "--set-true", "A"][..],
        &["set-true", "A"][..],
        &["set-false", "A"][..],
    ] {
        let o = bin()
            .args(args)
            .arg("--store")
            .arg(&store)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(text(&o).contains("pass --create"), "{}", text(&o));
        assert!(!store.exists());
    }
    let o = bin()
        .args(["set-true", "A", "--create", "--store"])
        .arg(&store)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    // A new .fd is an OVMF_VARS_4M.fd layout image.
    assert_eq!(std::fs::read(&store).unwrap().len(), 0x8_4000);
}

/// A qcow2 image virt-fw-vars wrote is read and edited in place (it stays
/// qcow2, and virt-fw-vars reads our edit back).
#[test]
fn virt_fw_vars_qcow2_is_read_and_edited_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let raw_qcow2 = d.join("in.qcow2");
    let o = Command::new("qemu-img")
        .args(["convert", "-f", "raw", "-O", "qcow2"])
        .arg("/usr/share/OVMF/OVMF_VARS_4M.ms.fd")
        .arg(&raw_qcow2)
        .output()
        .expect("qemu-img (Debian qemu-utils)");
    assert!(o.status.success(), "{}", text(&o));
    let theirs = d.join("theirs.qcow2");
    let o = Command::new("virt-fw-vars")
        .arg("-i")
        .arg(&raw_qcow2)
        .args(["--set-true", "Foo", "-o"])
        .arg(&theirs)
        .output()
        .expect("virt-fw-vars");
    assert!(o.status.success(), "{}", text(&o));
    let o = bin()
        .args(["set-false", "Foo", "--store"])
        .arg(&theirs)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(std::fs::read(&theirs).unwrap().starts_with(b"QFI\xfb"));
    let back = virt_fw_vars_reads(d, &theirs);
    assert_eq!(back[&("Foo".to_string(), GLOBAL.to_string())]["data"], "00");
    assert!(back.len() > 20, "the image's other variables are kept");
}
