//! Human-readable rendering of variables.

use std::fmt::Write;

use uefi_vars::codec::{self, Reader};
use uefi_vars::guid::{self, Guid};
use uefi_vars::name::VarName;
use uefi_vars::siglist;
use uefi_vars::variable::Variable;
use uefi_vars::well_known;

/// Short name of a signature type GUID.
fn sig_type_name(g: &Guid) -> String {
    well_known::signature_type(g).map_or_else(|| g.to_string(), |t| t.name.to_string())
}

fn is_signature_database(v: &Variable) -> bool {
    well_known::holds_signature_lists(&v.guid, &v.name)
}

fn x509_summary(der: &[u8]) -> String {
    match openssl::x509::X509::from_der(der) {
        Ok(c) => {
            let name = crate::explain::name_text;
            let serial = c
                .serial_number()
                .to_bn()
                .and_then(|b| b.to_hex_str().map(|s| s.to_string()))
                .unwrap_or_default();
            let sha256 = c
                .digest(openssl::hash::MessageDigest::sha256())
                .map(|d| uefi_vars::persist::json::to_hex(&d))
                .unwrap_or_default();
            format!(
                "subject: {}\n        issuer:  {}\n        serial:  {}\n        sha256:  {}",
                name(c.subject_name()),
                name(c.issuer_name()),
                serial,
                sha256
            )
        }
        Err(_) => format!("unparsable certificate ({} bytes)", der.len()),
    }
}

/// Decoded signature lists, one entry per line.
pub fn signature_lists(data: &[u8]) -> Option<String> {
    let lists = siglist::parse(data)?;
    let mut out = String::new();
    for (i, l) in lists.iter().enumerate() {
        let _ = writeln!(
            out,
            "  list {i}: {} ({} entries, {} bytes each)",
            sig_type_name(&l.sig_type),
            l.entries.len(),
            l.signature_size
        );
        for e in &l.entries {
            let (owner, body) = e.split_at(siglist::SIGNATURE_OWNER_SIZE.min(e.len()));
            let owner = <[u8; 16]>::try_from(owner)
                .map(Guid)
                .map(|g| g.to_string())
                .unwrap_or_default();
            let known = <[u8; 16]>::try_from(e.get(..16).unwrap_or_default())
                .ok()
                .and_then(|b| crate::names::name_of(&Guid(b)));
            match known {
                Some(n) => writeln!(out, "    owner {owner} ({n})"),
                None => writeln!(out, "    owner {owner}"),
            }
            .unwrap_or_default();
            if l.sig_type == guid::CERT_X509 {
                let _ = writeln!(out, "        {}", x509_summary(body));
            } else {
                let _ = writeln!(out, "        {}", hex::encode(body));
            }
        }
    }
    Some(out)
}

/// The vendor GUID as `list` shows it: its well-known name (which every
/// `--guid` accepts), padded to a GUID's width, else the GUID.
fn vendor_column(v: &Variable) -> String {
    match crate::names::name_of(&v.guid) {
        Some(n) => format!("{n:<36}"),
        None => v.guid.to_string(),
    }
}

/// One line per variable for `list`: vendor, attributes, size, name,
/// short value.
pub fn summary_line(v: &Variable) -> String {
    if is_signature_database(v) {
        if let Some(lists) = siglist::parse(&v.data) {
            let kinds: Vec<String> = lists
                .iter()
                .map(|l| format!("{}x{}", l.entries.len(), sig_type_name(&l.sig_type)))
                .collect();
            return format!(
                "{}  {:<14} {:>6}  {}  = [{}]",
                vendor_column(v),
                v.attrs(),
                v.data.len(),
                v.name,
                kinds.join(", ")
            );
        }
    }
    let value = crate::known::decode(v)
        .map(|d| d.text)
        .or_else(|| preview(&v.data));
    format!(
        "{}  {:<14} {:>6}  {}{}",
        vendor_column(v),
        v.attrs(),
        v.data.len(),
        v.name,
        value.map(|p| format!("  = {p}")).unwrap_or_default()
    )
}

/// A full description with a hex dump.
pub fn details(v: &Variable) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "name:       {}", v.name);
    match crate::names::name_of(&v.guid) {
        Some(n) => writeln!(out, "guid:       {} ({n})", v.guid),
        None => writeln!(out, "guid:       {}", v.guid),
    }
    .unwrap_or_default();
    let _ = writeln!(out, "attributes: {:#x} ({})", v.attributes, v.attrs());
    let _ = writeln!(out, "size:       {}", v.data.len());
    if v.is_time_auth() {
        let _ = writeln!(out, "timestamp:  {}", v.time);
    }
    if is_signature_database(v) {
        if let Some(lists) = signature_lists(&v.data) {
            out.push_str("signature lists:\n");
            out.push_str(&lists);
            return out;
        }
    }
    if let Some(p) = crate::known::decode(v)
        .map(|d| d.text)
        .or_else(|| preview(&v.data))
    {
        let _ = writeln!(out, "value:      {p}");
    }
    out.push_str(&hexdump(&v.data));
    out
}

fn time_json(v: &Variable) -> serde_json::Value {
    let t = &v.time;
    serde_json::json!(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    ))
}

fn x509_json(der: &[u8]) -> serde_json::Value {
    use openssl::hash::MessageDigest;
    let Ok(c) = openssl::x509::X509::from_der(der) else {
        return serde_json::json!({ "unparsable": true });
    };
    let name = crate::explain::name_text;
    let sha256 = c
        .digest(MessageDigest::sha256())
        .map(|d| uefi_vars::persist::json::to_hex(&d))
        .unwrap_or_default();
    serde_json::json!({
        "subject": name(c.subject_name()),
        "issuer": name(c.issuer_name()),
        "serial": c.serial_number().to_bn().ok().and_then(|b| b.to_hex_str().ok().map(|s| s.to_string())),
        "sha256": sha256,
    })
}

fn lists_json(data: &[u8]) -> Option<serde_json::Value> {
    let lists = siglist::parse(data)?;
    Some(serde_json::Value::Array(
        lists
            .iter()
            .map(|l| {
                let entries: Vec<serde_json::Value> = l
                    .entries
                    .iter()
                    .map(|e| {
                        let (owner, body) = e.split_at(siglist::SIGNATURE_OWNER_SIZE.min(e.len()));
                        let owner = <[u8; 16]>::try_from(owner).map(Guid).unwrap_or_default();
                        let mut o = serde_json::json!({
                            "owner": owner.to_string(),
                            "owner_name": crate::names::name_of(&owner),
                        });
                        if l.sig_type == guid::CERT_X509 {
                            o["certificate"] = x509_json(body);
                        } else {
                            o["hash"] = serde_json::json!(uefi_vars::persist::json::to_hex(body));
                        }
                        o
                    })
                    .collect();
                serde_json::json!({ "type": sig_type_name(&l.sig_type), "entries": entries })
            })
            .collect(),
    ))
}

/// The machine-readable form (`--json`).
pub fn to_json(v: &Variable) -> serde_json::Value {
    let mut o = serde_json::json!({
        "name": v.name.to_string(),
        "guid": v.guid.to_string(),
        "guid_name": crate::names::name_of(&v.guid),
        "attributes": v.attributes,
        "attribute_names": v.attrs().to_string(),
        "size": v.data.len(),
        "data": uefi_vars::persist::json::to_hex(&v.data),
    });
    if v.is_time_auth() {
        o["time"] = time_json(v);
    }
    if is_signature_database(v) {
        if let Some(l) = lists_json(&v.data) {
            o["signature_lists"] = l;
        }
    }
    if let Some(d) = crate::known::decode(v) {
        o["value"] = d.json;
    }
    o
}

/// Text for data that is obviously a small integer, a UCS-2 string or ASCII.
fn preview(data: &[u8]) -> Option<String> {
    match data {
        [] => return None,
        [b] => return Some(format!("{b}")),
        // Two printable characters are short text ("en"), not a number.
        [a, b] if [a, b].iter().all(|c| c.is_ascii_alphanumeric()) && !a.is_ascii_digit() => {
            return Some(format!("{:?}", String::from_utf8_lossy(data)))
        }
        [_, _] => return codec::u16_at(data, 0, "value").ok().map(|n| format!("{n}")),
        _ => {}
    }
    if looks_ucs2(data) {
        let units = VarName::units_until_nul(data);
        return Some(format!("{:?} (UCS-2)", String::from_utf16_lossy(&units)));
    }
    let text = data.strip_suffix(&[0]).unwrap_or(data);
    if text.len() >= 2 && text.iter().all(|b| (0x20..0x7f).contains(b)) {
        return Some(format!("{:?}", String::from_utf8_lossy(text)));
    }
    let mut r = Reader::new(data);
    let word = r.u32("value").ok().filter(|_| r.is_empty())?;
    Some(format!("{word:#x}"))
}

fn looks_ucs2(data: &[u8]) -> bool {
    data.len() >= 4
        && data.len() % 2 == 0
        && data.ends_with(&[0, 0])
        && VarName::ucs2_units(&data[..data.len() - 2])
            .iter()
            .all(|u| (0x20..0x7f).contains(u))
}

fn hexdump(data: &[u8]) -> String {
    let mut out = String::new();
    for (i, chunk) in data.chunks(16).enumerate() {
        let hex: Vec<String> = chunk.chunks(1).map(hex::encode).collect();
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

/// Writes the X.509 certificates of the signature databases among `vars`
/// as PEM files `NAME-N.pem` in `dir`, refusing to overwrite any file.
pub fn extract_certs(dir: &std::path::Path, vars: &[Variable]) -> Result<(), String> {
    use std::io::Write as _;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for v in vars.iter().filter(|v| is_signature_database(v)) {
        for (n, der) in siglist::x509_certificates(&v.data).into_iter().enumerate() {
            let path = dir.join(format!("{}-{n}.pem", v.name));
            let pem = openssl::x509::X509::from_der(der)
                .and_then(|c| c.to_pem())
                .map_err(|e| format!("{} certificate {n}: {e}", v.name))?;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .map_err(|e| {
                    format!(
                        "{}: {e} (existing files are not overwritten)",
                        path.display()
                    )
                })?;
            f.write_all(&pem)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            eprintln!("{}", path.display());
        }
    }
    Ok(())
}
