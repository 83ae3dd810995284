//! Well-known variables, as typed (vendor GUID, name) constants, and the
//! tables built from them: the read-only variables, the signature
//! databases, the signature types. The library, the CLI and the QEMU
//! oracle all use these; no other copy of a list exists in the workspace.
//!
//! Sources: UEFI 2.10 §3.3 "Globally Defined Variables" and §32.4.1
//! "Signature Database"; edk2 SecurityPkg AuthVariableLib
//! (`AuthVariableLib.c`, the read-only list in `mAuthVarEntry`) and
//! MdeModulePkg VarCheckUefiLib (`VarCheckUefiLibNullClass.c`); shim's
//! `MokVars.txt` for MokList and SbatLevel.

use crate::guid::{self, Guid};
use crate::name::VarName;
use crate::variable::VarKey;

/// A well-known variable: its vendor GUID and its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WellKnown {
    /// The vendor GUID (namespace).
    pub guid: Guid,
    /// The name, without its NUL.
    pub name: &'static str,
}

impl WellKnown {
    /// The variable `name` in the namespace `guid`.
    pub const fn new(guid: Guid, name: &'static str) -> Self {
        WellKnown { guid, name }
    }

    /// Whether `(guid, name)` is this variable (no allocation).
    pub fn is(&self, guid: &Guid, name: &VarName) -> bool {
        *guid == self.guid && name.eq_str(self.name)
    }

    /// [`WellKnown::is`] over raw UCS-2 units (NUL excluded).
    pub fn is_units(&self, guid: &Guid, units: &[u16]) -> bool {
        *guid == self.guid && units.iter().copied().eq(self.name.encode_utf16())
    }

    /// The name as a [`VarName`].
    pub fn var_name(&self) -> VarName {
        VarName::from(self.name)
    }

    /// The store key (GUID and name).
    pub fn key(&self) -> VarKey {
        VarKey::new(self.guid, self.var_name())
    }
}

const fn global(name: &'static str) -> WellKnown {
    WellKnown::new(guid::GLOBAL_VARIABLE, name)
}

const fn image_db(name: &'static str) -> WellKnown {
    WellKnown::new(guid::IMAGE_SECURITY_DATABASE, name)
}

const fn shim(name: &'static str) -> WellKnown {
    WellKnown::new(guid::SHIM_LOCK, name)
}

// Secure Boot key hierarchy (UEFI 2.10 §32.3, §32.4).
/// `PK` in the EFI global variable namespace.
pub const PK: WellKnown = global("PK");
/// `KEK` in the EFI global variable namespace.
pub const KEK: WellKnown = global("KEK");
/// `db` in the image security database namespace.
pub const DB: WellKnown = image_db("db");
/// `dbx` in the image security database namespace.
pub const DBX: WellKnown = image_db("dbx");
/// `dbt` in the image security database namespace.
pub const DBT: WellKnown = image_db("dbt");
/// `dbr` in the image security database namespace.
pub const DBR: WellKnown = image_db("dbr");

// Secure Boot state (read-only for the guest).
/// `SetupMode` in the EFI global variable namespace.
pub const SETUP_MODE: WellKnown = global("SetupMode");
/// `SecureBoot` in the EFI global variable namespace.
pub const SECURE_BOOT: WellKnown = global("SecureBoot");
/// `SignatureSupport` in the EFI global variable namespace.
pub const SIGNATURE_SUPPORT: WellKnown = global("SignatureSupport");
/// `VendorKeys` in the EFI global variable namespace.
pub const VENDOR_KEYS: WellKnown = global("VendorKeys");
/// In the global namespace, as the read-only list has always held it (edk2
/// keeps its own copy under gEfiVendorKeysNvGuid, which the guest cannot
/// write either).
pub const VENDOR_KEYS_NV: WellKnown = global("VendorKeysNv");
/// `AuditMode` in the EFI global variable namespace.
pub const AUDIT_MODE: WellKnown = global("AuditMode");
/// `DeployedMode` in the EFI global variable namespace.
pub const DEPLOYED_MODE: WellKnown = global("DeployedMode");

// Factory defaults of the key databases.
/// `PKDefault` in the EFI global variable namespace.
pub const PK_DEFAULT: WellKnown = global("PKDefault");
/// `KEKDefault` in the EFI global variable namespace.
pub const KEK_DEFAULT: WellKnown = global("KEKDefault");
/// `dbDefault` in the EFI global variable namespace.
pub const DB_DEFAULT: WellKnown = global("dbDefault");
/// `dbxDefault` in the EFI global variable namespace.
pub const DBX_DEFAULT: WellKnown = global("dbxDefault");
/// `dbtDefault` in the EFI global variable namespace.
pub const DBT_DEFAULT: WellKnown = global("dbtDefault");

// edk2 platform switches (SecureBootConfigDxe, AuthVariableLib).
/// `SecureBootEnable`.
pub const SECURE_BOOT_ENABLE: WellKnown =
    WellKnown::new(guid::SECURE_BOOT_ENABLE_DISABLE, "SecureBootEnable");
/// `CustomMode`.
pub const CUSTOM_MODE: WellKnown = WellKnown::new(guid::CUSTOM_MODE_ENABLE, "CustomMode");

// Boot manager (UEFI 2.10 §3.1, §3.3).
/// `BootOrder` in the EFI global variable namespace.
pub const BOOT_ORDER: WellKnown = global("BootOrder");
/// `BootNext` in the EFI global variable namespace.
pub const BOOT_NEXT: WellKnown = global("BootNext");
/// `BootCurrent` in the EFI global variable namespace.
pub const BOOT_CURRENT: WellKnown = global("BootCurrent");
/// `DriverOrder` in the EFI global variable namespace.
pub const DRIVER_ORDER: WellKnown = global("DriverOrder");
/// `SysPrepOrder` in the EFI global variable namespace.
pub const SYS_PREP_ORDER: WellKnown = global("SysPrepOrder");
/// `Timeout` in the EFI global variable namespace.
pub const TIMEOUT: WellKnown = global("Timeout");
/// `Lang` in the EFI global variable namespace.
pub const LANG: WellKnown = global("Lang");
/// `PlatformLang` in the EFI global variable namespace.
pub const PLATFORM_LANG: WellKnown = global("PlatformLang");
/// `OsIndications` in the EFI global variable namespace.
pub const OS_INDICATIONS: WellKnown = global("OsIndications");
/// `OsIndicationsSupported` in the EFI global variable namespace.
pub const OS_INDICATIONS_SUPPORTED: WellKnown = global("OsIndicationsSupported");

// shim (MokVars.txt).
/// `MokList` in shim's namespace.
pub const MOK_LIST: WellKnown = shim("MokList");
/// `MokListX` in shim's namespace.
pub const MOK_LIST_X: WellKnown = shim("MokListX");
/// `MokListRT` in shim's namespace.
pub const MOK_LIST_RT: WellKnown = shim("MokListRT");
/// `MokListXRT` in shim's namespace.
pub const MOK_LIST_X_RT: WellKnown = shim("MokListXRT");
/// `MokListTrusted` in shim's namespace.
pub const MOK_LIST_TRUSTED: WellKnown = shim("MokListTrusted");
/// `MokSBState` in shim's namespace.
pub const MOK_SB_STATE: WellKnown = shim("MokSBState");
/// `SbatLevel` in shim's namespace.
pub const SBAT_LEVEL: WellKnown = shim("SbatLevel");
/// `SbatLevelRT` in shim's namespace.
pub const SBAT_LEVEL_RT: WellKnown = shim("SbatLevelRT");

/// Variables the guest may never write: AuthVariableLib and VarCheckUefiLib
/// mark them read-only (QEMU lets the guest overwrite them,
/// docs/reference/limitations.md §2.3), all in the global namespace.
pub const READ_ONLY: [WellKnown; 12] = [
    SETUP_MODE,
    SECURE_BOOT,
    SIGNATURE_SUPPORT,
    VENDOR_KEYS,
    VENDOR_KEYS_NV,
    AUDIT_MODE,
    DEPLOYED_MODE,
    PK_DEFAULT,
    KEK_DEFAULT,
    DB_DEFAULT,
    DBX_DEFAULT,
    DBT_DEFAULT,
];

/// Whether the guest may never write `(guid, name)`.
pub fn is_read_only(guid: &Guid, name: &VarName) -> bool {
    READ_ONLY.iter().any(|v| v.is(guid, name))
}

/// [`is_read_only`] over raw UCS-2 units.
pub fn is_read_only_units(guid: &Guid, units: &[u16]) -> bool {
    READ_ONLY.iter().any(|v| v.is_units(guid, units))
}

/// The Secure Boot signature databases (EFI_SIGNATURE_LIST payloads the
/// firmware authenticates with the key hierarchy).
pub const SIGNATURE_DATABASES: [WellKnown; 6] = [PK, KEK, DB, DBX, DBT, DBR];

/// Whether `(guid, name)` is one of [`SIGNATURE_DATABASES`].
pub fn is_signature_database(guid: &Guid, name: &VarName) -> bool {
    SIGNATURE_DATABASES.iter().any(|v| v.is(guid, name))
}

/// [`is_signature_database`] over raw UCS-2 units.
pub fn is_signature_database_units(guid: &Guid, units: &[u16]) -> bool {
    SIGNATURE_DATABASES.iter().any(|v| v.is_units(guid, units))
}

/// Other variables holding EFI_SIGNATURE_LISTs: the factory defaults and
/// shim's MOK lists (displayed as databases, not authenticated as such).
pub const OTHER_SIGNATURE_LISTS: [WellKnown; 10] = [
    PK_DEFAULT,
    KEK_DEFAULT,
    DB_DEFAULT,
    DBX_DEFAULT,
    DBT_DEFAULT,
    MOK_LIST,
    MOK_LIST_X,
    MOK_LIST_RT,
    MOK_LIST_X_RT,
    MOK_LIST_TRUSTED,
];

/// Whether the variable's data is a list of EFI_SIGNATURE_LISTs.
pub fn holds_signature_lists(guid: &Guid, name: &VarName) -> bool {
    is_signature_database(guid, name) || OTHER_SIGNATURE_LISTS.iter().any(|v| v.is(guid, name))
}

/// Prefixes of the numbered load options (`Boot0001`, UEFI 2.10 §3.1.3).
pub const LOAD_OPTION_PREFIXES: [&str; 4] = ["Boot", "Driver", "SysPrep", "PlatformRecovery"];

/// `Boot####`-style name: the prefix and the option number, if `name` is
/// a prefix followed by exactly four upper-case hex digits.
pub fn load_option(name: &str) -> Option<(&'static str, u16)> {
    LOAD_OPTION_PREFIXES.into_iter().find_map(|p| {
        let digits = name.strip_prefix(p)?;
        let upper_hex = digits
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b));
        if digits.len() != 4 || !upper_hex {
            return None;
        }
        u16::from_str_radix(digits, 16).ok().map(|n| (p, n))
    })
}

/// One signature type of EFI_SIGNATURE_LIST (UEFI 2.10 §32.4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignatureType {
    /// The SignatureType GUID.
    pub guid: Guid,
    /// Short name for display (`X509`, `SHA256`, ...).
    pub name: &'static str,
    /// Size of each signature's data after the owner GUID; `None` where it
    /// varies (X.509 certificates).
    pub data_size: Option<usize>,
}

const fn sig(guid: Guid, name: &'static str, data_size: Option<usize>) -> SignatureType {
    SignatureType {
        guid,
        name,
        data_size,
    }
}

/// The signature types edk2 accepts in the Secure Boot databases
/// (AuthVariableLib `mSupportSigItem`).
pub const SIGNATURE_TYPES: [SignatureType; 12] = [
    sig(guid::CERT_SHA256, "SHA256", Some(32)),
    sig(guid::CERT_RSA2048, "RSA2048", Some(256)),
    sig(guid::CERT_RSA2048_SHA256, "RSA2048_SHA256", Some(256)),
    sig(guid::CERT_SHA1, "SHA1", Some(20)),
    sig(guid::CERT_RSA2048_SHA1, "RSA2048_SHA1", Some(256)),
    sig(guid::CERT_X509, "X509", None),
    sig(guid::CERT_SHA224, "SHA224", Some(28)),
    sig(guid::CERT_SHA384, "SHA384", Some(48)),
    sig(guid::CERT_SHA512, "SHA512", Some(64)),
    sig(guid::CERT_X509_SHA256, "X509_SHA256", Some(48)),
    sig(guid::CERT_X509_SHA384, "X509_SHA384", Some(64)),
    sig(guid::CERT_X509_SHA512, "X509_SHA512", Some(80)),
];

/// The entry of [`SIGNATURE_TYPES`] for `guid`.
pub fn signature_type(guid: &Guid) -> Option<&'static SignatureType> {
    SIGNATURE_TYPES.iter().find(|t| t.guid == *guid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_only_list_is_edk2s() {
        // AuthVariableLib's read-only variables, by name.
        let names: Vec<&str> = READ_ONLY.iter().map(|v| v.name).collect();
        let edk2 = "SetupMode SecureBoot SignatureSupport VendorKeys VendorKeysNv AuditMode \
                    DeployedMode PKDefault KEKDefault dbDefault dbxDefault dbtDefault";
        assert_eq!(names, edk2.split_whitespace().collect::<Vec<_>>());
        assert!(is_read_only(
            &guid::GLOBAL_VARIABLE,
            &VarName::from("SetupMode")
        ));
        assert!(!is_read_only(
            &guid::GLOBAL_VARIABLE,
            &VarName::from("SetupModeX")
        ));
        assert!(!is_read_only(
            &guid::IMAGE_SECURITY_DATABASE,
            &VarName::from("SetupMode")
        ));
    }

    #[test]
    fn databases_and_names() {
        assert!(is_signature_database(
            &guid::IMAGE_SECURITY_DATABASE,
            &VarName::from("dbx")
        ));
        assert!(!is_signature_database(
            &guid::GLOBAL_VARIABLE,
            &VarName::from("dbx")
        ));
        assert!(PK.is_units(&guid::GLOBAL_VARIABLE, &[u16::from(b'P'), u16::from(b'K')]));
        assert!(!PK.is_units(&guid::GLOBAL_VARIABLE, &[u16::from(b'P')]));
        assert!(holds_signature_lists(
            &guid::SHIM_LOCK,
            &VarName::from("MokList")
        ));
        assert_eq!(load_option("Boot000A"), Some(("Boot", 10)));
        assert_eq!(load_option("Boot000a"), None);
        assert_eq!(load_option("BootOrder"), None);
        assert_eq!(
            load_option("PlatformRecovery0001"),
            Some(("PlatformRecovery", 1))
        );
        assert_eq!(
            signature_type(&guid::CERT_SHA384).map(|t| t.data_size),
            Some(Some(48))
        );
        assert_eq!(
            signature_type(&guid::CERT_X509).map(|t| t.name),
            Some("X509")
        );
        assert_eq!(signature_type(&guid::GLOBAL_VARIABLE), None);
    }
}
