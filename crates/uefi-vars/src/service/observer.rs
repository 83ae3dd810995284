//! What a [`Service`](super::Service) tells an observer the embedder
//! installed with [`Service::set_observer`](super::Service::set_observer):
//! every machine reset, every request with its reply, and the host-side
//! changes a replay of the requests alone could not reproduce.
//!
//! Nothing is observed unless the caller installs an observer; the library
//! never picks one up from the environment. `service::capture` (`testing` feature) has the one
//! the QEMU conformance suite uses (pcap files and a sidecar per service).

use super::MmResponse;

/// Receives a service's activity, in order. Every method has an empty
/// default, so an observer implements only what it needs. Called on the
/// thread that drives the service; an observer must not fail the service,
/// so nothing is returned.
pub trait ServiceObserver: Send {
    /// A machine reset ([`Service::reset`](super::Service::reset)), before
    /// the service applies it.
    fn reset(&mut self) {}

    /// A host-side change, when it happens.
    fn event(&mut self, _event: Event) {}

    /// A request as the guest sent it and the service's answer.
    fn exchange(&mut self, _request: &[u8], _response: &MmResponse) {}
}

/// A host-side change, reported in order with the requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// [`set_buffer_size`](super::Service::set_buffer_size): the effective
    /// size.
    BufferSize(u32),
    /// [`set_crypto`](super::Service::set_crypto): another PKCS#7 backend.
    Crypto,
    /// [`set_variable`](super::Service::set_variable): a host-side write.
    HostWrite,
    /// A snapshot was restored into the service.
    Restore,
    /// A host-side error was recorded (e.g. a failed store write): the
    /// guest saw the failure.
    HostError,
    /// Never sent by the service: a capture writes it where it stopped
    /// (`capture::MAX_CAPTURE_BYTES`).
    Truncated,
}

impl Event {
    const BUFFER_SIZE: u32 = 1;
    const CRYPTO: u32 = 2;
    const HOST_WRITE: u32 = 3;
    const RESTORE: u32 = 4;
    const HOST_ERROR: u32 = 5;
    const TRUNCATED: u32 = 6;

    /// The payload of its `capture::EVENT_RECORD`: a u32 code and a
    /// u64 value, little-endian.
    pub fn encode(self) -> [u8; 12] {
        let (code, value) = match self {
            Event::BufferSize(n) => (Self::BUFFER_SIZE, u64::from(n)),
            Event::Crypto => (Self::CRYPTO, 0),
            Event::HostWrite => (Self::HOST_WRITE, 0),
            Event::Restore => (Self::RESTORE, 0),
            Event::HostError => (Self::HOST_ERROR, 0),
            Event::Truncated => (Self::TRUNCATED, 0),
        };
        let mut out = [0u8; 12];
        out[..4].copy_from_slice(&code.to_le_bytes());
        out[4..].copy_from_slice(&value.to_le_bytes());
        out
    }

    /// Decodes an `capture::EVENT_RECORD` payload (`None` if
    /// malformed or unknown).
    pub fn decode(payload: &[u8]) -> Option<Event> {
        let mut r = crate::codec::Reader::new(payload);
        let code = r.u32("event code").ok()?;
        let value = r.u64("event value").ok()?;
        Some(match code {
            Self::BUFFER_SIZE => Event::BufferSize(u32::try_from(value).ok()?),
            Self::CRYPTO => Event::Crypto,
            Self::HOST_WRITE => Event::HostWrite,
            Self::RESTORE => Event::Restore,
            Self::HOST_ERROR => Event::HostError,
            Self::TRUNCATED => Event::Truncated,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip() {
        for e in [
            Event::BufferSize(4096),
            Event::Crypto,
            Event::HostWrite,
            Event::Restore,
            Event::HostError,
            Event::Truncated,
        ] {
            assert_eq!(Event::decode(&e.encode()), Some(e));
        }
        assert_eq!(Event::decode(&[1, 0, 0]), None);
        assert_eq!(Event::decode(&[9; 12]), None);
        let mut big = Event::BufferSize(0).encode();
        big[8] = 1;
        assert_eq!(Event::decode(&big), None);
    }
}
