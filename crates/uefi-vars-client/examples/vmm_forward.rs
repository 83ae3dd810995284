//! What a VMM does with this crate: connect to `uefi-vars serve`, put the
//! device's register interface in front of the connection, and forward the
//! guest's MMIO accesses.
//!
//! ```text
//! uefi-vars serve --store vars.json --socket /tmp/uefi-vars.sock &
//! cargo run -p uefi-vars-client --example vmm_forward -- /tmp/uefi-vars.sock
//! ```

use uefi_vars::codec::Layout;
use uefi_vars_client::RemoteService;
use uefi_vars_device::{regs, SparseRam, UefiVarsDevice};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let socket = std::env::args().nth(1).ok_or("usage: vmm_forward SOCKET")?;
    let remote = RemoteService::connect(&socket, 65536, Layout::X64)?;
    println!(
        "connected: protocol {}, buffer size {}",
        remote.protocol_version(),
        remote.max_buffer_size()
    );
    let mut ram = SparseRam::new();
    ram.add_region(0x10_0000, 0x10000);
    let mut dev = UefiVarsDevice::new(remote, ram);
    // A guest's first access: the magic register.
    let mut magic = [0u8; 2];
    dev.read(regs::MAGIC, &mut magic);
    println!("MAGIC register: {:#06x}", u16::from_le_bytes(magic));
    Ok(())
}
