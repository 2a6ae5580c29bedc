//! The checkpoint model on synthesized captures, against synth's ground
//! truth: event times, phase durations, pages, bytes and dirty pfns per
//! checkpoint, live rounds, injected stalls (and no others), partial
//! checkpoints on damaged captures, and the same result however the
//! capture is read.
#![cfg(feature = "synth")]

use std::io::Cursor;

use migscope::capture::{FileSource, Next, Source};
use migscope::model::stall::StallKind;
use migscope::model::{CheckpointEvent, Model, Owner, Phase, Scheme, SessionKind, Thresholds};
use migscope::report::timeline::{self, Context, ReportFormat};
use migscope::session::{Analyzer, Config};
use migscope::synth::capture::{write_capture, CaptureManifest, CaptureOptions};
use migscope::synth::{self, Scenario};

/// A nanosecond capture of `s` (microseconds would round the event times).
fn capture(s: &Scenario, opts: &CaptureOptions) -> (Vec<u8>, CaptureManifest) {
    let opts = CaptureOptions {
        nanosecond: true,
        ..opts.clone()
    };
    write_capture(std::slice::from_ref(s), &opts, Vec::new()).unwrap()
}

/// Runs the model over a capture; `snapshot_every` > 0 writes a report every
/// that many packets along the way, as a live view would.
fn model(file: &[u8], snapshot_every: usize) -> (Model, migscope::session::CaptureStats) {
    let src = FileSource::from_reader(Box::new(Cursor::new(file.to_vec())), "t").unwrap();
    let mut src = Source::File(src);
    let mut an = Analyzer::new(Config::default(), Model::new());
    let mut n = 0;
    while let Next::Packet(p) = src.next_packet().unwrap() {
        an.packet(&p);
        n += 1;
        if snapshot_every > 0 && n % snapshot_every == 0 {
            let stats = an.stats();
            let ctx = ctx(&stats, false);
            timeline::write(
                an.observer(),
                &ctx,
                ReportFormat::Text,
                &mut std::io::sink(),
            )
            .unwrap();
        }
    }
    an.finish();
    let stats = an.stats();
    (an.into_observer(), stats)
}

fn ctx(stats: &migscope::session::CaptureStats, ended: bool) -> Context<'_> {
    static T: std::sync::OnceLock<Thresholds> = std::sync::OnceLock::new();
    Context {
        source: "t",
        stats,
        problems: &[],
        thresholds: T.get_or_init(Thresholds::default),
        capture_ended: ended,
        worst: 5,
    }
}

fn colo() -> Scenario {
    Scenario::colo()
        .with_xl(true)
        .with_memory(2 << 20)
        .with_checkpoints(30)
        .with_seed(17)
        .with_name("app-7")
}

const SYNTH_PHASES: [synth::Phase; 7] = [
    synth::Phase::Suspend,
    synth::Phase::DirtySync,
    synth::Phase::Memory,
    synth::Phase::Device,
    synth::Phase::Apply,
    synth::Phase::Resume,
    synth::Phase::Run,
];

#[test]
fn colo_event_times_phases_and_sizes_equal_the_ground_truth() {
    let s = colo();
    let (file, truth) = capture(&s, &CaptureOptions::default());
    let (m, _) = model(&file, 0);
    assert_eq!(m.sessions.len(), 1);
    let sm = &m.sessions[0];
    assert_eq!(sm.kind(), SessionKind::Colo);
    assert_eq!(sm.domain.name.as_deref(), Some("app-7"));
    assert_eq!(sm.domain.memory_kib, Some(2048));
    let st = &truth.sessions[0];
    let man = &st.stream;
    assert_eq!(sm.checkpoints.len(), man.checkpoints.len());
    for (c, t) in sm.checkpoints.iter().zip(&man.checkpoints) {
        assert_eq!(c.index, u64::from(t.index));
        assert!(
            c.complete(Scheme::XenColo),
            "checkpoint {} complete",
            c.index
        );
        let want: Vec<Option<u64>> = t
            .events
            .iter()
            .map(|e| e.map(|x| x + st.time_offset_ns))
            .collect();
        assert_eq!(c.events.to_vec(), want, "checkpoint {} events", c.index);
        for (p, sp) in Phase::ALL.iter().zip(SYNTH_PHASES) {
            assert_eq!(
                c.phase(*p, Scheme::XenColo),
                man.phase_ns(t.index, sp),
                "checkpoint {} {}",
                c.index,
                p.name()
            );
        }
        assert_eq!(c.pages, t.pages, "checkpoint {} pages", c.index);
        assert_eq!(c.bytes, t.forward_bytes, "checkpoint {} bytes", c.index);
        if c.index > 0 {
            assert_eq!(
                c.dirty_pfns, t.dirty_pfns,
                "checkpoint {} dirty pfns",
                c.index
            );
        }
    }
    // The initial migration's live rounds.
    assert_eq!(sm.rounds.len(), man.rounds.len());
    for (r, t) in sm.rounds.iter().zip(&man.rounds) {
        assert_eq!((r.index, r.pages), (t.index, t.pages));
        assert_eq!(
            r.end,
            t.end_ns + st.time_offset_ns,
            "round {} ends with its last PAGE_DATA",
            r.index
        );
    }
    let stats = m.sessions[0].stats.phase(Phase::Apply).unwrap();
    assert_eq!(stats.count, man.checkpoints.len() as u64);
    assert_eq!(
        m.sessions[0].stats.downtime.count(),
        man.checkpoints.len() as u64 - 1
    );
    let (_, cs) = model(&file, 0);
    let report = stalls_of(&m, &cs);
    assert!(
        report.is_empty(),
        "no stall injected, none reported: {report:?}"
    );
}

fn stalls_of(
    m: &Model,
    stats: &migscope::session::CaptureStats,
) -> Vec<(StallKind, u64, Phase, CheckpointEvent, Owner)> {
    let c = ctx(stats, true);
    timeline::stalls(m, &c)
        .into_iter()
        .flatten()
        .map(|x| (x.kind, x.checkpoint, x.phase, x.waiting_for, x.owner))
        .collect()
}

#[test]
fn every_injected_stall_is_found_with_its_phase_awaited_event_and_owner() {
    let s = colo()
        .with_stall(3, synth::Phase::Suspend, 400_000_000)
        .with_stall(7, synth::Phase::DirtySync, 300_000_000)
        .with_stall(11, synth::Phase::Memory, 1_500_000_000)
        .with_stall(15, synth::Phase::Device, 600_000_000)
        .with_stall(19, synth::Phase::Apply, 2_300_000_000)
        .with_stall(23, synth::Phase::Resume, 500_000_000);
    let (file, truth) = capture(&s, &CaptureOptions::default());
    let (m, stats) = model(&file, 0);
    let found = stalls_of(&m, &stats);
    use CheckpointEvent as E;
    use Owner::*;
    let want = vec![
        (
            StallKind::Slow,
            3,
            Phase::Suspend,
            E::SvmSuspended,
            Secondary,
        ),
        (
            StallKind::Slow,
            7,
            Phase::DirtySync,
            E::DirtyPfnList,
            Secondary,
        ),
        (
            StallKind::Slow,
            11,
            Phase::Memory,
            E::LibxcCheckpoint,
            Primary,
        ),
        (
            StallKind::Slow,
            15,
            Phase::Device,
            E::CheckpointEnd,
            Primary,
        ),
        (StallKind::Slow, 19, Phase::Apply, E::SvmReady, Secondary),
        (StallKind::Slow, 23, Phase::Resume, E::SvmResumed, Secondary),
    ];
    assert_eq!(found, want);
    // Every phase of every checkpoint is the model's duration, stalls included.
    let st = &truth.sessions[0];
    for c in &m.sessions[0].checkpoints {
        for (p, sp) in Phase::ALL.iter().zip(SYNTH_PHASES) {
            assert_eq!(
                c.phase(*p, Scheme::XenColo),
                st.stream.phase_ns(c.index as u32, sp),
                "checkpoint {} {}",
                c.index,
                p.name()
            );
        }
    }
    // The durations are the injected ones.
    let all = timeline::stalls(&m, &ctx(&stats, true));
    let apply = all[0].iter().find(|x| x.phase == Phase::Apply).unwrap();
    let injected = truth.sessions[0]
        .stream
        .phase_ns(19, synth::Phase::Apply)
        .unwrap();
    assert_eq!(injected, 2_300_000_000);
    assert!((apply.duration - 2.3).abs() < 1e-9);
}

#[test]
fn a_capture_ending_inside_a_checkpoint_names_the_event_awaited_and_its_owner() {
    let s = colo().with_stall(12, synth::Phase::Apply, 3_000_000_000);
    let (file, truth) = capture(&s, &CaptureOptions::default());
    // Cut the capture 1 s into the stalled apply phase.
    let st = &truth.sessions[0];
    let cut_at = st.stream.checkpoints[12].events[4].unwrap() + st.time_offset_ns + 1_000_000_000;
    let cut = cut_capture(&file, cut_at);
    let (m, stats) = model(&cut, 0);
    let found = stalls_of(&m, &stats);
    assert_eq!(
        found.last(),
        Some(&(
            StallKind::Stalled,
            12,
            Phase::Apply,
            CheckpointEvent::SvmReady,
            Owner::Secondary
        ))
    );
    let c = m.sessions[0].checkpoints.last().unwrap();
    assert!(!c.complete(Scheme::XenColo));
    assert_eq!(c.index, 12);

    // Live: while packets still could come, the open phase is stalled as
    // soon as it passes its threshold (apply: 250 ms)...
    let src = FileSource::from_reader(Box::new(Cursor::new(cut.clone())), "t").unwrap();
    let mut src = Source::File(src);
    let mut an = Analyzer::new(Config::default(), Model::new());
    while let Next::Packet(p) = src.next_packet().unwrap() {
        an.packet(&p);
    }
    // (no finish: the capture is still running)
    let mut m = an.into_observer();
    let t = Thresholds::default();
    let since = m.sessions[0]
        .checkpoints
        .last()
        .unwrap()
        .last_event()
        .unwrap();
    m.advance(since + 200_000_000);
    assert!(m
        .stalls(&m.sessions[0], &t, false)
        .iter()
        .all(|x| x.kind != StallKind::Stalled));
    m.advance(since + 300_000_000);
    assert!(m
        .stalls(&m.sessions[0], &t, false)
        .iter()
        .any(|x| x.kind == StallKind::Stalled));
    // ...and, under a threshold it has not reached, once both directions
    // have been quiet for the quiet time.
    let mut t = Thresholds::default();
    t.absolute[Phase::Apply.index()] = Some(10_000_000_000);
    let last = m.sessions[0].last_activity;
    let mut m = {
        let mut fresh = m.clone();
        fresh.now = last;
        fresh
    };
    m.advance(last + 500_000_000);
    assert!(m
        .stalls(&m.sessions[0], &t, false)
        .iter()
        .all(|x| x.kind != StallKind::Stalled));
    m.advance(last + 1_500_000_000);
    let live = m.stalls(&m.sessions[0], &t, false);
    let stalled = live
        .iter()
        .find(|x| x.kind == StallKind::Stalled)
        .expect("stalled while it happens");
    assert_eq!(
        (stalled.checkpoint, stalled.waiting_for),
        (12, CheckpointEvent::SvmReady)
    );
}

/// The pcap file up to (excluding) the first packet at or after `ts_ns`.
fn cut_capture(file: &[u8], ts_ns: u64) -> Vec<u8> {
    // pcap, little endian, nanoseconds.
    assert_eq!(file[..4], [0x4d, 0x3c, 0xb2, 0xa1]);
    let mut out = file[..24].to_vec();
    let mut at = 24;
    while at + 16 <= file.len() {
        let sec = u32::from_le_bytes(file[at..at + 4].try_into().unwrap()) as u64;
        let nsec = u32::from_le_bytes(file[at + 4..at + 8].try_into().unwrap()) as u64;
        let len = u32::from_le_bytes(file[at + 8..at + 12].try_into().unwrap()) as usize;
        if sec * 1_000_000_000 + nsec >= ts_ns {
            break;
        }
        out.extend_from_slice(&file[at..at + 16 + len]);
        at += 16 + len;
    }
    out
}

#[test]
fn damaged_captures_give_partial_checkpoints_and_exact_others() {
    let s = colo();
    for opts in [
        CaptureOptions {
            loss: 0.01,
            ..CaptureOptions::default()
        },
        CaptureOptions {
            start_at: Some(3_000_000),
            ..CaptureOptions::default()
        },
    ] {
        let (file, truth) = capture(&s, &opts);
        let (m, _) = model(&file, 0);
        let sm = &m.sessions[0];
        let st = &truth.sessions[0];
        let mut exact = 0;
        for c in &sm.checkpoints {
            if !c.complete(Scheme::XenColo) {
                continue;
            }
            // A complete checkpoint is one of synth's, with its exact times.
            let t = st
                .stream
                .checkpoints
                .iter()
                .find(|t| t.events[4].map(|x| x + st.time_offset_ns) == c.events[4])
                .expect("a complete checkpoint matches a real one");
            let want: Vec<Option<u64>> = t
                .events
                .iter()
                .map(|e| e.map(|x| x + st.time_offset_ns))
                .collect();
            assert_eq!(c.events.to_vec(), want);
            exact += 1;
        }
        assert!(sm.checkpoints.len() <= st.stream.checkpoints.len());
        // Every byte the capture lost is charged to exactly one checkpoint,
        // which is then partial (complete means measured).
        let lost: u64 = st.directions.iter().map(|d| d.lost_bytes).sum();
        let charged: u64 = sm.checkpoints.iter().map(|c| c.lost).sum();
        assert_eq!(charged, lost, "lost bytes charged to checkpoints");
        assert!(sm
            .checkpoints
            .iter()
            .all(|c| c.lost == 0 || !c.complete(Scheme::XenColo)));
        if lost == 0 {
            assert!(exact >= 20, "{exact} exact checkpoints");
        }
    }
}

#[test]
fn a_checkpoint_that_lost_page_bytes_is_partial_with_the_bytes_it_lost() {
    // Checkpoints of about 2 MB (1,400 segments): at 0.1 % loss some lose a
    // segment of page data, which no record boundary notices.
    let s = Scenario::remus()
        .with_memory(2 << 20)
        .with_checkpoints(30)
        .with_seed(5);
    let (file, truth) = capture(
        &s,
        &CaptureOptions {
            loss: 0.001,
            ..CaptureOptions::default()
        },
    );
    let (m, _) = model(&file, 0);
    let sm = &m.sessions[0];
    let st = &truth.sessions[0];
    let lost = &st.directions[0].lost;
    assert!(!lost.is_empty(), "the capture lost something");
    // checkpoint k spans the forward bytes after k-1's CHECKPOINT_END
    // through its own
    let mut from = 0;
    let mut checked = 0;
    for t in &st.stream.checkpoints {
        let to = from + t.forward_bytes;
        let overlap: u64 = lost
            .iter()
            .map(|&(a, b)| b.min(to).saturating_sub(a.max(from)))
            .sum();
        let straddles = lost
            .iter()
            .any(|&(a, b)| a < to && b > to || a < from && b > from);
        if let (false, Some(c)) = (
            straddles,
            sm.checkpoints
                .iter()
                .find(|c| c.index == u64::from(t.index)),
        ) {
            assert_eq!(c.lost, overlap, "checkpoint {} lost bytes", t.index);
            assert_eq!(
                c.complete(Scheme::Remus),
                overlap == 0,
                "checkpoint {} complete",
                t.index
            );
            checked += 1;
        }
        from = to;
    }
    assert!(checked >= 25, "{checked} checkpoints checked");
    assert!(sm.checkpoints.iter().any(|c| c.lost > 0));
    assert!(sm.checkpoints.iter().any(|c| c.complete(Scheme::Remus)));
}

#[test]
fn the_report_is_the_same_read_in_one_go_or_with_live_snapshots() {
    let s = colo().with_stall(5, synth::Phase::Apply, 1_000_000_000);
    let (file, _) = capture(
        &s,
        &CaptureOptions {
            retransmit: 0.01,
            ..CaptureOptions::default()
        },
    );
    let json = |snap| {
        let (m, stats) = model(&file, snap);
        let mut out = Vec::new();
        timeline::write(&m, &ctx(&stats, true), ReportFormat::Json, &mut out).unwrap();
        out
    };
    let once = json(0);
    assert!(once == json(97), "snapshots change the result");
    let v: serde_json::Value = serde_json::from_slice(&once).unwrap();
    assert_eq!(v["sessions"][0]["stalls"][0]["phase"], "apply");
    assert_eq!(v["sessions"][0]["stalls"][0]["owner"], "secondary");
}

#[test]
fn remus_and_plain_sessions() {
    let s = Scenario::remus()
        .with_memory(1 << 20)
        .with_checkpoints(6)
        .with_seed(2);
    let (file, truth) = capture(&s, &CaptureOptions::default());
    let (m, stats) = model(&file, 0);
    let sm = &m.sessions[0];
    assert_eq!(sm.kind(), SessionKind::Remus);
    let st = &truth.sessions[0];
    let cps: Vec<_> = sm
        .checkpoints
        .iter()
        .filter(|c| c.last_event().is_some())
        .collect();
    assert_eq!(cps.len(), st.stream.checkpoints.len());
    for (c, t) in cps.iter().zip(&st.stream.checkpoints) {
        for e in [3, 4] {
            assert_eq!(c.events[e], t.events[e].map(|x| x + st.time_offset_ns));
        }
        assert_eq!(c.pages, t.pages);
        assert!(c.complete(Scheme::Remus));
        assert_eq!(
            c.phase(Phase::Device, Scheme::Remus),
            st.stream.phase_ns(t.index, synth::Phase::Device)
        );
    }
    assert!(stalls_of(&m, &stats).is_empty());

    let p = Scenario::plain()
        .with_xl(true)
        .with_memory(2 << 20)
        .with_rounds(4)
        .with_seed(8);
    let (file, truth) = capture(&p, &CaptureOptions::default());
    let (m, stats) = model(&file, 0);
    let sm = &m.sessions[0];
    assert_eq!(sm.kind(), SessionKind::Plain);
    let st = &truth.sessions[0];
    assert_eq!(sm.rounds.len(), st.stream.rounds.len());
    for (r, t) in sm.rounds.iter().zip(&st.stream.rounds) {
        assert_eq!(r.pages, t.pages);
    }
    assert_eq!(sm.handover.result, Some(0));
    assert!(sm.handover.ready_to_unpause.is_some() && sm.handover.cleared_to_unpause.is_some());
    assert!(stalls_of(&m, &stats).is_empty());
}

#[test]
fn checkpoints_count_from_0_when_only_the_handshake_was_lost() {
    // The capture starts with the segment holding forward byte 0: the SYN
    // and SYN-ACK are missing, the stream is whole.
    let s = colo();
    let (file, truth) = capture(
        &s,
        &CaptureOptions {
            start_at: Some(0),
            ..CaptureOptions::default()
        },
    );
    let (m, _) = model(&file, 0);
    let sm = &m.sessions[0];
    let st = &truth.sessions[0];
    assert!(
        !sm.info.mid_stream,
        "the stream's first bytes were captured"
    );
    assert_eq!(sm.checkpoints.len(), st.stream.checkpoints.len());
    for (c, t) in sm.checkpoints.iter().zip(&st.stream.checkpoints).skip(1) {
        assert_eq!(c.index, u64::from(t.index));
        let want: Vec<Option<u64>> = t
            .events
            .iter()
            .map(|e| e.map(|x| x + st.time_offset_ns))
            .collect();
        assert_eq!(c.events.to_vec(), want, "checkpoint {}", c.index);
    }
}

#[test]
fn a_memory_phase_far_above_the_median_is_slow_and_a_zero_window_makes_the_secondary_its_owner() {
    // 406 ms against a median of a few hundred microseconds: under the old
    // 1 s memory threshold this was not reported.
    for (zero_window, owner, why) in [
        (
            false,
            Owner::Primary,
            "libxc_checkpoint is sent by the primary",
        ),
        (
            true,
            Owner::Secondary,
            "the secondary advertised a zero window for",
        ),
    ] {
        let s = colo().with_stall(9, synth::Phase::Memory, 406_000_000);
        let (file, _) = capture(
            &s,
            &CaptureOptions {
                zero_window,
                ..CaptureOptions::default()
            },
        );
        let (m, stats) = model(&file, 0);
        let all = timeline::stalls(&m, &ctx(&stats, true));
        let found: Vec<_> = all[0].iter().collect();
        assert_eq!(found.len(), 1, "{found:?}");
        let x = found[0];
        assert_eq!(
            (x.kind, x.checkpoint, x.phase),
            (StallKind::Slow, 9, Phase::Memory)
        );
        assert!((x.duration - 0.406).abs() < 1e-9);
        assert_eq!(x.waiting_for, CheckpointEvent::LibxcCheckpoint);
        assert_eq!(x.owner, owner, "zero window: {zero_window}");
        assert!(x.why.starts_with(why), "{}", x.why);
    }
}

#[test]
fn an_800_ms_apply_stall_carries_the_secondarys_silence() {
    // Silences count from 20 ms, not only past --idle (1 s).
    let s = colo().with_stall(6, synth::Phase::Apply, 800_000_000);
    let (file, _) = capture(&s, &CaptureOptions::default());
    let (m, stats) = model(&file, 0);
    let all = timeline::stalls(&m, &ctx(&stats, true));
    let x = all[0]
        .iter()
        .find(|x| x.checkpoint == 6 && x.phase == Phase::Apply)
        .expect("the apply stall");
    let silent = x.evidence.iter().find_map(|e| match e {
        migscope::model::Evidence::Silence { side, duration, .. } if *side == Owner::Secondary => {
            Some(*duration)
        }
        _ => None,
    });
    assert!(
        silent.is_some_and(|d| d > 0.7 && d <= 0.8 + 1e-9),
        "{:?}",
        x.evidence
    );
}
