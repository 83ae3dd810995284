//! Holds the rule that untrusted bytes are decoded with the one bounded
//! cursor in `uefi_vars::codec` (issue 9, item 1): no other source file of
//! the workspace turns bytes into integers by hand. A file that must (a
//! register lane, a fixed array) is named below with its reason.

use std::fs;
use std::path::{Path, PathBuf};

/// The decoder itself.
const DECODER: &[&str] = &[
    "crates/uefi-vars/src/codec.rs",
    "crates/uefi-vars/src/codec/reader.rs",
];

/// Files allowed to decode by hand, and why.
const ALLOWED: &[(&str, &str)] = &[
    (
        "crates/uefi-vars/src/time.rs",
        "EFI_TIME accessors over its own 16-byte array at constant offsets",
    ),
    (
        "crates/uefi-vars-device/src/device.rs",
        "register lanes merged into a 4-byte array, then read whole",
    ),
    (
        "crates/uefi-vars-client/examples/vmm_forward.rs",
        "prints a device register the example read, not guest bytes",
    ),
];

const IDIOMS: &[&str] = &["from_le_bytes", "from_be_bytes", "from_ne_bytes"];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name();
        if p.is_dir() {
            // Integration tests build their own inputs; target holds builds.
            if name != "tests" && name != "target" {
                sources(&p, out);
            }
        } else if p.extension().is_some_and(|x| x == "rs") && name != "tests.rs" {
            out.push(p);
        }
    }
}

fn relative(p: &Path) -> String {
    let root = workspace().canonicalize().unwrap();
    let p = p.canonicalize().unwrap();
    p.strip_prefix(&root)
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// Source lines outside comments and `#[cfg(test)]` modules.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let test_module = text.find("#[cfg(test)]\nmod tests").unwrap_or(text.len());
    text[..test_module]
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
        .map(|(i, l)| (i + 1, l))
}

#[test]
fn little_endian_fields_are_decoded_only_in_codec() {
    let root = workspace();
    let mut files = Vec::new();
    for dir in ["crates", "fuzz/src"] {
        sources(&root.join(dir), &mut files);
    }
    assert!(
        files.len() > 50,
        "found only {} source files under {}",
        files.len(),
        root.display()
    );
    let mut found = Vec::new();
    for f in &files {
        let rel = relative(f);
        if DECODER.contains(&rel.as_str()) || ALLOWED.iter().any(|(a, _)| *a == rel) {
            continue;
        }
        let text = fs::read_to_string(f).unwrap();
        for (n, line) in code_lines(&text) {
            if IDIOMS.iter().any(|i| line.contains(i)) {
                found.push(format!("{rel}:{n}: {}", line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "decode these with uefi_vars::codec::Reader (or name the file in ALLOWED with a reason):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_allowed_files_still_decode_by_hand() {
    // An entry that no longer applies is removed, so the list stays true.
    for (file, why) in ALLOWED {
        let text = fs::read_to_string(workspace().join(file)).unwrap();
        assert!(
            code_lines(&text).any(|(_, l)| IDIOMS.iter().any(|i| l.contains(i))),
            "{file} ({why}) no longer decodes by hand: drop it from ALLOWED"
        );
    }
}
