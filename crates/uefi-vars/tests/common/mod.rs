//! Service constructors for the integration tests. Each installs the
//! capture observer when `UEFI_VARS_CAPTURE_DIR` names a directory (the
//! QEMU oracle's `captures --collect` sets it, see
//! crates/uefi-vars-qemu-oracle/src/captures.rs), so every request the
//! tests send can be replayed through QEMU; without it they are
//! `Service::in_memory` and `Service::new`. The variable is read here, in
//! test code: the library reads none.
#![allow(dead_code)]

use std::path::PathBuf;

use uefi_vars::persist::Storage;
use uefi_vars::{testing, Config, Error, Service};

/// The capture directory the oracle asked for, if any.
pub fn capture_dir() -> Option<PathBuf> {
    std::env::var_os(testing::CAPTURE_DIR_VAR)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// `Service::in_memory`, captured when asked.
pub fn in_memory(config: Config) -> Service {
    testing::in_memory(config, capture_dir().as_deref())
}

/// `Service::new`, captured when asked.
pub fn new(config: Config, storage: Box<dyn Storage>) -> Result<Service, Error> {
    testing::new(config, storage, capture_dir().as_deref())
}
