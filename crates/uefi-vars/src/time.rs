//! EFI_TIME: the 16-byte timestamp of time-based authenticated writes.

use std::cmp::Ordering;
use std::fmt;

/// Raw EFI_TIME bytes (Year LE first), kept verbatim so stores round-trip.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Debug)]
pub struct EfiTime(pub [u8; 16]);

impl EfiTime {
    /// Size of EFI_TIME on the wire.
    pub const SIZE: usize = 16;

    /// EFI_TIME.Year.
    pub fn year(&self) -> u16 {
        u16::from_le_bytes([self.0[0], self.0[1]])
    }
    /// EFI_TIME.Month.
    pub fn month(&self) -> u8 {
        self.0[2]
    }
    /// EFI_TIME.Day.
    pub fn day(&self) -> u8 {
        self.0[3]
    }
    /// EFI_TIME.Hour.
    pub fn hour(&self) -> u8 {
        self.0[4]
    }
    /// EFI_TIME.Minute.
    pub fn minute(&self) -> u8 {
        self.0[5]
    }
    /// EFI_TIME.Second.
    pub fn second(&self) -> u8 {
        self.0[6]
    }
    /// EFI_TIME.Pad1 (0 in an authentication descriptor).
    pub fn pad1(&self) -> u8 {
        self.0[7]
    }
    /// EFI_TIME.Nanosecond.
    pub fn nanosecond(&self) -> u32 {
        u32::from_le_bytes([self.0[8], self.0[9], self.0[10], self.0[11]])
    }
    /// EFI_TIME.TimeZone.
    pub fn time_zone(&self) -> i16 {
        i16::from_le_bytes([self.0[12], self.0[13]])
    }
    /// EFI_TIME.Daylight.
    pub fn daylight(&self) -> u8 {
        self.0[14]
    }
    /// EFI_TIME.Pad2 (0 in an authentication descriptor).
    pub fn pad2(&self) -> u8 {
        self.0[15]
    }

    /// The fields UEFI requires to be zero in an authentication descriptor
    /// (Pad1, Nanosecond, TimeZone, Daylight, Pad2) are zero.
    pub fn is_strict(&self) -> bool {
        self.pad1() == 0
            && self.nanosecond() == 0
            && self.time_zone() == 0
            && self.daylight() == 0
            && self.pad2() == 0
    }

    /// Chronological order over Year..Nanosecond; TimeZone and Daylight are
    /// not compared (as both QEMU and edk2 do).
    pub fn chrono_cmp(&self, other: &EfiTime) -> Ordering {
        let key = |t: &EfiTime| {
            (
                t.year(),
                t.month(),
                t.day(),
                t.hour(),
                t.minute(),
                t.second(),
                t.nanosecond(),
            )
        };
        key(self).cmp(&key(other))
    }
}

/// `YYYY-MM-DD HH:MM:SS`, the date and time fields only (refusal reasons,
/// the CLI).
impl fmt::Display for EfiTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            self.year(),
            self.month(),
            self.day(),
            self.hour(),
            self.minute(),
            self.second()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(year: u16, month: u8, sec: u8, nano: u32) -> EfiTime {
        let mut b = [0u8; 16];
        b[0..2].copy_from_slice(&year.to_le_bytes());
        b[2] = month;
        b[6] = sec;
        b[8..12].copy_from_slice(&nano.to_le_bytes());
        EfiTime(b)
    }

    #[test]
    fn ordering_is_field_by_field() {
        assert_eq!(
            t(2025, 1, 0, 0).chrono_cmp(&t(2024, 12, 59, 9)),
            Ordering::Greater
        );
        assert_eq!(
            t(2025, 1, 1, 0).chrono_cmp(&t(2025, 1, 0, 999)),
            Ordering::Greater
        );
        assert_eq!(
            t(2025, 1, 1, 5).chrono_cmp(&t(2025, 1, 1, 6)),
            Ordering::Less
        );
        assert_eq!(
            t(2025, 1, 1, 5).chrono_cmp(&t(2025, 1, 1, 5)),
            Ordering::Equal
        );
    }

    #[test]
    fn strictness() {
        assert!(t(2025, 1, 1, 0).is_strict());
        assert!(!t(2025, 1, 1, 1).is_strict());
        let mut b = t(2025, 1, 1, 0);
        b.0[15] = 1;
        assert!(!b.is_strict());
    }
}
