//! Live capture for real: a synthesized COLO session is replayed over TCP on
//! the loopback interface, with its pacing, by the Linux TCP stack, and
//! captured live while it runs. The streams migscope reassembles must be
//! the bytes that were sent.
//!
//! Needs the `live` feature and the right to capture (root or
//! CAP_NET_RAW); without the right the test says so and passes.
#![cfg(feature = "live")]
#![cfg(feature = "synth")]

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use migscope::capture::{self, CaptureError, Next, Source};
use migscope::decode::Direction;
use migscope::model::{Model, Thresholds};
use migscope::report::timeline::{self, Context, ReportFormat};
use migscope::session::{Analyzer, Config, Observer, Session};
use migscope::synth::replay::replay;
use migscope::synth::Scenario;
use migscope::tcp::GapCause;

#[derive(Default)]
struct Got {
    sessions: Vec<Session>,
    bytes: [Vec<u8>; 2],
    gaps: u64,
    records: u64,
}

impl Observer for Got {
    fn session(&mut self, s: &Session) {
        self.sessions.push(s.clone());
    }
    fn bytes(&mut self, _s: u32, d: Direction, _o: u64, data: &[u8]) {
        let i = if d == Direction::Forward { 0 } else { 1 };
        self.bytes[i].extend_from_slice(data);
    }
    fn gap(&mut self, _s: u32, _d: Direction, _t: u64, _o: u64, len: u64, _c: GapCause) {
        self.gaps += len;
    }
    fn decoded(&mut self, _s: u32, _d: Direction, _t: u64, ev: &[migscope::decode::Event]) {
        self.records += ev
            .iter()
            .filter(|e| matches!(e, migscope::decode::Event::Item(_)))
            .count() as u64;
    }
}

#[test]
fn a_colo_session_replayed_on_loopback_is_captured_and_reassembled_exactly() {
    let port = 18000 + (std::process::id() % 1000) as u16;
    let filter = format!("tcp port {port}");
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("live.pcap");
    let live = match capture::live::open("lo", Some(&filter), Some(&saved)) {
        Ok(l) => l,
        Err(e @ CaptureError::LivePermission { .. }) => {
            eprintln!("skipped: {e}");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let scenario = Scenario::colo()
        .with_memory(2 << 20)
        .with_checkpoints(6)
        .with_xl(true)
        .with_seed(21);
    let (tx, rx) = mpsc::channel();
    let sender = thread::spawn(move || {
        let r = replay(
            &scenario,
            format!("127.0.0.1:{port}").parse().unwrap(),
            4.0,
            |_| {},
        );
        tx.send(()).ok();
        r
    });
    let mut src = Source::Live(live);
    let mut an = Analyzer::new(Config::default(), (Got::default(), Model::new()));
    let mut done_at: Option<Instant> = None;
    let began = Instant::now();
    loop {
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "the replay did not end"
        );
        if done_at.is_none() && rx.try_recv() != Err(mpsc::TryRecvError::Empty) {
            done_at = Some(Instant::now());
        }
        if done_at.is_some_and(|t| t.elapsed() > Duration::from_millis(500)) {
            break;
        }
        match src.next_packet().expect("live capture") {
            Next::Packet(p) => an.packet(&p),
            Next::Idle => {}
            Next::End => break,
        }
    }
    an.finish();
    let live_stats = an.stats();
    let sent = sender.join().unwrap().expect("replay");
    let Source::Live(mut live) = src else {
        unreachable!()
    };
    let stats = live.stats().unwrap();
    live.flush().unwrap();
    let (got, live_model) = an.into_observer();
    assert_eq!(stats.dropped, 0, "the kernel dropped packets");
    assert_eq!(got.sessions.len(), 1);
    assert_eq!(got.sessions[0].recognised_by, "xl");
    assert!(
        got.bytes[0] == sent.forward,
        "forward stream differs ({} vs {} bytes)",
        got.bytes[0].len(),
        sent.forward.len()
    );
    assert!(got.bytes[1] == sent.reverse, "reverse stream differs");
    assert_eq!(got.gaps, 0);
    assert_eq!(got.records, sent.manifest.records.len() as u64);
    // The file written with -w holds the same traffic.
    let mut file = Source::File(capture::FileSource::open(&saved).unwrap());
    let mut again = Analyzer::new(Config::default(), (Got::default(), Model::new()));
    while let Next::Packet(p) = file.next_packet().unwrap() {
        again.packet(&p);
    }
    again.finish();
    let file_stats = again.stats();
    let (again, file_model) = again.into_observer();
    assert!(again.bytes[0] == sent.forward && again.bytes[1] == sent.reverse);
    // The same report, live or from the file.
    let report = |m: &Model, stats| {
        let t = Thresholds::default();
        let ctx = Context {
            source: "lo",
            stats,
            problems: &[],
            thresholds: &t,
            capture_ended: true,
            worst: 5,
        };
        let mut out = Vec::new();
        timeline::write(m, &ctx, ReportFormat::Json, &mut out).unwrap();
        out
    };
    let live_json = report(&live_model, &live_stats);
    assert!(
        live_json == report(&file_model, &file_stats),
        "live and file reports differ"
    );
    let v: serde_json::Value = serde_json::from_slice(&live_json).unwrap();
    assert_eq!(v["sessions"][0]["kind"], "colo");
    assert_eq!(
        v["sessions"][0]["checkpoints"].as_array().unwrap().len(),
        sent.manifest.checkpoints.len()
    );
}

/// Runs `migscope -i IFACE -w FILE` (the summary, not the TUI: its standard
/// output is a pipe) in the background.
fn migscope_live(iface: &str, filter: Option<&str>, save: &std::path::Path) -> std::process::Child {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_migscope"));
    c.args(["-i", iface, "-w"]).arg(save);
    if let Some(f) = filter {
        c.args(["-f", f]);
    }
    c.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run migscope")
}

/// Every packet of a saved file, read back with migscope's own reader; the
/// file must be a whole, valid capture.
fn packets_in(path: &std::path::Path) -> u64 {
    let mut src = capture::FileSource::open(path).expect("a valid -w file");
    let mut n = 0;
    loop {
        match src.next_packet() {
            Ok(Some(_)) => n += 1,
            Ok(None) => return n,
            Err(e) => panic!("the -w file is damaged: {e}"),
        }
    }
}

fn can_capture() -> bool {
    match capture::live::open("lo", Some("tcp port 9"), None) {
        Ok(_) => true,
        Err(e) => {
            eprintln!("skipped: {e}");
            false
        }
    }
}

/// SIGINT and SIGTERM in the middle of a live capture: the summary is
/// printed, the exit status is 0 (nothing went wrong) and the -w file is a
/// valid capture holding every packet counted.
#[test]
fn sigint_and_sigterm_stop_a_live_capture_and_keep_the_w_file_valid() {
    if !can_capture() {
        return;
    }
    for sig in ["INT", "TERM"] {
        let port = 19000 + (std::process::id() % 500) as u16 + if sig == "INT" { 0 } else { 500 };
        let dir = tempfile::tempdir().unwrap();
        let saved = dir.path().join("live.pcap");
        let child = migscope_live("lo", Some(&format!("tcp port {port}")), &saved);
        thread::sleep(Duration::from_millis(700));
        // Some traffic: connection attempts to a closed port (SYN, RST).
        for _ in 0..5 {
            let _ = std::net::TcpStream::connect(("127.0.0.1", port));
        }
        thread::sleep(Duration::from_millis(300));
        let killed = std::process::Command::new("kill")
            .args([&format!("-{sig}"), &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "SIG{sig}: {stderr}");
        assert!(stdout.contains("Capture: 10 packets"), "SIG{sig}: {stdout}");
        assert_eq!(packets_in(&saved), 10, "SIG{sig}");
    }
}

/// The interface goes away while migscope captures on it: one sentence,
/// exit status 1 (2 if not a packet came), the packets before analysed and
/// the -w file valid. Needs
/// the right to create a veth pair; skipped otherwise.
#[test]
fn an_interface_that_disappears_ends_the_capture_cleanly() {
    if !can_capture() {
        return;
    }
    let name = format!("msv{}", std::process::id() % 10000);
    let ip = |args: &[&str]| {
        std::process::Command::new("ip")
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !ip(&[
        "link",
        "add",
        &name,
        "type",
        "veth",
        "peer",
        "name",
        &format!("{name}p"),
    ]) {
        eprintln!("skipped: cannot create a veth pair here");
        return;
    }
    ip(&["link", "set", &name, "up"]);
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("gone.pcap");
    let child = migscope_live(&name, None, &saved);
    thread::sleep(Duration::from_millis(1000));
    assert!(ip(&["link", "del", &name]), "delete {name}");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("capturing on {name} stopped:")),
        "{stderr}"
    );
    // 1: problems, with what was captured analysed; 2 when nothing was.
    let want = if packets_in(&saved) > 0 { 1 } else { 2 };
    assert_eq!(out.status.code(), Some(want), "{stderr}");
}
