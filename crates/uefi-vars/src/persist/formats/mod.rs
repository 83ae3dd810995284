//! Variable store file formats other than (and besides) QEMU's JSON:
//! recognising a file's format and decoding or encoding it.
//!
//! * [`Format::Json`]: QEMU's JSON v2 ([`crate::persist::json`]);
//! * [`Format::Edk2`]: edk2 flash images (`OVMF_VARS.fd`, ...; [`edk2`]);
//! * [`Format::Aws`]: the AWS EC2 uefi-data blob ([`aws`]);
//! * [`Format::Qcow2`]: recognised only; the bytes inside are an edk2 image
//!   that the caller unwraps (the `uefi-vars` tool runs `qemu-img`).

pub mod aws;
pub mod edk2;

use crate::persist::json;
use crate::variable::Variable;

/// A store file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// QEMU's JSON store.
    Json,
    /// An edk2 flash image (`OVMF_VARS.fd`).
    Edk2,
    /// The AWS EC2 uefi-data blob.
    Aws,
    /// A qcow2 image (recognised only).
    Qcow2,
}

impl Format {
    /// Every format, in the order [`detect`] tries them.
    pub const ALL: [Format; 4] = [Format::Json, Format::Edk2, Format::Aws, Format::Qcow2];

    /// The short name (`json`, `fd`, `aws`, `qcow2`).
    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Edk2 => "fd",
            Format::Aws => "aws",
            Format::Qcow2 => "qcow2",
        }
    }

    /// By name (`json`, `fd`/`edk2`, `aws`, `qcow2`).
    pub fn from_name(name: &str) -> Option<Format> {
        match name.to_ascii_lowercase().as_str() {
            "json" => Some(Format::Json),
            "fd" | "edk2" | "raw" => Some(Format::Edk2),
            "aws" => Some(Format::Aws),
            "qcow2" => Some(Format::Qcow2),
            _ => None,
        }
    }

    /// By file name extension, for a file that does not exist yet.
    pub fn from_extension(path: &std::path::Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "json" => Some(Format::Json),
            "fd" | "raw" | "bin" => Some(Format::Edk2),
            "aws" | "b64" | "base64" => Some(Format::Aws),
            "qcow2" => Some(Format::Qcow2),
            _ => None,
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// qcow2's magic, `QFI\xfb`.
pub const QCOW2_MAGIC: [u8; 4] = [b'Q', b'F', b'I', 0xfb];

/// Recognises a file's format from its content. An empty file is an empty
/// JSON store (as [`crate::persist::JsonFile`] reads it).
pub fn detect(bytes: &[u8]) -> Option<Format> {
    let text = bytes.trim_ascii_start();
    if bytes.is_empty() || text.starts_with(b"{") {
        Some(Format::Json)
    } else if bytes.starts_with(&QCOW2_MAGIC) {
        Some(Format::Qcow2)
    } else if aws::looks_like(bytes) {
        Some(Format::Aws)
    } else if edk2::looks_like(bytes) {
        Some(Format::Edk2)
    } else {
        None
    }
}

/// Why a store file could not be decoded or encoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreFormatError {
    /// Not a store in any known format.
    #[error("not a variable store in any known format (QEMU JSON, edk2 .fd image, AWS uefi-data, qcow2)")]
    Unknown,
    /// A qcow2 image, which the caller must unwrap first.
    #[error("a qcow2 image must be unwrapped to its raw bytes first")]
    Qcow2,
    /// The JSON store does not decode.
    #[error("{0}")]
    Json(#[from] json::FormatError),
    /// The edk2 image does not decode or encode.
    #[error("edk2 image: {0}")]
    Edk2(#[from] edk2::Edk2Error),
    /// The AWS blob does not decode or encode.
    #[error("AWS uefi-data: {0}")]
    Aws(#[from] aws::AwsError),
}

/// Decodes `bytes` in `format`.
pub fn decode(format: Format, bytes: &[u8]) -> Result<Vec<Variable>, StoreFormatError> {
    match format {
        Format::Json if bytes.trim_ascii().is_empty() => Ok(Vec::new()),
        Format::Json => Ok(json::decode(bytes)?),
        Format::Edk2 => Ok(edk2::decode(bytes)?.variables),
        Format::Aws => Ok(aws::decode(bytes)?),
        Format::Qcow2 => Err(StoreFormatError::Qcow2),
    }
}

/// Detects the format and decodes.
pub fn decode_any(bytes: &[u8]) -> Result<(Format, Vec<Variable>), StoreFormatError> {
    let format = detect(bytes).ok_or(StoreFormatError::Unknown)?;
    Ok((format, decode(format, bytes)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection() {
        assert_eq!(detect(b""), Some(Format::Json));
        assert_eq!(detect(b"  {\"version\": 2}"), Some(Format::Json));
        assert_eq!(detect(b"QFI\xfb\0\0\0\x03"), Some(Format::Qcow2));
        assert_eq!(detect(b"QU1aTlVFRkk="), Some(Format::Aws));
        assert_eq!(
            detect(&edk2::blank(edk2::Layout::Ovmf4M)),
            Some(Format::Edk2)
        );
        assert_eq!(detect(&vec![0u8; 0x2_0000]), Some(Format::Edk2));
        assert_eq!(detect(b"hello"), None);
        assert!(matches!(
            decode_any(b"hello"),
            Err(StoreFormatError::Unknown)
        ));
    }
}
