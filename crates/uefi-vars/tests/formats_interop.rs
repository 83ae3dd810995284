//! The edk2 flash image and AWS uefi-data codecs against the real images and
//! tools: Debian's `ovmf` and `qemu-efi-aarch64` images (/usr/share/OVMF,
//! /usr/share/AAVMF), `virt-fw-vars` (PyPI virt-firmware) and `uefivars`
//! (PyPI uefivars, awslabs python-uefivars). scripts/test.sh installs them;
//! a missing one fails these tests (they do not skip).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use uefi_vars::guid::Guid;
use uefi_vars::persist::formats::{aws, edk2};
use uefi_vars::persist::json;
use uefi_vars::time::EfiTime;
use uefi_vars::variable::Variable;

const OVMF: &str = "/usr/share/OVMF";
const AAVMF: &str = "/usr/share/AAVMF";

fn image(dir: &str, name: &str) -> Vec<u8> {
    let path = Path::new(dir).join(name);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}: install Debian's ovmf and qemu-efi-aarch64 packages \
             (scripts/test.sh does; this test does not skip)",
            path.display()
        )
    })
}

fn run(tool: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(tool)
        .args(args)
        .env("PYTHONIOENCODING", "utf-8")
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {tool} ({e}): pip install virt-firmware uefivars (this test does not skip)")
        });
    assert!(
        out.status.success(),
        "{tool} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// (guid, name) -> (attributes, data, time if non-zero), what every tool
/// keeps of a variable.
type Kept = (u32, Vec<u8>, Option<[u8; 16]>);
type Essence = BTreeMap<(String, String), Kept>;

fn essence(vars: &[Variable]) -> Essence {
    vars.iter()
        .map(|v| {
            let time = (v.time != EfiTime::default()).then_some(v.time.0);
            (
                (v.guid.to_string(), v.name.to_string()),
                (v.attributes, v.data.clone(), time),
            )
        })
        .collect()
}

fn virt_fw_vars_json(input: &Path) -> Vec<Variable> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    run(
        "virt-fw-vars",
        &[
            "-i",
            input.to_str().unwrap(),
            "--output-json",
            out.to_str().unwrap(),
        ],
    );
    json::decode(&std::fs::read(out).unwrap()).unwrap()
}

/// `uefivars -i FORMAT -o json`, parsed (its JSON has `timestamp` where
/// QEMU's has `time`).
fn uefivars_json(format: &str, input: &Path) -> Essence {
    let text = run(
        "uefivars",
        &["-i", format, "-I", input.to_str().unwrap(), "-o", "json"],
    );
    let doc: serde_json::Value = serde_json::from_slice(&text).unwrap();
    let list = doc
        .get("variables")
        .and_then(|v| v.as_array())
        .cloned()
        .or_else(|| doc.as_array().cloned())
        .unwrap();
    list.iter()
        .map(|v| {
            let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
            let time = s("timestamp")
                .map(|t| <[u8; 16]>::try_from(json::from_hex(&t).unwrap()).unwrap())
                .filter(|t| t != &[0; 16]);
            let guid: Guid = s("guid").unwrap().parse().unwrap();
            (
                (guid.to_string(), s("name").unwrap()),
                (
                    u32::try_from(v.get("attr").unwrap().as_u64().unwrap()).unwrap(),
                    json::from_hex(&s("data").unwrap()).unwrap(),
                    time,
                ),
            )
        })
        .collect()
}

/// virt-fw-vars drops the nanosecond and zone fields of times; compare what
/// it keeps.
fn without_sub_second(mut e: Essence) -> Essence {
    for (_, (_, _, t)) in e.iter_mut() {
        if let Some(t) = t {
            t[7..16].fill(0);
        }
    }
    e
}

/// Panics with the keys that differ (the maps are too large to print).
#[track_caller]
fn same(a: &Essence, b: &Essence, what: &str) {
    let mut diff = Vec::new();
    for k in a.keys().chain(b.keys()) {
        let (x, y) = (a.get(k), b.get(k));
        if x != y && !diff.iter().any(|(d, _, _)| d == k) {
            let short = |v: Option<&Kept>| {
                v.map(|(at, d, t)| format!("attr {at:#x}, {} data bytes, time {t:?}", d.len()))
                    .unwrap_or_else(|| "absent".into())
            };
            diff.push((k.clone(), short(x), short(y)));
        }
    }
    assert!(
        diff.is_empty(),
        "{what}: {} variables differ: {diff:#?}",
        diff.len()
    );
}

/// uefivars reads edk2's certdb variable into its own certificate list and
/// does not report it as a variable.
fn without_certdb(mut e: Essence) -> Essence {
    e.retain(|(_, name), _| name != "certdb" && name != "certdbv");
    e
}

fn tmp_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn blank_layouts_are_debians_blank_images() {
    assert!(edk2::blank(edk2::Layout::Ovmf2M) == image(OVMF, "OVMF_VARS.fd"));
    assert!(edk2::blank(edk2::Layout::Ovmf4M) == image(OVMF, "OVMF_VARS_4M.fd"));
}

#[test]
fn debian_images_read_like_virt_fw_vars_reads_them() {
    for (dir, name, min_vars) in [
        (OVMF, "OVMF_VARS_4M.ms.fd", 5),
        (OVMF, "OVMF_VARS_4M.fd", 0),
        (OVMF, "OVMF_VARS.ms.fd", 5),
        (AAVMF, "AAVMF_VARS.ms.fd", 5),
    ] {
        let path = Path::new(dir).join(name);
        let ours = edk2::decode(&image(dir, name)).unwrap();
        assert!(ours.variables.len() >= min_vars, "{name}");
        let theirs = virt_fw_vars_json(&path);
        same(
            &without_sub_second(essence(&ours.variables)),
            &without_sub_second(essence(&theirs)),
            &format!("{name}: ours / virt-fw-vars"),
        );
        // uefivars 1.2 refuses ArmVirt images ("Invalid blockmap").
        if dir == OVMF {
            same(
                &without_certdb(essence(&ours.variables)),
                &uefivars_json("edk2", &path),
                &format!("{name}: ours / uefivars"),
            );
        }
    }
}

/// Debian's enrolled images were made by booting the firmware: they hold
/// deleted and superseded copies. Rewritten from their variables (into a
/// blank image of the same layout, or into themselves), they read back the
/// same, and everything outside the variable area is kept byte for byte.
#[test]
fn rewriting_debian_images_keeps_variables_and_the_rest_of_the_image() {
    for (dir, name, layout) in [
        (OVMF, "OVMF_VARS_4M.ms.fd", edk2::Layout::Ovmf4M),
        (OVMF, "OVMF_VARS.ms.fd", edk2::Layout::Ovmf2M),
        (AAVMF, "AAVMF_VARS.ms.fd", edk2::Layout::ArmVirt),
    ] {
        let original = image(dir, name);
        let store = edk2::decode(&original).unwrap();
        assert!(
            store
                .skipped
                .iter()
                .any(|s| s.why == edk2::SkipReason::Obsolete),
            "{name}: expected deleted entries in a booted image"
        );
        let g = store.geometry.clone().unwrap();
        let refs: Vec<&Variable> = store.variables.iter().collect();
        for (what, template) in [("blank", edk2::blank(layout)), ("itself", original.clone())] {
            let out = edk2::encode_into(&template, &refs).unwrap();
            assert_eq!(out.len(), original.len(), "{name} into {what}");
            assert!(
                out[..g.vars_start] == original[..g.vars_start],
                "{name} into {what}"
            );
            assert!(
                out[g.vars_end..] == original[g.vars_end..],
                "{name} into {what}"
            );
            let back = edk2::decode(&out).unwrap();
            assert_eq!(back.variables, store.variables, "{name} into {what}");
            assert!(back.skipped.is_empty(), "{name} into {what}");
        }
    }
}

fn sample_store() -> Vec<Variable> {
    let text = std::fs::read("../../tests/data/ovmf-2boots-empty.end.json").unwrap();
    let mut vars = json::decode(&text).unwrap();
    // Add Secure Boot databases from Debian's enrolled image.
    let ms = edk2::decode(&image(OVMF, "OVMF_VARS_4M.ms.fd")).unwrap();
    // Names stay unique: virt-fw-vars keys its list by name only.
    for v in ms.variables {
        if !vars.iter().any(|x| x.name == v.name) {
            vars.push(v);
        }
    }
    vars
}

#[test]
fn json_to_fd_to_json_is_identity() {
    let vars = sample_store();
    let refs: Vec<&Variable> = vars.iter().collect();
    let text = json::encode(&refs).unwrap();
    for layout in [edk2::Layout::Ovmf4M, edk2::Layout::ArmVirt] {
        let fd = edk2::encode_into(&edk2::blank(layout), &refs).unwrap();
        let back = edk2::decode(&fd).unwrap().variables;
        let back_refs: Vec<&Variable> = back.iter().collect();
        assert_eq!(json::encode(&back_refs).unwrap(), text, "{layout}");
    }
}

/// Our image, read by both tools; and the image virt-fw-vars writes for the
/// same variables into the same template is ours byte for byte once the
/// variables are in its order (it sorts them by name).
#[test]
fn our_fd_is_read_by_the_tools_and_matches_virt_fw_vars_output() {
    let dir = tempfile::tempdir().unwrap();
    let mut vars = sample_store();
    let refs: Vec<&Variable> = vars.iter().collect();
    let ours = edk2::encode_into(&edk2::blank(edk2::Layout::Ovmf4M), &refs).unwrap();
    let ours_path = tmp_file(dir.path(), "ours.fd", &ours);
    same(
        &without_sub_second(essence(&virt_fw_vars_json(&ours_path))),
        &without_sub_second(essence(&vars)),
        "our .fd read by virt-fw-vars",
    );
    same(
        &uefivars_json("edk2", &ours_path),
        &without_certdb(essence(&vars)),
        "our .fd read by uefivars",
    );

    let json_path = tmp_file(
        dir.path(),
        "vars.json",
        json::encode(&refs).unwrap().as_bytes(),
    );
    let vfw_path = dir.path().join("vfw.fd");
    run(
        "virt-fw-vars",
        &[
            "-i",
            "/usr/share/OVMF/OVMF_VARS_4M.fd",
            "--set-json",
            json_path.to_str().unwrap(),
            "-o",
            vfw_path.to_str().unwrap(),
        ],
    );
    let theirs = std::fs::read(&vfw_path).unwrap();
    vars.sort_by_key(|v| v.name.to_string());
    let sorted: Vec<&Variable> = vars.iter().collect();
    let ours_sorted = edk2::encode_into(&edk2::blank(edk2::Layout::Ovmf4M), &sorted).unwrap();
    assert_eq!(theirs.len(), ours_sorted.len());
    let differ: Vec<usize> = (0..theirs.len())
        .filter(|&i| theirs[i] != ours_sorted[i])
        .collect();
    assert!(
        differ.is_empty(),
        "{} bytes differ, first at {:#x}",
        differ.len(),
        differ[0]
    );
}

#[test]
fn aws_blobs_interoperate_with_uefivars_and_virt_fw_vars() {
    let dir = tempfile::tempdir().unwrap();
    let vars = sample_store();
    let refs: Vec<&Variable> = vars.iter().collect();
    let ours = aws::encode(&refs).unwrap();
    let ours_path = tmp_file(dir.path(), "ours.aws", ours.as_bytes());
    same(
        &uefivars_json("aws", &ours_path),
        &essence(&vars),
        "our blob read by uefivars",
    );
    same(
        &without_sub_second(essence(&virt_fw_vars_json(&ours_path))),
        &without_sub_second(essence(&vars)),
        "our blob read by virt-fw-vars",
    );

    // Their blob of the same store, read by us.
    let fd_path = tmp_file(
        dir.path(),
        "src.fd",
        &edk2::encode_into(&edk2::blank(edk2::Layout::Ovmf4M), &refs).unwrap(),
    );
    let blob = run(
        "uefivars",
        &["-i", "edk2", "-I", fd_path.to_str().unwrap(), "-o", "aws"],
    );
    same(
        &essence(&aws::decode(&blob).unwrap()),
        &without_certdb(essence(&vars)),
        "uefivars' blob (made from our .fd) read by us",
    );
    let vfw_blob = dir.path().join("vfw.aws");
    run(
        "virt-fw-vars",
        &[
            "-i",
            fd_path.to_str().unwrap(),
            "--output-aws",
            vfw_blob.to_str().unwrap(),
        ],
    );
    let theirs = aws::decode(&std::fs::read(&vfw_blob).unwrap()).unwrap();
    same(
        &without_sub_second(essence(&theirs)),
        &without_sub_second(essence(&vars)),
        "virt-fw-vars' blob read by us",
    );
}
