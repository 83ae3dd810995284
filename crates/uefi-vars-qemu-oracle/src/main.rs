//! `uefi-vars-qemu-oracle`: run a request capture through QEMU's own
//! uefi-vars device and write QEMU's replies and final store.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use uefi_vars::Config;
use uefi_vars_qemu_oracle::{compare, qemu, script, write_pcap, QemuOptions};

#[derive(Parser)]
#[command(name = "uefi-vars-qemu-oracle", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(clap::Args)]
struct RunArgs {
    /// Request script: a LINKTYPE_EDK2_MM capture (.pcap or .pcap.gz);
    /// its reset and request records are used, replies are ignored.
    script: PathBuf,
    /// JSON store QEMU starts from (default: none).
    #[arg(long)]
    store: Option<PathBuf>,
    /// Transfer through the PIO window (device property use-pio=on).
    #[arg(long)]
    pio: bool,
    /// The QEMU binary.
    #[arg(long, default_value = "qemu-system-x86_64")]
    qemu: PathBuf,
    /// A prebuilt guest image (default: built from tools/qemu-guest).
    #[arg(long)]
    guest: Option<PathBuf>,
    /// Kill QEMU after this many seconds.
    #[arg(long)]
    timeout: Option<u64>,
    /// Keep QEMU's working files (script, debugcon stream, log) here.
    #[arg(long)]
    work_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the script through QEMU; write QEMU's replies as a capture and
    /// its final JSON store.
    Run {
        #[command(flatten)]
        args: RunArgs,
        /// Capture with QEMU's replies (.pcap or .pcap.gz).
        #[arg(long)]
        out: PathBuf,
        /// QEMU's final JSON store.
        #[arg(long)]
        out_store: PathBuf,
    },
    /// Run the script through QEMU and through the service, and classify
    /// every difference by its docs/compat.md id. Exits 1 on any unlisted
    /// difference.
    Compare {
        #[command(flatten)]
        args: RunArgs,
        /// How many differences to list in detail.
        #[arg(long, default_value_t = 10)]
        show: usize,
    },
    /// Compare on a seeded random request sequence (as the conformance
    /// suite does). Exits 1 on any unlisted difference.
    Random {
        /// Seed of the sequence.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Number of steps.
        #[arg(long, default_value_t = 200)]
        count: usize,
        /// Transfer through the PIO window.
        #[arg(long)]
        pio: bool,
        /// Write the sequence (requests and QEMU's replies) here.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Write the generated request script (no replies) here first.
        #[arg(long)]
        script_out: Option<PathBuf>,
        /// How many differences to list in detail.
        #[arg(long, default_value_t = 10)]
        show: usize,
    },
}

fn main() -> ExitCode {
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("uefi-vars-qemu-oracle: {e}");
            ExitCode::from(2)
        }
    }
}

fn run_qemu(args: &RunArgs) -> Result<(qemu::QemuRun, Option<Vec<u8>>, String), String> {
    let records = uefi_vars::pcap::read_file(&args.script)
        .map_err(|e| format!("{}: {e}", args.script.display()))?;
    let steps = script::steps_from_records(&records);
    let start = match &args.store {
        Some(p) => Some(std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?),
        None => None,
    };
    let version = qemu::qemu_version_line(&args.qemu).map_err(|e| e.to_string())?;
    let opts = QemuOptions {
        qemu: args.qemu.clone(),
        pio: args.pio,
        timeout: args.timeout.map(Duration::from_secs),
        guest: args.guest.clone(),
        work_dir: args.work_dir.clone(),
    };
    let run = qemu::run(&steps, start.as_deref(), &opts).map_err(|e| e.to_string())?;
    Ok((run, start, version))
}

fn real_main() -> Result<ExitCode, String> {
    match Cli::parse().command {
        Cmd::Run {
            args,
            out,
            out_store,
        } => {
            let (run, _, version) = run_qemu(&args)?;
            write_pcap(&run.outcomes, &out).map_err(|e| e.to_string())?;
            std::fs::write(&out_store, &run.final_store)
                .map_err(|e| format!("{}: {e}", out_store.display()))?;
            let requests = run
                .outcomes
                .iter()
                .filter(|o| matches!(o, qemu::Outcome::Request { .. }))
                .count();
            println!("qemu:     {version}");
            println!("mode:     {}", if args.pio { "PIO" } else { "DMA" });
            println!("requests: {requests}");
            println!("boots:    {}", run.boots);
            println!("time:     {:.2?}", run.elapsed);
            println!("replies:  {}", out.display());
            println!("store:    {}", out_store.display());
            if qemu::parse_version(&version).is_some_and(qemu::legacy_payload_size) {
                println!("note:     QEMU < 11 answers GET_PAYLOAD_SIZE with the buffer size: replay with --legacy-payload-size");
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Random {
            seed,
            count,
            pio,
            out,
            script_out,
            show,
        } => {
            let steps = uefi_vars_qemu_oracle::random::sequence_for(seed, count, pio);
            if let Some(p) = &script_out {
                let outcomes: Vec<_> = steps
                    .iter()
                    .map(|s| match s {
                        script::Step::Reset => qemu::Outcome::Reset,
                        script::Step::Request(r) => qemu::Outcome::Request {
                            request: r.clone(),
                            status: 0,
                            reply: None,
                        },
                    })
                    .collect();
                write_pcap(&outcomes, p).map_err(|e| e.to_string())?;
            }
            let opts = QemuOptions {
                pio,
                ..QemuOptions::default()
            };
            let version = qemu::qemu_version_line(&opts.qemu).map_err(|e| e.to_string())?;
            let run = qemu::run(&steps, None, &opts).map_err(|e| e.to_string())?;
            if let Some(out) = &out {
                write_pcap(&run.outcomes, out).map_err(|e| e.to_string())?;
            }
            report(&run, None, &version, pio, show)
        }
        Cmd::Compare { args, show } => {
            let (run, start, version) = run_qemu(&args)?;
            report(&run, start.as_deref(), &version, args.pio, show)
        }
    }
}

fn report(
    run: &qemu::QemuRun,
    start: Option<&[u8]>,
    version: &str,
    pio: bool,
    show: usize,
) -> Result<ExitCode, String> {
    {
        {
            let legacy = qemu::parse_version(version).is_some_and(qemu::legacy_payload_size);
            let config = Config {
                legacy_payload_size: legacy,
                ..Config::default()
            };
            let report = compare::compare(run, start, config, None).map_err(|e| e.to_string())?;
            println!("qemu: {version} ({})", if pio { "PIO" } else { "DMA" });
            print!("{}", report.summary());
            for d in report
                .differences
                .iter()
                .filter(|d| d.compat.is_some())
                .take(show)
            {
                println!("{}", d.describe());
            }
            println!(
                "final store: {}",
                if report.store.identical_text {
                    "byte-identical"
                } else if report.store.identical {
                    "same variables (JSON text differs)"
                } else {
                    "differs"
                }
            );
            Ok(if report.unlisted() == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}
