//! The bytes before the first record: gzip, the format's magic, and what a
//! file that is not a capture looks like.
//!
//! [`open`] looks at the first four bytes. The gzip magic (`1f 8b`) puts a
//! [`MultiGzDecoder`] in front of the input (concatenated members, as
//! `cat a.gz b.gz` makes, are one stream) and the magic is read again from the
//! decompressed bytes. A pcap or pcapng magic picks the reader; anything else
//! is refused with one sentence saying what the file seems to be (a raw
//! migration stream, an xl save file, another compression, text, or its first
//! bytes in hex), from at most [`SNIFF_LEN`] bytes.
//!
//! Validates: the magic only. The file header itself is read by
//! `pcap` or `pcapng`. Limits: gzip is the one
//! compression read; zstd, xz and bzip2 are recognised and refused with the
//! command that decompresses them. A damaged gzip stream is an I/O error of the
//! read that meets it ([`CaptureError::read`]).

use std::io::{self, Cursor, Read};

use flate2::read::MultiGzDecoder;

use super::{magic, Kind};
use crate::capture::error::CaptureError;

/// Bytes looked at to say what a non-capture file is.
const SNIFF_LEN: usize = 64;

/// The input, decompressed if it was gzip, whether it was, its kind, and the
/// bytes already read from it (at least the 4-byte magic), which come first.
pub(super) type Opened = (Box<dyn Read + Send>, bool, Kind, Vec<u8>);

/// Sniffs `reader`'s format; `name` is for messages.
pub(super) fn open(reader: Box<dyn Read + Send>, name: &str) -> Result<Opened, CaptureError> {
    let mut reader = reader;
    let mut head = Vec::with_capacity(SNIFF_LEN);
    read_at_least(&mut reader, &mut head, 4).map_err(|e| CaptureError::read(name, 0, &e))?;
    let gzip = head.starts_with(&magic::GZIP);
    if gzip {
        let raw = Cursor::new(std::mem::take(&mut head)).chain(reader);
        reader = Box::new(MultiGzDecoder::new(raw));
        read_at_least(&mut reader, &mut head, 4).map_err(|e| CaptureError::read(name, 0, &e))?;
    }
    let kind = match head
        .get(..4)
        .map(|m| u32::from_le_bytes([m[0], m[1], m[2], m[3]]))
    {
        Some(magic::PCAP_US_LE | magic::PCAP_NS_LE) => Kind::Pcap {
            big_endian: false,
            modified: false,
        },
        Some(magic::PCAP_US_BE | magic::PCAP_NS_BE) => Kind::Pcap {
            big_endian: true,
            modified: false,
        },
        Some(magic::PCAP_MODIFIED_LE) => Kind::Pcap {
            big_endian: false,
            modified: true,
        },
        Some(magic::PCAP_MODIFIED_BE) => {
            return Err(CaptureError::Unsupported {
                name: name.into(),
                what: "a big-endian \"modified\" (Kuznetzov) pcap".into(),
            })
        }
        Some(magic::SHB) => Kind::PcapNg { big_endian: false },
        _ => {
            if head.is_empty() {
                return Err(CaptureError::Empty { name: name.into() });
            }
            read_at_least(&mut reader, &mut head, SNIFF_LEN)
                .map_err(|e| CaptureError::read(name, 0, &e))?;
            let looks_like = describe(&head, name, gzip);
            return Err(CaptureError::NotCapture {
                name: name.into(),
                looks_like,
            });
        }
    };
    Ok((reader, gzip, kind, head))
}

/// Reads until `buf` holds at least `want` bytes or the input ends.
fn read_at_least(r: &mut dyn Read, buf: &mut Vec<u8>, want: usize) -> io::Result<()> {
    let mut chunk = [0u8; SNIFF_LEN];
    while buf.len() < want {
        let room = (want - buf.len()).min(chunk.len());
        match r.read(&mut chunk[..room]) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// What a file that is not a capture seems to be, as the end of a sentence.
fn describe(head: &[u8], name: &str, gzip: bool) -> String {
    let records = |what: &str| {
        format!("it is {what}, not a capture; list its records with `migscope records {name}`")
    };
    let decompress = |what: &str, tool: &str| {
        format!("it is {what}-compressed; decompress it first (`{tool} {name}`)")
    };
    if head.starts_with(magic::LIBXL) {
        records("a raw libxl migration stream (it starts with \"LibxlFmt\")")
    } else if head.starts_with(magic::XL_SAVE) || head.starts_with(b"Xen saved domain") {
        records("an xl save file (\"Xen saved domain, xl format\")")
    } else if head.starts_with(magic::LIBXC_MARKER) && head.get(8..12) == Some(magic::LIBXC_ID) {
        records("a raw libxc migration stream (it starts with the 0xff marker and \"XENF\")")
    } else if head.starts_with(magic::ZSTD) {
        decompress("zstd", "zstd -d")
    } else if head.starts_with(magic::XZ) {
        decompress("xz", "xz -d")
    } else if head.starts_with(magic::BZIP2) {
        decompress("bzip2", "bunzip2")
    } else if head.len() < 4 {
        format!("it is only {} bytes long", head.len())
    } else if let Some(text) = as_text(head) {
        format!("it looks like text (it starts with \"{text}\")")
    } else {
        let hex: Vec<String> = head.iter().take(16).map(|b| format!("{b:02x}")).collect();
        let inside = if gzip { " once decompressed" } else { "" };
        format!(
            "it starts with the bytes {}{inside}, which no capture format starts with",
            hex.join(" ")
        )
    }
}

/// The first line of `head`, escaped, if `head` looks like text.
fn as_text(head: &[u8]) -> Option<String> {
    // Tolerate a UTF-8 sequence cut at the end of the sniffed bytes.
    let s = match std::str::from_utf8(head) {
        Ok(s) => s,
        Err(e) if e.error_len().is_none() => std::str::from_utf8(&head[..e.valid_up_to()]).ok()?,
        Err(_) => return None,
    };
    if s.chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return None;
    }
    let line: String = s.lines().next().unwrap_or("").chars().take(40).collect();
    Some(line.escape_debug().to_string())
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::*;
    use std::io::Write;

    #[test]
    fn gzip_is_read_transparently() {
        let plain = pcap(false, true, 1, 65535, &[(1, 2, A, 12), (3, 4, B, 21)]);
        let gz = |b: &[u8]| {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(b).unwrap();
            e.finish().unwrap()
        };
        let want = drain(&mut src(plain.clone()));
        let mut s = src(gz(&plain));
        assert!(s.compressed());
        assert_eq!(drain(&mut s), want);
        // Two gzip members back to back (as `cat a.gz b.gz` makes).
        let (head, tail) = plain.split_at(40);
        let two = [gz(head), gz(tail)].concat();
        assert_eq!(drain(&mut src(two)), want);
        // Cut short: the packets before the cut, then an error.
        let cut = gz(&plain);
        let cut = cut[..cut.len() - 12].to_vec();
        let got = drain(&mut src(cut));
        assert!(
            matches!(got.last(), Some(Got::E(e)) if e.ends_reading()),
            "{got:?}"
        );
    }

    #[test]
    fn not_a_capture_says_what_it_is() {
        let sentence = |b: &[u8]| open_err(b.to_vec()).to_string();
        assert_eq!(
            sentence(b"LibxlFmt\0\0\0\x02\0\0\0\0"),
            "test.pcap is not a pcap or pcapng capture: it is a raw libxl migration stream (it starts with \"LibxlFmt\"), not a capture; list its records with `migscope records test.pcap`"
        );
        assert!(
            sentence(b"Xen saved domain, xl format\n \0 \r\0\0\0\0").contains("an xl save file")
        );
        let mut libxc = vec![0xff; 8];
        libxc.extend_from_slice(b"XENF\0\0\0\x03");
        assert!(sentence(&libxc).contains("libxc migration stream"));
        assert_eq!(
            sentence(b"hello world\nsecond line"),
            "test.pcap is not a pcap or pcapng capture: it looks like text (it starts with \"hello world\")"
        );
        // Escape sequences are escaped, not passed to the terminal.
        assert!(sentence(b"GET /\x1b[2J HTTP/1.1").contains("not a pcap"));
        assert!(!sentence(b"GET /\x1b[2J HTTP/1.1").contains('\x1b'));
        assert!(sentence(&[0x28, 0xb5, 0x2f, 0xfd, 0, 0]).contains("zstd -d test.pcap"));
        assert_eq!(
            sentence(&[0xde, 0xad, 0xbe, 0xef, 1, 2, 3]),
            "test.pcap is not a pcap or pcapng capture: it starts with the bytes de ad be ef 01 02 03, which no capture format starts with"
        );
        assert_eq!(
            sentence(&[1, 2]),
            "test.pcap is not a pcap or pcapng capture: it is only 2 bytes long"
        );
        assert_eq!(
            open_err(vec![]),
            CaptureError::Empty {
                name: "test.pcap".into()
            }
        );
    }
}
