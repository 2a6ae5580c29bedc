//! The commands' bodies: report, the terminal UI, the summary, records,
//! export.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::capture::{FileSource, Source};
use crate::decode::Direction;
use crate::report::{export::Export, records, summary::Summary, timeline};
use crate::session::Analyzer;

use super::args::*;
use super::reading::*;
use super::*;

pub(crate) fn report_cmd(
    input: &Input,
    analysis: &AnalysisArgs,
    format: timeline::ReportFormat,
    t: &crate::model::Thresholds,
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
    let mut analyzer = Analyzer::new(analysis.config(), crate::model::Model::new());
    // The text report lists the reading problems itself.
    let echo = format != timeline::ReportFormat::Text;
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
        let has = |s: &crate::model::SessionModel| {
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

pub(crate) fn ui_cmd(input: &Input, common: &Common, replay: Option<f64>) -> ExitCode {
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
    match crate::ui::run(
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
pub(crate) fn export_report(
    m: &crate::model::Model,
    x: &crate::ui::ExportInput<'_>,
    format: crate::ui::ExportFormat,
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
        crate::ui::ExportFormat::Json => timeline::ReportFormat::Json,
        crate::ui::ExportFormat::Csv => timeline::ReportFormat::Csv,
    };
    timeline::write(m, &ctx, format, out).map(|_| ())
}

pub(crate) fn summary_cmd(input: &Input, analysis: &AnalysisArgs) -> ExitCode {
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
pub(crate) fn is_capture(first: &[u8]) -> bool {
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
pub(crate) fn open_peek(file: &Path) -> io::Result<(Box<dyn Read + Send>, Vec<u8>)> {
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

pub(crate) fn peek(mut input: Box<dyn Read + Send>) -> io::Result<(Box<dyn Read + Send>, Vec<u8>)> {
    let mut head = Vec::with_capacity(4);
    (&mut input).take(4).read_to_end(&mut head)?;
    let rest = io::Cursor::new(head.clone()).chain(input);
    Ok((Box::new(rest), head))
}

pub(crate) fn records_cmd(
    file: &Path,
    opts: records::Options,
    filter: Option<(crate::model::records::Filter, String)>,
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

/// Where `export` writes: standard output, or a file created when its
/// first byte is written (or once the session turns out to have no bytes
/// that way), so that a capture without the session leaves no empty file
/// behind and a file of that name is kept.
pub(crate) enum ExportOut {
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
    pub(crate) fn writer(&mut self) -> io::Result<&mut dyn Write> {
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

pub(crate) fn export_cmd(
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
