//! Decoding of migration streams: Xen's stream v2 (PROTOCOL.md §2-§5) and
//! QEMU's ([`qemu`], PROTOCOL.md §9).
//!
//! | module | what |
//! |---|---|
//! | [`records`] | the record table: every record type's number, name, length rule, anchor role, stream (§3, §4) |
//! | [`detect`] | the stream detector: the magics and what a stream's first bytes are (§1-§4) |
//! | [`wire`] | record framing shared by both layers, layers, field readers (§3) |
//! | [`xl`], [`libxl`], [`libxc`] | zero-copy views of headers and bodies, with `emit` (§2, §3, §4) |
//! | [`decoder`] | the push decoder: the layer state machine, gaps, re-synchronisation (§5) |
//! | [`event`], [`info`], [`detail`], [`text`] | what the decoder emits, and how it reads for people |
//! | [`qemu`] | QEMU's migration stream: its wire table, items and push decoder (§9) |
//! | [`StreamDecoder`] | one direction's decoder of either family |

pub mod records;
pub mod wire;

use serde::Serialize;

/// Which way a byte stream flows on a migration connection (PROTOCOL.md §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Sender / primary -> receiver / secondary: the migration stream.
    Forward,
    /// Receiver / secondary -> sender / primary: xl text messages, or the COLO back channel.
    Reverse,
}

impl Direction {
    /// The name in JSON output (stable: "forward", "reverse").
    pub fn name(self) -> &'static str {
        match self {
            Direction::Forward => "forward",
            Direction::Reverse => "reverse",
        }
    }

    /// The name for people, in text reports and the UI: "forward", "back"
    /// (what the receiver sends back: xl's messages or the COLO back
    /// channel).
    pub fn label(self) -> &'static str {
        match self {
            Direction::Forward => "forward",
            Direction::Reverse => "back",
        }
    }
}

pub mod decoder;
pub mod detail;
pub mod detect;
pub mod event;
pub mod info;
pub mod libxc;
pub mod libxl;
pub mod qemu;
pub mod stream;
pub mod text;
pub mod xl;

pub use decoder::Decoder;
pub use event::{Anchor, DiagKind, Diagnostic, Event, Item, ItemKind, Severity};
pub use info::Info;
pub use stream::{Family, StreamDecoder};
pub use wire::{Layer, LibxcType, LibxlType, RecordType};
