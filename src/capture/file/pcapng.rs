//! pcapng: sections of blocks, each framed by its type, its length and the
//! length again.
//!
//! A section header sets the byte order of the blocks after it and forgets
//! the interfaces before it. Interface descriptions give each interface its
//! link type, snap length, `if_tsresol`, `if_tsoffset` and `if_name`.
//! Enhanced and simple packet blocks carry packets; every other block type is
//! skipped by its length.
//!
//! Validates framing: a block's length is a multiple of 4 between 12 and
//! [`MAX_BLOCK_LEN`] (checked before the block is buffered), its two copies
//! agree, and a section header's byte-order magic is one of the two. Failing
//! any of these loses the framing and ends reading; so does a section header
//! whose content does not parse (the byte order of what follows is unknown),
//! and a section of a version other than 1 is refused. Content errors inside
//! any other well-framed block (a captured length longer than the block, an
//! interface id the section did not describe, a simple packet before any
//! interface, options that do not parse) skip that block only.
//!
//! Limits: at most [`MAX_INTERFACES`] interfaces per section; a simple packet
//! block has no timestamp and takes the previous packet's; options other than
//! an interface's `if_name`, `if_tsresol` and `if_tsoffset` are not read.

use pcap_parser::{
    parse_enhancedpacketblock_be, parse_enhancedpacketblock_le, parse_interfacedescriptionblock_be,
    parse_interfacedescriptionblock_le, parse_sectionheaderblock, parse_simplepacketblock_be,
    parse_simplepacketblock_le, InterfaceDescriptionBlock, OptionCode,
};

use super::interface::add_offset;
use super::{
    magic, FileSource, Frame, Interface, Kind, Step, TsResolution, MAX_BLOCK_LEN, MAX_IF_NAME,
    MAX_INTERFACES,
};
use crate::capture::error::{CaptureError, Corruption};
use crate::capture::LinkType;

/// Byte offsets in pcapng blocks (from the block start).
mod ng_field {
    use std::ops::Range;
    pub const TYPE: Range<usize> = 0..4;
    pub const LEN: Range<usize> = 4..8;
    /// Section header: byte-order magic.
    pub const SHB_BYTE_ORDER: Range<usize> = 8..12;
    /// Type, length and trailing length.
    pub const MIN_LEN: usize = 12;
    /// Enhanced packet block: captured length, and where the data starts.
    pub const EPB_CAPLEN: Range<usize> = 20..24;
    pub const EPB_DATA: usize = 28;
    /// Enhanced packet block without data: 28 bytes of header, 4 of trailer.
    pub const EPB_MIN_LEN: usize = 32;
    /// Simple packet block: where the data starts; 16 bytes without data.
    pub const SPB_DATA: usize = 12;
    pub const SPB_MIN_LEN: usize = 16;
}

impl FileSource {
    pub(super) fn pcapng_block(&mut self, big_endian: bool) -> Result<Step, CaptureError> {
        if !self.fill(8)? {
            return self.ended(8);
        }
        let mut big_endian = big_endian;
        let shb = self.u32_at(ng_field::TYPE, false) == magic::SHB;
        if shb {
            if !self.fill(ng_field::MIN_LEN)? {
                return self.ended(ng_field::MIN_LEN);
            }
            big_endian = match self.u32_at(ng_field::SHB_BYTE_ORDER, false) {
                magic::BYTE_ORDER => false,
                magic::BYTE_ORDER_SWAPPED => true,
                magic => return Err(self.corrupt(Corruption::ByteOrderMagic { magic }, true)),
            };
        }
        let btype = self.u32_at(ng_field::TYPE, big_endian);
        let len32 = self.u32_at(ng_field::LEN, big_endian);
        let len = len32 as usize;
        if len < ng_field::MIN_LEN || len % 4 != 0 || len > MAX_BLOCK_LEN {
            return Err(self.corrupt(
                Corruption::BlockLength {
                    len: len32,
                    max: MAX_BLOCK_LEN,
                },
                true,
            ));
        }
        if !self.fill(len)? {
            return self.ended(len);
        }
        let last = self.u32_at(len - 4..len, big_endian);
        if last != len32 {
            return Err(self.corrupt(Corruption::BlockLengthMismatch { first: len32, last }, true));
        }
        let step = match btype {
            magic::SHB => self.section_header(len, big_endian).map(|()| Step::Skipped),
            magic::IDB => self
                .interface_description(len, big_endian)
                .map(|()| Step::Skipped),
            magic::EPB => self.enhanced_packet(len, big_endian),
            magic::SPB => self.simple_packet(len, big_endian),
            _ => Ok(Step::Skipped),
        };
        match &step {
            Ok(Step::Packet(_)) => self.pending = len,
            Ok(_) => self.start += len,
            Err(e) if !e.ends_reading() => self.start += len,
            Err(_) => {}
        }
        step
    }

    fn section_header(&mut self, len: usize, big_endian: bool) -> Result<(), CaptureError> {
        let block = &self.buf[self.start..self.start + len];
        let shb = match parse_sectionheaderblock(block) {
            Ok((_, shb)) => shb,
            // The next section's byte order is unknown: framing is lost.
            Err(_) => {
                return Err(self.corrupt(
                    Corruption::BadBlock {
                        kind: "section header",
                    },
                    true,
                ))
            }
        };
        if shb.major_version != 1 {
            return Err(CaptureError::Unsupported {
                name: self.name.clone(),
                what: format!("pcapng version {}.{}", shb.major_version, shb.minor_version),
            });
        }
        self.kind = Kind::PcapNg { big_endian };
        self.interfaces.clear();
        Ok(())
    }

    fn interface_description(&mut self, len: usize, big_endian: bool) -> Result<(), CaptureError> {
        if self.interfaces.len() >= MAX_INTERFACES {
            return Err(self.corrupt(
                Corruption::TooManyInterfaces {
                    max: MAX_INTERFACES,
                },
                false,
            ));
        }
        let block = &self.buf[self.start..self.start + len];
        let parsed = if big_endian {
            parse_interfacedescriptionblock_be(block)
        } else {
            parse_interfacedescriptionblock_le(block)
        };
        let Ok((_, idb)) = parsed else {
            return Err(self.corrupt(
                Corruption::BadBlock {
                    kind: "interface description",
                },
                false,
            ));
        };
        let (iface, bad_tsresol) = interface_from(&idb, big_endian);
        self.interfaces.push(iface);
        match bad_tsresol {
            Some(if_tsresol) => Err(self.corrupt(
                Corruption::TsResolution {
                    id: self.interfaces.len() - 1,
                    if_tsresol,
                },
                false,
            )),
            None => Ok(()),
        }
    }

    fn enhanced_packet(&mut self, len: usize, big_endian: bool) -> Result<Step, CaptureError> {
        if len < ng_field::EPB_MIN_LEN {
            return Err(self.corrupt(
                Corruption::BadBlock {
                    kind: "enhanced packet",
                },
                false,
            ));
        }
        let caplen = self.u32_at(ng_field::EPB_CAPLEN, big_endian);
        let room = len - ng_field::EPB_MIN_LEN;
        if caplen as usize > room {
            return Err(self.corrupt(Corruption::CaptureLongerThanBlock { caplen, room }, false));
        }
        let block = &self.buf[self.start..self.start + len];
        let parsed = if big_endian {
            parse_enhancedpacketblock_be(block)
        } else {
            parse_enhancedpacketblock_le(block)
        };
        let epb = match parsed {
            Ok((_, epb)) => epb,
            Err(_) => {
                return Err(self.corrupt(
                    Corruption::BadBlock {
                        kind: "enhanced packet",
                    },
                    false,
                ))
            }
        };
        let Some(iface) = self.interfaces.get(epb.if_id as usize) else {
            return Err(self.corrupt(
                Corruption::UnknownInterface {
                    id: epb.if_id,
                    count: self.interfaces.len(),
                },
                false,
            ));
        };
        let ticks = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
        let ts_ns = add_offset(iface.resolution.to_ns(ticks), iface.ts_offset);
        Ok(Step::Packet(Frame {
            data_start: self.start + ng_field::EPB_DATA,
            data_len: caplen as usize,
            ts_ns,
            link: iface.link,
            orig_len: epb.origlen.max(caplen),
        }))
    }

    fn simple_packet(&mut self, len: usize, big_endian: bool) -> Result<Step, CaptureError> {
        let Some(iface) = self.interfaces.first() else {
            return Err(self.corrupt(Corruption::NoInterface, false));
        };
        let (link, snaplen) = (iface.link, iface.snaplen);
        if len < ng_field::SPB_MIN_LEN {
            return Err(self.corrupt(
                Corruption::BadBlock {
                    kind: "simple packet",
                },
                false,
            ));
        }
        let block = &self.buf[self.start..self.start + len];
        let parsed = if big_endian {
            parse_simplepacketblock_be(block)
        } else {
            parse_simplepacketblock_le(block)
        };
        let Ok((_, spb)) = parsed else {
            return Err(self.corrupt(
                Corruption::BadBlock {
                    kind: "simple packet",
                },
                false,
            ));
        };
        // The block holds min(original length, snap length) bytes, padded.
        let mut caplen = (spb.origlen as usize).min(len - ng_field::SPB_MIN_LEN);
        if snaplen != 0 {
            caplen = caplen.min(snaplen as usize);
        }
        Ok(Step::Packet(Frame {
            data_start: self.start + ng_field::SPB_DATA,
            data_len: caplen,
            ts_ns: self.last_ts,
            link,
            orig_len: spb.origlen.max(caplen as u32),
        }))
    }
}

/// An [`Interface`] from an IDB, and the raw `if_tsresol` if it was unusable.
fn interface_from(idb: &InterfaceDescriptionBlock, big_endian: bool) -> (Interface, Option<u8>) {
    let mut resolution = TsResolution::MICRO;
    let mut bad = None;
    let mut ts_offset = 0i64;
    let mut name = None;
    for opt in &idb.options {
        let Some(value) = opt.as_bytes() else {
            continue;
        };
        match opt.code {
            OptionCode::IfTsresol => {
                if let Some(&b) = value.first() {
                    match TsResolution::from_if_tsresol(b) {
                        Some(r) => resolution = r,
                        None => bad = Some(b),
                    }
                }
            }
            // pcap-parser reads if_tsoffset little-endian whatever the section.
            OptionCode::IfTsoffset => {
                if let Some(v) = value.get(..8) {
                    let b = [v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]];
                    ts_offset = if big_endian {
                        i64::from_be_bytes(b)
                    } else {
                        i64::from_le_bytes(b)
                    };
                }
            }
            OptionCode(2) => {
                let v = &value[..value.len().min(MAX_IF_NAME)];
                let v = v.split(|&b| b == 0).next().unwrap_or_default();
                name = Some(String::from_utf8_lossy(v).into_owned());
            }
            _ => {}
        }
    }
    let iface = Interface {
        link: LinkType(u32::from(idb.linktype.0 as u16)),
        snaplen: idb.snaplen,
        resolution,
        ts_offset,
        name,
    };
    (iface, bad)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::*;
    use super::LinkType;

    #[test]
    fn pcapng_two_interfaces_and_a_simple_packet() {
        for be in [false, true] {
            let mut s = src(two_interfaces(be));
            assert_eq!(s.format(), Format::PcapNg);
            assert_eq!(s.big_endian(), be);
            let got = drain(&mut s);
            assert_eq!(
                got,
                vec![
                    Got::P(1, 1_700_000_000_000_001_000, 1, A.to_vec(), 100),
                    Got::P(2, 15_000_000_007, 276, B.to_vec(), 21),
                    // SPB: interface 0, previous packet's time
                    Got::P(3, 15_000_000_007, 1, b"simple".to_vec(), 6),
                ],
                "be={be}"
            );
            let ifs = s.interfaces();
            assert_eq!(ifs.len(), 2);
            assert_eq!(ifs[0].name.as_deref(), Some("eth0"));
            assert_eq!(
                (ifs[0].link, ifs[0].resolution),
                (LinkType::ETHERNET, TsResolution::MICRO)
            );
            assert_eq!(
                (ifs[1].link, ifs[1].resolution),
                (LinkType::LINUX_SLL2, TsResolution::NANO)
            );
            assert_eq!((ifs[1].snaplen, ifs[1].ts_offset), (0, 10));
            assert_eq!(s.snaplen(), 65535);
        }
    }

    #[test]
    fn pcapng_power_of_two_resolution_and_spb_snaplen() {
        let mut f = shb(false);
        // 2^-10 s units, snap length 4
        f.extend(idb(101, 4, &[(9, &[0x80 | 10])], false));
        f.extend(epb(0, 3 * 1024 + 512, b"abcd", 40, false));
        f.extend(spb(b"wxyz", 40, false)); // SPB data cut to the snap length
        let mut s = src(f);
        assert_eq!(
            drain(&mut s),
            vec![
                Got::P(1, 3_500_000_000, 101, b"abcd".to_vec(), 40),
                Got::P(2, 3_500_000_000, 101, b"wxyz".to_vec(), 40),
            ]
        );
        assert_eq!(s.resolution(), TsResolution::Binary(10));
        assert_eq!(s.resolution().to_string(), "2^-10 s");
    }

    #[test]
    fn pcapng_new_section_resets_interfaces_and_byte_order() {
        let mut f = shb(false);
        f.extend(idb(1, 0, &[], false));
        f.extend(idb(1, 0, &[], false));
        f.extend(epb(1, 1, A, 12, false));
        f.extend(shb(true));
        f.extend(idb(113, 0, &[], true));
        f.extend(epb(1, 2, B, 21, true)); // interface 1 is gone
        f.extend(epb(0, 3, B, 21, true));
        let mut s = src(f);
        let got = drain(&mut s);
        assert_eq!(got[0], Got::P(1, 1000, 1, A.to_vec(), 12));
        assert!(matches!(
            &got[1],
            Got::E(CaptureError::Corrupt {
                what: Corruption::UnknownInterface { id: 1, count: 1 },
                fatal: false,
                ..
            })
        ));
        assert_eq!(got[2], Got::P(2, 3000, 113, B.to_vec(), 21));
        assert_eq!(got.len(), 3);
        assert!(s.big_endian());
    }

    #[test]
    fn corrupt_block_in_the_middle() {
        // Framing lost: the trailing length differs. Packets before it come
        // out, then one error, then the end.
        let mut f = shb(false);
        f.extend(idb(1, 0, &[], false));
        f.extend(epb(0, 1, A, 12, false));
        let mut bad = epb(0, 2, B, 21, false);
        let n = bad.len();
        bad[n - 4] ^= 0xff;
        f.extend(bad);
        f.extend(epb(0, 3, A, 12, false));
        let got = drain(&mut src(f));
        assert_eq!(got.len(), 2, "{got:?}");
        let Got::E(e) = &got[1] else { panic!() };
        assert!(e.ends_reading());
        // SHB 48 bytes, IDB 20, EPB 44
        assert!(
            matches!(
                e,
                CaptureError::Corrupt {
                    what: Corruption::BlockLengthMismatch { .. },
                    offset: 112,
                    ..
                }
            ),
            "{e:?}"
        );
        // Framing intact, content wrong: skipped, reading goes on.
        let mut f = shb(false);
        f.extend(spb(b"no interface yet", 16, false));
        f.extend(idb(1, 0, &[], false));
        let mut bad = epb(0, 2, B, 21, false);
        bad[20..24].copy_from_slice(&1000u32.to_le_bytes()); // caplen > block
        f.extend(bad);
        f.extend(epb(0, 3, A, 12, false));
        let got = drain(&mut src(f));
        assert!(matches!(
            &got[0],
            Got::E(CaptureError::Corrupt {
                what: Corruption::NoInterface,
                fatal: false,
                ..
            })
        ));
        assert!(matches!(
            &got[1],
            Got::E(CaptureError::Corrupt {
                what: Corruption::CaptureLongerThanBlock {
                    caplen: 1000,
                    room: 24
                },
                fatal: false,
                ..
            })
        ));
        assert_eq!(got[2], Got::P(1, 3000, 1, A.to_vec(), 12));
        // A block length that is not a multiple of 4 ends reading.
        let mut f = shb(false);
        f.extend(idb(1, 0, &[], false));
        f.extend(epb(0, 3, A, 12, false));
        f.extend_from_slice(&[6, 0, 0, 0, 33, 0, 0, 0]);
        f.extend_from_slice(&[0; 40]);
        let got = drain(&mut src(f));
        assert!(matches!(
            &got[1],
            Got::E(CaptureError::Corrupt {
                what: Corruption::BlockLength { len: 33, .. },
                fatal: true,
                ..
            })
        ));
    }
}
