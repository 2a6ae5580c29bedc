//! Unit tests of the parent module.
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

impl StreamSink for Capture {
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
        RecordType::Libxl(LibxlType::End | LibxlType::LibxcContext | LibxlType::CheckpointEnd)
        | RecordType::Libxc(LibxcType::End | LibxcType::Checkpoint | LibxcType::StaticDataEnd) => {
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
fn walk_forward(bytes: &[u8], m: &Manifest, kind: MigrationKind) -> Vec<Walked> {
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
            (Layer::Libxl, "CHECKPOINT_END") if kind == MigrationKind::Remus => Layer::Libxc,
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
        .filter(|w| w.0 == Forward && w.2 > cp.events[2].unwrap() && w.2 <= cp.events[3].unwrap())
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
