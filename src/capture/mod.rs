//! Capture input: packets from capture files (pcap, pcapng, gzip-compressed or
//! not, from a path or standard input) and from live interfaces, and the slicing
//! of each packet from its link layer down to the TCP segment.
//!
//! This module is the first stage of the pipeline
//! (`capture -> tcp -> decode -> model`). It knows nothing about TCP streams or
//! Xen: it hands out [`Packet`]s and, through [`link::parse`], [`TcpSegment`]s.
//!
//! - [`file`](mod@file): [`FileSource`] reads pcap and pcapng, plain or gzip-compressed,
//!   from a path or standard input, as the bytes arrive.
//! - [`live`]: [`LiveSource`] captures from an interface through libpcap
//!   (cargo feature `live`; without it, opening one says how to rebuild).
//! - [`link`]: [`parse`] slices a packet from its link layer to TCP in O(1),
//!   without copying or allocating.
//! - [`Source`] puts a file and a live capture behind one reading loop.
//!
//! Errors are [`CaptureError`]s, one sentence each for a person. A source hands
//! out every complete packet before the error that follows it, and after an
//! error the next call says whether more packets follow
//! ([`CaptureError::ends_reading`]). The reading loop is the same for both
//! kinds of source:
//!
//! ```no_run
//! use migscope::capture::{self, Next, Parsed, Source};
//! # fn main() -> Result<(), capture::CaptureError> {
//! let mut source = Source::File(capture::FileSource::open("-".as_ref())?);
//! loop {
//!     match source.next_packet() {
//!         Ok(Next::Packet(p)) => {
//!             if let Parsed::Tcp(seg) = capture::parse(p.link, p.data, p.orig_len) {
//!                 println!("{} {}:{} -> {}:{}", p.number, seg.src, seg.src_port, seg.dst, seg.dst_port);
//!             }
//!         }
//!         Ok(Next::Idle) => { /* live only: check for Ctrl-C, redraw */ }
//!         Ok(Next::End) => break,
//!         Err(e) => eprintln!("migscope: {e}"), // then keep calling: End follows a final error
//!     }
//! }
//! # Ok(()) }
//! ```

use std::fmt;
use std::net::IpAddr;

pub mod error;
pub mod file;
pub mod link;
pub mod live;

pub use error::{CaptureError, Corruption};
pub use file::FileSource;
pub use link::{parse, Malformed, Parsed};
pub use live::{LiveOptions, LiveSource, LiveStats};

/// A link-layer type number, as in pcap's LINKTYPE_* registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkType(pub u32);

impl LinkType {
    pub const NULL: LinkType = LinkType(0);
    pub const ETHERNET: LinkType = LinkType(1);
    pub const RAW: LinkType = LinkType(101);
    pub const LOOP: LinkType = LinkType(108);
    pub const LINUX_SLL: LinkType = LinkType(113);
    pub const IPV4: LinkType = LinkType(228);
    pub const IPV6: LinkType = LinkType(229);
    pub const LINUX_SLL2: LinkType = LinkType(276);

    /// A short name for people ("Ethernet", "Linux cooked v2"...), or `None`
    /// for a link type migscope does not slice.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "BSD loopback",
            1 => "Ethernet",
            12 | 14 | 101 => "raw IP",
            108 => "OpenBSD loopback",
            113 => "Linux cooked",
            228 => "raw IPv4",
            229 => "raw IPv6",
            276 => "Linux cooked v2",
            _ => return None,
        })
    }
}

impl fmt::Display for LinkType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n} (link type {})", self.0),
            None => write!(f, "link type {}", self.0),
        }
    }
}

/// One captured packet, borrowed from the source until the next call.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    /// Frame number, from 1, as Wireshark counts them.
    pub number: u64,
    /// Capture time in nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// Link type of the interface the packet was captured on.
    pub link: LinkType,
    /// The captured bytes (at most the snap length).
    pub data: &'a [u8],
    /// Length of the packet on the wire; more than `data.len()` when the snap
    /// length cut it.
    pub orig_len: u32,
}

/// TCP control flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub fn fin(self) -> bool {
        self.0 & Self::FIN != 0
    }
    pub fn syn(self) -> bool {
        self.0 & Self::SYN != 0
    }
    pub fn rst(self) -> bool {
        self.0 & Self::RST != 0
    }
    pub fn ack(self) -> bool {
        self.0 & Self::ACK != 0
    }
    pub fn psh(self) -> bool {
        self.0 & Self::PSH != 0
    }
}

/// A TCP segment sliced out of a packet, borrowing its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSegment<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    /// Advertised window, unscaled (as on the wire).
    pub window: u16,
    /// Window scale option (SYN segments only).
    pub window_scale: Option<u8>,
    /// MSS option (SYN segments only).
    pub mss: Option<u16>,
    /// The captured part of the payload.
    pub payload: &'a [u8],
    /// Payload bytes the IP length announces but the snap length cut off; they
    /// follow `payload` in sequence space and count as missing, not as data.
    pub missing: u32,
}

/// What a source has next.
#[derive(Debug, Clone, Copy)]
pub enum Next<'a> {
    /// A packet, borrowed until the next call.
    Packet(Packet<'a>),
    /// No packet arrived within the live read timeout (about 100 ms): check for
    /// a stop request, redraw, and call again. Files never return this.
    Idle,
    /// The source is finished; every later call returns `End` too.
    End,
}

/// A file or a live capture, read with the same loop (see the module doc).
pub enum Source {
    File(FileSource),
    Live(LiveSource),
}

impl Source {
    /// The next packet, [`Next::Idle`] (live only), or [`Next::End`].
    ///
    /// After an error, call again: more packets follow unless
    /// [`CaptureError::ends_reading`], in which case the next answer is `End`.
    pub fn next_packet(&mut self) -> Result<Next<'_>, CaptureError> {
        match self {
            Source::File(f) => Ok(match f.next_packet()? {
                Some(p) => Next::Packet(p),
                None => Next::End,
            }),
            Source::Live(l) => l.next_packet(),
        }
    }

    /// The file name ("standard input" for `-`) or the interface name.
    pub fn name(&self) -> &str {
        match self {
            Source::File(f) => f.name(),
            Source::Live(l) => l.iface(),
        }
    }
}
