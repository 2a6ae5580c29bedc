//! Packets from a capture file: pcap or pcapng, plain or gzip-compressed, from
//! a path or from standard input.
//!
//! # What it reads
//! - **pcap**: microsecond (`a1b2c3d4`) and nanosecond (`a1b23c4d`) magic, both
//!   byte orders, and the little-endian "modified" (Kuznetzov) variant.
//! - **pcapng**: any number of sections (each may switch byte order) and
//!   interfaces, each with its own link type, snap length, `if_tsresol`
//!   (powers of 10 and of 2) and `if_tsoffset`. Enhanced packet blocks and
//!   simple packet blocks carry packets; a simple packet block has no
//!   timestamp, so it gets the previous packet's. Other blocks are skipped.
//! - **gzip**: recognised by its magic (`1f 8b`) and decompressed on the fly,
//!   several concatenated members included.
//!
//! Timestamps become nanoseconds since the Unix epoch; frames are numbered
//! from 1 as Wireshark numbers them.
//!
//! # Streaming
//! The reader issues one `read` whenever the buffered bytes do not hold the
//! next complete record, and hands out every complete packet at once, so
//! `tcpdump -U -w - | migscope -r -` shows packets as tcpdump writes them.
//! Packets are not copied: [`Packet::data`] borrows the reader's buffer until
//! the next call. Record framing and block parsing use `pcap-parser`'s block
//! parsers on that buffer; the buffer itself is ours, so that a block longer
//! than the buffer can grow it (up to a cap) and so that a cut-short file is
//! told apart from a corrupt one.
//!
//! # Validation and limits
//! Framing is checked before anything is buffered: a record or block longer
//! than [`MAX_BLOCK_LEN`] (16 MiB, far above any snap length) is corrupt, so a
//! header claiming a 4 GB packet costs nothing. The buffer starts at
//! [`INITIAL_BUFFER`] and doubles only while one incomplete block fills it,
//! never past [`MAX_BLOCK_LEN`]; memory is bounded whatever the input. At most
//! [`MAX_INTERFACES`] interfaces per section are kept, their names cut to
//! [`MAX_IF_NAME`] bytes. A packet's `orig_len` is at least its captured
//! length. Checksums and link-layer content are not looked at here.
//!
//! # Errors
//! Complete packets always come out before the error after them. Errors that
//! end reading (then `next_packet` returns `Ok(None)`): a file cut short
//! inside a packet ([`CaptureError::Truncated`]), an I/O or gzip error, and
//! lost framing (a pcap record longer than the cap, a pcapng block length that
//! is impossible or whose two copies differ, an unknown section byte order).
//! Errors that skip one pcapng block and go on: a block whose content does not
//! fit its (consistent) length, an unknown interface id, a simple packet block
//! before any interface. [`CaptureError::ends_reading`] tells them apart.

use std::fs::{self, File};
use std::io::{self, Cursor, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;
use pcap_parser::{
    parse_enhancedpacketblock_be, parse_enhancedpacketblock_le, parse_interfacedescriptionblock_be,
    parse_interfacedescriptionblock_le, parse_pcap_frame, parse_pcap_frame_be,
    parse_pcap_frame_modified, parse_pcap_header, parse_sectionheaderblock,
    parse_simplepacketblock_be, parse_simplepacketblock_le, InterfaceDescriptionBlock,
    LegacyPcapBlock, OptionCode,
};

use super::error::{CaptureError, Corruption};
use super::{LinkType, Packet};

/// Bytes buffered at first (1 MiB): large reads, few buffer shifts.
pub const INITIAL_BUFFER: usize = 1 << 20;
/// Largest pcap record (header included) or pcapng block accepted, and the
/// most the buffer grows to (16 MiB). Anything longer is corruption: no snap
/// length comes near it.
pub const MAX_BLOCK_LEN: usize = 16 << 20;
/// Interfaces kept per pcapng section.
pub const MAX_INTERFACES: usize = 4096;
/// Longest interface name kept, in bytes.
pub const MAX_IF_NAME: usize = 256;
/// Bytes looked at to say what a non-capture file is.
const SNIFF_LEN: usize = 64;

/// Magic numbers of the formats this reads or recognises.
mod magic {
    pub const GZIP: [u8; 2] = [0x1f, 0x8b];
    /// pcap magics as read little-endian.
    pub const PCAP_US_LE: u32 = 0xa1b2_c3d4;
    pub const PCAP_US_BE: u32 = 0xd4c3_b2a1;
    pub const PCAP_NS_LE: u32 = 0xa1b2_3c4d;
    pub const PCAP_NS_BE: u32 = 0x4d3c_b2a1;
    pub const PCAP_MODIFIED_LE: u32 = 0xa1b2_cd34;
    pub const PCAP_MODIFIED_BE: u32 = 0x34cd_b2a1;
    /// pcapng section header block type (a palindrome: same in both orders).
    pub const SHB: u32 = 0x0a0d_0d0a;
    pub const BYTE_ORDER: u32 = 0x1a2b_3c4d;
    pub const BYTE_ORDER_SWAPPED: u32 = 0x4d3c_2b1a;
    pub const IDB: u32 = 0x0000_0001;
    pub const SPB: u32 = 0x0000_0003;
    pub const EPB: u32 = 0x0000_0006;
    pub const LIBXL: &[u8] = b"LibxlFmt";
    pub const XL_SAVE: &[u8] = b"Xen saved domain, xl format\n \0 \r";
    pub const LIBXC_MARKER: &[u8] = &[0xff; 8];
    pub const LIBXC_ID: &[u8] = b"XENF";
    pub const ZSTD: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
    pub const XZ: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0];
    pub const BZIP2: &[u8] = b"BZh";
}

/// Byte offsets in pcap headers and records.
mod pcap_field {
    use std::ops::Range;
    pub const FILE_HEADER_LEN: usize = 24;
    pub const RECORD_LEN: usize = 16;
    pub const MODIFIED_RECORD_LEN: usize = 24;
    pub const CAPLEN: Range<usize> = 8..12;
}

/// Byte offsets in pcapng blocks (from the block start).
mod ng_field {
    use std::ops::Range;
    pub const TYPE: Range<usize> = 0..4;
    pub const LEN: Range<usize> = 4..8;
    /// Section header: byte-order magic.
    pub const SHB_BYTE_ORDER: Range<usize> = 8..12;
    /// Type, length and trailing length.
    pub const MIN_LEN: usize = 12;
    /// Enhanced packet block: captured length, and where the data starts.
    pub const EPB_CAPLEN: Range<usize> = 20..24;
    pub const EPB_DATA: usize = 28;
    /// Enhanced packet block without data: 28 bytes of header, 4 of trailer.
    pub const EPB_MIN_LEN: usize = 32;
    /// Simple packet block: where the data starts; 16 bytes without data.
    pub const SPB_DATA: usize = 12;
    pub const SPB_MIN_LEN: usize = 16;
}

/// The container format of a capture file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Pcap,
    PcapNg,
}

/// The unit of a timestamp: 10^-n or 2^-n seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsResolution {
    /// 10^-n seconds (6: microseconds, 9: nanoseconds); n ≤ 19.
    Decimal(u8),
    /// 2^-n seconds; n ≤ 63.
    Binary(u8),
}

impl TsResolution {
    pub const MICRO: TsResolution = TsResolution::Decimal(6);
    pub const NANO: TsResolution = TsResolution::Decimal(9);

    /// From a pcapng `if_tsresol` byte; `None` if too fine for a `u64` count.
    pub fn from_if_tsresol(b: u8) -> Option<TsResolution> {
        let n = b & 0x7f;
        if b & 0x80 == 0 {
            (n <= 19).then_some(TsResolution::Decimal(n))
        } else {
            (n <= 63).then_some(TsResolution::Binary(n))
        }
    }

    /// Timestamp units per second.
    pub fn units_per_second(self) -> u64 {
        match self {
            TsResolution::Decimal(n) => 10u64.saturating_pow(u32::from(n)),
            TsResolution::Binary(n) => 1u64.checked_shl(u32::from(n)).unwrap_or(u64::MAX),
        }
    }

    /// `ticks` of this unit in nanoseconds, saturating.
    pub fn to_ns(self, ticks: u64) -> u64 {
        match self {
            TsResolution::NANO => ticks,
            TsResolution::MICRO => ticks.saturating_mul(1000),
            _ => {
                let u = u128::from(self.units_per_second().max(1));
                let t = u128::from(ticks);
                let ns = t / u * 1_000_000_000 + t % u * 1_000_000_000 / u;
                u64::try_from(ns).unwrap_or(u64::MAX)
            }
        }
    }
}

impl std::fmt::Display for TsResolution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TsResolution::Decimal(0) => write!(f, "s"),
            TsResolution::Decimal(3) => write!(f, "ms"),
            TsResolution::Decimal(6) => write!(f, "µs"),
            TsResolution::Decimal(9) => write!(f, "ns"),
            TsResolution::Decimal(n) => write!(f, "10^-{n} s"),
            TsResolution::Binary(n) => write!(f, "2^-{n} s"),
        }
    }
}

/// An interface of a capture file (a pcap file has exactly one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub link: LinkType,
    /// Snap length; 0 means none was recorded (no limit).
    pub snaplen: u32,
    pub resolution: TsResolution,
    /// Seconds added to every timestamp (pcapng `if_tsoffset`).
    pub ts_offset: i64,
    /// `if_name`, cut to [`MAX_IF_NAME`] bytes (pcapng only).
    pub name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Pcap { big_endian: bool, modified: bool },
    PcapNg { big_endian: bool },
}

/// Where the packet of the last block lies in the buffer.
struct Frame {
    data_start: usize,
    data_len: usize,
    ts_ns: u64,
    link: LinkType,
    orig_len: u32,
}

enum Step {
    Packet(Frame),
    /// A block without a packet was consumed.
    Skipped,
    End,
}

/// A capture file being read; see the module documentation.
pub struct FileSource {
    name: String,
    reader: Box<dyn Read + Send>,
    gzip: bool,
    kind: Kind,
    /// Buffered input: `buf[start..end]` is not yet consumed.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Input offset of `buf[0]`.
    base: u64,
    /// The reader returned 0.
    eof: bool,
    /// An error ended reading, or the input is finished.
    done: bool,
    /// Length of the block whose packet was last handed out; consumed at the
    /// next call, when the packet's borrow has ended.
    pending: usize,
    interfaces: Vec<Interface>,
    number: u64,
    last_ts: u64,
    /// The file's path, when it is a file: to tell a capture still being
    /// written (it grew while read) from one cut short.
    path: Option<(std::path::PathBuf, u64)>,
}

impl std::fmt::Debug for FileSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSource")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("gzip", &self.gzip)
            .field("offset", &self.position())
            .field("packets", &self.number)
            .finish_non_exhaustive()
    }
}

impl FileSource {
    /// Opens a capture file; `-` means standard input. Reads as far as the
    /// file header (pcap) or first section header (pcapng).
    pub fn open(path: &Path) -> Result<FileSource, CaptureError> {
        if path.as_os_str() == "-" {
            return FileSource::from_reader(Box::new(io::stdin()), "standard input");
        }
        let open_err = |e: io::Error| match e.kind() {
            io::ErrorKind::NotFound => CaptureError::NotFound { path: path.into() },
            io::ErrorKind::PermissionDenied => CaptureError::PermissionDenied { path: path.into() },
            _ => CaptureError::Open {
                path: path.into(),
                message: e.to_string(),
            },
        };
        let meta = fs::metadata(path).map_err(open_err)?;
        if meta.is_dir() {
            return Err(CaptureError::Open {
                path: path.into(),
                message: "it is a directory; give a capture file".into(),
            });
        }
        let file = File::open(path).map_err(open_err)?;
        let mut src = FileSource::from_reader(Box::new(file), path.display().to_string())?;
        src.path = Some((path.into(), meta.len()));
        Ok(src)
    }

    /// Reads a capture from any byte source; `name` is used in messages.
    pub fn from_reader(
        reader: Box<dyn Read + Send>,
        name: impl Into<String>,
    ) -> Result<FileSource, CaptureError> {
        let name = name.into();
        let mut reader = reader;
        let mut head = Vec::with_capacity(SNIFF_LEN);
        read_at_least(&mut reader, &mut head, 4).map_err(|e| CaptureError::read(&name, 0, &e))?;
        let gzip = head.starts_with(&magic::GZIP);
        if gzip {
            let raw = Cursor::new(std::mem::take(&mut head)).chain(reader);
            reader = Box::new(MultiGzDecoder::new(raw));
            read_at_least(&mut reader, &mut head, 4)
                .map_err(|e| CaptureError::read(&name, 0, &e))?;
        }
        let kind = match head
            .get(..4)
            .map(|m| u32::from_le_bytes([m[0], m[1], m[2], m[3]]))
        {
            Some(magic::PCAP_US_LE | magic::PCAP_NS_LE) => Kind::Pcap {
                big_endian: false,
                modified: false,
            },
            Some(magic::PCAP_US_BE | magic::PCAP_NS_BE) => Kind::Pcap {
                big_endian: true,
                modified: false,
            },
            Some(magic::PCAP_MODIFIED_LE) => Kind::Pcap {
                big_endian: false,
                modified: true,
            },
            Some(magic::PCAP_MODIFIED_BE) => {
                return Err(CaptureError::Unsupported {
                    name,
                    what: "a big-endian \"modified\" (Kuznetzov) pcap".into(),
                })
            }
            Some(magic::SHB) => Kind::PcapNg { big_endian: false },
            _ => {
                if head.is_empty() {
                    return Err(CaptureError::Empty { name });
                }
                read_at_least(&mut reader, &mut head, SNIFF_LEN)
                    .map_err(|e| CaptureError::read(&name, 0, &e))?;
                let looks_like = describe(&head, &name, gzip);
                return Err(CaptureError::NotCapture { name, looks_like });
            }
        };
        let mut buf = vec![0u8; INITIAL_BUFFER];
        buf[..head.len()].copy_from_slice(&head);
        let mut src = FileSource {
            name,
            reader,
            gzip,
            kind,
            end: head.len(),
            buf,
            start: 0,
            base: 0,
            eof: false,
            done: false,
            pending: 0,
            interfaces: Vec::new(),
            number: 0,
            last_ts: 0,
            path: None,
        };
        src.read_file_header()?;
        Ok(src)
    }

    /// The next packet, `Ok(None)` at the end of the input. The packet borrows
    /// the reader's buffer until the next call.
    ///
    /// After an `Err`, call again: if [`CaptureError::ends_reading`], the
    /// answer is `Ok(None)`; otherwise reading goes on after the bad block.
    pub fn next_packet(&mut self) -> Result<Option<Packet<'_>>, CaptureError> {
        self.start += std::mem::take(&mut self.pending);
        loop {
            if self.done {
                return Ok(None);
            }
            let step = match self.kind {
                Kind::Pcap {
                    big_endian,
                    modified,
                } => self.pcap_record(big_endian, modified),
                Kind::PcapNg { big_endian } => self.pcapng_block(big_endian),
            };
            match step {
                Ok(Step::Skipped) => continue,
                Ok(Step::End) => {
                    self.done = true;
                    return Ok(None);
                }
                Ok(Step::Packet(f)) => {
                    self.number += 1;
                    self.last_ts = f.ts_ns;
                    return Ok(Some(Packet {
                        number: self.number,
                        ts_ns: f.ts_ns,
                        link: f.link,
                        data: &self.buf[f.data_start..f.data_start + f.data_len],
                        orig_len: f.orig_len,
                    }));
                }
                Err(e) => {
                    if e.ends_reading() {
                        self.done = true;
                    }
                    return Err(e);
                }
            }
        }
    }

    /// The name given to the reader, the path, or "standard input".
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn format(&self) -> Format {
        match self.kind {
            Kind::Pcap { .. } => Format::Pcap,
            Kind::PcapNg { .. } => Format::PcapNg,
        }
    }

    /// True when the input was gzip-compressed.
    pub fn compressed(&self) -> bool {
        self.gzip
    }

    /// Byte order of the file (for pcapng, of the current section).
    pub fn big_endian(&self) -> bool {
        match self.kind {
            Kind::Pcap { big_endian, .. } | Kind::PcapNg { big_endian } => big_endian,
        }
    }

    /// Interfaces: the pcap file's one, or those the current pcapng section
    /// has described so far (the list grows as blocks are read and restarts
    /// with each section).
    pub fn interfaces(&self) -> &[Interface] {
        &self.interfaces
    }

    /// Snap length of the pcap file, or of the first pcapng interface (0: none
    /// recorded, or no interface yet). Per-interface values are in
    /// [`FileSource::interfaces`].
    pub fn snaplen(&self) -> u32 {
        self.interfaces.first().map_or(0, |i| i.snaplen)
    }

    /// Timestamp resolution of the pcap file, or of the first pcapng
    /// interface (microseconds until one is described).
    pub fn resolution(&self) -> TsResolution {
        self.interfaces
            .first()
            .map_or(TsResolution::MICRO, |i| i.resolution)
    }

    /// Bytes of (decompressed) input consumed so far, for progress.
    pub fn position(&self) -> u64 {
        self.base + self.start as u64
    }

    /// Bytes of heap held for buffering; never more than [`MAX_BLOCK_LEN`].
    pub fn buffer_capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Packets handed out so far.
    pub fn packets(&self) -> u64 {
        self.number
    }

    // ---- buffering ----

    /// Buffers at least `need` unconsumed bytes (`need` ≤ [`MAX_BLOCK_LEN`]),
    /// reading only while they are missing. `Ok(false)`: the input ended first.
    fn fill(&mut self, need: usize) -> Result<bool, CaptureError> {
        debug_assert!(need <= MAX_BLOCK_LEN);
        while self.end - self.start < need {
            if self.eof {
                return Ok(false);
            }
            if self.end == self.buf.len() {
                if self.start > 0 {
                    self.buf.copy_within(self.start..self.end, 0);
                    self.base += self.start as u64;
                    self.end -= self.start;
                    self.start = 0;
                } else {
                    // One incomplete block fills the buffer: grow, within the cap.
                    // (`need` ≤ the cap, so there is room to grow.)
                    let len = (self.buf.len() * 2).min(MAX_BLOCK_LEN);
                    self.buf.resize(len, 0);
                }
            }
            match self.reader.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(CaptureError::read(
                        &self.name,
                        self.base + self.end as u64,
                        &e,
                    ))
                }
            }
        }
        Ok(true)
    }

    /// The input ended while `need` bytes of the next record were wanted.
    fn ended(&self, need: usize) -> Result<Step, CaptureError> {
        let have = self.end - self.start;
        let read = self.base + self.end as u64;
        // Longer now than what was read, or than when it was opened.
        let grew = |(p, at_open): &(std::path::PathBuf, u64)| {
            fs::metadata(p).is_ok_and(|m| m.len() > read || m.len() > *at_open)
        };
        if have == 0 {
            Ok(Step::End)
        } else if !self.gzip && self.path.as_ref().is_some_and(grew) {
            Err(CaptureError::StillBeingWritten {
                name: self.name.clone(),
                packets: self.number,
            })
        } else {
            Err(CaptureError::Truncated {
                name: self.name.clone(),
                packet: self.number + 1,
                offset: self.position(),
                have,
                need,
            })
        }
    }

    fn corrupt(&self, what: Corruption, fatal: bool) -> CaptureError {
        CaptureError::Corrupt {
            name: self.name.clone(),
            offset: self.position(),
            what,
            fatal,
        }
    }

    fn u32_at(&self, at: std::ops::Range<usize>, big_endian: bool) -> u32 {
        let b = &self.buf[self.start + at.start..self.start + at.end];
        let b = [b[0], b[1], b[2], b[3]];
        if big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    }

    // ---- headers ----

    fn read_file_header(&mut self) -> Result<(), CaptureError> {
        match self.kind {
            Kind::Pcap { .. } => {
                let need = pcap_field::FILE_HEADER_LEN;
                if !self.fill(need)? {
                    return Err(self.truncated_header(need));
                }
                let h = match parse_pcap_header(&self.buf[self.start..self.start + need]) {
                    Ok((_, h)) => h,
                    // The magic was checked; 24 bytes always parse.
                    Err(_) => return Err(self.truncated_header(need)),
                };
                let resolution = if h.is_nanosecond_precision() {
                    TsResolution::NANO
                } else {
                    TsResolution::MICRO
                };
                self.interfaces.push(Interface {
                    // The upper 16 bits carry FCS information, not the type.
                    link: LinkType((h.network.0 as u32) & 0xffff),
                    snaplen: h.snaplen,
                    resolution,
                    ts_offset: 0,
                    name: None,
                });
                self.start += need;
                Ok(())
            }
            Kind::PcapNg { big_endian } => match self.pcapng_block(big_endian) {
                Ok(_) => Ok(()),
                Err(CaptureError::Truncated { have, need, .. }) => {
                    Err(CaptureError::TruncatedHeader {
                        name: self.name.clone(),
                        have,
                        need,
                    })
                }
                Err(e) => Err(e),
            },
        }
    }

    fn truncated_header(&self, need: usize) -> CaptureError {
        CaptureError::TruncatedHeader {
            name: self.name.clone(),
            have: self.end - self.start,
            need,
        }
    }

    // ---- pcap ----

    fn pcap_record(&mut self, big_endian: bool, modified: bool) -> Result<Step, CaptureError> {
        let hdr = if modified {
            pcap_field::MODIFIED_RECORD_LEN
        } else {
            pcap_field::RECORD_LEN
        };
        if !self.fill(hdr)? {
            return self.ended(hdr);
        }
        let caplen = self.u32_at(pcap_field::CAPLEN, big_endian);
        if caplen as usize > MAX_BLOCK_LEN - hdr {
            return Err(self.corrupt(
                Corruption::RecordTooLong {
                    caplen,
                    max: MAX_BLOCK_LEN - hdr,
                },
                true,
            ));
        }
        let total = hdr + caplen as usize;
        if !self.fill(total)? {
            return self.ended(total);
        }
        let block = &self.buf[self.start..self.start + total];
        let parsed: Result<(&[u8], LegacyPcapBlock), _> = if modified {
            parse_pcap_frame_modified(block)
        } else if big_endian {
            parse_pcap_frame_be(block)
        } else {
            parse_pcap_frame(block)
        };
        let Ok((_, rec)) = parsed else {
            // Unreachable: the whole record is buffered.
            return Err(self.corrupt(
                Corruption::BadBlock {
                    kind: "packet record",
                },
                true,
            ));
        };
        let frac_ns = match self.resolution() {
            TsResolution::NANO => u64::from(rec.ts_usec),
            _ => u64::from(rec.ts_usec) * 1000,
        };
        let ts_ns = u64::from(rec.ts_sec) * 1_000_000_000 + frac_ns;
        let frame = Frame {
            data_start: self.start + hdr,
            data_len: caplen as usize,
            ts_ns,
            link: self.interfaces[0].link,
            orig_len: rec.origlen.max(caplen),
        };
        self.pending = total;
        Ok(Step::Packet(frame))
    }

    // ---- pcapng ----

    fn pcapng_block(&mut self, big_endian: bool) -> Result<Step, CaptureError> {
        if !self.fill(8)? {
            return self.ended(8);
        }
        let mut big_endian = big_endian;
        let shb = self.u32_at(ng_field::TYPE, false) == magic::SHB;
        if shb {
            if !self.fill(ng_field::MIN_LEN)? {
                return self.ended(ng_field::MIN_LEN);
            }
            big_endian = match self.u32_at(ng_field::SHB_BYTE_ORDER, false) {
                magic::BYTE_ORDER => false,
                magic::BYTE_ORDER_SWAPPED => true,
                magic => return Err(self.corrupt(Corruption::ByteOrderMagic { magic }, true)),
            };
        }
        let btype = self.u32_at(ng_field::TYPE, big_endian);
        let len32 = self.u32_at(ng_field::LEN, big_endian);
        let len = len32 as usize;
        if len < ng_field::MIN_LEN || len % 4 != 0 || len > MAX_BLOCK_LEN {
            return Err(self.corrupt(
                Corruption::BlockLength {
                    len: len32,
                    max: MAX_BLOCK_LEN,
                },
                true,
            ));
        }
        if !self.fill(len)? {
            return self.ended(len);
        }
        let last = self.u32_at(len - 4..len, big_endian);
        if last != len32 {
            return Err(self.corrupt(Corruption::BlockLengthMismatch { first: len32, last }, true));
        }
        let step = match btype {
            magic::SHB => self.section_header(len, big_endian).map(|()| Step::Skipped),
            magic::IDB => self
                .interface_description(len, big_endian)
                .map(|()| Step::Skipped),
            magic::EPB => self.enhanced_packet(len, big_endian),
            magic::SPB => self.simple_packet(len, big_endian),
            _ => Ok(Step::Skipped),
        };
        match &step {
            Ok(Step::Packet(_)) => self.pending = len,
            Ok(_) => self.start += len,
            Err(e) if !e.ends_reading() => self.start += len,
            Err(_) => {}
        }
        step
    }

    fn section_header(&mut self, len: usize, big_endian: bool) -> Result<(), CaptureError> {
        let block = &self.buf[self.start..self.start + len];
        let shb = match parse_sectionheaderblock(block) {
            Ok((_, shb)) => shb,
            // The next section's byte order is unknown: framing is lost.
            Err(_) => {
                return Err(self.corrupt(
                    Corruption::BadBlock {
                        kind: "section header",
                    },
                    true,
                ))
            }
        };
        if shb.major_version != 1 {
            return Err(CaptureError::Unsupported {
                name: self.name.clone(),
                what: format!("pcapng version {}.{}", shb.major_version, shb.minor_version),
            });
        }
        self.kind = Kind::PcapNg { big_endian };
        self.interfaces.clear();
        Ok(())
    }

    fn interface_description(&mut self, len: usize, big_endian: bool) -> Result<(), CaptureError> {
        if self.interfaces.len() >= MAX_INTERFACES {
            return Err(self.corrupt(
                Corruption::TooManyInterfaces {
                    max: MAX_INTERFACES,
                },
                false,
            ));
        }
        let block = &self.buf[self.start..self.start + len];
        let parsed = if big_endian {
            parse_interfacedescriptionblock_be(block)
        } else {
            parse_interfacedescriptionblock_le(block)
        };
        let Ok((_, idb)) = parsed else {
            return Err(self.corrupt(
                Corruption::BadBlock {
                    kind: "interface description",
                },
                false,
            ));
        };
        let (iface, bad_tsresol) = interface_from(&idb, big_endian);
        self.interfaces.push(iface);
        match bad_tsresol {
            Some(if_tsresol) => Err(self.corrupt(
                Corruption::TsResolution {
                    id: self.interfaces.len() - 1,
                    if_tsresol,
                },
                false,
            )),
            None => Ok(()),
        }
    }

    fn enhanced_packet(&mut self, len: usize, big_endian: bool) -> Result<Step, CaptureError> {
        if len < ng_field::EPB_MIN_LEN {
            return Err(self.corrupt(
                Corruption::BadBlock {
                    kind: "enhanced packet",
                },
                false,
            ));
        }
        let caplen = self.u32_at(ng_field::EPB_CAPLEN, big_endian);
        let room = len - ng_field::EPB_MIN_LEN;
        if caplen as usize > room {
            return Err(self.corrupt(Corruption::CaptureLongerThanBlock { caplen, room }, false));
        }
        let block = &self.buf[self.start..self.start + len];
        let parsed = if big_endian {
            parse_enhancedpacketblock_be(block)
        } else {
            parse_enhancedpacketblock_le(block)
        };
        let epb = match parsed {
            Ok((_, epb)) => epb,
            Err(_) => {
                return Err(self.corrupt(
                    Corruption::BadBlock {
                        kind: "enhanced packet",
                    },
                    false,
                ))
            }
        };
        let Some(iface) = self.interfaces.get(epb.if_id as usize) else {
            return Err(self.corrupt(
                Corruption::UnknownInterface {
                    id: epb.if_id,
                    count: self.interfaces.len(),
                },
                false,
            ));
        };
        let ticks = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
        let ts_ns = add_offset(iface.resolution.to_ns(ticks), iface.ts_offset);
        Ok(Step::Packet(Frame {
            data_start: self.start + ng_field::EPB_DATA,
            data_len: caplen as usize,
            ts_ns,
            link: iface.link,
            orig_len: epb.origlen.max(caplen),
        }))
    }

    fn simple_packet(&mut self, len: usize, big_endian: bool) -> Result<Step, CaptureError> {
        let Some(iface) = self.interfaces.first() else {
            return Err(self.corrupt(Corruption::NoInterface, false));
        };
        let (link, snaplen) = (iface.link, iface.snaplen);
        if len < ng_field::SPB_MIN_LEN {
            return Err(self.corrupt(
                Corruption::BadBlock {
                    kind: "simple packet",
                },
                false,
            ));
        }
        let block = &self.buf[self.start..self.start + len];
        let parsed = if big_endian {
            parse_simplepacketblock_be(block)
        } else {
            parse_simplepacketblock_le(block)
        };
        let Ok((_, spb)) = parsed else {
            return Err(self.corrupt(
                Corruption::BadBlock {
                    kind: "simple packet",
                },
                false,
            ));
        };
        // The block holds min(original length, snap length) bytes, padded.
        let mut caplen = (spb.origlen as usize).min(len - ng_field::SPB_MIN_LEN);
        if snaplen != 0 {
            caplen = caplen.min(snaplen as usize);
        }
        Ok(Step::Packet(Frame {
            data_start: self.start + ng_field::SPB_DATA,
            data_len: caplen,
            ts_ns: self.last_ts,
            link,
            orig_len: spb.origlen.max(caplen as u32),
        }))
    }
}

/// An [`Interface`] from an IDB, and the raw `if_tsresol` if it was unusable.
fn interface_from(idb: &InterfaceDescriptionBlock, big_endian: bool) -> (Interface, Option<u8>) {
    let mut resolution = TsResolution::MICRO;
    let mut bad = None;
    let mut ts_offset = 0i64;
    let mut name = None;
    for opt in &idb.options {
        let Some(value) = opt.as_bytes() else {
            continue;
        };
        match opt.code {
            OptionCode::IfTsresol => {
                if let Some(&b) = value.first() {
                    match TsResolution::from_if_tsresol(b) {
                        Some(r) => resolution = r,
                        None => bad = Some(b),
                    }
                }
            }
            // pcap-parser reads if_tsoffset little-endian whatever the section.
            OptionCode::IfTsoffset => {
                if let Some(v) = value.get(..8) {
                    let b = [v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]];
                    ts_offset = if big_endian {
                        i64::from_be_bytes(b)
                    } else {
                        i64::from_le_bytes(b)
                    };
                }
            }
            OptionCode(2) => {
                let v = &value[..value.len().min(MAX_IF_NAME)];
                let v = v.split(|&b| b == 0).next().unwrap_or_default();
                name = Some(String::from_utf8_lossy(v).into_owned());
            }
            _ => {}
        }
    }
    let iface = Interface {
        link: LinkType(u32::from(idb.linktype.0 as u16)),
        snaplen: idb.snaplen,
        resolution,
        ts_offset,
        name,
    };
    (iface, bad)
}

fn add_offset(ns: u64, offset_s: i64) -> u64 {
    let t = i128::from(ns) + i128::from(offset_s) * 1_000_000_000;
    t.clamp(0, i128::from(u64::MAX)) as u64
}

/// Reads until `buf` holds at least `want` bytes or the input ends.
fn read_at_least(r: &mut dyn Read, buf: &mut Vec<u8>, want: usize) -> io::Result<()> {
    let mut chunk = [0u8; SNIFF_LEN];
    while buf.len() < want {
        let room = (want - buf.len()).min(chunk.len());
        match r.read(&mut chunk[..room]) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// What a file that is not a capture seems to be, as the end of a sentence.
fn describe(head: &[u8], name: &str, gzip: bool) -> String {
    let records = |what: &str| {
        format!("it is {what}, not a capture; list its records with `migscope records {name}`")
    };
    let decompress = |what: &str, tool: &str| {
        format!("it is {what}-compressed; decompress it first (`{tool} {name}`)")
    };
    if head.starts_with(magic::LIBXL) {
        records("a raw libxl migration stream (it starts with \"LibxlFmt\")")
    } else if head.starts_with(magic::XL_SAVE) || head.starts_with(b"Xen saved domain") {
        records("an xl save file (\"Xen saved domain, xl format\")")
    } else if head.starts_with(magic::LIBXC_MARKER) && head.get(8..12) == Some(magic::LIBXC_ID) {
        records("a raw libxc migration stream (it starts with the 0xff marker and \"XENF\")")
    } else if head.starts_with(magic::ZSTD) {
        decompress("zstd", "zstd -d")
    } else if head.starts_with(magic::XZ) {
        decompress("xz", "xz -d")
    } else if head.starts_with(magic::BZIP2) {
        decompress("bzip2", "bunzip2")
    } else if head.len() < 4 {
        format!("it is only {} bytes long", head.len())
    } else if let Some(text) = as_text(head) {
        format!("it looks like text (it starts with \"{text}\")")
    } else {
        let hex: Vec<String> = head.iter().take(16).map(|b| format!("{b:02x}")).collect();
        let inside = if gzip { " once decompressed" } else { "" };
        format!(
            "it starts with the bytes {}{inside}, which no capture format starts with",
            hex.join(" ")
        )
    }
}

/// The first line of `head`, escaped, if `head` looks like text.
fn as_text(head: &[u8]) -> Option<String> {
    // Tolerate a UTF-8 sequence cut at the end of the sniffed bytes.
    let s = match std::str::from_utf8(head) {
        Ok(s) => s,
        Err(e) if e.error_len().is_none() => std::str::from_utf8(&head[..e.valid_up_to()]).ok()?,
        Err(_) => return None,
    };
    if s.chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return None;
    }
    let line: String = s.lines().next().unwrap_or("").chars().take(40).collect();
    Some(line.escape_debug().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    /// One packet to write: seconds, fraction (µs or ns), data, original length.
    type Rec<'a> = (u32, u32, &'a [u8], u32);

    fn u32b(v: u32, be: bool) -> [u8; 4] {
        if be {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    fn u16b(v: u16, be: bool) -> [u8; 2] {
        if be {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    /// A pcap file, written field by field.
    fn pcap(be: bool, nanos: bool, link: u32, snaplen: u32, recs: &[Rec]) -> Vec<u8> {
        let magic = if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
        let mut f = u32b(magic, be).to_vec();
        f.extend_from_slice(&u16b(2, be));
        f.extend_from_slice(&u16b(4, be));
        f.extend_from_slice(&[0; 8]); // thiszone, sigfigs
        f.extend_from_slice(&u32b(snaplen, be));
        f.extend_from_slice(&u32b(link, be));
        for &(sec, frac, data, orig) in recs {
            f.extend_from_slice(&u32b(sec, be));
            f.extend_from_slice(&u32b(frac, be));
            f.extend_from_slice(&u32b(data.len() as u32, be));
            f.extend_from_slice(&u32b(orig, be));
            f.extend_from_slice(data);
        }
        f
    }

    /// A pcapng block: type, length, body padded to 4, length.
    fn block(t: u32, body: &[u8], be: bool) -> Vec<u8> {
        let padded = body.len().div_ceil(4) * 4;
        let len = (12 + padded) as u32;
        let mut b = u32b(t, be).to_vec();
        b.extend_from_slice(&u32b(len, be));
        b.extend_from_slice(body);
        b.resize(8 + padded, 0);
        b.extend_from_slice(&u32b(len, be));
        b
    }

    fn option(code: u16, value: &[u8], be: bool) -> Vec<u8> {
        let mut o = u16b(code, be).to_vec();
        o.extend_from_slice(&u16b(value.len() as u16, be));
        o.extend_from_slice(value);
        o.resize(4 + value.len().div_ceil(4) * 4, 0);
        o
    }

    fn shb(be: bool) -> Vec<u8> {
        let mut body = u32b(0x1a2b_3c4d, be).to_vec();
        body.extend_from_slice(&u16b(1, be));
        body.extend_from_slice(&u16b(0, be));
        body.extend_from_slice(&[0xff; 8]); // section length: unknown
        body.extend_from_slice(&option(4, b"hand-written", be));
        body.extend_from_slice(&[0; 4]); // opt_endofopt
        block(magic::SHB, &body, be)
    }

    fn idb(link: u16, snaplen: u32, opts: &[(u16, &[u8])], be: bool) -> Vec<u8> {
        let mut body = u16b(link, be).to_vec();
        body.extend_from_slice(&[0, 0]);
        body.extend_from_slice(&u32b(snaplen, be));
        for (code, v) in opts {
            body.extend_from_slice(&option(*code, v, be));
        }
        if !opts.is_empty() {
            body.extend_from_slice(&[0; 4]);
        }
        block(magic::IDB, &body, be)
    }

    fn epb(if_id: u32, ts: u64, data: &[u8], orig: u32, be: bool) -> Vec<u8> {
        let mut body = u32b(if_id, be).to_vec();
        body.extend_from_slice(&u32b((ts >> 32) as u32, be));
        body.extend_from_slice(&u32b(ts as u32, be));
        body.extend_from_slice(&u32b(data.len() as u32, be));
        body.extend_from_slice(&u32b(orig, be));
        body.extend_from_slice(data);
        block(magic::EPB, &body, be)
    }

    fn spb(data: &[u8], orig: u32, be: bool) -> Vec<u8> {
        let mut body = u32b(orig, be).to_vec();
        body.extend_from_slice(data);
        block(magic::SPB, &body, be)
    }

    fn src(bytes: Vec<u8>) -> FileSource {
        FileSource::from_reader(Box::new(Cursor::new(bytes)), "test").unwrap()
    }

    fn open_err(bytes: Vec<u8>) -> CaptureError {
        FileSource::from_reader(Box::new(Cursor::new(bytes)), "test.pcap").unwrap_err()
    }

    /// A packet as owned values, and every error, until the end.
    #[derive(Debug, Clone, PartialEq)]
    enum Got {
        P(u64, u64, u32, Vec<u8>, u32),
        E(CaptureError),
    }

    fn drain(s: &mut FileSource) -> Vec<Got> {
        let mut out = vec![];
        for _ in 0..10_000 {
            match s.next_packet() {
                Ok(Some(p)) => out.push(Got::P(
                    p.number,
                    p.ts_ns,
                    p.link.0,
                    p.data.to_vec(),
                    p.orig_len,
                )),
                Ok(None) => {
                    // The end is final.
                    assert!(matches!(s.next_packet(), Ok(None)));
                    return out;
                }
                Err(e) => out.push(Got::E(e)),
            }
        }
        panic!("no end after 10000 calls");
    }

    const A: &[u8] = b"first packet";
    const B: &[u8] = b"second packet, longer";

    #[test]
    fn pcap_both_byte_orders_and_resolutions() {
        for be in [false, true] {
            for nanos in [false, true] {
                let frac = if nanos { 123_456_789 } else { 123_456 };
                let f = pcap(
                    be,
                    nanos,
                    1,
                    262_144,
                    &[(1_700_000_000, frac, A, 60), (1_700_000_001, 0, B, 21)],
                );
                let mut s = src(f);
                assert_eq!(s.format(), Format::Pcap);
                assert_eq!(s.big_endian(), be);
                assert_eq!(
                    s.resolution(),
                    if nanos {
                        TsResolution::NANO
                    } else {
                        TsResolution::MICRO
                    }
                );
                assert_eq!(s.snaplen(), 262_144);
                assert_eq!(s.interfaces()[0].link, LinkType::ETHERNET);
                let ns = if nanos { 123_456_789 } else { 123_456_000 };
                assert_eq!(
                    drain(&mut s),
                    vec![
                        Got::P(1, 1_700_000_000_000_000_000 + ns, 1, A.to_vec(), 60),
                        // orig_len is at least the captured length
                        Got::P(2, 1_700_000_001_000_000_000, 1, B.to_vec(), 21),
                    ],
                    "be={be} nanos={nanos}"
                );
                assert_eq!(s.packets(), 2);
            }
        }
    }

    #[test]
    fn pcap_modified_format() {
        // Kuznetzov's variant: 24-byte records (ifindex, protocol, type, pad).
        let mut f = pcap(false, false, 1, 65535, &[]);
        f[..4].copy_from_slice(&0xa1b2_cd34u32.to_le_bytes());
        for (sec, data) in [(7u32, A), (8, B)] {
            f.extend_from_slice(&sec.to_le_bytes());
            f.extend_from_slice(&5u32.to_le_bytes());
            f.extend_from_slice(&(data.len() as u32).to_le_bytes());
            f.extend_from_slice(&(data.len() as u32).to_le_bytes());
            f.extend_from_slice(&[2, 0, 0, 0, 8, 0, 0, 0]);
            f.extend_from_slice(data);
        }
        assert_eq!(
            drain(&mut src(f)),
            vec![
                Got::P(1, 7_000_005_000, 1, A.to_vec(), 12),
                Got::P(2, 8_000_005_000, 1, B.to_vec(), 21)
            ]
        );
        let mut be = pcap(true, false, 1, 65535, &[]);
        be[..4].copy_from_slice(&0xa1b2_cd34u32.to_be_bytes());
        assert!(matches!(open_err(be), CaptureError::Unsupported { .. }));
    }

    #[test]
    fn sources_can_move_to_a_reader_thread() {
        fn send<T: Send>() {}
        send::<FileSource>();
        send::<crate::capture::Source>();
    }

    #[test]
    fn pcap_link_type_ignores_fcs_bits() {
        // LINKTYPE_ETHERNET with the "FCS present, 4 bytes" bits set.
        let mut s = src(pcap(false, false, 0x1400_0001, 65535, &[(1, 0, A, 12)]));
        assert_eq!(s.interfaces()[0].link, LinkType::ETHERNET);
        assert!(matches!(s.next_packet(), Ok(Some(p)) if p.link == LinkType::ETHERNET));
    }

    /// Two interfaces (Ethernet in µs; SLL2 in ns with a 10 s offset), other
    /// blocks to skip, and a simple packet block.
    fn two_interfaces(be: bool) -> Vec<u8> {
        let mut f = shb(be);
        f.extend(idb(1, 65535, &[(2, b"eth0")], be));
        let off = if be {
            10i64.to_be_bytes()
        } else {
            10i64.to_le_bytes()
        };
        f.extend(idb(276, 0, &[(2, b"any"), (9, &[9]), (14, &off)], be));
        f.extend(block(4, &[0; 8], be)); // name resolution block (empty)
        f.extend(epb(0, 1_700_000_000_000_001, A, 100, be));
        f.extend(block(5, &[0; 12], be)); // interface statistics
        f.extend(epb(1, 5_000_000_007, B, 21, be));
        f.extend(block(0x0bad, b"custom", be)); // unknown block type
        f.extend(spb(b"simple", 6, be));
        f
    }

    #[test]
    fn pcapng_two_interfaces_and_a_simple_packet() {
        for be in [false, true] {
            let mut s = src(two_interfaces(be));
            assert_eq!(s.format(), Format::PcapNg);
            assert_eq!(s.big_endian(), be);
            let got = drain(&mut s);
            assert_eq!(
                got,
                vec![
                    Got::P(1, 1_700_000_000_000_001_000, 1, A.to_vec(), 100),
                    Got::P(2, 15_000_000_007, 276, B.to_vec(), 21),
                    // SPB: interface 0, previous packet's time
                    Got::P(3, 15_000_000_007, 1, b"simple".to_vec(), 6),
                ],
                "be={be}"
            );
            let ifs = s.interfaces();
            assert_eq!(ifs.len(), 2);
            assert_eq!(ifs[0].name.as_deref(), Some("eth0"));
            assert_eq!(
                (ifs[0].link, ifs[0].resolution),
                (LinkType::ETHERNET, TsResolution::MICRO)
            );
            assert_eq!(
                (ifs[1].link, ifs[1].resolution),
                (LinkType::LINUX_SLL2, TsResolution::NANO)
            );
            assert_eq!((ifs[1].snaplen, ifs[1].ts_offset), (0, 10));
            assert_eq!(s.snaplen(), 65535);
        }
    }

    #[test]
    fn pcapng_power_of_two_resolution_and_spb_snaplen() {
        let mut f = shb(false);
        // 2^-10 s units, snap length 4
        f.extend(idb(101, 4, &[(9, &[0x80 | 10])], false));
        f.extend(epb(0, 3 * 1024 + 512, b"abcd", 40, false));
        f.extend(spb(b"wxyz", 40, false)); // SPB data cut to the snap length
        let mut s = src(f);
        assert_eq!(
            drain(&mut s),
            vec![
                Got::P(1, 3_500_000_000, 101, b"abcd".to_vec(), 40),
                Got::P(2, 3_500_000_000, 101, b"wxyz".to_vec(), 40),
            ]
        );
        assert_eq!(s.resolution(), TsResolution::Binary(10));
        assert_eq!(s.resolution().to_string(), "2^-10 s");
    }

    #[test]
    fn pcapng_new_section_resets_interfaces_and_byte_order() {
        let mut f = shb(false);
        f.extend(idb(1, 0, &[], false));
        f.extend(idb(1, 0, &[], false));
        f.extend(epb(1, 1, A, 12, false));
        f.extend(shb(true));
        f.extend(idb(113, 0, &[], true));
        f.extend(epb(1, 2, B, 21, true)); // interface 1 is gone
        f.extend(epb(0, 3, B, 21, true));
        let mut s = src(f);
        let got = drain(&mut s);
        assert_eq!(got[0], Got::P(1, 1000, 1, A.to_vec(), 12));
        assert!(matches!(
            &got[1],
            Got::E(CaptureError::Corrupt {
                what: Corruption::UnknownInterface { id: 1, count: 1 },
                fatal: false,
                ..
            })
        ));
        assert_eq!(got[2], Got::P(2, 3000, 113, B.to_vec(), 21));
        assert_eq!(got.len(), 3);
        assert!(s.big_endian());
    }

    #[test]
    fn gzip_is_read_transparently() {
        let plain = pcap(false, true, 1, 65535, &[(1, 2, A, 12), (3, 4, B, 21)]);
        let gz = |b: &[u8]| {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(b).unwrap();
            e.finish().unwrap()
        };
        let want = drain(&mut src(plain.clone()));
        let mut s = src(gz(&plain));
        assert!(s.compressed());
        assert_eq!(drain(&mut s), want);
        // Two gzip members back to back (as `cat a.gz b.gz` makes).
        let (head, tail) = plain.split_at(40);
        let two = [gz(head), gz(tail)].concat();
        assert_eq!(drain(&mut src(two)), want);
        // Cut short: the packets before the cut, then an error.
        let cut = gz(&plain);
        let cut = cut[..cut.len() - 12].to_vec();
        let got = drain(&mut src(cut));
        assert!(
            matches!(got.last(), Some(Got::E(e)) if e.ends_reading()),
            "{got:?}"
        );
    }

    #[test]
    fn truncated_last_packet_keeps_the_packets_before_it() {
        let full = pcap(
            false,
            false,
            1,
            65535,
            &[(1, 0, A, 12), (2, 0, B, 21), (3, 0, B, 21)],
        );
        // Cut inside the third packet's data, then inside its record header.
        for (cut, have, need) in [
            (full.len() - 5, 16 + 16, 16 + 21),
            (full.len() - 21 - 10, 6, 16),
        ] {
            let mut s = src(full[..cut].to_vec());
            let got = drain(&mut s);
            assert_eq!(got.len(), 3, "{got:?}");
            assert!(matches!(got[0], Got::P(1, ..)) && matches!(got[1], Got::P(2, ..)));
            let Got::E(e) = &got[2] else {
                panic!("{got:?}")
            };
            assert_eq!(
                e,
                &CaptureError::Truncated {
                    name: "test".into(),
                    packet: 3,
                    offset: (24 + 16 + 12 + 16 + 21) as u64,
                    have,
                    need
                }
            );
            assert!(
                e.to_string().starts_with("test ends inside packet 3 ("),
                "{e}"
            );
        }
        // pcapng, cut inside the last block
        let f = two_interfaces(false);
        let got = drain(&mut src(f[..f.len() - 3].to_vec()));
        assert_eq!(got.len(), 3);
        assert!(matches!(
            &got[2],
            Got::E(CaptureError::Truncated { packet: 3, .. })
        ));
    }

    #[test]
    fn truncated_file_header() {
        let f = pcap(false, false, 1, 65535, &[]);
        assert_eq!(
            open_err(f[..10].to_vec()),
            CaptureError::TruncatedHeader {
                name: "test.pcap".into(),
                have: 10,
                need: 24
            }
        );
        let f = shb(false);
        assert!(matches!(
            open_err(f[..20].to_vec()),
            CaptureError::TruncatedHeader { have: 20, .. }
        ));
        // A header and nothing else is an empty capture, not an error.
        assert_eq!(drain(&mut src(pcap(true, true, 1, 0, &[]))), vec![]);
    }

    #[test]
    fn not_a_capture_says_what_it_is() {
        let sentence = |b: &[u8]| open_err(b.to_vec()).to_string();
        assert_eq!(
            sentence(b"LibxlFmt\0\0\0\x02\0\0\0\0"),
            "test.pcap is not a pcap or pcapng capture: it is a raw libxl migration stream (it starts with \"LibxlFmt\"), not a capture; list its records with `migscope records test.pcap`"
        );
        assert!(
            sentence(b"Xen saved domain, xl format\n \0 \r\0\0\0\0").contains("an xl save file")
        );
        let mut libxc = vec![0xff; 8];
        libxc.extend_from_slice(b"XENF\0\0\0\x03");
        assert!(sentence(&libxc).contains("libxc migration stream"));
        assert_eq!(
            sentence(b"hello world\nsecond line"),
            "test.pcap is not a pcap or pcapng capture: it looks like text (it starts with \"hello world\")"
        );
        // Escape sequences are escaped, not passed to the terminal.
        assert!(sentence(b"GET /\x1b[2J HTTP/1.1").contains("not a pcap"));
        assert!(!sentence(b"GET /\x1b[2J HTTP/1.1").contains('\x1b'));
        assert!(sentence(&[0x28, 0xb5, 0x2f, 0xfd, 0, 0]).contains("zstd -d test.pcap"));
        assert_eq!(
            sentence(&[0xde, 0xad, 0xbe, 0xef, 1, 2, 3]),
            "test.pcap is not a pcap or pcapng capture: it starts with the bytes de ad be ef 01 02 03, which no capture format starts with"
        );
        assert_eq!(
            sentence(&[1, 2]),
            "test.pcap is not a pcap or pcapng capture: it is only 2 bytes long"
        );
        assert_eq!(
            open_err(vec![]),
            CaptureError::Empty {
                name: "test.pcap".into()
            }
        );
    }

    #[test]
    fn corrupt_block_in_the_middle() {
        // Framing lost: the trailing length differs. Packets before it come
        // out, then one error, then the end.
        let mut f = shb(false);
        f.extend(idb(1, 0, &[], false));
        f.extend(epb(0, 1, A, 12, false));
        let mut bad = epb(0, 2, B, 21, false);
        let n = bad.len();
        bad[n - 4] ^= 0xff;
        f.extend(bad);
        f.extend(epb(0, 3, A, 12, false));
        let got = drain(&mut src(f));
        assert_eq!(got.len(), 2, "{got:?}");
        let Got::E(e) = &got[1] else { panic!() };
        assert!(e.ends_reading());
        // SHB 48 bytes, IDB 20, EPB 44
        assert!(
            matches!(
                e,
                CaptureError::Corrupt {
                    what: Corruption::BlockLengthMismatch { .. },
                    offset: 112,
                    ..
                }
            ),
            "{e:?}"
        );
        // Framing intact, content wrong: skipped, reading goes on.
        let mut f = shb(false);
        f.extend(spb(b"no interface yet", 16, false));
        f.extend(idb(1, 0, &[], false));
        let mut bad = epb(0, 2, B, 21, false);
        bad[20..24].copy_from_slice(&1000u32.to_le_bytes()); // caplen > block
        f.extend(bad);
        f.extend(epb(0, 3, A, 12, false));
        let got = drain(&mut src(f));
        assert!(matches!(
            &got[0],
            Got::E(CaptureError::Corrupt {
                what: Corruption::NoInterface,
                fatal: false,
                ..
            })
        ));
        assert!(matches!(
            &got[1],
            Got::E(CaptureError::Corrupt {
                what: Corruption::CaptureLongerThanBlock {
                    caplen: 1000,
                    room: 24
                },
                fatal: false,
                ..
            })
        ));
        assert_eq!(got[2], Got::P(1, 3000, 1, A.to_vec(), 12));
        // A block length that is not a multiple of 4 ends reading.
        let mut f = shb(false);
        f.extend(idb(1, 0, &[], false));
        f.extend(epb(0, 3, A, 12, false));
        f.extend_from_slice(&[6, 0, 0, 0, 33, 0, 0, 0]);
        f.extend_from_slice(&[0; 40]);
        let got = drain(&mut src(f));
        assert!(matches!(
            &got[1],
            Got::E(CaptureError::Corrupt {
                what: Corruption::BlockLength { len: 33, .. },
                fatal: true,
                ..
            })
        ));
    }

    #[test]
    fn huge_claimed_lengths_allocate_nothing() {
        // A pcap record claiming 4 GB.
        let mut f = pcap(false, false, 1, 65535, &[(1, 0, A, 12)]);
        f.extend_from_slice(&[0; 8]);
        f.extend_from_slice(&u32::MAX.to_le_bytes());
        f.extend_from_slice(&u32::MAX.to_le_bytes());
        f.extend_from_slice(&[0; 100]);
        let mut s = src(f);
        let got = drain(&mut s);
        assert_eq!(got.len(), 2);
        assert!(matches!(
            &got[1],
            Got::E(CaptureError::Corrupt {
                what: Corruption::RecordTooLong {
                    caplen: u32::MAX,
                    ..
                },
                fatal: true,
                ..
            })
        ));
        assert_eq!(s.buffer_capacity(), INITIAL_BUFFER);
        // A pcapng block claiming 15 MiB, under the cap, on a short file:
        // the buffer does not grow for bytes that never come.
        let mut f = shb(false);
        f.extend_from_slice(&[6, 0, 0, 0]);
        f.extend_from_slice(&(15u32 << 20).to_le_bytes());
        f.extend_from_slice(&[0; 100]);
        let mut s = src(f);
        assert!(matches!(
            drain(&mut s)[..],
            [Got::E(CaptureError::Truncated { .. })]
        ));
        assert_eq!(s.buffer_capacity(), INITIAL_BUFFER);
    }

    #[test]
    fn a_block_larger_than_the_buffer_grows_it_within_the_cap() {
        let big = vec![0x5a; 3 << 20];
        let mut f = shb(false);
        f.extend(idb(1, 0, &[], false));
        f.extend(epb(0, 1, A, 12, false));
        f.extend(epb(0, 2, &big, big.len() as u32, false));
        f.extend(epb(0, 3, B, 21, false));
        let mut s = src(f);
        let got = drain(&mut s);
        assert_eq!(got.len(), 3);
        assert!(matches!(&got[1], Got::P(2, 2000, 1, d, _) if d == &big));
        assert!(s.buffer_capacity() > INITIAL_BUFFER && s.buffer_capacity() <= MAX_BLOCK_LEN);
    }

    /// Serves its bytes `step` at a time (or in the given sizes, cycled).
    struct Chunked {
        data: Vec<u8>,
        at: usize,
        sizes: Vec<usize>,
        i: usize,
    }

    impl Read for Chunked {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let size = self.sizes[self.i % self.sizes.len()].max(1);
            self.i += 1;
            let n = size.min(out.len()).min(self.data.len() - self.at);
            out[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    fn chunked(data: Vec<u8>, sizes: Vec<usize>) -> FileSource {
        let r = Chunked {
            data,
            at: 0,
            sizes,
            i: 0,
        };
        FileSource::from_reader(Box::new(r), "test").unwrap()
    }

    #[test]
    fn byte_by_byte_reads_give_the_same_packets() {
        for f in [
            two_interfaces(false),
            two_interfaces(true),
            pcap(true, false, 1, 65535, &[(1, 2, A, 12), (3, 4, B, 21)]),
        ] {
            let want = drain(&mut src(f.clone()));
            assert_eq!(drain(&mut chunked(f.clone(), vec![1])), want);
            assert_eq!(drain(&mut chunked(f.clone(), vec![3, 17, 1, 64, 5])), want);
            let cut = f[..f.len() - 2].to_vec();
            assert_eq!(
                drain(&mut chunked(cut.clone(), vec![1])),
                drain(&mut src(cut))
            );
        }
    }

    /// A pipe the test fills by hand: reading when it is empty and still open
    /// is a test failure (the reader would block waiting for data it does not
    /// need).
    #[derive(Clone, Default)]
    struct Pipe(Arc<Mutex<(VecDeque<Vec<u8>>, bool)>>);

    impl Pipe {
        fn send(&self, b: &[u8]) {
            self.0.lock().unwrap().0.push_back(b.to_vec());
        }
        fn close(&self) {
            self.0.lock().unwrap().1 = true;
        }
    }

    impl Read for Pipe {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let mut g = self.0.lock().unwrap();
            let Some(mut chunk) = g.0.pop_front() else {
                assert!(g.1, "read() on an empty pipe would block");
                return Ok(0);
            };
            let n = chunk.len().min(out.len());
            out[..n].copy_from_slice(&chunk[..n]);
            if n < chunk.len() {
                g.0.push_front(chunk.split_off(n));
            }
            Ok(n)
        }
    }

    #[test]
    fn packets_come_out_as_soon_as_they_are_complete() {
        let f = pcap(false, false, 1, 262_144, &[(1, 0, A, 12), (2, 0, B, 21)]);
        let first_end = 24 + 16 + A.len();
        let pipe = Pipe::default();
        pipe.send(&f[..4]);
        pipe.send(&f[4..first_end + 5]); // header, packet 1, part of packet 2's header
        let mut s = FileSource::from_reader(Box::new(pipe.clone()), "pipe").unwrap();
        assert_eq!(s.next_packet().unwrap().unwrap().data, A);
        pipe.send(&f[first_end + 5..]);
        assert_eq!(s.next_packet().unwrap().unwrap().data, B);
        pipe.close();
        assert!(s.next_packet().unwrap().is_none());
    }

    #[test]
    fn a_file_that_grows_while_read_is_still_being_written() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("growing.pcap");
        let whole = pcap(false, false, 1, 0, &[(1, 0, A, 12), (2, 0, A, 12)]);
        // The second record is half written when migscope opens the file...
        fs::write(&p, &whole[..whole.len() - 20]).unwrap();
        let mut s = FileSource::open(&p).unwrap();
        assert!(s.next_packet().unwrap().is_some());
        // ...and a few more bytes of it arrive, not all.
        let mut f = fs::OpenOptions::new().append(true).open(&p).unwrap();
        std::io::Write::write_all(&mut f, &whole[whole.len() - 20..whole.len() - 10]).unwrap();
        let e = s.next_packet().unwrap_err();
        assert!(
            matches!(e, CaptureError::StillBeingWritten { packets: 1, .. }),
            "{e}"
        );
        assert!(e.ends_reading());
        // A file that stopped growing is cut short, as before.
        let mut s = FileSource::open(&p).unwrap();
        assert!(s.next_packet().unwrap().is_some());
        let e = s.next_packet().unwrap_err();
        assert!(matches!(e, CaptureError::Truncated { .. }), "{e}");
    }

    #[test]
    fn open_errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pcap");
        assert_eq!(
            FileSource::open(&missing).unwrap_err(),
            CaptureError::NotFound {
                path: missing.clone()
            }
        );
        let e = FileSource::open(dir.path()).unwrap_err();
        assert!(e.to_string().contains("is a directory"), "{e}");
        let p = dir.path().join("x.pcap");
        fs::write(&p, pcap(false, false, 1, 0, &[(1, 0, A, 12)])).unwrap();
        let mut s = FileSource::open(&p).unwrap();
        assert_eq!(s.name(), p.display().to_string());
        assert!(s.next_packet().unwrap().is_some());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&p, fs::Permissions::from_mode(0o000)).unwrap();
            if File::open(&p).is_err() {
                assert_eq!(
                    FileSource::open(&p).unwrap_err(),
                    CaptureError::PermissionDenied { path: p.clone() }
                );
            } else {
                eprintln!("running as root: skipping the permission-denied check");
            }
        }
    }

    #[test]
    fn resolution_arithmetic() {
        assert_eq!(TsResolution::from_if_tsresol(6), Some(TsResolution::MICRO));
        assert_eq!(TsResolution::from_if_tsresol(20), None);
        assert_eq!(TsResolution::from_if_tsresol(0x80 | 64), None);
        assert_eq!(TsResolution::Decimal(3).to_ns(1500), 1_500_000_000);
        assert_eq!(TsResolution::Decimal(19).to_ns(10_000_000_000), 1);
        assert_eq!(TsResolution::Binary(0).to_ns(u64::MAX), u64::MAX);
        assert_eq!(TsResolution::Binary(63).to_ns(1 << 62), 500_000_000);
        assert_eq!(add_offset(5, -1), 0);
        assert_eq!(add_offset(u64::MAX - 1, 1), u64::MAX);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn arbitrary_input_never_panics_and_memory_stays_capped(
            prefix in proptest::sample::select(vec![
                vec![], vec![0xd4, 0xc3, 0xb2, 0xa1], vec![0x4d, 0x3c, 0xb2, 0xa1],
                vec![0x34, 0xcd, 0xb2, 0xa1], vec![0x0a, 0x0d, 0x0d, 0x0a],
                vec![0x1f, 0x8b],
            ]),
            body in proptest::collection::vec(any::<u8>(), 0..600),
            sizes in proptest::collection::vec(1usize..50, 1..4),
        ) {
            let data = [prefix, body].concat();
            let r = Chunked { data: data.clone(), at: 0, sizes, i: 0 };
            if let Ok(mut s) = FileSource::from_reader(Box::new(r), "fuzz") {
                for _ in 0..data.len() + 2 {
                    match s.next_packet() {
                        Ok(None) => break,
                        Ok(Some(p)) => prop_assert!(p.data.len() <= data.len()),
                        Err(e) => { let _ = e.to_string(); }
                    }
                    prop_assert!(s.buffer_capacity() <= MAX_BLOCK_LEN);
                }
                prop_assert!(matches!(s.next_packet(), Ok(None)));
            }
        }

        #[test]
        fn mutated_captures_never_panic(
            flips in proptest::collection::vec((0usize..400, any::<u8>()), 1..8),
            cut in 0usize..40,
            which in 0usize..3,
        ) {
            let mut f = match which {
                0 => two_interfaces(false),
                1 => two_interfaces(true),
                _ => pcap(false, true, 1, 65535, &[(1, 2, A, 12), (3, 4, B, 21)]),
            };
            for (i, b) in flips {
                let n = f.len();
                f[i % n] = b;
            }
            f.truncate(f.len().saturating_sub(cut));
            if let Ok(mut s) = FileSource::from_reader(Box::new(Cursor::new(f.clone())), "fuzz") {
                let mut calls = 0;
                while !matches!(s.next_packet(), Ok(None)) {
                    calls += 1;
                    prop_assert!(calls <= f.len());
                }
                prop_assert!(s.buffer_capacity() <= MAX_BLOCK_LEN);
            }
        }
    }
}
