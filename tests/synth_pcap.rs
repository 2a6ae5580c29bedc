//! Captures from `synth::capture` read back with independent code:
//! pcap-parser's whole-buffer iterators for the container (not the streaming
//! path of migscope's reader), etherparse for the headers, and a
//! deliberately simple reassembly model (every captured payload byte is
//! put at its stream offset, `(seq - isn - 1) mod 2^32`, in a
//! `Vec<Option<u8>>`; the streams here are far below 4 GiB). The result
//! must equal the raw streams synth writes for the same scenario, byte for
//! byte, except inside the manifest's lost ranges, which must be exactly
//! the bytes that no captured packet carries.
#![cfg(feature = "synth")]

use std::io::Read as _;
use std::net::IpAddr;

use assert_cmd::Command;
use etherparse::{EtherType, LaxNetSlice, LaxSlicedPacket, TcpOptionElement, TransportSlice};
use pcap_parser::{Block, LegacyPcapSlice, Linktype, PcapBlockOwned, PcapNGSlice};

use migscope::decode::Direction;
use migscope::synth::capture::{
    write_capture, CaptureFormat, CaptureManifest, CaptureOptions, Connection, DirectionTruth,
    Link, SessionTruth,
};
use migscope::synth::{generate, Phase, Scenario, StreamFiles, StreamSink, Write};

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const ACK: u8 = 0x10;

/// One captured frame.
struct Frame {
    ts: u64,
    orig_len: u32,
    data: Vec<u8>,
}

/// The TCP view of a frame.
#[derive(Debug, Clone)]
struct Tcp {
    ts: u64,
    src: IpAddr,
    sport: u16,
    dst: IpAddr,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    window: u16,
    mss: Option<u16>,
    wscale: Option<u8>,
    payload: Vec<u8>,
    /// The frame was cut by the snap length.
    cut: bool,
}

fn read_capture(bytes: &[u8]) -> (Linktype, Vec<Frame>) {
    let mut frames = Vec::new();
    if bytes.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]) {
        let r = PcapNGSlice::from_slice(bytes).expect("a pcapng section header");
        // (link type, timestamp units per second) of the interfaces
        let mut link = None;
        for block in r {
            match block.expect("a valid pcapng block") {
                PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                    let units = idb.ts_resolution().expect("a usable if_tsresol");
                    link = Some((idb.linktype, units));
                }
                PcapBlockOwned::NG(Block::EnhancedPacket(p)) => {
                    let (_, units) = link.expect("an interface before packets");
                    let ticks = u128::from(p.ts_high) << 32 | u128::from(p.ts_low);
                    frames.push(Frame {
                        ts: (ticks * 1_000_000_000 / u128::from(units)) as u64,
                        orig_len: p.origlen,
                        // without the padding
                        data: p.data[..p.caplen as usize].to_vec(),
                    })
                }
                _ => {}
            }
        }
        (link.expect("an interface description").0, frames)
    } else {
        let r = LegacyPcapSlice::from_slice(bytes).expect("a pcap header");
        let link = r.header.network;
        let unit_ns = if r.header.is_nanosecond_precision() {
            1
        } else {
            1000
        };
        for p in r {
            let PcapBlockOwned::Legacy(p) = p.expect("a valid pcap record") else {
                panic!("not a pcap record")
            };
            frames.push(Frame {
                ts: u64::from(p.ts_sec) * 1_000_000_000 + u64::from(p.ts_usec) * unit_ns,
                orig_len: p.origlen,
                data: p.data.to_vec(),
            });
        }
        (link, frames)
    }
}

/// Parses a frame down to TCP and checks its checksums when it is whole.
fn parse(link: Linktype, f: &Frame) -> Tcp {
    let p = match link {
        Linktype::ETHERNET => LaxSlicedPacket::from_ethernet(&f.data).expect("an Ethernet frame"),
        Linktype::LINUX_SLL2 => {
            assert!(f.data.len() >= 20, "SLL2 header cut");
            assert_eq!(&f.data[2..4], &[0, 0], "SLL2 reserved field");
            assert_eq!(&f.data[8..10], &[0, 1], "SLL2 hardware type ARPHRD_ETHER");
            assert_eq!(f.data[11], 6, "SLL2 address length");
            let proto = u16::from_be_bytes([f.data[0], f.data[1]]);
            LaxSlicedPacket::from_ether_type(EtherType(proto), &f.data[20..])
        }
        other => panic!("unexpected link type {other:?}"),
    };
    assert!(p.stop_err.is_none(), "parse error {:?}", p.stop_err);
    let Some(TransportSlice::Tcp(tcp)) = &p.transport else {
        panic!("not TCP")
    };
    let cut = f.data.len() < f.orig_len as usize;
    let (src, dst, checksum) = match &p.net {
        Some(LaxNetSlice::Ipv4(ip)) => {
            let h = ip.header();
            assert_eq!(
                h.header_checksum(),
                h.to_header().calc_header_checksum(),
                "IPv4 header checksum"
            );
            let c = (!cut).then(|| tcp.calc_checksum_ipv4(h.source(), h.destination()).unwrap());
            (
                IpAddr::V4(h.source_addr()),
                IpAddr::V4(h.destination_addr()),
                c,
            )
        }
        Some(LaxNetSlice::Ipv6(ip)) => {
            let h = ip.header();
            let c = (!cut).then(|| tcp.calc_checksum_ipv6(h.source(), h.destination()).unwrap());
            (
                IpAddr::V6(h.source_addr()),
                IpAddr::V6(h.destination_addr()),
                c,
            )
        }
        _ => panic!("no IP header"),
    };
    if let Some(c) = checksum {
        assert_eq!(tcp.checksum(), c, "TCP checksum");
    }
    let mut mss = None;
    let mut wscale = None;
    for o in tcp.options_iterator() {
        match o.expect("valid TCP options") {
            TcpOptionElement::MaximumSegmentSize(v) => mss = Some(v),
            TcpOptionElement::WindowScale(v) => wscale = Some(v),
            _ => {}
        }
    }
    let flags = u8::from(tcp.fin())
        | u8::from(tcp.syn()) << 1
        | u8::from(tcp.rst()) << 2
        | u8::from(tcp.psh()) << 3
        | u8::from(tcp.ack()) << 4;
    Tcp {
        ts: f.ts,
        src,
        sport: tcp.source_port(),
        dst,
        dport: tcp.destination_port(),
        seq: tcp.sequence_number(),
        ack: tcp.acknowledgment_number(),
        flags,
        window: tcp.window_size(),
        mss,
        wscale,
        payload: tcp.payload().to_vec(),
        cut,
    }
}

fn packets(bytes: &[u8]) -> Vec<Tcp> {
    let (link, frames) = read_capture(bytes);
    let pkts: Vec<Tcp> = frames.iter().map(|f| parse(link, f)).collect();
    for w in pkts.windows(2) {
        assert!(w[0].ts <= w[1].ts, "timestamps go back");
    }
    pkts
}

fn capture(scenarios: &[Scenario], opts: &CaptureOptions) -> (Vec<u8>, CaptureManifest) {
    write_capture(scenarios, opts, Vec::new()).expect("the capture is written")
}

fn raw(s: &Scenario) -> (Vec<u8>, Vec<u8>) {
    let mut files = StreamFiles::new(Vec::new(), Vec::new());
    generate(s, &mut files).expect("the stream is generated");
    files.into_inner()
}

/// The scenario of a session, rebuilt from its seed and name.
fn scenario_of(base: &Scenario, t: &SessionTruth) -> Scenario {
    base.clone().with_seed(t.seed).with_name(t.name.clone())
}

fn sessions(base: &Scenario, n: u64) -> Vec<Scenario> {
    (0..n)
        .map(|i| {
            let name = if i == 0 {
                base.name.clone()
            } else {
                format!("{}-{i}", base.name)
            };
            base.clone().with_seed(base.seed + i).with_name(name)
        })
        .collect()
}

fn is_of(p: &Tcp, d: &DirectionTruth) -> bool {
    p.src == d.src && p.sport == d.src_port && p.dst == d.dst && p.dport == d.dst_port
}

fn offset(d: &DirectionTruth, seq: u32) -> u64 {
    u64::from(seq.wrapping_sub(d.isn).wrapping_sub(1))
}

/// The simple model: captured bytes by stream offset. Copies of the same
/// bytes must agree.
fn reassemble(pkts: &[Tcp], d: &DirectionTruth) -> Vec<Option<u8>> {
    let mut v = vec![None; d.total_bytes as usize];
    for p in pkts.iter().filter(|p| is_of(p, d) && !p.payload.is_empty()) {
        let start = offset(d, p.seq) as usize;
        for (k, &b) in p.payload.iter().enumerate() {
            let slot = v
                .get_mut(start + k)
                .unwrap_or_else(|| panic!("{:?}: a payload byte past the stream end", d.dir));
            match slot {
                Some(x) => assert_eq!(*x, b, "two copies of offset {} differ", start + k),
                None => *slot = Some(b),
            }
        }
    }
    v
}

/// Compares the capture's view of a direction with the raw stream.
fn check_direction(pkts: &[Tcp], d: &DirectionTruth, stream: &[u8]) {
    assert_eq!(d.total_bytes, stream.len() as u64, "{:?} total", d.dir);
    let bytes = reassemble(pkts, d);
    let Some(origin) = d.first_offset else {
        assert!(
            bytes.iter().all(Option::is_none),
            "{:?}: data but no first offset",
            d.dir
        );
        return;
    };
    let mut lost = vec![false; bytes.len()];
    let mut prev_end = origin;
    for &(a, b) in &d.lost {
        assert!(
            a >= prev_end && a < b && b <= d.total_bytes,
            "lost ranges ordered, disjoint, inside"
        );
        prev_end = b;
        for x in &mut lost[a as usize..b as usize] {
            *x = true;
        }
    }
    for i in origin as usize..bytes.len() {
        match bytes[i] {
            Some(b) => {
                assert!(
                    !lost[i],
                    "{:?}: offset {i} is listed lost but was captured",
                    d.dir
                );
                assert_eq!(b, stream[i], "{:?}: offset {i} differs", d.dir);
            }
            None => assert!(lost[i], "{:?}: offset {i} is missing but not listed", d.dir),
        }
    }
    let lost_bytes: u64 = d.lost.iter().map(|r| r.1 - r.0).sum();
    assert_eq!(lost_bytes, d.lost_bytes);
    let data = pkts.iter().filter(|p| is_of(p, d) && !p.payload.is_empty());
    assert_eq!(data.count() as u64, d.segments, "{:?} segments", d.dir);
}

fn check_sessions(bytes: &[u8], m: &CaptureManifest, base: &Scenario) -> Vec<Tcp> {
    let pkts = packets(bytes);
    assert_eq!(pkts.len() as u64, m.packets);
    for t in &m.sessions {
        let (fwd, rev) = raw(&scenario_of(base, t));
        assert_eq!(t.directions.len(), 2);
        assert_eq!(t.directions[0].dir, Direction::Forward);
        check_direction(&pkts, &t.directions[0], &fwd);
        check_direction(&pkts, &t.directions[1], &rev);
    }
    pkts
}

/// A COLO stream with the xl preamble: both directions carry data.
fn small_colo() -> Scenario {
    let mut s = Scenario::colo()
        .with_xl(true)
        .with_memory(4 << 20)
        .with_rounds(2)
        .with_checkpoints(3)
        .with_seed(5);
    s.dirty.primary_mean = 200;
    s.dirty.secondary_mean = 100;
    s
}

#[test]
fn a_healthy_capture_is_the_raw_streams_with_real_tcp_around_them() {
    let base = small_colo();
    let opts = CaptureOptions {
        nanosecond: true,
        ..CaptureOptions::default()
    };
    let (bytes, m) = capture(std::slice::from_ref(&base), &opts);
    let pkts = check_sessions(&bytes, &m, &base);
    let t = &m.sessions[0];
    let (f, r) = (&t.directions[0], &t.directions[1]);
    assert_eq!((f.first_offset, r.first_offset), (Some(0), Some(0)));
    assert!(f.syn_captured && r.syn_captured);
    assert!(f.lost.is_empty() && r.lost.is_empty());
    assert_eq!(f.src, r.dst);
    assert_eq!(
        (f.connection, r.connection),
        (Connection::Migration, Connection::Migration)
    );
    assert_eq!(f.dst_port, 8002);

    // Handshake: SYN with MSS 1460 and window scale, SYN/ACK, ACK.
    let (syn, synack, ack) = (&pkts[0], &pkts[1], &pkts[2]);
    assert_eq!(syn.flags, SYN);
    assert!(is_of(syn, f));
    assert_eq!(syn.seq, f.isn);
    assert_eq!((syn.mss, syn.wscale), (Some(1460), Some(7)));
    assert_eq!(synack.flags, SYN | ACK);
    assert_eq!((synack.seq, synack.ack), (r.isn, f.isn.wrapping_add(1)));
    assert_eq!(synack.ts - syn.ts, opts.rtt_ns);
    assert_eq!(ack.flags, ACK);
    assert_eq!(
        (ack.seq, ack.ack),
        (f.isn.wrapping_add(1), r.isn.wrapping_add(1))
    );
    // Close: FIN, FIN/ACK, ACK; both FINs acknowledged.
    let n = pkts.len();
    let (fin, finack, last) = (&pkts[n - 3], &pkts[n - 2], &pkts[n - 1]);
    assert_eq!(fin.flags & (FIN | ACK), FIN | ACK);
    assert_eq!(offset(f, fin.seq), f.total_bytes);
    assert_eq!(finack.flags & (FIN | ACK), FIN | ACK);
    assert_eq!(offset(f, finack.ack), f.total_bytes + 1);
    assert_eq!(last.flags, ACK);
    assert_eq!(offset(r, last.ack), r.total_bytes + 1);

    // Segments are at most an MSS; each record's last byte goes exactly at
    // the manifest's time.
    let data: Vec<&Tcp> = pkts.iter().filter(|p| !p.payload.is_empty()).collect();
    assert!(data.iter().all(|p| p.payload.len() <= 1448));
    for rec in &t.stream.records {
        let d = if rec.dir == Direction::Forward { f } else { r };
        let end = rec.offset + rec.wire_len();
        let seg = data
            .iter()
            .find(|p| is_of(p, d) && offset(d, p.seq) + p.payload.len() as u64 == end)
            .unwrap_or_else(|| panic!("no segment ends record {}", rec.name));
        assert_eq!(
            seg.ts,
            t.time_offset_ns + rec.end_ns,
            "time of {}",
            rec.name
        );
    }

    // Host .2 acknowledges forward bytes no sooner than one RTT after they
    // were captured, and never bytes that were not sent.
    let fwd: Vec<(u64, u64)> = data
        .iter()
        .filter(|p| is_of(p, f))
        .map(|p| (p.ts, offset(f, p.seq) + p.payload.len() as u64))
        .collect();
    let mut acks = 0;
    for p in pkts
        .iter()
        .filter(|p| is_of(p, r) && p.flags & ACK != 0 && p.flags & SYN == 0)
    {
        let a = offset(f, p.ack);
        if a == 0 || a > f.total_bytes {
            continue;
        }
        let i = fwd.partition_point(|&(_, end)| end < a);
        let (sent, _) = fwd[i];
        assert!(
            sent + opts.rtt_ns <= p.ts,
            "ACK of {a} at {} before its data at {sent} + RTT",
            p.ts
        );
        acks += 1;
    }
    assert!(
        acks > fwd.len() / 3,
        "delayed ACKs: about one per two segments"
    );
    // The advertised window is 256 KiB at scale 7.
    assert!(pkts[3..].iter().all(|p| p.window == 2048));
}

#[test]
fn link_layers_addresses_formats_and_segment_sizes() {
    let base = small_colo().with_checkpoints(2);
    let variants = [
        (
            CaptureFormat::Pcap,
            Link::Ethernet,
            None,
            false,
            false,
            1448,
        ),
        (
            CaptureFormat::Pcapng,
            Link::Ethernet,
            Some(42),
            true,
            false,
            1448,
        ),
        (CaptureFormat::Pcap, Link::Sll2, None, true, true, 1448),
        (
            CaptureFormat::Pcapng,
            Link::Sll2,
            Some(4094),
            false,
            true,
            65483,
        ),
        (
            CaptureFormat::Pcap,
            Link::Ethernet,
            Some(1),
            false,
            false,
            9000,
        ),
    ];
    for (format, link, vlan, ipv6, seq_wrap, segment_size) in variants {
        let opts = CaptureOptions {
            format,
            link,
            vlan,
            ipv6,
            seq_wrap,
            segment_size,
            ..CaptureOptions::default()
        };
        let (bytes, m) = capture(std::slice::from_ref(&base), &opts);
        let pkts = check_sessions(&bytes, &m, &base);
        let f = &m.sessions[0].directions[0];
        assert_eq!(f.src.is_ipv6(), ipv6);
        let biggest = pkts.iter().map(|p| p.payload.len()).max().unwrap_or(0);
        assert_eq!(biggest, segment_size as usize, "{format:?} {link:?}");
        if seq_wrap {
            // Sequence numbers wrap in both directions.
            for d in &m.sessions[0].directions {
                assert!(d.isn > u32::MAX - 70_000);
                let seqs: Vec<u32> = pkts
                    .iter()
                    .filter(|p| is_of(p, d) && !p.payload.is_empty())
                    .map(|p| p.seq)
                    .collect();
                assert!(
                    seqs.first() > seqs.last(),
                    "{:?} sequence numbers wrap",
                    d.dir
                );
            }
        }
    }
}

#[test]
fn loss_retransmission_and_reordering_leave_exact_gaps() {
    let base = small_colo();
    let opts = CaptureOptions {
        loss: 0.02,
        retransmit: 0.02,
        reorder: 0.02,
        ..CaptureOptions::default()
    };
    let (bytes, m) = capture(std::slice::from_ref(&base), &opts);
    let pkts = check_sessions(&bytes, &m, &base);
    let f = &m.sessions[0].directions[0];
    assert!(!f.lost.is_empty() && f.lost_segments > 0);
    assert!(f.lost.len() as u64 <= f.lost_segments);
    assert!(f.retransmitted > 0 && f.reordered > 0);
    // Count retransmissions (bytes seen before) and reordered segments (below
    // the highest byte seen, new) the simple way.
    let mut seen = vec![false; f.total_bytes as usize];
    let mut highest = 0;
    let (mut again, mut behind) = (0, 0);
    for p in pkts.iter().filter(|p| is_of(p, f) && !p.payload.is_empty()) {
        let a = offset(f, p.seq) as usize;
        let b = a + p.payload.len();
        if seen[a..b].iter().all(|&s| s) {
            again += 1;
        } else if (b as u64) <= highest {
            behind += 1;
        }
        seen[a..b].fill(true);
        highest = highest.max(b as u64);
    }
    assert_eq!((again, behind), (f.retransmitted, f.reordered));
    // Every lost byte is acknowledged by the receiver all the same.
    let r = &m.sessions[0].directions[1];
    let acked = pkts
        .iter()
        .filter(|p| is_of(p, r) && p.flags & ACK != 0)
        .map(|p| offset(f, p.ack))
        .filter(|&a| a <= f.total_bytes + 1)
        .max();
    assert_eq!(acked, Some(f.total_bytes + 1));
    // The same seed gives the same file.
    assert_eq!(capture(std::slice::from_ref(&base), &opts).0, bytes);
    let other = base.clone().with_seed(6);
    assert_ne!(capture(&[other], &opts).0, bytes);
}

#[test]
fn a_capture_started_mid_stream_has_no_handshake() {
    let base = small_colo();
    let opts = CaptureOptions {
        start_at: Some(1_000_000),
        retransmit: 0.01,
        reorder: 0.01,
        ..CaptureOptions::default()
    };
    let (bytes, m) = capture(std::slice::from_ref(&base), &opts);
    let pkts = check_sessions(&bytes, &m, &base);
    let f = &m.sessions[0].directions[0];
    assert!(!f.syn_captured);
    assert!(pkts.iter().all(|p| p.flags & SYN == 0));
    let first = &pkts[0];
    assert!(is_of(first, f));
    let start = offset(f, first.seq);
    assert_eq!(f.first_offset, Some(start));
    assert!(start <= 1_000_000 && 1_000_000 < start + first.payload.len() as u64);
    // The reverse direction starts with its first captured segment.
    let r = &m.sessions[0].directions[1];
    let rfirst = pkts.iter().find(|p| is_of(p, r) && !p.payload.is_empty());
    assert_eq!(r.first_offset, rfirst.map(|p| offset(r, p.seq)));
}

#[test]
fn a_snap_length_cuts_payloads_and_lists_them_lost() {
    let base = small_colo().with_checkpoints(2);
    let opts = CaptureOptions {
        format: CaptureFormat::Pcapng, // (pcap-file, once used here, rejected orig_len > snaplen in pcap)
        snaplen: 150,
        ..CaptureOptions::default()
    };
    let (bytes, m) = capture(std::slice::from_ref(&base), &opts);
    let pkts = check_sessions(&bytes, &m, &base);
    let f = &m.sessions[0].directions[0];
    let cut = pkts.iter().filter(|p| is_of(p, f) && p.cut).count() as u64;
    assert!(cut > 0);
    assert_eq!(cut, f.truncated_segments);
    assert!(f.lost_bytes > f.total_bytes / 2);
}

#[test]
fn a_stalled_memory_phase_closes_the_window() {
    let base = small_colo()
        .with_memory(16 << 20)
        .with_stall(1, Phase::Memory, 700_000_000);
    let mut base = base;
    base.dirty.primary_mean = 2000;
    let opts = CaptureOptions {
        zero_window: true,
        ..CaptureOptions::default()
    };
    let (bytes, m) = capture(std::slice::from_ref(&base), &opts);
    let pkts = check_sessions(&bytes, &m, &base);
    let f = &m.sessions[0].directions[0];
    let r = &m.sessions[0].directions[1];
    assert!(f.zero_window_episodes > 0 && f.zero_window_probes > 0);
    let zero: Vec<&Tcp> = pkts
        .iter()
        .filter(|p| is_of(p, r) && p.flags & ACK != 0 && p.window == 0)
        .collect();
    assert!(zero.len() as u64 >= f.zero_window_episodes + f.zero_window_probes);
    // Probes: empty segments from the sender one byte below what was acked.
    let probes: Vec<&Tcp> = pkts
        .iter()
        .filter(|p| is_of(p, f) && p.payload.is_empty() && p.flags == ACK)
        .filter(|p| zero.iter().any(|z| z.ack == p.seq.wrapping_add(1)))
        .collect();
    assert_eq!(probes.len() as u64, f.zero_window_probes);
    // Nothing is sent into the zero window, and it reopens before data goes on.
    let z = zero[0];
    let next = pkts
        .iter()
        .find(|p| p.ts > z.ts && is_of(p, f) && !p.payload.is_empty())
        .unwrap();
    assert_eq!(next.seq, z.ack);
    let update = pkts
        .iter()
        .rev()
        .find(|p| p.ts > z.ts && p.ts <= next.ts && is_of(p, r))
        .unwrap();
    assert!(update.window > 0 && update.ack == z.ack);
    assert!(next.ts - z.ts > 200_000_000);
}

#[test]
fn sessions_and_back_channel_connections_merge_in_time_order() {
    let base = small_colo().with_xl(false).with_checkpoints(2);
    let opts = CaptureOptions {
        back_channel_connection: true,
        link: Link::Sll2,
        ipv6: true,
        stagger_ns: 5_000_000,
        loss: 0.01,
        ..CaptureOptions::default()
    };
    let scenarios = sessions(&base, 3);
    let (bytes, m) = capture(&scenarios, &opts);
    assert_eq!(m.sessions.len(), 3);
    let pkts = check_sessions(&bytes, &m, &base);
    let mut hosts = Vec::new();
    for t in &m.sessions {
        let (f, r) = (&t.directions[0], &t.directions[1]);
        assert_eq!(r.connection, Connection::BackChannel);
        assert_eq!((f.dst_port, r.src_port), (8002, 8003));
        assert_eq!(f.src, r.dst);
        hosts.push(f.src);
        // The migration connection's reverse direction stays empty.
        assert!(!pkts
            .iter()
            .any(|p| p.src == f.dst && p.sport == 8002 && !p.payload.is_empty()));
    }
    hosts.dedup();
    assert_eq!(hosts.len(), 3);
    // The sessions overlap in time.
    let first_end = m.sessions[0].time_offset_ns + m.sessions[0].stream.end_ns();
    assert!(m.sessions[2].time_offset_ns < first_end);
}

/// Records every write's start time across both directions.
#[derive(Default)]
struct Starts(Vec<u64>);

impl StreamSink for Starts {
    fn write(&mut self, w: &Write<'_>) -> std::io::Result<()> {
        self.0.push(w.start_ns);
        Ok(())
    }
}

#[test]
fn the_generator_emits_writes_in_start_order_across_directions() {
    // The capture writer relies on it to merge in bounded memory.
    let scenarios = [
        Scenario::plain().with_xl(true).with_memory(8 << 20),
        Scenario::plain_pv().with_xl(true).with_memory(8 << 20),
        Scenario::remus().with_memory(8 << 20).with_checkpoints(4),
        small_colo()
            .with_checkpoints(5)
            .with_stall(1, Phase::Memory, 1_000)
            .with_stall(2, Phase::Apply, 1)
            .with_stall(3, Phase::DirtySync, 0)
            .with_stall(3, Phase::Run, 1),
    ];
    for s in scenarios {
        let mut starts = Starts::default();
        generate(&s, &mut starts).unwrap();
        assert!(starts.0.windows(2).all(|w| w[0] <= w[1]), "{:?}", s.kind);
    }
}

fn migscope() -> Command {
    Command::cargo_bin("migscope").unwrap()
}

#[test]
fn cli_writes_gzipped_captures_and_a_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("c.pcapng.gz");
    let man = dir.path().join("m.json");
    migscope()
        .args([
            "synth",
            "--scenario",
            "colo",
            "--xl",
            "--memory",
            "2MiB",
            "--checkpoints",
            "2",
            "--rounds",
            "2",
            "--sessions",
            "2",
            "--loss",
            "1%",
            "--vlan",
            "9",
            "--seq-wrap",
            "-o",
        ])
        .arg(&out)
        .arg("--manifest")
        .arg(&man)
        .assert()
        .success()
        .stderr(predicates::str::contains("2 colo hvm sessions"));
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&out).unwrap())
        .read_to_end(&mut bytes)
        .unwrap();
    let pkts = packets(&bytes);
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&man).unwrap()).unwrap();
    assert_eq!(json["packets"], pkts.len() as u64);
    assert_eq!(json["options"]["format"], "pcapng");
    let sessions = json["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions[1]["name"], "guest-1");
    let f = &sessions[0]["directions"][0];
    assert_eq!(f["dir"], "forward");
    assert_eq!(f["src"], "10.0.1.1");
    assert_eq!(f["first_offset"], 0);
    assert!(f["lost"][0][1].as_u64() > f["lost"][0][0].as_u64());
    assert_eq!(sessions[0]["stream"]["forward_bytes"], f["total_bytes"]);
}

#[test]
fn cli_options_are_checked_with_one_sentence() {
    let err = |args: &[&str]| {
        let out = migscope().arg("synth").args(args).assert().code(2);
        String::from_utf8(out.get_output().stderr.clone()).unwrap()
    };
    assert_eq!(
        err(&["--ipv6", "-o", "x.bin"]),
        "migscope: --ipv6 applies to packet captures: choose --format pcap or pcapng, or an output name ending in .pcap or .pcapng\n"
    );
    assert!(err(&["--format", "pcap", "--reverse", "r", "-o", "-"]).contains("drop --reverse"));
    assert!(err(&["--zero-window", "-o", "x.pcap"]).contains("stalled memory phase"));
    assert!(err(&["--sessions", "0", "-o", "x.pcap"]).contains("1 to 64 sessions"));
    assert!(err(&["--gso", "64KiB", "-o", "x.pcap"]).contains("65483"));
    assert!(err(&["--snaplen", "40", "-o", "x.pcap"]).contains("every header whole"));
    assert!(err(&[
        "--memory",
        "1MiB",
        "--start-at",
        "1GiB",
        "-o",
        "-",
        "--format",
        "pcap"
    ])
    .contains("nothing was captured"));
    // A raw stream still goes where it always went.
    let out = migscope()
        .args(["synth", "--memory", "1MiB", "-o", "-"])
        .assert()
        .success();
    assert!(out.get_output().stdout.starts_with(b"LibxlFmt"));
}
