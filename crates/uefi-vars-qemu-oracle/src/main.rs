//! `uefi-vars-qemu-oracle`: run a request capture through QEMU's own
//! uefi-vars device and write QEMU's replies and final store.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use uefi_vars_qemu_oracle::{compare, qemu, script, write_pcap, QemuOptions};

#[derive(Parser)]
#[command(name = "uefi-vars-qemu-oracle", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
    /// Run the QEMU of this Debian root through the root's own dynamic
    /// loader (scripts/install-qemu11.sh puts QEMU 11.1 in
    /// /var/cache/uefi-vars-qemu11/root) instead of qemu-system-x86_64
    /// from PATH or --qemu.
    #[arg(long, global = true)]
    qemu_root: Option<PathBuf>,
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
    /// Replay the requests the project's own tests sent (captured by the
    /// CaptureObserver their services get when UEFI_VARS_CAPTURE_DIR is
    /// set, see uefi_vars::testing) through
    /// QEMU and compare, as the conformance suite does. Exits 1 on any
    /// unlisted difference.
    Captures {
        /// Directory of captures (searched recursively).
        #[arg(long, default_value = "target/uefi-vars-captures")]
        dir: PathBuf,
        /// First build and run the test binaries of these packages (comma
        /// separated) with capturing into --dir (emptied first).
        #[arg(long, value_delimiter = ',')]
        collect: Vec<String>,
        /// Workspace root for --collect.
        #[arg(long, default_value = ".")]
        workspace: PathBuf,
        /// Also replay every Nth capture the PIO window can take in PIO
        /// mode (0: none).
        #[arg(long, default_value_t = 4)]
        pio_every: usize,
        /// QEMU runs at a time.
        #[arg(long, default_value_t = 2)]
        jobs: usize,
        /// How many differences to list in detail.
        #[arg(long, default_value_t = 10)]
        show: usize,
        /// Print a line per QEMU run, and the unlisted differences
        /// grouped by test.
        #[arg(long)]
        verbose: bool,
        /// Only the captures whose file name or test name contains this.
        #[arg(long)]
        only: Option<String>,
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

/// The QEMU to run: `--qemu-root`'s, else `qemu` (a binary).
fn base_options(
    root: Option<&std::path::Path>,
    qemu: &std::path::Path,
) -> Result<QemuOptions, String> {
    match root {
        Some(r) => QemuOptions::from_root(r).map_err(|e| e.to_string()),
        None => Ok(QemuOptions {
            qemu: qemu.to_path_buf(),
            ..QemuOptions::default()
        }),
    }
}

fn run_qemu(
    args: &RunArgs,
    root: Option<&std::path::Path>,
) -> Result<(qemu::QemuRun, Option<Vec<u8>>, String), String> {
    let records = uefi_vars::pcap::read_file(&args.script)
        .map_err(|e| format!("{}: {e}", args.script.display()))?;
    let steps = script::steps_from_records(&records);
    let start = match &args.store {
        Some(p) => Some(std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?),
        None => None,
    };
    let base = base_options(root, &args.qemu)?;
    let version = base.version_line().map_err(|e| e.to_string())?;
    let opts = QemuOptions {
        pio: args.pio,
        timeout: args.timeout.map(Duration::from_secs),
        guest: args.guest.clone(),
        work_dir: args.work_dir.clone(),
        ..base
    };
    let run = qemu::run(&steps, start.as_deref(), &opts).map_err(|e| e.to_string())?;
    Ok((run, start, version))
}

fn real_main() -> Result<ExitCode, String> {
    let cli = Cli::parse();
    let root = cli.qemu_root.as_deref();
    match cli.command {
        Cmd::Run {
            args,
            out,
            out_store,
        } => {
            let (run, _, version) = run_qemu(&args, root)?;
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
                println!("note:     QEMU < 11 answers GET_PAYLOAD_SIZE with the buffer size and does not count policies in QueryVariableInfo: replay with --legacy-payload-size --legacy-storage-accounting");
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
            let opts = QemuOptions {
                pio,
                ..base_options(root, &QemuOptions::default().qemu)?
            };
            let mut steps = uefi_vars_qemu_oracle::random::sequence_for(seed, count, pio);
            if opts.version().map_err(|e| e.to_string())? >= (11, 0) {
                // As the conformance suite: QEMU 11.1.3 aborts on these.
                steps.retain(|s| {
                    !matches!(s, script::Step::Request(r)
                        if uefi_vars_qemu_oracle::compat::qemu11_crash_trigger(r).is_some())
                });
            }
            if let Some(p) = &script_out {
                let outcomes: Vec<_> = steps
                    .iter()
                    .map(|s| match s {
                        script::Step::Reset => qemu::Outcome::Reset,
                        script::Step::BufferSize(n) => qemu::Outcome::BufferSize(*n),
                        script::Step::Request(r) => qemu::Outcome::Request {
                            request: r.clone(),
                            status: 0,
                            reply: None,
                        },
                    })
                    .collect();
                write_pcap(&outcomes, p).map_err(|e| e.to_string())?;
            }
            let version = opts.version_line().map_err(|e| e.to_string())?;
            let run = qemu::run(&steps, None, &opts).map_err(|e| e.to_string())?;
            if let Some(out) = &out {
                write_pcap(&run.outcomes, out).map_err(|e| e.to_string())?;
            }
            report(&run, None, &version, pio, show)
        }
        Cmd::Captures {
            dir,
            collect,
            workspace,
            pio_every,
            jobs,
            show,
            verbose,
            only,
        } => captures(
            &dir,
            &collect,
            &workspace,
            pio_every,
            jobs,
            show,
            verbose,
            only.as_deref(),
            root,
        ),
        Cmd::Compare { args, show } => {
            let (run, start, version) = run_qemu(&args, root)?;
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
            let config = qemu::config_for(run.version);
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

#[allow(clippy::too_many_arguments)]
fn captures(
    dir: &std::path::Path,
    collect: &[String],
    workspace: &std::path::Path,
    pio_every: usize,
    jobs: usize,
    show: usize,
    verbose: bool,
    only: Option<&str>,
    root: Option<&std::path::Path>,
) -> Result<ExitCode, String> {
    use uefi_vars_qemu_oracle::captures;
    let started = std::time::Instant::now();
    if !collect.is_empty() {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let packages: Vec<&str> = collect.iter().map(String::as_str).collect();
        let dir = std::path::absolute(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let runs = captures::collect_from_tests(cargo.as_ref(), workspace, &packages, &dir)
            .map_err(|e| e.to_string())?;
        for r in &runs {
            println!(
                "ran {} ({:.1?}){}",
                r.binary,
                r.elapsed,
                if r.passed { "" } else { ", some tests FAILED" }
            );
        }
    }
    let mut all = captures::load_dir(dir).map_err(|e| e.to_string())?;
    if let Some(only) = only {
        all.retain(|c| c.name.contains(only) || c.info.thread.contains(only));
    }
    let mut opts = base_options(root, &QemuOptions::default().qemu)?;
    opts.bios = opts.fast_bios();
    opts.scratch = qemu::fast_scratch();
    let version = opts.version_line().map_err(|e| e.to_string())?;
    let legacy = qemu::parse_version(&version).is_some_and(qemu::legacy_payload_size);
    let progress = |c: &captures::Compared| {
        if verbose {
            println!(
                "  {} [{}] ({}): {} requests, {} identical, {} listed, {} unlisted, {} boots ({:.1?})",
                c.name,
                c.test,
                if c.pio { "PIO" } else { "DMA" },
                c.report.requests,
                c.report.identical,
                c.report.listed.values().sum::<usize>(),
                c.report.unlisted(),
                c.boots,
                c.elapsed
            );
        }
    };
    let out = captures::replay_captures(&all, legacy, &opts, pio_every, jobs, &progress);
    println!("qemu: {version}");
    print!("{}", out.header());
    print!("{}", out.total.summary());
    for d in out
        .total
        .differences
        .iter()
        .filter(|d| d.compat.is_some())
        .take(show)
    {
        println!("{}", d.describe());
    }
    if verbose {
        // Unlisted differences per test and kind, with one example each.
        let mut groups: std::collections::BTreeMap<String, (usize, String)> = Default::default();
        for c in &out.results {
            for d in c.report.differences.iter().filter(|d| d.compat.is_none()) {
                let key = format!(
                    "{} | {} | QEMU {}",
                    c.test,
                    d.what,
                    uefi_vars_qemu_oracle::compat::brief(&d.request, d.qemu_reply.as_deref())
                        .chars()
                        .take(60)
                        .collect::<String>()
                );
                let e = groups.entry(key).or_insert_with(|| {
                    (0, format!("{} step {}\n{}", c.name, d.step, d.describe()))
                });
                e.0 += 1;
            }
        }
        for (k, (n, example)) in &groups {
            println!("UNLISTED x{n}: {k}\n{example}\n");
        }
    }
    for f in &out.failures {
        println!("QEMU run failed: {f}");
    }
    for d in &out.diverged {
        println!("replay differs from the capture: {d}");
    }
    println!("time: {:.1?}", started.elapsed());
    Ok(
        if out.total.unlisted() == 0 && out.failures.is_empty() && out.diverged.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        },
    )
}
