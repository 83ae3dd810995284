//! `uefi-vars`: inspect and edit QEMU JSON variable stores, and replay
//! firmware captures through the service.

mod auth_cmds;
mod boot;
mod builtin_certs;
mod display;
mod keys;
mod presets;
mod replay_cmd;
mod sigdb;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use uefi_vars::guid::{self, Guid};
use uefi_vars::name::VarName;
use uefi_vars::persist::{JsonFile, Storage, SyncMode, WriteMode};
use uefi_vars::variable::{attr, Variable};
use uefi_vars::{Config, EfiStatus, Service};

#[derive(Parser)]
#[command(
    name = "uefi-vars",
    version,
    about = "Host-side UEFI variable service tools"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the variables of a JSON store.
    List {
        /// The store (QEMU `uefi-vars` JSON file).
        #[arg(long, short)]
        store: PathBuf,
    },
    /// Show one variable.
    Get {
        name: String,
        /// Vendor GUID, or an alias: global, db (image security database),
        /// secureboot, custommode. Without it the name must be unique.
        #[arg(long, short)]
        guid: Option<String>,
        #[arg(long, short)]
        store: PathBuf,
        /// Print only the raw data bytes as hex.
        #[arg(long)]
        raw: bool,
    },
    /// Create or replace a (non-authenticated) variable.
    Set {
        name: String,
        #[arg(long, short, default_value = "global")]
        guid: String,
        #[arg(long, short)]
        store: PathBuf,
        /// Attributes: a number or a list such as `nv,bs,rt`.
        #[arg(long, short, default_value = "nv,bs,rt")]
        attr: String,
        #[command(flatten)]
        data: DataArgs,
        /// Keep the store file's inode (write in place instead of replacing).
        #[arg(long)]
        in_place: bool,
    },
    /// Delete a (non-authenticated) variable.
    Delete {
        name: String,
        #[arg(long, short)]
        guid: Option<String>,
        #[arg(long, short)]
        store: PathBuf,
        #[arg(long)]
        in_place: bool,
    },
    /// Create or update a store with PK, KEK, db (and dbx) enrolled and
    /// Secure Boot enabled.
    Enroll(auth_cmds::EnrollArgs),
    /// Produce a signed update (.auth) for an authenticated variable.
    Sign(auth_cmds::SignArgs),
    /// Apply a signed update (.auth) to a store, verified exactly as a guest
    /// write would be.
    Apply {
        name: String,
        /// Vendor GUID or alias; default: global for PK/KEK, the image
        /// security database for db/dbx/dbt/dbr.
        #[arg(long, short)]
        guid: Option<String>,
        #[arg(long, short)]
        store: PathBuf,
        /// The .auth file (EFI_VARIABLE_AUTHENTICATION_2 + payload).
        #[arg(long)]
        auth: PathBuf,
        /// Attributes the update was signed with.
        #[arg(long, short, default_value = "nv,bs,rt,at")]
        attr: String,
        /// Append instead of replace (adds APPEND_WRITE).
        #[arg(long)]
        append: bool,
        #[arg(long)]
        in_place: bool,
    },
    /// Boot entries, booleans, shim's variables, variables from another
    /// store: the virt-fw-vars store edits besides Secure Boot keys.
    Configure(boot::ConfigureArgs),
    /// Set a boolean variable to true (1). Replaces virt-fw-vars --set-true.
    SetTrue(boot::BoolArgs),
    /// Set a boolean variable to false (0). Replaces virt-fw-vars --set-false.
    SetFalse(boot::BoolArgs),
    /// Fold the store's journal (STORE.journal, written by `serve`) into
    /// the JSON file, which is then complete on its own (for QEMU,
    /// virt-fw-vars or a copy). Refused while a service runs on the store.
    Compact {
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
}

#[derive(clap::Args)]
#[group(required = true, multiple = false)]
struct DataArgs {
    /// Data as hex digits.
    #[arg(long)]
    hex: Option<String>,
    /// Data read from a file.
    #[arg(long)]
    file: Option<PathBuf>,
    /// A UCS-2 string (NUL-terminated), as UEFI stores text.
    #[arg(long)]
    utf16: Option<String>,
    /// An ASCII/UTF-8 string without terminator.
    #[arg(long)]
    text: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("uefi-vars: {e}");
            ExitCode::from(2)
        }
    }
}

type CliResult = Result<ExitCode, String>;

fn run(cmd: Command) -> CliResult {
    match cmd {
        Command::List { store } => {
            let svc = open(&store)?;
            for v in svc.store().iter() {
                println!("{}", display::summary_line(v));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Get {
            name,
            guid,
            store,
            raw,
        } => {
            let svc = open(&store)?;
            let var = find(&svc, &name, guid.as_deref())?;
            if raw {
                println!("{}", uefi_vars::persist::json::to_hex(&var.data));
            } else {
                print!("{}", display::details(var));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Set {
            name,
            guid,
            store,
            attr,
            data,
            in_place,
        } => {
            let guid = parse_guid(&guid)?;
            let attributes = parse_attributes(&attr)?;
            if attributes
                & (attr::TIME_BASED_AUTHENTICATED_WRITE_ACCESS | attr::AUTHENTICATED_WRITE_ACCESS)
                != 0
            {
                return Err("authenticated variables need a signed update; `set` writes plain variables only".into());
            }
            let data = data_bytes(&data)?;
            if data.is_empty() {
                return Err("empty data would delete the variable; use `delete`".into());
            }
            let (mut svc, _lock) = open_edit(&store, in_place)?;
            let status = svc.set_variable(guid, VarName::from(name.as_str()), attributes, &data);
            finish(&mut svc, status, "set")
        }
        Command::Delete {
            name,
            guid,
            store,
            in_place,
        } => {
            let (mut svc, _lock) = open_edit(&store, in_place)?;
            let var = find(&svc, &name, guid.as_deref())?.clone();
            let status = svc.set_variable(var.guid, var.name.clone(), var.attributes, &[]);
            finish(&mut svc, status, "delete")
        }
        Command::Apply {
            name,
            guid,
            store,
            auth,
            attr: attributes,
            append,
            in_place,
        } => {
            let vendor = match guid {
                Some(g) => parse_guid(&g)?,
                None => default_guid(&name)?,
            };
            let mut attributes = parse_attributes(&attributes)?;
            if append {
                attributes |= attr::APPEND_WRITE;
            }
            let data = std::fs::read(&auth).map_err(|e| format!("{}: {e}", auth.display()))?;
            let (mut svc, _lock) = open_edit(&store, in_place)?;
            let status = svc.set_variable(vendor, VarName::from(name.as_str()), attributes, &data);
            finish(&mut svc, status, "apply")
        }
        Command::Compact { store, in_place } => compact(&store, in_place),
        Command::Replay(args) => replay_cmd::run(&args),
        Command::Enroll(args) => auth_cmds::enroll(&args),
        Command::Sign(args) => auth_cmds::sign(&args),
        Command::Serve(args) => uefi_vars_serve::cli::run(&args),
        Command::Configure(args) => boot::configure(&args),
        Command::SetTrue(args) => boot::set_bool(&args, true),
        Command::SetFalse(args) => boot::set_bool(&args, false),
    }
}

fn mode(in_place: bool) -> WriteMode {
    if in_place {
        WriteMode::InPlace
    } else {
        WriteMode::AtomicReplace
    }
}

/// Opens a store to read: the JSON file with its journal replayed.
fn open(path: &std::path::Path) -> Result<Service, String> {
    let mut svc = Service::open(Config::default(), Box::new(JsonFile::new(path)))
        .map_err(|e| e.to_string())?;
    warn(svc.take_errors());
    Ok(svc)
}

fn warn(errors: Vec<uefi_vars::Error>) {
    for e in errors {
        eprintln!("uefi-vars: warning: {e}");
    }
}

/// Takes the store's lock, so that no `serve` runs on it meanwhile.
pub(crate) fn lock(path: &std::path::Path) -> Result<std::fs::File, String> {
    uefi_vars_serve::server::lock_store(path).map_err(|e| e.to_string())
}

/// Opens a store to change it: locked, and every change written into the
/// JSON file itself (a one-shot edit leaves it complete).
fn open_edit(path: &std::path::Path, in_place: bool) -> Result<(Service, std::fs::File), String> {
    let lock = lock(path)?;
    let file = JsonFile::with_mode(path, mode(in_place)).with_sync(SyncMode::FullRewrite);
    let mut svc = Service::open(Config::default(), Box::new(file)).map_err(|e| e.to_string())?;
    warn(svc.take_errors());
    Ok((svc, lock))
}

fn compact(path: &std::path::Path, in_place: bool) -> CliResult {
    let _lock = lock(path)?;
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

fn finish(svc: &mut Service, status: EfiStatus, what: &str) -> CliResult {
    let errors = svc.take_errors();
    if let Some(e) = errors.first() {
        return Err(format!("{what} failed: {e}"));
    }
    if status != EfiStatus::SUCCESS {
        return Err(format!("{what} refused: {status}"));
    }
    svc.compact().map_err(|e| format!("{what}: {e}"))?;
    Ok(ExitCode::SUCCESS)
}

/// Finds a variable by name, with an optional GUID (or alias).
fn find<'a>(svc: &'a Service, name: &str, guid: Option<&str>) -> Result<&'a Variable, String> {
    let want = VarName::from(name);
    let guid = guid.map(parse_guid).transpose()?;
    let hits: Vec<&Variable> = svc
        .store()
        .iter()
        .filter(|v| v.name == want && guid.is_none_or(|g| v.guid == g))
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

/// The namespace a well-known authenticated variable lives in.
pub(crate) fn default_guid(name: &str) -> Result<Guid, String> {
    match name {
        "PK" | "KEK" => Ok(guid::GLOBAL_VARIABLE),
        "db" | "dbx" | "dbt" | "dbr" => Ok(guid::IMAGE_SECURITY_DATABASE),
        _ => Err(format!("--guid is needed for {name:?}")),
    }
}

pub(crate) fn parse_guid(text: &str) -> Result<Guid, String> {
    Ok(match text.to_ascii_lowercase().as_str() {
        "global" | "efi-global" => guid::GLOBAL_VARIABLE,
        "db" | "image-security" => guid::IMAGE_SECURITY_DATABASE,
        "secureboot" | "secure-boot-enable" => guid::SECURE_BOOT_ENABLE_DISABLE,
        "custommode" | "custom-mode" => guid::CUSTOM_MODE_ENABLE,
        _ => text
            .parse()
            .map_err(|e: guid::GuidParseError| e.to_string())?,
    })
}

fn parse_attributes(text: &str) -> Result<u32, String> {
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
            attr::NAMES
                .iter()
                .find(|(_, n)| *n == p)
                .map(|(bit, _)| *bit)
                .ok_or_else(|| {
                    format!("unknown attribute {p:?} (use NV, BS, RT, HR, AT or a number)")
                })
        })
        .try_fold(0u32, |acc, bit| bit.map(|b| acc | b))
}

fn data_bytes(d: &DataArgs) -> Result<Vec<u8>, String> {
    if let Some(h) = &d.hex {
        let clean: String = h.chars().filter(|c| !c.is_whitespace()).collect();
        return uefi_vars::persist::json::from_hex(&clean.to_ascii_lowercase())
            .map_err(|e| format!("--hex: {e}"));
    }
    if let Some(f) = &d.file {
        return std::fs::read(f).map_err(|e| format!("{}: {e}", f.display()));
    }
    if let Some(s) = &d.utf16 {
        return Ok(VarName::from(s.as_str()).to_wire());
    }
    if let Some(s) = &d.text {
        return Ok(s.as_bytes().to_vec());
    }
    Err("no data given".into())
}
