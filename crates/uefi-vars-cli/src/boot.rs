//! `uefi-vars configure` (and `set-true`/`set-false`): boot entries,
//! booleans, shim's variables and variables imported from a JSON store,
//! the store edits of virt-fw-vars' "Variable options", "Boot
//! configuration" and "shim.efi configuration" (virt-firmware 26.10
//! `virt/firmware/vars.py`, `efi/efivar.py`, `efi/bootentry.py`,
//! `efi/devpath.py`), each written through the service's SetVariable as a
//! guest write would be, so the library's checks apply.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use uefi_vars::guid::{self, Guid};
use uefi_vars::name::VarName;
use uefi_vars::persist::{JsonFile, Storage, WriteMode};
use uefi_vars::variable::{attr, Variable};
use uefi_vars::{EfiStatus, Service};

const NV_BS: u32 = attr::NON_VOLATILE | attr::BOOTSERVICE_ACCESS;
const NV_BS_RT: u32 = NV_BS | attr::RUNTIME_ACCESS;

/// `LOAD_OPTION_ACTIVE` (UEFI 2.10 §3.1.3).
const LOAD_OPTION_ACTIVE: u32 = 0x0000_0001;

/// The Boot#### number virt-fw-vars uses for `--set-boot-uri`.
const NETBOOT_NUMBER: u16 = 0x0099;

#[derive(clap::Args)]
pub struct ConfigureArgs {
    /// The store (QEMU `uefi-vars` JSON file) to edit.
    #[arg(long, short)]
    store: PathBuf,
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
    /// Copy every variable of another JSON store into this one, replacing
    /// variables of the same name and GUID (imported as stored, without
    /// signature checks). Replaces virt-fw-vars --set-json.
    #[arg(long, value_name = "FILE")]
    set_json: Option<PathBuf>,
    /// Keep the store file's inode (write in place instead of replacing).
    #[arg(long)]
    in_place: bool,
}

/// `set-true NAME` / `set-false NAME`.
#[derive(clap::Args)]
pub struct BoolArgs {
    /// The variable; created (NV+BS, in its well-known namespace, or the
    /// global one) if missing.
    name: String,
    /// The store (QEMU `uefi-vars` JSON file).
    #[arg(long, short)]
    store: PathBuf,
    /// Keep the store file's inode (write in place instead of replacing).
    #[arg(long)]
    in_place: bool,
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
    let n = VarName::from(name);
    let hits: Vec<&Variable> = svc.store().iter().filter(|v| v.name == n).collect();
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
fn set_named(svc: &mut Service, name: &str, data: &[u8]) -> Result<(), String> {
    let (g, attributes) = match by_name(svc, name)? {
        Some(v) if v.is_time_auth() || v.attributes & attr::AUTHENTICATED_WRITE_ACCESS != 0 => {
            return Err(format!(
                "{name} is an authenticated variable: it changes only by a signed update (`apply`)"
            ))
        }
        Some(v) => (v.guid, v.attributes),
        None => defaults(name),
    };
    set(svc, g, name, attributes, data)
}

fn set(svc: &mut Service, g: Guid, name: &str, attributes: u32, data: &[u8]) -> Result<(), String> {
    let status = svc.set_variable(g, VarName::from(name), attributes, data);
    if let Some(e) = svc.take_errors().first() {
        return Err(format!("writing {name} failed: {e}"));
    }
    if status != EfiStatus::SUCCESS {
        let why = crate::refusal_reason(svc)
            .map(|w| format!(": {w}"))
            .unwrap_or_default();
        return Err(format!(
            "writing {name} ({g}, attributes {}) refused: {status}{why}",
            attr::describe(attributes)
        ));
    }
    Ok(())
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
    let name = VarName::from(boot_name(n).as_str());
    svc.store()
        .iter()
        .find(|v| v.guid == guid::GLOBAL_VARIABLE && v.name == name)
}

/// Whether a load option's description starts with `prefix`.
fn description_starts(v: &Variable, prefix: &str) -> bool {
    let want: Vec<u8> = prefix.encode_utf16().flat_map(u16::to_le_bytes).collect();
    v.data.get(6..).is_some_and(|d| d.starts_with(&want))
}

/// `--set-boot-uri`: the load option (MSG_URI_DP node, type 3 subtype 24,
/// the URL's bytes) and BootNext. edk2 boots such a short-form URI path
/// (MdeModulePkg/Library/UefiBootManagerLib/BmBoot.c
/// `BmExpandUriDevicePath`).
fn set_boot_uri(svc: &mut Service, url: &str) -> Result<String, String> {
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
fn append_boot_filepath(svc: &mut Service, arg: &str) -> Result<String, String> {
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

/// Reads at most `limit` bytes of a file, refusing a larger one before
/// reading it whole.
fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.len() > limit {
        return Err(format!(
            "{}: {} bytes, more than the {limit} a variable store can hold",
            path.display(),
            meta.len()
        ));
    }
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Largest input file read: far above any variable a guest can read back
/// (the MM buffer is 64 KiB), small enough to never exhaust memory.
const FILE_LIMIT: u64 = 16 << 20;

/// The variables of a JSON store given to `--set-json`.
fn read_json(file: &Path) -> Result<Vec<Variable>, String> {
    let text = read_bounded(file, FILE_LIMIT)?;
    uefi_vars::persist::json::decode(&text)
        .map_err(|e| format!("{}: not a QEMU JSON variable store: {e}", file.display()))
}

/// Merges `vars` into the store file (an import, as stored: no checks
/// beyond the JSON codec's).
fn import(store: &Path, mode: WriteMode, vars: Vec<Variable>) -> Result<String, String> {
    let mut file = JsonFile::with_mode(store, mode);
    let mut all = file
        .load()
        .map_err(|e| format!("{}: {e}", store.display()))?;
    all.retain(|o| !vars.iter().any(|v| v.guid == o.guid && v.name == o.name));
    let count = vars.len();
    all.extend(vars);
    let refs: Vec<&Variable> = all.iter().collect();
    file.save(&refs)
        .map_err(|e| format!("{}: {e}", store.display()))?;
    Ok(format!("{count} variables imported"))
}

/// `configure`, in virt-fw-vars' order of operations (vars.py `main`).
pub fn configure(a: &ConfigureArgs) -> Result<ExitCode, String> {
    let json = a.set_json.as_deref().map(read_json).transpose()?;
    let (mut svc, _lock) = crate::open_edit(&a.store, a.in_place)?;
    let mut done = Vec::new();
    for (names, value) in [(&a.set_true, 1u8), (&a.set_false, 0u8)] {
        for n in names {
            set_named(&mut svc, n, &[value])?;
            done.push(format!("{n} = {value}"));
        }
    }
    if let Some(url) = &a.set_boot_uri {
        done.push(set_boot_uri(&mut svc, url)?);
    }
    for p in &a.append_boot_filepath {
        done.push(append_boot_filepath(&mut svc, p)?);
    }
    for n in shim_switches(a) {
        set_named(&mut svc, n, &1u32.to_le_bytes())?;
        done.push(format!("{n} = 1"));
    }
    if let Some(f) = &a.set_sbat_level {
        set_named(&mut svc, "SbatLevel", &read_bounded(f, FILE_LIMIT)?)?;
        done.push(format!("SbatLevel from {}", f.display()));
    }
    // Last, as in virt-fw-vars, but read before anything is written.
    if let Some(vars) = json {
        drop(svc);
        done.push(import(&a.store, crate::mode(a.in_place), vars)?);
    }
    if done.is_empty() {
        return Err("nothing to do: give at least one option (see --help)".into());
    }
    for d in done {
        println!("{}: {d}", a.store.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `set-true` / `set-false`.
pub fn set_bool(a: &BoolArgs, value: bool) -> Result<ExitCode, String> {
    let (mut svc, _lock) = crate::open_edit(&a.store, a.in_place)?;
    set_named(&mut svc, &a.name, &[u8::from(value)])?;
    println!("{}: {} = {}", a.store.display(), a.name, u8::from(value));
    Ok(ExitCode::SUCCESS)
}
