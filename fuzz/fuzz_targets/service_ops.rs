//! Sequences of service operations built with the `codec::request` builders:
//! SetVariable (plain, and real signed updates that pass verification,
//! optionally mutated), GetVariable, GetNextVariableName, deletes, policy
//! REGISTER / LOCK / DISABLE / DUMP / GET_INFO, LOCK_VARIABLE, boot-phase
//! events, machine resets, QueryVariableInfo, buffer sizes, storage
//! failures, and raw requests.
//!
//! After every step: reply = header + MessageLength; the accounted storage
//! never grows past the limit; policy count and bytes stay within their
//! limits; the persisted store is exactly the live non-volatile variables;
//! a plain SetVariable that succeeded reads back; and a full
//! GetNextVariableName walk terminates and sees every visible variable
//! exactly once.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use uefi_vars::codec::{request, Layout, PolicyEntryHeader};
use uefi_vars::guid::{
    Guid, CUSTOM_MODE_ENABLE, END_OF_DXE_EVENT, EXIT_BOOT_SERVICES_EVENT, GLOBAL_VARIABLE,
    IMAGE_SECURITY_DATABASE, READY_TO_BOOT_EVENT, SECURE_BOOT_ENABLE_DISABLE,
};
use uefi_vars::name::VarName;
use uefi_vars::persist::fault::FaultyStorage;
use uefi_vars::persist::MemoryStorage;
use uefi_vars::policy::{PolicyLimits, POLICY_ENTRY_REVISION};
use uefi_vars::codec::policy_command;
use uefi_vars::store::Visibility;
use uefi_vars::variable::{attr, VarKey};
use uefi_vars::{Config, EfiStatus, Service};
use uefi_vars_fuzz::auth::{PRIVATE, SIGNED};
use uefi_vars_fuzz::{
    check_enumeration, check_persisted, check_reply_shape, secure_boot_slack, var_status, Usage,
};

const VENDOR: Guid = Guid::from_fields(0x1234_5678, 0x9abc, 0xdef0, [1, 2, 3, 4, 5, 6, 7, 8]);

const GUIDS: [Guid; 6] = [
    GLOBAL_VARIABLE,
    IMAGE_SECURITY_DATABASE,
    VENDOR,
    PRIVATE,
    SECURE_BOOT_ENABLE_DISABLE,
    CUSTOM_MODE_ENABLE,
];

const NAMES: [&str; 16] = [
    "Boot0001",
    "BootOrder",
    "Boot00AF",
    "A",
    "B",
    "PK",
    "KEK",
    "db",
    "dbx",
    "FuzzPriv",
    "SetupMode",
    "SecureBoot",
    "CustomMode",
    "SecureBootEnable",
    "Boot####",
    "LongVariableName_0123456789",
];

const ATTRS: [u32; 8] = [
    attr::NON_VOLATILE | attr::BOOTSERVICE_ACCESS | attr::RUNTIME_ACCESS,
    attr::NON_VOLATILE | attr::BOOTSERVICE_ACCESS,
    attr::BOOTSERVICE_ACCESS | attr::RUNTIME_ACCESS,
    attr::BOOTSERVICE_ACCESS,
    attr::NON_VOLATILE | attr::BOOTSERVICE_ACCESS | attr::RUNTIME_ACCESS | attr::APPEND_WRITE,
    attr::SECURE_BOOT_DB,
    attr::SECURE_BOOT_DB | attr::APPEND_WRITE,
    attr::RUNTIME_ACCESS | attr::NON_VOLATILE,
];

#[derive(Arbitrary, Debug, Clone)]
enum GuidSel {
    Known(u8),
    Raw([u8; 16]),
}

impl GuidSel {
    fn get(&self) -> Guid {
        match self {
            GuidSel::Known(i) => GUIDS[usize::from(*i) % GUIDS.len()],
            GuidSel::Raw(b) => Guid(*b),
        }
    }
}

#[derive(Arbitrary, Debug, Clone)]
enum NameSel {
    Known(u8),
    /// UCS-2 units, NUL appended (a NUL inside cuts the name short).
    Units(Vec<u16>),
    /// The name area exactly as given (maybe no NUL, odd size, junk after
    /// the NUL).
    Wire(Vec<u8>),
    /// A known name followed by a NUL and junk.
    Trailing(u8, Vec<u8>),
    /// `n` copies of one unit: long names.
    Long(u16, u16),
}

impl NameSel {
    fn wire(&self) -> Vec<u8> {
        match self {
            NameSel::Known(i) => VarName::from(NAMES[usize::from(*i) % NAMES.len()]).to_wire(),
            NameSel::Units(u) => VarName::from_units(u.clone()).to_wire(),
            NameSel::Wire(w) => w.clone(),
            NameSel::Trailing(i, junk) => {
                let mut w = VarName::from(NAMES[usize::from(*i) % NAMES.len()]).to_wire();
                w.extend_from_slice(junk);
                w
            }
            NameSel::Long(unit, n) => {
                let unit = if *unit == 0 { 0x41 } else { *unit };
                VarName::from_units(vec![unit; usize::from(*n) % 4096]).to_wire()
            }
        }
    }
}

#[derive(Arbitrary, Debug, Clone)]
enum AttrSel {
    Known(u8),
    Raw(u32),
}

impl AttrSel {
    fn get(&self) -> u32 {
        match self {
            AttrSel::Known(i) => ATTRS[usize::from(*i) % ATTRS.len()],
            AttrSel::Raw(a) => *a,
        }
    }
}

#[derive(Arbitrary, Debug, Clone)]
enum DataSel {
    Bytes(Vec<u8>),
    Fill(u8, u16),
    /// The payload (after the descriptor) of one signed blob: a valid
    /// signature list.
    SigList(u8),
}

impl DataSel {
    fn get(&self) -> Vec<u8> {
        match self {
            DataSel::Bytes(b) => b.clone(),
            DataSel::Fill(b, n) => vec![*b; usize::from(*n)],
            DataSel::SigList(i) => {
                let s = &SIGNED[usize::from(*i) % SIGNED.len()];
                uefi_vars::auth::parse_auth2(s.bytes)
                    .map(|a| a.payload.to_vec())
                    .unwrap_or_default()
            }
        }
    }
}

/// How a signed blob is sent.
#[derive(Arbitrary, Debug, Clone)]
enum AuthHow {
    AsIs,
    ToggleAppend,
    Attrs(AttrSel),
    Target(GuidSel, NameSel),
    /// XOR one byte (position modulo the length).
    Flip(u16, u8),
    Truncate(u16),
    /// Another blob's payload behind this blob's descriptor.
    Splice(u8),
    /// Extra bytes appended to the payload.
    Extend(Vec<u8>),
}

#[derive(Arbitrary, Debug, Clone)]
struct PolicyFields {
    guid: GuidSel,
    name: Option<Vec<u16>>,
    min_size: u32,
    max_size: u32,
    must: u32,
    cant: u32,
    lock: u8,
    state: Option<(GuidSel, u8, Vec<u16>)>,
    /// Added to Size (wrapping), to make malformed entries.
    size_delta: i8,
    version_ok: bool,
}

impl PolicyFields {
    fn encode(&self) -> Vec<u8> {
        let mut st = Vec::new();
        if let Some((g, value, name)) = &self.state {
            st.extend_from_slice(&g.get().0);
            st.push(*value);
            st.push(0);
            st.extend_from_slice(&VarName::from_units(name.clone()).to_wire());
        }
        let nm = self
            .name
            .as_ref()
            .map(|n| VarName::from_units(n.clone()).to_wire())
            .unwrap_or_default();
        let size = (44 + st.len() + nm.len()) as u16;
        let h = PolicyEntryHeader {
            version: if self.version_ok {
                POLICY_ENTRY_REVISION
            } else {
                self.min_size
            },
            size: size.wrapping_add(self.size_delta as u16),
            offset_to_name: (44 + st.len()) as u16,
            namespace: self.guid.get(),
            min_size: self.min_size,
            max_size: self.max_size,
            attributes_must_have: self.must,
            attributes_cant_have: self.cant,
            lock_policy_type: self.lock % 5,
        };
        let mut raw = h.encode().to_vec();
        raw.extend(st);
        raw.extend(nm);
        raw
    }
}

#[derive(Arbitrary, Debug, Clone)]
enum Op {
    Set {
        guid: GuidSel,
        name: NameSel,
        attrs: AttrSel,
        data: DataSel,
    },
    Signed {
        blob: u8,
        how: AuthHow,
    },
    Get {
        guid: GuidSel,
        name: NameSel,
        capacity: u16,
    },
    Next {
        guid: GuidSel,
        name: NameSel,
        capacity: u16,
    },
    Delete {
        guid: GuidSel,
        name: NameSel,
        attrs: AttrSel,
    },
    Query(AttrSel),
    PayloadSize,
    LockVariable {
        guid: GuidSel,
        name: NameSel,
    },
    PolicyRegister(PolicyFields),
    PolicyRaw {
        command: u8,
        params: Vec<u8>,
    },
    PolicyDump(u8),
    PolicyInfo {
        guid: GuidSel,
        name: NameSel,
        out_capacity: u16,
        lock_state: bool,
    },
    Event(u8),
    Reset,
    BufferSize(u16),
    VarFunction {
        function: u8,
        payload: Vec<u8>,
    },
    /// The next save fails (or every save, until cleared).
    StorageFault {
        sticky: bool,
    },
    StorageOk,
    Enumerate,
}

#[derive(Arbitrary, Debug)]
struct Input {
    ia32: bool,
    small_storage: u8,
    max_variable_size: Option<u16>,
    max_name_size: Option<u16>,
    allow_policy_disable: bool,
    force_secure_boot: bool,
    disable_custom_mode: bool,
    ops: Vec<Op>,
}

struct Runner {
    svc: Service,
    storage: FaultyStorage<MemoryStorage>,
    layout: Layout,
    /// A reset could not save: the persisted store is behind until the
    /// next successful save.
    stale: bool,
}

impl Runner {
    fn visibility(&self) -> Visibility {
        if self.svc.phase().exit_boot_services {
            Visibility::Runtime
        } else {
            Visibility::BootServices
        }
    }

    fn call(&mut self, req: &[u8]) -> Option<EfiStatus> {
        let resp = self.svc.communicate(req);
        check_reply_shape(self.layout, req, &resp);
        resp.reply.and_then(|r| var_status(self.layout, &r))
    }

    fn set(&mut self, guid: &Guid, name: &[u8], attrs: u32, data: &[u8]) -> Option<EfiStatus> {
        let req = request::set_variable(self.layout, guid, name, attrs, data);
        self.call(&req)
    }

    fn step(&mut self, op: &Op) -> u64 {
        let l = self.layout;
        let mut slack = 0;
        match op {
            Op::Set {
                guid,
                name,
                attrs,
                data,
            } => {
                let (g, n, a, d) = (guid.get(), name.wire(), attrs.get(), data.get());
                let status = self.set(&g, &n, a, &d);
                // A plain write that succeeded reads back as written
                // (without an access attribute it was a delete: edk2
                // UpdateVariable).
                let access = attr::BOOTSERVICE_ACCESS | attr::RUNTIME_ACCESS;
                if status == Some(EfiStatus::SUCCESS)
                    && !d.is_empty()
                    && a & access != 0
                    && a & (attr::APPEND_WRITE | attr::TIME_BASED_AUTHENTICATED_WRITE_ACCESS) == 0
                {
                    let req = request::get_variable(l, &g, &n, d.len() as u64);
                    let resp = self.svc.communicate(&req);
                    let reply = resp.reply.expect("get after set: no reply");
                    assert_eq!(var_status(l, &reply), Some(EfiStatus::SUCCESS));
                    let off = l.var_payload_off() + l.access_variable() + n.len();
                    assert_eq!(reply.get(off..off + d.len()), Some(&d[..]), "read back");
                }
            }
            Op::Signed { blob, how } => {
                let s = &SIGNED[usize::from(*blob) % SIGNED.len()];
                let (mut g, mut n, mut a, mut d) = (
                    s.guid,
                    VarName::from(s.name).to_wire(),
                    s.attributes(),
                    s.bytes.to_vec(),
                );
                match how {
                    AuthHow::AsIs => {}
                    AuthHow::ToggleAppend => a ^= attr::APPEND_WRITE,
                    AuthHow::Attrs(x) => a = x.get(),
                    AuthHow::Target(gs, ns) => {
                        g = gs.get();
                        n = ns.wire();
                    }
                    AuthHow::Flip(pos, x) => {
                        let len = d.len();
                        if let Some(b) = d.get_mut(usize::from(*pos) % len.max(1)) {
                            *b ^= *x;
                        }
                    }
                    AuthHow::Truncate(len) => d.truncate(usize::from(*len)),
                    AuthHow::Splice(other) => {
                        let o = &SIGNED[usize::from(*other) % SIGNED.len()];
                        if let (Ok(mine), Ok(theirs)) = (
                            uefi_vars::auth::parse_auth2(s.bytes),
                            uefi_vars::auth::parse_auth2(o.bytes),
                        ) {
                            let descriptor = s.bytes.len() - mine.payload.len();
                            d.truncate(descriptor);
                            d.extend_from_slice(theirs.payload);
                        }
                    }
                    AuthHow::Extend(extra) => d.extend_from_slice(extra),
                }
                self.set(&g, &n, a, &d);
                slack = secure_boot_slack(&self.svc);
            }
            Op::Get {
                guid,
                name,
                capacity,
            } => {
                let (g, area) = (guid.get(), name.wire());
                let req = request::get_variable(l, &g, &area, u64::from(*capacity));
                let resp = self.svc.communicate(&req);
                check_reply_shape(l, &req, &resp);
                // Framing fails when the request exceeds the buffer size.
                let reply = resp.reply.unwrap_or_default();
                let status = var_status(l, &reply);
                // Model check against the store: what is found is the
                // stored data; NOT_FOUND means nothing visible by that key.
                if let Ok(n) = VarName::parse_wire(&area) {
                    let stored = self
                        .svc
                        .store()
                        .get(&VarKey::new(g, n))
                        .filter(|v| self.visibility().allows(v.attributes))
                        .cloned();
                    match status {
                        Some(EfiStatus::SUCCESS) => {
                            let v = stored.expect("GetVariable found a variable not in the store");
                            let off = l.var_payload_off() + l.access_variable() + area.len();
                            assert_eq!(reply.get(off..off + v.data.len()), Some(&v.data[..]));
                        }
                        Some(EfiStatus::NOT_FOUND) => {
                            assert!(stored.is_none(), "NOT_FOUND for a stored variable")
                        }
                        _ => {}
                    }
                }
            }
            Op::Next {
                guid,
                name,
                capacity,
            } => {
                let (g, area) = (guid.get(), name.wire());
                let req = request::get_next_variable_name(l, &g, &area, u64::from(*capacity));
                let resp = self.svc.communicate(&req);
                check_reply_shape(l, &req, &resp);
                // Framing fails when the request exceeds the buffer size.
                let reply = resp.reply.unwrap_or_default();
                // Model check: the answer is the next visible variable in
                // store order after the given one (the first for "").
                if var_status(l, &reply) == Some(EfiStatus::SUCCESS) {
                    // The builder zero-pads the name area to the capacity.
                    let mut sent = area.clone();
                    sent.resize(area.len().max(usize::from(*capacity)), 0);
                    let prev = VarName::parse_wire(&sent).expect("accepted name parses");
                    let vis = self.visibility();
                    let visible: Vec<VarKey> = self
                        .svc
                        .store()
                        .iter()
                        .filter(|v| vis.allows(v.attributes))
                        .map(|v| v.key())
                        .collect();
                    let expect = if prev.is_empty() {
                        visible.first().cloned()
                    } else {
                        let pos = self
                            .svc
                            .store()
                            .iter()
                            .position(|v| v.key() == VarKey::new(g, prev.clone()))
                            .expect("GetNextVariableName from a name not in the store");
                        self.svc
                            .store()
                            .iter()
                            .skip(pos + 1)
                            .find(|v| vis.allows(v.attributes))
                            .map(|v| v.key())
                    };
                    let p = l.var_payload_off();
                    let got_guid = Guid(reply[p..p + 16].try_into().expect("guid"));
                    let size = uefi_vars_fuzz::read_uintn(l, &reply, p + 16).expect("size");
                    let off = p + l.next_variable();
                    let got = VarName::parse_wire(&reply[off..off + size as usize])
                        .expect("returned name parses");
                    assert_eq!(Some(VarKey::new(got_guid, got)), expect);
                }
            }
            Op::Delete { guid, name, attrs } => {
                self.set(&guid.get(), &name.wire(), attrs.get(), &[]);
            }
            Op::Query(a) => {
                let req = request::query_variable_info(l, a.get());
                let resp = self.svc.communicate(&req);
                check_reply_shape(l, &req, &resp);
                // Framing fails when the request exceeds the buffer size.
                let reply = resp.reply.unwrap_or_default();
                if var_status(l, &reply) == Some(EfiStatus::SUCCESS) {
                    let p = l.var_payload_off();
                    let at =
                        |o: usize| uefi_vars::codec::u64_at(&reply, o, "u64").expect("u64");
                    let max = self.svc.config().max_storage;
                    assert_eq!(at(p), max);
                    assert_eq!(at(p + 8), max.saturating_sub(self.svc.store().used()));
                }
            }
            Op::PayloadSize => {
                self.call(&request::get_payload_size(l));
            }
            Op::LockVariable { guid, name } => {
                self.call(&request::lock_variable(l, &guid.get(), &name.wire()));
            }
            Op::PolicyRegister(p) => {
                self.call(&request::policy(l, policy_command::REGISTER, &p.encode()));
            }
            Op::PolicyRaw { command, params } => {
                self.call(&request::policy(l, u32::from(*command % 9), params));
            }
            Op::PolicyDump(page) => {
                // edk2 sends the whole policy buffer (four pages).
                let page_size = 4 * 4096 - l.mm_header() - l.policy_header() - 13;
                let mut params = u32::from(*page % 4).to_le_bytes().to_vec();
                params.resize(13 + page_size, 0);
                self.call(&request::policy(l, policy_command::DUMP, &params));
            }
            Op::PolicyInfo {
                guid,
                name,
                out_capacity,
                lock_state,
            } => {
                let n = name.wire();
                let mut params = guid.get().0.to_vec();
                params.extend_from_slice(&(n.len() as u32).to_le_bytes());
                params.extend_from_slice(&u32::from(*out_capacity).to_le_bytes());
                params.extend_from_slice(&[0u8; 44]);
                params.extend_from_slice(&n);
                params.resize(params.len() + usize::from(*out_capacity), 0);
                let cmd = if *lock_state {
                    policy_command::GET_LOCK_VAR_STATE_INFO
                } else {
                    policy_command::GET_INFO
                };
                self.call(&request::policy(l, cmd, &params));
            }
            Op::Event(e) => {
                let g = [
                    END_OF_DXE_EVENT,
                    READY_TO_BOOT_EVENT,
                    EXIT_BOOT_SERVICES_EVENT,
                ][usize::from(*e) % 3];
                self.call(&request::event(l, &g));
            }
            Op::Reset => {
                let saves = self.storage.with_inner(|m| m.save_count());
                if self.svc.reset().is_err() {
                    self.stale = true;
                }
                if self.storage.with_inner(|m| m.save_count()) > saves {
                    self.stale = false;
                }
                slack = secure_boot_slack(&self.svc);
            }
            Op::BufferSize(size) => {
                self.svc.set_buffer_size(u32::from(*size).saturating_mul(2));
            }
            Op::VarFunction { function, payload } => {
                self.call(&request::variable(l, u64::from(*function % 16), payload));
            }
            Op::StorageFault { sticky } => self.storage.fail_nth_save(1, *sticky),
            Op::StorageOk => self.storage.clear(),
            Op::Enumerate => check_enumeration(&mut self.svc),
        }
        slack
    }
}

fn run(input: &Input) {
    let layout = if input.ia32 {
        Layout::IA32
    } else {
        Layout::X64
    };
    let max_storage = match input.small_storage % 4 {
        0 => 256 * 1024,
        1 => 16 * 1024,
        2 => 4 * 1024,
        _ => 1500,
    };
    let config = Config::default()
        .with_layout(layout)
        .with_max_storage(max_storage)
        .with_max_variable_size(input.max_variable_size.map(u64::from))
        .with_max_name_size(input.max_name_size.map_or(1024, u64::from))
        .with_policy_limits(PolicyLimits {
            max_policies: 16,
            max_total_bytes: 2048,
        })
        .with_allow_policy_disable(input.allow_policy_disable)
        .with_force_secure_boot(input.force_secure_boot)
        .with_disable_custom_mode(input.disable_custom_mode);
    let storage = FaultyStorage::new(MemoryStorage::new());
    let svc = Service::new(config, Box::new(storage.clone())).expect("in-memory store");
    let mut r = Runner {
        svc,
        storage,
        layout,
        stale: false,
    };
    for op in input.ops.iter().take(64) {
        let before = Usage::of(&r.svc);
        let saves = r.storage.with_inner(|m| m.save_count());
        let slack = r.step(op);
        before.check_after(&r.svc, slack);
        if r.storage.with_inner(|m| m.save_count()) > saves && !matches!(op, Op::Reset) {
            r.stale = false;
        }
        if !r.stale {
            check_persisted(&r.svc, &r.storage);
        }
        if !matches!(op, Op::Get { .. } | Op::Next { .. } | Op::Query(_)) {
            check_enumeration(&mut r.svc);
        }
    }
}

fuzz_target!(|input: Input| {
    run(&input);
});
