//! Authorisation of time-based authenticated writes (edk2 AuthVariableLib):
//! the Secure Boot key hierarchy, setup/custom mode, and private variables
//! bound to their signer.

use super::Service;
use crate::auth::{signed_content, signer_digest, Auth2, AuthClass};
use crate::guid::{Guid, GLOBAL_VARIABLE};
use crate::name::VarName;
use crate::refusal::Refusal;
use crate::siglist;
use crate::variable::{VarKey, Variable};

/// Variables the guest may never write: the one list is
/// [`crate::well_known::READ_ONLY`] (AuthVariableLib, VarCheckUefiLib;
/// QEMU lets the guest overwrite them, docs/reference/limitations.md §2.3).
pub(super) fn is_read_only(guid: &Guid, name: &VarName) -> bool {
    crate::well_known::is_read_only(guid, name)
}

impl Service {
    fn global(&self, name: &str) -> Option<&Variable> {
        self.store
            .get(&VarKey::new(GLOBAL_VARIABLE, VarName::from(name)))
    }

    /// Checks the signature of an authenticated write. Returns the signer
    /// digest to store with a private variable.
    pub(super) fn authenticate(
        &self,
        guid: &Guid,
        name: &VarName,
        attributes: u32,
        class: AuthClass,
        auth: &Auth2<'_>,
        old: Option<&Variable>,
    ) -> Result<Option<Vec<u8>>, Refusal> {
        let content = signed_content(guid, name, attributes, auth);
        if class == AuthClass::Private {
            return self.authenticate_private(auth, &content, old).map(Some);
        }
        if !auth.payload.is_empty() {
            siglist::check_format(auth.payload, class == AuthClass::Pk)
                .map_err(|problem| Refusal::NotSignatureList { problem })?;
        }
        let setup = !self.pk_present();
        if self.custom_mode_active() || (setup && class != AuthClass::Pk) {
            return Ok(None);
        }
        if auth.pkcs7.is_empty() {
            return Err(Refusal::Unsigned);
        }
        match class {
            AuthClass::Pk if setup => {
                // Enrolling PK: it must be signed by a certificate of the
                // new PK itself.
                let anchors = siglist::x509_certificates(auth.payload);
                self.verify_any(auth.pkcs7, &content, &anchors)
            }
            AuthClass::Pk | AuthClass::Kek => self.verify_by_pk(auth.pkcs7, &content),
            AuthClass::ImageDb => {
                let kek = self
                    .global("KEK")
                    .map(|v| v.data.clone())
                    .unwrap_or_default();
                let anchors = siglist::x509_certificates(&kek);
                self.verify_any(auth.pkcs7, &content, &anchors)
                    .or_else(|_| self.verify_by_pk(auth.pkcs7, &content))
            }
            AuthClass::Private => Err(Refusal::SignerNotTrusted { signer: None }),
        }
        .map(|()| None)
    }

    /// A private authenticated variable: edk2 verifies with the signing
    /// certificate itself as the only anchor and binds the variable to it
    /// (its Pkcs7GetSigners "top-level" certificate is the signer).
    fn authenticate_private(
        &self,
        auth: &Auth2<'_>,
        content: &[u8],
        old: Option<&Variable>,
    ) -> Result<Vec<u8>, Refusal> {
        let backend = self.crypto.as_ref();
        let chain = backend.signer_chain(auth.pkcs7).map_err(rejected)?;
        backend
            .verify(auth.pkcs7, content, &[chain.signer.as_slice()])
            .map_err(rejected)?;
        let digest = signer_digest(backend, &chain);
        if let Some(old) = old {
            // A variable without a recorded signer (VendorKeysNv, or a
            // store written by a tool that drops digests) cannot be
            // updated: there is nobody to compare with.
            if old.digest.as_deref() != Some(digest.as_slice()) {
                return Err(Refusal::SignerNotTrusted {
                    signer: Some(digest),
                });
            }
        }
        Ok(digest)
    }

    /// edk2's PK rule: the signing certificate must be the PK certificate
    /// itself (no chaining), and the signature must verify with it.
    fn verify_by_pk(&self, p7: &[u8], content: &[u8]) -> Result<(), Refusal> {
        let backend = self.crypto.as_ref();
        let untrusted = Refusal::SignerNotTrusted { signer: None };
        let pk = self.global("PK").ok_or(untrusted.clone())?;
        let certs = siglist::x509_certificates(&pk.data);
        let [pk_cert] = certs.as_slice() else {
            return Err(untrusted);
        };
        // One decode and check (the signer must be the PK certificate);
        // on a refusal, say who signed instead.
        match backend.verify_signed_by(p7, content, pk_cert) {
            Ok(()) => Ok(()),
            Err(e) => match backend.signer_chain(p7) {
                Ok(chain) if chain.signer.as_slice() != *pk_cert => {
                    Err(Refusal::SignerNotTrusted {
                        signer: Some(backend.sha256(&chain.signer).to_vec()),
                    })
                }
                _ => Err(rejected(e)),
            },
        }
    }

    /// Accepts a signature that verifies against any one of `anchors`, each
    /// tried on its own as edk2's loop over the database calls
    /// `Pkcs7Verify` per certificate (AuthVariableLib
    /// `VerifyTimeBasedPayload`), in one backend call that decodes the
    /// SignedData once.
    fn verify_any(&self, p7: &[u8], content: &[u8], anchors: &[&[u8]]) -> Result<(), Refusal> {
        self.crypto.verify(p7, content, anchors).map_err(rejected)
    }
}

/// The verifier's reason, kept for the host.
fn rejected(reason: crate::crypto::VerifyError) -> Refusal {
    Refusal::SignatureRejected { reason }
}
