//! Who the service runs as: `--user`/`--group` resolution, the drop to that
//! account after start-up, and the removal of every capability.
//!
//! Names are looked up in `/etc/passwd` and `/etc/group` (read before the
//! sandbox closes the filesystem); numeric ids are taken as they are, so an
//! account known only to NSS (LDAP, systemd-userdb) is given by number.
//! The drop happens while the process has a single thread (checked), with
//! the thread-level system calls rustix issues directly, in the order
//! setgroups, setresgid, setresuid, so no id of the old account is left.

use std::fmt;
use std::path::Path;

use rustix::process::{getegid, geteuid, getgid, getuid};
use rustix::thread::{self, CapabilitySet, CapabilitySets};

/// Why an account could not be resolved or the privileges not dropped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PrivilegeError {
    #[error("unknown user {0:?} (not a number and not in /etc/passwd)")]
    UnknownUser(String),
    #[error("unknown group {0:?} (not a number and not in /etc/group)")]
    UnknownGroup(String),
    #[error("user {0} has no /etc/passwd entry: give its group with --group")]
    NoPrimaryGroup(u32),
    #[error("--user needs the service to start as root (it runs as uid {0})")]
    NotRoot(u32),
    #[error("the process has {0} threads; privileges are dropped while it has one")]
    Threads(String),
    #[error("cannot read /proc/self/status ({0}); is /proc mounted?")]
    NoProc(std::io::Error),
    #[error("{what}: {source}")]
    Call {
        what: &'static str,
        source: rustix::io::Errno,
    },
    #[error("after the drop the process still has {0}")]
    Kept(String),
}

fn call(what: &'static str) -> impl FnOnce(rustix::io::Errno) -> PrivilegeError {
    move |source| PrivilegeError::Call { what, source }
}

/// A resolved account to run as.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Account {
    pub uid: u32,
    pub gid: u32,
}

/// One `name:x:id:...` database line split in fields.
fn database_entry(file: &Path, name: &str) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines()
        .map(|l| l.split(':').map(str::to_string).collect::<Vec<_>>())
        .find(|f| f.first().is_some_and(|n| n == name))
}

fn passwd_by_uid(uid: u32) -> Option<u32> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.get(2)?.parse::<u32>().ok()? == uid).then(|| f.get(3)?.parse().ok())?
    })
}

/// A user id: a number, or a name from /etc/passwd (with its primary group).
pub fn resolve_user(spec: &str) -> Result<(u32, Option<u32>), PrivilegeError> {
    if let Ok(uid) = spec.parse::<u32>() {
        return Ok((uid, passwd_by_uid(uid)));
    }
    let f = database_entry(Path::new("/etc/passwd"), spec)
        .ok_or_else(|| PrivilegeError::UnknownUser(spec.into()))?;
    let uid = f.get(2).and_then(|v| v.parse().ok());
    let gid = f.get(3).and_then(|v| v.parse().ok());
    match uid {
        Some(uid) => Ok((uid, gid)),
        None => Err(PrivilegeError::UnknownUser(spec.into())),
    }
}

/// A group id: a number, or a name from /etc/group.
pub fn resolve_group(spec: &str) -> Result<u32, PrivilegeError> {
    if let Ok(gid) = spec.parse::<u32>() {
        return Ok(gid);
    }
    database_entry(Path::new("/etc/group"), spec)
        .and_then(|f| f.get(2).and_then(|v| v.parse().ok()))
        .ok_or_else(|| PrivilegeError::UnknownGroup(spec.into()))
}

/// `--user` and `--group` as an account (the group defaults to the user's
/// primary group).
pub fn resolve_account(user: &str, group: Option<&str>) -> Result<Account, PrivilegeError> {
    let (uid, primary) = resolve_user(user)?;
    let gid = match group {
        Some(g) => resolve_group(g)?,
        None => primary.ok_or(PrivilegeError::NoPrimaryGroup(uid))?,
    };
    Ok(Account { uid, gid })
}

/// What the process runs as once [`drop_privileges`] returned.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PrivilegeReport {
    pub uid: u32,
    pub gid: u32,
    /// Whether the drop changed the account.
    pub switched: bool,
    /// Capabilities that were removed (effective, permitted, inheritable,
    /// ambient and bounding sets together), as a mask.
    pub removed: u64,
}

impl fmt::Display for PrivilegeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "privileges: running as uid {} gid {}{}, no capabilities{}",
            self.uid,
            self.gid,
            if self.switched {
                " (dropped from root)"
            } else {
                ""
            },
            if self.removed != 0 {
                format!(" (removed {:#x})", self.removed)
            } else {
                String::new()
            }
        )
    }
}

/// A `/proc/self/status` field.
fn status_field(name: &str) -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(|v| v.trim().to_string())
}

fn status_mask(name: &str) -> u64 {
    status_field(name)
        .and_then(|v| u64::from_str_radix(&v, 16).ok())
        .unwrap_or(0)
}

/// The highest capability number this kernel knows.
fn last_capability() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(40)
        .min(63)
}

/// Empties the bounding set (needs CAP_SETPCAP, which root has).
fn clear_bounding_set() -> Result<(), PrivilegeError> {
    for cap in 0..=last_capability() {
        let set = CapabilitySet::from_bits_retain(1u64 << cap);
        if thread::capability_is_in_bounding_set(set).unwrap_or(false) {
            thread::remove_capability_from_bounding_set(set)
                .map_err(call("remove a capability from the bounding set"))?;
        }
    }
    Ok(())
}

/// Switches to `target` (when given) and leaves the process without any
/// capability in any set. A process that already runs unprivileged with
/// empty sets makes no call (so the systemd unit's SystemCallFilter need
/// not allow capset or prctl).
pub fn drop_privileges(target: Option<&Account>) -> Result<PrivilegeReport, PrivilegeError> {
    // The drop and its verification read the kernel's view of the process.
    std::fs::read_to_string("/proc/self/status").map_err(PrivilegeError::NoProc)?;
    let threads = status_field("Threads").unwrap_or_default();
    if threads != "1" {
        return Err(PrivilegeError::Threads(threads));
    }
    let sets = ["CapEff", "CapPrm", "CapInh", "CapAmb", "CapBnd"];
    let before: u64 = sets.iter().fold(0, |m, s| m | status_mask(s));
    let (uid, euid) = (getuid().as_raw(), geteuid().as_raw());
    let wanted = target.cloned().unwrap_or(Account {
        uid: euid,
        gid: getegid().as_raw(),
    });
    let switch = target.is_some_and(|t| {
        t.uid != uid || t.uid != euid || t.gid != getgid().as_raw() || t.gid != getegid().as_raw()
    });
    if switch && euid != 0 {
        return Err(PrivilegeError::NotRoot(euid));
    }
    // Without CAP_SETPCAP the bounding set cannot be changed, and then it
    // cannot be used either: the process has no capability and
    // no_new_privs keeps it from gaining one through exec.
    if status_mask("CapEff") & CapabilitySet::SETPCAP.bits() != 0 {
        clear_bounding_set()?;
    }
    if status_mask("CapAmb") != 0 {
        thread::clear_ambient_capability_set().map_err(call("clear the ambient set"))?;
    }
    if switch {
        switch_account(&wanted)?;
    }
    if status_mask("CapEff") | status_mask("CapPrm") | status_mask("CapInh") != 0 {
        thread::set_capabilities(
            None,
            CapabilitySets {
                effective: CapabilitySet::empty(),
                permitted: CapabilitySet::empty(),
                inheritable: CapabilitySet::empty(),
            },
        )
        .map_err(call("clear the capability sets"))?;
    }
    verify(&wanted, switch)?;
    Ok(PrivilegeReport {
        uid: wanted.uid,
        gid: wanted.gid,
        switched: switch,
        removed: before,
    })
}

fn switch_account(a: &Account) -> Result<(), PrivilegeError> {
    let gid = rustix::process::Gid::from_raw_unchecked(a.gid);
    let uid = rustix::process::Uid::from_raw_unchecked(a.uid);
    thread::set_thread_groups(&[]).map_err(call("setgroups"))?;
    thread::set_thread_res_gid(gid, gid, gid).map_err(call("setresgid"))?;
    thread::set_thread_res_uid(uid, uid, uid).map_err(call("setresuid"))?;
    Ok(())
}

/// Reads back what the kernel says: the account and empty sets.
fn verify(a: &Account, switched: bool) -> Result<(), PrivilegeError> {
    let mut kept = Vec::new();
    for set in ["CapEff", "CapPrm", "CapInh", "CapAmb"] {
        let m = status_mask(set);
        if m != 0 {
            kept.push(format!("{set} {m:#x}"));
        }
    }
    let ids = [getuid(), geteuid()].map(|u| u.as_raw());
    if ids.iter().any(|&u| u != a.uid) {
        kept.push(format!("uid {ids:?}"));
    }
    let gids = [getgid(), getegid()].map(|g| g.as_raw());
    if gids.iter().any(|&g| g != a.gid) {
        kept.push(format!("gid {gids:?}"));
    }
    if switched && status_field("Groups").is_some_and(|g| !g.is_empty()) {
        kept.push(format!(
            "supplementary groups {}",
            status_field("Groups").unwrap_or_default()
        ));
    }
    if kept.is_empty() {
        Ok(())
    } else {
        Err(PrivilegeError::Kept(kept.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_and_groups_resolve_by_name_or_number() {
        // root:x:0:0 is in every /etc/passwd and /etc/group.
        assert_eq!(resolve_user("root").unwrap(), (0, Some(0)));
        assert_eq!(resolve_user("0").unwrap(), (0, Some(0)));
        assert_eq!(resolve_group("root").unwrap(), 0);
        assert_eq!(resolve_group("4242").unwrap(), 4242);
        assert_eq!(resolve_user("4242424").unwrap(), (4_242_424, None));
        assert!(matches!(
            resolve_user("no-such-user-uefi-vars"),
            Err(PrivilegeError::UnknownUser(_))
        ));
        assert!(matches!(
            resolve_group("no-such-group-uefi-vars"),
            Err(PrivilegeError::UnknownGroup(_))
        ));
        assert!(matches!(
            resolve_account("4242424", None),
            Err(PrivilegeError::NoPrimaryGroup(4_242_424))
        ));
        assert_eq!(
            resolve_account("root", Some("4242")).unwrap(),
            Account { uid: 0, gid: 4242 }
        );
    }
}
