//! `migscope export`: writes one session direction's reassembled bytes to a
//! file, so that a stream can be checked with other tools (Xen's own stream
//! verifier, `migscope records`, a hex editor).
//!
//! Bytes the capture does not have are listed as gaps (stream offset, length,
//! cause); with `zero_fill` they are written as zeros so that file offsets
//! equal stream offsets, otherwise they are left out.

use std::io::{self, Write};

use serde::Serialize;

use crate::decode::Direction;
use crate::session::{Observer, Session, SessionId};
use crate::tcp::GapCause;

/// A run of missing bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Gap {
    /// Stream offset of the first missing byte.
    pub offset: u64,
    pub len: u64,
    pub cause: GapCause,
}

/// Observer that writes the chosen direction of the chosen session.
pub struct Export<W: Write> {
    session: SessionId,
    dir: Direction,
    zero_fill: bool,
    out: W,
    /// Stream offset the next byte written would have.
    next: Option<u64>,
    pub first_offset: Option<u64>,
    pub written: u64,
    pub gaps: Vec<Gap>,
    pub found: Option<Session>,
    pub error: Option<io::Error>,
}

impl<W: Write> Export<W> {
    pub fn new(session: SessionId, dir: Direction, zero_fill: bool, out: W) -> Self {
        Export {
            session,
            dir,
            zero_fill,
            out,
            next: None,
            first_offset: None,
            written: 0,
            gaps: Vec::new(),
            found: None,
            error: None,
        }
    }

    pub fn into_inner(self) -> W {
        self.out
    }

    fn put(&mut self, data: &[u8]) {
        if self.error.is_none() {
            if let Err(e) = self.out.write_all(data) {
                self.error = Some(e);
            }
        }
        self.written += data.len() as u64;
    }

    fn zeros(&mut self, mut n: u64) {
        static Z: [u8; 65536] = [0; 65536];
        while n > 0 {
            let k = n.min(Z.len() as u64) as usize;
            self.put(&Z[..k]);
            n -= k as u64;
        }
    }

    pub fn flush(&mut self) -> io::Result<()> {
        match self.error.take() {
            Some(e) => Err(e),
            None => self.out.flush(),
        }
    }
}

impl<W: Write> Observer for Export<W> {
    fn session(&mut self, s: &Session) {
        if s.id == self.session {
            self.found = Some(s.clone());
        }
    }

    fn back_channel(&mut self, s: &Session) {
        if s.id == self.session {
            self.found = Some(s.clone());
        }
    }

    fn bytes(&mut self, s: SessionId, d: Direction, offset: u64, data: &[u8]) {
        if s != self.session || d != self.dir {
            return;
        }
        let next = *self.next.get_or_insert(offset);
        self.first_offset.get_or_insert(offset);
        if offset > next {
            // Bytes the reassembler skipped without a gap (cannot happen; be safe).
            self.gaps.push(Gap {
                offset: next,
                len: offset - next,
                cause: GapCause::EndOfCapture,
            });
            if self.zero_fill {
                self.zeros(offset - next);
            }
        } else if offset < next {
            // Already written (replayed recognition prefix): keep the first copy.
            let skip = (next - offset) as usize;
            if skip >= data.len() {
                return;
            }
            return self.bytes(s, d, next, &data[skip..]);
        }
        self.put(data);
        self.next = Some(offset + data.len() as u64);
    }

    fn gap(
        &mut self,
        s: SessionId,
        d: Direction,
        _ts: u64,
        offset: u64,
        len: u64,
        cause: GapCause,
    ) {
        if s != self.session || d != self.dir {
            return;
        }
        let next = *self.next.get_or_insert(offset);
        self.first_offset.get_or_insert(offset);
        let end = offset + len;
        if end <= next {
            return;
        }
        let from = offset.max(next);
        match self.gaps.last_mut() {
            Some(g) if g.offset + g.len == from && g.cause == cause => g.len += end - from,
            _ => self.gaps.push(Gap {
                offset: from,
                len: end - from,
                cause,
            }),
        }
        if self.zero_fill {
            self.zeros(end - from);
        }
        self.next = Some(end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_one_direction_with_gaps_listed_and_zero_filled() {
        let mut e = Export::new(1, Direction::Forward, true, Vec::new());
        e.bytes(0, Direction::Forward, 0, b"other session");
        e.bytes(1, Direction::Reverse, 0, b"other direction");
        e.bytes(1, Direction::Forward, 0, b"abc");
        e.gap(1, Direction::Forward, 0, 3, 2, GapCause::AckedUnseen);
        e.bytes(1, Direction::Forward, 5, b"fg");
        e.bytes(1, Direction::Forward, 0, b"abcfg"); // a replay of bytes written already
        assert_eq!(
            e.gaps,
            vec![Gap {
                offset: 3,
                len: 2,
                cause: GapCause::AckedUnseen
            }]
        );
        assert_eq!(e.into_inner(), b"abc\0\0fg");
        let mut e = Export::new(0, Direction::Forward, false, Vec::new());
        e.bytes(0, Direction::Forward, 10, b"ab");
        e.gap(0, Direction::Forward, 0, 12, 3, GapCause::Timeout);
        e.bytes(0, Direction::Forward, 15, b"cd");
        assert_eq!(e.first_offset, Some(10));
        assert_eq!(e.into_inner(), b"abcd");
    }
}
