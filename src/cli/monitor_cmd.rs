//! `migscope monitor`: the driver loop around [`crate::monitor::Monitor`].

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::registry::Registry;

use crate::capture::{Next, Source};
use crate::model::Model;
use crate::monitor::{http, metrics::Metrics, Monitor};
use crate::session::Analyzer;

use super::args::Common;
use super::reading::{open_input, stop_flag, Input};
use super::{describe, refuse};

/// Where `monitor` listens without `--listen`: the port picked for
/// migscope in the exporters' range (9100-9999) that Prometheus' default
/// port allocations leave to exporters; see docs/monitor.md.
pub(crate) const DEFAULT_LISTEN: &str = ":9977";

/// Capture time between sweeps (and between frames of the clocks).
const SWEEP_NS: u64 = 100_000_000;

/// ":9977" means every address, as node_exporter writes it.
fn bind_addr(listen: &str) -> String {
    match listen.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => listen.to_string(),
    }
}

pub(crate) fn run(
    input: &Input,
    common: &Common,
    listen: Option<String>,
    events: Option<PathBuf>,
    once: bool,
) -> ExitCode {
    match (&input.read, &input.interface) {
        (Some(r), Some(i)) => {
            return refuse(format!(
                "monitor reads {} or captures live on {i}, not both; give one",
                r.display()
            ))
        }
        (None, None) => {
            return refuse("monitor needs packets: `migscope monitor -i IFACE` (live) or `migscope monitor -r FILE`")
        }
        _ => {}
    }
    if once && input.interface.is_some() {
        return refuse(
            "--once reads a capture file to its end (-r FILE); a live monitor runs until Ctrl-C",
        );
    }
    let events: Option<Box<dyn Write + Send>> = match events {
        None => None,
        Some(p) if p.as_os_str() == "-" => Some(Box::new(io::stdout())),
        Some(p) => match OpenOptions::new().create(true).append(true).open(&p) {
            Ok(f) => Some(Box::new(io::LineWriter::new(f))),
            Err(e) => {
                return refuse(format!(
                    "cannot open {} for events: {}",
                    p.display(),
                    describe(&e)
                ))
            }
        },
    };
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let registry = Arc::new(registry);
    let listen = match (listen, once) {
        (Some(l), _) => Some(l),
        (None, false) => Some(DEFAULT_LISTEN.to_string()),
        (None, true) => None,
    };
    if let Some(l) = &listen {
        match http::serve(&bind_addr(l), registry.clone()) {
            Ok(a) => eprintln!("migscope: serving http://{a}/metrics"),
            Err(e) => return refuse(e),
        }
    }
    let mut src = match open_input(input) {
        Ok(s) => s,
        Err(e) => return refuse(e),
    };
    let stop = stop_flag();
    // Two significant digits: medians for the stall limits, a tenth of the
    // memory of a report's statistics per open session.
    let model = Model {
        stats_digits: Some(2),
        ..Model::default()
    };
    let mut analyzer = Analyzer::new(common.analysis.config(), model);
    let mut mon = Monitor::new(metrics, common.stalls.thresholds(), events);
    let mut last_sweep = 0u64;
    let mut last_wall = Instant::now();
    let mut packets = 0u64;
    let mut status = ExitCode::SUCCESS;
    let live = matches!(src, Source::Live(_));
    loop {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let mut now = None;
        match src.next_packet() {
            Ok(Next::Packet(p)) => {
                // As if live: a quiet wire still moves the clock, so a
                // stall is seen while it lasts, before the packet that
                // ends it.
                if !live && p.ts_ns.saturating_sub(last_sweep) >= SWEEP_NS && last_sweep > 0 {
                    analyzer.observer_mut().advance(p.ts_ns);
                    let stats = analyzer.stats();
                    mon.sweep(analyzer.observer_mut(), &stats, 0, p.ts_ns, false);
                    last_sweep = p.ts_ns;
                }
                if last_sweep == 0 {
                    last_sweep = p.ts_ns;
                }
                analyzer.packet(&p);
                packets += 1;
                now = Some(p.ts_ns);
            }
            Ok(Next::Idle) => {}
            Ok(Next::End) => break,
            Err(e) => {
                eprintln!("migscope: {e}");
                status = ExitCode::from(1);
                if e.ends_reading() {
                    break;
                }
            }
        }
        if live {
            // the clock of open phases runs with the wall while the wire is quiet
            let w = crate::ui::wall_ns();
            analyzer.observer_mut().advance(w);
            now = Some(w);
        }
        let Some(now) = now else { continue };
        let due = now.saturating_sub(last_sweep) >= SWEEP_NS
            || packets % 65_536 == 0
            || (live && last_wall.elapsed() >= Duration::from_millis(100));
        if due {
            let dropped = drops(&mut src);
            let stats = analyzer.stats();
            mon.sweep(analyzer.observer_mut(), &stats, dropped, now, false);
            last_sweep = now;
            last_wall = Instant::now();
        }
    }
    analyzer.finish();
    let dropped = drops(&mut src);
    let stats = analyzer.stats();
    let now = analyzer.observer().now;
    mon.sweep(analyzer.observer_mut(), &stats, dropped, now, true);
    if let Some(e) = &mon.events_error {
        eprintln!("migscope: writing events failed: {}", describe(e));
        status = ExitCode::from(2);
    }
    if once {
        let text = http::to_prometheus_text(&http::exposition(&registry));
        if let Err(e) = io::stdout().lock().write_all(text.as_bytes()) {
            if e.kind() != io::ErrorKind::BrokenPipe {
                return refuse(format!("writing the metrics failed: {}", describe(&e)));
            }
        }
        return status;
    }
    if !live && !stop.load(Ordering::Relaxed) {
        eprintln!("migscope: the capture ended; serving its figures until Ctrl-C");
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    status
}

/// Packets the kernel and the interface dropped so far (live), else 0.
fn drops(src: &mut Source) -> u64 {
    match src {
        Source::Live(l) => l
            .stats()
            .map(|s| u64::from(s.dropped) + u64::from(s.if_dropped))
            .unwrap_or(0),
        _ => 0,
    }
}
