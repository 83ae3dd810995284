//! VarCheck: per-variable properties and the checks edk2's variable driver
//! makes in `VarCheckLibSetVariableCheck` (MdeModulePkg/Library/VarCheckLib/
//! VarCheckLib.c, edk2-stable202605) before it looks the variable up, with
//! the properties and data checks VarCheckUefiLib registers for the
//! UEFI-defined variables (MdeModulePkg/Library/VarCheckUefiLib/
//! VarCheckUefiLibNullClass.c), which OVMF links into its variable driver
//! (OvmfPkg/OvmfPkgX64.dsc).
//!
//! A property (VAR_CHECK_VARIABLE_PROPERTY) gives a variable a read-only
//! flag, the exact attributes it must be written with and its minimum and
//! maximum size. The guest may add or replace properties (function
//! VAR_CHECK_VARIABLE_PROPERTY_SET) until EndOfDxe; nothing is checked
//! before EndOfDxe (docs/reference/varcheck.md).

use crate::guid::{Guid, GLOBAL_VARIABLE, HARDWARE_ERROR_VARIABLE, IMAGE_SECURITY_DATABASE};
use crate::name::VarName;
use crate::status::EfiStatus;
use crate::variable::attr;

/// VAR_CHECK_VARIABLE_PROPERTY_REVISION.
pub const PROPERTY_REVISION: u16 = 0x0001;
/// VAR_CHECK_VARIABLE_PROPERTY_READ_ONLY.
pub const PROPERTY_READ_ONLY: u16 = 0x0001;

/// VAR_CHECK_VARIABLE_PROPERTY (UINTN sizes kept as u64).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Property {
    /// Structure revision ([`PROPERTY_REVISION`]).
    pub revision: u16,
    /// Property flags ([`PROPERTY_READ_ONLY`]).
    pub flags: u16,
    /// 0: any attributes; else the exact attributes (APPEND_WRITE aside).
    pub attributes: u32,
    /// Smallest accepted DataSize.
    pub min_size: u64,
    /// Largest accepted DataSize.
    pub max_size: u64,
}

impl Property {
    const fn uefi(attributes: u32, min_size: u64, max_size: u64) -> Self {
        Property {
            revision: PROPERTY_REVISION,
            flags: 0,
            attributes,
            min_size,
            max_size,
        }
    }

    const fn read_only(attributes: u32, min_size: u64, max_size: u64) -> Self {
        Property {
            flags: PROPERTY_READ_ONLY,
            ..Property::uefi(attributes, min_size, max_size)
        }
    }

    fn in_force(&self) -> bool {
        self.revision == PROPERTY_REVISION
    }
}

/// The data check VarCheckUefiLib makes for a UEFI-defined variable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DataCheck {
    None,
    /// InternalVarCheckAsciiString: a NUL somewhere in the data.
    AsciiString,
    /// InternalVarCheckDevicePath.
    DevicePath,
    /// InternalVarCheckSizeArray: DataSize a multiple of MinSize.
    SizeArray,
    /// InternalVarCheckLoadOption.
    LoadOption,
    /// InternalVarCheckKeyOption.
    KeyOption,
}

const BS_RT: u32 = attr::BOOTSERVICE_ACCESS | attr::RUNTIME_ACCESS;
const NV_BS_RT: u32 = attr::NON_VOLATILE | BS_RT;
const NV_BS_RT_AT: u32 = NV_BS_RT | attr::TIME_BASED_AUTHENTICATED_WRITE_ACCESS;
const NV_BS_RT_HR: u32 = NV_BS_RT | attr::HARDWARE_ERROR_RECORD;
const ANY: u64 = u64::MAX;
/// sizeof (EFI_DEVICE_PATH_PROTOCOL).
const DEVICE_PATH_NODE: u64 = 4;
/// sizeof (EFI_KEY_OPTION) (packed: KeyData, BootOptionCrc, BootOption),
/// sizeof (EFI_INPUT_KEY).
const KEY_OPTION: u64 = 10;
const INPUT_KEY: u64 = 4;
/// sizeof (UINT32) + sizeof (UINT16): Attributes and FilePathListLength.
const LOAD_OPTION_FIXED: u64 = 6;

/// One row of VarCheckUefiLib's tables.
struct UefiDefined {
    name: &'static str,
    property: Property,
    check: DataCheck,
}

const fn row(name: &'static str, property: Property, check: DataCheck) -> UefiDefined {
    UefiDefined {
        name,
        property,
        check,
    }
}

/// mGlobalVariableList (exact names in the global namespace).
const GLOBAL_LIST: &[UefiDefined] = &[
    row(
        "LangCodes",
        Property::uefi(BS_RT, 1, ANY),
        DataCheck::AsciiString,
    ),
    row(
        "Lang",
        Property::uefi(NV_BS_RT, 1, ANY),
        DataCheck::AsciiString,
    ),
    row("Timeout", Property::uefi(NV_BS_RT, 2, 2), DataCheck::None),
    row(
        "PlatformLangCodes",
        Property::uefi(BS_RT, 1, ANY),
        DataCheck::AsciiString,
    ),
    row(
        "PlatformLang",
        Property::uefi(NV_BS_RT, 1, ANY),
        DataCheck::AsciiString,
    ),
    row(
        "ConIn",
        Property::uefi(NV_BS_RT, DEVICE_PATH_NODE, ANY),
        DataCheck::DevicePath,
    ),
    row(
        "ConOut",
        Property::uefi(NV_BS_RT, DEVICE_PATH_NODE, ANY),
        DataCheck::DevicePath,
    ),
    row(
        "ErrOut",
        Property::uefi(NV_BS_RT, DEVICE_PATH_NODE, ANY),
        DataCheck::DevicePath,
    ),
    row(
        "ConInDev",
        Property::uefi(BS_RT, DEVICE_PATH_NODE, ANY),
        DataCheck::DevicePath,
    ),
    row(
        "ConOutDev",
        Property::uefi(BS_RT, DEVICE_PATH_NODE, ANY),
        DataCheck::DevicePath,
    ),
    row(
        "ErrOutDev",
        Property::uefi(BS_RT, DEVICE_PATH_NODE, ANY),
        DataCheck::DevicePath,
    ),
    row(
        "BootOrder",
        Property::uefi(NV_BS_RT, 2, ANY),
        DataCheck::SizeArray,
    ),
    row("BootNext", Property::uefi(NV_BS_RT, 2, 2), DataCheck::None),
    row("BootCurrent", Property::uefi(BS_RT, 2, 2), DataCheck::None),
    row(
        "BootOptionSupport",
        Property::uefi(BS_RT, 4, 4),
        DataCheck::None,
    ),
    row(
        "DriverOrder",
        Property::uefi(NV_BS_RT, 2, ANY),
        DataCheck::SizeArray,
    ),
    row(
        "SysPrepOrder",
        Property::uefi(NV_BS_RT, 2, ANY),
        DataCheck::SizeArray,
    ),
    row(
        "HwErrRecSupport",
        Property::uefi(NV_BS_RT, 2, 2),
        DataCheck::None,
    ),
    row(
        "SetupMode",
        Property::read_only(BS_RT, 1, 1),
        DataCheck::None,
    ),
    row("KEK", Property::uefi(NV_BS_RT_AT, 1, ANY), DataCheck::None),
    row("PK", Property::uefi(NV_BS_RT_AT, 1, ANY), DataCheck::None),
    row(
        "SignatureSupport",
        Property::read_only(BS_RT, 16, ANY),
        DataCheck::SizeArray,
    ),
    row(
        "SecureBoot",
        Property::read_only(BS_RT, 1, 1),
        DataCheck::None,
    ),
    row(
        "KEKDefault",
        Property::read_only(BS_RT, 1, ANY),
        DataCheck::None,
    ),
    row(
        "PKDefault",
        Property::read_only(BS_RT, 1, ANY),
        DataCheck::None,
    ),
    row(
        "dbDefault",
        Property::read_only(BS_RT, 1, ANY),
        DataCheck::None,
    ),
    row(
        "dbxDefault",
        Property::read_only(BS_RT, 1, ANY),
        DataCheck::None,
    ),
    row(
        "dbtDefault",
        Property::read_only(BS_RT, 1, ANY),
        DataCheck::None,
    ),
    row(
        "OsIndicationsSupported",
        Property::uefi(BS_RT, 8, 8),
        DataCheck::None,
    ),
    row(
        "OsIndications",
        Property::uefi(NV_BS_RT, 8, 8),
        DataCheck::None,
    ),
    row(
        "VendorKeys",
        Property::read_only(BS_RT, 1, 1),
        DataCheck::None,
    ),
];

/// mGlobalVariableList2: names ending in four upper-case hex digits.
const GLOBAL_WILDCARD_LIST: &[UefiDefined] = &[
    row(
        "Boot####",
        Property::uefi(NV_BS_RT, LOAD_OPTION_FIXED, ANY),
        DataCheck::LoadOption,
    ),
    row(
        "Driver####",
        Property::uefi(NV_BS_RT, LOAD_OPTION_FIXED, ANY),
        DataCheck::LoadOption,
    ),
    row(
        "SysPrep####",
        Property::uefi(NV_BS_RT, LOAD_OPTION_FIXED, ANY),
        DataCheck::LoadOption,
    ),
    row(
        "Key####",
        Property::uefi(NV_BS_RT, KEY_OPTION, KEY_OPTION + 3 * INPUT_KEY),
        DataCheck::KeyOption,
    ),
    row(
        "PlatformRecovery####",
        Property::uefi(BS_RT, LOAD_OPTION_FIXED, ANY),
        DataCheck::LoadOption,
    ),
];

/// mImageSecurityVariableList.
const IMAGE_SECURITY_LIST: &[&str] = &["db", "dbx", "dbt"];

/// The wildcard names VarCheckLib itself knows (mVarCheckVariableWithWildcardName).
const WILDCARD_NAMES: &[(Guid, &str)] = &[
    (GLOBAL_VARIABLE, "Boot####"),
    (GLOBAL_VARIABLE, "Driver####"),
    (GLOBAL_VARIABLE, "SysPrep####"),
    (GLOBAL_VARIABLE, "Key####"),
    (GLOBAL_VARIABLE, "PlatformRecovery####"),
    (HARDWARE_ERROR_VARIABLE, "HwErrRec####"),
];

/// The namespaces VarCheckUefiLib owns: a variable there without a
/// property is refused (mUefiDefinedGuid).
const UEFI_DEFINED_NAMESPACES: &[Guid] = &[
    GLOBAL_VARIABLE,
    IMAGE_SECURITY_DATABASE,
    HARDWARE_ERROR_VARIABLE,
];

/// Whether VarCheckUefiLib owns this namespace: after EndOfDxe a write
/// there of a variable without a property is refused.
pub fn is_uefi_defined_namespace(guid: &Guid) -> bool {
    UEFI_DEFINED_NAMESPACES.contains(guid)
}

/// Upper-case hex digit (VarCheckInternalIsHexaDecimalDigitCharacter).
fn is_upper_hex(u: u16) -> bool {
    matches!(u, 0x30..=0x39 | 0x41..=0x46)
}

fn units(s: &str) -> Vec<u16> {
    s.encode_utf16().collect()
}

/// `name` matches `pattern` whose last four characters are `####`:
/// same length, same prefix, four upper-case hex digits.
fn wildcard_match(pattern: &str, name: &[u16]) -> bool {
    let p = units(pattern);
    let Some(prefix) = p.len().checked_sub(4) else {
        return false;
    };
    name.len() == p.len()
        && name.get(..prefix) == p.get(..prefix)
        && name
            .get(prefix..)
            .is_some_and(|t| t.iter().all(|&u| is_upper_hex(u)))
}

/// Limits that keep a guest from growing host memory through properties.
pub const MAX_PROPERTIES: usize = 1024;

/// The property table (VarCheckLib's mVarCheckVariableTable and its
/// wildcard table) and whether registration is closed.
#[derive(Clone, Debug)]
pub struct VarCheck {
    exact: Vec<(Guid, VarName, Property)>,
    /// Properties of the wildcard names (revision 0: none set).
    wildcard: Vec<(Guid, &'static str, Property)>,
    /// EndOfDxe: properties are enforced, no more can be set.
    end_of_dxe: bool,
}

impl Default for VarCheck {
    fn default() -> Self {
        VarCheck::new()
    }
}

impl VarCheck {
    /// The table after VarCheckUefiLib's constructor
    /// (VariablePropertySetUefiDefined).
    pub fn new() -> Self {
        let none = Property {
            revision: 0,
            flags: 0,
            attributes: 0,
            min_size: 0,
            max_size: 0,
        };
        let mut v = VarCheck {
            exact: Vec::new(),
            wildcard: WILDCARD_NAMES.iter().map(|&(g, n)| (g, n, none)).collect(),
            end_of_dxe: false,
        };
        let defaults = GLOBAL_LIST
            .iter()
            .chain(GLOBAL_WILDCARD_LIST)
            .map(|r| (GLOBAL_VARIABLE, r.name, r.property))
            .chain(IMAGE_SECURITY_LIST.iter().map(|&n| {
                (
                    IMAGE_SECURITY_DATABASE,
                    n,
                    Property::uefi(NV_BS_RT_AT, 1, ANY),
                )
            }))
            .chain(std::iter::once((
                HARDWARE_ERROR_VARIABLE,
                "HwErrRec####",
                Property::uefi(NV_BS_RT_HR, 1, ANY),
            )));
        for (guid, name, property) in defaults {
            let _ = v.set(&guid, &VarName::from(name), property);
        }
        v
    }

    /// EndOfDxe: enforcement on, registration closed (VarCheckLibInitializeAtEndOfDxe).
    pub fn end_of_dxe(&mut self) {
        self.end_of_dxe = true;
    }

    /// Whether registration is closed (EndOfDxe has passed).
    pub fn is_closed(&self) -> bool {
        self.end_of_dxe
    }

    /// The slot of `name` without wildcard matching (VariablePropertyGetFunction
    /// with WildcardMatch FALSE).
    fn slot_mut(&mut self, guid: &Guid, name: &VarName) -> Option<&mut Property> {
        if let Some(i) = self
            .exact
            .iter()
            .position(|(g, n, _)| g == guid && n == name)
        {
            return self.exact.get_mut(i).map(|(_, _, p)| p);
        }
        self.wildcard
            .iter_mut()
            .find(|(g, n, _)| g == guid && name.units() == units(n).as_slice())
            .map(|(_, _, p)| p)
    }

    /// VarCheckLibVariablePropertySet.
    pub fn set(
        &mut self,
        guid: &Guid,
        name: &VarName,
        property: Property,
    ) -> Result<(), EfiStatus> {
        if name.is_empty() || property.revision != PROPERTY_REVISION {
            return Err(EfiStatus::INVALID_PARAMETER);
        }
        if self.end_of_dxe {
            return Err(EfiStatus::ACCESS_DENIED);
        }
        if let Some(slot) = self.slot_mut(guid, name) {
            *slot = property;
            return Ok(());
        }
        if self.exact.len() >= MAX_PROPERTIES {
            return Err(EfiStatus::OUT_OF_RESOURCES);
        }
        self.exact.push((*guid, name.clone(), property));
        Ok(())
    }

    /// The property in force for a variable (VariablePropertyGetFunction with
    /// WildcardMatch TRUE, revision checked).
    pub fn property(&self, guid: &Guid, name: &VarName) -> Option<Property> {
        let exact = self
            .exact
            .iter()
            .find(|(g, n, _)| g == guid && n == name)
            .map(|(_, _, p)| *p);
        let found = exact.or_else(|| {
            self.wildcard
                .iter()
                .find(|(g, n, _)| {
                    g == guid
                        && (wildcard_match(n, name.units()) || name.units() == units(n).as_slice())
                })
                .map(|(_, _, p)| *p)
        });
        found.filter(Property::in_force)
    }

    /// VarCheckLibVariablePropertyGet.
    pub fn get(&self, guid: &Guid, name: &VarName) -> Result<Property, EfiStatus> {
        if name.is_empty() {
            return Err(EfiStatus::INVALID_PARAMETER);
        }
        self.property(guid, name).ok_or(EfiStatus::NOT_FOUND)
    }

    /// VarCheckLibSetVariableCheck for a guest request (untrusted source):
    /// the property check, then VarCheckUefiLib's handler. `payload` is the
    /// data after any authentication descriptor. The policy handler
    /// (ValidateSetVariable) is the policy engine's.
    pub fn check_write(
        &self,
        guid: &Guid,
        name: &VarName,
        attributes: u32,
        payload: &[u8],
    ) -> Result<(), EfiStatus> {
        if !self.end_of_dxe {
            return Ok(());
        }
        let size = payload.len() as u64;
        let delete = (attributes & attr::APPEND_WRITE == 0 && size == 0) || attributes == 0;
        if let Some(p) = self.property(guid, name) {
            if p.flags & PROPERTY_READ_ONLY != 0 {
                return Err(EfiStatus::WRITE_PROTECTED);
            }
            if !delete {
                if p.attributes != 0 && attributes & !attr::APPEND_WRITE != p.attributes {
                    return Err(EfiStatus::INVALID_PARAMETER);
                }
                if size != 0 && (size < p.min_size || size > p.max_size) {
                    return Err(EfiStatus::INVALID_PARAMETER);
                }
            }
        }
        if delete {
            return Ok(());
        }
        self.check_uefi_defined(guid, name, attributes, payload)
    }

    /// SetVariableCheckHandlerUefiDefined (a delete never gets here).
    fn check_uefi_defined(
        &self,
        guid: &Guid,
        name: &VarName,
        attributes: u32,
        payload: &[u8],
    ) -> Result<(), EfiStatus> {
        if attributes & attr::HARDWARE_ERROR_RECORD != 0
            && !(*guid == HARDWARE_ERROR_VARIABLE && wildcard_match("HwErrRec####", name.units()))
        {
            return Err(EfiStatus::INVALID_PARAMETER);
        }
        if UEFI_DEFINED_NAMESPACES.contains(guid) && self.property(guid, name).is_none() {
            return Err(EfiStatus::INVALID_PARAMETER);
        }
        if payload.is_empty() || *guid != GLOBAL_VARIABLE {
            return Ok(());
        }
        let Some(r) = uefi_defined_row(name) else {
            return Ok(());
        };
        let size = payload.len() as u64;
        let ok = match r.check {
            DataCheck::None => true,
            DataCheck::AsciiString => payload.contains(&0),
            DataCheck::DevicePath => device_path_valid(payload),
            DataCheck::SizeArray => size
                .checked_rem(r.property.min_size)
                .is_some_and(|rest| rest == 0),
            DataCheck::LoadOption => load_option_valid(payload),
            // (DataSize - sizeof (EFI_KEY_OPTION)) % sizeof (EFI_INPUT_KEY)
            // in UINTN arithmetic.
            DataCheck::KeyOption => size.wrapping_sub(KEY_OPTION) % INPUT_KEY == 0,
        };
        if ok {
            Ok(())
        } else {
            Err(EfiStatus::INVALID_PARAMETER)
        }
    }
}

/// GetUefiDefinedVarCheckFunction: the row (and its check) of a global
/// variable name.
fn uefi_defined_row(name: &VarName) -> Option<&'static UefiDefined> {
    GLOBAL_LIST
        .iter()
        .find(|r| name.units() == units(r.name).as_slice())
        .or_else(|| {
            GLOBAL_WILDCARD_LIST
                .iter()
                .find(|r| wildcard_match(r.name, name.units()))
        })
}

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    crate::codec::u16_at(b, off, "UINT16").ok()
}

/// edk2 IsDevicePathValid (MdePkg/Library/UefiDevicePathLib/
/// DevicePathUtilities.c) with MaxSize = `path.len()` and no node limit
/// (PcdMaximumDevicePathNodeCount 0): every node at least 4 bytes, inside
/// the area with room for the end node, FilePath nodes NUL-terminated, and
/// an End-Entire node of length 4.
pub fn device_path_valid(path: &[u8]) -> bool {
    const END_LENGTH: usize = 4;
    let Some(limit) = path.len().checked_sub(END_LENGTH) else {
        return false;
    };
    let mut off = 0usize;
    loop {
        let (Some(&ty), Some(&sub), Some(len)) = (
            path.get(off),
            path.get(off.wrapping_add(1)),
            u16_at(path, off.wrapping_add(2)),
        ) else {
            return false;
        };
        let len = usize::from(len);
        if ty == 0x7f && sub == 0xff {
            return len == END_LENGTH;
        }
        if len < END_LENGTH {
            return false;
        }
        let Some(next) = off.checked_add(len).filter(|&n| n <= limit) else {
            return false;
        };
        // MEDIA_DEVICE_PATH / MEDIA_FILEPATH_DP must end in a NUL.
        if ty == 4 && sub == 4 && u16_at(path, next.wrapping_sub(2)) != Some(0) {
            return false;
        }
        off = next;
    }
}

/// InternalVarCheckLoadOption: a description NUL-terminated inside the
/// data, then FilePathListLength bytes (at least 4) of a valid device path.
pub fn load_option_valid(data: &[u8]) -> bool {
    let Some(path_len) = u16_at(data, 4) else {
        return false;
    };
    let mut off = 6usize;
    // The description: UCS-2 units up to a NUL inside the data.
    loop {
        match u16_at(data, off) {
            Some(0) => break,
            Some(_) => off = off.wrapping_add(2),
            // A unit that starts inside the data but ends past it: edk2
            // reads one byte beyond and finds no NUL there it may use.
            None => return false,
        }
    }
    let start = off.wrapping_add(2);
    let len = usize::from(path_len);
    let Some(path) = start.checked_add(len).and_then(|end| data.get(start..end)) else {
        return false;
    };
    len >= 4 && device_path_valid(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> VarName {
        VarName::from(s)
    }

    const END: [u8; 4] = [0x7f, 0xff, 4, 0];

    fn load_option(desc: &str, path: &[u8]) -> Vec<u8> {
        let mut d = 1u32.to_le_bytes().to_vec();
        d.extend_from_slice(&(path.len() as u16).to_le_bytes());
        d.extend_from_slice(&name(desc).to_wire());
        d.extend_from_slice(path);
        d
    }

    #[test]
    fn device_paths_as_is_device_path_valid() {
        assert!(device_path_valid(&END));
        assert!(!device_path_valid(&END[..3]));
        assert!(!device_path_valid(&[0x7f, 0xff, 5, 0, 0]));
        let mut pci = vec![1, 1, 6, 0, 0, 1];
        pci.extend_from_slice(&END);
        assert!(device_path_valid(&pci));
        assert!(!device_path_valid(&pci[..6]), "no end node");
        let short_node = [1, 1, 2, 0, 0x7f, 0xff, 4, 0];
        assert!(!device_path_valid(&short_node));
        // FilePath "a" with and without its NUL.
        let mut file = vec![4, 4, 8, 0, b'a', 0, 0, 0];
        file.extend_from_slice(&END);
        assert!(device_path_valid(&file));
        file[6] = b'b';
        assert!(!device_path_valid(&file));
    }

    #[test]
    fn load_options_as_internal_var_check_load_option() {
        assert!(load_option_valid(&load_option("UEFI Shell", &END)));
        assert!(!load_option_valid(&load_option("x", &[])), "empty path");
        let mut truncated = load_option("x", &END);
        truncated.pop();
        assert!(!load_option_valid(&truncated));
        let mut no_nul = 1u32.to_le_bytes().to_vec();
        no_nul.extend_from_slice(&4u16.to_le_bytes());
        no_nul.extend_from_slice(&[b'a', 0, b'b', 0]);
        assert!(!load_option_valid(&no_nul));
        assert!(!load_option_valid(&[1, 0, 0, 0, 4]));
    }

    #[test]
    fn properties_follow_var_check_lib() {
        let mut v = VarCheck::new();
        let boot = v.get(&GLOBAL_VARIABLE, &name("Boot000A")).unwrap();
        assert_eq!(boot.attributes, NV_BS_RT);
        assert_eq!(boot.min_size, 6);
        assert_eq!(
            v.get(&GLOBAL_VARIABLE, &name("Boot000a")),
            Err(EfiStatus::NOT_FOUND),
            "lower-case hex is not a wildcard match"
        );
        assert_eq!(
            v.get(&GLOBAL_VARIABLE, &name("")),
            Err(EfiStatus::INVALID_PARAMETER)
        );
        let mine = Property::uefi(attr::BOOTSERVICE_ACCESS, 1, 4);
        v.set(&Guid::default(), &name("Mine"), mine).unwrap();
        assert_eq!(v.get(&Guid::default(), &name("Mine")), Ok(mine));
        let bad = Property {
            revision: 2,
            ..mine
        };
        assert_eq!(
            v.set(&Guid::default(), &name("Mine"), bad),
            Err(EfiStatus::INVALID_PARAMETER)
        );
        v.end_of_dxe();
        assert_eq!(
            v.set(&Guid::default(), &name("Other"), mine),
            Err(EfiStatus::ACCESS_DENIED)
        );
    }

    #[test]
    fn checks_only_after_end_of_dxe() {
        let mut v = VarCheck::new();
        let g = GLOBAL_VARIABLE;
        assert_eq!(
            v.check_write(&g, &name("BootOrder"), NV_BS_RT, &[1]),
            Ok(())
        );
        v.end_of_dxe();
        assert_eq!(
            v.check_write(&g, &name("BootOrder"), NV_BS_RT, &[1]),
            Err(EfiStatus::INVALID_PARAMETER),
            "below MinSize"
        );
        assert_eq!(
            v.check_write(&g, &name("BootOrder"), NV_BS_RT, &[1, 0, 2]),
            Err(EfiStatus::INVALID_PARAMETER),
            "odd size"
        );
        assert_eq!(
            v.check_write(&g, &name("BootOrder"), NV_BS_RT, &[1, 0, 2, 0]),
            Ok(())
        );
        assert_eq!(
            v.check_write(&g, &name("BootOrder"), BS_RT, &[1, 0]),
            Err(EfiStatus::INVALID_PARAMETER),
            "attributes must be exact"
        );
        assert_eq!(
            v.check_write(
                &g,
                &name("BootOrder"),
                NV_BS_RT | attr::APPEND_WRITE,
                &[1, 0]
            ),
            Ok(())
        );
        assert_eq!(
            v.check_write(&g, &name("NotDefined"), NV_BS_RT, &[1]),
            Err(EfiStatus::INVALID_PARAMETER)
        );
        assert_eq!(
            v.check_write(&g, &name("NotDefined"), NV_BS_RT, &[]),
            Ok(())
        );
        assert_eq!(
            v.check_write(&g, &name("SecureBoot"), BS_RT, &[]),
            Err(EfiStatus::WRITE_PROTECTED),
            "read-only even for a delete"
        );
        assert_eq!(
            v.check_write(&g, &name("Lang"), NV_BS_RT, b"eng"),
            Err(EfiStatus::INVALID_PARAMETER)
        );
        assert_eq!(v.check_write(&g, &name("Lang"), NV_BS_RT, b"eng\0"), Ok(()));
        assert_eq!(
            v.check_write(
                &g,
                &name("Boot0001"),
                NV_BS_RT,
                &load_option("x", &END[..3])
            ),
            Err(EfiStatus::INVALID_PARAMETER)
        );
        let other = Guid::from_fields(1, 2, 3, [4; 8]);
        assert_eq!(
            v.check_write(
                &other,
                &name("Anything"),
                attr::HARDWARE_ERROR_RECORD | NV_BS_RT,
                &[1]
            ),
            Err(EfiStatus::INVALID_PARAMETER)
        );
        assert_eq!(
            v.check_write(
                &HARDWARE_ERROR_VARIABLE,
                &name("HwErrRec0001"),
                NV_BS_RT_HR,
                &[1]
            ),
            Ok(())
        );
        assert_eq!(
            v.check_write(&IMAGE_SECURITY_DATABASE, &name("dbr"), NV_BS_RT_AT, &[1]),
            Err(EfiStatus::INVALID_PARAMETER),
            "dbr has no property in VarCheckUefiLib"
        );
    }
}
