//! Every register, command and access width of the device.

mod common;

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use common::*;
use uefi_vars::codec::{build_request, request, Layout};
use uefi_vars::guid::{Guid, END_OF_DXE_EVENT};
use uefi_vars::pcap::{read_records, PcapWriter, RecordKind};
use uefi_vars::{Config, Service};
use uefi_vars_device::regs::*;
use uefi_vars_device::{DmaMemory, MemoryError, Registers, SparseRam, UefiVarsDevice};

type Dev = UefiVarsDevice<Service, SparseRam>;

fn device() -> Dev {
    UefiVarsDevice::new(common::in_memory(Config::default()), guest_ram())
}

fn device_with(config: Config) -> Dev {
    UefiVarsDevice::new(common::in_memory(config), guest_ram())
}

/// A device with a 64 KiB buffer at [`DMA_BUFFER`], as edk2 leaves it.
fn ready() -> Dev {
    let mut dev = device();
    init(&mut dev, false);
    dev
}

const UNKNOWN_GUID: Guid = Guid([0x5a; 16]);

// ---------------------------------------------------------------------------
// Power-on values and plain reads.

#[test]
fn power_on_registers() {
    let mut dev = device();
    assert_eq!(
        dev.registers(),
        Registers {
            status: 0,
            buffer_size: 0,
            dma_address: 0,
            pio_offset: 0,
            use_pio: false,
        }
    );
    assert_eq!(rd(&mut dev, MAGIC, 2), 0x0EF1);
    assert_eq!(rd(&mut dev, CMD_STS, 2), 0);
    assert_eq!(rd(&mut dev, BUFFER_SIZE, 4), 0);
    assert_eq!(rd(&mut dev, DMA_BUFFER_ADDR_LO, 4), 0);
    assert_eq!(rd(&mut dev, DMA_BUFFER_ADDR_HI, 4), 0);
    // CRC-32C of nothing.
    assert_eq!(rd(&mut dev, PIO_BUFFER_CRC32C, 4), 0);
    assert_eq!(rd(&mut dev, FLAGS, 4), 0);
}

#[test]
fn flags_reflect_use_pio_and_nothing_else() {
    let mut dev = device().with_use_pio(true);
    assert_eq!(rd(&mut dev, FLAGS, 4), 1);
    assert_eq!(rd(&mut dev, FLAGS, 2), 1);
    assert_eq!(rd(&mut dev, FLAGS, 1), 1);
    assert_eq!(rd(&mut dev, FLAGS + 1, 1), 0);
    assert_eq!(rd(&mut dev, FLAGS + 2, 2), 0);
    assert!(dev.registers().use_pio);
}

#[test]
fn magic_at_every_width() {
    let mut dev = device();
    assert_eq!(rd(&mut dev, MAGIC, 1), 0xF1);
    assert_eq!(rd(&mut dev, MAGIC + 1, 1), 0x0E);
    assert_eq!(rd(&mut dev, MAGIC, 2), 0x0EF1);
    // Wider reads see the neighbouring registers' lanes.
    wr(&mut dev, BUFFER_SIZE, 4, 0x1234);
    command(&mut dev, 0x99); // CMD_STS := 0x11
    assert_eq!(rd(&mut dev, MAGIC, 4), 0x0011_0EF1);
    assert_eq!(rd(&mut dev, MAGIC, 8), 0x0000_1234_0011_0EF1);
}

#[test]
fn eight_byte_accesses_cover_register_pairs() {
    let mut dev = device();
    wr(&mut dev, DMA_BUFFER_ADDR_LO, 8, 0x0123_4567_89AB_CDEF);
    assert_eq!(rd(&mut dev, DMA_BUFFER_ADDR_LO, 4), 0x89AB_CDEF);
    assert_eq!(rd(&mut dev, DMA_BUFFER_ADDR_HI, 4), 0x0123_4567);
    assert_eq!(rd(&mut dev, DMA_BUFFER_ADDR_LO, 8), 0x0123_4567_89AB_CDEF);
    assert_eq!(dev.registers().dma_address, 0x0123_4567_89AB_CDEF);
    // CRC and FLAGS as one read.
    let mut dev = device().with_use_pio(true);
    assert_eq!(rd(&mut dev, PIO_BUFFER_CRC32C, 8), 1 << 32);
}

#[test]
fn sub_register_reads_and_writes_are_byte_lanes() {
    let mut dev = device();
    wr(&mut dev, DMA_BUFFER_ADDR_LO, 4, 0x1122_3344);
    assert_eq!(rd(&mut dev, DMA_BUFFER_ADDR_LO, 1), 0x44);
    assert_eq!(rd(&mut dev, DMA_BUFFER_ADDR_LO + 1, 1), 0x33);
    assert_eq!(rd(&mut dev, DMA_BUFFER_ADDR_LO + 2, 2), 0x1122);
    // A narrow write replaces only its bytes.
    wr(&mut dev, DMA_BUFFER_ADDR_LO + 1, 1, 0xAA);
    assert_eq!(rd(&mut dev, DMA_BUFFER_ADDR_LO, 4), 0x1122_AA44);
    wr(&mut dev, DMA_BUFFER_ADDR_LO + 2, 2, 0xBBCC);
    assert_eq!(rd(&mut dev, DMA_BUFFER_ADDR_LO, 4), 0xBBCC_AA44);
    wr(&mut dev, DMA_BUFFER_ADDR_HI, 2, 0x7788);
    assert_eq!(rd(&mut dev, DMA_BUFFER_ADDR_HI, 4), 0x7788);
    wr(&mut dev, DMA_BUFFER_ADDR_HI + 3, 1, 0x99);
    assert_eq!(dev.registers().dma_address, 0x9900_7788_BBCC_AA44);
}

// ---------------------------------------------------------------------------
// Bad accesses.

#[test]
fn undefined_offsets_read_all_ones() {
    let mut dev = ready();
    // 0x14..0x18 is no register; 0x11..0x17 are not the window's start.
    assert_eq!(rd(&mut dev, 0x14, 4), 0xFFFF_FFFF);
    assert_eq!(rd(&mut dev, 0x12, 2), 0xFFFF);
    assert_eq!(rd(&mut dev, 0x11, 1), 0xFF);
    assert_eq!(rd(&mut dev, 0x16, 2), 0xFFFF);
    // Outside the region.
    for off in [0x20u64, 0x24, 0x28, 0x100, 0xFFF, 0x1000, u64::MAX] {
        for width in [1usize, 2, 4, 8] {
            let mut buf = vec![0u8; width];
            dev.read(off, &mut buf);
            assert!(buf.iter().all(|&b| b == 0xFF), "{off:#x}/{width}");
        }
    }
    // None of that moved the PIO offset.
    assert_eq!(dev.registers().pio_offset, 0);
}

#[test]
fn malformed_accesses_read_all_ones_and_write_nothing() {
    let mut dev = ready();
    let before = dev.registers();
    // Misaligned.
    for (off, width) in [
        (0x01u64, 2usize),
        (0x02, 4),
        (0x04, 8),
        (0x06, 4),
        (0x0A, 4),
    ] {
        assert_eq!(
            rd(&mut dev, off, width),
            u64::MAX >> (64 - 8 * width),
            "{off:#x}/{width}"
        );
        wr(&mut dev, off, width, 0);
    }
    // Sizes the bus never produces.
    for width in [0usize, 3, 5, 6, 7, 16, 64] {
        let mut buf = vec![0u8; width];
        dev.read(BUFFER_SIZE, &mut buf);
        assert!(buf.iter().all(|&b| b == 0xFF));
        dev.write(BUFFER_SIZE, &vec![0u8; width]);
        dev.write(CMD_STS, &vec![CMD_RESET as u8; width]);
        dev.write(PIO_BUFFER_TRANSFER, &vec![1u8; width]);
    }
    assert_eq!(dev.registers(), before);
}

#[test]
fn writes_to_read_only_registers_are_ignored() {
    let mut dev = ready();
    let before = dev.registers();
    for (off, widths) in [
        (MAGIC, &[1usize, 2][..]),
        (MAGIC + 1, &[1][..]),
        (PIO_BUFFER_CRC32C, &[1, 2, 4][..]),
        (FLAGS, &[1, 2, 4][..]),
        (PIO_BUFFER_CRC32C, &[8][..]),
        (0x14, &[1, 2, 4][..]),
    ] {
        for &w in widths {
            wr(&mut dev, off, w, u64::MAX);
        }
    }
    assert_eq!(dev.registers(), before);
    assert_eq!(rd(&mut dev, MAGIC, 2), 0x0EF1);
    assert_eq!(rd(&mut dev, FLAGS, 4), 0);
    assert_eq!(rd(&mut dev, PIO_BUFFER_CRC32C, 4), 0);
}

// ---------------------------------------------------------------------------
// BUFFER_SIZE.

#[test]
fn buffer_size_is_clamped_to_64k() {
    let mut dev = device();
    for (value, expect) in [
        (0u64, 0u64),
        (1, 1),
        (0x1000, 0x1000),
        (0x10000, 0x10000),
        (0x10001, 0x10000),
        (0xFFFF_FFFF, 0x10000),
    ] {
        wr(&mut dev, BUFFER_SIZE, 4, value);
        assert_eq!(rd(&mut dev, BUFFER_SIZE, 4), expect, "{value:#x}");
        assert_eq!(dev.backend().buffer_size() as u64, expect);
    }
    // Byte lanes: a 16-bit guest writes the halves.
    wr(&mut dev, BUFFER_SIZE, 4, 0);
    wr(&mut dev, BUFFER_SIZE + 2, 2, 1);
    assert_eq!(rd(&mut dev, BUFFER_SIZE, 4), 0x10000);
    wr(&mut dev, BUFFER_SIZE, 4, 0);
    wr(&mut dev, BUFFER_SIZE, 2, 0x1234);
    assert_eq!(rd(&mut dev, BUFFER_SIZE, 4), 0x1234);
    wr(&mut dev, BUFFER_SIZE + 1, 1, 0x56);
    assert_eq!(rd(&mut dev, BUFFER_SIZE, 4), 0x5634);
    wr(&mut dev, BUFFER_SIZE + 2, 2, 0xFFFF);
    assert_eq!(rd(&mut dev, BUFFER_SIZE, 4), 0x10000);
    // An 8-byte write at 0x00: MAGIC ignored, CMD_STS runs (PIO_ZERO_OFFSET),
    // then BUFFER_SIZE.
    wr(
        &mut dev,
        MAGIC,
        8,
        (0x200u64 << 32) | (u64::from(CMD_PIO_ZERO_OFFSET) << 16),
    );
    assert_eq!(rd(&mut dev, BUFFER_SIZE, 4), 0x200);
    assert_eq!(rd(&mut dev, CMD_STS, 2), u64::from(STS_SUCCESS));
}

#[test]
fn buffer_size_write_reallocates_the_pio_buffer_zeroed() {
    let mut dev = device();
    wr(&mut dev, BUFFER_SIZE, 4, 16);
    wr(&mut dev, PIO_BUFFER_TRANSFER, 8, 0x0102_0304_0506_0708);
    assert_eq!(dev.registers().pio_offset, 8);
    wr(&mut dev, BUFFER_SIZE, 4, 16);
    // The offset is kept (as in QEMU), the content is gone.
    assert_eq!(dev.registers().pio_offset, 8);
    assert_eq!(
        rd(&mut dev, PIO_BUFFER_CRC32C, 4) as u32,
        reference_crc32c(&[0; 8])
    );
    command(&mut dev, CMD_PIO_ZERO_OFFSET);
    assert_eq!(rd(&mut dev, PIO_BUFFER_TRANSFER, 8), 0);
}

// ---------------------------------------------------------------------------
// Commands.

#[test]
fn unknown_commands_are_not_supported() {
    let mut dev = ready();
    for cmd in [0u16, 5, 6, 0x10, 0x100, 0x102, 0xFFFF] {
        assert_eq!(command(&mut dev, cmd), STS_ERR_NOT_SUPPORTED, "{cmd:#x}");
    }
    // A 1-byte write to CMD_STS is a command with a zero high byte...
    wr(&mut dev, CMD_STS, 1, u64::from(CMD_PIO_ZERO_OFFSET));
    assert_eq!(rd(&mut dev, CMD_STS, 2), 0);
    // ...and one to the high byte alone a command with a zero low byte.
    wr(&mut dev, CMD_STS + 1, 1, 0x04);
    assert_eq!(rd(&mut dev, CMD_STS, 2), u64::from(STS_ERR_NOT_SUPPORTED));
    assert_eq!(rd(&mut dev, CMD_STS, 1), u64::from(STS_ERR_NOT_SUPPORTED));
    assert_eq!(rd(&mut dev, CMD_STS + 1, 1), 0);
    // Reading the status has no side effect.
    assert_eq!(rd(&mut dev, CMD_STS, 2), u64::from(STS_ERR_NOT_SUPPORTED));
}

#[test]
fn status_codes_match_the_service() {
    use uefi_vars::DeviceStatus;
    assert_eq!(STS_SUCCESS, DeviceStatus::Success.code());
    assert_eq!(STS_SUCCESS, 0x00);
    assert_eq!(STS_BUSY, 0x01);
    assert_eq!(STS_ERR_UNKNOWN, 0x10);
    assert_eq!(STS_ERR_NOT_SUPPORTED, 0x11);
    assert_eq!(STS_ERR_BAD_BUFFER_SIZE, 0x12);
    assert_eq!(
        (CMD_RESET, CMD_DMA_MM, CMD_PIO_MM, CMD_PIO_ZERO_OFFSET),
        (1, 2, 3, 4)
    );
    assert_eq!(MAX_BUFFER_SIZE, 0x10000);
    assert_eq!(REGION_SIZE, 0x20);
}

#[test]
fn soft_reset_command_behaves_as_in_qemu() {
    let mut dev = ready();
    wr(&mut dev, PIO_BUFFER_TRANSFER, 4, 0xDEAD_BEEF);
    assert_eq!(command(&mut dev, 0x77), STS_ERR_NOT_SUPPORTED);
    dev.backend_mut()
        .communicate(&request::event(Layout::X64, &END_OF_DXE_EVENT));
    assert!(dev.backend().phase().end_of_dxe);

    assert_eq!(command(&mut dev, CMD_RESET), STS_SUCCESS);
    let r = dev.registers();
    assert_eq!((r.status, r.buffer_size, r.dma_address), (0, 0, 0));
    // The PIO offset and the service state are left alone.
    assert_eq!(r.pio_offset, 4);
    assert!(dev.backend().phase().end_of_dxe);
    assert_eq!(dev.backend().buffer_size(), 0);
    // With no buffer every MM command fails framing, and the PIO window is
    // closed.
    assert_eq!(command(&mut dev, CMD_DMA_MM), STS_ERR_BAD_BUFFER_SIZE);
    assert_eq!(command(&mut dev, CMD_PIO_MM), STS_ERR_BAD_BUFFER_SIZE);
    assert_eq!(rd(&mut dev, PIO_BUFFER_TRANSFER, 4), 0);
    assert_eq!(rd(&mut dev, PIO_BUFFER_CRC32C, 4), 0);
    assert_eq!(dev.registers().pio_offset, 4);
}

#[test]
fn machine_reset_clears_all_device_state() {
    let mut dev = ready().with_use_pio(true);
    wr(&mut dev, PIO_BUFFER_TRANSFER, 4, 0xDEAD_BEEF);
    assert_eq!(command(&mut dev, 0x77), STS_ERR_NOT_SUPPORTED);
    dev.backend_mut()
        .communicate(&request::event(Layout::X64, &END_OF_DXE_EVENT));

    dev.reset().unwrap();
    assert_eq!(
        dev.registers(),
        Registers {
            status: 0,
            buffer_size: 0,
            dma_address: 0,
            pio_offset: 0,
            use_pio: true,
        }
    );
    assert!(!dev.backend().phase().end_of_dxe);
    assert_eq!(dev.backend().buffer_size(), 0);
    assert_eq!(rd(&mut dev, MAGIC, 2), 0x0EF1);
    assert_eq!(rd(&mut dev, FLAGS, 4), 1);
    // The PIO buffer is gone too: a new buffer starts zeroed at offset 0.
    wr(&mut dev, BUFFER_SIZE, 4, 8);
    assert_eq!(rd(&mut dev, PIO_BUFFER_TRANSFER, 4), 0);
    assert_eq!(dev.registers().pio_offset, 4);
}

// ---------------------------------------------------------------------------
// PIO window and CRC.

#[test]
fn pio_window_moves_exactly_the_access_width() {
    for width in [1usize, 2, 4, 8] {
        let mut dev = device();
        wr(&mut dev, BUFFER_SIZE, 4, 64);
        let data: Vec<u8> = (1..=32).collect();
        for chunk in data.chunks(width) {
            dev.write(PIO_BUFFER_TRANSFER, chunk);
        }
        assert_eq!(dev.registers().pio_offset, 32, "width {width}");
        assert_eq!(
            rd(&mut dev, PIO_BUFFER_CRC32C, 4) as u32,
            reference_crc32c(&data)
        );
        // Read back at another width.
        command(&mut dev, CMD_PIO_ZERO_OFFSET);
        let other = if width == 8 { 1 } else { 8 };
        let mut back = vec![0u8; 32];
        for chunk in back.chunks_mut(other) {
            dev.read(PIO_BUFFER_TRANSFER, chunk);
        }
        assert_eq!(back, data, "width {width}");
        assert_eq!(dev.registers().pio_offset, 32);
    }
}

#[test]
fn pio_window_is_little_endian() {
    let mut dev = device();
    wr(&mut dev, BUFFER_SIZE, 4, 16);
    wr(&mut dev, PIO_BUFFER_TRANSFER, 4, 0x0403_0201);
    wr(&mut dev, PIO_BUFFER_TRANSFER, 2, 0x0605);
    wr(&mut dev, PIO_BUFFER_TRANSFER, 1, 0x07);
    wr(&mut dev, PIO_BUFFER_TRANSFER, 1, 0x08);
    command(&mut dev, CMD_PIO_ZERO_OFFSET);
    assert_eq!(rd(&mut dev, PIO_BUFFER_TRANSFER, 8), 0x0807_0605_0403_0201);
}

#[test]
fn pio_past_the_end_is_dropped_and_the_offset_stays() {
    let mut dev = device();
    wr(&mut dev, BUFFER_SIZE, 4, 6);
    wr(&mut dev, PIO_BUFFER_TRANSFER, 4, 0x4433_2211);
    // 4 + 4 > 6: dropped.
    wr(&mut dev, PIO_BUFFER_TRANSFER, 4, 0xFFFF_FFFF);
    assert_eq!(dev.registers().pio_offset, 4);
    wr(&mut dev, PIO_BUFFER_TRANSFER, 8, u64::MAX);
    assert_eq!(dev.registers().pio_offset, 4);
    wr(&mut dev, PIO_BUFFER_TRANSFER, 2, 0x6655);
    assert_eq!(dev.registers().pio_offset, 6);
    wr(&mut dev, PIO_BUFFER_TRANSFER, 1, 0x77);
    assert_eq!(dev.registers().pio_offset, 6);
    // Reads past the end return 0 and leave the offset.
    assert_eq!(rd(&mut dev, PIO_BUFFER_TRANSFER, 1), 0);
    assert_eq!(dev.registers().pio_offset, 6);
    command(&mut dev, CMD_PIO_ZERO_OFFSET);
    assert_eq!(rd(&mut dev, PIO_BUFFER_TRANSFER, 8), 0);
    assert_eq!(dev.registers().pio_offset, 0);
    assert_eq!(rd(&mut dev, PIO_BUFFER_TRANSFER, 4), 0x4433_2211);
    assert_eq!(rd(&mut dev, PIO_BUFFER_TRANSFER, 2), 0x6655);
    assert_eq!(rd(&mut dev, PIO_BUFFER_TRANSFER, 2), 0);
    assert_eq!(dev.registers().pio_offset, 6);
}

#[test]
fn crc_is_zero_when_the_offset_is_past_a_shrunk_buffer() {
    let mut dev = device();
    wr(&mut dev, BUFFER_SIZE, 4, 16);
    for _ in 0..2 {
        wr(&mut dev, PIO_BUFFER_TRANSFER, 8, 0x1111_1111_1111_1111);
    }
    // Before the shrink: the CRC of the 16 bytes written (not 0, so the
    // 0 below is the shrink's doing).
    let before = reference_crc32c(&[0x11; 16]);
    assert_ne!(before, 0);
    assert_eq!(rd(&mut dev, PIO_BUFFER_CRC32C, 4), u64::from(before));
    wr(&mut dev, BUFFER_SIZE, 4, 8);
    assert_eq!(dev.registers().pio_offset, 16);
    assert_eq!(rd(&mut dev, PIO_BUFFER_CRC32C, 4), 0);
    assert_eq!(rd(&mut dev, PIO_BUFFER_TRANSFER, 1), 0);
}

/// Known CRC-32C values: the standard check value, and edk2's own unit-test
/// vectors for `CalculateCrc32c(buf, len, 0)` (MdePkg BaseLib tests), which
/// is what VirtMmHwPioTransfer compares the register with. QEMU computes
/// the register as `crc32c(0xffffffff, buf, len)`, and its `crc32c()`
/// XORs the result with 0xffffffff: the same standard CRC, not the raw
/// register value.
#[test]
fn crc_register_matches_known_vectors() {
    let vectors: [(&[u8], u32); 5] = [
        (b"123456789", 0xE306_9283),
        (b"hello", 0x9A71_BB4C),
        (b"h", 0xB962_98FC),
        (b"longlonglonglonglong", 0xC50F_869D),
        (b"", 0),
    ];
    for (data, expect) in vectors {
        assert_eq!(reference_crc32c(data), expect);
        assert_eq!(uefi_vars_device::crc32c::crc32c(data), expect);
        let mut dev = device();
        wr(&mut dev, BUFFER_SIZE, 4, 64);
        for &b in data {
            wr(&mut dev, PIO_BUFFER_TRANSFER, 1, u64::from(b));
        }
        assert_eq!(rd(&mut dev, PIO_BUFFER_CRC32C, 4), u64::from(expect));
        // Reading the register changes nothing: the same value again, the
        // PIO offset where the writes left it.
        assert_eq!(rd(&mut dev, PIO_BUFFER_CRC32C, 4), u64::from(expect));
        assert_eq!(dev.registers().pio_offset as usize, data.len());
    }
}

#[test]
fn crc_of_a_full_buffer() {
    let mut dev = device();
    wr(&mut dev, BUFFER_SIZE, 4, 0x10000);
    let data: Vec<u8> = (0..0x10000u32).map(|i| (i * 7 + (i >> 8)) as u8).collect();
    for chunk in data.chunks(8) {
        dev.write(PIO_BUFFER_TRANSFER, chunk);
    }
    assert_eq!(dev.registers().pio_offset, 0x10000);
    assert_eq!(
        rd(&mut dev, PIO_BUFFER_CRC32C, 4) as u32,
        reference_crc32c(&data)
    );
    // The buffer is full: one more byte is dropped.
    wr(&mut dev, PIO_BUFFER_TRANSFER, 1, 0);
    assert_eq!(dev.registers().pio_offset, 0x10000);
}

// ---------------------------------------------------------------------------
// DMA_MM and PIO_MM framing and memory errors.

fn payload_size_request() -> Vec<u8> {
    request::get_payload_size(Layout::X64)
}

#[test]
fn dma_mm_round_trip() {
    let mut dev = ready();
    let req = payload_size_request();
    let Outcome::Done(sts, reply) = dma_communicate(&mut dev, &req) else {
        panic!()
    };
    assert_eq!(sts, STS_SUCCESS);
    let expect = common::in_memory(Config::default()).communicate(&req);
    assert_eq!(Some(reply), expect.reply);
}

#[test]
fn pio_mm_round_trip_at_every_width() {
    for width in [1usize, 2, 4, 8] {
        let mut dev = device().with_use_pio(true);
        init(&mut dev, false);
        assert_eq!(dev.registers().dma_address, 0);
        let req = payload_size_request();
        let Outcome::Done(sts, reply) = pio_communicate(&mut dev, &req, width) else {
            panic!("crc mismatch at width {width}")
        };
        assert_eq!(sts, STS_SUCCESS);
        let expect = common::in_memory(Config::default()).communicate(&req);
        assert_eq!(Some(reply), expect.reply, "width {width}");
    }
}

#[test]
fn unknown_guid_is_not_supported_and_echoed() {
    let mut dev = ready();
    let req = build_request(Layout::X64, &UNKNOWN_GUID, b"abcdef");
    assert_eq!(
        dma_communicate(&mut dev, &req),
        Outcome::Done(STS_ERR_NOT_SUPPORTED, req.clone())
    );
    let mut dev = device().with_use_pio(true);
    init(&mut dev, false);
    assert_eq!(
        pio_communicate(&mut dev, &req, 4),
        Outcome::Done(STS_ERR_NOT_SUPPORTED, req)
    );
}

#[test]
fn framing_errors_are_bad_buffer_size_and_write_nothing() {
    // MessageLength beyond BUFFER_SIZE.
    let mut dev = ready();
    wr(&mut dev, BUFFER_SIZE, 4, 0x100);
    let mut req = build_request(Layout::X64, &UNKNOWN_GUID, &[7; 0x100 - 24]);
    assert_eq!(
        dma_communicate(&mut dev, &req),
        Outcome::Done(STS_ERR_NOT_SUPPORTED, req.clone())
    );
    req.push(7);
    req[16] += 1;
    assert_eq!(
        dma_communicate(&mut dev, &req),
        Outcome::Done(STS_ERR_BAD_BUFFER_SIZE, req.clone())
    );
    // MessageLength so large that 24 + it overflows u64, or is just huge.
    for len in [
        u64::MAX,
        u64::MAX - 23,
        u64::MAX - 24,
        1 << 40,
        0x10000 - 23,
    ] {
        let mut req = build_request(Layout::X64, &UNKNOWN_GUID, &[]);
        req[16..24].copy_from_slice(&len.to_le_bytes());
        wr(&mut dev, BUFFER_SIZE, 4, 0x10000);
        assert_eq!(
            dma_communicate(&mut dev, &req),
            Outcome::Done(STS_ERR_BAD_BUFFER_SIZE, req.clone()),
            "{len:#x}"
        );
    }
    // BUFFER_SIZE smaller than the header.
    wr(&mut dev, BUFFER_SIZE, 4, 23);
    let req = build_request(Layout::X64, &UNKNOWN_GUID, &[]);
    assert_eq!(
        dma_communicate(&mut dev, &req),
        Outcome::Done(STS_ERR_BAD_BUFFER_SIZE, req.clone())
    );
    wr(&mut dev, BUFFER_SIZE, 4, 24);
    assert_eq!(
        dma_communicate(&mut dev, &req),
        Outcome::Done(STS_ERR_NOT_SUPPORTED, req)
    );
}

#[test]
fn pio_framing_errors_leave_the_pio_buffer_alone() {
    let mut dev = device().with_use_pio(true);
    init(&mut dev, false);
    wr(&mut dev, BUFFER_SIZE, 4, 0x40);
    let mut req = build_request(Layout::X64, &UNKNOWN_GUID, &[9; 0x40 - 24]);
    req[16] = 0x41 - 24;
    assert_eq!(
        pio_communicate(&mut dev, &req, 4),
        Outcome::Done(STS_ERR_BAD_BUFFER_SIZE, req)
    );
}

#[test]
fn dma_to_unmapped_memory_is_a_clean_device_error() {
    let req = build_request(Layout::X64, &UNKNOWN_GUID, &[1; 100]);
    let cases: [(u64, &str); 5] = [
        (0, "below RAM"),
        (RAM_BASE - 24, "header in RAM's hole"),
        (
            RAM_BASE + RAM_SIZE as u64 - 24,
            "body straddles the end of RAM",
        ),
        (
            RAM_BASE + RAM_SIZE as u64 - 10,
            "header straddles the end of RAM",
        ),
        (u64::MAX - 30, "address overflows"),
    ];
    for (addr, what) in cases {
        let mut dev = ready();
        wr(&mut dev, DMA_BUFFER_ADDR_LO, 8, addr);
        // Put whatever part of the request fits into RAM there.
        let mut before = Vec::new();
        for (i, byte) in req.iter().enumerate() {
            let a = addr.wrapping_add(i as u64);
            if dev.memory_mut().write_at(a, &[*byte]).is_ok() {
                before.push((a, *byte));
            }
        }
        assert_eq!(command(&mut dev, CMD_DMA_MM), STS_ERR_UNKNOWN, "{what}");
        for (a, byte) in before {
            let mut now = [0u8];
            dev.memory().read_at(a, &mut now).unwrap();
            assert_eq!(now[0], byte, "{what}: byte at {a:#x} changed");
        }
    }
}

/// Memory that reads fine but refuses writes (e.g. ROM).
struct ReadOnly(SparseRam);

impl DmaMemory for ReadOnly {
    fn read_at(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        self.0.read_at(addr, buf)
    }
    fn write_at(&mut self, addr: u64, data: &[u8]) -> Result<(), MemoryError> {
        Err(MemoryError::Inaccessible {
            addr,
            len: data.len(),
        })
    }
}

#[test]
fn a_failed_reply_write_is_a_device_error() {
    let mut ram = guest_ram();
    let req = payload_size_request();
    ram.write_at(DMA_BUFFER, &req).unwrap();
    let mut dev = UefiVarsDevice::new(common::in_memory(Config::default()), ReadOnly(ram));
    init(&mut dev, false);
    assert_eq!(command(&mut dev, CMD_DMA_MM), STS_ERR_UNKNOWN);
    let mut now = vec![0u8; req.len()];
    dev.memory().read_at(DMA_BUFFER, &mut now).unwrap();
    assert_eq!(now, req);
}

#[test]
fn dma_buffer_below_4g_and_unaligned() {
    let mut ram = SparseRam::new();
    assert!(ram.add_region(0x8_0000, 0x2_0000));
    let mut dev = UefiVarsDevice::new(common::in_memory(Config::default()), ram);
    wr(&mut dev, BUFFER_SIZE, 4, 0x10000);
    wr(&mut dev, DMA_BUFFER_ADDR_LO, 4, 0x8_0003);
    wr(&mut dev, DMA_BUFFER_ADDR_HI, 4, 0);
    let req = payload_size_request();
    dev.memory_mut().write_at(0x8_0003, &req).unwrap();
    assert_eq!(command(&mut dev, CMD_DMA_MM), STS_SUCCESS);
    let mut reply = vec![0u8; req.len()];
    dev.memory().read_at(0x8_0003, &mut reply).unwrap();
    let expect = common::in_memory(Config::default()).communicate(&req);
    assert_eq!(Some(reply), expect.reply);
}

// ---------------------------------------------------------------------------
// Guest word size: the header length comes from the service's layout.

#[test]
fn ia32_guest_has_a_20_byte_header() {
    let ia32 = Config::default().with_layout(Layout::IA32);
    // BUFFER_SIZE 20 holds an IA32 header but not an X64 one.
    let req = build_request(Layout::IA32, &UNKNOWN_GUID, &[]);
    assert_eq!(req.len(), 20);
    let mut dev = device_with(ia32.clone());
    init(&mut dev, false);
    wr(&mut dev, BUFFER_SIZE, 4, 20);
    assert_eq!(
        dma_communicate(&mut dev, &req),
        Outcome::Done(STS_ERR_NOT_SUPPORTED, req.clone())
    );
    wr(&mut dev, BUFFER_SIZE, 4, 19);
    assert_eq!(
        dma_communicate(&mut dev, &req),
        Outcome::Done(STS_ERR_BAD_BUFFER_SIZE, req.clone())
    );
    let mut x64 = device();
    init(&mut x64, false);
    wr(&mut x64, BUFFER_SIZE, 4, 20);
    let req64 = build_request(Layout::X64, &UNKNOWN_GUID, &[]);
    assert_eq!(
        dma_communicate(&mut x64, &req64),
        Outcome::Done(STS_ERR_BAD_BUFFER_SIZE, req64)
    );

    // MessageLength is a u32: the 4 bytes after it are payload, not length.
    let mut dev = device_with(ia32.clone());
    init(&mut dev, false);
    let mut req = build_request(Layout::IA32, &UNKNOWN_GUID, &[0xFF; 8]);
    assert_eq!(&req[16..20], &[8, 0, 0, 0]);
    req[20..24].copy_from_slice(&[0xFF; 4]);
    assert_eq!(
        dma_communicate(&mut dev, &req),
        Outcome::Done(STS_ERR_NOT_SUPPORTED, req)
    );
}

#[test]
fn ia32_requests_match_the_service_in_both_modes() {
    let ia32 = Config::default().with_layout(Layout::IA32);
    let name: Vec<u8> = "Foo\0".encode_utf16().flat_map(u16::to_le_bytes).collect();
    let guid = Guid([0x11; 16]);
    let requests = vec![
        request::get_payload_size(Layout::IA32),
        request::set_variable(Layout::IA32, &guid, &name, 7, b"bar"),
        request::get_variable(Layout::IA32, &guid, &name, 16),
        request::get_next_variable_name(Layout::IA32, &Guid([0; 16]), &[0, 0], 64),
        request::query_variable_info(Layout::IA32, 7),
        request::event(Layout::IA32, &END_OF_DXE_EVENT),
    ];
    for pio in [false, true] {
        let mut reference = common::in_memory(ia32.clone());
        let mut dev = device_with(ia32.clone()).with_use_pio(pio);
        init(&mut dev, false);
        for req in &requests {
            let expect = reference.communicate(req);
            let got = if pio {
                pio_communicate(&mut dev, req, 4)
            } else {
                dma_communicate(&mut dev, req)
            };
            assert_eq!(
                got,
                Outcome::Done(expect.status.code(), expect.reply.unwrap()),
                "pio {pio}"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Capture.

#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn capture_records_reset_request_and_reply() {
    let sink = Shared::default();
    let mut dev = ready();
    dev.set_capture(Some(Box::new(PcapWriter::new(sink.clone()).unwrap())));
    dev.reset().unwrap();
    init(&mut dev, false);
    let req = payload_size_request();
    let Outcome::Done(_, reply) = dma_communicate(&mut dev, &req) else {
        panic!()
    };
    // Framing failures and non-MM commands are not captured.
    wr(&mut dev, BUFFER_SIZE, 4, 10);
    command(&mut dev, CMD_DMA_MM);
    command(&mut dev, CMD_PIO_ZERO_OFFSET);
    let unknown = build_request(Layout::X64, &UNKNOWN_GUID, b"x");
    wr(&mut dev, BUFFER_SIZE, 4, 0x1000);
    dma_communicate(&mut dev, &unknown);

    let bytes = sink.0.lock().unwrap().clone();
    let records = read_records(&bytes).unwrap();
    let got: Vec<(RecordKind, Vec<u8>)> =
        records.into_iter().map(|r| (r.kind, r.payload)).collect();
    assert_eq!(
        got,
        vec![
            (RecordKind::Reset, vec![]),
            (RecordKind::Request, req),
            (RecordKind::Reply, reply),
            (RecordKind::Request, unknown.clone()),
            (RecordKind::Reply, unknown),
        ]
    );
    assert!(dev.take_host_errors().is_empty());
}

#[test]
fn a_failing_capture_is_dropped_without_the_guest_noticing() {
    let mut dev = ready();
    let req = payload_size_request();
    // A writer that takes the global header, then fails every record.
    struct FailAfterHeader(usize);
    impl Write for FailAfterHeader {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.0 == 0 {
                return Err(io::Error::other("disk full"));
            }
            self.0 -= 1;
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    dev.set_capture(Some(Box::new(PcapWriter::new(FailAfterHeader(1)).unwrap())));
    assert!(matches!(
        dma_communicate(&mut dev, &req),
        Outcome::Done(0, _)
    ));
    assert!(matches!(
        dma_communicate(&mut dev, &req),
        Outcome::Done(0, _)
    ));
    let errors = dev.take_host_errors();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].to_string().contains("disk full"));
    dev.reset().unwrap();
    assert!(dev.take_host_errors().is_empty());
}

#[test]
fn device_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<Dev>();
}
