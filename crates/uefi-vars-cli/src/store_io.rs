//! Reading and writing store files in every format, for the editing
//! commands and `convert`: format detection, qcow2 through `qemu-img`, the
//! lock `uefi-vars serve` holds, read-only files, atomic replacement.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use uefi_vars::persist::formats::{self, edk2, Format};
use uefi_vars::persist::{JsonFile, Storage, WriteMode};
use uefi_vars::variable::Variable;

use crate::CliError;

/// Largest store file read (AAVMF images are 64 MiB).
const MAX_STORE_FILE: u64 = 256 << 20;

/// Where an editing command reads and writes.
#[derive(clap::Args, Debug, Clone)]
pub struct StoreArgs {
    /// The store to read and update: QEMU JSON, edk2 flash image (.fd),
    /// AWS uefi-data blob or qcow2-wrapped image (through qemu-img, Debian
    /// package qemu-utils, which qcow2 needs), detected from its content
    /// (virt-fw-vars -i / --inplace); or an etcd store,
    /// etcd://HOST:PORT[,...]/PREFIX/VM[?cacert=F&cert=F&key=F], whose
    /// writes are refused while a `uefi-vars serve` owns it.
    #[arg(long, short, visible_alias = "input", short_alias = 'i')]
    pub store: PathBuf,
    /// Write the result here instead of back into the store, which then
    /// stays unchanged (virt-fw-vars -o, --output-json, --output-aws).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Format of the output: json, fd, aws or qcow2 (qcow2 needs qemu-img,
    /// Debian qemu-utils). Default: the output file's current format, else
    /// its extension, else the store's format.
    #[arg(long)]
    pub format: Option<String>,
    /// edk2 image (.fd or qcow2) whose layout an .fd or qcow2 output takes.
    /// Default: the store itself when it is an image, else an existing
    /// output image, else a new image of --layout.
    #[arg(long)]
    pub template: Option<PathBuf>,
    /// Layout of a new image when there is no template: ovmf-4m
    /// (OVMF_VARS_4M.fd, 528 KiB), ovmf-2m (OVMF_VARS.fd, 128 KiB) or aavmf
    /// (AAVMF_VARS.fd, 64 MiB).
    #[arg(long, default_value = "ovmf-4m")]
    pub layout: String,
    /// Start from an empty store when the store file does not exist
    /// (without it a missing file is an error).
    #[arg(long)]
    pub create: bool,
    /// Keep the output file's inode (write in place instead of replacing
    /// it), for files handed over by libvirt.
    #[arg(long)]
    pub in_place: bool,
}

/// A store as read.
pub struct Loaded {
    pub format: Format,
    pub vars: Vec<Variable>,
    /// The raw edk2 image (qcow2 unwrapped), when the store is one.
    pub image: Option<Vec<u8>>,
}

fn at(path: &Path, e: impl std::fmt::Display) -> String {
    format!("{}: {e}", path.display())
}

/// Reads at most `limit` bytes of `path`, refusing a larger file (exit
/// status "refused") from its size, before reading it.
pub fn read_bounded(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>, CliError> {
    let file = File::open(path).map_err(|e| at(path, e))?;
    let len = file.metadata().map_err(|e| at(path, e))?.len();
    if len > limit {
        return Err(CliError::Refused(at(
            path,
            format!("{len} bytes is larger than {what} can be ({limit} bytes at most)"),
        )));
    }
    let mut bytes = Vec::new();
    // A file that grows while it is read is still cut at the limit.
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| at(path, e))?;
    if bytes.len() as u64 > limit {
        return Err(CliError::Refused(at(
            path,
            format!("larger than {what} can be ({limit} bytes at most)"),
        )));
    }
    Ok(bytes)
}

/// The etcd store URL `path` is, if it is one (README "Running a fleet";
/// TLS files in its query: `?cacert=F&cert=F&key=F`).
fn etcd_url(path: &Path) -> Option<&str> {
    path.to_str().filter(|s| uefi_vars_etcd::is_etcd_url(s))
}

/// Connects to an etcd store without owning it.
fn open_etcd(url: &str) -> Result<uefi_vars_etcd::EtcdStore, String> {
    let parsed = uefi_vars_etcd::EtcdUrl::parse(url).map_err(|e| e.to_string())?;
    uefi_vars_etcd::EtcdStore::connect(&parsed, uefi_vars_etcd::EtcdOptions::default())
        .map_err(|e| e.to_string())
}

fn read_etcd(url: &str, create: bool) -> Result<Loaded, String> {
    let mut etcd = open_etcd(url)?;
    let vars = etcd.load_vars().map_err(|e| e.to_string())?;
    if !create && !etcd.exists() {
        return Err(format!(
            "{}: no such store (pass --create to start an empty one)",
            etcd.label()
        ));
    }
    Ok(Loaded {
        format: Format::Json,
        vars,
        image: None,
    })
}

/// Reads a store; a missing file is an empty store only with `create`.
pub fn read_store(path: &Path, create: bool) -> Result<Loaded, String> {
    if let Some(url) = etcd_url(path) {
        return read_etcd(url, create);
    }
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if create {
                return Ok(Loaded {
                    format: Format::from_extension(path).unwrap_or(Format::Json),
                    vars: Vec::new(),
                    image: None,
                });
            }
            return Err(at(
                path,
                "no such store (pass --create to start an empty one)",
            ));
        }
        Err(e) => return Err(at(path, e)),
        Ok(m) if m.is_dir() => return Err(at(path, "is a directory, not a store file")),
        Ok(_) => {}
    }
    let bytes =
        read_bounded(path, MAX_STORE_FILE, "a variable store").map_err(|e| e.to_string())?;
    decode_file(path, &bytes)
}

fn decode_file(path: &Path, bytes: &[u8]) -> Result<Loaded, String> {
    let format =
        formats::detect(bytes).ok_or_else(|| at(path, formats::StoreFormatError::Unknown))?;
    let raw = if format == Format::Qcow2 {
        qcow2_to_raw(path)?
    } else {
        bytes.to_vec()
    };
    let inner = if format == Format::Qcow2 {
        Format::Edk2
    } else {
        format
    };
    let vars = if inner == Format::Json {
        // The JSON file with the journal `serve` appends beside it replayed
        // (README "Durable writes"): the same merged state every reader sees.
        let mut file = JsonFile::new(path);
        // The error names its file (the store or its journal) itself.
        let vars = file.load().map_err(|e| match e.path() {
            Some(_) => e.to_string(),
            None => at(path, e),
        })?;
        while let Some(w) = file.take_warning() {
            eprintln!("uefi-vars: warning: {w}");
        }
        vars
    } else {
        formats::decode(inner, &raw).map_err(|e| at(path, e))?
    };
    let image = matches!(inner, Format::Edk2).then_some(raw);
    Ok(Loaded {
        format,
        vars,
        image,
    })
}

fn qemu_img(args: &[&std::ffi::OsStr]) -> Result<(), String> {
    let out = Command::new("qemu-img").args(args).output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            "qcow2 images need qemu-img, which is not installed (Debian: apt-get install qemu-utils)"
                .to_string()
        } else {
            format!("qemu-img: {e}")
        }
    })?;
    if !out.status.success() {
        return Err(format!(
            "qemu-img {}: {}",
            args.iter()
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

fn qcow2_to_raw(path: &Path) -> Result<Vec<u8>, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
    let raw = dir.path().join("image.raw");
    qemu_img(&[
        "convert".as_ref(),
        "-f".as_ref(),
        "qcow2".as_ref(),
        "-O".as_ref(),
        "raw".as_ref(),
        path.as_os_str(),
        raw.as_os_str(),
    ])
    .map_err(|e| at(path, e))?;
    read_bounded(&raw, MAX_STORE_FILE, "a variable store").map_err(|_| {
        at(
            path,
            format!("the image inside is larger than {MAX_STORE_FILE} bytes"),
        )
    })
}

/// Parses `--layout`.
pub fn parse_layout(text: &str) -> Result<edk2::Layout, String> {
    edk2::Layout::ALL
        .into_iter()
        .find(|l| l.to_string() == text.to_ascii_lowercase())
        .ok_or_else(|| format!("unknown layout {text:?} (ovmf-4m, ovmf-2m or aavmf)"))
}

/// Where and how the result is written.
pub struct Target {
    pub path: PathBuf,
    pub format: Format,
    /// For .fd and qcow2 output: the image to write into.
    pub template: Option<Vec<u8>>,
    pub mode: WriteMode,
}

/// Resolves the output: path, format and template.
pub fn target(
    output: &Path,
    format: Option<&str>,
    template: Option<&Path>,
    layout: &str,
    input: &Loaded,
    in_place: bool,
) -> Result<Target, String> {
    let existing = match std::fs::metadata(output) {
        Ok(m) if m.is_file() => Some(decode_file(
            output,
            &read_bounded(output, MAX_STORE_FILE, "a variable store").map_err(|e| e.to_string())?,
        )),
        _ => None,
    };
    let format = match format {
        _ if etcd_url(output).is_some() => match format.map(Format::from_name) {
            None | Some(Some(Format::Json)) => Format::Json,
            _ => return Err("an etcd store holds the JSON format only (--format json)".into()),
        },
        Some(f) => Format::from_name(f)
            .ok_or_else(|| format!("unknown format {f:?} (json, fd, aws or qcow2)"))?,
        None => match &existing {
            Some(Ok(l)) => l.format,
            _ => Format::from_extension(output).unwrap_or(input.format),
        },
    };
    let template = match format {
        Format::Edk2 | Format::Qcow2 => Some(match template {
            Some(t) => read_store(t, false)?
                .image
                .ok_or_else(|| at(t, "not an edk2 flash image, so it cannot be a template"))?,
            None => match (
                &input.image,
                existing.and_then(Result::ok).and_then(|l| l.image),
            ) {
                (Some(image), _) => image.clone(),
                (None, Some(image)) => image,
                (None, None) => edk2::blank(parse_layout(layout)?),
            },
        }),
        _ => None,
    };
    Ok(Target {
        path: output.to_path_buf(),
        format,
        template,
        mode: if in_place {
            WriteMode::InPlace
        } else {
            WriteMode::AtomicReplace
        },
    })
}

/// Refuses to write a file without any write permission bit (a 0444 store
/// is one its owner protected; renaming over it would ignore that).
pub fn check_writable(path: &Path) -> Result<(), CliError> {
    match std::fs::metadata(path) {
        Ok(m) if m.permissions().readonly() => Err(CliError::Refused(at(
            path,
            "the store file is read-only; not replacing it (make it writable first if that is what you want)",
        ))),
        _ => Ok(()),
    }
}

/// Held while a command edits a store.
pub struct StoreLock(#[allow(dead_code)] Option<File>);

/// The lock file `uefi-vars serve` holds for its store (`.NAME.lock`
/// beside it, crates/uefi-vars-serve/src/server.rs lock_store): taken
/// without waiting, held until the returned lock is dropped. For an etcd
/// store: refused while a service owns it (its ownership key is there);
/// the write itself is conditioned on that again.
pub fn lock(path: &Path) -> Result<StoreLock, CliError> {
    if let Some(url) = etcd_url(path) {
        let etcd = open_etcd(url)?;
        return match etcd.current_owner().map_err(|e| e.to_string())? {
            Some(owner) => Err(CliError::Refused(
                uefi_vars_etcd::EtcdError::Owned {
                    store: etcd.label().to_string(),
                    owner,
                }
                .to_string(),
            )),
            None => Ok(StoreLock(None)),
        };
    }
    lock_file(path).map(|f| StoreLock(Some(f)))
}

fn lock_file(path: &Path) -> Result<File, CliError> {
    let name = path
        .file_name()
        .ok_or_else(|| at(path, "not a file name"))?;
    let mut lock_name = std::ffi::OsString::from(".");
    lock_name.push(name);
    lock_name.push(".lock");
    let lock_path = path.with_file_name(lock_name);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(|e| {
            at(
                path,
                format!(
                    "cannot create the lock file {} beside it: {e}",
                    lock_path.display()
                ),
            )
        })?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(file),
        Err(rustix::io::Errno::WOULDBLOCK) => Err(CliError::Refused(at(
            path,
            format!(
                "the store is in use by a running `uefi-vars serve` (or another uefi-vars \
                 command) that holds {}; a write now would be overwritten by the service: \
                 stop the VM first",
                lock_path.display()
            ),
        ))),
        Err(e) => Err(at(&lock_path, format!("lock: {e}")).into()),
    }
}

/// Writes `vars` (in order) to the target.
pub fn write_store(t: &Target, vars: &[&Variable]) -> Result<(), CliError> {
    if let Some(url) = etcd_url(&t.path) {
        let mut etcd = open_etcd(url)?;
        etcd.load_vars().map_err(|e| e.to_string())?;
        return etcd.replace(vars).map_err(|e| match e {
            uefi_vars_etcd::EtcdError::Owned { .. }
            | uefi_vars_etcd::EtcdError::Conflict { .. } => CliError::Refused(e.to_string()),
            e => CliError::Failed(e.to_string()),
        });
    }
    let refuse = |e: &dyn std::fmt::Display| CliError::Refused(at(&t.path, e));
    match t.format {
        Format::Json => JsonFile::with_mode(&t.path, t.mode)
            .save(vars)
            .map_err(|e| CliError::Failed(name_user_file(&t.path, e))),
        Format::Aws => {
            let text = formats::aws::encode(vars).map_err(|e| refuse(&e))?;
            Ok(write_file(&t.path, text.as_bytes(), t.mode)?)
        }
        Format::Edk2 | Format::Qcow2 => {
            let template = t.template.as_deref().unwrap_or_default();
            let image = edk2::encode_into(template, vars).map_err(|e| match e {
                edk2::Edk2Error::TooLarge { .. } | edk2::Edk2Error::Unencodable { .. } => {
                    refuse(&e)
                }
                e => CliError::Failed(at(&t.path, e)),
            })?;
            if t.format == Format::Edk2 {
                Ok(write_file(&t.path, &image, t.mode)?)
            } else {
                Ok(write_qcow2(&t.path, &image)?)
            }
        }
        _ => Err(format!("cannot write format {}", t.format).into()),
    }
}

/// A save error naming the user's file first, not the temporary file the
/// atomic replacement writes.
fn name_user_file(user: &Path, e: uefi_vars::persist::PersistError) -> String {
    match e.path() {
        Some(p) if p != user => format!(
            "{}: the new content could not be written ({e})",
            user.display()
        ),
        _ => e.to_string(),
    }
}

fn write_qcow2(path: &Path, image: &[u8]) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
    let raw = dir.path().join("image.raw");
    std::fs::write(&raw, image).map_err(|e| at(&raw, e))?;
    let tmp = sibling(path, "tmp");
    // virt-fw-vars writes qcow2 with 4 KiB clusters, sparse.
    let res = qemu_img(&[
        "convert".as_ref(),
        "-f".as_ref(),
        "raw".as_ref(),
        "-O".as_ref(),
        "qcow2".as_ref(),
        "-o".as_ref(),
        "cluster_size=4096".as_ref(),
        "-S".as_ref(),
        "4096".as_ref(),
        raw.as_os_str(),
        tmp.as_os_str(),
    ])
    .and_then(|()| {
        File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| at(&tmp, e))
    })
    .and_then(|()| std::fs::rename(&tmp, path).map_err(|e| at(path, e)));
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res.map_err(|e| at(path, e))?;
    sync_dir(path)
}

fn sibling(path: &Path, what: &str) -> PathBuf {
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(format!(".{what}.{}", std::process::id()));
    path.with_file_name(name)
}

fn sync_dir(path: &Path) -> Result<(), String> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| at(dir, e))
}

/// Replaces `path` atomically (temporary file, fsync, rename, directory
/// fsync), or rewrites it in place.
pub fn write_file(path: &Path, bytes: &[u8], mode: WriteMode) -> Result<(), String> {
    if mode == WriteMode::InPlace && path.exists() {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| at(path, e))?;
        f.write_all(bytes)
            .and_then(|()| f.set_len(bytes.len() as u64))
            .and_then(|()| f.sync_all())
            .map_err(|e| at(path, e))?;
        return Ok(());
    }
    let tmp = sibling(path, "tmp");
    let res = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        if let Ok(m) = std::fs::metadata(path) {
            std::fs::set_permissions(&tmp, m.permissions())?;
        }
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = res {
        let _ = std::fs::remove_file(&tmp);
        return Err(at(path, e));
    }
    sync_dir(path)
}
