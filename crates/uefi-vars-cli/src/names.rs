//! Well-known vendor and owner GUIDs, by name: accepted wherever a GUID is
//! (`--guid`, `--owner`) and shown next to the GUID by `list` and `get`.
//! Values from edk2 (MdePkg/MdePkg.dec, MdeModulePkg/MdeModulePkg.dec,
//! SecurityPkg/SecurityPkg.dec), shim (shim.h) and systemd-boot.

use uefi_vars::guid::{self, Guid};

/// (display name, other accepted names, GUID): the library's typed
/// constants (crates/uefi-vars/src/guid.rs) where it has them, the others
/// only named here.
const TABLE: &[(&str, &[&str], Guid)] = &[
    (
        "EfiGlobalVariable",
        &["global", "efi-global"],
        guid::GLOBAL_VARIABLE,
    ),
    (
        "EfiImageSecurityDatabase",
        &["db", "image-security"],
        guid::IMAGE_SECURITY_DATABASE,
    ),
    (
        "SecureBootEnableDisable",
        &["secureboot", "secure-boot-enable"],
        guid::SECURE_BOOT_ENABLE_DISABLE,
    ),
    (
        "CustomModeEnable",
        &["custommode", "custom-mode"],
        guid::CUSTOM_MODE_ENABLE,
    ),
    (
        "VendorKeysNv",
        &["vendor-keys"],
        Guid::from_fields(
            0x9073_e4e0,
            0x60ec,
            0x4b6e,
            [0x99, 0x03, 0x4c, 0x22, 0x3c, 0x26, 0x0f, 0x3c],
        ),
    ),
    (
        "CertDb",
        &["certdb"],
        Guid::from_fields(
            0xd9be_e56e,
            0x75dc,
            0x49d9,
            [0xb4, 0xd7, 0xb5, 0x34, 0x21, 0x0f, 0x63, 0x7a],
        ),
    ),
    ("ShimLock", &["shim", "shim-lock", "mok"], guid::SHIM_LOCK),
    (
        "MemoryTypeInformation",
        &["memory-type-information"],
        Guid::from_fields(
            0x4c19_049f,
            0x4137,
            0x4dd3,
            [0x9c, 0x10, 0x8b, 0x97, 0xa8, 0x3f, 0xfd, 0xfa],
        ),
    ),
    (
        "MtcVendor",
        &["mtc"],
        Guid::from_fields(
            0xeb70_4011,
            0x1402,
            0x11d3,
            [0x8e, 0x77, 0x00, 0xa0, 0xc9, 0x69, 0x72, 0x3b],
        ),
    ),
    (
        "VarErrorFlag",
        &["var-error-flag"],
        Guid::from_fields(
            0x04b3_7fe8,
            0xf6ae,
            0x480b,
            [0xbd, 0xd5, 0x37, 0xd9, 0x8c, 0x5e, 0x89, 0xaa],
        ),
    ),
    (
        "IScsiConfig",
        &["iscsi"],
        Guid::from_fields(
            0x4b47_d616,
            0xa8d6,
            0x4552,
            [0x9d, 0x44, 0xcc, 0xad, 0x2e, 0x0f, 0x4c, 0xf9],
        ),
    ),
    (
        // The vendor of iSCSI's "Attempt N" variables (edk2
        // NetworkPkg/IScsiDxe: EFI_ISCSI_INITIATOR_NAME_PROTOCOL_GUID).
        "IScsiInitiatorName",
        &["iscsi-initiator-name"],
        Guid::from_fields(
            0x5932_4945,
            0xec44,
            0x4c0d,
            [0xb1, 0xcd, 0x9d, 0xb1, 0x39, 0xdf, 0x07, 0x0c],
        ),
    ),
    (
        "SystemdBootLoader",
        &["systemd-boot", "loader"],
        Guid::from_fields(
            0x4a67_b082,
            0x0a4c,
            0x41cf,
            [0xb6, 0xc7, 0x44, 0x0b, 0x29, 0xbb, 0x8c, 0x4f],
        ),
    ),
    ("MicrosoftOwner", &["microsoft"], guid::MICROSOFT_VENDOR),
    (
        // The owner virt-fw-vars writes for the keys it enrolls that are not
        // Microsoft's, and for its placeholder dbx entry (virt-firmware
        // efi/guids.py; crates/uefi-vars/src/guid.rs).
        "OvmfEnrollDefaultKeys",
        &["ovmf-enroll-default-keys"],
        guid::OVMF_ENROLL_DEFAULT_KEYS,
    ),
    ("EfiCertX509", &["x509"], guid::CERT_X509),
    ("EfiCertSha256", &["sha256"], guid::CERT_SHA256),
];

fn entries() -> impl Iterator<Item = (&'static str, &'static [&'static str], Guid)> {
    TABLE.iter().map(|(n, aliases, g)| (*n, *aliases, *g))
}

/// The display name of a well-known GUID.
pub fn name_of(g: &Guid) -> Option<&'static str> {
    entries().find(|(_, _, x)| x == g).map(|(n, _, _)| n)
}

/// A GUID in text form (with or without braces, either case) or by name.
pub fn parse_guid(text: &str) -> Result<Guid, String> {
    let t = text.trim();
    let lower = t.to_ascii_lowercase();
    if let Some((_, _, g)) = entries()
        .find(|(n, aliases, _)| n.eq_ignore_ascii_case(t) || aliases.contains(&lower.as_str()))
    {
        return Ok(g);
    }
    let bare = t
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .unwrap_or(t);
    bare.parse().map_err(|_: guid::GuidParseError| {
        format!(
            "{text:?} is neither a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, braces allowed) \
             nor a known name ({})",
            TABLE
                .iter()
                .map(|(_, a, _)| a.first().copied().unwrap_or(""))
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The GUIDs named only here, against their text in edk2's .dec files,
    /// shim and systemd; and no GUID or name twice.
    #[test]
    fn table_values_and_uniqueness() {
        for (name, text) in [
            ("VendorKeysNv", "9073e4e0-60ec-4b6e-9903-4c223c260f3c"),
            ("CertDb", "d9bee56e-75dc-49d9-b4d7-b534210f637a"),
            (
                "MemoryTypeInformation",
                "4c19049f-4137-4dd3-9c10-8b97a83ffdfa",
            ),
            ("MtcVendor", "eb704011-1402-11d3-8e77-00a0c969723b"),
            ("VarErrorFlag", "04b37fe8-f6ae-480b-bdd5-37d98c5e89aa"),
            ("IScsiConfig", "4b47d616-a8d6-4552-9d44-ccad2e0f4cf9"),
            ("IScsiInitiatorName", "59324945-ec44-4c0d-b1cd-9db139df070c"),
            ("SystemdBootLoader", "4a67b082-0a4c-41cf-b6c7-440b29bb8c4f"),
        ] {
            assert_eq!(parse_guid(name).unwrap().to_string(), text, "{name}");
        }
        let mut guids: Vec<Guid> = entries().map(|(_, _, g)| g).collect();
        // Each entry's spellings once (an alias may repeat its own name).
        let mut names: Vec<String> = entries()
            .flat_map(|(n, a, _)| {
                let mut own: Vec<String> = a.iter().map(|x| x.to_string()).collect();
                own.push(n.to_ascii_lowercase());
                own.sort();
                own.dedup();
                own
            })
            .collect();
        let (g, n) = (guids.len(), names.len());
        guids.sort();
        guids.dedup();
        names.sort();
        names.dedup();
        assert_eq!((guids.len(), names.len()), (g, n));
    }

    #[test]
    fn guids_without_a_library_constant_keep_their_text() {
        // MdeModulePkg.dec gMemoryTypeInformationGuid, SecurityPkg.dec
        // gEfiCertDbGuid, systemd-boot's loader vendor GUID.
        for (name, text) in [
            (
                "memory-type-information",
                "4c19049f-4137-4dd3-9c10-8b97a83ffdfa",
            ),
            ("certdb", "d9bee56e-75dc-49d9-b4d7-b534210f637a"),
            ("loader", "4a67b082-0a4c-41cf-b6c7-440b29bb8c4f"),
        ] {
            assert_eq!(parse_guid(name).unwrap().to_string(), text);
        }
    }

    #[test]
    fn names_braces_and_case() {
        assert_eq!(parse_guid("global").unwrap(), guid::GLOBAL_VARIABLE);
        assert_eq!(
            parse_guid("EfiGlobalVariable").unwrap(),
            guid::GLOBAL_VARIABLE
        );
        assert_eq!(
            parse_guid("{D719B2CB-3D3A-4596-A3BC-DAD00E67656F}").unwrap(),
            guid::IMAGE_SECURITY_DATABASE
        );
        assert_eq!(
            parse_guid("secureboot").unwrap(),
            guid::SECURE_BOOT_ENABLE_DISABLE
        );
        assert_eq!(parse_guid("custommode").unwrap(), guid::CUSTOM_MODE_ENABLE);
        assert_eq!(parse_guid("x509").unwrap(), guid::CERT_X509);
        assert_eq!(parse_guid("sha256").unwrap(), guid::CERT_SHA256);
        let e = parse_guid("{nope}").unwrap_err();
        assert!(e.contains("known name") && e.contains("shim"), "{e}");
        assert_eq!(name_of(&guid::GLOBAL_VARIABLE), Some("EfiGlobalVariable"));
    }
}
