//! edk2 flash variable stores: `OVMF_VARS.fd`, `OVMF_VARS_4M.fd`, ArmVirt
//! `AAVMF_VARS.fd` (and the same bytes inside a qcow2 file, unwrapped by the
//! caller).
//!
//! An image holds a firmware volume (EFI_FIRMWARE_VOLUME_HEADER, file system
//! GUID gEfiSystemNvDataFvGuid, `MdePkg/Include/Pi/PiFirmwareVolume.h`),
//! then the variable store (VARIABLE_STORE_HEADER and the variables,
//! `MdeModulePkg/Include/Guid/VariableFormat.h`), then the fault-tolerant
//! write working block and its spare area
//! (`MdeModulePkg/Include/Guid/SystemNvDataGuid.h`,
//! `MdeModulePkg/Universal/FaultTolerantWriteDxe/FaultTolerantWrite.h`).
//!
//! # Reading as edk2 reads (edk2-stable202505)
//!
//! * The store is valid when its signature is gEfiAuthenticatedVariableGuid
//!   or gEfiVariableGuid, Format is 0x5A and State 0xFE
//!   (`VariableParsing.c` GetVariableStoreStatus).
//! * Variables start at HEADER_ALIGN(store header + 1) and the walk stops at
//!   the first header whose StartId is not 0x55AA or that starts at or past
//!   HEADER_ALIGN(store + Size) (IsValidVariableHeader, GetStartPointer,
//!   GetEndPointer). The next header is at HEADER_ALIGN(data + DataSize)
//!   (GetNextVariablePtr; ALIGNMENT is 1, so names are not padded).
//! * A header whose State is 0xFF or any of whose Attributes, NameSize and
//!   DataSize is all ones counts as having empty name and data
//!   (NameSizeOfVariable, DataSizeOfVariable).
//! * A variable exists when its State is exactly VAR_ADDED (0x3F) or
//!   VAR_ADDED & VAR_IN_DELETED_TRANSITION (0x3E). The first VAR_ADDED copy
//!   of a name wins; a 0x3E copy counts only when no VAR_ADDED copy exists,
//!   and then the last 0x3E copy wins (FindVariableEx,
//!   VariableServiceGetNextVariableInternal). Everything else (VAR_DELETED,
//!   VAR_HEADER_VALID_ONLY, ...) is obsolete and is reported in
//!   [`FlashStore::skipped`].
//! * A working block whose last write header is allocated but not complete
//!   means the machine stopped in the middle of a fault-tolerant write that
//!   the firmware finishes at its next boot (FtwMisc.c InitFtwProtocol,
//!   FtwGetLastWriteHeader): the store bytes are not what the firmware will
//!   see, so such an image is refused ([`Edk2Error::UnfinishedWrite`]).
//!
//! Unlike edk2 we also refuse headers, names or data that run past the end
//! of the store (edk2 trusts its own flash), names that are not
//! NUL-terminated UCS-2, and a firmware volume header whose checksum is
//! wrong.
//!
//! # Writing
//!
//! [`encode_into`] keeps every byte of a template image except the
//! variable area, which is rewritten with one VAR_ADDED authenticated header
//! per variable (MonotonicCount and PubKeyIndex zero, as edk2 writes them for
//! time-based authenticated and plain variables alike) and padded with 0xFF,
//! the erased-flash value. [`blank`] builds the empty images Debian's `ovmf`
//! and `qemu-efi-aarch64` packages ship, byte for byte.

use std::collections::HashMap;

use crate::codec::{self, Malformed, Reader};
use crate::guid::Guid;
use crate::name::VarName;
use crate::time::EfiTime;
use crate::variable::{VarKey, Variable};

/// gEfiSystemNvDataFvGuid.
pub const NV_DATA_FV_GUID: Guid = Guid::from_fields(
    0xfff1_2b8d,
    0x7696,
    0x4c8b,
    [0xa9, 0x85, 0x27, 0x47, 0x07, 0x5b, 0x4f, 0x50],
);
/// gEfiAuthenticatedVariableGuid: store of AUTHENTICATED_VARIABLE_HEADERs.
pub const AUTH_STORE_GUID: Guid = Guid::from_fields(
    0xaaf3_2c78,
    0x947b,
    0x439a,
    [0xa1, 0x80, 0x2e, 0x14, 0x4e, 0xc3, 0x77, 0x92],
);
/// gEfiVariableGuid: store of plain VARIABLE_HEADERs.
pub const PLAIN_STORE_GUID: Guid = Guid::from_fields(
    0xddcf_3616,
    0x3275,
    0x4164,
    [0x98, 0xb6, 0xfe, 0x85, 0x70, 0x7f, 0xfe, 0x7d],
);
/// gEdkiiWorkingBlockSignatureGuid.
pub const FTW_WORKING_GUID: Guid = Guid::from_fields(
    0x9e58_292b,
    0x7c68,
    0x497d,
    [0xa0, 0xce, 0x65, 0x00, 0xfd, 0x9f, 0x1b, 0x95],
);

const FVH_SIGNATURE: [u8; 4] = *b"_FVH";
/// EFI_FIRMWARE_VOLUME_HEADER up to the block map.
const FV_HEADER_FIXED: usize = 56;
const STORE_HEADER_LEN: usize = 28;
const AUTH_HEADER_LEN: usize = 60;
const PLAIN_HEADER_LEN: usize = 32;
const FTW_HEADER_LEN: usize = 32;
const FTW_WRITE_HEADER_LEN: u64 = 40;
const FTW_RECORD_LEN: u64 = 40;
const VARIABLE_DATA: u16 = 0x55aa;
const VAR_ADDED: u8 = 0x3f;
const VAR_IN_DELETED_TRANSITION: u8 = 0xfe;
/// Firmware volumes start on a block boundary; images are searched in steps
/// of this size (as virt-firmware does).
const SCAN_STEP: usize = 1024;

/// Why an image cannot be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Edk2Error {
    /// No variable firmware volume in the image.
    #[error("no edk2 variable firmware volume (_FVH with gEfiSystemNvDataFvGuid) in the image")]
    NoVolume,
    /// The firmware volume header is wrong.
    #[error("firmware volume at offset {offset:#x}: {problem}")]
    BadVolume {
        /// Its offset.
        offset: usize,
        /// What is wrong.
        problem: String,
    },
    /// The variable store header is wrong.
    #[error("variable store header at offset {offset:#x}: {problem}")]
    BadStore {
        /// Its offset.
        offset: usize,
        /// What is wrong.
        problem: String,
    },
    /// A field runs past the end of the image.
    #[error("offset {:#x}: {}", .0.offset, .0.what)]
    Malformed(Malformed),
    /// A variable header is wrong.
    #[error("variable at offset {offset:#x}: {problem}")]
    BadVariable {
        /// Its offset.
        offset: usize,
        /// What is wrong.
        problem: String,
    },
    #[error(
        "the fault-tolerant write working block at offset {offset:#x} holds an unfinished write \
         (the machine stopped while the firmware was rewriting the store; it completes the write \
         at its next boot): boot the VM once, or convert a copy taken while it was shut down"
    )]
    /// A fault-tolerant write is pending in the working block.
    UnfinishedWrite {
        /// Offset of the working block.
        offset: usize,
    },
    #[error(
        "the variables need {needed} bytes but the template's variable store has room for \
         {available} (use a larger layout such as --layout ovmf-4m, or remove variables)"
    )]
    /// The variables do not fit the template.
    TooLarge {
        /// Bytes needed.
        needed: u64,
        /// Bytes the store has.
        available: u64,
    },
    /// A variable the format cannot hold.
    #[error("variable {name:?}: {problem}")]
    Unencodable {
        /// Its name.
        name: String,
        /// Why.
        problem: String,
    },
    /// The template image is not usable.
    #[error("{0}")]
    Template(String),
}

impl From<Malformed> for Edk2Error {
    fn from(m: Malformed) -> Self {
        Edk2Error::Malformed(m)
    }
}

/// A variable header that does not count as a variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// Offset of the header in the image.
    pub offset: usize,
    /// The header's State byte.
    pub state: u8,
    /// The name, when it decodes.
    pub name: Option<String>,
    /// Why it does not count.
    pub why: SkipReason,
}

/// Why a variable header does not count as a variable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkipReason {
    /// Deleted, header-only or any State edk2 does not read.
    Obsolete,
    /// In deleted transition, with a live copy elsewhere.
    Superseded,
    /// A second VAR_ADDED copy: edk2 reads the first.
    Duplicate,
    /// Live, but of size zero (nothing edk2 could return).
    Empty,
}

/// Where the parts of an image are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Offset of the firmware volume header.
    pub volume: usize,
    /// FvLength.
    pub volume_len: usize,
    /// Offset of the VARIABLE_STORE_HEADER.
    pub store: usize,
    /// First and one-past-last byte of the variable area.
    pub vars_start: usize,
    /// One past the last byte of the variable area.
    pub vars_end: usize,
    /// Store of AUTHENTICATED_VARIABLE_HEADERs (gEfiAuthenticatedVariableGuid).
    pub authenticated: bool,
    /// Offset of a valid FTW working block header, if there is one.
    pub ftw_working: Option<usize>,
}

/// What an image holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlashStore {
    /// The variables edk2 would see, in store order.
    pub variables: Vec<Variable>,
    /// Headers that do not count as variables, in image order.
    pub skipped: Vec<Skipped>,
    /// `None` for a blank (all 0x00 or all 0xFF) image, which the firmware
    /// formats at its first boot and which therefore holds no variables.
    pub geometry: Option<Geometry>,
}

/// The from-scratch layouts of the images Debian ships.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Layout {
    /// `OVMF_VARS.fd` (128 KiB, the variable part of a 2 MiB OVMF build).
    Ovmf2M,
    /// `OVMF_VARS_4M.fd` (528 KiB).
    Ovmf4M,
    /// `AAVMF_VARS.fd` (64 MiB, ArmVirtQemu).
    ArmVirt,
}

struct LayoutSpec {
    file_len: usize,
    volume_len: usize,
    blocks: u32,
    block_len: u32,
    attributes: u32,
    vars_end: usize,
    ftw_working: usize,
    ftw_working_len: usize,
    /// Byte after the volume (AAVMF files are zero-padded to 64 MiB).
    tail: u8,
}

impl Layout {
    /// All layouts, for help texts and size matching.
    pub const ALL: [Layout; 3] = [Layout::Ovmf2M, Layout::Ovmf4M, Layout::ArmVirt];

    /// Values read from Debian bookworm's ovmf and qemu-efi-aarch64
    /// 2022.11-6 images (OvmfPkg/OvmfPkgX64.fdf, ArmVirtPkg/ArmVirtQemu.fdf).
    fn spec(self) -> LayoutSpec {
        match self {
            Layout::Ovmf2M => LayoutSpec {
                file_len: 0x2_0000,
                volume_len: 0x2_0000,
                blocks: 0x20,
                block_len: 0x1000,
                attributes: 0x0004_feff,
                vars_end: 0xe000,
                ftw_working: 0xf000,
                ftw_working_len: 0x1000,
                tail: 0,
            },
            Layout::Ovmf4M => LayoutSpec {
                file_len: 0x8_4000,
                volume_len: 0x8_4000,
                blocks: 0x84,
                block_len: 0x1000,
                attributes: 0x0004_feff,
                vars_end: 0x4_0000,
                ftw_working: 0x4_1000,
                ftw_working_len: 0x1000,
                tail: 0,
            },
            Layout::ArmVirt => LayoutSpec {
                file_len: 0x400_0000,
                volume_len: 0xc_0000,
                blocks: 0x100,
                block_len: 0x4_0000,
                attributes: 0x0000_0e36,
                vars_end: 0x4_0000,
                ftw_working: 0x4_0000,
                ftw_working_len: 0x4_0000,
                tail: 0,
            },
        }
    }

    /// Size of the image file.
    pub fn file_len(self) -> usize {
        self.spec().file_len
    }

    /// The layout whose images have `len` bytes.
    pub fn for_file_len(len: usize) -> Option<Layout> {
        Self::ALL.into_iter().find(|l| l.file_len() == len)
    }
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Layout::Ovmf2M => "ovmf-2m",
            Layout::Ovmf4M => "ovmf-4m",
            Layout::ArmVirt => "aavmf",
        })
    }
}

// ---------------------------------------------------------------------------
// Reading

/// True when `image` starts like an edk2 variable image (or is blank).
pub fn looks_like(image: &[u8]) -> bool {
    find_volume(image).is_some() || is_blank(image)
}

fn is_blank(image: &[u8]) -> bool {
    Layout::for_file_len(image.len()).is_some()
        && (image.iter().all(|&b| b == 0) || image.iter().all(|&b| b == 0xff))
}

/// Offset of the first NV-data firmware volume header.
fn find_volume(image: &[u8]) -> Option<usize> {
    let mut offset = 0usize;
    while let Some(head) = image.get(offset..offset.checked_add(44)?) {
        if head.get(40..44) == Some(&FVH_SIGNATURE[..])
            && head.get(16..32) == Some(&NV_DATA_FV_GUID.as_bytes()[..])
        {
            return Some(offset);
        }
        offset = offset.checked_add(SCAN_STEP)?;
    }
    None
}

/// Decodes an image as the firmware would read it.
pub fn decode(image: &[u8]) -> Result<FlashStore, Edk2Error> {
    let Some(volume) = find_volume(image) else {
        if is_blank(image) {
            return Ok(FlashStore {
                variables: Vec::new(),
                skipped: Vec::new(),
                geometry: None,
            });
        }
        return Err(Edk2Error::NoVolume);
    };
    let mut geometry = read_headers(image, volume)?;
    let (variables, skipped) = read_variables(image, &geometry)?;
    geometry.ftw_working = check_ftw(image, &geometry)?;
    Ok(FlashStore {
        variables,
        skipped,
        geometry: Some(geometry),
    })
}

fn bad_volume(offset: usize, problem: impl Into<String>) -> Edk2Error {
    Edk2Error::BadVolume {
        offset,
        problem: problem.into(),
    }
}

fn bad_store(offset: usize, problem: impl Into<String>) -> Edk2Error {
    Edk2Error::BadStore {
        offset,
        problem: problem.into(),
    }
}

/// The volume and store headers.
fn read_headers(image: &[u8], volume: usize) -> Result<Geometry, Edk2Error> {
    let fv = image.get(volume..).ok_or(Edk2Error::NoVolume)?;
    let mut r = Reader::new(fv);
    r.take(32, "ZeroVector and FileSystemGuid")?;
    let fv_len = r.u64("FvLength")?;
    r.take(8, "Signature and Attributes")?;
    let header_len = usize::from(r.u16("HeaderLength")?);
    let volume_len = usize::try_from(fv_len)
        .ok()
        .filter(|&l| l <= fv.len())
        .ok_or_else(|| {
            bad_volume(
                volume,
                format!("FvLength {fv_len:#x} is past the end of the image"),
            )
        })?;
    if header_len < FV_HEADER_FIXED.saturating_add(8) || header_len % 2 != 0 {
        return Err(bad_volume(
            volume,
            format!("HeaderLength {header_len:#x} is not a valid header size"),
        ));
    }
    let header = fv
        .get(..header_len)
        .filter(|_| header_len <= volume_len)
        .ok_or_else(|| bad_volume(volume, "header runs past the volume"))?;
    let sum = sum16(header);
    if sum != 0 {
        return Err(bad_volume(
            volume,
            "header checksum is wrong (the 16-bit words of the header do not add up to 0)",
        ));
    }
    let store = volume
        .checked_add(header_len)
        .ok_or_else(|| bad_volume(volume, "header length overflows"))?;
    read_store_header(image, volume, volume_len, store)
}

fn read_store_header(
    image: &[u8],
    volume: usize,
    volume_len: usize,
    store: usize,
) -> Result<Geometry, Edk2Error> {
    let volume_end = volume.saturating_add(volume_len);
    let area = image
        .get(store..volume_end)
        .ok_or_else(|| bad_store(store, "missing"))?;
    let mut r = Reader::new(area);
    let signature = Guid::from_bytes(r.array::<16>("Signature")?);
    let size = r.u32("Size")?;
    let format = r.u8("Format")?;
    let state = r.u8("State")?;
    let authenticated = match signature {
        s if s == AUTH_STORE_GUID => true,
        s if s == PLAIN_STORE_GUID => false,
        s => {
            return Err(bad_store(
                store,
                format!(
                    "signature {s} is neither gEfiAuthenticatedVariableGuid nor gEfiVariableGuid{}",
                    if s.as_bytes().iter().all(|&b| b == 0xff) {
                        " (the store is not formatted yet)"
                    } else {
                        ""
                    }
                ),
            ))
        }
    };
    if format != 0x5a || state != 0xfe {
        return Err(bad_store(
            store,
            format!("Format {format:#04x} / State {state:#04x}: not a formatted, healthy store (0x5a / 0xfe)"),
        ));
    }
    let vars_start = align4(store.saturating_add(STORE_HEADER_LEN));
    let vars_end = usize::try_from(size)
        .ok()
        .and_then(|s| store.checked_add(s))
        .map(align4)
        .filter(|&e| e <= volume_end && e >= vars_start)
        .ok_or_else(|| {
            bad_store(
                store,
                format!(
                    "Size {size:#x} does not fit in the firmware volume (ends at {volume_end:#x})"
                ),
            )
        })?;
    Ok(Geometry {
        volume,
        volume_len,
        store,
        vars_start,
        vars_end,
        authenticated,
        ftw_working: None,
    })
}

fn align4(v: usize) -> usize {
    v.checked_add(3).map_or(v, |x| x & !3)
}

/// One header in the variable area.
struct Entry {
    offset: usize,
    state: u8,
    var: Option<Variable>,
    name: Option<String>,
}

fn read_variables(image: &[u8], g: &Geometry) -> Result<(Vec<Variable>, Vec<Skipped>), Edk2Error> {
    let area = image.get(..g.vars_end).ok_or(Edk2Error::NoVolume)?;
    let mut entries = Vec::new();
    let mut pos = g.vars_start;
    while pos < g.vars_end {
        let start_id = codec::u16_at(area, pos, "StartId").ok();
        if start_id != Some(VARIABLE_DATA) {
            break;
        }
        let (entry, next) = read_entry(area, pos, g.authenticated)?;
        entries.push(entry);
        pos = next;
    }
    Ok(select(entries))
}

/// Reads the header at `pos`; returns it and the offset of the next one.
fn read_entry(area: &[u8], pos: usize, auth: bool) -> Result<(Entry, usize), Edk2Error> {
    let bad = |problem: String| Edk2Error::BadVariable {
        offset: pos,
        problem,
    };
    let rest = area.get(pos..).unwrap_or_default();
    let mut r = Reader::new(rest);
    let header_len = if auth {
        AUTH_HEADER_LEN
    } else {
        PLAIN_HEADER_LEN
    };
    if rest.len() < header_len {
        return Err(bad(format!(
            "header ({header_len} bytes) runs past the end of the store"
        )));
    }
    r.u16("StartId")?;
    let state = r.u8("State")?;
    r.u8("Reserved")?;
    let attributes = r.u32("Attributes")?;
    let mut time = EfiTime::default();
    if auth {
        r.u64("MonotonicCount")?;
        time = EfiTime(r.array::<16>("TimeStamp")?);
        r.u32("PubKeyIndex")?;
    }
    let mut name_size = r.u32("NameSize")?;
    let mut data_size = r.u32("DataSize")?;
    let guid = Guid::from_bytes(r.array::<16>("VendorGuid")?);
    // NameSizeOfVariable / DataSizeOfVariable: an unwritten header has no
    // name and no data.
    if state == 0xff || attributes == u32::MAX || name_size == u32::MAX || data_size == u32::MAX {
        name_size = 0;
        data_size = 0;
    }
    let too_long = |what: &str| bad(format!("{what} runs past the end of the store"));
    let name_bytes = r
        .take(
            usize::try_from(name_size).map_err(|_| too_long("name"))?,
            "name",
        )
        .map_err(|_| too_long("name"))?;
    let data = r
        .take(
            usize::try_from(data_size).map_err(|_| too_long("data"))?,
            "data",
        )
        .map_err(|_| too_long("data"))?;
    let next = align4(pos.saturating_add(r.pos()));
    let live = state == VAR_ADDED || state == (VAR_ADDED & VAR_IN_DELETED_TRANSITION);
    let parsed = VarName::parse_wire(name_bytes);
    let name = parsed.as_ref().ok().map(|n| n.to_string());
    let var = if live {
        let name = parsed.map_err(|e| bad(format!("name is not NUL-terminated UCS-2 ({e:?})")))?;
        if name.is_empty() {
            return Err(bad("empty name".into()));
        }
        let mut v = Variable::new(guid, name, attributes, data.to_vec());
        v.time = time;
        Some(v)
    } else {
        None
    };
    Ok((
        Entry {
            offset: pos,
            state,
            var,
            name,
        },
        next,
    ))
}

/// Applies FindVariableEx's choice among copies of one name.
fn select(entries: Vec<Entry>) -> (Vec<Variable>, Vec<Skipped>) {
    let mut added: HashMap<VarKey, usize> = HashMap::new();
    let mut in_deleted: HashMap<VarKey, usize> = HashMap::new();
    for (i, e) in entries.iter().enumerate() {
        let Some(v) = &e.var else { continue };
        if e.state == VAR_ADDED {
            added.entry(v.key()).or_insert(i);
        } else {
            in_deleted.insert(v.key(), i);
        }
    }
    let mut variables = Vec::new();
    let mut skipped = Vec::new();
    for (i, e) in entries.into_iter().enumerate() {
        let why = match &e.var {
            None => Some(SkipReason::Obsolete),
            Some(v) => {
                let key = v.key();
                let chosen = added.get(&key).or_else(|| in_deleted.get(&key));
                match chosen {
                    Some(&c) if c == i && v.data.is_empty() => Some(SkipReason::Empty),
                    Some(&c) if c == i => None,
                    _ if e.state == VAR_ADDED => Some(SkipReason::Duplicate),
                    _ => Some(SkipReason::Superseded),
                }
            }
        };
        match (why, e.var) {
            (None, Some(v)) => variables.push(v),
            (why, _) => skipped.push(Skipped {
                offset: e.offset,
                state: e.state,
                name: e.name,
                why: why.unwrap_or(SkipReason::Obsolete),
            }),
        }
    }
    (variables, skipped)
}

/// Finds the FTW working block after the variable store and refuses an
/// unfinished write. A block whose CRC is wrong is one the firmware
/// reinitialises (FtwMisc.c IsValidWorkSpace): not an error here.
fn check_ftw(image: &[u8], g: &Geometry) -> Result<Option<usize>, Edk2Error> {
    let volume_end = g.volume.saturating_add(g.volume_len);
    let mut at = g.vars_end;
    while at < volume_end {
        let Some(block) = image.get(at..volume_end) else {
            break;
        };
        if block.get(..16) == Some(&FTW_WORKING_GUID.as_bytes()[..]) && ftw_crc_ok(block) {
            if ftw_unfinished(block)? {
                return Err(Edk2Error::UnfinishedWrite { offset: at });
            }
            return Ok(Some(at));
        }
        at = at.saturating_add(SCAN_STEP);
    }
    Ok(None)
}

fn ftw_header_crc(header: &[u8]) -> Option<u32> {
    // The CRC covers the header with Crc and the state byte erased
    // (FtwMisc.c InitWorkSpaceHeader).
    let mut h: [u8; FTW_HEADER_LEN] = header.get(..FTW_HEADER_LEN)?.try_into().ok()?;
    h.get_mut(16..21)?.fill(0xff);
    let mut crc = flate2::Crc::new();
    crc.update(&h);
    Some(crc.sum())
}

/// The 16-bit sum of a firmware volume header (its words add up to 0 when
/// the checksum is right; PI 1.8 vol. 3 §3.2.1.1).
fn sum16(header: &[u8]) -> u16 {
    codec::u16_words(header).fold(0u16, u16::wrapping_add)
}

fn ftw_crc_ok(block: &[u8]) -> bool {
    let stored = codec::u32_at(block, 16, "Crc").ok();
    stored.is_some() && stored == ftw_header_crc(block)
}

/// Walks the write headers (FtwGetLastWriteHeader): the last one is
/// unfinished when allocated (bit 0 clear) and not complete (bit 2 set).
fn ftw_unfinished(block: &[u8]) -> Result<bool, Edk2Error> {
    let mut r = Reader::new(block);
    r.take(24, "FTW working block header")?;
    let queue = r.u64("WriteQueueSize")?;
    let end = u64::try_from(FTW_HEADER_LEN)
        .unwrap_or(u64::MAX)
        .saturating_add(queue)
        .min(block.len() as u64);
    let mut offset = FTW_HEADER_LEN as u64;
    loop {
        let Some(next_header_end) = offset
            .checked_add(FTW_WRITE_HEADER_LEN)
            .filter(|&e| e <= end)
        else {
            return Ok(false);
        };
        let at = usize::try_from(offset).unwrap_or(usize::MAX);
        let header = block
            .get(at..usize::try_from(next_header_end).unwrap_or(usize::MAX))
            .unwrap_or_default();
        let mut h = Reader::new(header);
        let flags = h.u8("write header flags")?;
        h.take(3 + 16 + 4, "write header")?;
        let writes = h.u64("NumberOfWrites")?;
        let private = h.u64("PrivateDataSize")?;
        let allocated = flags & 0x1 == 0;
        let complete = flags & 0x4 == 0;
        if !complete {
            return Ok(allocated);
        }
        let size = FTW_RECORD_LEN
            .checked_add(private)
            .and_then(|r| r.checked_mul(writes))
            .and_then(|r| r.checked_add(FTW_WRITE_HEADER_LEN));
        match size.and_then(|s| offset.checked_add(s)) {
            Some(o) => offset = o,
            None => return Ok(false),
        }
    }
}

// ---------------------------------------------------------------------------
// Writing

/// An empty image in `layout`, identical to Debian's blank image of that
/// layout.
pub fn blank(layout: Layout) -> Vec<u8> {
    let s = layout.spec();
    let mut image = vec![0xffu8; s.volume_len];
    image.resize(s.file_len, s.tail);
    let mut fv = Vec::with_capacity(0x48);
    fv.extend_from_slice(&[0u8; 16]);
    fv.extend_from_slice(NV_DATA_FV_GUID.as_bytes());
    fv.extend_from_slice(&(s.volume_len as u64).to_le_bytes());
    fv.extend_from_slice(&FVH_SIGNATURE);
    fv.extend_from_slice(&s.attributes.to_le_bytes());
    fv.extend_from_slice(&0x48u16.to_le_bytes());
    fv.extend_from_slice(&0u16.to_le_bytes()); // checksum, below
    fv.extend_from_slice(&0u16.to_le_bytes()); // ExtHeaderOffset
    fv.push(0); // Reserved
    fv.push(2); // Revision
    fv.extend_from_slice(&s.blocks.to_le_bytes());
    fv.extend_from_slice(&s.block_len.to_le_bytes());
    fv.extend_from_slice(&[0u8; 8]);
    let sum = sum16(&fv);
    let checksum = 0u16.wrapping_sub(sum).to_le_bytes();
    fv.splice(50..52, checksum);
    let store_size = u32::try_from(s.vars_end.saturating_sub(fv.len())).unwrap_or(0);
    fv.extend_from_slice(AUTH_STORE_GUID.as_bytes());
    fv.extend_from_slice(&store_size.to_le_bytes());
    fv.extend_from_slice(&[0x5a, 0xfe, 0, 0, 0, 0, 0, 0]);
    put(&mut image, 0, &fv);
    let mut ftw = Vec::with_capacity(FTW_HEADER_LEN);
    ftw.extend_from_slice(FTW_WORKING_GUID.as_bytes());
    ftw.extend_from_slice(&[0xff; 8]);
    let queue = s.ftw_working_len.saturating_sub(FTW_HEADER_LEN) as u64;
    ftw.extend_from_slice(&queue.to_le_bytes());
    let crc = ftw_header_crc(&ftw).unwrap_or(0);
    ftw.splice(16..20, crc.to_le_bytes());
    // WorkingBlockValid (bit 0) cleared: FTW_VALID_STATE.
    if let Some(state) = ftw.get_mut(20) {
        *state = 0xfe;
    }
    put(&mut image, s.ftw_working, &ftw);
    image
}

fn put(image: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(dst) = at
        .checked_add(bytes.len())
        .and_then(|end| image.get_mut(at..end))
    {
        dst.copy_from_slice(bytes);
    }
}

/// One AUTHENTICATED_VARIABLE_HEADER + name + data, padded to 4 bytes.
fn encode_variable(v: &Variable, out: &mut Vec<u8>) -> Result<(), Edk2Error> {
    let unencodable = |problem: &str| Edk2Error::Unencodable {
        name: v.name.to_string(),
        problem: problem.to_string(),
    };
    if v.digest.is_some() {
        return Err(unencodable(
            "it carries a signer digest (QEMU's record of a private authenticated variable); \
             edk2 keeps that in its certdb variable instead, so it cannot be stored here",
        ));
    }
    if v.data.is_empty() || v.name.is_empty() {
        return Err(unencodable("empty name or data"));
    }
    let name = v.name.to_wire();
    let name_size = u32::try_from(name.len()).map_err(|_| unencodable("name too long"))?;
    let data_size = u32::try_from(v.data.len()).map_err(|_| unencodable("data too long"))?;
    out.extend_from_slice(&VARIABLE_DATA.to_le_bytes());
    out.push(VAR_ADDED);
    out.push(0);
    out.extend_from_slice(&v.attributes.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes());
    out.extend_from_slice(&v.time.0);
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&name_size.to_le_bytes());
    out.extend_from_slice(&data_size.to_le_bytes());
    out.extend_from_slice(v.guid.as_bytes());
    out.extend_from_slice(&name);
    out.extend_from_slice(&v.data);
    while out.len() % 4 != 0 {
        out.push(0xff);
    }
    Ok(())
}

/// The variable area for `vars`, in order.
pub fn encode_variables(vars: &[&Variable]) -> Result<Vec<u8>, Edk2Error> {
    let mut out = Vec::new();
    for v in vars {
        encode_variable(v, &mut out)?;
    }
    Ok(out)
}

/// `template` with its variable area replaced by `vars` (non-volatile
/// variables, in order). A blank template of a known size is formatted
/// first as the firmware would.
pub fn encode_into(template: &[u8], vars: &[&Variable]) -> Result<Vec<u8>, Edk2Error> {
    let mut image = match find_volume(template) {
        Some(_) => template.to_vec(),
        None if is_blank(template) => Layout::for_file_len(template.len())
            .map(blank)
            .ok_or_else(|| Edk2Error::Template("blank template of unknown size".into()))?,
        None => return Err(Edk2Error::NoVolume),
    };
    let store = decode(&image)?;
    let g = store
        .geometry
        .ok_or_else(|| Edk2Error::Template("template has no variable store".into()))?;
    if !g.authenticated {
        return Err(Edk2Error::Template(
            "the template's store uses the non-authenticated variable format (gEfiVariableGuid); \
             use an image built with Secure Boot support, or --layout"
                .into(),
        ));
    }
    let area = encode_variables(vars)?;
    let available = g.vars_end.saturating_sub(g.vars_start);
    if area.len() > available {
        return Err(Edk2Error::TooLarge {
            needed: area.len() as u64,
            available: available as u64,
        });
    }
    let dst = image
        .get_mut(g.vars_start..g.vars_end)
        .ok_or_else(|| Edk2Error::Template("variable area out of range".into()))?;
    dst.fill(0xff);
    put(dst, 0, &area);
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guid::GLOBAL_VARIABLE;

    fn var(name: &str, data: &[u8]) -> Variable {
        Variable::new(GLOBAL_VARIABLE, VarName::from(name), 7, data.to_vec())
    }

    #[test]
    fn blank_layouts_decode_empty() {
        for layout in Layout::ALL {
            let image = blank(layout);
            assert_eq!(image.len(), layout.file_len());
            let s = decode(&image).unwrap();
            assert!(s.variables.is_empty());
            let g = s.geometry.unwrap();
            assert_eq!(g.vars_start, 0x64);
            assert!(g.ftw_working.is_some(), "{layout}");
        }
    }

    #[test]
    fn round_trip_and_too_large() {
        let a = var("Lang", b"eng\0");
        let b = var("Timeout", &[5, 0]);
        let image = encode_into(&blank(Layout::Ovmf2M), &[&a, &b]).unwrap();
        assert_eq!(decode(&image).unwrap().variables, vec![a.clone(), b]);
        let huge = var("Huge", &vec![1u8; 0xe000]);
        assert!(matches!(
            encode_into(&image, &[&huge]),
            Err(Edk2Error::TooLarge { .. })
        ));
    }

    /// FindVariableEx: VAR_ADDED beats an in-deleted-transition copy; a lone
    /// in-deleted-transition copy is read; deleted ones are not.
    #[test]
    fn states_read_as_edk2_reads_them() {
        let old = var("A", b"old");
        let new = var("A", b"new");
        let lone = var("B", b"lone");
        let gone = var("C", b"gone");
        let mut image = encode_into(&blank(Layout::Ovmf2M), &[&old, &new, &lone, &gone]).unwrap();
        let offsets: Vec<usize> = {
            let mut v = vec![0x64usize];
            for x in [&old, &new, &lone] {
                let mut buf = Vec::new();
                encode_variable(x, &mut buf).unwrap();
                let last = *v.last().unwrap();
                v.push(last + buf.len());
            }
            v
        };
        image[offsets[0] + 2] = 0x3e; // old A: in deleted transition
        image[offsets[2] + 2] = 0x3e; // B: in deleted transition, alone
        image[offsets[3] + 2] = 0x3c; // C: deleted
        let s = decode(&image).unwrap();
        assert_eq!(s.variables, vec![new, lone]);
        let reasons: Vec<SkipReason> = s.skipped.iter().map(|k| k.why).collect();
        assert_eq!(reasons, vec![SkipReason::Superseded, SkipReason::Obsolete]);
    }

    #[test]
    fn hostile_sizes_are_errors() {
        let a = var("A", b"x");
        let mut image = encode_into(&blank(Layout::Ovmf2M), &[&a]).unwrap();
        // DataSize at header offset 36.
        image[0x64 + 36..0x64 + 40].copy_from_slice(&0x7fff_fff0u32.to_le_bytes());
        assert!(matches!(decode(&image), Err(Edk2Error::BadVariable { .. })));
        let mut bad_sum = blank(Layout::Ovmf2M);
        bad_sum[0x30] ^= 1;
        assert!(matches!(decode(&bad_sum), Err(Edk2Error::BadVolume { .. })));
        for cut in [0, 10, 0x40, 0x70, 0x100] {
            let _ = decode(&image[..cut]);
        }
    }

    #[test]
    fn unfinished_ftw_write_is_refused() {
        let mut image = blank(Layout::Ovmf2M);
        // A write header at the start of the queue: allocated, not complete.
        image[0xf000 + 32] = 0xfe;
        assert!(matches!(
            decode(&image),
            Err(Edk2Error::UnfinishedWrite { offset: 0xf000 })
        ));
        // Allocated and complete, then an erased header: fine.
        image[0xf000 + 32] = 0xf8;
        image[0xf000 + 32 + 24..0xf000 + 32 + 40].fill(0);
        assert!(decode(&image).is_ok());
    }
}
