//! The optional capture hook: LINKTYPE_EDK2_MM records as QEMU 11 writes
//! them with its `pcapfile` property.

use std::io::{self, Write};

use uefi_vars::pcap::PcapWriter;

/// Receives the device's capture records. Implemented by
/// [`uefi_vars::pcap::PcapWriter`]; use
/// `PcapWriter::create(path)?.flush_each_record(true)` for QEMU's
/// flush-after-every-record behaviour.
pub trait MmCapture: Send {
    /// A machine reset (record type 1, no payload).
    fn reset(&mut self) -> io::Result<()>;
    /// A request that passed the framing checks, before dispatch (type 2):
    /// MM header plus MessageLength bytes, as received.
    fn request(&mut self, buffer: &[u8]) -> io::Result<()>;
    /// The same buffer after dispatch, before it is written back (type 3).
    fn reply(&mut self, buffer: &[u8]) -> io::Result<()>;
}

impl<W: Write + Send> MmCapture for PcapWriter<W> {
    fn reset(&mut self) -> io::Result<()> {
        PcapWriter::reset(self)
    }
    fn request(&mut self, buffer: &[u8]) -> io::Result<()> {
        PcapWriter::request(self, buffer)
    }
    fn reply(&mut self, buffer: &[u8]) -> io::Result<()> {
        PcapWriter::reply(self, buffer)
    }
}
