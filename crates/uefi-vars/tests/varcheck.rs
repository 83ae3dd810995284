//! VarCheck through `Service::communicate`: the property functions
//! VAR_CHECK_VARIABLE_PROPERTY_SET (9) and _GET (10), their enforcement in
//! SetVariable, the properties and data checks of the UEFI-defined
//! variables, and the runtime-cache functions (12-14), as edk2's
//! SmmVariableHandler (MdeModulePkg/Universal/Variable/RuntimeDxe/
//! VariableSmm.c), VarCheckLib (MdeModulePkg/Library/VarCheckLib/
//! VarCheckLib.c) and VarCheckUefiLib (MdeModulePkg/Library/VarCheckUefiLib/
//! VarCheckUefiLibNullClass.c) answer them at edk2-stable202605. QEMU
//! answers EFI_UNSUPPORTED to all of these functions and checks nothing
//! of this (docs/compat.md varcheck-property, uefi-defined-variables,
//! varcheck-before-lookup, runtime-cache).
//!
//! Requests are built byte by byte (X64 layout: MM header 24 bytes,
//! Function at 24, ReturnStatus at 32, payload at 40).

mod common;

use std::str::FromStr;

use uefi_vars::guid::Guid;
use uefi_vars::{Config, EfiStatus, MmResponse, Service};

const NV: u32 = 0x01;
const BS: u32 = 0x02;
const RT: u32 = 0x04;
const HR: u32 = 0x08;
const AP: u32 = 0x40;
const NV_BS_RT: u32 = NV | BS | RT;
const JUNK: u64 = 0xafaf_afaf_afaf_afaf;
const STATUS: usize = 32;
const PAYLOAD: usize = 40;
/// SMM_VARIABLE_COMMUNICATE_VAR_CHECK_VARIABLE_PROPERTY (X64): Guid,
/// NameSize @16, Revision @24, Property @26, Attributes @28, MinSize @32,
/// MaxSize @40, Name @48 (payload-relative).
const PROP_NAME: usize = 48;

fn g(text: &str) -> Guid {
    Guid::from_str(text).unwrap()
}
fn smm_variable() -> Guid {
    g("ed32d533-99e6-4209-9cc0-2d72cdd998a7")
}
fn global() -> Guid {
    g("8be4df61-93ca-11d2-aa0d-00e098032b8c")
}
fn hw_error() -> Guid {
    g("414e6bdd-e47b-47cc-b244-bb61020cf516")
}
fn vendor() -> Guid {
    g("11111111-2222-3333-4444-555555555555")
}

fn ucs2(s: &str) -> Vec<u8> {
    s.encode_utf16()
        .chain(std::iter::once(0))
        .flat_map(u16::to_le_bytes)
        .collect()
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}

fn var_request(function: u64, payload: &[u8]) -> Vec<u8> {
    let mut m = function.to_le_bytes().to_vec();
    m.extend_from_slice(&JUNK.to_le_bytes());
    m.extend_from_slice(payload);
    let mut v = smm_variable().0.to_vec();
    v.extend_from_slice(&(m.len() as u64).to_le_bytes());
    v.extend_from_slice(&m);
    v
}

fn svc() -> Service {
    common::in_memory(Config::default())
}

fn call(s: &mut Service, req: &[u8]) -> MmResponse {
    let resp = s.communicate(req);
    assert_eq!(resp.reply.as_ref().map(Vec::len), Some(req.len()));
    resp
}

fn status(resp: &MmResponse) -> EfiStatus {
    EfiStatus(u64_at(resp.reply.as_ref().unwrap(), STATUS))
}

fn set(s: &mut Service, guid: &Guid, name: &str, attrs: u32, data: &[u8]) -> EfiStatus {
    let n = ucs2(name);
    let mut p = guid.0.to_vec();
    p.extend_from_slice(&(data.len() as u64).to_le_bytes());
    p.extend_from_slice(&(n.len() as u64).to_le_bytes());
    p.extend_from_slice(&attrs.to_le_bytes());
    p.extend_from_slice(&n);
    p.extend_from_slice(data);
    status(&call(s, &var_request(3, &p)))
}

fn end_of_dxe(s: &mut Service) {
    let mut v = g("02ce967a-dd7e-4ffc-9ee7-810cf0470880").0.to_vec();
    v.extend_from_slice(&1u64.to_le_bytes());
    v.push(0);
    call(s, &v);
    assert!(s.phase().end_of_dxe);
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Prop {
    revision: u16,
    flags: u16,
    attributes: u32,
    min: u64,
    max: u64,
}

const fn prop(attributes: u32, min: u64, max: u64) -> Prop {
    Prop {
        revision: 1,
        flags: 0,
        attributes,
        min,
        max,
    }
}

fn property_payload(guid: &Guid, name: &[u8], p: Prop) -> Vec<u8> {
    let mut v = guid.0.to_vec();
    v.extend_from_slice(&(name.len() as u64).to_le_bytes());
    v.extend_from_slice(&p.revision.to_le_bytes());
    v.extend_from_slice(&p.flags.to_le_bytes());
    v.extend_from_slice(&p.attributes.to_le_bytes());
    v.extend_from_slice(&p.min.to_le_bytes());
    v.extend_from_slice(&p.max.to_le_bytes());
    v.extend_from_slice(name);
    v
}

fn property_set(s: &mut Service, guid: &Guid, name: &str, p: Prop) -> EfiStatus {
    status(&call(
        s,
        &var_request(9, &property_payload(guid, &ucs2(name), p)),
    ))
}

/// GET: the status and the property as written back.
fn property_get(s: &mut Service, guid: &Guid, name: &str) -> (EfiStatus, Prop) {
    let junk = Prop {
        revision: 0xeeee,
        flags: 0xeeee,
        attributes: 0xeeee_eeee,
        min: JUNK,
        max: JUNK,
    };
    let resp = call(
        s,
        &var_request(10, &property_payload(guid, &ucs2(name), junk)),
    );
    let r = resp.reply.as_ref().unwrap();
    let q = PAYLOAD + 24;
    let p = Prop {
        revision: u16::from_le_bytes([r[q], r[q + 1]]),
        flags: u16::from_le_bytes([r[q + 2], r[q + 3]]),
        attributes: u32::from_le_bytes(r[q + 4..q + 8].try_into().unwrap()),
        min: u64_at(r, q + 8),
        max: u64_at(r, q + 16),
    };
    (status(&resp), p)
}

/// EFI_LOAD_OPTION: Attributes, FilePathListLength, Description, FilePathList.
fn load_option(description: &str, path: &[u8]) -> Vec<u8> {
    let mut d = 1u32.to_le_bytes().to_vec();
    d.extend_from_slice(&(path.len() as u16).to_le_bytes());
    d.extend_from_slice(&ucs2(description));
    d.extend_from_slice(path);
    d
}

/// PciRoot(0)/Pci(0x1,0x0) and the End-Entire node.
const DEVICE_PATH: [u8; 22] = [
    2, 1, 12, 0, 0xd0, 0x41, 0x03, 0x0a, 0, 0, 0, 0, 1, 1, 6, 0, 0, 1, 0x7f, 0xff, 4, 0,
];

// ---------------------------------------------------------------------------
// Functions 9 and 10 (VarCheckLibVariablePropertySet / Get).

/// compat: varcheck-property. SET stores a property, GET returns it, and
/// after EndOfDxe VarCheckLibSetVariableCheck enforces it (QEMU: both
/// functions EFI_UNSUPPORTED, the writes accepted).
#[test]
fn compat_varcheck_property_set_get_and_enforce() {
    let mut s = svc();
    let p = prop(NV | BS, 2, 4);
    assert_eq!(
        property_set(&mut s, &vendor(), "Sized", p),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        property_get(&mut s, &vendor(), "Sized"),
        (EfiStatus::SUCCESS, p)
    );
    // Before EndOfDxe nothing is checked.
    assert_eq!(
        set(&mut s, &vendor(), "Sized", NV_BS_RT, &[1; 8]),
        EfiStatus::SUCCESS
    );
    assert_eq!(set(&mut s, &vendor(), "Sized", 0, &[]), EfiStatus::SUCCESS);
    end_of_dxe(&mut s);
    for (attrs, len, want) in [
        (NV | BS, 1, EfiStatus::INVALID_PARAMETER),
        (NV | BS, 5, EfiStatus::INVALID_PARAMETER),
        (NV_BS_RT, 3, EfiStatus::INVALID_PARAMETER),
        (NV | BS, 3, EfiStatus::SUCCESS),
    ] {
        assert_eq!(
            set(&mut s, &vendor(), "Sized", attrs, &vec![7; len]),
            want,
            "attributes {attrs:#x}, {len} bytes"
        );
    }
    assert!(s.store().iter().any(|v| v.name.to_string() == "Sized"));
    // A delete skips the attribute and size checks.
    assert_eq!(set(&mut s, &vendor(), "Sized", 0, &[]), EfiStatus::SUCCESS);
}

/// compat: varcheck-property. A read-only property: every write, deletes
/// too, is EFI_WRITE_PROTECTED from EndOfDxe on (VarCheckFromUntrusted).
#[test]
fn compat_varcheck_property_read_only() {
    let mut s = svc();
    assert_eq!(
        set(&mut s, &vendor(), "Frozen", NV | BS, &[1]),
        EfiStatus::SUCCESS
    );
    let ro = Prop {
        flags: 1,
        ..prop(0, 0, u64::MAX)
    };
    assert_eq!(
        property_set(&mut s, &vendor(), "Frozen", ro),
        EfiStatus::SUCCESS
    );
    end_of_dxe(&mut s);
    assert_eq!(
        set(&mut s, &vendor(), "Frozen", NV | BS, &[2]),
        EfiStatus::WRITE_PROTECTED
    );
    assert_eq!(
        set(&mut s, &vendor(), "Frozen", 0, &[]),
        EfiStatus::WRITE_PROTECTED
    );
}

/// compat: varcheck-property. SmmVariableHandler refuses SET from
/// EndOfDxe on (before reading anything); VarCheckLibVariablePropertySet
/// wants a name and Revision 1; GET answers what is registered.
#[test]
fn compat_varcheck_property_registration_rules() {
    let mut s = svc();
    let p = prop(0, 1, 8);
    assert_eq!(
        property_set(&mut s, &vendor(), "", p),
        EfiStatus::INVALID_PARAMETER
    );
    assert_eq!(
        property_set(&mut s, &vendor(), "V", Prop { revision: 2, ..p }),
        EfiStatus::INVALID_PARAMETER
    );
    assert_eq!(property_get(&mut s, &vendor(), "V").0, EfiStatus::NOT_FOUND);
    // Setting again replaces the property.
    assert_eq!(property_set(&mut s, &vendor(), "V", p), EfiStatus::SUCCESS);
    let q = prop(NV | BS, 1, 2);
    assert_eq!(property_set(&mut s, &vendor(), "V", q), EfiStatus::SUCCESS);
    assert_eq!(
        property_get(&mut s, &vendor(), "V"),
        (EfiStatus::SUCCESS, q)
    );
    end_of_dxe(&mut s);
    assert_eq!(
        property_set(&mut s, &vendor(), "W", p),
        EfiStatus::ACCESS_DENIED
    );
    assert_eq!(property_get(&mut s, &vendor(), "W").0, EfiStatus::NOT_FOUND);
    // A reset forgets the guest's properties and opens registration.
    s.reset().unwrap();
    assert_eq!(property_get(&mut s, &vendor(), "V").0, EfiStatus::NOT_FOUND);
    assert_eq!(property_set(&mut s, &vendor(), "W", p), EfiStatus::SUCCESS);
}

/// compat: varcheck-property. GET's own framing in SmmVariableHandler: a
/// payload shorter than the fixed part is not answered (ReturnStatus
/// stays as sent); a NameSize past the payload, below 2, or whose last
/// unit is not NUL is EFI_ACCESS_DENIED.
#[test]
fn compat_varcheck_property_get_framing() {
    let mut s = svc();
    let short = var_request(10, &[0; PROP_NAME - 1]);
    assert_eq!(status(&call(&mut s, &short)), EfiStatus(JUNK));
    let name = ucs2("Lang");
    let mut p = property_payload(&global(), &name, prop(0, 0, 0));
    p[16..24].copy_from_slice(&((name.len() + 2) as u64).to_le_bytes());
    assert_eq!(
        status(&call(&mut s, &var_request(10, &p))),
        EfiStatus::ACCESS_DENIED
    );
    p[16..24].copy_from_slice(&1u64.to_le_bytes());
    assert_eq!(
        status(&call(&mut s, &var_request(10, &p))),
        EfiStatus::ACCESS_DENIED
    );
    let mut p = property_payload(&global(), &name, prop(0, 0, 0));
    p[16..24].copy_from_slice(&((name.len() - 2) as u64).to_le_bytes());
    assert_eq!(
        status(&call(&mut s, &var_request(10, &p))),
        EfiStatus::ACCESS_DENIED
    );
    assert_eq!(
        property_get(&mut s, &global(), "Lang").0,
        EfiStatus::SUCCESS
    );
}

// ---------------------------------------------------------------------------
// VarCheckUefiLib (VariablePropertySetUefiDefined, SetVariableCheckHandlerUefiDefined).

/// compat: uefi-defined-variables. The properties VarCheckUefiLib
/// registers at start-up, as GET reports them (MAX_UINTN as u64::MAX).
#[test]
fn compat_uefi_defined_variables_properties() {
    let mut s = svc();
    let any = u64::MAX;
    let at = NV_BS_RT | 0x20;
    for (guid, name, want) in [
        (global(), "BootOrder", prop(NV_BS_RT, 2, any)),
        (global(), "Boot0001", prop(NV_BS_RT, 6, any)),
        (global(), "BootFFFF", prop(NV_BS_RT, 6, any)),
        (global(), "Key0000", prop(NV_BS_RT, 10, 22)),
        (global(), "ConIn", prop(NV_BS_RT, 4, any)),
        (global(), "ConOutDev", prop(BS | RT, 4, any)),
        (global(), "Lang", prop(NV_BS_RT, 1, any)),
        (global(), "PlatformLangCodes", prop(BS | RT, 1, any)),
        (global(), "Timeout", prop(NV_BS_RT, 2, 2)),
        (global(), "OsIndications", prop(NV_BS_RT, 8, 8)),
        (global(), "PK", prop(at, 1, any)),
        (
            g("d719b2cb-3d3a-4596-a3bc-dad00e67656f"),
            "dbx",
            prop(at, 1, any),
        ),
        (hw_error(), "HwErrRec0001", prop(NV_BS_RT | HR, 1, any)),
        (
            global(),
            "SecureBoot",
            Prop {
                flags: 1,
                ..prop(BS | RT, 1, 1)
            },
        ),
    ] {
        assert_eq!(
            property_get(&mut s, &guid, name),
            (EfiStatus::SUCCESS, want),
            "{name}"
        );
    }
    // The wildcard wants upper-case hex digits (VarCheckInternalIsHexaDecimalDigitCharacter).
    for name in ["Boot000a", "BootNope", "Mine"] {
        assert_eq!(
            property_get(&mut s, &global(), name).0,
            EfiStatus::NOT_FOUND,
            "{name}"
        );
    }
}

/// compat: uefi-defined-variables. After EndOfDxe, a Boot#### that is not
/// a load option and an odd-sized BootOrder are refused as
/// InternalVarCheckLoadOption and InternalVarCheckSizeArray refuse them;
/// well-formed ones are stored.
#[test]
fn compat_uefi_defined_variables_boot_options() {
    let mut s = svc();
    end_of_dxe(&mut s);
    let good = load_option("UEFI Shell", &DEVICE_PATH);
    assert_eq!(
        set(&mut s, &global(), "Boot0001", NV_BS_RT, &good),
        EfiStatus::SUCCESS
    );
    let mut no_end = load_option("x", &DEVICE_PATH[..18]);
    assert_eq!(
        set(&mut s, &global(), "Boot0002", NV_BS_RT, &no_end),
        EfiStatus::INVALID_PARAMETER
    );
    no_end.truncate(5);
    assert_eq!(
        set(&mut s, &global(), "Boot0002", NV_BS_RT, &no_end),
        EfiStatus::INVALID_PARAMETER,
        "below MinSize"
    );
    let mut long = good.clone();
    long[4] = 200; // FilePathListLength past the data
    assert_eq!(
        set(&mut s, &global(), "Boot0003", NV_BS_RT, &long),
        EfiStatus::INVALID_PARAMETER
    );
    assert_eq!(
        set(&mut s, &global(), "Boot0004", NV | BS, &good),
        EfiStatus::INVALID_PARAMETER,
        "attributes must be NV+BS+RT"
    );
    assert_eq!(
        set(&mut s, &global(), "BootOrder", NV_BS_RT, &[1, 0, 2]),
        EfiStatus::INVALID_PARAMETER
    );
    assert_eq!(
        set(&mut s, &global(), "BootOrder", NV_BS_RT, &[1, 0]),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        set(&mut s, &global(), "BootOrder", NV_BS_RT | AP, &[2]),
        EfiStatus::INVALID_PARAMETER,
        "an APPEND is checked as a write"
    );
    let names: Vec<String> = s.store().iter().map(|v| v.name.to_string()).collect();
    assert!(names.contains(&"Boot0001".to_string()));
    assert!(!names.contains(&"Boot0002".to_string()));
}

/// compat: uefi-defined-variables. Other data checks and the namespaces
/// VarCheckUefiLib owns.
#[test]
fn compat_uefi_defined_variables_namespaces_and_data() {
    let mut s = svc();
    // Before EndOfDxe everything goes.
    assert_eq!(
        set(&mut s, &global(), "NotDefined", NV_BS_RT, &[1]),
        EfiStatus::SUCCESS
    );
    end_of_dxe(&mut s);
    for (guid, name, attrs, data, want) in [
        (
            global(),
            "NotDefined",
            NV_BS_RT,
            &[1u8][..],
            EfiStatus::INVALID_PARAMETER,
        ),
        (
            global(),
            "Lang",
            NV_BS_RT,
            b"eng",
            EfiStatus::INVALID_PARAMETER,
        ),
        (global(), "Lang", NV_BS_RT, b"eng\0", EfiStatus::SUCCESS),
        (
            global(),
            "Timeout",
            NV_BS_RT,
            &[1, 0, 0],
            EfiStatus::INVALID_PARAMETER,
        ),
        (
            global(),
            "ConIn",
            NV_BS_RT,
            &DEVICE_PATH[..18],
            EfiStatus::INVALID_PARAMETER,
        ),
        (
            global(),
            "ConIn",
            NV_BS_RT,
            &DEVICE_PATH,
            EfiStatus::SUCCESS,
        ),
        (
            global(),
            "SetupMode",
            BS | RT,
            &[0],
            EfiStatus::WRITE_PROTECTED,
        ),
        (
            hw_error(),
            "HwErrRec0001",
            NV_BS_RT | HR,
            &[1],
            EfiStatus::SUCCESS,
        ),
        (
            hw_error(),
            "Other",
            NV_BS_RT,
            &[1],
            EfiStatus::INVALID_PARAMETER,
        ),
        (
            vendor(),
            "HwErrRec0001",
            NV_BS_RT | HR,
            &[1],
            EfiStatus::INVALID_PARAMETER,
        ),
        (vendor(), "Anything", NV_BS_RT, &[1], EfiStatus::SUCCESS),
    ] {
        assert_eq!(
            set(&mut s, &guid, name, attrs, data),
            want,
            "{name} {data:?}"
        );
    }
    // Deleting one the check would refuse to write is allowed.
    assert_eq!(
        set(&mut s, &global(), "NotDefined", 0, &[]),
        EfiStatus::SUCCESS
    );
}

/// compat: varcheck-before-lookup. edk2 calls VarCheckLibSetVariableCheck
/// before it looks the variable up: a BootOrder write with other
/// attributes than the stored ones gets VarCheck's refusal, whatever the
/// store holds.
#[test]
fn compat_varcheck_before_lookup() {
    let mut s = svc();
    assert_eq!(
        set(&mut s, &global(), "Mine", NV_BS_RT, &[1]),
        EfiStatus::SUCCESS
    );
    end_of_dxe(&mut s);
    // QEMU: EFI_INVALID_PARAMETER (attributes differ); edk2: VarCheck's
    // EFI_INVALID_PARAMETER for a global variable without a property, the
    // same code for another reason; and for a read-only one:
    assert_eq!(
        set(&mut s, &global(), "VendorKeys", NV | BS, &[1]),
        EfiStatus::WRITE_PROTECTED
    );
    assert_eq!(
        set(&mut s, &global(), "Mine", BS | RT, &[1]),
        EfiStatus::INVALID_PARAMETER
    );
}

/// The real OVMF boot's writes pass VarCheckUefiLib: a Key#### of one key
/// (14 bytes: the packed 10-byte EFI_KEY_OPTION and one EFI_INPUT_KEY),
/// as tests/data/ovmf-2boots-empty.pcap.gz writes it after EndOfDxe.
#[test]
fn uefi_defined_key_option_as_ovmf_writes_it() {
    let mut s = svc();
    end_of_dxe(&mut s);
    let key = [0, 0, 0, 0x40, 0x8c, 0x2d, 0xb6, 0x6b, 0, 0, 0x0c, 0, 0, 0];
    assert_eq!(
        set(&mut s, &global(), "Key0000", NV_BS_RT, &key),
        EfiStatus::SUCCESS
    );
    assert_eq!(
        set(&mut s, &global(), "Key0001", NV_BS_RT, &key[..12]),
        EfiStatus::INVALID_PARAMETER
    );
}

// ---------------------------------------------------------------------------
// GET_STATISTICS and the runtime cache.

/// GET_STATISTICS (7): SmmVariableGetStatistics without statistics
/// collected (gVariableInfo NULL) is EFI_UNSUPPORTED, as QEMU answers.
/// SYNC_RUNTIME_CACHE (13): FlushPendingRuntimeVariableCacheUpdates
/// without a cache context, EFI_UNSUPPORTED too.
#[test]
fn get_statistics_and_sync_runtime_cache_are_unsupported() {
    let mut s = svc();
    for function in [7, 13] {
        assert_eq!(
            status(&call(&mut s, &var_request(function, &[0; 64]))),
            EfiStatus::UNSUPPORTED,
            "function {function}"
        );
    }
}

/// compat: runtime-cache. INIT_RUNTIME_VARIABLE_CACHE_CONTEXT (12) is
/// refused (short payload, after EndOfDxe, NULL or unusable buffers:
/// EFI_ACCESS_DENIED in SmmVariableHandler); GET_RUNTIME_CACHE_INFO (14)
/// reports the store, or with a short payload is not answered.
#[test]
fn compat_runtime_cache_functions() {
    let mut s = svc();
    for payload in [vec![0u8; 8], vec![0u8; 48], vec![0x10u8; 48]] {
        assert_eq!(
            status(&call(&mut s, &var_request(12, &payload))),
            EfiStatus::ACCESS_DENIED
        );
    }
    let resp = call(&mut s, &var_request(14, &[0xcc; 32]));
    assert_eq!(status(&resp), EfiStatus::SUCCESS);
    let r = resp.reply.as_ref().unwrap();
    let size = Config::default().max_storage;
    assert_eq!(u64_at(r, PAYLOAD), 0, "TotalHobStorageSize");
    assert_eq!(u64_at(r, PAYLOAD + 8), size, "TotalNvStorageSize");
    assert_eq!(u64_at(r, PAYLOAD + 16), size, "TotalVolatileStorageSize");
    assert_eq!(r[PAYLOAD + 24], 1, "AuthenticatedVariableUsage");
    let short = call(&mut s, &var_request(14, &[0xcc; 31]));
    assert_eq!(status(&short), EfiStatus(JUNK));
    assert_eq!(&short.reply.unwrap()[PAYLOAD..], &[0xcc; 31][..]);
}
