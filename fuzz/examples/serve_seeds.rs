//! Writes seeds for the `serve_protocol` fuzz target into
//! fuzz/seeds/serve_protocol: a client's and a server's side of a session
//! (HELLO, WELCOME, MM_REQUEST with real requests from the OVMF capture,
//! MM_RESPONSE, RESET, RESET_DONE, PING, ERROR), behind the target's 3-byte
//! prefix (max buffer size / 2, piece-size seed).
//!
//!     cd fuzz && cargo run --example serve_seeds
use std::path::Path;

use uefi_vars::codec::Layout;
use uefi_vars::pcap::{read_file, RecordKind};
use uefi_vars_client::protocol::{
    ErrorBody, ErrorCode, Frame, FrameType, Hello, MmRequest, MmResponseBody, ResetDone, Welcome,
};

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = root.join("seeds/serve_protocol");
    std::fs::create_dir_all(&out).unwrap();
    let prefix = |seed: u8| {
        let mut p = (32768u16).to_le_bytes().to_vec();
        p.push(seed);
        p
    };
    let enc = |f: Frame| f.encode().unwrap();
    let records = read_file(&root.join("../tests/data/ovmf-2boots-empty.pcap.gz")).unwrap();
    let requests: Vec<_> = records
        .iter()
        .filter(|r| r.kind == RecordKind::Request)
        .take(12)
        .collect();
    let replies: Vec<_> = records
        .iter()
        .filter(|r| r.kind == RecordKind::Reply)
        .take(12)
        .collect();

    let mut client = prefix(1);
    client.extend(enc(Hello::new(65536, Layout::X64).encode()));
    for r in &requests {
        client.extend(enc(MmRequest::encode(4096, &r.payload)));
    }
    client.extend(enc(Frame::new(FrameType::Reset, Vec::new())));
    client.extend(enc(Frame::new(FrameType::Ping, b"ping".to_vec())));
    std::fs::write(out.join("client-session"), client).unwrap();

    let mut server = prefix(7);
    server.extend(enc(Welcome {
        version: 1,
        buffer_size: 65536,
        word_bits: 64,
    }
    .encode()));
    for r in &replies {
        server.extend(enc(MmResponseBody {
            status: 0,
            reply: Some(r.payload.clone()),
            host_error: false,
        }
        .encode()));
    }
    server.extend(enc(MmResponseBody {
        status: 0x12,
        reply: None,
        host_error: true,
    }
    .encode()));
    server.extend(enc(ResetDone {
        error: Some("store write failed".into()),
    }
    .encode()));
    server.extend(enc(ResetDone { error: None }.encode()));
    server.extend(enc(Frame::new(FrameType::Pong, b"ping".to_vec())));
    server.extend(enc(
        ErrorBody::new(ErrorCode::from_u32(3), "bye \u{e9}").encode()
    ));
    std::fs::write(out.join("server-session"), server).unwrap();

    let mut hello32 = prefix(200);
    hello32.extend(enc(Hello::new(4096, Layout::IA32).encode()));
    hello32.extend_from_slice(&[0x10, 0, 0, 0, 0xff, 0xff, 0, 0]);
    std::fs::write(out.join("hello32-then-truncated"), hello32).unwrap();
}
