//! Drawing: every view renders from the [`App`] state and the [`Model`],
//! only the rows that fit, so a frame costs the same however many
//! checkpoints a session has. All text from a capture was escaped by the
//! decoder; nothing here interprets it.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Gauge, Paragraph, Row, Sparkline, Table};
use ratatui::Frame;

use super::app::{App, Sort, TimeFormat, View};
use crate::model::stall::StallKind;
use crate::model::{Checkpoint, Model, Phase, Scheme, SessionModel};
use crate::present::rfc3339;
use crate::present::{human_bytes, human_ns};

/// What the reader thread has done, for the gauge.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    pub source: String,
    pub bytes: u64,
    /// File size when known.
    pub total: Option<u64>,
    pub packets: u64,
    /// Bytes per second over the run so far.
    pub rate: f64,
    pub done: bool,
    pub live: bool,
    pub dropped: Option<u64>,
    /// Reading problems, as sentences.
    pub problems: Vec<String>,
}

/// Colours on, or glyphs only (`NO_COLOR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    /// The glyph and colour of a phase's bar segment (a QEMU COLO phase
    /// has the colour of the Xen phase in its slot and its own letter).
    pub fn phase(self, p: Phase) -> (char, Style) {
        let qemu = match p {
            Phase::Reply => Some('y'),
            Phase::Stop => Some('p'),
            Phase::Ram => Some('m'),
            Phase::DeviceState => Some('v'),
            Phase::Received => Some('c'),
            Phase::Loaded => Some('l'),
            _ => None,
        };
        let (glyph, color) = match p.in_scheme(Scheme::XenColo) {
            Phase::Suspend => ('s', Color::Yellow),
            Phase::DirtySync => ('d', Color::Magenta),
            Phase::Memory => ('m', Color::Blue),
            Phase::Device => ('v', Color::Cyan),
            Phase::Apply => ('a', Color::Red),
            Phase::Resume => ('r', Color::Green),
            _ => ('.', Color::DarkGray),
        };
        if self.color {
            ('█', Style::default().fg(color))
        } else {
            (qemu.unwrap_or(glyph), Style::default())
        }
    }

    pub(super) fn alert(self) -> Style {
        if self.color {
            Style::default()
                .fg(Color::White)
                .bg(Color::Red)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD)
        }
    }

    /// The selected row: a background (reversing would hide the phase bars), or
    /// reversed video without colours.
    pub(super) fn selected(self) -> Style {
        if self.color {
            Style::default()
                .bg(Color::Indexed(238))
                .add_modifier(Modifier::BOLD)
        } else {
            Style::default().add_modifier(Modifier::REVERSED)
        }
    }

    pub(super) fn dim(self) -> Style {
        if self.color {
            Style::default().fg(Color::DarkGray)
        } else {
            Style::default()
        }
    }

    pub(super) fn warn(self) -> Style {
        if self.color {
            Style::default().fg(Color::Red).add_modifier(Modifier::BOLD)
        } else {
            Style::default().add_modifier(Modifier::BOLD)
        }
    }
}

/// `text` in at most `room` characters: whole, or its end after "…" (a
/// capture's path keeps its file name).
pub(super) fn tail(text: &str, room: usize) -> String {
    let n = text.chars().count();
    if n <= room {
        return text.to_string();
    }
    if room == 0 {
        return String::new();
    }
    let keep: String = text.chars().skip(n - (room - 1)).collect();
    format!("…{keep}")
}

/// What a view without a session says: the capture may still hold one,
/// or it had none.
pub(super) fn no_session(app: &App) -> &'static str {
    if app.capture_ended {
        "no migration found in this capture"
    } else {
        "no migration found yet"
    }
}

pub(super) fn rel(m: &Model, ts: u64) -> f64 {
    ts.saturating_sub(m.start.unwrap_or(ts)) as f64 / 1e9
}

/// The whole screen.
pub fn draw(f: &mut Frame<'_>, app: &mut App, m: &Model, p: &Progress, theme: Theme) {
    let area = f.area();
    if area.width < 20 || area.height < 6 {
        f.render_widget(Paragraph::new("migscope: enlarge the terminal"), area);
        return;
    }
    app.capture_ended = p.done;
    let banner = if p.done { None } else { app.stalled_now(m) };
    let [top, body, status] = Layout::vertical([
        Constraint::Length(if banner.is_some() { 2 } else { 1 }),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(area);
    header(f, top, app, m, p, theme, banner.as_ref());
    match app.view {
        View::Sessions => sessions(f, body, app, m, theme),
        View::Timeline => timeline(f, body, app, m, theme),
        View::Tcp => super::tcp::draw(f, body, app, m, theme),
        View::Records => super::records::draw(f, body, app, m, theme),
    }
    status_bar(f, status, app, p, theme);
    if app.ladder && app.view == View::Timeline {
        super::ladder::draw(f, body, app, m, theme);
    }
    if app.help {
        app.help_page = help(f, area, app.help_scroll);
    }
}

fn header(
    f: &mut Frame<'_>,
    area: Rect,
    app: &App,
    m: &Model,
    p: &Progress,
    theme: Theme,
    banner: Option<&(usize, crate::model::Stall)>,
) {
    let tabs = [
        (View::Sessions, "1 Sessions"),
        (View::Timeline, "2 Timeline"),
        (View::Tcp, "3 TCP"),
        (View::Records, "4 Records"),
    ];
    let mut spans = vec![Span::styled(" migscope ", theme.selected())];
    for (v, name) in tabs {
        spans.push(Span::raw(" "));
        if v == app.view {
            spans.push(Span::styled(
                format!("[{name}]"),
                Style::default().add_modifier(Modifier::BOLD),
            ));
        } else {
            spans.push(Span::raw(format!(" {name} ")));
        }
    }
    let used: usize = spans.iter().map(|s| s.content.chars().count()).sum();
    let room = (area.width as usize).saturating_sub(used + 3);
    spans.push(Span::raw(format!("   {}", tail(&p.source, room))));
    let mut lines = vec![Line::from(spans)];
    if let Some((si, b)) = banner {
        let s = m.sessions.get(*si);
        lines.push(Line::styled(
            format!(
                " STALLED: session {} checkpoint {} waiting {:.1} s for {} from the {} ({}) ",
                s.map_or(0, |s| s.info.id),
                b.checkpoint,
                b.duration,
                b.waiting_for.name(),
                b.waiting_for.owner().name(),
                b.phase.name()
            ),
            theme.alert(),
        ));
    }
    f.render_widget(Paragraph::new(lines), area);
}

fn status_bar(f: &mut Frame<'_>, area: Rect, app: &App, p: &Progress, theme: Theme) {
    if !p.done && !p.live && app.replay.is_none() {
        let ratio = p
            .total
            .filter(|&t| t > 0)
            .map_or(0.0, |t| (p.bytes as f64 / t as f64).clamp(0.0, 1.0));
        let left = match (p.total, p.rate > 0.0) {
            (Some(t), true) => format!(
                ", {:.0} s left",
                (t.saturating_sub(p.bytes)) as f64 / p.rate
            ),
            _ => String::new(),
        };
        let label = format!(
            "reading {} of {} , {} packets, {}/s{left}",
            human_bytes(p.bytes),
            p.total.map_or("?".into(), human_bytes),
            p.packets,
            human_bytes(p.rate as u64)
        );
        f.render_widget(Gauge::default().ratio(ratio).label(label), area);
        return;
    }
    let text = if let Some(msg) = &app.message {
        msg.clone()
    } else if let Some(first) = p.problems.first() {
        format!("capture: {first}")
    } else {
        let replay = match app.replay {
            Some((speed, _)) if p.done => format!("REPLAY {speed}x finished  "),
            Some((speed, true)) => {
                format!("REPLAY {speed}x PAUSED (space resumes, . steps a checkpoint)  ")
            }
            Some((speed, false)) => format!("REPLAY {speed}x (space pauses)  "),
            None => String::new(),
        };
        let live = match (p.live && !p.done, p.dropped) {
            (true, Some(d)) => format!("LIVE, {} packets, {d} dropped by the kernel  ", p.packets),
            (true, None) => format!("LIVE, {} packets  ", p.packets),
            _ => String::new(),
        };
        let keys = super::keys::hints(match app.view {
            View::Tcp => super::keys::Where::Tcp,
            View::Records => super::keys::Where::Records,
            View::Sessions | View::Timeline => super::keys::Where::Timeline,
        });
        format!("{replay}{live}{keys}")
    };
    f.render_widget(Paragraph::new(text).style(theme.dim()), area);
}

/// Columns of the Sessions view, in screen order, with the priority that
/// decides which stay when the terminal is narrow (0 first): a column is
/// shown whole or not at all.
const SESSION_COLUMNS: [(&str, u8); 11] = [
    ("id", 0),
    ("primary -> secondary", 2),
    ("kind", 1),
    ("domain", 3),
    ("start", 10),
    ("duration", 7),
    ("bytes", 8),
    ("ckpts", 6),
    ("downtime p50/p99", 5),
    ("stalls", 4),
    ("tcp", 9),
];

/// Which columns fit in `room` cells, given each one's width (one cell of
/// gap after each): the highest priorities first.
fn fit_columns(widths: &[usize], room: usize) -> Vec<bool> {
    let mut order: Vec<usize> = (0..widths.len()).collect();
    order.sort_by_key(|&i| SESSION_COLUMNS[i].1);
    let mut used = 0;
    let mut keep = vec![false; widths.len()];
    for i in order {
        if used + widths[i] < room {
            used += widths[i] + 1;
            keep[i] = true;
        }
    }
    keep
}

fn sessions(f: &mut Frame<'_>, area: Rect, app: &mut App, m: &Model, theme: Theme) {
    let counts: Vec<usize> = app.all_stalls(m).iter().map(Vec::len).collect();
    // Every cell, with the endpoints in two forms: whole, and without the
    // primary's (ephemeral) port for narrow terminals.
    let mut compact = Vec::new();
    let mut cells: Vec<Vec<String>> = Vec::new();
    for (i, s) in m.sessions.iter().enumerate() {
        let stalls = counts.get(i).copied().unwrap_or(0);
        let start = s.first_activity.map_or(0.0, |t| rel(m, t));
        let dur = s
            .last_activity
            .saturating_sub(s.first_activity.unwrap_or(s.last_activity));
        let dt = s.stats.downtime.summary();
        let trouble = s
            .dirs
            .iter()
            .map(|d| d.retransmissions + d.zero_windows + d.gaps)
            .sum::<u64>();
        let host = match s.info.primary.ip {
            std::net::IpAddr::V4(ip) => ip.to_string(),
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        };
        compact.push(format!("{host} -> {}", s.info.secondary));
        cells.push(vec![
            s.info.id.to_string(),
            format!("{} -> {}", s.info.primary, s.info.secondary),
            s.kind().name().to_string(),
            s.domain.name.clone().unwrap_or_else(|| "-".into()),
            format!("{start:.3} s"),
            human_ns(dur),
            human_bytes(s.dirs[0].bytes),
            App::checkpoints(s).len().to_string(),
            match (dt, s.migration_downtime()) {
                (Some(d), _) => format!(
                    "{}/{}",
                    human_ns((d.p50 * 1e9) as u64),
                    human_ns((d.p99 * 1e9) as u64)
                ),
                (None, Some(d)) => human_ns(d),
                (None, None) => "-".into(),
            },
            if stalls > 0 {
                format!("{stalls} !")
            } else {
                "0".into()
            },
            trouble.to_string(),
        ]);
    }
    let width_of = |rows: &[Vec<String>], k: usize| {
        rows.iter()
            .map(|r| r[k].chars().count())
            .chain([SESSION_COLUMNS[k].0.len()])
            .max()
            .unwrap_or(0)
            .min(48)
    };
    let mut widths: Vec<usize> = (0..SESSION_COLUMNS.len())
        .map(|k| width_of(&cells, k))
        .collect();
    let room = area.width.saturating_sub(2) as usize;
    let mut keep = fit_columns(&widths, room);
    // The endpoints without the primary's port, if that keeps more columns.
    let short = compact
        .iter()
        .map(|c| c.chars().count())
        .chain([SESSION_COLUMNS[1].0.len()])
        .max()
        .unwrap_or(0);
    let mut narrow = widths.clone();
    narrow[1] = short;
    let keep_narrow = fit_columns(&narrow, room);
    let count = |k: &[bool]| k.iter().filter(|&&x| x).count();
    if count(&keep_narrow) > count(&keep) {
        keep = keep_narrow;
        widths = narrow;
        for (row, c) in cells.iter_mut().zip(compact) {
            row[1] = c;
        }
    }
    let shown: Vec<usize> = (0..SESSION_COLUMNS.len()).filter(|&k| keep[k]).collect();
    let header = Row::new(shown.iter().map(|&k| SESSION_COLUMNS[k].0))
        .style(Style::default().add_modifier(Modifier::BOLD));
    let rows: Vec<Row> = cells
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            let stalls = counts.get(i).copied().unwrap_or(0);
            let row = Row::new(shown.iter().map(|&k| r[k].clone()).collect::<Vec<_>>());
            if i == app.session {
                row.style(theme.selected())
            } else if stalls > 0 {
                row.style(theme.warn())
            } else {
                row
            }
        })
        .collect();
    let widths: Vec<Constraint> = shown
        .iter()
        .map(|&k| Constraint::Length(widths[k] as u16))
        .collect();
    let title = if m.sessions.is_empty() {
        format!(" Sessions: {} ", no_session(app))
    } else {
        format!(" Sessions ({}) ", m.sessions.len())
    };
    let table = Table::new(rows, widths)
        .header(header)
        .block(Block::default().borders(Borders::ALL).title(title));
    f.render_widget(table, area);
}

/// Bar of a checkpoint's downtime phases, to scale.
fn bar(
    c: &Checkpoint,
    scheme: Scheme,
    width: usize,
    ns_per_cell: u64,
    pan: u64,
    theme: Theme,
) -> Vec<Span<'static>> {
    let mut spans = Vec::new();
    // The bar starts where the checkpoint's downtime does (COLO: NEW;
    // Remus: its memory phase, checkpoint 0's final round), or, for COLO's
    // initial synchronisation and partial checkpoints, the first event seen.
    let first_event = c.events.iter().flatten().copied().min();
    let start = c.phase_start(Phase::inside(scheme)[0], scheme);
    let Some(origin) = start.or(first_event) else {
        return vec![Span::styled("(no event yet)", theme.dim())];
    };
    let phases = Phase::inside(scheme);
    let mut used = 0usize;
    for &p in phases {
        let Some(d) = c.phase(p, scheme) else {
            continue;
        };
        let start = c
            .phase_start(p, scheme)
            .unwrap_or(origin)
            .saturating_sub(origin);
        let (a, b) = (start.saturating_sub(pan), (start + d).saturating_sub(pan));
        let ca = (a / ns_per_cell.max(1)) as usize;
        let mut cb = (b / ns_per_cell.max(1)) as usize;
        if d > 0 && cb == ca && b > pan {
            cb = ca + 1; // every phase gets at least one cell
        }
        let ca = ca.max(used);
        let cb = cb.min(width);
        if cb <= ca {
            continue;
        }
        if ca > used {
            spans.push(Span::raw(" ".repeat(ca - used)));
        }
        let (g, style) = theme.phase(p);
        spans.push(Span::styled(g.to_string().repeat(cb - ca), style));
        used = cb;
        if used >= width {
            break;
        }
    }
    if used < width {
        spans.push(Span::raw(" ".repeat(width - used)));
    }
    spans
}

fn time_of(app: &App, m: &Model, c: &Checkpoint, prev: Option<&Checkpoint>) -> String {
    let Some(t) = c.start() else {
        return "-".into();
    };
    match app.time {
        TimeFormat::SinceStart => format!("{:.6}", rel(m, t)),
        TimeFormat::Absolute => rfc3339(t)[11..26].to_string(),
        TimeFormat::SincePrevious => {
            let p = prev.and_then(Checkpoint::start);
            p.map_or("-".into(), |p| {
                format!("+{:.6}", t.saturating_sub(p) as f64 / 1e9)
            })
        }
    }
}

fn timeline(f: &mut Frame<'_>, area: Rect, app: &mut App, m: &Model, theme: Theme) {
    let Some(s) = m.sessions.get(app.session) else {
        f.render_widget(
            Paragraph::new(no_session(app))
                .block(Block::default().borders(Borders::ALL).title(" Timeline ")),
            area,
        );
        return;
    };
    if App::checkpoints(s).is_empty() && !s.rounds.is_empty() {
        rounds(f, area, m, s);
        return;
    }
    let [strip, table_area, legend] = Layout::vertical([
        Constraint::Length(4),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(area);
    stats_strip(f, strip, app, m, s, theme);
    let scheme = s.scheme();
    let cps = App::checkpoints(s);
    let session = app.session;
    let marked: Vec<(u64, StallKind)> = app
        .all_stalls(m)
        .get(session)
        .map(|v| v.iter().map(|x| (x.checkpoint, x.kind)).collect())
        .unwrap_or_default();
    app.page = table_area.height.saturating_sub(3) as usize;
    app.follow_newest(m);
    let order = app.order(m).to_vec();
    app.row = app.row.min(order.len().saturating_sub(1));
    if app.row < app.scroll {
        app.scroll = app.row;
    }
    if app.row >= app.scroll + app.page.max(1) {
        app.scroll = app.row + 1 - app.page.max(1);
    }
    // Bar width and scale: by default the session's p90 downtime fills half the bar.
    let inner = table_area.width.saturating_sub(2) as usize;
    let bar_w = inner.saturating_sub(12 + 16 + 10 + 7 + 8 + 3 + 5).max(10);
    let ns_per_cell = app.ns_per_cell.unwrap_or_else(|| {
        let p90 = s.stats.downtime.summary().map(|d| d.p90);
        let ns = p90.map_or(100_000_000.0, |x| x * 1e9) as u64;
        (ns / (bar_w as u64 / 2).max(1)).max(1_000)
    });
    let rows: Vec<Row> = order
        .iter()
        .enumerate()
        .skip(app.scroll)
        .take(app.page.max(1))
        .map(|(r, &pos)| {
            let c = &cps[pos];
            let prev = pos.checked_sub(1).map(|p| &cps[p]);
            let mark = match marked.iter().find(|x| x.0 == c.index).map(|x| x.1) {
                Some(StallKind::Stalled) => "STALL",
                Some(StallKind::Slow) => "slow",
                None if !c.complete(scheme) => "part",
                None => "",
            };
            let down = c.downtime(scheme);
            let row = Row::new(vec![
                Line::raw(format!("#{}", c.index)),
                Line::raw(time_of(app, m, c, prev)),
                Line::from(bar(c, scheme, bar_w, ns_per_cell, app.pan_ns, theme)),
                Line::raw(down.map_or("-".into(), human_ns)),
                Line::raw(c.pages.to_string()),
                Line::raw(if scheme == Scheme::QemuColo {
                    c.vmstate_size.map_or("-".into(), human_bytes)
                } else {
                    c.pfns.to_string()
                }),
                Line::styled(mark, theme.warn()),
            ]);
            if r == app.row {
                row.style(theme.selected())
            } else {
                row
            }
        })
        .collect();
    let widths = [
        Constraint::Length(7),
        Constraint::Length(16),
        Constraint::Length(bar_w as u16),
        Constraint::Length(10),
        Constraint::Length(7),
        Constraint::Length(8),
        Constraint::Length(5),
    ];
    let title = format!(
        " Session {} [{}] {} checkpoints, sort: {}, times: {}, {} per cell{} ",
        s.info.id,
        s.kind().name(),
        cps.len(),
        app.sort.in_scheme(scheme).name(),
        app.time.name(),
        human_ns(ns_per_cell),
        if app.follow { ", following" } else { "" }
    );
    let time = match app.time {
        TimeFormat::SinceStart => "start (s)",
        TimeFormat::Absolute => "start (UTC)",
        TimeFormat::SincePrevious => "after prev (s)",
    };
    // QEMU COLO has no pfns: the device state VMSTATE_SIZE announced
    let sixth = if scheme == Scheme::QemuColo {
        "device"
    } else {
        "pfns"
    };
    let header = Row::new(["ckpt", time, "phases", "downtime", "pages", sixth, ""])
        .style(Style::default().add_modifier(Modifier::BOLD));
    f.render_widget(
        Table::new(rows, widths)
            .header(header)
            .block(Block::default().borders(Borders::ALL).title(title)),
        table_area,
    );
    let mut spans = vec![Span::raw(" ")];
    for &p in Phase::inside(scheme) {
        let (g, st) = theme.phase(p);
        spans.push(Span::styled(g.to_string(), st));
        spans.push(Span::raw(format!(" {}  ", p.name())));
    }
    spans.push(Span::styled(
        "+/- zoom  h/l pan  0 fit  p histogram",
        theme.dim(),
    ));
    f.render_widget(Paragraph::new(Line::from(spans)), legend);
    let _ = Sort::Index;
}

/// A plain migration has no checkpoints: its live rounds and xl's handover.
fn rounds(f: &mut Frame<'_>, area: Rect, m: &Model, s: &SessionModel) {
    let mut lines = vec![Line::styled(
        format!(
            "{:>5} {:>10} {:>10} {:>10} {:>12} {:>12} {:>12}",
            "round", "pages", "pfns", "bytes", "start", "duration", "throughput"
        ),
        Style::default().add_modifier(Modifier::BOLD),
    )];
    for r in &s.rounds {
        let d = r.end.saturating_sub(r.start);
        lines.push(Line::raw(format!(
            "{:>5} {:>10} {:>10} {:>10} {:>12.6} {:>12} {:>12}",
            r.index,
            r.pages,
            r.pfns,
            human_bytes(r.bytes),
            rel(m, r.start),
            human_ns(d),
            if d > 0 {
                format!(
                    "{}/s",
                    human_bytes((r.bytes as f64 / (d as f64 / 1e9)) as u64)
                )
            } else {
                "-".into()
            }
        )));
    }
    if let Some(h) = crate::present::handover_text(m, &s.handover, 6) {
        lines.push(Line::raw(""));
        lines.push(Line::raw(h));
    }
    if let Some(d) = crate::present::migration_downtime_text(m, s, 6) {
        lines.push(Line::raw(d));
    }
    if let Some(t) = crate::present::unfinished_text(m, s) {
        lines.push(Line::raw(t));
    }
    let title = format!(
        " Session {} [{}] live migration: {} rounds, the last one is the stop-and-copy ",
        s.info.id,
        s.kind().name(),
        s.rounds.len()
    );
    f.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(title)),
        area,
    );
}

/// Per-phase p50/p99, a sparkline of downtime and a histogram of one phase.
fn stats_strip(
    f: &mut Frame<'_>,
    area: Rect,
    app: &mut App,
    m: &Model,
    s: &SessionModel,
    theme: Theme,
) {
    // Two phases a line need 67 cells; the sparkline and the histogram
    // share what is left, and give way when that is under 40.
    const PHASES_W: u16 = 67;
    let [left, mid, right] = if area.width >= PHASES_W + 40 {
        let rest = area.width - PHASES_W;
        Layout::horizontal([
            Constraint::Length(PHASES_W),
            Constraint::Length(rest / 2),
            Constraint::Length(rest - rest / 2),
        ])
        .areas(area)
    } else {
        let none = Rect { width: 0, ..area };
        [area, none, none]
    };
    let scheme = s.scheme();
    let phases = Phase::inside(scheme);
    // names in a column of 10 (QEMU COLO's device_state takes 12)
    let w = phases
        .iter()
        .map(|p| p.name().len())
        .max()
        .unwrap_or(0)
        .max(10);
    let mut lines: Vec<Line> = Vec::new();
    let mut cur: Vec<Span> = Vec::new();
    for (i, &p) in phases.iter().enumerate() {
        let (g, st) = theme.phase(p);
        let v = s.stats.phase(p).map_or("-".to_string(), |x| {
            format!(
                "{}/{}",
                human_ns((x.p50 * 1e9) as u64),
                human_ns((x.p99 * 1e9) as u64)
            )
        });
        cur.push(Span::styled(g.to_string(), st));
        cur.push(Span::raw(format!(" {:<w$} {:<19} ", p.name(), v)));
        if i % 2 == 1 {
            lines.push(Line::from(std::mem::take(&mut cur)));
        }
    }
    if !cur.is_empty() {
        lines.push(Line::from(cur));
    }
    f.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::LEFT).title("p50/p99")),
        left,
    );
    if mid.width == 0 {
        return;
    }
    // Downtime of the latest checkpoints.
    let cps = App::checkpoints(s);
    let n = mid.width.saturating_sub(1) as usize;
    let data: Vec<u64> = cps
        .iter()
        .rev()
        .take(n)
        .rev()
        .map(|c| c.downtime(scheme).unwrap_or(0) / 1000)
        .collect();
    f.render_widget(
        Sparkline::default()
            .block(Block::default().borders(Borders::LEFT).title("downtime"))
            .data(&data)
            .style(theme.dim()),
        mid,
    );
    // Histogram of one phase between its min and max (cached).
    let p = app.histogram.in_scheme(scheme);
    let buckets = right.width.saturating_sub(1).max(1) as usize;
    let (lo, hi, counts) = app.histogram(m, p, buckets);
    let counts = counts.to_vec();
    f.render_widget(
        Sparkline::default()
            .block(Block::default().borders(Borders::LEFT).title(format!(
                "{} {}..{}",
                p.name(),
                human_ns(lo),
                human_ns(hi)
            )))
            .data(&counts),
        right,
    );
}

/// The help page's second part: what the figures mean (docs/FIGURES.md).
pub const FIGURES: &[&str] = &[
    "FIGURES (docs/FIGURES.md)",
    "first byte   a record's time is its completion; a phase",
    "             that begins with a transfer begins at the",
    "             first byte of that transfer",
    "downtime     COLO: new to svm_resumed. Remus: memory +",
    "             device. Plain: first byte of the final round",
    "             to the receiver's unpause result",
    "memory       COLO: dirty_pfn_list to libxc CHECKPOINT",
    "             (preparation, then transfer). Remus: first",
    "             byte to CHECKPOINT; device to CHECKPOINT_END",
    "pages, pfns  pages with data; all pfn entries",
    "part         an event missing or bytes lost in the capture",
    "slow         over its floor and 4x the median, or a zero",
    "             window / a sender waiting for ACKs in it",
    "STALL        stopped: waiting since its last event",
    "QEMU COLO    reply, stop, ram, device_state, received,",
    "             loaded, interval; downtime: reply to loaded",
    "QEMU final   guest stopped: first byte of the RAM END",
    "             section to SHUT (return path) or last byte",
];

/// The help page: every key (from `keys`), then what the figures mean.
pub fn help_text() -> Vec<String> {
    let mut v = super::keys::help_lines();
    v.push(String::new());
    v.extend(FIGURES.iter().map(|s| s.to_string()));
    v
}

/// The help over everything, scrolled by `scroll` lines; returns the lines
/// that fit (for paging).
fn help(f: &mut Frame<'_>, area: Rect, scroll: usize) -> usize {
    let text = help_text();
    let help: Vec<&str> = text.iter().map(String::as_str).collect();
    let help = help.as_slice();
    let w = (help.iter().map(|l| l.chars().count()).max().unwrap_or(0) as u16 + 2).min(area.width);
    let h = (help.len() as u16 + 2).min(area.height);
    let page = h.saturating_sub(2) as usize;
    let scroll = scroll.min(help.len().saturating_sub(page));
    let popup = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    let more = if help.len() > page {
        format!(
            " Help {}-{} of {}, j/k scroll ",
            scroll + 1,
            (scroll + page).min(help.len()),
            help.len()
        )
    } else {
        " Help ".to_string()
    };
    f.render_widget(Clear, popup);
    f.render_widget(
        Paragraph::new(help.join("\n"))
            .scroll((scroll as u16, 0))
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(more)
                    .title_bottom(Line::from(" any other key closes ").right_aligned()),
            ),
        popup,
    );
    page
}
