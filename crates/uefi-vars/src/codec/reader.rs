//! The bounded cursor every guest-supplied or otherwise untrusted byte
//! string is read through: each read is checked against the bytes left,
//! sizes are added with checked arithmetic, multi-byte fields are
//! little-endian (UEFI 2.10 §2.3.1, "Data Types": little-endian on every
//! architecture), and a short or malformed field is an error, never a
//! silent zero.

use std::fmt;

use super::WordSize;
use crate::guid::Guid;

/// A field that does not decode: where it starts, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    /// Offset of the field from the start of the reader's buffer.
    pub offset: usize,
    /// The field's name and what was wrong with it.
    pub what: String,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "offset {:#x}: {}", self.offset, self.what)
    }
}

impl std::error::Error for Malformed {}

/// Bounded little-endian reader over a byte string.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// A reader positioned at `offset` (a read fails if it is past the end).
    pub fn at(buf: &'a [u8], offset: usize) -> Self {
        Reader { buf, pos: offset }
    }

    /// Offset of the next field.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// Whether every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The error for the field at the current position.
    pub fn malformed(&self, what: impl Into<String>) -> Malformed {
        Malformed {
            offset: self.pos,
            what: what.into(),
        }
    }

    /// The next `len` bytes (`what` names them in the error).
    pub fn take(&mut self, len: usize, what: &str) -> Result<&'a [u8], Malformed> {
        let end = self.pos.checked_add(len);
        match end.and_then(|end| self.buf.get(self.pos..end).map(|s| (end, s))) {
            Some((end, s)) => {
                self.pos = end;
                Ok(s)
            }
            None => Err(self.malformed(format!(
                "{what}: {len} bytes needed, {} left",
                self.remaining()
            ))),
        }
    }

    /// Skips `len` bytes (padding, reserved fields).
    pub fn skip(&mut self, len: usize, what: &str) -> Result<(), Malformed> {
        self.take(len, what).map(|_| ())
    }

    /// Everything left (possibly nothing).
    pub fn rest(&mut self) -> &'a [u8] {
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        self.pos = self.pos.max(self.buf.len());
        rest
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

    /// The next little-endian i16.
    pub fn i16(&mut self, what: &str) -> Result<i16, Malformed> {
        self.array(what).map(i16::from_le_bytes)
    }

    /// The next little-endian u32.
    pub fn u32(&mut self, what: &str) -> Result<u32, Malformed> {
        self.array(what).map(u32::from_le_bytes)
    }

    /// The next little-endian u64.
    pub fn u64(&mut self, what: &str) -> Result<u64, Malformed> {
        self.array(what).map(u64::from_le_bytes)
    }

    /// A big-endian u16: only pcap framing written on a big-endian host
    /// uses it (the pcap global header's magic tells the order).
    pub fn u16_be(&mut self, what: &str) -> Result<u16, Malformed> {
        self.array(what).map(u16::from_be_bytes)
    }

    /// A big-endian u32 (pcap framing only, as [`Reader::u16_be`]).
    pub fn u32_be(&mut self, what: &str) -> Result<u32, Malformed> {
        self.array(what).map(u32::from_be_bytes)
    }

    /// A UINTN of the guest's width, widened to u64.
    pub fn uintn(&mut self, word: WordSize, what: &str) -> Result<u64, Malformed> {
        match word {
            WordSize::W64 => self.u64(what),
            WordSize::W32 => self.u32(what).map(u64::from),
        }
    }

    /// A u32 size or offset field as `usize`.
    pub fn u32_size(&mut self, what: &str) -> Result<usize, Malformed> {
        let at = self.pos;
        let v = self.u32(what)?;
        usize::try_from(v).map_err(|_| Malformed {
            offset: at,
            what: format!("{what}: {v} does not fit this host"),
        })
    }

    /// The next EFI_GUID (first three fields little-endian).
    pub fn guid(&mut self, what: &str) -> Result<Guid, Malformed> {
        self.array(what).map(Guid)
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
        let len = self.u32_size(what)?;
        self.take(len, what)
    }

    /// Little-endian UCS-2 units filling `len` bytes (`len` must be even).
    pub fn ucs2(&mut self, len: usize, what: &str) -> Result<Vec<u16>, Malformed> {
        if len % 2 != 0 {
            return Err(self.malformed(format!("{what}: odd byte count {len}")));
        }
        Ok(ucs2_units(self.take(len, what)?))
    }
}

/// The little-endian 16-bit words of a byte area (an odd trailing byte is
/// ignored).
pub fn u16_words(area: &[u8]) -> impl Iterator<Item = u16> + '_ {
    area.chunks_exact(2)
        .filter_map(|p| <[u8; 2]>::try_from(p).ok())
        .map(u16::from_le_bytes)
}

/// Decodes little-endian UCS-2 units from a byte area (an odd trailing byte
/// is ignored).
pub fn ucs2_units(area: &[u8]) -> Vec<u16> {
    u16_words(area).collect()
}

/// The little-endian u16 at `offset` of `buf`.
pub fn u16_at(buf: &[u8], offset: usize, what: &str) -> Result<u16, Malformed> {
    Reader::at(buf, offset).u16(what)
}

/// The little-endian u32 at `offset` of `buf`.
pub fn u32_at(buf: &[u8], offset: usize, what: &str) -> Result<u32, Malformed> {
    Reader::at(buf, offset).u32(what)
}

/// The little-endian u64 at `offset` of `buf`.
pub fn u64_at(buf: &[u8], offset: usize, what: &str) -> Result<u64, Malformed> {
    Reader::at(buf, offset).u64(what)
}

/// The UINTN of the guest's width at `offset` of `buf`.
pub fn uintn_at(buf: &[u8], offset: usize, word: WordSize, what: &str) -> Result<u64, Malformed> {
    Reader::at(buf, offset).uintn(word, what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_little_endian_and_fails_short() {
        let b = [1, 0, 2, 0, 0, 0, 0xff];
        let mut r = Reader::new(&b);
        assert_eq!(r.u16("a"), Ok(1));
        assert_eq!(r.u32("b"), Ok(2));
        assert_eq!(r.pos(), 6);
        let e = r.u16("c").unwrap_err();
        assert_eq!(e.offset, 6);
        assert_eq!(e.what, "c: 2 bytes needed, 1 left");
        // a failed read does not move the cursor
        assert_eq!(r.u8("d"), Ok(0xff));
        assert!(r.is_empty());
    }

    #[test]
    fn positioned_reads_are_bounded() {
        let b = 0x0102_0304_0506_0708u64.to_le_bytes();
        assert_eq!(u64_at(&b, 0, "x"), Ok(0x0102_0304_0506_0708));
        assert_eq!(u32_at(&b, 4, "x"), Ok(0x0102_0304));
        assert_eq!(uintn_at(&b, 4, WordSize::W32, "x"), Ok(0x0102_0304));
        assert!(u32_at(&b, 5, "x").is_err());
        assert!(u16_at(&b, usize::MAX, "x").is_err());
        assert!(Reader::at(&b, usize::MAX).take(2, "x").is_err());
    }

    #[test]
    fn flags_blobs_and_names() {
        let b = [1, 2, 3, 0, 0, 0, b'h', 0, b'i'];
        let mut r = Reader::new(&b);
        assert_eq!(r.flag("f"), Ok(true));
        assert!(r.clone().flag("f").is_err());
        r.skip(1, "pad").unwrap();
        assert_eq!(r.clone().blob("b"), Ok(&b"h\0i"[..]));
        assert_eq!(r.u32("len"), Ok(3));
        assert!(r.ucs2(1, "n").is_err());
        assert_eq!(r.ucs2(2, "n").unwrap(), vec![u16::from(b'h')]);
        assert!(r.clone().blob("b").is_err());
        assert_eq!(r.rest(), b"i");
        assert_eq!(r.rest(), b"");
    }
}
