//! The TCP view of the selected session (like Wireshark's stream graphs and
//! Expert Info): throughput and data RTT over time per direction as charts,
//! one summary line per direction, and a scrollable list of what went wrong
//! ([`super::app::expert`]) whose Enter goes to the checkpoint of that time.
//!
//! Charts plot at most [`MAX_POINTS`] points per series (seconds are merged
//! by their maximum beyond that), so a frame costs the same for a day-long
//! session. Without colour (`NO_COLOR`) the two directions differ by marker
//! and the legend names the marker.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Block, Borders, Chart, Dataset, GraphType, Paragraph, Row, Table, Wrap,
};
use ratatui::Frame;

use super::app::App;
use super::render::{rel, Theme};
use crate::decode::{Direction, Severity};
use crate::model::series::Series;
use crate::model::{Model, Rtt, SessionModel};
use crate::present::{human_bytes, human_ns};

/// Points plotted per series at most.
pub const MAX_POINTS: usize = 512;

/// Label, colour and marker of each direction's series.
fn series_style(d: Direction, theme: Theme) -> (&'static str, Style, Marker) {
    match (d, theme.color) {
        (Direction::Forward, true) => {
            ("forward", Style::default().fg(Color::Cyan), Marker::Braille)
        }
        (Direction::Reverse, true) => {
            ("back", Style::default().fg(Color::Magenta), Marker::Braille)
        }
        (Direction::Forward, false) => ("• forward", Style::default(), Marker::Dot),
        (Direction::Reverse, false) => ("▄ back", Style::default(), Marker::Bar),
    }
}

/// (second, value) points of a per-second series, merged by maximum into at
/// most [`MAX_POINTS`] points; seconds without a value are skipped.
/// Chart points (seconds, value) of bins `bin` seconds wide, merged by
/// their maximum down to [`MAX_POINTS`].
fn points(vals: &[Option<f64>], bin: f64) -> Vec<(f64, f64)> {
    let k = vals.len().div_ceil(MAX_POINTS).max(1);
    vals.chunks(k)
        .enumerate()
        .filter_map(|(i, c)| {
            let v = c
                .iter()
                .flatten()
                .copied()
                .fold(None, |a: Option<f64>, x| Some(a.map_or(x, |a| a.max(x))))?;
            Some(((i * k) as f64 * bin, v))
        })
        .collect()
}

fn rtt_avg_ms(v: &[Rtt]) -> Vec<Option<f64>> {
    v.iter()
        .map(|r| r.avg().map(|ns| ns as f64 / 1e6))
        .collect()
}

/// One chart of two series (forward, back) over `secs` seconds.
#[allow(clippy::too_many_arguments)]
fn chart(
    f: &mut Frame<'_>,
    area: Rect,
    title: Line<'static>,
    series: [Vec<(f64, f64)>; 2],
    secs: f64,
    y_label: fn(f64) -> String,
    theme: Theme,
) {
    let block = Block::default().borders(Borders::ALL).title(title);
    if series.iter().all(|s| s.is_empty()) {
        f.render_widget(
            Paragraph::new("no samples").style(theme.dim()).block(block),
            area,
        );
        return;
    }
    let ymax = series
        .iter()
        .flatten()
        .map(|p| p.1)
        .fold(0.0f64, f64::max)
        .max(f64::MIN_POSITIVE);
    let datasets: Vec<Dataset> = [Direction::Forward, Direction::Reverse]
        .into_iter()
        .zip(series.iter())
        .map(|(d, data)| {
            let (name, style, marker) = series_style(d, theme);
            Dataset::default()
                .name(name)
                .marker(marker)
                .graph_type(GraphType::Line)
                .style(style)
                .data(data)
        })
        .collect();
    let secs = secs.max(1.0);
    let x = Axis::default()
        .title("s")
        .bounds([0.0, secs])
        .labels(["0".to_string(), format!("{secs:.0}")])
        .style(theme.dim());
    let y = Axis::default()
        .bounds([0.0, ymax * 1.05])
        .labels(["0".to_string(), y_label(ymax)])
        .style(theme.dim());
    f.render_widget(
        Chart::new(datasets)
            .block(block)
            .x_axis(x)
            .y_axis(y)
            // the title names the series: a legend would hide the plot
            .legend_position(None),
        area,
    );
}

/// A direction's summary: TCP trouble, then closes and RTT (two parts, put
/// on one line when the width allows).
fn summary(m: &Model, s: &SessionModel, d: Direction) -> (String, String) {
    let i = match d {
        Direction::Forward => 0,
        Direction::Reverse => 1,
    };
    let x = &s.dirs[i];
    let longest = s
        .tcp
        .zero_windows
        .iter()
        .filter(|z| z.dir == d)
        .map(|z| z.end.unwrap_or(m.now.max(z.start)).saturating_sub(z.start))
        .max();
    let zw = match longest {
        Some(l) => format!("zero-win {} (longest {})", x.zero_windows, human_ns(l)),
        None => format!("zero-win {}", x.zero_windows),
    };
    let close = match (x.fin, x.rst) {
        (_, true) => "RST  ",
        (true, false) => "FIN  ",
        _ => "",
    };
    // Counted only when there were some: packets captured twice, and
    // segments outside any window (ignored).
    let mut extra = String::new();
    if let Some(t) = &x.tcp {
        if t.duplicates > 0 {
            extra.push_str(&format!("captured twice {}  ", t.duplicates));
        }
        if t.reassembly.out_of_window > 0 {
            extra.push_str(&format!("out of window {}  ", t.reassembly.out_of_window));
        }
    }
    let (n, lo, hi) = (x.rtt.count, x.rtt.min, x.rtt.max);
    // An ACK stamped with its data's time (the capture beside the
    // receiver, or a clock of coarse resolution): under a microsecond.
    let t = |ns: u64| {
        if ns == 0 {
            "<1 µs".to_string()
        } else {
            human_ns(ns)
        }
    };
    let rtt = match x.rtt.avg() {
        Some(avg) => format!(
            "RTT min/avg/max {}/{}/{} ({n} samples)",
            t(lo),
            t(avg),
            t(hi)
        ),
        None => "RTT -".into(),
    };
    (
        format!(
            "{:<7}  retx {}  ooo {}  dup ACK {}  {zw}  gaps {} ({})",
            match d {
                Direction::Forward => "forward",
                Direction::Reverse => "back",
            },
            x.retransmissions,
            x.out_of_order,
            x.dup_acks,
            x.gaps,
            human_bytes(x.gap_bytes),
        ),
        format!("{close}{extra}{rtt}"),
    )
}

/// The chart's title, naming each direction's marker (and colour).
fn chart_title(what: &str, theme: Theme) -> Line<'static> {
    let mut spans = vec![Span::raw(format!(" {what}: "))];
    for d in [Direction::Forward, Direction::Reverse] {
        let (name, style, _) = series_style(d, theme);
        spans.push(Span::styled(name, style));
        spans.push(Span::raw(" "));
    }
    Line::from(spans)
}

/// The TCP view of the selected session.
pub fn draw(f: &mut Frame<'_>, area: Rect, app: &mut App, m: &Model, theme: Theme) {
    let Some(s) = m.sessions.get(app.session) else {
        f.render_widget(
            Paragraph::new(super::render::no_session(app))
                .block(Block::default().borders(Borders::ALL).title(" TCP ")),
            area,
        );
        return;
    };
    let w = area.width.max(1) as usize;
    let mut lines = Vec::new();
    for d in [Direction::Forward, Direction::Reverse] {
        let (a, b) = summary(m, s, d);
        if a.chars().count() + 2 + b.chars().count() <= w {
            lines.push(format!("{a}  {b}"));
        } else {
            lines.push(a);
            lines.push(format!("{:9}{b}", ""));
        }
    }
    let sum_h: u16 = lines
        .iter()
        .map(|l| l.chars().count().div_ceil(w).max(1) as u16)
        .sum();
    // Charts only when they leave room for a few list entries.
    let chart_h = if area.height >= sum_h + 14 {
        (area.height * 2 / 5).max(9)
    } else {
        0
    };
    let [charts, sum_area, list_area] = Layout::vertical([
        Constraint::Length(chart_h),
        Constraint::Length(sum_h),
        Constraint::Min(0),
    ])
    .areas(area);
    if chart_h > 0 {
        let [left, right] =
            Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
                .areas(charts);
        let secs = s.last_activity.saturating_sub(s.info.first_ts) as f64 / 1e9;
        // bytes per bin as a rate
        let rate = |v: &Series<u64>| {
            let per: Vec<Option<f64>> = v
                .bins
                .iter()
                .map(|&b| Some(b as f64 / v.bin_secs()))
                .collect();
            points(&per, v.bin_secs())
        };
        chart(
            f,
            left,
            chart_title("bytes/s", theme),
            [rate(&s.throughput), rate(&s.throughput_back)],
            secs,
            |v| format!("{}/s", human_bytes(v as u64)),
            theme,
        );
        chart(
            f,
            right,
            chart_title("RTT", theme),
            [
                points(
                    &rtt_avg_ms(&s.rtt_series[0].bins),
                    s.rtt_series[0].bin_secs(),
                ),
                points(
                    &rtt_avg_ms(&s.rtt_series[1].bins),
                    s.rtt_series[1].bin_secs(),
                ),
            ],
            secs,
            |v| human_ns((v * 1e6) as u64),
            theme,
        );
    }
    f.render_widget(
        Paragraph::new(lines.join("\n"))
            .style(Style::default())
            .wrap(Wrap { trim: false }),
        sum_area,
    );
    // The Expert-Info list.
    let list = app.expert(m);
    app.tcp_page = list_area.height.saturating_sub(3) as usize;
    app.tcp_first_y = list_area.y + 2;
    app.clamp_tcp(list.len());
    let rows: Vec<Row> = list
        .iter()
        .enumerate()
        .skip(app.tcp_scroll)
        .take(app.tcp_page.max(1))
        .map(|(i, e)| {
            let sev = match e.severity {
                Severity::Error => Span::styled("error", theme.warn()),
                Severity::Warning => {
                    Span::styled("warning", Style::default().add_modifier(Modifier::BOLD))
                }
                Severity::Note => Span::raw("note"),
            };
            let row = Row::new(vec![
                Line::from(sev),
                Line::raw(if e.ts == u64::MAX {
                    "-".to_string()
                } else {
                    format!("{:.6}", rel(m, e.ts))
                }),
                Line::raw(match e.dir {
                    Some(Direction::Forward) => "fwd",
                    Some(Direction::Reverse) => "back",
                    None => "",
                }),
                Line::raw(crate::present::finding_text(e)),
            ]);
            if i == app.tcp_row {
                row.style(theme.selected())
            } else {
                row
            }
        })
        .collect();
    let widths = [
        Constraint::Length(7),
        Constraint::Length(11),
        Constraint::Length(4),
        Constraint::Min(10),
    ];
    let title = format!(
        " Session {} TCP: {} entries, Enter goes to the checkpoint ",
        s.info.id,
        list.len()
    );
    let header = Row::new(["sev", "time", "dir", "what"])
        .style(Style::default().add_modifier(Modifier::BOLD));
    f.render_widget(
        Table::new(rows, widths)
            .header(header)
            .block(Block::default().borders(Borders::ALL).title(title)),
        list_area,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_merge_by_maximum_and_skip_empty_seconds() {
        assert_eq!(
            points(&[Some(1.0), None, Some(3.0)], 1.0),
            [(0.0, 1.0), (2.0, 3.0)]
        );
        assert_eq!(
            points(&[Some(1.0), None, Some(3.0)], 0.01),
            [(0.0, 1.0), (0.02, 3.0)],
            "x in seconds for 10 ms bins"
        );
        let long: Vec<Option<f64>> = (0..MAX_POINTS * 3).map(|i| Some(i as f64)).collect();
        let p = points(&long, 1.0);
        assert_eq!(p.len(), MAX_POINTS);
        assert_eq!(p[1], (3.0, 5.0));
    }
}
