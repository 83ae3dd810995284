//! The `vm-memory` adapter: DMA through a real `GuestMemoryMmap`.

mod common;

use std::sync::Arc;

use common::*;
use uefi_vars::codec::{request, Layout};
use uefi_vars::Config;
use uefi_vars_device::regs::*;
use uefi_vars_device::{DmaMemory, MemoryError, UefiVarsDevice, VmMemory};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// Two 64 KiB regions with a 64 KiB hole between them.
fn guest() -> GuestMemoryMmap<()> {
    GuestMemoryMmap::from_ranges(&[
        (GuestAddress(0x1_0000_0000), 0x1_0000),
        (GuestAddress(0x1_0002_0000), 0x1_0000),
    ])
    .unwrap()
}

#[test]
fn adapter_reads_writes_and_refuses_holes_without_partial_writes() {
    let gm = guest();
    let mut mem = VmMemory::new(&gm);
    mem.write_at(0x1_0000_0010, b"hello").unwrap();
    let mut buf = [0u8; 5];
    mem.read_at(0x1_0000_0010, &mut buf).unwrap();
    assert_eq!(&buf, b"hello");

    // Straddles the end of the first region into the hole.
    let end = 0x1_0001_0000u64;
    assert_eq!(
        mem.write_at(end - 4, &[0xEE; 8]),
        Err(MemoryError::Inaccessible {
            addr: end - 4,
            len: 8
        })
    );
    let mut tail = [0u8; 4];
    gm.read_slice(&mut tail, GuestAddress(end - 4)).unwrap();
    assert_eq!(tail, [0; 4], "nothing of the failed write landed");
    assert!(mem.read_at(end - 4, &mut [0u8; 8]).is_err());
    assert!(mem.read_at(0, &mut [0u8; 1]).is_err());
    assert_eq!(
        mem.read_at(u64::MAX - 2, &mut [0u8; 8]),
        Err(MemoryError::Overflow {
            addr: u64::MAX - 2,
            len: 8
        })
    );
    mem.read_at(0, &mut []).unwrap();
}

#[test]
fn device_over_vm_memory() {
    let gm = Arc::new(guest());
    let mut dev = UefiVarsDevice::new(
        common::in_memory(Config::default()),
        VmMemory::new(gm.clone()),
    );
    init(&mut dev, true);
    let buf = 0x1_0000_0000u64;
    wr(&mut dev, DMA_BUFFER_ADDR_LO, 8, buf);
    let req = request::get_payload_size(Layout::X64);
    gm.write_slice(&req, GuestAddress(buf)).unwrap();
    assert_eq!(command(&mut dev, CMD_DMA_MM), STS_SUCCESS);
    let mut reply = vec![0u8; req.len()];
    gm.read_slice(&mut reply, GuestAddress(buf)).unwrap();
    let expect = common::in_memory(Config::default()).communicate(&req);
    assert_eq!(Some(reply), expect.reply);

    // The request runs off the first region into the hole.
    let at = 0x1_0001_0000u64 - 30;
    gm.write_slice(&req[..30], GuestAddress(at)).unwrap();
    wr(&mut dev, DMA_BUFFER_ADDR_LO, 8, at);
    assert_eq!(command(&mut dev, CMD_DMA_MM), STS_ERR_UNKNOWN);
    let mut now = [0u8; 30];
    gm.read_slice(&mut now, GuestAddress(at)).unwrap();
    assert_eq!(&now[..], &req[..30]);
}
