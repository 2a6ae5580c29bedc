//! The pipeline from TCP segments to sessions, fed segment by segment
//! (no capture file), so that recognition, mid-stream starts, back-channel
//! pairing, "Decode As" and the cost of non-migration flows are tested apart
//! from the capture readers and writers.
#![cfg(feature = "synth")]

use std::net::{IpAddr, Ipv4Addr};

use migscope::capture::{TcpFlags, TcpSegment};
use migscope::decode::{Decoder, Direction, Event, Item, ItemKind};
use migscope::session::{Analyzer, Config, Observer, Session};
use migscope::synth::{generate, Scenario, StreamFiles};
use migscope::tcp::{GapCause, TcpEvent, TcpEventKind};

const A: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const B: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
const C: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3));

/// One segment to send, owning its payload.
#[derive(Clone, Debug)]
struct Seg {
    ts: u64,
    src: (IpAddr, u16),
    dst: (IpAddr, u16),
    seq: u32,
    ack: u32,
    flags: u8,
    window: u16,
    data: Vec<u8>,
}

/// Builds the segments of one connection: handshake (optional), both
/// streams cut into `mss` pieces and interleaved, then FINs.
struct Conn {
    client: (IpAddr, u16),
    server: (IpAddr, u16),
    isn: [u32; 2],
    next: [u32; 2],
    ts: u64,
    segs: Vec<Seg>,
}

impl Conn {
    fn new(
        client: (IpAddr, u16),
        server: (IpAddr, u16),
        isn_c: u32,
        isn_s: u32,
        handshake: bool,
    ) -> Conn {
        let mut c = Conn {
            client,
            server,
            isn: [isn_c, isn_s],
            next: [isn_c.wrapping_add(1), isn_s.wrapping_add(1)],
            ts: 1_000_000,
            segs: Vec::new(),
        };
        if handshake {
            c.push(0, isn_c, 0, TcpFlags::SYN, Vec::new());
            c.push(
                1,
                isn_s,
                isn_c.wrapping_add(1),
                TcpFlags::SYN | TcpFlags::ACK,
                Vec::new(),
            );
            c.push(
                0,
                isn_c.wrapping_add(1),
                isn_s.wrapping_add(1),
                TcpFlags::ACK,
                Vec::new(),
            );
        }
        c
    }

    fn push(&mut self, side: usize, seq: u32, ack: u32, flags: u8, data: Vec<u8>) {
        let (src, dst) = if side == 0 {
            (self.client, self.server)
        } else {
            (self.server, self.client)
        };
        self.ts += 10_000;
        self.segs.push(Seg {
            ts: self.ts,
            src,
            dst,
            seq,
            ack,
            flags,
            window: 512,
            data,
        });
    }

    /// Sends `data` from `side` in segments of `mss`, each ACKed by the peer.
    fn send(&mut self, side: usize, data: &[u8], mss: usize) {
        for chunk in data.chunks(mss) {
            let seq = self.next[side];
            let ack = self.next[1 - side];
            self.push(
                side,
                seq,
                ack,
                TcpFlags::ACK | TcpFlags::PSH,
                chunk.to_vec(),
            );
            self.next[side] = seq.wrapping_add(chunk.len() as u32);
            let (s2, a2) = (self.next[1 - side], self.next[side]);
            self.push(1 - side, s2, a2, TcpFlags::ACK, Vec::new());
        }
    }

    fn fin(&mut self) {
        for side in 0..2 {
            let (s, a) = (self.next[side], self.next[1 - side]);
            self.push(side, s, a, TcpFlags::FIN | TcpFlags::ACK, Vec::new());
            self.next[side] = s.wrapping_add(1);
        }
        let _ = self.isn;
    }
}

/// Everything an analysis reported, for assertions.
#[derive(Default)]
struct Log {
    sessions: Vec<Session>,
    /// Bytes and records of the session `want`.
    want: u32,
    bytes: [Vec<u8>; 2],
    items: [Vec<Item>; 2],
    gaps: Vec<(u32, Direction, u64, u64, GapCause)>,
    tcp: Vec<(u32, Direction, TcpEvent)>,
    ended: u32,
}

fn di(d: Direction) -> usize {
    match d {
        Direction::Forward => 0,
        Direction::Reverse => 1,
    }
}

impl Observer for Log {
    fn session(&mut self, s: &Session) {
        self.sessions.push(s.clone());
    }
    fn back_channel(&mut self, s: &Session) {
        if let Some(x) = self.sessions.iter_mut().find(|x| x.id == s.id) {
            *x = s.clone();
        } else {
            self.sessions.push(s.clone());
        }
    }
    fn bytes(&mut self, s: u32, d: Direction, _offset: u64, data: &[u8]) {
        if s == self.want {
            self.bytes[di(d)].extend_from_slice(data);
        }
    }
    fn gap(&mut self, s: u32, d: Direction, _ts: u64, offset: u64, len: u64, cause: GapCause) {
        self.gaps.push((s, d, offset, len, cause));
    }
    fn decoded(&mut self, s: u32, d: Direction, _ts: u64, events: &[Event]) {
        if s == self.want {
            for e in events {
                if let Event::Item(i) = e {
                    self.items[di(d)].push(i.clone());
                }
            }
        }
    }
    fn tcp(&mut self, s: u32, d: Direction, ev: &TcpEvent) {
        self.tcp.push((s, d, *ev));
    }
    fn ended(&mut self, _s: u32, _d: Direction, _stats: &migscope::session::DirectionStats) {
        self.ended += 1;
    }
}

fn run(segs: &[Seg], cfg: Config) -> Analyzer<Log> {
    run_for(segs, cfg, 0)
}

fn run_for(segs: &[Seg], cfg: Config, want: u32) -> Analyzer<Log> {
    let log = Log {
        want,
        ..Log::default()
    };
    let mut an = Analyzer::new(cfg, log);
    let mut order: Vec<&Seg> = segs.iter().collect();
    order.sort_by_key(|s| s.ts);
    for (i, s) in order.iter().enumerate() {
        let seg = TcpSegment {
            src: s.src.0,
            dst: s.dst.0,
            src_port: s.src.1,
            dst_port: s.dst.1,
            seq: s.seq,
            ack: s.ack,
            flags: TcpFlags(s.flags),
            window: s.window,
            window_scale: None,
            mss: None,
            payload: &s.data,
            missing: 0,
        };
        an.segment(s.ts, i as u64 + 1, &seg);
    }
    an.finish();
    an
}

fn streams(s: &Scenario) -> (Vec<u8>, Vec<u8>) {
    let mut sink = StreamFiles::new(Vec::new(), Vec::new());
    generate(s, &mut sink).unwrap();
    sink.into_inner()
}

fn decode_all(dir: Direction, data: &[u8]) -> Vec<Item> {
    let mut d = Decoder::new(dir);
    let mut ev = Vec::new();
    d.push(data, &mut ev);
    d.finish(&mut ev);
    ev.into_iter()
        .filter_map(|e| match e {
            Event::Item(i) => Some(i),
            _ => None,
        })
        .collect()
}

fn small_colo() -> Scenario {
    Scenario::colo()
        .with_memory(1 << 20)
        .with_checkpoints(3)
        .with_seed(11)
}

#[test]
fn an_xl_migration_is_found_and_both_directions_decoded_as_from_the_raw_streams() {
    let (fwd, rev) = streams(&small_colo().with_xl(true));
    let mut c = Conn::new((A, 40000), (B, 8002), 0xffff_f000, 77, true);
    c.send(1, &rev[..54], 1448); // the receiver's banner comes first
    c.send(0, &fwd, 1448); // (sequence numbers wrap early in the forward stream)
    c.send(1, &rev[54..], 1448);
    c.fin();
    let an = run(&c.segs, Config::default());
    let log = an.observer();
    assert_eq!(log.sessions.len(), 1);
    let s = &log.sessions[0];
    assert_eq!((s.primary.ip, s.primary.port), (A, 40000));
    assert_eq!((s.secondary.ip, s.secondary.port), (B, 8002));
    assert_eq!(s.recognised_by, "xl");
    assert!(!s.mid_stream);
    assert!(log.bytes[0] == fwd, "forward bytes as sent");
    assert!(log.bytes[1] == rev, "reverse bytes as sent");
    assert_eq!(log.items[0], decode_all(Direction::Forward, &fwd));
    assert_eq!(log.items[1], decode_all(Direction::Reverse, &rev));
    assert!(log.gaps.is_empty());
    assert_eq!(log.ended, 2);
    let kinds: Vec<_> = log.tcp.iter().map(|t| t.2.kind).collect();
    assert!(kinds.iter().any(|k| matches!(k, TcpEventKind::Rtt { .. })));
    assert!(kinds.contains(&TcpEventKind::Fin));
}

#[test]
fn other_connections_are_ignored_and_ssh_is_counted() {
    let mut http = Conn::new((A, 50000), (C, 80), 1, 2, true);
    http.send(0, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 1448);
    http.send(1, &vec![b'x'; 100_000], 1448);
    let mut ssh = Conn::new((A, 50001), (C, 22), 5, 6, true);
    ssh.send(1, b"SSH-2.0-OpenSSH_9.2p1\r\n", 1448);
    ssh.send(0, &vec![7; 50_000], 1448);
    let mut segs = http.segs.clone();
    segs.extend(ssh.segs.iter().cloned().map(|mut s| {
        s.ts += 5;
        s
    }));
    let an = run(&segs, Config::default());
    assert!(an.observer().sessions.is_empty());
    let st = an.stats();
    assert_eq!(st.connections, 2);
    assert_eq!(st.ignored_connections, 2);
    assert_eq!(st.ssh_connections, 1);
    assert_eq!(st.peak_out_of_order, 0);
}

#[test]
fn decode_as_port_forces_a_session() {
    let mut c = Conn::new((A, 40000), (B, 9999), 1, 2, true);
    c.send(0, b"not a migration at all", 1448);
    let cfg = Config {
        ports: vec![9999],
        ..Config::default()
    };
    let an = run(&c.segs, cfg);
    let log = an.observer();
    assert_eq!(log.sessions.len(), 1);
    assert_eq!(log.sessions[0].recognised_by, "port");
    assert_eq!(log.bytes[0], b"not a migration at all");
}

#[test]
fn a_capture_starting_mid_stream_resynchronises_and_agrees_with_the_full_decode() {
    let (fwd, rev) = streams(&small_colo());
    let mut c = Conn::new((A, 40000), (B, 8002), 1000, 2000, false);
    // The capture begins 300 kB into the forward stream and after the first
    // 64 bytes of the back channel.
    let start = 300_000;
    c.next[0] = c.next[0].wrapping_add(start as u32);
    c.next[1] = c.next[1].wrapping_add(64);
    c.send(0, &fwd[start..], 1448);
    c.send(1, &rev[64..], 1448);
    let an = run(&c.segs, Config::default());
    let log = an.observer();
    assert_eq!(log.sessions.len(), 1, "one session: {:?}", an.stats());
    let s = &log.sessions[0];
    assert!(s.mid_stream);
    assert_eq!(s.recognised_by, "mid-stream");
    assert_eq!(
        (s.primary.ip, s.secondary.ip),
        (A, B),
        "forward direction found"
    );
    assert!(
        log.bytes[0] == fwd[start..],
        "forward bytes from the start of the capture"
    );
    // Once synchronised, records are those of the full decode.
    let full = decode_all(Direction::Forward, &fwd);
    let got = &log.items[0];
    assert!(!got.is_empty());
    let first = got[0].offset + start as u64;
    let expect: Vec<(u64, ItemKind)> = full
        .iter()
        .filter(|i| i.offset >= first)
        .map(|i| (i.offset, i.kind))
        .collect();
    let have: Vec<(u64, ItemKind)> = got
        .iter()
        .map(|i| (i.offset + start as u64, i.kind))
        .collect();
    assert_eq!(have, expect);
    assert!(log.items[1]
        .iter()
        .any(|i| i.kind.name() == "CHECKPOINT_STATE"));
}

#[test]
fn a_back_channel_on_its_own_connection_is_paired_with_its_forward_stream() {
    let (fwd, rev) = streams(&small_colo());
    let mut main = Conn::new((A, 40000), (B, 8002), 1, 2, true);
    main.send(0, &fwd, 1448);
    // The secondary connects back to the primary for the back channel.
    let mut back = Conn::new((B, 41000), (A, 8003), 3, 4, true);
    back.ts = main.ts / 2;
    back.send(0, &rev, 1448);
    // An unrelated migration between other hosts, to pair against.
    let (fwd2, _) = streams(&Scenario::plain().with_memory(1 << 20).with_seed(3));
    let mut other = Conn::new((C, 40001), (B, 8002), 9, 10, true);
    other.ts = 500_000;
    other.send(0, &fwd2, 1448);
    let mut segs = main.segs.clone();
    segs.extend(back.segs.iter().cloned());
    segs.extend(other.segs.iter().cloned());
    let an = run_for(&segs, Config::default(), 1);
    let log = an.observer();
    assert_eq!(log.sessions.len(), 2, "{:?}", log.sessions);
    let colo = log
        .sessions
        .iter()
        .find(|s| s.primary.ip == A)
        .expect("the COLO session");
    let bc = colo.back_channel.expect("paired back channel");
    assert_eq!((bc.from.ip, bc.to.ip), (B, A));
    let plain = log.sessions.iter().find(|s| s.primary.ip == C).unwrap();
    assert!(plain.back_channel.is_none());
    assert_eq!(
        (plain.id, colo.id),
        (0, 1),
        "numbered in the order of first packets"
    );
    assert!(log.bytes[1] == rev, "back-channel bytes as sent");
    assert_eq!(log.items[1], {
        let mut d = Decoder::back_channel();
        let mut ev = Vec::new();
        d.push(&rev, &mut ev);
        d.finish(&mut ev);
        ev.into_iter()
            .filter_map(|e| match e {
                Event::Item(i) => Some(i),
                _ => None,
            })
            .collect::<Vec<_>>()
    });
}

#[test]
fn lost_segments_are_reported_as_gaps_and_the_decoder_resynchronises() {
    let (fwd, _) = streams(&small_colo());
    let mut c = Conn::new((A, 40000), (B, 8002), 1, 2, true);
    c.send(0, &fwd, 1448);
    // Drop two data segments from the capture; their ACKs stay.
    let data: Vec<usize> = c
        .segs
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.data.is_empty())
        .map(|(i, _)| i)
        .collect();
    let lost = [data[100], data[400]];
    let segs: Vec<Seg> = c
        .segs
        .iter()
        .enumerate()
        .filter(|(i, _)| !lost.contains(i))
        .map(|(_, s)| s.clone())
        .collect();
    let an = run(&segs, Config::default());
    let log = an.observer();
    let gaps: Vec<(u64, u64, GapCause)> = log.gaps.iter().map(|g| (g.2, g.3, g.4)).collect();
    assert_eq!(
        gaps,
        vec![
            (100 * 1448, 1448, GapCause::AckedUnseen),
            (400 * 1448, 1448, GapCause::AckedUnseen)
        ]
    );
    // Every record that does not touch a gap is decoded as from the raw stream.
    let full = decode_all(Direction::Forward, &fwd);
    let touches = |o: u64, l: u64| gaps.iter().any(|g| o < g.0 + g.1 && g.0 < o + l);
    let expect: Vec<u64> = full
        .iter()
        .filter(|i| !touches(i.offset, i.wire_len) && i.offset > 401 * 1448 + 4 * 1024 * 1024)
        .map(|i| i.offset)
        .collect();
    let have: Vec<u64> = log.items[0].iter().map(|i| i.offset).collect();
    for o in &expect {
        assert!(have.contains(o), "record at {o} missing after the gaps");
    }
}

mod hostile {
    use super::*;
    use proptest::prelude::*;

    fn arb_seg() -> impl Strategy<Value = Seg> {
        let stream = streams(&small_colo().with_xl(true)).0;
        (
            0u64..5_000_000,
            0usize..3,
            any::<bool>(),
            any::<u32>(),
            any::<u32>(),
            any::<u8>(),
            any::<u16>(),
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..2000),
                (0usize..200_000, 1usize..3000).prop_map(move |(o, l)| {
                    let o = o.min(stream.len() - 1);
                    stream[o..(o + l).min(stream.len())].to_vec()
                }),
                Just(b"LibxlFmt".to_vec()),
                Just(b"xl migration receiver ready, send binary domain data.\n".to_vec()),
            ],
        )
            .prop_map(|(ts, pair, flip, seq, ack, flags, window, data)| {
                let hosts = [(A, 40000), (B, 8002), (C, 8003)];
                let (mut src, mut dst) = (hosts[pair], hosts[(pair + 1) % 3]);
                if flip {
                    std::mem::swap(&mut src, &mut dst);
                }
                Seg {
                    ts,
                    src,
                    dst,
                    seq: seq % 200_000,
                    ack: ack % 200_000,
                    flags,
                    window,
                    data,
                }
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Arbitrary segments (random flags, sequence numbers, payloads,
        /// pieces of a real stream) never panic, and out-of-order memory
        /// stays under its cap.
        #[test]
        fn arbitrary_segments_never_panic_and_memory_stays_capped(
            segs in proptest::collection::vec(arb_seg(), 1..400),
        ) {
            let mut cfg = Config::default();
            cfg.tcp.global_cap = 256 << 10;
            cfg.tcp.reassembly.flow_cap = 64 << 10;
            let an = run(&segs, cfg);
            let st = an.stats();
            prop_assert!(st.peak_out_of_order <= (256 << 10) + 4096, "{}", st.peak_out_of_order);
        }
    }
}
