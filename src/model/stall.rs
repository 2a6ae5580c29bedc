//! Slow phases and stalled checkpoints, with their TCP evidence.
//!
//! A phase is **slow** when its duration exceeds both its floor and
//! `factor` times the session's median for that phase (so a phase that is
//! long by nature in a session is not flagged everywhere, and a short
//! median does not flag noise), or when it exceeds its floor while the side
//! that receives its data advertised a zero window (slow on that evidence,
//! whatever the median), or the side that sends it went silent for the
//! floor or longer with data unacknowledged. The owner follows the evidence:
//! the side that sends the awaited record, unless the receiving side closed
//! its window or left the sender waiting for its acknowledgements, which then
//! owns the delay; [`Stall::why`] says which in one sentence. A
//! checkpoint is **stalled** when it is
//! incomplete and the capture has ended or both directions have been quiet
//! for `quiet_ns`, or, while the capture runs, as soon as its open phase has
//! lasted longer than that phase's threshold: the report names the event
//! awaited and who owes it.
//! Every slow or stalled phase carries the TCP evidence of its time span:
//! zero-window episodes and who advertised them, retransmissions, silences,
//! bytes the capture lost, FIN/RST.

use serde::Serialize;

use super::checkpoint::{Checkpoint, CheckpointEvent, Owner, Phase, Scheme};
use super::{SessionModel, Span};
use crate::decode::Direction;

/// When a phase counts as slow, and when quiet means stalled.
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    /// Floor per phase in ns, by [`Phase::index`]: a phase this short is
    /// never slow (None: the phase is never slow). Defaults: 100 ms for
    /// suspend, dirty_sync, memory and resume (a COLO checkpoint's whole
    /// downtime is tens of ms; a Remus memory phase that is long by nature
    /// is kept quiet by the median factor); 250 ms for device and apply
    /// (device-model state varies by tens of ms from one checkpoint to the
    /// next; a real PVH device phase is 0 most of the time and up to
    /// 115 ms); run off. QEMU COLO likewise: 100 ms for reply, stop, ram
    /// and received; 250 ms for device_state and loaded (device state
    /// again); interval off.
    pub absolute: [Option<u64>; Phase::COUNT],
    /// A slow phase also exceeds this multiple of the session's median.
    pub factor: f64,
    /// Both directions silent this long in the middle of a checkpoint: stalled.
    pub quiet_ns: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        const MS: u64 = 1_000_000;
        Thresholds {
            absolute: [
                // Xen: suspend, dirty_sync, memory, device, apply, resume, run
                Some(100 * MS),
                Some(100 * MS),
                Some(100 * MS),
                Some(250 * MS),
                Some(250 * MS),
                Some(100 * MS),
                None,
                // QEMU COLO: reply, stop, ram, device_state, received,
                // loaded, interval
                Some(100 * MS),
                Some(100 * MS),
                Some(100 * MS),
                Some(250 * MS),
                Some(100 * MS),
                Some(250 * MS),
                None,
            ],
            factor: 4.0,
            quiet_ns: 1000 * MS,
        }
    }
}

impl Thresholds {
    /// The threshold a duration of `p` must exceed in a session whose median
    /// for `p` is `median` (None when the phase is never slow).
    pub fn limit(&self, p: Phase, median: Option<u64>) -> Option<u64> {
        let abs = self.absolute[p.index()]?;
        let rel = median.map_or(0, |m| (m as f64 * self.factor) as u64);
        Some(abs.max(rel))
    }
}

/// What the TCP connection showed during a slow or stalled phase.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Evidence {
    /// `side` advertised a zero window from `start` for `duration` s (None: still closed).
    ZeroWindow {
        side: Owner,
        start: u64,
        duration: Option<f64>,
    },
    /// Segments `side` sent again.
    Retransmissions { side: Owner, count: u64 },
    /// `side` sent nothing for `duration` s from `start`: the longest of
    /// `count` silences of 20 ms or more in the span (the part of each
    /// inside it), `total` s in all.
    Silence {
        side: Owner,
        start: u64,
        duration: f64,
        count: u64,
        total: f64,
        /// Bytes of its data unacknowledged when that longest silence
        /// began: it was waiting for the other side, not idle.
        outstanding: u64,
    },
    /// Bytes from `side` that the capture lost.
    CaptureLoss { side: Owner, bytes: u64 },
    /// `side` closed (FIN) or reset (RST) the connection at `at`.
    Close { side: Owner, reset: bool, at: u64 },
}

/// Whether a phase was slow, or a checkpoint is stalled in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StallKind {
    Slow,
    Stalled,
}

/// A slow phase or a stalled checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stall {
    pub kind: StallKind,
    pub checkpoint: u64,
    pub phase: Phase,
    /// When the phase began (capture time, ns).
    pub start: u64,
    /// Seconds: the phase's duration, or how long it has been waiting.
    pub duration: f64,
    /// The threshold it crossed, in seconds (slow phases).
    pub threshold: Option<f64>,
    /// The event that ends the phase (awaited, for a stalled checkpoint).
    pub waiting_for: CheckpointEvent,
    /// Who the delay is owed by: the sender of the awaited record, or the
    /// side that received the phase's data while it advertised a zero window.
    pub owner: Owner,
    /// One sentence: why this owner.
    pub why: String,
    pub evidence: Vec<Evidence>,
}

/// The owner of a delay in a phase that waits for `awaited`, from its
/// evidence, and why, in one sentence. A sender's silence with data
/// unacknowledged counts from `at_least` ns (the phase's floor: shorter
/// pauses are TCP's ordinary rhythm).
fn blame(
    awaited: CheckpointEvent,
    evidence: &[Evidence],
    at_least: u64,
    start: u64,
) -> (Owner, String) {
    use crate::present::{human_bytes, human_ns};
    let sender = awaited.owner();
    let receiver = sender.other();
    let closed: f64 = evidence
        .iter()
        .filter_map(|e| match e {
            Evidence::ZeroWindow { side, duration, .. } if *side == receiver => {
                Some(duration.unwrap_or(0.0))
            }
            _ => None,
        })
        .sum();
    let waiting = waiting_sender(sender, evidence, at_least);
    // A side that closed the connection as the wait began (within the
    // floor) ended the checkpoint: nothing it owed could come any more (a
    // failover, or a process that went away). A close long after the wait
    // began is its consequence (the pair torn down), not its cause.
    let hung_up = evidence
        .iter()
        .filter_map(|e| match e {
            Evidence::Close { side, reset, at } if *at <= start.saturating_add(at_least) => {
                Some((*at, *side, *reset))
            }
            _ => None,
        })
        .min_by_key(|c| c.0);
    if let Some((_, side, reset)) = hung_up {
        return (
            side,
            format!(
                "the {} {} the connection before sending {}: the checkpoint was abandoned (a failover, or the {} went away)",
                side.name(),
                if reset { "reset" } else { "closed" },
                if side == sender { awaited.name() } else { "the rest" },
                side.name()
            ),
        );
    }
    if receiver_closed(awaited, evidence) {
        (
            receiver,
            format!(
                "the {} advertised a zero window{}: it could not take the {}'s data",
                receiver.name(),
                if closed > 0.0 {
                    format!(" for {}", human_ns((closed * 1e9) as u64))
                } else {
                    String::new()
                },
                sender.name()
            ),
        )
    } else if let Some((silent, bytes)) = waiting {
        (
            receiver,
            format!(
                "the {} sent nothing for {} with {} unacknowledged: it was waiting for the {} (or the network)",
                sender.name(),
                human_ns(silent),
                human_bytes(bytes),
                receiver.name()
            ),
        )
    } else {
        // The sender's own silence, when it lasted the floor: it had
        // nothing to say (its data was all acknowledged).
        let quiet = evidence.iter().find_map(|e| match e {
            Evidence::Silence { side, duration, .. }
                if *side == sender && (duration * 1e9) as u64 >= at_least =>
            {
                Some((duration * 1e9) as u64)
            }
            _ => None,
        });
        (
            sender,
            match quiet {
                Some(ns) => format!(
                    "{} is sent by the {}, which was silent for {}",
                    awaited.name(),
                    sender.name(),
                    human_ns(ns)
                ),
                None => format!("{} is sent by the {}", awaited.name(), sender.name()),
            },
        )
    }
}

/// The sender of the awaited record fell silent for at least `at_least` ns
/// with data unacknowledged: (that silence, the bytes outstanding).
fn waiting_sender(sender: Owner, evidence: &[Evidence], at_least: u64) -> Option<(u64, u64)> {
    evidence.iter().find_map(|e| match e {
        Evidence::Silence {
            side,
            duration,
            outstanding,
            ..
        } if *side == sender && *outstanding > 0 => {
            let ns = (duration * 1e9) as u64;
            (ns >= at_least).then_some((ns, *outstanding))
        }
        _ => None,
    })
}

/// The receiver of a phase's data advertised a zero window during it.
fn receiver_closed(awaited: CheckpointEvent, evidence: &[Evidence]) -> bool {
    let receiver = awaited.owner().other();
    evidence
        .iter()
        .any(|e| matches!(e, Evidence::ZeroWindow { side, .. } if *side == receiver))
}

fn side(d: Direction) -> Owner {
    match d {
        Direction::Forward => Owner::Primary,
        Direction::Reverse => Owner::Secondary,
    }
}

/// The TCP evidence of [t0, t1] in a session.
pub fn evidence(s: &SessionModel, t0: u64, t1: u64) -> Vec<Evidence> {
    let mut ev = Vec::new();
    let overlaps = |sp: &Span| sp.start <= t1 && sp.end.map_or(true, |e| e >= t0);
    for z in s.tcp.zero_windows.iter().filter(|z| overlaps(z)) {
        ev.push(Evidence::ZeroWindow {
            side: side(z.dir),
            start: z.start,
            duration: z.end.map(|e| (e - z.start) as f64 / 1e9),
        });
    }
    for d in [Direction::Forward, Direction::Reverse] {
        let r = &s.tcp.retransmissions;
        let lo = r.partition_point(|x| x.0 < t0);
        let hi = r.partition_point(|x| x.0 <= t1);
        let count = r[lo..hi.max(lo)].iter().filter(|x| x.1 == d).count() as u64;
        if count > 0 {
            ev.push(Evidence::Retransmissions {
                side: side(d),
                count,
            });
        }
        let g = &s.tcp.gaps;
        let lo = g.partition_point(|x| x.0 < t0);
        let hi = g.partition_point(|x| x.0 <= t1);
        let bytes: u64 = g[lo..hi.max(lo)]
            .iter()
            .filter(|x| x.1 == d)
            .map(|x| x.2)
            .sum();
        if bytes > 0 {
            ev.push(Evidence::CaptureLoss {
                side: side(d),
                bytes,
            });
        }
    }
    // Per side, the longest silence in the span and how many there were.
    for d in [Direction::Forward, Direction::Reverse] {
        let mut longest: Option<(u64, u64, u64)> = None;
        let (mut count, mut total) = (0u64, 0u64);
        // the part of each silence inside the span
        // silences end in order: skip those that ended before the span, and
        // stop once none can start inside it
        let all = &s.tcp.silences;
        let end_of = |q: &super::Silence| q.span.end.unwrap_or(u64::MAX);
        let lo = all.partition_point(|q| end_of(q) < t0);
        let reach = t1.saturating_add(s.tcp.longest_silence);
        let near = all[lo..].iter().take_while(|q| end_of(q) <= reach);
        for q in near.filter(|q| q.span.dir == d && overlaps(&q.span)) {
            let (a, b) = (q.span.start.max(t0), q.span.end.unwrap_or(t1).min(t1));
            let Some(len) = b.checked_sub(a).filter(|&l| l > 0) else {
                continue;
            };
            count += 1;
            total += len;
            if longest.map_or(true, |(_, l, _)| len > l) {
                longest = Some((a, len, q.outstanding));
            }
        }
        if let Some((start, len, outstanding)) = longest {
            ev.push(Evidence::Silence {
                side: side(d),
                start,
                duration: len as f64 / 1e9,
                count,
                total: total as f64 / 1e9,
                outstanding,
            });
        }
    }
    for &(at, d, reset) in s.tcp.closes.iter().filter(|c| c.0 >= t0 && c.0 <= t1) {
        ev.push(Evidence::Close {
            side: side(d),
            reset,
            at,
        });
    }
    ev
}

/// Slow phases and the stalled checkpoint of a session, as of `now`;
/// `capture_ended` when no more packets will come.
pub fn find(s: &SessionModel, t: &Thresholds, now: u64, capture_ended: bool) -> Vec<Stall> {
    if !checkpointed(s) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for c in s.listed_checkpoints() {
        slow_phases(s, c, t, &mut out);
    }
    out.extend(stalled(s, t, now, capture_ended));
    out
}

fn checkpointed(s: &SessionModel) -> bool {
    matches!(
        s.kind(),
        super::SessionKind::Colo | super::SessionKind::Remus | super::SessionKind::QemuColo
    )
}

/// The session's limit of each phase of its scheme, by [`Phase::slot`]:
/// its floor, or the factor times the session's median when that is larger.
fn limits(s: &SessionModel, t: &Thresholds, scheme: Scheme) -> [Option<u64>; 7] {
    Phase::family(scheme).map(|p| t.limit(p, s.stats.median_ns(p)))
}

/// The slow phases of checkpoint `c` of session `s`, added to `out`.
pub fn slow_phases(s: &SessionModel, c: &Checkpoint, t: &Thresholds, out: &mut Vec<Stall>) {
    if !checkpointed(s) {
        return;
    }
    let scheme = s.scheme();
    let limits = limits(s, t, scheme);
    {
        for &p in Phase::of(scheme) {
            let (Some(d), Some(limit), Some(floor)) =
                (c.phase(p, scheme), limits[p.slot()], t.absolute[p.index()])
            else {
                continue;
            };
            if d <= floor {
                continue;
            }
            let start = c.phase_start(p, scheme).unwrap_or(0);
            let ev = evidence(s, start, start + d);
            // over the session's own limit, or slow on the evidence
            let threshold = if d > limit {
                limit
            } else if receiver_closed(p.end(), &ev)
                || waiting_sender(p.end().owner(), &ev, floor).is_some()
            {
                floor
            } else {
                continue;
            };
            let (owner, why) = blame(p.end(), &ev, floor, start);
            out.push(Stall {
                kind: StallKind::Slow,
                checkpoint: c.index,
                phase: p,
                start,
                duration: d as f64 / 1e9,
                threshold: Some(threshold as f64 / 1e9),
                waiting_for: p.end(),
                owner,
                why,
                evidence: ev,
            });
        }
    }
}

/// The latest checkpoint of `s`, if the session stopped in the middle of
/// it (a Remus checkpoint that has no record yet has not started): how long
/// it has waited, as of `now`.
pub fn stalled(s: &SessionModel, t: &Thresholds, now: u64, capture_ended: bool) -> Option<Stall> {
    if !checkpointed(s) {
        return None;
    }
    let scheme = s.scheme();
    let limits = limits(s, t, scheme);
    let mut out = None;
    if let Some(c) = s.listed_checkpoints().last() {
        let quiet = now.saturating_sub(s.last_activity) >= t.quiet_ns;
        let started = c.last_event().or(c.first_record);
        if let (Some(since), Some(awaited)) = (started, c.awaiting(scheme)) {
            let phase = awaited.awaited_phase(scheme);
            // Live, the open phase is stalled the moment it passes its
            // threshold, not only once everything went quiet.
            let over = limits[phase.slot()].is_some_and(|l| now.saturating_sub(since) > l);
            if capture_ended || s.ended || quiet || over {
                let end = now.max(since);
                let ev = evidence(s, since, end);
                let floor = t.absolute[phase.index()].unwrap_or(t.quiet_ns);
                let (owner, why) = blame(awaited, &ev, floor, since);
                out = Some(Stall {
                    kind: StallKind::Stalled,
                    checkpoint: c.index,
                    phase,
                    start: since,
                    duration: (end - since) as f64 / 1e9,
                    threshold: None,
                    waiting_for: awaited,
                    owner,
                    why,
                    evidence: ev,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn silence(side: Owner, ms: u64, outstanding: u64) -> Evidence {
        Evidence::Silence {
            side,
            start: 0,
            duration: ms as f64 / 1e3,
            count: 1,
            total: ms as f64 / 1e3,
            outstanding,
        }
    }

    /// A side that closes the connection as the wait begins owns it (a
    /// failover); one that closes seconds later, when the pair is torn down
    /// around a primary that hung, does not.
    #[test]
    fn a_close_owns_the_wait_only_when_it_began_it() {
        let awaited = CheckpointEvent::VmstateSize; // sent by the primary
        let floor = 100_000_000;
        let start = 5_000_000_000;
        let close = |side, at| Evidence::Close {
            side,
            reset: false,
            at,
        };
        let (o, why) = blame(awaited, &[close(Owner::Primary, start)], floor, start);
        assert_eq!(o, Owner::Primary);
        assert!(why.contains("closed the connection"), "{why}");
        let (o, why) = blame(
            awaited,
            &[close(Owner::Secondary, start + 1_000)],
            floor,
            start,
        );
        assert_eq!(o, Owner::Secondary, "{why}");
        let late = [
            silence(Owner::Primary, 3000, 0),
            close(Owner::Secondary, start + 3_000_000_000),
        ];
        let (o, why) = blame(awaited, &late, floor, start);
        assert_eq!(o, Owner::Primary, "the teardown is no cause: {why}");
        assert!(!why.contains("closed"), "{why}");
    }

    #[test]
    fn the_owner_follows_the_evidence() {
        let awaited = CheckpointEvent::LibxcCheckpoint; // sent by the primary
        let floor = 100_000_000;
        // nothing says otherwise: the sender owes it
        let (o, why) = blame(awaited, &[silence(Owner::Primary, 300, 0)], floor, 0);
        assert_eq!(o, Owner::Primary);
        assert_eq!(
            why,
            "libxc_checkpoint is sent by the primary, which was silent for 300.0 ms"
        );
        let (_, why) = blame(awaited, &[silence(Owner::Primary, 50, 0)], floor, 0);
        assert_eq!(
            why, "libxc_checkpoint is sent by the primary",
            "a silence under the floor is TCP's rhythm"
        );
        // the receiver closed its window
        let zw = Evidence::ZeroWindow {
            side: Owner::Secondary,
            start: 0,
            duration: Some(0.4),
        };
        let (o, why) = blame(awaited, &[zw], floor, 0);
        assert_eq!(o, Owner::Secondary);
        assert!(
            why.starts_with("the secondary advertised a zero window for 400.0 ms"),
            "{why}"
        );
        // the sender waited 300 ms with 64 KiB unacknowledged
        let (o, why) = blame(awaited, &[silence(Owner::Primary, 300, 65536)], floor, 0);
        assert_eq!(o, Owner::Secondary);
        assert!(why.contains("with 64.0 KiB unacknowledged"), "{why}");
        // ... but a 20 ms pause with data in flight is TCP's rhythm
        let (o, _) = blame(awaited, &[silence(Owner::Primary, 20, 1024)], floor, 0);
        assert_eq!(o, Owner::Primary);
        assert!(
            waiting_sender(Owner::Primary, &[silence(Owner::Primary, 20, 1024)], floor).is_none()
        );
    }
}
