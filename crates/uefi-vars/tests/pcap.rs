//! LINKTYPE_EDK2_MM captures: real QEMU captures, write/read round trips,
//! specific errors for malformed files, and no panics on hostile input.
//!
//! The expected numbers for the real captures were established with an
//! independent Python script (`gzip` + `struct`), not with this parser.

use std::io::{BufWriter, Read, Write};
use std::path::Path;

use flate2::read::GzDecoder;
use proptest::prelude::*;
use uefi_vars::pcap::{
    read_file, read_records, PcapError, PcapWriter, Record, RecordKind, LINKTYPE_EDK2_MM, SNAPLEN,
};

const OVMF: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/data/ovmf-2boots-empty.pcap.gz"
);
const FEDORA_1: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/data/fedora-boot-1.pcap.gz"
);
const FEDORA_2: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/data/fedora-boot-2.pcap.gz"
);

/// EFI_SMM_VARIABLE_PROTOCOL_GUID (ed32d533-99e6-4209-9cc0-2d72cdd998a7) in
/// wire order.
const SMM_VARIABLE_GUID: [u8; 16] = [
    0x33, 0xd5, 0x32, 0xed, 0xe6, 0x99, 0x09, 0x42, 0x9c, 0xc0, 0x2d, 0x72, 0xcd, 0xd9, 0x98, 0xa7,
];

fn gunzip_file(path: &str) -> Vec<u8> {
    let mut out = Vec::new();
    GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// Facts about one real capture, established independently.
struct Expected {
    records: usize,
    resets: usize,
    pairs: usize,
    reset_indices: &'static [usize],
    first_ts: (u32, u32),
    last_ts: (u32, u32),
    max_payload: usize,
}

fn check_capture(path: &str, want: &Expected) -> Vec<Record> {
    let recs = read_file(Path::new(path)).unwrap();
    assert_eq!(recs.len(), want.records);
    let count = |k: RecordKind| recs.iter().filter(|r| r.kind == k).count();
    assert_eq!(count(RecordKind::Reset), want.resets);
    assert_eq!(count(RecordKind::Request), want.pairs);
    assert_eq!(count(RecordKind::Reply), want.pairs);

    let resets: Vec<usize> = recs
        .iter()
        .enumerate()
        .filter(|(_, r)| r.kind == RecordKind::Reset)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(resets, want.reset_indices);
    assert!(recs
        .iter()
        .filter(|r| r.kind == RecordKind::Reset)
        .all(|r| r.payload.is_empty() && r.orig_len == 4));

    // Every request is immediately answered by a reply of the same length,
    // and MM headers are never longer or shorter than MessageLength says.
    for (i, r) in recs.iter().enumerate() {
        if r.kind == RecordKind::Request {
            let reply = &recs[i + 1];
            assert_eq!(reply.kind, RecordKind::Reply, "record {}", i + 1);
            assert_eq!(reply.payload.len(), r.payload.len(), "record {}", i + 1);
            let msg_len = u64::from_le_bytes(r.payload[16..24].try_into().unwrap());
            assert_eq!(24 + msg_len, r.payload.len() as u64, "record {i}");
        }
        if r.kind == RecordKind::Reply {
            assert_eq!(recs[i - 1].kind, RecordKind::Request, "record {i}");
        }
    }

    // Nothing is cut, and orig_len is always 4 + payload.
    assert!(recs
        .iter()
        .all(|r| !r.truncated && r.orig_len as usize == 4 + r.payload.len()));
    assert_eq!(
        recs.iter().map(|r| r.payload.len()).max(),
        Some(want.max_payload)
    );

    // Timestamps never go backwards and are proper microsecond values.
    let first = recs.first().unwrap();
    let last = recs.last().unwrap();
    assert_eq!((first.ts_sec, first.ts_usec), want.first_ts);
    assert_eq!((last.ts_sec, last.ts_usec), want.last_ts);
    assert!(recs
        .windows(2)
        .all(|w| (w[0].ts_sec, w[0].ts_usec) <= (w[1].ts_sec, w[1].ts_usec)));
    assert!(recs.iter().all(|r| r.ts_usec < 1_000_000));

    let first_request = recs.iter().find(|r| r.kind == RecordKind::Request).unwrap();
    assert_eq!(first_request.payload[..16], SMM_VARIABLE_GUID);
    assert_eq!(first_request.payload.len(), 48);
    recs
}

#[test]
fn ovmf_two_boots_capture() {
    let recs = check_capture(
        OVMF,
        &Expected {
            records: 3494,
            resets: 2,
            pairs: 1746,
            reset_indices: &[0, 1717],
            first_ts: (1_795_665_930, 674_264),
            last_ts: (1_795_665_967, 604_023),
            max_payload: 16384,
        },
    );
    assert_eq!(recs[0].kind, RecordKind::Reset);
    // Requests by header GUID, counted independently.
    let by_guid = |g: [u8; 16]| {
        recs.iter()
            .filter(|r| r.kind == RecordKind::Request && r.payload[..16] == g)
            .count()
    };
    assert_eq!(by_guid(SMM_VARIABLE_GUID), 1728);
}

#[test]
fn fedora_boot_1_capture() {
    check_capture(
        FEDORA_1,
        &Expected {
            records: 1811,
            resets: 1,
            pairs: 905,
            reset_indices: &[0],
            first_ts: (1_746_705_443, 828_920),
            last_ts: (1_746_705_493, 255_844),
            max_payload: 16384,
        },
    );
}

#[test]
fn fedora_boot_2_capture() {
    check_capture(
        FEDORA_2,
        &Expected {
            records: 1907,
            resets: 1,
            pairs: 953,
            reset_indices: &[0],
            first_ts: (1_746_705_940, 626_516),
            last_ts: (1_746_705_981, 775_159),
            max_payload: 16384,
        },
    );
}

#[test]
fn gzip_is_detected_by_content_not_name() {
    let plain = gunzip_file(OVMF);
    let from_plain = read_records(&plain).unwrap();
    let from_gz = read_records(&std::fs::read(OVMF).unwrap()).unwrap();
    assert_eq!(from_plain, from_gz);

    // A plain capture named .gz and a gzip one named .pcap both read.
    let dir = tempfile::tempdir().unwrap();
    let misnamed_plain = dir.path().join("plain.pcap.gz");
    std::fs::write(&misnamed_plain, &plain).unwrap();
    assert_eq!(read_file(&misnamed_plain).unwrap(), from_plain);
    let misnamed_gz = dir.path().join("compressed.pcap");
    std::fs::copy(OVMF, &misnamed_gz).unwrap();
    assert_eq!(read_file(&misnamed_gz).unwrap(), from_plain);
}

#[test]
fn rewriting_a_real_capture_reproduces_it_byte_for_byte() {
    let plain = gunzip_file(FEDORA_1);
    let recs = read_records(&plain).unwrap();
    let mut w = PcapWriter::new(Vec::new()).unwrap();
    for r in &recs {
        w.record_at(r.kind, &r.payload, r.ts_sec, r.ts_usec)
            .unwrap();
    }
    assert_eq!(w.into_inner(), plain);
}

fn sample_records() -> Vec<(RecordKind, Vec<u8>, u32, u32)> {
    vec![
        (RecordKind::Reset, vec![], 1_700_000_000, 0),
        (
            RecordKind::Request,
            (0..=255).collect(),
            1_700_000_000,
            999_999,
        ),
        (RecordKind::Reply, vec![0xaa; 4096], 1_700_000_001, 17),
        (RecordKind::Other(0x1234_5678), b"opaque".to_vec(), 0, 1),
        (RecordKind::Request, vec![], u32::MAX, 500_000),
    ]
}

fn assert_matches_sample(recs: &[Record]) {
    let sample = sample_records();
    assert_eq!(recs.len(), sample.len());
    for (r, (kind, payload, sec, usec)) in recs.iter().zip(&sample) {
        assert_eq!(r.kind, *kind);
        assert_eq!(&r.payload, payload);
        assert_eq!((r.ts_sec, r.ts_usec), (*sec, *usec));
        assert_eq!(r.orig_len as usize, 4 + payload.len());
        assert!(!r.truncated);
    }
}

#[test]
fn round_trip_plain_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.pcap");
    let mut w = PcapWriter::create(&path).unwrap();
    for (kind, payload, sec, usec) in sample_records() {
        w.record_at(kind, &payload, sec, usec).unwrap();
    }
    w.finish().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(&bytes[..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
    assert_matches_sample(&read_file(&path).unwrap());
}

#[test]
fn round_trip_gzip_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.pcap.gz");
    let mut w = PcapWriter::create_gzip(&path).unwrap();
    for (kind, payload, sec, usec) in sample_records() {
        w.record_at(kind, &payload, sec, usec).unwrap();
    }
    w.finish().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(&bytes[..2], &[0x1f, 0x8b]);
    assert_matches_sample(&read_file(&path).unwrap());
}

#[test]
fn convenience_methods_use_wall_clock() {
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut w = PcapWriter::new(Vec::new()).unwrap();
    w.reset().unwrap();
    w.request(b"req").unwrap();
    w.reply(b"rep").unwrap();
    w.record(RecordKind::Other(9), b"x").unwrap();
    let after = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let recs = read_records(&w.into_inner()).unwrap();
    let kinds: Vec<_> = recs.iter().map(|r| r.kind).collect();
    assert_eq!(
        kinds,
        [
            RecordKind::Reset,
            RecordKind::Request,
            RecordKind::Reply,
            RecordKind::Other(9)
        ]
    );
    assert_eq!(recs[1].payload, b"req");
    assert_eq!(recs[2].payload, b"rep");
    for r in &recs {
        assert!((before..=after).contains(&u64::from(r.ts_sec)));
        assert!(r.ts_usec < 1_000_000);
    }
}

#[test]
fn flush_each_record_reaches_the_sink() {
    let mut w = PcapWriter::new(BufWriter::new(Vec::new()))
        .unwrap()
        .flush_each_record(true);
    w.request(&[1, 2, 3]).unwrap();
    assert_eq!(w.get_ref().get_ref().len(), 24 + 16 + 4 + 3);

    let mut lazy = PcapWriter::new(BufWriter::new(Vec::new())).unwrap();
    lazy.request(&[1, 2, 3]).unwrap();
    assert_eq!(lazy.get_ref().get_ref().len(), 0);
    lazy.flush().unwrap();
    assert_eq!(lazy.get_ref().get_ref().len(), 24 + 16 + 4 + 3);
}

#[test]
fn oversized_payload_is_cut_to_snaplen_and_flagged() {
    let payload: Vec<u8> = (0..70_000u32).map(|i| i as u8).collect();
    let mut w = PcapWriter::new(Vec::new()).unwrap();
    w.record_at(RecordKind::Request, &payload, 5, 6).unwrap();
    // Exactly at the limit: not cut.
    w.record_at(RecordKind::Reply, &payload[..65_532], 5, 7)
        .unwrap();
    let bytes = w.into_inner();
    // incl_len and orig_len as QEMU writes them.
    assert_eq!(bytes[24 + 8..24 + 12], SNAPLEN.to_le_bytes());
    assert_eq!(bytes[24 + 12..24 + 16], 70_004u32.to_le_bytes());

    let recs = read_records(&bytes).unwrap();
    assert_eq!(recs.len(), 2);
    assert!(recs[0].truncated);
    assert_eq!(recs[0].orig_len, 70_004);
    assert_eq!(recs[0].payload.len(), 65_532);
    assert_eq!(recs[0].payload, payload[..65_532]);
    assert!(!recs[1].truncated);
    assert_eq!(recs[1].orig_len, 65_536);
    assert_eq!(recs[1].payload, payload[..65_532]);
}

/// A little-endian global header with the given link type.
fn global_header(linktype: u32) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&0xA1B2_C3D4u32.to_le_bytes());
    h.extend_from_slice(&2u16.to_le_bytes());
    h.extend_from_slice(&4u16.to_le_bytes());
    h.extend_from_slice(&[0; 8]);
    h.extend_from_slice(&SNAPLEN.to_le_bytes());
    h.extend_from_slice(&linktype.to_le_bytes());
    h
}

fn record_header(incl_len: u32, orig_len: u32) -> Vec<u8> {
    [1u32, 2, incl_len, orig_len]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect()
}

#[test]
fn wrong_link_type_is_rejected() {
    let mut f = global_header(1); // Ethernet
    f.extend(record_header(4, 4));
    f.extend(2u32.to_le_bytes());
    let err = read_records(&f).unwrap_err();
    assert!(matches!(err, PcapError::WrongLinkType(1)), "{err:?}");
    assert!(err.to_string().contains("302"));
    // The real link type passes.
    assert_eq!(global_header(LINKTYPE_EDK2_MM).len(), 24);
    assert!(read_records(&global_header(LINKTYPE_EDK2_MM))
        .unwrap()
        .is_empty());
}

#[test]
fn bad_magic_is_rejected() {
    let mut f = global_header(LINKTYPE_EDK2_MM);
    f[..4].copy_from_slice(b"\x0a\x0d\x0d\x0a"); // pcapng section header
    assert!(matches!(
        read_records(&f),
        Err(PcapError::BadMagic(0x0a0d_0d0a))
    ));
    assert!(matches!(
        read_records(b"this is not a capture at all"),
        Err(PcapError::BadMagic(_))
    ));
}

#[test]
fn truncated_global_header_is_rejected() {
    let f = global_header(LINKTYPE_EDK2_MM);
    for len in [0, 1, 4, 23] {
        assert!(
            matches!(
                read_records(&f[..len]),
                Err(PcapError::ShortHeader { len: l }) if l == len
            ),
            "len {len}"
        );
    }
}

/// Header plus two good records: 24 + (16 + 4) + (16 + 4 + 3) = 67 bytes.
fn two_good_records() -> Vec<u8> {
    let mut w = PcapWriter::new(Vec::new()).unwrap();
    w.record_at(RecordKind::Reset, &[], 1, 0).unwrap();
    w.record_at(RecordKind::Request, b"abc", 1, 1).unwrap();
    let f = w.into_inner();
    assert_eq!(f.len(), 67);
    f
}

#[test]
fn truncated_record_header_is_rejected_with_position() {
    let mut f = two_good_records();
    f.extend(&record_header(8, 8)[..10]);
    let err = read_records(&f).unwrap_err();
    assert!(
        matches!(
            err,
            PcapError::TruncatedRecordHeader {
                index: 2,
                offset: 67,
                available: 10
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("record 2") && msg.contains("offset 67"),
        "{msg}"
    );
}

#[test]
fn incl_len_past_end_of_file_is_rejected_with_position() {
    let mut f = two_good_records();
    f.extend(record_header(100, 100));
    f.extend([2, 0, 0, 0, 9, 9]);
    let err = read_records(&f).unwrap_err();
    assert!(
        matches!(
            err,
            PcapError::RecordPastEnd {
                index: 2,
                offset: 67,
                incl_len: 100,
                available: 6
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("record 2") && msg.contains("offset 67"),
        "{msg}"
    );
}

#[test]
fn huge_incl_len_is_rejected_without_allocating() {
    let mut f = two_good_records();
    f.extend(record_header(u32::MAX, u32::MAX));
    let err = read_records(&f).unwrap_err();
    assert!(
        matches!(
            err,
            PcapError::RecordTooLong {
                index: 2,
                offset: 67,
                incl_len: u32::MAX,
                snaplen: SNAPLEN
            }
        ),
        "{err:?}"
    );
}

#[test]
fn cut_real_capture_reports_the_record_it_stops_in() {
    let plain = gunzip_file(OVMF);
    // Walk the first 10 records by hand to find where record 10 starts.
    let mut offset = 24usize;
    for _ in 0..10 {
        let incl = u32::from_le_bytes(plain[offset + 8..offset + 12].try_into().unwrap());
        offset += 16 + incl as usize;
    }
    let cut = &plain[..offset + 16 + 5];
    assert!(matches!(
        read_records(cut),
        Err(PcapError::RecordPastEnd { index: 10, offset: o, available: 5, .. }) if o == offset
    ));
    // Cutting exactly at a record boundary is a valid, shorter capture.
    assert_eq!(read_records(&plain[..offset]).unwrap().len(), 10);
}

#[test]
fn truncated_gzip_stream_is_an_error() {
    let gz = std::fs::read(OVMF).unwrap();
    let err = read_records(&gz[..gz.len() / 2]).unwrap_err();
    assert!(matches!(err, PcapError::Gzip(_)), "{err:?}");
}

#[test]
fn missing_file_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        read_file(&dir.path().join("absent.pcap")),
        Err(PcapError::Io(_))
    ));
}

#[test]
fn gzip_written_by_other_tools_with_multiple_members_reads() {
    // `cat a.gz b.gz` style concatenation: header in one member, records in
    // the next.
    let plain = two_good_records();
    let mut out = Vec::new();
    for part in [&plain[..24], &plain[24..]] {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(part).unwrap();
        out.extend(enc.finish().unwrap());
    }
    assert_eq!(read_records(&out).unwrap().len(), 2);
}

/// The first 4 KiB of the decompressed OVMF capture.
fn first_kb_of_real_capture() -> Vec<u8> {
    let mut out = Vec::new();
    GzDecoder::new(std::fs::File::open(OVMF).unwrap())
        .take(4096)
        .read_to_end(&mut out)
        .unwrap();
    assert_eq!(out.len(), 4096);
    out
}

/// The whole records in the first 4 KiB of a real capture (the 24-byte
/// file header, then records of a 16-byte header whose bytes 8..12 are the
/// stored length), and the offsets where records end.
fn whole_records_of_real_capture() -> (Vec<u8>, Vec<usize>) {
    let mut f = first_kb_of_real_capture();
    let mut ends = vec![24];
    let mut at = 24;
    while let Some(h) = f.get(at..at + 16) {
        let len = u32::from_le_bytes(h[8..12].try_into().unwrap()) as usize;
        if at + 16 + len > f.len() {
            break;
        }
        at += 16 + len;
        ends.push(at);
    }
    f.truncate(at);
    (f, ends)
}

/// Up to 16 bytes of the whole records in the first 4 KiB of a real
/// capture changed, and the file cut at a record end, anywhere, or not at
/// all: no panic, and whatever parses accounts for every byte of the
/// input. Both outcomes must occur often (a property that only ever sees
/// refusals checks nothing of the parser's accounting).
#[test]
fn mutated_real_capture_parses_exactly_or_is_refused() {
    use proptest::test_runner::TestRunner;
    let (base, ends) = whole_records_of_real_capture();
    assert!(ends.len() > 5, "{ends:?}");
    let len = base.len();
    let strategy = (
        proptest::collection::vec((0..len, any::<u8>()), 1..16),
        prop_oneof![
            Just(None),
            proptest::sample::select(ends.clone()).prop_map(Some),
            (0..=len).prop_map(Some),
        ],
    );
    let parsed = std::sync::atomic::AtomicUsize::new(0);
    let refused = std::sync::atomic::AtomicUsize::new(0);
    let config = ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    TestRunner::new(config)
        .run(&strategy, |(edits, cut)| {
            let mut f = base.clone();
            for (at, byte) in edits {
                f[at] = byte;
            }
            if let Some(cut) = cut {
                f.truncate(cut);
            }
            match read_records(&f) {
                Ok(recs) => {
                    let stored: usize = recs.iter().map(|r| 20 + r.payload.len()).sum();
                    prop_assert_eq!(stored + 24, f.len());
                    parsed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Err(_) => {
                    refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
            Ok(())
        })
        .unwrap();
    let (p, r) = (parsed.into_inner(), refused.into_inner());
    eprintln!("512 mutated captures: {p} parsed, {r} refused");
    assert!(p >= 50 && r >= 50, "{p} parsed, {r} refused");
}

fn arb_kind() -> impl Strategy<Value = RecordKind> {
    prop_oneof![
        Just(RecordKind::Reset),
        Just(RecordKind::Request),
        Just(RecordKind::Reply),
        (4u32..).prop_map(RecordKind::Other),
        Just(RecordKind::Other(0)),
    ]
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = read_records(&bytes);
        // The same bytes after a valid header, and after the gzip magic.
        let mut f = global_header(LINKTYPE_EDK2_MM);
        f.extend(&bytes);
        if let Ok(recs) = read_records(&f) {
            let stored: usize = recs.iter().map(|r| 20 + r.payload.len()).sum();
            prop_assert_eq!(stored + 24, f.len());
        }
        let mut g = vec![0x1f, 0x8b];
        g.extend(&bytes);
        let _ = read_records(&g);
    }

    #[test]
    fn any_records_round_trip(
        recs in proptest::collection::vec(
            (arb_kind(), proptest::collection::vec(any::<u8>(), 0..300), any::<u32>(), 0u32..1_000_000),
            0..20,
        ),
    ) {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        for (kind, payload, sec, usec) in &recs {
            w.record_at(*kind, payload, *sec, *usec).unwrap();
        }
        let back = read_records(&w.into_inner()).unwrap();
        prop_assert_eq!(back.len(), recs.len());
        for (r, (kind, payload, sec, usec)) in back.iter().zip(&recs) {
            prop_assert_eq!(r.kind, *kind);
            prop_assert_eq!(&r.payload, payload);
            prop_assert_eq!((r.ts_sec, r.ts_usec), (*sec, *usec));
            prop_assert!(!r.truncated);
        }
    }
}

/// The streaming reader gives the records of the whole-file reader, one at
/// a time, for gzip and plain files; a capture cut in the middle of a
/// record yields every whole record first, then the error, then nothing.
#[test]
fn streaming_reader_matches_and_stops_at_the_damage() {
    let whole = read_records(&std::fs::read(OVMF).unwrap()).unwrap();
    let streamed: Vec<Record> = uefi_vars::pcap::open_file(Path::new(OVMF))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(streamed, whole);

    let plain = gunzip_file(OVMF);
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.pcap");
    std::fs::write(&cut, &plain[..plain.len() - 10]).unwrap();
    let mut reader = uefi_vars::pcap::open_file(&cut).unwrap();
    for (i, want) in whole[..whole.len() - 1].iter().enumerate() {
        assert_eq!(&reader.next().unwrap().unwrap(), want, "record {i}");
    }
    assert!(matches!(
        reader.next(),
        Some(Err(PcapError::RecordPastEnd { .. }))
    ));
    assert!(reader.next().is_none());
}
