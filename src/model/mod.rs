//! The migration model: sessions, checkpoints, phases, stalls and
//! statistics, built record by record from what the pipeline reports.
//!
//! [`Model`] is a [`crate::session::Observer`]: it is updated as decoder
//! events and TCP events arrive, so a live capture shows a checkpoint the
//! moment its last record completes. Checkpoint events follow PROTOCOL.md
//! section 6: each is stamped with the capture time of the packet that
//! completes its record. Forward records open and close checkpoints (NEW
//! opens one, libxc CHECKPOINT and CHECKPOINT_END close its memory and
//! device phases); back-channel records attach to the latest checkpoint that
//! lacks them. When a record was lost (a gap) or precedes the capture, the
//! checkpoint is kept as partial with what is known; nothing is invented.
//!
//! Memory: one [`Checkpoint`] (about 170 bytes) per checkpoint, one
//! [`Round`] per live round, histograms of fixed size, and TCP evidence lists
//! capped at [`MAX_EVIDENCE`] entries per kind. Series over time (bytes
//! each way, data RTT each way) in bins from 10 ms that widen as the
//! session grows ([`series`]): at most [`series::MAX_BINS`] bins each, 8
//! bytes a bin for bytes and 32 for RTT (1.3 MB per session). One 48-byte
//! [`records::RecordEntry`] per record (48 MB per million records) and the
//! decoded content of the latest [`records::RECENT_INFO`] records.

pub mod checkpoint;
pub mod expert;
pub mod qemu;
pub mod records;
pub mod series;
pub mod stall;
pub mod stats;
pub mod tally;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::decode::info::Info;
use crate::decode::libxl::ControlId;
use crate::decode::{
    DiagKind, Direction, Event, Item, ItemKind, Layer, LibxcType, LibxlType, RecordType, Severity,
};
use crate::session::{DirectionStats, Observer, Session, SessionId};
use crate::tcp::{GapCause, TcpEvent, TcpEventKind};
pub use checkpoint::{Checkpoint, CheckpointEvent, MemoryParts, Owner, Phase, Scheme};
pub use stall::{Evidence, Stall, Thresholds};
pub use stats::PhaseStats;
pub use tally::{DirTally, Rtt};

/// Entries kept per kind of TCP evidence and session (retransmissions,
/// zero windows, silences, gaps, FIN/RST).
pub const MAX_EVIDENCE: usize = 1 << 20;

/// What kind of migration a session is, from its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionKind {
    Plain,
    Remus,
    Colo,
    /// A QEMU migration (not COLO).
    Qemu,
    /// A QEMU COLO session.
    #[serde(rename = "qemu-colo")]
    QemuColo,
    /// A QEMU multifd channel (its pages count for `multifd_of`).
    #[serde(rename = "qemu-multifd")]
    QemuMultifd,
    Unknown,
}

impl SessionKind {
    pub fn name(self) -> &'static str {
        match self {
            SessionKind::Plain => "plain",
            SessionKind::Remus => "remus",
            SessionKind::Colo => "colo",
            SessionKind::Qemu => "qemu",
            SessionKind::QemuColo => "qemu-colo",
            SessionKind::QemuMultifd => "qemu-multifd",
            SessionKind::Unknown => "unknown",
        }
    }
}

/// The guest, from the xl save header's config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Domain {
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub guest_type: Option<String>,
    pub memory_kib: Option<u64>,
    pub vcpus: Option<u64>,
}

/// A round of the initial migration (the last one is sent with the guest
/// suspended).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Round {
    /// From 1.
    pub index: u32,
    /// Pages with data: pfn entries whose type carries a page (not XTAB,
    /// XALLOC or BROKEN). libxc walks the whole p2m of a PVH or HVM guest
    /// in round 1, so `pfns` can be 30 times `pages` there.
    pub pages: u64,
    /// pfn entries of its PAGE_DATA records.
    pub pfns: u64,
    pub bytes: u64,
    /// First byte of its first PAGE_DATA, completion of its last.
    pub start: u64,
    pub end: u64,
}

/// The xl handover at the end of a plain migration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Handover {
    pub ready_to_unpause: Option<u64>,
    pub cleared_to_unpause: Option<u64>,
    pub unpause_result: Option<u64>,
    /// The receiver's result byte (0: the domain runs).
    pub result: Option<u8>,
}

/// A span of TCP trouble on one direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Span {
    pub dir: Direction,
    pub start: u64,
    /// None while still open.
    pub end: Option<u64>,
}

/// A direction that sent nothing for a while.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Silence {
    pub span: Span,
    /// Its data the other side had not acknowledged when it fell silent:
    /// more than 0 means it was waiting for the other side, not idle.
    pub outstanding: u64,
}

/// TCP evidence kept for stalls.
#[derive(Debug, Clone, Default)]
pub struct TcpLog {
    /// Zero-window episodes, by the direction whose packets advertised them.
    pub zero_windows: Vec<Span>,
    /// Silences of one direction (20 ms or more), in the order they ended.
    pub silences: Vec<Silence>,
    /// The longest of them (ns), to find those that overlap a time span
    /// without reading them all.
    pub longest_silence: u64,
    pub retransmissions: Vec<(u64, Direction)>,
    pub gaps: Vec<(u64, Direction, u64)>,
    /// FIN (false) and RST (true).
    pub closes: Vec<(u64, Direction, bool)>,
}

fn push_capped<T>(v: &mut Vec<T>, x: T) {
    if v.len() < MAX_EVIDENCE {
        v.push(x);
    }
}

/// A diagnostic from the decoder, with its session and time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionDiagnostic {
    pub severity: Severity,
    pub session: SessionId,
    pub dir: Direction,
    pub ts: u64,
    /// Stream offset in `dir`.
    pub offset: u64,
    pub message: String,
}

/// Decoder diagnostics kept for the report (the rest are counted).
pub const MAX_DIAGNOSTICS: usize = 1000;

/// Everything known about one migration.
#[derive(Debug, Clone)]
pub struct SessionModel {
    pub info: Session,
    pub domain: Domain,
    pub dirs: [DirTally; 2],
    /// Records by (direction, layer, type name): count and wire bytes.
    pub records: BTreeMap<(Direction, &'static str, String), (u64, u64)>,
    pub checkpoints: Vec<Checkpoint>,
    pub rounds: Vec<Round>,
    pub handover: Handover,
    pub tcp: TcpLog,
    /// Last packet or record time seen for the session.
    pub last_activity: u64,
    pub first_activity: Option<u64>,
    /// Both directions ended (connection closed).
    pub ended: bool,
    /// Xen COLO: a CHECKPOINT_STATE record or a dirty pfn list was seen.
    colo: bool,
    /// A QEMU migration stream (set from QEMU records).
    qemu: bool,
    /// A QEMU COLO session (set from QEMU COLO records).
    qemu_colo: bool,
    /// What a QEMU stream showed (None for Xen).
    pub qemu_mig: Option<Box<qemu::QemuMigration>>,
    /// A QEMU COLO device state is being received (since VMSTATE_SIZE).
    qemu_blob: bool,
    checkpointed: bool,
    /// A record was lost or malformed before the stream showed it was
    /// checkpointed: checkpoint 0 (the initial migration) is partial.
    early_damage: bool,
    /// Bytes the capture lost that belong to a checkpoint not opened yet
    /// (after the latest one ended; before the first).
    pending_lost: u64,
    /// Forward bytes were lost (a gap, a re-synchronisation) since the last
    /// NEW: a checkpoint may then begin without its NEW being seen.
    forward_lost: bool,
    ended_plain: bool,
    /// Stream offset just after the latest CHECKPOINT_END (bytes accounting).
    last_end_offset: Option<u64>,
    /// Last pfn of the latest PAGE_DATA of the initial migration.
    last_pfn: Option<u64>,
    /// The latest PAGE_DATA was a partial batch: its round is over.
    round_flushed: bool,
    /// The initial migration is over (first CHECKPOINT or END seen).
    initial_done: bool,
    /// Completion of the stream's END (libxl's, or libxc's without libxl).
    pub stream_end: Option<u64>,
    pub stats: stats::SessionStats,
    /// Forward bytes per bin since the session's first packet (bins from
    /// 10 ms, widened as the session grows: [`series`]).
    pub throughput: series::Series<u64>,
    /// Back-channel bytes per bin since the session's first packet.
    pub throughput_back: series::Series<u64>,
    /// Data RTT samples per bin since the session's first packet, by the
    /// direction whose data was timed (forward, back).
    pub rtt_series: [series::Series<Rtt>; 2],
    /// Every record, for the Records view (48 bytes each).
    pub record_index: records::RecordIndex,
}

/// Entries of a full PAGE_DATA batch (libxc's MAX_BATCH_SIZE).
const MAX_BATCH: u64 = crate::decode::decoder::MAX_BATCH as u64;

impl SessionModel {
    fn new(info: Session) -> Self {
        SessionModel {
            info,
            domain: Domain::default(),
            dirs: Default::default(),
            records: BTreeMap::new(),
            checkpoints: Vec::new(),
            rounds: Vec::new(),
            handover: Handover::default(),
            tcp: TcpLog::default(),
            last_activity: 0,
            first_activity: None,
            ended: false,
            colo: false,
            qemu: false,
            qemu_colo: false,
            qemu_mig: None,
            qemu_blob: false,
            checkpointed: false,
            early_damage: false,
            pending_lost: 0,
            forward_lost: false,
            ended_plain: false,
            last_end_offset: None,
            last_pfn: None,
            round_flushed: false,
            initial_done: false,
            stream_end: None,
            stats: stats::SessionStats::default(),
            throughput: Default::default(),
            throughput_back: Default::default(),
            rtt_series: Default::default(),
            record_index: records::RecordIndex::default(),
        }
    }

    /// The kind of migration, as far as the records tell.
    pub fn kind(&self) -> SessionKind {
        if self.info.multifd_of.is_some()
            || self.info.recognised_by == crate::decode::detect::Opening::QemuMultifd.name()
        {
            SessionKind::QemuMultifd
        } else if self.qemu_colo {
            SessionKind::QemuColo
        } else if self.qemu {
            SessionKind::Qemu
        } else if self.colo {
            SessionKind::Colo
        } else if self.checkpointed {
            SessionKind::Remus
        } else if self.ended_plain || !self.rounds.is_empty() {
            SessionKind::Plain
        } else {
            SessionKind::Unknown
        }
    }

    /// How its checkpoints are taken: QEMU COLO, Xen COLO, else Remus
    /// (also a plain or unknown session's checkpoint 0).
    pub fn scheme(&self) -> Scheme {
        if self.qemu_colo {
            Scheme::QemuColo
        } else if self.colo {
            Scheme::XenColo
        } else {
            Scheme::Remus
        }
    }

    /// The last round of the initial migration, once that is over: libxc
    /// suspends the guest after its live rounds and sends what is still
    /// dirty as this round. (A guest that dirtied nothing since the last
    /// live round gets no final PAGE_DATA; the last live round is then
    /// taken, and the downtime reads long by that round.)
    pub fn final_round(&self) -> Option<&Round> {
        self.rounds.last().filter(|_| self.initial_done)
    }

    /// A migration that is not checkpointed and whose stream stopped before
    /// its END: cut short (the receiver went away, the sender died) or,
    /// while a capture still runs, in progress.
    pub fn stream_unfinished(&self) -> bool {
        !self.checkpointed && self.stream_end.is_none() && self.dirs[0].bytes > 0
    }

    /// How long the guest of a plain migration was paused: from the first
    /// byte of the final round to the receiver's report that it unpaused
    /// the domain (xl's handover), or, when the capture holds no handover
    /// (a bare libxl or libxc stream), to the completion of END. None when
    /// the rounds were not all seen (the capture began mid-stream), the
    /// stream did not end, or the receiver reported a failure.
    pub fn migration_downtime(&self) -> Option<u64> {
        if self.kind() == SessionKind::Qemu && !self.info.mid_stream {
            return self.qemu_mig.as_ref()?.final_stage();
        }
        if self.kind() != SessionKind::Plain || self.info.mid_stream {
            return None;
        }
        let start = self.final_round()?.start;
        let h = &self.handover;
        let end = if h.ready_to_unpause.is_some() || h.cleared_to_unpause.is_some() {
            h.unpause_result.filter(|_| h.result == Some(0))?
        } else {
            self.stream_end?
        };
        end.checked_sub(start)
    }

    /// The checkpoints a timeline lists: none for plain or unknown sessions,
    /// and without a trailing Remus checkpoint that has no record yet.
    pub fn listed_checkpoints(&self) -> &[Checkpoint] {
        if !matches!(
            self.kind(),
            SessionKind::Colo | SessionKind::Remus | SessionKind::QemuColo
        ) {
            return &[];
        }
        match self.checkpoints.last() {
            Some(c) if c.last_event().is_none() && c.first_record.is_none() => {
                &self.checkpoints[..self.checkpoints.len() - 1]
            }
            _ => &self.checkpoints,
        }
    }

    /// Forgets all but the last `keep` checkpoints, and the TCP evidence
    /// from before the oldest one kept: a long-running monitor keeps memory
    /// flat once it has counted them. Checkpoint numbers, statistics and
    /// tallies are kept. The model needs the last two checkpoints to go on,
    /// so `keep` is at least 2 unless the session has ended.
    pub fn forget(&mut self, keep: usize) {
        let keep = if self.ended { keep } else { keep.max(2) };
        let drop = self.checkpoints.len().saturating_sub(keep);
        if drop == 0 && keep > 0 {
            return;
        }
        self.checkpoints.drain(..drop);
        let since = self
            .checkpoints
            .first()
            .and_then(|c| c.start().or(c.last_event()))
            .unwrap_or(u64::MAX);
        let t = &mut self.tcp;
        t.zero_windows
            .retain(|z| z.end.map_or(true, |e| e >= since));
        t.silences
            .retain(|x| x.span.end.map_or(true, |e| e >= since));
        t.retransmissions.retain(|r| r.0 >= since);
        t.gaps.retain(|g| g.0 >= since);
        t.closes.retain(|c| c.0 >= since);
    }

    /// Frees everything but the session's identity and tallies, once a
    /// monitor has counted an ended session: checkpoints, rounds, TCP
    /// evidence, statistics, series and the record index. A report of it
    /// afterwards lists no checkpoint.
    pub fn retire(&mut self) {
        self.forget(0);
        self.rounds = Vec::new();
        self.tcp = TcpLog::default();
        self.stats = stats::SessionStats::default();
        self.throughput = Default::default();
        self.throughput_back = Default::default();
        self.rtt_series = Default::default();
        self.record_index = Default::default();
        self.checkpoints.shrink_to_fit();
    }

    /// The latest checkpoint lost or cannot trust a record: partial. Before
    /// any exists (the initial migration's first records), checkpoint 0
    /// will be partial.
    fn damage_latest(&mut self) {
        match self.checkpoints.last_mut() {
            Some(c) => c.damaged = true,
            None => self.early_damage = true,
        }
    }

    /// Damage from forward offset `offset` on; `first`: when the byte at
    /// `offset` came, if known. In a Remus stream, bytes after the latest
    /// CHECKPOINT_END belong to the next checkpoint, which no record has
    /// opened yet: it opens now, partial, from that byte (a capture that
    /// stops inside the next checkpoint's first PAGE_DATA made a complete
    /// checkpoint partial and hid the one it stopped in).
    fn damage_at(&mut self, dir: Direction, offset: u64, first: Option<u64>) {
        let after_end = dir == Direction::Forward
            && self.checkpointed
            && !self.colo
            && self.last_end_offset.is_some_and(|e| offset >= e)
            && self
                .checkpoints
                .last()
                .is_some_and(|c| c.event(CheckpointEvent::CheckpointEnd).is_some());
        if after_end {
            self.open_remus_checkpoint(true, first);
        } else {
            self.damage_latest();
        }
    }

    fn touch(&mut self, ts: u64) {
        self.first_activity.get_or_insert(ts);
        self.last_activity = self.last_activity.max(ts);
    }

    /// The checkpoint records attach to: the latest one, or a new partial
    /// one when there is none (capture started inside the session).
    fn current(&mut self) -> &mut Checkpoint {
        if self.checkpoints.is_empty() {
            let index = u64::from(self.info.mid_stream && !self.info.syn_seen);
            let mut c = Checkpoint::new(index);
            c.damaged = self.info.mid_stream || self.early_damage;
            c.lost = std::mem::take(&mut self.pending_lost);
            self.checkpoints.push(c);
        }
        self.checkpoints.last_mut().expect("just ensured")
    }

    fn open_checkpoint(&mut self, damaged: bool) -> &mut Checkpoint {
        let index = self.checkpoints.last().map_or(
            u64::from(self.info.mid_stream && !self.info.syn_seen),
            |c| c.index + 1,
        );
        let mut c = Checkpoint::new(index);
        c.damaged = damaged || (self.checkpoints.is_empty() && self.early_damage);
        c.lost = std::mem::take(&mut self.pending_lost);
        c.damaged |= c.lost > 0;
        self.checkpoints.push(c);
        self.checkpoints.last_mut().expect("just pushed")
    }

    /// `len` bytes of direction `dir` from `offset` on are missing from the
    /// capture: the checkpoint whose span holds them is partial, whatever
    /// they held (page bytes too: its pages and bytes were not measured).
    /// Forward bytes after a CHECKPOINT_END, and back-channel bytes after
    /// SVM_RESUMED, belong to the next checkpoint.
    fn lose(&mut self, dir: Direction, offset: u64, len: u64) {
        let Some(c) = self.checkpoints.last() else {
            self.early_damage = true;
            self.pending_lost = self.pending_lost.saturating_add(len);
            return;
        };
        let scheme = self.scheme();
        let ended = match (dir, scheme) {
            (Direction::Forward, Scheme::QemuColo) => {
                c.event(CheckpointEvent::DeviceState).is_some()
            }
            (Direction::Forward, _) => {
                c.event(CheckpointEvent::CheckpointEnd).is_some()
                    && self.last_end_offset.is_some_and(|e| offset >= e)
            }
            (Direction::Reverse, _) => c.event(Checkpoint::downtime_end(scheme)).is_some(),
        };
        if ended {
            self.pending_lost = self.pending_lost.saturating_add(len);
        } else if let Some(c) = self.checkpoints.last_mut() {
            c.damaged = true;
            c.lost = c.lost.saturating_add(len);
        }
    }

    /// Records `e` at `ts` on the latest checkpoint if it lacks it, else on a
    /// new partial checkpoint (the records that would have opened it were lost).
    fn mark(&mut self, e: CheckpointEvent, ts: u64) {
        let colo = self.colo;
        let scheme = self.scheme();
        let needs_new = match self.checkpoints.last() {
            None => false,
            Some(c) => {
                c.event(e).is_some()
                    || (colo && c.index == 0 && matches!(e, CheckpointEvent::SvmSuspended | CheckpointEvent::DirtyPfnList))
                    // a later event of the same checkpoint seen, and earlier
                    // in time (an event can be processed late: a record
                    // confirmed by a re-synchronisation, a back channel
                    // ahead of the forward stream)
                    || c.events[e.slot() + 1..].iter().any(|x| x.is_some_and(|t| t < ts)) && e != CheckpointEvent::New
            }
        };
        let c = if needs_new {
            self.open_checkpoint(true)
        } else {
            self.current()
        };
        c.events[e.slot()] = Some(ts);
        if let Some(c) = self.checkpoints.last() {
            self.stats.event(c, e, scheme);
        }
    }

    /// Remus: the first forward record after a CHECKPOINT_END opens the
    /// next checkpoint, from the first byte of that record (`first`).
    fn remus_next(&mut self, item: &Item, first: u64) {
        let opens = matches!(item.kind, ItemKind::Record(t) if t != RecordType::Libxl(LibxlType::CheckpointState));
        if opens
            && self.checkpointed
            && !self.colo
            && self
                .checkpoints
                .last()
                .is_some_and(|c| c.event(CheckpointEvent::CheckpointEnd).is_some())
        {
            self.open_remus_checkpoint(false, Some(first));
        }
    }

    /// Opens the Remus checkpoint after a CHECKPOINT_END, from the first
    /// byte of its first record (`first`, when known).
    fn open_remus_checkpoint(&mut self, damaged: bool, first: Option<u64>) {
        if let Some(c0) = self.checkpoints.last().filter(|c| c.index == 0) {
            self.stats.remus_initial(c0);
        }
        let c = self.open_checkpoint(damaged);
        c.first_record = first;
    }

    /// A forward item whose first byte came at `first` and last at `ts`.
    fn forward_item(&mut self, item: &Item, first: u64, ts: u64) {
        use ItemKind::Record;
        use RecordType::{Libxc, Libxl};
        self.remus_next(item, first);
        match (&item.kind, &item.info) {
            (ItemKind::SaveHeader, Info::SaveHeader { config, .. }) => {
                self.domain = Domain {
                    name: config.name.clone(),
                    guest_type: config.guest_type.clone(),
                    memory_kib: config.memory_kib,
                    vcpus: config.vcpus,
                };
            }
            (ItemKind::ClearedToUnpause, _) => self.handover.cleared_to_unpause = Some(ts),
            (Record(Libxl(LibxlType::CheckpointState)), Info::CheckpointState { control_id }) => {
                self.colo = true;
                self.checkpointed = true;
                if *control_id == ControlId::New {
                    self.initial_done = true;
                    // A partial checkpoint opened by the secondary's records
                    // before this NEW was processed (it was held behind a
                    // hole), all of them later than it: this NEW is its own.
                    let late = self.checkpoints.last().is_some_and(|c| {
                        c.index > 0
                            && c.event(CheckpointEvent::New).is_none()
                            && c.first_record.is_none()
                            && c.last_event().is_some()
                            && c.events.iter().flatten().all(|&t| t >= ts)
                    });
                    // A partial checkpoint opened by the secondary's records
                    // alone, all before this NEW, while the forward stream
                    // lost nothing since the previous NEW: no checkpoint
                    // began there (a damaged back-channel record); it is
                    // dropped and the checkpoint before it made partial, so
                    // that numbering does not shift.
                    let spurious = !late
                        && !self.forward_lost
                        && self.checkpoints.len() >= 2
                        && self.checkpoints.last().is_some_and(|c| {
                            c.damaged
                                && c.event(CheckpointEvent::New).is_none()
                                && c.first_record.is_none()
                                && c.event(CheckpointEvent::LibxcCheckpoint).is_none()
                                && c.event(CheckpointEvent::CheckpointEnd).is_none()
                                && c.events.iter().flatten().all(|&t| t < ts)
                        });
                    if spurious {
                        let lost = self.checkpoints.pop().map_or(0, |c| c.lost);
                        if let Some(c) = self.checkpoints.last_mut() {
                            c.damaged = true;
                            c.lost = c.lost.saturating_add(lost);
                        }
                    }
                    self.forward_lost = false;
                    if late {
                        if let Some(c) = self.checkpoints.last_mut() {
                            c.events[CheckpointEvent::New.slot()] = Some(ts);
                            c.first_record = Some(first);
                        }
                    } else {
                        if let Some(prev) = self.checkpoints.last_mut() {
                            prev.next_start = Some(ts);
                            self.stats.run_closed(prev, Scheme::XenColo);
                        }
                        let c = self.open_checkpoint(false);
                        c.events[CheckpointEvent::New.slot()] = Some(ts);
                        c.first_record = Some(first);
                    }
                }
            }
            (Record(Libxc(LibxcType::PageData)), Info::PageData(p)) => {
                if !self.initial_done && !self.info.mid_stream {
                    self.round(p, item.wire_len, first, ts);
                }
                let c = self.current();
                c.first_record.get_or_insert(first);
                c.first_page.get_or_insert(first);
                c.page_bytes = c.page_bytes.saturating_add(item.wire_len);
                c.pages += p.data_pages;
                c.pfns += p.count;
            }
            (Record(Libxc(LibxcType::Checkpoint)), _) => {
                self.checkpointed = true;
                let initial = !self.initial_done;
                self.initial_done = true;
                // Remus checkpoint 0: its memory phase is the final round
                // (set before the event closes the phase).
                let final_round = self.final_round().map(|r| r.start);
                if initial && !self.colo {
                    if let Some(c) = self.checkpoints.last_mut().filter(|c| {
                        c.index == 0 && c.event(CheckpointEvent::LibxcCheckpoint).is_none()
                    }) {
                        c.final_round = final_round;
                    }
                }
                self.mark(CheckpointEvent::LibxcCheckpoint, ts);
            }
            (Record(Libxl(LibxlType::CheckpointEnd)), _) => {
                self.checkpointed = true;
                let end = item.offset + item.wire_len;
                let from =
                    self.last_end_offset
                        .unwrap_or(if self.info.mid_stream { end } else { 0 });
                self.mark(CheckpointEvent::CheckpointEnd, ts);
                let first_of_mid_stream = self.last_end_offset.is_none() && self.info.mid_stream;
                let c = self.current();
                c.bytes = end.saturating_sub(from);
                if first_of_mid_stream {
                    c.damaged = true;
                }
                self.last_end_offset = Some(end);
                if let Some(c) = self.checkpoints.last() {
                    self.stats.closed(c, Scheme::XenColo);
                }
            }
            (Record(Libxc(LibxcType::End)), _) | (Record(Libxl(LibxlType::End)), _) => {
                self.initial_done = true;
                if !self.checkpointed {
                    self.stream_end = Some(ts);
                }
                if !self.checkpointed {
                    self.ended_plain = true;
                }
            }
            _ => {}
        }
    }

    /// A PAGE_DATA of the initial migration. libxc sends a round's pfns in
    /// ascending order, in batches of at most 1024 that are flushed when full
    /// and at the end of the round: a round begins when the pfns go down, or
    /// after a batch that was not full.
    fn round(&mut self, p: &crate::decode::libxc::PfnSummary, bytes: u64, first: u64, ts: u64) {
        let new_round = match (self.last_pfn, p.first) {
            (None, _) => true,
            _ if self.round_flushed => true,
            (Some(prev), Some(f)) => f <= prev,
            _ => false,
        };
        self.round_flushed = p.count < MAX_BATCH;
        if new_round {
            let index = self.rounds.len() as u32 + 1;
            self.rounds.push(Round {
                index,
                pages: 0,
                pfns: 0,
                bytes: 0,
                start: first,
                end: ts,
            });
        }
        if let Some(r) = self.rounds.last_mut() {
            r.pages += p.data_pages;
            r.pfns += p.count;
            r.bytes += bytes;
            r.end = ts;
        }
        if p.last.is_some() {
            self.last_pfn = p.last;
        }
    }

    fn back_item(&mut self, item: &Item, ts: u64) {
        use RecordType::{Libxc, Libxl};
        match (&item.kind, &item.info) {
            (ItemKind::ReadyToUnpause, _) => self.handover.ready_to_unpause = Some(ts),
            (ItemKind::UnpauseResult, Info::UnpauseResult { result }) => {
                self.handover.unpause_result = Some(ts);
                self.handover.result = Some(*result);
            }
            (
                ItemKind::Record(Libxl(LibxlType::CheckpointState)),
                Info::CheckpointState { control_id },
            ) => {
                self.colo = true;
                self.checkpointed = true;
                let e = match control_id {
                    ControlId::SvmSuspended => CheckpointEvent::SvmSuspended,
                    ControlId::SvmReady => CheckpointEvent::SvmReady,
                    ControlId::SvmResumed => CheckpointEvent::SvmResumed,
                    _ => return,
                };
                self.mark(e, ts);
            }
            (ItemKind::Record(Libxc(LibxcType::CheckpointDirtyPfnList)), Info::DirtyPfnList(p)) => {
                self.colo = true;
                self.checkpointed = true;
                self.mark(CheckpointEvent::DirtyPfnList, ts);
                self.current().dirty_pfns = p.count;
            }
            _ => {}
        }
    }

    /// Checkpoints whose phases count (COLO: all; Remus: all).
    pub fn phase(&self, c: &Checkpoint, p: Phase) -> Option<u64> {
        c.phase(p, self.scheme())
    }
}

/// The whole model: every session of an analysis.
#[derive(Debug, Clone, Default)]
pub struct Model {
    pub sessions: Vec<SessionModel>,
    /// Capture time of the first packet.
    pub start: Option<u64>,
    /// Capture time of the latest packet seen (the model's "now").
    pub now: u64,
    pub diagnostics: Vec<SessionDiagnostic>,
    pub diagnostics_dropped: u64,
    /// Keep the per-record index (the UI's Records view; 48 bytes per
    /// record). Reports do without it.
    pub index_records: bool,
    /// Significant digits of the sessions' statistics (None: 3).
    pub stats_digits: Option<u8>,
}

impl Model {
    /// The multifd channels joined to session `s`, summed: channels,
    /// packets, pages, wire bytes.
    pub fn multifd_totals(&self, s: SessionId) -> (u32, u64, u64, u64) {
        self.sessions
            .iter()
            .filter(|c| c.info.multifd_of == Some(s))
            .filter_map(|c| c.qemu_mig.as_ref())
            .fold((0, 0, 0, 0), |t, q| {
                (
                    t.0 + q.multifd_channels,
                    t.1 + q.multifd_packets,
                    t.2 + q.multifd_pages,
                    t.3 + q.multifd_bytes,
                )
            })
    }

    /// A multifd channel's packets, counted on the channel; the session it
    /// carries pages of sums its channels ([`Model::multifd_totals`]).
    fn multifd(&mut self, s: SessionId, events: &[Event]) {
        let Some(p) = self
            .sessions
            .get_mut(s as usize)
            .filter(|m| m.info.recognised_by == crate::decode::detect::Opening::QemuMultifd.name())
        else {
            return;
        };
        for e in events {
            let Some(item) = e.as_item() else { continue };
            let Info::Qemu(q) = &item.info else { continue };
            let m = p.qemu_mig.get_or_insert_with(Box::default);
            match &**q {
                crate::decode::qemu::QemuInfo::MultifdInit { .. } => m.multifd_channels += 1,
                crate::decode::qemu::QemuInfo::MultifdPacket { pages, .. } => {
                    m.multifd_packets += 1;
                    m.multifd_pages += u64::from(*pages);
                    m.multifd_bytes += item.wire_len;
                }
                _ => {}
            }
        }
    }

    pub fn new() -> Self {
        Model::default()
    }

    /// A model that also indexes every record, for the Records view.
    pub fn with_record_index() -> Self {
        Model {
            index_records: true,
            ..Model::default()
        }
    }

    /// Moves the model's clock to `now_ns` (capture time) without a packet,
    /// e.g. from the wall clock while a live capture is quiet, so that a
    /// checkpoint stuck in the middle shows as stalled while it happens.
    pub fn advance(&mut self, now_ns: u64) {
        self.now = self.now.max(now_ns);
    }

    fn session(&mut self, s: SessionId) -> Option<&mut SessionModel> {
        self.sessions.get_mut(s as usize)
    }

    /// Slow phases and stalled checkpoints of `s` under `t`, as of the
    /// latest packet; `capture_ended` once no more packets will come.
    pub fn stalls(&self, s: &SessionModel, t: &Thresholds, capture_ended: bool) -> Vec<Stall> {
        stall::find(s, t, self.now, capture_ended)
    }
}

fn dir_index(d: Direction) -> usize {
    match d {
        Direction::Forward => 0,
        Direction::Reverse => 1,
    }
}

impl Observer for Model {
    fn start(&mut self, ts: u64) {
        self.start.get_or_insert(ts);
        self.now = self.now.max(ts);
    }

    fn clock(&mut self, ts: u64) {
        self.now = self.now.max(ts);
    }

    fn session(&mut self, s: &Session) {
        if self.sessions.len() == s.id as usize {
            let mut m = SessionModel::new(s.clone());
            if let Some(d) = self.stats_digits {
                m.stats = stats::SessionStats::with_digits(d);
            }
            self.sessions.push(m);
        }
    }

    fn updated(&mut self, s: &Session) {
        if let Some(m) = self.session(s.id) {
            m.info = s.clone();
        }
    }

    fn back_channel(&mut self, s: &Session) {
        match self.session(s.id) {
            Some(m) => m.info = s.clone(),
            None => self.sessions.push(SessionModel::new(s.clone())),
        }
    }

    fn bytes(&mut self, s: SessionId, d: Direction, _offset: u64, data: &[u8]) {
        let now = self.now;
        if let Some(m) = self.session(s) {
            m.dirs[dir_index(d)].bytes(data.len() as u64);
            let t0 = m.info.first_ts; // series count from the session's first packet
            let series = match d {
                Direction::Forward => &mut m.throughput,
                Direction::Reverse => &mut m.throughput_back,
            };
            *series.at(now.saturating_sub(t0)) += data.len() as u64;
        }
    }

    fn gap(&mut self, s: SessionId, d: Direction, ts: u64, offset: u64, len: u64, cause: GapCause) {
        self.now = self.now.max(ts);
        if let Some(m) = self.session(s) {
            if d == Direction::Forward {
                m.forward_lost = true;
            }
            m.dirs[dir_index(d)].gap(len, cause);
            push_capped(&mut m.tcp.gaps, (ts, d, len));
            m.lose(d, offset, len);
            m.touch(ts);
        }
    }

    fn decoded(&mut self, s: SessionId, d: Direction, ts: u64, events: &[Event]) {
        self.decoded_span(s, d, ts, ts, events);
    }

    fn decoded_span(&mut self, s: SessionId, d: Direction, first: u64, ts: u64, events: &[Event]) {
        self.now = self.now.max(ts);
        self.multifd(s, events);
        let Some(m) = self.sessions.get_mut(s as usize) else {
            return;
        };
        m.touch(ts);
        for e in events {
            match e {
                Event::Item(item) => {
                    m.dirs[dir_index(d)].item();
                    let layer: &'static str = item.layer.name();
                    let name = match item.kind {
                        ItemKind::Record(t) if !t.is_known() => t.to_string(),
                        k => k.name().to_string(),
                    };
                    let r = m.records.entry((d, layer, name)).or_default();
                    r.0 += 1;
                    r.1 += item.wire_len;
                    // A COLO device state's sections are one rung (its
                    // DEVICE_STATE), not one per device.
                    let in_device_state = m.qemu_blob
                        && matches!(
                            item.kind,
                            ItemKind::Qemu(
                                crate::decode::qemu::QemuKind::Section(_)
                                    | crate::decode::qemu::QemuKind::Eof
                            )
                        );
                    match (d, item.layer) {
                        (_, Layer::Qemu) => m.qemu_item(item, d, first, ts),
                        (Direction::Forward, _) => m.forward_item(item, first, ts),
                        (Direction::Reverse, _) => m.back_item(item, ts),
                    }
                    if m.checkpointed && !in_device_state {
                        if let Some(c) = m.checkpoints.last_mut() {
                            c.note_record(first, ts, d, item);
                        }
                    }
                    if self.index_records {
                        let ckpt = m.checkpoints.last().map(|c| c.index);
                        m.record_index
                            .push(records::entry(item, d, ts, ckpt), &item.info);
                    }
                }
                Event::Resync {
                    offset, skipped, ..
                } => {
                    if d == Direction::Forward {
                        m.forward_lost = true;
                    }
                    // Skipped bytes may have held records of the latest
                    // checkpoint (a gap inside page bytes loses none).
                    m.damage_at(d, offset.saturating_sub(*skipped), None);
                }
                Event::Diagnostic(diag) if diag.severity != Severity::Note => {
                    // An unknown mandatory record (a restorer would stop
                    // there; its content is lost to us) counts as an error.
                    let lost =
                        diag.kind == DiagKind::UnknownRecord && diag.severity == Severity::Warning;
                    if diag.severity == Severity::Error || lost {
                        // A record of this checkpoint is malformed (a count
                        // that lies, a length over the limit): what it says
                        // cannot be trusted, so the checkpoint is partial.
                        m.damage_at(d, diag.offset, Some(first));
                    }
                    m.dirs[dir_index(d)].diagnostic(diag);
                    if self.diagnostics.len() < MAX_DIAGNOSTICS {
                        self.diagnostics.push(SessionDiagnostic {
                            severity: diag.severity,
                            session: s,
                            dir: d,
                            ts,
                            offset: diag.offset,
                            message: diag.message.clone(),
                        });
                    } else {
                        self.diagnostics_dropped += 1;
                    }
                }
                _ => {}
            }
        }
    }

    fn tcp(&mut self, s: SessionId, d: Direction, ev: &TcpEvent) {
        self.now = self.now.max(ev.ts_ns);
        let Some(m) = self.session(s) else { return };
        let ts = ev.ts_ns;
        m.touch(ts);
        m.dirs[dir_index(d)].tcp(ev);
        match ev.kind {
            TcpEventKind::Retransmission { .. } => {
                push_capped(&mut m.tcp.retransmissions, (ts, d));
            }
            TcpEventKind::ZeroWindowStart => {
                push_capped(
                    &mut m.tcp.zero_windows,
                    Span {
                        dir: d,
                        start: ts,
                        end: None,
                    },
                );
            }
            TcpEventKind::ZeroWindowEnd { .. } => {
                if let Some(z) = m
                    .tcp
                    .zero_windows
                    .iter_mut()
                    .rev()
                    .find(|z| z.dir == d && z.end.is_none())
                {
                    z.end = Some(ts);
                }
            }
            // Silences of any length past the pause limit are evidence.
            TcpEventKind::Idle {
                duration_ns,
                outstanding,
            }
            | TcpEventKind::Pause {
                duration_ns,
                outstanding,
            } => {
                m.tcp.longest_silence = m.tcp.longest_silence.max(duration_ns);
                push_capped(
                    &mut m.tcp.silences,
                    Silence {
                        span: Span {
                            dir: d,
                            start: ts.saturating_sub(duration_ns),
                            end: Some(ts),
                        },
                        outstanding,
                    },
                );
            }
            TcpEventKind::Rtt {
                sample: crate::tcp::RttKind::Data,
                ns,
            } => {
                let t0 = m.info.first_ts;
                m.rtt_series[dir_index(d)].at(ts.saturating_sub(t0)).add(ns);
            }
            TcpEventKind::Fin => push_capped(&mut m.tcp.closes, (ts, d, false)),
            TcpEventKind::Rst => push_capped(&mut m.tcp.closes, (ts, d, true)),
            _ => {}
        }
    }

    fn ended(&mut self, s: SessionId, d: Direction, stats: &DirectionStats) {
        if let Some(m) = self.session(s) {
            m.dirs[dir_index(d)].ended(stats);
            if m.dirs.iter().all(|x| x.tcp.is_some())
                || m.info.back_channel.is_none() && d == Direction::Reverse
            {
                m.ended = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtt_bins_merge_keeping_min_avg_max() {
        use series::Merge;
        let (mut a, mut b) = (Rtt::default(), Rtt::default());
        a.add(30);
        b.add(10);
        b.add(20);
        a.merge(&b);
        assert_eq!((a.count, a.min, a.max, a.avg()), (3, 10, 30, Some(20)));
        let mut e = Rtt::default();
        e.merge(&Rtt::default());
        assert_eq!(e.avg(), None);
    }

    #[test]
    fn rtt_second_keeps_min_avg_max() {
        let mut r = Rtt::default();
        assert_eq!(r.avg(), None);
        for ns in [30, 10, 20] {
            r.add(ns);
        }
        assert_eq!((r.count, r.min, r.max, r.avg()), (3, 10, 30, Some(20)));
    }
}
