//! An interface of a capture: its link type, snap length, timestamp unit and
//! offset, as a pcap file header or a pcapng interface description gives them.
//!
//! [`TsResolution`] turns a timestamp in the interface's unit (10^-n or 2^-n
//! seconds, pcapng `if_tsresol`) into nanoseconds. Cannot fail: every
//! conversion saturates, a resolution too fine for a `u64` count of units is
//! refused when it is read (`from_if_tsresol` gives `None`) and the caller
//! reports it and assumes microseconds.

use crate::capture::LinkType;

/// The unit of a timestamp: 10^-n or 2^-n seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsResolution {
    /// 10^-n seconds (6: microseconds, 9: nanoseconds); n ≤ 19.
    Decimal(u8),
    /// 2^-n seconds; n ≤ 63.
    Binary(u8),
}

impl TsResolution {
    pub const MICRO: TsResolution = TsResolution::Decimal(6);
    pub const NANO: TsResolution = TsResolution::Decimal(9);

    /// From a pcapng `if_tsresol` byte; `None` if too fine for a `u64` count.
    pub fn from_if_tsresol(b: u8) -> Option<TsResolution> {
        let n = b & 0x7f;
        if b & 0x80 == 0 {
            (n <= 19).then_some(TsResolution::Decimal(n))
        } else {
            (n <= 63).then_some(TsResolution::Binary(n))
        }
    }

    /// Timestamp units per second.
    pub fn units_per_second(self) -> u64 {
        match self {
            TsResolution::Decimal(n) => 10u64.saturating_pow(u32::from(n)),
            TsResolution::Binary(n) => 1u64.checked_shl(u32::from(n)).unwrap_or(u64::MAX),
        }
    }

    /// `ticks` of this unit in nanoseconds, saturating.
    pub fn to_ns(self, ticks: u64) -> u64 {
        match self {
            TsResolution::NANO => ticks,
            TsResolution::MICRO => ticks.saturating_mul(1000),
            _ => {
                let u = u128::from(self.units_per_second().max(1));
                let t = u128::from(ticks);
                let ns = t / u * 1_000_000_000 + t % u * 1_000_000_000 / u;
                u64::try_from(ns).unwrap_or(u64::MAX)
            }
        }
    }
}

impl std::fmt::Display for TsResolution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TsResolution::Decimal(0) => write!(f, "s"),
            TsResolution::Decimal(3) => write!(f, "ms"),
            TsResolution::Decimal(6) => write!(f, "µs"),
            TsResolution::Decimal(9) => write!(f, "ns"),
            TsResolution::Decimal(n) => write!(f, "10^-{n} s"),
            TsResolution::Binary(n) => write!(f, "2^-{n} s"),
        }
    }
}

/// An interface of a capture file (a pcap file has exactly one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub link: LinkType,
    /// Snap length; 0 means none was recorded (no limit).
    pub snaplen: u32,
    pub resolution: TsResolution,
    /// Seconds added to every timestamp (pcapng `if_tsoffset`).
    pub ts_offset: i64,
    /// `if_name`, cut to [`MAX_IF_NAME`](super::MAX_IF_NAME) bytes (pcapng only).
    pub name: Option<String>,
}

pub(super) fn add_offset(ns: u64, offset_s: i64) -> u64 {
    let t = i128::from(ns) + i128::from(offset_s) * 1_000_000_000;
    t.clamp(0, i128::from(u64::MAX)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolution_arithmetic() {
        assert_eq!(TsResolution::from_if_tsresol(6), Some(TsResolution::MICRO));
        assert_eq!(TsResolution::from_if_tsresol(20), None);
        assert_eq!(TsResolution::from_if_tsresol(0x80 | 64), None);
        assert_eq!(TsResolution::Decimal(3).to_ns(1500), 1_500_000_000);
        assert_eq!(TsResolution::Decimal(19).to_ns(10_000_000_000), 1);
        assert_eq!(TsResolution::Binary(0).to_ns(u64::MAX), u64::MAX);
        assert_eq!(TsResolution::Binary(63).to_ns(1 << 62), 500_000_000);
        assert_eq!(add_offset(5, -1), 0);
        assert_eq!(add_offset(u64::MAX - 1, 1), u64::MAX);
    }
}
