//! The handshake ladder of one checkpoint, as an investigation page: a
//! one-line verdict first, the records in wire order with the time of
//! their first byte (a transfer is a span: its completion follows), the
//! phases with the slow ones marked, and what TCP showed. The page scrolls
//! (the renderer draws the part [`App::ladder_scroll`] says).

use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

use super::app::App;
use super::render::{rel, Theme};
use crate::decode::Direction;
use crate::model::stall::{Stall, StallKind};
use crate::model::{Checkpoint, CheckpointEvent, Model, Phase, Scheme, SessionModel};
use crate::present::{human_bytes, human_ns};

/// Width of the time and delta columns and the gaps around them.
const LEAD: usize = 10 + 1 + 9 + 2;
/// Room kept right of the arrows for the bracket of the phase a record closes.
const BRACKET: usize = 21;

/// One line of the ladder: a record (or the PAGE_DATA run) at a time.
struct Rung {
    ts: u64,
    /// Among rungs at the same time: the PAGE_DATA run's end first (the
    /// records after it share its last segment), its start last (those
    /// before it share its first).
    rank: u8,
    dir: Direction,
    name: String,
    event: Option<CheckpointEvent>,
}

/// The records of `c` in wire order: by the first byte, PAGE_DATA as one
/// run from its first byte, with a second rung at its completion.
fn rungs(c: &Checkpoint) -> Vec<Rung> {
    let mut out: Vec<Rung> = c
        .steps
        .iter()
        .map(|st| {
            let took = st.ts.saturating_sub(st.first);
            Rung {
                ts: st.first,
                rank: 1,
                dir: st.dir,
                name: if took > 0 {
                    format!("{} (in {})", st.name, human_ns(took))
                } else {
                    st.name.to_string()
                },
                event: st.event,
            }
        })
        .collect();
    if let Some((_, last)) = c.page_span {
        let first = c.first_page.unwrap_or(last).min(last);
        out.push(Rung {
            ts: first,
            rank: 2,
            dir: Direction::Forward,
            name: if c.pfns == c.pages {
                format!(
                    "PAGE_DATA x{}: {}",
                    c.page_records,
                    crate::present::count(c.pages, "page", "pages")
                )
            } else {
                format!(
                    "PAGE_DATA x{}: {}, {}",
                    c.page_records,
                    crate::present::count(c.pages, "page", "pages"),
                    crate::present::count(c.pfns, "pfn", "pfns")
                )
            },
            event: None,
        });
        if last > first {
            out.push(Rung {
                ts: last,
                rank: 0,
                dir: Direction::Forward,
                name: format!("PAGE_DATA done ({})", human_ns(last - first)),
                event: None,
            });
        }
    }
    // stable: records keep their completion order at equal times
    out.sort_by_key(|r| (r.ts, r.rank));
    out
}

/// `text` cut to `width` characters.
fn cut(text: &str, width: usize) -> String {
    text.chars().take(width).collect()
}

/// `text` broken at spaces into lines of at most `width` characters (a
/// longer word is cut), continuation lines indented by two.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(8);
    let mut out = Vec::new();
    let mut cur = String::new();
    for word in text.split(' ') {
        let room = if out.is_empty() { width } else { width - 2 };
        if !cur.is_empty() && cur.chars().count() + 1 + word.chars().count() > room {
            out.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(&cut(word, width - 2));
    }
    out.push(cur);
    out.into_iter()
        .enumerate()
        .map(|(i, l)| if i == 0 { l } else { format!("  {l}") })
        .collect()
}

/// Lines of `text` wrapped to `width`, each with `style`.
fn wrapped(text: &str, width: usize, style: Style) -> impl Iterator<Item = Line<'static>> {
    wrap(text, width)
        .into_iter()
        .map(move |l| Line::styled(l, style))
}

/// Every line of the ladder of `c`, for an inner width of `width` columns.
pub fn lines(
    m: &Model,
    s: &SessionModel,
    c: &Checkpoint,
    stalls: &[&Stall],
    width: usize,
    theme: Theme,
) -> Vec<Line<'static>> {
    let scheme = s.scheme();
    let verdict = crate::present::verdict(s, c, stalls);
    let bad = !stalls.is_empty() || !c.complete(scheme);
    let style = if bad {
        theme.warn()
    } else {
        Style::default().add_modifier(Modifier::BOLD)
    };
    let mut out: Vec<Line<'static>> = wrapped(&verdict, width, style).collect();
    out.push(Line::raw(""));
    let arrows = width.saturating_sub(LEAD + BRACKET).max(16);
    let bold = Style::default().add_modifier(Modifier::BOLD);
    out.push(Line::from(vec![
        Span::raw(format!("{:>10} {:>9}  ", "first byte", "delta")),
        Span::styled(
            format!("{:<w$}", "primary", w = arrows.saturating_sub(9)),
            bold,
        ),
        Span::styled("secondary", bold),
    ]));
    let origin = c
        .phase_start(Phase::inside(scheme)[0], scheme)
        .or(c.first_record)
        .or(c.last_event())
        .unwrap_or(0);
    let slow: Vec<Phase> = stalls.iter().map(|x| x.phase).collect();
    let mut last = origin;
    for r in rungs(c) {
        let delta = r.ts.saturating_sub(last);
        last = r.ts;
        let label = cut(&r.name, arrows.saturating_sub(5));
        let arrow = match r.dir {
            Direction::Forward => format!("{:-<w$}>", format!("-- {label} "), w = arrows - 1),
            Direction::Reverse => format!("<{:->w$}", format!(" {label} --"), w = arrows - 1),
        };
        let mut spans = vec![Span::raw(format!(
            "{:>10} {:>9}  {arrow}",
            format!("{:.6}", rel(m, r.ts)),
            format!("+{}", human_ns(delta)),
        ))];
        let closes = r
            .event
            .and_then(CheckpointEvent::closes)
            .filter(|p| Phase::of(scheme).contains(p));
        if let Some(p) = closes {
            let (g, st) = theme.phase(p);
            spans.push(Span::raw(" ┘"));
            spans.push(Span::styled(g.to_string(), st));
            let text = format!(
                " {} {}",
                p.name(),
                c.phase(p, scheme).map_or("-".into(), human_ns)
            );
            spans.push(if slow.contains(&p) {
                Span::styled(text, theme.warn())
            } else {
                Span::raw(text)
            });
        }
        out.push(Line::from(spans));
    }
    out.push(Line::raw(""));
    // names in a column of 10 (QEMU COLO's device_state takes 12)
    let w = Phase::of(scheme)
        .iter()
        .map(|p| p.name().len())
        .max()
        .unwrap_or(0)
        .max(10);
    for &p in Phase::of(scheme) {
        let (g, st) = theme.phase(p);
        let d = c.phase(p, scheme);
        let (from, to) = c.phase_bounds(p, scheme);
        let stall = stalls.iter().find(|x| x.phase == p);
        let text = format!(
            " {:<w$} {:>10}   {from} -> {to}{}",
            p.name(),
            d.map_or("-".into(), human_ns),
            match stall {
                Some(x) if x.kind == StallKind::Stalled => "   STALLED".to_string(),
                Some(x) => format!(
                    "   SLOW > {}",
                    crate::present::secs(x.threshold.unwrap_or(0.0))
                ),
                None => String::new(),
            }
        );
        out.push(Line::from(vec![
            Span::styled(g.to_string(), st),
            if stall.is_some() {
                Span::styled(text, theme.warn())
            } else {
                Span::raw(text)
            },
        ]));
        if let (Phase::Memory, Scheme::XenColo, Some(mp)) = (p, scheme, c.memory_parts()) {
            out.push(Line::raw(format!(
                "   preparation {}, transfer {}{}",
                human_ns(mp.preparation),
                human_ns(mp.transfer),
                mp.rate
                    .map(|r| format!(" at {}/s", human_bytes(r as u64)))
                    .unwrap_or_default()
            )));
        }
    }
    if let Some(d) = c.downtime(scheme) {
        out.push(Line::raw(format!("  downtime   {:>10}", human_ns(d))));
    }
    if scheme == Scheme::QemuColo {
        if let Some(size) = c.vmstate_size {
            out.push(Line::raw(format!(
                "  device state {} announced by vmstate_size",
                human_bytes(size)
            )));
        }
    } else {
        out.push(Line::raw(format!(
            "  {}, {}, {} forward{}",
            crate::present::count(c.pages, "page", "pages"),
            crate::present::count(c.pfns, "pfn", "pfns"),
            human_bytes(c.bytes),
            if scheme == Scheme::XenColo && c.index > 0 {
                format!(
                    ", {}",
                    crate::present::count(c.dirty_pfns, "dirty pfn", "dirty pfns")
                )
            } else {
                String::new()
            }
        )));
    }
    if c.lost > 0 {
        out.push(Line::styled(
            format!("the capture lost {} of it", human_bytes(c.lost)),
            theme.warn(),
        ));
    }
    let plain = Style::default();
    // What TCP showed: the stall's own evidence when there is one (it
    // covers the phase), else the checkpoint's span.
    out.push(Line::raw(""));
    let evidence = match stalls.first() {
        Some(x) => x.evidence.clone(),
        None => {
            let t0 = c.first_record.unwrap_or(origin).min(origin);
            let t1 = c.last_event().unwrap_or(t0).max(t0);
            let end = if c.awaiting(scheme).is_some() {
                m.now.max(t1)
            } else {
                t1
            };
            crate::model::stall::evidence(s, t0, end)
        }
    };
    if evidence.is_empty() {
        out.push(Line::raw("tcp: nothing unusual in its span"));
    }
    for x in stalls.iter().skip(1) {
        let text = format!("also: {}; {}", crate::present::stall_what(x, None), x.why);
        out.extend(wrapped(&text, width, plain));
    }
    for e in &evidence {
        let text = format!("tcp: {}", crate::present::evidence_text(m, e));
        out.extend(wrapped(&text, width, plain));
    }
    out
}

/// Draws the ladder of the selected checkpoint over the timeline.
pub fn draw(f: &mut Frame<'_>, area: Rect, app: &mut App, m: &Model, theme: Theme) {
    let Some(pos) = app.selected(m) else { return };
    let Some(s) = m.sessions.get(app.session) else {
        return;
    };
    let c = &App::checkpoints(s)[pos];
    let w = area.width.saturating_sub(2).min(110);
    let h = area.height;
    let popup = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y,
        width: w,
        height: h,
    };
    let session = app.session;
    let all = app.all_stalls(m).get(session).cloned().unwrap_or_default();
    let mine: Vec<&Stall> = all.iter().filter(|x| x.checkpoint == c.index).collect();
    let text = lines(m, s, c, &mine, w.saturating_sub(2) as usize, theme);
    let page = h.saturating_sub(2) as usize;
    app.ladder_page = page;
    app.ladder_len = text.len();
    app.ladder_scroll = app.ladder_scroll.min(text.len().saturating_sub(page));
    let more = text.len() > page;
    let title = format!(
        " Checkpoint {} ladder{} ",
        c.index,
        if more {
            format!(
                ", lines {}-{} of {}",
                app.ladder_scroll + 1,
                (app.ladder_scroll + page).min(text.len()),
                text.len()
            )
        } else {
            String::new()
        }
    );
    let hint = format!(" {} ", super::keys::hints(super::keys::Where::Ladder));
    f.render_widget(Clear, popup);
    f.render_widget(
        Paragraph::new(text)
            .scroll((app.ladder_scroll.min(u16::MAX as usize) as u16, 0))
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(title)
                    .title_bottom(Line::from(hint).right_aligned()),
            ),
        popup,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: a real Remus checkpoint's CPU records, CHECKPOINT and
    /// CHECKPOINT_END share the segment that ends its pages; the ladder drew
    /// PAGE_DATA at its completion, after X86_TSC_INFO, so a 269 ms page
    /// transfer looked like the primary was silent.
    #[test]
    fn page_data_is_a_span_in_wire_order() {
        use crate::model::checkpoint::Step;
        let mut c = Checkpoint::new(3);
        c.first_page = Some(100);
        c.page_span = Some((150, 300));
        c.page_records = 2;
        for name in ["X86_TSC_INFO", "CHECKPOINT", "CHECKPOINT_END"] {
            c.steps.push(Step {
                first: 300,
                ts: 300,
                dir: Direction::Forward,
                name,
                event: None,
            });
        }
        let names: Vec<String> = rungs(&c).into_iter().map(|r| r.name).collect();
        assert!(names[0].starts_with("PAGE_DATA x2"), "{names:?}");
        assert_eq!(names[1], "PAGE_DATA done (200 ns)");
        assert_eq!(
            &names[2..],
            ["X86_TSC_INFO", "CHECKPOINT", "CHECKPOINT_END"]
        );
    }

    #[test]
    fn wrap_breaks_at_spaces_and_indents() {
        let w = wrap(
            "apply 2.300 s, 112x the median: svm_ready owed by the secondary",
            24,
        );
        assert!(w.iter().all(|l| l.chars().count() <= 24), "{w:?}");
        assert_eq!(w[0], "apply 2.300 s, 112x the");
        assert!(w[1].starts_with("  "));
        assert_eq!(wrap("", 10), [""]);
    }
}
