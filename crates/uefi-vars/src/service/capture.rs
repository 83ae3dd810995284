//! Opt-in capture of every exchange of every [`Service`](super::Service)
//! in the process, so a test suite's requests can be re-sent elsewhere
//! (the QEMU conformance suite, `crates/uefi-vars-qemu-oracle`, replays the
//! library's own tests through QEMU's device this way).
//!
//! Off unless the environment variable [`ENV_VAR`] (`UEFI_VARS_CAPTURE_DIR`)
//! names a directory when the first service of the process is created (it
//! is read once). Then every service writes, into that directory, from its
//! first request on:
//!
//! - `uefi-vars-<pid>-<n>.pcap`: a LINKTYPE_EDK2_MM capture (plain, flushed
//!   after every record): a reset record at creation and at every
//!   [`reset`](super::Service::reset), each request and its reply (none when
//!   the framing was refused, as QEMU logs it), and [`EVENT_RECORD`]
//!   records for host-side changes a replay cannot see in the requests
//!   ([`Event`]);
//! - `uefi-vars-<pid>-<n>.json`: the [`CaptureInfo`] sidecar, the
//!   configuration that decides the replies;
//! - `uefi-vars-<pid>-<n>.start.json`: the store the service loaded, in
//!   QEMU's JSON format, when it was not empty.
//!
//! A service that never gets a request writes nothing. Any I/O error ends
//! that service's capture silently; the service itself is never affected.
//! A capture stops (with an [`Event::Truncated`] record) after
//! [`MAX_CAPTURE_BYTES`] of payload.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::codec::Layout;
use crate::pcap::{FileSink, PcapWriter, RecordKind};
use crate::persist::{json, non_volatile};
use crate::policy::PolicyLimits;
use crate::store::VarStore;

use super::{Config, MmResponse, MAX_BUFFER_SIZE};

/// The environment variable naming the capture directory.
pub const ENV_VAR: &str = "UEFI_VARS_CAPTURE_DIR";

/// Record type (the u32 at the start of a record's data) of host-side
/// events; its payload is a u32 event code and a u64 value ([`Event`]).
/// QEMU's record types are 1 to 3; readers skip unknown ones.
pub const EVENT_RECORD: u32 = 0x5556_4501;

/// Payload bytes after which a capture stops (64 MiB).
pub const MAX_CAPTURE_BYTES: u64 = 64 << 20;

/// Records kept before the first request (resets and events); a service
/// that goes beyond without a request is not captured.
const MAX_PENDING: usize = 1024;

/// Sidecar format version.
pub const INFO_VERSION: u32 = 1;

/// A host-side change recorded in the capture, in order with the requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// [`set_buffer_size`](super::Service::set_buffer_size): the effective
    /// size.
    BufferSize(u32),
    /// [`set_crypto`](super::Service::set_crypto): another PKCS#7 backend.
    Crypto,
    /// [`set_variable`](super::Service::set_variable): a host-side write.
    HostWrite,
    /// A snapshot was restored into the service.
    Restore,
    /// A host-side error was recorded (e.g. a failed store write): the
    /// guest saw the failure.
    HostError,
    /// The capture stopped here ([`MAX_CAPTURE_BYTES`]).
    Truncated,
}

impl Event {
    const BUFFER_SIZE: u32 = 1;
    const CRYPTO: u32 = 2;
    const HOST_WRITE: u32 = 3;
    const RESTORE: u32 = 4;
    const HOST_ERROR: u32 = 5;
    const TRUNCATED: u32 = 6;

    /// The payload of its [`EVENT_RECORD`].
    pub fn encode(self) -> [u8; 12] {
        let (code, value) = match self {
            Event::BufferSize(n) => (Self::BUFFER_SIZE, u64::from(n)),
            Event::Crypto => (Self::CRYPTO, 0),
            Event::HostWrite => (Self::HOST_WRITE, 0),
            Event::Restore => (Self::RESTORE, 0),
            Event::HostError => (Self::HOST_ERROR, 0),
            Event::Truncated => (Self::TRUNCATED, 0),
        };
        let mut out = [0u8; 12];
        out[..4].copy_from_slice(&code.to_le_bytes());
        out[4..].copy_from_slice(&value.to_le_bytes());
        out
    }

    /// Decodes an [`EVENT_RECORD`] payload (`None` if malformed or unknown).
    pub fn decode(payload: &[u8]) -> Option<Event> {
        let code = u32::from_le_bytes(payload.get(..4)?.try_into().ok()?);
        let value = u64::from_le_bytes(payload.get(4..12)?.try_into().ok()?);
        Some(match code {
            Self::BUFFER_SIZE => Event::BufferSize(u32::try_from(value).ok()?),
            Self::CRYPTO => Event::Crypto,
            Self::HOST_WRITE => Event::HostWrite,
            Self::RESTORE => Event::Restore,
            Self::HOST_ERROR => Event::HostError,
            Self::TRUNCATED => Event::Truncated,
            _ => return None,
        })
    }
}

/// The sidecar: what of the service's [`Config`] decides its replies, and
/// where the capture came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureInfo {
    pub version: u32,
    pub pid: u32,
    /// Name of the thread that created the service (the test's name under
    /// the libtest harness), empty if unnamed.
    pub thread: String,
    pub max_storage: u64,
    pub max_variable_size: Option<u64>,
    pub max_name_size: u64,
    pub record_overhead: u64,
    /// Guest word size in bytes (8: x64, 4: IA32).
    pub word_size: u32,
    pub max_policies: usize,
    pub max_policy_bytes: usize,
    pub allow_policy_disable: bool,
    pub force_secure_boot: bool,
    pub disable_custom_mode: bool,
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
            word_size: u32::try_from(config.layout.uintn()).unwrap_or(0),
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

/// The capture directory, read once per process.
fn capture_dir() -> Option<&'static Path> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        std::env::var_os(ENV_VAR)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    })
    .as_deref()
}

/// One service's capture (inert when capturing is off or failed).
#[derive(Debug)]
pub(crate) struct Capture(Option<Box<Active>>);

#[derive(Debug)]
struct Active {
    dir: &'static Path,
    info: CaptureInfo,
    start_store: Option<String>,
    /// Records before the first request, written when it arrives.
    pending: Vec<(RecordKind, Vec<u8>)>,
    writer: Option<PcapWriter<FileSink>>,
    bytes: u64,
}

impl Capture {
    /// A capture for a service with `config` that loaded `store` (inert
    /// unless [`ENV_VAR`] is set).
    pub(crate) fn start(config: &Config, store: &VarStore) -> Capture {
        let Some(dir) = capture_dir() else {
            return Capture(None);
        };
        let start_store = if store.is_empty() {
            None
        } else {
            let vars: Vec<_> = store.iter().collect();
            // A store QEMU's format cannot hold is not captured (a replay
            // would start from another state).
            match json::encode(&non_volatile(&vars)) {
                Ok(text) => Some(text),
                Err(_) => return Capture(None),
            }
        };
        let info = CaptureInfo::new(config, None);
        Capture(Some(Box::new(Active {
            dir,
            info,
            start_store,
            pending: Vec::new(),
            writer: None,
            bytes: 0,
        })))
    }

    /// A machine reset.
    pub(crate) fn reset(&mut self) {
        self.record(RecordKind::Reset, &[]);
    }

    /// A host-side change.
    pub(crate) fn event(&mut self, event: Event) {
        self.record(RecordKind::Other(EVENT_RECORD), &event.encode());
    }

    /// A request and the service's answer.
    pub(crate) fn exchange(&mut self, request: &[u8], response: &MmResponse) {
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

impl Active {
    /// Creates the files (at the first request) and writes what is pending.
    fn open(&mut self) -> std::io::Result<()> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        std::fs::create_dir_all(self.dir)?;
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
    fn events_round_trip() {
        for e in [
            Event::BufferSize(4096),
            Event::Crypto,
            Event::HostWrite,
            Event::Restore,
            Event::HostError,
            Event::Truncated,
        ] {
            assert_eq!(Event::decode(&e.encode()), Some(e));
        }
        assert_eq!(Event::decode(&[1, 0, 0]), None);
        assert_eq!(Event::decode(&[9; 12]), None);
        let mut big = Event::BufferSize(0).encode();
        big[8] = 1;
        assert_eq!(Event::decode(&big), None);
    }

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
