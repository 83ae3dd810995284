//! Guest-visible outcomes: EFI status codes written into reply buffers, and
//! the device-level status a whole MM request ends with. Host-side diagnostics
//! live in [`crate::error`], never here.

use std::fmt;

/// An `EFI_STATUS` value as it travels on the wire (UINTN, high bit = error).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct EfiStatus(pub u64);

const ERR: u64 = 1 << 63;

/// Defines the status constants and the one table that names them.
macro_rules! statuses {
    ($($name:ident = $value:expr,)*) => {
        impl EfiStatus {
            $(#[doc = concat!("EFI_", stringify!($name), ".")] pub const $name: Self = Self($value);)*
            /// Every status this crate writes, with its edk2 name (without
            /// the `EFI_` prefix).
            pub const NAMES: &'static [(EfiStatus, &'static str)] =
                &[$((Self::$name, stringify!($name)),)*];
        }
    };
}

// MdePkg/Include/Uefi/UefiBaseType.h.
statuses! {
    SUCCESS = 0,
    LOAD_ERROR = ERR | 1,
    INVALID_PARAMETER = ERR | 2,
    UNSUPPORTED = ERR | 3,
    BAD_BUFFER_SIZE = ERR | 4,
    BUFFER_TOO_SMALL = ERR | 5,
    NOT_READY = ERR | 6,
    DEVICE_ERROR = ERR | 7,
    WRITE_PROTECTED = ERR | 8,
    OUT_OF_RESOURCES = ERR | 9,
    NOT_FOUND = ERR | 14,
    ACCESS_DENIED = ERR | 15,
    TIMEOUT = ERR | 18,
    ALREADY_STARTED = ERR | 20,
    SECURITY_VIOLATION = ERR | 26,
}

impl EfiStatus {
    /// Whether the high (error) bit is set.
    pub fn is_error(self) -> bool {
        self.0 & ERR != 0
    }

    /// The same status in a guest whose UINTN is 32 bits wide (error bit 31).
    pub(crate) fn to_width(self, uintn_bytes: usize) -> u64 {
        if uintn_bytes == 4 && self.is_error() {
            (self.0 & 0xffff) | (1 << 31)
        } else {
            self.0
        }
    }

    /// The name without `EFI_` (`WRITE_PROTECTED`), for the codes above.
    pub fn name(self) -> Option<&'static str> {
        Self::NAMES
            .iter()
            .find(|(s, _)| *s == self)
            .map(|(_, n)| *n)
    }
}

impl fmt::Debug for EfiStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "EFI_{n}"),
            None => write!(f, "EfiStatus({:#x})", self.0),
        }
    }
}

impl fmt::Display for EfiStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Status of a whole MM request as the device reports it in CMD_STS
/// (docs/reference/device.md §3). Only failures of framing or dispatch appear here; the
/// outcome of a variable call is an [`EfiStatus`] inside the reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeviceStatus {
    /// The request was processed.
    Success = 0x00,
    /// A request is in progress.
    Busy = 0x01,
    /// The request failed on the host.
    ErrUnknown = 0x10,
    /// The MM header GUID names no protocol the service handles.
    ErrNotSupported = 0x11,
    /// The buffer size or MessageLength is out of bounds.
    ErrBadBufferSize = 0x12,
}

impl DeviceStatus {
    /// Every device status, the one table of CMD_STS values.
    pub const ALL: [DeviceStatus; 5] = [
        DeviceStatus::Success,
        DeviceStatus::Busy,
        DeviceStatus::ErrUnknown,
        DeviceStatus::ErrNotSupported,
        DeviceStatus::ErrBadBufferSize,
    ];

    /// The CMD_STS register value.
    pub fn code(self) -> u16 {
        self as u16
    }

    /// The status a CMD_STS value names, if any.
    pub fn from_code(code: u16) -> Option<DeviceStatus> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_and_codes() {
        assert_eq!(EfiStatus::NOT_FOUND.0, 0x8000_0000_0000_000e);
        assert_eq!(EfiStatus::NOT_FOUND.name(), Some("NOT_FOUND"));
        assert_eq!(
            format!("{}", EfiStatus::SECURITY_VIOLATION),
            "EFI_SECURITY_VIOLATION"
        );
        assert_eq!(
            format!("{}", EfiStatus(ERR | 99)),
            "EfiStatus(0x8000000000000063)"
        );
        assert_eq!(
            DeviceStatus::from_code(0x12),
            Some(DeviceStatus::ErrBadBufferSize)
        );
        assert_eq!(
            DeviceStatus::from_code(0x10),
            Some(DeviceStatus::ErrUnknown)
        );
        assert_eq!(DeviceStatus::from_code(0x13), None);
    }
}
