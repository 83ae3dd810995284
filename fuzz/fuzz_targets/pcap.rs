//! The pcap reader (`pcap::read_records`, plain and gzip) with the
//! round-trip oracle: records read from any accepted input, written again
//! with `PcapWriter`, read back the same (kind, payload, timestamps; the
//! original length too unless the record was cut short in the input).
#![no_main]

use libfuzzer_sys::fuzz_target;
use uefi_vars::pcap::{read_records, read_records_with_limit, PcapWriter};

fuzz_target!(|data: &[u8]| {
    // Gzip bombs: bound the decompressed size so executions stay fast.
    let Ok(records) = read_records_with_limit(data, 1 << 20) else {
        return;
    };
    let mut w = PcapWriter::new(Vec::new()).expect("vec writer");
    for r in &records {
        w.record_at(r.kind, &r.payload, r.ts_sec, r.ts_usec)
            .expect("a record read back must be writable");
    }
    let bytes = w.into_inner();
    let again = read_records(&bytes).expect("written capture must read");
    assert_eq!(again.len(), records.len());
    for (a, b) in records.iter().zip(&again) {
        assert_eq!(a.kind, b.kind);
        assert_eq!(a.payload, b.payload);
        assert_eq!((a.ts_sec, a.ts_usec), (b.ts_sec, b.ts_usec));
        if !a.truncated {
            assert_eq!(a.orig_len, b.orig_len);
        }
        assert!(!b.truncated || a.truncated);
    }
});
