//! `uefi-vars replay`: run a capture through the service and compare.

use std::path::PathBuf;
use std::process::ExitCode;

use uefi_vars::persist::{json, non_volatile, MemoryStorage};
use uefi_vars::replay::{replay_stream, Mismatch};
use uefi_vars::variable::Variable;
use uefi_vars::{Config, Service};

use crate::store_io;

#[derive(clap::Args)]
pub struct ReplayArgs {
    /// Capture file (.pcap or .pcap.gz, LINKTYPE_EDK2_MM).
    trace: PathBuf,
    /// Store the capture started from, in any format (default: empty). It
    /// is not modified.
    #[arg(long)]
    store: Option<PathBuf>,
    /// Write the final store here (format from the extension; JSON by
    /// default).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Compare the final store with this store file (any format).
    #[arg(long)]
    expect: Option<PathBuf>,
    /// The capture comes from QEMU 10.0-10.2 (GET_PAYLOAD_SIZE answered
    /// with the whole buffer size).
    #[arg(long)]
    legacy_payload_size: bool,
    /// The capture comes from QEMU 10.0 (registered policies not counted in
    /// QueryVariableInfo's remaining storage; QEMU 11.1 counts them).
    #[arg(long)]
    legacy_storage_accounting: bool,
    /// How many mismatches to list in detail.
    #[arg(long, default_value_t = 20)]
    show: usize,
}

pub fn run(args: &ReplayArgs) -> Result<ExitCode, String> {
    let trace_error = |e: uefi_vars::pcap::PcapError| format!("{}: {e}", args.trace.display());
    let records = uefi_vars::pcap::open_file(&args.trace).map_err(trace_error)?;
    let storage = match &args.store {
        Some(p) => {
            let vars = store_io::read_store(p, false)?.vars;
            let refs: Vec<&Variable> = vars.iter().collect();
            MemoryStorage::from_text(
                json::encode(&refs).map_err(|e| format!("{}: {e}", p.display()))?,
            )
        }
        None => MemoryStorage::new(),
    };
    let config = Config::default()
        .with_legacy_payload_size(args.legacy_payload_size)
        .with_legacy_storage_accounting(args.legacy_storage_accounting);
    let mut svc = Service::new(config, Box::new(storage)).map_err(|e| e.to_string())?;
    // Record by record: the capture is never held whole.
    let report = replay_stream(&mut svc, records).map_err(trace_error)?;

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
        for line in value_lines(m) {
            println!("    {line}");
        }
    }
    let payload_size = report
        .mismatches
        .iter()
        .any(|m| m.what.contains("GET_PAYLOAD_SIZE"));
    if payload_size && !args.legacy_payload_size {
        println!(
            "hint: the GET_PAYLOAD_SIZE reply differs: captures from QEMU 10.0 to 10.2 answer it \
             with the whole buffer size; if this one comes from such a QEMU, run again with \
             --legacy-payload-size"
        );
    }
    for e in &report.host_errors {
        println!("host error: {e}");
    }

    let vars: Vec<_> = svc.store().iter().collect();
    let nv = non_volatile(&vars);
    let mut ok = report.mismatches.is_empty() && report.host_errors.is_empty();
    if let Some(out) = &args.out {
        write_out(out, &nv)?;
        println!("final store written to {}", out.display());
    }
    if let Some(exp) = &args.expect {
        let expected = store_io::read_store(exp, false)?.vars;
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
            for line in store_differences(&expected, &ours) {
                println!("  {line}");
            }
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::exit::MISMATCH)
    })
}

fn write_out(out: &std::path::Path, vars: &[&Variable]) -> Result<(), String> {
    let empty = store_io::Loaded {
        format: uefi_vars::persist::formats::Format::Json,
        vars: Vec::new(),
        image: None,
    };
    let target =
        store_io::target(out, None, None, "ovmf-4m", &empty, false).map_err(|e| e.to_string())?;
    store_io::write_store(&target, vars).map_err(|e| e.to_string())
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .chunks(1)
        .map(hex::encode)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Expected and actual bytes of each differing range (at most four, of at
/// most 16 bytes each), and the reply lengths when they differ.
fn value_lines(m: &Mismatch) -> Vec<String> {
    let Some(actual) = m.actual.as_deref() else {
        return Vec::new();
    };
    let mut lines = Vec::new();
    if m.expected.len() != actual.len() {
        lines.push(format!(
            "reply length: expected {}, got {}",
            m.expected.len(),
            actual.len()
        ));
    }
    let common = m.expected.len().min(actual.len());
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for o in m.offsets().into_iter().filter(|&o| o < common) {
        match ranges.last_mut() {
            Some((_, end)) if *end == o => *end = o + 1,
            _ => ranges.push((o, o + 1)),
        }
    }
    for (start, end) in ranges.iter().take(4) {
        let end = (*end).min(start + 16);
        lines.push(format!(
            "{start:#x}..{end:#x}: expected {}, got {}",
            hex(&m.expected[*start..end]),
            hex(&actual[*start..end])
        ));
    }
    if ranges.len() > 4 {
        lines.push(format!("(+{} more ranges)", ranges.len() - 4));
    }
    // GET_PAYLOAD_SIZE answers a UINTN at the variable payload (x64: 0x28).
    let at = uefi_vars::codec::Layout::X64.var_payload_off();
    let word = |b: &[u8]| uefi_vars::codec::u64_at(b, at, "PayloadSize").ok();
    if m.what.contains("GET_PAYLOAD_SIZE") {
        if let (Some(e), Some(a)) = (word(&m.expected), word(actual)) {
            lines.push(format!("payload size: expected {e}, got {a}"));
        }
    }
    lines
}

/// What differs between the expected final store and ours, per variable.
fn store_differences(expected: &[Variable], ours: &[Variable]) -> Vec<String> {
    let mut lines = Vec::new();
    for e in expected {
        match ours.iter().find(|o| o.key() == e.key()) {
            None => lines.push(format!("missing: {} {}", e.guid, e.name)),
            Some(o) if o == e => {}
            Some(o) => {
                let mut what = Vec::new();
                if o.attributes != e.attributes {
                    what.push(format!(
                        "attributes expected {:#x}, got {:#x}",
                        e.attributes, o.attributes
                    ));
                }
                if o.data != e.data {
                    what.push(format!(
                        "data expected {} bytes {}, got {} bytes {}",
                        e.data.len(),
                        hex(&e.data[..e.data.len().min(16)]),
                        o.data.len(),
                        hex(&o.data[..o.data.len().min(16)])
                    ));
                }
                if o.time != e.time {
                    what.push(format!(
                        "time expected {}, got {}",
                        hex(&e.time.0),
                        hex(&o.time.0)
                    ));
                }
                if o.digest != e.digest {
                    what.push("digest differs".to_string());
                }
                lines.push(format!(
                    "differs: {} {}: {}",
                    e.guid,
                    e.name,
                    what.join("; ")
                ));
            }
        }
    }
    for o in ours {
        if !expected.iter().any(|e| e.key() == o.key()) {
            lines.push(format!("unexpected: {} {}", o.guid, o.name));
        }
    }
    if lines.is_empty() {
        lines.push("same variables in another order".to_string());
    }
    lines
}
