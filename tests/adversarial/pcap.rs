//! The adversarial tests' own pcap writer, field by field and independent
//! of synth and of the code under test: one TCP flow per connection with
//! its own sequence numbers.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use etherparse::PacketBuilder;

// ---------------------------------------------------------------------------
// Writing captures by hand.

/// A classic pcap file (microseconds, little-endian, Ethernet), written
/// field by field.
pub struct Pcap<W: Write> {
    pub out: W,
}

impl<W: Write> Pcap<W> {
    pub fn new(mut out: W) -> Pcap<W> {
        out.write_all(&0xa1b2_c3d4u32.to_le_bytes()).unwrap();
        out.write_all(&2u16.to_le_bytes()).unwrap();
        out.write_all(&4u16.to_le_bytes()).unwrap();
        out.write_all(&[0; 8]).unwrap(); // thiszone, sigfigs
        out.write_all(&262_144u32.to_le_bytes()).unwrap();
        out.write_all(&1u32.to_le_bytes()).unwrap(); // LINKTYPE_ETHERNET
        Pcap { out }
    }

    /// A record holding `frame` whole, at `t` seconds.
    pub fn packet(&mut self, t: f64, frame: &[u8]) {
        self.record(t, frame, frame.len() as u32, frame.len() as u32);
    }

    /// A record with lengths as given, true or not.
    pub fn record(&mut self, t: f64, bytes: &[u8], caplen: u32, len: u32) {
        let sec = t.floor() as u32;
        let usec = ((t - t.floor()) * 1e6).round() as u32;
        for v in [sec, usec.min(999_999), caplen, len] {
            self.out.write_all(&v.to_le_bytes()).unwrap();
        }
        self.out.write_all(bytes).unwrap();
    }

    pub fn finish(mut self) -> W {
        self.out.flush().unwrap();
        self.out
    }
}

pub fn pcap_file(path: &Path) -> Pcap<BufWriter<File>> {
    Pcap::new(BufWriter::with_capacity(
        1 << 20,
        File::create(path).unwrap(),
    ))
}

pub const PRIMARY: [u8; 4] = [192, 168, 7, 1];
pub const SECONDARY: [u8; 4] = [192, 168, 7, 2];

/// One TCP connection, both directions, with its own sequence numbers.
/// Direction 0 is client (primary) to server (secondary).
pub struct Flow {
    pub addr: [([u8; 4], u16); 2],
    /// Next sequence number of each direction.
    pub next: [u32; 2],
}

impl Flow {
    pub fn new(client_port: u16, server_port: u16) -> Flow {
        Flow::between(PRIMARY, SECONDARY, client_port, server_port)
    }

    pub fn between(a: [u8; 4], b: [u8; 4], client_port: u16, server_port: u16) -> Flow {
        Flow {
            addr: [(a, client_port), (b, server_port)],
            next: [0x1000_0000 ^ u32::from(client_port) << 8, 0x7000_0000],
        }
    }

    /// A frame from `dir` with `payload` at sequence number `seq`.
    pub fn frame_at(&self, dir: usize, seq: u32, payload: &[u8], flags: &str) -> Vec<u8> {
        let (src, dst) = (self.addr[dir], self.addr[1 - dir]);
        let mac = |a: [u8; 4]| [2, 0, a[0], a[1], a[2], a[3]];
        let mut b = PacketBuilder::ethernet2(mac(src.0), mac(dst.0))
            .ipv4(src.0, dst.0, 64)
            .tcp(src.1, dst.1, seq, 65535);
        if !flags.contains('S') || flags.contains('A') {
            b = b.ack(self.next[1 - dir]);
        }
        for f in flags.chars() {
            b = match f {
                'S' => b.syn(),
                'F' => b.fin(),
                'P' => b.psh(),
                'R' => b.rst(),
                _ => b,
            };
        }
        let mut v = Vec::with_capacity(b.size(payload.len()));
        b.write(&mut v, payload).unwrap();
        v
    }

    /// The three-way handshake at `t`.
    pub fn handshake<W: Write>(&mut self, p: &mut Pcap<W>, t: f64) {
        let f = self.frame_at(0, self.next[0], &[], "S");
        p.packet(t, &f);
        self.next[0] = self.next[0].wrapping_add(1);
        let f = self.frame_at(1, self.next[1], &[], "SA");
        p.packet(t + 0.0001, &f);
        self.next[1] = self.next[1].wrapping_add(1);
        let f = self.frame_at(0, self.next[0], &[], "A");
        p.packet(t + 0.0002, &f);
    }

    /// In-order data from `dir` at `t`, in segments of at most 1448 bytes.
    pub fn send<W: Write>(&mut self, p: &mut Pcap<W>, dir: usize, t: f64, data: &[u8]) {
        for c in data.chunks(1448) {
            let f = self.frame_at(dir, self.next[dir], c, "PA");
            p.packet(t, &f);
            self.next[dir] = self.next[dir].wrapping_add(c.len() as u32);
        }
    }

    /// FIN from both sides at `t`.
    pub fn close<W: Write>(&mut self, p: &mut Pcap<W>, t: f64) {
        for dir in 0..2 {
            let f = self.frame_at(dir, self.next[dir], &[], "FA");
            p.packet(t, &f);
            self.next[dir] = self.next[dir].wrapping_add(1);
        }
    }
}
