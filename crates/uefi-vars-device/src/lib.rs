//! The register interface of the uefi-vars device, for Rust VMMs.
//!
//! QEMU's `uefi-vars-x64` / `uefi-vars-sysbus` device is how edk2 firmware
//! built with `QEMU_PV_VARS` reaches the host-side variable service: 32
//! bytes of MMIO registers, a communication buffer in guest memory (DMA
//! mode) or streamed through a register window (PIO mode). This crate is
//! that device, in the style of rust-vmm's `vm-superio`: it knows nothing of
//! any VMM. The VMM plugs in through traits and forwards offsets and bytes:
//!
//! - [`UefiVarsDevice::read`] / [`UefiVarsDevice::write`] for every MMIO
//!   access inside the region (offset from the region base, a buffer of the
//!   access width), [`UefiVarsDevice::reset`] on machine reset;
//! - [`MmBackend`]: the variable service ([`uefi_vars::Service`] in
//!   process, or a client of an out-of-process one);
//! - [`DmaMemory`]: guest-physical memory for DMA_MM (an adapter for
//!   `vm-memory` behind the `vm-memory` feature);
//! - [`MmCapture`]: optional LINKTYPE_EDK2_MM capture
//!   ([`uefi_vars::pcap::PcapWriter`]).
//!
//! [`flavour`] has what the VMM puts in its firmware tables: the fw_cfg
//! `etc/hardware-info` record (x64) or the device-tree node (sysbus).
//!
//! Register decoding is explicit little-endian and the MM buffer is passed
//! to the service byte for byte, so the device works on any host. The MM
//! header length (24 bytes, or 20 for a 32-bit guest) comes from the
//! backend's [`Layout`](uefi_vars::codec::Layout).
//!
//! ```
//! use uefi_vars::{Config, Service};
//! use uefi_vars_device::{regs, SparseRam, UefiVarsDevice};
//!
//! let mut ram = SparseRam::new();
//! ram.add_region(0x10_0000, 0x10000);
//! let mut dev = UefiVarsDevice::new(Service::in_memory(Config::default()), ram);
//! let mut magic = [0u8; 2];
//! dev.read(regs::MAGIC, &mut magic);
//! assert_eq!(u16::from_le_bytes(magic), regs::MAGIC_VALUE);
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
// Bytes from the guest or the socket reach this crate: no panicking
// shortcuts and no unchecked arithmetic outside tests.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects
    )
)]

pub mod backend;
pub mod capture;
pub mod crc32c;
mod device;
pub mod flavour;
pub mod memory;
pub mod regs;
#[cfg(feature = "vm-memory")]
pub mod vm_memory;

pub use backend::{MmBackend, SnapshotBackend};
pub use capture::MmCapture;
pub use device::snapshot;
pub use device::snapshot::DeviceSnapshotError;
pub use device::{HostError, Registers, UefiVarsDevice};
pub use memory::{DmaMemory, MemoryError, NoDma, SparseRam};
#[cfg(feature = "vm-memory")]
pub use vm_memory::VmMemory;
