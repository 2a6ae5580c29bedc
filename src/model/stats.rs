//! Per-session statistics: a histogram per phase (and downtime, pages and
//! bytes per checkpoint), updated as each phase closes, so that a snapshot
//! costs the same however long the session has run.

use hdrhistogram::Histogram;
use serde::Serialize;

use super::checkpoint::{Checkpoint, CheckpointEvent, Phase, Scheme};

/// Longest duration a histogram records exactly (one hour); longer ones are
/// clamped to it.
const MAX_NS: u64 = 3_600_000_000_000;

fn histogram(max: u64, digits: u8) -> Histogram<u64> {
    Histogram::new_with_bounds(1, max, digits.clamp(1, 5)).expect("valid bounds")
}

/// Count and percentiles of one quantity.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PhaseStats {
    pub count: u64,
    /// Seconds (or pages, or bytes).
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

/// A histogram of one quantity. Percentiles are the histogram's, to three
/// significant digits (the highest value of the bucket holding the rank);
/// the count and the largest value are exact. The histogram (about 256 KiB
/// at three digits up to an hour) is allocated with the first value, so a
/// session that never has one (a plain migration's phases) costs nothing.
#[derive(Debug, Clone)]
pub struct Dist {
    h: Option<Box<Histogram<u64>>>,
    max: u64,
    /// Significant digits of the histogram (3 for reports; a monitor,
    /// which only needs medians for its stall limits, takes 2: a tenth of
    /// the memory).
    digits: u8,
    /// The largest value recorded, exactly.
    largest: u64,
    scale: f64,
}

impl Dist {
    fn new(max: u64, scale: f64) -> Self {
        Dist {
            h: None,
            max,
            digits: 3,
            largest: 0,
            scale,
        }
    }

    fn add(&mut self, v: u64) {
        // 0 is recorded as 0 (a PVH device phase: CHECKPOINT and
        // CHECKPOINT_END in one segment), not as the lowest bucket's 1.
        let (max, digits) = (self.max, self.digits);
        self.h
            .get_or_insert_with(|| Box::new(histogram(max, digits)))
            .saturating_record(v.min(max));
        self.largest = self.largest.max(v);
    }

    pub fn count(&self) -> u64 {
        self.h.as_ref().map_or(0, |h| h.len())
    }

    /// The value at quantile `q` (0..=1), in the distribution's unit.
    pub fn quantile(&self, q: f64) -> f64 {
        // never above the exact largest value (the top bucket's upper edge is)
        let v = self.h.as_ref().map_or(0, |h| h.value_at_quantile(q));
        v.min(self.largest) as f64 * self.scale
    }

    pub fn summary(&self) -> Option<PhaseStats> {
        if self.count() == 0 {
            return None;
        }
        Some(PhaseStats {
            count: self.count(),
            p50: self.quantile(0.5),
            p90: self.quantile(0.9),
            p99: self.quantile(0.99),
            max: self.largest as f64 * self.scale,
        })
    }
}

/// The statistics of one session.
#[derive(Debug, Clone)]
pub struct SessionStats {
    /// One per phase of the session's scheme, by [`Phase::slot`].
    pub phases: [Dist; 7],
    pub downtime: Dist,
    pub pages: Dist,
    pub bytes: Dist,
    /// Complete checkpoints counted and the span they cover.
    pub checkpoints: u64,
    pub first_end: Option<u64>,
    pub last_end: Option<u64>,
}

impl Default for SessionStats {
    fn default() -> Self {
        let d = || Dist::new(MAX_NS, 1e-9);
        SessionStats {
            phases: [d(), d(), d(), d(), d(), d(), d()],
            downtime: d(),
            pages: Dist::new(1 << 40, 1.0),
            bytes: Dist::new(1 << 50, 1.0),
            checkpoints: 0,
            first_end: None,
            last_end: None,
        }
    }
}

impl SessionStats {
    /// Statistics whose histograms keep `digits` significant digits.
    pub fn with_digits(digits: u8) -> Self {
        let mut s = SessionStats::default();
        for d in s
            .phases
            .iter_mut()
            .chain([&mut s.downtime, &mut s.pages, &mut s.bytes])
        {
            d.digits = digits;
        }
        s
    }

    /// Event `e` of `c` was just seen: record the phases it closes.
    ///
    /// Checkpoint 0's memory phase and downtime depend on the kind: a COLO
    /// checkpoint 0 has neither, a Remus one has its final round. When its
    /// CHECKPOINT arrives the stream has not shown which it is (COLO's first
    /// back-channel record follows CHECKPOINT_END), so they wait for
    /// [`SessionStats::remus_initial`].
    pub fn event(&mut self, c: &Checkpoint, e: CheckpointEvent, scheme: Scheme) {
        let undecided = scheme == Scheme::Remus && c.index == 0;
        for &p in Phase::family(scheme) {
            if !p.is_trailing() && p.end() == e && !(undecided && p == Phase::Memory) {
                if let Some(d) = c.phase(p, scheme) {
                    self.phases[p.slot()].add(d);
                }
            }
        }
        if e == Checkpoint::downtime_end(scheme) && !undecided {
            if let Some(d) = c.downtime(scheme) {
                self.downtime.add(d);
            }
        }
    }

    /// Remus checkpoint 1 began: checkpoint 0 (`c`) was Remus's, and its
    /// memory phase and downtime count now.
    pub fn remus_initial(&mut self, c: &Checkpoint) {
        if let Some(d) = c.phase(Phase::Memory, Scheme::Remus) {
            self.phases[Phase::Memory.slot()].add(d);
        }
        if let Some(d) = c.downtime(Scheme::Remus) {
            self.downtime.add(d);
        }
    }

    /// The next checkpoint's first event (Xen COLO's NEW, QEMU COLO's
    /// REQUEST) closed the run or interval phase of `c`.
    pub fn run_closed(&mut self, c: &Checkpoint, scheme: Scheme) {
        let Some(&p) = Phase::of(scheme).last().filter(|p| p.is_trailing()) else {
            return;
        };
        if let Some(d) = c.phase(p, scheme) {
            self.phases[p.slot()].add(d);
        }
    }

    /// `c`'s forward part ended (Xen: CHECKPOINT_END; QEMU COLO: the last
    /// byte of its device state): its pages and bytes are final.
    pub fn closed(&mut self, c: &Checkpoint, scheme: Scheme) {
        if c.damaged {
            return;
        }
        self.pages.add(c.pages);
        self.bytes.add(c.bytes);
        self.checkpoints += 1;
        let end = match scheme {
            Scheme::QemuColo => CheckpointEvent::DeviceState,
            _ => CheckpointEvent::CheckpointEnd,
        };
        if let Some(t) = c.event(end) {
            self.first_end.get_or_insert(t);
            self.last_end = Some(t);
        }
    }

    /// Checkpoints per second between the first and last forward end
    /// ([`SessionStats::closed`]).
    pub fn rate(&self) -> Option<f64> {
        let span = self.last_end?.checked_sub(self.first_end?)?;
        (span > 0 && self.checkpoints > 1)
            .then(|| (self.checkpoints - 1) as f64 / (span as f64 / 1e9))
    }

    /// Statistics of phase `p`, one of the session's scheme's
    /// ([`Phase::family`]): the histograms are kept by slot.
    pub fn phase(&self, p: Phase) -> Option<PhaseStats> {
        self.phases[p.slot()].summary()
    }

    /// Median duration of a phase in ns (one of the session's scheme's).
    pub fn median_ns(&self, p: Phase) -> Option<u64> {
        let d = &self.phases[p.slot()];
        (d.count() > 0).then(|| d.h.as_ref().map_or(0, |h| h.value_at_quantile(0.5)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_phase() {
        let mut s = SessionStats::default();
        for i in 1..=100u64 {
            let mut c = Checkpoint::new(i);
            c.events[4] = Some(1_000_000_000);
            c.events[5] = Some(1_000_000_000 + i * 1_000_000); // apply i ms
            s.event(&c, CheckpointEvent::SvmReady, Scheme::XenColo);
        }
        let a = s.phase(Phase::Apply).unwrap();
        assert_eq!(a.count, 100);
        assert!((a.p50 - 0.050).abs() < 0.0002, "{}", a.p50);
        assert!((a.p99 - 0.099).abs() < 0.0002, "{}", a.p99);
        assert!((a.max - 0.100).abs() < 0.0002);
        assert!(s.phase(Phase::Memory).is_none());
        assert_eq!(s.median_ns(Phase::Apply).map(|m| m / 1_000_000), Some(50));
    }

    /// Regression: the real Remus capture's checkpoint 0 has 8,832 pages
    /// and the report said "max 8839" (the histogram bucket's top).
    #[test]
    fn max_is_exact_not_the_bucket_top() {
        let mut d = Dist::new(1 << 40, 1.0);
        for v in [304, 288, 8832] {
            d.add(v);
        }
        let s = d.summary().unwrap();
        assert_eq!(s.max, 8832.0);
        assert_eq!(d.quantile(1.0), 8832.0, "no quantile above the max");
        assert_eq!(s.p50, 304.0);
    }

    #[test]
    fn zero_length_phase_reads_zero_not_1_ns() {
        // Real PVH Remus: no device model, so CHECKPOINT and CHECKPOINT_END
        // complete in the same segment; the report said "p50 1 ns".
        let mut s = SessionStats::default();
        let mut c = Checkpoint::new(1);
        c.events[3] = Some(5_000);
        c.events[4] = Some(5_000);
        s.event(&c, CheckpointEvent::CheckpointEnd, Scheme::Remus);
        let d = s.phase(Phase::Device).unwrap();
        assert_eq!((d.count, d.p50, d.max), (1, 0.0, 0.0));
    }

    #[test]
    fn qemu_colo_phases_count_by_slot() {
        let q = Scheme::QemuColo;
        let mut s = SessionStats::default();
        let mut prev: Option<Checkpoint> = None;
        for i in 1..=3u64 {
            let mut c = Checkpoint::new(i);
            let t0 = i * 1_000_000_000;
            // request, reply +10 ms, vmstate_send +15, vmstate_size +400,
            // device state +450, vmstate_received +452, vmstate_loaded +500
            for (e, ms) in CheckpointEvent::QEMU_COLO
                .iter()
                .zip([0, 10, 15, 400, 450, 452, 500])
            {
                c.events[e.slot()] = Some(t0 + ms * 1_000_000);
                s.event(&c, *e, q);
            }
            if let Some(mut p) = prev.take() {
                p.next_start = c.event(CheckpointEvent::Request);
                s.run_closed(&p, q);
            }
            prev = Some(c);
        }
        let ms = |p: Phase| s.median_ns(p).map(|n| n / 1_000_000);
        assert_eq!(ms(Phase::Reply), Some(10));
        assert_eq!(ms(Phase::Ram), Some(385));
        assert_eq!(ms(Phase::Loaded), Some(48));
        assert_eq!(
            ms(Phase::Interval),
            Some(500),
            "loaded +500 ms to the next request"
        );
        assert_eq!(s.phase(Phase::Interval).unwrap().count, 2);
        let d = s.downtime.summary().unwrap();
        assert_eq!(d.count, 3);
        assert!((d.p50 - 0.490).abs() < 0.001, "reply -> loaded: {}", d.p50);
    }
}
