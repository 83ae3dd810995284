//! Shared pieces of the uefi-vars fuzz targets: the signed updates the
//! structured targets replay, and the invariants checked after every step.
//!
//! Every check panics with a description when it fails, which libFuzzer
//! reports as a crash.

use std::collections::BTreeSet;

use uefi_vars::codec::{self, request, Layout};
use uefi_vars::guid::Guid;
use uefi_vars::name::VarName;
use uefi_vars::persist::fault::FaultyStorage;
use uefi_vars::persist::{json, MemoryStorage};
use uefi_vars::codec::function::GET_NEXT_VARIABLE_NAME;
use uefi_vars::store::Visibility;
use uefi_vars::variable::{VarKey, Variable};
use uefi_vars::{EfiStatus, MmResponse, Service};

pub mod auth;

/// A UINTN of the layout's width at `off`.
pub fn read_uintn(layout: Layout, bytes: &[u8], off: usize) -> Option<u64> {
    codec::uintn_at(bytes, off, layout.word, "UINTN").ok()
}

/// MessageLength of a request as the service reads it, if the header is
/// there.
pub fn message_length(layout: Layout, req: &[u8]) -> Option<u64> {
    read_uintn(layout, req, 16)
}

/// The EFI status (widened to 64 bits) in a reply at `at`.
pub fn reply_status(layout: Layout, reply: &[u8], at: usize) -> Option<EfiStatus> {
    let raw = read_uintn(layout, reply, at)?;
    Some(if layout.uintn() == 4 && raw & (1 << 31) != 0 {
        EfiStatus((raw & 0x7fff_ffff) | (1 << 63))
    } else {
        EfiStatus(raw)
    })
}

/// ReturnStatus of a variable-protocol reply.
pub fn var_status(layout: Layout, reply: &[u8]) -> Option<EfiStatus> {
    reply_status(layout, reply, layout.mm_header() + layout.uintn())
}

/// A reply, when there is one, is exactly the MM header plus the request's
/// MessageLength (the device writes back nothing else).
pub fn check_reply_shape(layout: Layout, req: &[u8], resp: &MmResponse) {
    if let Some(reply) = &resp.reply {
        let ml = message_length(layout, req).expect("a reply for a request without header");
        assert_eq!(
            reply.len() as u64,
            layout.mm_header() as u64 + ml,
            "reply length is not header + MessageLength"
        );
        // The header itself comes back unchanged.
        assert_eq!(
            reply.get(..layout.mm_header()),
            req.get(..layout.mm_header()),
            "the MM header was rewritten"
        );
    }
}

/// Walks the whole store with GetNextVariableName as a guest would and
/// checks that it terminates and sees every visible variable exactly once,
/// in store order. Leaves the service's buffer size as it was.
pub fn check_enumeration(svc: &mut Service) {
    let layout = svc.config().layout;
    let saved_buffer = svc.buffer_size();
    svc.set_buffer_size(uefi_vars::service::MAX_BUFFER_SIZE);
    let vis = if svc.phase().exit_boot_services {
        Visibility::Runtime
    } else {
        Visibility::BootServices
    };
    let expected: Vec<VarKey> = svc
        .store()
        .iter()
        .filter(|v| vis.allows(v.attributes))
        .map(Variable::key)
        .collect();
    for k in &expected {
        assert!(!k.name.is_empty(), "an empty name is stored: {k:?}");
    }
    let mut seen: Vec<VarKey> = Vec::new();
    let mut guid = Guid::default();
    let mut name: Vec<u8> = vec![0, 0];
    let limit = svc.store().len() + 2;
    let payload_off = layout.var_payload_off();
    let name_off = payload_off + layout.next_variable();
    let mut finished = false;
    for _ in 0..limit {
        // QEMU (and we) refuse a NameSize above the storage size.
        let mut capacity = (name.len() as u64).max(svc.config().max_storage.min(2048));
        let (reply, status) = loop {
            let req = request::get_next_variable_name(layout, &guid, &name, capacity);
            let resp = svc.communicate(&req);
            check_reply_shape(layout, &req, &resp);
            let reply = resp.reply.expect("GetNextVariableName framing failed");
            let status = var_status(layout, &reply).expect("no status");
            // As edk2's client: retry once with the size the service asks for.
            let needed = read_uintn(layout, &reply, payload_off + 16).unwrap_or(0);
            if status == EfiStatus::BUFFER_TOO_SMALL && needed > capacity {
                capacity = needed;
                continue;
            }
            break (reply, status);
        };
        if status == EfiStatus::NOT_FOUND {
            finished = true;
            break;
        }
        assert_eq!(
            status,
            EfiStatus::SUCCESS,
            "GetNextVariableName failed part way after {seen:?}"
        );
        let next_guid = codec::Reader::at(&reply, payload_off)
            .guid("VendorGuid")
            .expect("reply too short for the GUID");
        let size = read_uintn(layout, &reply, payload_off + 16).expect("no NameSize") as usize;
        let area = reply
            .get(name_off..name_off + size)
            .expect("NameSize runs past the reply");
        let next_name = VarName::parse_wire(area).expect("returned name does not parse");
        assert_eq!(
            next_name.wire_size() as usize,
            size,
            "NameSize is not the name plus its NUL"
        );
        seen.push(VarKey::new(next_guid, next_name));
        guid = next_guid;
        name = area.to_vec();
    }
    svc.set_buffer_size(saved_buffer);
    assert!(
        finished,
        "enumeration did not end after {limit} steps: {seen:?}"
    );
    let unique: BTreeSet<&VarKey> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "a variable was enumerated twice");
    assert_eq!(seen, expected, "enumeration differs from the store");
}

/// What a storage-limit check needs to remember between steps.
#[derive(Clone, Copy, Debug)]
pub struct Usage {
    pub used: u64,
}

impl Usage {
    pub fn of(svc: &Service) -> Self {
        Usage {
            used: svc.store().used(),
        }
    }

    /// A guest step may not grow the accounted storage past the limit
    /// (it may stay above it if the store was loaded so). `slack` allows
    /// the Secure Boot state variables the service itself recreates after a
    /// reset or a PK change.
    pub fn check_after(self, svc: &Service, slack: u64) {
        let now = svc.store().used();
        let max = svc.config().max_storage;
        assert!(
            now <= max.max(self.used).saturating_add(slack),
            "storage grew to {now} past the limit {max} (was {})",
            self.used
        );
        let sum: u64 = svc.store().iter().map(|v| svc.store().cost(v)).sum();
        assert_eq!(sum, now, "storage accounting drifted");
        let policies = svc.policies();
        let limits = svc.config().policy_limits;
        assert!(policies.policies().len() <= limits.max_policies);
        let bytes: usize = policies.policies().iter().map(|p| p.raw.len()).sum();
        assert!(bytes <= limits.max_total_bytes);
    }
}

/// Generous bound for the Secure Boot state variables (seven small
/// variables plus SignatureSupport) the service forces in.
pub fn secure_boot_slack(svc: &Service) -> u64 {
    8 * (svc.store().overhead() + 64) + 128
}

/// The persisted store is exactly the service's non-volatile variables, in
/// order: nothing acknowledged is lost, nothing refused is persisted.
pub fn check_persisted(svc: &Service, storage: &FaultyStorage<MemoryStorage>) {
    let text = storage.with_inner(|m| m.text());
    let persisted = match text {
        Some(t) => json::decode(t.as_bytes()).expect("the saved store does not decode"),
        None => Vec::new(),
    };
    let live: Vec<Variable> = svc
        .store()
        .iter()
        .filter(|v| v.is_non_volatile())
        .cloned()
        .collect();
    assert_eq!(persisted, live, "persisted store differs from the service");
}

/// Request for GetNextVariableName, re-exported for targets.
pub const GET_NEXT: u64 = GET_NEXT_VARIABLE_NAME;
