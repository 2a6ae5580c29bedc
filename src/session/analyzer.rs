//! The analyzer: packets in, sliced ([`crate::capture::link`]), tracked and
//! reassembled ([`crate::tcp::Tracker`]), recognised, decoded per direction,
//! reported to an [`Observer`].

use std::collections::HashMap;

use crate::capture::{self, LinkType, Packet, TcpSegment};
use crate::decode::detect::{self, Opening};
use crate::decode::{Decoder, Direction, Event, Family, StreamDecoder};
use crate::tcp::{self, ConnId, Connection, Endpoint, GapCause, Side, TcpEvent, Tracker};

use super::recognition::{dir_of, mid_stream_verdict, qemu_mid_stream_verdict, ConnState, Verdict};
use super::stamps::Stamps;
use super::{
    BackChannelConn, CaptureStats, Config, DirectionStats, Observer, Piece, Session, SessionId,
    DAMAGED_START_HUNT, MAX_PREFIX_GAPS, PENDING_EVENTS, PREFIX_TOTAL,
};

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
    #[allow(clippy::too_many_arguments)]
    fn new_session(
        &mut self,
        conn: ConnId,
        primary: Endpoint,
        secondary: Endpoint,
        (recognised_by, family): (&'static str, Family),
        (mid_stream, syn_seen): (bool, bool),
        first: (u64, u64),
    ) -> SessionId {
        let id = self.sessions.len() as SessionId;
        let multifd_of = (recognised_by == detect::Opening::QemuMultifd.name())
            .then(|| {
                self.sessions.iter().rev().find(|s| {
                    s.family == Family::Qemu
                        && s.recognised_by != recognised_by
                        && s.secondary == secondary
                })
            })
            .flatten()
            .map(|s| s.id);
        let s = Session {
            id,
            family,
            multifd_of,
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
        if recognised_by == detect::Opening::Qemu.name() {
            // multifd channels whose first bytes came before the main stream's
            for c in self.sessions.iter_mut() {
                let channel = c.recognised_by == detect::Opening::QemuMultifd.name();
                if channel && c.multifd_of.is_none() && c.secondary == secondary {
                    c.multifd_of = Some(id);
                    self.observer.updated(c);
                }
            }
        }
        id
    }

    /// Turns a probing connection into a migration whose forward side is
    /// `forward`, replaying what was kept.
    fn become_migration(
        &mut self,
        conn: ConnId,
        forward: Side,
        (by, family): (&'static str, Family),
        ts: u64,
    ) {
        let Some(ConnState::Probing {
            probes,
            pending,
            client,
            server,
            first_ts,
            first_frame,
            syn_seen,
            ..
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
            (by, family),
            (mid, syn_seen),
            (first_ts, first_frame),
        );
        let mut decoders: [Option<StreamDecoder>; 2] = [None, None];
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
            let hunter = match (family, probe.hunter, probe.qemu_hunter) {
                (Family::Xen, Some(h), _) => Some((StreamDecoder::Xen(h), probe.hunter_events)),
                (Family::Qemu, _, Some(h)) => Some((StreamDecoder::Qemu(h), probe.qemu_events)),
                _ => None,
            };
            let dec = match hunter {
                Some((h, evs)) if dir == Direction::Forward => {
                    events = evs;
                    h
                }
                _ => {
                    let mut d = if probe.start_known == Some(true) {
                        StreamDecoder::new(family, dir)
                    } else {
                        StreamDecoder::mid_stream(family, dir, probe.prefix_from)
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
                family,
                auto_family: false,
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
                    ("back channel", Family::Xen),
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
        let Some(ConnState::Probing { probes, forced, .. }) = self.conns.get_mut(&conn) else {
            return;
        };
        let forced = *forced;
        let probe = &mut probes[side as usize];
        if probe.start_known.is_none() {
            // Without the handshake, a direction whose first captured bytes
            // open a stream starts there: only the SYN and SYN-ACK were lost.
            let opens =
                detect::classify(bytes).is_some_and(|o| o.is_forward() || o == Opening::XlBanner);
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
            let mut v = mid_stream_verdict(&probe.hunter_events[before..], &mut probe.resynced);
            if v.is_none() {
                let q = probe.qemu_hunter.get_or_insert_with(|| {
                    crate::decode::qemu::QemuDecoder::mid_stream(Direction::Forward, offset)
                });
                let before = probe.qemu_events.len();
                q.push(bytes, &mut probe.qemu_events);
                v = qemu_mid_stream_verdict(&probe.qemu_events[before..], &mut probe.qemu_resynced);
            }
            for evs in [&mut probe.hunter_events, &mut probe.qemu_events] {
                if evs.len() > PENDING_EVENTS {
                    // Hunting notes pile up on non-migration bytes; keep the latest.
                    let cut = evs.len() - PENDING_EVENTS;
                    evs.drain(..cut);
                }
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
                Opening::XlHeader
                | Opening::Libxl
                | Opening::Libxc
                | Opening::Qemu
                | Opening::QemuMultifd => {
                    self.become_migration(conn, side, (op.name(), op.family()), ts)
                }
                Opening::XlBanner => {
                    self.become_migration(conn, side.other(), ("xl", Family::Xen), ts)
                }
                Opening::BackChannel => self.become_back_channel(conn, side, ts),
                Opening::Ssh | Opening::Other if forced.is_some() => {
                    let fwd = forced.unwrap_or(side);
                    self.become_migration(conn, fwd, ("port", Family::Xen), ts);
                }
                Opening::Ssh => {
                    self.stats.ssh_connections += 1;
                    self.ignore_conn(conn);
                }
                Opening::Other => self.ignore_conn(conn),
            },
            Some(Verdict::MidStream { forward, family }) => {
                let fwd = if forward { side } else { side.other() };
                self.become_migration(conn, fwd, ("mid-stream", family), ts);
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
                forced: None,
            },
        );
        if forced {
            // Decode As: the stream goes to the forced port.
            let forward = if self.cfg.ports.contains(&c.server.port) {
                Side::Client
            } else {
                Side::Server
            };
            let on =
                |ports: &[u16]| ports.contains(&c.server.port) || ports.contains(&c.client.port);
            let family = if on(&self.cfg.qemu_ports) {
                Family::Qemu
            } else {
                Family::Xen
            };
            // a bare port: the forward direction's first bytes decide, or,
            // without the connection's start, the hunt
            let auto = !on(&self.cfg.qemu_ports) && !on(&self.cfg.xen_ports);
            if auto && !c.syn_seen {
                if let Some(ConnState::Probing { forced, .. }) = self.conns.get_mut(&c.id) {
                    *forced = Some(forward);
                }
                return;
            }
            self.become_migration(c.id, forward, ("port", family), c.first_ts);
            if let Some(ConnState::Migration { auto_family, .. }) = self.conns.get_mut(&c.id) {
                *auto_family = auto;
            }
        }
    }

    fn data(&mut self, conn: ConnId, side: Side, ts: u64, offset: u64, bytes: &[u8], mid: bool) {
        match self.conns.get_mut(&conn) {
            Some(ConnState::Probing { .. }) => self.probe_data(conn, side, ts, offset, bytes, mid),
            Some(ConnState::Migration {
                session,
                forward,
                family,
                auto_family,
                decoders,
            }) => {
                let (session, dir) = (*session, dir_of(*forward, side));
                if *auto_family && dir == Direction::Forward {
                    // `--port N`: QEMU's if its first bytes are
                    *auto_family = false;
                    let opening = detect::classify(bytes).filter(|_| !mid && offset == 0);
                    if opening.is_some_and(|o| o.family() == Family::Qemu) {
                        *family = Family::Qemu;
                        decoders[side.other() as usize] = None;
                        if let Some(s) = self.sessions.get_mut(session as usize) {
                            s.family = Family::Qemu;
                            self.observer.updated(s);
                        }
                    }
                }
                let family = *family;
                let dec = decoders[side as usize].get_or_insert_with(|| {
                    if !mid && offset == 0 {
                        StreamDecoder::new(family, dir)
                    } else {
                        StreamDecoder::mid_stream(family, dir, offset)
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
                family,
                decoders,
                ..
            }) => {
                let (session, dir, family) = (*session, dir_of(*forward, side), *family);
                let dec = decoders[side as usize]
                    .get_or_insert_with(|| StreamDecoder::mid_stream(family, dir, offset + len));
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
                ..
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
