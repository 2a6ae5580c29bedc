//! Reassembly of one direction of a TCP connection into a byte stream.
//!
//! A [`Reassembler`] turns segments, in capture order, into an ordered sequence
//! of `data` and `gap` calls on an [`Output`], addressed by **stream offset**
//! (0 is the first byte after the SYN, or the first byte seen when the capture
//! started mid-connection). Offsets are `u64`, so sequence-number wrap is
//! invisible above this module.
//!
//! - **In-order fast path.** A segment that starts at the next expected offset
//!   and overlaps nothing held is handed to the output as the borrowed payload
//!   slice: nothing is buffered. The in-order path has no cap (PITFALLS: a
//!   migration stream is gigabytes).
//! - **Out-of-order segments** are copied and held until the hole before them
//!   fills. What is held is capped per direction ([`Limits::flow_cap`]) and
//!   across all directions ([`Budget`]); when a cap is exceeded the first hole
//!   is declared missing (a gap) so that the held data can go out, and the
//!   overflow is counted and reported.
//! - **Retransmissions and overlaps** keep the first copy seen. Bytes sent
//!   again are compared with the first copy, held or recently delivered (a
//!   ring of [`Limits::history`] bytes), and differing bytes are counted.
//!   Classification is by sequence ranges, never by arrival heuristics: a
//!   segment that fills a hole is out-of-order, not a retransmission.
//! - **Gaps.** A hole becomes a gap when the peer acknowledges bytes beyond it
//!   (they were lost by the capture, not the network: [`Reassembler::ack`]),
//!   after [`Limits::gap_timeout_ns`] of capture time, when a cap overflows, or
//!   at the end of the capture. Payload bytes cut by the snap length are gaps at
//!   once.
//! - A one-byte segment just behind the next offset is a keep-alive (or a
//!   zero-window probe) and is ignored; a probe that carries new data is data.
//!
//! Nothing here can panic on any input: offsets are computed with wrap-aware
//! sequence arithmetic and segments claiming to be more than 1 GiB (the largest
//! scaled TCP window) ahead are dropped as out of window.

use std::collections::BTreeMap;

use serde::Serialize;

use super::seq::Seq;

/// Farthest a segment may start beyond the next expected byte (the largest
/// window TCP can advertise, 2^30 bytes).
pub const MAX_AHEAD: u64 = 1 << 30;

/// A hole longer than this, with no acknowledgement to prove the bytes were
/// sent, is not closed by the gap timeout or the end of the capture: what
/// lies beyond it is more likely a stray segment (a corrupt sequence number,
/// another connection's reused ports) than 64 MiB the capture lost. Held
/// data growing behind it still closes it through the caps.
pub const PLAUSIBLE_HOLE: u64 = 64 << 20;

/// Memory each held entry is charged on top of its data (map node overhead).
const ENTRY_OVERHEAD: usize = 48;

/// Tunables of reassembly; the command line exposes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Out-of-order bytes held per direction (default 8 MiB).
    pub flow_cap: usize,
    /// Capture time a hole may stay open before it is declared missing (default 1 s).
    pub gap_timeout_ns: u64,
    /// Recently delivered bytes kept per direction to compare retransmissions
    /// with (default 256 KiB; 0 disables the comparison).
    pub history: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            flow_cap: 8 << 20,
            gap_timeout_ns: 1_000_000_000,
            history: 256 << 10,
        }
    }
}

/// Memory shared by every reassembler of an analysis: out-of-order bytes
/// held, and the retransmission-comparison rings.
#[derive(Debug, Clone, Default)]
pub struct Budget {
    /// The global cap on held bytes (default 64 MiB).
    pub cap: usize,
    pub used: usize,
    pub peak: usize,
    /// The global cap on history rings (as much as `cap`): a direction
    /// that finds it spent keeps no history, and its retransmissions count
    /// as unverified. Thousands of connections cannot each take a ring.
    pub history_cap: usize,
    pub history_used: usize,
}

impl Budget {
    pub fn new(cap: usize) -> Self {
        Budget {
            cap,
            used: 0,
            peak: 0,
            history_cap: cap,
            history_used: 0,
        }
    }
}

/// Why bytes are missing from a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GapCause {
    /// The snap length cut the packet.
    SnapLength,
    /// The peer acknowledged bytes the capture never showed.
    AckedUnseen,
    /// The hole stayed open longer than the gap timeout.
    Timeout,
    /// The out-of-order buffer was full.
    Overflow,
    /// The capture ended with the hole still open.
    EndOfCapture,
}

impl GapCause {
    pub fn name(self) -> &'static str {
        match self {
            GapCause::SnapLength => "cut by the snap length",
            GapCause::AckedUnseen => "acknowledged but not captured",
            GapCause::Timeout => "never retransmitted",
            GapCause::Overflow => "out-of-order buffer full",
            GapCause::EndOfCapture => "capture ended",
        }
    }
}

/// Where a reassembler delivers its stream and reports what it saw.
pub trait Output {
    /// In-order bytes starting at stream offset `offset`. `captured_ns` is
    /// the capture time of the segment that carried them when that time, not
    /// the current segment's, is when they reached the receiver: held data
    /// released because the hole before it was declared missing (the
    /// receiver had the missing bytes; the capture lost them). It is `None`
    /// for bytes that arrived in order or were released by the segment
    /// being processed.
    fn data(&mut self, offset: u64, bytes: &[u8], captured_ns: Option<u64>);
    /// `len` bytes at `offset` will never arrive.
    fn gap(&mut self, offset: u64, len: u64, cause: GapCause);
    /// A segment carried `len` bytes at `offset` that had been seen already;
    /// `differing` of them did not match the first copy.
    fn retransmission(&mut self, _offset: u64, _len: u64, _differing: u64) {}
    /// A segment filled a hole behind data that had arrived before it.
    fn out_of_order(&mut self, _offset: u64, _len: u64) {}
    /// A cap on held bytes was exceeded; `held` bytes were held.
    fn overflow(&mut self, _held: usize) {}
}

/// What one direction's reassembly counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Bytes delivered as data.
    pub bytes: u64,
    pub gaps: u64,
    pub gap_bytes: u64,
    pub retransmitted_segments: u64,
    pub retransmitted_bytes: u64,
    /// Retransmitted bytes that differ from the first copy.
    pub differing_bytes: u64,
    /// Retransmitted bytes too old to compare (beyond the history).
    pub unverified_bytes: u64,
    pub out_of_order_segments: u64,
    pub overflows: u64,
    pub keepalives: u64,
    /// Bytes of segments from before the first byte seen (mid-stream start).
    pub before_start_bytes: u64,
    /// Segments dropped as beyond any possible window.
    pub out_of_window: u64,
    /// Largest amount of out-of-order bytes held at once.
    pub peak_held: usize,
}

#[derive(Debug)]
enum Held {
    /// Bytes, and the capture time of the segment that carried them.
    Data(Vec<u8>, u64),
    Missing(u64),
}

impl Held {
    fn len(&self) -> u64 {
        match self {
            Held::Data(d, _) => d.len() as u64,
            Held::Missing(n) => *n,
        }
    }
    fn cost(&self) -> usize {
        ENTRY_OVERHEAD
            + match self {
                Held::Data(d, _) => d.len(),
                Held::Missing(_) => 0,
            }
    }
}

/// Recently delivered bytes, for comparing retransmissions with.
#[derive(Debug, Default)]
struct History {
    buf: Vec<u8>,
    cap: usize,
    /// Stream offset one past the last byte pushed.
    end: u64,
    /// Offset from which the ring holds real bytes (after the last gap).
    valid_from: u64,
}

impl History {
    fn new(cap: usize) -> Self {
        History {
            buf: Vec::new(),
            cap,
            end: 0,
            valid_from: 0,
        }
    }

    fn push(&mut self, offset: u64, bytes: &[u8], budget: &mut Budget) {
        if offset != self.end {
            self.valid_from = offset;
        }
        self.end = offset + bytes.len() as u64;
        if self.cap == 0 {
            return;
        }
        if self.buf.is_empty() {
            // The ring is taken whole, when the shared budget allows.
            if budget.history_used + self.cap > budget.history_cap {
                self.valid_from = self.end;
                return;
            }
            budget.history_used += self.cap;
            self.buf = vec![0; self.cap];
            self.valid_from = offset;
        }
        let tail = if bytes.len() > self.cap {
            &bytes[bytes.len() - self.cap..]
        } else {
            bytes
        };
        let start = ((self.end - tail.len() as u64) % self.cap as u64) as usize;
        let first = tail.len().min(self.cap - start);
        self.buf[start..start + first].copy_from_slice(&tail[..first]);
        self.buf[..tail.len() - first].copy_from_slice(&tail[first..]);
    }

    fn skip(&mut self, offset: u64, len: u64) {
        self.end = offset + len;
        self.valid_from = self.end;
    }

    /// Compares `bytes` (at `offset`) with what was delivered; returns
    /// (bytes compared, bytes differing).
    fn compare(&self, offset: u64, bytes: &[u8]) -> (u64, u64) {
        if self.buf.is_empty() {
            return (0, 0);
        }
        let lo = self
            .valid_from
            .max(self.end.saturating_sub(self.cap as u64))
            .max(offset);
        let hi = self.end.min(offset + bytes.len() as u64);
        if lo >= hi {
            return (0, 0);
        }
        let mut differing = 0;
        for o in lo..hi {
            let ring = self.buf[(o % self.cap as u64) as usize];
            if ring != bytes[(o - offset) as usize] {
                differing += 1;
            }
        }
        (hi - lo, differing)
    }
}

/// One direction of a TCP connection; see the module documentation.
#[derive(Debug)]
pub struct Reassembler {
    started: bool,
    mid_stream: bool,
    /// Next stream offset to deliver, and its sequence number.
    next: u64,
    next_seq: Seq,
    /// Highest stream offset seen (end of the farthest segment).
    max_end: u64,
    /// Stream offset of the FIN, once seen.
    fin: Option<u64>,
    held: BTreeMap<u64, Held>,
    held_cost: usize,
    hole_since: Option<u64>,
    history: History,
    pub counters: Counters,
}

impl Reassembler {
    pub fn new(limits: &Limits) -> Self {
        Reassembler {
            started: false,
            mid_stream: false,
            next: 0,
            next_seq: Seq(0),
            max_end: 0,
            fin: None,
            held: BTreeMap::new(),
            held_cost: 0,
            hole_since: None,
            history: History::new(limits.history),
            counters: Counters::default(),
        }
    }

    /// Whether the stream's origin is known (a SYN or a first data byte).
    pub fn started(&self) -> bool {
        self.started
    }

    /// The capture did not show this direction's SYN: offset 0 is the first
    /// byte seen, somewhere in the middle of the stream.
    pub fn mid_stream(&self) -> bool {
        self.mid_stream
    }

    /// Next stream offset to be delivered.
    pub fn next_offset(&self) -> u64 {
        self.next
    }

    /// Sequence number of the next byte to be delivered.
    pub fn next_seq(&self) -> Seq {
        self.next_seq
    }

    /// Stream offset of the FIN, if seen.
    pub fn fin_offset(&self) -> Option<u64> {
        self.fin
    }

    /// Out-of-order bytes held (with per-entry overhead).
    pub fn held(&self) -> usize {
        self.held_cost
    }

    /// Whether a hole is open (data held behind missing bytes).
    pub fn has_hole(&self) -> bool {
        !self.held.is_empty()
    }

    /// The SYN fixes the origin: stream offset 0 is `isn + 1`.
    pub fn syn(&mut self, isn: Seq) {
        if !self.started {
            self.started = true;
            self.next_seq = isn.plus(1);
        }
    }

    /// Stream offset of `seq` (negative: before the origin).
    fn offset_of(&self, seq: Seq) -> i64 {
        self.next as i64 + seq.diff(self.next_seq)
    }

    fn bump(&mut self, n: u64) {
        self.next += n;
        self.next_seq = self.next_seq.plus(n as u32);
    }

    /// A segment of this direction: `payload` is what was captured, `missing`
    /// the payload bytes the snap length cut off after it.
    #[allow(clippy::too_many_arguments)]
    pub fn segment(
        &mut self,
        ts_ns: u64,
        seq: Seq,
        payload: &[u8],
        missing: u32,
        fin: bool,
        limits: &Limits,
        budget: &mut Budget,
        out: &mut dyn Output,
    ) {
        let total = payload.len() as u64 + u64::from(missing);
        if !self.started {
            if total == 0 {
                return;
            }
            self.started = true;
            self.mid_stream = true;
            self.next_seq = seq;
        }
        let off = self.offset_of(seq);
        if off < 0 {
            // From before the origin: the capture started after these bytes.
            let end = off + total as i64;
            if end <= 0 {
                self.counters.before_start_bytes += total;
                return;
            }
            // The tail reaches past the origin: keep that part.
            let cut = (-off) as u64;
            self.counters.before_start_bytes += cut;
            let (p, m) = split_at(payload, missing, cut);
            return self.segment(ts_ns, self.next_seq, p, m, fin, limits, budget, out);
        }
        let mut off = off as u64;
        let after_fin = total > 0 && self.fin.is_some_and(|f| off >= f);
        if off > self.next + MAX_AHEAD || after_fin {
            // Beyond any window, or after the FIN: no receiver takes it.
            self.counters.out_of_window += 1;
            return;
        }
        let end = off + total;
        if fin && self.fin.is_none() {
            self.fin = Some(end);
            self.drop_from(end.max(self.next), budget);
        }
        if total == 0 {
            return;
        }
        if total == 1 && end == self.next {
            self.counters.keepalives += 1;
            return;
        }
        let (mut payload, mut missing) = (payload, missing);
        let before = self.next;
        if off < self.next {
            // Bytes delivered already: a retransmission; compare and drop them.
            let old = (self.next.min(end) - off) as usize;
            let cmp = old.min(payload.len());
            let (compared, differing) = self.history.compare(off, &payload[..cmp]);
            self.counters.retransmitted_segments += 1;
            self.counters.retransmitted_bytes += old as u64;
            self.counters.differing_bytes += differing;
            self.counters.unverified_bytes += cmp as u64 - compared;
            out.retransmission(off, old as u64, differing);
            if end <= self.next {
                return;
            }
            let (p, m) = split_at(payload, missing, old as u64);
            payload = p;
            missing = m;
            off = self.next;
        }
        if off < self.max_end && !self.held.is_empty() && !self.hole_implausible() {
            self.counters.out_of_order_segments += 1;
            out.out_of_order(off, end - off);
        }
        self.max_end = self.max_end.max(end);
        let first_held = self.held.keys().next().copied();
        if off == self.next && first_held.map_or(true, |k| end <= k) {
            // The fast path: hand the payload over without copying.
            self.deliver(payload, None, budget, out);
            if missing > 0 {
                self.declare(u64::from(missing), GapCause::SnapLength, out);
            }
        } else {
            self.insert(ts_ns, off, payload, missing, budget, out);
        }
        self.drain(false, budget, out);
        while !self.held.is_empty()
            && (self.held_cost > limits.flow_cap || budget.used > budget.cap)
        {
            self.counters.overflows += 1;
            out.overflow(self.held_cost);
            self.close_first_hole(GapCause::Overflow, budget, out);
        }
        // The gap timer runs while the stream makes no progress: a hole far
        // ahead of a stream that keeps flowing (a stray segment) is not a loss.
        self.hole_since = match (self.held.is_empty(), self.hole_since) {
            (true, _) => None,
            (false, Some(since)) if self.next == before => Some(since),
            (false, _) => Some(ts_ns),
        };
    }

    fn deliver(
        &mut self,
        bytes: &[u8],
        captured_ns: Option<u64>,
        budget: &mut Budget,
        out: &mut dyn Output,
    ) {
        if bytes.is_empty() {
            return;
        }
        out.data(self.next, bytes, captured_ns);
        self.history.push(self.next, bytes, budget);
        self.counters.bytes += bytes.len() as u64;
        self.bump(bytes.len() as u64);
    }

    fn declare(&mut self, len: u64, cause: GapCause, out: &mut dyn Output) {
        if len == 0 {
            return;
        }
        out.gap(self.next, len, cause);
        self.history.skip(self.next, len);
        self.counters.gaps += 1;
        self.counters.gap_bytes += len;
        self.bump(len);
    }

    /// Holds [off, off + payload + missing), keeping bytes held already.
    fn insert(
        &mut self,
        ts_ns: u64,
        off: u64,
        payload: &[u8],
        missing: u32,
        budget: &mut Budget,
        out: &mut dyn Output,
    ) {
        let end = off + payload.len() as u64 + u64::from(missing);
        let mut overlaps: Vec<(u64, u64)> = Vec::new();
        if let Some((&k, h)) = self.held.range(..off).next_back() {
            if k + h.len() > off {
                overlaps.push((k, h.len()));
            }
        }
        overlaps.extend(self.held.range(off..end).map(|(&k, h)| (k, h.len())));
        let mut cur = off;
        let (mut again, mut differing) = (0u64, 0u64);
        for (k, len) in overlaps {
            if k > cur {
                self.hold(ts_ns, off, payload, cur, k, budget);
            }
            let (lo, hi) = (k.max(cur), (k + len).min(end));
            if lo < hi {
                again += hi - lo;
                if let Some(Held::Data(d, _)) = self.held.get(&k) {
                    let plen_end = off + payload.len() as u64;
                    for o in lo..hi.min(plen_end) {
                        if d[(o - k) as usize] != payload[(o - off) as usize] {
                            differing += 1;
                        }
                    }
                }
            }
            cur = cur.max(k + len);
        }
        if cur < end {
            self.hold(ts_ns, off, payload, cur, end, budget);
        }
        if again > 0 {
            self.counters.retransmitted_segments += 1;
            self.counters.retransmitted_bytes += again;
            self.counters.differing_bytes += differing;
            out.retransmission(off, again, differing);
        }
        self.counters.peak_held = self.counters.peak_held.max(self.held_cost);
    }

    /// Holds the part [a, b) of a segment starting at `off`.
    fn hold(&mut self, ts_ns: u64, off: u64, payload: &[u8], a: u64, b: u64, budget: &mut Budget) {
        let data_end = off + payload.len() as u64;
        if a < data_end {
            let hi = b.min(data_end);
            let bytes = payload[(a - off) as usize..(hi - off) as usize].to_vec();
            let piece = Held::Data(bytes, ts_ns);
            self.charge(a, piece, budget);
        }
        if b > data_end {
            let lo = a.max(data_end);
            self.charge(lo, Held::Missing(b - lo), budget);
        }
    }

    fn charge(&mut self, at: u64, piece: Held, budget: &mut Budget) {
        let cost = piece.cost();
        self.held_cost += cost;
        budget.used += cost;
        budget.peak = budget.peak.max(budget.used);
        self.held.insert(at, piece);
    }

    /// Delivers held entries that are now in order; `after_gap`: because the
    /// hole before them was declared missing, so they carry their own
    /// capture times.
    fn drain(&mut self, after_gap: bool, budget: &mut Budget, out: &mut dyn Output) {
        while let Some(entry) = self.held.first_entry() {
            let k = *entry.key();
            if k > self.next {
                break;
            }
            let piece = entry.remove();
            let cost = piece.cost();
            self.held_cost -= cost;
            budget.used = budget.used.saturating_sub(cost);
            let len = piece.len();
            if k + len <= self.next {
                continue;
            }
            let skip = self.next - k;
            match piece {
                Held::Data(d, ts) => {
                    self.deliver(&d[skip as usize..], after_gap.then_some(ts), budget, out)
                }
                Held::Missing(n) => self.declare(n - skip, GapCause::SnapLength, out),
            }
        }
    }

    /// Declares the bytes before the first held entry missing and delivers
    /// what follows.
    fn close_first_hole(&mut self, cause: GapCause, budget: &mut Budget, out: &mut dyn Output) {
        if let Some(&k) = self.held.keys().next() {
            if k > self.next {
                self.declare(k - self.next, cause, out);
            }
        }
        self.drain(true, budget, out);
    }

    /// Declares everything before stream offset `target` that has not
    /// arrived missing, delivering held data on the way.
    fn advance_to(
        &mut self,
        target: u64,
        cause: GapCause,
        budget: &mut Budget,
        out: &mut dyn Output,
    ) {
        while self.next < target {
            match self.held.keys().next().copied() {
                Some(k) if k <= self.next => self.drain(true, budget, out),
                Some(k) => self.declare(k.min(target) - self.next, cause, out),
                None => self.declare(target - self.next, cause, out),
            }
        }
        self.drain(true, budget, out);
    }

    /// The peer acknowledged up to `ack`: bytes before it that never arrived
    /// were lost by the capture (PITFALLS: ACKed-unseen).
    pub fn ack(&mut self, ts_ns: u64, ack: Seq, budget: &mut Budget, out: &mut dyn Output) {
        if !self.started {
            return;
        }
        let rel = ack.diff(self.next_seq);
        if rel <= 0 || rel as u64 > MAX_AHEAD {
            return;
        }
        let mut target = self.next + rel as u64;
        if let Some(fin) = self.fin {
            // The FIN takes one sequence number but no stream byte.
            target = target.min(fin);
        }
        self.advance_to(target, GapCause::AckedUnseen, budget, out);
        self.restart_timer(ts_ns);
    }

    fn restart_timer(&mut self, ts_ns: u64) {
        self.hole_since = if self.held.is_empty() {
            None
        } else {
            Some(ts_ns)
        };
    }

    /// Capture time is now `now_ns`: a hole open for longer than the gap
    /// timeout is declared missing.
    pub fn poll(
        &mut self,
        now_ns: u64,
        limits: &Limits,
        budget: &mut Budget,
        out: &mut dyn Output,
    ) {
        while let Some(since) = self.hole_since {
            if now_ns.saturating_sub(since) < limits.gap_timeout_ns || self.hole_implausible() {
                break;
            }
            self.close_first_hole(GapCause::Timeout, budget, out);
            self.restart_timer(now_ns);
        }
    }

    /// End of capture: every open hole is missing; all held data goes out.
    pub fn finish(&mut self, budget: &mut Budget, out: &mut dyn Output) {
        while let Some(&k) = self.held.keys().next() {
            if self.hole_implausible() {
                self.drop_from(k, budget);
                break;
            }
            self.close_first_hole(GapCause::EndOfCapture, budget, out);
        }
        self.hole_since = None;
        self.release(budget);
    }

    /// Gives back to the shared budget what this direction holds (held
    /// bytes and its history ring); for a reassembler about to be dropped.
    pub fn release(&mut self, budget: &mut Budget) {
        budget.used = budget.used.saturating_sub(self.held_cost);
        self.held.clear();
        self.held_cost = 0;
        budget.history_used = budget.history_used.saturating_sub(self.history.buf.len());
        self.history.buf = Vec::new();
        self.history.valid_from = self.history.end;
    }

    /// The first hole is longer than [`PLAUSIBLE_HOLE`].
    fn hole_implausible(&self) -> bool {
        self.held
            .keys()
            .next()
            .is_some_and(|&k| k - self.next.min(k) > PLAUSIBLE_HOLE)
    }

    /// Drops held entries from stream offset `from` on, as out of window.
    fn drop_from(&mut self, from: u64, budget: &mut Budget) {
        for piece in self.held.split_off(&from).into_values() {
            let cost = piece.cost();
            self.held_cost -= cost;
            budget.used = budget.used.saturating_sub(cost);
            self.counters.out_of_window += 1;
        }
    }
}

/// Drops the first `n` sequence positions of a (payload, missing) pair.
fn split_at(payload: &[u8], missing: u32, n: u64) -> (&[u8], u32) {
    if n <= payload.len() as u64 {
        (&payload[n as usize..], missing)
    } else {
        let rest = n - payload.len() as u64;
        (
            &[],
            missing.saturating_sub(rest.min(u64::from(u32::MAX)) as u32),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// (offset, Some(bytes)) for data, (offset, None) + len and cause for gaps.
    type Delivered = (u64, Option<Vec<u8>>, u64, Option<GapCause>);

    /// Records what a reassembler delivers.
    #[derive(Default, Debug)]
    struct Log {
        items: Vec<Delivered>,
        /// Capture times given with data, in order.
        times: Vec<Option<u64>>,
        retrans: Vec<(u64, u64, u64)>,
        ooo: u64,
        overflows: u64,
    }

    impl Output for Log {
        fn data(&mut self, offset: u64, bytes: &[u8], captured_ns: Option<u64>) {
            self.items
                .push((offset, Some(bytes.to_vec()), bytes.len() as u64, None));
            self.times.push(captured_ns);
        }
        fn gap(&mut self, offset: u64, len: u64, cause: GapCause) {
            self.items.push((offset, None, len, Some(cause)));
        }
        fn retransmission(&mut self, offset: u64, len: u64, differing: u64) {
            self.retrans.push((offset, len, differing));
        }
        fn out_of_order(&mut self, _offset: u64, _len: u64) {
            self.ooo += 1;
        }
        fn overflow(&mut self, _held: usize) {
            self.overflows += 1;
        }
    }

    impl Log {
        /// The delivered stream with gaps as None, checking contiguity.
        fn stream(&self) -> Vec<Option<u8>> {
            let mut s = Vec::new();
            for (off, data, len, _) in &self.items {
                assert_eq!(*off, s.len() as u64, "output is not contiguous");
                match data {
                    Some(d) => s.extend(d.iter().map(|&b| Some(b))),
                    None => s.extend(std::iter::repeat_n(None, *len as usize)),
                }
            }
            s
        }
        fn gaps(&self) -> Vec<(u64, u64, GapCause)> {
            self.items
                .iter()
                .filter_map(|(o, _, l, c)| c.map(|c| (*o, *l, c)))
                .collect()
        }
    }

    fn feed(r: &mut Reassembler, isn: u32, off: u32, data: &[u8], log: &mut Log, b: &mut Budget) {
        let l = Limits::default();
        r.segment(0, Seq(isn).plus(1).plus(off), data, 0, false, &l, b, log);
    }

    #[test]
    fn held_data_keeps_its_capture_time_when_the_hole_before_it_is_a_gap() {
        let l = Limits::default();
        let mut b = Budget::new(1 << 20);
        let (mut r, mut log) = (Reassembler::new(&l), Log::default());
        r.syn(Seq(99));
        let seg = |r: &mut Reassembler, log: &mut Log, b: &mut Budget, ts, off: u32, d: &[u8]| {
            r.segment(ts, Seq(100).plus(off), d, 0, false, &l, b, log)
        };
        seg(&mut r, &mut log, &mut b, 10, 0, b"ab");
        seg(&mut r, &mut log, &mut b, 20, 4, b"ef"); // [2, 4) not captured
        seg(&mut r, &mut log, &mut b, 30, 6, b"gh");
        // The peer acknowledges everything at 40: "ef" and "gh" reached it
        // when they were captured, 20 and 30.
        r.ack(40, Seq(100).plus(8), &mut b, &mut log);
        assert_eq!(log.times, [None, Some(20), Some(30)]);
        assert_eq!(log.gaps(), [(2, 2, GapCause::AckedUnseen)]);
        // A hole filled by a later segment releases what follows it then.
        seg(&mut r, &mut log, &mut b, 50, 10, b"kl");
        seg(&mut r, &mut log, &mut b, 60, 8, b"ij");
        assert_eq!(log.times[3..], [None, None]);
    }

    #[test]
    fn a_stray_segment_far_ahead_neither_stops_the_stream_nor_becomes_a_gap() {
        let l = Limits::default();
        let mut b = Budget::new(1 << 20);
        let (mut r, mut log) = (Reassembler::new(&l), Log::default());
        r.syn(Seq(0));
        let sec = 1_000_000_000;
        r.segment(
            0,
            Seq(1).plus(100_000_000),
            b"stray",
            0,
            false,
            &l,
            &mut b,
            &mut log,
        );
        // The stream flows for 5 s, with no ACKs in the capture.
        for i in 0..50u32 {
            let ts = u64::from(i) * sec / 10;
            r.segment(
                ts,
                Seq(1).plus(i * 10),
                b"0123456789",
                0,
                false,
                &l,
                &mut b,
                &mut log,
            );
            r.poll(ts, &l, &mut b, &mut log);
        }
        assert_eq!(r.next_offset(), 500);
        assert!(log.gaps().is_empty());
        // It ends with a FIN: the stray, beyond it, was never part of it.
        r.segment(
            6 * sec,
            Seq(1).plus(500),
            b"",
            0,
            true,
            &l,
            &mut b,
            &mut log,
        );
        r.segment(
            6 * sec,
            Seq(1).plus(600),
            b"late",
            0,
            false,
            &l,
            &mut b,
            &mut log,
        );
        r.finish(&mut b, &mut log);
        assert!(log.gaps().is_empty(), "{:?}", log.gaps());
        assert_eq!(r.counters.out_of_window, 2);
        assert_eq!(r.held(), 0);
        assert_eq!(b.used, 0);

        // Without a FIN, a stray beyond a hole of over 64 MiB is dropped at
        // the end rather than called 100 MB of lost capture; a long quiet
        // spell does not time it out either.
        let (mut r, mut log) = (Reassembler::new(&l), Log::default());
        r.syn(Seq(0));
        r.segment(0, Seq(1), b"abc", 0, false, &l, &mut b, &mut log);
        r.segment(
            0,
            Seq(1).plus(100_000_000),
            b"stray",
            0,
            false,
            &l,
            &mut b,
            &mut log,
        );
        r.poll(60 * sec, &l, &mut b, &mut log);
        r.segment(61 * sec, Seq(4), b"def", 0, false, &l, &mut b, &mut log);
        r.finish(&mut b, &mut log);
        assert!(log.gaps().is_empty(), "{:?}", log.gaps());
        assert_eq!(r.next_offset(), 6);
        assert_eq!(r.counters.out_of_window, 1);
    }

    #[test]
    fn in_order_segments_are_passed_through_without_copies() {
        let l = Limits::default();
        let mut b = Budget::new(1 << 20);
        let mut r = Reassembler::new(&l);
        r.syn(Seq(u32::MAX - 2)); // the stream wraps after 2 bytes
        struct Ptr(Vec<*const u8>);
        impl Output for Ptr {
            fn data(&mut self, _o: u64, bytes: &[u8], _t: Option<u64>) {
                self.0.push(bytes.as_ptr());
            }
            fn gap(&mut self, _o: u64, _l: u64, _c: GapCause) {
                panic!("no gap expected");
            }
        }
        let a = b"hello".to_vec();
        let c = b"world".to_vec();
        let mut p = Ptr(Vec::new());
        r.segment(0, Seq(u32::MAX - 1), &a, 0, false, &l, &mut b, &mut p);
        r.segment(0, Seq(3), &c, 0, false, &l, &mut b, &mut p);
        assert_eq!(p.0, vec![a.as_ptr(), c.as_ptr()]);
        assert_eq!(r.next_offset(), 10);
        assert_eq!(r.counters.bytes, 10);
        assert_eq!(b.peak, 0, "nothing was held");
    }

    #[test]
    fn out_of_order_is_held_then_delivered_and_not_called_retransmission() {
        let mut b = Budget::new(1 << 20);
        let mut r = Reassembler::new(&Limits::default());
        r.syn(Seq(100));
        let mut log = Log::default();
        feed(&mut r, 100, 4, b"5678", &mut log, &mut b);
        assert!(log.items.is_empty());
        assert!(r.has_hole());
        feed(&mut r, 100, 0, b"1234", &mut log, &mut b);
        assert_eq!(
            log.stream(),
            b"12345678".iter().map(|&x| Some(x)).collect::<Vec<_>>()
        );
        assert!(log.retrans.is_empty());
        assert_eq!(log.ooo, 1);
        assert_eq!(r.counters.out_of_order_segments, 1);
        assert_eq!(b.used, 0, "the budget is given back");
        assert!(b.peak > 0);
    }

    #[test]
    fn retransmitted_bytes_that_differ_are_counted_and_the_first_copy_kept() {
        let mut b = Budget::new(1 << 20);
        let mut r = Reassembler::new(&Limits::default());
        r.syn(Seq(0));
        let mut log = Log::default();
        feed(&mut r, 0, 0, b"abcdef", &mut log, &mut b);
        feed(&mut r, 0, 2, b"cXe", &mut log, &mut b); // delivered already
        assert_eq!(log.retrans, vec![(2, 3, 1)]);
        // An overlap with held data: the held copy wins.
        feed(&mut r, 0, 10, b"klmn", &mut log, &mut b);
        feed(&mut r, 0, 8, b"ijKLm", &mut log, &mut b);
        feed(&mut r, 0, 6, b"gh", &mut log, &mut b);
        let s: Vec<u8> = log.stream().into_iter().map(|x| x.unwrap()).collect();
        assert_eq!(s, b"abcdefghijklmn");
        assert_eq!(log.retrans[1], (8, 3, 2));
        assert_eq!(r.counters.differing_bytes, 3);
        assert_eq!(r.counters.retransmitted_bytes, 6);
    }

    #[test]
    fn keepalive_and_zero_window_probe() {
        let mut b = Budget::new(1 << 20);
        let mut r = Reassembler::new(&Limits::default());
        r.syn(Seq(0));
        let mut log = Log::default();
        feed(&mut r, 0, 0, b"abc", &mut log, &mut b);
        feed(&mut r, 0, 2, b"\0", &mut log, &mut b); // Linux keep-alive: 1 byte behind
        assert_eq!(r.counters.keepalives, 1);
        assert!(log.retrans.is_empty());
        feed(&mut r, 0, 3, b"d", &mut log, &mut b); // a probe carrying new data is data
        feed(&mut r, 0, 3, b"defg", &mut log, &mut b);
        let s: Vec<u8> = log.stream().into_iter().map(|x| x.unwrap()).collect();
        assert_eq!(s, b"abcdefg");
    }

    #[test]
    fn acked_unseen_bytes_become_a_gap_at_once() {
        let mut b = Budget::new(1 << 20);
        let l = Limits::default();
        let mut r = Reassembler::new(&l);
        r.syn(Seq(1000));
        let mut log = Log::default();
        feed(&mut r, 1000, 0, b"ab", &mut log, &mut b);
        feed(&mut r, 1000, 6, b"gh", &mut log, &mut b);
        r.ack(5, Seq(1001 + 8), &mut b, &mut log);
        assert_eq!(log.gaps(), vec![(2, 4, GapCause::AckedUnseen)]);
        // An ACK beyond anything seen: the tail was lost by the capture too.
        r.ack(6, Seq(1001 + 12), &mut b, &mut log);
        assert_eq!(log.gaps()[1], (8, 4, GapCause::AckedUnseen));
        assert_eq!(r.next_offset(), 12);
        assert_eq!(r.counters.gap_bytes, 8);
    }

    #[test]
    fn a_hole_times_out_and_a_full_buffer_overflows() {
        let l = Limits {
            flow_cap: 200,
            gap_timeout_ns: 1000,
            history: 0,
        };
        let mut b = Budget::new(1 << 20);
        let mut r = Reassembler::new(&l);
        r.syn(Seq(0));
        let mut log = Log::default();
        r.segment(10, Seq(11), b"later", 0, false, &l, &mut b, &mut log);
        r.poll(500, &l, &mut b, &mut log);
        assert!(log.items.is_empty());
        r.poll(1010, &l, &mut b, &mut log);
        assert_eq!(log.gaps(), vec![(0, 10, GapCause::Timeout)]);
        // Overflow: 3 held segments exceed 200 bytes with their overhead.
        for k in 0..3u32 {
            r.segment(
                2000,
                Seq(100 + 100 * k),
                &[7; 60],
                0,
                false,
                &l,
                &mut b,
                &mut log,
            );
        }
        assert!(log.overflows >= 1);
        assert!(log.gaps().iter().any(|g| g.2 == GapCause::Overflow));
        assert!(r.held() <= 200);
        r.finish(&mut b, &mut log);
        assert_eq!(b.used, 0);
        log.stream();
    }

    #[test]
    fn snap_length_cuts_are_gaps_and_mid_stream_starts_at_the_first_byte() {
        let l = Limits::default();
        let mut b = Budget::new(1 << 20);
        let mut r = Reassembler::new(&l);
        let mut log = Log::default();
        r.segment(0, Seq(5000), b"abc", 7, false, &l, &mut b, &mut log);
        assert!(r.mid_stream());
        r.segment(0, Seq(4990), b"0123456789", 0, false, &l, &mut b, &mut log);
        assert_eq!(r.counters.before_start_bytes, 10);
        r.segment(0, Seq(5010), b"xy", 0, false, &l, &mut b, &mut log);
        assert_eq!(log.gaps(), vec![(3, 7, GapCause::SnapLength)]);
        assert_eq!(log.stream().len(), 12);
        // Out of order with a cut: the cut part is a gap when it is reached.
        r.segment(0, Seq(5020), b"q", 3, false, &l, &mut b, &mut log);
        r.segment(0, Seq(5012), b"abcdefgh", 0, false, &l, &mut b, &mut log);
        assert_eq!(log.gaps()[1], (21, 3, GapCause::SnapLength));
        assert_eq!(r.next_offset(), 24);
    }

    #[test]
    fn absurd_sequence_numbers_are_dropped() {
        let l = Limits::default();
        let mut b = Budget::new(1 << 20);
        let mut r = Reassembler::new(&l);
        r.syn(Seq(0));
        let mut log = Log::default();
        r.segment(0, Seq(0x7000_0000), b"far", 0, false, &l, &mut b, &mut log);
        assert_eq!(r.counters.out_of_window, 1);
        assert!(!r.has_hole());
    }

    proptest! {
        /// Against an obvious model: any permutation, duplication, overlap and
        /// loss of segments yields the stream's bytes wherever some segment
        /// carried them, and gaps exactly elsewhere.
        #[test]
        fn matches_a_slow_model(
            len in 1usize..3000,
            cuts in proptest::collection::vec((0usize..3000, 1usize..400), 1..60),
            keep in proptest::collection::vec(any::<bool>(), 60),
            order in proptest::collection::vec(any::<u32>(), 60),
            isn in any::<u32>(),
            data_seed in any::<u8>(),
        ) {
            let stream: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(data_seed)).collect();
            // Segments: a full tiling (kept or lost) plus random overlapping copies.
            let mut segs: Vec<(usize, usize)> = Vec::new();
            let mut o = 0;
            let mut i = 0;
            while o < len {
                let l = cuts[i % cuts.len()].1.min(len - o);
                if keep[i % keep.len()] || i % 3 == 0 {
                    segs.push((o, l));
                }
                o += l;
                i += 1;
            }
            for &(s, l) in &cuts {
                if s < len && keep[s % keep.len()] {
                    segs.push((s, l.min(len - s)));
                }
            }
            let mut idx: Vec<usize> = (0..segs.len()).collect();
            idx.sort_by_key(|&k| order[k % order.len()].wrapping_add(k as u32 * 7));
            let l = Limits::default();
            let mut b = Budget::new(1 << 30);
            let mut r = Reassembler::new(&l);
            r.syn(Seq(isn));
            let mut log = Log::default();
            let mut covered = vec![false; len];
            let mut max_end = 0;
            for k in idx {
                let (s, n) = segs[k];
                r.segment(0, Seq(isn).plus(1).plus(s as u32), &stream[s..s + n], 0, false, &l, &mut b, &mut log);
                covered[s..s + n].iter_mut().for_each(|c| *c = true);
                max_end = max_end.max(s + n);
            }
            r.finish(&mut b, &mut log);
            let got = log.stream();
            prop_assert_eq!(got.len(), max_end);
            for (i, g) in got.iter().enumerate() {
                if covered[i] {
                    prop_assert_eq!(*g, Some(stream[i]), "byte {} differs", i);
                } else {
                    prop_assert_eq!(*g, None, "byte {} should be a gap", i);
                }
            }
            prop_assert_eq!(r.counters.differing_bytes, 0);
            prop_assert_eq!(b.used, 0);
        }
    }
}
