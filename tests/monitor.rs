//! `migscope monitor`: the exposition of a capture (`--once`, checked by
//! `promtool check metrics`), the HTTP endpoints and the events file while
//! it serves, memory kept flat by forgetting counted checkpoints, and a
//! real Prometheus (Debian's `prometheus`) scraping it, whose answers must
//! agree with `migscope report` of the same capture. Tests that need
//! promtool or prometheus say they are skipped where those are missing.

#![cfg(feature = "synth")]

mod common;

use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use common::migscope;

const DEMO: &str = "captures/colo-demo.pcap";

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_migscope")
}

fn report_json(capture: &str) -> Value {
    let out = migscope()
        .args(["report", "--format", "json", capture])
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A sample's value in the Prometheus text format: `name{labels} value`
/// for the first line that starts with `series`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn once_prints_an_exposition_that_agrees_with_the_report() {
    let out = migscope()
        .args(["monitor", "-r", DEMO, "--once"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let r = report_json(DEMO);
    let s = &r["sessions"][0];
    let labels = r#"pair="10.0.1.1->10.0.1.2",domain="web-frontend",kind="colo""#;
    let cps = s["checkpoints"].as_array().unwrap().len() as f64;
    assert_eq!(
        sample(
            &text,
            &format!("migscope_checkpoints_total{{{labels},complete=\"true\"}}")
        ),
        Some(cps)
    );
    for phase in ["suspend", "memory", "apply", "resume", "run"] {
        let want = s["phase_stats"][phase]["count"].as_f64().unwrap();
        let got = sample(
            &text,
            &format!("migscope_checkpoint_phase_seconds_count{{{labels},phase=\"{phase}\"}}"),
        );
        assert_eq!(got, Some(want), "{phase} count");
    }
    let stalls: f64 = text
        .lines()
        .filter(|l| l.starts_with("migscope_stalls_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(stalls, s["stalls"].as_array().unwrap().len() as f64);
    assert!(text.contains("# TYPE migscope_capture_packets_total counter"));
    assert!(text.contains("migscope_build_info{version="));
    // promtool lints it, where installed
    match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Err(_) => eprintln!("skipped: promtool is not installed (apt-get install prometheus)"),
        Ok(mut p) => {
            use std::io::Write;
            p.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
            let o = p.wait_with_output().unwrap();
            assert!(
                o.status.success(),
                "promtool check metrics: {}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
}

/// A monitor serving a capture; killed when dropped.
struct Serving {
    child: Child,
    addr: String,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(args: &[&str]) -> Serving {
    let mut child = Command::new(bin())
        .args(["monitor", "--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("migscope: serving http://")
        .and_then(|x| x.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    // keep reading stderr so the child never blocks on it
    std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = err.read_to_string(&mut rest);
    });
    Serving { child, addr }
}

fn get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    use std::io::Write;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn wait_until(what: &str, f: impl Fn() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < Duration::from_secs(60), "waited for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn serving_a_stalled_capture_answers_health_metrics_and_writes_events() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let m = serve(&["-r", DEMO, "--events", events.to_str().unwrap()]);
    assert!(get(&m.addr, "/-/healthy").contains("Healthy"));
    wait_until("the capture's checkpoints", || {
        get(&m.addr, "/metrics").contains("complete=\"true\"} 40")
    });
    let metrics = get(&m.addr, "/metrics");
    assert!(
        metrics.contains("phase=\"apply\",owner=\"secondary\"} 1"),
        "{metrics}"
    );
    let text = std::fs::read_to_string(&events).unwrap();
    let ev: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let of = |name: &str| ev.iter().filter(|e| e["event"] == name).count();
    assert_eq!(of("session_started"), 1);
    assert_eq!(of("checkpoint"), 40);
    assert_eq!(of("slow_phase"), 2);
    // checkpoint 23 waited 2.3 s for svm_ready: seen while it lasted
    let started = ev
        .iter()
        .find(|e| e["event"] == "stall_started" && e["checkpoint"] == 23)
        .expect("a stall_started event for checkpoint 23");
    assert_eq!(started["owner"], "secondary");
    assert_eq!(started["waiting_for"], "svm_ready");
    assert!(ev
        .iter()
        .any(|e| e["event"] == "stall_resolved" && e["checkpoint"] == 23));
    assert_eq!(of("session_ended"), 1);
}

/// Memory stays flat: the model keeps a window of checkpoints once the
/// monitor has counted them, whatever the session's length.
#[test]
fn counted_checkpoints_are_forgotten() {
    use migscope::capture::{FileSource, Next, Source};
    use migscope::model::Model;
    use migscope::monitor::{metrics::Metrics, Monitor, KEEP_CHECKPOINTS};
    use migscope::session::{Analyzer, Config};
    use migscope::synth::capture::{write_capture, CaptureOptions};
    use migscope::synth::Scenario;
    let s = Scenario::colo()
        .with_memory(1 << 20)
        .with_checkpoints(300)
        .with_seed(5);
    let (file, _) = write_capture(&[s], &CaptureOptions::default(), Vec::new()).unwrap();
    let mut src = Source::File(
        FileSource::from_reader(Box::new(std::io::Cursor::new(file)), "test").unwrap(),
    );
    let mut reg = prometheus_client::registry::Registry::default();
    let mut mon = Monitor::new(Metrics::register(&mut reg), Default::default(), None);
    let mut an = Analyzer::new(Config::default(), Model::new());
    let mut most = 0;
    let mut n = 0u64;
    while let Next::Packet(p) = src.next_packet().unwrap() {
        an.packet(&p);
        n += 1;
        if n % 64 == 0 {
            let st = an.stats();
            mon.sweep(an.observer_mut(), &st, 0, p.ts_ns, false);
            most = most.max(an.observer().sessions[0].checkpoints.len());
        }
    }
    an.finish();
    let st = an.stats();
    let now = an.observer().now;
    mon.sweep(an.observer_mut(), &st, 0, now, true);
    assert!(most <= KEEP_CHECKPOINTS + 4, "kept {most} checkpoints");
    assert_eq!(an.observer().sessions[0].checkpoints.len(), 0);
    let text =
        migscope::monitor::http::to_prometheus_text(&migscope::monitor::http::exposition(&reg));
    assert_eq!(
        sample(&text, "migscope_checkpoints_total{pair=\"10.0.1.1->10.0.1.2\",domain=\"\",kind=\"colo\",complete=\"true\"}"),
        Some(300.0),
        "every checkpoint counted once"
    );
}

/// A real Prometheus scrapes the monitor; its answers (a quantile of a
/// phase, the stall counter) agree with the report of the same capture.
#[test]
fn a_real_prometheus_scrapes_the_monitor() {
    if Command::new("prometheus")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: prometheus is not installed (apt-get install prometheus)");
        return;
    }
    let m = serve(&["-r", DEMO]);
    let dir = tempfile::tempdir().unwrap();
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let prom = free.local_addr().unwrap().to_string();
    drop(free);
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: migscope\n    static_configs:\n      - targets: ['{}']\n",
            m.addr
        ),
    )
    .unwrap();
    let mut p = Command::new("prometheus")
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address={prom}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    struct Kill<'a>(&'a mut Child);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _p = Kill(&mut p);
    let query = |q: &str| -> Option<f64> {
        let path = format!(
            "/api/v1/query?query={}",
            q.bytes()
                .map(|b| match b {
                    b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' =>
                        (b as char).to_string(),
                    _ => format!("%{b:02X}"),
                })
                .collect::<String>()
        );
        let resp = TcpStream::connect(&prom).ok().map(|_| get(&prom, &path))?;
        let body = resp.split("\r\n\r\n").nth(1)?;
        let v: Value = serde_json::from_str(body).ok()?;
        v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    };
    wait_until("Prometheus to scrape the monitor", || {
        query("sum(migscope_checkpoints_total)") == Some(40.0)
    });
    let r = report_json(DEMO);
    let s = &r["sessions"][0];
    assert_eq!(
        query("sum(migscope_stalls_total)"),
        Some(s["stalls"].as_array().unwrap().len() as f64)
    );
    assert_eq!(
        query("sum(migscope_checkpoint_phase_seconds_count{phase=\"apply\"})"),
        s["phase_stats"]["apply"]["count"].as_f64()
    );
    // Prometheus interpolates inside a bucket: its median of the apply
    // phase lies in the bucket that holds the report's exact median.
    let p50 = query(
        "histogram_quantile(0.5, sum by (le) (migscope_checkpoint_phase_seconds_bucket{phase=\"apply\"}))",
    )
    .unwrap();
    let want = s["phase_stats"]["apply"]["p50"].as_f64().unwrap();
    let edges = migscope::monitor::metrics::SECONDS_BUCKETS;
    let hi = edges.iter().position(|&e| e >= want).unwrap();
    let lo = if hi == 0 { 0.0 } else { edges[hi - 1] };
    assert!(
        (lo..=edges[hi]).contains(&p50),
        "Prometheus says {p50}, the report {want} (bucket {lo}..{})",
        edges[hi]
    );
}
