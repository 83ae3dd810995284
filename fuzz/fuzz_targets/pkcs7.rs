//! The PKCS#7 wrapper (`crypto::openssl::OpensslBackend`): `verify` and
//! `signer_chain` on arbitrary bytes.
//!
//! Input: one selector byte, then the PKCS#7 blob. The selector picks the
//! detached content (the real signed content of one of the embedded signed
//! updates, so an unmutated blob verifies) and the trust anchors (none, the
//! real signer certificates, one of them, or junk). Oracles: a signature
//! that verifies has a signer chain whose signer is one of the bag's
//! certificates, and the same signature must not verify over different
//! content.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use uefi_vars::auth::{parse_auth2, signed_content};
use uefi_vars::crypto::openssl::OpensslBackend;
use uefi_vars::crypto::Pkcs7Backend;
use uefi_vars::name::VarName;
use uefi_vars_fuzz::auth::SIGNED;

struct Known {
    /// The signed content of each embedded update.
    contents: Vec<Vec<u8>>,
    /// The signer certificates (DER) of the embedded updates.
    signers: Vec<Vec<u8>>,
}

fn known() -> &'static Known {
    static K: OnceLock<Known> = OnceLock::new();
    K.get_or_init(|| {
        let mut contents = Vec::new();
        let mut signers: Vec<Vec<u8>> = Vec::new();
        for s in SIGNED {
            let auth = parse_auth2(s.bytes).expect("embedded update parses");
            contents.push(signed_content(
                &s.guid,
                &VarName::from(s.name),
                s.attributes(),
                &auth,
            ));
            if let Ok(chain) = OpensslBackend::new().signer_chain(auth.pkcs7) {
                if !signers.contains(&chain.signer) {
                    signers.push(chain.signer);
                }
            }
        }
        Known { contents, signers }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, p7)) = data.split_first() else {
        return;
    };
    let k = known();
    let content = &k.contents[usize::from(sel & 0x1f) % k.contents.len()];
    let junk: &[u8] = p7.get(..p7.len().min(64)).unwrap_or_default();
    let anchors: Vec<&[u8]> = match sel >> 5 {
        0 => Vec::new(),
        1..=3 => k.signers.iter().map(Vec::as_slice).collect(),
        4 => vec![k.signers[usize::from(sel) % k.signers.len()].as_slice()],
        5 => vec![junk],
        6 => vec![p7],
        _ => vec![junk, k.signers[0].as_slice()],
    };
    let backend = OpensslBackend::new();
    let chain = backend.signer_chain(p7);
    if backend.verify(p7, content, &anchors).is_ok() {
        let chain = chain.expect("verified, but no signer chain");
        assert!(!chain.signer.is_empty() && !chain.top_level.is_empty());
        let mut other = content.clone();
        other.push(0);
        assert!(
            backend.verify(p7, &other, &anchors).is_err(),
            "the signature verifies over different content"
        );
    }
});
