//! Errors of the capture stage.
//!
//! Every [`CaptureError`] displays as one sentence for a person: what happened,
//! where, and what to do about it. They carry facts (paths, offsets, lengths)
//! rather than prose, and derive `PartialEq` so tests compare them.
//!
//! Whether an error ends reading is a property of the error
//! ([`CaptureError::ends_reading`]): the caller reports the sentence and keeps
//! calling `next_packet` until it returns the end. Nothing read before an
//! error is lost: complete packets are always handed out before the error that
//! follows them.

use std::io;
use std::path::PathBuf;

/// What is wrong in the structure of a capture file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Corruption {
    /// A pcap record header claims more captured bytes than migscope accepts.
    #[error(
        "a packet record claims {caplen} captured bytes, more than the {max} migscope accepts"
    )]
    RecordTooLong { caplen: u32, max: usize },
    /// A pcapng block length is below 12, not a multiple of 4, or above the cap.
    #[error(
        "a block claims a length of {len} bytes, which is not a multiple of 4 between 12 and {max}"
    )]
    BlockLength { len: u32, max: usize },
    /// The two copies of a pcapng block length disagree: framing is lost.
    #[error("a block starts with length {first} but ends with length {last}")]
    BlockLengthMismatch { first: u32, last: u32 },
    /// A pcapng section header has an unknown byte-order magic.
    #[error("a section header has the byte-order magic {magic:#010x}, neither 0x1a2b3c4d nor its byte swap")]
    ByteOrderMagic { magic: u32 },
    /// A packet block claims more captured bytes than it holds.
    #[error("a packet block says it captured {caplen} bytes but has room for {room}")]
    CaptureLongerThanBlock { caplen: u32, room: usize },
    /// An enhanced packet block names an interface the section did not describe.
    #[error("a packet names interface {id}, but the section describes {count} interface(s)")]
    UnknownInterface { id: u32, count: usize },
    /// A simple packet block comes before any interface description.
    #[error("a simple packet block comes before any interface description")]
    NoInterface,
    /// More interface descriptions than migscope keeps per section.
    #[error("the section describes more than {max} interfaces")]
    TooManyInterfaces { max: usize },
    /// An interface's `if_tsresol` cannot be represented; microseconds are assumed.
    #[error("interface {id} has a timestamp resolution (if_tsresol {if_tsresol:#04x}) too fine to represent, so microseconds are assumed for it")]
    TsResolution { id: usize, if_tsresol: u8 },
    /// A block's content does not parse although its length framing is sound.
    #[error("a {kind} block's content does not fit its length")]
    BadBlock { kind: &'static str },
}

/// An error reading packets, for a person to read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaptureError {
    /// The capture file does not exist.
    #[error("{} does not exist; check the path (or give '-' to read standard input)", .path.display())]
    NotFound { path: PathBuf },
    /// The capture file cannot be read for lack of permission.
    #[error("cannot read {}: permission denied; check the file's permissions or run migscope as a user allowed to read it", .path.display())]
    PermissionDenied { path: PathBuf },
    /// The capture file cannot be opened for another reason.
    #[error("cannot open {}: {message}", .path.display())]
    Open { path: PathBuf, message: String },
    /// The input holds no bytes at all.
    #[error("{name} is empty, so there are no packets to read; check that the capture ran and was written out")]
    Empty { name: String },
    /// The input is not a pcap or pcapng file; `looks_like` says what it seems to be.
    #[error("{name} is not a pcap or pcapng capture: {looks_like}")]
    NotCapture { name: String, looks_like: String },
    /// The input is a capture in a variant migscope does not read.
    #[error("{name} is {what}, which migscope does not read; convert it with `editcap -F pcap {name} out.pcap`")]
    Unsupported { name: String, what: String },
    /// The input ends inside its file header or first section header.
    #[error("{name} ends inside its file header ({have} of {need} bytes), so it holds no packets; the capture was probably cut short")]
    TruncatedHeader {
        name: String,
        have: usize,
        need: usize,
    },
    /// The input ends inside a packet; the packets before it were all read.
    #[error("{name} ends inside packet {packet} ({have} of its {need} bytes at byte {offset}); the packets before it were read, and the capture was probably cut short (a killed tcpdump or a full disk)")]
    Truncated {
        name: String,
        /// Number the packet would have had.
        packet: u64,
        /// Offset of its record or block in the (decompressed) input.
        offset: u64,
        have: usize,
        need: usize,
    },
    /// The input ended inside a packet while the file kept growing.
    #[error("{name} is still being written (it grew while migscope read it); the {packets} complete packets before its end were read; read it again once the capture has stopped, or capture live with -i")]
    StillBeingWritten { name: String, packets: u64 },
    /// The file's structure is broken at `offset`.
    #[error("{name} is corrupt at byte {offset}: {what}; {}", corrupt_outcome(*.fatal))]
    Corrupt {
        name: String,
        /// Offset of the bad record or block in the (decompressed) input.
        offset: u64,
        what: Corruption,
        /// True when framing is lost and reading stops; false when only this
        /// block is skipped.
        fatal: bool,
    },
    /// Reading the input failed (an I/O error, or corrupt gzip data).
    #[error("reading {name} failed at byte {offset}: {message}; the packets before that point were read")]
    Read {
        name: String,
        offset: u64,
        kind: io::ErrorKind,
        message: String,
    },
    /// Live capture was asked for but this binary was built without it.
    #[error("this migscope was built without live capture; rebuild it with `cargo install --path . --features live` (needs libpcap-dev), or capture with `tcpdump -w file.pcap` and read the file")]
    LiveNotBuilt,
    /// Opening the interface needs privileges the process lacks.
    #[error("no permission to capture on {iface} ({message}); run migscope as root, or grant it the capabilities once with `sudo setcap cap_net_raw,cap_net_admin=eip $(which migscope)`")]
    LivePermission { iface: String, message: String },
    /// The interface does not exist.
    #[error("there is no interface named {iface:?}; pick one of: {}", list_or_none(.available))]
    NoSuchInterface {
        iface: String,
        available: Vec<String>,
    },
    /// The BPF capture filter does not compile.
    #[error("the capture filter {filter:?} is not valid ({message}); check its syntax with `tcpdump -d '{filter}'`")]
    BadFilter { filter: String, message: String },
    /// Another libpcap error on the interface.
    #[error("capturing on {iface} failed: {message}")]
    Live { iface: String, message: String },
    /// Capture stopped in the middle (the interface went away or down).
    #[error("capturing on {iface} stopped: {message}; the packets captured until then were analysed (and kept in the -w file, if one was given)")]
    LiveEnded { iface: String, message: String },
    /// The `-w` file cannot be created or written.
    #[error("cannot write the capture to {} ({message}); check that its directory exists and is writable", .path.display())]
    Write { path: PathBuf, message: String },
}

fn corrupt_outcome(fatal: bool) -> &'static str {
    if fatal {
        "reading stops there, after the packets before it"
    } else {
        "that block is skipped and reading goes on"
    }
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "(libpcap lists none)".into()
    } else {
        names.join(", ")
    }
}

impl CaptureError {
    /// True when no packet follows this error: the source is finished (or was
    /// never opened). False only for a corrupt pcapng block that was skipped
    /// with its framing intact; reading goes on after it.
    ///
    /// Either way a caller may simply keep calling `next_packet` until it
    /// returns the end: after an error that ends reading, that is the next
    /// answer.
    pub fn ends_reading(&self) -> bool {
        !matches!(self, CaptureError::Corrupt { fatal: false, .. })
    }

    pub(crate) fn read(name: &str, offset: u64, e: &io::Error) -> CaptureError {
        let message = match e.kind() {
            io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData => {
                format!("{e} (the compressed data is damaged)")
            }
            io::ErrorKind::UnexpectedEof => {
                "the compressed data ends early (the file was cut short)".into()
            }
            _ => e.to_string(),
        };
        CaptureError::Read {
            name: name.into(),
            offset,
            kind: e.kind(),
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences() {
        let e = CaptureError::NotFound {
            path: "/tmp/x.pcap".into(),
        };
        assert_eq!(
            e.to_string(),
            "/tmp/x.pcap does not exist; check the path (or give '-' to read standard input)"
        );
        let e = CaptureError::Corrupt {
            name: "x.pcapng".into(),
            offset: 96,
            what: Corruption::UnknownInterface { id: 3, count: 1 },
            fatal: false,
        };
        assert_eq!(
            e.to_string(),
            "x.pcapng is corrupt at byte 96: a packet names interface 3, but the section describes 1 interface(s); that block is skipped and reading goes on"
        );
        assert!(!e.ends_reading());
        let e = CaptureError::NoSuchInterface {
            iface: "eth9".into(),
            available: vec!["lo".into(), "eth0".into()],
        };
        assert_eq!(
            e.to_string(),
            "there is no interface named \"eth9\"; pick one of: lo, eth0"
        );
        assert!(e.ends_reading());
        assert!(CaptureError::LiveNotBuilt
            .to_string()
            .contains("cargo install --path . --features live"));
    }
}
