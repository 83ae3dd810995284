//! The SMM variable functions QEMU leaves unimplemented, answered as
//! edk2's SmmVariableHandler (MdeModulePkg/Universal/Variable/RuntimeDxe/
//! VariableSmm.c, edk2-stable202605) answers them: GET_STATISTICS (7),
//! VAR_CHECK_VARIABLE_PROPERTY_SET (9) and _GET (10), and the runtime
//! cache functions (12-14) (docs/reference/varcheck.md, docs/compat.md
//! varcheck-property and runtime-cache).

use std::fmt;

use super::Service;
use crate::codec::function::{
    GET_RUNTIME_CACHE_INFO, GET_STATISTICS, INIT_RUNTIME_VARIABLE_CACHE_CONTEXT,
    SYNC_RUNTIME_CACHE, VAR_CHECK_VARIABLE_PROPERTY_GET, VAR_CHECK_VARIABLE_PROPERTY_SET,
};
use crate::codec::MmBuffer;
use crate::guid::Guid;
use crate::name::VarName;
use crate::status::EfiStatus;
use crate::varcheck::Property;

/// Offsets inside SMM_VARIABLE_COMMUNICATE_VAR_CHECK_VARIABLE_PROPERTY
/// (natural alignment: Guid, UINTN NameSize, VAR_CHECK_VARIABLE_PROPERTY
/// {UINT16 Revision, UINT16 Property, UINT32 Attributes, UINTN MinSize,
/// UINTN MaxSize}, CHAR16 Name[]), relative to the function payload.
#[derive(Clone, Copy)]
struct PropertyLayout {
    w: usize,
}

impl PropertyLayout {
    fn property(self) -> usize {
        self.w.saturating_add(16)
    }
    /// MinSize sits on a UINTN boundary after the 8 bytes before it.
    fn min_size(self) -> usize {
        self.property().saturating_add(8)
    }
    fn max_size(self) -> usize {
        self.min_size().saturating_add(self.w)
    }
    /// OFFSET_OF (..., Name): 48 on X64, 36 on IA32.
    fn name(self) -> usize {
        self.max_size().saturating_add(self.w)
    }
}

/// A decoded VarCheck property request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PropertyRequest {
    Set {
        guid: Guid,
        name: VarName,
        property: Property,
    },
    Get {
        guid: Guid,
        name: VarName,
    },
}

impl fmt::Display for PropertyRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PropertyRequest::Set {
                guid,
                name,
                property,
            } => write!(
                f,
                "VAR_CHECK_VARIABLE_PROPERTY_SET {guid:?}:{} revision {} flags {:#x} attributes {:#x} size {}..={}",
                name.to_string_lossless().unwrap_or_default(),
                property.revision,
                property.flags,
                property.attributes,
                property.min_size,
                property.max_size
            ),
            PropertyRequest::Get { guid, name } => write!(
                f,
                "VAR_CHECK_VARIABLE_PROPERTY_GET {guid:?}:{}",
                name.to_string_lossless().unwrap_or_default()
            ),
        }
    }
}

impl Service {
    /// Functions 7, 9, 10, 12-14. `None`: edk2 returns without writing
    /// ReturnStatus (it stays as the guest sent it).
    pub(super) fn var_check_function(
        &mut self,
        function: u64,
        buf: &mut MmBuffer,
    ) -> Option<EfiStatus> {
        let layout = buf.layout();
        let p = layout.var_payload_off();
        let payload = buf
            .message_length()
            .saturating_sub(layout.var_header() as u64);
        let pl = PropertyLayout { w: layout.uintn() };
        match function {
            // SmmVariableGetStatistics without PcdVariableCollectStatistics.
            GET_STATISTICS => Some(EfiStatus::UNSUPPORTED),
            VAR_CHECK_VARIABLE_PROPERTY_SET => Some(self.property_set(buf, p, payload, pl)),
            VAR_CHECK_VARIABLE_PROPERTY_GET => self.property_get(buf, p, payload, pl),
            INIT_RUNTIME_VARIABLE_CACHE_CONTEXT => Some(EfiStatus::ACCESS_DENIED),
            // FlushPendingRuntimeVariableCacheUpdates with no cache context.
            SYNC_RUNTIME_CACHE => Some(EfiStatus::UNSUPPORTED),
            GET_RUNTIME_CACHE_INFO => self.runtime_cache_info(buf, p, payload),
            _ => Some(EfiStatus::UNSUPPORTED),
        }
    }

    /// VAR_CHECK_VARIABLE_PROPERTY_SET: refused from EndOfDxe on, before
    /// anything is read; edk2 reads the name up to its NUL (NameSize is not
    /// used). A name without NUL inside the message is refused with
    /// EFI_INVALID_PARAMETER (edk2 would read past the buffer).
    fn property_set(
        &mut self,
        buf: &MmBuffer,
        p: usize,
        payload: u64,
        pl: PropertyLayout,
    ) -> EfiStatus {
        if self.phase.end_of_dxe {
            return EfiStatus::ACCESS_DENIED;
        }
        let Some(req) = decode_property(buf, p, payload, pl, false) else {
            return EfiStatus::INVALID_PARAMETER;
        };
        match req {
            PropertyRequest::Set {
                guid,
                name,
                property,
            } => match self.varcheck.set(&guid, &name, property) {
                Ok(()) => EfiStatus::SUCCESS,
                Err(e) => e,
            },
            PropertyRequest::Get { .. } => EfiStatus::INVALID_PARAMETER,
        }
    }

    /// VAR_CHECK_VARIABLE_PROPERTY_GET with SmmVariableHandler's checks: a
    /// payload shorter than the fixed part is not answered; a NameSize
    /// past the payload, below 2 or whose last unit is not NUL gives
    /// EFI_ACCESS_DENIED.
    fn property_get(
        &mut self,
        buf: &mut MmBuffer,
        p: usize,
        payload: u64,
        pl: PropertyLayout,
    ) -> Option<EfiStatus> {
        if payload < pl.name() as u64 {
            return None;
        }
        let name_size = buf.uintn(p.saturating_add(16))?;
        let fits = name_size
            .checked_add(pl.name() as u64)
            .is_some_and(|end| end <= payload);
        if !fits || name_size < 2 {
            return Some(EfiStatus::ACCESS_DENIED);
        }
        let name_off = p.saturating_add(pl.name());
        let last = name_off
            .saturating_add(name_size as usize)
            .saturating_sub(2);
        if buf.u16(last) != Some(0) {
            return Some(EfiStatus::ACCESS_DENIED);
        }
        let Some(PropertyRequest::Get { guid, name }) = decode_property(buf, p, payload, pl, true)
        else {
            return Some(EfiStatus::ACCESS_DENIED);
        };
        match self.varcheck.get(&guid, &name) {
            Ok(prop) => {
                write_property(buf, p, pl, &prop);
                Some(EfiStatus::SUCCESS)
            }
            Err(e) => Some(e),
        }
    }

    /// GET_RUNTIME_CACHE_INFO: no HOB store; the device's one store serves
    /// as both the non-volatile and the volatile store; authenticated
    /// variables are supported.
    fn runtime_cache_info(&self, buf: &mut MmBuffer, p: usize, payload: u64) -> Option<EfiStatus> {
        let w = buf.layout().uintn();
        // sizeof (SMM_VARIABLE_COMMUNICATE_GET_RUNTIME_CACHE_INFO): three
        // UINTN and a BOOLEAN, padded to a UINTN.
        if payload < w.saturating_mul(4) as u64 {
            return None;
        }
        let store = self.config.max_storage;
        let _ = buf.put_uintn(p, 0);
        let _ = buf.put_uintn(p.saturating_add(w), store);
        let _ = buf.put_uintn(p.saturating_add(w.saturating_mul(2)), store);
        let _ = buf.put_u8(p.saturating_add(w.saturating_mul(3)), 1);
        Some(EfiStatus::SUCCESS)
    }
}

impl Service {}

/// Decodes the property structure; the name is read up to its first NUL
/// inside the message (the GET path has checked NameSize already).
fn decode_property(
    buf: &MmBuffer,
    p: usize,
    payload: u64,
    pl: PropertyLayout,
    get: bool,
) -> Option<PropertyRequest> {
    let guid = buf.guid(p)?;
    let name_off = p.checked_add(pl.name())?;
    let area_len = usize::try_from(payload).ok()?.checked_sub(pl.name())?;
    let area = buf.slice(name_off, area_len)?;
    let units = VarName::units_until_nul(&area);
    // The NUL must be inside the message.
    if units.len().checked_mul(2)?.checked_add(2)? > area.len() {
        return None;
    }
    let name = VarName::from_units(units);
    if get {
        return Some(PropertyRequest::Get { guid, name });
    }
    let q = p.checked_add(pl.property())?;
    let property = Property {
        revision: buf.u16(q)?,
        flags: buf.u16(q.checked_add(2)?)?,
        attributes: buf.u32(q.checked_add(4)?)?,
        min_size: buf.uintn(p.checked_add(pl.min_size())?)?,
        max_size: buf.uintn(p.checked_add(pl.max_size())?)?,
    };
    Some(PropertyRequest::Set {
        guid,
        name,
        property,
    })
}

fn write_property(buf: &mut MmBuffer, p: usize, pl: PropertyLayout, prop: &Property) {
    let q = p.saturating_add(pl.property());
    let _ = buf.put_bytes(q, &prop.revision.to_le_bytes());
    let _ = buf.put_bytes(q.saturating_add(2), &prop.flags.to_le_bytes());
    let _ = buf.put_u32(q.saturating_add(4), prop.attributes);
    let _ = buf.put_uintn(p.saturating_add(pl.min_size()), prop.min_size);
    let _ = buf.put_uintn(p.saturating_add(pl.max_size()), prop.max_size);
}
