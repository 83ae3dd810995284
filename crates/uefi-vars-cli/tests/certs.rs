//! The certificates under `certs/` against the fingerprints listed in
//! `certs/fingerprints.txt` (values from Microsoft and from virt-firmware,
//! not from our code), recomputed with the openssl command-line tool, and
//! against the copies the installed virt-firmware package ships.
//! Set UEFI_VARS_SKIP_VIRT_FW_VARS=1 where virt-firmware is not installed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn certs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("certs")
}

struct Listed {
    file: String,
    sha256: String,
    sha1: Option<String>,
}

fn listed() -> Vec<Listed> {
    let text = std::fs::read_to_string(certs_dir().join("fingerprints.txt")).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 4, "bad line {l:?}");
            Listed {
                file: f[0].to_string(),
                sha256: f[1].to_string(),
                sha1: (f[2] != "-").then(|| f[2].to_string()),
            }
        })
        .collect()
}

/// `openssl x509 -fingerprint -<digest>` of a PEM or DER file, as lowercase
/// hex without colons.
fn openssl_fingerprint(path: &Path, digest: &str) -> String {
    let form = if path.extension().is_some_and(|e| e == "der") {
        "DER"
    } else {
        "PEM"
    };
    let o = Command::new("openssl")
        .args([
            "x509",
            "-noout",
            "-fingerprint",
            &format!("-{digest}"),
            "-inform",
            form,
            "-in",
        ])
        .arg(path)
        .output()
        .expect("openssl not runnable");
    assert!(
        o.status.success(),
        "{}: {}",
        path.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    let out = String::from_utf8(o.stdout).unwrap();
    let (_, value) = out.trim().split_once('=').expect("fingerprint line");
    value.replace(':', "").to_ascii_lowercase()
}

#[test]
fn shipped_certificates_have_the_published_fingerprints() {
    let list = listed();
    assert_eq!(list.len(), 19);
    for l in &list {
        let path = certs_dir().join(&l.file);
        assert_eq!(
            openssl_fingerprint(&path, "sha256"),
            l.sha256,
            "{} SHA-256",
            l.file
        );
        if let Some(sha1) = &l.sha1 {
            assert_eq!(
                &openssl_fingerprint(&path, "sha1"),
                sha1,
                "{} SHA-1",
                l.file
            );
        }
    }
    // Microsoft's eight, each with Microsoft's own SHA-1.
    let ms = list.iter().filter(|l| l.file.starts_with("microsoft/"));
    assert_eq!(ms.clone().count(), 8);
    assert!(ms.clone().all(|l| l.sha1.is_some()));
}

#[test]
fn every_file_under_certs_is_listed_and_documented() {
    let listed: BTreeSet<String> = listed().into_iter().map(|l| l.file).collect();
    let readme = std::fs::read_to_string(certs_dir().join("README.md")).unwrap();
    let mut found = BTreeSet::new();
    for dir in std::fs::read_dir(certs_dir()).unwrap() {
        let dir = dir.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&dir).unwrap() {
            let f = f.unwrap().path();
            let rel = f
                .strip_prefix(certs_dir())
                .unwrap()
                .to_str()
                .unwrap()
                .to_string();
            assert!(
                readme.contains(&format!("| {rel} |")),
                "{rel} has no provenance row"
            );
            found.insert(rel);
        }
    }
    assert_eq!(found, listed);
}

/// Where the installed virt-firmware keeps its certificates.
fn virt_firmware_certs() -> Option<PathBuf> {
    if std::env::var_os("UEFI_VARS_SKIP_VIRT_FW_VARS").is_some_and(|v| v == "1") {
        eprintln!("UEFI_VARS_SKIP_VIRT_FW_VARS=1: virt-firmware comparison skipped");
        return None;
    }
    let o = Command::new("python3")
        .args([
            "-c",
            "import virt.firmware, os; print(os.path.dirname(virt.firmware.__file__))",
        ])
        .output()
        .expect("python3 not runnable");
    assert!(
        o.status.success(),
        "virt-firmware not importable (pip install virt-firmware, or set \
         UEFI_VARS_SKIP_VIRT_FW_VARS=1): {}",
        String::from_utf8_lossy(&o.stderr)
    );
    Some(PathBuf::from(String::from_utf8(o.stdout).unwrap().trim()).join("certs"))
}

#[test]
fn shipped_certificates_are_the_ones_virt_firmware_ships() {
    let Some(theirs) = virt_firmware_certs() else {
        return;
    };
    for l in listed() {
        let (vendor, name) = l.file.split_once('/').unwrap();
        let domain = match vendor {
            "microsoft" => "microsoft.com",
            "redhat" => "redhat.com",
            "fedora" => "fedoraproject.org",
            "centos" => "centos.org",
            "debian" => "debian.org",
            "ubuntu" => "ubuntu.com",
            other => panic!("unknown vendor directory {other}"),
        };
        let stem = name.rsplit_once('.').unwrap().0;
        let their = theirs.join(domain).join(format!("{stem}.pem"));
        assert_eq!(
            openssl_fingerprint(&their, "sha256"),
            openssl_fingerprint(&certs_dir().join(&l.file), "sha256"),
            "{} vs {}",
            l.file,
            their.display()
        );
    }
}
