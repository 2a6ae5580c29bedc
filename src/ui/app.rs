//! The application state and what each key does, without any terminal: the
//! views render from `App` plus the model, and key handling is tested here
//! without rendering (gitui's habit).

use crate::model::stall::{Stall, StallKind};
use crate::model::{Checkpoint, Model, Phase, SessionModel, Thresholds};

/// The screens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Sessions,
    Timeline,
}

/// How the timeline orders checkpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Index,
    Downtime,
    Phase(Phase),
}

impl Sort {
    /// The next order in the `s` cycle: index, downtime, then each phase.
    fn next(self) -> Sort {
        match self {
            Sort::Index => Sort::Downtime,
            Sort::Downtime => Sort::Phase(Phase::Suspend),
            Sort::Phase(Phase::Run) => Sort::Index,
            Sort::Phase(p) => Sort::Phase(Phase::ALL[p.index() + 1]),
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
    /// Sorted checkpoint positions, cached by (session, count, sort).
    order: Vec<usize>,
    order_key: (usize, usize, Option<Sort>),
    /// Stalls of every session, cached by (sessions, checkpoints, clock in
    /// 100 ms steps), so a frame does not walk every checkpoint.
    stall_cache: Vec<Vec<Stall>>,
    stall_key: Option<(usize, usize, u64)>,
    /// Histogram buckets, cached by (session, count, phase, buckets).
    hist_cache: (Option<(usize, usize, Phase, usize)>, u64, u64, Vec<u64>),
}

impl App {
    pub fn new(thresholds: Thresholds) -> Self {
        App {
            view: View::Sessions,
            help: false,
            session: 0,
            row: 0,
            scroll: 0,
            sort: Sort::Index,
            time: TimeFormat::SinceStart,
            ladder: false,
            follow: false,
            ns_per_cell: None,
            pan_ns: 0,
            histogram: Phase::Apply,
            message: None,
            page: 10,
            thresholds,
            replay: None,
            order: Vec::new(),
            order_key: (usize::MAX, 0, None),
            stall_cache: Vec::new(),
            stall_key: None,
            hist_cache: (None, 0, 0, Vec::new()),
        }
    }

    /// Stalls of every session as of the model's clock (live: capture not
    /// ended), recomputed only when checkpoints or the clock move.
    pub fn all_stalls(&mut self, m: &Model) -> &[Vec<Stall>] {
        let count: usize = m.sessions.iter().map(|s| s.checkpoints.len()).sum();
        let key = (m.sessions.len(), count, m.now / 100_000_000);
        if self.stall_key != Some(key) {
            self.stall_cache = m
                .sessions
                .iter()
                .map(|s| m.stalls(s, &self.thresholds, false))
                .collect();
            self.stall_key = Some(key);
        }
        &self.stall_cache
    }

    /// Histogram of phase `p` in the selected session: (min, max, counts).
    pub fn histogram(&mut self, m: &Model, p: Phase, buckets: usize) -> (u64, u64, &[u64]) {
        let buckets = buckets.max(1);
        let Some(s) = m.sessions.get(self.session) else {
            return (0, 0, &[]);
        };
        let cps = Self::checkpoints(s);
        let key = Some((self.session, cps.len(), p, buckets));
        if self.hist_cache.0 != key {
            let colo = s.is_colo();
            let vals: Vec<u64> = cps.iter().filter_map(|c| c.phase(p, colo)).collect();
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
            self.hist_cache = (key, lo, hi, counts);
        }
        (self.hist_cache.1, self.hist_cache.2, &self.hist_cache.3)
    }

    /// The checkpoints the timeline lists (a Remus trailer that has not
    /// started is not one).
    pub fn checkpoints(s: &SessionModel) -> &[Checkpoint] {
        match s.checkpoints.last() {
            Some(c) if c.last_event().is_none() && c.first_record.is_none() => {
                &s.checkpoints[..s.checkpoints.len() - 1]
            }
            _ => &s.checkpoints,
        }
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
            let colo = s.is_colo();
            let mut order: Vec<usize> = (0..cps.len()).collect();
            let val = |c: &Checkpoint| -> u64 {
                match self.sort {
                    Sort::Index => 0,
                    Sort::Downtime => c.downtime().unwrap_or(0),
                    Sort::Phase(p) => c.phase(p, colo).unwrap_or(0),
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
        }
    }

    /// Moves the selection by `delta` rows.
    fn step(&mut self, m: &Model, delta: isize) {
        let len = self.rows(m);
        let cur = match self.view {
            View::Sessions => self.session,
            View::Timeline => self.row,
        } as isize;
        let new = (cur + delta).clamp(0, len.saturating_sub(1) as isize) as usize;
        match self.view {
            View::Sessions => self.session = new,
            View::Timeline => {
                self.row = new;
                self.follow = false;
                self.clamp(len);
            }
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
        if k == Key::CtrlC || k == Key::Char('q') {
            return Action::Quit;
        }
        if self.help {
            self.help = false;
            return Action::Redraw;
        }
        if k == Key::Char('?') {
            self.help = true;
            return Action::Redraw;
        }
        if self.ladder && matches!(k, Key::Esc | Key::Enter) {
            self.ladder = false;
            return Action::Redraw;
        }
        self.message = None;
        let page = self.page.max(1) as isize;
        match k {
            Key::Tab | Key::BackTab | Key::Char('1') | Key::Char('2') => {
                self.view = match (k, self.view) {
                    (Key::Char('1'), _) => View::Sessions,
                    (Key::Char('2'), _) => View::Timeline,
                    (_, View::Sessions) => View::Timeline,
                    (_, View::Timeline) => View::Sessions,
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
                    View::Timeline if has_row => self.ladder = !self.ladder,
                    _ => return Action::None,
                }
            }
            Key::Esc => {
                if self.view == View::Timeline {
                    self.view = View::Sessions;
                }
            }
            Key::Char('n') | Key::Char('N') if self.view == View::Timeline => {
                if !self.jump_stall(m, capture_ended, k == Key::Char('n')) {
                    self.message = Some("no stall or slow phase in this session".into());
                }
            }
            Key::Char('s') => {
                self.sort = self.sort.next();
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
                let i = (self.histogram.index() + 1) % Phase::ALL.len();
                self.histogram = Phase::ALL[i];
            }
            Key::Char('e') => return Action::Export,
            Key::Char(' ') if self.replay.is_some() => return Action::Pause,
            Key::Char('.') if self.replay.is_some() => return Action::Step,
            _ => return Action::None,
        }
        Action::Redraw
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
        }
    }

    /// Scrolls by `delta` rows (mouse wheel).
    pub fn wheel(&mut self, m: &Model, delta: isize) {
        self.step(m, delta);
    }

    /// Whether a stall of the selected session is stalled right now (live banner).
    pub fn stalled_now(&mut self, m: &Model) -> Option<Stall> {
        let session = self.session;
        self.all_stalls(m)
            .get(session)?
            .iter()
            .find(|x| x.kind == StallKind::Stalled)
            .cloned()
    }
}
