//! Expert findings (Wireshark's Expert Info) of a session: decoder
//! diagnostics, zero-window episodes, capture gaps, retransmission bursts,
//! FIN/RST and stalls, by time, each kind capped so the list stays short
//! however troubled the capture. The findings are data; `present` words
//! them.

use crate::decode::{Direction, Severity};

use super::stall::Stall;
use super::{Model, Thresholds};

/// Entries listed per kind (zero windows, gaps, retransmission bursts,
/// closes, stalls); the rest are summed up in one finding per kind.
pub const MAX_PER_KIND: usize = 1000;

/// Retransmissions closer than this to the previous one belong to the
/// same burst.
pub const BURST_GAP_NS: u64 = 1_000_000_000;

/// Checkpointing has stopped when the time since the last checkpoint
/// completed passes this many median intervals (and [`STOPPED_FLOOR_NS`]).
pub const STOPPED_FACTOR: u64 = 10;
pub const STOPPED_FLOOR_NS: u64 = 1_000_000_000;

/// What was found.
#[derive(Debug, Clone, PartialEq)]
pub enum What {
    /// The decoder's diagnostic at a stream offset.
    Diagnostic { offset: u64, message: String },
    /// Decoder diagnostics of the capture past the model's cap.
    DiagnosticsDropped(u64),
    /// A zero window advertised by the `dir` side, for that long (None:
    /// still closed).
    ZeroWindow { duration: Option<u64> },
    /// Bytes the capture never saw.
    Gap { bytes: u64 },
    /// `count` retransmissions from the first to the last (ns apart).
    Retransmissions { count: u64, span: u64 },
    /// FIN, or RST when `reset`.
    Close { reset: bool },
    /// A slow phase or a stalled checkpoint.
    Stall(Stall),
    /// No checkpoint began for `quiet` ns after checkpoint `after` completed
    /// (over [`STOPPED_FACTOR`] times the median interval between them, and
    /// a second): the pair stopped checkpointing (the guest runs without
    /// protection).
    CheckpointsStopped { after: u64, quiet: u64, median: u64 },
    /// `count` more findings of a kind than were listed.
    More { count: usize, what: &'static str },
}

/// One finding, at a capture time.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub severity: Severity,
    /// Capture time (ns); `u64::MAX` for the notes about entries left out.
    pub ts: u64,
    /// The direction concerned, when there is one.
    pub dir: Option<Direction>,
    pub what: What,
}

/// A COLO pair (Xen or QEMU) whose last checkpoint completed long ago:
/// measured to the capture's clock, or to the session's last packet once
/// its connection closed.
fn stopped(m: &Model, s: &super::SessionModel) -> Option<Finding> {
    let scheme = s.scheme();
    let trailing = *super::Phase::of(scheme)
        .last()
        .filter(|p| p.is_trailing())?;
    let c = s.listed_checkpoints().last()?;
    if c.awaiting(scheme).is_some() {
        return None; // incomplete: a stall says more
    }
    let done = c.event(super::Checkpoint::downtime_end(scheme))?;
    let median = s.stats.median_ns(trailing).filter(|&x| x > 0)?;
    let until = if s.ended { s.last_activity } else { m.now };
    let quiet = until.checked_sub(done)?;
    (quiet > (STOPPED_FACTOR * median).max(STOPPED_FLOOR_NS)).then_some(Finding {
        severity: Severity::Warning,
        ts: done,
        dir: None,
        what: What::CheckpointsStopped {
            after: c.index,
            quiet,
            median,
        },
    })
}

/// The findings of session `si`: diagnostics, zero windows and gaps
/// (warnings), retransmission bursts (notes), RST and stalls (errors), by
/// time, the most severe first at the same time; notes about entries left
/// out come last.
pub fn findings(m: &Model, si: usize, t: &Thresholds, capture_ended: bool) -> Vec<Finding> {
    let Some(s) = m.sessions.get(si) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let more = |out: &mut Vec<Finding>, n: usize, what: &'static str| {
        if n > MAX_PER_KIND {
            out.push(Finding {
                severity: Severity::Note,
                ts: u64::MAX,
                dir: None,
                what: What::More {
                    count: n - MAX_PER_KIND,
                    what,
                },
            });
        }
    };
    for d in m.diagnostics.iter().filter(|d| d.session == s.info.id) {
        out.push(Finding {
            severity: d.severity,
            ts: d.ts,
            dir: Some(d.dir),
            what: What::Diagnostic {
                offset: d.offset,
                message: d.message.clone(),
            },
        });
    }
    if m.diagnostics_dropped > 0 {
        out.push(Finding {
            severity: Severity::Note,
            ts: u64::MAX,
            dir: None,
            what: What::DiagnosticsDropped(m.diagnostics_dropped),
        });
    }
    let zw = &s.tcp.zero_windows;
    for z in zw.iter().take(MAX_PER_KIND) {
        out.push(Finding {
            severity: Severity::Warning,
            ts: z.start,
            dir: Some(z.dir),
            what: What::ZeroWindow {
                duration: z.end.map(|e| e.saturating_sub(z.start)),
            },
        });
    }
    more(&mut out, zw.len(), "zero-window episodes");
    let gaps = &s.tcp.gaps;
    for &(ts, d, bytes) in gaps.iter().take(MAX_PER_KIND) {
        out.push(Finding {
            severity: Severity::Warning,
            ts,
            dir: Some(d),
            what: What::Gap { bytes },
        });
    }
    more(&mut out, gaps.len(), "gaps");
    // Retransmissions of each direction, in bursts.
    let mut bursts = 0usize;
    for d in [Direction::Forward, Direction::Reverse] {
        let mut cur: Option<(u64, u64, u64)> = None; // first, last, count
        let mut flush = |out: &mut Vec<Finding>, b: (u64, u64, u64)| {
            bursts += 1;
            if bursts <= MAX_PER_KIND {
                out.push(Finding {
                    severity: Severity::Note,
                    ts: b.0,
                    dir: Some(d),
                    what: What::Retransmissions {
                        count: b.2,
                        span: b.1 - b.0,
                    },
                });
            }
        };
        for &(ts, _) in s.tcp.retransmissions.iter().filter(|r| r.1 == d) {
            cur = match cur {
                Some((a, b, n)) if ts.saturating_sub(b) <= BURST_GAP_NS => {
                    Some((a, b.max(ts), n + 1))
                }
                Some(b) => {
                    flush(&mut out, b);
                    Some((ts, ts, 1))
                }
                None => Some((ts, ts, 1)),
            };
        }
        if let Some(b) = cur {
            flush(&mut out, b);
        }
    }
    more(&mut out, bursts, "retransmission bursts");
    for &(ts, d, reset) in s.tcp.closes.iter().take(MAX_PER_KIND) {
        out.push(Finding {
            severity: if reset {
                Severity::Error
            } else {
                Severity::Note
            },
            ts,
            dir: Some(d),
            what: What::Close { reset },
        });
    }
    more(&mut out, s.tcp.closes.len(), "FIN/RST");
    let stalls = m.stalls(s, t, capture_ended);
    let n = stalls.len();
    for x in stalls.into_iter().take(MAX_PER_KIND) {
        out.push(Finding {
            severity: Severity::Error,
            ts: x.start,
            dir: None,
            what: What::Stall(x),
        });
    }
    more(&mut out, n, "slow phases and stalls");
    if let Some(f) = stopped(m, s) {
        out.push(f);
    }
    out.sort_by(|a, b| a.ts.cmp(&b.ts).then(b.severity.cmp(&a.severity)));
    out
}
