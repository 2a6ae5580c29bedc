//! Captures written field by field for the reader's tests, and helpers to
//! read them back: every packet as owned values and every error, until the
//! end.

use std::io::{self, Cursor, Read};

use super::magic;
use super::FileSource;
use crate::capture::CaptureError;

/// One packet to write: seconds, fraction (µs or ns), data, original length.
pub(super) type Rec<'a> = (u32, u32, &'a [u8], u32);

pub(super) fn u32b(v: u32, be: bool) -> [u8; 4] {
    if be {
        v.to_be_bytes()
    } else {
        v.to_le_bytes()
    }
}

pub(super) fn u16b(v: u16, be: bool) -> [u8; 2] {
    if be {
        v.to_be_bytes()
    } else {
        v.to_le_bytes()
    }
}

/// A pcap file, written field by field.
pub(super) fn pcap(be: bool, nanos: bool, link: u32, snaplen: u32, recs: &[Rec]) -> Vec<u8> {
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
pub(super) fn block(t: u32, body: &[u8], be: bool) -> Vec<u8> {
    let padded = body.len().div_ceil(4) * 4;
    let len = (12 + padded) as u32;
    let mut b = u32b(t, be).to_vec();
    b.extend_from_slice(&u32b(len, be));
    b.extend_from_slice(body);
    b.resize(8 + padded, 0);
    b.extend_from_slice(&u32b(len, be));
    b
}

pub(super) fn option(code: u16, value: &[u8], be: bool) -> Vec<u8> {
    let mut o = u16b(code, be).to_vec();
    o.extend_from_slice(&u16b(value.len() as u16, be));
    o.extend_from_slice(value);
    o.resize(4 + value.len().div_ceil(4) * 4, 0);
    o
}

pub(super) fn shb(be: bool) -> Vec<u8> {
    let mut body = u32b(0x1a2b_3c4d, be).to_vec();
    body.extend_from_slice(&u16b(1, be));
    body.extend_from_slice(&u16b(0, be));
    body.extend_from_slice(&[0xff; 8]); // section length: unknown
    body.extend_from_slice(&option(4, b"hand-written", be));
    body.extend_from_slice(&[0; 4]); // opt_endofopt
    block(magic::SHB, &body, be)
}

pub(super) fn idb(link: u16, snaplen: u32, opts: &[(u16, &[u8])], be: bool) -> Vec<u8> {
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

pub(super) fn epb(if_id: u32, ts: u64, data: &[u8], orig: u32, be: bool) -> Vec<u8> {
    let mut body = u32b(if_id, be).to_vec();
    body.extend_from_slice(&u32b((ts >> 32) as u32, be));
    body.extend_from_slice(&u32b(ts as u32, be));
    body.extend_from_slice(&u32b(data.len() as u32, be));
    body.extend_from_slice(&u32b(orig, be));
    body.extend_from_slice(data);
    block(magic::EPB, &body, be)
}

pub(super) fn spb(data: &[u8], orig: u32, be: bool) -> Vec<u8> {
    let mut body = u32b(orig, be).to_vec();
    body.extend_from_slice(data);
    block(magic::SPB, &body, be)
}

pub(super) fn src(bytes: Vec<u8>) -> FileSource {
    FileSource::from_reader(Box::new(Cursor::new(bytes)), "test").unwrap()
}

pub(super) fn open_err(bytes: Vec<u8>) -> CaptureError {
    FileSource::from_reader(Box::new(Cursor::new(bytes)), "test.pcap").unwrap_err()
}

/// A packet as owned values, and every error, until the end.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Got {
    P(u64, u64, u32, Vec<u8>, u32),
    E(CaptureError),
}

pub(super) fn drain(s: &mut FileSource) -> Vec<Got> {
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

pub(super) const A: &[u8] = b"first packet";
pub(super) const B: &[u8] = b"second packet, longer";

/// Two interfaces (Ethernet in µs; SLL2 in ns with a 10 s offset), other
/// blocks to skip, and a simple packet block.
pub(super) fn two_interfaces(be: bool) -> Vec<u8> {
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

/// Serves its bytes `step` at a time (or in the given sizes, cycled).
pub(super) struct Chunked {
    pub(super) data: Vec<u8>,
    pub(super) at: usize,
    pub(super) sizes: Vec<usize>,
    pub(super) i: usize,
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

pub(super) fn chunked(data: Vec<u8>, sizes: Vec<usize>) -> FileSource {
    let r = Chunked {
        data,
        at: 0,
        sizes,
        i: 0,
    };
    FileSource::from_reader(Box::new(r), "test").unwrap()
}
