//! `enroll` presets against the real virt-fw-vars (PyPI virt-firmware) and
//! the shipped certificates against their published fingerprints.
//! Set UEFI_VARS_SKIP_VIRT_FW_VARS=1 to skip the virt-fw-vars comparisons
//! where the tool is not installed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_uefi-vars"))
}

fn manifest(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn ours(store: &Path, args: &[&str]) -> Output {
    let o = bin()
        .arg("enroll")
        .arg("--create")
        .arg("--store")
        .arg(store)
        .args(args)
        .output()
        .unwrap();
    o
}

fn skip_virt_fw() -> bool {
    if std::env::var_os("UEFI_VARS_SKIP_VIRT_FW_VARS").is_some_and(|v| v == "1") {
        eprintln!("UEFI_VARS_SKIP_VIRT_FW_VARS=1: virt-fw-vars comparison skipped");
        return true;
    }
    false
}

/// Runs virt-fw-vars with `args` and returns its JSON store.
fn virt_fw_vars(dir: &Path, args: &[&str]) -> BTreeMap<String, Value> {
    let out = dir.join("virt-fw-vars.json");
    let o = Command::new("virt-fw-vars")
        .args(args)
        .arg("--output-json")
        .arg(&out)
        .output()
        .expect("virt-fw-vars not runnable: pip install virt-firmware (or set UEFI_VARS_SKIP_VIRT_FW_VARS=1)");
    assert!(o.status.success(), "virt-fw-vars {args:?}: {}", text(&o));
    by_name(&out)
}

/// The store's variables by name.
fn by_name(path: &Path) -> BTreeMap<String, Value> {
    let v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    v["variables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["name"].as_str().unwrap().to_string(), x.clone()))
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// (signature type, owner, SHA-256 of the signature data) of one entry.
type Entry = (String, String, String);

/// Every entry of a database, parsed here independently of the library.
fn entries(data: &[u8]) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let u32_at = |o: usize| u32::from_le_bytes(rest[o..o + 4].try_into().unwrap()) as usize;
        let (list, header, sig) = (u32_at(16), u32_at(20), u32_at(24));
        let ty = hex(&rest[..16]);
        let mut pos = 28 + header;
        while pos < list {
            let owner = hex(&rest[pos..pos + 16]);
            let digest = hex(&openssl::sha::sha256(&rest[pos + 16..pos + sig]));
            out.push((ty.clone(), owner, digest));
            pos += sig;
        }
        rest = &rest[list..];
    }
    out
}

const X509: &str = "a159c0a5e494a74a87b5ab155c2bf072";
const DBS: [&str; 4] = ["PK", "KEK", "db", "dbx"];

fn data_of(vars: &BTreeMap<String, Value>, name: &str) -> Vec<u8> {
    vars.get(name)
        .map(|v| unhex(v["data"].as_str().unwrap()))
        .unwrap_or_default()
}

/// The certificate fingerprints (and owners) of PK, KEK, db and dbx.
fn fingerprints(vars: &BTreeMap<String, Value>) -> Vec<(String, Vec<Entry>)> {
    DBS.iter()
        .map(|n| (n.to_string(), entries(&data_of(vars, n))))
        .collect()
}

#[test]
fn enroll_redhat_profile_all_has_the_certificates_of_virt_fw_vars() {
    if skip_virt_fw() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("ours.json");
    let o = ours(&store, &["--enroll-redhat", "--profile", "all"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("SetupMode=0 SecureBoot=1"),
        "{}",
        text(&o)
    );
    let theirs = virt_fw_vars(dir.path(), &["--enroll-redhat", "--secure-boot"]);
    let mine = by_name(&store);

    let fp = fingerprints(&mine);
    assert_eq!(fp, fingerprints(&theirs));
    // What the comparison covers: 1 PK, 3 KEK, 5 db certificates, and the
    // placeholder hash in dbx.
    let count = |n: usize, ty: &str| fp[n].1.iter().filter(|e| e.0 == ty).count();
    assert_eq!(
        [
            count(0, X509),
            count(1, X509),
            count(2, X509),
            fp[3].1.len()
        ],
        [1, 3, 5, 1]
    );
    // Byte for byte, with attributes and timestamps.
    for n in DBS.iter().chain(&["SecureBootEnable", "CustomMode"]) {
        assert_eq!(mine[*n]["data"], theirs[*n]["data"], "{n} data");
        assert_eq!(mine[*n]["attr"], theirs[*n]["attr"], "{n} attr");
        assert_eq!(mine[*n].get("time"), theirs[*n].get("time"), "{n} time");
    }
}

/// Option sets of virt-fw-vars and ours that must give identical PK, KEK,
/// db and dbx bytes.
fn equivalent_option_sets() -> Vec<(Vec<&'static str>, Vec<&'static str>)> {
    let mut v: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (vec!["--enroll-microsoft"], vec!["--enroll-microsoft"]),
        (vec!["--enroll-mgmt"], vec!["--enroll-mgmt"]),
        (
            vec![
                "--enroll-mgmt",
                "--microsoft-kek",
                "2023",
                "--profile",
                "uefi23",
            ],
            vec![
                "--external-management",
                "--microsoft-kek",
                "2023",
                "--profile",
                "uefi23",
            ],
        ),
        (
            vec!["--enroll-redhat", "--no-microsoft"],
            vec!["--enroll-redhat", "--no-microsoft"],
        ),
        (
            vec![
                "--enroll-redhat",
                "--microsoft-kek",
                "2011",
                "--microsoft-db",
                "redhat+rom",
            ],
            vec![
                "--enroll-redhat",
                "--microsoft-kek",
                "2011",
                "--microsoft-db",
                "redhat+rom",
            ],
        ),
        (
            vec![
                "--enroll-microsoft",
                "--microsoft-kek",
                "none",
                "--profile",
                "uefi11",
            ],
            vec![
                "--enroll-microsoft",
                "--microsoft-kek",
                "none",
                "--profile",
                "uefi11",
            ],
        ),
        (
            vec![
                "--enroll-redhat",
                "--distro-keys",
                "debian",
                "--distro-keys",
                "fedora",
                "--distro-keys",
                "centos",
                "--distro-keys",
                "rhel",
                "--distro-keys",
                "ubuntu",
            ],
            vec![
                "--enroll-redhat",
                "--distro-keys",
                "debian",
                "--distro-keys",
                "fedora",
                "--distro-keys",
                "centos",
                "--distro-keys",
                "rhel",
                "--distro-keys",
                "ubuntu",
            ],
        ),
    ];
    for p in [
        "win11",
        "win23",
        "win+rom23",
        "uefi23",
        "uefi+rom23",
        "redhat",
    ] {
        v.push((
            vec!["--enroll-redhat", "--microsoft-kek", "2023", "--profile", p],
            vec!["--enroll-redhat", "--microsoft-kek", "2023", "--profile", p],
        ));
    }
    v
}

#[test]
fn preset_options_write_what_virt_fw_vars_writes() {
    if skip_virt_fw() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (theirs_args, our_args) in equivalent_option_sets() {
        let store = dir.path().join("ours.json");
        let _ = std::fs::remove_file(&store);
        let o = ours(&store, &our_args);
        assert!(o.status.success(), "{our_args:?}: {}", text(&o));
        let mut vfw = theirs_args.clone();
        vfw.push("--secure-boot");
        let theirs = virt_fw_vars(dir.path(), &vfw);
        let mine = by_name(&store);
        for n in DBS {
            let pick = |vars: &BTreeMap<String, Value>| {
                vars.get(n)
                    .map(|v| (v["data"].clone(), v.get("time").cloned()))
            };
            assert_eq!(pick(&mine), pick(&theirs), "{n} after {our_args:?}");
        }
    }
}

#[test]
fn own_pk_with_microsoft_keys_writes_what_enroll_cert_writes() {
    if skip_virt_fw() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cert = manifest("certs/debian/debian-2016.pem");
    let cert = cert.to_str().unwrap();
    let store = dir.path().join("ours.json");
    let o = ours(
        &store,
        &[
            "--pk",
            cert,
            "--kek",
            cert,
            "--owner",
            "a0baa8a3-041d-48a8-bc87-c36d121b5e3d",
            "--microsoft-kek",
            "all",
            "--profile",
            "all",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let theirs = virt_fw_vars(dir.path(), &["--enroll-cert", cert, "--secure-boot"]);
    let mine = by_name(&store);
    for n in DBS {
        assert_eq!(mine[n]["data"], theirs[n]["data"], "{n}");
        assert_eq!(mine[n].get("time"), theirs[n].get("time"), "{n}");
    }
}

const OWNER: &str = "11111111-2222-3333-4444-555555555555";
const H1: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const H2: &str = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

#[test]
fn hashes_and_mok_entries_are_laid_out_as_virt_fw_vars_does() {
    if skip_virt_fw() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cert = manifest("certs/debian/debian-2016.pem");
    let cert = cert.to_str().unwrap();
    let store = dir.path().join("ours.json");
    let (h1, h2) = (format!("{OWNER}:{H1}"), format!("{OWNER}:{H2}"));
    let o = ours(
        &store,
        &[
            "--enroll-redhat",
            "--owner",
            OWNER,
            "--add-db-hash",
            &h1,
            "--add-db-hash",
            &h2,
            "--add-dbx-hash",
            &h1,
            "--add-dbx-hash",
            &h2,
            "--add-mok",
            cert,
            "--add-mok-hash",
            &h2,
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let theirs = virt_fw_vars(
        dir.path(),
        &[
            "--enroll-redhat",
            "--add-db-hash",
            OWNER,
            H1,
            "--add-db-hash",
            OWNER,
            H2,
            "--add-dbx-hash",
            OWNER,
            H1,
            "--add-dbx-hash",
            OWNER,
            H2,
            "--add-mok",
            OWNER,
            cert,
            "--add-mok-hash",
            OWNER,
            H2,
            "--secure-boot",
        ],
    );
    let mine = by_name(&store);
    for n in ["PK", "KEK", "db", "dbx", "MokList"] {
        assert_eq!(mine[n]["data"], theirs[n]["data"], "{n}");
        assert_eq!(mine[n]["guid"], theirs[n]["guid"], "{n}");
        assert_eq!(mine[n]["attr"], theirs[n]["attr"], "{n}");
    }
    // dbx: the placeholder and both hashes in one list; db: a sixth list.
    assert_eq!(entries(&data_of(&mine, "dbx")).len(), 3);
    assert_eq!(entries(&data_of(&mine, "db")).len(), 7);
}

fn dbx_update() -> PathBuf {
    manifest("tests/data/ms-dbxupdate-x86.bin")
}

#[test]
fn set_dbx_applies_microsofts_signed_update_verified() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("ours.json");
    let upd = dbx_update();
    let o = ours(
        &store,
        &["--enroll-redhat", "--set-dbx", upd.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", text(&o));
    let mine = by_name(&store);
    let bytes = std::fs::read(&upd).unwrap();
    let len = u32::from_le_bytes(bytes[16..20].try_into().unwrap()) as usize;
    // dbx is the update's payload, timestamped with the update's time.
    assert_eq!(data_of(&mine, "dbx"), &bytes[16 + len..]);
    assert_eq!(mine["dbx"]["time"].as_str().unwrap(), &hex(&bytes[..16]));
    assert!(entries(&data_of(&mine, "dbx")).len() > 40);
    if !skip_virt_fw() {
        let theirs = virt_fw_vars(
            dir.path(),
            &[
                "--enroll-redhat",
                "--set-dbx",
                upd.to_str().unwrap(),
                "--secure-boot",
            ],
        );
        assert_eq!(mine["dbx"]["data"], theirs["dbx"]["data"]);
    }
}

#[test]
fn a_tampered_or_unauthorised_dbx_update_is_refused_and_nothing_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(dbx_update()).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let bad = dir.path().join("tampered.bin");
    std::fs::write(&bad, &bytes).unwrap();
    let store = dir.path().join("s.json");
    std::fs::write(&store, "{\"version\":2,\"variables\":[]}").unwrap();
    let before = std::fs::read(&store).unwrap();
    for (update, kek) in [
        (bad.clone(), "all"),
        (dbx_update(), "2023"),
        (dbx_update(), "none"),
    ] {
        for flag in ["--set-dbx", "--add-dbx"] {
            let o = ours(
                &store,
                &[
                    "--enroll-redhat",
                    "--microsoft-kek",
                    kek,
                    flag,
                    update.to_str().unwrap(),
                ],
            );
            // Exit 3: a refused update (README "Exit codes").
            assert_eq!(o.status.code(), Some(3), "{flag} {kek}: {}", text(&o));
            let t = text(&o);
            assert!(
                t.contains("EFI_SECURITY_VIOLATION") && t.contains("KEK"),
                "{t}"
            );
            assert_eq!(std::fs::read(&store).unwrap(), before, "{flag} {kek}");
        }
    }
    // Asked for by name, the same updates go in unverified (setup mode).
    let o = ours(
        &store,
        &[
            "--enroll-redhat",
            "--microsoft-kek",
            "2023",
            "--set-dbx",
            dbx_update().to_str().unwrap(),
            "--write-dbx-unverified",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("SetupMode=0 SecureBoot=1"),
        "{}",
        text(&o)
    );
    assert!(entries(&data_of(&by_name(&store), "dbx")).len() > 40);
}

#[test]
fn write_dbx_unverified_refused_when_the_store_keeps_its_pk() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s.json");
    assert!(ours(&store, &["--enroll-redhat"]).status.success());
    let before = std::fs::read(&store).unwrap();
    let upd = dbx_update();
    let o = ours(
        &store,
        &["--add-dbx", upd.to_str().unwrap(), "--write-dbx-unverified"],
    );
    // Understood and refused (README "Exit status"): 3.
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("not in setup mode"), "{}", text(&o));
    assert_eq!(std::fs::read(&store).unwrap(), before);
    // Without the flag the update is verified against the enrolled KEK.
    let o = ours(&store, &["--add-dbx", upd.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let dbx = entries(&data_of(&by_name(&store), "dbx"));
    assert!(dbx.len() > 40, "placeholder plus the update: {}", dbx.len());
}

#[test]
fn presets_without_a_platform_extend_the_stored_databases() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s.json");
    assert!(ours(&store, &["--enroll-redhat"]).status.success());
    let before = by_name(&store);
    let o = ours(
        &store,
        &["--distro-keys", "debian", "--distro-keys", "debian"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let after = by_name(&store);
    assert_eq!(after["PK"], before["PK"]);
    assert_eq!(after["KEK"], before["KEK"]);
    let db = entries(&data_of(&after, "db"));
    assert_eq!(db.len(), 6, "one Debian CA added once");
    assert_eq!(db[..5], entries(&data_of(&before, "db"))[..]);
    assert_eq!(after["db"]["time"], before["db"]["time"]);
    // A certificate already present is not added again.
    let o = ours(&store, &["--profile", "win23"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(by_name(&store)["db"], after["db"]);
}

#[test]
fn bad_preset_arguments_are_refused_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s.json");
    let cases: [(&[&str], &str); 5] = [
        (&["--distro-keys", "gentoo"], "debian"),
        (&["--add-db-hash", "abcd"], "32 bytes"),
        (
            &["--enroll-redhat", "--enroll-microsoft"],
            "cannot be used with",
        ),
        (
            &["--write-dbx-unverified", "--enroll-redhat"],
            "needs --set-dbx or --add-dbx",
        ),
        (
            &["--profile", "win11", "--no-microsoft"],
            "cannot be used with",
        ),
    ];
    for (args, why) in cases {
        let o = ours(&store, args);
        // Exit 64 for a command line that cannot be (conflicts, unknown
        // values, an option that needs another), 2 for the rest (README
        // "Exit status").
        let usage = why.contains("cannot be used")
            || args.contains(&"gentoo")
            || why.contains("needs --set-dbx");
        let want = if usage { 64 } else { 2 };
        assert_eq!(o.status.code(), Some(want), "{args:?}");
        assert!(text(&o).contains(why), "{args:?}: {}", text(&o));
        assert!(!store.exists(), "{args:?} wrote the store");
    }
}

#[test]
fn every_preset_flag_says_which_virt_fw_vars_option_it_replaces() {
    let o = bin().args(["enroll", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&o.stdout);
    for (flag, theirs) in [
        ("--enroll-redhat", "--enroll-redhat"),
        ("--enroll-microsoft", "--enroll-microsoft"),
        ("--external-management", "--enroll-mgmt"),
        ("--microsoft-kek", "--microsoft-kek"),
        ("--profile", "--microsoft-db and --profile"),
        ("--no-microsoft", "--no-microsoft"),
        ("--distro-keys", "--distro-keys"),
        ("--add-db-hash", "--add-db-hash"),
        ("--add-dbx-hash", "--add-dbx-hash"),
        ("--add-mok ", "--add-mok"),
        ("--add-mok-hash", "--add-mok-hash"),
        ("--set-dbx", "--set-dbx"),
        ("--add-dbx ", "--add-dbx"),
        ("--write-dbx-unverified", "--set-dbx/--add-dbx"),
    ] {
        let entry = help_entry(&help, flag.trim());
        assert!(
            entry.contains(&format!("virt-fw-vars {theirs}")),
            "{flag}: {entry}"
        );
    }
}

/// The `--help` paragraph of `flag`, whitespace collapsed.
fn help_entry(help: &str, flag: &str) -> String {
    let lines: Vec<&str> = help.lines().collect();
    let first = lines
        .iter()
        .position(|l| {
            // an option line (indented at most 6), not a wrapped continuation
            let indent = l.len() - l.trim_start().len();
            indent <= 6 && l.trim_start().split([' ', ',']).next() == Some(flag)
        })
        .unwrap_or_else(|| panic!("{flag} not in {help}"));
    lines[first..]
        .iter()
        .take_while(|l| !l.trim().is_empty())
        .flat_map(|l| l.split_whitespace())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Every variable of an image, as virt-fw-vars reads it (by name).
fn image_vars(dir: &Path, image: &Path) -> BTreeMap<String, Value> {
    virt_fw_vars(dir, &["-i", image.to_str().unwrap()])
}

/// The everyday task: enroll the Red Hat and Microsoft keys into Debian's
/// blank OVMF and AAVMF images. The image we write, read back by
/// virt-fw-vars, holds what virt-fw-vars' own --enroll-redhat writes,
/// variable for variable; a qcow2 output the same.
#[test]
fn enroll_presets_into_debian_images_as_virt_fw_vars_does() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for template in [
        "/usr/share/OVMF/OVMF_VARS_4M.fd",
        "/usr/share/OVMF/OVMF_VARS.fd",
        "/usr/share/AAVMF/AAVMF_VARS.fd",
    ] {
        let copy = d.join("ours.fd");
        std::fs::copy(template, &copy).unwrap();
        let o = bin()
            .args(["enroll", "--enroll-redhat", "--store"])
            .arg(&copy)
            .output()
            .unwrap();
        assert!(o.status.success(), "{template}: {}", text(&o));
        // Debian's blank images hold no variables (AAVMF_VARS.fd is all
        // zeroes, which virt-fw-vars cannot read, so it gets no -i).
        let theirs = virt_fw_vars(d, &["--enroll-redhat", "--secure-boot"]);
        assert!(theirs.contains_key("PK"), "{template}");
        assert_eq!(image_vars(d, &copy), theirs, "{template}");
        assert_eq!(
            std::fs::metadata(&copy).unwrap().len(),
            std::fs::metadata(template).unwrap().len()
        );
        let qcow2 = d.join("ours.qcow2");
        let o = bin()
            .args(["enroll", "--enroll-redhat", "--store", template, "--output"])
            .arg(&qcow2)
            .output()
            .unwrap();
        assert!(o.status.success(), "{template}: {}", text(&o));
        assert_eq!(image_vars(d, &qcow2), theirs, "{template} as qcow2");
    }
}

/// issue 10 item 5: `enroll` on an enrolled store (Debian's
/// OVMF_VARS_4M.ms.fd) does not replace its keys silently, with a preset
/// or a generated PKI, and creates no key file when it refuses.
#[test]
fn enroll_refuses_an_enrolled_image_and_creates_no_keys() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ms = d.join("ms.fd");
    std::fs::copy("/usr/share/OVMF/OVMF_VARS_4M.ms.fd", &ms).unwrap();
    let before = std::fs::read(&ms).unwrap();
    let pki = d.join("pki");
    for extra in [
        &["--enroll-redhat"][..],
        &["--enroll-microsoft"][..],
        &["--enroll-mgmt"][..],
        &["--generate", pki.to_str().unwrap(), "--profile", "all"][..],
    ] {
        let o = bin()
            .args(["enroll", "--store"])
            .arg(&ms)
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(3), "{extra:?}: {}", text(&o));
        assert!(
            text(&o).contains("already enrolled (it has a PK); pass --replace-keys"),
            "{}",
            text(&o)
        );
        assert!(std::fs::read(&ms).unwrap() == before, "{extra:?}");
        assert!(!pki.exists(), "{extra:?} created key files");
    }
    // Adding to its databases keeps its PK and needs no flag.
    let o = bin()
        .args(["enroll", "--distro-keys", "debian", "--store"])
        .arg(&ms)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let after = image_vars(d, &ms);
    let original = image_vars(d, Path::new("/usr/share/OVMF/OVMF_VARS_4M.ms.fd"));
    assert_eq!(after["PK"], original["PK"]);
    assert_eq!(after["KEK"], original["KEK"]);
    // Asked by name, the keys are replaced.
    let o = bin()
        .args(["enroll", "--enroll-redhat", "--replace-keys", "--store"])
        .arg(&ms)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_ne!(image_vars(d, &ms)["PK"], original["PK"]);
}
