//! A [`ServiceObserver`] that writes every exchange of one
//! [`Service`] to files, so a test suite's requests can be
//! re-sent elsewhere (the QEMU conformance suite,
//! `crates/uefi-vars-qemu-oracle`, replays the library's own tests through
//! QEMU's device this way).
//!
//! Only a caller that installs it captures: [`CaptureObserver::new`] names
//! the directory, [`Service::set_observer`](super::Service::set_observer)
//! installs it (the `testing` feature's `uefi_vars::testing` constructors
//! do both). From the service's first request on, it writes into that
//! directory:
//!
//! - `uefi-vars-<pid>-<n>.pcap`: a LINKTYPE_EDK2_MM capture (plain, flushed
//!   after every record): a reset record at every
//!   [`reset`](super::Service::reset), each request and its reply (none when
//!   the framing was refused, as QEMU logs it), and [`EVENT_RECORD`]
//!   records for host-side changes a replay cannot see in the requests
//!   ([`Event`]);
//! - `uefi-vars-<pid>-<n>.json`: the [`CaptureInfo`] sidecar, the
//!   configuration that decides the replies;
//! - `uefi-vars-<pid>-<n>.start.json`: the store the service held when the
//!   observer was made, in QEMU's JSON format, when it was not empty.
//!
//! A service that never gets a request writes nothing. Any I/O error ends
//! that capture silently; the service itself is never affected. A capture
//! stops (with an [`Event::Truncated`] record) after [`MAX_CAPTURE_BYTES`]
//! of payload.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::codec::{Layout, WordSize};
use crate::pcap::{FileSink, PcapWriter, RecordKind};
use crate::persist::{json, non_volatile};
use crate::policy::PolicyLimits;

pub use super::observer::Event;
use super::observer::ServiceObserver;
use super::{Config, MmResponse, Service, MAX_BUFFER_SIZE};

/// Record type (the u32 at the start of a record's data) of host-side
/// events; its payload is a u32 event code and a u64 value ([`Event`]).
/// QEMU's record types are 1 to 3; readers skip unknown ones.
pub const EVENT_RECORD: u32 = 0x5556_4501;

/// Payload bytes after which a capture stops (64 MiB).
pub(crate) const MAX_CAPTURE_BYTES: u64 = 64 << 20;

/// Records kept before the first request (resets and events); a service
/// that goes beyond without a request is not captured.
const MAX_PENDING: usize = 1024;

/// Sidecar format version.
pub(crate) const INFO_VERSION: u32 = 1;

/// The sidecar: what of the service's [`Config`] decides its replies, and
/// where the capture came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureInfo {
    /// Sidecar format version ([`INFO_VERSION`]).
    pub version: u32,
    /// Process id of the writer.
    pub pid: u32,
    /// Name of the thread that created the service (the test's name under
    /// the libtest harness), empty if unnamed.
    pub thread: String,
    /// [`Config::max_storage`].
    pub max_storage: u64,
    /// [`Config::max_variable_size`].
    pub max_variable_size: Option<u64>,
    /// [`Config::max_name_size`].
    pub max_name_size: u64,
    /// [`Config::record_overhead`].
    pub record_overhead: u64,
    /// Guest word size in bytes (8: x64, 4: IA32).
    pub word_size: u32,
    /// `PolicyLimits::max_policies`.
    pub max_policies: usize,
    /// `PolicyLimits::max_total_bytes`.
    pub max_policy_bytes: usize,
    /// [`Config::allow_policy_disable`].
    pub allow_policy_disable: bool,
    /// [`Config::force_secure_boot`].
    pub force_secure_boot: bool,
    /// [`Config::disable_custom_mode`].
    pub disable_custom_mode: bool,
    /// [`Config::legacy_payload_size`].
    pub legacy_payload_size: bool,
    /// `Config::legacy_storage_accounting` (absent in older captures).
    #[serde(default)]
    pub legacy_storage_accounting: bool,
    /// BUFFER_SIZE when the service was created (later changes are
    /// [`Event::BufferSize`] records).
    pub buffer_size: u32,
    /// The PKCS#7 backend at creation: `"openssl"` or `"none"` (a later
    /// replacement is an [`Event::Crypto`] record).
    pub crypto: String,
    /// File name (same directory) of the store the service loaded, if any.
    pub start_store: Option<String>,
}

impl CaptureInfo {
    fn new(config: &Config, start_store: Option<String>) -> Self {
        CaptureInfo {
            version: INFO_VERSION,
            pid: std::process::id(),
            thread: std::thread::current()
                .name()
                .unwrap_or_default()
                .to_string(),
            max_storage: config.max_storage,
            max_variable_size: config.max_variable_size,
            max_name_size: config.max_name_size,
            record_overhead: config.record_overhead,
            word_size: match config.layout.word {
                WordSize::W32 => 4,
                WordSize::W64 => 8,
            },
            max_policies: config.policy_limits.max_policies,
            max_policy_bytes: config.policy_limits.max_total_bytes,
            allow_policy_disable: config.allow_policy_disable,
            force_secure_boot: config.force_secure_boot,
            disable_custom_mode: config.disable_custom_mode,
            legacy_payload_size: config.legacy_payload_size,
            legacy_storage_accounting: config.legacy_storage_accounting,
            buffer_size: MAX_BUFFER_SIZE,
            crypto: if cfg!(feature = "openssl") {
                "openssl"
            } else {
                "none"
            }
            .to_string(),
            start_store,
        }
    }

    /// The service configuration this capture was made with (`None` for a
    /// word size other than 4 or 8).
    pub fn config(&self) -> Option<Config> {
        let layout = match self.word_size {
            8 => Layout::X64,
            4 => Layout::IA32,
            _ => return None,
        };
        Some(Config {
            max_storage: self.max_storage,
            max_variable_size: self.max_variable_size,
            max_name_size: self.max_name_size,
            record_overhead: self.record_overhead,
            layout,
            policy_limits: PolicyLimits {
                max_policies: self.max_policies,
                max_total_bytes: self.max_policy_bytes,
            },
            allow_policy_disable: self.allow_policy_disable,
            force_secure_boot: self.force_secure_boot,
            disable_custom_mode: self.disable_custom_mode,
            legacy_payload_size: self.legacy_payload_size,
            legacy_storage_accounting: self.legacy_storage_accounting,
        })
    }
}

/// One service's capture (inert once it failed or stopped).
#[derive(Debug)]
pub struct CaptureObserver(Option<Box<Active>>);

#[derive(Debug)]
struct Active {
    dir: PathBuf,
    info: CaptureInfo,
    start_store: Option<String>,
    /// Records before the first request, written when it arrives.
    pending: Vec<(RecordKind, Vec<u8>)>,
    writer: Option<PcapWriter<FileSink>>,
    bytes: u64,
}

impl CaptureObserver {
    /// A capture into `dir` (created at the first request) of `service`,
    /// starting from its present configuration and store; install it with
    /// [`Service::set_observer`](super::Service::set_observer) before the
    /// next request. A store QEMU's JSON format cannot hold gives an inert
    /// observer (a replay would start from another state).
    pub fn new(dir: impl Into<PathBuf>, service: &Service) -> CaptureObserver {
        let store = service.store();
        let start_store = if store.is_empty() {
            None
        } else {
            let vars: Vec<_> = store.iter().collect();
            match json::encode(&non_volatile(&vars)) {
                Ok(text) => Some(text),
                Err(_) => return CaptureObserver(None),
            }
        };
        CaptureObserver(Some(Box::new(Active {
            dir: dir.into(),
            info: CaptureInfo::new(service.config(), None),
            start_store,
            pending: Vec::new(),
            writer: None,
            bytes: 0,
        })))
    }

    /// Whether it still captures (false after an I/O error or the size
    /// limit).
    pub fn is_active(&self) -> bool {
        self.0.is_some()
    }

    fn record(&mut self, kind: RecordKind, payload: &[u8]) {
        let Some(active) = self.0.as_mut() else {
            return;
        };
        let Some(writer) = active.writer.as_mut() else {
            if active.pending.len() >= MAX_PENDING {
                self.0 = None;
            } else {
                active.pending.push((kind, payload.to_vec()));
            }
            return;
        };
        active.bytes = active.bytes.saturating_add(payload.len() as u64);
        let result = if active.bytes > MAX_CAPTURE_BYTES {
            let _ = writer.record(RecordKind::Other(EVENT_RECORD), &Event::Truncated.encode());
            Err(())
        } else {
            writer.record(kind, payload).map_err(|_| ())
        };
        if result.is_err() {
            self.0 = None;
        }
    }
}

impl ServiceObserver for CaptureObserver {
    fn reset(&mut self) {
        self.record(RecordKind::Reset, &[]);
    }

    fn event(&mut self, event: Event) {
        self.record(RecordKind::Other(EVENT_RECORD), &event.encode());
    }

    fn exchange(&mut self, request: &[u8], response: &MmResponse) {
        let Some(active) = self.0.as_mut() else {
            return;
        };
        if active.writer.is_none() && active.open().is_err() {
            self.0 = None;
            return;
        }
        self.record(RecordKind::Request, request);
        if let Some(reply) = &response.reply {
            self.record(RecordKind::Reply, reply);
        }
    }
}

impl Active {
    /// Creates the files (at the first request) and writes what is pending.
    fn open(&mut self) -> std::io::Result<()> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        std::fs::create_dir_all(&self.dir)?;
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let base = format!("uefi-vars-{}-{n:06}", std::process::id());
        if let Some(text) = &self.start_store {
            let name = format!("{base}.start.json");
            std::fs::write(self.dir.join(&name), text)?;
            self.info.start_store = Some(name);
        }
        let info = serde_json::to_vec_pretty(&self.info).map_err(std::io::Error::other)?;
        std::fs::write(self.dir.join(format!("{base}.json")), info)?;
        let mut writer =
            PcapWriter::create(&self.dir.join(format!("{base}.pcap")))?.flush_each_record(true);
        for (kind, payload) in self.pending.drain(..) {
            writer.record(kind, &payload)?;
        }
        self.writer = Some(writer);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_gives_back_the_config() {
        let config = Config {
            max_storage: 12345,
            max_variable_size: Some(77),
            layout: Layout::IA32,
            allow_policy_disable: true,
            legacy_payload_size: true,
            ..Config::default()
        };
        let info = CaptureInfo::new(&config, None);
        let text = serde_json::to_string(&info).unwrap();
        let back: CaptureInfo = serde_json::from_str(&text).unwrap();
        assert_eq!(back, info);
        let c = back.config().unwrap();
        assert_eq!(c.max_storage, 12345);
        assert_eq!(c.max_variable_size, Some(77));
        assert_eq!(c.layout, Layout::IA32);
        assert!(c.allow_policy_disable && c.legacy_payload_size);
        assert_eq!(c.policy_limits, config.policy_limits);
    }
}
