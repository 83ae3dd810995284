//! Host side of the UEFI variable service that edk2 firmware talks to through
//! QEMU's `uefi-vars` device (or any VMM that embeds this crate).
//!
//! Layers, each calling only downward:
//! - [`service`]: MM framing, dispatch by header GUID, boot phases;
//! - variable and policy protocol handlers inside [`service`];
//! - [`store`] (ordered variables, accounting), [`policy`] (VariablePolicy
//!   engine), [`auth`] (authenticated writes);
//! - [`persist`]: storage trait and the QEMU JSON file backend.
//!
//! Every guest byte is parsed in [`codec`] and nowhere else.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
// Guest bytes reach most of this crate: no panicking shortcuts and no
// unchecked arithmetic outside tests.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects
    )
)]

pub mod auth;
pub mod codec;
pub mod crc32c;
pub mod crypto;
pub mod devpath;
pub mod envelope;
pub mod error;
pub mod guid;
pub mod name;
pub mod pcap;
pub mod persist;
pub mod policy;
pub mod refusal;
pub mod service;
pub mod siglist;
pub mod status;
pub mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod time;
pub mod varcheck;
pub mod variable;
pub mod well_known;

pub use error::Error;
pub use refusal::{Refusal, Refused};
pub use service::{BootPhase, Config, MmResponse, Service};
pub use status::{DeviceStatus, EfiStatus};
pub mod replay;
