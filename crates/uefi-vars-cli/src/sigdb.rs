//! Building a Secure Boot signature database (PK, KEK, db, dbx, MokList)
//! out of certificates and SHA-256 hashes, laid out as virt-fw-vars lays
//! it out (virt-firmware 26.10 `efi/siglist.py` `EfiSigDB`): one
//! EFI_SIGNATURE_LIST per X.509 certificate, SHA-256 hashes gathered in one
//! list, duplicates skipped.

use uefi_vars::guid::{self, Guid};
use uefi_vars::siglist::{self, SignatureList, SIGNATURE_OWNER_SIZE};
use uefi_vars::time::EfiTime;
use uefi_vars::variable::Variable;

use crate::builtin_certs::Cert;

/// SHA-256 of the empty string: the placeholder dbx entry virt-fw-vars
/// writes (efi/siglist.py `add_dummy`), which matches no image.
const SHA256_EMPTY: [u8; 32] = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// EFI_CERT_EXTERNAL_MANAGEMENT_GUID (edk2 MdePkg/Include/Guid/
/// ImageAuthentication.h): a PK entry saying the platform is managed from
/// outside the firmware (virt-firmware efi/guids.py `EfiCertExternalMgmt`).
const CERT_EXTERNAL_MANAGEMENT: Guid = Guid::from_fields(
    0x452e_8ced,
    0xdfff,
    0x4b8c,
    [0xae, 0x01, 0x51, 0x18, 0x86, 0x2e, 0x68, 0x2c],
);

enum NewList {
    X509 { owner: Guid, der: Vec<u8> },
    Sha256(Vec<(Guid, [u8; 32])>),
    ExternalManagement(Guid),
}

/// A database: the bytes already stored (kept as they are) and the lists
/// added after them.
#[derive(Default)]
pub struct SigDb {
    existing: Vec<u8>,
    lists: Vec<NewList>,
    newest: Option<EfiTime>,
}

impl SigDb {
    /// Starts from a stored variable's data (extending it) or empty.
    pub fn from_existing(var: Option<&Variable>) -> Self {
        SigDb {
            existing: var.map(|v| v.data.clone()).unwrap_or_default(),
            ..SigDb::default()
        }
    }

    fn has_cert(&self, der: &[u8]) -> bool {
        siglist::x509_certificates(&self.existing).contains(&der)
            || self
                .lists
                .iter()
                .any(|l| matches!(l, NewList::X509 { der: d, .. } if d == der))
    }

    fn has_sha256(&self, hash: &[u8; 32]) -> bool {
        let stored = siglist::parse(&self.existing)
            .unwrap_or_default()
            .into_iter()
            .filter(|l| l.sig_type == guid::CERT_SHA256)
            .flat_map(|l| l.entries)
            .any(|e| e.get(SIGNATURE_OWNER_SIZE..) == Some(hash.as_slice()));
        stored
            || self.lists.iter().any(|l| match l {
                NewList::Sha256(v) => v.iter().any(|(_, h)| h == hash),
                NewList::X509 { .. } | NewList::ExternalManagement(_) => false,
            })
    }

    /// Adds a certificate (skipped if the database already holds it, under
    /// any owner).
    pub fn add_cert(&mut self, owner: Guid, cert: &Cert) {
        if self.has_cert(&cert.der) {
            return;
        }
        self.lists.push(NewList::X509 {
            owner,
            der: cert.der.clone(),
        });
        let later = self
            .newest
            .is_none_or(|t| cert.not_before.chrono_cmp(&t).is_gt());
        if later {
            self.newest = Some(cert.not_before);
        }
    }

    /// Adds a SHA-256 hash to the first hash list added here, or a new one.
    pub fn add_sha256(&mut self, owner: Guid, hash: [u8; 32]) {
        if self.has_sha256(&hash) {
            return;
        }
        for l in &mut self.lists {
            if let NewList::Sha256(v) = l {
                v.push((owner, hash));
                return;
            }
        }
        self.lists.push(NewList::Sha256(vec![(owner, hash)]));
    }

    /// The placeholder dbx entry (a hash list holding the empty string's
    /// SHA-256), as the first list.
    pub fn add_placeholder(&mut self, owner: Guid) {
        self.lists
            .insert(0, NewList::Sha256(vec![(owner, SHA256_EMPTY)]));
    }

    /// The external-management entry (one zero byte, as virt-fw-vars
    /// writes it: efi/siglist.py `add_external_mgmt`).
    pub fn add_external_management(&mut self, owner: Guid) {
        self.lists.push(NewList::ExternalManagement(owner));
    }

    pub fn changed(&self) -> bool {
        !self.lists.is_empty()
    }

    /// The newest notBefore of the certificates added.
    pub fn newest_cert(&self) -> Option<EfiTime> {
        self.newest
    }

    pub fn bytes(&self) -> Vec<u8> {
        let mut out = self.existing.clone();
        for l in &self.lists {
            match l {
                NewList::X509 { owner, der } => {
                    out.extend(siglist::single_entry_list(&guid::CERT_X509, owner, der));
                }
                NewList::Sha256(v) => out.extend(sha256_list(v)),
                NewList::ExternalManagement(owner) => out.extend(siglist::single_entry_list(
                    &CERT_EXTERNAL_MANAGEMENT,
                    owner,
                    &[0],
                )),
            }
        }
        out
    }
}

fn sha256_list(hashes: &[(Guid, [u8; 32])]) -> Vec<u8> {
    let entries: Vec<Vec<u8>> = hashes
        .iter()
        .map(|(o, h)| o.0.iter().chain(h).copied().collect())
        .collect();
    siglist::encode(&[SignatureList {
        sig_type: guid::CERT_SHA256,
        header: &[],
        signature_size: SIGNATURE_OWNER_SIZE + 32,
        entries: entries.iter().map(Vec::as_slice).collect(),
    }])
}

/// Number of signatures in a database (0 if it does not parse).
pub fn count_entries(data: &[u8]) -> usize {
    siglist::parse(data)
        .unwrap_or_default()
        .iter()
        .map(|l| l.entries.len())
        .sum()
}
