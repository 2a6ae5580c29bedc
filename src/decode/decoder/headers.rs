//! The stream headers: libxl's 16 bytes (PROTOCOL.md §3), libxc's image
//! header (24 bytes) and domain header (16 bytes) after LIBXC_CONTEXT (§4).
//! Each sets the context the records after it are read in.

use super::layers::LibxlPhase;
use super::state::State;
use super::{diag, Decoder};
use crate::decode::event::{DiagKind, Event, ItemKind, Severity};
use crate::decode::info::Info;
use crate::decode::libxc::{self, DOMAIN_HEADER_LEN, IMAGE_HEADER_LEN};
use crate::decode::libxl;
use crate::decode::wire::Layer;

impl Decoder {
    /// LibxlHeader: ident, version 2, options (§3). Records start after it,
    /// LIBXC_CONTEXT first.
    pub(super) fn libxl_header(&mut self, data: &mut &[u8], out: &mut Vec<Event>) {
        if !self.fill(data, libxl::HEADER_LEN) {
            return;
        }
        let start = self.fixed_start();
        self.fixed_len = 0;
        let Some(h) = libxl::Header::parse(&self.fixed) else {
            self.start_hunt();
            return;
        };
        self.emit_item(
            out,
            start,
            Layer::Libxl,
            ItemKind::LibxlHeader,
            libxl::HEADER_LEN as u64,
            Info::LibxlHeader(h),
        );
        if h.version != 2 {
            diag(
                out,
                Severity::Error,
                start + libxl::field::VERSION.start as u64,
                DiagKind::BadHeader,
                format!("libxl stream version {} (expected 2)", h.version),
            );
        }
        if h.options & libxl::OPTION_BIG_ENDIAN != 0 {
            diag(
                out,
                Severity::Error,
                start + libxl::field::OPTIONS.start as u64,
                DiagKind::BadHeader,
                "big-endian libxl stream: records are decoded as little-endian and will be wrong"
                    .into(),
            );
        }
        self.align = Some((self.offset % 8) as u8);
        self.libxl_phase = LibxlPhase::Start;
        self.state = State::Records(Layer::Libxl);
    }

    /// ImageHeader: marker, "XENF", version 2 or 3, options (§4).
    pub(super) fn image_header(&mut self, data: &mut &[u8], out: &mut Vec<Event>) {
        if !self.fill(data, IMAGE_HEADER_LEN) {
            return;
        }
        let start = self.fixed_start();
        self.fixed_len = 0;
        let Some(h) = libxc::ImageHeader::parse(&self.fixed) else {
            diag(
                out,
                Severity::Error,
                start,
                DiagKind::BadHeader,
                "LIBXC_CONTEXT is not followed by a libxc image header".into(),
            );
            self.start_hunt();
            return;
        };
        self.emit_item(
            out,
            start,
            Layer::Libxc,
            ItemKind::ImageHeader,
            IMAGE_HEADER_LEN as u64,
            Info::ImageHeader(h),
        );
        if !matches!(h.version, 2 | 3) {
            diag(
                out,
                Severity::Error,
                start + libxc::field::VERSION.start as u64,
                DiagKind::BadHeader,
                format!("libxc image version {} (expected 2 or 3)", h.version),
            );
        }
        if h.big_endian() {
            diag(
                out,
                Severity::Error,
                start + libxc::field::OPTIONS.start as u64,
                DiagKind::BadHeader,
                "big-endian libxc stream: records are decoded as little-endian and will be wrong"
                    .into(),
            );
        }
        self.libxc.version = Some(h.version);
        self.libxc.static_end = false;
        self.state = State::DomainHeader;
    }

    /// DomainHeader: guest type and page size (§4); libxc records follow.
    pub(super) fn domain_header(&mut self, data: &mut &[u8], out: &mut Vec<Event>) {
        if !self.fill(data, DOMAIN_HEADER_LEN) {
            return;
        }
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
            DOMAIN_HEADER_LEN as u64,
            Info::DomainHeader(d),
        );
        match d.page_size() {
            Some(p) => self.libxc.page_size = p,
            None => diag(
                out,
                Severity::Error,
                start + libxc::field::PAGE_SHIFT.start as u64,
                DiagKind::BadHeader,
                format!(
                    "page_shift {} is not sane; assuming 4096-byte pages",
                    d.page_shift
                ),
            ),
        }
        match d.guest_type {
            libxc::GuestType::X86Pv => self.libxc.pv = Some(true),
            libxc::GuestType::X86Hvm => self.libxc.pv = Some(false),
            libxc::GuestType::Unknown(v) => diag(
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
