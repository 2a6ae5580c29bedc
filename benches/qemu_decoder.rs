//! QEMU decoder throughput: a RAM section of raw pages (PAGE records, the
//! bulk of a migration's bytes) and one of zero pages (9-byte ZERO records,
//! the most records per byte), pushed in 64 KiB chunks and in 1448-byte
//! segments. Page bytes are skipped, so the page figure is per byte of
//! stream; the zero-page figure is the per-record cost.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use migscope::decode::qemu::QemuDecoder;
use migscope::decode::Direction;

/// "QEVM", a START "ram" section with MEM_SIZE, then a PART section of
/// `pages` records (raw pages when `data`, else zero pages), EOS, footer,
/// EOF.
fn stream(pages: u64, data: bool) -> Vec<u8> {
    let mut s = b"QEVM\0\0\0\x03".to_vec();
    s.extend_from_slice(&[1, 0, 0, 0, 2, 3, b'r', b'a', b'm', 0, 0, 0, 0, 0, 0, 0, 4]);
    let size = pages * 4096;
    s.extend_from_slice(&(size | 0x04).to_be_bytes());
    s.extend_from_slice(&[6, b'p', b'c', b'.', b'r', b'a', b'm']);
    s.extend_from_slice(&size.to_be_bytes());
    s.extend_from_slice(&0x10u64.to_be_bytes());
    s.extend_from_slice(&[0x7e, 0, 0, 0, 2, 2, 0, 0, 0, 2]);
    for i in 0..pages {
        let flags = if data { 0x08 } else { 0x02 } | if i == 0 { 0 } else { 0x20 };
        s.extend_from_slice(&((i * 4096) | flags).to_be_bytes());
        if i == 0 {
            s.extend_from_slice(&[6, b'p', b'c', b'.', b'r', b'a', b'm']);
        }
        if data {
            s.resize(s.len() + 4096, 0x5a);
        } else {
            s.push(0);
        }
    }
    s.extend_from_slice(&0x10u64.to_be_bytes());
    s.extend_from_slice(&[0x7e, 0, 0, 0, 2, 0]);
    s
}

fn decode(s: &[u8], chunk: usize) -> usize {
    let mut d = QemuDecoder::new(Direction::Forward);
    let mut ev = Vec::new();
    let mut n = 0;
    for c in s.chunks(chunk) {
        d.push(c, &mut ev);
        n += ev.len();
        ev.clear();
    }
    d.finish(&mut ev);
    n + ev.len()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("qemu_decoder");
    g.sample_size(10);
    for (name, s) in [
        ("pages", stream(32 << 10, true)),      // 128 MiB of pages
        ("zero_pages", stream(4 << 20, false)), // 4 Mi zero pages, 16 GiB of RAM
    ] {
        g.throughput(Throughput::Bytes(s.len() as u64));
        for chunk in [64 << 10, 1448] {
            g.bench_with_input(BenchmarkId::new(name, chunk), &chunk, |b, &chunk| {
                b.iter(|| decode(&s, chunk))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
