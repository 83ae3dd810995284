//! A request's round trip through the `uefi-vars serve` protocol (a
//! `RemoteService` client and a `Server` on a thread of this process,
//! over its Unix socket; without the sandbox, which would confine the
//! benchmark itself) against the same request through `Service::communicate`
//! in process: GetVariable of a stored variable and a GetNextVariableName,
//! alternating in batches, wall-time medians (issue 11, docs/performance.md).
//!
//! `cargo bench -p uefi-vars-serve --bench round_trip`

use std::time::Instant;

use uefi_vars::codec::{request, Layout};
use uefi_vars::guid::GLOBAL_VARIABLE;
use uefi_vars::name::VarName;
use uefi_vars::persist::WriteMode;
use uefi_vars::{Config, Service};
use uefi_vars_client::RemoteService;
use uefi_vars_serve::{ServeOptions, Server};

const BATCH: usize = 200;
const ROUNDS: usize = 30;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Microseconds per call of `call` over `BATCH` calls.
fn batch(mut call: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..BATCH {
        call();
    }
    start.elapsed().as_secs_f64() * 1e6 / BATCH as f64
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("sock");
    let mut opts = ServeOptions::new(dir.path().join("vars.json"), socket.clone());
    opts.write_mode = WriteMode::AtomicReplace;
    opts.config = Config::default();
    opts.sandbox = false;
    opts.drop_privileges = false;
    let server = Server::start(opts).unwrap();
    std::thread::spawn(move || server.run());
    let mut remote = RemoteService::connect(&socket, 65536, Layout::X64).unwrap();
    let mut local = Service::in_memory(Config::default());

    let name = VarName::from("Lang").to_wire();
    let set = request::set_variable(Layout::X64, &GLOBAL_VARIABLE, &name, 7, b"eng\0");
    remote.communicate(&set).unwrap();
    local.communicate(&set);
    let get = request::get_variable(Layout::X64, &GLOBAL_VARIABLE, &name, 64);
    let next = request::get_next_variable_name(Layout::X64, &GLOBAL_VARIABLE, &name, 128);
    // Same answers both ways.
    for r in [&get, &next] {
        assert_eq!(
            remote.communicate(r).unwrap().reply,
            local.communicate(r).reply
        );
    }

    println!("| request | in process µs | through serve µs | round trip adds |");
    println!("| --- | --- | --- | --- |");
    for (label, req) in [("GetVariable", &get), ("GetNextVariableName", &next)] {
        let (mut inproc, mut served) = (vec![], vec![]);
        for _ in 0..ROUNDS {
            inproc.push(batch(|| {
                local.communicate(req);
            }));
            served.push(batch(|| {
                remote.communicate(req).unwrap();
            }));
        }
        let (i, s) = (median(&mut inproc), median(&mut served));
        println!(
            "| {label} | {i:.2} | {s:.1} | {:.1} µs ({:.0}×) |",
            s - i,
            s / i
        );
    }
}
