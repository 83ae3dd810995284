//! QEMU's JSON variable store (`qapi/uefi.json`, "version 2"): encoder and
//! strict decoder.
//!
//! # Output
//!
//! [`encode`] produces exactly what QEMU's pretty JSON writer produces for
//! the same variables: 4-space indentation, `": "` after keys, `,` at line
//! ends, no trailing newline, lowercase hex, canonical lowercase GUIDs, and
//! the entry keys in the order QEMU emits them:
//!
//! `name`, `digest` (only when present), `guid`, `attr`, `time`, `data`.
//!
//! That order is not the QAPI schema order (guid, name, attr, data, time,
//! digest): QEMU builds a `QDict` and its writer walks the dict's hash
//! buckets (`tdb_hash(key) % 512`: name 39, digest 59, guid 186, attr 216,
//! time 425, data 505; version 184 before variables 292). The files QEMU
//! 11.1 writes confirm it for every key but `digest`, which needs a private
//! authenticated variable to show up.
//!
//! `time` is written whenever the variable has
//! TIME_BASED_AUTHENTICATED_WRITE_ACCESS (as QEMU does, even when the time is
//! zero), and also when a variable without that bit carries a non-zero time,
//! so that nothing is lost (QEMU never produces that case). `digest` is
//! written when there is one.
//!
//! # Names (deliberate difference from QEMU)
//!
//! QEMU writes names as ASCII only (each UCS-2 unit of 128 or more becomes
//! `?`) and, on load, turns each *byte* of the JSON string into one UCS-2
//! unit, so non-ASCII names are mangled. We are lossless instead: a name is
//! written as the Unicode text its UCS-2 units spell and read back as UTF-8
//! text converted to UTF-16. Characters are escaped exactly as QEMU's JSON
//! writer escapes them (`\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`, and
//! `\uXXXX` with uppercase hex for other controls and for everything from
//! U+007F up), so the file stays pure ASCII and ASCII names come out byte for
//! byte as QEMU writes them. virt-firmware (Python `json`) reads both the
//! escaped and the raw UTF-8 form.
//!
//! # Strict decoding
//!
//! QEMU loads entries without validation (bad hex becomes 0, a bad GUID an
//! unspecified value, attr is truncated, duplicates are kept). [`decode`]
//! instead rejects, with the index and name of the offending entry:
//! invalid JSON (including an object key given twice), unknown keys (neither
//! QEMU, whose QAPI visitor also refuses them, nor virt-fw-vars writes any,
//! and dropping one would lose information), missing or mistyped required
//! keys, bad GUIDs, attributes beyond 32 bits or with APPEND_WRITE, bad hex,
//! a `time` that is not exactly 16 bytes, empty `data` or `digest`, empty
//! names, names with NUL or characters outside UCS-2, and duplicate
//! (guid, name) pairs. `version` must be 2 or absent.

use std::collections::HashMap;
use std::fmt::{self, Write as _};

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::guid::Guid;
use crate::name::VarName;
use crate::time::EfiTime;
use crate::variable::{Attributes, VarKey, Variable};

/// The only format version written and accepted.
pub const VERSION: u64 = 2;

/// Why a JSON store could not be decoded or encoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// Not JSON at all (or a key repeated in an object is caught later as
    /// [`FormatError::Record`]); serde_json's message gives line and column.
    Syntax(#[source] serde_json::Error),
    /// The top level is wrong: not an object, bad `version`, no `variables`,
    /// an unknown key.
    Document(String),
    /// Entry `variables[index]` is invalid.
    Record {
        /// Position in the `variables` array, from 0.
        index: usize,
        /// The entry's `name` text, when it has a string one.
        name: Option<String>,
        /// The offending key, when the problem is one key.
        field: Option<String>,
        /// What is wrong.
        problem: String,
    },
    /// Variable `index` of the list given to [`encode`] cannot be stored in a
    /// form that [`decode`] would read back identically.
    Unencodable {
        /// Index of the variable in the list.
        index: usize,
        /// The name, lossily converted for display.
        name: String,
        /// Why it cannot be stored.
        problem: String,
    },
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormatError::Syntax(e) => write!(f, "invalid JSON: {e}"),
            FormatError::Document(problem) => f.write_str(problem),
            FormatError::Record {
                index,
                name,
                field,
                problem,
            } => {
                write!(f, "variables[{index}]")?;
                match name {
                    Some(n) => write!(f, " (name {n:?})")?,
                    None => f.write_str(" (no valid name)")?,
                }
                if let Some(field) = field {
                    write!(f, ", key {field:?}")?;
                }
                write!(f, ": {problem}")
            }
            FormatError::Unencodable {
                index,
                name,
                problem,
            } => write!(f, "cannot store variable #{index} ({name:?}): {problem}"),
        }
    }
}

// ---------------------------------------------------------------------------
// Encoding

/// Encodes `vars` (all of them, in order: filtering volatile variables is the
/// caller's business) as QEMU would write them.
///
/// Fails, before producing anything, on a variable that [`decode`] would
/// refuse: empty name, a NUL or surrogate unit in the name, empty data, an
/// APPEND_WRITE attribute, an empty digest, or a (guid, name) pair given
/// twice.
pub fn encode(vars: &[&Variable]) -> Result<String, FormatError> {
    check_store(vars)?;
    let mut size: usize = 64;
    for var in vars {
        // A capacity hint only: saturating arithmetic is exact enough.
        size = size
            .saturating_add(200)
            .saturating_add(var.name.units().len().saturating_mul(6))
            .saturating_add(var.data.len().saturating_mul(2))
            .saturating_add((var.digest_size() as usize).saturating_mul(2));
    }

    let mut out = String::with_capacity(size);
    out.push_str("{\n    \"version\": 2,\n    \"variables\": [");
    for (index, var) in vars.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        out.push_str("\n        {\n            \"name\": ");
        push_quoted_name(&mut out, var.name.units());
        if let Some(digest) = &var.digest {
            out.push_str(",\n            \"digest\": \"");
            push_hex(&mut out, digest);
            out.push('"');
        }
        // Writing to a String cannot fail.
        let _ = write!(
            out,
            ",\n            \"guid\": \"{}\",\n            \"attr\": {}",
            var.guid, var.attributes
        );
        if var.is_time_auth() || var.time != EfiTime::default() {
            out.push_str(",\n            \"time\": \"");
            push_hex(&mut out, &var.time.0);
            out.push('"');
        }
        out.push_str(",\n            \"data\": \"");
        push_hex(&mut out, &var.data);
        out.push_str("\"\n        }");
    }
    out.push_str("\n    ]\n}");
    Ok(out)
}

/// The checks of [`encode`] without the text: every variable storable, no
/// (guid, name) pair twice.
pub fn check_store(vars: &[&Variable]) -> Result<(), FormatError> {
    let mut seen: HashMap<VarKey, usize> = HashMap::with_capacity(vars.len());
    for (index, var) in vars.iter().enumerate() {
        check_encodable(var).map_err(|problem| FormatError::Unencodable {
            index,
            name: var.name.to_string(),
            problem: problem.to_string(),
        })?;
        if vars.len() > 1 {
            if let Some(first) = seen.insert(var.key(), index) {
                return Err(FormatError::Unencodable {
                    index,
                    name: var.name.to_string(),
                    problem: format!("same GUID and name as variable #{first}"),
                });
            }
        }
    }
    Ok(())
}

/// Why a variable cannot be stored in the JSON format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Unstorable {
    /// The name is not a storable UCS-2 name.
    #[error(transparent)]
    Name(#[from] NameProblem),
    /// The data is empty.
    #[error("empty data (a variable of size 0 does not exist)")]
    EmptyData,
    /// The stored attributes carry APPEND_WRITE, which is never stored.
    #[error("APPEND_WRITE (0x40) in the stored attributes")]
    AppendWrite,
    /// The digest is present but empty.
    #[error("empty digest")]
    EmptyDigest,
}

/// Why a variable name (as UCS-2 units or as text) is not storable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameProblem {
    /// The name has no character.
    #[error("empty name")]
    Empty,
    /// A NUL unit inside the name (units form).
    #[error("NUL unit in the name at position {pos}")]
    NulUnit {
        /// Position of the unit, from 0.
        pos: usize,
    },
    /// A UTF-16 surrogate unit: names are UCS-2.
    #[error("surrogate unit {unit:#06x} in the name at position {pos} (names are UCS-2)")]
    Surrogate {
        /// The unit.
        unit: u16,
        /// Position of the unit, from 0.
        pos: usize,
    },
    /// A NUL character inside the name (text form).
    #[error("NUL character at position {pos}")]
    NulChar {
        /// Position of the character, from 0.
        pos: usize,
    },
    /// A character beyond U+FFFF (text form).
    #[error("character U+{code:X} at position {pos} is outside UCS-2")]
    OutsideUcs2 {
        /// The character's code point.
        code: u32,
        /// Position of the character, from 0.
        pos: usize,
    },
}

pub(crate) fn check_encodable(var: &Variable) -> Result<(), Unstorable> {
    check_units(var.name.units())?;
    if var.data.is_empty() {
        return Err(Unstorable::EmptyData);
    }
    if var.attrs().contains(Attributes::APPEND_WRITE) {
        return Err(Unstorable::AppendWrite);
    }
    if var.digest.as_ref().is_some_and(Vec::is_empty) {
        return Err(Unstorable::EmptyDigest);
    }
    Ok(())
}

pub(crate) fn check_units(units: &[u16]) -> Result<(), NameProblem> {
    if units.is_empty() {
        return Err(NameProblem::Empty);
    }
    for (pos, &unit) in units.iter().enumerate() {
        match unit {
            0 => return Err(NameProblem::NulUnit { pos }),
            0xd800..=0xdfff => return Err(NameProblem::Surrogate { unit, pos }),
            _ => {}
        }
    }
    Ok(())
}

/// Appends the name as a JSON string, escaped like QEMU's `quoted_str()`.
/// The units are known to hold no NUL and no surrogate.
fn push_quoted_name(out: &mut String, units: &[u16]) {
    out.push('"');
    for &u in units {
        match u {
            0x22 => out.push_str("\\\""),
            0x5c => out.push_str("\\\\"),
            0x08 => out.push_str("\\b"),
            0x0c => out.push_str("\\f"),
            0x0a => out.push_str("\\n"),
            0x0d => out.push_str("\\r"),
            0x09 => out.push_str("\\t"),
            0x20..=0x7e => out.push(char::from(u as u8)),
            _ => {
                let _ = write!(out, "\\u{u:04X}");
            }
        }
    }
    out.push('"');
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    out.push_str(&hex::encode(bytes));
}

/// Lowercase hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// Why hex text could not be decoded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum HexError {
    /// A character that is not a hex digit.
    #[error("non-hex character {c:?} at offset {pos}")]
    NonHex {
        /// The character.
        c: char,
        /// Its byte offset in the text.
        pos: usize,
    },
    /// An odd number of digits.
    #[error("odd number of hex digits ({len})")]
    OddLength {
        /// The number of digits.
        len: usize,
    },
    /// Any other refusal of the hex decoder.
    #[error(transparent)]
    Other(hex::FromHexError),
}

/// Decodes hex text (either case, even length, nothing else).
pub fn from_hex(text: &str) -> Result<Vec<u8>, HexError> {
    // A stray character is named before the length is judged, by its
    // position in the text (the hex crate checks the length first).
    if let Some((pos, c)) = text.char_indices().find(|(_, c)| !c.is_ascii_hexdigit()) {
        return Err(HexError::NonHex { c, pos });
    }
    hex::decode(text).map_err(|e| match e {
        hex::FromHexError::OddLength => HexError::OddLength { len: text.len() },
        other => HexError::Other(other),
    })
}

// ---------------------------------------------------------------------------
// Decoding

/// A JSON value that keeps object members in order, repeated keys included
/// (serde_json's `Value` would silently keep the last one).
enum Json {
    Null,
    Bool(bool),
    UInt(u64),
    NegInt(i64),
    Float(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::UInt(_) | Json::NegInt(_) | Json::Float(_) => "a number",
            Json::Str(_) => "a string",
            Json::Arr(_) => "an array",
            Json::Obj(_) => "an object",
        }
    }

    /// Short text of a scalar for messages.
    fn describe(&self) -> String {
        match self {
            Json::Bool(b) => b.to_string(),
            Json::UInt(v) => v.to_string(),
            Json::NegInt(v) => v.to_string(),
            Json::Float(v) => v.to_string(),
            Json::Str(s) => format!("{s:?}"),
            other => other.kind().to_string(),
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Json, E> {
        Ok(Json::UInt(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Json, E> {
        Ok(match u64::try_from(v) {
            Ok(u) => Json::UInt(u),
            Err(_) => Json::NegInt(v),
        })
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json, E> {
        Ok(Json::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Json, E> {
        Ok(Json::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Json, E> {
        Ok(Json::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Arr(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut members = Vec::new();
        while let Some(member) = map.next_entry::<String, Json>()? {
            members.push(member);
        }
        Ok(Json::Obj(members))
    }
}

/// Decodes a whole store. The caller treats an empty file as an empty store
/// before calling this; here empty or blank text is invalid JSON, as in QEMU.
pub fn decode(text: &[u8]) -> Result<Vec<Variable>, FormatError> {
    let root: Json = serde_json::from_slice(text).map_err(FormatError::Syntax)?;
    let doc = |s: String| FormatError::Document(s);
    let Json::Obj(members) = root else {
        return Err(doc(format!(
            "the top level is {}, not an object",
            root.kind()
        )));
    };
    let mut version: Option<Json> = None;
    let mut variables: Option<Json> = None;
    for (key, value) in members {
        let slot = match key.as_str() {
            "version" => &mut version,
            "variables" => &mut variables,
            _ => return Err(doc(format!("unknown top-level key {key:?}"))),
        };
        if slot.is_some() {
            return Err(doc(format!("top-level key {key:?} appears twice")));
        }
        *slot = Some(value);
    }
    match version {
        None | Some(Json::UInt(VERSION)) => {}
        Some(other) => {
            return Err(doc(format!(
                "unsupported \"version\" {} (only {VERSION} is supported)",
                other.describe()
            )))
        }
    }
    let entries = match variables {
        Some(Json::Arr(entries)) => entries,
        Some(other) => {
            return Err(doc(format!(
                "\"variables\" is {}, not an array",
                other.kind()
            )))
        }
        None => return Err(doc("missing top-level key \"variables\"".into())),
    };

    let mut seen: HashMap<VarKey, usize> = HashMap::with_capacity(entries.len());
    let mut out = Vec::with_capacity(entries.len());
    for (index, entry) in entries.into_iter().enumerate() {
        let var = decode_entry(index, entry)?;
        if let Some(first) = seen.insert(var.key(), index) {
            return Err(FormatError::Record {
                index,
                name: var.name.to_string_lossless(),
                field: None,
                problem: format!(
                    "duplicate of variables[{first}] (same guid {} and name)",
                    var.guid
                ),
            });
        }
        out.push(var);
    }
    Ok(out)
}

/// Where an entry's problem is reported: its index and `name` text.
struct EntryContext {
    index: usize,
    name: Option<String>,
}

impl EntryContext {
    fn err(&self, field: &str, problem: impl fmt::Display) -> FormatError {
        FormatError::Record {
            index: self.index,
            name: self.name.clone(),
            field: Some(field.to_owned()),
            problem: problem.to_string(),
        }
    }

    fn string(&self, field: &str, value: Option<Json>) -> Result<String, FormatError> {
        match value {
            Some(Json::Str(s)) => Ok(s),
            Some(other) => Err(self.err(field, format!("is {}, not a string", other.kind()))),
            None => Err(self.err(field, "missing")),
        }
    }

    fn optional_string(
        &self,
        field: &str,
        value: Option<Json>,
    ) -> Result<Option<String>, FormatError> {
        match value {
            None => Ok(None),
            some => self.string(field, some).map(Some),
        }
    }
}

/// An entry's keys, each given at most once, not yet checked.
#[derive(Default)]
struct EntryMembers {
    name: Option<Json>,
    guid: Option<Json>,
    attributes: Option<Json>,
    data: Option<Json>,
    time: Option<Json>,
    digest: Option<Json>,
}

fn decode_entry(index: usize, entry: Json) -> Result<Variable, FormatError> {
    let Json::Obj(members) = entry else {
        return Err(FormatError::Record {
            index,
            name: None,
            field: None,
            problem: format!("is {}, not an object", entry.kind()),
        });
    };
    let cx = EntryContext {
        index,
        name: members.iter().find_map(|(k, v)| match (k.as_str(), v) {
            ("name", Json::Str(s)) => Some(s.clone()),
            _ => None,
        }),
    };
    let m = sort_entry_members(&cx, members)?;
    let name = cx.string("name", m.name)?;
    let name = decode_name(&name).map_err(|p| cx.err("name", p))?;
    let guid_text = cx.string("guid", m.guid)?;
    let guid: Guid = guid_text.parse().map_err(|e| cx.err("guid", e))?;
    let attributes = decode_attributes(&cx, m.attributes)?;
    let data = from_hex(&cx.string("data", m.data)?).map_err(|p| cx.err("data", p))?;
    if data.is_empty() {
        return Err(cx.err("data", "empty (a variable of size 0 does not exist)"));
    }
    Ok(Variable {
        guid,
        name,
        attributes,
        data,
        time: decode_time(&cx, m.time)?,
        digest: decode_digest(&cx, m.digest)?,
    })
}

/// Puts each member in its slot: an unknown key or a key given twice fails.
fn sort_entry_members(
    cx: &EntryContext,
    members: Vec<(String, Json)>,
) -> Result<EntryMembers, FormatError> {
    let mut m = EntryMembers::default();
    for (key, value) in members {
        let slot = match key.as_str() {
            "name" => &mut m.name,
            "guid" => &mut m.guid,
            "attr" => &mut m.attributes,
            "data" => &mut m.data,
            "time" => &mut m.time,
            "digest" => &mut m.digest,
            _ => return Err(cx.err(&key, "unknown key")),
        };
        if slot.is_some() {
            return Err(cx.err(&key, "key appears twice"));
        }
        *slot = Some(value);
    }
    Ok(m)
}

/// `attr`: an unsigned 32-bit number without APPEND_WRITE.
fn decode_attributes(cx: &EntryContext, value: Option<Json>) -> Result<u32, FormatError> {
    let attributes = match value {
        Some(Json::UInt(v)) => {
            u32::try_from(v).map_err(|_| cx.err("attr", format!("{v} does not fit in 32 bits")))?
        }
        Some(other @ (Json::NegInt(_) | Json::Float(_))) => {
            return Err(cx.err(
                "attr",
                format!("{} is not an unsigned integer", other.describe()),
            ))
        }
        Some(other) => return Err(cx.err("attr", format!("is {}, not a number", other.kind()))),
        None => return Err(cx.err("attr", "missing")),
    };
    if Attributes::from(attributes).contains(Attributes::APPEND_WRITE) {
        return Err(cx.err(
            "attr",
            format!("{attributes:#x} has APPEND_WRITE (0x40), which is never stored"),
        ));
    }
    Ok(attributes)
}

/// `time` (optional): the hex of exactly one EFI_TIME.
fn decode_time(cx: &EntryContext, value: Option<Json>) -> Result<EfiTime, FormatError> {
    let Some(text) = cx.optional_string("time", value)? else {
        return Ok(EfiTime::default());
    };
    let bytes = from_hex(&text).map_err(|p| cx.err("time", p))?;
    let raw: [u8; EfiTime::SIZE] = bytes.as_slice().try_into().map_err(|_| {
        cx.err(
            "time",
            format!("{} bytes, an EFI_TIME has {}", bytes.len(), EfiTime::SIZE),
        )
    })?;
    Ok(EfiTime(raw))
}

/// `digest` (optional): non-empty hex.
fn decode_digest(cx: &EntryContext, value: Option<Json>) -> Result<Option<Vec<u8>>, FormatError> {
    let Some(text) = cx.optional_string("digest", value)? else {
        return Ok(None);
    };
    let bytes = from_hex(&text).map_err(|p| cx.err("digest", p))?;
    if bytes.is_empty() {
        return Err(cx.err("digest", "empty"));
    }
    Ok(Some(bytes))
}

/// Name text → UCS-2 units: non-empty, no NUL, nothing beyond U+FFFF.
fn decode_name(text: &str) -> Result<VarName, NameProblem> {
    if text.is_empty() {
        return Err(NameProblem::Empty);
    }
    for (pos, c) in text.chars().enumerate() {
        if c == '\0' {
            return Err(NameProblem::NulChar { pos });
        }
        if u32::from(c) > 0xffff {
            return Err(NameProblem::OutsideUcs2 {
                code: u32::from(c),
                pos,
            });
        }
    }
    Ok(VarName::from(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guid::GLOBAL_VARIABLE;
    use crate::variable::attr;

    fn var(name: &str, attributes: u32, data: &[u8]) -> Variable {
        Variable::new(
            GLOBAL_VARIABLE,
            VarName::from(name),
            attributes,
            data.to_vec(),
        )
    }

    #[test]
    fn empty_store_is_qemu_shaped() {
        assert_eq!(
            encode(&[]).unwrap(),
            "{\n    \"version\": 2,\n    \"variables\": [\n    ]\n}"
        );
        assert!(
            decode(b"{\n    \"version\": 2,\n    \"variables\": [\n    ]\n}")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn key_order_and_optional_keys() {
        let mut v = var("PK", attr::SECURE_BOOT_DB, &[1, 2]);
        v.time.0[0] = 0xe9;
        v.digest = Some(vec![0xab; 2]);
        let text = encode(&[&v]).unwrap();
        let expected = "{\n    \"version\": 2,\n    \"variables\": [\n        {\n            \"name\": \"PK\",\n            \"digest\": \"abab\",\n            \"guid\": \"8be4df61-93ca-11d2-aa0d-00e098032b8c\",\n            \"attr\": 39,\n            \"time\": \"e9000000000000000000000000000000\",\n            \"data\": \"0102\"\n        }\n    ]\n}";
        assert_eq!(text, expected);
        assert_eq!(decode(text.as_bytes()).unwrap(), vec![v]);

        // time-auth with zero time: written anyway (QEMU does)
        let z = var("VendorKeysNv", 0x23, &[0]);
        assert!(encode(&[&z]).unwrap().contains("\"time\": \"000000"));
        // no time for plain variables
        let p = var("Lang", 7, b"eng\0");
        assert!(!encode(&[&p]).unwrap().contains("time"));
        // a stray non-zero time on a plain variable is kept
        let mut s = var("Odd", 7, &[1]);
        s.time.0[3] = 9;
        let t = encode(&[&s]).unwrap();
        assert!(t.contains("\"time\""));
        assert_eq!(decode(t.as_bytes()).unwrap(), vec![s]);
    }

    #[test]
    fn names_escaped_like_qemu() {
        let units: Vec<u16> = "a\"b\\c\u{8}\u{c}\n\r\t\u{1}\u{7f}ö变"
            .encode_utf16()
            .collect();
        let v = Variable::new(GLOBAL_VARIABLE, VarName::from_units(units), 7, vec![1]);
        let text = encode(&[&v]).unwrap();
        assert!(text.contains(r#""name": "a\"b\\c\b\f\n\r\t\u0001\u007F\u00F6\u53D8""#));
        assert!(text.is_ascii());
        assert_eq!(decode(text.as_bytes()).unwrap(), vec![v]);
    }

    #[test]
    fn raw_utf8_names_are_read() {
        let text = r#"{"variables": [{"name": "Bööt", "guid": "8be4df61-93ca-11d2-aa0d-00e098032b8c", "attr": 7, "data": "01"}]}"#;
        let vars = decode(text.as_bytes()).unwrap();
        assert_eq!(vars[0].name, VarName::from("Bööt"));
    }

    #[test]
    fn unencodable_variables() {
        let bad_units = Variable::new(
            GLOBAL_VARIABLE,
            VarName::from_units(vec![0x41, 0xd800]),
            7,
            vec![1],
        );
        let nul = Variable::new(
            GLOBAL_VARIABLE,
            VarName::from_units(vec![0x41, 0]),
            7,
            vec![1],
        );
        let empty_name = var("", 7, &[1]);
        let empty_data = var("A", 7, &[]);
        let mut append = var("A", 7, &[1]);
        append.attributes |= attr::APPEND_WRITE;
        let mut empty_digest = var("A", 0x27, &[1]);
        empty_digest.digest = Some(vec![]);
        for v in [bad_units, nul, empty_name, empty_data, append, empty_digest] {
            let e = encode(&[&var("Ok", 7, &[1]), &v]).unwrap_err();
            assert!(
                matches!(e, FormatError::Unencodable { index: 1, .. }),
                "{v:?}: {e}"
            );
        }
        let a = var("A", 7, &[1]);
        let e = encode(&[&a, &a]).unwrap_err();
        assert!(
            e.to_string().contains("same GUID and name as variable #0"),
            "{e}"
        );
    }

    #[test]
    fn hex_helpers() {
        assert_eq!(to_hex(&[0x00, 0xab, 0x7f]), "00ab7f");
        assert_eq!(from_hex("00AB7f").unwrap(), vec![0x00, 0xab, 0x7f]);
        assert_eq!(from_hex("").unwrap(), Vec::<u8>::new());
        assert_eq!(from_hex("abc").unwrap_err(), HexError::OddLength { len: 3 });
        assert_eq!(
            from_hex("0g").unwrap_err(),
            HexError::NonHex { c: 'g', pos: 1 }
        );
        assert!(from_hex("0 ").is_err());
        assert!(from_hex("+1").is_err());
        assert!(from_hex("é0").is_err());
    }
}
