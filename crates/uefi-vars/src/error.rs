//! Host-side diagnostics. These never reach the guest: the guest sees only an
//! [`crate::status::EfiStatus`] or a [`crate::status::DeviceStatus`].

use crate::persist::PersistError;

/// A host-side failure of the service (kept for [`crate::Service::take_errors`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The variable store could not be loaded or written.
    #[error(transparent)]
    Persist(#[from] PersistError),
}
