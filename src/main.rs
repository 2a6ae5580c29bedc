//! The `migscope` command: parses the command line, wires the stages
//! together for one job and maps its outcome to an exit status (0 clean,
//! 1 problems found, 2 input unreadable or refused).

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::{Args, Parser, Subcommand, ValueEnum};

use migscope::capture::{self, CaptureError, FileSource, Source};
use migscope::decode::Direction;
use migscope::pipeline::{self, Analyzer, Config, Observer};
use migscope::report::{export::Export, records, summary::Summary, timeline};
use migscope::synth::cli::{parse_duration, parse_size, SynthArgs};

#[derive(Parser)]
#[command(
    name = "migscope",
    version,
    about = "Inspect Xen migration traffic: libxl/libxc stream v2, COLO and Remus checkpoints",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    input: InputArgs,
}

/// Where packets come from, and how they are analysed.
#[derive(Args, Debug, Clone)]
struct InputArgs {
    /// Open a capture in the terminal UI (sessions, checkpoint timeline, handshake ladders).
    #[arg(value_name = "CAPTURE", conflicts_with_all = ["read", "interface"])]
    capture: Option<PathBuf>,
    /// With CAPTURE: play it back with its own timing, SPEED times real time
    /// (default 1), with pause (space) and step by checkpoint (.).
    #[arg(long, value_name = "SPEED", num_args = 0..=1, default_missing_value = "1", requires = "capture")]
    replay: Option<f64>,
    /// Read packets from a pcap or pcapng file ('-' for standard input; .gz is read too).
    #[arg(
        short = 'r',
        long = "read",
        value_name = "FILE",
        conflicts_with = "interface"
    )]
    read: Option<PathBuf>,
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
    #[command(flatten)]
    analysis: AnalysisArgs,
    #[command(flatten)]
    stalls: StallArgs,
}

/// What counts as a slow phase or a stalled checkpoint (docs/FIGURES.md),
/// the same for `report` and the terminal UI.
#[derive(Args, Debug, Clone)]
struct StallArgs {
    /// Floor of a phase, e.g. apply=200ms: shorter is never slow
    /// (repeatable; "off" disables one). Defaults: suspend, dirty_sync,
    /// memory, resume 100ms; device, apply 250ms; run off.
    #[arg(long = "slow", value_name = "PHASE=DURATION", value_parser = parse_slow)]
    slow: Vec<(migscope::model::Phase, Option<u64>)>,
    /// A slow phase must also exceed this multiple of the session's median for it (unless the evidence says it is slow: a receiver's zero window, a sender waiting for acknowledgements).
    #[arg(long, default_value_t = 4.0)]
    slow_factor: f64,
    /// Both directions silent this long in the middle of a checkpoint: stalled.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    quiet: u64,
}

impl StallArgs {
    fn thresholds(&self) -> migscope::model::Thresholds {
        let mut t = migscope::model::Thresholds::default();
        for &(p, d) in &self.slow {
            t.absolute[p.index()] = d;
        }
        t.factor = self.slow_factor;
        t.quiet_ns = self.quiet;
        t
    }
}

/// Tunables of reassembly and recognition.
#[derive(Args, Debug, Clone)]
struct AnalysisArgs {
    /// Decode TCP connections to or from this port as migrations, whatever
    /// their first bytes (like Wireshark's "Decode As"); repeatable.
    #[arg(long = "port", value_name = "PORT")]
    ports: Vec<u16>,
    /// Out-of-order bytes held per direction before a hole is declared missing.
    #[arg(long, value_name = "SIZE", default_value = "8M", value_parser = parse_size)]
    ooo_per_flow: u64,
    /// Out-of-order bytes held over all connections.
    #[arg(long, value_name = "SIZE", default_value = "64M", value_parser = parse_size)]
    ooo_total: u64,
    /// Capture time a hole may stay open before its bytes count as missing.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    gap_timeout: u64,
    /// A direction silent for this long is reported as idle.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    idle: u64,
}

impl AnalysisArgs {
    fn config(&self) -> Config {
        let mut c = Config {
            ports: self.ports.clone(),
            ..Config::default()
        };
        c.tcp.reassembly.flow_cap = usize::try_from(self.ooo_per_flow).unwrap_or(usize::MAX);
        c.tcp.global_cap = usize::try_from(self.ooo_total).unwrap_or(usize::MAX);
        c.tcp.reassembly.gap_timeout_ns = self.gap_timeout;
        c.tcp.idle_ns = self.idle;
        c
    }
}

#[derive(Subcommand)]
enum Command {
    /// List the records of a capture (every migration in it) or of a raw
    /// stream file (xl save file, libxl or libxc stream, COLO back channel).
    Records {
        /// A pcap/pcapng capture or a raw stream file ('-' for standard input).
        file: PathBuf,
        /// Show the field tree of every record.
        #[arg(short = 'V', long)]
        verbose: bool,
        /// Write JSON lines instead of text.
        #[arg(long)]
        json: bool,
        /// The raw stream file holds a COLO back channel (secondary -> primary).
        #[arg(long)]
        back_channel: bool,
        #[command(flatten)]
        analysis: AnalysisArgs,
    },
    /// Write one direction of a migration found in a capture to a file.
    Export {
        /// The pcap/pcapng capture ('-' for standard input).
        capture: PathBuf,
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
        analysis: AnalysisArgs,
    },
    /// The checkpoint timeline of every migration in a capture (or live with
    /// -i): phases with their latency, statistics, stalls with TCP evidence.
    Report {
        /// The pcap/pcapng capture ('-' for standard input).
        #[arg(required_unless_present = "interface")]
        capture: Option<PathBuf>,
        /// Capture live on an interface instead (the `live` feature); Ctrl-C ends it.
        #[arg(
            short = 'i',
            long = "interface",
            value_name = "IFACE",
            conflicts_with = "capture"
        )]
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
        #[command(flatten)]
        stalls: StallArgs,
        /// Checkpoints in the text report's "worst" list.
        #[arg(long, default_value_t = 5)]
        worst: usize,
        #[command(flatten)]
        analysis: AnalysisArgs,
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Records {
            file,
            verbose,
            json,
            back_channel,
            analysis,
        }) => {
            let opts = records::Options {
                verbose,
                json,
                back_channel,
            };
            records_cmd(&file, opts, &analysis)
        }
        Some(Command::Export {
            capture,
            session,
            dir,
            output,
            zero_fill,
            analysis,
        }) => export_cmd(&capture, session, dir, &output, zero_fill, &analysis),
        Some(Command::Report {
            capture,
            interface,
            filter,
            format,
            fail_on_stall,
            stalls,
            worst,
            analysis,
        }) => {
            let t = stalls.thresholds();
            let input = InputArgs {
                capture: None,
                replay: None,
                read: capture,
                interface,
                filter,
                write: None,
                analysis,
                stalls,
            };
            let format = match format {
                ReportFormat::Text => timeline::Format::Text,
                ReportFormat::Json => timeline::Format::Json,
                ReportFormat::Csv => timeline::Format::Csv,
            };
            report_cmd(&input, format, &t, fail_on_stall, worst)
        }
        Some(Command::Synth(args)) => match migscope::synth::cli::run(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("migscope: {e:#}");
                ExitCode::from(2)
            }
        },
        None if cli.input.capture.is_some()
            || (cli.input.interface.is_some() && io::stdout().is_terminal()) =>
        {
            ui_cmd(&cli.input)
        }
        None => summary_cmd(&cli.input),
    }
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
fn open_input(input: &InputArgs) -> Result<Source, CaptureError> {
    if let Some(iface) = &input.interface {
        let live = capture::live::open(iface, input.filter.as_deref(), input.write.as_deref())?;
        return Ok(Source::Live(live));
    }
    let path = input.read.as_deref().unwrap_or(Path::new("-"));
    Ok(Source::File(FileSource::open(path)?))
}

/// Runs the analysis over a source; prints reading problems as they are met.
fn analyse<O: Observer>(src: &mut Source, analyzer: &mut Analyzer<O>) -> ExitStatus {
    analyse_with(src, analyzer).0
}

/// As [`analyse`], also returning the reading problems as sentences.
fn analyse_with<O: Observer>(
    src: &mut Source,
    analyzer: &mut Analyzer<O>,
) -> (ExitStatus, Vec<String>) {
    let stop = stop_flag();
    let problems = pipeline::feed(src, analyzer, &stop);
    analyzer.finish();
    let mut problems: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    problems.extend(analyzer.stats().clock_problem());
    let mut status = ExitStatus::Clean;
    for p in &problems {
        eprintln!("migscope: {p}");
        status = ExitStatus::Problems;
    }
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
                status = ExitStatus::Problems;
            }
        }
        if let Err(e) = l.flush() {
            eprintln!("migscope: {e}");
        }
    }
    if analyzer.stats().packets == 0 && !problems.is_empty() {
        status = ExitStatus::Unreadable;
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
    input: &InputArgs,
    format: timeline::Format,
    t: &migscope::model::Thresholds,
    fail_on_stall: bool,
    worst: usize,
) -> ExitCode {
    if !(t.factor.is_finite() && t.factor >= 0.0) {
        eprintln!("migscope: --slow-factor must be a non-negative number");
        return ExitCode::from(2);
    }
    let mut src = match open_input(input) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("migscope: {e}");
            return ExitCode::from(2);
        }
    };
    let source = src.name().to_string();
    let mut analyzer = Analyzer::new(input.analysis.config(), migscope::model::Model::new());
    let (status, problems) = analyse_with(&mut src, &mut analyzer);
    if status == ExitStatus::Unreadable {
        return status.into();
    }
    let stats = analyzer.stats();
    let model = analyzer.into_observer();
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
    match timeline::write(&model, &ctx, format, &mut out) {
        Ok(stalls) if stalls > 0 && fail_on_stall => ExitCode::from(1),
        Ok(_) if fail_on_stall => ExitCode::SUCCESS,
        Ok(_) => status.into(),
        Err(e) => write_failed(e),
    }
}

fn ui_cmd(input: &InputArgs) -> ExitCode {
    let (src, total) = if let Some(path) = &input.capture {
        let total = std::fs::metadata(path).ok().map(|m| m.len());
        match FileSource::open(path) {
            Ok(f) => {
                let total = if f.compressed() { None } else { total };
                (Source::File(f), total)
            }
            Err(e) => {
                eprintln!("migscope: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        match open_input(input) {
            Ok(s) => (s, None),
            Err(e) => {
                eprintln!("migscope: {e}");
                return ExitCode::from(2);
            }
        }
    };
    if !io::stdout().is_terminal() {
        eprintln!("migscope: the terminal UI needs a terminal; use `migscope report` or `migscope -r` for text output");
        return ExitCode::from(2);
    }
    if input.replay.is_some_and(|s| !(s.is_finite() && s > 0.0)) {
        eprintln!("migscope: --replay takes a positive speed, e.g. --replay=10");
        return ExitCode::from(2);
    }
    match migscope::ui::run(
        src,
        input.analysis.config(),
        input.stalls.thresholds(),
        total,
        input.replay,
    ) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("migscope: the terminal UI failed: {e}");
            ExitCode::from(2)
        }
    }
}

fn summary_cmd(input: &InputArgs) -> ExitCode {
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
    let mut analyzer = Analyzer::new(input.analysis.config(), Summary::new(stdout.lock()));
    let mut status = analyse(&mut src, &mut analyzer);
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

fn records_cmd(file: &Path, opts: records::Options, analysis: &AnalysisArgs) -> ExitCode {
    let (mut input, head) = match open_peek(file) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("migscope: cannot open {}: {}", file.display(), describe(&e));
            return ExitCode::from(2);
        }
    };
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
        let printer = match records::CaptureRecords::new(opts, &mut out) {
            Ok(p) => p,
            Err(e) => return write_failed(e),
        };
        let mut analyzer = Analyzer::new(analysis.config(), printer);
        let status = analyse(&mut src, &mut analyzer);
        let result = analyzer.into_observer().finish();
        let result = result.and_then(|o| out.flush().map(|_| o));
        return match result {
            Err(e) => write_failed(e),
            Ok(o) if o.errors + o.warnings > 0 => status.max(ExitStatus::Problems).into(),
            Ok(_) => status.into(),
        };
    }
    let result = records::run(&mut input, opts, &mut out).and_then(|o| out.flush().map(|_| o));
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
        Err(e) => {
            eprintln!("migscope: {e}");
            return ExitCode::from(2);
        }
    };
    let out: Box<dyn Write> = if output.as_os_str() == "-" {
        Box::new(io::stdout().lock())
    } else {
        match File::create(output) {
            Ok(f) => Box::new(f),
            Err(e) => {
                eprintln!(
                    "migscope: cannot create {}: {}",
                    output.display(),
                    describe(&e)
                );
                return ExitCode::from(2);
            }
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
    if let Err(e) = export.flush() {
        if e.kind() == io::ErrorKind::BrokenPipe || output.as_os_str() == "-" {
            return write_failed(e);
        }
        // A stream cut short looks like a stream that ended: do not leave it
        // (only regular files are removed, never a device like /dev/full).
        let removed = std::fs::metadata(output).is_ok_and(|m| m.is_file())
            && std::fs::remove_file(output).is_ok();
        eprintln!(
            "migscope: writing {} failed: {}; {}",
            output.display(),
            describe(&e),
            if removed {
                "the incomplete file was removed"
            } else {
                "what it holds is incomplete"
            }
        );
        return ExitCode::from(2);
    }
    let Some(found) = &export.found else {
        eprintln!(
            "migscope: {} has no session {session} ({sessions} migration session{} found; `migscope -r {}` lists them)",
            capture.display(),
            if sessions == 1 { "" } else { "s" },
            capture.display()
        );
        return ExitCode::from(2);
    };
    let missing: u64 = export.gaps.iter().map(|g| g.len).sum();
    eprintln!(
        "migscope: session {session} {} ({} -> {}): wrote {} bytes from stream offset {}; {} gap{} ({} bytes missing{})",
        match dir {
            DirArg::Forward => "forward",
            DirArg::Back => "back",
        },
        found.primary,
        found.secondary,
        export.written,
        export.first_offset.unwrap_or(0),
        export.gaps.len(),
        if export.gaps.len() == 1 { "" } else { "s" },
        missing,
        if zero_fill { ", written as zeros" } else { ", left out" }
    );
    for g in &export.gaps {
        eprintln!(
            "migscope:   gap at stream offset {}: {} bytes ({})",
            g.offset,
            g.len,
            g.cause.name()
        );
    }
    if !export.gaps.is_empty() {
        status = status.max(ExitStatus::Problems);
    }
    status.into()
}

fn describe(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no such file; check the path".into(),
        io::ErrorKind::PermissionDenied => "permission denied; check the file's permissions".into(),
        // ENOSPC (io::ErrorKind::StorageFull is newer than our MSRV).
        _ if e.raw_os_error() == Some(28) => {
            "no space left on the device; free some space or write elsewhere".into()
        }
        _ => e.to_string(),
    }
}
