//! How the service scales with the number of variables: a full
//! GetNextVariableName walk and a GetVariable of every variable, through
//! the MM buffer interface, for n = 100, 1000, 10000. The same request
//! streams also go through virtfw-varstore (the closest Rust peer, used here
//! only as a yardstick), at every n. Run:
//! `cargo bench -p uefi-vars --bench store_scaling`. The side-by-side
//! tables of docs/performance.md come from the `performance` bench, which
//! interleaves the two.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
#[path = "common/read_workload.rs"]
mod read_workload;
use read_workload::{get_requests, ours, peer, walk};

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
