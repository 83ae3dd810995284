//! `uefi-vars replay`: run a capture through the service and compare.

use std::path::PathBuf;
use std::process::ExitCode;

use uefi_vars::persist::{json, non_volatile, JsonFile, MemoryStorage, Storage};
use uefi_vars::replay::replay;
use uefi_vars::{Config, Service};

#[derive(clap::Args)]
pub struct ReplayArgs {
    /// Capture file (.pcap or .pcap.gz, LINKTYPE_EDK2_MM).
    trace: PathBuf,
    /// Store the capture started from (default: empty). It is not modified.
    #[arg(long)]
    store: Option<PathBuf>,
    /// Write the final store here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Compare the final store with this JSON file.
    #[arg(long)]
    expect: Option<PathBuf>,
    /// The capture comes from QEMU 10.0-10.2 (GET_PAYLOAD_SIZE answered
    /// with the whole buffer size).
    #[arg(long)]
    legacy_payload_size: bool,
    /// How many mismatches to list in detail.
    #[arg(long, default_value_t = 20)]
    show: usize,
}

pub fn run(args: &ReplayArgs) -> Result<ExitCode, String> {
    let records = uefi_vars::pcap::read_file(&args.trace)
        .map_err(|e| format!("{}: {e}", args.trace.display()))?;
    let storage = match &args.store {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            MemoryStorage::from_text(text)
        }
        None => MemoryStorage::new(),
    };
    let config = Config {
        legacy_payload_size: args.legacy_payload_size,
        ..Config::default()
    };
    let mut svc = Service::new(config, Box::new(storage)).map_err(|e| e.to_string())?;
    let report = replay(&mut svc, &records);

    println!("trace:      {}", args.trace.display());
    println!("resets:     {}", report.resets);
    println!("requests:   {}", report.requests);
    println!("identical:  {}", report.identical);
    println!("mismatches: {}", report.mismatches.len());
    for m in report.mismatches.iter().take(args.show) {
        let offs = m.offsets();
        let shown: Vec<String> = offs.iter().take(12).map(|o| format!("{o:#x}")).collect();
        let more = if offs.len() > 12 {
            format!(" (+{} more)", offs.len() - 12)
        } else {
            String::new()
        };
        match &m.actual {
            Some(_) => println!(
                "  record {} {}: differs at {}{}",
                m.record,
                m.what,
                shown.join(" "),
                more
            ),
            None => println!("  record {} {}: no reply (framing error)", m.record, m.what),
        }
    }
    for e in &report.host_errors {
        println!("host error: {e}");
    }

    let vars: Vec<_> = svc.store().iter().collect();
    let nv = non_volatile(&vars);
    let mut ok = report.mismatches.is_empty() && report.host_errors.is_empty();
    if let Some(out) = &args.out {
        JsonFile::new(out).save(&nv).map_err(|e| e.to_string())?;
        println!("final store written to {}", out.display());
    }
    if let Some(exp) = &args.expect {
        let text = std::fs::read(exp).map_err(|e| format!("{}: {e}", exp.display()))?;
        let expected = json::decode(&text).map_err(|e| format!("{}: {e}", exp.display()))?;
        let ours: Vec<_> = nv.iter().map(|v| (*v).clone()).collect();
        if ours == expected {
            println!(
                "final store: identical to {} ({} variables)",
                exp.display(),
                ours.len()
            );
        } else {
            ok = false;
            println!("final store: DIFFERS from {}", exp.display());
            for v in &ours {
                if !expected.contains(v) {
                    println!("  ours only/different: {} {}", v.guid, v.name);
                }
            }
            for v in &expected {
                if !ours.contains(v) {
                    println!("  expected only/different: {} {}", v.guid, v.name);
                }
            }
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::exit::MISMATCH)
    })
}
