//! Stores that are not files: `etcd://` URLs (README "Running a fleet").
//! The etcd backend (and the tokio runtime it owns) is linked only with
//! the `etcd` feature, so a VMM that uses the `uefi-vars-client` crate links neither.

use std::path::{Path, PathBuf};
use std::time::Duration;

use uefi_vars::persist::Storage;

#[cfg(feature = "etcd")]
use crate::server::log;
use crate::server::ServeError;

/// The scheme that makes `--store` an etcd store.
pub const ETCD_SCHEME: &str = "etcd://";

/// Whether `store` names an etcd store rather than a file.
pub fn is_remote(store: &Path) -> bool {
    store.to_str().is_some_and(|s| s.starts_with(ETCD_SCHEME))
}

/// How `serve` connects to and owns an etcd store.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct EtcdSettings {
    /// `--etcd-cacert`, `--etcd-cert`, `--etcd-key` (over the URL query).
    pub cacert: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// `--etcd-lease-ttl`.
    pub lease_ttl: Duration,
    /// `--etcd-takeover-wait`.
    pub takeover_wait: Duration,
}

impl Default for EtcdSettings {
    fn default() -> Self {
        EtcdSettings {
            cacert: None,
            cert: None,
            key: None,
            lease_ttl: Duration::from_secs(10),
            takeover_wait: Duration::ZERO,
        }
    }
}

/// An owned remote store, ready for the service.
pub struct Opened {
    pub storage: Box<dyn Storage>,
    /// TCP ports the sandbox lets the process connect to.
    pub ports: Vec<u16>,
}

#[cfg(feature = "etcd")]
pub fn open(store: &Path, settings: &EtcdSettings) -> Result<Opened, ServeError> {
    use uefi_vars_etcd::{EtcdOptions, EtcdStore, EtcdUrl, TlsFiles};
    let text = store.to_str().unwrap_or_default();
    let mut url = EtcdUrl::parse(text).map_err(|e| ServeError::Setup(e.to_string()))?;
    let mut flags = TlsFiles::default();
    flags.cacert.clone_from(&settings.cacert);
    flags.cert.clone_from(&settings.cert);
    flags.key.clone_from(&settings.key);
    url.tls = flags.or(url.tls.clone());
    let ports: Vec<u16> = url
        .resolve()
        .map_err(|e| ServeError::Setup(e.to_string()))?
        .iter()
        .map(std::net::SocketAddr::port)
        .collect();
    let mut opts = EtcdOptions::default();
    opts.lease_ttl = settings.lease_ttl;
    opts.takeover_wait = settings.takeover_wait;
    let mut etcd = EtcdStore::connect(&url, opts).map_err(|e| ServeError::Setup(e.to_string()))?;
    etcd.own().map_err(|e| ServeError::Setup(e.to_string()))?;
    log(format_args!(
        "owns {} as {} (lease {:?})",
        etcd.label(),
        etcd.owner_token().unwrap_or_default(),
        settings.lease_ttl
    ));
    // Refuse a store that cannot be read before anyone connects.
    etcd.load().map_err(|e| ServeError::Setup(e.to_string()))?;
    Ok(Opened {
        storage: Box::new(etcd),
        ports,
    })
}

#[cfg(not(feature = "etcd"))]
pub fn open(store: &Path, _settings: &EtcdSettings) -> Result<Opened, ServeError> {
    Err(ServeError::Setup(format!(
        "{}: this uefi-vars was built without etcd support (the `etcd` feature of uefi-vars-serve)",
        store.display()
    )))
}
