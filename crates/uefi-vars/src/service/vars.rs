//! SMM variable protocol handlers (gEfiSmmVariableProtocolGuid).
//!
//! Check order and reply lengths follow QEMU's device so replies match byte
//! for byte; where QEMU is unsafe or wrong, edk2's SMM variable driver is
//! followed instead, and each such place is listed in docs/compat.md under
//! the id given in the comment. SetVariable's decision procedure follows
//! edk2 instead (`set_variable.rs`); only its framing is here.

use super::Service;
use crate::codec::MmBuffer;
use crate::name::VarName;
use crate::policy::{Policy, WriteRequest};
use crate::status::{DeviceStatus, EfiStatus};
use crate::variable::VarKey;

// The function numbers are written once, in codec (crates/uefi-vars/src/codec.rs).
#[allow(clippy::wildcard_imports)]
use crate::codec::function::*;

/// Result of a handler: the status to report and the reply length it needs
/// (counted from the end of the MM header); the caller turns "needed more
/// than MessageLength" into BUFFER_TOO_SMALL.
struct Outcome {
    status: EfiStatus,
    length: u64,
}

impl Outcome {
    fn err(status: EfiStatus, hv: usize) -> Self {
        Outcome {
            status,
            length: hv as u64,
        }
    }
}

/// Offsets of the fields every variable function shares.
struct Frame {
    /// Size of SMM_VARIABLE_COMMUNICATE_HEADER.
    hv: usize,
    /// Absolute offset of the function payload.
    p: usize,
    ml: u64,
}

impl Service {
    pub(super) fn variable_protocol(&mut self, buf: &mut MmBuffer) -> DeviceStatus {
        let layout = buf.layout();
        let hv = layout.var_header();
        let ml = buf.message_length();
        if ml < hv as u64 {
            return DeviceStatus::ErrBadBufferSize;
        }
        let f = Frame {
            hv,
            p: layout.var_payload_off(),
            ml,
        };
        // Inside the header checked above; a read past the buffer is a
        // framing fault, never a silent 0.
        let Some(function) = buf.uintn(layout.mm_header()) else {
            return DeviceStatus::ErrBadBufferSize;
        };
        let out = match function {
            GET_VARIABLE => self.get_variable(buf, &f),
            GET_NEXT_VARIABLE_NAME => self.get_next_variable_name(buf, &f),
            SET_VARIABLE => self.mm_set_variable(buf, &f),
            QUERY_VARIABLE_INFO => self.query_variable_info(buf, &f),
            READY_TO_BOOT => {
                // compat: ready-to-boot-at-runtime (edk2 refuses it)
                if self.phase.exit_boot_services {
                    Outcome::err(EfiStatus::UNSUPPORTED, 0)
                } else {
                    self.ready_to_boot();
                    Outcome::err(EfiStatus::SUCCESS, 0)
                }
            }
            EXIT_BOOT_SERVICE => {
                self.phase.exit_boot_services = true;
                Outcome::err(EfiStatus::SUCCESS, 0)
            }
            LOCK_VARIABLE => self.lock_variable(buf, &f),
            GET_PAYLOAD_SIZE => self.get_payload_size(buf, &f),
            // Statistics, VarCheck properties, runtime cache (service/varcheck.rs).
            _ => match self.var_check_function(function, buf) {
                Some(status) => Outcome::err(status, hv),
                // edk2 leaves ReturnStatus as the guest sent it.
                None => return DeviceStatus::Success,
            },
        };
        let status = if ml < out.length {
            EfiStatus::BUFFER_TOO_SMALL
        } else {
            out.status
        };
        let _ = buf.put_status(layout.var_status_off(), status);
        DeviceStatus::Success
    }

    /// "buf check": the reply fits the negotiated buffer.
    fn fits_buffer(buf: &MmBuffer, length: u64) -> bool {
        length <= buf.capacity()
    }

    /// Reads (GUID, NameSize) style headers and applies the checks common to
    /// GET/SET: minimum length, max_storage bounds, name inside the message.
    /// Returns the name area's offset and size.
    fn access_header(&self, buf: &MmBuffer, f: &Frame) -> Result<AccessHeader, Outcome> {
        let acc = buf.layout().access_variable();
        let length = f.hv.saturating_add(acc) as u64;
        if f.ml < length {
            return Err(Outcome::err(EfiStatus::BAD_BUFFER_SIZE, f.hv));
        }
        let l = buf.layout();
        let (Some(guid), Some(data_size), Some(name_size), Some(attributes)) = (
            buf.guid(f.p),
            buf.uintn(l.access_data_size_off()),
            buf.uintn(l.access_name_size_off()),
            buf.u32(l.access_attributes_off()),
        ) else {
            return Err(Outcome::err(EfiStatus::BAD_BUFFER_SIZE, f.hv));
        };
        if name_size > self.config.max_storage || data_size > self.config.max_storage {
            return Err(Outcome::err(EfiStatus::OUT_OF_RESOURCES, f.hv));
        }
        let length = length
            .checked_add(name_size)
            .filter(|&l| l <= f.ml)
            .ok_or(Outcome::err(EfiStatus::BAD_BUFFER_SIZE, f.hv))?;
        Ok(AccessHeader {
            guid,
            data_size,
            name_size,
            attributes,
            name_off: buf.layout().access_name_off(),
            length,
        })
    }

    fn parse_name(buf: &MmBuffer, off: usize, size: u64, f: &Frame) -> Result<VarName, Outcome> {
        let area = usize::try_from(size)
            .ok()
            .and_then(|s| buf.slice(off, s))
            .ok_or(Outcome::err(EfiStatus::INVALID_PARAMETER, f.hv))?;
        // compat: name-scan-bound (QEMU scans up to twice the area)
        VarName::parse_wire(&area).map_err(|_| Outcome::err(EfiStatus::INVALID_PARAMETER, f.hv))
    }

    fn get_variable(&mut self, buf: &mut MmBuffer, f: &Frame) -> Outcome {
        let h = match self.access_header(buf, f) {
            Ok(h) => h,
            Err(o) => return o,
        };
        let name = match Self::parse_name(buf, h.name_off, h.name_size, f) {
            Ok(n) => n,
            Err(o) => return o,
        };
        let vis = self.visibility();
        let Some(var) = self.store.get(&VarKey::new(h.guid, name)) else {
            return Outcome::err(EfiStatus::NOT_FOUND, f.hv);
        };
        if !vis.allows(var.attributes) {
            // compat: get-inaccessible (QEMU: ACCESS_DENIED, edk2: NOT_FOUND)
            return Outcome::err(EfiStatus::NOT_FOUND, f.hv);
        }
        let Some(length) = h.length.checked_add(h.data_size) else {
            return Outcome::err(EfiStatus::BAD_BUFFER_SIZE, f.hv);
        };
        if !Self::fits_buffer(buf, length) {
            return Outcome::err(EfiStatus::BAD_BUFFER_SIZE, f.hv);
        }
        let actual = var.data.len() as u64;
        let _ = buf.put_u32(buf.layout().access_attributes_off(), var.attributes);
        let _ = buf.put_uintn(buf.layout().access_data_size_off(), actual);
        if h.data_size < actual {
            // The reply still needs only what was sent; status says "too small".
            return Outcome {
                status: EfiStatus::BUFFER_TOO_SMALL,
                length: h.length,
            };
        }
        let data_off = h.name_off.saturating_add(h.name_size as usize);
        let data = var.data.clone();
        if buf.put_bytes(data_off, &data).is_none() {
            return Outcome::err(EfiStatus::BAD_BUFFER_SIZE, f.hv);
        }
        Outcome {
            status: EfiStatus::SUCCESS,
            length,
        }
    }

    fn get_next_variable_name(&mut self, buf: &mut MmBuffer, f: &Frame) -> Outcome {
        let nv = buf.layout().next_variable();
        let base = f.hv.saturating_add(nv) as u64;
        if f.ml < base {
            return Outcome::err(EfiStatus::BAD_BUFFER_SIZE, f.hv);
        }
        let (Some(guid), Some(name_size)) =
            (buf.guid(f.p), buf.uintn(buf.layout().next_name_size_off()))
        else {
            return Outcome::err(EfiStatus::BAD_BUFFER_SIZE, f.hv);
        };
        if name_size > self.config.max_storage {
            return Outcome::err(EfiStatus::OUT_OF_RESOURCES, f.hv);
        }
        if base.checked_add(name_size).is_none_or(|l| l > f.ml) {
            return Outcome::err(EfiStatus::BAD_BUFFER_SIZE, f.hv);
        }
        let name_off = buf.layout().next_name_off();
        let name = match Self::parse_name(buf, name_off, name_size, f) {
            Ok(n) => n,
            Err(o) => return o,
        };
        let vis = self.visibility();
        let next = if name.is_empty() {
            self.store.first_visible(vis)
        } else {
            match self.store.next_visible(&VarKey::new(guid, name), vis) {
                None => return Outcome::err(EfiStatus::INVALID_PARAMETER, f.hv),
                Some(n) => n,
            }
        };
        let Some(next) = next else {
            return Outcome::err(EfiStatus::NOT_FOUND, f.hv);
        };
        let wire = next.name.to_wire();
        let length = base.saturating_add(wire.len() as u64);
        if !Self::fits_buffer(buf, length) {
            return Outcome::err(EfiStatus::BAD_BUFFER_SIZE, f.hv);
        }
        let next_guid = next.guid;
        let _ = buf.put_guid(f.p, &next_guid);
        let _ = buf.put_uintn(buf.layout().next_name_size_off(), wire.len() as u64);
        let _ = buf.put_bytes(name_off, &wire);
        Outcome {
            status: EfiStatus::SUCCESS,
            length,
        }
    }

    fn mm_set_variable(&mut self, buf: &mut MmBuffer, f: &Frame) -> Outcome {
        let h = match self.access_header(buf, f) {
            Ok(h) => h,
            Err(o) => return o,
        };
        if h.length.checked_add(h.data_size).is_none_or(|l| l > f.ml) {
            return Outcome::err(EfiStatus::BAD_BUFFER_SIZE, f.hv);
        }
        let name = match Self::parse_name(buf, h.name_off, h.name_size, f) {
            Ok(n) => n,
            Err(o) => return o,
        };
        let data_off = h.name_off.saturating_add(h.name_size as usize);
        let data = buf
            .slice(data_off, h.data_size as usize)
            .map(std::borrow::Cow::into_owned)
            .unwrap_or_default();
        let status = self.set(h.guid, name.clone(), h.attributes, &data);
        if status != EfiStatus::SUCCESS {
            // `set` records a refusal for every status it refuses with.
            if let Some(r) = self.last_refusal() {
                super::log::refused_write(r);
            }
        }
        Outcome::err(status, f.hv)
    }

    fn query_variable_info(&mut self, buf: &mut MmBuffer, f: &Frame) -> Outcome {
        let length = f.hv.saturating_add(buf.layout().query_info()) as u64;
        if !Self::fits_buffer(buf, length) {
            return Outcome::err(EfiStatus::BAD_BUFFER_SIZE, f.hv);
        }
        let max = self.config.max_storage;
        let max_var = self.config.max_variable_size.unwrap_or(max / 4);
        let _ = buf.put_u64(f.p, max);
        // compat: query-remaining-saturates (QEMU wraps when over the limit)
        let _ = buf.put_u64(
            f.p.saturating_add(8),
            max.saturating_sub(self.used_storage()),
        );
        let _ = buf.put_u64(f.p.saturating_add(16), max_var);
        let _ = buf.put_u32(f.p.saturating_add(24), 0);
        Outcome {
            status: EfiStatus::SUCCESS,
            length,
        }
    }

    fn get_payload_size(&mut self, buf: &mut MmBuffer, f: &Frame) -> Outcome {
        let length = f.hv.saturating_add(buf.layout().payload_size()) as u64;
        if !Self::fits_buffer(buf, length) {
            return Outcome::err(EfiStatus::BAD_BUFFER_SIZE, f.hv);
        }
        let payload = if self.config.legacy_payload_size {
            u64::from(self.buffer_size)
        } else {
            buf.capacity().saturating_sub(f.hv as u64)
        };
        let _ = buf.put_uintn(f.p, payload);
        Outcome {
            status: EfiStatus::SUCCESS,
            length,
        }
    }

    /// Legacy VariableLock: becomes a LOCK_NOW policy, as edk2's
    /// VariableLockRequestToLock does.
    fn lock_variable(&mut self, buf: &mut MmBuffer, f: &Frame) -> Outcome {
        let nv = buf.layout().next_variable();
        let base = f.hv.saturating_add(nv) as u64;
        if f.ml < base {
            return Outcome::err(EfiStatus::BAD_BUFFER_SIZE, f.hv);
        }
        let (Some(guid), Some(name_size)) =
            (buf.guid(f.p), buf.uintn(buf.layout().next_name_size_off()))
        else {
            return Outcome::err(EfiStatus::BAD_BUFFER_SIZE, f.hv);
        };
        let Some(length) = base.checked_add(name_size).filter(|&l| l <= f.ml) else {
            return Outcome::err(EfiStatus::BAD_BUFFER_SIZE, f.hv);
        };
        if name_size.saturating_add(44) > u64::from(u16::MAX) {
            return Outcome::err(EfiStatus::BAD_BUFFER_SIZE, f.hv);
        }
        // compat: lock-variable-phase (QEMU accepts it at any time)
        if self.phase.end_of_dxe {
            return Outcome::err(EfiStatus::ACCESS_DENIED, f.hv);
        }
        let name = match Self::parse_name(buf, buf.layout().next_name_off(), name_size, f) {
            Ok(n) if !n.is_empty() => n,
            _ => return Outcome::err(EfiStatus::INVALID_PARAMETER, f.hv),
        };
        let status = match self.policies.register(Policy::lock_now(guid, &name)) {
            Ok(()) => EfiStatus::SUCCESS,
            Err(EfiStatus::ALREADY_STARTED) => {
                let probe = WriteRequest {
                    guid: &guid,
                    name: &name,
                    attributes: 0,
                    data_size: 0,
                    is_delete: true,
                    exists: self.store.get(&VarKey::new(guid, name.clone())).is_some(),
                };
                // edk2 ValidateSetVariable (Name, Guid, 0, 0, NULL): the
                // state variable is read, so a LOCK_ON_VAR_STATE policy in
                // force counts as a lock.
                match self.policies.check_write(&probe, |g, n| {
                    self.store
                        .get(&VarKey::new(*g, n.clone()))
                        .map(|v| v.data.clone())
                }) {
                    Err(EfiStatus::WRITE_PROTECTED) => EfiStatus::SUCCESS,
                    _ => EfiStatus::ACCESS_DENIED,
                }
            }
            Err(e) => e,
        };
        Outcome { status, length }
    }
}

struct AccessHeader {
    guid: crate::guid::Guid,
    data_size: u64,
    name_size: u64,
    attributes: u32,
    name_off: usize,
    /// Header + name, counted from the end of the MM header.
    length: u64,
}
