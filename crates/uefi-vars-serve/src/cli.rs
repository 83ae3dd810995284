//! The `serve` subcommand of the `uefi-vars` tool: its arguments and its
//! entry point, so the CLI only adds one variant and one match arm.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use uefi_vars::persist::{SyncMode, WriteMode};
use uefi_vars::Config;

use std::time::Duration;

use crate::logging::{self, LogFormat};
use crate::privilege::{self, PrivilegeError};
use crate::server::{self, AllowList, ConnectionPolicy, ServeOptions, Server};

/// `uefi-vars serve`: run the variable service for one VM as its own
/// sandboxed process on a Unix socket (protocol: docs/serve-protocol.md).
#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// The JSON variable store (QEMU's format; created if missing, its
    /// directory must exist). The only directory the process can write.
    /// Or an etcd store, etcd://HOST:PORT[,HOST:PORT...]/PREFIX/VM
    /// [?cacert=F&cert=F&key=F]: the service takes ownership first and
    /// fences every write (README "Running a fleet").
    #[arg(long, short)]
    pub store: PathBuf,
    /// etcd store: CA certificate (PEM) that signs the members'
    /// certificates; turns TLS on (etcdctl --cacert).
    #[arg(long, value_name = "FILE")]
    pub etcd_cacert: Option<PathBuf>,
    /// etcd store: client certificate (PEM) for members that require one
    /// (etcdctl --cert); with --etcd-key.
    #[arg(long, value_name = "FILE", requires = "etcd_key")]
    pub etcd_cert: Option<PathBuf>,
    /// etcd store: the client certificate's private key (PEM) (etcdctl
    /// --key).
    #[arg(long, value_name = "FILE", requires = "etcd_cert")]
    pub etcd_key: Option<PathBuf>,
    /// etcd store: time-to-live of the ownership lease. A service that is
    /// stopped or cut off this long loses the store to the next one.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub etcd_lease_ttl: Duration,
    /// etcd store: how long to wait at start-up for another service's
    /// ownership to end (its clean stop, or its lease expiring), e.g. the
    /// source of a migration. Default: refuse at once.
    #[arg(long, default_value = "0s", value_parser = parse_duration_or_zero)]
    pub etcd_takeover_wait: Duration,
    /// Unix socket to listen on. A stale socket file left by a service that
    /// is gone is replaced.
    #[arg(long)]
    pub socket: PathBuf,
    /// Write a LINKTYPE_EDK2_MM capture (QEMU 11's `pcapfile` format) of
    /// every machine reset, request and reply, flushed per record.
    #[arg(long)]
    pub pcap: Option<PathBuf>,
    /// Keep the store file's inode (write in place). Not crash-atomic.
    #[arg(long)]
    pub in_place: bool,
    /// Variable storage size in bytes (QEMU's `size` property).
    #[arg(long, default_value_t = 262_144)]
    pub size: u64,
    /// Force SecureBootEnable on (QEMU's `force-secure-boot`).
    #[arg(long)]
    pub force_secure_boot: bool,
    /// Refuse every write to CustomMode (QEMU's `disable-custom-mode`).
    #[arg(long)]
    pub disable_custom_mode: bool,
    /// Answer GET_PAYLOAD_SIZE with the whole buffer size, as QEMU 10.0 to
    /// 10.2 do (for replaying their captures).
    #[arg(long)]
    pub legacy_payload_size: bool,
    /// Leave registered policies out of QueryVariableInfo's remaining
    /// storage, as QEMU 10.0 does (QEMU 11.1 counts them).
    #[arg(long)]
    pub legacy_storage_accounting: bool,
    /// Close a connection whose HELLO is not complete this long after it
    /// was accepted (e.g. `1s`, `500ms`).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub hello_timeout: Duration,
    /// Close a connection that has had no request answered this long after
    /// its handshake (the VMM client pings as part of connecting).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// A user (name or uid) whose processes may connect, checked with
    /// SO_PEERCRED; repeatable. Default, when neither --allow-uid nor
    /// --allow-gid is given: the uid the service runs as.
    #[arg(long, value_name = "USER")]
    pub allow_uid: Vec<String>,
    /// A group (name or gid) whose processes may connect: matched against
    /// the peer's effective gid (not its supplementary groups); repeatable.
    #[arg(long, value_name = "GROUP")]
    pub allow_gid: Vec<String>,
    /// Once the socket is bound and the store locked, run as this user
    /// (name or uid); needs starting as root. Files the service creates
    /// (lock, socket, capture, store) belong to it.
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// The group to run as with --user (default: the user's primary group).
    #[arg(long, value_name = "GROUP", requires = "user")]
    pub group: Option<String>,
    /// Give the socket file to this group with mode 0660 (default: 0600,
    /// only the service's own user can connect).
    #[arg(long, value_name = "GROUP")]
    pub socket_group: Option<String>,
    /// Run without the Landlock/seccomp sandbox (debugging only).
    #[arg(long)]
    pub no_sandbox: bool,
    /// How writes are made durable. `journal`: each change is appended to
    /// STORE.journal with one fdatasync, and the JSON file is rewritten
    /// when the journal grows, at machine reset and at a clean stop
    /// (SIGTERM/SIGINT); in between, the JSON file alone is behind.
    /// `full-rewrite`: each change rewrites the whole JSON file, which is
    /// then current at all times (slower as the store grows).
    #[arg(long, value_enum, default_value_t = Sync::Journal)]
    pub sync: Sync,
    /// Start up, apply the sandbox, probe what it forbids, print the
    /// results and exit (0 if every enforced restriction holds).
    #[arg(long, hide = true)]
    pub self_test_sandbox: bool,
    /// Log line format on standard error: `text` for people, `json` (one
    /// object per line) for log collectors.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Which events to log, as `tracing` filter directives: a level
    /// (`error`, `warn`, `info`, `debug`) or per target, e.g.
    /// `info,uefi_vars::refusal=off`. Default: RUST_LOG if set, else `info`
    /// (every refused write, host error and connection event).
    #[arg(long, value_name = "FILTER")]
    pub log_level: Option<String>,
}

/// `--sync` values.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sync {
    /// Append each change to STORE.journal (one fdatasync).
    Journal,
    /// Rewrite the whole JSON file on each change.
    FullRewrite,
}

impl From<Sync> for SyncMode {
    fn from(s: Sync) -> Self {
        match s {
            Sync::Journal => SyncMode::Journal,
            Sync::FullRewrite => SyncMode::FullRewrite,
        }
    }
}

/// As [`parse_duration`], and zero.
fn parse_duration_or_zero(text: &str) -> Result<Duration, String> {
    match text.trim_end_matches(['m', 's']) {
        "0" => Ok(Duration::ZERO),
        _ => parse_duration(text),
    }
}

/// `1s`, `500ms`, `2.5s` or a bare number of seconds; above zero.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, scale) = match text.strip_suffix("ms") {
        Some(n) => (n, 1e-3),
        None => (text.strip_suffix('s').unwrap_or(text), 1.0),
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?}: expected a duration such as 1s or 500ms"))?;
    let secs = value * scale;
    if !(secs > 0.0 && secs <= 86_400.0) {
        return Err(format!("{text:?}: must be above 0 and at most a day"));
    }
    Ok(Duration::from_secs_f64(secs))
}

impl ServeArgs {
    /// The options, with user and group names resolved.
    pub fn options(&self) -> Result<ServeOptions, PrivilegeError> {
        let mut opts = ServeOptions::new(self.store.clone(), self.socket.clone());
        opts.pcap = self.pcap.clone();
        opts.sync = self.sync.into();
        opts.write_mode = if self.in_place {
            WriteMode::InPlace
        } else {
            WriteMode::AtomicReplace
        };
        opts.config = Config::default()
            .with_max_storage(self.size)
            .with_force_secure_boot(self.force_secure_boot)
            .with_disable_custom_mode(self.disable_custom_mode)
            .with_legacy_payload_size(self.legacy_payload_size)
            .with_legacy_storage_accounting(self.legacy_storage_accounting);
        opts.sandbox = !self.no_sandbox;
        let mut etcd = crate::remote::EtcdSettings::default();
        etcd.cacert.clone_from(&self.etcd_cacert);
        etcd.cert.clone_from(&self.etcd_cert);
        etcd.key.clone_from(&self.etcd_key);
        etcd.lease_ttl = self.etcd_lease_ttl;
        etcd.takeover_wait = self.etcd_takeover_wait;
        opts.etcd = etcd;
        let uids = self
            .allow_uid
            .iter()
            .map(|u| privilege::resolve_user(u).map(|(uid, _)| uid))
            .collect::<Result<_, _>>()?;
        let gids = self
            .allow_gid
            .iter()
            .map(|g| privilege::resolve_group(g))
            .collect::<Result<_, _>>()?;
        opts.policy = ConnectionPolicy {
            hello_timeout: self.hello_timeout,
            idle_timeout: self.idle_timeout,
            allow: AllowList::new(uids, gids),
        };
        opts.user = match &self.user {
            Some(u) => Some(privilege::resolve_account(u, self.group.as_deref())?),
            None => None,
        };
        opts.socket_group = match &self.socket_group {
            Some(g) => Some(privilege::resolve_group(g)?),
            None => None,
        };
        Ok(opts)
    }
}

/// Runs the subcommand; errors are start-up failures (printed by the CLI).
pub fn run(args: &ServeArgs) -> Result<ExitCode, String> {
    let rust_log = std::env::var("RUST_LOG").ok();
    logging::init(
        args.log_format,
        args.log_level.as_deref(),
        rust_log.as_deref(),
    )
    .map_err(|e| e.to_string())?;
    let _serve = tracing::info_span!(
        "serve",
        pid = std::process::id(),
        store = %args.store.display()
    )
    .entered();
    if args.self_test_sandbox {
        let (lines, ok) = server::self_test(args.options().map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
        let mut out = std::io::stdout().lock();
        for line in lines {
            let _ = writeln!(out, "{line}");
        }
        return Ok(if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    let server =
        Server::start(args.options().map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    server.run().map_err(|e| e.to_string())?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units_and_are_bounded() {
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2.5"), Ok(Duration::from_millis(2500)));
        for bad in ["0", "0ms", "-1s", "soon", "", "1h", "90000s", "NaN"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
