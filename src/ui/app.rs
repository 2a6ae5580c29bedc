//! The application state and what each key does, without any terminal: the
//! views render from `App` plus the model, and key handling is tested here
//! without rendering (gitui's habit).

use crate::model::expert::Finding;
use crate::model::stall::{Stall, StallKind};
use crate::model::{Checkpoint, Model, Phase, Scheme, SessionModel, Thresholds};

use super::records::RecordsView;

/// The screens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Sessions,
    Timeline,
    Tcp,
    /// Every record of the selected session (key 4).
    Records,
}

impl View {
    /// The next view in the Tab cycle (the previous with `back`).
    fn cycle(self, back: bool) -> View {
        match (self, back) {
            (View::Sessions, false) | (View::Tcp, true) => View::Timeline,
            (View::Timeline, false) | (View::Records, true) => View::Tcp,
            (View::Tcp, false) | (View::Sessions, true) => View::Records,
            (View::Records, false) | (View::Timeline, true) => View::Sessions,
        }
    }
}

/// Start of a checkpoint: its first event or record.
fn cp_start(c: &Checkpoint) -> Option<u64> {
    c.events
        .iter()
        .flatten()
        .copied()
        .chain(c.first_record)
        .min()
}

/// The position (in [`App::checkpoints`]) of the checkpoint whose span, from
/// its first event to the next checkpoint's start (its own last event for
/// the latest), contains `ts`. A time before the first checkpoint gives the
/// first, one after the latest gives the latest; None without checkpoints.
pub fn checkpoint_at(s: &SessionModel, ts: u64) -> Option<usize> {
    let cps = App::checkpoints(s);
    // The latest start at or before ts: the spans run from one start to the
    // next, so that checkpoint's span contains ts (or ts is past the end).
    let before = cps
        .iter()
        .enumerate()
        .filter_map(|(i, c)| cp_start(c).map(|t| (t, i)))
        .filter(|&(t, _)| t <= ts)
        .max();
    let first = || {
        cps.iter()
            .enumerate()
            .filter_map(|(i, c)| cp_start(c).map(|t| (t, i)))
            .min()
    };
    before.or_else(first).map(|(_, i)| i)
}

/// How the timeline orders checkpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Index,
    Downtime,
    Phase(Phase),
}

impl Sort {
    /// The next order in the `s` cycle: index, downtime, then each phase
    /// of the scheme's family ([`Phase::family`]).
    fn next(self, scheme: Scheme) -> Sort {
        let phases = Phase::family(scheme);
        match self {
            Sort::Index => Sort::Downtime,
            Sort::Downtime => Sort::Phase(phases[0]),
            Sort::Phase(p) if p.slot() + 1 == phases.len() => Sort::Index,
            Sort::Phase(p) => Sort::Phase(phases[p.slot() + 1]),
        }
    }

    /// The order for a session of `scheme`: a phase chosen in a session of
    /// the other family is the one in the same slot of this one's.
    pub fn in_scheme(self, scheme: Scheme) -> Sort {
        match self {
            Sort::Phase(p) => Sort::Phase(p.in_scheme(scheme)),
            s => s,
        }
    }

    pub fn name(self) -> String {
        match self {
            Sort::Index => "index".into(),
            Sort::Downtime => "downtime".into(),
            Sort::Phase(p) => p.name().into(),
        }
    }
}

/// How times are shown, like Wireshark's time display formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeFormat {
    /// Seconds since the first packet.
    SinceStart,
    /// Time of day (UTC).
    Absolute,
    /// Since the previous checkpoint's NEW.
    SincePrevious,
}

impl TimeFormat {
    fn next(self) -> TimeFormat {
        match self {
            TimeFormat::SinceStart => TimeFormat::Absolute,
            TimeFormat::Absolute => TimeFormat::SincePrevious,
            TimeFormat::SincePrevious => TimeFormat::SinceStart,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            TimeFormat::SinceStart => "since start",
            TimeFormat::Absolute => "time of day",
            TimeFormat::SincePrevious => "since previous",
        }
    }
}

/// A key, as the app sees it (crossterm's events are mapped in `ui::run`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Char(char),
    Enter,
    Esc,
    Tab,
    BackTab,
    Up,
    Down,
    Left,
    Right,
    PageUp,
    PageDown,
    Home,
    End,
    Backspace,
    CtrlC,
}

/// What the event loop must do after a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    None,
    Redraw,
    Quit,
    /// Write the current session's report (JSON and CSV) and say where.
    Export,
    /// Replay: pause or resume.
    Pause,
    /// Replay: run to the end of the next checkpoint, then pause.
    Step,
}

/// Everything the UI remembers between frames.
#[derive(Debug, Clone)]
pub struct App {
    pub view: View,
    pub help: bool,
    /// First help line shown, and the lines that fit (set by the renderer).
    pub help_scroll: usize,
    pub help_page: usize,
    /// Selected session (index into the model's sessions).
    pub session: usize,
    /// Selected row of the timeline (position in the sorted order).
    pub row: usize,
    /// First timeline row shown.
    pub scroll: usize,
    pub sort: Sort,
    pub time: TimeFormat,
    /// The ladder of the selected checkpoint is open.
    pub ladder: bool,
    /// First ladder line shown, and (set by the renderer) the lines that
    /// fit and the ladder's length.
    pub ladder_scroll: usize,
    pub ladder_page: usize,
    pub ladder_len: usize,
    /// Follow the newest checkpoint (live).
    pub follow: bool,
    /// Nanoseconds per bar cell (None: fit the session's p90 downtime).
    pub ns_per_cell: Option<u64>,
    /// Time from the start of the bar's scale that is shown first (pan).
    pub pan_ns: u64,
    /// Phase whose histogram the strip shows.
    pub histogram: Phase,
    /// A line for the status bar (export path, errors).
    pub message: Option<String>,
    /// Rows visible in the timeline table (set by the renderer).
    pub page: usize,
    pub thresholds: Thresholds,
    /// Replay speed and whether it is paused (None: not a replay).
    pub replay: Option<(f64, bool)>,
    /// Selected entry of the TCP view's list, and the first one shown.
    pub tcp_row: usize,
    pub tcp_scroll: usize,
    /// Entries visible in the TCP list, and the screen row of the first
    /// (set by the renderer, for paging and mouse clicks).
    pub tcp_page: usize,
    pub tcp_first_y: u16,
    /// Whether the capture is over, as last told (stalls in the TCP list).
    pub capture_ended: bool,
    /// The Records view's selection, filter, panes and bytes.
    pub records: RecordsView,
    /// Sorted checkpoint positions, cached by (session, count, sort).
    order: Vec<usize>,
    order_key: (usize, usize, Option<Sort>),
    /// Stalls of every session, cached by (sessions, checkpoints, clock in
    /// 100 ms steps), so a frame does not walk every checkpoint.
    stall_cache: Vec<Vec<Stall>>,
    stall_key: Option<(usize, usize, u64, bool)>,
    /// Histogram buckets, cached by (session, count, phase, buckets).
    hist_cache: HistCache,
}

/// A phase histogram and what it was computed for.
#[derive(Debug, Clone, Default)]
struct HistCache {
    key: Option<(usize, usize, Phase, usize)>,
    lo: u64,
    hi: u64,
    counts: Vec<u64>,
}

impl App {
    pub fn new(thresholds: Thresholds) -> Self {
        App {
            view: View::Sessions,
            help: false,
            help_scroll: 0,
            help_page: 20,
            session: 0,
            row: 0,
            scroll: 0,
            sort: Sort::Index,
            time: TimeFormat::SinceStart,
            ladder: false,
            ladder_scroll: 0,
            ladder_page: 10,
            ladder_len: 0,
            follow: false,
            ns_per_cell: None,
            pan_ns: 0,
            histogram: Phase::Apply,
            message: None,
            page: 10,
            thresholds,
            replay: None,
            tcp_row: 0,
            tcp_scroll: 0,
            tcp_page: 10,
            tcp_first_y: 0,
            capture_ended: false,
            records: RecordsView::default(),
            order: Vec::new(),
            order_key: (usize::MAX, 0, None),
            stall_cache: Vec::new(),
            stall_key: None,
            hist_cache: HistCache::default(),
        }
    }

    /// Stalls of every session as of the model's clock, recomputed only
    /// when checkpoints, the clock (in 10 ms steps) or the end of the
    /// capture move.
    pub fn all_stalls(&mut self, m: &Model) -> &[Vec<Stall>] {
        let count: usize = m.sessions.iter().map(|s| s.checkpoints.len()).sum();
        let key = (
            m.sessions.len(),
            count,
            m.now / 10_000_000,
            self.capture_ended,
        );
        if self.stall_key != Some(key) {
            let ended = self.capture_ended;
            self.stall_cache = m
                .sessions
                .iter()
                .map(|s| m.stalls(s, &self.thresholds, ended))
                .collect();
            self.stall_key = Some(key);
        }
        &self.stall_cache
    }

    /// The selected session's scheme (Xen COLO's when there is none).
    fn scheme(&self, m: &Model) -> Scheme {
        m.sessions
            .get(self.session)
            .map_or(Scheme::XenColo, SessionModel::scheme)
    }

    /// Histogram of phase `p` (or the phase in its slot of the session's
    /// scheme) in the selected session: (min, max, counts).
    pub fn histogram(&mut self, m: &Model, p: Phase, buckets: usize) -> (u64, u64, &[u64]) {
        let buckets = buckets.max(1);
        let Some(s) = m.sessions.get(self.session) else {
            return (0, 0, &[]);
        };
        let cps = Self::checkpoints(s);
        let key = Some((self.session, cps.len(), p, buckets));
        if self.hist_cache.key != key {
            let scheme = s.scheme();
            let p = p.in_scheme(scheme);
            let vals: Vec<u64> = cps.iter().filter_map(|c| c.phase(p, scheme)).collect();
            let lo = vals.iter().copied().min().unwrap_or(0);
            let hi = vals.iter().copied().max().unwrap_or(0);
            let mut counts = vec![0u64; buckets];
            for v in &vals {
                let i = if hi > lo {
                    ((v - lo) as u128 * (buckets as u128 - 1) / (hi - lo) as u128) as usize
                } else {
                    0
                };
                counts[i.min(buckets - 1)] += 1;
            }
            self.hist_cache = HistCache {
                key,
                lo,
                hi,
                counts,
            };
        }
        let h = &self.hist_cache;
        (h.lo, h.hi, &h.counts)
    }

    /// The checkpoints the timeline lists (a Remus trailer that has not
    /// started is not one).
    pub fn checkpoints(s: &SessionModel) -> &[Checkpoint] {
        s.listed_checkpoints()
    }

    /// The timeline's order: positions into `checkpoints`, recomputed only
    /// when the session, the count or the sort changes.
    pub fn order(&mut self, m: &Model) -> &[usize] {
        let Some(s) = m.sessions.get(self.session) else {
            self.order.clear();
            return &self.order;
        };
        let cps = Self::checkpoints(s);
        let key = (self.session, cps.len(), Some(self.sort));
        if key != self.order_key {
            let scheme = s.scheme();
            let mut order: Vec<usize> = (0..cps.len()).collect();
            let val = |c: &Checkpoint| -> u64 {
                match self.sort.in_scheme(scheme) {
                    Sort::Index => 0,
                    Sort::Downtime => c.downtime(scheme).unwrap_or(0),
                    Sort::Phase(p) => c.phase(p, scheme).unwrap_or(0),
                }
            };
            if self.sort != Sort::Index {
                order.sort_by(|&a, &b| val(&cps[b]).cmp(&val(&cps[a])).then(a.cmp(&b)));
            }
            self.order = order;
            self.order_key = key;
        }
        &self.order
    }

    /// The selected checkpoint's position in `checkpoints`.
    pub fn selected(&mut self, m: &Model) -> Option<usize> {
        let row = self.row;
        self.order(m).get(row).copied()
    }

    /// Stalls of the selected session (slow phases and a stalled checkpoint).
    pub fn stalls(&self, m: &Model, capture_ended: bool) -> Vec<Stall> {
        m.sessions
            .get(self.session)
            .map(|s| m.stalls(s, &self.thresholds, capture_ended))
            .unwrap_or_default()
    }

    fn clamp(&mut self, len: usize) {
        if len == 0 {
            self.row = 0;
            self.scroll = 0;
            return;
        }
        self.row = self.row.min(len - 1);
        if self.row < self.scroll {
            self.scroll = self.row;
        }
        let page = self.page.max(1);
        if self.row >= self.scroll + page {
            self.scroll = self.row + 1 - page;
        }
    }

    fn rows(&mut self, m: &Model) -> usize {
        match self.view {
            View::Sessions => m.sessions.len(),
            View::Timeline => self.order(m).len(),
            View::Records => self.records.len(m, self.session),
            View::Tcp => self.expert(m).len(),
        }
    }

    /// The TCP view's list (Expert Info) for the selected session.
    pub fn expert(&self, m: &Model) -> Vec<Finding> {
        crate::model::expert::findings(m, self.session, &self.thresholds, self.capture_ended)
    }

    /// Keeps the TCP list's selection inside `len` entries and on screen.
    pub fn clamp_tcp(&mut self, len: usize) {
        self.tcp_row = self.tcp_row.min(len.saturating_sub(1));
        if self.tcp_row < self.tcp_scroll {
            self.tcp_scroll = self.tcp_row;
        }
        let page = self.tcp_page.max(1);
        if self.tcp_row >= self.tcp_scroll + page {
            self.tcp_scroll = self.tcp_row + 1 - page;
        }
    }

    /// Shows the timeline with the checkpoint that contains capture time
    /// `ts` selected (in the current order); false, with a message, when
    /// the session has no checkpoint.
    pub fn jump_to_time(&mut self, m: &Model, ts: u64) -> bool {
        let Some(pos) = m
            .sessions
            .get(self.session)
            .and_then(|s| checkpoint_at(s, ts))
        else {
            self.message = Some("no checkpoint in this session to go to".into());
            return false;
        };
        let row = self.order(m).iter().position(|&p| p == pos).unwrap_or(0);
        let len = self.order(m).len();
        self.view = View::Timeline;
        self.ladder = false;
        self.follow = false;
        self.row = row;
        self.clamp(len);
        true
    }

    /// Moves the selection by `delta` rows.
    fn step(&mut self, m: &Model, delta: isize) {
        let len = self.rows(m);
        let cur = match self.view {
            View::Sessions => self.session,
            View::Timeline => self.row,
            View::Tcp => self.tcp_row,
            View::Records => return self.records.step(m, self.session, delta),
        } as isize;
        let new = (cur + delta).clamp(0, len.saturating_sub(1) as isize) as usize;
        match self.view {
            View::Sessions => {
                if new != self.session {
                    self.tcp_row = 0;
                    self.tcp_scroll = 0;
                }
                self.session = new;
            }
            View::Timeline => {
                self.row = new;
                self.follow = false;
                self.clamp(len);
            }
            View::Tcp => {
                self.tcp_row = new;
                self.clamp_tcp(len);
            }
            View::Records => {}
        }
    }

    /// Jumps to the next (or previous) checkpoint with a stall, in the
    /// current order.
    fn jump_stall(&mut self, m: &Model, capture_ended: bool, forward: bool) -> bool {
        let marked: Vec<u64> = self
            .stalls(m, capture_ended)
            .iter()
            .map(|x| x.checkpoint)
            .collect();
        let Some(s) = m.sessions.get(self.session) else {
            return false;
        };
        let cps = Self::checkpoints(s);
        let order = self.order(m).to_vec();
        let is_marked = |pos: usize| marked.contains(&cps[pos].index);
        let n = order.len();
        for k in 1..=n {
            let r = if forward {
                (self.row + k) % n
            } else {
                (self.row + n * 2 - k) % n
            };
            if is_marked(order[r]) {
                self.row = r;
                self.follow = false;
                self.clamp(n);
                return true;
            }
        }
        false
    }

    /// Follow mode: the newest checkpoint is selected.
    pub fn follow_newest(&mut self, m: &Model) {
        if self.follow && self.view == View::Timeline && self.sort == Sort::Index {
            let len = self.order(m).len();
            self.row = len.saturating_sub(1);
            self.clamp(len);
        }
    }

    /// Applies a key; `capture_ended` tells stall jumps whether the capture
    /// is over.
    pub fn key(&mut self, k: Key, m: &Model, capture_ended: bool) -> Action {
        self.capture_ended = capture_ended;
        if k == Key::CtrlC {
            return Action::Quit;
        }
        if self.view == View::Records && self.records.editing() && !self.help {
            self.message = self.records.edit(k, m, self.session);
            return Action::Redraw;
        }
        if k == Key::Char('q') {
            return Action::Quit;
        }
        if self.help {
            let max = super::render::help_text()
                .len()
                .saturating_sub(self.help_page.max(1));
            let page = self.help_page.max(1);
            let s = &mut self.help_scroll;
            match k {
                Key::Up | Key::Char('k') => *s = s.saturating_sub(1),
                Key::Down | Key::Char('j') => *s = (*s + 1).min(max),
                Key::PageUp => *s = s.saturating_sub(page),
                Key::PageDown | Key::Char(' ') => *s = (*s + page).min(max),
                Key::Home | Key::Char('g') => *s = 0,
                Key::End | Key::Char('G') => *s = max,
                _ => self.help = false,
            }
            return Action::Redraw;
        }
        if k == Key::Char('?') {
            self.help = true;
            self.help_scroll = 0;
            return Action::Redraw;
        }
        if self.ladder && self.view == View::Timeline {
            if let Some(a) = self.ladder_key(k, m) {
                return a;
            }
        }
        self.message = None;
        if self.view == View::Records && self.records.key(k, m, self.session) {
            return Action::Redraw;
        }
        let page = self.page.max(1) as isize;
        match k {
            Key::Tab
            | Key::BackTab
            | Key::Char('1')
            | Key::Char('2')
            | Key::Char('3')
            | Key::Char('4') => {
                self.view = match k {
                    Key::Char('1') => View::Sessions,
                    Key::Char('2') => View::Timeline,
                    Key::Char('3') => View::Tcp,
                    Key::Char('4') => View::Records,
                    _ => self.view.cycle(k == Key::BackTab),
                };
                self.ladder = false;
            }
            Key::Up | Key::Char('k') => self.step(m, -1),
            Key::Down | Key::Char('j') => self.step(m, 1),
            Key::PageUp => self.step(m, -page),
            Key::PageDown => self.step(m, page),
            Key::Home | Key::Char('g') => self.step(m, isize::MIN / 2),
            Key::End | Key::Char('G') => self.step(m, isize::MAX / 2),
            Key::Enter => {
                let has_row = self.selected(m).is_some();
                match self.view {
                    View::Sessions if self.session < m.sessions.len() => {
                        self.view = View::Timeline;
                        self.row = 0;
                        self.scroll = 0;
                    }
                    View::Timeline if has_row => {
                        self.ladder = !self.ladder;
                        self.ladder_scroll = 0;
                    }
                    View::Tcp => {
                        let list = self.expert(m);
                        match list.get(self.tcp_row) {
                            Some(e) if e.ts != u64::MAX => {
                                self.jump_to_time(m, e.ts);
                            }
                            _ => return Action::None,
                        }
                    }
                    _ => return Action::None,
                }
            }
            Key::Esc => match self.view {
                View::Timeline | View::Tcp => self.view = View::Sessions,
                // Esc clears the filter first, then leaves.
                View::Records if self.records.filtered.is_some() => {
                    if let Err(e) = self.records.apply("", m, self.session) {
                        self.message = Some(e);
                    }
                }
                View::Records => self.view = View::Sessions,
                View::Sessions => {}
            },
            Key::Char('n') | Key::Char('N') if self.view == View::Timeline => {
                if !self.jump_stall(m, capture_ended, k == Key::Char('n')) {
                    self.message = Some("no stall or slow phase in this session".into());
                }
            }
            Key::Char('s') => {
                let scheme = self.scheme(m);
                self.sort = self.sort.in_scheme(scheme).next(scheme);
                self.row = 0;
                self.scroll = 0;
            }
            Key::Char('t') => self.time = self.time.next(),
            Key::Char('f') => {
                self.follow = !self.follow;
                self.follow_newest(m);
            }
            Key::Char('+') | Key::Char('=') => {
                let cur = self.ns_per_cell.unwrap_or(1_000_000);
                self.ns_per_cell = Some((cur / 2).max(1_000));
            }
            Key::Char('-') => {
                let cur = self.ns_per_cell.unwrap_or(1_000_000);
                self.ns_per_cell = Some(cur.saturating_mul(2).min(60_000_000_000));
            }
            Key::Char('0') => {
                self.ns_per_cell = None;
                self.pan_ns = 0;
            }
            Key::Left | Key::Char('h') => {
                let cell = self.ns_per_cell.unwrap_or(1_000_000);
                self.pan_ns = self.pan_ns.saturating_sub(cell * 8);
            }
            Key::Right | Key::Char('l') => {
                let cell = self.ns_per_cell.unwrap_or(1_000_000);
                self.pan_ns = self.pan_ns.saturating_add(cell * 8);
            }
            Key::Char('p') => {
                let phases = Phase::family(self.scheme(m));
                self.histogram = phases[(self.histogram.slot() + 1) % phases.len()];
            }
            Key::Char('e') => return Action::Export,
            Key::Char(' ') if self.replay.is_some() => return Action::Pause,
            Key::Char('.') if self.replay.is_some() => return Action::Step,
            _ => return Action::None,
        }
        Action::Redraw
    }

    /// Keys of the open ladder: scrolling, `r` (the Records view filtered
    /// to this checkpoint), Esc/Enter close; None lets the key through
    /// (`n`/`N` move to the next stall with the ladder open).
    fn ladder_key(&mut self, k: Key, m: &Model) -> Option<Action> {
        let page = self.ladder_page.max(1);
        let max = self.ladder_len.saturating_sub(page);
        let s = &mut self.ladder_scroll;
        match k {
            Key::Esc | Key::Enter => self.ladder = false,
            Key::Up | Key::Char('k') => *s = s.saturating_sub(1),
            Key::Down | Key::Char('j') => *s = (*s + 1).min(max),
            Key::PageUp => *s = s.saturating_sub(page),
            Key::PageDown | Key::Char(' ') => *s = (*s + page).min(max),
            Key::Home | Key::Char('g') => *s = 0,
            Key::End | Key::Char('G') => *s = max,
            Key::Char('r') => {
                let pos = self.selected(m)?;
                let s = m.sessions.get(self.session)?;
                let index = Self::checkpoints(s).get(pos)?.index;
                self.ladder = false;
                self.view = View::Records;
                if let Err(e) = self
                    .records
                    .apply(&format!("ckpt:{index}"), m, self.session)
                {
                    self.message = Some(e);
                }
            }
            Key::Char('n') | Key::Char('N') => {
                self.ladder_scroll = 0;
                return None;
            }
            _ => return None,
        }
        Some(Action::Redraw)
    }

    /// Selects the timeline row at `y` rows below the first shown (mouse).
    pub fn click_row(&mut self, m: &Model, y: usize) {
        match self.view {
            View::Sessions => {
                if y < m.sessions.len() {
                    self.session = y;
                }
            }
            View::Timeline => {
                let len = self.order(m).len();
                let r = self.scroll + y;
                if r < len {
                    self.row = r;
                    self.follow = false;
                }
            }
            View::Tcp => {
                let len = self.expert(m).len();
                let r = self.tcp_scroll + y;
                if r < len {
                    self.tcp_row = r;
                }
            }
            View::Records => self.records.click(m, self.session, y),
        }
    }

    /// Scrolls by `delta` rows (mouse wheel): the ladder when it is open.
    pub fn wheel(&mut self, m: &Model, delta: isize) {
        if self.ladder && self.view == View::Timeline {
            let max = self.ladder_len.saturating_sub(self.ladder_page.max(1));
            self.ladder_scroll = self.ladder_scroll.saturating_add_signed(delta).min(max);
            return;
        }
        self.step(m, delta);
    }

    /// A checkpoint stalled right now (the live and replay banner): the
    /// selected session's, else any session's, with that session's index.
    pub fn stalled_now(&mut self, m: &Model) -> Option<(usize, Stall)> {
        let session = self.session;
        let all = self.all_stalls(m);
        let stalled = |i: usize| {
            all.get(i)?
                .iter()
                .find(|x| x.kind == StallKind::Stalled)
                .map(|x| (i, x.clone()))
        };
        stalled(session).or_else(|| (0..all.len()).find_map(stalled))
    }
}
