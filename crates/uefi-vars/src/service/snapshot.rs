//! Snapshot and restore of the service state (live migration, save/restore
//! of a VM).
//!
//! [`Service::snapshot`] serialises everything the guest can observe into a
//! versioned byte blob; [`Service::restore`] (a new service) and
//! [`Service::restore_into`] (in place) bring it back, so that a guest that
//! continues on the restored service gets exactly the replies it would have
//! got from the original one.
//!
//! # What is in the blob
//!
//! - the guest word size (checked, not applied: it must match the
//!   destination's [`Config::layout`]);
//! - the boot phase flags (EndOfDxe, ReadyToBoot, ExitBootServices);
//! - the policy engine's flags (interface locked, enforcement disabled);
//! - the communication buffer size the guest negotiated;
//! - every variable, volatile ones included, in enumeration order: GUID,
//!   name, attributes, data, timestamp, signer digest;
//! - the registered policies as their raw VARIABLE_POLICY_ENTRY bytes, in
//!   registration order (match ties go to the earliest registered, and DUMP
//!   returns them in that order);
//! - the page cache of a policy DUMP in progress (a guest may be migrated
//!   between two pages).
//!
//! # What is not
//!
//! - The [`Config`] and the [`Storage`]: they are the destination host's
//!   settings and file, as QEMU takes `size` and `jsonfile` from the
//!   destination's command line. Only the guest word size is recorded, and
//!   a mismatch is an error ([`SnapshotError::LayoutMismatch`]): the guest's
//!   buffers would be misread otherwise. Storage accounting is recomputed
//!   from the variables with the destination's `record_overhead`, and the
//!   policies are registered again under the destination's
//!   [`PolicyLimits`](crate::policy::PolicyLimits).
//! - The PKCS#7 backend (code, not state) and the pending host-side errors
//!   (diagnostics for the source host's embedder).
//! - Internal store positions: only the order matters, and it is kept.
//!
//! # Format (version 1)
//!
//! All integers little-endian, lengths checked against the blob before any
//! allocation.
//!
//! ```text
//! magic        8 bytes  "UEFIVSNP"
//! version      u32      FORMAT_VERSION
//! body_length  u64      bytes between this field and the checksum
//! body:
//!   uintn      u8       guest word size in bytes (4 or 8)
//!   phase      u32      bit 0 EndOfDxe, bit 1 ReadyToBoot, bit 2 ExitBootServices
//!   policy     u32      bit 0 interface locked, bit 1 enforcement disabled
//!   buf_size   u32      negotiated communication buffer size (<= 64 KiB)
//!   var_count  u32, then per variable:
//!     guid       16 bytes
//!     name_units u32, then that many u16 (UCS-2, no NUL)
//!     attributes u32
//!     time       16 bytes (EFI_TIME as stored)
//!     data_len   u32, then data
//!     has_digest u8 (0 or 1), then digest_len u32 and digest if 1
//!   policy_count u32, then per policy: raw_len u32, raw entry
//!   has_dump   u8 (0 or 1), then dump_len u32 and the cached table if 1
//! crc32c       u32      CRC-32C (Castagnoli) of everything before it
//! ```
//!
//! The version is checked before the checksum, so a blob from a newer
//! format (whose trailer may differ) is reported as
//! [`SnapshotError::UnsupportedVersion`], not as corruption. CRC-32C
//! detects every burst error up to 32 bits, so any single corrupted byte is
//! caught; it guards against accidents, not against a forger, which is why
//! the decoded state is also validated (names, data, duplicate keys,
//! policy entries parsed as at registration) and a crafted blob at worst
//! restores a state the service could hold anyway.
//!
//! # The store file
//!
//! Restoring writes the store through the destination's [`Storage`], as
//! QEMU rewrites its JSON file after an incoming migration: the file then
//! matches the restored variables even if the source changed them after the
//! file was last copied. A failed write does not fail the restore (the
//! guest continues as after any failed store write); it is reported by
//! [`Service::take_errors`].

use super::{BootPhase, Config, Service, MAX_BUFFER_SIZE};
use crate::codec::{ucs2_units, PolicyEntryHeader, POLICY_ENTRY_HEADER_SIZE};
use crate::codec::{Malformed, Reader};
use crate::envelope::{self, EnvelopeError};
use crate::guid::Guid;
use crate::name::VarName;
use crate::persist::Storage;
use crate::policy::{Policy, PolicyEngine};
use crate::status::EfiStatus;
use crate::store::VarStore;
use crate::time::EfiTime;
use crate::variable::{Attributes, Variable};

/// First bytes of every service snapshot.
pub const MAGIC: [u8; 8] = *b"UEFIVSNP";
/// The format version written, and the newest one read.
pub const FORMAT_VERSION: u32 = 1;

const PHASE_END_OF_DXE: u32 = 1 << 0;
const PHASE_READY_TO_BOOT: u32 = 1 << 1;
const PHASE_EXIT_BOOT_SERVICES: u32 = 1 << 2;
const PHASE_KNOWN: u32 = PHASE_END_OF_DXE | PHASE_READY_TO_BOOT | PHASE_EXIT_BOOT_SERVICES;

const POLICY_LOCKED: u32 = 1 << 0;
const POLICY_DISABLED: u32 = 1 << 1;
const POLICY_KNOWN: u32 = POLICY_LOCKED | POLICY_DISABLED;

/// Why a snapshot could not be restored. Nothing is changed when restoring
/// fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The blob ends before its header, or before the length its header
    /// gives.
    #[error("snapshot truncated: {available} bytes, {needed} needed")]
    Truncated {
        /// Bytes the blob should have.
        needed: u64,
        /// Bytes it has.
        available: u64,
    },
    /// Not a service snapshot.
    #[error("not a uefi-vars service snapshot (bad magic)")]
    BadMagic,
    /// Written by a newer (or unknown) format version.
    #[error(
        "snapshot format version {found} is not supported (this build reads up to {supported})"
    )]
    UnsupportedVersion {
        /// The blob's format version.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
    /// More bytes than the header accounts for.
    #[error("snapshot has {extra} unexpected trailing bytes")]
    TrailingBytes {
        /// Bytes past the end the header gives.
        extra: u64,
    },
    /// The checksum does not match the content: the blob was corrupted.
    #[error("snapshot corrupted: CRC-32C {computed:#010x}, stored {stored:#010x}")]
    ChecksumMismatch {
        /// The CRC-32C in the blob.
        stored: u32,
        /// The CRC-32C of the content.
        computed: u32,
    },
    /// The body does not follow the format (a field runs past the end, a
    /// flag byte has an unknown value, bytes are left over).
    #[error("malformed snapshot at body offset {offset}: {what}")]
    Malformed {
        /// Offset of the field in the body.
        offset: usize,
        /// What the format wants there.
        what: String,
    },
    /// The body decodes but describes a state the service cannot be in.
    #[error("invalid snapshot content: {0}")]
    Invalid(String),
    /// Taken for a guest with a different word size than the destination's
    /// configuration.
    #[error("snapshot is for a guest with {snapshot}-byte UINTN, the configuration says {config}")]
    LayoutMismatch {
        /// The snapshot's UINTN size in bytes.
        snapshot: usize,
        /// The configuration's.
        config: usize,
    },
}

/// The decoded, validated state, applied in one go.
struct State {
    phase: BootPhase,
    buffer_size: u32,
    store: VarStore,
    policies: PolicyEngine,
    dump_cache: Option<Vec<u8>>,
}

impl Service {
    /// The whole guest-visible service state as a versioned blob (see the
    /// [module documentation](self) for the format).
    pub fn snapshot(&self) -> Vec<u8> {
        let mut body = Writer::default();
        body.u8(u8::try_from(self.config.layout.uintn()).unwrap_or(u8::MAX));
        let phase = (if self.phase.end_of_dxe {
            PHASE_END_OF_DXE
        } else {
            0
        }) | (if self.phase.ready_to_boot {
            PHASE_READY_TO_BOOT
        } else {
            0
        }) | (if self.phase.exit_boot_services {
            PHASE_EXIT_BOOT_SERVICES
        } else {
            0
        });
        body.u32(phase);
        let policy = (if self.policies.is_locked() {
            POLICY_LOCKED
        } else {
            0
        }) | (if self.policies.is_enabled() {
            0
        } else {
            POLICY_DISABLED
        });
        body.u32(policy);
        body.u32(self.buffer_size);

        body.len32(self.store.len());
        for var in self.store.iter() {
            body.bytes(&var.guid.0);
            let units = var.name.units();
            body.len32(units.len());
            for &u in units {
                body.u16(u);
            }
            body.u32(var.attributes);
            body.bytes(&var.time.0);
            body.blob(&var.data);
            match &var.digest {
                None => body.u8(0),
                Some(d) => {
                    body.u8(1);
                    body.blob(d);
                }
            }
        }

        let policies = self.policies.policies();
        body.len32(policies.len());
        for p in policies {
            body.blob(&p.raw);
        }

        match &self.dump_cache {
            None => body.u8(0),
            Some(c) => {
                body.u8(1);
                body.blob(c);
            }
        }

        envelope::seal(&MAGIC, FORMAT_VERSION, &body.0)
    }

    /// A service in the state `blob` describes, with the destination's
    /// `config` and `storage`. `storage` is not loaded (the snapshot's
    /// variables replace whatever it holds) but written with the restored
    /// variables; a failed write is reported by [`take_errors`](Self::take_errors).
    pub fn restore(
        config: Config,
        storage: Box<dyn Storage>,
        blob: &[u8],
    ) -> Result<Service, SnapshotError> {
        let state = decode(&config, blob)?;
        // An in-memory service (its own state is replaced below) on the
        // destination's storage: nothing is loaded from `storage`.
        let mut svc = Service::in_memory(config);
        svc.storage = storage;
        svc.apply(state);
        Ok(svc)
    }

    /// Replaces this service's state with the one in `blob`, keeping its
    /// configuration, storage and PKCS#7 backend, then writes the store.
    /// On error nothing changes.
    pub fn restore_into(&mut self, blob: &[u8]) -> Result<(), SnapshotError> {
        let state = decode(&self.config, blob)?;
        self.apply(state);
        Ok(())
    }

    /// Installs a decoded state and writes the store (a failure is kept for
    /// `take_errors`, as after any failed store write).
    fn apply(&mut self, state: State) {
        self.notify(super::Event::Restore);
        self.phase = state.phase;
        self.buffer_size = state.buffer_size;
        self.store = state.store;
        self.policies = state.policies;
        // The policies' storage charge is not in the snapshot: as after
        // QEMU's own migration (uefi_vars_post_load recounts the variables
        // only, hw/uefi/var-service-core.c), a restored service starts
        // with none.
        self.policy_charge = 0;
        self.dump_cache = state.dump_cache;
        // VarCheck properties are not in the snapshot (format 1): the
        // UEFI-defined ones come back, enforced from EndOfDxe on.
        self.varcheck = crate::varcheck::VarCheck::new();
        if self.phase.end_of_dxe {
            self.varcheck.end_of_dxe();
        }
        if let Err(e) = self.save_store() {
            self.record_error(e);
        }
    }
}

/// Checks the envelope (length, magic, version, checksum) and decodes the
/// body.
fn decode(config: &Config, blob: &[u8]) -> Result<State, SnapshotError> {
    let body = envelope::open(blob, &MAGIC, FORMAT_VERSION)?;
    decode_body(config, body)
}

impl From<EnvelopeError> for SnapshotError {
    fn from(e: EnvelopeError) -> Self {
        match e {
            EnvelopeError::Truncated { needed, available } => Self::Truncated { needed, available },
            EnvelopeError::BadMagic => Self::BadMagic,
            EnvelopeError::UnsupportedVersion { found, supported } => {
                Self::UnsupportedVersion { found, supported }
            }
            EnvelopeError::TrailingBytes { extra } => Self::TrailingBytes { extra },
            EnvelopeError::ChecksumMismatch { stored, computed } => {
                Self::ChecksumMismatch { stored, computed }
            }
        }
    }
}

fn decode_body(config: &Config, body: &[u8]) -> Result<State, SnapshotError> {
    let mut r = Reader::new(body);

    let uintn = usize::from(r.u8("guest word size")?);
    if uintn != config.layout.uintn() {
        return Err(SnapshotError::LayoutMismatch {
            snapshot: uintn,
            config: config.layout.uintn(),
        });
    }

    let at = r.pos();
    let phase_bits = r.u32("boot phase flags")?;
    if phase_bits & !PHASE_KNOWN != 0 {
        return Err(malformed(
            at,
            format!("unknown boot phase flags {phase_bits:#x}"),
        ));
    }
    let phase = BootPhase {
        end_of_dxe: phase_bits & PHASE_END_OF_DXE != 0,
        ready_to_boot: phase_bits & PHASE_READY_TO_BOOT != 0,
        exit_boot_services: phase_bits & PHASE_EXIT_BOOT_SERVICES != 0,
    };

    let at = r.pos();
    let policy_bits = r.u32("policy flags")?;
    if policy_bits & !POLICY_KNOWN != 0 {
        return Err(malformed(
            at,
            format!("unknown policy flags {policy_bits:#x}"),
        ));
    }

    let buffer_size = r.u32("buffer size")?;
    if buffer_size > MAX_BUFFER_SIZE {
        return Err(SnapshotError::Invalid(format!(
            "buffer size {buffer_size} above the maximum {MAX_BUFFER_SIZE}"
        )));
    }

    let mut store = VarStore::new(config.record_overhead);
    let count = r.u32("variable count")?;
    for index in 0..count {
        let var = read_variable(&mut r, index)?;
        check_variable(&var).map_err(|problem| {
            SnapshotError::Invalid(format!("variable #{index} ({}): {problem}", var.name))
        })?;
        if store.get(&var.key()).is_some() {
            return Err(SnapshotError::Invalid(format!(
                "variable #{index} ({}): GUID and name given twice",
                var.name
            )));
        }
        store.put(var);
    }

    let mut policies = PolicyEngine::new(config.policy_limits);
    let count = r.u32("policy count")?;
    for index in 0..count {
        let raw = r.blob("policy entry")?;
        let policy = policy_from_raw(raw).ok_or_else(|| {
            SnapshotError::Invalid(format!("policy #{index}: not a valid policy entry"))
        })?;
        policies.register(policy).map_err(|status| {
            SnapshotError::Invalid(match status {
                EfiStatus::ALREADY_STARTED => {
                    format!("policy #{index}: same namespace and name as an earlier one")
                }
                EfiStatus::OUT_OF_RESOURCES => {
                    format!("policy #{index}: beyond the configured policy limits")
                }
                other => format!("policy #{index}: refused ({other})"),
            })
        })?;
    }
    // Registration first: the flags forbid it.
    if policy_bits & POLICY_DISABLED != 0 {
        // A fresh engine is neither locked nor disabled, so this succeeds;
        // `true` because the source already allowed it.
        let _ = policies.disable(true);
    }
    if policy_bits & POLICY_LOCKED != 0 {
        policies.lock();
    }

    let dump_cache = match r.flag("dump cache flag")? {
        false => None,
        true => Some(r.blob("dump cache")?.to_vec()),
    };

    if r.remaining() != 0 {
        return Err(malformed(
            r.pos(),
            format!("{} bytes left after the last field", r.remaining()),
        ));
    }

    Ok(State {
        phase,
        buffer_size,
        store,
        policies,
        dump_cache,
    })
}

fn read_variable(r: &mut Reader<'_>, index: u32) -> Result<Variable, SnapshotError> {
    let what = |field: &str| format!("variable #{index} {field}");
    let guid = Guid(r.array(&what("GUID"))?);
    let units = r.u32(&what("name length"))?;
    let units = usize::try_from(units).map_err(|_| malformed(r.pos(), what("name length")))?;
    let name_bytes = units
        .checked_mul(2)
        .ok_or_else(|| malformed(r.pos(), what("name length")))?;
    let name = r.take(name_bytes, &what("name"))?;
    let name = VarName::from_units(ucs2_units(name));
    let attributes = r.u32(&what("attributes"))?;
    let time = EfiTime(r.array(&what("time"))?);
    let data = r.blob(&what("data"))?.to_vec();
    let digest = match r.flag(&what("digest flag"))? {
        false => None,
        true => Some(r.blob(&what("digest"))?.to_vec()),
    };
    Ok(Variable {
        guid,
        name,
        attributes,
        data,
        time,
        digest,
    })
}

/// What the service itself guarantees of a stored variable (and the JSON
/// store needs to write it).
fn check_variable(var: &Variable) -> Result<(), String> {
    let units = var.name.units();
    if units.is_empty() {
        return Err("empty name".into());
    }
    if let Some(pos) = units.iter().position(|&u| u == 0) {
        return Err(format!("NUL unit in the name at position {pos}"));
    }
    if let Some(pos) = units.iter().position(|u| (0xd800..=0xdfff).contains(u)) {
        return Err(format!("surrogate unit in the name at position {pos}"));
    }
    if var.data.is_empty() {
        return Err("empty data".into());
    }
    if var.attrs().contains(Attributes::APPEND_WRITE) {
        return Err("APPEND_WRITE in the stored attributes".into());
    }
    if var.digest.as_ref().is_some_and(Vec::is_empty) {
        return Err("empty digest".into());
    }
    Ok(())
}

/// A registered policy from its raw entry: either one the guest registered
/// (it parses exactly as at registration) or a legacy VariableLock
/// converted to LOCK_NOW, rebuilt the same way (LOCK_VARIABLE accepts names
/// REGISTER refuses, e.g. with more than 255 `#`).
fn policy_from_raw(raw: &[u8]) -> Option<Policy> {
    if let Some(p) = Policy::parse(raw).filter(|p| p.raw == raw) {
        return Some(p);
    }
    let header = PolicyEntryHeader::parse(raw)?;
    let name = VarName::parse_wire(raw.get(POLICY_ENTRY_HEADER_SIZE..)?).ok()?;
    if name.is_empty() {
        return None;
    }
    let p = Policy::lock_now(header.namespace, &name);
    (p.raw == raw).then_some(p)
}

impl From<Malformed> for SnapshotError {
    fn from(m: Malformed) -> Self {
        Self::Malformed {
            offset: m.offset,
            what: m.what,
        }
    }
}

fn malformed(offset: usize, what: impl Into<String>) -> SnapshotError {
    SnapshotError::Malformed {
        offset,
        what: what.into(),
    }
}

/// Little-endian encoder.
#[derive(Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }
    /// A length as u32. Every length written here is bounded far below
    /// 4 GiB by the service (storage quota, 64 KiB buffers, policy limits);
    /// saturating keeps a broken invariant detectable on restore instead of
    /// panicking here.
    fn len32(&mut self, len: usize) {
        self.u32(u32::try_from(len).unwrap_or(u32::MAX));
    }
    /// Length-prefixed bytes.
    fn blob(&mut self, b: &[u8]) {
        self.len32(b.len());
        self.bytes(b);
    }
}

pub use crate::crc32c::crc32c;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::{CHECKSUM_LEN, HEADER_LEN};
    use crate::guid::GLOBAL_VARIABLE;
    use crate::variable::attr;

    #[test]
    fn crc_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(&[]), 0);
    }

    /// Fields the guest traffic in the captures never produces: a private
    /// authenticated variable's digest and time, a volatile variable, a
    /// legacy VariableLock policy, a DUMP in progress, disabled policies.
    fn unusual_service() -> Service {
        let mut svc = Service::in_memory(Config::default());
        let mut private = Variable::new(
            Guid([7; 16]),
            VarName::from("Private"),
            attr::NON_VOLATILE
                | attr::BOOTSERVICE_ACCESS
                | attr::RUNTIME_ACCESS
                | attr::TIME_BASED_AUTHENTICATED_WRITE_ACCESS,
            vec![1, 2, 3],
        );
        private.time = EfiTime([0xe9, 7, 5, 17, 1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        private.digest = Some(vec![0xab; 32]);
        svc.store.put(private);
        svc.store.put(Variable::new(
            GLOBAL_VARIABLE,
            VarName::from("Volatile\u{00e9}"),
            attr::BOOTSERVICE_ACCESS,
            vec![9],
        ));
        let hashes: String = "#".repeat(300);
        svc.policies
            .register(Policy::lock_now(
                GLOBAL_VARIABLE,
                &VarName::from(hashes.as_str()),
            ))
            .unwrap();
        svc.policies
            .register(Policy::lock_now(GLOBAL_VARIABLE, &VarName::from("Locked")))
            .unwrap();
        svc.policies.disable(true).unwrap();
        svc.policies.lock();
        svc.dump_cache = Some(svc.policies.dump());
        svc.phase.end_of_dxe = true;
        svc.buffer_size = 4096;
        svc
    }

    #[test]
    fn unusual_state_round_trips() {
        let svc = unusual_service();
        let blob = svc.snapshot();
        let restored = Service::restore(
            Config::default(),
            Box::new(crate::persist::MemoryStorage::new()),
            &blob,
        )
        .unwrap();
        assert_eq!(restored.snapshot(), blob);
        assert!(restored.store.iter().eq(svc.store.iter()));
        assert_eq!(restored.policies.policies(), svc.policies.policies());
        assert!(restored.policies.is_locked());
        assert!(!restored.policies.is_enabled());
        assert_eq!(restored.dump_cache, svc.dump_cache);
        assert_eq!(restored.phase, svc.phase);
        assert_eq!(restored.buffer_size, 4096);
        assert_eq!(restored.store.used(), svc.store.used());
    }

    fn restore_err(blob: &[u8]) -> SnapshotError {
        Service::restore(
            Config::default(),
            Box::new(crate::persist::MemoryStorage::new()),
            blob,
        )
        .unwrap_err()
    }

    /// Body: uintn u8, phase u32, policy u32, buffer size u32, variable
    /// count u32 at 13, variables, policy count u32, policies, dump flag.
    #[test]
    fn duplicates_are_invalid() {
        let mut svc = Service::in_memory(Config::default());
        svc.store.clear();
        svc.store.put(Variable::new(
            GLOBAL_VARIABLE,
            VarName::from("A"),
            7,
            vec![1],
        ));
        let blob = svc.snapshot();
        let body = &blob[HEADER_LEN..blob.len() - CHECKSUM_LEN];
        let record = &body[17..body.len() - 4 - 1];
        let mut forged = body[..13].to_vec();
        forged.extend_from_slice(&2u32.to_le_bytes());
        forged.extend_from_slice(record);
        forged.extend_from_slice(record);
        forged.extend_from_slice(&body[body.len() - 5..]);
        let err = restore_err(&seal(&forged));
        assert!(
            matches!(&err, SnapshotError::Invalid(m) if m.contains("given twice")),
            "{err}"
        );

        let mut svc = Service::in_memory(Config::default());
        svc.store.clear();
        svc.policies
            .register(Policy::lock_now(GLOBAL_VARIABLE, &VarName::from("L")))
            .unwrap();
        let blob = svc.snapshot();
        let body = &blob[HEADER_LEN..blob.len() - CHECKSUM_LEN];
        // no variables: the policy count is at 17
        let record = &body[21..body.len() - 1];
        let mut forged = body[..17].to_vec();
        forged.extend_from_slice(&2u32.to_le_bytes());
        forged.extend_from_slice(record);
        forged.extend_from_slice(record);
        forged.push(0);
        let err = restore_err(&seal(&forged));
        assert!(
            matches!(&err, SnapshotError::Invalid(m) if m.contains("policy #1")),
            "{err}"
        );
    }

    fn seal(body: &[u8]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&(body.len() as u64).to_le_bytes());
        out.extend_from_slice(body);
        let crc = crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }
}
