//! CRC-32C of the PIO transfer buffer (the PIO_BUFFER_CRC32C register):
//! the library's implementation, re-exported for device users.

pub use uefi_vars::crc32c::crc32c;
