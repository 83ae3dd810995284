//! How the service scales with the number of variables: a full
//! GetNextVariableName walk and a GetVariable of every variable, through
//! the MM buffer interface, for n = 100, 1000, 10000. The same request
//! streams also go through virtfw-varstore (the closest Rust peer, used here
//! only as a yardstick), at every n. Run:
//! `cargo bench -p uefi-vars --bench store_scaling`. The side-by-side
//! tables of docs/performance.md come from the `performance` bench, which
//! interleaves the two.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use uefi_vars::codec::{self, request, Layout};
use uefi_vars::guid::Guid;
use uefi_vars::name::VarName;
use uefi_vars::{Config, Service};

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

fn peer(n: usize) -> virtfw_varstore::store::EfiVarStore {
    let mut store = virtfw_varstore::store::EfiVarStore::new();
    for mut r in set_requests(n) {
        virtfw_varstore::mm::core::core_request(&mut store, &mut r);
    }
    store
}

/// GetNextVariableName from `prev` (reply of the previous call).
fn next_request(reply: Option<&[u8]>) -> Vec<u8> {
    match reply {
        None => request::get_next_variable_name(Layout::X64, &Guid::default(), &[0, 0], 128),
        Some(r) => {
            let guid = Guid(r[40..56].try_into().unwrap());
            let size = codec::u64_at(r, 56, "NameSize").unwrap() as usize;
            request::get_next_variable_name(Layout::X64, &guid, &r[64..64 + size], 128)
        }
    }
}

fn walk(mut call: impl FnMut(Vec<u8>) -> Vec<u8>) -> usize {
    let mut count = 0;
    let mut reply = call(next_request(None));
    while codec::u64_at(&reply, 32, "ReturnStatus").unwrap() == 0 {
        count += 1;
        reply = call(next_request(Some(&reply)));
    }
    count
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("enumerate");
    g.sample_size(10);
    for n in [100usize, 1000, 10000] {
        g.throughput(Throughput::Elements(n as u64));
        let mut svc = ours(n);
        g.bench_with_input(BenchmarkId::new("uefi-vars", n), &n, |b, _| {
            b.iter(|| walk(|r| svc.communicate(&r).reply.unwrap()))
        });
        let mut store = peer(n);
        g.bench_with_input(BenchmarkId::new("virtfw-varstore", n), &n, |b, _| {
            b.iter(|| {
                walk(|mut r| {
                    virtfw_varstore::mm::core::core_request(&mut store, &mut r);
                    r
                })
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("get_all");
    g.sample_size(10);
    for n in [100usize, 1000, 10000] {
        g.throughput(Throughput::Elements(n as u64));
        let gets = get_requests(n);
        let mut svc = ours(n);
        g.bench_with_input(BenchmarkId::new("uefi-vars", n), &n, |b, _| {
            b.iter(|| {
                gets.iter()
                    .map(|r| svc.communicate(r).reply.map_or(0, |x| x.len()))
                    .sum::<usize>()
            })
        });
        let mut store = peer(n);
        g.bench_with_input(BenchmarkId::new("virtfw-varstore", n), &n, |b, _| {
            b.iter(|| {
                gets.iter()
                    .map(|r| {
                        let mut r = r.clone();
                        virtfw_varstore::mm::core::core_request(&mut store, &mut r);
                        r.len()
                    })
                    .sum::<usize>()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
