//! The register file and the command engine.

pub mod snapshot;

use std::io;

use uefi_vars::codec;
use uefi_vars::DeviceStatus;

use crate::backend::MmBackend;
use crate::capture::MmCapture;
use crate::crc32c::crc32c;
use crate::memory::DmaMemory;
use crate::regs::*;

/// The registers that are plain values, with their byte lanes. The PIO
/// window (0x10..0x18) is not among them: only an access that starts at
/// 0x10 reaches it. Bytes not covered here (0x10..0x18 for any other access,
/// and everything from 0x20 on) are holes.
#[derive(Clone, Copy, Debug)]
enum Reg {
    Magic,
    CmdSts,
    BufferSize,
    DmaLo,
    DmaHi,
    Crc,
    Flags,
}

const LANES: [(u64, u64, Reg); 7] = [
    (MAGIC, 2, Reg::Magic),
    (CMD_STS, 2, Reg::CmdSts),
    (BUFFER_SIZE, 4, Reg::BufferSize),
    (DMA_BUFFER_ADDR_LO, 4, Reg::DmaLo),
    (DMA_BUFFER_ADDR_HI, 4, Reg::DmaHi),
    (PIO_BUFFER_CRC32C, 4, Reg::Crc),
    (FLAGS, 4, Reg::Flags),
];

/// Where an MM command finds its request and puts its reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Transport {
    Dma,
    Pio,
}

/// The guest-visible register state, for inspection (tests, debugging,
/// migration code).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registers {
    /// CMD_STS as the guest reads it.
    pub status: u16,
    /// BUFFER_SIZE (never above [`MAX_BUFFER_SIZE`]).
    pub buffer_size: u32,
    /// DMA_BUFFER_ADDR_HI:LO.
    pub dma_address: u64,
    /// The PIO offset (not guest-readable).
    pub pio_offset: u32,
    /// FLAGS.USE_PIO.
    pub use_pio: bool,
}

/// A host-side failure the guest does not see.
#[derive(Debug)]
#[non_exhaustive]
pub enum HostError {
    /// Writing a capture record failed; capturing was switched off.
    Capture(io::Error),
}

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostError::Capture(e) => write!(f, "capture stopped: {e}"),
        }
    }
}

impl std::error::Error for HostError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HostError::Capture(e) => Some(e),
        }
    }
}

/// The uefi-vars device: QEMU's `uefi-vars-x64` / `uefi-vars-sysbus`
/// register interface in front of an [`MmBackend`], doing DMA through a
/// [`DmaMemory`].
///
/// The VMM forwards every MMIO access inside the device's region to
/// [`read`](Self::read) / [`write`](Self::write) with the offset from the
/// region base and a buffer whose length is the access width, and calls
/// [`reset`](Self::reset) on every machine reset. Commands run
/// synchronously inside `write`, so CMD_STS never reads BUSY.
pub struct UefiVarsDevice<B: MmBackend, M: DmaMemory> {
    backend: B,
    memory: M,
    use_pio: bool,
    status: u16,
    buffer_size: u32,
    dma_lo: u32,
    dma_hi: u32,
    /// The PIO transfer buffer; always exactly `buffer_size` bytes.
    pio: Vec<u8>,
    pio_offset: u32,
    capture: Option<Box<dyn MmCapture>>,
    host_errors: Vec<HostError>,
}

impl<B: MmBackend, M: DmaMemory> std::fmt::Debug for UefiVarsDevice<B, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UefiVarsDevice")
            .field("registers", &self.registers())
            .field("capture", &self.capture.is_some())
            .finish_non_exhaustive()
    }
}

impl<B: MmBackend, M: DmaMemory> UefiVarsDevice<B, M> {
    /// A device in its power-on state (all registers 0, no buffer), with
    /// FLAGS.USE_PIO clear. The backend's buffer size is set to 0 to match.
    pub fn new(mut backend: B, memory: M) -> Self {
        backend.set_buffer_size(0);
        UefiVarsDevice {
            backend,
            memory,
            use_pio: false,
            status: STS_SUCCESS,
            buffer_size: 0,
            dma_lo: 0,
            dma_hi: 0,
            pio: Vec::new(),
            pio_offset: 0,
            capture: None,
            host_errors: Vec::new(),
        }
    }

    /// Sets FLAGS.USE_PIO (QEMU's `use-pio` property). Only a hint to the
    /// guest: DMA_MM and PIO_MM both work either way.
    pub fn with_use_pio(mut self, use_pio: bool) -> Self {
        self.use_pio = use_pio;
        self
    }

    /// Starts (or, with `None`, stops) capturing requests, replies and
    /// machine resets, e.g. into a [`uefi_vars::pcap::PcapWriter`].
    pub fn set_capture(&mut self, capture: Option<Box<dyn MmCapture>>) {
        self.capture = capture;
    }

    /// The guest-visible register state.
    pub fn registers(&self) -> Registers {
        Registers {
            status: self.status,
            buffer_size: self.buffer_size,
            dma_address: self.dma_address(),
            pio_offset: self.pio_offset,
            use_pio: self.use_pio,
        }
    }

    /// The variable service behind the device.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The variable service, mutably (e.g. to collect its host errors).
    pub fn backend_mut(&mut self) -> &mut B {
        &mut self.backend
    }

    /// The guest memory the device reaches by DMA.
    pub fn memory(&self) -> &M {
        &self.memory
    }

    /// The guest memory, mutably.
    pub fn memory_mut(&mut self) -> &mut M {
        &mut self.memory
    }

    /// Host-side failures since the last call.
    pub fn take_host_errors(&mut self) -> Vec<HostError> {
        std::mem::take(&mut self.host_errors)
    }

    /// Takes the device apart (the capture, if any, is dropped).
    pub fn into_parts(self) -> (B, M) {
        (self.backend, self.memory)
    }

    /// Machine (hard) reset: every register goes back to its power-on
    /// value (CMD_STS 0, BUFFER_SIZE 0, DMA address 0, PIO buffer dropped,
    /// PIO offset 0; FLAGS keeps the configured USE_PIO), then the backend
    /// performs its machine reset and a RESET record is captured.
    ///
    /// QEMU keeps CMD_STS and the PIO offset across a machine reset; here
    /// nothing of the previous boot's device state survives.
    pub fn reset(&mut self) -> Result<(), B::Error> {
        self.status = STS_SUCCESS;
        self.buffer_size = 0;
        self.dma_lo = 0;
        self.dma_hi = 0;
        self.pio = Vec::new();
        self.pio_offset = 0;
        self.backend.set_buffer_size(0);
        let result = self.backend.reset();
        self.capture_with(|c| c.reset());
        result
    }

    /// A guest read of `data.len()` bytes at `offset` from the region base.
    ///
    /// Accesses of 1, 2, 4 or 8 bytes at a naturally aligned offset inside
    /// the region are decoded byte lane by byte lane (little-endian); every
    /// other access, and every byte that belongs to no register, reads as
    /// 0xFF. An access at the PIO window (0x10) transfers exactly
    /// `data.len()` bytes.
    pub fn read(&mut self, offset: u64, data: &mut [u8]) {
        data.fill(0xff);
        let Some(width) = access_width(offset, data.len()) else {
            return;
        };
        if offset == PIO_BUFFER_TRANSFER {
            self.pio_read(data);
            return;
        }
        for (base, size, reg) in LANES {
            let Some((start, end)) = overlap(offset, width, base, size) else {
                continue;
            };
            let value = self.reg_value(reg).to_le_bytes();
            copy_lanes(&value, base, data, offset, start, end);
        }
    }

    /// A guest write of `data` (its length is the access width) at
    /// `offset` from the region base.
    ///
    /// Decoded like [`read`](Self::read). Bytes aimed at read-only
    /// registers or holes are ignored. A write that touches part of a
    /// storage register (BUFFER_SIZE, the DMA address halves) replaces
    /// just those bytes; a write touching CMD_STS issues one command whose
    /// untouched bytes are 0. Registers touched by one access are updated
    /// in ascending address order, so an 8-byte write at 0x08 sets the
    /// whole DMA address.
    pub fn write(&mut self, offset: u64, data: &[u8]) {
        let Some(width) = access_width(offset, data.len()) else {
            return;
        };
        if offset == PIO_BUFFER_TRANSFER {
            self.pio_write(data);
            return;
        }
        for (base, size, reg) in LANES {
            let Some((start, end)) = overlap(offset, width, base, size) else {
                continue;
            };
            match reg {
                Reg::Magic | Reg::Crc | Reg::Flags => {}
                Reg::CmdSts => {
                    let mut v = [0u8; 4];
                    copy_lanes(data, offset, &mut v, base, start, end);
                    self.command(u16::from_le_bytes([v[0], v[1]]));
                }
                Reg::BufferSize => {
                    let mut v = self.buffer_size.to_le_bytes();
                    copy_lanes(data, offset, &mut v, base, start, end);
                    self.set_buffer_size(u32::from_le_bytes(v));
                }
                Reg::DmaLo => {
                    let mut v = self.dma_lo.to_le_bytes();
                    copy_lanes(data, offset, &mut v, base, start, end);
                    self.dma_lo = u32::from_le_bytes(v);
                }
                Reg::DmaHi => {
                    let mut v = self.dma_hi.to_le_bytes();
                    copy_lanes(data, offset, &mut v, base, start, end);
                    self.dma_hi = u32::from_le_bytes(v);
                }
            }
        }
    }

    fn dma_address(&self) -> u64 {
        (u64::from(self.dma_hi) << 32) | u64::from(self.dma_lo)
    }

    fn reg_value(&self, reg: Reg) -> u32 {
        match reg {
            Reg::Magic => u32::from(MAGIC_VALUE),
            Reg::CmdSts => u32::from(self.status),
            Reg::BufferSize => self.buffer_size,
            Reg::DmaLo => self.dma_lo,
            Reg::DmaHi => self.dma_hi,
            Reg::Crc => self.pio_crc(),
            Reg::Flags => {
                if self.use_pio {
                    FLAG_USE_PIO
                } else {
                    0
                }
            }
        }
    }

    /// CRC-32C over the PIO bytes `[0, offset)`; 0 when the offset lies
    /// past the buffer (after BUFFER_SIZE shrank it).
    fn pio_crc(&self) -> u32 {
        usize::try_from(self.pio_offset)
            .ok()
            .and_then(|end| self.pio.get(..end))
            .map_or(0, crc32c)
    }

    /// BUFFER_SIZE write: clamped to 64 KiB; the PIO buffer is reallocated
    /// zero-filled (its old contents are dropped), the PIO offset is kept.
    fn set_buffer_size(&mut self, requested: u32) {
        let size = requested.min(MAX_BUFFER_SIZE);
        self.buffer_size = size;
        self.pio = vec![0; usize::try_from(size).unwrap_or(0)];
        self.backend.set_buffer_size(size);
    }

    /// The range of the PIO buffer an access of `len` bytes at the current
    /// offset covers, if it fits.
    fn pio_range(&self, len: usize) -> Option<(usize, usize)> {
        let start = usize::try_from(self.pio_offset).ok()?;
        let end = start.checked_add(len)?;
        (end <= self.pio.len()).then_some((start, end))
    }

    fn advance_pio(&mut self, end: usize) {
        // `end` <= the buffer length <= 64 KiB, so it fits.
        self.pio_offset = u32::try_from(end).unwrap_or(self.pio_offset);
    }

    /// Out of range: reads 0, the offset stays put.
    fn pio_read(&mut self, data: &mut [u8]) {
        match self
            .pio_range(data.len())
            .and_then(|(s, e)| Some((e, self.pio.get(s..e)?)))
        {
            Some((end, src)) => {
                data.copy_from_slice(src);
                self.advance_pio(end);
            }
            None => data.fill(0),
        }
    }

    /// Out of range: dropped, the offset stays put.
    fn pio_write(&mut self, data: &[u8]) {
        let Some((start, end)) = self.pio_range(data.len()) else {
            return;
        };
        if let Some(dst) = self.pio.get_mut(start..end) {
            dst.copy_from_slice(data);
            self.advance_pio(end);
        }
    }

    fn command(&mut self, cmd: u16) {
        let status = match cmd {
            CMD_RESET => {
                self.soft_reset();
                DeviceStatus::Success
            }
            CMD_DMA_MM => self.mm(Transport::Dma),
            CMD_PIO_MM => self.mm(Transport::Pio),
            CMD_PIO_ZERO_OFFSET => {
                self.pio_offset = 0;
                DeviceStatus::Success
            }
            _ => DeviceStatus::ErrNotSupported,
        };
        self.status = status.code();
    }

    /// The RESET command, as in QEMU: no buffer, BUFFER_SIZE 0, DMA address
    /// 0. The PIO offset and the service state are left alone.
    fn soft_reset(&mut self) {
        self.buffer_size = 0;
        self.pio = Vec::new();
        self.dma_lo = 0;
        self.dma_hi = 0;
        self.backend.set_buffer_size(0);
    }

    /// DMA_MM / PIO_MM (docs/reference/device.md §5, §6).
    fn mm(&mut self, transport: Transport) -> DeviceStatus {
        let layout = self.backend.layout();
        let header_len = layout.mm_header();
        let buffer_size = usize::try_from(self.buffer_size).unwrap_or(0);
        if buffer_size < header_len {
            return DeviceStatus::ErrBadBufferSize;
        }
        let addr = self.dma_address();

        let mut header = vec![0u8; header_len];
        if let Err(status) = self.fetch(transport, addr, 0, &mut header) {
            return status;
        }
        // MessageLength follows the 16-byte HeaderGuid.
        let Ok(message_length) = codec::uintn_at(&header, 16, layout.word, "MessageLength") else {
            return DeviceStatus::ErrUnknown;
        };
        let Some(total) = u64::try_from(header_len)
            .ok()
            .and_then(|h| h.checked_add(message_length))
            .and_then(|t| usize::try_from(t).ok())
            .filter(|&t| t <= buffer_size)
        else {
            return DeviceStatus::ErrBadBufferSize;
        };

        let mut request = header;
        request.resize(total, 0);
        if let Some(body) = request.get_mut(header_len..) {
            if let Err(status) = self.fetch(transport, addr, header_len, body) {
                return status;
            }
        }

        self.capture_with(|c| c.request(&request));
        let response = self.backend.communicate(&request);
        let Some(reply) = response.reply else {
            return response.status;
        };
        // A reply never grows past the request's range: that is the range
        // just read, so the write-back below cannot reach memory the guest
        // did not hand over.
        if reply.len() > total {
            return DeviceStatus::ErrUnknown;
        }
        self.capture_with(|c| c.reply(&reply));

        match transport {
            Transport::Dma => {
                if self.memory.write_at(addr, &reply).is_err() {
                    return DeviceStatus::ErrUnknown;
                }
            }
            Transport::Pio => match self.pio.get_mut(..reply.len()) {
                Some(dst) => dst.copy_from_slice(&reply),
                None => return DeviceStatus::ErrUnknown,
            },
        }
        response.status
    }

    /// Copies request bytes `[at, at + buf.len())` from guest memory at the
    /// DMA address or from the PIO buffer. A DMA range that overflows or is
    /// not accessible gives ERR_UNKNOWN.
    fn fetch(
        &self,
        transport: Transport,
        addr: u64,
        at: usize,
        buf: &mut [u8],
    ) -> Result<(), DeviceStatus> {
        match transport {
            Transport::Dma => {
                let start = u64::try_from(at)
                    .ok()
                    .and_then(|at| addr.checked_add(at))
                    .ok_or(DeviceStatus::ErrUnknown)?;
                self.memory
                    .read_at(start, buf)
                    .map_err(|_| DeviceStatus::ErrUnknown)
            }
            Transport::Pio => {
                let src = at
                    .checked_add(buf.len())
                    .and_then(|end| self.pio.get(at..end))
                    .ok_or(DeviceStatus::ErrBadBufferSize)?;
                buf.copy_from_slice(src);
                Ok(())
            }
        }
    }

    /// Runs a capture call; a failure stops capturing and is kept for
    /// [`take_host_errors`](Self::take_host_errors).
    fn capture_with(&mut self, f: impl FnOnce(&mut dyn MmCapture) -> io::Result<()>) {
        if let Some(capture) = self.capture.as_deref_mut() {
            if let Err(e) = f(capture) {
                self.capture = None;
                self.host_errors.push(HostError::Capture(e));
            }
        }
    }
}

/// The width of a well-formed access: 1, 2, 4 or 8 bytes, naturally
/// aligned, inside the region.
fn access_width(offset: u64, len: usize) -> Option<u64> {
    if !matches!(len, 1 | 2 | 4 | 8) {
        return None;
    }
    let width = u64::try_from(len).ok()?;
    if offset.checked_rem(width)? != 0 {
        return None;
    }
    let end = offset.checked_add(width)?;
    (end <= REGION_SIZE).then_some(width)
}

/// The common part of `[a, a + a_len)` and `[b, b + b_len)`, if any.
/// All values are below [`REGION_SIZE`] + 8, so nothing overflows.
fn overlap(a: u64, a_len: u64, b: u64, b_len: u64) -> Option<(u64, u64)> {
    let start = a.max(b);
    let end = a.saturating_add(a_len).min(b.saturating_add(b_len));
    (start < end).then_some((start, end))
}

/// Copies region bytes `[start, end)` from `src` (which holds the bytes
/// from region offset `src_base` on) to `dst` (from `dst_base` on).
fn copy_lanes(src: &[u8], src_base: u64, dst: &mut [u8], dst_base: u64, start: u64, end: u64) {
    for lane in start..end {
        let s = lane
            .checked_sub(src_base)
            .and_then(|i| usize::try_from(i).ok());
        let d = lane
            .checked_sub(dst_base)
            .and_then(|i| usize::try_from(i).ok());
        if let (Some(s), Some(d)) = (s, d) {
            if let (Some(&byte), Some(slot)) = (src.get(s), dst.get_mut(d)) {
                *slot = byte;
            }
        }
    }
}
