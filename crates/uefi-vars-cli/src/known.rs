//! Well-known variables decoded for `list` and `get` (text and `--json`):
//! load options (Boot####, Driver####, SysPrep####, PlatformRecovery####),
//! the order lists, BootNext/BootCurrent, Timeout, the language variables,
//! the console device paths, OsIndications(Supported) and shim's
//! MokSBState and SbatLevel (UEFI spec 3.3 "Globally Defined Variables",
//! shim's MokVars.txt).

use serde_json::{json, Value};
use uefi_vars::codec::Reader;
use uefi_vars::devpath::{self, LoadOption};
use uefi_vars::guid;
use uefi_vars::name::VarName;
use uefi_vars::variable::Variable;
use uefi_vars::well_known;

/// A decoded value: one line of text and its JSON form.
pub struct Decoded {
    pub text: String,
    pub json: Value,
}

fn u16s(data: &[u8]) -> Option<Vec<u16>> {
    (data.len() % 2 == 0).then(|| VarName::ucs2_units(data))
}

fn ascii_z(data: &[u8]) -> Option<String> {
    let text = data.strip_suffix(&[0]).unwrap_or(data);
    text.iter()
        .all(|b| b.is_ascii() && (*b >= 0x20 || *b == b'\n' || *b == b'\r'))
        .then(|| String::from_utf8_lossy(text).into_owned())
}

/// `Boot0001`-style names: the prefix (the table is
/// [`well_known::LOAD_OPTION_PREFIXES`]).
fn numbered(name: &str) -> Option<&'static str> {
    well_known::load_option(name).map(|(prefix, _)| prefix)
}

const OS_INDICATIONS: [(u64, &str); 8] = [
    (0x1, "BOOT_TO_FW_UI"),
    (0x2, "TIMESTAMP_REVOCATION"),
    (0x4, "FILE_CAPSULE_DELIVERY_SUPPORTED"),
    (0x8, "FMP_CAPSULE_SUPPORTED"),
    (0x10, "CAPSULE_RESULT_VAR_SUPPORTED"),
    (0x20, "START_OS_RECOVERY"),
    (0x40, "START_PLATFORM_RECOVERY"),
    (0x80, "JSON_CONFIG_DATA_REFRESH"),
];

fn load_option(data: &[u8]) -> Option<Decoded> {
    let o = LoadOption::parse(data).ok()?;
    let path = devpath::to_text(&o.device_path);
    let mut text = format!("{:?} {path}", o.description);
    let flags = o.flags();
    if !flags.is_empty() {
        text.push_str(&format!(" [{}]", flags.join(",")));
    }
    if !o.optional_data.is_empty() {
        text.push_str(&format!(" +{} bytes optional data", o.optional_data.len()));
    }
    Some(Decoded {
        text,
        json: json!({
            "attributes": o.attributes,
            "flags": flags,
            "description": o.description,
            "device_path": path,
            "optional_data": uefi_vars::persist::json::to_hex(&o.optional_data),
        }),
    })
}

fn global(name: &str, data: &[u8]) -> Option<Decoded> {
    if numbered(name).is_some() {
        return load_option(data);
    }
    match name {
        "BootOrder" | "DriverOrder" | "SysPrepOrder" => {
            let list: Vec<String> = u16s(data)?.iter().map(|n| format!("{n:04X}")).collect();
            Some(Decoded {
                text: list.join(", "),
                json: json!(list),
            })
        }
        "BootNext" | "BootCurrent" => {
            let [n] = <[u16; 1]>::try_from(u16s(data)?).ok()?;
            Some(Decoded {
                text: format!("Boot{n:04X}"),
                json: json!(format!("Boot{n:04X}")),
            })
        }
        "Timeout" => {
            let [n] = <[u16; 1]>::try_from(u16s(data)?).ok()?;
            Some(Decoded {
                text: format!("{n} s"),
                json: json!(n),
            })
        }
        "Lang" | "PlatformLang" | "LangCodes" | "PlatformLangCodes" => {
            let t = ascii_z(data)?;
            Some(Decoded {
                text: format!("{t:?}"),
                json: json!(t),
            })
        }
        "ConIn" | "ConOut" | "ErrOut" | "ConInDev" | "ConOutDev" | "ErrOutDev" => {
            let t = devpath::to_text(data);
            Some(Decoded {
                text: t.clone(),
                json: json!(t),
            })
        }
        "OsIndications" | "OsIndicationsSupported" => {
            let mut r = Reader::new(data);
            let bits = r.u64("OsIndications").ok().filter(|_| r.is_empty())?;
            let names: Vec<String> = OS_INDICATIONS
                .iter()
                .filter(|(b, _)| bits & b != 0)
                .map(|(_, n)| (*n).to_string())
                .chain((bits & !0xff != 0).then(|| format!("{:#x}", bits & !0xff)))
                .collect();
            Some(Decoded {
                text: format!(
                    "{bits:#x} ({})",
                    if names.is_empty() {
                        "-".into()
                    } else {
                        names.join("|")
                    }
                ),
                json: json!({ "value": bits, "flags": names }),
            })
        }
        _ => None,
    }
}

fn shim(name: &str, data: &[u8]) -> Option<Decoded> {
    match name {
        "MokSBState" | "MokSBStateRT" => {
            let [b] = <[u8; 1]>::try_from(data).ok()?;
            let what = if b == 1 {
                "shim validation disabled"
            } else {
                "shim validation enabled"
            };
            Some(Decoded {
                text: format!("{b} ({what})"),
                json: json!(b),
            })
        }
        "SbatLevel" | "SbatLevelRT" => {
            let t = ascii_z(data)?;
            Some(Decoded {
                text: format!("{:?}", t.trim_end()),
                json: json!(t),
            })
        }
        _ => None,
    }
}

/// The decoded value of a well-known variable.
pub fn decode(v: &Variable) -> Option<Decoded> {
    let name = v.name.to_string();
    if v.guid == guid::GLOBAL_VARIABLE {
        global(&name, &v.data)
    } else if v.guid == guid::SHIM_LOCK {
        shim(&name, &v.data)
    } else {
        None
    }
}
