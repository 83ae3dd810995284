//! Why a SetVariable was refused: a typed reason that knows the EFI status
//! the guest gets and the docs/compat.md row (if any) where that answer
//! differs from QEMU's. The service keeps the most recent ones
//! ([`crate::Service::take_refusals`]) so front ends can say what went
//! wrong instead of printing a bare status.

use std::fmt;

use crate::crypto::VerifyError;
use crate::guid::Guid;
use crate::name::VarName;
use crate::siglist::FormatProblem;
use crate::status::EfiStatus;
use crate::time::EfiTime;
use crate::variable::attr;

/// Where a malformed EFI_VARIABLE_AUTHENTICATION_2 went wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DescriptorFault {
    /// Shorter than its fixed part, or dwLength outside the data
    /// (edk2 VariableServiceSetVariable's sanity check).
    Framing,
    /// wRevision, wCertificateType or CertType is not PKCS#7 (edk2
    /// VerifyTimeBasedPayload).
    CertificateType,
    /// TimeStamp with non-zero Pad1, Nanosecond, TimeZone, Daylight or Pad2.
    TimeFields,
}

/// A refused SetVariable.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// The empty name `""`.
    EmptyName,
    /// A name longer than `Config::max_name_size` (bytes with the NUL).
    NameTooLong {
        /// Its size in bytes.
        size: u64,
        /// The limit in bytes.
        max: u64,
    },
    /// Attribute bits outside EFI_VARIABLE_ATTRIBUTES_MASK and
    /// AUTHENTICATED_WRITE_ACCESS.
    ReservedAttributes {
        /// The attributes of the request.
        attributes: u32,
    },
    /// RUNTIME_ACCESS without BOOTSERVICE_ACCESS.
    RuntimeWithoutBootServices {
        /// The attributes of the request.
        attributes: u32,
    },
    /// NON_VOLATILE and no other attribute of the mask.
    NonVolatileOnly {
        /// The attributes of the request.
        attributes: u32,
    },
    /// AUTHENTICATED_WRITE_ACCESS (count-based authentication, deprecated
    /// by UEFI 2.x and not supported by edk2).
    CountBasedAuthentication,
    /// A HARDWARE_ERROR_RECORD variable outside the hardware error
    /// namespace or not named HwErrRec followed by four upper-case hex
    /// digits.
    HwErrRecName,
    /// A hardware error record larger than PcdMaxHardwareErrorVariableSize
    /// allows (name with NUL plus payload, `max` bytes).
    HwErrRecTooLarge {
        /// Its size in bytes.
        size: u64,
        /// The limit in bytes.
        max: u64,
    },
    /// Name (with NUL) plus payload larger than the limit for the variable
    /// (`max` bytes).
    TooLarge {
        /// Its size in bytes.
        size: u64,
        /// The limit in bytes.
        max: u64,
    },
    /// A variable the guest may never write (AuthVariableLib, VarCheckUefiLib).
    ReadOnly,
    /// A variable policy forbids the write (VariablePolicyLib).
    Policy {
        /// The EFI status it answers.
        status: EfiStatus,
    },
    /// A VarCheck variable property (functions 9/10, or one VarCheckUefiLib
    /// registers for a UEFI-defined variable) forbids it: read-only, the
    /// attributes, the size or the content (edk2 VarCheckLibSetVariableCheck).
    VarCheck {
        /// The EFI status it answers.
        status: EfiStatus,
    },
    /// A setting of this service forbids it (`force_secure_boot`,
    /// `disable_custom_mode`).
    Configuration,
    /// After ExitBootServices: the variable has no RUNTIME_ACCESS.
    RuntimeNotAccessible,
    /// After ExitBootServices: a volatile variable is read-only.
    RuntimeVolatile,
    /// After ExitBootServices: a new variable needs NON_VOLATILE and
    /// RUNTIME_ACCESS.
    RuntimeCreate {
        /// The attributes of the request.
        attributes: u32,
    },
    /// A write (or delete) whose attributes differ from the stored ones.
    AttributeMismatch {
        /// The stored attributes.
        stored: u32,
        /// The attributes of the request.
        requested: u32,
    },
    /// PK, KEK, db, dbx, dbt, dbr without NON_VOLATILE and
    /// TIME_BASED_AUTHENTICATED_WRITE_ACCESS, or with other attributes than
    /// NV|BS|RT|AT.
    SecureBootDbAttributes {
        /// The attributes of the request.
        attributes: u32,
    },
    /// A malformed authentication descriptor.
    Descriptor(DescriptorFault),
    /// An authenticated variable changed or deleted without a signature
    /// (`database`: PK, KEK, db, dbx, dbt or dbr).
    UnauthenticatedDelete {
        /// Whether it is one of the Secure Boot databases.
        database: bool,
    },
    /// An authenticated write that needs a signature carries none.
    Unsigned,
    /// An authenticated write dated no later than the stored one.
    Replay {
        /// The stored timestamp.
        stored: EfiTime,
        /// The request's timestamp.
        new: EfiTime,
    },
    /// The PKCS#7 verifier refused the signature.
    SignatureRejected {
        /// Why.
        reason: VerifyError,
    },
    /// The signature verifies but the signer is not the one the variable
    /// is bound to, or not a certificate the key hierarchy trusts;
    /// `signer` is its SHA-256 identity when known.
    SignerNotTrusted {
        /// The signer's SHA-256 identity, when known.
        signer: Option<Vec<u8>>,
    },
    /// A payload that must be signature lists is not.
    NotSignatureList {
        /// Where the data stops being signature lists.
        problem: FormatProblem,
    },
    /// The variable storage is full.
    OutOfResources,
    /// The store could not be written; the variable is left as it was.
    StoreWriteFailed,
}

impl Refusal {
    /// The status the guest gets.
    pub fn status(&self) -> EfiStatus {
        use Refusal::*;
        match self {
            EmptyName
            | NameTooLong { .. }
            | ReservedAttributes { .. }
            | HwErrRecName
            | HwErrRecTooLarge { .. }
            | UnauthenticatedDelete { database: true }
            | TooLarge { .. }
            | RuntimeCreate { .. }
            | AttributeMismatch { .. }
            | SecureBootDbAttributes { .. }
            | NotSignatureList { .. } => EfiStatus::INVALID_PARAMETER,
            RuntimeWithoutBootServices { attributes } | NonVolatileOnly { attributes } => {
                if attributes & attr::AUTHENTICATED_WRITE_ACCESS != 0 {
                    EfiStatus::UNSUPPORTED
                } else {
                    EfiStatus::INVALID_PARAMETER
                }
            }
            CountBasedAuthentication => EfiStatus::UNSUPPORTED,
            ReadOnly | Configuration | RuntimeNotAccessible | RuntimeVolatile => {
                EfiStatus::WRITE_PROTECTED
            }
            UnauthenticatedDelete { database: false } => EfiStatus::WRITE_PROTECTED,
            Policy { status } => *status,
            VarCheck { status } => *status,
            Descriptor(_)
            | Unsigned
            | Replay { .. }
            | SignatureRejected { .. }
            | SignerNotTrusted { .. } => EfiStatus::SECURITY_VIOLATION,
            OutOfResources => EfiStatus::OUT_OF_RESOURCES,
            StoreWriteFailed => EfiStatus::DEVICE_ERROR,
        }
    }

    /// The docs/compat.md row describing this answer where it differs
    /// from QEMU's (`None`: QEMU answers the same).
    pub fn compat_id(&self) -> Option<&'static str> {
        use Refusal::*;
        Some(match self {
            EmptyName => "empty-name",
            NameTooLong { .. } => "name-size-limit",
            ReservedAttributes { .. } => "attr-reserved-bits",
            RuntimeWithoutBootServices { .. } => "attr-runtime-without-bs",
            NonVolatileOnly { .. } => "attr-nv-only",
            CountBasedAuthentication => "auth-write-access",
            HwErrRecName | HwErrRecTooLarge { .. } => "hw-error-record",
            TooLarge { .. } => "max-variable-size",
            ReadOnly => "read-only",
            RuntimeNotAccessible | RuntimeVolatile | RuntimeCreate { .. } => "runtime-write",
            Descriptor(DescriptorFault::CertificateType) => "auth-descriptor",
            Descriptor(DescriptorFault::TimeFields) => "auth-time-fields",
            UnauthenticatedDelete { .. } => "unauthenticated-delete",
            Replay { .. } => "replay",
            NotSignatureList { .. } => "payload-format",
            StoreWriteFailed => "store-write-failure",
            _ => return None,
        })
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Refusal::*;
        match self {
            EmptyName => write!(f, "the empty name is not a variable name"),
            NameTooLong { size, max } => write!(f, "name of {size} bytes (limit {max})"),
            ReservedAttributes { attributes } => write!(
                f,
                "reserved attribute bits in {}",
                attr::describe(*attributes)
            ),
            RuntimeWithoutBootServices { attributes } => write!(
                f,
                "RUNTIME_ACCESS without BOOTSERVICE_ACCESS ({})",
                attr::describe(*attributes)
            ),
            NonVolatileOnly { attributes } => write!(
                f,
                "NON_VOLATILE without an access attribute ({})",
                attr::describe(*attributes)
            ),
            CountBasedAuthentication => {
                write!(
                    f,
                    "AUTHENTICATED_WRITE_ACCESS (count-based) is not supported"
                )
            }
            HwErrRecName => write!(
                f,
                "a hardware error record must be HwErrRec#### in the hardware error namespace"
            ),
            HwErrRecTooLarge { size, max } => {
                write!(f, "hardware error record of {size} bytes (limit {max})")
            }
            TooLarge { size, max } => {
                write!(f, "name and data take {size} bytes (limit {max})")
            }
            ReadOnly => write!(f, "the variable is read-only"),
            Policy { status } => write!(f, "a variable policy forbids it ({status})"),
            VarCheck { status } => write!(f, "a VarCheck variable property forbids it ({status})"),
            Configuration => write!(f, "this service's configuration forbids it"),
            RuntimeNotAccessible => write!(f, "the variable has no RUNTIME_ACCESS"),
            RuntimeVolatile => write!(f, "volatile variables are read-only at runtime"),
            RuntimeCreate { attributes } => write!(
                f,
                "at runtime only NV|RT variables can be created, not {}",
                attr::describe(*attributes)
            ),
            AttributeMismatch { stored, requested } => write!(
                f,
                "attributes {} differ from the stored {}",
                attr::describe(*requested),
                attr::describe(*stored)
            ),
            SecureBootDbAttributes { attributes } => write!(
                f,
                "a Secure Boot database needs NV|BS|RT|AT, not {}",
                attr::describe(*attributes)
            ),
            Descriptor(fault) => write!(f, "malformed authentication descriptor ({fault:?})"),
            UnauthenticatedDelete { .. } => {
                write!(f, "an authenticated variable needs a signed write")
            }
            Unsigned => write!(f, "the write carries no signature"),
            Replay { stored, new } => write!(
                f,
                "timestamp {} is not later than the stored {}",
                new, stored
            ),
            SignatureRejected { reason } => write!(f, "signature refused: {reason}"),
            SignerNotTrusted { signer: Some(s) } => {
                write!(f, "signer {} is not trusted for this variable", hex(s))
            }
            SignerNotTrusted { signer: None } => {
                write!(f, "the signer is not trusted for this variable")
            }
            NotSignatureList { problem } => {
                write!(f, "payload is not valid signature lists ({problem:?})")
            }
            OutOfResources => write!(f, "the variable storage is full"),
            StoreWriteFailed => write!(f, "the store could not be written"),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A refusal with the variable it concerns, as the service records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    /// The variable's vendor GUID.
    pub guid: Guid,
    /// The variable's name.
    pub name: VarName,
    /// Why it was refused.
    pub refusal: Refusal,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SetVariable {}:{} refused: {} ({})",
            self.guid,
            self.name,
            self.refusal,
            self.refusal.status()
        )
    }
}
