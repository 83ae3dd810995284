//! etcd-backed variable stores for a fleet (README "Running a fleet"):
//! one VM's store under `/PREFIX/VM/` in an etcd v3 cluster, written
//! incrementally through the [`Storage`](uefi_vars::persist::Storage)
//! trait, every write a transaction fenced by ownership.
//!
//! This crate owns the tokio runtime the etcd client needs, so the library
//! and the VMM-side client link neither tokio nor tonic; `uefi-vars serve`
//! and the CLI reach it through the `etcd` feature of uefi-vars-serve.

pub mod store;
// Test helper (house rule: behind the `testing` feature).
#[cfg(feature = "testing")]
pub mod testing;
pub mod url;

pub use store::{EtcdError, EtcdOptions, EtcdStore};
pub use url::{is_etcd_url, EtcdUrl, TlsFiles, UrlError};
