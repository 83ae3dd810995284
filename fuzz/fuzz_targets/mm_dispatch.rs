//! The MM dispatcher (`Service::communicate`) on arbitrary buffers, for both
//! guest word sizes.
//!
//! Input: a stream of MM requests as a guest would hand them over (header +
//! MessageLength bytes, one after the other; the seeds are real boot
//! captures split into runs of consecutive requests). The same bytes are
//! fed to an x64 and to an IA32 service, each splitting the stream with its
//! own header size; whatever does not frame as a request is sent as one
//! last raw buffer. After every request: the reply is header +
//! MessageLength, storage stays within its limit, the persisted store equals
//! the live one; at the end a full GetNextVariableName walk terminates and
//! sees every variable once.
#![no_main]

use libfuzzer_sys::fuzz_target;
use uefi_vars::codec::Layout;
use uefi_vars::persist::fault::FaultyStorage;
use uefi_vars::persist::MemoryStorage;
use uefi_vars::{Config, Service};
use uefi_vars_fuzz::{
    check_enumeration, check_persisted, check_reply_shape, message_length, Usage,
};

/// At most this many requests per input (keeps executions fast).
const MAX_REQUESTS: usize = 256;

fn run(layout: Layout, data: &[u8]) {
    let storage = FaultyStorage::new(MemoryStorage::new());
    let config = Config::default()
        .with_layout(layout)
        // Small enough that the fuzzer reaches OUT_OF_RESOURCES.
        .with_max_storage(32 * 1024);
    let mut svc = Service::new(config, Box::new(storage.clone())).expect("in-memory store");
    let hdr = layout.mm_header();
    let mut rest = data;
    for _ in 0..MAX_REQUESTS {
        if rest.is_empty() {
            break;
        }
        let framed = message_length(layout, rest)
            .and_then(|ml| usize::try_from(ml).ok())
            .and_then(|ml| ml.checked_add(hdr))
            .filter(|&total| total <= rest.len());
        let (req, next) = match framed {
            Some(total) => rest.split_at(total),
            None => (rest, &[][..]),
        };
        let before = Usage::of(&svc);
        let resp = svc.communicate(req);
        check_reply_shape(layout, req, &resp);
        before.check_after(&svc, 0);
        check_persisted(&svc, &storage);
        rest = next;
    }
    check_enumeration(&mut svc);
}

fuzz_target!(|data: &[u8]| {
    run(Layout::X64, data);
    run(Layout::IA32, data);
});
