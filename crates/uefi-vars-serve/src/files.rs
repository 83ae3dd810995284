//! The files `serve` creates beside the store: the lock, the socket, and
//! the clean-up of temporary files an earlier run left behind. Modes are
//! set explicitly, whatever the umask: 0600 for what the service creates
//! (0660 for the socket with `--socket-group`); a lock file that exists
//! keeps its mode.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use rustix::fs::{Gid, Uid};

use crate::server::{log, setup, ServeError};

/// Mode of every file the service creates.
pub const FILE_MODE: u32 = 0o600;

/// `.NAME.SUFFIX` beside `store`.
fn sibling(store: &Path, suffix: &str) -> Result<PathBuf, ServeError> {
    let name = store
        .file_name()
        .ok_or_else(|| setup(store.display(), "not a file name"))?;
    let mut sib = std::ffi::OsString::from(".");
    sib.push(name);
    sib.push(suffix);
    Ok(store.with_file_name(sib))
}

/// Takes the store's lock file (`.NAME.lock` beside it) so that a second
/// service cannot run on the same store. The kernel drops the lock when the
/// process dies, however it dies. A lock file the service creates is 0600
/// and handed to `owner` (the `--user` account).
pub fn lock_store(store: &Path, owner: Option<(u32, u32)>) -> Result<File, ServeError> {
    let path = sibling(store, ".lock")?;
    let created = match std::fs::symlink_metadata(&path) {
        Ok(_) => false,
        Err(e) if e.kind() == io::ErrorKind::NotFound => true,
        Err(e) => return Err(setup(path.display(), e)),
    };
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(FILE_MODE)
        .open(&path)
        .map_err(|e| setup(path.display(), e))?;
    if created {
        file.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))
            .map_err(|e| setup(format!("{}: chmod", path.display()), e))?;
        if let Some((uid, gid)) = owner {
            rustix::fs::fchown(
                &file,
                Some(Uid::from_raw_unchecked(uid)),
                Some(Gid::from_raw_unchecked(gid)),
            )
            .map_err(|e| setup(format!("{}: chown", path.display()), e))?;
        }
    }
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(file),
        Err(rustix::io::Errno::WOULDBLOCK) => Err(setup(
            store.display(),
            "the store is in use by another uefi-vars service",
        )),
        Err(e) => Err(setup(format!("{}: lock", path.display()), e)),
    }
}

/// Removes a socket file left by a service that is gone; refuses to touch
/// anything else or a socket someone still listens on.
pub fn prepare_socket(path: &Path) -> Result<(), ServeError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(setup(path.display(), e)),
    };
    if !meta.file_type().is_socket() {
        return Err(setup(path.display(), "exists and is not a socket"));
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(setup(
            path.display(),
            "another service is listening on this socket",
        )),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => std::fs::remove_file(path)
            .map_err(|e| setup(format!("{}: remove stale socket", path.display()), e)),
        Err(e) => Err(setup(path.display(), e)),
    }
}

/// Gives the bound socket its owner and mode: 0600, or 0660 with a group.
/// Connecting needs write permission on the socket file, so these decide
/// who can reach the service at all; the peer check comes on top.
pub fn secure_socket(
    path: &Path,
    owner: Option<(u32, u32)>,
    group: Option<u32>,
) -> Result<u32, ServeError> {
    let mode = if group.is_some() { 0o660 } else { FILE_MODE };
    let uid = owner.map(|(u, _)| Uid::from_raw_unchecked(u));
    let gid = group.or(owner.map(|(_, g)| g)).map(Gid::from_raw_unchecked);
    if uid.is_some() || gid.is_some() {
        rustix::fs::chown(path, uid, gid)
            .map_err(|e| setup(format!("{}: chown", path.display()), e))?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| setup(format!("{}: chmod", path.display()), e))?;
    Ok(mode)
}

/// Whether `name` is `.STORE.tmp-PID-N`, the temporary name
/// `persist::file::write_atomic` uses for this store; the PID if so.
fn temp_pid(name: &str, store_name: &str) -> Option<u32> {
    let rest = name.strip_prefix('.')?.strip_prefix(store_name)?;
    let (pid, n) = rest.strip_prefix(".tmp-")?.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits(pid) && digits(n)).then(|| pid.parse().ok())?
}

/// Removes the `.NAME.tmp-*` files an earlier run of this store left (a
/// process killed during a write), beside the store and beside its target
/// when it is a symbolic link. Called with the store lock held, so no other
/// service writes them; a file whose writer is still alive (a `uefi-vars`
/// edit command, which takes no lock) is kept. Returns what was removed.
pub fn remove_stale_temporaries(store: &Path) -> Result<Vec<PathBuf>, ServeError> {
    let mut targets = vec![store.to_path_buf()];
    if let Ok(t) = std::fs::canonicalize(store) {
        if t != store {
            targets.push(t);
        }
    }
    let mut removed = Vec::new();
    for target in targets {
        let Some(name) = target.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let dir = match target.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let entries = std::fs::read_dir(&dir).map_err(|e| setup(dir.display(), e))?;
        for entry in entries.flatten() {
            let file_name = entry.file_name();
            let Some(pid) = file_name.to_str().and_then(|n| temp_pid(n, name)) else {
                continue;
            };
            let path = entry.path();
            let regular = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file());
            if !regular || removed.contains(&path) {
                continue;
            }
            if pid != std::process::id() && Path::new(&format!("/proc/{pid}")).exists() {
                log(format_args!(
                    "kept {}: its writer (pid {pid}) is running",
                    path.display()
                ));
                continue;
            }
            std::fs::remove_file(&path).map_err(|e| {
                setup(
                    format!("{}: remove stale temporary file", path.display()),
                    e,
                )
            })?;
            log(format_args!(
                "removed {} (left by an earlier run that stopped during a write)",
                path.display()
            ));
            removed.push(path);
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_stores_temporary_names_match() {
        assert_eq!(temp_pid(".vars.json.tmp-123-4", "vars.json"), Some(123));
        for other in [
            "vars.json.tmp-123-4",
            ".vars.json.tmp-123",
            ".vars.json.tmp-12a-4",
            ".vars.json.tmp--4",
            ".vars.json.tmp-1-",
            ".other.json.tmp-1-2",
            ".vars.json.lock",
            ".vars.json.journal",
            ".vars.json.tmp-1-2.x",
            ".vars.jsonx.tmp-1-2",
        ] {
            assert_eq!(temp_pid(other, "vars.json"), None, "{other}");
        }
    }

    #[test]
    fn stale_temporaries_of_the_store_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("vars.json");
        std::fs::write(&store, b"{}").unwrap();
        // A pid that cannot be running (above pid_max's hard limit).
        let stale = dir.path().join(".vars.json.tmp-4194305-0");
        std::fs::write(&stale, b"x").unwrap();
        let keep = [
            ".other.json.tmp-4194305-0",
            ".vars.json.lock",
            "vars.json.tmp-4194305-0",
        ];
        for k in keep {
            std::fs::write(dir.path().join(k), b"x").unwrap();
        }
        // A live writer's file: this test process's parent is running.
        let live = dir.path().join(format!(
            ".vars.json.tmp-{}-0",
            std::os::unix::process::parent_id()
        ));
        std::fs::write(&live, b"x").unwrap();
        let removed = remove_stale_temporaries(&store).unwrap();
        assert_eq!(removed, vec![stale.clone()]);
        assert!(!stale.exists());
        assert!(live.exists());
        for k in keep {
            assert!(dir.path().join(k).exists(), "{k}");
        }
        assert!(store.exists());
    }
}
