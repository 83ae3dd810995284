//! The SMM variable protocol through `Service::communicate`, one error path
//! at a time (docs/reference/mm-protocol.md §2–§11, docs/reference/variables.md §2–§7, docs/reference/auth.md §2–§7).
//!
//! Requests are built here byte by byte at the offsets the spec gives, not
//! with the library's builders, so a layout mistake in the library cannot
//! hide itself. Expected values come from the spec and from QEMU's
//! `hw/uefi/var-service-{core,vars,auth}.c`; where we deliberately answer
//! differently (docs/compat.md) the test is named `compat_<id>_…` and a
//! comment gives QEMU's answer.

mod common;

use std::str::FromStr;

use uefi_vars::auth::DescriptorFault;
use uefi_vars::codec::{request, Layout};
use uefi_vars::crypto::NoCrypto;
use uefi_vars::guid::{self, Guid};
use uefi_vars::name::VarName;
use uefi_vars::persist::{json, MemoryStorage};
use uefi_vars::variable::Variable;
use uefi_vars::{Config, DeviceStatus, EfiStatus, MmResponse, Refusal, Service};

// ---------------------------------------------------------------------------
// GUIDs, parsed from the text in the spec (docs/reference/mm-protocol.md §2, docs/reference/variables.md §7,
// docs/reference/auth.md §1/§6/§9).

fn g(text: &str) -> Guid {
    Guid::from_str(text).unwrap()
}
fn smm_variable() -> Guid {
    g("ed32d533-99e6-4209-9cc0-2d72cdd998a7")
}
fn policy_mmi() -> Guid {
    g("da1b0d11-d1a7-46c4-9dc9-f3714875c6eb")
}
fn end_of_dxe_event() -> Guid {
    g("02ce967a-dd7e-4ffc-9ee7-810cf0470880")
}
fn ready_to_boot_event() -> Guid {
    g("7ce88fb3-4bd7-4679-87a8-a8d8dee50d2b")
}
fn exit_boot_services_event() -> Guid {
    g("27abf055-b1b8-4c26-8048-748f37baa2df")
}
fn global() -> Guid {
    g("8be4df61-93ca-11d2-aa0d-00e098032b8c")
}
fn image_security() -> Guid {
    g("d719b2cb-3d3a-4596-a3bc-dad00e67656f")
}
fn secure_boot_enable_guid() -> Guid {
    g("f0a30bc7-af08-4556-99c4-001009c93a44")
}
fn custom_mode_guid() -> Guid {
    g("c076ec0c-7028-4399-a072-71ee5c448b9f")
}
fn pkcs7_guid() -> Guid {
    g("4aafd29d-68df-49ee-8aa9-347d375665a7")
}
fn cert_x509() -> Guid {
    g("a5c059a1-94e4-4aa7-87b5-ab155c2bf072")
}
fn cert_sha256() -> Guid {
    g("c1c41626-504c-4092-aca9-41f936934328")
}
/// A vendor namespace of our own.
fn vendor() -> Guid {
    g("11111111-2222-3333-4444-555555555555")
}
fn other_vendor() -> Guid {
    g("66666666-7777-8888-9999-aaaaaaaaaaaa")
}

const NV: u32 = 0x01;
const BS: u32 = 0x02;
const RT: u32 = 0x04;
const HR: u32 = 0x08;
const AW: u32 = 0x10;
const AT: u32 = 0x20;
const AP: u32 = 0x40;
const NV_BS_RT: u32 = NV | BS | RT;
const SB_DB: u32 = NV | BS | RT | AT;

/// What the request carries in ReturnStatus before the device overwrites it
/// (a DEBUG edk2 leaves stack junk there).
const JUNK: u64 = 0xafaf_afaf_afaf_afaf;

// ---------------------------------------------------------------------------
// 64-bit wire layout (docs/reference/mm-protocol.md §2–§5).

const ML_OFF: usize = 16;
const FUNCTION_OFF: usize = 24;
const STATUS_OFF: usize = 32;
/// SMM_VARIABLE_COMMUNICATE_ACCESS_VARIABLE fields.
const ACC_GUID: usize = 40;
const ACC_DATA_SIZE: usize = 56;
const ACC_NAME_SIZE: usize = 64;
const ACC_ATTR: usize = 72;
const ACC_NAME: usize = 76;
/// SMM_VARIABLE_COMMUNICATE_GET_NEXT_VARIABLE_NAME fields.
const NEXT_GUID: usize = 40;
const NEXT_NAME_SIZE: usize = 56;
const NEXT_NAME: usize = 64;

fn ucs2(s: &str) -> Vec<u8> {
    s.encode_utf16()
        .chain(std::iter::once(0))
        .flat_map(u16::to_le_bytes)
        .collect()
}

fn units(u: &[u16]) -> Vec<u8> {
    u.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn mm(header: &Guid, msg: &[u8]) -> Vec<u8> {
    let mut v = header.0.to_vec();
    v.extend_from_slice(&(msg.len() as u64).to_le_bytes());
    v.extend_from_slice(msg);
    v
}

fn var_request(function: u64, payload: &[u8]) -> Vec<u8> {
    let mut m = function.to_le_bytes().to_vec();
    m.extend_from_slice(&JUNK.to_le_bytes());
    m.extend_from_slice(payload);
    mm(&smm_variable(), &m)
}

/// SMM_VARIABLE_COMMUNICATE_ACCESS_VARIABLE with explicit sizes, followed
/// by `name` and `data` as given (their lengths need not match the sizes).
fn access(
    guid: &Guid,
    data_size: u64,
    name_size: u64,
    attrs: u32,
    name: &[u8],
    data: &[u8],
) -> Vec<u8> {
    let mut p = guid.0.to_vec();
    p.extend_from_slice(&data_size.to_le_bytes());
    p.extend_from_slice(&name_size.to_le_bytes());
    p.extend_from_slice(&attrs.to_le_bytes());
    p.extend_from_slice(name);
    p.extend_from_slice(data);
    p
}

/// GET_VARIABLE as edk2 sends it: capacity `cap`, MessageLength covering it.
fn get_req(guid: &Guid, name: &str, cap: usize) -> Vec<u8> {
    let n = ucs2(name);
    var_request(
        1,
        &access(guid, cap as u64, n.len() as u64, 0, &n, &vec![0u8; cap]),
    )
}

fn set_req(guid: &Guid, name: &str, attrs: u32, data: &[u8]) -> Vec<u8> {
    let n = ucs2(name);
    var_request(
        3,
        &access(guid, data.len() as u64, n.len() as u64, attrs, &n, data),
    )
}

/// GET_NEXT_VARIABLE_NAME with a name buffer of `cap` bytes holding `name`.
fn next_req_raw(guid: &Guid, name_area: &[u8], cap: usize) -> Vec<u8> {
    let mut p = guid.0.to_vec();
    p.extend_from_slice(&(cap as u64).to_le_bytes());
    let mut area = name_area.to_vec();
    area.resize(cap.max(name_area.len()), 0);
    p.extend_from_slice(&area);
    var_request(2, &p)
}

fn next_req(guid: &Guid, name: &str, cap: usize) -> Vec<u8> {
    next_req_raw(guid, &ucs2(name), cap)
}

fn lock_req(guid: &Guid, name: &[u8]) -> Vec<u8> {
    let mut p = guid.0.to_vec();
    p.extend_from_slice(&(name.len() as u64).to_le_bytes());
    p.extend_from_slice(name);
    var_request(8, &p)
}

fn event(guid: &Guid) -> Vec<u8> {
    mm(guid, &[0])
}

/// Shrinks MessageLength to `ml` (and the request with it).
fn with_ml(mut req: Vec<u8>, ml: u64) -> Vec<u8> {
    req[ML_OFF..ML_OFF + 8].copy_from_slice(&ml.to_le_bytes());
    req.truncate(24 + ml as usize);
    req
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}
fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}

/// The reply of a request the device accepted (device status SUCCESS).
fn reply(resp: &MmResponse) -> &[u8] {
    assert_eq!(resp.status, DeviceStatus::Success, "device status");
    resp.reply.as_deref().expect("a reply")
}

fn status(resp: &MmResponse) -> EfiStatus {
    EfiStatus(u64_at(reply(resp), STATUS_OFF))
}

fn svc() -> Service {
    common::in_memory(Config::default())
}

fn call(svc: &mut Service, req: &[u8]) -> MmResponse {
    let resp = svc.communicate(req);
    if let Some(r) = &resp.reply {
        // docs/reference/mm-protocol.md §2: 24 + the original MessageLength, never rewritten.
        assert_eq!(r.len(), 24 + u64_at(req, ML_OFF) as usize, "reply length");
        assert_eq!(&r[..24], &req[..24], "header rewritten");
    }
    resp
}

fn set(svc: &mut Service, guid: &Guid, name: &str, attrs: u32, data: &[u8]) -> EfiStatus {
    status(&call(svc, &set_req(guid, name, attrs, data)))
}

fn delete(svc: &mut Service, guid: &Guid, name: &str) -> EfiStatus {
    set(svc, guid, name, 0, &[])
}

/// GetVariable with a 512-byte capacity: status, attributes, data (on success).
fn get(svc: &mut Service, guid: &Guid, name: &str) -> (EfiStatus, u32, Option<Vec<u8>>) {
    let n = ucs2(name).len();
    let resp = call(svc, &get_req(guid, name, 512));
    let r = reply(&resp);
    let st = EfiStatus(u64_at(r, STATUS_OFF));
    let attrs = u32_at(r, ACC_ATTR);
    let data = (st == EfiStatus::SUCCESS).then(|| {
        let size = u64_at(r, ACC_DATA_SIZE) as usize;
        r[ACC_NAME + n..ACC_NAME + n + size].to_vec()
    });
    (st, attrs, data)
}

fn get_data(svc: &mut Service, guid: &Guid, name: &str) -> Option<Vec<u8>> {
    let (st, _, data) = get(svc, guid, name);
    assert!(
        st == EfiStatus::SUCCESS || st == EfiStatus::NOT_FOUND,
        "{name}: {st:?}"
    );
    data
}

fn end_of_dxe(svc: &mut Service) {
    assert_eq!(
        svc.communicate(&event(&end_of_dxe_event())).status,
        DeviceStatus::Success
    );
}

fn exit_boot_services(svc: &mut Service) {
    assert_eq!(
        svc.communicate(&event(&exit_boot_services_event())).status,
        DeviceStatus::Success
    );
}

fn decode_name(area: &[u8]) -> String {
    let u: Vec<u16> = area
        .chunks_exact(2)
        .map(|p| u16::from_le_bytes([p[0], p[1]]))
        .take_while(|&c| c != 0)
        .collect();
    String::from_utf16(&u).unwrap()
}

/// Full GetNextVariableName walk, growing the name buffer on
/// BUFFER_TOO_SMALL as edk2 does.
fn walk(svc: &mut Service) -> Vec<(Guid, String)> {
    let mut out = Vec::new();
    let mut guid = Guid::default();
    let mut name = String::new();
    let mut cap = 8usize;
    loop {
        let resp = call(svc, &next_req(&guid, &name, cap));
        let r = reply(&resp).to_vec();
        match EfiStatus(u64_at(&r, STATUS_OFF)) {
            EfiStatus::SUCCESS => {
                let size = u64_at(&r, NEXT_NAME_SIZE) as usize;
                guid = Guid(r[NEXT_GUID..NEXT_GUID + 16].try_into().unwrap());
                name = decode_name(&r[NEXT_NAME..NEXT_NAME + size]);
                out.push((guid, name.clone()));
                assert!(out.len() < 1000, "enumeration does not end");
            }
            EfiStatus::BUFFER_TOO_SMALL => {
                let needed = u64_at(&r, NEXT_NAME_SIZE) as usize;
                assert!(needed > cap);
                cap = needed;
            }
            EfiStatus::NOT_FOUND => return out,
            other => panic!("GetNextVariableName: {other:?}"),
        }
    }
}

fn names(list: &[(Guid, String)]) -> Vec<&str> {
    list.iter().map(|(_, n)| n.as_str()).collect()
}

fn efi_time(year: u16, month: u8, day: u8, hour: u8, minute: u8, second: u8) -> [u8; 16] {
    let mut t = [0u8; 16];
    t[0..2].copy_from_slice(&year.to_le_bytes());
    t[2] = month;
    t[3] = day;
    t[4] = hour;
    t[5] = minute;
    t[6] = second;
    t
}

/// EFI_VARIABLE_AUTHENTICATION_2 (docs/reference/auth.md §1) followed by the payload.
fn auth2(time: [u8; 16], cert: &[u8], payload: &[u8]) -> Vec<u8> {
    auth2_raw(
        time,
        24 + cert.len() as u32,
        0x0200,
        0x0ef1,
        &pkcs7_guid(),
        cert,
        payload,
    )
}

fn auth2_raw(
    time: [u8; 16],
    len: u32,
    rev: u16,
    ty: u16,
    cert_guid: &Guid,
    cert: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    let mut d = time.to_vec();
    d.extend_from_slice(&len.to_le_bytes());
    d.extend_from_slice(&rev.to_le_bytes());
    d.extend_from_slice(&ty.to_le_bytes());
    d.extend_from_slice(&cert_guid.0);
    d.extend_from_slice(cert);
    d.extend_from_slice(payload);
    d
}

/// One EFI_SIGNATURE_LIST holding one X.509 entry (docs/reference/auth.md §9).
fn x509_list(owner: &Guid, cert: &[u8]) -> Vec<u8> {
    let sig_size = 16 + cert.len() as u32;
    let mut l = cert_x509().0.to_vec();
    l.extend_from_slice(&(28 + sig_size).to_le_bytes());
    l.extend_from_slice(&0u32.to_le_bytes());
    l.extend_from_slice(&sig_size.to_le_bytes());
    l.extend_from_slice(&owner.0);
    l.extend_from_slice(cert);
    l
}

/// One EFI_SIGNATURE_LIST of SHA-256 entries.
fn sha256_list(owner: &Guid, hashes: &[[u8; 32]]) -> Vec<u8> {
    let mut l = cert_sha256().0.to_vec();
    l.extend_from_slice(&(28 + 48 * hashes.len() as u32).to_le_bytes());
    l.extend_from_slice(&0u32.to_le_bytes());
    l.extend_from_slice(&48u32.to_le_bytes());
    for h in hashes {
        l.extend_from_slice(&owner.0);
        l.extend_from_slice(h);
    }
    l
}

/// A fake DER blob; nothing here verifies it.
const FAKE_PKCS7: &[u8] = &[0x30, 0x82, 0x01, 0x00, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86];

/// A service whose store already holds PK (user mode after the reset).
fn user_mode_service(config: Config) -> Service {
    let mut pk = Variable::new(
        global(),
        VarName::from("PK"),
        SB_DB,
        x509_list(&vendor(), b"platform key cert"),
    );
    pk.time.0 = efi_time(2024, 1, 1, 0, 0, 0);
    let text = json::encode(&[&pk]).unwrap();
    common::new(config, Box::new(MemoryStorage::from_text(text))).unwrap()
}

// ---------------------------------------------------------------------------
// Constants and the library's own request builders against the spec.

#[test]
fn status_codes_and_guids_match_the_spec() {
    // docs/reference/mm-protocol.md §1
    let table = [
        (EfiStatus::SUCCESS, 0x0000000000000000u64),
        (EfiStatus::INVALID_PARAMETER, 0x8000000000000002),
        (EfiStatus::UNSUPPORTED, 0x8000000000000003),
        (EfiStatus::BAD_BUFFER_SIZE, 0x8000000000000004),
        (EfiStatus::BUFFER_TOO_SMALL, 0x8000000000000005),
        (EfiStatus::WRITE_PROTECTED, 0x8000000000000008),
        (EfiStatus::OUT_OF_RESOURCES, 0x8000000000000009),
        (EfiStatus::NOT_FOUND, 0x800000000000000E),
        (EfiStatus::ACCESS_DENIED, 0x800000000000000F),
        (EfiStatus::ALREADY_STARTED, 0x8000000000000014),
        (EfiStatus::SECURITY_VIOLATION, 0x800000000000001A),
    ];
    for (s, v) in table {
        assert_eq!(s.0, v, "{s:?}");
    }
    assert_eq!(DeviceStatus::ErrNotSupported.code(), 0x11);
    assert_eq!(DeviceStatus::ErrBadBufferSize.code(), 0x12);
    assert_eq!(guid::SMM_VARIABLE_PROTOCOL, smm_variable());
    assert_eq!(guid::VAR_CHECK_POLICY_MMI, policy_mmi());
    assert_eq!(guid::END_OF_DXE_EVENT, end_of_dxe_event());
    assert_eq!(guid::READY_TO_BOOT_EVENT, ready_to_boot_event());
    assert_eq!(guid::EXIT_BOOT_SERVICES_EVENT, exit_boot_services_event());
    assert_eq!(guid::GLOBAL_VARIABLE, global());
    assert_eq!(guid::IMAGE_SECURITY_DATABASE, image_security());
    assert_eq!(guid::CUSTOM_MODE_ENABLE, custom_mode_guid());
    assert_eq!(guid::SECURE_BOOT_ENABLE_DISABLE, secure_boot_enable_guid());
    assert_eq!(guid::CERT_TYPE_PKCS7, pkcs7_guid());
}

#[test]
fn library_request_builders_use_the_spec_layout() {
    let name = ucs2("Boot0001");
    let l = Layout::X64;
    // GetVariable (docs/reference/mm-protocol.md §11: MessageLength = 16 + 36 + NameSize + DataSize)
    let mut expect = get_req(&vendor(), "Boot0001", 10);
    expect[STATUS_OFF..STATUS_OFF + 8].copy_from_slice(&JUNK.to_le_bytes());
    assert_eq!(request::get_variable(l, &vendor(), &name, 10), expect);
    assert_eq!(u64_at(&expect, ML_OFF), 16 + 36 + 18 + 10);
    assert_eq!(
        request::set_variable(l, &vendor(), &name, 7, b"xy"),
        set_req(&vendor(), "Boot0001", 7, b"xy")
    );
    assert_eq!(
        request::get_next_variable_name(l, &vendor(), &name, 64),
        next_req(&vendor(), "Boot0001", 64)
    );
    assert_eq!(
        request::lock_variable(l, &vendor(), &name),
        lock_req(&vendor(), &name)
    );
    assert_eq!(
        request::event(l, &end_of_dxe_event()),
        event(&end_of_dxe_event())
    );
    assert_eq!(request::get_payload_size(l), var_request(11, &[0; 8]));
}

// ---------------------------------------------------------------------------
// Framing and dispatch (docs/reference/mm-protocol.md §2, §3).

#[test]
fn framing_beyond_the_buffer_is_bad_buffer_size_without_reply() {
    let mut s = svc();
    s.set_buffer_size(4096);
    // header + MessageLength one byte more than the buffer
    let req = var_request(4, &vec![0u8; 4096 - 24 - 16 + 1]);
    assert_eq!(u64_at(&req, ML_OFF), 4096 - 24 + 1);
    let resp = s.communicate(&req);
    assert_eq!(
        resp,
        MmResponse {
            status: DeviceStatus::ErrBadBufferSize,
            reply: None
        }
    );
    // exactly the buffer is fine
    let req = var_request(4, &vec![0u8; 4096 - 24 - 16]);
    assert_eq!(status(&call(&mut s, &req)), EfiStatus::SUCCESS);
    // fewer bytes than the MM header
    let resp = s.communicate(&req[..23]);
    assert_eq!(
        resp,
        MmResponse {
            status: DeviceStatus::ErrBadBufferSize,
            reply: None
        }
    );
    // MessageLength so large that header + MessageLength overflows
    let mut huge = var_request(4, &[0; 32]);
    huge[ML_OFF..ML_OFF + 8].copy_from_slice(&u64::MAX.to_le_bytes());
    let resp = s.communicate(&huge);
    assert_eq!(
        resp,
        MmResponse {
            status: DeviceStatus::ErrBadBufferSize,
            reply: None
        }
    );
}

#[test]
fn buffer_size_is_capped_at_64k() {
    let mut s = svc();
    s.set_buffer_size(1 << 20);
    assert_eq!(s.buffer_size(), 65536);
    let req = var_request(4, &vec![0u8; 65536 - 24 - 16 + 1]);
    assert_eq!(s.communicate(&req).reply, None);
}

#[test]
fn message_length_below_16_is_device_bad_buffer_size_buffer_unchanged() {
    let mut s = svc();
    for ml in 0..16u64 {
        let mut msg = 3u64.to_le_bytes().to_vec();
        msg.extend_from_slice(&JUNK.to_le_bytes());
        let req = with_ml(mm(&smm_variable(), &msg), ml);
        let resp = call(&mut s, &req);
        // QEMU: uefi_vars_mm_vars_proto returns ERR_BAD_BUFFER_SIZE and the
        // buffer is still written back, untouched.
        assert_eq!(resp.status, DeviceStatus::ErrBadBufferSize, "ml {ml}");
        assert_eq!(resp.reply.as_deref(), Some(&req[..]), "ml {ml}");
    }
}

#[test]
fn unknown_header_guid_is_not_supported_buffer_unchanged() {
    let mut s = svc();
    let req = mm(&vendor(), &[1, 2, 3, 4, 5]);
    let resp = call(&mut s, &req);
    assert_eq!(resp.status, DeviceStatus::ErrNotSupported);
    assert_eq!(resp.reply.as_deref(), Some(&req[..]));
    let empty = mm(&Guid::default(), &[]);
    assert_eq!(call(&mut s, &empty).status, DeviceStatus::ErrNotSupported);
}

#[test]
fn event_groups_set_the_boot_phase() {
    let mut s = svc();
    assert_eq!(s.phase(), Default::default());
    for (ev, check) in [
        (end_of_dxe_event(), 0),
        (ready_to_boot_event(), 1),
        (exit_boot_services_event(), 2),
    ] {
        let req = event(&ev);
        let resp = call(&mut s, &req);
        assert_eq!(resp.status, DeviceStatus::Success);
        // the device does not look at (or change) the payload
        assert_eq!(resp.reply.as_deref(), Some(&req[..]));
        let p = s.phase();
        assert!([p.end_of_dxe, p.ready_to_boot, p.exit_boot_services][check]);
    }
    // only a reset clears the flags
    s.reset().unwrap();
    assert_eq!(s.phase(), Default::default());
}

#[test]
fn ready_to_boot_and_exit_boot_service_functions() {
    let mut s = svc();
    let resp = call(&mut s, &var_request(5, &[]));
    assert_eq!(status(&resp), EfiStatus::SUCCESS);
    assert!(s.phase().ready_to_boot);
    assert!(!s.phase().exit_boot_services);
    let resp = call(&mut s, &var_request(6, &[]));
    assert_eq!(status(&resp), EfiStatus::SUCCESS);
    assert!(s.phase().exit_boot_services);
    // runtime rules now apply: BS-only CustomMode is gone from enumeration
    assert!(!names(&walk(&mut s)).contains(&"CustomMode"));
}

#[test]
fn unknown_and_unimplemented_functions_are_unsupported() {
    // 7: edk2 SmmVariableGetStatistics without statistics; 13:
    // FlushPendingRuntimeVariableCacheUpdates without a cache context
    // (9, 10, 12 and 14: tests/varcheck.rs).
    let mut s = svc();
    let before: Vec<Variable> = s.store().iter().cloned().collect();
    for function in [0u64, 7, 13, 15, 99, u64::MAX] {
        let req = var_request(function, &[0x5a; 64]);
        let resp = call(&mut s, &req);
        assert_eq!(status(&resp), EfiStatus::UNSUPPORTED, "function {function}");
        // only ReturnStatus changes
        let r = reply(&resp);
        assert_eq!(&r[..STATUS_OFF], &req[..STATUS_OFF]);
        assert_eq!(&r[STATUS_OFF + 8..], &req[STATUS_OFF + 8..]);
    }
    // even with no payload at all (MessageLength 16)
    assert_eq!(
        status(&call(&mut s, &var_request(7, &[]))),
        EfiStatus::UNSUPPORTED
    );
    let after: Vec<Variable> = s.store().iter().cloned().collect();
    assert_eq!(before, after);
}

// ---------------------------------------------------------------------------
// GET_VARIABLE (docs/reference/mm-protocol.md §4).

#[test]
fn get_variable_short_message_is_bad_buffer_size() {
    let mut s = svc();
    let full = get_req(&global(), "SetupMode", 8);
    for ml in [16u64, 17, 40, 51] {
        let resp = call(&mut s, &with_ml(full.clone(), ml));
        assert_eq!(status(&resp), EfiStatus::BAD_BUFFER_SIZE, "ml {ml}");
    }
}

#[test]
fn get_variable_sizes_above_max_storage_are_out_of_resources() {
    let mut s = svc();
    let max = s.config().max_storage;
    assert_eq!(max, 262144);
    // Only the 36-byte header is sent: check 2 comes before the message check.
    let resp = call(
        &mut s,
        &var_request(1, &access(&global(), 0, max + 1, 0, &[], &[])),
    );
    assert_eq!(status(&resp), EfiStatus::OUT_OF_RESOURCES);
    let resp = call(
        &mut s,
        &var_request(1, &access(&global(), max + 1, 20, 0, &[], &[])),
    );
    assert_eq!(status(&resp), EfiStatus::OUT_OF_RESOURCES);
    let resp = call(
        &mut s,
        &var_request(1, &access(&global(), u64::MAX, u64::MAX, 0, &[], &[])),
    );
    assert_eq!(status(&resp), EfiStatus::OUT_OF_RESOURCES);
    // exactly max_storage passes check 2 and fails the message check
    let resp = call(
        &mut s,
        &var_request(1, &access(&global(), 0, max, 0, &[], &[])),
    );
    assert_eq!(status(&resp), EfiStatus::BAD_BUFFER_SIZE);
}

#[test]
fn get_variable_name_past_message_length_is_bad_buffer_size() {
    let mut s = svc();
    let n = ucs2("SetupMode");
    // NameSize says 20 but only 18 name bytes are inside MessageLength
    let req = var_request(1, &access(&global(), 0, 20, 0, &n[..18], &[]));
    assert_eq!(status(&call(&mut s, &req)), EfiStatus::BAD_BUFFER_SIZE);
    // with all 20 bytes the lookup happens (DataSize 0 → BUFFER_TOO_SMALL)
    let req = var_request(1, &access(&global(), 0, 20, 0, &n, &[]));
    assert_eq!(status(&call(&mut s, &req)), EfiStatus::BUFFER_TOO_SMALL);
}

#[test]
fn get_variable_invalid_names_are_invalid_parameter() {
    let mut s = svc();
    let cases: Vec<Vec<u8>> = vec![
        units(&[0x53, 0xd800, 0]), // high surrogate before the NUL
        units(&[0xdfff, 0]),       // low surrogate
        units(&[0x53, 0x65]),      // no NUL inside NameSize
        vec![],                    // NameSize 0
    ];
    for name in cases {
        let req = var_request(
            1,
            &access(&global(), 8, name.len() as u64, 0, &name, &[0; 8]),
        );
        assert_eq!(
            status(&call(&mut s, &req)),
            EfiStatus::INVALID_PARAMETER,
            "{name:?}"
        );
    }
    // a surrogate after the NUL is not looked at
    let name = units(&[0x41, 0, 0xd800]);
    let req = var_request(1, &access(&global(), 8, 6, 0, &name, &[0; 8]));
    assert_eq!(status(&call(&mut s, &req)), EfiStatus::NOT_FOUND);
}

#[test]
fn compat_name_scan_bound_unterminated_name_with_nul_in_data() {
    // QEMU scans NameSize *units* (twice the area): a name without NUL is
    // accepted when a 0x0000 follows in the data, and stored without NUL.
    let mut s = svc();
    let name = units(&[0x41, 0x42]); // "AB", no NUL
    let req = var_request(3, &access(&vendor(), 2, 4, NV_BS_RT, &name, &[0, 0]));
    assert_eq!(status(&call(&mut s, &req)), EfiStatus::INVALID_PARAMETER);
    assert_eq!(get_data(&mut s, &vendor(), "AB"), None);
    // GetVariable the same way
    let req = var_request(
        1,
        &access(&global(), 2, 4, 0, &units(&[0x53, 0x65]), &[0, 0]),
    );
    assert_eq!(status(&call(&mut s, &req)), EfiStatus::INVALID_PARAMETER);
}

#[test]
fn compat_name_scan_bound_odd_name_size() {
    // QEMU does not reject odd NameSize (docs/reference/variables.md §3); we do.
    let mut s = svc();
    assert_eq!(
        set(&mut s, &vendor(), "A", NV_BS_RT, b"x"),
        EfiStatus::SUCCESS
    );
    let mut name = ucs2("A");
    name.push(0);
    let req = var_request(1, &access(&vendor(), 8, 5, 0, &name, &[0; 8]));
    assert_eq!(status(&call(&mut s, &req)), EfiStatus::INVALID_PARAMETER);
    let req = var_request(3, &access(&vendor(), 1, 5, NV_BS_RT, &name, b"y"));
    assert_eq!(status(&call(&mut s, &req)), EfiStatus::INVALID_PARAMETER);
    assert_eq!(get_data(&mut s, &vendor(), "A"), Some(b"x".to_vec()));
    // GetNextVariableName: QEMU reads 3 units of a 3-byte area, finds the
    // NUL and returns the first variable
    let req = next_req_raw(&global(), &[0, 0, 0], 3);
    assert_eq!(status(&call(&mut s, &req)), EfiStatus::INVALID_PARAMETER);
}

#[test]
fn compat_name_scan_bound_surrogate_before_nul() {
    // QEMU also rejects this one (uefi_str_is_valid); same answer.
    let mut s = svc();
    let name = units(&[0x41, 0xdc00, 0]);
    let req = var_request(3, &access(&vendor(), 1, 6, NV_BS_RT, &name, b"y"));
    assert_eq!(status(&call(&mut s, &req)), EfiStatus::INVALID_PARAMETER);
}

#[test]
fn get_variable_lookup_is_by_guid_and_exact_name() {
    let mut s = svc();
    assert_eq!(
        set(&mut s, &vendor(), "Name", NV_BS_RT, b"v"),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        get(&mut s, &vendor(), "Nonexistent").0,
        EfiStatus::NOT_FOUND
    );
    assert_eq!(get(&mut s, &other_vendor(), "Name").0, EfiStatus::NOT_FOUND);
    assert_eq!(get(&mut s, &vendor(), "name").0, EfiStatus::NOT_FOUND);
    assert_eq!(get(&mut s, &vendor(), "Nam").0, EfiStatus::NOT_FOUND);
    assert_eq!(get(&mut s, &vendor(), "Name").0, EfiStatus::SUCCESS);
    // identity is the name up to its NUL: bytes after it do not matter
    let mut area = ucs2("Name");
    area.extend_from_slice(&units(&[0x58, 0x59, 0]));
    let req = var_request(
        1,
        &access(&vendor(), 8, area.len() as u64, 0, &area, &[0; 8]),
    );
    assert_eq!(status(&call(&mut s, &req)), EfiStatus::SUCCESS);
}

#[test]
fn compat_get_inaccessible_bs_only_after_exit_boot_services() {
    // QEMU: EFI_ACCESS_DENIED (docs/reference/mm-protocol.md §4 step 6); edk2 and we: NOT_FOUND.
    let mut s = svc();
    assert_eq!(
        set(&mut s, &vendor(), "BsOnly", NV | BS, b"secret"),
        EfiStatus::SUCCESS
    );
    exit_boot_services(&mut s);
    let (st, attrs, data) = get(&mut s, &vendor(), "BsOnly");
    assert_eq!(st, EfiStatus::NOT_FOUND);
    assert_eq!(attrs, 0, "attributes must not leak");
    assert_eq!(data, None);
    // the same for a Secure Boot state variable without RT
    assert_eq!(
        get(&mut s, &custom_mode_guid(), "CustomMode").0,
        EfiStatus::NOT_FOUND
    );
}

/// A service whose store holds an NV|RT variable `RtOnly` (one SetVariable
/// can no longer create: edk2 refuses RT without BS; a store written by
/// QEMU can hold one).
fn service_with_rt_only(data: &[u8]) -> Service {
    let var = Variable::new(vendor(), VarName::from("RtOnly"), NV | RT, data.to_vec());
    let text = json::encode(&[&var]).unwrap();
    common::new(Config::default(), Box::new(MemoryStorage::from_text(text))).unwrap()
}

#[test]
fn compat_get_inaccessible_rt_only_before_exit_boot_services() {
    // QEMU: EFI_ACCESS_DENIED; we: NOT_FOUND. An NV|RT variable
    // (docs/reference/mm-protocol.md §10) is invisible before EBS.
    let mut s = service_with_rt_only(b"rt");
    assert_eq!(get(&mut s, &vendor(), "RtOnly").0, EfiStatus::NOT_FOUND);
    exit_boot_services(&mut s);
    assert_eq!(get_data(&mut s, &vendor(), "RtOnly"), Some(b"rt".to_vec()));
}

#[test]
fn get_variable_claimed_capacity_beyond_buffer_is_bad_buffer_size() {
    let mut s = svc();
    s.set_buffer_size(4096);
    assert_eq!(
        set(&mut s, &vendor(), "V", NV_BS_RT, b"0123456789"),
        EfiStatus::SUCCESS
    );
    let n = ucs2("V");
    // buf check: 16 + 36 + NameSize + DataSize ≤ BUFFER_SIZE − 24
    let fits = 4096 - 24 - 16 - 36 - n.len() as u64;
    let req = var_request(1, &access(&vendor(), fits + 1, 4, 0, &n, &[0; 16]));
    assert_eq!(status(&call(&mut s, &req)), EfiStatus::BAD_BUFFER_SIZE);
    // nothing was written back on that path
    let resp = call(&mut s, &req);
    assert_eq!(u64_at(reply(&resp), ACC_DATA_SIZE), fits + 1);
    assert_eq!(u32_at(reply(&resp), ACC_ATTR), 0);
    // at the limit the check passes; MessageLength is short of the claimed
    // capacity, so the final rule answers BUFFER_TOO_SMALL
    let req = var_request(1, &access(&vendor(), fits, 4, 0, &n, &[0; 16]));
    let resp = call(&mut s, &req);
    assert_eq!(status(&resp), EfiStatus::BUFFER_TOO_SMALL);
    assert_eq!(u64_at(reply(&resp), ACC_DATA_SIZE), 10);
    // the buf check comes after the lookup: a missing variable is NOT_FOUND
    let m = ucs2("Missing");
    let req = var_request(
        1,
        &access(&vendor(), fits + 1000, m.len() as u64, 0, &m, &[]),
    );
    assert_eq!(status(&call(&mut s, &req)), EfiStatus::NOT_FOUND);
}

#[test]
fn get_variable_buffer_too_small_reports_size_and_attributes() {
    let mut s = svc();
    let value = b"0123456789";
    assert_eq!(
        set(&mut s, &vendor(), "V", NV | BS, value),
        EfiStatus::SUCCESS
    );
    for cap in [0usize, 1, 9] {
        let req = get_req(&vendor(), "V", cap);
        let resp = call(&mut s, &req);
        let r = reply(&resp);
        assert_eq!(status(&resp), EfiStatus::BUFFER_TOO_SMALL, "cap {cap}");
        assert_eq!(u64_at(r, ACC_DATA_SIZE), value.len() as u64);
        assert_eq!(u32_at(r, ACC_ATTR), NV | BS);
        // no data copied
        assert_eq!(&r[ACC_NAME + 4..], &req[ACC_NAME + 4..]);
    }
}

#[test]
fn get_variable_success_copies_data() {
    let mut s = svc();
    assert_eq!(
        set(&mut s, &vendor(), "V", NV_BS_RT | HR, b"hello"),
        EfiStatus::SUCCESS
    );
    let mut req = get_req(&vendor(), "V", 12);
    let data_off = ACC_NAME + 4;
    req[data_off..].fill(0xee);
    let resp = call(&mut s, &req);
    let r = reply(&resp);
    assert_eq!(status(&resp), EfiStatus::SUCCESS);
    assert_eq!(u64_at(r, ACC_DATA_SIZE), 5);
    assert_eq!(u32_at(r, ACC_ATTR), NV_BS_RT | HR);
    assert_eq!(&r[data_off..data_off + 5], b"hello");
    // the rest of the caller's capacity is left alone
    assert!(r[data_off + 5..].iter().all(|&b| b == 0xee));
    // GUID, NameSize and name unchanged
    assert_eq!(&r[ACC_GUID..ACC_DATA_SIZE], &req[ACC_GUID..ACC_DATA_SIZE]);
    assert_eq!(&r[ACC_NAME_SIZE..ACC_ATTR], &req[ACC_NAME_SIZE..ACC_ATTR]);
    // exact capacity
    let resp = call(&mut s, &get_req(&vendor(), "V", 5));
    assert_eq!(status(&resp), EfiStatus::SUCCESS);
}

#[test]
fn get_variable_message_shorter_than_claimed_capacity_is_buffer_too_small() {
    // Step 10: 16 + 36 + NameSize + claimed DataSize > MessageLength.
    let mut s = svc();
    assert_eq!(
        set(&mut s, &vendor(), "V", NV_BS_RT, b"hello"),
        EfiStatus::SUCCESS
    );
    let n = ucs2("V");
    // claims 64 bytes of room, sends 5
    let req = var_request(1, &access(&vendor(), 64, 4, 0, &n, &[0; 5]));
    let resp = call(&mut s, &req);
    let r = reply(&resp);
    assert_eq!(status(&resp), EfiStatus::BUFFER_TOO_SMALL);
    assert_eq!(
        u64_at(r, ACC_DATA_SIZE),
        5,
        "DataSize holds the actual size"
    );
    assert_eq!(u32_at(r, ACC_ATTR), NV_BS_RT);
    // QEMU copied the data before the final rule; it is inside MessageLength
    assert_eq!(&r[ACC_NAME + 4..], b"hello");
    // and with none of the data area sent at all
    let req = var_request(1, &access(&vendor(), 64, 4, 0, &n, &[]));
    let resp = call(&mut s, &req);
    assert_eq!(status(&resp), EfiStatus::BUFFER_TOO_SMALL);
    assert_eq!(u64_at(reply(&resp), ACC_DATA_SIZE), 5);
}

#[test]
fn return_status_overwrites_caller_junk() {
    let mut s = svc();
    let req = get_req(&global(), "SetupMode", 8);
    assert_eq!(u64_at(&req, STATUS_OFF), JUNK);
    let resp = call(&mut s, &req);
    assert_eq!(status(&resp), EfiStatus::SUCCESS);
    assert_eq!(u64_at(reply(&resp), FUNCTION_OFF), 1, "Function untouched");
}

// ---------------------------------------------------------------------------
// GET_NEXT_VARIABLE_NAME (docs/reference/mm-protocol.md §5).

#[test]
fn get_next_short_message_is_bad_buffer_size() {
    let mut s = svc();
    let full = next_req(&Guid::default(), "", 64);
    for ml in [16u64, 30, 39] {
        assert_eq!(
            status(&call(&mut s, &with_ml(full.clone(), ml))),
            EfiStatus::BAD_BUFFER_SIZE,
            "ml {ml}"
        );
    }
}

#[test]
fn get_next_name_size_above_max_storage_is_out_of_resources() {
    let mut s = svc();
    let mut p = Guid::default().0.to_vec();
    p.extend_from_slice(&(262144u64 + 1).to_le_bytes());
    assert_eq!(
        status(&call(&mut s, &var_request(2, &p))),
        EfiStatus::OUT_OF_RESOURCES
    );
    let mut p = Guid::default().0.to_vec();
    p.extend_from_slice(&262144u64.to_le_bytes());
    assert_eq!(
        status(&call(&mut s, &var_request(2, &p))),
        EfiStatus::BAD_BUFFER_SIZE
    );
}

#[test]
fn get_next_name_past_message_is_bad_buffer_size() {
    let mut s = svc();
    let mut p = Guid::default().0.to_vec();
    p.extend_from_slice(&64u64.to_le_bytes());
    p.extend_from_slice(&[0; 62]);
    assert_eq!(
        status(&call(&mut s, &var_request(2, &p))),
        EfiStatus::BAD_BUFFER_SIZE
    );
}

#[test]
fn get_next_invalid_name_is_invalid_parameter() {
    let mut s = svc();
    for area in [units(&[0x41, 0x42]), units(&[0xd801, 0]), vec![]] {
        let req = next_req_raw(&global(), &area, area.len());
        assert_eq!(
            status(&call(&mut s, &req)),
            EfiStatus::INVALID_PARAMETER,
            "{area:?}"
        );
    }
}

#[test]
fn get_next_empty_name_returns_the_first_variable_whatever_the_guid() {
    let mut s = svc();
    for guid in [Guid::default(), vendor(), global()] {
        let resp = call(&mut s, &next_req(&guid, "", 64));
        let r = reply(&resp);
        assert_eq!(status(&resp), EfiStatus::SUCCESS);
        assert_eq!(&r[NEXT_GUID..NEXT_GUID + 16], &global().0);
        assert_eq!(u64_at(r, NEXT_NAME_SIZE), 20);
        assert_eq!(&r[NEXT_NAME..NEXT_NAME + 20], &ucs2("SetupMode")[..]);
    }
}

#[test]
fn get_next_unknown_previous_name_is_invalid_parameter() {
    let mut s = svc();
    assert_eq!(
        status(&call(&mut s, &next_req(&global(), "NoSuchVar", 64))),
        EfiStatus::INVALID_PARAMETER
    );
    // right name, wrong GUID
    assert_eq!(
        status(&call(&mut s, &next_req(&vendor(), "SetupMode", 64))),
        EfiStatus::INVALID_PARAMETER
    );
}

#[test]
fn get_next_past_the_last_variable_is_not_found() {
    let mut s = svc();
    let all = walk(&mut s);
    let (g_last, n_last) = all.last().unwrap().clone();
    assert_eq!(n_last, "VendorKeys");
    assert_eq!(
        status(&call(&mut s, &next_req(&g_last, &n_last, 64))),
        EfiStatus::NOT_FOUND
    );
}

#[test]
fn compat_read_only_state_variables_cannot_be_written() {
    // QEMU has no read-only variables (docs/reference/limitations.md §2.3): these writes
    // and deletes are EFI_SUCCESS there until the next regeneration. edk2
    // (AuthVariableLib/VarCheckUefiLib) and we: EFI_WRITE_PROTECTED.
    let mut s = svc();
    for name in ["SetupMode", "SecureBoot", "SignatureSupport", "VendorKeys"] {
        assert_eq!(
            set(&mut s, &global(), name, BS | RT, &[0]),
            EfiStatus::WRITE_PROTECTED,
            "{name}"
        );
        assert_eq!(
            delete(&mut s, &global(), name),
            EfiStatus::WRITE_PROTECTED,
            "{name}"
        );
    }
    assert_eq!(
        set(&mut s, &global(), "VendorKeysNv", NV | BS, &[1]),
        EfiStatus::WRITE_PROTECTED
    );
    // a read-only name that does not exist cannot be created
    assert_eq!(
        set(&mut s, &global(), "AuditMode", BS | RT, &[1]),
        EfiStatus::WRITE_PROTECTED
    );
    // also at runtime
    exit_boot_services(&mut s);
    assert_eq!(
        set(&mut s, &global(), "SecureBoot", BS | RT, &[1]),
        EfiStatus::WRITE_PROTECTED
    );
    assert_eq!(get_data(&mut s, &global(), "SecureBoot"), Some(vec![0]));
    assert_eq!(get_data(&mut s, &global(), "SetupMode"), Some(vec![1]));
    // the names are only read-only in the global namespace
    assert_eq!(
        set(&mut s, &vendor(), "SetupMode", NV_BS_RT, &[5]),
        EfiStatus::SUCCESS
    );
}

#[test]
fn get_next_small_name_buffer_is_buffer_too_small_with_required_size() {
    let mut s = svc();
    let req = next_req(&Guid::default(), "", 4);
    assert_eq!(u64_at(&req, ML_OFF), 16 + 24 + 4);
    let resp = call(&mut s, &req);
    let r = reply(&resp);
    assert_eq!(status(&resp), EfiStatus::BUFFER_TOO_SMALL);
    assert_eq!(
        u64_at(r, NEXT_NAME_SIZE),
        20,
        "NameSize = StrSize(\"SetupMode\")"
    );
    assert_eq!(&r[NEXT_GUID..NEXT_GUID + 16], &global().0);
    // one byte short of the name
    let resp = call(&mut s, &next_req(&Guid::default(), "", 18));
    assert_eq!(status(&resp), EfiStatus::BUFFER_TOO_SMALL);
    // exactly enough
    let resp = call(&mut s, &next_req(&Guid::default(), "", 20));
    assert_eq!(status(&resp), EfiStatus::SUCCESS);
    assert_eq!(&reply(&resp)[NEXT_NAME..], &ucs2("SetupMode")[..]);
}

#[test]
fn get_next_name_that_does_not_fit_the_buffer_is_bad_buffer_size() {
    // buf check on 16 + 24 + the variable's NameSize (docs/reference/mm-protocol.md §5)
    let mut s = svc();
    s.set_buffer_size(24 + 16 + 24 + 4);
    let resp = call(&mut s, &next_req(&Guid::default(), "", 4));
    assert_eq!(status(&resp), EfiStatus::BAD_BUFFER_SIZE);
    assert_eq!(u64_at(reply(&resp), NEXT_NAME_SIZE), 4, "nothing written");
}

#[test]
fn enumeration_of_the_start_up_variables_on_an_empty_store() {
    let mut s = svc();
    let all = walk(&mut s);
    let expect = [
        (global(), "SetupMode"),
        (global(), "SignatureSupport"),
        (global(), "SecureBoot"),
        (custom_mode_guid(), "CustomMode"),
        (global(), "VendorKeysNv"),
        (global(), "VendorKeys"),
    ];
    let got: Vec<(Guid, &str)> = all.iter().map(|(g, n)| (*g, n.as_str())).collect();
    assert_eq!(got, expect);
    exit_boot_services(&mut s);
    assert_eq!(
        names(&walk(&mut s)),
        ["SetupMode", "SignatureSupport", "SecureBoot", "VendorKeys"]
    );
}

#[test]
fn get_next_bs_only_variables_are_invisible_after_exit_boot_services() {
    let mut s = svc();
    assert_eq!(
        set(&mut s, &vendor(), "Bs", NV | BS, b"1"),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        set(&mut s, &vendor(), "BsRt", NV_BS_RT, b"2"),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        set(&mut s, &vendor(), "VolBs", BS, b"3"),
        EfiStatus::SUCCESS
    );
    let before = walk(&mut s);
    assert!(names(&before).ends_with(&["Bs", "BsRt", "VolBs"]));
    exit_boot_services(&mut s);
    let after = walk(&mut s);
    assert!(names(&after).contains(&"BsRt"));
    assert!(!names(&after).contains(&"Bs"));
    assert!(!names(&after).contains(&"VolBs"));
    // the previous-name lookup ignores access: continuing from a BS-only
    // variable still works and skips to the next visible one
    let resp = call(&mut s, &next_req(&vendor(), "Bs", 64));
    assert_eq!(status(&resp), EfiStatus::SUCCESS);
    assert_eq!(decode_name(&reply(&resp)[NEXT_NAME..]), "BsRt");
    let resp = call(&mut s, &next_req(&vendor(), "BsRt", 64));
    assert_eq!(status(&resp), EfiStatus::NOT_FOUND);
}

#[test]
fn get_next_rt_only_variables_are_visible_only_after_exit_boot_services() {
    let mut s = service_with_rt_only(b"1");
    assert!(!names(&walk(&mut s)).contains(&"RtOnly"));
    exit_boot_services(&mut s);
    assert!(names(&walk(&mut s)).contains(&"RtOnly"));
    s.reset().unwrap();
    assert!(!names(&walk(&mut s)).contains(&"RtOnly"));
    exit_boot_services(&mut s);
    assert!(names(&walk(&mut s)).contains(&"RtOnly"));
}

#[test]
fn get_next_walk_crosses_namespaces_in_store_order() {
    let mut s = svc();
    assert_eq!(
        set(&mut s, &vendor(), "X", NV_BS_RT, b"1"),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        set(&mut s, &other_vendor(), "X", NV_BS_RT, b"2"),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        set(&mut s, &vendor(), "Y", NV_BS_RT, b"3"),
        EfiStatus::SUCCESS
    );
    let all = walk(&mut s);
    let tail: Vec<(Guid, &str)> = all[6..].iter().map(|(g, n)| (*g, n.as_str())).collect();
    assert_eq!(
        tail,
        [(vendor(), "X"), (other_vendor(), "X"), (vendor(), "Y")]
    );
}

#[test]
fn compat_empty_name_is_invalid_parameter() {
    // QEMU accepts SetVariable of "" (NameSize 2), and GetNextVariableName
    // then loops: "" is also the "start from the first" request
    // (docs/reference/limitations.md §2.11).
    let mut s = svc();
    assert_eq!(
        set(&mut s, &vendor(), "", NV_BS_RT, b"x"),
        EfiStatus::INVALID_PARAMETER
    );
    // a longer name area that starts with the NUL is the same name
    let req = var_request(
        3,
        &access(&vendor(), 1, 6, NV_BS_RT, &units(&[0, 0x41, 0]), b"x"),
    );
    assert_eq!(status(&call(&mut s, &req)), EfiStatus::INVALID_PARAMETER);
    assert_eq!(s.store().len(), 6);
    // the host-side SetVariable applies the same rule
    assert_eq!(
        s.set_variable(vendor(), VarName::from(""), NV_BS_RT, b"x"),
        EfiStatus::INVALID_PARAMETER
    );
    // deleting "" is refused the same way, and GetVariable of "" finds nothing
    assert_eq!(delete(&mut s, &vendor(), ""), EfiStatus::INVALID_PARAMETER);
    assert_eq!(get(&mut s, &vendor(), "").0, EfiStatus::NOT_FOUND);
    let all = walk(&mut s);
    assert_eq!(all.len(), 6);
}

#[test]
fn compat_name_canonical_trailing_bytes_are_not_stored() {
    // QEMU stores the name area verbatim and GetNextVariableName returns
    // NameSize = 8 with "A\0Z\0" here; we store the name up to its NUL.
    let mut s = svc();
    let area = units(&[0x41, 0, 0x5a, 0]);
    let req = var_request(3, &access(&vendor(), 1, 8, NV_BS_RT, &area, b"v"));
    assert_eq!(status(&call(&mut s, &req)), EfiStatus::SUCCESS);
    let resp = call(&mut s, &next_req(&global(), "VendorKeys", 64));
    let r = reply(&resp);
    assert_eq!(status(&resp), EfiStatus::SUCCESS);
    assert_eq!(u64_at(r, NEXT_NAME_SIZE), 4);
    assert_eq!(&r[NEXT_NAME..NEXT_NAME + 4], &ucs2("A")[..]);
}

// ---------------------------------------------------------------------------
// SET_VARIABLE (docs/reference/mm-protocol.md §4, docs/reference/variables.md §2–§4).

#[test]
fn set_variable_framing_errors() {
    let mut s = svc();
    let full = set_req(&vendor(), "V", NV_BS_RT, b"data");
    assert_eq!(
        status(&call(&mut s, &with_ml(full.clone(), 51))),
        EfiStatus::BAD_BUFFER_SIZE
    );
    // data past MessageLength
    let short = with_ml(full.clone(), u64_at(&full, ML_OFF) - 1);
    assert_eq!(status(&call(&mut s, &short)), EfiStatus::BAD_BUFFER_SIZE);
    // NameSize / DataSize above max_storage
    let n = ucs2("V");
    let req = var_request(3, &access(&vendor(), 262145, 4, NV_BS_RT, &n, &[]));
    assert_eq!(status(&call(&mut s, &req)), EfiStatus::OUT_OF_RESOURCES);
    let req = var_request(3, &access(&vendor(), 1, 262145, NV_BS_RT, &n, &[]));
    assert_eq!(status(&call(&mut s, &req)), EfiStatus::OUT_OF_RESOURCES);
    // a NameSize within max_storage but past MessageLength
    let req = var_request(3, &access(&vendor(), 262144, 262144, NV_BS_RT, &n, &[]));
    assert_eq!(status(&call(&mut s, &req)), EfiStatus::BAD_BUFFER_SIZE);
    assert_eq!(get(&mut s, &vendor(), "V").0, EfiStatus::NOT_FOUND);
    // the reply carries only ReturnStatus
    let resp = call(&mut s, &full);
    let r = reply(&resp);
    assert_eq!(status(&resp), EfiStatus::SUCCESS);
    assert_eq!(&r[STATUS_OFF + 8..], &full[STATUS_OFF + 8..]);
}

/// The last refusal the service recorded.
fn refusal(svc: &Service) -> Refusal {
    svc.last_refusal().expect("a refusal").refusal.clone()
}

/// edk2 VariableServiceSetVariable + AuthVariableLib ProcessVariable
/// (edk2-stable202605): AUTHENTICATED_WRITE_ACCESS together with
/// TIME_BASED is EFI_UNSUPPORTED, and alone it is let through only with
/// DataSize == AUTHINFO_SIZE (560), which ProcessVariable then refuses with
/// EFI_UNSUPPORTED (ProcessVarWithPk with EFI_INVALID_PARAMETER).
/// QEMU: EFI_UNSUPPORTED with data, a delete on DataSize 0.
#[test]
fn compat_auth_write_access_variable_service_set_variable() {
    let mut s = svc();
    assert_eq!(
        set(&mut s, &vendor(), "V", NV_BS_RT | AW, b"x"),
        EfiStatus::UNSUPPORTED
    );
    assert_eq!(refusal(&s), Refusal::CountBasedAuthentication);
    let t = efi_time(2025, 1, 1, 0, 0, 0);
    assert_eq!(
        set(
            &mut s,
            &vendor(),
            "V",
            NV_BS_RT | AW | AT,
            &auth2(t, &[], b"x")
        ),
        EfiStatus::UNSUPPORTED
    );
    assert_eq!(
        set(&mut s, &vendor(), "V", BS_RT_AW_RT_ONLY, b"x"),
        EfiStatus::UNSUPPORTED
    );
    assert_eq!(
        refusal(&s),
        Refusal::RuntimeWithoutBootServices {
            attributes: BS_RT_AW_RT_ONLY
        }
    );
    let authinfo = vec![0u8; 560];
    assert_eq!(
        set(&mut s, &vendor(), "V", NV_BS_RT | AW, &authinfo),
        EfiStatus::UNSUPPORTED
    );
    assert_eq!(
        set(&mut s, &global(), "PK", NV_BS_RT | AW, &authinfo),
        EfiStatus::INVALID_PARAMETER
    );
    // a delete with AW is no delete: an existing variable stays
    assert_eq!(
        set(&mut s, &vendor(), "V", NV_BS_RT, b"x"),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        set(&mut s, &vendor(), "V", NV_BS_RT | AW, &[]),
        EfiStatus::UNSUPPORTED
    );
    assert_eq!(refusal(&s).compat_id(), Some("auth-write-access"));
    assert_eq!(get_data(&mut s, &vendor(), "V"), Some(b"x".to_vec()));
}

const BS_RT_AW_RT_ONLY: u32 = RT | AW;

/// edk2 VariableServiceSetVariable: bits outside
/// EFI_VARIABLE_ATTRIBUTES_MASK | AUTHENTICATED_WRITE_ACCESS are
/// EFI_INVALID_PARAMETER, checked first, for deletes too. QEMU:
/// EFI_UNSUPPORTED for writes, ignored on deletes.
#[test]
fn compat_attr_reserved_bits_variable_service_set_variable() {
    let mut s = svc();
    for attrs in [
        NV_BS_RT | 0x80,
        NV_BS_RT | 0x100,
        NV_BS_RT | 0x8000_0000,
        0x80,
    ] {
        assert_eq!(
            set(&mut s, &vendor(), "V", attrs, b"x"),
            EfiStatus::INVALID_PARAMETER,
            "{attrs:#x}"
        );
        assert_eq!(
            refusal(&s),
            Refusal::ReservedAttributes { attributes: attrs }
        );
    }
    assert_eq!(get(&mut s, &vendor(), "V").0, EfiStatus::NOT_FOUND);
    assert_eq!(
        set(&mut s, &vendor(), "V", NV_BS_RT, b"x"),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        set(&mut s, &vendor(), "V", NV_BS_RT | 0x80, &[]),
        EfiStatus::INVALID_PARAMETER
    );
    assert_eq!(get_data(&mut s, &vendor(), "V"), Some(b"x".to_vec()));
    // the attribute check comes before the read-only check
    assert_eq!(
        set(&mut s, &global(), "SecureBoot", 0x106, &[1]),
        EfiStatus::INVALID_PARAMETER
    );
}

/// edk2 VariableServiceSetVariable: RUNTIME_ACCESS without
/// BOOTSERVICE_ACCESS is EFI_INVALID_PARAMETER in every phase, before the
/// store is looked at. QEMU: EFI_ACCESS_DENIED before ExitBootServices,
/// stored after it.
#[test]
fn compat_attr_runtime_without_bs_variable_service_set_variable() {
    let mut s = svc();
    for attrs in [RT, NV | RT, HR | NV | RT] {
        assert_eq!(
            set(&mut s, &vendor(), "V", attrs, b"x"),
            EfiStatus::INVALID_PARAMETER,
            "{attrs:#x}"
        );
        assert_eq!(refusal(&s).compat_id(), Some("attr-runtime-without-bs"));
    }
    exit_boot_services(&mut s);
    assert_eq!(
        set(&mut s, &vendor(), "Rt", NV | RT, b"x"),
        EfiStatus::INVALID_PARAMETER
    );
    assert_eq!(get(&mut s, &vendor(), "Rt").0, EfiStatus::NOT_FOUND);
}

/// edk2 VariableServiceSetVariable: NON_VOLATILE alone is
/// EFI_INVALID_PARAMETER (EFI_UNSUPPORTED with AUTHENTICATED_WRITE_ACCESS).
/// QEMU: EFI_ACCESS_DENIED (no access bit for the phase).
#[test]
fn compat_attr_nv_only_variable_service_set_variable() {
    let mut s = svc();
    assert_eq!(
        set(&mut s, &vendor(), "V", NV, b"x"),
        EfiStatus::INVALID_PARAMETER
    );
    assert_eq!(refusal(&s), Refusal::NonVolatileOnly { attributes: NV });
    assert_eq!(
        set(&mut s, &vendor(), "V", NV | AW, b"x"),
        EfiStatus::UNSUPPORTED
    );
    assert_eq!(get(&mut s, &vendor(), "V").0, EfiStatus::NOT_FOUND);
}

/// edk2 UpdateVariable: Attributes without an access bit delete the
/// variable whatever the data (a delete of nothing is EFI_SUCCESS, as
/// QEMU answers the deletes real firmware sends). QEMU: EFI_ACCESS_DENIED.
#[test]
fn compat_delete_no_access_update_variable() {
    let mut s = svc();
    assert_eq!(set(&mut s, &vendor(), "V", 0, b"x"), EfiStatus::SUCCESS);
    assert_eq!(set(&mut s, &vendor(), "V", HR, b"x"), EfiStatus::SUCCESS);
    assert_eq!(get(&mut s, &vendor(), "V").0, EfiStatus::NOT_FOUND);
    assert_eq!(
        set(&mut s, &vendor(), "V", NV_BS_RT, b"x"),
        EfiStatus::SUCCESS
    );
    // attributes 0 with data: deleted
    assert_eq!(set(&mut s, &vendor(), "V", 0, b"data"), EfiStatus::SUCCESS);
    assert_eq!(get(&mut s, &vendor(), "V").0, EfiStatus::NOT_FOUND);
    // HR alone differs from the stored attributes
    assert_eq!(
        set(&mut s, &vendor(), "V", NV_BS_RT, b"x"),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        set(&mut s, &vendor(), "V", HR, b"x"),
        EfiStatus::INVALID_PARAMETER
    );
    assert_eq!(get_data(&mut s, &vendor(), "V"), Some(b"x".to_vec()));
}

/// edk2 VariableServiceSetVariable: a delete whose (non-zero) attributes
/// differ from the stored ones is EFI_INVALID_PARAMETER; attributes 0 or
/// the stored ones delete. QEMU ignores a delete's attributes.
#[test]
fn compat_delete_attributes_variable_service_set_variable() {
    let mut s = svc();
    assert_eq!(
        set(&mut s, &vendor(), "V", NV_BS_RT, b"data"),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        set(&mut s, &vendor(), "V", NV | BS, &[]),
        EfiStatus::INVALID_PARAMETER
    );
    assert_eq!(
        refusal(&s),
        Refusal::AttributeMismatch {
            stored: NV_BS_RT,
            requested: NV | BS
        }
    );
    assert_eq!(get_data(&mut s, &vendor(), "V"), Some(b"data".to_vec()));
    assert_eq!(
        set(&mut s, &vendor(), "V", NV_BS_RT, &[]),
        EfiStatus::SUCCESS
    );
    assert_eq!(get(&mut s, &vendor(), "V").0, EfiStatus::NOT_FOUND);
    assert_eq!(set(&mut s, &vendor(), "W", BS, b"data"), EfiStatus::SUCCESS);
    assert_eq!(delete(&mut s, &vendor(), "W"), EfiStatus::SUCCESS);
    assert!(!names(&walk(&mut s)).iter().any(|n| *n == "V" || *n == "W"));
    // deleting again is a delete of nothing
    assert_eq!(delete(&mut s, &vendor(), "V"), EfiStatus::SUCCESS);
}

/// edk2 VariableServiceSetVariable and UpdateVariable after
/// ExitBootServices: a variable without RUNTIME_ACCESS is
/// EFI_WRITE_PROTECTED (update and delete), a volatile one is read-only
/// (EFI_WRITE_PROTECTED), a new one must be NV|RT (EFI_INVALID_PARAMETER).
/// QEMU: EFI_ACCESS_DENIED for the first, accepts volatile changes.
#[test]
fn compat_runtime_write_update_variable() {
    let mut s = svc();
    for (name, attrs) in [("Bs", NV | BS), ("Vol", BS | RT), ("Nv", NV_BS_RT)] {
        assert_eq!(
            set(&mut s, &vendor(), name, attrs, b"x"),
            EfiStatus::SUCCESS
        );
    }
    exit_boot_services(&mut s);
    assert_eq!(
        set(&mut s, &vendor(), "Bs", NV | BS, b"y"),
        EfiStatus::WRITE_PROTECTED
    );
    assert_eq!(refusal(&s), Refusal::RuntimeNotAccessible);
    assert_eq!(delete(&mut s, &vendor(), "Bs"), EfiStatus::WRITE_PROTECTED);
    assert_eq!(
        set(&mut s, &vendor(), "Vol", BS | RT, b"y"),
        EfiStatus::WRITE_PROTECTED
    );
    assert_eq!(refusal(&s), Refusal::RuntimeVolatile);
    assert_eq!(delete(&mut s, &vendor(), "Vol"), EfiStatus::WRITE_PROTECTED);
    assert_eq!(get_data(&mut s, &vendor(), "Vol"), Some(b"x".to_vec()));
    for attrs in [BS | RT, NV | BS] {
        assert_eq!(
            set(&mut s, &vendor(), "New", attrs, b"x"),
            EfiStatus::INVALID_PARAMETER,
            "{attrs:#x}"
        );
        assert_eq!(refusal(&s).compat_id(), Some("runtime-write"));
    }
    assert_eq!(
        set(&mut s, &vendor(), "New", NV_BS_RT, b"x"),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        set(&mut s, &vendor(), "Nv", NV_BS_RT, b"y"),
        EfiStatus::SUCCESS
    );
    assert_eq!(delete(&mut s, &vendor(), "Nv"), EfiStatus::SUCCESS);
    assert_eq!(get(&mut s, &vendor(), "Nv").0, EfiStatus::NOT_FOUND);
}

fn hw_error() -> Guid {
    g("414e6bdd-e47b-47cc-b244-bb61020cf516")
}

/// edk2 VarCheckUefiLib SetVariableCheckHandlerUefiDefined (from
/// EndOfDxe): HARDWARE_ERROR_RECORD only for HwErrRec#### (upper-case
/// hex) in gEfiHardwareErrorVariableGuid; VariableServiceSetVariable:
/// name + payload within PcdMaxHardwareErrorVariableSize (0x8000) less the
/// 60-byte header. QEMU has neither rule.
#[test]
fn compat_hw_error_record_var_check_uefi_lib() {
    let mut s = svc();
    let hr = NV_BS_RT | HR;
    assert_eq!(set(&mut s, &vendor(), "Hr", hr, b"x"), EfiStatus::SUCCESS);
    end_of_dxe(&mut s);
    assert_eq!(
        set(&mut s, &vendor(), "Hr2", hr, b"x"),
        EfiStatus::INVALID_PARAMETER
    );
    assert_eq!(refusal(&s), Refusal::HwErrRecName);
    assert_eq!(
        set(&mut s, &hw_error(), "HwErrRec00a1", hr, b"x"),
        EfiStatus::INVALID_PARAMETER
    );
    assert_eq!(
        set(&mut s, &hw_error(), "HwErrRec001", hr, b"x"),
        EfiStatus::INVALID_PARAMETER
    );
    assert_eq!(
        set(&mut s, &hw_error(), "HwErrRec00A1", hr, b"x"),
        EfiStatus::SUCCESS
    );
    // 26 bytes of name: 0x8000 - 60 - 26 bytes of data fit, one more not
    let fits = vec![7u8; 0x8000 - 60 - 26];
    assert_eq!(
        set(&mut s, &hw_error(), "HwErrRec0002", hr, &fits),
        EfiStatus::SUCCESS
    );
    let over = vec![7u8; 0x8000 - 60 - 26 + 1];
    assert_eq!(
        set(&mut s, &hw_error(), "HwErrRec0003", hr, &over),
        EfiStatus::INVALID_PARAMETER
    );
    assert_eq!(
        refusal(&s),
        Refusal::HwErrRecTooLarge {
            size: 0x8000 - 60 + 1,
            max: 0x8000 - 60
        }
    );
    assert_eq!(
        get(&mut s, &hw_error(), "HwErrRec0003").0,
        EfiStatus::NOT_FOUND
    );
    // a delete is not checked
    assert_eq!(delete(&mut s, &vendor(), "Hr"), EfiStatus::SUCCESS);
}

/// edk2 VariableServiceSetVariable, the order of the checks: attributes,
/// then the descriptor's framing, then VarCheck (read-only), then the
/// stored variable's attributes.
#[test]
fn variable_service_set_variable_check_order() {
    let mut s = svc();
    assert_eq!(
        set(&mut s, &vendor(), "V", NV_BS_RT, b"x"),
        EfiStatus::SUCCESS
    );
    // framing of the descriptor before the attribute comparison
    assert_eq!(
        set(&mut s, &vendor(), "V", SB_DB, b"short"),
        EfiStatus::SECURITY_VIOLATION
    );
    assert_eq!(refusal(&s), Refusal::Descriptor(DescriptorFault::Framing));
    // read-only before the attribute comparison
    assert_eq!(
        set(&mut s, &global(), "SecureBoot", NV | BS, &[1]),
        EfiStatus::WRITE_PROTECTED
    );
    assert_eq!(refusal(&s), Refusal::ReadOnly);
    // RT without BS before the descriptor
    assert_eq!(
        set(&mut s, &vendor(), "V", RT | AT, b"short"),
        EfiStatus::INVALID_PARAMETER
    );
}

#[test]
fn set_variable_update_with_other_attributes_is_invalid_parameter() {
    let mut s = svc();
    assert_eq!(
        set(&mut s, &vendor(), "V", NV_BS_RT, b"one"),
        EfiStatus::SUCCESS
    );
    for attrs in [NV | BS, BS | RT, NV_BS_RT | HR] {
        assert_eq!(
            set(&mut s, &vendor(), "V", attrs, b"two"),
            EfiStatus::INVALID_PARAMETER,
            "{attrs:#x}"
        );
    }
    assert_eq!(get_data(&mut s, &vendor(), "V"), Some(b"one".to_vec()));
    // same attributes: the update goes through
    assert_eq!(
        set(&mut s, &vendor(), "V", NV_BS_RT, b"two"),
        EfiStatus::SUCCESS
    );
    assert_eq!(get_data(&mut s, &vendor(), "V"), Some(b"two".to_vec()));
}

/// edk2 UpdateVariable: APPEND_WRITE appends to every variable (the
/// Secure Boot databases merge, append-merge); an APPEND whose other
/// attributes differ from the stored ones is EFI_INVALID_PARAMETER
/// (VariableServiceSetVariable). QEMU: EFI_UNSUPPORTED outside the
/// databases.
#[test]
fn compat_append_any_variable_update_variable() {
    let mut s = common::in_memory(Config::default().with_max_variable_size(Some(16)));
    // APPEND with no old variable is a plain create; APPEND is never stored
    assert_eq!(
        set(&mut s, &vendor(), "V", NV_BS_RT | AP, b"one"),
        EfiStatus::SUCCESS
    );
    assert_eq!(get(&mut s, &vendor(), "V").1, NV_BS_RT);
    assert_eq!(
        set(&mut s, &vendor(), "V", NV_BS_RT | AP, b"two"),
        EfiStatus::SUCCESS
    );
    assert_eq!(get_data(&mut s, &vendor(), "V"), Some(b"onetwo".to_vec()));
    // volatile too
    assert_eq!(
        set(&mut s, &vendor(), "Vol", BS | RT, b"a"),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        set(&mut s, &vendor(), "Vol", BS | RT | AP, b"b"),
        EfiStatus::SUCCESS
    );
    assert_eq!(get_data(&mut s, &vendor(), "Vol"), Some(b"ab".to_vec()));
    // other attributes
    assert_eq!(
        set(&mut s, &vendor(), "V", NV | BS | AP, b"x"),
        EfiStatus::INVALID_PARAMETER
    );
    assert!(matches!(refusal(&s), Refusal::AttributeMismatch { .. }));
    // the merged value must fit MaxVariableSize (4 + 6 + 7 > 16)
    assert_eq!(
        set(&mut s, &vendor(), "V", NV_BS_RT | AP, b"threeee"),
        EfiStatus::INVALID_PARAMETER
    );
    assert_eq!(refusal(&s), Refusal::TooLarge { size: 17, max: 16 });
    assert_eq!(get_data(&mut s, &vendor(), "V"), Some(b"onetwo".to_vec()));
}

/// edk2 AuthVariableLibProcessVariable hands dbt to ProcessVarWithPk and
/// ProcessVarWithKek, which need NON_VOLATILE and
/// TIME_BASED_AUTHENTICATED_WRITE_ACCESS (EFI_INVALID_PARAMETER); dbr is
/// not among them. QEMU stores an unauthenticated dbt.
#[test]
fn compat_dbt_dbr_unauthenticated_dbt_process_var_with_pk() {
    let mut s = svc();
    for attrs in [NV_BS_RT, NV | BS] {
        assert_eq!(
            set(&mut s, &image_security(), "dbt", attrs, b"x"),
            EfiStatus::INVALID_PARAMETER,
            "{attrs:#x}"
        );
        assert_eq!(
            refusal(&s),
            Refusal::SecureBootDbAttributes { attributes: attrs }
        );
    }
    assert_eq!(
        get(&mut s, &image_security(), "dbt").0,
        EfiStatus::NOT_FOUND
    );
    assert_eq!(
        set(&mut s, &image_security(), "dbr", NV_BS_RT, b"x"),
        EfiStatus::SUCCESS
    );
}

#[test]
fn set_variable_secure_boot_databases_need_attributes_0x27() {
    let mut s = svc();
    let t = efi_time(2025, 1, 1, 0, 0, 0);
    let kek = x509_list(&vendor(), b"kek cert");
    // unauthenticated writes with the wrong attributes
    assert_eq!(
        set(&mut s, &global(), "KEK", NV_BS_RT, &kek),
        EfiStatus::INVALID_PARAMETER
    );
    assert_eq!(
        set(&mut s, &global(), "PK", NV_BS_RT, &kek),
        EfiStatus::INVALID_PARAMETER
    );
    assert_eq!(
        set(&mut s, &image_security(), "db", NV_BS_RT, &kek),
        EfiStatus::INVALID_PARAMETER
    );
    assert_eq!(
        set(&mut s, &image_security(), "dbx", NV | BS, &kek),
        EfiStatus::INVALID_PARAMETER
    );
    // authenticated (setup mode, no signature needed) but not NV|BS|RT|AT
    assert_eq!(
        set(&mut s, &global(), "KEK", BS | RT | AT, &auth2(t, &[], &kek)),
        EfiStatus::INVALID_PARAMETER
    );
    assert_eq!(
        set(
            &mut s,
            &image_security(),
            "db",
            NV | BS | AT,
            &auth2(t, &[], &kek)
        ),
        EfiStatus::INVALID_PARAMETER
    );
    for (g, n) in [
        (global(), "KEK"),
        (global(), "PK"),
        (image_security(), "db"),
        (image_security(), "dbx"),
    ] {
        assert_eq!(get(&mut s, &g, n).0, EfiStatus::NOT_FOUND, "{n}");
    }
    // the names are only special in their own namespace
    assert_eq!(
        set(&mut s, &global(), "db", NV_BS_RT, b"x"),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        set(&mut s, &vendor(), "KEK", NV_BS_RT, b"x"),
        EfiStatus::SUCCESS
    );
    // dbt needs NV and AT as db does (edk2 ProcessVarWithPk; compat: dbt-dbr)
    assert_eq!(
        set(&mut s, &image_security(), "dbt", NV_BS_RT, b"x"),
        EfiStatus::INVALID_PARAMETER
    );
}

/// edk2 UpdateVariable answers EFI_NOT_FOUND to a delete of nothing;
/// QEMU's EFI_SUCCESS stays, as real firmware sends such deletes at every
/// boot (tests/data captures), whatever the attributes that pass the
/// parameter checks.
#[test]
fn update_variable_delete_of_a_missing_variable() {
    let mut s = svc();
    let before: Vec<Variable> = s.store().iter().cloned().collect();
    assert_eq!(delete(&mut s, &vendor(), "Missing"), EfiStatus::SUCCESS);
    assert_eq!(
        set(&mut s, &vendor(), "Missing", NV_BS_RT, &[]),
        EfiStatus::SUCCESS
    );
    let after: Vec<Variable> = s.store().iter().cloned().collect();
    assert_eq!(before, after);
}

#[test]
fn set_variable_update_moves_the_variable_to_the_end() {
    let mut s = svc();
    for n in ["A", "B", "C"] {
        assert_eq!(
            set(&mut s, &vendor(), n, NV_BS_RT, n.as_bytes()),
            EfiStatus::SUCCESS
        );
    }
    assert!(names(&walk(&mut s)).ends_with(&["A", "B", "C"]));
    assert_eq!(
        set(&mut s, &vendor(), "A", NV_BS_RT, b"new"),
        EfiStatus::SUCCESS
    );
    assert!(names(&walk(&mut s)).ends_with(&["B", "C", "A"]));
    // a failed update does not move it
    assert_eq!(
        set(&mut s, &vendor(), "B", NV | BS, b"bad"),
        EfiStatus::INVALID_PARAMETER
    );
    assert!(names(&walk(&mut s)).ends_with(&["B", "C", "A"]));
}

/// 96 + NameSize + DataSize of the six start-up variables (docs/reference/variables.md §5,
/// §7): SetupMode 96+20+1, SignatureSupport 96+34+80, SecureBoot 96+22+1,
/// CustomMode 96+22+1, VendorKeysNv 96+26+1, VendorKeys 96+22+1.
const START_UP_USAGE: u64 = 117 + 210 + 119 + 119 + 123 + 119;

fn query(s: &mut Service, attrs: u32) -> (u64, u64, u64) {
    let mut p = vec![0xa5u8; 24];
    p.extend_from_slice(&attrs.to_le_bytes());
    p.extend_from_slice(&[0xa5; 4]);
    let resp = call(s, &var_request(4, &p));
    let r = reply(&resp);
    assert_eq!(status(&resp), EfiStatus::SUCCESS);
    // the attribute field is overwritten with 0 (docs/reference/mm-protocol.md §6)
    assert_eq!(u32_at(r, 64), 0);
    // QEMU writes 28 bytes; edk2's padding stays as sent
    assert_eq!(&r[68..72], &[0xa5; 4]);
    (u64_at(r, 40), u64_at(r, 48), u64_at(r, 56))
}

#[test]
fn set_variable_storage_quota_is_out_of_resources() {
    let mut s = common::in_memory(Config::default().with_max_storage(1024));
    let (max, remaining, _) = query(&mut s, NV_BS_RT);
    assert_eq!(max, 1024);
    assert_eq!(remaining, 1024 - START_UP_USAGE);
    // "A" costs 96 + 4 + DataSize
    let room = (remaining - 96 - 4) as usize;
    assert_eq!(
        set(&mut s, &vendor(), "A", NV_BS_RT, &vec![1; room + 1]),
        EfiStatus::OUT_OF_RESOURCES
    );
    assert_eq!(get(&mut s, &vendor(), "A").0, EfiStatus::NOT_FOUND);
    assert_eq!(
        set(&mut s, &vendor(), "A", NV_BS_RT, &vec![1; room]),
        EfiStatus::SUCCESS
    );
    assert_eq!(query(&mut s, NV_BS_RT).1, 0);
    // an update is charged used − old + new
    assert_eq!(
        set(&mut s, &vendor(), "A", NV_BS_RT, &vec![2; room]),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        set(&mut s, &vendor(), "A", NV_BS_RT, &vec![2; room + 1]),
        EfiStatus::OUT_OF_RESOURCES
    );
    assert_eq!(
        set(&mut s, &vendor(), "B", BS, b"x"),
        EfiStatus::OUT_OF_RESOURCES
    );
    assert_eq!(delete(&mut s, &vendor(), "A"), EfiStatus::SUCCESS);
    assert_eq!(query(&mut s, NV_BS_RT).1, 1024 - START_UP_USAGE);
    // DataSize above max_storage is refused before anything else
    assert_eq!(
        set(&mut s, &vendor(), "B", NV_BS_RT, &[0; 1025]),
        EfiStatus::OUT_OF_RESOURCES
    );
}

#[test]
fn reset_drops_volatile_variables_and_keeps_non_volatile_ones() {
    let mut s = svc();
    assert_eq!(
        set(&mut s, &vendor(), "Vol", BS | RT, b"v"),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        set(&mut s, &vendor(), "Nv", NV_BS_RT, b"n"),
        EfiStatus::SUCCESS
    );
    end_of_dxe(&mut s);
    exit_boot_services(&mut s);
    s.reset().unwrap();
    assert_eq!(get(&mut s, &vendor(), "Vol").0, EfiStatus::NOT_FOUND);
    assert_eq!(get_data(&mut s, &vendor(), "Nv"), Some(b"n".to_vec()));
    // the Secure Boot state variables are re-appended after the kept ones
    assert_eq!(
        names(&walk(&mut s)),
        [
            "Nv",
            "SetupMode",
            "SignatureSupport",
            "SecureBoot",
            "CustomMode",
            "VendorKeysNv",
            "VendorKeys"
        ]
    );
}

// ---------------------------------------------------------------------------
// QUERY_VARIABLE_INFO (docs/reference/mm-protocol.md §6) and GET_PAYLOAD_SIZE (§7).

#[test]
fn query_variable_info_values() {
    let mut s = svc();
    // 262144 default; remaining = max − Σ(96 + NameSize + DataSize); max/4
    assert_eq!(
        query(&mut s, NV_BS_RT),
        (262144, 262144 - START_UP_USAGE, 65536)
    );
    assert_eq!(
        set(&mut s, &vendor(), "Test", NV_BS_RT, b"123456"),
        EfiStatus::SUCCESS
    );
    let after = 262144 - START_UP_USAGE - (96 + 10 + 6);
    // the same numbers whatever the attribute mask
    for attrs in [NV_BS_RT, BS, BS | RT, NV_BS_RT | HR, 0] {
        assert_eq!(query(&mut s, attrs), (262144, after, 65536), "{attrs:#x}");
    }
    let used: u64 = s
        .store()
        .iter()
        .map(|v| 96 + v.name.wire_size() + v.data.len() as u64)
        .sum();
    assert_eq!(used, START_UP_USAGE + 112);
    // volatile variables count too
    assert_eq!(set(&mut s, &vendor(), "Vol", BS, b"1"), EfiStatus::SUCCESS);
    assert_eq!(query(&mut s, BS).1, after - (96 + 8 + 1));
}

#[test]
fn query_variable_info_configured_sizes() {
    let mut s = common::in_memory(
        Config::default()
            .with_max_storage(100_000)
            .with_max_variable_size(Some(1234)),
    );
    assert_eq!(
        query(&mut s, NV_BS_RT),
        (100_000, 100_000 - START_UP_USAGE, 1234)
    );
    let mut s = common::in_memory(Config::default().with_max_storage(100_000));
    assert_eq!(query(&mut s, NV_BS_RT).2, 25_000);
}

#[test]
fn query_variable_info_buffer_checks() {
    let mut s = svc();
    // buf check on 16 + 28
    s.set_buffer_size(24 + 16 + 27);
    let resp = call(&mut s, &var_request(4, &[]));
    assert_eq!(status(&resp), EfiStatus::BAD_BUFFER_SIZE);
    // fits the buffer, but MessageLength (16) is short of the 44 the reply needs
    s.set_buffer_size(24 + 16 + 28);
    let resp = call(&mut s, &var_request(4, &[]));
    assert_eq!(status(&resp), EfiStatus::BUFFER_TOO_SMALL);
    // 28 bytes are enough (edk2 sends 32)
    let resp = call(&mut s, &var_request(4, &[0; 28]));
    assert_eq!(status(&resp), EfiStatus::SUCCESS);
}

#[test]
fn compat_query_remaining_saturates() {
    // The start-up variables alone exceed a 500-byte store. QEMU answers
    // max − used wrapped around (500 − 807 as u64 = 2^64 − 307); we answer 0.
    let mut s = common::in_memory(Config::default().with_max_storage(500));
    assert!(s.store().used() > 500);
    assert_eq!(query(&mut s, NV_BS_RT), (500, 0, 125));
    assert_eq!(
        set(&mut s, &vendor(), "V", BS, b"x"),
        EfiStatus::OUT_OF_RESOURCES
    );
}

fn payload_size(s: &mut Service) -> (EfiStatus, u64) {
    let resp = call(s, &var_request(11, &[0; 8]));
    (status(&resp), u64_at(reply(&resp), 40))
}

#[test]
fn get_payload_size_values() {
    let mut s = svc();
    // BUFFER_SIZE − 24 − 16
    assert_eq!(payload_size(&mut s), (EfiStatus::SUCCESS, 65496));
    s.set_buffer_size(4096);
    assert_eq!(payload_size(&mut s), (EfiStatus::SUCCESS, 4056));
    // QEMU 10.0 to 10.2 returned BUFFER_SIZE
    let mut s = common::in_memory(Config::default().with_legacy_payload_size(true));
    assert_eq!(payload_size(&mut s), (EfiStatus::SUCCESS, 65536));
    s.set_buffer_size(4096);
    assert_eq!(payload_size(&mut s), (EfiStatus::SUCCESS, 4096));
}

#[test]
fn get_payload_size_checks_the_buffer() {
    let mut s = svc();
    s.set_buffer_size(24 + 16 + 7);
    assert_eq!(
        status(&call(&mut s, &var_request(11, &[]))),
        EfiStatus::BAD_BUFFER_SIZE
    );
    s.set_buffer_size(24 + 16 + 8);
    // fits the buffer but not MessageLength 16
    assert_eq!(
        status(&call(&mut s, &var_request(11, &[]))),
        EfiStatus::BUFFER_TOO_SMALL
    );
    assert_eq!(payload_size(&mut s), (EfiStatus::SUCCESS, 8));
}

#[test]
fn a_request_of_the_advertised_payload_size_fits() {
    // edk2 adds the 40 header bytes back: a GetVariable whose MessageLength
    // is 16 + the payload size must pass framing and the buf check.
    let mut s = svc();
    let (_, payload) = payload_size(&mut s);
    assert_eq!(
        set(&mut s, &vendor(), "V", NV_BS_RT, b"x"),
        EfiStatus::SUCCESS
    );
    let cap = payload as usize - 36 - 4;
    let resp = call(&mut s, &get_req(&vendor(), "V", cap));
    assert_eq!(status(&resp), EfiStatus::SUCCESS);
    assert_eq!(u64_at(&get_req(&vendor(), "V", cap), ML_OFF), 16 + payload);
}

// ---------------------------------------------------------------------------
// Boot-phase compat.

#[test]
fn compat_ready_to_boot_at_runtime_is_unsupported() {
    // QEMU: EFI_SUCCESS (it only records ready_to_boot).
    let mut s = svc();
    exit_boot_services(&mut s);
    let resp = call(&mut s, &var_request(5, &[]));
    assert_eq!(status(&resp), EfiStatus::UNSUPPORTED);
    assert!(!s.phase().ready_to_boot);
    // the event GUID is still just recorded
    assert_eq!(
        call(&mut s, &event(&ready_to_boot_event())).status,
        DeviceStatus::Success
    );
}

#[test]
fn compat_ready_to_boot_ends_dxe() {
    // QEMU: ReadyToBoot only sets ready_to_boot; policies are not enforced
    // and LOCK_VARIABLE still succeeds.
    for req in [var_request(5, &[]), event(&ready_to_boot_event())] {
        let mut s = svc();
        assert_eq!(
            status(&call(&mut s, &lock_req(&vendor(), &ucs2("Locked")))),
            EfiStatus::SUCCESS
        );
        let _ = call(&mut s, &req);
        assert!(s.phase().ready_to_boot && s.phase().end_of_dxe);
        assert_eq!(
            set(&mut s, &vendor(), "Locked", NV_BS_RT, b"x"),
            EfiStatus::WRITE_PROTECTED
        );
        assert_eq!(
            status(&call(&mut s, &lock_req(&vendor(), &ucs2("Other")))),
            EfiStatus::ACCESS_DENIED
        );
    }
}

// ---------------------------------------------------------------------------
// LOCK_VARIABLE (docs/reference/mm-protocol.md §9).

#[test]
fn lock_variable_before_end_of_dxe_takes_effect_at_end_of_dxe() {
    let mut s = svc();
    assert_eq!(
        set(&mut s, &vendor(), "Locked", NV_BS_RT, b"1"),
        EfiStatus::SUCCESS
    );
    let resp = call(&mut s, &lock_req(&vendor(), &ucs2("Locked")));
    assert_eq!(status(&resp), EfiStatus::SUCCESS);
    // the reply carries only ReturnStatus
    assert_eq!(
        &reply(&resp)[40..],
        &lock_req(&vendor(), &ucs2("Locked"))[40..]
    );
    // a LOCK_NOW policy, as QEMU builds it (docs/reference/mm-protocol.md §9)
    assert_eq!(
        status(&call(&mut s, &lock_req(&vendor(), &ucs2("Fresh")))),
        EfiStatus::SUCCESS
    );
    let p = s.policies().policies()[0].raw.clone();
    let mut expect = 0x0001_0000u32.to_le_bytes().to_vec();
    expect.extend_from_slice(&(44u16 + 14).to_le_bytes());
    expect.extend_from_slice(&44u16.to_le_bytes());
    expect.extend_from_slice(&vendor().0);
    expect.extend_from_slice(&0u32.to_le_bytes());
    expect.extend_from_slice(&u32::MAX.to_le_bytes());
    expect.extend_from_slice(&[0; 8]);
    expect.extend_from_slice(&[1, 0, 0, 0]);
    expect.extend_from_slice(&ucs2("Locked"));
    assert_eq!(p, expect);
    // not enforced before EndOfDxe
    assert_eq!(
        set(&mut s, &vendor(), "Locked", NV_BS_RT, b"2"),
        EfiStatus::SUCCESS
    );
    end_of_dxe(&mut s);
    assert_eq!(
        set(&mut s, &vendor(), "Locked", NV_BS_RT, b"3"),
        EfiStatus::WRITE_PROTECTED
    );
    assert_eq!(
        delete(&mut s, &vendor(), "Locked"),
        EfiStatus::WRITE_PROTECTED
    );
    assert_eq!(get_data(&mut s, &vendor(), "Locked"), Some(b"2".to_vec()));
    // a locked name that does not exist cannot be created either
    assert_eq!(
        set(&mut s, &vendor(), "Fresh", NV_BS_RT, b"x"),
        EfiStatus::WRITE_PROTECTED
    );
    // other variables are unaffected
    assert_eq!(
        set(&mut s, &other_vendor(), "Locked", NV_BS_RT, b"x"),
        EfiStatus::SUCCESS
    );
    // a reset clears the lock
    s.reset().unwrap();
    assert_eq!(
        set(&mut s, &vendor(), "Locked", NV_BS_RT, b"4"),
        EfiStatus::SUCCESS
    );
}

#[test]
fn lock_variable_framing() {
    let mut s = svc();
    let full = lock_req(&vendor(), &ucs2("Locked"));
    assert_eq!(
        status(&call(&mut s, &with_ml(full.clone(), 39))),
        EfiStatus::BAD_BUFFER_SIZE
    );
    let short = with_ml(full.clone(), u64_at(&full, ML_OFF) - 1);
    assert_eq!(status(&call(&mut s, &short)), EfiStatus::BAD_BUFFER_SIZE);
    let mut p = vendor().0.to_vec();
    p.extend_from_slice(&u64::MAX.to_le_bytes());
    assert_eq!(
        status(&call(&mut s, &var_request(8, &p))),
        EfiStatus::BAD_BUFFER_SIZE
    );
    assert!(s.policies().policies().is_empty());
}

#[test]
fn compat_lock_variable_phase_after_end_of_dxe_is_access_denied() {
    // QEMU: EFI_SUCCESS at any time, and the lock then applies (the OS can
    // lock BootOrder at runtime, docs/reference/limitations.md §2.9).
    let mut s = svc();
    end_of_dxe(&mut s);
    assert_eq!(
        status(&call(&mut s, &lock_req(&global(), &ucs2("BootOrder")))),
        EfiStatus::ACCESS_DENIED
    );
    exit_boot_services(&mut s);
    assert_eq!(
        status(&call(&mut s, &lock_req(&global(), &ucs2("BootOrder")))),
        EfiStatus::ACCESS_DENIED
    );
    assert!(s.policies().policies().is_empty());
    assert_eq!(
        set(&mut s, &global(), "BootOrder", NV_BS_RT, &[0, 0]),
        EfiStatus::SUCCESS
    );
}

#[test]
fn compat_lock_variable_phase_duplicate_lock_is_success() {
    // QEMU: SUCCESS, and a second identical policy is added; we add none.
    let mut s = svc();
    assert_eq!(
        status(&call(&mut s, &lock_req(&vendor(), &ucs2("L")))),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        status(&call(&mut s, &lock_req(&vendor(), &ucs2("L")))),
        EfiStatus::SUCCESS
    );
    assert_eq!(s.policies().policies().len(), 1);
}

#[test]
fn compat_lock_variable_phase_invalid_name() {
    // QEMU does not look at the name at all: SUCCESS.
    let mut s = svc();
    for area in [units(&[0x41, 0x42]), units(&[0xd800, 0]), vec![0x41, 0, 0]] {
        assert_eq!(
            status(&call(&mut s, &lock_req(&vendor(), &area))),
            EfiStatus::INVALID_PARAMETER,
            "{area:?}"
        );
    }
    assert!(s.policies().policies().is_empty());
}

#[test]
fn compat_lock_variable_phase_after_policy_lock() {
    // QEMU ignores policy_locked for LOCK_VARIABLE (SUCCESS); edk2's
    // VariableLockRequestToLock registers a policy, which fails with
    // WRITE_PROTECTED once the policy interface is locked.
    let mut s = svc();
    let mut msg = u32::from_le_bytes(*b"VCPC").to_le_bytes().to_vec();
    msg.extend_from_slice(&1u32.to_le_bytes());
    msg.extend_from_slice(&5u32.to_le_bytes());
    msg.extend_from_slice(&JUNK.to_le_bytes());
    let resp = call(&mut s, &mm(&policy_mmi(), &msg));
    assert_eq!(u64_at(reply(&resp), 36), 0);
    assert_eq!(
        status(&call(&mut s, &lock_req(&vendor(), &ucs2("L")))),
        EfiStatus::WRITE_PROTECTED
    );
}

// ---------------------------------------------------------------------------
// Secure Boot start-up variables (docs/reference/variables.md §7).

#[test]
fn secure_boot_start_up_variables_on_an_empty_store() {
    let mut s = svc();
    let (st, attrs, data) = get(&mut s, &global(), "SetupMode");
    assert_eq!(
        (st, attrs, data),
        (EfiStatus::SUCCESS, BS | RT, Some(vec![1]))
    );
    assert_eq!(
        get(&mut s, &global(), "SecureBoot"),
        (EfiStatus::SUCCESS, BS | RT, Some(vec![0]))
    );
    let (st, attrs, data) = get(&mut s, &global(), "SignatureSupport");
    assert_eq!((st, attrs), (EfiStatus::SUCCESS, BS | RT));
    let expect: Vec<u8> = [
        "c1c41626-504c-4092-aca9-41f936934328", // EFI_CERT_SHA256
        "ff3e5307-9fd0-48c9-85f1-8ad56c701e01", // EFI_CERT_SHA384
        "093e0fae-a6c4-4f50-9f1b-d41e2b89c19a", // EFI_CERT_SHA512
        "3c5766e8-269c-4e34-aa14-ed776e85b3b6", // EFI_CERT_RSA2048
        "a5c059a1-94e4-4aa7-87b5-ab155c2bf072", // EFI_CERT_X509
    ]
    .iter()
    .flat_map(|t| g(t).0)
    .collect();
    assert_eq!(data.unwrap(), expect);
    assert_eq!(expect.len(), 80);
    assert_eq!(
        get(&mut s, &custom_mode_guid(), "CustomMode"),
        (EfiStatus::SUCCESS, NV | BS, Some(vec![0]))
    );
    assert_eq!(
        get(&mut s, &global(), "VendorKeys"),
        (EfiStatus::SUCCESS, BS | RT, Some(vec![0]))
    );
    // VendorKeysNv sits in the global namespace in QEMU
    assert_eq!(
        get(&mut s, &global(), "VendorKeysNv"),
        (EfiStatus::SUCCESS, NV | BS | AT, Some(vec![0]))
    );
    // setup mode: SecureBootEnable is not created
    assert_eq!(
        get(&mut s, &secure_boot_enable_guid(), "SecureBootEnable").0,
        EfiStatus::NOT_FOUND
    );
    assert_eq!(s.store().len(), 6);
}

#[test]
fn secure_boot_start_up_variables_in_user_mode() {
    let mut s = user_mode_service(Config::default());
    assert_eq!(get_data(&mut s, &global(), "SetupMode"), Some(vec![0]));
    assert_eq!(
        get(&mut s, &secure_boot_enable_guid(), "SecureBootEnable"),
        (EfiStatus::SUCCESS, NV | BS, Some(vec![1]))
    );
    assert_eq!(get_data(&mut s, &global(), "SecureBoot"), Some(vec![1]));
    assert_eq!(
        names(&walk(&mut s)),
        [
            "PK",
            "SetupMode",
            "SignatureSupport",
            "SecureBootEnable",
            "SecureBoot",
            "CustomMode",
            "VendorKeysNv",
            "VendorKeys"
        ]
    );
    // SecureBootEnable = 0 takes effect at the next reset
    assert_eq!(
        set(
            &mut s,
            &secure_boot_enable_guid(),
            "SecureBootEnable",
            NV | BS,
            &[0]
        ),
        EfiStatus::SUCCESS
    );
    assert_eq!(get_data(&mut s, &global(), "SecureBoot"), Some(vec![1]));
    s.reset().unwrap();
    assert_eq!(get_data(&mut s, &global(), "SecureBoot"), Some(vec![0]));
    assert_eq!(
        get_data(&mut s, &secure_boot_enable_guid(), "SecureBootEnable"),
        Some(vec![0])
    );
}

#[test]
fn force_secure_boot_in_setup_mode() {
    let mut s = common::in_memory(Config::default().with_force_secure_boot(true));
    assert_eq!(
        get_data(&mut s, &secure_boot_enable_guid(), "SecureBootEnable"),
        Some(vec![1])
    );
    assert_eq!(get_data(&mut s, &global(), "SecureBoot"), Some(vec![0]));
    assert_eq!(get_data(&mut s, &global(), "SetupMode"), Some(vec![1]));
    // a first byte other than 1 is refused
    assert_eq!(
        set(
            &mut s,
            &secure_boot_enable_guid(),
            "SecureBootEnable",
            NV | BS,
            &[0]
        ),
        EfiStatus::WRITE_PROTECTED
    );
    assert_eq!(
        set(
            &mut s,
            &secure_boot_enable_guid(),
            "SecureBootEnable",
            NV | BS,
            &[1]
        ),
        EfiStatus::SUCCESS
    );
}

#[test]
fn disable_custom_mode_refuses_custom_mode_writes() {
    let mut s = common::in_memory(Config::default().with_disable_custom_mode(true));
    assert_eq!(
        set(&mut s, &custom_mode_guid(), "CustomMode", NV | BS, &[1]),
        EfiStatus::WRITE_PROTECTED
    );
    assert_eq!(
        set(&mut s, &custom_mode_guid(), "CustomMode", NV | BS, &[0]),
        EfiStatus::WRITE_PROTECTED
    );
    assert_eq!(
        delete(&mut s, &custom_mode_guid(), "CustomMode"),
        EfiStatus::WRITE_PROTECTED
    );
    let mut s = svc();
    assert_eq!(
        set(&mut s, &custom_mode_guid(), "CustomMode", NV | BS, &[1]),
        EfiStatus::SUCCESS
    );
}

// ---------------------------------------------------------------------------
// Time-based authenticated writes (docs/reference/auth.md §2–§8).

#[test]
fn setup_mode_kek_write_stores_payload_and_timestamp() {
    let mut s = svc();
    let t = efi_time(2025, 3, 4, 5, 6, 7);
    let kek = x509_list(&vendor(), b"kek certificate");
    assert_eq!(
        set(&mut s, &global(), "KEK", SB_DB, &auth2(t, &[], &kek)),
        EfiStatus::SUCCESS
    );
    let (st, attrs, data) = get(&mut s, &global(), "KEK");
    assert_eq!((st, attrs), (EfiStatus::SUCCESS, SB_DB));
    assert_eq!(data.unwrap(), kek, "the descriptor is stripped");
    let stored = s
        .store()
        .iter()
        .find(|v| v.name == VarName::from("KEK"))
        .unwrap();
    assert_eq!(stored.time.0, t);
    // a CertData that is present is not needed in setup mode either
    let db = x509_list(&vendor(), b"db certificate");
    assert_eq!(
        set(
            &mut s,
            &image_security(),
            "db",
            SB_DB,
            &auth2(t, FAKE_PKCS7, &db)
        ),
        EfiStatus::SUCCESS
    );
    assert_eq!(get_data(&mut s, &image_security(), "db"), Some(db));
    // still setup mode
    assert_eq!(get_data(&mut s, &global(), "SetupMode"), Some(vec![1]));
}

#[test]
fn pk_write_in_setup_mode_is_refused() {
    let mut s = svc();
    let t = efi_time(2025, 1, 1, 0, 0, 0);
    let pk = x509_list(&vendor(), b"pk certificate");
    // no CertData at all: SECURITY_VIOLATION in QEMU too
    assert_eq!(
        set(&mut s, &global(), "PK", SB_DB, &auth2(t, &[], &pk)),
        EfiStatus::SECURITY_VIOLATION
    );
    assert_eq!(get(&mut s, &global(), "PK").0, EfiStatus::NOT_FOUND);
    assert_eq!(get_data(&mut s, &global(), "SetupMode"), Some(vec![1]));
}

#[test]
fn compat_no_verifier_refuses_writes_that_need_a_signature() {
    // QEMU verifies these with GnuTLS (a real signature would be accepted);
    // without a PKCS#7 backend we refuse them with SECURITY_VIOLATION. (The
    // blob here is garbage, so any backend refuses it; NoCrypto is set to
    // show that nothing is accepted unverified.)
    let mut s = svc();
    s.set_crypto(Box::new(NoCrypto));
    let t = efi_time(2025, 1, 1, 0, 0, 0);
    // self-signed PK enrolment in setup mode
    let pk = x509_list(&vendor(), b"pk certificate");
    assert_eq!(
        set(&mut s, &global(), "PK", SB_DB, &auth2(t, FAKE_PKCS7, &pk)),
        EfiStatus::SECURITY_VIOLATION
    );
    assert_eq!(get(&mut s, &global(), "PK").0, EfiStatus::NOT_FOUND);
    // a private authenticated variable
    assert_eq!(
        set(
            &mut s,
            &vendor(),
            "Private",
            SB_DB,
            &auth2(t, FAKE_PKCS7, b"v")
        ),
        EfiStatus::SECURITY_VIOLATION
    );
    assert_eq!(get(&mut s, &vendor(), "Private").0, EfiStatus::NOT_FOUND);
    // in user mode, KEK, db and PK updates
    let mut s = user_mode_service(Config::default());
    s.set_crypto(Box::new(NoCrypto));
    let kek = x509_list(&vendor(), b"kek");
    assert_eq!(
        set(&mut s, &global(), "KEK", SB_DB, &auth2(t, FAKE_PKCS7, &kek)),
        EfiStatus::SECURITY_VIOLATION
    );
    assert_eq!(
        set(
            &mut s,
            &image_security(),
            "db",
            SB_DB,
            &auth2(t, FAKE_PKCS7, &kek)
        ),
        EfiStatus::SECURITY_VIOLATION
    );
    assert_eq!(
        set(&mut s, &global(), "PK", SB_DB, &auth2(t, FAKE_PKCS7, &kek)),
        EfiStatus::SECURITY_VIOLATION
    );
    // without CertData it is a violation in QEMU as well
    assert_eq!(
        set(&mut s, &global(), "KEK", SB_DB, &auth2(t, &[], &kek)),
        EfiStatus::SECURITY_VIOLATION
    );
    assert_eq!(get(&mut s, &global(), "KEK").0, EfiStatus::NOT_FOUND);
}

#[test]
fn private_time_auth_variable_write_is_refused() {
    let mut s = svc();
    let t = efi_time(2025, 1, 1, 0, 0, 0);
    assert_eq!(
        set(
            &mut s,
            &vendor(),
            "MyAuthVar",
            NV | BS | AT,
            &auth2(t, &[], b"value")
        ),
        EfiStatus::SECURITY_VIOLATION
    );
    assert_eq!(
        set(
            &mut s,
            &vendor(),
            "MyAuthVar",
            NV | BS | AT,
            &auth2(t, FAKE_PKCS7, b"value")
        ),
        EfiStatus::SECURITY_VIOLATION
    );
    assert_eq!(get(&mut s, &vendor(), "MyAuthVar").0, EfiStatus::NOT_FOUND);
}

#[test]
fn older_timestamp_on_update_is_security_violation() {
    let mut s = svc();
    let t1 = efi_time(2025, 1, 1, 0, 0, 0);
    let t2 = efi_time(2025, 1, 1, 0, 0, 1);
    let a = x509_list(&vendor(), b"a");
    let b = x509_list(&vendor(), b"b");
    assert_eq!(
        set(&mut s, &global(), "KEK", SB_DB, &auth2(t2, &[], &a)),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        set(&mut s, &global(), "KEK", SB_DB, &auth2(t1, &[], &b)),
        EfiStatus::SECURITY_VIOLATION
    );
    assert_eq!(get_data(&mut s, &global(), "KEK"), Some(a.clone()));
    // Year..Second are compared in that order: a later year with an
    // earlier month is later
    let later = efi_time(2026, 1, 1, 0, 0, 0);
    assert_eq!(
        set(&mut s, &global(), "KEK", SB_DB, &auth2(later, &[], &b)),
        EfiStatus::SUCCESS
    );
    let earlier_year = efi_time(2025, 12, 31, 23, 59, 59);
    assert_eq!(
        set(
            &mut s,
            &global(),
            "KEK",
            SB_DB,
            &auth2(earlier_year, &[], &a)
        ),
        EfiStatus::SECURITY_VIOLATION
    );
    assert_eq!(get_data(&mut s, &global(), "KEK"), Some(b));
    let kek = s
        .store()
        .iter()
        .find(|v| v.name == VarName::from("KEK"))
        .unwrap();
    assert_eq!(kek.time.0, later);
}

#[test]
fn compat_replay_equal_timestamp_is_security_violation() {
    // QEMU rejects only old > new (docs/reference/auth.md §3), so replaying the same
    // signed blob is EFI_SUCCESS there; edk2 and we want a strictly later
    // time.
    let mut s = svc();
    let t = efi_time(2025, 6, 1, 12, 0, 0);
    let a = x509_list(&vendor(), b"a");
    let b = x509_list(&vendor(), b"b");
    assert_eq!(
        set(&mut s, &global(), "KEK", SB_DB, &auth2(t, &[], &a)),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        set(&mut s, &global(), "KEK", SB_DB, &auth2(t, &[], &a)),
        EfiStatus::SECURITY_VIOLATION
    );
    assert_eq!(
        set(&mut s, &global(), "KEK", SB_DB, &auth2(t, &[], &b)),
        EfiStatus::SECURITY_VIOLATION
    );
    assert_eq!(get_data(&mut s, &global(), "KEK"), Some(a.clone()));
    // APPEND skips the time check (QEMU too), and keeps the later of the
    // two timestamps (QEMU stores the older new one, rolling time back)
    let older = efi_time(2024, 1, 1, 0, 0, 0);
    assert_eq!(
        set(&mut s, &global(), "KEK", SB_DB | AP, &auth2(older, &[], &b)),
        EfiStatus::SUCCESS
    );
    let kek = s
        .store()
        .iter()
        .find(|v| v.name == VarName::from("KEK"))
        .unwrap();
    assert_eq!(kek.data, [a, b].concat());
    assert_eq!(kek.time.0, t);
    let newer = efi_time(2027, 1, 1, 0, 0, 0);
    let c = x509_list(&vendor(), b"c");
    assert_eq!(
        set(&mut s, &global(), "KEK", SB_DB | AP, &auth2(newer, &[], &c)),
        EfiStatus::SUCCESS
    );
    let kek = s
        .store()
        .iter()
        .find(|v| v.name == VarName::from("KEK"))
        .unwrap();
    assert_eq!(kek.time.0, newer);
}

#[test]
fn authenticated_write_with_an_empty_payload_deletes() {
    let mut s = svc();
    let t = efi_time(2025, 1, 1, 0, 0, 0);
    let kek = x509_list(&vendor(), b"kek");
    assert_eq!(
        set(&mut s, &global(), "KEK", SB_DB, &auth2(t, &[], &kek)),
        EfiStatus::SUCCESS
    );
    let t2 = efi_time(2025, 1, 2, 0, 0, 0);
    assert_eq!(
        set(&mut s, &global(), "KEK", SB_DB, &auth2(t2, &[], &[])),
        EfiStatus::SUCCESS
    );
    assert_eq!(get(&mut s, &global(), "KEK").0, EfiStatus::NOT_FOUND);
    // an authenticated delete of nothing is SUCCESS
    assert_eq!(
        set(&mut s, &global(), "KEK", SB_DB, &auth2(t2, &[], &[])),
        EfiStatus::SUCCESS
    );
}

#[test]
fn malformed_descriptor_sizes_are_security_violation() {
    let mut s = svc();
    let t = efi_time(2025, 1, 1, 0, 0, 0);
    let good = auth2(t, &[], b"payload");
    // DataSize < 40
    assert_eq!(
        set(&mut s, &global(), "KEK", SB_DB, &good[..39]),
        EfiStatus::SECURITY_VIOLATION
    );
    // dwLength < 24
    let bad = auth2_raw(t, 23, 0x0200, 0x0ef1, &pkcs7_guid(), &[], b"payload");
    assert_eq!(
        set(&mut s, &global(), "KEK", SB_DB, &bad),
        EfiStatus::SECURITY_VIOLATION
    );
    // 16 + dwLength beyond DataSize
    let bad = auth2_raw(t, 24 + 100, 0x0200, 0x0ef1, &pkcs7_guid(), &[], b"payload");
    assert_eq!(
        set(&mut s, &global(), "KEK", SB_DB, &bad),
        EfiStatus::SECURITY_VIOLATION
    );
    let bad = auth2_raw(t, u32::MAX, 0x0200, 0x0ef1, &pkcs7_guid(), &[], b"payload");
    assert_eq!(
        set(&mut s, &global(), "KEK", SB_DB, &bad),
        EfiStatus::SECURITY_VIOLATION
    );
    assert_eq!(get(&mut s, &global(), "KEK").0, EfiStatus::NOT_FOUND);
}

#[test]
fn compat_auth_descriptor_bad_header_is_security_violation() {
    // QEMU: EFI_UNSUPPORTED for a wrong wRevision, wCertificateType or
    // CertType GUID (docs/reference/auth.md §2 step 4); edk2 and we: SECURITY_VIOLATION.
    let mut s = svc();
    let t = efi_time(2025, 1, 1, 0, 0, 0);
    let kek = x509_list(&vendor(), b"kek");
    for bad in [
        auth2_raw(t, 24, 0x0100, 0x0ef1, &pkcs7_guid(), &[], &kek),
        auth2_raw(t, 24, 0x0200, 0x0002, &pkcs7_guid(), &[], &kek),
        auth2_raw(t, 24, 0x0200, 0x0ef1, &cert_x509(), &[], &kek),
    ] {
        assert_eq!(
            set(&mut s, &global(), "KEK", SB_DB, &bad),
            EfiStatus::SECURITY_VIOLATION
        );
    }
    assert_eq!(get(&mut s, &global(), "KEK").0, EfiStatus::NOT_FOUND);
}

#[test]
fn compat_auth_time_fields_must_be_zero() {
    // QEMU does not look at Pad1, Nanosecond, TimeZone, Daylight, Pad2: the
    // setup-mode KEK write below would be SUCCESS there.
    let mut s = svc();
    let kek = x509_list(&vendor(), b"kek");
    for byte in [7usize, 8, 9, 10, 11, 12, 13, 14, 15] {
        let mut t = efi_time(2025, 1, 1, 0, 0, 0);
        t[byte] = 1;
        assert_eq!(
            set(&mut s, &global(), "KEK", SB_DB, &auth2(t, &[], &kek)),
            EfiStatus::SECURITY_VIOLATION,
            "byte {byte}"
        );
    }
    assert_eq!(get(&mut s, &global(), "KEK").0, EfiStatus::NOT_FOUND);
}

#[test]
fn compat_unauthenticated_delete_of_authenticated_variables() {
    // QEMU: DataSize 0 deletes any variable, TIME_AUTH or not (SUCCESS);
    // edk2 and we (AuthVariableLib ProcessVarWithPk / ProcessVariable):
    // with attributes 0 INVALID_PARAMETER for PK/KEK/db/dbx/dbt,
    // WRITE_PROTECTED for the other authenticated variables; with the
    // stored attributes SECURITY_VIOLATION (the descriptor check).
    let mut s = svc();
    let t = efi_time(2025, 1, 1, 0, 0, 0);
    let list = x509_list(&vendor(), b"cert");
    assert_eq!(
        set(&mut s, &global(), "KEK", SB_DB, &auth2(t, &[], &list)),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        set(
            &mut s,
            &image_security(),
            "dbx",
            SB_DB,
            &auth2(t, &[], &list)
        ),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        delete(&mut s, &global(), "KEK"),
        EfiStatus::INVALID_PARAMETER
    );
    // with the stored attributes (AT) edk2's descriptor check refuses it
    // first (VariableServiceSetVariable)
    assert_eq!(
        set(&mut s, &image_security(), "dbx", SB_DB, &[]),
        EfiStatus::SECURITY_VIOLATION
    );
    assert_eq!(
        s.last_refusal().unwrap().refusal,
        Refusal::Descriptor(DescriptorFault::Framing)
    );
    // with other attributes it is the attribute comparison
    assert_eq!(
        set(&mut s, &image_security(), "dbx", NV_BS_RT, &[]),
        EfiStatus::INVALID_PARAMETER
    );
    assert_eq!(
        delete(&mut s, &global(), "VendorKeysNv"),
        EfiStatus::WRITE_PROTECTED
    );
    assert_eq!(s.last_refusal().unwrap().refusal, Refusal::ReadOnly);
    // a private authenticated variable (as a store can hold one)
    let var = Variable::new(vendor(), VarName::from("Priv"), SB_DB, b"p".to_vec());
    let text = json::encode(&[&var]).unwrap();
    let mut p = common::new(Config::default(), Box::new(MemoryStorage::from_text(text))).unwrap();
    assert_eq!(
        delete(&mut p, &vendor(), "Priv"),
        EfiStatus::WRITE_PROTECTED
    );
    assert_eq!(
        p.last_refusal().unwrap().refusal,
        Refusal::UnauthenticatedDelete { database: false }
    );
    assert_eq!(
        set(&mut p, &vendor(), "Priv", SB_DB, &[]),
        EfiStatus::SECURITY_VIOLATION
    );
    assert_eq!(get_data(&mut p, &vendor(), "Priv"), Some(b"p".to_vec()));
    assert_eq!(get_data(&mut s, &global(), "KEK"), Some(list.clone()));
    assert_eq!(get_data(&mut s, &image_security(), "dbx"), Some(list));
    assert_eq!(get_data(&mut s, &global(), "VendorKeysNv"), Some(vec![0]));
    // at runtime as well (KEK has RT)
    exit_boot_services(&mut s);
    assert_eq!(
        delete(&mut s, &global(), "KEK"),
        EfiStatus::INVALID_PARAMETER
    );
}

#[test]
fn compat_append_empty_is_a_no_op() {
    // QEMU: APPEND with DataSize 0 deletes the variable (SUCCESS).
    let mut s = svc();
    assert_eq!(
        set(&mut s, &vendor(), "V", NV_BS_RT, b"keep"),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        set(&mut s, &vendor(), "V", NV_BS_RT | AP, &[]),
        EfiStatus::SUCCESS
    );
    assert_eq!(get_data(&mut s, &vendor(), "V"), Some(b"keep".to_vec()));
    // on an authenticated database too
    let t = efi_time(2025, 1, 1, 0, 0, 0);
    let list = x509_list(&vendor(), b"cert");
    assert_eq!(
        set(
            &mut s,
            &image_security(),
            "db",
            SB_DB,
            &auth2(t, &[], &list)
        ),
        EfiStatus::SUCCESS
    );
    // (an authenticated APPEND of nothing still needs its descriptor)
    assert_eq!(
        set(&mut s, &image_security(), "db", SB_DB | AP, &[]),
        EfiStatus::SECURITY_VIOLATION
    );
    let t2 = efi_time(2025, 1, 2, 0, 0, 0);
    assert_eq!(
        set(
            &mut s,
            &image_security(),
            "db",
            SB_DB | AP,
            &auth2(t2, &[], &[])
        ),
        EfiStatus::SUCCESS
    );
    assert_eq!(get_data(&mut s, &image_security(), "db"), Some(list));
    // and of a variable that does not exist
    assert_eq!(
        set(&mut s, &vendor(), "Missing", NV_BS_RT | AP, &[]),
        EfiStatus::SUCCESS
    );
    assert_eq!(get(&mut s, &vendor(), "Missing").0, EfiStatus::NOT_FOUND);
}

#[test]
fn compat_append_merge_keeps_old_data_and_every_type() {
    // QEMU rebuilds the database from its X.509 and SHA-256 entries only
    // (reordered, other types dropped); we keep the old bytes and append the
    // new entries that are not present yet.
    let mut s = svc();
    let t = efi_time(2025, 1, 1, 0, 0, 0);
    let h1 = [0x11; 32];
    let h2 = [0x22; 32];
    // a SHA-384 list (an "other" type QEMU would drop)
    let mut sha384 = g("ff3e5307-9fd0-48c9-85f1-8ad56c701e01").0.to_vec();
    sha384.extend_from_slice(&(28u32 + 64).to_le_bytes());
    sha384.extend_from_slice(&0u32.to_le_bytes());
    sha384.extend_from_slice(&64u32.to_le_bytes());
    sha384.extend_from_slice(&vendor().0);
    sha384.extend_from_slice(&[0x33; 48]);
    let old = [
        sha256_list(&vendor(), &[h1]),
        sha384.clone(),
        x509_list(&vendor(), b"A"),
    ]
    .concat();
    assert_eq!(
        set(&mut s, &image_security(), "db", SB_DB, &auth2(t, &[], &old)),
        EfiStatus::SUCCESS
    );
    let new = [
        sha256_list(&vendor(), &[h1, h2]),
        x509_list(&vendor(), b"A"),
        x509_list(&vendor(), b"B"),
    ]
    .concat();
    assert_eq!(
        set(
            &mut s,
            &image_security(),
            "db",
            SB_DB | AP,
            &auth2(t, &[], &new)
        ),
        EfiStatus::SUCCESS
    );
    let expect = [
        old.clone(),
        sha256_list(&vendor(), &[h2]),
        x509_list(&vendor(), b"B"),
    ]
    .concat();
    assert_eq!(
        get_data(&mut s, &image_security(), "db"),
        Some(expect.clone())
    );
    // appending it all again changes nothing
    assert_eq!(
        set(
            &mut s,
            &image_security(),
            "db",
            SB_DB | AP,
            &auth2(t, &[], &new)
        ),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        get_data(&mut s, &image_security(), "db"),
        Some(expect.clone())
    );
    // a malformed list cannot be merged
    assert_eq!(
        set(
            &mut s,
            &image_security(),
            "db",
            SB_DB | AP,
            &auth2(t, &[], &[1, 2, 3])
        ),
        EfiStatus::INVALID_PARAMETER
    );
    assert_eq!(get_data(&mut s, &image_security(), "db"), Some(expect));
}

#[test]
fn custom_mode_allows_unsigned_secure_boot_writes_and_pk_enrolment_resets_it() {
    let mut s = user_mode_service(Config::default());
    let t = efi_time(2025, 1, 1, 0, 0, 0);
    let kek = x509_list(&vendor(), b"kek");
    assert_eq!(
        set(&mut s, &global(), "KEK", SB_DB, &auth2(t, &[], &kek)),
        EfiStatus::SECURITY_VIOLATION
    );
    // CustomMode is NV|BS and needs no authentication before EBS
    assert_eq!(
        set(&mut s, &custom_mode_guid(), "CustomMode", NV | BS, &[1]),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        set(&mut s, &global(), "KEK", SB_DB, &auth2(t, &[], &kek)),
        EfiStatus::SUCCESS
    );
    // the descriptor must still be well formed
    let bad = auth2_raw(t, 24, 0x0100, 0x0ef1, &pkcs7_guid(), &[], &kek);
    assert_eq!(
        set(&mut s, &global(), "KEK", SB_DB, &bad),
        EfiStatus::SECURITY_VIOLATION
    );
    // a PK write reruns the state initialisation: CustomMode back to 0
    let pk = x509_list(&vendor(), b"new pk");
    assert_eq!(
        set(&mut s, &global(), "PK", SB_DB, &auth2(t, &[], &pk)),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        get_data(&mut s, &custom_mode_guid(), "CustomMode"),
        Some(vec![0])
    );
    assert_eq!(get_data(&mut s, &global(), "PK"), Some(pk));
}

#[test]
fn compat_pk_delete_mode_switches_back_to_setup_mode_at_once() {
    // QEMU reruns the state initialisation only when PK is written, not when
    // it is deleted: SetupMode stays 0 and SecureBoot 1 until the next reset
    // (docs/reference/auth.md §6). edk2 and we switch to setup mode immediately.
    let mut s = user_mode_service(Config::default());
    assert_eq!(get_data(&mut s, &global(), "SecureBoot"), Some(vec![1]));
    // custom mode: an unsigned authenticated delete of PK
    assert_eq!(
        set(&mut s, &custom_mode_guid(), "CustomMode", NV | BS, &[1]),
        EfiStatus::SUCCESS
    );
    let t = efi_time(2025, 1, 1, 0, 0, 0);
    assert_eq!(
        set(&mut s, &global(), "PK", SB_DB, &auth2(t, &[], &[])),
        EfiStatus::SUCCESS
    );
    assert_eq!(get(&mut s, &global(), "PK").0, EfiStatus::NOT_FOUND);
    assert_eq!(get_data(&mut s, &global(), "SetupMode"), Some(vec![1]));
    assert_eq!(get_data(&mut s, &global(), "SecureBoot"), Some(vec![0]));
    assert_eq!(
        get_data(&mut s, &custom_mode_guid(), "CustomMode"),
        Some(vec![0])
    );
    // back in setup mode, KEK needs no signature
    let kek = x509_list(&vendor(), b"kek");
    assert_eq!(
        set(&mut s, &global(), "KEK", SB_DB, &auth2(t, &[], &kek)),
        EfiStatus::SUCCESS
    );
}

#[test]
fn pk_enrolment_in_custom_mode_leaves_setup_mode_immediately() {
    let mut s = svc();
    let t = efi_time(2025, 1, 1, 0, 0, 0);
    assert_eq!(
        set(&mut s, &custom_mode_guid(), "CustomMode", NV | BS, &[1]),
        EfiStatus::SUCCESS
    );
    let pk = x509_list(&vendor(), b"pk");
    assert_eq!(
        set(&mut s, &global(), "PK", SB_DB, &auth2(t, &[], &pk)),
        EfiStatus::SUCCESS
    );
    assert_eq!(get_data(&mut s, &global(), "SetupMode"), Some(vec![0]));
    assert_eq!(
        get_data(&mut s, &secure_boot_enable_guid(), "SecureBootEnable"),
        Some(vec![1])
    );
    assert_eq!(get_data(&mut s, &global(), "SecureBoot"), Some(vec![1]));
    assert_eq!(
        get_data(&mut s, &custom_mode_guid(), "CustomMode"),
        Some(vec![0])
    );
    // re-appended after PK
    assert!(names(&walk(&mut s)).ends_with(&[
        "PK",
        "SetupMode",
        "SignatureSupport",
        "SecureBootEnable",
        "SecureBoot",
        "CustomMode",
        "VendorKeysNv",
        "VendorKeys"
    ]));
}

// ---------------------------------------------------------------------------
// 32-bit guests: UINTN is 4 bytes (codec::Layout::IA32). The MM header is
// GUID + u32 MessageLength (20 bytes); Function and ReturnStatus are u32 at
// 20 and 24; error statuses carry bit 31.

mod ia32 {
    use super::*;

    const ML: usize = 16;
    const STATUS: usize = 24;
    // ACCESS_VARIABLE: GUID 28, DataSize 44, NameSize 48, Attributes 52, Name 56
    const DATA_SIZE: usize = 44;
    const ATTR: usize = 52;
    const NAME: usize = 56;
    // GET_NEXT: GUID 28, NameSize 44, Name 48
    const NEXT_NAME_SIZE: usize = 44;
    const NEXT_NAME: usize = 48;

    fn svc32() -> Service {
        common::in_memory(Config::default().with_layout(Layout::IA32))
    }

    fn req(function: u32, payload: &[u8]) -> Vec<u8> {
        let mut msg = function.to_le_bytes().to_vec();
        msg.extend_from_slice(&0xafaf_afafu32.to_le_bytes());
        msg.extend_from_slice(payload);
        let mut v = smm_variable().0.to_vec();
        v.extend_from_slice(&(msg.len() as u32).to_le_bytes());
        v.extend_from_slice(&msg);
        v
    }

    fn access32(guid: &Guid, data_size: u32, name: &[u8], attrs: u32, data: &[u8]) -> Vec<u8> {
        let mut p = guid.0.to_vec();
        p.extend_from_slice(&data_size.to_le_bytes());
        p.extend_from_slice(&(name.len() as u32).to_le_bytes());
        p.extend_from_slice(&attrs.to_le_bytes());
        p.extend_from_slice(name);
        p.extend_from_slice(data);
        p
    }

    fn run(s: &mut Service, r: &[u8]) -> (u32, Vec<u8>) {
        let resp = s.communicate(r);
        assert_eq!(resp.status, DeviceStatus::Success);
        let out = resp.reply.unwrap();
        assert_eq!(out.len(), 20 + u32_at(r, ML) as usize);
        (u32_at(&out, STATUS), out)
    }

    #[test]
    fn ia32_set_get_round_trip() {
        let mut s = svc32();
        let n = ucs2("Var32");
        let (st, _) = run(
            &mut s,
            &req(3, &access32(&vendor(), 3, &n, NV_BS_RT, b"abc")),
        );
        assert_eq!(st, 0);
        let (st, r) = run(&mut s, &req(1, &access32(&vendor(), 16, &n, 0, &[0; 16])));
        assert_eq!(st, 0);
        assert_eq!(u32_at(&r, DATA_SIZE), 3);
        assert_eq!(u32_at(&r, ATTR), NV_BS_RT);
        assert_eq!(&r[NAME + n.len()..NAME + n.len() + 3], b"abc");
        // the 64-bit-layout view of the same store
        assert_eq!(s.store().iter().last().unwrap().data, b"abc");
    }

    #[test]
    fn ia32_error_statuses_use_bit_31() {
        let mut s = svc32();
        let n = ucs2("Missing");
        let (st, _) = run(&mut s, &req(1, &access32(&vendor(), 8, &n, 0, &[0; 8])));
        assert_eq!(st, 0x8000_000e, "NOT_FOUND");
        let n = ucs2("SetupMode");
        let (st, r) = run(&mut s, &req(1, &access32(&global(), 0, &n, 0, &[])));
        assert_eq!(st, 0x8000_0005, "BUFFER_TOO_SMALL");
        assert_eq!(u32_at(&r, DATA_SIZE), 1);
        assert_eq!(u32_at(&r, ATTR), BS | RT);
        let (st, _) = run(&mut s, &req(7, &[]));
        assert_eq!(st, 0x8000_0003, "UNSUPPORTED");
        let (st, _) = run(
            &mut s,
            &req(3, &access32(&vendor(), 1, &ucs2("X"), NV_BS_RT | AW, b"x")),
        );
        assert_eq!(st, 0x8000_0003, "UNSUPPORTED attribute");
        // the 36-byte x64 header minimum does not apply: 8 + 28 does
        let (st, _) = run(&mut s, &req(1, &[0; 27]));
        assert_eq!(st, 0x8000_0004, "BAD_BUFFER_SIZE");
    }

    #[test]
    fn ia32_short_message_is_device_bad_buffer_size() {
        let mut s = svc32();
        let mut r = req(1, &[]);
        r[ML..ML + 4].copy_from_slice(&7u32.to_le_bytes());
        r.truncate(27);
        let resp = s.communicate(&r);
        assert_eq!(resp.status, DeviceStatus::ErrBadBufferSize);
        assert_eq!(resp.reply.as_deref(), Some(&r[..]));
    }

    #[test]
    fn ia32_get_next_and_payload_size() {
        let mut s = svc32();
        let mut p = Guid::default().0.to_vec();
        p.extend_from_slice(&4u32.to_le_bytes());
        p.extend_from_slice(&[0; 4]);
        let (st, r) = run(&mut s, &req(2, &p));
        assert_eq!(st, 0x8000_0005);
        assert_eq!(u32_at(&r, NEXT_NAME_SIZE), 20);
        let mut p = Guid::default().0.to_vec();
        p.extend_from_slice(&20u32.to_le_bytes());
        p.extend_from_slice(&[0; 20]);
        let (st, r) = run(&mut s, &req(2, &p));
        assert_eq!(st, 0);
        assert_eq!(decode_name(&r[NEXT_NAME..]), "SetupMode");
        // BUFFER_SIZE − 20 − 8
        let (st, r) = run(&mut s, &req(11, &[0; 4]));
        assert_eq!(st, 0);
        assert_eq!(u32_at(&r, 28), 65536 - 20 - 8);
    }

    #[test]
    fn ia32_policy_result_is_a_u32() {
        let mut s = svc32();
        let mut msg = u32::from_le_bytes(*b"VCPC").to_le_bytes().to_vec();
        msg.extend_from_slice(&1u32.to_le_bytes());
        msg.extend_from_slice(&99u32.to_le_bytes());
        msg.extend_from_slice(&0xafaf_afafu32.to_le_bytes());
        let mut r = policy_mmi().0.to_vec();
        r.extend_from_slice(&(msg.len() as u32).to_le_bytes());
        r.extend_from_slice(&msg);
        let resp = s.communicate(&r);
        assert_eq!(resp.status, DeviceStatus::Success);
        assert_eq!(u32_at(&resp.reply.unwrap(), 32), 0x8000_0003);
    }
}
