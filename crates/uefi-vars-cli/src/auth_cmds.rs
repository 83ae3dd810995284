//! `uefi-vars enroll` and `uefi-vars sign`.

use std::path::PathBuf;
use std::process::ExitCode;

use uefi_vars::auth::{build_auth2, signed_content, Auth2};
use uefi_vars::guid::{self, Guid};
use uefi_vars::name::VarName;
use uefi_vars::siglist;
use uefi_vars::time::EfiTime;
use uefi_vars::variable::{Attributes, Variable};
use uefi_vars::well_known;

use crate::{keys, CliError};

#[derive(clap::Args)]
pub struct EnrollArgs {
    /// The store to update (any format; its other variables are kept).
    #[command(flatten)]
    io: crate::store_io::StoreArgs,
    /// Replace the PK, KEK and db of a store that already has a PK (without
    /// it such a store is refused: its keys would be lost).
    #[arg(long)]
    replace_keys: bool,
    /// Platform key certificate (PEM or DER), owner --owner. Required unless
    /// --generate or a preset (--enroll-redhat, --enroll-microsoft, ...) is
    /// given. Replaces virt-fw-vars --set-pk; `--pk F --kek F --owner
    /// a0baa8a3-041d-48a8-bc87-c36d121b5e3d --microsoft-kek all --profile
    /// all` replaces virt-fw-vars --enroll-cert F.
    #[arg(long)]
    pk: Option<PathBuf>,
    /// Key exchange key certificates (repeatable; owner --owner). Replaces
    /// virt-fw-vars --add-kek.
    #[arg(long)]
    kek: Vec<PathBuf>,
    /// Signature database certificates (repeatable; owner --owner).
    /// Replaces virt-fw-vars --add-db.
    #[arg(long)]
    db: Vec<PathBuf>,
    /// Forbidden signature database: certificates (repeatable; owner
    /// --owner). Replaces virt-fw-vars --add-dbx-cert.
    #[arg(long)]
    dbx_cert: Vec<PathBuf>,
    /// Generate a throw-away test PKI (PK, KEK, db certificates and keys)
    /// into this directory and enroll it (with --microsoft-kek/--profile,
    /// Microsoft's keys too). Existing files there are never overwritten;
    /// private keys are written with mode 0600; nothing is created when the
    /// store is refused. Replaces virt-fw-vars --enroll-generate.
    #[arg(long, conflicts_with = "pk")]
    generate: Option<PathBuf>,
    /// Common name of the generated certificates: "CN PK", "CN KEK" and
    /// "CN db" (default "uefi-vars test"). With --generate; replaces the CN
    /// argument of virt-fw-vars --enroll-generate CN.
    #[arg(long, value_name = "CN", requires = "generate")]
    generate_cn: Option<String>,
    /// Owner GUID written into the signature lists (the GUID argument of
    /// virt-fw-vars --set-pk, --add-kek, --add-db, ...; a well-known name
    /// or braces are accepted).
    #[arg(long, default_value = "26dc4851-195f-4ae1-9a19-fbf883bbb35e")]
    owner: String,
    /// Leave Secure Boot disabled (SecureBootEnable = 0). Without it Secure
    /// Boot is enabled, as virt-fw-vars --sb/--secure-boot enables it.
    #[arg(long)]
    no_secure_boot: bool,
    #[command(flatten)]
    presets: crate::presets::PresetArgs,
}

#[derive(clap::Args)]
pub struct SignArgs {
    /// Variable name (e.g. PK, KEK, db, dbx, or a private variable).
    name: String,
    /// Vendor GUID or alias; default: global for PK/KEK, the image security
    /// database for db/dbx/dbt/dbr, otherwise required.
    #[arg(long, short)]
    guid: Option<String>,
    /// Signing key (PEM or DER).
    #[arg(long)]
    key: PathBuf,
    /// Signing certificate (PEM or DER).
    #[arg(long)]
    cert: PathBuf,
    /// Payload: an EFI_SIGNATURE_LIST with one X.509 entry per certificate.
    #[arg(long)]
    x509: Vec<PathBuf>,
    /// Payload: raw bytes from a file (e.g. an .esl), at most what a guest
    /// can send in one write (64 KiB).
    #[arg(long, conflicts_with = "x509")]
    data: Option<PathBuf>,
    /// Empty payload: an authenticated delete.
    #[arg(long, conflicts_with_all = ["x509", "data"])]
    delete: bool,
    /// Set APPEND_WRITE in the signed attributes.
    #[arg(long)]
    append: bool,
    /// Timestamp "YYYY-MM-DD HH:MM:SS" (UTC); default: now.
    #[arg(long)]
    time: Option<String>,
    /// Owner GUID for --x509 entries.
    #[arg(long, default_value = "26dc4851-195f-4ae1-9a19-fbf883bbb35e")]
    owner: String,
    /// Output .auth file.
    #[arg(long, short)]
    out: PathBuf,
}

fn x509_list(owner: &Guid, certs: &[PathBuf]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for c in certs {
        let der = keys::load_cert(c)?.to_der().map_err(|e| e.to_string())?;
        out.extend(siglist::single_entry_list(&guid::CERT_X509, owner, &der));
    }
    Ok(out)
}

fn now_time() -> EfiTime {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    efi_time_from_unix(secs)
}

/// Converts seconds since 1970 (UTC) to an EFI_TIME.
pub fn efi_time_from_unix(secs: u64) -> EfiTime {
    let days = secs / 86400;
    let rem = secs % 86400;
    // civil-from-days (Howard Hinnant's algorithm)
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    make_time(
        year as u16,
        month as u8,
        day as u8,
        (rem / 3600) as u8,
        (rem % 3600 / 60) as u8,
        (rem % 60) as u8,
    )
}

fn make_time(year: u16, month: u8, day: u8, hour: u8, minute: u8, second: u8) -> EfiTime {
    let mut t = [0u8; 16];
    t[0..2].copy_from_slice(&year.to_le_bytes());
    t[2] = month;
    t[3] = day;
    t[4] = hour;
    t[5] = minute;
    t[6] = second;
    EfiTime(t)
}

/// Parses "YYYY-MM-DD HH:MM:SS" (or "YYYY-MM-DD").
pub fn parse_time(text: &str) -> Result<EfiTime, String> {
    let bad = || format!("time {text:?}: expected YYYY-MM-DD[ HH:MM:SS]");
    let (date, clock) = text
        .trim()
        .split_once([' ', 'T'])
        .unwrap_or((text.trim(), "00:00:00"));
    let d: Vec<u32> = date
        .split('-')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|_| bad())?;
    let c: Vec<u32> = clock
        .split(':')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|_| bad())?;
    let ([y, mo, da], [h, mi, s]) = (d.as_slice(), c.as_slice()) else {
        return Err(bad());
    };
    if !(1..=12).contains(mo)
        || !(1..=31).contains(da)
        || *h > 23
        || *mi > 59
        || *s > 59
        || *y > 9999
    {
        return Err(bad());
    }
    Ok(make_time(
        *y as u16, *mo as u8, *da as u8, *h as u8, *mi as u8, *s as u8,
    ))
}

pub fn sign(args: &SignArgs) -> Result<ExitCode, CliError> {
    let name = VarName::from(args.name.as_str());
    let vendor = match &args.guid {
        Some(g) => crate::parse_guid(g)?,
        None => crate::default_guid(&args.name)?,
    };
    let owner = crate::parse_guid(&args.owner)?;
    let payload = if args.delete {
        Vec::new()
    } else if let Some(d) = &args.data {
        let limit = u64::from(uefi_vars::service::MAX_BUFFER_SIZE);
        crate::store_io::read_bounded(d, limit, "a signed update's payload")?
    } else if !args.x509.is_empty() {
        x509_list(&owner, &args.x509)?
    } else {
        return Err(CliError::Usage(
            "give the payload: --x509 CERT..., --data FILE or --delete".into(),
        ));
    };
    let timestamp = match &args.time {
        Some(t) => parse_time(t)?,
        None => now_time(),
    };
    let mut attributes = Attributes::SECURE_BOOT_DB.bits();
    if args.append {
        attributes |= Attributes::APPEND_WRITE.bits();
    }
    let cert = keys::load_cert(&args.cert)?;
    let key = keys::load_key(&args.key)?;
    let unsigned = Auth2 {
        timestamp,
        pkcs7: &[],
        payload: &payload,
    };
    let content = signed_content(&vendor, &name, attributes, &unsigned);
    let p7 = keys::sign_detached(&cert, &key, &content)?;
    let auth = build_auth2(&timestamp, &p7, &payload);
    std::fs::write(&args.out, &auth).map_err(|e| format!("{}: {e}", args.out.display()))?;
    println!(
        "{}: signed update of {} ({}), {} payload bytes, attributes {:#x}",
        args.out.display(),
        args.name,
        vendor,
        payload.len(),
        attributes
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes a new file that must not exist yet, with `mode`.
fn create_new(path: &std::path::Path, bytes: &[u8], mode: u32) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("{}: {e}", path.display()))
}

const PKI: [(&str, &str); 3] = [
    ("PK", "uefi-vars test PK"),
    ("KEK", "uefi-vars test KEK"),
    ("db", "uefi-vars test db"),
];

/// Generates the test PKI into `dir`, refusing before writing anything if
/// any of its files exists.
fn generate_pki(dir: &std::path::Path, cn: Option<&str>) -> Result<Vec<PathBuf>, CliError> {
    let files: Vec<(PathBuf, PathBuf, String)> = PKI
        .iter()
        .map(|(f, default_cn)| {
            (
                dir.join(format!("{f}.crt")),
                dir.join(format!("{f}.key")),
                cn.map_or_else(|| default_cn.to_string(), |cn| format!("{cn} {f}")),
            )
        })
        .collect();
    for (crt, key, _) in &files {
        for p in [crt, key] {
            if p.exists() {
                return Err(CliError::Refused(format!(
                    "{}: exists; --generate never overwrites keys (choose another directory)",
                    p.display()
                )));
            }
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut certs = Vec::new();
    for (crt, key_path, cn) in files {
        let (cert, key) = keys::self_signed(&cn)?;
        let pem = key.private_key_to_pem_pkcs8().map_err(|e| e.to_string())?;
        create_new(&key_path, &pem, 0o600)?;
        create_new(&crt, &cert.to_pem().map_err(|e| e.to_string())?, 0o644)?;
        certs.push(crt);
    }
    println!("generated a test PKI in {}", dir.display());
    Ok(certs)
}

fn has_pk(vars: &[Variable]) -> bool {
    vars.iter().any(|v| well_known::PK.is(&v.guid, &v.name))
}

/// Whether `enroll` brings a new platform key (and so replaces PK, KEK
/// and db rather than extending them).
fn new_platform(args: &EnrollArgs) -> bool {
    args.pk.is_some() || args.generate.is_some() || args.presets.platform_preset()
}

/// `enroll`: the store is checked (present, not in use, writable, not
/// already enrolled, decodable) and the output resolved before any key
/// file is created; the store is written once, after everything passed.
pub fn enroll(args: &EnrollArgs) -> Result<ExitCode, CliError> {
    use crate::store_io;
    let owner = crate::parse_guid(&args.owner)?;
    let io = &args.io;
    if !new_platform(args) && !args.presets.wanted() {
        return Err(CliError::Usage(
            "give the keys: --pk CERT (with --kek, --db), --generate DIR, or a preset \
             (--enroll-redhat, --enroll-microsoft, --distro-keys, ...)"
                .into(),
        ));
    }
    let opened = crate::open_for_edit(io)?;
    if has_pk(&opened.loaded.vars) && new_platform(args) && !args.replace_keys {
        return Err(CliError::Refused(format!(
            "{}: already enrolled (it has a PK); pass --replace-keys to replace its PK, KEK and db",
            io.store.display()
        )));
    }
    let (pk, kek, db) = match &args.generate {
        Some(dir) => match generate_pki(dir, args.generate_cn.as_deref())?.as_slice() {
            [pk, kek, db] => (
                Some(pk.clone()),
                [std::slice::from_ref(kek), &args.kek].concat(),
                [std::slice::from_ref(db), &args.db].concat(),
            ),
            _ => return Err("key generation produced no PKI".into()),
        },
        None => (args.pk.clone(), args.kek.clone(), args.db.clone()),
    };
    let before = opened.loaded.vars.clone();
    let (vars, fresh) = if args.presets.wanted() {
        let explicit = crate::presets::Explicit {
            store: &io.store,
            pk: pk.as_deref(),
            kek: &kek,
            db: &db,
            dbx_cert: &args.dbx_cert,
            owner,
            secure_boot: !args.no_secure_boot,
        };
        crate::presets::enroll(&args.presets, &explicit, before.clone())?
    } else {
        let pk = pk.ok_or("--pk is required")?;
        (
            enrolled_vars(args, before.clone(), &owner, &pk, &kek, &db)?,
            true,
        )
    };
    crate::check_changed_readable(&before, &vars)?;
    let refs: Vec<&Variable> = vars.iter().collect();
    store_io::write_store(&opened.target, &refs)?;
    crate::presets::report(&opened.target.path, fresh, &vars)?;
    Ok(ExitCode::SUCCESS)
}

fn enrolled_vars(
    args: &EnrollArgs,
    mut vars: Vec<Variable>,
    owner: &Guid,
    pk: &PathBuf,
    kek: &[PathBuf],
    db: &[PathBuf],
) -> Result<Vec<Variable>, String> {
    let time = now_time();
    let mut put = |guid: Guid, name: &str, data: Vec<u8>| {
        vars.retain(|v| !(v.guid == guid && v.name.eq_str(name)));
        if !data.is_empty() {
            let mut v = Variable::new(
                guid,
                VarName::from(name),
                Attributes::SECURE_BOOT_DB.bits(),
                data,
            );
            v.time = time;
            vars.push(v);
        }
    };
    put(guid::IMAGE_SECURITY_DATABASE, "db", x509_list(owner, db)?);
    put(
        guid::IMAGE_SECURITY_DATABASE,
        "dbx",
        x509_list(owner, &args.dbx_cert)?,
    );
    put(guid::GLOBAL_VARIABLE, "KEK", x509_list(owner, kek)?);
    put(
        guid::GLOBAL_VARIABLE,
        "PK",
        x509_list(owner, std::slice::from_ref(pk))?,
    );
    let sbe = well_known::SECURE_BOOT_ENABLE;
    vars.retain(|v| !sbe.is(&v.guid, &v.name));
    vars.push(Variable::new(
        sbe.guid,
        sbe.var_name(),
        Attributes::NV_BS.bits(),
        vec![u8::from(!args.no_secure_boot)],
    ));
    for v in &vars {
        if well_known::PK.is(&v.guid, &v.name) {
            siglist::check_format(&v.data, true).map_err(|e| format!("PK: {e:?}"))?;
        }
    }
    Ok(vars)
}

#[derive(clap::Args)]
pub struct ExportAuthArgs {
    /// The store to export from (any format).
    store: PathBuf,
    /// Directory for the NAME.auth files (created if missing; existing
    /// files are never overwritten).
    dir: PathBuf,
    /// Key that signs PK.auth and KEK.auth (the platform key).
    #[arg(long)]
    pk_key: PathBuf,
    /// Certificate of --pk-key.
    #[arg(long)]
    pk_cert: PathBuf,
    /// Key that signs db, dbx, dbt and dbr updates (default: --pk-key).
    #[arg(long, requires = "kek_cert")]
    kek_key: Option<PathBuf>,
    /// Certificate of --kek-key.
    #[arg(long, requires = "kek_key")]
    kek_cert: Option<PathBuf>,
    /// Timestamp "YYYY-MM-DD HH:MM:SS" (UTC) for every update; default: each
    /// variable's stored timestamp.
    #[arg(long)]
    time: Option<String>,
}

/// `export-auth`: each Secure Boot database of a store as a signed update
/// (EFI_VARIABLE_AUTHENTICATION_2 + payload) that `apply` (or a guest)
/// accepts later; virt-fw-vars --output-auth writes the same files
/// unsigned.
pub fn export_auth(args: &ExportAuthArgs) -> Result<ExitCode, CliError> {
    let vars = crate::store_io::read_store(&args.store, false)?.vars;
    let pk = (
        keys::load_cert(&args.pk_cert)?,
        keys::load_key(&args.pk_key)?,
    );
    let kek = match (&args.kek_key, &args.kek_cert) {
        (Some(k), Some(c)) => Some((keys::load_cert(c)?, keys::load_key(k)?)),
        _ => None,
    };
    let fixed = args.time.as_deref().map(parse_time).transpose()?;
    let wanted = [
        (guid::GLOBAL_VARIABLE, "PK"),
        (guid::GLOBAL_VARIABLE, "KEK"),
        (guid::IMAGE_SECURITY_DATABASE, "db"),
        (guid::IMAGE_SECURITY_DATABASE, "dbx"),
        (guid::IMAGE_SECURITY_DATABASE, "dbt"),
        (guid::IMAGE_SECURITY_DATABASE, "dbr"),
    ];
    let found: Vec<(&str, &Variable)> = wanted
        .iter()
        .filter_map(|(g, n)| {
            vars.iter()
                .find(|v| v.guid == *g && v.name.eq_str(n))
                .map(|v| (*n, v))
        })
        .collect();
    if found.is_empty() {
        return Err(format!(
            "{}: no PK, KEK, db, dbx, dbt or dbr to export",
            args.store.display()
        )
        .into());
    }
    for (name, _) in &found {
        let path = args.dir.join(format!("{name}.auth"));
        if path.exists() {
            return Err(CliError::Refused(format!(
                "{}: exists; export-auth never overwrites a file",
                path.display()
            )));
        }
    }
    std::fs::create_dir_all(&args.dir).map_err(|e| format!("{}: {e}", args.dir.display()))?;
    for (name, v) in &found {
        let (cert, key) = match (*name, &kek) {
            ("PK" | "KEK", _) | (_, None) => (&pk.0, &pk.1),
            (_, Some((c, k))) => (c, k),
        };
        let timestamp = fixed.unwrap_or(v.time);
        let unsigned = Auth2 {
            timestamp,
            pkcs7: &[],
            payload: &v.data,
        };
        let content = signed_content(
            &v.guid,
            &v.name,
            Attributes::SECURE_BOOT_DB.bits(),
            &unsigned,
        );
        let p7 = keys::sign_detached(cert, key, &content)?;
        let path = args.dir.join(format!("{name}.auth"));
        create_new(&path, &build_auth2(&timestamp, &p7, &v.data), 0o644)?;
        println!("{}: signed update of {name}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
