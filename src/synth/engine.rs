//! The generator proper: walks the stream structure of PROTOCOL.md sections
//! 2-6 for one [`Scenario`], places every write in time (see the timing model
//! in the module docs of `synth`), hands it to the sink and records the ground
//! truth.
//!
//! One record is built at a time into a reusable buffer, so memory use does
//! not grow with the stream.

use std::collections::HashMap;
use std::io;

use rand::seq::index;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::content::{self, control, Pages, MAX_BATCH};
use super::{
    CheckpointTruth, Guest, Manifest, ManifestRecord, MigrationKind, Phase, RoundTruth, Scenario,
    StreamSink, Write,
};
use crate::decode::wire::{Layer, LibxcType, LibxlType, RecordHeader, RecordType};
use crate::decode::Direction;

/// When a write may go.
#[derive(Debug, Clone, Copy)]
enum At {
    /// As soon as its direction is free, and not before this time.
    After(u64),
    /// So that its last byte goes at the first time, but not starting before
    /// the second (the event it answers or follows) nor before its direction
    /// is free: a phase is never shorter than the transfer of its record.
    EndAt(u64, u64),
}

/// The state of one direction: bytes sent and when the link is free again.
#[derive(Debug, Default, Clone, Copy)]
struct Lane {
    offset: u64,
    free_ns: u64,
}

/// xl's think time between reading a handshake message and answering it.
const XL_REPLY_NS: u64 = 50_000;
/// PV guests have no device model: libxl writes CHECKPOINT_END or END this
/// long after the save helper hands the stream back.
const PV_DEVICE_NS: u64 = 50_000;
/// Dirty pages of checkpoints are drawn from a hot set of this many times
/// the mean dirty counts, so that the two sides' sets overlap as the working
/// sets of two replicas of one guest do.
const HOT_SET_FACTOR: u64 = 4;
/// Later live rounds pick their pages by index sampling when at most this
/// many are wanted (and few compared with the guest), else by one pass of
/// selection sampling over all pfns; either way without storing more than
/// this many pfns.
const SPARSE_SAMPLE_MAX: u64 = 1 << 20;

/// Durations drawn for one checkpoint (or the plain migration), after stalls.
#[derive(Debug, Clone, Copy)]
struct Durations {
    suspend: u64,
    dirty_sync: u64,
    /// Only set by a stall: the memory phase otherwise follows from bandwidth.
    memory: Option<u64>,
    device: u64,
    apply: u64,
    resume: u64,
    run: u64,
    cpu: u64,
}

/// Where the pfns of a run of PAGE_DATA records come from.
enum PfnSource {
    /// Every pfn in `next..end` (the first live round).
    Range { next: u64, end: u64 },
    /// Selection sampling (Knuth's algorithm S): `need` of the valid-pfn
    /// indices `next..n`, in order.
    Select { next: u64, n: u64, need: u64 },
    /// A sorted list.
    List { pfns: Vec<u64>, at: usize },
}

pub(super) struct Engine<'a> {
    s: &'a Scenario,
    sink: &'a mut dyn StreamSink,
    /// The record being built; reused for every write.
    buf: Vec<u8>,
    /// pfns of the PAGE_DATA record being built.
    batch: Vec<u64>,
    pages: Pages,
    lanes: [Lane; 2],
    /// Bytes sent on each QEMU multifd channel. The channels share the
    /// forward direction's link (its `free_ns`) with the main stream.
    channels: Vec<u64>,
    /// Random choices that shape the bytes (dirty sets).
    content: ChaCha8Rng,
    /// Random choices that shape the times only.
    time: ChaCha8Rng,
    stalls: HashMap<(u32, Phase), u64>,
    /// Bumped once per live round and per checkpoint; stamped into contents.
    epoch: u64,
    /// Sorted pfns that checkpoints dirty.
    hot: Vec<u64>,
    /// Transfer time of the CPU records plus the closing libxc record.
    cpu_tail_ns: u64,
    m: Manifest,
}

fn lane_index(dir: Direction) -> usize {
    match dir {
        Direction::Forward => 0,
        Direction::Reverse => 1,
    }
}

impl<'a> Engine<'a> {
    pub(super) fn new(s: &'a Scenario, sink: &'a mut dyn StreamSink) -> Self {
        let mut content = ChaCha8Rng::seed_from_u64(s.seed);
        content.set_stream(1);
        let mut time = ChaCha8Rng::seed_from_u64(s.seed);
        time.set_stream(2);
        let mut engine = Engine {
            s,
            sink,
            buf: Vec::with_capacity(16 + 8 * MAX_BATCH + content::PAGE_SIZE * MAX_BATCH + 64),
            batch: Vec::with_capacity(MAX_BATCH),
            pages: Pages::new(s.seed, s.guest == Guest::Pv),
            lanes: [Lane::default(); 2],
            channels: vec![0; s.multifd as usize],
            content,
            time,
            stalls: s.stalls.iter().map(|&(k, p, d)| ((k, p), d)).collect(),
            epoch: 0,
            hot: Vec::new(),
            cpu_tail_ns: 0,
            m: Manifest {
                colo: s.kind == MigrationKind::Colo,
                ..Manifest::default()
            },
        };
        engine.cpu_tail_ns = engine.measure_cpu_tail();
        if s.kind.is_checkpointed() {
            engine.hot = engine.draw_hot_set();
        }
        engine
    }

    pub(super) fn run(mut self) -> io::Result<Manifest> {
        if self.s.kind.is_qemu() {
            qemu::Qemu::new(&mut self).run()?;
            self.m.forward_bytes = self.lanes[0].offset;
            self.m.reverse_bytes = self.lanes[1].offset;
            return Ok(self.m);
        }
        let t = self.preamble()?;
        if self.s.kind.is_checkpointed() {
            self.checkpointed(t)?;
        } else {
            self.plain(t)?;
        }
        self.m.forward_bytes = self.lanes[0].offset;
        self.m.reverse_bytes = self.lanes[1].offset;
        Ok(self.m)
    }

    // ----- sending -----

    fn hvm(&self) -> bool {
        self.s.guest == Guest::Hvm
    }

    fn transfer_ns(&self, bytes: u64) -> u64 {
        self.s.timing.transfer_ns(bytes)
    }

    /// Sends the buffer as one write, `extra_ns` slower than the link allows.
    fn send(&mut self, dir: Direction, at: At, extra_ns: u64) -> io::Result<(u64, u64)> {
        let len = self.buf.len() as u64;
        let duration = self.s.timing.transfer_ns(len).saturating_add(extra_ns);
        let lane = &mut self.lanes[lane_index(dir)];
        let start = match at {
            At::After(t) => t.max(lane.free_ns),
            At::EndAt(t, after) => t.saturating_sub(duration).max(after).max(lane.free_ns),
        };
        let end = start.saturating_add(duration);
        self.sink.write(&Write {
            start_ns: start,
            end_ns: end,
            dir,
            channel: None,
            data: &self.buf,
        })?;
        lane.offset += len;
        lane.free_ns = end;
        Ok((start, end))
    }

    /// Sends `data` as one write on QEMU multifd channel `ch`, on the
    /// forward link; returns its (start, end) times.
    fn send_channel(&mut self, ch: u32, data: &[u8], at: u64) -> io::Result<(u64, u64)> {
        let len = data.len() as u64;
        let lane = &mut self.lanes[0];
        let start = at.max(lane.free_ns);
        let end = start.saturating_add(self.s.timing.transfer_ns(len));
        self.sink.write(&Write {
            start_ns: start,
            end_ns: end,
            dir: Direction::Forward,
            channel: Some(ch),
            data,
        })?;
        lane.free_ns = end;
        self.channels[ch as usize] += len;
        Ok((start, end))
    }

    fn note(
        &mut self,
        dir: Direction,
        layer: Layer,
        name: &'static str,
        offset: u64,
        body_length: u32,
        end_ns: u64,
    ) {
        if self.s.manifest_records {
            self.m.records.push(ManifestRecord {
                dir,
                layer,
                name,
                offset,
                body_length,
                end_ns,
            });
        }
    }

    /// Sends the record in the buffer; returns its (start, end) times.
    fn send_record(
        &mut self,
        dir: Direction,
        layer: Layer,
        at: At,
        extra_ns: u64,
    ) -> io::Result<(u64, u64)> {
        let header = RecordHeader::parse(&self.buf).expect("a built record has a header");
        let name = RecordType::of(layer, header.rtype).map_or("UNKNOWN", RecordType::name);
        let offset = self.lanes[lane_index(dir)].offset;
        let (start, end) = self.send(dir, at, extra_ns)?;
        self.note(dir, layer, name, offset, header.body_length, end);
        Ok((start, end))
    }

    /// Sends a header or an xl message held whole in the buffer.
    fn send_item(
        &mut self,
        dir: Direction,
        layer: Layer,
        name: &'static str,
        at: At,
    ) -> io::Result<u64> {
        let offset = self.lanes[lane_index(dir)].offset;
        let len = self.buf.len() as u32;
        let (_, end) = self.send(dir, at, 0)?;
        self.note(dir, layer, name, offset, len, end);
        Ok(end)
    }

    fn control(&mut self, dir: Direction, control_id: u32, at: At) -> io::Result<u64> {
        content::checkpoint_state(&mut self.buf, control_id);
        Ok(self.send_record(dir, Layer::Libxl, at, 0)?.1)
    }

    // ----- random draws -----

    /// Uniform in `mean * (1 ± jitter)`. Always consumes one draw.
    fn jittered(rng: &mut ChaCha8Rng, mean: f64, jitter: f64) -> f64 {
        let u: f64 = rng.gen::<f64>() * 2.0 - 1.0;
        (mean * (1.0 + jitter * u)).max(0.0)
    }

    fn draw_ns(&mut self, mean: u64) -> u64 {
        Self::jittered(&mut self.time, mean as f64, self.s.timing.jitter).round() as u64
    }

    fn draw_count(&mut self, mean: f64) -> u64 {
        Self::jittered(&mut self.content, mean, self.s.dirty.jitter).round() as u64
    }

    /// Draws every duration of checkpoint `k` in a fixed order (so that a stall
    /// changes nothing else), then applies the stalls.
    fn durations(&mut self, k: u32) -> Durations {
        let t = &self.s.timing;
        let means = [
            t.suspend_ns,
            t.dirty_sync_ns,
            t.device_ns,
            t.apply_ns,
            t.resume_ns,
            t.run_ns,
            t.cpu_state_ns,
        ];
        let mut drawn = [0u64; 7];
        for (d, mean) in drawn.iter_mut().zip(means) {
            *d = self.draw_ns(mean);
        }
        let stall = |p: Phase| self.stalls.get(&(k, p)).copied();
        let device = if self.s.guest == Guest::Hvm {
            drawn[2]
        } else {
            PV_DEVICE_NS
        };
        Durations {
            suspend: stall(Phase::Suspend).unwrap_or(drawn[0]),
            dirty_sync: stall(Phase::DirtySync).unwrap_or(drawn[1]),
            memory: stall(Phase::Memory),
            device: stall(Phase::Device).unwrap_or(device),
            apply: stall(Phase::Apply).unwrap_or(drawn[3]),
            resume: stall(Phase::Resume).unwrap_or(drawn[4]),
            run: stall(Phase::Run).unwrap_or(drawn[5]),
            cpu: drawn[6],
        }
    }

    /// Pages that carry memory (HVM: all but the VGA hole).
    fn valid_pages(&self) -> u64 {
        let hole = if self.hvm() {
            content::HVM_HOLE.end - content::HVM_HOLE.start
        } else {
            0
        };
        self.s.pages() - hole
    }

    /// The pfn of the `i`-th page that carries memory.
    fn valid_pfn(hvm: bool, i: u64) -> u64 {
        if hvm && i >= content::HVM_HOLE.start {
            i + (content::HVM_HOLE.end - content::HVM_HOLE.start)
        } else {
            i
        }
    }

    fn draw_hot_set(&mut self) -> Vec<u64> {
        let valid = self.valid_pages();
        let d = &self.s.dirty;
        let size = (HOT_SET_FACTOR * (d.primary_mean + d.secondary_mean))
            .max(MAX_BATCH as u64)
            .min(valid);
        self.sample_sorted(valid, size)
    }

    /// `amount` distinct valid pfns out of `valid`, ascending.
    fn sample_sorted(&mut self, valid: u64, amount: u64) -> Vec<u64> {
        let hvm = self.hvm();
        let mut v: Vec<u64> = index::sample(&mut self.content, valid as usize, amount as usize)
            .into_iter()
            .map(|i| Self::valid_pfn(hvm, i as u64))
            .collect();
        v.sort_unstable();
        v
    }

    /// `amount` distinct pfns of the hot set, ascending.
    fn sample_hot(&mut self, amount: u64) -> Vec<u64> {
        let amount = amount.min(self.hot.len() as u64) as usize;
        let mut idx = index::sample(&mut self.content, self.hot.len(), amount).into_vec();
        idx.sort_unstable();
        idx.into_iter().map(|i| self.hot[i]).collect()
    }

    // ----- stream structure -----

    /// xl preamble, libxl header, LIBXC_CONTEXT, libxc headers, static
    /// records. Returns the time the forward link is free.
    fn preamble(&mut self) -> io::Result<u64> {
        use Direction::Forward;
        let s = self.s;
        let mut t = 0;
        if s.xl {
            self.buf.clear();
            self.buf.extend_from_slice(content::BANNER);
            t = self.send_item(Direction::Reverse, Layer::Xl, "BANNER", At::After(0))?;
            let config = content::xl_config(&s.name, self.hvm(), s.memory, s.vcpus, s.seed);
            let offset = self.lanes[0].offset;
            content::xl_header(&mut self.buf, config.len() as u32);
            self.send(Forward, At::After(t), 0)?;
            content::xl_optional_data(&mut self.buf, &config);
            let (_, end) = self.send(Forward, At::After(0), 0)?;
            let len = (content::XL_HEADER_LEN + 4 + config.len()) as u32;
            self.note(Forward, Layer::Xl, "SAVE_HEADER", offset, len, end);
            t = end;
        }
        content::libxl_header(&mut self.buf);
        self.send_item(Forward, Layer::Libxl, "HEADER", At::After(t))?;
        content::empty_record(&mut self.buf, LibxlType::LibxcContext.to_u32());
        self.send_record(Forward, Layer::Libxl, At::After(0), 0)?;
        content::image_header(&mut self.buf, s.libxc_version);
        self.send_item(Forward, Layer::Libxc, "IMAGE_HEADER", At::After(0))?;
        let hvm = self.hvm();
        content::domain_header(&mut self.buf, hvm, s.libxc_version);
        self.send_item(Forward, Layer::Libxc, "DOMAIN_HEADER", At::After(0))?;
        if !self.hvm() {
            content::pv_info(&mut self.buf);
            self.send_record(Forward, Layer::Libxc, At::After(0), 0)?;
        }
        if s.libxc_version >= 3 {
            content::cpuid_policy(&mut self.buf);
            self.send_record(Forward, Layer::Libxc, At::After(0), 0)?;
            content::msr_policy(&mut self.buf);
            self.send_record(Forward, Layer::Libxc, At::After(0), 0)?;
            content::empty_record(&mut self.buf, LibxcType::StaticDataEnd.to_u32());
            self.send_record(Forward, Layer::Libxc, At::After(0), 0)?;
        }
        if !self.hvm() {
            content::p2m_frames(&mut self.buf, s.pages());
            self.send_record(Forward, Layer::Libxc, At::After(0), 0)?;
        }
        Ok(self.lanes[0].free_ns)
    }

    fn plain(&mut self, t: u64) -> io::Result<()> {
        let d = self.durations(0);
        let (pages_end, _) = self.live(t)?;
        let libxc_end = self.close_libxc(pages_end + d.cpu, None, LibxcType::End)?;
        let libxl_end = self.device(libxc_end, d.device, LibxlType::End)?;
        if self.s.xl {
            self.xl_trailer(libxl_end, &d)?;
        }
        Ok(())
    }

    /// The xl trailer of a plain migration (PROTOCOL.md section 2 item 4).
    fn xl_trailer(&mut self, libxl_end: u64, d: &Durations) -> io::Result<()> {
        use Direction::{Forward, Reverse};
        self.buf.clear();
        self.buf.extend_from_slice(content::READY_TO_UNPAUSE);
        let ready = self.send_item(
            Reverse,
            Layer::Xl,
            "READY_TO_UNPAUSE",
            At::EndAt(libxl_end + d.apply, libxl_end),
        )?;
        self.buf.clear();
        self.buf.extend_from_slice(content::CLEARED_TO_UNPAUSE);
        let cleared = self.send_item(
            Forward,
            Layer::Xl,
            "CLEARED_TO_UNPAUSE",
            At::After(ready + XL_REPLY_NS),
        )?;
        // xl writes the message and the result byte separately.
        let offset = self.lanes[1].offset;
        self.buf.clear();
        self.buf.extend_from_slice(content::UNPAUSE_RESULT);
        self.send(Reverse, At::EndAt(cleared + d.resume, cleared), 0)?;
        self.buf.clear();
        self.buf.push(0);
        let (_, end) = self.send(Reverse, At::After(0), 0)?;
        let len = content::UNPAUSE_RESULT.len() as u32 + 1;
        self.note(Reverse, Layer::Xl, "UNPAUSE_RESULT", offset, len, end);
        Ok(())
    }

    /// Page counts of the live rounds: every pfn, then a shrinking subset.
    fn round_counts(&mut self) -> Vec<u64> {
        let valid = self.valid_pages();
        let mut counts = vec![self.s.pages()];
        let mut prev = valid;
        for r in 2..=self.s.rounds {
            let mean = if r == 2 {
                valid as f64 * self.s.dirty.live_fraction
            } else {
                prev as f64 * self.s.dirty.live_shrink
            };
            let c = self.draw_count(mean).clamp(1, prev);
            counts.push(c);
            prev = c;
        }
        counts
    }

    /// The live rounds of the initial migration, from `t`. Returns the end of
    /// the last page write and the pfn entries and pages with data sent.
    fn live(&mut self, t: u64) -> io::Result<(u64, Sent)> {
        let counts = self.round_counts();
        let rounds = counts.len();
        let valid = self.valid_pages();
        let mut last_end = t;
        let mut total = Sent::default();
        for (i, &count) in counts.iter().enumerate() {
            let mut not_before = last_end;
            if i > 0 {
                not_before += self.draw_ns(self.s.timing.round_gap_ns);
            }
            if i + 1 == rounds {
                // The guest is suspended before the stop-and-copy round.
                not_before += self.draw_ns(self.s.timing.suspend_ns);
            }
            let source = if i == 0 {
                PfnSource::Range {
                    next: 0,
                    end: count,
                }
            } else if count <= SPARSE_SAMPLE_MAX && count.saturating_mul(16) < valid {
                PfnSource::List {
                    pfns: self.sample_sorted(valid, count),
                    at: 0,
                }
            } else {
                PfnSource::Select {
                    next: 0,
                    n: valid,
                    need: count,
                }
            };
            let (span, sent) = self.send_pages(source, not_before, 0, 0)?;
            let (start, end) = span.unwrap_or((not_before, not_before));
            self.m.rounds.push(RoundTruth {
                index: i as u32 + 1,
                pages: sent.pages,
                pfns: sent.pfns,
                start_ns: start,
                end_ns: end,
            });
            total.pfns += sent.pfns;
            total.pages += sent.pages;
            last_end = end;
            self.epoch += 1;
        }
        Ok((last_end, total))
    }

    /// Fills `self.batch` with the next pfns of `src`.
    fn next_batch(&mut self, src: &mut PfnSource) {
        self.batch.clear();
        let hvm = self.hvm();
        match src {
            PfnSource::Range { next, end } => {
                let n = (*end - *next).min(MAX_BATCH as u64);
                self.batch.extend(*next..*next + n);
                *next += n;
            }
            PfnSource::Select { next, n, need } => {
                while self.batch.len() < MAX_BATCH && *need > 0 {
                    if self.content.gen_range(0..*n - *next) < *need {
                        self.batch.push(Self::valid_pfn(hvm, *next));
                        *need -= 1;
                    }
                    *next += 1;
                }
            }
            PfnSource::List { pfns, at } => {
                let n = (pfns.len() - *at).min(MAX_BATCH);
                self.batch.extend_from_slice(&pfns[*at..*at + n]);
                *at += n;
            }
        }
    }

    /// Sends the pfns of `src` as PAGE_DATA records from `t`. `extra_ns` of
    /// slowdown is spread over the records in proportion to their size
    /// (`total_bytes` of them). Returns the (first start, last end) of the
    /// writes, if any, and what was sent.
    fn send_pages(
        &mut self,
        mut src: PfnSource,
        t: u64,
        extra_ns: u64,
        total_bytes: u64,
    ) -> io::Result<(Option<(u64, u64)>, Sent)> {
        let mut span: Option<(u64, u64)> = None;
        let mut sent = Sent::default();
        let mut sent_bytes = 0u64;
        let mut spent_extra = 0u64;
        loop {
            self.next_batch(&mut src);
            if self.batch.is_empty() {
                break;
            }
            sent.pages += self.pages.page_data(&mut self.buf, &self.batch, self.epoch);
            sent_bytes += self.buf.len() as u64;
            let extra = if extra_ns > 0 && total_bytes > 0 {
                let due = (u128::from(extra_ns) * u128::from(sent_bytes) / u128::from(total_bytes))
                    as u64;
                let e = due.saturating_sub(spent_extra);
                spent_extra = due;
                e
            } else {
                0
            };
            let (start, end) =
                self.send_record(Direction::Forward, Layer::Libxc, At::After(t), extra)?;
            span = Some((span.map_or(start, |s| s.0), end));
            sent.pfns += self.batch.len() as u64;
        }
        Ok((span, sent))
    }

    /// Builds CPU record `i` of the end of a checkpoint into the buffer
    /// (HVM: TSC_INFO, HVM_CONTEXT, HVM_PARAMS; PV: TSC_INFO, SHARED_INFO,
    /// then per vcpu BASIC, EXTENDED, XSAVE, MSRS). False past the last.
    fn build_cpu_record(&mut self, i: usize) -> bool {
        let epoch = self.epoch;
        match (self.s.guest, i) {
            (_, 0) => content::tsc_info(&mut self.buf, epoch),
            (Guest::Hvm, 1) => content::hvm_context(&mut self.buf, self.s.vcpus, epoch),
            (Guest::Hvm, 2) => content::hvm_params(&mut self.buf),
            (Guest::Hvm, _) => return false,
            (Guest::Pv, 1) => content::shared_info(&mut self.buf, epoch),
            (Guest::Pv, n) => {
                let per_vcpu = content::PV_VCPU_RECORDS.len();
                let vcpu = (n - 2) / per_vcpu;
                if vcpu >= self.s.vcpus as usize {
                    return false;
                }
                let (rtype, len) = content::PV_VCPU_RECORDS[(n - 2) % per_vcpu];
                content::pv_vcpu(&mut self.buf, rtype, vcpu as u32, len, epoch);
            }
        }
        true
    }

    /// Transfer time of the CPU records plus the 8-byte closing record; their
    /// sizes do not depend on the epoch.
    fn measure_cpu_tail(&mut self) -> u64 {
        let mut ns = self.transfer_ns(8);
        let mut i = 0;
        while self.build_cpu_record(i) {
            ns += self.transfer_ns(self.buf.len() as u64);
            i += 1;
        }
        self.buf.clear();
        ns
    }

    /// Sends the CPU records from `t`, then the closing libxc record (END or
    /// CHECKPOINT), ending at `target` if given. Returns the closing record's
    /// end.
    fn close_libxc(&mut self, t: u64, target: Option<u64>, closing: LibxcType) -> io::Result<u64> {
        let mut i = 0;
        while self.build_cpu_record(i) {
            let at = if i == 0 { At::After(t) } else { At::After(0) };
            self.send_record(Direction::Forward, Layer::Libxc, at, 0)?;
            i += 1;
        }
        content::empty_record(&mut self.buf, closing.to_u32());
        let at = target.map_or(At::After(0), |t| At::EndAt(t, 0));
        Ok(self.send_record(Direction::Forward, Layer::Libxc, at, 0)?.1)
    }

    /// The libxl records after the libxc part: for HVM EMULATOR_XENSTORE_DATA
    /// and EMULATOR_CONTEXT, then `closing` (END or CHECKPOINT_END), which
    /// ends `device` ns after `from`. Returns its end.
    fn device(&mut self, from: u64, device: u64, closing: LibxlType) -> io::Result<u64> {
        use Direction::Forward;
        let target = from.saturating_add(device);
        let closing_ns = self.transfer_ns(8);
        if self.hvm() {
            content::emulator_xenstore_data(&mut self.buf);
            self.send_record(Forward, Layer::Libxl, At::After(from), 0)?;
            content::emulator_context(&mut self.buf, self.epoch);
            self.send_record(
                Forward,
                Layer::Libxl,
                At::EndAt(target - closing_ns, from),
                0,
            )?;
        }
        content::empty_record(&mut self.buf, closing.to_u32());
        Ok(self
            .send_record(Forward, Layer::Libxl, At::EndAt(target, from), 0)?
            .1)
    }

    /// Remus and COLO: checkpoint 0 (the live migration), then the
    /// checkpoints of section 6.
    fn checkpointed(&mut self, t: u64) -> io::Result<()> {
        use Direction::{Forward, Reverse};
        let colo = self.s.kind == MigrationKind::Colo;
        let mut last_offset = 0;
        // (time the next checkpoint's run phase starts from, run duration)
        let mut previous = (0u64, 0u64);
        for k in 0..self.s.checkpoints {
            let d = self.durations(k);
            let mut ev = [None; 7];
            let mut dirty_pfns = 0;
            let sent;
            let libxc_end;
            if k == 0 {
                let (pages_end, live) = self.live(t)?;
                sent = live;
                libxc_end = self.close_libxc(pages_end + d.cpu, None, LibxcType::Checkpoint)?;
            } else {
                let (anchor, run) = previous;
                let (start, pfns) = if colo {
                    let new =
                        self.control(Forward, control::NEW, At::EndAt(anchor + run, anchor))?;
                    let suspended = self.control(
                        Reverse,
                        control::SVM_SUSPENDED,
                        At::EndAt(new + d.suspend, new),
                    )?;
                    let secondary = self.draw_count(self.s.dirty.secondary_mean as f64);
                    let list = self.sample_hot(secondary);
                    dirty_pfns = list.len() as u64;
                    content::dirty_pfn_list(&mut self.buf, &list);
                    let at = At::EndAt(suspended + d.dirty_sync, suspended);
                    let (_, listed) = self.send_record(Reverse, Layer::Libxc, at, 0)?;
                    ev[0] = Some(new);
                    ev[1] = Some(suspended);
                    ev[2] = Some(listed);
                    // The primary sends the union of both sides' dirty pages.
                    let primary = self.draw_count(self.s.dirty.primary_mean as f64);
                    let own = self.sample_hot(primary);
                    (listed, merge(&list, &own))
                } else {
                    let primary = self.draw_count(self.s.dirty.primary_mean as f64);
                    (anchor + run + d.suspend, self.sample_hot(primary))
                };
                let (pages_sent, end) = self.checkpoint_memory(pfns, start, &d)?;
                sent = pages_sent;
                libxc_end = end;
            }
            ev[3] = Some(libxc_end);
            let end = self.device(libxc_end, d.device, LibxlType::CheckpointEnd)?;
            ev[4] = Some(end);
            let anchor = if colo {
                let ready =
                    self.control(Reverse, control::SVM_READY, At::EndAt(end + d.apply, end))?;
                let resumed = self.control(
                    Reverse,
                    control::SVM_RESUMED,
                    At::EndAt(ready + d.resume, ready),
                )?;
                ev[5] = Some(ready);
                ev[6] = Some(resumed);
                resumed
            } else {
                end
            };
            previous = (anchor, d.run);
            let offset = self.lanes[0].offset;
            self.m.checkpoints.push(CheckpointTruth {
                index: k,
                events: ev,
                pages: sent.pages,
                pfns: sent.pfns,
                dirty_pfns,
                forward_bytes: offset - last_offset,
                vmstate_size: 0,
                device_sections: 0,
            });
            last_offset = offset;
            self.epoch += 1;
        }
        Ok(())
    }

    /// The memory phase of a checkpoint k >= 1: `pfns` as PAGE_DATA from
    /// `start`, the CPU records, libxc CHECKPOINT. A memory stall slows the
    /// page writes so that CHECKPOINT ends exactly `memory` after `start`.
    /// Returns what was sent and CHECKPOINT's end.
    fn checkpoint_memory(
        &mut self,
        pfns: Vec<u64>,
        start: u64,
        d: &Durations,
    ) -> io::Result<(Sent, u64)> {
        let mut natural = d.cpu + self.cpu_tail_ns;
        let mut total_bytes = 0;
        for chunk in pfns.chunks(MAX_BATCH) {
            let len = 8 + self.pages.page_data_len(chunk);
            total_bytes += len;
            natural += self.transfer_ns(len);
        }
        let target = d.memory.map(|m| start.saturating_add(m));
        let extra = target.map_or(0, |t| t.saturating_sub(start + natural));
        let source = PfnSource::List { pfns, at: 0 };
        let (span, sent) = self.send_pages(source, start, extra, total_bytes)?;
        let pages_end = span.map_or(start, |s| s.1);
        let end = self.close_libxc(pages_end + d.cpu, target, LibxcType::Checkpoint)?;
        Ok((sent, end))
    }
}

/// PAGE_DATA content sent: pfn entries, and those with a page of data.
#[derive(Debug, Clone, Copy, Default)]
struct Sent {
    pfns: u64,
    pages: u64,
}

/// The sorted union of two ascending pfn lists.
fn merge(a: &[u64], b: &[u64]) -> Vec<u64> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => {
                out.push(a[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(b[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

mod qemu;

#[cfg(test)]
mod tests;
