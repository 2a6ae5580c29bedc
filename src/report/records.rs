//! `migscope records`: one line per item of a raw stream file, like tshark's
//! packet list; `-V` adds the detail tree, `--json` writes JSON lines.
//!
//! JSON lines: every object has an `event` key. `record` (records, stream
//! headers and xl messages) carries `no`, `offset`, `layer`, `type`, `length`
//! (body length; wire length for headers and messages), `wire_len`, `lost`,
//! `summary`, and with `-V` `details`. `diagnostic` carries `severity`,
//! `kind`, `offset`, `message`. `resync`, `layer_switch` and
//! `static_data_end_inferred` mark decoder state changes; a last `summary`
//! object counts records and diagnostics.
//!
//! A display filter (`-Y`, [`Filter`]: the language of the terminal UI's
//! Records view) selects the records listed, decided by the view's own
//! [`RecordIndex`] and [`Filtered`], so the two never disagree: over a
//! capture the index is the one the model keeps (it knows each record's
//! checkpoint, [`crate::model::records::entry`]); over a raw stream file it is
//! filled here, without checkpoint numbers. Under a filter, records keep the
//! number they have unfiltered, diagnostics and decoder markers are counted
//! but not listed, and the footer says how many were listed (JSON: `listed`
//! and `filter` in the `summary` object).
//! The index costs what it costs the UI: 52 bytes per record and its
//! one-line summary (at most 96 bytes).

use std::collections::BTreeMap;
use std::io::{self, Read, Write};

use serde_json::json;

use crate::decode::detail::Field;
use crate::decode::{
    detect, Decoder, DiagKind, Direction, Event, Family, Item, ItemKind, Severity, StreamDecoder,
};
use crate::model::records::{entry, Filter, Filtered, RecordIndex};
use crate::model::Model;
use crate::session::{DirectionStats, Observer, Session, SessionId};
use crate::tcp::{GapCause, TcpEvent};

/// Options of the `records` command.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    pub verbose: bool,
    pub json: bool,
    pub back_channel: bool,
}

/// What a run found, for the exit status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub records: u64,
    pub bytes: u64,
    pub errors: u64,
    pub warnings: u64,
    pub notes: u64,
    /// The input is not a decodable stream (legacy, SSH, not a migration stream).
    pub refused: Option<String>,
    /// Records listed: all of them, or those that passed the filter.
    pub listed: u64,
}

/// Which of a batch of decoder events are listed under a filter (one per
/// [`RecordIndex`], since [`Filtered`] remembers how far it looked).
#[derive(Debug)]
struct Selector {
    filtered: Filtered,
}

impl Selector {
    fn new(filter: &Filter) -> Self {
        Selector {
            filtered: Filtered::new(filter.clone()),
        }
    }

    /// `events` are the latest events of `idx`'s session, whose items are
    /// the entries from `from` on: one flag per event, true for an item
    /// that passes.
    fn mask(&mut self, idx: &RecordIndex, from: usize, events: &[Event]) -> Vec<bool> {
        self.filtered.update(idx);
        // Only the positions found by this update are kept (4 bytes each).
        let passed = std::mem::take(&mut self.filtered.matches);
        let mut pos = from as u32;
        events
            .iter()
            .map(|e| match e {
                Event::Item(_) => {
                    pos += 1;
                    passed.binary_search(&(pos - 1)).is_ok()
                }
                _ => false,
            })
            .collect()
    }
}

/// The decoder for a raw stream that starts with `head`.
fn stream_decoder(head: &[u8], dir: Direction) -> StreamDecoder {
    let family = detect::classify(head).map_or(Family::Xen, |o| o.family());
    StreamDecoder::new(family, dir)
}

/// Size of the reads from the input.
const READ_CHUNK: usize = 1 << 20;

/// Decodes `input` and writes the listing to `out`; with `filter` (and its
/// text, for the footer) only the records that pass are listed. A raw stream
/// has no checkpoint numbers: a filter's `ckpt:` term passes nothing.
pub fn run(
    input: &mut dyn Read,
    opts: Options,
    filter: Option<(&Filter, &str)>,
    out: &mut dyn Write,
) -> io::Result<Outcome> {
    let dir = if opts.back_channel {
        Direction::Reverse
    } else {
        Direction::Forward
    };
    // The family is told by the first bytes (QEMU's "QEVM", else Xen's).
    let mut dec: Option<StreamDecoder> = opts
        .back_channel
        .then(|| StreamDecoder::Xen(Decoder::back_channel()));
    let mut head: Vec<u8> = Vec::new();
    let mut printer = Printer {
        opts,
        out,
        outcome: Outcome::default(),
        by_kind: BTreeMap::new(),
        ctx: None,
        filter: filter.map(|(_, t)| t.to_string()),
    };
    // Under a filter: the records, as the Records view indexes them.
    let mut select = filter.map(|(f, _)| (RecordIndex::default(), Selector::new(f)));
    let mut print = |printer: &mut Printer<'_>, events: &[Event]| match &mut select {
        None => printer.print(events, None),
        Some((index, sel)) => {
            let from = index.len();
            for e in events {
                if let Event::Item(item) = e {
                    index.push(entry(item, dir, 0, None), &item.info);
                }
            }
            let mask = sel.mask(index, from, events);
            printer.print(events, Some(&mask))
        }
    };
    let mut buf = vec![0u8; READ_CHUNK];
    let mut events = Vec::new();
    if !opts.json {
        writeln!(
            printer.out,
            "{:>6}  {:>12}  {:<6} {:<26} {:>9}  summary",
            "no", "offset", "layer", "type", "length"
        )?;
    }
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        printer.outcome.bytes += n as u64;
        match &mut dec {
            Some(d) => d.push(&buf[..n], &mut events),
            None => {
                head.extend_from_slice(&buf[..n]);
                if head.len() >= detect::NEEDED {
                    let d = dec.insert(stream_decoder(&head, dir));
                    d.push(&std::mem::take(&mut head), &mut events);
                }
            }
        }
        print(&mut printer, &events)?;
        events.clear();
    }
    let d = dec.get_or_insert_with(|| stream_decoder(&head, dir));
    d.push(&std::mem::take(&mut head), &mut events);
    d.finish(&mut events);
    print(&mut printer, &events)?;
    printer.footer()?;
    Ok(printer.outcome)
}

struct Printer<'a> {
    opts: Options,
    out: &'a mut dyn Write,
    outcome: Outcome,
    by_kind: BTreeMap<&'static str, u64>,
    /// Capture mode: the session direction and time of the events printed.
    ctx: Option<Ctx>,
    /// The filter the records listed passed, as given (for the footer).
    filter: Option<String>,
}

/// Where the events being printed come from, in capture mode.
#[derive(Debug, Clone, Copy)]
struct Ctx {
    session: u32,
    dir: Direction,
    /// Seconds since the first packet: completion of the events' records.
    time: f64,
    /// Seconds since the first packet: the packet that carried their first
    /// byte.
    first: f64,
}

impl Printer<'_> {
    /// Text columns that precede every line in capture mode.
    fn lead(&self) -> String {
        match self.ctx {
            Some(c) => format!("{:>12.6}  {:>4} {:<7}  ", c.time, c.session, c.dir.label()),
            None => String::new(),
        }
    }

    /// Adds the capture-mode keys to a JSON object.
    fn tag(&self, mut v: serde_json::Value) -> serde_json::Value {
        if let Some(c) = self.ctx {
            v["session"] = json!(c.session);
            v["dir"] = json!(c.dir.name());
            v["time"] = json!(c.time);
            v["first"] = json!(c.first);
        }
        v
    }
}

impl Printer<'_> {
    /// Prints `events`; with `shown`, only the items it flags (the others
    /// and every non-item are counted, not printed).
    fn print(&mut self, events: &[Event], shown: Option<&[bool]>) -> io::Result<()> {
        for (i, ev) in events.iter().enumerate() {
            let listed = shown.map_or(true, |m| m.get(i).copied().unwrap_or(false));
            if !listed {
                match ev {
                    Event::Item(_) => self.outcome.records += 1,
                    Event::Diagnostic(d) => self.count(d),
                    _ => {}
                }
                continue;
            }
            match ev {
                Event::Item(item) => self.item(item)?,
                Event::Diagnostic(d) => {
                    self.count(d);
                    if self.opts.json {
                        let v = self.tag(
                            json!({"event": "diagnostic", "severity": d.severity, "kind": d.kind,
                            "offset": d.offset, "message": d.message}),
                        );
                        writeln!(self.out, "{v}")?;
                    } else {
                        writeln!(
                            self.out,
                            "{}{:>6}  {:>12}  ! {}: {}",
                            self.lead(),
                            "",
                            d.offset,
                            d.severity.name(),
                            d.message
                        )?;
                    }
                }
                Event::Resync {
                    offset,
                    skipped,
                    anchor,
                } => {
                    if self.opts.json {
                        let v = self.tag(
                            json!({"event": "resync", "offset": offset, "skipped": skipped,
                            "anchor": format!("{anchor:?}")}),
                        );
                        writeln!(self.out, "{v}")?;
                    }
                }
                Event::LayerSwitch { offset, from, to } => {
                    if self.opts.json {
                        let v = self.tag(json!({"event": "layer_switch", "offset": offset, "from": from, "to": to}));
                        writeln!(self.out, "{v}")?;
                    }
                }
                Event::StaticDataEndInferred { offset } => {
                    if self.opts.json {
                        writeln!(
                            self.out,
                            "{}",
                            self.tag(
                                json!({"event": "static_data_end_inferred", "offset": offset})
                            )
                        )?;
                    } else {
                        writeln!(self.out, "{}{:>6}  {:>12}  {:<6} {:<26} {:>9}  (version 2 stream: implied before the first page batch)",
                            self.lead(), "", offset, "libxc", "[STATIC_DATA_END]", "-")?;
                    }
                }
                Event::Gap { offset, len } => {
                    if self.opts.json {
                        writeln!(
                            self.out,
                            "{}",
                            self.tag(json!({"event": "gap", "offset": offset, "len": len}))
                        )?;
                    }
                }
            }
        }
        Ok(())
    }

    fn count(&mut self, d: &crate::decode::Diagnostic) {
        match d.severity {
            Severity::Error => self.outcome.errors += 1,
            Severity::Warning => self.outcome.warnings += 1,
            Severity::Note => self.outcome.notes += 1,
        }
        if d.kind == DiagKind::Unrecognised && d.severity == Severity::Error {
            self.outcome.refused = Some(d.message.clone());
        }
        *self.by_kind.entry(kind_name(d.kind)).or_default() += 1;
    }

    fn item(&mut self, item: &Item) -> io::Result<()> {
        self.outcome.records += 1;
        self.outcome.listed += 1;
        let no = self.outcome.records;
        let type_name = match item.kind {
            ItemKind::Record(t) if !t.is_known() => t.to_string(),
            k => k.name().to_string(),
        };
        let summary = item.info.summary();
        if self.opts.json {
            let mut v = json!({"event": "record", "no": no, "offset": item.offset, "layer": item.layer,
                "type": type_name, "length": item.body_length, "wire_len": item.wire_len,
                "lost": item.lost, "summary": summary});
            if let ItemKind::Record(t) = item.kind {
                v["type_number"] = json!(t.to_u32());
            }
            if let crate::decode::Info::PageData(p) = &item.info {
                v["pages"] = json!(p.data_pages);
                v["pfns"] = json!(p.count);
            }
            if self.opts.verbose {
                v["details"] = serde_json::to_value(item.info.details()).unwrap_or_default();
            }
            let v = self.tag(v);
            writeln!(self.out, "{v}")?;
        } else {
            writeln!(
                self.out,
                "{}{:>6}  {:>12}  {:<6} {:<26} {:>9}  {}",
                self.lead(),
                no,
                item.offset,
                item.layer.name(),
                type_name,
                item.body_length,
                summary
            )?;
            if self.opts.verbose {
                let mut tree = String::new();
                Field::write_tree(&item.info.details(), 2, &mut tree);
                self.out.write_all(tree.as_bytes())?;
            }
        }
        Ok(())
    }

    fn footer(&mut self) -> io::Result<()> {
        let o = &self.outcome;
        if self.opts.json {
            let mut v = json!({"event": "summary", "records": o.records, "bytes": o.bytes,
                "errors": o.errors, "warnings": o.warnings, "notes": o.notes,
                "diagnostics_by_kind": self.by_kind});
            if let Some(f) = &self.filter {
                v["listed"] = json!(o.listed);
                v["filter"] = json!(f);
            }
            writeln!(self.out, "{v}")?;
        } else {
            writeln!(
                self.out,
                "\n{} items in {} bytes; {} errors, {} warnings, {} notes",
                o.records, o.bytes, o.errors, o.warnings, o.notes
            )?;
            if let Some(f) = &self.filter {
                writeln!(
                    self.out,
                    "{} of them listed (-Y {})",
                    o.listed,
                    crate::decode::text::escape_str(f)
                )?;
            }
            for (k, n) in &self.by_kind {
                writeln!(self.out, "  {n:>6} {k}")?;
            }
        }
        Ok(())
    }
}

fn kind_name(k: DiagKind) -> &'static str {
    match k {
        DiagKind::MalformedBody => "malformed body",
        DiagKind::NonZeroPadding => "non-zero padding",
        DiagKind::OversizedRecord => "record over 128 MiB",
        DiagKind::UnexpectedRecord => "record not expected in this state",
        DiagKind::UnknownRecord => "unknown record type",
        DiagKind::BadHeader => "bad header",
        DiagKind::Truncated => "truncated stream",
        DiagKind::TrailingData => "trailing data",
        DiagKind::Gap => "capture gap",
        DiagKind::Resync => "bytes skipped to resynchronise",
        DiagKind::Unrecognised => "stream kind (detection, legacy, SSH)",
        DiagKind::NotInspected => "body over the inspection cap",
    }
}

/// `records` over a capture: an observer that lists the records of every
/// session direction, each line led by its time, session and direction.
/// The table header is written with the first line (or the footer), so a
/// capture found unreadable before any line leaves no output.
pub struct CaptureRecords<'a> {
    printer: Printer<'a>,
    t0: Option<u64>,
    header: bool,
    /// Under a filter: the model fed alongside (it numbers the checkpoints
    /// and keeps each session's [`RecordIndex`]) and a selector per session.
    select: Option<(Model, Vec<Selector>, Filter)>,
    /// The first write error; printing stops there.
    pub error: Option<io::Error>,
}

impl<'a> CaptureRecords<'a> {
    pub fn new(opts: Options, out: &'a mut dyn Write) -> Self {
        CaptureRecords {
            printer: Printer {
                opts,
                out,
                outcome: Outcome::default(),
                by_kind: BTreeMap::new(),
                ctx: None,
                filter: None,
            },
            t0: None,
            header: false,
            select: None,
            error: None,
        }
    }

    /// Lists only the records that pass `filter` (`text` is how it was
    /// given, for the footer).
    pub fn with_filter(mut self, filter: Filter, text: &str) -> Self {
        self.printer.filter = Some(text.to_string());
        self.select = Some((Model::with_record_index(), Vec::new(), filter));
        self
    }

    /// Writes the table header once, before the first line.
    fn header(&mut self) -> io::Result<()> {
        if self.header || self.printer.opts.json {
            return Ok(());
        }
        self.header = true;
        writeln!(
            self.printer.out,
            "{:>12}  {:>4} {:<7}  {:>6}  {:>12}  {:<6} {:<26} {:>9}  summary",
            "time", "sess", "dir", "no", "offset", "layer", "type", "length"
        )
    }

    /// The capture time shown as 0.
    pub fn set_t0(&mut self, ts: u64) {
        self.t0.get_or_insert(ts);
    }

    fn time(&self, ts: u64) -> f64 {
        ts.saturating_sub(self.t0.unwrap_or(ts)) as f64 / 1e9
    }

    /// Writes the footer and returns the counts.
    pub fn finish(mut self) -> io::Result<Outcome> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.printer.ctx = None;
        self.header()?;
        self.printer.footer()?;
        Ok(self.printer.outcome)
    }

    /// Under a filter: feeds `events` to the model, which indexes their
    /// records with their checkpoint, and says which of them pass.
    fn select(
        &mut self,
        s: SessionId,
        dir: Direction,
        first: u64,
        ts: u64,
        events: &[Event],
    ) -> Option<Vec<bool>> {
        let (model, selectors, filter) = self.select.as_mut()?;
        let len = |m: &Model| {
            m.sessions
                .get(s as usize)
                .map_or(0, |x| x.record_index.len())
        };
        let from = len(model);
        model.decoded_span(s, dir, first, ts, events);
        let Some(session) = model.sessions.get(s as usize) else {
            return Some(vec![false; events.len()]);
        };
        while selectors.len() <= s as usize {
            selectors.push(Selector::new(filter));
        }
        Some(selectors[s as usize].mask(&session.record_index, from, events))
    }

    /// The model fed alongside, under a filter.
    fn model(&mut self) -> Option<&mut Model> {
        self.select.as_mut().map(|(m, _, _)| m)
    }
}

impl Observer for CaptureRecords<'_> {
    fn start(&mut self, ts_ns: u64) {
        self.set_t0(ts_ns);
        if let Some(m) = self.model() {
            m.start(ts_ns);
        }
    }

    fn clock(&mut self, ts_ns: u64) {
        if let Some(m) = self.model() {
            m.clock(ts_ns);
        }
    }

    fn session(&mut self, s: &Session) {
        if let Some(m) = self.model() {
            m.session(s);
        }
        if self.error.is_some() {
            return;
        }
        let time = self.time(s.first_ts);
        let r = self.header();
        let r = r.and_then(|()| {
            if self.printer.opts.json {
                let v =
                    json!({"event": "session", "session": s.id, "time": time, "session_info": s});
                writeln!(self.printer.out, "{v}")
            } else {
                writeln!(
                    self.printer.out,
                    "{time:>12.6}  {:>4} {:<7}  session {}: {} -> {} ({}{})",
                    s.id,
                    "",
                    s.id,
                    s.primary,
                    s.secondary,
                    s.recognised_by,
                    if s.mid_stream { ", mid-stream" } else { "" }
                )
            }
        });
        if let Err(e) = r {
            self.error = Some(e);
        }
    }

    fn back_channel(&mut self, s: &Session) {
        if let Some(m) = self.model() {
            m.back_channel(s);
        }
    }

    fn decoded(&mut self, s: SessionId, dir: Direction, ts: u64, events: &[Event]) {
        self.decoded_span(s, dir, ts, ts, events);
    }

    fn decoded_span(
        &mut self,
        s: SessionId,
        dir: Direction,
        first: u64,
        ts: u64,
        events: &[Event],
    ) {
        // The model sees every event, also after a write error.
        let shown = self.select(s, dir, first, ts, events);
        if self.error.is_some() {
            return;
        }
        self.printer.ctx = Some(Ctx {
            session: s,
            dir,
            time: self.time(ts),
            first: self.time(first),
        });
        let r = self
            .header()
            .and_then(|()| self.printer.print(events, shown.as_deref()));
        if let Err(e) = r {
            self.error = Some(e);
        }
    }

    fn bytes(&mut self, s: SessionId, dir: Direction, offset: u64, data: &[u8]) {
        self.printer.outcome.bytes += data.len() as u64;
        if let Some(m) = self.model() {
            m.bytes(s, dir, offset, data);
        }
    }

    fn gap(&mut self, s: SessionId, d: Direction, ts: u64, offset: u64, len: u64, c: GapCause) {
        if let Some(m) = self.model() {
            m.gap(s, d, ts, offset, len, c);
        }
    }

    fn tcp(&mut self, s: SessionId, d: Direction, ev: &TcpEvent) {
        if let Some(m) = self.model() {
            m.tcp(s, d, ev);
        }
    }

    fn ended(&mut self, s: SessionId, d: Direction, stats: &DirectionStats) {
        if let Some(m) = self.model() {
            m.ended(s, d, stats);
        }
    }
}
