//! The `xl migrate` preamble and trailer (PROTOCOL.md §2).
//!
//! [`SaveHeader::parse`] is the checked constructor of the 48-byte xl save-file
//! header; after it succeeds no accessor can fail; [`SaveHeader::emit`] writes
//! it back. The domain config that
//! follows is parsed by [`DomainConfig::parse`], which accepts JSON (mandatory
//! flag bit 0) and falls back to xl's `key = value` text format; every string
//! taken from it is escaped for terminals.

use serde::Serialize;

use super::detect::XL_SAVE_MAGIC;
use super::text::escape_bytes;
use super::wire::{be_u32, le_u32};

/// Reverse direction, first message: the receiver is ready (54 bytes, no NUL).
pub const BANNER: &[u8] = b"xl migration receiver ready, send binary domain data.\n";
/// Magic that opens the xl save-file header (32 bytes; the stream detector's).
pub const SAVE_MAGIC: &[u8] = XL_SAVE_MAGIC;
/// Reverse, after a plain migration: the receiver has the domain (34 bytes).
pub const READY_TO_UNPAUSE: &[u8] = b"domain received, ready to unpause\0";
/// Forward, the sender's answer (44 bytes).
pub const CLEARED_TO_UNPAUSE: &[u8] = b"domain is yours, you are cleared to unpause\0";
/// Reverse, followed by one result byte (39 + 1 bytes).
pub const UNPAUSE_RESULT: &[u8] = b"my copy unpause results are as follows\0";

/// Size of the save-file header: magic and four u32 fields.
pub const SAVE_HEADER_LEN: usize = 48;

/// Cap on the optional data (domain config) the decoder buffers; a larger
/// config is skipped with a diagnostic. Real configs are a few KiB.
pub const MAX_OPTIONAL_DATA: u32 = 1 << 20;

/// Byte offsets within the save-file header.
pub mod field {
    use std::ops::Range;
    pub const MAGIC: Range<usize> = 0..32;
    pub const BYTEORDER: usize = 32;
    pub const MANDATORY_FLAGS: usize = 36;
    pub const OPTIONAL_FLAGS: usize = 40;
    pub const OPTIONAL_DATA_LEN: usize = 44;
}

/// Mandatory flag bit 0: the config is JSON.
pub const FLAG_CONFIG_JSON: u32 = 1 << 0;
/// Mandatory flag bit 1: a stream v2 (libxl stream) follows.
pub const FLAG_STREAM_V2: u32 = 1 << 1;

/// Byte order the saving host wrote the header's integers in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ByteOrder {
    Little,
    Big,
}

/// The xl save-file header (magic, byteorder, flags, optional data length).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SaveHeader {
    pub byteorder: ByteOrder,
    /// The byteorder marker as found; not 0x01020304 in either order means the
    /// header is damaged and the fields were read little-endian.
    pub byteorder_ok: bool,
    pub mandatory_flags: u32,
    pub optional_flags: u32,
    pub optional_data_len: u32,
}

impl SaveHeader {
    /// Parses the 48-byte header; `None` if `buf` is shorter or the magic differs.
    pub fn parse(buf: &[u8]) -> Option<Self> {
        let buf = buf.get(..SAVE_HEADER_LEN)?;
        if &buf[field::MAGIC] != SAVE_MAGIC {
            return None;
        }
        let (byteorder, ok) = match le_u32(buf, field::BYTEORDER) {
            0x0102_0304 => (ByteOrder::Little, true),
            0x0403_0201 => (ByteOrder::Big, true),
            _ => (ByteOrder::Little, false),
        };
        let rd = |at| match byteorder {
            ByteOrder::Little => le_u32(buf, at),
            ByteOrder::Big => be_u32(buf, at),
        };
        Some(SaveHeader {
            byteorder,
            byteorder_ok: ok,
            mandatory_flags: rd(field::MANDATORY_FLAGS),
            optional_flags: rd(field::OPTIONAL_FLAGS),
            optional_data_len: rd(field::OPTIONAL_DATA_LEN),
        })
    }

    pub fn config_is_json(&self) -> bool {
        self.mandatory_flags & FLAG_CONFIG_JSON != 0
    }

    pub fn stream_v2(&self) -> bool {
        self.mandatory_flags & FLAG_STREAM_V2 != 0
    }

    /// Writes the 48 header bytes: the magic, the byteorder marker and the
    /// fields in `byteorder`. (A damaged marker, `byteorder_ok` false, is not
    /// reproduced: the marker written is always a good one.)
    pub fn emit(&self, out: &mut [u8; SAVE_HEADER_LEN]) {
        let wr = |v: u32| match self.byteorder {
            ByteOrder::Little => v.to_le_bytes(),
            ByteOrder::Big => v.to_be_bytes(),
        };
        out[field::MAGIC].copy_from_slice(XL_SAVE_MAGIC);
        for (at, v) in [
            (field::BYTEORDER, 0x0102_0304),
            (field::MANDATORY_FLAGS, self.mandatory_flags),
            (field::OPTIONAL_FLAGS, self.optional_flags),
            (field::OPTIONAL_DATA_LEN, self.optional_data_len),
        ] {
            out[at..at + 4].copy_from_slice(&wr(v));
        }
    }

    /// Reads a u32 of the optional data in the header's byte order.
    pub fn read_u32(&self, buf: &[u8], at: usize) -> u32 {
        match self.byteorder {
            ByteOrder::Little => le_u32(buf, at),
            ByteOrder::Big => be_u32(buf, at),
        }
    }
}

/// What the tool reads from the domain config carried in the preamble.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DomainConfig {
    /// `c_info.name`, escaped for terminals.
    pub name: Option<String>,
    /// `c_info.type`: "hvm", "pv" or "pvh".
    #[serde(rename = "type")]
    pub guest_type: Option<String>,
    /// `b_info.max_memkb`.
    pub memory_kib: Option<u64>,
    /// `b_info.max_vcpus`.
    pub vcpus: Option<u64>,
}

impl DomainConfig {
    /// Parses the optional data: u32 config_len, then the config. Returns the
    /// config and a problem description when the layout or JSON is damaged.
    pub fn parse(header: &SaveHeader, optional: &[u8]) -> (DomainConfig, Option<String>) {
        if optional.len() < 4 {
            return (
                DomainConfig::default(),
                (!optional.is_empty()).then(|| {
                    format!(
                        "optional data of {} bytes has no config length",
                        optional.len()
                    )
                }),
            );
        }
        let config_len = header.read_u32(optional, 0) as usize;
        let avail = optional.len() - 4;
        let (bytes, mut problem) = if config_len > avail {
            (
                &optional[4..],
                Some(format!(
                    "config length {config_len} exceeds the {avail} bytes of optional data"
                )),
            )
        } else {
            (&optional[4..4 + config_len], None)
        };
        // xl writes the config with a trailing NUL.
        let bytes = bytes.strip_suffix(&[0]).unwrap_or(bytes);
        if header.config_is_json() {
            match serde_json::from_slice::<serde_json::Value>(bytes) {
                Ok(v) => return (Self::from_json(&v), problem),
                Err(e) => {
                    problem.get_or_insert_with(|| format!("config is not valid JSON: {e}"));
                }
            }
        }
        (Self::from_text(bytes), problem)
    }

    fn from_json(v: &serde_json::Value) -> DomainConfig {
        let num = |v: &serde_json::Value| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        };
        DomainConfig {
            name: v["c_info"]["name"]
                .as_str()
                .map(|s| escape_bytes(s.as_bytes())),
            guest_type: v["c_info"]["type"]
                .as_str()
                .map(|s| escape_bytes(s.as_bytes())),
            memory_kib: num(&v["b_info"]["max_memkb"]),
            vcpus: num(&v["b_info"]["max_vcpus"]),
        }
    }

    /// xl's text config: `name = "x"`, `memory = 1024` (MiB), `vcpus = 2`,
    /// `type = "hvm"` or `builder = "hvm"`.
    fn from_text(bytes: &[u8]) -> DomainConfig {
        let text = String::from_utf8_lossy(bytes);
        let mut cfg = DomainConfig::default();
        for line in text.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let key = key.trim();
            let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
            match key {
                "name" => cfg.name = Some(escape_bytes(value.as_bytes())),
                "type" | "builder" => cfg.guest_type = Some(escape_bytes(value.as_bytes())),
                "memory" | "maxmem" => {
                    if let Ok(mib) = value.parse::<u64>() {
                        cfg.memory_kib = Some(mib.saturating_mul(1024));
                    }
                }
                "vcpus" | "maxvcpus" => cfg.vcpus = value.parse().ok(),
                _ => {}
            }
        }
        cfg
    }
}

/// The fixed text messages of the `xl` handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message {
    Banner,
    ReadyToUnpause,
    ClearedToUnpause,
    UnpauseResult,
}

impl Message {
    pub fn bytes(self) -> &'static [u8] {
        match self {
            Message::Banner => BANNER,
            Message::ReadyToUnpause => READY_TO_UNPAUSE,
            Message::ClearedToUnpause => CLEARED_TO_UNPAUSE,
            Message::UnpauseResult => UNPAUSE_RESULT,
        }
    }

    /// Wire length, including the result byte of UNPAUSE_RESULT.
    pub fn wire_len(self) -> usize {
        self.bytes().len() + usize::from(self == Message::UnpauseResult)
    }

    pub const ALL: [Message; 4] = [
        Message::Banner,
        Message::ReadyToUnpause,
        Message::ClearedToUnpause,
        Message::UnpauseResult,
    ];
}

/// How `buf` relates to a known message: a complete match, a prefix that
/// needs more bytes, or no match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    Full(Message),
    Partial,
    None,
}

/// Matches the start of `buf` against the messages allowed in `candidates`.
pub fn match_message(buf: &[u8], candidates: &[Message]) -> Match {
    let mut partial = false;
    for &m in candidates {
        let text = m.bytes();
        let n = buf.len().min(text.len());
        if buf[..n] != text[..n] {
            continue;
        }
        if buf.len() >= m.wire_len() {
            return Match::Full(m);
        }
        partial = true;
    }
    if partial {
        Match::Partial
    } else {
        Match::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(byteorder: [u8; 4], flags: u32, optional_len: u32) -> Vec<u8> {
        let mut v = SAVE_MAGIC.to_vec();
        v.extend_from_slice(&byteorder);
        v.extend_from_slice(&flags.to_le_bytes());
        v.extend_from_slice(&0u32.to_le_bytes());
        v.extend_from_slice(&optional_len.to_le_bytes());
        v
    }

    #[test]
    fn message_lengths_match_the_reference() {
        assert_eq!(BANNER.len(), 54);
        assert_eq!(SAVE_MAGIC.len(), 32);
        assert_eq!(READY_TO_UNPAUSE.len(), 34);
        assert_eq!(CLEARED_TO_UNPAUSE.len(), 44);
        assert_eq!(UNPAUSE_RESULT.len(), 39);
        assert_eq!(Message::UnpauseResult.wire_len(), 40);
    }

    #[test]
    fn save_header_little_endian() {
        let bytes = header([0x04, 0x03, 0x02, 0x01], 3, 200);
        let h = SaveHeader::parse(&bytes).unwrap();
        assert_eq!(h.byteorder, ByteOrder::Little);
        assert!(h.byteorder_ok && h.config_is_json() && h.stream_v2());
        assert_eq!(h.optional_data_len, 200);
        assert!(SaveHeader::parse(&bytes[..47]).is_none());
        let mut bad = bytes.clone();
        bad[0] = b'x';
        assert!(SaveHeader::parse(&bad).is_none());
    }

    #[test]
    fn save_header_big_endian() {
        let mut bytes = SAVE_MAGIC.to_vec();
        bytes.extend_from_slice(&[1, 2, 3, 4]);
        bytes.extend_from_slice(&2u32.to_be_bytes());
        bytes.extend_from_slice(&0u32.to_be_bytes());
        bytes.extend_from_slice(&12u32.to_be_bytes());
        let h = SaveHeader::parse(&bytes).unwrap();
        assert_eq!(h.byteorder, ByteOrder::Big);
        assert_eq!(h.mandatory_flags, 2);
        assert_eq!(h.optional_data_len, 12);
    }

    #[test]
    fn json_config_fields() {
        let json = br#"{"c_info":{"type":"hvm","name":"web-1"},"b_info":{"max_vcpus":4,"max_memkb":4194304}}"#;
        let h = SaveHeader::parse(&header([4, 3, 2, 1], 3, 0)).unwrap();
        let mut opt = ((json.len() + 1) as u32).to_le_bytes().to_vec();
        opt.extend_from_slice(json);
        opt.push(0);
        let (cfg, problem) = DomainConfig::parse(&h, &opt);
        assert_eq!(problem, None);
        assert_eq!(cfg.name.as_deref(), Some("web-1"));
        assert_eq!(cfg.guest_type.as_deref(), Some("hvm"));
        assert_eq!(cfg.memory_kib, Some(4_194_304));
        assert_eq!(cfg.vcpus, Some(4));
    }

    #[test]
    fn hostile_name_is_escaped() {
        let json = b"{\"c_info\":{\"name\":\"evil\\u001b[2J\"}}";
        let h = SaveHeader::parse(&header([4, 3, 2, 1], 1, 0)).unwrap();
        let mut opt = (json.len() as u32).to_le_bytes().to_vec();
        opt.extend_from_slice(json);
        let (cfg, _) = DomainConfig::parse(&h, &opt);
        assert_eq!(cfg.name.as_deref(), Some("evil\\x1b[2J"));
    }

    #[test]
    fn text_config_and_damage() {
        let h = SaveHeader::parse(&header([4, 3, 2, 1], 0, 0)).unwrap();
        let text = b"name = \"db\"\nmemory = 2048\nvcpus = 2\nbuilder='hvm'\n";
        let mut opt = (text.len() as u32).to_le_bytes().to_vec();
        opt.extend_from_slice(text);
        let (cfg, problem) = DomainConfig::parse(&h, &opt);
        assert_eq!(problem, None);
        assert_eq!(cfg.name.as_deref(), Some("db"));
        assert_eq!(cfg.memory_kib, Some(2048 * 1024));
        assert_eq!(cfg.vcpus, Some(2));
        let (_, problem) = DomainConfig::parse(&h, &[100, 0, 0, 0, b'x']);
        assert!(problem.unwrap().contains("exceeds"));
    }

    #[test]
    fn message_matching() {
        use Message::*;
        assert_eq!(match_message(BANNER, &Message::ALL), Match::Full(Banner));
        assert_eq!(match_message(&BANNER[..10], &Message::ALL), Match::Partial);
        assert_eq!(match_message(b"SSH-2.0-", &Message::ALL), Match::None);
        assert_eq!(
            match_message(UNPAUSE_RESULT, &[UnpauseResult]),
            Match::Partial
        );
        let mut r = UNPAUSE_RESULT.to_vec();
        r.push(0);
        assert_eq!(
            match_message(&r, &[UnpauseResult]),
            Match::Full(UnpauseResult)
        );
    }

    #[test]
    fn save_header_emit() {
        let h = SaveHeader {
            byteorder: ByteOrder::Little,
            byteorder_ok: true,
            mandatory_flags: FLAG_CONFIG_JSON | FLAG_STREAM_V2,
            optional_flags: 0,
            optional_data_len: 0x104,
        };
        let mut out = [0xAA; SAVE_HEADER_LEN];
        h.emit(&mut out);
        let mut bytes = b"Xen saved domain, xl format".to_vec();
        bytes.extend_from_slice(&[0x0a, 0x20, 0x00, 0x20, 0x0d]);
        bytes.extend_from_slice(&[4, 3, 2, 1, 3, 0, 0, 0, 0, 0, 0, 0, 4, 1, 0, 0]);
        assert_eq!(out[..], bytes[..]);
        assert_eq!(SaveHeader::parse(&out), Some(h));

        let big = SaveHeader {
            byteorder: ByteOrder::Big,
            ..h
        };
        big.emit(&mut out);
        assert_eq!(out[32..], [1, 2, 3, 4, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 1, 4]);
        assert_eq!(SaveHeader::parse(&out), Some(big));
        // Impossible: a short header.
        assert_eq!(SaveHeader::parse(&out[..47]), None);
    }
}
