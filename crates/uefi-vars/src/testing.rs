//! Test helpers (the `testing` feature; never needed by an embedder).
//!
//! Service constructors for test suites that may be asked to capture: each
//! builds the service as its namesake on [`Service`] does and, when given
//! a directory, installs a [`CaptureObserver`] there before the first
//! request (for [`new`] and [`in_memory`] before the power-on reset, so the
//! capture starts with it as QEMU's device starts). The QEMU oracle's
//! `captures --collect` sets [`CAPTURE_DIR_VAR`] for the test binaries it
//! runs; the tests read it themselves and pass the directory here (the
//! library reads no environment variable).
//!
//! The request builders are [`crate::codec::request`], the storage fault
//! injection [`crate::persist::fault`].

use std::path::Path;

use crate::persist::{MemoryStorage, Storage};
use crate::service::capture::CaptureObserver;
use crate::service::snapshot::SnapshotError;
use crate::{Config, Error, Service};

/// The environment variable through which the QEMU oracle hands test
/// binaries a capture directory (read by the tests, not by this crate).
pub const CAPTURE_DIR_VAR: &str = "UEFI_VARS_CAPTURE_DIR";

/// Installs a capture into `dir` on `svc`, from its present state.
pub fn capture_into(svc: &mut Service, dir: &Path) {
    let observer = CaptureObserver::new(dir, svc);
    svc.set_observer(Some(Box::new(observer)));
}

fn observed(mut svc: Service, capture: Option<&Path>) -> Service {
    if let Some(dir) = capture {
        capture_into(&mut svc, dir);
    }
    svc
}

/// [`Service::new`], captured into `capture` if given.
pub fn new(
    config: Config,
    storage: Box<dyn Storage>,
    capture: Option<&Path>,
) -> Result<Service, Error> {
    let mut svc = observed(Service::open(config, storage)?, capture);
    svc.reset()?;
    Ok(svc)
}

/// [`Service::in_memory`], captured into `capture` if given.
pub fn in_memory(config: Config, capture: Option<&Path>) -> Service {
    let Some(dir) = capture else {
        return Service::in_memory(config);
    };
    // An empty MemoryStorage always loads; were it ever not to, the
    // service is still the one asked for, only not captured.
    let mut svc = match Service::open(config.clone(), Box::new(MemoryStorage::new())) {
        Ok(svc) => svc,
        Err(_) => return Service::in_memory(config),
    };
    capture_into(&mut svc, dir);
    // In-memory storage cannot fail to save (as Service::in_memory).
    let _ = svc.reset();
    svc
}

/// [`Service::open`] (no power-on reset), captured into `capture` if given.
pub fn open(
    config: Config,
    storage: Box<dyn Storage>,
    capture: Option<&Path>,
) -> Result<Service, Error> {
    Ok(observed(Service::open(config, storage)?, capture))
}

/// [`Service::restore`], captured into `capture` if given (from the
/// restored state on).
pub fn restore(
    config: Config,
    storage: Box<dyn Storage>,
    blob: &[u8],
    capture: Option<&Path>,
) -> Result<Service, SnapshotError> {
    Ok(observed(Service::restore(config, storage, blob)?, capture))
}
