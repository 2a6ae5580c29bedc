//! Capture times of a decoder's pushes: each record gets the time of the
//! packet that carried its first byte and of the one that completed it.

use std::collections::VecDeque;

/// The capture times of a decoder's recent pushes, by the decoder offset
/// they ended at. A record confirmed only later (a re-synchronisation
/// trusts a plausible record once an anchor follows it) is stamped with the
/// time of the push that completed it, not of the one that confirmed it
/// (PROTOCOL.md section 6: an event's time is its last byte's packet).
///
/// It also gives each record the time of the push that carried its first
/// byte: a record longer than the ring remembers (a 4 MiB PAGE_DATA in
/// 1448-byte segments) begins where the previous item ended, which `open`
/// keeps whatever the number of pushes since.
#[derive(Debug, Default)]
pub(super) struct Stamps {
    /// (decoder offset at the end of a push, capture time), oldest first.
    pub(super) ring: VecDeque<(u64, u64)>,
    /// The first byte that no emitted item covers yet, and the time of the
    /// push that delivered it.
    pub(super) open: Option<(u64, u64)>,
}

impl Stamps {
    /// Pushes remembered: a hunt confirms records within a few kilobytes,
    /// a handful of segments.
    pub(super) const CAP: usize = 256;

    /// A push delivered decoder offsets `start..end` at `ts`.
    pub(super) fn record(&mut self, start: u64, end: u64, ts: u64) {
        if self.open.is_none() && end > start {
            self.open = Some((start, ts));
        }
        if self.ring.back().is_some_and(|&(e, _)| e == end) {
            return;
        }
        if self.ring.len() == Self::CAP {
            self.ring.pop_front();
        }
        self.ring.push_back((end, ts));
    }

    /// The time of the push that delivered offset `end - 1`, if remembered.
    pub(super) fn at(&self, end: u64) -> Option<u64> {
        let i = self.ring.partition_point(|&(e, _)| e < end);
        if i == 0 && self.ring.front().is_some_and(|&(e, _)| e >= end) {
            // Older than the ring for all we know, unless it is the first push.
            return (self.ring.len() < Self::CAP).then(|| self.ring[0].1);
        }
        self.ring.get(i).map(|&(_, t)| t)
    }

    /// The time of the push that delivered byte `offset` (an item's first).
    pub(super) fn first(&self, offset: u64) -> Option<u64> {
        match self.open {
            Some((o, t)) if o == offset => Some(t),
            _ => self.at(offset + 1),
        }
    }

    /// Items were emitted through offset `covered`; the decoder has been
    /// pushed up to `pushed`.
    pub(super) fn covered(&mut self, covered: u64, pushed: u64) {
        if self.open.is_some_and(|(o, _)| o >= covered) {
            return;
        }
        self.open = if covered >= pushed {
            None
        } else {
            self.at(covered + 1).map(|t| (covered, t))
        };
    }
}

#[cfg(test)]
mod tests {
    use super::Stamps;

    #[test]
    pub(super) fn a_record_longer_than_the_ring_keeps_its_first_byte_time() {
        let mut s = Stamps::default();
        // push 1 (t=10) carries a 16-byte record and the start of a big one
        s.record(0, 100, 10);
        s.covered(16, 100);
        assert_eq!(s.first(0), Some(10));
        assert_eq!(s.first(16), Some(10));
        // thousands of 1448-byte pushes, more than the ring remembers
        let mut end = 100;
        for t in 11..3011 {
            s.record(end, end + 1448, t);
            end += 1448;
        }
        assert_eq!(s.first(16), Some(10), "the big record began in push 1");
        assert_eq!(s.at(end), Some(3010), "and completes in the last push");
        // it ends inside the last push: the next record begins there
        s.covered(end - 100, end);
        assert_eq!(s.first(end - 100), Some(3010));
        // a record that ends exactly at a push's end: the next begins with the next push
        s.covered(end, end);
        s.record(end, end + 8, 4000);
        assert_eq!(s.first(end), Some(4000));
    }
}
