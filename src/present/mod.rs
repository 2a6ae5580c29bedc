//! How things read for people, below every layer that writes text (the
//! model's stall reasons, the report, the terminal UI): units, times, and
//! the sentences the report and the UI share. Nothing here decides a
//! figure; it only words what the model found.

mod stall;
mod text;
mod units;

pub use stall::{count, secs, stall_what, verdict};
pub use text::{
    evidence_text, finding_text, handover_text, migration_downtime_text, rel, rfc3339,
    unfinished_text,
};
pub use units::{human_bytes, human_ns};
