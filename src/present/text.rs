//! Times and sentences about the model for people, shared by the report
//! and the terminal UI: capture-relative times, RFC 3339 dates, the xl
//! handover, a plain migration's downtime and end, TCP evidence.

use crate::decode::Direction;
use crate::model::expert::{Finding, What};
use crate::model::stall::Evidence;
use crate::model::{Model, SessionModel};

use super::{human_bytes, human_ns, secs};

/// Seconds since the first packet.
pub fn rel(m: &Model, ts: u64) -> f64 {
    ts.saturating_sub(m.start.unwrap_or(ts)) as f64 / 1e9
}

/// RFC 3339 with nanoseconds, UTC, from ns since the epoch.
pub fn rfc3339(ns: u64) -> String {
    let secs = ns / 1_000_000_000;
    let nanos = ns % 1_000_000_000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// xl's handover at the end of a plain migration, for people (None when
/// the receiver never said it was ready); times with `decimals` places.
pub fn handover_text(m: &Model, h: &crate::model::Handover, decimals: usize) -> Option<String> {
    let t = h.ready_to_unpause?;
    Some(format!(
        "handover: ready to unpause at {:.decimals$} s{}{}",
        rel(m, t),
        h.cleared_to_unpause
            .map(|t| format!(", cleared at {:.decimals$} s", rel(m, t)))
            .unwrap_or_default(),
        h.result
            .map(|r| format!(
                ", result {r}{}",
                if r == 0 {
                    " (the domain runs)"
                } else {
                    " (FAILED)"
                }
            ))
            .unwrap_or_default()
    ))
}

/// The downtime of a plain migration and what bounds it, for people.
pub fn migration_downtime_text(m: &Model, s: &SessionModel, decimals: usize) -> Option<String> {
    let d = s.migration_downtime()?;
    Some(format!(
        "downtime {}: from the final round at {:.decimals$} s to {}",
        human_ns(d),
        rel(m, s.final_round()?.start),
        if s.handover.unpause_result.is_some() {
            "the receiver's unpause"
        } else {
            "the end of the stream"
        }
    ))
}

/// What a migration whose stream stopped before its END came to, for
/// people: how far it got and who closed the connection.
pub fn unfinished_text(m: &Model, s: &SessionModel) -> Option<String> {
    if !s.stream_unfinished() {
        return None;
    }
    let close = s.tcp.closes.first().map(|&(at, dir, reset)| {
        let side = match dir {
            Direction::Forward => "primary",
            Direction::Reverse => "secondary",
        };
        format!(
            "; the {side} {} the connection at {:.3} s",
            if reset { "reset" } else { "closed" },
            rel(m, at)
        )
    });
    Some(format!(
        "the stream stops before its END after {}{}",
        human_bytes(s.dirs[0].bytes),
        match close {
            Some(c) => format!("{c}: the migration did not complete"),
            None => ": the migration did not complete in this capture".into(),
        }
    ))
}

/// One line of evidence for people.
pub fn evidence_text(m: &Model, e: &Evidence) -> String {
    match e {
        Evidence::ZeroWindow {
            side,
            start,
            duration,
        } => match duration {
            Some(d) => format!(
                "{} advertised a zero window for {} from {:.3} s",
                side.name(),
                secs(*d),
                rel(m, *start)
            ),
            None => format!(
                "{} has advertised a zero window since {:.3} s",
                side.name(),
                rel(m, *start)
            ),
        },
        Evidence::Retransmissions { side, count } => {
            format!(
                "{} by the {}",
                super::count(*count, "retransmission", "retransmissions"),
                side.name()
            )
        }
        Evidence::Silence {
            side,
            duration,
            start,
            count,
            total,
            outstanding,
        } => {
            format!(
                "{} silent for {} from {:.3} s{}{}",
                side.name(),
                secs(*duration),
                rel(m, *start),
                if *outstanding > 0 {
                    format!(" with {} unacknowledged", human_bytes(*outstanding))
                } else {
                    String::new()
                },
                if *count > 1 {
                    format!(
                        " (the longest of {count} silences, {} in all)",
                        secs(*total)
                    )
                } else {
                    String::new()
                }
            )
        }
        Evidence::CaptureLoss { side, bytes } => format!(
            "{} of {} traffic missing from the capture",
            human_bytes(*bytes),
            side.name()
        ),
        Evidence::Close { side, reset, at } => {
            format!(
                "{} {} the connection at {:.3} s",
                side.name(),
                if *reset { "reset" } else { "closed" },
                rel(m, *at)
            )
        }
    }
}

/// One expert finding for people (the TCP view's list).
pub fn finding_text(f: &Finding) -> String {
    let side = f.dir.map_or("", Direction::label);
    match &f.what {
        What::Diagnostic { offset, message } => format!("decoder at offset {offset}: {message}"),
        What::DiagnosticsDropped(n) => format!("{n} decoder diagnostics of the capture not kept"),
        What::ZeroWindow { duration } => format!(
            "zero window advertised by the {side} side, {}",
            match duration {
                Some(d) => format!("for {}", human_ns(*d)),
                None => "still closed".into(),
            }
        ),
        What::Gap { bytes } => format!("capture gap: {} never seen", human_bytes(*bytes)),
        What::Retransmissions { count, span } if *span > 0 => {
            format!("{count} retransmissions over {}", human_ns(*span))
        }
        What::Retransmissions { count, .. } => {
            super::count(*count, "retransmission", "retransmissions")
        }
        What::Close { reset } => format!(
            "{} from the {side} side",
            if *reset { "RST" } else { "FIN" }
        ),
        What::Stall(x) => format!(
            "checkpoint {}: {}",
            x.checkpoint,
            super::stall_what(x, None)
        ),
        What::CheckpointsStopped {
            after,
            quiet,
            median,
        } => format!(
            "no checkpoint for {} after checkpoint {after} completed (median interval {}): checkpointing stopped",
            human_ns(*quiet),
            human_ns(*median)
        ),
        What::More { count, what } => format!("{count} more {what} not listed"),
    }
}
