//! Decoding of Xen migration streams (PROTOCOL.md sections 2-5).
//!
//! `wire` holds the record framing and type numbers shared by both layers.

pub mod wire;

use serde::Serialize;

/// Which way a byte stream flows on a migration connection (PROTOCOL.md section 1).
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
pub mod text;
pub mod xl;

pub use decoder::Decoder;
pub use event::{Anchor, DiagKind, Diagnostic, Event, Item, ItemKind, Severity};
pub use info::Info;
pub use wire::{Layer, LibxcType, LibxlType, RecordType};
