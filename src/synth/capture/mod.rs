//! Packet captures of synthetic migrations: the timed writes of
//! [`crate::synth::generate`] turned into the TCP/IP packets of real
//! connections, written as a pcap or pcapng file, with the ground truth of
//! what the capture holds.
//!
//! # What it generates
//!
//! Per session (one [`Scenario`]; [`write_capture`] merges several in time
//! order into one file, the Nth between its own pair of hosts, 10.0.N.1 and
//! 10.0.N.2 or fd00:0:0:N::1 and ::2, starting [`CaptureOptions::stagger_ns`]
//! after the previous one):
//!
//! - the migration connection from host .1 (the sender, an ephemeral port)
//!   to host .2 ([`CaptureOptions::port`]): a three-way handshake (SYN with
//!   MSS, SACK-permitted, timestamps and window scale; SYN/ACK; ACK) before
//!   the first write, then the forward stream as data segments and the
//!   reverse stream (xl messages, COLO back channel) the other way, then a
//!   FIN exchange after the last write;
//! - with [`CaptureOptions::back_channel_connection`], a second connection
//!   from host .1 to port + 1 of host .2, opened right after the first, that
//!   carries the reverse stream instead;
//! - with [`Scenario::multifd`] channels (QEMU), one connection per channel
//!   from host .1 (the next ephemeral ports) to the migration connection's
//!   port of host .2, opened after it, each carrying its channel's stream;
//!   their [`DirectionTruth`] entries follow the session's two, in channel
//!   order (the reverse flows carry no data).
//!
//! Data segments carry at most [`CaptureOptions::segment_size`] payload
//! bytes (the MSS, or more to imitate the GSO/TSO super-segments of host
//! captures); a segment never spans two writes, and the last one of a write
//! has PSH. Every segment after the handshake carries the timestamp option;
//! receivers acknowledge every second segment at once and a lone one after
//! the delayed-ACK timeout ([`CaptureOptions::delayed_ack_ns`], Linux's
//! 40 ms) unless data going the other way carries the ACK first,
//! acknowledge out-of-order data at once with SACK blocks, and advertise a
//! window of at least 256 KiB and four bandwidth-delay products (window
//! scale 7 or more; the SYN/ACK's unscaled 65160 until the first ACK). IPv4
//! and TCP checksums are correct (IPv6 has none); IPv4 has DF set and
//! increasing IDs.
//!
//! # Timing model of packets
//!
//! The capture is taken on host .1. A write's bytes are spread over its
//! `[start_ns, end_ns]` in proportion to bytes: a segment's timestamp is
//! the time its last byte is sent. Forward and reverse data keep the stream
//! times of the generator exactly, shifted by the session's
//! `time_offset_ns` in the manifest (the reverse stream's times are read as
//! arrival times at the capturing host). A segment sent to host .2 is
//! acknowledged one RTT ([`CaptureOptions::rtt_ns`], 50 µs by default) after
//! it in the capture; a segment sent to host .1 is acknowledged at once.
//! Packets are written in timestamp order (ties in the order they were
//! scheduled), both directions and all sessions merged.
//!
//! # Impairments (deterministic from each session's seed)
//!
//! - **Loss in the capture** ([`CaptureOptions::loss`]): a segment is sent
//!   and acknowledged but missing from the file; its bytes are a gap.
//! - **Retransmission** ([`CaptureOptions::retransmit`]): the segment is
//!   captured, then lost on the way; the receiver answers the following
//!   segments with duplicate ACKs carrying SACK, and the sender sends the
//!   same bytes again when the third duplicate ACK arrives (one RTT after
//!   the third following segment), or two RTTs (at least 10 µs) after the
//!   original when fewer than three segments follow it in its write.
//! - **Reordering** ([`CaptureOptions::reorder`]): a segment is swapped with
//!   the next one of the same write (each takes the other's timestamp); the
//!   receiver sends a duplicate ACK, then acknowledges both.
//! - **Mid-stream start** ([`CaptureOptions::start_at`]): every packet before
//!   the data segment of session 0's forward stream that holds that byte
//!   offset is left out (handshakes included), so the capture starts in the
//!   middle of a record.
//! - **Snap length** ([`CaptureOptions::snaplen`]): frames are cut to that
//!   many bytes; the original length is kept; the cut payload is a gap.
//! - **Sequence wrap** ([`CaptureOptions::seq_wrap`]): initial sequence
//!   numbers 64-68 KiB below 2^32 forward and 16-32 bytes below it on every
//!   other flow, so sequence numbers wrap early.
//! - **Zero window** ([`CaptureOptions::zero_window`]): a forward write that
//!   the timing model slowed down (by at least one RTT plus 10 µs) means the
//!   receiver stopped reading. The generator does that only for the
//!   PAGE_DATA writes of a stalled **memory** phase (`--stall K:memory=D`,
//!   spread over that phase's writes), and of QEMU COLO the RAM writes of
//!   a stalled **ram** phase or the device-state write of a stalled
//!   **device_state** phase (only a write larger than the window closes
//!   it); stalls of the other phases leave the
//!   forward direction idle, not blocked, and produce no zero window. Such a
//!   write that is larger than what the receiver's window still allows
//!   becomes: segments at line rate up to the window's right edge (the
//!   receiver's ACKs advertise a shrinking window, the last one 0), the
//!   sender's zero-window probes (empty ACKs one byte behind, as Linux sends
//!   them) 200 ms after the zero window and then backing off, each answered
//!   with a zero-window ACK, a window update when the stall ends, and the
//!   rest of the write at line rate so that it ends when the write ends.
//!   Stalls shorter than 200 ms have no probes. No other impairment is
//!   applied to these writes.
//!
//! At most one impairment applies to a segment, and never to the segment
//! that starts the capture.
//!
//! # Ground truth
//!
//! [`CaptureManifest`] holds per session and direction the TCP 4-tuple, the
//! initial sequence number (the stream's first byte has ISN + 1), the stream
//! length, whether the SYN was captured, the first stream offset in the
//! capture's view (0 with a SYN; else the offset of the first data segment
//! in capture order, as a reassembler starting mid-stream sees it), the
//! exact stream ranges `[start, end)` from there on that no captured
//! segment holds (loss, snap length), and counts of segments, retransmitted,
//! reordered, lost and cut segments and zero-window episodes and probes.
//! The generator's own [`Manifest`] (records, checkpoints, rounds) rides
//! along per session.
//!
//! # Limits
//!
//! - The sender never waits for the receiver: the timing model decides
//!   every send time, windows are advertised but do not limit it (they are
//!   sized so that they would not). No congestion control, no RTO-based
//!   retransmission, no keep-alives, no TCP options besides the ones above.
//! - Memory: a write's bytes stay until its last segment is written; with
//!   retransmissions that is two RTTs later, so memory grows with bandwidth
//!   times RTT (RTT is capped at 100 ms). Each session runs its generator in
//!   a thread with a one-write queue; a session costs about 25 MiB (its
//!   generator's record buffer, writes queued and in flight, up to 4 MiB
//!   each), whatever the length of the capture; at most [`MAX_SESSIONS`]
//!   sessions.
//! - Lost ranges are listed exactly, so a tiny snap length on a large
//!   capture makes a long list (one range per data segment).
//! - pcapng files always record nanoseconds; pcap files microseconds unless
//!   [`CaptureOptions::nanosecond`].

mod output;
mod tcp;
pub mod wire;

use std::io;
use std::net::IpAddr;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Mutex;

use serde::Serialize;

pub use tcp::{Capture, CaptureSink, BASE_NS};

use super::{generate, Manifest, MigrationKind, Phase, Scenario, StreamSink, Write};
use crate::decode::Direction;

/// Most sessions in one capture.
pub const MAX_SESSIONS: usize = 64;
/// The snap length tcpdump uses by default, and the most accepted.
pub const DEFAULT_SNAPLEN: u32 = 262_144;
/// Payload of a full segment at an MTU of 1500 with timestamps.
pub const DEFAULT_MSS: u32 = 1448;
/// Smallest MSS accepted.
pub const MIN_MSS: u32 = 64;
/// Longest RTT accepted.
pub const MAX_RTT_NS: u64 = 100_000_000;
/// Longest stagger between sessions: one hour.
pub const MAX_STAGGER_NS: u64 = 3_600_000_000_000;
/// Writes queued per session between its generator thread and the writer.
const QUEUE_DEPTH: usize = 1;
/// Spare write buffers kept for the generators, per session.
const POOL_PER_SESSION: usize = 2;

/// The file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CaptureFormat {
    Pcap,
    Pcapng,
}

/// The link layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Link {
    /// Ethernet II.
    Ethernet,
    /// Linux cooked capture v2 (`tcpdump -i any`).
    Sll2,
}

/// Which connection a direction travels on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Connection {
    /// The migration connection.
    Migration,
    /// The separate back-channel connection.
    BackChannel,
    /// A QEMU multifd channel: from host .1 to the migration connection's
    /// own port of host .2.
    Multifd,
}

/// How to packetize and what to impair.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaptureOptions {
    pub format: CaptureFormat,
    pub link: Link,
    /// 802.1Q VLAN ID (1-4094) tagged on every frame.
    pub vlan: Option<u16>,
    /// IPv6 addresses instead of IPv4.
    pub ipv6: bool,
    /// pcap only: nanosecond timestamps (pcapng always has them).
    pub nanosecond: bool,
    /// Frames are cut to this many bytes.
    pub snaplen: u32,
    /// Payload bytes of a full segment on the wire (advertised as MSS + 12,
    /// the timestamp option's room, in the SYN).
    pub mss: u32,
    /// Payload bytes of a full segment in the capture: the MSS, or up to
    /// 65483 to imitate GSO/TSO super-segments.
    pub segment_size: u32,
    pub rtt_ns: u64,
    /// Delayed-ACK timeout of a receiver holding one unacknowledged segment.
    pub delayed_ack_ns: u64,
    /// Start of each session after the previous one.
    pub stagger_ns: u64,
    /// The receiver's listening port (the back-channel connection uses the
    /// next one).
    pub port: u16,
    /// Reverse stream on a second TCP connection.
    pub back_channel_connection: bool,
    /// Fraction of data segments retransmitted.
    pub retransmit: f64,
    /// Fraction of data segments swapped with the next one.
    pub reorder: f64,
    /// Fraction of data segments missing from the capture.
    pub loss: f64,
    /// The capture starts at the segment holding this forward byte offset
    /// of session 0.
    pub start_at: Option<u64>,
    pub seq_wrap: bool,
    pub zero_window: bool,
}

impl Default for CaptureOptions {
    fn default() -> Self {
        CaptureOptions {
            format: CaptureFormat::Pcap,
            link: Link::Ethernet,
            vlan: None,
            ipv6: false,
            nanosecond: false,
            snaplen: DEFAULT_SNAPLEN,
            mss: DEFAULT_MSS,
            segment_size: DEFAULT_MSS,
            rtt_ns: 50_000,
            delayed_ack_ns: 40_000_000,
            stagger_ns: 50_000_000,
            port: 8002,
            back_channel_connection: false,
            retransmit: 0.0,
            reorder: 0.0,
            loss: 0.0,
            start_at: None,
            seq_wrap: false,
            zero_window: false,
        }
    }
}

impl CaptureOptions {
    /// Checks every option.
    pub fn validate(&self) -> Result<(), WriteError> {
        let max = wire::MAX_SEGMENT_PAYLOAD as u32;
        if !(MIN_MSS..=max).contains(&self.mss) {
            return Err(WriteError::Mss(self.mss));
        }
        if !(self.mss..=max).contains(&self.segment_size) {
            return Err(WriteError::SegmentSize {
                size: self.segment_size,
                mss: self.mss,
            });
        }
        let min = self.link_spec().max_headers_len(self.ipv6) as u32;
        if !(min..=DEFAULT_SNAPLEN).contains(&self.snaplen) {
            return Err(WriteError::Snaplen {
                snaplen: self.snaplen,
                min,
            });
        }
        if let Some(id) = self.vlan {
            if !(1..=4094).contains(&id) {
                return Err(WriteError::Vlan(id));
            }
        }
        if !(1_000..=MAX_RTT_NS).contains(&self.rtt_ns) {
            return Err(WriteError::Rtt(self.rtt_ns));
        }
        if self.delayed_ack_ns > 1_000_000_000 {
            return Err(WriteError::DelayedAck(self.delayed_ack_ns));
        }
        if self.stagger_ns > MAX_STAGGER_NS {
            return Err(WriteError::Stagger(self.stagger_ns));
        }
        if self.port == 0 || (self.back_channel_connection && self.port == u16::MAX) {
            return Err(WriteError::Port(self.port));
        }
        let mut sum = 0.0;
        for (what, rate) in [
            ("retransmission", self.retransmit),
            ("reordering", self.reorder),
            ("loss", self.loss),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(WriteError::Rate(what, rate));
            }
            sum += rate;
        }
        if sum > 1.0 {
            return Err(WriteError::RateSum(sum));
        }
        Ok(())
    }
}

/// Why a capture cannot be generated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WriteError {
    #[error("the MSS must be between 64 and 65483 bytes, not {0}")]
    Mss(u32),
    #[error("the segment size must be between the MSS ({mss}) and 65483 bytes, not {size}")]
    SegmentSize { size: u32, mss: u32 },
    #[error("the snap length must be between {min} bytes (every header whole) and 262144, not {snaplen}")]
    Snaplen { snaplen: u32, min: u32 },
    #[error("a VLAN ID must be between 1 and 4094, not {0}")]
    Vlan(u16),
    #[error("the round-trip time must be between 1 µs and 100 ms, not {0} ns")]
    Rtt(u64),
    #[error("the delayed-ACK timeout must be at most 1 s, not {0} ns")]
    DelayedAck(u64),
    #[error("sessions can start at most 1 hour apart, not {0} ns")]
    Stagger(u64),
    #[error("the port must be between 1 and 65535 (65534 with a back-channel connection, which uses the next one), not {0}")]
    Port(u16),
    #[error("the {0} rate must be between 0 and 1, not {1}")]
    Rate(&'static str, f64),
    #[error("the loss, retransmission and reordering rates add up to {0}, more than 1")]
    RateSum(f64),
    #[error("a capture holds 1 to 64 sessions, not {0}")]
    Sessions(usize),
    #[error("a zero window needs a stalled memory phase (a stall K:memory=DURATION of a remus or colo stream, or K:ram= or K:device_state= of a qemu-colo stream): only then is the forward direction blocked")]
    ZeroWindowNeedsMemoryStall,
    #[error("xl keeps its messages and the COLO back channel on the migration connection; a separate back-channel connection comes from other tools, so drop --xl or --back-channel-connection")]
    BackChannelWithXl,
    #[error("nothing was captured: the capture starts at forward byte {offset}, but session 0's forward stream has only {bytes} bytes")]
    StartPastEnd { offset: u64, bytes: u64 },
}

impl From<WriteError> for io::Error {
    fn from(e: WriteError) -> Self {
        io::Error::new(io::ErrorKind::InvalidInput, e)
    }
}

/// Ground truth of a capture.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaptureManifest {
    pub options: CaptureOptions,
    /// Packets in the file.
    pub packets: u64,
    /// Timestamps of the first and last packet, ns since the Unix epoch.
    pub first_packet_ns: Option<u64>,
    pub last_packet_ns: Option<u64>,
    pub sessions: Vec<SessionTruth>,
}

/// Ground truth of one session.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionTruth {
    pub index: usize,
    pub name: String,
    pub seed: u64,
    pub kind: MigrationKind,
    /// Add to a time of `stream` to get the capture timestamp (ns since the
    /// Unix epoch) of the segment that carries the byte sent at that time.
    pub time_offset_ns: u64,
    /// Forward, then reverse.
    pub directions: Vec<DirectionTruth>,
    /// The generator's manifest of this session's streams.
    pub stream: Manifest,
}

/// What the capture holds of one direction of a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DirectionTruth {
    pub dir: Direction,
    pub connection: Connection,
    pub src: IpAddr,
    pub src_port: u16,
    pub dst: IpAddr,
    pub dst_port: u16,
    /// The sender's initial sequence number: stream offset `o` has sequence
    /// number `(isn + 1 + o) mod 2^32`.
    pub isn: u32,
    /// Bytes of the direction's stream.
    pub total_bytes: u64,
    /// The SYN (or SYN/ACK) of this direction is in the capture.
    pub syn_captured: bool,
    /// Where the capture's view of the stream starts: 0 when the SYN was
    /// captured, else the offset of the first data segment in capture order;
    /// `None` when the capture holds neither.
    pub first_offset: Option<u64>,
    /// Stream ranges `[start, end)` at or after `first_offset` that no
    /// captured segment holds, in order.
    pub lost: Vec<(u64, u64)>,
    pub lost_bytes: u64,
    /// Data segments in the capture (retransmissions included).
    pub segments: u64,
    /// Retransmitted copies in the capture.
    pub retransmitted: u64,
    /// Segments captured after the segment that follows them.
    pub reordered: u64,
    /// Segments sent but missing from the capture.
    pub lost_segments: u64,
    /// Segments cut by the snap length.
    pub truncated_segments: u64,
    pub zero_window_episodes: u64,
    pub zero_window_probes: u64,
}

/// A stall of this phase slows forward writes down (the generator fills
/// it with them): the receiver's window can close.
fn blocks_forward(p: Phase) -> bool {
    matches!(p, Phase::Memory | Phase::Ram | Phase::DeviceState)
}

/// Checks the options against the sessions.
pub fn validate(scenarios: &[Scenario], opts: &CaptureOptions) -> Result<(), WriteError> {
    opts.validate()?;
    if !(1..=MAX_SESSIONS).contains(&scenarios.len()) {
        return Err(WriteError::Sessions(scenarios.len()));
    }
    if opts.zero_window
        && !scenarios
            .iter()
            .all(|s| s.stalls.iter().any(|&(_, p, _)| blocks_forward(p)))
    {
        return Err(WriteError::ZeroWindowNeedsMemoryStall);
    }
    if opts.back_channel_connection && scenarios.iter().any(|s| s.xl) {
        return Err(WriteError::BackChannelWithXl);
    }
    Ok(())
}

/// A write waiting in the merge: start, end, direction, multifd channel,
/// bytes.
type Queued = (u64, u64, Direction, Option<u32>, Vec<u8>);

enum Msg {
    Write {
        start: u64,
        end: u64,
        dir: Direction,
        channel: Option<u32>,
        data: Vec<u8>,
    },
    Done(io::Result<Manifest>),
}

/// Sends each write, copied into a pooled buffer, to the capture writer.
struct ChannelSink<'a> {
    tx: &'a SyncSender<Msg>,
    pool: &'a Mutex<Vec<Vec<u8>>>,
}

impl StreamSink for ChannelSink<'_> {
    fn write(&mut self, w: &Write<'_>) -> io::Result<()> {
        let spare = self.pool.lock().ok().and_then(|mut p| p.pop());
        let mut data = spare.unwrap_or_default();
        data.clear();
        data.extend_from_slice(w.data);
        self.tx
            .send(Msg::Write {
                start: w.start_ns,
                end: w.end_ns,
                dir: w.dir,
                channel: w.channel,
                data,
            })
            .map_err(|_| io::Error::other("the capture writer stopped"))
    }
}

/// Generates every scenario (one session each, in its own thread) and
/// writes the packets of all of them, merged in time order, to `out`.
/// Returns the writer (flushed) and the ground truth.
///
/// Fails with `InvalidInput` on invalid options or scenarios, or when
/// `start_at` lies past the end of session 0's forward stream (the file then
/// holds no packets); else only with `out`'s errors.
pub fn write_capture<W: io::Write>(
    scenarios: &[Scenario],
    opts: &CaptureOptions,
    out: W,
) -> io::Result<(W, CaptureManifest)> {
    validate(scenarios, opts)?;
    for s in scenarios {
        s.validate()?;
    }
    let mut capture = Capture::new(opts, out)?;
    let origins: Vec<u64> = scenarios
        .iter()
        .map(|s| {
            let i = capture.add_session(s);
            capture.origin(i)
        })
        .collect();
    let pool = Mutex::new(Vec::new());
    std::thread::scope(|scope| -> io::Result<()> {
        let mut inputs: Vec<Receiver<Msg>> = Vec::with_capacity(scenarios.len());
        for s in scenarios {
            let (tx, rx) = mpsc::sync_channel(QUEUE_DEPTH);
            let pool = &pool;
            scope.spawn(move || {
                let mut sink = ChannelSink { tx: &tx, pool };
                let result = generate(s, &mut sink);
                // The writer may have stopped already: nothing to tell then.
                let _ = tx.send(Msg::Done(result));
            });
            inputs.push(rx);
        }
        let n = scenarios.len();
        let mut heads: Vec<Option<Queued>> = (0..n).map(|_| None).collect();
        let mut live = vec![true; n];
        loop {
            for i in 0..n {
                if !live[i] || heads[i].is_some() {
                    continue;
                }
                match inputs[i].recv() {
                    Ok(Msg::Write {
                        start,
                        end,
                        dir,
                        channel,
                        data,
                    }) => heads[i] = Some((start, end, dir, channel, data)),
                    Ok(Msg::Done(result)) => {
                        live[i] = false;
                        capture.end_session(i, result?);
                    }
                    Err(_) => {
                        return Err(io::Error::other(format!(
                            "the generator of session {i} stopped without finishing"
                        )))
                    }
                }
            }
            let next = heads
                .iter()
                .enumerate()
                .filter_map(|(i, h)| h.as_ref().map(|w| (origins[i].saturating_add(w.0), i)))
                .min();
            let Some((_, i)) = next else {
                break;
            };
            if let Some((start, end, dir, channel, data)) = heads[i].take() {
                match channel {
                    None => capture.write_owned(i, start, end, dir, data)?,
                    Some(ch) => capture.write_channel(i, ch, start, end, data)?,
                }
            }
            if let Ok(mut p) = pool.lock() {
                while let Some(b) = capture.take_spare() {
                    if p.len() < POOL_PER_SESSION * n {
                        p.push(b);
                    }
                }
            }
        }
        Ok(())
    })?;
    capture.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_checked_with_one_sentence_each() {
        let ok = CaptureOptions::default();
        assert_eq!(ok.validate(), Ok(()));
        let bad = |f: fn(&mut CaptureOptions)| {
            let mut o = CaptureOptions::default();
            f(&mut o);
            o.validate().unwrap_err()
        };
        assert_eq!(bad(|o| o.mss = 10), WriteError::Mss(10));
        assert_eq!(
            bad(|o| o.segment_size = 100),
            WriteError::SegmentSize {
                size: 100,
                mss: 1448
            }
        );
        assert_eq!(
            bad(|o| o.snaplen = 60),
            WriteError::Snaplen {
                snaplen: 60,
                min: 94
            }
        );
        let e = bad(|o| {
            o.snaplen = 100;
            o.ipv6 = true;
            o.vlan = Some(3);
        });
        assert_eq!(
            e.to_string(),
            "the snap length must be between 118 bytes (every header whole) and 262144, not 100"
        );
        assert_eq!(bad(|o| o.vlan = Some(4095)), WriteError::Vlan(4095));
        assert_eq!(bad(|o| o.rtt_ns = 0), WriteError::Rtt(0));
        assert_eq!(bad(|o| o.port = 0), WriteError::Port(0));
        assert_eq!(
            bad(|o| {
                o.port = 65535;
                o.back_channel_connection = true;
            }),
            WriteError::Port(65535)
        );
        assert_eq!(bad(|o| o.loss = 1.5), WriteError::Rate("loss", 1.5));
        assert!(matches!(
            bad(|o| {
                o.loss = 0.6;
                o.reorder = 0.6;
            }),
            WriteError::RateSum(_)
        ));
        assert!(bad(|o| o.retransmit = f64::NAN)
            .to_string()
            .contains("between 0 and 1"));
    }

    #[test]
    fn sessions_and_zero_window_are_checked() {
        let o = CaptureOptions::default();
        assert_eq!(validate(&[], &o), Err(WriteError::Sessions(0)));
        let many = vec![Scenario::plain(); 65];
        assert_eq!(validate(&many, &o), Err(WriteError::Sessions(65)));
        let zw = CaptureOptions {
            zero_window: true,
            ..CaptureOptions::default()
        };
        let colo = Scenario::colo().with_checkpoints(3);
        assert_eq!(
            validate(std::slice::from_ref(&colo), &zw),
            Err(WriteError::ZeroWindowNeedsMemoryStall)
        );
        let stalled = colo.with_stall(1, Phase::Memory, 500_000_000);
        assert_eq!(validate(&[stalled], &zw), Ok(()));
    }
}
