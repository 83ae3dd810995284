//! Enumeration (a full GetNextVariableName walk) and GetVariable of every
//! variable at n = 100, 1,000, 10,000, through the MM buffer interface,
//! for uefi-vars and virtfw-varstore 0.6.6 in alternation.

use uefi_vars::Service;
use virtfw_varstore::mm::core::core_request;
use virtfw_varstore::store::EfiVarStore;

use super::read_workload::{get_requests, ours, peer, walk};

use super::{cpu_us, median};

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
