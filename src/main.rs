//! The `migscope` command: parses the command line, wires the stages
//! together for one job and maps its outcome to an exit status (0 clean,
//! 1 problems found, 2 input unreadable or refused).
//!
//! The options shared by every command that reads a capture ([`Common`]:
//! `-r`, the analysis and the stall options) are accepted before or after
//! the subcommand, as tshark users place them (`migscope -r F report` and
//! `migscope report -r F`); [`Common::merge`] joins the two places.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::{Args, Parser, Subcommand, ValueEnum};

use migscope::capture::{self, CaptureError, FileSource, Source};
use migscope::decode::Direction;
use migscope::report::{export::Export, records, summary::Summary, timeline};
use migscope::session::{self, Analyzer, Config, Observer};
use migscope::synth::cli::{parse_duration, parse_size, SynthArgs};

#[derive(Parser)]
#[command(
    name = "migscope",
    version,
    about = "Inspect Xen migration traffic: libxl/libxc stream v2, COLO and Remus checkpoints",
    after_help = "-r, the analysis options and the stall options go before or after the subcommand: `migscope -r F report` and `migscope report -r F` are the same."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    common: Common,
}

/// What only the terminal UI and the summary (no subcommand) take.
#[derive(Args, Debug, Clone, Default)]
struct InputArgs {
    /// Open a capture in the terminal UI (sessions, checkpoint timeline, handshake ladders).
    #[arg(value_name = "CAPTURE")]
    capture: Option<PathBuf>,
    /// Open the capture (CAPTURE or -r FILE) in the terminal UI and play it
    /// back with its own timing, SPEED times real time (default 1), with
    /// pause (space) and step by checkpoint (.).
    #[arg(long, value_name = "SPEED", num_args = 0..=1, default_missing_value = "1")]
    replay: Option<f64>,
    /// Capture live on an interface (needs the `live` feature and capture privileges).
    #[arg(short = 'i', long = "interface", value_name = "IFACE")]
    interface: Option<String>,
    /// Capture filter for -i, in BPF syntax (e.g. "tcp port 8002").
    #[arg(
        short = 'f',
        long = "filter",
        value_name = "BPF",
        requires = "interface"
    )]
    filter: Option<String>,
    /// With -i, also write every captured packet to this pcap file.
    #[arg(
        short = 'w',
        long = "write",
        value_name = "FILE",
        requires = "interface"
    )]
    write: Option<PathBuf>,
    /// For `records` and `report`, before or after them: what they list
    /// (`migscope records --help`, `migscope report --help`).
    #[arg(short = 'Y', long = "display-filter", value_name = "FILTER")]
    display_filter: Option<String>,
}

/// The options of every command that reads a capture (the terminal UI,
/// the summary, `records`, `report`, `export`), before or after the
/// subcommand.
#[derive(Args, Debug, Clone, Default)]
struct Common {
    /// Read this file: a pcap or pcapng capture ('-' for standard input;
    /// .gz is read too), or for `records` a raw stream file. Before or after
    /// the subcommand; instead of its FILE or CAPTURE argument.
    #[arg(short = 'r', long = "read", value_name = "FILE")]
    read: Option<PathBuf>,
    #[command(flatten)]
    analysis: AnalysisArgs,
    #[command(flatten)]
    stalls: StallArgs,
}

/// What counts as a slow phase or a stalled checkpoint (docs/FIGURES.md),
/// the same for `report` and the terminal UI.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Stall options (report and the terminal UI)")]
struct StallArgs {
    /// Floor of a phase, e.g. apply=200ms: shorter is never slow
    /// (repeatable; "off" disables one). Defaults: suspend, dirty_sync,
    /// memory, resume 100ms; device, apply 250ms; run off.
    #[arg(long = "slow", value_name = "PHASE=DURATION", value_parser = parse_slow)]
    slow: Vec<(migscope::model::Phase, Option<u64>)>,
    /// A slow phase must also exceed this multiple of the session's median
    /// for it (unless the evidence says it is slow: a receiver's zero
    /// window, a sender waiting for acknowledgements) [default: 4].
    #[arg(long, value_name = "FACTOR")]
    slow_factor: Option<f64>,
    /// Both directions silent this long in the middle of a checkpoint:
    /// stalled [default: 1s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    quiet: Option<u64>,
}

impl StallArgs {
    fn thresholds(&self) -> migscope::model::Thresholds {
        let mut t = migscope::model::Thresholds::default();
        for &(p, d) in &self.slow {
            t.absolute[p.index()] = d;
        }
        if let Some(f) = self.slow_factor {
            t.factor = f;
        }
        if let Some(q) = self.quiet {
            t.quiet_ns = q;
        }
        t
    }
}

/// Tunables of reassembly and recognition.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Analysis options")]
struct AnalysisArgs {
    /// Decode TCP connections to or from this port as migrations, whatever
    /// their first bytes (like Wireshark's "Decode As"); repeatable.
    #[arg(long = "port", value_name = "PORT")]
    ports: Vec<u16>,
    /// Out-of-order bytes held per direction before a hole is declared
    /// missing [default: 8M].
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    ooo_per_flow: Option<u64>,
    /// Out-of-order bytes held over all connections [default: 64M].
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    ooo_total: Option<u64>,
    /// Capture time a hole may stay open before its bytes count as missing
    /// [default: 1s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    gap_timeout: Option<u64>,
    /// A direction silent for this long is reported as idle [default: 1s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    idle: Option<u64>,
}

impl AnalysisArgs {
    fn config(&self) -> Config {
        let mut c = Config {
            ports: self.ports.clone(),
            ..Config::default()
        };
        if let Some(n) = self.ooo_per_flow {
            c.tcp.reassembly.flow_cap = usize::try_from(n).unwrap_or(usize::MAX);
        }
        if let Some(n) = self.ooo_total {
            c.tcp.global_cap = usize::try_from(n).unwrap_or(usize::MAX);
        }
        if let Some(d) = self.gap_timeout {
            c.tcp.reassembly.gap_timeout_ns = d;
        }
        if let Some(d) = self.idle {
            c.tcp.idle_ns = d;
        }
        c
    }
}

/// Joins an option given before the subcommand with the same one given
/// after it: refused when both are (as clap refuses one given twice).
fn once<T>(name: &str, before: Option<T>, after: Option<T>) -> Result<Option<T>, String> {
    match (before, after) {
        (Some(_), Some(_)) => Err(format!(
            "{name} is given both before and after the subcommand; give it once"
        )),
        (a, b) => Ok(a.or(b)),
    }
}

impl Common {
    /// Whether any of these options was given.
    fn given(&self) -> bool {
        let (a, s) = (&self.analysis, &self.stalls);
        self.read.is_some()
            || !a.ports.is_empty()
            || a.ooo_per_flow.is_some()
            || a.ooo_total.is_some()
            || a.gap_timeout.is_some()
            || a.idle.is_some()
            || !s.slow.is_empty()
            || s.slow_factor.is_some()
            || s.quiet.is_some()
    }

    /// The options given before the subcommand (`self`) joined with those
    /// given after it: repeatable ones add up (a later --slow for the same
    /// phase wins), others may be given once.
    fn merge(self, after: Common) -> Result<Common, String> {
        let (a, b) = (self.analysis, after.analysis);
        let (s, t) = (self.stalls, after.stalls);
        Ok(Common {
            read: once("-r", self.read, after.read)?,
            analysis: AnalysisArgs {
                ports: [a.ports, b.ports].concat(),
                ooo_per_flow: once("--ooo-per-flow", a.ooo_per_flow, b.ooo_per_flow)?,
                ooo_total: once("--ooo-total", a.ooo_total, b.ooo_total)?,
                gap_timeout: once("--gap-timeout", a.gap_timeout, b.gap_timeout)?,
                idle: once("--idle", a.idle, b.idle)?,
            },
            stalls: StallArgs {
                slow: [s.slow, t.slow].concat(),
                slow_factor: once("--slow-factor", s.slow_factor, t.slow_factor)?,
                quiet: once("--quiet", s.quiet, t.quiet)?,
            },
        })
    }

    /// The file to read: `positional` (the command's FILE or CAPTURE) or -r.
    fn file(&self, positional: Option<PathBuf>, what: &str) -> Result<Option<PathBuf>, String> {
        match (positional, &self.read) {
            (Some(p), Some(r)) => Err(format!(
                "the {what} is given twice, as {} and with -r {}; give it once",
                p.display(),
                r.display()
            )),
            (p, r) => Ok(p.or_else(|| r.clone())),
        }
    }

    /// Checks what clap cannot: the thresholds are usable.
    fn check(&self) -> Result<(), String> {
        match self.stalls.slow_factor {
            Some(f) if !(f.is_finite() && f >= 0.0) => Err(format!(
                "--slow-factor takes a non-negative number, not {f}"
            )),
            _ => Ok(()),
        }
    }
}

/// The filter language of `records -Y` and of the terminal UI's Records
/// view (`/`), as `migscope records --help` shows it.
const RECORDS_FILTER_HELP: &str = "\
List only the records that pass FILTER, in the filter language of the terminal UI's Records view (`/`): words separated by spaces; a record must pass every word, and several type: words mean any of those types.
  type:NAME   the record type, any case, e.g. type:PAGE_DATA (t: for short)
  layer:L     xl, libxl or libxc (l:)
  dir:D       fwd (the migration stream) or back (what the receiver sends back) (d:)
  ckpt:N      a record of checkpoint N, as `migscope report` numbers them (c:, checkpoint:, ckpt:#N); captures only: a raw stream file has no checkpoint numbers
  WORD        any other word: found in the type name or the one-line summary, any case
Example: -Y 'type:PAGE_DATA dir:fwd ckpt:23'. Records keep their unfiltered numbers; session lines stay; diagnostics and decoder markers are counted in the footer, not listed. -Y keeps the Records view's index of every record (52 bytes and its one-line summary, at most 96 bytes, per record).";

/// `report -Y`: the same language, with the one key that selects checkpoints.
const REPORT_FILTER_HELP: &str = "\
List only what concerns checkpoint N: -Y ckpt:N (also c:N, checkpoint:N, ckpt:#N), in the filter language of `migscope records -Y` and the terminal UI's Records view. Its other keys (type:, layer:, dir: and words) select records, not checkpoints, and are refused here: use them with `migscope records -Y`.";

/// The help heading of report's selection options.
const SELECTION: &str =
    "Selection (what the report lists; statistics stay those of whole sessions)";

#[derive(Subcommand)]
enum Command {
    /// List the records of a capture (every migration in it) or of a raw
    /// stream file (xl save file, libxl or libxc stream, COLO back channel).
    Records {
        /// A pcap/pcapng capture or a raw stream file ('-' for standard input); or give it with -r.
        #[arg(value_name = "FILE")]
        file: Option<PathBuf>,
        /// Show the field tree of every record.
        #[arg(short = 'V', long)]
        verbose: bool,
        /// Write JSON lines instead of text.
        #[arg(long)]
        json: bool,
        /// The raw stream file holds a COLO back channel (secondary -> primary).
        #[arg(long)]
        back_channel: bool,
        /// List only the records that pass FILTER, e.g. 'type:PAGE_DATA ckpt:23' (--help says more).
        #[arg(short = 'Y', long = "display-filter", value_name = "FILTER", long_help = RECORDS_FILTER_HELP)]
        display_filter: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Write one direction of a migration found in a capture to a file.
    Export {
        /// The pcap/pcapng capture ('-' for standard input); or give it with -r.
        #[arg(value_name = "CAPTURE")]
        capture: Option<PathBuf>,
        /// Session number, as `migscope -r` lists them.
        #[arg(long, default_value_t = 0)]
        session: u32,
        /// Which direction: the migration stream, or what the receiver sent back.
        #[arg(long, value_enum, default_value_t = DirArg::Forward)]
        dir: DirArg,
        /// Output file ('-' for standard output).
        #[arg(short = 'o', long, value_name = "FILE")]
        output: PathBuf,
        /// Write missing bytes as zeros, so file offsets are stream offsets.
        #[arg(long)]
        zero_fill: bool,
        #[command(flatten)]
        common: Common,
    },
    /// The checkpoint timeline of every migration in a capture (or live with
    /// -i): phases with their latency, statistics, stalls with TCP evidence.
    Report {
        /// The pcap/pcapng capture ('-' for standard input); or give it with -r.
        #[arg(value_name = "CAPTURE")]
        capture: Option<PathBuf>,
        /// Capture live on an interface instead (the `live` feature); Ctrl-C ends it.
        #[arg(short = 'i', long = "interface", value_name = "IFACE")]
        interface: Option<String>,
        /// Capture filter for -i, in BPF syntax.
        #[arg(
            short = 'f',
            long = "filter",
            value_name = "BPF",
            requires = "interface"
        )]
        filter: Option<String>,
        /// text (for a terminal), json (docs/report-json.md) or csv (one row per checkpoint, and one per plain migration with its downtime).
        #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
        format: ReportFormat,
        /// Exit with status 1 when a slow phase or a stalled checkpoint is found.
        #[arg(long)]
        fail_on_stall: bool,
        /// Checkpoints in the text report's "worst" list.
        #[arg(long, default_value_t = 5)]
        worst: usize,
        /// List only session N (as the report numbers them).
        #[arg(long, value_name = "N", help_heading = SELECTION)]
        session: Option<u32>,
        /// List only what overlaps the time from SECONDS since the capture's
        /// first packet on (e.g. 12.5, or 12500ms).
        #[arg(long, value_name = "SECONDS", value_parser = parse_seconds, help_heading = SELECTION)]
        from: Option<u64>,
        /// List only what overlaps the time until SECONDS since the capture's
        /// first packet.
        #[arg(long, value_name = "SECONDS", value_parser = parse_seconds, help_heading = SELECTION)]
        to: Option<u64>,
        /// List only checkpoint N: -Y ckpt:N (--help says more).
        #[arg(short = 'Y', long = "display-filter", value_name = "FILTER", long_help = REPORT_FILTER_HELP, help_heading = SELECTION)]
        display_filter: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Generate a synthetic migration (plain, Remus, COLO) as raw streams or a capture.
    Synth(Box<SynthArgs>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ReportFormat {
    Text,
    Json,
    Csv,
}

/// Parses PHASE=DURATION (or PHASE=off).
fn parse_slow(s: &str) -> Result<(migscope::model::Phase, Option<u64>), String> {
    let (p, d) = s
        .split_once('=')
        .ok_or_else(|| format!("expected PHASE=DURATION, e.g. apply=200ms, not {s:?}"))?;
    let phase = migscope::model::Phase::from_name(p.trim()).ok_or_else(|| {
        format!(
            "unknown phase {p:?}: one of suspend, dirty_sync, memory, device, apply, resume, run"
        )
    })?;
    if d.trim() == "off" {
        return Ok((phase, None));
    }
    Ok((phase, Some(parse_duration(d.trim())?)))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DirArg {
    /// Sender (primary) to receiver (secondary).
    Forward,
    /// Receiver to sender: xl messages or the COLO back channel.
    #[value(alias = "reverse")]
    Back,
}

/// One sentence for a command line that cannot run as given: exit 2.
fn refuse(why: impl std::fmt::Display) -> ExitCode {
    eprintln!("migscope: {why}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let input = cli.input;
    let Some(command) = cli.command else {
        return no_subcommand(input, cli.common);
    };
    // Before a subcommand only the options it shares with the others go.
    let name = match &command {
        Command::Records { .. } => "records",
        Command::Export { .. } => "export",
        Command::Report { .. } => "report",
        Command::Synth(_) => "synth",
    };
    if let Some(c) = &input.capture {
        return refuse(format!(
            "{} comes before the subcommand; give it after it (`migscope {name} {}`) or with -r (`migscope -r {} {name}`)",
            c.display(),
            c.display(),
            c.display()
        ));
    }
    if input.replay.is_some() {
        return refuse("--replay plays a capture back in the terminal UI, without a subcommand: `migscope CAPTURE --replay`");
    }
    if input.write.is_some() {
        return refuse("-w saves a live capture for the summary or the terminal UI, without a subcommand: `migscope -i IFACE -w FILE`");
    }
    if input.display_filter.is_some() && !matches!(name, "records" | "report") {
        return refuse(format!(
            "-Y selects what records and report list; `{name}` takes no filter"
        ));
    }
    if input.interface.is_some() && name != "report" {
        return refuse(format!(
            "-i captures live for report and the terminal UI; `{name}` reads a file: capture with `migscope -i IFACE -w FILE` first"
        ));
    }
    if name == "synth" && cli.common.given() {
        return refuse("synth takes its own options after it (`migscope synth --help`); -r, the analysis and the stall options are for commands that read a capture");
    }
    let before = cli.common;
    let merge = |after: Common| {
        before
            .clone()
            .merge(after)
            .and_then(|c| c.check().map(|_| c))
    };
    match command {
        Command::Records {
            file,
            verbose,
            json,
            back_channel,
            display_filter,
            common,
        } => {
            let common = match merge(common) {
                Ok(c) => c,
                Err(e) => return refuse(e),
            };
            let file = match common.file(file, "file") {
                Ok(Some(f)) => f,
                Ok(None) => {
                    return refuse(
                        "records needs a file: `migscope records FILE` or `migscope records -r FILE` ('-' for standard input)",
                    )
                }
                Err(e) => return refuse(e),
            };
            let opts = records::Options {
                verbose,
                json,
                back_channel,
            };
            let display_filter = match once("-Y", input.display_filter, display_filter) {
                Ok(f) => f,
                Err(e) => return refuse(e),
            };
            let filter = match display_filter.as_deref().map(parse_filter).transpose() {
                Ok(f) => f.map(|f| (f, display_filter.unwrap_or_default())),
                Err(e) => return refuse(e),
            };
            records_cmd(&file, opts, filter, &common.analysis)
        }
        Command::Export {
            capture,
            session,
            dir,
            output,
            zero_fill,
            common,
        } => {
            let common = match merge(common) {
                Ok(c) => c,
                Err(e) => return refuse(e),
            };
            let capture = match common.file(capture, "capture") {
                Ok(Some(f)) => f,
                Ok(None) => {
                    return refuse(
                        "export needs a capture: `migscope export CAPTURE -o FILE` or `migscope export -r CAPTURE -o FILE` ('-' for standard input)",
                    )
                }
                Err(e) => return refuse(e),
            };
            export_cmd(&capture, session, dir, &output, zero_fill, &common.analysis)
        }
        Command::Report {
            capture,
            interface,
            filter,
            format,
            fail_on_stall,
            worst,
            session,
            from,
            to,
            display_filter,
            common,
        } => {
            let common = match merge(common) {
                Ok(c) => c,
                Err(e) => return refuse(e),
            };
            let read = match common.file(capture, "capture") {
                Ok(r) => r,
                Err(e) => return refuse(e),
            };
            let interface = match once("-i", input.interface, interface) {
                Ok(i) => i,
                Err(e) => return refuse(e),
            };
            let filter = match once("-f", input.filter, filter) {
                Ok(f) => f,
                Err(e) => return refuse(e),
            };
            match (&read, &interface) {
                (Some(r), Some(i)) => {
                    return refuse(format!(
                        "report reads {} or captures live on {i}, not both; give one",
                        r.display()
                    ))
                }
                (None, None) => {
                    return refuse("report needs a capture: `migscope report CAPTURE`, `migscope report -r CAPTURE` ('-' for standard input) or `migscope report -i IFACE`")
                }
                _ => {}
            }
            let display_filter = match once("-Y", input.display_filter, display_filter) {
                Ok(f) => f,
                Err(e) => return refuse(e),
            };
            let selection = match selection(session, from, to, display_filter.as_deref()) {
                Ok(s) => s,
                Err(e) => return refuse(e),
            };
            let src = Input {
                read,
                interface,
                filter,
                write: None,
            };
            let format = match format {
                ReportFormat::Text => timeline::Format::Text,
                ReportFormat::Json => timeline::Format::Json,
                ReportFormat::Csv => timeline::Format::Csv,
            };
            let t = common.stalls.thresholds();
            report_cmd(
                &src,
                &common.analysis,
                format,
                &t,
                fail_on_stall,
                worst,
                &selection,
            )
        }
        Command::Synth(args) => match migscope::synth::cli::run(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("migscope: {e:#}");
                ExitCode::from(2)
            }
        },
    }
}

/// No subcommand: the terminal UI (CAPTURE, --replay, or -i on a
/// terminal) or the summary (-r, or -i into a pipe).
fn no_subcommand(input: InputArgs, common: Common) -> ExitCode {
    if let Err(e) = common.check() {
        return refuse(e);
    }
    if input.display_filter.is_some() {
        return refuse("-Y selects what `migscope records` and `migscope report` list; in the terminal UI, / filters the Records view");
    }
    if let (Some(c), Some(r)) = (&input.capture, &common.read) {
        return refuse(format!(
            "the capture is given twice, as {} and with -r {}; give it once",
            c.display(),
            r.display()
        ));
    }
    let file = input.capture.clone().or_else(|| common.read.clone());
    if let (Some(f), Some(i)) = (&file, &input.interface) {
        return refuse(format!(
            "read {} or capture live on {i}, not both; give one",
            f.display()
        ));
    }
    if let Some(speed) = input.replay {
        if input.interface.is_some() {
            return refuse("--replay plays back a capture file, not a live capture: `migscope CAPTURE --replay=4` or `migscope -r CAPTURE --replay=4`");
        }
        if file.is_none() {
            return refuse("--replay plays back a capture file; give one: `migscope CAPTURE --replay=4` or `migscope -r CAPTURE --replay=4`");
        }
        if !(speed.is_finite() && speed > 0.0) {
            return refuse("--replay takes a positive speed, e.g. --replay=10");
        }
    }
    let src = Input {
        read: file,
        interface: input.interface,
        filter: input.filter,
        write: input.write,
    };
    let tui = input.capture.is_some()
        || input.replay.is_some()
        || (src.interface.is_some() && io::stdout().is_terminal());
    if tui {
        ui_cmd(&src, &common, input.replay)
    } else {
        summary_cmd(&src, &common.analysis)
    }
}

/// What `report` lists, from its selection options.
fn selection(
    session: Option<u32>,
    from: Option<u64>,
    to: Option<u64>,
    filter: Option<&str>,
) -> Result<timeline::Selection, String> {
    if let (Some(f), Some(t)) = (from, to) {
        if f > t {
            return Err(format!(
                "--from {} s comes after --to {} s; give the earlier time to --from",
                f as f64 / 1e9,
                t as f64 / 1e9
            ));
        }
    }
    let mut checkpoint = None;
    if let Some(text) = filter {
        let f = parse_filter(text)?;
        if !(f.types.is_empty() && f.layer.is_none() && f.dir.is_none() && f.text.is_empty()) {
            return Err(format!(
                "report -Y takes ckpt:N only, and {text:?} selects records (type:, layer:, dir:, words); use it with `migscope records -Y`"
            ));
        }
        checkpoint = f.checkpoint;
    }
    Ok(timeline::Selection {
        session,
        from,
        to,
        checkpoint,
    })
}

/// Parses a time since the first packet: seconds (`12.5`) or a duration
/// with its unit (`12500ms`); in ns.
fn parse_seconds(s: &str) -> Result<u64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 && v * 1e9 < u64::MAX as f64 => Ok((v * 1e9) as u64),
        Ok(_) => Err(format!(
            "{s:?} is not a time since the first packet (seconds, 0 or more)"
        )),
        Err(_) => parse_duration(s),
    }
}

/// Parses a display filter (-Y), with a sentence naming it when it does
/// not parse.
fn parse_filter(text: &str) -> Result<migscope::model::records::Filter, String> {
    migscope::model::records::Filter::parse(text).map_err(|e| {
        format!("the filter {text:?} does not parse: {e}; `migscope records --help` describes the language")
    })
}

/// Where packets come from.
#[derive(Debug, Clone, Default)]
struct Input {
    read: Option<PathBuf>,
    interface: Option<String>,
    filter: Option<String>,
    write: Option<PathBuf>,
}

/// Sets a flag on Ctrl-C so that the analysis stops reading and reports.
fn stop_flag() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    // If a handler cannot be installed, Ctrl-C simply ends the process.
    let _ = ctrlc::set_handler(move || s.store(true, Ordering::Relaxed));
    stop
}

/// Opens what -r or -i names.
fn open_input(input: &Input) -> Result<Source, CaptureError> {
    if let Some(iface) = &input.interface {
        let live = capture::live::open(iface, input.filter.as_deref(), input.write.as_deref())?;
        return Ok(Source::Live(live));
    }
    let path = input.read.as_deref().unwrap_or(Path::new("-"));
    Ok(Source::File(FileSource::open(path)?))
}

/// Runs the analysis over a source; prints reading problems on standard
/// error.
fn analyse<O: Observer>(src: &mut Source, analyzer: &mut Analyzer<O>) -> ExitStatus {
    analyse_with(src, analyzer, true).0
}

/// As [`analyse`], also returning the reading problems as sentences; with
/// `echo` false they are printed only if nothing else will say them (the
/// input was unreadable), for an output that carries them itself (the text
/// report), so that each is said once.
fn analyse_with<O: Observer>(
    src: &mut Source,
    analyzer: &mut Analyzer<O>,
    echo: bool,
) -> (ExitStatus, Vec<String>) {
    let stop = stop_flag();
    let problems = session::feed(src, analyzer, &stop);
    analyzer.finish();
    let mut problems: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    problems.extend(analyzer.stats().clock_problem());
    let packets = analyzer.stats().packets;
    if let (Source::File(f), 0, true) = (&*src, packets, problems.is_empty()) {
        // A file header and nothing after it: as unreadable as an empty file.
        problems.push(format!(
            "{} holds no packets (only its file header); check that the capture ran while the migration did, and its filter",
            f.name()
        ));
    }
    let status = match (packets, problems.is_empty()) {
        (0, false) => ExitStatus::Unreadable,
        (_, false) => ExitStatus::Problems,
        (_, true) => ExitStatus::Clean,
    };
    if echo || status == ExitStatus::Unreadable {
        for p in &problems {
            eprintln!("migscope: {p}");
        }
    }
    let mut status = status;
    if let Source::Live(l) = src {
        if let Ok(st) = l.stats() {
            eprintln!(
                "migscope: {} packets captured on {}; {} dropped by the kernel, {} by the interface",
                l.packets(),
                l.iface(),
                st.dropped,
                st.if_dropped
            );
            if st.dropped + st.if_dropped > 0 {
                status = status.max(ExitStatus::Problems);
            }
        }
        if let Err(e) = l.flush() {
            eprintln!("migscope: {e}");
        }
    }
    (status, problems)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum ExitStatus {
    Clean,
    Problems,
    Unreadable,
}

impl From<ExitStatus> for ExitCode {
    fn from(s: ExitStatus) -> ExitCode {
        ExitCode::from(s as u8)
    }
}

fn report_cmd(
    input: &Input,
    analysis: &AnalysisArgs,
    format: timeline::Format,
    t: &migscope::model::Thresholds,
    fail_on_stall: bool,
    worst: usize,
    selection: &timeline::Selection,
) -> ExitCode {
    let mut src = match open_input(input) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("migscope: {e}");
            return ExitCode::from(2);
        }
    };
    let source = src.name().to_string();
    let mut analyzer = Analyzer::new(analysis.config(), migscope::model::Model::new());
    // The text report lists the reading problems itself.
    let echo = format != timeline::Format::Text;
    let (status, problems) = analyse_with(&mut src, &mut analyzer, echo);
    if status == ExitStatus::Unreadable {
        return status.into();
    }
    let stats = analyzer.stats();
    let model = analyzer.into_observer();
    if let Some(n) = selection.session {
        if model.sessions.len() <= n as usize {
            let found = model.sessions.len();
            return refuse(format!(
                "{} has no session {n} ({found} migration session{} found; `migscope report` without --session lists them)",
                source,
                if found == 1 { "" } else { "s" }
            ));
        }
    }
    if let Some(n) = selection.checkpoint {
        let has = |s: &migscope::model::SessionModel| {
            selection.session.map_or(true, |k| k == s.info.id)
                && s.listed_checkpoints().iter().any(|c| c.index == n)
        };
        if !model.sessions.iter().any(has) {
            return refuse(format!(
                "{source} has no checkpoint {n}{}; `migscope report` lists how many each session has",
                selection
                    .session
                    .map(|k| format!(" in session {k}"))
                    .unwrap_or_default()
            ));
        }
    }
    // Decoder diagnostics and missing bytes are problems, as in the summary.
    let trouble = model.sessions.iter().any(|m| {
        m.dirs
            .iter()
            .any(|d| d.errors + d.warnings > 0 || d.gap_bytes > 0)
    });
    let status = if trouble {
        status.max(ExitStatus::Problems)
    } else {
        status
    };
    let ctx = timeline::Context {
        source: &source,
        stats: &stats,
        problems: &problems,
        thresholds: t,
        capture_ended: true,
        worst,
    };
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    match timeline::write_selected(&model, &ctx, format, selection, &mut out) {
        Ok(stalls) if stalls > 0 && fail_on_stall => ExitCode::from(1),
        Ok(_) if fail_on_stall => ExitCode::SUCCESS,
        Ok(_) => status.into(),
        Err(e) => write_failed(e),
    }
}

fn ui_cmd(input: &Input, common: &Common, replay: Option<f64>) -> ExitCode {
    let (src, total) = if let Some(path) = &input.read {
        let total = std::fs::metadata(path).ok().map(|m| m.len());
        match FileSource::open(path) {
            Ok(f) => {
                let total = if f.compressed() { None } else { total };
                (Source::File(f), total)
            }
            Err(e) => return refuse(e),
        }
    } else {
        match open_input(input) {
            Ok(s) => (s, None),
            Err(e) => return refuse(e),
        }
    };
    if !io::stdout().is_terminal() {
        return refuse("the terminal UI needs a terminal; use `migscope report` or `migscope -r` for text output");
    }
    match migscope::ui::run(
        src,
        common.analysis.config(),
        common.stalls.thresholds(),
        total,
        replay,
        &export_report,
    ) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => refuse(format!("the terminal UI failed: {e}")),
    }
}

/// The terminal UI's `e`: the report module writes what the UI exports.
fn export_report(
    m: &migscope::model::Model,
    x: &migscope::ui::ExportInput<'_>,
    format: migscope::ui::ExportFormat,
    out: &mut dyn Write,
) -> io::Result<()> {
    let ctx = timeline::Context {
        source: x.source,
        stats: x.stats,
        problems: x.problems,
        thresholds: x.thresholds,
        capture_ended: x.capture_ended,
        worst: 5,
    };
    let format = match format {
        migscope::ui::ExportFormat::Json => timeline::Format::Json,
        migscope::ui::ExportFormat::Csv => timeline::Format::Csv,
    };
    timeline::write(m, &ctx, format, out).map(|_| ())
}

fn summary_cmd(input: &Input, analysis: &AnalysisArgs) -> ExitCode {
    if input.read.is_none() && input.interface.is_none() {
        eprintln!("migscope: nothing to read; give a capture with -r FILE (or -r - for standard input), or an interface with -i IFACE; see migscope --help");
        return ExitCode::from(2);
    }
    let mut src = match open_input(input) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("migscope: {e}");
            return ExitCode::from(2);
        }
    };
    let stdout = io::stdout();
    let mut analyzer = Analyzer::new(analysis.config(), Summary::new(stdout.lock()));
    let mut status = analyse(&mut src, &mut analyzer);
    if status == ExitStatus::Unreadable {
        return status.into();
    }
    let stats = analyzer.stats();
    let mut summary = analyzer.into_observer();
    let result = match summary.error.take() {
        Some(e) => Err(e),
        None => summary.report(&stats),
    };
    match result {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        Err(e) => {
            eprintln!("migscope: writing the report failed: {}", describe(&e));
            // As for every other output that cannot be written: 2.
            status = status.max(ExitStatus::Unreadable);
        }
        Ok(()) => {}
    }
    let trouble = summary.sessions.iter().any(|t| {
        t.dirs
            .iter()
            .any(|d| d.errors + d.warnings > 0 || d.gap_bytes > 0)
    });
    if trouble {
        status = status.max(ExitStatus::Problems);
    }
    status.into()
}

/// Whether the first bytes are those of a capture file (pcap in either byte
/// order or resolution, pcapng, or gzip).
fn is_capture(first: &[u8]) -> bool {
    const MAGICS: [[u8; 4]; 5] = [
        [0xd4, 0xc3, 0xb2, 0xa1],
        [0xa1, 0xb2, 0xc3, 0xd4],
        [0x4d, 0x3c, 0xb2, 0xa1],
        [0xa1, 0xb2, 0x3c, 0x4d],
        [0x0a, 0x0d, 0x0d, 0x0a],
    ];
    first.starts_with(&[0x1f, 0x8b]) || MAGICS.iter().any(|m| first.starts_with(m))
}

/// Opens a file or standard input and reads its first bytes without losing
/// them; gzip-compressed input is decompressed (a capture or a raw stream).
fn open_peek(file: &Path) -> io::Result<(Box<dyn Read + Send>, Vec<u8>)> {
    let input: Box<dyn Read + Send> = if file.as_os_str() == "-" {
        Box::new(io::stdin())
    } else {
        Box::new(File::open(file)?)
    };
    let (input, head) = peek(input)?;
    if head.starts_with(&[0x1f, 0x8b]) {
        return peek(Box::new(flate2::read::MultiGzDecoder::new(input)));
    }
    Ok((input, head))
}

fn peek(mut input: Box<dyn Read + Send>) -> io::Result<(Box<dyn Read + Send>, Vec<u8>)> {
    let mut head = Vec::with_capacity(4);
    (&mut input).take(4).read_to_end(&mut head)?;
    let rest = io::Cursor::new(head.clone()).chain(input);
    Ok((Box::new(rest), head))
}

fn records_cmd(
    file: &Path,
    opts: records::Options,
    filter: Option<(migscope::model::records::Filter, String)>,
    analysis: &AnalysisArgs,
) -> ExitCode {
    if file.is_dir() {
        return refuse(format!(
            "cannot open {}: it is a directory; give a capture or stream file",
            file.display()
        ));
    }
    let (mut input, head) = match open_peek(file) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("migscope: cannot open {}: {}", file.display(), describe(&e));
            return ExitCode::from(2);
        }
    };
    if head.is_empty() {
        // As `report` and `-r` say it: nothing to read is not a stream that
        // ends early.
        return refuse(format!(
            "{} is empty, so there are no packets or records to read; check that it was written out",
            if file.as_os_str() == "-" {
                "standard input".to_string()
            } else {
                file.display().to_string()
            }
        ));
    }
    let stdout = io::stdout().lock();
    let mut out = BufWriter::with_capacity(1 << 16, stdout);
    if is_capture(&head) && !opts.back_channel {
        let name = if file.as_os_str() == "-" {
            "standard input".to_string()
        } else {
            file.display().to_string()
        };
        let mut src = match FileSource::from_reader(input, name) {
            Ok(s) => Source::File(s),
            Err(e) => {
                eprintln!("migscope: {e}");
                return ExitCode::from(2);
            }
        };
        let mut printer = records::CaptureRecords::new(opts, &mut out);
        if let Some((f, text)) = filter {
            printer = printer.with_filter(f, &text);
        }
        let mut analyzer = Analyzer::new(analysis.config(), printer);
        let status = analyse(&mut src, &mut analyzer);
        if status == ExitStatus::Unreadable {
            return status.into();
        }
        let result = analyzer.into_observer().finish();
        let result = result.and_then(|o| out.flush().map(|_| o));
        return match result {
            Err(e) => write_failed(e),
            Ok(o) if o.errors + o.warnings > 0 => status.max(ExitStatus::Problems).into(),
            Ok(_) => status.into(),
        };
    }
    if filter.as_ref().is_some_and(|(f, _)| f.checkpoint.is_some()) {
        return refuse(format!(
            "-Y ckpt: needs a capture: {} is a raw stream file, whose records have no checkpoint numbers here; give the capture it came from, or filter with type:, layer:, dir: and words",
            file.display()
        ));
    }
    let filter = filter.as_ref().map(|(f, t)| (f, t.as_str()));
    let result =
        records::run(&mut input, opts, filter, &mut out).and_then(|o| out.flush().map(|_| o));
    match result {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "migscope: reading {} failed: {}",
                file.display(),
                describe(&e)
            );
            ExitCode::from(2)
        }
        Ok(o) => {
            if let Some(why) = o.refused {
                eprintln!("migscope: {}: {why}", file.display());
                ExitCode::from(2)
            } else if o.errors + o.warnings > 0 {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
    }
}

fn write_failed(e: io::Error) -> ExitCode {
    if e.kind() == io::ErrorKind::BrokenPipe {
        return ExitCode::SUCCESS;
    }
    eprintln!("migscope: writing the output failed: {}", describe(&e));
    ExitCode::from(2)
}

/// Where `export` writes: standard output, or a file created when its
/// first byte is written (or once the session turns out to have no bytes
/// that way), so that a capture without the session leaves no empty file
/// behind and a file of that name is kept.
enum ExportOut {
    Stdout(io::StdoutLock<'static>),
    File {
        path: PathBuf,
        file: Option<File>,
        /// Creating the file failed (the error went to the writer).
        failed: bool,
    },
}

impl ExportOut {
    /// The writer, creating the file on first use.
    fn writer(&mut self) -> io::Result<&mut dyn Write> {
        match self {
            ExportOut::Stdout(s) => Ok(s),
            ExportOut::File { path, file, failed } => {
                let f = match file.take() {
                    Some(f) => f,
                    None => File::create(&*path).inspect_err(|_| *failed = true)?,
                };
                Ok(file.insert(f))
            }
        }
    }
}

impl Write for ExportOut {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer()?.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            ExportOut::Stdout(s) => s.flush(),
            ExportOut::File { file: Some(f), .. } => f.flush(),
            ExportOut::File { file: None, .. } => Ok(()),
        }
    }
}

fn export_cmd(
    capture: &Path,
    session: u32,
    dir: DirArg,
    output: &Path,
    zero_fill: bool,
    analysis: &AnalysisArgs,
) -> ExitCode {
    let mut src = match FileSource::open(capture) {
        Ok(s) => Source::File(s),
        Err(e) => return refuse(e),
    };
    let out = if output.as_os_str() == "-" {
        ExportOut::Stdout(io::stdout().lock())
    } else {
        // What can be told before reading the capture is told now.
        let cannot = |why: &str| refuse(format!("cannot create {}: {why}", output.display()));
        if output.is_dir() {
            return cannot("it is a directory; give a file name");
        }
        match output.parent() {
            Some(p) if !p.as_os_str().is_empty() && !p.is_dir() => {
                return cannot("its directory does not exist; check the path")
            }
            _ => {}
        }
        // Whether it can be written, without changing a file of that name
        // (or leaving one).
        let probe = if output.exists() {
            std::fs::OpenOptions::new()
                .write(true)
                .open(output)
                .map(drop)
        } else {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(output)
                .and_then(|_| std::fs::remove_file(output))
        };
        if let Err(e) = probe {
            return cannot(&describe(&e));
        }
        ExportOut::File {
            path: output.into(),
            file: None,
            failed: false,
        }
    };
    let direction = match dir {
        DirArg::Forward => Direction::Forward,
        DirArg::Back => Direction::Reverse,
    };
    let export = Export::new(
        session,
        direction,
        zero_fill,
        BufWriter::with_capacity(1 << 20, out),
    );
    let mut analyzer = Analyzer::new(analysis.config(), export);
    let mut status = analyse(&mut src, &mut analyzer);
    let sessions = analyzer.sessions().len();
    let mut export = analyzer.into_observer();
    let flushed = export.flush();
    let found = export.found.take();
    let gaps = std::mem::take(&mut export.gaps);
    let (written, first_offset) = (export.written, export.first_offset);
    // Without the writer's drop, which would write again what failed.
    let (mut out, _) = export.into_inner().into_parts();
    if let Err(e) = flushed {
        if e.kind() == io::ErrorKind::BrokenPipe || output.as_os_str() == "-" {
            return write_failed(e);
        }
        if let ExportOut::File { failed: true, .. } = out {
            return refuse(format!(
                "cannot create {}: {}",
                output.display(),
                describe(&e)
            ));
        }
        // A stream cut short looks like a stream that ended: do not leave it
        // (only regular files are removed, never a device like /dev/full).
        let removed = std::fs::metadata(output).is_ok_and(|m| m.is_file())
            && std::fs::remove_file(output).is_ok();
        return refuse(format!(
            "writing {} failed: {}; {}",
            output.display(),
            describe(&e),
            if removed {
                "the incomplete file was removed"
            } else {
                "what it holds is incomplete"
            }
        ));
    }
    if status == ExitStatus::Unreadable {
        return status.into();
    }
    let Some(found) = found else {
        return refuse(format!(
            "{} has no session {session} ({sessions} migration session{} found; `migscope -r {}` lists them)",
            capture.display(),
            if sessions == 1 { "" } else { "s" },
            capture.display()
        ));
    };
    // A direction without bytes is an empty file.
    if let Err(e) = out.writer() {
        return refuse(format!(
            "cannot create {}: {}",
            output.display(),
            describe(&e)
        ));
    }
    let missing: u64 = gaps.iter().map(|g| g.len).sum();
    eprintln!(
        "migscope: session {session} {} ({} -> {}): wrote {} bytes from stream offset {}; {} gap{} ({} bytes missing{})",
        match dir {
            DirArg::Forward => "forward",
            DirArg::Back => "back",
        },
        found.primary,
        found.secondary,
        written,
        first_offset.unwrap_or(0),
        gaps.len(),
        if gaps.len() == 1 { "" } else { "s" },
        missing,
        if zero_fill { ", written as zeros" } else { ", left out" }
    );
    for g in &gaps {
        eprintln!(
            "migscope:   gap at stream offset {}: {} bytes ({})",
            g.offset,
            g.len,
            g.cause.name()
        );
    }
    if !gaps.is_empty() {
        status = status.max(ExitStatus::Problems);
    }
    status.into()
}

fn describe(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no such file; check the path".into(),
        io::ErrorKind::PermissionDenied => "permission denied; check the file's permissions".into(),
        // EISDIR and ENOSPC (io::ErrorKind::IsADirectory and StorageFull
        // are newer than our MSRV).
        _ if e.raw_os_error() == Some(21) => "it is a directory; give a file".into(),
        _ if e.raw_os_error() == Some(28) => {
            "no space left on the device; free some space or write elsewhere".into()
        }
        _ => e.to_string(),
    }
}
