//! The command line's arguments (clap): the options shared by every command
//! that reads a capture ([`Common`]), each subcommand's own, and the parsers
//! of their values.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::decode::Family;
use crate::session::Config;
#[cfg(feature = "synth")]
use crate::synth::cli::SynthArgs;

use super::units::{parse_duration, parse_size};

#[derive(Parser)]
#[command(
    name = "migscope",
    version,
    about = "Inspect Xen migration traffic: libxl/libxc stream v2, COLO and Remus checkpoints",
    after_help = "-r, the analysis options and the stall options go before or after the subcommand: `migscope -r F report` and `migscope report -r F` are the same."
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
    #[command(flatten)]
    pub(crate) input: InputArgs,
    #[command(flatten)]
    pub(crate) common: Common,
}

/// What only the terminal UI and the summary (no subcommand) take.
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct InputArgs {
    /// Open a capture in the terminal UI (sessions, checkpoint timeline, handshake ladders).
    #[arg(value_name = "CAPTURE")]
    pub(crate) capture: Option<PathBuf>,
    /// Open the capture (CAPTURE or -r FILE) in the terminal UI and play it
    /// back with its own timing, SPEED times real time (default 1), with
    /// pause (space) and step by checkpoint (.).
    #[arg(long, value_name = "SPEED", num_args = 0..=1, default_missing_value = "1")]
    pub(crate) replay: Option<f64>,
    /// Capture live on an interface (needs the `live` feature and capture privileges).
    #[arg(short = 'i', long = "interface", value_name = "IFACE")]
    pub(crate) interface: Option<String>,
    /// Capture filter for -i, in BPF syntax (e.g. "tcp port 8002").
    #[arg(
        short = 'f',
        long = "filter",
        value_name = "BPF",
        requires = "interface"
    )]
    pub(crate) filter: Option<String>,
    /// With -i, also write every captured packet to this pcap file.
    #[arg(
        short = 'w',
        long = "write",
        value_name = "FILE",
        requires = "interface"
    )]
    pub(crate) write: Option<PathBuf>,
    /// For `records` and `report`, before or after them: what they list
    /// (`migscope records --help`, `migscope report --help`).
    #[arg(short = 'Y', long = "display-filter", value_name = "FILTER")]
    pub(crate) display_filter: Option<String>,
}

/// The options of every command that reads a capture (the terminal UI,
/// the summary, `records`, `report`, `export`), before or after the
/// subcommand.
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct Common {
    /// Read this file: a pcap or pcapng capture ('-' for standard input;
    /// .gz is read too), or for `records` a raw stream file. Before or after
    /// the subcommand; instead of its FILE or CAPTURE argument.
    #[arg(short = 'r', long = "read", value_name = "FILE")]
    pub(crate) read: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) analysis: AnalysisArgs,
    #[command(flatten)]
    pub(crate) stalls: StallArgs,
}

/// What counts as a slow phase or a stalled checkpoint (docs/FIGURES.md),
/// the same for `report` and the terminal UI.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Stall options (report and the terminal UI)")]
pub(crate) struct StallArgs {
    /// Floor of a phase, e.g. apply=200ms: shorter is never slow
    /// (repeatable; "off" disables one). Defaults: suspend, dirty_sync,
    /// memory, resume 100ms; device, apply 250ms; run off; QEMU COLO:
    /// reply, stop, ram, received 100ms; device_state, loaded 250ms;
    /// interval off.
    #[arg(long = "slow", value_name = "PHASE=DURATION", value_parser = parse_slow)]
    pub(crate) slow: Vec<(crate::model::Phase, Option<u64>)>,
    /// A slow phase must also exceed this multiple of the session's median
    /// for it (unless the evidence says it is slow: a receiver's zero
    /// window, a sender waiting for acknowledgements) [default: 4].
    #[arg(long, value_name = "FACTOR")]
    pub(crate) slow_factor: Option<f64>,
    /// Both directions silent this long in the middle of a checkpoint:
    /// stalled [default: 1s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) quiet: Option<u64>,
}

impl StallArgs {
    pub(crate) fn thresholds(&self) -> crate::model::Thresholds {
        let mut t = crate::model::Thresholds::default();
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
pub(crate) struct AnalysisArgs {
    /// Decode TCP connections to or from this port as migrations, whatever
    /// their first bytes (like Wireshark's "Decode As"); repeatable.
    /// `qemu:PORT` decodes them as QEMU streams, `xen:PORT` as Xen's; a bare
    /// PORT is QEMU's when the stream opens with "QEVM", else Xen's.
    #[arg(long = "port", value_name = "[qemu:|xen:]PORT", value_parser = parse_port)]
    pub(crate) ports: Vec<(Option<Family>, u16)>,
    /// Out-of-order bytes held per direction before a hole is declared
    /// missing [default: 8M].
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub(crate) ooo_per_flow: Option<u64>,
    /// Out-of-order bytes held over all connections [default: 64M].
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub(crate) ooo_total: Option<u64>,
    /// Capture time a hole may stay open before its bytes count as missing
    /// [default: 1s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) gap_timeout: Option<u64>,
    /// A direction silent for this long is reported as idle [default: 1s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) idle: Option<u64>,
}

/// `[qemu:|xen:]PORT`.
fn parse_port(s: &str) -> Result<(Option<Family>, u16), String> {
    let (family, port) = match s.split_once(':') {
        Some(("qemu", p)) => (Some(Family::Qemu), p),
        Some(("xen", p)) => (Some(Family::Xen), p),
        Some((f, _)) => return Err(format!("unknown family {f:?} (qemu or xen)")),
        None => (None, s),
    };
    let port = port
        .parse()
        .map_err(|_| format!("{port:?} is not a TCP port (1-65535)"))?;
    Ok((family, port))
}

impl AnalysisArgs {
    pub(crate) fn config(&self) -> Config {
        let mut c = Config {
            ports: self.ports.iter().map(|p| p.1).collect(),
            qemu_ports: self
                .ports
                .iter()
                .filter(|p| p.0 == Some(Family::Qemu))
                .map(|p| p.1)
                .collect(),
            xen_ports: self
                .ports
                .iter()
                .filter(|p| p.0 == Some(Family::Xen))
                .map(|p| p.1)
                .collect(),
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
pub(crate) fn once<T>(
    name: &str,
    before: Option<T>,
    after: Option<T>,
) -> Result<Option<T>, String> {
    match (before, after) {
        (Some(_), Some(_)) => Err(format!(
            "{name} is given both before and after the subcommand; give it once"
        )),
        (a, b) => Ok(a.or(b)),
    }
}

impl Common {
    /// Whether any of these options was given.
    pub(crate) fn given(&self) -> bool {
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
    pub(crate) fn merge(self, after: Common) -> Result<Common, String> {
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
    pub(crate) fn file(
        &self,
        positional: Option<PathBuf>,
        what: &str,
    ) -> Result<Option<PathBuf>, String> {
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
    pub(crate) fn check(&self) -> Result<(), String> {
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
pub(crate) const RECORDS_FILTER_HELP: &str = "\
List only the records that pass FILTER, in the filter language of the terminal UI's Records view (`/`): words separated by spaces; a record must pass every word, and several type: words mean any of those types.
  type:NAME   the record type, any case, e.g. type:PAGE_DATA (t: for short)
  layer:L     xl, libxl or libxc (l:)
  dir:D       fwd (the migration stream) or back (what the receiver sends back) (d:)
  ckpt:N      a record of checkpoint N, as `migscope report` numbers them (c:, checkpoint:, ckpt:#N); captures only: a raw stream file has no checkpoint numbers
  WORD        any other word: found in the type name or the one-line summary, any case
Example: -Y 'type:PAGE_DATA dir:fwd ckpt:23'. Records keep their unfiltered numbers; session lines stay; diagnostics and decoder markers are counted in the footer, not listed. -Y keeps the Records view's index of every record (52 bytes and its one-line summary, at most 96 bytes, per record).";

/// `report -Y`: the same language, with the one key that selects checkpoints.
pub(crate) const REPORT_FILTER_HELP: &str = "\
List only what concerns checkpoint N: -Y ckpt:N (also c:N, checkpoint:N, ckpt:#N), in the filter language of `migscope records -Y` and the terminal UI's Records view. Its other keys (type:, layer:, dir: and words) select records, not checkpoints, and are refused here: use them with `migscope records -Y`.";

/// The help heading of report's selection options.
pub(crate) const SELECTION: &str =
    "Selection (what the report lists; statistics stay those of whole sessions)";

#[derive(Subcommand)]
pub(crate) enum Command {
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
        #[arg(long, value_enum, default_value_t = FormatArg::Text)]
        format: FormatArg,
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
    /// Watch migrations for as long as it runs: Prometheus metrics on
    /// /metrics, JSON-lines events, memory flat in time (docs/monitor.md).
    Monitor {
        /// Capture live on an interface (the `live` feature); Ctrl-C ends it.
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
        /// Serve /metrics and /-/healthy on ADDR:PORT (":9977" listens on every address).
        #[arg(long, visible_alias = "web.listen-address", value_name = "ADDR:PORT")]
        listen: Option<String>,
        /// Write events (sessions, checkpoints, stalls) as JSON lines to PATH ('-': standard output).
        #[arg(long, value_name = "PATH")]
        events: Option<PathBuf>,
        /// With -r: read the file, print the final exposition on standard output and exit.
        #[arg(long)]
        once: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Generate a synthetic migration (plain, Remus, COLO) as raw streams or a capture.
    #[cfg(feature = "synth")]
    Synth(Box<SynthArgs>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum FormatArg {
    Text,
    Json,
    Csv,
}

/// Parses PHASE=DURATION (or PHASE=off).
pub(crate) fn parse_slow(s: &str) -> Result<(crate::model::Phase, Option<u64>), String> {
    let (p, d) = s
        .split_once('=')
        .ok_or_else(|| format!("expected PHASE=DURATION, e.g. apply=200ms, not {s:?}"))?;
    let phase = crate::model::Phase::from_name(p.trim()).ok_or_else(|| {
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
pub(crate) enum DirArg {
    /// Sender (primary) to receiver (secondary).
    Forward,
    /// Receiver to sender: xl messages or the COLO back channel.
    #[value(alias = "reverse")]
    Back,
}

/// Parses a time since the first packet: seconds (`12.5`) or a duration
/// with its unit (`12500ms`); in ns.
pub(crate) fn parse_seconds(s: &str) -> Result<u64, String> {
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
pub(crate) fn parse_filter(text: &str) -> Result<crate::model::records::Filter, String> {
    crate::model::records::Filter::parse(text).map_err(|e| {
        format!("the filter {text:?} does not parse: {e}; `migscope records --help` describes the language")
    })
}
