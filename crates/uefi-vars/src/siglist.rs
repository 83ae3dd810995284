//! EFI_SIGNATURE_LIST databases: parsing and the APPEND merge.
//!
//! The merge follows edk2 (AuthVariableLib `FilterSignatureList`): entries of
//! the new data that already exist in the old data (same type, same size,
//! same bytes including the owner GUID) are dropped, and what remains is
//! appended byte for byte, so every signature type survives. QEMU instead
//! regenerates the database keeping only X.509 and SHA-256 entries
//! (docs/reference/limitations.md §3).

use crate::codec::{Malformed, Reader};
use crate::guid::Guid;

/// Size of EFI_SIGNATURE_LIST before its signature header.
pub const LIST_HEADER_SIZE: usize = 28;
/// Size of EFI_SIGNATURE_DATA.SignatureOwner.
pub const SIGNATURE_OWNER_SIZE: usize = 16;

/// One EFI_SIGNATURE_LIST.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureList<'a> {
    /// SignatureType.
    pub sig_type: Guid,
    /// The signature header (SignatureHeaderSize bytes).
    pub header: &'a [u8],
    /// SignatureSize: owner GUID plus signature data.
    pub signature_size: usize,
    /// Each entry: owner GUID (16 bytes) + signature data.
    pub entries: Vec<&'a [u8]>,
}

/// Parses a whole database; `None` if any list is malformed.
pub fn parse(data: &[u8]) -> Option<Vec<SignatureList<'_>>> {
    let mut r = Reader::new(data);
    let mut out = Vec::new();
    while !r.is_empty() {
        out.push(parse_list(&mut r).ok()?);
    }
    Some(out)
}

/// One EFI_SIGNATURE_LIST at the reader's position.
fn parse_list<'a>(r: &mut Reader<'a>) -> Result<SignatureList<'a>, Malformed> {
    let start = r.pos();
    let sig_type = r.guid("SignatureType")?;
    let list_size = r.u32_size("SignatureListSize")?;
    let header_size = r.u32_size("SignatureHeaderSize")?;
    let signature_size = r.u32_size("SignatureSize")?;
    let left = r.remaining().saturating_add(LIST_HEADER_SIZE);
    if list_size < LIST_HEADER_SIZE || list_size > left || signature_size <= SIGNATURE_OWNER_SIZE {
        return Err(Malformed {
            offset: start,
            what: "signature list sizes".into(),
        });
    }
    let body_len = list_size.saturating_sub(LIST_HEADER_SIZE);
    let mut body = Reader::new(r.take(body_len, "signature list")?);
    let header = body.take(header_size, "SignatureHeader")?;
    let sigs = body.rest();
    if sigs.len().checked_rem(signature_size) != Some(0) {
        return Err(Malformed {
            offset: start,
            what: "signatures do not fill the list".into(),
        });
    }
    Ok(SignatureList {
        sig_type,
        header,
        signature_size,
        entries: sigs.chunks_exact(signature_size).collect(),
    })
}

/// Serialises lists back to bytes (lists without entries are dropped).
pub fn encode(lists: &[SignatureList<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for l in lists.iter().filter(|l| !l.entries.is_empty()) {
        let size = l
            .signature_size
            .saturating_mul(l.entries.len())
            .saturating_add(LIST_HEADER_SIZE)
            .saturating_add(l.header.len());
        out.extend_from_slice(&l.sig_type.0);
        out.extend_from_slice(&u32::try_from(size).unwrap_or(u32::MAX).to_le_bytes());
        out.extend_from_slice(
            &u32::try_from(l.header.len())
                .unwrap_or(u32::MAX)
                .to_le_bytes(),
        );
        out.extend_from_slice(
            &u32::try_from(l.signature_size)
                .unwrap_or(u32::MAX)
                .to_le_bytes(),
        );
        out.extend_from_slice(l.header);
        for e in &l.entries {
            out.extend_from_slice(e);
        }
    }
    out
}

/// Signature types edk2 accepts in the Secure Boot databases, with the size
/// of their signature data (after the owner GUID); `None` = variable (X.509).
/// The table is [`crate::well_known::SIGNATURE_TYPES`].
pub fn known_type_data_size(ty: &Guid) -> Option<Option<usize>> {
    crate::well_known::signature_type(ty).map(|t| t.data_size)
}

/// Why a database payload was refused (edk2 `CheckSignatureListFormat`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FormatProblem {
    /// The lists do not parse (sizes out of bounds or inconsistent).
    Malformed,
    /// A signature type edk2 does not know.
    UnknownType(Guid),
    /// A known type with the wrong signature or header size.
    WrongSize(Guid),
    /// PK must hold exactly one X.509 certificate.
    PkNotOneCertificate,
}

/// Validates a Secure Boot database payload as edk2 does: every list of a
/// known type with a zero header and the type's signature size; PK exactly
/// one X.509 certificate.
pub fn check_format(data: &[u8], is_pk: bool) -> Result<(), FormatProblem> {
    let lists = parse(data).ok_or(FormatProblem::Malformed)?;
    let mut count = 0usize;
    for l in &lists {
        let size =
            known_type_data_size(&l.sig_type).ok_or(FormatProblem::UnknownType(l.sig_type))?;
        if !l.header.is_empty() {
            return Err(FormatProblem::WrongSize(l.sig_type));
        }
        if let Some(s) = size {
            if Some(l.signature_size) != SIGNATURE_OWNER_SIZE.checked_add(s) {
                return Err(FormatProblem::WrongSize(l.sig_type));
            }
        }
        if l.entries.is_empty() {
            return Err(FormatProblem::Malformed);
        }
        count = count.saturating_add(l.entries.len());
        if is_pk && l.sig_type != crate::guid::CERT_X509 {
            return Err(FormatProblem::PkNotOneCertificate);
        }
    }
    if is_pk && count != 1 {
        return Err(FormatProblem::PkNotOneCertificate);
    }
    Ok(())
}

/// The DER certificates of every X.509 entry (owner GUID stripped).
pub fn x509_certificates(data: &[u8]) -> Vec<&[u8]> {
    parse(data)
        .unwrap_or_default()
        .into_iter()
        .filter(|l| l.sig_type == crate::guid::CERT_X509)
        .flat_map(|l| l.entries.into_iter())
        .filter_map(|e| e.get(SIGNATURE_OWNER_SIZE..))
        .collect()
}

/// One EFI_SIGNATURE_LIST holding one entry of `sig_type` (an X.509
/// certificate or a hash) owned by `owner`.
pub fn single_entry_list(sig_type: &Guid, owner: &Guid, data: &[u8]) -> Vec<u8> {
    let entry: Vec<u8> = owner.0.iter().chain(data).copied().collect();
    encode(&[SignatureList {
        sig_type: *sig_type,
        header: &[],
        signature_size: entry.len(),
        entries: vec![&entry],
    }])
}

/// APPEND of `new` onto `old`: `None` if either is not a valid database.
pub fn append(old: &[u8], new: &[u8]) -> Option<Vec<u8>> {
    let old_lists = parse(old)?;
    let mut new_lists = parse(new)?;
    for l in &mut new_lists {
        l.entries.retain(|e| {
            !old_lists.iter().any(|o| {
                o.sig_type == l.sig_type
                    && o.signature_size == l.signature_size
                    && o.entries.contains(e)
            })
        });
    }
    let mut out = old.to_vec();
    out.extend(encode(&new_lists));
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guid::{CERT_SHA256, CERT_SHA384, CERT_X509};

    fn list(ty: Guid, sig_size: usize, entries: &[Vec<u8>]) -> Vec<u8> {
        let mut l = Vec::new();
        l.extend_from_slice(&ty.0);
        l.extend_from_slice(&((28 + sig_size * entries.len()) as u32).to_le_bytes());
        l.extend_from_slice(&0u32.to_le_bytes());
        l.extend_from_slice(&(sig_size as u32).to_le_bytes());
        for e in entries {
            assert_eq!(e.len(), sig_size);
            l.extend_from_slice(e);
        }
        l
    }

    fn entry(owner: u8, fill: u8, len: usize) -> Vec<u8> {
        let mut e = vec![owner; 16];
        e.extend(std::iter::repeat_n(fill, len));
        e
    }

    #[test]
    fn append_dedupes_and_keeps_every_type() {
        let old = [
            list(CERT_SHA256, 48, &[entry(1, 0xaa, 32)]),
            list(CERT_X509, 20, &[entry(1, 0xcc, 4)]),
        ]
        .concat();
        let new = [
            list(CERT_SHA256, 48, &[entry(1, 0xaa, 32), entry(1, 0xbb, 32)]),
            list(CERT_SHA384, 64, &[entry(2, 0xdd, 48)]),
            list(CERT_X509, 20, &[entry(1, 0xcc, 4)]),
        ]
        .concat();
        let merged = append(&old, &new).unwrap();
        let expect = [
            old.clone(),
            list(CERT_SHA256, 48, &[entry(1, 0xbb, 32)]),
            list(CERT_SHA384, 64, &[entry(2, 0xdd, 48)]),
        ]
        .concat();
        assert_eq!(merged, expect);
        // appending the same data again changes nothing
        assert_eq!(append(&merged, &new).unwrap(), merged);
    }

    #[test]
    fn format_check_follows_edk2() {
        let sha = list(CERT_SHA256, 48, &[entry(1, 0xaa, 32), entry(1, 0xbb, 32)]);
        assert_eq!(check_format(&sha, false), Ok(()));
        let x509 = list(CERT_X509, 20, &[entry(1, 0xcc, 4)]);
        assert_eq!(
            check_format(&[sha.clone(), x509.clone()].concat(), false),
            Ok(())
        );
        assert_eq!(check_format(&x509, true), Ok(()));
        // PK: exactly one certificate, and only X.509
        let two = [x509.clone(), list(CERT_X509, 21, &[entry(2, 0xdd, 5)])].concat();
        assert_eq!(
            check_format(&two, true),
            Err(FormatProblem::PkNotOneCertificate)
        );
        assert_eq!(
            check_format(&sha, true),
            Err(FormatProblem::PkNotOneCertificate)
        );
        // wrong size for a fixed-size type
        let bad = list(CERT_SHA256, 40, &[entry(1, 0xaa, 24)]);
        assert_eq!(
            check_format(&bad, false),
            Err(FormatProblem::WrongSize(CERT_SHA256))
        );
        let unknown = list(crate::guid::GLOBAL_VARIABLE, 20, &[entry(1, 0, 4)]);
        assert_eq!(
            check_format(&unknown, false),
            Err(FormatProblem::UnknownType(crate::guid::GLOBAL_VARIABLE))
        );
        assert_eq!(
            check_format(&x509[..x509.len() - 1], false),
            Err(FormatProblem::Malformed)
        );
        assert_eq!(
            x509_certificates(&[sha, x509].concat()),
            vec![&[0xcc; 4][..]]
        );
    }

    #[test]
    fn malformed_lists_rejected() {
        let good = list(CERT_SHA256, 48, &[entry(1, 0xaa, 32)]);
        assert!(parse(&good).is_some());
        assert!(parse(&good[..good.len() - 1]).is_none());
        let mut small_sig = good.clone();
        small_sig[24..28].copy_from_slice(&16u32.to_le_bytes());
        assert!(parse(&small_sig).is_none());
        let mut short_list = good.clone();
        short_list[16..20].copy_from_slice(&27u32.to_le_bytes());
        assert!(parse(&short_list).is_none());
        assert!(append(&good, &[1, 2, 3]).is_none());
    }
}
