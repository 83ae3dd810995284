//! Human-readable rendering of variables.

use std::fmt::Write;

use uefi_vars::variable::{attr, Variable};

/// One line per variable: GUID, attributes, size, name, short value.
pub fn summary_line(v: &Variable) -> String {
    format!(
        "{}  {:<14} {:>6}  {}{}",
        v.guid,
        attr::describe(v.attributes),
        v.data.len(),
        v.name,
        preview(&v.data)
            .map(|p| format!("  = {p}"))
            .unwrap_or_default()
    )
}

/// A full description with a hex dump.
pub fn details(v: &Variable) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "name:       {}", v.name);
    let _ = writeln!(out, "guid:       {}", v.guid);
    let _ = writeln!(
        out,
        "attributes: {:#x} ({})",
        v.attributes,
        attr::describe(v.attributes)
    );
    let _ = writeln!(out, "size:       {}", v.data.len());
    if v.is_time_auth() {
        let t = &v.time;
        let _ = writeln!(
            out,
            "timestamp:  {:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            t.year(),
            t.month(),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        );
    }
    if let Some(p) = preview(&v.data) {
        let _ = writeln!(out, "value:      {p}");
    }
    out.push_str(&hexdump(&v.data));
    out
}

/// Text for data that is obviously a small integer, a UCS-2 string or ASCII.
fn preview(data: &[u8]) -> Option<String> {
    match data {
        [] => return None,
        [b] => return Some(format!("{b}")),
        [a, b] => return Some(format!("{}", u16::from_le_bytes([*a, *b]))),
        _ => {}
    }
    if looks_ucs2(data) {
        let units: Vec<u16> = data
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|&u| u != 0)
            .collect();
        return Some(format!("{:?} (UCS-2)", String::from_utf16_lossy(&units)));
    }
    let text = data.strip_suffix(&[0]).unwrap_or(data);
    if text.len() >= 2 && text.iter().all(|b| (0x20..0x7f).contains(b)) {
        return Some(format!("{:?}", String::from_utf8_lossy(text)));
    }
    match <[u8; 4]>::try_from(data) {
        Ok(w) => Some(format!("{:#x}", u32::from_le_bytes(w))),
        Err(_) => None,
    }
}

fn looks_ucs2(data: &[u8]) -> bool {
    data.len() >= 4
        && data.len() % 2 == 0
        && data.ends_with(&[0, 0])
        && data[..data.len() - 2]
            .chunks_exact(2)
            .all(|c| c[1] == 0 && (0x20..0x7f).contains(&c[0]))
}

fn hexdump(data: &[u8]) -> String {
    let mut out = String::new();
    for (i, chunk) in data.chunks(16).enumerate() {
        let hex: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
        let ascii: String = chunk
            .iter()
            .map(|&b| {
                if (0x20..0x7f).contains(&b) {
                    b as char
                } else {
                    '.'
                }
            })
            .collect();
        let _ = writeln!(out, "  {:06x}  {:<47}  {}", i * 16, hex.join(" "), ascii);
    }
    out
}
