//! The shipped systemd unit, `contrib/uefi-vars@.service`: systemd accepts
//! it (`systemd-analyze verify`), and its command line is one `uefi-vars
//! serve` accepts.

use std::path::{Path, PathBuf};
use std::process::Command;

fn unit_text() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contrib/uefi-vars@.service"),
    )
    .unwrap()
}

/// The unit with ExecStart pointing at the binary under test (verify
/// checks that the program exists and is executable).
fn unit_for_this_build(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("uefi-vars@vm1.service");
    let text = text.replace("/usr/bin/uefi-vars", env!("CARGO_BIN_EXE_uefi-vars"));
    std::fs::write(&path, text).unwrap();
    path
}

/// `systemd-analyze verify`: exit status and what it said about the unit.
fn verify(unit: &Path) -> Option<(bool, String)> {
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(unit)
        .output()
        .ok()?;
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    Some((out.status.success(), text))
}

#[test]
fn systemd_analyze_verify_accepts_the_unit() {
    let dir = tempfile::tempdir().unwrap();
    let unit = unit_for_this_build(dir.path(), &unit_text());
    let Some((ok, text)) = verify(&unit) else {
        eprintln!("skipped: systemd-analyze is not installed (apt-get install systemd)");
        return;
    };
    // Not running under systemd (a container) is fine: verify reads the
    // unit files offline; starting the unit needs a booted systemd, which
    // this test does not assume.
    eprintln!("systemd-analyze verify: ok={ok} {text}");
    assert!(ok, "{text}");
    let about_unit: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("uefi-vars@vm1.service"))
        .collect();
    assert!(about_unit.is_empty(), "{text}");

    // The check can fail: a misspelt directive is reported.
    let broken = dir.path().join("broken");
    std::fs::create_dir(&broken).unwrap();
    let bad = unit_for_this_build(
        &broken,
        &unit_text().replace("ProtectHome=yes", "ProtectHome=bogus"),
    );
    let (_, text) = verify(&bad).unwrap();
    assert!(text.contains("uefi-vars@vm1.service"), "{text}");
}

#[test]
fn the_units_command_line_is_accepted_by_serve() {
    let text = unit_text();
    for directive in [
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "StateDirectory=uefi-vars/%i",
        "RestrictAddressFamilies=AF_UNIX",
        "SystemCallFilter=@system-service",
        "CapabilityBoundingSet=\n",
        "NoNewPrivileges=yes",
    ] {
        assert!(text.contains(directive), "{directive}");
    }
    let exec = text
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart");
    // The unit's arguments, with its directories moved into a temporary
    // one and its group replaced by one this machine has.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("var/lib/uefi-vars/vm1")).unwrap();
    std::fs::create_dir_all(dir.path().join("run/uefi-vars/vm1")).unwrap();
    let root = dir.path().to_str().unwrap();
    let args: Vec<String> = exec
        .split_whitespace()
        .skip(1)
        .map(|a| {
            a.replace("%i", "vm1")
                .replace("/var/lib/", &format!("{root}/var/lib/"))
                .replace("/run/", &format!("{root}/run/"))
                .replace("kvm", "0")
        })
        .collect();
    assert_eq!(args.first().map(String::as_str), Some("serve"));
    let out = Command::new(env!("CARGO_BIN_EXE_uefi-vars"))
        .args(&args)
        .arg("--self-test-sandbox")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{args:?}\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
