//! The device register interface in front of a `RemoteService`: a real
//! firmware trace played the way edk2's driver does it (DMA and PIO), with
//! the server running on a thread of this process (no sandbox, which would
//! confine the test harness itself; the sandboxed process is tested in
//! `crates/uefi-vars-cli/tests/serve.rs`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use uefi_vars::codec::{request, Layout};
use uefi_vars::pcap::{self, RecordKind};
use uefi_vars::persist::{SyncMode, WriteMode};
use uefi_vars::{Config, DeviceStatus};
use uefi_vars_client::protocol::{
    read_frame, word_bits, write_frame, ErrorCode, Frame, FrameType, Hello, Welcome,
};
use uefi_vars_client::{ClientError, RemoteService};
use uefi_vars_device::{regs, DmaMemory, MmBackend, SparseRam, UefiVarsDevice};
use uefi_vars_serve::{ServeOptions, Server};

const DMA_BUFFER: u64 = 0x1_0000_0000;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data")
        .join(name)
}

/// Starts a server on a thread; returns its socket and store paths.
fn start_server(dir: &Path) -> (PathBuf, PathBuf) {
    start_server_with(dir, SyncMode::Journal)
}

fn start_server_with(dir: &Path, sync: SyncMode) -> (PathBuf, PathBuf) {
    let store = dir.join("vars.json");
    let socket = dir.join("sock");
    let mut opts = ServeOptions::new(store.clone(), socket.clone());
    opts.write_mode = WriteMode::AtomicReplace;
    opts.sync = sync;
    opts.config = Config::default();
    // In-process: the test harness keeps its threads and capabilities.
    opts.sandbox = false;
    opts.drop_privileges = false;
    let server = Server::start(opts).unwrap();
    std::thread::spawn(move || server.run());
    (socket, store)
}

fn connect(socket: &Path, layout: Layout) -> RemoteService {
    RemoteService::connect_with_timeout(socket, 65536, layout, Some(Duration::from_secs(10)))
        .unwrap()
}

fn rd<B: MmBackend>(dev: &mut UefiVarsDevice<B, SparseRam>, off: u64, width: usize) -> u64 {
    let mut b = [0u8; 8];
    dev.read(off, &mut b[..width]);
    u64::from_le_bytes(b)
}

fn wr<B: MmBackend>(dev: &mut UefiVarsDevice<B, SparseRam>, off: u64, width: usize, v: u64) {
    dev.write(off, &v.to_le_bytes()[..width]);
}

fn command<B: MmBackend>(dev: &mut UefiVarsDevice<B, SparseRam>, cmd: u16) -> u16 {
    wr(dev, regs::CMD_STS, 2, u64::from(cmd));
    rd(dev, regs::CMD_STS, 2) as u16
}

/// edk2's initialisation: MAGIC, RESET, BUFFER_SIZE = 64 KiB, DMA address.
fn init<B: MmBackend>(dev: &mut UefiVarsDevice<B, SparseRam>) {
    assert_eq!(rd(dev, regs::MAGIC, 2), 0x0EF1);
    assert_eq!(command(dev, regs::CMD_RESET), regs::STS_SUCCESS);
    wr(dev, regs::BUFFER_SIZE, 4, 0x10000);
    wr(dev, regs::DMA_BUFFER_ADDR_LO, 4, DMA_BUFFER & 0xFFFF_FFFF);
    wr(dev, regs::DMA_BUFFER_ADDR_HI, 4, DMA_BUFFER >> 32);
}

/// One request the way the guest driver sends it; the buffer afterwards.
fn exchange<B: MmBackend>(
    dev: &mut UefiVarsDevice<B, SparseRam>,
    req: &[u8],
    pio: bool,
) -> (u16, Vec<u8>) {
    if pio {
        let mut buf = req.to_vec();
        buf.resize(req.len().div_ceil(4) * 4, 0);
        assert_eq!(command(dev, regs::CMD_PIO_ZERO_OFFSET), 0);
        for unit in buf.chunks(4) {
            dev.write(regs::PIO_BUFFER_TRANSFER, unit);
        }
        let sts = command(dev, regs::CMD_PIO_MM);
        assert_eq!(command(dev, regs::CMD_PIO_ZERO_OFFSET), 0);
        for unit in buf.chunks_mut(4) {
            dev.read(regs::PIO_BUFFER_TRANSFER, unit);
        }
        buf.truncate(req.len());
        (sts, buf)
    } else {
        dev.memory_mut().write_at(DMA_BUFFER, req).unwrap();
        let sts = command(dev, regs::CMD_DMA_MM);
        let mut out = vec![0u8; req.len()];
        dev.memory().read_at(DMA_BUFFER, &mut out).unwrap();
        (sts, out)
    }
}

fn replay_through_device(pio: bool) {
    let dir = tempfile::tempdir().unwrap();
    // PIO with the JSON file rewritten per change, DMA with the journal.
    let sync = if pio {
        SyncMode::FullRewrite
    } else {
        SyncMode::Journal
    };
    let (socket, store) = start_server_with(dir.path(), sync);
    let mut ram = SparseRam::new();
    assert!(ram.add_region(DMA_BUFFER, 0x10000));
    let mut dev = UefiVarsDevice::new(connect(&socket, Layout::X64), ram).with_use_pio(pio);
    init(&mut dev);

    let trace = pcap::read_file(&data("ovmf-2boots-empty.pcap.gz")).unwrap();
    let mut last = None;
    let mut identical = 0;
    for (i, rec) in trace.iter().enumerate() {
        match rec.kind {
            RecordKind::Reset => {
                dev.reset().unwrap();
                init(&mut dev);
            }
            RecordKind::Request => last = Some(exchange(&mut dev, &rec.payload, pio)),
            RecordKind::Reply => {
                let (sts, buf) = last.take().unwrap();
                assert_eq!(sts, regs::STS_SUCCESS, "record {i}");
                assert_eq!(buf, rec.payload, "record {i}");
                identical += 1;
            }
            _ => {}
        }
    }
    assert_eq!(identical, 1746);
    assert!(dev.backend_mut().take_errors().is_empty());
    let end = std::fs::read(data("ovmf-2boots-empty.end.json")).unwrap();
    if sync == SyncMode::FullRewrite {
        // The JSON file alone is current at every moment: QEMU's, byte for
        // byte.
        assert!(std::fs::read(&store).unwrap() == end, "store differs");
    } else {
        // The service still runs: the store is the JSON file with its
        // journal replayed.
        use uefi_vars::persist::{json, JsonFile, Storage};
        let loaded = JsonFile::new(&store).load().unwrap();
        assert!(loaded == json::decode(&end).unwrap(), "store differs");
    }
}

#[test]
fn trace_through_device_registers_over_the_socket_dma() {
    replay_through_device(false);
}

#[test]
fn trace_through_device_registers_over_the_socket_pio() {
    replay_through_device(true);
}

#[test]
fn word_size_is_negotiated_and_fixed_for_the_service() {
    let dir = tempfile::tempdir().unwrap();
    let (socket, _) = start_server(dir.path());
    let mut c = connect(&socket, Layout::IA32);
    assert_eq!(c.protocol_version(), 1);
    assert_eq!(MmBackend::layout(&c), Layout::IA32);
    // GET_PAYLOAD_SIZE with 4-byte UINTN: header 20 bytes, status at 24.
    let resp = c
        .communicate(&request::get_payload_size(Layout::IA32))
        .unwrap();
    assert_eq!(resp.status, DeviceStatus::Success);
    let reply = resp.reply.unwrap();
    assert_eq!(reply.len(), 20 + 12);
    assert_eq!(&reply[24..28], &[0, 0, 0, 0], "EFI_SUCCESS");
    drop(c);
    match RemoteService::connect(&socket, 65536, Layout::X64) {
        Err(ClientError::Refused { code, .. }) => assert_eq!(code, ErrorCode::WordSizeMismatch),
        other => panic!("{other:?}"),
    }
    assert_eq!(word_bits(Layout::IA32), 32);
}

#[test]
fn buffer_size_is_clamped_and_sent_with_each_request() {
    let dir = tempfile::tempdir().unwrap();
    let (socket, _) = start_server(dir.path());
    let mut c = RemoteService::connect(&socket, 4096, Layout::X64).unwrap();
    assert_eq!(c.max_buffer_size(), 4096);
    c.set_buffer_size(65536);
    assert_eq!(c.buffer_size(), 4096);
    let req = request::get_payload_size(Layout::X64);
    // A buffer smaller than the request: the service's framing error.
    c.set_buffer_size(24);
    let resp = c.communicate(&req).unwrap();
    assert_eq!(resp.status, DeviceStatus::ErrBadBufferSize);
    assert_eq!(resp.reply, None);
    // Longer than the negotiated size: answered locally, the connection
    // stays good.
    let resp = c.communicate(&vec![0u8; 5000]).unwrap();
    assert_eq!(resp.status, DeviceStatus::ErrBadBufferSize);
    c.set_buffer_size(4096);
    let resp = c.communicate(&req).unwrap();
    assert_eq!(resp.status, DeviceStatus::Success);
    c.ping().unwrap();
    c.reset().unwrap();
    assert!(!c.is_broken());
}

/// A stand-in service that completes the handshake and then dies.
fn dying_service(socket: &Path) -> std::thread::JoinHandle<()> {
    let listener = std::os::unix::net::UnixListener::bind(socket).unwrap();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let hello = read_frame(&mut s).unwrap();
        let hello = Hello::decode(&hello.body).unwrap();
        let welcome = Welcome {
            version: 1,
            buffer_size: hello.buffer_size,
            word_bits: hello.word_bits,
        };
        write_frame(&mut s, &welcome.encode()).unwrap();
        // The PING that completes the client's connect is answered.
        let ping = read_frame(&mut s).unwrap();
        assert_eq!(ping.kind, FrameType::Ping);
        write_frame(&mut s, &Frame::new(FrameType::Pong, ping.body)).unwrap();
        // Read the first request, then die without answering.
        let _ = read_frame(&mut s);
    })
}

#[test]
fn a_dead_service_is_a_device_error_for_the_guest() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("sock");
    let service = dying_service(&socket);
    let mut ram = SparseRam::new();
    assert!(ram.add_region(DMA_BUFFER, 0x10000));
    let mut dev = UefiVarsDevice::new(connect(&socket, Layout::X64), ram);
    init(&mut dev);
    let req = request::get_payload_size(Layout::X64);
    let (sts, buf) = exchange(&mut dev, &req, false);
    service.join().unwrap();
    // ERR_UNKNOWN (edk2: EFI_DEVICE_ERROR), nothing written back.
    assert_eq!(sts, regs::STS_ERR_UNKNOWN);
    assert_eq!(buf, req);
    let errors = dev.backend_mut().take_errors();
    assert!(
        matches!(errors.as_slice(), [ClientError::Closed]),
        "{errors:?}"
    );
    // The connection stays broken; the VMM reconnects.
    assert!(dev.backend().is_broken());
    let (sts, _) = exchange(&mut dev, &req, false);
    assert_eq!(sts, regs::STS_ERR_UNKNOWN);
    assert!(matches!(
        dev.backend_mut().take_errors().as_slice(),
        [ClientError::Broken]
    ));
    assert!(matches!(dev.reset(), Err(ClientError::Broken)));
}
