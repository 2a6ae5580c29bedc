//! Real Xen 4.17 captures (`captures/xen-4.17/`, made by Xen's own `xl` with
//! `tests/xen-nested/run.sh`) against an independent parse of the same bytes:
//! `tests/xen-nested/expect.py` (its own pcap reader, TCP reassembly and
//! record walker, written from Xen's specifications, and cross-checked with
//! Xen's own verify-stream-v2 code on the complete streams) wrote each
//! capture's `*.expected.json`. migscope runs as a user runs it, and every
//! record, round, page count, checkpoint phase and downtime must agree to the
//! nanosecond (times) or exactly (everything else).

mod common;

use common::migscope;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The shipped captures; `MIGSCOPE_REAL_XEN=DIR` points the same tests at
/// another run's (`tests/xen-nested/ship.sh OUTDIR PREFIX DIR`).
fn dir() -> PathBuf {
    std::env::var_os("MIGSCOPE_REAL_XEN")
        .map_or_else(|| PathBuf::from("captures/xen-4.17"), PathBuf::from)
}

/// Each `*.expected.json` with the capture (or raw stream) it describes.
fn cases() -> Vec<(PathBuf, Value)> {
    let mut out = Vec::new();
    let dir = dir();
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let Some(name) = p.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(stem) = name.strip_suffix(".expected.json") else {
            continue;
        };
        let expected: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        let file = dir.join(format!("{stem}.gz"));
        assert!(file.exists(), "{} has no {}", p.display(), file.display());
        out.push((file, expected));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(
        out.len() >= 4,
        "the real captures are missing from {}",
        dir.display()
    );
    out
}

fn is_capture(expected: &Value) -> bool {
    expected.get("forward_bytes").is_some()
}

fn json_lines(bytes: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn report(file: &Path) -> Value {
    let out = migscope()
        .args(["report", "--format", "json"])
        .arg(file)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; stderr: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Seconds (migscope's JSON) against nanoseconds (the expectation).
fn same_time(got: &Value, want_ns: &Value, what: &str) {
    let got = got
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: no time in {got}"));
    let want = want_ns.as_f64().unwrap() / 1e9;
    assert!(
        (got - want).abs() < 1e-7,
        "{what}: {got:.9} s, the packets say {want:.9} s"
    );
}

#[test]
fn records_equal_the_independent_parse() {
    for (file, want) in cases() {
        let name = file.display().to_string();
        let out = migscope()
            .args(["records", "--json"])
            .arg(&file)
            .output()
            .unwrap();
        let all = json_lines(&out.stdout);
        let got: Vec<&Value> = all
            .iter()
            .filter(|v| v["event"] == "record")
            .filter(|v| v.get("dir").map_or(true, |d| d == "forward"))
            // xl's messages after the stream are not stream records
            .filter(|v| v["layer"] != "xl" || v["type"] == "SAVE_HEADER")
            .collect();
        let want_records = want["records"].as_array().unwrap();
        assert_eq!(
            got.len(),
            want_records.len(),
            "{name}: record count (stderr: {})",
            String::from_utf8_lossy(&out.stderr)
        );
        for (i, (g, w)) in got.iter().zip(want_records).enumerate() {
            let what = format!("{name} record {i} ({} {})", w["layer"], w["type"]);
            assert_eq!(g["layer"], w["layer"], "{what}: layer");
            assert_eq!(g["type"], w["type"], "{what}: type");
            assert_eq!(g["offset"], w["offset"], "{what}: offset");
            assert_eq!(g["wire_len"], w["wire_len"], "{what}: wire length");
            if w["type"] == "SAVE_HEADER" {
                let summary = g["summary"].as_str().unwrap();
                let domain = want["domain"]["name"].as_str().unwrap();
                assert!(summary.contains(domain), "{what}: {summary}");
            }
            if w["type"] == "PAGE_DATA" {
                assert_eq!(g["pages"], w["pages"], "{what}: pages with data");
                assert_eq!(g["pfns"], w["pfns"], "{what}: pfn entries");
            }
            if is_capture(&want) {
                same_time(&g["first"], &w["first"], &format!("{what}: first byte"));
                same_time(&g["time"], &w["done"], &format!("{what}: completion"));
            }
        }
        // A complete real stream decodes without a diagnostic.
        if want["ended"] == true {
            assert!(
                all.iter().all(|v| v["event"] != "diagnostic"),
                "{name}: diagnostics on a real stream"
            );
            assert!(out.status.success(), "{name}: exit status {}", out.status);
        }
    }
}

#[test]
fn sessions_rounds_pages_and_downtime_equal_the_packets() {
    for (file, want) in cases().into_iter().filter(|c| is_capture(&c.1)) {
        let name = file.display().to_string();
        let v = report(&file);
        let sessions = v["sessions"].as_array().unwrap();
        assert_eq!(sessions.len(), 1, "{name}: one migration");
        let s = &sessions[0];
        assert_eq!(
            s["domain"]["name"], want["domain"]["name"],
            "{name}: domain"
        );
        assert_eq!(s["domain"]["type"], want["domain"]["type"], "{name}: type");
        assert_eq!(
            s["domain"]["memory_kib"], want["domain"]["memory_kib"],
            "{name}: memory"
        );
        assert_eq!(
            s["domain"]["vcpus"], want["domain"]["vcpus"],
            "{name}: vcpus"
        );
        assert_eq!(
            s["forward"]["bytes"], want["forward_bytes"],
            "{name}: bytes"
        );
        if want["problem"].is_null() {
            assert_eq!(s["forward"]["errors"], 0, "{name}: decoder errors");
        } else {
            // cut inside a record: one diagnostic, where the stream stops
            assert_eq!(s["forward"]["errors"], 1, "{name}: decoder errors");
            let d = &v["diagnostics"]
                .as_array()
                .unwrap()
                .iter()
                .find(|d| d["session"] == 0)
                .unwrap()["message"];
            assert!(
                d.as_str().unwrap().starts_with("stream ends inside"),
                "{name}: {d}"
            );
        }
        if want["ended"] == false {
            assert_eq!(s["stream_end"], Value::Null, "{name}: no END");
        }
        let rounds = s["rounds"].as_array().unwrap();
        let want_rounds = want["rounds"].as_array().unwrap();
        assert_eq!(rounds.len(), want_rounds.len(), "{name}: rounds");
        for (g, w) in rounds.iter().zip(want_rounds) {
            let what = format!("{name} round {}", w["index"]);
            assert_eq!(g["pages"], w["pages"], "{what}: pages with data");
            assert_eq!(g["pfns"], w["pfns"], "{what}: pfn entries");
            assert_eq!(g["bytes"], w["bytes"], "{what}: bytes");
            same_time(&g["start"], &w["start"], &format!("{what}: start"));
            same_time(&g["end"], &w["end"], &format!("{what}: end"));
        }
        match want["kind"].as_str().unwrap() {
            "plain" if want["ended"] == true => {
                assert_eq!(s["kind"], "plain", "{name}: kind");
                assert_eq!(
                    rounds.last().unwrap()["final"],
                    true,
                    "{name}: the last round is the final one"
                );
                same_time(
                    &s["downtime"],
                    &want["downtime"],
                    &format!("{name}: downtime"),
                );
            }
            "plain" => {
                // cut short: no END, so no final round and no downtime
                assert_eq!(s["downtime"], Value::Null, "{name}: downtime");
                assert!(
                    rounds.iter().all(|r| r["final"] == false),
                    "{name}: a stream cut in its live rounds has no final round"
                );
            }
            "remus" => {
                assert_eq!(s["kind"], "remus", "{name}: kind");
            }
            k => panic!("{name}: kind {k}"),
        }
    }
}

#[test]
fn remus_checkpoints_have_the_phases_the_packets_show() {
    let mut seen = 0;
    for (file, want) in cases().into_iter().filter(|c| c.1["kind"] == "remus") {
        seen += 1;
        let name = file.display().to_string();
        let v = report(&file);
        let s = &v["sessions"][0];
        let got = s["checkpoints"].as_array().unwrap();
        let want_cps = want["checkpoints"].as_array().unwrap();
        assert!(
            want_cps.len() >= 5,
            "{name}: a Remus capture with checkpoints"
        );
        assert_eq!(got.len(), want_cps.len(), "{name}: checkpoints");
        for (g, w) in got.iter().zip(want_cps) {
            let what = format!("{name} checkpoint {}", w["index"]);
            assert_eq!(g["index"], w["index"], "{what}: index");
            assert_eq!(g["pages"], w["pages"], "{what}: pages with data");
            assert_eq!(g["pfns"], w["pfns"], "{what}: pfn entries");
            if let Some(b) = w.get("bytes") {
                assert_eq!(&g["bytes"], b, "{what}: bytes");
            }
            if w["memory"].is_null() {
                // the capture ends inside its pages
                assert_eq!(g["phases"]["memory"], Value::Null, "{what}: memory");
            } else {
                same_time(
                    &g["phases"]["memory"],
                    &w["memory"],
                    &format!("{what}: memory"),
                );
            }
            if w["downtime"].is_null() {
                assert_eq!(g["downtime"], Value::Null, "{what}: downtime");
            } else {
                same_time(&g["downtime"], &w["downtime"], &format!("{what}: downtime"));
            }
            if w["device"].is_null() {
                assert_eq!(g["phases"]["device"], Value::Null, "{what}: device");
                assert_eq!(g["complete"], false, "{what}: complete");
            } else {
                same_time(
                    &g["phases"]["device"],
                    &w["device"],
                    &format!("{what}: device"),
                );
                assert_eq!(g["complete"], true, "{what}: complete");
            }
        }
    }
    assert!(seen > 0, "no real Remus capture");
}

/// Regression: a real Linux HVM Remus capture whose tcpdump was killed
/// mid-packet stops inside the first PAGE_DATA of the next checkpoint; that
/// damage made the checkpoint before it, complete on the wire, partial, and
/// the checkpoint it stopped in was not listed at all.
/// Here the shipped Remus capture is cut the same way, right after the
/// packet that carries checkpoint 11's first byte.
#[test]
fn a_capture_cut_inside_the_next_checkpoint_leaves_the_one_before_complete() {
    use std::io::Read;
    let file = Path::new("captures/xen-4.17/tiny-hvm-remus.pcap.gz");
    let want: Value = serde_json::from_slice(
        &std::fs::read("captures/xen-4.17/tiny-hvm-remus.pcap.expected.json").unwrap(),
    )
    .unwrap();
    let first_11 = want["checkpoints"][11]["first"].as_u64().unwrap();
    let mut pcap = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(file).unwrap())
        .read_to_end(&mut pcap)
        .unwrap();
    // classic little-endian microsecond pcap: walk to that packet
    let u32_at = |o: usize| u32::from_le_bytes(pcap[o..o + 4].try_into().unwrap());
    let (mut o, mut t0) = (24, None);
    let cut = loop {
        let ts = u64::from(u32_at(o)) * 1_000_000_000 + u64::from(u32_at(o + 4)) * 1000;
        let end = o + 16 + u32_at(o + 8) as usize;
        let t0 = *t0.get_or_insert(ts);
        if ts - t0 >= first_11 {
            break end + 20; // and 20 bytes of the next packet's record
        }
        o = end;
    };
    let dir = tempfile::tempdir().unwrap();
    let cut_file = dir.path().join("cut.pcap");
    std::fs::write(&cut_file, &pcap[..cut]).unwrap();
    let v = report(&cut_file);
    let cps = v["sessions"][0]["checkpoints"].as_array().unwrap();
    assert_eq!(
        cps[10]["complete"], true,
        "checkpoint 10 ended before the cut"
    );
    assert_eq!(cps[10]["pages"], want["checkpoints"][10]["pages"]);
    assert_eq!(
        cps.len(),
        12,
        "the checkpoint the capture ends in is listed"
    );
    assert_eq!(cps[11]["complete"], false);
    // and reported as stalled, waiting since its first byte
    let stall = &v["sessions"][0]["stalls"][0];
    assert_eq!(stall["kind"], "stalled");
    assert_eq!(stall["checkpoint"], 11);
    assert_eq!(stall["waiting_for"], "libxc_checkpoint");
    assert_eq!(stall["owner"], "primary");
    same_time(
        &stall["start"],
        &want["checkpoints"][11]["first"],
        "stalled since",
    );
}
