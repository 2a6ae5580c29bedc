//! Deterministic generator of realistic Xen migration streams, for tests,
//! demos and benchmarks.
//!
//! [`generate`] turns a [`Scenario`] into the two byte streams of a migration
//! connection (PROTOCOL.md section 1), handed to a [`StreamSink`] as timed
//! application writes, and returns a [`Manifest`]: the ground truth (every
//! record's offset, length and completion time, the live rounds, the
//! checkpoints' event times) that decoder tests compare against.
//!
//! # What it generates
//!
//! - **Plain** migrations of HVM or PV guests: optional xl preamble (banner on
//!   the reverse direction, save-file header with a JSON config forward),
//!   libxl header, LIBXC_CONTEXT, image and domain headers, the static records
//!   (X86_PV_INFO for PV; X86_CPUID_POLICY, X86_MSR_POLICY, STATIC_DATA_END for
//!   stream version 3), X86_PV_P2M_FRAMES (PV), live rounds of PAGE_DATA
//!   (round 1 sends every pfn, later rounds a shrinking dirty subset, the last
//!   round is the stop-and-copy; pfns ascend within a round), the CPU records
//!   (HVM: X86_TSC_INFO, HVM_CONTEXT, HVM_PARAMS; PV: X86_TSC_INFO,
//!   SHARED_INFO, then per vcpu X86_PV_VCPU_BASIC/_EXTENDED/_XSAVE/_MSRS),
//!   libxc END, the emulator records (HVM only, as libxl writes them) and libxl
//!   END, then the xl trailer when the preamble is on (section 2 item 4).
//! - **Remus**: checkpoint 0 is that live migration ending with libxc
//!   CHECKPOINT and libxl CHECKPOINT_END; each later checkpoint sends the
//!   primary's dirty pages, the CPU records, CHECKPOINT, the emulator records
//!   and CHECKPOINT_END. No back channel, no END records.
//! - **COLO** (HVM only): as Remus, plus the section-6 choreography: forward
//!   CHECKPOINT_STATE NEW, back channel SVM_SUSPENDED, CHECKPOINT_DIRTY_PFN_LIST,
//!   and SVM_READY / SVM_RESUMED after each CHECKPOINT_END (checkpoint 0
//!   included). The pages sent are the union of the secondary's dirty list and
//!   the primary's own dirty pages.
//! - **QEMU** precopy and **QEMU COLO** (PROTOCOL.md section 9, as QEMU 7.2
//!   writes them; `engine/qemu.rs`): "QEVM", CONFIGURATION, ENABLE_COLO
//!   (COLO), the "ram" sections (MEM_SIZE of four RAMBlocks, one pass per
//!   live round, the last one the END section), FULL device sections, EOF
//!   and VMDESCRIPTION; then for COLO the reverse CHECKPOINT_READY and
//!   checkpoints numbered from 1 (as the model numbers them): REQUEST,
//!   REPLY, VMSTATE_SEND, the dirty pages as an END section and EOF,
//!   VMSTATE_SIZE and the device state, VMSTATE_RECEIVED, VMSTATE_LOADED,
//!   each message a write of its own. Their phases (reply, stop, ram,
//!   device_state, received, loaded, interval) take the stalls.
//!
//! Where Xen's own behaviour is more specific than PROTOCOL.md, the generator
//! follows Xen: HVM_PARAMS holds the params libxc's `write_hvm_params` saves,
//! minus the zero ones; the xl config carries its trailing NUL; the first
//! HVM round sends the VGA hole (pfns 0xA0-0xBF) as XTAB entries; a
//! version-2 stream has neither STATIC_DATA_END nor the CPU policy records
//! (both arrived with version 3).
//!
//! # Timing model
//!
//! Time starts at 0 ns. Each direction is a link of [`Timing::bandwidth`]
//! bytes per second: a write of `n` bytes lasts `ceil(n * 1e9 / bandwidth)`
//! ns, and writes on one direction never overlap. Page transfer therefore
//! follows from bytes and bandwidth. Work that is not transfer takes time from
//! the model: the gap between live rounds ([`Timing::round_gap_ns`]), the
//! guest suspend before the stop-and-copy round, the collection of CPU state
//! ([`Timing::cpu_state_ns`]) and the COLO phases of section 6 (suspend,
//! dirty_sync, device, apply, resume, run), each drawn uniformly within
//! `mean * (1 ± jitter)` from a seeded generator. An event time is the end of
//! the write that carries the record's last byte, and the generator places
//! writes so that a phase's drawn duration is exactly the distance between
//! the events that bound it. A stall from [`Scenario::stalls`] replaces the
//! drawn duration of one phase of one checkpoint; for the memory phase the
//! page writes are slowed down to fill it. A phase can never be shorter than
//! the transfer of its records: such a duration is lengthened to the
//! transfer time.
//!
//! Two independent random streams are used, one for contents (dirty sets) and
//! one for durations, so changing bandwidth, phase means or stalls changes the
//! times and nothing else: the bytes stay identical.
//!
//! # Limits
//!
//! - Guests of 1 MiB to 4 TiB, 1 to 512 vcpus, x86-64 only (PV guests are
//!   64-bit with 4-level page tables, HVM guests use qemu-upstream).
//! - Page contents are cheap stand-ins (template pages with the pfn and an
//!   epoch stamped in), not compressible like real memory and not valid page
//!   tables.
//! - The stream is produced in one pass with one reusable record buffer
//!   (~4 MiB); memory use does not grow with the stream. The manifest holds one
//!   entry per record (set [`Scenario::manifest_records`] to false for very
//!   long sessions).
//! - Streams are always healthy: no failover, no truncated checkpoints; cut
//!   the output to model those.
//! - No TCP here: the writes carry times; [`capture`] turns them into the
//!   packets of TCP connections and writes pcap or pcapng files, and
//!   [`replay`] sends them over real sockets.

pub mod capture;
pub mod cli;
mod content;
mod engine;
pub mod replay;

use std::collections::HashSet;
use std::io;

use serde::Serialize;

use crate::decode::wire::{Layer, RECORD_HEADER_LEN};
use crate::decode::Direction;

pub use content::{page_type, MAX_BATCH, PAGE_SIZE};

/// One application-level write() on a direction, transmitted over
/// `[start_ns, end_ns]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Write<'a> {
    pub start_ns: u64,
    pub end_ns: u64,
    pub dir: Direction,
    /// `None`: the migration connection (the stream of `dir`); `Some(k)`:
    /// QEMU multifd channel `k` (from 0), a connection of its own that
    /// carries forward bytes only ([`Scenario::multifd`]).
    pub channel: Option<u32>,
    pub data: &'a [u8],
}

/// Where [`generate`] sends its writes, in time order per direction.
pub trait StreamSink {
    fn write(&mut self, w: &Write<'_>) -> io::Result<()>;
}

impl<S: StreamSink + ?Sized> StreamSink for &mut S {
    fn write(&mut self, w: &Write<'_>) -> io::Result<()> {
        (**self).write(w)
    }
}

/// A sink that appends forward bytes to one writer and reverse bytes to
/// another (either may be `io::sink()`). The migration connection's only:
/// writes of QEMU multifd channels are left out (a capture holds them).
#[derive(Debug)]
pub struct StreamFiles<F: io::Write, R: io::Write> {
    pub forward: F,
    pub reverse: R,
}

impl<F: io::Write, R: io::Write> StreamFiles<F, R> {
    pub fn new(forward: F, reverse: R) -> Self {
        StreamFiles { forward, reverse }
    }

    /// Flushes both writers.
    pub fn flush(&mut self) -> io::Result<()> {
        self.forward.flush()?;
        self.reverse.flush()
    }

    pub fn into_inner(self) -> (F, R) {
        (self.forward, self.reverse)
    }
}

impl<F: io::Write, R: io::Write> StreamSink for StreamFiles<F, R> {
    fn write(&mut self, w: &Write<'_>) -> io::Result<()> {
        if w.channel.is_some() {
            return Ok(());
        }
        match w.dir {
            Direction::Forward => self.forward.write_all(w.data),
            Direction::Reverse => self.reverse.write_all(w.data),
        }
    }
}

/// What kind of migration to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MigrationKind {
    /// A one-shot live migration.
    Plain,
    /// Checkpointed replication without a back channel.
    Remus,
    /// Coarse-grained lock-stepping with the section-6 back channel.
    Colo,
    /// A QEMU precopy migration (PROTOCOL.md section 9).
    Qemu,
    /// QEMU COLO: the initial migration, then checkpoints of COLO messages
    /// on the one connection (PROTOCOL.md section 9).
    #[serde(rename = "qemu-colo")]
    QemuColo,
}

impl MigrationKind {
    pub fn name(self) -> &'static str {
        match self {
            MigrationKind::Plain => "plain",
            MigrationKind::Remus => "remus",
            MigrationKind::Colo => "colo",
            MigrationKind::Qemu => "qemu",
            MigrationKind::QemuColo => "qemu-colo",
        }
    }

    pub fn is_checkpointed(self) -> bool {
        !matches!(self, MigrationKind::Plain | MigrationKind::Qemu)
    }

    /// A QEMU stream (plain or COLO) rather than a Xen one.
    pub fn is_qemu(self) -> bool {
        matches!(self, MigrationKind::Qemu | MigrationKind::QemuColo)
    }

    /// The model's checkpoint scheme of a checkpointed kind.
    pub fn scheme(self) -> crate::model::Scheme {
        match self {
            MigrationKind::Colo => crate::model::Scheme::XenColo,
            MigrationKind::QemuColo => crate::model::Scheme::QemuColo,
            _ => crate::model::Scheme::Remus,
        }
    }
}

/// The guest type (domain header type 2 = HVM, 1 = PV).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Guest {
    Hvm,
    Pv,
}

impl Guest {
    pub fn name(self) -> &'static str {
        match self {
            Guest::Hvm => "hvm",
            Guest::Pv => "pv",
        }
    }
}

/// The seven phases of a checkpoint (PROTOCOL.md section 6), in order. Phase
/// `i` runs from event `i` to event `i + 1` of [`CheckpointTruth::events`];
/// `Run` runs from SVM_RESUMED to the next checkpoint's NEW. The model's type:
/// the generator and the analysis speak the same names.
pub use crate::model::Phase;

/// The timing model. Durations are means in nanoseconds; each draw is uniform
/// in `mean * (1 ± jitter)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Timing {
    /// Link bandwidth per direction, bytes per second (default 10 Gbit/s).
    pub bandwidth: u64,
    /// Relative half-width of the uniform jitter, in [0, 1].
    pub jitter: f64,
    /// COLO suspend (NEW -> SVM_SUSPENDED); also the primary's guest suspend
    /// before a stop-and-copy round and before a Remus checkpoint.
    pub suspend_ns: u64,
    /// COLO dirty_sync (SVM_SUSPENDED -> CHECKPOINT_DIRTY_PFN_LIST).
    pub dirty_sync_ns: u64,
    /// Device phase (libxc CHECKPOINT/END -> CHECKPOINT_END/libxl END) of HVM
    /// guests. PV guests have no device model: their libxl records follow at
    /// once.
    pub device_ns: u64,
    /// COLO apply (CHECKPOINT_END -> SVM_READY); also the receiver's restore
    /// before the xl "ready to unpause".
    pub apply_ns: u64,
    /// COLO resume (SVM_READY -> SVM_RESUMED); also the receiver's unpause
    /// before the xl unpause result.
    pub resume_ns: u64,
    /// Run (SVM_RESUMED -> next NEW for COLO; CHECKPOINT_END -> next
    /// checkpoint's suspend for Remus).
    pub run_ns: u64,
    /// Collecting vcpu and platform state before the CPU records.
    pub cpu_state_ns: u64,
    /// Dirty-bitmap collection between live rounds.
    pub round_gap_ns: u64,
    /// QEMU COLO reply (REQUEST -> REPLY): the secondary stops its guest.
    pub reply_ns: u64,
    /// QEMU COLO stop (REPLY -> VMSTATE_SEND): the primary stops its guest
    /// and takes the replication checkpoint.
    pub stop_ns: u64,
    /// QEMU COLO received (device state's last byte -> VMSTATE_RECEIVED).
    pub received_ns: u64,
    /// QEMU COLO loaded (VMSTATE_RECEIVED -> VMSTATE_LOADED): the secondary
    /// loads the state; also its load of the initial migration before
    /// CHECKPOINT_READY.
    pub loaded_ns: u64,
}

impl Timing {
    /// 10 Gbit/s in bytes per second.
    pub const TEN_GBIT: u64 = 1_250_000_000;

    /// The mean of a phase; `None` for Memory, Ram and DeviceState, which
    /// follow from bandwidth. QEMU COLO's interval is [`Timing::run_ns`];
    /// its ram phase also holds [`Timing::cpu_state_ns`] (the device state
    /// saved into a buffer before the RAM goes out).
    pub fn mean(&self, phase: Phase) -> Option<u64> {
        match phase {
            Phase::Suspend => Some(self.suspend_ns),
            Phase::DirtySync => Some(self.dirty_sync_ns),
            Phase::Memory => None,
            Phase::Device => Some(self.device_ns),
            Phase::Apply => Some(self.apply_ns),
            Phase::Resume => Some(self.resume_ns),
            Phase::Run => Some(self.run_ns),
            Phase::Reply => Some(self.reply_ns),
            Phase::Stop => Some(self.stop_ns),
            Phase::Ram | Phase::DeviceState => None,
            Phase::Received => Some(self.received_ns),
            Phase::Loaded => Some(self.loaded_ns),
            Phase::Interval => Some(self.run_ns),
        }
    }

    /// Nanoseconds to send `bytes` at this bandwidth, rounded up.
    pub fn transfer_ns(&self, bytes: u64) -> u64 {
        let bw = u128::from(self.bandwidth.max(1));
        let ns = (u128::from(bytes) * 1_000_000_000).div_ceil(bw);
        u64::try_from(ns).unwrap_or(u64::MAX)
    }
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            bandwidth: Self::TEN_GBIT,
            jitter: 0.2,
            suspend_ns: 8_000_000,
            dirty_sync_ns: 2_000_000,
            device_ns: 15_000_000,
            apply_ns: 20_000_000,
            resume_ns: 3_000_000,
            run_ns: 100_000_000,
            cpu_state_ns: 300_000,
            round_gap_ns: 3_000_000,
            reply_ns: 5_000_000,
            stop_ns: 3_000_000,
            received_ns: 200_000,
            loaded_ns: 15_000_000,
        }
    }
}

/// How many pages get dirtied.
#[derive(Debug, Clone, PartialEq)]
pub struct Dirty {
    /// Fraction of the guest's pages sent again in live round 2.
    pub live_fraction: f64,
    /// Each later live round sends about this fraction of the previous one's
    /// pages (never more than the previous round).
    pub live_shrink: f64,
    /// Mean pages the primary dirties per checkpoint (Remus and COLO).
    pub primary_mean: u64,
    /// Mean pages the secondary dirties per checkpoint (COLO's dirty list).
    pub secondary_mean: u64,
    /// Relative half-width of the uniform jitter on these counts, in [0, 1].
    pub jitter: f64,
}

impl Default for Dirty {
    fn default() -> Self {
        Dirty {
            live_fraction: 0.08,
            live_shrink: 0.35,
            primary_mean: 1200,
            secondary_mean: 600,
            jitter: 0.3,
        }
    }
}

/// Every parameter of a generated stream. Build one with [`Scenario::plain`],
/// [`Scenario::plain_pv`], [`Scenario::remus`] or [`Scenario::colo`] and the
/// `with_*` methods, or set the public fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Seed of every random choice.
    pub seed: u64,
    pub kind: MigrationKind,
    pub guest: Guest,
    /// Wrap the stream in the xl preamble (and trailer for plain migrations).
    pub xl: bool,
    /// Domain name, in the xl config.
    pub name: String,
    /// Guest memory in bytes; guest pages = memory / 4096.
    pub memory: u64,
    pub vcpus: u32,
    /// libxc stream version: 3, or 2 (no STATIC_DATA_END, no policy records).
    pub libxc_version: u32,
    /// Live rounds of the initial migration, the stop-and-copy included.
    pub rounds: u32,
    /// Checkpoints of a Remus or COLO stream, checkpoint 0 included.
    pub checkpoints: u32,
    pub timing: Timing,
    pub dirty: Dirty,
    /// `(checkpoint, phase, duration_ns)`: replaces that phase's drawn duration.
    pub stalls: Vec<(u32, Phase, u64)>,
    /// Keep one [`ManifestRecord`] per item; turn off for very long sessions.
    pub manifest_records: bool,
    /// QEMU precopy only: this many multifd channels (0: none). The pages
    /// with data go over them as multifd packets (PROTOCOL.md section 9);
    /// the main stream keeps the sections and the zero pages.
    pub multifd: u32,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            seed: 1,
            kind: MigrationKind::Plain,
            guest: Guest::Hvm,
            xl: false,
            name: "guest".to_string(),
            memory: 1 << 30,
            vcpus: 2,
            libxc_version: 3,
            rounds: 5,
            checkpoints: 10,
            timing: Timing::default(),
            dirty: Dirty::default(),
            stalls: Vec::new(),
            manifest_records: true,
            multifd: 0,
        }
    }
}

impl Scenario {
    /// A plain live migration of an HVM guest.
    pub fn plain() -> Self {
        Scenario::default()
    }

    /// A plain live migration of a PV guest.
    pub fn plain_pv() -> Self {
        Scenario {
            guest: Guest::Pv,
            ..Scenario::default()
        }
    }

    /// A Remus stream of an HVM guest.
    pub fn remus() -> Self {
        Scenario {
            kind: MigrationKind::Remus,
            ..Scenario::default()
        }
    }

    /// A COLO stream (HVM).
    pub fn colo() -> Self {
        Scenario {
            kind: MigrationKind::Colo,
            ..Scenario::default()
        }
    }

    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    pub fn with_guest(mut self, guest: Guest) -> Self {
        self.guest = guest;
        self
    }
    pub fn with_xl(mut self, xl: bool) -> Self {
        self.xl = xl;
        self
    }
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
    pub fn with_memory(mut self, bytes: u64) -> Self {
        self.memory = bytes;
        self
    }
    pub fn with_vcpus(mut self, vcpus: u32) -> Self {
        self.vcpus = vcpus;
        self
    }
    pub fn with_libxc_version(mut self, version: u32) -> Self {
        self.libxc_version = version;
        self
    }
    pub fn with_rounds(mut self, rounds: u32) -> Self {
        self.rounds = rounds;
        self
    }
    pub fn with_checkpoints(mut self, checkpoints: u32) -> Self {
        self.checkpoints = checkpoints;
        self
    }
    pub fn with_bandwidth(mut self, bytes_per_second: u64) -> Self {
        self.timing.bandwidth = bytes_per_second;
        self
    }
    pub fn with_multifd(mut self, channels: u32) -> Self {
        self.multifd = channels;
        self
    }
    pub fn with_stall(mut self, checkpoint: u32, phase: Phase, duration_ns: u64) -> Self {
        self.stalls.push((checkpoint, phase, duration_ns));
        self
    }

    /// Guest pages (memory / 4096).
    pub fn pages(&self) -> u64 {
        self.memory / PAGE_SIZE as u64
    }

    /// Checks the parameters; [`generate`] calls it first.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        if self.kind == MigrationKind::Colo && self.guest == Guest::Pv {
            return Err(ScenarioError::ColoNeedsHvm);
        }
        if self.kind.is_qemu() && (self.guest == Guest::Pv || self.xl) {
            return Err(ScenarioError::QemuIsHvmWithoutXl);
        }
        if self.multifd > 0 && self.kind != MigrationKind::Qemu {
            return Err(ScenarioError::MultifdNeedsQemu(self.kind.name()));
        }
        if self.multifd > MAX_MULTIFD {
            return Err(ScenarioError::MultifdChannels(self.multifd));
        }
        if self.kind.is_qemu() && self.memory % PAGE_SIZE as u64 != 0 {
            return Err(ScenarioError::Memory(self.memory));
        }
        if !(MIN_MEMORY..=MAX_MEMORY).contains(&self.memory) {
            return Err(ScenarioError::Memory(self.memory));
        }
        if !(1..=MAX_VCPUS).contains(&self.vcpus) {
            return Err(ScenarioError::Vcpus(self.vcpus));
        }
        if !(2..=3).contains(&self.libxc_version) {
            return Err(ScenarioError::LibxcVersion(self.libxc_version));
        }
        if self.rounds == 0 {
            return Err(ScenarioError::NoRounds);
        }
        if self.kind.is_checkpointed() && self.checkpoints == 0 {
            return Err(ScenarioError::NoCheckpoints);
        }
        if self.timing.bandwidth == 0 {
            return Err(ScenarioError::Bandwidth);
        }
        for (what, j) in [("timing", self.timing.jitter), ("dirty", self.dirty.jitter)] {
            if !(0.0..=1.0).contains(&j) {
                return Err(ScenarioError::Jitter(what, j));
            }
        }
        for (what, f) in [
            ("live_fraction", self.dirty.live_fraction),
            ("live_shrink", self.dirty.live_shrink),
        ] {
            if !(0.0..=1.0).contains(&f) {
                return Err(ScenarioError::Fraction(what, f));
            }
        }
        let mut seen = HashSet::new();
        for &(checkpoint, phase, _) in &self.stalls {
            if !self.kind.is_checkpointed() {
                return Err(ScenarioError::StallNeedsCheckpoints);
            }
            if self.kind == MigrationKind::QemuColo {
                // QEMU COLO checkpoints count REQUESTs from 1, as the model
                // numbers them.
                if checkpoint == 0 || checkpoint > self.checkpoints {
                    return Err(ScenarioError::QemuStallCheckpoint {
                        checkpoint,
                        checkpoints: self.checkpoints,
                    });
                }
                if phase == Phase::Interval && checkpoint == self.checkpoints {
                    return Err(ScenarioError::StallLastRun(checkpoint));
                }
                if !phase.measured_at(crate::model::Scheme::QemuColo, u64::from(checkpoint)) {
                    return Err(ScenarioError::StallPhase {
                        checkpoint,
                        kind: self.kind.name(),
                        phase,
                    });
                }
                if !seen.insert((checkpoint, phase)) {
                    return Err(ScenarioError::StallTwice { checkpoint, phase });
                }
                continue;
            }
            if checkpoint >= self.checkpoints {
                return Err(ScenarioError::StallCheckpoint {
                    checkpoint,
                    checkpoints: self.checkpoints,
                });
            }
            if phase == Phase::Run && checkpoint + 1 == self.checkpoints {
                return Err(ScenarioError::StallLastRun(checkpoint));
            }
            let scheme = self.kind.scheme();
            let exists = match (self.kind, phase) {
                // checkpoint 0's memory follows from the bandwidth
                (_, Phase::Memory) if checkpoint == 0 => false,
                // the model's phases of the kind
                _ if phase.measured_at(scheme, u64::from(checkpoint)) => true,
                // Remus timing the wire shows only as the gap between
                // checkpoints: the guest's suspend before the first byte,
                // and its run
                (MigrationKind::Remus, Phase::Suspend) => checkpoint > 0,
                (MigrationKind::Remus, Phase::Run) => true,
                _ => false,
            };
            if !exists {
                return Err(ScenarioError::StallPhase {
                    checkpoint,
                    kind: self.kind.name(),
                    phase,
                });
            }
            if !seen.insert((checkpoint, phase)) {
                return Err(ScenarioError::StallTwice { checkpoint, phase });
            }
        }
        Ok(())
    }
}

/// Smallest guest: 1 MiB (the HVM VGA hole must fit).
pub const MIN_MEMORY: u64 = 1 << 20;
/// Largest guest: 4 TiB (keeps X86_PV_P2M_FRAMES far below the record cap).
pub const MAX_MEMORY: u64 = 4 << 40;
/// Most vcpus.
pub const MAX_VCPUS: u32 = 512;
/// Most QEMU multifd channels (QEMU's own limit is 255).
pub const MAX_MULTIFD: u32 = 64;

/// Why a scenario cannot be generated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScenarioError {
    #[error("COLO runs HVM guests only, not PV")]
    ColoNeedsHvm,
    #[error("guest memory must be between 1 MiB and 4 TiB, not {0} bytes")]
    Memory(u64),
    #[error("a guest needs 1 to 512 vcpus, not {0}")]
    Vcpus(u32),
    #[error("the libxc stream version must be 2 or 3, not {0}")]
    LibxcVersion(u32),
    #[error("a migration needs at least one live round")]
    NoRounds,
    #[error("a checkpointed stream needs at least one checkpoint")]
    NoCheckpoints,
    #[error("the bandwidth must be more than 0 bytes per second")]
    Bandwidth,
    #[error("the {0} jitter must be between 0 and 1, not {1}")]
    Jitter(&'static str, f64),
    #[error("the dirty {0} must be between 0 and 1, not {1}")]
    Fraction(&'static str, f64),
    #[error("stalls apply to checkpointed streams (remus, colo or qemu-colo) only")]
    StallNeedsCheckpoints,
    #[error("QEMU streams are of HVM guests without the xl preamble")]
    QemuIsHvmWithoutXl,
    #[error("multifd channels come with a plain QEMU migration (--scenario qemu), not {0}: QEMU 7.2's COLO does not run multifd")]
    MultifdNeedsQemu(&'static str),
    #[error("a QEMU migration has 0 to 64 multifd channels, not {0}")]
    MultifdChannels(u32),
    #[error("a stall names checkpoint {checkpoint} but QEMU COLO checkpoints count REQUESTs from 1 (1 to {checkpoints})")]
    QemuStallCheckpoint { checkpoint: u32, checkpoints: u32 },
    #[error("a stall names checkpoint {checkpoint} but the stream has {checkpoints} checkpoints (0 to {})", checkpoints.saturating_sub(1))]
    StallCheckpoint { checkpoint: u32, checkpoints: u32 },
    #[error("checkpoint {checkpoint} of a {kind} stream has no {phase} phase to stall")]
    StallPhase {
        checkpoint: u32,
        kind: &'static str,
        phase: Phase,
    },
    #[error("checkpoint {0} is the last one, so its run or interval phase has no end to stall")]
    StallLastRun(u32),
    #[error("the {phase} phase of checkpoint {checkpoint} is stalled twice")]
    StallTwice { checkpoint: u32, phase: Phase },
}

impl From<ScenarioError> for io::Error {
    fn from(e: ScenarioError) -> Self {
        io::Error::new(io::ErrorKind::InvalidInput, e)
    }
}

/// Ground truth of a generated stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Manifest {
    /// Every item of both directions, in time order of their last byte
    /// (ties keep send order); per direction also in offset order. Empty when
    /// [`Scenario::manifest_records`] is off.
    pub records: Vec<ManifestRecord>,
    /// One per checkpoint (Remus, COLO); empty for plain migrations.
    pub checkpoints: Vec<CheckpointTruth>,
    /// The live rounds of the initial migration, numbered from 1.
    pub rounds: Vec<RoundTruth>,
    pub forward_bytes: u64,
    pub reverse_bytes: u64,
    /// A COLO stream (its checkpoints have COLO's phases).
    pub colo: bool,
    /// A QEMU stream: its items are QEMU's (layer `qemu`), and with `colo`
    /// its checkpoints are QEMU COLO's, numbered from 1 as the model
    /// numbers them.
    pub qemu: bool,
    /// QEMU multifd channels, by channel id ([`Scenario::multifd`]); their
    /// items are not in `records`, their bytes not in `forward_bytes`.
    pub multifd: Vec<MultifdTruth>,
}

/// Ground truth of one QEMU multifd channel.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MultifdTruth {
    /// The channel id its `MultiFDInit_t` carries (0, 1, ...).
    pub id: u32,
    /// Multifd packets sent, SYNC packets included.
    pub packets: u64,
    /// SYNC packets (flags 0x1) among them.
    pub syncs: u64,
    /// Normal pages (pages with data) the packets carried.
    pub pages: u64,
    /// Bytes of the connection's stream: the init message and the packets.
    pub bytes: u64,
}

impl Manifest {
    /// Duration of `phase` of checkpoint `k` by the model's definition
    /// ([`crate::model::Checkpoint::phase`]) applied to the true events. A
    /// Remus memory phase opens with a first byte, which only the capture
    /// knows: none here.
    pub fn phase_ns(&self, k: u32, phase: Phase) -> Option<u64> {
        let t = self.checkpoint(k)?;
        let mut c = crate::model::Checkpoint::new(u64::from(k));
        c.events = t.events;
        c.next_start = self.checkpoint(k + 1).and_then(|n| n.events[0]);
        c.phase(phase, self.scheme())
    }

    /// The model's scheme of the checkpoints.
    pub fn scheme(&self) -> crate::model::Scheme {
        match (self.qemu, self.colo) {
            (true, _) => crate::model::Scheme::QemuColo,
            (false, true) => crate::model::Scheme::XenColo,
            (false, false) => crate::model::Scheme::Remus,
        }
    }

    /// Checkpoint `k` by its index (QEMU COLO counts from 1).
    pub fn checkpoint(&self, k: u32) -> Option<&CheckpointTruth> {
        self.checkpoints.iter().find(|c| c.index == k)
    }

    /// Time of the last byte on either direction.
    pub fn end_ns(&self) -> u64 {
        self.records.iter().map(|r| r.end_ns).max().unwrap_or(0)
    }
}

/// One item of a stream: a record, a header, or an xl message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ManifestRecord {
    pub dir: Direction,
    pub layer: Layer,
    /// The PROTOCOL.md name: a record type name (`PAGE_DATA`, `END`...),
    /// `HEADER` (libxl header), `IMAGE_HEADER`, `DOMAIN_HEADER`, or an xl item
    /// (`BANNER`, `SAVE_HEADER`, `READY_TO_UNPAUSE`, `CLEARED_TO_UNPAUSE`,
    /// `UNPAUSE_RESULT`).
    pub name: &'static str,
    /// Stream offset of the item's first byte in its direction.
    pub offset: u64,
    /// For records their body_length; for headers, xl and QEMU items their
    /// wire length (SAVE_HEADER includes the config, UNPAUSE_RESULT its
    /// result byte).
    pub body_length: u32,
    /// Time the item's last byte is sent.
    pub end_ns: u64,
}

impl ManifestRecord {
    /// True for libxl and libxc records, false for the stream headers and the
    /// xl items.
    pub fn is_record(&self) -> bool {
        !matches!(self.layer, Layer::Xl | Layer::Qemu)
            && !matches!(self.name, "HEADER" | "IMAGE_HEADER" | "DOMAIN_HEADER")
    }

    /// Bytes the item occupies on the wire.
    pub fn wire_len(&self) -> u64 {
        if self.is_record() {
            RECORD_HEADER_LEN as u64 + crate::decode::wire::padded(self.body_length)
        } else {
            u64::from(self.body_length)
        }
    }
}

/// Ground truth of one checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckpointTruth {
    pub index: u32,
    /// Times (ns) of: new, svm_suspended, dirty_pfn_list, libxc_checkpoint,
    /// checkpoint_end, svm_ready, svm_resumed ([`crate::model::CheckpointEvent`]). Remus has
    /// only libxc_checkpoint and checkpoint_end; COLO checkpoint 0 has no new,
    /// svm_suspended or dirty_pfn_list. QEMU COLO: request, reply,
    /// vmstate_send, vmstate_size, device_state (its last byte),
    /// vmstate_received, vmstate_loaded, all seven.
    pub events: [Option<u64>; 7],
    /// Pages with data sent in PAGE_DATA records.
    pub pages: u64,
    /// pfn entries sent in PAGE_DATA records (XTAB entries included).
    pub pfns: u64,
    /// Entries of the secondary's CHECKPOINT_DIRTY_PFN_LIST (COLO).
    pub dirty_pfns: u64,
    /// Forward bytes after the previous checkpoint's CHECKPOINT_END up to and
    /// including this one's (checkpoint 0 counts from the stream start).
    /// QEMU COLO: from its REQUEST through its device state's last byte.
    pub forward_bytes: u64,
    /// QEMU COLO: the device state's size VMSTATE_SIZE announces (0 for Xen).
    pub vmstate_size: u64,
    /// QEMU COLO: the FULL sections of its device state (0 for Xen).
    pub device_sections: u32,
}

/// Ground truth of one live round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoundTruth {
    /// 1 for the first round.
    pub index: u32,
    /// Pages with data sent.
    pub pages: u64,
    /// pfn entries sent (XTAB entries included).
    pub pfns: u64,
    /// Start of the round's first PAGE_DATA write.
    pub start_ns: u64,
    /// End of its last PAGE_DATA write.
    pub end_ns: u64,
}

/// Generates the streams of `s` into `sink` and returns the ground truth.
///
/// Fails with `InvalidInput` when the scenario is invalid
/// ([`Scenario::validate`]), or with the sink's error.
pub fn generate(s: &Scenario, sink: &mut dyn StreamSink) -> io::Result<Manifest> {
    s.validate()?;
    engine::Engine::new(s, sink).run()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phase_names_round_trip() {
        let names: Vec<&str> = Phase::XEN.iter().map(|p| p.name()).collect();
        assert_eq!(
            names,
            [
                "suspend",
                "dirty_sync",
                "memory",
                "device",
                "apply",
                "resume",
                "run"
            ]
        );
        for p in Phase::XEN {
            assert_eq!(p.name().parse::<Phase>(), Ok(p));
        }
        assert_eq!("Dirty-Sync".parse::<Phase>(), Ok(Phase::DirtySync));
        assert!("nap".parse::<Phase>().is_err());
    }

    #[test]
    fn validation_rejects_what_cannot_be_generated() {
        let pv_colo = Scenario::colo().with_guest(Guest::Pv);
        assert_eq!(pv_colo.validate(), Err(ScenarioError::ColoNeedsHvm));
        let e = generate(&pv_colo, &mut StreamFiles::new(io::sink(), io::sink())).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(e.to_string(), "COLO runs HVM guests only, not PV");

        let small = Scenario::colo().with_checkpoints(3);
        assert_eq!(
            Scenario::plain().with_stall(0, Phase::Device, 1).validate(),
            Err(ScenarioError::StallNeedsCheckpoints)
        );
        assert!(matches!(
            small.clone().with_stall(3, Phase::Apply, 1).validate(),
            Err(ScenarioError::StallCheckpoint {
                checkpoint: 3,
                checkpoints: 3
            })
        ));
        assert!(matches!(
            small.clone().with_stall(0, Phase::Suspend, 1).validate(),
            Err(ScenarioError::StallPhase { checkpoint: 0, .. })
        ));
        assert_eq!(
            small.clone().with_stall(2, Phase::Run, 1).validate(),
            Err(ScenarioError::StallLastRun(2))
        );
        assert!(matches!(
            small
                .clone()
                .with_stall(1, Phase::Apply, 1)
                .with_stall(1, Phase::Apply, 2)
                .validate(),
            Err(ScenarioError::StallTwice { checkpoint: 1, .. })
        ));
        assert!(matches!(
            Scenario::remus()
                .with_checkpoints(3)
                .with_stall(1, Phase::Apply, 1)
                .validate(),
            Err(ScenarioError::StallPhase { kind: "remus", .. })
        ));
        assert!(small
            .clone()
            .with_stall(0, Phase::Apply, 1)
            .with_stall(1, Phase::Run, 1)
            .with_stall(2, Phase::Memory, 1)
            .validate()
            .is_ok());
        assert_eq!(
            Scenario::plain().with_memory(4096).validate(),
            Err(ScenarioError::Memory(4096))
        );
        assert_eq!(
            Scenario::plain().with_libxc_version(4).validate(),
            Err(ScenarioError::LibxcVersion(4))
        );
        assert_eq!(
            Scenario::plain().with_vcpus(0).validate(),
            Err(ScenarioError::Vcpus(0))
        );
    }

    #[test]
    fn transfer_time_rounds_up() {
        let t = Timing::default();
        assert_eq!(t.transfer_ns(0), 0);
        assert_eq!(t.transfer_ns(16), 13); // 12.8 ns at 10 Gbit/s
        assert_eq!(t.transfer_ns(1_250_000_000), 1_000_000_000);
    }
}
