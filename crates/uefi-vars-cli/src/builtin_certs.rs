//! The public Secure Boot certificates embedded in the binary, and the
//! named sets `enroll` offers (what virt-fw-vars' `--enroll-redhat`,
//! `--enroll-microsoft`, `--microsoft-kek`, `--microsoft-db` and
//! `--distro-keys` enroll, read from virt-firmware 26.10
//! `virt/firmware/efi/certs.py` and `efivar.py`). Provenance, terms and
//! fingerprints: `certs/README.md` and `certs/fingerprints.txt`.

use openssl::x509::X509;
use uefi_vars::time::EfiTime;

/// One certificate file shipped under `certs/`.
pub struct BuiltinCert {
    /// Path under `certs/` (the key into `certs/fingerprints.txt`).
    pub file: &'static str,
    bytes: &'static [u8],
}

macro_rules! builtin {
    ($name:ident, $file:literal) => {
        pub const $name: BuiltinCert = BuiltinCert {
            file: $file,
            bytes: include_bytes!(concat!("../certs/", $file)),
        };
    };
}

builtin!(MS_KEK_2011, "microsoft/ms-kek-2011.der");
builtin!(MS_KEK_2023, "microsoft/ms-kek-2023.der");
builtin!(MS_WIN_2011, "microsoft/windows-2011.der");
builtin!(MS_WIN_2023, "microsoft/windows-2023.der");
builtin!(MS_UEFI_2011, "microsoft/ms-uefi-2011.der");
builtin!(MS_UEFI_2023, "microsoft/ms-uefi-2023.der");
builtin!(MS_ROM_2023, "microsoft/ms-uefi-rom-2023.der");
builtin!(MS_OEM_PK_2023, "microsoft/ms-oem-pk-2023.der");
builtin!(REDHAT_PK_KEK_2014, "redhat/rh-pk-kek-2014.pem");
builtin!(REDHAT_2014, "redhat/redhat-2014.pem");
builtin!(REDHAT_2020, "redhat/redhat-2020.pem");
builtin!(REDHAT_2023, "redhat/redhat-2023.pem");
builtin!(REDHAT_UEFI_2024, "redhat/rh-uefi-2024.pem");
builtin!(FEDORA_2020, "fedora/fedora-2020.pem");
builtin!(CENTOS_2018, "centos/centos-2018.pem");
builtin!(CENTOS_2020, "centos/centos-2020.pem");
builtin!(CENTOS_2025, "centos/centos-2025.pem");
builtin!(DEBIAN_2016, "debian/debian-2016.pem");
builtin!(UBUNTU_2012, "ubuntu/ubuntu-2012.pem");

/// A certificate to enroll: its DER encoding and its notBefore as an
/// EFI_TIME (the timestamp virt-fw-vars gives a database holding it).
pub struct Cert {
    pub der: Vec<u8>,
    pub not_before: EfiTime,
}

impl BuiltinCert {
    pub fn load(&self) -> Result<Cert, String> {
        let x = X509::from_der(self.bytes)
            .or_else(|_| X509::from_pem(self.bytes))
            .map_err(|e| format!("built-in certificate {}: {e}", self.file))?;
        cert_of(&x).map_err(|e| format!("built-in certificate {}: {e}", self.file))
    }
}

/// DER and notBefore of a parsed certificate.
pub fn cert_of(x: &X509) -> Result<Cert, String> {
    let der = x.to_der().map_err(|e| e.to_string())?;
    let epoch = openssl::asn1::Asn1Time::from_unix(0).map_err(|e| e.to_string())?;
    let d = epoch.diff(x.not_before()).map_err(|e| e.to_string())?;
    let secs = i64::from(d.days) * 86_400 + i64::from(d.secs);
    let secs = u64::try_from(secs).map_err(|_| "notBefore is before 1970".to_string())?;
    Ok(Cert {
        der,
        not_before: crate::auth_cmds::efi_time_from_unix(secs),
    })
}

/// A `--distro-keys` set: name, description, certificates (db, owned by
/// OvmfEnrollDefaultKeys as virt-fw-vars enrolls them).
pub struct Distro {
    pub name: &'static str,
    pub description: &'static str,
    pub certs: &'static [&'static BuiltinCert],
}

/// The sets of virt-firmware 26.10 `DISTRO_CA`, same names.
pub static DISTROS: &[Distro] = &[
    Distro {
        name: "windows",
        description: "Microsoft Windows (Windows Production PCA 2011, Windows UEFI CA 2023)",
        certs: &[&MS_WIN_2011, &MS_WIN_2023],
    },
    Distro {
        name: "ms-uefi",
        description: "Microsoft UEFI CA 2011 and 2023 (third-party: shim, drivers)",
        certs: &[&MS_UEFI_2011, &MS_UEFI_2023],
    },
    Distro {
        name: "ms-uefi-rom",
        description: "Microsoft Option ROM UEFI CA 2023",
        certs: &[&MS_ROM_2023],
    },
    Distro {
        name: "rhel-2014",
        description: "Red Hat Enterprise Linux (before the 2020 key rotation)",
        certs: &[&REDHAT_2014],
    },
    Distro {
        name: "rhel",
        description: "Red Hat Enterprise Linux (Secure Boot CA 5 and 8)",
        certs: &[&REDHAT_2020, &REDHAT_2023],
    },
    Distro {
        name: "rh-uefi",
        description: "Red Hat UEFI CA 2024",
        certs: &[&REDHAT_UEFI_2024],
    },
    Distro {
        name: "fedora",
        description: "Fedora Linux",
        certs: &[&FEDORA_2020],
    },
    Distro {
        name: "centos-2018",
        description: "CentOS Stream (before the 2020 key rotation)",
        certs: &[&CENTOS_2018],
    },
    Distro {
        name: "centos",
        description: "CentOS Stream (Secure Boot CA 2 and 8)",
        certs: &[&CENTOS_2020, &CENTOS_2025],
    },
    Distro {
        name: "debian",
        description: "Debian (Debian Secure Boot CA)",
        certs: &[&DEBIAN_2016],
    },
    Distro {
        name: "ubuntu",
        description: "Ubuntu (Canonical Ltd. Master Certificate Authority)",
        certs: &[&UBUNTU_2012],
    },
];

pub fn distro(name: &str) -> Option<&'static Distro> {
    DISTROS.iter().find(|d| d.name == name)
}
