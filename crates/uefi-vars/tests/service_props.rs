//! Properties of `Service::communicate` over hostile input and random
//! operation sequences.
//!
//! 1. Any buffer gets an answer and never a panic; a reply, when there is
//!    one, is exactly header + MessageLength bytes with the header as sent
//!    (docs/reference/mm-protocol.md §2), and a handled variable/policy request carries a
//!    known EFI status.
//! 2. After random SetVariable/delete/reset sequences, a GetNextVariableName
//!    walk through `communicate` sees every stored variable exactly once, in
//!    store order, and nothing else; after ExitBootServices exactly the RT
//!    ones. The store itself follows a small model of docs/reference/variables.md §4
//!    (insertion order, updates move to the end, attribute mismatch refused,
//!    volatile variables dropped and state variables re-appended at reset).

mod common;

use std::str::FromStr;

use proptest::prelude::*;
use uefi_vars::codec::Layout;
use uefi_vars::guid::Guid;
use uefi_vars::{Config, DeviceStatus, EfiStatus, Service};

fn g(text: &str) -> Guid {
    Guid::from_str(text).unwrap()
}

/// The header GUIDs the device dispatches on (docs/reference/mm-protocol.md §2), and one
/// it does not know.
fn header_guids() -> [Guid; 6] {
    [
        g("ed32d533-99e6-4209-9cc0-2d72cdd998a7"),
        g("da1b0d11-d1a7-46c4-9dc9-f3714875c6eb"),
        g("02ce967a-dd7e-4ffc-9ee7-810cf0470880"),
        g("7ce88fb3-4bd7-4679-87a8-a8d8dee50d2b"),
        g("27abf055-b1b8-4c26-8048-748f37baa2df"),
        g("11111111-2222-3333-4444-555555555555"),
    ]
}
const VAR_GUID: usize = 0;
const POLICY_GUID: usize = 1;
const EBS_GUID: usize = 4;

fn namespaces() -> [Guid; 3] {
    [
        g("8be4df61-93ca-11d2-aa0d-00e098032b8c"),
        g("11111111-2222-3333-4444-555555555555"),
        g("66666666-7777-8888-9999-aaaaaaaaaaaa"),
    ]
}

const BS: u32 = 0x02;
const NV: u32 = 0x01;
const RT: u32 = 0x04;
const HR: u32 = 0x08;

// ---------------------------------------------------------------------------
// Property 1: hostile buffers.

/// One request of a hostile sequence.
#[derive(Clone, Debug)]
enum Req {
    /// Arbitrary bytes, header included.
    Raw(Vec<u8>),
    /// A header with a known (or unknown) GUID, MessageLength possibly
    /// lying, random body.
    Framed {
        guid: usize,
        ml_delta: i64,
        body: Vec<u8>,
    },
    /// A variable-protocol request with plausible small sizes, so the
    /// handlers get past their first checks.
    Var {
        function: u64,
        guid: usize,
        /// `None`: the length of `tail`.
        data_size: Option<u64>,
        /// A valid name, or raw units (which may lack a NUL or hold
        /// surrogates).
        name: Result<String, Vec<u16>>,
        /// `None`: the size of `name`.
        name_size: Option<u64>,
        attributes: u32,
        tail: Vec<u8>,
        cut: Option<usize>,
    },
    /// A policy command, mostly with a valid signature, and for REGISTER a
    /// partly valid entry.
    Policy {
        command: u32,
        valid_header: bool,
        entry: Option<(u16, u16, u8, u32)>,
        tail: Vec<u8>,
    },
}

fn req_strategy() -> impl Strategy<Value = Req> {
    let size = prop_oneof![0u64..96, 0u64..1000, any::<u64>()];
    let name = prop_oneof![
        3 => prop::collection::vec(prop::sample::select(&ALPHABET[..]), 0..6)
            .prop_map(|c| Ok(c.into_iter().collect::<String>())),
        1 => prop::collection::vec(prop_oneof![Just(0u16), 0x41u16..0x44, 0xd800u16..0xe000], 0..6)
            .prop_map(Err),
    ];
    let attributes = prop_oneof![prop::sample::select(&ATTRS[..]), 0u32..0x80, any::<u32>()];
    prop_oneof![
        1 => prop_oneof![
            prop::collection::vec(any::<u8>(), 0..64),
            prop::collection::vec(any::<u8>(), 0..70000),
        ]
        .prop_map(Req::Raw),
        1 => (0usize..6, -8i64..8, prop::collection::vec(any::<u8>(), 0..600)).prop_map(
            |(guid, ml_delta, body)| Req::Framed {
                guid,
                ml_delta,
                body
            }
        ),
        4 => (
            prop_oneof![4 => prop::sample::select(vec![1u64, 2, 3, 8]), 1 => 0u64..16, 1 => any::<u64>()],
            0usize..3,
            prop::option::weighted(0.3, size.clone()),
            name,
            prop::option::weighted(0.3, size),
            attributes,
            prop::collection::vec(any::<u8>(), 0..400),
            prop::option::weighted(0.3, any::<usize>()),
        )
            .prop_map(
                |(function, guid, data_size, name, name_size, attributes, tail, cut)| Req::Var {
                    function,
                    guid,
                    data_size,
                    name,
                    name_size,
                    attributes,
                    tail,
                    cut,
                }
            ),
        2 => (
            prop_oneof![0u32..9, any::<u32>()],
            prop::bool::weighted(0.9),
            prop::option::of((30u16..200, 30u16..120, 0u8..5, any::<u32>())),
            prop::collection::vec(any::<u8>(), 0..300),
        )
            .prop_map(|(command, valid_header, entry, tail)| Req::Policy {
                command,
                valid_header,
                entry,
                tail
            }),
    ]
}

fn push_uintn(out: &mut Vec<u8>, layout: Layout, v: u64) {
    if layout == Layout::X64 {
        out.extend_from_slice(&v.to_le_bytes());
    } else {
        out.extend_from_slice(&(v as u32).to_le_bytes());
    }
}

fn frame(layout: Layout, guid: &Guid, ml: u64, body: &[u8]) -> Vec<u8> {
    let mut v = guid.0.to_vec();
    push_uintn(&mut v, layout, ml);
    v.extend_from_slice(body);
    v
}

fn build(req: &Req, layout: Layout) -> Vec<u8> {
    let guids = header_guids();
    match req {
        Req::Raw(b) => b.clone(),
        Req::Framed {
            guid,
            ml_delta,
            body,
        } => {
            let ml = (body.len() as i64 + ml_delta).max(0) as u64;
            frame(layout, &guids[*guid], ml, body)
        }
        Req::Var {
            function,
            guid,
            data_size,
            name,
            name_size,
            attributes,
            tail,
            cut,
        } => {
            let name: Vec<u8> = match name {
                Ok(s) => ucs2(s),
                Err(units) => units.iter().flat_map(|u| u.to_le_bytes()).collect(),
            };
            let name_size = name_size.unwrap_or(name.len() as u64);
            let mut m = Vec::new();
            push_uintn(&mut m, layout, *function);
            push_uintn(&mut m, layout, 0xafaf_afaf_afaf_afaf);
            m.extend_from_slice(&namespaces()[*guid].0);
            if *function == 2 || *function == 8 {
                // GET_NEXT / LOCK layout: NameSize, Name
                push_uintn(&mut m, layout, name_size);
            } else {
                push_uintn(&mut m, layout, data_size.unwrap_or(tail.len() as u64));
                push_uintn(&mut m, layout, name_size);
                m.extend_from_slice(&attributes.to_le_bytes());
            }
            m.extend_from_slice(&name);
            m.extend_from_slice(tail);
            if let Some(cut) = cut {
                m.truncate(cut % (m.len() + 1));
            }
            frame(layout, &guids[VAR_GUID], m.len() as u64, &m)
        }
        Req::Policy {
            command,
            valid_header,
            entry,
            tail,
        } => {
            let mut m = if *valid_header {
                b"VCPC".to_vec()
            } else {
                b"VCPX".to_vec()
            };
            m.extend_from_slice(&1u32.to_le_bytes());
            m.extend_from_slice(&command.to_le_bytes());
            push_uintn(&mut m, layout, 0xafaf_afaf_afaf_afaf);
            if let Some((size, offset, lock, max)) = entry {
                m.extend_from_slice(&0x0001_0000u32.to_le_bytes());
                m.extend_from_slice(&size.to_le_bytes());
                m.extend_from_slice(&offset.to_le_bytes());
                m.extend_from_slice(&namespaces()[1].0);
                m.extend_from_slice(&0u32.to_le_bytes());
                m.extend_from_slice(&max.to_le_bytes());
                m.extend_from_slice(&[0; 8]);
                m.extend_from_slice(&[*lock, 0, 0, 0]);
            }
            m.extend_from_slice(tail);
            frame(layout, &guids[POLICY_GUID], m.len() as u64, &m)
        }
    }
}

fn read_ml(req: &[u8], layout: Layout) -> Option<u64> {
    let w = layout.uintn();
    let b = req.get(16..16 + w)?;
    Some(if w == 8 {
        u64::from_le_bytes(b.try_into().unwrap())
    } else {
        u64::from(u32::from_le_bytes(b.try_into().unwrap()))
    })
}

fn read_status(reply: &[u8], off: usize, layout: Layout) -> Option<EfiStatus> {
    let v = if layout == Layout::X64 {
        u64::from_le_bytes(reply.get(off..off + 8)?.try_into().unwrap())
    } else {
        let v = u32::from_le_bytes(reply.get(off..off + 4)?.try_into().unwrap());
        // widen the 32-bit error bit back for the name lookup
        if v & 0x8000_0000 != 0 {
            (1u64 << 63) | u64::from(v & 0x7fff_ffff)
        } else {
            u64::from(v)
        }
    };
    Some(EfiStatus(v))
}

/// VAR_CHECK_VARIABLE_PROPERTY_GET (10) or GET_RUNTIME_CACHE_INFO (14)
/// with a payload shorter than its fixed part: edk2's SmmVariableHandler
/// (MdeModulePkg/Universal/Variable/RuntimeDxe/VariableSmm.c) does not
/// answer it.
fn unanswered_by_edk2(req: &[u8], layout: Layout) -> bool {
    let hdr = layout.mm_header();
    let w = layout.uintn();
    let (Some(ml), Some(function)) = (read_ml(req, layout), read_ml(&req[hdr - 16..], layout))
    else {
        return false;
    };
    let payload = ml.saturating_sub(2 * w as u64);
    let fixed = match function {
        10 => 24 + 3 * w as u64,
        14 => 4 * w as u64,
        _ => return false,
    };
    ml >= (2 * w) as u64 && payload < fixed
}

fn check_response(svc: &mut Service, req: &[u8], layout: Layout) -> Result<(), TestCaseError> {
    let hdr = layout.mm_header();
    let buffer = svc.buffer_size() as usize;
    let resp = svc.communicate(req);
    let ml = read_ml(req, layout);
    let fits = ml.and_then(|ml| usize::try_from(ml).ok()?.checked_add(hdr));
    let framed = fits.is_some_and(|total| total <= buffer && total <= req.len()) && buffer >= hdr;
    match &resp.reply {
        None => {
            prop_assert_eq!(resp.status, DeviceStatus::ErrBadBufferSize);
            prop_assert!(!framed, "a well-framed request got no reply");
        }
        Some(reply) => {
            prop_assert!(framed, "a badly framed request got a reply");
            let total = fits.unwrap();
            prop_assert_eq!(reply.len(), total, "reply is header + MessageLength");
            prop_assert_eq!(&reply[..hdr], &req[..hdr], "header rewritten");
            let guid = Guid(req[..16].try_into().unwrap());
            let guids = header_guids();
            match resp.status {
                DeviceStatus::Success => {
                    if guid == guids[VAR_GUID] {
                        let st = read_status(reply, hdr + layout.uintn(), layout);
                        if unanswered_by_edk2(req, layout) {
                            // edk2 SmmVariableHandler returns without
                            // writing ReturnStatus: it stays as sent.
                            let sent = read_status(req, hdr + layout.uintn(), layout);
                            prop_assert_eq!(st, sent, "ReturnStatus rewritten");
                        } else {
                            prop_assert!(
                                st.is_some_and(|s| s.name().is_some()),
                                "variable status {:?}",
                                st
                            );
                        }
                    } else if guid == guids[POLICY_GUID] {
                        let st = read_status(reply, hdr + 12, layout);
                        prop_assert!(
                            st.is_some_and(|s| s.name().is_some()),
                            "policy result {:?}",
                            st
                        );
                    } else {
                        // events: the payload is not looked at
                        prop_assert!(guids[2..5].contains(&guid));
                        prop_assert_eq!(&reply[..], &req[..total]);
                    }
                }
                DeviceStatus::ErrNotSupported => {
                    prop_assert!(!guids[..5].contains(&guid));
                    prop_assert_eq!(&reply[..], &req[..total]);
                }
                DeviceStatus::ErrBadBufferSize => {
                    // MessageLength shorter than the protocol header
                    prop_assert!(guid == guids[VAR_GUID] || guid == guids[POLICY_GUID]);
                    prop_assert_eq!(&reply[..], &req[..total]);
                }
                other => prop_assert!(false, "device status {:?}", other),
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_buffer_gets_a_well_formed_answer(
        reqs in prop::collection::vec(req_strategy(), 1..6),
        buffer in prop_oneof![6 => Just(65536u32), 1 => 0u32..2000, 1 => 0u32..100_000],
        ia32 in prop::bool::weighted(0.2),
        end_of_dxe_first in any::<bool>(),
    ) {
        let layout = if ia32 { Layout::IA32 } else { Layout::X64 };
        let mut svc = common::in_memory(Config::default().with_layout(layout));
        svc.set_buffer_size(buffer);
        if end_of_dxe_first {
            // end of DXE first, so policy enforcement paths run too
            let _ = svc.communicate(&frame(layout, &header_guids()[2], 1, &[0]));
        }
        for r in &reqs {
            let bytes = build(r, layout);
            check_response(&mut svc, &bytes, layout)?;
        }
        // the service still works afterwards
        svc.set_buffer_size(65536);
        let mut m = Vec::new();
        push_uintn(&mut m, layout, 4);
        push_uintn(&mut m, layout, 0);
        m.extend_from_slice(&[0; 32]);
        let resp = svc.communicate(&frame(layout, &header_guids()[VAR_GUID], m.len() as u64, &m));
        prop_assert_eq!(resp.status, DeviceStatus::Success);
        let st = read_status(resp.reply.as_deref().unwrap(), layout.mm_header() + layout.uintn(), layout);
        prop_assert_eq!(st, Some(EfiStatus::SUCCESS));
    }
}

// ---------------------------------------------------------------------------
// Property 2: enumeration sees the store exactly.

const ALPHABET: [char; 8] = ['A', 'b', '7', '_', 'é', 'Ω', '中', 'ß'];
const ATTRS: [u32; 5] = [BS, NV | BS, BS | RT, NV | BS | RT, NV | BS | RT | HR];

#[derive(Clone, Debug)]
enum Op {
    Set {
        ns: usize,
        name: String,
        attrs: u32,
        data: Vec<u8>,
    },
    Delete {
        ns: usize,
        name: String,
    },
    Reset,
}

fn name_strategy() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(&ALPHABET[..]), 1..4)
        .prop_map(|c| c.into_iter().collect())
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0usize..3, name_strategy(), prop::sample::select(&ATTRS[..]), prop::collection::vec(any::<u8>(), 1..48))
            .prop_map(|(ns, name, attrs, data)| Op::Set { ns, name, attrs, data }),
        3 => (0usize..3, name_strategy()).prop_map(|(ns, name)| Op::Delete { ns, name }),
        1 => Just(Op::Reset),
    ]
}

fn ucs2(s: &str) -> Vec<u8> {
    s.encode_utf16()
        .chain(std::iter::once(0))
        .flat_map(u16::to_le_bytes)
        .collect()
}

fn var_req(function: u64, payload: &[u8]) -> Vec<u8> {
    let mut m = function.to_le_bytes().to_vec();
    m.extend_from_slice(&0xafaf_afaf_afaf_afafu64.to_le_bytes());
    m.extend_from_slice(payload);
    frame(Layout::X64, &header_guids()[VAR_GUID], m.len() as u64, &m)
}

fn set_var(svc: &mut Service, guid: &Guid, name: &str, attrs: u32, data: &[u8]) -> EfiStatus {
    let n = ucs2(name);
    let mut p = guid.0.to_vec();
    p.extend_from_slice(&(data.len() as u64).to_le_bytes());
    p.extend_from_slice(&(n.len() as u64).to_le_bytes());
    p.extend_from_slice(&attrs.to_le_bytes());
    p.extend_from_slice(&n);
    p.extend_from_slice(data);
    let r = svc.communicate(&var_req(3, &p)).reply.unwrap();
    EfiStatus(u64::from_le_bytes(r[32..40].try_into().unwrap()))
}

/// GetVariable: (status, attributes, data).
fn get_var(svc: &mut Service, guid: &Guid, name: &[u16]) -> (EfiStatus, u32, Vec<u8>) {
    let n: Vec<u8> = name
        .iter()
        .chain(std::iter::once(&0))
        .flat_map(|u| u.to_le_bytes())
        .collect();
    let mut p = guid.0.to_vec();
    p.extend_from_slice(&256u64.to_le_bytes());
    p.extend_from_slice(&(n.len() as u64).to_le_bytes());
    p.extend_from_slice(&0u32.to_le_bytes());
    p.extend_from_slice(&n);
    p.extend_from_slice(&[0; 256]);
    let r = svc.communicate(&var_req(1, &p)).reply.unwrap();
    let st = EfiStatus(u64::from_le_bytes(r[32..40].try_into().unwrap()));
    let size = u64::from_le_bytes(r[56..64].try_into().unwrap()) as usize;
    let attrs = u32::from_le_bytes(r[72..76].try_into().unwrap());
    let off = 76 + n.len();
    (st, attrs, r[off..off + size.min(256)].to_vec())
}

/// A GetNextVariableName walk as edk2 does it, starting with a name buffer
/// of `cap` bytes and growing it on BUFFER_TOO_SMALL.
fn walk(svc: &mut Service, mut cap: usize) -> Result<Vec<(Guid, Vec<u16>)>, TestCaseError> {
    let mut out: Vec<(Guid, Vec<u16>)> = Vec::new();
    let mut guid = Guid::default();
    let mut name: Vec<u16> = Vec::new();
    loop {
        let mut area: Vec<u8> = name
            .iter()
            .chain(std::iter::once(&0))
            .flat_map(|u| u.to_le_bytes())
            .collect();
        area.resize(cap.max(area.len()), 0);
        let mut p = guid.0.to_vec();
        p.extend_from_slice(&(area.len() as u64).to_le_bytes());
        p.extend_from_slice(&area);
        let resp = svc.communicate(&var_req(2, &p));
        prop_assert_eq!(resp.status, DeviceStatus::Success);
        let r = resp.reply.unwrap();
        let st = EfiStatus(u64::from_le_bytes(r[32..40].try_into().unwrap()));
        let size = u64::from_le_bytes(r[56..64].try_into().unwrap()) as usize;
        match st {
            EfiStatus::SUCCESS => {
                guid = Guid(r[40..56].try_into().unwrap());
                let units: Vec<u16> = r[64..64 + size]
                    .chunks_exact(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]]))
                    .collect();
                prop_assert_eq!(units.last(), Some(&0), "name without NUL");
                name = units[..units.len() - 1].to_vec();
                prop_assert!(
                    !out.contains(&(guid, name.clone())),
                    "{:?} seen twice",
                    String::from_utf16_lossy(&name)
                );
                out.push((guid, name.clone()));
                prop_assert!(out.len() <= 200);
            }
            EfiStatus::BUFFER_TOO_SMALL => {
                prop_assert!(
                    size > area.len(),
                    "NameSize {} not larger than {}",
                    size,
                    area.len()
                );
                cap = size;
            }
            EfiStatus::NOT_FOUND => return Ok(out),
            other => prop_assert!(false, "GetNextVariableName: {:?}", other),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
struct ModelVar {
    guid: Guid,
    name: Vec<u16>,
    attributes: u32,
    data: Vec<u8>,
}

fn snapshot(svc: &Service) -> Vec<ModelVar> {
    svc.store()
        .iter()
        .map(|v| ModelVar {
            guid: v.guid,
            name: v.name.units().to_vec(),
            attributes: v.attributes,
            data: v.data.clone(),
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn enumeration_sees_every_stored_variable_once(
        ops in prop::collection::vec(op_strategy(), 0..40),
        cap in (1usize..40).prop_map(|c| c * 2),
    ) {
        let mut svc = common::in_memory(Config::default());
        // the device-created state variables, in creation order
        let start_up = snapshot(&svc);
        let start_names: Vec<String> = start_up.iter().map(|v| String::from_utf16_lossy(&v.name)).collect();
        prop_assert_eq!(
            start_names,
            ["SetupMode", "SignatureSupport", "SecureBoot", "CustomMode", "VendorKeysNv", "VendorKeys"]
        );
        let mut model = start_up.clone();
        let ns = namespaces();
        for op in &ops {
            match op {
                Op::Set { ns: i, name, attrs, data } => {
                    let units: Vec<u16> = name.encode_utf16().collect();
                    let pos = model.iter().position(|v| v.guid == ns[*i] && v.name == units);
                    let want = match pos {
                        Some(p) if model[p].attributes != *attrs => EfiStatus::INVALID_PARAMETER,
                        _ => EfiStatus::SUCCESS,
                    };
                    prop_assert_eq!(set_var(&mut svc, &ns[*i], name, *attrs, data), want, "{:?}", op);
                    if want == EfiStatus::SUCCESS {
                        if let Some(p) = pos {
                            model.remove(p);
                        }
                        model.push(ModelVar { guid: ns[*i], name: units, attributes: *attrs, data: data.clone() });
                    }
                }
                Op::Delete { ns: i, name } => {
                    let units: Vec<u16> = name.encode_utf16().collect();
                    prop_assert_eq!(set_var(&mut svc, &ns[*i], name, 0, &[]), EfiStatus::SUCCESS, "{:?}", op);
                    model.retain(|v| !(v.guid == ns[*i] && v.name == units));
                }
                Op::Reset => {
                    svc.reset().unwrap();
                    model.retain(|v| v.attributes & NV != 0);
                    for sv in &start_up {
                        model.retain(|v| !(v.guid == sv.guid && v.name == sv.name));
                        model.push(sv.clone());
                    }
                }
            }
        }
        prop_assert_eq!(snapshot(&svc), model.clone());

        // before ExitBootServices every variable has BS: all are visible
        let seen = walk(&mut svc, cap)?;
        let stored: Vec<(Guid, Vec<u16>)> = svc.store().iter().map(|v| (v.guid, v.name.units().to_vec())).collect();
        prop_assert_eq!(&seen, &stored);
        for v in &model {
            let (st, attrs, data) = get_var(&mut svc, &v.guid, &v.name);
            prop_assert_eq!(st, EfiStatus::SUCCESS);
            prop_assert_eq!(attrs, v.attributes);
            prop_assert_eq!(&data, &v.data);
        }

        // after ExitBootServices: exactly the RT ones, in store order
        let resp = svc.communicate(&frame(Layout::X64, &header_guids()[EBS_GUID], 1, &[0]));
        prop_assert_eq!(resp.status, DeviceStatus::Success);
        let seen = walk(&mut svc, cap)?;
        let rt: Vec<(Guid, Vec<u16>)> = svc
            .store()
            .iter()
            .filter(|v| v.attributes & RT != 0)
            .map(|v| (v.guid, v.name.units().to_vec()))
            .collect();
        prop_assert_eq!(&seen, &rt);
        for v in model.iter().filter(|v| v.attributes & RT == 0) {
            prop_assert_eq!(get_var(&mut svc, &v.guid, &v.name).0, EfiStatus::NOT_FOUND);
        }
    }
}
