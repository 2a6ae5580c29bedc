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

use std::collections::BTreeMap;
use std::io::{self, Read, Write};

use serde_json::json;

use crate::decode::detail::Field;
use crate::decode::{Decoder, DiagKind, Direction, Event, Item, ItemKind, Severity};

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
}

/// Size of the reads from the input.
const READ_CHUNK: usize = 1 << 20;

/// Decodes `input` and writes the listing to `out`.
pub fn run(input: &mut dyn Read, opts: Options, out: &mut dyn Write) -> io::Result<Outcome> {
    let mut dec = if opts.back_channel {
        Decoder::back_channel()
    } else {
        Decoder::new(Direction::Forward)
    };
    let mut printer = Printer {
        opts,
        out,
        outcome: Outcome::default(),
        by_kind: BTreeMap::new(),
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
        dec.push(&buf[..n], &mut events);
        printer.print(&events)?;
        events.clear();
    }
    dec.finish(&mut events);
    printer.print(&events)?;
    printer.footer()?;
    Ok(printer.outcome)
}

struct Printer<'a> {
    opts: Options,
    out: &'a mut dyn Write,
    outcome: Outcome,
    by_kind: BTreeMap<&'static str, u64>,
}

impl Printer<'_> {
    fn print(&mut self, events: &[Event]) -> io::Result<()> {
        for ev in events {
            match ev {
                Event::Item(item) => self.item(item)?,
                Event::Diagnostic(d) => {
                    match d.severity {
                        Severity::Error => self.outcome.errors += 1,
                        Severity::Warning => self.outcome.warnings += 1,
                        Severity::Note => self.outcome.notes += 1,
                    }
                    if d.kind == DiagKind::Unrecognised && d.severity == Severity::Error {
                        self.outcome.refused = Some(d.message.clone());
                    }
                    *self.by_kind.entry(kind_name(d.kind)).or_default() += 1;
                    if self.opts.json {
                        let v = json!({"event": "diagnostic", "severity": d.severity, "kind": d.kind,
                            "offset": d.offset, "message": d.message});
                        writeln!(self.out, "{v}")?;
                    } else {
                        writeln!(
                            self.out,
                            "{:>6}  {:>12}  ! {}: {}",
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
                        let v = json!({"event": "resync", "offset": offset, "skipped": skipped,
                            "anchor": format!("{anchor:?}")});
                        writeln!(self.out, "{v}")?;
                    }
                }
                Event::LayerSwitch { offset, from, to } => {
                    if self.opts.json {
                        let v = json!({"event": "layer_switch", "offset": offset, "from": from, "to": to});
                        writeln!(self.out, "{v}")?;
                    }
                }
                Event::StaticDataEndInferred { offset } => {
                    if self.opts.json {
                        writeln!(
                            self.out,
                            "{}",
                            json!({"event": "static_data_end_inferred", "offset": offset})
                        )?;
                    } else {
                        writeln!(self.out, "{:>6}  {:>12}  {:<6} {:<26} {:>9}  (version 2 stream: implied before the first page batch)",
                            "", offset, "libxc", "[STATIC_DATA_END]", "-")?;
                    }
                }
                Event::Gap { offset, len } => {
                    if self.opts.json {
                        writeln!(
                            self.out,
                            "{}",
                            json!({"event": "gap", "offset": offset, "len": len})
                        )?;
                    }
                }
            }
        }
        Ok(())
    }

    fn item(&mut self, item: &Item) -> io::Result<()> {
        self.outcome.records += 1;
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
            if self.opts.verbose {
                v["details"] = serde_json::to_value(item.info.details()).unwrap_or_default();
            }
            writeln!(self.out, "{v}")?;
        } else {
            writeln!(
                self.out,
                "{:>6}  {:>12}  {:<6} {:<26} {:>9}  {}",
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
            let v = json!({"event": "summary", "records": o.records, "bytes": o.bytes,
                "errors": o.errors, "warnings": o.warnings, "notes": o.notes,
                "diagnostics_by_kind": self.by_kind});
            writeln!(self.out, "{v}")?;
        } else {
            writeln!(
                self.out,
                "\n{} items in {} bytes; {} errors, {} warnings, {} notes",
                o.records, o.bytes, o.errors, o.warnings, o.notes
            )?;
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
