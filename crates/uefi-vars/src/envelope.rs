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

/// A body field that does not decode: where, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    /// Offset of the field in the body.
    pub offset: usize,
    /// What the format wants there.
    pub what: String,
}

/// Bounded little-endian reader over a body; every read is checked against
/// the bytes left.
#[derive(Debug)]
pub struct BodyReader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> BodyReader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        BodyReader { buf, pos: 0 }
    }

    /// Offset of the next field.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// The next `len` bytes (`what` names them in the error).
    pub fn take(&mut self, len: usize, what: &str) -> Result<&'a [u8], Malformed> {
        let end = self.pos.checked_add(len);
        match end.and_then(|end| self.buf.get(self.pos..end).map(|s| (end, s))) {
            Some((end, s)) => {
                self.pos = end;
                Ok(s)
            }
            None => Err(Malformed {
                offset: self.pos,
                what: format!("{what}: {len} bytes needed, {} left", self.remaining()),
            }),
        }
    }

    /// The next `N` bytes as an array.
    pub fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], Malformed> {
        let at = self.pos;
        let s = self.take(N, what)?;
        <[u8; N]>::try_from(s).map_err(|_| Malformed {
            offset: at,
            what: what.to_string(),
        })
    }

    /// The next byte.
    pub fn u8(&mut self, what: &str) -> Result<u8, Malformed> {
        let [b] = self.array::<1>(what)?;
        Ok(b)
    }

    /// The next little-endian u16.
    pub fn u16(&mut self, what: &str) -> Result<u16, Malformed> {
        self.array(what).map(u16::from_le_bytes)
    }

    /// The next little-endian u32.
    pub fn u32(&mut self, what: &str) -> Result<u32, Malformed> {
        self.array(what).map(u32::from_le_bytes)
    }

    /// The next little-endian u64.
    pub fn u64(&mut self, what: &str) -> Result<u64, Malformed> {
        self.array(what).map(u64::from_le_bytes)
    }

    /// A 0/1 byte.
    pub fn flag(&mut self, what: &str) -> Result<bool, Malformed> {
        let at = self.pos;
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(Malformed {
                offset: at,
                what: format!("{what}: {v} is neither 0 nor 1"),
            }),
        }
    }

    /// A u32 length, then that many bytes.
    pub fn blob(&mut self, what: &str) -> Result<&'a [u8], Malformed> {
        let at = self.pos;
        let len = self.u32(what)?;
        let len = usize::try_from(len).map_err(|_| Malformed {
            offset: at,
            what: what.to_string(),
        })?;
        self.take(len, what)
    }
}

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
    let header = blob.get(..HEADER_LEN).ok_or_else(|| truncated(minimum))?;
    let (found_magic, rest) = header
        .split_at_checked(8)
        .ok_or_else(|| truncated(minimum))?;
    if found_magic != magic.as_slice() {
        return Err(EnvelopeError::BadMagic);
    }
    let (found_version, len) = rest.split_at_checked(4).ok_or_else(|| truncated(minimum))?;
    let found_version = <[u8; 4]>::try_from(found_version)
        .map(u32::from_le_bytes)
        .map_err(|_| truncated(minimum))?;
    if found_version != version {
        return Err(EnvelopeError::UnsupportedVersion {
            found: found_version,
            supported: version,
        });
    }
    let body_len = <[u8; 8]>::try_from(len)
        .map(u64::from_le_bytes)
        .map_err(|_| truncated(minimum))?;
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
    // `needed` == blob.len(), so these conversions and slices are in range.
    let crc_at = usize::try_from(needed.saturating_sub(CHECKSUM_LEN as u64))
        .map_err(|_| truncated(needed))?;
    let (content, trailer) = blob
        .split_at_checked(crc_at)
        .ok_or_else(|| truncated(needed))?;
    let stored = <[u8; 4]>::try_from(trailer)
        .map(u32::from_le_bytes)
        .map_err(|_| truncated(needed))?;
    let computed = crc32c(content);
    if stored != computed {
        return Err(EnvelopeError::ChecksumMismatch { stored, computed });
    }
    content.get(HEADER_LEN..).ok_or_else(|| truncated(needed))
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
