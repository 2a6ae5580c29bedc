//! Record framing shared by both layers (PROTOCOL.md §3, "Every record, in
//! both layers"), the layer names, and little/big-endian field readers. The
//! record types themselves (numbers, names, lengths) are the table in
//! [`records`](super::records), re-exported here.
//!
//! Every record is `u32 type | u32 body_length | body | zero padding to a
//! multiple of 8`, little-endian. [`RecordHeader::parse`] is the one checked
//! constructor; it never fails on content (unknown types are data), only on a
//! short buffer.

use std::fmt;

use byteorder::{ByteOrder, LittleEndian};
use serde::Serialize;

pub use super::records::{LibxcType, LibxlType, RecordType};

/// Byte offsets of the fields of a record header.
pub mod field {
    use std::ops::Range;
    pub const TYPE: Range<usize> = 0..4;
    pub const BODY_LENGTH: Range<usize> = 4..8;
}

/// Size of a record header on the wire.
pub const RECORD_HEADER_LEN: usize = 8;

/// libxc refuses records longer than this; the tool treats a longer record as
/// corruption (PROTOCOL.md §3).
pub const MAX_RECORD_BODY: u32 = 0x0800_0000;

/// Bit 31 of a record type marks an optional record.
pub const OPTIONAL_BIT: u32 = 0x8000_0000;

/// Number of zero bytes that follow a body of `len` bytes.
pub fn padding(len: u32) -> u32 {
    (8 - (len % 8)) % 8
}

/// Body plus padding, as a u64 so that it cannot overflow.
pub fn padded(len: u32) -> u64 {
    u64::from(len) + u64::from(padding(len))
}

/// The two record layers of stream v2 plus the `xl` preamble around them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    Xl,
    Libxl,
    Libxc,
    /// A QEMU migration stream (one layer).
    Qemu,
}

impl Layer {
    pub fn name(self) -> &'static str {
        match self {
            Layer::Xl => "xl",
            Layer::Libxl => "libxl",
            Layer::Libxc => "libxc",
            Layer::Qemu => "qemu",
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The 8-byte header in front of every record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    pub rtype: u32,
    pub body_length: u32,
}

impl RecordHeader {
    /// Reads a header from the first 8 bytes of `buf`; `None` if shorter.
    #[inline]
    pub fn parse(buf: &[u8]) -> Option<Self> {
        let buf = buf.get(..RECORD_HEADER_LEN)?;
        Some(RecordHeader {
            rtype: LittleEndian::read_u32(&buf[field::TYPE]),
            body_length: LittleEndian::read_u32(&buf[field::BODY_LENGTH]),
        })
    }

    pub fn emit(&self, out: &mut [u8; RECORD_HEADER_LEN]) {
        LittleEndian::write_u32(&mut out[field::TYPE], self.rtype);
        LittleEndian::write_u32(&mut out[field::BODY_LENGTH], self.body_length);
    }

    /// Header + body + padding.
    pub fn total_len(&self) -> u64 {
        RECORD_HEADER_LEN as u64 + padded(self.body_length)
    }
}

/// Appends a whole record to `out`: header, `body`, zero padding.
///
/// # Panics
/// If `body` is 4 GiB or more, which no record can be.
pub fn emit_record(rtype: u32, body: &[u8], out: &mut Vec<u8>) {
    let body_length = u32::try_from(body.len()).expect("a record body is under 4 GiB");
    let mut header = [0u8; RECORD_HEADER_LEN];
    RecordHeader { rtype, body_length }.emit(&mut header);
    out.extend_from_slice(&header);
    out.extend_from_slice(body);
    out.resize(out.len() + padding(body_length) as usize, 0);
}

/// Little-endian field readers over slices whose length was checked by the
/// caller's constructor. Out-of-range reads return 0 instead of panicking, so
/// an accessor bug degrades into a wrong value, never a crash.
#[inline]
pub(crate) fn le_u16(buf: &[u8], at: usize) -> u16 {
    buf.get(at..at + 2).map(LittleEndian::read_u16).unwrap_or(0)
}

#[inline]
pub(crate) fn le_u32(buf: &[u8], at: usize) -> u32 {
    buf.get(at..at + 4).map(LittleEndian::read_u32).unwrap_or(0)
}

#[inline]
pub(crate) fn le_u64(buf: &[u8], at: usize) -> u64 {
    buf.get(at..at + 8).map(LittleEndian::read_u64).unwrap_or(0)
}

#[inline]
pub(crate) fn be_u16(buf: &[u8], at: usize) -> u16 {
    buf.get(at..at + 2)
        .map(byteorder::BigEndian::read_u16)
        .unwrap_or(0)
}

#[inline]
pub(crate) fn be_u32(buf: &[u8], at: usize) -> u32 {
    buf.get(at..at + 4)
        .map(byteorder::BigEndian::read_u32)
        .unwrap_or(0)
}

#[inline]
pub(crate) fn be_u64(buf: &[u8], at: usize) -> u64 {
    buf.get(at..at + 8)
        .map(byteorder::BigEndian::read_u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_parse_and_emit() {
        let bytes = [0x05, 0, 0, 0, 0x04, 0, 0, 0];
        let h = RecordHeader::parse(&bytes).unwrap();
        assert_eq!(h.rtype, 5);
        assert_eq!(h.body_length, 4);
        assert_eq!(h.total_len(), 16);
        let mut out = [0u8; 8];
        h.emit(&mut out);
        assert_eq!(out, bytes);
        assert_eq!(RecordHeader::parse(&bytes[..7]), None);
    }

    #[test]
    fn whole_record_is_padded() {
        let mut out = vec![0xAA];
        emit_record(0x0E, &[], &mut out);
        emit_record(5, &[2, 0, 0, 0], &mut out);
        assert_eq!(
            out,
            [
                0xAA, // what was there before
                0x0E, 0, 0, 0, 0, 0, 0, 0, // CHECKPOINT, empty
                5, 0, 0, 0, 4, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, // CHECKPOINT_STATE SVM_READY
            ]
        );
    }

    #[test]
    fn padding_rounds_to_eight() {
        assert_eq!(padding(0), 0);
        assert_eq!(padding(1), 7);
        assert_eq!(padding(4), 4);
        assert_eq!(padding(8), 0);
        assert_eq!(padded(u32::MAX), u64::from(u32::MAX) + 1);
    }

    #[test]
    fn short_reads_return_zero() {
        assert_eq!(le_u32(&[1, 2], 0), 0);
        assert_eq!(le_u64(&[], 8), 0);
        assert_eq!(be_u32(&[0, 0, 0, 7], 0), 7);
    }
}

/// Why a record body does not fit its type's layout. Tests compare these, so
/// they carry the facts, not prose.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// The body length does not fit the type (`expected` says what would).
    #[error("body is {found} bytes, expected {expected}")]
    Length { expected: String, found: u64 },
    /// A field holds a value the format does not allow.
    #[error("{field} is {found:#x}, expected {expected}")]
    Value {
        field: &'static str,
        found: u64,
        expected: &'static str,
    },
}

impl BodyError {
    pub(crate) fn length(expected: impl Into<String>, found: usize) -> Self {
        BodyError::Length {
            expected: expected.into(),
            found: found as u64,
        }
    }
}
