//! The incremental decoder: one per direction of a migration connection.
//!
//! Push byte slices of any size with [`Decoder::push`], report capture loss
//! with [`Decoder::gap`], and call [`Decoder::finish`] at the end; each call
//! appends [`Event`]s to a caller-owned vector. The decoder follows the layer
//! state machine of PROTOCOL.md §5: xl preamble, libxl header and records,
//! LIBXC_CONTEXT into the libxc image and domain headers and records, libxc
//! END or CHECKPOINT back to libxl, and for checkpointed streams back to
//! libxc after CHECKPOINT_END (Remus) or CHECKPOINT_STATE NEW (COLO). The
//! reverse direction carries xl text messages and the headerless COLO back
//! channel (CHECKPOINT_STATE and CHECKPOINT_DIRTY_PFN_LIST records).
//!
//! # Where things are
//! The state machine is split by concern; each file cites the PROTOCOL.md
//! section it implements.
//!
//! | file | what | PROTOCOL.md |
//! |---|---|---|
//! | `mod.rs` | the [`Decoder`], its entry points, the dispatch on the state | §5 |
//! | `state.rs` | the states, each carrying its own data, and the stream context | §5 |
//! | `xl.rs` | the start of a stream (the stream detector's verdict), the xl preamble and trailer | §1, §2 |
//! | `headers.rs` | the libxl header, the libxc image and domain headers | §3, §4 |
//! | `record.rs` | record framing: header, body (buffered, streamed or skipped), padding | §3 |
//! | `pfn.rs` | PAGE_DATA and dirty pfn list bodies, summarised as they stream past | §4 |
//! | `layers.rs` | which layer owns the next byte, which records are expected where | §5 |
//! | `reverse.rs` | the reverse direction: xl messages, receiver text, the back channel | §2, §5, §6 |
//! | `resync.rs` | the hunt for a record boundary after a gap or mid-stream | §3, §5 |
//!
//! Record facts (names, lengths, anchors) come from the record table
//! ([`records`](super::records)); stream magics from the stream detector
//! ([`detect`](super::detect)).
//!
//! # Memory
//! Page contents are never held. Per decoder the buffers are bounded:
//! a record body is buffered only when it is at most [`MAX_INSPECT_BODY`]
//! (4 MiB) and is not PAGE_DATA or CHECKPOINT_DIRTY_PFN_LIST (whose pfn
//! entries are summarised as they stream past); the xl config is capped at
//! [`xl::MAX_OPTIONAL_DATA`] (1 MiB); re-synchronisation holds at most
//! [`HUNT_WINDOW`] (256 KiB) twice (window and replay). So a decoder never holds
//! more than about 5.5 MiB whatever the stream length.
//!
//! # Re-synchronisation
//! A decoder made with [`Decoder::mid_stream`], or one told of a gap it cannot
//! step over, hunts for the next record boundary: stream headers, the 16-byte
//! CHECKPOINT_STATE pattern, a PAGE_DATA header whose pfn entries account for
//! its length exactly, HVM_CONTEXT/HVM_PARAMS bodies that check out, or any
//! other plausible record confirmed by a chain of following records ending in
//! one of those. END records (eight zero bytes) never count as evidence.
//! Candidates that cannot be confirmed inside the window are skipped: the
//! decoder prefers skipping more over decoding nonsense.

mod headers;
mod layers;
mod pfn;
mod record;
mod resync;
mod reverse;
mod state;
mod xl;

#[cfg(test)]
mod tests;

use std::mem;

use super::event::{DiagKind, Diagnostic, Event, Item, ItemKind, Severity};
use super::info::Info;
use super::wire::Layer;
use super::xl as xl_wire;
use super::Direction;
use layers::LibxlPhase;
use state::{Libxc, Role, Seen, State};

/// Largest body (other than PAGE_DATA and dirty lists) that is buffered and
/// decoded field by field; larger ones are skipped with a diagnostic.
pub const MAX_INSPECT_BODY: u32 = 4 << 20;

/// Bytes held while looking for a record boundary.
pub const HUNT_WINDOW: usize = 256 << 10;

/// Longest receiver text item before it is split.
pub const MAX_TEXT_ITEM: usize = 4096;

/// Largest PAGE_DATA batch accepted as re-synchronisation evidence (libxc's MAX_BATCH_SIZE).
pub const MAX_BATCH: u32 = 1024;

/// The decoder of one direction. See the module docs.
pub struct Decoder {
    role: Role,
    /// Stream offset of the next byte to be pushed.
    offset: u64,
    state: State,
    /// A fixed-size item (header, xl message) being assembled.
    fixed: [u8; 64],
    fixed_len: usize,
    /// Scratch for the one variable-size thing held at a time: a record body,
    /// the xl config, receiver text. Kept to reuse its capacity.
    buf: Vec<u8>,
    /// Bytes already pushed that the state machine reads again (after a
    /// re-synchronisation found a boundary inside them).
    replay: Vec<u8>,
    /// What the stream has shown so far.
    seen: Seen,
    /// Where the libxl layer is (§5); survives the libxc records in between.
    libxl_phase: LibxlPhase,
    /// The current libxc stream's headers and static data.
    libxc: Libxc,
    /// Stream offset of record boundaries modulo 8, once a header fixed it.
    align: Option<u8>,
    /// The last anchor the hunt accepted: never accepted twice.
    last_anchor: Option<u64>,
    /// Set by `finish` when it scans a hunt's window for the last time: no
    /// more bytes are coming, so from then on no hunt waits for any (a hunt
    /// started while that window is replayed included, which is why this
    /// is not the hunt's own).
    final_scan: bool,
}

impl Decoder {
    /// A decoder at the start of a stream (a file, or a connection whose SYN was seen).
    pub fn new(dir: Direction) -> Self {
        Decoder {
            role: match dir {
                Direction::Forward => Role::Migration,
                Direction::Reverse => Role::Receiver,
            },
            offset: 0,
            state: State::Detect,
            fixed: [0; 64],
            fixed_len: 0,
            buf: Vec::new(),
            replay: Vec::new(),
            seen: Seen::default(),
            libxl_phase: LibxlPhase::Start,
            libxc: Libxc::default(),
            align: None,
            last_anchor: None,
            final_scan: false,
        }
    }

    /// A decoder for a stream whose beginning was not seen: it hunts for the
    /// first record boundary. `offset` is the stream offset of the first byte
    /// that will be pushed.
    pub fn mid_stream(dir: Direction, offset: u64) -> Self {
        let mut d = Decoder::new(dir);
        d.offset = offset;
        d.start_hunt();
        d.libxl_phase = LibxlPhase::Unknown;
        d
    }

    /// A decoder for a file holding a COLO back channel (no header).
    pub fn back_channel() -> Self {
        let mut d = Decoder::new(Direction::Reverse);
        d.state = State::Reverse;
        d
    }

    /// Stream offset of the next byte to be pushed.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Bytes of heap the decoder holds for buffering (capacity of its body,
    /// hunt and replay buffers). Bounded by the caps in the module docs.
    pub fn buffered_capacity(&self) -> usize {
        let hunt = match &self.state {
            State::Hunting(h) => h.window.capacity(),
            _ => 0,
        };
        self.buf.capacity() + hunt + self.replay.capacity()
    }

    /// Upper bound of [`Decoder::buffered_capacity`].
    pub const MAX_BUFFERED: usize =
        MAX_INSPECT_BODY as usize * 2 + xl_wire::MAX_OPTIONAL_DATA as usize + 3 * HUNT_WINDOW;

    /// Whether the stream was refused (legacy, SSH, not a migration stream).
    pub fn refused(&self) -> bool {
        matches!(self.state, State::Refused)
    }

    /// Whether the decoder is looking for a record boundary.
    pub fn hunting(&self) -> bool {
        matches!(self.state, State::Hunting(_))
    }

    /// The stream so far is checkpointed (Remus or COLO).
    pub fn checkpointed(&self) -> bool {
        self.seen.checkpointed
    }

    /// The stream so far carried COLO CHECKPOINT_STATE records.
    pub fn colo(&self) -> bool {
        self.seen.colo
    }

    /// Decodes the next bytes of the stream.
    pub fn push(&mut self, data: &[u8], out: &mut Vec<Event>) {
        let mut data = data;
        loop {
            if !self.replay.is_empty() {
                let replay = mem::take(&mut self.replay);
                let mut s = &replay[..];
                while !s.is_empty() {
                    self.step(&mut s, out);
                    if !self.replay.is_empty() {
                        self.replay.extend_from_slice(s);
                        s = &[];
                    }
                }
                continue;
            }
            if data.is_empty() {
                break;
            }
            self.step(&mut data, out);
        }
    }

    /// `len` bytes at the current offset were lost by the capture.
    pub fn gap(&mut self, len: u64, out: &mut Vec<Event>) {
        if len == 0 {
            return;
        }
        // Bytes waiting for replay come before the gap.
        if !self.replay.is_empty() {
            self.push(&[], out);
        }
        out.push(Event::Gap {
            offset: self.offset,
            len,
        });
        match self.state {
            State::Body(_) => self.gap_in_body(len, out),
            State::XlOptional(_) => self.gap_in_optional(len, out),
            State::Hunting(_) => self.gap_in_hunt(len),
            State::Refused | State::Ended => self.offset += len,
            _ => {
                self.fixed_len = 0;
                self.buf.clear();
                self.offset += len;
                self.start_hunt();
                if let State::Hunting(h) = &mut self.state {
                    h.skipped += len;
                }
            }
        }
    }

    /// The stream ended: reports an item or record left incomplete.
    pub fn finish(&mut self, out: &mut Vec<Event>) {
        if !self.replay.is_empty() {
            self.push(&[], out);
        }
        let pending = self.fixed_len as u64;
        match &self.state {
            State::Body(b) => {
                let missing = b.remaining();
                let name = b.rtype.name();
                diag(
                    out,
                    Severity::Error,
                    b.offset,
                    DiagKind::Truncated,
                    format!("stream ends inside {name}: {missing} bytes of it missing"),
                );
            }
            State::Hunting(h) if !h.window.is_empty() && !self.final_scan => {
                // No more bytes are coming: candidates waiting for more are rejected.
                self.final_scan = true;
                self.scan(out);
                self.push(&[], out);
                self.finish(out);
            }
            State::Hunting(h) => {
                let skipped = h.skipped + h.window.len() as u64;
                if skipped > 0 {
                    diag(out, Severity::Warning, h.began, DiagKind::Resync,
                        format!("{skipped} bytes skipped to the end of the stream without finding a record boundary"));
                }
            }
            State::Text { .. } => self.flush_text(out),
            State::Reverse
                if pending > 0
                    && self.fixed[..self.fixed_len]
                        .iter()
                        .all(|&b| reverse::is_text(b)) =>
            {
                self.start_text();
                self.flush_text(out);
            }
            State::Ended | State::Refused => {}
            State::Records(_) | State::Reverse | State::Trailer | State::Detect if pending == 0 => {
                self.check_end(out)
            }
            _ => {
                let at = self.offset - pending;
                diag(
                    out,
                    Severity::Error,
                    at,
                    DiagKind::Truncated,
                    format!("stream ends inside a header ({pending} bytes of it present)"),
                );
            }
        }
    }

    /// At a clean item boundary at the end: say if the stream stopped early
    /// (checkpointed streams never send END, PROTOCOL.md §5).
    fn check_end(&mut self, out: &mut Vec<Event>) {
        let at = self.offset;
        match self.state {
            State::Detect if at == 0 => diag(
                out,
                Severity::Error,
                0,
                DiagKind::Truncated,
                "the stream is empty".into(),
            ),
            State::Records(Layer::Libxc) => {
                let what = if self.seen.checkpointed || self.seen.colo {
                    "inside a checkpoint (before libxc CHECKPOINT)"
                } else if self.libxl_phase == LibxlPhase::Unknown {
                    // Resynchronised into an unknown stream: nothing to expect.
                    return;
                } else {
                    "before libxc END"
                };
                diag(
                    out,
                    Severity::Warning,
                    at,
                    DiagKind::Truncated,
                    format!("stream ends {what}"),
                );
            }
            State::Records(Layer::Libxl) => match self.libxl_phase {
                LibxlPhase::AfterCheckpointEnd | LibxlPhase::Unknown => {}
                LibxlPhase::AfterCheckpoint => diag(
                    out,
                    Severity::Warning,
                    at,
                    DiagKind::Truncated,
                    "stream ends inside a checkpoint (before CHECKPOINT_END)".into(),
                ),
                _ => diag(
                    out,
                    Severity::Warning,
                    at,
                    DiagKind::Truncated,
                    "stream ends before libxl END".into(),
                ),
            },
            _ => {}
        }
    }

    /// One step of the state machine; consumes bytes or changes state.
    fn step(&mut self, data: &mut &[u8], out: &mut Vec<Event>) {
        match self.state {
            State::Detect => self.detect(data, out),
            State::SaveHeader => self.save_header(data, out),
            State::XlOptional(_) => self.xl_optional(data, out),
            State::AfterXl => self.after_xl(data, out),
            State::LibxlHeader => self.libxl_header(data, out),
            State::ImageHeader => self.image_header(data, out),
            State::DomainHeader => self.domain_header(data, out),
            State::Records(layer) => self.record_header(layer, data, out),
            State::Body(_) => self.feed_body(data, out),
            State::Reverse => self.reverse_item(data, out),
            State::Text { .. } => self.text(data, out),
            State::Trailer => self.trailer(data, out),
            State::Ended => self.after_end(data, out),
            State::Hunting(_) => self.hunt_step(data, out),
            State::Refused => {
                self.offset += data.len() as u64;
                *data = &[];
            }
        }
    }

    /// Bytes after the stream's END (and xl's trailer): said once, then counted.
    fn after_end(&mut self, data: &mut &[u8], out: &mut Vec<Event>) {
        let n = data.len() as u64;
        diag(
            out,
            Severity::Warning,
            self.offset,
            DiagKind::TrailingData,
            format!("{n} bytes after the end of the stream"),
        );
        self.offset += n;
        *data = &[];
        self.state = State::Refused;
    }

    /// Copies bytes into `fixed` until it holds `n`; true when it does.
    fn fill(&mut self, data: &mut &[u8], n: usize) -> bool {
        debug_assert!(n <= self.fixed.len());
        if self.fixed_len < n {
            let k = (n - self.fixed_len).min(data.len());
            self.fixed[self.fixed_len..self.fixed_len + k].copy_from_slice(&data[..k]);
            self.fixed_len += k;
            *data = &data[k..];
            self.offset += k as u64;
        }
        self.fixed_len >= n
    }

    /// Offset of the first byte held in `fixed`.
    fn fixed_start(&self) -> u64 {
        self.offset - self.fixed_len as u64
    }

    /// A stream header or xl message: its wire length is its body_length.
    fn emit_item(
        &mut self,
        out: &mut Vec<Event>,
        offset: u64,
        layer: Layer,
        kind: ItemKind,
        wire_len: u64,
        info: Info,
    ) {
        out.push(Event::Item(Item {
            offset,
            wire_len,
            layer,
            kind,
            body_length: wire_len.min(u64::from(u32::MAX)) as u32,
            info,
            lost: 0,
        }));
    }

    /// The next bytes belong to layer `to` (PROTOCOL.md §5).
    fn switch(&mut self, out: &mut Vec<Event>, from: Layer, to: Layer) {
        switch_at(out, self.offset, from, to);
    }
}

/// The bytes from `offset` on belong to layer `to` (PROTOCOL.md §5).
fn switch_at(out: &mut Vec<Event>, offset: u64, from: Layer, to: Layer) {
    out.push(Event::LayerSwitch { offset, from, to });
}

fn diag(out: &mut Vec<Event>, severity: Severity, offset: u64, kind: DiagKind, message: String) {
    out.push(Event::Diagnostic(Diagnostic {
        severity,
        offset,
        kind,
        message,
    }));
}
