//! OpenSSL PKCS#7 backend, with the semantics of edk2's CryptoPkg
//! (`Pkcs7Verify`, `Pkcs7GetSigners`) and of the digest check in
//! SecurityPkg's AuthVariableLib.
//!
//! Input handling, in order:
//!
//! 1. **Envelope.** The blob may be a bare SignedData (what efitools'
//!    `sign-efi-sig-list` and virt-firmware write) or a ContentInfo
//!    (`1.2.840.113549.1.7.2`, `[0] EXPLICIT`) around one. A bare one gets a
//!    ContentInfo put around the *whole* blob, as edk2's `WrapPkcs7Data`
//!    does (so bytes after a bare SignedData make it malformed, while bytes
//!    after a ContentInfo are ignored by the DER decoder, as in edk2). Unlike
//!    edk2 the wrapper's lengths are encoded properly for any size, and a
//!    ContentInfo is recognised whatever its length encoding.
//! 2. **Decoding** with `d2i_PKCS7`; anything that does not decode, or is
//!    not SignedData, is [`VerifyError::Malformed`].
//! 3. **Digest algorithms.** A bounded DER walk over OpenSSL's re-encoding of
//!    the structure collects `SignedData.digestAlgorithms` and each
//!    `SignerInfo.digestAlgorithm`; every one must be SHA-256, SHA-384 or
//!    SHA-512 ([`VerifyError::DigestAlgorithm`]). An empty
//!    `digestAlgorithms` set is refused the same way.
//! 4. **Signers.** No SignerInfo, or a SignerInfo whose certificate (matched
//!    by issuer and serial number) is not in the bag, is
//!    [`VerifyError::NoSigner`].
//! 5. **Verification** (`PKCS7_verify`, flag `PKCS7_BINARY`, detached
//!    content supplied by the caller) against each anchor in turn, each in a
//!    store of its own with `X509_V_FLAG_PARTIAL_CHAIN`,
//!    `X509_V_FLAG_NO_CHECK_TIME` and purpose ANY, exactly as edk2 calls
//!    `Pkcs7Verify` once per certificate of a signature database. The
//!    certificates of the bag are untrusted intermediates. Every SignerInfo
//!    must verify (OpenSSL checks them all). Anchors that do not parse as
//!    certificates are skipped. Failure is [`VerifyError::Untrusted`].
//!    With several anchors and one SignerInfo, one `PKCS7_verify` against a
//!    store trusting all of them comes first: it succeeds exactly when one
//!    of the per-anchor stores would (see `verify_combined`), so an
//!    accepted write costs one verification; only when it fails are the
//!    anchors tried one by one, which gives edk2's answer in every case.
//!
//! Content embedded in the SignedData is ignored and the signature is checked
//! over the caller's content, which is what edk2 (OpenSSL without
//! `PKCS7_NO_DUAL_CONTENT`) does; the UEFI specification asks for detached
//! signatures but edk2 does not enforce it.

use std::cmp::Ordering;
use std::sync::{Mutex, PoisonError};

use openssl::error::ErrorStack;
use openssl::nid::Nid;
use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
use openssl::stack::Stack;
use openssl::x509::store::{X509Store, X509StoreBuilder};
use openssl::x509::verify::X509VerifyFlags;
use openssl::x509::{X509PurposeId, X509Ref, X509};

use super::{Pkcs7Backend, SignerChain, VerifyError};

/// PKCS#7 verification with OpenSSL, as edk2's CryptoPkg does it.
///
/// Every call parses the SignedData afresh and never panics, whatever the
/// bytes. Trust anchors are kept once parsed: the trust stores built for
/// the last `ANCHOR_CACHE` (32) distinct anchor certificates are reused, keyed
/// by their DER bytes, so an authenticated write does not parse PK, KEK or
/// db certificates again until those variables change (a changed
/// certificate is a new key; the cache holds no other state).
#[derive(Default)]
pub struct OpensslBackend {
    anchors: Mutex<Vec<(Vec<u8>, X509Store)>>,
    /// The store trusting all anchors of the last multi-anchor call, keyed
    /// by those anchors in order.
    combined: Mutex<Option<(Vec<Vec<u8>>, X509Store)>>,
}

impl std::fmt::Debug for OpensslBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kept = self.anchors.lock().map_or(0, |c| c.len());
        let combined = self
            .combined
            .lock()
            .map_or(0, |c| c.as_ref().map_or(0, |(key, _)| key.len()));
        f.debug_struct("OpensslBackend")
            .field("anchors_kept", &kept)
            .field("combined_anchors", &combined)
            .finish()
    }
}

/// Anchor certificates whose trust stores are kept (a PK, a few KEKs and
/// the db certificates of a real machine fit).
pub(crate) const ANCHOR_CACHE: usize = 32;

impl OpensslBackend {
    /// A backend with an empty trust-anchor cache.
    pub const fn new() -> Self {
        OpensslBackend {
            anchors: Mutex::new(Vec::new()),
            combined: Mutex::new(None),
        }
    }

    /// The checks and verification of [`Pkcs7Backend::verify`] on an
    /// already decoded SignedData.
    fn verify_parsed(
        &self,
        parsed: &Parsed,
        content: &[u8],
        anchors: &[&[u8]],
    ) -> Result<(), VerifyError> {
        if parsed.signer_digests.is_empty() {
            return Err(VerifyError::NoSigner);
        }
        parsed.check_digests()?;
        let no_certs = empty_stack()?;
        parsed
            .p7
            .signers(&no_certs, Pkcs7Flags::BINARY)
            .map_err(|_| VerifyError::NoSigner)?;
        if content.len() > MAX_INPUT {
            return Err(VerifyError::Untrusted("content too large".into()));
        }

        if anchors.len() > 1
            && parsed.signer_digests.len() == 1
            && self.verify_combined(&parsed.p7, content, anchors)
        {
            return Ok(());
        }
        let mut last = String::from("no trust anchors");
        for (index, anchor) in anchors.iter().enumerate() {
            let verified = self.with_anchor(anchor, |store| {
                parsed
                    .p7
                    .verify(&no_certs, store, Some(content), None, Pkcs7Flags::BINARY)
            });
            match verified {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(e)) => last = format!("anchor {index}: {}", error_text(&e)),
                Err(reason) => last = format!("anchor {index}: {reason}"),
            }
        }
        Err(VerifyError::Untrusted(last))
    }

    /// Verifies against one store trusting every anchor at once: `true`
    /// only if that succeeds. With a single SignerInfo this accepts exactly
    /// when one of the per-anchor stores would (OpenSSL looks in the trust
    /// store first at every link, so the chain it builds ends at the first
    /// trusted certificate it meets, through the same bag certificates a
    /// store holding only that anchor would use); a failure says nothing
    /// and the caller tries each anchor on its own.
    fn verify_combined(&self, p7: &Pkcs7, content: &[u8], anchors: &[&[u8]]) -> bool {
        let mut cache = self.combined.lock().unwrap_or_else(PoisonError::into_inner);
        let hit = cache.as_ref().is_some_and(|(key, _)| {
            key.len() == anchors.len() && key.iter().zip(anchors).all(|(k, a)| k == a)
        });
        if !hit {
            let Ok(store) = combined_store(anchors) else {
                return false;
            };
            *cache = Some((anchors.iter().map(|a| a.to_vec()).collect(), store));
        }
        let Some((_, store)) = cache.as_ref() else {
            return false;
        };
        let ok = empty_stack().is_ok_and(|no_certs| {
            p7.verify(&no_certs, store, Some(content), None, Pkcs7Flags::BINARY)
                .is_ok()
        });
        clear_openssl_errors();
        ok
    }

    /// Runs `f` with the trust store for `anchor`, building and keeping it
    /// on first use.
    fn with_anchor<R>(&self, anchor: &[u8], f: impl FnOnce(&X509Store) -> R) -> Result<R, String> {
        let mut cache = self.anchors.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(pos) = cache.iter().position(|(der, _)| der.as_slice() == anchor) {
            if let Some((_, store)) = cache.get(pos) {
                return Ok(f(store));
            }
        }
        let store = anchor_store(anchor)?;
        let out = f(&store);
        if cache.len() >= ANCHOR_CACHE {
            cache.remove(0);
        }
        cache.push((anchor.to_vec(), store));
        Ok(out)
    }
}

/// Content octets of OID 1.2.840.113549.1.7.2 (id-signedData).
const OID_SIGNED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];
/// Content octets of the digest OIDs edk2 accepts (2.16.840.1.101.3.4.2.1/2/3).
const OID_SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
const OID_SHA384: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02];
const OID_SHA512: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03];

/// OpenSSL's APIs take `int` lengths; edk2 refuses anything longer too.
const MAX_INPUT: usize = i32::MAX as usize;

/// Upper bound on issuer links followed by [`Pkcs7Backend::signer_chain`]
/// (OpenSSL's own default verification depth is 100).
const MAX_CHAIN_DEPTH: usize = 32;

const TAG_INTEGER: u8 = 0x02;
const TAG_OID: u8 = 0x06;
const TAG_SEQUENCE: u8 = 0x30;
const TAG_SET: u8 = 0x31;
const TAG_CONTEXT_0: u8 = 0xa0;

impl Pkcs7Backend for OpensslBackend {
    /// See the module documentation for the order of the checks. When no
    /// anchor accepts the signature, the error carries OpenSSL's reason for
    /// the last anchor tried.
    fn verify(&self, p7: &[u8], content: &[u8], anchors: &[&[u8]]) -> Result<(), VerifyError> {
        clear_openssl_errors();
        let parsed = Parsed::new(p7)?;
        self.verify_parsed(&parsed, content, anchors)
    }

    /// Decodes the SignedData once for both the signer check and the
    /// verification.
    fn verify_signed_by(&self, p7: &[u8], content: &[u8], cert: &[u8]) -> Result<(), VerifyError> {
        clear_openssl_errors();
        let parsed = Parsed::new(p7)?;
        let no_certs = empty_stack()?;
        let signers = parsed
            .p7
            .signers(&no_certs, Pkcs7Flags::BINARY)
            .map_err(|_| VerifyError::NoSigner)?;
        let signer = signers.get(0).ok_or(VerifyError::NoSigner)?;
        if cert_der(signer)? != cert {
            return Err(VerifyError::Untrusted(
                "the signer is not the required certificate".into(),
            ));
        }
        self.verify_parsed(&parsed, content, &[cert])
    }

    /// The signer is the bag certificate that OpenSSL's `PKCS7_get0_signers`
    /// matches to the **first** SignerInfo (issuer and serial number); further
    /// SignerInfos are ignored here (but `verify` checks them all). From it,
    /// issuers are followed through the bag: a candidate issuer has the
    /// child's issuer name as its subject, and one whose key verifies the
    /// child's signature is preferred; candidates whose key definitely does
    /// not verify it are never taken. The walk stops at a self-signed
    /// certificate, when no candidate is left (each certificate is used
    /// once, so cycles end), or after 32 links. Nothing is verified against
    /// a trust store and digest algorithms are not checked here.
    fn signer_chain(&self, p7: &[u8]) -> Result<SignerChain, VerifyError> {
        clear_openssl_errors();
        let parsed = Parsed::new(p7)?;
        let no_certs = empty_stack()?;
        let signers = parsed
            .p7
            .signers(&no_certs, Pkcs7Flags::BINARY)
            .map_err(|_| VerifyError::NoSigner)?;
        let signer = signers.get(0).ok_or(VerifyError::NoSigner)?;

        let bag: Vec<&X509Ref> = parsed
            .p7
            .signed()
            .and_then(|signed| signed.certificates())
            .map(|certs| certs.iter().collect())
            .unwrap_or_default();
        let top = top_level(signer, &bag)?;

        Ok(SignerChain {
            signer: cert_der(signer)?,
            top_level: cert_der(top)?,
            signer_common_name: common_name(signer),
        })
    }

    fn sha256(&self, data: &[u8]) -> [u8; 32] {
        openssl::sha::sha256(data)
    }
}

/// A decoded SignedData and the digest algorithm OIDs found in it.
struct Parsed {
    p7: Pkcs7,
    /// Content octets of each `SignedData.digestAlgorithms` OID.
    set_digests: Vec<Vec<u8>>,
    /// Content octets of each `SignerInfo.digestAlgorithm` OID.
    signer_digests: Vec<Vec<u8>>,
}

impl Parsed {
    fn new(input: &[u8]) -> Result<Self, VerifyError> {
        if input.len() > MAX_INPUT {
            return Err(malformed("PKCS#7 blob too large"));
        }
        let wrapped;
        let der = match envelope(input)? {
            Envelope::ContentInfo => input,
            Envelope::Bare => {
                wrapped = wrap_signed_data(input);
                wrapped.as_slice()
            }
        };
        let p7 = Pkcs7::from_der(der)
            .map_err(|e| malformed(&format!("DER decoding failed: {}", error_text(&e))))?;
        if p7.type_().map(|t| t.nid()) != Some(Nid::PKCS7_SIGNED) {
            return Err(malformed("ContentInfo is not SignedData"));
        }
        // The walk needs definite lengths. Input that OpenSSL decoded and
        // that has them holds the same OIDs as OpenSSL's re-encoding (DER
        // only reorders SET OF elements, and the checks ignore order);
        // anything else (BER indefinite lengths) is walked in OpenSSL's
        // own re-encoding, which is definite-length DER.
        let (set_digests, signer_digests) = match digest_oids(der) {
            Ok(found) => found,
            Err(_) => {
                let canonical = p7
                    .to_der()
                    .map_err(|e| malformed(&format!("re-encoding failed: {}", error_text(&e))))?;
                digest_oids(&canonical)?
            }
        };
        Ok(Parsed {
            p7,
            set_digests,
            signer_digests,
        })
    }

    fn check_digests(&self) -> Result<(), VerifyError> {
        if self.set_digests.is_empty() {
            return Err(VerifyError::DigestAlgorithm(
                "SignedData.digestAlgorithms is empty".into(),
            ));
        }
        let all = self.set_digests.iter().map(|o| ("SignedData", o));
        let all = all.chain(self.signer_digests.iter().map(|o| ("SignerInfo", o)));
        for (place, oid) in all {
            if !matches!(oid.as_slice(), OID_SHA256 | OID_SHA384 | OID_SHA512) {
                return Err(VerifyError::DigestAlgorithm(format!(
                    "{place} uses {}",
                    oid_name(oid)
                )));
            }
        }
        Ok(())
    }
}

enum Envelope {
    ContentInfo,
    Bare,
}

/// Tells a ContentInfo (SEQUENCE starting with an OID) from a bare
/// SignedData (SEQUENCE starting with its INTEGER version).
fn envelope(input: &[u8]) -> Result<Envelope, VerifyError> {
    let (tag, header, _) = tlv_header(input).ok_or_else(|| malformed("truncated outer header"))?;
    if tag != TAG_SEQUENCE {
        return Err(malformed("outer element is not a SEQUENCE"));
    }
    let inner = input.get(header..).unwrap_or_default();
    match inner.first() {
        Some(&TAG_OID) => Ok(Envelope::ContentInfo),
        Some(&TAG_INTEGER) => Ok(Envelope::Bare),
        _ => Err(malformed("neither ContentInfo nor SignedData")),
    }
}

/// ContentInfo { id-signedData, [0] EXPLICIT <the whole input> }.
fn wrap_signed_data(signed_data: &[u8]) -> Vec<u8> {
    let mut explicit = vec![TAG_CONTEXT_0];
    push_der_length(&mut explicit, signed_data.len());
    let inner_len = OID_SIGNED_DATA
        .len()
        .saturating_add(2)
        .saturating_add(explicit.len())
        .saturating_add(signed_data.len());
    let mut out = Vec::with_capacity(inner_len.saturating_add(6));
    out.push(TAG_SEQUENCE);
    push_der_length(&mut out, inner_len);
    out.push(TAG_OID);
    out.push(OID_SIGNED_DATA.len() as u8);
    out.extend_from_slice(OID_SIGNED_DATA);
    out.extend_from_slice(&explicit);
    out.extend_from_slice(signed_data);
    out
}

fn push_der_length(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
        return;
    }
    let bytes = len.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count();
    let significant = bytes.get(skip..).unwrap_or_default();
    out.push(0x80 | significant.len() as u8);
    out.extend_from_slice(significant);
}

/// Tag, header length and (when definite) content length of the element at
/// the start of `buf`. Only single-byte tags and lengths of up to four bytes
/// are accepted; `None` for anything else or for a truncated header.
fn tlv_header(buf: &[u8]) -> Option<(u8, usize, Option<usize>)> {
    let tag = *buf.first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let first = *buf.get(1)?;
    if first < 0x80 {
        return Some((tag, 2, Some(usize::from(first))));
    }
    if first == 0x80 {
        return Some((tag, 2, None));
    }
    let count = usize::from(first & 0x7f);
    if count > 4 {
        return None;
    }
    let bytes = buf.get(2..2 + count)?;
    let len = bytes
        .iter()
        .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
    Some((tag, 2 + count, Some(len)))
}

/// A cursor over definite-length DER elements.
struct Der<'a>(&'a [u8]);

impl<'a> Der<'a> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn peek_tag(&self) -> Option<u8> {
        self.0.first().copied()
    }

    /// The next element's tag and content; advances past it.
    fn next(&mut self) -> Result<(u8, &'a [u8]), VerifyError> {
        let bad = || malformed("bad DER inside SignedData");
        let (tag, header, len) = tlv_header(self.0).ok_or_else(bad)?;
        let len = len.ok_or_else(bad)?;
        let end = header.checked_add(len).ok_or_else(bad)?;
        let content = self.0.get(header..end).ok_or_else(bad)?;
        self.0 = self.0.get(end..).ok_or_else(bad)?;
        Ok((tag, content))
    }

    /// The next element's content, which must carry `tag`.
    fn element(&mut self, tag: u8, what: &str) -> Result<&'a [u8], VerifyError> {
        match self.next()? {
            (t, content) if t == tag => Ok(content),
            _ => Err(malformed(&format!("expected {what}"))),
        }
    }
}

/// The OID of an AlgorithmIdentifier's content.
fn algorithm_oid(alg_id: &[u8]) -> Result<Vec<u8>, VerifyError> {
    Ok(Der(alg_id).element(TAG_OID, "algorithm OID")?.to_vec())
}

/// Walks ContentInfo → SignedData and returns the digestAlgorithms OIDs and
/// the digestAlgorithm OID of every SignerInfo.
#[allow(clippy::type_complexity)]
fn digest_oids(content_info: &[u8]) -> Result<(Vec<Vec<u8>>, Vec<Vec<u8>>), VerifyError> {
    let mut top = Der(content_info);
    let mut ci = Der(top.element(TAG_SEQUENCE, "ContentInfo")?);
    ci.element(TAG_OID, "ContentInfo.contentType")?;
    let mut explicit = Der(ci.element(TAG_CONTEXT_0, "ContentInfo.content")?);
    let mut sd = Der(explicit.element(TAG_SEQUENCE, "SignedData")?);

    sd.element(TAG_INTEGER, "SignedData.version")?;
    let mut set = Der(sd.element(TAG_SET, "SignedData.digestAlgorithms")?);
    let mut set_digests = Vec::new();
    while !set.is_empty() {
        set_digests.push(algorithm_oid(
            set.element(TAG_SEQUENCE, "AlgorithmIdentifier")?,
        )?);
    }
    sd.element(TAG_SEQUENCE, "SignedData.contentInfo")?;
    // certificates [0] and crls [1], both optional.
    while sd.peek_tag().is_some_and(|t| t & 0xc0 == 0x80) {
        sd.next()?;
    }
    let mut infos = Der(sd.element(TAG_SET, "SignedData.signerInfos")?);
    let mut signer_digests = Vec::new();
    while !infos.is_empty() {
        let mut si = Der(infos.element(TAG_SEQUENCE, "SignerInfo")?);
        si.element(TAG_INTEGER, "SignerInfo.version")?;
        si.next()?; // issuerAndSerialNumber
        signer_digests.push(algorithm_oid(
            si.element(TAG_SEQUENCE, "SignerInfo.digestAlgorithm")?,
        )?);
    }
    Ok((set_digests, signer_digests))
}

/// A readable name for a digest OID in error messages.
fn oid_name(oid: &[u8]) -> String {
    let known = match oid {
        [0x2b, 0x0e, 0x03, 0x02, 0x1a] => Some("SHA-1"),
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x05] => Some("MD5"),
        [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x04] => Some("SHA-224"),
        _ => None,
    };
    let dotted = dotted_oid(oid);
    match known {
        Some(name) => format!("{name} ({dotted})"),
        None => dotted,
    }
}

fn dotted_oid(oid: &[u8]) -> String {
    let mut arcs: Vec<u64> = Vec::new();
    let mut value: u64 = 0;
    for &b in oid {
        value = match value.checked_mul(128) {
            Some(v) => v | u64::from(b & 0x7f),
            None => return hex(oid),
        };
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (value / 40).min(2);
                arcs.push(first);
                arcs.push(value.saturating_sub(first.saturating_mul(40)));
            } else {
                arcs.push(value);
            }
            value = 0;
        }
    }
    if arcs.is_empty() || oid.last().is_some_and(|b| b & 0x80 != 0) {
        return hex(oid);
    }
    arcs.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

fn hex(bytes: &[u8]) -> String {
    format!("OID bytes {}", hex::encode(bytes))
}

/// A store trusting only `anchor`, set up as edk2's `Pkcs7Verify` does.
fn anchor_store(anchor: &[u8]) -> Result<X509Store, String> {
    if anchor.len() > MAX_INPUT {
        return Err("certificate too large".into());
    }
    let cert =
        X509::from_der(anchor).map_err(|e| format!("not a DER certificate: {}", error_text(&e)))?;
    let build = || -> Result<X509Store, ErrorStack> {
        let mut builder = X509StoreBuilder::new()?;
        builder.add_cert(cert)?;
        builder.set_flags(X509VerifyFlags::PARTIAL_CHAIN | X509VerifyFlags::NO_CHECK_TIME)?;
        builder.set_purpose(X509PurposeId::ANY)?;
        Ok(builder.build())
    };
    build().map_err(|e| format!("cannot build trust store: {}", error_text(&e)))
}

/// A store trusting every anchor that parses, set up as [`anchor_store`].
fn combined_store(anchors: &[&[u8]]) -> Result<X509Store, ErrorStack> {
    let mut builder = X509StoreBuilder::new()?;
    for anchor in anchors.iter().filter(|a| a.len() <= MAX_INPUT) {
        if let Ok(cert) = X509::from_der(anchor) {
            // A duplicate anchor is refused by OpenSSL; one copy is enough.
            let _ = builder.add_cert(cert);
        }
    }
    clear_openssl_errors();
    builder.set_flags(X509VerifyFlags::PARTIAL_CHAIN | X509VerifyFlags::NO_CHECK_TIME)?;
    builder.set_purpose(X509PurposeId::ANY)?;
    Ok(builder.build())
}

/// Follows issuer links from `signer` through `bag` (see `signer_chain`).
fn top_level<'a>(signer: &'a X509Ref, bag: &[&'a X509Ref]) -> Result<&'a X509Ref, VerifyError> {
    let ders = bag
        .iter()
        .map(|c| cert_der(c))
        .collect::<Result<Vec<_>, _>>()?;
    let mut used = vec![false; bag.len()];
    // A certificate is used once, duplicates included.
    let mark = |der: &[u8], used: &mut [bool]| {
        for (slot, d) in used.iter_mut().zip(&ders) {
            if d.as_slice() == der {
                *slot = true;
            }
        }
    };
    mark(&cert_der(signer)?, &mut used);

    let mut current = signer;
    for _ in 0..MAX_CHAIN_DEPTH {
        if names_equal(current.subject_name(), current.issuer_name())
            && signed_by(current, current) != Some(false)
        {
            break; // self-signed
        }
        let mut verified = None;
        let mut plausible = None;
        for (i, cand) in bag.iter().enumerate() {
            if used.get(i).copied().unwrap_or(true)
                || !names_equal(cand.subject_name(), current.issuer_name())
            {
                continue;
            }
            match signed_by(current, cand) {
                Some(true) => {
                    verified = Some(i);
                    break;
                }
                None if plausible.is_none() => plausible = Some(i),
                _ => {}
            }
        }
        let Some((next, der)) = verified
            .or(plausible)
            .and_then(|i| Some((*bag.get(i)?, ders.get(i)?)))
        else {
            break;
        };
        mark(der, &mut used);
        current = next;
    }
    Ok(current)
}

/// Whether `issuer`'s key verifies `child`'s signature; `None` when that
/// cannot be decided (unsupported key or algorithm).
fn signed_by(child: &X509Ref, issuer: &X509Ref) -> Option<bool> {
    let key = issuer.public_key().ok()?;
    let result = child.verify(&key).ok();
    clear_openssl_errors();
    result
}

fn names_equal(a: &openssl::x509::X509NameRef, b: &openssl::x509::X509NameRef) -> bool {
    a.try_cmp(b).is_ok_and(|o| o == Ordering::Equal)
}

/// The raw bytes of the first CN attribute of the subject, as stored (for
/// the usual UTF8String/PrintableString that is the UTF-8 text); empty when
/// there is none.
fn common_name(cert: &X509Ref) -> Vec<u8> {
    cert.subject_name()
        .entries_by_nid(Nid::COMMONNAME)
        .next()
        .map(|entry| entry.data().as_slice().to_vec())
        .unwrap_or_default()
}

fn cert_der(cert: &X509Ref) -> Result<Vec<u8>, VerifyError> {
    cert.to_der().map_err(|e| {
        malformed(&format!(
            "certificate re-encoding failed: {}",
            error_text(&e)
        ))
    })
}

fn empty_stack() -> Result<Stack<X509>, VerifyError> {
    Stack::new().map_err(|e| VerifyError::Untrusted(format!("OpenSSL: {}", error_text(&e))))
}

fn malformed(reason: &str) -> VerifyError {
    VerifyError::Malformed(reason.to_owned())
}

/// OpenSSL's reasons, without the file/line noise.
fn error_text(e: &ErrorStack) -> String {
    let reasons: Vec<String> = e
        .errors()
        .iter()
        .map(|err| {
            err.reason()
                .map(str::to_owned)
                .unwrap_or_else(|| format!("error {:#x}", err.code()))
        })
        .collect();
    if reasons.is_empty() {
        "unknown OpenSSL error".into()
    } else {
        reasons.join("; ")
    }
}

/// Drops errors a previous call may have left on this thread's queue, so
/// they are not reported as ours.
fn clear_openssl_errors() {
    let _ = ErrorStack::get();
}
