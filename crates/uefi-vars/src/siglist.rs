//! EFI_SIGNATURE_LIST databases: parsing and the APPEND merge.
//!
//! The merge follows edk2 (AuthVariableLib `FilterSignatureList`): entries of
//! the new data that already exist in the old data (same type, same size,
//! same bytes including the owner GUID) are dropped, and what remains is
//! appended byte for byte, so every signature type survives. QEMU instead
//! regenerates the database keeping only X.509 and SHA-256 entries
//! (limitations.md §3).

use crate::guid::Guid;

pub const LIST_HEADER_SIZE: usize = 28;
pub const SIGNATURE_OWNER_SIZE: usize = 16;

/// One EFI_SIGNATURE_LIST.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureList<'a> {
    pub sig_type: Guid,
    pub header: &'a [u8],
    pub signature_size: usize,
    /// Each entry: owner GUID (16 bytes) + signature data.
    pub entries: Vec<&'a [u8]>,
}

/// Parses a whole database; `None` if any list is malformed.
pub fn parse(mut data: &[u8]) -> Option<Vec<SignatureList<'_>>> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let hdr = data.get(..LIST_HEADER_SIZE)?;
        let sig_type = Guid(hdr.get(0..16)?.try_into().ok()?);
        let u32_at = |o: usize| -> Option<usize> {
            usize::try_from(u32::from_le_bytes(hdr.get(o..o + 4)?.try_into().ok()?)).ok()
        };
        let list_size = u32_at(16)?;
        let header_size = u32_at(20)?;
        let signature_size = u32_at(24)?;
        if list_size < LIST_HEADER_SIZE
            || list_size > data.len()
            || signature_size <= SIGNATURE_OWNER_SIZE
        {
            return None;
        }
        let body = data.get(LIST_HEADER_SIZE..list_size)?;
        let header = body.get(..header_size)?;
        let sigs = body.get(header_size..)?;
        if sigs.len() % signature_size != 0 {
            return None;
        }
        out.push(SignatureList {
            sig_type,
            header,
            signature_size,
            entries: sigs.chunks_exact(signature_size).collect(),
        });
        data = data.get(list_size..)?;
    }
    Some(out)
}

/// Serialises lists back to bytes (lists without entries are dropped).
pub fn encode(lists: &[SignatureList<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for l in lists.iter().filter(|l| !l.entries.is_empty()) {
        let size = LIST_HEADER_SIZE + l.header.len() + l.signature_size * l.entries.len();
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
