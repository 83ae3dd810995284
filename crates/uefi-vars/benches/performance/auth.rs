//! An authenticated write against OpenSSL's own PKCS#7 verify of the same
//! blob: Microsoft's signed dbx update (crates/uefi-vars-cli/tests/data,
//! signed under Microsoft Corporation KEK CA 2011) appended to dbx in user
//! mode, with KEK holding Red Hat's 2014 certificate first and both
//! Microsoft KEK CAs after it (the order virt-fw-vars' Red Hat enrollment
//! gives), against `PKCS7_verify` with a store of just the Microsoft KEK CA
//! 2011, set up as edk2's `Pkcs7Verify` does (partial chain, no time
//! check, any purpose); interleaved in batches.

use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
use openssl::stack::Stack;
use openssl::x509::store::{X509Store, X509StoreBuilder};
use openssl::x509::verify::X509VerifyFlags;
use openssl::x509::{X509PurposeId, X509};
use uefi_vars::auth::{parse_auth2, signed_content};
use uefi_vars::guid::{Guid, CERT_X509, GLOBAL_VARIABLE, IMAGE_SECURITY_DATABASE};
use uefi_vars::name::VarName;
use uefi_vars::persist::{json, MemoryStorage};
use uefi_vars::siglist::single_entry_list;
use uefi_vars::variable::{attr, Variable};
use uefi_vars::{Config, EfiStatus, Service};

use super::{cpu_us, median, workspace_file};

const AUTH: u32 = attr::NON_VOLATILE
    | attr::BOOTSERVICE_ACCESS
    | attr::RUNTIME_ACCESS
    | attr::TIME_BASED_AUTHENTICATED_WRITE_ACCESS;
const OWNER: Guid = Guid::from_fields(0x7776_4b6b, 0x6b42, 0x4b46, [1, 2, 3, 4, 5, 6, 7, 8]);

fn cert(rel: &str) -> Vec<u8> {
    let bytes =
        std::fs::read(workspace_file(&format!("crates/uefi-vars-cli/certs/{rel}"))).unwrap();
    if rel.ends_with(".pem") {
        X509::from_pem(&bytes).unwrap().to_der().unwrap()
    } else {
        bytes
    }
}

/// A service in user mode: PK Red Hat's, KEK Red Hat's and Microsoft's.
fn user_mode() -> Service {
    let rh = cert("redhat/rh-pk-kek-2014.pem");
    let mut kek = single_entry_list(&CERT_X509, &OWNER, &rh);
    for ms in ["microsoft/ms-kek-2011.der", "microsoft/ms-kek-2023.der"] {
        kek.extend(single_entry_list(&CERT_X509, &OWNER, &cert(ms)));
    }
    let pk = single_entry_list(&CERT_X509, &OWNER, &rh);
    let vars = [
        Variable::new(GLOBAL_VARIABLE, VarName::from("PK"), AUTH, pk),
        Variable::new(GLOBAL_VARIABLE, VarName::from("KEK"), AUTH, kek),
    ];
    let text = json::encode(&vars.iter().collect::<Vec<_>>()).unwrap();
    Service::new(Config::default(), Box::new(MemoryStorage::from_text(text))).unwrap()
}

/// ContentInfo around a bare SignedData (as edk2's WrapPkcs7Data).
fn content_info(p7: &[u8]) -> Vec<u8> {
    if Pkcs7::from_der(p7).is_ok() {
        return p7.to_vec();
    }
    let len = |n: usize| -> Vec<u8> {
        assert!(n < 1 << 16);
        vec![0x82, (n >> 8) as u8, n as u8]
    };
    let oid = [
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02,
    ];
    let mut explicit = vec![0xa0];
    explicit.extend(len(p7.len()));
    explicit.extend_from_slice(p7);
    let mut out = vec![0x30];
    out.extend(len(oid.len() + explicit.len()));
    out.extend_from_slice(&oid);
    out.extend(explicit);
    out
}

fn edk2_store(anchor: &[u8]) -> X509Store {
    let mut b = X509StoreBuilder::new().unwrap();
    b.add_cert(X509::from_der(anchor).unwrap()).unwrap();
    b.set_flags(X509VerifyFlags::PARTIAL_CHAIN | X509VerifyFlags::NO_CHECK_TIME)
        .unwrap();
    b.set_purpose(X509PurposeId::ANY).unwrap();
    b.build()
}

/// What a fresh user-mode service answers to the dbx append `update`.
fn svc_check(update: &[u8]) -> EfiStatus {
    let attrs = AUTH | attr::APPEND_WRITE;
    user_mode().set_variable(IMAGE_SECURITY_DATABASE, VarName::from("dbx"), attrs, update)
}

pub fn run() {
    let update = std::fs::read(workspace_file(
        "crates/uefi-vars-cli/tests/data/ms-dbxupdate-x86.bin",
    ))
    .unwrap();
    let attrs = AUTH | attr::APPEND_WRITE;
    let dbx = VarName::from("dbx");
    let auth = parse_auth2(&update).unwrap();
    let content = signed_content(&IMAGE_SECURITY_DATABASE, &dbx, attrs, &auth);
    let ci = content_info(auth.pkcs7);
    let store = edk2_store(&cert("microsoft/ms-kek-2011.der"));
    let no_certs: Stack<X509> = Stack::new().unwrap();
    let raw = || {
        let p7 = Pkcs7::from_der(&ci).unwrap();
        p7.verify(&no_certs, &store, Some(&content), None, Pkcs7Flags::BINARY)
            .unwrap();
    };
    let mut svc = user_mode();
    let mut write = || {
        let status = svc.set_variable(IMAGE_SECURITY_DATABASE, dbx.clone(), attrs, &update);
        assert_eq!(status, EfiStatus::SUCCESS);
    };
    write();
    raw();
    // The write really verifies: one changed payload byte is refused.
    let mut tampered = update.clone();
    *tampered.last_mut().unwrap() ^= 1;
    let status = svc_check(&tampered);
    assert_eq!(status, EfiStatus::SECURITY_VIOLATION);
    let (mut ours, mut theirs) = (vec![], vec![]);
    for _ in 0..30 {
        let batch = 10;
        ours.push(cpu_us(|| (0..batch).for_each(|_| write())).0 / batch as f64);
        theirs.push(cpu_us(|| (0..batch).for_each(|_| raw())).0 / batch as f64);
    }
    let (o, t) = (median(&mut ours), median(&mut theirs));
    println!();
    println!("| authenticated write (Microsoft dbx update, 5,540 bytes) | CPU µs | ratio |");
    println!("| --- | --- | --- |");
    println!("| uefi-vars SetVariable(dbx, APPEND), KEK = [Red Hat, MS 2011, MS 2023] | {o:.0} | {:.2}× |", o / t);
    println!("| OpenSSL d2i_PKCS7 + PKCS7_verify, store = MS KEK CA 2011 | {t:.0} | 1.00× |");
}
