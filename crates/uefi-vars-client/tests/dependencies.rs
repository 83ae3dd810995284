//! A VMM that links only the client must not link the server's sandbox,
//! CLI parser, signal handling, OpenSSL or compression (issue 9 item 6):
//! `cargo tree` over the client's normal dependencies shows none of them,
//! while the server's tree (the control) does.

use std::process::Command;

/// Crates of `uefi-vars serve` (and the library's default features) that a
/// forwarding VMM has no use for.
const SERVER_ONLY: [&str; 7] = [
    "clap",
    "landlock",
    "seccompiler",
    "signal-hook",
    "openssl",
    "openssl-sys",
    "flate2",
];

/// The crate names in `cargo tree -p PACKAGE -e normal`.
fn normal_dependencies(package: &str) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "--locked",
            "--offline",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .args(["-p", package])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree -p {package} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect();
    names.sort();
    names.dedup();
    names
}

#[test]
fn client_links_none_of_the_server_dependencies() {
    let client = normal_dependencies("uefi-vars-client");
    assert!(client.iter().any(|n| n == "uefi-vars-device"), "{client:?}");
    let pulled: Vec<&str> = SERVER_ONLY
        .into_iter()
        .filter(|s| client.iter().any(|n| n == s))
        .collect();
    assert!(pulled.is_empty(), "the client pulls {pulled:?}: {client:?}");
}

#[test]
fn server_tree_has_them_so_the_check_can_fail() {
    let server = normal_dependencies("uefi-vars-serve");
    for name in ["clap", "landlock", "seccompiler", "signal-hook", "openssl"] {
        assert!(server.iter().any(|n| n == name), "{name} not in {server:?}");
    }
}
