//! Secure Boot life cycle with signed updates made by independent real
//! tools: `openssl` (keys, certificates, a raw PKCS#7 signature) and
//! efitools (`cert-to-efi-sig-list`, `sign-efi-sig-list`), plus the
//! enrollment `.auth` files shipped by virtfw-varstore and a store made by
//! `virt-fw-vars --enroll-redhat`. The set-up (`scripts/test.sh`) installs
//! efitools and virt-firmware; a missing tool fails the test.

// Without the `openssl` feature the signature tests are left out, and the
// helpers only they use with them.
#![cfg_attr(not(feature = "openssl"), allow(dead_code, unused_imports))]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use uefi_vars::guid::{Guid, CUSTOM_MODE_ENABLE, GLOBAL_VARIABLE, IMAGE_SECURITY_DATABASE};
use uefi_vars::name::VarName;
use uefi_vars::persist::{JsonFile, MemoryStorage};
use uefi_vars::variable::{attr, VarKey};
use uefi_vars::{Config, EfiStatus, Service};

const AUTH_ATTRS: u32 = attr::SECURE_BOOT_DB;
const APPEND: u32 = attr::APPEND_WRITE;
const OWNER: &str = "11111111-2222-3333-4444-555555555555";

fn tool(name: &str) -> Command {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "{name} is not installed (apt-get install efitools openssl; scripts/test.sh does it)"
    );
    Command::new(name)
}

fn run(mut cmd: Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Self {
        let pki = Pki {
            dir: tempfile::tempdir().unwrap(),
        };
        for cn in ["PK", "KEK", "db", "rogue"] {
            let mut c = tool("openssl");
            c.current_dir(pki.dir.path()).args([
                "req",
                "-new",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-sha256",
                "-days",
                "3650",
                "-subj",
                &format!("/CN=test {cn}"),
                "-keyout",
                &format!("{cn}.key"),
                "-out",
                &format!("{cn}.crt"),
            ]);
            run(c);
            let mut c = tool("cert-to-efi-sig-list");
            c.current_dir(pki.dir.path()).args([
                "-g",
                OWNER,
                &format!("{cn}.crt"),
                &format!("{cn}.esl"),
            ]);
            run(c);
        }
        pki
    }

    fn path(&self, f: &str) -> PathBuf {
        self.dir.path().join(f)
    }

    /// `sign-efi-sig-list [-a] -t TIME -k KEY.key -c KEY.crt VAR ESL OUT`.
    fn sign(&self, var: &str, esl: &str, key: &str, time: &str, append: bool) -> Vec<u8> {
        let out = format!("{var}-{key}-{}.auth", time.replace([' ', ':'], "_"));
        let mut c = tool("sign-efi-sig-list");
        c.current_dir(self.dir.path());
        if append {
            c.arg("-a");
        }
        if var == "dbt" {
            // efitools knows the namespace only for PK, KEK, db and dbx
            c.args(["-g", "d719b2cb-3d3a-4596-a3bc-dad00e67656f"]);
        }
        c.args([
            "-t",
            time,
            "-k",
            &format!("{key}.key"),
            "-c",
            &format!("{key}.crt"),
            var,
            esl,
            &out,
        ]);
        run(c);
        std::fs::read(self.path(&out)).unwrap()
    }
}

fn byte(svc: &Service, guid: Guid, name: &str) -> Option<u8> {
    svc.store()
        .get(&VarKey::new(guid, VarName::from(name)))
        .and_then(|v| v.data.first().copied())
}

fn mode(svc: &Service) -> (u8, u8) {
    (
        byte(svc, GLOBAL_VARIABLE, "SetupMode").unwrap(),
        byte(svc, GLOBAL_VARIABLE, "SecureBoot").unwrap(),
    )
}

fn set(svc: &mut Service, guid: Guid, name: &str, attrs: u32, data: &[u8]) -> EfiStatus {
    svc.set_variable(guid, VarName::from(name), attrs, data)
}

fn fresh() -> Service {
    common::new(Config::default(), Box::new(MemoryStorage::new())).unwrap()
}

// Verifies PKCS#7 signatures: needs the `openssl` feature.
#[cfg(feature = "openssl")]
#[test]
fn full_life_cycle_with_efitools() {
    let pki = Pki::new();
    let mut svc = fresh();
    assert_eq!(mode(&svc), (1, 0), "empty store starts in setup mode");

    // setup mode -> PK enrolled (self-signed) -> user mode, Secure Boot on at once
    let pk = pki.sign("PK", "PK.esl", "PK", "2025-01-01 00:00:00", false);
    let rogue_pk = pki.sign("PK", "PK.esl", "rogue", "2025-01-01 00:00:00", false);
    assert_eq!(
        set(&mut svc, GLOBAL_VARIABLE, "PK", AUTH_ATTRS, &rogue_pk),
        EfiStatus::SECURITY_VIOLATION,
        "PK signed by another key"
    );
    assert_eq!(
        set(&mut svc, GLOBAL_VARIABLE, "PK", AUTH_ATTRS, &pk),
        EfiStatus::SUCCESS
    );
    assert_eq!(mode(&svc), (0, 1));
    assert_eq!(byte(&svc, GLOBAL_VARIABLE, "SecureBootEnable"), None);
    assert_eq!(
        byte(
            &svc,
            uefi_vars::guid::SECURE_BOOT_ENABLE_DISABLE,
            "SecureBootEnable"
        ),
        Some(1)
    );

    // KEK append signed by PK
    let kek = pki.sign("KEK", "KEK.esl", "PK", "2025-01-02 00:00:00", true);
    let kek_by_kek = pki.sign("KEK", "KEK.esl", "KEK", "2025-01-02 00:00:00", true);
    assert_eq!(
        set(
            &mut svc,
            GLOBAL_VARIABLE,
            "KEK",
            AUTH_ATTRS | APPEND,
            &kek_by_kek
        ),
        EfiStatus::SECURITY_VIOLATION
    );
    assert_eq!(
        set(&mut svc, GLOBAL_VARIABLE, "KEK", AUTH_ATTRS | APPEND, &kek),
        EfiStatus::SUCCESS
    );

    // db and dbx appends signed by KEK
    let db = pki.sign("db", "db.esl", "KEK", "2025-01-03 00:00:00", true);
    assert_eq!(
        set(
            &mut svc,
            IMAGE_SECURITY_DATABASE,
            "db",
            AUTH_ATTRS | APPEND,
            &db
        ),
        EfiStatus::SUCCESS
    );
    let dbx = pki.sign("dbx", "rogue.esl", "KEK", "2025-01-03 00:00:00", true);
    assert_eq!(
        set(
            &mut svc,
            IMAGE_SECURITY_DATABASE,
            "dbx",
            AUTH_ATTRS | APPEND,
            &dbx
        ),
        EfiStatus::SUCCESS
    );
    let db_data = svc
        .store()
        .get(&VarKey::new(IMAGE_SECURITY_DATABASE, "db".into()))
        .unwrap()
        .data
        .clone();
    assert_eq!(db_data, std::fs::read(pki.path("db.esl")).unwrap());

    // rejected writes
    let db_rogue = pki.sign("db", "rogue.esl", "rogue", "2025-02-01 00:00:00", true);
    assert_eq!(
        set(
            &mut svc,
            IMAGE_SECURITY_DATABASE,
            "db",
            AUTH_ATTRS | APPEND,
            &db_rogue
        ),
        EfiStatus::SECURITY_VIOLATION,
        "wrong key"
    );
    let mut corrupt = pki.sign("db", "rogue.esl", "KEK", "2025-02-01 00:00:00", false);
    let sig_end = 16 + u32::from_le_bytes(corrupt[16..20].try_into().unwrap()) as usize;
    corrupt[sig_end - 10] ^= 0x55;
    assert_eq!(
        set(
            &mut svc,
            IMAGE_SECURITY_DATABASE,
            "db",
            AUTH_ATTRS,
            &corrupt
        ),
        EfiStatus::SECURITY_VIOLATION,
        "corrupt signature"
    );
    let replace = pki.sign("db", "rogue.esl", "KEK", "2025-02-01 00:00:00", false);
    assert_eq!(
        set(
            &mut svc,
            IMAGE_SECURITY_DATABASE,
            "db",
            AUTH_ATTRS,
            &replace
        ),
        EfiStatus::SUCCESS
    );
    // replaying the same signed update (equal timestamp): QEMU accepts it
    assert_eq!(
        set(
            &mut svc,
            IMAGE_SECURITY_DATABASE,
            "db",
            AUTH_ATTRS,
            &replace
        ),
        EfiStatus::SECURITY_VIOLATION,
        "replayed timestamp"
    );
    let older = pki.sign("db", "db.esl", "KEK", "2025-01-15 00:00:00", false);
    assert_eq!(
        set(&mut svc, IMAGE_SECURITY_DATABASE, "db", AUTH_ATTRS, &older),
        EfiStatus::SECURITY_VIOLATION,
        "older timestamp"
    );
    // unsigned deletes of PK, db: QEMU deletes them; with the stored
    // attributes edk2's descriptor check refuses DataSize 0
    // (VariableServiceSetVariable), with attributes 0 ProcessVarWithPk
    assert_eq!(
        set(&mut svc, GLOBAL_VARIABLE, "PK", AUTH_ATTRS, &[]),
        EfiStatus::SECURITY_VIOLATION
    );
    assert_eq!(
        set(&mut svc, IMAGE_SECURITY_DATABASE, "db", 0, &[]),
        EfiStatus::INVALID_PARAMETER
    );
    // read-only variables
    assert_eq!(
        set(&mut svc, GLOBAL_VARIABLE, "SecureBoot", 6, &[0]),
        EfiStatus::WRITE_PROTECTED
    );
    assert_eq!(
        set(&mut svc, GLOBAL_VARIABLE, "SetupMode", 6, &[1]),
        EfiStatus::WRITE_PROTECTED
    );
    assert_eq!(mode(&svc), (0, 1));
    // KEK cannot sign PK updates
    let pk_by_kek = pki.sign("PK", "rogue.esl", "KEK", "2025-03-01 00:00:00", false);
    assert_eq!(
        set(&mut svc, GLOBAL_VARIABLE, "PK", AUTH_ATTRS, &pk_by_kek),
        EfiStatus::SECURITY_VIOLATION
    );

    // PK delete signed by PK -> setup mode immediately
    let empty = pki.path("empty.esl");
    std::fs::write(&empty, b"").unwrap();
    let pk_del = pki.sign("PK", "empty.esl", "PK", "2025-04-01 00:00:00", false);
    assert_eq!(
        set(&mut svc, GLOBAL_VARIABLE, "PK", AUTH_ATTRS, &pk_del),
        EfiStatus::SUCCESS
    );
    assert!(svc
        .store()
        .get(&VarKey::new(GLOBAL_VARIABLE, "PK".into()))
        .is_none());
    assert_eq!(
        mode(&svc),
        (1, 0),
        "QEMU keeps SetupMode=0/SecureBoot=1 until reset"
    );
    // in setup mode KEK and db need no signature again
    let db_setup = pki.sign("db", "db.esl", "rogue", "2025-05-01 00:00:00", false);
    assert_eq!(
        set(
            &mut svc,
            IMAGE_SECURITY_DATABASE,
            "db",
            AUTH_ATTRS,
            &db_setup
        ),
        EfiStatus::SUCCESS
    );
}

/// A PKCS#7 signature made by `openssl smime` over content we assemble
/// ourselves: a descriptor whose EFI_TIME has a non-zero Pad2 is refused
/// even though the signature itself is good.
// Verifies PKCS#7 signatures: needs the `openssl` feature.
#[cfg(feature = "openssl")]
#[test]
fn nonzero_time_pad_is_refused_even_if_signed() {
    let pki = Pki::new();
    let mut svc = fresh();
    // user mode: PK enrolled
    let pk = pki.sign("PK", "PK.esl", "PK", "2025-01-01 00:00:00", false);
    assert_eq!(
        set(&mut svc, GLOBAL_VARIABLE, "PK", AUTH_ATTRS, &pk),
        EfiStatus::SUCCESS
    );

    let payload = std::fs::read(pki.path("KEK.esl")).unwrap();
    let mut time = [0u8; 16];
    time[0..2].copy_from_slice(&2026u16.to_le_bytes());
    time[2] = 1;
    time[3] = 1;
    time[15] = 1; // Pad2
    let mut content: Vec<u8> = "KEK".encode_utf16().flat_map(u16::to_le_bytes).collect();
    content.extend_from_slice(&GLOBAL_VARIABLE.0);
    content.extend_from_slice(&AUTH_ATTRS.to_le_bytes());
    content.extend_from_slice(&time);
    content.extend_from_slice(&payload);
    std::fs::write(pki.path("content.bin"), &content).unwrap();
    let mut c = tool("openssl");
    c.current_dir(pki.dir.path()).args([
        "smime",
        "-sign",
        "-binary",
        "-noattr",
        "-md",
        "sha256",
        "-outform",
        "DER",
        "-in",
        "content.bin",
        "-signer",
        "PK.crt",
        "-inkey",
        "PK.key",
        "-out",
        "sig.p7",
    ]);
    run(c);
    let p7 = std::fs::read(pki.path("sig.p7")).unwrap();
    let t = uefi_vars::time::EfiTime(time);
    let auth = uefi_vars::auth::build_auth2(&t, &p7, &payload);
    assert_eq!(
        set(&mut svc, GLOBAL_VARIABLE, "KEK", AUTH_ATTRS, &auth),
        EfiStatus::SECURITY_VIOLATION
    );
    // the same signature scheme with a clean timestamp is accepted, so the
    // refusal above is about the pad byte (and ContentInfo-wrapped SignedData
    // from `openssl smime` is accepted)
    time[15] = 0;
    let mut content2 = content.clone();
    let tpos = content2.len() - payload.len() - 16;
    content2[tpos + 15] = 0;
    std::fs::write(pki.path("content.bin"), &content2).unwrap();
    let mut c = tool("openssl");
    c.current_dir(pki.dir.path()).args([
        "smime",
        "-sign",
        "-binary",
        "-noattr",
        "-md",
        "sha256",
        "-outform",
        "DER",
        "-in",
        "content.bin",
        "-signer",
        "PK.crt",
        "-inkey",
        "PK.key",
        "-out",
        "sig.p7",
    ]);
    run(c);
    let p7 = std::fs::read(pki.path("sig.p7")).unwrap();
    let auth = uefi_vars::auth::build_auth2(&uefi_vars::time::EfiTime(time), &p7, &payload);
    assert_eq!(
        set(&mut svc, GLOBAL_VARIABLE, "KEK", AUTH_ATTRS, &auth),
        EfiStatus::SUCCESS
    );
}

fn enroll_file(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/data/enroll")
            .join(name),
    )
    .unwrap()
}

/// virtfw-varstore's enrollment files carry no signature (dwLength 24).
/// db, dbx and KEK enroll in setup mode; PK needs a self-signature in edk2,
/// so it enrolls only in custom mode; afterwards replays fail.
#[test]
fn virtfw_enrollment_files() {
    let mut svc = fresh();
    assert_eq!(
        set(
            &mut svc,
            IMAGE_SECURITY_DATABASE,
            "db",
            AUTH_ATTRS,
            &enroll_file("db.auth")
        ),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        set(
            &mut svc,
            IMAGE_SECURITY_DATABASE,
            "dbx",
            AUTH_ATTRS,
            &enroll_file("dbx.auth")
        ),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        set(
            &mut svc,
            GLOBAL_VARIABLE,
            "KEK",
            AUTH_ATTRS,
            &enroll_file("KEK.auth")
        ),
        EfiStatus::SUCCESS
    );
    let pk = enroll_file("PK.auth");
    assert_eq!(
        set(&mut svc, GLOBAL_VARIABLE, "PK", AUTH_ATTRS, &pk),
        EfiStatus::SECURITY_VIOLATION,
        "unsigned PK outside custom mode"
    );
    assert_eq!(
        set(
            &mut svc,
            CUSTOM_MODE_ENABLE,
            "CustomMode",
            attr::NON_VOLATILE | attr::BOOTSERVICE_ACCESS,
            &[1]
        ),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        set(&mut svc, GLOBAL_VARIABLE, "PK", AUTH_ATTRS, &pk),
        EfiStatus::SUCCESS
    );
    assert_eq!(mode(&svc), (0, 1));
    assert_eq!(
        byte(&svc, CUSTOM_MODE_ENABLE, "CustomMode"),
        Some(0),
        "PK enrollment leaves custom mode"
    );
    for (guid, name) in [
        (IMAGE_SECURITY_DATABASE, "db"),
        (IMAGE_SECURITY_DATABASE, "dbx"),
        (GLOBAL_VARIABLE, "KEK"),
        (GLOBAL_VARIABLE, "PK"),
    ] {
        assert_eq!(
            set(
                &mut svc,
                guid,
                name,
                AUTH_ATTRS,
                &enroll_file(&format!("{name}.auth"))
            ),
            EfiStatus::SECURITY_VIOLATION,
            "{name} override"
        );
    }
    let pk_lists = uefi_vars::siglist::parse(
        &svc.store()
            .get(&VarKey::new(GLOBAL_VARIABLE, "PK".into()))
            .unwrap()
            .data,
    )
    .unwrap();
    assert_eq!(pk_lists.len(), 1);
}

#[test]
fn virt_fw_vars_enrolled_store_is_in_user_mode() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rh.json");
    let mut c = tool("virt-fw-vars");
    c.args(["--enroll-redhat", "--secure-boot", "--output-json"])
        .arg(&out);
    run(c);
    let svc = common::new(Config::default(), Box::new(JsonFile::new(&out))).unwrap();
    assert_eq!(mode(&svc), (0, 1));
    let kek = &svc
        .store()
        .get(&VarKey::new(GLOBAL_VARIABLE, "KEK".into()))
        .unwrap()
        .data;
    assert!(uefi_vars::siglist::check_format(kek, false).is_ok());
}

/// Signs `content` with `openssl smime` (ContentInfo-wrapped SignedData,
/// SHA-256, no signed attributes), optionally adding more certificates to
/// the bag (openssl puts them before the signer's).
fn smime_sign(pki: &Pki, key: &str, content: &[u8], certfile: Option<&str>) -> Vec<u8> {
    std::fs::write(pki.path("content.bin"), content).unwrap();
    let mut c = tool("openssl");
    c.current_dir(pki.dir.path()).args([
        "smime",
        "-sign",
        "-binary",
        "-noattr",
        "-md",
        "sha256",
        "-outform",
        "DER",
        "-in",
        "content.bin",
        "-signer",
        &format!("{key}.crt"),
        "-inkey",
        &format!("{key}.key"),
        "-out",
        "sig.p7",
    ]);
    if let Some(extra) = certfile {
        c.args(["-certfile", extra]);
    }
    run(c);
    std::fs::read(pki.path("sig.p7")).unwrap()
}

fn private_update(
    pki: &Pki,
    key: &str,
    day: u8,
    payload: &[u8],
    certfile: Option<&str>,
) -> Vec<u8> {
    let attrs = attr::NON_VOLATILE
        | attr::BOOTSERVICE_ACCESS
        | attr::RUNTIME_ACCESS
        | attr::TIME_BASED_AUTHENTICATED_WRITE_ACCESS;
    private_update_as(pki, key, day, payload, certfile, attrs)
}

/// `private_update` signed for the attributes `attrs` (the signature
/// covers them, APPEND_WRITE included).
fn private_update_as(
    pki: &Pki,
    key: &str,
    day: u8,
    payload: &[u8],
    certfile: Option<&str>,
    attrs: u32,
) -> Vec<u8> {
    let guid: Guid = "99999999-8888-7777-6666-555555555555".parse().unwrap();
    let mut time = [0u8; 16];
    time[0..2].copy_from_slice(&2025u16.to_le_bytes());
    time[2] = 6;
    time[3] = day;
    let t = uefi_vars::time::EfiTime(time);
    let unsigned = uefi_vars::auth::Auth2 {
        timestamp: t,
        pkcs7: &[],
        payload,
    };
    let content =
        uefi_vars::auth::signed_content(&guid, &VarName::from("Private"), attrs, &unsigned);
    let p7 = smime_sign(pki, key, &content, certfile);
    uefi_vars::auth::build_auth2(&t, &p7, payload)
}

/// edk2 UpdateVariable with APPEND_WRITE on a private authenticated
/// variable (VerifyTimeBasedPayload skips the time check for APPEND and
/// the later timestamp is kept): the owner's signed APPEND appends, even
/// dated earlier; another signer's is refused; a plain update must be
/// dated later (QEMU: EFI_UNSUPPORTED for the APPEND, compat:
/// append-any-variable).
#[cfg(feature = "openssl")]
#[test]
fn compat_append_any_variable_private_authenticated() {
    use uefi_vars::Refusal;
    let pki = Pki::new();
    let mut svc = fresh();
    let guid: Guid = "99999999-8888-7777-6666-555555555555".parse().unwrap();
    let attrs = attr::NON_VOLATILE
        | attr::BOOTSERVICE_ACCESS
        | attr::RUNTIME_ACCESS
        | attr::TIME_BASED_AUTHENTICATED_WRITE_ACCESS;
    let append = attrs | attr::APPEND_WRITE;
    let key = VarKey::new(guid, "Private".into());
    assert_eq!(
        set(
            &mut svc,
            guid,
            "Private",
            attrs,
            &private_update(&pki, "db", 5, b"one", None)
        ),
        EfiStatus::SUCCESS
    );
    let stored_time = svc.store().get(&key).unwrap().time;
    let older = private_update_as(&pki, "db", 3, b"two", None, append);
    assert_eq!(
        set(&mut svc, guid, "Private", append, &older),
        EfiStatus::SUCCESS
    );
    let v = svc.store().get(&key).unwrap();
    assert_eq!(v.data, b"onetwo");
    assert_eq!(v.time, stored_time, "the later timestamp stays");
    assert_eq!(v.attributes, attrs);
    let rogue = private_update_as(&pki, "rogue", 6, b"three", None, append);
    assert_eq!(
        set(&mut svc, guid, "Private", append, &rogue),
        EfiStatus::SECURITY_VIOLATION
    );
    assert!(matches!(
        svc.last_refusal().unwrap().refusal,
        Refusal::SignerNotTrusted { signer: Some(_) }
    ));
    let replay = private_update(&pki, "db", 4, b"four", None);
    assert_eq!(
        set(&mut svc, guid, "Private", attrs, &replay),
        EfiStatus::SECURITY_VIOLATION
    );
    assert!(matches!(
        svc.last_refusal().unwrap().refusal,
        Refusal::Replay { .. }
    ));
    assert_eq!(svc.store().get(&key).unwrap().data, b"onetwo");
}

// Verifies PKCS#7 signatures: needs the `openssl` feature.
#[cfg(feature = "openssl")]
#[test]
fn private_variable_is_bound_to_its_real_signer() {
    let pki = Pki::new();
    let mut svc = fresh();
    let guid: Guid = "99999999-8888-7777-6666-555555555555".parse().unwrap();
    let attrs = attr::NON_VOLATILE
        | attr::BOOTSERVICE_ACCESS
        | attr::RUNTIME_ACCESS
        | attr::TIME_BASED_AUTHENTICATED_WRITE_ACCESS;
    let put = |svc: &mut Service, data: &[u8]| set(svc, guid, "Private", attrs, data);

    // creation: any correct signature; the signer (db key) owns the variable
    assert_eq!(
        put(&mut svc, &private_update(&pki, "db", 1, b"one", None)),
        EfiStatus::SUCCESS
    );
    // another key cannot update it
    assert_eq!(
        put(&mut svc, &private_update(&pki, "rogue", 2, b"two", None)),
        EfiStatus::SECURITY_VIOLATION
    );
    // spoof: the owner's certificate first in the bag, but signed by rogue
    // (QEMU takes the identity from the first certificate and accepts)
    assert_eq!(
        put(
            &mut svc,
            &private_update(&pki, "rogue", 3, b"spoof", Some("db.crt"))
        ),
        EfiStatus::SECURITY_VIOLATION
    );
    // the owner can, with a later timestamp, even with other certs in the bag
    assert_eq!(
        put(
            &mut svc,
            &private_update(&pki, "db", 4, b"four", Some("rogue.crt"))
        ),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        svc.store()
            .get(&VarKey::new(guid, "Private".into()))
            .unwrap()
            .data,
        b"four"
    );
    // replay of an older update
    assert_eq!(
        put(&mut svc, &private_update(&pki, "db", 3, b"three", None)),
        EfiStatus::SECURITY_VIOLATION
    );
    // unsigned delete refused (QEMU deletes): with the stored attributes
    // the descriptor check (edk2 VariableServiceSetVariable)
    assert_eq!(put(&mut svc, &[]), EfiStatus::SECURITY_VIOLATION);
    // signed empty update by the owner deletes it
    assert_eq!(
        put(&mut svc, &private_update(&pki, "db", 5, b"", None)),
        EfiStatus::SUCCESS
    );
    assert!(svc
        .store()
        .get(&VarKey::new(guid, "Private".into()))
        .is_none());
    // once gone, a new signer may create it
    assert_eq!(
        put(&mut svc, &private_update(&pki, "rogue", 6, b"mine", None)),
        EfiStatus::SUCCESS
    );
}

#[test]
fn deprecated_count_based_auth_is_unsupported() {
    let mut svc = fresh();
    let attrs = attr::NON_VOLATILE | attr::BOOTSERVICE_ACCESS | attr::AUTHENTICATED_WRITE_ACCESS;
    assert_eq!(
        set(&mut svc, GLOBAL_VARIABLE, "Old", attrs, &[0; 64]),
        EfiStatus::UNSUPPORTED
    );
}

/// Enrolls PK (self-signed, 2025-01-01) and KEK (signed by PK, 2025-01-02).
fn user_mode(pki: &Pki) -> Service {
    let mut svc = fresh();
    let pk = pki.sign("PK", "PK.esl", "PK", "2025-01-01 00:00:00", false);
    assert_eq!(
        set(&mut svc, GLOBAL_VARIABLE, "PK", AUTH_ATTRS, &pk),
        EfiStatus::SUCCESS
    );
    let kek = pki.sign("KEK", "KEK.esl", "PK", "2025-01-02 00:00:00", false);
    assert_eq!(
        set(&mut svc, GLOBAL_VARIABLE, "KEK", AUTH_ATTRS, &kek),
        EfiStatus::SUCCESS
    );
    svc
}

/// docs/reference/limitations.md §2.4: APPEND with an older timestamp must not roll the
/// stored time back (compat: append-time; QEMU 11.1.3 stores the older
/// time, QEMU 10.0.2 refuses the APPEND with EFI_SECURITY_VIOLATION; edk2
/// UpdateVariable keeps the later).
// Verifies PKCS#7 signatures: needs the `openssl` feature.
#[cfg(feature = "openssl")]
#[test]
fn compat_append_time() {
    let pki = Pki::new();
    let mut svc = user_mode(&pki);
    let db = pki.sign("db", "db.esl", "KEK", "2025-03-01 00:00:00", false);
    assert_eq!(
        set(&mut svc, IMAGE_SECURITY_DATABASE, "db", AUTH_ATTRS, &db),
        EfiStatus::SUCCESS
    );
    let older = pki.sign("db", "rogue.esl", "KEK", "2025-02-01 00:00:00", true);
    assert_eq!(
        set(
            &mut svc,
            IMAGE_SECURITY_DATABASE,
            "db",
            AUTH_ATTRS | APPEND,
            &older
        ),
        EfiStatus::SUCCESS
    );
    let v = svc
        .store()
        .get(&VarKey::new(IMAGE_SECURITY_DATABASE, "db".into()))
        .unwrap();
    assert_eq!(
        (v.time.month(), v.time.day()),
        (3, 1),
        "time kept at 2025-03-01"
    );
    assert_eq!(
        uefi_vars::siglist::parse(&v.data).unwrap().len(),
        2,
        "both certificates present"
    );
    // so a replace signed at 2025-02-15 is still a replay
    let replay = pki.sign("db", "rogue.esl", "KEK", "2025-02-15 00:00:00", false);
    assert_eq!(
        set(&mut svc, IMAGE_SECURITY_DATABASE, "db", AUTH_ATTRS, &replay),
        EfiStatus::SECURITY_VIOLATION
    );
}

/// docs/reference/limitations.md §2.7: payload format of the Secure Boot databases (QEMU
/// stores anything; edk2 CheckSignatureListFormat says INVALID_PARAMETER).
#[test]
fn limitation_2_7_payload_format_is_checked() {
    let pki = Pki::new();
    let mut svc = fresh();
    // PK with two certificates, even correctly self-signed
    let two = [
        std::fs::read(pki.path("PK.esl")).unwrap(),
        std::fs::read(pki.path("KEK.esl")).unwrap(),
    ]
    .concat();
    std::fs::write(pki.path("two.esl"), two).unwrap();
    let pk2 = pki.sign("PK", "two.esl", "PK", "2025-01-01 00:00:00", false);
    assert_eq!(
        set(&mut svc, GLOBAL_VARIABLE, "PK", AUTH_ATTRS, &pk2),
        EfiStatus::INVALID_PARAMETER
    );
    // garbage as db in setup mode (no signature needed, format still checked)
    std::fs::write(pki.path("junk.esl"), b"this is not a signature list at all").unwrap();
    let junk = pki.sign("db", "junk.esl", "KEK", "2025-01-01 00:00:00", false);
    assert_eq!(
        set(&mut svc, IMAGE_SECURITY_DATABASE, "db", AUTH_ATTRS, &junk),
        EfiStatus::INVALID_PARAMETER
    );
    assert!(svc
        .store()
        .get(&VarKey::new(IMAGE_SECURITY_DATABASE, "db".into()))
        .is_none());
}

/// docs/reference/limitations.md §2.8: trust differences. A KEK update signed by a
/// certificate that chains to PK but is not PK is refused (edk2: the signer
/// must be PK itself; QEMU accepts any chain to PK); db may be signed by PK
/// (edk2; QEMU: KEK only); dbt follows the db rules (QEMU: first writer owns
/// it).
// Verifies PKCS#7 signatures: needs the `openssl` feature.
#[cfg(feature = "openssl")]
#[test]
fn limitation_2_8_trust_rules() {
    let pki = Pki::new();
    let dir = pki.dir.path();
    let mut c = tool("openssl");
    c.current_dir(dir).args([
        "req",
        "-new",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=under PK",
        "-keyout",
        "sub.key",
        "-out",
        "sub.csr",
    ]);
    run(c);
    let mut c = tool("openssl");
    c.current_dir(dir).args([
        "x509",
        "-req",
        "-in",
        "sub.csr",
        "-CA",
        "PK.crt",
        "-CAkey",
        "PK.key",
        "-CAcreateserial",
        "-days",
        "365",
        "-sha256",
        "-out",
        "sub.crt",
    ]);
    run(c);
    let mut svc = user_mode(&pki);

    let mut time = [0u8; 16];
    time[0..2].copy_from_slice(&2025u16.to_le_bytes());
    time[2] = 5;
    time[3] = 1;
    let t = uefi_vars::time::EfiTime(time);
    let payload = std::fs::read(pki.path("rogue.esl")).unwrap();
    let unsigned = uefi_vars::auth::Auth2 {
        timestamp: t,
        pkcs7: &[],
        payload: &payload,
    };
    let content = uefi_vars::auth::signed_content(
        &GLOBAL_VARIABLE,
        &VarName::from("KEK"),
        AUTH_ATTRS,
        &unsigned,
    );
    let p7 = smime_sign(&pki, "sub", &content, Some("PK.crt"));
    let kek_by_sub = uefi_vars::auth::build_auth2(&t, &p7, &payload);
    assert_eq!(
        set(&mut svc, GLOBAL_VARIABLE, "KEK", AUTH_ATTRS, &kek_by_sub),
        EfiStatus::SECURITY_VIOLATION
    );

    let db_by_pk = pki.sign("db", "db.esl", "PK", "2025-05-02 00:00:00", false);
    assert_eq!(
        set(
            &mut svc,
            IMAGE_SECURITY_DATABASE,
            "db",
            AUTH_ATTRS,
            &db_by_pk
        ),
        EfiStatus::SUCCESS
    );

    let dbt_rogue = pki.sign("dbt", "rogue.esl", "rogue", "2025-05-03 00:00:00", false);
    assert_eq!(
        set(
            &mut svc,
            IMAGE_SECURITY_DATABASE,
            "dbt",
            AUTH_ATTRS,
            &dbt_rogue
        ),
        EfiStatus::SECURITY_VIOLATION
    );
    let dbt_kek = pki.sign("dbt", "rogue.esl", "KEK", "2025-05-03 00:00:00", false);
    assert_eq!(
        set(
            &mut svc,
            IMAGE_SECURITY_DATABASE,
            "dbt",
            AUTH_ATTRS,
            &dbt_kek
        ),
        EfiStatus::SUCCESS
    );
}

/// APPEND keeps every signature type (QEMU keeps only X.509 and SHA-256).
// Verifies PKCS#7 signatures: needs the `openssl` feature.
#[cfg(feature = "openssl")]
#[test]
fn append_keeps_every_signature_type() {
    let pki = Pki::new();
    let mut svc = user_mode(&pki);
    let list = |ty: Guid, len: usize, fill: u8| {
        let mut l = ty.0.to_vec();
        l.extend_from_slice(&((28 + 16 + len) as u32).to_le_bytes());
        l.extend_from_slice(&0u32.to_le_bytes());
        l.extend_from_slice(&((16 + len) as u32).to_le_bytes());
        l.extend_from_slice(&[0x42; 16]);
        l.extend(std::iter::repeat_n(fill, len));
        l
    };
    let hashes = [
        list(uefi_vars::guid::CERT_SHA384, 48, 1),
        list(uefi_vars::guid::CERT_SHA512, 64, 2),
        list(uefi_vars::guid::CERT_X509_SHA256, 48, 3),
        list(uefi_vars::guid::CERT_SHA1, 20, 4),
    ]
    .concat();
    std::fs::write(pki.path("hashes.esl"), &hashes).unwrap();
    let dbx = pki.sign("dbx", "hashes.esl", "KEK", "2025-06-01 00:00:00", true);
    assert_eq!(
        set(
            &mut svc,
            IMAGE_SECURITY_DATABASE,
            "dbx",
            AUTH_ATTRS | APPEND,
            &dbx
        ),
        EfiStatus::SUCCESS
    );
    let more = [
        list(uefi_vars::guid::CERT_SHA384, 48, 1),
        list(uefi_vars::guid::CERT_SHA256, 32, 5),
    ]
    .concat();
    std::fs::write(pki.path("more.esl"), &more).unwrap();
    let dbx2 = pki.sign("dbx", "more.esl", "KEK", "2025-06-02 00:00:00", true);
    assert_eq!(
        set(
            &mut svc,
            IMAGE_SECURITY_DATABASE,
            "dbx",
            AUTH_ATTRS | APPEND,
            &dbx2
        ),
        EfiStatus::SUCCESS
    );
    let data = &svc
        .store()
        .get(&VarKey::new(IMAGE_SECURITY_DATABASE, "dbx".into()))
        .unwrap()
        .data;
    // old content byte for byte, then only the new SHA-256 entry (the SHA-384 one was a duplicate)
    assert_eq!(
        data,
        &[hashes, list(uefi_vars::guid::CERT_SHA256, 32, 5)].concat()
    );
}
