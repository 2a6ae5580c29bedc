//! The TCP model and the packet scheduler behind [`Capture`] (see the module
//! docs of `synth::capture` for the model itself).
//!
//! Every packet, and every moment a receiver reacts, is an [`Event`] in one
//! min-heap ordered by capture time. A write schedules its data segments
//! (and their deliveries to the receiver) at once; receivers, delayed-ACK
//! timers, probes and FINs schedule more events as they run. Events run
//! strictly in time order, so the state each one reads (what a host has
//! sent and received so far) is the state at that moment, and packets leave
//! in capture order. The heap is drained up to the start of the next write
//! only: writes arrive in start order, so nothing earlier can appear any
//! more. A write's bytes stay in memory until its last segment (a late
//! retransmission included) has been written.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::output::Output;
use super::wire::{self, flags, Hosts, LinkKind, LinkSpec, Options, Segment};
use super::{
    CaptureManifest, CaptureOptions, Connection, DirectionTruth, Link, SessionTruth, WriteError,
};
use crate::decode::Direction;
#[cfg(test)]
use crate::synth::Timing;
use crate::synth::{Manifest, MigrationKind, Scenario, StreamSink, Write};

/// Capture time of stream time 0 of the first session, before the
/// handshake lead: 2023-11-14 22:13:20 UTC, in ns since the Unix epoch.
pub const BASE_NS: u64 = 1_700_000_000 * NS_PER_S;
const NS_PER_S: u64 = 1_000_000_000;
const NS_PER_MS: u64 = 1_000_000;
/// Idle time between the end of the handshakes and the first write, and
/// between the last write (plus two RTTs) and the FIN.
const IDLE_NS: u64 = NS_PER_MS;
/// Offset of the back-channel connection's SYN after the migration
/// connection's handshake.
const SECOND_CONNECTION_NS: u64 = 100_000;
/// Linux's minimum retransmission timeout, the first zero-window probe
/// interval; probes back off to at most [`PROBE_MAX_NS`].
const PROBE_RTO_NS: u64 = 200 * NS_PER_MS;
const PROBE_MAX_NS: u64 = 120 * NS_PER_S;
/// Linux's windows in a SYN (44 * 1460) and a SYN/ACK (45 * 1448).
const SYN_WINDOW: u16 = 64240;
const SYNACK_WINDOW: u16 = 65160;
/// Smallest receive window advertised after the handshake.
const MIN_RCV_WINDOW: u64 = 256 << 10;
/// Window scale Linux picks for its default buffers; larger when the
/// bandwidth-delay product needs it.
const MIN_WSCALE: u8 = 7;
const MAX_WSCALE: u8 = 14;
/// A zero window is only modelled when the write was slowed by at least one
/// RTT plus this much (time for the zero-window ACK to arrive before the
/// window update).
const ZERO_WINDOW_MARGIN_NS: u64 = 10_000;
/// Smallest delay of a tail-loss-probe retransmission after the original.
const MIN_TAIL_PROBE_NS: u64 = 10_000;

/// Flags of a scheduled data segment.
mod seg_flag {
    pub const PSH: u8 = 1;
    /// The original of a segment that the capture does not hold.
    pub const NOT_CAPTURED: u8 = 2;
    /// A retransmitted copy.
    pub const RETRANSMISSION: u8 = 4;
    /// Sent after the segment that follows it in the stream.
    pub const REORDERED: u8 = 8;
    /// The capture starts with this segment (`start_at`).
    pub const TRIGGER: u8 = 16;
}

#[derive(Debug, Clone, Copy)]
enum What {
    /// The client's SYN (flow = the client's flow).
    Syn,
    /// The server's SYN/ACK (flow = the server's flow).
    SynAck,
    /// A pure ACK from the flow's sender (the end of the handshake).
    Ack,
    /// A data segment of the flow.
    Data {
        chunk: u64,
        off: u64,
        len: u32,
        flags: u8,
    },
    /// Stream bytes `off..off + len` of the flow reach its receiver; the
    /// event's time is when the receiver's reaction is captured.
    Deliver { off: u64, len: u32 },
    /// The receiver's delayed-ACK timer, valid while `gen` is current.
    DelayedAck { gen: u64 },
    /// A zero-window probe from the flow's sender.
    Probe,
    /// The probe reaches the receiver, which answers.
    ProbeDeliver,
    /// The receiver reads again: its window opens.
    WindowOpen,
    /// The flow's sender closes.
    Fin,
    /// The FIN reaches the receiver.
    FinDeliver,
}

#[derive(Debug, Clone, Copy)]
struct Event {
    ts: u64,
    /// Creation order: ties run first-come first-served.
    order: u64,
    flow: u32,
    what: What,
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Event {}
impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Event {
    /// Reversed, for a min-heap on (ts, order).
    fn cmp(&self, other: &Self) -> Ordering {
        (other.ts, other.order).cmp(&(self.ts, self.order))
    }
}

/// The bytes of one write, kept until its segments are written.
#[derive(Debug)]
struct Chunk {
    off: u64,
    data: Vec<u8>,
    /// Data events still to run.
    pending: u32,
}

/// Stream ranges present in the capture, and where the capture's view of
/// the stream starts.
#[derive(Debug, Default)]
pub(super) struct Coverage {
    /// Offset 0 when the SYN was captured, else the first data byte seen.
    pub origin: Option<u64>,
    /// Disjoint, sorted, non-adjacent.
    ranges: Vec<(u64, u64)>,
}

impl Coverage {
    pub fn add(&mut self, a: u64, b: u64) {
        let origin = *self.origin.get_or_insert(a);
        insert_range(&mut self.ranges, a.max(origin), b);
    }

    /// The ranges of `origin..total` that no captured segment holds.
    pub fn lost(&self, total: u64) -> Vec<(u64, u64)> {
        let Some(origin) = self.origin else {
            return Vec::new();
        };
        let mut lost = Vec::new();
        let mut at = origin;
        for &(a, b) in &self.ranges {
            if a > at {
                lost.push((at, a.min(total)));
            }
            at = at.max(b);
        }
        if at < total {
            lost.push((at, total));
        }
        lost.retain(|&(a, b)| a < b);
        lost
    }
}

/// Adds `a..b` to sorted disjoint ranges, merging what it touches. Ranges
/// arrive mostly at the end, which costs O(log n).
pub(super) fn insert_range(v: &mut Vec<(u64, u64)>, a: u64, b: u64) {
    if a >= b {
        return;
    }
    let i = v.partition_point(|r| r.1 < a);
    let mut j = i;
    let (mut lo, mut hi) = (a, b);
    while j < v.len() && v[j].0 <= hi {
        lo = lo.min(v[j].0);
        hi = hi.max(v[j].1);
        j += 1;
    }
    if i == j {
        v.insert(i, (lo, hi));
    } else {
        v[i] = (lo, hi);
        v.drain(i + 1..j);
    }
}

/// Counts reported per direction.
#[derive(Debug, Default, Clone, Copy)]
struct Stats {
    segments: u64,
    retransmitted: u64,
    reordered: u64,
    lost_segments: u64,
    truncated: u64,
    zero_window_episodes: u64,
    zero_window_probes: u64,
}

/// One direction of a connection: the sender's state, and the state of the
/// receiver of these bytes. Flow `2c` is sent by host 0 of connection `c`,
/// flow `2c + 1` by host 1; a host's pure ACKs therefore acknowledge the
/// other flow of its connection.
#[derive(Debug)]
struct Flow {
    conn: usize,
    /// 0: the capturing host sends, 1: its peer.
    side: usize,
    isn: u32,
    rng: ChaCha8Rng,
    /// Stream bytes scheduled so far.
    scheduled: u64,
    chunks: VecDeque<Chunk>,
    /// Id of `chunks[0]`.
    chunk_base: u64,
    next_chunk: u64,
    // The sender, as of the event being run.
    sent: u64,
    fin_sent: bool,
    ip_id: u16,
    ts_base: u32,
    last_tsval: u32,
    flow_label: u32,
    // The receiver of this flow, as of the event being run.
    rcv_nxt: u64,
    /// Out-of-order ranges held above `rcv_nxt`.
    ooo: Vec<(u64, u64)>,
    unacked: u32,
    delack_gen: u64,
    fin_rcvd: bool,
    /// The receiver has stopped reading: its window ends at this offset.
    close_at: Option<u64>,
    /// `ack + window` last advertised for this flow.
    right_edge: u64,
    // Ground truth.
    syn_captured: bool,
    coverage: Coverage,
    stats: Stats,
}

impl Flow {
    fn new(conn: usize, side: usize, isn: u32, rng: &mut ChaCha8Rng, seed: u64, n: u64) -> Self {
        let mut own = ChaCha8Rng::seed_from_u64(seed);
        own.set_stream(100 + n);
        Flow {
            conn,
            side,
            isn,
            scheduled: 0,
            chunks: VecDeque::new(),
            chunk_base: 0,
            next_chunk: 0,
            sent: 0,
            fin_sent: false,
            ip_id: rng.gen(),
            ts_base: rng.gen(),
            last_tsval: 0,
            flow_label: rng.gen::<u32>() & 0x000F_FFFF,
            rng: own,
            rcv_nxt: 0,
            ooo: Vec::new(),
            unacked: 0,
            delack_gen: 0,
            fin_rcvd: false,
            close_at: None,
            right_edge: u64::from(SYNACK_WINDOW),
            syn_captured: false,
            coverage: Coverage::default(),
            stats: Stats::default(),
        }
    }

    /// The sequence number of stream offset `off` (the SYN is offset -1).
    fn seq(&self, off: u64) -> u32 {
        self.isn.wrapping_add(1).wrapping_add(off as u32)
    }
}

#[derive(Debug)]
struct Conn {
    role: Connection,
    hosts: Hosts,
    /// Ports of host 0 and host 1.
    ports: [u16; 2],
    wscale: u8,
    /// Receive window after the handshake, a multiple of `1 << wscale`.
    window: u64,
}

#[derive(Debug)]
struct Session {
    name: String,
    seed: u64,
    kind: MigrationKind,
    /// Capture time of stream time 0.
    origin: u64,
    bandwidth: u64,
    migration: usize,
    back_channel: Option<usize>,
    /// The QEMU multifd channels' connections, by channel id.
    multifd: Vec<usize>,
    /// Capture time of the end of the last write.
    last_end: u64,
    ended: bool,
    stream: Manifest,
}

/// Turns timed writes of one or more sessions into the packets of their TCP
/// connections and writes them, in capture-time order, as a pcap or pcapng
/// file.
///
/// Feed it with [`Capture::sink`] (one session driven by
/// [`crate::synth::generate`]) or [`Capture::write_owned`]; writes of all
/// sessions must arrive in order of their start times (the generator emits
/// them so). A write that starts before what has already been written is
/// moved later, never reordered into the past.
pub struct Capture<W: io::Write> {
    opts: CaptureOptions,
    link: LinkSpec,
    out: Output<W>,
    heap: BinaryHeap<Event>,
    order: u64,
    /// Time of the event being run, or of the last one.
    now: u64,
    flows: Vec<Flow>,
    conns: Vec<Conn>,
    sessions: Vec<Session>,
    frame: Vec<u8>,
    /// Segment plan of the write being scheduled: (start, end, time).
    segs: Vec<(u64, u64, u64)>,
    spare: Vec<Vec<u8>>,
    /// False until the `start_at` segment is written.
    started: bool,
    trigger_set: bool,
    packets: u64,
    first_packet_ns: Option<u64>,
    last_packet_ns: Option<u64>,
}

impl<W: io::Write> Capture<W> {
    /// Checks the options and writes the file header.
    pub fn new(opts: &CaptureOptions, out: W) -> io::Result<Self> {
        opts.validate()?;
        let link = opts.link_spec();
        let out = Output::new(out, opts)?;
        Ok(Capture {
            opts: opts.clone(),
            link,
            out,
            heap: BinaryHeap::new(),
            order: 0,
            now: 0,
            flows: Vec::new(),
            conns: Vec::new(),
            sessions: Vec::new(),
            frame: Vec::with_capacity(1 << 17),
            segs: Vec::new(),
            spare: Vec::new(),
            started: opts.start_at.is_none(),
            trigger_set: false,
            packets: 0,
            first_packet_ns: None,
            last_packet_ns: None,
        })
    }

    /// Adds a session for `scenario` (its seed, name, kind and bandwidth;
    /// call [`Capture::end_session`] with its manifest when it is done) and
    /// schedules its handshakes. Session `i` has its own hosts and starts
    /// `i * stagger` after the first. Returns its index.
    pub fn add_session(&mut self, scenario: &Scenario) -> usize {
        let index = self.sessions.len();
        let rtt = self.opts.rtt_ns;
        let lead = 2 * rtt + IDLE_NS;
        let syn_ns = BASE_NS.saturating_add((index as u64).saturating_mul(self.opts.stagger_ns));
        let back = u64::from(self.opts.back_channel_connection);
        let extra = back + u64::from(scenario.multifd);
        let origin = syn_ns.saturating_add(lead).saturating_add(if extra > 0 {
            rtt + extra * SECOND_CONNECTION_NS
        } else {
            0
        });
        let mut rng = ChaCha8Rng::seed_from_u64(scenario.seed);
        rng.set_stream(7);
        let hosts = session_hosts(index, self.opts.ipv6);
        let bandwidth = scenario.timing.bandwidth.max(1);
        let (wscale, window) = receive_window(bandwidth, rtt);
        let client_port: u16 = 32768 + rng.gen_range(0..28000);
        let open = |cap: &mut Self, role: Connection, k: u16, at: u64, rng: &mut ChaCha8Rng| {
            let c = cap.conns.len();
            // Multifd channels connect to the migration connection's port.
            let server = if role == Connection::Multifd { 0 } else { k };
            cap.conns.push(Conn {
                role,
                hosts,
                ports: [client_port + k, cap.opts.port + server],
                wscale,
                window,
            });
            for side in 0..2 {
                let isn = if cap.opts.seq_wrap {
                    // Wrap after 64 KiB forward, after a few bytes otherwise.
                    let room = if side == 0 && role == Connection::Migration {
                        65536 + rng.gen_range(0..4096)
                    } else {
                        16 + rng.gen_range(0..16)
                    };
                    u32::MAX - room
                } else {
                    rng.gen()
                };
                let n = (2 * c + side) as u64;
                let flow = Flow::new(c, side, isn, rng, scenario.seed, n);
                cap.flows.push(flow);
            }
            cap.push(at, 2 * c, What::Syn);
        };
        open(self, Connection::Migration, 0, syn_ns, &mut rng);
        let migration = self.conns.len() - 1;
        let back_channel = if self.opts.back_channel_connection {
            open(
                self,
                Connection::BackChannel,
                1,
                syn_ns + rtt + SECOND_CONNECTION_NS,
                &mut rng,
            );
            Some(self.conns.len() - 1)
        } else {
            None
        };
        let multifd = (0..scenario.multifd as u16)
            .map(|k| {
                let j = back as u16 + 1 + k;
                let at = syn_ns + rtt + u64::from(j) * SECOND_CONNECTION_NS;
                open(self, Connection::Multifd, j, at, &mut rng);
                self.conns.len() - 1
            })
            .collect();
        self.sessions.push(Session {
            name: scenario.name.clone(),
            seed: scenario.seed,
            kind: scenario.kind,
            origin,
            bandwidth,
            migration,
            back_channel,
            multifd,
            last_end: origin,
            ended: false,
            stream: Manifest::default(),
        });
        index
    }

    /// Capture time of stream time 0 of `session`.
    pub fn origin(&self, session: usize) -> u64 {
        self.sessions.get(session).map_or(0, |s| s.origin)
    }

    /// A [`StreamSink`] for `session`, for [`crate::synth::generate`].
    pub fn sink(&mut self, session: usize) -> CaptureSink<'_, W> {
        CaptureSink {
            capture: self,
            session,
        }
    }

    /// A buffer whose write has been written, for reuse.
    pub fn take_spare(&mut self) -> Option<Vec<u8>> {
        self.spare.pop()
    }

    /// Schedules a write of `session` (stream times, as [`Write`] has them)
    /// and writes every packet that precedes its start.
    pub fn write_owned(
        &mut self,
        session: usize,
        start_ns: u64,
        end_ns: u64,
        dir: Direction,
        data: Vec<u8>,
    ) -> io::Result<()> {
        self.write_on(session, None, start_ns, end_ns, dir, data)
    }

    /// As [`Capture::write_owned`], for a write of QEMU multifd channel
    /// `channel` of `session` (forward).
    pub fn write_channel(
        &mut self,
        session: usize,
        channel: u32,
        start_ns: u64,
        end_ns: u64,
        data: Vec<u8>,
    ) -> io::Result<()> {
        self.write_on(
            session,
            Some(channel),
            start_ns,
            end_ns,
            Direction::Forward,
            data,
        )
    }

    fn write_on(
        &mut self,
        session: usize,
        channel: Option<u32>,
        start_ns: u64,
        end_ns: u64,
        dir: Direction,
        data: Vec<u8>,
    ) -> io::Result<()> {
        let Some(s) = self.sessions.get(session) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("the capture has no session {session}"),
            ));
        };
        if s.ended {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("session {session} has already ended"),
            ));
        }
        let start = s.origin.saturating_add(start_ns);
        let end = s.origin.saturating_add(end_ns).max(start);
        self.run_until(start)?;
        let start = start.max(self.now);
        let end = end.max(start);
        let s = &mut self.sessions[session];
        s.last_end = s.last_end.max(end);
        let flow = match (channel, dir) {
            (Some(ch), _) => match s.multifd.get(ch as usize) {
                Some(&c) => 2 * c,
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("session {session} has no multifd channel {ch}"),
                    ))
                }
            },
            (None, Direction::Forward) => 2 * s.migration,
            (None, Direction::Reverse) => 2 * s.back_channel.unwrap_or(s.migration) + 1,
        };
        if data.is_empty() {
            self.spare.push(data);
            return Ok(());
        }
        self.schedule(session, flow, start, end, data);
        Ok(())
    }

    /// Closes `session`'s connections (FIN exchanges after its last write)
    /// and keeps `stream` for the capture manifest.
    pub fn end_session(&mut self, session: usize, stream: Manifest) {
        let Some(s) = self.sessions.get_mut(session) else {
            return;
        };
        if s.ended {
            return;
        }
        s.ended = true;
        s.stream = stream;
        let at = s
            .last_end
            .max(self.now)
            .saturating_add(2 * self.opts.rtt_ns + IDLE_NS);
        let conns: Vec<usize> = [Some(s.migration), s.back_channel]
            .into_iter()
            .flatten()
            .chain(s.multifd.iter().copied())
            .collect();
        for (k, c) in conns.into_iter().enumerate() {
            self.push(
                at.saturating_add(k as u64 * SECOND_CONNECTION_NS),
                2 * c,
                What::Fin,
            );
        }
    }

    /// Writes every remaining packet, flushes, and returns the writer and
    /// the ground truth. Sessions not ended yet are ended with an empty
    /// stream manifest.
    pub fn finish(mut self) -> io::Result<(W, CaptureManifest)> {
        for i in 0..self.sessions.len() {
            self.end_session(i, Manifest::default());
        }
        self.run_until(u64::MAX)?;
        if let (Some(offset), false) = (self.opts.start_at, self.started) {
            let bytes = self
                .sessions
                .first()
                .map_or(0, |s| self.flows[2 * s.migration].scheduled);
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                WriteError::StartPastEnd { offset, bytes },
            ));
        }
        let manifest = self.truth();
        let mut w = self.out.into_inner();
        w.flush()?;
        Ok((w, manifest))
    }

    fn truth(&mut self) -> CaptureManifest {
        let mut sessions = Vec::with_capacity(self.sessions.len());
        for (index, s) in self.sessions.iter_mut().enumerate() {
            let forward = 2 * s.migration;
            let reverse = 2 * s.back_channel.unwrap_or(s.migration) + 1;
            let channels = s.multifd.iter().map(|&c| (Direction::Forward, 2 * c));
            let directions = [(Direction::Forward, forward), (Direction::Reverse, reverse)]
                .into_iter()
                .chain(channels)
                .map(|(dir, f)| {
                    let flow = &self.flows[f];
                    let conn = &self.conns[flow.conn];
                    let lost = flow.coverage.lost(flow.scheduled);
                    let st = flow.stats;
                    DirectionTruth {
                        dir,
                        connection: conn.role,
                        src: conn.hosts.ip[flow.side],
                        src_port: conn.ports[flow.side],
                        dst: conn.hosts.ip[flow.side ^ 1],
                        dst_port: conn.ports[flow.side ^ 1],
                        isn: flow.isn,
                        total_bytes: flow.scheduled,
                        syn_captured: flow.syn_captured,
                        first_offset: flow.coverage.origin,
                        lost_bytes: lost.iter().map(|r| r.1 - r.0).sum(),
                        lost,
                        segments: st.segments,
                        retransmitted: st.retransmitted,
                        reordered: st.reordered,
                        lost_segments: st.lost_segments,
                        truncated_segments: st.truncated,
                        zero_window_episodes: st.zero_window_episodes,
                        zero_window_probes: st.zero_window_probes,
                    }
                })
                .collect();
            sessions.push(SessionTruth {
                index,
                name: s.name.clone(),
                seed: s.seed,
                kind: s.kind,
                time_offset_ns: s.origin,
                directions,
                stream: std::mem::take(&mut s.stream),
            });
        }
        CaptureManifest {
            options: self.opts.clone(),
            packets: self.packets,
            first_packet_ns: self.first_packet_ns,
            last_packet_ns: self.last_packet_ns,
            sessions,
        }
    }

    // ----- scheduling -----

    fn push(&mut self, ts: u64, flow: usize, what: What) {
        self.order += 1;
        self.heap.push(Event {
            ts: ts.max(self.now),
            order: self.order,
            flow: flow as u32,
            what,
        });
    }

    /// Runs every event before `t`.
    fn run_until(&mut self, t: u64) -> io::Result<()> {
        while self.heap.peek().is_some_and(|e| e.ts < t) {
            if let Some(ev) = self.heap.pop() {
                self.now = self.now.max(ev.ts);
                self.run(ev)?;
            }
        }
        Ok(())
    }

    fn deliver_delay(&self, flow: usize) -> u64 {
        // Data to the peer is answered one RTT later at the capture point;
        // data to the capturing host is answered at once.
        if self.flows[flow].side == 0 {
            self.opts.rtt_ns
        } else {
            0
        }
    }

    fn schedule(&mut self, session: usize, f: usize, start: u64, end: u64, data: Vec<u8>) {
        let len = data.len() as u64;
        let bandwidth = self.sessions[session].bandwidth;
        let seg = u64::from(self.opts.segment_size.max(1));
        let rtt = self.opts.rtt_ns;
        let flow = &mut self.flows[f];
        let off = flow.scheduled;
        flow.scheduled += len;
        let chunk = flow.next_chunk;
        flow.next_chunk += 1;
        flow.chunks.push_back(Chunk {
            off,
            data,
            pending: 0,
        });
        let stop = off + len;

        // A write slowed down by a stall: the receiver's window closes.
        let blocked = (end - start).saturating_sub(transfer_ns(len, bandwidth));
        let plan = if self.opts.zero_window
            && flow.side == 0
            && self.conns[flow.conn].role == Connection::Migration
            && blocked >= rtt + ZERO_WINDOW_MARGIN_NS
            && flow.right_edge > off
            && flow.right_edge < stop
        {
            let close = flow.right_edge;
            let resume = end.saturating_sub(transfer_ns(stop - close, bandwidth));
            let closed = start
                .saturating_add(transfer_ns(close - off, bandwidth))
                .saturating_add(rtt);
            (resume >= closed.saturating_add(ZERO_WINDOW_MARGIN_NS))
                .then_some((close, resume, closed))
        } else {
            None
        };

        self.segs.clear();
        match plan {
            None => {
                let mut a = off;
                while a < stop {
                    let b = (a + seg).min(stop);
                    let t = start.saturating_add(mul_div(end - start, b - off, len));
                    self.segs.push((a, b, t));
                    a = b;
                }
            }
            Some((close, resume, _)) => {
                let mut a = off;
                while a < close {
                    let b = (a + seg).min(close);
                    let t = start.saturating_add(transfer_ns(b - off, bandwidth));
                    self.segs.push((a, b, t));
                    a = b;
                }
                while a < stop {
                    let b = (a + seg).min(stop);
                    let t = resume.saturating_add(transfer_ns(b - close, bandwidth));
                    self.segs.push((a, b, t));
                    a = b;
                }
            }
        }

        let mut trigger = None;
        if let Some(at) = self.opts.start_at {
            if !self.trigger_set && session == 0 && f == 2 * self.sessions[0].migration {
                trigger = self.segs.iter().position(|&(a, b, _)| a <= at && at < b);
                self.trigger_set = trigger.is_some();
            }
        }

        let delay = self.deliver_delay(f);
        let tail_probe = (2 * rtt).max(MIN_TAIL_PROBE_NS);
        let (loss, retransmit, reorder) = (self.opts.loss, self.opts.retransmit, self.opts.reorder);
        let impair = plan.is_none() && loss + retransmit + reorder > 0.0;
        let n = self.segs.len();
        let mut pending = 0u32;
        let mut j = 0;
        while j < n {
            let (a, b, t) = self.segs[j];
            let psh = if j + 1 == n { seg_flag::PSH } else { 0 };
            let eligible = trigger != Some(j);
            let u: f64 = if impair { self.flows[f].rng.gen() } else { 1.0 };
            let len = (b - a) as u32;
            let data = |flags| What::Data {
                chunk,
                off: a,
                len,
                flags,
            };
            let deliver = What::Deliver { off: a, len };
            if eligible && u < loss {
                self.push(t, f, data(psh | seg_flag::NOT_CAPTURED));
                self.push(t.saturating_add(delay), f, deliver);
                pending += 1;
            } else if eligible && u < loss + retransmit {
                // Lost after the capture point: the receiver never gets the
                // original. The sender retransmits it when the third
                // duplicate ACK arrives (fast retransmit), or two RTTs later
                // when no three segments follow in this write (a tail loss
                // probe).
                self.push(t, f, data(psh));
                let again = match self.segs.get(j + 3) {
                    Some(&(_, _, t3)) => t3.saturating_add(rtt),
                    None => t.saturating_add(tail_probe),
                };
                self.push(again, f, data(psh | seg_flag::RETRANSMISSION));
                self.push(again.saturating_add(delay), f, deliver);
                pending += 2;
            } else if eligible
                && u < loss + retransmit + reorder
                && j + 1 < n
                && trigger != Some(j + 1)
            {
                let (a2, b2, t2) = self.segs[j + 1];
                let psh2 = if j + 2 == n { seg_flag::PSH } else { 0 };
                let len2 = (b2 - a2) as u32;
                self.push(
                    t,
                    f,
                    What::Data {
                        chunk,
                        off: a2,
                        len: len2,
                        flags: psh2,
                    },
                );
                self.push(
                    t.saturating_add(delay),
                    f,
                    What::Deliver { off: a2, len: len2 },
                );
                self.push(t2, f, data(psh | seg_flag::REORDERED));
                self.push(t2.saturating_add(delay), f, deliver);
                pending += 2;
                j += 2;
                continue;
            } else {
                let trig = if eligible { 0 } else { seg_flag::TRIGGER };
                self.push(t, f, data(psh | trig));
                self.push(t.saturating_add(delay), f, deliver);
                pending += 1;
            }
            j += 1;
        }
        if let Some(c) = self.flows[f].chunks.back_mut() {
            c.pending = pending;
        }

        if let Some((close, resume, closed)) = plan {
            self.flows[f].close_at = Some(close);
            self.flows[f].stats.zero_window_episodes += 1;
            // Linux probes with an empty ACK one byte behind, from one RTO
            // after the zero window arrives, backing off exponentially.
            let mut interval = PROBE_RTO_NS;
            let mut probe = closed.saturating_add(interval);
            while probe.saturating_add(rtt + ZERO_WINDOW_MARGIN_NS) < resume {
                self.push(probe, f, What::Probe);
                interval = (interval * 2).min(PROBE_MAX_NS);
                probe = probe.saturating_add(interval);
            }
            self.push(resume, f, What::WindowOpen);
        }
    }

    // ----- running events -----

    fn run(&mut self, ev: Event) -> io::Result<()> {
        let f = ev.flow as usize;
        match ev.what {
            What::Syn | What::SynAck => {
                let syn = matches!(ev.what, What::Syn);
                let conn = &self.conns[self.flows[f].conn];
                let mss = (self.opts.mss + wire::TCP_TS_OPTIONS_LEN as u32).min(65535) as u16;
                let tsval = self.tsval(f);
                let tsecr = if syn { 0 } else { self.flows[f ^ 1].last_tsval };
                let opts = Options::syn(mss, tsval, tsecr, conn.wscale);
                let (fl, window) = if syn {
                    (flags::SYN, SYN_WINDOW)
                } else {
                    (flags::SYN | flags::ACK, SYNACK_WINDOW)
                };
                let seq = self.flows[f].isn;
                let written = self.emit(f, fl, seq, Some(window), opts, None, true)?;
                if written.is_some() {
                    self.flows[f].syn_captured = true;
                    self.flows[f].coverage.origin = Some(0);
                }
                if syn {
                    let t = self.now.saturating_add(self.opts.rtt_ns);
                    self.push(t, f ^ 1, What::SynAck);
                } else {
                    let t = self.now;
                    self.push(t, f ^ 1, What::Ack);
                }
            }
            What::Ack => self.pure_ack(f, &[])?,
            What::Data {
                chunk,
                off,
                len,
                flags: sf,
            } => self.data(f, chunk, off, len, sf)?,
            What::Deliver { off, len } => self.deliver(f, off, off + u64::from(len))?,
            What::DelayedAck { gen } => {
                let flow = &self.flows[f];
                if flow.delack_gen == gen && flow.unacked > 0 {
                    self.pure_ack(f ^ 1, &[])?;
                }
            }
            What::Probe => {
                let flow = &self.flows[f];
                let seq = flow.seq(flow.rcv_nxt).wrapping_sub(1);
                let opts = self.established_options(f, &[]);
                self.emit(f, flags::ACK, seq, None, opts, None, true)?;
                self.flows[f].stats.zero_window_probes += 1;
                let t = self.now.saturating_add(self.deliver_delay(f));
                self.push(t, f, What::ProbeDeliver);
            }
            What::ProbeDeliver => self.pure_ack(f ^ 1, &[])?,
            What::WindowOpen => {
                self.flows[f].close_at = None;
                self.pure_ack(f ^ 1, &[])?;
            }
            What::Fin => {
                let flow = &self.flows[f];
                let seq = flow.seq(flow.scheduled);
                let opts = self.established_options(f, &[]);
                self.emit(f, flags::FIN | flags::ACK, seq, None, opts, None, true)?;
                self.flows[f].fin_sent = true;
                let t = self.now.saturating_add(self.deliver_delay(f));
                self.push(t, f, What::FinDeliver);
            }
            What::FinDeliver => {
                self.flows[f].fin_rcvd = true;
                if self.flows[f ^ 1].fin_sent {
                    self.pure_ack(f ^ 1, &[])?;
                } else {
                    // The peer closes too: its FIN carries the ACK.
                    let t = self.now;
                    self.push(t, f ^ 1, What::Fin);
                }
            }
        }
        Ok(())
    }

    fn data(&mut self, f: usize, chunk: u64, off: u64, len: u32, sf: u8) -> io::Result<()> {
        let end = off + u64::from(len);
        let flow = &mut self.flows[f];
        flow.sent = flow.sent.max(end);
        if sf & seg_flag::TRIGGER != 0 {
            self.started = true;
        }
        let captured = sf & seg_flag::NOT_CAPTURED == 0;
        let mut tcp_flags = flags::ACK;
        if sf & seg_flag::PSH != 0 {
            tcp_flags |= flags::PSH;
        }
        let seq = self.flows[f].seq(off);
        let opts = self.established_options(f, &[]);
        let payload = Some((chunk, off, len as usize));
        let written = self.emit(f, tcp_flags, seq, None, opts, payload, captured)?;
        let started = self.started;
        let flow = &mut self.flows[f];
        match written {
            Some(kept) => {
                flow.stats.segments += 1;
                if kept < len as usize {
                    flow.stats.truncated += 1;
                }
                if sf & seg_flag::RETRANSMISSION != 0 {
                    flow.stats.retransmitted += 1;
                }
                if sf & seg_flag::REORDERED != 0 {
                    flow.stats.reordered += 1;
                }
                flow.coverage.add(off, off + kept as u64);
            }
            None if !captured && started => flow.stats.lost_segments += 1,
            None => {}
        }
        // Release the writes whose segments have all been written.
        if let Some(c) = flow
            .chunks
            .get_mut(chunk.saturating_sub(flow.chunk_base) as usize)
        {
            c.pending = c.pending.saturating_sub(1);
        }
        while flow.chunks.front().is_some_and(|c| c.pending == 0) {
            if let Some(c) = flow.chunks.pop_front() {
                self.spare.push(c.data);
            }
            flow.chunk_base += 1;
        }
        Ok(())
    }

    /// Bytes `a..b` of flow `f` reach its receiver, which acknowledges them
    /// at once (every second segment, out-of-order data, a filled hole, a
    /// window that just closed) or arms its delayed-ACK timer.
    fn deliver(&mut self, f: usize, a: u64, b: u64) -> io::Result<()> {
        let flow = &mut self.flows[f];
        let mut sack = [(0u32, 0u32); 3];
        let mut blocks = 0;
        let immediate = if b <= flow.rcv_nxt {
            true // a duplicate
        } else if a <= flow.rcv_nxt {
            let had_holes = !flow.ooo.is_empty();
            flow.rcv_nxt = b;
            while let Some(&(x, y)) = flow.ooo.first() {
                if x > flow.rcv_nxt {
                    break;
                }
                flow.rcv_nxt = flow.rcv_nxt.max(y);
                flow.ooo.remove(0);
            }
            flow.unacked += 1;
            had_holes || flow.unacked >= 2 || flow.close_at.is_some_and(|edge| edge <= flow.rcv_nxt)
        } else {
            insert_range(&mut flow.ooo, a, b);
            true
        };
        if immediate {
            // SACK blocks for data held out of order: the block holding this
            // segment first, then the highest ones (RFC 2018).
            let first = flow.ooo.iter().position(|r| r.0 <= a && a < r.1);
            if let Some(i) = first {
                let r = flow.ooo[i];
                sack[0] = (flow.seq(r.0), flow.seq(r.1));
                blocks = 1;
            }
            for (i, r) in flow.ooo.iter().enumerate().rev() {
                if blocks == sack.len() {
                    break;
                }
                if Some(i) != first {
                    sack[blocks] = (flow.seq(r.0), flow.seq(r.1));
                    blocks += 1;
                }
            }
            self.pure_ack(f ^ 1, &sack[..blocks])
        } else {
            if flow.unacked == 1 {
                let gen = flow.delack_gen;
                let t = self.now.saturating_add(self.opts.delayed_ack_ns);
                self.push(t, f, What::DelayedAck { gen });
            }
            Ok(())
        }
    }

    /// A pure ACK sent by the sender of flow `e` (for the other flow).
    fn pure_ack(&mut self, e: usize, sack: &[(u32, u32)]) -> io::Result<()> {
        let flow = &self.flows[e];
        let mut seq = flow.seq(flow.sent);
        if flow.fin_sent {
            seq = seq.wrapping_add(1);
        }
        let opts = self.established_options(e, sack);
        self.emit(e, flags::ACK, seq, None, opts, None, true)?;
        Ok(())
    }

    fn tsval(&self, e: usize) -> u32 {
        let ms = self.now.saturating_sub(BASE_NS) / NS_PER_MS;
        self.flows[e].ts_base.wrapping_add(ms as u32)
    }

    fn established_options(&self, e: usize, sack: &[(u32, u32)]) -> Options {
        Options::established(self.tsval(e), self.flows[e ^ 1].last_tsval, sack)
    }

    /// Builds and writes one packet sent by the sender of flow `e`. The ACK
    /// field (when `fl` has ACK) and the window (unless `window` is given,
    /// for the handshake) come from the receiver state of the other flow;
    /// sending an ACK cancels that receiver's delayed ACK. Returns the
    /// payload bytes kept when the packet went into the capture.
    #[allow(clippy::too_many_arguments)]
    fn emit(
        &mut self,
        e: usize,
        fl: u8,
        seq: u32,
        window: Option<u16>,
        opts: Options,
        payload: Option<(u64, u64, usize)>,
        captured: bool,
    ) -> io::Result<Option<usize>> {
        let conn = &self.conns[self.flows[e].conn];
        let wscale = conn.wscale;
        let full = conn.window;
        // The other flow: what this host receives.
        let rx = &mut self.flows[e ^ 1];
        let mut ack = 0;
        let mut win = window.unwrap_or(0);
        if fl & flags::ACK != 0 {
            ack = rx.seq(rx.rcv_nxt);
            if rx.fin_rcvd {
                ack = ack.wrapping_add(1);
            }
            rx.unacked = 0;
            rx.delack_gen += 1;
        }
        if window.is_none() {
            let bytes = match rx.close_at {
                Some(edge) => edge.saturating_sub(rx.rcv_nxt),
                None => full,
            };
            let field = bytes.div_ceil(1 << wscale).min(65535);
            win = field as u16;
            rx.right_edge = rx.right_edge.max(rx.rcv_nxt + (field << wscale));
        }

        let tsval = self.tsval(e);
        let flow = &mut self.flows[e];
        flow.ip_id = flow.ip_id.wrapping_add(1);
        flow.last_tsval = tsval;
        if !(captured && self.started) {
            return Ok(None);
        }
        let flow = &self.flows[e];
        let payload: &[u8] = match payload {
            Some((chunk, off, len)) => {
                let c = flow
                    .chunks
                    .get(chunk.saturating_sub(flow.chunk_base) as usize)
                    .ok_or_else(|| io::Error::other("internal error: a segment lost its write"))?;
                let from = (off - c.off) as usize;
                c.data.get(from..from + len).ok_or_else(|| {
                    io::Error::other("internal error: a segment reaches past its write")
                })?
            }
            None => &[],
        };
        let seg = Segment {
            from: flow.side,
            src_port: conn.ports[flow.side],
            dst_port: conn.ports[flow.side ^ 1],
            seq,
            ack,
            flags: fl,
            window: win,
            options: opts.as_slice(),
            ip_id: flow.ip_id,
            flow_label: flow.flow_label,
            payload,
        };
        let snaplen = self.opts.snaplen as usize;
        let wire_len = wire::build_frame(&mut self.frame, &self.link, &conn.hosts, &seg, snaplen);
        let headers = wire_len - payload.len();
        let kept = self.frame.len().saturating_sub(headers);
        self.out.packet(self.now, wire_len as u32, &self.frame)?;
        self.packets += 1;
        self.first_packet_ns.get_or_insert(self.now);
        self.last_packet_ns = Some(self.now);
        Ok(Some(kept))
    }
}

/// A [`StreamSink`] feeding one session of a [`Capture`].
pub struct CaptureSink<'a, W: io::Write> {
    capture: &'a mut Capture<W>,
    session: usize,
}

impl<W: io::Write> StreamSink for CaptureSink<'_, W> {
    fn write(&mut self, w: &Write<'_>) -> io::Result<()> {
        let mut buf = self.capture.take_spare().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(w.data);
        match w.channel {
            None => self
                .capture
                .write_owned(self.session, w.start_ns, w.end_ns, w.dir, buf),
            Some(ch) => self
                .capture
                .write_channel(self.session, ch, w.start_ns, w.end_ns, buf),
        }
    }
}

/// `a * b / c` without overflow (`c > 0`).
fn mul_div(a: u64, b: u64, c: u64) -> u64 {
    (u128::from(a) * u128::from(b) / u128::from(c.max(1))) as u64
}

/// Nanoseconds to send `bytes` at `bandwidth` bytes per second, rounded up
/// (as the generator's timing model does).
fn transfer_ns(bytes: u64, bandwidth: u64) -> u64 {
    let ns = (u128::from(bytes) * u128::from(NS_PER_S)).div_ceil(u128::from(bandwidth.max(1)));
    u64::try_from(ns).unwrap_or(u64::MAX)
}

/// The window scale and receive window for a path: at least 256 KiB and
/// four bandwidth-delay products, as far as a scale of 14 allows.
fn receive_window(bandwidth: u64, rtt_ns: u64) -> (u8, u64) {
    let bdp = mul_div(bandwidth, rtt_ns, NS_PER_S);
    let want = bdp.saturating_mul(4).max(MIN_RCV_WINDOW);
    let mut wscale = MIN_WSCALE;
    while wscale < MAX_WSCALE && want >> wscale > 0xFFFF {
        wscale += 1;
    }
    let field = (want >> wscale).clamp(1, 0xFFFF);
    (wscale, field << wscale)
}

/// The hosts of session `i`: 10.x.y.1 (the capturing migration sender) and
/// 10.x.y.2 with x.y = i + 1, or fd00:0:0:(i + 1)::1 and ::2.
fn session_hosts(i: usize, ipv6: bool) -> Hosts {
    let n = (i + 1) as u16;
    let [hi, lo] = n.to_be_bytes();
    let ip = if ipv6 {
        [
            IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, n, 0, 0, 0, 1)),
            IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, n, 0, 0, 0, 2)),
        ]
    } else {
        [
            IpAddr::V4(Ipv4Addr::new(10, hi, lo, 1)),
            IpAddr::V4(Ipv4Addr::new(10, hi, lo, 2)),
        ]
    };
    Hosts {
        mac: [[2, 0, 0, hi, lo, 1], [2, 0, 0, hi, lo, 2]],
        ip,
    }
}

impl CaptureOptions {
    pub(super) fn link_spec(&self) -> LinkSpec {
        LinkSpec {
            kind: match self.link {
                Link::Ethernet => LinkKind::Ethernet,
                Link::Sll2 => LinkKind::Sll2,
            },
            vlan: self.vlan,
        }
    }
}

#[cfg(test)]
mod tests;
