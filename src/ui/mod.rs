//! The terminal UI (ratatui + crossterm): sessions, the checkpoint timeline
//! with phase bars, statistics and the handshake ladder, the TCP view
//! (charts and an Expert-Info list), live stall banners.
//!
//! Threads: a reader thread owns the capture source and the [`Analyzer`]; it
//! feeds packets in batches under a mutex that the UI thread takes only to
//! draw. The UI thread waits on terminal input with a timeout and redraws on
//! input, on progress, and a few times a second while live; it never waits
//! on analysis for longer than one batch (a few milliseconds). Only this
//! module knows ratatui and crossterm.

pub mod app;
pub mod keys;
pub mod ladder;
pub mod records;
pub mod refetch;
pub mod render;
pub mod tcp;

use std::fs::File;
use std::io::{self, BufWriter};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ratatui::crossterm::event::{
    self, DisableMouseCapture, EnableMouseCapture, Event, KeyCode, KeyEventKind, KeyModifiers,
    MouseEventKind,
};
use ratatui::crossterm::execute;

use crate::capture::{Next, Source};
use crate::model::{Model, Thresholds};
use crate::session::CaptureStats;
use crate::session::{Analyzer, Config};
pub use app::{Action, App, Key, View};
use refetch::{FetchRequest, Fetched};
pub use render::{Progress, Theme};

/// What both threads share.
pub struct Shared {
    pub analyzer: Analyzer<Model>,
    pub progress: Progress,
    pub replay: Option<Replay>,
}

/// Replay of a capture file with its own timing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Replay {
    /// Times faster than real time.
    pub speed: f64,
    pub paused: bool,
    /// Run until one more checkpoint completes, then pause.
    pub step: bool,
}

/// Time between frames while something moves.
const FRAME: Duration = Duration::from_millis(100);

/// Packets fed per lock.
const BATCH: usize = 4096;
/// Longest a batch holds the lock.
const BATCH_TIME: Duration = Duration::from_millis(20);

/// Number of checkpoints that have a CHECKPOINT_END, over all sessions.
fn closed_checkpoints(m: &Model) -> usize {
    m.sessions
        .iter()
        .map(|s| {
            s.checkpoints
                .iter()
                .filter(|c| {
                    c.event(crate::model::CheckpointEvent::CheckpointEnd)
                        .is_some()
                })
                .count()
        })
        .sum()
}

/// The reader thread of a replay: each packet is fed when its time comes
/// (capture time scaled by the speed, pauses excluded), and the model's clock
/// follows the replay clock between packets, so stalls and running clocks
/// show as they did live.
fn replay_reader(mut src: Source, shared: Arc<Mutex<Shared>>, stop: Arc<AtomicBool>) {
    let mut origin: Option<(u64, Instant)> = None;
    let mut paused_for = Duration::ZERO;
    let mut step_from: Option<usize> = None;
    loop {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let pkt = match src.next_packet() {
            Ok(Next::Packet(p)) => p,
            Ok(Next::Idle) => continue,
            Ok(Next::End) => break,
            Err(e) => {
                let fatal = e.ends_reading();
                if let Ok(mut g) = shared.lock() {
                    g.progress.problems.push(e.to_string());
                }
                if fatal {
                    break;
                }
                continue;
            }
        };
        let (t0, wall0) = *origin.get_or_insert((pkt.ts_ns, Instant::now()));
        // Wait for the packet's time, following pause and step.
        loop {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let Ok(mut g) = shared.lock() else { return };
            let Some(r) = g.replay else { break };
            let elapsed = wall0.elapsed().saturating_sub(paused_for);
            let replay_now = t0 + (elapsed.as_nanos() as f64 * r.speed) as u64;
            if r.paused && !r.step {
                drop(g);
                thread::sleep(Duration::from_millis(20));
                paused_for += Duration::from_millis(20);
                continue;
            }
            if r.step && step_from.is_none() {
                step_from = Some(closed_checkpoints(g.analyzer.observer()));
            }
            if pkt.ts_ns <= replay_now || r.step {
                break;
            }
            g.analyzer.observer_mut().advance(replay_now);
            drop(g);
            let wait = ((pkt.ts_ns - replay_now) as f64 / r.speed) as u64;
            thread::sleep(Duration::from_nanos(wait.min(20_000_000)));
        }
        let ts = pkt.ts_ns;
        let Ok(mut g) = shared.lock() else { return };
        g.progress.packets += 1;
        g.analyzer.packet(&pkt);
        if let Source::File(f) = &src {
            g.progress.bytes = f.position();
        }
        if let Some(from) = step_from {
            if closed_checkpoints(g.analyzer.observer()) > from {
                // One more checkpoint completed: pause here.
                if let Some(r) = g.replay.as_mut() {
                    r.step = false;
                    r.paused = true;
                }
                step_from = None;
                // The replay clock resumes from this packet's time.
                origin = Some((ts, Instant::now()));
                paused_for = Duration::ZERO;
            }
        }
    }
    if let Ok(mut g) = shared.lock() {
        g.analyzer.finish();
        if let Some(p) = g.analyzer.stats().clock_problem() {
            g.progress.problems.push(p);
        }
        g.progress.done = true;
    }
}

/// The wall clock in ns since the epoch (live captures' clock while the
/// wire is quiet).
pub fn wall_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The reader thread of a live capture: it waits for packets without the
/// lock (libpcap returns at least every 100 ms), takes the lock per packet,
/// and moves the model's clock with the wall clock while the wire is quiet.
fn live_reader(mut src: Source, shared: Arc<Mutex<Shared>>, stop: Arc<AtomicBool>) {
    let mut last_stats = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let next = src.next_packet();
        let Ok(mut g) = shared.lock() else { break };
        match next {
            Ok(Next::Packet(p)) => {
                g.progress.bytes += u64::from(p.orig_len);
                g.progress.packets += 1;
                g.analyzer.packet(&p);
            }
            Ok(Next::Idle) => {}
            Ok(Next::End) => {
                g.analyzer.finish();
                if let Some(p) = g.analyzer.stats().clock_problem() {
                    g.progress.problems.push(p);
                }
                g.progress.done = true;
                break;
            }
            Err(e) => {
                let fatal = e.ends_reading();
                g.progress.problems.push(e.to_string());
                if fatal {
                    g.analyzer.finish();
                    if let Some(p) = g.analyzer.stats().clock_problem() {
                        g.progress.problems.push(p);
                    }
                    g.progress.done = true;
                    break;
                }
            }
        }
        g.analyzer.observer_mut().advance(wall_ns());
        drop(g);
        if last_stats.elapsed() > Duration::from_millis(500) {
            last_stats = Instant::now();
            if let Source::Live(l) = &mut src {
                if let Ok(st) = l.stats() {
                    if let Ok(mut g) = shared.lock() {
                        g.progress.dropped = Some(u64::from(st.dropped) + u64::from(st.if_dropped));
                    }
                }
            }
        }
    }
    if let Source::Live(l) = &mut src {
        let _ = l.flush();
    }
}

/// Starts the reader thread over `src`.
pub fn spawn_reader(
    mut src: Source,
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
) -> thread::JoinHandle<()> {
    let replay = shared.lock().map(|g| g.replay.is_some()).unwrap_or(false);
    if replay {
        return thread::spawn(move || replay_reader(src, shared, stop));
    }
    if matches!(src, Source::Live(_)) {
        return thread::spawn(move || live_reader(src, shared, stop));
    }
    thread::spawn(move || {
        let started = Instant::now();
        loop {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let Ok(mut g) = shared.lock() else { break };
            let t0 = Instant::now();
            let mut ended = false;
            let mut idle = false;
            for _ in 0..BATCH {
                match src.next_packet() {
                    Ok(Next::Packet(p)) => {
                        g.progress.bytes += u64::from(p.orig_len.max(p.data.len() as u32)) + 16;
                        g.progress.packets += 1;
                        g.analyzer.packet(&p);
                    }
                    Ok(Next::Idle) => {
                        idle = true;
                        break;
                    }
                    Ok(Next::End) => {
                        ended = true;
                        break;
                    }
                    Err(e) => {
                        let fatal = e.ends_reading();
                        g.progress.problems.push(e.to_string());
                        if fatal {
                            ended = true;
                            break;
                        }
                    }
                }
                if t0.elapsed() > BATCH_TIME {
                    break;
                }
            }
            if let Source::File(f) = &src {
                g.progress.bytes = f.position();
            }
            let secs = started.elapsed().as_secs_f64();
            if secs > 0.0 {
                g.progress.rate = g.progress.bytes as f64 / secs;
            }
            if ended {
                g.analyzer.finish();
                if let Some(p) = g.analyzer.stats().clock_problem() {
                    g.progress.problems.push(p);
                }
                g.progress.done = true;
                break;
            }
            drop(g);
            if idle {
                thread::yield_now();
            }
        }
    })
}

/// A request for the bytes of record `record` of session `session`.
struct Job {
    id: u64,
    session: usize,
    record: usize,
    req: FetchRequest,
}

type Answer = (usize, usize, Result<Fetched, String>);

/// Starts the thread that reads records' bytes again from the capture at
/// `path`, one request at a time. Only the newest request matters: older
/// ones waiting are dropped and the one being read stops (within a few
/// thousand packets) when `latest` moves past it, so holding Down does not
/// queue work.
fn spawn_fetcher(
    path: PathBuf,
    cfg: Config,
    latest: Arc<AtomicU64>,
) -> (Sender<Job>, Receiver<Answer>) {
    let (job_tx, job_rx) = mpsc::channel::<Job>();
    let (ans_tx, ans_rx) = mpsc::channel::<Answer>();
    thread::spawn(move || {
        while let Ok(mut job) = job_rx.recv() {
            while let Ok(newer) = job_rx.try_recv() {
                job = newer;
            }
            if job.id != latest.load(Ordering::Relaxed) {
                continue;
            }
            let cancelled = || latest.load(Ordering::Relaxed) != job.id;
            match refetch::fetch(&path, &cfg, &job.req, &cancelled) {
                Ok(None) => {}
                Ok(Some(f)) => {
                    if ans_tx.send((job.session, job.record, Ok(f))).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    if ans_tx.send((job.session, job.record, Err(e))).is_err() {
                        break;
                    }
                }
            }
        }
    });
    (job_tx, ans_rx)
}

fn map_key(code: KeyCode, mods: KeyModifiers) -> Option<Key> {
    Some(match code {
        KeyCode::Char('c') if mods.contains(KeyModifiers::CONTROL) => Key::CtrlC,
        KeyCode::Char(c) => Key::Char(c),
        KeyCode::Enter => Key::Enter,
        KeyCode::Esc => Key::Esc,
        KeyCode::Tab => Key::Tab,
        KeyCode::BackTab => Key::BackTab,
        KeyCode::Up => Key::Up,
        KeyCode::Down => Key::Down,
        KeyCode::Left => Key::Left,
        KeyCode::Right => Key::Right,
        KeyCode::PageUp => Key::PageUp,
        KeyCode::PageDown => Key::PageDown,
        KeyCode::Home => Key::Home,
        KeyCode::End => Key::End,
        KeyCode::Backspace => Key::Backspace,
        _ => return None,
    })
}

/// The formats `e` exports the report in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Json,
    Csv,
}

/// What an export knows besides the model.
#[derive(Debug, Clone, Copy)]
pub struct ExportInput<'a> {
    pub source: &'a str,
    pub stats: &'a CaptureStats,
    pub problems: &'a [String],
    pub thresholds: &'a Thresholds,
    pub capture_ended: bool,
}

/// Writes a report in one format. The UI knows no report format: the
/// caller (the command line) gives the report module's writer.
pub type Exporter =
    dyn Fn(&Model, &ExportInput<'_>, ExportFormat, &mut dyn io::Write) -> io::Result<()> + Send;

/// Writes the capture's report as JSON and CSV in the current directory;
/// returns the message for the status bar.
fn export(shared: &Shared, app: &App, exporter: &Exporter) -> String {
    let model = shared.analyzer.observer();
    let stats = shared.analyzer.stats();
    let source = shared.progress.source.clone();
    let stem = format!(
        "migscope-report-{}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    );
    let input = ExportInput {
        source: &source,
        stats: &stats,
        problems: &shared.progress.problems,
        thresholds: &app.thresholds,
        capture_ended: shared.progress.done,
    };
    let mut written = Vec::new();
    for (fmt, ext) in [(ExportFormat::Json, "json"), (ExportFormat::Csv, "csv")] {
        let path = format!("{stem}.{ext}");
        let r = File::create(&path).and_then(|f| {
            let mut w = BufWriter::new(f);
            exporter(model, &input, fmt, &mut w)?;
            // The last bytes are written here: a full disk must be seen.
            w.into_inner().map_err(|e| e.into_error())?.sync_all()
        });
        match r {
            Ok(()) => written.push(path),
            Err(e) => {
                // Nothing half-written is left behind.
                let _ = std::fs::remove_file(&path);
                for p in &written {
                    let _ = std::fs::remove_file(p);
                }
                return format!("export failed writing {path} ({e}); nothing was kept");
            }
        }
    }
    let dir = std::env::current_dir().map_or(String::new(), |d| d.display().to_string());
    format!("report written to {dir}/{}", written.join(" and "))
}

/// Runs the UI over `src` until the user quits; `replay` plays a file back
/// at that speed (times real time).
pub fn run(
    src: Source,
    cfg: Config,
    thresholds: Thresholds,
    total: Option<u64>,
    replay: Option<f64>,
    exporter: &Exporter,
) -> io::Result<()> {
    let live = matches!(src, Source::Live(_));
    let path = match &src {
        Source::File(f) if f.name() != "standard input" => Some(PathBuf::from(f.name())),
        _ => None,
    };
    let fetch_cfg = cfg.clone();
    let progress = Progress {
        source: src.name().to_string(),
        total,
        live,
        ..Progress::default()
    };
    let shared = Arc::new(Mutex::new(Shared {
        analyzer: Analyzer::new(cfg, Model::with_record_index()),
        progress,
        replay: replay.map(|speed| Replay {
            speed: speed.max(0.001),
            paused: false,
            step: false,
        }),
    }));
    let stop = Arc::new(AtomicBool::new(false));
    let reader = spawn_reader(src, shared.clone(), stop.clone());
    let theme = Theme {
        color: std::env::var_os("NO_COLOR").map_or(true, |v| v.is_empty()),
    };
    let mut terminal = ratatui::init();
    let _ = execute!(io::stdout(), EnableMouseCapture);
    let mut app = App::new(thresholds);
    app.follow = live || replay.is_some();
    let replaying = replay.is_some();
    let latest = Arc::new(AtomicU64::new(0));
    let fetcher = match path {
        Some(p) => Some(spawn_fetcher(p, fetch_cfg, latest.clone())),
        None => {
            app.records.no_bytes = Some(if live {
                "live capture: bytes are not kept".into()
            } else {
                "standard input cannot be read again".into()
            });
            None
        }
    };
    let mut next_job = 0u64;
    let result = (|| -> io::Result<()> {
        let mut last_packets = u64::MAX;
        let mut dirty = true;
        let mut last_draw = Instant::now();
        loop {
            {
                let Ok(g) = shared.lock() else { break };
                let model = g.analyzer.observer();
                if let Some((jobs, answers)) = &fetcher {
                    while let Ok((s, r, res)) = answers.try_recv() {
                        app.records.receive(model, s, r, res);
                        dirty = true;
                    }
                    if app.view == View::Records {
                        if let Some(req) = app.records.request(model, app.session) {
                            if let Some(record) = app.records.selected(model, app.session) {
                                next_job += 1;
                                latest.store(next_job, Ordering::Relaxed);
                                let _ = jobs.send(Job {
                                    id: next_job,
                                    session: app.session,
                                    record,
                                    req,
                                });
                                dirty = true;
                            }
                        }
                    }
                }
                let changed = g.progress.packets != last_packets;
                // Redraw on change, and every 100 ms while a live capture or
                // a replay runs: the clocks of open phases and the stall
                // banner follow the model's clock, not the packets.
                let running = (live || replaying)
                    && !g.progress.done
                    && !g.replay.is_some_and(|r| r.paused && !r.step);
                if dirty || ((changed || running) && last_draw.elapsed() >= FRAME) {
                    last_packets = g.progress.packets;
                    let model = g.analyzer.observer();
                    app.replay = g.replay.map(|r| (r.speed, r.paused));
                    terminal.draw(|f| render::draw(f, &mut app, model, &g.progress, theme))?;
                    last_draw = Instant::now();
                    dirty = false;
                }
            }
            // Poll faster while bytes are being read, to show them soon.
            let wait = if matches!(app.records.bytes, records::BytesState::Reading { .. }) {
                Duration::from_millis(20)
            } else {
                // wake up in time for the next frame
                FRAME
                    .saturating_sub(last_draw.elapsed())
                    .max(Duration::from_millis(5))
            };
            if !event::poll(wait)? {
                continue;
            }
            let ev = event::read()?;
            let Ok(mut g) = shared.lock() else { break };
            let ended = g.progress.done;
            match ev {
                Event::Key(k) if k.kind != KeyEventKind::Release => {
                    if let Some(key) = map_key(k.code, k.modifiers) {
                        match app.key(key, g.analyzer.observer(), ended) {
                            Action::Quit => break,
                            Action::Export => app.message = Some(export(&g, &app, exporter)),
                            Action::Pause => {
                                if let Some(r) = g.replay.as_mut() {
                                    r.paused = !r.paused;
                                }
                            }
                            Action::Step => {
                                if let Some(r) = g.replay.as_mut() {
                                    r.step = true;
                                }
                            }
                            Action::Redraw | Action::None => {}
                        }
                    }
                }
                Event::Mouse(me) => match me.kind {
                    MouseEventKind::ScrollDown => app.wheel(g.analyzer.observer(), 3),
                    MouseEventKind::ScrollUp => app.wheel(g.analyzer.observer(), -3),
                    MouseEventKind::Down(_) => {
                        // Table rows start below the header line, the border and
                        // the column titles (and the statistics strip on the timeline).
                        let first = match app.view {
                            View::Timeline => 1 + 4 + 2,
                            View::Tcp => app.tcp_first_y as usize,
                            View::Sessions | View::Records => 1 + 2,
                        };
                        if let Some(y) = (me.row as usize).checked_sub(first) {
                            app.click_row(g.analyzer.observer(), y);
                        }
                    }
                    _ => {}
                },
                _ => {}
            }
            dirty = true;
        }
        Ok(())
    })();
    let _ = execute!(io::stdout(), DisableMouseCapture);
    ratatui::restore();
    stop.store(true, Ordering::Relaxed);
    if !live {
        let _ = reader.join();
    }
    result
}
