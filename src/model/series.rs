//! Values over time in bins that start at 10 ms and widen as a session
//! grows, so a sub-second phase shows in a short capture and a week-long
//! session stays within a fixed size: when a sample falls past the last of
//! [`MAX_BINS`] bins, neighbouring bins are merged in pairs and the bin
//! width doubles.

use serde::Serialize;

/// Width of a bin before any merge: a COLO checkpoint (tens of ms) spans a
/// few.
pub const FIRST_BIN_NS: u64 = 10_000_000;

/// Bins kept at most (a 10 ms series covers 164 s before its first merge).
pub const MAX_BINS: usize = 16_384;

/// A value that two adjacent bins combine into.
pub trait Merge: Default + Clone {
    fn merge(&mut self, other: &Self);
}

impl Merge for u64 {
    fn merge(&mut self, other: &Self) {
        *self = self.saturating_add(*other);
    }
}

/// A series of bins from a start time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series<T> {
    /// Width of a bin (ns): 10 ms times a power of two.
    pub bin_ns: u64,
    pub bins: Vec<T>,
}

impl<T> Default for Series<T> {
    fn default() -> Self {
        Series {
            bin_ns: FIRST_BIN_NS,
            bins: Vec::new(),
        }
    }
}

impl<T: Merge> Series<T> {
    /// The bin of the sample `since_ns` after the series' start, widening
    /// the bins until it fits.
    pub fn at(&mut self, since_ns: u64) -> &mut T {
        let mut i = since_ns / self.bin_ns;
        while i >= MAX_BINS as u64 {
            self.halve();
            i = since_ns / self.bin_ns;
        }
        let i = i as usize;
        if self.bins.len() <= i {
            self.bins.resize(i + 1, T::default());
        }
        &mut self.bins[i]
    }

    /// Merges neighbouring bins in pairs: half as many, twice as wide.
    fn halve(&mut self) {
        let merged = self
            .bins
            .chunks(2)
            .map(|pair| {
                let mut v = pair[0].clone();
                if let Some(b) = pair.get(1) {
                    v.merge(b);
                }
                v
            })
            .collect();
        self.bins = merged;
        self.bin_ns = self.bin_ns.saturating_mul(2);
    }

    /// Seconds per bin.
    pub fn bin_secs(&self) -> f64 {
        self.bin_ns as f64 / 1e9
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_session_keeps_10_ms_bins() {
        let mut s: Series<u64> = Series::default();
        *s.at(0) += 5;
        *s.at(25_000_000) += 7; // 25 ms: the third bin
        assert_eq!(s.bin_ns, FIRST_BIN_NS);
        assert_eq!(s.bins, [5, 0, 7]);
    }

    #[test]
    fn a_long_session_widens_its_bins_and_keeps_every_byte() {
        let mut s: Series<u64> = Series::default();
        let day = 86_400 * 1_000_000_000u64;
        let mut total = 0;
        for k in 0..10_000u64 {
            *s.at(k * (day / 10_000)) += k;
            total += k;
        }
        assert!(s.bins.len() <= MAX_BINS);
        assert!(s.bin_ns > FIRST_BIN_NS && s.bin_ns % FIRST_BIN_NS == 0);
        assert_eq!(s.bins.iter().sum::<u64>(), total);
        assert!(s.bin_ns * MAX_BINS as u64 > day);
    }
}
