//! The capture file itself: a file header, then one record per frame, written
//! with `pcap-parser`'s serializer (its `serialize` feature, the `ToVec`
//! trait), the same crate that reads captures back in
//! [`crate::capture::file`].
//!
//! - **pcap**: version 2.4, little-endian, the microsecond or nanosecond
//!   magic, the options' snap length and link type; each frame a 16-byte
//!   record header and the captured bytes.
//! - **pcapng**: one section (little-endian, length unknown, `shb_userappl`
//!   "migscope synth") with one interface, `eth0`, whose `if_tsresol` is 9:
//!   enhanced packet blocks carry nanoseconds.
//!
//! Validates nothing about the frames (the scheduler built them); refuses a
//! pcap timestamp past 2106, which 32-bit seconds cannot hold. The bytes are
//! those pcap-file 2 wrote before (same fields, same options, same order).

use std::borrow::Cow;
use std::io;

use pcap_parser::{
    EnhancedPacketBlock, InterfaceDescriptionBlock, LegacyPcapBlock, Linktype, OptionCode,
    PcapHeader, PcapNGOption, SectionHeaderBlock, ToVec, EPB_MAGIC, IDB_MAGIC,
};

use super::{CaptureFormat, CaptureOptions, Link};

const NS_PER_S: u64 = 1_000_000_000;

/// pcap magic numbers: microsecond and nanosecond timestamps.
const PCAP_MAGIC_US: u32 = 0xa1b2_c3d4;
const PCAP_MAGIC_NS: u32 = 0xa1b2_3c4d;
/// pcapng `if_name` option code (pcap-parser names only the codes it reads).
const IF_NAME: OptionCode = OptionCode(2);
/// pcapng `if_tsresol` of the one interface: 10^-9 s.
const TS_RESOLUTION_NS: u8 = 9;
/// An enhanced packet block without data or options.
const EPB_EMPTY_LEN: usize = 32;

/// A capture file being written.
pub(super) struct Output<W: io::Write> {
    out: W,
    format: CaptureFormat,
    /// pcap only: nanosecond timestamps.
    nanosecond: bool,
}

impl<W: io::Write> Output<W> {
    /// Writes the file header (pcap) or the section header and interface
    /// description (pcapng).
    pub(super) fn new(mut out: W, opts: &CaptureOptions) -> io::Result<Self> {
        let linktype = match opts.link {
            Link::Ethernet => Linktype::ETHERNET,
            Link::Sll2 => Linktype::LINUX_SLL2,
        };
        match opts.format {
            CaptureFormat::Pcap => {
                let mut header = PcapHeader {
                    magic_number: if opts.nanosecond {
                        PCAP_MAGIC_NS
                    } else {
                        PCAP_MAGIC_US
                    },
                    snaplen: opts.snaplen,
                    network: linktype,
                    ..PcapHeader::new()
                };
                out.write_all(&header.to_vec().map_err(serialize_error)?)?;
            }
            CaptureFormat::Pcapng => {
                let mut section = SectionHeaderBlock {
                    block_type: 0,
                    block_len1: 0,
                    bom: 0,
                    major_version: 1,
                    minor_version: 0,
                    section_len: -1,
                    options: vec![option(OptionCode::ShbUserAppl, b"migscope synth")],
                    block_len2: 0,
                };
                out.write_all(&section.to_vec().map_err(serialize_error)?)?;
                // Not `to_vec`: it would add an `if_tsoffset` of 0.
                let options = vec![
                    option(IF_NAME, b"eth0"),
                    option(OptionCode::IfTsresol, &[TS_RESOLUTION_NS]),
                    option(OptionCode::EndOfOpt, &[]),
                ];
                let len = 20 + options_len(&options);
                let interface = InterfaceDescriptionBlock {
                    block_type: IDB_MAGIC,
                    block_len1: len,
                    linktype,
                    reserved: 0,
                    snaplen: opts.snaplen,
                    options,
                    block_len2: len,
                    if_tsresol: TS_RESOLUTION_NS,
                    if_tsoffset: 0,
                };
                out.write_all(&interface.to_vec_raw().map_err(serialize_error)?)?;
            }
        }
        Ok(Output {
            out,
            format: opts.format,
            nanosecond: opts.nanosecond,
        })
    }

    /// Writes one frame captured at `ts_ns` (since the Unix epoch) that was
    /// `wire_len` bytes long on the wire.
    ///
    /// The record or block is serialized without the frame, which is written
    /// straight after its header: `to_vec` would copy every frame twice.
    pub(super) fn packet(&mut self, ts_ns: u64, wire_len: u32, frame: &[u8]) -> io::Result<()> {
        let caplen = frame.len() as u32;
        match self.format {
            CaptureFormat::Pcap => {
                let Ok(ts_sec) = u32::try_from(ts_ns / NS_PER_S) else {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "the capture runs past the year 2106, which pcap timestamps cannot hold: use pcapng",
                    ));
                };
                let ns = (ts_ns % NS_PER_S) as u32;
                let header = LegacyPcapBlock {
                    ts_sec,
                    ts_usec: if self.nanosecond { ns } else { ns / 1000 },
                    caplen,
                    origlen: wire_len,
                    data: &[],
                };
                self.out
                    .write_all(&header.to_vec_raw().map_err(serialize_error)?)?;
                self.out.write_all(frame)
            }
            CaptureFormat::Pcapng => {
                let padding = frame.len().next_multiple_of(4) - frame.len();
                let len = (EPB_EMPTY_LEN + frame.len() + padding) as u32;
                let empty = EnhancedPacketBlock {
                    block_type: EPB_MAGIC,
                    block_len1: len,
                    if_id: 0,
                    ts_high: (ts_ns >> 32) as u32,
                    ts_low: ts_ns as u32,
                    caplen,
                    origlen: wire_len,
                    data: &[],
                    options: Vec::new(),
                    block_len2: len,
                };
                let bytes = empty.to_vec_raw().map_err(serialize_error)?;
                // The data goes between the fixed fields and the trailing length.
                let (head, tail) = bytes.split_at(EPB_EMPTY_LEN - 4);
                self.out.write_all(head)?;
                self.out.write_all(frame)?;
                self.out.write_all(&[0; 3][..padding])?;
                self.out.write_all(tail)
            }
        }
    }

    pub(super) fn into_inner(self) -> W {
        self.out
    }
}

fn option(code: OptionCode, value: &[u8]) -> PcapNGOption<'_> {
    PcapNGOption {
        code,
        len: value.len() as u16,
        value: Cow::Borrowed(value),
    }
}

/// Bytes of `options` in a block: code, length, value padded to 4.
fn options_len(options: &[PcapNGOption]) -> u32 {
    options
        .iter()
        .map(|o| 4 + o.value.len().div_ceil(4) * 4)
        .sum::<usize>() as u32
}

/// Serializing into a `Vec` cannot run out of room; any error is a bug.
fn serialize_error(e: impl std::fmt::Debug) -> io::Error {
    io::Error::other(format!("cannot serialize a capture block: {e:?}"))
}
