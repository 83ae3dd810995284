//! The device register file (`uefi_vars_device::UefiVarsDevice`) under
//! arbitrary MMIO access sequences, over a fake guest memory with holes.
//!
//! Operations: reads and writes of any width at any offset (commands, buffer
//! sizes, DMA addresses, the PIO window), well-formed requests planted in
//! guest memory or streamed through PIO so commands get past framing, raw
//! memory pokes, machine resets.
//!
//! After every step: MAGIC reads 0x0EF1, CMD_STS holds a known status,
//! BUFFER_SIZE never exceeds 64 KiB, and a command never writes guest memory
//! outside [DMA address, DMA address + BUFFER_SIZE). At the end the service
//! behind the device passes the enumeration and accounting checks.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use uefi_vars::codec::{request, Layout};
use uefi_vars::guid::{GLOBAL_VARIABLE, VAR_CHECK_POLICY_MMI};
use uefi_vars::name::VarName;
use uefi_vars::variable::attr;
use uefi_vars::{Config, Service};
use uefi_vars_device::regs::*;
use uefi_vars_device::{DmaMemory, SparseRam, UefiVarsDevice};
use uefi_vars_fuzz::{check_enumeration, Usage};

/// Fake guest RAM: two adjacent regions, a hole, a third region.
const RAM: [(u64, usize); 3] = [
    (0x1_0000_0000, 0x4000),
    (0x1_0000_4000, 0x1000),
    (0x1_0000_8000, 0x2000),
];

#[derive(Arbitrary, Debug)]
enum Req {
    Set(u8, Vec<u8>),
    Get(u8, u16),
    Next(u16),
    Query,
    PayloadSize,
    PolicyIsEnabled,
    Raw(Vec<u8>),
}

impl Req {
    fn bytes(&self, layout: Layout) -> Vec<u8> {
        let name = |i: &u8| VarName::from(["A", "Boot0001", "BootOrder"][usize::from(*i) % 3]);
        match self {
            Req::Set(i, d) => request::set_variable(
                layout,
                &GLOBAL_VARIABLE,
                &name(i).to_wire(),
                attr::NON_VOLATILE | attr::BOOTSERVICE_ACCESS | attr::RUNTIME_ACCESS,
                d,
            ),
            Req::Get(i, cap) => request::get_variable(
                layout,
                &GLOBAL_VARIABLE,
                &name(i).to_wire(),
                u64::from(*cap),
            ),
            Req::Next(cap) => request::get_next_variable_name(
                layout,
                &GLOBAL_VARIABLE,
                &[0, 0],
                u64::from(*cap % 1024),
            ),
            Req::Query => request::query_variable_info(layout, 7),
            Req::PayloadSize => request::get_payload_size(layout),
            Req::PolicyIsEnabled => request::policy(layout, 2, &[0]),
            Req::Raw(r) => {
                let mut v = VAR_CHECK_POLICY_MMI.0.to_vec();
                v.extend_from_slice(r);
                v
            }
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Op {
    Read {
        offset: u8,
        width: u8,
    },
    Write {
        offset: u8,
        width: u8,
        value: u64,
    },
    Command(u8),
    /// BUFFER_SIZE (4-byte write).
    BufferSize(u32),
    /// DMA address = a RAM region start + offset (8-byte write at 0x08).
    DmaAddress {
        region: u8,
        offset: u16,
    },
    /// A request placed in guest RAM at the DMA address + `shift`.
    Plant {
        req: Req,
        shift: i8,
    },
    /// A request streamed into the PIO window with `width`-byte accesses.
    Pio {
        req: Req,
        width: u8,
    },
    Poke {
        region: u8,
        offset: u16,
        bytes: Vec<u8>,
    },
    MachineReset,
}

fn width(w: u8) -> usize {
    [1, 2, 4, 8, 3, 0][usize::from(w) % 6]
}

fn snapshot(ram: &SparseRam) -> Vec<Vec<u8>> {
    RAM.iter()
        .map(|&(start, size)| {
            let mut b = vec![0u8; size];
            ram.read_at(start, &mut b).expect("ram");
            b
        })
        .collect()
}

fuzz_target!(|input: (bool, bool, Vec<Op>)| {
    let (ia32, use_pio, ops) = input;
    let layout = if ia32 { Layout::IA32 } else { Layout::X64 };
    let mut ram = SparseRam::new();
    for (start, size) in RAM {
        assert!(ram.add_region(start, size));
    }
    let svc = Service::in_memory(
        Config::default()
            .with_layout(layout)
            .with_max_storage(16 * 1024),
    );
    let mut dev = UefiVarsDevice::new(svc, ram).with_use_pio(use_pio);
    for op in ops.iter().take(128) {
        let before = Usage::of(dev.backend());
        let regs_before = dev.registers();
        let mem_before = snapshot(dev.memory());
        let mut device_write = false;
        match op {
            Op::Read { offset, width: w } => {
                let mut b = vec![0u8; width(*w)];
                dev.read(u64::from(*offset % 0x28), &mut b);
            }
            Op::Write {
                offset,
                width: w,
                value,
            } => {
                let n = width(*w);
                let bytes = value.to_le_bytes();
                dev.write(u64::from(*offset % 0x28), bytes.get(..n).unwrap_or(&bytes));
                device_write = true;
            }
            Op::Command(c) => {
                dev.write(CMD_STS, &u16::from(*c % 6).to_le_bytes());
                device_write = true;
            }
            Op::BufferSize(s) => dev.write(BUFFER_SIZE, &s.to_le_bytes()),
            Op::DmaAddress { region, offset } => {
                let (start, _) = RAM[usize::from(*region) % RAM.len()];
                let addr = start.wrapping_add(u64::from(*offset));
                dev.write(DMA_BUFFER_ADDR_LO, &addr.to_le_bytes());
            }
            Op::Plant { req, shift } => {
                let at = dev
                    .registers()
                    .dma_address
                    .wrapping_add_signed(i64::from(*shift));
                let _ = dev.memory_mut().write_at(at, &req.bytes(layout));
            }
            Op::Pio { req, width: w } => {
                dev.write(CMD_STS, &CMD_PIO_ZERO_OFFSET.to_le_bytes());
                let n = [1usize, 2, 4, 8][usize::from(*w) % 4];
                for chunk in req.bytes(layout).chunks(n) {
                    let mut b = chunk.to_vec();
                    b.resize(n, 0);
                    dev.write(PIO_BUFFER_TRANSFER, &b);
                }
            }
            Op::Poke {
                region,
                offset,
                bytes,
            } => {
                let (start, _) = RAM[usize::from(*region) % RAM.len()];
                let _ = dev
                    .memory_mut()
                    .write_at(start.wrapping_add(u64::from(*offset)), bytes);
            }
            Op::MachineReset => {
                let _ = dev.reset();
            }
        }

        let mut magic = [0u8; 2];
        dev.read(MAGIC, &mut magic);
        assert_eq!(u16::from_le_bytes(magic), MAGIC_VALUE);
        let regs = dev.registers();
        assert!(regs.buffer_size <= MAX_BUFFER_SIZE);
        assert!(
            [
                STS_SUCCESS,
                STS_BUSY,
                STS_ERR_UNKNOWN,
                STS_ERR_NOT_SUPPORTED,
                STS_ERR_BAD_BUFFER_SIZE
            ]
            .contains(&regs.status),
            "unknown status {:#x}",
            regs.status
        );
        if device_write {
            // A command may only write the guest buffer it was given.
            let window = (
                regs_before.dma_address,
                regs_before
                    .dma_address
                    .saturating_add(u64::from(regs_before.buffer_size)),
            );
            for ((start, _), (old, new)) in RAM
                .iter()
                .zip(mem_before.iter().zip(snapshot(dev.memory())))
            {
                for (i, (a, b)) in old.iter().zip(new.iter()).enumerate() {
                    if a != b {
                        let addr = start + i as u64;
                        assert!(
                            addr >= window.0 && addr < window.1,
                            "guest memory at {addr:#x} written outside the DMA buffer {window:x?}"
                        );
                    }
                }
            }
        }
        let slack = uefi_vars_fuzz::secure_boot_slack(dev.backend());
        before.check_after(dev.backend(), slack);
    }
    check_enumeration(dev.backend_mut());
});
