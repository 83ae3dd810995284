//! EFI GUIDs: wire byte order (first three fields little-endian) and the
//! canonical lowercase text form used by the JSON store and the CLI.

use std::fmt;
use std::str::FromStr;

/// A GUID held in EFI wire byte order, exactly as it appears in guest buffers.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Guid(pub [u8; 16]);

/// Text that is not a canonical `8-4-4-4-12` GUID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid GUID text {0:?} (expected 8-4-4-4-12 hex digits)")]
pub struct GuidParseError(pub String);

impl Guid {
    /// Builds a GUID from its text-form fields (as written in the UEFI spec).
    pub const fn from_fields(d1: u32, d2: u16, d3: u16, d4: [u8; 8]) -> Self {
        let a = d1.to_le_bytes();
        let b = d2.to_le_bytes();
        let c = d3.to_le_bytes();
        Guid([
            a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d4[0], d4[1], d4[2], d4[3], d4[4],
            d4[5], d4[6], d4[7],
        ])
    }

    /// The GUID with these 16 bytes, in EFI_GUID wire order.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Guid(bytes)
    }

    /// The 16 bytes in EFI_GUID wire order.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
            b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13],
            b[14], b[15]
        )
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Guid {
    type Err = GuidParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || GuidParseError(s.to_string());
        let parts: Vec<&str> = s.split('-').collect();
        let lens = [8usize, 4, 4, 4, 12];
        if parts.len() != 5 || parts.iter().zip(lens).any(|(p, l)| p.len() != l) {
            return Err(err());
        }
        let mut text = [0u8; 16];
        let hex: String = parts.concat();
        if !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(err());
        }
        for (slot, pair) in text.iter_mut().zip(hex.as_bytes().chunks(2)) {
            let pair = std::str::from_utf8(pair).map_err(|_| err())?;
            *slot = u8::from_str_radix(pair, 16).map_err(|_| err())?;
        }
        // Text order is big-endian for the first three fields.
        let t = text;
        Ok(Guid([
            t[3], t[2], t[1], t[0], t[5], t[4], t[7], t[6], t[8], t[9], t[10], t[11], t[12], t[13],
            t[14], t[15],
        ]))
    }
}

/// `EFI_GLOBAL_VARIABLE`.
pub const GLOBAL_VARIABLE: Guid = Guid::from_fields(
    0x8be4df61,
    0x93ca,
    0x11d2,
    [0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c],
);
/// `EFI_IMAGE_SECURITY_DATABASE_GUID` (db, dbx, dbt, dbr).
pub const IMAGE_SECURITY_DATABASE: Guid = Guid::from_fields(
    0xd719b2cb,
    0x3d3a,
    0x4596,
    [0xa3, 0xbc, 0xda, 0xd0, 0x0e, 0x67, 0x65, 0x6f],
);
/// `EFI_SECURE_BOOT_ENABLE_DISABLE` (SecureBootEnable).
pub const SECURE_BOOT_ENABLE_DISABLE: Guid = Guid::from_fields(
    0xf0a30bc7,
    0xaf08,
    0x4556,
    [0x99, 0xc4, 0x00, 0x10, 0x09, 0xc9, 0x3a, 0x44],
);
/// `EFI_HARDWARE_ERROR_VARIABLE` (gEfiHardwareErrorVariableGuid, edk2
/// MdePkg/MdePkg.dec): the namespace of the HwErrRec#### variables.
pub const HARDWARE_ERROR_VARIABLE: Guid = Guid::from_fields(
    0x414e6bdd,
    0xe47b,
    0x47cc,
    [0xb2, 0x44, 0xbb, 0x61, 0x02, 0x0c, 0xf5, 0x16],
);
/// `EFI_CUSTOM_MODE_ENABLE_GUID` (CustomMode).
pub const CUSTOM_MODE_ENABLE: Guid = Guid::from_fields(
    0xc076ec0c,
    0x7028,
    0x4399,
    [0xa0, 0x72, 0x71, 0xee, 0x5c, 0x44, 0x8b, 0x9f],
);

/// Owner of Microsoft's Secure Boot certificates (`gMicrosoftVendorGuid`,
/// edk2 OvmfPkg/Include/Guid/MicrosoftVendor.h; `signature_owner` in
/// microsoft/secureboot_objects Templates/*.toml).
pub const MICROSOFT_VENDOR: Guid = Guid::from_fields(
    0x77fa9abd,
    0x0359,
    0x4d32,
    [0xbd, 0x60, 0x28, 0xf4, 0xe7, 0x8f, 0x78, 0x4b],
);
/// Owner GUID virt-firmware writes for the keys it enrolls that are not
/// Microsoft's (virt-firmware efi/guids.py `OvmfEnrollDefaultKeys`).
pub const OVMF_ENROLL_DEFAULT_KEYS: Guid = Guid::from_fields(
    0xa0baa8a3,
    0x041d,
    0x48a8,
    [0xbc, 0x87, 0xc3, 0x6d, 0x12, 0x1b, 0x5e, 0x3d],
);
/// `SHIM_LOCK_GUID`: namespace of shim's variables (MokList, SbatLevel,
/// SHIM_VERBOSE, ...; rhboot/shim lib/guid.c).
pub const SHIM_LOCK: Guid = Guid::from_fields(
    0x605dab50,
    0xe046,
    0x4300,
    [0xab, 0xb6, 0x3d, 0xd8, 0x10, 0xdd, 0x8b, 0x23],
);

/// MM header GUID of the SMM variable protocol.
pub const SMM_VARIABLE_PROTOCOL: Guid = Guid::from_fields(
    0xed32d533,
    0x99e6,
    0x4209,
    [0x9c, 0xc0, 0x2d, 0x72, 0xcd, 0xd9, 0x98, 0xa7],
);
/// MM header GUID of the VarCheck policy protocol.
pub const VAR_CHECK_POLICY_MMI: Guid = Guid::from_fields(
    0xda1b0d11,
    0xd1a7,
    0x46c4,
    [0x9d, 0xc9, 0xf3, 0x71, 0x48, 0x75, 0xc6, 0xeb],
);
/// EndOfDxe event group.
pub const END_OF_DXE_EVENT: Guid = Guid::from_fields(
    0x02ce967a,
    0xdd7e,
    0x4ffc,
    [0x9e, 0xe7, 0x81, 0x0c, 0xf0, 0x47, 0x08, 0x80],
);
/// ReadyToBoot event group.
pub const READY_TO_BOOT_EVENT: Guid = Guid::from_fields(
    0x7ce88fb3,
    0x4bd7,
    0x4679,
    [0x87, 0xa8, 0xa8, 0xd8, 0xde, 0xe5, 0x0d, 0x2b],
);
/// ExitBootServices event group.
pub const EXIT_BOOT_SERVICES_EVENT: Guid = Guid::from_fields(
    0x27abf055,
    0xb1b8,
    0x4c26,
    [0x80, 0x48, 0x74, 0x8f, 0x37, 0xba, 0xa2, 0xdf],
);

/// `EFI_CERT_TYPE_PKCS7_GUID`, the CertType of an EFI_VARIABLE_AUTHENTICATION_2.
pub const CERT_TYPE_PKCS7: Guid = Guid::from_fields(
    0x4aafd29d,
    0x68df,
    0x49ee,
    [0x8a, 0xa9, 0x34, 0x7d, 0x37, 0x56, 0x65, 0xa7],
);
/// EFI_CERT_SHA256_GUID: a SHA-256 digest.
pub const CERT_SHA256: Guid = Guid::from_fields(
    0xc1c41626,
    0x504c,
    0x4092,
    [0xac, 0xa9, 0x41, 0xf9, 0x36, 0x93, 0x43, 0x28],
);
/// EFI_CERT_SHA384_GUID: a SHA-384 digest.
pub const CERT_SHA384: Guid = Guid::from_fields(
    0xff3e5307,
    0x9fd0,
    0x48c9,
    [0x85, 0xf1, 0x8a, 0xd5, 0x6c, 0x70, 0x1e, 0x01],
);
/// EFI_CERT_SHA512_GUID: a SHA-512 digest.
pub const CERT_SHA512: Guid = Guid::from_fields(
    0x093e0fae,
    0xa6c4,
    0x4f50,
    [0x9f, 0x1b, 0xd4, 0x1e, 0x2b, 0x89, 0xc1, 0x9a],
);
/// EFI_CERT_RSA2048_GUID: an RSA-2048 public key.
pub const CERT_RSA2048: Guid = Guid::from_fields(
    0x3c5766e8,
    0x269c,
    0x4e34,
    [0xaa, 0x14, 0xed, 0x77, 0x6e, 0x85, 0xb3, 0xb6],
);
/// EFI_CERT_SHA1_GUID: a SHA-1 digest.
pub const CERT_SHA1: Guid = Guid::from_fields(
    0x826ca512,
    0xcf10,
    0x4ac9,
    [0xb1, 0x87, 0xbe, 0x01, 0x49, 0x66, 0x31, 0xbd],
);
/// EFI_CERT_SHA224_GUID: a SHA-224 digest.
pub const CERT_SHA224: Guid = Guid::from_fields(
    0x0b6e5233,
    0xa65c,
    0x44c9,
    [0x94, 0x07, 0xd9, 0xab, 0x83, 0xbf, 0xc8, 0xbd],
);
/// EFI_CERT_RSA2048_SHA256_GUID: an RSA-2048 signature of a SHA-256 digest.
pub const CERT_RSA2048_SHA256: Guid = Guid::from_fields(
    0xe2b36190,
    0x879b,
    0x4a3d,
    [0xad, 0x8d, 0xf2, 0xe7, 0xbb, 0xa3, 0x27, 0x84],
);
/// EFI_CERT_RSA2048_SHA1_GUID: an RSA-2048 signature of a SHA-1 digest.
pub const CERT_RSA2048_SHA1: Guid = Guid::from_fields(
    0x67f8444f,
    0x8743,
    0x48f1,
    [0xa3, 0x28, 0x1e, 0xaa, 0xb8, 0x73, 0x60, 0x80],
);
/// EFI_CERT_X509_SHA256_GUID: the SHA-256 digest of an X.509 certificate's TBS data.
pub const CERT_X509_SHA256: Guid = Guid::from_fields(
    0x3bd2a492,
    0x96c0,
    0x4079,
    [0xb4, 0x20, 0xfc, 0xf9, 0x8e, 0xf1, 0x03, 0xed],
);
/// EFI_CERT_X509_SHA384_GUID: the SHA-384 digest of an X.509 certificate's TBS data.
pub const CERT_X509_SHA384: Guid = Guid::from_fields(
    0x7076876e,
    0x80c2,
    0x4ee6,
    [0xaa, 0xd2, 0x28, 0xb3, 0x49, 0xa6, 0x86, 0x5b],
);
/// EFI_CERT_X509_SHA512_GUID: the SHA-512 digest of an X.509 certificate's TBS data.
pub const CERT_X509_SHA512: Guid = Guid::from_fields(
    0x446dbf63,
    0x2502,
    0x4cda,
    [0xbc, 0xfa, 0x24, 0x65, 0xd2, 0xb0, 0xfe, 0x9d],
);
/// EFI_CERT_X509_GUID: a DER X.509 certificate.
pub const CERT_X509: Guid = Guid::from_fields(
    0xa5c059a1,
    0x94e4,
    0x4aa7,
    [0x87, 0xb5, 0xab, 0x15, 0x5c, 0x2b, 0xf0, 0x72],
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_order_matches_spec_example() {
        assert_eq!(
            GLOBAL_VARIABLE.0,
            [
                0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11, 0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03,
                0x2b, 0x8c
            ]
        );
    }

    #[test]
    fn text_round_trip() {
        let text = "8be4df61-93ca-11d2-aa0d-00e098032b8c";
        let g: Guid = text.parse().unwrap();
        assert_eq!(g, GLOBAL_VARIABLE);
        assert_eq!(g.to_string(), text);
        assert_eq!(
            "8BE4DF61-93CA-11D2-AA0D-00E098032B8C"
                .parse::<Guid>()
                .unwrap(),
            g
        );
    }

    #[test]
    fn bad_text_rejected() {
        for bad in [
            "",
            "8be4df61-93ca-11d2-aa0d-00e098032b8",
            "8be4df61-93ca-11d2-aa0d00e098032b8c0",
            "8be4df6g-93ca-11d2-aa0d-00e098032b8c",
            "+8e4df61-93ca-11d2-aa0d-00e098032b8c",
            "8be4df61-93ca-11d2-aa0d-00e098032b8cé",
        ] {
            assert!(bad.parse::<Guid>().is_err(), "{bad}");
        }
    }
}
