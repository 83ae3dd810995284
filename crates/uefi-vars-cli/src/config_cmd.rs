//! `uefi-vars configure`: boot entries and shim settings, as virt-fw-vars'
//! `--set-boot-uri`, `--append-boot-filepath`, `--set-true`/`--set-false`,
//! `--set-json`, `--set-shim-debug`, `--set-shim-verbose`,
//! `--set-fallback-verbose`, `--set-fallback-no-reboot` and
//! `--set-sbat-level` do; every write goes through the same SetVariable
//! rules as a guest write.

use std::path::PathBuf;
use std::process::ExitCode;

use uefi_vars::guid::{self, Guid};
use uefi_vars::name::VarName;
use uefi_vars::variable::{attr, Variable};
use uefi_vars::{EfiStatus, Service};

use crate::store_io::StoreArgs;
use crate::CliError;

#[derive(clap::Args)]
pub struct ConfigureArgs {
    #[command(flatten)]
    io: StoreArgs,
    /// Boot once from this URL (HTTP boot): a Boot#### entry with a Uri()
    /// device path, made the BootNext (virt-fw-vars --set-boot-uri).
    #[arg(long, value_name = "URL")]
    set_boot_uri: Option<String>,
    /// Add a boot entry for a file on the boot partition ("PATH [ARGS]",
    /// `/` or `\` separated) and append it to BootOrder
    /// (virt-fw-vars --append-boot-filepath).
    #[arg(long, value_name = "PATH [ARGS]")]
    append_boot_filepath: Vec<String>,
    /// Set a boolean variable to 1 (SecureBootEnable, CustomMode, shim's
    /// variables by their GUID; other names in the global GUID).
    #[arg(long, value_name = "VAR")]
    set_true: Vec<String>,
    /// Set a boolean variable to 0.
    #[arg(long, value_name = "VAR")]
    set_false: Vec<String>,
    /// Set every (non-authenticated) variable of this store file (any
    /// format) (virt-fw-vars --set-json).
    #[arg(long, value_name = "FILE")]
    set_json: Option<PathBuf>,
    /// shim: pause for a debugger (SHIM_DEBUG = 1).
    #[arg(long)]
    shim_debug: bool,
    /// shim: verbose messages (SHIM_VERBOSE = 1).
    #[arg(long)]
    shim_verbose: bool,
    /// shim's fallback: verbose messages (FALLBACK_VERBOSE = 1).
    #[arg(long)]
    fallback_verbose: bool,
    /// shim's fallback: do not reboot after creating boot entries
    /// (FB_NO_REBOOT = 1).
    #[arg(long)]
    fallback_no_reboot: bool,
    /// shim: set SbatLevel from this file (the SBAT revocation text).
    #[arg(long, value_name = "FILE")]
    sbat_level: Option<PathBuf>,
}

const NV_BS: u32 = attr::NON_VOLATILE | attr::BOOTSERVICE_ACCESS;
const NV_BS_RT: u32 = NV_BS | attr::RUNTIME_ACCESS;

fn shim_guid() -> Guid {
    crate::names::parse_guid("shim").unwrap_or(guid::GLOBAL_VARIABLE)
}

/// Where a variable named by the user lives, and its attributes
/// (virt-firmware's efivar_defaults; UEFI spec for the global ones).
fn placement(name: &str) -> (Guid, u32) {
    match name {
        "SecureBootEnable" => (guid::SECURE_BOOT_ENABLE_DISABLE, NV_BS),
        "CustomMode" => (guid::CUSTOM_MODE_ENABLE, NV_BS),
        "SHIM_DEBUG" | "SHIM_VERBOSE" | "FALLBACK_VERBOSE" | "SbatLevel" | "MokSBState" => {
            (shim_guid(), NV_BS)
        }
        "FB_NO_REBOOT" => (shim_guid(), NV_BS_RT),
        _ => (guid::GLOBAL_VARIABLE, NV_BS_RT),
    }
}

fn ucs2z(text: &str) -> Vec<u8> {
    VarName::from(text).to_wire()
}

fn node(ty: u8, sub: u8, body: &[u8]) -> Result<Vec<u8>, CliError> {
    let len = u16::try_from(body.len().saturating_add(4))
        .map_err(|_| CliError::Refused("device path node longer than 64 KiB".into()))?;
    let mut v = vec![ty, sub];
    v.extend_from_slice(&len.to_le_bytes());
    v.extend_from_slice(body);
    Ok(v)
}

/// EFI_LOAD_OPTION, active, with one device path and optional data.
fn load_option(description: &str, path: &[u8], optional: &[u8]) -> Result<Vec<u8>, CliError> {
    let mut full = path.to_vec();
    full.extend_from_slice(&[0x7f, 0xff, 4, 0]);
    let path_len = u16::try_from(full.len())
        .map_err(|_| CliError::Refused("device path longer than 64 KiB".into()))?;
    let mut v = uefi_vars::devpath::LOAD_OPTION_ACTIVE
        .to_le_bytes()
        .to_vec();
    v.extend_from_slice(&path_len.to_le_bytes());
    v.extend(ucs2z(description));
    v.extend(full);
    v.extend_from_slice(optional);
    Ok(v)
}

fn get<'a>(svc: &'a Service, g: Guid, name: &str) -> Option<&'a Variable> {
    svc.store()
        .iter()
        .find(|v| v.guid == g && v.name == VarName::from(name))
}

/// The Boot#### number already holding exactly `option`, else the first
/// free one.
fn boot_number(svc: &Service, option: &[u8]) -> Result<u16, CliError> {
    let name = |n: u16| format!("Boot{n:04X}");
    if let Some(n) = (0..=u16::MAX)
        .find(|&n| get(svc, guid::GLOBAL_VARIABLE, &name(n)).is_some_and(|v| v.data == option))
    {
        return Ok(n);
    }
    (0..=u16::MAX)
        .find(|&n| get(svc, guid::GLOBAL_VARIABLE, &name(n)).is_none())
        .ok_or_else(|| CliError::Refused("all 65536 Boot#### numbers are taken".into()))
}

/// One write, refused with its reason.
fn put(
    svc: &mut Service,
    g: Guid,
    name: &str,
    attributes: u32,
    data: &[u8],
) -> Result<(), CliError> {
    let before: Vec<Variable> = svc.store().iter().cloned().collect();
    let status = svc.set_variable(g, VarName::from(name), attributes, data);
    if let Some(e) = svc.take_errors().first() {
        return Err(format!("configure failed: {e}").into());
    }
    if status == EfiStatus::SUCCESS {
        return Ok(());
    }
    let why = crate::explain::plain_refusal(&before, g, name, attributes, status)
        .map(|w| format!(": {w}"))
        .unwrap_or_default();
    Err(CliError::Refused(format!("{name}: refused: {status}{why}")))
}

fn boot_uri(svc: &mut Service, url: &str) -> Result<(), CliError> {
    let last = url.trim_end_matches('/').rsplit('/').next().unwrap_or(url);
    let option = load_option(
        &format!("netboot {last}"),
        &node(3, 24, url.as_bytes())?,
        &[],
    )?;
    let n = boot_number(svc, &option)?;
    put(
        svc,
        guid::GLOBAL_VARIABLE,
        &format!("Boot{n:04X}"),
        NV_BS_RT,
        &option,
    )?;
    put(
        svc,
        guid::GLOBAL_VARIABLE,
        "BootNext",
        NV_BS_RT,
        &n.to_le_bytes(),
    )?;
    println!("Boot{n:04X}: netboot {url} (BootNext)");
    Ok(())
}

fn boot_filepath(svc: &mut Service, spec: &str) -> Result<(), CliError> {
    let (path, args) = match spec.split_once(' ') {
        Some((p, a)) => (p, Some(a)),
        None => (spec, None),
    };
    let path = path.replace('/', "\\");
    let base = path.rsplit('\\').next().unwrap_or(&path);
    let optional = args.map(ucs2z).unwrap_or_default();
    let option = load_option(
        &format!("file {base}"),
        &node(4, 4, &ucs2z(&path))?,
        &optional,
    )?;
    let n = boot_number(svc, &option)?;
    put(
        svc,
        guid::GLOBAL_VARIABLE,
        &format!("Boot{n:04X}"),
        NV_BS_RT,
        &option,
    )?;
    let mut order = get(svc, guid::GLOBAL_VARIABLE, "BootOrder")
        .map(|v| v.data.clone())
        .unwrap_or_default();
    let already = order.chunks_exact(2).any(|c| c == n.to_le_bytes());
    if !already {
        order.extend_from_slice(&n.to_le_bytes());
        put(svc, guid::GLOBAL_VARIABLE, "BootOrder", NV_BS_RT, &order)?;
    }
    println!("Boot{n:04X}: {path} (in BootOrder)");
    Ok(())
}

fn set_json(svc: &mut Service, file: &std::path::Path) -> Result<(), CliError> {
    let vars = crate::store_io::read_store(file, false)?.vars;
    for v in &vars {
        if v.attributes
            & (attr::TIME_BASED_AUTHENTICATED_WRITE_ACCESS | attr::AUTHENTICATED_WRITE_ACCESS)
            != 0
        {
            return Err(CliError::Refused(format!(
                "{}: {} is an authenticated variable; it changes only through a signed update \
                 (`uefi-vars sign`, `uefi-vars apply`, or `enroll`)",
                file.display(),
                v.name
            )));
        }
        put(svc, v.guid, &v.name.to_string(), v.attributes, &v.data)?;
    }
    Ok(())
}

fn apply_all(args: &ConfigureArgs, svc: &mut Service) -> Result<(), CliError> {
    if let Some(file) = &args.set_json {
        set_json(svc, file)?;
    }
    for (names, value) in [(&args.set_true, 1u8), (&args.set_false, 0u8)] {
        for name in names {
            let (g, a) = placement(name);
            put(svc, g, name, a, &[value])?;
        }
    }
    let one = 1u32.to_le_bytes();
    for (on, name) in [
        (args.shim_debug, "SHIM_DEBUG"),
        (args.shim_verbose, "SHIM_VERBOSE"),
        (args.fallback_verbose, "FALLBACK_VERBOSE"),
        (args.fallback_no_reboot, "FB_NO_REBOOT"),
    ] {
        if on {
            let (g, a) = placement(name);
            put(svc, g, name, a, &one)?;
        }
    }
    if let Some(file) = &args.sbat_level {
        let limit = u64::from(uefi_vars::service::MAX_BUFFER_SIZE);
        let text = crate::store_io::read_bounded(file, limit, "an SbatLevel")?;
        let (g, a) = placement("SbatLevel");
        put(svc, g, "SbatLevel", a, &text)?;
    }
    for spec in &args.append_boot_filepath {
        boot_filepath(svc, spec)?;
    }
    if let Some(url) = &args.set_boot_uri {
        boot_uri(svc, url)?;
    }
    Ok(())
}

pub fn run(args: &ConfigureArgs) -> Result<ExitCode, CliError> {
    crate::edit(&args.io, "configure", |svc| {
        apply_all(args, svc)?;
        Ok((EfiStatus::SUCCESS, None))
    })
}
