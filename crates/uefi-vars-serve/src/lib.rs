//! The uefi-vars service as its own process.
//!
//! - [`server`]: `uefi-vars serve` — one service (one store, one VM) on a
//!   Unix socket, sandboxed after start-up ([`sandbox`]: Landlock and
//!   seccomp), optional LINKTYPE_EDK2_MM capture, clean shutdown on
//!   SIGTERM/SIGINT;
//! - [`logging`]: the service log (text or JSON lines on standard error);
//! - [`cli`]: the `serve` subcommand's arguments and entry point.
//!
//! The VMM side (the socket protocol and `RemoteService`) is the
//! `uefi-vars-client` crate, which a VMM links without this crate's
//! sandbox, CLI parser and OpenSSL.
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
mod files;
pub mod logging;
pub mod privilege;
pub mod remote;
pub mod sandbox;
pub mod server;

pub use server::{ServeOptions, Server};
