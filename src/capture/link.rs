//! From a captured frame to its TCP segment, without copying.
//!
//! [`parse`] slices one packet: the link layer, up to
//! [`MAX_VLAN_TAGS`] VLAN tags, IPv4 (with options and an authentication
//! header) or IPv6 (with extension headers), then the TCP header. It reads only
//! headers, costs O(1) per packet (a few tens of nanoseconds for a 1500-byte
//! Ethernet/IPv4/TCP frame), never allocates and never panics: every outcome is
//! a [`Parsed`] value.
//!
//! # Link layers
//! Ethernet (1) with 802.1Q, 802.1ad and 0x9100 tags; Linux cooked capture
//! SLL (113) and SLL2 (276); raw IP (101, and 12 and 14 which some BSD files
//! carry, and 228 IPv4 / 229 IPv6); BSD loopback NULL (0) and LOOP (108),
//! whose 4-byte address family may be in either byte order (AF_INET 2,
//! AF_INET6 10, 23, 24, 28 or 30 depending on the OS). Other link types are
//! [`Parsed::Unsupported`].
//!
//! # What is validated
//! Header lengths against the captured bytes and against the enclosing
//! length fields (IPv4 IHL and total length, IPv6 payload length and extension
//! headers, TCP data offset), via etherparse's lax slicing. The IP length, not
//! the frame length, bounds the payload, so Ethernet padding never counts as
//! data. Checksums are not verified: offload makes them wrong in host captures.
//! TCP options are read only on SYN segments, for MSS and window scale.
//!
//! # Snap length
//! When the capture cut the packet (the IP length announces more than was
//! captured, or with no usable IP length, `orig_len` exceeds the captured
//! length), [`TcpSegment::payload`] is the captured part and
//! [`TcpSegment::missing`] counts the rest. A TCP header that is itself cut
//! is [`Malformed`].
//!
//! After `parse` returns, nothing about the segment can fail: its fields are
//! plain values and its payload a slice of the frame.

use std::fmt;
use std::net::IpAddr;

use etherparse::err::{self, ip::LaxHeaderSliceError, LenError};
use etherparse::{
    Ethernet2Slice, IpNumber, LaxIpSlice, LenSource, SingleVlanSlice, TcpOptionElement, TcpSlice,
};

use super::{LinkType, TcpFlags, TcpSegment};

/// VLAN tags followed before giving up (QinQ is two).
pub const MAX_VLAN_TAGS: usize = 4;

mod ether_type {
    pub const IPV4: u16 = 0x0800;
    pub const IPV6: u16 = 0x86dd;
    pub const VLAN: u16 = 0x8100;
    pub const QINQ: u16 = 0x88a8;
    pub const QINQ_OLD: u16 = 0x9100;
}

/// Linux cooked capture v1: 16-byte header.
mod sll {
    use std::ops::Range;
    pub const ARPHRD: Range<usize> = 2..4;
    pub const PROTOCOL: Range<usize> = 14..16;
    pub const LEN: usize = 16;
}

/// Linux cooked capture v2: 20-byte header.
mod sll2 {
    use std::ops::Range;
    pub const PROTOCOL: Range<usize> = 0..2;
    pub const ARPHRD: Range<usize> = 8..10;
    pub const LEN: usize = 20;
}

/// ARPHRD_NETLINK: the SLL protocol field is a netlink family, not an EtherType.
const ARPHRD_NETLINK: u16 = 824;

/// BSD loopback: a 4-byte address family.
mod null {
    pub const LEN: usize = 4;
    pub const AF_INET: u32 = 2;
    /// Linux, Windows (Npcap), NetBSD/OpenBSD, FreeBSD, macOS.
    pub const AF_INET6: [u32; 5] = [10, 23, 24, 28, 30];
}

/// The outcome of slicing one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// A TCP segment.
    Tcp(TcpSegment<'a>),
    /// Not TCP (ARP, UDP, ICMP, another EtherType or address family...).
    Other,
    /// An IP fragment (IPv4, or IPv6 with a fragment header); not reassembled.
    Fragment,
    /// A link type migscope does not slice.
    Unsupported(LinkType),
    /// A header is cut or impossible.
    Malformed(Malformed),
}

/// The layer a [`Malformed`] packet broke in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketLayer {
    /// The link-layer header (Ethernet, SLL, SLL2, loopback).
    Link(LinkType),
    Vlan,
    /// The first byte of an IP header (its version).
    Ip,
    Ipv4,
    Ipv6,
    /// An IPv6 extension header or an IP authentication header.
    IpExtension,
    Tcp,
}

impl fmt::Display for PacketLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PacketLayer::Link(l) => match l.name() {
                Some(n) => write!(f, "{n} header"),
                None => write!(f, "{l} header"),
            },
            PacketLayer::Vlan => f.write_str("VLAN tag"),
            PacketLayer::Ip => f.write_str("IP header"),
            PacketLayer::Ipv4 => f.write_str("IPv4 header"),
            PacketLayer::Ipv6 => f.write_str("IPv6 header"),
            PacketLayer::IpExtension => f.write_str("IP extension header"),
            PacketLayer::Tcp => f.write_str("TCP header"),
        }
    }
}

/// Why a packet could not be sliced down to TCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    /// A header does not fit: it needs `need` bytes at `offset` (from the frame
    /// start), but the capture, or the enclosing length field when
    /// `by_length_field`, leaves only `have`.
    #[error("{layer} cut short: {need} bytes needed at offset {offset}, {have} {}", if *.by_length_field { "allowed by the IP length" } else { "captured" })]
    Short {
        layer: PacketLayer,
        offset: u32,
        need: u32,
        have: u32,
        by_length_field: bool,
    },
    /// The IP version nibble is neither 4 nor 6.
    #[error("IP version {0} is neither 4 nor 6")]
    IpVersion(u8),
    /// The IPv4 IHL is below 5 (20 bytes).
    #[error("IPv4 header length (IHL) {0} is below the minimum of 5")]
    Ipv4HeaderLength(u8),
    /// An IPv6 hop-by-hop options header after the first extension header.
    #[error("IPv6 hop-by-hop options header is not the first extension header")]
    HopByHopNotFirst,
    /// An IP authentication header with a payload length of 0.
    #[error("IP authentication header has a payload length of 0")]
    AuthZeroLength,
    /// The TCP data offset is below 5 (20 bytes).
    #[error("TCP data offset {0} is below the minimum of 5")]
    TcpDataOffset(u8),
}

/// Slices `data`, captured on a `link` interface, down to TCP.
///
/// `orig_len` is the packet's length on the wire; it only matters when the IP
/// header gives no usable length (IPv4 total length 0 from segmentation
/// offload, IPv6 jumbograms): the segment's `missing` is then what the snap
/// length cut off the frame.
pub fn parse(link: LinkType, data: &[u8], orig_len: u32) -> Parsed<'_> {
    let captured = u32::try_from(data.len()).unwrap_or(u32::MAX);
    let cut = orig_len.saturating_sub(captured);
    match link.0 {
        1 => match Ethernet2Slice::from_slice_without_fcs(data) {
            Ok(eth) => by_ether_type(
                eth.ether_type().0,
                eth.payload_slice(),
                eth.header_len(),
                cut,
            ),
            Err(e) => Parsed::Malformed(short(PacketLayer::Link(link), 0, &e)),
        },
        113 => {
            if data.len() < sll::LEN {
                return link_short(link, sll::LEN, data.len());
            }
            if be16(data, sll::ARPHRD.start) == ARPHRD_NETLINK {
                return Parsed::Other;
            }
            let et = be16(data, sll::PROTOCOL.start);
            by_ether_type(et, &data[sll::LEN..], sll::LEN, cut)
        }
        276 => {
            if data.len() < sll2::LEN {
                return link_short(link, sll2::LEN, data.len());
            }
            if be16(data, sll2::ARPHRD.start) == ARPHRD_NETLINK {
                return Parsed::Other;
            }
            let et = be16(data, sll2::PROTOCOL.start);
            by_ether_type(et, &data[sll2::LEN..], sll2::LEN, cut)
        }
        12 | 14 | 101 | 228 | 229 => ip(data, 0, cut),
        0 | 108 => {
            if data.len() < null::LEN {
                return link_short(link, null::LEN, data.len());
            }
            let b = [data[0], data[1], data[2], data[3]];
            // Host byte order of the capturing machine (NULL) or network
            // order (LOOP, and NULL files written on the other endianness):
            // families are small, so the order giving a small number is it.
            let le = u32::from_le_bytes(b);
            let af = if le < 0x1_0000 {
                le
            } else {
                u32::from_be_bytes(b)
            };
            if af == null::AF_INET || null::AF_INET6.contains(&af) {
                ip(&data[null::LEN..], null::LEN, cut)
            } else {
                Parsed::Other
            }
        }
        _ => Parsed::Unsupported(link),
    }
}

fn be16(d: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([d[at], d[at + 1]])
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn link_short(link: LinkType, need: usize, have: usize) -> Parsed<'static> {
    Parsed::Malformed(Malformed::Short {
        layer: PacketLayer::Link(link),
        offset: 0,
        need: to_u32(need),
        have: to_u32(have),
        by_length_field: false,
    })
}

fn short(layer: PacketLayer, base: usize, e: &LenError) -> Malformed {
    Malformed::Short {
        layer,
        offset: to_u32(base.saturating_add(e.layer_start_offset)),
        need: to_u32(e.required_len),
        have: to_u32(e.len),
        by_length_field: e.len_source != LenSource::Slice,
    }
}

/// Follows VLAN tags from an EtherType to IP.
fn by_ether_type(mut et: u16, mut rest: &[u8], mut offset: usize, cut: u32) -> Parsed<'_> {
    for _ in 0..=MAX_VLAN_TAGS {
        match et {
            ether_type::IPV4 | ether_type::IPV6 => return ip(rest, offset, cut),
            ether_type::VLAN | ether_type::QINQ | ether_type::QINQ_OLD => {
                let tag = match SingleVlanSlice::from_slice(rest) {
                    Ok(t) => t,
                    Err(e) => return Parsed::Malformed(short(PacketLayer::Vlan, offset, &e)),
                };
                et = tag.ether_type().0;
                offset += tag.header_len();
                rest = tag.payload_slice();
            }
            _ => return Parsed::Other,
        }
    }
    Parsed::Other
}

/// From an IP header (at `offset` in the frame) to TCP.
fn ip(data: &[u8], offset: usize, cut: u32) -> Parsed<'_> {
    let (slice, stop) = match LaxIpSlice::from_slice(data) {
        Ok(s) => s,
        Err(LaxHeaderSliceError::Len(e)) => {
            let layer = match e.layer {
                err::Layer::Ipv4Header => PacketLayer::Ipv4,
                err::Layer::Ipv6Header => PacketLayer::Ipv6,
                _ => PacketLayer::Ip,
            };
            return Parsed::Malformed(short(layer, offset, &e));
        }
        Err(LaxHeaderSliceError::Content(c)) => {
            use err::ip::HeaderError as H;
            return Parsed::Malformed(match c {
                H::UnsupportedIpVersion { version_number } => Malformed::IpVersion(version_number),
                H::Ipv4HeaderLengthSmallerThanHeader { ihl } => Malformed::Ipv4HeaderLength(ihl),
            });
        }
    };
    let payload = slice.payload();
    if payload.fragmented {
        return Parsed::Fragment;
    }
    if let Some((e, _)) = stop {
        use err::ipv6_exts::{HeaderError as H, HeaderSliceError as S};
        return Parsed::Malformed(match e {
            S::Len(l) => short(PacketLayer::IpExtension, offset, &l),
            S::Content(H::HopByHopNotAtStart) => Malformed::HopByHopNotFirst,
            S::Content(H::IpAuth(_)) => Malformed::AuthZeroLength,
        });
    }
    if payload.ip_number != IpNumber::TCP {
        return Parsed::Other;
    }
    // Where TCP starts in the frame, for error offsets (only then computed).
    let tcp_offset = || {
        offset
            + match &slice {
                LaxIpSlice::Ipv4(v4) => {
                    v4.header().slice().len() + v4.extensions().auth.map_or(0, |a| a.slice().len())
                }
                LaxIpSlice::Ipv6(v6) => v6.header().slice().len() + v6.extensions().slice().len(),
            }
    };
    let tcp = match TcpSlice::from_slice(payload.payload) {
        Ok(t) => t,
        Err(err::tcp::HeaderSliceError::Len(mut e)) => {
            e.len_source = if payload.incomplete {
                LenSource::Slice
            } else {
                payload.len_source
            };
            return Parsed::Malformed(short(PacketLayer::Tcp, tcp_offset(), &e));
        }
        Err(err::tcp::HeaderSliceError::Content(err::tcp::HeaderError::DataOffsetTooSmall {
            data_offset,
        })) => return Parsed::Malformed(Malformed::TcpDataOffset(data_offset)),
    };
    // Payload bytes the IP length announces beyond the capture.
    let missing = if payload.incomplete {
        let declared = match &slice {
            LaxIpSlice::Ipv4(v4) => usize::from(v4.header().total_len()),
            LaxIpSlice::Ipv6(v6) => 40 + usize::from(v6.header().payload_length()),
        };
        to_u32(declared.saturating_sub(data.len()))
    } else if payload.len_source == LenSource::Slice {
        cut
    } else {
        0
    };
    let (src, dst): (IpAddr, IpAddr) = match &slice {
        LaxIpSlice::Ipv4(v4) => (
            v4.header().source_addr().into(),
            v4.header().destination_addr().into(),
        ),
        LaxIpSlice::Ipv6(v6) => (
            v6.header().source_addr().into(),
            v6.header().destination_addr().into(),
        ),
    };
    let flags = TcpFlags(tcp.header_slice()[13]);
    let (mut mss, mut window_scale) = (None, None);
    if flags.syn() {
        for opt in tcp.options_iterator() {
            match opt {
                Ok(TcpOptionElement::MaximumSegmentSize(m)) => mss = Some(m),
                Ok(TcpOptionElement::WindowScale(w)) => window_scale = Some(w),
                Ok(_) => {}
                Err(_) => break,
            }
        }
    }
    Parsed::Tcp(TcpSegment {
        src,
        dst,
        src_port: tcp.source_port(),
        dst_port: tcp.destination_port(),
        seq: tcp.sequence_number(),
        ack: tcp.acknowledgment_number(),
        flags,
        window: tcp.window_size(),
        window_scale,
        mss,
        payload: tcp.payload(),
        missing,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const SRC4: [u8; 4] = [10, 0, 0, 1];
    const DST4: [u8; 4] = [10, 0, 0, 2];

    /// A TCP header: ports 8002 -> 47000, the given flags and options.
    pub(crate) fn tcp(flags: u8, options: &[u8]) -> Vec<u8> {
        assert_eq!(options.len() % 4, 0);
        let data_offset = (20 + options.len()) / 4;
        let mut h = vec![];
        h.extend_from_slice(&8002u16.to_be_bytes());
        h.extend_from_slice(&47000u16.to_be_bytes());
        h.extend_from_slice(&0x0102_0304u32.to_be_bytes()); // seq
        h.extend_from_slice(&0x0a0b_0c0du32.to_be_bytes()); // ack
        h.push((data_offset as u8) << 4);
        h.push(flags);
        h.extend_from_slice(&512u16.to_be_bytes()); // window
        h.extend_from_slice(&[0xde, 0xad]); // checksum: wrong on purpose
        h.extend_from_slice(&[0, 0]); // urgent pointer
        h.extend_from_slice(options);
        h
    }

    /// An IPv4 header (no options) for `payload_len` bytes of `proto`; the
    /// total length may be overridden.
    pub(crate) fn ipv4(
        proto: u8,
        payload_len: usize,
        total_len: Option<u16>,
        frag: u16,
    ) -> Vec<u8> {
        let total = total_len.unwrap_or(20 + payload_len as u16);
        let mut h = vec![0x45, 0];
        h.extend_from_slice(&total.to_be_bytes());
        h.extend_from_slice(&[0x12, 0x34]); // identification
        h.extend_from_slice(&frag.to_be_bytes()); // flags + fragment offset
        h.extend_from_slice(&[64, proto, 0, 0]); // ttl, protocol, checksum (not checked)
        h.extend_from_slice(&SRC4);
        h.extend_from_slice(&DST4);
        h
    }

    /// An IPv6 header for `payload_len` bytes after it, next header `next`.
    fn ipv6(next: u8, payload_len: u16) -> Vec<u8> {
        let mut h = vec![0x60, 0, 0, 0];
        h.extend_from_slice(&payload_len.to_be_bytes());
        h.extend_from_slice(&[next, 64]);
        h.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        h.extend_from_slice(&"fe80::2".parse::<Ipv6Addr>().unwrap().octets());
        h
    }

    fn eth(ether_type: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1];
        f.extend_from_slice(&ether_type.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    /// IPv4 + TCP (ACK|PSH) + `payload`.
    pub(crate) fn ipv4_tcp(payload: &[u8]) -> Vec<u8> {
        let t = tcp(0x18, &[]);
        cat(&[&ipv4(6, t.len() + payload.len(), None, 0), &t, payload])
    }

    fn seg(p: Parsed<'_>) -> TcpSegment<'_> {
        match p {
            Parsed::Tcp(s) => s,
            other => panic!("expected TCP, got {other:?}"),
        }
    }

    #[test]
    fn ethernet_ipv4_tcp() {
        let f = eth(0x0800, &ipv4_tcp(b"hello"));
        let s = seg(parse(LinkType::ETHERNET, &f, f.len() as u32));
        assert_eq!(s.src, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(s.dst, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)));
        assert_eq!((s.src_port, s.dst_port), (8002, 47000));
        assert_eq!((s.seq, s.ack), (0x0102_0304, 0x0a0b_0c0d));
        assert!(s.flags.ack() && s.flags.psh() && !s.flags.syn());
        assert_eq!(s.window, 512);
        assert_eq!((s.mss, s.window_scale), (None, None));
        assert_eq!(s.payload, b"hello");
        assert_eq!(s.missing, 0);
    }

    #[test]
    fn vlan_qinq_and_0x9100_tags() {
        let ip = ipv4_tcp(b"x");
        let tag = |tpid_next: u16| {
            let mut t = vec![0x00, 0x64]; // PCP 0, VLAN 100
            t.extend_from_slice(&tpid_next.to_be_bytes());
            t
        };
        // 802.1Q
        let f = eth(0x8100, &cat(&[&tag(0x0800), &ip]));
        assert_eq!(
            seg(parse(LinkType::ETHERNET, &f, f.len() as u32)).payload,
            b"x"
        );
        // QinQ: 802.1ad outer, 802.1Q inner
        let f = eth(0x88a8, &cat(&[&tag(0x8100), &tag(0x0800), &ip]));
        assert_eq!(
            seg(parse(LinkType::ETHERNET, &f, f.len() as u32)).payload,
            b"x"
        );
        // Three tags, the outer one old-style 0x9100
        let f = eth(
            0x9100,
            &cat(&[&tag(0x88a8), &tag(0x8100), &tag(0x0800), &ip]),
        );
        assert_eq!(
            seg(parse(LinkType::ETHERNET, &f, f.len() as u32)).payload,
            b"x"
        );
        // A tag cut short
        let f = eth(0x8100, &[0x00, 0x64]);
        assert_eq!(
            parse(LinkType::ETHERNET, &f, f.len() as u32),
            Parsed::Malformed(Malformed::Short {
                layer: PacketLayer::Vlan,
                offset: 14,
                need: 4,
                have: 2,
                by_length_field: false
            })
        );
    }

    #[test]
    fn ipv4_options_are_skipped() {
        let t = tcp(0x10, &[]);
        let mut ip = ipv4(6, 4 + t.len() + 3, None, 0);
        ip[0] = 0x46; // IHL 6: one word of options
        ip.extend_from_slice(&[1, 1, 1, 0]); // NOP NOP NOP EOL
        let f = eth(0x0800, &cat(&[&ip, &t, b"abc"]));
        assert_eq!(
            seg(parse(LinkType::ETHERNET, &f, f.len() as u32)).payload,
            b"abc"
        );
    }

    #[test]
    fn syn_options_mss_and_window_scale() {
        // MSS 1460, NOP, WS 7, SACK permitted, 2 NOPs... padded to a word
        let opts = [2, 4, 0x05, 0xb4, 1, 3, 3, 7, 4, 2, 1, 1];
        let t = tcp(0x02, &opts);
        let f = eth(0x0800, &cat(&[&ipv4(6, t.len(), None, 0), &t]));
        let s = seg(parse(LinkType::ETHERNET, &f, f.len() as u32));
        assert!(s.flags.syn());
        assert_eq!((s.mss, s.window_scale), (Some(1460), Some(7)));
        assert!(s.payload.is_empty());
        // The same options on a non-SYN segment are not read.
        let t = tcp(0x10, &opts);
        let f = eth(0x0800, &cat(&[&ipv4(6, t.len(), None, 0), &t]));
        let s = seg(parse(LinkType::ETHERNET, &f, f.len() as u32));
        assert_eq!((s.mss, s.window_scale), (None, None));
        // Broken options end the scan without failing the segment.
        let t = tcp(0x02, &[2, 4, 0x05, 0xb4, 3, 9, 0, 0]);
        let f = eth(0x0800, &cat(&[&ipv4(6, t.len(), None, 0), &t]));
        let s = seg(parse(LinkType::ETHERNET, &f, f.len() as u32));
        assert_eq!(s.mss, Some(1460));
    }

    #[test]
    fn linux_cooked_v1_and_v2() {
        let ip = ipv4_tcp(b"sll");
        // SLL: packet type 0 (to us), ARPHRD_ETHER, 6-byte address, protocol IPv4
        let mut sll = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0];
        sll.extend_from_slice(&0x0800u16.to_be_bytes());
        let f = cat(&[&sll, &ip]);
        assert_eq!(
            seg(parse(LinkType::LINUX_SLL, &f, f.len() as u32)).payload,
            b"sll"
        );
        // SLL2: protocol IPv6, reserved, ifindex 1, ARPHRD_LOOPBACK (772), outgoing, 6-byte address
        let t = tcp(0x18, &[]);
        let ip6 = cat(&[&ipv6(6, (t.len() + 4) as u16), &t, b"sll2"]);
        let mut sll2 = vec![0x86, 0xdd, 0, 0, 0, 0, 0, 1, 0x03, 0x04, 4, 6];
        sll2.extend_from_slice(&[0; 8]);
        let f = cat(&[&sll2, &ip6]);
        let s = seg(parse(LinkType::LINUX_SLL2, &f, f.len() as u32));
        assert_eq!(s.payload, b"sll2");
        assert_eq!(s.src, IpAddr::V6(Ipv6Addr::LOCALHOST));
        // Netlink (ARPHRD 824) is not IP whatever the protocol says.
        let mut nl = sll2.clone();
        nl[8..10].copy_from_slice(&824u16.to_be_bytes());
        let f = cat(&[&nl, &ip6]);
        assert_eq!(
            parse(LinkType::LINUX_SLL2, &f, f.len() as u32),
            Parsed::Other
        );
        // Cut headers
        assert!(matches!(
            parse(LinkType::LINUX_SLL2, &sll2[..10], 10),
            Parsed::Malformed(Malformed::Short {
                need: 20,
                have: 10,
                ..
            })
        ));
        assert!(matches!(
            parse(LinkType::LINUX_SLL, &sll[..3], 3),
            Parsed::Malformed(Malformed::Short {
                need: 16,
                have: 3,
                ..
            })
        ));
    }

    #[test]
    fn raw_ip_link_types() {
        let ip = ipv4_tcp(b"raw");
        for l in [101, 12, 14, 228] {
            assert_eq!(
                seg(parse(LinkType(l), &ip, ip.len() as u32)).payload,
                b"raw"
            );
        }
    }

    #[test]
    fn raw_ipv6_with_extension_headers() {
        let t = tcp(0x18, &[]);
        // Hop-by-hop (0) with a PadN option, then destination options (60), then TCP.
        let hbh = [60, 0, 1, 4, 0, 0, 0, 0];
        let dst = [6, 0, 1, 4, 0, 0, 0, 0];
        let plen = (hbh.len() + dst.len() + t.len() + 2) as u16;
        let f = cat(&[&ipv6(0, plen), &hbh, &dst, &t, b"v6"]);
        let s = seg(parse(LinkType::IPV6, &f, f.len() as u32));
        assert_eq!(s.payload, b"v6");
        assert_eq!(s.dst, IpAddr::V6("fe80::2".parse().unwrap()));
        // Hop-by-hop after another extension header is malformed.
        let bad = [0, 0, 1, 4, 0, 0, 0, 0];
        let f = cat(&[&ipv6(60, plen), &bad, &hbh, &t, b"v6"]);
        assert_eq!(
            parse(LinkType::RAW, &f, f.len() as u32),
            Parsed::Malformed(Malformed::HopByHopNotFirst)
        );
        // An extension header cut by the capture.
        let f = cat(&[&ipv6(0, plen), &hbh[..4]]);
        assert!(matches!(
            parse(LinkType::RAW, &f, 200),
            Parsed::Malformed(Malformed::Short {
                layer: PacketLayer::IpExtension,
                offset: 40,
                ..
            })
        ));
    }

    #[test]
    fn bsd_loopback_both_byte_orders() {
        let ip = ipv4_tcp(b"lo");
        for af in [2u32.to_le_bytes(), 2u32.to_be_bytes()] {
            let f = cat(&[&af, &ip]);
            for l in [LinkType::NULL, LinkType::LOOP] {
                assert_eq!(seg(parse(l, &f, f.len() as u32)).payload, b"lo");
            }
        }
        let t = tcp(0x18, &[]);
        let ip6 = cat(&[&ipv6(6, t.len() as u16 + 2), &t, b"v6"]);
        for af in [10u32, 23, 24, 28, 30] {
            for b in [af.to_le_bytes(), af.to_be_bytes()] {
                let f = cat(&[&b, &ip6]);
                assert_eq!(
                    seg(parse(LinkType::NULL, &f, f.len() as u32)).payload,
                    b"v6"
                );
            }
        }
        // AF_UNIX (1): not IP
        let f = cat(&[&1u32.to_le_bytes(), &ip]);
        assert_eq!(parse(LinkType::NULL, &f, f.len() as u32), Parsed::Other);
        assert!(matches!(
            parse(LinkType::LOOP, &[0, 0], 2),
            Parsed::Malformed(Malformed::Short {
                need: 4,
                have: 2,
                ..
            })
        ));
    }

    #[test]
    fn snaplen_cut_payload_counts_as_missing() {
        let payload = vec![0xab; 1000];
        let f = eth(0x0800, &ipv4_tcp(&payload));
        let cut = &f[..14 + 20 + 20 + 100];
        let s = seg(parse(LinkType::ETHERNET, cut, f.len() as u32));
        assert_eq!(s.payload.len(), 100);
        assert_eq!(s.missing, 900);
        // The IP length alone says so even when orig_len does not.
        let s = seg(parse(LinkType::ETHERNET, cut, cut.len() as u32));
        assert_eq!(s.missing, 900);
        // No IP length (total length 0, as segmentation offload leaves it):
        // orig_len tells what the snap length cut.
        let t = tcp(0x10, &[]);
        let mut f = eth(0x0800, &cat(&[&ipv4(6, 0, Some(0), 0), &t]));
        f.extend_from_slice(&payload[..100]);
        let s = seg(parse(LinkType::ETHERNET, &f, f.len() as u32 + 65000));
        assert_eq!((s.payload.len(), s.missing), (100, 65000));
    }

    #[test]
    fn ethernet_padding_is_not_payload() {
        for payload in [&b""[..], b"ab"] {
            let mut f = eth(0x0800, &ipv4_tcp(payload));
            f.resize(60, 0);
            let s = seg(parse(LinkType::ETHERNET, &f, 60));
            assert_eq!(s.payload, payload);
            assert_eq!(s.missing, 0);
        }
    }

    #[test]
    fn cut_tcp_header_is_malformed() {
        let f = eth(0x0800, &ipv4_tcp(b"data"));
        assert_eq!(
            parse(LinkType::ETHERNET, &f[..14 + 20 + 10], f.len() as u32),
            Parsed::Malformed(Malformed::Short {
                layer: PacketLayer::Tcp,
                offset: 34,
                need: 20,
                have: 10,
                by_length_field: false
            })
        );
        // The IP total length leaves room for only 10 bytes of TCP header.
        let t = tcp(0x10, &[]);
        let f = eth(0x0800, &cat(&[&ipv4(6, 0, Some(30), 0), &t]));
        let m = parse(LinkType::ETHERNET, &f, f.len() as u32);
        assert_eq!(
            m,
            Parsed::Malformed(Malformed::Short {
                layer: PacketLayer::Tcp,
                offset: 34,
                need: 20,
                have: 10,
                by_length_field: true
            })
        );
        let Parsed::Malformed(m) = m else {
            unreachable!()
        };
        assert_eq!(
            m.to_string(),
            "TCP header cut short: 20 bytes needed at offset 34, 10 allowed by the IP length"
        );
        // Data offset below 5
        let mut t = tcp(0x10, &[]);
        t[12] = 0x40;
        let f = cat(&[&ipv4(6, t.len(), None, 0), &t]);
        assert_eq!(
            parse(LinkType::RAW, &f, f.len() as u32),
            Parsed::Malformed(Malformed::TcpDataOffset(4))
        );
    }

    #[test]
    fn bad_ip_headers() {
        let mut ip = ipv4_tcp(b"");
        ip[0] = 0x55;
        assert_eq!(
            parse(LinkType::RAW, &ip, 40),
            Parsed::Malformed(Malformed::IpVersion(5))
        );
        ip[0] = 0x43;
        assert_eq!(
            parse(LinkType::RAW, &ip, 40),
            Parsed::Malformed(Malformed::Ipv4HeaderLength(3))
        );
        let f = eth(0x0800, &ipv4_tcp(b"")[..12]);
        assert!(matches!(
            parse(LinkType::ETHERNET, &f, 80),
            Parsed::Malformed(Malformed::Short {
                layer: PacketLayer::Ipv4,
                offset: 14,
                need: 20,
                have: 12,
                ..
            })
        ));
        assert!(matches!(
            parse(LinkType::ETHERNET, &[0; 10], 10),
            Parsed::Malformed(Malformed::Short {
                layer: PacketLayer::Link(LinkType::ETHERNET),
                ..
            })
        ));
        assert!(matches!(
            parse(LinkType::RAW, &[], 0),
            Parsed::Malformed(Malformed::Short {
                layer: PacketLayer::Ip,
                ..
            })
        ));
    }

    #[test]
    fn not_tcp_is_other() {
        // UDP
        let udp = [0x1f, 0x40, 0x1f, 0x41, 0, 8, 0, 0];
        let f = eth(0x0800, &cat(&[&ipv4(17, 8, None, 0), &udp]));
        assert_eq!(parse(LinkType::ETHERNET, &f, f.len() as u32), Parsed::Other);
        // ICMP echo
        let icmp = [8, 0, 0, 0, 0, 1, 0, 1];
        let f = eth(0x0800, &cat(&[&ipv4(1, 8, None, 0), &icmp]));
        assert_eq!(parse(LinkType::ETHERNET, &f, f.len() as u32), Parsed::Other);
        // ARP
        let f = eth(0x0806, &[0, 1, 8, 0, 6, 4, 0, 1]);
        assert_eq!(parse(LinkType::ETHERNET, &f, f.len() as u32), Parsed::Other);
        // 802.3 length field (LLC)
        let f = eth(0x0026, &[0x42, 0x42, 3]);
        assert_eq!(parse(LinkType::ETHERNET, &f, f.len() as u32), Parsed::Other);
        // Unsupported link type (802.11 radiotap)
        assert_eq!(
            parse(LinkType(127), &f, f.len() as u32),
            Parsed::Unsupported(LinkType(127))
        );
    }

    #[test]
    fn ip_fragments() {
        let t = tcp(0x10, &[]);
        // More fragments set
        let f = cat(&[&ipv4(6, t.len(), None, 0x2000), &t]);
        assert_eq!(parse(LinkType::RAW, &f, f.len() as u32), Parsed::Fragment);
        // A later fragment (offset 185 * 8)
        let f = cat(&[&ipv4(6, 8, None, 185), &[0; 8]]);
        assert_eq!(parse(LinkType::RAW, &f, f.len() as u32), Parsed::Fragment);
        // Don't fragment alone is no fragment
        let f = cat(&[&ipv4(6, t.len(), None, 0x4000), &t]);
        assert!(matches!(
            parse(LinkType::RAW, &f, f.len() as u32),
            Parsed::Tcp(_)
        ));
        // IPv6 fragment header (44), first fragment with more to come
        let frag = [6, 0, 0x00, 0x01, 0, 0, 0, 7];
        let f = cat(&[&ipv6(44, (8 + t.len()) as u16), &frag, &t]);
        assert_eq!(parse(LinkType::IPV6, &f, f.len() as u32), Parsed::Fragment);
    }

    #[test]
    fn agrees_with_etherparse_builder() {
        // A frame built by etherparse's own writer, as a cross-check of the
        // hand-written helpers.
        let b = etherparse::PacketBuilder::ethernet2([1; 6], [2; 6])
            .single_vlan(etherparse::VlanId::try_new(7).unwrap())
            .ipv6([1; 16], [2; 16], 64)
            .tcp(1, 2, 3, 4000)
            .syn()
            .options(&[
                TcpOptionElement::MaximumSegmentSize(8960),
                TcpOptionElement::WindowScale(9),
            ])
            .unwrap();
        let mut f = Vec::new();
        b.write(&mut f, b"payload").unwrap();
        let s = seg(parse(LinkType::ETHERNET, &f, f.len() as u32));
        assert_eq!((s.src_port, s.dst_port, s.seq, s.window), (1, 2, 3, 4000));
        assert_eq!((s.mss, s.window_scale), (Some(8960), Some(9)));
        assert_eq!(s.payload, b"payload");
    }

    const LINKS: [u32; 12] = [0, 1, 12, 14, 101, 108, 113, 127, 228, 229, 276, 9999];

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(
            link in proptest::sample::select(&LINKS[..]),
            data in proptest::collection::vec(any::<u8>(), 0..200),
            orig in any::<u32>(),
        ) {
            if let Parsed::Tcp(s) = parse(LinkType(link), &data, orig) {
                prop_assert!(s.payload.len() <= data.len());
            }
        }

        #[test]
        fn plausible_frames_never_panic(
            cut in 0usize..80,
            flip in proptest::collection::vec((0usize..80, any::<u8>()), 0..6),
            orig in any::<u32>(),
        ) {
            // Mutations of a valid Ethernet/VLAN/IPv4/TCP frame reach deeper
            // layers than random bytes.
            let mut f = eth(0x8100, &cat(&[&[0, 5, 8, 0], &ipv4_tcp(b"0123456789")]));
            for (i, b) in flip {
                if let Some(x) = f.get_mut(i) { *x = b; }
            }
            f.truncate(f.len().saturating_sub(cut));
            if let Parsed::Tcp(s) = parse(LinkType::ETHERNET, &f, orig) {
                prop_assert!(s.payload.len() <= f.len());
            }
        }
    }
}
