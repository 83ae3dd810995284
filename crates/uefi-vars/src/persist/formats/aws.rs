//! The AWS EC2 "uefi-data" blob (`aws ec2 register-image --uefi-data`,
//! `get-instance-uefi-data`), version 0.
//!
//! Base64 text of: the magic `AMZNUEFI` (8 bytes), a CRC-32C (u32) of
//! everything after it, the version (u32, 0), then a zlib stream compressed
//! with a preset dictionary (`crates/uefi-vars/data/aws-uefi-data-v0.dict`,
//! see the README there for its provenance). The stream inflates to a u64
//! entry count and, per entry: the name (u64 length + UTF-8), the data
//! (u64 length + bytes), the vendor GUID (16 bytes as in EFI_GUID), the
//! attributes (u32) and, only when TIME_BASED_AUTHENTICATED_WRITE_ACCESS is
//! set, the timestamp (16 bytes of EFI_TIME) and the signer digest (u64
//! length + bytes; 32 zero bytes mean none). All integers are little-endian.
//! (Format facts from awslabs python-uefivars, `pyuefivars/aws.py`.)

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use crate::codec::{Malformed, Reader};
use crate::crc32c::crc32c;
use crate::guid::Guid;
use crate::name::VarName;
use crate::time::EfiTime;
use crate::variable::{Attributes, Variable};

/// The preset dictionary of format version 0.
pub(crate) const DICTIONARY: &[u8] = include_bytes!("../../../data/aws-uefi-data-v0.dict");
/// The magic at the start of a decoded blob.
pub const MAGIC: [u8; 8] = *b"AMZNUEFI";
/// Base64 of the first six magic bytes: every blob starts with it.
pub(crate) const TEXT_PREFIX: &str = "QU1aTlVF";
/// The only format version known.
pub const VERSION: u32 = 0;
/// Largest inflated store accepted (a real one is well under 1 MiB).
pub(crate) const MAX_INFLATED: usize = 64 << 20;
const EMPTY_DIGEST: [u8; 32] = [0; 32];

/// Why a blob cannot be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AwsError {
    /// The text is not base64.
    #[error("not base64 text: {0}")]
    Base64(String),
    /// The decoded blob does not start with [`MAGIC`].
    #[error("no AMZNUEFI magic at the start of the decoded blob")]
    BadMagic,
    /// Shorter than the 16-byte header (its length).
    #[error("blob of {0} bytes is shorter than its 16-byte header")]
    Truncated(usize),
    /// The CRC-32C does not match.
    #[error("CRC-32C mismatch: stored {stored:#010x}, computed {computed:#010x} (was the blob copied whole?)")]
    Checksum {
        /// The CRC-32C in the header.
        stored: u32,
        /// The CRC-32C of the content.
        computed: u32,
    },
    /// A format version other than [`VERSION`].
    #[error("format version {0} (only version 0 is known)")]
    Version(u32),
    /// The zlib stream does not inflate.
    #[error("compressed stream: {0}")]
    Inflate(String),
    /// The inflated store exceeds its limit.
    #[error("inflated store is larger than {MAX_INFLATED} bytes")]
    TooLarge,
    /// A field of the inflated store does not decode.
    #[error("inflated store, offset {}: {}", .0.offset, .0.what)]
    Malformed(Malformed),
    /// An entry is not a valid variable.
    #[error("entry {index}: {problem}")]
    Entry {
        /// Its index.
        index: u64,
        /// What is wrong.
        problem: String,
    },
    /// Bytes left after the last entry (how many).
    #[error("{} bytes after the last entry", .0)]
    Trailing(usize),
    /// A variable the format cannot hold.
    #[error("variable {name:?}: {problem}")]
    Unencodable {
        /// Its name.
        name: String,
        /// Why.
        problem: String,
    },
}

impl From<Malformed> for AwsError {
    fn from(m: Malformed) -> Self {
        AwsError::Malformed(m)
    }
}

/// True when `bytes` looks like a blob (text or already base64-decoded).
pub fn looks_like(bytes: &[u8]) -> bool {
    let text = bytes.trim_ascii_start();
    text.starts_with(TEXT_PREFIX.as_bytes()) || bytes.starts_with(&MAGIC)
}

/// Decodes a blob, given as base64 text or as the decoded bytes.
pub fn decode(bytes: &[u8]) -> Result<Vec<Variable>, AwsError> {
    let raw = if bytes.starts_with(&MAGIC) {
        bytes.to_vec()
    } else {
        base64_decode(bytes)?
    };
    let body = open(&raw)?;
    let store = inflate(body)?;
    parse_entries(&store)
}

fn open(raw: &[u8]) -> Result<&[u8], AwsError> {
    let mut r = Reader::new(raw);
    let magic = r
        .array::<8>("magic")
        .map_err(|_| AwsError::Truncated(raw.len()))?;
    if magic != MAGIC {
        return Err(AwsError::BadMagic);
    }
    let stored = r.u32("crc").map_err(|_| AwsError::Truncated(raw.len()))?;
    let rest = raw.get(12..).unwrap_or_default();
    let version = r
        .u32("version")
        .map_err(|_| AwsError::Truncated(raw.len()))?;
    let computed = crc32c(rest);
    if stored != computed {
        return Err(AwsError::Checksum { stored, computed });
    }
    if version != VERSION {
        return Err(AwsError::Version(version));
    }
    Ok(raw.get(16..).unwrap_or_default())
}

/// Inflates the zlib stream, supplying the dictionary when asked, bounded by
/// [`MAX_INFLATED`].
fn inflate(input: &[u8]) -> Result<Vec<u8>, AwsError> {
    let mut d = Decompress::new(true);
    let mut out: Vec<u8> = Vec::with_capacity(input.len().saturating_mul(4).min(MAX_INFLATED));
    loop {
        if out.len() == out.capacity() {
            if out.len() >= MAX_INFLATED {
                return Err(AwsError::TooLarge);
            }
            out.reserve(
                out.len()
                    .max(4096)
                    .min(MAX_INFLATED.saturating_sub(out.len())),
            );
        }
        let consumed = usize::try_from(d.total_in()).unwrap_or(usize::MAX);
        let rest = input.get(consumed..).unwrap_or_default();
        let before = (d.total_in(), d.total_out());
        match d.decompress_vec(rest, &mut out, FlushDecompress::Finish) {
            Ok(Status::StreamEnd) => break,
            Ok(_) => {
                if before == (d.total_in(), d.total_out()) && out.len() < out.capacity() {
                    return Err(AwsError::Inflate("the stream ends early".into()));
                }
            }
            Err(e) if e.needs_dictionary().is_some() => {
                d.set_dictionary(DICTIONARY)
                    .map_err(|e| AwsError::Inflate(e.to_string()))?;
            }
            Err(e) => return Err(AwsError::Inflate(e.to_string())),
        }
    }
    let used = usize::try_from(d.total_in()).unwrap_or(usize::MAX);
    if used < input.len() {
        return Err(AwsError::Inflate(format!(
            "{} bytes after the end of the stream",
            input.len().saturating_sub(used)
        )));
    }
    Ok(out)
}

fn parse_entries(store: &[u8]) -> Result<Vec<Variable>, AwsError> {
    let mut r = Reader::new(store);
    let count = r.u64("entry count")?;
    let mut vars = Vec::new();
    for index in 0..count {
        vars.push(parse_entry(&mut r, index)?);
    }
    if r.remaining() != 0 {
        return Err(AwsError::Trailing(r.remaining()));
    }
    Ok(vars)
}

fn sized<'a>(r: &mut Reader<'a>, what: &str) -> Result<&'a [u8], Malformed> {
    let at = r.pos();
    let len = r.u64(what)?;
    let len = usize::try_from(len).map_err(|_| Malformed {
        offset: at,
        what: format!("{what}: length {len} too large"),
    })?;
    r.take(len, what)
}

fn parse_entry(r: &mut Reader<'_>, index: u64) -> Result<Variable, AwsError> {
    let entry = |problem: String| AwsError::Entry { index, problem };
    let name = std::str::from_utf8(sized(r, "name")?)
        .map_err(|e| entry(format!("name is not UTF-8: {e}")))?;
    if name.is_empty() || name.contains('\0') {
        return Err(entry("empty name or NUL in the name".into()));
    }
    let units: Vec<u16> = name.encode_utf16().collect();
    if units.iter().any(|u| (0xd800..=0xdfff).contains(u)) {
        return Err(entry(format!("name {name:?} is not UCS-2")));
    }
    let data = sized(r, "data")?.to_vec();
    if data.is_empty() {
        return Err(entry(format!("{name:?} has no data")));
    }
    let guid = Guid::from_bytes(r.array::<16>("guid")?);
    let attributes = r.u32("attributes")?;
    let mut v = Variable::new(guid, VarName::from_units(units), attributes, data);
    if Attributes::from(attributes).contains(Attributes::APPEND_WRITE) {
        return Err(entry(format!(
            "{name:?} has APPEND_WRITE in its stored attributes"
        )));
    }
    if v.is_time_auth() {
        v.time = EfiTime(r.array::<16>("timestamp")?);
        let digest = sized(r, "digest")?;
        if digest != EMPTY_DIGEST && !digest.is_empty() {
            v.digest = Some(digest.to_vec());
        }
    }
    Ok(v)
}

/// Encodes `vars` (in order) as base64 text, as `uefivars -o aws` does.
pub fn encode(vars: &[&Variable]) -> Result<String, AwsError> {
    let mut store = Vec::new();
    store.extend_from_slice(&(vars.len() as u64).to_le_bytes());
    for v in vars {
        encode_entry(v, &mut store)?;
    }
    let z = deflate(&store)?;
    let mut raw = Vec::with_capacity(z.len().saturating_add(16));
    raw.extend_from_slice(&MAGIC);
    raw.extend_from_slice(&[0; 4]);
    raw.extend_from_slice(&VERSION.to_le_bytes());
    raw.extend_from_slice(&z);
    let crc = crc32c(raw.get(12..).unwrap_or_default());
    if let Some(field) = raw.get_mut(8..12) {
        field.copy_from_slice(&crc.to_le_bytes());
    }
    Ok(base64_encode(&raw))
}

fn encode_entry(v: &Variable, out: &mut Vec<u8>) -> Result<(), AwsError> {
    let unencodable = |problem: &str| AwsError::Unencodable {
        name: v.name.to_string(),
        problem: problem.to_string(),
    };
    let name = v
        .name
        .to_string_lossless()
        .filter(|n| !n.is_empty() && !n.contains('\0'))
        .ok_or_else(|| unencodable("the name is not valid text"))?;
    if v.data.is_empty() {
        return Err(unencodable("empty data"));
    }
    let time_auth = v.is_time_auth();
    if !time_auth && (v.time != EfiTime::default() || v.digest.is_some()) {
        return Err(unencodable(
            "a timestamp or digest without TIME_BASED_AUTHENTICATED_WRITE_ACCESS has no place in this format",
        ));
    }
    if v.digest.as_deref() == Some(&EMPTY_DIGEST[..]) {
        return Err(unencodable(
            "a digest of 32 zero bytes reads back as no digest",
        ));
    }
    let mut sized_put = |bytes: &[u8]| {
        out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        out.extend_from_slice(bytes);
    };
    sized_put(name.as_bytes());
    sized_put(&v.data);
    out.extend_from_slice(v.guid.as_bytes());
    out.extend_from_slice(&v.attributes.to_le_bytes());
    if time_auth {
        out.extend_from_slice(&v.time.0);
        let digest = v.digest.as_deref().unwrap_or(&EMPTY_DIGEST);
        out.extend_from_slice(&(digest.len() as u64).to_le_bytes());
        out.extend_from_slice(digest);
    }
    Ok(())
}

fn deflate(input: &[u8]) -> Result<Vec<u8>, AwsError> {
    let err = |e: String| AwsError::Unencodable {
        name: String::new(),
        problem: format!("compression failed: {e}"),
    };
    let mut c = Compress::new(Compression::best(), true);
    c.set_dictionary(DICTIONARY)
        .map_err(|e| err(e.to_string()))?;
    let mut out = Vec::with_capacity(input.len().saturating_add(1024));
    loop {
        let consumed = usize::try_from(c.total_in()).unwrap_or(usize::MAX);
        let rest = input.get(consumed..).unwrap_or_default();
        if out.len() == out.capacity() {
            out.reserve(out.len().max(1024));
        }
        match c.compress_vec(rest, &mut out, FlushCompress::Finish) {
            Ok(Status::StreamEnd) => return Ok(out),
            Ok(_) => {}
            Err(e) => return Err(err(e.to_string())),
        }
    }
}

// ---------------------------------------------------------------------------
// Base64 (RFC 4648, standard alphabet, padded)

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3).saturating_mul(4));
    for chunk in bytes.chunks(3) {
        let b = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = (b(0) << 16) | (b(1) << 8) | b(2);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                let idx = usize::try_from((n >> shift) & 63).unwrap_or(0);
                out.push(char::from(ALPHABET.get(idx).copied().unwrap_or(b'A')));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Strict decoding; ASCII whitespace anywhere is ignored.
fn base64_decode(text: &[u8]) -> Result<Vec<u8>, AwsError> {
    let clean: Vec<u8> = text
        .iter()
        .copied()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    if clean.len() % 4 != 0 {
        return Err(AwsError::Base64(format!(
            "{} characters is not a multiple of 4",
            clean.len()
        )));
    }
    let mut out = Vec::with_capacity(clean.len().saturating_mul(3) / 4);
    let quads = clean.len() / 4;
    for (qi, quad) in clean.chunks_exact(4).enumerate() {
        let last = qi.saturating_add(1) == quads;
        let mut n = 0u32;
        let mut pad = 0usize;
        for (i, &c) in quad.iter().enumerate() {
            let v = match c {
                b'=' if last && i >= 2 => {
                    pad = pad.saturating_add(1);
                    0
                }
                _ if pad > 0 => return Err(AwsError::Base64("data after padding".into())),
                _ => ALPHABET
                    .iter()
                    .position(|&a| a == c)
                    .and_then(|p| u32::try_from(p).ok())
                    .ok_or_else(|| {
                        AwsError::Base64(format!("character {:?} at quad {qi}", char::from(c)))
                    })?,
            };
            n = (n << 6) | v;
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(bytes.get(1..4usize.saturating_sub(pad)).unwrap_or_default());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guid::GLOBAL_VARIABLE;

    #[test]
    fn base64_known_answers() {
        // RFC 4648 section 10 test vectors.
        for (plain, coded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_encode(plain.as_bytes()), coded);
            assert_eq!(base64_decode(coded.as_bytes()).unwrap(), plain.as_bytes());
        }
        assert!(base64_decode(b"Zm9v!").is_err());
        assert!(base64_decode(b"Zg==Zm9v").is_err());
        assert_eq!(base64_encode(&MAGIC).get(..8), Some(TEXT_PREFIX));
    }

    #[test]
    fn round_trip_with_auth_fields() {
        let plain = Variable::new(GLOBAL_VARIABLE, VarName::from("Lang"), 7, b"eng\0".to_vec());
        let mut auth = Variable::new(GLOBAL_VARIABLE, VarName::from("PK"), 0x27, vec![1, 2, 3]);
        auth.time = EfiTime([7; 16]);
        let text = encode(&[&plain, &auth]).unwrap();
        assert!(looks_like(text.as_bytes()));
        assert_eq!(decode(text.as_bytes()).unwrap(), vec![plain, auth]);
    }

    #[test]
    fn corruption_is_detected() {
        let v = Variable::new(GLOBAL_VARIABLE, VarName::from("A"), 7, vec![1]);
        let raw = base64_decode(encode(&[&v]).unwrap().as_bytes()).unwrap();
        let mut bad = raw.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(matches!(decode(&bad), Err(AwsError::Checksum { .. })));
        for cut in 0..raw.len() {
            assert!(decode(&raw[..cut]).is_err());
        }
    }
}
