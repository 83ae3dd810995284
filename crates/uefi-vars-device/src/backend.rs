//! The variable service behind the device.

use uefi_vars::codec::Layout;
use uefi_vars::service::snapshot::SnapshotError;
use uefi_vars::{MmResponse, Service};

/// What the device hands MM requests to: the in-process
/// [`uefi_vars::Service`], or a client of a service running elsewhere.
pub trait MmBackend {
    /// Host-side failure of a machine reset (e.g. the store could not be
    /// written). Never shown to the guest.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Guest word size: decides the MM header length (16-byte GUID + UINTN
    /// MessageLength, so 24 or 20 bytes) the device frames requests with.
    fn layout(&self) -> Layout;

    /// The guest wrote BUFFER_SIZE (already clamped to 64 KiB), or a reset
    /// set it to 0.
    fn set_buffer_size(&mut self, size: u32);

    /// Processes one request: MM header plus exactly MessageLength bytes,
    /// as the guest wrote them.
    fn communicate(&mut self, request: &[u8]) -> MmResponse;

    /// Machine reset: boot phase cleared, volatile variables and policies
    /// dropped, Secure Boot state rebuilt.
    fn reset(&mut self) -> Result<(), Self::Error>;
}

/// A backend whose state can be saved and restored, for device snapshots
/// ([`UefiVarsDevice::snapshot`](crate::UefiVarsDevice::snapshot)). Kept
/// apart from [`MmBackend`] so that backends without snapshot support still
/// plug into the device; only snapshots need it.
pub trait SnapshotBackend: MmBackend {
    /// Why a backend blob could not be restored.
    type SnapshotError: std::error::Error + Send + Sync + 'static;

    /// The backend's whole guest-visible state as an opaque, self-checking
    /// blob (for [`uefi_vars::Service`]: [`Service::snapshot`], which is
    /// versioned and checksummed itself).
    fn snapshot(&self) -> Vec<u8>;

    /// Replaces the backend's state with the one in `blob`; on error the
    /// state is unchanged.
    fn restore_into(&mut self, blob: &[u8]) -> Result<(), Self::SnapshotError>;
}

impl MmBackend for Service {
    type Error = uefi_vars::Error;

    fn layout(&self) -> Layout {
        self.config().layout
    }
    fn set_buffer_size(&mut self, size: u32) {
        Service::set_buffer_size(self, size);
    }
    fn communicate(&mut self, request: &[u8]) -> MmResponse {
        Service::communicate(self, request)
    }
    fn reset(&mut self) -> Result<(), Self::Error> {
        Service::reset(self)
    }
}

impl SnapshotBackend for Service {
    type SnapshotError = SnapshotError;

    fn snapshot(&self) -> Vec<u8> {
        Service::snapshot(self)
    }
    fn restore_into(&mut self, blob: &[u8]) -> Result<(), SnapshotError> {
        Service::restore_into(self, blob)
    }
}

impl<T: SnapshotBackend + ?Sized> SnapshotBackend for &mut T {
    type SnapshotError = T::SnapshotError;

    fn snapshot(&self) -> Vec<u8> {
        (**self).snapshot()
    }
    fn restore_into(&mut self, blob: &[u8]) -> Result<(), Self::SnapshotError> {
        (**self).restore_into(blob)
    }
}

impl<T: SnapshotBackend + ?Sized> SnapshotBackend for Box<T> {
    type SnapshotError = T::SnapshotError;

    fn snapshot(&self) -> Vec<u8> {
        (**self).snapshot()
    }
    fn restore_into(&mut self, blob: &[u8]) -> Result<(), Self::SnapshotError> {
        (**self).restore_into(blob)
    }
}

impl<T: MmBackend + ?Sized> MmBackend for &mut T {
    type Error = T::Error;

    fn layout(&self) -> Layout {
        (**self).layout()
    }
    fn set_buffer_size(&mut self, size: u32) {
        (**self).set_buffer_size(size);
    }
    fn communicate(&mut self, request: &[u8]) -> MmResponse {
        (**self).communicate(request)
    }
    fn reset(&mut self) -> Result<(), Self::Error> {
        (**self).reset()
    }
}

impl<T: MmBackend + ?Sized> MmBackend for Box<T> {
    type Error = T::Error;

    fn layout(&self) -> Layout {
        (**self).layout()
    }
    fn set_buffer_size(&mut self, size: u32) {
        (**self).set_buffer_size(size);
    }
    fn communicate(&mut self, request: &[u8]) -> MmResponse {
        (**self).communicate(request)
    }
    fn reset(&mut self) -> Result<(), Self::Error> {
        (**self).reset()
    }
}
