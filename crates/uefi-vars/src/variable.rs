//! One stored variable: identity, attributes, data, and the authentication
//! metadata that travels with it.

use std::fmt;

use crate::guid::Guid;
use crate::name::VarName;
use crate::time::EfiTime;

bitflags::bitflags! {
    /// EFI_VARIABLE_* attribute bits (UEFI 2.10 §8.2, `GetVariable`). On the
    /// wire and in the stores' serialized forms they stay a `u32`
    /// (`From`/`Into` convert); bits without a name are kept as they are.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
    pub struct Attributes: u32 {
        /// EFI_VARIABLE_NON_VOLATILE.
        const NON_VOLATILE = 0x01;
        /// EFI_VARIABLE_BOOTSERVICE_ACCESS.
        const BOOTSERVICE_ACCESS = 0x02;
        /// EFI_VARIABLE_RUNTIME_ACCESS.
        const RUNTIME_ACCESS = 0x04;
        /// EFI_VARIABLE_HARDWARE_ERROR_RECORD.
        const HARDWARE_ERROR_RECORD = 0x08;
        /// EFI_VARIABLE_AUTHENTICATED_WRITE_ACCESS.
        const AUTHENTICATED_WRITE_ACCESS = 0x10;
        /// EFI_VARIABLE_TIME_BASED_AUTHENTICATED_WRITE_ACCESS.
        const TIME_BASED_AUTHENTICATED_WRITE_ACCESS = 0x20;
        /// EFI_VARIABLE_APPEND_WRITE.
        const APPEND_WRITE = 0x40;
        /// EFI_VARIABLE_ENHANCED_AUTHENTICATED_ACCESS.
        const ENHANCED_AUTHENTICATED_ACCESS = 0x80;
        // Unknown bits travel through unchanged (the guest may set them).
        /// EFI_VARIABLE__.
        const _ = !0;
    }
}

impl Attributes {
    /// NV|BS: the usual boot-service variable.
    pub const NV_BS: Self = Self::NON_VOLATILE.union(Self::BOOTSERVICE_ACCESS);
    /// NV|BS|RT.
    pub const NV_BS_RT: Self = Self::NV_BS.union(Self::RUNTIME_ACCESS);

    /// What QEMU accepts on a stored variable (APPEND is never stored).
    pub const SUPPORTED: Self = Self::NV_BS_RT
        .union(Self::HARDWARE_ERROR_RECORD)
        .union(Self::TIME_BASED_AUTHENTICATED_WRITE_ACCESS)
        .union(Self::APPEND_WRITE);

    /// NV|BS|RT|TIME_AUTH: the only attributes PK/KEK/db/dbx may carry.
    pub const SECURE_BOOT_DB: Self =
        Self::NV_BS_RT.union(Self::TIME_BASED_AUTHENTICATED_WRITE_ACCESS);

    /// Either authenticated-write bit: the variable changes only through a
    /// signed update.
    pub const AUTHENTICATED: Self =
        Self::AUTHENTICATED_WRITE_ACCESS.union(Self::TIME_BASED_AUTHENTICATED_WRITE_ACCESS);

    /// Short names for display, lowest bit first.
    pub const SHORT_NAMES: [(Attributes, &'static str); 8] = [
        (Self::NON_VOLATILE, "NV"),
        (Self::BOOTSERVICE_ACCESS, "BS"),
        (Self::RUNTIME_ACCESS, "RT"),
        (Self::HARDWARE_ERROR_RECORD, "HR"),
        (Self::AUTHENTICATED_WRITE_ACCESS, "AW"),
        (Self::TIME_BASED_AUTHENTICATED_WRITE_ACCESS, "AT"),
        (Self::APPEND_WRITE, "AP"),
        (Self::ENHANCED_AUTHENTICATED_ACCESS, "EA"),
    ];

    /// Whether a (time-based or deprecated counter-based) authenticated
    /// write bit is set.
    pub fn is_authenticated(self) -> bool {
        self.intersects(Self::AUTHENTICATED)
    }

    /// The bits without a name.
    pub fn unknown(self) -> u32 {
        self.bits() & !Self::all_named().bits()
    }

    fn all_named() -> Self {
        Self::SHORT_NAMES
            .iter()
            .fold(Self::empty(), |m, (bit, _)| m.union(*bit))
    }
}

impl From<u32> for Attributes {
    fn from(bits: u32) -> Self {
        Self::from_bits_retain(bits)
    }
}

impl From<Attributes> for u32 {
    fn from(a: Attributes) -> u32 {
        a.bits()
    }
}

/// `NV|BS|RT` style text; unknown bits in hex; `-` for none.
impl fmt::Display for Attributes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut sep = |f: &mut fmt::Formatter<'_>| {
            let s = if first { "" } else { "|" };
            first = false;
            f.write_str(s)
        };
        for (bit, name) in Self::SHORT_NAMES {
            if self.contains(bit) {
                sep(f)?;
                f.write_str(name)?;
            }
        }
        let unknown = self.unknown();
        if unknown != 0 {
            sep(f)?;
            write!(f, "{unknown:#x}")?;
        }
        if self.is_empty() {
            f.write_str("-")?;
        }
        Ok(())
    }
}

/// The attribute bits as `u32` constants, for code that still masks the
/// wire value by hand (see [`Attributes`] for the typed set).
pub mod attr {
    use super::Attributes;

    /// `NON_VOLATILE` as a `u32`.
    pub const NON_VOLATILE: u32 = Attributes::NON_VOLATILE.bits();
    /// `BOOTSERVICE_ACCESS` as a `u32`.
    pub const BOOTSERVICE_ACCESS: u32 = Attributes::BOOTSERVICE_ACCESS.bits();
    /// `RUNTIME_ACCESS` as a `u32`.
    pub const RUNTIME_ACCESS: u32 = Attributes::RUNTIME_ACCESS.bits();
    /// `HARDWARE_ERROR_RECORD` as a `u32`.
    pub const HARDWARE_ERROR_RECORD: u32 = Attributes::HARDWARE_ERROR_RECORD.bits();
    /// `AUTHENTICATED_WRITE_ACCESS` as a `u32`.
    pub const AUTHENTICATED_WRITE_ACCESS: u32 = Attributes::AUTHENTICATED_WRITE_ACCESS.bits();
    /// `TIME_BASED_AUTHENTICATED_WRITE_ACCESS` as a `u32`.
    pub const TIME_BASED_AUTHENTICATED_WRITE_ACCESS: u32 =
        Attributes::TIME_BASED_AUTHENTICATED_WRITE_ACCESS.bits();
    /// `APPEND_WRITE` as a `u32`.
    pub const APPEND_WRITE: u32 = Attributes::APPEND_WRITE.bits();
    /// `ENHANCED_AUTHENTICATED_ACCESS` as a `u32`.
    pub const ENHANCED_AUTHENTICATED_ACCESS: u32 = Attributes::ENHANCED_AUTHENTICATED_ACCESS.bits();
    /// `SUPPORTED` as a `u32`.
    pub const SUPPORTED: u32 = Attributes::SUPPORTED.bits();
    /// `SECURE_BOOT_DB` as a `u32`.
    pub const SECURE_BOOT_DB: u32 = Attributes::SECURE_BOOT_DB.bits();

    /// `NV|BS|RT` style text for an attribute mask.
    pub fn describe(mask: u32) -> String {
        Attributes::from(mask).to_string()
    }
}

/// Identity of a variable: vendor GUID and name (compared up to the NUL).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct VarKey {
    /// The vendor namespace.
    pub guid: Guid,
    /// The name.
    pub name: VarName,
}

impl VarKey {
    /// The key of variable `name` in namespace `guid`.
    pub fn new(guid: Guid, name: VarName) -> Self {
        VarKey { guid, name }
    }
}

/// A stored variable. `data` is never empty: size 0 means "deleted".
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Variable {
    /// The vendor namespace.
    pub guid: Guid,
    /// The name.
    pub name: VarName,
    /// Stored without APPEND_WRITE. A `u32` as on the wire (the service's
    /// handlers mask it); [`Variable::attrs`] gives the typed set.
    pub attributes: u32,
    /// The payload.
    pub data: Vec<u8>,
    /// Timestamp of the last authenticated write (zero for others).
    pub time: EfiTime,
    /// Signer identity of a private authenticated variable (docs/reference/auth.md §8).
    pub digest: Option<Vec<u8>>,
}

impl Variable {
    /// A variable without authentication state (APPEND_WRITE is not kept
    /// in the attributes).
    pub fn new(guid: Guid, name: VarName, attributes: u32, data: Vec<u8>) -> Self {
        Variable {
            guid,
            name,
            attributes: Attributes::from(attributes)
                .difference(Attributes::APPEND_WRITE)
                .bits(),
            data,
            time: EfiTime::default(),
            digest: None,
        }
    }

    /// Its (namespace, name) key.
    pub fn key(&self) -> VarKey {
        VarKey::new(self.guid, self.name.clone())
    }

    /// The stored attributes as the typed set.
    pub fn attrs(&self) -> Attributes {
        Attributes::from(self.attributes)
    }

    /// Whether it has NON_VOLATILE.
    pub fn is_non_volatile(&self) -> bool {
        self.attrs().contains(Attributes::NON_VOLATILE)
    }

    /// Whether it has TIME_BASED_AUTHENTICATED_WRITE_ACCESS.
    pub fn is_time_auth(&self) -> bool {
        self.attrs()
            .contains(Attributes::TIME_BASED_AUTHENTICATED_WRITE_ACCESS)
    }

    /// Bytes of the name on the wire, NUL included.
    pub fn name_size(&self) -> u64 {
        self.name.wire_size()
    }

    /// Bytes of the signer digest kept with it (0 without one).
    pub fn digest_size(&self) -> u64 {
        self.digest.as_ref().map_or(0, |d| d.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_text_and_bits() {
        assert_eq!(Attributes::from(0x27).to_string(), "NV|BS|RT|AT");
        assert_eq!(Attributes::from(0).to_string(), "-");
        assert_eq!(Attributes::from(0x1_0003).to_string(), "NV|BS|0x10000");
        assert_eq!(u32::from(Attributes::from(0x1_0003)), 0x1_0003);
        assert_eq!(Attributes::SECURE_BOOT_DB.bits(), 0x27);
        assert_eq!(attr::SUPPORTED, 0x6f);
        assert_eq!(attr::describe(0x40), "AP");
    }
}
