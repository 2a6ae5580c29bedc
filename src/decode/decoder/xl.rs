//! The start of a stream and the xl preamble around the libxl stream:
//! what the first 8 bytes are (PROTOCOL.md §1, decided by the stream
//! detector), the xl save-file header and its domain config (§2 item 2),
//! what follows it (§2 item 3), and the sender's CLEARED_TO_UNPAUSE after a
//! plain migration's libxl END (§2 item 4).

use super::state::{Role, State, XlOptional};
use super::{diag, Decoder};
use crate::decode::detect::{self, Opening, NEEDED};
use crate::decode::event::{DiagKind, Event, Item, ItemKind, Severity};
use crate::decode::info::Info;
use crate::decode::wire::Layer;
use crate::decode::xl::{self, DomainConfig, Match, Message, SaveHeader};

impl Decoder {
    /// Detect: the stream detector's verdict on the first 8 bytes decides the
    /// next state (§1). The reverse direction needs no detection.
    pub(super) fn detect(&mut self, data: &mut &[u8], out: &mut Vec<Event>) {
        if self.role == Role::Receiver {
            self.state = State::Reverse;
            return;
        }
        if !self.fill(data, NEEDED) {
            return;
        }
        let first: [u8; NEEDED] = self.fixed[..NEEDED].try_into().unwrap_or_default();
        match detect::sniff(&first) {
            Opening::XlHeader => self.state = State::SaveHeader,
            Opening::Libxl => self.state = State::LibxlHeader,
            Opening::Libxc => self.state = State::ImageHeader,
            Opening::Ssh => {
                diag(out, Severity::Error, 0, DiagKind::Unrecognised,
                    "this looks like SSH (xl's default transport), not a migration stream: it is encrypted and cannot be decoded; migrate with a plaintext transport (xl migrate -s) to inspect it".into());
                self.state = State::Refused;
            }
            Opening::XlBanner => {
                diag(out, Severity::Note, 0, DiagKind::Unrecognised,
                    "the stream starts with the xl receiver banner: decoding it as the reverse direction".into());
                self.role = Role::Receiver;
                self.state = State::Reverse;
            }
            Opening::BackChannel => {
                diag(out, Severity::Note, 0, DiagKind::Unrecognised,
                    "the stream starts with a back-channel record: decoding it as a COLO back channel".into());
                self.role = Role::Receiver;
                self.state = State::Reverse;
            }
            Opening::Qemu | Opening::QemuMultifd => {
                diag(
                    out,
                    Severity::Error,
                    0,
                    DiagKind::Unrecognised,
                    "this is a QEMU migration stream, not Xen's: it is decoded by the QEMU decoder"
                        .into(),
                );
                self.state = State::Refused;
            }
            Opening::Other => {
                diag(out, Severity::Error, 0, DiagKind::Unrecognised, format!(
                    "not a migration stream v2: the first 8 bytes ({}) are neither \"LibxlFmt\", the libxc marker (0xff x 8) nor the xl save-file magic; a legacy (Xen <= 4.5) image is not decoded",
                    hex(&first)));
                self.state = State::Refused;
            }
        }
    }

    /// SaveHeader: the 48-byte xl save-file header (§2 item 2).
    pub(super) fn save_header(&mut self, data: &mut &[u8], out: &mut Vec<Event>) {
        if !self.fill(data, xl::SAVE_HEADER_LEN) {
            return;
        }
        let start = self.fixed_start();
        self.fixed_len = 0;
        let Some(header) = SaveHeader::parse(&self.fixed) else {
            diag(
                out,
                Severity::Error,
                start,
                DiagKind::BadHeader,
                "bad xl save-file magic".into(),
            );
            self.start_hunt();
            return;
        };
        if !header.byteorder_ok {
            diag(out, Severity::Warning, start + xl::field::BYTEORDER as u64, DiagKind::BadHeader,
                "xl header byteorder field is not 0x01020304 in either byte order; read as little-endian".into());
        }
        self.seen.xl = true;
        self.buf.clear();
        self.state = State::XlOptional(XlOptional {
            header,
            start: self.offset,
            lost: 0,
        });
        if header.optional_data_len == 0 {
            self.finish_optional(out);
        }
    }

    /// XlOptional: the domain config, buffered up to its cap.
    pub(super) fn xl_optional(&mut self, data: &mut &[u8], out: &mut Vec<Event>) {
        let State::XlOptional(o) = self.state else {
            return;
        };
        let len = u64::from(o.header.optional_data_len);
        let have = self.offset - o.start;
        let want = (len - have).min(data.len() as u64) as usize;
        if self.buf.len() + want <= xl::MAX_OPTIONAL_DATA as usize {
            self.buf.extend_from_slice(&data[..want]);
        }
        *data = &data[want..];
        self.offset += want as u64;
        if self.offset - o.start == len {
            self.finish_optional(out);
        }
    }

    /// `len` bytes of the domain config (and maybe what follows) were lost.
    pub(super) fn gap_in_optional(&mut self, len: u64, out: &mut Vec<Event>) {
        let State::XlOptional(o) = &mut self.state else {
            return;
        };
        let have = self.offset - o.start;
        let remaining = u64::from(o.header.optional_data_len) - have;
        let lost = len.min(remaining);
        o.lost += lost;
        self.offset += lost;
        if lost == remaining {
            self.finish_optional(out);
            if len > lost {
                self.offset += len - lost;
                self.start_hunt();
            }
        }
    }

    /// The save-file header and its config are complete: one item.
    fn finish_optional(&mut self, out: &mut Vec<Event>) {
        let State::XlOptional(XlOptional {
            header: h,
            start: optional_start,
            lost,
        }) = self.state
        else {
            return;
        };
        let start = optional_start - xl::SAVE_HEADER_LEN as u64;
        let wire = xl::SAVE_HEADER_LEN as u64 + u64::from(h.optional_data_len);
        let (config, problem) = if lost > 0 || self.buf.len() < h.optional_data_len as usize {
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
            lost,
        }));
        if let Some(p) = problem {
            diag(
                out,
                Severity::Warning,
                start + xl::SAVE_HEADER_LEN as u64,
                DiagKind::MalformedBody,
                p,
            );
        }
        if !h.stream_v2() {
            diag(out, Severity::Note, start + xl::field::MANDATORY_FLAGS as u64, DiagKind::BadHeader,
                "xl header says no stream v2 follows (mandatory flag bit 1 clear); looking at what does".into());
        }
        // AfterXl sniffs whether a libxl or a bare libxc stream follows.
        self.state = State::AfterXl;
        self.switch(out, Layer::Xl, Layer::Libxl);
    }

    /// AfterXl: a libxl stream, or with the v2 flag clear a bare libxc
    /// stream (§2 item 3); anything else is a legacy image.
    pub(super) fn after_xl(&mut self, data: &mut &[u8], out: &mut Vec<Event>) {
        if !self.fill(data, NEEDED) {
            return;
        }
        let first: [u8; NEEDED] = self.fixed[..NEEDED].try_into().unwrap_or_default();
        match detect::sniff(&first) {
            Opening::Libxl => self.state = State::LibxlHeader,
            Opening::Libxc => {
                self.state = State::ImageHeader;
                self.switch(out, Layer::Xl, Layer::Libxc);
            }
            _ => {
                let at = self.fixed_start();
                diag(out, Severity::Error, at, DiagKind::Unrecognised,
                    "after the xl header comes neither a libxl nor a libxc v2 stream: a legacy (pre-v2) image, which this tool does not decode".into());
                self.state = State::Refused;
            }
        }
    }

    /// Trailer: after libxl END of an xl migration, the sender's
    /// CLEARED_TO_UNPAUSE, or nothing (§2 item 4).
    pub(super) fn trailer(&mut self, data: &mut &[u8], out: &mut Vec<Event>) {
        let want = Message::ClearedToUnpause.wire_len();
        let n = data.len().min(want - self.fixed_len);
        let probe_len = self.fixed_len + n;
        let mut probe = [0u8; 64];
        probe[..self.fixed_len].copy_from_slice(&self.fixed[..self.fixed_len]);
        probe[self.fixed_len..probe_len].copy_from_slice(&data[..n]);
        if xl::match_message(&probe[..probe_len], &[Message::ClearedToUnpause]) == Match::None {
            self.fixed_len = 0;
            self.state = State::Ended;
            return;
        }
        self.fill(data, want);
        if self.fixed_len == want {
            let start = self.fixed_start();
            self.fixed_len = 0;
            self.emit_message(out, start, Message::ClearedToUnpause, None);
            self.state = State::Ended;
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}
