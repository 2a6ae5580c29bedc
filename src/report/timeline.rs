//! `migscope report`: the checkpoint timeline of every session as text (for
//! a person at a terminal), CSV (one row per checkpoint) or JSON (the schema
//! in `docs/report-json.md`). Times are seconds since the first packet;
//! durations are seconds; absent values are empty (CSV) or null (JSON).

use std::io::{self, Write};

use serde_json::{json, Map, Value};

use crate::decode::text::escape_str;
use crate::model::stall::{Evidence, Stall};
use crate::model::{Checkpoint, CheckpointEvent, Model, Phase, Scheme, SessionModel, Thresholds};
pub use crate::present::rfc3339;
use crate::present::{
    evidence_text, handover_text, human_bytes, human_ns, migration_downtime_text, rel,
    unfinished_text,
};
use crate::session::CaptureStats;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    Text,
    Json,
    Csv,
}

/// What the report is about besides the model.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    /// The file name or interface.
    pub source: &'a str,
    pub stats: &'a CaptureStats,
    /// Problems met reading the capture, as sentences.
    pub problems: &'a [String],
    pub thresholds: &'a Thresholds,
    /// No more packets will come (end of file, or capture stopped).
    pub capture_ended: bool,
    /// Checkpoints listed in the text report's "worst" table.
    pub worst: usize,
}

/// What a report lists: everything (the default), or only one session
/// (`--session`), what overlaps a time range (`--from`, `--to`) or one
/// checkpoint (`-Y ckpt:N`). Statistics, thresholds and stalls are still
/// those of whole sessions: a selection leaves out what it does not cover,
/// it does not change how the rest is judged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Selection {
    pub session: Option<u32>,
    /// Nanoseconds since the first packet.
    pub from: Option<u64>,
    pub to: Option<u64>,
    pub checkpoint: Option<u64>,
}

impl Selection {
    pub fn is_all(&self) -> bool {
        *self == Selection::default()
    }

    /// Whether capture times `a..=b` overlap the time range.
    fn overlaps(&self, m: &Model, a: u64, b: u64) -> bool {
        let t0 = m.start.unwrap_or(0);
        let (a, b) = (a.saturating_sub(t0), b.saturating_sub(t0));
        self.from.map_or(true, |f| b >= f) && self.to.map_or(true, |t| a <= t)
    }

    /// A checkpoint is listed from its NEW (or first record) to its last event.
    fn checkpoint(&self, m: &Model, c: &Checkpoint) -> bool {
        if self.checkpoint.is_some_and(|n| n != c.index) {
            return false;
        }
        if self.from.is_none() && self.to.is_none() {
            return true;
        }
        let Some(a) = c.event(CheckpointEvent::New).or(c.first_record) else {
            return false;
        };
        self.overlaps(m, a, c.last_event().unwrap_or(a).max(a))
    }

    fn stall(&self, m: &Model, x: &Stall) -> bool {
        let end = x.start.saturating_add((x.duration * 1e9) as u64);
        self.checkpoint.map_or(true, |n| n == x.checkpoint) && self.overlaps(m, x.start, end)
    }

    /// Rounds belong to the initial migration (checkpoint 0).
    fn round(&self, m: &Model, r: &crate::model::Round) -> bool {
        self.checkpoint.map_or(true, |n| n == 0) && self.overlaps(m, r.start, r.end)
    }

    /// A session is listed when something of it is.
    fn session(&self, m: &Model, s: &SessionModel) -> bool {
        if self.session.is_some_and(|n| n != s.info.id) {
            return false;
        }
        if self.checkpoint.is_some() {
            return s.listed_checkpoints().iter().any(|c| self.checkpoint(m, c));
        }
        // From the connection's first packet to the session's last.
        let first = s
            .first_activity
            .map_or(s.info.first_ts, |a| a.min(s.info.first_ts));
        self.overlaps(m, first, s.last_activity.max(first))
    }

    /// A decoder diagnostic: in a listed session, in the time range, and
    /// with a checkpoint term, inside that checkpoint.
    fn diagnostic(&self, m: &Model, d: &crate::model::SessionDiagnostic) -> bool {
        let Some(s) = m.sessions.get(d.session as usize) else {
            return self.is_all();
        };
        if !self.session(m, s) || !self.overlaps(m, d.ts, d.ts) {
            return false;
        }
        let Some(n) = self.checkpoint else {
            return true;
        };
        s.listed_checkpoints().iter().any(|c| {
            let a = c.event(CheckpointEvent::New).or(c.first_record);
            c.index == n
                && a.is_some_and(|a| (a..=c.last_event().unwrap_or(a).max(a)).contains(&d.ts))
        })
    }

    /// For people: what is listed (None for everything).
    fn describe(&self) -> Option<String> {
        if self.is_all() {
            return None;
        }
        let mut parts = Vec::new();
        if let Some(s) = self.session {
            parts.push(format!("session {s}"));
        }
        if let Some(c) = self.checkpoint {
            parts.push(format!("checkpoint {c}"));
        }
        match (self.from, self.to) {
            (Some(f), Some(t)) => parts.push(format!("{} s to {} s", secs(f), secs(t))),
            (Some(f), None) => parts.push(format!("from {} s", secs(f))),
            (None, Some(t)) => parts.push(format!("until {} s", secs(t))),
            (None, None) => {}
        }
        Some(parts.join(", "))
    }

    fn json(&self) -> Value {
        json!({"session": self.session, "checkpoint": self.checkpoint,
            "from": self.from.map(secs), "to": self.to.map(secs)})
    }
}

fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// Every stall of every session, computed once.
pub fn stalls(m: &Model, ctx: &Context<'_>) -> Vec<Vec<Stall>> {
    m.sessions
        .iter()
        .map(|s| m.stalls(s, ctx.thresholds, ctx.capture_ended))
        .collect()
}

/// Writes the report; returns the number of stalls (slow phases and stalled
/// checkpoints) found.
pub fn write(
    m: &Model,
    ctx: &Context<'_>,
    format: ReportFormat,
    out: &mut dyn Write,
) -> io::Result<usize> {
    write_selected(m, ctx, format, &Selection::default(), out)
}

/// As [`write`], listing only what `sel` selects; returns the number of
/// stalls listed.
pub fn write_selected(
    m: &Model,
    ctx: &Context<'_>,
    format: ReportFormat,
    sel: &Selection,
    out: &mut dyn Write,
) -> io::Result<usize> {
    // Judged over whole sessions, then selected.
    let mut all = stalls(m, ctx);
    for (s, x) in m.sessions.iter().zip(&mut all) {
        if !sel.session(m, s) {
            x.clear();
        }
        x.retain(|x| sel.stall(m, x));
    }
    match format {
        ReportFormat::Json => json_report(m, ctx, sel, &all, out)?,
        ReportFormat::Csv => csv(m, sel, out)?,
        ReportFormat::Text => text(m, ctx, sel, &all, out)?,
    }
    out.flush()?;
    Ok(all.iter().map(Vec::len).sum())
}

fn opt(v: Option<f64>) -> Value {
    v.map_or(Value::Null, |x| json!(x))
}

/// CHECKPOINT_END to the next checkpoint's CHECKPOINT_END (QEMU COLO:
/// REQUEST to the next REQUEST): the checkpoint period (Remus: "the
/// interval to the next one").
fn interval(c: &Checkpoint, next: Option<&Checkpoint>, scheme: Scheme) -> Option<f64> {
    let e = match scheme {
        Scheme::QemuColo => CheckpointEvent::Request,
        Scheme::XenColo | Scheme::Remus => CheckpointEvent::CheckpointEnd,
    };
    let a = c.event(e)?;
    let b = next?.event(e)?;
    b.checked_sub(a).map(secs)
}

fn checkpoint_json(
    m: &Model,
    s: &SessionModel,
    c: &Checkpoint,
    next: Option<&Checkpoint>,
) -> Value {
    let scheme = s.scheme();
    let colo = scheme == Scheme::XenColo;
    let mut events = Map::new();
    for &e in CheckpointEvent::of(scheme)
        .iter()
        .filter(|e| e.is_message())
    {
        events.insert(e.name().into(), opt(c.event(e).map(|t| rel(m, t))));
    }
    let mut phases = Map::new();
    for &p in Phase::family(scheme) {
        phases.insert(p.name().into(), opt(c.phase(p, scheme).map(secs)));
    }
    let mut v = json!({
        "index": c.index,
        "complete": c.complete(scheme),
        "lost_bytes": c.lost,
        "events": events,
        "phases": phases,
        "downtime": opt(c.downtime(scheme).map(secs)),
        "memory_parts": if colo { c.memory_parts().map_or(Value::Null, |p| json!({
            "preparation": secs(p.preparation), "transfer": secs(p.transfer), "transfer_rate": p.rate})) } else { Value::Null },
        "pages": c.pages,
        // QEMU has no pfn entries
        "pfns": if scheme == Scheme::QemuColo { Value::Null } else { json!(c.pfns) },
        "bytes": c.bytes,
        "dirty_pfns": if colo && c.index > 0 { json!(c.dirty_pfns) } else { Value::Null },
        "interval": opt(interval(c, next, scheme)),
    });
    if scheme == Scheme::QemuColo {
        if let Value::Object(o) = &mut v {
            let end = c.event(CheckpointEvent::DeviceState).map(|t| rel(m, t));
            o.insert("device_state_end".into(), opt(end));
            o.insert("vmstate_size".into(), json!(c.vmstate_size));
        }
    }
    v
}

/// What a QEMU stream showed (docs/report-json.md, "qemu").
fn qemu_json(
    m: &Model,
    q: &crate::model::qemu::QemuMigration,
    multifd: (u32, u64, u64, u64),
) -> Value {
    let t = |x: Option<u64>| opt(x.map(|t| rel(m, t)));
    let rp = &q.return_path;
    json!({
        "machine": q.machine,
        "ram_size": q.ram_size,
        "passes": q.passes,
        "ram_sections": q.ram_sections,
        "pages": q.pages,
        "zero_pages": q.zero_pages,
        "xbzrle_pages": q.xbzrle_pages,
        "ram_bytes": q.ram_bytes,
        "blocks": q.blocks.iter().map(|b| json!({"name": b.name, "size": b.size, "pages": b.pages, "zero_pages": b.zero_pages})).collect::<Vec<_>>(),
        "device_sections": q.device_sections,
        "device_bytes": q.device_bytes,
        "devices": q.devices.iter().map(|d| json!({"name": d.name, "instance": d.instance, "bytes": d.bytes})).collect::<Vec<_>>(),
        "final_stage": {
            "start": t(q.final_start),
            "end": t(q.final_stage_end()),
            "ended_by": q.final_stage_end_name(),
            "duration": opt(q.final_stage().map(secs)),
        },
        "eof": t(q.eof),
        "description_bytes": q.description.map(|d| d.1),
        "return_path": {
            "opened": t(rp.opened), "ping": t(rp.ping), "pong": t(rp.pong),
            "shut": t(rp.shut), "shut_status": rp.shut_status,
        },
        "multifd": if q.multifd_channels > 0 {
            // a channel: its own packets
            json!({"channels": q.multifd_channels, "packets": q.multifd_packets,
                   "pages": q.multifd_pages, "bytes": q.multifd_bytes})
        } else {
            json!({"channels": multifd.0, "packets": multifd.1, "pages": multifd.2, "bytes": multifd.3})
        },
        "colo_enabled": q.colo_enabled,
        "checkpoint_ready": t(q.ready),
        "ready_misread_as_return_path": q.ready_misread,
    })
}

fn evidence_json(m: &Model, e: &Evidence) -> Value {
    match e {
        Evidence::ZeroWindow {
            side,
            start,
            duration,
        } => {
            json!({"kind": "zero_window", "side": side, "start": rel(m, *start), "duration": duration})
        }
        Evidence::Retransmissions { side, count } => {
            json!({"kind": "retransmissions", "side": side, "count": count})
        }
        Evidence::Silence {
            side,
            start,
            duration,
            count,
            total,
            outstanding,
        } => {
            json!({"kind": "silence", "side": side, "start": rel(m, *start), "duration": duration,
                "count": count, "total": total, "outstanding": outstanding})
        }
        Evidence::CaptureLoss { side, bytes } => {
            json!({"kind": "capture_loss", "side": side, "bytes": bytes})
        }
        Evidence::Close { side, reset, at } => {
            json!({"kind": if *reset { "rst" } else { "fin" }, "side": side, "time": rel(m, *at)})
        }
    }
}

/// Writes the JSON report. Checkpoints are written one at a time, so a
/// session of 100,000 checkpoints never exists as one JSON tree in memory.
fn json_report(
    m: &Model,
    ctx: &Context<'_>,
    sel: &Selection,
    all: &[Vec<Stall>],
    out: &mut dyn Write,
) -> io::Result<()> {
    let st = ctx.stats;
    let duration = st.first_ts.map(|f| secs(st.last_ts.saturating_sub(f)));
    let capture = json!({"source": ctx.source, "start": st.first_ts.map(rfc3339),
        "packets": st.packets, "bytes": st.bytes, "duration": duration});
    write!(out, "{{\"capture\":{capture},")?;
    if !sel.is_all() {
        write!(out, "\"selection\":{},", sel.json())?;
    }
    out.write_all(b"\"sessions\":[")?;
    let listed = m
        .sessions
        .iter()
        .zip(all)
        .filter(|(s, _)| sel.session(m, s));
    for (n, (s, stalls)) in listed.enumerate() {
        if n > 0 {
            out.write_all(b",")?;
        }
        // The session object without its closing brace, then the checkpoints.
        let text = session_json(m, s, sel, stalls).to_string();
        out.write_all(&text.as_bytes()[..text.len() - 1])?;
        out.write_all(b",\"checkpoints\":[")?;
        let cps = s.listed_checkpoints();
        let picked = cps.iter().enumerate().filter(|(_, c)| sel.checkpoint(m, c));
        for (k, (i, c)) in picked.enumerate() {
            if k > 0 {
                out.write_all(b",")?;
            }
            write!(out, "{}", checkpoint_json(m, s, c, cps.get(i + 1)))?;
        }
        out.write_all(b"]}")?;
    }
    let mut diagnostics: Vec<Value> = ctx
        .problems
        .iter()
        .map(|p| {
            json!({"severity": "error", "session": null, "dir": null, "ts": null,
            "offset": null, "message": p})
        })
        .collect();
    diagnostics.extend(
        m.diagnostics
            .iter()
            .filter(|d| sel.diagnostic(m, d))
            .map(|d| {
                json!({"severity": d.severity, "session": d.session, "dir": d.dir.label(),
        "ts": rel(m, d.ts), "offset": d.offset, "message": d.message})
            }),
    );
    writeln!(out, "],\"diagnostics\":{}}}", Value::Array(diagnostics))
}

/// A session's JSON object, without its checkpoints.
fn session_json(m: &Model, s: &SessionModel, sel: &Selection, stalls: &[Stall]) -> Value {
    let i = &s.info;
    let fwd = &s.dirs[0];
    let back = &s.dirs[1];
    let (bsrc, bdst) = match &i.back_channel {
        Some(bc) => (bc.from, bc.to),
        None => (i.secondary, i.primary),
    };
    let back_seen =
        back.bytes > 0 || back.tcp.as_ref().is_some_and(|t| t.packets > 0) || back.gaps > 0;
    let records: Vec<Value> = s
                .records
                .iter()
                .map(|((d, layer, t), (n, b))| json!({"dir": d.label(), "layer": layer, "type": t, "count": n, "bytes": b}))
                .collect();
    let mut phase_stats = Map::new();
    for &p in Phase::family(s.scheme()) {
        if let Some(ps) = s.stats.phase(p) {
            phase_stats.insert(
                p.name().into(),
                serde_json::to_value(ps).unwrap_or_default(),
            );
        }
    }
    json!({
        "id": i.id,
        "kind": s.kind().name(),
        "mid_stream": i.mid_stream,
        "multifd_of": i.multifd_of,
        "forward": dir_json(i.primary.to_string(), i.secondary.to_string(), fwd),
        "back": if back_seen { dir_json(bsrc.to_string(), bdst.to_string(), back) } else { Value::Null },
        "domain": s.domain,
        "records": records,
        "rounds": s.rounds.iter().filter(|r| sel.round(m, r)).map(|r| json!({"index": r.index, "pages": r.pages, "pfns": r.pfns, "bytes": r.bytes,
            "start": rel(m, r.start), "end": rel(m, r.end), "duration": secs(r.end.saturating_sub(r.start)),
            "throughput": if r.end > r.start { json!(r.bytes as f64 / secs(r.end.saturating_sub(r.start))) } else { Value::Null },
            "final": s.final_round().is_some_and(|f| f.index == r.index)})).collect::<Vec<_>>(),
        "downtime": opt(s.migration_downtime().map(secs)),
        "stream_end": opt(s.stream_end.map(|t| rel(m, t))),
        "handover": {
            "ready_to_unpause": opt(s.handover.ready_to_unpause.map(|t| rel(m, t))),
            "cleared_to_unpause": opt(s.handover.cleared_to_unpause.map(|t| rel(m, t))),
            "unpause_result": opt(s.handover.unpause_result.map(|t| rel(m, t))),
            "result": s.handover.result,
        },
        "stalls": stalls.iter().map(|x| json!({
            "kind": x.kind, "checkpoint": x.checkpoint, "phase": x.phase.name(),
            "start": rel(m, x.start), "duration": x.duration, "threshold": x.threshold,
            "waiting_for": x.waiting_for.name(), "owner": x.owner.name(), "why": x.why,
            "evidence": x.evidence.iter().map(|e| evidence_json(m, e)).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "qemu": s.qemu_mig.as_ref().map_or(Value::Null, |q| qemu_json(m, q, m.multifd_totals(i.id))),
        "phase_stats": phase_stats,
        "downtime_stats": s.stats.downtime.summary(),
        "checkpoint_rate": s.stats.rate(),
        "pages_per_checkpoint": s.stats.pages.summary(),
        "bytes_per_checkpoint": s.stats.bytes.summary(),
        "throughput": {"bin": s.throughput.bin_secs(), "forward": s.throughput.bins,
            "back": s.throughput_back.bins},
    })
}

/// One direction of a session in JSON.
fn dir_json(src: String, dst: String, x: &crate::model::DirTally) -> Value {
    let tcp = x.tcp.as_ref();
    json!({
        "src": src, "dst": dst, "bytes": x.bytes, "gaps": x.gaps, "gap_bytes": x.gap_bytes,
        "records": x.records, "errors": x.errors, "warnings": x.warnings,
        "tcp": {
            "packets": tcp.map(|t| t.packets),
            "retransmissions": x.retransmissions,
            "retransmitted_bytes": tcp.map(|t| t.reassembly.retransmitted_bytes),
            "differing_bytes": tcp.map(|t| t.reassembly.differing_bytes),
            "duplicates": tcp.map(|t| t.duplicates),
            "out_of_window": tcp.map(|t| t.reassembly.out_of_window),
            "out_of_order": x.out_of_order,
            "dup_acks": x.dup_acks,
            "zero_windows": x.zero_windows,
            "rtt": match x.rtt.avg() { Some(avg) => json!({"samples": x.rtt.count, "min": secs(x.rtt.min),
                "avg": secs(avg), "max": secs(x.rtt.max)}), None => Value::Null },
            "fin": x.fin, "rst": x.rst,
        },
    })
}

/// The CSV columns of a QEMU COLO checkpoint's events (the end of its
/// device state is `device_state_end`, as in JSON).
fn qemu_event_column(e: CheckpointEvent) -> String {
    match e {
        CheckpointEvent::DeviceState => "device_state_end".into(),
        e => e.name().into(),
    }
}

/// The CSV: one row per checkpoint. Xen's columns (its seven events, its
/// seven phases, downtime, pages, pfns, bytes, dirty_pfns) come first, then
/// QEMU COLO's (its seven events, its phases as `phase_<name>`, the
/// announced device state size as `vmstate_bytes`), empty in the rows of
/// the other family, then the interval, last.
/// A QEMU stream's figures in the text report.
fn qemu_text(
    out: &mut dyn Write,
    m: &Model,
    q: &crate::model::qemu::QemuMigration,
    multifd: (u32, u64, u64, u64),
    channel_of: Option<crate::session::SessionId>,
) -> io::Result<()> {
    if q.multifd_channels > 0 {
        return writeln!(
            out,
            "  multifd channel{}: {} packets, {} pages, {}",
            channel_of
                .map(|p| format!(" of session {p}"))
                .unwrap_or_else(|| " (no main stream to the same destination seen)".into()),
            q.multifd_packets,
            q.multifd_pages,
            human_bytes(q.multifd_bytes)
        );
    }
    if let Some(machine) = &q.machine {
        write!(out, "  machine {machine}")?;
        if let Some(r) = q.ram_size {
            write!(out, ", RAM {}", human_bytes(r))?;
        }
        writeln!(out)?;
    }
    if q.ram_sections > 0 {
        writeln!(
            out,
            "  RAM: {} pass{} over memory, {} page{} with data, {} zero page{}{}, {} in {} section{}",
            q.passes,
            if q.passes == 1 { "" } else { "es" },
            q.pages,
            if q.pages == 1 { "" } else { "s" },
            q.zero_pages,
            if q.zero_pages == 1 { "" } else { "s" },
            if q.xbzrle_pages > 0 {
                format!(", {} XBZRLE", q.xbzrle_pages)
            } else {
                String::new()
            },
            human_bytes(q.ram_bytes),
            q.ram_sections,
            if q.ram_sections == 1 { "" } else { "s" },
        )?;
        for b in q.blocks.iter().filter(|b| b.pages + b.zero_pages > 0) {
            writeln!(
                out,
                "    {:<24} {:>9} pages {:>9} zero{}",
                b.name,
                b.pages,
                b.zero_pages,
                b.size
                    .map(|s| format!("  of {}", human_bytes(s)))
                    .unwrap_or_default()
            )?;
        }
    }
    if multifd.0 > 0 {
        writeln!(
            out,
            "  multifd: {} channel{}, {} packets, {} pages with data, {}",
            multifd.0,
            if multifd.0 == 1 { "" } else { "s" },
            multifd.1,
            multifd.2,
            human_bytes(multifd.3)
        )?;
    }
    if q.device_sections > 0 {
        let mut top: Vec<_> = q.devices.iter().collect();
        top.sort_by_key(|d| std::cmp::Reverse(d.bytes));
        writeln!(
            out,
            "  device state: {} sections, {}; largest: {}",
            q.device_sections,
            human_bytes(q.device_bytes),
            top.iter()
                .take(3)
                .map(|d| format!("{} {}", d.name, human_bytes(d.bytes)))
                .collect::<Vec<_>>()
                .join(", ")
        )?;
    }
    let rp = &q.return_path;
    if let Some(o) = rp.opened {
        let mut line = format!("  return path opened at {:.6} s", rel(m, o));
        if let Some(p) = rp.pong {
            line.push_str(&format!(", PONG at {:.6} s", rel(m, p)));
        }
        match (rp.shut, rp.shut_status) {
            (Some(t), Some(0)) => line.push_str(&format!(", SHUT (loaded) at {:.6} s", rel(m, t))),
            (Some(t), st) => line.push_str(&format!(
                ", SHUT with status {} (the destination failed) at {:.6} s",
                st.map_or("?".into(), |x| x.to_string()),
                rel(m, t)
            )),
            (None, _) => line.push_str(", no SHUT seen"),
        }
        writeln!(out, "{line}")?;
    }
    if let (Some(start), Some(d)) = (q.final_start, q.final_stage()) {
        writeln!(
            out,
            "  final stage (guest stopped) from {:.6} s: {} to {} (a bound from below of the downtime)",
            rel(m, start),
            human_ns(d),
            q.final_stage_end_name()
        )?;
    }
    if let Some(r) = q.ready {
        writeln!(out, "  COLO: the secondary was READY at {:.6} s", rel(m, r))?;
    }
    if q.ready_misread {
        writeln!(
            out,
            "  COLO with the return path: the primary reads the secondary's CHECKPOINT_READY as an invalid return-path message and fails the migration (QEMU 7.2; turn the return-path capability off for COLO)"
        )?;
    }
    Ok(())
}

fn csv(m: &Model, sel: &Selection, out: &mut dyn Write) -> io::Result<()> {
    let mut head = vec![
        "session".to_string(),
        "kind".into(),
        "index".into(),
        "complete".into(),
    ];
    head.extend(CheckpointEvent::XEN.iter().map(|e| e.name().to_string()));
    head.extend(Phase::XEN.iter().map(|p| p.name().to_string()));
    head.extend(["downtime", "pages", "pfns", "bytes", "dirty_pfns"].map(String::from));
    head.extend(CheckpointEvent::QEMU_COLO.map(qemu_event_column));
    head.extend(
        Phase::QEMU_COLO
            .iter()
            .map(|p| format!("phase_{}", p.name())),
    );
    head.push("vmstate_bytes".into());
    head.push("interval".into());
    let qemu_columns = CheckpointEvent::QEMU_COLO.len() + Phase::QEMU_COLO.len() + 1;
    writeln!(out, "{}", head.join(","))?;
    let f = |v: Option<f64>| v.map_or(String::new(), |x| format!("{x:.9}"));
    for s in m.sessions.iter().filter(|s| sel.session(m, s)) {
        let scheme = s.scheme();
        let qemu = scheme.is_qemu();
        let cps = s.listed_checkpoints();
        for (i, c) in cps.iter().enumerate() {
            if !sel.checkpoint(m, c) {
                continue;
            }
            let mut row = vec![
                s.info.id.to_string(),
                s.kind().name().to_string(),
                c.index.to_string(),
                c.complete(scheme).to_string(),
            ];
            let events = |row: &mut Vec<String>, events: &[CheckpointEvent; 7], ours: bool| {
                row.extend(
                    events
                        .iter()
                        .map(|&e| f(c.event(e).filter(|_| ours).map(|t| rel(m, t)))),
                );
            };
            let phases = |row: &mut Vec<String>, phases: &[Phase; 7]| {
                row.extend(phases.iter().map(|&p| f(c.phase(p, scheme).map(secs))));
            };
            events(&mut row, &CheckpointEvent::XEN, !qemu);
            phases(&mut row, &Phase::XEN);
            row.push(f(c.downtime(scheme).map(secs)));
            row.push(c.pages.to_string());
            row.push(c.pfns.to_string());
            row.push(c.bytes.to_string());
            row.push(if scheme == Scheme::XenColo && c.index > 0 {
                c.dirty_pfns.to_string()
            } else {
                String::new()
            });
            events(&mut row, &CheckpointEvent::QEMU_COLO, qemu);
            phases(&mut row, &Phase::QEMU_COLO);
            row.push(c.vmstate_size.map_or(String::new(), |b| b.to_string()));
            row.push(f(interval(c, cps.get(i + 1), scheme)));
            writeln!(out, "{}", row.join(","))?;
        }
        // A plain migration is one row: no index, its downtime, the pages
        // and pfns of all its rounds and its forward bytes.
        if s.kind() == crate::model::SessionKind::Plain && sel.checkpoint.is_none() {
            let mut row = vec![
                s.info.id.to_string(),
                s.kind().name().to_string(),
                String::new(),
                (s.stream_end.is_some() && !s.info.mid_stream).to_string(),
            ];
            row.extend((0..CheckpointEvent::XEN.len() + Phase::XEN.len()).map(|_| String::new()));
            row.push(f(s.migration_downtime().map(secs)));
            row.push(s.rounds.iter().map(|r| r.pages).sum::<u64>().to_string());
            row.push(s.rounds.iter().map(|r| r.pfns).sum::<u64>().to_string());
            row.push(s.dirs[0].bytes.to_string());
            // dirty_pfns, QEMU COLO's columns, interval
            row.extend((0..1 + qemu_columns + 1).map(|_| String::new()));
            writeln!(out, "{}", row.join(","))?;
        }
    }
    Ok(())
}

fn text(
    m: &Model,
    ctx: &Context<'_>,
    sel: &Selection,
    all: &[Vec<Stall>],
    out: &mut dyn Write,
) -> io::Result<()> {
    let st = ctx.stats;
    let dur = st
        .first_ts
        .map_or(0.0, |f| secs(st.last_ts.saturating_sub(f)));
    writeln!(
        out,
        "Capture {}: {} packets, {}, {:.3} s{}",
        escape_str(ctx.source),
        st.packets,
        human_bytes(st.bytes),
        dur,
        st.first_ts
            .map(|t| format!(", from {}", rfc3339(t)))
            .unwrap_or_default()
    )?;
    if let Some(what) = sel.describe() {
        writeln!(
            out,
            "Listing {what} (statistics, thresholds and stalls are judged over whole sessions)."
        )?;
    }
    if m.sessions.is_empty() {
        writeln!(out, "No migration found.")?;
    } else if !m.sessions.iter().any(|s| sel.session(m, s)) {
        writeln!(
            out,
            "None of the {} sessions found has anything in the selection.",
            m.sessions.len()
        )?;
    }
    for (s, stalls) in m
        .sessions
        .iter()
        .zip(all)
        .filter(|(s, _)| sel.session(m, s))
    {
        let i = &s.info;
        writeln!(out)?;
        let dom = &s.domain;
        let domain = match &dom.name {
            Some(n) => format!(
                "  domain {} ({}{}{})",
                n,
                dom.guest_type.as_deref().unwrap_or("?"),
                dom.memory_kib
                    .map(|k| format!(", {} MiB", k / 1024))
                    .unwrap_or_default(),
                dom.vcpus
                    .map(|v| format!(", {v} vcpus"))
                    .unwrap_or_default()
            ),
            None => String::new(),
        };
        writeln!(
            out,
            "Session {} [{}] {} -> {}{}{}",
            i.id,
            s.kind().name(),
            i.primary,
            i.secondary,
            domain,
            if i.mid_stream {
                "  (capture starts mid-stream)"
            } else {
                ""
            }
        )?;
        for (d, x) in [("forward", &s.dirs[0]), ("back", &s.dirs[1])] {
            writeln!(
                out,
                "  {d:<8} {} in {} records; {} gaps ({}); {} retransmissions; {} zero-window episodes",
                human_bytes(x.bytes),
                x.records,
                x.gaps,
                human_bytes(x.gap_bytes),
                x.retransmissions,
                x.zero_windows
            )?;
        }
        let scheme = s.scheme();
        let all_cps = s.listed_checkpoints();
        let cps: Vec<&Checkpoint> = all_cps.iter().filter(|c| sel.checkpoint(m, c)).collect();
        if !all_cps.is_empty() && cps.is_empty() {
            writeln!(out, "  no checkpoint selected")?;
        }
        if !cps.is_empty() {
            let complete = cps.iter().filter(|c| c.complete(scheme)).count();
            writeln!(
                out,
                "  {} checkpoints ({} complete, {} partial){}",
                if sel.is_all() {
                    cps.len().to_string()
                } else {
                    format!("{} of {}", cps.len(), all_cps.len())
                },
                complete,
                cps.len() - complete,
                s.stats
                    .rate()
                    .map(|r| format!(", {r:.2} per second"))
                    .unwrap_or_default()
            )?;
            // as wide as the longest phase name ("device_state")
            let w = Phase::family(scheme)
                .iter()
                .map(|p| p.name().len())
                .max()
                .unwrap_or(0)
                .max(11);
            writeln!(
                out,
                "  {:<w$} {:>6} {:>10} {:>10} {:>10} {:>10}",
                "phase", "count", "p50", "p90", "p99", "max"
            )?;
            let mut rows: Vec<(&str, Option<crate::model::PhaseStats>)> = Phase::family(scheme)
                .iter()
                .map(|&p| (p.name(), s.stats.phase(p)))
                .collect();
            rows.push(("downtime", s.stats.downtime.summary()));
            for (name, ps) in rows {
                if let Some(ps) = ps {
                    writeln!(
                        out,
                        "  {:<w$} {:>6} {:>10} {:>10} {:>10} {:>10}",
                        name,
                        ps.count,
                        crate::present::secs(ps.p50),
                        crate::present::secs(ps.p90),
                        crate::present::secs(ps.p99),
                        crate::present::secs(ps.max)
                    )?;
                }
            }
            if let (Some(p), Some(b)) = (s.stats.pages.summary(), s.stats.bytes.summary()) {
                writeln!(
                    out,
                    "  per checkpoint: pages p50 {:.0} max {:.0}; bytes p50 {} max {}",
                    p.p50,
                    p.max,
                    human_bytes(b.p50 as u64),
                    human_bytes(b.max as u64)
                )?;
            }
            // The worst checkpoints, by downtime.
            let mut worst: Vec<(&Checkpoint, u64)> = cps
                .iter()
                .filter_map(|&c| Some((c, c.downtime(scheme)?)))
                .collect();
            worst.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.index.cmp(&b.0.index)));
            if !worst.is_empty() && ctx.worst > 0 {
                writeln!(out, "  worst checkpoints (downtime):")?;
                for (c, d) in worst.iter().take(ctx.worst) {
                    let longest = Phase::family(scheme)
                        .iter()
                        .filter(|&&p| !p.is_trailing())
                        .filter_map(|&p| c.phase(p, scheme).map(|x| (p, x)))
                        .max_by_key(|x| x.1);
                    writeln!(
                        out,
                        "    #{:<6} at {:>10.3} s  {:>10}{}",
                        c.index,
                        rel(m, c.start().unwrap_or(0)),
                        human_ns(*d),
                        longest
                            .map(|(p, x)| format!("  longest phase {} {}", p.name(), human_ns(x)))
                            .unwrap_or_default()
                    )?;
                }
            }
        }
        if s.rounds.iter().any(|r| sel.round(m, r)) {
            writeln!(out, "  rounds of the initial migration:")?;
            let last = s.final_round().map(|r| r.index);
            for r in s.rounds.iter().filter(|r| sel.round(m, r)) {
                let d = r.end.saturating_sub(r.start);
                writeln!(
                    out,
                    "    round {:<3} {:>8} pages {:>8} pfns {:>10} in {:>10}{}{}",
                    r.index,
                    r.pages,
                    r.pfns,
                    human_bytes(r.bytes),
                    human_ns(d),
                    if d > 0 {
                        format!(" ({}/s)", human_bytes((r.bytes as f64 / secs(d)) as u64))
                    } else {
                        String::new()
                    },
                    if last == Some(r.index) {
                        "  final (guest suspended)"
                    } else {
                        ""
                    }
                )?;
            }
            if let Some(h) = handover_text(m, &s.handover, 3) {
                writeln!(out, "  {h}")?;
            }
            if let Some(d) = migration_downtime_text(m, s, 3) {
                writeln!(out, "  {d}")?;
            }
        }
        if let Some(q) = &s.qemu_mig {
            qemu_text(out, m, q, m.multifd_totals(s.info.id), s.info.multifd_of)?;
        }
        if let Some(t) = unfinished_text(m, s) {
            writeln!(out, "  {t}")?;
        }
        if stalls.is_empty() {
            writeln!(out, "  no stalls")?;
        }
        for x in stalls {
            // at: the checkpoint's start, as in the worst list
            let at = cps
                .iter()
                .find(|c| c.index == x.checkpoint)
                .and_then(|c| c.start())
                .unwrap_or(x.start);
            writeln!(
                out,
                "  checkpoint {} at {:.3} s: {}",
                x.checkpoint,
                rel(m, at),
                crate::present::stall_what(x, Some(&format!("{:.3} s", rel(m, x.start))))
            )?;
            writeln!(out, "      owner: the {}: {}", x.owner.name(), x.why)?;
            for e in &x.evidence {
                writeln!(out, "      {}", evidence_text(m, e))?;
            }
        }
    }
    for p in ctx.problems {
        writeln!(out, "capture: {p}")?;
    }
    let diagnostics: Vec<_> = m
        .diagnostics
        .iter()
        .filter(|d| sel.diagnostic(m, d))
        .collect();
    if let Some(d) = diagnostics.first() {
        writeln!(out)?;
        // Those past the model's cap are counted only when all are listed.
        let dropped = if sel.is_all() {
            m.diagnostics_dropped
        } else {
            0
        };
        writeln!(
            out,
            "{} decoder diagnostics (first: session {} {} at {:.3} s, stream offset {}: {})",
            diagnostics.len() as u64 + dropped,
            d.session,
            d.dir.label(),
            rel(m, d.ts),
            d.offset,
            d.message
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            rfc3339(1_795_651_200_123_456_789),
            "2026-11-26T00:00:00.123456789Z"
        );
        assert_eq!(
            rfc3339(951_782_400_000_000_000),
            "2000-02-29T00:00:00.000000000Z"
        );
    }
}
