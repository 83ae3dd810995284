//! Secure Boot state variables (AuthVariableLibInitialize): created at every
//! machine reset and after every PK enrollment, bypassing all checks.

use super::Service;
use crate::guid::{
    CERT_RSA2048, CERT_SHA256, CERT_SHA384, CERT_SHA512, CERT_X509, CUSTOM_MODE_ENABLE,
    GLOBAL_VARIABLE, SECURE_BOOT_ENABLE_DISABLE,
};
use crate::name::VarName;
use crate::variable::{Attributes, Variable};
use crate::well_known;

const BS_RT: u32 = Attributes::BOOTSERVICE_ACCESS
    .union(Attributes::RUNTIME_ACCESS)
    .bits();
const NV_BS: u32 = Attributes::NV_BS.bits();

impl Service {
    fn force_set(&mut self, guid: crate::guid::Guid, name: &str, attributes: u32, data: Vec<u8>) {
        self.store
            .put(Variable::new(guid, VarName::from(name), attributes, data));
    }

    pub(super) fn pk_present(&self) -> bool {
        self.store.get(&well_known::PK.key()).is_some()
    }

    /// Recomputes SetupMode, SignatureSupport, SecureBootEnable, SecureBoot,
    /// CustomMode, VendorKeysNv and VendorKeys, in QEMU's order (the order is
    /// visible through GetNextVariableName).
    pub(super) fn init_secure_boot_state(&mut self) {
        let user_mode = self.pk_present();
        self.force_set(
            GLOBAL_VARIABLE,
            "SetupMode",
            BS_RT,
            vec![u8::from(!user_mode)],
        );

        let support: Vec<u8> = [
            CERT_SHA256,
            CERT_SHA384,
            CERT_SHA512,
            CERT_RSA2048,
            CERT_X509,
        ]
        .iter()
        .flat_map(|g| g.0)
        .collect();
        self.force_set(GLOBAL_VARIABLE, "SignatureSupport", BS_RT, support);

        let sbe_key = well_known::SECURE_BOOT_ENABLE.key();
        let mut sbe = 0u8;
        match self.store.get(&sbe_key) {
            Some(v) if user_mode => sbe = v.data.first().copied().unwrap_or(0),
            Some(_) => {}
            None if user_mode => {
                sbe = 1;
                self.force_set(
                    SECURE_BOOT_ENABLE_DISABLE,
                    "SecureBootEnable",
                    NV_BS,
                    vec![1],
                );
            }
            None => {}
        }
        if self.config.force_secure_boot && sbe != 1 {
            sbe = 1;
            self.force_set(
                SECURE_BOOT_ENABLE_DISABLE,
                "SecureBootEnable",
                NV_BS,
                vec![1],
            );
        }
        let secure_boot = sbe == 1 && user_mode;
        self.force_set(
            GLOBAL_VARIABLE,
            "SecureBoot",
            BS_RT,
            vec![u8::from(secure_boot)],
        );
        self.force_set(CUSTOM_MODE_ENABLE, "CustomMode", NV_BS, vec![0]);
        self.force_set(
            GLOBAL_VARIABLE,
            "VendorKeysNv",
            NV_BS | Attributes::TIME_BASED_AUTHENTICATED_WRITE_ACCESS.bits(),
            vec![0],
        );
        self.force_set(GLOBAL_VARIABLE, "VendorKeys", BS_RT, vec![0]);
    }

    pub(super) fn custom_mode_active(&self) -> bool {
        self.store
            .get(&well_known::CUSTOM_MODE.key())
            .is_some_and(|v| v.data.first() == Some(&1))
    }
}
