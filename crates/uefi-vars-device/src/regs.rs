//! Register map, command and status values of the uefi-vars device
//! (docs/reference/device.md §2 and §3; QEMU's `include/hw/uefi/var-service-api.h`).
//!
//! Every register is little-endian. Offsets are relative to the start of
//! the device's MMIO region.

use uefi_vars::DeviceStatus;

/// Size of the register region (both flavours).
pub const REGION_SIZE: u64 = 0x20;

/// 16-bit, read-only: always [`MAGIC_VALUE`].
pub const MAGIC: u64 = 0x00;
/// 16-bit: a write runs a command, a read returns the last command's status.
pub const CMD_STS: u64 = 0x02;
/// 32-bit: size of the communication buffer, at most [`MAX_BUFFER_SIZE`].
pub const BUFFER_SIZE: u64 = 0x04;
/// 32-bit: low half of the guest-physical address of the DMA buffer.
pub const DMA_BUFFER_ADDR_LO: u64 = 0x08;
/// 32-bit: high half of the guest-physical address of the DMA buffer.
pub const DMA_BUFFER_ADDR_HI: u64 = 0x0C;
/// Streaming window into the PIO transfer buffer: an access of N bytes
/// (1, 2, 4 or 8) at this offset moves N bytes and advances the PIO offset
/// by N.
pub const PIO_BUFFER_TRANSFER: u64 = 0x10;
/// 32-bit, read-only: CRC-32C of the PIO bytes moved since the last
/// [`CMD_PIO_ZERO_OFFSET`].
pub const PIO_BUFFER_CRC32C: u64 = 0x18;
/// 32-bit, read-only: [`FLAG_USE_PIO`].
pub const FLAGS: u64 = 0x1C;

/// The value of the MAGIC register.
pub const MAGIC_VALUE: u16 = 0x0EF1;
/// FLAGS bit 0: the host prefers PIO transfers (a hint; both modes work).
pub const FLAG_USE_PIO: u32 = 1 << 0;
/// Largest BUFFER_SIZE; larger values are clamped to it.
pub const MAX_BUFFER_SIZE: u32 = uefi_vars::service::MAX_BUFFER_SIZE;

/// Soft reset: drops the buffers, BUFFER_SIZE and the DMA address become 0.
pub const CMD_RESET: u16 = 0x01;
/// Process one MM request through guest memory at the DMA address.
pub const CMD_DMA_MM: u16 = 0x02;
/// Process one MM request through the PIO transfer buffer.
pub const CMD_PIO_MM: u16 = 0x03;
/// Set the PIO offset to 0.
pub const CMD_PIO_ZERO_OFFSET: u16 = 0x04;

// CMD_STS values (the numeric codes of `DeviceStatus`).
/// The request was processed; the reply is in the buffer.
pub const STS_SUCCESS: u16 = DeviceStatus::Success as u16;
/// A request is in progress.
pub const STS_BUSY: u16 = DeviceStatus::Busy as u16;
/// The request failed on the host (e.g. DMA to inaccessible memory).
pub const STS_ERR_UNKNOWN: u16 = DeviceStatus::ErrUnknown as u16;
/// The MM header GUID names no protocol the service handles.
pub const STS_ERR_NOT_SUPPORTED: u16 = DeviceStatus::ErrNotSupported as u16;
/// The buffer size or MessageLength is out of bounds.
pub const STS_ERR_BAD_BUFFER_SIZE: u16 = DeviceStatus::ErrBadBufferSize as u16;
