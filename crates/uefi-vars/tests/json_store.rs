//! The JSON variable store: QEMU byte-for-byte compatibility, strict
//! decoding, file write modes, and a round-trip property.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use uefi_vars::guid::{Guid, GLOBAL_VARIABLE, IMAGE_SECURITY_DATABASE};
use uefi_vars::name::VarName;
use uefi_vars::persist::json::{decode, encode};
use uefi_vars::persist::{JsonFile, MemoryStorage, PersistError, Storage, WriteMode};
use uefi_vars::time::EfiTime;
use uefi_vars::variable::{attr, Variable};

fn data_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data")
        .join(name)
}

fn var(guid: Guid, name: &str, attributes: u32, data: &[u8]) -> Variable {
    Variable::new(guid, VarName::from(name), attributes, data.to_vec())
}

fn refs(vars: &[Variable]) -> Vec<&Variable> {
    vars.iter().collect()
}

/// Panics with the first differing line, which is far more readable than a
/// whole-file diff of two long strings.
fn assert_same_text(ours: &str, theirs: &str) {
    if ours == theirs {
        return;
    }
    for (n, (a, b)) in ours.lines().zip(theirs.lines()).enumerate() {
        assert_eq!(a, b, "first difference at line {}", n + 1);
    }
    panic!(
        "texts differ in length or trailing bytes: ours {} bytes, theirs {} bytes",
        ours.len(),
        theirs.len()
    );
}

fn find<'a>(vars: &'a [Variable], guid: Guid, name: &str) -> &'a Variable {
    vars.iter()
        .find(|v| v.guid == guid && v.name == VarName::from(name))
        .unwrap_or_else(|| panic!("variable {name} not found"))
}

#[test]
fn qemu_store_round_trips_byte_for_byte() {
    let text = fs::read_to_string(data_file("ovmf-2boots-empty.end.json")).unwrap();
    let vars = decode(text.as_bytes()).unwrap();
    assert_eq!(vars.len(), 15);
    assert_same_text(&encode(&refs(&vars)).unwrap(), &text);

    // Same through the storage trait: a file store loaded and saved again.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vars.json");
    fs::write(&path, &text).unwrap();
    let mut store = JsonFile::new(&path);
    let loaded = store.load().unwrap();
    assert_eq!(loaded, vars);
    store.save(&refs(&loaded)).unwrap();
    assert_same_text(&fs::read_to_string(&path).unwrap(), &text);

    let lang = find(&vars, GLOBAL_VARIABLE, "Lang");
    assert_eq!(lang.attributes, 7);
    assert_eq!(lang.data, b"eng\0");
    let vk = find(&vars, GLOBAL_VARIABLE, "VendorKeysNv");
    assert_eq!(vk.attributes, 0x23);
    assert_eq!(vk.time, EfiTime::default());
    assert_eq!(vk.digest, None);
    // Order is file order.
    assert_eq!(vars[0].name, VarName::from("Boot0000"));
}

#[test]
fn virtfw_varstore_files_load_and_reencode_identically() {
    for (file, count) in [("fedora-boot-1.json", 28), ("fedora-boot-2.json", 28)] {
        let text = fs::read_to_string(data_file(file)).unwrap();
        let vars = decode(text.as_bytes()).unwrap();
        assert_eq!(vars.len(), count, "{file}");
        // Written by the virtfw-varstore crate, in the same key order and
        // layout as QEMU, so re-encoding reproduces the file exactly.
        assert_same_text(&encode(&refs(&vars)).unwrap(), &text);

        let vk = find(&vars, GLOBAL_VARIABLE, "VendorKeysNv");
        assert_eq!((vk.attributes, vk.time), (0x23, EfiTime::default()));
        let mtc = find(
            &vars,
            "eb704011-1402-11d3-8e77-00a0c969723b".parse().unwrap(),
            "MTC",
        );
        assert_eq!(mtc.attributes, 7);
        assert_eq!(mtc.data.len(), 4);
        assert!(vars.iter().all(|v| v.is_non_volatile()));
    }
}

#[test]
fn empty_and_missing_files_are_empty_stores() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none.json");
    assert!(JsonFile::new(&missing).load().unwrap().is_empty());
    assert!(!missing.exists(), "load must not create the file");
    let empty = dir.path().join("empty.json");
    fs::write(&empty, "").unwrap();
    assert!(JsonFile::new(&empty).load().unwrap().is_empty());
    // Blank is not empty: QEMU refuses it too.
    fs::write(&empty, "\n").unwrap();
    assert!(matches!(
        JsonFile::new(&empty).load(),
        Err(PersistError::Format { .. })
    ));
    // A directory in place of the file is an I/O error naming the path.
    let err = JsonFile::new(dir.path()).load().unwrap_err();
    assert!(matches!(err, PersistError::Io { .. }), "{err}");
    assert_eq!(err.path(), Some(dir.path()));
}

const G: &str = "8be4df61-93ca-11d2-aa0d-00e098032b8c";

/// One entry with fields replaced or removed (`None`), as JSON text.
fn entry(fields: &[(&str, Option<&str>)]) -> String {
    let mut base: Vec<(String, String)> = vec![
        ("name".into(), "\"Foo\"".into()),
        ("guid".into(), format!("\"{G}\"")),
        ("attr".into(), "7".into()),
        ("data".into(), "\"0102\"".into()),
    ];
    for (k, v) in fields {
        match (base.iter().position(|(bk, _)| bk == k), v) {
            (Some(i), Some(v)) => base[i].1 = (*v).to_string(),
            (Some(i), None) => {
                base.remove(i);
            }
            (None, Some(v)) => base.push(((*k).to_string(), (*v).to_string())),
            (None, None) => {}
        }
    }
    let body: Vec<String> = base.iter().map(|(k, v)| format!("\"{k}\": {v}")).collect();
    format!("{{{}}}", body.join(", "))
}

fn store_of(entries: &[String]) -> String {
    format!(
        "{{\"version\": 2, \"variables\": [{}]}}",
        entries.join(", ")
    )
}

/// (the bad entry's fields, expected name, expected key, text in message)
type Case = (
    Fields,
    Option<&'static str>,
    Option<&'static str>,
    &'static str,
);
type Fields = Vec<(&'static str, Option<&'static str>)>;

#[test]
fn strict_decoding_names_the_record() {
    let good = entry(&[("name", Some("\"Good\""))]);
    // (the bad entry's fields, expected name, expected key, text in message)
    let cases: Vec<Case> = vec![
        (vec![("name", None)], None, Some("name"), "missing"),
        (vec![("guid", None)], Some("Foo"), Some("guid"), "missing"),
        (vec![("attr", None)], Some("Foo"), Some("attr"), "missing"),
        (vec![("data", None)], Some("Foo"), Some("data"), "missing"),
        (
            vec![("name", Some("7"))],
            None,
            Some("name"),
            "not a string",
        ),
        (
            vec![("name", Some("\"\""))],
            Some(""),
            Some("name"),
            "empty name",
        ),
        (
            vec![("name", Some("\"A\\u0000B\""))],
            Some("A\0B"),
            Some("name"),
            "NUL",
        ),
        (
            vec![("name", Some("\"\u{1F600}\""))],
            Some("\u{1F600}"),
            Some("name"),
            "outside UCS-2",
        ),
        (
            vec![("guid", Some("\"8be4df61-93ca-11d2-aa0d\""))],
            Some("Foo"),
            Some("guid"),
            "invalid GUID",
        ),
        (
            vec![("guid", Some("null"))],
            Some("Foo"),
            Some("guid"),
            "not a string",
        ),
        (
            vec![("attr", Some("4294967296"))],
            Some("Foo"),
            Some("attr"),
            "does not fit in 32 bits",
        ),
        (
            vec![("attr", Some("-1"))],
            Some("Foo"),
            Some("attr"),
            "not an unsigned integer",
        ),
        (
            vec![("attr", Some("7.5"))],
            Some("Foo"),
            Some("attr"),
            "not an unsigned integer",
        ),
        (
            vec![("attr", Some("\"7\""))],
            Some("Foo"),
            Some("attr"),
            "not a number",
        ),
        (
            vec![("attr", Some("71"))],
            Some("Foo"),
            Some("attr"),
            "APPEND_WRITE",
        ),
        (
            vec![("data", Some("\"\""))],
            Some("Foo"),
            Some("data"),
            "empty",
        ),
        (
            vec![("data", Some("\"012\""))],
            Some("Foo"),
            Some("data"),
            "odd number of hex digits",
        ),
        (
            vec![("data", Some("\"zz\""))],
            Some("Foo"),
            Some("data"),
            "non-hex",
        ),
        (
            vec![("data", Some("\"01 02\""))],
            Some("Foo"),
            Some("data"),
            "non-hex",
        ),
        (
            vec![("data", Some("[1]"))],
            Some("Foo"),
            Some("data"),
            "not a string",
        ),
        (
            vec![("time", Some("\"00\""))],
            Some("Foo"),
            Some("time"),
            "1 bytes, an EFI_TIME has 16",
        ),
        (
            vec![("time", Some("16"))],
            Some("Foo"),
            Some("time"),
            "not a string",
        ),
        (
            vec![("time", Some("\"e907010100000000000000000000000\""))],
            Some("Foo"),
            Some("time"),
            "odd",
        ),
        (
            vec![("time", Some("\"e90701010000000000000000000000000000\""))],
            Some("Foo"),
            Some("time"),
            "18 bytes",
        ),
        (
            vec![("time", Some("\"x9070101000000000000000000000000\""))],
            Some("Foo"),
            Some("time"),
            "non-hex",
        ),
        (
            vec![("digest", Some("\"abc\""))],
            Some("Foo"),
            Some("digest"),
            "odd",
        ),
        (
            vec![("digest", Some("\"\""))],
            Some("Foo"),
            Some("digest"),
            "empty",
        ),
        (
            vec![("digest", Some("\"0g\""))],
            Some("Foo"),
            Some("digest"),
            "non-hex",
        ),
        (
            vec![("timestamp", Some("\"00\""))],
            Some("Foo"),
            Some("timestamp"),
            "unknown key",
        ),
    ];
    for (fields, name, field, text) in cases {
        let bad = entry(&fields);
        let doc = store_of(&[good.clone(), bad.clone()]);
        let err = MemoryStorage::from_text(doc.clone()).load().unwrap_err();
        assert_eq!(err.record_index(), Some(1), "{bad}: {err}");
        assert_eq!(err.record_name(), name, "{bad}: {err}");
        assert_eq!(err.record_field(), field, "{bad}: {err}");
        let msg = err.to_string();
        assert!(msg.contains(text), "{bad}: {msg:?} lacks {text:?}");
        assert!(msg.contains("variables[1]"), "{msg}");

        // The file variant names the file too.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.json");
        fs::write(&path, &doc).unwrap();
        let err = JsonFile::new(&path).load().unwrap_err();
        assert_eq!(err.path(), Some(path.as_path()));
        assert!(
            err.to_string().starts_with(&path.display().to_string()),
            "{err}"
        );
        assert_eq!(err.record_index(), Some(1));
    }
}

#[test]
fn strict_decoding_of_duplicates_and_structure() {
    let a = entry(&[("name", Some("\"Boot0001\""))]);
    // Same GUID and name twice.
    let err = MemoryStorage::from_text(store_of(&[a.clone(), entry(&[]), a.clone()]))
        .load()
        .unwrap_err();
    assert_eq!(err.record_index(), Some(2));
    assert_eq!(err.record_name(), Some("Boot0001"));
    assert!(
        err.to_string().contains("duplicate of variables[0]"),
        "{err}"
    );
    // Same name, other GUID: fine.
    let other = entry(&[
        ("name", Some("\"Boot0001\"")),
        ("guid", Some("\"d719b2cb-3d3a-4596-a3bc-dad00e67656f\"")),
    ]);
    assert_eq!(
        MemoryStorage::from_text(store_of(&[a.clone(), other]))
            .load()
            .unwrap()
            .len(),
        2
    );
    // A key twice in one entry (serde_json's Value would keep the last).
    let twice = entry(&[]).replace("}", ", \"data\": \"03\"}");
    let err = MemoryStorage::from_text(store_of(&[twice]))
        .load()
        .unwrap_err();
    assert_eq!(err.record_field(), Some("data"));
    assert!(err.to_string().contains("twice"), "{err}");
    // Entry not an object.
    let err = MemoryStorage::from_text(store_of(&["[]".into()]))
        .load()
        .unwrap_err();
    assert_eq!(err.record_index(), Some(0));
    assert!(err.to_string().contains("not an object"), "{err}");

    for (doc, text) in [
        ("{\"version\": 2, \"variables\": [", "invalid JSON"),
        ("{\"version\": 2, \"variables\": []} x", "invalid JSON"),
        ("[]", "not an object"),
        ("{\"version\": 2}", "missing top-level key \"variables\""),
        (
            "{\"version\": 3, \"variables\": []}",
            "unsupported \"version\" 3",
        ),
        (
            "{\"version\": \"2\", \"variables\": []}",
            "unsupported \"version\"",
        ),
        ("{\"version\": 2, \"variables\": {}}", "not an array"),
        (
            "{\"version\": 2, \"variables\": [], \"extra\": 1}",
            "unknown top-level key",
        ),
        (
            "{\"version\": 2, \"version\": 2, \"variables\": []}",
            "appears twice",
        ),
        ("{\"variables\": [{\"name\": \"\\ud800\"}]}", "invalid JSON"),
        ("\u{feff}{\"variables\": []}", "invalid JSON"),
    ] {
        let err = MemoryStorage::from_text(doc).load().unwrap_err();
        assert!(err.to_string().contains(text), "{doc}: {err}");
        assert_eq!(err.record_index(), None);
    }
    // Version absent is accepted.
    assert!(MemoryStorage::from_text("{\"variables\": []}")
        .load()
        .unwrap()
        .is_empty());
}

#[test]
fn time_and_digest_are_loaded() {
    let doc = store_of(&[entry(&[
        ("attr", Some("39")),
        ("time", Some("\"e9070101000000000000000000000000\"")),
        ("digest", Some(&format!("\"{}\"", "ab".repeat(32)))),
    ])]);
    let vars = MemoryStorage::from_text(doc).load().unwrap();
    assert_eq!(vars[0].time.year(), 2025);
    assert_eq!(vars[0].time.month(), 1);
    assert_eq!(vars[0].digest, Some(vec![0xab; 32]));
    // Absent time on a time-based variable: zero (and written back as zero).
    let doc = store_of(&[entry(&[("attr", Some("39"))])]);
    let vars = MemoryStorage::from_text(doc).load().unwrap();
    assert_eq!(vars[0].time, EfiTime::default());
    assert!(encode(&refs(&vars))
        .unwrap()
        .contains("\"time\": \"00000000000000000000000000000000\""));
}

#[test]
fn non_ascii_names_survive_save_and_load() {
    let vars = vec![
        var(GLOBAL_VARIABLE, "Bööt", 7, &[1]),
        var(GLOBAL_VARIABLE, "变量", 7, &[2]),
        var(
            IMAGE_SECURITY_DATABASE,
            "Ελληνικά \"q\" \\ \u{ffff}",
            3,
            &[3],
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut store = JsonFile::new(dir.path().join("v.json"));
    store.save(&refs(&vars)).unwrap();
    assert_eq!(store.load().unwrap(), vars);
    let text = fs::read_to_string(store.path()).unwrap();
    assert!(
        text.is_ascii(),
        "non-ASCII is escaped as QEMU's writer would"
    );
    assert!(text.contains("\"B\\u00F6\\u00F6t\""), "{text}");
}

#[test]
fn volatile_variables_are_not_written() {
    let vars = vec![
        var(GLOBAL_VARIABLE, "Keep1", 7, &[1]),
        var(GLOBAL_VARIABLE, "Volatile", 6, &[2]),
        var(GLOBAL_VARIABLE, "Keep2", 3, &[3]),
    ];
    let mut mem = MemoryStorage::new();
    mem.save(&refs(&vars)).unwrap();
    assert!(!mem.text().unwrap().contains("Volatile"));
    let dir = tempfile::tempdir().unwrap();
    for mode in [WriteMode::AtomicReplace, WriteMode::InPlace] {
        let mut store = JsonFile::with_mode(dir.path().join(format!("{mode:?}.json")), mode);
        store.save(&refs(&vars)).unwrap();
        let loaded = store.load().unwrap();
        let names: Vec<String> = loaded.iter().map(|v| v.name.to_string()).collect();
        assert_eq!(names, ["Keep1", "Keep2"]);
        assert_eq!(
            fs::read_to_string(store.path()).unwrap(),
            mem.text().unwrap()
        );
    }
}

fn dir_entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn atomic_replace_preserves_mode_and_leaves_no_temp() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vars.json");
    fs::write(&path, "").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
    let ino = fs::metadata(&path).unwrap().ino();

    let v1 = vec![var(GLOBAL_VARIABLE, "A", 7, &[1])];
    let mut store = JsonFile::new(&path);
    assert_eq!(store.mode(), WriteMode::AtomicReplace);
    store.save(&refs(&v1)).unwrap();
    let meta = fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o640);
    assert_ne!(meta.ino(), ino, "atomic replace makes a new file");
    assert_eq!(dir_entries(dir.path()), ["vars.json"]);
    assert_eq!(store.load().unwrap(), v1);

    // A new file, twice in a row.
    let fresh = dir.path().join("new.json");
    let mut store = JsonFile::new(&fresh);
    store.save(&refs(&v1)).unwrap();
    store.save(&[]).unwrap();
    assert!(store.load().unwrap().is_empty());
    assert_eq!(dir_entries(dir.path()), ["new.json", "vars.json"]);

    // Through a symlink: the target is replaced, the link stays.
    let link = dir.path().join("link.json");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    JsonFile::new(&link).save(&[]).unwrap();
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(JsonFile::new(&path).load().unwrap().is_empty());
    assert_eq!(
        dir_entries(dir.path()),
        ["link.json", "new.json", "vars.json"]
    );
}

#[test]
fn atomic_replace_failures_keep_the_old_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vars.json");
    let old = vec![var(GLOBAL_VARIABLE, "Old", 7, &[1])];
    JsonFile::new(&path).save(&refs(&old)).unwrap();
    let old_text = fs::read(&path).unwrap();

    // Variables that cannot be encoded: nothing is touched.
    let bad = Variable::new(
        GLOBAL_VARIABLE,
        VarName::from_units(vec![0xd800]),
        7,
        vec![1],
    );
    let err = JsonFile::new(&path).save(&[&bad]).unwrap_err();
    assert_eq!(err.record_index(), Some(0));
    assert_eq!(err.path(), Some(path.as_path()));
    assert_eq!(fs::read(&path).unwrap(), old_text);
    assert_eq!(dir_entries(dir.path()), ["vars.json"]);

    // The target is a (non-empty) directory: the rename fails, the directory
    // and its content are untouched, the temporary file is removed.
    let target_dir = dir.path().join("store.json");
    fs::create_dir(&target_dir).unwrap();
    fs::write(target_dir.join("keep"), "x").unwrap();
    let err = JsonFile::new(&target_dir).save(&refs(&old)).unwrap_err();
    assert!(matches!(err, PersistError::Io { .. }), "{err}");
    assert!(err.to_string().contains("store.json"), "{err}");
    assert_eq!(dir_entries(&target_dir), ["keep"]);
    assert_eq!(dir_entries(dir.path()), ["store.json", "vars.json"]);

    // The directory is gone: the error names the path.
    let gone = tempfile::tempdir().unwrap();
    let gone_path = gone.path().join("vars.json");
    let mut store = JsonFile::new(&gone_path);
    drop(gone);
    let err = store.save(&refs(&old)).unwrap_err();
    assert!(matches!(err, PersistError::Io { .. }), "{err}");
    assert!(err.to_string().contains("create temporary file"), "{err}");

    // The old store survived all of it.
    assert_eq!(JsonFile::new(&path).load().unwrap(), old);
}

#[test]
fn in_place_keeps_the_inode_and_truncates() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vars.json");
    fs::write(&path, "x".repeat(10_000)).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    let ino = fs::metadata(&path).unwrap().ino();

    let mut store = JsonFile::with_mode(&path, WriteMode::InPlace);
    let big: Vec<Variable> = (0..20)
        .map(|i| var(GLOBAL_VARIABLE, &format!("Var{i}"), 7, &[i as u8; 64]))
        .collect();
    store.save(&refs(&big)).unwrap();
    assert_eq!(store.load().unwrap(), big);
    let small = vec![var(GLOBAL_VARIABLE, "Small", 7, &[1])];
    store.save(&refs(&small)).unwrap();
    let text = fs::read_to_string(&path).unwrap();
    assert_eq!(
        text,
        encode(&refs(&small)).unwrap(),
        "old tail truncated away"
    );
    let meta = fs::metadata(&path).unwrap();
    assert_eq!(meta.ino(), ino);
    assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
    assert_eq!(dir_entries(dir.path()), ["vars.json"]);

    // Created when missing.
    let fresh = dir.path().join("fresh.json");
    JsonFile::with_mode(&fresh, WriteMode::InPlace)
        .save(&refs(&small))
        .unwrap();
    assert_eq!(JsonFile::new(&fresh).load().unwrap(), small);
}

// Linux always has /dev/full (character device 1:7); elsewhere the test
// has nothing to write to and is left out rather than passing empty.
#[cfg(target_os = "linux")]
#[test]
fn in_place_write_errors_are_returned() {
    // Writing to /dev/full fails with ENOSPC.
    let full = Path::new("/dev/full");
    assert!(full.exists(), "no /dev/full on this Linux system");
    let v = vec![var(GLOBAL_VARIABLE, "A", 7, &[1])];
    let err = JsonFile::with_mode(full, WriteMode::InPlace)
        .save(&refs(&v))
        .unwrap_err();
    assert!(matches!(err, PersistError::Io { .. }), "{err}");
    assert_eq!(err.path(), Some(full));
    assert!(err.to_string().contains("write"), "{err}");
    // The parent directory does not exist.
    let dir = tempfile::tempdir().unwrap();
    let err = JsonFile::with_mode(dir.path().join("no/such/file"), WriteMode::InPlace)
        .save(&refs(&v))
        .unwrap_err();
    assert!(matches!(err, PersistError::Io { .. }), "{err}");
}

// ---------------------------------------------------------------------------
// Property: encode → decode is the identity.

fn name_unit() -> impl Strategy<Value = u16> {
    prop_oneof![
        3 => 0x20u16..0x7f,
        1 => 1u16..0x20,
        2 => 0x7fu16..0xd800,
        1 => 0xe000u16..=0xffff,
    ]
}

fn variable() -> impl Strategy<Value = Variable> {
    (
        prop::collection::vec(name_unit(), 1..12),
        any::<[u8; 16]>(),
        any::<u32>(),
        prop::collection::vec(any::<u8>(), 1..48),
        any::<[u8; 16]>(),
        prop::option::of(any::<[u8; 32]>()),
    )
        .prop_map(|(units, guid, attributes, data, time, digest)| {
            let attributes = attributes & !attr::APPEND_WRITE;
            let mut v = Variable::new(Guid(guid), VarName::from_units(units), attributes, data);
            if v.is_time_auth() {
                v.time = EfiTime(time);
            }
            v.digest = digest.map(|d| d.to_vec());
            v
        })
}

fn unique_variables() -> impl Strategy<Value = Vec<Variable>> {
    prop::collection::vec(variable(), 0..12).prop_map(|vars| {
        let mut seen = std::collections::HashSet::new();
        vars.into_iter().filter(|v| seen.insert(v.key())).collect()
    })
}

proptest! {
    #[test]
    fn encode_decode_is_identity(vars in unique_variables()) {
        let text = encode(&refs(&vars)).unwrap();
        prop_assert!(text.is_ascii());
        let back = decode(text.as_bytes()).unwrap();
        prop_assert_eq!(&back, &vars);
        prop_assert_eq!(encode(&refs(&back)).unwrap(), text);
    }

    #[test]
    fn memory_storage_keeps_exactly_the_non_volatile(vars in unique_variables()) {
        let mut m = MemoryStorage::new();
        m.save(&refs(&vars)).unwrap();
        let expected: Vec<Variable> = vars.iter().filter(|v| v.is_non_volatile()).cloned().collect();
        prop_assert_eq!(m.load().unwrap(), expected);
    }
}
