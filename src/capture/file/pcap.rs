//! Classic pcap: the 24-byte file header, then records of a 16-byte header
//! (24 in the "modified" variant) and the captured bytes.
//!
//! Reads both byte orders, microsecond and nanosecond magic, and the
//! little-endian "modified" (Kuznetzov) variant; `input`
//! refuses its big-endian form. The link type drops the upper 16 bits of the
//! header's field (FCS information). Validates the captured length against
//! [`MAX_BLOCK_LEN`] before buffering the record (a longer one is corrupt and
//! ends reading: nothing says where the next record starts). A record's
//! original length is raised to its captured length when it claims less.
//! Limits: `thiszone` and `sigfigs` are ignored, as every tool writes 0.

use pcap_parser::{
    parse_pcap_frame, parse_pcap_frame_be, parse_pcap_frame_modified, parse_pcap_header,
    LegacyPcapBlock,
};

use super::{FileSource, Frame, Interface, Step, TsResolution, MAX_BLOCK_LEN};
use crate::capture::error::{CaptureError, Corruption};
use crate::capture::LinkType;

/// Byte offsets in pcap headers and records.
mod pcap_field {
    use std::ops::Range;
    pub const FILE_HEADER_LEN: usize = 24;
    pub const RECORD_LEN: usize = 16;
    pub const MODIFIED_RECORD_LEN: usize = 24;
    pub const CAPLEN: Range<usize> = 8..12;
}

impl FileSource {
    /// Reads the file header: the file's one interface.
    pub(super) fn pcap_header(&mut self) -> Result<(), CaptureError> {
        let need = pcap_field::FILE_HEADER_LEN;
        if !self.fill(need)? {
            return Err(self.truncated_header(need));
        }
        let h = match parse_pcap_header(&self.buf[self.start..self.start + need]) {
            Ok((_, h)) => h,
            // The magic was checked; 24 bytes always parse.
            Err(_) => return Err(self.truncated_header(need)),
        };
        let resolution = if h.is_nanosecond_precision() {
            TsResolution::NANO
        } else {
            TsResolution::MICRO
        };
        self.interfaces.push(Interface {
            // The upper 16 bits carry FCS information, not the type.
            link: LinkType((h.network.0 as u32) & 0xffff),
            snaplen: h.snaplen,
            resolution,
            ts_offset: 0,
            name: None,
        });
        self.start += need;
        Ok(())
    }

    pub(super) fn pcap_record(
        &mut self,
        big_endian: bool,
        modified: bool,
    ) -> Result<Step, CaptureError> {
        let hdr = if modified {
            pcap_field::MODIFIED_RECORD_LEN
        } else {
            pcap_field::RECORD_LEN
        };
        if !self.fill(hdr)? {
            return self.ended(hdr);
        }
        let caplen = self.u32_at(pcap_field::CAPLEN, big_endian);
        if caplen as usize > MAX_BLOCK_LEN - hdr {
            return Err(self.corrupt(
                Corruption::RecordTooLong {
                    caplen,
                    max: MAX_BLOCK_LEN - hdr,
                },
                true,
            ));
        }
        let total = hdr + caplen as usize;
        if !self.fill(total)? {
            return self.ended(total);
        }
        let block = &self.buf[self.start..self.start + total];
        let parsed: Result<(&[u8], LegacyPcapBlock), _> = if modified {
            parse_pcap_frame_modified(block)
        } else if big_endian {
            parse_pcap_frame_be(block)
        } else {
            parse_pcap_frame(block)
        };
        let Ok((_, rec)) = parsed else {
            // Unreachable: the whole record is buffered.
            return Err(self.corrupt(
                Corruption::BadBlock {
                    kind: "packet record",
                },
                true,
            ));
        };
        let frac_ns = match self.resolution() {
            TsResolution::NANO => u64::from(rec.ts_usec),
            _ => u64::from(rec.ts_usec) * 1000,
        };
        let ts_ns = u64::from(rec.ts_sec) * 1_000_000_000 + frac_ns;
        let frame = Frame {
            data_start: self.start + hdr,
            data_len: caplen as usize,
            ts_ns,
            link: self.interfaces[0].link,
            orig_len: rec.origlen.max(caplen),
        };
        self.pending = total;
        Ok(Step::Packet(frame))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::*;
    use super::LinkType;

    #[test]
    fn pcap_both_byte_orders_and_resolutions() {
        for be in [false, true] {
            for nanos in [false, true] {
                let frac = if nanos { 123_456_789 } else { 123_456 };
                let f = pcap(
                    be,
                    nanos,
                    1,
                    262_144,
                    &[(1_700_000_000, frac, A, 60), (1_700_000_001, 0, B, 21)],
                );
                let mut s = src(f);
                assert_eq!(s.format(), Format::Pcap);
                assert_eq!(s.big_endian(), be);
                assert_eq!(
                    s.resolution(),
                    if nanos {
                        TsResolution::NANO
                    } else {
                        TsResolution::MICRO
                    }
                );
                assert_eq!(s.snaplen(), 262_144);
                assert_eq!(s.interfaces()[0].link, LinkType::ETHERNET);
                let ns = if nanos { 123_456_789 } else { 123_456_000 };
                assert_eq!(
                    drain(&mut s),
                    vec![
                        Got::P(1, 1_700_000_000_000_000_000 + ns, 1, A.to_vec(), 60),
                        // orig_len is at least the captured length
                        Got::P(2, 1_700_000_001_000_000_000, 1, B.to_vec(), 21),
                    ],
                    "be={be} nanos={nanos}"
                );
                assert_eq!(s.packets(), 2);
            }
        }
    }

    #[test]
    fn pcap_modified_format() {
        // Kuznetzov's variant: 24-byte records (ifindex, protocol, type, pad).
        let mut f = pcap(false, false, 1, 65535, &[]);
        f[..4].copy_from_slice(&0xa1b2_cd34u32.to_le_bytes());
        for (sec, data) in [(7u32, A), (8, B)] {
            f.extend_from_slice(&sec.to_le_bytes());
            f.extend_from_slice(&5u32.to_le_bytes());
            f.extend_from_slice(&(data.len() as u32).to_le_bytes());
            f.extend_from_slice(&(data.len() as u32).to_le_bytes());
            f.extend_from_slice(&[2, 0, 0, 0, 8, 0, 0, 0]);
            f.extend_from_slice(data);
        }
        assert_eq!(
            drain(&mut src(f)),
            vec![
                Got::P(1, 7_000_005_000, 1, A.to_vec(), 12),
                Got::P(2, 8_000_005_000, 1, B.to_vec(), 21)
            ]
        );
        let mut be = pcap(true, false, 1, 65535, &[]);
        be[..4].copy_from_slice(&0xa1b2_cd34u32.to_be_bytes());
        assert!(matches!(open_err(be), CaptureError::Unsupported { .. }));
    }

    #[test]
    fn pcap_link_type_ignores_fcs_bits() {
        // LINKTYPE_ETHERNET with the "FCS present, 4 bytes" bits set.
        let mut s = src(pcap(false, false, 0x1400_0001, 65535, &[(1, 0, A, 12)]));
        assert_eq!(s.interfaces()[0].link, LinkType::ETHERNET);
        assert!(matches!(s.next_packet(), Ok(Some(p)) if p.link == LinkType::ETHERNET));
    }

    #[test]
    fn truncated_last_packet_keeps_the_packets_before_it() {
        let full = pcap(
            false,
            false,
            1,
            65535,
            &[(1, 0, A, 12), (2, 0, B, 21), (3, 0, B, 21)],
        );
        // Cut inside the third packet's data, then inside its record header.
        for (cut, have, need) in [
            (full.len() - 5, 16 + 16, 16 + 21),
            (full.len() - 21 - 10, 6, 16),
        ] {
            let mut s = src(full[..cut].to_vec());
            let got = drain(&mut s);
            assert_eq!(got.len(), 3, "{got:?}");
            assert!(matches!(got[0], Got::P(1, ..)) && matches!(got[1], Got::P(2, ..)));
            let Got::E(e) = &got[2] else {
                panic!("{got:?}")
            };
            assert_eq!(
                e,
                &CaptureError::Truncated {
                    name: "test".into(),
                    packet: 3,
                    offset: (24 + 16 + 12 + 16 + 21) as u64,
                    have,
                    need
                }
            );
            assert!(
                e.to_string().starts_with("test ends inside packet 3 ("),
                "{e}"
            );
        }
        // pcapng, cut inside the last block
        let f = two_interfaces(false);
        let got = drain(&mut src(f[..f.len() - 3].to_vec()));
        assert_eq!(got.len(), 3);
        assert!(matches!(
            &got[2],
            Got::E(CaptureError::Truncated { packet: 3, .. })
        ));
    }
}
