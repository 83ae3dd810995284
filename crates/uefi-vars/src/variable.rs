//! One stored variable: identity, attributes, data, and the authentication
//! metadata that travels with it.

use crate::guid::Guid;
use crate::name::VarName;
use crate::time::EfiTime;

/// Attribute bits (UEFI spec, `EFI_VARIABLE_*`).
pub mod attr {
    /// EFI_VARIABLE_NON_VOLATILE.
    pub const NON_VOLATILE: u32 = 0x01;
    /// EFI_VARIABLE_BOOTSERVICE_ACCESS.
    pub const BOOTSERVICE_ACCESS: u32 = 0x02;
    /// EFI_VARIABLE_RUNTIME_ACCESS.
    pub const RUNTIME_ACCESS: u32 = 0x04;
    /// EFI_VARIABLE_HARDWARE_ERROR_RECORD.
    pub const HARDWARE_ERROR_RECORD: u32 = 0x08;
    /// EFI_VARIABLE_AUTHENTICATED_WRITE_ACCESS (deprecated by UEFI 2.x).
    pub const AUTHENTICATED_WRITE_ACCESS: u32 = 0x10;
    /// EFI_VARIABLE_TIME_BASED_AUTHENTICATED_WRITE_ACCESS.
    pub const TIME_BASED_AUTHENTICATED_WRITE_ACCESS: u32 = 0x20;
    /// EFI_VARIABLE_APPEND_WRITE.
    pub const APPEND_WRITE: u32 = 0x40;
    /// EFI_VARIABLE_ENHANCED_AUTHENTICATED_ACCESS.
    pub const ENHANCED_AUTHENTICATED_ACCESS: u32 = 0x80;

    /// What QEMU accepts on a stored variable (APPEND is never stored).
    pub const SUPPORTED: u32 = NON_VOLATILE
        | BOOTSERVICE_ACCESS
        | RUNTIME_ACCESS
        | HARDWARE_ERROR_RECORD
        | TIME_BASED_AUTHENTICATED_WRITE_ACCESS
        | APPEND_WRITE;

    /// NV|BS|RT|TIME_AUTH: the only attributes PK/KEK/db/dbx may carry.
    pub const SECURE_BOOT_DB: u32 =
        NON_VOLATILE | BOOTSERVICE_ACCESS | RUNTIME_ACCESS | TIME_BASED_AUTHENTICATED_WRITE_ACCESS;

    /// Short names for display, lowest bit first.
    pub const NAMES: [(u32, &str); 8] = [
        (NON_VOLATILE, "NV"),
        (BOOTSERVICE_ACCESS, "BS"),
        (RUNTIME_ACCESS, "RT"),
        (HARDWARE_ERROR_RECORD, "HR"),
        (AUTHENTICATED_WRITE_ACCESS, "AW"),
        (TIME_BASED_AUTHENTICATED_WRITE_ACCESS, "AT"),
        (APPEND_WRITE, "AP"),
        (ENHANCED_AUTHENTICATED_ACCESS, "EA"),
    ];

    /// `NV|BS|RT` style text for an attribute mask.
    pub fn describe(mask: u32) -> String {
        let mut parts: Vec<String> = NAMES
            .iter()
            .filter(|(bit, _)| mask & bit != 0)
            .map(|(_, n)| (*n).to_string())
            .collect();
        let known = NAMES.iter().fold(0, |m, (bit, _)| m | bit);
        if mask & !known != 0 {
            parts.push(format!("{:#x}", mask & !known));
        }
        if parts.is_empty() {
            "-".to_string()
        } else {
            parts.join("|")
        }
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
    /// Stored without APPEND_WRITE.
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
            attributes: attributes & !attr::APPEND_WRITE,
            data,
            time: EfiTime::default(),
            digest: None,
        }
    }

    /// Its (namespace, name) key.
    pub fn key(&self) -> VarKey {
        VarKey::new(self.guid, self.name.clone())
    }

    /// Whether it has NON_VOLATILE.
    pub fn is_non_volatile(&self) -> bool {
        self.attributes & attr::NON_VOLATILE != 0
    }

    /// Whether it has TIME_BASED_AUTHENTICATED_WRITE_ACCESS.
    pub fn is_time_auth(&self) -> bool {
        self.attributes & attr::TIME_BASED_AUTHENTICATED_WRITE_ACCESS != 0
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
