//! The push decoder for QEMU migration streams (docs/PROTOCOL.md §9): one
//! per direction, bytes in as they arrive, [`Event`]s out.
//!
//! Forward: the "QEVM" header, the configuration, sections (RAM records
//! parsed one by one and counted, never kept; device sections, which carry
//! no length, delimited by their footer and checked by what follows it),
//! commands, EOF, the JSON description, then (COLO) the checkpoint messages,
//! each checkpoint's RAM section and its device state of the size
//! VMSTATE_SIZE announced. A multifd channel is decoded from its own magic.
//! Reverse: return-path messages (be16 type, be16 length) and bare be32 COLO
//! messages, told apart by their first two bytes (a COLO message's are 0).
//!
//! Memory: a piece buffer of at most 64 KiB (a command's data), the first
//! 1 MiB of the JSON description, a 256 KiB hunt window, the table of
//! section names (4096) and RAMBlock names (64). Page bytes are skipped.

use std::mem;

use byteorder::{BigEndian, ByteOrder};

use super::info::{QemuInfo, QemuKind, RamSummary, Section};
use super::wire::{self, ram_flag, ColoMessage, SectionType};
use crate::decode::event::Anchor;
use crate::decode::text::escape_bytes;
use crate::decode::{
    DiagKind, Diagnostic, Direction, Event, Info, Item, ItemKind, Layer, Severity,
};

/// Bytes a hunt keeps to look for an anchor; older bytes are skipped.
const HUNT_WINDOW: usize = 256 << 10;
/// A device section with no footer after this many bytes is not one.
const MAX_DEVICE_BODY: u64 = 64 << 20;
/// JSON descriptions up to this size are read for their summary.
const MAX_DESCRIPTION: u32 = 1 << 20;
/// A COLO device state larger than this is not believed.
const MAX_DEVICE_STATE: u64 = 1 << 30;
const MAX_SECTIONS: usize = 4096;
const MAX_BLOCK_NAMES: usize = 64;

fn be16(b: &[u8]) -> u16 {
    BigEndian::read_u16(b)
}
fn be32(b: &[u8]) -> u32 {
    BigEndian::read_u32(b)
}
fn be64(b: &[u8]) -> u64 {
    BigEndian::read_u64(b)
}

/// A fixed-size piece the decoder is collecting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    Opening,
    Type,
    SectionHead(SectionType),
    /// The idstr and ids of a START or FULL section whose id is given.
    SectionName(SectionType, u32),
    ConfigLen,
    ConfigName,
    SubPeek,
    SubLen,
    SubName,
    SubBody(Sub),
    CapLen,
    CapName,
    CommandHead,
    CommandData(u16),
    VmDescLen,
    AfterEof,
    RamHead,
    RamBlockLen(u64, u64),
    RamBlockName(u64, u64),
    RamZeroFill,
    RamXbzrleHead,
    RamCompressLen,
    MemSizeLen,
    MemSizeName,
    FooterPeek,
    FooterId,
    FooterCheck,
    ColoMsg,
    ColoSize,
    Reverse,
    RpData(u16),
    MultifdInit,
    MultifdHead,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sub {
    PageBits,
    Uuid,
    Caps,
}

#[derive(Debug)]
enum State {
    Collect(Want),
    /// Page bytes (or an XBZRLE or compressed page's data) to skip.
    Skip(u64),
    /// The JSON description: `left` bytes to read.
    VmDesc(u64),
    /// A device section's body: scanning for its footer.
    DeviceBody,
    /// The rest of a COLO device state after a problem.
    BlobSkip,
    /// A multifd packet's offsets and pages.
    MultifdData(u64),
    Hunt,
    /// Bytes after the end of the stream.
    Trailing,
}

/// The section being decoded.
#[derive(Debug)]
struct Cur {
    offset: u64,
    stype: SectionType,
    id: u32,
    idstr: String,
    instance: Option<u32>,
    version: Option<u32>,
    body_start: u64,
    ram: Option<Box<RamSummary>>,
    lost: u64,
}

/// A COLO device state being received (VMSTATE_SIZE's bytes).
#[derive(Debug)]
struct Blob {
    offset: u64,
    size: u64,
    sections: u32,
    lost: u64,
    broken: bool,
}

impl Blob {
    fn end(&self) -> u64 {
        self.offset + self.size
    }
}

#[derive(Debug, Default)]
struct Config {
    start: u64,
    machine: String,
    page_bits: Option<u32>,
    caps: Vec<String>,
    caps_left: u32,
    uuid: Option<String>,
}

/// What the stream has shown so far.
#[derive(Debug, Default)]
struct Ctx {
    page_bits: u32,
    sections: Vec<(u32, String)>,
    blocks: Vec<String>,
    last_block: Option<usize>,
    last_page: Option<(usize, u64)>,
    mem_left: u64,
    colo: bool,
    /// After VMSTATE_SEND: the next EOF ends the checkpoint's RAM.
    checkpoint_ram: bool,
    /// The hunt anchored on a section: what the next EOF closes (the
    /// migration, a checkpoint's RAM or device state) is not known.
    unsure: bool,
    /// A return-path message was seen (reverse).
    rp_seen: bool,
    ram_id: Option<u32>,
}

/// The QEMU stream decoder; see the module documentation.
pub struct QemuDecoder {
    dir: Direction,
    offset: u64,
    state: State,
    buf: Vec<u8>,
    need: usize,
    replay: Vec<u8>,
    /// Where the item being collected began.
    item_start: u64,
    /// Where a footer candidate's 0x7e is.
    look_at: u64,
    ctx: Ctx,
    config: Option<Config>,
    cur: Option<Cur>,
    blob: Option<Blob>,
    desc: Vec<u8>,
    desc_len: u32,
    hunt: Vec<u8>,
    hunt_from: u64,
    hunt_pos: usize,
    hunt_skipped: u64,
    /// Bytes of a multifd packet: (offset, header fields).
    packet: Option<(u64, u32, u32, u32, u64, String)>,
    /// Reverse bytes skipped since the last message.
    garbage: u64,
    final_scan: bool,
}

impl QemuDecoder {
    /// A decoder at the start of a direction.
    pub fn new(dir: Direction) -> Self {
        let mut d = QemuDecoder {
            dir,
            offset: 0,
            state: State::Collect(Want::Opening),
            buf: Vec::new(),
            need: 8,
            replay: Vec::new(),
            item_start: 0,
            look_at: 0,
            ctx: Ctx {
                page_bits: wire::DEFAULT_PAGE_BITS,
                ..Default::default()
            },
            config: None,
            cur: None,
            blob: None,
            desc: Vec::new(),
            desc_len: 0,
            hunt: Vec::new(),
            hunt_from: 0,
            hunt_pos: 0,
            hunt_skipped: 0,
            packet: None,
            garbage: 0,
            final_scan: false,
        };
        if dir == Direction::Reverse {
            d.state = State::Collect(Want::Reverse);
            d.need = 4;
        }
        d
    }

    /// A decoder for a direction whose start was not captured: the forward
    /// one hunts for an anchor; `offset` is the offset of the next byte.
    pub fn mid_stream(dir: Direction, offset: u64) -> Self {
        let mut d = QemuDecoder::new(dir);
        d.offset = offset;
        if dir == Direction::Forward {
            d.start_hunt();
        }
        d
    }

    /// Stream offset of the next byte to be pushed.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The decoder is looking for an anchor.
    pub fn hunting(&self) -> bool {
        matches!(self.state, State::Hunt)
    }

    /// Heap the decoder holds for buffering.
    pub fn buffered_capacity(&self) -> usize {
        self.buf.capacity() + self.replay.capacity() + self.desc.capacity() + self.hunt.capacity()
    }

    /// Upper bound of [`QemuDecoder::buffered_capacity`]: a command's data,
    /// the description, the hunt window and its replay, each at most
    /// doubled by growth.
    pub const MAX_BUFFERED: usize =
        2 * (u16::MAX as usize + MAX_DESCRIPTION as usize + 2 * HUNT_WINDOW + 512);

    /// Decodes the next bytes of the direction.
    pub fn push(&mut self, data: &[u8], out: &mut Vec<Event>) {
        let mut data = data;
        loop {
            if !self.replay.is_empty() {
                let replay = mem::take(&mut self.replay);
                let mut s = &replay[..];
                while !s.is_empty() {
                    let used = self.step(s, out);
                    s = &s[used..];
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
            let used = self.step(data, out);
            data = &data[used..];
        }
    }

    /// Puts bytes already consumed back in front of what comes next.
    fn unread(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let mut r = bytes.to_vec();
        r.extend_from_slice(&self.replay);
        self.replay = r;
        self.offset -= bytes.len() as u64;
    }

    fn want(&mut self, w: Want, n: usize, out: &mut Vec<Event>) {
        self.buf.clear();
        self.state = State::Collect(w);
        self.need = n;
        if n == 0 {
            self.collected(w, &[], out);
        }
    }

    /// The next top-level item: a section type byte.
    fn top(&mut self, out: &mut Vec<Event>) {
        self.want(Want::Type, 1, out);
    }

    fn step(&mut self, data: &[u8], out: &mut Vec<Event>) -> usize {
        if matches!(self.state, State::Collect(Want::RamHead)) && self.buf.is_empty() {
            let n = self.ram_run(data);
            if n > 0 {
                return n;
            }
        }
        match self.state {
            State::Collect(w) => {
                let take = (self.need - self.buf.len()).min(data.len());
                self.buf.extend_from_slice(&data[..take]);
                self.offset += take as u64;
                if self.buf.len() == self.need {
                    let b = mem::take(&mut self.buf);
                    self.collected(w, &b, out);
                    if self.buf.is_empty() {
                        self.buf = b;
                        self.buf.clear();
                    }
                }
                take
            }
            State::Skip(left) => {
                let take = left.min(data.len() as u64);
                self.offset += take;
                if take == left {
                    self.want(Want::RamHead, 8, out);
                } else {
                    self.state = State::Skip(left - take);
                }
                take as usize
            }
            State::VmDesc(left) => {
                let take = left.min(data.len() as u64) as usize;
                if self.desc.len() < MAX_DESCRIPTION as usize {
                    let room = MAX_DESCRIPTION as usize - self.desc.len();
                    self.desc.extend_from_slice(&data[..take.min(room)]);
                }
                self.offset += take as u64;
                if take as u64 == left {
                    self.description(out);
                } else {
                    self.state = State::VmDesc(left - take as u64);
                }
                take
            }
            State::DeviceBody => self.scan_body(data, out),
            State::BlobSkip => {
                let end = self.blob.as_ref().map_or(self.offset, Blob::end);
                let take = end.saturating_sub(self.offset).min(data.len() as u64);
                self.offset += take;
                if self.offset >= end {
                    self.end_blob(out);
                }
                take as usize
            }
            State::MultifdData(left) => {
                let take = left.min(data.len() as u64);
                self.offset += take;
                if take == left {
                    self.end_packet(out);
                } else {
                    self.state = State::MultifdData(left - take);
                }
                take as usize
            }
            State::Hunt => self.hunt_step(data, out),
            State::Trailing => {
                self.offset += data.len() as u64;
                data.len()
            }
        }
    }

    fn diag(
        &self,
        out: &mut Vec<Event>,
        severity: Severity,
        offset: u64,
        kind: DiagKind,
        msg: String,
    ) {
        out.push(Event::Diagnostic(Diagnostic {
            severity,
            offset,
            kind,
            message: msg,
        }));
    }

    fn item(&self, out: &mut Vec<Event>, offset: u64, kind: QemuKind, info: QemuInfo, lost: u64) {
        let wire_len = self.offset.saturating_sub(offset);
        out.push(Event::Item(Item {
            offset,
            wire_len,
            layer: Layer::Qemu,
            kind: ItemKind::Qemu(kind),
            body_length: u32::try_from(wire_len).unwrap_or(u32::MAX),
            info: Info::Qemu(Box::new(info)),
            lost,
        }));
    }

    /// Something does not parse: say so and hunt (inside a COLO device
    /// state, skip to its end, which VMSTATE_SIZE gave).
    fn broken(&mut self, out: &mut Vec<Event>, at: u64, kind: DiagKind, msg: String) {
        self.diag(out, Severity::Error, at, kind, msg);
        self.cur = None;
        if let Some(b) = &mut self.blob {
            if self.offset <= b.end() {
                b.broken = true;
                self.state = State::BlobSkip;
                if self.offset == b.end() {
                    self.end_blob(out);
                }
                return;
            }
        }
        self.blob = None;
        self.start_hunt();
    }

    fn collected(&mut self, w: Want, b: &[u8], out: &mut Vec<Event>) {
        match w {
            Want::Opening => self.opening(b, out),
            Want::Type => self.on_type(b[0], out),
            Want::SectionHead(t) => {
                let id = be32(&b[..4]);
                if t.names_itself() {
                    let len = usize::from(b[4]);
                    if len == 0 {
                        return self.broken(
                            out,
                            self.item_start,
                            DiagKind::MalformedBody,
                            format!("{} header with an empty idstr", t.name()),
                        );
                    }
                    self.want(Want::SectionName(t, id), len + 8, out);
                } else {
                    let idstr = self.section_name(id);
                    if idstr.is_none() && self.blob.is_none() {
                        self.diag(
                            out,
                            Severity::Note,
                            self.item_start,
                            DiagKind::UnexpectedRecord,
                            format!("{} of section {id}, whose START was not seen", t.name()),
                        );
                    }
                    self.start_section(t, id, idstr.unwrap_or_default(), None, None, out);
                }
            }
            Want::SectionName(t, id) => {
                let n = b.len() - 8;
                let name = &b[..n];
                if !wire::plausible_idstr(name) {
                    return self.broken(
                        out,
                        self.item_start,
                        DiagKind::MalformedBody,
                        format!(
                            "{} header with an idstr that is not text: {}",
                            t.name(),
                            escape_bytes(name)
                        ),
                    );
                }
                let idstr = String::from_utf8_lossy(name).into_owned();
                let (inst, ver) = (be32(&b[n..n + 4]), be32(&b[n + 4..]));
                if self.ctx.sections.len() < MAX_SECTIONS && self.section_name(id).is_none() {
                    self.ctx.sections.push((id, idstr.clone()));
                }
                if idstr == wire::RAM_SECTION {
                    self.ctx.ram_id = Some(id);
                }
                self.start_section(t, id, idstr, Some(inst), Some(ver), out);
            }
            Want::ConfigLen => {
                let len = be32(b);
                if len > 256 {
                    return self.broken(
                        out,
                        self.item_start,
                        DiagKind::MalformedBody,
                        format!("CONFIGURATION with a {len}-byte machine name"),
                    );
                }
                self.config = Some(Config {
                    start: self.item_start,
                    ..Default::default()
                });
                self.want(Want::ConfigName, len as usize, out);
            }
            Want::ConfigName => {
                if let Some(c) = &mut self.config {
                    c.machine = escape_bytes(b);
                }
                self.want(Want::SubPeek, 1, out);
            }
            Want::SubPeek => {
                if b[0] == SectionType::Subsection.byte() {
                    self.want(Want::SubLen, 1, out);
                } else {
                    self.unread(b);
                    self.end_config(out);
                }
            }
            Want::SubLen => self.want(Want::SubName, usize::from(b[0]) + 4, out),
            Want::SubName => {
                let name = String::from_utf8_lossy(&b[..b.len() - 4]).into_owned();
                let sub = match name.as_str() {
                    "configuration/target-page-bits" => Some((Sub::PageBits, 4)),
                    "configuration/uuid" => Some((Sub::Uuid, 16)),
                    "configuration/capabilities" => Some((Sub::Caps, 4)),
                    _ => None,
                };
                match sub {
                    Some((s, n)) => self.want(Want::SubBody(s), n, out),
                    None => {
                        let at = self.config.as_ref().map_or(self.offset, |c| c.start);
                        self.broken(
                            out,
                            at,
                            DiagKind::UnknownRecord,
                            format!(
                                "unknown configuration subsection {}",
                                escape_bytes(name.as_bytes())
                            ),
                        )
                    }
                }
            }
            Want::SubBody(s) => {
                let Some(c) = &mut self.config else {
                    return self.top(out);
                };
                match s {
                    Sub::PageBits => {
                        let bits = be32(b);
                        c.page_bits = Some(bits);
                        if (9..=16).contains(&bits) {
                            self.ctx.page_bits = bits;
                        }
                        self.want(Want::SubPeek, 1, out);
                    }
                    Sub::Uuid => {
                        c.uuid = Some(b.iter().map(|x| format!("{x:02x}")).collect());
                        self.want(Want::SubPeek, 1, out);
                    }
                    Sub::Caps => {
                        c.caps_left = be32(b).min(64);
                        if c.caps_left == 0 {
                            self.want(Want::SubPeek, 1, out);
                        } else {
                            self.want(Want::CapLen, 1, out);
                        }
                    }
                }
            }
            Want::CapLen => self.want(Want::CapName, usize::from(b[0]), out),
            Want::CapName => {
                let Some(c) = &mut self.config else {
                    return self.top(out);
                };
                c.caps.push(escape_bytes(b));
                c.caps_left -= 1;
                if c.caps_left == 0 {
                    self.want(Want::SubPeek, 1, out);
                } else {
                    self.want(Want::CapLen, 1, out);
                }
            }
            Want::CommandHead => {
                let (cmd, len) = (be16(&b[..2]), be16(&b[2..]));
                if let Some(expected) = wire::command_len(cmd).filter(|&e| e != len) {
                    return self.broken(
                        out,
                        self.item_start,
                        DiagKind::MalformedBody,
                        format!(
                            "command {} with {len} bytes of data (it has {expected})",
                            wire::command_name(cmd).unwrap_or("?")
                        ),
                    );
                }
                if wire::command_name(cmd).is_none() {
                    self.diag(
                        out,
                        Severity::Warning,
                        self.item_start,
                        DiagKind::UnknownRecord,
                        format!("unknown command {cmd}"),
                    );
                }
                self.want(Want::CommandData(cmd), usize::from(len), out);
            }
            Want::CommandData(cmd) => {
                let value = match b.len() {
                    4 => Some(u64::from(be32(b))),
                    8 => Some(be64(b)),
                    _ => None,
                };
                if cmd == wire::CMD_ENABLE_COLO {
                    self.ctx.colo = true;
                }
                let info = QemuInfo::Command {
                    cmd,
                    data_len: b.len() as u16,
                    value,
                };
                self.item(out, self.item_start, QemuKind::Command(cmd), info, 0);
                self.top(out);
            }
            Want::VmDescLen => {
                let len = be32(b);
                self.desc.clear();
                self.desc_len = len;
                if len == 0 {
                    self.description(out);
                } else {
                    self.state = State::VmDesc(u64::from(len));
                }
            }
            Want::AfterEof => {
                if b[0] == SectionType::VmDescription.byte() {
                    self.item_start = self.offset - 1;
                    self.want(Want::VmDescLen, 4, out);
                } else {
                    self.unread(b);
                    self.want(Want::ColoMsg, 4, out);
                }
            }
            Want::RamHead => self.ram_head(be64(b), out),
            Want::RamBlockLen(flags, addr) => {
                if b[0] == 0 {
                    return self.broken(
                        out,
                        self.offset - 9,
                        DiagKind::MalformedBody,
                        "RAM record with an empty RAMBlock id".into(),
                    );
                }
                self.want(Want::RamBlockName(flags, addr), usize::from(b[0]), out);
            }
            Want::RamBlockName(flags, addr) => {
                if !wire::plausible_idstr(b) {
                    let at = self.offset - b.len() as u64 - 9;
                    return self.broken(
                        out,
                        at,
                        DiagKind::MalformedBody,
                        format!(
                            "RAM record naming a RAMBlock that is not text: {}",
                            escape_bytes(b)
                        ),
                    );
                }
                let name = String::from_utf8_lossy(b).into_owned();
                let i = self.block_index(&name);
                self.ctx.last_block = i;
                self.page(flags, addr, out);
            }
            Want::RamZeroFill => self.want(Want::RamHead, 8, out),
            Want::RamXbzrleHead => {
                let len = u64::from(be16(&b[1..]));
                if b[0] != 1 || len > self.page_size() {
                    return self.broken(
                        out,
                        self.offset - 3,
                        DiagKind::MalformedBody,
                        format!("XBZRLE page with flags {:#x} and {len} bytes", b[0]),
                    );
                }
                self.skip(len, out);
            }
            Want::RamCompressLen => {
                let len = u64::from(be32(b));
                if len > 2 * self.page_size() {
                    return self.broken(
                        out,
                        self.offset - 4,
                        DiagKind::MalformedBody,
                        format!("compressed page of {len} bytes"),
                    );
                }
                self.skip(len, out);
            }
            Want::MemSizeLen => {
                if b[0] == 0 {
                    return self.broken(
                        out,
                        self.offset - 1,
                        DiagKind::MalformedBody,
                        "MEM_SIZE lists a RAMBlock with an empty id".into(),
                    );
                }
                self.want(Want::MemSizeName, usize::from(b[0]) + 8, out);
            }
            Want::MemSizeName => {
                let n = b.len() - 8;
                let name = escape_bytes(&b[..n]);
                let size = be64(&b[n..]);
                if let Some(r) = self.cur.as_mut().and_then(|c| c.ram.as_mut()) {
                    if r.blocks.len() < super::info::MAX_BLOCKS {
                        r.blocks.push(super::info::BlockCount {
                            name: name.clone(),
                            size: Some(size),
                            ..Default::default()
                        });
                    }
                }
                self.block_index(&name);
                if size == 0 || size > self.ctx.mem_left {
                    let at = self.offset - b.len() as u64 - 1;
                    return self.broken(
                        out,
                        at,
                        DiagKind::MalformedBody,
                        format!("MEM_SIZE lists RAMBlock {name} of {size} bytes, more than the total left"),
                    );
                }
                self.ctx.mem_left -= size;
                if self.ctx.mem_left == 0 {
                    self.want(Want::RamHead, 8, out);
                } else {
                    self.want(Want::MemSizeLen, 1, out);
                }
            }
            Want::FooterPeek => {
                if b[0] == SectionType::Footer.byte() {
                    self.look_at = self.offset - 1;
                    self.want(Want::FooterId, 4, out);
                } else {
                    // a machine type without section footers
                    self.unread(b);
                    let end = self.offset;
                    self.end_section(end, false, out);
                }
            }
            Want::FooterId => {
                let id = be32(b);
                let at = self.look_at;
                match &self.cur {
                    Some(c) if c.id == id => self.end_section(at, true, out),
                    Some(c) => {
                        let msg =
                            format!("footer of section {id} ends section {} ({})", c.id, c.idstr);
                        self.broken(out, at, DiagKind::MalformedBody, msg)
                    }
                    None => self.top(out),
                }
            }
            Want::FooterCheck => match self.footer_verdict(b) {
                // (a verdict always needs more than it has, or it is a bug:
                // taken as "no" so that the decoder cannot stall)
                Check::Need(n) if n > b.len() => {
                    self.buf = b.to_vec();
                    self.need = n;
                }
                Check::Yes => {
                    self.unread(&b[5..]);
                    let at = self.look_at;
                    self.end_section(at, true, out);
                }
                Check::No | Check::Need(_) => {
                    self.unread(&b[1..]);
                    self.state = State::DeviceBody;
                }
            },
            Want::ColoMsg => self.colo_message(b, out),
            Want::ColoSize => {
                let size = be64(b);
                let info = QemuInfo::Colo {
                    message: ColoMessage::VmstateSize,
                    size: Some(size),
                };
                self.item(
                    out,
                    self.item_start,
                    QemuKind::Colo(ColoMessage::VmstateSize),
                    info,
                    0,
                );
                if size > MAX_DEVICE_STATE {
                    return self.broken(
                        out,
                        self.item_start,
                        DiagKind::OversizedRecord,
                        format!("VMSTATE_SIZE announces {size} bytes of device state"),
                    );
                }
                self.blob = Some(Blob {
                    offset: self.offset,
                    size,
                    sections: 0,
                    lost: 0,
                    broken: false,
                });
                if size == 0 {
                    self.end_blob(out);
                } else {
                    self.top(out);
                }
            }
            Want::Reverse => self.reverse(b, out),
            Want::RpData(t) => {
                let value = match b.len() {
                    4 => Some(u64::from(be32(b))),
                    8 => Some(be64(b)),
                    _ => None,
                };
                let info = QemuInfo::ReturnPath {
                    rp_type: t,
                    len: b.len() as u16,
                    value,
                };
                self.item(out, self.item_start, QemuKind::ReturnPath(t), info, 0);
                self.want(Want::Reverse, 4, out);
            }
            Want::MultifdInit => {
                let info = QemuInfo::MultifdInit {
                    version: be32(&b[4..8]),
                    channel: b[24],
                };
                self.item(out, self.item_start, QemuKind::MultifdInit, info, 0);
                self.item_start = self.offset;
                self.want(Want::MultifdHead, wire::MULTIFD_PACKET_LEN, out);
            }
            Want::MultifdHead => self.multifd_head(b, out),
        }
    }

    fn opening(&mut self, b: &[u8], out: &mut Vec<Event>) {
        if b == wire::OPENING {
            let info = QemuInfo::Header {
                version: wire::VERSION,
            };
            self.item(out, self.offset - 8, QemuKind::Header, info, 0);
            self.top(out);
        } else if b == wire::MULTIFD_OPENING {
            self.item_start = self.offset - 8;
            self.buf = b.to_vec();
            self.state = State::Collect(Want::MultifdInit);
            self.need = wire::MULTIFD_INIT_LEN;
        } else if b[..4] == wire::MAGIC {
            self.diag(
                out,
                Severity::Error,
                self.offset - 8,
                DiagKind::BadHeader,
                format!(
                    "QEMU stream version {} (only version 3 is known)",
                    be32(&b[4..])
                ),
            );
            self.top(out);
        } else {
            self.diag(
                out,
                Severity::Error,
                self.offset - 8,
                DiagKind::Unrecognised,
                "the stream does not open with \"QEVM\", version 3".into(),
            );
            self.unread(b);
            self.start_hunt();
        }
    }

    fn on_type(&mut self, t: u8, out: &mut Vec<Event>) {
        self.item_start = self.offset - 1;
        let in_blob = self.blob.is_some();
        match SectionType::from_byte(t) {
            Some(SectionType::Eof) => self.eof(out),
            Some(s @ (SectionType::Start | SectionType::Full)) => {
                self.want(Want::SectionHead(s), 5, out)
            }
            Some(s @ (SectionType::Part | SectionType::End)) => {
                self.want(Want::SectionHead(s), 4, out)
            }
            Some(SectionType::Configuration) if !in_blob => self.want(Want::ConfigLen, 4, out),
            Some(SectionType::Command) if !in_blob => self.want(Want::CommandHead, 4, out),
            Some(SectionType::VmDescription) if !in_blob => self.want(Want::VmDescLen, 4, out),
            _ => self.broken(
                out,
                self.item_start,
                DiagKind::UnexpectedRecord,
                format!("byte {t:#04x} where a section type was expected"),
            ),
        }
    }

    fn eof(&mut self, out: &mut Vec<Event>) {
        let closes = if self.blob.is_some() {
            "device state"
        } else if self.ctx.checkpoint_ram {
            "checkpoint ram"
        } else if std::mem::take(&mut self.ctx.unsure) {
            "what the capture began inside"
        } else {
            "migration"
        };
        self.item(
            out,
            self.item_start,
            QemuKind::Eof,
            QemuInfo::Eof { closes },
            0,
        );
        if let Some(b) = &self.blob {
            let end = b.end();
            if self.offset < end {
                let msg = format!(
                    "the device state ends with EOF {} bytes before the size VMSTATE_SIZE announced",
                    end - self.offset
                );
                self.broken(out, self.item_start, DiagKind::MalformedBody, msg);
            } else {
                self.end_blob(out);
            }
        } else if self.ctx.checkpoint_ram {
            self.ctx.checkpoint_ram = false;
            self.want(Want::ColoMsg, 4, out);
        } else {
            self.want(Want::AfterEof, 1, out);
        }
    }

    fn description(&mut self, out: &mut Vec<Event>) {
        let inspected = self.desc.len() == self.desc_len as usize;
        let (mut page_size, mut devices) = (None, None);
        if inspected {
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&self.desc) {
                page_size = v.get("page_size").and_then(|p| p.as_u64());
                devices = v
                    .get("devices")
                    .and_then(|d| d.as_array())
                    .map(|d| d.len() as u64);
            }
        }
        let info = QemuInfo::VmDescription {
            len: self.desc_len,
            page_size,
            devices,
            inspected,
        };
        self.desc = Vec::new();
        self.item(out, self.item_start, QemuKind::VmDescription, info, 0);
        self.want(Want::ColoMsg, 4, out);
    }

    fn end_config(&mut self, out: &mut Vec<Event>) {
        let Some(c) = self.config.take() else {
            return self.top(out);
        };
        let info = QemuInfo::Configuration {
            machine: c.machine,
            target_page_bits: c.page_bits,
            capabilities: c.caps,
            uuid: c.uuid,
        };
        self.item(out, c.start, QemuKind::Configuration, info, 0);
        self.top(out);
    }

    fn section_name(&self, id: u32) -> Option<String> {
        self.ctx
            .sections
            .iter()
            .find(|s| s.0 == id)
            .map(|s| s.1.clone())
            .or_else(|| (self.ctx.ram_id == Some(id)).then(|| wire::RAM_SECTION.to_string()))
    }

    fn start_section(
        &mut self,
        stype: SectionType,
        id: u32,
        idstr: String,
        instance: Option<u32>,
        version: Option<u32>,
        out: &mut Vec<Event>,
    ) {
        let ram = idstr == wire::RAM_SECTION;
        self.cur = Some(Cur {
            offset: self.item_start,
            stype,
            id,
            idstr,
            instance,
            version,
            body_start: self.offset,
            ram: ram.then(Box::default),
            lost: 0,
        });
        if ram {
            self.want(Want::RamHead, 8, out);
        } else {
            self.state = State::DeviceBody;
        }
    }

    /// Ends the current section; `body_end` is where its footer (or, without
    /// one, the next section) begins.
    fn end_section(&mut self, body_end: u64, footer: bool, out: &mut Vec<Event>) {
        if let Some(c) = self.cur.take() {
            let info = QemuInfo::Section(Section {
                section_id: c.id,
                idstr: escape_bytes(c.idstr.as_bytes()),
                instance_id: c.instance,
                version_id: c.version,
                body_len: body_end.saturating_sub(c.body_start),
                footer,
                ram: c.ram,
            });
            self.item(out, c.offset, QemuKind::Section(c.stype), info, c.lost);
            if let Some(b) = &mut self.blob {
                b.sections += 1;
            }
        }
        self.top(out);
    }

    fn page_size(&self) -> u64 {
        1 << self.ctx.page_bits
    }

    fn block_index(&mut self, name: &str) -> Option<usize> {
        match self.ctx.blocks.iter().position(|b| b == name) {
            Some(i) => Some(i),
            None if self.ctx.blocks.len() < MAX_BLOCK_NAMES => {
                self.ctx.blocks.push(name.to_string());
                Some(self.ctx.blocks.len() - 1)
            }
            None => None,
        }
    }

    fn ram_head(&mut self, v: u64, out: &mut Vec<Event>) {
        let mask = self.page_size() - 1;
        let (flags, addr) = (v & mask, v & !mask);
        let at = self.offset - 8;
        if flags & ram_flag::HOOK != 0 {
            return self.broken(
                out,
                at,
                DiagKind::UnknownRecord,
                "RAM record with RDMA's hook flag: RDMA migration is not decoded".into(),
            );
        }
        let main = flags & !ram_flag::CONTINUE;
        let Some(r) = self.cur.as_mut().and_then(|c| c.ram.as_mut()) else {
            return self.top(out);
        };
        match main {
            ram_flag::EOS => {
                r.eos = true;
                self.want(Want::FooterPeek, 1, out);
            }
            ram_flag::MEM_SIZE => {
                r.mem_size = Some(addr);
                self.ctx.mem_left = addr;
                if addr == 0 {
                    self.want(Want::RamHead, 8, out);
                } else {
                    self.want(Want::MemSizeLen, 1, out);
                }
            }
            ram_flag::MULTIFD_FLUSH => {
                r.multifd_flushes += 1;
                self.want(Want::RamHead, 8, out);
            }
            ram_flag::ZERO | ram_flag::PAGE | ram_flag::XBZRLE | ram_flag::COMPRESS_PAGE => {
                if flags & ram_flag::CONTINUE != 0 {
                    self.page(main, addr, out);
                } else {
                    self.want(Want::RamBlockLen(main, addr), 1, out);
                }
            }
            _ => self.broken(
                out,
                at,
                DiagKind::MalformedBody,
                format!("RAM record with flags {flags:#x}, which QEMU does not combine"),
            ),
        }
    }

    /// A page record whose block is known (`ctx.last_block`).
    fn page(&mut self, main: u64, addr: u64, out: &mut Vec<Event>) {
        self.count_page(main, addr);
        match main {
            ram_flag::ZERO => self.want(Want::RamZeroFill, 1, out),
            ram_flag::PAGE => {
                let n = self.page_size();
                self.skip(n, out)
            }
            ram_flag::XBZRLE => self.want(Want::RamXbzrleHead, 3, out),
            _ => self.want(Want::RamCompressLen, 4, out),
        }
    }

    /// Counts a page record of the current block: its section's tallies
    /// and the passes over memory.
    fn count_page(&mut self, main: u64, addr: u64) {
        let block = self.ctx.last_block;
        let key = (block.unwrap_or(usize::MAX), addr);
        let new_pass = self.ctx.last_page.map_or(true, |last| key <= last);
        self.ctx.last_page = Some(key);
        let name = block
            .and_then(|i| self.ctx.blocks.get(i))
            .map_or("?", String::as_str);
        if let Some(r) = self.cur.as_mut().and_then(|c| c.ram.as_mut()) {
            if new_pass {
                r.new_passes += 1;
            }
            r.count(name, main != ram_flag::ZERO, None);
            match main {
                ram_flag::XBZRLE => r.xbzrle_pages += 1,
                ram_flag::COMPRESS_PAGE => r.compressed_pages += 1,
                _ => {}
            }
        }
    }

    /// The fast path of a RAM section: runs of CONTINUE zero pages and raw
    /// pages held whole in `data` are counted in place, without the piece
    /// buffer. Returns the bytes taken (0: take the general path).
    fn ram_run(&mut self, data: &[u8]) -> usize {
        let ps = self.page_size() as usize;
        let mask = ps as u64 - 1;
        let (zero, page) = (
            ram_flag::ZERO | ram_flag::CONTINUE,
            ram_flag::PAGE | ram_flag::CONTINUE,
        );
        let mut at = 0;
        while data.len() - at >= 9 {
            let v = be64(&data[at..at + 8]);
            let flags = v & mask;
            if flags == zero {
                self.count_page(ram_flag::ZERO, v & !mask);
                at += 9;
            } else if flags == page && data.len() - at >= 8 + ps {
                self.count_page(ram_flag::PAGE, v & !mask);
                at += 8 + ps;
            } else {
                break;
            }
        }
        self.offset += at as u64;
        at
    }

    fn skip(&mut self, n: u64, out: &mut Vec<Event>) {
        if n == 0 {
            self.want(Want::RamHead, 8, out);
        } else {
            self.state = State::Skip(n);
        }
    }

    /// A device section's body: bytes up to a 0x7e are the body; a 0x7e is
    /// checked as a footer.
    fn scan_body(&mut self, data: &[u8], out: &mut Vec<Event>) -> usize {
        let limit = match &self.blob {
            Some(b) => b.end().saturating_sub(self.offset).min(data.len() as u64) as usize,
            None => data.len(),
        };
        if limit == 0 {
            let msg = "the device state ends inside a device section".to_string();
            let at = self.cur.as_ref().map_or(self.offset, |c| c.offset);
            self.broken(out, at, DiagKind::MalformedBody, msg);
            return 0;
        }
        let body_start = self.cur.as_ref().map_or(self.offset, |c| c.body_start);
        match data[..limit]
            .iter()
            .position(|&x| x == SectionType::Footer.byte())
        {
            Some(i) => {
                self.offset += i as u64 + 1;
                self.look_at = self.offset - 1;
                self.buf.clear();
                self.buf.push(data[i]);
                self.state = State::Collect(Want::FooterCheck);
                self.need = 5;
                i + 1
            }
            None => {
                self.offset += limit as u64;
                if self.offset - body_start > MAX_DEVICE_BODY {
                    let at = self.cur.as_ref().map_or(self.offset, |c| c.offset);
                    let msg =
                        format!("no footer within {MAX_DEVICE_BODY} bytes of a device section");
                    self.broken(out, at, DiagKind::Truncated, msg);
                }
                limit
            }
        }
    }

    /// Whether the bytes at a 0x7e in a device section's body (`b`) are its
    /// footer: the section's id, then what can follow a section.
    fn footer_verdict(&self, b: &[u8]) -> Check {
        let Some(cur) = &self.cur else {
            return Check::No;
        };
        if b.len() < 5 {
            return Check::Need(5);
        }
        if be32(&b[1..5]) != cur.id {
            return Check::No;
        }
        let after = self.look_at + 5;
        if let Some(blob) = &self.blob {
            if after >= blob.end() {
                return Check::No;
            }
            if b.len() < 6 {
                return Check::Need(6);
            }
            return match b[5] {
                0x00 if after + 1 == blob.end() => Check::Yes,
                0x04 => named_header(&b[5..]).after(5),
                _ => Check::No,
            };
        }
        if b.len() < 6 {
            return if self.final_scan {
                Check::Yes
            } else {
                Check::Need(6)
            };
        }
        match SectionType::from_byte(b[5]) {
            Some(SectionType::Eof) => {
                if b.len() < 7 {
                    if self.final_scan {
                        Check::Yes
                    } else {
                        Check::Need(7)
                    }
                } else if b[6] == SectionType::VmDescription.byte() || b[6] == 0 {
                    Check::Yes
                } else {
                    Check::No
                }
            }
            Some(SectionType::Start | SectionType::Full) => named_header(&b[5..]).after(5),
            Some(SectionType::Part | SectionType::End) => {
                if b.len() < 10 {
                    Check::Need(10)
                } else if self.section_name(be32(&b[6..10])).is_some() {
                    Check::Yes
                } else {
                    Check::No
                }
            }
            Some(SectionType::Command) => {
                if b.len() < 10 {
                    Check::Need(10)
                } else if wire::command_name(be16(&b[6..8])).is_some() {
                    Check::Yes
                } else {
                    Check::No
                }
            }
            _ => Check::No,
        }
    }

    fn colo_message(&mut self, b: &[u8], out: &mut Vec<Event>) {
        self.item_start = self.offset - 4;
        let v = be32(b);
        let Some(m) = ColoMessage::from_value(v) else {
            if !self.ctx.colo {
                self.diag(
                    out,
                    Severity::Warning,
                    self.item_start,
                    DiagKind::TrailingData,
                    "bytes after the end of the migration stream".into(),
                );
                self.unread(b);
                self.state = State::Trailing;
                return;
            }
            return self.broken(
                out,
                self.item_start,
                DiagKind::UnknownRecord,
                format!("{v:#010x} where a COLO message was expected"),
            );
        };
        self.ctx.colo = true;
        match m {
            ColoMessage::VmstateSize => return self.want(Want::ColoSize, 8, out),
            _ if !m.from_primary() => self.diag(
                out,
                Severity::Warning,
                self.item_start,
                DiagKind::UnexpectedRecord,
                format!(
                    "{} is the secondary's message, here on the primary's stream",
                    m.name()
                ),
            ),
            _ => {}
        }
        let info = QemuInfo::Colo {
            message: m,
            size: None,
        };
        self.item(out, self.item_start, QemuKind::Colo(m), info, 0);
        if m == ColoMessage::VmstateSend {
            self.ctx.checkpoint_ram = true;
            self.top(out);
        } else {
            self.want(Want::ColoMsg, 4, out);
        }
    }

    fn end_blob(&mut self, out: &mut Vec<Event>) {
        if let Some(b) = self.blob.take() {
            let info = QemuInfo::DeviceState {
                size: b.size,
                sections: b.sections,
                complete: !b.broken && b.lost == 0,
            };
            self.item(out, b.offset, QemuKind::DeviceState, info, b.lost);
        }
        self.cur = None;
        self.want(Want::ColoMsg, 4, out);
    }

    /// Four bytes of the reverse direction: a COLO message (first two bytes
    /// 0) or a return-path message header.
    fn reverse(&mut self, b: &[u8], out: &mut Vec<Event>) {
        self.item_start = self.offset - 4;
        if b[0] == 0 && b[1] == 0 {
            if let Some(m) = ColoMessage::from_value(be32(b)) {
                self.resynced(out);
                self.ctx.colo = true;
                if m == ColoMessage::CheckpointReady && self.ctx.rp_seen {
                    self.diag(
                        out,
                        Severity::Error,
                        self.item_start,
                        DiagKind::UnexpectedRecord,
                        "CHECKPOINT_READY on a direction that also carries the return path: QEMU's primary reads these four zero bytes as a return-path message of type 0 (invalid) and fails the migration (COLO and the return-path capability do not mix)".into(),
                    );
                } else if m.from_primary() || m == ColoMessage::VmstateSize {
                    self.diag(
                        out,
                        Severity::Warning,
                        self.item_start,
                        DiagKind::UnexpectedRecord,
                        format!(
                            "{} is the primary's message, here on the secondary's direction",
                            m.name()
                        ),
                    );
                }
                let info = QemuInfo::Colo {
                    message: m,
                    size: None,
                };
                self.item(out, self.item_start, QemuKind::Colo(m), info, 0);
                return self.want(Want::Reverse, 4, out);
            }
        } else if b[0] == 0 && (1..=6).contains(&b[1]) {
            let (t, len) = (be16(&b[..2]), be16(&b[2..]));
            if rp_plausible(t, len) {
                self.resynced(out);
                self.ctx.rp_seen = true;
                return self.want(Want::RpData(t), usize::from(len), out);
            }
        }
        // not a message: slide by one byte
        if self.garbage == 0 {
            self.diag(
                out,
                Severity::Warning,
                self.item_start,
                DiagKind::Resync,
                format!(
                    "{:02x} {:02x} {:02x} {:02x} is neither a COLO nor a return-path message; skipping to the next one",
                    b[0], b[1], b[2], b[3]
                ),
            );
        }
        self.garbage += 1;
        self.unread(&b[1..]);
        self.want(Want::Reverse, 4, out);
    }

    fn resynced(&mut self, out: &mut Vec<Event>) {
        if self.garbage > 0 {
            out.push(Event::Resync {
                offset: self.item_start,
                skipped: self.garbage,
                anchor: Anchor::QemuMessage,
            });
            self.garbage = 0;
        }
    }

    fn multifd_head(&mut self, b: &[u8], out: &mut Vec<Event>) {
        let start = self.offset - b.len() as u64;
        if be32(&b[..4]) != wire::MULTIFD_MAGIC {
            self.diag(
                out,
                Severity::Error,
                start,
                DiagKind::MalformedBody,
                "multifd packet without its magic".into(),
            );
            self.state = State::Trailing;
            return;
        }
        let flags = be32(&b[8..12]);
        let alloc = be32(&b[12..16]);
        let pages = be32(&b[16..20]);
        let next = be32(&b[20..24]);
        let num = be64(&b[24..32]);
        let rb = &b[64..320];
        let rb = &rb[..rb.iter().position(|&c| c == 0).unwrap_or(rb.len())];
        if alloc > 1 << 16 || pages > alloc {
            self.diag(
                out,
                Severity::Error,
                start,
                DiagKind::MalformedBody,
                format!("multifd packet with {pages} of {alloc} pages and {next} bytes of them"),
            );
            self.state = State::Trailing;
            return;
        }
        self.packet = Some((start, flags, pages, next, num, escape_bytes(rb)));
        // The header carries an offset slot for every allocated page. The
        // pages follow: raw (normal_pages of them) or, with compression
        // (flags 0x0e), next_packet_size bytes; a packet without pages
        // (SYNC) keeps a stale next_packet_size and sends none.
        let data = match (pages, flags & wire::MULTIFD_COMPRESSION_MASK) {
            (0, _) => 0,
            (n, 0) => u64::from(n) * self.page_size(),
            (_, _) => u64::from(next),
        };
        let left = u64::from(alloc) * 8 + data;
        if left == 0 {
            self.end_packet(out);
        } else {
            self.state = State::MultifdData(left);
        }
    }

    fn end_packet(&mut self, out: &mut Vec<Event>) {
        if let Some((start, flags, pages, next, num, rb)) = self.packet.take() {
            let info = QemuInfo::MultifdPacket {
                flags,
                pages,
                next_packet_size: next,
                packet_num: num,
                ramblock: rb,
            };
            self.item(out, start, QemuKind::MultifdPacket, info, 0);
        }
        self.want(Want::MultifdHead, wire::MULTIFD_PACKET_LEN, out);
    }

    fn start_hunt(&mut self) {
        self.state = State::Hunt;
        self.hunt.clear();
        self.hunt_from = self.offset;
        self.hunt_pos = 0;
        self.buf.clear();
    }

    fn hunt_step(&mut self, data: &[u8], out: &mut Vec<Event>) -> usize {
        if self.hunt.len() >= HUNT_WINDOW {
            let drop = self.hunt_pos.min(self.hunt.len() / 2).max(1);
            self.hunt.drain(..drop);
            self.hunt_from += drop as u64;
            self.hunt_pos -= drop.min(self.hunt_pos);
            self.hunt_skipped += drop as u64;
        }
        // in slices, so that the window (what is left undecided after each
        // scan) stays small
        let take = data.len().min(HUNT_WINDOW - self.hunt.len()).min(16 << 10);
        self.hunt.extend_from_slice(&data[..take]);
        self.offset += take as u64;
        self.scan_hunt(out);
        take
    }

    fn scan_hunt(&mut self, out: &mut Vec<Event>) {
        let mut p = self.hunt_pos;
        while p < self.hunt.len() {
            match self.anchor_at(&self.hunt[p..]) {
                Check::Need(_) if !self.final_scan => break,
                Check::Yes => return self.anchored(p, out),
                _ => p += 1,
            }
        }
        // Bytes before `p` can anchor nothing: only the undecided tail is
        // kept (at most an anchor's length), so a hunt through megabytes of
        // other traffic holds a few hundred bytes.
        self.hunt.drain(..p);
        self.hunt_from += p as u64;
        self.hunt_skipped += p as u64;
        self.hunt_pos = 0;
    }

    fn anchored(&mut self, p: usize, out: &mut Vec<Event>) {
        let hunt = mem::take(&mut self.hunt);
        let at = self.hunt_from + p as u64;
        let skipped = self.hunt_skipped + p as u64;
        self.hunt_skipped = 0;
        let anchor = anchor_kind(&hunt[p..]);
        out.push(Event::Resync {
            offset: at,
            skipped,
            anchor,
        });
        self.cur = None;
        self.blob = None;
        self.ctx.checkpoint_ram = false;
        self.ctx.unsure = false;
        let rest = &hunt[p..];
        match rest[0] {
            0x00 => {
                // a COLO message followed by what it announces
                self.ctx.colo = true;
                self.note_ram_id(&rest[4..]);
                self.unread(rest);
                self.want(Want::ColoMsg, 4, out);
            }
            0x7e => {
                // a footer, then the migration's EOF and its description
                self.unread(&rest[5..]);
                self.top(out);
            }
            _ => {
                self.ctx.unsure = true;
                self.note_ram_id(rest);
                self.unread(rest);
                self.top(out);
            }
        }
    }

    /// A PART or END section taken for the RAM section by the hunt.
    fn note_ram_id(&mut self, b: &[u8]) {
        if matches!(b.first(), Some(0x02 | 0x03)) && b.len() >= 5 {
            self.ctx.ram_id = Some(be32(&b[1..5]));
        }
    }

    /// Whether `b` starts with something the hunt can trust.
    fn anchor_at(&self, b: &[u8]) -> Check {
        match b[0] {
            0x01 | 0x04 => named_header(b),
            0x02 | 0x03 => self.ram_section_at(b),
            0x00 => {
                if b.len() < 4 {
                    return Check::Need(4);
                }
                if b[1] != 0 || b[2] != 0 {
                    return Check::No;
                }
                match b[3] {
                    // REQUEST, then VMSTATE_SEND (REPLY goes the other way)
                    1 => {
                        if b.len() < 8 {
                            Check::Need(8)
                        } else if b[4..8] != [0, 0, 0, 3] {
                            Check::No
                        } else {
                            self.ram_section_at(&b[8..]).after(8)
                        }
                    }
                    3 => self.ram_section_at(&b[4..]).after(4),
                    4 => {
                        if b.len() < 12 {
                            return Check::Need(12);
                        }
                        if be64(&b[4..12]) > MAX_DEVICE_STATE || b.len() > 12 && b[12] != 0x04 {
                            return Check::No;
                        }
                        named_header(&b[12..]).after(12)
                    }
                    _ => Check::No,
                }
            }
            0x7e => {
                if b.len() < 11 {
                    return Check::Need(11);
                }
                let ok = b[5] == 0
                    && b[6] == SectionType::VmDescription.byte()
                    && b[7] == 0
                    && b[8] == 0;
                if ok && b.len() > 11 && b[11] == b'{' {
                    Check::Yes
                } else if ok && b.len() <= 11 {
                    Check::Need(12)
                } else {
                    Check::No
                }
            }
            _ => Check::No,
        }
    }

    /// A PART or END section header followed by a RAM record that names its
    /// block (or, when the RAM section's id is known, any RAM record).
    fn ram_section_at(&self, b: &[u8]) -> Check {
        if b.is_empty() {
            return Check::Need(1);
        }
        if !matches!(b[0], 0x02 | 0x03) {
            return Check::No;
        }
        if b.len() < 13 {
            return Check::Need(13);
        }
        let id = be32(&b[1..5]);
        if id > 0xffff {
            return Check::No;
        }
        let known = self.ctx.ram_id == Some(id);
        let v = be64(&b[5..13]);
        let mask = self.page_size() - 1;
        let (flags, addr) = (v & mask, v & !mask);
        if addr >> 52 != 0 {
            return Check::No;
        }
        let main = flags & !ram_flag::CONTINUE;
        if !matches!(
            main,
            ram_flag::ZERO | ram_flag::PAGE | ram_flag::XBZRLE | ram_flag::EOS
        ) {
            return Check::No;
        }
        if main == ram_flag::EOS || flags & ram_flag::CONTINUE != 0 {
            // nothing names the block: only the RAM section's known id says
            return if known { Check::Yes } else { Check::No };
        }
        if b.len() < 14 {
            return Check::Need(14);
        }
        let len = usize::from(b[13]);
        if len == 0 {
            return Check::No;
        }
        if b.len() < 14 + len {
            return Check::Need(14 + len);
        }
        if wire::plausible_idstr(&b[14..14 + len]) {
            Check::Yes
        } else {
            Check::No
        }
    }

    /// `len` bytes at the current offset were lost by the capture.
    pub fn gap(&mut self, len: u64, out: &mut Vec<Event>) {
        if len == 0 {
            return;
        }
        if !self.replay.is_empty() {
            self.push(&[], out);
        }
        out.push(Event::Gap {
            offset: self.offset,
            len,
        });
        match self.state {
            State::Skip(left) if len <= left => {
                self.offset += len;
                if let Some(c) = &mut self.cur {
                    c.lost += len;
                }
                if len == left {
                    self.want(Want::RamHead, 8, out);
                } else {
                    self.state = State::Skip(left - len);
                }
            }
            State::MultifdData(left) if len < left => {
                self.offset += len;
                self.state = State::MultifdData(left - len);
            }
            State::Trailing => self.offset += len,
            State::Hunt => {
                // the window's bytes before the gap cannot anchor across it
                self.hunt_skipped += self.hunt.len() as u64 + len;
                self.offset += len;
                self.hunt.clear();
                self.hunt_from = self.offset;
                self.hunt_pos = 0;
            }
            _ => {
                let in_blob = self
                    .blob
                    .as_ref()
                    .is_some_and(|b| self.offset + len <= b.end());
                self.buf.clear();
                self.cur = None;
                if in_blob {
                    self.offset += len;
                    if let Some(b) = &mut self.blob {
                        b.lost += len;
                    }
                    self.state = State::BlobSkip;
                    if self.blob.as_ref().is_some_and(|b| self.offset == b.end()) {
                        self.end_blob(out);
                    }
                } else if self.dir == Direction::Reverse {
                    self.offset += len;
                    self.want(Want::Reverse, 4, out);
                } else {
                    self.blob = None;
                    self.offset += len;
                    self.start_hunt();
                    self.hunt_skipped = len;
                }
            }
        }
    }

    /// The direction ended: reports what was left incomplete.
    pub fn finish(&mut self, out: &mut Vec<Event>) {
        if !self.replay.is_empty() {
            self.push(&[], out);
        }
        self.final_scan = true;
        match self.state {
            State::Hunt => {
                self.scan_hunt(out);
                if !self.replay.is_empty() {
                    self.push(&[], out);
                }
            }
            State::Collect(Want::FooterCheck) => {
                let b = mem::take(&mut self.buf);
                if let Check::Yes = self.footer_verdict(&b) {
                    self.unread(&b[5..]);
                    let at = self.look_at;
                    self.end_section(at, true, out);
                    self.push(&[], out);
                } else {
                    self.buf = b;
                }
            }
            _ => {}
        }
        let what = match self.state {
            State::Collect(
                Want::Type | Want::ColoMsg | Want::AfterEof | Want::Reverse | Want::MultifdHead,
            ) if self.buf.is_empty() => None,
            State::Collect(Want::SubPeek) if self.buf.is_empty() => {
                self.end_config(out);
                None
            }
            State::Trailing | State::Hunt => None,
            State::Skip(_) | State::DeviceBody | State::Collect(_) => {
                Some(self.cur.as_ref().map_or("an item".to_string(), |c| {
                    format!("section {} ({})", c.id, c.idstr)
                }))
            }
            State::VmDesc(_) => Some("the JSON description".to_string()),
            State::BlobSkip => Some("a COLO device state".to_string()),
            State::MultifdData(_) => Some("a multifd packet".to_string()),
        };
        if let Some(what) = what {
            let at = self.cur.as_ref().map_or(self.item_start, |c| c.offset);
            self.diag(
                out,
                Severity::Error,
                at,
                DiagKind::Truncated,
                format!("stream ends inside {what}"),
            );
        }
        self.state = State::Trailing;
    }
}

/// A decision that may need more bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    Need(usize),
    Yes,
    No,
}

impl Check {
    /// The decision on bytes that start `k` bytes into what is checked.
    fn after(self, k: usize) -> Check {
        match self {
            Check::Need(n) => Check::Need(n + k),
            c => c,
        }
    }
}

/// Whether `b` starts with a plausible START or FULL header: section id and
/// instance and version ids under 2^16, a text idstr.
fn named_header(b: &[u8]) -> Check {
    if b.is_empty() {
        return Check::Need(1);
    }
    if !matches!(b[0], 0x01 | 0x04) {
        return Check::No;
    }
    if b.len() < 6 {
        return Check::Need(6);
    }
    if be32(&b[1..5]) > 0xffff {
        return Check::No;
    }
    let len = usize::from(b[5]);
    if len < 2 {
        return Check::No;
    }
    if b.len() < 6 + len + 8 {
        return Check::Need(6 + len + 8);
    }
    let ids = &b[6 + len..];
    if wire::plausible_idstr(&b[6..6 + len])
        && be32(&ids[..4]) <= 0xffff
        && be32(&ids[4..8]) <= 0xffff
    {
        Check::Yes
    } else {
        Check::No
    }
}

fn anchor_kind(b: &[u8]) -> Anchor {
    match b[0] {
        0x00 => Anchor::QemuMessage,
        _ => Anchor::QemuSection,
    }
}

fn rp_plausible(t: u16, len: u16) -> bool {
    match wire::rp_len(t) {
        Some(n) => n == len,
        None => len <= 512,
    }
}
