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

/// How a session checkpoints: which events and phases its checkpoints have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scheme {
    /// Xen COLO (libxl's CHECKPOINT_STATE handshake and the dirty pfn list
    /// on the back channel).
    XenColo,
    /// Xen Remus, or a Xen session not known to be COLO (a plain or unknown
    /// session's checkpoint 0).
    Remus,
    /// QEMU COLO (COLO_MESSAGE_* on the migration stream and its return
    /// path).
    QemuColo,
}

impl Scheme {
    pub fn name(self) -> &'static str {
        match self {
            Scheme::XenColo => "xen_colo",
            Scheme::Remus => "remus",
            Scheme::QemuColo => "qemu_colo",
        }
    }

    /// A QEMU scheme: its events and phases are the QEMU ones.
    pub fn is_qemu(self) -> bool {
        self == Scheme::QemuColo
    }
}

/// The events of a checkpoint, in protocol order: the seven of a Xen
/// checkpoint (COLO; Remus has CHECKPOINT and CHECKPOINT_END of them), then
/// the seven of a QEMU COLO checkpoint. A checkpoint keeps the times of its
/// scheme's seven by [`CheckpointEvent::slot`].
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
    /// QEMU COLO: the primary's COLO_MESSAGE_CHECKPOINT_REQUEST.
    Request,
    /// The secondary's COLO_MESSAGE_CHECKPOINT_REPLY (its guest stopped).
    Reply,
    /// The primary's COLO_MESSAGE_VMSTATE_SEND (its guest stopped, the
    /// RAM section follows).
    VmstateSend,
    /// The primary's COLO_MESSAGE_VMSTATE_SIZE, announcing the device
    /// state's size.
    VmstateSize,
    /// The last byte of the device state that VMSTATE_SIZE announced (not a
    /// message of its own).
    DeviceState,
    /// The secondary's COLO_MESSAGE_VMSTATE_RECEIVED.
    VmstateReceived,
    /// The secondary's COLO_MESSAGE_VMSTATE_LOADED.
    VmstateLoaded,
}

impl CheckpointEvent {
    /// Every event of every scheme.
    pub const ALL: [CheckpointEvent; 14] = [
        CheckpointEvent::New,
        CheckpointEvent::SvmSuspended,
        CheckpointEvent::DirtyPfnList,
        CheckpointEvent::LibxcCheckpoint,
        CheckpointEvent::CheckpointEnd,
        CheckpointEvent::SvmReady,
        CheckpointEvent::SvmResumed,
        CheckpointEvent::Request,
        CheckpointEvent::Reply,
        CheckpointEvent::VmstateSend,
        CheckpointEvent::VmstateSize,
        CheckpointEvent::DeviceState,
        CheckpointEvent::VmstateReceived,
        CheckpointEvent::VmstateLoaded,
    ];

    /// The seven events of a Xen checkpoint (COLO and Remus).
    pub const XEN: [CheckpointEvent; 7] = [
        CheckpointEvent::New,
        CheckpointEvent::SvmSuspended,
        CheckpointEvent::DirtyPfnList,
        CheckpointEvent::LibxcCheckpoint,
        CheckpointEvent::CheckpointEnd,
        CheckpointEvent::SvmReady,
        CheckpointEvent::SvmResumed,
    ];

    /// The seven events of a QEMU COLO checkpoint.
    pub const QEMU_COLO: [CheckpointEvent; 7] = [
        CheckpointEvent::Request,
        CheckpointEvent::Reply,
        CheckpointEvent::VmstateSend,
        CheckpointEvent::VmstateSize,
        CheckpointEvent::DeviceState,
        CheckpointEvent::VmstateReceived,
        CheckpointEvent::VmstateLoaded,
    ];

    /// The seven events of a scheme, by slot (Remus has the Xen seven, of
    /// which it sees two: [`Checkpoint::expected_at`]).
    pub fn of(scheme: Scheme) -> &'static [CheckpointEvent; 7] {
        match scheme {
            Scheme::XenColo | Scheme::Remus => &CheckpointEvent::XEN,
            Scheme::QemuColo => &CheckpointEvent::QEMU_COLO,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            CheckpointEvent::New => "new",
            CheckpointEvent::SvmSuspended => "svm_suspended",
            CheckpointEvent::DirtyPfnList => "dirty_pfn_list",
            CheckpointEvent::LibxcCheckpoint => "libxc_checkpoint",
            CheckpointEvent::CheckpointEnd => "checkpoint_end",
            CheckpointEvent::SvmReady => "svm_ready",
            CheckpointEvent::SvmResumed => "svm_resumed",
            CheckpointEvent::Request => "request",
            CheckpointEvent::Reply => "reply",
            CheckpointEvent::VmstateSend => "vmstate_send",
            CheckpointEvent::VmstateSize => "vmstate_size",
            CheckpointEvent::DeviceState => "device_state",
            CheckpointEvent::VmstateReceived => "vmstate_received",
            CheckpointEvent::VmstateLoaded => "vmstate_loaded",
        }
    }

    /// Its position in [`CheckpointEvent::ALL`] (unique over every scheme).
    pub fn index(self) -> usize {
        self as usize
    }

    /// Its position in its scheme's seven ([`CheckpointEvent::of`]): the
    /// index into [`Checkpoint::events`].
    pub fn slot(self) -> usize {
        self.index() % 7
    }

    /// One of the QEMU COLO events.
    pub fn is_qemu(self) -> bool {
        self.index() >= 7
    }

    /// A message on the wire (every event but the end of QEMU's device
    /// state, which is the last byte of a transfer).
    pub fn is_message(self) -> bool {
        self != CheckpointEvent::DeviceState
    }

    /// The event a record is, by its type and (CHECKPOINT_STATE) control
    /// id: the one mapping from records to events.
    pub fn of_item(item: &Item) -> Option<CheckpointEvent> {
        use crate::decode::libxl::ControlId;
        use crate::decode::qemu::{ColoMessage, QemuKind};
        use crate::decode::{Info, LibxlType};
        match (&item.kind, &item.info) {
            (ItemKind::Qemu(QemuKind::Colo(m)), _) => match m {
                ColoMessage::CheckpointReady => None,
                ColoMessage::CheckpointRequest => Some(CheckpointEvent::Request),
                ColoMessage::CheckpointReply => Some(CheckpointEvent::Reply),
                ColoMessage::VmstateSend => Some(CheckpointEvent::VmstateSend),
                ColoMessage::VmstateSize => Some(CheckpointEvent::VmstateSize),
                ColoMessage::VmstateReceived => Some(CheckpointEvent::VmstateReceived),
                ColoMessage::VmstateLoaded => Some(CheckpointEvent::VmstateLoaded),
            },
            (ItemKind::Qemu(QemuKind::DeviceState), _) => Some(CheckpointEvent::DeviceState),
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

    /// The phase this event closes (`Run` and `Interval` are closed by the
    /// next checkpoint's first event, not listed here).
    pub fn closes(self) -> Option<Phase> {
        Phase::ALL
            .into_iter()
            .find(|p| !p.is_trailing() && p.end() == self)
    }

    /// The phase a checkpoint waiting for this event is in: the one the
    /// event closes; a Xen checkpoint waiting for its NEW counts in memory,
    /// a QEMU COLO one waiting for its REQUEST in the interval.
    pub fn awaited_phase(self, scheme: Scheme) -> Phase {
        self.closes().unwrap_or(if scheme.is_qemu() {
            Phase::Interval
        } else {
            Phase::Memory
        })
    }

    /// Who sends the record behind this event (QEMU's device state: the
    /// primary, whose transfer it ends).
    pub fn owner(self) -> Owner {
        match self {
            CheckpointEvent::New
            | CheckpointEvent::LibxcCheckpoint
            | CheckpointEvent::CheckpointEnd
            | CheckpointEvent::Request
            | CheckpointEvent::VmstateSend
            | CheckpointEvent::VmstateSize
            | CheckpointEvent::DeviceState => Owner::Primary,
            CheckpointEvent::SvmSuspended
            | CheckpointEvent::DirtyPfnList
            | CheckpointEvent::SvmReady
            | CheckpointEvent::SvmResumed
            | CheckpointEvent::Reply
            | CheckpointEvent::VmstateReceived
            | CheckpointEvent::VmstateLoaded => Owner::Secondary,
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

/// The phases of a checkpoint, each bounded by two events: the seven of a
/// Xen COLO checkpoint (Remus has memory and device of them), then the seven
/// of a QEMU COLO checkpoint. Phase `i` of [`Phase::ALL`] opens with event
/// `i` of [`CheckpointEvent::ALL`]. Names are unique over every scheme.
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
    /// QEMU COLO: REQUEST to REPLY (the secondary stops its guest and
    /// replies).
    Reply,
    /// REPLY to VMSTATE_SEND (the primary stops its guest and takes the
    /// replication checkpoint).
    Stop,
    /// VMSTATE_SEND to VMSTATE_SIZE (the checkpoint's RAM section on the
    /// wire).
    Ram,
    /// VMSTATE_SIZE to the last byte of the device state it announced.
    DeviceState,
    /// The device state's last byte to VMSTATE_RECEIVED.
    Received,
    /// VMSTATE_RECEIVED to VMSTATE_LOADED (the secondary loads the state).
    Loaded,
    /// VMSTATE_LOADED to the next checkpoint's REQUEST (both guests run).
    Interval,
}

impl Phase {
    /// How many phases there are over every scheme (the length of tables
    /// indexed by [`Phase::index`]).
    pub const COUNT: usize = 14;

    /// Every phase of every scheme.
    pub const ALL: [Phase; Phase::COUNT] = [
        Phase::Suspend,
        Phase::DirtySync,
        Phase::Memory,
        Phase::Device,
        Phase::Apply,
        Phase::Resume,
        Phase::Run,
        Phase::Reply,
        Phase::Stop,
        Phase::Ram,
        Phase::DeviceState,
        Phase::Received,
        Phase::Loaded,
        Phase::Interval,
    ];

    /// The seven phases of a Xen COLO checkpoint.
    pub const XEN: [Phase; 7] = [
        Phase::Suspend,
        Phase::DirtySync,
        Phase::Memory,
        Phase::Device,
        Phase::Apply,
        Phase::Resume,
        Phase::Run,
    ];

    /// The seven phases of a QEMU COLO checkpoint.
    pub const QEMU_COLO: [Phase; 7] = [
        Phase::Reply,
        Phase::Stop,
        Phase::Ram,
        Phase::DeviceState,
        Phase::Received,
        Phase::Loaded,
        Phase::Interval,
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
            Phase::Reply => "reply",
            Phase::Stop => "stop",
            Phase::Ram => "ram",
            Phase::DeviceState => "device_state",
            Phase::Received => "received",
            Phase::Loaded => "loaded",
            Phase::Interval => "interval",
        }
    }

    /// The phases a checkpoint has: Xen COLO all seven of its own; Remus
    /// memory and device (it has no back channel to bound the others);
    /// QEMU COLO all seven of its own.
    pub fn of(scheme: Scheme) -> &'static [Phase] {
        match scheme {
            Scheme::XenColo => &Phase::XEN,
            Scheme::Remus => &[Phase::Memory, Phase::Device],
            Scheme::QemuColo => &Phase::QEMU_COLO,
        }
    }

    /// The seven phases of the scheme's family, by slot (Remus: the Xen
    /// seven, as reports list them, most of them empty).
    pub fn family(scheme: Scheme) -> &'static [Phase; 7] {
        match scheme {
            Scheme::XenColo | Scheme::Remus => &Phase::XEN,
            Scheme::QemuColo => &Phase::QEMU_COLO,
        }
    }

    /// [`Phase::of`] without `Run` or `Interval`: the phases inside a
    /// checkpoint, drawn on its bar.
    pub fn inside(scheme: Scheme) -> &'static [Phase] {
        let all = Phase::of(scheme);
        match all.last() {
            Some(p) if p.is_trailing() => &all[..all.len() - 1],
            _ => all,
        }
    }

    /// The phase after the checkpoint (`Run`, `Interval`), closed by the
    /// next checkpoint's first event ([`Checkpoint::next_start`]).
    pub fn is_trailing(self) -> bool {
        matches!(self, Phase::Run | Phase::Interval)
    }

    /// One of the QEMU COLO phases.
    pub fn is_qemu(self) -> bool {
        self.index() >= 7
    }

    /// The phase in the same slot of `scheme`'s family (itself when it is
    /// one of them): to carry a choice of phase from one session to another.
    pub fn in_scheme(self, scheme: Scheme) -> Phase {
        Phase::family(scheme)[self.slot()]
    }

    /// Checkpoint `index` of a scheme has this phase: it is one of
    /// [`Phase::of`] and the events that bound it are expected
    /// ([`Checkpoint::expected_at`]; a Remus memory phase opens with a first
    /// byte, `Run` and `Interval` close with the next checkpoint). Xen COLO
    /// checkpoint 0 has no suspend, dirty_sync or memory; QEMU COLO has
    /// every phase at every index (its checkpoints count REQUESTs from 1).
    pub fn measured_at(self, scheme: Scheme, index: u64) -> bool {
        let expected = Checkpoint::expected_at(scheme, index);
        let opens =
            (scheme == Scheme::Remus && self == Phase::Memory) || expected.contains(&self.start());
        let closes = self.is_trailing() || expected.contains(&self.end());
        Phase::of(scheme).contains(&self) && opens && closes
    }

    pub fn from_name(s: &str) -> Option<Phase> {
        s.parse().ok()
    }

    /// Its position in [`Phase::ALL`] (unique over every scheme: global
    /// tables such as [`super::Thresholds::absolute`]).
    pub fn index(self) -> usize {
        self as usize
    }

    /// Its position in its scheme family's seven ([`Phase::family`]):
    /// per-session tables such as the statistics' histograms.
    pub fn slot(self) -> usize {
        self.index() % 7
    }

    /// The event that opens the phase.
    pub fn start(self) -> CheckpointEvent {
        CheckpointEvent::ALL[self.index()]
    }

    /// The event that closes the phase (`Run` ends with the next
    /// checkpoint's `New`, `Interval` with its `Request`).
    pub fn end(self) -> CheckpointEvent {
        match self {
            Phase::Run => CheckpointEvent::New,
            Phase::Interval => CheckpointEvent::Request,
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
                let names: Vec<&str> = Phase::ALL.iter().map(|p| p.name()).collect();
                format!("unknown phase {s:?} (expected one of {})", names.join(", "))
            })
    }
}

/// One checkpoint (Xen COLO, Remus or QEMU COLO) or a Xen session's
/// initial synchronisation (index 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Checkpoint {
    pub index: u64,
    /// Capture times (ns since the epoch) of the seven events of its
    /// scheme, when seen, by [`CheckpointEvent::slot`].
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
    /// Time of the next checkpoint's first event (Xen COLO's NEW, QEMU
    /// COLO's REQUEST): closes the run or interval phase.
    pub next_start: Option<u64>,
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
    /// QEMU COLO: the device state's size that VMSTATE_SIZE announced.
    pub vmstate_size: Option<u64>,
    /// QEMU COLO: sections of its device state.
    pub device_sections: u32,
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
            next_start: None,
            steps: Vec::new(),
            page_records: 0,
            page_span: None,
            first_page: None,
            page_bytes: 0,
            vmstate_size: None,
            device_sections: 0,
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

    /// Time of event `e`, read from its slot: `e` must be one of the
    /// checkpoint's scheme's events ([`CheckpointEvent::of`]).
    pub fn event(&self, e: CheckpointEvent) -> Option<u64> {
        self.events[e.slot()]
    }

    /// Duration of a phase, when both of its events were seen (None for a
    /// phase of the other family of schemes). Remus has only memory (the
    /// first byte of the checkpoint's first record, or of checkpoint 0's
    /// final round, to the libxc CHECKPOINT) and device (CHECKPOINT to
    /// CHECKPOINT_END).
    pub fn phase(&self, p: Phase, scheme: Scheme) -> Option<u64> {
        if p.is_qemu() != scheme.is_qemu() {
            return None;
        }
        let start = self.phase_start(p, scheme)?;
        let end = if p.is_trailing() {
            self.next_start?
        } else {
            self.event(p.end())?
        };
        end.checked_sub(start)
    }

    /// A COLO memory phase split at the first page byte (None without pages
    /// or without both events). Xen COLO only.
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
    pub fn phase_start(&self, p: Phase, scheme: Scheme) -> Option<u64> {
        if p.is_qemu() != scheme.is_qemu() {
            return None;
        }
        match (p, scheme) {
            (Phase::Memory, Scheme::Remus) => self.final_round.or(self.first_record),
            _ => self.event(p.start()),
        }
    }

    /// What opens and closes phase `p`, for people (the bounds
    /// [`Checkpoint::phase`] measures).
    pub fn phase_bounds(&self, p: Phase, scheme: Scheme) -> (&'static str, &'static str) {
        let end = match p {
            Phase::DeviceState => "device state's last byte",
            p => p.end().name(),
        };
        match (p, scheme) {
            (Phase::Memory, Scheme::Remus) if self.final_round.is_some() => {
                ("final round's first byte", end)
            }
            (Phase::Memory, Scheme::Remus) => ("first record's first byte", end),
            (Phase::Received, _) => ("device state's last byte", end),
            _ => (p.start().name(), end),
        }
    }

    /// The checkpoint's downtime. Xen COLO: NEW to SVM_RESUMED. Remus:
    /// memory plus device (docs/FIGURES.md): the guest is paused for the
    /// memory phase (libxc's save loop resumes it through libxl's postcopy
    /// callback right after writing CHECKPOINT) and what it sends while it
    /// runs again is held back until the checkpoint is committed, after
    /// CHECKPOINT_END. QEMU COLO: REPLY to VMSTATE_LOADED, as the primary
    /// sees them: its guest stops when REPLY arrives (before it sends
    /// VMSTATE_SEND) and resumes when VMSTATE_LOADED arrives (the secondary
    /// has loaded the state and resumed its own guest).
    pub fn downtime(&self, scheme: Scheme) -> Option<u64> {
        match scheme {
            Scheme::XenColo => self
                .event(CheckpointEvent::SvmResumed)?
                .checked_sub(self.event(CheckpointEvent::New)?),
            Scheme::Remus => self
                .phase(Phase::Memory, scheme)?
                .checked_add(self.phase(Phase::Device, scheme)?),
            Scheme::QemuColo => self
                .event(CheckpointEvent::VmstateLoaded)?
                .checked_sub(self.event(CheckpointEvent::Reply)?),
        }
    }

    /// The event that closes the downtime of a checkpoint of this scheme.
    pub fn downtime_end(scheme: Scheme) -> CheckpointEvent {
        match scheme {
            Scheme::XenColo => CheckpointEvent::SvmResumed,
            Scheme::Remus => CheckpointEvent::CheckpointEnd,
            Scheme::QemuColo => CheckpointEvent::VmstateLoaded,
        }
    }

    /// The events this checkpoint should have: Xen COLO checkpoint 0 has no
    /// NEW, SVM_SUSPENDED or dirty list; Remus has CHECKPOINT and
    /// CHECKPOINT_END only; QEMU COLO all seven.
    pub fn expected(&self, scheme: Scheme) -> &'static [CheckpointEvent] {
        Checkpoint::expected_at(scheme, self.index)
    }

    /// [`Checkpoint::expected`] of checkpoint `index` of a scheme.
    pub fn expected_at(scheme: Scheme, index: u64) -> &'static [CheckpointEvent] {
        use CheckpointEvent::*;
        match (scheme, index) {
            (Scheme::XenColo, 0) => &[LibxcCheckpoint, CheckpointEnd, SvmReady, SvmResumed],
            (Scheme::XenColo, _) => &CheckpointEvent::XEN,
            (Scheme::Remus, _) => &[LibxcCheckpoint, CheckpointEnd],
            (Scheme::QemuColo, _) => &CheckpointEvent::QEMU_COLO,
        }
    }

    /// Every expected event was seen and nothing of it was lost.
    pub fn complete(&self, scheme: Scheme) -> bool {
        !self.damaged
            && self
                .expected(scheme)
                .iter()
                .all(|&e| self.event(e).is_some())
    }

    /// The first expected event not seen yet, after the last one seen.
    pub fn awaiting(&self, scheme: Scheme) -> Option<CheckpointEvent> {
        let exp = self.expected(scheme);
        let last_seen = exp.iter().rposition(|&e| self.event(e).is_some());
        let from = last_seen.map_or(0, |i| i + 1);
        exp.get(from).copied()
    }

    /// When the checkpoint began, as reports and the UI show it: Xen COLO's
    /// NEW, else QEMU COLO's REQUEST, else the first byte of its first
    /// record, else its first event.
    pub fn start(&self) -> Option<u64> {
        // NEW and REQUEST share slot 0: whichever the scheme has
        self.event(CheckpointEvent::New)
            .or(self.event(CheckpointEvent::Request))
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
        c.next_start = Some(300);
        let d: Vec<_> = Phase::XEN
            .iter()
            .map(|&p| c.phase(p, Scheme::XenColo))
            .collect();
        assert_eq!(d, [10, 2, 38, 10, 20, 3, 117].map(Some));
        assert_eq!(c.downtime(Scheme::XenColo), Some(83));
        assert!(c.complete(Scheme::XenColo));
        assert_eq!(c.awaiting(Scheme::XenColo), None);
        c.events[5] = None;
        c.events[6] = None;
        assert_eq!(c.awaiting(Scheme::XenColo), Some(CheckpointEvent::SvmReady));
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
        assert_eq!(c.phase(Phase::Memory, Scheme::Remus), Some(40));
        assert_eq!(c.phase(Phase::Device, Scheme::Remus), Some(20));
        assert_eq!(c.downtime(Scheme::Remus), Some(60), "memory + device");
        assert!(c.complete(Scheme::Remus));
        c.events[4] = None;
        assert_eq!(
            c.downtime(Scheme::Remus),
            None,
            "no CHECKPOINT_END, no downtime"
        );
        assert!(!c.complete(Scheme::XenColo));
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
        assert_eq!(c.phase(Phase::Memory, Scheme::XenColo), None);
    }

    #[test]
    fn phases_measured_at_each_checkpoint() {
        use Phase::*;
        let at = |colo, k| -> Vec<Phase> {
            Phase::XEN
                .into_iter()
                .filter(|p| p.measured_at(colo, k))
                .collect()
        };
        assert_eq!(at(Scheme::XenColo, 0), [Device, Apply, Resume, Run]);
        assert_eq!(at(Scheme::XenColo, 1), Phase::XEN);
        assert_eq!(
            at(Scheme::Remus, 0),
            [Memory, Device],
            "checkpoint 0: final round"
        );
        assert_eq!(at(Scheme::Remus, 5), [Memory, Device]);
    }

    #[test]
    fn phases_of_each_kind() {
        assert_eq!(Phase::of(Scheme::XenColo), Phase::XEN);
        assert_eq!(Phase::inside(Scheme::XenColo), &Phase::XEN[..6]);
        assert_eq!(Phase::of(Scheme::Remus), [Phase::Memory, Phase::Device]);
        assert_eq!(Phase::inside(Scheme::Remus), [Phase::Memory, Phase::Device]);
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
            c.phase(Phase::Memory, Scheme::XenColo).unwrap(),
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
        assert_eq!(c.phase(Phase::Memory, Scheme::Remus), Some(100));
        assert_eq!(c.downtime(Scheme::Remus), Some(110));
    }

    /// A QEMU COLO checkpoint with made-up times: REQUEST 1000, REPLY 1010,
    /// VMSTATE_SEND 1015, VMSTATE_SIZE 1400, the device state's last byte
    /// 1450, VMSTATE_RECEIVED 1452, VMSTATE_LOADED 1500.
    fn qemu_checkpoint() -> Checkpoint {
        let mut c = Checkpoint::new(1);
        let times = [1000, 1010, 1015, 1400, 1450, 1452, 1500];
        for (e, t) in CheckpointEvent::QEMU_COLO.iter().zip(times) {
            c.events[e.slot()] = Some(t);
        }
        c
    }

    #[test]
    fn qemu_colo_phases_are_bounded_by_their_events() {
        let q = Scheme::QemuColo;
        let mut c = qemu_checkpoint();
        let d: Vec<_> = Phase::of(q).iter().map(|&p| c.phase(p, q)).collect();
        assert_eq!(
            d,
            [
                Some(10),
                Some(5),
                Some(385),
                Some(50),
                Some(2),
                Some(48),
                None
            ],
            "interval open until the next REQUEST"
        );
        c.next_start = Some(2000);
        assert_eq!(
            c.phase(Phase::Interval, q),
            Some(500),
            "closed by the next REQUEST"
        );
        assert_eq!(c.downtime(q), Some(490), "VMSTATE_LOADED - REPLY");
        assert_eq!(Checkpoint::downtime_end(q), CheckpointEvent::VmstateLoaded);
        assert_eq!(c.start(), Some(1000), "its REQUEST");
        assert!(c.complete(q));
        assert_eq!(c.awaiting(q), None);
        // the Xen phases are not a QEMU checkpoint's, nor the QEMU ones a Xen checkpoint's
        assert_eq!(c.phase(Phase::Suspend, q), None);
        assert_eq!(c.phase(Phase::Reply, Scheme::XenColo), None);
        assert_eq!(
            c.phase_bounds(Phase::Received, q),
            ("device state's last byte", "vmstate_received")
        );
        assert_eq!(c.phase_bounds(Phase::Stop, q), ("reply", "vmstate_send"));
        // stopped after VMSTATE_SEND: the device state is owed by the primary
        for e in &CheckpointEvent::QEMU_COLO[3..] {
            c.events[e.slot()] = None;
        }
        assert!(!c.complete(q));
        assert_eq!(c.awaiting(q), Some(CheckpointEvent::VmstateSize));
        assert_eq!(c.downtime(q), None);
        assert_eq!(CheckpointEvent::VmstateSize.awaited_phase(q), Phase::Ram);
        assert_eq!(CheckpointEvent::Request.awaited_phase(q), Phase::Interval);
    }

    #[test]
    fn qemu_colo_has_every_phase_at_every_checkpoint() {
        let q = Scheme::QemuColo;
        for k in [0, 1, 7] {
            let at: Vec<Phase> = Phase::ALL
                .into_iter()
                .filter(|p| p.measured_at(q, k))
                .collect();
            assert_eq!(at, Phase::QEMU_COLO);
        }
        assert_eq!(Phase::inside(q), &Phase::QEMU_COLO[..6]);
        assert_eq!(Phase::family(q), &Phase::QEMU_COLO);
        assert_eq!(Phase::family(Scheme::Remus), &Phase::XEN);
        assert_eq!(Checkpoint::expected_at(q, 3), CheckpointEvent::QEMU_COLO);
        assert_eq!(CheckpointEvent::of(q), &CheckpointEvent::QEMU_COLO);
        assert_eq!(CheckpointEvent::of(Scheme::Remus), &CheckpointEvent::XEN);
    }

    #[test]
    fn qemu_colo_names_slots_and_owners() {
        use CheckpointEvent as E;
        for (p, name) in Phase::QEMU_COLO.iter().zip([
            "reply",
            "stop",
            "ram",
            "device_state",
            "received",
            "loaded",
            "interval",
        ]) {
            assert_eq!(Phase::from_name(name), Some(*p));
            assert_eq!(p.name(), name);
        }
        assert_eq!(Phase::from_name("Device-State"), Some(Phase::DeviceState));
        let err = "nap".parse::<Phase>().unwrap_err();
        assert!(err.contains("suspend") && err.contains("interval"), "{err}");
        // names and indexes are unique over both schemes; slots are 0..7 in each
        let mut names: Vec<&str> = Phase::ALL.iter().map(|p| p.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Phase::COUNT);
        let mut names: Vec<&str> = E::ALL.iter().map(|e| e.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), E::ALL.len());
        for (i, p) in Phase::ALL.iter().enumerate() {
            assert_eq!(p.index(), i);
            assert_eq!(p.start().index(), i, "phase i opens with event i");
        }
        for (i, (p, e)) in Phase::QEMU_COLO.iter().zip(E::QEMU_COLO).enumerate() {
            assert_eq!((p.slot(), e.slot()), (i, i));
            assert_eq!(p.in_scheme(Scheme::XenColo), Phase::XEN[i]);
            assert_eq!(Phase::XEN[i].in_scheme(Scheme::QemuColo), *p);
        }
        assert_eq!(Phase::Interval.end(), E::Request);
        assert_eq!(Phase::Ram.end(), E::VmstateSize);
        assert_eq!(Phase::DeviceState.end(), E::DeviceState);
        assert_eq!(E::VmstateLoaded.closes(), Some(Phase::Loaded));
        assert_eq!(
            E::Request.closes(),
            None,
            "interval is closed by the next REQUEST"
        );
        for e in [E::Request, E::VmstateSend, E::VmstateSize, E::DeviceState] {
            assert_eq!(e.owner(), Owner::Primary, "{e:?}");
        }
        for e in [E::Reply, E::VmstateReceived, E::VmstateLoaded] {
            assert_eq!(e.owner(), Owner::Secondary, "{e:?}");
        }
        let not_messages: Vec<E> = E::ALL.into_iter().filter(|e| !e.is_message()).collect();
        assert_eq!(not_messages, [E::DeviceState]);
    }
}
