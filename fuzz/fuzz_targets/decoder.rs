//! The incremental decoder on arbitrary bytes, pushed in fuzzer-chosen chunks
//! with fuzzer-chosen capture gaps.
//!
//! Input layout: byte 0 chooses the mode (bits 0-1: new forward, new
//! reverse, mid-stream forward, back channel; bit 2: mid-stream at a
//! fuzzer-chosen offset instead), byte 1 is `n`, the number of plan entries
//! (at most 16), then `n` entries of 3 bytes each: a chunk size (u16 LE, 0
//! means "the rest") and a gap byte (0: no gap after the chunk, otherwise a gap
//! of `g * 97` bytes, with 255 meaning a large gap of 5 MiB). The rest of the
//! input is the stream. After the plan runs out the remainder is pushed in
//! one piece.
#![no_main]

use libfuzzer_sys::fuzz_target;
use migscope::decode::{Decoder, Direction, Event};

fn check(dec: &Decoder, out: &mut Vec<Event>) {
    assert!(
        dec.buffered_capacity() <= Decoder::MAX_BUFFERED,
        "decoder holds {} bytes, more than {}",
        dec.buffered_capacity(),
        Decoder::MAX_BUFFERED
    );
    for e in out.drain(..) {
        match &e {
            Event::Item(item) => {
                let s = item.info.summary();
                assert!(
                    !s.chars().any(char::is_control),
                    "control character in summary {s:?}"
                );
            }
            Event::Diagnostic(d) => {
                let s = d.to_string();
                assert!(
                    !s.chars().any(|c| c.is_control() && c != '\n'),
                    "control character in diagnostic {s:?}"
                );
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
    let plan_len = n * 3;
    if data.len() < 2 + plan_len {
        return;
    }
    let plan = &data[2..2 + plan_len];
    let mut stream = &data[2 + plan_len..];

    let mut dec = match mode & 3 {
        0 => Decoder::new(Direction::Forward),
        1 => Decoder::new(Direction::Reverse),
        2 => Decoder::mid_stream(Direction::Forward, 0),
        _ => Decoder::back_channel(),
    };
    if mode & 4 != 0 {
        let dir = if mode & 8 != 0 {
            Direction::Reverse
        } else {
            Direction::Forward
        };
        dec = Decoder::mid_stream(dir, u64::from(mode >> 4) * 4093);
    }
    let mut out = Vec::new();
    for entry in plan.chunks_exact(3) {
        let size = usize::from(u16::from_le_bytes([entry[0], entry[1]]));
        let size = if size == 0 {
            stream.len()
        } else {
            size.min(stream.len())
        };
        let (chunk, rest) = stream.split_at(size);
        stream = rest;
        let before = dec.offset();
        dec.push(chunk, &mut out);
        assert_eq!(
            dec.offset(),
            before + chunk.len() as u64,
            "offset after push"
        );
        check(&dec, &mut out);
        let gap = match entry[2] {
            0 => 0,
            255 => 5 << 20,
            g => u64::from(g) * 97,
        };
        if gap > 0 {
            let before = dec.offset();
            dec.gap(gap, &mut out);
            assert_eq!(dec.offset(), before + gap, "offset after gap");
            check(&dec, &mut out);
        }
    }
    dec.push(stream, &mut out);
    check(&dec, &mut out);
    dec.finish(&mut out);
    check(&dec, &mut out);
});
