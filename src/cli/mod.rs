//! The `migscope` command: parses the command line, wires the stages
//! together for one job and maps its outcome to an exit status (0 clean,
//! 1 problems found, 2 input unreadable or refused).
//!
//! The options shared by every command that reads a capture ([`Common`]:
//! `-r`, the analysis and the stall options) are accepted before or after
//! the subcommand, as tshark users place them (`migscope -r F report` and
//! `migscope report -r F`); [`Common::merge`] joins the two places.

mod args;
mod commands;
mod monitor_cmd;
mod reading;
pub mod units;

use std::io::{self, IsTerminal};
use std::process::ExitCode;

use clap::Parser;

use crate::report::{records, timeline};

use args::*;
use commands::*;
use reading::*;

/// Where a command that reads packets reads them: its file (positional or
/// -r) or an interface and its capture filter, each given once, before or
/// after the subcommand.
fn packets_from(
    common: &Common,
    file: Option<std::path::PathBuf>,
    interface: (Option<String>, Option<String>),
    filter: (Option<String>, Option<String>),
) -> Result<Input, String> {
    Ok(Input {
        read: common.file(file, "capture")?,
        interface: once("-i", interface.0, interface.1)?,
        filter: once("-f", filter.0, filter.1)?,
        write: None,
    })
}

/// One sentence for a command line that cannot run as given: exit 2.
pub(crate) fn refuse(why: impl std::fmt::Display) -> ExitCode {
    eprintln!("migscope: {why}");
    ExitCode::from(2)
}

/// The `migscope` command: parses the command line and runs one job.
pub fn main() -> ExitCode {
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
        Command::Monitor { .. } => "monitor",
        #[cfg(feature = "synth")]
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
    if input.interface.is_some() && !matches!(name, "report" | "monitor") {
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
            let src = match packets_from(
                &common,
                capture,
                (input.interface, interface),
                (input.filter, filter),
            ) {
                Ok(s) => s,
                Err(e) => return refuse(e),
            };
            match (&src.read, &src.interface) {
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
            let format = match format {
                FormatArg::Text => timeline::ReportFormat::Text,
                FormatArg::Json => timeline::ReportFormat::Json,
                FormatArg::Csv => timeline::ReportFormat::Csv,
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
        Command::Monitor {
            interface,
            filter,
            listen,
            events,
            once: once_flag,
            common,
        } => {
            let common = match merge(common) {
                Ok(c) => c,
                Err(e) => return refuse(e),
            };
            let src = match packets_from(
                &common,
                None,
                (input.interface, interface),
                (input.filter, filter),
            ) {
                Ok(s) => s,
                Err(e) => return refuse(e),
            };
            monitor_cmd::run(&src, &common, listen, events, once_flag)
        }
        #[cfg(feature = "synth")]
        Command::Synth(args) => match crate::synth::cli::run(&args) {
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
pub(crate) fn no_subcommand(input: InputArgs, common: Common) -> ExitCode {
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
pub(crate) fn selection(
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum ExitStatus {
    Clean,
    Problems,
    Unreadable,
}

impl From<ExitStatus> for ExitCode {
    fn from(s: ExitStatus) -> ExitCode {
        ExitCode::from(s as u8)
    }
}

pub(crate) fn write_failed(e: io::Error) -> ExitCode {
    if e.kind() == io::ErrorKind::BrokenPipe {
        return ExitCode::SUCCESS;
    }
    eprintln!("migscope: writing the output failed: {}", describe(&e));
    ExitCode::from(2)
}

pub(crate) fn describe(e: &io::Error) -> String {
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
