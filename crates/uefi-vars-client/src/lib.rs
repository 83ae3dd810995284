//! The VMM side of `uefi-vars serve`: the socket protocol and a client.
//!
//! A VMM that runs the variable service in its own process (`uefi-vars
//! serve`, sandboxed, one store per VM) links only this crate and the
//! device crate:
//!
//! - [`RemoteService`] connects to the service's Unix socket and implements
//!   the device crate's [`MmBackend`](uefi_vars_device::MmBackend), so
//!   [`UefiVarsDevice`](uefi_vars_device::UefiVarsDevice) can sit in front
//!   of it exactly as in front of an in-process [`uefi_vars::Service`];
//! - [`protocol`]: the versioned, length-prefixed frames both sides speak
//!   (`docs/serve-protocol.md`); the server (`uefi-vars-serve`) uses the
//!   same module.
//!
//! This crate pulls no CLI parser, sandbox, signal handling, OpenSSL or
//! compression library (`uefi-vars` without default features).
//!
//! ```no_run
//! use uefi_vars::codec::Layout;
//! use uefi_vars_client::RemoteService;
//! use uefi_vars_device::{SparseRam, UefiVarsDevice};
//!
//! let remote = RemoteService::connect("/run/vm1/uefi-vars.sock", 65536, Layout::X64)?;
//! let dev = UefiVarsDevice::new(remote, SparseRam::new());
//! # Ok::<(), uefi_vars_client::ClientError>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
// Bytes from the socket reach this crate: no panicking shortcuts and no
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

mod client;
pub mod protocol;

pub use client::{ClientError, RemoteService};
