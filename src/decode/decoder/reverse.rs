//! What the receiver sends back (PROTOCOL.md §1): xl's fixed messages (§2),
//! the receiver's error text (§2, "any other bytes on the reverse direction"),
//! and the headerless COLO back channel of CHECKPOINT_STATE and
//! CHECKPOINT_DIRTY_PFN_LIST records (§5, §6).

use super::state::State;
use super::{diag, Decoder, MAX_TEXT_ITEM};
use crate::decode::event::{DiagKind, Event, ItemKind, Severity};
use crate::decode::info::Info;
use crate::decode::records::back_channel_header;
use crate::decode::text::escape_bytes;
use crate::decode::wire::{Layer, RECORD_HEADER_LEN};
use crate::decode::xl::{self, Match, Message};

/// A byte that can be part of the receiver's text output.
pub(super) fn is_text(b: u8) -> bool {
    b.is_ascii_graphic() || matches!(b, b' ' | b'\n' | b'\r' | b'\t')
}

impl Decoder {
    /// Reverse: an xl message, a back-channel record, or text.
    pub(super) fn reverse_item(&mut self, data: &mut &[u8], out: &mut Vec<Event>) {
        // Look at up to 8 bytes before deciding.
        let have = self.fixed_len;
        let k = data.len().min(RECORD_HEADER_LEN.saturating_sub(have));
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
                    self.seen.xl = true;
                    self.emit_message(out, start, m, result);
                    if let Some(r) = result.filter(|&r| r != 0) {
                        diag(
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
        if probe.len() < RECORD_HEADER_LEN {
            self.fill(data, RECORD_HEADER_LEN);
            return;
        }
        if let Some((h, layer)) = back_channel_header(probe) {
            self.fill(data, RECORD_HEADER_LEN);
            self.fixed_len = 0;
            self.start_record(h, layer, out);
            return;
        }
        if is_text(probe[0]) {
            self.start_text();
            return;
        }
        let at = self.offset - have as u64;
        diag(out, Severity::Warning, at, DiagKind::Resync,
            "reverse direction: bytes that are neither an xl message nor a back-channel record; looking for the next record".into());
        let held = self.fixed[..have].to_vec();
        self.offset -= have as u64;
        self.start_hunt();
        self.replay = held;
    }

    /// An xl message (§2) as an item; UNPAUSE_RESULT carries its result byte.
    pub(super) fn emit_message(
        &mut self,
        out: &mut Vec<Event>,
        start: u64,
        m: Message,
        result: Option<u8>,
    ) {
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

    /// Receiver text starts with the bytes held in `fixed`.
    pub(super) fn start_text(&mut self) {
        let start = self.fixed_start();
        self.buf.clear();
        self.buf.extend_from_slice(&self.fixed[..self.fixed_len]);
        self.fixed_len = 0;
        self.state = State::Text { start };
    }

    /// Text: up to a newline, a NUL, a byte that is not text, or
    /// [`MAX_TEXT_ITEM`] bytes.
    pub(super) fn text(&mut self, data: &mut &[u8], out: &mut Vec<Event>) {
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

    /// The text read so far as one item; back to the item boundary.
    pub(super) fn flush_text(&mut self, out: &mut Vec<Event>) {
        let start = match self.state {
            State::Text { start } => start,
            _ => self.fixed_start(),
        };
        let text = escape_bytes(&self.buf);
        let len = self.buf.len() as u64;
        self.buf.clear();
        self.state = State::Reverse;
        if len > 0 {
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
}
