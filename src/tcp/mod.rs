//! TCP: connections, per-direction reassembly, and TCP health events.
//!
//! The second pipeline stage (`capture -> tcp -> decode -> model`). A
//! [`Tracker`] takes the [`TcpSegment`]s that [`crate::capture::link`] slices out
//! of packets, keeps one [`Connection`] per 4-tuple, reassembles each direction
//! with a [`Reassembler`], and reports to a [`Sink`]: new connections, stream
//! bytes and gaps by stream offset, and [`TcpEvent`]s (retransmissions,
//! out-of-order arrivals, zero-window episodes, duplicate ACKs, FIN and RST,
//! idle periods, RTT samples), each stamped with its capture time.
//!
//! A connection the sink is not interested in is [`Tracker::ignore`]d: its
//! reassemblers are dropped and each of its later packets costs one hash
//! lookup and a few counters. Ignored connections, and connections that never
//! carried a payload byte, are forgotten once closed or idle for
//! [`Limits::forget_after_ns`], so the table stays bounded on long captures of
//! busy hosts.
//!
//! Sides: [`Side::Client`] is the end that sent the SYN, or, when the capture
//! missed the handshake, the sender of the first packet seen.

pub mod reassembly;
pub mod seq;

use std::collections::HashMap;
use std::net::IpAddr;

use serde::Serialize;

use crate::capture::TcpSegment;
pub use reassembly::{Budget, Counters, GapCause, Reassembler};
pub use seq::Seq;

/// Numbers connections from 0 in the order of their first packet.
pub type ConnId = u32;

/// One end of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Endpoint {
    pub ip: IpAddr,
    pub port: u16,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.ip {
            IpAddr::V4(ip) => write!(f, "{ip}:{}", self.port),
            IpAddr::V6(ip) => write!(f, "[{ip}]:{}", self.port),
        }
    }
}

/// Which end sent a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Client,
    Server,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }
    fn index(self) -> usize {
        self as usize
    }
}

/// Tunables of the tracker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub reassembly: reassembly::Limits,
    /// Out-of-order bytes held across all connections (default 64 MiB).
    pub global_cap: usize,
    /// A direction silent for this long reports an idle period (default 1 s).
    pub idle_ns: u64,
    /// A direction silent for this long, but less than `idle_ns`, reports a
    /// pause (default 20 ms): evidence for a slow phase, not an idle period.
    pub pause_ns: u64,
    /// Ignored connections silent for this long are forgotten (default 60 s).
    pub forget_after_ns: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            reassembly: reassembly::Limits::default(),
            global_cap: 64 << 20,
            idle_ns: 1_000_000_000,
            pause_ns: 20_000_000,
            forget_after_ns: 60_000_000_000,
        }
    }
}

/// How an RTT sample was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RttKind {
    /// SYN to the ACK of the SYN/ACK, as seen at the capture point.
    Handshake,
    /// A data segment to the ACK that covers it (never a retransmitted one).
    Data,
}

/// A TCP health observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TcpEventKind {
    /// Bytes seen before were sent again; `differing` did not match.
    Retransmission {
        offset: u64,
        len: u64,
        differing: u64,
    },
    /// A segment arrived after data that follows it.
    OutOfOrder {
        offset: u64,
        len: u64,
    },
    /// Stream bytes that will never be seen.
    Gap {
        offset: u64,
        len: u64,
        cause: GapCause,
    },
    /// The out-of-order buffer overflowed; a hole was declared missing.
    Overflow {
        held: u64,
    },
    /// This side advertised a zero receive window: the other side must stop sending.
    ZeroWindowStart,
    /// This side opened its window again after `duration_ns`.
    ZeroWindowEnd {
        duration_ns: u64,
    },
    /// A duplicate ACK, the `count`-th in a row.
    DupAck {
        count: u32,
    },
    Syn,
    Fin,
    Rst,
    /// This side was silent for `duration_ns` before this packet, with
    /// `outstanding` bytes of its data not yet acknowledged by the other
    /// side (as the capture saw it) when it fell silent.
    Idle {
        duration_ns: u64,
        outstanding: u64,
    },
    /// As `Idle`, for a silence shorter than the idle limit but at least
    /// the pause limit (stall evidence).
    Pause {
        duration_ns: u64,
        outstanding: u64,
    },
    Rtt {
        sample: RttKind,
        ns: u64,
    },
}

/// A TCP event of one side of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TcpEvent {
    pub ts_ns: u64,
    pub conn: ConnId,
    /// The side whose packet showed it; for windows the side advertising,
    /// for data RTT samples the side whose data was timed.
    pub side: Side,
    #[serde(flatten)]
    pub kind: TcpEventKind,
}

/// What the tracker reports.
pub trait Sink {
    /// A connection was seen for the first time.
    fn connection(&mut self, _conn: &Connection) {}
    /// In-order stream bytes of one side. `mid_stream`: the side's SYN was
    /// not captured, so offset 0 is not the start of its stream.
    fn data(
        &mut self,
        conn: ConnId,
        side: Side,
        ts_ns: u64,
        offset: u64,
        bytes: &[u8],
        mid_stream: bool,
    );
    /// Stream bytes of one side that will never be seen.
    fn gap(&mut self, conn: ConnId, side: Side, ts_ns: u64, offset: u64, len: u64, cause: GapCause);
    fn event(&mut self, _ev: &TcpEvent) {}
    /// The connection ended (reset, both FINs delivered, replaced, or end of
    /// capture); nothing more will be reported for it.
    fn closed(&mut self, _conn: &Connection) {}
}

/// Per-side state.
#[derive(Debug)]
pub struct Half {
    reasm: Option<Reassembler>,
    packets: u64,
    wire_bytes: u64,
    first_ts: Option<u64>,
    last_ts: u64,
    isn: Option<Seq>,
    wscale: Option<u8>,
    mss: Option<u16>,
    last_ack: Option<Seq>,
    last_window: u32,
    dup_acks: u32,
    zero_since: Option<u64>,
    probe: Option<(Seq, u64)>,
    syn_ts: Option<u64>,
    fin: bool,
    rst: bool,
    counters: Counters,
    /// The last segment of this side and its time, while the other side has
    /// sent nothing since.
    last_sig: Option<(Signature, u64)>,
    /// Segments captured twice: identical to the one before, back to back.
    duplicates: u64,
}

/// A segment carrying data (or SYN, FIN) identical to the one before within
/// this time, with nothing from the other side in between, is the same packet
/// captured twice (`-i any` over a bridge and its ports, a doubled mirror),
/// not a retransmission: Linux never retransmits that fast (its minimum RTO
/// is 200 ms; a fast retransmit follows duplicate ACKs). Pure ACKs are not
/// judged: duplicate ACKs come in bursts of identical packets at a sender.
const DUPLICATE_NS: u64 = 50_000;

/// What must be equal for two segments to be one packet captured twice:
/// seq, ack, length, flags, window, and payload samples (its first, middle
/// and last 8 bytes: a retransmission with other bytes is not a duplicate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Signature {
    seq: u32,
    ack: u32,
    len: u64,
    flags: u8,
    window: u16,
    samples: [u64; 3],
}

impl Signature {
    fn of(seg: &TcpSegment<'_>) -> Self {
        let p = seg.payload;
        let at = |i: usize| {
            let mut b = [0u8; 8];
            let src = p.get(i..).unwrap_or(&[]);
            let n = src.len().min(8);
            b[..n].copy_from_slice(&src[..n]);
            u64::from_le_bytes(b)
        };
        Signature {
            seq: seg.seq,
            ack: seg.ack,
            len: p.len() as u64 + u64::from(seg.missing),
            flags: seg.flags.0,
            window: seg.window,
            samples: [at(0), at(p.len() / 2), at(p.len().saturating_sub(8))],
        }
    }
}

impl Half {
    fn new(limits: &Limits) -> Self {
        Half {
            reasm: Some(Reassembler::new(&limits.reassembly)),
            packets: 0,
            wire_bytes: 0,
            first_ts: None,
            last_ts: 0,
            isn: None,
            wscale: None,
            mss: None,
            last_ack: None,
            last_window: u32::MAX,
            dup_acks: 0,
            zero_since: None,
            probe: None,
            syn_ts: None,
            fin: false,
            rst: false,
            counters: Counters::default(),
            last_sig: None,
            duplicates: 0,
        }
    }

    /// Reassembly counters (final once the reassembler is gone).
    pub fn counters(&self) -> &Counters {
        self.reasm.as_ref().map_or(&self.counters, |r| &r.counters)
    }
    pub fn packets(&self) -> u64 {
        self.packets
    }
    /// TCP payload bytes carried by this side's packets, retransmissions included.
    /// Segments captured twice (see [`DUPLICATE_NS`]), ignored.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    pub fn wire_bytes(&self) -> u64 {
        self.wire_bytes
    }
    /// Whether the stream's start was not captured.
    pub fn mid_stream(&self) -> bool {
        self.reasm.as_ref().is_some_and(|r| r.mid_stream())
    }
    pub fn mss(&self) -> Option<u16> {
        self.mss
    }
    pub fn fin(&self) -> bool {
        self.fin
    }
    pub fn rst(&self) -> bool {
        self.rst
    }
}

/// A TCP connection as far as the capture showed it.
#[derive(Debug)]
pub struct Connection {
    pub id: ConnId,
    pub client: Endpoint,
    pub server: Endpoint,
    /// Capture time and frame number of its first packet.
    pub first_ts: u64,
    pub first_frame: u64,
    pub last_ts: u64,
    /// The handshake was seen.
    pub syn_seen: bool,
    ignored: bool,
    halves: [Half; 2],
}

impl Connection {
    pub fn half(&self, side: Side) -> &Half {
        &self.halves[side.index()]
    }
    /// The endpoint that sends on `side`.
    pub fn sender(&self, side: Side) -> Endpoint {
        match side {
            Side::Client => self.client,
            Side::Server => self.server,
        }
    }
    pub fn ignored(&self) -> bool {
        self.ignored
    }
    fn closed(&self) -> bool {
        self.halves.iter().any(|h| h.rst) || self.halves.iter().all(|h| h.fin)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key(Endpoint, Endpoint);

impl Key {
    fn new(a: Endpoint, b: Endpoint) -> Key {
        if a <= b {
            Key(a, b)
        } else {
            Key(b, a)
        }
    }
}

/// Interval of capture time between sweeps for hole timeouts and forgetting.
const SWEEP_NS: u64 = 100_000_000;

/// Connection table and reassembly of every direction; see the module docs.
#[derive(Debug)]
pub struct Tracker {
    limits: Limits,
    conns: HashMap<Key, Connection>,
    next_id: ConnId,
    budget: Budget,
    last_sweep: u64,
    now: u64,
    /// Connections forgotten so far.
    pub forgotten: u64,
}

/// Adapts a reassembler's output to the sink, for one segment.
struct Out<'a> {
    conn: ConnId,
    side: Side,
    mid: bool,
    ts: u64,
    sink: &'a mut dyn Sink,
    retransmitted: bool,
}

impl reassembly::Output for Out<'_> {
    fn data(&mut self, offset: u64, bytes: &[u8], captured_ns: Option<u64>) {
        let ts = captured_ns.unwrap_or(self.ts);
        self.sink
            .data(self.conn, self.side, ts, offset, bytes, self.mid);
    }
    fn gap(&mut self, offset: u64, len: u64, cause: GapCause) {
        self.sink
            .gap(self.conn, self.side, self.ts, offset, len, cause);
        self.event(TcpEventKind::Gap { offset, len, cause });
    }
    fn retransmission(&mut self, offset: u64, len: u64, differing: u64) {
        self.retransmitted = true;
        self.event(TcpEventKind::Retransmission {
            offset,
            len,
            differing,
        });
    }
    fn out_of_order(&mut self, offset: u64, len: u64) {
        self.event(TcpEventKind::OutOfOrder { offset, len });
    }
    fn overflow(&mut self, held: usize) {
        self.event(TcpEventKind::Overflow { held: held as u64 });
    }
}

impl Out<'_> {
    fn event(&mut self, kind: TcpEventKind) {
        self.sink.event(&TcpEvent {
            ts_ns: self.ts,
            conn: self.conn,
            side: self.side,
            kind,
        });
    }
}

impl Tracker {
    pub fn new(limits: Limits) -> Self {
        Tracker {
            limits,
            conns: HashMap::new(),
            next_id: 0,
            budget: Budget::new(limits.global_cap),
            last_sweep: 0,
            now: 0,
            forgotten: 0,
        }
    }

    /// Out-of-order memory in use, its peak and its cap.
    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    /// Connections currently in the table.
    pub fn connections(&self) -> impl Iterator<Item = &Connection> {
        self.conns.values()
    }

    /// Stops reassembling a connection; later packets only count.
    pub fn ignore(&mut self, client: Endpoint, server: Endpoint) {
        if let Some(c) = self.conns.get_mut(&Key::new(client, server)) {
            c.ignored = true;
            for h in &mut c.halves {
                if let Some(r) = h.reasm.take() {
                    self.budget.used = self.budget.used.saturating_sub(r.held());
                    h.counters = r.counters;
                }
            }
        }
    }

    /// One captured segment at capture time `ts_ns`.
    pub fn segment(&mut self, ts_ns: u64, frame: u64, seg: &TcpSegment<'_>, sink: &mut dyn Sink) {
        self.now = self.now.max(ts_ns);
        let src = Endpoint {
            ip: seg.src,
            port: seg.src_port,
        };
        let dst = Endpoint {
            ip: seg.dst,
            port: seg.dst_port,
        };
        let key = Key::new(src, dst);
        let flags = seg.flags;
        // A new SYN on a finished connection, or with another ISN, starts a new one.
        let replace = flags.syn()
            && !flags.ack()
            && self.conns.get(&key).is_some_and(|c| {
                let h = &c.halves[Side::Client.index()];
                c.closed() || (c.client == src && h.isn.is_some_and(|isn| isn != Seq(seg.seq)))
            });
        if replace {
            if let Some(old) = self.conns.remove(&key) {
                self.close(old, sink);
            }
        }
        let limits = self.limits;
        let conn = self.conns.entry(key).or_insert_with(|| {
            // A SYN/ACK seen first comes from the server.
            let (client, server) = if flags.syn() && flags.ack() {
                (dst, src)
            } else {
                (src, dst)
            };
            let id = self.next_id;
            self.next_id = self.next_id.wrapping_add(1);
            Connection {
                id,
                client,
                server,
                first_ts: ts_ns,
                first_frame: frame,
                last_ts: ts_ns,
                syn_seen: flags.syn(),
                ignored: false,
                halves: [Half::new(&limits), Half::new(&limits)],
            }
        });
        let fresh = conn.halves.iter().all(|h| h.packets == 0);
        if fresh {
            sink.connection(conn);
        }
        let side = if src == conn.client {
            Side::Client
        } else {
            Side::Server
        };
        conn.last_ts = ts_ns;
        let id = conn.id;
        let (me, other) = split(&mut conn.halves, side);
        me.packets += 1;
        other.last_sig = None;
        if !seg.payload.is_empty() || seg.missing > 0 || flags.syn() || flags.fin() {
            let sig = Signature::of(seg);
            if let Some((last, at)) = me.last_sig {
                if last == sig && ts_ns.saturating_sub(at) <= DUPLICATE_NS {
                    me.duplicates += 1;
                    return;
                }
            }
            me.last_sig = Some((sig, ts_ns));
        } else {
            me.last_sig = None;
        }
        me.wire_bytes += seg.payload.len() as u64;
        let mut out = Out {
            conn: id,
            side,
            mid: me.isn.is_none() && !flags.syn(),
            ts: ts_ns,
            sink,
            retransmitted: false,
        };
        if conn.ignored {
            me.fin |= flags.fin();
            me.rst |= flags.rst();
            me.last_ts = ts_ns;
            if conn.closed() {
                if let Some(c) = self.conns.remove(&key) {
                    self.forgotten += 1;
                    out.sink.closed(&c);
                }
            }
            return;
        }
        // Idle period of this side, and its data the other side had not
        // acknowledged when it fell silent (this packet not counted yet).
        let silent = ts_ns.saturating_sub(me.last_ts);
        if me.first_ts.is_some() && silent >= limits.pause_ns {
            let outstanding = match (me.reasm.as_ref().filter(|r| r.started()), other.last_ack) {
                (Some(r), Some(ack)) => u64::try_from(r.next_seq().diff(ack)).unwrap_or(0),
                _ => 0,
            };
            out.event(if silent >= limits.idle_ns {
                TcpEventKind::Idle {
                    duration_ns: silent,
                    outstanding,
                }
            } else {
                TcpEventKind::Pause {
                    duration_ns: silent,
                    outstanding,
                }
            });
        }
        me.first_ts.get_or_insert(ts_ns);
        me.last_ts = ts_ns;
        if flags.syn() {
            if me.isn.is_none() {
                me.isn = Some(Seq(seg.seq));
                me.wscale = seg.window_scale;
                me.mss = seg.mss;
                me.syn_ts = Some(ts_ns);
                conn.syn_seen = true;
                out.event(TcpEventKind::Syn);
            }
            if let Some(r) = me.reasm.as_mut() {
                r.syn(Seq(seg.seq));
            }
        }
        if flags.rst() && !me.rst {
            me.rst = true;
            out.event(TcpEventKind::Rst);
        }
        if flags.fin() && !me.fin {
            me.fin = true;
            out.event(TcpEventKind::Fin);
        }
        if flags.ack() && !flags.rst() {
            let ack = Seq(seg.ack);
            // Handshake RTT: the client's first ACK after the SYN/ACK.
            if side == Side::Client && !flags.syn() && other.syn_ts.is_some() {
                if let Some(t0) = me.syn_ts.take() {
                    out.event(TcpEventKind::Rtt {
                        sample: RttKind::Handshake,
                        ns: ts_ns.saturating_sub(t0),
                    });
                }
            }
            // Window, scaled only when both SYNs offered scaling.
            let scale = match (me.wscale, other.wscale) {
                (Some(s), Some(_)) if !flags.syn() => u32::from(s.min(14)),
                _ => 0,
            };
            let window = u32::from(seg.window) << scale;
            if window == 0 && !flags.syn() {
                if me.zero_since.is_none() {
                    me.zero_since = Some(ts_ns);
                    out.event(TcpEventKind::ZeroWindowStart);
                }
            } else if let Some(t0) = me.zero_since.take() {
                out.event(TcpEventKind::ZeroWindowEnd {
                    duration_ns: ts_ns.saturating_sub(t0),
                });
            }
            // Duplicate ACK: nothing new, same ACK and window, data outstanding.
            let outstanding = other
                .reasm
                .as_ref()
                .is_some_and(|r| r.started() && ack.before(r.next_seq()));
            let pure = seg.payload.is_empty() && seg.missing == 0;
            if pure
                && !flags.syn()
                && !flags.fin()
                && me.last_ack == Some(ack)
                && me.last_window == window
                && outstanding
            {
                me.dup_acks += 1;
                out.event(TcpEventKind::DupAck { count: me.dup_acks });
            } else if me.last_ack != Some(ack) {
                me.dup_acks = 0;
            }
            me.last_ack = Some(ack);
            me.last_window = window;
            // RTT of the other side's timed segment.
            // (reported on the side whose data was timed)
            if let Some((end, t0)) = other.probe {
                if !ack.before(end) {
                    other.probe = None;
                    out.side = side.other();
                    out.event(TcpEventKind::Rtt {
                        sample: RttKind::Data,
                        ns: ts_ns.saturating_sub(t0),
                    });
                    out.side = side;
                }
            }
            // Bytes the other side sent that this ACK covers but the capture missed.
            if let Some(r) = other.reasm.as_mut() {
                out.side = side.other();
                out.mid = other.isn.is_none();
                r.ack(ts_ns, ack, &mut self.budget, &mut out);
                out.side = side;
                out.mid = me.isn.is_none();
            }
        }
        if let Some(r) = me.reasm.as_mut() {
            let len = seg.payload.len() as u32 + seg.missing;
            r.segment(
                ts_ns,
                Seq(seg.seq),
                seg.payload,
                seg.missing,
                flags.fin(),
                &limits.reassembly,
                &mut self.budget,
                &mut out,
            );
            if out.retransmitted {
                me.probe = None; // Karn: never time a retransmitted segment
            } else if len > 0 && me.probe.is_none() {
                me.probe = Some((Seq(seg.seq).plus(len), ts_ns));
            }
            r.poll(ts_ns, &limits.reassembly, &mut self.budget, &mut out);
        }
        if ts_ns.saturating_sub(self.last_sweep) >= SWEEP_NS {
            self.last_sweep = ts_ns;
            self.sweep(sink);
        }
    }

    /// Declares timed-out holes everywhere and forgets idle ignored connections.
    fn sweep(&mut self, sink: &mut dyn Sink) {
        let now = self.now;
        let limits = self.limits;
        let mut forget = Vec::new();
        for (key, c) in self.conns.iter_mut() {
            let idle = now.saturating_sub(c.last_ts) >= limits.forget_after_ns;
            // Ignored connections, and connections that never carried a
            // payload byte (a SYN scan, a dead handshake), are forgotten when
            // idle; connections with data are kept (a COLO back channel can
            // be silent for long stretches).
            let empty = c.halves.iter().all(|h| h.wire_bytes == 0);
            if c.ignored || (empty && idle) {
                if idle {
                    forget.push(*key);
                }
                continue;
            }
            for side in [Side::Client, Side::Server] {
                if let Some(r) = c.halves[side.index()].reasm.as_mut() {
                    if r.has_hole() {
                        let mid = c.halves[side.index()].isn.is_none();
                        let mut out = Out {
                            conn: c.id,
                            side,
                            mid,
                            ts: now,
                            sink,
                            retransmitted: false,
                        };
                        r.poll(now, &limits.reassembly, &mut self.budget, &mut out);
                    }
                }
            }
        }
        for key in forget {
            if let Some(mut c) = self.conns.remove(&key) {
                for h in &mut c.halves {
                    if let Some(r) = h.reasm.as_mut() {
                        r.release(&mut self.budget);
                    }
                }
                self.forgotten += 1;
                sink.closed(&c);
            }
        }
    }

    fn close(&mut self, mut c: Connection, sink: &mut dyn Sink) {
        for side in [Side::Client, Side::Server] {
            let h = &mut c.halves[side.index()];
            if let Some(mut r) = h.reasm.take() {
                let mut out = Out {
                    conn: c.id,
                    side,
                    mid: h.isn.is_none(),
                    ts: self.now,
                    sink,
                    retransmitted: false,
                };
                r.finish(&mut self.budget, &mut out);
                h.counters = r.counters;
            }
        }
        sink.closed(&c);
    }

    /// End of capture: every open hole becomes a gap and every connection is
    /// closed, in the order of their first packet.
    pub fn finish(&mut self, sink: &mut dyn Sink) {
        let mut all: Vec<Connection> = self.conns.drain().map(|(_, c)| c).collect();
        all.sort_by_key(|c| c.id);
        for c in all {
            self.close(c, sink);
        }
    }
}

fn split(halves: &mut [Half; 2], side: Side) -> (&mut Half, &mut Half) {
    let [a, b] = halves;
    match side {
        Side::Client => (a, b),
        Side::Server => (b, a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::TcpFlags;
    use std::net::{IpAddr, Ipv4Addr};

    #[derive(Default)]
    struct Count {
        opened: u32,
        closed: u32,
    }
    impl Sink for Count {
        fn connection(&mut self, _c: &Connection) {
            self.opened += 1;
        }
        fn data(&mut self, _: ConnId, _: Side, _: u64, _: u64, _: &[u8], _: bool) {}
        fn gap(&mut self, _: ConnId, _: Side, _: u64, _: u64, _: u64, _: GapCause) {}
        fn closed(&mut self, _c: &Connection) {
            self.closed += 1;
        }
    }

    #[test]
    fn a_packet_captured_twice_is_not_a_retransmission() {
        /// The client side's duplicates and retransmissions, at close.
        #[derive(Default)]
        struct Closed(Option<(u64, u64, u64)>);
        impl Sink for Closed {
            fn data(&mut self, _: ConnId, _: Side, _: u64, _: u64, _: &[u8], _: bool) {}
            fn gap(&mut self, _: ConnId, _: Side, _: u64, _: u64, _: u64, _: GapCause) {}
            fn closed(&mut self, c: &Connection) {
                let h = c.half(Side::Client);
                let r = h.counters();
                self.0 = Some((h.duplicates(), r.retransmitted_segments, r.differing_bytes));
            }
        }
        let mut t = Tracker::new(Limits::default());
        let mut sink = Closed::default();
        t.segment(0, 1, &syn(4000), &mut sink);
        let data = |payload: &'static [u8]| TcpSegment {
            seq: 2,
            flags: TcpFlags(TcpFlags::ACK | TcpFlags::PSH),
            payload,
            ..syn(4000)
        };
        let us = 1_000;
        t.segment(10 * us, 2, &data(b"abcdefgh"), &mut sink);
        t.segment(10 * us + 5, 3, &data(b"abcdefgh"), &mut sink); // the same packet again
                                                                  // Other bytes at once: a retransmission, not a copy.
        t.segment(10 * us + 10, 4, &data(b"abcdXfgh"), &mut sink);
        // The same bytes 200 ms later: a retransmission.
        t.segment(200_000 * us, 5, &data(b"abcdefgh"), &mut sink);
        t.finish(&mut sink);
        assert_eq!(sink.0, Some((1, 2, 1)));
    }

    fn syn(port: u16) -> TcpSegment<'static> {
        TcpSegment {
            src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            src_port: port,
            dst_port: 8002,
            seq: 1,
            ack: 0,
            flags: TcpFlags(TcpFlags::SYN),
            window: 1000,
            window_scale: None,
            mss: None,
            payload: &[],
            missing: 0,
        }
    }

    #[test]
    fn connections_without_payload_are_forgotten_when_idle() {
        let mut t = Tracker::new(Limits::default());
        let mut c = Count::default();
        for p in 0..1000u16 {
            t.segment(u64::from(p) * 1000, u64::from(p), &syn(10_000 + p), &mut c);
        }
        assert_eq!(t.connections().count(), 1000);
        // A minute later, anything that arrives sweeps them away.
        t.segment(61_000_000_000, 1001, &syn(9), &mut c);
        assert_eq!(t.connections().count(), 1);
        assert_eq!((c.opened, c.closed), (1001, 1000));
        assert_eq!(t.forgotten, 1000);
    }
}
