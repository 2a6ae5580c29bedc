//! The shipped captures, run through the binary as a user would: `export`
//! gives back the streams they carry (checked against the raw stream files
//! shipped beside them, against the scenario the loopback capture replayed,
//! and against tshark's "Follow TCP stream" where tshark is installed), and
//! `records` lists the same records from a capture as from its raw stream.
#![cfg(feature = "synth")]

mod common;

use common::migscope;
use std::path::Path;
use std::process::Command as Std;

use predicates::prelude::*;

fn export(capture: &str, dir: &str) -> Vec<u8> {
    let out = migscope()
        .args(["export", capture, "--dir", dir, "-o", "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn export_gives_back_the_shipped_raw_streams() {
    let cases = [
        (
            "captures/colo-demo.pcap",
            "forward",
            "captures/colo-demo.fwd",
        ),
        ("captures/colo-demo.pcap", "back", "captures/colo-demo.rev"),
        ("captures/plain-xl.pcap", "forward", "captures/plain-xl.fwd"),
        ("captures/plain-xl.pcap", "back", "captures/plain-xl.rev"),
        ("captures/remus.pcapng", "forward", "captures/remus.fwd"),
    ];
    for (cap, dir, raw) in cases {
        let want = std::fs::read(raw).unwrap();
        let got = export(cap, dir);
        assert!(
            got == want,
            "{cap} {dir}: {} bytes exported, {} in {raw}",
            got.len(),
            want.len()
        );
    }
}

#[test]
fn the_loopback_capture_carries_the_replayed_scenario_byte_for_byte() {
    // captures/colo-loopback.pcap was taken with
    //   migscope -i lo -f 'tcp port 8002' -w captures/colo-loopback.pcap
    // while this ran (the Linux TCP stack framed it):
    //   migscope synth <ARGS> --replay 127.0.0.1:8002
    let args = "--scenario colo --xl --memory 1M --checkpoints 12 --seed 4 --name db-replica \
                --dirty-pages 20 --secondary-dirty-pages 10 --stall 7:apply=700ms";
    let dir = tempfile::tempdir().unwrap();
    let (fwd, rev) = (dir.path().join("f"), dir.path().join("r"));
    migscope()
        .arg("synth")
        .args(args.split_whitespace())
        .arg("-o")
        .arg(&fwd)
        .arg("--reverse")
        .arg(&rev)
        .assert()
        .success();
    assert!(export("captures/colo-loopback.pcap", "forward") == std::fs::read(&fwd).unwrap());
    assert!(export("captures/colo-loopback.pcap", "back") == std::fs::read(&rev).unwrap());
}

/// Both directions of TCP stream 0 as tshark's "Follow TCP stream" sees
/// them: (client to server, server to client).
fn tshark_follow(capture: &str) -> Option<(Vec<u8>, Vec<u8>)> {
    let out = Std::new("tshark")
        .args(["-r", capture, "-q", "-z", "follow,tcp,raw,0"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for line in text.lines() {
        if line.starts_with("====")
            || line.starts_with("Follow:")
            || line.starts_with("Filter:")
            || line.starts_with("Node ")
        {
            continue;
        }
        let (dst, hex) = match line.strip_prefix('\t') {
            Some(h) => (&mut b, h),
            None => (&mut a, line),
        };
        let hex = hex.trim();
        if hex.is_empty() || hex.len() % 2 != 0 || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
            continue;
        }
        for i in (0..hex.len()).step_by(2) {
            dst.push(u8::from_str_radix(&hex[i..i + 2], 16).ok()?);
        }
    }
    Some((a, b))
}

#[test]
fn export_agrees_with_tshark_follow_tcp_stream() {
    if Std::new("tshark").arg("-v").output().is_err() {
        eprintln!("skipped: tshark is not installed (apt-get install tshark)");
        return;
    }
    for cap in [
        "captures/colo-demo.pcap",
        "captures/plain-xl.pcap",
        "captures/remus.pcapng",
        "captures/colo-loopback.pcap",
    ] {
        let (client, server) = tshark_follow(cap).expect("tshark reads the capture");
        // In every shipped capture the client (it sent the SYN) is the sender.
        assert!(
            export(cap, "forward") == client,
            "{cap}: forward differs from tshark"
        );
        assert!(
            export(cap, "back") == server,
            "{cap}: back differs from tshark"
        );
    }
}

/// The record lines of `records --json`, without the capture-only keys.
fn record_lines(file: &str, extra: &[&str]) -> Vec<serde_json::Value> {
    let out = migscope()
        .arg("records")
        .arg("--json")
        .args(extra)
        .arg(file)
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["event"] == "record")
        .map(|mut v| {
            let o = v.as_object_mut().unwrap();
            for k in ["session", "dir", "time", "first", "no"] {
                o.remove(k);
            }
            v
        })
        .collect()
}

#[test]
fn records_from_a_capture_equal_those_from_its_raw_stream() {
    let from_capture: Vec<_> = record_lines("captures/plain-xl.pcap", &[]);
    let fwd = record_lines("captures/plain-xl.fwd", &[]);
    let rev = record_lines("captures/plain-xl.rev", &[]);
    assert_eq!(from_capture.len(), fwd.len() + rev.len());
    let mut want = fwd.clone();
    want.extend(rev);
    let key = |v: &serde_json::Value| {
        (
            v["layer"].to_string(),
            v["offset"].as_u64(),
            v["type"].to_string(),
        )
    };
    let mut a = from_capture.clone();
    let mut b = want;
    a.sort_by_key(key);
    b.sort_by_key(key);
    assert_eq!(a, b);
    let colo = record_lines("captures/colo-demo.pcap", &[]);
    let colo_fwd = record_lines("captures/colo-demo.fwd", &[]);
    let colo_rev = record_lines("captures/colo-demo.rev", &["--back-channel"]);
    assert_eq!(colo.len(), colo_fwd.len() + colo_rev.len());
}

#[test]
fn records_from_a_capture_carry_capture_times() {
    let out = migscope()
        .args(["records", "--json", "captures/colo-demo.pcap"])
        .output()
        .unwrap();
    let last = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .rfind(|v| v["event"] == "record")
        .unwrap();
    // The capture lasts 9.3 s; its last record completes at the end.
    let t = last["time"].as_f64().unwrap();
    assert!((9.0..9.4).contains(&t), "{t}");
    assert_eq!(last["session"], 0);
}

#[test]
fn the_summary_names_the_session_its_health_and_the_stall() {
    migscope()
        .args(["-r", "captures/colo-demo.pcap"])
        .assert()
        .success()
        .stdout(predicate::str::contains("session 0: 10.0.1.1:"))
        .stdout(predicate::str::contains("13 retransmissions"))
        .stdout(predicate::str::contains("idle period (longest 2.3"));
    // The gzip-compressed one: a stalled memory phase with the secondary's
    // window closed, and segments the capture lost.
    migscope()
        .args(["-r", "captures/colo-zero-window.pcap.gz"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "advertised a zero window 1 time (longest 1.499 s)",
        ))
        .stdout(predicate::str::contains("6 gaps (7.3 KiB missing)"));
}

#[test]
fn standard_input_and_gzip_are_read() {
    let cap = std::fs::read("captures/plain-xl.pcap").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gz = dir.path().join("plain.pcap.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut enc, &cap).unwrap();
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();
    for (args, input) in [
        (vec!["-r".to_string(), "-".to_string()], Some(cap.clone())),
        (vec!["-r".to_string(), gz.display().to_string()], None),
    ] {
        let mut c = migscope();
        c.args(&args);
        if let Some(i) = input {
            c.write_stdin(i);
        }
        c.assert()
            .success()
            .stdout(predicate::str::contains("1 migration session"))
            .stdout(predicate::str::contains("1017.4 KiB of stream"));
    }
}

#[test]
fn broken_inputs_get_one_sentence_and_what_was_readable_is_analysed() {
    let dir = tempfile::tempdir().unwrap();
    // A capture cut in the middle of a packet.
    let cap = std::fs::read("captures/colo-demo.pcap").unwrap();
    let cut = dir.path().join("cut.pcap");
    std::fs::write(&cut, &cap[..cap.len() / 2 + 7]).unwrap();
    migscope()
        .args(["-r", cut.to_str().unwrap()])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("session 0"))
        .stderr(predicate::str::contains("cut short"));
    // Not a capture.
    migscope()
        .args(["-r", "captures/plain-xl.fwd"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not a pcap or pcapng capture"));
    // Missing.
    migscope()
        .args(["-r", "no/such/file.pcap"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("does not exist"));
    // No such session.
    migscope()
        .args([
            "export",
            "captures/remus.pcapng",
            "--session",
            "3",
            "-o",
            "-",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("has no session 3"));
    assert!(Path::new("captures/colo-demo.pcap").exists());
}

#[cfg(not(feature = "live"))]
#[test]
fn live_capture_without_the_feature_says_how_to_get_it() {
    migscope()
        .args(["-i", "lo"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--features live"));
}

#[test]
fn report_in_every_format_and_fail_on_stall() {
    // Text: the phase table, the worst checkpoints, the stall with evidence.
    migscope()
        .args(["report", "captures/colo-demo.pcap"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Session 0 [colo]"))
        .stdout(predicate::str::contains("domain web-frontend (hvm, 2 MiB, 2 vcpus)"))
        .stdout(predicate::str::contains("40 checkpoints (40 complete, 0 partial)"))
        .stdout(predicate::str::contains(
            "checkpoint 23 at 3.426 s: apply took 2.300 s from 3.451 s (threshold 250.0 ms), until svm_ready from the secondary",
        ))
        .stdout(predicate::str::contains("secondary silent for 2.260 s"));
    migscope()
        .args(["report", "--fail-on-stall", "captures/colo-demo.pcap"])
        .assert()
        .code(1);
    // Raising the threshold makes the stall go away.
    migscope()
        .args([
            "report",
            "--fail-on-stall",
            "--slow",
            "apply=3s",
            "--slow",
            "memory=off",
            "captures/colo-demo.pcap",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("no stalls"));
    migscope()
        .args(["report", "--slow", "aply=3s", "captures/colo-demo.pcap"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown phase"));
    // JSON follows docs/report-json.md.
    let out = migscope()
        .args([
            "report",
            "--format",
            "json",
            "captures/colo-zero-window.pcap.gz",
        ])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["capture"]["packets"], 4546);
    assert!(v["capture"]["start"].as_str().unwrap().ends_with('Z'));
    let s = &v["sessions"][0];
    assert_eq!(s["kind"], "colo");
    assert_eq!(s["domain"]["name"], "erp-db");
    assert_eq!(s["forward"]["gaps"], 6);
    let stall = &s["stalls"][0];
    assert_eq!(stall["checkpoint"], 5);
    assert_eq!(stall["phase"], "memory");
    assert_eq!(stall["waiting_for"], "libxc_checkpoint");
    // the primary owes libxc_checkpoint, but the secondary's zero window
    // held its data back: the evidence makes the secondary the owner
    assert_eq!(stall["owner"], "secondary");
    assert!(stall["why"]
        .as_str()
        .unwrap()
        .starts_with("the secondary advertised a zero window for 1.499 s"));
    assert_eq!(stall["evidence"][0]["kind"], "zero_window");
    assert_eq!(stall["evidence"][0]["side"], "secondary");
    let c5 = &s["checkpoints"][5];
    // the capture lost one of its segments: every event is there, but its
    // pages and bytes were not all seen
    assert_eq!(c5["complete"], false);
    assert_eq!(c5["lost_bytes"], 1448);
    for k in [
        "new",
        "svm_suspended",
        "dirty_pfn_list",
        "libxc_checkpoint",
        "checkpoint_end",
        "svm_ready",
        "svm_resumed",
    ] {
        assert!(c5["events"][k].is_f64(), "{k}");
    }
    assert!(s["phase_stats"]["apply"]["p99"].is_f64());
    // CSV: a header and one row per checkpoint.
    let out = migscope()
        .args(["report", "--format", "csv", "captures/remus.pcapng"])
        .output()
        .unwrap();
    let csv = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("session,kind,index,complete,new,"));
    assert_eq!(lines.len(), 1 + 10);
    assert!(lines[1].starts_with("0,remus,0,true,"));
    // The interval to the next checkpoint: CHECKPOINT_END to CHECKPOINT_END.
    let cols = |l: &str| l.split(',').map(String::from).collect::<Vec<_>>();
    let (r0, r1) = (cols(lines[1]), cols(lines[2]));
    let end = |r: &Vec<String>| r[8].parse::<f64>().unwrap();
    let interval: f64 = r0.last().unwrap().parse().unwrap();
    assert!((interval - (end(&r1) - end(&r0))).abs() < 1e-6);
    assert_eq!(cols(lines[10]).last().unwrap(), "");
}

#[test]
fn the_report_of_the_real_tcp_capture_finds_its_stall() {
    // colo-loopback.pcap: framed by the Linux TCP stack; the scenario stalls
    // the apply phase of checkpoint 7 for 700 ms.
    let out = migscope()
        .args(["report", "--format", "json", "captures/colo-loopback.pcap"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = &v["sessions"][0];
    assert_eq!(s["kind"], "colo");
    let cps = s["checkpoints"].as_array().unwrap();
    assert_eq!(cps.len(), 12);
    assert!(cps.iter().all(|c| c["complete"] == true));
    let stalls = s["stalls"].as_array().unwrap();
    assert_eq!(stalls.len(), 1, "{stalls:?}");
    assert_eq!(stalls[0]["checkpoint"], 7);
    assert_eq!(stalls[0]["phase"], "apply");
    assert_eq!(stalls[0]["owner"], "secondary");
    let d = stalls[0]["duration"].as_f64().unwrap();
    assert!((0.69..0.75).contains(&d), "{d}");
}
