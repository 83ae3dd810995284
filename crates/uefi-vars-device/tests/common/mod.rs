//! Test helpers: a guest driver that talks to the device the way edk2's
//! VirtMmCommunicationDxe (QemuMmio.c) does, an independent CRC-32C, and
//! the service constructor that captures when asked.
#![allow(dead_code)]

use uefi_vars::persist::Storage;
use uefi_vars::{testing, Config, DeviceStatus, MmResponse, Service};
use uefi_vars_device::{regs, DmaMemory, MmBackend, SparseRam, UefiVarsDevice};

/// Where the test guest keeps its 64 KiB communication buffer: above 4 GiB,
/// so both DMA address halves matter.
pub const DMA_BUFFER: u64 = 0x1_2345_0000;
/// Guest RAM around it.
pub const RAM_BASE: u64 = 0x1_2344_0000;
pub const RAM_SIZE: usize = 0x4_0000;

/// `Service::in_memory`, with the capture observer installed when
/// `UEFI_VARS_CAPTURE_DIR` names a directory (the QEMU oracle's `captures
/// --collect` sets it, crates/uefi-vars-qemu-oracle/src/captures.rs). Read
/// here, in test code: the library reads no environment variable.
pub fn in_memory(config: Config) -> Service {
    testing::in_memory(config, capture_dir().as_deref())
}

/// `Service::new`, captured as [`in_memory`] is.
pub fn new(config: Config, storage: Box<dyn Storage>) -> Result<Service, uefi_vars::Error> {
    testing::new(config, storage, capture_dir().as_deref())
}

fn capture_dir() -> Option<std::path::PathBuf> {
    std::env::var_os(testing::CAPTURE_DIR_VAR)
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from)
}

pub fn guest_ram() -> SparseRam {
    let mut ram = SparseRam::new();
    assert!(ram.add_region(RAM_BASE, RAM_SIZE));
    ram
}

/// Bit-at-a-time CRC-32C, written independently of the crate's table
/// version: reflected polynomial 0x82F63B78, init and final XOR all-ones.
pub fn reference_crc32c(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0x82F6_3B78 & mask);
        }
    }
    !crc
}

pub fn rd<B: MmBackend, M: DmaMemory>(
    dev: &mut UefiVarsDevice<B, M>,
    off: u64,
    width: usize,
) -> u64 {
    let mut buf = [0u8; 8];
    dev.read(off, &mut buf[..width]);
    u64::from_le_bytes(buf)
}

pub fn wr<B: MmBackend, M: DmaMemory>(
    dev: &mut UefiVarsDevice<B, M>,
    off: u64,
    width: usize,
    value: u64,
) {
    let bytes = value.to_le_bytes();
    dev.write(off, &bytes[..width]);
}

/// What a guest driver call ended with.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The command status and the guest buffer afterwards (request length).
    Done(u16, Vec<u8>),
    /// The driver gave up (edk2: EFI_DEVICE_ERROR on a CRC mismatch).
    CrcMismatch(&'static str),
}

/// edk2's VirtMmHwCommand: write CMD_STS (16-bit), poll it up to 100 times.
pub fn command<B: MmBackend, M: DmaMemory>(dev: &mut UefiVarsDevice<B, M>, cmd: u16) -> u16 {
    wr(dev, regs::CMD_STS, 2, u64::from(cmd));
    let mut sts = 0;
    for _ in 0..100 {
        sts = rd(dev, regs::CMD_STS, 2) as u16;
        if sts != regs::STS_BUSY {
            break;
        }
    }
    sts
}

/// edk2's VirtMmHwInit after discovery: MAGIC (16-bit), RESET, BUFFER_SIZE
/// = 64 KiB, FLAGS, then the DMA address halves unless FLAGS says PIO.
pub fn init<B: MmBackend, M: DmaMemory>(dev: &mut UefiVarsDevice<B, M>, force_dma_address: bool) {
    assert_eq!(rd(dev, regs::MAGIC, 2), 0x0EF1);
    assert_eq!(command(dev, regs::CMD_RESET), regs::STS_SUCCESS);
    wr(dev, regs::BUFFER_SIZE, 4, 0x10000);
    let flags = rd(dev, regs::FLAGS, 4);
    if flags & u64::from(regs::FLAG_USE_PIO) == 0 || force_dma_address {
        wr(dev, regs::DMA_BUFFER_ADDR_LO, 4, DMA_BUFFER & 0xFFFF_FFFF);
        wr(dev, regs::DMA_BUFFER_ADDR_HI, 4, DMA_BUFFER >> 32);
    }
}

/// One MM communication in DMA mode: copy the request into the 64 KiB
/// buffer, DMA_MM, copy the request's length back out.
pub fn dma_communicate<B: MmBackend>(
    dev: &mut UefiVarsDevice<B, SparseRam>,
    request: &[u8],
) -> Outcome {
    dev.memory_mut().write_at(DMA_BUFFER, request).unwrap();
    let sts = command(dev, regs::CMD_DMA_MM);
    let mut out = vec![0u8; request.len()];
    dev.memory().read_at(DMA_BUFFER, &mut out).unwrap();
    Outcome::Done(sts, out)
}

/// edk2's VirtMmHwPioTransfer generalised to any access width: ZERO_OFFSET,
/// ceil(len / width) accesses, then compare the CRC register with the CRC
/// of the units moved. `buffer` is the guest's buffer, already padded to a
/// whole number of units (the bytes past the request are whatever the
/// guest had there).
fn pio_transfer<B: MmBackend, M: DmaMemory>(
    dev: &mut UefiVarsDevice<B, M>,
    buffer: &mut [u8],
    width: usize,
    to_device: bool,
) -> Result<(), &'static str> {
    assert_eq!(command(dev, regs::CMD_PIO_ZERO_OFFSET), regs::STS_SUCCESS);
    for unit in buffer.chunks_mut(width) {
        if to_device {
            dev.write(regs::PIO_BUFFER_TRANSFER, unit);
        } else {
            dev.read(regs::PIO_BUFFER_TRANSFER, unit);
        }
    }
    let crc = rd(dev, regs::PIO_BUFFER_CRC32C, 4) as u32;
    if crc == reference_crc32c(buffer) {
        Ok(())
    } else {
        Err(if to_device {
            "to device"
        } else {
            "from device"
        })
    }
}

/// One MM communication in PIO mode, as edk2 does it (with `width` = 4).
pub fn pio_communicate<B: MmBackend, M: DmaMemory>(
    dev: &mut UefiVarsDevice<B, M>,
    request: &[u8],
    width: usize,
) -> Outcome {
    let units = request.len().div_ceil(width);
    let mut buffer = request.to_vec();
    // Whatever follows the request in the guest's buffer.
    buffer.resize(units * width, 0xA5);
    if let Err(e) = pio_transfer(dev, &mut buffer, width, true) {
        return Outcome::CrcMismatch(e);
    }
    let sts = command(dev, regs::CMD_PIO_MM);
    if let Err(e) = pio_transfer(dev, &mut buffer, width, false) {
        return Outcome::CrcMismatch(e);
    }
    buffer.truncate(request.len());
    Outcome::Done(sts, buffer)
}

/// The status a bare service gives for a request, for comparison.
pub fn status_code(resp: &MmResponse) -> u16 {
    resp.status.code()
}

pub fn ok() -> u16 {
    DeviceStatus::Success.code()
}
