//! Checkpoints, their events and phases, exactly as PROTOCOL.md section 6
//! names them.

use serde::Serialize;

use crate::decode::{Direction, Item, ItemKind, LibxcType, RecordType};

/// Records a checkpoint keeps for its handshake ladder (PAGE_DATA are counted).
pub const MAX_LADDER: usize = 64;

/// One record of a checkpoint, for the handshake ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Step {
    /// Capture time of the packet that delivered its first byte.
    pub first: u64,
    /// Capture time of the packet that completed it.
    pub ts: u64,
    pub dir: Direction,
    /// The PROTOCOL.md name (CHECKPOINT_STATE records by their control id).
    pub name: &'static str,
    /// The checkpoint event the record is, if any.
    pub event: Option<CheckpointEvent>,
}

/// The seven events of a COLO checkpoint, in protocol order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckpointEvent {
    New,
    SvmSuspended,
    DirtyPfnList,
    LibxcCheckpoint,
    CheckpointEnd,
    SvmReady,
    SvmResumed,
}

impl CheckpointEvent {
    pub const ALL: [CheckpointEvent; 7] = [
        CheckpointEvent::New,
        CheckpointEvent::SvmSuspended,
        CheckpointEvent::DirtyPfnList,
        CheckpointEvent::LibxcCheckpoint,
        CheckpointEvent::CheckpointEnd,
        CheckpointEvent::SvmReady,
        CheckpointEvent::SvmResumed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            CheckpointEvent::New => "new",
            CheckpointEvent::SvmSuspended => "svm_suspended",
            CheckpointEvent::DirtyPfnList => "dirty_pfn_list",
            CheckpointEvent::LibxcCheckpoint => "libxc_checkpoint",
            CheckpointEvent::CheckpointEnd => "checkpoint_end",
            CheckpointEvent::SvmReady => "svm_ready",
            CheckpointEvent::SvmResumed => "svm_resumed",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// The event a record is, by its type and (CHECKPOINT_STATE) control
    /// id: the one mapping from records to events.
    pub fn of_item(item: &Item) -> Option<CheckpointEvent> {
        use crate::decode::libxl::ControlId;
        use crate::decode::{Info, LibxlType};
        match (&item.kind, &item.info) {
            (
                ItemKind::Record(RecordType::Libxl(LibxlType::CheckpointState)),
                Info::CheckpointState { control_id },
            ) => match control_id {
                ControlId::New => Some(CheckpointEvent::New),
                ControlId::SvmSuspended => Some(CheckpointEvent::SvmSuspended),
                ControlId::SvmReady => Some(CheckpointEvent::SvmReady),
                ControlId::SvmResumed => Some(CheckpointEvent::SvmResumed),
                ControlId::Unknown(_) => None,
            },
            (ItemKind::Record(RecordType::Libxc(LibxcType::CheckpointDirtyPfnList)), _) => {
                Some(CheckpointEvent::DirtyPfnList)
            }
            (ItemKind::Record(RecordType::Libxc(LibxcType::Checkpoint)), _) => {
                Some(CheckpointEvent::LibxcCheckpoint)
            }
            (ItemKind::Record(RecordType::Libxl(LibxlType::CheckpointEnd)), _) => {
                Some(CheckpointEvent::CheckpointEnd)
            }
            _ => None,
        }
    }

    /// The phase this event closes (`Run` is closed by the next `New`, not
    /// listed here).
    pub fn closes(self) -> Option<Phase> {
        Phase::ALL
            .into_iter()
            .find(|p| *p != Phase::Run && p.end() == self)
    }

    /// Who sends the record behind this event.
    pub fn owner(self) -> Owner {
        match self {
            CheckpointEvent::New
            | CheckpointEvent::LibxcCheckpoint
            | CheckpointEvent::CheckpointEnd => Owner::Primary,
            _ => Owner::Secondary,
        }
    }
}

/// The side a record is owed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Owner {
    Primary,
    Secondary,
}

impl Owner {
    /// The other side.
    pub fn other(self) -> Owner {
        match self {
            Owner::Primary => Owner::Secondary,
            Owner::Secondary => Owner::Primary,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Owner::Primary => "primary",
            Owner::Secondary => "secondary",
        }
    }
}

/// The seven phases of a COLO checkpoint, each bounded by two events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Suspend,
    DirtySync,
    Memory,
    Device,
    Apply,
    Resume,
    Run,
}

impl Phase {
    pub const ALL: [Phase; 7] = [
        Phase::Suspend,
        Phase::DirtySync,
        Phase::Memory,
        Phase::Device,
        Phase::Apply,
        Phase::Resume,
        Phase::Run,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Phase::Suspend => "suspend",
            Phase::DirtySync => "dirty_sync",
            Phase::Memory => "memory",
            Phase::Device => "device",
            Phase::Apply => "apply",
            Phase::Resume => "resume",
            Phase::Run => "run",
        }
    }

    /// The phases a checkpoint has: COLO all seven; Remus memory and
    /// device (it has no back channel to bound the others).
    pub fn of(colo: bool) -> &'static [Phase] {
        if colo {
            &Phase::ALL
        } else {
            &[Phase::Memory, Phase::Device]
        }
    }

    /// [`Phase::of`] without `Run`: the phases inside a checkpoint, drawn on
    /// its bar.
    pub fn inside(colo: bool) -> &'static [Phase] {
        let all = Phase::of(colo);
        match all.last() {
            Some(Phase::Run) => &all[..all.len() - 1],
            _ => all,
        }
    }

    /// Checkpoint `index` of a kind has this phase: it is one of
    /// [`Phase::of`] and the events that bound it are expected
    /// ([`Checkpoint::expected_at`]; a Remus memory phase opens with a first
    /// byte, `Run` closes with the next checkpoint's NEW). COLO checkpoint 0
    /// has no suspend, dirty_sync or memory.
    pub fn measured_at(self, colo: bool, index: u64) -> bool {
        let expected = Checkpoint::expected_at(colo, index);
        let opens = (!colo && self == Phase::Memory) || expected.contains(&self.start());
        let closes = self == Phase::Run || expected.contains(&self.end());
        Phase::of(colo).contains(&self) && opens && closes
    }

    pub fn from_name(s: &str) -> Option<Phase> {
        s.parse().ok()
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// The event that opens the phase.
    pub fn start(self) -> CheckpointEvent {
        CheckpointEvent::ALL[self.index()]
    }

    /// The event that closes the phase (`Run` ends with the next checkpoint's `New`).
    pub fn end(self) -> CheckpointEvent {
        match self {
            Phase::Run => CheckpointEvent::New,
            p => CheckpointEvent::ALL[p.index() + 1],
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Phase {
    type Err = String;

    /// Accepts the snake_case names, case-insensitively, and `-` for `_`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase().replace('-', "_");
        Phase::ALL
            .into_iter()
            .find(|p| p.name() == wanted)
            .ok_or_else(|| {
                format!(
                    "unknown phase {s:?} (expected one of suspend, dirty_sync, memory, device, apply, resume, run)"
                )
            })
    }
}

/// One checkpoint (COLO or Remus) or the initial synchronisation (index 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Checkpoint {
    pub index: u64,
    /// Capture times (ns since the epoch) of the seven events, when seen.
    pub events: [Option<u64>; 7],
    /// Capture time of the first byte of the checkpoint's first forward
    /// record (Remus: the start of its memory phase).
    pub first_record: Option<u64>,
    /// Remus checkpoint 0 (the initial migration): the first byte of its
    /// final round, the first sent with the guest suspended; its memory
    /// phase starts there (the live rounds before it are the session's
    /// rounds, not downtime).
    pub final_round: Option<u64>,
    /// Pages with data in its PAGE_DATA records (entries whose type carries
    /// a page; XTAB, XALLOC and BROKEN entries carry none).
    pub pages: u64,
    /// pfn entries of its PAGE_DATA records, with or without data.
    pub pfns: u64,
    /// Forward bytes after the previous CHECKPOINT_END, through this one's.
    pub bytes: u64,
    /// Entries of the secondary's dirty pfn list.
    pub dirty_pfns: u64,
    /// Part of it fell into a capture gap or before the capture started.
    pub damaged: bool,
    /// Bytes of its span (either direction) that the capture lost.
    pub lost: u64,
    /// Time of the next checkpoint's NEW (closes the run phase).
    pub next_new: Option<u64>,
    /// Its records other than PAGE_DATA, in order (the first [`MAX_LADDER`]).
    #[serde(skip)]
    pub steps: Vec<Step>,
    /// PAGE_DATA records, and completion times of the first and last.
    pub page_records: u32,
    pub page_span: Option<(u64, u64)>,
    /// First byte of its first PAGE_DATA.
    pub first_page: Option<u64>,
    /// Wire bytes of its PAGE_DATA records.
    pub page_bytes: u64,
}

/// The two parts of a COLO memory phase.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MemoryParts {
    /// dirty_pfn_list to the first byte of the first PAGE_DATA (ns): the
    /// primary merges both dirty bitmaps and maps the pages.
    pub preparation: u64,
    /// First page byte to libxc CHECKPOINT (ns): the pages and CPU state on
    /// the wire.
    pub transfer: u64,
    /// PAGE_DATA bytes per second of the transfer (None when it took no time).
    pub rate: Option<f64>,
}

impl Checkpoint {
    pub fn new(index: u64) -> Self {
        Checkpoint {
            index,
            events: [None; 7],
            first_record: None,
            final_round: None,
            pages: 0,
            pfns: 0,
            bytes: 0,
            dirty_pfns: 0,
            damaged: false,
            lost: 0,
            next_new: None,
            steps: Vec::new(),
            page_records: 0,
            page_span: None,
            first_page: None,
            page_bytes: 0,
        }
    }

    /// Notes a record of this checkpoint for its ladder.
    pub fn note_record(&mut self, first: u64, ts: u64, dir: Direction, item: &Item) {
        if item.kind == ItemKind::Record(RecordType::Libxc(LibxcType::PageData)) {
            self.page_records += 1;
            let span = self.page_span.get_or_insert((ts, ts));
            span.1 = ts;
            return;
        }
        if self.steps.len() < MAX_LADDER {
            let name = match &item.info {
                crate::decode::Info::CheckpointState { control_id } => match control_id {
                    crate::decode::libxl::ControlId::New => "NEW",
                    crate::decode::libxl::ControlId::SvmSuspended => "SVM_SUSPENDED",
                    crate::decode::libxl::ControlId::SvmReady => "SVM_READY",
                    crate::decode::libxl::ControlId::SvmResumed => "SVM_RESUMED",
                    crate::decode::libxl::ControlId::Unknown(_) => "CHECKPOINT_STATE",
                },
                _ => item.kind.name(),
            };
            let event = CheckpointEvent::of_item(item);
            self.steps.push(Step {
                first: first.min(ts),
                ts,
                dir,
                name,
                event,
            });
        }
    }

    pub fn event(&self, e: CheckpointEvent) -> Option<u64> {
        self.events[e.index()]
    }

    /// Duration of a phase, when both of its events were seen. Remus has
    /// only memory (the first byte of the checkpoint's first record, or of
    /// checkpoint 0's final round, to the libxc CHECKPOINT) and device
    /// (CHECKPOINT to CHECKPOINT_END).
    pub fn phase(&self, p: Phase, colo: bool) -> Option<u64> {
        let start = self.phase_start(p, colo)?;
        let end = match p {
            Phase::Run => self.next_new?,
            p => self.event(p.end())?,
        };
        end.checked_sub(start)
    }

    /// A COLO memory phase split at the first page byte (None without pages
    /// or without both events).
    pub fn memory_parts(&self) -> Option<MemoryParts> {
        let list = self.event(CheckpointEvent::DirtyPfnList)?;
        // events of a damaged capture can be out of order: no split then
        let done = self
            .event(CheckpointEvent::LibxcCheckpoint)
            .filter(|&d| d >= list)?;
        let page = self.first_page?.max(list).min(done);
        let transfer = done - page;
        Some(MemoryParts {
            preparation: page - list,
            transfer,
            rate: (transfer > 0).then(|| self.page_bytes as f64 / (transfer as f64 / 1e9)),
        })
    }

    /// When phase `p` began (the start [`Checkpoint::phase`] measures from).
    pub fn phase_start(&self, p: Phase, colo: bool) -> Option<u64> {
        match (p, colo) {
            (Phase::Memory, false) => self.final_round.or(self.first_record),
            _ => self.event(p.start()),
        }
    }

    /// What opens and closes phase `p`, for people (the bounds
    /// [`Checkpoint::phase`] measures).
    pub fn phase_bounds(&self, p: Phase, colo: bool) -> (&'static str, &'static str) {
        let end = p.end().name();
        match (p, colo) {
            (Phase::Memory, false) if self.final_round.is_some() => {
                ("final round's first byte", end)
            }
            (Phase::Memory, false) => ("first record's first byte", end),
            _ => (p.start().name(), end),
        }
    }

    /// The checkpoint's downtime. COLO: NEW to SVM_RESUMED. Remus: memory
    /// plus device (docs/FIGURES.md): the guest is paused for the memory
    /// phase (libxc's save loop resumes it through libxl's postcopy
    /// callback right after writing CHECKPOINT) and what it sends while it
    /// runs again is held back until the checkpoint is committed, after
    /// CHECKPOINT_END.
    pub fn downtime(&self, colo: bool) -> Option<u64> {
        if colo {
            self.event(CheckpointEvent::SvmResumed)?
                .checked_sub(self.event(CheckpointEvent::New)?)
        } else {
            self.phase(Phase::Memory, false)?
                .checked_add(self.phase(Phase::Device, false)?)
        }
    }

    /// The event that closes the downtime of a checkpoint of this kind.
    pub fn downtime_end(colo: bool) -> CheckpointEvent {
        if colo {
            CheckpointEvent::SvmResumed
        } else {
            CheckpointEvent::CheckpointEnd
        }
    }

    /// The events this checkpoint should have: COLO checkpoint 0 has no
    /// NEW, SVM_SUSPENDED or dirty list; Remus has CHECKPOINT and
    /// CHECKPOINT_END only.
    pub fn expected(&self, colo: bool) -> &'static [CheckpointEvent] {
        Checkpoint::expected_at(colo, self.index)
    }

    /// [`Checkpoint::expected`] of checkpoint `index` of a kind.
    pub fn expected_at(colo: bool, index: u64) -> &'static [CheckpointEvent] {
        use CheckpointEvent::*;
        match (colo, index) {
            (true, 0) => &[LibxcCheckpoint, CheckpointEnd, SvmReady, SvmResumed],
            (true, _) => &CheckpointEvent::ALL,
            (false, _) => &[LibxcCheckpoint, CheckpointEnd],
        }
    }

    /// Every expected event was seen and nothing of it was lost.
    pub fn complete(&self, colo: bool) -> bool {
        !self.damaged && self.expected(colo).iter().all(|&e| self.event(e).is_some())
    }

    /// The first expected event not seen yet, after the last one seen.
    pub fn awaiting(&self, colo: bool) -> Option<CheckpointEvent> {
        let exp = self.expected(colo);
        let last_seen = exp.iter().rposition(|&e| self.event(e).is_some());
        let from = last_seen.map_or(0, |i| i + 1);
        exp.get(from).copied()
    }

    /// When the checkpoint began, as reports and the UI show it: COLO's NEW,
    /// else the first byte of its first record, else its first event.
    pub fn start(&self) -> Option<u64> {
        self.event(CheckpointEvent::New)
            .or(self.first_record)
            .or_else(|| self.events.iter().flatten().copied().min())
    }

    /// Time of the latest event seen.
    pub fn last_event(&self) -> Option<u64> {
        self.events.iter().flatten().copied().max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_are_bounded_by_their_events() {
        let mut c = Checkpoint::new(3);
        for (i, t) in [100, 110, 112, 150, 160, 180, 183].iter().enumerate() {
            c.events[i] = Some(*t);
        }
        c.next_new = Some(300);
        let d: Vec<_> = Phase::ALL.iter().map(|&p| c.phase(p, true)).collect();
        assert_eq!(d, [10, 2, 38, 10, 20, 3, 117].map(Some));
        assert_eq!(c.downtime(true), Some(83));
        assert!(c.complete(true));
        assert_eq!(c.awaiting(true), None);
        c.events[5] = None;
        c.events[6] = None;
        assert_eq!(c.awaiting(true), Some(CheckpointEvent::SvmReady));
        assert_eq!(CheckpointEvent::SvmReady.owner(), Owner::Secondary);
        assert_eq!(Phase::from_name("dirty_sync"), Some(Phase::DirtySync));
        assert_eq!(Phase::Run.end(), CheckpointEvent::New);
    }

    #[test]
    fn remus_memory_starts_at_the_first_record() {
        let mut c = Checkpoint::new(1);
        c.first_record = Some(10);
        c.events[3] = Some(50);
        c.events[4] = Some(70);
        assert_eq!(c.phase(Phase::Memory, false), Some(40));
        assert_eq!(c.phase(Phase::Device, false), Some(20));
        assert_eq!(c.downtime(false), Some(60), "memory + device");
        assert!(c.complete(false));
        c.events[4] = None;
        assert_eq!(c.downtime(false), None, "no CHECKPOINT_END, no downtime");
        assert!(!c.complete(true));
    }

    #[test]
    fn memory_parts_of_out_of_order_events_do_not_panic() {
        // a record confirmed late by a re-synchronisation keeps an earlier
        // time than the dirty list processed before it
        let mut c = Checkpoint::new(2);
        c.events[2] = Some(9_000);
        c.events[3] = Some(5_000);
        c.first_page = Some(7_000);
        assert_eq!(c.memory_parts(), None);
        assert_eq!(c.phase(Phase::Memory, true), None);
    }

    #[test]
    fn phases_measured_at_each_checkpoint() {
        use Phase::*;
        let at = |colo, k| -> Vec<Phase> {
            Phase::ALL
                .into_iter()
                .filter(|p| p.measured_at(colo, k))
                .collect()
        };
        assert_eq!(at(true, 0), [Device, Apply, Resume, Run]);
        assert_eq!(at(true, 1), Phase::ALL);
        assert_eq!(at(false, 0), [Memory, Device], "checkpoint 0: final round");
        assert_eq!(at(false, 5), [Memory, Device]);
    }

    #[test]
    fn phases_of_each_kind() {
        assert_eq!(Phase::of(true), Phase::ALL);
        assert_eq!(Phase::inside(true), &Phase::ALL[..6]);
        assert_eq!(Phase::of(false), [Phase::Memory, Phase::Device]);
        assert_eq!(Phase::inside(false), [Phase::Memory, Phase::Device]);
        assert_eq!(CheckpointEvent::CheckpointEnd.closes(), Some(Phase::Device));
        assert_eq!(
            CheckpointEvent::New.closes(),
            None,
            "run is closed by the next NEW"
        );
    }

    #[test]
    fn colo_memory_splits_at_the_first_page_byte() {
        let mut c = Checkpoint::new(4);
        c.events[2] = Some(1_000);
        c.events[3] = Some(9_000);
        assert_eq!(c.memory_parts(), None, "no pages, no split");
        c.first_page = Some(3_000);
        c.page_bytes = 12_000;
        let m = c.memory_parts().unwrap();
        assert_eq!((m.preparation, m.transfer), (2_000, 6_000));
        assert_eq!(m.rate, Some(2e9), "12 kB in 6 us");
        assert_eq!(
            m.preparation + m.transfer,
            c.phase(Phase::Memory, true).unwrap(),
            "the parts add up to the phase"
        );
    }

    #[test]
    fn remus_checkpoint_0_memory_is_its_final_round() {
        let mut c = Checkpoint::new(0);
        c.first_record = Some(10);
        c.final_round = Some(900);
        c.events[3] = Some(1000);
        c.events[4] = Some(1010);
        assert_eq!(c.phase(Phase::Memory, false), Some(100));
        assert_eq!(c.downtime(false), Some(110));
    }
}
