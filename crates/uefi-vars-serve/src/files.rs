//! The files `serve` creates beside the store: the lock, the socket, and
//! the clean-up of temporary files an earlier run left behind. Modes are
//! set explicitly, whatever the umask: 0600 for what the service creates
//! (0660 for the socket with `--socket-group`); a lock file that exists
//! keeps its mode.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
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
/// and handed to `owner` (the `--user` account); an existing one keeps its
/// mode. A symbolic link there is refused: started as root, following one
/// planted by the owner of the store's directory would create or lock a
/// file anywhere.
pub fn lock_store(store: &Path, owner: Option<(u32, u32)>) -> Result<File, ServeError> {
    let path = sibling(store, ".lock")?;
    let open = |create: bool| {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(create)
            .mode(FILE_MODE)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
    };
    let (file, created) = match open(true) {
        Ok(f) => (f, true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => match open(false) {
            Ok(f) => (f, false),
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Err(setup(
                    path.display(),
                    "is a symbolic link; refusing to follow it",
                ))
            }
            Err(e) => return Err(setup(path.display(), e)),
        },
        Err(e) => return Err(setup(path.display(), e)),
    };
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

/// chown that changes a symbolic link itself, never what it points to.
pub fn chown_nofollow(path: &Path, uid: Option<u32>, gid: Option<u32>) -> Result<(), ServeError> {
    rustix::fs::chownat(
        rustix::fs::CWD,
        path,
        uid.map(Uid::from_raw_unchecked),
        gid.map(Gid::from_raw_unchecked),
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(|e| setup(format!("{}: chown", path.display()), e))
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

/// Binds the socket with its final mode, 0600 or 0660 with a group (the
/// umask in force during bind gives the mode, so there is no moment when
/// it is wider, and no chmod that could follow a symbolic link), then gives
/// it its owner and group. Connecting needs write permission on the socket
/// file, so these decide who can reach the service at all; the peer check
/// comes on top.
pub fn bind_socket(
    path: &Path,
    owner: Option<(u32, u32)>,
    group: Option<u32>,
) -> Result<(UnixListener, u32), ServeError> {
    let mode = if group.is_some() { 0o660 } else { FILE_MODE };
    let mask = rustix::fs::Mode::from_raw_mode(0o777 & !mode);
    let previous = rustix::process::umask(mask);
    let bound = UnixListener::bind(path);
    rustix::process::umask(previous);
    let listener = bound.map_err(|e| setup(format!("{}: bind", path.display()), e))?;
    let gid = group.or(owner.map(|(_, g)| g));
    if owner.is_some() || gid.is_some() {
        chown_nofollow(path, owner.map(|(u, _)| u), gid)?;
    }
    let got = std::fs::symlink_metadata(path)
        .map(|m| m.permissions().mode() & 0o7777)
        .map_err(|e| setup(path.display(), e))?;
    if got != mode {
        return Err(setup(
            path.display(),
            format!("socket has mode {got:04o}, not {mode:04o}"),
        ));
    }
    Ok((listener, mode))
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
    fn a_symbolic_link_as_lock_file_is_refused_and_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("vars.json");
        let target = dir.path().join("elsewhere");
        std::os::unix::fs::symlink(&target, dir.path().join(".vars.json.lock")).unwrap();
        let err = lock_store(&store, None).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        assert!(!target.exists());
        // A regular lock file is created 0600 and taken; a second taker
        // is refused.
        std::fs::remove_file(dir.path().join(".vars.json.lock")).unwrap();
        let lock = lock_store(&store, None).unwrap();
        let mode = lock.metadata().unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, FILE_MODE);
        let err = lock_store(&store, None).unwrap_err().to_string();
        assert!(err.contains("in use by another uefi-vars service"), "{err}");
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
