//! The byte re-reader of the Records view: the bytes of a record are not
//! kept, so they are read again from the capture file when asked for.
//!
//! [`fetch`] replays the capture from its first packet through a fresh
//! [`Analyzer`] (same [`Config`], so the same session numbers) and copies
//! the reassembled bytes of the wanted session direction and stream range,
//! stopping as soon as the range has passed. Limits: it needs the capture
//! file again (not standard input, not a live capture); its cost grows with
//! the record's position in the file (about the time the first reading took
//! to get there: no seek index yet); at most [`MAX_SHOWN`] bytes of a record
//! are copied. Bytes the capture lost are counted, not invented (they show
//! as zeros and the count is reported).

use std::path::Path;

use crate::capture::{FileSource, Next, Source};
use crate::decode::Direction;
use crate::session::{Analyzer, Config, Observer, SessionId};
use crate::tcp::GapCause;

/// Bytes of one record that [`fetch`] copies at most.
pub const MAX_SHOWN: usize = 64 << 10;

/// What to read again from the capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest {
    pub session: SessionId,
    pub dir: Direction,
    /// Stream offset of the first byte wanted.
    pub offset: u64,
    /// Bytes wanted (the record's wire length); at most [`MAX_SHOWN`] are copied.
    pub len: u64,
}

/// Bytes read again from the capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The first `min(len, MAX_SHOWN)` bytes of the range; bytes the capture
    /// lost are zeros.
    pub bytes: Vec<u8>,
    /// Bytes of `bytes` that the capture did not have (gaps) or that the
    /// capture ended before.
    pub missing: u64,
    /// The record is longer than [`MAX_SHOWN`].
    pub truncated: bool,
    /// Packets read to find them.
    pub packets: u64,
}

/// An observer that copies one stream range and ignores everything else.
struct Grab {
    session: SessionId,
    dir: Direction,
    start: u64,
    end: u64,
    buf: Vec<u8>,
    have: u64,
    /// Stream position reached in the wanted direction.
    reached: u64,
}

impl Grab {
    fn done(&self) -> bool {
        self.reached >= self.end
    }
}

impl Observer for Grab {
    fn bytes(&mut self, s: SessionId, d: Direction, offset: u64, data: &[u8]) {
        if s != self.session || d != self.dir {
            return;
        }
        let a = offset.max(self.start);
        let b = (offset + data.len() as u64).min(self.end);
        if a < b {
            let src = &data[(a - offset) as usize..(b - offset) as usize];
            let dst = (a - self.start) as usize;
            self.buf[dst..dst + src.len()].copy_from_slice(src);
            self.have += b - a;
        }
        self.reached = self.reached.max(offset + data.len() as u64);
    }

    fn gap(&mut self, s: SessionId, d: Direction, _ts: u64, offset: u64, len: u64, _c: GapCause) {
        if s == self.session && d == self.dir {
            self.reached = self.reached.max(offset + len);
        }
    }
}

/// Reads the bytes of `req` again from the capture at `path` (see the
/// module docs for how and its limits). `cancelled` is asked every few
/// thousand packets; when it answers true, reading stops with `Ok(None)`.
pub fn fetch(
    path: &Path,
    cfg: &Config,
    req: &FetchRequest,
    cancelled: &dyn Fn() -> bool,
) -> Result<Option<Fetched>, String> {
    let shown = req.len.min(MAX_SHOWN as u64);
    let grab = Grab {
        session: req.session,
        dir: req.dir,
        start: req.offset,
        end: req.offset + shown,
        buf: vec![0; shown as usize],
        have: 0,
        reached: 0,
    };
    let mut src = Source::File(FileSource::open(path).map_err(|e| e.to_string())?);
    let mut an = Analyzer::new(cfg.clone(), grab);
    let mut packets = 0u64;
    while !an.observer().done() {
        match src.next_packet() {
            Ok(Next::Packet(p)) => {
                packets += 1;
                an.packet(&p);
            }
            Ok(Next::Idle) => {}
            Ok(Next::End) => break,
            Err(e) if e.ends_reading() => break,
            Err(_) => {}
        }
        if packets % 2048 == 0 && cancelled() {
            return Ok(None);
        }
    }
    if !an.observer().done() {
        an.finish();
    }
    let g = an.into_observer();
    Ok(Some(Fetched {
        missing: shown - g.have.min(shown),
        bytes: g.buf,
        truncated: req.len > shown,
        packets,
    }))
}
