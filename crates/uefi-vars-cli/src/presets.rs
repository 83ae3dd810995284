//! `enroll` presets: the Microsoft and distribution keys, hashes, MokList
//! entries and signed dbx updates, as virt-fw-vars offers them (which
//! certificates and owner GUIDs each option enrolls: virt-firmware 26.10
//! `virt/firmware/efi/efivar.py`, `enroll_platform_*`, `add_microsoft_keys`,
//! `add_microsoft_kek_keys`, `add_distro_keys`).

use std::path::{Path, PathBuf};

use clap::builder::PossibleValuesParser;
use clap::ValueEnum;
use uefi_vars::guid::{self, Guid};
use uefi_vars::name::VarName;
use uefi_vars::persist::MemoryStorage;
use uefi_vars::time::EfiTime;
use uefi_vars::variable::{attr, Attributes, Variable};
use uefi_vars::well_known;
use uefi_vars::{Config, EfiStatus, Service};

use crate::builtin_certs::{self as bc, BuiltinCert, Cert};
use crate::sigdb::SigDb;
use crate::CliError;

/// Which Microsoft KEK certificates to enroll.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MsKek {
    None,
    #[value(name = "2011")]
    Y2011,
    #[value(name = "2023")]
    Y2023,
    All,
}

/// Which Microsoft (or Red Hat UEFI CA) db certificates to enroll; the
/// names and sets of virt-fw-vars `--microsoft-db`/`--profile`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Profile {
    /// No Microsoft certificates in db.
    None,
    /// Windows Production PCA 2011 and Windows UEFI CA 2023.
    Win11,
    /// Windows UEFI CA 2023.
    Win23,
    /// Windows UEFI CA 2023 and Option ROM UEFI CA 2023.
    #[value(name = "win+rom23")]
    WinRom23,
    /// Microsoft UEFI CA 2011 and 2023 (third party: shim, drivers).
    Uefi11,
    /// Microsoft UEFI CA 2023.
    Uefi23,
    /// Microsoft UEFI CA 2023 and Option ROM UEFI CA 2023.
    #[value(name = "uefi+rom23")]
    UefiRom23,
    /// Red Hat UEFI CA 2024 instead of Microsoft's.
    Redhat,
    /// Red Hat UEFI CA 2024 and Microsoft Option ROM UEFI CA 2023.
    #[value(name = "redhat+rom")]
    RedhatRom,
    /// All of Windows 2011/2023, UEFI CA 2011/2023 and Option ROM 2023.
    All,
}

#[derive(clap::Args, Debug, Default)]
pub struct PresetArgs {
    /// Enroll Red Hat's platform key (Red Hat Secure Boot PK/KEK key 1) as
    /// PK and KEK, Microsoft's KEKs (--microsoft-kek, default all) and db
    /// certificates (--profile, default all) and a placeholder dbx.
    /// Replaces virt-fw-vars --enroll-redhat.
    #[arg(long, conflicts_with_all = ["enroll_microsoft", "pk", "generate"])]
    pub enroll_redhat: bool,
    /// Enroll Microsoft's "Windows OEM Devices PK" as PK, Microsoft's KEKs
    /// (--microsoft-kek, default all) and db certificates (--profile,
    /// default all) and a placeholder dbx. Replaces virt-fw-vars
    /// --enroll-microsoft.
    #[arg(long, conflicts_with_all = ["pk", "generate"])]
    pub enroll_microsoft: bool,
    /// A platform managed from outside the firmware: PK holds an
    /// EFI_CERT_EXTERNAL_MANAGEMENT entry instead of a certificate (so no
    /// PK-signed update can verify), with Microsoft's KEKs
    /// (--microsoft-kek, default all), db certificates (--profile, default
    /// all) and a placeholder dbx. Replaces virt-fw-vars --enroll-mgmt.
    #[arg(
        long,
        visible_alias = "enroll-mgmt",
        conflicts_with_all = ["enroll_redhat", "enroll_microsoft", "pk", "generate"]
    )]
    pub external_management: bool,
    /// Microsoft KEK certificates to enroll (KEK CA 2011, KEK 2K CA 2023).
    /// Default: all with --enroll-redhat/--enroll-microsoft, none
    /// otherwise. Replaces virt-fw-vars --microsoft-kek.
    #[arg(long, value_enum)]
    pub microsoft_kek: Option<MsKek>,
    /// Microsoft db certificates to enroll. Default: all with
    /// --enroll-redhat/--enroll-microsoft, none otherwise. Replaces
    /// virt-fw-vars --microsoft-db and --profile.
    #[arg(long, visible_alias = "microsoft-db", value_enum)]
    pub profile: Option<Profile>,
    /// No Microsoft db certificates (same as --profile none). Replaces
    /// virt-fw-vars --no-microsoft.
    #[arg(long, conflicts_with = "profile")]
    pub no_microsoft: bool,
    /// Add a distribution's CA certificates to db (repeatable). Replaces
    /// virt-fw-vars --distro-keys (and --distro-list: the names are listed
    /// here).
    #[arg(long, value_name = "DISTRO", value_parser = distro_names())]
    pub distro_keys: Vec<String>,
    /// Add a SHA-256 hash ([OWNER-GUID:]HEX) to db (repeatable; owner
    /// default: --owner). Replaces virt-fw-vars --add-db-hash.
    #[arg(long, value_name = "[GUID:]SHA256")]
    pub add_db_hash: Vec<String>,
    /// Add a SHA-256 hash ([OWNER-GUID:]HEX) to dbx (repeatable). Replaces
    /// virt-fw-vars --add-dbx-hash.
    #[arg(long, value_name = "[GUID:]SHA256")]
    pub add_dbx_hash: Vec<String>,
    /// Add a certificate (PEM or DER) to shim's MokList (repeatable; owner:
    /// --owner). Replaces virt-fw-vars --add-mok / --add-mok-cert.
    #[arg(long, value_name = "CERT")]
    pub add_mok: Vec<PathBuf>,
    /// Add a SHA-256 hash ([OWNER-GUID:]HEX) to shim's MokList
    /// (repeatable). Replaces virt-fw-vars --add-mok-hash.
    #[arg(long, value_name = "[GUID:]SHA256")]
    pub add_mok_hash: Vec<String>,
    /// Replace dbx with the content of a signed update (.auth, e.g.
    /// Microsoft's DBXUpdate.bin): the stored dbx is dropped and the update
    /// written as a guest would, verified against the enrolled KEK/PK
    /// (updates signed for APPEND_WRITE, as Microsoft's are, and for a
    /// plain write both work). Replaces virt-fw-vars --set-dbx (which does
    /// not verify).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["add_dbx_hash", "dbx_cert"])]
    pub set_dbx: Option<PathBuf>,
    /// Append a signed dbx update (.auth) to dbx, verified as a guest
    /// APPEND_WRITE (repeatable). Replaces virt-fw-vars --add-dbx.
    #[arg(long, value_name = "FILE")]
    pub add_dbx: Vec<PathBuf>,
    /// Write the --set-dbx/--add-dbx updates WITHOUT checking their
    /// signatures: they are applied while the store is still in setup mode
    /// (before PK is written), where edk2 accepts db/dbx writes unverified.
    /// Refused if the store already holds a PK that is kept. This is what
    /// virt-fw-vars --set-dbx/--add-dbx always do.
    #[arg(long, visible_alias = "dbx-in-setup-mode")]
    pub write_dbx_unverified: bool,
}

fn distro_names() -> PossibleValuesParser {
    PossibleValuesParser::new(
        bc::DISTROS
            .iter()
            .map(|d| clap::builder::PossibleValue::new(d.name).help(d.description)),
    )
}

impl PresetArgs {
    /// Whether any preset option was given (then `enroll` runs here).
    pub fn wanted(&self) -> bool {
        self.enroll_redhat
            || self.enroll_microsoft
            || self.external_management
            || self.microsoft_kek.is_some()
            || self.profile.is_some()
            || self.no_microsoft
            || !self.distro_keys.is_empty()
            || !self.add_db_hash.is_empty()
            || !self.add_dbx_hash.is_empty()
            || !self.add_mok.is_empty()
            || !self.add_mok_hash.is_empty()
            || self.set_dbx.is_some()
            || !self.add_dbx.is_empty()
            || self.write_dbx_unverified
    }

    /// Whether a preset brings its own platform key.
    pub fn platform_preset(&self) -> bool {
        self.enroll_redhat || self.enroll_microsoft || self.external_management
    }

    fn ms_kek(&self) -> MsKek {
        self.microsoft_kek.unwrap_or(if self.platform_preset() {
            MsKek::All
        } else {
            MsKek::None
        })
    }

    fn profile(&self) -> Profile {
        if self.no_microsoft {
            return Profile::None;
        }
        self.profile.unwrap_or(if self.platform_preset() {
            Profile::All
        } else {
            Profile::None
        })
    }
}

/// What `enroll` itself was given besides the presets (a generated test
/// PKI comes in as `pk`, `kek` and `db`).
pub struct Explicit<'a> {
    /// The store, for messages.
    pub store: &'a Path,
    pub pk: Option<&'a Path>,
    pub kek: &'a [PathBuf],
    pub db: &'a [PathBuf],
    pub dbx_cert: &'a [PathBuf],
    pub owner: Guid,
    pub secure_boot: bool,
}

/// The Microsoft KEK certificates of `--microsoft-kek` (virt-firmware
/// `add_microsoft_kek_keys`).
fn ms_kek_certs(k: MsKek) -> Vec<&'static BuiltinCert> {
    let mut v = Vec::new();
    if matches!(k, MsKek::Y2011 | MsKek::All) {
        v.push(&bc::MS_KEK_2011);
    }
    if matches!(k, MsKek::Y2023 | MsKek::All) {
        v.push(&bc::MS_KEK_2023);
    }
    v
}

/// The db certificates of `--profile`, in virt-firmware's order
/// (`add_microsoft_keys`).
fn profile_certs(p: Profile) -> Vec<&'static BuiltinCert> {
    use Profile::*;
    let table: [(&BuiltinCert, &[Profile]); 6] = [
        (&bc::MS_WIN_2011, &[Win11, All]),
        (&bc::MS_WIN_2023, &[Win11, Win23, WinRom23, All]),
        (&bc::MS_UEFI_2011, &[Uefi11, All]),
        (&bc::MS_UEFI_2023, &[Uefi11, Uefi23, UefiRom23, All]),
        (&bc::REDHAT_UEFI_2024, &[Redhat, RedhatRom]),
        (&bc::MS_ROM_2023, &[WinRom23, UefiRom23, RedhatRom, All]),
    ];
    table
        .iter()
        .filter(|(_, ps)| ps.contains(&p))
        .map(|(c, _)| *c)
        .collect()
}

/// `[GUID:]HEX` → (owner, 32-byte hash).
fn parse_hash(text: &str, default_owner: Guid) -> Result<(Guid, [u8; 32]), String> {
    let (owner, hex) = match text.rsplit_once(':') {
        Some((g, h)) => (crate::parse_guid(g.trim())?, h),
        None => (default_owner, text),
    };
    let clean = hex.trim().to_ascii_lowercase();
    let bytes =
        uefi_vars::persist::json::from_hex(&clean).map_err(|e| format!("hash {text:?}: {e}"))?;
    let hash: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
        format!(
            "hash {text:?}: a SHA-256 hash is 32 bytes (64 hex digits), this is {}",
            b.len()
        )
    })?;
    Ok((owner, hash))
}

fn load_file_cert(path: &Path) -> Result<Cert, String> {
    let x = crate::keys::load_cert(path)?;
    bc::cert_of(&x).map_err(|e| format!("{}: {e}", path.display()))
}

/// The timestamp virt-fw-vars gives a database it creates without
/// certificates (efivar.py `initial_ts`): early enough that signed updates
/// made since (Microsoft's dbx updates carry 2010-03-06) are "later than
/// the stored timestamp" (edk2 AuthVariableLib `VerifyTimeBasedPayload`).
pub fn initial_time() -> EfiTime {
    crate::auth_cmds::efi_time_from_unix(1_262_304_000)
}

/// The variables `enroll` changes, before they are written.
struct Plan {
    pk: Option<SigDb>,
    kek: SigDb,
    db: SigDb,
    dbx: SigDb,
    mok: SigDb,
    /// PK, KEK, db and dbx are rebuilt (a platform was given) rather than
    /// extended.
    fresh: bool,
}

/// A new platform: PK certificate, its owner, and whether the PK
/// certificate also goes into KEK (Red Hat's does, Microsoft's OEM PK not).
fn platform(p: &PresetArgs, x: &Explicit<'_>) -> Result<Option<(Cert, Guid, bool)>, String> {
    if p.enroll_redhat {
        let c = bc::REDHAT_PK_KEK_2014.load()?;
        return Ok(Some((c, guid::OVMF_ENROLL_DEFAULT_KEYS, true)));
    }
    if p.enroll_microsoft {
        let c = bc::MS_OEM_PK_2023.load()?;
        return Ok(Some((c, guid::MICROSOFT_VENDOR, false)));
    }
    x.pk.map(|f| Ok((load_file_cert(f)?, x.owner, false)))
        .transpose()
}

fn plan(p: &PresetArgs, x: &Explicit<'_>, vars: &[Variable]) -> Result<Plan, String> {
    let platform = platform(p, x)?;
    let fresh = platform.is_some() || p.external_management;
    let existing =
        |g: Guid, n: &str| -> Option<&Variable> { (!fresh).then(|| find(vars, g, n)).flatten() };
    let mut kek = SigDb::from_existing(existing(guid::GLOBAL_VARIABLE, "KEK"));
    let mut db = SigDb::from_existing(existing(guid::IMAGE_SECURITY_DATABASE, "db"));
    let mut dbx = SigDb::from_existing(existing(guid::IMAGE_SECURITY_DATABASE, "dbx"));
    let mut mok = SigDb::from_existing(find(vars, guid::SHIM_LOCK, "MokList"));
    let mut pk = None;
    if p.external_management {
        let mut one = SigDb::default();
        one.add_external_management(guid::OVMF_ENROLL_DEFAULT_KEYS);
        pk = Some(one);
    }
    if let Some((cert, owner, in_kek)) = platform {
        if in_kek {
            kek.add_cert(owner, &cert);
        }
        let mut one = SigDb::default();
        one.add_cert(owner, &cert);
        pk = Some(one);
    }
    // The user's KEKs before Microsoft's: `--pk F --kek F` then writes
    // what virt-fw-vars --enroll-cert F writes.
    for f in x.kek {
        kek.add_cert(x.owner, &load_file_cert(f)?);
    }
    for c in ms_kek_certs(p.ms_kek()) {
        kek.add_cert(guid::MICROSOFT_VENDOR, &c.load()?);
    }
    if fresh {
        // virt-firmware `enroll_platform_with_cert` → `add_dummy_dbx`: a
        // dbx that exists (some guests expect one) and matches nothing.
        dbx.add_placeholder(guid::OVMF_ENROLL_DEFAULT_KEYS);
    }
    fill_db(p, x, &mut db)?;
    for f in x.dbx_cert {
        dbx.add_cert(x.owner, &load_file_cert(f)?);
    }
    for h in &p.add_dbx_hash {
        let (o, h) = parse_hash(h, x.owner)?;
        dbx.add_sha256(o, h);
    }
    for f in &p.add_mok {
        mok.add_cert(x.owner, &load_file_cert(f)?);
    }
    for h in &p.add_mok_hash {
        let (o, h) = parse_hash(h, x.owner)?;
        mok.add_sha256(o, h);
    }
    Ok(Plan {
        pk,
        kek,
        db,
        dbx,
        mok,
        fresh,
    })
}

fn fill_db(p: &PresetArgs, x: &Explicit<'_>, db: &mut SigDb) -> Result<(), String> {
    for c in profile_certs(p.profile()) {
        db.add_cert(guid::MICROSOFT_VENDOR, &c.load()?);
    }
    for name in &p.distro_keys {
        let d = bc::distro(name).ok_or_else(|| format!("unknown distribution {name:?}"))?;
        for c in d.certs {
            db.add_cert(guid::OVMF_ENROLL_DEFAULT_KEYS, &c.load()?);
        }
    }
    for f in x.db {
        db.add_cert(x.owner, &load_file_cert(f)?);
    }
    for h in &p.add_db_hash {
        let (o, h) = parse_hash(h, x.owner)?;
        db.add_sha256(o, h);
    }
    Ok(())
}

fn find<'a>(vars: &'a [Variable], g: Guid, name: &str) -> Option<&'a Variable> {
    vars.iter().find(|v| v.guid == g && v.name.eq_str(name))
}

/// Replaces (or, with empty data, removes) one variable.
fn put(vars: &mut Vec<Variable>, g: Guid, name: &str, attributes: u32, data: Vec<u8>, t: EfiTime) {
    vars.retain(|v| !(v.guid == g && v.name.eq_str(name)));
    if !data.is_empty() {
        let mut v = Variable::new(g, VarName::from(name), attributes, data);
        v.time = t;
        vars.push(v);
    }
}

/// Writes a Secure Boot database the plan changed: rebuilt ones get the
/// virt-fw-vars timestamp (newest notBefore of their certificates, or
/// 2010-01-01); extended ones keep their stored timestamp.
fn put_db(vars: &mut Vec<Variable>, g: Guid, name: &str, db: &SigDb, fresh: bool) {
    if !fresh && !db.changed() {
        return;
    }
    let time = find(vars, g, name)
        .filter(|_| !fresh)
        .map(|v| v.time)
        .unwrap_or_else(|| db.newest_cert().unwrap_or_else(initial_time));
    put(
        vars,
        g,
        name,
        Attributes::SECURE_BOOT_DB.bits(),
        db.bytes(),
        time,
    );
}

/// Applies the plan to `vars`: every database but PK (written last, so
/// signed dbx updates can be applied in setup mode when asked to).
fn write_plan(vars: &mut Vec<Variable>, plan: &Plan, secure_boot: bool) {
    let fresh = plan.fresh;
    put_db(vars, guid::GLOBAL_VARIABLE, "KEK", &plan.kek, fresh);
    put_db(vars, guid::IMAGE_SECURITY_DATABASE, "db", &plan.db, fresh);
    put_db(vars, guid::IMAGE_SECURITY_DATABASE, "dbx", &plan.dbx, fresh);
    if plan.mok.changed() {
        // shim's MokList: NV+BS, no timestamp (virt-firmware efivar.py
        // `efivar_defaults`; shim mok.c mirrors it to MokListRT).
        let mok_attr = Attributes::NV_BS.bits();
        let t = EfiTime::default();
        put(
            vars,
            guid::SHIM_LOCK,
            "MokList",
            mok_attr,
            plan.mok.bytes(),
            t,
        );
    }
    if fresh {
        let nv_bs = Attributes::NV_BS.bits();
        let t = EfiTime::default();
        let sbe = vec![u8::from(secure_boot)];
        put(
            vars,
            guid::SECURE_BOOT_ENABLE_DISABLE,
            "SecureBootEnable",
            nv_bs,
            sbe,
            t,
        );
        // CustomMode left at 1 would let any later write skip verification.
        put(
            vars,
            guid::CUSTOM_MODE_ENABLE,
            "CustomMode",
            nv_bs,
            vec![0],
            t,
        );
    }
}

fn write_pk(vars: &mut Vec<Variable>, pk: &SigDb) {
    let time = pk.newest_cert().unwrap_or_else(initial_time);
    put(
        vars,
        guid::GLOBAL_VARIABLE,
        "PK",
        Attributes::SECURE_BOOT_DB.bits(),
        pk.bytes(),
        time,
    );
}

/// Applies the signed dbx updates to `vars` through the service's
/// SetVariable, exactly as a guest write (the path `apply` takes), on an
/// in-memory copy: the store file is written once, after everything passed.
fn apply_dbx_updates(vars: Vec<Variable>, p: &PresetArgs) -> Result<Vec<Variable>, CliError> {
    let refs: Vec<&Variable> = vars.iter().collect();
    let text = uefi_vars::persist::json::encode(&refs).map_err(|e| e.to_string())?;
    let mut svc = Service::open(Config::default(), Box::new(MemoryStorage::from_text(text)))
        .map_err(|e| e.to_string())?;
    let updates = p
        .set_dbx
        .iter()
        .map(|f| (f, false))
        .chain(p.add_dbx.iter().map(|f| (f, true)));
    // No guest can send an update larger than the MM buffer.
    let limit = u64::from(uefi_vars::service::MAX_BUFFER_SIZE);
    for (file, append) in updates {
        let data = crate::store_io::read_bounded(file, limit, "a signed update")?;
        let before: Vec<Variable> = svc.store().iter().cloned().collect();
        let mut write = |attributes: u32| {
            svc.set_variable(
                well_known::DBX.guid,
                well_known::DBX.var_name(),
                attributes,
                &data,
            )
        };
        // The signature covers the attributes, so an update verifies only
        // as the write it was signed for. --set-dbx starts from no dbx,
        // where an APPEND_WRITE creates the variable: both kinds work.
        let mut attributes = attr::SECURE_BOOT_DB | attr::APPEND_WRITE;
        let mut status = write(attributes);
        if !append && status == EfiStatus::SECURITY_VIOLATION {
            attributes = attr::SECURE_BOOT_DB;
            status = write(attributes);
        }
        if let Some(e) = svc.take_errors().first() {
            return Err(format!("{}: writing dbx failed: {e}", file.display()).into());
        }
        if status != EfiStatus::SUCCESS {
            let why = crate::explain::refusal(
                &before,
                guid::IMAGE_SECURITY_DATABASE,
                "dbx",
                attributes,
                &data,
            );
            return Err(CliError::Refused(dbx_refusal(
                file,
                status,
                p.write_dbx_unverified,
                why,
            )));
        }
    }
    Ok(svc.store().iter().cloned().collect())
}

/// Why a dbx update was refused: the reason the verifier gives (signer,
/// timestamps, where the payload is malformed), else the likely causes.
fn dbx_refusal(file: &Path, status: EfiStatus, unverified: bool, why: Option<String>) -> String {
    if let Some(why) = why {
        return format!(
            "{}: dbx update refused ({status}): {why}; nothing was written",
            file.display()
        );
    }
    let why = if status == EfiStatus::SECURITY_VIOLATION && !unverified {
        "its signature does not verify against any enrolled KEK or PK certificate \
         (Microsoft's dbx updates need the Microsoft KEK: --microsoft-kek), \
         or its timestamp is not later than the stored dbx's"
    } else if status == EfiStatus::INVALID_PARAMETER {
        "it is not an EFI_VARIABLE_AUTHENTICATION_2 update whose payload is a valid \
         EFI_SIGNATURE_LIST database"
    } else {
        "the variable service refused it"
    };
    format!(
        "{}: dbx update refused ({status}): {why}; nothing was written",
        file.display()
    )
}

/// `enroll` with presets: the store's variables with the plan applied and
/// the signed dbx updates written (verified unless asked otherwise), and
/// whether PK, KEK, db and dbx were rebuilt. Nothing is written here.
pub fn enroll(
    p: &PresetArgs,
    x: &Explicit<'_>,
    mut vars: Vec<Variable>,
) -> Result<(Vec<Variable>, bool), CliError> {
    let has_updates = p.set_dbx.is_some() || !p.add_dbx.is_empty();
    if p.write_dbx_unverified && !has_updates {
        return Err(CliError::Usage(
            "--write-dbx-unverified needs --set-dbx or --add-dbx".into(),
        ));
    }
    let plan = plan(p, x, &vars)?;
    write_plan(&mut vars, &plan, x.secure_boot);
    if p.set_dbx.is_some() {
        let t = EfiTime::default();
        put(
            &mut vars,
            guid::IMAGE_SECURITY_DATABASE,
            "dbx",
            0,
            Vec::new(),
            t,
        );
    }
    if p.write_dbx_unverified {
        vars = unverified_updates(p, x, &plan, vars)?;
    }
    if let Some(pk) = &plan.pk {
        write_pk(&mut vars, pk);
    }
    if has_updates && !p.write_dbx_unverified {
        vars = apply_dbx_updates(vars, p)?;
    }
    Ok((vars, plan.fresh))
}

/// Setup mode (no PK) while the updates are written, so the service
/// accepts them without a signature check (edk2 AuthVariableLib
/// `ProcessVarWithKek`: no authentication in setup mode).
fn unverified_updates(
    p: &PresetArgs,
    x: &Explicit<'_>,
    plan: &Plan,
    mut vars: Vec<Variable>,
) -> Result<Vec<Variable>, CliError> {
    let has_pk = vars.iter().any(|v| well_known::PK.is(&v.guid, &v.name));
    if plan.pk.is_none() && has_pk {
        return Err(CliError::Refused(format!(
            "{}: --write-dbx-unverified: the store has a PK (it is not in setup mode), \
             so a dbx update must verify; drop the flag or enroll a new platform key",
            x.store.display()
        )));
    }
    vars.retain(|v| !well_known::PK.is(&v.guid, &v.name));
    apply_dbx_updates(vars, p)
}

/// Prints what the store now holds and the Secure Boot state a machine
/// reset computes from it, as the device will.
pub fn report(out: &Path, fresh: bool, vars: &[Variable]) -> Result<(), String> {
    let mut svc = crate::service_over(vars)?;
    svc.reset().map_err(|e| format!("{}: {e}", out.display()))?;
    let var = |g: Guid, n: &str| {
        svc.store()
            .iter()
            .find(|v| v.guid == g && v.name.eq_str(n))
            .map(|v| v.data.clone())
            .unwrap_or_default()
    };
    let count = |g: Guid, n: &str| crate::sigdb::count_entries(&var(g, n));
    let byte = |n: &str| var(guid::GLOBAL_VARIABLE, n).first().copied().unwrap_or(0);
    println!(
        "{}: {}PK ({}), KEK ({}), db ({}), dbx ({}), MokList ({}); SetupMode={} SecureBoot={}",
        out.display(),
        if fresh { "enrolled " } else { "updated " },
        count(guid::GLOBAL_VARIABLE, "PK"),
        count(guid::GLOBAL_VARIABLE, "KEK"),
        count(guid::IMAGE_SECURITY_DATABASE, "db"),
        count(guid::IMAGE_SECURITY_DATABASE, "dbx"),
        count(guid::SHIM_LOCK, "MokList"),
        byte("SetupMode"),
        byte("SecureBoot")
    );
    Ok(())
}
