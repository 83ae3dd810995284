//! QEMU as an oracle for the uefi-vars service.
//!
//! The same MM requests go to QEMU's own `uefi-vars-x64` device (through a
//! tiny multiboot guest, `tools/qemu-guest`, that drives the device the way
//! edk2's VirtMmCommunicationDxe does) and to [`uefi_vars::Service`]; every
//! reply and the final JSON stores are compared. Differences that
//! `docs/compat.md` lists are classified by their compat id
//! ([`compat::classify`]); anything else is an unlisted difference.
//!
//! - [`script`]: captures → request scripts for the guest;
//! - [`qemu`]: runs QEMU, returns its replies and final store;
//! - [`compare`]: runs our service over the same steps and compares;
//! - [`compat`]: the allowed differences, keyed by compat id;
//! - [`random`]: seeded random request sequences for the conformance suite;
//! - [`captures`]: the requests the project's own tests send, collected
//!   through the library's capture hook and prepared for QEMU.

#![forbid(unsafe_code)]

pub mod captures;
pub mod compare;
pub mod compat;
pub mod guest;
pub mod qemu;
pub mod random;
pub mod script;

use std::path::Path;

use uefi_vars::pcap::{PcapWriter, RecordKind};
use uefi_vars::service::capture::{Event, EVENT_RECORD};

pub use qemu::{Outcome, QemuOptions, QemuRun};
pub use script::Step;

/// Why a QEMU run could not be done.
#[derive(Debug, thiserror::Error)]
pub enum OracleError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("test guest: {0}")]
    Guest(String),
    #[error("QEMU: {0}")]
    Qemu(String),
    /// QEMU died (a signal or an unexpected exit) before the script ended;
    /// `step` is the first step it did not answer.
    #[error("QEMU crashed at step {step}: {message}")]
    Crashed { step: usize, message: String },
    #[error("capture: {0}")]
    Pcap(#[from] uefi_vars::pcap::PcapError),
}

impl OracleError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        OracleError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// Writes QEMU's answers as a LINKTYPE_EDK2_MM capture in QEMU 11's own
/// format: a reset record per reset, a request record per request, and a
/// reply record when the device wrote a reply back (QEMU 11 logs neither
/// for a request whose framing it refuses; this keeps the request, so a
/// replay still sends it, but there is no reply to compare). Where the
/// guest set BUFFER_SIZE, a buffer-size event record as
/// `uefi_vars::service::capture` writes it.
pub fn write_pcap(outcomes: &[Outcome], path: &Path) -> Result<(), OracleError> {
    let io = |e| OracleError::io(path, e);
    let mut w = if path.extension().is_some_and(|e| e == "gz") {
        PcapWriter::create_gzip(path).map_err(io)?
    } else {
        PcapWriter::create(path).map_err(io)?
    };
    for o in outcomes {
        match o {
            Outcome::Reset => w.reset().map_err(io)?,
            Outcome::BufferSize(n) => w
                .record(
                    RecordKind::Other(EVENT_RECORD),
                    &Event::BufferSize(*n).encode(),
                )
                .map_err(io)?,
            Outcome::Request { request, reply, .. } => {
                w.request(request).map_err(io)?;
                if let Some(r) = reply {
                    w.reply(r).map_err(io)?;
                }
            }
        }
    }
    w.finish().map_err(io)
}
