//! QEMU sessions in the model: a plain migration's figures
//! ([`QemuMigration`]) and QEMU COLO checkpoints (docs/FIGURES.md, "QEMU").
//! The checkpoint machinery is the one Xen's use: the same [`Checkpoint`]
//! with the [`Scheme::QemuColo`] events, phases and downtime.

use serde::Serialize;

use super::checkpoint::{Checkpoint, CheckpointEvent, Scheme};
use super::SessionModel;
use crate::decode::qemu::info::{BlockCount, MAX_BLOCKS};
use crate::decode::qemu::{ColoMessage, QemuInfo, QemuKind};
use crate::decode::{Direction, Info, Item, ItemKind};

/// Device sections a migration keeps by name.
pub const MAX_DEVICES: usize = 512;

/// A device section of the final stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Device {
    pub name: String,
    pub instance: Option<u32>,
    /// Body bytes (between its header and its footer).
    pub bytes: u64,
}

/// The return-path handshake of a QEMU migration (capture times).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReturnPath {
    /// The source's OPEN_RETURN_PATH command.
    pub opened: Option<u64>,
    /// The source's PING and the destination's PONG.
    pub ping: Option<u64>,
    pub pong: Option<u64>,
    /// The destination's SHUT and its status (0: it loaded the state).
    pub shut: Option<u64>,
    pub shut_status: Option<u64>,
}

/// What a QEMU stream showed, checkpointed or not.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct QemuMigration {
    /// The configuration's machine type.
    pub machine: Option<String>,
    /// MEM_SIZE's total RAM.
    pub ram_size: Option<u64>,
    /// Passes over guest memory on the wire: a pass begins with the first
    /// page and whenever the page address goes back (QEMU restarts its
    /// scan after each dirty-bitmap sync).
    pub passes: u32,
    /// RAM sections of the migration (START, PART, END).
    pub ram_sections: u64,
    /// Pages with data and zero pages of the migration (before its EOF).
    pub pages: u64,
    pub zero_pages: u64,
    pub xbzrle_pages: u64,
    /// Wire bytes of its RAM sections.
    pub ram_bytes: u64,
    /// Pages by RAMBlock.
    pub blocks: Vec<BlockCount>,
    /// Device sections of the final stage, in stream order.
    pub devices: Vec<Device>,
    pub device_sections: u64,
    pub device_bytes: u64,
    /// First byte of the RAM section END: the source stopped the guest
    /// before writing it.
    pub final_start: Option<u64>,
    /// Completion of the migration's EOF (the last device state).
    pub eof: Option<u64>,
    /// The JSON description's completion and size.
    pub description: Option<(u64, u32)>,
    pub return_path: ReturnPath,
    /// ENABLE_COLO was sent.
    pub colo_enabled: bool,
    /// The secondary's CHECKPOINT_READY.
    pub ready: Option<u64>,
    /// READY came on a direction that also carried return-path messages:
    /// QEMU 7.2's primary reads it as an invalid one and fails.
    pub ready_misread: bool,
    /// Multifd channels joined to this session, their packets, the pages
    /// they carried and their wire bytes.
    pub multifd_channels: u32,
    pub multifd_packets: u64,
    pub multifd_pages: u64,
    pub multifd_bytes: u64,
}

impl QemuMigration {
    /// The final stage on the wire, a bound from below of the downtime:
    /// from the first byte of the RAM section END (the source stopped the
    /// guest before writing it) to the destination's SHUT when the return
    /// path is open (the source waits for it before it ends the migration),
    /// else to the completion of the last thing sent (the JSON description,
    /// or EOF). QEMU's own figure also holds the stop before the first byte.
    pub fn final_stage(&self) -> Option<u64> {
        self.final_stage_end()?.checked_sub(self.final_start?)
    }

    /// Where [`QemuMigration::final_stage`] ends, and what ends it.
    pub fn final_stage_end(&self) -> Option<u64> {
        if self.return_path.opened.is_some() {
            self.return_path
                .shut
                .filter(|_| self.return_path.shut_status == Some(0))
        } else {
            self.description.map(|d| d.0).or(self.eof)
        }
    }

    /// The thing that ends the final stage, for people.
    pub fn final_stage_end_name(&self) -> &'static str {
        if self.return_path.opened.is_some() {
            "the destination's SHUT"
        } else if self.description.is_some() {
            "the JSON description"
        } else {
            "EOF"
        }
    }

    fn count_blocks(&mut self, blocks: &[BlockCount]) {
        for b in blocks {
            match self.blocks.iter().position(|x| x.name == b.name) {
                Some(i) => {
                    let x = &mut self.blocks[i];
                    x.pages += b.pages;
                    x.zero_pages += b.zero_pages;
                    x.size = x.size.or(b.size);
                }
                None if self.blocks.len() < MAX_BLOCKS => self.blocks.push(b.clone()),
                None => {}
            }
        }
    }
}

impl SessionModel {
    /// An item of a QEMU stream, of direction `d`, whose first byte came at
    /// `first` and last at `ts`.
    pub(super) fn qemu_item(&mut self, item: &Item, d: Direction, first: u64, ts: u64) {
        let (ItemKind::Qemu(kind), Info::Qemu(info)) = (&item.kind, &item.info) else {
            return;
        };
        self.qemu = true;
        let q = self.qemu_mig.get_or_insert_with(Box::default);
        match (kind, &**info) {
            (QemuKind::Configuration, QemuInfo::Configuration { machine, .. }) => {
                q.machine = Some(machine.clone());
                self.domain.guest_type = Some(machine.clone());
            }
            (QemuKind::Command(c), _) => match *c {
                crate::decode::qemu::wire::CMD_OPEN_RETURN_PATH => {
                    q.return_path.opened.get_or_insert(ts);
                }
                crate::decode::qemu::wire::CMD_ENABLE_COLO => q.colo_enabled = true,
                crate::decode::qemu::wire::CMD_PING => {
                    q.return_path.ping.get_or_insert(ts);
                }
                _ => {}
            },
            (QemuKind::ReturnPath(t), QemuInfo::ReturnPath { value, .. }) => match *t {
                crate::decode::qemu::wire::RP_SHUT => {
                    q.return_path.shut = Some(ts);
                    q.return_path.shut_status = *value;
                }
                crate::decode::qemu::wire::RP_PONG => {
                    q.return_path.pong.get_or_insert(ts);
                }
                _ => {}
            },
            (QemuKind::Section(t), QemuInfo::Section(s)) => {
                let in_checkpoint = self.qemu_colo
                    && self
                        .checkpoints
                        .last()
                        .is_some_and(|c| c.event(CheckpointEvent::VmstateSend).is_some())
                    && !self.qemu_blob;
                match &s.ram {
                    Some(r) if in_checkpoint => {
                        let c = self.current_qemu();
                        // (the RAM section is a rung of its own on the
                        // ladder: no PAGE_DATA run)
                        c.pages += r.pages;
                        c.page_bytes += item.wire_len;
                        c.first_page.get_or_insert(first);
                        if item.lost > 0 {
                            c.damaged = true;
                        }
                    }
                    Some(r) if q.eof.is_none() && !self.qemu_colo => {
                        q.ram_sections += 1;
                        q.pages += r.pages;
                        q.zero_pages += r.zero_pages;
                        q.xbzrle_pages += r.xbzrle_pages;
                        q.ram_bytes += item.wire_len;
                        q.passes += r.new_passes;
                        if r.mem_size.is_some() {
                            q.ram_size = r.mem_size;
                            self.domain.memory_kib = r.mem_size.map(|m| m / 1024);
                        }
                        q.count_blocks(&r.blocks);
                        if *t == crate::decode::qemu::wire::SectionType::End {
                            q.final_start.get_or_insert(first);
                        }
                    }
                    Some(_) => {}
                    None if self.qemu_blob => {
                        if let Some(c) = self.checkpoints.last_mut() {
                            c.device_sections += 1;
                        }
                    }
                    None if q.eof.is_none() => {
                        q.device_sections += 1;
                        q.device_bytes += s.body_len;
                        if q.devices.len() < MAX_DEVICES {
                            q.devices.push(Device {
                                name: s.idstr.clone(),
                                instance: s.instance_id,
                                bytes: s.body_len,
                            });
                        }
                    }
                    None => {}
                }
            }
            (QemuKind::Eof, QemuInfo::Eof { closes })
                if *closes == "migration" && q.eof.is_none() =>
            {
                q.eof = Some(ts);
                if !q.colo_enabled {
                    self.stream_end = Some(ts);
                }
            }
            (QemuKind::VmDescription, QemuInfo::VmDescription { len, .. }) => {
                q.description = Some((ts, *len));
            }
            (QemuKind::Colo(m), QemuInfo::Colo { size, .. }) => {
                self.colo_message(*m, *size, item, d, first, ts);
            }
            (QemuKind::DeviceState, QemuInfo::DeviceState { complete, .. }) => {
                self.qemu_blob = false;
                if self.qemu_colo {
                    let end = item.offset + item.wire_len;
                    let from = self.last_end_offset;
                    self.mark(CheckpointEvent::DeviceState, ts);
                    let c = self.current_qemu();
                    if !complete || item.lost > 0 {
                        c.damaged = true;
                    }
                    if let Some(from) = from {
                        c.bytes = end.saturating_sub(from);
                    }
                    if let Some(c) = self.checkpoints.last() {
                        self.stats.closed(c, Scheme::QemuColo);
                    }
                }
            }
            _ => {}
        }
    }

    fn colo_message(
        &mut self,
        m: ColoMessage,
        size: Option<u64>,
        item: &Item,
        d: Direction,
        first: u64,
        ts: u64,
    ) {
        let q = self.qemu_mig.get_or_insert_with(Box::default);
        match (m, d) {
            (ColoMessage::CheckpointReady, Direction::Reverse) => {
                q.ready.get_or_insert(ts);
                q.ready_misread = q.return_path.opened.is_some() || q.return_path.pong.is_some();
                self.qemu_colo = true;
                self.checkpointed = true;
            }
            (ColoMessage::CheckpointRequest, Direction::Forward) => {
                self.qemu_colo = true;
                self.checkpointed = true;
                self.initial_done = true;
                // A checkpoint opened by the secondary's messages before this
                // REQUEST was processed (it was found by a re-synchronisation
                // after them), all of them later than it: this REQUEST is its
                // own.
                let late = self.checkpoints.last().is_some_and(|c| {
                    c.event(CheckpointEvent::Request).is_none()
                        && c.first_record.is_none()
                        && c.events.iter().flatten().all(|&t| t >= ts)
                        && c.last_event().is_some()
                });
                if !late {
                    let index = self.checkpoints.last().map_or(1, |c| c.index + 1);
                    let mut c = Checkpoint::new(index);
                    c.lost = std::mem::take(&mut self.pending_lost);
                    c.damaged = c.lost > 0
                        || (self.checkpoints.is_empty()
                            && self.info.mid_stream
                            && self.forward_lost);
                    self.checkpoints.push(c);
                }
                // the checkpoint before this one: its interval ends here
                if let Some(i) = self.checkpoints.len().checked_sub(2) {
                    let prev = &mut self.checkpoints[i];
                    prev.next_start = Some(ts);
                    self.stats.run_closed(prev, Scheme::QemuColo);
                }
                if let Some(c) = self.checkpoints.last_mut() {
                    c.events[CheckpointEvent::Request.slot()] = Some(ts);
                    c.first_record = Some(first);
                }
                self.forward_lost = false;
                self.last_end_offset = Some(item.offset);
            }
            (ColoMessage::CheckpointReply, Direction::Reverse) => {
                self.qemu_mark(CheckpointEvent::Reply, ts)
            }
            (ColoMessage::VmstateSend, Direction::Forward) => {
                self.qemu_mark(CheckpointEvent::VmstateSend, ts)
            }
            (ColoMessage::VmstateSize, Direction::Forward) => {
                self.qemu_mark(CheckpointEvent::VmstateSize, ts);
                self.current_qemu().vmstate_size = size;
                self.qemu_blob = true;
            }
            (ColoMessage::VmstateReceived, Direction::Reverse) => {
                self.qemu_mark(CheckpointEvent::VmstateReceived, ts)
            }
            (ColoMessage::VmstateLoaded, Direction::Reverse) => {
                self.qemu_mark(CheckpointEvent::VmstateLoaded, ts)
            }
            _ => {}
        }
    }

    fn qemu_mark(&mut self, e: CheckpointEvent, ts: u64) {
        self.qemu_colo = true;
        self.checkpointed = true;
        if self.checkpoints.is_empty() {
            // the capture began inside a checkpoint
            self.current_qemu().damaged = true;
        }
        self.mark(e, ts);
    }

    /// The latest QEMU COLO checkpoint, or a partial one from 1.
    fn current_qemu(&mut self) -> &mut Checkpoint {
        if self.checkpoints.is_empty() {
            let mut c = Checkpoint::new(1);
            c.damaged = true;
            c.lost = std::mem::take(&mut self.pending_lost);
            self.checkpoints.push(c);
        }
        self.checkpoints.last_mut().expect("just ensured")
    }
}
