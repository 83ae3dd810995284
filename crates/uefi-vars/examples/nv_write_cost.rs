//! NV write cost versus store size on the real filesystem: time, bytes
//! handed to write(2) and syncs (fsync, fdatasync, directory fsync) per
//! 32-byte SetVariable, for a store of n variables in a JSON file, with the
//! journal and with the full rewrite in the same run (issue 11,
//! docs/performance.md). The store lives in the system's temporary
//! directory.
//!
//! `cargo run --release -p uefi-vars --example nv_write_cost -- [N...]`

use std::sync::Arc;
use std::time::Instant;

use uefi_vars::guid::GLOBAL_VARIABLE;
use uefi_vars::name::VarName;
use uefi_vars::persist::fault::{FaultyFileOps, FileOp};
use uefi_vars::persist::{json, JsonFile, SyncMode};
use uefi_vars::variable::{attr, Variable};
use uefi_vars::{Config, EfiStatus, Service};

const NV_BS_RT: u32 = attr::NON_VOLATILE | attr::BOOTSERVICE_ACCESS | attr::RUNTIME_ACCESS;

/// Bytes this process has passed to write(2) so far (`wchar`).
fn written() -> u64 {
    let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    io.lines()
        .find_map(|l| l.strip_prefix("wchar: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn run(n: usize, writes: usize, sync: SyncMode) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vars.json");
    let vars: Vec<Variable> = (0..n)
        .map(|i| {
            Variable::new(
                GLOBAL_VARIABLE,
                VarName::from(format!("Var{i:05}").as_str()),
                NV_BS_RT,
                vec![0x5a; 32],
            )
        })
        .collect();
    let refs: Vec<&Variable> = vars.iter().collect();
    std::fs::write(&path, json::encode(&refs).unwrap()).unwrap();
    let ops = FaultyFileOps::new();
    let file = JsonFile::new(&path)
        .with_sync(sync)
        .with_file_ops(Arc::new(ops.clone()));
    let mut svc = Service::new(
        Config {
            max_storage: 1 << 30,
            ..Config::default()
        },
        Box::new(file),
    )
    .unwrap();
    let syncs_before = syncs(&ops);
    let bytes_before = written();
    let start = Instant::now();
    for i in 0..writes {
        let mut data = vec![0xa5; 32];
        data[0] = i as u8;
        let name = VarName::from(format!("Hot{:02}", i % 8).as_str());
        assert_eq!(
            svc.set_variable(GLOBAL_VARIABLE, name, NV_BS_RT, &data),
            EfiStatus::SUCCESS
        );
    }
    let elapsed = start.elapsed();
    let bytes = written().saturating_sub(bytes_before);
    let nsync = syncs(&ops).saturating_sub(syncs_before);
    let mode = match sync {
        SyncMode::FullRewrite => "full-rewrite",
        _ => "journal",
    };
    println!(
        "n={n:>6}  {mode:<12}  {:>9.1} us/write  {:>10} bytes/write  {:.2} syncs/write",
        elapsed.as_secs_f64() * 1e6 / writes as f64,
        bytes / writes as u64,
        nsync as f64 / writes as f64
    );
}

fn syncs(ops: &FaultyFileOps) -> usize {
    ops.log()
        .iter()
        .filter(|op| matches!(op, FileOp::SyncFile | FileOp::SyncDir | FileOp::SyncData))
        .count()
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![10, 1000, 5000]
    } else {
        sizes
    };
    for n in sizes {
        for sync in [SyncMode::FullRewrite, SyncMode::Journal] {
            run(n, if n >= 5000 { 200 } else { 500 }, sync);
        }
    }
}
