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
    CheckpointTruth, Guest, Kind, Manifest, ManifestRecord, Phase, RoundTruth, Scenario, Sink,
    Write,
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
    sink: &'a mut dyn Sink,
    /// The record being built; reused for every write.
    buf: Vec<u8>,
    /// pfns of the PAGE_DATA record being built.
    batch: Vec<u64>,
    pages: Pages,
    lanes: [Lane; 2],
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
    pub(super) fn new(s: &'a Scenario, sink: &'a mut dyn Sink) -> Self {
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
            content,
            time,
            stalls: s.stalls.iter().map(|&(k, p, d)| ((k, p), d)).collect(),
            epoch: 0,
            hot: Vec::new(),
            cpu_tail_ns: 0,
            m: Manifest {
                colo: s.kind == Kind::Colo,
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
            data: &self.buf,
        })?;
        lane.offset += len;
        lane.free_ns = end;
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
        let colo = self.s.kind == Kind::Colo;
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

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashSet};

    use byteorder::{ByteOrder, LittleEndian};

    use super::super::content::{self, page_type};
    use super::super::*;
    use crate::decode::wire::{Layer, LibxcType, LibxlType, RecordHeader, RecordType};
    use crate::decode::Direction::{self, Forward, Reverse};

    /// Keeps every write's timing and the bytes of both directions.
    #[derive(Default)]
    struct Capture {
        writes: Vec<(Direction, u64, u64, u64)>,
        fwd: Vec<u8>,
        rev: Vec<u8>,
    }

    impl Sink for Capture {
        fn write(&mut self, w: &Write<'_>) -> io::Result<()> {
            self.writes
                .push((w.dir, w.start_ns, w.end_ns, w.data.len() as u64));
            match w.dir {
                Forward => self.fwd.extend_from_slice(w.data),
                Reverse => self.rev.extend_from_slice(w.data),
            }
            Ok(())
        }
    }

    fn capture(s: &Scenario) -> (Capture, Manifest) {
        let mut c = Capture::default();
        let m = generate(s, &mut c).unwrap();
        (c, m)
    }

    /// A small guest so that tests stay fast.
    fn small(base: Scenario) -> Scenario {
        let mut s = base
            .with_memory(16 << 20)
            .with_rounds(3)
            .with_checkpoints(4)
            .with_seed(11);
        s.dirty.primary_mean = 300;
        s.dirty.secondary_mean = 200;
        s
    }

    fn all_small() -> Vec<Scenario> {
        vec![
            small(Scenario::plain()),
            small(Scenario::plain()).with_xl(true),
            small(Scenario::plain()).with_xl(true).with_libxc_version(2),
            small(Scenario::plain_pv()).with_xl(true).with_vcpus(3),
            small(Scenario::plain_pv()).with_libxc_version(2),
            small(Scenario::remus()),
            small(Scenario::remus()).with_guest(Guest::Pv).with_xl(true),
            small(Scenario::colo()),
            small(Scenario::colo()).with_xl(true).with_vcpus(4),
        ]
    }

    /// An item found by walking the bytes.
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Walked {
        offset: u64,
        layer: Layer,
        name: &'static str,
        body_length: u32,
    }

    fn walked(r: &ManifestRecord) -> Walked {
        Walked {
            offset: r.offset,
            layer: r.layer,
            name: r.name,
            body_length: r.body_length,
        }
    }

    /// Checks one record at `pos` (framing, padding, per-type invariants) and
    /// returns its header and name.
    fn check_record(
        bytes: &[u8],
        pos: usize,
        start: usize,
        layer: Layer,
    ) -> (RecordHeader, &'static str) {
        assert_eq!(
            (pos - start) % 8,
            0,
            "record at {pos} misaligned for its layer"
        );
        let h = RecordHeader::parse(&bytes[pos..]).expect("header in bounds");
        let rt = RecordType::of(layer, h.rtype).unwrap();
        assert!(
            rt.is_known(),
            "unknown {layer} type {:#x} at {pos}",
            h.rtype
        );
        let body_end = pos + 8 + h.body_length as usize;
        let end = pos + h.total_len() as usize;
        assert!(end <= bytes.len(), "record at {pos} runs past the stream");
        assert!(
            bytes[body_end..end].iter().all(|&b| b == 0),
            "padding not zero at {pos}"
        );
        let body = &bytes[pos + 8..body_end];
        match rt {
            RecordType::Libxl(LibxlType::CheckpointState) => {
                assert_eq!(h.body_length, 4);
                assert_eq!(end - pos, 16);
                assert_eq!(&bytes[pos..pos + 8], &[5, 0, 0, 0, 4, 0, 0, 0]);
                assert!(LittleEndian::read_u32(body) <= 3);
            }
            RecordType::Libxl(
                LibxlType::End | LibxlType::LibxcContext | LibxlType::CheckpointEnd,
            )
            | RecordType::Libxc(
                LibxcType::End | LibxcType::Checkpoint | LibxcType::StaticDataEnd,
            ) => {
                assert_eq!(h.body_length, 0)
            }
            RecordType::Libxc(LibxcType::PageData) => {
                let count = LittleEndian::read_u32(body) as usize;
                assert!((1..=1024).contains(&count));
                assert_eq!(LittleEndian::read_u32(&body[4..]), 0);
                let entries: Vec<u64> = (0..count)
                    .map(|i| LittleEndian::read_u64(&body[8 + 8 * i..]))
                    .collect();
                let data = entries
                    .iter()
                    .filter(|&&e| page_type::has_data(e >> 60))
                    .count();
                assert_eq!(h.body_length as usize, 8 + 8 * count + 4096 * data);
                assert!(entries
                    .windows(2)
                    .all(|w| (w[0] & page_type::PFN_MASK) < (w[1] & page_type::PFN_MASK)));
                assert!(
                    entries.iter().all(|e| e >> 52 & 0xff == 0),
                    "reserved bits set"
                );
            }
            RecordType::Libxc(LibxcType::CheckpointDirtyPfnList) => {
                assert_eq!(h.body_length % 8, 0);
                let pfns: Vec<u64> = body.chunks(8).map(LittleEndian::read_u64).collect();
                assert!(pfns.windows(2).all(|w| w[0] < w[1]));
            }
            RecordType::Libxc(LibxcType::X86CpuidPolicy) => assert_eq!(h.body_length % 24, 0),
            RecordType::Libxc(LibxcType::X86MsrPolicy) => assert_eq!(h.body_length % 16, 0),
            RecordType::Libxc(LibxcType::HvmParams) => {
                let count = LittleEndian::read_u32(body) as usize;
                assert_eq!(h.body_length as usize, 8 + 16 * count);
            }
            RecordType::Libxc(LibxcType::X86TscInfo) => assert_eq!(h.body_length, 24),
            RecordType::Libxc(LibxcType::SharedInfo) => assert_eq!(h.body_length, 4096),
            RecordType::Libxc(LibxcType::X86PvInfo) => assert_eq!(body, &[8, 4, 0, 0, 0, 0, 0, 0]),
            RecordType::Libxl(LibxlType::EmulatorContext) => {
                assert_eq!(LittleEndian::read_u32(body), 2);
                assert_eq!(&body[8..12], b"QEVM");
            }
            RecordType::Libxl(LibxlType::EmulatorXenstoreData) => {
                assert_eq!(LittleEndian::read_u32(body), 2);
                assert_eq!(body.last(), Some(&0));
                assert_eq!(body[8..].iter().filter(|&&b| b == 0).count() % 2, 0);
            }
            _ => {}
        }
        (h, rt.name())
    }

    /// Walks the forward stream with the layer state machine of PROTOCOL.md
    /// section 5, starting at the libxl header the manifest points to.
    fn walk_forward(bytes: &[u8], m: &Manifest, kind: Kind) -> Vec<Walked> {
        let header = m
            .records
            .iter()
            .find(|r| r.dir == Forward && r.name == "HEADER")
            .expect("a libxl header");
        let start = header.offset as usize;
        assert_eq!(&bytes[start..start + 8], b"LibxlFmt");
        let mut out = vec![walked(header)];
        let mut pos = start + 16;
        let mut layer = Layer::Libxl;
        let mut libxc_headers = false;
        while pos < bytes.len() {
            if layer == Layer::Libxc && !libxc_headers {
                assert_eq!(
                    &bytes[pos..pos + 12],
                    b"\xff\xff\xff\xff\xff\xff\xff\xffXENF"
                );
                for (name, len) in [("IMAGE_HEADER", 24), ("DOMAIN_HEADER", 16)] {
                    out.push(Walked {
                        offset: pos as u64,
                        layer,
                        name,
                        body_length: len,
                    });
                    pos += len as usize;
                }
                libxc_headers = true;
                continue;
            }
            let (h, name) = check_record(bytes, pos, start, layer);
            out.push(Walked {
                offset: pos as u64,
                layer,
                name,
                body_length: h.body_length,
            });
            let body = &bytes[pos + 8..];
            pos += h.total_len() as usize;
            layer = match (layer, name) {
                (Layer::Libxl, "LIBXC_CONTEXT") => Layer::Libxc,
                (Layer::Libxc, "END" | "CHECKPOINT") => Layer::Libxl,
                (Layer::Libxl, "CHECKPOINT_END") if kind == Kind::Remus => Layer::Libxc,
                (Layer::Libxl, "CHECKPOINT_STATE") => {
                    assert_eq!(LittleEndian::read_u32(body), 0, "only NEW goes forward");
                    Layer::Libxc
                }
                (Layer::Libxl, "END") => break,
                (l, _) => l,
            };
        }
        out
    }

    /// Walks the reverse stream: banner, then back-channel records (COLO).
    fn walk_reverse(bytes: &[u8], m: &Manifest) -> Vec<Walked> {
        let mut out = Vec::new();
        let mut pos = 0;
        if let Some(b) = m.records.iter().find(|r| r.name == "BANNER") {
            assert_eq!(b.offset, 0);
            assert_eq!(&bytes[..54], content::BANNER);
            out.push(walked(b));
            pos = 54;
        }
        let start = pos;
        for r in m
            .records
            .iter()
            .filter(|r| r.dir == Reverse && r.layer != Layer::Xl)
        {
            let _ = r;
            let h = RecordHeader::parse(&bytes[pos..]).unwrap();
            let layer = if h.rtype == 5 {
                Layer::Libxl
            } else {
                Layer::Libxc
            };
            let (h, name) = check_record(bytes, pos, start, layer);
            out.push(Walked {
                offset: pos as u64,
                layer,
                name,
                body_length: h.body_length,
            });
            pos += h.total_len() as usize;
        }
        out
    }

    /// Manifest items tile each direction exactly, in time order.
    fn check_manifest_tiles(c: &Capture, m: &Manifest) {
        assert_eq!(m.forward_bytes, c.fwd.len() as u64);
        assert_eq!(m.reverse_bytes, c.rev.len() as u64);
        for (dir, total) in [(Forward, c.fwd.len() as u64), (Reverse, c.rev.len() as u64)] {
            let mut at = 0;
            let mut last_end = 0;
            for r in m.records.iter().filter(|r| r.dir == dir) {
                assert_eq!(
                    r.offset, at,
                    "{:?} {} does not follow its predecessor",
                    dir, r.name
                );
                assert!(
                    r.end_ns >= last_end,
                    "{:?} {} ends before its predecessor",
                    dir,
                    r.name
                );
                at += r.wire_len();
                last_end = r.end_ns;
            }
            assert_eq!(at, total, "{dir:?} manifest does not cover the stream");
        }
        assert!(m.records.windows(2).all(|w| w[0].end_ns <= w[1].end_ns));
        // Every item ends with some write of its direction.
        let ends: HashSet<(Direction, u64)> = c.writes.iter().map(|w| (w.0, w.2)).collect();
        for r in &m.records {
            assert!(
                ends.contains(&(r.dir, r.end_ns)),
                "{} end is not a write end",
                r.name
            );
        }
    }

    /// Writes last at least their transfer time and never overlap per direction.
    fn check_writes(c: &Capture, s: &Scenario) {
        for dir in [Forward, Reverse] {
            let mut free = 0;
            for &(_, start, end, len) in c.writes.iter().filter(|w| w.0 == dir) {
                assert!(end >= start);
                assert!(start >= free, "{dir:?} writes overlap");
                assert!(end - start >= s.timing.transfer_ns(len));
                assert!(len > 0);
                free = end;
            }
        }
    }

    fn check_stream(s: &Scenario) -> (Capture, Manifest) {
        let (c, m) = capture(s);
        check_writes(&c, s);
        check_manifest_tiles(&c, &m);
        let expected: Vec<Walked> = m
            .records
            .iter()
            .filter(|r| r.dir == Forward && r.layer != Layer::Xl)
            .map(walked)
            .collect();
        assert_eq!(walk_forward(&c.fwd, &m, s.kind), expected, "{s:?}");
        let expected: Vec<Walked> = m
            .records
            .iter()
            .filter(|r| r.dir == Reverse && (r.layer != Layer::Xl || r.name == "BANNER"))
            .map(walked)
            .collect();
        assert_eq!(walk_reverse(&c.rev, &m), expected);
        // xl items hold the documented bytes.
        for r in m.records.iter().filter(|r| r.layer == Layer::Xl) {
            let bytes = if r.dir == Forward { &c.fwd } else { &c.rev };
            let item = &bytes[r.offset as usize..(r.offset + r.wire_len()) as usize];
            match r.name {
                "BANNER" => assert_eq!(item, content::BANNER),
                "READY_TO_UNPAUSE" => assert_eq!(item, content::READY_TO_UNPAUSE),
                "CLEARED_TO_UNPAUSE" => assert_eq!(item, content::CLEARED_TO_UNPAUSE),
                "UNPAUSE_RESULT" => {
                    assert_eq!(&item[..39], content::UNPAUSE_RESULT);
                    assert_eq!(item[39], 0);
                }
                "SAVE_HEADER" => {
                    assert_eq!(&item[..32], crate::decode::xl::SAVE_MAGIC);
                    let opt_len = LittleEndian::read_u32(&item[44..48]) as usize;
                    assert_eq!(item.len(), 48 + opt_len);
                    let config_len = LittleEndian::read_u32(&item[48..52]) as usize;
                    assert_eq!(opt_len, 4 + config_len);
                    let json: serde_json::Value =
                        serde_json::from_slice(&item[52..item.len() - 1]).unwrap();
                    assert_eq!(json["c_info"]["name"], s.name.as_str());
                    assert_eq!(json["c_info"]["type"], s.guest.name());
                    assert_eq!(json["b_info"]["max_memkb"], s.memory / 1024);
                    assert_eq!(json["b_info"]["max_vcpus"], s.vcpus);
                }
                other => panic!("unexpected xl item {other}"),
            }
        }
        (c, m)
    }

    fn names(m: &Manifest, dir: Direction) -> Vec<&'static str> {
        m.records
            .iter()
            .filter(|r| r.dir == dir)
            .map(|r| r.name)
            .collect()
    }

    fn counts(m: &Manifest, dir: Direction) -> BTreeMap<(Layer, &'static str), usize> {
        let mut out = BTreeMap::new();
        for r in m.records.iter().filter(|r| r.dir == dir) {
            *out.entry((r.layer, r.name)).or_insert(0) += 1;
        }
        out
    }

    /// (start, end, pfn entries) of every forward PAGE_DATA record.
    fn page_records(c: &Capture, m: &Manifest) -> Vec<(u64, Vec<u64>)> {
        m.records
            .iter()
            .filter(|r| r.dir == Forward && r.name == "PAGE_DATA")
            .map(|r| {
                let body = &c.fwd[r.offset as usize + 8..];
                let count = LittleEndian::read_u32(body) as usize;
                let entries = (0..count)
                    .map(|i| LittleEndian::read_u64(&body[8 + 8 * i..]))
                    .collect();
                (r.end_ns, entries)
            })
            .collect()
    }

    #[test]
    fn every_scenario_frames_correctly() {
        for s in all_small() {
            check_stream(&s);
        }
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        for s in [
            small(Scenario::colo()).with_xl(true),
            small(Scenario::plain_pv()),
        ] {
            let (a, ma) = capture(&s);
            let (b, mb) = capture(&s);
            assert!(a.fwd == b.fwd && a.rev == b.rev);
            assert_eq!(a.writes, b.writes);
            assert_eq!(ma, mb);
            let (o, _) = capture(&s.clone().with_seed(12));
            assert!(a.fwd != o.fwd);
        }
    }

    #[test]
    fn timing_changes_times_not_bytes() {
        let base = small(Scenario::colo());
        let mut slow =
            base.clone()
                .with_bandwidth(125_000_000)
                .with_stall(2, Phase::Apply, 3_000_000_000);
        slow.timing.run_ns = 7_000_000;
        slow.timing.jitter = 0.0;
        let (a, ma) = capture(&base);
        let (b, mb) = capture(&slow);
        assert!(a.fwd == b.fwd && a.rev == b.rev);
        let strip = |m: &Manifest| m.records.iter().map(walked).collect::<Vec<_>>();
        assert_eq!(strip(&ma), strip(&mb));
        assert_ne!(ma.checkpoints, mb.checkpoints);
    }

    #[test]
    fn hand_counted_plain_hvm_with_xl() {
        let s = Scenario::plain()
            .with_memory(16 << 20)
            .with_vcpus(1)
            .with_rounds(1)
            .with_xl(true)
            .with_name("vm1");
        let (c, m) = check_stream(&s);
        let mut expected = vec![
            "SAVE_HEADER",
            "HEADER",
            "LIBXC_CONTEXT",
            "IMAGE_HEADER",
            "DOMAIN_HEADER",
            "X86_CPUID_POLICY",
            "X86_MSR_POLICY",
            "STATIC_DATA_END",
        ];
        expected.extend(["PAGE_DATA"; 4]); // 4096 pages in batches of 1024
        expected.extend([
            "X86_TSC_INFO",
            "HVM_CONTEXT",
            "HVM_PARAMS",
            "END",
            "EMULATOR_XENSTORE_DATA",
            "EMULATOR_CONTEXT",
            "END",
            "CLEARED_TO_UNPAUSE",
        ]);
        assert_eq!(names(&m, Forward), expected);
        assert_eq!(
            names(&m, Reverse),
            ["BANNER", "READY_TO_UNPAUSE", "UNPAUSE_RESULT"]
        );

        // Bytes, by hand. The first batch holds the 32 XTAB pfns of the VGA hole.
        let config = content::xl_config("vm1", true, 16 << 20, 1, s.seed).len() as u64;
        let page_data = (8 + 8 + 8 * 1024 + 992 * 4096) + 3 * (8 + 8 + 8 * 1024 + 1024 * 4096);
        // HEADER, CPU, 2 PIC, IOAPIC, LAPIC, LAPIC_REGS, PCI_IRQ, ISA_IRQ,
        // PCI_LINK, PIT, RTC, HPET, PMTIMER, MTRR, CPU_XSAVE, VMCE, TSC_ADJUST, END
        let hvm_context = 8 + [
            24, 1024, 8, 8, 400, 24, 1024, 16, 8, 8, 80, 24, 184, 8, 240, 856, 32, 8, 0,
        ]
        .iter()
        .map(|l| 8 + l)
        .sum::<u64>();
        assert_eq!(hvm_context, 8 + 4128);
        let xenstore = 8 + 208; // 8 + 199 bytes of strings, padded
        let emulator = 8 + 5632; // 5628, padded
        let expected_bytes = (48 + 4 + config)
            + 16
            + 8
            + 24
            + 16
            + (8 + 24 * 32)
            + (8 + 16 * 2)
            + 8
            + page_data
            + (8 + 24)
            + hvm_context
            + (8 + 8 + 16 * 12)
            + 8
            + xenstore
            + emulator
            + 8
            + 44;
        assert_eq!(m.forward_bytes, expected_bytes);
        assert_eq!(c.fwd.len() as u64, expected_bytes);
        assert_eq!(m.reverse_bytes, 54 + 34 + 40);
        assert_eq!(m.rounds.len(), 1);
        assert_eq!(m.rounds[0].pfns, 4096);
        assert_eq!(
            m.rounds[0].pages,
            4096 - 32,
            "the XTAB hole carries no pages"
        );
        assert!(m.checkpoints.is_empty());
    }

    #[test]
    fn hand_counted_colo() {
        let mut s = Scenario::colo()
            .with_memory(16 << 20)
            .with_vcpus(1)
            .with_rounds(1)
            .with_checkpoints(3);
        s.dirty.jitter = 0.0;
        s.dirty.primary_mean = 1500;
        s.dirty.secondary_mean = 0;
        let (_, m) = check_stream(&s);
        let fwd = counts(&m, Forward);
        let l = |name| (Layer::Libxl, name);
        let x = |name| (Layer::Libxc, name);
        let expected: BTreeMap<_, _> = [
            (l("HEADER"), 1),
            (l("LIBXC_CONTEXT"), 1),
            (x("IMAGE_HEADER"), 1),
            (x("DOMAIN_HEADER"), 1),
            (x("X86_CPUID_POLICY"), 1),
            (x("X86_MSR_POLICY"), 1),
            (x("STATIC_DATA_END"), 1),
            (x("PAGE_DATA"), 4 + 2 + 2), // 4096 pages, then 1500 twice
            (x("X86_TSC_INFO"), 3),
            (x("HVM_CONTEXT"), 3),
            (x("HVM_PARAMS"), 3),
            (x("CHECKPOINT"), 3),
            (l("EMULATOR_XENSTORE_DATA"), 3),
            (l("EMULATOR_CONTEXT"), 3),
            (l("CHECKPOINT_END"), 3),
            (l("CHECKPOINT_STATE"), 2), // NEW for checkpoints 1 and 2
        ]
        .into_iter()
        .collect();
        assert_eq!(fwd, expected);
        let rev = counts(&m, Reverse);
        // checkpoint 0: READY, RESUMED; 1 and 2: SUSPENDED, READY, RESUMED.
        let expected: BTreeMap<_, _> = [
            (l("CHECKPOINT_STATE"), 2 + 3 + 3),
            (x("CHECKPOINT_DIRTY_PFN_LIST"), 2),
        ]
        .into_iter()
        .collect();
        assert_eq!(rev, expected);
        let lists: Vec<u32> = m
            .records
            .iter()
            .filter(|r| r.name == "CHECKPOINT_DIRTY_PFN_LIST")
            .map(|r| r.body_length)
            .collect();
        assert_eq!(lists, [0, 0], "an empty dirty list is a bare header");
        let pfns: Vec<u64> = m.checkpoints.iter().map(|c| c.pfns).collect();
        assert_eq!(pfns, [4096, 1500, 1500]);
        let pages: Vec<u64> = m.checkpoints.iter().map(|c| c.pages).collect();
        assert_eq!(pages, [4096 - 32, 1500, 1500]);
        assert!(m.checkpoints.iter().all(|c| c.dirty_pfns == 0));
        assert_eq!(
            m.checkpoints.iter().map(|c| c.forward_bytes).sum::<u64>(),
            m.forward_bytes
        );
    }

    #[test]
    fn hand_counted_remus_pv() {
        let mut s = Scenario::remus()
            .with_guest(Guest::Pv)
            .with_memory(8 << 20)
            .with_vcpus(2)
            .with_rounds(2)
            .with_checkpoints(2)
            .with_libxc_version(2);
        s.dirty.jitter = 0.0;
        s.dirty.primary_mean = 100;
        let (_, m) = check_stream(&s);
        let round2 = m.rounds[1].pages;
        assert_eq!(m.rounds[0].pages, 2048);
        let page_records = 2 + round2.div_ceil(1024) + 1;
        let mut expected = vec![
            "HEADER",
            "LIBXC_CONTEXT",
            "IMAGE_HEADER",
            "DOMAIN_HEADER",
            "X86_PV_INFO",
            "X86_PV_P2M_FRAMES",
        ];
        let cpu = [
            "X86_TSC_INFO",
            "SHARED_INFO",
            "X86_PV_VCPU_BASIC",
            "X86_PV_VCPU_EXTENDED",
            "X86_PV_VCPU_XSAVE",
            "X86_PV_VCPU_MSRS",
            "X86_PV_VCPU_BASIC",
            "X86_PV_VCPU_EXTENDED",
            "X86_PV_VCPU_XSAVE",
            "X86_PV_VCPU_MSRS",
            "CHECKPOINT",
            "CHECKPOINT_END",
        ];
        expected.extend(std::iter::repeat("PAGE_DATA").take(page_records as usize - 1));
        expected.extend(cpu);
        expected.push("PAGE_DATA");
        expected.extend(cpu);
        assert_eq!(names(&m, Forward), expected);
        assert!(names(&m, Reverse).is_empty());
        let p2m = m
            .records
            .iter()
            .find(|r| r.name == "X86_PV_P2M_FRAMES")
            .unwrap();
        assert_eq!(p2m.body_length, 8 + 8 * 4); // 2048 pages, 512 per frame
        assert_eq!(m.checkpoints[1].pages, 100);
        assert_eq!(m.checkpoints[1].events.iter().flatten().count(), 2);
    }

    #[test]
    fn live_rounds_ascend_and_shrink() {
        let s = Scenario::plain()
            .with_memory(64 << 20)
            .with_rounds(5)
            .with_seed(3);
        let (c, m) = capture(&s);
        assert_eq!(m.rounds.len(), 5);
        assert_eq!(m.rounds[0].pfns, 16384);
        assert!(m.rounds[0].pages < 16384);
        assert!(m.rounds.windows(2).all(|w| w[1].pfns <= w[0].pfns));
        assert!(m.rounds[1].pages < 16384 / 5);
        assert!(m.rounds.windows(2).all(|w| w[1].start_ns > w[0].end_ns));
        let records = page_records(&c, &m);
        for (i, round) in m.rounds.iter().enumerate() {
            let entries: Vec<u64> = records
                .iter()
                .filter(|(end, _)| (round.start_ns..=round.end_ns).contains(end))
                .flat_map(|(_, e)| e.iter().copied())
                .collect();
            assert_eq!(entries.len() as u64, round.pfns);
            let pfns: Vec<u64> = entries.iter().map(|e| e & page_type::PFN_MASK).collect();
            assert!(
                pfns.windows(2).all(|w| w[0] < w[1]),
                "round {} not ascending",
                i + 1
            );
            let xtab: Vec<u64> = entries
                .iter()
                .filter(|e| *e >> 60 == page_type::XTAB)
                .map(|e| e & page_type::PFN_MASK)
                .collect();
            if i == 0 {
                assert_eq!(pfns, (0..16384).collect::<Vec<_>>());
                assert_eq!(xtab, (0xa0..0xc0).collect::<Vec<_>>());
            } else {
                assert!(xtab.is_empty());
            }
        }
    }

    #[test]
    fn pv_streams_carry_page_tables() {
        let s = small(Scenario::plain_pv()).with_rounds(1);
        let (c, m) = capture(&s);
        let types: HashSet<u64> = page_records(&c, &m)
            .iter()
            .flat_map(|(_, e)| e.iter().map(|e| e >> 60))
            .collect();
        for t in [0, 1, 2, 3, 4, 9, 10, 11, 12] {
            assert!(types.contains(&t), "type {t:#x} missing");
        }
        let order = names(&m, Forward);
        let first_pages = order.iter().position(|&n| n == "PAGE_DATA").unwrap();
        assert_eq!(order[first_pages - 1], "X86_PV_P2M_FRAMES");
        assert_eq!(order[first_pages - 2], "STATIC_DATA_END");
        assert_eq!(order[4], "X86_PV_INFO");
        assert!(!order.contains(&"EMULATOR_CONTEXT"));
    }

    #[test]
    fn version_2_has_no_static_data_end() {
        let (c, m) = capture(&small(Scenario::plain()).with_libxc_version(2));
        let order = names(&m, Forward);
        assert!(!order.contains(&"STATIC_DATA_END"));
        assert!(!order.contains(&"X86_CPUID_POLICY"));
        assert_eq!(order[4], "PAGE_DATA");
        let image = m.records.iter().find(|r| r.name == "IMAGE_HEADER").unwrap();
        assert_eq!(
            &c.fwd[image.offset as usize + 12..image.offset as usize + 16],
            &[0, 0, 0, 2]
        );
    }

    #[test]
    fn colo_events_are_ordered_and_dirty_lists_are_sent() {
        let s = small(Scenario::colo()).with_checkpoints(6);
        let (c, m) = capture(&s);
        assert_eq!(m.checkpoints.len(), 6);
        for (k, cp) in m.checkpoints.iter().enumerate() {
            assert_eq!(cp.index as usize, k);
            let present: Vec<u64> = cp.events.iter().flatten().copied().collect();
            if k == 0 {
                assert!(cp.events[..3].iter().all(Option::is_none));
                assert_eq!(present.len(), 4);
            } else {
                assert_eq!(present.len(), 7);
                let previous = m.checkpoints[k - 1].events[6].unwrap();
                assert!(previous < cp.events[0].unwrap());
            }
            assert!(
                present.windows(2).all(|w| w[0] < w[1]),
                "checkpoint {k}: {:?}",
                cp.events
            );
        }
        // Every pfn of a secondary's dirty list is sent forward in that checkpoint.
        let pages = page_records(&c, &m);
        let lists: Vec<&ManifestRecord> = m
            .records
            .iter()
            .filter(|r| r.name == "CHECKPOINT_DIRTY_PFN_LIST")
            .collect();
        assert_eq!(lists.len(), 5);
        for (k, list) in (1..).zip(lists) {
            let cp = &m.checkpoints[k];
            assert_eq!(list.end_ns, cp.events[2].unwrap());
            assert_eq!(u64::from(list.body_length) / 8, cp.dirty_pfns);
            let sent: HashSet<u64> = pages
                .iter()
                .filter(|(end, _)| (cp.events[2].unwrap()..=cp.events[3].unwrap()).contains(end))
                .flat_map(|(_, e)| e.iter().map(|e| e & page_type::PFN_MASK))
                .collect();
            assert_eq!(sent.len() as u64, cp.pages);
            let body = &c.rev[list.offset as usize + 8..][..list.body_length as usize];
            for pfn in body.chunks(8).map(LittleEndian::read_u64) {
                assert!(sent.contains(&pfn));
            }
            assert!(cp.pages >= cp.dirty_pfns);
        }
    }

    #[test]
    fn stalls_are_reproduced_exactly() {
        let stalls = [
            (1, Phase::Suspend, 150_000_000),
            (1, Phase::Apply, 2_300_000_000),
            (1, Phase::Run, 1_000_000_000),
            (2, Phase::DirtySync, 77_777_777),
            (2, Phase::Memory, 500_000_000),
            (3, Phase::Device, 1_234_567),
            (3, Phase::Resume, 42_000_000),
            (0, Phase::Apply, 5_000_000_000),
        ];
        let mut s = small(Scenario::colo()).with_checkpoints(5);
        for &(k, p, d) in &stalls {
            s = s.with_stall(k, p, d);
        }
        let (c, m) = check_stream(&s);
        for &(k, p, d) in &stalls {
            assert_eq!(m.phase_ns(k, p), Some(d), "checkpoint {k} {p}");
        }
        // Unstalled phases keep their jittered means.
        let t = &s.timing;
        for k in 1..4 {
            for p in [
                Phase::Suspend,
                Phase::DirtySync,
                Phase::Device,
                Phase::Apply,
                Phase::Resume,
                Phase::Run,
            ] {
                if stalls.iter().any(|&(sk, sp, _)| sk == k && sp == p) {
                    continue;
                }
                let mean = t.mean(p).unwrap() as f64;
                let got = m.phase_ns(k, p).unwrap() as f64;
                assert!(
                    (mean * 0.79..=mean * 1.21).contains(&got),
                    "checkpoint {k} {p}: {got}"
                );
            }
        }
        // The memory stall slowed the page writes down.
        let cp = &m.checkpoints[2];
        let slow = c
            .writes
            .iter()
            .filter(|w| {
                w.0 == Forward && w.2 > cp.events[2].unwrap() && w.2 <= cp.events[3].unwrap()
            })
            .any(|w| w.2 - w.1 > 10 * t.transfer_ns(w.3));
        assert!(slow);
        // Without stalls, the bytes are the same.
        let (plain, _) = capture(&small(Scenario::colo()).with_checkpoints(5));
        assert!(plain.fwd == c.fwd && plain.rev == c.rev);
    }

    #[test]
    fn tiny_stalls_keep_causality() {
        let s = small(Scenario::colo())
            .with_stall(1, Phase::Suspend, 0)
            .with_stall(1, Phase::DirtySync, 0)
            .with_stall(1, Phase::Memory, 1)
            .with_stall(1, Phase::Device, 0)
            .with_stall(1, Phase::Apply, 0)
            .with_stall(1, Phase::Resume, 0)
            .with_stall(1, Phase::Run, 0);
        let (_, m) = check_stream(&s);
        let cp = &m.checkpoints[1];
        let present: Vec<u64> = cp.events.iter().flatten().copied().collect();
        assert_eq!(present.len(), 7);
        assert!(present.windows(2).all(|w| w[0] < w[1]), "{:?}", cp.events);
        // A reply lasts at least the transfer of its 16 bytes after its trigger.
        let state_ns = s.timing.transfer_ns(16);
        assert_eq!(m.phase_ns(1, Phase::Suspend), Some(state_ns));
        assert_eq!(m.phase_ns(1, Phase::Apply), Some(state_ns));
        assert_eq!(m.phase_ns(1, Phase::Resume), Some(state_ns));
        assert_eq!(m.phase_ns(1, Phase::Run), Some(state_ns));
        // The memory phase cannot beat the link.
        assert!(m.phase_ns(1, Phase::Memory).unwrap() > s.timing.transfer_ns(4096 * cp.pages));
    }

    #[test]
    fn extreme_but_valid_parameters() {
        let mut many_rounds = Scenario::plain().with_memory(1 << 20).with_rounds(12);
        many_rounds.dirty.live_shrink = 0.0;
        for s in [
            many_rounds,
            Scenario::plain_pv()
                .with_memory(1 << 20)
                .with_vcpus(64)
                .with_xl(true),
            Scenario::colo()
                .with_memory(1 << 20)
                .with_vcpus(128)
                .with_checkpoints(3),
            small(Scenario::remus()).with_checkpoints(1).with_rounds(1),
        ] {
            let (_, m) = check_stream(&s);
            assert!(m.rounds.iter().skip(1).all(|r| r.pages >= 1));
            assert_eq!(m.rounds.len(), s.rounds as usize);
        }
    }

    #[test]
    fn remus_stalls_move_checkpoints() {
        let s = small(Scenario::remus())
            .with_stall(1, Phase::Memory, 900_000_000)
            .with_stall(2, Phase::Device, 50_000_000);
        let (_, m) = check_stream(&s);
        assert_eq!(m.phase_ns(2, Phase::Device), Some(50_000_000));
        for cp in &m.checkpoints {
            assert!(cp.events[3].is_some() && cp.events[4].is_some());
            assert_eq!(cp.events.iter().flatten().count(), 2);
        }
        let gap = m.checkpoints[1].events[3].unwrap() - m.checkpoints[0].events[4].unwrap();
        assert!(gap >= 900_000_000);
    }

    #[test]
    fn zero_jitter_gives_the_means() {
        let mut s = small(Scenario::colo());
        s.timing.jitter = 0.0;
        let (_, m) = capture(&s);
        let t = &s.timing;
        for k in 1..3 {
            for p in [
                Phase::Suspend,
                Phase::DirtySync,
                Phase::Device,
                Phase::Apply,
                Phase::Resume,
                Phase::Run,
            ] {
                assert_eq!(m.phase_ns(k, p), t.mean(p), "checkpoint {k} {p}");
            }
        }
    }

    #[test]
    fn manifest_can_be_left_empty() {
        let mut s = small(Scenario::colo());
        s.manifest_records = false;
        let (c, m) = capture(&s);
        assert!(m.records.is_empty());
        assert_eq!(m.forward_bytes, c.fwd.len() as u64);
        assert_eq!(m.checkpoints.len(), 4);
    }

    #[test]
    fn manifest_serialises() {
        let (_, m) = capture(&small(Scenario::colo()).with_checkpoints(2));
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(json["records"][0]["layer"], "libxl");
        assert_eq!(json["records"][0]["name"], "HEADER");
        assert_eq!(json["checkpoints"][0]["events"][0], serde_json::Value::Null);
    }

    /// `cargo test --release --lib synth -- --ignored --nocapture` prints the
    /// generation speed of a 4 GiB plain migration into `io::sink`.
    #[test]
    #[ignore]
    fn throughput() {
        let s = Scenario::plain().with_memory(4 << 30);
        let start = std::time::Instant::now();
        let mut files = StreamFiles::new(io::sink(), io::sink());
        let m = generate(&s, &mut files).unwrap();
        let secs = start.elapsed().as_secs_f64();
        eprintln!(
            "{} bytes in {:.3} s: {:.2} GB/s",
            m.forward_bytes,
            secs,
            m.forward_bytes as f64 / secs / 1e9
        );
    }
}
