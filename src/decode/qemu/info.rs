//! What a QEMU item holds: a bounded typed summary, its one-line summary and
//! its detail tree (docs/PROTOCOL.md §9). Strings from the stream are escaped
//! ([`crate::decode::text`]) when they are taken, so none can drive a terminal.

use serde::Serialize;

use super::wire::{self, ColoMessage, SectionType};
use crate::decode::detail::Field;

/// RAMBlocks counted by name in one section; pages of further blocks are
/// counted together.
pub const MAX_BLOCKS: usize = 16;

/// The kind of a QEMU item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QemuKind {
    /// "QEVM", version.
    Header,
    Configuration,
    /// A START, PART, END or FULL section, header to footer.
    Section(SectionType),
    /// A `QEMU_VM_COMMAND`, by its number.
    Command(u16),
    Eof,
    VmDescription,
    Colo(ColoMessage),
    /// The device state a COLO VMSTATE_SIZE announced, as a whole.
    DeviceState,
    /// A return-path message, by its type.
    ReturnPath(u16),
    MultifdInit,
    MultifdPacket,
}

impl QemuKind {
    pub fn name(self) -> &'static str {
        match self {
            QemuKind::Header => "QEVM",
            QemuKind::Configuration => "CONFIGURATION",
            QemuKind::Section(t) => t.name(),
            QemuKind::Command(c) => wire::command_name(c).unwrap_or("COMMAND"),
            QemuKind::Eof => "EOF",
            QemuKind::VmDescription => "VMDESCRIPTION",
            QemuKind::Colo(m) => m.name(),
            QemuKind::DeviceState => "DEVICE_STATE",
            QemuKind::ReturnPath(t) => wire::rp_name(t),
            QemuKind::MultifdInit => "MULTIFD_INIT",
            QemuKind::MultifdPacket => "MULTIFD_PACKET",
        }
    }
}

/// Pages of one RAMBlock in one section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BlockCount {
    pub name: String,
    /// Pages with data (RAM_SAVE_FLAG_PAGE, XBZRLE, COMPRESS_PAGE).
    pub pages: u64,
    /// Pages sent as zero (RAM_SAVE_FLAG_ZERO: one fill byte).
    pub zero_pages: u64,
    /// Its size, from a MEM_SIZE record.
    pub size: Option<u64>,
}

/// The RAM records of one "ram" section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RamSummary {
    /// Pages with data: PAGE (a raw page), XBZRLE and COMPRESS_PAGE.
    pub pages: u64,
    pub zero_pages: u64,
    pub xbzrle_pages: u64,
    pub compressed_pages: u64,
    /// The MEM_SIZE record's total RAM, when the section has one.
    pub mem_size: Option<u64>,
    pub blocks: Vec<BlockCount>,
    /// Pages and zero pages of blocks beyond [`MAX_BLOCKS`].
    pub other_blocks: u64,
    /// The section's records ended with EOS.
    pub eos: bool,
    /// Passes over guest memory that began in this section: a pass begins
    /// with the stream's first page and whenever the page address (block
    /// order, then offset) goes back, as QEMU's scan restarts after each
    /// dirty-bitmap sync.
    pub new_passes: u32,
    pub multifd_flushes: u32,
    /// The index in `blocks` counted last (not output).
    #[serde(skip)]
    pub(super) last_block: usize,
}

impl RamSummary {
    pub(super) fn count(&mut self, block: &str, data: bool, size: Option<u64>) {
        if data {
            self.pages += 1;
        } else {
            self.zero_pages += 1;
        }
        // pages come block by block: the block counted last first
        let found = match self.blocks.get(self.last_block) {
            Some(b) if b.name == block => Some(self.last_block),
            _ => self.blocks.iter().position(|b| b.name == block),
        };
        let i = match found {
            Some(i) => i,
            None if self.blocks.len() < MAX_BLOCKS => {
                self.blocks.push(BlockCount {
                    name: block.to_string(),
                    size,
                    ..Default::default()
                });
                self.blocks.len() - 1
            }
            None => {
                self.other_blocks += 1;
                return;
            }
        };
        self.last_block = i;
        let b = &mut self.blocks[i];
        if data {
            b.pages += 1;
        } else {
            b.zero_pages += 1;
        }
    }
}

/// A START, PART, END or FULL section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Section {
    pub section_id: u32,
    /// Its handler's idstr ("ram", "timer", "0000:00:01.0/piix4_pm"...), from
    /// its START or FULL header; empty when the header was not seen.
    pub idstr: String,
    pub instance_id: Option<u32>,
    pub version_id: Option<u32>,
    /// Bytes between the header and the footer.
    pub body_len: u64,
    /// It ended with a footer (0x7e, section id).
    pub footer: bool,
    pub ram: Option<Box<RamSummary>>,
}

/// What a QEMU item holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QemuInfo {
    Header {
        version: u32,
    },
    Configuration {
        machine: String,
        target_page_bits: Option<u32>,
        capabilities: Vec<String>,
        uuid: Option<String>,
    },
    Section(Section),
    Command {
        cmd: u16,
        data_len: u16,
        /// PING's value, PACKAGED's length.
        value: Option<u64>,
    },
    Eof {
        /// What the EOF closes: "migration" (the initial migration's
        /// device state), "checkpoint ram", "device state", or "what the
        /// capture began inside" after a re-synchronisation on a section.
        closes: &'static str,
    },
    VmDescription {
        len: u32,
        page_size: Option<u64>,
        devices: Option<u64>,
        /// The JSON was read (descriptions over 1 MiB are skipped).
        inspected: bool,
    },
    Colo {
        message: ColoMessage,
        /// VMSTATE_SIZE's size.
        size: Option<u64>,
    },
    DeviceState {
        size: u64,
        sections: u32,
        /// Every byte of it was seen and it parsed to its EOF.
        complete: bool,
    },
    ReturnPath {
        rp_type: u16,
        len: u16,
        /// SHUT's status, PONG's and RESUME_ACK's value.
        value: Option<u64>,
    },
    MultifdInit {
        version: u32,
        channel: u8,
    },
    MultifdPacket {
        flags: u32,
        pages: u32,
        next_packet_size: u32,
        packet_num: u64,
        ramblock: String,
    },
}

fn f(name: &str, v: impl ToString) -> Field {
    Field::new(name, v)
}

impl QemuInfo {
    pub fn summary(&self) -> String {
        match self {
            QemuInfo::Header { version } => format!("QEMU migration stream, version {version}"),
            QemuInfo::Configuration {
                machine,
                capabilities,
                ..
            } => {
                let mut s = format!("machine {machine}");
                if !capabilities.is_empty() {
                    s.push_str(&format!(", capabilities {}", capabilities.join(" ")));
                }
                s
            }
            QemuInfo::Section(s) => {
                let mut t = format!(
                    "{} (section {}{}), {} bytes",
                    if s.idstr.is_empty() { "?" } else { &s.idstr },
                    s.section_id,
                    s.instance_id
                        .map(|i| format!(", instance {i}"))
                        .unwrap_or_default(),
                    s.body_len
                );
                if let Some(r) = &s.ram {
                    t.push_str(&format!(
                        ", {} page{}, {} zero",
                        r.pages,
                        if r.pages == 1 { "" } else { "s" },
                        r.zero_pages
                    ));
                    if r.xbzrle_pages > 0 {
                        t.push_str(&format!(", {} xbzrle", r.xbzrle_pages));
                    }
                    if let Some(m) = r.mem_size {
                        t.push_str(&format!(", RAM size {m}"));
                    }
                }
                if !s.footer {
                    t.push_str(", no footer");
                }
                t
            }
            QemuInfo::Command {
                cmd,
                data_len,
                value,
            } => {
                let name = wire::command_name(*cmd).unwrap_or("unknown command");
                match value {
                    Some(v) => format!("{name} ({cmd}), value {v}"),
                    None => format!("{name} ({cmd}), {data_len} bytes of data"),
                }
            }
            QemuInfo::Eof { closes } => format!("end of {closes}"),
            QemuInfo::VmDescription {
                len,
                devices,
                page_size,
                ..
            } => {
                let mut s = format!("JSON description of the devices, {len} bytes");
                if let Some(d) = devices {
                    s.push_str(&format!(", {d} devices"));
                }
                if let Some(p) = page_size {
                    s.push_str(&format!(", page size {p}"));
                }
                s
            }
            QemuInfo::Colo { message, size } => match size {
                Some(n) => format!("COLO {}: {n} bytes of device state follow", message.name()),
                None => format!("COLO {}", message.name()),
            },
            QemuInfo::DeviceState {
                size,
                sections,
                complete,
            } => format!(
                "COLO device state, {size} bytes, {sections} section{}{}",
                if *sections == 1 { "" } else { "s" },
                if *complete { "" } else { " (partial)" }
            ),
            QemuInfo::ReturnPath {
                rp_type,
                len,
                value,
            } => match value {
                Some(v) => format!("{} ({rp_type}), value {v}", wire::rp_name(*rp_type)),
                None => format!("{} ({rp_type}), {len} bytes", wire::rp_name(*rp_type)),
            },
            QemuInfo::MultifdInit { version, channel } => {
                format!("multifd channel {channel}, version {version}")
            }
            QemuInfo::MultifdPacket {
                pages,
                packet_num,
                ramblock,
                flags,
                ..
            } => format!(
                "multifd packet {packet_num}, {pages} pages of {ramblock}{}",
                if flags & wire::MULTIFD_FLAG_SYNC != 0 {
                    ", SYNC"
                } else {
                    ""
                }
            ),
        }
    }

    pub fn details(&self) -> Vec<Field> {
        match self {
            QemuInfo::Header { version } => {
                vec![f("magic", "QEVM (0x5145564d)"), f("version", version)]
            }
            QemuInfo::Configuration {
                machine,
                target_page_bits,
                capabilities,
                uuid,
            } => {
                let mut v = vec![f("machine type", machine)];
                if let Some(b) = target_page_bits {
                    v.push(f("target-page-bits", b));
                }
                if !capabilities.is_empty() {
                    v.push(f("capabilities", capabilities.join(", ")));
                }
                if let Some(u) = uuid {
                    v.push(f("uuid", u));
                }
                v
            }
            QemuInfo::Section(s) => {
                let mut v = vec![
                    f("section_id", s.section_id),
                    f(
                        "idstr",
                        if s.idstr.is_empty() {
                            "(header not seen)"
                        } else {
                            &s.idstr
                        },
                    ),
                ];
                if let Some(i) = s.instance_id {
                    v.push(f("instance_id", i));
                }
                if let Some(i) = s.version_id {
                    v.push(f("version_id", i));
                }
                v.push(f("body bytes", s.body_len));
                v.push(f("footer", if s.footer { "yes" } else { "no" }));
                if let Some(r) = &s.ram {
                    let mut kids =
                        vec![f("pages with data", r.pages), f("zero pages", r.zero_pages)];
                    if r.xbzrle_pages > 0 {
                        kids.push(f("xbzrle pages", r.xbzrle_pages));
                    }
                    if r.compressed_pages > 0 {
                        kids.push(f("compressed pages", r.compressed_pages));
                    }
                    if let Some(m) = r.mem_size {
                        kids.push(f("MEM_SIZE", m));
                    }
                    for b in &r.blocks {
                        let mut line = format!("{} pages, {} zero", b.pages, b.zero_pages);
                        if let Some(sz) = b.size {
                            line.push_str(&format!(", size {sz}"));
                        }
                        kids.push(f(&format!("block {}", b.name), line));
                    }
                    if r.other_blocks > 0 {
                        kids.push(f("other blocks' pages", r.other_blocks));
                    }
                    kids.push(f("EOS", if r.eos { "yes" } else { "no" }));
                    if r.new_passes > 0 {
                        kids.push(f("passes begun", r.new_passes));
                    }
                    v.push(f("RAM records", "").with_children(kids));
                }
                v
            }
            QemuInfo::Command {
                cmd,
                data_len,
                value,
            } => {
                let mut v = vec![
                    f(
                        "cmd",
                        format!("{cmd} ({})", wire::command_name(*cmd).unwrap_or("unknown")),
                    ),
                    f("len", data_len),
                ];
                if let Some(x) = value {
                    v.push(f("value", x));
                }
                v
            }
            QemuInfo::Eof { closes } => vec![f("closes", closes)],
            QemuInfo::VmDescription {
                len,
                page_size,
                devices,
                inspected,
            } => {
                let mut v = vec![f("length", len)];
                if let Some(p) = page_size {
                    v.push(f("page_size", p));
                }
                if let Some(d) = devices {
                    v.push(f("devices", d));
                }
                if !inspected {
                    v.push(f("JSON", "not inspected"));
                }
                v
            }
            QemuInfo::Colo { message, size } => {
                let mut v = vec![f(
                    "message",
                    format!("{} ({})", message.name(), message.value()),
                )];
                if let Some(s) = size {
                    v.push(f("size", s));
                }
                v
            }
            QemuInfo::DeviceState {
                size,
                sections,
                complete,
            } => vec![
                f("size", size),
                f("sections", sections),
                f("complete", complete),
            ],
            QemuInfo::ReturnPath {
                rp_type,
                len,
                value,
            } => {
                let mut v = vec![
                    f("type", format!("{rp_type} ({})", wire::rp_name(*rp_type))),
                    f("len", len),
                ];
                if let Some(x) = value {
                    v.push(f("value", x));
                }
                v
            }
            QemuInfo::MultifdInit { version, channel } => {
                vec![f("version", version), f("channel id", channel)]
            }
            QemuInfo::MultifdPacket {
                flags,
                pages,
                next_packet_size,
                packet_num,
                ramblock,
            } => vec![
                f("flags", format!("{flags:#x}")),
                f("normal_pages", pages),
                f("next_packet_size", next_packet_size),
                f("packet_num", packet_num),
                f("ramblock", ramblock),
            ],
        }
    }
}
