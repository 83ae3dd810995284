//! The uefi-vars service as its own process, and the VMM side that talks to
//! it.
//!
//! - [`server`]: `uefi-vars serve` — one service (one store, one VM) on a
//!   Unix socket, sandboxed after start-up ([`sandbox`]: Landlock and
//!   seccomp), optional LINKTYPE_EDK2_MM capture, clean shutdown on
//!   SIGTERM/SIGINT;
//! - [`client`]: [`RemoteService`], which implements the device crate's
//!   [`MmBackend`](uefi_vars_device::MmBackend) so a VMM can put
//!   [`UefiVarsDevice`](uefi_vars_device::UefiVarsDevice) in front of a
//!   service in another process;
//! - [`protocol`]: the versioned, length-prefixed frames both sides speak
//!   (`docs/serve-protocol.md`);
//! - [`cli`]: the `serve` subcommand's arguments and entry point.
//!
//! ```no_run
//! use uefi_vars::codec::Layout;
//! use uefi_vars_device::{SparseRam, UefiVarsDevice};
//! use uefi_vars_serve::RemoteService;
//!
//! let remote = RemoteService::connect("/run/vm1/uefi-vars.sock", 65536, Layout::X64)?;
//! let dev = UefiVarsDevice::new(remote, SparseRam::new());
//! # Ok::<(), uefi_vars_serve::ClientError>(())
//! ```
// Unsafe code only in the sandbox self-test's raw system calls
// (sandbox/probes.rs); see Cargo.toml.
#![deny(unsafe_code)]
// Bytes from the guest or the socket reach this crate: no panicking
// shortcuts and no unchecked arithmetic outside tests.
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

pub mod cli;
pub mod client;
mod files;
pub mod privilege;
pub mod protocol;
pub mod remote;
pub mod sandbox;
pub mod server;

pub use client::{ClientError, RemoteService};
pub use server::{ServeOptions, Server};
