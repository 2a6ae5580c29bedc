//! Stall sentences: one wording per finding, so a stall reads the same in
//! `migscope report`, the TCP view's Expert Info and the handshake ladder.

use super::units::human_ns;
use crate::model::stall::{Stall, StallKind};
use crate::model::{Checkpoint, Phase, SessionModel};

/// Seconds for people, in the unit that suits them ("2.300 s", "250.0 ms").
pub fn secs(s: f64) -> String {
    human_ns((s.max(0.0) * 1e9) as u64)
}

/// `n` and a noun, singular or plural: "1 pfn", "2 pfns".
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// What a slow phase or a stalled checkpoint is, in one clause, without
/// the checkpoint's number: "apply took 2.300 s (threshold 250.0 ms),
/// until svm_ready from the secondary"; `from` (the phase's start, as the
/// caller writes times) follows the duration when given.
pub fn stall_what(x: &Stall, from: Option<&str>) -> String {
    let from = from.map(|f| format!(" from {f}")).unwrap_or_default();
    match x.kind {
        StallKind::Slow => format!(
            "{} took {}{from} (threshold {}), until {} from the {}",
            x.phase.name(),
            secs(x.duration),
            secs(x.threshold.unwrap_or(0.0)),
            x.waiting_for.name(),
            x.waiting_for.owner().name()
        ),
        StallKind::Stalled => format!(
            "STALLED in {}: waited {}{from} for {} from the {}",
            x.phase.name(),
            secs(x.duration),
            x.waiting_for.name(),
            x.waiting_for.owner().name()
        ),
    }
}

/// How many times the session's median a duration is ("9x the median"),
/// when the median is known and not zero.
fn times_median(s: &SessionModel, p: Phase, ns: u64) -> Option<String> {
    let med = s.stats.median_ns(p).filter(|&m| m > 0)?;
    let k = ns as f64 / med as f64;
    Some(if k >= 10.0 {
        format!("{k:.0}x the median")
    } else {
        format!("{k:.1}x the median")
    })
}

/// The verdict on one checkpoint, in one line: its stall or slowest slow
/// phase with the owner and why, or what it still waits for, or that it is
/// partial, or complete with its downtime.
pub fn verdict(s: &SessionModel, c: &Checkpoint, stalls: &[&Stall]) -> String {
    let scheme = s.scheme();
    let worst = stalls
        .iter()
        .find(|x| x.kind == StallKind::Stalled)
        .or_else(|| {
            stalls
                .iter()
                .max_by(|a, b| a.duration.total_cmp(&b.duration))
        });
    if let Some(x) = worst {
        let ns = (x.duration * 1e9) as u64;
        let how = match x.kind {
            StallKind::Stalled => format!("STALLED in {} for {}", x.phase.name(), secs(x.duration)),
            StallKind::Slow => format!("{} {}", x.phase.name(), secs(x.duration)),
        };
        let median = times_median(s, x.phase, ns)
            .map(|m| format!(", {m}"))
            .unwrap_or_default();
        let more = match stalls.len() {
            1 => String::new(),
            n => format!(" ({} more slow)", n - 1),
        };
        // The why names the sender of the awaited record; say the owner
        // only when the evidence made it the other side.
        return if x.owner == x.waiting_for.owner() {
            format!("{how}{median}: {}{more}", x.why)
        } else {
            format!(
                "{how}{median}, owed by the {}: {}{more}",
                x.owner.name(),
                x.why
            )
        };
    }
    if let Some(awaited) = c.awaiting(scheme) {
        return format!(
            "incomplete: waiting for {} from the {}",
            awaited.name(),
            awaited.owner().name()
        );
    }
    if !c.complete(scheme) {
        return if c.lost > 0 {
            format!(
                "partial: the capture lost {} of it",
                super::units::human_bytes(c.lost)
            )
        } else {
            "partial: records of it fell into a capture gap".into()
        };
    }
    match c.downtime(scheme) {
        Some(d) => format!(
            "complete: downtime {}{}, no slow phase",
            human_ns(d),
            s.stats
                .downtime
                .summary()
                .map(|x| format!(" (median {})", secs(x.p50)))
                .unwrap_or_default()
        ),
        None => "complete, no slow phase".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_agree_with_their_number() {
        assert_eq!(count(1, "pfn", "pfns"), "1 pfn");
        assert_eq!(count(0, "pfn", "pfns"), "0 pfns");
        assert_eq!(count(2, "page", "pages"), "2 pages");
    }

    #[test]
    fn seconds_pick_their_unit() {
        assert_eq!(secs(2.3), "2.300 s");
        assert_eq!(secs(0.25), "250.0 ms");
        assert_eq!(secs(-1.0), "0 ns");
    }
}
