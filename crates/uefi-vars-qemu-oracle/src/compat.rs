//! Allowed differences, keyed by compat id (docs/compat.md).

use std::collections::BTreeMap;

use uefi_vars::guid::Guid;
use uefi_vars::name::VarName;
use uefi_vars::MmResponse;

/// State the classifier keeps across a run.
#[derive(Clone, Debug, Default)]
pub struct Context {
    /// Variables whose state may differ because of a listed difference.
    taint: BTreeMap<(Guid, Vec<u16>), &'static str>,
}

impl Context {
    pub fn reset(&mut self) {}

    pub fn store_id(&self, guid: Guid, name: &VarName) -> Option<&'static str> {
        self.taint.get(&(guid, name.units().to_vec())).copied()
    }

    pub fn any_taint(&self) -> Option<&'static str> {
        self.taint.values().next().copied()
    }
}

/// Looks at one request and both answers; returns the compat id that
/// explains a difference (`None` when nothing listed does).
pub fn observe(
    _ctx: &mut Context,
    _request: &[u8],
    _qemu_status: u16,
    _qemu_reply: Option<&[u8]>,
    _ours: &MmResponse,
    _same: bool,
) -> Option<&'static str> {
    None
}
