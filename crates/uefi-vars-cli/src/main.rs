//! `uefi-vars`: inspect, convert and edit variable stores (QEMU JSON, edk2
//! images, AWS blobs, qcow2), enroll Secure Boot keys, serve and replay
//! firmware captures.

mod auth_cmds;
mod boot;
mod builtin_certs;
mod display;
mod explain;
mod keys;
mod known;
mod names;
mod presets;
mod replay_cmd;
mod sigdb;
mod store_io;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use uefi_vars::guid::Guid;
use uefi_vars::name::VarName;
use uefi_vars::persist::{json, JsonFile, MemoryStorage, Storage, WriteMode};
use uefi_vars::variable::{attr, Attributes, VarKey, Variable};
use uefi_vars::{Config, EfiStatus, Service};

use store_io::StoreArgs;

#[derive(Parser)]
#[command(
    name = "uefi-vars",
    version,
    about = "Host-side UEFI variable service tools",
    after_help = EXIT_HELP
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the variables of a store (virt-fw-vars --print).
    List {
        /// The store: QEMU JSON, edk2 flash image (.fd), AWS uefi-data blob
        /// or qcow2-wrapped image (through qemu-img, Debian qemu-utils),
        /// detected from its content (virt-fw-vars -i), or an etcd store,
        /// etcd://HOST:PORT[,...]/PREFIX/VM[?cacert=F&cert=F&key=F].
        #[arg(long, short, visible_alias = "input", short_alias = 'i')]
        store: PathBuf,
        /// Print a JSON array, one object per variable (decoded values,
        /// signature lists and certificates included).
        #[arg(long)]
        json: bool,
        /// Also write every X.509 certificate of the signature databases
        /// (PK, KEK, db, dbx, MokList, ...) to DIR as NAME-N.pem (existing
        /// files are not overwritten).
        #[arg(long, value_name = "DIR")]
        extract_certs: Option<PathBuf>,
    },
    /// Show one variable: attributes, timestamp, decoded value (signature
    /// lists with each certificate's subject, issuer, serial and SHA-256;
    /// hashes) and a hex dump (virt-fw-vars --verbose, --hashes,
    /// --hexdump).
    Get {
        /// Variable name.
        name: String,
        /// Vendor GUID (braces allowed) or a well-known name (global, db,
        /// shim, EfiGlobalVariable, ...). Without it the name must be unique.
        #[arg(long, short)]
        guid: Option<String>,
        /// The store, in any format `list` reads.
        #[arg(long, short, visible_alias = "input", short_alias = 'i')]
        store: PathBuf,
        /// Print only the raw data bytes as hex.
        #[arg(long, conflicts_with = "json")]
        raw: bool,
        /// Print a JSON object (decoded value, signature lists included).
        #[arg(long)]
        json: bool,
        /// Also write the variable's X.509 certificates to DIR as NAME-N.pem.
        #[arg(long, value_name = "DIR")]
        extract_certs: Option<PathBuf>,
    },
    /// Create or replace a (non-authenticated) variable.
    Set {
        /// Variable name.
        name: String,
        /// Vendor GUID (braces allowed) or a well-known name (global, db,
        /// shim, secureboot, EfiGlobalVariable, ...).
        #[arg(long, short, default_value = "global")]
        guid: String,
        #[command(flatten)]
        io: StoreArgs,
        /// Attributes: a number or a list such as `nv,bs,rt`.
        #[arg(long, short, default_value = "nv,bs,rt")]
        attr: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Delete a (non-authenticated) variable, through the same SetVariable
    /// rules as a guest (virt-fw-vars -d/--delete).
    Delete {
        /// Variable name.
        name: String,
        /// Vendor GUID or alias; without it the name must be unique.
        #[arg(long, short)]
        guid: Option<String>,
        #[command(flatten)]
        io: StoreArgs,
    },
    /// Create or update a store with PK, KEK, db (and dbx) enrolled and
    /// Secure Boot enabled: the Microsoft and distribution keys, hashes,
    /// MokList, signed dbx updates (virt-fw-vars' "Secure boot" options;
    /// docs/presets.md).
    Enroll(auth_cmds::EnrollArgs),
    /// Produce a signed update (.auth) for an authenticated variable.
    Sign(auth_cmds::SignArgs),
    /// Write each Secure Boot database of a store (PK, KEK, db, dbx, dbt,
    /// dbr) as a signed NAME.auth update for `apply` later (virt-fw-vars
    /// --output-auth, which writes them unsigned).
    ExportAuth(auth_cmds::ExportAuthArgs),
    /// Apply a signed update (.auth) to a store, verified exactly as a guest
    /// write would be.
    Apply {
        /// Variable name (PK, KEK, db, dbx, ...).
        name: String,
        /// Vendor GUID or alias; default: global for PK/KEK, the image
        /// security database for db/dbx/dbt/dbr.
        #[arg(long, short)]
        guid: Option<String>,
        #[command(flatten)]
        io: StoreArgs,
        /// The .auth file (EFI_VARIABLE_AUTHENTICATION_2 + payload).
        #[arg(long)]
        auth: PathBuf,
        /// Attributes the update was signed with.
        #[arg(long, short, default_value = "nv,bs,rt,at")]
        attr: String,
        /// Append instead of replace (adds APPEND_WRITE).
        #[arg(long)]
        append: bool,
    },
    /// Convert a store to another format (virt-fw-vars -i IN -o OUT,
    /// --output-json, --output-aws).
    Convert(ConvertArgs),
    /// Boot entries (one-shot URL boot, a file in BootOrder), booleans,
    /// variables from a file, and shim's settings.
    Configure(boot::ConfigureArgs),
    /// Set a boolean variable to true (1). Replaces virt-fw-vars --set-true.
    SetTrue(boot::BoolArgs),
    /// Set a boolean variable to false (0). Replaces virt-fw-vars --set-false.
    SetFalse(boot::BoolArgs),
    /// Fold the store's journal (STORE.journal, written by `serve`) into
    /// the JSON file, which is then complete on its own (for QEMU,
    /// virt-fw-vars or a copy). Refused while a service runs on the store.
    Compact {
        /// The store (QEMU JSON file) whose journal is folded in.
        #[arg(long, short)]
        store: PathBuf,
        /// Keep the store file's inode (write in place instead of replacing).
        #[arg(long)]
        in_place: bool,
    },
    /// Replay a LINKTYPE_EDK2_MM capture through the service and compare
    /// every reply with the recorded one.
    Replay(replay_cmd::ReplayArgs),
    /// Run the variable service for one VM as its own sandboxed process on
    /// a Unix socket.
    Serve(uefi_vars_serve::cli::ServeArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) of uefi-vars, or of one subcommand.
    Man {
        /// Subcommand whose page to print (default: the main page).
        subcommand: Option<String>,
    },
}

#[derive(clap::Args)]
struct ConvertArgs {
    /// The store to read, in any format (detected from its content), or an
    /// etcd store URL (etcd://HOST:PORT[,...]/PREFIX/VM).
    input: PathBuf,
    /// The file to write (replaced atomically), or an etcd store URL
    /// (written in one transaction, refused while a service owns it).
    output: PathBuf,
    /// Output format: json, fd, aws or qcow2 (qcow2 through qemu-img,
    /// Debian qemu-utils). Default: OUTPUT's current format when it exists,
    /// else from its extension (.json, .fd, .aws, .qcow2), else INPUT's.
    #[arg(long)]
    format: Option<String>,
    /// edk2 image whose layout an .fd or qcow2 output takes (default: INPUT
    /// when it is an image, else --layout).
    #[arg(long)]
    template: Option<PathBuf>,
    /// Layout of a new image: ovmf-4m (default), ovmf-2m or aavmf.
    #[arg(long, default_value = "ovmf-4m")]
    layout: String,
}

#[derive(clap::Args)]
#[group(required = true, multiple = false)]
struct DataArgs {
    /// Data as hex digits.
    #[arg(long)]
    hex: Option<String>,
    /// Data read from a file (at most what a guest can read back).
    #[arg(long)]
    file: Option<PathBuf>,
    /// A UCS-2 string (NUL-terminated), as UEFI stores text.
    #[arg(long)]
    utf16: Option<String>,
    /// An ASCII/UTF-8 string without terminator.
    #[arg(long)]
    text: Option<String>,
}

/// Exit statuses (also in `--help` and the README).
pub(crate) mod exit {
    /// `replay`: some reply or the final store differs from the capture.
    pub const MISMATCH: u8 = 1;
    /// Something could not be done: a file missing, unreadable or invalid,
    /// a tool missing.
    pub const FAILED: u8 = 2;
    /// The request was understood but refused, and nothing was changed: a
    /// SetVariable rule, a store in use, read-only or already enrolled,
    /// keys that exist, a size no guest can read back, a store too large.
    pub const REFUSED: u8 = 3;
    /// The command line itself is wrong (sysexits EX_USAGE).
    pub const USAGE: u8 = 64;
}

const EXIT_HELP: &str = "Exit status: 0 success, 1 replay mismatch, 2 failure (a file missing, \
unreadable or invalid), 3 refused (nothing was changed), 64 usage error (an option missing or \
malformed).";

/// Why a command did not succeed.
#[derive(Debug)]
pub(crate) enum CliError {
    Failed(String),
    Refused(String),
    /// The command line asks for something that cannot be (an option
    /// missing, a value that does not parse): exit status 64 as clap's own
    /// usage errors.
    Usage(String),
}

impl From<String> for CliError {
    fn from(s: String) -> Self {
        CliError::Failed(s)
    }
}

impl From<&str> for CliError {
    fn from(s: &str) -> Self {
        CliError::Failed(s.to_string())
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::Failed(m) | CliError::Refused(m) | CliError::Usage(m) => f.write_str(m),
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(exit::USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    // `serve` sets up its own log (--log-format, --log-level); the other
    // commands print their own messages and show the library's log events
    // (refused writes, host errors) only when RUST_LOG asks for them.
    if !matches!(cli.command, Command::Serve(_)) {
        if let Ok(filter) = std::env::var("RUST_LOG") {
            let text = uefi_vars_serve::logging::LogFormat::Text;
            if let Err(e) = uefi_vars_serve::logging::init(text, Some(&filter), None) {
                eprintln!("uefi-vars: RUST_LOG: {e}");
                return ExitCode::from(exit::USAGE);
            }
        }
    }
    match run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("uefi-vars: {e}");
            ExitCode::from(match e {
                CliError::Failed(_) => exit::FAILED,
                CliError::Refused(_) => exit::REFUSED,
                CliError::Usage(_) => exit::USAGE,
            })
        }
    }
}

type CliResult = Result<ExitCode, CliError>;

fn run(cmd: Command) -> CliResult {
    match cmd {
        Command::List {
            store,
            json,
            extract_certs,
        } => {
            let loaded = store_io::read_store(&store, false)?;
            if let Some(dir) = &extract_certs {
                display::extract_certs(dir, &loaded.vars)?;
            }
            if json {
                let all: Vec<serde_json::Value> =
                    loaded.vars.iter().map(display::to_json).collect();
                return print_bytes(format!("{}\n", serde_json::Value::Array(all)).as_bytes());
            }
            let mut out = String::new();
            for v in &loaded.vars {
                out.push_str(&display::summary_line(v));
                out.push('\n');
            }
            print_bytes(out.as_bytes())
        }
        Command::Get {
            name,
            guid,
            store,
            raw,
            json,
            extract_certs,
        } => {
            let loaded = store_io::read_store(&store, false)?;
            let var = find(&loaded.vars, &name, guid.as_deref())?;
            if let Some(dir) = &extract_certs {
                display::extract_certs(dir, std::slice::from_ref(var))?;
            }
            let text = if json {
                format!("{}\n", display::to_json(var))
            } else if raw {
                format!("{}\n", json::to_hex(&var.data))
            } else {
                display::details(var)
            };
            print_bytes(text.as_bytes())
        }
        Command::Set {
            name,
            guid,
            io,
            attr,
            data,
        } => set(&name, &guid, &io, &attr, &data),
        Command::Delete { name, guid, io } => edit(&io, "delete", |svc| {
            let var = find_in(svc, &name, guid.as_deref())?;
            let (key, attributes) = (var.key(), var.attributes);
            let before: Vec<Variable> = svc.store().iter().cloned().collect();
            let status = svc.set_variable(key.guid, key.name.clone(), attributes, &[]);
            explained(svc, "delete", status, || {
                explain::plain_refusal(&before, key.guid, &name, attributes, status)
            })?;
            Ok((status, None))
        }),
        Command::Apply {
            name,
            guid,
            io,
            auth,
            attr: attributes,
            append,
        } => {
            let vendor = match guid {
                Some(g) => parse_guid(&g)?,
                None => default_guid(&name)?,
            };
            let mut attributes = parse_attributes(&attributes)?;
            if append {
                attributes |= Attributes::APPEND_WRITE.bits();
            }
            // No guest can send an update larger than the MM buffer.
            let limit = u64::from(uefi_vars::service::MAX_BUFFER_SIZE);
            let data = store_io::read_bounded(&auth, limit, "a signed update")?;
            let key = VarKey::new(vendor, VarName::from(name.as_str()));
            edit(&io, "apply", |svc| {
                let before: Vec<Variable> = svc.store().iter().cloned().collect();
                let status = svc.set_variable(vendor, key.name.clone(), attributes, &data);
                explained(svc, "apply", status, || {
                    explain::refusal(&before, vendor, &name, attributes, &data)
                })?;
                Ok((status, Some(key)))
            })
        }
        Command::Convert(args) => convert(&args),
        Command::Configure(args) => boot::configure(&args),
        Command::SetTrue(args) => boot::set_bool(&args, true),
        Command::SetFalse(args) => boot::set_bool(&args, false),
        Command::Compact { store, in_place } => compact(&store, in_place),
        Command::Replay(args) => Ok(replay_cmd::run(&args)?),
        Command::Enroll(args) => auth_cmds::enroll(&args),
        Command::Sign(args) => auth_cmds::sign(&args),
        Command::ExportAuth(args) => auth_cmds::export_auth(&args),
        Command::Serve(args) => Ok(uefi_vars_serve::cli::run(&args)?),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut cmd = Cli::command();
            // Into a buffer: the generator panics on a write error (a closed pipe).
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut cmd, "uefi-vars", &mut out);
            print_bytes(&out)
        }
        Command::Man { subcommand } => man(subcommand.as_deref()),
    }
}

fn man(subcommand: Option<&str>) -> CliResult {
    use clap::CommandFactory;
    let main = Cli::command();
    let cmd = match subcommand {
        None => main,
        Some(name) => {
            let sub = main
                .find_subcommand(name)
                .ok_or_else(|| format!("no subcommand {name:?}"))?
                .clone();
            let full = format!("uefi-vars-{name}");
            sub.bin_name(full.clone())
                .display_name(full)
                .version(env!("CARGO_PKG_VERSION"))
        }
    };
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut out)
        .map_err(|e| format!("man page: {e}"))?;
    print_bytes(&out)
}

/// Writes to stdout; a reader that went away (`| head`) is not an error.
fn print_bytes(bytes: &[u8]) -> CliResult {
    use std::io::Write;
    match std::io::stdout().write_all(bytes) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(format!("stdout: {e}").into()),
        _ => Ok(ExitCode::SUCCESS),
    }
}

fn set(name: &str, guid: &str, io: &StoreArgs, attr_text: &str, data: &DataArgs) -> CliResult {
    let guid = parse_guid(guid)?;
    let attributes = parse_attributes(attr_text)?;
    if Attributes::from(attributes).is_authenticated() {
        return Err(CliError::Refused(
            "authenticated variables need a signed update; `set` writes plain variables only"
                .into(),
        ));
    }
    if attributes & attr::NON_VOLATILE == 0 {
        return Err(CliError::Refused(format!(
            "{name} would be volatile (no NV in --attr {attr_text}): a store holds only \
             non-volatile variables, so it would be lost; add nv"
        )));
    }
    let key = VarKey::new(guid, VarName::from(name));
    let data = data_bytes(data)?;
    if data.is_empty() {
        return Err(CliError::Refused(
            "empty data would delete the variable; use `delete`".into(),
        ));
    }
    check_readable_size(&key, data.len() as u64)?;
    edit(io, "set", |svc| {
        let before: Vec<Variable> = svc.store().iter().cloned().collect();
        let status = svc.set_variable(guid, key.name.clone(), attributes, &data);
        explained(svc, "set", status, || {
            explain::plain_refusal(&before, guid, name, attributes, status)
        })?;
        Ok((status, Some(key)))
    })
}

/// A refusal with its reason, when `why` finds one (host errors first).
fn explained(
    svc: &mut Service,
    what: &str,
    status: EfiStatus,
    why: impl FnOnce() -> Option<String>,
) -> Result<(), CliError> {
    if let Some(e) = svc.take_errors().first() {
        return Err(format!("{what} failed: {e}").into());
    }
    if status != EfiStatus::SUCCESS {
        if let Some(why) = why().or_else(|| refusal_reason(svc)) {
            return Err(CliError::Refused(format!(
                "{what} refused: {status}: {why}"
            )));
        }
    }
    Ok(())
}

/// The service's own reason for the last refused SetVariable.
pub(crate) fn refusal_reason(svc: &Service) -> Option<String> {
    svc.last_refusal().map(|r| r.refusal.to_string())
}

/// The most data a guest can read back for a variable named `key`: the
/// GetVariable reply (MM header, SMM_VARIABLE_COMMUNICATE_HEADER,
/// ACCESS_VARIABLE, name, data; crates/uefi-vars/src/codec.rs) must fit the
/// 64 KiB communication buffer (x64 layout, the larger headers).
fn check_readable_size(key: &VarKey, data_len: u64) -> Result<(), CliError> {
    let layout = uefi_vars::codec::Layout::X64;
    let overhead = (layout.var_payload_off() as u64)
        .saturating_add(layout.access_variable() as u64)
        .saturating_add(key.name.wire_size());
    let max = u64::from(uefi_vars::service::MAX_BUFFER_SIZE).saturating_sub(overhead);
    if data_len > max {
        return Err(CliError::Refused(format!(
            "{}: {data_len} data bytes is more than a guest can ever read back: GetVariable \
             replies through a {} byte buffer, which holds at most {max} data bytes for this name",
            key.name,
            uefi_vars::service::MAX_BUFFER_SIZE
        )));
    }
    Ok(())
}

/// Refuses a result holding a new or changed variable larger than a guest
/// can read back ([`check_readable_size`]); variables the store already
/// held unchanged are kept as they are.
pub(crate) fn check_changed_readable(
    before: &[Variable],
    after: &[Variable],
) -> Result<(), CliError> {
    for v in after {
        let unchanged = before
            .iter()
            .any(|b| b.guid == v.guid && b.name == v.name && b.data == v.data);
        if !unchanged {
            check_readable_size(&v.key(), v.data.len() as u64)?;
        }
    }
    Ok(())
}

/// What an edit did: the status of its SetVariable and the variable whose
/// resulting size must stay readable.
type EditOutcome = (EfiStatus, Option<VarKey>);

/// [`edit_vars`] for one SetVariable: refused unless it succeeded, and
/// refused when the variable it leaves is larger than a guest can read.
pub(crate) fn edit(
    io: &StoreArgs,
    what: &str,
    op: impl FnOnce(&mut Service) -> Result<EditOutcome, CliError>,
) -> CliResult {
    edit_vars(io, |svc| {
        let (status, key) = op(svc)?;
        finish(svc, status, what)?;
        if let Some(key) = key {
            if let Some(v) = svc.store().iter().find(|v| v.key() == key) {
                check_readable_size(&key, v.data.len() as u64)?;
            }
        }
        Ok(non_volatile(svc))
    })
}

/// The variables of the service that persist.
pub(crate) fn non_volatile(svc: &Service) -> Vec<Variable> {
    svc.store()
        .iter()
        .filter(|v| v.is_non_volatile())
        .cloned()
        .collect()
}

/// Reads the store (any format), runs `op` on a service holding its
/// variables (the same SetVariable rules as a guest write), and writes the
/// variables `op` returns to the output (any format), refusing first a
/// store held by `uefi-vars serve`, a read-only output and a missing store
/// without --create. Nothing is written when `op` fails.
pub(crate) fn edit_vars(
    io: &StoreArgs,
    op: impl FnOnce(&mut Service) -> Result<Vec<Variable>, CliError>,
) -> CliResult {
    let opened = open_for_edit(io)?;
    let mut svc = service_over(&opened.loaded.vars)?;
    let vars = op(&mut svc)?;
    check_changed_readable(&opened.loaded.vars, &vars)?;
    let refs: Vec<&Variable> = vars.iter().collect();
    store_io::write_store(&opened.target, &refs)?;
    Ok(ExitCode::SUCCESS)
}

/// A store opened for an edit: locked (and its output), checked, read, and
/// its output resolved.
pub(crate) struct Opened {
    pub loaded: store_io::Loaded,
    pub target: store_io::Target,
    _locks: Vec<store_io::StoreLock>,
}

/// Refuses, before anything is read or created: a missing store without
/// --create, a store or output held by `uefi-vars serve`, a read-only
/// output; then reads the store and resolves the output.
pub(crate) fn open_for_edit(io: &StoreArgs) -> Result<Opened, CliError> {
    let output = io.output.clone().unwrap_or_else(|| io.store.clone());
    if !io.create && !io.store.exists() {
        store_io::read_store(&io.store, false)?;
    }
    let mut locks = vec![store_io::lock(&io.store)?];
    if output != io.store {
        locks.push(store_io::lock(&output)?);
    }
    store_io::check_writable(&output)?;
    let loaded = store_io::read_store(&io.store, io.create)?;
    let target = store_io::target(
        &output,
        io.format.as_deref(),
        io.template.as_deref(),
        &io.layout,
        &loaded,
        io.in_place,
    )?;
    Ok(Opened {
        loaded,
        target,
        _locks: locks,
    })
}

/// A service whose non-volatile store is `vars`.
pub(crate) fn service_over(vars: &[Variable]) -> Result<Service, String> {
    let refs: Vec<&Variable> = vars.iter().collect();
    let text = json::encode(&refs).map_err(|e| e.to_string())?;
    Service::open(Config::default(), Box::new(MemoryStorage::from_text(text)))
        .map_err(|e| e.to_string())
}

fn convert(args: &ConvertArgs) -> CliResult {
    let loaded = store_io::read_store(&args.input, false)?;
    let _lock = store_io::lock(&args.output)?;
    store_io::check_writable(&args.output)?;
    let target = store_io::target(
        &args.output,
        args.format.as_deref(),
        args.template.as_deref(),
        &args.layout,
        &loaded,
        false,
    )?;
    let vars: Vec<&Variable> = loaded.vars.iter().collect();
    store_io::write_store(&target, &vars)?;
    println!(
        "{} ({}) -> {} ({}): {} variables",
        args.input.display(),
        loaded.format,
        args.output.display(),
        target.format,
        vars.len()
    );
    Ok(ExitCode::SUCCESS)
}

fn finish(svc: &mut Service, status: EfiStatus, what: &str) -> CliResult {
    let errors = svc.take_errors();
    if let Some(e) = errors.first() {
        return Err(format!("{what} failed: {e}").into());
    }
    if status != EfiStatus::SUCCESS {
        let why = refusal_reason(svc)
            .map(|w| format!(": {w}"))
            .unwrap_or_default();
        return Err(CliError::Refused(format!("{what} refused: {status}{why}")));
    }
    Ok(ExitCode::SUCCESS)
}

/// Finds a variable by name, with an optional GUID (or alias).
fn find<'a>(vars: &'a [Variable], name: &str, guid: Option<&str>) -> Result<&'a Variable, String> {
    let guid = guid.map(parse_guid).transpose()?;
    let hits: Vec<&Variable> = vars
        .iter()
        .filter(|v| v.name.eq_str(name) && guid.is_none_or(|g| v.guid == g))
        .collect();
    match hits.as_slice() {
        [one] => Ok(one),
        [] => Err(format!(
            "no variable {name:?}{}",
            guid.map(|g| format!(" in {g}")).unwrap_or_default()
        )),
        many => Err(format!(
            "{name:?} exists under several GUIDs ({}); pass --guid",
            many.iter()
                .map(|v| v.guid.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// [`find`] among the service's variables (volatile ones included).
fn find_in(svc: &Service, name: &str, guid: Option<&str>) -> Result<Variable, String> {
    let vars: Vec<Variable> = svc.store().iter().cloned().collect();
    find(&vars, name, guid).cloned()
}

/// The namespace a well-known authenticated variable lives in.
pub(crate) fn default_guid(name: &str) -> Result<Guid, CliError> {
    uefi_vars::well_known::SIGNATURE_DATABASES
        .iter()
        .find(|v| v.name == name)
        .map(|v| v.guid)
        .ok_or_else(|| CliError::Usage(format!("--guid is needed for {name:?}")))
}

pub(crate) fn parse_guid(text: &str) -> Result<Guid, String> {
    names::parse_guid(text)
}

fn parse_attributes(text: &str) -> Result<u32, CliError> {
    parse_attribute_text(text).map_err(CliError::Usage)
}

fn parse_attribute_text(text: &str) -> Result<u32, String> {
    let t = text.trim();
    if let Some(hex) = t.strip_prefix("0x") {
        return u32::from_str_radix(hex, 16).map_err(|e| format!("attributes {t:?}: {e}"));
    }
    if let Ok(n) = t.parse::<u32>() {
        return Ok(n);
    }
    t.split([',', '|'])
        .map(|p| {
            let p = p.trim().to_ascii_uppercase();
            Attributes::SHORT_NAMES
                .iter()
                .find(|(_, n)| *n == p)
                .map(|(bit, _)| bit.bits())
                .ok_or_else(|| {
                    format!("unknown attribute {p:?} (use NV, BS, RT, HR, AT or a number)")
                })
        })
        .try_fold(0u32, |acc, bit| bit.map(|b| acc | b))
}

fn data_bytes(d: &DataArgs) -> Result<Vec<u8>, CliError> {
    if let Some(h) = &d.hex {
        let clean: String = h.chars().filter(|c| !c.is_whitespace()).collect();
        return json::from_hex(&clean.to_ascii_lowercase())
            .map_err(|e| format!("--hex: {e}").into());
    }
    if let Some(f) = &d.file {
        // Refused before reading when larger than the MM buffer, which no
        // variable a guest can read back exceeds.
        let limit = u64::from(uefi_vars::service::MAX_BUFFER_SIZE);
        return store_io::read_bounded(f, limit, "a variable's data");
    }
    if let Some(s) = &d.utf16 {
        return Ok(VarName::from(s.as_str()).to_wire());
    }
    if let Some(s) = &d.text {
        return Ok(s.as_bytes().to_vec());
    }
    Err(CliError::Failed("no data given".into()))
}

fn mode(in_place: bool) -> WriteMode {
    if in_place {
        WriteMode::InPlace
    } else {
        WriteMode::AtomicReplace
    }
}

fn compact(path: &std::path::Path, in_place: bool) -> CliResult {
    let _lock = store_io::lock(path)?;
    let mut file = JsonFile::with_mode(path, mode(in_place));
    let vars = file.load().map_err(|e| e.to_string())?;
    while let Some(w) = file.take_warning() {
        eprintln!("uefi-vars: warning: {w}");
    }
    if !file.pending() {
        println!("{}: no journal to compact", path.display());
        return Ok(ExitCode::SUCCESS);
    }
    let refs: Vec<&Variable> = vars.iter().collect();
    file.save(&refs).map_err(|e| e.to_string())?;
    while let Some(w) = file.take_warning() {
        eprintln!("uefi-vars: warning: {w}");
    }
    println!(
        "{}: journal compacted ({} variables)",
        path.display(),
        vars.len()
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every subcommand and argument says what it is for (`--help`).
    #[test]
    fn every_argument_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for a in cmd.get_arguments() {
                let builtin = matches!(a.get_id().as_str(), "help" | "version");
                if !builtin && a.get_help().is_none() && a.get_long_help().is_none() {
                    missing.push(format!("{path} {}", a.get_id()));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_about().is_none() && sub.get_name() != "help" {
                    missing.push(format!("{path} {} (no about)", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&super::Cli::command(), "uefi-vars", &mut missing);
        assert!(missing.is_empty(), "arguments without help: {missing:#?}");
    }
}
