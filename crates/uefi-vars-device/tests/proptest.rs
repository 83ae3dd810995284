//! Random register access sequences never panic and keep the device's
//! invariants.

mod common;

use common::*;
use proptest::prelude::*;
use uefi_vars::codec::{request, Layout};
use uefi_vars::Config;
use uefi_vars_device::regs::*;
use uefi_vars_device::{DmaMemory, UefiVarsDevice};

#[derive(Clone, Debug)]
enum Op {
    Read {
        offset: u64,
        width: usize,
    },
    Write {
        offset: u64,
        width: usize,
        value: u64,
    },
    /// A well-formed request placed in guest memory, so that some DMA_MM
    /// and PIO_MM commands get past framing.
    Plant {
        at: u64,
    },
    /// The same, at the current DMA address.
    PlantAtDma,
    MachineReset,
}

fn width() -> impl Strategy<Value = usize> {
    prop_oneof![
        8 => prop::sample::select(vec![1usize, 2, 4, 8]),
        1 => prop::sample::select(vec![0usize, 3, 5, 16]),
    ]
}

fn value() -> impl Strategy<Value = u64> {
    prop_oneof![
        // Commands, small sizes, addresses in and around the fake RAM.
        3 => 0u64..8,
        2 => 0u64..0x1_0002,
        2 => RAM_BASE - 0x100..RAM_BASE + RAM_SIZE as u64 + 0x100,
        1 => Just(DMA_BUFFER & 0xFFFF_FFFF),
        1 => Just(DMA_BUFFER >> 32),
        2 => any::<u64>(),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u64..0x28, width()).prop_map(|(offset, width)| Op::Read { offset, width }),
        10 => (0u64..0x28, width(), value())
            .prop_map(|(offset, width, value)| Op::Write { offset, width, value }),
        1 => (RAM_BASE - 0x40..RAM_BASE + RAM_SIZE as u64).prop_map(|at| Op::Plant { at }),
        1 => Just(Op::PlantAtDma),
        1 => Just(Op::MachineReset),
    ]
}

fn check_invariants<B: uefi_vars_device::MmBackend, M: DmaMemory>(dev: &mut UefiVarsDevice<B, M>) {
    let r = dev.registers();
    assert!(r.buffer_size <= MAX_BUFFER_SIZE);
    assert!(
        [
            STS_SUCCESS,
            STS_ERR_UNKNOWN,
            STS_ERR_NOT_SUPPORTED,
            STS_ERR_BAD_BUFFER_SIZE
        ]
        .contains(&r.status),
        "status {:#x}",
        r.status
    );
    // Reads of plain registers have no side effects.
    assert_eq!(rd(dev, MAGIC, 2), 0x0EF1);
    assert_eq!(rd(dev, CMD_STS, 2), u64::from(r.status));
    assert_eq!(rd(dev, BUFFER_SIZE, 4), u64::from(r.buffer_size));
    assert_eq!(rd(dev, DMA_BUFFER_ADDR_LO, 8), r.dma_address);
    assert_eq!(rd(dev, 0x14, 4), 0xFFFF_FFFF);
    assert_eq!(dev.registers(), r);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_register_traffic_never_panics(
        ops in prop::collection::vec(op(), 1..80),
        use_pio in any::<bool>(),
    ) {
        let mut dev = UefiVarsDevice::new(common::in_memory(Config::default()), guest_ram())
            .with_use_pio(use_pio);
        let req = request::get_payload_size(Layout::X64);
        for op in ops {
            match op {
                Op::Read { offset, width } => {
                    let mut buf = vec![0u8; width];
                    dev.read(offset, &mut buf);
                }
                Op::Write { offset, width, value } => {
                    let bytes = value.to_le_bytes();
                    let mut buf = bytes.to_vec();
                    buf.resize(width, 0xAB);
                    dev.write(offset, &buf);
                }
                Op::Plant { at } => {
                    // Whatever fits; a failed plant is fine.
                    let _ = dev.memory_mut().write_at(at, &req);
                }
                Op::PlantAtDma => {
                    let at = dev.registers().dma_address;
                    let _ = dev.memory_mut().write_at(at, &req);
                }
                Op::MachineReset => {
                    dev.reset().unwrap();
                    prop_assert_eq!(dev.registers().status, 0);
                    prop_assert_eq!(dev.registers().pio_offset, 0);
                }
            }
            check_invariants(&mut dev);
        }
        prop_assert!(dev.take_host_errors().is_empty());
    }

    /// Guest memory changes only through an MM command, and only inside
    /// `[DMA address, DMA address + BUFFER_SIZE)` as they were when the
    /// command was written.
    #[test]
    fn guest_memory_changes_only_inside_the_dma_window(
        ops in prop::collection::vec(small_ram_op(), 1..60),
    ) {
        const SMALL: usize = 0x1000;
        let mut ram = uefi_vars_device::SparseRam::new();
        prop_assert!(ram.add_region(RAM_BASE, SMALL));
        let mut dev = UefiVarsDevice::new(common::in_memory(Config::default()), ram);
        let req = request::get_payload_size(Layout::X64);
        let pattern: Vec<u8> = (0..SMALL).map(|i| (i % 251) as u8).collect();
        dev.memory_mut().write_at(RAM_BASE, &pattern).unwrap();
        let mut before = pattern;
        // Start from a driver-initialised device with its buffer in RAM.
        wr(&mut dev, BUFFER_SIZE, 4, 0x800);
        wr(&mut dev, DMA_BUFFER_ADDR_LO, 8, RAM_BASE + 0x100);
        for op in ops {
            let regs = dev.registers();
            let mut touches_cmd = false;
            match op {
                Op::Write { offset, width, value } => {
                    let mut buf = value.to_le_bytes().to_vec();
                    buf.resize(width, 0);
                    touches_cmd = matches!(width, 1 | 2 | 4 | 8)
                        && offset % width as u64 == 0
                        && offset <= CMD_STS + 1
                        && offset + width as u64 > CMD_STS;
                    dev.write(offset, &buf);
                }
                Op::Plant { at } => {
                    if dev.memory_mut().write_at(at, &req).is_ok() {
                        dev.memory().read_at(RAM_BASE, &mut before).unwrap();
                    }
                    continue;
                }
                Op::PlantAtDma => {
                    if dev.memory_mut().write_at(regs.dma_address, &req).is_ok() {
                        dev.memory().read_at(RAM_BASE, &mut before).unwrap();
                    }
                    continue;
                }
                Op::Read { offset, width } => dev.read(offset, &mut vec![0u8; width]),
                Op::MachineReset => dev.reset().unwrap(),
            }
            let mut now = vec![0u8; SMALL];
            dev.memory().read_at(RAM_BASE, &mut now).unwrap();
            for (i, (a, b)) in before.iter().zip(&now).enumerate() {
                if a != b {
                    let addr = RAM_BASE + i as u64;
                    prop_assert!(touches_cmd, "memory changed without a command");
                    prop_assert!(
                        addr >= regs.dma_address
                            && addr - regs.dma_address < u64::from(regs.buffer_size),
                        "byte {:#x} outside the DMA window", addr
                    );
                }
            }
            before = now;
        }
    }
}

fn small_ram_op() -> impl Strategy<Value = Op> {
    let addr = (RAM_BASE - 0x20..RAM_BASE + 0x1000).boxed();
    let low = addr.clone().prop_map(|a| a & 0xFFFF_FFFF);
    // Register writes as a driver would make them, so that whole MM
    // commands happen often.
    let driver_write = prop_oneof![
        3 => prop_oneof![3 => Just(u64::from(CMD_DMA_MM)), 1 => 0u64..5].prop_map(|v| (CMD_STS, 2usize, v)),
        1 => prop_oneof![Just(0x1000u64), 0u64..0x2000].prop_map(|v| (BUFFER_SIZE, 4, v)),
        1 => low.clone().prop_map(|v| (DMA_BUFFER_ADDR_LO, 4, v)),
        1 => prop_oneof![Just(RAM_BASE >> 32), 0u64..3].prop_map(|v| (DMA_BUFFER_ADDR_HI, 4, v)),
        1 => addr.clone().prop_map(|v| (DMA_BUFFER_ADDR_LO, 8, v)),
    ];
    prop_oneof![
        2 => (0u64..0x28, width()).prop_map(|(offset, width)| Op::Read { offset, width }),
        4 => (0u64..0x28, width(), prop_oneof![3 => 0u64..8, 1 => 0u64..0x2000, 2 => low, 1 => Just(RAM_BASE >> 32)])
            .prop_map(|(offset, width, value)| Op::Write { offset, width, value }),
        6 => driver_write.prop_map(|(offset, width, value)| Op::Write { offset, width, value }),
        1 => addr.prop_map(|at| Op::Plant { at }),
        3 => Just(Op::PlantAtDma),
        1 => Just(Op::MachineReset),
    ]
}
