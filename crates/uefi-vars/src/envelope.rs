//! The framing shared by the service and device snapshot formats: an 8-byte
//! magic, a u32 format version, a u64 body length, the body, and a CRC-32C
//! of everything before it (all little-endian).

use crate::crc32c::crc32c;

/// Magic + version + body length.
pub const HEADER_LEN: usize = 8 + 4 + 8;
/// The CRC-32C trailer.
pub(crate) const CHECKSUM_LEN: usize = 4;

/// Why a blob's framing is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// The blob ends before its header, or before the length its header gives.
    Truncated {
        /// Bytes the blob should have.
        needed: u64,
        /// Bytes it has.
        available: u64,
    },
    /// The magic is not the expected one.
    BadMagic,
    /// Written by a newer (or unknown) format version.
    UnsupportedVersion {
        /// The blob's format version.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
    /// More bytes than the header accounts for.
    TrailingBytes {
        /// Bytes past the end the header gives.
        extra: u64,
    },
    /// The checksum does not match the content.
    ChecksumMismatch {
        /// The CRC-32C in the blob.
        stored: u32,
        /// The CRC-32C of the content.
        computed: u32,
    },
}

/// The body cursor is the codec's [`Reader`]; the old names stay for users.
pub use crate::codec::{Malformed, Reader as BodyReader};

/// Frames `body`.
pub fn seal(magic: &[u8; 8], version: u32, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        HEADER_LEN
            .saturating_add(body.len())
            .saturating_add(CHECKSUM_LEN),
    );
    out.extend_from_slice(magic);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(body);
    let crc = crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Checks the framing (in this order: header present, magic, version,
/// length, checksum) and returns the body. The version is checked before
/// the checksum so a blob from a newer format is reported as such, not as
/// corruption.
pub fn open<'a>(blob: &'a [u8], magic: &[u8; 8], version: u32) -> Result<&'a [u8], EnvelopeError> {
    let available = blob.len() as u64;
    let truncated = |needed: u64| EnvelopeError::Truncated { needed, available };
    let minimum = (HEADER_LEN + CHECKSUM_LEN) as u64;
    // A blob without its whole header is truncated, whatever its first bytes.
    if blob.len() < HEADER_LEN {
        return Err(truncated(minimum));
    }
    let mut r = BodyReader::new(blob);
    let found_magic = r.array::<8>("magic").map_err(|_| truncated(minimum))?;
    if &found_magic != magic {
        return Err(EnvelopeError::BadMagic);
    }
    let found_version = r.u32("version").map_err(|_| truncated(minimum))?;
    if found_version != version {
        return Err(EnvelopeError::UnsupportedVersion {
            found: found_version,
            supported: version,
        });
    }
    let body_len = r.u64("body length").map_err(|_| truncated(minimum))?;
    let needed = body_len
        .checked_add(minimum)
        .ok_or_else(|| truncated(u64::MAX))?;
    if available < needed {
        return Err(truncated(needed));
    }
    if available > needed {
        return Err(EnvelopeError::TrailingBytes {
            extra: available.saturating_sub(needed),
        });
    }
    // `needed` == blob.len(), so the body length fits a usize.
    let body_len = usize::try_from(body_len).map_err(|_| truncated(needed))?;
    let body = r.take(body_len, "body").map_err(|_| truncated(needed))?;
    let stored = r.u32("checksum").map_err(|_| truncated(needed))?;
    let content = blob
        .get(..HEADER_LEN.saturating_add(body_len))
        .ok_or_else(|| truncated(needed))?;
    let computed = crc32c(content);
    if stored != computed {
        return Err(EnvelopeError::ChecksumMismatch { stored, computed });
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_errors() {
        let blob = seal(b"TESTTEST", 3, b"body");
        assert_eq!(blob.len(), HEADER_LEN + 4 + CHECKSUM_LEN);
        assert_eq!(open(&blob, b"TESTTEST", 3), Ok(&b"body"[..]));
        assert_eq!(open(&blob, b"OTHEROTH", 3), Err(EnvelopeError::BadMagic));
        assert_eq!(
            open(&blob, b"TESTTEST", 2),
            Err(EnvelopeError::UnsupportedVersion {
                found: 3,
                supported: 2
            })
        );
        assert_eq!(
            open(&blob[..10], b"TESTTEST", 3),
            Err(EnvelopeError::Truncated {
                needed: 24,
                available: 10
            })
        );
        // a short blob is truncated even when its magic is wrong
        assert_eq!(
            open(&blob[..10], b"OTHEROTH", 3),
            Err(EnvelopeError::Truncated {
                needed: 24,
                available: 10
            })
        );
        let mut longer = blob.clone();
        longer.push(0);
        assert_eq!(
            open(&longer, b"TESTTEST", 3),
            Err(EnvelopeError::TrailingBytes { extra: 1 })
        );
        let mut bad = blob.clone();
        bad[21] ^= 1;
        assert!(matches!(
            open(&bad, b"TESTTEST", 3),
            Err(EnvelopeError::ChecksumMismatch { .. })
        ));
    }
}
