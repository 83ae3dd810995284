//! The frame decoder, the blocking reader and the body decoders.
//!
//! Random bytes almost never form a frame (a known type, reserved 0, a
//! bounded length), so the streams here are valid frames (every type of
//! docs/serve-protocol.md) that are then mutated (one byte changed) and
//! cut short. An independent model of the framing rules says what must
//! come out; each property counts how often each of its outcomes (frames
//! decoded, a refused header, a frame still incomplete) happened and
//! asserts that every one of them ran.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestRunner;
use uefi_vars_client::protocol::{
    read_frame, ErrorBody, Frame, FrameDecoder, FrameType, Hello, MmRequest, MmResponseBody,
    ReadError, ResetDone, Welcome, HEADER_LEN, MAX_FRAME_LEN,
};

/// The frame types of docs/serve-protocol.md ("Frames" table), by code.
const TYPES: [(u16, FrameType); 9] = [
    (0x0001, FrameType::Hello),
    (0x0002, FrameType::Welcome),
    (0x0003, FrameType::Error),
    (0x0010, FrameType::MmRequest),
    (0x0011, FrameType::MmResponse),
    (0x0012, FrameType::Reset),
    (0x0013, FrameType::ResetDone),
    (0x0014, FrameType::Ping),
    (0x0015, FrameType::Pong),
];

/// Largest body docs/serve-protocol.md allows: a 64 KiB buffer plus the
/// 8 bytes of an MM_REQUEST/MM_RESPONSE body header.
const MAX_BODY: u32 = 64 * 1024 + 8;

/// A frame as the model sees it: type code and body.
type Model = (u16, Vec<u8>);

/// The wire form, written here from the documented layout (u16 type,
/// u16 reserved 0, u32 body length, little-endian; then the body).
fn wire(frames: &[Model]) -> Vec<u8> {
    let mut out = Vec::new();
    for (t, body) in frames {
        out.extend(t.to_le_bytes());
        out.extend(0u16.to_le_bytes());
        out.extend(u32::try_from(body.len()).unwrap().to_le_bytes());
        out.extend(body);
    }
    out
}

/// Whether these 8 header bytes are one the decoder must accept.
fn header_ok(h: &[u8]) -> bool {
    let t = u16::from_le_bytes([h[0], h[1]]);
    let reserved = u16::from_le_bytes([h[2], h[3]]);
    let len = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
    TYPES.iter().any(|(c, _)| *c == t) && reserved == 0 && len <= MAX_BODY
}

fn frame_strategy() -> impl Strategy<Value = Model> {
    (
        0..TYPES.len(),
        proptest::collection::vec(any::<u8>(), 0..48),
    )
        .prop_map(|(i, body)| (TYPES[i].0, body))
}

/// Valid frames, then at most one byte changed (xor with a non-zero
/// value) and the stream possibly cut short.
#[derive(Clone, Debug)]
struct Stream {
    frames: Vec<Model>,
    bytes: Vec<u8>,
    /// Offset of the changed byte.
    mutated: Option<usize>,
}

fn stream_strategy() -> impl Strategy<Value = Stream> {
    (
        proptest::collection::vec(frame_strategy(), 1..6),
        proptest::option::weighted(0.5, (any::<Index>(), 1u8..=255)),
        proptest::option::weighted(0.3, any::<Index>()),
    )
        .prop_map(|(frames, mutation, cut)| {
            let mut bytes = wire(&frames);
            let mutated = mutation.map(|(at, x)| {
                let at = at.index(bytes.len());
                bytes[at] ^= x;
                at
            });
            if let Some(cut) = cut {
                bytes.truncate(cut.index(bytes.len() + 1));
            }
            Stream {
                frames,
                bytes,
                mutated,
            }
        })
}

/// What the decoder must produce for `s`: the frames up to the one whose
/// header was changed (bodies as changed), whether it must stop with an
/// error, and whether the model follows the stream to its end (after a
/// changed header that is still valid, and whose whole frame arrived, what
/// follows is framed differently: only the frames up to it are predicted).
struct Expect {
    frames: Vec<Model>,
    error: bool,
    exact: bool,
}

fn expect(s: &Stream) -> Expect {
    let mut out = Expect {
        frames: Vec::new(),
        error: false,
        exact: true,
    };
    let mut at = 0;
    for (t, body) in &s.frames {
        let end = at + HEADER_LEN + body.len();
        let header_hit = s
            .mutated
            .is_some_and(|m| (at..at + HEADER_LEN).contains(&m));
        if header_hit {
            let Some(h) = s.bytes.get(at..at + HEADER_LEN) else {
                return out;
            };
            if !header_ok(h) {
                out.error = true;
                return out;
            }
            // Still a valid header: the frame it now announces, if all of
            // it is there; what follows is framed differently.
            let t = u16::from_le_bytes([h[0], h[1]]);
            let len = u32::from_le_bytes([h[4], h[5], h[6], h[7]]) as usize;
            if let Some(body) = s.bytes.get(at + HEADER_LEN..at + HEADER_LEN + len) {
                out.frames.push((t, body.to_vec()));
                out.exact = false;
            }
            return out;
        }
        if s.bytes.len() < end {
            return out;
        }
        out.frames
            .push((*t, s.bytes[at + HEADER_LEN..end].to_vec()));
        at = end;
    }
    out
}

/// `cases` cases; a failure is reported, not saved (a hand-run
/// `TestRunner` has no source file to save it next to).
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn code(kind: FrameType) -> u16 {
    TYPES.iter().find(|(_, k)| *k == kind).unwrap().0
}

#[test]
fn decoder_gives_back_valid_frames_and_refuses_a_broken_header() {
    let decoded_frames = AtomicUsize::new(0);
    let refused = AtomicUsize::new(0);
    let incomplete = AtomicUsize::new(0);
    let mut runner = TestRunner::new(config(2000));
    runner
        .run(&(stream_strategy(), 1usize..40), |(s, cut)| {
            let want = expect(&s);
            let mut d = FrameDecoder::new();
            let mut got: Vec<Model> = Vec::new();
            let mut error = false;
            'feed: for chunk in s.bytes.chunks(cut) {
                d.push(chunk);
                loop {
                    match d.next_frame() {
                        Ok(Some(f)) => {
                            // What decodes re-encodes to the same bytes.
                            let again = f.encode().unwrap();
                            prop_assert_eq!(&again[HEADER_LEN..], f.body.as_slice());
                            got.push((code(f.kind), f.body));
                        }
                        Ok(None) => break,
                        Err(_) => {
                            error = true;
                            break 'feed;
                        }
                    }
                }
                prop_assert!(d.pending() < MAX_FRAME_LEN + cut);
            }
            let n = want.frames.len();
            prop_assert!(got.len() >= n, "{} frames, {} expected", got.len(), n);
            prop_assert_eq!(&got[..n], want.frames.as_slice());
            // Complete frames are a prefix of the input, byte for byte.
            let consumed = wire(&got);
            prop_assert_eq!(&s.bytes[..consumed.len()], consumed.as_slice());
            if want.exact {
                prop_assert_eq!(got.len(), n);
                prop_assert_eq!(error, want.error);
                if !error {
                    prop_assert_eq!(consumed.len() + d.pending(), s.bytes.len());
                }
            }
            if !got.is_empty() {
                decoded_frames.fetch_add(1, Relaxed);
            }
            if want.error && error {
                refused.fetch_add(1, Relaxed);
            }
            if want.exact && !error && d.pending() > 0 {
                incomplete.fetch_add(1, Relaxed);
            }
            Ok(())
        })
        .unwrap();
    let (f, r, i) = (
        decoded_frames.into_inner(),
        refused.into_inner(),
        incomplete.into_inner(),
    );
    eprintln!("2000 streams: {f} gave frames, {r} refused a header, {i} left a frame incomplete");
    assert!(f >= 1000, "only {f} of 2000 streams gave a frame");
    assert!(r >= 100, "only {r} of 2000 streams hit a refused header");
    assert!(i >= 100, "only {i} of 2000 streams ended inside a frame");
}

#[test]
fn blocking_reader_agrees_with_the_decoder() {
    let frames = AtomicUsize::new(0);
    let refused = AtomicUsize::new(0);
    let short = AtomicUsize::new(0);
    let mut runner = TestRunner::new(config(1000));
    runner
        .run(&stream_strategy(), |s| {
            let mut d = FrameDecoder::new();
            d.push(&s.bytes);
            let incremental = d.next_frame();
            let blocking = read_frame(&mut s.bytes.as_slice());
            match (incremental, blocking) {
                (Ok(Some(a)), Ok(b)) => {
                    prop_assert_eq!(a, b);
                    frames.fetch_add(1, Relaxed);
                }
                (Err(_), Err(ReadError::Protocol(_))) => {
                    refused.fetch_add(1, Relaxed);
                }
                // The decoder waits for more; the stream ended.
                (Ok(None), Err(ReadError::Truncated | ReadError::Closed)) => {
                    short.fetch_add(1, Relaxed);
                }
                (a, b) => prop_assert!(false, "decoder {:?} vs reader {:?}", a, b),
            }
            Ok(())
        })
        .unwrap();
    let (f, r, t) = (
        frames.into_inner(),
        refused.into_inner(),
        short.into_inner(),
    );
    eprintln!("1000 streams: {f} frames, {r} refused, {t} cut short");
    // About 800, 55 and 130 are expected.
    assert!(f >= 600 && r >= 20 && t >= 60, "{f} {r} {t}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// No body decoder panics, whatever the bytes; a decoded MM_REQUEST
    /// stays within the buffer size it was decoded against.
    #[test]
    fn body_decoders_never_panic(body in proptest::collection::vec(any::<u8>(), 0..80)) {
        let _ = Hello::decode(&body);
        let _ = Welcome::decode(&body);
        let _ = ErrorBody::decode(&body);
        let _ = MmResponseBody::decode(&body);
        let _ = ResetDone::decode(&body);
        if let Ok(r) = MmRequest::decode(&body, 40) {
            prop_assert!(r.buffer_size <= 40 && r.request.len() <= 40);
        }
    }
}

#[test]
fn header_is_the_documented_eight_bytes() {
    assert_eq!(HEADER_LEN, 8);
    let f = Frame::new(FrameType::Pong, vec![1, 2, 3]);
    assert_eq!(f.encode().unwrap(), wire(&[(0x0015, vec![1, 2, 3])]));
}

/// The length bound, at the boundary: a header announcing the largest
/// body waits for it, one byte more is refused at once.
#[test]
fn the_largest_body_is_awaited_one_more_byte_is_refused() {
    for (len, refused) in [(MAX_BODY, false), (MAX_BODY + 1, true)] {
        let mut header = wire(&[(0x0010, Vec::new())]);
        header[4..8].copy_from_slice(&len.to_le_bytes());
        let mut d = FrameDecoder::new();
        d.push(&header);
        assert_eq!(d.next_frame().is_err(), refused, "{len}");
        if !refused {
            assert!(matches!(d.next_frame(), Ok(None)));
            d.push(&vec![7; len as usize]);
            let f = d.next_frame().unwrap().unwrap();
            assert_eq!((f.kind, f.body.len()), (FrameType::MmRequest, len as usize));
        }
    }
}
