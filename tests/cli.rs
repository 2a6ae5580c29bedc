//! The `migscope` binary as a user runs it: exit statuses, messages, JSON lines.
#![cfg(feature = "synth")]

mod common;

use common::{migscope, rec};
use predicates::prelude::*;

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

/// Issue: `migscope report -r FILE` and `migscope records -r FILE` failed
/// with clap's "to pass '-r' as a value" tip. `-r` now goes before or after
/// the subcommand, as tshark users write it; the positional file still works.
#[test]
fn dash_r_goes_before_or_after_the_subcommand() {
    let demo = "captures/colo-demo.pcap";
    for cmd in ["records", "report"] {
        let positional = migscope().args([cmd, demo]).output().unwrap();
        assert!(positional.status.success(), "{cmd}");
        for args in [[cmd, "-r", demo], ["-r", demo, cmd], [cmd, "--read", demo]] {
            let out = migscope().args(args).output().unwrap();
            assert!(out.status.success(), "{args:?}");
            assert_eq!(out.stdout, positional.stdout, "{args:?}");
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let want = std::fs::read("captures/colo-demo.fwd").unwrap();
    for (i, args) in [
        vec!["export", demo, "-o"],
        vec!["export", "-r", demo, "-o"],
        vec!["-r", demo, "export", "-o"],
    ]
    .into_iter()
    .enumerate()
    {
        let out = dir.path().join(format!("{i}.fwd"));
        migscope().args(&args).arg(&out).assert().success();
        assert_eq!(std::fs::read(&out).unwrap(), want, "{args:?}");
    }
}

#[test]
fn a_file_given_twice_is_one_sentence_and_exit_2() {
    let demo = "captures/colo-demo.pcap";
    let runs: [&[&str]; 5] = [
        &["records", demo, "-r", demo],
        &["-r", demo, "report", demo],
        &["-r", demo, "export", demo, "-o", "-"],
        &["-r", demo, "report", "-r", demo],
        &[demo, "-r", demo],
    ];
    for args in runs {
        let out = migscope().args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.starts_with("migscope: "), "{args:?}: {err}");
        assert!(err.contains("give it once"), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    // A capture before the subcommand is not taken for -r.
    migscope()
        .args([demo, "report"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("comes before the subcommand"));
    // No file at all.
    for cmd in ["records", "report", "export"] {
        let mut c = migscope();
        c.arg(cmd);
        if cmd == "export" {
            c.args(["-o", "-"]);
        }
        c.assert()
            .code(2)
            .stderr(predicate::str::contains(format!("{cmd} needs a")));
    }
}

/// Issue: `migscope -r FILE --replay=4` printed the summary and ignored
/// --replay. It opens the terminal UI in replay mode, like
/// `migscope FILE --replay=4`; without a terminal the UI says so.
#[test]
fn replay_with_dash_r_opens_the_terminal_ui() {
    for args in [
        ["-r", "captures/colo-demo.pcap", "--replay=4"],
        ["--replay=4", "-r", "captures/colo-demo.pcap"],
        ["captures/colo-demo.pcap", "--replay", "4"],
    ] {
        migscope()
            .args(args)
            .assert()
            .code(2)
            .stdout("")
            .stderr(predicate::str::diff(
                "migscope: the terminal UI needs a terminal; use `migscope report` or `migscope -r` for text output\n",
            ));
    }
}

#[test]
fn replay_without_a_capture_file_is_one_sentence_and_exit_2() {
    migscope()
        .arg("--replay=4")
        .assert()
        .code(2)
        .stderr(predicate::str::diff(
            "migscope: --replay plays back a capture file; give one: `migscope CAPTURE --replay=4` or `migscope -r CAPTURE --replay=4`\n",
        ));
    migscope()
        .args(["-i", "lo", "--replay"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not a live capture"));
    migscope()
        .args(["-r", "captures/colo-demo.pcap", "--replay=0"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("positive speed"));
}

/// One set of analysis and stall options for every command, before or
/// after the subcommand.
#[test]
fn analysis_and_stall_options_go_before_or_after_the_subcommand() {
    let demo = "captures/colo-demo.pcap";
    let report = |args: &[&str]| {
        let out = migscope().args(args).output().unwrap();
        assert!(out.status.code().is_some_and(|c| c < 2), "{args:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    // checkpoint 23's apply phase (2.3 s) is slow by default
    let default = report(&["report", demo]);
    assert!(default.contains("checkpoint 23 at"), "{default}");
    let before = report(&["--slow", "apply=off", "--quiet", "5s", "report", demo]);
    let after = report(&["report", demo, "--slow", "apply=off", "--quiet", "5s"]);
    let mixed = report(&["--slow", "apply=off", "-r", demo, "report", "--quiet=5s"]);
    assert!(!before.contains("apply took"), "{before}");
    assert_eq!(before, after);
    assert_eq!(before, mixed);
    // --port before records: the session is recognised by its port.
    for args in [
        ["--port", "8002", "records", demo],
        ["records", demo, "--port", "8002"],
    ] {
        migscope()
            .args(args)
            .assert()
            .success()
            .stdout(predicate::str::contains("(port)"));
    }
    // The analysis options reach export and the terminal UI too.
    migscope()
        .args(["--gap-timeout", "2s", "--ooo-total", "1M", "export", demo])
        .args(["--ooo-per-flow", "512K", "--idle", "2s", "-o", "/dev/null"])
        .assert()
        .success();
    migscope()
        .args([
            "--port",
            "8002",
            "--gap-timeout",
            "2s",
            "--ooo-per-flow",
            "1M",
        ])
        .args(["--quiet", "2s", demo])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("needs a terminal"));
    // Given on both sides: refused like clap refuses an option given twice.
    migscope()
        .args(["--quiet", "3s", "report", demo, "--quiet", "2s"])
        .assert()
        .code(2)
        .stderr(predicate::str::diff(
            "migscope: --quiet is given both before and after the subcommand; give it once\n",
        ));
    // synth has options of its own (its --port is the receiver's).
    migscope()
        .args(["--port", "9000", "synth", "-o", "-"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("synth takes its own options"));
}

/// Issue: the warning "ends inside packet 90" was printed twice for a
/// truncated capture: on standard error and in the text report. Each
/// output says it once.
#[test]
fn a_truncated_capture_warns_once() {
    let cap = std::fs::read("captures/plain-xl.pcap").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.pcap");
    std::fs::write(&cut, &cap[..100_000]).unwrap();
    let f = cut.to_str().unwrap();
    let out = dir.path().join("fwd.bin");
    let runs: [&[&str]; 6] = [
        &["report", f],
        &["report", "--format", "csv", f],
        &["report", "--format", "json", f],
        &["-r", f],
        &["records", f],
        &["export", f, "-o", out.to_str().unwrap()],
    ];
    for args in runs {
        let run = migscope().args(args).output().unwrap();
        assert_eq!(run.status.code(), Some(1), "{args:?}");
        let stdout = String::from_utf8_lossy(&run.stdout);
        let stderr = String::from_utf8_lossy(&run.stderr);
        let said = |s: &str| s.matches("ends inside packet 90").count();
        if args.contains(&"json") {
            // standard error for people, the diagnostics for programs
            assert_eq!(said(&stderr), 1, "{args:?}: {stderr}");
            assert_eq!(said(&stdout), 1, "{args:?}");
        } else {
            assert_eq!(said(&stdout) + said(&stderr), 1, "{args:?}: {stderr}");
        }
    }
}

/// A pcap file header (microseconds, Ethernet) and no packet.
fn header_only_pcap() -> Vec<u8> {
    let mut h = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
    h.extend_from_slice(&[0; 8]);
    h.extend_from_slice(&65535u32.to_le_bytes());
    h.extend_from_slice(&1u32.to_le_bytes());
    h
}

/// Issue: `records` on an empty pcap printed a table header and exited 1,
/// while `report` said one sentence and exited 2. Every command now says
/// one sentence and exits 2 for an input with no packets: an empty file,
/// or a capture with only its file header.
#[test]
fn records_on_an_empty_pcap_is_one_sentence_and_exit_2_like_report() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pcap");
    std::fs::write(&empty, b"").unwrap();
    let header = dir.path().join("header.pcap");
    std::fs::write(&header, header_only_pcap()).unwrap();
    let out = dir.path().join("out.bin");
    for (file, says) in [
        (&empty, "is empty, so there are no packets"),
        (&header, "holds no packets (only its file header)"),
    ] {
        let f = file.to_str().unwrap();
        let runs: [&[&str]; 6] = [
            &["records", f],
            &["records", "--json", f],
            &["report", f],
            &["report", "--format", "json", f],
            &["-r", f],
            &["export", f, "-o", out.to_str().unwrap()],
        ];
        for args in runs {
            let run = migscope().args(args).output().unwrap();
            let err = String::from_utf8_lossy(&run.stderr);
            assert_eq!(run.status.code(), Some(2), "{args:?}: {err}");
            assert!(run.stdout.is_empty(), "{args:?}");
            assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
            assert!(err.starts_with("migscope: "), "{args:?}: {err}");
            assert!(err.contains(says), "{args:?}: {err}");
        }
        assert!(!out.exists(), "export left a file");
    }
}

/// Issue: `records captures/` printed a raw "Is a directory (os error 21)".
/// Every command that takes a file says one sentence.
#[test]
fn records_on_a_directory_is_one_sentence() {
    let runs: [&[&str]; 10] = [
        &["records", "captures"],
        &["records", "--back-channel", "captures"],
        &["records", "-r", "captures"],
        &["report", "captures"],
        &["-r", "captures"],
        &["captures"],
        &["export", "captures", "-o", "-"],
        &["export", "captures/colo-demo.pcap", "-o", "captures"],
        &["synth", "--memory", "1MiB", "-o", "captures"],
        &[
            "synth",
            "--memory",
            "1MiB",
            "-o",
            "-",
            "--manifest",
            "captures",
        ],
    ];
    for args in runs {
        let out = migscope().args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.contains("captures: it is a directory; give a"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("os error"), "{args:?}: {err}");
    }
}

/// Issue: `export --session 5` (no such session) left a 0-byte output
/// file. The file is created once the session's bytes come; a file of that
/// name is left as it was.
#[test]
fn export_of_a_missing_session_leaves_no_empty_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s5.bin");
    migscope()
        .args(["export", "captures/colo-demo.pcap", "--session", "5", "-o"])
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicate::str::diff(
            "migscope: captures/colo-demo.pcap has no session 5 (1 migration session found; `migscope -r captures/colo-demo.pcap` lists them)\n",
        ));
    assert!(!out.exists(), "an empty file was left");
    std::fs::write(&out, b"keep me").unwrap();
    migscope()
        .args(["export", "captures/colo-demo.pcap", "--session", "5", "-o"])
        .arg(&out)
        .assert()
        .code(2);
    assert_eq!(std::fs::read(&out).unwrap(), b"keep me");
    // A session whose direction has no bytes is still an (empty) file
    // (Remus without xl sends nothing back).
    let dir2 = tempfile::tempdir().unwrap();
    let empty = dir2.path().join("back.bin");
    let remus = "captures/remus.pcapng";
    let run = migscope()
        .args(["export", remus, "--dir", "back", "-o"])
        .arg(&empty)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.code().is_some_and(|c| c < 2), "{err}");
    let wrote: u64 = err
        .split("wrote ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert_eq!(std::fs::metadata(&empty).unwrap().len(), wrote);
}

/// `records -Y`: the Records view's filter language selects the records
/// listed, and `ckpt:N` is the checkpoint `report` numbers N.
#[test]
fn records_display_filter_selects_the_records_listed() {
    let demo = "captures/colo-demo.pcap";
    let out = migscope()
        .args(["records", demo, "-Y", "ckpt:23"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let types: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(" forward ") || l.contains(" back "))
        .map(|l| l.split_whitespace().nth(6).unwrap())
        .collect();
    assert_eq!(types.first(), Some(&"CHECKPOINT_STATE"), "{text}");
    assert!(types.contains(&"PAGE_DATA") && types.contains(&"CHECKPOINT_END"));
    assert!(text.contains("session 0: 10.0.1.1:37902"), "{text}");
    assert!(
        text.contains(&format!("\n{} of them listed (-Y ckpt:23)\n", types.len())),
        "{text}"
    );
    // Each record's checkpoint is the report's: the NEW and SVM_READY of
    // checkpoint 23 are listed at the times the report gives its events.
    let report: serde_json::Value = serde_json::from_slice(
        &migscope()
            .args(["report", "--format", "json", demo])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let c23 = &report["sessions"][0]["checkpoints"][23];
    assert_eq!(c23["index"], 23);
    let lines = record_lines_of(&[
        "records",
        "--json",
        "-r",
        demo,
        "-Y",
        "c:23 type:CHECKPOINT_STATE",
    ]);
    let at = |summary: &str| {
        lines
            .iter()
            .find(|v| v["event"] == "record" && v["summary"] == summary)
            .map(|v| v["time"].as_f64().unwrap())
            .unwrap()
    };
    let close = |a: f64, b: &serde_json::Value| (a - b.as_f64().unwrap()).abs() < 1e-6;
    assert!(close(at("NEW"), &c23["events"]["new"]), "{lines:?}");
    assert!(close(at("SVM_READY"), &c23["events"]["svm_ready"]));
    assert!(close(at("SVM_RESUMED"), &c23["events"]["svm_resumed"]));
    let summary = lines.last().unwrap();
    assert_eq!(summary["event"], "summary");
    assert_eq!(summary["listed"], 4);
    assert_eq!(summary["filter"], "c:23 type:CHECKPOINT_STATE");
    assert_eq!(summary["records"], 530, "every record is still counted");
    // Words, direction and layer, on a capture and on a raw stream file.
    let back = record_lines_of(&["-Y", "dir:back svm_ready", "records", demo, "--json"]);
    let recs: Vec<_> = back.iter().filter(|v| v["event"] == "record").collect();
    assert_eq!(recs.len(), 40);
    assert!(recs
        .iter()
        .all(|v| v["dir"] == "reverse" && v["summary"] == "SVM_READY"));
    let raw = record_lines_of(&[
        "records",
        "--json",
        "captures/colo-demo.fwd",
        "-Y",
        "t:checkpoint_end layer:libxl",
    ]);
    assert_eq!(raw.iter().filter(|v| v["event"] == "record").count(), 40);
}

fn record_lines_of(args: &[&str]) -> Vec<serde_json::Value> {
    let out = migscope().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_display_filter_that_does_not_parse_is_one_sentence_and_exit_2() {
    for (args, says) in [
        (
            vec!["records", "captures/colo-demo.pcap", "-Y", "layer:tcp"],
            "migscope: the filter \"layer:tcp\" does not parse: unknown layer `tcp` (xl, libxl, libxc); `migscope records --help` describes the language\n",
        ),
        (
            vec!["records", "captures/colo-demo.fwd", "-Y", "ckpt:3"],
            "migscope: -Y ckpt: needs a capture: captures/colo-demo.fwd is a raw stream file, whose records have no checkpoint numbers here; give the capture it came from, or filter with type:, layer:, dir: and words\n",
        ),
    ] {
        migscope()
            .args(&args)
            .assert()
            .code(2)
            .stdout("")
            .stderr(predicate::str::diff(says));
    }
    // Where no filter applies.
    for args in [
        vec!["-Y", "ckpt:3", "-r", "captures/colo-demo.pcap"],
        vec![
            "-Y",
            "ckpt:3",
            "export",
            "captures/colo-demo.pcap",
            "-o",
            "-",
        ],
    ] {
        migscope()
            .args(&args)
            .assert()
            .code(2)
            .stdout("")
            .stderr(predicate::str::starts_with("migscope: -Y selects what"));
    }
}

fn report_json(args: &[&str]) -> serde_json::Value {
    let out = migscope()
        .args(["report", "--format", "json"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn indices(v: &serde_json::Value, key: &str, field: &str) -> Vec<u64> {
    v["sessions"][0][key]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c[field].as_u64().unwrap())
        .collect()
}

/// `report --session N`, `--from`/`--to` and `-Y ckpt:N` restrict what the
/// report lists; statistics and stall judgements stay those of the session.
#[test]
fn report_selection_restricts_what_is_listed() {
    let demo = "captures/colo-demo.pcap";
    let all = report_json(&[demo]);
    assert!(all.get("selection").is_none());
    assert_eq!(indices(&all, "checkpoints", "index").len(), 40);
    assert_eq!(indices(&all, "stalls", "checkpoint"), vec![23, 31]);

    let c23 = report_json(&[demo, "-Y", "ckpt:23"]);
    assert_eq!(indices(&c23, "checkpoints", "index"), vec![23]);
    assert_eq!(indices(&c23, "stalls", "checkpoint"), vec![23]);
    assert_eq!(
        c23["sessions"][0]["checkpoints"][0],
        all["sessions"][0]["checkpoints"][23]
    );
    for key in [
        "phase_stats",
        "downtime_stats",
        "checkpoint_rate",
        "pages_per_checkpoint",
    ] {
        assert_eq!(c23["sessions"][0][key], all["sessions"][0][key], "{key}");
    }
    assert_eq!(c23["selection"]["checkpoint"], 23);
    // -Y before the subcommand, and its other spellings
    for args in [
        vec!["-Y", "c:23", "report", "--format", "json", demo],
        vec![
            "report",
            "--format",
            "json",
            "-r",
            demo,
            "--display-filter=checkpoint:#23",
        ],
    ] {
        let out = migscope().args(&args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["sessions"], c23["sessions"], "{args:?}");
    }

    // Checkpoint 31's memory phase (1.2 s) lies after 5.8 s; 23's apply
    // (3.45 s to 5.75 s) overlaps 5.7 s.
    let late = report_json(&[demo, "--session", "0", "--from", "5.7"]);
    let late_cps = indices(&late, "checkpoints", "index");
    assert_eq!(late_cps, (23..40).collect::<Vec<_>>());
    assert_eq!(indices(&late, "stalls", "checkpoint"), vec![23, 31]);
    let early = report_json(&[demo, "--to", "3.0s"]);
    let early_cps = indices(&early, "checkpoints", "index");
    assert!(
        !early_cps.is_empty() && early_cps.iter().all(|&i| i < 23),
        "{early_cps:?}"
    );
    assert!(indices(&early, "stalls", "checkpoint").is_empty());
    // A checkpoint is listed when its span, NEW to its last event, overlaps.
    let window = report_json(&[demo, "--from", "6", "--to", "6500ms"]);
    assert_eq!(window["selection"]["from"], 6.0);
    assert_eq!(window["selection"]["to"], 6.5);
    let overlapping: Vec<u64> = all["sessions"][0]["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            // (checkpoint 0, the initial migration, has no NEW; it ends
            // long before 6 s)
            let Some(start) = c["events"]["new"].as_f64() else {
                return false;
            };
            let end = c["events"]
                .as_object()
                .unwrap()
                .values()
                .filter_map(|t| t.as_f64())
                .fold(start, f64::max);
            end >= 6.0 && start <= 6.5
        })
        .map(|c| c["index"].as_u64().unwrap())
        .collect();
    assert!(!overlapping.is_empty());
    assert_eq!(indices(&window, "checkpoints", "index"), overlapping);

    // Text and CSV list the same.
    let text = migscope()
        .args(["report", demo, "-Y", "ckpt:31"])
        .output()
        .unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("Listing checkpoint 31 (statistics, thresholds and stalls are judged over whole sessions)."), "{text}");
    assert!(
        text.contains("  1 of 40 checkpoints (1 complete, 0 partial)"),
        "{text}"
    );
    assert!(
        text.contains("checkpoint 31 at") && !text.contains("checkpoint 23 at"),
        "{text}"
    );
    let csv = migscope()
        .args(["report", "--format", "csv", demo, "-Y", "ckpt:31"])
        .output()
        .unwrap();
    let csv = String::from_utf8(csv.stdout).unwrap();
    assert_eq!(csv.lines().count(), 2, "{csv}");
    assert!(
        csv.lines().nth(1).unwrap().starts_with("0,colo,31,"),
        "{csv}"
    );
    // A time range with nothing in it is an empty listing, not an error.
    migscope()
        .args(["report", demo, "--from", "100"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "None of the 1 sessions found has anything in the selection.",
        ));
}

#[test]
fn report_selection_errors_are_one_sentence_and_exit_2() {
    let demo = "captures/colo-demo.pcap";
    for (args, says) in [
        (
            vec!["-Y", "type:PAGE_DATA ckpt:3"],
            "migscope: report -Y takes ckpt:N only, and \"type:PAGE_DATA ckpt:3\" selects records (type:, layer:, dir:, words); use it with `migscope records -Y`\n",
        ),
        (
            vec!["-Y", "svm_ready"],
            "migscope: report -Y takes ckpt:N only, and \"svm_ready\" selects records (type:, layer:, dir:, words); use it with `migscope records -Y`\n",
        ),
        (
            vec!["--session", "3"],
            "migscope: captures/colo-demo.pcap has no session 3 (1 migration session found; `migscope report` without --session lists them)\n",
        ),
        (
            vec!["-Y", "ckpt:99"],
            "migscope: captures/colo-demo.pcap has no checkpoint 99; `migscope report` lists how many each session has\n",
        ),
        (
            vec!["--from", "5", "--to", "4"],
            "migscope: --from 5 s comes after --to 4 s; give the earlier time to --from\n",
        ),
    ] {
        migscope()
            .arg("report")
            .arg(demo)
            .args(&args)
            .assert()
            .code(2)
            .stdout("")
            .stderr(predicate::str::diff(says));
    }
}
