//! Builders shared by the integration tests: the binary runner and stream
//! bytes written out by hand from Xen's specification (docs/PROTOCOL.md),
//! never by the code under test. (The adversarial tests' pcap writer stays
//! their own, deliberately independent of these and of synth.)

#![allow(dead_code)]

use assert_cmd::Command;

/// The `migscope` binary built for these tests.
pub fn migscope() -> Command {
    Command::cargo_bin("migscope").unwrap()
}

/// A record (PROTOCOL.md section 3/4): little-endian type and body length,
/// the body, zero padding to a multiple of 8 bytes.
pub fn rec(rtype: u32, body: &[u8]) -> Vec<u8> {
    let mut v = rtype.to_le_bytes().to_vec();
    v.extend((body.len() as u32).to_le_bytes());
    v.extend(body);
    v.resize(v.len().next_multiple_of(8), 0);
    v
}

/// The libxl stream header: "LibxlFmt", version 2 and options 0, big endian.
pub fn libxl_header() -> Vec<u8> {
    let mut v = b"LibxlFmt".to_vec();
    v.extend(2u32.to_be_bytes());
    v.extend(0u32.to_be_bytes());
    v
}

/// The libxc image header (big endian): marker, "XENF", `version`, options
/// and reserved zero.
pub fn image_header(version: u32) -> Vec<u8> {
    let mut v = u64::MAX.to_be_bytes().to_vec();
    v.extend(0x5845_4e46u32.to_be_bytes());
    v.extend(version.to_be_bytes());
    v.extend([0u8; 8]);
    v
}

/// pfn entry types that carry no page of data (XTAB, XALLOC, BROKEN).
pub fn carries_data(entry: u64) -> bool {
    !matches!(entry >> 60, 0xD..=0xF)
}

/// PAGE_DATA (libxc type 1): count, reserved, the pfn entries (type in the
/// top four bits), then a page for each entry whose type carries one,
/// filled with `fill(entry)`.
pub fn page_data(entries: &[u64], fill: impl Fn(u64) -> u8) -> Vec<u8> {
    let mut body = (entries.len() as u32).to_le_bytes().to_vec();
    body.extend(0u32.to_le_bytes());
    for e in entries {
        body.extend(e.to_le_bytes());
    }
    for &e in entries.iter().filter(|&&e| carries_data(e)) {
        body.resize(body.len() + 4096, fill(e));
    }
    rec(1, &body)
}
