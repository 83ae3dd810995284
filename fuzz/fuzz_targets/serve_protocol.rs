//! The `uefi-vars serve` socket protocol decoder (crates/uefi-vars-serve,
//! `protocol`): the incremental `FrameDecoder` (server side, bytes arriving
//! in arbitrary pieces) and the blocking `read_frame` (client side) on the
//! same byte stream, and every body decoder on the frames that come out.
//!
//! Oracles: both readers yield the same frames and fail at the same frame;
//! after taking every complete frame the decoder holds less than one frame;
//! re-encoding a frame gives back its bytes; every body decoder is stable
//! under decode → encode → decode (after one normalisation for the
//! lossily-decoded message texts).
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use uefi_vars_client::protocol::{
    check_ping, expect_empty, read_frame, ErrorBody, Frame, FrameDecoder, FrameType, Hello,
    MmRequest, MmResponseBody, ReadError, ResetDone, Welcome, HEADER_LEN, MAX_FRAME_LEN,
};

fn check_body(frame: &Frame, max_buffer: u32) {
    let b = &frame.body;
    match frame.kind {
        FrameType::Hello => {
            if let Ok(h) = Hello::decode(b) {
                assert_eq!(Hello::decode(&h.encode().body), Ok(h));
            }
        }
        FrameType::Welcome => {
            if let Ok(w) = Welcome::decode(b) {
                assert_eq!(Welcome::decode(&w.encode().body), Ok(w));
            }
        }
        FrameType::Error => {
            if let Ok(e) = ErrorBody::decode(b) {
                let once = ErrorBody::decode(&e.encode().body).expect("re-encoded ERROR");
                let twice = ErrorBody::decode(&once.encode().body).expect("re-encoded ERROR");
                assert_eq!(once, twice);
                assert_eq!(once.code, e.code);
            }
        }
        FrameType::MmRequest => {
            if let Ok(r) = MmRequest::decode(b, max_buffer) {
                assert!(r.buffer_size <= max_buffer);
                assert!(r.request.len() as u64 <= u64::from(max_buffer));
                let again = MmRequest::encode(r.buffer_size, &r.request);
                assert_eq!(&again.body, b);
            }
        }
        FrameType::MmResponse => {
            if let Ok(r) = MmResponseBody::decode(b) {
                assert_eq!(MmResponseBody::decode(&r.encode().body), Ok(r));
            }
        }
        FrameType::ResetDone => {
            if let Ok(r) = ResetDone::decode(b) {
                let once = ResetDone::decode(&r.encode().body).expect("re-encoded RESET_DONE");
                assert_eq!(ResetDone::decode(&once.encode().body), Ok(once.clone()));
                assert_eq!(once.error.is_some(), r.error.is_some());
            }
        }
        _ => {
            let _ = expect_empty("frame", b);
            let _ = check_ping("frame", b);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // Input: max buffer size (u16, doubled), a seed for the piece sizes,
    // then the byte stream.
    if data.len() < 3 {
        return;
    }
    let (head, stream) = data.split_at(3);
    let max_buffer = u32::from(uefi_vars::codec::u16_at(head, 0, "size").expect("3 bytes"))
        .saturating_mul(2);
    let mut seed = u32::from(head[2]) | 1;

    // Server side: bytes in pieces of pseudo-random sizes (1 byte to a few
    // frames).
    let mut dec = FrameDecoder::new();
    let mut server = Vec::new();
    let mut server_err = None;
    let mut at = 0usize;
    'feed: while at < stream.len() {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let n = match seed >> 29 {
            0 => 1,
            1 => 7,
            2 => 8,
            _ => (seed >> 8) as usize % 300 + 1,
        };
        let end = stream.len().min(at.saturating_add(n));
        dec.push(&stream[at..end]);
        at = end;
        loop {
            match dec.next_frame() {
                Ok(Some(f)) => server.push(f),
                Ok(None) => break,
                Err(e) => {
                    server_err = Some(e);
                    break 'feed;
                }
            }
        }
        assert!(dec.pending() < MAX_FRAME_LEN, "decoder holds a whole frame");
    }

    // Client side: the same bytes through the blocking reader.
    let mut cur = Cursor::new(stream);
    let mut client = Vec::new();
    let client_end = loop {
        match read_frame(&mut cur) {
            Ok(f) => client.push(f),
            Err(e) => break e,
        }
    };
    assert_eq!(server, client, "the two readers disagree");
    match (&server_err, &client_end) {
        (Some(a), ReadError::Protocol(b)) => assert_eq!(a, b),
        (Some(a), other) => panic!("decoder failed with {a:?}, reader with {other:?}"),
        (None, ReadError::Closed) => assert_eq!(dec.pending(), 0),
        (None, ReadError::Truncated) => assert!(dec.pending() > 0),
        (None, other) => panic!("decoder waits for more, reader says {other:?}"),
    }

    let mut consumed = Vec::new();
    for f in &server {
        let bytes = f.encode().expect("a decoded frame re-encodes");
        assert!(bytes.len() >= HEADER_LEN);
        consumed.extend_from_slice(&bytes);
        check_body(f, max_buffer);
    }
    assert!(
        stream.starts_with(&consumed),
        "re-encoded frames differ from the bytes they came from"
    );
});
