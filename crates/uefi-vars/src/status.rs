//! Guest-visible outcomes: EFI status codes written into reply buffers, and
//! the device-level status a whole MM request ends with. Host-side diagnostics
//! live in [`crate::error`], never here.

use std::fmt;

/// An `EFI_STATUS` value as it travels on the wire (UINTN, high bit = error).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct EfiStatus(pub u64);

const ERR: u64 = 1 << 63;

impl EfiStatus {
    /// EFI_SUCCESS.
    pub const SUCCESS: Self = Self(0);
    /// EFI_LOAD_ERROR.
    pub const LOAD_ERROR: Self = Self(ERR | 1);
    /// EFI_INVALID_PARAMETER.
    pub const INVALID_PARAMETER: Self = Self(ERR | 2);
    /// EFI_UNSUPPORTED.
    pub const UNSUPPORTED: Self = Self(ERR | 3);
    /// EFI_BAD_BUFFER_SIZE.
    pub const BAD_BUFFER_SIZE: Self = Self(ERR | 4);
    /// EFI_BUFFER_TOO_SMALL.
    pub const BUFFER_TOO_SMALL: Self = Self(ERR | 5);
    /// EFI_NOT_READY.
    pub const NOT_READY: Self = Self(ERR | 6);
    /// EFI_DEVICE_ERROR.
    pub const DEVICE_ERROR: Self = Self(ERR | 7);
    /// EFI_WRITE_PROTECTED.
    pub const WRITE_PROTECTED: Self = Self(ERR | 8);
    /// EFI_OUT_OF_RESOURCES.
    pub const OUT_OF_RESOURCES: Self = Self(ERR | 9);
    /// EFI_NOT_FOUND.
    pub const NOT_FOUND: Self = Self(ERR | 14);
    /// EFI_ACCESS_DENIED.
    pub const ACCESS_DENIED: Self = Self(ERR | 15);
    /// EFI_TIMEOUT.
    pub const TIMEOUT: Self = Self(ERR | 18);
    /// EFI_ALREADY_STARTED.
    pub const ALREADY_STARTED: Self = Self(ERR | 20);
    /// EFI_SECURITY_VIOLATION.
    pub const SECURITY_VIOLATION: Self = Self(ERR | 26);

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
        Some(match self {
            Self::SUCCESS => "SUCCESS",
            Self::LOAD_ERROR => "LOAD_ERROR",
            Self::INVALID_PARAMETER => "INVALID_PARAMETER",
            Self::UNSUPPORTED => "UNSUPPORTED",
            Self::BAD_BUFFER_SIZE => "BAD_BUFFER_SIZE",
            Self::BUFFER_TOO_SMALL => "BUFFER_TOO_SMALL",
            Self::NOT_READY => "NOT_READY",
            Self::DEVICE_ERROR => "DEVICE_ERROR",
            Self::WRITE_PROTECTED => "WRITE_PROTECTED",
            Self::OUT_OF_RESOURCES => "OUT_OF_RESOURCES",
            Self::NOT_FOUND => "NOT_FOUND",
            Self::ACCESS_DENIED => "ACCESS_DENIED",
            Self::TIMEOUT => "TIMEOUT",
            Self::ALREADY_STARTED => "ALREADY_STARTED",
            Self::SECURITY_VIOLATION => "SECURITY_VIOLATION",
            _ => return None,
        })
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
    /// The CMD_STS register value.
    pub fn code(self) -> u16 {
        self as u16
    }
}
