//! Link, IP and TCP headers of the generated packets, and the Internet
//! checksum (RFC 1071).
//!
//! [`build_frame`] writes one whole frame (link header, IPv4 or IPv6 header,
//! TCP header with options, payload) into a reused buffer, fills in the IPv4
//! header checksum and the TCP checksum (pseudo-header included, computed
//! over the *whole* payload even when the frame is cut to a snap length), and
//! returns the frame's length on the wire. Nothing here allocates once the
//! buffer has grown to the largest frame.

use std::net::IpAddr;

/// EtherType values used in link headers.
pub mod ethertype {
    pub const IPV4: u16 = 0x0800;
    pub const IPV6: u16 = 0x86DD;
    pub const VLAN: u16 = 0x8100;
}

/// TCP flag bits.
pub mod flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
}

/// Byte offsets inside the fixed TCP header.
mod tcp_field {
    use std::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const SEQ: Range<usize> = 4..8;
    pub const ACK: Range<usize> = 8..12;
    pub const DATA_OFFSET: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: Range<usize> = 14..16;
    pub const CHECKSUM: Range<usize> = 16..18;
}

/// Byte offsets inside the IPv4 header.
mod ipv4_field {
    use std::ops::Range;
    pub const TOTAL_LEN: Range<usize> = 2..4;
    pub const ID: Range<usize> = 4..6;
    pub const FLAGS: usize = 6;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SRC: Range<usize> = 12..16;
    pub const DST: Range<usize> = 16..20;
}

/// The IP protocol number of TCP.
const IP_PROTO_TCP: u8 = 6;

pub const ETHERNET_HEADER_LEN: usize = 14;
pub const SLL2_HEADER_LEN: usize = 20;
pub const VLAN_TAG_LEN: usize = 4;
pub const IPV4_HEADER_LEN: usize = 20;
pub const IPV6_HEADER_LEN: usize = 40;
pub const TCP_HEADER_LEN: usize = 20;
/// The largest TCP header (20 bytes plus 40 of options).
pub const TCP_MAX_HEADER_LEN: usize = 60;
/// NOP, NOP, timestamps: the options of every segment after the handshake.
pub const TCP_TS_OPTIONS_LEN: usize = 12;
/// Largest payload whose segment still fits an IPv4 total length (and an
/// IPv6 payload length) with the timestamp option: 65535 - 20 - 32.
pub const MAX_SEGMENT_PAYLOAD: usize =
    65535 - IPV4_HEADER_LEN - TCP_HEADER_LEN - TCP_TS_OPTIONS_LEN;
/// Linux's ARPHRD_ETHER, the hardware type in an SLL2 header.
const ARPHRD_ETHER: u16 = 1;
/// SLL2 packet types: sent to this host, and sent by it.
const SLL_HOST: u8 = 0;
const SLL_OUTGOING: u8 = 4;
/// Interface index written in SLL2 headers (eth0 on most hosts).
const SLL2_IFINDEX: u32 = 2;

/// Adds `data` to a running ones'-complement sum as big-endian 16-bit words,
/// 64 bits at a time with end-around carry (RFC 1071 allows any word size).
/// `data` must start at an even offset of the summed message; an odd last
/// byte is padded with zero.
pub fn ones_complement_sum(data: &[u8], mut acc: u64) -> u64 {
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        let (s, carry) = acc.overflowing_add(w);
        acc = s + u64::from(carry);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut last = [0u8; 8];
        last[..rest.len()].copy_from_slice(rest);
        let (s, carry) = acc.overflowing_add(u64::from_be_bytes(last));
        acc = s + u64::from(carry);
    }
    acc
}

/// Folds a 64-bit ones'-complement sum to 16 bits (not complemented).
pub fn fold(acc: u64) -> u16 {
    let mut x = (acc & 0xFFFF_FFFF) + (acc >> 32);
    x = (x & 0xFFFF_FFFF) + (x >> 32);
    x = (x & 0xFFFF) + (x >> 16);
    x = (x & 0xFFFF) + (x >> 16);
    x = (x & 0xFFFF) + (x >> 16);
    x as u16
}

/// The Internet checksum of `data`: the complement of its folded sum.
pub fn internet_checksum(data: &[u8]) -> u16 {
    !fold(ones_complement_sum(data, 0))
}

/// The link layer of a capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    /// Ethernet II (LINKTYPE_ETHERNET, 1).
    Ethernet,
    /// Linux cooked capture v2 (LINKTYPE_LINUX_SLL2, 276), as `tcpdump -i any`
    /// writes.
    Sll2,
}

/// The link header settings of every frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkSpec {
    pub kind: LinkKind,
    /// An 802.1Q tag with this VLAN ID (for SLL2 as libpcap re-inserts it:
    /// protocol 0x8100, then the tag control and the inner EtherType).
    pub vlan: Option<u16>,
}

impl LinkSpec {
    /// Bytes before the IP header.
    pub fn header_len(&self) -> usize {
        let base = match self.kind {
            LinkKind::Ethernet => ETHERNET_HEADER_LEN,
            LinkKind::Sll2 => SLL2_HEADER_LEN,
        };
        base + if self.vlan.is_some() { VLAN_TAG_LEN } else { 0 }
    }

    /// Bytes of the largest header stack (link, IP, TCP with 40 bytes of
    /// options): the smallest snap length that keeps every header whole.
    pub fn max_headers_len(&self, ipv6: bool) -> usize {
        let ip = if ipv6 {
            IPV6_HEADER_LEN
        } else {
            IPV4_HEADER_LEN
        };
        self.header_len() + ip + TCP_MAX_HEADER_LEN
    }
}

/// The two hosts of a connection: index 0 is the capturing host (the
/// migration sender), index 1 its peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hosts {
    pub mac: [[u8; 6]; 2],
    /// Both IPv4 or both IPv6.
    pub ip: [IpAddr; 2],
}

/// The fields of one TCP segment.
#[derive(Debug, Clone, Copy)]
pub struct Segment<'a> {
    /// Sending host: 0 or 1 of [`Hosts`].
    pub from: usize,
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    /// A multiple of 4 bytes, at most 40.
    pub options: &'a [u8],
    pub ip_id: u16,
    /// IPv6 flow label (20 bits).
    pub flow_label: u32,
    pub payload: &'a [u8],
}

/// Writes the frame of `seg` into `frame` (cleared first), keeping at most
/// `caplen` bytes of it, and returns the frame's length on the wire. The
/// checksums cover the whole segment even when the frame is cut short.
pub fn build_frame(
    frame: &mut Vec<u8>,
    link: &LinkSpec,
    hosts: &Hosts,
    seg: &Segment<'_>,
    caplen: usize,
) -> usize {
    frame.clear();
    let from = seg.from & 1;
    let to = from ^ 1;
    let ipv6 = matches!(hosts.ip[0], IpAddr::V6(_));
    let ip_type = if ipv6 {
        ethertype::IPV6
    } else {
        ethertype::IPV4
    };
    let vlan_tci = link.vlan.map(|id| id & 0x0FFF);
    let outer_type = if vlan_tci.is_some() {
        ethertype::VLAN
    } else {
        ip_type
    };
    match link.kind {
        LinkKind::Ethernet => {
            frame.extend_from_slice(&hosts.mac[to]);
            frame.extend_from_slice(&hosts.mac[from]);
            frame.extend_from_slice(&outer_type.to_be_bytes());
        }
        LinkKind::Sll2 => {
            frame.extend_from_slice(&outer_type.to_be_bytes());
            frame.extend_from_slice(&[0, 0]);
            frame.extend_from_slice(&SLL2_IFINDEX.to_be_bytes());
            frame.extend_from_slice(&ARPHRD_ETHER.to_be_bytes());
            // The capture runs on host 0: its packets are outgoing.
            frame.push(if from == 0 { SLL_OUTGOING } else { SLL_HOST });
            frame.push(6);
            frame.extend_from_slice(&hosts.mac[from]);
            frame.extend_from_slice(&[0, 0]);
        }
    }
    if let Some(tci) = vlan_tci {
        frame.extend_from_slice(&tci.to_be_bytes());
        frame.extend_from_slice(&ip_type.to_be_bytes());
    }

    let tcp_len = TCP_HEADER_LEN + seg.options.len();
    let segment_len = tcp_len + seg.payload.len();
    // Pseudo-header sum (RFC 793 for IPv4, RFC 8200 section 8.1 for IPv6).
    let mut pseudo = 0u64;
    match (hosts.ip[from], hosts.ip[to]) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            let mut h = [0u8; IPV4_HEADER_LEN];
            h[0] = 0x45; // version 4, 5 words
            h[ipv4_field::TOTAL_LEN]
                .copy_from_slice(&((IPV4_HEADER_LEN + segment_len) as u16).to_be_bytes());
            h[ipv4_field::ID].copy_from_slice(&seg.ip_id.to_be_bytes());
            h[ipv4_field::FLAGS] = 0x40; // don't fragment
            h[ipv4_field::TTL] = 64;
            h[ipv4_field::PROTOCOL] = IP_PROTO_TCP;
            h[ipv4_field::SRC].copy_from_slice(&src.octets());
            h[ipv4_field::DST].copy_from_slice(&dst.octets());
            let checksum = internet_checksum(&h);
            h[ipv4_field::CHECKSUM].copy_from_slice(&checksum.to_be_bytes());
            frame.extend_from_slice(&h);
            pseudo = ones_complement_sum(&src.octets(), pseudo);
            pseudo = ones_complement_sum(&dst.octets(), pseudo);
            pseudo = ones_complement_sum(&[0, IP_PROTO_TCP], pseudo);
            pseudo = ones_complement_sum(&(segment_len as u16).to_be_bytes(), pseudo);
        }
        (src, dst) => {
            let src = ipv6_octets(src);
            let dst = ipv6_octets(dst);
            let label = seg.flow_label & 0x000F_FFFF;
            frame.extend_from_slice(&(0x6000_0000u32 | label).to_be_bytes());
            frame.extend_from_slice(&(segment_len as u16).to_be_bytes());
            frame.extend_from_slice(&[IP_PROTO_TCP, 64]); // next header, hop limit
            frame.extend_from_slice(&src);
            frame.extend_from_slice(&dst);
            pseudo = ones_complement_sum(&src, pseudo);
            pseudo = ones_complement_sum(&dst, pseudo);
            pseudo = ones_complement_sum(&(segment_len as u32).to_be_bytes(), pseudo);
            pseudo = ones_complement_sum(&[0, 0, 0, IP_PROTO_TCP], pseudo);
        }
    }

    let mut h = [0u8; TCP_HEADER_LEN];
    h[tcp_field::SRC_PORT].copy_from_slice(&seg.src_port.to_be_bytes());
    h[tcp_field::DST_PORT].copy_from_slice(&seg.dst_port.to_be_bytes());
    h[tcp_field::SEQ].copy_from_slice(&seg.seq.to_be_bytes());
    h[tcp_field::ACK].copy_from_slice(&seg.ack.to_be_bytes());
    h[tcp_field::DATA_OFFSET] = ((tcp_len / 4) as u8) << 4;
    h[tcp_field::FLAGS] = seg.flags;
    h[tcp_field::WINDOW].copy_from_slice(&seg.window.to_be_bytes());
    let mut sum = ones_complement_sum(&h, pseudo);
    sum = ones_complement_sum(seg.options, sum);
    sum = ones_complement_sum(seg.payload, sum);
    h[tcp_field::CHECKSUM].copy_from_slice(&(!fold(sum)).to_be_bytes());
    frame.extend_from_slice(&h);
    frame.extend_from_slice(seg.options);

    let wire_len = frame.len() + seg.payload.len();
    let room = caplen.saturating_sub(frame.len());
    frame.extend_from_slice(&seg.payload[..room.min(seg.payload.len())]);
    frame.truncate(caplen);
    wire_len
}

fn ipv6_octets(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V6(a) => a.octets(),
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
    }
}

/// TCP options, built into a fixed array.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    bytes: [u8; 40],
    len: usize,
}

impl Options {
    /// The options of a SYN or SYN/ACK, in Linux's order: MSS, SACK
    /// permitted, timestamps, NOP, window scale (20 bytes).
    pub fn syn(mss: u16, tsval: u32, tsecr: u32, wscale: u8) -> Self {
        let mut o = Options {
            bytes: [0; 40],
            len: 0,
        };
        o.put(&[2, 4]);
        o.put(&mss.to_be_bytes());
        o.put(&[4, 2]);
        o.timestamps(tsval, tsecr);
        o.put(&[1, 3, 3, wscale]);
        o
    }

    /// NOP, NOP, timestamps; then NOP, NOP and a SACK option when `sack`
    /// holds blocks (at most 3 fit).
    pub fn established(tsval: u32, tsecr: u32, sack: &[(u32, u32)]) -> Self {
        let mut o = Options {
            bytes: [0; 40],
            len: 0,
        };
        o.put(&[1, 1]);
        o.timestamps(tsval, tsecr);
        let blocks = &sack[..sack.len().min(3)];
        if !blocks.is_empty() {
            o.put(&[1, 1, 5, (2 + 8 * blocks.len()) as u8]);
            for &(left, right) in blocks {
                o.put(&left.to_be_bytes());
                o.put(&right.to_be_bytes());
            }
        }
        o
    }

    fn timestamps(&mut self, tsval: u32, tsecr: u32) {
        self.put(&[8, 10]);
        self.put(&tsval.to_be_bytes());
        self.put(&tsecr.to_be_bytes());
    }

    fn put(&mut self, b: &[u8]) {
        let end = (self.len + b.len()).min(self.bytes.len());
        let n = end - self.len;
        self.bytes[self.len..end].copy_from_slice(&b[..n]);
        self.len = end;
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn checksum_of_rfc1071_example() {
        // RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(ones_complement_sum(&data, 0)), 0xddf2);
        assert_eq!(internet_checksum(&data), !0xddf2);
        // Any split at an even offset gives the same sum.
        let split = ones_complement_sum(&data[4..], ones_complement_sum(&data[..4], 0));
        assert_eq!(fold(split), 0xddf2);
    }

    #[test]
    fn checksum_of_a_known_ipv4_header() {
        // The header from Wikipedia's "IPv4 header checksum" example.
        let mut h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(internet_checksum(&h), 0xb861);
        h[10] = 0xb8;
        h[11] = 0x61;
        assert_eq!(internet_checksum(&h), 0);
    }

    #[test]
    fn odd_lengths_pad_with_zero_and_carries_wrap() {
        assert_eq!(fold(ones_complement_sum(&[0xab], 0)), 0xab00);
        assert_eq!(
            fold(ones_complement_sum(&[0x12, 0x34, 0x56], 0)),
            0x1234 + 0x5600
        );
        // 0xffff + 0x0001 wraps to 0x0001 in ones' complement.
        assert_eq!(
            fold(ones_complement_sum(&[0xff, 0xff, 0x00, 0x01], 0)),
            0x0001
        );
        let ones = vec![0xffu8; 1001];
        let mut slow = 0u32;
        for pair in ones.chunks(2) {
            let w = u32::from(pair[0]) << 8 | u32::from(*pair.get(1).unwrap_or(&0));
            slow += w;
            slow = (slow & 0xffff) + (slow >> 16);
        }
        assert_eq!(u32::from(fold(ones_complement_sum(&ones, 0))), slow);
    }

    #[test]
    fn hand_computed_tcp_checksum() {
        // A bare SYN from 10.0.0.1:1 to 10.0.0.2:2, seq 1, window 0, no options.
        // Pseudo-header words 0a00+0001+0a00+0002+0006+0014 = 0x141d; header
        // words 0001+0002+0000+0001+0000+0000+5002+0000+0000+0000 = 0x5006;
        // total 0x6423, checksum !0x6423 = 0x9bdc.
        let hosts = Hosts {
            mac: [[0; 6]; 2],
            ip: [
                IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
                IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            ],
        };
        let seg = Segment {
            from: 0,
            src_port: 1,
            dst_port: 2,
            seq: 1,
            ack: 0,
            flags: flags::SYN,
            window: 0,
            options: &[],
            ip_id: 0,
            flow_label: 0,
            payload: &[],
        };
        let link = LinkSpec {
            kind: LinkKind::Ethernet,
            vlan: None,
        };
        let mut frame = Vec::new();
        let len = build_frame(&mut frame, &link, &hosts, &seg, 1 << 16);
        assert_eq!(len, 14 + 20 + 20);
        assert_eq!(&frame[14 + 20 + 16..14 + 20 + 18], &[0x9b, 0xdc]);
    }

    fn sample(ipv6: bool, link: LinkSpec, payload: &[u8], caplen: usize) -> (Vec<u8>, usize) {
        let ip = if ipv6 {
            [
                IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 7, 0, 0, 0, 1)),
                IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 7, 0, 0, 0, 2)),
            ]
        } else {
            [
                IpAddr::V4(Ipv4Addr::new(10, 0, 7, 1)),
                IpAddr::V4(Ipv4Addr::new(10, 0, 7, 2)),
            ]
        };
        let hosts = Hosts {
            mac: [[2, 0, 0, 0, 7, 1], [2, 0, 0, 0, 7, 2]],
            ip,
        };
        let opts = Options::established(0x0102_0304, 0x0506_0708, &[(100, 200)]);
        let seg = Segment {
            from: 1,
            src_port: 8002,
            dst_port: 40000,
            seq: 0xFFFF_FFF0,
            ack: 77,
            flags: flags::ACK | flags::PSH,
            window: 512,
            options: opts.as_slice(),
            ip_id: 9,
            flow_label: 0x12345,
            payload,
        };
        let mut frame = Vec::new();
        let len = build_frame(&mut frame, &link, &hosts, &seg, caplen);
        (frame, len)
    }

    #[test]
    fn frames_parse_and_checksums_verify_with_etherparse() {
        let payload: Vec<u8> = (0..1001u32).map(|i| (i * 7 + 3) as u8).collect();
        for ipv6 in [false, true] {
            for vlan in [None, Some(42)] {
                let link = LinkSpec {
                    kind: LinkKind::Ethernet,
                    vlan,
                };
                let (frame, len) = sample(ipv6, link, &payload, 1 << 16);
                assert_eq!(frame.len(), len);
                let p = SlicedPacket::from_ethernet(&frame).unwrap();
                if vlan.is_some() {
                    let Some(etherparse::VlanSlice::SingleVlan(tag)) = &p.vlan else {
                        panic!("no VLAN tag")
                    };
                    assert_eq!(tag.vlan_identifier().value(), 42);
                }
                let Some(TransportSlice::Tcp(tcp)) = p.transport else {
                    panic!("no TCP")
                };
                assert_eq!(tcp.payload(), &payload[..]);
                assert_eq!(tcp.sequence_number(), 0xFFFF_FFF0);
                assert_eq!(tcp.window_size(), 512);
                let expected = match &p.net {
                    Some(NetSlice::Ipv4(ip)) => {
                        let h = ip.header();
                        assert_eq!(h.header_checksum(), h.to_header().calc_header_checksum());
                        tcp.calc_checksum_ipv4(h.source(), h.destination()).unwrap()
                    }
                    Some(NetSlice::Ipv6(ip)) => {
                        let h = ip.header();
                        assert_eq!(h.flow_label().value(), 0x12345);
                        tcp.calc_checksum_ipv6(h.source(), h.destination()).unwrap()
                    }
                    _ => panic!("no IP"),
                };
                assert_eq!(tcp.checksum(), expected, "ipv6 {ipv6} vlan {vlan:?}");
            }
        }
    }

    #[test]
    fn sll2_header_and_vlan_reinsertion() {
        let link = LinkSpec {
            kind: LinkKind::Sll2,
            vlan: Some(5),
        };
        let (frame, len) = sample(false, link, b"hello", 1 << 16);
        assert_eq!(len, 20 + 4 + 20 + 32 + 12 + 5);
        assert_eq!(&frame[0..2], &[0x81, 0x00]);
        assert_eq!(frame[10], SLL_HOST); // sent by host 1, the peer
        assert_eq!(frame[11], 6);
        assert_eq!(&frame[12..18], &[2, 0, 0, 0, 7, 2]);
        assert_eq!(&frame[20..24], &[0x00, 0x05, 0x08, 0x00]);
        let p =
            SlicedPacket::from_ether_type(etherparse::EtherType::VLAN_TAGGED_FRAME, &frame[20..])
                .unwrap();
        let Some(TransportSlice::Tcp(tcp)) = p.transport else {
            panic!("no TCP")
        };
        assert_eq!(tcp.payload(), b"hello");
    }

    #[test]
    fn snap_length_cuts_the_frame_but_not_the_checksum() {
        let payload = vec![0x5a; 3000];
        let link = LinkSpec {
            kind: LinkKind::Ethernet,
            vlan: None,
        };
        let (full, len) = sample(false, link, &payload, 1 << 16);
        let (cut, cut_len) = sample(false, link, &payload, 100);
        assert_eq!(len, cut_len);
        assert_eq!(cut.len(), 100);
        assert_eq!(&full[..100], &cut[..]);
        // Headers longer than the snap length are cut too, without panicking.
        let (tiny, _) = sample(true, link, &payload, 10);
        assert_eq!(tiny.len(), 10);
    }

    #[test]
    fn options_layout() {
        let syn = Options::syn(1460, 1, 0, 7);
        assert_eq!(
            syn.as_slice(),
            &[2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7]
        );
        assert_eq!(Options::established(0, 0, &[]).as_slice().len(), 12);
        let three = [(1, 2), (3, 4), (5, 6), (7, 8)];
        let o = Options::established(0, 0, &three);
        assert_eq!(o.as_slice().len(), 40);
        assert_eq!(&o.as_slice()[12..16], &[1, 1, 5, 26]);
    }
}
