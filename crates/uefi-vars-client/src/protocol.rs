//! The wire protocol between a VMM (the client) and `uefi-vars serve`,
//! version 1. `docs/serve-protocol.md` is the normative description; every
//! byte on the socket is encoded and decoded in this module, explicitly
//! little-endian.
//!
//! A frame is an 8-byte header followed by a body:
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 2 | frame type (u16 LE) |
//! | 2 | 2 | reserved, 0 (u16 LE) |
//! | 4 | 4 | body length (u32 LE), at most [`MAX_BODY_LEN`] |
//!
//! Decoding never panics and never allocates more than the header's length
//! field allows, which is bounded before anything is allocated.

use std::io::{self, Read, Write};

use uefi_vars::codec::{self, Layout, Reader};
use uefi_vars::service::MAX_BUFFER_SIZE;
use uefi_vars::DeviceStatus;

/// The protocol version this crate speaks (the highest and only one).
pub const PROTOCOL_VERSION: u32 = 1;

/// First 8 bytes of a HELLO body.
pub const MAGIC: [u8; 8] = *b"UEFIVARS";

/// Length of a frame header.
pub const HEADER_LEN: usize = 8;

/// Largest body of any frame: a 64 KiB MM buffer plus 8 bytes of framing
/// fields (MM_REQUEST needs 4, MM_RESPONSE 4).
pub const MAX_BODY_LEN: u32 = MAX_BUFFER_SIZE + 8;

/// Largest whole frame (header + body).
pub const MAX_FRAME_LEN: usize = HEADER_LEN + MAX_BODY_LEN as usize;

/// Length of a version-1 HELLO body. Longer bodies are accepted and the
/// bytes past this length ignored (room for later versions).
pub const HELLO_LEN: usize = 24;

/// Length of a WELCOME body.
pub const WELCOME_LEN: usize = 12;

/// Longest message text in ERROR and RESET_DONE bodies.
pub const MAX_MESSAGE_LEN: usize = 1024;

/// Longest PING/PONG body.
pub const MAX_PING_LEN: usize = 64;

/// Frame types (the u16 at offset 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameType {
    /// client → server, first frame of a connection.
    Hello = 0x0001,
    /// server → client, answer to HELLO.
    Welcome = 0x0002,
    /// server → client; the server closes the connection after it.
    Error = 0x0003,
    /// client → server: one MM communicate buffer.
    MmRequest = 0x0010,
    /// server → client: the device status and the reply buffer.
    MmResponse = 0x0011,
    /// client → server: machine reset.
    Reset = 0x0012,
    /// server → client: outcome of the reset.
    ResetDone = 0x0013,
    /// client → server: liveness check.
    Ping = 0x0014,
    /// server → client: the PING body echoed.
    Pong = 0x0015,
}

impl FrameType {
    /// The frame type with this wire code; `None` for an unknown code.
    pub fn from_u16(v: u16) -> Option<Self> {
        Some(match v {
            0x0001 => FrameType::Hello,
            0x0002 => FrameType::Welcome,
            0x0003 => FrameType::Error,
            0x0010 => FrameType::MmRequest,
            0x0011 => FrameType::MmResponse,
            0x0012 => FrameType::Reset,
            0x0013 => FrameType::ResetDone,
            0x0014 => FrameType::Ping,
            0x0015 => FrameType::Pong,
            _ => return None,
        })
    }

    /// The wire code of this frame type.
    pub fn to_u16(self) -> u16 {
        self as u16
    }
}

/// Codes carried by ERROR frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The HELLO magic is wrong.
    BadMagic,
    /// No common protocol version.
    UnsupportedVersion,
    /// The guest word size is neither 32 nor 64.
    BadWordSize,
    /// The service already runs for a guest of the other word size.
    WordSizeMismatch,
    /// Another client is connected (one VMM per service).
    Busy,
    /// A malformed, oversized, truncated or unexpected frame.
    Protocol,
    /// The store could not be loaded or written when the service started.
    Store,
    /// The server is shutting down.
    ShuttingDown,
    /// The peer's uid/gid is not allowed to use the service.
    NotAllowed,
    /// A code this version does not know.
    Other(u32),
}

impl ErrorCode {
    /// The error code with this wire value; unknown values are kept in [`ErrorCode::Other`].
    pub fn from_u32(v: u32) -> Self {
        match v {
            1 => ErrorCode::BadMagic,
            2 => ErrorCode::UnsupportedVersion,
            3 => ErrorCode::BadWordSize,
            4 => ErrorCode::WordSizeMismatch,
            5 => ErrorCode::Busy,
            6 => ErrorCode::Protocol,
            7 => ErrorCode::Store,
            8 => ErrorCode::ShuttingDown,
            9 => ErrorCode::NotAllowed,
            other => ErrorCode::Other(other),
        }
    }

    /// The wire value of this code.
    pub fn to_u32(self) -> u32 {
        match self {
            ErrorCode::BadMagic => 1,
            ErrorCode::UnsupportedVersion => 2,
            ErrorCode::BadWordSize => 3,
            ErrorCode::WordSizeMismatch => 4,
            ErrorCode::Busy => 5,
            ErrorCode::Protocol => 6,
            ErrorCode::Store => 7,
            ErrorCode::ShuttingDown => 8,
            ErrorCode::NotAllowed => 9,
            ErrorCode::Other(v) => v,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            ErrorCode::BadMagic => "bad magic",
            ErrorCode::UnsupportedVersion => "unsupported protocol version",
            ErrorCode::BadWordSize => "bad guest word size",
            ErrorCode::WordSizeMismatch => "guest word size mismatch",
            ErrorCode::Busy => "busy",
            ErrorCode::Protocol => "protocol error",
            ErrorCode::Store => "store error",
            ErrorCode::ShuttingDown => "shutting down",
            ErrorCode::NotAllowed => "not allowed",
            ErrorCode::Other(v) => return write!(f, "error code {v}"),
        };
        f.write_str(name)
    }
}

/// Why bytes could not be decoded as a frame.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The frame type code is not one of the protocol's.
    #[error("unknown frame type {0:#06x}")]
    UnknownType(u16),
    /// The reserved header field is not 0.
    #[error("reserved header field is {0:#06x}, not 0")]
    Reserved(u16),
    /// The body length exceeds [`MAX_BODY_LEN`].
    #[error("frame body of {len} bytes exceeds the limit of {max}")]
    Oversize {
        /// The body length in the header.
        len: u32,
        /// The limit.
        max: u32,
    },
    /// A body has the wrong length for its frame type.
    #[error("{what} body has {len} bytes; {expected}")]
    BadLength {
        /// The frame type, as named in `docs/serve-protocol.md`.
        what: &'static str,
        /// The body's length.
        len: usize,
        /// What the protocol wants, in words.
        expected: &'static str,
    },
    /// A field of a body has a value the protocol does not allow.
    #[error("{0}")]
    BadField(String),
    /// A valid frame that is not allowed in the connection's current state.
    #[error("unexpected {got:?} frame ({state})")]
    Unexpected {
        /// The frame's type.
        got: FrameType,
        /// The connection's state, in words.
        state: &'static str,
    },
}

/// A validated frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// The frame type.
    pub kind: FrameType,
    /// The body length, at most [`MAX_BODY_LEN`].
    pub len: u32,
}

impl FrameHeader {
    /// Validates the 8 header bytes: known type, reserved 0, bounded length.
    pub fn parse(bytes: &[u8; HEADER_LEN]) -> Result<Self, ProtocolError> {
        // Eight bytes are always there: the reads cannot fail.
        let mut r = Reader::new(bytes);
        let raw_type = r.u16("type").unwrap_or(u16::MAX);
        let reserved = r.u16("reserved").unwrap_or(u16::MAX);
        let len = r.u32("length").unwrap_or(u32::MAX);
        let kind = FrameType::from_u16(raw_type).ok_or(ProtocolError::UnknownType(raw_type))?;
        if reserved != 0 {
            return Err(ProtocolError::Reserved(reserved));
        }
        if len > MAX_BODY_LEN {
            return Err(ProtocolError::Oversize {
                len,
                max: MAX_BODY_LEN,
            });
        }
        Ok(FrameHeader { kind, len })
    }

    /// The 8 header bytes (type, reserved 0, length; little-endian).
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        let (t, rest) = out.split_at_mut(2);
        t.copy_from_slice(&self.kind.to_u16().to_le_bytes());
        if let Some(l) = rest.get_mut(2..6) {
            l.copy_from_slice(&self.len.to_le_bytes());
        }
        out
    }
}

/// One raw frame: its type and body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The frame type.
    pub kind: FrameType,
    /// The body bytes, as sent.
    pub body: Vec<u8>,
}

impl Frame {
    /// A frame of `kind` carrying `body`.
    pub fn new(kind: FrameType, body: Vec<u8>) -> Self {
        Frame { kind, body }
    }

    /// Header and body as one buffer. Fails if the body exceeds
    /// [`MAX_BODY_LEN`] (a bug of the sender, never sent).
    pub fn encode(&self) -> Result<Vec<u8>, ProtocolError> {
        let len = u32::try_from(self.body.len())
            .ok()
            .filter(|&l| l <= MAX_BODY_LEN)
            .ok_or(ProtocolError::Oversize {
                len: u32::try_from(self.body.len()).unwrap_or(u32::MAX),
                max: MAX_BODY_LEN,
            })?;
        let mut out = Vec::with_capacity(HEADER_LEN.saturating_add(self.body.len()));
        out.extend_from_slice(
            &FrameHeader {
                kind: self.kind,
                len,
            }
            .encode(),
        );
        out.extend_from_slice(&self.body);
        Ok(out)
    }
}

/// Error of [`read_frame`]: the transport failed, the peer closed, or the
/// bytes are not a frame.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The peer closed the connection between frames.
    #[error("connection closed by the peer")]
    Closed,
    /// The peer closed the connection in the middle of a frame.
    #[error("connection closed in the middle of a frame")]
    Truncated,
    /// Reading the stream failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// The bytes are not a valid frame.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
}

/// Reads exactly `buf.len()` bytes; `Ok(false)` if the stream ended before
/// the first byte, `Truncated` if it ended later.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<bool, ReadError> {
    let mut done = 0usize;
    while let Some(rest) = buf.get_mut(done..).filter(|r| !r.is_empty()) {
        match r.read(rest) {
            Ok(0) if done == 0 => return Ok(false),
            Ok(0) => return Err(ReadError::Truncated),
            Ok(n) => done = done.saturating_add(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ReadError::Io(e)),
        }
    }
    Ok(true)
}

/// Reads one frame from a blocking stream (the client side).
pub fn read_frame<R: Read>(r: &mut R) -> Result<Frame, ReadError> {
    let mut header = [0u8; HEADER_LEN];
    if !read_full(r, &mut header)? {
        return Err(ReadError::Closed);
    }
    let h = FrameHeader::parse(&header)?;
    // Bounded by MAX_BODY_LEN above.
    let mut body = vec![0u8; usize::try_from(h.len).unwrap_or(0)];
    if !read_full(r, &mut body)? && !body.is_empty() {
        return Err(ReadError::Truncated);
    }
    Ok(Frame { kind: h.kind, body })
}

/// Writes one frame to a blocking stream.
pub fn write_frame<W: Write>(w: &mut W, frame: &Frame) -> io::Result<()> {
    let bytes = frame
        .encode()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    w.write_all(&bytes)?;
    w.flush()
}

/// Incremental decoder for a non-blocking reader (the server side): feed it
/// what arrives, take complete frames out. It holds at most one partial
/// frame plus what one `push` added.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
}

impl FrameDecoder {
    /// An empty decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes as they arrived from the socket.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received that do not form a complete frame yet.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// The next complete frame, `Ok(None)` if more bytes are needed, or the
    /// reason the bytes can never form a frame (detected as soon as the
    /// header is in: unknown type, non-zero reserved field, oversize).
    pub fn next_frame(&mut self) -> Result<Option<Frame>, ProtocolError> {
        let Some(header) = self.buf.first_chunk::<HEADER_LEN>() else {
            return Ok(None);
        };
        let h = FrameHeader::parse(header)?;
        let Some(end) = usize::try_from(h.len)
            .ok()
            .and_then(|l| l.checked_add(HEADER_LEN))
        else {
            return Err(ProtocolError::Oversize {
                len: h.len,
                max: MAX_BODY_LEN,
            });
        };
        let Some(body) = self.buf.get(HEADER_LEN..end) else {
            return Ok(None);
        };
        let frame = Frame {
            kind: h.kind,
            body: body.to_vec(),
        };
        self.buf.drain(..end);
        Ok(Some(frame))
    }
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    codec::u32_at(b, at, "u32").ok()
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    codec::u16_at(b, at, "u16").ok()
}

fn bad_len(what: &'static str, len: usize, expected: &'static str) -> ProtocolError {
    ProtocolError::BadLength {
        what,
        len,
        expected,
    }
}

/// Guest word size on the wire: 32 or 64 (bits).
pub fn word_bits(layout: Layout) -> u8 {
    if layout.uintn() == 4 {
        32
    } else {
        64
    }
}

/// The layout for a word size in bits.
pub fn layout_for_bits(bits: u8) -> Option<Layout> {
    match bits {
        32 => Some(Layout::IA32),
        64 => Some(Layout::X64),
        _ => None,
    }
}

/// HELLO: magic, highest protocol version the client speaks, requested
/// buffer size, guest word size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hello {
    /// [`MAGIC`] when well-formed.
    pub magic: [u8; 8],
    /// The highest protocol version the client speaks.
    pub version: u32,
    /// The communication buffer size the client asks for.
    pub buffer_size: u32,
    /// 32 or 64 when well-formed; other values are kept for the server to
    /// refuse with [`ErrorCode::BadWordSize`].
    pub word_bits: u8,
}

impl Hello {
    /// The HELLO of this client version for a guest of `layout`.
    pub fn new(buffer_size: u32, layout: Layout) -> Self {
        Hello {
            magic: MAGIC,
            version: PROTOCOL_VERSION,
            buffer_size,
            word_bits: word_bits(layout),
        }
    }

    /// The HELLO frame (body padded to [`HELLO_LEN`]).
    pub fn encode(&self) -> Frame {
        let mut b = Vec::with_capacity(HELLO_LEN);
        b.extend_from_slice(&self.magic);
        b.extend_from_slice(&self.version.to_le_bytes());
        b.extend_from_slice(&self.buffer_size.to_le_bytes());
        b.push(self.word_bits);
        b.resize(HELLO_LEN, 0);
        Frame::new(FrameType::Hello, b)
    }

    /// Decodes a HELLO body (at least [`HELLO_LEN`] bytes; the rest is ignored).
    pub fn decode(body: &[u8]) -> Result<Self, ProtocolError> {
        let err = || bad_len("HELLO", body.len(), "at least 24 expected");
        if body.len() < HELLO_LEN {
            return Err(err());
        }
        let mut r = Reader::new(body);
        Ok(Hello {
            magic: r.array("magic").map_err(|_| err())?,
            version: r.u32("version").map_err(|_| err())?,
            buffer_size: r.u32("buffer size").map_err(|_| err())?,
            word_bits: r.u8("word size").map_err(|_| err())?,
        })
    }
}

/// WELCOME: what the server accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Welcome {
    /// The protocol version the connection uses.
    pub version: u32,
    /// The largest buffer size the client may use (the request clamped to
    /// 64 KiB).
    pub buffer_size: u32,
    /// The guest word size the service runs for (32 or 64).
    pub word_bits: u8,
}

impl Welcome {
    /// The WELCOME frame (body padded to [`WELCOME_LEN`]).
    pub fn encode(&self) -> Frame {
        let mut b = Vec::with_capacity(WELCOME_LEN);
        b.extend_from_slice(&self.version.to_le_bytes());
        b.extend_from_slice(&self.buffer_size.to_le_bytes());
        b.push(self.word_bits);
        b.resize(WELCOME_LEN, 0);
        Frame::new(FrameType::Welcome, b)
    }

    /// Decodes a WELCOME body (at least [`WELCOME_LEN`] bytes).
    pub fn decode(body: &[u8]) -> Result<Self, ProtocolError> {
        let err = || bad_len("WELCOME", body.len(), "at least 12 expected");
        if body.len() < WELCOME_LEN {
            return Err(err());
        }
        let mut r = Reader::new(body);
        Ok(Welcome {
            version: r.u32("version").map_err(|_| err())?,
            buffer_size: r.u32("buffer size").map_err(|_| err())?,
            word_bits: r.u8("word size").map_err(|_| err())?,
        })
    }
}

/// ERROR: a code and a human-readable message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorBody {
    /// Why the server refused.
    pub code: ErrorCode,
    /// Human-readable details, at most [`MAX_MESSAGE_LEN`] bytes on the wire.
    pub message: String,
}

/// `text` cut to at most [`MAX_MESSAGE_LEN`] bytes at a character boundary.
fn bounded(text: &str) -> &[u8] {
    let mut end = text.len().min(MAX_MESSAGE_LEN);
    while !text.is_char_boundary(end) {
        end = end.saturating_sub(1);
    }
    text.as_bytes().get(..end).unwrap_or_default()
}

fn message_from(bytes: &[u8]) -> String {
    let kept = bytes.get(..MAX_MESSAGE_LEN).unwrap_or(bytes);
    String::from_utf8_lossy(kept).into_owned()
}

impl ErrorBody {
    /// An ERROR body.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody {
            code,
            message: message.into(),
        }
    }

    /// The ERROR frame (the message cut to [`MAX_MESSAGE_LEN`] bytes).
    pub fn encode(&self) -> Frame {
        let mut b = self.code.to_u32().to_le_bytes().to_vec();
        b.extend_from_slice(bounded(&self.message));
        Frame::new(FrameType::Error, b)
    }

    /// Decodes an ERROR body (code, then the message as lossy UTF-8).
    pub fn decode(body: &[u8]) -> Result<Self, ProtocolError> {
        let code =
            u32_at(body, 0).ok_or_else(|| bad_len("ERROR", body.len(), "at least 4 expected"))?;
        Ok(ErrorBody {
            code: ErrorCode::from_u32(code),
            message: message_from(body.get(4..).unwrap_or_default()),
        })
    }
}

/// MM_REQUEST: the buffer size in force (BUFFER_SIZE) and the request
/// bytes (MM header plus MessageLength bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MmRequest {
    /// BUFFER_SIZE as the device register holds it.
    pub buffer_size: u32,
    /// The request: MM header plus MessageLength bytes.
    pub request: Vec<u8>,
}

impl MmRequest {
    /// The MM_REQUEST frame for `request` under `buffer_size`.
    pub fn encode(buffer_size: u32, request: &[u8]) -> Frame {
        let mut b = Vec::with_capacity(request.len().saturating_add(4));
        b.extend_from_slice(&buffer_size.to_le_bytes());
        b.extend_from_slice(request);
        Frame::new(FrameType::MmRequest, b)
    }

    /// Decodes and checks the body against the negotiated maximum: the
    /// buffer size and the request length are both at most `max_buffer`.
    pub fn decode(body: &[u8], max_buffer: u32) -> Result<Self, ProtocolError> {
        let buffer_size = u32_at(body, 0)
            .ok_or_else(|| bad_len("MM_REQUEST", body.len(), "at least 4 expected"))?;
        let request = body.get(4..).unwrap_or_default();
        if buffer_size > max_buffer {
            return Err(ProtocolError::BadField(format!(
                "MM_REQUEST buffer size {buffer_size} exceeds the negotiated {max_buffer}"
            )));
        }
        if u32::try_from(request.len()).map_or(true, |l| l > max_buffer) {
            return Err(ProtocolError::BadField(format!(
                "MM_REQUEST of {} bytes exceeds the negotiated buffer size {max_buffer}",
                request.len()
            )));
        }
        Ok(MmRequest {
            buffer_size,
            request: request.to_vec(),
        })
    }
}

/// MM_RESPONSE flag: a reply buffer follows.
pub const RESPONSE_HAS_REPLY: u8 = 1;
/// MM_RESPONSE flag: the request caused a host-side error (e.g. the store
/// could not be written); details are in the service's log.
pub const RESPONSE_HOST_ERROR: u8 = 2;

/// MM_RESPONSE: device status, flags, reply bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MmResponseBody {
    /// The CMD_STS value.
    pub status: u16,
    /// The reply buffer the device writes back, if the service produced one.
    pub reply: Option<Vec<u8>>,
    /// The request caused a host-side error ([`RESPONSE_HOST_ERROR`]).
    pub host_error: bool,
}

impl MmResponseBody {
    /// The MM_RESPONSE frame.
    pub fn encode(&self) -> Frame {
        let mut flags = 0u8;
        if self.reply.is_some() {
            flags |= RESPONSE_HAS_REPLY;
        }
        if self.host_error {
            flags |= RESPONSE_HOST_ERROR;
        }
        let reply = self.reply.as_deref().unwrap_or_default();
        let mut b = Vec::with_capacity(reply.len().saturating_add(4));
        b.extend_from_slice(&self.status.to_le_bytes());
        b.push(flags);
        b.push(0);
        b.extend_from_slice(reply);
        Frame::new(FrameType::MmResponse, b)
    }

    /// Decodes an MM_RESPONSE body; unknown flags and stray bytes are errors.
    pub fn decode(body: &[u8]) -> Result<Self, ProtocolError> {
        let err = || bad_len("MM_RESPONSE", body.len(), "at least 4 expected");
        let status = u16_at(body, 0).ok_or_else(err)?;
        let flags = body.get(2).copied().ok_or_else(err)?;
        if flags & !(RESPONSE_HAS_REPLY | RESPONSE_HOST_ERROR) != 0 {
            return Err(ProtocolError::BadField(format!(
                "MM_RESPONSE has unknown flags {flags:#04x}"
            )));
        }
        let rest = body.get(4..).unwrap_or_default();
        let reply = if flags & RESPONSE_HAS_REPLY != 0 {
            Some(rest.to_vec())
        } else if rest.is_empty() {
            None
        } else {
            return Err(ProtocolError::BadField(
                "MM_RESPONSE without reply carries bytes".into(),
            ));
        };
        Ok(MmResponseBody {
            status,
            reply,
            host_error: flags & RESPONSE_HOST_ERROR != 0,
        })
    }
}

/// The device status named by a CMD_STS value; unknown values become
/// ERR_UNKNOWN (the guest sees a device error either way).
pub fn device_status(code: u16) -> DeviceStatus {
    DeviceStatus::from_code(code).unwrap_or(DeviceStatus::ErrUnknown)
}

/// RESET_DONE: 0 and no text on success; 1 and the host error otherwise.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResetDone {
    /// The host error that kept the reset from completing, if any.
    pub error: Option<String>,
}

impl ResetDone {
    /// The RESET_DONE frame.
    pub fn encode(&self) -> Frame {
        let mut b = Vec::new();
        match &self.error {
            None => b.extend_from_slice(&0u32.to_le_bytes()),
            Some(msg) => {
                b.extend_from_slice(&1u32.to_le_bytes());
                b.extend_from_slice(bounded(msg));
            }
        }
        Frame::new(FrameType::ResetDone, b)
    }

    /// Decodes a RESET_DONE body.
    pub fn decode(body: &[u8]) -> Result<Self, ProtocolError> {
        let result = u32_at(body, 0)
            .ok_or_else(|| bad_len("RESET_DONE", body.len(), "at least 4 expected"))?;
        Ok(ResetDone {
            error: (result != 0).then(|| message_from(body.get(4..).unwrap_or_default())),
        })
    }
}

/// Checks a body that must be empty (RESET).
pub fn expect_empty(what: &'static str, body: &[u8]) -> Result<(), ProtocolError> {
    if body.is_empty() {
        Ok(())
    } else {
        Err(bad_len(what, body.len(), "0 expected"))
    }
}

/// Checks a PING/PONG body.
pub fn check_ping(what: &'static str, body: &[u8]) -> Result<(), ProtocolError> {
    if body.len() <= MAX_PING_LEN {
        Ok(())
    } else {
        Err(bad_len(what, body.len(), "at most 64 expected"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The codes of docs/serve-protocol.md's table.
    #[test]
    fn error_codes_match_the_protocol_document() {
        let table = [
            (1, ErrorCode::BadMagic),
            (2, ErrorCode::UnsupportedVersion),
            (3, ErrorCode::BadWordSize),
            (4, ErrorCode::WordSizeMismatch),
            (5, ErrorCode::Busy),
            (6, ErrorCode::Protocol),
            (7, ErrorCode::Store),
            (8, ErrorCode::ShuttingDown),
            (9, ErrorCode::NotAllowed),
        ];
        for (n, code) in table {
            assert_eq!(ErrorCode::from_u32(n), code);
            assert_eq!(code.to_u32(), n);
        }
        assert_eq!(ErrorCode::from_u32(10), ErrorCode::Other(10));
    }

    #[test]
    fn header_round_trip_and_bounds() {
        let h = FrameHeader {
            kind: FrameType::MmRequest,
            len: 300,
        };
        assert_eq!(h.encode(), [0x10, 0, 0, 0, 0x2c, 1, 0, 0]);
        assert_eq!(FrameHeader::parse(&h.encode()), Ok(h));
        assert_eq!(
            FrameHeader::parse(&[0x99, 0, 0, 0, 0, 0, 0, 0]),
            Err(ProtocolError::UnknownType(0x99))
        );
        assert_eq!(
            FrameHeader::parse(&[1, 0, 1, 0, 0, 0, 0, 0]),
            Err(ProtocolError::Reserved(1))
        );
        let mut over = [0x10, 0, 0, 0, 0, 0, 0, 0];
        over[4..].copy_from_slice(&(MAX_BODY_LEN + 1).to_le_bytes());
        assert!(matches!(
            FrameHeader::parse(&over),
            Err(ProtocolError::Oversize { .. })
        ));
    }

    #[test]
    fn decoder_handles_split_and_pipelined_frames() {
        let a = Frame::new(FrameType::Ping, vec![1, 2, 3]).encode().unwrap();
        let b = Frame::new(FrameType::Reset, vec![]).encode().unwrap();
        let all = [a.clone(), b.clone()].concat();
        let mut d = FrameDecoder::new();
        for byte in &all {
            d.push(std::slice::from_ref(byte));
        }
        assert_eq!(d.next_frame().unwrap().unwrap().body, vec![1, 2, 3]);
        assert_eq!(d.next_frame().unwrap().unwrap().kind, FrameType::Reset);
        assert_eq!(d.next_frame().unwrap(), None);
        assert_eq!(d.pending(), 0);
        d.push(&a[..5]);
        assert_eq!(d.next_frame().unwrap(), None);
        assert_eq!(d.pending(), 5);
    }

    #[test]
    fn bodies_round_trip() {
        let h = Hello::new(65536, Layout::IA32);
        assert_eq!(Hello::decode(&h.encode().body), Ok(h));
        let w = Welcome {
            version: 1,
            buffer_size: 4096,
            word_bits: 64,
        };
        assert_eq!(Welcome::decode(&w.encode().body), Ok(w));
        let e = ErrorBody::new(ErrorCode::Busy, "x".repeat(5000));
        let back = ErrorBody::decode(&e.encode().body).unwrap();
        assert_eq!(back.code, ErrorCode::Busy);
        assert_eq!(back.message.len(), MAX_MESSAGE_LEN);
        let r = MmResponseBody {
            status: 0x11,
            reply: Some(vec![9; 10]),
            host_error: true,
        };
        assert_eq!(MmResponseBody::decode(&r.encode().body), Ok(r));
        let none = MmResponseBody {
            status: 0x12,
            reply: None,
            host_error: false,
        };
        assert_eq!(MmResponseBody::decode(&none.encode().body), Ok(none));
        let q = MmRequest::encode(4096, &[7; 100]);
        assert_eq!(
            MmRequest::decode(&q.body, 4096),
            Ok(MmRequest {
                buffer_size: 4096,
                request: vec![7; 100]
            })
        );
        assert!(MmRequest::decode(&q.body, 50).is_err());
        let d = ResetDone {
            error: Some("disk full".into()),
        };
        assert_eq!(ResetDone::decode(&d.encode().body), Ok(d));
    }

    #[test]
    fn read_frame_reports_truncation() {
        let f = Frame::new(FrameType::Pong, vec![1; 10]).encode().unwrap();
        assert!(matches!(
            read_frame(&mut &f[..12]),
            Err(ReadError::Truncated)
        ));
        assert!(matches!(
            read_frame(&mut &f[..3]),
            Err(ReadError::Truncated)
        ));
        assert!(matches!(read_frame(&mut &f[..0]), Err(ReadError::Closed)));
        assert_eq!(read_frame(&mut &f[..]).unwrap().body, vec![1; 10]);
    }
}
