//! Device snapshot: the registers and the PIO transfer state, with the
//! backend's own snapshot inside.
//!
//! Commands run synchronously inside [`UefiVarsDevice::write`], so between
//! two guest accesses there is never a request in flight: the registers, the
//! PIO buffer and its offset are the whole device state. A snapshot can be
//! taken between any two accesses, in the middle of a PIO transfer too.
//!
//! # Format (version 1)
//!
//! All integers little-endian.
//!
//! ```text
//! magic        8 bytes  "UEFIVDEV"
//! version      u32      FORMAT_VERSION
//! body_length  u64      bytes between this field and the checksum
//! body:
//!   status       u16    CMD_STS (a known status code)
//!   flags        u8     bit 0 FLAGS.USE_PIO
//!   buffer_size  u32    BUFFER_SIZE (<= 64 KiB)
//!   dma_lo       u32    DMA_BUFFER_ADDR_LO
//!   dma_hi       u32    DMA_BUFFER_ADDR_HI
//!   pio_offset   u32    the PIO offset (<= 64 KiB)
//!   pio_len      u32    always buffer_size, then the PIO buffer
//!   backend_len  u64    then the backend's snapshot (SnapshotBackend)
//! crc32c       u32      CRC-32C of everything before it
//! ```
//!
//! The backend blob is opaque here; for [`uefi_vars::Service`] it is the
//! service's own versioned, checksummed snapshot
//! ([`uefi_vars::service::snapshot`]).
//!
//! # Not in the snapshot
//!
//! Guest RAM (the VMM migrates it; a DMA buffer is only read inside a
//! command), the capture hook and pending host errors (host-side, they stay
//! with the source), and the [`DmaMemory`] adapter itself. FLAGS.USE_PIO is
//! QEMU's `use-pio` property, but the guest has read it and chosen its
//! transfer mode, so the snapshot carries it and restoring sets it.

use super::UefiVarsDevice;
use crate::backend::SnapshotBackend;
use crate::memory::DmaMemory;
use crate::regs::{
    MAX_BUFFER_SIZE, STS_BUSY, STS_ERR_BAD_BUFFER_SIZE, STS_ERR_NOT_SUPPORTED, STS_ERR_UNKNOWN,
    STS_SUCCESS,
};
use uefi_vars::codec::{Malformed, Reader};
use uefi_vars::envelope::{self, EnvelopeError};

/// First bytes of every device snapshot.
pub const MAGIC: [u8; 8] = *b"UEFIVDEV";
/// The format version written, and the newest one read.
pub const FORMAT_VERSION: u32 = 1;

const FLAG_USE_PIO: u8 = 1 << 0;

/// Why a device snapshot could not be restored. Nothing is changed when
/// restoring fails.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeviceSnapshotError<E> {
    /// The blob ends before its header, or before the length its header
    /// gives.
    Truncated {
        /// Bytes the blob should have.
        needed: u64,
        /// Bytes it has.
        available: u64,
    },
    /// Not a device snapshot.
    BadMagic,
    /// Written by a newer (or unknown) format version.
    UnsupportedVersion {
        /// The blob's format version.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
    /// More bytes than the header accounts for.
    TrailingBytes {
        /// Bytes past the end the header gives.
        extra: u64,
    },
    /// The checksum does not match the content: the blob was corrupted.
    ChecksumMismatch {
        /// The CRC-32C in the blob.
        stored: u32,
        /// The CRC-32C of the content.
        computed: u32,
    },
    /// The body does not follow the format.
    Malformed {
        /// Offset of the field in the body.
        offset: usize,
        /// What the format wants there.
        what: String,
    },
    /// A register value the device cannot hold.
    Invalid(String),
    /// The backend refused its part; the device registers were not touched
    /// and the backend keeps its state.
    Backend(E),
}

impl<E: std::fmt::Display> std::fmt::Display for DeviceSnapshotError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Truncated { needed, available } => write!(
                f,
                "device snapshot truncated: {available} bytes, {needed} needed"
            ),
            Self::BadMagic => f.write_str("not a uefi-vars device snapshot (bad magic)"),
            Self::UnsupportedVersion { found, supported } => write!(
                f,
                "device snapshot format version {found} is not supported \
                 (this build reads up to {supported})"
            ),
            Self::TrailingBytes { extra } => {
                write!(f, "device snapshot has {extra} unexpected trailing bytes")
            }
            Self::ChecksumMismatch { stored, computed } => write!(
                f,
                "device snapshot corrupted: CRC-32C {computed:#010x}, stored {stored:#010x}"
            ),
            Self::Malformed { offset, what } => {
                write!(
                    f,
                    "malformed device snapshot at body offset {offset}: {what}"
                )
            }
            Self::Invalid(what) => write!(f, "invalid device snapshot: {what}"),
            Self::Backend(e) => write!(f, "device snapshot: backend state: {e}"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for DeviceSnapshotError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Backend(e) => Some(e),
            _ => None,
        }
    }
}

/// The decoded device part, applied after the backend accepted its part.
struct Regs<'a> {
    status: u16,
    use_pio: bool,
    buffer_size: u32,
    dma_lo: u32,
    dma_hi: u32,
    pio_offset: u32,
    pio: &'a [u8],
    backend: &'a [u8],
}

impl<B: SnapshotBackend, M: DmaMemory> UefiVarsDevice<B, M> {
    /// The device state (registers, PIO buffer and offset) and the
    /// backend's snapshot, as one versioned blob (see the
    /// [module documentation](self)). Valid between any two guest accesses.
    pub fn snapshot(&self) -> Vec<u8> {
        let backend = self.backend.snapshot();
        let mut body = Vec::with_capacity(
            32usize
                .saturating_add(self.pio.len())
                .saturating_add(backend.len()),
        );
        body.extend_from_slice(&self.status.to_le_bytes());
        body.push(if self.use_pio { FLAG_USE_PIO } else { 0 });
        body.extend_from_slice(&self.buffer_size.to_le_bytes());
        body.extend_from_slice(&self.dma_lo.to_le_bytes());
        body.extend_from_slice(&self.dma_hi.to_le_bytes());
        body.extend_from_slice(&self.pio_offset.to_le_bytes());
        // The PIO buffer is at most 64 KiB.
        let pio_len = u32::try_from(self.pio.len()).unwrap_or(u32::MAX);
        body.extend_from_slice(&pio_len.to_le_bytes());
        body.extend_from_slice(&self.pio);
        body.extend_from_slice(&(backend.len() as u64).to_le_bytes());
        body.extend_from_slice(&backend);

        envelope::seal(&MAGIC, FORMAT_VERSION, &body)
    }

    /// Puts the device and its backend in the state `blob` describes. The
    /// device part is checked first, then the backend restores its part
    /// (for a [`uefi_vars::Service`] that rewrites its store), then the
    /// registers are set. On error nothing changes. Guest RAM is the VMM's
    /// to restore; the capture hook stays as it is.
    pub fn restore_into(
        &mut self,
        blob: &[u8],
    ) -> Result<(), DeviceSnapshotError<B::SnapshotError>> {
        let regs = decode(blob)?;
        self.backend
            .restore_into(regs.backend)
            .map_err(DeviceSnapshotError::Backend)?;
        self.status = regs.status;
        self.use_pio = regs.use_pio;
        self.buffer_size = regs.buffer_size;
        self.dma_lo = regs.dma_lo;
        self.dma_hi = regs.dma_hi;
        self.pio_offset = regs.pio_offset;
        self.pio = regs.pio.to_vec();
        // The device's BUFFER_SIZE is what the backend frames requests
        // with; a consistent snapshot already agrees.
        self.backend.set_buffer_size(regs.buffer_size);
        Ok(())
    }
}

impl<E> From<EnvelopeError> for DeviceSnapshotError<E> {
    fn from(e: EnvelopeError) -> Self {
        match e {
            EnvelopeError::Truncated { needed, available } => Self::Truncated { needed, available },
            EnvelopeError::BadMagic => Self::BadMagic,
            EnvelopeError::UnsupportedVersion { found, supported } => {
                Self::UnsupportedVersion { found, supported }
            }
            EnvelopeError::TrailingBytes { extra } => Self::TrailingBytes { extra },
            EnvelopeError::ChecksumMismatch { stored, computed } => {
                Self::ChecksumMismatch { stored, computed }
            }
            // A framing error of a later library version.
            other => Self::Invalid(format!("{other:?}")),
        }
    }
}

fn decode<E>(blob: &[u8]) -> Result<Regs<'_>, DeviceSnapshotError<E>> {
    let body = envelope::open(blob, &MAGIC, FORMAT_VERSION)?;

    let mut r = Reader::new(body);
    let at = r.pos();
    let status = r.u16("CMD_STS")?;
    if ![
        STS_SUCCESS,
        STS_BUSY,
        STS_ERR_UNKNOWN,
        STS_ERR_NOT_SUPPORTED,
        STS_ERR_BAD_BUFFER_SIZE,
    ]
    .contains(&status)
    {
        return Err(malformed(
            at,
            format!("CMD_STS {status:#x} is no status code"),
        ));
    }
    let at = r.pos();
    let flags = r.u8("flags")?;
    if flags & !FLAG_USE_PIO != 0 {
        return Err(malformed(at, format!("unknown flags {flags:#x}")));
    }
    let buffer_size = r.u32("BUFFER_SIZE")?;
    if buffer_size > MAX_BUFFER_SIZE {
        return Err(DeviceSnapshotError::Invalid(format!(
            "BUFFER_SIZE {buffer_size} above the maximum {MAX_BUFFER_SIZE}"
        )));
    }
    let dma_lo = r.u32("DMA_BUFFER_ADDR_LO")?;
    let dma_hi = r.u32("DMA_BUFFER_ADDR_HI")?;
    let pio_offset = r.u32("PIO offset")?;
    if pio_offset > MAX_BUFFER_SIZE {
        return Err(DeviceSnapshotError::Invalid(format!(
            "PIO offset {pio_offset} above the maximum {MAX_BUFFER_SIZE}"
        )));
    }
    let at = r.pos();
    let pio_len = r.u32("PIO buffer length")?;
    if pio_len != buffer_size {
        return Err(malformed(
            at,
            format!("PIO buffer of {pio_len} bytes, BUFFER_SIZE is {buffer_size}"),
        ));
    }
    let pio_len = usize::try_from(pio_len).map_err(|_| malformed(at, "PIO buffer length"))?;
    let pio = r.take(pio_len, "PIO buffer")?;
    let at = r.pos();
    let backend_len = r.u64("backend snapshot length")?;
    let backend_len =
        usize::try_from(backend_len).map_err(|_| malformed(at, "backend snapshot length"))?;
    let backend = r.take(backend_len, "backend snapshot")?;
    if r.remaining() != 0 {
        return Err(malformed(
            r.pos(),
            format!("{} bytes left after the last field", r.remaining()),
        ));
    }
    Ok(Regs {
        status,
        use_pio: flags & FLAG_USE_PIO != 0,
        buffer_size,
        dma_lo,
        dma_hi,
        pio_offset,
        pio,
        backend,
    })
}

impl<E> From<Malformed> for DeviceSnapshotError<E> {
    fn from(m: Malformed) -> Self {
        Self::Malformed {
            offset: m.offset,
            what: m.what,
        }
    }
}

fn malformed<E>(offset: usize, what: impl Into<String>) -> DeviceSnapshotError<E> {
    DeviceSnapshotError::Malformed {
        offset,
        what: what.into(),
    }
}
