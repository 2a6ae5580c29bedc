//! Recognition: what a connection's first bytes say (PROTOCOL.md section
//! 1), and the mid-stream hunt for a record boundary when its start was not
//! captured.

use crate::decode::detect::Opening;
use crate::decode::info::Info;
use crate::decode::libxl::ControlId;
use crate::decode::qemu::QemuDecoder;
use crate::decode::{
    Decoder, Direction, Event, Family, ItemKind, LibxcType, LibxlType, RecordType, StreamDecoder,
};
use crate::tcp::{Endpoint, GapCause, Side, TcpEvent};

use super::SessionId;

/// Per-direction state of a connection not recognised yet.
#[derive(Default)]
pub(super) struct Probe {
    /// Whether offset 0 is the true start (the SYN was seen).
    pub(super) start_known: Option<bool>,
    pub(super) prefix: Vec<u8>,
    pub(super) prefix_from: u64,
    /// Capture gaps inside the prefix: (prefix length when it came, length,
    /// cause). The bytes after a gap are kept too, so that the gap is told
    /// as the gap it was once the connection is recognised.
    pub(super) prefix_gaps: Vec<(usize, u64, GapCause)>,
    /// Bytes after the prefix that were not kept.
    pub(super) dropped: u64,
    pub(super) hunter: Option<Decoder>,
    pub(super) hunter_events: Vec<Event>,
    pub(super) hunted: usize,
    /// A smaller hunt budget: the connection's start was seen but its first
    /// bytes open no migration (a damaged header, or another protocol).
    pub(super) hunt_limit: Option<usize>,
    /// The hunter has found a record boundary.
    pub(super) resynced: bool,
    /// The same hunt for a QEMU stream's anchors.
    pub(super) qemu_hunter: Option<QemuDecoder>,
    pub(super) qemu_events: Vec<Event>,
    pub(super) qemu_resynced: bool,
}

impl Probe {
    /// The opening cannot be classified: from now on a mid-stream decoder
    /// hunts for a record boundary, starting with the first `upto` bytes of
    /// the prefix (the caller pushes the rest).
    pub(super) fn start_hunting(&mut self, upto: usize) {
        self.start_known = Some(false);
        let mut h = Decoder::mid_stream(Direction::Forward, self.prefix_from);
        h.push(&self.prefix[..upto], &mut self.hunter_events);
        self.hunted += upto;
        self.hunter = Some(h);
        let mut q = QemuDecoder::mid_stream(Direction::Forward, self.prefix_from);
        q.push(&self.prefix[..upto], &mut self.qemu_events);
        self.qemu_hunter = Some(q);
    }
}

// Decoders are large, but only connections being recognised or decoded are in
// the table (ignored ones leave it), so boxing would only add an indirection.
#[allow(clippy::large_enum_variant)]
pub(super) enum ConnState {
    Probing {
        probes: Box<[Probe; 2]>,
        pending: Vec<TcpEvent>,
        client: Endpoint,
        server: Endpoint,
        first_ts: u64,
        first_frame: u64,
        syn_seen: bool,
        /// `--port N` on a connection whose start was not captured: the
        /// hunt decides the family; if it finds nothing, the side given
        /// here (the one sending to the port) is decoded as Xen's.
        forced: Option<Side>,
    },
    /// A session's migration connection; `forward` is the side sending the stream.
    Migration {
        session: SessionId,
        forward: Side,
        family: Family,
        /// `--port N` (no family given): the forward direction's first bytes
        /// decide the family.
        auto_family: bool,
        decoders: [Option<StreamDecoder>; 2],
    },
    /// A back channel on its own connection; `data` is the side sending records.
    BackChannel {
        session: SessionId,
        data: Side,
        decoder: Decoder,
    },
}

pub(super) enum Verdict {
    Opening(Opening),
    MidStream { forward: bool, family: Family },
}

/// Decides a mid-stream direction from a hunting forward decoder's new
/// events: the first record after a re-synchronisation tells; a back-channel
/// record means the reverse direction, anything else the forward one.
pub(super) fn mid_stream_verdict(events: &[Event], resynced: &mut bool) -> Option<Verdict> {
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
            Some(Verdict::MidStream {
                forward: !back,
                family: Family::Xen,
            })
        }
        _ => None,
    })
}

/// As [`mid_stream_verdict`] for the QEMU hunter: an item after its
/// re-synchronisation makes the direction a QEMU stream's forward one (the
/// hunt anchors only on what the primary sends).
pub(super) fn qemu_mid_stream_verdict(events: &[Event], resynced: &mut bool) -> Option<Verdict> {
    events.iter().find_map(|e| match e {
        Event::Resync { .. } => {
            *resynced = true;
            None
        }
        Event::Item(_) if *resynced => Some(Verdict::MidStream {
            forward: true,
            family: Family::Qemu,
        }),
        _ => None,
    })
}

pub(super) fn dir_of(forward: Side, side: Side) -> Direction {
    if side == forward {
        Direction::Forward
    } else {
        Direction::Reverse
    }
}
