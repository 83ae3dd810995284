//! pcap captures with link type 302 (LINKTYPE_EDK2_MM).
//!
//! QEMU's `uefi-vars` device (property `pcapfile`) logs every MM
//! communication it serves as a classic libpcap file:
//!
//! - a 24-byte global header: magic `0xA1B2C3D4`, version 2.4, thiszone 0,
//!   sigfigs 0, snaplen 65536, link type 302;
//! - per record a 16-byte header (`ts_sec`, `ts_usec`, `incl_len`,
//!   `orig_len`), then `incl_len` bytes: a u32 record type followed by the
//!   payload. `orig_len` is 4 + the payload length and `incl_len` is
//!   `min(orig_len, 65536)`, so payloads longer than 65532 bytes are cut.
//!
//! Record types are [`RecordKind::Reset`] (machine reset, no payload),
//! [`RecordKind::Request`] (the MM communicate buffer as received: 24-byte
//! header plus `MessageLength` bytes) and [`RecordKind::Reply`] (the same
//! buffer after processing).
//!
//! QEMU writes the headers and the record type in host byte order, so on a
//! big-endian host the whole framing is big-endian (the magic reads
//! reversed); the reader accepts both, and also the nanosecond-resolution
//! magic `0xA1B23C4D`. The MM buffer itself is copied verbatim in both cases.
//! The [`PcapWriter`] always writes the little-endian microsecond form, as
//! QEMU does on x86 and Arm hosts.
//!
//! Input may be gzip-compressed; it is recognised by the gzip magic
//! `1f 8b`, not by the file name, and decompressed into at most
//! [`MAX_DECOMPRESSED`] bytes. Parsing never panics and never allocates more
//! than the input justifies: every length is checked against the bytes that
//! are actually present before it is used.

use std::fs::File;
use std::io::{self, BufWriter, Write};
#[cfg(feature = "pcap")]
use std::io::{BufReader, Read};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

#[cfg(feature = "pcap")]
use crate::codec::{Malformed, Reader};
#[cfg(feature = "pcap")]
use flate2::read::MultiGzDecoder;
#[cfg(feature = "pcap")]
use flate2::write::GzEncoder;
#[cfg(feature = "pcap")]
use flate2::Compression;

/// The pcap link type of EDK2 MM captures.
pub const LINKTYPE_EDK2_MM: u32 = 302;

/// Snapshot length QEMU writes and [`PcapWriter`] uses: the largest
/// `incl_len` of a record (4-byte record type included).
pub const SNAPLEN: u32 = 65536;

#[cfg(feature = "pcap")]
/// Upper bound on the size of a decompressed (or plain, when read from a
/// file) capture: 1 GiB. Larger input is refused with
/// [`PcapError::TooLarge`] rather than exhausting memory.
pub const MAX_DECOMPRESSED: u64 = 1 << 30;

/// Length of the pcap global header.
const GLOBAL_HEADER_LEN: usize = 24;
/// Length of a pcap record header.
const RECORD_HEADER_LEN: usize = 16;
/// Length of the record type that starts each record's data.
const TYPE_LEN: usize = 4;

const MAGIC_USEC: u32 = 0xA1B2_C3D4;
#[cfg(feature = "pcap")]
const MAGIC_NSEC: u32 = 0xA1B2_3C4D;
#[cfg(feature = "pcap")]
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

const TYPE_RESET: u32 = 1;
const TYPE_REQUEST: u32 = 2;
const TYPE_REPLY: u32 = 3;

/// What a record describes, from the u32 that starts its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RecordKind {
    /// 1: machine reset; carries no payload.
    Reset,
    /// 2: an MM communicate buffer as the guest handed it over.
    Request,
    /// 3: the same buffer after the service processed it.
    Reply,
    /// Any other type, kept as read. Reading never yields `Other(1..=3)`.
    Other(u32),
}

impl RecordKind {
    /// Classifies a record type number.
    pub const fn from_u32(value: u32) -> Self {
        match value {
            TYPE_RESET => RecordKind::Reset,
            TYPE_REQUEST => RecordKind::Request,
            TYPE_REPLY => RecordKind::Reply,
            other => RecordKind::Other(other),
        }
    }

    /// The record type number written to the file.
    pub const fn to_u32(self) -> u32 {
        match self {
            RecordKind::Reset => TYPE_RESET,
            RecordKind::Request => TYPE_REQUEST,
            RecordKind::Reply => TYPE_REPLY,
            RecordKind::Other(value) => value,
        }
    }
}

/// One capture record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// What the record describes.
    pub kind: RecordKind,
    /// The bytes after the record type, as stored (possibly cut short).
    pub payload: Vec<u8>,
    /// Seconds since the Unix epoch.
    pub ts_sec: u32,
    /// Microseconds within the second (nanosecond files are divided by
    /// 1000). Not validated: hostile files may hold values >= 1_000_000.
    pub ts_usec: u32,
    /// The record's `orig_len`: 4 + the length of the payload before any
    /// truncation.
    pub orig_len: u32,
    /// `true` when the file holds fewer bytes than the original record
    /// (`incl_len < orig_len`), i.e. `payload` is only a prefix.
    pub truncated: bool,
}

#[cfg(feature = "pcap")]
/// Why a capture could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PcapError {
    /// Reading the input failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// The gzip stream is damaged.
    #[error("gzip decompression failed: {0}")]
    Gzip(#[source] io::Error),
    /// The capture is larger than the limit.
    #[error("capture exceeds the {limit}-byte limit (after decompression)")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// Shorter than the 24-byte global header.
    #[error("file too short for the pcap global header: {len} of 24 bytes")]
    ShortHeader {
        /// The input's length.
        len: usize,
    },
    /// Not a classic libpcap magic.
    #[error("bad magic {0:#010x}: not a classic libpcap file (pcapng is not supported)")]
    BadMagic(u32),
    /// A pcap version other than 2.x.
    #[error("unsupported pcap version {major}.{minor} (expected 2.x)")]
    UnsupportedVersion {
        /// Major version.
        major: u16,
        /// Minor version.
        minor: u16,
    },
    /// A link type other than LINKTYPE_EDK2_MM.
    #[error("link type {0} is not LINKTYPE_EDK2_MM (302)")]
    WrongLinkType(u32),
    /// The input ends inside a record header.
    #[error("record {index} at offset {offset}: only {available} of 16 header bytes present")]
    TruncatedRecordHeader {
        /// Index of the record.
        index: usize,
        /// Offset of its header in the (decompressed) capture.
        offset: usize,
        /// Header bytes present.
        available: usize,
    },
    #[error(
        "record {index} at offset {offset}: incl_len {incl_len} but only {available} bytes remain"
    )]
    /// A record's data runs past the end of the input.
    RecordPastEnd {
        /// Index of the record.
        index: usize,
        /// Offset of its header.
        offset: usize,
        /// The data length its header gives.
        incl_len: u32,
        /// Data bytes present.
        available: usize,
    },
    /// A record longer than the snapshot length.
    #[error("record {index} at offset {offset}: incl_len {incl_len} exceeds snaplen {snaplen}")]
    RecordTooLong {
        /// Index of the record.
        index: usize,
        /// Offset of its header.
        offset: usize,
        /// The data length its header gives.
        incl_len: u32,
        /// The global header's snapshot length.
        snaplen: u32,
    },
    #[error(
        "record {index} at offset {offset}: inconsistent lengths incl_len {incl_len}, orig_len {orig_len} (need 4 <= incl_len <= orig_len)"
    )]
    /// incl_len and orig_len contradict each other.
    BadRecordLength {
        /// Index of the record.
        index: usize,
        /// Offset of its header.
        offset: usize,
        /// The stored length.
        incl_len: u32,
        /// The original length.
        orig_len: u32,
    },
}

#[cfg(feature = "pcap")]
/// Byte order of a file's pcap framing.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Order {
    Little,
    Big,
}

#[cfg(feature = "pcap")]
impl Order {
    fn u32(self, r: &mut Reader<'_>, what: &str) -> Result<u32, Malformed> {
        match self {
            Order::Little => r.u32(what),
            Order::Big => r.u32_be(what),
        }
    }

    fn u16(self, r: &mut Reader<'_>, what: &str) -> Result<u16, Malformed> {
        match self {
            Order::Little => r.u16(what),
            Order::Big => r.u16_be(what),
        }
    }
}

#[cfg(feature = "pcap")]
/// Parses a capture held in memory, plain or gzip-compressed.
///
/// Gzip input is decompressed into at most [`MAX_DECOMPRESSED`] bytes.
/// Offsets in errors count from the start of the (decompressed) pcap data.
pub fn read_records(bytes: &[u8]) -> Result<Vec<Record>, PcapError> {
    read_records_with_limit(bytes, MAX_DECOMPRESSED)
}

#[cfg(feature = "pcap")]
/// [`read_records`] with an explicit bound on the decompressed size.
pub fn read_records_with_limit(
    bytes: &[u8],
    max_decompressed: u64,
) -> Result<Vec<Record>, PcapError> {
    PcapReader::with_limit(bytes, max_decompressed)?.collect()
}

#[cfg(feature = "pcap")]
/// Reads and parses a capture file, plain or gzip-compressed (detected by
/// content). Both the file and its decompressed form are limited to
/// [`MAX_DECOMPRESSED`] bytes. To go through a capture without holding it,
/// use [`open_file`].
pub fn read_file(path: &Path) -> Result<Vec<Record>, PcapError> {
    open_file(path)?.collect()
}

#[cfg(feature = "pcap")]
/// Opens a capture file, plain or gzip-compressed (detected by content),
/// for reading record by record: memory holds one record at a time.
pub fn open_file(path: &Path) -> Result<PcapReader<'static>, PcapError> {
    PcapReader::with_limit(BufReader::new(File::open(path)?), MAX_DECOMPRESSED)
}

#[cfg(feature = "pcap")]
/// Payload bytes [`PcapReader`] allocates before they arrive: one MM
/// buffer (a record's claimed length is trusted up to this).
const PREALLOCATE: usize = 64 * 1024;

#[cfg(feature = "pcap")]
/// Marks the error a [`Limited`] reader returns past its limit.
#[derive(Debug)]
struct LimitExceeded;

#[cfg(feature = "pcap")]
impl std::fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("size limit exceeded")
    }
}

#[cfg(feature = "pcap")]
impl std::error::Error for LimitExceeded {}

#[cfg(feature = "pcap")]
/// A reader that fails once more than `left` bytes came through.
struct Limited<R> {
    inner: R,
    left: u64,
}

#[cfg(feature = "pcap")]
impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let n64 = u64::try_from(n).unwrap_or(u64::MAX);
        if n64 > self.left {
            return Err(io::Error::other(LimitExceeded));
        }
        self.left = self.left.saturating_sub(n64);
        Ok(n)
    }
}

#[cfg(feature = "pcap")]
/// A capture read record by record from any byte source, plain or gzip
/// (all members), with the checks and errors of [`read_records`]. After an
/// error the iterator ends.
pub struct PcapReader<'a> {
    inner: Box<dyn Read + 'a>,
    gzip: bool,
    limit: u64,
    order: Order,
    nanos: bool,
    snaplen: u32,
    /// Offset of the next record in the (decompressed) pcap data.
    offset: usize,
    index: usize,
    done: bool,
}

#[cfg(feature = "pcap")]
impl std::fmt::Debug for PcapReader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcapReader")
            .field("gzip", &self.gzip)
            .field("offset", &self.offset)
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "pcap")]
/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_up_to(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0usize;
    while let Some(rest) = buf.get_mut(got..).filter(|r| !r.is_empty()) {
        match r.read(rest) {
            Ok(0) => break,
            Ok(n) => got = got.saturating_add(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

#[cfg(feature = "pcap")]
impl<'a> PcapReader<'a> {
    /// Reads the global header from `source` (decompressing gzip input) and
    /// stops with [`PcapError::TooLarge`] once more than `limit` bytes of
    /// pcap data came through.
    pub fn with_limit(source: impl io::BufRead + 'a, limit: u64) -> Result<Self, PcapError> {
        let mut source = source;
        let gzip = source.fill_buf()?.starts_with(&GZIP_MAGIC);
        let inner: Box<dyn Read + 'a> = if gzip {
            // Records are read a header at a time: inflate into a large
            // buffer instead of a few bytes per call (issue 11: reading
            // the capture cost 30 times the replay).
            Box::new(Limited {
                inner: io::BufReader::with_capacity(64 * 1024, MultiGzDecoder::new(source)),
                left: limit,
            })
        } else {
            Box::new(Limited {
                inner: source,
                left: limit,
            })
        };
        let mut reader = PcapReader {
            inner,
            gzip,
            limit,
            order: Order::Little,
            nanos: false,
            snaplen: 0,
            offset: GLOBAL_HEADER_LEN,
            index: 0,
            done: false,
        };
        reader.read_global_header()?;
        Ok(reader)
    }

    fn io_error(&self, e: io::Error) -> PcapError {
        if e.get_ref().is_some_and(|inner| inner.is::<LimitExceeded>()) {
            PcapError::TooLarge { limit: self.limit }
        } else if self.gzip {
            PcapError::Gzip(e)
        } else {
            PcapError::Io(e)
        }
    }

    fn fill(&mut self, buf: &mut [u8]) -> Result<usize, PcapError> {
        read_up_to(&mut *self.inner, buf).map_err(|e| self.io_error(e))
    }

    fn read_global_header(&mut self) -> Result<(), PcapError> {
        let mut header = [0u8; GLOBAL_HEADER_LEN];
        let got = self.fill(&mut header)?;
        if got < GLOBAL_HEADER_LEN {
            return Err(PcapError::ShortHeader { len: got });
        }
        let short = |_| PcapError::ShortHeader { len: got };
        let mut r = Reader::new(&header);
        let magic_le = r.u32("magic_number").map_err(short)?;
        let (order, nanos) = match (magic_le, magic_le.swap_bytes()) {
            (MAGIC_USEC, _) => (Order::Little, false),
            (MAGIC_NSEC, _) => (Order::Little, true),
            (_, MAGIC_USEC) => (Order::Big, false),
            (_, MAGIC_NSEC) => (Order::Big, true),
            _ => return Err(PcapError::BadMagic(magic_le)),
        };
        let major = order.u16(&mut r, "version_major").map_err(short)?;
        let minor = order.u16(&mut r, "version_minor").map_err(short)?;
        if major != 2 {
            return Err(PcapError::UnsupportedVersion { major, minor });
        }
        // thiszone and sigfigs, unused.
        r.skip(8, "thiszone, sigfigs").map_err(short)?;
        let snaplen = order.u32(&mut r, "snaplen").map_err(short)?;
        let linktype = order.u32(&mut r, "network").map_err(short)?;
        if linktype != LINKTYPE_EDK2_MM {
            return Err(PcapError::WrongLinkType(linktype));
        }
        self.order = order;
        self.nanos = nanos;
        self.snaplen = snaplen;
        Ok(())
    }

    /// The next record; `Ok(None)` at the end of the capture.
    pub fn next_record(&mut self) -> Result<Option<Record>, PcapError> {
        let (index, offset) = (self.index, self.offset);
        let mut rec_header = [0u8; RECORD_HEADER_LEN];
        let got = self.fill(&mut rec_header)?;
        if got == 0 {
            return Ok(None);
        }
        if got < RECORD_HEADER_LEN {
            return Err(PcapError::TruncatedRecordHeader {
                index,
                offset,
                available: got,
            });
        }
        let order = self.order;
        let truncated = |_| PcapError::TruncatedRecordHeader {
            index,
            offset,
            available: got,
        };
        let mut r = Reader::new(&rec_header);
        let ts_sec = order.u32(&mut r, "ts_sec").map_err(truncated)?;
        let ts_frac = order.u32(&mut r, "ts_usec").map_err(truncated)?;
        let incl_len = order.u32(&mut r, "incl_len").map_err(truncated)?;
        let orig_len = order.u32(&mut r, "orig_len").map_err(truncated)?;
        if incl_len > self.snaplen {
            return Err(PcapError::RecordTooLong {
                index,
                offset,
                incl_len,
                snaplen: self.snaplen,
            });
        }
        let bad_length = PcapError::BadRecordLength {
            index,
            offset,
            incl_len,
            orig_len,
        };
        if incl_len > orig_len {
            return Err(bad_length);
        }
        let (kind, payload) = self.read_body(index, offset, incl_len, bad_length)?;
        let incl = usize::try_from(incl_len).unwrap_or(usize::MAX);
        self.offset = offset
            .saturating_add(RECORD_HEADER_LEN)
            .saturating_add(incl);
        self.index = index.saturating_add(1);
        Ok(Some(Record {
            kind,
            payload,
            ts_sec,
            ts_usec: if self.nanos { ts_frac / 1000 } else { ts_frac },
            orig_len,
            truncated: incl_len < orig_len,
        }))
    }

    /// The record type and payload: `incl_len` bytes, read as they arrive
    /// (a length the input does not back allocates at most
    /// [`PREALLOCATE`] bytes before its data runs out).
    fn read_body(
        &mut self,
        index: usize,
        offset: usize,
        incl_len: u32,
        bad_length: PcapError,
    ) -> Result<(RecordKind, Vec<u8>), PcapError> {
        let past_end = |available: usize| PcapError::RecordPastEnd {
            index,
            offset,
            incl_len,
            available,
        };
        let incl = usize::try_from(incl_len).map_err(|_| past_end(0))?;
        let mut type_bytes = [0u8; TYPE_LEN];
        let head = type_bytes.get_mut(..incl.min(TYPE_LEN)).unwrap_or_default();
        let got = self.fill(head)?;
        if got < incl.min(TYPE_LEN) {
            return Err(past_end(got));
        }
        if incl < TYPE_LEN {
            return Err(bad_length);
        }
        let want = u64::from(incl_len).saturating_sub(TYPE_LEN as u64);
        // Room for the usual record at once (no growth, no probing reads);
        // a larger claimed length grows only as its bytes arrive.
        let mut payload = Vec::with_capacity(usize::try_from(want).unwrap_or(0).min(PREALLOCATE));
        let read = (&mut self.inner).take(want).read_to_end(&mut payload);
        read.map_err(|e| self.io_error(e))?;
        if (payload.len() as u64) < want {
            return Err(past_end(TYPE_LEN.saturating_add(payload.len())));
        }
        // `type_bytes` holds TYPE_LEN bytes: the read cannot fail.
        let kind = self
            .order
            .u32(&mut Reader::new(&type_bytes), "record type")
            .map_err(|_| past_end(0))?;
        Ok((RecordKind::from_u32(kind), payload))
    }
}

#[cfg(feature = "pcap")]
impl Iterator for PcapReader<'_> {
    type Item = Result<Record, PcapError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let next = self.next_record().transpose();
        if !matches!(next, Some(Ok(_))) {
            self.done = true;
        }
        next
    }
}

/// Current wall-clock time as pcap `(ts_sec, ts_usec)`; 0 before the epoch,
/// seconds saturate at `u32::MAX` (year 2106).
fn now() -> (u32, u32) {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(elapsed) => (
            u32::try_from(elapsed.as_secs()).unwrap_or(u32::MAX),
            elapsed.subsec_micros(),
        ),
        Err(_) => (0, 0),
    }
}

/// Writes an EDK2 MM capture in QEMU's format (little-endian, microsecond
/// timestamps, snaplen [`SNAPLEN`]).
///
/// Payloads longer than `SNAPLEN - 4` bytes are cut, keeping the full length
/// in `orig_len`, exactly as QEMU does. Errors are those of the underlying
/// writer, plus `InvalidInput` for a payload whose length does not fit the
/// u32 `orig_len` field.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    inner: W,
    flush_each: bool,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the global header to `inner`.
    pub fn new(mut inner: W) -> io::Result<Self> {
        let mut header = [0u8; GLOBAL_HEADER_LEN];
        header[0..4].copy_from_slice(&MAGIC_USEC.to_le_bytes());
        header[4..6].copy_from_slice(&2u16.to_le_bytes());
        header[6..8].copy_from_slice(&4u16.to_le_bytes());
        // thiszone and sigfigs stay 0.
        header[16..20].copy_from_slice(&SNAPLEN.to_le_bytes());
        header[20..24].copy_from_slice(&LINKTYPE_EDK2_MM.to_le_bytes());
        inner.write_all(&header)?;
        Ok(PcapWriter {
            inner,
            flush_each: false,
        })
    }

    /// Whether to flush the underlying writer after every record (off by
    /// default), so a capture survives a crash of the process.
    pub fn flush_each_record(mut self, on: bool) -> Self {
        self.flush_each = on;
        self
    }

    /// Logs a machine reset, timestamped now.
    pub fn reset(&mut self) -> io::Result<()> {
        self.record(RecordKind::Reset, &[])
    }

    /// Logs an MM communicate buffer as received, timestamped now.
    pub fn request(&mut self, buffer: &[u8]) -> io::Result<()> {
        self.record(RecordKind::Request, buffer)
    }

    /// Logs an MM communicate buffer after processing, timestamped now.
    pub fn reply(&mut self, buffer: &[u8]) -> io::Result<()> {
        self.record(RecordKind::Reply, buffer)
    }

    /// Logs a record of any kind, timestamped now.
    pub fn record(&mut self, kind: RecordKind, payload: &[u8]) -> io::Result<()> {
        let (ts_sec, ts_usec) = now();
        self.record_at(kind, payload, ts_sec, ts_usec)
    }

    /// Logs a record with an explicit timestamp.
    pub fn record_at(
        &mut self,
        kind: RecordKind,
        payload: &[u8],
        ts_sec: u32,
        ts_usec: u32,
    ) -> io::Result<()> {
        let orig_len = u32::try_from(payload.len())
            .ok()
            .and_then(|len| len.checked_add(TYPE_LEN as u32))
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "pcap payload longer than u32::MAX - 4 bytes",
                )
            })?;
        let incl_len = orig_len.min(SNAPLEN);
        // `incl_len - 4 <= payload.len()`, so the slice is in bounds.
        let kept = usize::try_from(incl_len)
            .unwrap_or(usize::MAX)
            .saturating_sub(TYPE_LEN);
        let kept = payload.get(..kept).unwrap_or(payload);

        let mut header = [0u8; RECORD_HEADER_LEN + TYPE_LEN];
        header[0..4].copy_from_slice(&ts_sec.to_le_bytes());
        header[4..8].copy_from_slice(&ts_usec.to_le_bytes());
        header[8..12].copy_from_slice(&incl_len.to_le_bytes());
        header[12..16].copy_from_slice(&orig_len.to_le_bytes());
        header[16..20].copy_from_slice(&kind.to_u32().to_le_bytes());
        self.inner.write_all(&header)?;
        self.inner.write_all(kept)?;
        if self.flush_each {
            self.inner.flush()?;
        }
        Ok(())
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }

    /// The underlying writer.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// Unwraps the underlying writer (not flushed).
    pub fn into_inner(self) -> W {
        self.inner
    }
}

/// Destination of [`PcapWriter::create`] and [`PcapWriter::create_gzip`].
// One sink per capture file, so the zlib-rs encoder's size costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
#[non_exhaustive]
pub enum FileSink {
    /// An uncompressed file.
    Plain(BufWriter<File>),
    /// A gzip-compressed file (`pcap` feature).
    #[cfg(feature = "pcap")]
    Gzip(GzEncoder<BufWriter<File>>),
}

impl Write for FileSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            FileSink::Plain(w) => w.write(buf),
            #[cfg(feature = "pcap")]
            FileSink::Gzip(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            FileSink::Plain(w) => w.flush(),
            #[cfg(feature = "pcap")]
            FileSink::Gzip(w) => w.flush(),
        }
    }
}

impl PcapWriter<FileSink> {
    /// Creates (or truncates) a plain capture file at `path`.
    pub fn create(path: &Path) -> io::Result<Self> {
        let file = BufWriter::new(File::create(path)?);
        PcapWriter::new(FileSink::Plain(file))
    }

    /// Creates (or truncates) a gzip-compressed capture file at `path`.
    /// Call [`PcapWriter::finish`] to write the gzip trailer and see errors.
    #[cfg(feature = "pcap")]
    pub fn create_gzip(path: &Path) -> io::Result<Self> {
        let file = BufWriter::new(File::create(path)?);
        PcapWriter::new(FileSink::Gzip(GzEncoder::new(file, Compression::default())))
    }

    /// Completes the file: writes the gzip trailer if any, flushes, and
    /// reports errors that dropping the writer would swallow.
    pub fn finish(self) -> io::Result<()> {
        let file = match self.inner {
            FileSink::Plain(w) => w,
            #[cfg(feature = "pcap")]
            FileSink::Gzip(w) => w.finish()?,
        };
        file.into_inner().map_err(|e| e.into_error())?.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(magic: [u8; 4], order: Order, linktype: u32) -> Vec<u8> {
        let mut h = magic.to_vec();
        let (v, s, l) = match order {
            Order::Little => (
                [2u16.to_le_bytes(), 4u16.to_le_bytes()].concat(),
                SNAPLEN.to_le_bytes(),
                linktype.to_le_bytes(),
            ),
            Order::Big => (
                [2u16.to_be_bytes(), 4u16.to_be_bytes()].concat(),
                SNAPLEN.to_be_bytes(),
                linktype.to_be_bytes(),
            ),
        };
        h.extend_from_slice(&v);
        h.extend_from_slice(&[0; 8]);
        h.extend_from_slice(&s);
        h.extend_from_slice(&l);
        h
    }

    fn be_record(ts: (u32, u32), kind: u32, payload: &[u8]) -> Vec<u8> {
        let len = u32::try_from(payload.len() + 4).unwrap();
        let mut r = Vec::new();
        for v in [ts.0, ts.1, len, len, kind] {
            r.extend_from_slice(&v.to_be_bytes());
        }
        r.extend_from_slice(payload);
        r
    }

    #[test]
    fn kind_numbers_round_trip() {
        for n in [0, 1, 2, 3, 4, 0xdead_beef] {
            assert_eq!(RecordKind::from_u32(n).to_u32(), n);
        }
        assert_eq!(RecordKind::from_u32(1), RecordKind::Reset);
        assert_eq!(RecordKind::from_u32(2), RecordKind::Request);
        assert_eq!(RecordKind::from_u32(3), RecordKind::Reply);
        assert_eq!(RecordKind::from_u32(7), RecordKind::Other(7));
    }

    #[test]
    fn writer_emits_qemu_layout() {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        w.record_at(RecordKind::Request, b"abc", 0x0102_0304, 5)
            .unwrap();
        let bytes = w.into_inner();
        assert_eq!(
            &bytes[..24],
            &[
                0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0x2e, 1, 0,
                0
            ]
        );
        assert_eq!(
            &bytes[24..],
            &[4, 3, 2, 1, 5, 0, 0, 0, 7, 0, 0, 0, 7, 0, 0, 0, 2, 0, 0, 0, b'a', b'b', b'c']
        );
    }

    #[test]
    fn big_endian_file_is_read() {
        let mut f = header([0xa1, 0xb2, 0xc3, 0xd4], Order::Big, LINKTYPE_EDK2_MM);
        f.extend(be_record((10, 20), 1, &[]));
        f.extend(be_record((11, 21), 2, b"xyz"));
        let recs = read_records(&f).unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].kind, RecordKind::Reset);
        assert_eq!((recs[1].ts_sec, recs[1].ts_usec), (11, 21));
        assert_eq!(recs[1].kind, RecordKind::Request);
        assert_eq!(recs[1].payload, b"xyz");
        assert!(!recs[1].truncated);
    }

    #[test]
    fn big_endian_wrong_link_type_is_reported_in_host_order() {
        let f = header([0xa1, 0xb2, 0xc3, 0xd4], Order::Big, 1);
        assert!(matches!(read_records(&f), Err(PcapError::WrongLinkType(1))));
    }

    #[test]
    fn nanosecond_timestamps_become_microseconds() {
        let mut f = header([0x4d, 0x3c, 0xb2, 0xa1], Order::Little, LINKTYPE_EDK2_MM);
        for v in [7u32, 123_456_789, 4, 4, 1] {
            f.extend_from_slice(&v.to_le_bytes());
        }
        let recs = read_records(&f).unwrap();
        assert_eq!((recs[0].ts_sec, recs[0].ts_usec), (7, 123_456));
        // And the big-endian nanosecond magic.
        let f = header([0xa1, 0xb2, 0x3c, 0x4d], Order::Big, LINKTYPE_EDK2_MM);
        assert_eq!(read_records(&f).unwrap(), vec![]);
    }

    #[test]
    fn version_must_be_2() {
        let mut f = header([0xd4, 0xc3, 0xb2, 0xa1], Order::Little, LINKTYPE_EDK2_MM);
        f[4] = 1;
        assert!(matches!(
            read_records(&f),
            Err(PcapError::UnsupportedVersion { major: 1, minor: 4 })
        ));
    }

    #[test]
    fn record_shorter_than_type_word_is_rejected() {
        let mut f = header([0xd4, 0xc3, 0xb2, 0xa1], Order::Little, LINKTYPE_EDK2_MM);
        for v in [0u32, 0, 2, 2] {
            f.extend_from_slice(&v.to_le_bytes());
        }
        f.extend_from_slice(&[1, 0]);
        assert!(matches!(
            read_records(&f),
            Err(PcapError::BadRecordLength {
                index: 0,
                offset: 24,
                incl_len: 2,
                orig_len: 2
            })
        ));
    }

    #[test]
    fn incl_len_above_orig_len_is_rejected() {
        let mut f = header([0xd4, 0xc3, 0xb2, 0xa1], Order::Little, LINKTYPE_EDK2_MM);
        for v in [0u32, 0, 8, 4, 1, 0] {
            f.extend_from_slice(&v.to_le_bytes());
        }
        assert!(matches!(
            read_records(&f),
            Err(PcapError::BadRecordLength {
                incl_len: 8,
                orig_len: 4,
                ..
            })
        ));
    }

    #[test]
    fn gzip_limit_is_enforced() {
        let mut w = PcapWriter::new(GzEncoder::new(Vec::new(), Compression::fast())).unwrap();
        w.request(&[0u8; 1000]).unwrap();
        let gz = w.into_inner().finish().unwrap();
        assert!(matches!(
            read_records_with_limit(&gz, 500),
            Err(PcapError::TooLarge { limit: 500 })
        ));
        assert_eq!(
            read_records_with_limit(&gz, 24 + 20 + 1000).unwrap().len(),
            1
        );
    }

    #[test]
    fn corrupt_gzip_is_a_gzip_error() {
        assert!(matches!(
            read_records(&[0x1f, 0x8b, 0, 0, 0]),
            Err(PcapError::Gzip(_))
        ));
    }
}
