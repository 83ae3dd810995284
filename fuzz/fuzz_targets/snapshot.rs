//! Service snapshot restore (`Service::restore`, the live-migration
//! decoder) on arbitrary bodies. The input is the snapshot body; the target
//! wraps it in a valid envelope (magic, version, length, CRC-32C) so the
//! fuzzer gets past the checksum and reaches the body decoder and the state
//! validation. The first input byte picks the guest word size.
//!
//! Oracles: a restored service passes the accounting, policy-limit and
//! enumeration checks; its snapshot restores to a service with the same
//! snapshot (restore ∘ snapshot is the identity on restored states).
#![no_main]

use libfuzzer_sys::fuzz_target;
use uefi_vars::codec::Layout;
use uefi_vars::persist::MemoryStorage;
use uefi_vars::service::snapshot::{crc32c, FORMAT_VERSION, MAGIC};
use uefi_vars::{Config, Service};
use uefi_vars_fuzz::{check_enumeration, Usage};

fn envelope(body: &[u8]) -> Vec<u8> {
    let mut blob = MAGIC.to_vec();
    blob.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    blob.extend_from_slice(&(body.len() as u64).to_le_bytes());
    blob.extend_from_slice(body);
    let crc = crc32c(&blob);
    blob.extend_from_slice(&crc.to_le_bytes());
    blob
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let layout = if sel & 1 == 0 {
        Layout::X64
    } else {
        Layout::IA32
    };
    let config = Config::default()
        .with_layout(layout)
        .with_max_storage(64 * 1024);
    let blob = envelope(body);
    let Ok(mut svc) = Service::restore(config.clone(), Box::new(MemoryStorage::new()), &blob)
    else {
        return;
    };
    // Accounting and policy limits (a restored store may exceed the
    // destination's storage size: "loaded so").
    Usage::of(&svc).check_after(&svc, 0);
    let snap = svc.snapshot();
    let again = Service::restore(config, Box::new(MemoryStorage::new()), &snap)
        .expect("a snapshot of a restored service must restore");
    assert_eq!(again.snapshot(), snap, "snapshot/restore is not stable");
    check_enumeration(&mut svc);
});
