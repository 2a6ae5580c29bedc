//! The `migscope` binary as a user runs it: exit statuses, messages, JSON lines.

use assert_cmd::Command;
use predicates::prelude::*;

fn migscope() -> Command {
    Command::cargo_bin("migscope").unwrap()
}

fn rec(t: u32, body: &[u8]) -> Vec<u8> {
    let mut v = t.to_le_bytes().to_vec();
    v.extend_from_slice(&(body.len() as u32).to_le_bytes());
    v.extend_from_slice(body);
    v.resize(v.len().div_ceil(8) * 8, 0);
    v
}

fn libxc_start() -> Vec<u8> {
    let mut s = b"LibxlFmt\0\0\0\x02\0\0\0\0".to_vec();
    s.extend(rec(1, &[]));
    s.extend_from_slice(&[0xff; 8]);
    s.extend_from_slice(b"XENF\0\0\0\x03\0\0\0\0\0\0\0\0");
    s.extend_from_slice(&[2, 0, 0, 0, 12, 0, 0, 0, 4, 0, 0, 0, 19, 0, 0, 0]);
    s
}

#[test]
fn demo_stream_is_clean() {
    migscope()
        .args(["records", "captures/colo-demo.fwd"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("CHECKPOINT_STATE")
                .and(predicate::str::contains("0 errors, 0 warnings")),
        );
}

#[test]
fn back_channel_file() {
    migscope()
        .args(["records", "--back-channel", "captures/colo-demo.rev"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("SVM_READY")
                .and(predicate::str::contains("CHECKPOINT_DIRTY_PFN_LIST")),
        );
}

#[test]
fn json_lines_have_the_documented_keys() {
    let out = migscope()
        .args(["records", "--json", "-V", "captures/plain-xl.fwd"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let records: Vec<_> = lines.iter().filter(|v| v["event"] == "record").collect();
    assert_eq!(records[0]["layer"], "xl");
    assert_eq!(records[0]["type"], "SAVE_HEADER");
    let pd = records.iter().find(|v| v["type"] == "PAGE_DATA").unwrap();
    for key in ["offset", "layer", "type", "length", "summary", "details"] {
        assert!(!pd[key].is_null(), "{key} missing in {pd}");
    }
    assert_eq!(pd["layer"], "libxc");
    assert_eq!(lines.last().unwrap()["event"], "summary");
    assert_eq!(lines.last().unwrap()["errors"], 0);
}

#[test]
fn corruption_is_named_with_its_offset_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = libxc_start();
    let at = s.len();
    // PAGE_DATA claiming 2 pages but carrying 1.
    let mut body = 2u32.to_le_bytes().to_vec();
    body.extend_from_slice(&[0; 4]);
    body.extend_from_slice(&1u64.to_le_bytes());
    body.extend_from_slice(&2u64.to_le_bytes());
    body.resize(body.len() + 4096, 7);
    s.extend(rec(1, &body));
    s.extend(rec(0x0E, &[]));
    let p = dir.path().join("bad.bin");
    std::fs::write(&p, &s).unwrap();
    migscope()
        .arg("records")
        .arg(&p)
        .assert()
        .code(1)
        .stdout(predicate::str::contains(format!(
            "{at}  ! error: PAGE_DATA body is"
        )));
}

#[test]
fn legacy_image_is_refused_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("legacy.img");
    std::fs::write(&p, [0x00, 0x00, 0x01, 0x00, 0, 0, 0, 0, 9, 9, 9, 9]).unwrap();
    migscope()
        .arg("records")
        .arg(&p)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("legacy"));
}

#[test]
fn missing_file_is_one_sentence_and_exit_2() {
    migscope()
        .args(["records", "no/such/file.bin"])
        .assert()
        .code(2)
        .stderr(predicate::str::diff(
            "migscope: cannot open no/such/file.bin: no such file; check the path\n",
        ));
}

#[test]
fn synth_then_records_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("s.fwd");
    migscope()
        .args([
            "synth",
            "--scenario",
            "remus",
            "--memory",
            "1MiB",
            "--checkpoints",
            "3",
            "-o",
        ])
        .arg(&f)
        .assert()
        .success();
    migscope()
        .arg("records")
        .arg(&f)
        .assert()
        .success()
        .stdout(predicate::str::contains("CHECKPOINT_END"));
}

/// A full disk (Linux's /dev/full fails every write with ENOSPC) ends every
/// command with one sentence and exit status 2.
#[test]
#[cfg(target_os = "linux")]
fn a_full_disk_is_one_sentence_and_exit_2() {
    let full = std::path::Path::new("/dev/full");
    if !full.exists() {
        eprintln!("no /dev/full here: skipped");
        return;
    }
    let demo = "captures/colo-demo.pcap";
    let runs: [&[&str]; 5] = [
        &["report", demo],
        &["report", demo, "--format", "json"],
        &["records", demo],
        &["-r", demo],
        &[
            "export",
            demo,
            "--session",
            "0",
            "--dir",
            "forward",
            "-o",
            "-",
        ],
    ];
    for args in runs {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_migscope"))
            .args(args)
            .stdout(std::fs::File::create(full).unwrap())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("no space left on the device"),
            "{args:?}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
    // Writing to the device itself: said, and the device is left alone.
    let out = migscope()
        .args([
            "export",
            demo,
            "--session",
            "0",
            "--dir",
            "forward",
            "-o",
            "/dev/full",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("writing /dev/full failed: no space left"),
        "{err}"
    );
    assert!(full.exists());
}

#[test]
fn the_terminal_ui_takes_the_stall_options_of_report() {
    // Without a terminal the UI stops after parsing: the options were taken.
    migscope()
        .args([
            "--slow",
            "memory=200ms",
            "--slow-factor",
            "3",
            "--quiet",
            "2s",
            "captures/colo-demo.pcap",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("needs a terminal"));
    migscope()
        .args(["--slow", "aply=3s", "captures/colo-demo.pcap"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown phase"));
}
