//! Runs a script through QEMU's `uefi-vars-x64` device with the test guest
//! and collects QEMU's replies and final JSON store.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use uefi_vars::codec;

use crate::script::{encode_script, framing_ok_for, Step, BUFFER_SIZE};
use crate::{guest, OracleError};

const FRAME_MAGIC: u32 = 0x4652_5655; // "UVRF"
const FRAME_BOOT: u32 = 1;
const FRAME_REPLY: u32 = 2;
const FRAME_RESET: u32 = 3;
const FRAME_END: u32 = 4;
const FRAME_ERROR: u32 = 5;
const FRAME_INIT: u32 = 6;
const FRAME_BUFFER_SIZE: u32 = 7;
const FRAME_REPLY_DIFF: u32 = 8;
/// QEMU's exit status when the guest writes 0x10 to isa-debug-exit.
const EXIT_OK: i32 = (0x10 << 1) | 1;

/// How to run QEMU.
#[derive(Clone, Debug)]
pub struct QemuOptions {
    /// The QEMU binary (default `qemu-system-x86_64` from PATH). Not
    /// used when `root` is set.
    pub qemu: PathBuf,
    /// Run the QEMU of this Debian root instead ([`QemuRoot`]).
    pub root: Option<QemuRoot>,
    /// Start the device with `use-pio=on`: the guest then moves every
    /// request through the PIO window instead of DMA, as edk2 does.
    pub pio: bool,
    /// Kill QEMU after this long (default: 60 s + 20 ms per step).
    pub timeout: Option<Duration>,
    /// A prebuilt guest image (default: [`guest::guest_image`]).
    pub guest: Option<PathBuf>,
    /// Keep QEMU's working files (script, debugcon stream, store, log)
    /// in this directory instead of a temporary one.
    pub work_dir: Option<PathBuf>,
    /// The device's `size` property (variable storage; QEMU's default is
    /// 256 KiB, `Config::max_storage`).
    pub size: Option<u64>,
    /// The device's `force-secure-boot` property.
    pub force_secure_boot: bool,
    /// The device's `disable-custom-mode` property.
    pub disable_custom_mode: bool,
    /// Firmware (`-bios`; default: QEMU's SeaBIOS). [`fast_bios`] finds
    /// qboot, which boots and resets the guest about four times faster.
    pub bios: Option<PathBuf>,
    /// Where each run's temporary working directory goes (default: the
    /// system temporary directory). QEMU rewrites and fsyncs the whole
    /// store at every non-volatile write; on a tmpfs ([`fast_scratch`])
    /// that costs nothing.
    pub scratch: Option<PathBuf>,
}

impl Default for QemuOptions {
    fn default() -> Self {
        QemuOptions {
            qemu: PathBuf::from("qemu-system-x86_64"),
            root: None,
            pio: false,
            timeout: None,
            guest: None,
            work_dir: None,
            size: None,
            force_secure_boot: false,
            disable_custom_mode: false,
            bios: None,
            scratch: None,
        }
    }
}

/// Where scripts/install-qemu11.sh puts its Debian trixie root with QEMU
/// 11.1 from trixie-backports.
pub const QEMU11_ROOT: &str = "/var/cache/uefi-vars-qemu11/root";

/// A QEMU installed in a Debian root (a chroot made by mmdebstrap,
/// scripts/install-qemu11.sh) that is run without entering it: the root's
/// own dynamic loader starts the root's `qemu-system-x86_64` with the
/// root's library directories, so none of the host's libraries is used
/// and no chroot(2), bind mount or root privilege is needed at run time;
/// its firmware directories (as the binary itself lists them, `-L help`)
/// are passed with `-L` and its module directory (the device is the
/// module hw-uefi-vars.so in Debian) with QEMU_MODULE_DIR. Files the
/// binary opens by absolute path outside those (none for a `-nographic
/// -nodefaults` machine) would come from the host.
#[derive(Clone, Debug)]
pub struct QemuRoot {
    root: PathBuf,
    loader: PathBuf,
    binary: PathBuf,
    library_path: String,
    modules: Option<PathBuf>,
    data_dirs: Vec<PathBuf>,
}

impl QemuRoot {
    /// Finds the loader, libraries, binary, modules and firmware of the
    /// root; fails when the root has no runnable QEMU.
    pub fn new(root: &Path) -> Result<QemuRoot, OracleError> {
        let missing = |p: &Path| OracleError::Qemu(format!("{} is missing", p.display()));
        // The ELF interpreter path of x86-64 binaries, inside the root.
        let loader = root.join("lib64/ld-linux-x86-64.so.2");
        let binary = root.join("usr/bin/qemu-system-x86_64");
        for p in [&loader, &binary] {
            if !p.is_file() {
                return Err(missing(p));
            }
        }
        let library_path = std::env::join_paths(library_dirs(root))
            .map_err(|e| OracleError::Qemu(format!("library path: {e}")))?
            .to_string_lossy()
            .into_owned();
        let modules = [
            "usr/lib/x86_64-linux-gnu/qemu",
            "usr/lib64/qemu",
            "usr/lib/qemu",
        ]
        .iter()
        .map(|d| root.join(d))
        .find(|d| d.is_dir());
        let mut qr = QemuRoot {
            root: root.to_path_buf(),
            loader,
            binary,
            library_path,
            modules,
            data_dirs: Vec::new(),
        };
        let out =
            qr.command().args(["-L", "help"]).output().map_err(|e| {
                OracleError::Qemu(format!("cannot run {}: {e}", qr.binary.display()))
            })?;
        if !out.status.success() {
            return Err(OracleError::Qemu(format!(
                "{} -L help: {}",
                qr.binary.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        qr.data_dirs = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.trim().strip_prefix('/').map(|rel| root.join(rel)))
            .filter(|d| d.is_dir())
            .collect();
        Ok(qr)
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A command that runs the root's QEMU; QEMU's own arguments follow.
    /// The firmware directories come first on the command line, so QEMU
    /// searches them before its compiled-in (host) directories.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.loader);
        cmd.arg("--library-path")
            .arg(&self.library_path)
            .arg(&self.binary);
        for d in &self.data_dirs {
            cmd.arg("-L").arg(d);
        }
        if let Some(m) = &self.modules {
            cmd.env("QEMU_MODULE_DIR", m);
        }
        cmd
    }
}

/// The root's library directories: the default multiarch ones and those of
/// its /etc/ld.so.conf.d, each inside the root.
fn library_dirs(root: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = ["usr/lib/x86_64-linux-gnu", "lib/x86_64-linux-gnu"]
        .iter()
        .map(|d| root.join(d))
        .collect();
    let conf = root.join("etc/ld.so.conf.d");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&conf)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    for f in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "conf"))
    {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        for rel in text.lines().filter_map(|l| l.trim().strip_prefix('/')) {
            let d = root.join(rel);
            if d.is_dir() && !dirs.contains(&d) {
                dirs.push(d);
            }
        }
    }
    dirs.retain(|d| d.is_dir());
    dirs
}

impl QemuOptions {
    /// Options that run the QEMU of a Debian root ([`QemuRoot`]).
    pub fn from_root(root: &Path) -> Result<QemuOptions, OracleError> {
        Ok(QemuOptions {
            root: Some(QemuRoot::new(root)?),
            ..QemuOptions::default()
        })
    }

    /// A command that runs this QEMU; QEMU's own arguments follow.
    pub fn command(&self) -> Command {
        match &self.root {
            Some(r) => r.command(),
            None => Command::new(&self.qemu),
        }
    }

    /// The QEMU binary, for messages.
    pub fn binary(&self) -> &Path {
        self.root.as_ref().map_or(&self.qemu, |r| &r.binary)
    }

    /// `--version`'s first line ([`qemu_version_line`]), asked once per
    /// binary and process.
    pub fn version_line(&self) -> Result<String, OracleError> {
        static SEEN: Mutex<BTreeMap<PathBuf, String>> = Mutex::new(BTreeMap::new());
        let key = self.binary().to_path_buf();
        if let Some(v) = SEEN.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(v);
        }
        let v = version_line_of(self.command(), self.binary())?;
        if let Ok(mut m) = SEEN.lock() {
            m.insert(key, v.clone());
        }
        Ok(v)
    }

    /// (major, minor) of this QEMU.
    pub fn version(&self) -> Result<(u32, u32), OracleError> {
        let line = self.version_line()?;
        parse_version(&line).ok_or_else(|| OracleError::Qemu(format!("no version in {line:?}")))
    }

    /// qboot in one of this QEMU's data directories ([`fast_bios`]).
    pub fn fast_bios(&self) -> Option<PathBuf> {
        fast_bios_of(self.command())
    }
}

/// `/dev/shm` when it is a writable directory (a tmpfs on Linux).
pub fn fast_scratch() -> Option<PathBuf> {
    let dir = Path::new("/dev/shm");
    tempfile::Builder::new()
        .prefix("uefi-vars-probe-")
        .tempdir_in(dir)
        .ok()
        .map(|_| dir.to_path_buf())
}

/// qboot (`qboot.rom` in one of QEMU's data directories, `-L help`), a
/// minimal firmware that runs the multiboot option ROM like SeaBIOS but
/// skips SeaBIOS's device probing: a boot or machine reset of the test
/// guest takes about 25 ms instead of 120 ms under TCG.
pub fn fast_bios(qemu: &Path) -> Option<PathBuf> {
    fast_bios_of(Command::new(qemu))
}

fn fast_bios_of(mut cmd: Command) -> Option<PathBuf> {
    let out = cmd.args(["-L", "help"]).output().ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|dir| Path::new(dir.trim()).join("qboot.rom"))
        .find(|p| p.is_file())
}

/// What QEMU did for one step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Reset,
    Request {
        /// The buffer as sent (normalized, see [`crate::script`]).
        request: Vec<u8>,
        /// CMD_STS after the command (0 success, 0x11, 0x12).
        status: u16,
        /// The buffer the device wrote back; `None` when it refused the
        /// framing and wrote nothing.
        reply: Option<Vec<u8>>,
    },
    /// The guest set BUFFER_SIZE; the size the device then reported.
    BufferSize(u32),
}

/// Result of one QEMU run.
#[derive(Clone, Debug)]
pub struct QemuRun {
    pub outcomes: Vec<Outcome>,
    /// The JSON store file as QEMU left it (empty if it wrote none).
    pub final_store: Vec<u8>,
    /// How many times the guest booted (1 + resets).
    pub boots: u32,
    /// The device's FLAGS register as the guest read it at the first boot.
    pub flags: u32,
    pub elapsed: Duration,
    /// (major, minor) of the QEMU that ran.
    pub version: (u32, u32),
}

/// `qemu-system-x86_64 --version`'s first line, e.g. "QEMU emulator
/// version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)".
pub fn qemu_version_line(qemu: &Path) -> Result<String, OracleError> {
    version_line_of(Command::new(qemu), qemu)
}

fn version_line_of(mut cmd: Command, qemu: &Path) -> Result<String, OracleError> {
    let out = cmd
        .arg("--version")
        .output()
        .map_err(|e| OracleError::Qemu(format!("cannot run {}: {e}", qemu.display())))?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string())
}

/// (major, minor) from a version line.
pub fn parse_version(line: &str) -> Option<(u32, u32)> {
    let rest = line.split("version ").nth(1)?;
    let mut it = rest.split(|c: char| !c.is_ascii_digit());
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((major, minor))
}

/// Whether this QEMU answers GET_PAYLOAD_SIZE with the whole buffer size
/// (QEMU 10.0 to 10.2; `Config::legacy_payload_size`).
pub fn legacy_payload_size(version: (u32, u32)) -> bool {
    version < (11, 0)
}

/// Whether this QEMU leaves policies out of the storage accounting
/// (`Config::legacy_storage_accounting`): measured on 10.0.2 (left out)
/// and 11.1.3 (charged); the releases between are not measured, the line
/// is drawn where `legacy_payload_size` draws it.
pub fn legacy_storage_accounting(version: (u32, u32)) -> bool {
    version < (11, 0)
}

/// The service configuration that answers as this QEMU version with the
/// device's default properties.
pub fn config_for(version: (u32, u32)) -> uefi_vars::Config {
    uefi_vars::Config::default()
        .with_legacy_payload_size(legacy_payload_size(version))
        .with_legacy_storage_accounting(legacy_storage_accounting(version))
}

/// Runs `steps` through QEMU, starting from the JSON store `start_store`
/// (none: QEMU starts with no file and creates it).
pub fn run(
    steps: &[Step],
    start_store: Option<&[u8]>,
    opts: &QemuOptions,
) -> Result<QemuRun, OracleError> {
    let version = opts.version()?;
    let image = match &opts.guest {
        Some(p) => p.clone(),
        None => guest::guest_image(None)?,
    };
    let tmp;
    let dir: &Path = match &opts.work_dir {
        Some(d) => {
            std::fs::create_dir_all(d).map_err(|e| OracleError::io(d, e))?;
            d
        }
        None => {
            let base = opts.scratch.clone().unwrap_or_else(std::env::temp_dir);
            tmp = tempfile::Builder::new()
                .prefix("uefi-vars-qemu-")
                .tempdir_in(&base)
                .map_err(|e| OracleError::io(&base, e))?;
            tmp.path()
        }
    };
    let script_path = dir.join("script.bin");
    let store_path = dir.join("vars.json");
    let debugcon_path = dir.join("debugcon.bin");
    let log_path = dir.join("qemu.log");
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.subsec_nanos() | 1);
    let write = |p: &Path, data: &[u8]| std::fs::write(p, data).map_err(|e| OracleError::io(p, e));
    write(&script_path, &encode_script(steps, nonce))?;
    match start_store {
        Some(text) => write(&store_path, text)?,
        None => {
            let _ = std::fs::remove_file(&store_path);
        }
    }
    let _ = std::fs::remove_file(&debugcon_path);
    let log = std::fs::File::create(&log_path).map_err(|e| OracleError::io(&log_path, e))?;
    let log2 = log.try_clone().map_err(|e| OracleError::io(&log_path, e))?;

    let mut device = format!("uefi-vars-x64,jsonfile={}", store_path.display());
    if opts.pio {
        device.push_str(",use-pio=on");
    }
    if let Some(size) = opts.size {
        device.push_str(&format!(",size={size}"));
    }
    if opts.force_secure_boot {
        device.push_str(",force-secure-boot=on");
    }
    if opts.disable_custom_mode {
        device.push_str(",disable-custom-mode=on");
    }
    let mut cmd = opts.command();
    if let Some(bios) = &opts.bios {
        cmd.arg("-bios").arg(bios);
    }
    cmd.args(["-machine", "q35", "-accel", "tcg", "-m", "64"])
        .args(["-nographic", "-nodefaults", "-no-user-config"])
        .arg("-kernel")
        .arg(&image)
        .args(["-device", &device])
        .arg("-fw_cfg")
        .arg(format!(
            "name=opt/uefivars/script,file={}",
            script_path.display()
        ))
        .arg("-chardev")
        .arg(format!("file,id=uvdc,path={}", debugcon_path.display()))
        .args(["-device", "isa-debugcon,iobase=0xe9,chardev=uvdc"])
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=4"])
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2);
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| OracleError::Qemu(format!("cannot start {}: {e}", opts.binary().display())))?;
    let timeout = opts.timeout.unwrap_or_else(|| {
        Duration::from_secs(60) + Duration::from_millis(20 * steps.len() as u64)
    });
    let status = loop {
        if let Some(s) = child
            .try_wait()
            .map_err(|e| OracleError::Qemu(format!("waiting for QEMU: {e}")))?
        {
            break s;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Err(OracleError::Qemu(format!(
                "QEMU did not finish within {timeout:?}; log: {}",
                read_log(&log_path)
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let elapsed = started.elapsed();
    let stream = std::fs::read(&debugcon_path).unwrap_or_default();
    let frames = parse_frames(&stream);
    if let Some(f) = frames.iter().find(|f| f.kind == FRAME_ERROR) {
        return Err(OracleError::Guest(format!(
            "guest error at step {}: {}",
            f.index,
            String::from_utf8_lossy(&f.data)
        )));
    }
    if status.code() != Some(EXIT_OK) {
        // The first step without an answer (steps.len() if QEMU died at the
        // very end).
        let step = frames
            .iter()
            .filter(|f| {
                matches!(
                    f.kind,
                    FRAME_REPLY | FRAME_REPLY_DIFF | FRAME_RESET | FRAME_BUFFER_SIZE
                )
            })
            .map(|f| f.index as usize + 1)
            .max()
            .unwrap_or(0);
        return Err(OracleError::Crashed {
            step,
            message: format!(
                "QEMU exited with {status} (guest sent {} frames); log: {}",
                frames.len(),
                read_log(&log_path)
            ),
        });
    }
    let (outcomes, boots, flags) = match_frames(steps, &frames)?;
    let final_store = std::fs::read(&store_path).unwrap_or_default();
    Ok(QemuRun {
        outcomes,
        final_store,
        boots,
        flags,
        elapsed,
        version,
    })
}

fn read_log(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let text = text.trim();
    if text.is_empty() {
        "(empty)".to_string()
    } else {
        text.chars().take(2000).collect()
    }
}

#[derive(Debug)]
struct Frame {
    kind: u32,
    index: u32,
    status: u32,
    data: Vec<u8>,
}

/// Splits the debugcon stream into frames (bytes between frames, if any
/// other code wrote to the port, are skipped).
fn parse_frames(mut s: &[u8]) -> Vec<Frame> {
    // Callers read words 0..5 of at least 20 bytes.
    let word =
        |b: &[u8], i: usize| -> u32 { codec::u32_at(b, 4 * i, "frame word").unwrap_or(u32::MAX) };
    let mut out = Vec::new();
    while s.len() >= 20 {
        if word(s, 0) != FRAME_MAGIC {
            s = &s[1..];
            continue;
        }
        let len = word(s, 4) as usize;
        let Some(data) = s.get(20..20 + len) else {
            break;
        };
        out.push(Frame {
            kind: word(s, 1),
            index: word(s, 2),
            status: word(s, 3),
            data: data.to_vec(),
        });
        s = &s[20 + len..];
    }
    out
}

/// The buffer after the command from the request and the changed segments
/// the guest sent (u32 offset, u32 length, bytes; `tools/qemu-guest`).
fn apply_diff(request: &[u8], mut segments: &[u8]) -> Option<Vec<u8>> {
    let mut out = request.to_vec();
    while !segments.is_empty() {
        let mut head = codec::Reader::new(segments);
        let off = head.u32_size("segment offset").ok()?;
        let len = head.u32_size("segment length").ok()?;
        let bytes = segments.get(8..8 + len)?;
        out.get_mut(off..off.checked_add(len)?)?
            .copy_from_slice(bytes);
        segments = &segments[8 + len..];
    }
    Some(out)
}

/// Pairs the frames with the script's steps.
fn match_frames(steps: &[Step], frames: &[Frame]) -> Result<(Vec<Outcome>, u32, u32), OracleError> {
    let bad = |what: String| OracleError::Guest(format!("unexpected guest output: {what}"));
    let mut it = frames.iter().peekable();
    let mut boots = 0;
    let mut flags = None;
    let mut expect_boot = true;
    let mut outcomes = Vec::with_capacity(steps.len());
    // The guest sets 64 KiB at every boot.
    let mut buffer_size = BUFFER_SIZE as u32;
    for (i, step) in steps.iter().enumerate() {
        if expect_boot {
            buffer_size = BUFFER_SIZE as u32;
            match (it.next(), it.next()) {
                (Some(b), Some(init)) if b.kind == FRAME_BOOT && init.kind == FRAME_INIT => {
                    boots += 1;
                    flags.get_or_insert(init.status);
                }
                other => return Err(bad(format!("at step {i}, expected a boot: {other:?}"))),
            }
            expect_boot = false;
        }
        let f = it
            .next()
            .ok_or_else(|| bad(format!("no frame for step {i}")))?;
        if f.index as usize != i {
            return Err(bad(format!("frame for step {} at step {i}", f.index)));
        }
        match step {
            Step::Reset => {
                if f.kind != FRAME_RESET {
                    return Err(bad(format!("step {i} is a reset, frame kind {}", f.kind)));
                }
                outcomes.push(Outcome::Reset);
                expect_boot = true;
            }
            Step::BufferSize(_) => {
                if f.kind != FRAME_BUFFER_SIZE {
                    return Err(bad(format!(
                        "step {i} sets the buffer size, frame kind {}",
                        f.kind
                    )));
                }
                buffer_size = f.status;
                outcomes.push(Outcome::BufferSize(f.status));
            }
            Step::Request(req) => {
                let data = match f.kind {
                    FRAME_REPLY if f.data.len() == req.len() => Some(f.data.clone()),
                    FRAME_REPLY_DIFF => apply_diff(req, &f.data),
                    _ => None,
                };
                let Some(data) = data else {
                    return Err(bad(format!(
                        "step {i}: frame kind {} with {} bytes",
                        f.kind,
                        f.data.len()
                    )));
                };
                if f.status > 0xffff {
                    return Err(OracleError::Guest(format!(
                        "step {i}: transfer failed in the guest ({:#x})",
                        f.status
                    )));
                }
                let status = f.status as u16;
                let reply = framing_ok_for(req, buffer_size).then_some(data);
                outcomes.push(Outcome::Request {
                    request: req.clone(),
                    status,
                    reply,
                });
            }
        }
    }
    if expect_boot {
        match (it.next(), it.next()) {
            (Some(b), Some(init)) if b.kind == FRAME_BOOT && init.kind == FRAME_INIT => {
                boots += 1;
                flags.get_or_insert(init.status);
            }
            other => return Err(bad(format!("at the end, expected a boot: {other:?}"))),
        }
    }
    match it.next() {
        Some(f) if f.kind == FRAME_END => {}
        other => return Err(bad(format!("expected the end frame, got {other:?}"))),
    }
    Ok((outcomes, boots, flags.unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diffs() {
        let req = [1u8, 2, 3, 4, 5, 6];
        let mut seg = Vec::new();
        for (off, bytes) in [(1u32, &[9u8, 9][..]), (5, &[7][..])] {
            seg.extend_from_slice(&off.to_le_bytes());
            seg.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            seg.extend_from_slice(bytes);
        }
        assert_eq!(apply_diff(&req, &seg), Some(vec![1, 9, 9, 4, 5, 7]));
        assert_eq!(apply_diff(&req, &[]), Some(req.to_vec()));
        assert_eq!(apply_diff(&req, &seg[..5]), None);
        let mut past = 5u32.to_le_bytes().to_vec();
        past.extend_from_slice(&2u32.to_le_bytes());
        past.extend_from_slice(&[0, 0]);
        assert_eq!(apply_diff(&req, &past), None);
    }

    #[test]
    fn versions() {
        let l = "QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)";
        assert_eq!(parse_version(l), Some((10, 0)));
        assert!(legacy_payload_size((10, 0)));
        assert!(legacy_payload_size((10, 2)));
        assert!(!legacy_payload_size((11, 1)));
    }
}
