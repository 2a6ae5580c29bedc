//! Unit tests of the decoder's state machine: the states it passes through
//! and the events it emits, on streams built with the views' `emit` (whose
//! own tests check them against bytes written out from PROTOCOL.md).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::layers::LibxlPhase;
use super::state::{Role, State};
use super::Decoder;
use crate::decode::event::{Anchor, DiagKind, Event, Severity};
use crate::decode::libxc::{
    DomainHeader, GuestType, HvmContext, HvmParams, ImageHeader, PageData, PageType, PfnEntry,
    X86TscInfo, DOMAIN_HEADER_LEN, IMAGE_HEADER_LEN,
};
use crate::decode::libxl::{self, CheckpointState, ControlId, EmulatorContext, EmulatorId};
use crate::decode::wire::{emit_record, Layer, LibxcType as C, LibxlType as L};
use crate::decode::xl::{self, ByteOrder, SaveHeader};
use crate::decode::Direction;

// ---- streams, built from the views' emit ----

fn rec(t: u32, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    emit_record(t, body, &mut v);
    v
}

fn body(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut v = Vec::new();
    f(&mut v);
    v
}

fn xl_header(config: &[u8]) -> Vec<u8> {
    let h = SaveHeader {
        byteorder: ByteOrder::Little,
        byteorder_ok: true,
        mandatory_flags: xl::FLAG_CONFIG_JSON | xl::FLAG_STREAM_V2,
        optional_flags: 0,
        optional_data_len: 4 + config.len() as u32,
    };
    let mut out = [0; xl::SAVE_HEADER_LEN];
    h.emit(&mut out);
    let mut v = out.to_vec();
    v.extend_from_slice(&(config.len() as u32).to_le_bytes());
    v.extend_from_slice(config);
    v
}

fn libxl_header() -> Vec<u8> {
    let mut out = [0; libxl::HEADER_LEN];
    libxl::Header {
        version: 2,
        options: 0,
    }
    .emit(&mut out);
    out.to_vec()
}

fn libxc_headers() -> Vec<u8> {
    let mut image = [0; IMAGE_HEADER_LEN];
    ImageHeader {
        version: 3,
        options: 0,
    }
    .emit(&mut image);
    let mut domain = [0; DOMAIN_HEADER_LEN];
    DomainHeader {
        guest_type: GuestType::X86Hvm,
        page_shift: 12,
        xen_major: 4,
        xen_minor: 17,
    }
    .emit(&mut domain);
    [image.to_vec(), domain.to_vec()].concat()
}

fn page_data(pfns: &[u64]) -> Vec<u8> {
    let entries: Vec<_> = pfns
        .iter()
        .map(|&p| PfnEntry::new(p, PageType(0)))
        .collect();
    let pages: Vec<u8> = pfns
        .iter()
        .flat_map(|&p| std::iter::repeat(p as u8).take(4096))
        .collect();
    rec(
        C::PageData.to_u32(),
        &body(|b| PageData::emit(&entries, &pages, b)),
    )
}

/// CPU state at the end of a batch: TSC, HVM context, HVM params.
fn cpu_state() -> Vec<u8> {
    let tsc = body(|b| X86TscInfo::emit(0, 2_400_000, 123, 1, b));
    let ctx = body(|b| {
        HvmContext::emit_descriptor(1, 0, &[0; 24], b);
        HvmContext::emit_descriptor(2, 0, &[0x5a; 64], b);
        HvmContext::emit_descriptor(0, 0, &[], b);
    });
    let params = body(|b| HvmParams::emit(&[(1, 0xfeffc), (2, 5)], b));
    [
        rec(C::X86TscInfo.to_u32(), &tsc),
        rec(C::HvmContext.to_u32(), &ctx),
        rec(C::HvmParams.to_u32(), &params),
    ]
    .concat()
}

fn emulator_context() -> Vec<u8> {
    let blob = [b"QEVM\0\0\0\x03".as_slice(), &[0x11; 101]].concat();
    rec(
        L::EmulatorContext.to_u32(),
        &body(|b| EmulatorContext::emit(EmulatorId::QemuUpstream, 0, &blob, b)),
    )
}

fn checkpoint_state(id: ControlId) -> Vec<u8> {
    rec(
        L::CheckpointState.to_u32(),
        &body(|b| CheckpointState::emit(id, b)),
    )
}

fn empty(t: u32) -> Vec<u8> {
    rec(t, &[])
}

/// libxl header, LIBXC_CONTEXT, libxc headers, static data.
fn opening() -> Vec<u8> {
    [
        libxl_header(),
        empty(L::LibxcContext.to_u32()),
        libxc_headers(),
        rec(C::X86CpuidPolicy.to_u32(), &[0; 24]),
        rec(C::X86MsrPolicy.to_u32(), &[0; 16]),
        empty(C::StaticDataEnd.to_u32()),
    ]
    .concat()
}

/// `xl migrate` of an HVM guest: preamble, libxl stream, xl's trailer.
fn plain_xl() -> Vec<u8> {
    [
        xl_header(br#"{"c_info":{"name":"g"}}"#),
        opening(),
        page_data(&[0, 1, 2]),
        page_data(&[1]),
        cpu_state(),
        empty(C::End.to_u32()),
        emulator_context(),
        empty(L::End.to_u32()),
        xl::CLEARED_TO_UNPAUSE.to_vec(),
    ]
    .concat()
}

/// A COLO forward stream: checkpoint 0, then `k` checkpoints opened by NEW.
fn colo(k: u64) -> Vec<u8> {
    let mut s = [
        opening(),
        page_data(&[0, 1, 2, 3]),
        cpu_state(),
        empty(C::Checkpoint.to_u32()),
        emulator_context(),
        empty(L::CheckpointEnd.to_u32()),
    ]
    .concat();
    for i in 1..=k {
        s.extend(checkpoint_state(ControlId::New));
        s.extend(page_data(&[i, 10 + i]));
        s.extend(cpu_state());
        s.extend(empty(C::Checkpoint.to_u32()));
        s.extend(emulator_context());
        s.extend(empty(L::CheckpointEnd.to_u32()));
    }
    s
}

/// A Remus stream: like COLO, but the next batch follows CHECKPOINT_END.
fn remus(k: u64) -> Vec<u8> {
    let mut s = opening();
    for i in 0..=k {
        s.extend(page_data(&[i, 10 + i]));
        s.extend(cpu_state());
        s.extend(empty(C::Checkpoint.to_u32()));
        s.extend(emulator_context());
        s.extend(empty(L::CheckpointEnd.to_u32()));
    }
    s
}

fn dirty_list(pfns: &[u64]) -> Vec<u8> {
    let b: Vec<u8> = pfns.iter().flat_map(|p| p.to_le_bytes()).collect();
    rec(C::CheckpointDirtyPfnList.to_u32(), &b)
}

/// The reverse direction of `xl remus` with COLO: banner, then the back channel.
fn back_channel(k: u64) -> Vec<u8> {
    let mut s = xl::BANNER.to_vec();
    for i in 0..k {
        s.extend(checkpoint_state(ControlId::SvmSuspended));
        s.extend(dirty_list(&[i, i + 1, 40 + i]));
        s.extend(checkpoint_state(ControlId::SvmReady));
        s.extend(checkpoint_state(ControlId::SvmResumed));
    }
    s
}

// ---- driving the decoder ----

fn decode(mut d: Decoder, bytes: &[u8]) -> (Decoder, Vec<Event>) {
    let mut ev = Vec::new();
    d.push(bytes, &mut ev);
    d.finish(&mut ev);
    (d, ev)
}

fn forward(bytes: &[u8]) -> Vec<Event> {
    decode(Decoder::new(Direction::Forward), bytes).1
}

fn items(ev: &[Event]) -> Vec<String> {
    ev.iter()
        .filter_map(Event::as_item)
        .map(|i| format!("{}:{}", i.layer, i.kind.name()))
        .collect()
}

fn switches(ev: &[Event]) -> Vec<(u64, Layer, Layer)> {
    ev.iter()
        .filter_map(|e| match e {
            Event::LayerSwitch { offset, from, to } => Some((*offset, *from, *to)),
            _ => None,
        })
        .collect()
}

fn diags(ev: &[Event]) -> Vec<(Severity, DiagKind)> {
    ev.iter()
        .filter_map(|e| match e {
            Event::Diagnostic(d) => Some((d.severity, d.kind)),
            _ => None,
        })
        .collect()
}

fn state_name(d: &Decoder) -> String {
    match &d.state {
        State::Records(layer) => format!("Records({layer})"),
        State::Body(b) => format!("Body({})", b.rtype),
        State::Hunting(_) => "Hunting".into(),
        State::XlOptional(_) => "XlOptional".into(),
        State::Text { .. } => "Text".into(),
        s => format!("{s:?}"),
    }
}

// ---- each stream kind is recognised ----

#[test]
fn each_stream_kind_is_recognised_from_its_first_bytes() {
    let cases: [(&[u8], &str, Role, Option<Severity>); 8] = [
        (xl::SAVE_MAGIC, "SaveHeader", Role::Migration, None),
        (b"LibxlFmt", "LibxlHeader", Role::Migration, None),
        (&[0xff; 8], "ImageHeader", Role::Migration, None),
        (xl::BANNER, "Reverse", Role::Receiver, Some(Severity::Note)),
        (
            &[5, 0, 0, 0, 4, 0, 0, 0],
            "Reverse",
            Role::Receiver,
            Some(Severity::Note),
        ),
        (
            b"SSH-2.0-OpenSSH_9.2",
            "Refused",
            Role::Migration,
            Some(Severity::Error),
        ),
        // A legacy (Xen <= 4.5) image or anything else.
        (
            &[1, 2, 3, 4, 5, 6, 7, 8],
            "Refused",
            Role::Migration,
            Some(Severity::Error),
        ),
        (
            b"GET / HTTP/1.1",
            "Refused",
            Role::Migration,
            Some(Severity::Error),
        ),
    ];
    for (first, state, role, diag) in cases {
        let mut d = Decoder::new(Direction::Forward);
        let mut ev = Vec::new();
        d.push(&first[..8], &mut ev);
        assert_eq!(state_name(&d), state, "{first:?}");
        assert_eq!(d.role, role, "{first:?}");
        assert_eq!(diags(&ev).first().map(|d| d.0), diag, "{first:?}: {ev:?}");
        assert_eq!(d.refused(), state == "Refused");
    }
    // Seven bytes decide nothing; an empty stream says so.
    let mut d = Decoder::new(Direction::Forward);
    let mut ev = Vec::new();
    d.push(b"LibxlFm", &mut ev);
    assert_eq!(state_name(&d), "Detect");
    let ev = forward(b"");
    assert_eq!(diags(&ev), [(Severity::Error, DiagKind::Truncated)]);
    // The reverse direction needs no detection.
    let mut d = Decoder::new(Direction::Reverse);
    d.push(b"?", &mut Vec::new());
    assert_eq!(state_name(&d), "Reverse");
    assert_eq!(d.role, Role::Receiver);
}

#[test]
fn after_the_xl_header_a_legacy_image_is_refused() {
    let s = [xl_header(b"{}"), vec![0x12; 16]].concat();
    let (d, ev) = decode(Decoder::new(Direction::Forward), &s);
    assert!(d.refused());
    assert_eq!(items(&ev), ["xl:SAVE_HEADER"]);
    assert_eq!(diags(&ev), [(Severity::Error, DiagKind::Unrecognised)]);
}

// ---- layer switches (PROTOCOL.md §5) ----

#[test]
fn xl_preamble_then_libxl_then_libxc_and_back() {
    let s = plain_xl();
    let mut d = Decoder::new(Direction::Forward);
    let mut ev = Vec::new();
    let xl_len = xl_header(br#"{"c_info":{"name":"g"}}"#).len();
    // Through the state machine a piece at a time.
    let steps: [(usize, &str); 6] = [
        (8, "SaveHeader"),
        (xl::SAVE_HEADER_LEN, "XlOptional"),
        (xl_len, "AfterXl"),
        (xl_len + 16, "Records(libxl)"),
        (xl_len + 16 + 8, "ImageHeader"),
        (xl_len + 16 + 8 + 24, "DomainHeader"),
    ];
    let mut at = 0;
    for (to, state) in steps {
        d.push(&s[at..to], &mut ev);
        at = to;
        assert_eq!(state_name(&d), state, "at {to}");
    }
    d.push(&s[at..at + 16], &mut ev);
    assert_eq!(state_name(&d), "Records(libxc)");
    assert_eq!(d.libxc.page_size, 4096);
    assert_eq!(d.libxc.pv, Some(false));
    d.push(&s[at + 16..], &mut ev);
    assert_eq!(state_name(&d), "Ended");
    d.finish(&mut ev);
    assert_eq!(diags(&ev), []);
    assert!(d.seen.xl && !d.seen.checkpointed);

    let libxc_at = (xl_len + 16 + 8) as u64;
    let end_at = ev
        .iter()
        .filter_map(Event::as_item)
        .find(|i| i.kind.name() == "END")
        .unwrap()
        .offset;
    assert_eq!(
        switches(&ev),
        [
            (xl_len as u64, Layer::Xl, Layer::Libxl),
            (libxc_at, Layer::Libxl, Layer::Libxc),
            (end_at + 8, Layer::Libxc, Layer::Libxl),
        ]
    );
    assert_eq!(
        items(&ev),
        [
            "xl:SAVE_HEADER",
            "libxl:HEADER",
            "libxl:LIBXC_CONTEXT",
            "libxc:IMAGE_HEADER",
            "libxc:DOMAIN_HEADER",
            "libxc:X86_CPUID_POLICY",
            "libxc:X86_MSR_POLICY",
            "libxc:STATIC_DATA_END",
            "libxc:PAGE_DATA",
            "libxc:PAGE_DATA",
            "libxc:X86_TSC_INFO",
            "libxc:HVM_CONTEXT",
            "libxc:HVM_PARAMS",
            "libxc:END",
            "libxl:EMULATOR_CONTEXT",
            "libxl:END",
            "xl:CLEARED_TO_UNPAUSE",
        ]
    );
}

#[test]
fn bytes_after_the_end_are_said_once() {
    let s = [plain_xl(), vec![0; 100]].concat();
    let (d, ev) = decode(Decoder::new(Direction::Forward), &s);
    assert!(d.refused());
    assert_eq!(diags(&ev), [(Severity::Warning, DiagKind::TrailingData)]);
}

#[test]
fn remus_resumes_libxc_after_checkpoint_end() {
    let s = remus(2);
    let (d, ev) = decode(Decoder::new(Direction::Forward), &s);
    assert_eq!(
        diags(&ev),
        [],
        "a checkpointed stream ends after CHECKPOINT_END"
    );
    assert!(d.checkpointed() && !d.colo());
    assert_eq!(d.libxl_phase, LibxlPhase::AfterCheckpointEnd);
    // Each checkpoint: libxc -> libxl at CHECKPOINT, libxl -> libxc before the next batch.
    let sw = switches(&ev);
    assert_eq!(sw.len(), 1 + 3 + 2);
    let cps: Vec<u64> = ev
        .iter()
        .filter_map(Event::as_item)
        .filter(|i| i.kind.name() == "CHECKPOINT_END")
        .map(|i| i.offset + 8)
        .collect();
    for at in &cps[..2] {
        assert!(sw.contains(&(*at, Layer::Libxl, Layer::Libxc)), "{sw:?}");
    }
}

#[test]
fn colo_new_hands_the_stream_back_to_libxc() {
    let s = colo(2);
    let (d, ev) = decode(Decoder::new(Direction::Forward), &s);
    assert_eq!(diags(&ev), []);
    assert!(d.checkpointed() && d.colo());
    let news: Vec<u64> = ev
        .iter()
        .filter_map(Event::as_item)
        .filter(|i| i.kind.name() == "CHECKPOINT_STATE")
        .map(|i| i.offset + 16)
        .collect();
    assert_eq!(news.len(), 2);
    for at in news {
        assert!(switches(&ev).contains(&(at, Layer::Libxl, Layer::Libxc)));
    }
    // Cut inside a checkpoint: the stream says what it waited for.
    let cut = [s, checkpoint_state(ControlId::New)].concat();
    let ev = forward(&cut);
    assert_eq!(diags(&ev), [(Severity::Warning, DiagKind::Truncated)]);
}

// ---- the back channel ----

#[test]
fn back_channel_records_and_xl_messages() {
    let s = back_channel(2);
    let (d, ev) = decode(Decoder::new(Direction::Reverse), &s);
    assert_eq!(diags(&ev), []);
    assert!(d.colo() && d.seen.xl);
    assert_eq!(state_name(&d), "Reverse");
    let mut expect = vec!["xl:BANNER"];
    for _ in 0..2 {
        expect.extend([
            "libxl:CHECKPOINT_STATE",
            "libxc:CHECKPOINT_DIRTY_PFN_LIST",
            "libxl:CHECKPOINT_STATE",
            "libxl:CHECKPOINT_STATE",
        ]);
    }
    assert_eq!(items(&ev), expect);
    // The same bytes as a file of a bare back channel (no banner) and as a
    // forward stream that turns out to be one.
    let bare = &s[xl::BANNER.len()..];
    let (_, ev) = decode(Decoder::back_channel(), bare);
    assert_eq!(items(&ev).len(), 8);
    let ev = forward(bare);
    assert_eq!(items(&ev).len(), 8);
    assert_eq!(diags(&ev), [(Severity::Note, DiagKind::Unrecognised)]);
}

#[test]
fn receiver_text_and_the_unpause_handshake() {
    let s = [
        b"bash: xl: command not found\n".as_slice(),
        xl::BANNER,
        xl::READY_TO_UNPAUSE,
        xl::UNPAUSE_RESULT,
        &[1],
    ]
    .concat();
    let (_, ev) = decode(Decoder::new(Direction::Reverse), &s);
    assert_eq!(
        items(&ev),
        [
            "xl:RECEIVER_TEXT",
            "xl:BANNER",
            "xl:READY_TO_UNPAUSE",
            "xl:UNPAUSE_RESULT"
        ]
    );
    // A failed unpause is a warning.
    assert_eq!(diags(&ev), [(Severity::Warning, DiagKind::Truncated)]);
}

// ---- re-synchronisation ----

#[test]
fn resync_after_garbage_finds_the_next_boundary() {
    let s = colo(3);
    let clean = forward(&s);
    // Start 3 bytes into the second NEW: the hunt skips to the record after it.
    let new = clean
        .iter()
        .filter_map(Event::as_item)
        .filter(|i| i.kind.name() == "CHECKPOINT_STATE")
        .nth(1)
        .unwrap()
        .offset;
    let garbage: Vec<u8> = (0..37u8).map(|i| i.wrapping_mul(97) | 0x80).collect();
    let start = new as usize + 3;
    let mid = [garbage.clone(), s[start..].to_vec()].concat();
    let origin = start as u64 - garbage.len() as u64;
    let mut d = Decoder::mid_stream(Direction::Forward, origin);
    assert!(d.hunting());
    assert_eq!(d.libxl_phase, LibxlPhase::Unknown);
    let mut ev = Vec::new();
    d.push(&mid, &mut ev);
    d.finish(&mut ev);
    let (at, skipped, anchor) = ev
        .iter()
        .find_map(|e| match e {
            Event::Resync {
                offset,
                skipped,
                anchor,
            } => Some((*offset, *skipped, *anchor)),
            _ => None,
        })
        .expect("a boundary");
    // The PAGE_DATA right after NEW checks itself.
    assert_eq!((at, anchor), (new + 16, Anchor::Record(Layer::Libxc)));
    assert_eq!(skipped, at - origin);
    // From there on, the same records as the clean decode.
    let after: Vec<_> = ev.iter().filter_map(Event::as_item).cloned().collect();
    let expect: Vec<_> = clean
        .iter()
        .filter_map(Event::as_item)
        .filter(|i| i.offset >= at)
        .cloned()
        .collect();
    assert_eq!(after, expect);
    assert!(!d.hunting());
}

#[test]
fn a_gap_in_a_header_starts_a_hunt_that_ends_at_a_stream_header() {
    let s = [
        colo(0),
        vec![0x42; 8], // junk where a record header should be
        libxl_header(),
        empty(L::LibxcContext.to_u32()),
        libxc_headers(),
    ]
    .concat();
    let cut = colo(0).len() + 3;
    let mut d = Decoder::new(Direction::Forward);
    let mut ev = Vec::new();
    d.push(&s[..cut], &mut ev);
    d.gap(2, &mut ev);
    assert!(d.hunting());
    d.push(&s[cut + 2..], &mut ev);
    d.finish(&mut ev);
    assert!(ev.iter().any(|e| matches!(
        e,
        Event::Resync {
            anchor: Anchor::LibxlHeader,
            ..
        }
    )));
    assert_eq!(state_name(&d), "Records(libxc)");
}

#[test]
fn an_impossible_length_is_not_trusted() {
    // HVM_PARAMS claiming 30 bytes: the record table allows 8 + 16 * n.
    let mut bad = cpu_state();
    let params_at = bad.len() - rec(C::HvmParams.to_u32(), &[0; 40]).len();
    bad[params_at + 4..params_at + 8].copy_from_slice(&30u32.to_le_bytes());
    let s = [opening(), page_data(&[0]), bad].concat();
    let ev = forward(&s);
    let d = ev
        .iter()
        .find_map(|e| match e {
            Event::Diagnostic(d) if d.kind == DiagKind::MalformedBody => Some(d.message.clone()),
            _ => None,
        })
        .unwrap();
    assert!(
        d.contains(
            "claims a 30-byte body but that record holds 8 bytes and at most 4096 16-byte entries"
        ),
        "{d}"
    );
}

// ---- chunking invariance ----

/// The same stream pushed whole, a byte at a time and in random pieces
/// gives the same events.
#[test]
fn chunking_does_not_change_the_events() {
    let mut damaged = colo(1);
    // Non-zero padding and an unknown optional record: reported, no hunt.
    damaged.extend(rec(0x8000_0042, &[1, 2, 3]));
    let pad_at = damaged.len() - 1;
    damaged[pad_at] = 0xee;
    let streams: [(&str, Direction, Vec<u8>); 5] = [
        ("plain xl", Direction::Forward, plain_xl()),
        ("colo", Direction::Forward, colo(2)),
        ("remus", Direction::Forward, remus(2)),
        ("back channel", Direction::Reverse, back_channel(3)),
        ("damaged", Direction::Forward, damaged),
    ];
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for (name, dir, s) in streams {
        let (_, whole) = decode(Decoder::new(dir), &s);
        let mut d = Decoder::new(dir);
        let mut bytes = Vec::new();
        for b in s.chunks(1) {
            d.push(b, &mut bytes);
        }
        d.finish(&mut bytes);
        assert_eq!(bytes, whole, "{name}: byte by byte");
        for _ in 0..20 {
            let mut d = Decoder::new(dir);
            let mut ev = Vec::new();
            let mut at = 0;
            while at < s.len() {
                let n = if rng.gen_bool(0.5) {
                    rng.gen_range(1..17)
                } else {
                    rng.gen_range(1..5000)
                };
                let end = (at + n).min(s.len());
                d.push(&s[at..end], &mut ev);
                at = end;
            }
            d.finish(&mut ev);
            assert_eq!(ev, whole, "{name}: random pieces");
        }
    }
}
