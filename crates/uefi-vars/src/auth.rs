//! Time-based authenticated writes (EFI_VARIABLE_AUTHENTICATION_2): strict
//! descriptor parsing, which writes need a signature, and the verifier trait
//! that PKCS#7 backends implement.
//!
//! Parsing is edk2-strict: a malformed descriptor, a wrong certificate type
//! or non-zero EFI_TIME pad/nanosecond/timezone/daylight fields are all
//! EFI_SECURITY_VIOLATION (QEMU answers UNSUPPORTED for the type checks and
//! does not check EFI_TIME at all; docs/compat.md).

use crate::codec::{Auth2Header, AUTH2_FIXED_SIZE, WIN_CERT_UEFI_GUID_HEADER};
use crate::crypto::{Pkcs7Backend, SignerChain};
use crate::guid::{Guid, CERT_TYPE_PKCS7};
use crate::name::VarName;
pub use crate::refusal::DescriptorFault;
use crate::time::EfiTime;

/// WIN_CERTIFICATE.wRevision edk2 accepts.
pub const WIN_CERT_REVISION: u16 = 0x0200;
/// WIN_CERT_TYPE_EFI_GUID: the certificate type of EFI_VARIABLE_AUTHENTICATION_2.
pub const WIN_CERT_TYPE_EFI_GUID: u16 = 0x0EF1;

/// A parsed EFI_VARIABLE_AUTHENTICATION_2 and the payload after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Auth2<'a> {
    /// The descriptor's TimeStamp (the write's monotonic time).
    pub timestamp: EfiTime,
    /// DER PKCS#7 SignedData (CertData); may be empty.
    pub pkcs7: &'a [u8],
    /// The new variable value; empty means authenticated delete.
    pub payload: &'a [u8],
}

/// Parses the descriptor at the start of SetVariable data. Every fault is
/// EFI_SECURITY_VIOLATION for the guest; the [`DescriptorFault`] says which
/// check it failed (edk2 VariableServiceSetVariable checks the framing,
/// VerifyTimeBasedPayload the rest).
pub fn parse_auth2(data: &[u8]) -> Result<Auth2<'_>, DescriptorFault> {
    let hdr = Auth2Header::parse(data).ok_or(DescriptorFault::Framing)?;
    if hdr.length < WIN_CERT_UEFI_GUID_HEADER {
        return Err(DescriptorFault::Framing);
    }
    let payload_off = usize::try_from(hdr.length)
        .ok()
        .and_then(|l| l.checked_add(EfiTime::SIZE))
        .ok_or(DescriptorFault::Framing)?;
    if data.len() < payload_off {
        return Err(DescriptorFault::Framing);
    }
    if hdr.revision != WIN_CERT_REVISION
        || hdr.cert_type != WIN_CERT_TYPE_EFI_GUID
        || hdr.cert_type_guid != CERT_TYPE_PKCS7
    {
        return Err(DescriptorFault::CertificateType);
    }
    if !hdr.timestamp.is_strict() {
        return Err(DescriptorFault::TimeFields);
    }
    Ok(Auth2 {
        timestamp: hdr.timestamp,
        pkcs7: data
            .get(AUTH2_FIXED_SIZE..payload_off)
            .ok_or(DescriptorFault::Framing)?,
        payload: data.get(payload_off..).ok_or(DescriptorFault::Framing)?,
    })
}

/// The Secure Boot key databases that get the key-hierarchy treatment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecureBootDb {
    /// The platform key (PK).
    Pk,
    /// The key exchange key database (KEK).
    Kek,
    /// The authorised signature database (db).
    Db,
    /// The forbidden signature database (dbx).
    Dbx,
}

impl SecureBootDb {
    /// The database this variable is, if any (matched by namespace and name).
    pub fn classify(guid: &Guid, name: &VarName) -> Option<Self> {
        use crate::well_known::{DB, DBX, KEK, PK};
        [
            (PK, SecureBootDb::Pk),
            (KEK, SecureBootDb::Kek),
            (DB, SecureBootDb::Db),
            (DBX, SecureBootDb::Dbx),
        ]
        .into_iter()
        .find(|(v, _)| v.is(guid, name))
        .map(|(_, db)| db)
    }
}

/// Serialises an EFI_VARIABLE_AUTHENTICATION_2 descriptor with its
/// PKCS#7 SignedData, followed by the payload (the data of a signed
/// SetVariable, i.e. the content of a `.auth` file).
pub fn build_auth2(timestamp: &EfiTime, pkcs7: &[u8], payload: &[u8]) -> Vec<u8> {
    let length = u32::try_from(pkcs7.len())
        .ok()
        .and_then(|l| l.checked_add(WIN_CERT_UEFI_GUID_HEADER))
        .unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(
        AUTH2_FIXED_SIZE
            .saturating_add(pkcs7.len())
            .saturating_add(payload.len()),
    );
    out.extend_from_slice(&timestamp.0);
    out.extend_from_slice(&length.to_le_bytes());
    out.extend_from_slice(&WIN_CERT_REVISION.to_le_bytes());
    out.extend_from_slice(&WIN_CERT_TYPE_EFI_GUID.to_le_bytes());
    out.extend_from_slice(&CERT_TYPE_PKCS7.0);
    out.extend_from_slice(pkcs7);
    out.extend_from_slice(payload);
    out
}

/// How a time-based authenticated variable is authorised (edk2
/// AuthVariableLib): the key hierarchy for the Secure Boot databases, the
/// signer's own identity for everything else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthClass {
    /// The platform key.
    Pk,
    /// The key exchange key database.
    Kek,
    /// db, dbx, dbt, dbr in the image security database namespace.
    ImageDb,
    /// A private authenticated variable.
    Private,
}

impl AuthClass {
    /// How writes to this variable are authorised.
    pub fn classify(guid: &Guid, name: &VarName) -> Self {
        match SecureBootDb::classify(guid, name) {
            Some(SecureBootDb::Pk) => AuthClass::Pk,
            Some(SecureBootDb::Kek) => AuthClass::Kek,
            Some(SecureBootDb::Db | SecureBootDb::Dbx) => AuthClass::ImageDb,
            None if crate::well_known::is_signature_database(guid, name) => AuthClass::ImageDb,
            None => AuthClass::Private,
        }
    }
}

/// The detached content an authenticated write's signature covers: name
/// without NUL, vendor GUID, attributes as passed (APPEND included),
/// timestamp, payload.
pub fn signed_content(guid: &Guid, name: &VarName, attributes: u32, auth: &Auth2<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        name.units()
            .len()
            .saturating_mul(2)
            .saturating_add(36)
            .saturating_add(auth.payload.len()),
    );
    for u in name.units() {
        out.extend_from_slice(&u.to_le_bytes());
    }
    out.extend_from_slice(&guid.0);
    out.extend_from_slice(&attributes.to_le_bytes());
    out.extend_from_slice(&auth.timestamp.0);
    out.extend_from_slice(auth.payload);
    out
}

/// Identity a private authenticated variable is bound to: SHA-256 over the
/// signer's CommonName and the SHA-256 of the signing certificate. The
/// formula is QEMU's (CN ‖ SHA-256 of a certificate), so a store written by
/// QEMU for the usual one-certificate signature stays updatable; the inputs
/// are edk2's: the certificate that really signed (matched by the
/// SignerInfo), which edk2's Pkcs7GetSigners also returns as the
/// "top-level" certificate, never simply the first and last certificates of
/// the bag (docs/reference/limitations.md §2.6).
pub(crate) fn signer_digest(backend: &dyn Pkcs7Backend, chain: &SignerChain) -> Vec<u8> {
    let mut buf = chain.signer_common_name.clone();
    buf.extend_from_slice(&backend.sha256(&chain.signer));
    backend.sha256(&buf).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guid::{GLOBAL_VARIABLE, IMAGE_SECURITY_DATABASE};

    fn descriptor(
        len: u32,
        rev: u16,
        ty: u16,
        guid: Guid,
        time: [u8; 16],
        cert: &[u8],
        payload: &[u8],
    ) -> Vec<u8> {
        let mut d = time.to_vec();
        d.extend_from_slice(&len.to_le_bytes());
        d.extend_from_slice(&rev.to_le_bytes());
        d.extend_from_slice(&ty.to_le_bytes());
        d.extend_from_slice(&guid.0);
        d.extend_from_slice(cert);
        d.extend_from_slice(payload);
        d
    }

    fn time() -> [u8; 16] {
        let mut t = [0u8; 16];
        t[0..2].copy_from_slice(&2025u16.to_le_bytes());
        t[2] = 1;
        t[3] = 1;
        t
    }

    #[test]
    fn build_then_parse() {
        let mut t = EfiTime::default();
        t.0[0..2].copy_from_slice(&2024u16.to_le_bytes());
        let d = build_auth2(&t, &[7; 5], &[1, 2]);
        assert_eq!(d.len(), 40 + 5 + 2);
        let a = parse_auth2(&d).unwrap();
        assert_eq!(
            (a.timestamp, a.pkcs7, a.payload),
            (t, &[7u8; 5][..], &[1u8, 2][..])
        );
    }

    #[test]
    fn parses_valid_descriptor() {
        let d = descriptor(
            27,
            0x200,
            0xef1,
            CERT_TYPE_PKCS7,
            time(),
            &[1, 2, 3],
            &[9, 9],
        );
        let a = parse_auth2(&d).unwrap();
        assert_eq!(a.pkcs7, &[1, 2, 3]);
        assert_eq!(a.payload, &[9, 9]);
        assert_eq!(a.timestamp.year(), 2025);
        let empty = descriptor(24, 0x200, 0xef1, CERT_TYPE_PKCS7, time(), &[], &[]);
        let a = parse_auth2(&empty).unwrap();
        assert!(a.pkcs7.is_empty() && a.payload.is_empty());
    }

    #[test]
    fn rejects_bad_descriptors() {
        let fr = Err(DescriptorFault::Framing);
        let ct = Err(DescriptorFault::CertificateType);
        let tf = Err(DescriptorFault::TimeFields);
        let ok = descriptor(24, 0x200, 0xef1, CERT_TYPE_PKCS7, time(), &[], &[]);
        assert_eq!(parse_auth2(&ok[..39]), fr);
        assert_eq!(
            parse_auth2(&descriptor(
                23,
                0x200,
                0xef1,
                CERT_TYPE_PKCS7,
                time(),
                &[],
                &[0; 8]
            )),
            fr
        );
        assert_eq!(
            parse_auth2(&descriptor(
                30,
                0x200,
                0xef1,
                CERT_TYPE_PKCS7,
                time(),
                &[],
                &[0; 5]
            )),
            fr
        );
        assert_eq!(
            parse_auth2(&descriptor(
                u32::MAX,
                0x200,
                0xef1,
                CERT_TYPE_PKCS7,
                time(),
                &[],
                &[]
            )),
            fr
        );
        assert_eq!(
            parse_auth2(&descriptor(
                24,
                0x100,
                0xef1,
                CERT_TYPE_PKCS7,
                time(),
                &[],
                &[]
            )),
            ct
        );
        assert_eq!(
            parse_auth2(&descriptor(
                24,
                0x200,
                0x2,
                CERT_TYPE_PKCS7,
                time(),
                &[],
                &[]
            )),
            ct
        );
        assert_eq!(
            parse_auth2(&descriptor(
                24,
                0x200,
                0xef1,
                GLOBAL_VARIABLE,
                time(),
                &[],
                &[]
            )),
            ct
        );
        for field in [7usize, 8, 12, 13, 14, 15] {
            let mut t = time();
            t[field] = 1;
            assert_eq!(
                parse_auth2(&descriptor(24, 0x200, 0xef1, CERT_TYPE_PKCS7, t, &[], &[])),
                tf,
                "byte {field}"
            );
        }
    }

    #[test]
    fn classify_secure_boot_databases() {
        assert_eq!(
            SecureBootDb::classify(&GLOBAL_VARIABLE, &"PK".into()),
            Some(SecureBootDb::Pk)
        );
        assert_eq!(
            SecureBootDb::classify(&GLOBAL_VARIABLE, &"KEK".into()),
            Some(SecureBootDb::Kek)
        );
        assert_eq!(
            SecureBootDb::classify(&IMAGE_SECURITY_DATABASE, &"dbx".into()),
            Some(SecureBootDb::Dbx)
        );
        assert_eq!(SecureBootDb::classify(&GLOBAL_VARIABLE, &"db".into()), None);
        assert_eq!(
            SecureBootDb::classify(&IMAGE_SECURITY_DATABASE, &"dbt".into()),
            None
        );
    }
}
