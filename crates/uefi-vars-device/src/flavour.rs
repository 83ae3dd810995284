//! How firmware finds the device: the two flavours of QEMU's device
//! (docs/reference/device.md §1). The register interface is the same for both.

/// `uefi-vars-x64`: x86_64 `pc` / `q35`, fixed MMIO base, announced in the
/// fw_cfg file `etc/hardware-info`.
pub mod x64 {
    /// Guest-physical base of the register region.
    pub const MMIO_BASE: u64 = 0xFEF1_0000;
    /// Size of the register region.
    pub const MMIO_SIZE: u64 = crate::regs::REGION_SIZE;
    /// The fw_cfg file that carries [`hardware_info_record`]s.
    pub const HARDWARE_INFO_FILE: &str = "etc/hardware-info";
    /// `HardwareInfoQemuUefiVars` (type 1 is a PCI host bridge).
    pub const HARDWARE_INFO_TYPE: u64 = 2;
    /// Length of one record: 16-byte header plus the u64 base.
    pub const HARDWARE_INFO_RECORD_LEN: usize = 24;

    /// The device's record in `etc/hardware-info`: type (u64 LE), size of
    /// the data (u64 LE, 8), then the MMIO base (u64 LE). The file is the
    /// concatenation of all devices' records; edk2 requires exactly one
    /// record of type 2.
    pub fn hardware_info_record(mmio_base: u64) -> [u8; HARDWARE_INFO_RECORD_LEN] {
        let mut record = [0u8; HARDWARE_INFO_RECORD_LEN];
        let fields = [HARDWARE_INFO_TYPE, 8, mmio_base];
        for (chunk, value) in record.chunks_exact_mut(8).zip(fields) {
            chunk.copy_from_slice(&value.to_le_bytes());
        }
        record
    }
}

/// `uefi-vars-sysbus`: arm / riscv / loongarch `virt`, placed on the
/// platform bus, announced in the device tree.
pub mod sysbus {
    /// Node name prefix.
    pub const NODE_NAME: &str = "qemu-uefi-vars";
    /// The `compatible` string edk2 (QemuFdt.c) looks for.
    pub const COMPATIBLE: &str = "qemu,uefi-vars";
    /// Size cell of `reg`.
    pub const REG_SIZE: u32 = 0x20;
    /// `compatible` of the parent platform-bus node (edk2 reads its
    /// `ranges` to translate `reg`).
    pub const PLATFORM_BUS_COMPATIBLE: [&str; 2] = ["qemu,platform", "simple-bus"];

    /// The device-tree node of the device, as a child of the platform-bus
    /// node (`#address-cells = <1>`, `#size-cells = <1>`). Plain data for
    /// whatever FDT writer the VMM uses.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct FdtNode {
        /// `qemu-uefi-vars@<offset in lowercase hex>`.
        pub name: String,
        /// The `compatible` property: `qemu,uefi-vars`.
        pub compatible: &'static str,
        /// `<offset size>`: one address cell and one size cell.
        pub reg: [u32; 2],
    }

    impl FdtNode {
        /// The `reg` property value (big-endian cells).
        pub fn reg_bytes(&self) -> [u8; 8] {
            let mut out = [0u8; 8];
            for (chunk, cell) in out.chunks_exact_mut(4).zip(self.reg) {
                chunk.copy_from_slice(&cell.to_be_bytes());
            }
            out
        }

        /// The `compatible` property value (NUL-terminated string).
        pub fn compatible_bytes(&self) -> Vec<u8> {
            let mut out = self.compatible.as_bytes().to_vec();
            out.push(0);
            out
        }
    }

    /// The node for a device mapped at `offset` inside the platform bus.
    /// edk2 finds the MMIO base as `offset - ranges.child + ranges.parent`
    /// of the platform-bus node.
    pub fn fdt_node(offset: u32) -> FdtNode {
        FdtNode {
            name: format!("{NODE_NAME}@{offset:x}"),
            compatible: COMPATIBLE,
            reg: [offset, REG_SIZE],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hardware_info_record_layout() {
        let r = x64::hardware_info_record(x64::MMIO_BASE);
        assert_eq!(
            r,
            [
                2, 0, 0, 0, 0, 0, 0, 0, // type
                8, 0, 0, 0, 0, 0, 0, 0, // size
                0x00, 0x00, 0xF1, 0xFE, 0, 0, 0, 0, // base 0xFEF10000
            ]
        );
    }

    #[test]
    fn fdt_node_description() {
        let n = sysbus::fdt_node(0x1000);
        assert_eq!(n.name, "qemu-uefi-vars@1000");
        assert_eq!(n.compatible, "qemu,uefi-vars");
        assert_eq!(n.reg, [0x1000, 0x20]);
        assert_eq!(n.reg_bytes(), [0, 0, 0x10, 0, 0, 0, 0, 0x20]);
        assert_eq!(n.compatible_bytes(), b"qemu,uefi-vars\0");
        assert_eq!(sysbus::fdt_node(0).name, "qemu-uefi-vars@0");
    }
}
