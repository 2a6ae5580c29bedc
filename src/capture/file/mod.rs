//! Packets from a capture file: pcap or pcapng, plain or gzip-compressed, from
//! a path or from standard input.
//!
//! # Layout
//! - this module: [`FileSource`], its buffer and the reading loop;
//! - `input`: gzip, format sniffing, what a file that is not a
//!   capture looks like;
//! - `pcap` and `pcapng`: the two container
//!   formats, record by record and block by block;
//! - `interface`: an interface's link type, snap length and
//!   timestamp unit.
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
//! # Why not `pcap-parser`'s streaming readers
//! `LegacyPcapReader` and `PcapNGReader` (refill, consume, grow) were tried in
//! their place (commit 6967d98, reverted): the same checks and messages need
//! a pre-read of the file header (the crate parses it from its first read,
//! and a pipe may deliver it in pieces), a side channel for the `io::Error`
//! (the crate reduces a failed read to `ReadError`) and migscope's own
//! framing checks before each `next()`, so that version was larger (583
//! lines of code against 551) and slower. Figures from one session on 2
//! shared cores, best of alternating runs:
//!
//! | `benches/file_reader.rs` (in memory, 154,031 packets) | pcap, 161 MB | pcapng, 164 MB |
//! |---|---|---|
//! | copy into a 1 MiB buffer (the floor) | 7.8 ms | 7.5 ms |
//! | `FileSource`, this buffer | 8.6 ms | 13.3 ms |
//! | `FileSource` on the crate's readers | 9.9 ms | 15.0 ms |
//! | the crate's reader alone, no checks, `consume_noshift` | 8.2 ms | 11.5 ms |
//! | the crate's reader alone, `consume` as its docs show | 9.6 ms | 13.1 ms |
//!
//! | `migscope report FILE`, best of 21 | 538 MB pcap | 547 MB pcapng |
//! |---|---|---|
//! | `cat FILE > /dev/null` | 44 ms | 59 ms |
//! | this buffer | 149 ms (3.39 × cat), 9.4 MiB RSS | 174 ms (2.95 × cat), 9.3 MiB |
//! | the crate's readers | 154 ms (3.49 × cat), 9.2 MiB | 187 ms (3.18 × cat), 9.2 MiB |
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
use std::io::{self, Read};
use std::path::Path;

use crate::capture::error::{CaptureError, Corruption};
use crate::capture::{LinkType, Packet};

mod input;
mod interface;
mod pcap;
mod pcapng;
#[cfg(test)]
mod testutil;

pub use interface::{Interface, TsResolution};

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

/// The container format of a capture file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Pcap,
    PcapNg,
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
        let (reader, gzip, kind, head) = input::open(reader, &name)?;
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
            Kind::Pcap { .. } => self.pcap_header(),
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
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;
    use std::io::Cursor;
    use std::sync::{Arc, Mutex};

    #[test]
    fn sources_can_move_to_a_reader_thread() {
        fn send<T: Send>() {}
        send::<FileSource>();
        send::<crate::capture::Source>();
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
