//! Decoder behaviour on streams built by hand from PROTOCOL.md (not by
//! `synth`, which would share the author's reading of the spec).

mod common;

use common::{image_header, libxl_header, rec};

/// PAGE_DATA whose pages are filled with the low byte of their pfn entry.
fn page_data(pfns: &[u64]) -> Vec<u8> {
    common::page_data(pfns, |e| (e & 0xff) as u8)
}
use migscope::decode::{
    Anchor, Decoder, DiagKind, Direction, Event, Info, ItemKind, Layer, LibxcType, LibxlType,
    RecordType, Severity,
};
use proptest::prelude::*;

// ---- byte builders, written out from PROTOCOL.md sections 2-4 ----

fn domain_header_hvm() -> Vec<u8> {
    vec![2, 0, 0, 0, 12, 0, 0, 0, 4, 0, 0, 0, 19, 0, 0, 0]
}

fn tsc() -> Vec<u8> {
    let mut b = 0u32.to_le_bytes().to_vec();
    b.extend_from_slice(&2_400_000u32.to_le_bytes());
    b.extend_from_slice(&123u64.to_le_bytes());
    b.extend_from_slice(&[0; 8]);
    rec(0x08, &b)
}

fn hvm_context() -> Vec<u8> {
    let mut b = Vec::new();
    for (code, inst, len) in [(1u16, 0u16, 24u32), (2, 0, 64), (5, 0, 16), (0, 0, 0)] {
        b.extend_from_slice(&code.to_le_bytes());
        b.extend_from_slice(&inst.to_le_bytes());
        b.extend_from_slice(&len.to_le_bytes());
        b.extend(std::iter::repeat(0x5a).take(len as usize));
    }
    rec(0x09, &b)
}

fn hvm_params() -> Vec<u8> {
    let mut b = 2u32.to_le_bytes().to_vec();
    b.extend_from_slice(&[0; 4]);
    for (i, v) in [(1u64, 0xfeffcu64), (2, 5)] {
        b.extend_from_slice(&i.to_le_bytes());
        b.extend_from_slice(&v.to_le_bytes());
    }
    rec(0x0A, &b)
}

fn emulator_context() -> Vec<u8> {
    let mut b = vec![2, 0, 0, 0, 0, 0, 0, 0];
    b.extend_from_slice(b"QEVM\0\0\0\x03");
    b.extend(std::iter::repeat(0x11).take(301));
    rec(3, &b)
}

fn xenstore() -> Vec<u8> {
    let mut b = vec![2, 0, 0, 0, 0, 0, 0, 0];
    b.extend_from_slice(b"physmap/f0000000/start_addr\0f0000000\0");
    rec(2, &b)
}

fn checkpoint_state(id: u8) -> Vec<u8> {
    vec![5, 0, 0, 0, 4, 0, 0, 0, id, 0, 0, 0, 0, 0, 0, 0]
}

fn dirty_list(pfns: &[u64]) -> Vec<u8> {
    let b: Vec<u8> = pfns.iter().flat_map(|p| p.to_le_bytes()).collect();
    rec(0x0F, &b)
}

/// One libxc batch of a checkpoint: pages, CPU state, CHECKPOINT.
fn libxc_checkpoint(pfns: &[u64]) -> Vec<u8> {
    [
        page_data(pfns),
        tsc(),
        hvm_context(),
        hvm_params(),
        rec(0x0E, &[]),
    ]
    .concat()
}

fn plain_hvm(version: u8) -> Vec<u8> {
    let mut s = [
        libxl_header(),
        rec(1, &[]),
        image_header(u32::from(version)),
        domain_header_hvm(),
    ]
    .concat();
    s.extend(rec(0x11, &[0; 48]));
    s.extend(rec(0x12, &[0; 16]));
    if version == 3 {
        s.extend(rec(0x10, &[]));
    }
    s.extend(page_data(&[0, 1, 2, 0xF000_0000_0000_0003]));
    s.extend(page_data(&[1])); // second round: pfn drops
    s.extend([tsc(), hvm_context(), hvm_params(), rec(0, &[])].concat());
    s.extend([xenstore(), emulator_context(), rec(0, &[])].concat());
    s
}

fn colo_forward(checkpoints: usize) -> Vec<u8> {
    let mut s = [
        libxl_header(),
        rec(1, &[]),
        image_header(3),
        domain_header_hvm(),
    ]
    .concat();
    s.extend(rec(0x11, &[0; 24]));
    s.extend(rec(0x12, &[0; 16]));
    s.extend(rec(0x10, &[]));
    s.extend(libxc_checkpoint(&[0, 1, 2, 3]));
    s.extend([xenstore(), emulator_context(), rec(4, &[])].concat());
    for k in 1..=checkpoints {
        s.extend(checkpoint_state(0));
        s.extend(libxc_checkpoint(&[k as u64, 10 + k as u64]));
        s.extend([emulator_context(), rec(4, &[])].concat());
    }
    s
}

fn decode_all(dir: Direction, bytes: &[u8]) -> Vec<Event> {
    let mut d = Decoder::new(dir);
    let mut ev = Vec::new();
    d.push(bytes, &mut ev);
    d.finish(&mut ev);
    ev
}

fn names(ev: &[Event]) -> Vec<String> {
    ev.iter()
        .filter_map(Event::as_item)
        .map(|i| format!("{}:{}", i.layer, i.kind.name()))
        .collect()
}

fn diags(ev: &[Event]) -> Vec<(Severity, DiagKind, u64)> {
    ev.iter()
        .filter_map(|e| match e {
            Event::Diagnostic(d) => Some((d.severity, d.kind, d.offset)),
            _ => None,
        })
        .collect()
}

// ---- clean streams ----

#[test]
fn plain_hvm_v3_follows_the_layer_state_machine() {
    let s = plain_hvm(3);
    let ev = decode_all(Direction::Forward, &s);
    assert_eq!(diags(&ev), vec![], "{ev:#?}");
    assert_eq!(
        names(&ev),
        [
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
            "libxl:EMULATOR_XENSTORE_DATA",
            "libxl:EMULATOR_CONTEXT",
            "libxl:END",
        ]
    );
    let items: Vec<_> = ev.iter().filter_map(Event::as_item).collect();
    // Offsets are exact: header 16, LIBXC_CONTEXT 8, image 24, domain 16.
    assert_eq!(items[1].offset, 16);
    assert_eq!(items[2].offset, 24);
    assert_eq!(items[4].offset, 64);
    let Info::PageData(p) = &items[7].info else {
        panic!()
    };
    assert_eq!((p.count, p.data_pages, p.types[0xF]), (4, 3, 1));
    assert_eq!(items[7].body_length, 8 + 32 + 3 * 4096);
    assert_eq!(
        items[11].info.summary(),
        "2 params, STORE_PFN=0xfeffc, STORE_EVTCHN=0x5"
    );
    let switches: Vec<_> = ev
        .iter()
        .filter_map(|e| match e {
            Event::LayerSwitch { from, to, .. } => Some((*from, *to)),
            _ => None,
        })
        .collect();
    assert_eq!(
        switches,
        vec![(Layer::Libxl, Layer::Libxc), (Layer::Libxc, Layer::Libxl)]
    );
}

#[test]
fn version_2_infers_static_data_end_before_first_page_data() {
    let s = plain_hvm(2);
    let ev = decode_all(Direction::Forward, &s);
    assert_eq!(diags(&ev), vec![]);
    let pos = ev
        .iter()
        .position(|e| matches!(e, Event::StaticDataEndInferred { .. }))
        .unwrap();
    let next = ev[pos + 1].as_item().unwrap();
    assert_eq!(
        next.kind,
        ItemKind::Record(RecordType::Libxc(LibxcType::PageData))
    );
    assert_eq!(
        ev[pos],
        Event::StaticDataEndInferred {
            offset: next.offset
        }
    );
}

#[test]
fn colo_forward_returns_to_libxc_after_new() {
    let s = colo_forward(3);
    let ev = decode_all(Direction::Forward, &s);
    assert_eq!(diags(&ev), vec![], "{ev:#?}");
    let n = names(&ev);
    let news = n.iter().filter(|x| *x == "libxl:CHECKPOINT_STATE").count();
    assert_eq!(news, 3);
    // After every NEW comes a libxc PAGE_DATA, not a libxl record.
    for (i, x) in n.iter().enumerate() {
        if x == "libxl:CHECKPOINT_STATE" {
            assert_eq!(n[i + 1], "libxc:PAGE_DATA");
        }
    }
    assert_eq!(n.iter().filter(|x| *x == "libxl:CHECKPOINT_END").count(), 4);
    assert_eq!(n.iter().filter(|x| *x == "libxc:CHECKPOINT").count(), 4);
}

#[test]
fn remus_continues_with_libxc_after_checkpoint_end() {
    let mut s = [
        libxl_header(),
        rec(1, &[]),
        image_header(3),
        domain_header_hvm(),
        rec(0x10, &[]),
    ]
    .concat();
    for k in 0..3u64 {
        s.extend(libxc_checkpoint(&[k]));
        s.extend([emulator_context(), rec(4, &[])].concat());
    }
    let ev = decode_all(Direction::Forward, &s);
    assert_eq!(diags(&ev), vec![]);
    let n = names(&ev);
    assert_eq!(n.iter().filter(|x| *x == "libxc:PAGE_DATA").count(), 3);
    assert_eq!(n.last().unwrap(), "libxl:CHECKPOINT_END");
}

#[test]
fn xl_forward_with_preamble_and_trailer() {
    let json =
        br#"{"c_info":{"type":"hvm","name":"vm1"},"b_info":{"max_memkb":1048576,"max_vcpus":2}}"#;
    let mut s = b"Xen saved domain, xl format\n \0 \r".to_vec();
    s.extend_from_slice(&[4, 3, 2, 1]);
    s.extend_from_slice(&3u32.to_le_bytes());
    s.extend_from_slice(&0u32.to_le_bytes());
    s.extend_from_slice(&(json.len() as u32 + 5).to_le_bytes());
    s.extend_from_slice(&(json.len() as u32 + 1).to_le_bytes());
    s.extend_from_slice(json);
    s.push(0);
    s.extend(plain_hvm(3));
    s.extend_from_slice(b"domain is yours, you are cleared to unpause\0");
    let ev = decode_all(Direction::Forward, &s);
    assert_eq!(diags(&ev), vec![]);
    let items: Vec<_> = ev.iter().filter_map(Event::as_item).collect();
    assert_eq!(items[0].kind, ItemKind::SaveHeader);
    assert_eq!(
        items[0].info.summary(),
        "xl save header, JSON config, stream v2, domain vm1 (hvm), 1024 MiB, 2 vcpus"
    );
    assert_eq!(items[1].offset, 48 + json.len() as u64 + 5);
    assert_eq!(items.last().unwrap().kind, ItemKind::ClearedToUnpause);
}

#[test]
fn reverse_xl_messages_and_back_channel() {
    let mut s = b"xl migration receiver ready, send binary domain data.\n".to_vec();
    s.extend(checkpoint_state(2));
    s.extend(checkpoint_state(3));
    s.extend(checkpoint_state(1));
    s.extend(dirty_list(&[3, 4, 5, 900]));
    s.extend(dirty_list(&[]));
    let ev = decode_all(Direction::Reverse, &s);
    assert_eq!(diags(&ev), vec![]);
    let items: Vec<_> = ev.iter().filter_map(Event::as_item).collect();
    let sums: Vec<String> = items
        .iter()
        .map(|i| format!("{} {}", i.kind.name(), i.info.summary()))
        .collect();
    assert_eq!(
        sums,
        [
            "BANNER \"xl migration receiver ready, send binary domain data.\\n\"",
            "CHECKPOINT_STATE SVM_READY",
            "CHECKPOINT_STATE SVM_RESUMED",
            "CHECKPOINT_STATE SVM_SUSPENDED",
            "CHECKPOINT_DIRTY_PFN_LIST 4 pfns 0x3-0x5, 0x384",
            "CHECKPOINT_DIRTY_PFN_LIST 0 pfns",
        ]
    );
    assert_eq!(items[1].offset, 54);
}

#[test]
fn reverse_plain_handover_and_error_text() {
    let mut s = b"bash: xl: command not found\n".to_vec();
    s.extend_from_slice(b"xl migration receiver ready, send binary domain data.\n");
    s.extend_from_slice(b"domain received, ready to unpause\0");
    s.extend_from_slice(b"my copy unpause results are as follows\0");
    s.push(0);
    let ev = decode_all(Direction::Reverse, &s);
    assert_eq!(diags(&ev), vec![]);
    let kinds: Vec<_> = ev
        .iter()
        .filter_map(Event::as_item)
        .map(|i| i.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            ItemKind::ReceiverText,
            ItemKind::Banner,
            ItemKind::ReadyToUnpause,
            ItemKind::UnpauseResult
        ]
    );
}

// ---- corruption becomes diagnostics with offsets ----

#[test]
fn page_data_length_mismatch_is_reported_and_decoding_goes_on() {
    let mut s = [
        libxl_header(),
        rec(1, &[]),
        image_header(3),
        domain_header_hvm(),
        rec(0x10, &[]),
    ]
    .concat();
    let at = s.len() as u64;
    // count says 2 pfns with data, body carries one page only.
    let mut body = 2u32.to_le_bytes().to_vec();
    body.extend_from_slice(&[0; 4]);
    body.extend_from_slice(&7u64.to_le_bytes());
    body.extend_from_slice(&8u64.to_le_bytes());
    body.extend(std::iter::repeat(1).take(4096));
    s.extend(rec(1, &body));
    s.extend(tsc());
    let ev = decode_all(Direction::Forward, &s);
    let d = diags(&ev);
    assert!(
        d.contains(&(Severity::Error, DiagKind::MalformedBody, at)),
        "{d:?}"
    );
    assert!(names(&ev).contains(&"libxc:X86_TSC_INFO".to_string()));
}

#[test]
fn non_zero_padding_and_unexpected_records() {
    let mut s = [
        libxl_header(),
        rec(1, &[]),
        image_header(3),
        domain_header_hvm(),
    ]
    .concat();
    let pad_at = s.len() as u64;
    let mut r = rec(0x0A, &[0; 8]);
    r.extend_from_slice(&[]);
    s.extend(r);
    let cs_at = s.len() as u64;
    s.extend(rec(0x0F, &[])); // dirty list on the forward stream
    let bad_pad_at = s.len() as u64;
    let mut x = rec(0x0B, &[1, 2, 3]);
    x[12] = 0xEE; // padding byte
    s.extend(x);
    let ev = decode_all(Direction::Forward, &s);
    let d = diags(&ev);
    assert!(
        d.contains(&(Severity::Warning, DiagKind::UnexpectedRecord, cs_at)),
        "{d:?}"
    );
    assert!(
        d.contains(&(Severity::Warning, DiagKind::NonZeroPadding, bad_pad_at)),
        "{d:?}"
    );
    let _ = pad_at;
}

#[test]
fn oversized_record_resyncs_on_the_next_real_one() {
    let mut s = [
        libxl_header(),
        rec(1, &[]),
        image_header(3),
        domain_header_hvm(),
        rec(0x10, &[]),
    ]
    .concat();
    let at = s.len() as u64;
    s.extend_from_slice(&9u32.to_le_bytes());
    s.extend_from_slice(&0x0900_0000u32.to_le_bytes());
    s.extend(std::iter::repeat(0x77).take(1000));
    s.extend(page_data(&[5, 6]));
    let ev = decode_all(Direction::Forward, &s);
    let d = diags(&ev);
    assert_eq!(d[0], (Severity::Error, DiagKind::OversizedRecord, at));
    assert!(
        ev.iter().any(|e| matches!(
            e,
            Event::Resync {
                skipped: 1000,
                anchor: Anchor::Record(Layer::Libxc),
                ..
            }
        )),
        "{ev:#?}"
    );
    assert_eq!(names(&ev).last().unwrap(), "libxc:PAGE_DATA");
}

#[test]
fn unknown_types_are_shown_and_skipped() {
    let mut s = [
        libxl_header(),
        rec(1, &[]),
        image_header(3),
        domain_header_hvm(),
    ]
    .concat();
    let opt_at = s.len() as u64;
    s.extend(rec(0x8000_0042, &[1, 2, 3, 4, 5]));
    let man_at = s.len() as u64;
    s.extend(rec(0x42, &[9; 16]));
    s.extend(rec(0x10, &[]));
    let ev = decode_all(Direction::Forward, &s);
    let d = diags(&ev);
    assert!(d.contains(&(Severity::Note, DiagKind::UnknownRecord, opt_at)));
    assert!(d.contains(&(Severity::Warning, DiagKind::UnknownRecord, man_at)));
    let n = names(&ev);
    assert!(n.contains(&"libxc:UNKNOWN_OPTIONAL".to_string()));
    assert_eq!(n.last().unwrap(), "libxc:STATIC_DATA_END");
}

#[test]
fn truncated_stream_names_the_record() {
    let mut s = plain_hvm(3);
    let cut = s.len() - 200;
    s.truncate(cut);
    let ev = decode_all(Direction::Forward, &s);
    let d = diags(&ev);
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].1, DiagKind::Truncated);
    let Event::Diagnostic(x) = ev
        .iter()
        .find(|e| matches!(e, Event::Diagnostic(_)))
        .unwrap()
    else {
        panic!()
    };
    assert!(x.message.contains("EMULATOR_CONTEXT"), "{}", x.message);
}

#[test]
fn legacy_and_ssh_are_refused() {
    let ev = decode_all(Direction::Forward, b"SSH-2.0-OpenSSH_9.2p1\r\n");
    assert!(
        matches!(&ev[0], Event::Diagnostic(d) if d.kind == DiagKind::Unrecognised && d.message.contains("SSH"))
    );
    let legacy = [0x00, 0x00, 0x10, 0x00, 0, 0, 0, 0, 1, 2, 3, 4];
    let ev = decode_all(Direction::Forward, &legacy);
    assert!(
        matches!(&ev[0], Event::Diagnostic(d) if d.kind == DiagKind::Unrecognised && d.message.contains("legacy"))
    );
    assert_eq!(ev.len(), 1);
}

// ---- gaps and mid-stream starts ----

#[test]
fn gap_inside_page_bytes_keeps_sync() {
    let s = plain_hvm(3);
    let full = decode_all(Direction::Forward, &s);
    // The first PAGE_DATA starts at 96 (16+8+24+16+56+24+8 = 152?) - compute from the decode.
    let pd = full
        .iter()
        .filter_map(Event::as_item)
        .find(|i| i.kind.name() == "PAGE_DATA")
        .unwrap();
    let gap_from = (pd.offset + 8 + 8 + 32 + 100) as usize; // inside the first page
    let gap_len = 5000usize;
    let mut d = Decoder::new(Direction::Forward);
    let mut ev = Vec::new();
    d.push(&s[..gap_from], &mut ev);
    d.gap(gap_len as u64, &mut ev);
    d.push(&s[gap_from + gap_len..], &mut ev);
    d.finish(&mut ev);
    assert_eq!(names(&ev), names(&full));
    let pd2 = ev
        .iter()
        .filter_map(Event::as_item)
        .find(|i| i.kind.name() == "PAGE_DATA")
        .unwrap();
    assert_eq!(pd2.lost, gap_len as u64);
    assert_eq!(pd2.info, pd.info, "pfn entries were all seen");
    assert!(!ev.iter().any(|e| matches!(e, Event::Resync { .. })));
}

#[test]
fn gap_over_a_record_boundary_resyncs() {
    let s = colo_forward(4);
    let full = decode_all(Direction::Forward, &s);
    let items: Vec<_> = full.iter().filter_map(Event::as_item).cloned().collect();
    // Lose the middle of checkpoint 2's TSC record through its HVM_CONTEXT.
    let news: Vec<_> = items
        .iter()
        .filter(|i| i.kind.name() == "CHECKPOINT_STATE")
        .collect();
    let from = news[1].offset as usize + 16 + 8 + 8 + 16 + 2 * 4096 + 10;
    let len = 200;
    let mut d = Decoder::new(Direction::Forward);
    let mut ev = Vec::new();
    d.push(&s[..from], &mut ev);
    d.gap(len, &mut ev);
    d.push(&s[from + len as usize..], &mut ev);
    d.finish(&mut ev);
    let resync = ev.iter().find_map(|e| match e {
        Event::Resync { offset, .. } => Some(*offset),
        _ => None,
    });
    let resync = resync.expect("resynchronised");
    // Everything from the resync point on agrees with the full decode.
    let after: Vec<_> = ev
        .iter()
        .filter_map(Event::as_item)
        .filter(|i| i.offset >= resync)
        .cloned()
        .collect();
    let expect: Vec<_> = items
        .iter()
        .filter(|i| i.offset >= resync)
        .cloned()
        .collect();
    assert_eq!(after, expect);
    assert!(
        resync < news[2].offset,
        "resync at {resync}, next NEW at {}",
        news[2].offset
    );
}

/// A dirty pfn list whose length was blown up (16 MiB) would swallow every
/// back-channel record after it; its pfns stop ascending where the next
/// record starts, so the decoder says so and finds that record again.
#[test]
fn a_dirty_list_with_a_wrong_length_does_not_swallow_the_back_channel() {
    let mut s = Vec::new();
    for k in 0..6u64 {
        let mut list = dirty_list(&[k, k + 1, 50 + k]);
        if k == 2 {
            list[4..8].copy_from_slice(&0x00ff_fff8u32.to_le_bytes());
        }
        s.extend(checkpoint_state(1));
        s.extend(list);
        s.extend(checkpoint_state(2));
        s.extend(checkpoint_state(3));
    }
    // In segments of one record each, as the secondary sends them.
    let mut d = Decoder::back_channel();
    let mut ev = Vec::new();
    let mut at = 0;
    while at < s.len() {
        let len = 8 + u32::from_le_bytes(s[at + 4..at + 8].try_into().unwrap()) as usize;
        let len = len.div_ceil(8) * 8;
        let end = if len > 1 << 20 { at + 8 + 24 } else { at + len };
        d.push(&s[at..end], &mut ev);
        at = end;
    }
    d.finish(&mut ev);
    let states = ev
        .iter()
        .filter_map(Event::as_item)
        .filter(|i| i.kind.name() == "CHECKPOINT_STATE")
        .count();
    // None is lost: the hunt starts at the segment holding the descent,
    // which is where SVM_READY starts.
    assert_eq!(states, 6 * 3, "{ev:#?}");
    let said = ev
        .iter()
        .any(|e| matches!(e, Event::Diagnostic(d) if d.message.contains("stop ascending")));
    assert!(said);
}

/// An EMULATOR_CONTEXT whose length was blown up (to 5 MiB, so its body is
/// skipped, not buffered) would swallow the checkpoints after it; the
/// CHECKPOINT_END + NEW inside it show where it really ended, across pushes
/// of a few bytes.
#[test]
fn a_blown_emulator_context_does_not_swallow_the_next_checkpoints() {
    let s = colo_forward(4);
    let whole = decode_all(Direction::Forward, &s);
    let count = |ev: &[Event], name: &str| names(ev).iter().filter(|x| *x == name).count();
    // The EMULATOR_CONTEXT of checkpoint 1: the second one after the first NEW.
    let new = checkpoint_state(0);
    let first_new = s.windows(16).position(|w| w == new.as_slice()).unwrap();
    let emu = first_new
        + s[first_new..]
            .windows(4)
            .position(|w| w == [3, 0, 0, 0])
            .unwrap();
    assert!(
        whole
            .iter()
            .filter_map(Event::as_item)
            .any(|i| i.offset == emu as u64 && i.kind.name() == "EMULATOR_CONTEXT"),
        "an EMULATOR_CONTEXT at {emu}"
    );
    for blown in [5u32 << 20, 1 << 20] {
        let mut bad = s.clone();
        bad[emu + 4..emu + 8].copy_from_slice(&blown.to_le_bytes());
        let mut d = Decoder::new(Direction::Forward);
        let mut ev = Vec::new();
        for c in bad.chunks(5) {
            d.push(c, &mut ev);
        }
        d.finish(&mut ev);
        assert_eq!(
            count(&ev, "libxl:CHECKPOINT_STATE"),
            4,
            "{blown}: {:?}",
            names(&ev)
        );
        assert_eq!(
            count(&ev, "libxl:CHECKPOINT_END"),
            count(&whole, "libxl:CHECKPOINT_END"),
            "{blown}"
        );
        assert!(ev.iter().any(|e| matches!(e, Event::Diagnostic(d)
            if d.message.contains("CHECKPOINT_END and CHECKPOINT_STATE NEW follow"))));
    }
}

/// Found by the adversarial captures (a million one-byte segments): a pfn
/// entry arriving in three pieces or more was lost.
#[test]
fn one_byte_at_a_time_is_the_same_decode() {
    let s = colo_forward(3);
    let whole = decode_all(Direction::Forward, &s);
    let mut d = Decoder::new(Direction::Forward);
    let mut ev = Vec::new();
    for b in s.chunks(1) {
        d.push(b, &mut ev);
    }
    d.finish(&mut ev);
    assert_eq!(ev, whole);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// The same stream pushed in random chunk sizes yields identical events.
    #[test]
    fn chunking_does_not_change_events(
        splits in proptest::collection::vec(prop_oneof![1usize..17, 1usize..5000], 1..60)
    ) {
        let s = [colo_forward(2), vec![]].concat();
        let whole = decode_all(Direction::Forward, &s);
        let mut d = Decoder::new(Direction::Forward);
        let mut ev = Vec::new();
        let mut at = 0;
        for n in splits.iter().cycle() {
            if at >= s.len() { break; }
            let end = (at + n).min(s.len());
            d.push(&s[at..end], &mut ev);
            at = end;
        }
        d.finish(&mut ev);
        prop_assert_eq!(ev, whole);
    }

    /// Started at any offset, the decoder resynchronises within a bounded
    /// number of bytes and then agrees with the full decode.
    #[test]
    fn mid_stream_start_converges(start_frac in 0.0f64..0.95) {
        let s = colo_forward(6);
        let full = decode_all(Direction::Forward, &s);
        let start = (s.len() as f64 * start_frac) as usize;
        let mut d = Decoder::mid_stream(Direction::Forward, start as u64);
        let mut ev = Vec::new();
        d.push(&s[start..], &mut ev);
        d.finish(&mut ev);
        let first = ev.iter().find_map(|e| match e { Event::Resync { offset, .. } => Some(*offset), _ => None });
        let first = first.expect("found a boundary");
        // Bounded: the largest record (checkpoint 0 PAGE_DATA, 4 pages) plus slack;
        // page contents cannot hold an anchor, so the hunt may cross one record.
        prop_assert!(first - start as u64 <= 5 * 4096 + 1024, "resync after {} bytes", first - start as u64);
        let after: Vec<_> = ev.iter().filter_map(Event::as_item).cloned().collect();
        let expect: Vec<_> = full.iter().filter_map(Event::as_item).filter(|i| i.offset >= first).cloned().collect();
        prop_assert_eq!(after, expect);
        prop_assert!(!ev.iter().any(|e| matches!(e, Event::Diagnostic(d) if d.severity == Severity::Error)));
    }

    /// Back channel started mid-stream converges too.
    #[test]
    fn back_channel_mid_stream(start in 0usize..200) {
        let mut s = Vec::new();
        for k in 0..8u64 {
            s.extend(checkpoint_state(1));
            s.extend(dirty_list(&[k, k + 1, 50 + k]));
            s.extend(checkpoint_state(2));
            s.extend(checkpoint_state(3));
        }
        let full = {
            let mut d = Decoder::back_channel();
            let mut ev = Vec::new();
            d.push(&s, &mut ev);
            d.finish(&mut ev);
            ev
        };
        let start = start.min(s.len());
        let mut d = Decoder::mid_stream(Direction::Reverse, start as u64);
        let mut ev = Vec::new();
        d.push(&s[start..], &mut ev);
        d.finish(&mut ev);
        let items: Vec<_> = ev.iter().filter_map(Event::as_item).cloned().collect();
        let first = items.first().map(|i| i.offset).unwrap_or(u64::MAX);
        prop_assert!(first <= start as u64 + 72);
        let expect: Vec<_> = full.iter().filter_map(Event::as_item).filter(|i| i.offset >= first).cloned().collect();
        prop_assert_eq!(items, expect);
    }

    /// Arbitrary bytes never panic, and memory stays bounded (no event holds
    /// more than the caps).
    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..4000), mid in any::<bool>(), rev in any::<bool>()) {
        let dir = if rev { Direction::Reverse } else { Direction::Forward };
        let mut d = if mid { Decoder::mid_stream(dir, 0) } else { Decoder::new(dir) };
        let mut ev = Vec::new();
        for c in bytes.chunks(7) {
            d.push(c, &mut ev);
        }
        d.gap(13, &mut ev);
        d.push(&bytes, &mut ev);
        d.finish(&mut ev);
        for e in &ev {
            if let Event::Item(i) = e {
                prop_assert!(!i.info.summary().chars().any(char::is_control));
            }
        }
    }
}

#[test]
fn checkpoint_state_type_names() {
    assert_eq!(
        RecordType::Libxl(LibxlType::CheckpointState).name(),
        "CHECKPOINT_STATE"
    );
}

/// Regression: starting two bytes into a CHECKPOINT_STATE, the bytes
/// `00 00 00 00 00 00 01 00` looked like a libxc END with a 64 KiB body; the
/// hunt waited for that body instead of rejecting it (END is never evidence)
/// and skipped the rest of the stream.
#[test]
fn regression_hunt_not_blocked_by_impossible_candidate() {
    let s = colo_forward(6);
    let items: Vec<_> = decode_all(Direction::Forward, &s)
        .into_iter()
        .filter_map(|e| e.as_item().cloned())
        .collect();
    let new = items
        .iter()
        .filter(|i| i.kind.name() == "CHECKPOINT_STATE")
        .nth(1)
        .unwrap();
    let start = new.offset + 2;
    let mut d = Decoder::mid_stream(Direction::Forward, start);
    let mut ev = Vec::new();
    d.push(&s[start as usize..], &mut ev);
    d.finish(&mut ev);
    assert!(
        ev.iter().any(
            |e| matches!(e, Event::Resync { offset, skipped: 14, .. } if *offset == new.offset + 16)
        ),
        "{:?}",
        &ev[..2]
    );
}

/// Memory stays bounded whatever the stream: 4 MiB page batches, a 100 MiB
/// opaque record, a 40 MiB dirty list and a gap-broken stretch hold no more
/// than the documented caps.
#[test]
fn memory_is_bounded_whatever_the_stream_length() {
    let mut d = Decoder::new(Direction::Forward);
    let mut ev = Vec::new();
    let mut peak = 0;
    let mut push = |d: &mut Decoder, b: &[u8], ev: &mut Vec<Event>| {
        for c in b.chunks(1 << 16) {
            d.push(c, ev);
            peak = peak.max(d.buffered_capacity());
        }
        ev.clear();
    };
    push(
        &mut d,
        &[
            libxl_header(),
            rec(1, &[]),
            image_header(3),
            domain_header_hvm(),
            rec(0x10, &[]),
        ]
        .concat(),
        &mut ev,
    );
    let pfns: Vec<u64> = (0..1024).collect();
    let batch = page_data(&pfns);
    for _ in 0..64 {
        push(&mut d, &batch, &mut ev); // 256 MiB of pages
    }
    // An opaque TOOLSTACK record of 100 MiB: skipped, not buffered.
    let mut big = 0x0Bu32.to_le_bytes().to_vec();
    big.extend_from_slice(&(100u32 << 20).to_le_bytes());
    push(&mut d, &big, &mut ev);
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..100 {
        push(&mut d, &zeros, &mut ev);
    }
    // A gap then garbage: the hunt window is capped.
    d.gap(12345, &mut ev);
    let junk: Vec<u8> = (0..(8u32 << 20))
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    push(&mut d, &junk, &mut ev);
    assert!(
        peak <= Decoder::MAX_BUFFERED,
        "peak {peak} > {}",
        Decoder::MAX_BUFFERED
    );
    assert!(
        peak < 2 * (1 << 20),
        "peak {peak}: nothing here should need more than the hunt window"
    );
}

/// A COLO stream cut after NEW (inside checkpoint 1) says so; one cut after
/// CHECKPOINT_END is a healthy end and says nothing.
#[test]
fn colo_stream_ending_inside_a_checkpoint_is_reported() {
    let mut s = colo_forward(1);
    let healthy = decode_all(Direction::Forward, &s);
    assert_eq!(diags(&healthy), vec![]);
    s.extend(checkpoint_state(0));
    let cut = decode_all(Direction::Forward, &s);
    assert_eq!(
        diags(&cut),
        vec![(Severity::Warning, DiagKind::Truncated, s.len() as u64)]
    );
}
