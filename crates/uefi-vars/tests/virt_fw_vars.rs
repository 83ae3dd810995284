//! Interoperability with virt-firmware's `virt-fw-vars` (the Python tool that
//! shares QEMU's JSON store format). It must be installed:
//! `pip install virt-firmware`. A missing tool fails these tests.
//!
//! What virt-fw-vars does with the format (virt-firmware 26.10):
//! - writes keys `name`, `guid`, `attr`, `data`, then `time` (after `data`,
//!   unlike QEMU), and `time` only when its year is non-zero; never `digest`;
//!   same 4-space layout, no trailing newline; non-ASCII names as lowercase
//!   `\uXXXX` escapes;
//! - ignores `version`, unknown keys and `digest` on input (so a digest is
//!   lost when it rewrites a store), and keys its variable list by name only:
//!   two variables with the same name and different GUIDs collapse into the
//!   last one. The stores used here keep names unique for that reason.
//! - turns `time` into a Python datetime: an all-zero time is dropped, a
//!   nanosecond is cut to microseconds, TimeZone/Daylight/pads become zero,
//!   and an impossible date is an exception.

use std::ffi::OsStr;
use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use uefi_vars::guid::{
    Guid, CERT_SHA256, CERT_X509, CUSTOM_MODE_ENABLE, GLOBAL_VARIABLE, IMAGE_SECURITY_DATABASE,
    SECURE_BOOT_ENABLE_DISABLE,
};
use uefi_vars::name::VarName;
use uefi_vars::persist::json::{decode, encode};
use uefi_vars::persist::{JsonFile, Storage};
use uefi_vars::time::EfiTime;
use uefi_vars::variable::{attr, Variable};

fn virt_fw_vars<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let out = Command::new("virt-fw-vars")
        .args(&args)
        .env("PYTHONIOENCODING", "utf-8")
        .output();
    match out {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "virt-fw-vars is not on PATH ({e}): install it with `pip install virt-firmware` \
             (CI must install it; this test does not skip)"
        ),
        Err(e) => panic!("cannot run virt-fw-vars: {e}"),
        Ok(o) => {
            assert!(
                o.status.success(),
                "virt-fw-vars {args:?} failed ({}):\n{}",
                o.status,
                String::from_utf8_lossy(&o.stderr)
            );
            o
        }
    }
}

fn find<'a>(vars: &'a [Variable], guid: Guid, name: &str) -> &'a Variable {
    vars.iter()
        .find(|v| v.guid == guid && v.name == VarName::from(name))
        .unwrap_or_else(|| panic!("variable {name} ({guid}) not in {vars:#?}"))
}

fn load(path: &Path) -> Vec<Variable> {
    JsonFile::new(path).load().unwrap()
}

#[test]
fn store_made_by_virt_fw_vars_loads() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("vfw.json");
    virt_fw_vars([
        OsStr::new("--enroll-redhat"),
        OsStr::new("--secure-boot"),
        OsStr::new("--set-boot-uri"),
        OsStr::new("http://example/x.iso"),
        OsStr::new("--output-json"),
        out.as_os_str(),
    ]);
    let vars = load(&out);

    for (guid, name) in [
        (GLOBAL_VARIABLE, "PK"),
        (GLOBAL_VARIABLE, "KEK"),
        (IMAGE_SECURITY_DATABASE, "db"),
        (IMAGE_SECURITY_DATABASE, "dbx"),
    ] {
        let v = find(&vars, guid, name);
        assert_eq!(v.attributes, attr::SECURE_BOOT_DB, "{name}");
        assert!(v.time.year() >= 2010, "{name}: time {:?}", v.time);
        assert!(v.time.is_strict(), "{name}");
        assert_eq!(v.digest, None);
        // An EFI_SIGNATURE_LIST: X.509 certificates, or SHA-256 hashes in dbx.
        let list_type = &v.data[..16];
        assert!(
            list_type == CERT_X509.as_bytes() || list_type == CERT_SHA256.as_bytes(),
            "{name}: list type {list_type:02x?}"
        );
    }
    assert_eq!(find(&vars, GLOBAL_VARIABLE, "PK").data[..16], CERT_X509.0);

    let sbe = find(&vars, SECURE_BOOT_ENABLE_DISABLE, "SecureBootEnable");
    assert_eq!((sbe.attributes, sbe.data.as_slice()), (3, &[1u8][..]));
    let cm = find(&vars, CUSTOM_MODE_ENABLE, "CustomMode");
    assert_eq!((cm.attributes, cm.data.as_slice()), (3, &[0u8][..]));
    assert_eq!(find(&vars, GLOBAL_VARIABLE, "BootNext").data, [0x99, 0x00]);
    let boot = find(&vars, GLOBAL_VARIABLE, "Boot0099");
    assert_eq!(boot.attributes, 7);
    // The description "netboot x.iso" in UCS-2 after attributes and length.
    let title: Vec<u8> = "netboot x.iso"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    assert_eq!(boot.data[6..6 + title.len()], title[..]);

    // Its file differs from ours only in key order: the same variables come
    // back when it reads what we write.
    let ours = dir.path().join("ours.json");
    let refs: Vec<&Variable> = vars.iter().collect();
    fs::write(&ours, encode(&refs).unwrap()).unwrap();
    let again = virt_fw_vars([
        OsStr::new("--input"),
        ours.as_os_str(),
        OsStr::new("--output-json"),
        OsStr::new("-"),
    ]);
    assert_eq!(decode(&again.stdout).unwrap(), vars);
}

#[test]
fn store_written_by_us_reads_in_virt_fw_vars() {
    const VENDOR: Guid = Guid::from_fields(
        0x3f6a1c2e,
        0x0d5b,
        0x4c1e,
        [0x9a, 0x44, 0x21, 0x7e, 0x55, 0x10, 0xab, 0xcd],
    );
    let mut authvar = Variable::new(
        VENDOR,
        VarName::from("PrivateAuthVar"),
        attr::NON_VOLATILE | attr::BOOTSERVICE_ACCESS | attr::TIME_BASED_AUTHENTICATED_WRITE_ACCESS,
        vec![0xde, 0xad, 0xbe, 0xef],
    );
    // 2025-01-02 03:04:05 (a valid date: virt-fw-vars builds a datetime).
    authvar.time = EfiTime([0xe9, 0x07, 1, 2, 3, 4, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    authvar.digest = Some(vec![0x5a; 32]);
    let vars = [
        Variable::new(GLOBAL_VARIABLE, VarName::from("Lang"), 7, b"eng\0".to_vec()),
        Variable::new(VENDOR, VarName::from("MyConfig"), 3, vec![1, 2, 3, 4, 5, 6]),
        // Non-ASCII names: virt-fw-vars accepts them (Python json decodes
        // the \u escapes; names are str, stored as UTF-16LE).
        Variable::new(VENDOR, VarName::from("Bööt"), 7, vec![0x42]),
        Variable::new(VENDOR, VarName::from("变量"), 3, vec![0x43, 0x44]),
        authvar,
        // Volatile: must not reach the file.
        Variable::new(VENDOR, VarName::from("VolatileOnly"), 6, vec![9]),
    ];
    let refs: Vec<&Variable> = vars.iter().collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ours.json");
    JsonFile::new(&path).save(&refs).unwrap();

    let printed = virt_fw_vars([
        OsStr::new("--input"),
        path.as_os_str(),
        OsStr::new("--print"),
    ]);
    let printed = String::from_utf8(printed.stdout).unwrap();
    let printed_names: Vec<&str> = printed
        .lines()
        .filter_map(|l| l.split_once(':').map(|(n, _)| n.trim_end()))
        .collect();
    for v in vars.iter().filter(|v| v.is_non_volatile()) {
        let name = v.name.to_string();
        assert!(
            printed_names.contains(&name.as_str()),
            "{name} missing from virt-fw-vars --print:\n{printed}"
        );
    }
    assert!(!printed.contains("VolatileOnly"), "{printed}");
    assert!(printed.contains("Lang"), "{printed}");

    // Its JSON rewrite of our file: same variables, except the digest, which
    // virt-fw-vars does not know about and drops.
    let rewritten = virt_fw_vars([
        OsStr::new("--input"),
        path.as_os_str(),
        OsStr::new("--output-json"),
        OsStr::new("-"),
    ]);
    let back = decode(&rewritten.stdout).unwrap();
    let expected: Vec<Variable> = vars
        .iter()
        .filter(|v| v.is_non_volatile())
        .cloned()
        .map(|mut v| {
            v.digest = None;
            v
        })
        .collect();
    assert_eq!(back, expected);
}
