//! Why `apply` was refused, in terms a user can act on: the service only
//! answers an EFI status (as the firmware does), so the reason is worked
//! out again here from the update and the store before the write, checking
//! in the order edk2's AuthVariableLib does (descriptor, timestamp,
//! payload format, signature; SecurityPkg/Library/AuthVariableLib/
//! AuthService.c VerifyTimeBasedPayload and Pk/KekDatabase checks).

use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
use openssl::stack::Stack;
use openssl::x509::{X509NameRef, X509};

use uefi_vars::auth::{parse_auth2, Auth2};
use uefi_vars::codec::Reader;
use uefi_vars::guid::{self, Guid};
use uefi_vars::name::VarName;
use uefi_vars::siglist::{self, FormatProblem};
use uefi_vars::variable::{attr, Attributes, Variable};

/// `CN=..., O=...` text of an X.509 name (short names, as `openssl x509`).
pub(crate) fn name_text(n: &X509NameRef) -> String {
    n.entries()
        .map(|e| {
            format!(
                "{}={}",
                e.object().nid().short_name().unwrap_or("?"),
                e.data().to_string().unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// ContentInfo { signedData, [0] EXPLICIT SignedData }, which OpenSSL parses
/// (the update carries the bare SignedData).
fn content_info(signed_data: &[u8]) -> Vec<u8> {
    fn der_len(n: usize) -> Vec<u8> {
        match n {
            0..0x80 => vec![n as u8],
            0x80..0x100 => vec![0x81, n as u8],
            0x100..0x1_0000 => vec![0x82, (n >> 8) as u8, n as u8],
            _ => vec![0x83, (n >> 16) as u8, (n >> 8) as u8, n as u8],
        }
    }
    const SIGNED_DATA_OID: [u8; 11] = [
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02,
    ];
    let mut ctx = vec![0xa0];
    ctx.extend(der_len(signed_data.len()));
    ctx.extend_from_slice(signed_data);
    let mut body = SIGNED_DATA_OID.to_vec();
    body.extend(ctx);
    let mut out = vec![0x30];
    out.extend(der_len(body.len()));
    out.extend(body);
    out
}

/// Subjects of the certificates that signed `pkcs7`.
fn signers(pkcs7: &[u8]) -> Option<Vec<String>> {
    let p7 = Pkcs7::from_der(&content_info(pkcs7))
        .or_else(|_| Pkcs7::from_der(pkcs7))
        .ok()?;
    let none = Stack::<X509>::new().ok()?;
    let certs = p7.signers(&none, Pkcs7Flags::empty()).ok()?;
    Some(certs.iter().map(|c| name_text(c.subject_name())).collect())
}

fn subjects(list: &[u8]) -> Vec<String> {
    siglist::x509_certificates(list)
        .into_iter()
        .filter_map(|der| X509::from_der(der).ok())
        .map(|c| name_text(c.subject_name()))
        .collect()
}

/// Where in `data` the signature lists stop making sense.
fn list_offset_problem(data: &[u8]) -> Option<String> {
    let mut r = Reader::new(data);
    while r.remaining() > 0 {
        let at = r.pos();
        let fail = |what: String| Some(format!("at offset {at:#x}: {what}"));
        let Ok(header) = r.take(28, "list") else {
            return fail(format!(
                "{} bytes left, too few for an EFI_SIGNATURE_LIST header (28)",
                r.remaining()
            ));
        };
        // `header` holds the 28 bytes these four fields fill.
        let mut h = Reader::new(header);
        let fields = (|| {
            let ty = h.guid("SignatureType")?;
            let list = h.u32_size("SignatureListSize")?;
            let head = h.u32_size("SignatureHeaderSize")?;
            let sig = h.u32_size("SignatureSize")?;
            Ok::<_, uefi_vars::codec::Malformed>((ty, list, head, sig))
        })();
        let (ty, list, head, sig) = match fields {
            Ok(f) => f,
            Err(e) => return fail(e.to_string()),
        };
        let body = list.checked_sub(28).and_then(|b| b.checked_sub(head));
        match body {
            None => return fail(format!("ListSize {list} is smaller than its headers")),
            Some(b) if b > r.remaining() => {
                return fail(format!(
                    "ListSize {list} runs past the end of the payload ({} bytes left)",
                    r.remaining().saturating_add(28)
                ))
            }
            Some(b) if sig <= 16 || b % sig != 0 => {
                return fail(format!(
                    "list of type {ty}: SignatureSize {sig} does not divide the {b} signature bytes"
                ))
            }
            Some(b) => {
                let _ = r.take(b.saturating_add(head), "entries");
            }
        }
    }
    None
}

fn format_problem(data: &[u8], is_pk: bool) -> Option<String> {
    let problem = siglist::check_format(data, is_pk).err()?;
    let what = match problem {
        FormatProblem::Malformed => {
            list_offset_problem(data).unwrap_or_else(|| "a list without entries".to_string())
        }
        FormatProblem::UnknownType(t) => format!("a list of unknown signature type {t}"),
        FormatProblem::WrongSize(t) => {
            format!("a list of type {t} with the wrong signature or header size")
        }
        FormatProblem::PkNotOneCertificate => {
            "PK must hold exactly one X.509 certificate".to_string()
        }
        other => format!("{other:?}"),
    };
    Some(format!("the payload is not a valid signature list: {what}"))
}

fn find<'a>(vars: &'a [Variable], g: Guid, name: &str) -> Option<&'a Variable> {
    vars.iter().find(|v| v.guid == g && v.name.eq_str(name))
}

/// Which certificates may sign an update of `name`, as text.
fn anchors(vars: &[Variable], name: &str) -> (String, Vec<String>) {
    let pk = find(vars, guid::GLOBAL_VARIABLE, "PK")
        .map(|v| subjects(&v.data))
        .unwrap_or_default();
    if matches!(name, "PK" | "KEK") {
        return ("the PK certificate".into(), pk);
    }
    let mut all = find(vars, guid::GLOBAL_VARIABLE, "KEK")
        .map(|v| subjects(&v.data))
        .unwrap_or_default();
    all.extend(pk);
    ("any KEK or PK certificate".into(), all)
}

/// The reason a refused update of (`vendor`, `name`) was refused, given the
/// store before the write.
pub fn refusal(
    vars: &[Variable],
    vendor: Guid,
    name: &str,
    attributes: u32,
    data: &[u8],
) -> Option<String> {
    if !Attributes::from(attributes).contains(Attributes::TIME_BASED_AUTHENTICATED_WRITE_ACCESS) {
        return None;
    }
    let Ok(auth) = parse_auth2(data) else {
        return Some(
            "the file is not an EFI_VARIABLE_AUTHENTICATION_2 update (a timestamp whose \
             Pad1, Nanosecond, TimeZone, Daylight and Pad2 are zero, then a \
             WIN_CERTIFICATE_UEFI_GUID of type PKCS#7 with consistent lengths)"
                .into(),
        );
    };
    timestamp_problem(vars, vendor, name, attributes, &auth)
        .or_else(|| {
            let is_db =
                uefi_vars::auth::SecureBootDb::classify(&vendor, &VarName::from(name)).is_some();
            let payload = auth.payload;
            (is_db && !payload.is_empty())
                .then(|| format_problem(payload, name == "PK"))
                .flatten()
        })
        .or_else(|| Some(signature_problem(vars, name, &auth)))
}

fn timestamp_problem(
    vars: &[Variable],
    vendor: Guid,
    name: &str,
    attributes: u32,
    auth: &Auth2<'_>,
) -> Option<String> {
    let old = find(vars, vendor, name)?;
    if Attributes::from(attributes).contains(Attributes::APPEND_WRITE) || !old.is_time_auth() {
        return None;
    }
    (auth.timestamp.chrono_cmp(&old.time) != std::cmp::Ordering::Greater).then(|| {
        format!(
            "the update's timestamp {} is not later than the stored one {} (sign it again \
             with a later --time)",
            auth.timestamp, old.time
        )
    })
}

fn signature_problem(vars: &[Variable], name: &str, auth: &Auth2<'_>) -> String {
    let (who, allowed) = anchors(vars, name);
    let signed_by = signers(auth.pkcs7).unwrap_or_default();
    let allowed_text = if allowed.is_empty() {
        "the store has none".to_string()
    } else {
        allowed.join("; ")
    };
    let signer_text = if signed_by.is_empty() {
        "no signer certificate found in the PKCS#7 data".to_string()
    } else {
        format!("signed by {}", signed_by.join("; "))
    };
    if signed_by.iter().any(|s| allowed.contains(s)) {
        format!(
            "the signature does not verify although it is {signer_text}, which may sign it: \
             the signed content differs (another variable name, GUID, attributes such as \
             --append, timestamp or payload was signed)"
        )
    } else {
        format!(
            "the signature does not verify against {who}: {signer_text}; allowed: {allowed_text}"
        )
    }
}

/// The reason a refused plain write (`set`, `delete`) of `name` was
/// refused, given the store before the write (edk2 Variable.c
/// VariableServiceSetVariable and UpdateVariable checks).
pub fn plain_refusal(
    vars: &[Variable],
    vendor: Guid,
    name: &str,
    attributes: u32,
    status: uefi_vars::EfiStatus,
) -> Option<String> {
    use uefi_vars::EfiStatus;
    // The attribute checks come first, as edk2's VariableServiceSetVariable
    // makes them (reserved bits, RT without BS: EFI_INVALID_PARAMETER; the
    // deprecated AUTHENTICATED_WRITE_ACCESS: EFI_UNSUPPORTED).
    let unsupported = attributes & !attr::SUPPORTED;
    if status.is_error() && unsupported != 0 {
        return Some(format!(
            "attribute bits {unsupported:#x} are not supported (NV, BS, RT, HR, AT and APPEND \
             are; the deprecated AUTHENTICATED_WRITE_ACCESS 0x10 and \
             ENHANCED_AUTHENTICATED_ACCESS 0x80 are refused, as edk2 refuses them)"
        ));
    }
    if status.is_error()
        && attributes & attr::RUNTIME_ACCESS != 0
        && attributes & attr::BOOTSERVICE_ACCESS == 0
    {
        return Some("runtime access (RT) needs boot-service access (BS) too".to_string());
    }
    let old = find(vars, vendor, name);
    if let Some(old) = old {
        if old.attrs().is_authenticated() {
            return Some(format!(
                "{name} is an authenticated variable ({}): it changes only through a signed \
                 update (`uefi-vars sign`, then `uefi-vars apply`)",
                old.attrs()
            ));
        }
        let stored = old.attrs() - Attributes::APPEND_WRITE;
        let asked = Attributes::from(attributes);
        if stored != asked - Attributes::APPEND_WRITE && status == EfiStatus::INVALID_PARAMETER {
            return Some(format!(
                "{name} exists with attributes {}; a write cannot change them to {} \
                 (delete it first, or pass --attr {})",
                stored,
                asked,
                stored.to_string().to_ascii_lowercase().replace('|', ",")
            ));
        }
    }
    let secure_boot_db = matches!(name, "PK" | "KEK") && vendor == guid::GLOBAL_VARIABLE
        || matches!(name, "db" | "dbx" | "dbt" | "dbr") && vendor == guid::IMAGE_SECURITY_DATABASE;
    match status {
        EfiStatus::INVALID_PARAMETER if secure_boot_db => Some(format!(
            "{name} is a Secure Boot database: it is written only as a time-based \
             authenticated variable (`uefi-vars enroll`, or `sign` then `apply`)"
        )),
        EfiStatus::WRITE_PROTECTED => Some(format!(
            "{name} is read-only (a Secure Boot state variable, or locked by a variable policy)"
        )),
        EfiStatus::OUT_OF_RESOURCES => {
            Some("the store has no room left for it (its total size is limited)".to_string())
        }
        _ => None,
    }
}
