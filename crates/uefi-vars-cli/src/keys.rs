//! Certificates and keys for `enroll` and `sign`: loading PEM/DER files,
//! generating a throw-away test PKI, and detached PKCS#7 signatures.

use std::path::Path;

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::stack::Stack;
use openssl::x509::extension::{BasicConstraints, KeyUsage, SubjectKeyIdentifier};
use openssl::x509::{X509NameBuilder, X509};

/// Largest certificate or key file read: a certificate enrolled in a
/// database must fit the 64 KiB MM buffer with room to spare, and no key
/// file is near that; a larger file is refused from its size, unread.
const KEY_FILE_LIMIT: u64 = 64 << 10;

fn read_key_file(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    crate::store_io::read_bounded(path, KEY_FILE_LIMIT, what).map_err(|e| e.to_string())
}

/// A certificate from a PEM or DER file.
pub fn load_cert(path: &Path) -> Result<X509, String> {
    let bytes = read_key_file(path, "a certificate file")?;
    X509::from_pem(&bytes)
        .or_else(|_| X509::from_der(&bytes))
        .map_err(|e| format!("{}: not a PEM or DER certificate: {e}", path.display()))
}

/// A private key from a PEM or DER file.
pub fn load_key(path: &Path) -> Result<PKey<Private>, String> {
    let bytes = read_key_file(path, "a private key file")?;
    PKey::private_key_from_pem(&bytes)
        .or_else(|_| PKey::private_key_from_der(&bytes))
        .map_err(|e| format!("{}: not a PEM or DER private key: {e}", path.display()))
}

fn ossl(e: openssl::error::ErrorStack) -> String {
    format!("openssl: {e}")
}

/// A self-signed RSA-2048 / SHA-256 certificate valid for ten years, as
/// test PKIs for Secure Boot use.
pub fn self_signed(common_name: &str) -> Result<(X509, PKey<Private>), String> {
    let key = PKey::from_rsa(Rsa::generate(2048).map_err(ossl)?).map_err(ossl)?;
    let mut name = X509NameBuilder::new().map_err(ossl)?;
    name.append_entry_by_text("CN", common_name).map_err(ossl)?;
    let name = name.build();
    let mut b = X509::builder().map_err(ossl)?;
    b.set_version(2).map_err(ossl)?;
    let mut serial = BigNum::new().map_err(ossl)?;
    serial
        .rand(63, openssl::bn::MsbOption::MAYBE_ZERO, false)
        .map_err(ossl)?;
    let serial: Asn1Integer = serial.to_asn1_integer().map_err(ossl)?;
    b.set_serial_number(&serial).map_err(ossl)?;
    b.set_subject_name(&name).map_err(ossl)?;
    b.set_issuer_name(&name).map_err(ossl)?;
    b.set_pubkey(&key).map_err(ossl)?;
    let not_before = Asn1Time::days_from_now(0).map_err(ossl)?;
    let not_after = Asn1Time::days_from_now(3650).map_err(ossl)?;
    b.set_not_before(&not_before).map_err(ossl)?;
    b.set_not_after(&not_after).map_err(ossl)?;
    b.append_extension(
        BasicConstraints::new()
            .critical()
            .ca()
            .build()
            .map_err(ossl)?,
    )
    .map_err(ossl)?;
    b.append_extension(
        KeyUsage::new()
            .digital_signature()
            .key_cert_sign()
            .build()
            .map_err(ossl)?,
    )
    .map_err(ossl)?;
    let ski = SubjectKeyIdentifier::new()
        .build(&b.x509v3_context(None, None))
        .map_err(ossl)?;
    b.append_extension(ski).map_err(ossl)?;
    b.sign(&key, MessageDigest::sha256()).map_err(ossl)?;
    Ok((b.build(), key))
}

/// Detached PKCS#7 SignedData over `content` (SHA-256, no signed
/// attributes), without the ContentInfo wrapper, as efitools'
/// sign-efi-sig-list produces it.
pub fn sign_detached(cert: &X509, key: &PKey<Private>, content: &[u8]) -> Result<Vec<u8>, String> {
    let extra = Stack::new().map_err(ossl)?;
    let flags =
        Pkcs7Flags::DETACHED | Pkcs7Flags::BINARY | Pkcs7Flags::NOATTR | Pkcs7Flags::NOSMIMECAP;
    let p7 = Pkcs7::sign(cert, key, &extra, content, flags).map_err(ossl)?;
    let der = p7.to_der().map_err(ossl)?;
    strip_content_info(&der).ok_or_else(|| "unexpected PKCS#7 encoding from OpenSSL".to_string())
}

/// DER header: (tag, header length, content length).
fn der_header(b: &[u8]) -> Option<(u8, usize, usize)> {
    let tag = *b.first()?;
    let first = *b.get(1)?;
    if first < 0x80 {
        return Some((tag, 2, usize::from(first)));
    }
    let n = usize::from(first & 0x7f);
    if n == 0 || n > 4 {
        return None;
    }
    let len = b
        .get(2..2 + n)?
        .iter()
        .fold(0usize, |acc, &x| (acc << 8) | usize::from(x));
    Some((tag, 2 + n, len))
}

/// ContentInfo { contentType, [0] EXPLICIT content } → content.
fn strip_content_info(der: &[u8]) -> Option<Vec<u8>> {
    let (tag, hl, _) = der_header(der)?;
    if tag != 0x30 {
        return None;
    }
    let body = der.get(hl..)?;
    let (oid_tag, oid_hl, oid_len) = der_header(body)?;
    if oid_tag != 0x06 {
        return None;
    }
    let rest = body.get(oid_hl + oid_len..)?;
    let (ctx_tag, ctx_hl, ctx_len) = der_header(rest)?;
    if ctx_tag != 0xa0 {
        return None;
    }
    rest.get(ctx_hl..ctx_hl + ctx_len).map(<[u8]>::to_vec)
}
