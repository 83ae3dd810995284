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
//! - [`random`]: seeded random request sequences for the conformance suite.

#![forbid(unsafe_code)]

pub mod compare;
pub mod compat;
pub mod guest;
pub mod qemu;
pub mod random;
pub mod script;

use std::path::Path;

use uefi_vars::pcap::PcapWriter;

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
/// replay still sends it, but there is no reply to compare).
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
