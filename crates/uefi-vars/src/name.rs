//! Variable names: UCS-2 code units without the terminating NUL, with the
//! validity rules applied to guest-supplied names.

use std::fmt;

/// A variable name as UCS-2 code units, NUL excluded.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct VarName(Vec<u16>);

/// Why a guest-supplied name was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameError {
    /// NameSize is zero or odd.
    BadSize,
    /// No NUL inside NameSize.
    Unterminated,
    /// A UTF-16 surrogate before the NUL.
    Surrogate,
}

impl VarName {
    /// A name from its UCS-2 code units (without the NUL).
    pub fn from_units(units: Vec<u16>) -> Self {
        VarName(units)
    }

    /// The UCS-2 code units, without the NUL.
    pub fn units(&self) -> &[u16] {
        &self.0
    }

    /// Whether the name has no characters.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Size on the wire, NUL included.
    pub fn wire_size(&self) -> u64 {
        (self.0.len() as u64).saturating_add(1).saturating_mul(2)
    }

    /// Little-endian UCS-2 bytes with the terminating NUL.
    pub fn to_wire(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.0.len().saturating_mul(2).saturating_add(2));
        for u in self.0.iter().chain(std::iter::once(&0u16)) {
            out.extend_from_slice(&u.to_le_bytes());
        }
        out
    }

    /// Parses the name area of a request: it must hold a NUL, and no surrogate
    /// may come before it. Units after the NUL are ignored. The scan is bounded
    /// by the area itself (QEMU scans twice as far, docs/reference/limitations.md §2.10).
    pub fn parse_wire(area: &[u8]) -> Result<VarName, NameError> {
        if area.is_empty() || area.len() % 2 != 0 {
            return Err(NameError::BadSize);
        }
        let mut units = Vec::new();
        for u in Self::ucs2_units(area) {
            match u {
                0 => return Ok(VarName(units)),
                0xd800..=0xdfff => return Err(NameError::Surrogate),
                _ => units.push(u),
            }
        }
        Err(NameError::Unterminated)
    }

    /// The workspace's one UCS-2 decoder: little-endian units of a byte
    /// area, NULs included (an odd trailing byte is ignored).
    pub fn ucs2_units(area: &[u8]) -> Vec<u16> {
        crate::codec::ucs2_units(area)
    }

    /// Units up to the first NUL, or all of them; no validity checks (policy
    /// names may lack a NUL).
    pub fn units_until_nul(area: &[u8]) -> Vec<u16> {
        let mut units = Self::ucs2_units(area);
        if let Some(nul) = units.iter().position(|&u| u == 0) {
            units.truncate(nul);
        }
        units
    }

    /// The name in a UCS-2 area, up to its first NUL, without checks.
    pub fn from_wire_lossy(area: &[u8]) -> VarName {
        VarName(Self::units_until_nul(area))
    }

    /// Whether the name is `s` (compared unit by unit, no allocation).
    pub fn eq_str(&self, s: &str) -> bool {
        self.0.iter().copied().eq(s.encode_utf16())
    }

    /// Lossless conversion to text where the name is valid UTF-16.
    pub fn to_string_lossless(&self) -> Option<String> {
        String::from_utf16(&self.0).ok()
    }
}

impl From<&str> for VarName {
    fn from(s: &str) -> Self {
        VarName(s.encode_utf16().collect())
    }
}

impl fmt::Display for VarName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", String::from_utf16_lossy(&self.0))
    }
}

impl fmt::Debug for VarName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf16_lossy(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(units: &[u16]) -> Vec<u8> {
        units.iter().flat_map(|u| u.to_le_bytes()).collect()
    }

    #[test]
    fn parse_accepts_terminated_names() {
        assert_eq!(
            VarName::parse_wire(&wire(&[0x41, 0x42, 0])).unwrap(),
            VarName::from("AB")
        );
        // trailing units after the NUL are ignored
        assert_eq!(
            VarName::parse_wire(&wire(&[0x41, 0, 0x43])).unwrap(),
            VarName::from("A")
        );
        assert!(VarName::parse_wire(&wire(&[0])).unwrap().is_empty());
    }

    #[test]
    fn parse_rejects_bad_names() {
        assert_eq!(VarName::parse_wire(&[]), Err(NameError::BadSize));
        assert_eq!(VarName::parse_wire(&[0, 0, 0]), Err(NameError::BadSize));
        assert_eq!(
            VarName::parse_wire(&wire(&[0x41, 0x42])),
            Err(NameError::Unterminated)
        );
        assert_eq!(
            VarName::parse_wire(&wire(&[0x41, 0xd800, 0])),
            Err(NameError::Surrogate)
        );
    }

    #[test]
    fn compares_with_text_and_decodes_lossily() {
        let n = VarName::from("PK");
        assert!(n.eq_str("PK"));
        assert!(!n.eq_str("PKX"));
        assert!(!n.eq_str("P"));
        assert!(!VarName::from("Pk").eq_str("PK"));
        assert_eq!(
            VarName::from_wire_lossy(&wire(&[0x41, 0, 0x42])),
            VarName::from("A")
        );
        assert_eq!(
            VarName::units_until_nul(&wire(&[0x41, 0x42])),
            vec![0x41, 0x42]
        );
        assert_eq!(VarName::ucs2_units(&[0x41, 0, 0x42]), vec![0x41]);
    }

    #[test]
    fn wire_round_trip() {
        let n = VarName::from("Boot0001");
        assert_eq!(n.wire_size(), 18);
        assert_eq!(VarName::parse_wire(&n.to_wire()).unwrap(), n);
    }
}
