//! Real signed updates (EFI_VARIABLE_AUTHENTICATION_2 + payload) that the
//! structured targets send, so the fuzzer gets past signature verification.
//!
//! `fuzz/data/auth/*.auth` come from `fuzz/data/make-auth.sh` (a throw-away
//! PKI, efitools' `sign-efi-sig-list`); the `virtfw-*` ones are the
//! virtfw-varstore enrollment files of `tests/data/enroll`.

use uefi_vars::guid::{Guid, GLOBAL_VARIABLE, IMAGE_SECURITY_DATABASE};
use uefi_vars::variable::attr;

/// Namespace of the private authenticated variable `FuzzPriv`.
pub const PRIVATE: Guid = Guid::from_fields(
    0x9999_9999,
    0x8888,
    0x7777,
    [0x66, 0x66, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55],
);

/// One signed update and the variable it was signed for.
#[derive(Clone, Copy, Debug)]
pub struct Signed {
    pub file: &'static str,
    pub name: &'static str,
    pub guid: Guid,
    /// Signed with APPEND_WRITE in the attributes.
    pub append: bool,
    pub bytes: &'static [u8],
}

impl Signed {
    /// The attributes the signature covers.
    pub fn attributes(&self) -> u32 {
        attr::SECURE_BOOT_DB | if self.append { attr::APPEND_WRITE } else { 0 }
    }
}

/// Signed in order: PK enrollment, KEK, db, ... (timestamps increase with
/// the file number).
pub const SIGNED: &[Signed] = &[
    Signed {
        file: "00-PK",
        name: "PK",
        guid: GLOBAL_VARIABLE,
        append: false,
        bytes: include_bytes!("../data/auth/00-PK.auth"),
    },
    Signed {
        file: "01-KEK",
        name: "KEK",
        guid: GLOBAL_VARIABLE,
        append: false,
        bytes: include_bytes!("../data/auth/01-KEK.auth"),
    },
    Signed {
        file: "02-KEK-append",
        name: "KEK",
        guid: GLOBAL_VARIABLE,
        append: true,
        bytes: include_bytes!("../data/auth/02-KEK-append.auth"),
    },
    Signed {
        file: "03-db",
        name: "db",
        guid: IMAGE_SECURITY_DATABASE,
        append: false,
        bytes: include_bytes!("../data/auth/03-db.auth"),
    },
    Signed {
        file: "04-db-append",
        name: "db",
        guid: IMAGE_SECURITY_DATABASE,
        append: true,
        bytes: include_bytes!("../data/auth/04-db-append.auth"),
    },
    Signed {
        file: "05-dbx",
        name: "dbx",
        guid: IMAGE_SECURITY_DATABASE,
        append: false,
        bytes: include_bytes!("../data/auth/05-dbx.auth"),
    },
    Signed {
        file: "06-db-by-PK",
        name: "db",
        guid: IMAGE_SECURITY_DATABASE,
        append: false,
        bytes: include_bytes!("../data/auth/06-db-by-PK.auth"),
    },
    Signed {
        file: "07-db-rogue",
        name: "db",
        guid: IMAGE_SECURITY_DATABASE,
        append: false,
        bytes: include_bytes!("../data/auth/07-db-rogue.auth"),
    },
    Signed {
        file: "08-KEK-by-KEK",
        name: "KEK",
        guid: GLOBAL_VARIABLE,
        append: false,
        bytes: include_bytes!("../data/auth/08-KEK-by-KEK.auth"),
    },
    Signed {
        file: "09-PK-rotate",
        name: "PK",
        guid: GLOBAL_VARIABLE,
        append: false,
        bytes: include_bytes!("../data/auth/09-PK-rotate.auth"),
    },
    Signed {
        file: "10-PK-delete",
        name: "PK",
        guid: GLOBAL_VARIABLE,
        append: false,
        bytes: include_bytes!("../data/auth/10-PK-delete.auth"),
    },
    Signed {
        file: "11-PK-del-rogue",
        name: "PK",
        guid: GLOBAL_VARIABLE,
        append: false,
        bytes: include_bytes!("../data/auth/11-PK-del-rogue.auth"),
    },
    Signed {
        file: "12-db-delete",
        name: "db",
        guid: IMAGE_SECURITY_DATABASE,
        append: false,
        bytes: include_bytes!("../data/auth/12-db-delete.auth"),
    },
    Signed {
        file: "13-priv",
        name: "FuzzPriv",
        guid: PRIVATE,
        append: false,
        bytes: include_bytes!("../data/auth/13-priv.auth"),
    },
    Signed {
        file: "14-priv-update",
        name: "FuzzPriv",
        guid: PRIVATE,
        append: false,
        bytes: include_bytes!("../data/auth/14-priv-update.auth"),
    },
    Signed {
        file: "15-priv-rogue",
        name: "FuzzPriv",
        guid: PRIVATE,
        append: false,
        bytes: include_bytes!("../data/auth/15-priv-rogue.auth"),
    },
    Signed {
        file: "16-priv-delete",
        name: "FuzzPriv",
        guid: PRIVATE,
        append: false,
        bytes: include_bytes!("../data/auth/16-priv-delete.auth"),
    },
    Signed {
        file: "virtfw-PK",
        name: "PK",
        guid: GLOBAL_VARIABLE,
        append: false,
        bytes: include_bytes!("../../tests/data/enroll/PK.auth"),
    },
    Signed {
        file: "virtfw-KEK",
        name: "KEK",
        guid: GLOBAL_VARIABLE,
        append: false,
        bytes: include_bytes!("../../tests/data/enroll/KEK.auth"),
    },
    Signed {
        file: "virtfw-db",
        name: "db",
        guid: IMAGE_SECURITY_DATABASE,
        append: false,
        bytes: include_bytes!("../../tests/data/enroll/db.auth"),
    },
    Signed {
        file: "virtfw-dbx",
        name: "dbx",
        guid: IMAGE_SECURITY_DATABASE,
        append: false,
        bytes: include_bytes!("../../tests/data/enroll/dbx.auth"),
    },
];
