//! PKCS#7 verification behind a small trait, so the service does not depend
//! on one crypto library. The default backend ([`openssl`], feature
//! `openssl`) uses the same library edk2 uses.
//!
//! Semantics follow edk2's `Pkcs7Verify`: the SignedData may come with or
//! without its ContentInfo wrapper, the content is detached, partial chains
//! are accepted (a trust anchor need not be self-signed), and neither
//! certificate validity times nor key purposes are checked.

#[cfg(feature = "openssl")]
pub mod openssl;

/// Why a signature was not accepted. The guest sees
/// EFI_SECURITY_VIOLATION for all of them; the text is for host logs.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The SignedData does not parse.
    #[error("malformed PKCS#7 SignedData: {0}")]
    Malformed(String),
    /// A digest algorithm other than SHA-256/384/512.
    #[error("digest algorithm not allowed (only SHA-256/384/512): {0}")]
    DigestAlgorithm(String),
    /// The SignedData names no signer.
    #[error("no signer certificate in the SignedData")]
    NoSigner,
    /// No trusted certificate vouches for the signer.
    #[error("signature does not verify against the trusted certificates: {0}")]
    Untrusted(String),
    /// The library was built without a PKCS#7 backend.
    #[error("no cryptographic backend is available")]
    Unavailable,
}

/// The certificate that signed (matched through the SignerInfo's issuer and
/// serial, not its position in the bag) and the top of its chain inside the
/// bag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignerChain {
    /// DER of the signing certificate.
    pub signer: Vec<u8>,
    /// DER of the top-level certificate: the last one reached by following
    /// issuers from the signer through the bag (the signer itself when no
    /// issuer is in the bag).
    pub top_level: Vec<u8>,
    /// The signer's subject CommonName bytes (empty when it has none).
    pub signer_common_name: Vec<u8>,
}

/// A PKCS#7 backend.
pub trait Pkcs7Backend: Send + Sync {
    /// Verifies the detached `content` against `p7` (DER SignedData, with or
    /// without ContentInfo), accepting a signer that chains (partial chains
    /// allowed, certificates from the bag may be intermediates) to any one
    /// of `anchors` (DER certificates). The SignedData's digest algorithms
    /// must all be SHA-256, SHA-384 or SHA-512.
    fn verify(&self, p7: &[u8], content: &[u8], anchors: &[&[u8]]) -> Result<(), VerifyError>;

    /// edk2's PK rule in one call: the certificate matched to the first
    /// SignerInfo must be `cert` itself (byte for byte), and the signature
    /// must verify with `cert` as the only anchor. A backend may decode the
    /// SignedData once for both.
    fn verify_signed_by(&self, p7: &[u8], content: &[u8], cert: &[u8]) -> Result<(), VerifyError> {
        if self.signer_chain(p7)?.signer != cert {
            return Err(VerifyError::Untrusted(
                "the signer is not the required certificate".into(),
            ));
        }
        self.verify(p7, content, &[cert])
    }

    /// Finds the signer and its top-level certificate.
    fn signer_chain(&self, p7: &[u8]) -> Result<SignerChain, VerifyError>;

    /// SHA-256 of `data`.
    fn sha256(&self, data: &[u8]) -> [u8; 32];
}

/// No crypto: every verification fails, so a write that needs a signature
/// is refused, never accepted unverified.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoCrypto;

impl Pkcs7Backend for NoCrypto {
    fn verify(&self, _p7: &[u8], _content: &[u8], _anchors: &[&[u8]]) -> Result<(), VerifyError> {
        Err(VerifyError::Unavailable)
    }
    fn signer_chain(&self, _p7: &[u8]) -> Result<SignerChain, VerifyError> {
        Err(VerifyError::Unavailable)
    }
    fn sha256(&self, _data: &[u8]) -> [u8; 32] {
        [0; 32]
    }
}

/// The backend a new service uses: OpenSSL when built with it.
pub fn default_backend() -> Box<dyn Pkcs7Backend> {
    #[cfg(feature = "openssl")]
    {
        Box::new(openssl::OpensslBackend::new())
    }
    #[cfg(not(feature = "openssl"))]
    {
        Box::new(NoCrypto)
    }
}
