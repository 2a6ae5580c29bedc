//! Cost of the capture stage per packet: `capture::parse` on full-size frames
//! (the hot path, target well under 100 ns) and `FileSource` reading an
//! in-memory pcap and pcapng of 1514-byte frames (parse not included).

use std::io::Cursor;
use std::sync::Arc;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use etherparse::{PacketBuilder, TcpOptionElement};
use migscope::capture::{parse, FileSource, LinkType, Parsed};

fn frame(builder: etherparse::PacketBuilderStep<etherparse::TcpHeader>, payload: usize) -> Vec<u8> {
    let mut f = Vec::new();
    builder.write(&mut f, &vec![0x5a; payload]).unwrap();
    f
}

fn eth_v4(payload: usize) -> Vec<u8> {
    let b = PacketBuilder::ethernet2([1; 6], [2; 6])
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .tcp(8002, 47000, 1, 65535)
        .ack(2)
        .options(&[
            TcpOptionElement::Noop,
            TcpOptionElement::Noop,
            TcpOptionElement::Timestamp(1, 2),
        ])
        .unwrap();
    frame(b, payload)
}

fn bench_parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(1));
    let v4 = eth_v4(1448);
    assert_eq!(v4.len(), 1514);
    g.bench_function("ethernet_ipv4_tcp_1514", |b| {
        b.iter(|| match parse(LinkType::ETHERNET, black_box(&v4), 1514) {
            Parsed::Tcp(s) => s.payload.len(),
            _ => unreachable!(),
        })
    });
    let v6 = {
        let b = PacketBuilder::ethernet2([1; 6], [2; 6])
            .single_vlan(etherparse::VlanId::try_new(5).unwrap())
            .ipv6([1; 16], [2; 16], 64)
            .tcp(8002, 47000, 1, 65535)
            .ack(2);
        frame(b, 1428)
    };
    g.bench_function("ethernet_vlan_ipv6_tcp_1518", |b| {
        b.iter(|| match parse(LinkType::ETHERNET, black_box(&v6), 1518) {
            Parsed::Tcp(s) => s.payload.len(),
            _ => unreachable!(),
        })
    });
    let syn = {
        let b = PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(8002, 47000, 1, 65535)
            .syn()
            .options(&[
                TcpOptionElement::MaximumSegmentSize(1460),
                TcpOptionElement::SelectiveAcknowledgementPermitted,
                TcpOptionElement::Timestamp(1, 0),
                TcpOptionElement::Noop,
                TcpOptionElement::WindowScale(7),
            ])
            .unwrap();
        frame(b, 0)
    };
    g.bench_function("ethernet_ipv4_syn_options", |b| {
        b.iter(|| match parse(LinkType::ETHERNET, black_box(&syn), 74) {
            Parsed::Tcp(s) => s.mss,
            _ => unreachable!(),
        })
    });
    let udp = {
        let mut f = Vec::new();
        PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(53, 53)
            .write(&mut f, &[0; 100])
            .unwrap();
        f
    };
    g.bench_function("ethernet_ipv4_udp_other", |b| {
        b.iter(|| {
            matches!(
                parse(LinkType::ETHERNET, black_box(&udp), 142),
                Parsed::Other
            )
        })
    });
    g.finish();
}

const PACKETS: usize = 20_000;

fn pcap_file(frame: &[u8]) -> Vec<u8> {
    let mut f = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
    f.extend_from_slice(&[0; 8]);
    f.extend_from_slice(&262_144u32.to_le_bytes());
    f.extend_from_slice(&1u32.to_le_bytes());
    for i in 0..PACKETS as u32 {
        f.extend_from_slice(&i.to_le_bytes());
        f.extend_from_slice(&0u32.to_le_bytes());
        f.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        f.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        f.extend_from_slice(frame);
    }
    f
}

fn pcapng_file(frame: &[u8]) -> Vec<u8> {
    let block = |t: u32, body: &[u8]| {
        let padded = body.len().div_ceil(4) * 4;
        let len = (12 + padded) as u32;
        let mut b = t.to_le_bytes().to_vec();
        b.extend_from_slice(&len.to_le_bytes());
        b.extend_from_slice(body);
        b.resize(8 + padded, 0);
        b.extend_from_slice(&len.to_le_bytes());
        b
    };
    let mut shb = 0x1a2b_3c4du32.to_le_bytes().to_vec();
    shb.extend_from_slice(&[1, 0, 0, 0]);
    shb.extend_from_slice(&[0xff; 8]);
    let mut f = block(0x0a0d_0d0a, &shb);
    f.extend(block(1, &[1, 0, 0, 0, 0, 0, 4, 0]));
    for i in 0..PACKETS as u64 {
        let mut epb = 0u32.to_le_bytes().to_vec();
        epb.extend_from_slice(&((i >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(i as u32).to_le_bytes());
        epb.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        epb.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        epb.extend_from_slice(frame);
        f.extend(block(6, &epb));
    }
    f
}

/// Reads every packet of an in-memory file (one memcpy into the reader's
/// buffer per byte, as reading a real file costs).
fn read_all(bytes: &Arc<[u8]>) -> usize {
    let mut s = FileSource::from_reader(Box::new(Cursor::new(bytes.clone())), "bench").unwrap();
    let mut n = 0;
    while let Some(p) = s.next_packet().unwrap() {
        n += p.data.len();
    }
    n
}

fn bench_file(c: &mut Criterion) {
    let frame = eth_v4(1448);
    let mut g = c.benchmark_group("file");
    g.throughput(Throughput::Elements(PACKETS as u64));
    g.sample_size(20);
    let pcap: Arc<[u8]> = pcap_file(&frame).into();
    g.bench_function("pcap_20k_x_1514", |b| b.iter(|| read_all(black_box(&pcap))));
    let ng: Arc<[u8]> = pcapng_file(&frame).into();
    g.bench_function("pcapng_20k_x_1514", |b| b.iter(|| read_all(black_box(&ng))));
    // Small frames: the per-packet framing cost without the copy.
    let small: Arc<[u8]> = pcap_file(&eth_v4(0)).into();
    g.bench_function("pcap_20k_x_66", |b| b.iter(|| read_all(black_box(&small))));
    let small_ng: Arc<[u8]> = pcapng_file(&eth_v4(0)).into();
    g.bench_function("pcapng_20k_x_66", |b| {
        b.iter(|| read_all(black_box(&small_ng)))
    });
    g.bench_function("pcap_20k_x_1514_then_parse", |b| {
        b.iter(|| {
            let mut s =
                FileSource::from_reader(Box::new(Cursor::new(pcap.clone())), "bench").unwrap();
            let mut n = 0;
            while let Some(p) = s.next_packet().unwrap() {
                if let Parsed::Tcp(t) = parse(p.link, p.data, p.orig_len) {
                    n += t.payload.len();
                }
            }
            n
        })
    });
    g.finish();
}

criterion_group!(benches, bench_parse, bench_file);
criterion_main!(benches);
