//! The QEMU decoder on arbitrary bytes, pushed in fuzzer-chosen chunks with
//! fuzzer-chosen capture gaps.
//!
//! Input layout: byte 0 chooses the mode (bit 0: reverse direction; bit 1:
//! mid-stream; bit 2: prefix the stream with "QEVM" version 3), byte 1 is
//! `n`, the number of plan entries (at most 16), then `n` entries of 3
//! bytes each: a chunk size (u16 LE, 0 means "the rest") and a gap byte (0:
//! no gap, otherwise `g * 97` bytes). The rest is the stream.
#![no_main]

use libfuzzer_sys::fuzz_target;
use migscope::decode::qemu::QemuDecoder;
use migscope::decode::{Direction, Event};

fn check(dec: &QemuDecoder, out: &mut Vec<Event>, end: u64) {
    assert!(dec.buffered_capacity() <= QemuDecoder::MAX_BUFFERED);
    for e in out.drain(..) {
        match &e {
            Event::Item(item) => {
                assert!(item.offset + item.wire_len <= end, "an item beyond the bytes pushed");
                let s = item.info.summary();
                assert!(!s.chars().any(char::is_control), "control character in {s:?}");
            }
            Event::Diagnostic(d) => {
                let s = d.to_string();
                assert!(!s.chars().any(char::is_control), "control character in {s:?}");
            }
            _ => {}
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let mode = data[0];
    let n = usize::from(data[1] % 17);
    let plan_end = (2 + 3 * n).min(data.len());
    let plan: Vec<(usize, u64)> = data[2..plan_end]
        .chunks_exact(3)
        .map(|c| (usize::from(u16::from_le_bytes([c[0], c[1]])), u64::from(c[2]) * 97))
        .collect();
    let mut stream = Vec::new();
    if mode & 4 != 0 {
        stream.extend_from_slice(b"QEVM\0\0\0\x03");
    }
    stream.extend_from_slice(&data[plan_end..]);
    let dir = if mode & 1 != 0 { Direction::Reverse } else { Direction::Forward };
    let mut dec = if mode & 2 != 0 {
        QemuDecoder::mid_stream(dir, 0)
    } else {
        QemuDecoder::new(dir)
    };
    let mut out = Vec::new();
    let mut rest = &stream[..];
    for (size, gap) in plan {
        let take = if size == 0 { rest.len() } else { size.min(rest.len()) };
        dec.push(&rest[..take], &mut out);
        rest = &rest[take..];
        if gap > 0 {
            dec.gap(gap, &mut out);
        }
        check(&dec, &mut out, dec.offset());
    }
    dec.push(rest, &mut out);
    dec.finish(&mut out);
    check(&dec, &mut out, dec.offset());
});
