//! [`DmaMemory`] over rust-vmm's `vm-memory` (feature `vm-memory`).

use vm_memory::{Bytes, GuestAddress, GuestAddressSpace, GuestMemory, Permissions};

use crate::memory::{DmaMemory, MemoryError};

/// Adapts a `vm-memory` address space (`&GuestMemoryMmap`,
/// `Arc<GuestMemoryMmap>`, `GuestMemoryAtomic<_>`, an IOMMU-translated
/// memory, ...) to [`DmaMemory`].
///
/// Every access is checked over its whole range (and for the needed
/// permission) before any byte moves, so a range that runs into a hole
/// fails without a partial write.
#[derive(Clone, Debug)]
pub struct VmMemory<S: GuestAddressSpace> {
    space: S,
}

impl<S: GuestAddressSpace> VmMemory<S> {
    /// DMA through `space`.
    pub fn new(space: S) -> Self {
        VmMemory { space }
    }

    /// The address space behind the adapter.
    pub fn space(&self) -> &S {
        &self.space
    }

    /// Gives the address space back.
    pub fn into_inner(self) -> S {
        self.space
    }

    fn check(
        mem: &S::M,
        addr: u64,
        len: usize,
        access: Permissions,
    ) -> Result<GuestAddress, MemoryError> {
        let len64 = u64::try_from(len).map_err(|_| MemoryError::Overflow { addr, len })?;
        addr.checked_add(len64)
            .ok_or(MemoryError::Overflow { addr, len })?;
        if len > 0 && !mem.check_range(GuestAddress(addr), len, access) {
            return Err(MemoryError::Inaccessible { addr, len });
        }
        Ok(GuestAddress(addr))
    }
}

impl<S: GuestAddressSpace> DmaMemory for VmMemory<S> {
    fn read_at(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        let len = buf.len();
        let guard = self.space.memory();
        let mem: &S::M = &guard;
        let at = Self::check(mem, addr, len, Permissions::Read)?;
        if len == 0 {
            return Ok(());
        }
        mem.read_slice(buf, at)
            .map_err(|_| MemoryError::Inaccessible { addr, len })
    }

    fn write_at(&mut self, addr: u64, data: &[u8]) -> Result<(), MemoryError> {
        let len = data.len();
        let guard = self.space.memory();
        let mem: &S::M = &guard;
        let at = Self::check(mem, addr, len, Permissions::Write)?;
        if len == 0 {
            return Ok(());
        }
        mem.write_slice(data, at)
            .map_err(|_| MemoryError::Inaccessible { addr, len })
    }
}
