//! The VMM side: [`RemoteService`] forwards MM requests and machine resets
//! to a `uefi-vars serve` process and implements the device crate's
//! [`MmBackend`], so [`uefi_vars_device::UefiVarsDevice`] can sit in front
//! of a service running in another process.

use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use uefi_vars::codec::Layout;
use uefi_vars::service::MAX_BUFFER_SIZE;
use uefi_vars::{DeviceStatus, MmResponse};
use uefi_vars_device::MmBackend;

use crate::protocol::{
    self, device_status, layout_for_bits, read_frame, write_frame, ErrorBody, ErrorCode, Frame,
    FrameType, Hello, MmRequest, MmResponseBody, ProtocolError, ReadError, ResetDone, Welcome,
    PROTOCOL_VERSION,
};

/// Why a call to the remote service failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The socket could not be connected.
    #[error("cannot connect to {path}: {source}")]
    Connect {
        /// The socket path.
        path: String,
        /// What `connect(2)` said.
        #[source]
        source: io::Error,
    },
    /// Reading or writing the socket failed.
    #[error("I/O error on the service socket: {0}")]
    Io(#[from] io::Error),
    /// The service closed the connection (also in the middle of a frame).
    #[error("the service closed the connection")]
    Closed,
    /// The service sent bytes that are not a valid frame or body.
    #[error("malformed answer from the service: {0}")]
    Protocol(#[from] ProtocolError),
    /// The service answered with an ERROR frame (and closed the connection).
    #[error("the service refused: {code}: {message}")]
    Refused {
        /// The ERROR frame's code.
        code: ErrorCode,
        /// The ERROR frame's message.
        message: String,
    },
    /// The service negotiated something this client cannot use.
    #[error("handshake failed: {0}")]
    Handshake(String),
    /// The service could not complete a machine reset (e.g. the store could
    /// not be written); the connection stays usable.
    #[error("the service reported a host error: {0}")]
    Remote(String),
    /// An earlier failure left the connection in an unknown state.
    #[error("the connection is unusable after an earlier error")]
    Broken,
}

impl From<ReadError> for ClientError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Closed | ReadError::Truncated => ClientError::Closed,
            ReadError::Io(e) => ClientError::Io(e),
            ReadError::Protocol(p) => ClientError::Protocol(p),
        }
    }
}

/// A connection to a `uefi-vars serve` process.
///
/// Requests are answered in order, one at a time. Any transport or
/// protocol failure marks the connection broken; later calls fail with
/// [`ClientError::Broken`] (reconnect with [`RemoteService::connect`]).
#[derive(Debug)]
pub struct RemoteService {
    stream: UnixStream,
    layout: Layout,
    version: u32,
    /// The negotiated maximum buffer size.
    max_buffer_size: u32,
    /// BUFFER_SIZE as the device last set it, clamped to the maximum.
    buffer_size: u32,
    broken: bool,
    host_errors: u64,
    errors: Vec<ClientError>,
}

impl RemoteService {
    /// Connects to the service at `path` and performs the handshake:
    /// protocol version, the largest buffer size the client will use
    /// (`buffer_size`, clamped to 64 KiB by the server) and the guest word
    /// size. The current buffer size starts at the negotiated maximum.
    pub fn connect(
        path: impl AsRef<Path>,
        buffer_size: u32,
        layout: Layout,
    ) -> Result<Self, ClientError> {
        Self::connect_with_timeout(path, buffer_size, layout, None)
    }

    /// [`connect`](Self::connect) with a bound on every read and write of
    /// the connection, handshake included (`None`: wait forever).
    pub fn connect_with_timeout(
        path: impl AsRef<Path>,
        buffer_size: u32,
        layout: Layout,
        timeout: Option<Duration>,
    ) -> Result<Self, ClientError> {
        let path = path.as_ref();
        let mut stream = UnixStream::connect(path).map_err(|source| ClientError::Connect {
            path: path.display().to_string(),
            source,
        })?;
        stream.set_read_timeout(timeout)?;
        stream.set_write_timeout(timeout)?;
        let hello = Hello::new(buffer_size.min(MAX_BUFFER_SIZE), layout);
        // A server that refuses the connection writes an ERROR frame and
        // closes at once, so the HELLO may fail to go out; the answer is
        // read either way.
        let sent = write_frame(&mut stream, &hello.encode());
        let answer = match read_frame(&mut stream) {
            Ok(frame) => frame,
            Err(e) => {
                return Err(match sent {
                    Err(w) => ClientError::Io(w),
                    Ok(()) => e.into(),
                })
            }
        };
        let welcome = match answer.kind {
            FrameType::Welcome => Welcome::decode(&answer.body)?,
            FrameType::Error => {
                let e = ErrorBody::decode(&answer.body)?;
                return Err(ClientError::Refused {
                    code: e.code,
                    message: e.message,
                });
            }
            other => {
                return Err(ProtocolError::Unexpected {
                    got: other,
                    state: "expected WELCOME or ERROR",
                }
                .into())
            }
        };
        if welcome.version == 0 || welcome.version > PROTOCOL_VERSION {
            return Err(ClientError::Handshake(format!(
                "server chose protocol version {}, this client speaks 1 to {PROTOCOL_VERSION}",
                welcome.version
            )));
        }
        if layout_for_bits(welcome.word_bits) != Some(layout) {
            return Err(ClientError::Handshake(format!(
                "server answered a {}-bit guest, {}-bit was requested",
                welcome.word_bits,
                protocol::word_bits(layout)
            )));
        }
        if welcome.buffer_size > hello.buffer_size {
            return Err(ClientError::Handshake(format!(
                "server granted buffer size {} above the {} requested",
                welcome.buffer_size, hello.buffer_size
            )));
        }
        let mut remote = RemoteService {
            stream,
            layout,
            version: welcome.version,
            max_buffer_size: welcome.buffer_size,
            buffer_size: welcome.buffer_size,
            broken: false,
            host_errors: 0,
            errors: Vec::new(),
        };
        // One answered request makes the connection established for the
        // server: it is then neither closed by the idle timeout (a VM that
        // stays paused before its first reset) nor taken over by a newer
        // connection (docs/serve-protocol.md, "Connection policy").
        remote.ping()?;
        Ok(remote)
    }

    /// Bounds every later read and write (`None`: wait forever).
    pub fn set_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.stream.set_read_timeout(timeout)?;
        self.stream.set_write_timeout(timeout)
    }

    /// The guest layout (MM header size) the service accepted.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The protocol version both sides agreed on in WELCOME.
    pub fn protocol_version(&self) -> u32 {
        self.version
    }

    /// The buffer size negotiated at connection time.
    pub fn max_buffer_size(&self) -> u32 {
        self.max_buffer_size
    }

    /// The buffer size sent with each request.
    pub fn buffer_size(&self) -> u32 {
        self.buffer_size
    }

    /// Sets the buffer size sent with each request (BUFFER_SIZE), clamped to
    /// the negotiated maximum.
    pub fn set_buffer_size(&mut self, size: u32) {
        self.buffer_size = size.min(self.max_buffer_size);
    }

    /// Whether an earlier failure made the connection unusable.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// How many requests the service flagged with a host-side error (their
    /// details are in the service's log) since the last call.
    pub fn take_host_error_count(&mut self) -> u64 {
        std::mem::take(&mut self.host_errors)
    }

    /// Failures of [`MmBackend::communicate`] calls (which can only report
    /// a device status to the guest) since the last call.
    pub fn take_errors(&mut self) -> Vec<ClientError> {
        std::mem::take(&mut self.errors)
    }

    /// Sends one MM request (header plus MessageLength bytes) with the
    /// current buffer size and returns the service's answer.
    ///
    /// A request longer than the negotiated buffer size is answered here
    /// with ERR_BAD_BUFFER_SIZE, as the service would.
    pub fn communicate(&mut self, request: &[u8]) -> Result<MmResponse, ClientError> {
        if u32::try_from(request.len()).map_or(true, |l| l > self.max_buffer_size) {
            return Ok(MmResponse {
                status: DeviceStatus::ErrBadBufferSize,
                reply: None,
            });
        }
        let answer = self.call(&MmRequest::encode(self.buffer_size, request))?;
        let body = self.expect(answer, FrameType::MmResponse)?;
        let resp = MmResponseBody::decode(&body).inspect_err(|_| self.broken = true)?;
        if resp.host_error {
            self.host_errors = self.host_errors.saturating_add(1);
        }
        Ok(MmResponse {
            status: device_status(resp.status),
            reply: resp.reply,
        })
    }

    /// Machine reset of the remote service.
    pub fn reset(&mut self) -> Result<(), ClientError> {
        let answer = self.call(&Frame::new(FrameType::Reset, Vec::new()))?;
        let body = self.expect(answer, FrameType::ResetDone)?;
        match ResetDone::decode(&body)
            .inspect_err(|_| self.broken = true)?
            .error
        {
            None => Ok(()),
            Some(msg) => Err(ClientError::Remote(msg)),
        }
    }

    /// Round trip with an empty PING.
    pub fn ping(&mut self) -> Result<(), ClientError> {
        let answer = self.call(&Frame::new(FrameType::Ping, Vec::new()))?;
        self.expect(answer, FrameType::Pong).map(|_| ())
    }

    /// Sends a frame and reads the answer; any failure breaks the
    /// connection.
    fn call(&mut self, frame: &Frame) -> Result<Frame, ClientError> {
        if self.broken {
            return Err(ClientError::Broken);
        }
        let result = (|| -> Result<Frame, ClientError> {
            let bytes = frame.encode()?;
            self.stream.write_all(&bytes)?;
            Ok(read_frame(&mut self.stream)?)
        })();
        if result.is_err() {
            self.broken = true;
        }
        result
    }

    /// The body of `frame` if it has the expected type; an ERROR frame
    /// becomes [`ClientError::Refused`].
    fn expect(&mut self, frame: Frame, want: FrameType) -> Result<Vec<u8>, ClientError> {
        if frame.kind == want {
            return Ok(frame.body);
        }
        self.broken = true;
        if frame.kind == FrameType::Error {
            let e = ErrorBody::decode(&frame.body)?;
            return Err(ClientError::Refused {
                code: e.code,
                message: e.message,
            });
        }
        Err(ProtocolError::Unexpected {
            got: frame.kind,
            state: "answer of another type expected",
        }
        .into())
    }
}

impl MmBackend for RemoteService {
    type Error = ClientError;

    fn layout(&self) -> Layout {
        self.layout
    }

    fn set_buffer_size(&mut self, size: u32) {
        RemoteService::set_buffer_size(self, size);
    }

    /// A failure to reach the service is a device error for the guest
    /// (ERR_UNKNOWN, nothing written back); the error is kept for
    /// [`RemoteService::take_errors`].
    fn communicate(&mut self, request: &[u8]) -> MmResponse {
        match RemoteService::communicate(self, request) {
            Ok(resp) => resp,
            Err(e) => {
                if self.errors.len() < 64 {
                    self.errors.push(e);
                }
                MmResponse {
                    status: DeviceStatus::ErrUnknown,
                    reply: None,
                }
            }
        }
    }

    fn reset(&mut self) -> Result<(), Self::Error> {
        RemoteService::reset(self)
    }
}
