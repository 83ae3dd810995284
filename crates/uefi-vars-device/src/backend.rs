//! The variable service behind the device.

use uefi_vars::codec::Layout;
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
