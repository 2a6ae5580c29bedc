//! Record framing, the same in both layers (PROTOCOL.md §3, "Every record,
//! in both layers"): `u32 type | u32 body_length | body | zero padding to a
//! multiple of 8`.
//!
//! A header is checked against the 128 MiB limit and the record table's
//! length rule before its length is trusted (a wrong length would swallow
//! the records after it). A body is then buffered and decoded into an
//! [`Info`] (up to [`MAX_INSPECT_BODY`]), streamed through a [`PfnParser`]
//! (PAGE_DATA, dirty lists) or skipped, and the record completes when its
//! padding has passed.

use super::pfn::PfnParser;
use super::resync::{find_colo_boundary, find_colo_boundary_at, COLO_BOUNDARY};
use super::state::{Role, State};
use super::{diag, Decoder, MAX_INSPECT_BODY};
use crate::decode::event::{DiagKind, Event, Item, ItemKind, Severity};
use crate::decode::info::Info;
use crate::decode::wire::{
    le_u32, padding, Layer, LibxcType, RecordHeader, RecordType, MAX_RECORD_BODY, OPTIONAL_BIT,
    RECORD_HEADER_LEN,
};

/// What happens to a body's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Held (in the decoder's `buf` unless it arrives in one slice) and
    /// decoded whole.
    Buffer,
    /// PAGE_DATA or a dirty list: streamed through the pfn parser.
    Pfns,
    /// Over the inspection cap: counted, not held.
    Skip,
}

/// The record being read (the `Body` state's data).
#[derive(Debug)]
pub(super) struct Body {
    /// Stream offset of the record header.
    pub offset: u64,
    pub layer: Layer,
    pub rtype: RecordType,
    pub body_length: u32,
    /// Body bytes consumed (excluding padding).
    pub consumed: u64,
    pub pad_consumed: u32,
    pub bad_padding: bool,
    pub mode: Mode,
    /// Bytes of it lost in capture gaps.
    pub lost: u64,
    /// The decoded body, once whole.
    pub info: Option<Info>,
    pub pfns: PfnParser,
    /// The last bytes of a skipped body (fewer than [`COLO_BOUNDARY`]), to
    /// find that boundary across pushes without keeping the body.
    pub carry: Vec<u8>,
}

impl Body {
    /// Body and padding bytes still to come.
    pub fn remaining(&self) -> u64 {
        u64::from(self.body_length) - self.consumed
            + u64::from(padding(self.body_length) - self.pad_consumed)
    }
}

impl Decoder {
    /// Records: a record header, then its body.
    pub(super) fn record_header(&mut self, layer: Layer, data: &mut &[u8], out: &mut Vec<Event>) {
        if self.fill(data, RECORD_HEADER_LEN) {
            let h = RecordHeader::parse(&self.fixed).unwrap_or(RecordHeader {
                rtype: 0,
                body_length: 0,
            });
            self.fixed_len = 0;
            self.start_record(h, layer, out);
        }
    }

    /// A record header was read (its 8 bytes just before `self.offset`):
    /// check it, then read its body in the `Body` state.
    pub(super) fn start_record(&mut self, h: RecordHeader, layer: Layer, out: &mut Vec<Event>) {
        let offset = self.offset - RECORD_HEADER_LEN as u64;
        if h.body_length > MAX_RECORD_BODY {
            diag(out, Severity::Error, offset, DiagKind::OversizedRecord, format!(
                "record type {:#x} claims a {}-byte body, over the 128 MiB limit: the stream is corrupt or out of sync; looking for the next record",
                h.rtype, h.body_length));
            self.start_hunt();
            return;
        }
        let layer = self.remus_resumes(&h, layer, offset, out);
        let Some(rtype) = RecordType::of(layer, h.rtype) else {
            return;
        };
        if let Some(want) = rtype
            .spec()
            .and_then(|s| s.impossible_length(h.body_length))
        {
            // Its length is fixed by the format: the header is damaged, and
            // trusting its length would swallow the records after it.
            diag(out, Severity::Error, offset, DiagKind::MalformedBody, format!(
                "{} {} claims a {}-byte body but {want}: the header is corrupt or the stream is out of sync; looking for the next record",
                rtype.layer(), rtype.name(), h.body_length));
            self.start_hunt();
            return;
        }
        if let Some(why) = self.impossible_type(rtype, h.rtype) {
            // Trusting this header's length would swallow what follows.
            diag(out, Severity::Error, offset, DiagKind::MalformedBody, format!(
                "{} record type {:#010x} ({} bytes): {why}; the header is corrupt or the stream is out of sync; looking for the next record",
                rtype.layer(), h.rtype, h.body_length));
            self.start_hunt();
            return;
        }
        self.check_allowed(rtype, offset, &h, out);
        if !rtype.is_known() {
            let optional = h.rtype & OPTIONAL_BIT != 0;
            diag(
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
                diag(
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
        self.state = State::Body(Body {
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
        if h.body_length == 0 {
            self.complete_record(out);
        }
    }

    /// Body: the record's body, then its padding.
    pub(super) fn feed_body(&mut self, data: &mut &[u8], out: &mut Vec<Event>) {
        let State::Body(b) = &mut self.state else {
            return;
        };
        let body_left = u64::from(b.body_length) - b.consumed;
        if body_left > 0 {
            let n = body_left.min(data.len() as u64) as usize;
            let chunk = &data[..n];
            match b.mode {
                Mode::Skip => {
                    if self.role == Role::Migration {
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
                        let max = 8 + count * (8 + u64::from(self.libxc.page_size));
                        let len = u64::from(b.body_length);
                        if b.pfns.bad_count || len > max {
                            diag(out, Severity::Error, b.offset, DiagKind::MalformedBody, format!(
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
                        diag(out, Severity::Error, offset, DiagKind::MalformedBody, format!(
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
                    if self.role == Role::Migration {
                        if let Some(q) = find_colo_boundary(body, from) {
                            let rest = body[q..].to_vec();
                            self.resume_at_colo_boundary(q, rest, out);
                            *data = &data[n..];
                            return;
                        }
                    }
                    if whole {
                        // Whole body in this slice: decode without copying.
                        b.info = Some(Info::from_body(b.rtype, chunk, self.libxc.page_size));
                    } else if self.buf.len() as u64 == u64::from(b.body_length) {
                        b.info = Some(Info::from_body(b.rtype, &self.buf, self.libxc.page_size));
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

    /// `len` bytes of the body (and maybe what follows) were lost: the
    /// record completes with what it has; bytes past it start a hunt.
    pub(super) fn gap_in_body(&mut self, len: u64, out: &mut Vec<Event>) {
        let State::Body(b) = &mut self.state else {
            return;
        };
        let remaining = b.remaining();
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

    /// The record's last byte has passed: emit it, then let the layer state
    /// machine decide what comes next.
    pub(super) fn complete_record(&mut self, out: &mut Vec<Event>) {
        let State::Body(b) = std::mem::replace(&mut self.state, State::Refused) else {
            return;
        };
        self.buf.clear();
        let page_size = self.libxc.page_size;
        let mut info = match b.mode {
            Mode::Pfns => {
                let p = b.pfns;
                if p.page_data {
                    let expected =
                        p.entries_end.unwrap_or(8) + p.summary.data_pages * u64::from(page_size);
                    if p.bad_count {
                        diag(
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
                        diag(out, Severity::Error, b.offset, DiagKind::MalformedBody, format!(
                            "PAGE_DATA body is {} bytes but its {} pfn entries ({} with data) need {expected}",
                            b.body_length, p.summary.count, p.summary.data_pages));
                    }
                    if p.summary.reserved_set > 0 {
                        diag(
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
                        diag(
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
                        diag(out, Severity::Warning, b.offset, DiagKind::MalformedBody, format!(
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
                diag(
                    out,
                    Severity::Error,
                    b.offset,
                    DiagKind::MalformedBody,
                    format!("{}: {error}", b.rtype.name()),
                );
            }
        }
        if b.bad_padding {
            diag(
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
}
