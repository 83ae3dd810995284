//! Request scripts: the reset and request records of a capture, as the test
//! guest reads them from fw_cfg (`tools/qemu-guest/README.md`).

use uefi_vars::pcap::{Record, RecordKind};
use uefi_vars::service::capture::{Event, EVENT_RECORD};

/// Size of the communication buffer the guest negotiates (BUFFER_SIZE),
/// as edk2 does.
pub const BUFFER_SIZE: usize = 0x10000;
/// Length of the MM communicate header (x64 guest).
pub const MM_HEADER: usize = 24;

const SCRIPT_MAGIC: u32 = 0x5351_5655; // "UVQS"
const SCRIPT_VERSION: u32 = 1;
const REC_RESET: u32 = 1;
const REC_REQUEST: u32 = 2;
const REC_BUFFER_SIZE: u32 = 3;

/// One step of a script.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Step {
    /// A machine reset (the guest resets the whole machine).
    Reset,
    /// An MM communicate buffer, normalized by [`normalize_request_for`]
    /// with the buffer size in effect.
    Request(Vec<u8>),
    /// The guest writes BUFFER_SIZE (the device caps it at 64 KiB; a machine
    /// reset brings the guest back to [`BUFFER_SIZE`]).
    BufferSize(u32),
}

/// Whether the device accepts the framing of `request` with a 64 KiB
/// buffer, i.e. reads it and writes a reply back: header present and
/// 24 + MessageLength ≤ BUFFER_SIZE (docs/reference/device.md §5).
pub fn framing_ok(request: &[u8]) -> bool {
    framing_ok_for(request, BUFFER_SIZE as u32)
}

/// [`framing_ok`] for a device buffer of `buffer_size` bytes.
pub fn framing_ok_for(request: &[u8], buffer_size: u32) -> bool {
    let size = u64::from(buffer_size.min(BUFFER_SIZE as u32));
    size >= MM_HEADER as u64
        && message_length(request).is_some_and(|ml| ml <= size - MM_HEADER as u64)
}

fn message_length(request: &[u8]) -> Option<u64> {
    uefi_vars::codec::u64_at(request, 16, "MessageLength").ok()
}

/// The bytes the guest places in its buffer for `request`: exactly
/// 24 + MessageLength bytes when that fits the buffer (a short record is
/// zero-padded, a long one cut), since that is all the device reads; a
/// request whose framing the device refuses is kept as given (cut to the
/// buffer size), and a record shorter than the header is zero-padded to 24.
pub fn normalize_request(request: &[u8]) -> Vec<u8> {
    normalize_request_for(request, BUFFER_SIZE as u32)
}

/// [`normalize_request`] for a device buffer of `buffer_size` bytes (a
/// request the device refuses is still cut to the guest's 64 KiB).
pub fn normalize_request_for(request: &[u8], buffer_size: u32) -> Vec<u8> {
    let mut r = request.to_vec();
    if r.len() < MM_HEADER {
        r.resize(MM_HEADER, 0);
    }
    if framing_ok_for(&r, buffer_size) {
        let total = MM_HEADER + message_length(&r).unwrap_or(0) as usize;
        r.resize(total, 0);
    } else {
        r.truncate(BUFFER_SIZE);
    }
    r
}

/// The reset and request records of a capture (replies and unknown
/// records are dropped), requests normalized. A buffer-size event of the
/// library's own captures (`uefi_vars::service::capture`) becomes a
/// [`Step::BufferSize`], repeated after each reset while it differs from
/// 64 KiB: the service keeps its size across a reset, the guest does not.
pub fn steps_from_records(records: &[Record]) -> Vec<Step> {
    let mut size = BUFFER_SIZE as u32;
    let mut steps = Vec::new();
    for r in records {
        match r.kind {
            RecordKind::Reset => {
                steps.push(Step::Reset);
                if size != BUFFER_SIZE as u32 {
                    steps.push(Step::BufferSize(size));
                }
            }
            RecordKind::Request => {
                steps.push(Step::Request(normalize_request_for(&r.payload, size)))
            }
            RecordKind::Other(EVENT_RECORD) => {
                if let Some(Event::BufferSize(n)) = Event::decode(&r.payload) {
                    size = n.min(BUFFER_SIZE as u32);
                    steps.push(Step::BufferSize(size));
                }
            }
            _ => {}
        }
    }
    steps
}

/// Encodes a script for the guest. `nonce` tells this run's resume state
/// apart from any other (QEMU's RAM starts zeroed, so any value works).
pub fn encode_script(steps: &[Step], nonce: u32) -> Vec<u8> {
    let mut out = Vec::new();
    for v in [
        SCRIPT_MAGIC,
        SCRIPT_VERSION,
        u32::try_from(steps.len()).unwrap_or(u32::MAX),
        nonce,
    ] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for s in steps {
        let size;
        let (kind, data): (u32, &[u8]) = match s {
            Step::Reset => (REC_RESET, &[]),
            Step::Request(r) => (REC_REQUEST, r),
            Step::BufferSize(n) => {
                size = n.to_le_bytes();
                (REC_BUFFER_SIZE, &size)
            }
        };
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&u32::try_from(data.len()).unwrap_or(u32::MAX).to_le_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().next_multiple_of(4), 0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(ml: u64, body: usize) -> Vec<u8> {
        let mut r = vec![7u8; 16];
        r.extend_from_slice(&ml.to_le_bytes());
        r.extend(std::iter::repeat_n(1u8, body));
        r
    }

    #[test]
    fn normalization() {
        assert_eq!(normalize_request(&req(3, 3)).len(), 27);
        assert_eq!(normalize_request(&req(3, 10)).len(), 27);
        let short = normalize_request(&req(8, 2));
        assert_eq!(short.len(), 32);
        assert_eq!(&short[26..], &[0; 6]);
        assert_eq!(normalize_request(&req(65512, 0)).len(), 65536);
        assert!(framing_ok(&req(65512, 0)));
        assert!(!framing_ok(&req(65513, 0)));
        assert_eq!(normalize_request(&req(u64::MAX, 5)).len(), 29);
        assert_eq!(normalize_request(&[1, 2]).len(), 24);
    }

    #[test]
    fn smaller_buffers() {
        assert!(framing_ok_for(&req(4096 - 24, 0), 4096));
        assert!(!framing_ok_for(&req(4096 - 23, 0), 4096));
        assert!(!framing_ok_for(&req(0, 0), 23));
        assert!(framing_ok_for(&req(0, 0), 24));
        assert!(!framing_ok_for(&req(65513, 0), 1 << 20));
        // refused: kept as given
        assert_eq!(normalize_request_for(&req(100, 200), 64).len(), 224);
        assert_eq!(normalize_request_for(&req(40, 200), 64).len(), 64);
    }

    #[test]
    fn buffer_size_events_become_steps() {
        let rec = |kind, payload: &[u8]| Record {
            kind,
            payload: payload.to_vec(),
            ts_sec: 0,
            ts_usec: 0,
            orig_len: 4 + payload.len() as u32,
            truncated: false,
        };
        let ev = |e: Event| rec(RecordKind::Other(EVENT_RECORD), &e.encode());
        let steps = steps_from_records(&[
            rec(RecordKind::Reset, &[]),
            ev(Event::BufferSize(4096)),
            rec(RecordKind::Request, &req(8, 8)),
            ev(Event::HostWrite),
            rec(RecordKind::Reset, &[]),
            ev(Event::BufferSize(65536)),
            rec(RecordKind::Reset, &[]),
        ]);
        assert_eq!(
            steps,
            vec![
                Step::Reset,
                Step::BufferSize(4096),
                Step::Request(req(8, 8)),
                Step::Reset,
                Step::BufferSize(4096),
                Step::BufferSize(65536),
                Step::Reset,
            ]
        );
    }

    #[test]
    fn script_layout() {
        let s = encode_script(&[Step::Reset, Step::Request(vec![1, 2, 3])], 9);
        assert_eq!(s.len(), 16 + 8 + 8 + 4);
        assert_eq!(&s[0..4], b"UVQS");
        assert_eq!(&s[8..12], &2u32.to_le_bytes());
        assert_eq!(&s[16..24], &[1, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&s[24..32], &[2, 0, 0, 0, 3, 0, 0, 0]);
        assert_eq!(&s[32..36], &[1, 2, 3, 0]);
    }
}
