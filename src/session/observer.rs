//! The port every later stage implements: what an [`super::Analyzer`]
//! reports, stamped with capture times.

use crate::decode::{Direction, Event};
use crate::tcp::{GapCause, TcpEvent};

use super::{DirectionStats, Session, SessionId};

/// Where an analysis reports. Every method has an empty default.
pub trait Observer {
    /// The first packet's capture time (times are shown relative to it).
    fn start(&mut self, _ts_ns: u64) {}
    /// Capture time of every packet (the analysis clock), before its effects.
    fn clock(&mut self, _ts_ns: u64) {}
    /// A migration was recognised.
    fn session(&mut self, _s: &Session) {}
    /// A back channel on its own connection was paired with session `s`.
    fn back_channel(&mut self, _s: &Session) {}
    /// What is known of session `s` changed: a QEMU multifd channel was
    /// joined to the migration recognised after it (`s.multifd_of`), or a
    /// `--port` connection's first bytes decided its family.
    fn updated(&mut self, _s: &Session) {}
    /// Reassembled bytes of a session direction at stream offset `offset`.
    fn bytes(&mut self, _s: SessionId, _dir: Direction, _offset: u64, _data: &[u8]) {}
    /// Bytes of a session direction that the capture does not have.
    fn gap(
        &mut self,
        _s: SessionId,
        _dir: Direction,
        _ts: u64,
        _offset: u64,
        _len: u64,
        _cause: GapCause,
    ) {
    }
    /// Decoder events of a session direction, completed at capture time `ts`.
    fn decoded(&mut self, _s: SessionId, _dir: Direction, _ts: u64, _events: &[Event]) {}
    /// As [`Observer::decoded`], with `first`: the capture time of the packet
    /// that carried the first byte of each item in `events` (`first == ts`
    /// for items that began in the packet that completed them). A transfer
    /// spans `first..ts`. The default forwards to `decoded`.
    fn decoded_span(
        &mut self,
        s: SessionId,
        dir: Direction,
        first: u64,
        ts: u64,
        events: &[Event],
    ) {
        let _ = first;
        self.decoded(s, dir, ts, events);
    }
    /// TCP health of a session direction (`dir` is the direction of the
    /// packet that showed it).
    fn tcp(&mut self, _s: SessionId, _dir: Direction, _ev: &TcpEvent) {}
    /// A session direction ended (connection closed or capture ended).
    fn ended(&mut self, _s: SessionId, _dir: Direction, _stats: &DirectionStats) {}
}

/// Two observers fed with the same reports (e.g. the model and an export).
impl<A: Observer, B: Observer> Observer for (A, B) {
    fn start(&mut self, ts: u64) {
        self.0.start(ts);
        self.1.start(ts);
    }
    fn clock(&mut self, ts: u64) {
        self.0.clock(ts);
        self.1.clock(ts);
    }
    fn session(&mut self, s: &Session) {
        self.0.session(s);
        self.1.session(s);
    }
    fn back_channel(&mut self, s: &Session) {
        self.0.back_channel(s);
        self.1.back_channel(s);
    }
    fn updated(&mut self, s: &Session) {
        self.0.updated(s);
        self.1.updated(s);
    }
    fn bytes(&mut self, s: SessionId, d: Direction, offset: u64, data: &[u8]) {
        self.0.bytes(s, d, offset, data);
        self.1.bytes(s, d, offset, data);
    }
    fn gap(&mut self, s: SessionId, d: Direction, ts: u64, offset: u64, len: u64, cause: GapCause) {
        self.0.gap(s, d, ts, offset, len, cause);
        self.1.gap(s, d, ts, offset, len, cause);
    }
    fn decoded(&mut self, s: SessionId, d: Direction, ts: u64, events: &[Event]) {
        self.0.decoded(s, d, ts, events);
        self.1.decoded(s, d, ts, events);
    }
    fn decoded_span(&mut self, s: SessionId, d: Direction, first: u64, ts: u64, events: &[Event]) {
        self.0.decoded_span(s, d, first, ts, events);
        self.1.decoded_span(s, d, first, ts, events);
    }
    fn tcp(&mut self, s: SessionId, d: Direction, ev: &TcpEvent) {
        self.0.tcp(s, d, ev);
        self.1.tcp(s, d, ev);
    }
    fn ended(&mut self, s: SessionId, d: Direction, stats: &DirectionStats) {
        self.0.ended(s, d, stats);
        self.1.ended(s, d, stats);
    }
}
