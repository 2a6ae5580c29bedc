//! Arbitrary bytes as a capture through the whole pipeline into a model with
//! a record index, then stall detection and the JSON timeline report.
//!
//! Inputs that do not start with a pcap, pcapng or gzip magic get a fixed
//! little-endian pcap global header (Ethernet, snaplen 262144) in front, so
//! that the fuzzer spends its time on packet records rather than on magics.
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use migscope::capture::FileSource;
use migscope::model::{Model, Thresholds};
use migscope::session::{Analyzer, Config};
use migscope::report::timeline::{self, Context, ReportFormat};

const MAGICS: [[u8; 4]; 7] = [
    [0xd4, 0xc3, 0xb2, 0xa1],
    [0xa1, 0xb2, 0xc3, 0xd4],
    [0x4d, 0x3c, 0xb2, 0xa1],
    [0xa1, 0xb2, 0x3c, 0x4d],
    [0x34, 0xcd, 0xb2, 0xa1],
    [0x0a, 0x0d, 0x0d, 0x0a],
    [0x1f, 0x8b, 0x08, 0x00],
];

fn pcap_header() -> [u8; 24] {
    let mut h = [0u8; 24];
    h[0..4].copy_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    h[4..6].copy_from_slice(&2u16.to_le_bytes());
    h[6..8].copy_from_slice(&4u16.to_le_bytes());
    h[16..20].copy_from_slice(&262_144u32.to_le_bytes());
    h[20..24].copy_from_slice(&1u32.to_le_bytes());
    h
}

fuzz_target!(|data: &[u8]| {
    let known = data.len() >= 4
        && MAGICS
            .iter()
            .any(|m| data[..4] == m[..] || (m[0] == 0x1f && data[..2] == m[..2]));
    let bytes = if known {
        data.to_vec()
    } else {
        let mut v = pcap_header().to_vec();
        v.extend_from_slice(data);
        v
    };
    let Ok(mut src) = FileSource::from_reader(Box::new(Cursor::new(bytes)), "fuzz") else {
        return;
    };
    let mut analyzer = Analyzer::new(Config::default(), Model::with_record_index());
    let mut problems = Vec::new();
    loop {
        match src.next_packet() {
            Ok(Some(p)) => analyzer.packet(&p),
            Ok(None) => break,
            Err(e) => {
                let fatal = e.ends_reading();
                problems.push(e.to_string());
                if fatal || problems.len() >= 100 {
                    break;
                }
            }
        }
    }
    analyzer.finish();
    let stats = analyzer.stats();
    let model = analyzer.into_observer();
    let t = Thresholds::default();
    for s in &model.sessions {
        let _ = model.stalls(s, &t, true);
        let _ = model.stalls(s, &t, false);
    }
    let ctx = Context {
        source: "fuzz",
        stats: &stats,
        problems: &problems,
        thresholds: &t,
        capture_ended: true,
        worst: 5,
    };
    timeline::write(&model, &ctx, ReportFormat::Json, &mut std::io::sink()).expect("report to a sink");
});
