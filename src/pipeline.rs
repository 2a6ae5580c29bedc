//! Finding migrations in a capture and decoding them: the glue between the
//! `tcp` and `decode` stages.
//!
//! An [`Analyzer`] takes packets, slices them ([`crate::capture::link`]),
//! tracks and reassembles TCP ([`crate::tcp::Tracker`]) and looks at the first
//! bytes of every connection (PROTOCOL.md section 1):
//!
//! - a direction that starts with the xl save-file magic, "LibxlFmt" or the
//!   libxc marker is the **forward** stream of a migration; one that starts
//!   with the xl receiver's banner is the **reverse** direction of one;
//! - a connection one of whose directions starts with a back-channel record
//!   is a COLO **back channel** on a second connection: it is paired with the
//!   latest session between the same two hosts (secondary to primary);
//! - a connection whose handshake was not captured is fed to a mid-stream
//!   decoder, which re-synchronises on a record boundary; the direction whose
//!   first records are back-channel records is the reverse one. A connection
//!   that shows no record boundary within [`Config::hunt_budget`] bytes is not
//!   a migration;
//! - anything else (and SSH, counted for the summary) is ignored at once: the
//!   tracker drops its reassembly and each later packet costs a hash lookup.
//!
//! `--port` ([`Config::ports`]) forces connections to or from a port to be
//! decoded, like Wireshark's "Decode As".
//!
//! Every migration is a [`Session`], numbered from 0 when it is recognised.
//! Since connections are recognised by their first payload, this is the
//! order of their first packets, unless a connection caught mid-stream is
//! recognised after one that started later. Each session direction gets its
//! own [`Decoder`]; decoder events, stream bytes, gaps and TCP events go to an
//! [`Observer`], stamped with the capture time of the packet that completed
//! them (PROTOCOL.md section 6).
//!
//! Memory: out-of-order data is capped by the tracker; the bytes kept while a
//! connection is being recognised are capped per direction
//! ([`Config::hunt_budget`]) and in total ([`PREFIX_TOTAL`]).

use std::collections::{HashMap, VecDeque};

use serde::Serialize;

use crate::capture::{self, LinkType, Packet, TcpSegment};
use crate::decode::detect::{self, Opening};
use crate::decode::info::Info;
use crate::decode::libxl::ControlId;
use crate::decode::{Decoder, Direction, Event, ItemKind, LibxcType, LibxlType, RecordType};
use crate::tcp::{self, ConnId, Connection, Endpoint, GapCause, Side, TcpEvent, Tracker};

/// Numbers sessions from 0.
pub type SessionId = u32;

/// Bytes of all recognition prefixes together.
pub const PREFIX_TOTAL: usize = 64 << 20;

/// Part of a recognised prefix: stream offset, bytes, and the gap after them.
type Piece<'a> = (u64, &'a [u8], Option<(u64, GapCause)>);

/// How far a connection whose start was captured but opens with unknown
/// bytes is hunted for records: a damaged header is followed within a few
/// KiB by records that re-synchronise (libxc headers, static records,
/// PAGE_DATA); other protocols are let go soon.
const DAMAGED_START_HUNT: usize = 64 << 10;

/// Capture gaps remembered inside one direction's prefix while it is being
/// recognised; after more, the rest of the prefix is given up.
const MAX_PREFIX_GAPS: usize = 64;

/// TCP events kept per connection while it is being recognised.
const PENDING_EVENTS: usize = 256;

/// Analysis settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub tcp: tcp::Limits,
    /// Decode connections to or from these ports whatever their first bytes.
    pub ports: Vec<u16>,
    /// Bytes a direction caught mid-stream may take to show a record boundary
    /// (default 8 MiB: more than the largest PAGE_DATA).
    pub hunt_budget: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            tcp: tcp::Limits::default(),
            ports: Vec::new(),
            hunt_budget: 8 << 20,
        }
    }
}

/// The COLO back channel's own connection, when it has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BackChannelConn {
    pub conn: ConnId,
    /// The secondary's end, which sends the back-channel records.
    pub from: Endpoint,
    pub to: Endpoint,
}

/// A migration found in the capture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Session {
    pub id: SessionId,
    pub conn: ConnId,
    /// Sender of the migration stream (the primary, for COLO and Remus).
    pub primary: Endpoint,
    /// Receiver (the secondary).
    pub secondary: Endpoint,
    /// How it was recognised: "xl", "libxl", "libxc", "mid-stream", "port".
    pub recognised_by: &'static str,
    /// The capture does not show the start of the forward stream.
    pub mid_stream: bool,
    /// The capture shows the connection's SYN, so stream offsets count from
    /// the true start even when bytes after it were lost: checkpoint
    /// numbers can start at 0 (without it they are relative, from 1).
    pub syn_seen: bool,
    pub first_ts: u64,
    pub first_frame: u64,
    pub back_channel: Option<BackChannelConn>,
}

/// What one direction of a session's TCP counted, reported when it ends.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DirectionStats {
    pub packets: u64,
    /// TCP payload bytes on the wire, retransmissions included.
    pub wire_bytes: u64,
    /// Segments captured twice (identical and back to back), ignored.
    pub duplicates: u64,
    #[serde(flatten)]
    pub reassembly: tcp::Counters,
}

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

/// Counts of everything that is not a migration, for the summary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CaptureStats {
    pub packets: u64,
    pub bytes: u64,
    pub tcp_packets: u64,
    pub other_packets: u64,
    pub ip_fragments: u64,
    pub malformed_packets: u64,
    /// Packets on interfaces whose link type is not supported, by link type.
    pub unsupported: Vec<(u32, u64)>,
    /// Payload bytes cut by the snap length, over all TCP packets.
    pub snapped_bytes: u64,
    pub connections: u64,
    pub ignored_connections: u64,
    /// Connections that looked like SSH (xl's default, encrypted transport).
    pub ssh_connections: u64,
    pub first_ts: Option<u64>,
    pub last_ts: u64,
    /// Peak bytes held out of order, over all connections.
    pub peak_out_of_order: usize,
    /// First malformed packet's frame and reason.
    pub first_malformed: Option<(u64, String)>,
    /// Packets stamped earlier than a packet before them (a merged capture,
    /// a clock step). The analysis takes them as arriving at the latest
    /// time seen, so that no duration is negative.
    pub backwards: u64,
    /// The first of them: frame number and how far back it was stamped (ns).
    pub first_backwards: Option<(u64, u64)>,
}

impl CaptureStats {
    /// The sentence saying that time went backwards, if it did.
    pub fn clock_problem(&self) -> Option<String> {
        let (frame, by) = self.first_backwards?;
        Some(format!(
            "{} packet{} stamped earlier than the packet before (first: frame {frame}, {:.6} s earlier), as in a merged capture or after a clock step; they are taken as arriving at the latest time seen, so durations across them are unreliable",
            self.backwards,
            if self.backwards == 1 { " is" } else { "s are" },
            by as f64 / 1e9
        ))
    }
}

/// Per-direction state of a connection not recognised yet.
#[derive(Default)]
struct Probe {
    /// Whether offset 0 is the true start (the SYN was seen).
    start_known: Option<bool>,
    prefix: Vec<u8>,
    prefix_from: u64,
    /// Capture gaps inside the prefix: (prefix length when it came, length,
    /// cause). The bytes after a gap are kept too, so that the gap is told
    /// as the gap it was once the connection is recognised.
    prefix_gaps: Vec<(usize, u64, GapCause)>,
    /// Bytes after the prefix that were not kept.
    dropped: u64,
    hunter: Option<Decoder>,
    hunter_events: Vec<Event>,
    hunted: usize,
    /// A smaller hunt budget: the connection's start was seen but its first
    /// bytes open no migration (a damaged header, or another protocol).
    hunt_limit: Option<usize>,
    /// The hunter has found a record boundary.
    resynced: bool,
}

impl Probe {
    /// The opening cannot be classified: from now on a mid-stream decoder
    /// hunts for a record boundary, starting with the first `upto` bytes of
    /// the prefix (the caller pushes the rest).
    fn start_hunting(&mut self, upto: usize) {
        self.start_known = Some(false);
        let mut h = Decoder::mid_stream(Direction::Forward, self.prefix_from);
        h.push(&self.prefix[..upto], &mut self.hunter_events);
        self.hunted += upto;
        self.hunter = Some(h);
    }
}

// Decoders are large, but only connections being recognised or decoded are in
// the table (ignored ones leave it), so boxing would only add an indirection.
#[allow(clippy::large_enum_variant)]
enum ConnState {
    Probing {
        probes: Box<[Probe; 2]>,
        pending: Vec<TcpEvent>,
        client: Endpoint,
        server: Endpoint,
        first_ts: u64,
        first_frame: u64,
        syn_seen: bool,
    },
    /// A session's migration connection; `forward` is the side sending the stream.
    Migration {
        session: SessionId,
        forward: Side,
        decoders: [Option<Decoder>; 2],
    },
    /// A back channel on its own connection; `data` is the side sending records.
    BackChannel {
        session: SessionId,
        data: Side,
        decoder: Decoder,
    },
}

/// Wires the stages together; see the module documentation.
pub struct Analyzer<O: Observer> {
    tracker: Tracker,
    inner: Inner<O>,
}

struct Inner<O> {
    cfg: Config,
    observer: O,
    conns: HashMap<ConnId, ConnState>,
    sessions: Vec<Session>,
    ignore: Vec<(Endpoint, Endpoint)>,
    prefix_bytes: usize,
    stats: CaptureStats,
    unsupported: HashMap<u32, u64>,
    events: Vec<Event>,
    /// When each recent push to a decoder ended, per connection side.
    stamps: HashMap<(ConnId, Side), Stamps>,
}

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
struct Stamps {
    /// (decoder offset at the end of a push, capture time), oldest first.
    ring: VecDeque<(u64, u64)>,
    /// The first byte that no emitted item covers yet, and the time of the
    /// push that delivered it.
    open: Option<(u64, u64)>,
}

impl Stamps {
    /// Pushes remembered: a hunt confirms records within a few kilobytes,
    /// a handful of segments.
    const CAP: usize = 256;

    /// A push delivered decoder offsets `start..end` at `ts`.
    fn record(&mut self, start: u64, end: u64, ts: u64) {
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
    fn at(&self, end: u64) -> Option<u64> {
        let i = self.ring.partition_point(|&(e, _)| e < end);
        if i == 0 && self.ring.front().is_some_and(|&(e, _)| e >= end) {
            // Older than the ring for all we know, unless it is the first push.
            return (self.ring.len() < Self::CAP).then(|| self.ring[0].1);
        }
        self.ring.get(i).map(|&(_, t)| t)
    }

    /// The time of the push that delivered byte `offset` (an item's first).
    fn first(&self, offset: u64) -> Option<u64> {
        match self.open {
            Some((o, t)) if o == offset => Some(t),
            _ => self.at(offset + 1),
        }
    }

    /// Items were emitted through offset `covered`; the decoder has been
    /// pushed up to `pushed`.
    fn covered(&mut self, covered: u64, pushed: u64) {
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

impl<O: Observer> Analyzer<O> {
    pub fn new(cfg: Config, observer: O) -> Self {
        Analyzer {
            tracker: Tracker::new(cfg.tcp),
            inner: Inner {
                cfg,
                observer,
                conns: HashMap::new(),
                sessions: Vec::new(),
                ignore: Vec::new(),
                prefix_bytes: 0,
                stats: CaptureStats::default(),
                unsupported: HashMap::new(),
                events: Vec::new(),
                stamps: HashMap::new(),
            },
        }
    }

    pub fn observer(&self) -> &O {
        &self.inner.observer
    }

    pub fn observer_mut(&mut self) -> &mut O {
        &mut self.inner.observer
    }

    /// Sessions recognised so far, in the order of their numbers.
    pub fn sessions(&self) -> &[Session] {
        &self.inner.sessions
    }

    pub fn stats(&self) -> CaptureStats {
        let mut s = self.inner.stats.clone();
        s.unsupported = self
            .inner
            .unsupported
            .iter()
            .map(|(&k, &v)| (k, v))
            .collect();
        s.unsupported.sort();
        s.peak_out_of_order = self.tracker.budget().peak;
        s
    }

    /// One captured packet.
    pub fn packet(&mut self, pkt: &Packet<'_>) {
        let st = &mut self.inner.stats;
        let clamped;
        let pkt = if st.first_ts.is_some() && pkt.ts_ns < st.last_ts {
            st.backwards += 1;
            st.first_backwards
                .get_or_insert((pkt.number, st.last_ts - pkt.ts_ns));
            clamped = Packet {
                ts_ns: st.last_ts,
                ..*pkt
            };
            &clamped
        } else {
            pkt
        };
        st.packets += 1;
        st.bytes += u64::from(pkt.orig_len);
        if st.first_ts.is_none() {
            st.first_ts = Some(pkt.ts_ns);
            self.inner.observer.start(pkt.ts_ns);
        }
        let st = &mut self.inner.stats;
        st.last_ts = st.last_ts.max(pkt.ts_ns);
        match capture::link::parse(pkt.link, pkt.data, pkt.orig_len) {
            capture::Parsed::Tcp(seg) => self.segment(pkt.ts_ns, pkt.number, &seg),
            capture::Parsed::Other => st.other_packets += 1,
            capture::Parsed::Fragment => st.ip_fragments += 1,
            capture::Parsed::Unsupported(LinkType(l)) => {
                *self.inner.unsupported.entry(l).or_default() += 1;
            }
            capture::Parsed::Malformed(why) => {
                st.malformed_packets += 1;
                if st.first_malformed.is_none() {
                    st.first_malformed = Some((pkt.number, why.to_string()));
                }
            }
        }
    }

    /// One TCP segment (for callers that slice packets themselves).
    pub fn segment(&mut self, ts_ns: u64, frame: u64, seg: &TcpSegment<'_>) {
        self.inner.stats.tcp_packets += 1;
        self.inner.stats.snapped_bytes += u64::from(seg.missing);
        self.tracker.segment(ts_ns, frame, seg, &mut self.inner);
        for (a, b) in self.inner.ignore.drain(..) {
            self.tracker.ignore(a, b);
            self.inner.stats.ignored_connections += 1;
        }
    }

    /// End of the capture: open holes become gaps, decoders finish, and every
    /// session direction reports its end.
    pub fn finish(&mut self) {
        self.tracker.finish(&mut self.inner);
    }

    /// Ends the analysis and hands the observer back.
    pub fn into_observer(self) -> O {
        self.inner.observer
    }
}

impl<O: Observer> Inner<O> {
    fn new_session(
        &mut self,
        conn: ConnId,
        primary: Endpoint,
        secondary: Endpoint,
        recognised_by: &'static str,
        (mid_stream, syn_seen): (bool, bool),
        first: (u64, u64),
    ) -> SessionId {
        let id = self.sessions.len() as SessionId;
        let s = Session {
            id,
            conn,
            primary,
            secondary,
            recognised_by,
            mid_stream,
            syn_seen,
            first_ts: first.0,
            first_frame: first.1,
            back_channel: None,
        };
        self.observer.session(&s);
        self.sessions.push(s);
        id
    }

    /// Turns a probing connection into a migration whose forward side is
    /// `forward`, replaying what was kept.
    fn become_migration(&mut self, conn: ConnId, forward: Side, by: &'static str, ts: u64) {
        let Some(ConnState::Probing {
            probes,
            pending,
            client,
            server,
            first_ts,
            first_frame,
            syn_seen,
        }) = self.conns.remove(&conn)
        else {
            return;
        };
        let (primary, secondary) = match forward {
            Side::Client => (client, server),
            Side::Server => (server, client),
        };
        let fwd_probe = &probes[forward as usize];
        let mid = fwd_probe.start_known.map_or(!syn_seen, |known| !known);
        let session = self.new_session(
            conn,
            primary,
            secondary,
            by,
            (mid, syn_seen),
            (first_ts, first_frame),
        );
        let mut decoders: [Option<Decoder>; 2] = [None, None];
        for (i, probe) in probes.into_iter().enumerate() {
            let side = if i == 0 { Side::Client } else { Side::Server };
            let dir = if side == forward {
                Direction::Forward
            } else {
                Direction::Reverse
            };
            self.prefix_bytes = self.prefix_bytes.saturating_sub(probe.prefix.len());
            if probe.start_known.is_none() {
                continue; // nothing seen yet: the decoder starts with the first byte
            }
            // The prefix in pieces between the gaps it had.
            let mut pieces: Vec<Piece<'_>> = Vec::new();
            let (mut at, mut from) = (probe.prefix_from, 0usize);
            for &(upto, len, cause) in &probe.prefix_gaps {
                pieces.push((at, &probe.prefix[from..upto], Some((len, cause))));
                at += (upto - from) as u64 + len;
                from = upto;
            }
            pieces.push((at, &probe.prefix[from..], None));
            for &(at, bytes, gap) in &pieces {
                if !bytes.is_empty() {
                    self.observer.bytes(session, dir, at, bytes);
                }
                if let Some((len, cause)) = gap {
                    let gap_at = at + bytes.len() as u64;
                    self.observer.gap(session, dir, ts, gap_at, len, cause);
                }
            }
            let mut events = Vec::new();
            let dec = match probe.hunter {
                Some(h) if dir == Direction::Forward => {
                    events = probe.hunter_events;
                    h
                }
                _ => {
                    let mut d = if probe.start_known == Some(true) {
                        Decoder::new(dir)
                    } else {
                        Decoder::mid_stream(dir, probe.prefix_from)
                    };
                    for &(_, bytes, gap) in &pieces {
                        d.push(bytes, &mut events);
                        if let Some((len, _)) = gap {
                            d.gap(len, &mut events);
                        }
                    }
                    if probe.dropped > 0 {
                        d.gap(probe.dropped, &mut events);
                    }
                    d
                }
            };
            if probe.dropped > 0 {
                let gaps: u64 = probe.prefix_gaps.iter().map(|g| g.1).sum();
                let at = probe.prefix_from + probe.prefix.len() as u64 + gaps;
                self.observer
                    .gap(session, dir, ts, at, probe.dropped, GapCause::Overflow);
            }
            // The replayed prefix arrived by `ts`: stamp it so that the
            // first record after it gets its first byte's time.
            self.stamps.entry((conn, side)).or_default().record(
                probe.prefix_from,
                dec.offset(),
                ts,
            );
            if !events.is_empty() {
                debug_assert!(self.events.is_empty());
                self.events = events;
                self.emit_stamped(session, dir, ts, (conn, side));
            }
            decoders[i] = Some(dec);
        }
        for ev in pending {
            let dir = if ev.side == forward {
                Direction::Forward
            } else {
                Direction::Reverse
            };
            self.observer.tcp(session, dir, &ev);
        }
        self.conns.insert(
            conn,
            ConnState::Migration {
                session,
                forward,
                decoders,
            },
        );
    }

    /// Turns a probing connection into a back channel sent by `data`.
    fn become_back_channel(&mut self, conn: ConnId, data: Side, ts: u64) {
        let Some(ConnState::Probing {
            probes,
            pending,
            client,
            server,
            first_ts,
            first_frame,
            ..
        }) = self.conns.remove(&conn)
        else {
            return;
        };
        let (from, to) = match data {
            Side::Client => (client, server),
            Side::Server => (server, client),
        };
        // The latest session from `to` (primary) to `from` (secondary) without one.
        let found = self
            .sessions
            .iter()
            .rev()
            .find(|s| {
                s.back_channel.is_none() && s.primary.ip == to.ip && s.secondary.ip == from.ip
            })
            .map(|s| s.id);
        let bc = BackChannelConn { conn, from, to };
        let session = match found {
            Some(id) => {
                let s = &mut self.sessions[id as usize];
                s.back_channel = Some(bc);
                self.observer.back_channel(s);
                id
            }
            None => {
                // No forward stream seen: a session of its own.
                let id = self.new_session(
                    conn,
                    to,
                    from,
                    "back channel",
                    (false, true),
                    (first_ts, first_frame),
                );
                self.sessions[id as usize].back_channel = Some(bc);
                self.observer.back_channel(&self.sessions[id as usize]);
                id
            }
        };
        let probe = &probes[data as usize];
        self.prefix_bytes = self
            .prefix_bytes
            .saturating_sub(probes.iter().map(|p| p.prefix.len()).sum());
        let mut decoder = Decoder::back_channel();
        let mut events = Vec::new();
        self.observer.bytes(
            session,
            Direction::Reverse,
            probe.prefix_from,
            &probe.prefix,
        );
        decoder.push(&probe.prefix, &mut events);
        if probe.dropped > 0 {
            decoder.gap(probe.dropped, &mut events);
        }
        self.observer
            .decoded(session, Direction::Reverse, ts, &events);
        for ev in pending.iter().filter(|e| e.side == data) {
            self.observer.tcp(session, Direction::Reverse, ev);
        }
        self.conns.insert(
            conn,
            ConnState::BackChannel {
                session,
                data,
                decoder,
            },
        );
    }

    fn ignore_conn(&mut self, conn: ConnId) {
        if let Some(ConnState::Probing {
            probes,
            client,
            server,
            ..
        }) = self.conns.remove(&conn)
        {
            let kept: usize = probes.iter().map(|p| p.prefix.len()).sum();
            self.prefix_bytes = self.prefix_bytes.saturating_sub(kept);
            self.ignore.push((client, server));
        }
    }

    /// Bytes of a connection still being recognised.
    fn probe_data(
        &mut self,
        conn: ConnId,
        side: Side,
        ts: u64,
        offset: u64,
        bytes: &[u8],
        mid: bool,
    ) {
        let hunt_budget = self.cfg.hunt_budget;
        let room = PREFIX_TOTAL.saturating_sub(self.prefix_bytes);
        let Some(ConnState::Probing { probes, .. }) = self.conns.get_mut(&conn) else {
            return;
        };
        let probe = &mut probes[side as usize];
        if probe.start_known.is_none() {
            // Without the handshake, a direction whose first captured bytes
            // open a stream starts there: only the SYN and SYN-ACK were lost.
            let opens = matches!(
                detect::classify(bytes),
                Some(Opening::XlHeader | Opening::Libxl | Opening::Libxc | Opening::XlBanner)
            );
            probe.start_known = Some(offset == 0 && (!mid || opens));
            probe.prefix_from = offset;
        }
        let keep = if probe.dropped == 0 {
            bytes
                .len()
                .min(hunt_budget.saturating_sub(probe.prefix.len()))
                .min(room)
        } else {
            0
        };
        probe.prefix.extend_from_slice(&bytes[..keep]);
        probe.dropped += (bytes.len() - keep) as u64;
        let added = keep;
        if probe.start_known == Some(true)
            && detect::classify(&probe.prefix) == Some(Opening::Other)
            && probe.dropped == 0
        {
            // The first bytes are no opening a migration starts with: a
            // damaged header, or not a migration. Hunt for a record boundary
            // as for a capture started mid-stream (within the hunt budget).
            probe.hunt_limit = Some(DAMAGED_START_HUNT);
            let before = probe.prefix.len() - keep;
            probe.start_hunting(before);
        }
        let verdict = if probe.start_known == Some(true) {
            detect::classify(&probe.prefix).map(Verdict::Opening)
        } else {
            let hunter = probe
                .hunter
                .get_or_insert_with(|| Decoder::mid_stream(Direction::Forward, offset));
            let before = probe.hunter_events.len();
            hunter.push(bytes, &mut probe.hunter_events);
            probe.hunted += bytes.len();
            let v = mid_stream_verdict(&probe.hunter_events[before..], &mut probe.resynced);
            if probe.hunter_events.len() > PENDING_EVENTS {
                // Hunting notes pile up on non-migration bytes; keep the latest.
                let cut = probe.hunter_events.len() - PENDING_EVENTS;
                probe.hunter_events.drain(..cut);
            }
            match v {
                Some(v) => Some(v),
                None if probe.hunted > probe.hunt_limit.unwrap_or(hunt_budget).min(hunt_budget) => {
                    Some(Verdict::Opening(Opening::Other))
                }
                None => None,
            }
        };
        self.prefix_bytes += added;
        match verdict {
            None => {}
            Some(Verdict::Opening(op)) => match op {
                Opening::XlHeader | Opening::Libxl | Opening::Libxc => {
                    self.become_migration(conn, side, op.name(), ts)
                }
                Opening::XlBanner => self.become_migration(conn, side.other(), "xl", ts),
                Opening::BackChannel => self.become_back_channel(conn, side, ts),
                Opening::Ssh => {
                    self.stats.ssh_connections += 1;
                    self.ignore_conn(conn);
                }
                Opening::Other => self.ignore_conn(conn),
            },
            Some(Verdict::MidStream { forward }) => {
                let fwd = if forward { side } else { side.other() };
                self.become_migration(conn, fwd, "mid-stream", ts);
            }
        }
    }

    /// As [`Self::emit_decoded`], each record stamped with the time of the
    /// push that completed it and of the push that carried its first byte
    /// (see [`Stamps`]), in runs of equal times.
    fn emit_stamped(&mut self, session: SessionId, dir: Direction, ts: u64, key: (ConnId, Side)) {
        let Some(stamps) = self.stamps.get_mut(&key) else {
            return self.emit_decoded(session, dir, ts);
        };
        let stamp = |e: &Event| match e {
            Event::Item(i) => {
                let done = stamps.at(i.offset + i.wire_len).map_or(ts, |t| t.min(ts));
                let first = stamps.first(i.offset).map_or(done, |t| t.min(done));
                (first, done)
            }
            // where the problem begins (a record the stream ends inside)
            Event::Diagnostic(d) => (stamps.first(d.offset).map_or(ts, |t| t.min(ts)), ts),
            _ => (ts, ts),
        };
        let events = std::mem::take(&mut self.events);
        let mut from = 0;
        while from < events.len() {
            let (first, done) = stamp(&events[from]);
            let mut to = from + 1;
            while to < events.len() && stamp(&events[to]) == (first, done) {
                to += 1;
            }
            self.observer
                .decoded_span(session, dir, first, done, &events[from..to]);
            from = to;
        }
        let covered = events.iter().rev().find_map(|e| match e {
            Event::Item(i) => Some(i.offset + i.wire_len),
            _ => None,
        });
        if let (Some(covered), Some(pushed)) = (covered, stamps.ring.back().map(|&(e, _)| e)) {
            stamps.covered(covered, pushed);
        }
        self.events = events;
        self.events.clear();
    }

    fn emit_decoded(&mut self, session: SessionId, dir: Direction, ts: u64) {
        if !self.events.is_empty() {
            let events = std::mem::take(&mut self.events);
            self.observer.decoded(session, dir, ts, &events);
            self.events = events;
            self.events.clear();
        }
    }
}

enum Verdict {
    Opening(Opening),
    MidStream { forward: bool },
}

/// Decides a mid-stream direction from a hunting forward decoder's new
/// events: the first record after a re-synchronisation tells; a back-channel
/// record means the reverse direction, anything else the forward one.
fn mid_stream_verdict(events: &[Event], resynced: &mut bool) -> Option<Verdict> {
    events.iter().find_map(|e| match e {
        Event::Resync { .. } => {
            *resynced = true;
            None
        }
        Event::Item(item) if *resynced => {
            let back = match item.kind {
                ItemKind::Record(RecordType::Libxl(LibxlType::CheckpointState)) => !matches!(
                    item.info,
                    Info::CheckpointState {
                        control_id: ControlId::New
                    }
                ),
                ItemKind::Record(RecordType::Libxc(LibxcType::CheckpointDirtyPfnList)) => true,
                _ => false,
            };
            Some(Verdict::MidStream { forward: !back })
        }
        _ => None,
    })
}

fn dir_of(forward: Side, side: Side) -> Direction {
    if side == forward {
        Direction::Forward
    } else {
        Direction::Reverse
    }
}

impl<O: Observer> tcp::Sink for Inner<O> {
    fn connection(&mut self, c: &Connection) {
        self.stats.connections += 1;
        let forced = self
            .cfg
            .ports
            .iter()
            .any(|&p| p == c.client.port || p == c.server.port);
        self.conns.insert(
            c.id,
            ConnState::Probing {
                probes: Default::default(),
                pending: Vec::new(),
                client: c.client,
                server: c.server,
                first_ts: c.first_ts,
                first_frame: c.first_frame,
                syn_seen: c.syn_seen,
            },
        );
        if forced {
            // Decode As: the stream goes to the forced port.
            let forward = if self.cfg.ports.contains(&c.server.port) {
                Side::Client
            } else {
                Side::Server
            };
            self.become_migration(c.id, forward, "port", c.first_ts);
        }
    }

    fn data(&mut self, conn: ConnId, side: Side, ts: u64, offset: u64, bytes: &[u8], mid: bool) {
        match self.conns.get_mut(&conn) {
            Some(ConnState::Probing { .. }) => self.probe_data(conn, side, ts, offset, bytes, mid),
            Some(ConnState::Migration {
                session,
                forward,
                decoders,
            }) => {
                let (session, dir) = (*session, dir_of(*forward, side));
                let dec = decoders[side as usize].get_or_insert_with(|| {
                    if !mid && offset == 0 {
                        Decoder::new(dir)
                    } else {
                        Decoder::mid_stream(dir, offset)
                    }
                });
                let start = dec.offset();
                dec.push(bytes, &mut self.events);
                let end = dec.offset();
                let stamps = self.stamps.entry((conn, side)).or_default();
                stamps.record(start, end, ts);
                self.observer.bytes(session, dir, offset, bytes);
                self.emit_stamped(session, dir, ts, (conn, side));
            }
            Some(ConnState::BackChannel {
                session,
                data,
                decoder,
            }) => {
                if side != *data {
                    return;
                }
                let session = *session;
                let start = decoder.offset();
                decoder.push(bytes, &mut self.events);
                let end = decoder.offset();
                self.stamps
                    .entry((conn, side))
                    .or_default()
                    .record(start, end, ts);
                self.observer
                    .bytes(session, Direction::Reverse, offset, bytes);
                self.emit_stamped(session, Direction::Reverse, ts, (conn, side));
            }
            None => {}
        }
    }

    fn gap(&mut self, conn: ConnId, side: Side, ts: u64, offset: u64, len: u64, cause: GapCause) {
        match self.conns.get_mut(&conn) {
            Some(ConnState::Probing { probes, .. }) => {
                let p = &mut probes[side as usize];
                if p.start_known.is_none() {
                    // The start was lost: hunt from the first byte after the gap.
                    p.start_known = Some(false);
                    p.prefix_from = offset + len;
                } else {
                    if p.hunter.is_none() {
                        // A gap within the first bytes of a known start: the
                        // opening cannot be classified; hunt after it.
                        p.start_hunting(p.prefix.len());
                    }
                    let h = p.hunter.as_mut().expect("just ensured");
                    h.gap(len, &mut p.hunter_events);
                    if p.dropped == 0 && p.prefix_gaps.len() < MAX_PREFIX_GAPS {
                        // Kept in place: the bytes after it are kept too.
                        p.prefix_gaps.push((p.prefix.len(), len, cause));
                    } else {
                        p.dropped += len;
                    }
                }
            }
            Some(ConnState::Migration {
                session,
                forward,
                decoders,
            }) => {
                let (session, dir) = (*session, dir_of(*forward, side));
                let dec = decoders[side as usize]
                    .get_or_insert_with(|| Decoder::mid_stream(dir, offset + len));
                if dec.offset() == offset {
                    dec.gap(len, &mut self.events);
                }
                self.observer.gap(session, dir, ts, offset, len, cause);
                self.emit_decoded(session, dir, ts);
            }
            Some(ConnState::BackChannel {
                session,
                data,
                decoder,
            }) if side == *data => {
                let session = *session;
                decoder.gap(len, &mut self.events);
                self.observer
                    .gap(session, Direction::Reverse, ts, offset, len, cause);
                self.emit_decoded(session, Direction::Reverse, ts);
            }
            Some(ConnState::BackChannel { .. }) => {}
            None => {}
        }
    }

    fn event(&mut self, ev: &TcpEvent) {
        match self.conns.get_mut(&ev.conn) {
            Some(ConnState::Probing { pending, .. }) if pending.len() < PENDING_EVENTS => {
                pending.push(*ev);
            }
            Some(ConnState::Probing { .. }) => {}
            Some(ConnState::Migration {
                session, forward, ..
            }) => {
                let (s, d) = (*session, dir_of(*forward, ev.side));
                self.observer.tcp(s, d, ev);
            }
            Some(ConnState::BackChannel { session, .. }) => {
                let s = *session;
                self.observer.tcp(s, Direction::Reverse, ev);
            }
            None => {}
        }
    }

    fn closed(&mut self, c: &Connection) {
        let stats = |side: Side| DirectionStats {
            packets: c.half(side).packets(),
            wire_bytes: c.half(side).wire_bytes(),
            duplicates: c.half(side).duplicates(),
            reassembly: c.half(side).counters().clone(),
        };
        let ts = c.last_ts;
        match self.conns.remove(&c.id) {
            Some(ConnState::Migration {
                session,
                forward,
                decoders,
            }) => {
                for (i, dec) in decoders.into_iter().enumerate() {
                    let side = if i == 0 { Side::Client } else { Side::Server };
                    let dir = dir_of(forward, side);
                    if let Some(mut d) = dec {
                        d.finish(&mut self.events);
                        self.emit_stamped(session, dir, ts, (c.id, side));
                    }
                    self.observer.ended(session, dir, &stats(side));
                }
            }
            Some(ConnState::BackChannel {
                session,
                data,
                mut decoder,
            }) => {
                decoder.finish(&mut self.events);
                self.emit_stamped(session, Direction::Reverse, ts, (c.id, data));
                self.observer
                    .ended(session, Direction::Reverse, &stats(data));
            }
            Some(ConnState::Probing { probes, .. }) => {
                let kept: usize = probes.iter().map(|p| p.prefix.len()).sum();
                self.prefix_bytes = self.prefix_bytes.saturating_sub(kept);
            }
            None => {}
        }
        self.stamps.remove(&(c.id, Side::Client));
        self.stamps.remove(&(c.id, Side::Server));
    }
}

/// Feeds every packet of `src` to `analyzer` until the source ends or `stop`
/// is set (Ctrl-C). Returns the problems met while reading, each a sentence
/// for the user; the last one may have ended reading early. Does not call
/// [`Analyzer::finish`].
pub fn feed<O: Observer>(
    src: &mut capture::Source,
    analyzer: &mut Analyzer<O>,
    stop: &std::sync::atomic::AtomicBool,
) -> Vec<capture::CaptureError> {
    use std::sync::atomic::Ordering;
    let mut problems = Vec::new();
    loop {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        match src.next_packet() {
            Ok(capture::Next::Packet(p)) => analyzer.packet(&p),
            Ok(capture::Next::Idle) => continue,
            Ok(capture::Next::End) => break,
            Err(e) => {
                let fatal = e.ends_reading();
                problems.push(e);
                if fatal || problems.len() >= 100 {
                    break;
                }
            }
        }
    }
    problems
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

#[cfg(test)]
mod tests {
    use super::Stamps;

    #[test]
    fn a_record_longer_than_the_ring_keeps_its_first_byte_time() {
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
