//! The QEMU migration stream's wire facts (docs/PROTOCOL.md §9), each
//! written once: the magics, the section and command tables, the RAM record
//! flags, the COLO messages and the return-path messages. Everything is
//! big-endian. Names are QEMU's own (`QEMU_VM_*`, `MIG_CMD_*`,
//! `RAM_SAVE_FLAG_*`, `COLO_MESSAGE_*`, `MIG_RP_MSG_*`) without the prefix.

use serde::Serialize;

/// `QEMU_VM_FILE_MAGIC`: "QEVM".
pub const MAGIC: [u8; 4] = *b"QEVM";
/// `QEMU_VM_FILE_VERSION`, the only version QEMU has written since 2.x.
pub const VERSION: u32 = 3;
/// The 8 bytes a QEMU stream opens with: magic, then version 3.
pub const OPENING: [u8; 8] = [b'Q', b'E', b'V', b'M', 0, 0, 0, 3];
/// A multifd channel's first bytes: `MULTIFD_MAGIC`, then version 1.
pub const MULTIFD_MAGIC: u32 = 0x1122_3344;
pub const MULTIFD_VERSION: u32 = 1;
pub const MULTIFD_OPENING: [u8; 8] = [0x11, 0x22, 0x33, 0x44, 0, 0, 0, 1];
/// `MultiFDInit_t`: magic, version, uuid[16], id, 7 + 32 reserved bytes.
pub const MULTIFD_INIT_LEN: usize = 64;
/// `MULTIFD_FLAG_SYNC`: the packet ends a pass on its channel.
pub const MULTIFD_FLAG_SYNC: u32 = 0x01;
/// `MULTIFD_FLAG_COMPRESSION_MASK`: 0 is raw pages (zlib, zstd otherwise).
pub const MULTIFD_COMPRESSION_MASK: u32 = 0x0e;
/// `MultiFDPacket_t` without its offsets: six be32, be64 packet_num, four
/// reserved be64, ramblock[256].
pub const MULTIFD_PACKET_LEN: usize = 320;

/// The target page size when the stream does not say (x86, and QEMU's
/// default `TARGET_PAGE_BITS`); the configuration's `target-page-bits`
/// subsection overrides it.
pub const DEFAULT_PAGE_BITS: u32 = 12;

/// Top-level section types (`QEMU_VM_*`, migration/savevm.c).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SectionType {
    Eof,
    Start,
    Part,
    End,
    Full,
    Subsection,
    VmDescription,
    Configuration,
    Command,
    Footer,
}

impl SectionType {
    pub const ALL: [SectionType; 10] = [
        SectionType::Eof,
        SectionType::Start,
        SectionType::Part,
        SectionType::End,
        SectionType::Full,
        SectionType::Subsection,
        SectionType::VmDescription,
        SectionType::Configuration,
        SectionType::Command,
        SectionType::Footer,
    ];

    pub fn byte(self) -> u8 {
        match self {
            SectionType::Eof => 0x00,
            SectionType::Start => 0x01,
            SectionType::Part => 0x02,
            SectionType::End => 0x03,
            SectionType::Full => 0x04,
            SectionType::Subsection => 0x05,
            SectionType::VmDescription => 0x06,
            SectionType::Configuration => 0x07,
            SectionType::Command => 0x08,
            SectionType::Footer => 0x7e,
        }
    }

    pub fn from_byte(b: u8) -> Option<SectionType> {
        SectionType::ALL.into_iter().find(|t| t.byte() == b)
    }

    /// The name shown for a section of this type (records, ladders).
    pub fn name(self) -> &'static str {
        match self {
            SectionType::Eof => "EOF",
            SectionType::Start => "SECTION_START",
            SectionType::Part => "SECTION_PART",
            SectionType::End => "SECTION_END",
            SectionType::Full => "SECTION_FULL",
            SectionType::Subsection => "SUBSECTION",
            SectionType::VmDescription => "VMDESCRIPTION",
            SectionType::Configuration => "CONFIGURATION",
            SectionType::Command => "COMMAND",
            SectionType::Footer => "SECTION_FOOTER",
        }
    }

    /// START and FULL carry the idstr, instance and version ids.
    pub fn names_itself(self) -> bool {
        matches!(self, SectionType::Start | SectionType::Full)
    }

    /// START, PART, END and FULL: a section with a body and a footer.
    pub fn is_section(self) -> bool {
        matches!(
            self,
            SectionType::Start | SectionType::Part | SectionType::End | SectionType::Full
        )
    }
}

/// `MIG_CMD_*`: the commands of a `QEMU_VM_COMMAND` (be16 cmd, be16 len, data).
/// Entries: number, name, the data length it must have (None: variable).
pub const COMMANDS: &[(u16, &str, Option<u16>)] = &[
    (1, "OPEN_RETURN_PATH", Some(0)),
    (2, "PING", Some(4)),
    (3, "POSTCOPY_ADVISE", None),
    (4, "POSTCOPY_LISTEN", Some(0)),
    (5, "POSTCOPY_RUN", Some(0)),
    (6, "POSTCOPY_RAM_DISCARD", None),
    (7, "PACKAGED", Some(4)),
    (8, "ENABLE_COLO", Some(0)),
    (9, "POSTCOPY_RESUME", Some(0)),
    (10, "RECV_BITMAP", None),
    (11, "SWITCHOVER_START", Some(0)),
];

pub const CMD_OPEN_RETURN_PATH: u16 = 1;
pub const CMD_PING: u16 = 2;
pub const CMD_ENABLE_COLO: u16 = 8;

/// The name of command `cmd`, if QEMU has one.
pub fn command_name(cmd: u16) -> Option<&'static str> {
    COMMANDS.iter().find(|c| c.0 == cmd).map(|c| c.1)
}

/// The data length command `cmd` must have (None: variable or unknown).
pub fn command_len(cmd: u16) -> Option<u16> {
    COMMANDS.iter().find(|c| c.0 == cmd).and_then(|c| c.2)
}

/// `RAM_SAVE_FLAG_*` (migration/ram.c): the low bits of a RAM record's
/// leading be64, below the target page size.
pub mod ram_flag {
    pub const FULL: u64 = 0x01;
    pub const ZERO: u64 = 0x02;
    pub const MEM_SIZE: u64 = 0x04;
    pub const PAGE: u64 = 0x08;
    pub const EOS: u64 = 0x10;
    pub const CONTINUE: u64 = 0x20;
    pub const XBZRLE: u64 = 0x40;
    /// RDMA's hook: the rest is RDMA's own protocol.
    pub const HOOK: u64 = 0x80;
    pub const COMPRESS_PAGE: u64 = 0x100;
    pub const MULTIFD_FLUSH: u64 = 0x200;
    /// Flags that are followed by a RAMBlock id (unless CONTINUE).
    pub const NAMES_BLOCK: u64 = ZERO | PAGE | XBZRLE | COMPRESS_PAGE;
}

/// The idstr of the RAM section.
pub const RAM_SECTION: &str = "ram";

/// `COLOMessage` (qapi/migration.json), sent as a bare be32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ColoMessage {
    CheckpointReady,
    CheckpointRequest,
    CheckpointReply,
    VmstateSend,
    VmstateSize,
    VmstateReceived,
    VmstateLoaded,
}

impl ColoMessage {
    pub const ALL: [ColoMessage; 7] = [
        ColoMessage::CheckpointReady,
        ColoMessage::CheckpointRequest,
        ColoMessage::CheckpointReply,
        ColoMessage::VmstateSend,
        ColoMessage::VmstateSize,
        ColoMessage::VmstateReceived,
        ColoMessage::VmstateLoaded,
    ];

    pub fn value(self) -> u32 {
        self as u32
    }

    pub fn from_value(v: u32) -> Option<ColoMessage> {
        ColoMessage::ALL.get(usize::try_from(v).ok()?).copied()
    }

    /// QEMU's name without `COLO_MESSAGE_`.
    pub fn name(self) -> &'static str {
        match self {
            ColoMessage::CheckpointReady => "CHECKPOINT_READY",
            ColoMessage::CheckpointRequest => "CHECKPOINT_REQUEST",
            ColoMessage::CheckpointReply => "CHECKPOINT_REPLY",
            ColoMessage::VmstateSend => "VMSTATE_SEND",
            ColoMessage::VmstateSize => "VMSTATE_SIZE",
            ColoMessage::VmstateReceived => "VMSTATE_RECEIVED",
            ColoMessage::VmstateLoaded => "VMSTATE_LOADED",
        }
    }

    /// The primary sends REQUEST, VMSTATE_SEND and VMSTATE_SIZE; the
    /// secondary the others.
    pub fn from_primary(self) -> bool {
        matches!(
            self,
            ColoMessage::CheckpointRequest | ColoMessage::VmstateSend | ColoMessage::VmstateSize
        )
    }

    /// Bytes on the wire: 4, and VMSTATE_SIZE's be64 value.
    pub fn wire_len(self) -> u64 {
        if self == ColoMessage::VmstateSize {
            12
        } else {
            4
        }
    }

    /// The message's bytes (`value`: VMSTATE_SIZE's size).
    pub fn emit(self, value: u64) -> Vec<u8> {
        let mut v = self.value().to_be_bytes().to_vec();
        if self == ColoMessage::VmstateSize {
            v.extend_from_slice(&value.to_be_bytes());
        }
        v
    }
}

/// `MIG_RP_MSG_*`: return-path messages (be16 type, be16 len, data).
/// Entries: number, name, the data length it must have (None: variable).
pub const RP_MESSAGES: &[(u16, &str, Option<u16>)] = &[
    (0, "RP_INVALID", None),
    (1, "RP_SHUT", Some(4)),
    (2, "RP_PONG", Some(4)),
    (3, "RP_REQ_PAGES_ID", None),
    (4, "RP_REQ_PAGES", Some(12)),
    (5, "RP_RECV_BITMAP", None),
    (6, "RP_RESUME_ACK", Some(4)),
];

pub const RP_SHUT: u16 = 1;
pub const RP_PONG: u16 = 2;

pub fn rp_name(t: u16) -> &'static str {
    RP_MESSAGES
        .iter()
        .find(|m| m.0 == t)
        .map_or("RP_UNKNOWN", |m| m.1)
}

pub fn rp_len(t: u16) -> Option<u16> {
    RP_MESSAGES.iter().find(|m| m.0 == t).and_then(|m| m.2)
}

/// The bytes of a section header (`save_section_header`): type, be32
/// section id, and for START and FULL the idstr (u8 length), be32 instance
/// and be32 version ids.
pub fn emit_section_header(t: SectionType, id: u32, named: Option<(&str, u32, u32)>) -> Vec<u8> {
    let mut v = vec![t.byte()];
    v.extend_from_slice(&id.to_be_bytes());
    if let Some((idstr, instance, version)) = named {
        let name = &idstr.as_bytes()[..idstr.len().min(255)];
        v.push(name.len() as u8);
        v.extend_from_slice(name);
        v.extend_from_slice(&instance.to_be_bytes());
        v.extend_from_slice(&version.to_be_bytes());
    }
    v
}

/// A section footer: 0x7e, be32 section id.
pub fn emit_footer(id: u32) -> [u8; 5] {
    let b = id.to_be_bytes();
    [0x7e, b[0], b[1], b[2], b[3]]
}

/// A command: 0x08, be16 cmd, be16 len, data.
pub fn emit_command(cmd: u16, data: &[u8]) -> Vec<u8> {
    let mut v = vec![SectionType::Command.byte()];
    v.extend_from_slice(&cmd.to_be_bytes());
    v.extend_from_slice(&(data.len() as u16).to_be_bytes());
    v.extend_from_slice(data);
    v
}

/// A RAM record's leading be64 and block id (`block`: None for CONTINUE).
pub fn emit_ram_header(addr: u64, flags: u64, block: Option<&str>) -> Vec<u8> {
    let flags = if block.is_none() && flags & ram_flag::NAMES_BLOCK != 0 {
        flags | ram_flag::CONTINUE
    } else {
        flags
    };
    let mut v = (addr | flags).to_be_bytes().to_vec();
    if let Some(b) = block {
        v.push(b.len() as u8);
        v.extend_from_slice(b.as_bytes());
    }
    v
}

/// An idstr QEMU could have written: 1-255 printable ASCII bytes.
pub fn plausible_idstr(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_match_qemu() {
        assert_eq!(u32::from_be_bytes(MAGIC), 0x5145_564d);
        assert_eq!(OPENING[..4], MAGIC);
        assert_eq!(
            u32::from_be_bytes(OPENING[4..].try_into().unwrap()),
            VERSION
        );
        assert_eq!(
            u32::from_be_bytes(MULTIFD_OPENING[..4].try_into().unwrap()),
            MULTIFD_MAGIC
        );
        assert_eq!(SectionType::from_byte(0x7e), Some(SectionType::Footer));
        assert_eq!(SectionType::from_byte(0x09), None);
        for t in SectionType::ALL {
            assert_eq!(SectionType::from_byte(t.byte()), Some(t));
        }
        assert_eq!(command_name(8), Some("ENABLE_COLO"));
        assert_eq!(command_name(1), Some("OPEN_RETURN_PATH"));
        assert_eq!(command_name(12), None);
        assert_eq!(ColoMessage::from_value(4), Some(ColoMessage::VmstateSize));
        assert_eq!(ColoMessage::from_value(7), None);
        assert_eq!(
            ColoMessage::VmstateSize.emit(0x1234),
            [0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0x12, 0x34]
        );
        assert_eq!(rp_name(2), "RP_PONG");
    }

    #[test]
    fn emitted_headers_are_the_reference_bytes() {
        assert_eq!(
            emit_section_header(SectionType::Start, 2, Some(("ram", 0, 4))),
            [1, 0, 0, 0, 2, 3, b'r', b'a', b'm', 0, 0, 0, 0, 0, 0, 0, 4]
        );
        assert_eq!(
            emit_section_header(SectionType::End, 2, None),
            [3, 0, 0, 0, 2]
        );
        assert_eq!(emit_footer(2), [0x7e, 0, 0, 0, 2]);
        assert_eq!(emit_command(8, &[]), [8, 0, 8, 0, 0]);
        assert_eq!(
            emit_ram_header(0x1000, ram_flag::PAGE, None),
            [0, 0, 0, 0, 0, 0, 0x10, 0x28]
        );
    }
}
