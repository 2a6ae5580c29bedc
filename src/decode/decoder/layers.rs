//! Who owns the next byte (PROTOCOL.md §5): the transitions between the
//! libxl and libxc layers after each record, and which records each layer
//! expects where (reported, not enforced: the record is decoded anyway).
//!
//! ```text
//! libxl LIBXC_CONTEXT -> libxc image header, domain header -> libxc records
//! libxc END           -> libxl records (EMULATOR_*, END)
//! libxc CHECKPOINT    -> libxl records (EMULATOR_*, CHECKPOINT_END), then
//!                        libxc again after CHECKPOINT_END (Remus) or
//!                        CHECKPOINT_STATE NEW (COLO)
//! ```

use super::state::{Role, State};
use super::{diag, switch_at, Decoder};
use crate::decode::event::{DiagKind, Event, Severity};
use crate::decode::libxl::ControlId;
use crate::decode::records::{Guest, Stream};
use crate::decode::wire::{
    Layer, LibxcType, LibxlType, RecordHeader, RecordType, OPTIONAL_BIT, RECORD_HEADER_LEN,
};

/// Where the libxl layer is in the §5 state machine; decides which libxl
/// records are expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LibxlPhase {
    /// Right after the libxl header: LIBXC_CONTEXT comes first.
    Start,
    /// After libxc END: EMULATOR_*, then END.
    AfterLibxcEnd,
    /// After libxc CHECKPOINT: EMULATOR_*, then CHECKPOINT_END.
    AfterCheckpoint,
    /// After CHECKPOINT_END: CHECKPOINT_STATE (COLO) or the next libxc batch (Remus).
    AfterCheckpointEnd,
    /// After re-synchronisation: anything goes until the next landmark.
    Unknown,
}

impl Decoder {
    /// Remus: after CHECKPOINT_END the next checkpoint's libxc records follow
    /// directly (no CHECKPOINT_STATE). Returns the layer the header at
    /// `offset` belongs to.
    pub(super) fn remus_resumes(
        &mut self,
        h: &RecordHeader,
        layer: Layer,
        offset: u64,
        out: &mut Vec<Event>,
    ) -> Layer {
        let checkpoint_state = LibxlType::CheckpointState;
        let is_checkpoint_state =
            h.rtype == checkpoint_state.to_u32() && checkpoint_state.length().allows(h.body_length);
        if matches!(self.state, State::Records(Layer::Libxl))
            && self.libxl_phase == LibxlPhase::AfterCheckpointEnd
            && !is_checkpoint_state
        {
            switch_at(out, offset, Layer::Libxl, Layer::Libxc);
            self.state = State::Records(Layer::Libxc);
            return Layer::Libxc;
        }
        layer
    }

    /// Why a record of this type cannot be in this stream at all: a type
    /// number no Xen could write (far beyond the defined ones), or a PV
    /// record in an HVM stream and the reverse (the record table's guest
    /// column).
    pub(super) fn impossible_type(&self, rtype: RecordType, raw: u32) -> Option<&'static str> {
        if !rtype.is_known() && raw & !OPTIONAL_BIT > 0xffff {
            return Some("not a type number any Xen writes");
        }
        let RecordType::Libxc(t) = rtype else {
            return None;
        };
        let guest = t.spec().map_or(Guest::Any, |s| s.guest);
        match (self.libxc.pv, guest) {
            (Some(false), Guest::Pv) => Some("a PV record in an HVM stream"),
            (Some(true), Guest::Hvm) => Some("an HVM record in a PV stream"),
            _ => None,
        }
    }

    /// Flags records the §5 state machine does not allow here, and infers
    /// STATIC_DATA_END for version 2 streams (§4: a reader behaves as if it
    /// came just before the first X86_PV_P2M_FRAMES or PAGE_DATA).
    pub(super) fn check_allowed(
        &mut self,
        rtype: RecordType,
        offset: u64,
        h: &RecordHeader,
        out: &mut Vec<Event>,
    ) {
        use LibxcType as C;
        use LibxlType as L;
        let unexpected = |why: &str| Some(why.to_string());
        let stream = rtype.spec().map(|s| s.stream);
        let on_back_channel = stream.is_some_and(Stream::on_back_channel);
        const BACK_CHANNEL_ONLY: &str =
            "only CHECKPOINT_STATE and CHECKPOINT_DIRTY_PFN_LIST belong on the back channel";
        let receiver = self.role == Role::Receiver;
        let problem = match rtype {
            RecordType::Libxl(t) => {
                let phase = self.libxl_phase;
                match t {
                    _ if phase == LibxlPhase::Unknown => None,
                    _ if receiver => (!on_back_channel).then(|| BACK_CHANNEL_ONLY.to_string()),
                    L::LibxcContext if phase != LibxlPhase::Start => unexpected("a second LIBXC_CONTEXT (checkpoints continue the libxc stream without one)"),
                    L::EmulatorXenstoreData | L::EmulatorContext
                        if !matches!(phase, LibxlPhase::AfterLibxcEnd | LibxlPhase::AfterCheckpoint) =>
                    {
                        unexpected("emulator records come after libxc END or CHECKPOINT")
                    }
                    L::CheckpointEnd if phase != LibxlPhase::AfterCheckpoint => unexpected("CHECKPOINT_END without a preceding libxc CHECKPOINT"),
                    L::End if phase != LibxlPhase::AfterLibxcEnd => unexpected("libxl END before the libxc stream ended"),
                    L::CheckpointState if phase != LibxlPhase::AfterCheckpointEnd => unexpected("CHECKPOINT_STATE in the middle of a checkpoint"),
                    _ => None,
                }
            }
            RecordType::Libxc(_) if receiver => {
                (!on_back_channel).then(|| BACK_CHANNEL_ONLY.to_string())
            }
            RecordType::Libxc(t) => {
                let version = self.libxc.version;
                if !self.libxc.static_end && matches!(t, C::PageData | C::X86PvP2mFrames) {
                    let first_bulk = if self.libxc.pv == Some(true) {
                        t == C::X86PvP2mFrames
                    } else {
                        t == C::PageData
                    };
                    if version == Some(2) && first_bulk {
                        self.libxc.static_end = true;
                        out.push(Event::StaticDataEndInferred { offset });
                    } else if version == Some(3) {
                        self.libxc.static_end = true;
                        diag(
                            out,
                            Severity::Warning,
                            offset,
                            DiagKind::UnexpectedRecord,
                            format!("{} before STATIC_DATA_END in a version 3 stream", t.name()),
                        );
                    }
                }
                match t {
                    C::StaticDataEnd if version == Some(2) => {
                        unexpected("STATIC_DATA_END in a version 2 stream")
                    }
                    C::StaticDataEnd if self.libxc.static_end => {
                        unexpected("a second STATIC_DATA_END")
                    }
                    _ if t.is_static() && self.libxc.static_end && version.is_some() => {
                        unexpected("static data after STATIC_DATA_END")
                    }
                    _ if stream == Some(Stream::BackChannel) => {
                        Some(format!("{} belongs on the back channel", t.name()))
                    }
                    _ => None,
                }
            }
        };
        if let Some(p) = problem {
            diag(
                out,
                Severity::Warning,
                offset,
                DiagKind::UnexpectedRecord,
                format!(
                    "{} {} ({} bytes) not expected here: {p}",
                    rtype.layer(),
                    rtype.name(),
                    h.body_length
                ),
            );
        }
    }

    /// After a record completes: the layer transitions of §5.
    pub(super) fn after_record(
        &mut self,
        rtype: RecordType,
        control: Option<ControlId>,
        out: &mut Vec<Event>,
    ) {
        use LibxcType as C;
        use LibxlType as L;
        if self.role == Role::Receiver {
            if control.is_some() {
                self.seen.colo = true;
            }
            self.state = State::Reverse;
            return;
        }
        self.state = State::Records(rtype.layer());
        match rtype {
            RecordType::Libxl(L::LibxcContext) => {
                self.switch(out, Layer::Libxl, Layer::Libxc);
                self.state = State::ImageHeader;
            }
            RecordType::Libxl(L::End) if self.seen.checkpointed => {
                // Remus and COLO streams never end with END (§5): this is a
                // damaged record, not the end.
                let at = self.offset.saturating_sub(RECORD_HEADER_LEN as u64);
                diag(out, Severity::Error, at, DiagKind::UnexpectedRecord,
                    "libxl END in a checkpointed stream, which never sends one: a damaged record; decoding goes on".into());
            }
            RecordType::Libxl(L::End) => {
                // xl's handover follows a plain migration (§2 item 4).
                self.state = if self.seen.xl {
                    State::Trailer
                } else {
                    State::Ended
                };
            }
            RecordType::Libxl(L::CheckpointEnd) => {
                self.seen.checkpointed = true;
                self.libxl_phase = LibxlPhase::AfterCheckpointEnd;
            }
            RecordType::Libxl(L::CheckpointState) => {
                self.seen.colo = true;
                self.seen.checkpointed = true;
                if control == Some(ControlId::New) {
                    self.switch(out, Layer::Libxl, Layer::Libxc);
                    self.state = State::Records(Layer::Libxc);
                    self.libxl_phase = LibxlPhase::AfterCheckpointEnd;
                }
            }
            RecordType::Libxc(C::End) => {
                self.switch(out, Layer::Libxc, Layer::Libxl);
                self.libxl_phase = LibxlPhase::AfterLibxcEnd;
                self.state = State::Records(Layer::Libxl);
            }
            RecordType::Libxc(C::Checkpoint) => {
                self.seen.checkpointed = true;
                self.switch(out, Layer::Libxc, Layer::Libxl);
                self.libxl_phase = LibxlPhase::AfterCheckpoint;
                self.state = State::Records(Layer::Libxl);
            }
            RecordType::Libxc(C::StaticDataEnd) => self.libxc.static_end = true,
            _ => {}
        }
    }
}
