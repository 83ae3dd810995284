//! Enumeration (a full GetNextVariableName walk) and GetVariable of every
//! variable at n = 100, 1,000, 10,000, through the MM buffer interface,
//! for uefi-vars and virtfw-varstore 0.6.6 in alternation.

use uefi_vars::codec::{request, Layout};
use uefi_vars::guid::Guid;
use uefi_vars::name::VarName;
use uefi_vars::{Config, Service};
use virtfw_varstore::mm::core::core_request;
use virtfw_varstore::store::EfiVarStore;

use super::{cpu_us, median};

const VENDOR: Guid = Guid::from_fields(0x1234_5678, 0x9abc, 0xdef0, [1, 2, 3, 4, 5, 6, 7, 8]);
const NV_BS_RT: u32 = 7;

fn name(i: usize) -> Vec<u8> {
    VarName::from(format!("Variable{i:05}").as_str()).to_wire()
}

fn set_requests(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| request::set_variable(Layout::X64, &VENDOR, &name(i), NV_BS_RT, &[i as u8; 16]))
        .collect()
}

fn get_requests(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| request::get_variable(Layout::X64, &VENDOR, &name(i), 64))
        .collect()
}

fn ours(n: usize) -> Service {
    let mut svc = Service::in_memory(Config::default().with_max_storage(64 << 20));
    for r in set_requests(n) {
        svc.communicate(&r);
    }
    svc
}

fn peer(n: usize) -> EfiVarStore {
    let mut store = EfiVarStore::new();
    for mut r in set_requests(n) {
        core_request(&mut store, &mut r);
    }
    store
}

/// GetNextVariableName from the previous reply (`None`: the first call).
fn next_request(reply: Option<&[u8]>) -> Vec<u8> {
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
fn walk(mut call: impl FnMut(Vec<u8>) -> Vec<u8>) -> usize {
    let mut count = 0;
    let mut reply = call(next_request(None));
    while uefi_vars::codec::u64_at(&reply, 32, "ReturnStatus").unwrap() == 0 {
        count += 1;
        reply = call(next_request(Some(&reply)));
    }
    count
}

fn ours_walk(svc: &mut Service) -> usize {
    walk(|r| svc.communicate(&r).reply.unwrap())
}

fn peer_walk(store: &mut EfiVarStore) -> usize {
    walk(|mut r| {
        core_request(store, &mut r);
        r
    })
}

fn ours_get_all(svc: &mut Service, gets: &[Vec<u8>]) -> usize {
    gets.iter()
        .map(|r| svc.communicate(r).reply.map_or(0, |x| x.len()))
        .sum()
}

fn peer_get_all(store: &mut EfiVarStore, gets: &[Vec<u8>]) -> usize {
    gets.iter()
        .map(|r| {
            let mut r = r.clone();
            core_request(store, &mut r);
            r.len()
        })
        .sum()
}

pub fn run() {
    println!();
    println!("| n | operation | uefi-vars CPU µs/call | virtfw-varstore CPU µs/call | ratio |");
    println!("| --- | --- | --- | --- | --- |");
    for n in [100usize, 1000, 10000] {
        let mut svc = ours(n);
        let mut store = peer(n);
        let gets = get_requests(n);
        let rounds = if n >= 10000 { 5 } else { 15 };
        let (mut ow, mut pw, mut og, mut pg) = (vec![], vec![], vec![], vec![]);
        for _ in 0..rounds {
            let (t, seen) = cpu_us(|| ours_walk(&mut svc));
            assert!(seen >= n);
            ow.push(t / seen as f64);
            let (t, seen) = cpu_us(|| peer_walk(&mut store));
            assert!(seen >= n);
            pw.push(t / seen as f64);
            og.push(cpu_us(|| ours_get_all(&mut svc, &gets)).0 / n as f64);
            pg.push(cpu_us(|| peer_get_all(&mut store, &gets)).0 / n as f64);
        }
        for (op, o, p) in [
            (
                "GetNextVariableName (full walk)",
                median(&mut ow),
                median(&mut pw),
            ),
            (
                "GetVariable (every variable)",
                median(&mut og),
                median(&mut pg),
            ),
        ] {
            println!("| {n} | {op} | {o:.2} | {p:.2} | {:.1}× faster |", p / o);
        }
    }
}
