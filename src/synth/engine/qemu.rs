//! QEMU streams (PROTOCOL.md section 9): a precopy migration, and QEMU
//! COLO (the initial migration, then checkpoints of COLO messages on the
//! one connection), as QEMU 7.2 writes them. Bytes come from the wire
//! table's `emit` helpers (`decode::qemu::wire`); times from the engine's
//! timing model, as for Xen.
//!
//! The forward stream: "QEVM" v3, CONFIGURATION ("pc-i440fx-7.2"), for COLO
//! the ENABLE_COLO command, START "ram" (section 2) with MEM_SIZE listing
//! the RAMBlocks, then one PART "ram" section per batch of up to
//! [`MAX_BATCH`] pages for each live pass but the last (the first pass
//! sends every page of every block, the zero ones as ZERO records; later
//! passes a shrinking dirty subset of pc.ram), the last pass as the END
//! section (the guest stopped), the FULL device sections, EOF and the
//! JSON VMDESCRIPTION.
//!
//! With multifd ([`crate::synth::Scenario::multifd`] channels, QEMU
//! precopy only), as QEMU 7.2 does it: every channel's `MultiFDInit_t`
//! goes first (before "QEVM"); every RAM section sends its pages with data
//! as multifd packets of up to [`MULTIFD_PAGES`] pages of one block, round
//! robin over the channels (packet numbers count across channels), and
//! ends with a SYNC packet on every channel (also once after the START
//! section, QEMU's setup sync) before its EOS; the main stream keeps the
//! sections and the ZERO records and has no PAGE records. A SYNC packet
//! without pages keeps its channel's last next_packet_size and block name,
//! as real 7.2 shows. The channels share the forward link with the main
//! stream.
//!
//! A COLO checkpoint `k` (numbered from 1, as the model numbers REQUESTs):
//! forward REQUEST; reverse REPLY; forward VMSTATE_SEND, the END "ram"
//! section with the checkpoint's dirty pages and EOF; VMSTATE_SIZE with
//! the device state's size, then the device state (FULL sections and
//! EOF); reverse VMSTATE_RECEIVED and VMSTATE_LOADED. The reverse stream
//! opens with CHECKPOINT_READY, `loaded_ns` after the initial migration's
//! last byte. Every message is a write of its own (QEMU flushes each).
//!
//! Times: reply, stop, received, loaded and interval are drawn from
//! [`super::super::Timing`]; the ram phase is the device state's save into
//! a buffer ([`super::super::Timing::cpu_state_ns`]) plus the RAM's
//! transfer; device_state is the transfer of the state. A stall replaces
//! the drawn duration; a stalled ram or device_state phase slows its
//! writes down to fill it (so a capture shows the secondary's zero window
//! when asked to).

use std::io;

use super::{At, Engine, RoundTruth, MAX_BATCH};
use crate::decode::qemu::wire::{self, ram_flag, ColoMessage, SectionType};
use crate::decode::wire::Layer;
use crate::decode::Direction::{self, Forward, Reverse};
use crate::synth::{CheckpointTruth, MigrationKind, MultifdTruth, Phase};

/// Section id of "ram", as QEMU 7.2 registers it on pc-i440fx.
const RAM_ID: u32 = 2;
/// Version of the "ram" section.
const RAM_VERSION: u32 = 4;
const PAGE: u64 = 4096;
const MACHINE: &str = "pc-i440fx-7.2";
/// Pages a multifd packet has room for (QEMU 7.2's `page_count`).
const MULTIFD_PAGES: usize = 128;
/// The SYNC flag of a multifd packet.
const MULTIFD_SYNC: u32 = 0x1;

/// One RAMBlock: name and size.
type Block = (&'static str, u64);

/// A FULL device section.
struct Device {
    name: &'static str,
    id: u32,
    instance: u32,
    version: u32,
    len: usize,
}

/// Where the pages of a RAM section come from: every page of every block
/// from (block, page index), or a sorted list of pc.ram page numbers.
enum Src {
    All { block: usize, page: u64 },
    List { pages: Vec<u64>, at: usize },
}

/// What a RAM section (or several) sent.
#[derive(Debug, Default, Clone, Copy)]
struct Sent {
    pages: u64,
    zero: u64,
}

/// What a RAM section's writes took: (first start, last end) of its
/// writes, what it sent, and whether its source has more.
type SectionSent = (Option<(u64, u64)>, Sent, bool);

pub(super) struct Qemu<'e, 'a> {
    e: &'e mut Engine<'a>,
    blocks: Vec<Block>,
    devices: Vec<Device>,
    template: Vec<u8>,
    /// The block the last RAM record named, within the current section.
    last_block: Option<usize>,
    /// Multifd: each channel's last (next_packet_size, block) sent.
    chans: Vec<(u32, Option<usize>)>,
    /// Multifd: the pages of the packet being gathered, of one block.
    pending: Vec<(usize, u64)>,
    /// Multifd: the packet being built.
    pkt: Vec<u8>,
    /// Multifd: the channel of the next packet with pages.
    next_chan: u32,
    /// Multifd: the next packet's number (counted across channels).
    packet_num: u64,
}

/// Stamps a page's block, index and `epoch` into its first 16 bytes.
fn stamp(page_bytes: &mut [u8], block: usize, page: u64, epoch: u64) {
    let id = (page ^ (block as u64) << 48).to_le_bytes();
    page_bytes[..8].copy_from_slice(&id);
    page_bytes[8..16].copy_from_slice(&epoch.to_le_bytes());
}

/// A cheap deterministic mix (splitmix64).
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl<'e, 'a> Qemu<'e, 'a> {
    pub(super) fn new(e: &'e mut Engine<'a>) -> Self {
        let s = e.s;
        let blocks = vec![
            ("pc.ram", s.memory),
            ("vga.vram", 8 << 20),
            ("pc.bios", 256 << 10),
            ("pc.rom", 128 << 10),
        ];
        let mut devices = vec![Device {
            name: "timer",
            id: 0,
            instance: 0,
            version: 2,
            len: 24,
        }];
        for i in 0..s.vcpus {
            devices.push(Device {
                name: "cpu",
                id: 5 + 10 * i,
                instance: i,
                version: 12,
                len: 1200,
            });
            devices.push(Device {
                name: "apic",
                id: 7 + 10 * i,
                instance: i,
                version: 3,
                len: 180,
            });
        }
        let base = 5 + 10 * s.vcpus;
        for (k, (name, version, len)) in [
            ("kvmclock", 1, 16),
            ("i8259", 3, 40),
            ("mc146818rtc", 3, 80),
            ("0000:00:01.3/piix4_pm", 3, 260),
            ("0000:00:02.0/vga", 2, 600),
        ]
        .into_iter()
        .enumerate()
        {
            devices.push(Device {
                name,
                id: base + k as u32,
                instance: 0,
                version,
                len,
            });
        }
        let mut template = vec![0u8; PAGE as usize];
        for (i, b) in template.iter_mut().enumerate() {
            *b = mix(s.seed ^ (i as u64).wrapping_mul(0x1000_0000_01b3)) as u8;
        }
        Qemu {
            chans: vec![(0, None); s.multifd as usize],
            e,
            blocks,
            devices,
            template,
            last_block: None,
            pending: Vec::with_capacity(MULTIFD_PAGES),
            pkt: Vec::new(),
            next_chan: 0,
            packet_num: 0,
        }
    }

    fn colo(&self) -> bool {
        self.e.s.kind == MigrationKind::QemuColo
    }

    fn multifd(&self) -> bool {
        !self.chans.is_empty()
    }

    // ----- multifd -----

    /// Sends every channel's `MultiFDInit_t`.
    fn multifd_init(&mut self) -> io::Result<()> {
        for id in 0..self.chans.len() as u32 {
            self.pkt.clear();
            self.pkt.extend_from_slice(&wire::MULTIFD_OPENING);
            self.pkt.extend_from_slice(&[0; 16]); // uuid
            self.pkt.push(id as u8);
            self.pkt.extend_from_slice(&[0; 7 + 32]);
            debug_assert_eq!(self.pkt.len(), wire::MULTIFD_INIT_LEN);
            self.e.send_channel(id, &self.pkt, 0)?;
            self.e.m.multifd.push(MultifdTruth {
                id,
                bytes: wire::MULTIFD_INIT_LEN as u64,
                ..MultifdTruth::default()
            });
        }
        Ok(())
    }

    /// Sends a multifd packet on channel `ch` with the pending pages (none
    /// for a SYNC), not before `t0`; widens `span` by its write.
    fn multifd_packet(
        &mut self,
        ch: u32,
        flags: u32,
        t0: u64,
        span: &mut Option<(u64, u64)>,
    ) -> io::Result<()> {
        let n = self.pending.len();
        let (next, block) = &mut self.chans[ch as usize];
        if let Some(&(b, _)) = self.pending.first() {
            *next = (n as u64 * PAGE) as u32;
            *block = Some(b);
        }
        let (next, block) = (*next, *block);
        let p = &mut self.pkt;
        p.clear();
        p.extend_from_slice(&wire::MULTIFD_MAGIC.to_be_bytes());
        p.extend_from_slice(&wire::MULTIFD_VERSION.to_be_bytes());
        p.extend_from_slice(&flags.to_be_bytes());
        p.extend_from_slice(&(MULTIFD_PAGES as u32).to_be_bytes());
        p.extend_from_slice(&(n as u32).to_be_bytes());
        p.extend_from_slice(&next.to_be_bytes());
        p.extend_from_slice(&self.packet_num.to_be_bytes());
        p.extend_from_slice(&[0; 32]);
        let mut name = [0u8; 256];
        if let Some(b) = block {
            let s = self.blocks[b].0.as_bytes();
            name[..s.len()].copy_from_slice(s);
        }
        p.extend_from_slice(&name);
        debug_assert_eq!(p.len(), wire::MULTIFD_PACKET_LEN);
        for i in 0..MULTIFD_PAGES {
            let off = self.pending.get(i).map_or(0, |&(_, pg)| pg * PAGE);
            p.extend_from_slice(&off.to_be_bytes());
        }
        for &(b, pg) in &self.pending {
            let at = p.len();
            p.extend_from_slice(&self.template);
            stamp(&mut p[at..], b, pg, self.e.epoch);
        }
        self.packet_num += 1;
        let len = self.pkt.len() as u64;
        let (a, b) = self.e.send_channel(ch, &self.pkt, t0)?;
        *span = Some((span.map_or(a, |x| x.0), b));
        let t = &mut self.e.m.multifd[ch as usize];
        t.packets += 1;
        t.syncs += u64::from(flags & MULTIFD_SYNC != 0);
        t.pages += n as u64;
        t.bytes += len;
        self.pending.clear();
        Ok(())
    }

    /// Sends the pending pages, if any, on the next channel.
    fn multifd_flush(&mut self, t0: u64, span: &mut Option<(u64, u64)>) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let ch = self.next_chan;
        self.next_chan = (ch + 1) % self.chans.len() as u32;
        self.multifd_packet(ch, 0, t0, span)
    }

    /// Gathers a page with data for the channels.
    fn multifd_page(
        &mut self,
        block: usize,
        page: u64,
        t0: u64,
        span: &mut Option<(u64, u64)>,
    ) -> io::Result<()> {
        if self.pending.len() >= MULTIFD_PAGES || self.pending.first().is_some_and(|p| p.0 != block)
        {
            self.multifd_flush(t0, span)?;
        }
        self.pending.push((block, page));
        Ok(())
    }

    /// Sends the pending pages, then a SYNC packet on every channel.
    fn multifd_sync(&mut self, t0: u64, span: &mut Option<(u64, u64)>) -> io::Result<()> {
        self.multifd_flush(t0, span)?;
        for ch in 0..self.chans.len() as u32 {
            self.multifd_packet(ch, MULTIFD_SYNC, t0, span)?;
        }
        Ok(())
    }

    /// Sends the buffer as one QEMU item; returns its end.
    fn item(&mut self, dir: Direction, name: &'static str, at: At) -> io::Result<u64> {
        self.e.send_item(dir, Layer::Qemu, name, at)
    }

    fn message(&mut self, m: ColoMessage, value: u64, at: At) -> io::Result<u64> {
        let dir = if m.from_primary() { Forward } else { Reverse };
        self.e.buf.clear();
        self.e.buf.extend_from_slice(&m.emit(value));
        self.item(dir, m.name(), at)
    }

    pub(super) fn run(mut self) -> io::Result<()> {
        self.e.m.qemu = true;
        self.e.m.colo = self.colo();
        let end = self.initial()?;
        if self.colo() {
            self.checkpoints(end)?;
        }
        Ok(())
    }

    // ----- the initial migration -----

    /// Header to VMDESCRIPTION. Returns the description's end.
    fn initial(&mut self) -> io::Result<u64> {
        if self.multifd() {
            self.multifd_init()?;
        }
        let buf = &mut self.e.buf;
        buf.clear();
        buf.extend_from_slice(&wire::OPENING);
        self.item(Forward, "QEVM", At::After(0))?;
        let buf = &mut self.e.buf;
        buf.clear();
        buf.push(SectionType::Configuration.byte());
        buf.extend_from_slice(&(MACHINE.len() as u32).to_be_bytes());
        buf.extend_from_slice(MACHINE.as_bytes());
        self.item(Forward, "CONFIGURATION", At::After(0))?;
        if self.colo() {
            self.e.buf.clear();
            let cmd = wire::emit_command(wire::CMD_ENABLE_COLO, &[]);
            self.e.buf.extend_from_slice(&cmd);
            self.item(Forward, "ENABLE_COLO", At::After(0))?;
        }
        // START "ram": MEM_SIZE and the blocks.
        let total: u64 = self.blocks.iter().map(|b| b.1).sum();
        let mut b = wire::emit_section_header(
            SectionType::Start,
            RAM_ID,
            Some((wire::RAM_SECTION, 0, RAM_VERSION)),
        );
        b.extend_from_slice(&(total | ram_flag::MEM_SIZE).to_be_bytes());
        for (name, size) in &self.blocks {
            b.push(name.len() as u8);
            b.extend_from_slice(name.as_bytes());
            b.extend_from_slice(&size.to_be_bytes());
        }
        b.extend_from_slice(&ram_flag::EOS.to_be_bytes());
        b.extend_from_slice(&wire::emit_footer(RAM_ID));
        self.e.buf.clear();
        self.e.buf.extend_from_slice(&b);
        let mut t = self.item(Forward, "SECTION_START", At::After(0))?;
        if self.multifd() {
            let mut span = None;
            self.multifd_sync(t, &mut span)?;
            t = span.map_or(t, |s| s.1);
        }
        let pages_end = self.passes(t)?;
        // The device state, after the collection of vcpu and device state.
        let cpu = self.e.draw_ns(self.e.s.timing.cpu_state_ns);
        let mut at = At::After(pages_end + cpu);
        for i in 0..self.devices.len() {
            self.e.buf.clear();
            self.device_section(i, 0);
            self.item(Forward, "SECTION_FULL", at)?;
            at = At::After(0);
        }
        self.e.buf.clear();
        self.e.buf.push(SectionType::Eof.byte());
        self.item(Forward, "EOF", At::After(0))?;
        let json = self.description();
        self.e.buf.clear();
        self.e.buf.push(SectionType::VmDescription.byte());
        self.e
            .buf
            .extend_from_slice(&(json.len() as u32).to_be_bytes());
        self.e.buf.extend_from_slice(json.as_bytes());
        self.item(Forward, "VMDESCRIPTION", At::After(0))
    }

    /// The JSON description of the devices.
    fn description(&self) -> String {
        let devices: Vec<String> = self
            .devices
            .iter()
            .map(|d| {
                format!(
                    r#"{{"name":"{}","instance_id":{},"vmsd_name":"{}","version":{}}}"#,
                    d.name, d.instance, d.name, d.version
                )
            })
            .collect();
        format!(
            r#"{{"page_size":{PAGE},"devices":[{}]}}"#,
            devices.join(",")
        )
    }

    /// Appends FULL section `i` with its body for `epoch` to the buffer.
    fn device_section(&mut self, i: usize, epoch: u64) {
        let d = &self.devices[i];
        let h = wire::emit_section_header(
            SectionType::Full,
            d.id,
            Some((d.name, d.instance, d.version)),
        );
        let seed = self.e.s.seed;
        let buf = &mut self.e.buf;
        buf.extend_from_slice(&h);
        let key = mix(seed ^ u64::from(d.id) << 32 ^ epoch);
        // Bodies hold 0x7e bytes, as real device state does, and open with
        // a decoy: 0x7e and the section's own id, then a byte no section
        // starts with. The decoder must take neither for the footer.
        let decoy = wire::emit_footer(d.id);
        for j in 0..d.len as u64 {
            let b = match j {
                0..=4 if d.len >= 6 => decoy[j as usize],
                5 if d.len >= 6 => 0xff,
                _ => mix(key ^ (j / 8)).to_le_bytes()[(j % 8) as usize],
            };
            buf.push(b);
        }
        buf.extend_from_slice(&wire::emit_footer(d.id));
    }

    /// The live passes, from `t`; returns the end of the END section.
    fn passes(&mut self, t: u64) -> io::Result<u64> {
        let counts = self.e.round_counts();
        let rounds = counts.len();
        let valid = self.e.valid_pages();
        let mut last_end = t;
        for (i, &count) in counts.iter().enumerate() {
            let last = i + 1 == rounds;
            let mut not_before = last_end;
            if i > 0 {
                not_before += self.e.draw_ns(self.e.s.timing.round_gap_ns);
            }
            if last {
                not_before += self.e.draw_ns(self.e.s.timing.suspend_ns);
            }
            let mut src = if i == 0 {
                Src::All { block: 0, page: 0 }
            } else {
                Src::List {
                    pages: self.e.sample_sorted(valid, count),
                    at: 0,
                }
            };
            let mut span: Option<(u64, u64)> = None;
            let mut sent = Sent::default();
            let mut at = not_before;
            loop {
                let (t, limit) = if last {
                    (SectionType::End, u64::MAX)
                } else {
                    (SectionType::Part, MAX_BATCH as u64)
                };
                let (sp, s, more) = self.ram_section(t, &mut src, limit, at, 0, 1, i == 0)?;
                if let Some((a, b)) = sp {
                    span = Some((span.map_or(a, |x| x.0), b));
                    at = b;
                }
                sent.pages += s.pages;
                sent.zero += s.zero;
                if !more {
                    break;
                }
            }
            let (start, end) = span.unwrap_or((not_before, not_before));
            self.e.m.rounds.push(RoundTruth {
                index: i as u32 + 1,
                pages: sent.pages,
                pfns: sent.pages + sent.zero,
                start_ns: start,
                end_ns: end,
            });
            last_end = end;
            self.e.epoch += 1;
        }
        Ok(last_end)
    }

    /// The next page of `src`: (block, page index).
    fn next_page(&self, src: &mut Src) -> Option<(usize, u64)> {
        match src {
            Src::All { block, page } => {
                while *block < self.blocks.len() && *page >= self.blocks[*block].1 / PAGE {
                    *block += 1;
                    *page = 0;
                }
                let b = *block;
                if b >= self.blocks.len() {
                    return None;
                }
                let p = *page;
                *page += 1;
                Some((b, p))
            }
            Src::List { pages, at } => {
                let p = *pages.get(*at)?;
                *at += 1;
                Some((0, p))
            }
        }
    }

    /// A page of the first pass is zero: most of the small blocks, a
    /// quarter of pc.ram.
    fn is_zero(&self, block: usize, page: u64) -> bool {
        if block == 0 {
            mix(self.e.s.seed ^ page.wrapping_mul(0x2545_f491_4f6c_dd1d)) % 4 == 0
        } else {
            page >= 4
        }
    }

    /// Appends the RAM record of `(block, page)` to the buffer.
    fn record(&mut self, block: usize, page: u64, zero: bool) {
        let named = (self.last_block != Some(block)).then(|| self.blocks[block].0);
        self.last_block = Some(block);
        let flag = if zero { ram_flag::ZERO } else { ram_flag::PAGE };
        let h = wire::emit_ram_header(page * PAGE, flag, named);
        self.e.buf.extend_from_slice(&h);
        if zero {
            self.e.buf.push(0);
        } else {
            let at = self.e.buf.len();
            self.e.buf.extend_from_slice(&self.template);
            stamp(&mut self.e.buf[at..], block, page, self.e.epoch);
        }
    }

    /// Sends one RAM section of type `t` with up to `limit` records of
    /// `src`, as writes of up to [`MAX_BATCH`] records, the first not before
    /// `t0`; `eof` appends the EOF byte to its last write (a COLO
    /// checkpoint). `extra_ns` of slowdown is spread over the writes by
    /// bytes (`total_bytes` of them). `zeros`: the first pass, whose zero
    /// pages go as ZERO records. Returns the (first start, last end) of its
    /// writes, what it sent, and whether `src` has more.
    #[allow(clippy::too_many_arguments)]
    fn ram_section_eof(
        &mut self,
        t: SectionType,
        src: &mut Src,
        limit: u64,
        t0: u64,
        extra_ns: u64,
        total_bytes: u64,
        zeros: bool,
        eof: bool,
    ) -> io::Result<SectionSent> {
        let offset = self.e.lanes[0].offset;
        self.last_block = None;
        self.e.buf.clear();
        self.e
            .buf
            .extend_from_slice(&wire::emit_section_header(t, RAM_ID, None));
        let mut sent = Sent::default();
        let mut span: Option<(u64, u64)> = None;
        let mut in_write = 0usize;
        let mut records = 0u64;
        let mut section_len = 0u64;
        let mut sent_bytes = 0u64;
        let mut spent = 0u64;
        let mut more = true;
        loop {
            let next = if records < limit {
                self.next_page(src)
            } else {
                None
            };
            let done = next.is_none();
            if let Some((block, page)) = next {
                let zero = zeros && self.is_zero(block, page);
                if zero {
                    sent.zero += 1;
                } else {
                    sent.pages += 1;
                }
                records += 1;
                if !zero && self.multifd() {
                    self.multifd_page(block, page, t0, &mut span)?;
                } else {
                    self.record(block, page, zero);
                    in_write += 1;
                }
            } else {
                if self.multifd() {
                    self.multifd_sync(t0, &mut span)?;
                }
                more = records >= limit;
                self.e.buf.extend_from_slice(&ram_flag::EOS.to_be_bytes());
                self.e.buf.extend_from_slice(&wire::emit_footer(RAM_ID));
            }
            if done || in_write >= MAX_BATCH {
                let len = self.e.buf.len() as u64;
                section_len += len;
                if done && eof {
                    self.e.buf.push(SectionType::Eof.byte());
                }
                sent_bytes += self.e.buf.len() as u64;
                let extra = if extra_ns > 0 && total_bytes > 0 {
                    let due = (u128::from(extra_ns) * u128::from(sent_bytes)
                        / u128::from(total_bytes)) as u64;
                    let e = due.saturating_sub(spent);
                    spent = due;
                    e
                } else {
                    0
                };
                let at = if span.is_none() {
                    At::After(t0)
                } else {
                    At::After(0)
                };
                let (a, b) = self.e.send(Forward, at, extra)?;
                span = Some((span.map_or(a, |x| x.0), b));
                in_write = 0;
                self.e.buf.clear();
                if done {
                    break;
                }
            }
        }
        let end = span.map_or(t0, |s| s.1);
        self.e.note(
            Forward,
            Layer::Qemu,
            t.name(),
            offset,
            section_len as u32,
            end,
        );
        if eof {
            self.e
                .note(Forward, Layer::Qemu, "EOF", offset + section_len, 1, end);
        }
        // A PART section that found nothing left says so by `more`.
        Ok((span, sent, more && self.has_more(src)))
    }

    fn has_more(&self, src: &Src) -> bool {
        match src {
            Src::All { block, page } => {
                *block < self.blocks.len()
                    && (*page < self.blocks[*block].1 / PAGE
                        || self.blocks[*block + 1..].iter().any(|b| b.1 >= PAGE))
            }
            Src::List { pages, at } => *at < pages.len(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn ram_section(
        &mut self,
        t: SectionType,
        src: &mut Src,
        limit: u64,
        t0: u64,
        extra_ns: u64,
        total_bytes: u64,
        zeros: bool,
    ) -> io::Result<SectionSent> {
        self.ram_section_eof(t, src, limit, t0, extra_ns, total_bytes, zeros, false)
    }

    // ----- COLO checkpoints -----

    /// Checkpoints 1..=N after the initial migration ended at `end`.
    fn checkpoints(&mut self, end: u64) -> io::Result<()> {
        let s = self.e.s;
        let loaded = self.e.draw_ns(s.timing.loaded_ns);
        let ready = self.message(
            ColoMessage::CheckpointReady,
            0,
            At::EndAt(end + loaded, end),
        )?;
        let mut anchor = ready;
        let mut interval = self.e.draw_ns(s.timing.run_ns);
        for k in 1..=s.checkpoints {
            let t = &s.timing;
            let drawn = [
                t.reply_ns,
                t.stop_ns,
                t.cpu_state_ns,
                t.received_ns,
                t.loaded_ns,
                t.run_ns,
            ]
            .map(|m| self.e.draw_ns(m));
            let stalls = &self.e.stalls;
            let stall = |p: Phase| stalls.get(&(k, p)).copied();
            let (reply_d, stop_d, received_d, loaded_d, next_interval) = (
                stall(Phase::Reply).unwrap_or(drawn[0]),
                stall(Phase::Stop).unwrap_or(drawn[1]),
                stall(Phase::Received).unwrap_or(drawn[3]),
                stall(Phase::Loaded).unwrap_or(drawn[4]),
                stall(Phase::Interval).unwrap_or(drawn[5]),
            );
            let (ram_stall, dev_stall) = (stall(Phase::Ram), stall(Phase::DeviceState));
            let cpu = drawn[2];

            let checkpoint_offset = self.e.lanes[0].offset;
            let request = self.message(
                ColoMessage::CheckpointRequest,
                0,
                At::EndAt(anchor + interval, anchor),
            )?;
            let reply = self.message(
                ColoMessage::CheckpointReply,
                0,
                At::EndAt(request + reply_d, request),
            )?;
            let send = self.message(
                ColoMessage::VmstateSend,
                0,
                At::EndAt(reply + stop_d, reply),
            )?;
            // The dirty pages, as one END section and EOF.
            let n = self.e.draw_count(s.dirty.primary_mean as f64);
            let pages = self.e.sample_hot(n);
            let count = pages.len() as u64;
            let ram_bytes = self.checkpoint_ram_len(count);
            let writes = count.div_ceil(MAX_BATCH as u64).max(1);
            let size_ns = self.e.transfer_ns(ColoMessage::VmstateSize.wire_len());
            let natural = cpu + self.e.transfer_ns(ram_bytes) + size_ns;
            // Per-write rounding can add a nanosecond a write: keep room.
            let extra = ram_stall.map_or(0, |d| d.saturating_sub(natural + writes + 2));
            let mut src = Src::List { pages, at: 0 };
            let (span, sent, _) = self.ram_section_eof(
                SectionType::End,
                &mut src,
                u64::MAX,
                send + cpu,
                extra,
                ram_bytes,
                false,
                true,
            )?;
            let ram_end = span.map_or(send + cpu, |x| x.1);
            // The device state, saved into a buffer before the RAM went out.
            let epoch = self.e.epoch;
            self.e.buf.clear();
            for i in 0..self.devices.len() {
                self.device_section(i, epoch);
            }
            self.e.buf.push(SectionType::Eof.byte());
            let state = std::mem::take(&mut self.e.buf);
            let size_at = match ram_stall {
                Some(d) => At::EndAt(send.saturating_add(d), ram_end),
                None => At::After(ram_end),
            };
            let size = self.message(ColoMessage::VmstateSize, state.len() as u64, size_at)?;
            self.e.buf = state;
            let state_len = self.e.buf.len() as u64;
            let dev_extra =
                dev_stall.map_or(0, |d| d.saturating_sub(self.e.transfer_ns(state_len)));
            let offset = self.e.lanes[0].offset;
            let (_, device_end) = self.e.send(Forward, At::After(size), dev_extra)?;
            self.e.note(
                Forward,
                Layer::Qemu,
                "DEVICE_STATE",
                offset,
                state_len as u32,
                device_end,
            );
            let received = self.message(
                ColoMessage::VmstateReceived,
                0,
                At::EndAt(device_end + received_d, device_end),
            )?;
            let loaded = self.message(
                ColoMessage::VmstateLoaded,
                0,
                At::EndAt(received + loaded_d, received),
            )?;
            self.e.m.checkpoints.push(CheckpointTruth {
                index: k,
                events: [
                    Some(request),
                    Some(reply),
                    Some(send),
                    Some(size),
                    Some(device_end),
                    Some(received),
                    Some(loaded),
                ],
                pages: sent.pages,
                pfns: sent.pages + sent.zero,
                dirty_pfns: 0,
                forward_bytes: self.e.lanes[0].offset - checkpoint_offset,
                vmstate_size: state_len,
                device_sections: self.devices.len() as u32,
            });
            anchor = loaded;
            interval = next_interval;
            self.e.epoch += 1;
        }
        Ok(())
    }

    /// Bytes of a checkpoint's END section of `pages` pc.ram pages, and EOF.
    fn checkpoint_ram_len(&self, pages: u64) -> u64 {
        let header = 5;
        let named = if pages > 0 {
            1 + self.blocks[0].0.len() as u64
        } else {
            0
        };
        header + pages * (8 + PAGE) + named + 8 + 5 + 1
    }
}
