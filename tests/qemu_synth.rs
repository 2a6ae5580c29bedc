//! synth's QEMU scenarios read back: the raw streams through the decoder
//! (every item where the manifest says, no diagnostics), and captures
//! through the whole pipeline into the model, against the manifest: QEMU
//! COLO checkpoints (count, numbering from 1, every event time, phases,
//! pages, device-state size and sections, bytes), injected stalls with
//! their phase, awaited event and owner (a zero window makes the
//! secondary own a stalled ram phase), partial checkpoints under loss, and
//! a plain QEMU precopy's passes and pages.
#![cfg(feature = "synth")]

use std::io::Cursor;

use migscope::capture::{FileSource, Next, Source};
use migscope::decode::qemu::QemuDecoder;
use migscope::decode::{Direction, Event};
use migscope::model::stall::StallKind;
use migscope::model::{CheckpointEvent, Model, Owner, Phase, Scheme, SessionKind, Thresholds};
use migscope::report::timeline::{self, Context};
use migscope::session::{Analyzer, CaptureStats, Config};
use migscope::synth::capture::{write_capture, CaptureManifest, CaptureOptions};
use migscope::synth::{generate, Scenario, StreamFiles};

const MS: u64 = 1_000_000;

fn qemu_colo(checkpoints: u32) -> Scenario {
    let mut s = Scenario {
        kind: migscope::synth::MigrationKind::QemuColo,
        ..Scenario::default()
    }
    .with_memory(4 << 20)
    .with_rounds(3)
    .with_checkpoints(checkpoints)
    .with_seed(11);
    // ~400 KiB of pages per checkpoint: more than the receive window.
    s.dirty.primary_mean = 100;
    s
}

/// A nanosecond capture of `s`.
fn capture(s: &Scenario, opts: &CaptureOptions) -> (Vec<u8>, CaptureManifest) {
    let opts = CaptureOptions {
        nanosecond: true,
        ..opts.clone()
    };
    write_capture(std::slice::from_ref(s), &opts, Vec::new()).unwrap()
}

fn model(file: &[u8]) -> (Model, CaptureStats) {
    let src = FileSource::from_reader(Box::new(Cursor::new(file.to_vec())), "t").unwrap();
    let mut src = Source::File(src);
    let mut an = Analyzer::new(Config::default(), Model::new());
    while let Next::Packet(p) = src.next_packet().unwrap() {
        an.packet(&p);
    }
    an.finish();
    let stats = an.stats();
    (an.into_observer(), stats)
}

fn stalls_of(
    m: &Model,
    stats: &CaptureStats,
) -> Vec<(StallKind, u64, Phase, CheckpointEvent, Owner)> {
    let t = Thresholds::default();
    let ctx = Context {
        source: "t",
        stats,
        problems: &[],
        thresholds: &t,
        capture_ended: true,
        worst: 5,
    };
    timeline::stalls(m, &ctx)
        .into_iter()
        .flatten()
        .map(|x| (x.kind, x.checkpoint, x.phase, x.waiting_for, x.owner))
        .collect()
}

#[test]
fn raw_qemu_streams_decode_item_by_item_where_the_manifest_says() {
    for s in [
        qemu_colo(3),
        Scenario {
            kind: migscope::synth::MigrationKind::Qemu,
            ..qemu_colo(1)
        },
    ] {
        let mut files = StreamFiles::new(Vec::new(), Vec::new());
        let man = generate(&s, &mut files).unwrap();
        let (fwd, rev) = files.into_inner();
        assert_eq!(man.forward_bytes, fwd.len() as u64);
        assert_eq!(man.reverse_bytes, rev.len() as u64);
        for (dir, bytes) in [(Direction::Forward, &fwd), (Direction::Reverse, &rev)] {
            let mut d = QemuDecoder::new(dir);
            let mut ev = Vec::new();
            for c in bytes.chunks(1000) {
                d.push(c, &mut ev);
            }
            d.finish(&mut ev);
            let diags: Vec<String> = ev
                .iter()
                .filter_map(|e| match e {
                    Event::Diagnostic(x) => Some(x.to_string()),
                    _ => None,
                })
                .collect();
            assert!(diags.is_empty(), "{} {dir:?}: {diags:?}", s.kind.name());
            // The decoder's items (but the FULL sections and EOF inside a
            // COLO device state, which the manifest holds as DEVICE_STATE)
            // are the manifest's, at the same offsets and lengths.
            let mut got: Vec<(u64, u64, &str)> = Vec::new();
            for e in &ev {
                let Some(i) = e.as_item() else { continue };
                if i.kind.name() == "DEVICE_STATE" {
                    got.retain(|g| g.0 < i.offset);
                }
                got.push((i.offset, i.wire_len, i.kind.name()));
            }
            let want: Vec<(u64, u64, &str)> = man
                .records
                .iter()
                .filter(|r| r.dir == dir)
                .map(|r| (r.offset, r.wire_len(), r.name))
                .collect();
            assert_eq!(got, want, "{} {dir:?}", s.kind.name());
        }
    }
}

#[test]
fn qemu_colo_checkpoints_and_stalls_equal_the_ground_truth() {
    let s = qemu_colo(8)
        .with_stall(3, Phase::Ram, 800 * MS)
        .with_stall(6, Phase::Loaded, 700 * MS)
        .with_stall(7, Phase::Reply, 300 * MS);
    let opts = CaptureOptions {
        zero_window: true,
        ..CaptureOptions::default()
    };
    let (file, truth) = capture(&s, &opts);
    let (m, stats) = model(&file);
    assert_eq!(m.sessions.len(), 1);
    let sm = &m.sessions[0];
    assert_eq!(sm.kind(), SessionKind::QemuColo);
    let st = &truth.sessions[0];
    let man = &st.stream;
    assert!(man.qemu && man.colo);
    assert_eq!(sm.checkpoints.len(), 8);
    assert_eq!(man.checkpoints.len(), 8);
    for (c, t) in sm.checkpoints.iter().zip(&man.checkpoints) {
        assert_eq!(c.index, u64::from(t.index));
        assert!(c.complete(Scheme::QemuColo), "checkpoint {}", c.index);
        let want: Vec<Option<u64>> = t
            .events
            .iter()
            .map(|e| e.map(|x| x + st.time_offset_ns))
            .collect();
        assert_eq!(c.events.to_vec(), want, "checkpoint {} events", c.index);
        for p in Phase::QEMU_COLO {
            assert_eq!(
                c.phase(p, Scheme::QemuColo),
                man.phase_ns(t.index, p),
                "checkpoint {} {p}",
                c.index
            );
        }
        assert_eq!(c.pages, t.pages, "checkpoint {} pages", c.index);
        assert!(t.pages > 0);
        assert_eq!(
            c.vmstate_size,
            Some(t.vmstate_size),
            "checkpoint {}",
            c.index
        );
        assert_eq!(c.device_sections, t.device_sections);
        assert_eq!(c.bytes, t.forward_bytes, "checkpoint {} bytes", c.index);
    }
    // The injected durations are exactly the phases'.
    assert_eq!(man.phase_ns(3, Phase::Ram), Some(800 * MS));
    assert_eq!(man.phase_ns(6, Phase::Loaded), Some(700 * MS));
    assert_eq!(man.phase_ns(7, Phase::Reply), Some(300 * MS));
    // The secondary closed its window on the forward flow for the stalled
    // ram phase.
    assert_eq!(st.directions[0].zero_window_episodes, 1);
    assert_eq!(st.directions[1].zero_window_episodes, 0);
    let found = stalls_of(&m, &stats);
    use CheckpointEvent as E;
    assert_eq!(
        found,
        vec![
            (
                StallKind::Slow,
                3,
                Phase::Ram,
                E::VmstateSize,
                Owner::Secondary
            ),
            (
                StallKind::Slow,
                6,
                Phase::Loaded,
                E::VmstateLoaded,
                Owner::Secondary
            ),
            (StallKind::Slow, 7, Phase::Reply, E::Reply, Owner::Secondary),
        ]
    );
}

#[test]
fn stalled_stop_and_ram_phases_without_a_zero_window_are_the_primarys() {
    let s = qemu_colo(4)
        .with_stall(2, Phase::Stop, 400 * MS)
        .with_stall(3, Phase::Ram, 500 * MS);
    let (file, truth) = capture(&s, &CaptureOptions::default());
    let (m, stats) = model(&file);
    assert_eq!(
        stalls_of(&m, &stats),
        vec![
            (
                StallKind::Slow,
                2,
                Phase::Stop,
                CheckpointEvent::VmstateSend,
                Owner::Primary
            ),
            (
                StallKind::Slow,
                3,
                Phase::Ram,
                CheckpointEvent::VmstateSize,
                Owner::Primary
            )
        ]
    );
    let man = &truth.sessions[0].stream;
    assert_eq!(man.phase_ns(2, Phase::Stop), Some(400 * MS));
    assert_eq!(man.phase_ns(3, Phase::Ram), Some(500 * MS));
}

#[test]
fn loss_leaves_checkpoints_partial_but_never_misnumbered() {
    let mut s = qemu_colo(16).with_seed(5);
    // Few pages: some checkpoints go through whole.
    s.dirty.primary_mean = 8;
    let opts = CaptureOptions {
        loss: 0.02,
        ..CaptureOptions::default()
    };
    let (file, truth) = capture(&s, &opts);
    let st = &truth.sessions[0];
    let lost: u64 = st.directions.iter().map(|d| d.lost_bytes).sum();
    assert!(lost > 0, "the capture lost something");
    let (m, _) = model(&file);
    let sm = &m.sessions[0];
    assert_eq!(sm.kind(), SessionKind::QemuColo);
    let mut partial = 0;
    let mut complete = 0;
    for c in &sm.checkpoints {
        let t = st
            .stream
            .checkpoint(c.index as u32)
            .unwrap_or_else(|| panic!("checkpoint {} exists", c.index));
        // Every event seen is this checkpoint's own: each message is one
        // segment, captured at its time or lost. The device state's end
        // is only known when the gap after its lost last byte is, later.
        let device = CheckpointEvent::DeviceState.slot();
        for (slot, e) in c.events.iter().enumerate() {
            let Some(x) = *e else { continue };
            let want = t.events[slot].unwrap() + st.time_offset_ns;
            if slot == device && c.damaged {
                let next = t.events[slot + 1].unwrap() + st.time_offset_ns;
                assert!(
                    (want..=next).contains(&x),
                    "checkpoint {} device state ends in its span",
                    c.index
                );
            } else {
                assert_eq!(x, want, "checkpoint {} slot {slot}", c.index);
            }
        }
        if c.complete(Scheme::QemuColo) {
            complete += 1;
            assert_eq!(c.pages, t.pages, "checkpoint {} pages", c.index);
            assert_eq!(c.vmstate_size, Some(t.vmstate_size));
        } else {
            partial += 1;
        }
    }
    assert!(partial > 0, "some checkpoints partial");
    assert!(complete > 0, "some checkpoints whole");
    let indices: Vec<u64> = sm.checkpoints.iter().map(|c| c.index).collect();
    assert_eq!(
        indices,
        (1..=16).collect::<Vec<u64>>(),
        "every checkpoint, numbered from 1"
    );
}

#[test]
fn a_plain_qemu_migration_has_its_passes_and_pages() {
    let s = Scenario {
        kind: migscope::synth::MigrationKind::Qemu,
        ..qemu_colo(1)
    }
    .with_rounds(4);
    let (file, truth) = capture(&s, &CaptureOptions::default());
    let (m, stats) = model(&file);
    let sm = &m.sessions[0];
    assert_eq!(sm.kind(), SessionKind::Qemu);
    let man = &truth.sessions[0].stream;
    assert!(man.qemu && !man.colo && man.checkpoints.is_empty());
    let q = sm.qemu_mig.as_ref().unwrap();
    assert_eq!(q.machine.as_deref(), Some("pc-i440fx-7.2"));
    assert_eq!(q.passes as usize, man.rounds.len());
    let pages: u64 = man.rounds.iter().map(|r| r.pages).sum();
    let zero: u64 = man.rounds.iter().map(|r| r.pfns - r.pages).sum();
    assert_eq!((q.pages, q.zero_pages), (pages, zero));
    assert_eq!(
        q.ram_size,
        Some((4 << 20) + (8 << 20) + (256 << 10) + (128 << 10))
    );
    assert!(q.final_stage().is_some());
    assert!(sm.checkpoints.is_empty());
    assert!(stalls_of(&m, &stats).is_empty());
}

#[test]
fn qemu_multifd_channels_join_the_main_stream_and_carry_its_pages() {
    let s = Scenario {
        kind: migscope::synth::MigrationKind::Qemu,
        ..qemu_colo(1)
    }
    .with_rounds(3)
    .with_multifd(3);
    let (file, truth) = capture(&s, &CaptureOptions::default());
    let st = &truth.sessions[0];
    let man = &st.stream;
    // The ground truth: three channels, ids 0-2, each with packets and a
    // SYNC per RAM section (and the setup's), all the pages with data.
    assert_eq!(man.multifd.len(), 3);
    let ids: Vec<u32> = man.multifd.iter().map(|c| c.id).collect();
    assert_eq!(ids, [0, 1, 2]);
    assert!(man.multifd.iter().all(|c| c.pages > 0 && c.syncs >= 2));
    let want_packets: u64 = man.multifd.iter().map(|c| c.packets).sum();
    let want_pages: u64 = man.multifd.iter().map(|c| c.pages).sum();
    let want_bytes: u64 = man.multifd.iter().map(|c| c.bytes).sum();
    let pages: u64 = man.rounds.iter().map(|r| r.pages).sum();
    let zero: u64 = man.rounds.iter().map(|r| r.pfns - r.pages).sum();
    assert_eq!(
        want_pages, pages,
        "every page with data goes over a channel"
    );
    // The capture: the migration connection's two directions, then one
    // connection per channel from its own port to the migration port.
    assert_eq!(st.directions.len(), 2 + 3);
    let main = &st.directions[0];
    let mut ports = vec![main.src_port];
    for (d, c) in st.directions[2..].iter().zip(&man.multifd) {
        assert_eq!(d.connection, migscope::synth::capture::Connection::Multifd);
        assert_eq!(d.dir, Direction::Forward);
        assert_eq!((d.dst, d.dst_port), (main.dst, main.dst_port));
        assert_eq!(d.src, main.src);
        assert_eq!(d.total_bytes, c.bytes);
        ports.push(d.src_port);
    }
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 4, "distinct client ports");

    // Through the library: three qemu-multifd sessions joined to the main one.
    let (m, stats) = model(&file);
    assert_eq!(m.sessions.len(), 4);
    let main: Vec<_> = m
        .sessions
        .iter()
        .filter(|x| x.kind() == SessionKind::Qemu)
        .collect();
    assert_eq!(main.len(), 1);
    let sm = main[0];
    assert_eq!(sm.info.primary.port, st.directions[0].src_port);
    let channels: Vec<_> = m
        .sessions
        .iter()
        .filter(|x| x.kind() == SessionKind::QemuMultifd)
        .collect();
    assert_eq!(channels.len(), 3);
    for c in &channels {
        assert_eq!(c.info.multifd_of, Some(sm.info.id));
        // Each channel's own count is its manifest entry's, by client port.
        let k = st.directions[2..]
            .iter()
            .position(|d| d.src_port == c.info.primary.port)
            .expect("a channel of the manifest");
        let q = c.qemu_mig.as_ref().unwrap();
        let t = &man.multifd[k];
        assert_eq!(
            (q.multifd_channels, q.multifd_packets, q.multifd_pages),
            (1, t.packets, t.pages),
            "channel {k}"
        );
        assert_eq!(q.multifd_bytes + 64, t.bytes, "channel {k} bytes");
    }
    let (channels, packets, pages, bytes) = m.multifd_totals(sm.info.id);
    assert_eq!(
        (channels, packets, pages, bytes + 3 * 64),
        (3, want_packets, want_pages, want_bytes)
    );
    // The main stream: no PAGE records, its zero pages all there.
    let q = sm.qemu_mig.as_ref().unwrap();
    assert_eq!(q.pages, 0);
    assert_eq!(q.zero_pages, zero);
    assert!(q.final_stage().is_some());
    assert!(stalls_of(&m, &stats).is_empty());
}

#[test]
fn multifd_is_refused_where_it_is_not_generated() {
    let colo = qemu_colo(2).with_multifd(2);
    assert_eq!(
        colo.validate().unwrap_err().to_string(),
        "multifd channels come with a plain QEMU migration (--scenario qemu), not qemu-colo: QEMU 7.2's COLO does not run multifd"
    );
    let many = Scenario {
        kind: migscope::synth::MigrationKind::Qemu,
        ..qemu_colo(1)
    }
    .with_multifd(65);
    assert!(many.validate().is_err());
    // The raw streams hold the migration connection only.
    let s = Scenario {
        kind: migscope::synth::MigrationKind::Qemu,
        ..qemu_colo(1)
    }
    .with_multifd(2);
    let mut files = StreamFiles::new(Vec::new(), Vec::new());
    let man = generate(&s, &mut files).unwrap();
    let (fwd, _) = files.into_inner();
    assert_eq!(man.forward_bytes, fwd.len() as u64);
    assert_eq!(&fwd[..4], b"QEVM");
}
