//! UEFI device paths as text, the way edk2 prints them
//! (`MdePkg/Library/UefiDevicePathLib/DevicePathToText.c`,
//! ConvertDevicePathToText with DisplayOnly and AllowShortcuts FALSE,
//! edk2-stable202505), and EFI_LOAD_OPTION (Boot####, Driver####,
//! SysPrep####, PlatformRecovery####; UEFI spec 3.1.3).
//!
//! The common node types have their own text; any other node is printed in
//! edk2's generic form (`HardwarePath(sub,hex)`, `AcpiPath(..)`, `Msg(..)`,
//! `MediaPath(..)`, `BbsPath(..)`, or `Path(type,sub,hex)`). Bytes that do
//! not form a node (a length below 4 or past the end) end the text with
//! `<malformed device path at offset N>` rather than an error: the path is
//! data a guest wrote.

use std::fmt::Write as _;

use crate::codec::{Malformed, Reader};
use crate::guid::Guid;

const END_TYPE: u8 = 0x7f;
const END_ENTIRE: u8 = 0xff;

fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

fn ucs2_text(bytes: &[u8]) -> String {
    String::from_utf16_lossy(&crate::name::VarName::units_until_nul(bytes))
}

fn ipv4(b: &[u8]) -> String {
    match b {
        [a, b, c, d] => format!("{a}.{b}.{c}.{d}"),
        _ => String::new(),
    }
}

/// The text of one node's body, or `None` for the generic form.
fn node_text(ty: u8, sub: u8, body: &[u8]) -> Option<String> {
    let mut r = Reader::new(body);
    let text = match (ty, sub) {
        (1, 1) => {
            let function = r.u8("function").ok()?;
            let device = r.u8("device").ok()?;
            format!("Pci(0x{device:x},0x{function:x})")
        }
        (1, 4) => vendor("Hw", body)?,
        (1, 5) => format!("Ctrl(0x{:x})", r.u32("controller").ok()?),
        (2, 1) => acpi(r.u32("HID").ok()?, r.u32("UID").ok()?),
        (2, 3) => {
            let mut adrs = Vec::new();
            while r.remaining() >= 4 {
                adrs.push(format!("0x{:x}", r.u32("ADR").ok()?));
            }
            format!("AcpiAdr({})", adrs.join(","))
        }
        (3, 1) => {
            r.take(2, "primary/slave").ok()?;
            format!("Ata(0x{:x})", r.u16("lun").ok()?)
        }
        (3, 2) => format!(
            "Scsi(0x{:x},0x{:x})",
            r.u16("pun").ok()?,
            r.u16("lun").ok()?
        ),
        (3, 5) => format!(
            "USB(0x{:x},0x{:x})",
            r.u8("port").ok()?,
            r.u8("interface").ok()?
        ),
        (3, 10) => vendor("Msg", body)?,
        (3, 11) => {
            let mac = r.take(32, "mac").ok()?;
            let if_type = r.u8("iftype").ok()?;
            // Only the bytes of the interface type's address are shown
            // (6 for Ethernet and IEEE 802.3, as edk2 does).
            let len = if matches!(if_type, 0 | 1) { 6 } else { 32 };
            format!("MAC({},0x{if_type:x})", hex(mac.get(..len)?))
        }
        (3, 12) => ipv4_node(&mut r, body.len())?,
        (3, 13) => ipv6_node(&mut r, body.len())?,
        (3, 15) => usb_class(&mut r)?,
        (3, 17) => format!("Unit(0x{:x})", r.u8("lun").ok()?),
        (3, 14) => uart(&mut r)?,
        (3, 18) => format!(
            "Sata(0x{:x},0x{:x},0x{:x})",
            r.u16("hba").ok()?,
            r.u16("pm").ok()?,
            r.u16("lun").ok()?
        ),
        (3, 23) => {
            let nsid = r.u32("nsid").ok()?;
            let eui = r.take(8, "eui").ok()?;
            let parts: Vec<String> = eui.iter().rev().map(|b| format!("{b:02x}")).collect();
            format!("NVMe(0x{nsid:x},{})", parts.join("-"))
        }
        (3, 24) => format!("Uri({})", String::from_utf8_lossy(body)),
        (4, 1) => hard_drive(&mut r)?,
        (4, 2) => format!(
            "CDROM(0x{:x},0x{:x},0x{:x})",
            r.u32("entry").ok()?,
            r.u64("start").ok()?,
            r.u64("size").ok()?
        ),
        (4, 3) => vendor("Media", body)?,
        (4, 4) => ucs2_text(body),
        (4, 6) => format!("FvFile({})", Guid::from_bytes(r.array::<16>("file").ok()?)),
        (4, 7) => format!("Fv({})", Guid::from_bytes(r.array::<16>("fv").ok()?)),
        (4, 8) => format!(
            "Offset(0x{:x},0x{:x})",
            {
                r.u32("reserved").ok()?;
                r.u64("start").ok()?
            },
            r.u64("end").ok()?
        ),
        _ => return None,
    };
    Some(text)
}

fn vendor(kind: &str, body: &[u8]) -> Option<String> {
    let mut r = Reader::new(body);
    let g = Guid::from_bytes(r.array::<16>("vendor").ok()?);
    let rest = body.get(16..).unwrap_or_default();
    Some(if rest.is_empty() {
        format!("Ven{kind}({g})")
    } else {
        format!("Ven{kind}({g},{})", hex(rest))
    })
}

fn acpi(hid: u32, uid: u32) -> String {
    // PNP_EISA_ID_CONST 0x41d0 in the low word; EISA_ID_TO_NUM is the high word.
    if hid & 0xffff == 0x41d0 {
        let num = hid >> 16;
        match num {
            0x0a03 => format!("PciRoot(0x{uid:x})"),
            0x0a08 => format!("PcieRoot(0x{uid:x})"),
            0x0604 => format!("Floppy(0x{uid:x})"),
            0x0301 => format!("Keyboard(0x{uid:x})"),
            0x0501 => format!("Serial(0x{uid:x})"),
            0x0401 => format!("ParallelPort(0x{uid:x})"),
            _ => format!("Acpi(PNP{num:04x},0x{uid:x})"),
        }
    } else {
        format!("Acpi(0x{hid:08x},0x{uid:x})")
    }
}

/// CatIPv6Address: eight groups of four hex digits, nothing shortened.
fn ipv6(b: &[u8]) -> String {
    b.chunks(2).map(hex).collect::<Vec<_>>().join(":")
}

/// CatNetworkProtocol.
fn protocol_text(protocol: u16) -> String {
    match protocol {
        6 => "TCP".to_string(),
        17 => "UDP".to_string(),
        p => format!("0x{p:x}"),
    }
}

/// DevPathToTextIPv6: remote, protocol, address origin, local, and for the
/// full node (60 bytes with its header) prefix length and gateway.
fn ipv6_node(r: &mut Reader<'_>, len: usize) -> Option<String> {
    let local = r.take(16, "local").ok()?;
    let remote = r.take(16, "remote").ok()?;
    r.take(4, "ports").ok()?;
    let protocol = r.u16("protocol").ok()?;
    let origin = match r.u8("origin").ok()? {
        0 => "Static",
        1 => "StatelessAutoConfigure",
        _ => "StatefulAutoConfigure",
    };
    let mut s = format!(
        "IPv6({},{},{origin},{}",
        ipv6(remote),
        protocol_text(protocol),
        ipv6(local)
    );
    if len == 56 {
        let prefix = r.u8("prefix").ok()?;
        let gw = r.take(16, "gateway").ok()?;
        let _ = write!(s, ",0x{prefix:x},{}", ipv6(gw));
    }
    s.push(')');
    Some(s)
}

/// DevPathToTextUsbClass: the named classes (MdePkg Usb.h USB_CLASS_*),
/// the reserved class's three named subclasses, else UsbClass(..).
fn usb_class(r: &mut Reader<'_>) -> Option<String> {
    let vendor = r.u16("vendor").ok()?;
    let product = r.u16("product").ok()?;
    let class = r.u8("class").ok()?;
    let sub = r.u8("subclass").ok()?;
    let proto = r.u8("protocol").ok()?;
    let named = match class {
        1 => Some("UsbAudio"),
        2 => Some("UsbCDCControl"),
        3 => Some("UsbHID"),
        6 => Some("UsbImage"),
        7 => Some("UsbPrinter"),
        8 => Some("UsbMassStorage"),
        9 => Some("UsbHub"),
        10 => Some("UsbCDCData"),
        11 => Some("UsbSmartCard"),
        14 => Some("UsbVideo"),
        0xdc => Some("UsbDiagnostic"),
        0xe0 => Some("UsbWireless"),
        _ => None,
    };
    if let Some(n) = named {
        return Some(format!(
            "{n}(0x{vendor:x},0x{product:x},0x{sub:x},0x{proto:x})"
        ));
    }
    let reserved = match (class, sub) {
        (0xfe, 1) => Some("UsbDeviceFirmwareUpdate"),
        (0xfe, 2) => Some("UsbIrdaBridge"),
        (0xfe, 3) => Some("UsbTestAndMeasurement"),
        _ => None,
    };
    Some(match reserved {
        Some(n) => format!("{n}(0x{vendor:x},0x{product:x},0x{proto:x})"),
        None => format!("UsbClass(0x{vendor:x},0x{product:x},0x{class:x},0x{sub:x},0x{proto:x})"),
    })
}

fn ipv4_node(r: &mut Reader<'_>, len: usize) -> Option<String> {
    let local = r.take(4, "local").ok()?;
    let remote = r.take(4, "remote").ok()?;
    r.take(4, "ports").ok()?;
    let protocol = r.u16("protocol").ok()?;
    let static_ip = r.u8("static").ok()? != 0;
    let proto = protocol_text(protocol);
    let mut s = format!(
        "IPv4({},{proto},{},{}",
        ipv4(remote),
        if static_ip { "Static" } else { "DHCP" },
        ipv4(local)
    );
    // The full node (27 bytes with its header) adds gateway and mask.
    if len == 23 {
        let gw = r.take(4, "gateway").ok()?;
        let mask = r.take(4, "mask").ok()?;
        let _ = write!(s, ",{},{}", ipv4(gw), ipv4(mask));
    }
    s.push(')');
    Some(s)
}

fn uart(r: &mut Reader<'_>) -> Option<String> {
    r.u32("reserved").ok()?;
    let baud = r.u64("baud").ok()?;
    let data_bits = r.u8("data bits").ok()?;
    let parity = match r.u8("parity").ok()? {
        0 => 'D',
        1 => 'N',
        2 => 'E',
        3 => 'O',
        4 => 'M',
        5 => 'S',
        _ => 'x',
    };
    let stop = match r.u8("stop bits").ok()? {
        0 => "D",
        1 => "1",
        2 => "1.5",
        3 => "2",
        _ => "x",
    };
    let baud = if baud == 0 {
        "DEFAULT".to_string()
    } else {
        baud.to_string()
    };
    let bits = if data_bits == 0 {
        "DEFAULT".to_string()
    } else {
        data_bits.to_string()
    };
    Some(format!("Uart({baud},{bits},{parity},{stop})"))
}

fn hard_drive(r: &mut Reader<'_>) -> Option<String> {
    let part = r.u32("partition").ok()?;
    let start = r.u64("start").ok()?;
    let size = r.u64("size").ok()?;
    let sig = r.array::<16>("signature").ok()?;
    let _format = r.u8("format").ok()?;
    let sig_type = r.u8("signature type").ok()?;
    let head = match sig_type {
        1 => {
            let mbr = crate::codec::u32_at(&sig, 0, "MBR signature").ok()?;
            format!("HD({part},MBR,0x{mbr:08x}")
        }
        2 => format!("HD({part},GPT,{}", Guid::from_bytes(sig)),
        t => format!("HD({part},{t},0"),
    };
    Some(format!("{head},0x{start:x},0x{size:x})"))
}

fn generic(ty: u8, sub: u8, body: &[u8]) -> String {
    let name = match ty {
        1 => Some("HardwarePath"),
        2 => Some("AcpiPath"),
        3 => Some("Msg"),
        4 => Some("MediaPath"),
        5 => Some("BbsPath"),
        _ => None,
    };
    let mut s = match name {
        Some(n) => format!("{n}({sub}"),
        None => format!("Path({ty},{sub}"),
    };
    if !body.is_empty() {
        let _ = write!(s, ",{}", hex(body));
    }
    s.push(')');
    s
}

/// The text of a device path (all its instances).
pub fn to_text(path: &[u8]) -> String {
    let mut out = String::new();
    let mut r = Reader::new(path);
    while r.remaining() > 0 {
        let at = r.pos();
        let node = (|| -> Result<(u8, u8, &[u8]), Malformed> {
            let ty = r.u8("type")?;
            let sub = r.u8("subtype")?;
            let len = usize::from(r.u16("length")?);
            let body_len = len.checked_sub(4).ok_or(Malformed {
                offset: at,
                what: "length below 4".into(),
            })?;
            Ok((ty, sub, r.take(body_len, "node")?))
        })();
        let Ok((ty, sub, body)) = node else {
            let _ = write!(out, "<malformed device path at offset {at}>");
            break;
        };
        if ty == END_TYPE && sub == END_ENTIRE {
            break;
        }
        // edk2 puts "/" before every node but the first, also right after
        // the "," of an instance end (the check it makes looks at the
        // terminating NUL, never at the ","): "A,/B".
        let end_instance = ty == END_TYPE;
        if !out.is_empty() && !end_instance {
            out.push('/');
        }
        if end_instance {
            out.push(',');
        } else {
            out.push_str(&node_text(ty, sub, body).unwrap_or_else(|| generic(ty, sub, body)));
        }
    }
    out
}

/// An EFI_LOAD_OPTION.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadOption {
    /// LOAD_OPTION_* bits.
    pub attributes: u32,
    /// The description shown in boot menus.
    pub description: String,
    /// The device path list (FilePathList), raw.
    pub device_path: Vec<u8>,
    /// Bytes after the device path, passed to the loaded image.
    pub optional_data: Vec<u8>,
}

/// LOAD_OPTION_ACTIVE, FORCE_RECONNECT, HIDDEN; CATEGORY_APP.
pub const LOAD_OPTION_ACTIVE: u32 = 0x1;
/// LOAD_OPTION_FORCE_RECONNECT.
pub const LOAD_OPTION_FORCE_RECONNECT: u32 = 0x2;
/// LOAD_OPTION_HIDDEN.
pub const LOAD_OPTION_HIDDEN: u32 = 0x8;
/// LOAD_OPTION_CATEGORY_APP.
pub const LOAD_OPTION_CATEGORY_APP: u32 = 0x100;

impl LoadOption {
    /// Attributes, FilePathListLength, Description (NUL-terminated UCS-2),
    /// FilePathList, OptionalData.
    pub fn parse(data: &[u8]) -> Result<LoadOption, Malformed> {
        let mut r = Reader::new(data);
        let attributes = r.u32("Attributes")?;
        let path_len = usize::from(r.u16("FilePathListLength")?);
        let mut units = Vec::new();
        loop {
            let at = r.pos();
            match r.u16("Description") {
                Ok(0) => break,
                Ok(u) => units.push(u),
                Err(_) => {
                    return Err(Malformed {
                        offset: at,
                        what: "Description: no NUL terminator".into(),
                    })
                }
            }
        }
        let device_path = r.take(path_len, "FilePathList")?.to_vec();
        let optional_data = r.take(r.remaining(), "OptionalData")?.to_vec();
        Ok(LoadOption {
            attributes,
            description: String::from_utf16_lossy(&units),
            device_path,
            optional_data,
        })
    }

    /// `active`, `hidden`, ... for display.
    pub fn flags(&self) -> Vec<&'static str> {
        let mut f = Vec::new();
        if self.attributes & LOAD_OPTION_ACTIVE != 0 {
            f.push("active");
        }
        if self.attributes & LOAD_OPTION_FORCE_RECONNECT != 0 {
            f.push("force-reconnect");
        }
        if self.attributes & LOAD_OPTION_HIDDEN != 0 {
            f.push("hidden");
        }
        if self.attributes & LOAD_OPTION_CATEGORY_APP != 0 {
            f.push("app");
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(ty: u8, sub: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![ty, sub];
        v.extend_from_slice(&((body.len() + 4) as u16).to_le_bytes());
        v.extend_from_slice(body);
        v
    }

    const END: [u8; 4] = [0x7f, 0xff, 4, 0];

    /// Expected texts written from DevicePathToText.c's format strings.
    #[test]
    fn common_nodes() {
        let mut p = node(2, 1, &[0xd0, 0x41, 0x03, 0x0a, 0, 0, 0, 0]);
        p.extend(node(1, 1, &[0x2, 0x1f]));
        p.extend(node(3, 18, &[0, 0, 0xff, 0xff, 0, 0]));
        p.extend(END);
        assert_eq!(
            to_text(&p),
            "PciRoot(0x0)/Pci(0x1f,0x2)/Sata(0x0,0xffff,0x0)"
        );

        let fv: Guid = "7cb8bdc9-f8eb-4f34-aaea-3ee4af6516a1".parse().unwrap();
        let file: Guid = "462caa21-7614-4503-836e-8ab6f4662331".parse().unwrap();
        let mut p = node(4, 7, fv.as_bytes());
        p.extend(node(4, 6, file.as_bytes()));
        assert_eq!(
            to_text(&p),
            "Fv(7cb8bdc9-f8eb-4f34-aaea-3ee4af6516a1)/FvFile(462caa21-7614-4503-836e-8ab6f4662331)"
        );

        let mut hd = 1u32.to_le_bytes().to_vec();
        hd.extend(0x800u64.to_le_bytes());
        hd.extend(0x1000u64.to_le_bytes());
        hd.extend(file.as_bytes());
        hd.extend([2, 2]);
        let mut p = node(4, 1, &hd);
        let name: Vec<u8> = "\\EFI\\BOOT\\BOOTX64.EFI\0"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        p.extend(node(4, 4, &name));
        assert_eq!(
            to_text(&p),
            "HD(1,GPT,462caa21-7614-4503-836e-8ab6f4662331,0x800,0x1000)/\\EFI\\BOOT\\BOOTX64.EFI"
        );

        let mut mac = vec![0x52, 0x54, 0, 0x12, 0x34, 0x56];
        mac.resize(32, 0);
        mac.push(1);
        let mut p = node(3, 11, &mac);
        p.extend(node(3, 24, b"http://example/x.iso"));
        assert_eq!(
            to_text(&p),
            "MAC(525400123456,0x1)/Uri(http://example/x.iso)"
        );

        assert_eq!(
            to_text(&node(2, 1, &[0xd0, 0x41, 0x01, 0x05, 1, 0, 0, 0])),
            "Serial(0x1)"
        );
        assert_eq!(
            to_text(&node(2, 1, &[1, 2, 3, 4, 0, 0, 0, 0])),
            "Acpi(0x04030201,0x0)"
        );
        assert_eq!(to_text(&node(1, 9, &[0xab])), "HardwarePath(9,ab)");
        let mut uart = vec![0u8; 4];
        uart.extend(115_200u64.to_le_bytes());
        uart.extend([8, 1, 1]);
        assert_eq!(to_text(&node(3, 14, &uart)), "Uart(115200,8,N,1)");
        assert_eq!(
            to_text(&node(2, 3, &[0x80, 0x01, 0x01, 0x00])),
            "AcpiAdr(0x10180)"
        );
        assert_eq!(to_text(&node(9, 1, &[])), "Path(9,1)");
        let mut two = node(1, 5, &[1, 0, 0, 0]);
        two.extend([0x7f, 0x01, 4, 0]);
        two.extend(node(1, 5, &[2, 0, 0, 0]));
        assert_eq!(to_text(&two), "Ctrl(0x1),/Ctrl(0x2)");
    }

    /// OVMF's USB keyboard ConIn entry and its HTTP/PXE over IPv6 boot
    /// options (nodes from Debian's OVMF_VARS_4M.ms.fd and the Fedora
    /// capture's store), as DevPathToTextUsbClass, DevPathToTextIPv6 and
    /// DevPathToTextLogicalUnit print them.
    #[test]
    fn usb_class_ipv6_and_unit_nodes() {
        let usb = [0xff, 0xff, 0xff, 0xff, 3, 1, 1];
        assert_eq!(to_text(&node(3, 15, &usb)), "UsbHID(0xffff,0xffff,0x1,0x1)");
        let storage = [0x46, 0x04, 0x01, 0x00, 8, 6, 0x50];
        assert_eq!(
            to_text(&node(3, 15, &storage)),
            "UsbMassStorage(0x446,0x1,0x6,0x50)"
        );
        let dfu = [1, 0, 2, 0, 0xfe, 1, 2];
        assert_eq!(
            to_text(&node(3, 15, &dfu)),
            "UsbDeviceFirmwareUpdate(0x1,0x2,0x2)"
        );
        let other = [1, 0, 2, 0, 0xef, 2, 1];
        assert_eq!(
            to_text(&node(3, 15, &other)),
            "UsbClass(0x1,0x2,0xef,0x2,0x1)"
        );
        let mut v6 = vec![0u8; 16];
        let mut remote = vec![0x20, 0x01, 0x0d, 0xb8];
        remote.resize(15, 0);
        remote.push(1);
        v6.extend(&remote);
        v6.extend([0, 0, 0, 0, 6, 0, 1, 64]);
        v6.extend([0u8; 16]);
        assert_eq!(
            to_text(&node(3, 13, &v6)),
            "IPv6(2001:0db8:0000:0000:0000:0000:0000:0001,TCP,StatelessAutoConfigure,\
             0000:0000:0000:0000:0000:0000:0000:0000,0x40,0000:0000:0000:0000:0000:0000:0000:0000)"
        );
        // The short (pre-UEFI 2.3) node has no prefix or gateway.
        assert_eq!(
            to_text(&node(3, 13, &v6[..39])),
            "IPv6(2001:0db8:0000:0000:0000:0000:0000:0001,TCP,StatelessAutoConfigure,\
             0000:0000:0000:0000:0000:0000:0000:0000)"
        );
        assert_eq!(to_text(&node(3, 17, &[2])), "Unit(0x2)");
    }

    #[test]
    fn malformed_paths_do_not_panic() {
        assert_eq!(
            to_text(&[1, 1, 2, 0]),
            "<malformed device path at offset 0>"
        );
        assert_eq!(
            to_text(&[1, 1, 200, 0, 0]),
            "<malformed device path at offset 0>"
        );
        assert_eq!(to_text(&node(1, 1, &[1])), "HardwarePath(1,01)");
        for n in 0..12 {
            let _ = to_text(&vec![0x04; n]);
        }
    }

    #[test]
    fn load_option() {
        let mut d = 1u32.to_le_bytes().to_vec();
        let path = node(4, 4, &[b'a', 0, 0, 0]);
        d.extend((path.len() as u16).to_le_bytes());
        d.extend("Shell\0".encode_utf16().flat_map(u16::to_le_bytes));
        d.extend(&path);
        d.extend([9, 9]);
        let o = LoadOption::parse(&d).unwrap();
        assert_eq!(o.description, "Shell");
        assert_eq!(to_text(&o.device_path), "a");
        assert_eq!(o.optional_data, vec![9, 9]);
        assert_eq!(o.flags(), vec!["active"]);
        assert!(LoadOption::parse(&d[..8]).is_err());
    }
}
