//! The Records view, like Wireshark's three panes: the session's records
//! from both directions in completion order (a virtualised table: only the
//! visible rows are built, so a frame costs the same for ten records or a
//! million), the selected record's field tree (shown fully expanded, scrolled
//! with the keys when the details pane has focus), and its bytes in hex and
//! ASCII, read again from the capture on demand
//! ([`super::refetch::fetch`], on a worker thread in `ui::run`).
//!
//! Summaries come from the decoded `Info` the model keeps for the latest
//! [`RECENT_INFO`] records; older rows show their summary kept as text
//! (cut to `SUMMARY_BYTES`). The details of an older
//! record are decoded again from its bytes once they have been read (records
//! up to [`MAX_SHOWN`] bytes). Dump text is hex and printable ASCII only;
//! other text comes escaped from the decoder.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table};
use ratatui::Frame;

use super::app::{App, Key};
use super::refetch::{FetchRequest, Fetched, MAX_SHOWN};
use super::render::Theme;
use crate::decode::detail::Field;
use crate::decode::info::Info;
use crate::decode::libxc::PfnEntry;
use crate::decode::wire::{le_u32, le_u64};
use crate::decode::{Direction, ItemKind, LibxcType, RecordType};
use crate::model::records::{Filter, Filtered, RecordEntry, RECENT_INFO};
use crate::model::{Model, SessionKind, SessionModel};

/// The pane that Up/Down and friends act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    List,
    Details,
    Bytes,
}

/// One line of the bytes pane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DumpLine {
    Label(String),
    /// `len` bytes (at most 16) from `at` in the fetched bytes.
    Hex {
        at: usize,
        len: usize,
    },
}

/// The bytes of the selected record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BytesState {
    Idle,
    Reading {
        session: usize,
        record: usize,
    },
    Ready {
        session: usize,
        record: usize,
        fetched: Fetched,
        lines: Vec<DumpLine>,
    },
    Failed {
        session: usize,
        record: usize,
        message: String,
    },
}

impl BytesState {
    fn is_for(&self, s: usize, r: usize) -> bool {
        match *self {
            BytesState::Idle => false,
            BytesState::Reading { session, record }
            | BytesState::Ready {
                session, record, ..
            }
            | BytesState::Failed {
                session, record, ..
            } => session == s && record == r,
        }
    }
}

/// What the Records view remembers between frames.
#[derive(Debug, Clone)]
pub struct RecordsView {
    /// Selected row (position in the filtered list).
    pub row: usize,
    /// First row shown.
    pub scroll: usize,
    /// Rows visible in the list (set by the renderer).
    pub page: usize,
    pub focus: Pane,
    pub details_scroll: usize,
    /// Line of the details pane under the cursor (when it has focus).
    pub details_cursor: usize,
    /// Collapsed nodes of the field tree, by path ("0/2/1").
    pub collapsed: std::collections::HashSet<String>,
    /// Path of each details line's node, from the last frame (for Enter).
    details_paths: Vec<Option<String>>,
    pub bytes_scroll: usize,
    /// The applied filter and the records that pass it.
    pub filtered: Option<Filtered>,
    filtered_session: usize,
    /// The filter being typed (`/`).
    pub input: Option<String>,
    /// A filter that did not parse, offered again by the next `/`.
    pub rejected: Option<String>,
    pub bytes: BytesState,
    /// Why bytes cannot be read again (live capture, standard input).
    pub no_bytes: Option<String>,
}

impl Default for RecordsView {
    fn default() -> Self {
        RecordsView {
            row: 0,
            scroll: 0,
            page: 10,
            focus: Pane::List,
            details_scroll: 0,
            details_cursor: 0,
            collapsed: std::collections::HashSet::new(),
            details_paths: Vec::new(),
            bytes_scroll: 0,
            filtered: None,
            filtered_session: 0,
            input: None,
            rejected: None,
            bytes: BytesState::Idle,
            no_bytes: None,
        }
    }
}

impl RecordsView {
    /// Rows of the list (records passing the filter), bringing the filter
    /// up to date with new records first.
    pub fn len(&mut self, m: &Model, session: usize) -> usize {
        let Some(s) = m.sessions.get(session) else {
            return 0;
        };
        match &mut self.filtered {
            Some(f) => {
                if self.filtered_session != session {
                    *f = Filtered::new(f.filter.clone());
                    self.filtered_session = session;
                }
                f.update(&s.record_index);
                f.matches.len()
            }
            None => s.record_index.len(),
        }
    }

    /// The index position of list row `row`.
    pub fn record_at(&self, s: &SessionModel, row: usize) -> Option<usize> {
        match &self.filtered {
            Some(f) => f.matches.get(row).map(|&i| i as usize),
            None => (row < s.record_index.len()).then_some(row),
        }
    }

    /// The selected record's index position.
    pub fn selected(&mut self, m: &Model, session: usize) -> Option<usize> {
        let len = self.len(m, session);
        self.row = self.row.min(len.saturating_sub(1));
        self.record_at(m.sessions.get(session)?, self.row)
    }

    fn clamp(&mut self, len: usize) {
        self.row = self.row.min(len.saturating_sub(1));
        let page = self.page.max(1);
        if self.row < self.scroll {
            self.scroll = self.row;
        }
        if self.row >= self.scroll + page {
            self.scroll = self.row + 1 - page;
        }
    }

    /// Moves the selection (or scrolls the focused pane) by `delta`.
    pub fn step(&mut self, m: &Model, session: usize, delta: isize) {
        let len = self.len(m, session);
        let move_by = |v: usize| (v as isize).saturating_add(delta).max(0) as usize;
        match self.focus {
            Pane::List => {
                let new = move_by(self.row).min(len.saturating_sub(1));
                if new != self.row {
                    self.details_scroll = 0;
                    self.details_cursor = 0;
                    self.bytes_scroll = 0;
                }
                self.row = new;
                self.clamp(len);
            }
            // Clamped to the content when drawn.
            Pane::Details => self.details_cursor = move_by(self.details_cursor),
            Pane::Bytes => self.bytes_scroll = move_by(self.bytes_scroll),
        }
    }

    /// Selects the list row `y` rows below the first shown (mouse).
    pub fn click(&mut self, m: &Model, session: usize, y: usize) {
        let len = self.len(m, session);
        let r = self.scroll + y;
        if r < len {
            self.row = r;
            self.details_scroll = 0;
            self.details_cursor = 0;
            self.bytes_scroll = 0;
        }
    }

    pub fn editing(&self) -> bool {
        self.input.is_some()
    }

    /// Applies the filter `text` (empty: none), keeping the selection on
    /// the same record or the next one that passes.
    pub fn apply(&mut self, text: &str, m: &Model, session: usize) -> Result<(), String> {
        let f = Filter::parse(text).map_err(|e| format!("filter: {e}"))?;
        let was = self.selected(m, session);
        self.filtered = (!f.is_empty()).then(|| Filtered::new(f));
        self.filtered_session = session;
        let len = self.len(m, session);
        self.row = match (&self.filtered, was) {
            (Some(f), Some(w)) => f.matches.partition_point(|&i| (i as usize) < w),
            (None, Some(w)) => w,
            _ => 0,
        };
        self.row = self.row.min(len.saturating_sub(1));
        self.scroll = self.row.saturating_sub(self.page.max(1) / 2);
        self.details_scroll = 0;
        self.bytes_scroll = 0;
        Ok(())
    }

    /// A key while the filter line is open. Returns a message for the
    /// status bar, if any.
    pub fn edit(&mut self, k: Key, m: &Model, session: usize) -> Option<String> {
        let input = self.input.as_mut()?;
        match k {
            Key::Char(c) => input.push(c),
            Key::Backspace => {
                input.pop();
            }
            Key::Esc => self.input = None,
            Key::Enter => {
                let text = input.clone();
                // The prompt closes either way, so the view's keys work
                // again; a rejected filter comes back with the next `/`.
                self.input = None;
                match self.apply(&text, m, session) {
                    Ok(()) => self.rejected = None,
                    Err(e) => {
                        self.rejected = Some(text);
                        return Some(format!("{e}; / edits it again"));
                    }
                }
            }
            _ => {}
        }
        None
    }

    /// Keys of this view; false when the key is not one of them.
    pub fn key(&mut self, k: Key, m: &Model, session: usize) -> bool {
        let page = self.page.max(1) as isize;
        match k {
            Key::Char('/') => {
                let cur = self.rejected.take().unwrap_or_else(|| {
                    self.filtered
                        .as_ref()
                        .map(|f| filter_text(&f.filter))
                        .unwrap_or_default()
                });
                self.input = Some(cur);
            }
            Key::Up | Key::Char('k') => self.step(m, session, -1),
            Key::Down | Key::Char('j') => self.step(m, session, 1),
            Key::PageUp => self.step(m, session, -page),
            Key::PageDown => self.step(m, session, page),
            Key::Home | Key::Char('g') => self.step(m, session, isize::MIN / 2),
            Key::End | Key::Char('G') => self.step(m, session, isize::MAX / 2),
            Key::Enter | Key::Char(' ') if self.focus == Pane::Details => {
                // Expand or collapse the node under the cursor.
                if let Some(Some(path)) = self.details_paths.get(self.details_cursor) {
                    if !self.collapsed.remove(path) {
                        self.collapsed.insert(path.clone());
                    }
                }
            }
            Key::Right | Key::Char('l') => {
                self.focus = match self.focus {
                    Pane::List => Pane::Details,
                    _ => Pane::Bytes,
                }
            }
            Key::Left | Key::Char('h') => {
                self.focus = match self.focus {
                    Pane::Bytes => Pane::Details,
                    _ => Pane::List,
                }
            }
            _ => return false,
        }
        true
    }

    /// The bytes to read for the selected record, when they are neither
    /// read nor being read; marks them as being read.
    pub fn request(&mut self, m: &Model, session: usize) -> Option<FetchRequest> {
        if self.no_bytes.is_some() {
            return None;
        }
        let rec = self.selected(m, session)?;
        if self.bytes.is_for(session, rec) {
            return None;
        }
        let s = m.sessions.get(session)?;
        let e = s.record_index.get(rec)?;
        self.bytes = BytesState::Reading {
            session,
            record: rec,
        };
        Some(FetchRequest {
            session: s.info.id,
            dir: e.dir,
            offset: e.offset,
            len: u64::from(e.wire_len),
        })
    }

    /// The worker's answer for record `record` of `session`; ignored when
    /// the selection has moved on.
    pub fn receive(
        &mut self,
        m: &Model,
        session: usize,
        record: usize,
        res: Result<Fetched, String>,
    ) {
        if self.bytes != (BytesState::Reading { session, record }) {
            return;
        }
        let Some(e) = m
            .sessions
            .get(session)
            .and_then(|s| s.record_index.get(record))
        else {
            return;
        };
        self.bytes = match res {
            Ok(fetched) => BytesState::Ready {
                session,
                record,
                lines: dump_lines(e, &fetched.bytes),
                fetched,
            },
            Err(message) => BytesState::Failed {
                session,
                record,
                message,
            },
        };
    }
}

/// The filter written back as text (for editing it again).
fn filter_text(f: &Filter) -> String {
    let mut w: Vec<String> = f.types.iter().map(|t| format!("type:{t}")).collect();
    if let Some(l) = f.layer {
        w.push(format!("layer:{}", l.name()));
    }
    if let Some(d) = f.dir {
        w.push(format!("dir:{}", dir_name(d)));
    }
    if let Some(c) = f.checkpoint {
        w.push(format!("ckpt:{c}"));
    }
    w.extend(f.text.iter().cloned());
    w.join(" ")
}

fn dir_name(d: Direction) -> &'static str {
    match d {
        Direction::Forward => "fwd",
        Direction::Reverse => "back",
    }
}

/// Page size for labelling PAGE_DATA (libxc's x86 page).
const PAGE_SIZE: usize = 4096;
/// Record header bytes of both layers (type, length).
const REC_HEADER: usize = crate::decode::wire::RECORD_HEADER_LEN;
/// PAGE_DATA body header: count, reserved.
const PAGE_DATA_HEADER: usize = crate::decode::libxc::PAGE_DATA_HEADER_LEN;

/// Splits a record's bytes into labelled parts, then hex rows of 16.
pub fn dump_lines(e: &RecordEntry, bytes: &[u8]) -> Vec<DumpLine> {
    let mut parts: Vec<(String, usize, usize)> = Vec::new();
    let n = bytes.len();
    let is_record = matches!(e.kind, ItemKind::Record(_));
    if is_record && n >= REC_HEADER {
        parts.push(("record header: type, body length".into(), 0, REC_HEADER));
        let body_end = (REC_HEADER + e.body_length as usize).min(n);
        let page_data = e.kind == ItemKind::Record(RecordType::Libxc(LibxcType::PageData));
        let pfns_at = REC_HEADER + PAGE_DATA_HEADER;
        if page_data && n >= pfns_at {
            let count = le_u32(bytes, REC_HEADER) as usize;
            parts.push((format!("count {count}, reserved"), REC_HEADER, pfns_at));
            let pages_at = pfns_at.saturating_add(count.saturating_mul(8));
            parts.push((
                format!("pfn list, {count} entries"),
                pfns_at,
                pages_at.min(n),
            ));
            let mut at = pages_at;
            let data_pages = (0..count)
                .map(|k| PfnEntry(le_u64(bytes, pfns_at + 8 * k)))
                .take_while(|_| pfns_at + 8 * count <= n)
                .filter(|p| p.page_type().carries_data());
            for (k, p) in data_pages.enumerate() {
                if at >= n {
                    break;
                }
                parts.push((
                    format!(
                        "page {} pfn {:#x} ({})",
                        k + 1,
                        p.pfn(),
                        p.page_type().name()
                    ),
                    at,
                    (at + PAGE_SIZE).min(n),
                ));
                at += PAGE_SIZE;
            }
            if at < body_end {
                parts.push(("rest of the body".into(), at, body_end));
            }
        } else if body_end > REC_HEADER {
            parts.push(("body".into(), REC_HEADER, body_end));
        }
        if body_end < n {
            parts.push(("padding".into(), body_end, n));
        }
    } else {
        parts.push((String::new(), 0, n));
    }
    let mut lines = Vec::new();
    for (label, a, b) in parts {
        if a >= b {
            continue;
        }
        if !label.is_empty() {
            lines.push(DumpLine::Label(label));
        }
        let mut at = a;
        while at < b {
            let len = (b - at).min(16);
            lines.push(DumpLine::Hex { at, len });
            at += len;
        }
    }
    lines
}

fn hex_row(base: u64, bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(80);
    let _ = write!(s, "{base:010x}  ");
    for i in 0..16 {
        match bytes.get(i) {
            Some(b) => {
                let _ = write!(s, "{b:02x}");
            }
            None => s.push_str("  "),
        }
        s.push(if i == 7 && bytes.len() > 8 { '-' } else { ' ' });
    }
    s.push(' ');
    s.extend(bytes.iter().map(|&b| {
        if (0x20..0x7f).contains(&b) {
            b as char
        } else {
            '.'
        }
    }));
    s
}

fn secs(m: &Model, ts: u64) -> f64 {
    ts.saturating_sub(m.start.unwrap_or(ts)) as f64 / 1e9
}

fn pane_block(title: String, focused: bool) -> Block<'static> {
    let b = Block::default().borders(Borders::ALL).title(title);
    if focused {
        b.title_style(Style::default().add_modifier(Modifier::BOLD))
    } else {
        b
    }
}

/// Draws the view into `area`.
pub fn draw(f: &mut Frame<'_>, area: Rect, app: &mut App, m: &Model, theme: Theme) {
    let session = app.session;
    let Some(s) = m.sessions.get(session) else {
        f.render_widget(
            Paragraph::new(super::render::no_session(app))
                .block(Block::default().borders(Borders::ALL).title(" Records ")),
            area,
        );
        return;
    };
    let v = &mut app.records;
    let [list_area, details_area, bytes_area] = Layout::vertical([
        Constraint::Percentage(45),
        Constraint::Percentage(25),
        Constraint::Percentage(30),
    ])
    .areas(area);
    // List.
    v.page = list_area.height.saturating_sub(3).max(1) as usize;
    let len = v.len(m, session);
    v.clamp(len);
    let idx = &s.record_index;
    let wide = list_area.width >= 100;
    let widths = [
        Constraint::Length(if wide { 8 } else { 6 }),
        Constraint::Length(if wide { 11 } else { 9 }),
        Constraint::Length(if wide { 10 } else { 8 }),
        Constraint::Length(4),
        Constraint::Length(5),
        Constraint::Length(if wide { 25 } else { 16 }),
        Constraint::Length(if wide { 9 } else { 7 }),
        Constraint::Min(5),
    ];
    let header = Row::new([
        "no", "time", "delta", "dir", "layer", "type", "length", "summary",
    ])
    .style(Style::default().add_modifier(Modifier::BOLD));
    let rows: Vec<Row> = (v.scroll..(v.scroll + v.page).min(len))
        .filter_map(|r| {
            let i = v.record_at(s, r)?;
            let e = idx.get(i)?;
            // From the previous record shown (Wireshark's "delta
            // displayed"): in a filtered list, the previous match.
            let delta = r
                .checked_sub(1)
                .and_then(|p| v.record_at(s, p))
                .and_then(|p| idx.get(p))
                .map_or(String::new(), |p| {
                    format!("{:.6}", e.ts.saturating_sub(p.ts) as f64 / 1e9)
                });
            let summary = idx
                .info(i)
                .map(Info::summary)
                .or_else(|| idx.summary(i).map(String::from))
                .unwrap_or_else(|| "…".into());
            let row = Row::new(vec![
                (i + 1).to_string(),
                format!("{:.6}", secs(m, e.ts)),
                delta,
                dir_name(e.dir).to_string(),
                e.layer.name().to_string(),
                e.type_name(),
                e.wire_len.to_string(),
                summary,
            ]);
            Some(if r == v.row {
                row.style(Style::default().add_modifier(Modifier::REVERSED))
            } else {
                row
            })
        })
        .collect();
    let mut title = format!(" Records of session {} ", s.info.id);
    match &v.filtered {
        Some(fl) => title.push_str(&format!(
            "({} of {}, filter: {}) ",
            len,
            idx.len(),
            filter_text(&fl.filter)
        )),
        None => title.push_str(&format!("({}) ", idx.len())),
    }
    let mut block = pane_block(title, v.focus == Pane::List);
    if let Some(input) = &v.input {
        block = block.title_bottom(Line::from(format!(" /{input}_ ")));
    }
    f.render_widget(
        Table::new(rows, widths).header(header).block(block),
        list_area,
    );

    let sel = v.record_at(s, v.row);
    let entry = sel.and_then(|i| idx.get(i).map(|e| (i, *e)));
    // Details.
    let inner_h = details_area.height.saturating_sub(2) as usize;
    let lines: Vec<(String, Option<String>)> = match entry {
        Some((i, e)) => details(m, s, &v.bytes, session, i, &e, &v.collapsed),
        None => vec![("(no record)".to_string(), None)],
    };
    v.details_cursor = v.details_cursor.min(lines.len().saturating_sub(1));
    if v.details_cursor < v.details_scroll {
        v.details_scroll = v.details_cursor;
    }
    if inner_h > 0 && v.details_cursor >= v.details_scroll + inner_h {
        v.details_scroll = v.details_cursor + 1 - inner_h;
    }
    v.details_scroll = v.details_scroll.min(lines.len().saturating_sub(inner_h));
    v.details_paths = lines.iter().map(|l| l.1.clone()).collect();
    let focused = v.focus == Pane::Details;
    let shown: Vec<Line> = lines
        .iter()
        .enumerate()
        .skip(v.details_scroll)
        .take(inner_h)
        .map(|(n, l)| {
            if focused && n == v.details_cursor {
                Line::styled(
                    l.0.clone(),
                    Style::default().add_modifier(Modifier::REVERSED),
                )
            } else {
                Line::raw(l.0.clone())
            }
        })
        .collect();
    f.render_widget(
        Paragraph::new(shown).block(pane_block(
            format!(
                " Details ({} lines{}) ",
                lines.len(),
                if focused {
                    "; Enter expands/collapses"
                } else {
                    ""
                }
            ),
            focused,
        )),
        details_area,
    );
    // Bytes.
    let inner_h = bytes_area.height.saturating_sub(2) as usize;
    let (title, text): (String, Vec<Line>) = match (entry, &v.no_bytes, &v.bytes) {
        (None, _, _) => (" Bytes ".into(), vec![]),
        (Some((_, e)), Some(why), _) => (
            format!(" Bytes: not available ({why}) "),
            header_only(&e)
                .into_iter()
                .map(|l| Line::styled(l, theme_dim(theme)))
                .collect(),
        ),
        (Some((i, e)), None, b) if b.is_for(session, i) => match b {
            BytesState::Ready { fetched, lines, .. } => {
                v.bytes_scroll = v.bytes_scroll.min(lines.len().saturating_sub(inner_h));
                let mut t = format!(
                    " Bytes: {} of {} read again from the capture ({} packets)",
                    fetched.bytes.len(),
                    e.wire_len,
                    fetched.packets
                );
                if fetched.truncated {
                    t.push_str(&format!(", first {} KiB shown", MAX_SHOWN >> 10));
                }
                if fetched.missing > 0 {
                    t.push_str(&format!(", {} missing (zeros)", fetched.missing));
                }
                t.push(' ');
                let rows = lines
                    .iter()
                    .skip(v.bytes_scroll)
                    .take(inner_h)
                    .map(|l| match l {
                        DumpLine::Label(s) => Line::styled(
                            format!("-- {s}"),
                            Style::default().add_modifier(Modifier::BOLD),
                        ),
                        DumpLine::Hex { at, len } => Line::raw(hex_row(
                            e.offset + *at as u64,
                            &fetched.bytes[*at..at + len],
                        )),
                    })
                    .collect();
                (t, rows)
            }
            BytesState::Failed { message, .. } => (
                " Bytes: reading failed ".into(),
                vec![Line::raw(message.clone())],
            ),
            _ => (
                " Bytes: reading… ".into(),
                vec![Line::raw(
                    "reading the capture again from its start to this record",
                )],
            ),
        },
        (Some(_), None, _) => (" Bytes ".into(), vec![Line::raw("not read yet")]),
    };
    f.render_widget(
        Paragraph::new(text).block(pane_block(title, v.focus == Pane::Bytes)),
        bytes_area,
    );
}

fn theme_dim(theme: Theme) -> Style {
    if theme.color {
        Style::default().fg(ratatui::style::Color::DarkGray)
    } else {
        Style::default()
    }
}

/// What can be shown without the capture: the record header rebuilt from
/// the index (type number unknown for non-records).
fn header_only(e: &RecordEntry) -> Vec<String> {
    let mut out = vec!["rebuilt from the index, not read from the capture:".to_string()];
    if let ItemKind::Record(t) = e.kind {
        let mut b = Vec::with_capacity(8);
        b.extend_from_slice(&t.to_u32().to_le_bytes());
        b.extend_from_slice(&e.body_length.to_le_bytes());
        out.push(hex_row(e.offset, &b));
    }
    out
}

/// The details pane's lines, each with the path of its tree node (for
/// expanding and collapsing): the index fields, then the field tree, whose
/// collapsed nodes hide their children.
fn details(
    m: &Model,
    s: &SessionModel,
    bytes: &BytesState,
    session: usize,
    i: usize,
    e: &RecordEntry,
    collapsed: &std::collections::HashSet<String>,
) -> Vec<(String, Option<String>)> {
    let head = vec![
        format!(
            "Record {}: {} ({}, {})",
            i + 1,
            e.type_name(),
            e.layer.name(),
            e.dir.label()
        ),
        format!("    time: {:.6} s since the first packet", secs(m, e.ts)),
        format!("    stream offset: {} ({:#x})", e.offset, e.offset),
        format!(
            "    length: {} on the wire, body {}{}",
            e.wire_len,
            e.body_length,
            if e.lost > 0 {
                format!(", {} lost", e.lost)
            } else {
                String::new()
            }
        ),
        format!(
            "    checkpoint: {}",
            match e.checkpoint() {
                // a plain migration has no checkpoints
                Some(c) if matches!(s.kind(), SessionKind::Colo | SessionKind::Remus) =>
                    format!("#{c}"),
                _ => "none".into(),
            }
        ),
    ];
    let mut out: Vec<(String, Option<String>)> = head.into_iter().map(|l| (l, None)).collect();
    let (fields, note) = match s.record_index.info(i) {
        Some(info) => (info.details(), None),
        None => match (bytes, e.kind) {
            (
                BytesState::Ready {
                    session: bs,
                    record,
                    fetched,
                    ..
                },
                ItemKind::Record(t),
            ) if *bs == session && *record == i => {
                let end = REC_HEADER + e.body_length as usize;
                if fetched.truncated || fetched.missing > 0 || fetched.bytes.len() < end {
                    (
                        vec![],
                        Some("content: not kept, and the bytes read are incomplete".to_string()),
                    )
                } else {
                    let info = Info::from_body(t, &fetched.bytes[REC_HEADER..end], PAGE_SIZE as u32);
                    (
                        info.details(),
                        Some("content (decoded again from the capture):".to_string()),
                    )
                }
            }
            // a QEMU item depends on the stream before it (section names,
            // the current RAMBlock): its bytes alone do not decode
            (_, ItemKind::Qemu(_)) => (
                vec![],
                Some(format!(
                    "content: kept for the latest {RECENT_INFO} records only (a QEMU item is not decoded again from its bytes alone)"
                )),
            ),
            _ => (
                vec![],
                Some(format!(
                    "content: kept for the latest {RECENT_INFO} records only; decoded again once the bytes are read"
                )),
            ),
        },
    };
    if let Some(n) = note {
        out.push((n, None));
    }
    fn walk(
        fs: &[Field],
        depth: usize,
        prefix: &str,
        collapsed: &std::collections::HashSet<String>,
        out: &mut Vec<(String, Option<String>)>,
    ) {
        for (k, f) in fs.iter().enumerate() {
            let path = if prefix.is_empty() {
                k.to_string()
            } else {
                format!("{prefix}/{k}")
            };
            let closed = collapsed.contains(&path);
            let mut l = "    ".repeat(depth.saturating_sub(1));
            l.push_str(match (f.children.is_empty(), closed) {
                (true, _) => "    ",
                (false, false) => "  ▾ ",
                (false, true) => "  ▸ ",
            });
            l.push_str(&f.name);
            if !f.value.is_empty() {
                l.push_str(": ");
                l.push_str(&f.value);
            }
            if closed {
                l.push_str(&format!("  ({} more)", f.children.len()));
            }
            let has = !f.children.is_empty();
            out.push((l, has.then(|| path.clone())));
            if has && !closed {
                walk(&f.children, depth + 1, &path, collapsed, out);
            }
        }
    }
    walk(&fields, 1, "", collapsed, &mut out);
    out
}
