//! `uefi-vars configure` (and `set-true`/`set-false`): boot entries,
//! booleans, shim's variables and variables imported from a JSON store,
//! the store edits of virt-fw-vars' "Variable options", "Boot
//! configuration" and "shim.efi configuration" (virt-firmware 26.10
//! `virt/firmware/vars.py`, `efi/efivar.py`, `efi/bootentry.py`,
//! `efi/devpath.py`), each written through the service's SetVariable as a
//! guest write would be, so the library's checks apply.

use std::path::PathBuf;
use std::process::ExitCode;

use uefi_vars::guid::{self, Guid};
use uefi_vars::name::VarName;
use uefi_vars::variable::{attr, Variable};
use uefi_vars::{EfiStatus, Service};

use crate::store_io::StoreArgs;
use crate::CliError;

const NV_BS: u32 = attr::NON_VOLATILE | attr::BOOTSERVICE_ACCESS;
const NV_BS_RT: u32 = NV_BS | attr::RUNTIME_ACCESS;

/// `LOAD_OPTION_ACTIVE` (UEFI 2.10 §3.1.3).
const LOAD_OPTION_ACTIVE: u32 = 0x0000_0001;

/// The Boot#### number virt-fw-vars uses for `--set-boot-uri`.
const NETBOOT_NUMBER: u16 = 0x0099;

#[derive(clap::Args)]
pub struct ConfigureArgs {
    #[command(flatten)]
    io: StoreArgs,
    /// Set variable VAR to true (one byte 1), creating it (NV+BS, in its
    /// well-known namespace or the global one) if missing (repeatable).
    /// Replaces virt-fw-vars --set-true.
    #[arg(long, value_name = "VAR")]
    set_true: Vec<String>,
    /// Set variable VAR to false (one byte 0) (repeatable). Replaces
    /// virt-fw-vars --set-false.
    #[arg(long, value_name = "VAR")]
    set_false: Vec<String>,
    /// Boot once from a network URL (HTTP boot): a load option whose device
    /// path is a single URI node (which edk2's boot manager expands), as
    /// Boot0099 unless that holds an unrelated entry, and BootNext pointing
    /// at it. Replaces virt-fw-vars --set-boot-uri.
    #[arg(long, value_name = "URL")]
    set_boot_uri: Option<String>,
    /// Add a load option booting the file PATH ('/' or '\' separated) from
    /// whichever file system holds it, as the first free Boot####, appended
    /// to BootOrder (repeatable). Text after the first space becomes the
    /// option's load options (UCS-2, e.g. a kernel command line). Replaces
    /// virt-fw-vars --append-boot-filepath.
    #[arg(long, value_name = "PATH[ ARGS]")]
    append_boot_filepath: Vec<String>,
    /// Make shim pause for a debugger (SHIM_DEBUG = 1). Replaces
    /// virt-fw-vars --set-shim-debug.
    #[arg(long)]
    set_shim_debug: bool,
    /// Make shim verbose (SHIM_VERBOSE = 1). Replaces virt-fw-vars
    /// --set-shim-verbose.
    #[arg(long)]
    set_shim_verbose: bool,
    /// Make shim's fallback.efi verbose (FALLBACK_VERBOSE = 1). Replaces
    /// virt-fw-vars --set-fallback-verbose.
    #[arg(long)]
    set_fallback_verbose: bool,
    /// Keep fallback.efi from rebooting after it creates boot entries
    /// (FB_NO_REBOOT = 1). Replaces virt-fw-vars --set-fallback-no-reboot.
    #[arg(long)]
    set_fallback_no_reboot: bool,
    /// Set shim's SbatLevel variable to the content of FILE (e.g.
    /// "sbat,1,2021030218\n"). Replaces virt-fw-vars --set-sbat-level.
    #[arg(long, value_name = "FILE")]
    set_sbat_level: Option<PathBuf>,
    /// Copy every variable of another store (QEMU JSON, or any format
    /// `list` reads) into this one, replacing variables of the same name
    /// and GUID (imported as stored, without signature checks). Replaces
    /// virt-fw-vars --set-json.
    #[arg(long, value_name = "FILE")]
    set_json: Option<PathBuf>,
}

/// `set-true NAME` / `set-false NAME`.
#[derive(clap::Args)]
pub struct BoolArgs {
    /// The variable; created (NV+BS, in its well-known namespace, or the
    /// global one) if missing.
    name: String,
    #[command(flatten)]
    io: StoreArgs,
}

/// Namespace and attributes a variable is created with when missing
/// (virt-firmware efivar.py `efivar_defaults`; shim's from rhboot/shim:
/// shim.h, fallback.c `set_fallback_no_reboot`, include/sbat.h).
fn defaults(name: &str) -> (Guid, u32) {
    match name {
        "SecureBootEnable" => (guid::SECURE_BOOT_ENABLE_DISABLE, NV_BS),
        "CustomMode" => (guid::CUSTOM_MODE_ENABLE, NV_BS),
        "FB_NO_REBOOT" => (guid::SHIM_LOCK, NV_BS_RT),
        "SHIM_DEBUG" | "SHIM_VERBOSE" | "FALLBACK_VERBOSE" | "SbatLevel" | "MokList"
        | "MokListX" | "MokListTrusted" => (guid::SHIM_LOCK, NV_BS),
        n if n.starts_with("Boot") => (guid::GLOBAL_VARIABLE, NV_BS_RT),
        _ => (guid::GLOBAL_VARIABLE, NV_BS),
    }
}

/// The stored variable named `name` (it must be unique across GUIDs).
fn by_name<'a>(svc: &'a Service, name: &str) -> Result<Option<&'a Variable>, String> {
    let hits: Vec<&Variable> = svc.store().iter().filter(|v| v.name.eq_str(name)).collect();
    match hits.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        many => Err(format!(
            "{name:?} exists under several GUIDs ({}); use `set --guid`",
            many.iter()
                .map(|v| v.guid.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Writes `data` into variable `name`, keeping the namespace and attributes
/// of an existing one (as virt-fw-vars does), through SetVariable.
fn set_named(svc: &mut Service, name: &str, data: &[u8]) -> Result<(), CliError> {
    let (g, attributes) = match by_name(svc, name)? {
        Some(v) if v.is_time_auth() || v.attributes & attr::AUTHENTICATED_WRITE_ACCESS != 0 => {
            return Err(CliError::Refused(format!(
                "{name} is an authenticated variable: it changes only by a signed update (`apply`)"
            )))
        }
        Some(v) => (v.guid, v.attributes),
        None => defaults(name),
    };
    set(svc, g, name, attributes, data)
}

fn set(
    svc: &mut Service,
    g: Guid,
    name: &str,
    attributes: u32,
    data: &[u8],
) -> Result<(), CliError> {
    let before: Vec<Variable> = svc.store().iter().cloned().collect();
    let status = svc.set_variable(g, VarName::from(name), attributes, data);
    if let Some(e) = svc.take_errors().first() {
        return Err(CliError::Failed(format!("writing {name} failed: {e}")));
    }
    if status != EfiStatus::SUCCESS {
        // The CLI's own explanation first, else the service's refusal.
        let why = crate::explain::plain_refusal(&before, g, name, attributes, status)
            .or_else(|| crate::refusal_reason(svc))
            .map(|w| format!(": {w}"))
            .unwrap_or_default();
        return Err(CliError::Refused(format!(
            "writing {name} ({g}, attributes {}) refused: {status}{why}",
            attr::describe(attributes)
        )));
    }
    crate::check_readable_size(
        &uefi_vars::variable::VarKey::new(g, VarName::from(name)),
        data.len() as u64,
    )
}

/// UCS-2 with the terminating NUL, as UEFI stores text.
fn ucs2(text: &str) -> Vec<u8> {
    VarName::from(text).to_wire()
}

/// A device path of one node followed by the end node (UEFI 2.10 §10.3).
fn device_path(node_type: u8, sub_type: u8, body: &[u8]) -> Result<Vec<u8>, String> {
    let len = u16::try_from(body.len() + 4)
        .map_err(|_| format!("device path node too long ({} bytes)", body.len()))?;
    let mut out = vec![node_type, sub_type];
    out.extend(len.to_le_bytes());
    out.extend(body);
    out.extend([0x7f, 0xff, 0x04, 0x00]);
    Ok(out)
}

/// EFI_LOAD_OPTION (UEFI 2.10 §3.1.3): attributes, FilePathListLength,
/// description, device path, optional data.
fn load_option(description: &str, path: &[u8], optional: &[u8]) -> Result<Vec<u8>, String> {
    let path_len = u16::try_from(path.len()).map_err(|_| "device path too long".to_string())?;
    let mut out = LOAD_OPTION_ACTIVE.to_le_bytes().to_vec();
    out.extend(path_len.to_le_bytes());
    out.extend(ucs2(description));
    out.extend(path);
    out.extend(optional);
    Ok(out)
}

fn boot_name(n: u16) -> String {
    format!("Boot{n:04X}")
}

fn boot_var(svc: &Service, n: u16) -> Option<&Variable> {
    let name = boot_name(n);
    svc.store()
        .iter()
        .find(|v| v.guid == guid::GLOBAL_VARIABLE && v.name.eq_str(name.as_str()))
}

/// Whether a load option's description starts with `prefix`.
fn description_starts(v: &Variable, prefix: &str) -> bool {
    // EFI_LOAD_OPTION: Attributes (4), FilePathListLength (2), Description.
    let description = VarName::ucs2_units(v.data.get(6..).unwrap_or_default());
    description.starts_with(&prefix.encode_utf16().collect::<Vec<_>>())
}

/// `--set-boot-uri`: the load option (MSG_URI_DP node, type 3 subtype 24,
/// the URL's bytes) and BootNext. edk2 boots such a short-form URI path
/// (MdeModulePkg/Library/UefiBootManagerLib/BmBoot.c
/// `BmExpandUriDevicePath`).
fn set_boot_uri(svc: &mut Service, url: &str) -> Result<String, CliError> {
    let title = format!("netboot {}", url.rsplit('/').next().unwrap_or(url));
    let path = device_path(0x03, 0x18, url.as_bytes())?;
    let option = load_option(&title, &path, &[])?;
    let n = netboot_number(svc)?;
    set(svc, guid::GLOBAL_VARIABLE, &boot_name(n), NV_BS_RT, &option)?;
    set(
        svc,
        guid::GLOBAL_VARIABLE,
        "BootNext",
        NV_BS_RT,
        &n.to_le_bytes(),
    )?;
    Ok(format!(
        "{}: {title} ({url}), BootNext={n:04X}",
        boot_name(n)
    ))
}

/// Boot0099 as virt-fw-vars, unless it holds something else: an unrelated
/// entry is never overwritten; then an earlier netboot entry is reused, or
/// the first free number taken.
fn netboot_number(svc: &Service) -> Result<u16, String> {
    let is_netboot = |v: &Variable| description_starts(v, "netboot ");
    if boot_var(svc, NETBOOT_NUMBER).is_none_or(is_netboot) {
        return Ok(NETBOOT_NUMBER);
    }
    match (0..=u16::MAX).find(|n| boot_var(svc, *n).is_some_and(is_netboot)) {
        Some(n) => Ok(n),
        None => free_boot_number(svc),
    }
}

fn free_boot_number(svc: &Service) -> Result<u16, String> {
    (0..=u16::MAX)
        .find(|n| boot_var(svc, *n).is_none())
        .ok_or_else(|| "no free Boot#### number".to_string())
}

/// `--append-boot-filepath`: MEDIA_FILEPATH_DP (type 4 subtype 4, UCS-2
/// path) and BootOrder. edk2 searches every file system for such a
/// short-form path (BmBoot.c `BmExpandFileDevicePath`).
fn append_boot_filepath(svc: &mut Service, arg: &str) -> Result<String, CliError> {
    let arg = arg.replace('/', "\\");
    let (file, args) = match arg.split_once(' ') {
        Some((f, a)) => (f, Some(a)),
        None => (arg.as_str(), None),
    };
    let title = format!("file {}", file.rsplit('\\').next().unwrap_or(file));
    let path = device_path(0x04, 0x04, &ucs2(file))?;
    let optional = args.map(ucs2).unwrap_or_default();
    let option = load_option(&title, &path, &optional)?;
    let n = free_boot_number(svc)?;
    set(svc, guid::GLOBAL_VARIABLE, &boot_name(n), NV_BS_RT, &option)?;
    let (g, attributes, mut order) = match by_name(svc, "BootOrder")? {
        Some(v) => (v.guid, v.attributes, v.data.clone()),
        None => (guid::GLOBAL_VARIABLE, NV_BS_RT, Vec::new()),
    };
    order.extend(n.to_le_bytes());
    set(svc, g, "BootOrder", attributes, &order)?;
    Ok(format!(
        "{}: {title} ({file}), appended to BootOrder",
        boot_name(n)
    ))
}

/// shim's switches: a 32-bit 1 (shim reads FB_NO_REBOOT as a UINT32,
/// fallback.c `get_fallback_no_reboot`; the others as "present and
/// non-zero", shim.c/lib/console.c/fallback.c).
fn shim_switches(a: &ConfigureArgs) -> Vec<&'static str> {
    [
        (a.set_shim_debug, "SHIM_DEBUG"),
        (a.set_shim_verbose, "SHIM_VERBOSE"),
        (a.set_fallback_verbose, "FALLBACK_VERBOSE"),
        (a.set_fallback_no_reboot, "FB_NO_REBOOT"),
    ]
    .into_iter()
    .filter_map(|(on, n)| on.then_some(n))
    .collect()
}

/// Largest SbatLevel file read: far above what a guest can read back (the
/// MM buffer is 64 KiB), so the size check names the real limit.
const FILE_LIMIT: u64 = 16 << 20;

/// Merges `import` into `vars` (an import, as stored: no checks beyond the
/// decoder's, as virt-fw-vars --set-json).
fn merge(vars: &mut Vec<Variable>, import: Vec<Variable>) -> String {
    vars.retain(|o| !import.iter().any(|v| v.guid == o.guid && v.name == o.name));
    let count = import.len();
    vars.extend(import);
    format!("{count} variables imported")
}

fn anything_to_do(a: &ConfigureArgs) -> bool {
    !(a.set_true.is_empty()
        && a.set_false.is_empty()
        && a.set_boot_uri.is_none()
        && a.append_boot_filepath.is_empty()
        && shim_switches(a).is_empty()
        && a.set_sbat_level.is_none()
        && a.set_json.is_none())
}

/// The edits of `configure`, in virt-fw-vars' order of operations
/// (vars.py `main`), each a SetVariable on `svc`.
fn configure_edits(
    a: &ConfigureArgs,
    svc: &mut Service,
    sbat: Option<&[u8]>,
) -> Result<Vec<String>, CliError> {
    let mut done = Vec::new();
    for (names, value) in [(&a.set_true, 1u8), (&a.set_false, 0u8)] {
        for n in names {
            set_named(svc, n, &[value])?;
            done.push(format!("{n} = {value}"));
        }
    }
    if let Some(url) = &a.set_boot_uri {
        done.push(set_boot_uri(svc, url)?);
    }
    for p in &a.append_boot_filepath {
        done.push(append_boot_filepath(svc, p)?);
    }
    for n in shim_switches(a) {
        set_named(svc, n, &1u32.to_le_bytes())?;
        done.push(format!("{n} = 1"));
    }
    if let (Some(f), Some(bytes)) = (&a.set_sbat_level, sbat) {
        set_named(svc, "SbatLevel", bytes)?;
        done.push(format!("SbatLevel from {}", f.display()));
    }
    Ok(done)
}

/// `configure`: every input file is read and the store checked before
/// anything is written; the result goes to `--output` (any format) or back
/// into the store in its own format.
pub fn configure(a: &ConfigureArgs) -> Result<ExitCode, CliError> {
    if !anything_to_do(a) {
        return Err(CliError::Usage(
            "nothing to do: give at least one option (see --help)".into(),
        ));
    }
    let import = match &a.set_json {
        Some(f) => Some(crate::store_io::read_store(f, false)?.vars),
        None => None,
    };
    let sbat = match &a.set_sbat_level {
        Some(f) => Some(crate::store_io::read_bounded(
            f,
            FILE_LIMIT,
            "an SbatLevel file",
        )?),
        None => None,
    };
    let mut done = Vec::new();
    crate::edit_vars(&a.io, |svc| {
        done = configure_edits(a, svc, sbat.as_deref())?;
        let mut vars = crate::non_volatile(svc);
        // Last, as in virt-fw-vars.
        if let Some(import) = import {
            done.push(merge(&mut vars, import));
        }
        Ok(vars)
    })?;
    let out = a.io.output.as_ref().unwrap_or(&a.io.store);
    for d in done {
        println!("{}: {d}", out.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `set-true` / `set-false`.
pub fn set_bool(a: &BoolArgs, value: bool) -> Result<ExitCode, CliError> {
    crate::edit_vars(&a.io, |svc| {
        set_named(svc, &a.name, &[u8::from(value)])?;
        Ok(crate::non_volatile(svc))
    })?;
    let out = a.io.output.as_ref().unwrap_or(&a.io.store);
    println!("{}: {} = {}", out.display(), a.name, u8::from(value));
    Ok(ExitCode::SUCCESS)
}
