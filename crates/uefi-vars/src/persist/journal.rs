//! The write-ahead journal beside a JSON store (`NAME.journal`): its format
//! and its replay. The file I/O is in [`super::file`]; everything here works
//! on bytes, so the fuzz target and the tests can drive it directly.
//!
//! # Format (all integers little-endian)
//!
//! Header, 40 bytes: magic `UEFIVJNL`, version `u32` (1), reserved `u32`
//! (0), `first_seq` `u64`, the identity of the JSON file the records apply
//! to (`base_len` `u64`, `base_crc` `u32`: its length and CRC-32C), and the
//! CRC-32C of the 36 bytes before it.
//!
//! Then records: `len` `u32`, `seq` `u64`, `len` bytes of payload, and the
//! CRC-32C of everything before it in the record. Sequence numbers start at
//! `first_seq` and go up by one. The payload is a kind byte and a body:
//! - `1` put: a JSON store holding exactly the one variable, as
//!   [`json::encode`] writes it, so it goes through the same strict decoder
//!   as the store file;
//! - `2` delete: the 16 GUID bytes and the name's UCS-2 units (no NUL);
//! - `3` compacted: the identity (`u64` length, `u32` CRC-32C) of the JSON
//!   file a compaction is about to write.
//!
//! # Replay
//!
//! When the JSON file is the journal's base, the records are applied to it
//! in order (a put moves the variable to the end, as the service's store
//! does). When the JSON file is the one the journal's last record announced
//! (a compaction renamed it into place but did not get to empty the
//! journal), the journal is obsolete and the JSON file is current. Anything
//! else is [`JournalError::Mismatch`]: the JSON file was replaced while
//! changes were pending, and picking either side would lose something.
//!
//! A last record that is incomplete, fails its CRC while ending at the end of
//! the file, or is all zero bytes, is a torn write: it was never
//! acknowledged (the append is acknowledged only after its `fdatasync`), so
//! it is dropped and reported ([`TornTail`]). A bad record followed by more
//! data, a sequence gap, or a record whose payload does not decode is
//! corruption of acknowledged data: an error, never a silent drop.

use crate::codec::Reader;
use crate::crc32c::crc32c;
use crate::name::VarName;
use crate::store::VarStore;
use crate::variable::{VarKey, Variable};

use super::json::{self, FormatError};

/// The journal file's magic.
pub const MAGIC: [u8; 8] = *b"UEFIVJNL";
/// The only format version written and accepted.
pub const VERSION: u32 = 1;
/// Size of the header.
pub const HEADER_LEN: usize = 40;
/// Record framing: `len`, `seq` before the payload, CRC after it.
const RECORD_HEAD: usize = 12;
const RECORD_TAIL: usize = 4;
/// No record the service writes comes near this (a variable is bounded by
/// the storage size); a larger length is garbage.
const MAX_PAYLOAD: u32 = 64 * 1024 * 1024;

const KIND_PUT: u8 = 1;
const KIND_DELETE: u8 = 2;
const KIND_COMPACTED: u8 = 3;

/// Identity of a JSON file's content: its length and CRC-32C.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileId {
    /// The file's length in bytes.
    pub len: u64,
    /// The CRC-32C of its content.
    pub crc: u32,
}

impl FileId {
    /// The identity of `content`.
    pub fn of(content: &[u8]) -> Self {
        FileId {
            len: content.len() as u64,
            crc: crc32c(content),
        }
    }
}

impl std::fmt::Display for FileId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} bytes, CRC-32C {:#010x}", self.len, self.crc)
    }
}

/// Why a journal cannot be replayed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// The header is present but wrong (magic, version, CRC).
    #[error("journal header: {0}")]
    Header(String),
    /// A record before the last one is damaged, or the sequence has a gap.
    /// A damaged record or a gap in the sequence.
    #[error("journal record at offset {offset}: {problem}")]
    Corrupt {
        /// Offset of the record.
        offset: u64,
        /// What is wrong.
        problem: String,
    },
    /// A record's variable does not decode.
    #[error("journal record #{seq} at offset {offset}: {source}")]
    Record {
        /// Offset of the record.
        offset: u64,
        /// Its sequence number.
        seq: u64,
        /// Why its variable does not decode.
        #[source]
        source: FormatError,
    },
    /// The journal belongs to another version of the JSON file.
    #[error(
        "the journal holds changes to a JSON file of {base}, but the file is now {actual}: \
         it was replaced or edited while changes were pending; keep the journal and restore \
         that file, or remove the journal to accept the file as it is"
    )]
    /// The file the journal was written against.
    Mismatch {
        /// The journal's base file.
        base: FileId,
        /// The file as it is.
        actual: FileId,
    },
}

/// A dropped incomplete last record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    /// Where the dropped bytes start.
    pub offset: u64,
    /// How many bytes were dropped.
    pub bytes: u64,
    /// Why the record counts as torn.
    pub reason: String,
}

/// A change as a journal record describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Entry {
    /// A variable was written.
    Put(Variable),
    /// A variable was deleted.
    Delete(VarKey),
    /// The JSON file was rewritten; it now has this identity.
    Compacted(FileId),
}

/// A decoded journal.
#[derive(Debug, Default)]
pub struct Parsed {
    /// `None`: no journal (empty file, or only a torn header).
    pub first_seq: Option<u64>,
    /// The JSON file the journal applies to.
    pub base: Option<FileId>,
    /// The valid records, in order.
    pub entries: Vec<Entry>,
    /// Length of the valid part (header and whole records).
    pub valid_len: u64,
    /// The sequence number the next record gets.
    pub next_seq: u64,
    /// A dropped torn last record.
    pub torn: Option<TornTail>,
}

/// The encoded header.
pub fn encode_header(first_seq: u64, base: FileId) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&first_seq.to_le_bytes());
    out.extend_from_slice(&base.len.to_le_bytes());
    out.extend_from_slice(&base.crc.to_le_bytes());
    let crc = crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// A change to record: borrowed, so recording costs only the change.
#[derive(Clone, Copy, Debug)]
pub enum EntryRef<'a> {
    /// A variable is written.
    Put(&'a Variable),
    /// A variable is deleted.
    Delete(&'a VarKey),
    /// The JSON file was rewritten; it now has this identity.
    Compacted(FileId),
}

/// One encoded record. Fails only for a variable the JSON store could not
/// hold either.
pub fn encode_record(seq: u64, entry: EntryRef<'_>) -> Result<Vec<u8>, FormatError> {
    let mut payload = Vec::new();
    match entry {
        EntryRef::Put(var) => {
            payload.push(KIND_PUT);
            payload.extend_from_slice(json::encode(&[var])?.as_bytes());
        }
        EntryRef::Delete(key) => {
            payload.push(KIND_DELETE);
            payload.extend_from_slice(&key.guid.0);
            for u in key.name.units() {
                payload.extend_from_slice(&u.to_le_bytes());
            }
        }
        EntryRef::Compacted(id) => {
            payload.push(KIND_COMPACTED);
            payload.extend_from_slice(&id.len.to_le_bytes());
            payload.extend_from_slice(&id.crc.to_le_bytes());
        }
    }
    frame_record(seq, &payload)
        .ok_or_else(|| FormatError::Document("journal record too large".into()))
}

/// Frames `payload` (kind byte and body) as record number `seq`: length,
/// sequence number, payload, CRC. `None` if it is too large.
pub fn frame_record(seq: u64, payload: &[u8]) -> Option<Vec<u8>> {
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|&l| l <= MAX_PAYLOAD)?;
    let mut out = Vec::with_capacity(payload.len().saturating_add(RECORD_HEAD + RECORD_TAIL));
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(payload);
    let crc = crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Some(out)
}

fn torn(offset: usize, total: usize, reason: impl Into<String>) -> Option<TornTail> {
    Some(TornTail {
        offset: offset as u64,
        bytes: total.saturating_sub(offset) as u64,
        reason: reason.into(),
    })
}

fn malformed(offset: usize, e: crate::codec::Malformed) -> JournalError {
    JournalError::Corrupt {
        offset: offset.saturating_add(e.offset) as u64,
        problem: e.what,
    }
}

/// Decodes the header; `Ok(None)` for a header that was never completely
/// written (shorter than a header, or all zero bytes).
fn parse_header(bytes: &[u8]) -> Result<Option<(u64, FileId)>, JournalError> {
    let Some(head) = bytes.get(..HEADER_LEN) else {
        return Ok(None);
    };
    if head.iter().all(|&b| b == 0) {
        return Ok(None);
    }
    let mut r = Reader::new(head);
    let bad = |e: crate::codec::Malformed| JournalError::Header(e.what);
    let magic: [u8; 8] = r.array("magic").map_err(bad)?;
    if magic != MAGIC {
        return Err(JournalError::Header(format!(
            "magic {magic:02x?}, not a uefi-vars journal"
        )));
    }
    let version = r.u32("version").map_err(bad)?;
    let _reserved = r.u32("reserved").map_err(bad)?;
    let first_seq = r.u64("first_seq").map_err(bad)?;
    let len = r.u64("base_len").map_err(bad)?;
    let crc = r.u32("base_crc").map_err(bad)?;
    let stored = r.u32("header CRC").map_err(bad)?;
    let actual = crc32c(head.get(..HEADER_LEN - 4).unwrap_or_default());
    if stored != actual {
        return Err(JournalError::Header(format!(
            "CRC-32C {stored:#010x} stored, {actual:#010x} computed"
        )));
    }
    if version != VERSION {
        return Err(JournalError::Header(format!(
            "version {version}; this program reads version {VERSION}"
        )));
    }
    Ok(Some((first_seq, FileId { len, crc })))
}

/// Decodes a whole journal file.
pub fn parse(bytes: &[u8]) -> Result<Parsed, JournalError> {
    let mut out = Parsed::default();
    let Some((first_seq, base)) = parse_header(bytes)? else {
        if !bytes.is_empty() {
            out.torn = torn(0, bytes.len(), "incomplete journal header");
        }
        return Ok(out);
    };
    out.first_seq = Some(first_seq);
    out.base = Some(base);
    out.next_seq = first_seq;
    let mut pos = HEADER_LEN;
    while pos < bytes.len() {
        let rest = bytes.get(pos..).unwrap_or_default();
        match parse_record(rest, pos, out.next_seq)? {
            Step::Entry(entry, len) => {
                out.entries.push(entry);
                pos = pos.saturating_add(len);
                out.next_seq = out.next_seq.saturating_add(1);
            }
            Step::Torn(reason) => {
                out.torn = torn(pos, bytes.len(), reason);
                break;
            }
        }
    }
    out.valid_len = pos.min(bytes.len()) as u64;
    Ok(out)
}

enum Step {
    Entry(Entry, usize),
    Torn(String),
}

/// One record at the start of `rest` (absolute offset `at`).
fn parse_record(rest: &[u8], at: usize, want_seq: u64) -> Result<Step, JournalError> {
    if rest.iter().all(|&b| b == 0) {
        return Ok(Step::Torn("zero bytes after the last record".into()));
    }
    let mut r = Reader::new(rest);
    let (Ok(len), Ok(seq)) = (r.u32("len"), r.u64("seq")) else {
        return Ok(Step::Torn("incomplete record header".into()));
    };
    let total = usize::try_from(len)
        .ok()
        .and_then(|l| l.checked_add(RECORD_HEAD + RECORD_TAIL));
    let Some(record) = total.and_then(|t| rest.get(..t)) else {
        return Ok(Step::Torn(format!(
            "record of {len} payload bytes runs past the end of the file"
        )));
    };
    let (body, crc_bytes) = record.split_at(record.len().saturating_sub(RECORD_TAIL));
    // `record` holds RECORD_HEAD + len + RECORD_TAIL bytes: the CRC is there.
    let Ok(stored) = Reader::new(crc_bytes).u32("record CRC") else {
        return Ok(Step::Torn("incomplete record CRC".into()));
    };
    if crc32c(body) != stored {
        if record.len() == rest.len() {
            return Ok(Step::Torn("last record fails its CRC-32C".into()));
        }
        return Err(JournalError::Corrupt {
            offset: at as u64,
            problem: "record fails its CRC-32C and more records follow".into(),
        });
    }
    if seq != want_seq {
        return Err(JournalError::Corrupt {
            offset: at as u64,
            problem: format!("sequence number {seq}, expected {want_seq}"),
        });
    }
    let payload = body.get(RECORD_HEAD..).unwrap_or_default();
    let entry = parse_payload(payload, at, seq)?;
    Ok(Step::Entry(entry, record.len()))
}

fn parse_payload(payload: &[u8], at: usize, seq: u64) -> Result<Entry, JournalError> {
    let body_at = at.saturating_add(RECORD_HEAD);
    let mut r = Reader::new(payload);
    let kind = r.u8("record kind").map_err(|e| malformed(body_at, e))?;
    let body = payload.get(1..).unwrap_or_default();
    let corrupt = |problem: String| JournalError::Corrupt {
        offset: at as u64,
        problem,
    };
    match kind {
        KIND_PUT => {
            let mut vars = json::decode(body).map_err(|source| JournalError::Record {
                offset: at as u64,
                seq,
                source,
            })?;
            match (vars.pop(), vars.is_empty()) {
                (Some(var), true) => Ok(Entry::Put(var)),
                _ => Err(corrupt("put record must hold exactly one variable".into())),
            }
        }
        KIND_DELETE => {
            let guid = r.guid("GUID").map_err(|e| malformed(body_at, e))?;
            let name_len = r.remaining();
            if name_len % 2 != 0 {
                return Err(corrupt("delete record: odd name length".into()));
            }
            let units = r
                .ucs2(name_len, "name")
                .map_err(|e| malformed(body_at, e))?;
            json::check_units(&units).map_err(|p| corrupt(format!("delete record: {p}")))?;
            Ok(Entry::Delete(VarKey::new(guid, VarName::from_units(units))))
        }
        KIND_COMPACTED => {
            let len = r
                .u64("compacted length")
                .map_err(|e| malformed(body_at, e))?;
            let crc = r.u32("compacted CRC").map_err(|e| malformed(body_at, e))?;
            if r.remaining() != 0 {
                return Err(corrupt("compacted record: trailing bytes".into()));
            }
            Ok(Entry::Compacted(FileId { len, crc }))
        }
        other => Err(corrupt(format!("unknown record kind {other}"))),
    }
}

/// What replaying a journal onto a JSON file gave.
#[derive(Debug)]
pub struct Replayed {
    /// The merged store, in order.
    pub vars: Vec<Variable>,
    /// The JSON file's identity.
    pub json: FileId,
    /// Records applied.
    pub applied: u64,
    /// Where the next record goes; `None`: the journal is obsolete or holds
    /// only garbage and must be emptied first (its content is not part of
    /// the state).
    pub append_at: Option<u64>,
    /// The sequence number the next record gets.
    pub next_seq: u64,
    /// A dropped torn last record.
    pub torn: Option<TornTail>,
}

/// Why a JSON file and its journal do not give a store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The JSON file does not decode.
    #[error(transparent)]
    Json(FormatError),
    /// The journal does not apply to it.
    #[error(transparent)]
    Journal(JournalError),
}

/// The store that the JSON file `json_bytes` and the journal
/// `journal_bytes` (empty: none) hold together.
pub fn replay(json_bytes: &[u8], journal_bytes: &[u8]) -> Result<Replayed, ReplayError> {
    let parsed = parse(journal_bytes).map_err(ReplayError::Journal)?;
    let id = FileId::of(json_bytes);
    let base_vars = if json_bytes.is_empty() {
        Vec::new()
    } else {
        json::decode(json_bytes).map_err(ReplayError::Json)?
    };
    let mut out = Replayed {
        vars: Vec::new(),
        json: id,
        applied: 0,
        append_at: None,
        next_seq: parsed.next_seq,
        torn: parsed.torn.clone(),
    };
    let Some(base) = parsed.base else {
        // No journal: the JSON file is the store.
        out.append_at = journal_bytes.is_empty().then_some(0);
        out.vars = base_vars;
        return Ok(out);
    };
    if base != id {
        if matches!(parsed.entries.last(), Some(Entry::Compacted(t)) if *t == id) {
            // A finished compaction that did not get to empty the journal.
            out.vars = base_vars;
            out.torn = None;
            return Ok(out);
        }
        return Err(ReplayError::Journal(JournalError::Mismatch {
            base,
            actual: id,
        }));
    }
    out.vars = apply(base_vars, &parsed).map_err(ReplayError::Journal)?;
    out.applied = parsed
        .entries
        .iter()
        .filter(|e| !matches!(e, Entry::Compacted(_)))
        .count() as u64;
    out.append_at = Some(parsed.valid_len);
    Ok(out)
}

fn apply(base: Vec<Variable>, parsed: &Parsed) -> Result<Vec<Variable>, JournalError> {
    let mut store = VarStore::new(0);
    for var in base {
        store.put(var);
    }
    for (i, entry) in parsed.entries.iter().enumerate() {
        match entry {
            Entry::Put(var) => store.put(var.clone()),
            Entry::Delete(key) => {
                if store.remove(key).is_none() {
                    let seq = parsed.first_seq.unwrap_or(0).saturating_add(i as u64);
                    return Err(JournalError::Corrupt {
                        offset: 0,
                        problem: format!(
                            "record #{seq} deletes {}:{}, which the store does not hold",
                            key.guid, key.name
                        ),
                    });
                }
            }
            Entry::Compacted(_) => {}
        }
    }
    Ok(store.iter().cloned().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guid::GLOBAL_VARIABLE;

    fn var(name: &str, byte: u8) -> Variable {
        Variable::new(GLOBAL_VARIABLE, VarName::from(name), 7, vec![byte; 4])
    }

    fn journal(base: &[u8], entries: &[EntryRef<'_>]) -> Vec<u8> {
        let mut out = encode_header(1, FileId::of(base));
        for (i, e) in entries.iter().enumerate() {
            out.extend(encode_record(1 + i as u64, *e).unwrap());
        }
        out
    }

    #[test]
    fn replay_applies_puts_and_deletes_in_store_order() {
        let (a, b) = (var("A", 1), var("B", 2));
        let base = json::encode(&[&a, &b]).unwrap();
        let a2 = var("A", 9);
        let c = var("C", 3);
        let j = journal(
            base.as_bytes(),
            &[
                EntryRef::Put(&a2),
                EntryRef::Put(&c),
                EntryRef::Delete(&b.key()),
            ],
        );
        let r = replay(base.as_bytes(), &j).unwrap();
        assert_eq!(r.vars, vec![a2, c]);
        assert_eq!(r.applied, 3);
        assert_eq!(r.append_at, Some(j.len() as u64));
        assert_eq!(r.next_seq, 4);
        assert!(r.torn.is_none());
    }

    #[test]
    fn every_cut_of_the_last_record_is_a_torn_tail() {
        let a = var("A", 1);
        let base = json::encode(&[&a]).unwrap();
        let first = journal(base.as_bytes(), &[EntryRef::Put(&var("B", 2))]);
        let second = encode_record(2, EntryRef::Put(&var("C", 3))).unwrap();
        for cut in 1..second.len() {
            let mut j = first.clone();
            j.extend_from_slice(&second[..cut]);
            let r = replay(base.as_bytes(), &j).unwrap();
            assert_eq!(r.vars, vec![a.clone(), var("B", 2)], "cut {cut}");
            let t = r.torn.unwrap();
            assert_eq!((t.offset, t.bytes), (first.len() as u64, cut as u64));
            assert_eq!(r.append_at, Some(first.len() as u64));
        }
    }

    #[test]
    fn damage_before_the_tail_is_an_error() {
        let base = b"";
        let mut j = journal(
            base,
            &[EntryRef::Put(&var("A", 1)), EntryRef::Put(&var("B", 2))],
        );
        j[HEADER_LEN + 20] ^= 1;
        let e = replay(base, &j).unwrap_err();
        assert!(
            matches!(
                e,
                ReplayError::Journal(JournalError::Corrupt { offset: 40, .. })
            ),
            "{e}"
        );
    }

    #[test]
    fn stale_journal_after_compaction_is_ignored_else_mismatch() {
        let old = json::encode(&[&var("A", 1)]).unwrap();
        let new = json::encode(&[&var("A", 2)]).unwrap();
        let j = journal(
            old.as_bytes(),
            &[
                EntryRef::Put(&var("A", 2)),
                EntryRef::Compacted(FileId::of(new.as_bytes())),
            ],
        );
        let r = replay(new.as_bytes(), &j).unwrap();
        assert_eq!(r.vars, vec![var("A", 2)]);
        assert_eq!(r.append_at, None);
        let other = json::encode(&[&var("A", 3)]).unwrap();
        assert!(matches!(
            replay(other.as_bytes(), &j),
            Err(ReplayError::Journal(JournalError::Mismatch { .. }))
        ));
    }
}
