//! The JSON store loader (`persist::json::decode`) on arbitrary bytes, with
//! the round-trip oracle: whatever decodes must encode, the encoding must
//! decode to the same variables, and encoding again gives the same bytes.
//! A store that decodes is also loaded into a service (`Service::open` and
//! `Service::new`), which must enumerate it completely.
//!
//! Journal replay (`persist::journal::replay`) too: an input with a NUL
//! byte is a JSON file (before it) and a journal (after it). A journal part
//! starting with `F` is framed by the target (header for that JSON file,
//! then chunks of `u16` length + payload, each given its sequence number
//! and CRC; the last may be cut short), so the fuzzer reaches the record
//! decoder; otherwise the bytes are the journal file as they are. Replay
//! must not panic; what it returns must encode and decode identically, and
//! appending a valid record where it says the next one goes must give the
//! same store with that change.
#![no_main]

use libfuzzer_sys::fuzz_target;
use uefi_vars::persist::journal::{self, EntryRef, FileId};
use uefi_vars::persist::{json, MemoryStorage};
use uefi_vars::variable::Variable;
use uefi_vars::{Config, Service};
use uefi_vars_fuzz::check_enumeration;

fuzz_target!(|data: &[u8]| {
    match data.iter().position(|&b| b == 0) {
        None => json_only(data),
        Some(nul) => replay(&data[..nul], &data[nul + 1..]),
    }
});

fn json_only(data: &[u8]) {
    let Ok(vars) = json::decode(data) else {
        return;
    };
    let refs: Vec<&Variable> = vars.iter().collect();
    let text = json::encode(&refs).expect("a decoded store must encode");
    let again = json::decode(text.as_bytes()).expect("an encoded store must decode");
    assert_eq!(again, vars, "decode(encode(x)) != x");
    let refs2: Vec<&Variable> = again.iter().collect();
    assert_eq!(
        json::encode(&refs2).expect("encode"),
        text,
        "encoding is not stable"
    );

    // Host-side load without reset: every variable is there, in file order.
    let svc = Service::open(
        Config::default(),
        Box::new(MemoryStorage::from_text(text.clone())),
    )
    .expect("a decodable store must load");
    let loaded: Vec<&Variable> = svc.store().iter().collect();
    assert_eq!(loaded, refs, "Service::open changed the variables");
    // A boot on it: the machine reset adds the Secure Boot state and the
    // guest can walk everything visible.
    if let Ok(mut svc) = Service::new(Config::default(), Box::new(MemoryStorage::from_text(text))) {
        check_enumeration(&mut svc);
    }
}

/// The journal file the target frames from `spec` (after its `F`).
fn framed(json: &[u8], spec: &[u8]) -> Vec<u8> {
    let mut out = journal::encode_header(1, FileId::of(json));
    let mut rest = spec;
    let mut seq = 1;
    while rest.len() >= 2 {
        let len = usize::from(uefi_vars::codec::u16_at(rest, 0, "length").expect("2 bytes"));
        rest = &rest[2..];
        let take = len.min(rest.len());
        let record = journal::frame_record(seq, &rest[..take]).expect("small record");
        if take < len {
            // Cut short: a torn tail of the framed length.
            out.extend_from_slice(&record[..record.len().min(12 + take)]);
            break;
        }
        out.extend_from_slice(&record);
        rest = &rest[take..];
        seq += 1;
    }
    out
}

fn replay(json_part: &[u8], journal_part: &[u8]) {
    let journal_bytes = match journal_part.split_first() {
        Some((b'F', spec)) => framed(json_part, spec),
        _ => journal_part.to_vec(),
    };
    let Ok(r) = journal::replay(json_part, &journal_bytes) else {
        return;
    };
    let refs: Vec<&Variable> = r.vars.iter().collect();
    let text = json::encode(&refs).expect("a replayed store must encode");
    assert_eq!(
        json::decode(text.as_bytes()).expect("and decode"),
        r.vars,
        "replayed store does not round-trip"
    );
    let Some(end) = r.append_at else {
        return;
    };
    // One more change where the replay says the next record goes.
    let extra = Variable::new(
        uefi_vars::guid::GLOBAL_VARIABLE,
        "FuzzAppended".into(),
        7,
        vec![1, 2, 3],
    );
    let mut grown = journal_bytes[..end as usize].to_vec();
    if grown.is_empty() {
        grown = journal::encode_header(r.next_seq.max(1), r.json);
    }
    let seq = if end == 0 {
        r.next_seq.max(1)
    } else {
        r.next_seq
    };
    grown.extend(journal::encode_record(seq, EntryRef::Put(&extra)).expect("encodable"));
    let again = journal::replay(json_part, &grown).expect("a valid append must replay");
    let mut want = r.vars.clone();
    want.retain(|v| !(v.guid == extra.guid && v.name == extra.name));
    want.push(extra);
    assert_eq!(
        again.vars, want,
        "appended record not replayed as the change"
    );
    assert!(again.torn.is_none());
}
