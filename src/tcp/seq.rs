//! TCP sequence numbers: a newtype whose comparisons are modulo 2^32 (RFC 793
//! section 3.3) and whose arithmetic wraps instead of panicking, because every
//! value comes from a capture and none can be trusted.

use std::fmt;

/// A 32-bit TCP sequence (or acknowledgement) number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Seq(pub u32);

impl Seq {
    /// `self + n`, wrapping.
    #[inline]
    pub fn plus(self, n: u32) -> Seq {
        Seq(self.0.wrapping_add(n))
    }

    /// Signed distance from `other` to `self` (positive when `self` is later),
    /// valid while the two are less than 2^31 apart.
    #[inline]
    pub fn diff(self, other: Seq) -> i64 {
        i64::from(self.0.wrapping_sub(other.0) as i32)
    }

    /// `self` comes before `other` in sequence space.
    #[inline]
    pub fn before(self, other: Seq) -> bool {
        self.diff(other) < 0
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_across_the_wrap() {
        let a = Seq(u32::MAX - 10);
        let b = a.plus(20);
        assert_eq!(b, Seq(9));
        assert_eq!(b.diff(a), 20);
        assert_eq!(a.diff(b), -20);
        assert!(a.before(b));
        assert!(!b.before(a));
        assert!(!a.before(a));
    }

    #[test]
    fn half_the_space_is_the_limit() {
        let a = Seq(0);
        assert_eq!(a.plus(0x7fff_ffff).diff(a), 0x7fff_ffff);
        assert_eq!(a.plus(0x8000_0000).diff(a), -0x8000_0000);
    }
}
