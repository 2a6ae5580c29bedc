//! Re-synchronisation: the hunt for a record boundary after a gap the
//! decoder cannot step over, a header it cannot trust, or in a stream whose
//! start was not captured.
//!
//! The hunt holds up to [`HUNT_WINDOW`] bytes and judges each 8-aligned
//! offset (once a header fixed the alignment) as a candidate: a stream header
//! (the stream detector's magics, PROTOCOL.md §2-§4), an xl message (§2), the
//! 16-byte CHECKPOINT_STATE pattern (§3), a PAGE_DATA header whose entries
//! account for its length exactly (§4), a record whose body checks itself,
//! or a plausible record (the record table's anchor and hunt columns)
//! confirmed by a chain of following records ending in a self-checking one.
//! On success the bytes from the boundary are replayed through the state
//! machine.
//!
//! A body that swallowed the COLO checkpoint boundary (CHECKPOINT_END then
//! CHECKPOINT_STATE NEW, 24 bytes at a record boundary) had a corrupt length:
//! decoding resumes at that boundary ([`COLO_BOUNDARY`]).

use std::mem;

use super::layers::LibxlPhase;
use super::state::{Role, State};
use super::{diag, switch_at, Decoder, HUNT_WINDOW, MAX_BATCH};
use crate::decode::detect::{LIBXC_IMAGE_START, LIBXL_IDENT, XL_SAVE_MAGIC};
use crate::decode::event::{Anchor, DiagKind, Event, Severity};
use crate::decode::libxc::{self, PfnEntry, IMAGE_HEADER_LEN};
use crate::decode::libxl::{self, ControlId};
use crate::decode::wire::{
    le_u32, le_u64, Layer, LibxcType, LibxlType, RecordHeader, RecordType, MAX_RECORD_BODY,
    RECORD_HEADER_LEN,
};
use crate::decode::xl::{self, Message};

/// The `Hunting` state's data.
#[derive(Debug)]
pub(super) struct Hunt {
    /// The bytes being searched, from stream offset `start`; at most
    /// [`HUNT_WINDOW`].
    pub window: Vec<u8>,
    pub start: u64,
    /// Bytes given up on (and lost in gaps) since the hunt began.
    pub skipped: u64,
    /// Stream offset where the hunt began.
    pub began: u64,
}

impl Decoder {
    /// Starts looking for a record boundary at the current offset.
    pub(super) fn start_hunt(&mut self) {
        self.state = State::Hunting(Hunt {
            window: Vec::new(),
            start: self.offset,
            skipped: 0,
            began: self.offset,
        });
        self.fixed_len = 0;
    }

    /// Hunting: fill the window and scan it.
    pub(super) fn hunt_step(&mut self, data: &mut &[u8], out: &mut Vec<Event>) {
        let State::Hunting(h) = &mut self.state else {
            return;
        };
        let room = HUNT_WINDOW - h.window.len();
        let n = room.min(data.len());
        h.window.extend_from_slice(&data[..n]);
        *data = &data[n..];
        self.offset += n as u64;
        self.scan(out);
    }

    /// `len` bytes lost while hunting: what the window held is skipped too.
    pub(super) fn gap_in_hunt(&mut self, len: u64) {
        let State::Hunting(h) = &mut self.state else {
            return;
        };
        h.skipped += h.window.len() as u64;
        h.window.clear();
        self.offset += len;
        h.start = self.offset;
        h.skipped += len;
    }

    /// Looks for an anchor in the window; on success replays the bytes from
    /// it through the state machine.
    pub(super) fn scan(&mut self, out: &mut Vec<Event>) {
        let State::Hunting(h) = &mut self.state else {
            return;
        };
        let mut p = 0usize;
        let full = h.window.len() >= HUNT_WINDOW || self.final_scan;
        // The first candidate that needs more bytes to judge; past it only a
        // CHECKPOINT_STATE record (16 bytes that check themselves) is taken,
        // so that a sparse back channel does not wait for a full window.
        let mut pending: Option<usize> = None;
        while p + 8 <= h.window.len() || (full && p < h.window.len()) {
            let at = h.start + p as u64;
            if let Some(a) = self.align {
                if (at % 8) as u8 != a {
                    p += 1;
                    continue;
                }
            }
            if pending.is_some() && !is_state_record(&h.window[p..]) {
                p += 1;
                continue;
            }
            match evaluate(&h.window[p..], self.role) {
                Verdict::NeedMore if !full => {
                    pending.get_or_insert(p);
                    p += 1;
                }
                Verdict::Accept(anchor, next) if self.last_anchor != Some(at) => {
                    self.last_anchor = Some(at);
                    let skipped = h.skipped + p as u64;
                    out.push(Event::Resync {
                        offset: at,
                        skipped,
                        anchor,
                    });
                    if skipped > 0 {
                        diag(out, Severity::Warning, h.began, DiagKind::Resync,
                            format!("skipped {skipped} bytes to the next record boundary at offset {at}"));
                    }
                    self.offset = at;
                    self.replay = h.window[p..].to_vec();
                    self.enter(next, at);
                    return;
                }
                _ => p += 1,
            }
        }
        // Nothing before p (or the pending candidate) can start a record.
        let drop = pending.unwrap_or(p).min(h.window.len());
        h.window.drain(..drop);
        h.start += drop as u64;
        h.skipped += drop as u64;
    }

    /// The state to decode the bytes from an accepted anchor at `at` in.
    fn enter(&mut self, next: Resume, at: u64) {
        self.fixed_len = 0;
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

    /// CHECKPOINT_END and NEW were found at body position `q` of the record
    /// being read: its length is corrupt. Decoding goes on from that
    /// CHECKPOINT_END with `rest` (the bytes from it that were pushed).
    pub(super) fn resume_at_colo_boundary(
        &mut self,
        q: usize,
        rest: Vec<u8>,
        out: &mut Vec<Event>,
    ) {
        let State::Body(b) = mem::replace(&mut self.state, State::Refused) else {
            return;
        };
        diag(out, Severity::Error, b.offset, DiagKind::MalformedBody, format!(
            "{} claims a {}-byte body but CHECKPOINT_END and CHECKPOINT_STATE NEW follow its first {q} bytes: the length is corrupt; decoding goes on from there",
            b.rtype.name(), b.body_length));
        let at = b.offset + RECORD_HEADER_LEN as u64 + q as u64;
        out.push(Event::Resync {
            offset: at,
            skipped: 0,
            anchor: Anchor::Record(Layer::Libxl),
        });
        if b.layer == Layer::Libxc {
            switch_at(out, at, Layer::Libxc, Layer::Libxl);
        }
        self.buf.clear();
        self.offset = at;
        self.replay = rest;
        self.libxl_phase = LibxlPhase::AfterCheckpoint;
        self.state = State::Records(Layer::Libxl);
    }
}

/// CHECKPOINT_END then CHECKPOINT_STATE NEW, as every COLO checkpoint after
/// the first is entered (PROTOCOL.md §3 and §6): 24 bytes no device state or
/// CPU context holds at a record boundary in practice.
pub(super) const COLO_BOUNDARY: [u8; 24] = [
    4, 0, 0, 0, 0, 0, 0, 0, // CHECKPOINT_END, empty
    5, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // CHECKPOINT_STATE NEW
];

/// Where, at an 8-byte boundary of `body` at or after `from`, CHECKPOINT_END
/// and NEW begin.
pub(super) fn find_colo_boundary(body: &[u8], from: usize) -> Option<usize> {
    find_colo_boundary_at(body, 0, from)
}

/// As [`find_colo_boundary`] for `bytes` that sit at body position `pos`:
/// the index in `bytes`, at or after `from`, of a boundary at a body
/// position that is a multiple of 8.
pub(super) fn find_colo_boundary_at(bytes: &[u8], pos: usize, from: usize) -> Option<usize> {
    let mut q = from + (8 - (pos + from) % 8) % 8;
    while q + COLO_BOUNDARY.len() <= bytes.len() {
        if bytes[q..q + COLO_BOUNDARY.len()] == COLO_BOUNDARY {
            return Some(q);
        }
        q += 8;
    }
    None
}

/// The 16 bytes of a CHECKPOINT_STATE record (PROTOCOL.md §3): type 5, body
/// length 4 (or 8), a control id 0-3, zero padding.
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
fn evaluate(b: &[u8], role: Role) -> Verdict {
    let prefix = |pat: &[u8]| {
        let n = b.len().min(pat.len());
        b[..n] == pat[..n]
    };
    if role == Role::Receiver {
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
                Evidence::Weak(next, _) => match chain_back(&b[next..]) {
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
        if b.len() < libxl::HEADER_LEN {
            return Verdict::NeedMore;
        }
        if libxl::Header::parse(b).is_some_and(|h| h.version == 2) {
            return Verdict::Accept(Anchor::LibxlHeader, Resume::LibxlHeader);
        }
    }
    if prefix(&LIBXC_IMAGE_START) {
        if b.len() < IMAGE_HEADER_LEN {
            return Verdict::NeedMore;
        }
        if libxc::ImageHeader::parse(b).is_some_and(|h| matches!(h.version, 2 | 3)) {
            return Verdict::Accept(Anchor::ImageHeader, Resume::ImageHeader);
        }
    }
    if prefix(XL_SAVE_MAGIC) {
        return if b.len() >= xl::SAVE_HEADER_LEN {
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

/// Confirms an empty dirty list on the back channel: a self-checking
/// back-channel record or an xl message must follow.
fn chain_back(b: &[u8]) -> Verdict {
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
    if b.len() < 8 {
        Verdict::NeedMore
    } else {
        Verdict::Reject
    }
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

/// Evidence that a record of `layer` starts at `b` (`back`: on the back
/// channel). Lengths are judged by the record table; bodies here.
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
            // NEW goes forward, the SVM_* states come back.
            let id = le_u32(b, 8);
            let ok = b[12..16].iter().all(|&x| x == 0)
                && if back {
                    (ControlId::SvmSuspended.to_u32()..=ControlId::SvmResumed.to_u32())
                        .contains(&id)
                } else {
                    id == ControlId::New.to_u32()
                };
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
            // Ascending pfns below 2^40.
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
        return page_data_evidence(b, body_len);
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
            // A libxc image header must follow.
            L::LibxcContext => match b.get(8..8 + IMAGE_HEADER_LEN) {
                None => Evidence::NeedMore,
                Some(ih) if libxc::ImageHeader::parse(ih).is_some() => Evidence::Strong,
                Some(_) => Evidence::No,
            },
            L::EmulatorXenstoreData | L::EmulatorContext => {
                // A known emulator id, a small index.
                if le_u32(body, 0) > 2 || le_u32(body, 4) > 16 {
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
            L::CheckpointEnd => weak(Layer::Libxc),
            _ => Evidence::No,
        },
        RecordType::Libxc(t) => match t {
            C::Checkpoint => weak(Layer::Libxl),
            C::StaticDataEnd | C::Verify => weak(Layer::Libxc),
            C::HvmContext => {
                // Known typecodes, ending with END.
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
            // A known TSC mode, the reserved word zero.
            C::X86TscInfo if le_u32(body, 20) == 0 && le_u32(body, 0) <= 3 => weak(Layer::Libxc),
            // guest_width 4 or 8, pt_levels 3 or 4.
            C::X86PvInfo if matches!(body, [4 | 8, 3 | 4, ..]) => weak(Layer::Libxc),
            C::X86CpuidPolicy | C::X86MsrPolicy | C::SharedInfo => weak(Layer::Libxc),
            C::X86PvVcpuBasic | C::X86PvVcpuExtended | C::X86PvVcpuXsave | C::X86PvVcpuMsrs
                if le_u32(body, 0) < 4096 && le_u32(body, 4) == 0 =>
            {
                weak(Layer::Libxc)
            }
            C::X86PvP2mFrames if le_u32(body, 0) <= le_u32(body, 4) => weak(Layer::Libxc),
            _ => Evidence::No,
        },
    }
}

/// PAGE_DATA as evidence (PROTOCOL.md §4): a batch of 1 to [`MAX_BATCH`]
/// entries with sane pfns and types whose pages (4 KiB: the hunt knows no
/// other size) account for the body exactly.
fn page_data_evidence(b: &[u8], body_len: usize) -> Evidence {
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
    if body_len - (entries_end - 16) - 8 == data * 4096 {
        Evidence::Strong
    } else {
        Evidence::No
    }
}
