//! Writes seed bodies for the `snapshot` fuzz target into
//! fuzz/seeds/snapshot: snapshots of services after replaying the real
//! boot captures (variables, policies, boot phases), without the envelope
//! the target adds itself.
//!
//!     cd fuzz && cargo run --example snapshot_seeds
use std::path::Path;

use uefi_vars::codec::{request, Layout};
use uefi_vars::guid::GLOBAL_VARIABLE;
use uefi_vars::name::VarName;
use uefi_vars::pcap::{read_file, RecordKind};
use uefi_vars::{Config, Service};

fn body(snapshot: &[u8]) -> &[u8] {
    // magic 8 + version 4 + length 8 ... crc 4
    &snapshot[20..snapshot.len() - 4]
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = root.join("seeds/snapshot");
    std::fs::create_dir_all(&out).unwrap();
    let write = |name: &str, layout_bit: u8, snap: &[u8]| {
        let mut seed = vec![layout_bit];
        seed.extend_from_slice(body(snap));
        std::fs::write(out.join(name), seed).unwrap();
    };

    for layout in [Layout::X64, Layout::IA32] {
        let bit = u8::from(layout == Layout::IA32);
        let svc = Service::in_memory(Config::default().with_layout(layout));
        write(&format!("fresh-{bit}"), bit, &svc.snapshot());
    }

    for cap in ["ovmf-2boots-empty", "fedora-boot-1"] {
        let records = read_file(&root.join(format!("../tests/data/{cap}.pcap.gz"))).unwrap();
        let mut svc = Service::in_memory(Config::default());
        let requests: Vec<_> = records
            .iter()
            .filter(|r| r.kind == RecordKind::Request)
            .collect();
        for (i, r) in requests.iter().enumerate() {
            svc.communicate(&r.payload);
            // Mid-boot (policies registered, before EndOfDxe) and at the end.
            if i == requests.len() / 3 {
                write(&format!("{cap}-early"), 0, &svc.snapshot());
            }
        }
        write(&format!("{cap}-end"), 0, &svc.snapshot());
    }

    // A volatile variable.
    let mut svc = Service::in_memory(Config::default());
    let name = VarName::from("Vol").to_wire();
    svc.communicate(&request::set_variable(
        Layout::X64,
        &GLOBAL_VARIABLE,
        &name,
        6,
        b"v",
    ));
    write("volatile", 0, &svc.snapshot());
}
