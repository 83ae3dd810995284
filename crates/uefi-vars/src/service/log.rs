//! The service's structured log events, through the `tracing` facade.
//!
//! The library only emits events; which of them are written where (and in
//! which format) is the embedder's choice of subscriber (`uefi-vars serve`:
//! `--log-format`, `--log-level`). The library reads no environment
//! variables. Targets, so a filter can pick them out:
//!
//! - `uefi_vars::refusal` (INFO): a guest SetVariable answered with a
//!   status other than EFI_SUCCESS; fields `guid`, `name`, `status`,
//!   `refusal` (why, [`Refusal`]'s text) and `compat` (its docs/compat.md
//!   id, `-` where QEMU answers the same);
//! - `uefi_vars::host_error` (WARN): a host-side failure kept for
//!   [`Service::take_errors`](super::Service::take_errors); field `error`.
//!
//! The VM or store an event belongs to is the embedder's span around the
//! call (`uefi-vars serve` enters one with the store path).

use crate::error::Error;
use crate::refusal::{Refusal, Refused};

/// One event per refused guest SetVariable, as the reply leaves the service.
pub(super) fn refused_write(r: &Refused) {
    let refusal: &Refusal = &r.refusal;
    tracing::info!(
        target: "uefi_vars::refusal",
        guid = %r.guid,
        name = %r.name,
        status = %refusal.status(),
        refusal = %refusal,
        compat = refusal.compat_id().unwrap_or("-"),
        "SetVariable refused"
    );
}

/// One event per host-side error, as it is recorded.
pub(super) fn host_error(error: &Error) {
    tracing::warn!(target: "uefi_vars::host_error", error = %error, "host error");
}
