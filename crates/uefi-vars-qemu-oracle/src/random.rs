//! Seeded random request sequences for the conformance suite: valid and
//! corrupted requests over every variable function id (and unknown ones),
//! every policy command, the boot-phase events, names with and without
//! NUL, sizes at and past the limits, and machine resets.

use uefi_vars::codec::{request, Layout};
use uefi_vars::guid::{
    Guid, END_OF_DXE_EVENT, EXIT_BOOT_SERVICES_EVENT, GLOBAL_VARIABLE, IMAGE_SECURITY_DATABASE,
    READY_TO_BOOT_EVENT,
};

use crate::script::{normalize_request, Step, BUFFER_SIZE, MM_HEADER};

const L: Layout = Layout::X64;

/// xorshift64* — small, seeded, reproducible.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// Vendor GUIDs the sequences use (two private ones and the global one).
pub const VENDOR_A: Guid = Guid::from_fields(
    0x1b1d_3f6c,
    0x0a1e,
    0x4b5a,
    [0x9c, 0x11, 0x52, 0x8e, 0x37, 0x64, 0xd0, 0x01],
);
pub const VENDOR_B: Guid = Guid::from_fields(
    0x7e5c_a0b2,
    0x44d1,
    0x4f08,
    [0xa3, 0x3c, 0x10, 0x9b, 0xe2, 0x5f, 0x71, 0x02],
);
const UNKNOWN_GUID: Guid = Guid::from_fields(
    0xdead_beef,
    0x1234,
    0x5678,
    [0x9a, 0xbc, 0xde, 0xf0, 0x12, 0x34, 0x56, 0x78],
);

const NAMES: &[&str] = &["A", "B", "Var1", "Boot0001", "LongVariableName_0123456789"];
const SB_NAMES: &[(&str, bool)] = &[("PK", false), ("KEK", false), ("db", true), ("dbx", true)];

fn ucs2(s: &str) -> Vec<u8> {
    s.encode_utf16()
        .chain([0])
        .flat_map(u16::to_le_bytes)
        .collect()
}

/// A (guid, name area) pair: usually a valid NUL-terminated name, at times
/// one without NUL, with an odd size, with bytes after the NUL, empty, or
/// with a surrogate or non-ASCII character.
fn name(rng: &mut Rng) -> (Guid, Vec<u8>) {
    if rng.chance(6) {
        let (n, img) = *rng.pick(SB_NAMES);
        let g = if img {
            IMAGE_SECURITY_DATABASE
        } else {
            GLOBAL_VARIABLE
        };
        return (g, ucs2(n));
    }
    let g = *rng.pick(&[VENDOR_A, VENDOR_A, VENDOR_B, GLOBAL_VARIABLE]);
    let base = ucs2(rng.pick::<&str>(NAMES));
    if !rng.chance(12) {
        return (g, base);
    }
    let bad = match rng.below(7) {
        0 => base[..base.len() - 2].to_vec(), // no NUL
        1 => {
            let mut b = base.clone(); // odd size
            b.push(0);
            b
        }
        2 => {
            let mut b = base.clone(); // bytes after the NUL
            b.extend_from_slice(&ucs2("xy"));
            b
        }
        3 => vec![0, 0], // empty name
        4 => {
            let mut b = vec![0x00, 0xd8]; // lone surrogate
            b.extend_from_slice(&base);
            b
        }
        5 => ucs2("Näme€"),
        _ => Vec::new(), // NameSize 0
    };
    (g, bad)
}

fn attributes(rng: &mut Rng) -> u32 {
    *rng.pick(&[
        0x7, 0x7, 0x7, 0x3, 0x3, 0x6, 0x2, 0x1, 0x4, 0x0, 0x47, 0x43, 0x27, 0x67, 0x17, 0x8, 0xf,
        0x80, 0x107,
    ])
}

fn data(rng: &mut Rng) -> Vec<u8> {
    let n = match rng.below(20) {
        0 => 0,
        1 => 1,
        2 => 60_000,
        3 => BUFFER_SIZE - MM_HEADER - 16 - 36 - 4, // a 1-character name fills the buffer
        _ => 1 + rng.below(64) as usize,
    };
    rng.bytes(n)
}

/// Patches a u64 at `off`.
fn put_u64(r: &mut [u8], off: usize, v: u64) {
    if let Some(b) = r.get_mut(off..off + 8) {
        b.copy_from_slice(&v.to_le_bytes());
    }
}

/// Sets MessageLength to the request's actual length.
fn fix_length(r: &mut [u8]) {
    let ml = (r.len() - MM_HEADER) as u64;
    put_u64(r, 16, ml);
}

fn set_variable(rng: &mut Rng) -> Vec<u8> {
    let (g, n) = name(rng);
    let mut r = request::set_variable(L, &g, &n, attributes(rng), &data(rng));
    if rng.chance(8) {
        // Sizes past the limits or inconsistent with MessageLength.
        let field = if rng.chance(50) { 56 } else { 64 };
        let v = *rng.pick(&[262_145u64, 262_144, 0x1_0000, u64::MAX, 3]);
        put_u64(&mut r, field, v);
    }
    r
}

fn get_variable(rng: &mut Rng) -> Vec<u8> {
    let (g, n) = name(rng);
    let cap = *rng.pick(&[0u64, 0, 1, 4, 64, 64, 512, 60_000]);
    let mut r = request::get_variable(L, &g, &n, cap);
    if rng.chance(8) {
        let v = *rng.pick(&[262_145u64, 65_536, u64::MAX, 100_000]);
        put_u64(&mut r, 56, v); // DataSize claims more than the buffer
    }
    r
}

fn get_next(rng: &mut Rng) -> Vec<u8> {
    let (g, n) = if rng.chance(40) {
        (VENDOR_A, ucs2(""))
    } else {
        name(rng)
    };
    let cap = *rng.pick(&[2u64, 4, 16, 64, 512, 512, 1024]);
    let cap = cap.max(n.len() as u64);
    let mut r = request::get_next_variable_name(L, &g, &n, cap);
    if rng.chance(6) {
        put_u64(&mut r, 56, *rng.pick(&[262_145u64, u64::MAX, 70_000]));
    }
    r
}

fn policy_entry(rng: &mut Rng) -> Vec<u8> {
    let (g, n) = if rng.chance(15) {
        (*rng.pick(&[VENDOR_A, VENDOR_B]), Vec::new()) // namespace-wide
    } else {
        let (g, mut n) = name(rng);
        if rng.chance(15) && n.len() >= 4 {
            n[0] = b'#'; // wildcard character
            n[1] = 0;
        }
        (g, n)
    };
    let lock_type = *rng.pick(&[0u8, 0, 1, 2, 3, 4]);
    let mut lock = Vec::new();
    if lock_type == 3 {
        let (lg, ln) = name(rng);
        lock.extend_from_slice(&lg.0);
        lock.push(rng.below(3) as u8);
        lock.push(0);
        lock.extend_from_slice(&ln);
    }
    let offset_to_name = 44 + lock.len();
    let size = offset_to_name + n.len();
    let mut e = Vec::new();
    let version = if rng.chance(95) { 0x0001_0000u32 } else { 0x2 };
    e.extend_from_slice(&version.to_le_bytes());
    e.extend_from_slice(&(size as u16).to_le_bytes());
    e.extend_from_slice(&(offset_to_name as u16).to_le_bytes());
    e.extend_from_slice(&g.0);
    let min = *rng.pick(&[0u32, 0, 1, 4, 100]);
    let max = *rng.pick(&[u32::MAX, u32::MAX, 8, 64, 0]);
    e.extend_from_slice(&min.to_le_bytes());
    e.extend_from_slice(&max.to_le_bytes());
    let must = *rng.pick(&[0u32, 0, 1, 2, 4, 7]);
    let cant = *rng.pick(&[0u32, 0, 4, 1, 0x40]);
    e.extend_from_slice(&must.to_le_bytes());
    e.extend_from_slice(&cant.to_le_bytes());
    e.push(lock_type);
    e.extend_from_slice(&[0, 0, 0]);
    e.extend_from_slice(&lock);
    e.extend_from_slice(&n);
    e
}

fn policy(rng: &mut Rng) -> Vec<u8> {
    let cmd = if rng.chance(5) {
        *rng.pick(&[0u32, 8, 0x100])
    } else {
        *rng.pick(&[1u32, 2, 2, 3, 3, 3, 3, 4, 5, 6, 7])
    };
    let params = match cmd {
        2 => vec![0xa5],
        3 => policy_entry(rng),
        4 => {
            let mut p = Vec::new();
            p.extend_from_slice(&(rng.below(3) as u32).to_le_bytes());
            p.extend_from_slice(&[0; 9]);
            p.resize(p.len() + 256, 0);
            p
        }
        6 | 7 => {
            let (g, n) = name(rng);
            let mut p = g.0.to_vec();
            p.extend_from_slice(&(n.len() as u64).to_le_bytes());
            p.extend_from_slice(&n);
            p.resize(p.len() + 128, 0);
            p
        }
        _ => Vec::new(),
    };
    let mut r = request::policy(L, cmd, &params);
    if rng.chance(5) {
        r[24] = b'X'; // bad signature
    } else if rng.chance(4) {
        r[28] = 2; // bad revision
    }
    r
}

fn lock_variable(rng: &mut Rng) -> Vec<u8> {
    let (g, n) = name(rng);
    request::lock_variable(L, &g, &n)
}

fn other_function(rng: &mut Rng) -> Vec<u8> {
    let f = *rng.pick(&[0u64, 5, 7, 9, 10, 11, 12, 13, 14, 15, 0x100, u64::MAX]);
    let len = *rng.pick(&[0usize, 8, 32, 64]);
    let payload = rng.bytes(len);
    request::variable(L, f, &payload)
}

fn event(rng: &mut Rng) -> Vec<u8> {
    let g = *rng.pick(&[
        END_OF_DXE_EVENT,
        READY_TO_BOOT_EVENT,
        EXIT_BOOT_SERVICES_EVENT,
        UNKNOWN_GUID,
    ]);
    request::event(L, &g)
}

/// A request with a framing or header problem.
fn malformed(rng: &mut Rng) -> Vec<u8> {
    let mut r = match rng.below(3) {
        0 => request::query_variable_info(L, 7),
        1 => request::get_payload_size(L),
        _ => request::policy(L, 2, &[0]),
    };
    match rng.below(6) {
        // MessageLength shorter than the protocol header.
        0 => {
            let n = rng.below(16) as usize;
            r.truncate(MM_HEADER + n);
            fix_length(&mut r);
        }
        // At the buffer limit: accepted; one past: refused.
        1 => {
            r.resize(BUFFER_SIZE, 0);
            fix_length(&mut r);
        }
        2 => put_u64(&mut r, 16, (BUFFER_SIZE - MM_HEADER + 1) as u64),
        3 => put_u64(&mut r, 16, u64::MAX - 10),
        // Random bytes in the body.
        _ => {
            for _ in 0..1 + rng.below(4) {
                let i = MM_HEADER + rng.below((r.len() - MM_HEADER) as u64) as usize;
                r[i] = rng.next_u64() as u8;
            }
        }
    }
    r
}

/// Flips a few bytes after the MM header of a valid request.
fn corrupt(rng: &mut Rng, mut r: Vec<u8>) -> Vec<u8> {
    if r.len() > MM_HEADER {
        for _ in 0..1 + rng.below(3) {
            let i = MM_HEADER + rng.below((r.len() - MM_HEADER) as u64) as usize;
            r[i] ^= 1 << rng.below(8);
        }
    }
    r
}

/// One random step.
pub fn step(rng: &mut Rng) -> Step {
    if rng.chance(2) {
        return Step::Reset;
    }
    let r = match rng.below(100) {
        0..=29 => set_variable(rng),
        30..=44 => get_variable(rng),
        45..=56 => get_next(rng),
        57..=60 => request::query_variable_info(L, attributes(rng)),
        61..=62 => request::get_payload_size(L),
        63..=74 => policy(rng),
        75..=78 => lock_variable(rng),
        79..=84 => other_function(rng),
        85..=87 => event(rng),
        88..=92 => malformed(rng),
        _ => {
            let base = match rng.below(3) {
                0 => set_variable(rng),
                1 => get_variable(rng),
                _ => get_next(rng),
            };
            corrupt(rng, base)
        }
    };
    Step::Request(normalize_request(&r))
}

/// A sequence of `n` random steps from `seed`. Exit from boot services is
/// rare, so most of a sequence runs in the boot-services phase.
///
/// After a SetVariable (volatile or non-volatile) and after a policy
/// REGISTER, one time in three, a QueryVariableInfo follows, so the
/// storage accounting is compared right where it changes (it counts
/// volatile and non-volatile variables and, in QEMU 11.1, policies).
/// The inserted queries count towards `n`.
pub fn sequence(seed: u64, n: usize) -> Vec<Step> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let s = step(&mut rng);
        let changes = matches!(&s, Step::Request(r) if changes_storage(r));
        out.push(s);
        if changes && out.len() < n && rng.chance(33) {
            let attrs = *rng.pick(&[7u32, 3, 0]);
            out.push(Step::Request(normalize_request(
                &request::query_variable_info(L, attrs),
            )));
        }
    }
    out
}

/// A SetVariable or a policy REGISTER (whatever its fate).
fn changes_storage(r: &[u8]) -> bool {
    let guid = r.get(..16);
    (guid == Some(&uefi_vars::guid::SMM_VARIABLE_PROTOCOL.0[..])
        && r.get(24..32) == Some(&3u64.to_le_bytes()[..]))
        || (guid == Some(&uefi_vars::guid::VAR_CHECK_POLICY_MMI.0[..])
            && r.get(32..36) == Some(&3u32.to_le_bytes()[..]))
}

/// Largest request the PIO runs send (see [`sequence_for`]).
pub const PIO_MAX_REQUEST: usize = 32 * 1024;

/// [`sequence`] for a given transfer mode. In PIO mode, requests
/// longer than [`PIO_MAX_REQUEST`] are left out: large PIO transfers (a
/// 64 KiB request reliably) make QEMU 10.0.2 corrupt its own heap (it
/// aborts or crashes, not on every run; see
/// `tests/data/qemu10-pio-abort.pcap.gz`). DMA mode keeps them.
pub fn sequence_for(seed: u64, n: usize, pio: bool) -> Vec<Step> {
    let mut steps = sequence(seed, n);
    if pio {
        steps.retain(|s| !matches!(s, Step::Request(r) if r.len() > PIO_MAX_REQUEST));
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_query(s: &Step) -> bool {
        matches!(s, Step::Request(r) if r.get(24..32) == Some(&4u64.to_le_bytes()[..]))
    }

    #[test]
    fn queries_follow_storage_changes() {
        let steps = sequence(1, 2000);
        assert_eq!(steps.len(), 2000);
        let after_change = steps
            .windows(2)
            .filter(|w| matches!(&w[0], Step::Request(r) if changes_storage(r)) && is_query(&w[1]))
            .count();
        let volatile_then_query = steps
            .windows(2)
            .filter(|w| match &w[0] {
                // SetVariable with data, without NON_VOLATILE (abs 72).
                Step::Request(r) if changes_storage(r) && r.len() > 76 => {
                    r[72] & 1 == 0 && r[72] & 6 != 0 && is_query(&w[1])
                }
                _ => false,
            })
            .count();
        let nv_then_query = steps
            .windows(2)
            .filter(|w| match &w[0] {
                Step::Request(r) if changes_storage(r) && r.len() > 76 => {
                    r[72] & 1 == 1 && is_query(&w[1])
                }
                _ => false,
            })
            .count();
        assert!(after_change > 100, "{after_change}");
        assert!(volatile_then_query > 10, "{volatile_then_query}");
        assert!(nv_then_query > 10, "{nv_then_query}");
        assert_eq!(sequence(7, 300), sequence(7, 300));
    }
}
