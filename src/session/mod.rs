//! Sessions: finding migrations in a capture and decoding them, the glue
//! between the `tcp` and `decode` stages and everything after.
//!
//! Files: `analyzer` (packets in, the connection table, decoders per
//! direction), `recognition` (what a connection's first bytes say, the
//! mid-stream hunt), `stamps` (capture times of a record's first and last
//! byte), `observer` (the port every later stage implements).
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

mod analyzer;
mod observer;
mod recognition;
mod stamps;

use serde::Serialize;

use crate::tcp::{self, ConnId, Endpoint, GapCause};

pub use analyzer::{feed, Analyzer};
pub use observer::Observer;

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
    /// Of [`Config::ports`], those whose streams are QEMU's whatever their
    /// first bytes (`--port qemu:N`); the others are QEMU's when they open
    /// with "QEVM", else Xen's.
    pub qemu_ports: Vec<u16>,
    /// Of [`Config::ports`], those always decoded as Xen's (`--port xen:N`).
    pub xen_ports: Vec<u16>,
    /// Bytes a direction caught mid-stream may take to show a record boundary
    /// (default 8 MiB: more than the largest PAGE_DATA).
    pub hunt_budget: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            tcp: tcp::Limits::default(),
            ports: Vec::new(),
            qemu_ports: Vec::new(),
            xen_ports: Vec::new(),
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
    /// Xen or QEMU, from the stream's first bytes (or the hunt's anchor).
    pub family: crate::decode::Family,
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
    /// A QEMU multifd channel: the session (the main migration stream to
    /// the same destination address and port, the latest before it) whose
    /// pages it carries.
    pub multifd_of: Option<SessionId>,
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
