//! The incremental decoder: one per direction of a migration connection.
//!
//! Push byte slices of any size with [`Decoder::push`], report capture loss
//! with [`Decoder::gap`], and call [`Decoder::finish`] at the end; each call
//! appends [`Event`]s to a caller-owned vector. The decoder follows the layer
//! state machine of PROTOCOL.md section 5: xl preamble, libxl header and
//! records, LIBXC_CONTEXT into the libxc image and domain headers and records,
//! libxc END or CHECKPOINT back to libxl, and for checkpointed streams back to
//! libxc after CHECKPOINT_END (Remus) or CHECKPOINT_STATE NEW (COLO). The
//! reverse direction carries xl text messages and the headerless COLO back
//! channel (CHECKPOINT_STATE and CHECKPOINT_DIRTY_PFN_LIST records).
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

use std::mem;

use super::detect::{self, Opening, LIBXC_IMAGE_START, LIBXL_IDENT, XL_SAVE_MAGIC};
use super::event::{Anchor, DiagKind, Diagnostic, Event, Item, ItemKind, Severity};
use super::info::Info;
use super::libxc::{self, PfnEntry, PfnSummary, DOMAIN_HEADER_LEN, IMAGE_HEADER_LEN};
use super::libxl::{self, ControlId};
use super::records::{back_channel_header, Guest, Stream};
use super::text::escape_bytes;
use super::wire::{
    le_u32, le_u64, padding, Layer, LibxcType, LibxlType, RecordHeader, RecordType,
    MAX_RECORD_BODY, OPTIONAL_BIT, RECORD_HEADER_LEN,
};
use super::xl::{self, DomainConfig, Match, Message, SaveHeader};
use super::Direction;

/// Largest body (other than PAGE_DATA and dirty lists) that is buffered and
/// decoded field by field; larger ones are skipped with a diagnostic.
pub const MAX_INSPECT_BODY: u32 = 4 << 20;

/// Bytes held while looking for a record boundary.
pub const HUNT_WINDOW: usize = 256 << 10;

/// Longest receiver text item before it is split.
pub const MAX_TEXT_ITEM: usize = 4096;

/// Largest PAGE_DATA batch accepted as re-synchronisation evidence (libxc's MAX_BATCH_SIZE).
pub const MAX_BATCH: u32 = 1024;

const DEFAULT_PAGE_SIZE: u32 = 4096;

/// Where the libxl layer is in the section-5 state machine; decides which
/// libxl records are expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LibxlPhase {
    /// Right after the libxl header: LIBXC_CONTEXT comes first.
    Start,
    /// After libxc END: EMULATOR_*, then END.
    AfterLibxcEnd,
    /// After libxc CHECKPOINT: EMULATOR_*, then CHECKPOINT_END.
    AfterCheckpoint,
    /// After CHECKPOINT_END: CHECKPOINT_STATE (COLO) or the next libxc batch (Remus).
    AfterCheckpointEnd,
    /// After re-synchronisation: anything goes until the next landmark.
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Start of a stream: sniff what it is.
    Detect,
    SaveHeader,
    XlOptional,
    /// After the xl header: a libxl or a libxc stream follows.
    AfterXl,
    LibxlHeader,
    ImageHeader,
    DomainHeader,
    /// At a record boundary of a layer.
    Records(Layer),
    /// Inside a record body (`self.body` is set).
    Body,
    /// Reverse direction item boundary: xl messages, back-channel records, text.
    Reverse,
    /// Reading receiver text into `self.buf`.
    Text,
    /// Forward after libxl END of an xl migration: CLEARED_TO_UNPAUSE.
    Trailer,
    /// After the end of the stream.
    Ended,
    Hunting,
    /// Not a decodable stream (legacy, SSH, unknown): bytes are counted only.
    Refused,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Buffer,
    Pfns,
    Skip,
}

#[derive(Debug)]
struct Body {
    offset: u64,
    layer: Layer,
    rtype: RecordType,
    body_length: u32,
    /// Body bytes consumed (excluding padding).
    consumed: u64,
    pad_consumed: u32,
    bad_padding: bool,
    mode: Mode,
    lost: u64,
    info: Option<Info>,
    pfns: PfnParser,
    /// The last bytes of a skipped body (fewer than [`COLO_BOUNDARY`]), to
    /// find that boundary across pushes without keeping the body.
    carry: Vec<u8>,
}

/// Streams PAGE_DATA / dirty-list bodies: header (PAGE_DATA only), pfn
/// entries into a [`PfnSummary`], then page bytes skipped.
#[derive(Debug, Default)]
struct PfnParser {
    page_data: bool,
    head: [u8; 8],
    /// Byte position inside the body.
    pos: u64,
    /// End of the entry region (known after the PAGE_DATA header).
    entries_end: Option<u64>,
    partial: [u8; 8],
    partial_len: usize,
    summary: PfnSummary,
    /// Entries lost to a gap.
    damaged: bool,
    bad_count: bool,
    /// Bytes of a gap-broken entry still to drop.
    drop: u64,
}

impl PfnParser {
    fn new(page_data: bool, body_length: u32) -> Self {
        PfnParser {
            page_data,
            entries_end: (!page_data).then_some(u64::from(body_length) / 8 * 8),
            ..Default::default()
        }
    }

    fn feed(&mut self, mut data: &[u8], body_length: u32) {
        while !data.is_empty() {
            if self.page_data && self.pos < 8 {
                let n = (8 - self.pos as usize).min(data.len());
                self.head[self.pos as usize..self.pos as usize + n].copy_from_slice(&data[..n]);
                self.pos += n as u64;
                data = &data[n..];
                if self.pos == 8 {
                    let count = u64::from(le_u32(&self.head, 0));
                    let end = 8 + 8 * count;
                    if end > u64::from(body_length) {
                        self.bad_count = true;
                        self.entries_end = Some(8);
                    } else {
                        self.entries_end = Some(end);
                    }
                }
                continue;
            }
            let end = self.entries_end.unwrap_or(0);
            if self.pos >= end {
                self.pos += data.len() as u64;
                return;
            }
            if self.drop > 0 {
                let d = (self.drop as usize).min(data.len());
                self.drop -= d as u64;
                self.pos += d as u64;
                data = &data[d..];
                continue;
            }
            let want = ((end - self.pos) as usize).min(data.len());
            let (mut entries, rest) = data.split_at(want);
            self.pos += want as u64;
            data = rest;
            if self.partial_len > 0 {
                let n = (8 - self.partial_len).min(entries.len());
                self.partial[self.partial_len..self.partial_len + n].copy_from_slice(&entries[..n]);
                self.partial_len += n;
                entries = &entries[n..];
                if self.partial_len < 8 {
                    // This chunk ended inside the entry too (all of it used).
                    continue;
                }
                self.partial_len = 0;
                let v = le_u64(&self.partial, 0);
                self.push(v);
            }
            let mut chunks = entries.chunks_exact(8);
            for c in &mut chunks {
                self.push(le_u64(c, 0));
            }
            let rem = chunks.remainder();
            self.partial[..rem.len()].copy_from_slice(rem);
            self.partial_len = rem.len();
        }
    }

    #[inline]
    fn push(&mut self, v: u64) {
        if self.page_data {
            self.summary.push_entry(PfnEntry(v));
        } else {
            self.summary.push_pfn(v);
        }
    }

    /// `n` body bytes are missing.
    fn skip(&mut self, n: u64) {
        if self.page_data && self.pos < 8 {
            // The header with the count is gone: no entry can be placed.
            self.damaged = true;
            self.entries_end = Some(8);
            self.pos = self.pos.saturating_add(n);
            return;
        }
        let end = self.entries_end.unwrap_or(0);
        if self.pos < end {
            self.damaged = true;
        }
        self.partial_len = 0;
        self.pos = self.pos.saturating_add(n);
        if self.pos < end {
            // Re-align to the next whole entry; the straddling one is lost.
            let base = if self.page_data { 8 } else { 0 };
            let into = (self.pos - base) % 8;
            self.drop = if into == 0 { 0 } else { 8 - into };
        }
    }
}

/// The decoder of one direction. See the module docs.
pub struct Decoder {
    dir: Direction,
    offset: u64,
    state: State,
    fixed: [u8; 64],
    fixed_len: usize,
    buf: Vec<u8>,
    body: Option<Body>,
    text_start: u64,
    save_header: Option<SaveHeader>,
    optional_start: u64,
    optional_lost: u64,
    // Context from the stream so far.
    xl: bool,
    libxc_version: Option<u32>,
    page_size: u32,
    pv: Option<bool>,
    static_end: bool,
    checkpointed: bool,
    colo: bool,
    libxl_phase: LibxlPhase,
    align: Option<u8>,
    back_channel: bool,
    // Re-synchronisation.
    hunt: Vec<u8>,
    hunt_start: u64,
    hunt_skipped: u64,
    hunt_began: u64,
    replay: Vec<u8>,
    last_anchor: Option<u64>,
    /// Set by `finish`: the hunt buffer will not grow any more.
    final_scan: bool,
}

impl Decoder {
    /// A decoder at the start of a stream (a file, or a connection whose SYN was seen).
    pub fn new(dir: Direction) -> Self {
        Decoder {
            dir,
            offset: 0,
            state: State::Detect,
            fixed: [0; 64],
            fixed_len: 0,
            buf: Vec::new(),
            body: None,
            text_start: 0,
            save_header: None,
            optional_start: 0,
            optional_lost: 0,
            xl: false,
            libxc_version: None,
            page_size: DEFAULT_PAGE_SIZE,
            pv: None,
            static_end: false,
            checkpointed: false,
            colo: false,
            libxl_phase: LibxlPhase::Start,
            align: None,
            back_channel: false,
            hunt: Vec::new(),
            hunt_start: 0,
            hunt_skipped: 0,
            hunt_began: 0,
            replay: Vec::new(),
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
        d.back_channel = true;
        d
    }

    /// Stream offset of the next byte to be pushed.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Bytes of heap the decoder holds for buffering (capacity of its body,
    /// hunt and replay buffers). Bounded by the caps in the module docs.
    pub fn buffered_capacity(&self) -> usize {
        self.buf.capacity() + self.hunt.capacity() + self.replay.capacity()
    }

    /// Upper bound of [`Decoder::buffered_capacity`].
    pub const MAX_BUFFERED: usize =
        MAX_INSPECT_BODY as usize * 2 + xl::MAX_OPTIONAL_DATA as usize + 3 * HUNT_WINDOW;

    /// Whether the stream was refused (legacy, SSH, not a migration stream).
    pub fn refused(&self) -> bool {
        self.state == State::Refused
    }

    /// Whether the decoder is looking for a record boundary.
    pub fn hunting(&self) -> bool {
        self.state == State::Hunting
    }

    /// The stream so far is checkpointed (Remus or COLO).
    pub fn checkpointed(&self) -> bool {
        self.checkpointed
    }

    /// The stream so far carried COLO CHECKPOINT_STATE records.
    pub fn colo(&self) -> bool {
        self.colo
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
            State::Body => {
                let Some(b) = self.body.as_mut() else { return };
                let remaining = u64::from(b.body_length) - b.consumed
                    + u64::from(padding(b.body_length) - b.pad_consumed);
                let lost = len.min(remaining);
                let in_body = (u64::from(b.body_length) - b.consumed).min(lost);
                b.consumed += in_body;
                b.pad_consumed += (lost - in_body) as u32;
                b.lost += lost;
                // Bytes across a gap are not contiguous: no boundary spans it.
                b.carry.clear();
                if b.mode == Mode::Pfns {
                    b.pfns.skip(in_body);
                }
                if b.mode == Mode::Buffer {
                    b.mode = Mode::Skip;
                    self.buf.clear();
                }
                self.offset += lost;
                if lost == remaining {
                    self.complete_record(out);
                    let rest = len - lost;
                    if rest > 0 {
                        self.offset += rest;
                        self.start_hunt();
                    }
                }
            }
            State::XlOptional => {
                let sh = self.save_header.unwrap_or(SaveHeader {
                    byteorder: xl::ByteOrder::Little,
                    byteorder_ok: false,
                    mandatory_flags: 0,
                    optional_flags: 0,
                    optional_data_len: 0,
                });
                let have = self.offset - self.optional_start;
                let remaining = u64::from(sh.optional_data_len) - have;
                let lost = len.min(remaining);
                self.optional_lost += lost;
                self.offset += lost;
                if lost == remaining {
                    self.finish_optional(out);
                    if len > lost {
                        self.offset += len - lost;
                        self.start_hunt();
                    }
                }
            }
            State::Hunting => {
                self.hunt_skipped += self.hunt.len() as u64;
                self.hunt.clear();
                self.offset += len;
                self.hunt_start = self.offset;
                self.hunt_skipped += len;
            }
            State::Refused | State::Ended => self.offset += len,
            _ => {
                self.fixed_len = 0;
                self.buf.clear();
                self.offset += len;
                self.start_hunt();
                self.hunt_skipped += len;
            }
        }
    }

    /// The stream ended: reports an item or record left incomplete.
    pub fn finish(&mut self, out: &mut Vec<Event>) {
        if !self.replay.is_empty() {
            self.push(&[], out);
        }
        let pending = self.fixed_len as u64;
        match self.state {
            State::Body => {
                if let Some(b) = &self.body {
                    let missing = u64::from(b.body_length) - b.consumed
                        + u64::from(padding(b.body_length) - b.pad_consumed);
                    let (off, name) = (b.offset, b.rtype.name());
                    self.diag(
                        out,
                        Severity::Error,
                        off,
                        DiagKind::Truncated,
                        format!("stream ends inside {name}: {missing} bytes of it missing"),
                    );
                }
            }
            State::Hunting if !self.hunt.is_empty() && !self.final_scan => {
                // No more bytes are coming: candidates waiting for more are rejected.
                self.final_scan = true;
                self.scan(out);
                self.push(&[], out);
                self.finish(out);
            }
            State::Hunting => {
                let skipped = self.hunt_skipped + self.hunt.len() as u64;
                if skipped > 0 {
                    let at = self.hunt_began;
                    self.diag(
                        out,
                        Severity::Warning,
                        at,
                        DiagKind::Resync,
                        format!("{skipped} bytes skipped to the end of the stream without finding a record boundary"),
                    );
                }
            }
            State::Text => self.flush_text(out),
            State::Reverse
                if pending > 0 && self.fixed[..self.fixed_len].iter().all(|&b| is_text(b)) =>
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
                self.diag(
                    out,
                    Severity::Error,
                    at,
                    DiagKind::Truncated,
                    format!("stream ends inside a header ({pending} bytes of it present)"),
                );
            }
        }
    }

    /// At a clean item boundary at the end: say if the stream stopped early.
    fn check_end(&mut self, out: &mut Vec<Event>) {
        let at = self.offset;
        match self.state {
            State::Detect if at == 0 => self.diag(
                out,
                Severity::Error,
                0,
                DiagKind::Truncated,
                "the stream is empty".into(),
            ),
            State::Records(Layer::Libxc) => {
                let what = if self.checkpointed || self.colo {
                    "inside a checkpoint (before libxc CHECKPOINT)"
                } else if self.libxl_phase == LibxlPhase::Unknown {
                    // Resynchronised into an unknown stream: nothing to expect.
                    return;
                } else {
                    "before libxc END"
                };
                self.diag(
                    out,
                    Severity::Warning,
                    at,
                    DiagKind::Truncated,
                    format!("stream ends {what}"),
                );
            }
            State::Records(Layer::Libxl) => match self.libxl_phase {
                LibxlPhase::AfterCheckpointEnd | LibxlPhase::Unknown => {}
                LibxlPhase::AfterCheckpoint => self.diag(
                    out,
                    Severity::Warning,
                    at,
                    DiagKind::Truncated,
                    "stream ends inside a checkpoint (before CHECKPOINT_END)".into(),
                ),
                _ => self.diag(
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

    fn diag(
        &self,
        out: &mut Vec<Event>,
        severity: Severity,
        offset: u64,
        kind: DiagKind,
        message: String,
    ) {
        out.push(Event::Diagnostic(Diagnostic {
            severity,
            offset,
            kind,
            message,
        }));
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

    fn switch(&mut self, out: &mut Vec<Event>, from: Layer, to: Layer) {
        out.push(Event::LayerSwitch {
            offset: self.offset,
            from,
            to,
        });
    }

    fn start_hunt(&mut self) {
        self.state = State::Hunting;
        self.hunt.clear();
        self.hunt_start = self.offset;
        self.hunt_began = self.offset;
        self.hunt_skipped = 0;
        self.body = None;
        self.fixed_len = 0;
    }

    /// One step of the state machine; consumes bytes or changes state.
    fn step(&mut self, data: &mut &[u8], out: &mut Vec<Event>) {
        match self.state {
            State::Detect => self.detect(data, out),
            State::SaveHeader => {
                if self.fill(data, xl::SAVE_HEADER_LEN) {
                    let start = self.fixed_start();
                    self.fixed_len = 0;
                    match SaveHeader::parse(&self.fixed) {
                        Some(h) => {
                            if !h.byteorder_ok {
                                self.diag(out, Severity::Warning, start + 32, DiagKind::BadHeader,
                                    "xl header byteorder field is not 0x01020304 in either byte order; read as little-endian".into());
                            }
                            self.xl = true;
                            self.save_header = Some(h);
                            self.optional_start = self.offset;
                            self.optional_lost = 0;
                            self.buf.clear();
                            self.state = State::XlOptional;
                            if h.optional_data_len == 0 {
                                self.finish_optional(out);
                            }
                        }
                        None => {
                            self.diag(
                                out,
                                Severity::Error,
                                start,
                                DiagKind::BadHeader,
                                "bad xl save-file magic".into(),
                            );
                            self.start_hunt();
                        }
                    }
                }
            }
            State::XlOptional => {
                let Some(h) = self.save_header else {
                    self.state = State::AfterXl;
                    return;
                };
                let have = self.offset - self.optional_start;
                let want = (u64::from(h.optional_data_len) - have).min(data.len() as u64) as usize;
                if self.buf.len() + want <= xl::MAX_OPTIONAL_DATA as usize {
                    self.buf.extend_from_slice(&data[..want]);
                }
                *data = &data[want..];
                self.offset += want as u64;
                if self.offset - self.optional_start == u64::from(h.optional_data_len) {
                    self.finish_optional(out);
                }
            }
            State::AfterXl => {
                if self.fill(data, detect::NEEDED) {
                    let first: [u8; detect::NEEDED] =
                        self.fixed[..detect::NEEDED].try_into().unwrap_or_default();
                    match detect::sniff(&first) {
                        Opening::Libxl => self.state = State::LibxlHeader,
                        Opening::Libxc => {
                            self.state = State::ImageHeader;
                            self.switch(out, Layer::Xl, Layer::Libxc);
                        }
                        _ => {
                            let at = self.fixed_start();
                            self.diag(out, Severity::Error, at, DiagKind::Unrecognised,
                                "after the xl header comes neither a libxl nor a libxc v2 stream: a legacy (pre-v2) image, which this tool does not decode".into());
                            self.state = State::Refused;
                        }
                    }
                }
            }
            State::LibxlHeader => {
                if self.fill(data, libxl::HEADER_LEN) {
                    let start = self.fixed_start();
                    self.fixed_len = 0;
                    if let Some(h) = libxl::Header::parse(&self.fixed) {
                        self.emit_item(
                            out,
                            start,
                            Layer::Libxl,
                            ItemKind::LibxlHeader,
                            16,
                            Info::LibxlHeader(h),
                        );
                        if h.version != 2 {
                            self.diag(
                                out,
                                Severity::Error,
                                start + 8,
                                DiagKind::BadHeader,
                                format!("libxl stream version {} (expected 2)", h.version),
                            );
                        }
                        if h.options & libxl::OPTION_BIG_ENDIAN != 0 {
                            self.diag(out, Severity::Error, start + 12, DiagKind::BadHeader,
                                "big-endian libxl stream: records are decoded as little-endian and will be wrong".into());
                        }
                        self.align = Some((self.offset % 8) as u8);
                        self.libxl_phase = LibxlPhase::Start;
                        self.state = State::Records(Layer::Libxl);
                    } else {
                        self.start_hunt();
                    }
                }
            }
            State::ImageHeader => {
                if self.fill(data, IMAGE_HEADER_LEN) {
                    let start = self.fixed_start();
                    self.fixed_len = 0;
                    if let Some(h) = libxc::ImageHeader::parse(&self.fixed) {
                        self.emit_item(
                            out,
                            start,
                            Layer::Libxc,
                            ItemKind::ImageHeader,
                            24,
                            Info::ImageHeader(h),
                        );
                        if !matches!(h.version, 2 | 3) {
                            self.diag(
                                out,
                                Severity::Error,
                                start + 12,
                                DiagKind::BadHeader,
                                format!("libxc image version {} (expected 2 or 3)", h.version),
                            );
                        }
                        if h.big_endian() {
                            self.diag(out, Severity::Error, start + 16, DiagKind::BadHeader,
                                "big-endian libxc stream: records are decoded as little-endian and will be wrong".into());
                        }
                        self.libxc_version = Some(h.version);
                        self.static_end = false;
                        self.state = State::DomainHeader;
                    } else {
                        self.diag(
                            out,
                            Severity::Error,
                            start,
                            DiagKind::BadHeader,
                            "LIBXC_CONTEXT is not followed by a libxc image header".into(),
                        );
                        self.start_hunt();
                    }
                }
            }
            State::DomainHeader => {
                if self.fill(data, DOMAIN_HEADER_LEN) {
                    let start = self.fixed_start();
                    self.fixed_len = 0;
                    let Some(d) = libxc::DomainHeader::parse(&self.fixed) else {
                        return;
                    };
                    self.emit_item(
                        out,
                        start,
                        Layer::Libxc,
                        ItemKind::DomainHeader,
                        16,
                        Info::DomainHeader(d),
                    );
                    match d.page_size() {
                        Some(p) => self.page_size = p,
                        None => self.diag(
                            out,
                            Severity::Error,
                            start + 4,
                            DiagKind::BadHeader,
                            format!(
                                "page_shift {} is not sane; assuming 4096-byte pages",
                                d.page_shift
                            ),
                        ),
                    }
                    match d.guest_type {
                        libxc::GuestType::X86Pv => self.pv = Some(true),
                        libxc::GuestType::X86Hvm => self.pv = Some(false),
                        libxc::GuestType::Unknown(v) => self.diag(
                            out,
                            Severity::Warning,
                            start,
                            DiagKind::BadHeader,
                            format!("unknown guest type {v}"),
                        ),
                    }
                    self.align = Some((self.offset % 8) as u8);
                    self.state = State::Records(Layer::Libxc);
                }
            }
            State::Records(layer) => {
                if self.fill(data, RECORD_HEADER_LEN) {
                    let h = RecordHeader::parse(&self.fixed).unwrap_or(RecordHeader {
                        rtype: 0,
                        body_length: 0,
                    });
                    self.fixed_len = 0;
                    self.start_record(h, layer, out);
                }
            }
            State::Body => self.feed_body(data, out),
            State::Reverse => self.reverse_item(data, out),
            State::Text => self.text(data, out),
            State::Trailer => {
                let n = data
                    .len()
                    .min(Message::ClearedToUnpause.wire_len() - self.fixed_len);
                let probe_len = self.fixed_len + n;
                let mut probe = [0u8; 64];
                probe[..self.fixed_len].copy_from_slice(&self.fixed[..self.fixed_len]);
                probe[self.fixed_len..probe_len].copy_from_slice(&data[..n]);
                match xl::match_message(&probe[..probe_len], &[Message::ClearedToUnpause]) {
                    Match::None => {
                        self.fixed_len = 0;
                        self.state = State::Ended;
                    }
                    _ => {
                        self.fill(data, Message::ClearedToUnpause.wire_len());
                        if self.fixed_len == Message::ClearedToUnpause.wire_len() {
                            let start = self.fixed_start();
                            self.fixed_len = 0;
                            self.emit_message(out, start, Message::ClearedToUnpause, None);
                            self.state = State::Ended;
                        }
                    }
                }
            }
            State::Ended => {
                let at = self.offset;
                let n = data.len() as u64;
                self.diag(
                    out,
                    Severity::Warning,
                    at,
                    DiagKind::TrailingData,
                    format!("{n} bytes after the end of the stream"),
                );
                self.offset += n;
                *data = &[];
                self.state = State::Refused;
            }
            State::Hunting => self.hunt_step(data, out),
            State::Refused => {
                self.offset += data.len() as u64;
                *data = &[];
            }
        }
    }

    fn detect(&mut self, data: &mut &[u8], out: &mut Vec<Event>) {
        if self.dir == Direction::Reverse {
            self.state = State::Reverse;
            return;
        }
        if !self.fill(data, detect::NEEDED) {
            return;
        }
        let f: [u8; detect::NEEDED] = self.fixed[..detect::NEEDED].try_into().unwrap_or_default();
        match detect::sniff(&f) {
            Opening::XlHeader => self.state = State::SaveHeader,
            Opening::Libxl => self.state = State::LibxlHeader,
            Opening::Libxc => self.state = State::ImageHeader,
            Opening::Ssh => {
                self.diag(out, Severity::Error, 0, DiagKind::Unrecognised,
                    "this looks like SSH (xl's default transport), not a migration stream: it is encrypted and cannot be decoded; migrate with a plaintext transport (xl migrate -s) to inspect it".into());
                self.state = State::Refused;
            }
            Opening::XlBanner => {
                self.diag(out, Severity::Note, 0, DiagKind::Unrecognised,
                    "the stream starts with the xl receiver banner: decoding it as the reverse direction".into());
                self.back_channel = true;
                self.state = State::Reverse;
            }
            Opening::BackChannel => {
                self.diag(out, Severity::Note, 0, DiagKind::Unrecognised,
                    "the stream starts with a back-channel record: decoding it as a COLO back channel".into());
                self.back_channel = true;
                self.state = State::Reverse;
            }
            Opening::Other => {
                self.diag(out, Severity::Error, 0, DiagKind::Unrecognised, format!(
                    "not a migration stream v2: the first 8 bytes ({}) are neither \"LibxlFmt\", the libxc marker (0xff x 8) nor the xl save-file magic; a legacy (Xen <= 4.5) image is not decoded",
                    hex8(&f)));
                self.state = State::Refused;
            }
        }
    }

    fn finish_optional(&mut self, out: &mut Vec<Event>) {
        let Some(h) = self.save_header else { return };
        let start = self.optional_start - xl::SAVE_HEADER_LEN as u64;
        let wire = xl::SAVE_HEADER_LEN as u64 + u64::from(h.optional_data_len);
        let (config, problem) =
            if self.optional_lost > 0 || self.buf.len() < h.optional_data_len as usize {
                (
                    DomainConfig::default(),
                    Some(
                        "the domain config was lost in a capture gap or is over the 1 MiB cap"
                            .to_string(),
                    ),
                )
            } else {
                DomainConfig::parse(&h, &self.buf)
            };
        self.buf.clear();
        out.push(Event::Item(Item {
            offset: start,
            wire_len: wire,
            layer: Layer::Xl,
            kind: ItemKind::SaveHeader,
            body_length: wire.min(u64::from(u32::MAX)) as u32,
            info: Info::SaveHeader { header: h, config },
            lost: self.optional_lost,
        }));
        if let Some(p) = problem {
            self.diag(
                out,
                Severity::Warning,
                start + 48,
                DiagKind::MalformedBody,
                p,
            );
        }
        if !h.stream_v2() {
            self.diag(out, Severity::Note, start + 36, DiagKind::BadHeader,
                "xl header says no stream v2 follows (mandatory flag bit 1 clear); looking at what does".into());
        }
        // AfterXl sniffs whether a libxl or a bare libxc stream follows.
        self.state = State::AfterXl;
        self.switch(out, Layer::Xl, Layer::Libxl);
    }

    fn start_record(&mut self, h: RecordHeader, mut layer: Layer, out: &mut Vec<Event>) {
        let offset = self.offset - RECORD_HEADER_LEN as u64;
        if h.body_length > MAX_RECORD_BODY {
            self.diag(out, Severity::Error, offset, DiagKind::OversizedRecord, format!(
                "record type {:#x} claims a {}-byte body, over the 128 MiB limit: the stream is corrupt or out of sync; looking for the next record",
                h.rtype, h.body_length));
            self.start_hunt();
            return;
        }
        let checkpoint_state = LibxlType::CheckpointState;
        let is_checkpoint_state =
            h.rtype == checkpoint_state.to_u32() && checkpoint_state.length().allows(h.body_length);
        if self.state == State::Records(Layer::Libxl)
            && self.libxl_phase == LibxlPhase::AfterCheckpointEnd
            && !is_checkpoint_state
        {
            // Remus: the next checkpoint's libxc records follow CHECKPOINT_END directly.
            self.switch_at(out, offset, Layer::Libxl, Layer::Libxc);
            layer = Layer::Libxc;
            self.state = State::Records(Layer::Libxc);
        }
        let Some(rtype) = RecordType::of(layer, h.rtype) else {
            return;
        };
        if let Some(want) = rtype
            .spec()
            .and_then(|s| s.impossible_length(h.body_length))
        {
            // Its length is fixed by the format: the header is damaged, and
            // trusting its length would swallow the records after it.
            self.diag(out, Severity::Error, offset, DiagKind::MalformedBody, format!(
                "{} {} claims a {}-byte body but {want}: the header is corrupt or the stream is out of sync; looking for the next record",
                rtype.layer(), rtype.name(), h.body_length));
            self.start_hunt();
            return;
        }
        if let Some(why) = self.impossible_type(rtype, h.rtype) {
            // Trusting this header's length would swallow what follows.
            self.diag(out, Severity::Error, offset, DiagKind::MalformedBody, format!(
                "{} record type {:#010x} ({} bytes): {why}; the header is corrupt or the stream is out of sync; looking for the next record",
                rtype.layer(), h.rtype, h.body_length));
            self.start_hunt();
            return;
        }
        self.check_allowed(rtype, offset, &h, out);
        if !rtype.is_known() {
            let optional = h.rtype & OPTIONAL_BIT != 0;
            self.diag(
                out,
                if optional {
                    Severity::Note
                } else {
                    Severity::Warning
                },
                offset,
                DiagKind::UnknownRecord,
                format!(
                    "unknown {} {} record type {:#010x} ({} bytes) skipped",
                    if optional { "optional" } else { "mandatory" },
                    layer,
                    h.rtype,
                    h.body_length
                ),
            );
        }
        let mode = match rtype {
            RecordType::Libxc(LibxcType::PageData)
            | RecordType::Libxc(LibxcType::CheckpointDirtyPfnList) => Mode::Pfns,
            _ if h.body_length <= MAX_INSPECT_BODY => Mode::Buffer,
            _ => {
                self.diag(
                    out,
                    Severity::Note,
                    offset,
                    DiagKind::NotInspected,
                    format!(
                    "{} body of {} bytes is over the {} MiB inspection cap: skipped, not decoded",
                    rtype.name(), h.body_length, MAX_INSPECT_BODY >> 20),
                );
                Mode::Skip
            }
        };
        self.buf.clear();
        self.body = Some(Body {
            offset,
            layer,
            rtype,
            body_length: h.body_length,
            consumed: 0,
            pad_consumed: 0,
            bad_padding: false,
            mode,
            lost: 0,
            info: None,
            pfns: PfnParser::new(
                rtype == RecordType::Libxc(LibxcType::PageData),
                h.body_length,
            ),
            carry: Vec::new(),
        });
        self.state = State::Body;
        if h.body_length == 0 {
            self.complete_record(out);
        }
    }

    fn switch_at(&mut self, out: &mut Vec<Event>, offset: u64, from: Layer, to: Layer) {
        out.push(Event::LayerSwitch { offset, from, to });
    }

    /// Flags records the section-5 state machine does not allow here, and
    /// infers STATIC_DATA_END for version 2 streams.
    /// Why a record of this type cannot be in this stream at all: a type
    /// number no Xen could write (far beyond the defined ones), or a PV
    /// record in an HVM stream and the reverse.
    fn impossible_type(&self, rtype: RecordType, raw: u32) -> Option<&'static str> {
        if !rtype.is_known() && raw & !OPTIONAL_BIT > 0xffff {
            return Some("not a type number any Xen writes");
        }
        let RecordType::Libxc(t) = rtype else {
            return None;
        };
        let guest = t.spec().map_or(Guest::Any, |s| s.guest);
        match (self.pv, guest) {
            (Some(false), Guest::Pv) => Some("a PV record in an HVM stream"),
            (Some(true), Guest::Hvm) => Some("an HVM record in a PV stream"),
            _ => None,
        }
    }

    fn check_allowed(
        &mut self,
        rtype: RecordType,
        offset: u64,
        h: &RecordHeader,
        out: &mut Vec<Event>,
    ) {
        use LibxcType as C;
        use LibxlType as L;
        let unexpected = |why: &str| Some(why.to_string());
        let stream = rtype.spec().map(|s| s.stream);
        let on_back_channel = stream.is_some_and(Stream::on_back_channel);
        const BACK_CHANNEL_ONLY: &str =
            "only CHECKPOINT_STATE and CHECKPOINT_DIRTY_PFN_LIST belong on the back channel";
        let problem = match rtype {
            RecordType::Libxl(t) => {
                let phase = self.libxl_phase;
                match t {
                    _ if phase == LibxlPhase::Unknown => None,
                    _ if self.back_channel || self.dir == Direction::Reverse => {
                        (!on_back_channel).then(|| BACK_CHANNEL_ONLY.to_string())
                    }
                    L::LibxcContext if phase != LibxlPhase::Start => unexpected("a second LIBXC_CONTEXT (checkpoints continue the libxc stream without one)"),
                    L::EmulatorXenstoreData | L::EmulatorContext
                        if !matches!(phase, LibxlPhase::AfterLibxcEnd | LibxlPhase::AfterCheckpoint) =>
                    {
                        unexpected("emulator records come after libxc END or CHECKPOINT")
                    }
                    L::CheckpointEnd if phase != LibxlPhase::AfterCheckpoint => unexpected("CHECKPOINT_END without a preceding libxc CHECKPOINT"),
                    L::End if phase != LibxlPhase::AfterLibxcEnd => unexpected("libxl END before the libxc stream ended"),
                    L::CheckpointState if phase != LibxlPhase::AfterCheckpointEnd => unexpected("CHECKPOINT_STATE in the middle of a checkpoint"),
                    _ => None,
                }
            }
            RecordType::Libxc(t) => {
                if self.dir == Direction::Reverse || self.back_channel {
                    (!on_back_channel).then(|| BACK_CHANNEL_ONLY.to_string())
                } else {
                    let v3 = self.libxc_version == Some(3);
                    if !self.static_end && matches!(t, C::PageData | C::X86PvP2mFrames) {
                        let first_bulk = if self.pv == Some(true) {
                            t == C::X86PvP2mFrames
                        } else {
                            t == C::PageData
                        };
                        if self.libxc_version == Some(2) && first_bulk {
                            self.static_end = true;
                            out.push(Event::StaticDataEndInferred { offset });
                        } else if v3 {
                            self.static_end = true;
                            self.diag(
                                out,
                                Severity::Warning,
                                offset,
                                DiagKind::UnexpectedRecord,
                                format!(
                                    "{} before STATIC_DATA_END in a version 3 stream",
                                    t.name()
                                ),
                            );
                        }
                    }
                    match t {
                        C::StaticDataEnd if self.libxc_version == Some(2) => {
                            unexpected("STATIC_DATA_END in a version 2 stream")
                        }
                        C::StaticDataEnd if self.static_end => {
                            unexpected("a second STATIC_DATA_END")
                        }
                        _ if t.is_static() && self.static_end && self.libxc_version.is_some() => {
                            unexpected("static data after STATIC_DATA_END")
                        }
                        _ if stream == Some(Stream::BackChannel) => {
                            Some(format!("{} belongs on the back channel", t.name()))
                        }
                        _ => None,
                    }
                }
            }
        };
        if let Some(p) = problem {
            self.diag(
                out,
                Severity::Warning,
                offset,
                DiagKind::UnexpectedRecord,
                format!(
                    "{} {} ({} bytes) not expected here: {p}",
                    rtype.layer(),
                    rtype.name(),
                    h.body_length
                ),
            );
        }
    }

    fn feed_body(&mut self, data: &mut &[u8], out: &mut Vec<Event>) {
        let Some(b) = self.body.as_mut() else {
            self.state = State::Hunting;
            return;
        };
        let body_left = u64::from(b.body_length) - b.consumed;
        if body_left > 0 {
            let n = body_left.min(data.len() as u64) as usize;
            let chunk = &data[..n];
            match b.mode {
                Mode::Skip => {
                    if self.dir == Direction::Forward && !self.back_channel {
                        // Body position of chunk[0] and of carry[0].
                        let pos = b.consumed as usize;
                        let carry_pos = pos - b.carry.len();
                        let mut joined = b.carry.clone();
                        joined
                            .extend_from_slice(&chunk[..chunk.len().min(COLO_BOUNDARY.len() - 1)]);
                        let found = find_colo_boundary_at(&joined, carry_pos, 0)
                            .filter(|&q| q < b.carry.len())
                            .map(|q| (carry_pos + q, [&b.carry[q..], chunk].concat()))
                            .or_else(|| {
                                find_colo_boundary_at(chunk, pos, 0)
                                    .map(|q| (pos + q, chunk[q..].to_vec()))
                            });
                        if let Some((q, rest)) = found {
                            self.resume_at_colo_boundary(q, rest, out);
                            *data = &data[n..];
                            return;
                        }
                        // Keep the last 23 bytes of carry + chunk.
                        let want = COLO_BOUNDARY.len() - 1;
                        if chunk.len() >= want {
                            b.carry.clear();
                            b.carry.extend_from_slice(&chunk[chunk.len() - want..]);
                        } else {
                            b.carry.extend_from_slice(chunk);
                            let excess = b.carry.len().saturating_sub(want);
                            b.carry.drain(..excess);
                        }
                    }
                }
                Mode::Pfns => {
                    let had_count = b.pfns.entries_end.is_some();
                    b.pfns.feed(chunk, b.body_length);
                    if b.pfns.page_data && !had_count && b.pfns.entries_end.is_some() {
                        // The count is known: the body holds its entries and
                        // at most one page per entry, or the length is wrong
                        // (trusting it would swallow the records after it).
                        let count = u64::from(le_u32(&b.pfns.head, 0));
                        let max = 8 + count * (8 + u64::from(self.page_size));
                        let len = u64::from(b.body_length);
                        if b.pfns.bad_count || len > max {
                            let offset = b.offset;
                            self.diag(out, Severity::Error, offset, DiagKind::MalformedBody, format!(
                                "PAGE_DATA claims a {len}-byte body but its count of {count} pfn entries allows {} to {max}: the header is corrupt or the stream is out of sync; looking for the next record",
                                8 + 8 * count));
                            self.start_hunt();
                            return;
                        }
                    }
                    if !b.pfns.page_data && b.pfns.summary.descents > 0 {
                        // A dirty pfn list is ascending: a descent means its
                        // length was wrong and it swallowed the records after
                        // it. Hunt from the start of this chunk.
                        let (offset, len, at) = (b.offset, b.body_length, b.consumed);
                        self.diag(out, Severity::Error, offset, DiagKind::MalformedBody, format!(
                            "CHECKPOINT_DIRTY_PFN_LIST claims {len} bytes but its pfns stop ascending after {at} of them: the length is wrong or the stream is out of sync; looking for the next record"));
                        self.start_hunt();
                        return;
                    }
                }
                Mode::Buffer => {
                    let whole = b.consumed == 0 && n as u64 == body_left;
                    let from = if whole {
                        0
                    } else {
                        let from = self.buf.len().saturating_sub(COLO_BOUNDARY.len() - 1);
                        self.buf.extend_from_slice(chunk);
                        from
                    };
                    let body: &[u8] = if whole { chunk } else { &self.buf };
                    if self.dir == Direction::Forward && !self.back_channel {
                        if let Some(q) = find_colo_boundary(body, from) {
                            let rest = body[q..].to_vec();
                            self.resume_at_colo_boundary(q, rest, out);
                            *data = &data[n..];
                            return;
                        }
                    }
                    if whole {
                        // Whole body in this slice: decode without copying.
                        b.info = Some(Info::from_body(b.rtype, chunk, self.page_size));
                    } else if self.buf.len() as u64 == u64::from(b.body_length) {
                        b.info = Some(Info::from_body(b.rtype, &self.buf, self.page_size));
                        self.buf.clear();
                    }
                }
            }
            b.consumed += n as u64;
            self.offset += n as u64;
            *data = &data[n..];
        }
        let pad = padding(b.body_length);
        if b.consumed == u64::from(b.body_length) && b.pad_consumed < pad {
            let n = ((pad - b.pad_consumed) as usize).min(data.len());
            if data[..n].iter().any(|&x| x != 0) {
                b.bad_padding = true;
            }
            b.pad_consumed += n as u32;
            self.offset += n as u64;
            *data = &data[n..];
        }
        if b.consumed == u64::from(b.body_length) && b.pad_consumed == pad {
            self.complete_record(out);
        }
    }

    /// CHECKPOINT_END and NEW were found at body position `q` of the record
    /// being read: its length is corrupt. Decoding goes on from that
    /// CHECKPOINT_END with `rest` (the bytes from it that were pushed).
    fn resume_at_colo_boundary(&mut self, q: usize, rest: Vec<u8>, out: &mut Vec<Event>) {
        let Some(b) = self.body.take() else { return };
        self.diag(out, Severity::Error, b.offset, DiagKind::MalformedBody, format!(
            "{} claims a {}-byte body but CHECKPOINT_END and CHECKPOINT_STATE NEW follow its first {q} bytes: the length is corrupt; decoding goes on from there",
            b.rtype.name(), b.body_length));
        let at = b.offset + RECORD_HEADER_LEN as u64 + q as u64;
        out.push(Event::Resync {
            offset: at,
            skipped: 0,
            anchor: Anchor::Record(Layer::Libxl),
        });
        if b.layer == Layer::Libxc {
            self.switch_at(out, at, Layer::Libxc, Layer::Libxl);
        }
        self.buf.clear();
        self.offset = at;
        self.replay = rest;
        self.libxl_phase = LibxlPhase::AfterCheckpoint;
        self.state = State::Records(Layer::Libxl);
    }

    fn complete_record(&mut self, out: &mut Vec<Event>) {
        let Some(b) = self.body.take() else { return };
        self.buf.clear();
        let mut info = match b.mode {
            Mode::Pfns => {
                let p = b.pfns;
                if p.page_data {
                    let expected = p.entries_end.unwrap_or(8)
                        + p.summary.data_pages * u64::from(self.page_size);
                    if p.bad_count {
                        self.diag(
                            out,
                            Severity::Error,
                            b.offset,
                            DiagKind::MalformedBody,
                            format!(
                                "PAGE_DATA count {} does not fit its {}-byte body",
                                le_u32(&p.head, 0),
                                b.body_length
                            ),
                        );
                    } else if b.lost == 0 && expected != u64::from(b.body_length) {
                        self.diag(out, Severity::Error, b.offset, DiagKind::MalformedBody, format!(
                            "PAGE_DATA body is {} bytes but its {} pfn entries ({} with data) need {expected}",
                            b.body_length, p.summary.count, p.summary.data_pages));
                    }
                    if p.summary.reserved_set > 0 {
                        self.diag(
                            out,
                            Severity::Warning,
                            b.offset,
                            DiagKind::MalformedBody,
                            format!(
                                "{} PAGE_DATA entries have reserved bits 52-59 set",
                                p.summary.reserved_set
                            ),
                        );
                    }
                    Info::PageData(Box::new(p.summary))
                } else {
                    if b.body_length % 8 != 0 {
                        self.diag(
                            out,
                            Severity::Error,
                            b.offset,
                            DiagKind::MalformedBody,
                            format!(
                                "CHECKPOINT_DIRTY_PFN_LIST body of {} bytes is not a multiple of 8",
                                b.body_length
                            ),
                        );
                    }
                    if p.summary.descents > 0 {
                        self.diag(out, Severity::Warning, b.offset, DiagKind::MalformedBody, format!(
                            "CHECKPOINT_DIRTY_PFN_LIST is not in ascending order ({} entries out of order)", p.summary.descents));
                    }
                    Info::DirtyPfnList(Box::new(p.summary))
                }
            }
            Mode::Skip if b.lost > 0 => Info::Malformed {
                error: format!("{} bytes lost in a capture gap", b.lost),
            },
            Mode::Skip => Info::NotInspected {
                len: u64::from(b.body_length),
            },
            Mode::Buffer => b.info.unwrap_or(Info::Empty),
        };
        if let Info::Malformed { error } = &info {
            if b.lost == 0 {
                self.diag(
                    out,
                    Severity::Error,
                    b.offset,
                    DiagKind::MalformedBody,
                    format!("{}: {error}", b.rtype.name()),
                );
            }
        }
        if b.bad_padding {
            self.diag(
                out,
                Severity::Warning,
                b.offset,
                DiagKind::NonZeroPadding,
                format!("{} padding bytes are not zero", b.rtype.name()),
            );
        }
        if b.lost > 0 {
            if let Info::PageData(_) | Info::DirtyPfnList(_) = info {
            } else if !matches!(info, Info::Malformed { .. }) {
                info = Info::Malformed {
                    error: format!("{} bytes lost in a capture gap", b.lost),
                };
            }
        }
        let control = match &info {
            Info::CheckpointState { control_id } => Some(*control_id),
            _ => None,
        };
        out.push(Event::Item(Item {
            offset: b.offset,
            wire_len: RECORD_HEADER_LEN as u64
                + u64::from(b.body_length)
                + u64::from(padding(b.body_length)),
            layer: b.layer,
            kind: ItemKind::Record(b.rtype),
            body_length: b.body_length,
            info,
            lost: b.lost,
        }));
        self.after_record(b.rtype, control, out);
    }

    /// Layer transitions of PROTOCOL.md section 5.
    fn after_record(
        &mut self,
        rtype: RecordType,
        control: Option<ControlId>,
        out: &mut Vec<Event>,
    ) {
        use LibxcType as C;
        use LibxlType as L;
        if self.dir == Direction::Reverse || self.back_channel {
            if control.is_some() {
                self.colo = true;
            }
            self.state = State::Reverse;
            return;
        }
        self.state = State::Records(rtype.layer());
        match rtype {
            RecordType::Libxl(L::LibxcContext) => {
                self.switch(out, Layer::Libxl, Layer::Libxc);
                self.state = State::ImageHeader;
            }
            RecordType::Libxl(L::End) if self.checkpointed => {
                // Remus and COLO streams never end with END (PROTOCOL.md
                // section 5): this is a damaged record, not the end.
                let at = self.offset.saturating_sub(RECORD_HEADER_LEN as u64);
                self.diag(out, Severity::Error, at, DiagKind::UnexpectedRecord,
                    "libxl END in a checkpointed stream, which never sends one: a damaged record; decoding goes on".into());
            }
            RecordType::Libxl(L::End) => {
                self.state = if self.xl {
                    State::Trailer
                } else {
                    State::Ended
                };
            }
            RecordType::Libxl(L::CheckpointEnd) => {
                self.checkpointed = true;
                self.libxl_phase = LibxlPhase::AfterCheckpointEnd;
            }
            RecordType::Libxl(L::CheckpointState) => {
                self.colo = true;
                self.checkpointed = true;
                if control == Some(ControlId::New) {
                    self.switch(out, Layer::Libxl, Layer::Libxc);
                    self.state = State::Records(Layer::Libxc);
                    self.libxl_phase = LibxlPhase::AfterCheckpointEnd;
                }
            }
            RecordType::Libxc(C::End) => {
                self.switch(out, Layer::Libxc, Layer::Libxl);
                self.libxl_phase = LibxlPhase::AfterLibxcEnd;
                self.state = State::Records(Layer::Libxl);
            }
            RecordType::Libxc(C::Checkpoint) => {
                self.checkpointed = true;
                self.switch(out, Layer::Libxc, Layer::Libxl);
                self.libxl_phase = LibxlPhase::AfterCheckpoint;
                self.state = State::Records(Layer::Libxl);
            }
            RecordType::Libxc(C::StaticDataEnd) => self.static_end = true,
            _ => {}
        }
    }

    fn emit_message(&mut self, out: &mut Vec<Event>, start: u64, m: Message, result: Option<u8>) {
        let kind = match m {
            Message::Banner => ItemKind::Banner,
            Message::ReadyToUnpause => ItemKind::ReadyToUnpause,
            Message::ClearedToUnpause => ItemKind::ClearedToUnpause,
            Message::UnpauseResult => ItemKind::UnpauseResult,
        };
        let info = match result {
            Some(r) => Info::UnpauseResult { result: r },
            None => Info::XlMessage {
                message: m,
                text: escape_bytes(m.bytes().strip_suffix(&[0]).unwrap_or(m.bytes())),
            },
        };
        self.emit_item(out, start, Layer::Xl, kind, m.wire_len() as u64, info);
    }

    /// Reverse direction: an xl message, a back-channel record, or text.
    fn reverse_item(&mut self, data: &mut &[u8], out: &mut Vec<Event>) {
        // Look at up to 8 bytes before deciding.
        let have = self.fixed_len;
        let k = data.len().min(8usize.saturating_sub(have));
        let mut probe = [0u8; 64];
        probe[..have].copy_from_slice(&self.fixed[..have]);
        probe[have..have + k].copy_from_slice(&data[..k]);
        let probe = &probe[..have + k];
        if xl::match_message(probe, &Message::ALL) != Match::None {
            // Fill up to the shortest message that still matches.
            let candidates: Vec<Message> = Message::ALL
                .iter()
                .copied()
                .filter(|m| {
                    let t = m.bytes();
                    let n = probe.len().min(t.len());
                    probe[..n] == t[..n]
                })
                .collect();
            let want = candidates.iter().map(|m| m.wire_len()).min().unwrap_or(8);
            if !self.fill(data, want) {
                return;
            }
            let start = self.fixed_start();
            match xl::match_message(&self.fixed[..self.fixed_len], &candidates) {
                Match::Full(m) => {
                    let result = (m == Message::UnpauseResult).then(|| self.fixed[want - 1]);
                    self.fixed_len = 0;
                    self.xl = true;
                    self.emit_message(out, start, m, result);
                    if let Some(r) = result.filter(|&r| r != 0) {
                        self.diag(
                            out,
                            Severity::Warning,
                            start,
                            DiagKind::Truncated,
                            format!("the receiver reports that unpausing failed (result {r})"),
                        );
                    }
                }
                _ => self.start_text(),
            }
            return;
        }
        if probe.len() < 8 {
            self.fill(data, 8);
            return;
        }
        if let Some((h, layer)) = back_channel_header(probe) {
            self.fill(data, 8);
            self.fixed_len = 0;
            self.start_record(h, layer, out);
            return;
        }
        if is_text(probe[0]) {
            self.start_text();
            return;
        }
        let at = self.offset - have as u64;
        self.diag(out, Severity::Warning, at, DiagKind::Resync,
            "reverse direction: bytes that are neither an xl message nor a back-channel record; looking for the next record".into());
        let held = self.fixed[..have].to_vec();
        self.offset -= have as u64;
        self.start_hunt();
        self.replay = held;
    }

    fn start_text(&mut self) {
        self.text_start = self.fixed_start();
        self.buf.clear();
        self.buf.extend_from_slice(&self.fixed[..self.fixed_len]);
        self.fixed_len = 0;
        self.state = State::Text;
    }

    fn text(&mut self, data: &mut &[u8], out: &mut Vec<Event>) {
        let mut i = 0;
        let mut done = false;
        while i < data.len() && self.buf.len() < MAX_TEXT_ITEM {
            let b = data[i];
            if !is_text(b) && b != 0 {
                done = true;
                break;
            }
            self.buf.push(b);
            i += 1;
            if b == b'\n' || b == 0 {
                done = true;
                break;
            }
        }
        self.offset += i as u64;
        *data = &data[i..];
        if done || self.buf.len() >= MAX_TEXT_ITEM {
            self.flush_text(out);
        }
    }

    fn flush_text(&mut self, out: &mut Vec<Event>) {
        let text = escape_bytes(&self.buf);
        let len = self.buf.len() as u64;
        self.buf.clear();
        self.state = State::Reverse;
        if len > 0 {
            let start = self.text_start;
            self.emit_item(
                out,
                start,
                Layer::Xl,
                ItemKind::ReceiverText,
                len,
                Info::ReceiverText { text },
            );
        }
    }

    fn hunt_step(&mut self, data: &mut &[u8], out: &mut Vec<Event>) {
        let room = HUNT_WINDOW - self.hunt.len();
        let n = room.min(data.len());
        self.hunt.extend_from_slice(&data[..n]);
        *data = &data[n..];
        self.offset += n as u64;
        self.scan(out);
    }

    /// Looks for an anchor in the hunt buffer; on success replays the bytes
    /// from it through the state machine.
    fn scan(&mut self, out: &mut Vec<Event>) {
        let mut p = 0usize;
        let full = self.hunt.len() >= HUNT_WINDOW || self.final_scan;
        // The first candidate that needs more bytes to judge; past it only a
        // CHECKPOINT_STATE record (16 bytes that check themselves) is taken,
        // so that a sparse back channel does not wait for a full window.
        let mut pending: Option<usize> = None;
        while p + 8 <= self.hunt.len() || (full && p < self.hunt.len()) {
            let at = self.hunt_start + p as u64;
            if let Some(a) = self.align {
                if (at % 8) as u8 != a {
                    p += 1;
                    continue;
                }
            }
            if pending.is_some() && !is_state_record(&self.hunt[p..]) {
                p += 1;
                continue;
            }
            let verdict = evaluate(&self.hunt[p..], self.dir, self.back_channel);
            match verdict {
                Verdict::NeedMore if !full => {
                    pending.get_or_insert(p);
                    p += 1;
                }
                Verdict::Accept(anchor, next) if self.last_anchor != Some(at) => {
                    self.last_anchor = Some(at);
                    let skipped = self.hunt_skipped + p as u64;
                    out.push(Event::Resync {
                        offset: at,
                        skipped,
                        anchor,
                    });
                    if skipped > 0 {
                        let began = self.hunt_began;
                        self.diag(out, Severity::Warning, began, DiagKind::Resync,
                            format!("skipped {skipped} bytes to the next record boundary at offset {at}"));
                    }
                    let bytes = mem::take(&mut self.hunt);
                    self.offset = at;
                    self.replay = bytes[p..].to_vec();
                    self.hunt = bytes;
                    self.hunt.clear();
                    self.enter(next, at);
                    return;
                }
                _ => p += 1,
            }
        }
        // Nothing before p (or the pending candidate) can start a record.
        let drop = pending.unwrap_or(p).min(self.hunt.len());
        self.hunt.drain(..drop);
        self.hunt_start += drop as u64;
        self.hunt_skipped += drop as u64;
    }

    fn enter(&mut self, next: Resume, at: u64) {
        self.fixed_len = 0;
        self.body = None;
        self.state = match next {
            Resume::LibxlHeader => State::LibxlHeader,
            Resume::ImageHeader => State::ImageHeader,
            Resume::SaveHeader => State::SaveHeader,
            Resume::Reverse => State::Reverse,
            Resume::Trailer => State::Trailer,
            Resume::Records(layer) => {
                self.align = Some((at % 8) as u8);
                // Unknown until the next landmark record sets it.
                self.libxl_phase = LibxlPhase::Unknown;
                State::Records(layer)
            }
        };
    }
}

fn hex8(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn is_text(b: u8) -> bool {
    b.is_ascii_graphic() || matches!(b, b' ' | b'\n' | b'\r' | b'\t')
}

/// CHECKPOINT_END then CHECKPOINT_STATE NEW, as every COLO checkpoint after
/// the first is entered (PROTOCOL.md sections 3 and 6): 24 bytes no device
/// state or CPU context holds at a record boundary in practice.
const COLO_BOUNDARY: [u8; 24] = [
    4, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

/// Where, at an 8-byte boundary of `body` at or after `from`, CHECKPOINT_END
/// and NEW begin.
fn find_colo_boundary(body: &[u8], from: usize) -> Option<usize> {
    find_colo_boundary_at(body, 0, from)
}

/// As [`find_colo_boundary`] for `bytes` that sit at body position `pos`:
/// the index in `bytes`, at or after `from`, of a boundary at a body
/// position that is a multiple of 8.
fn find_colo_boundary_at(bytes: &[u8], pos: usize, from: usize) -> Option<usize> {
    let mut q = from + (8 - (pos + from) % 8) % 8;
    while q + COLO_BOUNDARY.len() <= bytes.len() {
        if bytes[q..q + COLO_BOUNDARY.len()] == COLO_BOUNDARY {
            return Some(q);
        }
        q += 8;
    }
    None
}

/// The 16 bytes of a CHECKPOINT_STATE record (PROTOCOL.md section 3):
/// type 5, body length 4 (or 8), a control id 0-3, zero padding.
fn is_state_record(b: &[u8]) -> bool {
    let Some(h) = RecordHeader::parse(b) else {
        return false;
    };
    let t = LibxlType::CheckpointState;
    b.len() >= 16
        && h.rtype == t.to_u32()
        && t.length().allows(h.body_length)
        && b[8] <= ControlId::SvmResumed.to_u32() as u8
        && b[9..16].iter().all(|&x| x == 0)
}

/// Where the decoder resumes after an anchor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resume {
    LibxlHeader,
    ImageHeader,
    SaveHeader,
    Reverse,
    Trailer,
    Records(Layer),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Accept(Anchor, Resume),
    NeedMore,
    Reject,
}

/// How much a candidate record at the start of a buffer is worth as evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Evidence {
    /// Self-validating: accept on its own.
    Strong,
    /// Plausible framing; needs a following record to confirm. Holds the
    /// offset of the next header and the layer it is in.
    Weak(usize, Layer),
    NeedMore,
    No,
}

/// Judges a re-synchronisation candidate at the start of `b`.
fn evaluate(b: &[u8], dir: Direction, back_channel: bool) -> Verdict {
    let prefix = |pat: &[u8]| {
        let n = b.len().min(pat.len());
        b[..n] == pat[..n]
    };
    if dir == Direction::Reverse || back_channel {
        for m in Message::ALL {
            if prefix(m.bytes()) {
                return if b.len() >= m.wire_len() {
                    Verdict::Accept(Anchor::XlMessage, Resume::Reverse)
                } else {
                    Verdict::NeedMore
                };
            }
        }
        return match record_evidence(b, Layer::Libxl, true) {
            Evidence::Strong => Verdict::Accept(Anchor::Record(Layer::Libxl), Resume::Reverse),
            Evidence::NeedMore => Verdict::NeedMore,
            _ => match record_evidence(b, Layer::Libxc, true) {
                Evidence::Strong => Verdict::Accept(Anchor::Record(Layer::Libxc), Resume::Reverse),
                Evidence::NeedMore => Verdict::NeedMore,
                Evidence::Weak(next, _) => match chain(&b[next..], true, 3) {
                    Verdict::Accept(..) => {
                        Verdict::Accept(Anchor::Record(Layer::Libxc), Resume::Reverse)
                    }
                    v => v,
                },
                Evidence::No => Verdict::Reject,
            },
        };
    }
    if prefix(LIBXL_IDENT) {
        if b.len() < 16 {
            return Verdict::NeedMore;
        }
        if libxl::Header::parse(b).is_some_and(|h| h.version == 2) {
            return Verdict::Accept(Anchor::LibxlHeader, Resume::LibxlHeader);
        }
    }
    if prefix(&LIBXC_IMAGE_START) {
        if b.len() < 24 {
            return Verdict::NeedMore;
        }
        if libxc::ImageHeader::parse(b).is_some_and(|h| matches!(h.version, 2 | 3)) {
            return Verdict::Accept(Anchor::ImageHeader, Resume::ImageHeader);
        }
    }
    if prefix(XL_SAVE_MAGIC) {
        return if b.len() >= 48 {
            Verdict::Accept(Anchor::SaveHeader, Resume::SaveHeader)
        } else {
            Verdict::NeedMore
        };
    }
    if prefix(xl::CLEARED_TO_UNPAUSE) {
        return if b.len() >= xl::CLEARED_TO_UNPAUSE.len() {
            Verdict::Accept(Anchor::XlMessage, Resume::Trailer)
        } else {
            Verdict::NeedMore
        };
    }
    let mut need_more = false;
    for layer in [Layer::Libxc, Layer::Libxl] {
        match record_evidence(b, layer, false) {
            Evidence::Strong => {
                return Verdict::Accept(Anchor::Record(layer), Resume::Records(layer))
            }
            Evidence::Weak(next, next_layer) => match chain_in(&b[next..], next_layer, 3) {
                Verdict::Accept(..) => {
                    return Verdict::Accept(Anchor::Record(layer), Resume::Records(layer))
                }
                Verdict::NeedMore => need_more = true,
                Verdict::Reject => {}
            },
            Evidence::NeedMore => need_more = true,
            Evidence::No => {}
        }
    }
    if need_more {
        Verdict::NeedMore
    } else {
        Verdict::Reject
    }
}

fn chain(b: &[u8], back: bool, depth: u32) -> Verdict {
    if back {
        for layer in [Layer::Libxl, Layer::Libxc] {
            match record_evidence(b, layer, true) {
                Evidence::Strong => return Verdict::Accept(Anchor::Record(layer), Resume::Reverse),
                Evidence::NeedMore => return Verdict::NeedMore,
                _ => {}
            }
        }
        if b.len() >= 8 && Message::ALL.iter().any(|m| b.starts_with(&m.bytes()[..8])) {
            return Verdict::Accept(Anchor::XlMessage, Resume::Reverse);
        }
        let _ = depth;
        return if b.len() < 8 {
            Verdict::NeedMore
        } else {
            Verdict::Reject
        };
    }
    Verdict::Reject
}

/// Confirms a weak candidate: the record at `b` (in `layer`, or the other
/// layer for a transition) must lead to strong evidence within `depth` records.
fn chain_in(b: &[u8], layer: Layer, depth: u32) -> Verdict {
    if b.len() >= HUNT_WINDOW {
        return Verdict::Reject;
    }
    let layers = match layer {
        Layer::Libxc => [Layer::Libxc, Layer::Libxl],
        _ => [Layer::Libxl, Layer::Libxc],
    };
    let mut need_more = false;
    for l in layers {
        match record_evidence(b, l, false) {
            Evidence::Strong => return Verdict::Accept(Anchor::Record(l), Resume::Records(l)),
            Evidence::Weak(next, nl) if depth > 0 => match chain_in(&b[next..], nl, depth - 1) {
                Verdict::Accept(a, r) => return Verdict::Accept(a, r),
                Verdict::NeedMore => need_more = true,
                Verdict::Reject => {}
            },
            Evidence::NeedMore => need_more = true,
            _ => {}
        }
    }
    if need_more {
        Verdict::NeedMore
    } else {
        Verdict::Reject
    }
}

/// Evidence that a record of `layer` starts at `b`.
fn record_evidence(b: &[u8], layer: Layer, back: bool) -> Evidence {
    use LibxcType as C;
    use LibxlType as L;
    let Some(h) = RecordHeader::parse(b) else {
        return Evidence::NeedMore;
    };
    if h.body_length > MAX_RECORD_BODY {
        return Evidence::No;
    }
    let Some(rtype) = RecordType::of(layer, h.rtype) else {
        return Evidence::No;
    };
    let Some(spec) = rtype.spec() else {
        return Evidence::No;
    };
    let total = h.total_len();
    let body_len = h.body_length as usize;
    // The body (and padding) if it is in the buffer.
    let whole = (b.len() as u64 >= total).then(|| &b[8..8 + body_len]);
    let pad_ok = |b: &[u8]| b[8 + body_len..total as usize].iter().all(|&x| x == 0);
    match (back, rtype) {
        (_, RecordType::Libxl(L::CheckpointState)) => {
            if !spec.length.allows(h.body_length) {
                return Evidence::No;
            }
            if b.len() < 16 {
                return Evidence::NeedMore;
            }
            let id = le_u32(b, 8);
            let ok = b[12..16].iter().all(|&x| x == 0)
                && if back { (1..=3).contains(&id) } else { id == 0 };
            return if ok { Evidence::Strong } else { Evidence::No };
        }
        (true, RecordType::Libxc(C::CheckpointDirtyPfnList)) => {
            if !spec.length.allows(h.body_length) {
                return Evidence::No;
            }
            if h.body_length == 0 {
                return Evidence::Weak(8, Layer::Libxl);
            }
            let Some(body) = whole else {
                return if total as usize > HUNT_WINDOW {
                    Evidence::No
                } else {
                    Evidence::NeedMore
                };
            };
            let mut last = None;
            for c in body.chunks_exact(8) {
                let pfn = le_u64(c, 0);
                if pfn >= 1 << 40 || last.is_some_and(|l| pfn <= l) {
                    return Evidence::No;
                }
                last = Some(pfn);
            }
            return Evidence::Strong;
        }
        (true, _) => return Evidence::No,
        _ => {}
    }
    if let RecordType::Libxc(C::PageData) = rtype {
        if b.len() < 16 {
            return Evidence::NeedMore;
        }
        let count = le_u32(b, 8);
        if count == 0 || count > MAX_BATCH || le_u32(b, 12) != 0 {
            return Evidence::No;
        }
        let entries_end = 16 + 8 * count as usize;
        if body_len < entries_end - 8 || (body_len - (entries_end - 8)) % 4096 != 0 {
            return Evidence::No;
        }
        if b.len() < entries_end {
            return Evidence::NeedMore;
        }
        let mut data = 0usize;
        for c in b[16..entries_end].chunks_exact(8) {
            let e = PfnEntry(le_u64(c, 0));
            let t = e.page_type().0;
            if e.reserved_bits() != 0 || e.pfn() >= 1 << 40 || matches!(t, 5..=8) {
                return Evidence::No;
            }
            data += usize::from(e.page_type().carries_data());
        }
        return if body_len - (entries_end - 16) - 8 == data * 4096 {
            Evidence::Strong
        } else {
            Evidence::No
        };
    }
    if total as usize + 8 > HUNT_WINDOW || !spec.plausible_length(h.body_length) {
        return Evidence::No;
    }
    let Some(body) = whole else {
        return Evidence::NeedMore;
    };
    if !pad_ok(b) {
        return Evidence::No;
    }
    let next = total as usize;
    let weak = |l| Evidence::Weak(next, l);
    match rtype {
        RecordType::Libxl(t) => match t {
            L::End => Evidence::No,
            L::LibxcContext => {
                if body_len != 0 {
                    return Evidence::No;
                }
                match b.get(8..32) {
                    None => Evidence::NeedMore,
                    Some(ih) if libxc::ImageHeader::parse(ih).is_some() => Evidence::Strong,
                    Some(_) => Evidence::No,
                }
            }
            L::EmulatorXenstoreData | L::EmulatorContext => {
                if body_len < 8 || le_u32(body, 0) > 2 || le_u32(body, 4) > 16 {
                    return Evidence::No;
                }
                if t == L::EmulatorContext
                    && libxl::EmulatorContext::new_checked(body)
                        .is_ok_and(|c| c.qemu_version().is_some())
                {
                    return Evidence::Strong;
                }
                weak(Layer::Libxl)
            }
            L::CheckpointEnd if body_len == 0 => weak(Layer::Libxc),
            _ => Evidence::No,
        },
        RecordType::Libxc(t) => match t {
            C::End | C::PageData => Evidence::No,
            C::Checkpoint | C::StaticDataEnd | C::Verify if body_len != 0 => Evidence::No,
            C::Checkpoint => weak(Layer::Libxl),
            C::StaticDataEnd | C::Verify => weak(Layer::Libxc),
            C::HvmContext => {
                let Ok(c) = libxc::HvmContext::new_checked(body) else {
                    return Evidence::No;
                };
                let d: Vec<_> = c.descriptors().collect();
                let known = d.iter().all(|d| d.typecode <= 20);
                let ends = d.last().is_some_and(|d| d.typecode == 0 && d.length == 0);
                if d.len() >= 2 && known && ends {
                    Evidence::Strong
                } else {
                    Evidence::No
                }
            }
            C::HvmParams => match libxc::HvmParams::new_checked(body) {
                Ok(p) if p.count() > 0 && p.params().all(|(i, _)| i < 64) => Evidence::Strong,
                _ => Evidence::No,
            },
            C::X86TscInfo if body_len == 24 && le_u32(body, 20) == 0 && le_u32(body, 0) <= 3 => {
                weak(Layer::Libxc)
            }
            C::X86PvInfo
                if body_len == 8 && matches!(body[0], 4 | 8) && matches!(body[1], 3 | 4) =>
            {
                weak(Layer::Libxc)
            }
            C::X86CpuidPolicy if body_len > 0 && body_len % 24 == 0 => weak(Layer::Libxc),
            C::X86MsrPolicy if body_len > 0 && body_len % 16 == 0 => weak(Layer::Libxc),
            C::SharedInfo if body_len == 4096 => weak(Layer::Libxc),
            C::X86PvVcpuBasic | C::X86PvVcpuExtended | C::X86PvVcpuXsave | C::X86PvVcpuMsrs
                if body_len > 8 && le_u32(body, 0) < 4096 && le_u32(body, 4) == 0 =>
            {
                weak(Layer::Libxc)
            }
            C::X86PvP2mFrames
                if body_len >= 16 && body_len % 8 == 0 && le_u32(body, 0) <= le_u32(body, 4) =>
            {
                weak(Layer::Libxc)
            }
            _ => Evidence::No,
        },
    }
}
