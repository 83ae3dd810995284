//! The workload both read benchmarks use (`store_scaling`, criterion, and
//! `performance -- reads`, interleaved with the peer): n variables of 16
//! bytes, the requests that write and read them, a store of each kind
//! holding them, and a full GetNextVariableName walk.

use uefi_vars::codec::{request, Layout};
use uefi_vars::guid::Guid;
use uefi_vars::name::VarName;
use uefi_vars::{Config, Service};
use virtfw_varstore::mm::core::core_request;
use virtfw_varstore::store::EfiVarStore;

pub(crate) const VENDOR: Guid =
    Guid::from_fields(0x1234_5678, 0x9abc, 0xdef0, [1, 2, 3, 4, 5, 6, 7, 8]);
pub(crate) const NV_BS_RT: u32 = 7;

pub(crate) fn name(i: usize) -> Vec<u8> {
    VarName::from(format!("Variable{i:05}").as_str()).to_wire()
}

pub(crate) fn set_requests(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| request::set_variable(Layout::X64, &VENDOR, &name(i), NV_BS_RT, &[i as u8; 16]))
        .collect()
}

pub(crate) fn get_requests(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| request::get_variable(Layout::X64, &VENDOR, &name(i), 64))
        .collect()
}

pub(crate) fn ours(n: usize) -> Service {
    let mut svc = Service::in_memory(Config::default().with_max_storage(64 << 20));
    for r in set_requests(n) {
        svc.communicate(&r);
    }
    svc
}

pub(crate) fn peer(n: usize) -> EfiVarStore {
    let mut store = EfiVarStore::new();
    for mut r in set_requests(n) {
        core_request(&mut store, &mut r);
    }
    store
}

/// GetNextVariableName from the previous reply (`None`: the first call).
pub(crate) fn next_request(reply: Option<&[u8]>) -> Vec<u8> {
    match reply {
        None => request::get_next_variable_name(Layout::X64, &Guid::default(), &[0, 0], 128),
        Some(r) => {
            let guid = Guid(r[40..56].try_into().unwrap());
            let size = uefi_vars::codec::u64_at(r, 56, "NameSize").unwrap() as usize;
            request::get_next_variable_name(Layout::X64, &guid, &r[64..64 + size], 128)
        }
    }
}

/// Walks the whole store; returns the number of names seen.
pub(crate) fn walk(mut call: impl FnMut(Vec<u8>) -> Vec<u8>) -> usize {
    let mut count = 0;
    let mut reply = call(next_request(None));
    while uefi_vars::codec::u64_at(&reply, 32, "ReturnStatus").unwrap() == 0 {
        count += 1;
        reply = call(next_request(Some(&reply)));
    }
    count
}
