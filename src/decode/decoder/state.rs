//! The decoder's states (PROTOCOL.md §5 and the items around it), each with
//! the data that only it needs, and the context that outlives any one state.

use super::record::Body;
use super::resync::Hunt;
use crate::decode::wire::Layer;
use crate::decode::xl::SaveHeader;

/// Where the decoder is. A state that needs data of its own carries it: the
/// body being read, the hunt's window, the xl header whose config is being
/// read; it is dropped with the state.
#[derive(Debug)]
// `Body` (424 bytes) stays inline: boxing it allocates once per record, and
// that churn raised peak RSS by 0.4 MiB on a 2 GB capture; the state is
// replaced once per item, never copied per byte.
#[allow(clippy::large_enum_variant)]
pub(super) enum State {
    /// Start of a stream: the stream detector decides what it is (§1).
    Detect,
    /// The xl save-file header's 48 bytes (§2).
    SaveHeader,
    /// The xl optional data (domain config) after the save-file header.
    XlOptional(XlOptional),
    /// After the xl header: a libxl or a bare libxc stream follows (§2 item 3).
    AfterXl,
    /// The libxl stream header (§3).
    LibxlHeader,
    /// The libxc image header (§4).
    ImageHeader,
    /// The libxc domain header (§4).
    DomainHeader,
    /// At a record boundary of a layer.
    Records(Layer),
    /// Inside a record: body, then padding.
    Body(Body),
    /// Reverse direction item boundary: xl messages, back-channel records, text.
    Reverse,
    /// Reading receiver text (into the decoder's `buf`) that began at `start`.
    Text { start: u64 },
    /// Forward after libxl END of an xl migration: CLEARED_TO_UNPAUSE (§2 item 4).
    Trailer,
    /// After the end of the stream.
    Ended,
    /// Looking for a record boundary.
    Hunting(Hunt),
    /// Not a decodable stream (legacy, SSH, unknown): bytes are counted only.
    Refused,
}

/// The xl optional data being read: the header it belongs to, the stream
/// offset of its first byte, and how much of it a capture gap lost.
#[derive(Debug, Clone, Copy)]
pub(super) struct XlOptional {
    pub header: SaveHeader,
    pub start: u64,
    pub lost: u64,
}

/// What a decoder's bytes are, fixed by its direction or by how the stream
/// opens (PROTOCOL.md §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    /// The migration stream: xl preamble, libxl and libxc records.
    Migration,
    /// What the receiver sends back: xl messages, its error text, and the
    /// headerless COLO back channel.
    Receiver,
}

/// What the stream has shown so far, whatever the state: these decide what a
/// missing END means and whether xl's trailer follows libxl END.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Seen {
    /// An xl save-file header or xl message.
    pub xl: bool,
    /// A checkpoint (libxc CHECKPOINT, CHECKPOINT_END or CHECKPOINT_STATE):
    /// Remus or COLO.
    pub checkpointed: bool,
    /// A CHECKPOINT_STATE record: COLO.
    pub colo: bool,
}

/// The current libxc stream (§4): set by its image and domain headers and
/// by STATIC_DATA_END; read by the record checks.
#[derive(Debug, Clone, Copy)]
pub(super) struct Libxc {
    /// Image header version (2 or 3), once seen.
    pub version: Option<u32>,
    /// From the domain header's page_shift (4096 until then).
    pub page_size: u32,
    /// Guest type from the domain header: PV (true) or HVM (false).
    pub pv: Option<bool>,
    /// STATIC_DATA_END seen (or, in a version 2 stream, inferred).
    pub static_end: bool,
}

impl Default for Libxc {
    fn default() -> Self {
        Libxc {
            version: None,
            page_size: 4096,
            pv: None,
            static_end: false,
        }
    }
}
