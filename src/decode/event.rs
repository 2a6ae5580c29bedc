//! What a [`Decoder`](super::Decoder) emits: items (headers, xl messages,
//! records), layer switches, resynchronisations, gaps and diagnostics. Every
//! event carries the stream offset it refers to.

use std::fmt;

use serde::Serialize;

use super::info::Info;
use super::wire::{Layer, RecordType};

/// The kind of a decoded item: a record of either layer, a stream header, or
/// an `xl` preamble message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ItemKind {
    Record(RecordType),
    /// xl save-file header with the domain config (forward).
    SaveHeader,
    /// "xl migration receiver ready, ..." (reverse).
    Banner,
    /// "domain received, ready to unpause" (reverse).
    ReadyToUnpause,
    /// "domain is yours, you are cleared to unpause" (forward).
    ClearedToUnpause,
    /// "my copy unpause results are as follows" + result byte (reverse).
    UnpauseResult,
    /// Other text on the reverse direction: the receiver's error output.
    ReceiverText,
    LibxlHeader,
    ImageHeader,
    DomainHeader,
    /// An item of a QEMU stream.
    Qemu(super::qemu::QemuKind),
}

impl ItemKind {
    /// The PROTOCOL.md name of a record, or the item's name.
    pub fn name(self) -> &'static str {
        match self {
            ItemKind::Record(t) => t.name(),
            ItemKind::SaveHeader => "SAVE_HEADER",
            ItemKind::Banner => "BANNER",
            ItemKind::ReadyToUnpause => "READY_TO_UNPAUSE",
            ItemKind::ClearedToUnpause => "CLEARED_TO_UNPAUSE",
            ItemKind::UnpauseResult => "UNPAUSE_RESULT",
            ItemKind::ReceiverText => "RECEIVER_TEXT",
            ItemKind::LibxlHeader => "HEADER",
            ItemKind::ImageHeader => "IMAGE_HEADER",
            ItemKind::DomainHeader => "DOMAIN_HEADER",
            ItemKind::Qemu(k) => k.name(),
        }
    }

    pub fn record_type(self) -> Option<RecordType> {
        match self {
            ItemKind::Record(t) => Some(t),
            _ => None,
        }
    }
}

impl fmt::Display for ItemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ItemKind::Record(t) => t.fmt(f),
            k => f.write_str(k.name()),
        }
    }
}

/// One decoded item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Stream offset of the item's first byte.
    pub offset: u64,
    /// Bytes on the wire: header, body and padding for records.
    pub wire_len: u64,
    pub layer: Layer,
    pub kind: ItemKind,
    /// Body length of a record; the wire length of headers and messages.
    pub body_length: u32,
    pub info: Info,
    /// Bytes of this item that a capture gap lost.
    pub lost: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Note,
    Warning,
    Error,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// What a diagnostic is about, for filtering and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DiagKind {
    /// A body does not fit its record type (includes PAGE_DATA length mismatch).
    MalformedBody,
    /// Padding bytes after a body are not zero.
    NonZeroPadding,
    /// body_length over 128 MiB: corruption.
    OversizedRecord,
    /// A record the layer state machine does not allow here.
    UnexpectedRecord,
    /// A type this tool does not know.
    UnknownRecord,
    /// A header with a wrong version, byte order or flags.
    BadHeader,
    /// The stream ends inside an item or before its END.
    Truncated,
    /// Bytes after the end of the stream.
    TrailingData,
    /// Bytes lost in a capture gap.
    Gap,
    /// Bytes skipped to find the next record boundary.
    Resync,
    /// The stream is a pre-v2 (legacy) image, SSH, or not a migration stream.
    Unrecognised,
    /// A body too large to inspect; skipped.
    NotInspected,
}

/// A problem found in the stream, with where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub offset: u64,
    pub kind: DiagKind,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at offset {}: {}",
            self.severity.name(),
            self.offset,
            self.message
        )
    }
}

/// What the decoder found when it re-synchronised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    LibxlHeader,
    ImageHeader,
    SaveHeader,
    XlMessage,
    /// A record of the given layer whose framing was verified.
    Record(Layer),
    /// A QEMU section header (or RAM section) that checks out.
    QemuSection,
    /// A QEMU COLO or return-path message (with what follows it).
    QemuMessage,
}

/// Everything the decoder reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Item(Item),
    /// The next bytes belong to another layer (PROTOCOL.md section 5).
    LayerSwitch {
        offset: u64,
        from: Layer,
        to: Layer,
    },
    /// A version 2 libxc stream has no STATIC_DATA_END; the decoder acts as if
    /// it came just before this offset.
    StaticDataEndInferred {
        offset: u64,
    },
    /// `len` bytes at `offset` were missing from the capture.
    Gap {
        offset: u64,
        len: u64,
    },
    /// The decoder skipped `skipped` bytes before `offset` and found `anchor`.
    Resync {
        offset: u64,
        skipped: u64,
        anchor: Anchor,
    },
    Diagnostic(Diagnostic),
}

impl Event {
    pub fn as_item(&self) -> Option<&Item> {
        match self {
            Event::Item(i) => Some(i),
            _ => None,
        }
    }
}
