//! The frame decoder and body decoders on arbitrary bytes: no panic, every
//! length bounded, and what decodes re-encodes to the same bytes.

use proptest::prelude::*;
use uefi_vars_serve::protocol::{
    read_frame, ErrorBody, FrameDecoder, Hello, MmRequest, MmResponseBody, ResetDone, Welcome,
    HEADER_LEN, MAX_FRAME_LEN,
};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn decoder_never_panics_and_frames_round_trip(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
        cut in 1usize..40,
    ) {
        let mut d = FrameDecoder::new();
        let mut consumed = Vec::new();
        for chunk in bytes.chunks(cut) {
            d.push(chunk);
            loop {
                match d.next_frame() {
                    Ok(Some(f)) => consumed.extend(f.encode().unwrap()),
                    Ok(None) => break,
                    Err(_) => return Ok(()),
                }
            }
            prop_assert!(d.pending() < MAX_FRAME_LEN + cut);
        }
        // Complete frames are a prefix of the input, byte for byte.
        prop_assert_eq!(&bytes[..consumed.len()], consumed.as_slice());
        prop_assert_eq!(consumed.len() + d.pending(), bytes.len());
    }

    #[test]
    fn blocking_reader_agrees_with_the_decoder(
        bytes in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut d = FrameDecoder::new();
        d.push(&bytes);
        let incremental = d.next_frame();
        let blocking = read_frame(&mut bytes.as_slice());
        match (incremental, blocking) {
            (Ok(Some(a)), Ok(b)) => prop_assert_eq!(a, b),
            (Err(_), Err(_)) | (Ok(None), Err(_)) => {}
            (a, b) => prop_assert!(false, "decoder {:?} vs reader {:?}", a, b),
        }
    }

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
fn header_len_is_eight() {
    assert_eq!(HEADER_LEN, 8);
}
