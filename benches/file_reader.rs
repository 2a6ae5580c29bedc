//! Reading a large capture file: migscope's [`FileSource`] against
//! `pcap-parser`'s own streaming readers driven directly (`LegacyPcapReader`
//! and `PcapNGReader` with refill and consume, as the crate's documentation
//! shows, without migscope's checks and diagnostics), and against a plain
//! copy of the same bytes into a buffer (the floor, as `cat FILE > /dev/null`
//! is for the whole binary).
//!
//! The capture is a COLO session written by `migscope synth` (1514-byte
//! frames, as pcap with microseconds and as pcapng), held in memory so that
//! the figures do not depend on the disk; `MIGSCOPE_BENCH_CAPTURE=FILE` reads
//! that file into memory instead. Every reader sees the bytes through
//! `Cursor::read`, one memcpy per byte, as reading from the page cache costs.
//!
//! `cargo bench --bench file_reader`; the ratios that matter are each reader's
//! time over the copy's.

use std::io::{Cursor, Read};
use std::sync::Arc;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use migscope::capture::FileSource;
use migscope::synth::capture::{write_capture, CaptureFormat, CaptureOptions};
use migscope::synth::Scenario;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{Block, LegacyPcapReader, PcapBlockOwned, PcapError, PcapNGReader};

/// Buffer of the crate's readers: the same 1 MiB that `FileSource` starts with.
const BUFFER: usize = 1 << 20;

fn capture(format: CaptureFormat) -> Arc<[u8]> {
    let s = Scenario::colo()
        .with_xl(true)
        .with_memory(96 << 20)
        .with_checkpoints(6)
        .with_seed(3);
    let opts = CaptureOptions {
        format,
        ..CaptureOptions::default()
    };
    let (bytes, _) = write_capture(&[s], &opts, Vec::new()).expect("synth writes the capture");
    bytes.into()
}

fn reader(bytes: &Arc<[u8]>) -> Box<dyn Read + Send> {
    Box::new(Cursor::new(bytes.clone()))
}

/// What every reader computes: packets, captured bytes, and a checksum of the
/// timestamps in nanoseconds (so that none of them can skip the work).
#[derive(Debug, Default, PartialEq, Eq, Clone, Copy)]
struct Tally {
    packets: u64,
    bytes: u64,
    ts: u64,
}

impl Tally {
    fn add(&mut self, ts_ns: u64, len: usize) {
        self.packets += 1;
        self.bytes += len as u64;
        self.ts = self.ts.wrapping_add(ts_ns);
    }
}

fn file_source(bytes: &Arc<[u8]>) -> Tally {
    let mut s = FileSource::from_reader(reader(bytes), "bench").unwrap();
    let mut t = Tally::default();
    while let Some(p) = s.next_packet().unwrap() {
        t.add(p.ts_ns, p.data.len());
    }
    t
}

/// `pcap-parser`'s streaming reader, either format, with the minimum around
/// it: interfaces' timestamp units, refill on `Incomplete`, stop on anything
/// else. `shift`: consume with `consume` as the crate's examples do (the
/// buffer moves its data to the front whenever half of it is consumed), or
/// with `consume_noshift` (only `refill` moves the data).
fn crate_reader(bytes: &Arc<[u8]>, shift: bool) -> Tally {
    let mut r: Box<dyn PcapReaderIterator> = if bytes.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]) {
        Box::new(PcapNGReader::new(BUFFER, reader(bytes)).unwrap())
    } else {
        Box::new(LegacyPcapReader::new(BUFFER, reader(bytes)).unwrap())
    };
    let mut t = Tally::default();
    let mut pcap_frac_ns = 1000;
    // (units per second, offset in seconds) of each pcapng interface
    let mut ifaces: Vec<(u64, i64)> = Vec::new();
    loop {
        match r.next() {
            Ok((len, block)) => {
                match block {
                    PcapBlockOwned::LegacyHeader(h) => {
                        if h.is_nanosecond_precision() {
                            pcap_frac_ns = 1;
                        }
                    }
                    PcapBlockOwned::Legacy(b) => {
                        let ts = u64::from(b.ts_sec) * 1_000_000_000
                            + u64::from(b.ts_usec) * pcap_frac_ns;
                        t.add(ts, b.data.len());
                    }
                    PcapBlockOwned::NG(Block::SectionHeader(_)) => ifaces.clear(),
                    PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                        ifaces.push((idb.ts_resolution().unwrap_or(1_000_000), idb.ts_offset()));
                    }
                    PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                        let (units, offset) = ifaces[epb.if_id as usize];
                        let ticks = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                        // The common units without a division, as FileSource does.
                        let ns = match units {
                            1_000_000_000 => ticks,
                            1_000_000 => ticks.saturating_mul(1000),
                            _ => {
                                ticks / units * 1_000_000_000
                                    + ticks % units * 1_000_000_000 / units
                            }
                        };
                        let ts = ns.saturating_add_signed(offset * 1_000_000_000);
                        t.add(ts, epb.caplen as usize);
                    }
                    PcapBlockOwned::NG(_) => {}
                }
                if shift {
                    r.consume(len);
                } else {
                    r.consume_noshift(len);
                }
            }
            Err(PcapError::Incomplete(_)) => r.refill().unwrap(),
            Err(PcapError::Eof) => return t,
            Err(e) => panic!("{e:?}"),
        }
    }
}

/// Reads the bytes into a buffer of [`BUFFER`] bytes and drops them, as `cat
/// FILE > /dev/null` does (`io::copy` would skip the copy: a `Cursor` lends
/// its bytes).
fn copy(bytes: &Arc<[u8]>) -> u64 {
    let mut r = reader(bytes);
    let mut buf = vec![0u8; BUFFER];
    let mut n = 0;
    loop {
        match r.read(&mut buf).unwrap() {
            0 => return n,
            k => n += black_box(&buf[..k]).len() as u64,
        }
    }
}

fn bench_reader(c: &mut Criterion) {
    let files: Vec<(String, Arc<[u8]>)> = match std::env::var_os("MIGSCOPE_BENCH_CAPTURE") {
        Some(p) => {
            let name = std::path::Path::new(&p)
                .file_name()
                .map_or("file".into(), |n| n.to_string_lossy().into_owned());
            vec![(
                name,
                std::fs::read(&p).expect("MIGSCOPE_BENCH_CAPTURE").into(),
            )]
        }
        None => vec![
            ("colo_pcap".into(), capture(CaptureFormat::Pcap)),
            ("colo_pcapng".into(), capture(CaptureFormat::Pcapng)),
        ],
    };
    for (name, bytes) in &files {
        // Both readers see the same packets.
        let want = file_source(bytes);
        assert_eq!(crate_reader(bytes, true), want, "{name}");
        assert_eq!(crate_reader(bytes, false), want, "{name}");
        eprintln!(
            "{name}: {} bytes, {} packets ({} captured bytes)",
            bytes.len(),
            want.packets,
            want.bytes
        );
        let mut g = c.benchmark_group(format!("read_{name}"));
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.sample_size(20);
        g.bench_function("copy_to_sink", |b| b.iter(|| copy(black_box(bytes))));
        g.bench_function("file_source", |b| b.iter(|| file_source(black_box(bytes))));
        g.bench_function("pcap_parser_reader", |b| {
            b.iter(|| crate_reader(black_box(bytes), true))
        });
        g.bench_function("pcap_parser_reader_noshift", |b| {
            b.iter(|| crate_reader(black_box(bytes), false))
        });
        g.finish();
    }
}

criterion_group!(benches, bench_reader);
criterion_main!(benches);
