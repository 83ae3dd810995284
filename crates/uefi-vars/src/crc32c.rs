//! CRC-32C (Castagnoli): reflected polynomial 0x82F63B78, initial value
//! 0xFFFFFFFF, final XOR 0xFFFFFFFF. Check value: `"123456789"` gives
//! 0xE3069283.
//!
//! Used for the device's PIO_BUFFER_CRC32C register and for snapshot
//! checksums. The register value: QEMU computes it as
//! `crc32c(0xffffffff, buf, len)`, whose implementation XORs the result with
//! 0xFFFFFFFF on return, and edk2 compares it with
//! `CalculateCrc32c(buf, len, 0)`, which inverts the initial value 0 and
//! the result: both are the standard CRC-32C above.

const POLY: u32 = 0x82F6_3B78;

// Evaluated at compile time over fixed bounds.
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
const fn make_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

static TABLE: [u32; 256] = make_table();

/// Standard CRC-32C of `data`.
pub fn crc32c(data: &[u8]) -> u32 {
    !crc32c_update(!0, data)
}

/// Runs the CRC register (not inverted) over `data`.
fn crc32c_update(mut crc: u32, data: &[u8]) -> u32 {
    for &byte in data {
        let index = usize::from((crc as u8) ^ byte);
        // `index` < 256 by construction; the fallback is never taken.
        crc = TABLE.get(index).copied().unwrap_or(0) ^ (crc >> 8);
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_value() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn empty_is_zero() {
        assert_eq!(crc32c(&[]), 0);
    }

    #[test]
    fn table_endpoints() {
        // Entries QEMU's and the Linux kernel's tables list.
        assert_eq!(TABLE[0], 0);
        assert_eq!(TABLE[1], 0xF26B_8303);
        assert_eq!(TABLE[128], 0x82F6_3B78);
        assert_eq!(TABLE[255], 0xAD7D_5351);
    }
}
