//! Decoding of requests and replies for the classifier: no state, no
//! rules.

use uefi_vars::codec::{self, function, policy_command, Reader};
use uefi_vars::guid::{Guid, SMM_VARIABLE_PROTOCOL, VAR_CHECK_POLICY_MMI};
use uefi_vars::name::VarName;
use uefi_vars::well_known;

/// Variable key: vendor GUID and the name up to its first NUL.
pub(super) type Key = (Guid, Vec<u16>);

pub(super) fn until_nul(units: &[u16]) -> Vec<u16> {
    units.iter().copied().take_while(|&u| u != 0).collect()
}

pub(super) fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    codec::u64_at(b, off, "u64").ok()
}
pub(super) fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    codec::u32_at(b, off, "u32").ok()
}
pub(super) fn guid_at(b: &[u8], off: usize) -> Option<Guid> {
    Reader::at(b, off).guid("GUID").ok()
}
pub(super) fn units(b: &[u8]) -> Vec<u16> {
    VarName::ucs2_units(b)
}

/// A name area as edk2 requires it: even size, NUL at the end and nowhere
/// before, no surrogates, not empty.
pub(super) fn name_is_clean(area: &[u8]) -> bool {
    let u = units(area);
    area.len() >= 4
        && area.len() % 2 == 0
        && u.last() == Some(&0)
        && u[..u.len() - 1]
            .iter()
            .all(|&c| c != 0 && !(0xd800..0xe000).contains(&c))
}

/// The decoded request, as far as the classifier needs it.
#[derive(Debug)]
pub(super) enum Req {
    Var {
        function: u64,
        /// GET/SET: guid, data size, name area, attributes, data.
        access: Option<Access>,
        /// GET_NEXT / LOCK: guid, name area.
        next: Option<(Guid, Vec<u8>)>,
    },
    Policy {
        signature_ok: bool,
        command: u32,
        /// REGISTER: the entry.
        entry: Option<PolicyEntry>,
    },
    Event(Guid),
    Other,
}

#[derive(Debug)]
pub(super) struct PolicyEntry {
    pub(super) namespace: Guid,
    /// No name, or the empty name "".
    pub(super) nameless: bool,
    /// The name up to its NUL (what QEMU and edk2 match on).
    pub(super) name: Vec<u16>,
    pub(super) lock_type: u8,
    /// The entry's Size field: what QEMU 11.1 charges to the storage.
    pub(super) size: u64,
    /// Size == OffsetToName: no name at all (QEMU 11.1.3 aborts on it).
    pub(super) no_name_bytes: bool,
}

#[derive(Debug)]
pub(super) struct Access {
    pub(super) guid: Guid,
    pub(super) data_size: u64,
    pub(super) name: Vec<u8>,
    pub(super) attributes: u32,
    pub(super) data: Vec<u8>,
}

pub(super) fn decode(req: &[u8]) -> Req {
    let Some(g) = guid_at(req, 0) else {
        return Req::Other;
    };
    let body = &req[24.min(req.len())..];
    if g == SMM_VARIABLE_PROTOCOL {
        let Some(function) = u64_at(body, 0) else {
            return Req::Other;
        };
        let p = &body[16.min(body.len())..];
        let access = (|| {
            let guid = guid_at(p, 0)?;
            let data_size = u64_at(p, 16)?;
            let name_size = usize::try_from(u64_at(p, 24)?).ok()?;
            let attributes = u32_at(p, 32)?;
            let name = p.get(36..36usize.checked_add(name_size)?)?.to_vec();
            let data = p
                .get(36 + name_size..)
                .map(|d| d[..d.len().min(data_size as usize)].to_vec())
                .unwrap_or_default();
            Some(Access {
                guid,
                data_size,
                name,
                attributes,
                data,
            })
        })();
        let next = (|| {
            let guid = guid_at(p, 0)?;
            let name_size = usize::try_from(u64_at(p, 16)?).ok()?;
            Some((guid, p.get(24..24usize.checked_add(name_size)?)?.to_vec()))
        })();
        Req::Var {
            function,
            access: if matches!(function, function::GET_VARIABLE | function::SET_VARIABLE) {
                access
            } else {
                None
            },
            next: if matches!(
                function,
                function::GET_NEXT_VARIABLE_NAME | function::LOCK_VARIABLE
            ) {
                next
            } else {
                None
            },
        }
    } else if g == VAR_CHECK_POLICY_MMI {
        let sig = u32_at(body, 0).unwrap_or(0);
        let rev = u32_at(body, 4).unwrap_or(0);
        let entry = (|| {
            let e = body.get(20..)?;
            let size = usize::from(codec::u16_at(e, 4, "Size").ok()?);
            let offset = usize::from(codec::u16_at(e, 6, "OffsetToName").ok()?);
            let name = e.get(offset.min(size)..size).unwrap_or_default();
            Some(PolicyEntry {
                namespace: guid_at(e, 8)?,
                nameless: name.iter().all(|&b| b == 0) && name.len() <= 2,
                name: until_nul(&units(name)),
                lock_type: *e.get(40)?,
                size: size as u64,
                no_name_bytes: size == offset,
            })
        })();
        Req::Policy {
            signature_ok: sig == policy_command::SIGNATURE && rev == policy_command::REVISION,
            command: u32_at(body, 8).unwrap_or(0),
            entry,
        }
    } else {
        Req::Event(g)
    }
}

/// EFI status in a reply (variable protocol: abs 32; policy: abs 36).
pub(super) fn efi_status(reply: Option<&[u8]>, policy: bool) -> Option<u64> {
    u64_at(reply?, if policy { 36 } else { 32 })
}

/// Name (up to the NUL) and GUID a GET_NEXT reply returned.
pub(super) fn next_result(reply: Option<&[u8]>) -> Option<Key> {
    let r = reply?;
    let guid = guid_at(r, 40)?;
    let size = usize::try_from(u64_at(r, 56)?).ok()?;
    let name = r.get(64..64 + size.min(r.len().saturating_sub(64)))?;
    Some((guid, until_nul(&units(name))))
}

/// PK, KEK, db, dbx.
pub(super) fn is_secure_boot_key(guid: &Guid, name: &[u16]) -> bool {
    use well_known::{DB, DBX, KEK, PK};
    [PK, KEK, DB, DBX].iter().any(|v| v.is_units(guid, name))
}

/// At most 40 characters of a name, for reports.
pub(super) fn short(name: &str) -> String {
    if name.chars().count() <= 40 {
        return name.to_string();
    }
    let head: String = name.chars().take(32).collect();
    format!("{head}...({} chars)", name.chars().count())
}

/// A one-line description of a request and an answer, for reports.
pub fn brief(request: &[u8], reply: Option<&[u8]>) -> String {
    match decode(request) {
        Req::Var {
            function,
            access,
            next,
        } => {
            let st = efi_status(reply, false).map_or("-".to_string(), |s| format!("{s:#x}"));
            let mut s = format!("var fn {function} status {st}");
            if let Some(a) = access {
                s += &format!(
                    " {} {:?} (size {}) attr {:#x} data {}",
                    a.guid,
                    short(&String::from_utf16_lossy(&units(&a.name))),
                    a.name.len(),
                    a.attributes,
                    a.data_size
                );
            }
            if let Some((g, n)) = next {
                s += &format!(
                    " {g} {:?}",
                    String::from_utf16_lossy(&until_nul(&units(&n)))
                );
                if function == 2 {
                    if let Some((g, n)) = next_result(reply) {
                        s += &format!(" -> {g} {:?}", String::from_utf16_lossy(&n));
                    }
                }
            }
            s
        }
        Req::Policy {
            signature_ok,
            command,
            ..
        } => format!(
            "policy cmd {command}{} result {}",
            if signature_ok { "" } else { " (bad signature)" },
            efi_status(reply, true).map_or("-".to_string(), |s| format!("{s:#x}"))
        ),
        Req::Event(g) => format!("event {g}"),
        Req::Other => "short request".to_string(),
    }
}

pub(super) fn named(name: &[u16], s: &str) -> bool {
    name.iter().copied().eq(s.encode_utf16())
}

/// PK, KEK, db, dbx, dbt, dbr: the signature databases.
pub(super) fn is_signature_db(guid: &Guid, name: &[u16]) -> bool {
    well_known::is_signature_database_units(guid, name)
}

/// Length of the payload after an EFI_VARIABLE_AUTHENTICATION_2 header
/// (EFI_TIME, then a WIN_CERTIFICATE of dwLength bytes).
pub(super) fn auth2_payload_len(a: &Access) -> Option<u64> {
    let cert = u64::from(u32_at(&a.data, 16)?);
    a.data_size.checked_sub(16 + cert)
}

/// The CertData of an EFI_VARIABLE_AUTHENTICATION_2 is a ContentInfo
/// (SEQUENCE, then the signedData OID) rather than a bare SignedData.
pub(super) fn cert_is_content_info(a: &Access) -> bool {
    const SIGNED_DATA_OID: [u8; 11] = [
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02,
    ];
    let Some(cert) = a.data.get(40..) else {
        return false;
    };
    let skip = match (cert.first(), cert.get(1)) {
        (Some(0x30), Some(&l)) if l < 0x80 => 2,
        (Some(0x30), Some(0x80)) => 2,
        (Some(0x30), Some(&l)) if l > 0x80 => 2 + usize::from(l & 0x7f),
        _ => return false,
    };
    cert.get(skip..skip + SIGNED_DATA_OID.len()) == Some(&SIGNED_DATA_OID[..])
}
