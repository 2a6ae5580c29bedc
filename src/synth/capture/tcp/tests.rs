//! Unit tests of the parent module.
use super::*;
use crate::synth::capture::write_capture;
use crate::synth::generate;
use etherparse::{SlicedPacket, TransportSlice};
use pcap_parser::{LegacyPcapSlice, PcapBlockOwned};

/// (time, from host 1, seq, ack, flags, window, payload length, TCP
/// header length) of each packet of a nanosecond Ethernet pcap.
type Row = (u64, bool, u32, u32, u8, u16, usize, usize);

fn rows(bytes: &[u8]) -> Vec<Row> {
    let r = LegacyPcapSlice::from_slice(bytes).unwrap();
    let unit_ns = if r.header.is_nanosecond_precision() {
        1
    } else {
        1000
    };
    let mut out = Vec::new();
    for p in r {
        let PcapBlockOwned::Legacy(p) = p.unwrap() else {
            panic!("not a pcap record")
        };
        let s = SlicedPacket::from_ethernet(p.data).unwrap();
        let Some(TransportSlice::Tcp(t)) = s.transport else {
            panic!("not TCP")
        };
        let fl = u8::from(t.fin())
            | u8::from(t.syn()) << 1
            | u8::from(t.psh()) << 3
            | u8::from(t.ack()) << 4;
        out.push((
            u64::from(p.ts_sec) * 1_000_000_000 + u64::from(p.ts_usec) * unit_ns,
            t.source_port() == 8002,
            t.sequence_number(),
            t.acknowledgment_number(),
            fl,
            t.window_size(),
            t.payload().len(),
            t.header_len(),
        ));
    }
    out
}

fn opts() -> CaptureOptions {
    CaptureOptions {
        nanosecond: true,
        ..CaptureOptions::default()
    }
}

/// One session fed by hand; returns the packets and the manifest.
fn by_hand(
    o: &CaptureOptions,
    writes: &[(u64, u64, Direction, usize)],
) -> (Vec<Row>, CaptureManifest) {
    let mut c = Capture::new(o, Vec::new()).unwrap();
    let s = c.add_session(&Scenario::colo());
    for &(start, end, dir, len) in writes {
        let data = (0..len).map(|i| i as u8).collect();
        c.write_owned(s, start, end, dir, data).unwrap();
    }
    c.end_session(s, Manifest::default());
    let (bytes, m) = c.finish().unwrap();
    (rows(&bytes), m)
}

#[test]
fn a_write_becomes_mss_segments_spread_in_proportion_to_bytes() {
    let (p, m) = by_hand(&opts(), &[(1000, 6000, Direction::Forward, 5000)]);
    let origin = m.sessions[0].time_offset_ns;
    let data: Vec<&Row> = p.iter().filter(|r| r.6 > 0).collect();
    let lens: Vec<usize> = data.iter().map(|r| r.6).collect();
    assert_eq!(lens, [1448, 1448, 1448, 656]);
    // Each segment goes when its last byte is sent: 1000 + 5000 * end / 5000.
    let times: Vec<u64> = data.iter().map(|r| r.0 - origin).collect();
    assert_eq!(times, [2448, 3896, 5344, 6000]);
    let psh: Vec<bool> = data.iter().map(|r| r.4 & flags::PSH != 0).collect();
    assert_eq!(psh, [false, false, false, true]);
    let isn = m.sessions[0].directions[0].isn;
    assert_eq!(data[1].2, isn.wrapping_add(1 + 1448));
    // ACKs: after the second segment at once (one RTT later), the lone
    // fourth one... after the third and fourth as the second pair.
    let acks: Vec<(u64, u32)> = p
        .iter()
        .filter(|r| r.1 && r.4 == flags::ACK && r.0 > origin)
        .map(|r| (r.0 - origin, r.3.wrapping_sub(isn) - 1))
        .collect();
    assert_eq!(acks, [(3896 + 50_000, 2896), (6000 + 50_000, 5000)]);
    let d = &m.sessions[0].directions[0];
    assert_eq!(
        (d.total_bytes, d.segments, d.first_offset),
        (5000, 4, Some(0))
    );
}

#[test]
fn a_lone_segment_waits_for_the_delayed_ack_unless_data_carries_it() {
    let o = opts();
    // (The second write keeps the connection open past the timer.)
    let (p, m) = by_hand(
        &o,
        &[
            (0, 10, Direction::Forward, 100),
            (100_000_000, 100_000_010, Direction::Forward, 100),
        ],
    );
    let origin = m.sessions[0].time_offset_ns;
    let ack = p
        .iter()
        .find(|r| r.1 && r.4 == flags::ACK && r.0 > origin)
        .unwrap();
    assert_eq!(ack.0 - origin, 10 + o.rtt_ns + o.delayed_ack_ns);
    // A reply from host 1 before the timer carries the ACK instead.
    let (p, m) = by_hand(
        &o,
        &[
            (0, 10, Direction::Forward, 100),
            (1_000_000, 1_000_010, Direction::Reverse, 24),
        ],
    );
    let origin = m.sessions[0].time_offset_ns;
    let isn = m.sessions[0].directions[0].isn;
    let from_peer: Vec<&Row> = p.iter().filter(|r| r.1 && r.0 > origin).collect();
    assert_eq!(from_peer[0].6, 24);
    assert_eq!(from_peer[0].3, isn.wrapping_add(101));
    assert!(from_peer[1].4 & flags::FIN != 0, "no stray delayed ACK");
}

#[test]
fn reordered_segments_get_duplicate_acks_with_sack() {
    let o = CaptureOptions {
        reorder: 1.0,
        ..opts()
    };
    let (p, m) = by_hand(&o, &[(0, 5000, Direction::Forward, 5000)]);
    let d = &m.sessions[0].directions[0];
    assert_eq!((d.reordered, d.segments), (2, 4));
    let rel = |seq: u32| seq.wrapping_sub(d.isn) - 1;
    let data: Vec<u32> = p.iter().filter(|r| r.6 > 0).map(|r| rel(r.2)).collect();
    assert_eq!(data, [1448, 0, 4344, 2896]);
    // Out-of-order data is acknowledged at once with one SACK block (a
    // 44-byte header: 20, timestamps 12, SACK 4 + 8), a filled hole at
    // once without.
    let acks: Vec<(u32, usize)> = p
        .iter()
        .filter(|r| r.1 && r.4 == flags::ACK && r.6 == 0 && rel(r.3) <= 5000)
        .map(|r| (rel(r.3), r.7))
        .collect();
    assert_eq!(acks, [(0, 44), (2896, 32), (2896, 44), (5000, 32)]);
    let dup = p.iter().find(|r| r.1 && r.7 == 44).unwrap();
    assert!(dup.0 > p.iter().find(|r| r.6 > 0).unwrap().0);
}

#[test]
fn connections_open_and_close_with_three_packets_each() {
    let (p, m) = by_hand(&opts(), &[(0, 10, Direction::Forward, 10)]);
    let f = &m.sessions[0].directions[0];
    let r = &m.sessions[0].directions[1];
    let syn = flags::SYN;
    let fin = flags::FIN | flags::ACK;
    let shape: Vec<(bool, u8)> = p.iter().map(|r| (r.1, r.4 & !flags::PSH)).collect();
    assert_eq!(
        shape[..3],
        [(false, syn), (true, syn | flags::ACK), (false, flags::ACK)]
    );
    let n = p.len();
    assert_eq!(
        shape[n - 3..],
        [(false, fin), (true, fin), (false, flags::ACK)]
    );
    assert_eq!(p[n - 3].2, f.isn.wrapping_add(11));
    assert_eq!(p[n - 2].3, f.isn.wrapping_add(12));
    assert_eq!(p[n - 1].3, r.isn.wrapping_add(2));
    assert_eq!(p[n - 1].2, f.isn.wrapping_add(12));
}

#[test]
fn a_slowed_write_closes_the_window_probes_and_reopens() {
    let o = CaptureOptions {
        zero_window: true,
        ..opts()
    };
    // 3000 bytes (host 1 then advertises its full window), then 1 MiB
    // that the link sends in 839 us, slowed to 500 ms.
    let len = 1 << 20;
    let (p, m) = by_hand(
        &o,
        &[
            (0, 2400, Direction::Forward, 3000),
            (1_000_000, 501_000_000, Direction::Forward, len),
        ],
    );
    let origin = m.sessions[0].time_offset_ns;
    let f = &m.sessions[0].directions[0];
    assert_eq!((f.zero_window_episodes, f.zero_window_probes), (1, 1));
    let zero: Vec<&Row> = p
        .iter()
        .filter(|r| r.1 && r.5 == 0 && r.4 & flags::ACK != 0)
        .collect();
    assert_eq!(
        zero.len(),
        2,
        "the zero window, then the answer to the probe"
    );
    // The window closes at the right edge of the 256 KiB window that the
    // ACK of the first two segments advertised.
    let edge = zero[0].3.wrapping_sub(f.isn) - 1;
    assert_eq!(edge, 2896 + (256 << 10));
    let probe = p
        .iter()
        .find(|r| !r.1 && r.6 == 0 && r.2 == zero[0].3.wrapping_sub(1))
        .unwrap();
    assert_eq!(probe.0, zero[0].0 + PROBE_RTO_NS);
    let update = p.iter().find(|r| r.1 && r.0 > zero[1].0).unwrap();
    assert_eq!((update.3, update.5), (zero[0].3, 2048));
    // The rest goes at line rate and ends with the write.
    let last = p.iter().rfind(|r| r.6 > 0).unwrap();
    assert_eq!(last.0 - origin, 501_000_000);
    let rest = (3000 + len as u64) - u64::from(edge);
    assert_eq!(
        update.0 - origin,
        501_000_000 - transfer_ns(rest, Timing::TEN_GBIT)
    );
}

#[test]
fn writes_out_of_order_are_moved_later_not_into_the_past() {
    let (p, m) = by_hand(
        &opts(),
        &[
            (5_000_000, 5_000_100, Direction::Forward, 100),
            (1_000, 1_100, Direction::Reverse, 10),
        ],
    );
    assert!(p.windows(2).all(|w| w[0].0 <= w[1].0));
    assert_eq!(m.sessions[0].directions[1].total_bytes, 10);
    let mut c = Capture::new(&opts(), Vec::new()).unwrap();
    let e = c
        .write_owned(3, 0, 1, Direction::Forward, vec![1])
        .unwrap_err();
    assert_eq!(e.to_string(), "the capture has no session 3");
}

#[test]
fn the_sink_and_the_threaded_writer_give_the_same_file() {
    let s = Scenario::colo()
        .with_xl(true)
        .with_memory(2 << 20)
        .with_checkpoints(2)
        .with_rounds(2);
    let o = CaptureOptions {
        loss: 0.01,
        reorder: 0.01,
        retransmit: 0.01,
        ..opts()
    };
    let mut c = Capture::new(&o, Vec::new()).unwrap();
    let i = c.add_session(&s);
    let stream = generate(&s, &mut c.sink(i)).unwrap();
    c.end_session(i, stream);
    let (direct, m1) = c.finish().unwrap();
    let (threaded, m2) = write_capture(std::slice::from_ref(&s), &o, Vec::new()).unwrap();
    assert!(direct == threaded);
    assert_eq!(m1, m2);
}

#[test]
fn sequence_numbers_wrap_modulo_2_32() {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut f = Flow::new(0, 0, u32::MAX - 10, &mut rng, 0, 0);
    assert_eq!(f.seq(0), u32::MAX - 9);
    assert_eq!(f.seq(9), u32::MAX);
    assert_eq!(f.seq(10), 0);
    assert_eq!(f.seq(11), 1);
    // Offsets past 4 GiB wrap again.
    assert_eq!(f.seq(10 + (1 << 32)), 0);
    f.isn = 0;
    assert_eq!(f.seq(u64::from(u32::MAX)), 0);
}

#[test]
fn ranges_merge_and_lost_is_the_complement() {
    let mut v = Vec::new();
    insert_range(&mut v, 10, 20);
    insert_range(&mut v, 30, 40);
    insert_range(&mut v, 20, 25); // touches: merges
    assert_eq!(v, [(10, 25), (30, 40)]);
    insert_range(&mut v, 0, 5);
    insert_range(&mut v, 24, 31);
    assert_eq!(v, [(0, 5), (10, 40)]);
    insert_range(&mut v, 7, 7); // empty: ignored
    assert_eq!(v.len(), 2);

    let mut c = Coverage::default();
    assert!(c.lost(100).is_empty());
    c.add(10, 20); // no SYN: the view starts at 10
    c.add(30, 40);
    c.add(0, 50); // below the origin: clipped
    assert_eq!(c.origin, Some(10));
    assert_eq!(c.lost(100), [(50, 100)]);
    let mut c = Coverage {
        origin: Some(0),
        ..Coverage::default()
    };
    c.add(10, 20);
    c.add(30, 40);
    assert_eq!(c.lost(40), [(0, 10), (20, 30)]);
    assert_eq!(c.lost(35), [(0, 10), (20, 30)]);
}

#[test]
fn windows_scale_with_the_bandwidth_delay_product() {
    assert_eq!(receive_window(1_250_000_000, 50_000), (7, 256 << 10));
    // 10 Gbit/s at 10 ms: 12.5 MB per RTT, four of them need scale 10.
    let (ws, w) = receive_window(1_250_000_000, 10_000_000);
    assert_eq!(ws, 10);
    assert!(w >= 50_000_000 - 1024 && w >> ws <= 0xFFFF);
    // Absurd products stop at scale 14.
    let (ws, w) = receive_window(u64::MAX, 100_000_000);
    assert_eq!((ws, w), (14, 0xFFFF << 14));
}

#[test]
fn transfer_times_round_up() {
    assert_eq!(transfer_ns(1448, 1_250_000_000), 1159); // 1158.4 ns
    assert_eq!(transfer_ns(0, 1), 0);
    assert_eq!(mul_div(u64::MAX, u64::MAX, u64::MAX), u64::MAX);
}

#[test]
fn hosts_differ_per_session() {
    let a = session_hosts(0, false);
    let b = session_hosts(1, false);
    assert_eq!(a.ip[0], IpAddr::V4(Ipv4Addr::new(10, 0, 1, 1)));
    assert_eq!(b.ip[1], IpAddr::V4(Ipv4Addr::new(10, 0, 2, 2)));
    assert_ne!(a.mac, b.mac);
    let v6 = session_hosts(255, true);
    assert_eq!(v6.ip[1].to_string(), "fd00:0:0:100::2");
}
