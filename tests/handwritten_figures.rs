//! Each figure of docs/FIGURES.md against a capture written here byte by
//! byte from Xen's stream specifications (not by `synth`), cut into TCP
//! segments at chosen times, so that every expected value is computed by
//! hand below: pages with data against pfn entries, round bounds, the final
//! round, a plain migration's downtime, and Remus memory, device and
//! downtime from first bytes that arrive segments before their records
//! complete.

mod common;

use common::{libxl_header, migscope, rec};
use etherparse::PacketBuilder;
use serde_json::Value;

const MS: u64 = 1_000_000;
const T0: u64 = 1_700_000_000 * 1_000_000_000;

// --- stream bytes (libxl-migration-stream, libxc-migration-stream) ---------

/// libxc image header (BE) and an x86 HVM domain header (LE), Xen 4.17.
fn libxc_headers() -> Vec<u8> {
    let mut v = u64::MAX.to_be_bytes().to_vec();
    v.extend(0x5845_4e46u32.to_be_bytes()); // "XENF"
    v.extend(3u32.to_be_bytes());
    v.extend([0u8; 8]); // options (little endian), reserved
    v.extend(2u32.to_le_bytes()); // x86 HVM
    v.extend(12u16.to_le_bytes());
    v.extend(0u16.to_le_bytes());
    v.extend(4u32.to_le_bytes());
    v.extend(17u32.to_le_bytes());
    v
}

const NORMAL: u64 = 0x0;
const XTAB: u64 = 0xf;

/// PAGE_DATA (libxc type 1): count, reserved, the pfn entries, a page of
/// data for every entry whose type carries one.
fn page_data(entries: &[(u64, u64)]) -> Vec<u8> {
    let raw: Vec<u64> = entries.iter().map(|&(pfn, t)| pfn | t << 60).collect();
    common::page_data(&raw, |e| e as u8)
}

const LIBXL_LIBXC_CONTEXT: u32 = 1;
const STATIC_DATA_END: u32 = 16;
const LIBXL_CHECKPOINT_END: u32 = 4;
const LIBXC_CHECKPOINT: u32 = 14;
const END: u32 = 0;

// --- a capture ---------------------------------------------------------------

/// Classic pcap, Ethernet, one connection 10.9.0.1:40000 -> 10.9.0.2:8002 with
/// its handshake at `T0`, then the forward stream in the given pieces, each
/// one TCP segment at its time (ns after `T0`).
fn capture(pieces: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend(0xa1b2_c3d4u32.to_le_bytes());
    out.extend(2u16.to_le_bytes());
    out.extend(4u16.to_le_bytes());
    out.extend([0u8; 8]);
    out.extend(65535u32.to_le_bytes());
    out.extend(1u32.to_le_bytes());
    let mut packet = |t: u64, from_client: bool, seq: u32, ack: u32, flags: &str, data: &[u8]| {
        let (a, b) = ([10, 9, 0, 1], [10, 9, 0, 2]);
        let ((sip, sp), (dip, dp)) = if from_client {
            ((a, 40000), (b, 8002))
        } else {
            ((b, 8002), (a, 40000))
        };
        let mut p = PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv4(sip, dip, 64)
            .tcp(sp, dp, seq, 65535);
        if flags != "S" {
            p = p.ack(ack);
        }
        if flags.starts_with('S') {
            p = p.syn();
        }
        let mut frame = Vec::new();
        p.write(&mut frame, data).unwrap();
        let ts = T0 + t;
        out.extend(((ts / 1_000_000_000) as u32).to_le_bytes());
        out.extend((((ts % 1_000_000_000) / 1000) as u32).to_le_bytes());
        out.extend((frame.len() as u32).to_le_bytes());
        out.extend((frame.len() as u32).to_le_bytes());
        out.extend(frame);
    };
    let (cisn, sisn) = (1000u32, 5000u32);
    packet(0, true, cisn, 0, "S", &[]);
    packet(10_000, false, sisn, cisn + 1, "SA", &[]);
    packet(20_000, true, cisn + 1, sisn + 1, "A", &[]);
    let mut seq = cisn + 1;
    for (t, data) in pieces {
        packet(*t, true, seq, sisn + 1, "A", data);
        seq += data.len() as u32;
        packet(*t + 1000, false, sisn + 1, seq, "A", &[]);
    }
    out
}

/// Cuts `stream` at the given offsets into pieces sent at the given times.
fn pieces(stream: &[u8], cuts: &[(usize, u64)]) -> Vec<(u64, Vec<u8>)> {
    let mut from = 0;
    let mut out = Vec::new();
    for &(to, t) in cuts {
        out.push((t, stream[from..to].to_vec()));
        from = to;
    }
    assert_eq!(from, stream.len(), "every byte is sent");
    out
}

fn report(pcap: &[u8]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hand.pcap");
    std::fs::write(&file, pcap).unwrap();
    if let Some(keep) = std::env::var_os("KEEP_PCAP") {
        std::fs::write(keep, pcap).unwrap();
    }
    let out = migscope()
        .args(["report", "--format", "json"])
        .arg(&file)
        .output()
        .unwrap();
    if out.status.code() != Some(0) {
        let text = migscope().args(["report"]).arg(&file).output().unwrap();
        panic!(
            "exit {:?}: {}{}",
            out.status.code(),
            String::from_utf8_lossy(&text.stdout),
            String::from_utf8_lossy(&text.stderr)
        );
    }
    serde_json::from_slice(&out.stdout).unwrap()
}

fn secs(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a time: {v}"))
}

/// Seconds since the capture's first packet (the SYN at `T0`).
fn at(ns: u64) -> f64 {
    ns as f64 / 1e9
}

fn close(got: &Value, want: f64, what: &str) {
    let g = secs(got);
    assert!((g - want).abs() < 1e-7, "{what}: {g} s, by hand {want} s");
}

#[test]
fn plain_migration_pages_rounds_and_downtime_by_hand() {
    // round 1: pfns 0-3, two of them XTAB (no page); not a full batch, so
    // the round ends with it. Round 2 (the final one): pfn 1 again.
    let round1 = page_data(&[(0, NORMAL), (1, NORMAL), (2, XTAB), (3, XTAB)]);
    let round2 = page_data(&[(1, NORMAL)]);
    let mut s = libxl_header();
    s.extend(rec(LIBXL_LIBXC_CONTEXT, &[]));
    s.extend(libxc_headers());
    s.extend(rec(STATIC_DATA_END, &[]));
    let r1 = s.len();
    s.extend(&round1);
    let r2 = s.len();
    s.extend(&round2);
    s.extend(rec(END, &[])); // libxc END
    s.extend(rec(END, &[])); // libxl END
                             // round 1 begins in the segment at 100 ms and completes at 110 ms;
                             // round 2 begins at 150 ms and completes, with both ENDs, at 160 ms
    let cap = capture(&pieces(
        &s,
        &[
            (r1 + 100, 100 * MS),
            (r2, 110 * MS),
            (r2 + 2000, 150 * MS),
            (s.len(), 160 * MS),
        ],
    ));
    let v = report(&cap);
    let x = &v["sessions"][0];
    assert_eq!(x["kind"], "plain");
    let rounds = x["rounds"].as_array().unwrap();
    assert_eq!(rounds.len(), 2);
    assert_eq!(
        (&rounds[0]["pages"], &rounds[0]["pfns"]),
        (&2.into(), &4.into())
    );
    assert_eq!(
        (&rounds[1]["pages"], &rounds[1]["pfns"]),
        (&1.into(), &1.into())
    );
    close(
        &rounds[0]["start"],
        at(100 * MS),
        "round 1 starts at its first byte",
    );
    close(
        &rounds[0]["end"],
        at(110 * MS),
        "round 1 ends at its completion",
    );
    close(
        &rounds[1]["start"],
        at(150 * MS),
        "round 2 starts at its first byte",
    );
    assert_eq!(rounds[0]["final"], false);
    assert_eq!(rounds[1]["final"], true);
    // no xl: the downtime ends with the stream's END
    close(&x["downtime"], 0.010, "downtime: final round to END");
    close(&x["stream_end"], at(160 * MS), "END");
    // CSV: one row for the migration, its downtime in seconds
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain.pcap");
    std::fs::write(&file, &cap).unwrap();
    let out = migscope()
        .args(["report", "--format", "csv"])
        .arg(&file)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    let row: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| row[head.iter().position(|h| *h == name).unwrap()];
    assert_eq!((col("kind"), col("downtime")), ("plain", "0.010000000"));
    assert_eq!((col("pages"), col("pfns")), ("3", "5"));
}

#[test]
fn remus_memory_device_and_downtime_by_hand() {
    let mut s = libxl_header();
    s.extend(rec(LIBXL_LIBXC_CONTEXT, &[]));
    s.extend(libxc_headers());
    s.extend(rec(STATIC_DATA_END, &[]));
    let c0 = s.len();
    s.extend(page_data(&[(0, NORMAL), (1, NORMAL), (5, XTAB)]));
    s.extend(rec(LIBXC_CHECKPOINT, &[]));
    s.extend(rec(LIBXL_CHECKPOINT_END, &[]));
    let c1 = s.len();
    s.extend(page_data(&[(1, NORMAL), (3, NORMAL)]));
    let cp1 = s.len();
    s.extend(rec(LIBXC_CHECKPOINT, &[]));
    s.extend(rec(LIBXL_CHECKPOINT_END, &[]));
    let c2 = s.len();
    s.extend(page_data(&[(2, NORMAL)]));
    s.extend(rec(LIBXC_CHECKPOINT, &[]));
    s.extend(rec(LIBXL_CHECKPOINT_END, &[]));
    let cap = capture(&pieces(
        &s,
        &[
            // checkpoint 0 (the initial migration, one round): pages from
            // 100 ms, CHECKPOINT and CHECKPOINT_END at 120 ms
            (c0 + 64, 100 * MS),
            (c1, 120 * MS),
            // checkpoint 1: its first byte at 2 s, its pages complete with
            // CHECKPOINT in the segment at 2.3 s, CHECKPOINT_END at 2.31 s
            (c1 + 100, 2000 * MS),
            (cp1 + 8, 2300 * MS),
            (c2, 2310 * MS),
            // checkpoint 2: everything in one segment at 4 s
            (s.len(), 4000 * MS),
        ],
    ));
    let v = report(&cap);
    let x = &v["sessions"][0];
    assert_eq!(x["kind"], "remus");
    let cps = x["checkpoints"].as_array().unwrap();
    assert_eq!(cps.len(), 3);
    let want = [
        // (pages, pfns, memory, device)
        (2, 3, 0.020, 0.0),
        (2, 2, 0.300, 0.010),
        (1, 1, 0.0, 0.0),
    ];
    for (c, (pages, pfns, memory, device)) in cps.iter().zip(want) {
        let i = &c["index"];
        assert_eq!(c["complete"], true, "checkpoint {i}");
        assert_eq!(
            (&c["pages"], &c["pfns"]),
            (&pages.into(), &pfns.into()),
            "checkpoint {i}"
        );
        close(
            &c["phases"]["memory"],
            memory,
            &format!("checkpoint {i} memory"),
        );
        close(
            &c["phases"]["device"],
            device,
            &format!("checkpoint {i} device"),
        );
        close(
            &c["downtime"],
            memory + device,
            &format!("checkpoint {i} downtime: memory + device"),
        );
    }
}
