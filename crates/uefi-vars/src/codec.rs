//! Wire codec: every guest-supplied byte is decoded here and nowhere else.
//!
//! Byte strings (variable payloads, snapshots, store files, frames of the
//! serve protocol) are read with the bounded cursor [`Reader`].
//! The MM communicate buffer is read and written through [`MmBuffer`], whose
//! accessors are bounds-checked and little-endian regardless of the host. The
//! structures edk2 exchanges contain `UINTN` fields, so their layout depends
//! on the guest's word size: [`Layout`] computes every offset from it (QEMU
//! supports only 64-bit guests; a 32-bit edk2 build lays out the same structs
//! with 4-byte `UINTN`).

use crate::guid::Guid;
use crate::status::{DeviceStatus, EfiStatus};
use crate::time::EfiTime;

mod reader;
pub use reader::{u16_at, u16_words, u32_at, u64_at, ucs2_units, uintn_at, Malformed, Reader};

/// Width of the guest's `UINTN`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WordSize {
    /// 4-byte UINTN (IA32, ARM).
    W32,
    /// 8-byte UINTN (X64, AArch64).
    W64,
}

impl WordSize {
    /// The size of a UINTN in bytes.
    pub const fn bytes(self) -> usize {
        match self {
            WordSize::W32 => 4,
            WordSize::W64 => 8,
        }
    }
}

/// Sizes and offsets of the edk2 wire structures for one guest word size.
/// Offsets named `*_off` are absolute (from the start of the MM header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The guest's UINTN width.
    pub word: WordSize,
}

impl Layout {
    /// A 64-bit guest (24-byte MM header).
    pub const X64: Layout = Layout {
        word: WordSize::W64,
    };
    /// A 32-bit guest (20-byte MM header).
    pub const IA32: Layout = Layout {
        word: WordSize::W32,
    };

    /// The size of a UINTN in bytes.
    pub const fn uintn(&self) -> usize {
        self.word.bytes()
    }
    /// Picks the value for this word size (offsets are spelled out per width
    /// rather than computed, so no offset arithmetic can overflow).
    const fn pick(&self, w32: usize, w64: usize) -> usize {
        match self.word {
            WordSize::W32 => w32,
            WordSize::W64 => w64,
        }
    }
    /// EFI_MM_COMMUNICATE_HEADER: HeaderGuid + UINTN MessageLength.
    pub const fn mm_header(&self) -> usize {
        self.pick(20, 24)
    }
    /// SMM_VARIABLE_COMMUNICATE_HEADER: UINTN Function + EFI_STATUS ReturnStatus.
    pub const fn var_header(&self) -> usize {
        self.pick(8, 16)
    }
    /// Absolute offset of the variable protocol's ReturnStatus.
    pub const fn var_status_off(&self) -> usize {
        self.pick(24, 32)
    }
    /// Absolute offset of a variable function's payload.
    pub const fn var_payload_off(&self) -> usize {
        self.pick(28, 40)
    }
    /// SMM_VARIABLE_COMMUNICATE_ACCESS_VARIABLE up to Name.
    pub const fn access_variable(&self) -> usize {
        self.pick(28, 36)
    }
    /// Absolute offsets of ACCESS_VARIABLE's DataSize, NameSize, Attributes
    /// and Name.
    pub const fn access_data_size_off(&self) -> usize {
        self.pick(44, 56)
    }
    /// Absolute offset of the access structure's NameSize.
    pub const fn access_name_size_off(&self) -> usize {
        self.pick(48, 64)
    }
    /// Absolute offset of the access structure's Attributes.
    pub const fn access_attributes_off(&self) -> usize {
        self.pick(52, 72)
    }
    /// Absolute offset of the access structure's Name.
    pub const fn access_name_off(&self) -> usize {
        self.pick(56, 76)
    }
    /// SMM_VARIABLE_COMMUNICATE_GET_NEXT_VARIABLE_NAME (and LOCK_VARIABLE) up
    /// to Name.
    pub const fn next_variable(&self) -> usize {
        self.pick(20, 24)
    }
    /// Absolute offsets of GET_NEXT's (and LOCK_VARIABLE's) NameSize and Name.
    pub const fn next_name_size_off(&self) -> usize {
        self.pick(44, 56)
    }
    /// Absolute offset of GET_NEXT's Name.
    pub const fn next_name_off(&self) -> usize {
        self.pick(48, 64)
    }
    /// SMM_VARIABLE_COMMUNICATE_QUERY_VARIABLE_INFO as QEMU writes it (three
    /// UINT64 and a UINT32, packed).
    pub const fn query_info(&self) -> usize {
        28
    }
    /// SMM_VARIABLE_COMMUNICATE_GET_PAYLOAD_SIZE: one UINTN.
    pub const fn payload_size(&self) -> usize {
        self.uintn()
    }
    /// VAR_CHECK_POLICY_COMM_HEADER: Signature, Revision, Command (u32 each)
    /// and EFI_STATUS Result, packed.
    pub const fn policy_header(&self) -> usize {
        self.pick(16, 20)
    }
    /// Absolute offset of the policy header's Result.
    pub const fn policy_result_off(&self) -> usize {
        self.pick(32, 36)
    }
    /// Absolute offset of the policy command's payload (after the header).
    pub const fn policy_payload_off(&self) -> usize {
        self.pick(36, 44)
    }
}

/// A whole MM communicate buffer as the device stages it: the request bytes,
/// zero-filled up to the negotiated buffer size (QEMU zero-fills too, so a
/// handler that writes past MessageLength sees zeros, and nothing of an
/// earlier request leaks). The zeros are materialised only where a handler
/// writes, so a small request does not cost a 64 KiB memset.
#[derive(Clone, Debug)]
pub(crate) struct MmBuffer {
    /// The request; grows (zero-filled) up to `size` when written past.
    bytes: Vec<u8>,
    /// The buffer size the guest negotiated.
    size: usize,
    layout: Layout,
    message_length: u64,
}

impl MmBuffer {
    /// Stages a request for processing. Fails with `ErrBadBufferSize` when the
    /// buffer cannot hold the header, or header + MessageLength exceeds the
    /// buffer size or the bytes supplied.
    pub fn stage(request: &[u8], buffer_size: usize, layout: Layout) -> Result<Self, DeviceStatus> {
        let hdr = layout.mm_header();
        if buffer_size < hdr || request.len() < hdr {
            return Err(DeviceStatus::ErrBadBufferSize);
        }
        let message_length =
            read_uintn(request, 16, layout).ok_or(DeviceStatus::ErrBadBufferSize)?;
        let total = usize::try_from(message_length)
            .ok()
            .and_then(|ml| ml.checked_add(hdr))
            .ok_or(DeviceStatus::ErrBadBufferSize)?;
        if total > buffer_size {
            return Err(DeviceStatus::ErrBadBufferSize);
        }
        let supplied = request.get(..total).ok_or(DeviceStatus::ErrBadBufferSize)?;
        Ok(MmBuffer {
            bytes: supplied.to_vec(),
            size: buffer_size,
            layout,
            message_length,
        })
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    pub fn header_guid(&self) -> Guid {
        self.guid(0).unwrap_or_default()
    }

    /// MessageLength as the guest wrote it (never rewritten).
    pub fn message_length(&self) -> u64 {
        self.message_length
    }

    /// Capacity available after the MM header (QEMU's "buf check" bound).
    pub fn capacity(&self) -> u64 {
        (self.size as u64).saturating_sub(self.layout.mm_header() as u64)
    }

    /// The reply the device writes back: header + the original MessageLength.
    pub fn into_reply(mut self) -> Vec<u8> {
        let n = (self.message_length as usize).saturating_add(self.layout.mm_header());
        self.bytes.resize(n, 0);
        self.bytes
    }

    /// `len` bytes at `off`; `None` past the buffer size. Bytes past the
    /// request read as zero.
    pub fn slice(&self, off: usize, len: usize) -> Option<std::borrow::Cow<'_, [u8]>> {
        let end = off.checked_add(len)?;
        if end > self.size {
            return None;
        }
        match self.bytes.get(off..end) {
            Some(b) => Some(std::borrow::Cow::Borrowed(b)),
            None => {
                let mut out = vec![0u8; len];
                if let Some(have) = self.bytes.get(off..) {
                    out.get_mut(..have.len())?.copy_from_slice(have);
                }
                Some(std::borrow::Cow::Owned(out))
            }
        }
    }

    fn array<const N: usize>(&self, off: usize) -> Option<[u8; N]> {
        self.slice(off, N)?.as_ref().try_into().ok()
    }

    pub fn u16(&self, off: usize) -> Option<u16> {
        Some(u16::from_le_bytes(self.array(off)?))
    }
    pub fn u32(&self, off: usize) -> Option<u32> {
        Some(u32::from_le_bytes(self.array(off)?))
    }
    pub fn u64(&self, off: usize) -> Option<u64> {
        Some(u64::from_le_bytes(self.array(off)?))
    }
    pub fn uintn(&self, off: usize) -> Option<u64> {
        match self.layout.word {
            WordSize::W64 => self.u64(off),
            WordSize::W32 => self.u32(off).map(u64::from),
        }
    }
    pub fn guid(&self, off: usize) -> Option<Guid> {
        Some(Guid(self.array(off)?))
    }

    pub fn put_bytes(&mut self, off: usize, data: &[u8]) -> Option<()> {
        let end = off.checked_add(data.len())?;
        if end > self.size {
            return None;
        }
        if end > self.bytes.len() {
            self.bytes.resize(end, 0);
        }
        self.bytes.get_mut(off..end)?.copy_from_slice(data);
        Some(())
    }
    pub fn put_u8(&mut self, off: usize, v: u8) -> Option<()> {
        self.put_bytes(off, &[v])
    }
    pub fn put_u32(&mut self, off: usize, v: u32) -> Option<()> {
        self.put_bytes(off, &v.to_le_bytes())
    }
    pub fn put_u64(&mut self, off: usize, v: u64) -> Option<()> {
        self.put_bytes(off, &v.to_le_bytes())
    }
    /// Writes a UINTN; a value too wide for a 32-bit guest is saturated.
    pub fn put_uintn(&mut self, off: usize, v: u64) -> Option<()> {
        match self.layout.word {
            WordSize::W64 => self.put_u64(off, v),
            WordSize::W32 => self.put_u32(off, u32::try_from(v).unwrap_or(u32::MAX)),
        }
    }
    pub fn put_status(&mut self, off: usize, status: EfiStatus) -> Option<()> {
        let v = status.to_width(self.layout.uintn());
        self.put_uintn(off, v)
    }
    pub fn put_guid(&mut self, off: usize, g: &Guid) -> Option<()> {
        self.put_bytes(off, &g.0)
    }
}

fn read_uintn(bytes: &[u8], off: usize, layout: Layout) -> Option<u64> {
    uintn_at(bytes, off, layout.word, "MessageLength").ok()
}

/// Builds an MM request (header + message) for a given layout; used by
/// tests, tools and front ends that originate requests.
pub fn build_request(layout: Layout, guid: &Guid, message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(layout.mm_header().saturating_add(message.len()));
    out.extend_from_slice(&guid.0);
    push_uintn(&mut out, layout, message.len() as u64);
    out.extend_from_slice(message);
    out
}

/// Appends a UINTN in the layout's width (saturating for 32-bit guests).
pub fn push_uintn(out: &mut Vec<u8>, layout: Layout, v: u64) {
    match layout.word {
        WordSize::W64 => out.extend_from_slice(&v.to_le_bytes()),
        WordSize::W32 => out.extend_from_slice(&u32::try_from(v).unwrap_or(u32::MAX).to_le_bytes()),
    }
}

/// Defines numbered constants and the one table that names them.
macro_rules! numbered_table {
    ($(#[$doc:meta])* $table:ident: $ty:ty { $($name:ident = $value:expr,)* }) => {
        $(#[doc = concat!("`", stringify!($name), "` (edk2's number).")] pub const $name: $ty = $value;)*
        $(#[$doc])*
        pub const $table: &[($ty, &str)] = &[$(($name, stringify!($name)),)*];

        /// The edk2 name of a number.
        pub fn name(value: $ty) -> Option<&'static str> {
            $table.iter().find(|(v, _)| *v == value).map(|(_, n)| *n)
        }
    };
}

/// SMM_VARIABLE_FUNCTION_* (edk2 MdeModulePkg/Include/Guid/SmmVariableCommon.h):
/// the function numbers of the variable protocol, written once.
pub mod function {
    numbered_table! {
        /// Every function number with its edk2 name.
        NAMES: u64 {
            GET_VARIABLE = 1,
            GET_NEXT_VARIABLE_NAME = 2,
            SET_VARIABLE = 3,
            QUERY_VARIABLE_INFO = 4,
            READY_TO_BOOT = 5,
            EXIT_BOOT_SERVICE = 6,
            GET_STATISTICS = 7,
            LOCK_VARIABLE = 8,
            VAR_CHECK_VARIABLE_PROPERTY_SET = 9,
            VAR_CHECK_VARIABLE_PROPERTY_GET = 10,
            GET_PAYLOAD_SIZE = 11,
            INIT_RUNTIME_VARIABLE_CACHE_CONTEXT = 12,
            SYNC_RUNTIME_CACHE = 13,
            GET_RUNTIME_CACHE_INFO = 14,
        }
    }
}

/// VAR_CHECK_POLICY_COMMAND_* (edk2 MdeModulePkg/Include/Guid/VarCheckPolicyMmi.h):
/// the VarCheck policy commands and the header's signature and revision,
/// written once.
pub mod policy_command {
    /// VAR_CHECK_POLICY_COMM_SIG: "VCPC" read as a little-endian u32.
    pub const SIGNATURE: u32 = u32::from_le_bytes(*b"VCPC");
    /// VAR_CHECK_POLICY_COMM_REVISION.
    pub const REVISION: u32 = 1;

    numbered_table! {
        /// Every command with its edk2 name.
        NAMES: u32 {
            DISABLE = 1,
            IS_ENABLED = 2,
            REGISTER = 3,
            DUMP = 4,
            LOCK = 5,
            GET_INFO = 6,
            GET_LOCK_VAR_STATE_INFO = 7,
        }
    }
}

// ---------------------------------------------------------------------------
// Structures inside variable payloads (not in the MM buffer itself).

/// WIN_CERTIFICATE_UEFI_GUID header of an EFI_VARIABLE_AUTHENTICATION_2.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Auth2Header {
    pub timestamp: EfiTime,
    /// AuthInfo.Hdr.dwLength: WIN_CERTIFICATE length, its 24-byte header included.
    pub length: u32,
    pub revision: u16,
    pub cert_type: u16,
    pub cert_type_guid: Guid,
}

/// Size of the fixed part of EFI_VARIABLE_AUTHENTICATION_2 (TimeStamp +
/// WIN_CERTIFICATE_UEFI_GUID header).
pub(crate) const AUTH2_FIXED_SIZE: usize = 40;
/// WIN_CERTIFICATE_UEFI_GUID header size (Hdr + CertType).
pub(crate) const WIN_CERT_UEFI_GUID_HEADER: u32 = 24;

impl Auth2Header {
    /// Reads the fixed 40-byte header; `None` if `data` is shorter.
    pub fn parse(data: &[u8]) -> Option<Self> {
        let mut r = Reader::new(data);
        Some(Auth2Header {
            timestamp: EfiTime(r.array("TimeStamp").ok()?),
            length: r.u32("AuthInfo.Hdr.dwLength").ok()?,
            revision: r.u16("AuthInfo.Hdr.wRevision").ok()?,
            cert_type: r.u16("AuthInfo.Hdr.wCertificateType").ok()?,
            cert_type_guid: r.guid("AuthInfo.CertType").ok()?,
        })
    }
}

/// A VARIABLE_POLICY_ENTRY as registered by the guest (docs/reference/policy.md §3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyEntryHeader {
    /// VARIABLE_POLICY_ENTRY.Version.
    pub version: u32,
    /// Size of the whole entry (header, name, lock data).
    pub size: u16,
    /// Offset of the name from the start of the entry.
    pub offset_to_name: u16,
    /// The namespace GUID the policy applies to.
    pub namespace: Guid,
    /// Smallest data size allowed.
    pub min_size: u32,
    /// Largest data size allowed.
    pub max_size: u32,
    /// Attribute bits a write must set.
    pub attributes_must_have: u32,
    /// Attribute bits a write must not set.
    pub attributes_cant_have: u32,
    /// VARIABLE_POLICY_TYPE_* of the lock.
    pub lock_policy_type: u8,
}

/// Size of VARIABLE_POLICY_ENTRY before the lock data and name.
pub const POLICY_ENTRY_HEADER_SIZE: usize = 44;
/// VARIABLE_LOCK_ON_VAR_STATE_POLICY before its name: Namespace, Value, pad.
pub(crate) const LOCK_ON_VAR_STATE_HEADER_SIZE: usize = 18;

impl PolicyEntryHeader {
    /// Decodes the fixed header; `None` if `b` is shorter than it.
    pub fn parse(b: &[u8]) -> Option<Self> {
        let mut r = Reader::new(b.get(..POLICY_ENTRY_HEADER_SIZE)?);
        Some(PolicyEntryHeader {
            version: r.u32("Version").ok()?,
            size: r.u16("Size").ok()?,
            offset_to_name: r.u16("OffsetToName").ok()?,
            namespace: r.guid("Namespace").ok()?,
            min_size: r.u32("MinSize").ok()?,
            max_size: r.u32("MaxSize").ok()?,
            attributes_must_have: r.u32("AttributesMustHave").ok()?,
            attributes_cant_have: r.u32("AttributesCantHave").ok()?,
            lock_policy_type: r.u8("LockPolicyType").ok()?,
        })
    }

    /// The fixed header in wire form.
    pub fn encode(&self) -> [u8; POLICY_ENTRY_HEADER_SIZE] {
        let mut out = [0u8; POLICY_ENTRY_HEADER_SIZE];
        let mut w = Vec::with_capacity(POLICY_ENTRY_HEADER_SIZE);
        w.extend_from_slice(&self.version.to_le_bytes());
        w.extend_from_slice(&self.size.to_le_bytes());
        w.extend_from_slice(&self.offset_to_name.to_le_bytes());
        w.extend_from_slice(&self.namespace.0);
        w.extend_from_slice(&self.min_size.to_le_bytes());
        w.extend_from_slice(&self.max_size.to_le_bytes());
        w.extend_from_slice(&self.attributes_must_have.to_le_bytes());
        w.extend_from_slice(&self.attributes_cant_have.to_le_bytes());
        w.push(self.lock_policy_type);
        w.extend_from_slice(&[0, 0, 0]);
        out.copy_from_slice(&w);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guid::SMM_VARIABLE_PROTOCOL;

    #[test]
    fn stage_checks_framing() {
        let req = build_request(Layout::X64, &SMM_VARIABLE_PROTOCOL, &[1, 2, 3]);
        let b = MmBuffer::stage(&req, 64, Layout::X64).unwrap();
        assert_eq!(b.message_length(), 3);
        assert_eq!(b.capacity(), 40);
        assert_eq!(b.into_reply(), req);
        // header + message larger than the buffer
        assert_eq!(
            MmBuffer::stage(&req, 26, Layout::X64).unwrap_err(),
            DeviceStatus::ErrBadBufferSize
        );
        // fewer bytes than the header
        assert!(MmBuffer::stage(&req[..20], 64, Layout::X64).is_err());
        // message shorter than MessageLength claims
        assert!(MmBuffer::stage(&req[..25], 64, Layout::X64).is_err());
        // MessageLength near u64::MAX must not overflow
        let mut huge = req.clone();
        huge[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(MmBuffer::stage(&huge, 64, Layout::X64).is_err());
    }

    #[test]
    fn ia32_layout() {
        let l = Layout::IA32;
        assert_eq!(l.mm_header(), 20);
        assert_eq!(l.var_payload_off(), 28);
        assert_eq!(l.access_variable(), 28);
        assert_eq!(l.next_variable(), 20);
        let req = build_request(l, &SMM_VARIABLE_PROTOCOL, &[9; 8]);
        assert_eq!(req.len(), 28);
        let mut b = MmBuffer::stage(&req, 64, l).unwrap();
        assert_eq!(b.uintn(20), Some(0x0909_0909));
        b.put_status(24, EfiStatus::NOT_FOUND).unwrap();
        assert_eq!(b.u32(24), Some(0x8000_000e));
    }

    #[test]
    fn accessors_are_bounded() {
        let req = build_request(Layout::X64, &SMM_VARIABLE_PROTOCOL, &[]);
        let mut b = MmBuffer::stage(&req, 24, Layout::X64).unwrap();
        assert_eq!(b.u64(20), None);
        assert_eq!(b.put_u64(usize::MAX - 2, 1), None);
        assert_eq!(b.slice(usize::MAX, 2), None);
    }

    #[test]
    fn function_and_command_tables() {
        // edk2 SmmVariableCommon.h and VarCheckPolicyMmi.h.
        assert_eq!(function::name(11), Some("GET_PAYLOAD_SIZE"));
        assert_eq!(function::name(3), Some("SET_VARIABLE"));
        assert_eq!(function::name(15), None);
        assert_eq!(function::NAMES.len(), 14);
        assert_eq!(policy_command::name(3), Some("REGISTER"));
        assert_eq!(policy_command::name(8), None);
        assert_eq!(policy_command::SIGNATURE, 0x4350_4356);
    }

    #[test]
    fn policy_entry_round_trip() {
        let h = PolicyEntryHeader {
            version: 0x10000,
            size: 60,
            offset_to_name: 44,
            namespace: SMM_VARIABLE_PROTOCOL,
            min_size: 1,
            max_size: u32::MAX,
            attributes_must_have: 7,
            attributes_cant_have: 0x40,
            lock_policy_type: 2,
        };
        assert_eq!(PolicyEntryHeader::parse(&h.encode()), Some(h));
        assert_eq!(PolicyEntryHeader::parse(&[0; 43]), None);
    }
}

/// Builders for the requests edk2 sends, laid out as its client does
/// (docs/reference/mm-protocol.md §11). Test helpers (behind the `testing` feature): used
/// by the tests, the fuzz targets and the QEMU oracle.
#[cfg(any(test, feature = "testing"))]
pub mod request {
    use super::function::{
        GET_NEXT_VARIABLE_NAME, GET_PAYLOAD_SIZE, GET_VARIABLE, LOCK_VARIABLE, QUERY_VARIABLE_INFO,
        SET_VARIABLE,
    };
    use super::policy_command::{REVISION, SIGNATURE};
    use super::{build_request, push_uintn, Layout};
    use crate::guid::{Guid, SMM_VARIABLE_PROTOCOL, VAR_CHECK_POLICY_MMI};

    /// SMM_VARIABLE_COMMUNICATE_HEADER + payload, wrapped in an MM header.
    pub fn variable(layout: Layout, function: u64, payload: &[u8]) -> Vec<u8> {
        let mut msg = Vec::new();
        push_uintn(&mut msg, layout, function);
        push_uintn(&mut msg, layout, 0xafaf_afaf_afaf_afaf); // ReturnStatus: junk, as DEBUG edk2 leaves it
        msg.extend_from_slice(payload);
        build_request(layout, &SMM_VARIABLE_PROTOCOL, &msg)
    }

    fn access(
        layout: Layout,
        guid: &Guid,
        data_size: u64,
        name: &[u8],
        attributes: u32,
        data: &[u8],
    ) -> Vec<u8> {
        let mut p = guid.0.to_vec();
        push_uintn(&mut p, layout, data_size);
        push_uintn(&mut p, layout, name.len() as u64);
        p.extend_from_slice(&attributes.to_le_bytes());
        p.extend_from_slice(name);
        p.extend_from_slice(data);
        p
    }

    /// GET_VARIABLE with room for `capacity` data bytes. `name` is the raw
    /// name area (UCS-2 with NUL, see [`crate::name::VarName::to_wire`]).
    pub fn get_variable(layout: Layout, guid: &Guid, name: &[u8], capacity: u64) -> Vec<u8> {
        let room = vec![0u8; usize::try_from(capacity).unwrap_or(0)];
        variable(
            layout,
            GET_VARIABLE,
            &access(layout, guid, capacity, name, 0, &room),
        )
    }

    /// SET_VARIABLE.
    pub fn set_variable(
        layout: Layout,
        guid: &Guid,
        name: &[u8],
        attributes: u32,
        data: &[u8],
    ) -> Vec<u8> {
        variable(
            layout,
            SET_VARIABLE,
            &access(layout, guid, data.len() as u64, name, attributes, data),
        )
    }

    /// GET_NEXT_VARIABLE_NAME with a name buffer of `capacity` bytes holding
    /// `name` (zero-padded).
    pub fn get_next_variable_name(
        layout: Layout,
        guid: &Guid,
        name: &[u8],
        capacity: u64,
    ) -> Vec<u8> {
        let mut p = guid.0.to_vec();
        push_uintn(&mut p, layout, capacity);
        let mut area = name.to_vec();
        area.resize(usize::try_from(capacity).unwrap_or(0).max(name.len()), 0);
        p.extend_from_slice(&area);
        variable(layout, GET_NEXT_VARIABLE_NAME, &p)
    }

    /// QUERY_VARIABLE_INFO (edk2's 32-byte struct with padding).
    pub fn query_variable_info(layout: Layout, attributes: u32) -> Vec<u8> {
        let mut p = vec![0u8; 24];
        p.extend_from_slice(&attributes.to_le_bytes());
        p.extend_from_slice(&[0u8; 4]);
        variable(layout, QUERY_VARIABLE_INFO, &p)
    }

    /// GET_PAYLOAD_SIZE.
    pub fn get_payload_size(layout: Layout) -> Vec<u8> {
        variable(layout, GET_PAYLOAD_SIZE, &vec![0u8; layout.uintn()])
    }

    /// LOCK_VARIABLE (legacy VariableLock).
    pub fn lock_variable(layout: Layout, guid: &Guid, name: &[u8]) -> Vec<u8> {
        let mut p = guid.0.to_vec();
        push_uintn(&mut p, layout, name.len() as u64);
        p.extend_from_slice(name);
        variable(layout, LOCK_VARIABLE, &p)
    }

    /// A boot-phase event: bare header with a one-byte payload, as VirtMm
    /// signals it.
    pub fn event(layout: Layout, guid: &Guid) -> Vec<u8> {
        build_request(layout, guid, &[0])
    }

    /// A VarCheck policy command with its parameters.
    pub fn policy(layout: Layout, command: u32, params: &[u8]) -> Vec<u8> {
        let mut msg = Vec::new();
        msg.extend_from_slice(&SIGNATURE.to_le_bytes());
        msg.extend_from_slice(&REVISION.to_le_bytes());
        msg.extend_from_slice(&command.to_le_bytes());
        push_uintn(&mut msg, layout, 0xafaf_afaf_afaf_afaf);
        msg.extend_from_slice(params);
        build_request(layout, &VAR_CHECK_POLICY_MMI, &msg)
    }
}
