//! synth -> decoder round trips: for every scenario, the decoder finds
//! exactly the items synth wrote (direction, layer, name, offset, length),
//! with no diagnostics. (The decoder's independence from synth is covered by
//! tests/decoder.rs, which builds its bytes by hand.)
#![cfg(feature = "synth")]

use migscope::decode::{Decoder, Direction, Event, Severity};
use migscope::synth::{generate, Manifest, Scenario, StreamFiles};

fn run(s: Scenario) -> (Manifest, Vec<(Direction, Event)>) {
    let mut sink = StreamFiles::new(Vec::new(), Vec::new());
    let manifest = generate(&s, &mut sink).expect("generate");
    let (fwd, rev) = sink.into_inner();
    let mut events = Vec::new();
    for (dir, bytes) in [(Direction::Forward, fwd), (Direction::Reverse, rev)] {
        if bytes.is_empty() {
            continue;
        }
        let mut d = Decoder::new(dir);
        let mut ev = Vec::new();
        // Odd chunk size on purpose: items straddle pushes.
        for c in bytes.chunks(65_521) {
            d.push(c, &mut ev);
        }
        d.finish(&mut ev);
        events.extend(ev.into_iter().map(|e| (dir, e)));
    }
    (manifest, events)
}

fn check(s: Scenario) -> Manifest {
    let (manifest, events) = run(s);
    let problems: Vec<_> = events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Diagnostic(d) if d.severity > Severity::Note => Some(d.to_string()),
            _ => None,
        })
        .collect();
    assert!(problems.is_empty(), "{problems:#?}");
    for dir in [Direction::Forward, Direction::Reverse] {
        let got: Vec<_> = events
            .iter()
            .filter(|(d, _)| *d == dir)
            .filter_map(|(_, e)| e.as_item())
            .map(|i| (i.layer, i.kind.name(), i.offset, u64::from(i.body_length)))
            .collect();
        let want: Vec<_> = manifest
            .records
            .iter()
            .filter(|r| r.dir == dir)
            .map(|r| (r.layer, r.name, r.offset, u64::from(r.body_length)))
            .collect();
        assert_eq!(got, want, "{dir:?}");
    }
    manifest
}

#[test]
fn plain_hvm_with_xl() {
    let m = check(
        Scenario::plain()
            .with_xl(true)
            .with_memory(8 << 20)
            .with_rounds(4),
    );
    assert_eq!(m.rounds.len(), 4);
}

#[test]
fn plain_hvm_bare_version_2() {
    check(Scenario::plain().with_memory(8 << 20).with_libxc_version(2));
}

#[test]
fn plain_pv_both_versions() {
    check(Scenario::plain_pv().with_memory(8 << 20).with_vcpus(3));
    check(
        Scenario::plain_pv()
            .with_memory(8 << 20)
            .with_libxc_version(2)
            .with_xl(true),
    );
}

#[test]
fn remus() {
    let m = check(Scenario::remus().with_memory(4 << 20).with_checkpoints(6));
    assert_eq!(m.checkpoints.len(), 6);
}

#[test]
fn colo_with_xl_and_stall() {
    let m = check(
        Scenario::colo()
            .with_xl(true)
            .with_memory(4 << 20)
            .with_checkpoints(12)
            .with_stall(4, migscope::synth::Phase::Apply, 2_300_000_000),
    );
    assert_eq!(m.checkpoints.len(), 12);
}

#[test]
fn colo_bare() {
    check(
        Scenario::colo()
            .with_memory(4 << 20)
            .with_checkpoints(5)
            .with_seed(99),
    );
}
