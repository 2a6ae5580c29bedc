//! The whole pipeline (capture file -> link layers -> TCP reassembly ->
//! recognition -> decoder) on captures written by `synth::capture`, for
//! every impairment it can inject. What comes out is compared with the
//! ground truth: the raw streams and the manifest's exact lost ranges.
//!
//! - Exported bytes equal the bytes sent, for every impairment but loss;
//!   with loss, every byte outside the reported gaps is equal and the gap
//!   list equals the manifest's.
//! - The decoder's records from the capture equal those from the raw stream.
#![cfg(feature = "synth")]

use std::collections::BTreeMap;
use std::io::Cursor;

use migscope::capture::{FileSource, Next, Source};
use migscope::decode::{Decoder, Direction, Event, Item};
use migscope::session::{Analyzer, Config, Observer, Session};
use migscope::synth::capture::{
    write_capture, CaptureFormat, CaptureManifest, CaptureOptions, Link,
};
use migscope::synth::{generate, Phase, Scenario, StreamFiles};
use migscope::tcp::{GapCause, TcpEvent, TcpEventKind};

/// One session direction as the pipeline delivered it.
#[derive(Default, Debug)]
struct Stream {
    first: Option<u64>,
    bytes: Vec<u8>,
    /// Stream offset of `bytes[0]`; gaps are zero-filled in `bytes`.
    gaps: Vec<(u64, u64)>,
    causes: Vec<GapCause>,
    items: Vec<Item>,
    /// Capture time of each item, as the pipeline stamped it.
    times: Vec<u64>,
}

#[derive(Default)]
struct Got {
    sessions: Vec<Session>,
    streams: BTreeMap<(u32, Direction), Stream>,
    /// Zero-window episodes by the direction whose packets advertised them.
    zero_windows: BTreeMap<Direction, Vec<u64>>,
}

impl Observer for Got {
    fn session(&mut self, s: &Session) {
        self.sessions.push(s.clone());
    }
    fn back_channel(&mut self, s: &Session) {
        match self.sessions.iter_mut().find(|x| x.id == s.id) {
            Some(x) => *x = s.clone(),
            None => self.sessions.push(s.clone()),
        }
    }
    fn bytes(&mut self, s: u32, d: Direction, offset: u64, data: &[u8]) {
        let st = self.streams.entry((s, d)).or_default();
        let first = *st.first.get_or_insert(offset);
        assert_eq!(offset, first + st.bytes.len() as u64, "bytes out of order");
        st.bytes.extend_from_slice(data);
    }
    fn gap(&mut self, s: u32, d: Direction, _ts: u64, offset: u64, len: u64, cause: GapCause) {
        let st = self.streams.entry((s, d)).or_default();
        let first = *st.first.get_or_insert(offset);
        assert_eq!(offset, first + st.bytes.len() as u64, "gap out of order");
        st.bytes.resize(st.bytes.len() + len as usize, 0);
        match st.gaps.last_mut() {
            Some(g) if g.1 == offset => g.1 = offset + len,
            _ => st.gaps.push((offset, offset + len)),
        }
        st.causes.push(cause);
    }
    fn tcp(&mut self, _s: u32, d: Direction, ev: &TcpEvent) {
        if let TcpEventKind::ZeroWindowEnd { duration_ns } = ev.kind {
            self.zero_windows.entry(d).or_default().push(duration_ns);
        }
    }
    fn decoded(&mut self, s: u32, d: Direction, ts: u64, events: &[Event]) {
        let st = self.streams.entry((s, d)).or_default();
        for e in events {
            if let Event::Item(i) = e {
                st.items.push(i.clone());
                st.times.push(ts);
            }
        }
    }
}

fn capture(scenarios: &[Scenario], opts: &CaptureOptions) -> (Vec<u8>, CaptureManifest) {
    write_capture(scenarios, opts, Vec::new()).expect("synth writes the capture")
}

fn analyse(file: Vec<u8>) -> Got {
    let src = FileSource::from_reader(Box::new(Cursor::new(file)), "test").unwrap();
    let mut src = Source::File(src);
    let mut an = Analyzer::new(Config::default(), Got::default());
    loop {
        match src.next_packet().expect("a clean capture") {
            Next::Packet(p) => an.packet(&p),
            Next::Idle => {}
            Next::End => break,
        }
    }
    an.finish();
    an.into_observer()
}

fn raw(s: &Scenario) -> (Vec<u8>, Vec<u8>) {
    let mut sink = StreamFiles::new(Vec::new(), Vec::new());
    generate(s, &mut sink).unwrap();
    sink.into_inner()
}

fn records(dir: Direction, data: &[u8], back_channel: bool) -> Vec<Item> {
    let mut d = if back_channel {
        Decoder::back_channel()
    } else {
        Decoder::new(dir)
    };
    let mut ev = Vec::new();
    d.push(data, &mut ev);
    d.finish(&mut ev);
    ev.into_iter()
        .filter_map(|e| match e {
            Event::Item(i) => Some(i),
            _ => None,
        })
        .collect()
}

/// Checks every session direction against the truth; returns the number of
/// gaps seen.
fn check(scenarios: &[Scenario], opts: &CaptureOptions) -> usize {
    check_got(scenarios, opts).0
}

fn check_got(scenarios: &[Scenario], opts: &CaptureOptions) -> (usize, Got) {
    let (file, truth) = capture(scenarios, opts);
    let got = analyse(file);
    assert_eq!(
        got.sessions.len(),
        scenarios.len(),
        "sessions: {:?}",
        got.sessions
    );
    let mut gaps = 0;
    for (i, (scenario, st)) in scenarios.iter().zip(&truth.sessions).enumerate() {
        let session = &got.sessions[i];
        let (fwd, rev) = raw(scenario);
        for d in &st.directions {
            let sent = if d.dir == Direction::Forward {
                &fwd
            } else {
                &rev
            };
            let Some(stream) = got.streams.get(&(session.id, d.dir)) else {
                assert!(
                    sent.is_empty() || d.first_offset.is_none(),
                    "session {i} {:?}: nothing delivered",
                    d.dir
                );
                continue;
            };
            let first = d.first_offset.expect("data in the capture");
            assert_eq!(
                stream.first,
                Some(0),
                "offsets start at the first byte seen"
            );
            let from = first as usize;
            assert_eq!(
                stream.bytes.len(),
                sent.len() - from,
                "session {i} {:?} length",
                d.dir
            );
            // The manifest's lost ranges, relative to the first byte captured.
            let lost: Vec<(u64, u64)> = d
                .lost
                .iter()
                .map(|&(a, b)| (a - first, b - first))
                .collect();
            let mut merged: Vec<(u64, u64)> = Vec::new();
            for (a, b) in lost {
                match merged.last_mut() {
                    Some(m) if m.1 == a => m.1 = b,
                    _ => merged.push((a, b)),
                }
            }
            assert_eq!(stream.gaps, merged, "session {i} {:?}: gaps", d.dir);
            gaps += merged.len();
            let outside = |o: u64| !merged.iter().any(|&(a, b)| a <= o && o < b);
            let bad = (0..stream.bytes.len() as u64)
                .filter(|&o| outside(o) && stream.bytes[o as usize] != sent[from + o as usize])
                .count();
            assert_eq!(bad, 0, "session {i} {:?}: bytes differ outside gaps", d.dir);
            // Records: equal to the raw stream's when the whole stream is there.
            if merged.is_empty() && first == 0 {
                let back = d.dir == Direction::Reverse && session.back_channel.is_some();
                let want = records(d.dir, sent, back);
                assert_eq!(
                    stream.items.len(),
                    want.len(),
                    "session {i} {:?} record count",
                    d.dir
                );
                assert!(
                    stream.items == want,
                    "session {i} {:?}: records differ",
                    d.dir
                );
                // Each record is stamped with the capture time of the packet
                // that carried its last byte (PROTOCOL.md section 6), to the
                // file's resolution.
                if opts.retransmit == 0.0 && opts.reorder == 0.0 {
                    let micro = opts.format == CaptureFormat::Pcap && !opts.nanosecond;
                    let truth: Vec<u64> = st
                        .stream
                        .records
                        .iter()
                        .filter(|r| r.dir == d.dir)
                        .map(|r| r.end_ns + st.time_offset_ns)
                        .map(|t| if micro { t / 1000 * 1000 } else { t })
                        .collect();
                    assert_eq!(stream.times.len(), truth.len());
                    let off = stream
                        .times
                        .iter()
                        .zip(&truth)
                        .filter(|(a, b)| a != b)
                        .count();
                    assert_eq!(
                        off, 0,
                        "session {i} {:?}: {off} records stamped with the wrong time",
                        d.dir
                    );
                }
            }
        }
    }
    (gaps, got)
}

fn colo() -> Scenario {
    Scenario::colo()
        .with_xl(true)
        .with_memory(4 << 20)
        .with_checkpoints(8)
        .with_seed(5)
}

#[test]
fn clean_captures_on_every_link_layer_give_the_streams_and_records_sent() {
    let s = [colo()];
    check(&s, &CaptureOptions::default());
    check(
        &s,
        &CaptureOptions {
            format: CaptureFormat::Pcapng,
            link: Link::Sll2,
            ipv6: true,
            ..CaptureOptions::default()
        },
    );
    check(
        &s,
        &CaptureOptions {
            vlan: Some(42),
            nanosecond: true,
            segment_size: 65_000, // GSO super-segments, as host captures show
            ..CaptureOptions::default()
        },
    );
}

#[test]
fn retransmission_reordering_and_sequence_wrap_change_nothing() {
    let opts = CaptureOptions {
        retransmit: 0.02,
        reorder: 0.02,
        seq_wrap: true,
        ..CaptureOptions::default()
    };
    assert_eq!(check(&[colo()], &opts), 0);
}

#[test]
fn loss_gives_exactly_the_lost_ranges_as_gaps() {
    let opts = CaptureOptions {
        loss: 0.01,
        retransmit: 0.01,
        ..CaptureOptions::default()
    };
    assert!(check(&[colo()], &opts) > 0);
}

#[test]
fn snap_length_cuts_are_gaps() {
    let opts = CaptureOptions {
        snaplen: 200,
        ..CaptureOptions::default()
    };
    assert!(
        check(
            &[Scenario::remus().with_memory(1 << 20).with_checkpoints(2)],
            &opts
        ) > 0
    );
}

#[test]
fn a_capture_started_mid_stream_is_recognised_and_reassembled() {
    let opts = CaptureOptions {
        start_at: Some(1_500_000),
        ..CaptureOptions::default()
    };
    let (file, truth) = capture(&[colo()], &opts);
    assert!(!truth.sessions[0].directions[0].syn_captured);
    let got = analyse(file);
    assert_eq!(got.sessions.len(), 1);
    assert!(got.sessions[0].mid_stream);
    check(&[colo()], &opts);
}

#[test]
fn a_zero_window_stall_is_reported_and_the_stream_is_intact() {
    // Enough dirty pages that a PAGE_DATA outgrows the receive window.
    let mut s = colo().with_stall(3, Phase::Memory, 800_000_000);
    s.dirty.primary_mean = 100;
    let opts = CaptureOptions {
        zero_window: true,
        ..CaptureOptions::default()
    };
    let (_, got) = check_got(std::slice::from_ref(&s), &opts);
    // The secondary (reverse direction) closed its window for about the
    // stalled memory phase.
    let zw = &got.zero_windows[&Direction::Reverse];
    assert_eq!(zw.len(), 1, "{zw:?}");
    assert!(zw[0] > 500_000_000 && zw[0] <= 800_000_000, "{zw:?}");
    assert!(!got.zero_windows.contains_key(&Direction::Forward));
}

#[test]
fn several_sessions_and_a_back_channel_connection() {
    let s = [
        colo(),
        Scenario::plain()
            .with_xl(true)
            .with_memory(2 << 20)
            .with_seed(2),
        Scenario::remus()
            .with_memory(1 << 20)
            .with_checkpoints(3)
            .with_seed(3),
    ];
    check(&s, &CaptureOptions::default());
    let bc = [Scenario::colo()
        .with_memory(2 << 20)
        .with_checkpoints(4)
        .with_seed(9)];
    let opts = CaptureOptions {
        back_channel_connection: true,
        ..CaptureOptions::default()
    };
    check(&bc, &opts);
}
