//! OpenSSL PKCS#7 backend (to be implemented).

use super::{Pkcs7Backend, SignerChain, VerifyError};

/// PKCS#7 verification with OpenSSL, as edk2's CryptoPkg does it.
#[derive(Clone, Copy, Debug, Default)]
pub struct OpensslBackend;

impl Pkcs7Backend for OpensslBackend {
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
