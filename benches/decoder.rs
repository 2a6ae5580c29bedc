//! Decoder throughput over a page-heavy stream (PAGE_DATA batches of 1024
//! pages, as libxc sends them), pushed in 64 KiB chunks and in 1448-byte
//! segments. Page bodies are skipped, so the figure is per byte of stream.
//! Target (issue 2): over 5 GB/s on 64 KiB chunks.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use migscope::decode::{Decoder, Direction};

fn rec(t: u32, body: &[u8]) -> Vec<u8> {
    let mut v = t.to_le_bytes().to_vec();
    v.extend_from_slice(&(body.len() as u32).to_le_bytes());
    v.extend_from_slice(body);
    v.resize(v.len().div_ceil(8) * 8, 0);
    v
}

/// A plain HVM libxl stream with `batches` PAGE_DATA records of 1024 pages.
fn stream(batches: u64) -> Vec<u8> {
    let mut s = b"LibxlFmt\0\0\0\x02\0\0\0\0".to_vec();
    s.extend(rec(1, &[]));
    s.extend_from_slice(&[0xff; 8]);
    s.extend_from_slice(b"XENF\0\0\0\x03\0\0\0\0\0\0\0\0");
    s.extend_from_slice(&[2, 0, 0, 0, 12, 0, 0, 0, 4, 0, 0, 0, 19, 0, 0, 0]);
    s.extend(rec(0x10, &[]));
    for b in 0..batches {
        let mut body = 1024u32.to_le_bytes().to_vec();
        body.extend_from_slice(&[0; 4]);
        for i in 0..1024u64 {
            body.extend_from_slice(&(b * 1024 + i).to_le_bytes());
        }
        body.resize(body.len() + 1024 * 4096, 0x5a);
        s.extend(rec(1, &body));
    }
    s.extend(rec(0, &[]));
    s
}

fn decode(s: &[u8], chunk: usize) -> usize {
    let mut d = Decoder::new(Direction::Forward);
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
    let s = stream(64); // 256 MiB
    let mut g = c.benchmark_group("decoder");
    g.throughput(Throughput::Bytes(s.len() as u64));
    g.sample_size(20);
    for chunk in [64 << 10, 1448] {
        g.bench_with_input(
            BenchmarkId::new("page_heavy", chunk),
            &chunk,
            |b, &chunk| b.iter(|| decode(&s, chunk)),
        );
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
