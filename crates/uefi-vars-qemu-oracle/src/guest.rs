//! The test guest (`tools/qemu-guest`): its sources are embedded in this
//! crate and compiled on first use with `gcc -m32 -ffreestanding -nostdlib`
//! and `ld`, into a cache directory keyed by the sources' hash. A prebuilt
//! image can be given instead (`UEFI_VARS_QEMU_GUEST`).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::OracleError;

const GUEST_C: &str = include_str!("../../../tools/qemu-guest/guest.c");
const ENTRY_S: &str = include_str!("../../../tools/qemu-guest/entry.S");
const LINK_LD: &str = include_str!("../../../tools/qemu-guest/link.ld");

/// Environment variable naming a prebuilt guest image to use.
pub const GUEST_ENV: &str = "UEFI_VARS_QEMU_GUEST";

/// Compiler flags of the guest (also in `tools/qemu-guest/build.sh`).
const CFLAGS: &[&str] = &[
    "-m32",
    "-march=i686",
    "-ffreestanding",
    "-nostdlib",
    "-fno-pic",
    "-fno-pie",
    "-fno-stack-protector",
    "-fno-asynchronous-unwind-tables",
    "-mno-sse",
    "-mno-mmx",
    "-mno-80387",
    "-O2",
    "-Wall",
    "-Wextra",
    "-Werror",
];

/// FNV-1a over the embedded sources and flags.
fn source_hash() -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in [GUEST_C, ENTRY_S, LINK_LD, &CFLAGS.join(" ")] {
        for b in part.bytes().chain([0u8]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// The guest image: `UEFI_VARS_QEMU_GUEST` if set, else one built (once)
/// under `cache_dir` (default: the system temporary directory).
pub fn guest_image(cache_dir: Option<&Path>) -> Result<PathBuf, OracleError> {
    if let Some(p) = std::env::var_os(GUEST_ENV) {
        let p = PathBuf::from(p);
        if !p.is_file() {
            return Err(OracleError::Guest(format!(
                "{GUEST_ENV}={} is not a file",
                p.display()
            )));
        }
        return Ok(p);
    }
    let base = cache_dir.map_or_else(std::env::temp_dir, Path::to_path_buf);
    let dir = base.join(format!("uefi-vars-qemu-guest-{:016x}", source_hash()));
    let image = dir.join("guest.elf");
    if image.is_file() {
        return Ok(image);
    }
    std::fs::create_dir_all(&dir).map_err(|e| OracleError::io(&dir, e))?;
    build_guest(&dir, &image)?;
    Ok(image)
}

/// Compiles the embedded sources into `image` (atomically: parallel
/// builders may race, the last rename wins with identical content).
pub fn build_guest(dir: &Path, image: &Path) -> Result<(), OracleError> {
    let work = tempfile::Builder::new()
        .prefix("build-")
        .tempdir_in(dir)
        .map_err(|e| OracleError::io(dir, e))?;
    let w = work.path();
    for (name, text) in [
        ("guest.c", GUEST_C),
        ("entry.S", ENTRY_S),
        ("link.ld", LINK_LD),
    ] {
        let p = w.join(name);
        std::fs::write(&p, text).map_err(|e| OracleError::io(&p, e))?;
    }
    let cc = std::env::var("CC").unwrap_or_else(|_| "gcc".to_string());
    let ld = std::env::var("LD").unwrap_or_else(|_| "ld".to_string());
    for (src, obj) in [("entry.S", "entry.o"), ("guest.c", "guest.o")] {
        run_tool(
            Command::new(&cc)
                .args(CFLAGS)
                .arg("-c")
                .arg(w.join(src))
                .arg("-o")
                .arg(w.join(obj)),
        )?;
    }
    let out = w.join("guest.elf");
    run_tool(
        Command::new(&ld)
            .args(["-m", "elf_i386", "-nostdlib", "-static"])
            .args(["-z", "max-page-size=0x1000", "--no-warn-rwx-segments"])
            .arg("-T")
            .arg(w.join("link.ld"))
            .arg(w.join("entry.o"))
            .arg(w.join("guest.o"))
            .arg("-o")
            .arg(&out),
    )?;
    std::fs::rename(&out, image).map_err(|e| OracleError::io(image, e))?;
    Ok(())
}

fn run_tool(cmd: &mut Command) -> Result<(), OracleError> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .map_err(|e| OracleError::Guest(format!("cannot run {shown}: {e}")))?;
    if !out.status.success() {
        return Err(OracleError::Guest(format!(
            "{shown} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(())
}
