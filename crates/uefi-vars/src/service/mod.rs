//! The variable service: one MM communicate buffer in, one reply out.
//!
//! [`Service::communicate`] stages the request (framing checks), dispatches
//! on the header GUID to the variable protocol, the VarCheck policy protocol
//! or a boot-phase event, and returns the reply buffer together with the
//! device status. State that survives between requests: the variable store,
//! the policies and the boot phase. Persistence goes through a
//! [`Storage`] backend; host-side failures are kept as [`Error`]s for the
//! embedder, the guest only sees EFI status codes.

mod authvars;
#[cfg(any(test, feature = "testing"))]
pub mod capture;
mod log;
pub mod observer;
pub(crate) mod policy_mmi;
mod secure_boot;
mod set_variable;
pub mod snapshot;
pub(crate) mod varcheck;
pub mod vars;

use crate::codec::{Layout, MmBuffer};
use crate::crypto::{default_backend, Pkcs7Backend};
use crate::error::Error;
use crate::guid::{
    END_OF_DXE_EVENT, EXIT_BOOT_SERVICES_EVENT, READY_TO_BOOT_EVENT, SMM_VARIABLE_PROTOCOL,
    VAR_CHECK_POLICY_MMI,
};
use crate::persist::{Change, MemoryStorage, Storage};
use crate::policy::{PolicyEngine, PolicyLimits};
use crate::refusal::Refused;
use crate::status::{DeviceStatus, EfiStatus};
use crate::store::{VarStore, Visibility};
use crate::varcheck::VarCheck;
use crate::variable::Variable;
pub use observer::{Event, ServiceObserver};

/// Largest communication buffer the device accepts (docs/reference/device.md §2).
pub const MAX_BUFFER_SIZE: u32 = 64 * 1024;

/// Host-side errors kept for [`Service::take_errors`]; older ones are
/// dropped beyond this, so a guest hammering a failing store cannot grow
/// host memory when the embedder never collects them.
pub const MAX_PENDING_ERRORS: usize = 64;

/// SetVariable refusals kept for [`Service::take_refusals`], bounded as
/// the host errors are.
pub const MAX_PENDING_REFUSALS: usize = 64;

/// Service settings. Defaults match QEMU's `uefi-vars` device.
///
/// Built from the defaults with one `with_*` method per setting, so a new
/// setting never breaks an embedder:
///
/// ```
/// use uefi_vars::{codec::Layout, Config};
///
/// let config = Config::default()
///     .with_max_storage(128 * 1024)
///     .with_layout(Layout::IA32);
/// assert_eq!(config.max_storage, 128 * 1024);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// Total variable storage (QEMU's `size` property).
    pub max_storage: u64,
    /// MaximumVariableSize reported by QueryVariableInfo; `None` means
    /// `max_storage / 4` as QEMU reports, not enforced. `Some(n)` is also
    /// enforced as edk2 does: a write whose name (with its NUL) plus payload
    /// (after any authentication descriptor; after the merge for APPEND)
    /// exceeds `n` bytes gets EFI_INVALID_PARAMETER.
    pub max_variable_size: Option<u64>,
    /// Largest variable name, in bytes with the NUL, that SetVariable
    /// stores (EFI_INVALID_PARAMETER beyond it). Default 1024: Linux's
    /// `EFI_VAR_NAME_LEN`, so no Linux guest can create a longer one.
    pub max_name_size: u64,
    /// Per-variable overhead counted in the storage accounting (QEMU: 96,
    /// the size of its host-side record).
    pub record_overhead: u64,
    /// Guest word size.
    pub layout: Layout,
    /// Bounds on what the VariablePolicy protocol stores.
    pub policy_limits: PolicyLimits,
    /// edk2's PcdAllowVariablePolicyEnforcementDisable.
    pub allow_policy_disable: bool,
    /// QEMU's `force-secure-boot`.
    pub force_secure_boot: bool,
    /// QEMU's `disable-custom-mode`.
    pub disable_custom_mode: bool,
    /// Answer GET_PAYLOAD_SIZE with the whole buffer size, as QEMU 10.0 to
    /// 10.2 did (later releases, and the default here, leave room for the
    /// 40 header bytes edk2 adds back).
    pub legacy_payload_size: bool,
    /// Leave registered policies out of the storage accounting, as QEMU
    /// 10.0 did. QEMU 11.1 (and the default here) charges every policy a
    /// REGISTER stores with its entry size (`VARIABLE_POLICY_ENTRY.Size`)
    /// against `max_storage`: QueryVariableInfo reports it, and a REGISTER
    /// or SetVariable that does not fit gets EFI_OUT_OF_RESOURCES
    /// (docs/compat.md "Storage accounting").
    pub legacy_storage_accounting: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_storage: 256 * 1024,
            max_variable_size: None,
            max_name_size: 1024,
            record_overhead: 96,
            layout: Layout::X64,
            policy_limits: PolicyLimits::default(),
            allow_policy_disable: false,
            force_secure_boot: false,
            disable_custom_mode: false,
            legacy_payload_size: false,
            legacy_storage_accounting: false,
        }
    }
}

/// One method per field: `Config::default().with_layout(..)`.
impl Config {
    /// Sets [`Config::max_storage`].
    #[must_use]
    pub fn with_max_storage(mut self, max_storage: u64) -> Self {
        self.max_storage = max_storage;
        self
    }

    /// Sets [`Config::max_variable_size`].
    #[must_use]
    pub fn with_max_variable_size(mut self, max_variable_size: Option<u64>) -> Self {
        self.max_variable_size = max_variable_size;
        self
    }

    /// Sets [`Config::max_name_size`].
    #[must_use]
    pub fn with_max_name_size(mut self, max_name_size: u64) -> Self {
        self.max_name_size = max_name_size;
        self
    }

    /// Sets [`Config::record_overhead`].
    #[must_use]
    pub fn with_record_overhead(mut self, record_overhead: u64) -> Self {
        self.record_overhead = record_overhead;
        self
    }

    /// Sets [`Config::layout`].
    #[must_use]
    pub fn with_layout(mut self, layout: Layout) -> Self {
        self.layout = layout;
        self
    }

    /// Sets [`Config::policy_limits`].
    #[must_use]
    pub fn with_policy_limits(mut self, policy_limits: PolicyLimits) -> Self {
        self.policy_limits = policy_limits;
        self
    }

    /// Sets [`Config::allow_policy_disable`].
    #[must_use]
    pub fn with_allow_policy_disable(mut self, allow_policy_disable: bool) -> Self {
        self.allow_policy_disable = allow_policy_disable;
        self
    }

    /// Sets [`Config::force_secure_boot`].
    #[must_use]
    pub fn with_force_secure_boot(mut self, force_secure_boot: bool) -> Self {
        self.force_secure_boot = force_secure_boot;
        self
    }

    /// Sets [`Config::disable_custom_mode`].
    #[must_use]
    pub fn with_disable_custom_mode(mut self, disable_custom_mode: bool) -> Self {
        self.disable_custom_mode = disable_custom_mode;
        self
    }

    /// Sets [`Config::legacy_payload_size`].
    #[must_use]
    pub fn with_legacy_payload_size(mut self, legacy_payload_size: bool) -> Self {
        self.legacy_payload_size = legacy_payload_size;
        self
    }

    /// Sets [`Config::legacy_storage_accounting`].
    #[must_use]
    pub fn with_legacy_storage_accounting(mut self, legacy_storage_accounting: bool) -> Self {
        self.legacy_storage_accounting = legacy_storage_accounting;
        self
    }
}

/// Boot-phase flags; only a machine reset clears them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BootPhase {
    /// EndOfDxe was signalled (or implied by ReadyToBoot).
    pub end_of_dxe: bool,
    /// ReadyToBoot was signalled.
    pub ready_to_boot: bool,
    /// ExitBootServices was signalled: only runtime variables are visible.
    pub exit_boot_services: bool,
}

/// Outcome of one MM request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MmResponse {
    /// What the device reports in CMD_STS.
    pub status: DeviceStatus,
    /// The buffer to write back (header + original MessageLength bytes);
    /// `None` when framing failed and nothing is written back.
    pub reply: Option<Vec<u8>>,
}

/// The host-side UEFI variable service.
pub struct Service {
    config: Config,
    store: VarStore,
    policies: PolicyEngine,
    /// VarCheck properties (functions 9 and 10, VarCheckUefiLib's table).
    varcheck: VarCheck,
    phase: BootPhase,
    storage: Box<dyn Storage>,
    crypto: Box<dyn Pkcs7Backend>,
    buffer_size: u32,
    /// Page cache of a policy DUMP in progress.
    dump_cache: Option<Vec<u8>>,
    errors: Vec<Error>,
    /// The most recent SetVariable refusals, oldest first.
    refusals: std::collections::VecDeque<Refused>,
    /// Bytes the policies REGISTERed since the last reset take from the
    /// storage (QEMU 11.1's accounting, see [`Config::legacy_storage_accounting`]).
    policy_charge: u64,
    /// What the embedder installed with [`Service::set_observer`].
    observer: Option<Box<dyn ServiceObserver>>,
    /// A change went to the storage since the last full save: dropping the
    /// service then compacts a journaling storage.
    changed: bool,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("config", &self.config)
            .field("variables", &self.store.len())
            .field("policies", &self.policies.policies().len())
            .field("phase", &self.phase)
            .field("observed", &self.observer.is_some())
            .finish()
    }
}

impl Service {
    /// Loads the store from `storage` and performs the machine reset that
    /// precedes every boot (Secure Boot state variables are created).
    pub fn new(config: Config, storage: Box<dyn Storage>) -> Result<Self, Error> {
        let mut svc = Service::open(config, storage)?;
        svc.reset()?;
        Ok(svc)
    }

    /// Loads the store without the machine reset: the state host-side tools
    /// edit (no Secure Boot state variables are added, nothing is written
    /// until a change is made).
    pub fn open(config: Config, mut storage: Box<dyn Storage>) -> Result<Self, Error> {
        let loaded = storage.load()?;
        let mut store = VarStore::new(config.record_overhead);
        for var in loaded {
            store.put(var);
        }
        let mut svc = Service::assemble(config, store, storage);
        svc.collect_warnings();
        Ok(svc)
    }

    /// A service over `store`, in the power-on phase.
    fn assemble(config: Config, store: VarStore, storage: Box<dyn Storage>) -> Self {
        Service {
            policies: PolicyEngine::new(config.policy_limits),
            varcheck: VarCheck::new(),
            config,
            store,
            phase: BootPhase::default(),
            storage,
            crypto: default_backend(),
            buffer_size: MAX_BUFFER_SIZE,
            dump_cache: None,
            errors: Vec::new(),
            refusals: std::collections::VecDeque::new(),
            policy_charge: 0,
            observer: None,
            changed: false,
        }
    }

    /// A service with no backing file (everything in memory).
    pub fn in_memory(config: Config) -> Self {
        let store = VarStore::new(config.record_overhead);
        let mut svc = Service::assemble(config, store, Box::new(MemoryStorage::new()));
        // In-memory storage cannot fail to save.
        let _ = svc.reset();
        svc
    }

    /// Installs (or with `None` removes) the observer that is told of
    /// every reset, request and host-side change from now on
    /// ([`observer`]); returns the one it replaces. Nothing is observed
    /// until an embedder calls this.
    pub fn set_observer(
        &mut self,
        observer: Option<Box<dyn ServiceObserver>>,
    ) -> Option<Box<dyn ServiceObserver>> {
        std::mem::replace(&mut self.observer, observer)
    }

    fn notify(&mut self, event: Event) {
        if let Some(o) = self.observer.as_mut() {
            o.event(event);
        }
    }

    /// Replaces the PKCS#7 verification backend.
    pub fn set_crypto(&mut self, backend: Box<dyn Pkcs7Backend>) {
        self.notify(Event::Crypto);
        self.crypto = backend;
    }

    /// Machine reset: boot phase and policies cleared, volatile variables
    /// dropped, Secure Boot state variables regenerated and the store
    /// written.
    pub fn reset(&mut self) -> Result<(), Error> {
        if let Some(o) = self.observer.as_mut() {
            o.reset();
        }
        self.phase = BootPhase::default();
        self.policies.clear();
        self.varcheck = VarCheck::new();
        // compat: policy-charge-reset (QEMU 11.1 keeps charging the
        // policies a reset dropped until the process restarts)
        self.policy_charge = 0;
        self.dump_cache = None;
        self.store.retain(Variable::is_non_volatile);
        self.init_secure_boot_state();
        self.save_store()
    }

    /// Bytes counted against `max_storage`: every variable's record
    /// (`VarStore::cost`) and the policies' charge.
    pub fn used_storage(&self) -> u64 {
        self.store.used().saturating_add(self.policy_charge)
    }

    /// The communication buffer size the guest negotiated (BUFFER_SIZE).
    pub fn set_buffer_size(&mut self, size: u32) {
        self.buffer_size = size.min(MAX_BUFFER_SIZE);
        self.notify(Event::BufferSize(self.buffer_size));
    }

    /// The negotiated buffer size.
    pub fn buffer_size(&self) -> u32 {
        self.buffer_size
    }

    /// The settings the service runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The boot phase.
    pub fn phase(&self) -> BootPhase {
        self.phase
    }

    /// The variables.
    pub fn store(&self) -> &VarStore {
        &self.store
    }

    /// The VariablePolicy engine.
    pub fn policies(&self) -> &PolicyEngine {
        &self.policies
    }

    /// The VarCheck property table.
    pub fn varcheck(&self) -> &VarCheck {
        &self.varcheck
    }

    /// Host-side errors since the last call (e.g. a failed store write),
    /// at most the [`MAX_PENDING_ERRORS`] most recent.
    pub fn take_errors(&mut self) -> Vec<Error> {
        std::mem::take(&mut self.errors)
    }

    fn record_error(&mut self, e: Error) {
        log::host_error(&e);
        self.notify(Event::HostError);
        if self.errors.len() >= MAX_PENDING_ERRORS {
            self.errors.remove(0);
        }
        self.errors.push(e);
    }

    /// SetVariable refusals since the last call (why a write got an error
    /// status), at most the [`MAX_PENDING_REFUSALS`] most recent, oldest
    /// first.
    pub fn take_refusals(&mut self) -> Vec<Refused> {
        self.refusals.drain(..).collect()
    }

    /// The most recent refusal still kept.
    pub fn last_refusal(&self) -> Option<&Refused> {
        self.refusals.back()
    }

    fn record_refusal(&mut self, r: Refused) {
        if self.refusals.len() >= MAX_PENDING_REFUSALS {
            self.refusals.pop_front();
        }
        self.refusals.push_back(r);
    }

    /// Host-side SetVariable (CLI, tooling): the same decision procedure the
    /// guest's requests go through, in the current boot phase.
    pub fn set_variable(
        &mut self,
        guid: crate::guid::Guid,
        name: crate::name::VarName,
        attributes: u32,
        data: &[u8],
    ) -> crate::status::EfiStatus {
        self.notify(Event::HostWrite);
        self.set(guid, name, attributes, data)
    }

    /// Processes one MM communicate buffer.
    pub fn communicate(&mut self, request: &[u8]) -> MmResponse {
        let response = self.dispatch(request);
        if let Some(o) = self.observer.as_mut() {
            o.exchange(request, &response);
        }
        response
    }

    fn dispatch(&mut self, request: &[u8]) -> MmResponse {
        let mut buf = match MmBuffer::stage(request, self.buffer_size as usize, self.config.layout)
        {
            Ok(b) => b,
            Err(status) => {
                return MmResponse {
                    status,
                    reply: None,
                }
            }
        };
        let guid = buf.header_guid();
        let status = if guid == SMM_VARIABLE_PROTOCOL {
            self.variable_protocol(&mut buf)
        } else if guid == VAR_CHECK_POLICY_MMI {
            self.policy_protocol(&mut buf)
        } else if guid == END_OF_DXE_EVENT {
            self.end_of_dxe();
            DeviceStatus::Success
        } else if guid == READY_TO_BOOT_EVENT {
            self.ready_to_boot();
            DeviceStatus::Success
        } else if guid == EXIT_BOOT_SERVICES_EVENT {
            self.phase.exit_boot_services = true;
            DeviceStatus::Success
        } else {
            DeviceStatus::ErrNotSupported
        };
        MmResponse {
            status,
            reply: Some(buf.into_reply()),
        }
    }

    /// edk2 locks the policy interface itself at EndOfDxe, and VarCheckLib
    /// starts checking and closes property registration
    /// (VarCheckLibInitializeAtEndOfDxe).
    fn end_of_dxe(&mut self) {
        self.phase.end_of_dxe = true;
        self.policies.lock();
        self.varcheck.end_of_dxe();
    }

    /// edk2 performs the EndOfDxe actions at ReadyToBoot if EndOfDxe never
    /// arrived.
    fn ready_to_boot(&mut self) {
        self.phase.ready_to_boot = true;
        if !self.phase.end_of_dxe {
            self.end_of_dxe();
        }
    }

    fn visibility(&self) -> Visibility {
        if self.phase.exit_boot_services {
            Visibility::Runtime
        } else {
            Visibility::BootServices
        }
    }

    fn save_store(&mut self) -> Result<(), Error> {
        let vars: Vec<&Variable> = self.store.iter().collect();
        let saved = self.storage.save(&vars);
        self.collect_warnings();
        saved?;
        self.changed = false;
        Ok(())
    }

    /// Makes one change durable before the store takes it: on failure the
    /// error is kept for [`take_errors`](Self::take_errors) and the guest
    /// gets DEVICE_ERROR (compat: store-write-failure).
    fn persist_change(&mut self, change: Change<'_>) -> Result<(), EfiStatus> {
        let done = self.storage.apply(change, &self.store);
        self.collect_warnings();
        if let Err(e) = done {
            self.record_error(e.into());
            return Err(EfiStatus::DEVICE_ERROR);
        }
        self.changed = true;
        Ok(())
    }

    /// Moves the storage's warnings (torn journal tail, failed compaction)
    /// to the host-side errors.
    fn collect_warnings(&mut self) {
        while let Some(w) = self.storage.take_warning() {
            self.record_error(w.into());
        }
    }

    /// Brings the storage's primary file up to date if acknowledged changes
    /// live only in its journal (clean stop, `uefi-vars compact`); a no-op
    /// otherwise.
    pub fn compact(&mut self) -> Result<(), Error> {
        if self.storage.pending() {
            self.save_store()?;
        }
        Ok(())
    }
}

impl Drop for Service {
    /// A service that made changes leaves a complete JSON file behind
    /// (best effort: an embedder that needs the outcome calls
    /// [`Service::compact`]). One that only read changes nothing.
    fn drop(&mut self) {
        if self.changed {
            let _ = self.compact();
        }
    }
}
