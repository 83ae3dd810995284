//! The `serve` subcommand of the `uefi-vars` tool: its arguments and its
//! entry point, so the CLI only adds one variant and one match arm.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use uefi_vars::persist::{SyncMode, WriteMode};
use uefi_vars::Config;

use crate::server::{self, ServeOptions, Server};

/// `uefi-vars serve`: run the variable service for one VM as its own
/// sandboxed process on a Unix socket (protocol: docs/serve-protocol.md).
#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// The JSON variable store (QEMU's format; created if missing, its
    /// directory must exist). The only directory the process can write.
    #[arg(long, short)]
    pub store: PathBuf,
    /// Unix socket to listen on. A stale socket file left by a service that
    /// is gone is replaced.
    #[arg(long)]
    pub socket: PathBuf,
    /// Write a LINKTYPE_EDK2_MM capture (QEMU 11's `pcapfile` format) of
    /// every machine reset, request and reply, flushed per record.
    #[arg(long)]
    pub pcap: Option<PathBuf>,
    /// Keep the store file's inode (write in place). Not crash-atomic.
    #[arg(long)]
    pub in_place: bool,
    /// How writes are made durable. `journal`: each change is appended to
    /// STORE.journal with one fdatasync, and the JSON file is rewritten
    /// when the journal grows, at machine reset and at a clean stop
    /// (SIGTERM/SIGINT); in between, the JSON file alone is behind.
    /// `full-rewrite`: each change rewrites the whole JSON file, which is
    /// then current at all times (slower as the store grows).
    #[arg(long, value_enum, default_value_t = Sync::Journal)]
    pub sync: Sync,
    /// Variable storage size in bytes (QEMU's `size` property).
    #[arg(long, default_value_t = 262_144)]
    pub size: u64,
    /// Force SecureBootEnable on (QEMU's `force-secure-boot`).
    #[arg(long)]
    pub force_secure_boot: bool,
    /// Refuse every write to CustomMode (QEMU's `disable-custom-mode`).
    #[arg(long)]
    pub disable_custom_mode: bool,
    /// Run without the Landlock/seccomp sandbox (debugging only).
    #[arg(long)]
    pub no_sandbox: bool,
    /// Start up, apply the sandbox, probe what it forbids, print the
    /// results and exit (0 if every enforced restriction holds).
    #[arg(long, hide = true)]
    pub self_test_sandbox: bool,
}

/// `--sync` values.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sync {
    Journal,
    FullRewrite,
}

impl From<Sync> for SyncMode {
    fn from(s: Sync) -> Self {
        match s {
            Sync::Journal => SyncMode::Journal,
            Sync::FullRewrite => SyncMode::FullRewrite,
        }
    }
}

impl ServeArgs {
    pub fn options(&self) -> ServeOptions {
        ServeOptions {
            store: self.store.clone(),
            socket: self.socket.clone(),
            pcap: self.pcap.clone(),
            write_mode: if self.in_place {
                WriteMode::InPlace
            } else {
                WriteMode::AtomicReplace
            },
            sync: self.sync.into(),
            config: Config {
                max_storage: self.size,
                force_secure_boot: self.force_secure_boot,
                disable_custom_mode: self.disable_custom_mode,
                ..Config::default()
            },
            sandbox: !self.no_sandbox,
        }
    }
}

/// Runs the subcommand; errors are start-up failures (printed by the CLI).
pub fn run(args: &ServeArgs) -> Result<ExitCode, String> {
    if args.self_test_sandbox {
        let (lines, ok) = server::self_test(args.options()).map_err(|e| e.to_string())?;
        let mut out = std::io::stdout().lock();
        for line in lines {
            let _ = writeln!(out, "{line}");
        }
        return Ok(if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    let server = Server::start(args.options()).map_err(|e| e.to_string())?;
    server.run().map_err(|e| e.to_string())?;
    Ok(ExitCode::SUCCESS)
}
