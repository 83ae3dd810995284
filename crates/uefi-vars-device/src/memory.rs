//! Guest memory as the device sees it for DMA_MM: two calls, by
//! guest-physical address.

use std::collections::BTreeMap;
use std::fmt;

/// Why a DMA access failed. The guest only ever sees the device status
/// ERR_UNKNOWN for these.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MemoryError {
    /// `addr + len` does not fit in the 64-bit guest-physical space.
    Overflow {
        /// Start of the access.
        addr: u64,
        /// Its length in bytes.
        len: usize,
    },
    /// Some byte of `[addr, addr + len)` is not accessible guest memory
    /// (unmapped, MMIO, or not writable).
    Inaccessible {
        /// Start of the access.
        addr: u64,
        /// Its length in bytes.
        len: usize,
    },
}

impl fmt::Display for MemoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemoryError::Overflow { addr, len } => {
                write!(f, "guest range {addr:#x} + {len:#x} overflows")
            }
            MemoryError::Inaccessible { addr, len } => {
                write!(f, "guest range {addr:#x} + {len:#x} is not accessible")
            }
        }
    }
}

impl std::error::Error for MemoryError {}

/// Guest-physical memory the device reads requests from and writes replies
/// to in DMA mode.
///
/// Contract for implementations: an access either covers the whole range or
/// fails without effect. In particular `write_at` must not write a prefix
/// of the range and then fail (check the whole range first); the device
/// relies on that to never leave a partial reply in guest memory.
pub trait DmaMemory {
    /// Fills `buf` from guest memory at `addr`.
    fn read_at(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError>;
    /// Copies `data` to guest memory at `addr`.
    fn write_at(&mut self, addr: u64, data: &[u8]) -> Result<(), MemoryError>;
}

impl<T: DmaMemory + ?Sized> DmaMemory for &mut T {
    fn read_at(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        (**self).read_at(addr, buf)
    }
    fn write_at(&mut self, addr: u64, data: &[u8]) -> Result<(), MemoryError> {
        (**self).write_at(addr, data)
    }
}

impl<T: DmaMemory + ?Sized> DmaMemory for Box<T> {
    fn read_at(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        (**self).read_at(addr, buf)
    }
    fn write_at(&mut self, addr: u64, data: &[u8]) -> Result<(), MemoryError> {
        (**self).write_at(addr, data)
    }
}

/// Memory for a device that never does DMA (PIO-only guests): every access
/// fails.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoDma;

impl DmaMemory for NoDma {
    fn read_at(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        Err(MemoryError::Inaccessible {
            addr,
            len: buf.len(),
        })
    }
    fn write_at(&mut self, addr: u64, data: &[u8]) -> Result<(), MemoryError> {
        Err(MemoryError::Inaccessible {
            addr,
            len: data.len(),
        })
    }
}

/// A sparse guest RAM held in host vectors: non-overlapping regions at
/// arbitrary guest-physical addresses. For tests and for embedders that
/// model guest memory themselves. An access may span adjacent regions but
/// not a hole.
#[derive(Clone, Debug, Default)]
pub struct SparseRam {
    /// Start address -> contents.
    regions: BTreeMap<u64, Vec<u8>>,
}

impl SparseRam {
    /// Empty guest memory: no region is accessible until [`SparseRam::add_region`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `size` zeroed bytes at `start`. Returns `false` (and adds
    /// nothing) if the region is empty, wraps around the address space or
    /// overlaps an existing one.
    pub fn add_region(&mut self, start: u64, size: usize) -> bool {
        let Some(end) = u64::try_from(size).ok().and_then(|s| start.checked_add(s)) else {
            return false;
        };
        if size == 0 {
            return false;
        }
        let overlaps = self
            .regions
            .range(..end)
            .next_back()
            .is_some_and(|(&s, r)| s.saturating_add(r.len() as u64) > start);
        if overlaps {
            return false;
        }
        self.regions.insert(start, vec![0; size]);
        true
    }

    /// The pieces of `[addr, addr + len)`: (region start, offset in region,
    /// piece length), or `None` if any byte is outside every region.
    fn pieces(&self, addr: u64, len: usize) -> Result<Vec<(u64, usize, usize)>, MemoryError> {
        let len64 = u64::try_from(len).map_err(|_| MemoryError::Overflow { addr, len })?;
        let end = addr
            .checked_add(len64)
            .ok_or(MemoryError::Overflow { addr, len })?;
        let inaccessible = MemoryError::Inaccessible { addr, len };
        let mut out = Vec::new();
        let mut cur = addr;
        while cur < end {
            let (&start, region) = self
                .regions
                .range(..=cur)
                .next_back()
                .ok_or_else(|| inaccessible.clone())?;
            let region_end = start.saturating_add(region.len() as u64);
            if cur >= region_end {
                return Err(inaccessible);
            }
            let piece_end = region_end.min(end);
            let offset = cur
                .checked_sub(start)
                .and_then(|o| usize::try_from(o).ok())
                .ok_or_else(|| inaccessible.clone())?;
            let piece = piece_end
                .checked_sub(cur)
                .and_then(|p| usize::try_from(p).ok())
                .ok_or_else(|| inaccessible.clone())?;
            out.push((start, offset, piece));
            cur = piece_end;
        }
        Ok(out)
    }
}

impl DmaMemory for SparseRam {
    fn read_at(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        let inaccessible = MemoryError::Inaccessible {
            addr,
            len: buf.len(),
        };
        let mut done = 0usize;
        for (start, offset, piece) in self.pieces(addr, buf.len())? {
            let src = self
                .regions
                .get(&start)
                .and_then(|r| r.get(offset..offset.checked_add(piece)?))
                .ok_or_else(|| inaccessible.clone())?;
            let next = done
                .checked_add(piece)
                .ok_or_else(|| inaccessible.clone())?;
            buf.get_mut(done..next)
                .ok_or_else(|| inaccessible.clone())?
                .copy_from_slice(src);
            done = next;
        }
        Ok(())
    }

    fn write_at(&mut self, addr: u64, data: &[u8]) -> Result<(), MemoryError> {
        let inaccessible = MemoryError::Inaccessible {
            addr,
            len: data.len(),
        };
        // The whole range is resolved before the first byte is written.
        let pieces = self.pieces(addr, data.len())?;
        let mut done = 0usize;
        for (start, offset, piece) in pieces {
            let next = done
                .checked_add(piece)
                .ok_or_else(|| inaccessible.clone())?;
            let src = data.get(done..next).ok_or_else(|| inaccessible.clone())?;
            self.regions
                .get_mut(&start)
                .and_then(|r| r.get_mut(offset..offset.checked_add(piece)?))
                .ok_or_else(|| inaccessible.clone())?
                .copy_from_slice(src);
            done = next;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_ram_spans_adjacent_regions_but_not_holes() {
        let mut ram = SparseRam::new();
        assert!(ram.add_region(0x1000, 0x10));
        assert!(ram.add_region(0x1010, 0x10));
        assert!(ram.add_region(0x2000, 0x10));
        assert!(!ram.add_region(0x100f, 2), "overlap");
        assert!(!ram.add_region(u64::MAX, 2), "wraps");
        assert!(!ram.add_region(0x3000, 0), "empty");

        ram.write_at(0x100c, &[1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
        let mut buf = [0u8; 8];
        ram.read_at(0x100c, &mut buf).unwrap();
        assert_eq!(buf, [1, 2, 3, 4, 5, 6, 7, 8]);

        // 0x1020..0x2000 is a hole: nothing is written.
        assert!(matches!(
            ram.write_at(0x101c, &[9; 8]),
            Err(MemoryError::Inaccessible { .. })
        ));
        let mut tail = [0u8; 4];
        ram.read_at(0x101c, &mut tail).unwrap();
        assert_eq!(tail, [0; 4]);
        assert!(ram.read_at(0x0fff, &mut [0u8; 2]).is_err());
        assert!(matches!(
            ram.read_at(u64::MAX, &mut [0u8; 2]),
            Err(MemoryError::Overflow { .. })
        ));
        // Empty accesses succeed anywhere that does not overflow.
        ram.read_at(0x9999, &mut []).unwrap();
    }

    #[test]
    fn no_dma_refuses_everything() {
        let mut m = NoDma;
        assert!(m.read_at(0, &mut [0u8; 1]).is_err());
        assert!(m.write_at(0, &[0u8; 1]).is_err());
    }
}
