//! `migscope monitor`: a long-running sensor. The analysis runs as for
//! `report`, into a [`Model`] without a record index; every so often
//! ([`Monitor::sweep`]) the checkpoints that can no longer change are
//! counted into Prometheus metrics ([`metrics`]) and written as JSON-lines
//! events, then forgotten but for a short window, so memory stays flat
//! however long it runs.
//!
//! A checkpoint is final once a later one exists (COLO's run phase closes
//! with the next NEW) or its session ended. Slow phases are judged then,
//! against the session's medians so far. The open checkpoint's stall is
//! judged at every sweep: `migscope_stall_waiting_seconds` and a
//! `stall_started` event when it passes its threshold, `stall_resolved`
//! when it completes.

pub mod http;
pub mod metrics;

use std::io::Write;

use serde_json::{json, Value};

use crate::decode::Direction;
use crate::model::stall::{self, Stall, StallKind};
use crate::model::{Checkpoint, CheckpointEvent, Model, Phase, Scheme, SessionModel, Thresholds};
use crate::session::CaptureStats;

use metrics::{CompleteLabels, DirLabels, Metrics, PhaseLabels, SessionLabels, StallLabels};

/// Checkpoints kept per session after they were counted (the model needs
/// the last two; the rest is for stall evidence across a checkpoint).
pub const KEEP_CHECKPOINTS: usize = 16;

/// A session silent this long (capture time) is over: counted, retired.
pub const RETENTION_NS: u64 = 600_000_000_000;

/// The session is over: the capture ended, the model saw both directions
/// end, the connection closed (FIN both ways, or a RST), or it has been
/// silent for [`RETENTION_NS`].
fn over(s: &SessionModel, now: u64, ended: bool) -> bool {
    ended
        || s.ended
        || s.dirs.iter().all(|d| d.fin || d.rst)
        || s.dirs.iter().any(|d| d.rst)
        || now.saturating_sub(s.last_activity) >= RETENTION_NS
}

/// What the monitor remembers of a session between sweeps.
#[derive(Debug, Default, Clone)]
struct Seen {
    /// Index of the next checkpoint to count.
    next: u64,
    /// TCP counters already added, per direction: retransmissions and
    /// zero-window ns.
    retx: [u64; 2],
    zero_ns: [u64; 2],
    started: bool,
    ended: bool,
    /// The checkpoint whose stall was announced, if one is open.
    stalled: Option<u64>,
}

/// The monitor: metrics and events from a model.
pub struct Monitor {
    pub metrics: Metrics,
    thresholds: Thresholds,
    seen: Vec<Seen>,
    events: Option<Box<dyn Write + Send>>,
    /// Packets and bytes already counted, and drops.
    packets: u64,
    bytes: u64,
    dropped: u64,
    /// The first events write error (the monitor goes on).
    pub events_error: Option<std::io::Error>,
}

/// A label value as the exposition writes it: prometheus-client writes
/// label values as they are, so a backslash, a double quote or a line
/// break (a domain name is the capture's text) is escaped here, as
/// OpenMetrics and the 0.0.4 format spell them.
pub fn label_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push_str(&format!("\\\\x{:02x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

fn labels(s: &SessionModel) -> SessionLabels {
    SessionLabels {
        pair: format!("{}->{}", s.info.primary.ip, s.info.secondary.ip),
        domain: label_value(s.domain.name.as_deref().unwrap_or_default()),
        kind: s.kind().name().to_string(),
    }
}

fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

impl Monitor {
    pub fn new(
        metrics: Metrics,
        thresholds: Thresholds,
        events: Option<Box<dyn Write + Send>>,
    ) -> Self {
        Monitor {
            metrics,
            thresholds,
            seen: Vec::new(),
            events,
            packets: 0,
            bytes: 0,
            dropped: 0,
            events_error: None,
        }
    }

    fn event(&mut self, v: Value) {
        let Some(w) = self.events.as_mut() else {
            return;
        };
        if self.events_error.is_some() {
            return;
        }
        let r = serde_json::to_writer(&mut *w, &v)
            .map_err(std::io::Error::from)
            .and_then(|_| w.write_all(b"\n"))
            .and_then(|_| w.flush());
        if let Err(e) = r {
            self.events_error = Some(e);
        }
    }

    /// Counts what became final since the last sweep, as of capture time
    /// `now`; `ended` when the capture is over (every checkpoint is final).
    /// `dropped` is the kernel's drop count so far (live).
    pub fn sweep(
        &mut self,
        m: &mut Model,
        stats: &CaptureStats,
        dropped: u64,
        now: u64,
        ended: bool,
    ) {
        self.metrics
            .packets
            .inc_by(stats.packets.saturating_sub(self.packets));
        self.metrics
            .capture_bytes
            .inc_by(stats.bytes.saturating_sub(self.bytes));
        self.metrics
            .dropped
            .inc_by(dropped.saturating_sub(self.dropped));
        self.packets = self.packets.max(stats.packets);
        self.bytes = self.bytes.max(stats.bytes);
        self.dropped = self.dropped.max(dropped);
        let mut open = 0i64;
        for i in 0..m.sessions.len() {
            if self.seen.len() <= i {
                self.seen.push(Seen::default());
            }
            let s = &m.sessions[i];
            let done = over(s, now, ended);
            if !done {
                open += 1;
            }
            self.session(s, now, done, i);
            if let Some(s) = m.sessions.get_mut(i) {
                if done {
                    // counted: only its identity and tallies stay
                    s.retire();
                } else {
                    s.forget(KEEP_CHECKPOINTS);
                }
            }
        }
        self.metrics.sessions.set(open);
    }

    fn session(&mut self, s: &SessionModel, now: u64, done: bool, i: usize) {
        let checkpointed = !s.listed_checkpoints().is_empty();
        // Labels are taken once the kind is known (a Remus or COLO stream
        // reads as plain until its first checkpoint).
        let l = labels(s);
        if !self.seen[i].started && (checkpointed || done || s.kind().name() != "unknown") {
            self.seen[i].started = true;
            self.event(json!({"event": "session_started", "session": s.info.id,
                "pair": l.pair, "domain": l.domain, "kind": l.kind,
                "time": secs(s.info.first_ts)}));
        }
        self.tcp(s, &l, i);
        let scheme = s.scheme();
        let cps = s.listed_checkpoints();
        let last = cps.len().saturating_sub(usize::from(!done));
        let mut finals: Vec<&Checkpoint> = cps[..last]
            .iter()
            .filter(|c| c.index >= self.seen[i].next)
            .collect();
        finals.sort_by_key(|c| c.index);
        let last_index = cps.last().map(|c| c.index);
        for c in finals {
            let stopped_in = done && Some(c.index) == last_index;
            self.checkpoint(s, c, &l, scheme, stopped_in);
            self.seen[i].next = c.index + 1;
            if self.seen[i].stalled == Some(c.index) {
                self.seen[i].stalled = None;
                self.event(json!({"event": "stall_resolved", "session": s.info.id,
                    "pair": l.pair, "checkpoint": c.index,
                    "downtime": c.downtime(scheme).map(secs)}));
            }
        }
        // The open checkpoint: stalled now?
        let waiting = if done {
            None
        } else {
            stall::stalled(s, &self.thresholds, now, false)
        };
        self.metrics
            .stall_waiting
            .get_or_create(&l)
            .set(waiting.as_ref().map_or(0.0, |x| x.duration));
        if let Some(x) = waiting {
            if self.seen[i].stalled != Some(x.checkpoint) {
                self.seen[i].stalled = Some(x.checkpoint);
                self.event(stall_event("stall_started", s, &l, &x));
            }
        }
        if done && !self.seen[i].ended && self.seen[i].started {
            self.seen[i].ended = true;
            self.event(json!({"event": "session_ended", "session": s.info.id,
                "pair": l.pair, "domain": l.domain, "kind": l.kind,
                "checkpoints": self.seen[i].next, "time": secs(s.last_activity)}));
        }
    }

    fn tcp(&mut self, s: &SessionModel, l: &SessionLabels, i: usize) {
        for (k, d) in [Direction::Forward, Direction::Reverse]
            .into_iter()
            .enumerate()
        {
            let x = &s.dirs[k];
            let dl = DirLabels {
                pair: l.pair.clone(),
                domain: l.domain.clone(),
                kind: l.kind.clone(),
                direction: d.label().to_string(),
            };
            let seen = &mut self.seen[i];
            let r = x.retransmissions.saturating_sub(seen.retx[k]);
            let z = x.zero_window_ns.saturating_sub(seen.zero_ns[k]);
            seen.retx[k] = seen.retx[k].max(x.retransmissions);
            seen.zero_ns[k] = seen.zero_ns[k].max(x.zero_window_ns);
            if r > 0 {
                self.metrics.retransmissions.get_or_create(&dl).inc_by(r);
            }
            if z > 0 {
                self.metrics.zero_window.get_or_create(&dl).inc_by(secs(z));
            }
        }
    }

    /// Counts a final checkpoint; `stopped_in`: its session ended in it.
    fn checkpoint(
        &mut self,
        s: &SessionModel,
        c: &Checkpoint,
        l: &SessionLabels,
        scheme: Scheme,
        stopped_in: bool,
    ) {
        let mut phases = serde_json::Map::new();
        for &p in Phase::of(scheme) {
            let Some(d) = c.phase(p, scheme) else {
                continue;
            };
            phases.insert(p.name().into(), json!(secs(d)));
            self.metrics
                .phase
                .get_or_create(&PhaseLabels {
                    pair: l.pair.clone(),
                    domain: l.domain.clone(),
                    kind: l.kind.clone(),
                    phase: p.name().into(),
                })
                .observe(secs(d));
        }
        let downtime = c.downtime(scheme);
        if let Some(d) = downtime {
            self.metrics.downtime.get_or_create(l).observe(secs(d));
        }
        self.metrics.pages.get_or_create(l).observe(c.pages as f64);
        self.metrics.bytes.get_or_create(l).observe(c.bytes as f64);
        let complete = c.complete(scheme);
        self.metrics
            .checkpoints
            .get_or_create(&CompleteLabels {
                pair: l.pair.clone(),
                domain: l.domain.clone(),
                kind: l.kind.clone(),
                complete: complete.to_string(),
            })
            .inc();
        let mut slow = Vec::new();
        stall::slow_phases(s, c, &self.thresholds, &mut slow);
        let mut events = serde_json::Map::new();
        for &e in CheckpointEvent::of(scheme)
            .iter()
            .filter(|e| e.is_message())
        {
            if let Some(t) = c.event(e) {
                events.insert(e.name().into(), json!(secs(t)));
            }
        }
        let mut event = json!({"event": "checkpoint", "session": s.info.id, "pair": l.pair,
            "domain": l.domain, "kind": l.kind, "checkpoint": c.index,
            "start": c.start().map(secs), "events": events, "phases": phases,
            "downtime": downtime.map(secs), "pages": c.pages,
            "pfns": (scheme != Scheme::QemuColo).then_some(c.pfns),
            "bytes": c.bytes, "complete": complete, "lost_bytes": c.lost});
        // QEMU COLO: the end of the device state (no message) and its size
        if let (Scheme::QemuColo, Value::Object(o)) = (scheme, &mut event) {
            let end = c.event(CheckpointEvent::DeviceState).map(secs);
            o.insert("device_state_end".into(), json!(end));
            o.insert("vmstate_size".into(), json!(c.vmstate_size));
        }
        self.event(event);
        for x in &slow {
            self.count_stall(l, x);
            self.event(stall_event("slow_phase", s, l, x));
        }
        // A checkpoint that stalled and then completed: its slow phase was
        // counted above; one the session ended in counts once here.
        if stopped_in && slow.is_empty() {
            if let Some(awaited) = c.awaiting(scheme) {
                let phase = awaited.awaited_phase(scheme);
                self.metrics
                    .stalls
                    .get_or_create(&StallLabels {
                        pair: l.pair.clone(),
                        domain: l.domain.clone(),
                        kind: l.kind.clone(),
                        phase: phase.name().into(),
                        owner: awaited.owner().name().into(),
                    })
                    .inc();
            }
        }
    }

    fn count_stall(&mut self, l: &SessionLabels, x: &Stall) {
        self.metrics
            .stalls
            .get_or_create(&StallLabels {
                pair: l.pair.clone(),
                domain: l.domain.clone(),
                kind: l.kind.clone(),
                phase: x.phase.name().into(),
                owner: x.owner.name().into(),
            })
            .inc();
    }
}

fn stall_event(name: &str, s: &SessionModel, l: &SessionLabels, x: &Stall) -> Value {
    json!({"event": name, "session": s.info.id, "pair": l.pair, "domain": l.domain,
        "kind": l.kind, "checkpoint": x.checkpoint, "phase": x.phase.name(),
        "slow": x.kind == StallKind::Slow, "start": secs(x.start), "duration": x.duration,
        "threshold": x.threshold, "waiting_for": x.waiting_for.name(),
        "owner": x.owner.name(), "why": x.why, "evidence": x.evidence})
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: prometheus-client does not escape label values, and a
    /// domain name comes from the capture: a quote and a line break in it
    /// would have ended the label and forged a sample.
    #[test]
    fn a_hostile_domain_name_stays_inside_its_label() {
        let evil = "web\"} 1\nmigscope_forged 1\n\\";
        let v = label_value(evil);
        assert_eq!(v, "web\\\"} 1\\nmigscope_forged 1\\n\\\\");
        let mut r = prometheus_client::registry::Registry::default();
        let m = metrics::Metrics::register(&mut r);
        m.sessions.set(1);
        m.downtime
            .get_or_create(&SessionLabels {
                pair: "a->b".into(),
                domain: v,
                kind: "colo".into(),
            })
            .observe(0.1);
        let text = http::to_prometheus_text(&http::exposition(&r));
        assert!(
            !text.lines().any(|l| l.starts_with("migscope_forged")),
            "{text}"
        );
    }
}
