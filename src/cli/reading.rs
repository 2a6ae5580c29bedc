//! Opening what `-r` or `-i` names and running the analysis over it,
//! with the reading problems as sentences.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::capture::{self, CaptureError, FileSource, Source};
use crate::session::{self, Analyzer, Observer};

use super::*;

/// Where packets come from.
#[derive(Debug, Clone, Default)]
pub(crate) struct Input {
    pub(crate) read: Option<PathBuf>,
    pub(crate) interface: Option<String>,
    pub(crate) filter: Option<String>,
    pub(crate) write: Option<PathBuf>,
}

/// Sets a flag on Ctrl-C so that the analysis stops reading and reports.
pub(crate) fn stop_flag() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    // If a handler cannot be installed, Ctrl-C simply ends the process.
    let _ = ctrlc::set_handler(move || s.store(true, Ordering::Relaxed));
    stop
}

/// Opens what -r or -i names.
pub(crate) fn open_input(input: &Input) -> Result<Source, CaptureError> {
    if let Some(iface) = &input.interface {
        let live = capture::live::open(iface, input.filter.as_deref(), input.write.as_deref())?;
        return Ok(Source::Live(live));
    }
    let path = input.read.as_deref().unwrap_or(Path::new("-"));
    Ok(Source::File(FileSource::open(path)?))
}

/// Runs the analysis over a source; prints reading problems on standard
/// error.
pub(crate) fn analyse<O: Observer>(src: &mut Source, analyzer: &mut Analyzer<O>) -> ExitStatus {
    analyse_with(src, analyzer, true).0
}

/// As [`analyse`], also returning the reading problems as sentences; with
/// `echo` false they are printed only if nothing else will say them (the
/// input was unreadable), for an output that carries them itself (the text
/// report), so that each is said once.
pub(crate) fn analyse_with<O: Observer>(
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
