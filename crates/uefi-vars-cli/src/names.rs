//! Well-known vendor and owner GUIDs, by name: accepted wherever a GUID is
//! (`--guid`, `--owner`) and shown next to the GUID by `list` and `get`.
//! Values from edk2 (MdePkg/MdePkg.dec, MdeModulePkg/MdeModulePkg.dec,
//! SecurityPkg/SecurityPkg.dec), shim (shim.h) and systemd-boot.

use uefi_vars::guid::{self, Guid};

/// (display name, other accepted names, GUID text).
const TABLE: &[(&str, &[&str], &str)] = &[
    (
        "EfiGlobalVariable",
        &["global", "efi-global"],
        "8be4df61-93ca-11d2-aa0d-00e098032b8c",
    ),
    (
        "EfiImageSecurityDatabase",
        &["db", "image-security"],
        "d719b2cb-3d3a-4596-a3bc-dad00e67656f",
    ),
    (
        "SecureBootEnableDisable",
        &["secureboot", "secure-boot-enable"],
        "f0a30bc7-af08-4556-99c4-001009c93a44",
    ),
    (
        "CustomModeEnable",
        &["custommode", "custom-mode"],
        "c076ec0c-7028-4399-a072-71ee5c448b9f",
    ),
    (
        "VendorKeysNv",
        &["vendor-keys"],
        "9073e4e0-60ec-4b6e-9903-4c223c260f3c",
    ),
    (
        "CertDb",
        &["certdb"],
        "d9bee56e-75dc-49d9-b4d7-b534210f637a",
    ),
    (
        "ShimLock",
        &["shim", "shim-lock", "mok"],
        "605dab50-e046-4300-abb6-3dd810dd8b23",
    ),
    (
        "MemoryTypeInformation",
        &["memory-type-information"],
        "4c19049f-4137-4dd3-9c10-8b97a83ffdfa",
    ),
    (
        "MtcVendor",
        &["mtc"],
        "eb704011-1402-11d3-8e77-00a0c969723b",
    ),
    (
        "VarErrorFlag",
        &["var-error-flag"],
        "04b37fe8-f6ae-480b-bdd5-37d98c5e89aa",
    ),
    (
        "IScsiConfig",
        &["iscsi"],
        "4b47d616-a8d6-4552-9d44-ccad2e0f4cf9",
    ),
    (
        // The vendor of iSCSI's "Attempt N" variables (edk2
        // NetworkPkg/IScsiDxe: EFI_ISCSI_INITIATOR_NAME_PROTOCOL_GUID).
        "IScsiInitiatorName",
        &["iscsi-initiator-name"],
        "59324945-ec44-4c0d-b1cd-9db139df070c",
    ),
    (
        "SystemdBootLoader",
        &["systemd-boot", "loader"],
        "4a67b082-0a4c-41cf-b6c7-440b29bb8c4f",
    ),
    (
        "MicrosoftOwner",
        &["microsoft"],
        "77fa9abd-0359-4d32-bd60-28f4e78f784b",
    ),
    (
        // The owner virt-fw-vars writes for the keys it enrolls that are not
        // Microsoft's, and for its placeholder dbx entry (virt-firmware
        // efi/guids.py; crates/uefi-vars/src/guid.rs).
        "OvmfEnrollDefaultKeys",
        &["ovmf-enroll-default-keys"],
        "a0baa8a3-041d-48a8-bc87-c36d121b5e3d",
    ),
    (
        "EfiCertX509",
        &["x509"],
        "a5c059a1-94e4-4aa7-87b5-ab155c2bf072",
    ),
    (
        "EfiCertSha256",
        &["sha256"],
        "c1c41626-504c-4092-aca9-41f936934328",
    ),
];

fn entries() -> impl Iterator<Item = (&'static str, &'static [&'static str], Guid)> {
    TABLE
        .iter()
        .filter_map(|(n, aliases, g)| g.parse().ok().map(|g| (*n, *aliases, g)))
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
