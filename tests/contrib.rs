//! contrib/: the Prometheus rules and their unit tests, the example
//! Prometheus configuration, the Grafana dashboard and the systemd unit for
//! `migscope monitor`. promtool checks the rules, runs their tests and checks
//! the configuration (skipped with a message where promtool is missing); the
//! dashboard and the rules may name only the metrics the monitor exports;
//! the listen port is the same everywhere.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The monitor's default listen address (`migscope monitor --listen`). The
/// systemd unit (MIGSCOPE_LISTEN), prometheus.yml (the port its relabelling
/// adds) and contrib/README.md must agree with it: change it here and
/// `listen_address_is_the_same_everywhere` says what else to change.
const LISTEN: &str = ":9977";

/// Every metric `migscope monitor` exports, as exposed (counters with their
/// `_total`), and whether it is a histogram (then `_bucket`, `_sum` and
/// `_count` series exist, not the bare name).
const METRICS: &[(&str, bool)] = &[
    ("migscope_checkpoint_phase_seconds", true),
    ("migscope_checkpoint_downtime_seconds", true),
    ("migscope_checkpoints_total", false),
    ("migscope_stalls_total", false),
    ("migscope_stall_waiting_seconds", false),
    ("migscope_checkpoint_pages", true),
    ("migscope_checkpoint_bytes", true),
    ("migscope_tcp_zero_window_seconds_total", false),
    ("migscope_tcp_retransmissions_total", false),
    ("migscope_capture_packets_total", false),
    ("migscope_capture_bytes_total", false),
    ("migscope_capture_dropped_packets_total", false),
    ("migscope_sessions", false),
    ("migscope_build_info", false),
];

/// Metrics without a `pair` label (the sensor's own).
const SENSOR_METRICS: &[&str] = &[
    "migscope_capture_packets_total",
    "migscope_capture_bytes_total",
    "migscope_capture_dropped_packets_total",
    "migscope_sessions",
    "migscope_build_info",
];

fn contrib(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("contrib")
        .join(rel)
}

fn read(rel: &str) -> String {
    let p = contrib(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The series names a metric may appear under in a query.
fn known_series() -> HashSet<String> {
    let mut s = HashSet::new();
    for &(name, histogram) in METRICS {
        if histogram {
            for suffix in ["_bucket", "_sum", "_count"] {
                s.insert(format!("{name}{suffix}"));
            }
        } else {
            s.insert(name.to_string());
        }
    }
    s
}

fn base_metric(series: &str) -> &str {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(b) = series.strip_suffix(suffix) {
            if METRICS.iter().any(|&(n, h)| h && n == b) {
                return b;
            }
        }
    }
    series
}

// ---------------------------------------------------------------- promtool

/// True where promtool runs; otherwise says the test is skipped.
fn have_promtool() -> bool {
    let ok = Command::new("promtool")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("skipped: promtool is not installed (apt-get install prometheus)");
    }
    ok
}

/// Runs promtool with `args` in contrib/prometheus, prints what it said and
/// asserts that it succeeded.
fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(contrib("prometheus"))
        .output()
        .expect("promtool runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("promtool {}:\n{text}", args.join(" "));
    assert!(
        out.status.success(),
        "promtool {} failed:\n{text}",
        args.join(" ")
    );
    text
}

#[test]
fn promtool_check_rules() {
    if !have_promtool() {
        return;
    }
    let out = promtool(&["check", "rules", "migscope.rules.yml"]);
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn promtool_test_rules() {
    if !have_promtool() {
        return;
    }
    let out = promtool(&["test", "rules", "migscope.rules.test.yml"]);
    assert!(out.contains("SUCCESS") && !out.contains("FAILED"), "{out}");
}

#[test]
fn promtool_check_config() {
    if !have_promtool() {
        return;
    }
    let out = promtool(&["check", "config", "prometheus.yml"]);
    // The configuration's rule file is found (next to it) and checked.
    assert!(out.contains("1 rule files found"), "{out}");
    assert!(!out.contains("WARNING"), "{out}");
}

/// Every dashboard query, with Grafana's variables filled in, is valid
/// PromQL: promtool checks them as recording rules.
#[test]
fn promtool_accepts_the_dashboard_queries() {
    if !have_promtool() {
        return;
    }
    let exprs = dashboard_exprs(&dashboard());
    let mut yml = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, (_, expr)) in exprs.iter().enumerate() {
        let e = expr
            .replace("$__rate_interval", "1m")
            .replace("$__interval", "1m")
            .replace("$instance", ".*")
            .replace("$pair", ".*")
            .replace("$phase", ".*");
        yml += &format!(
            "      - record: dashboard:query_{i}\n        expr: '{}'\n",
            e.replace('\'', "''")
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dashboard.rules.yml");
    std::fs::write(&path, &yml).unwrap();
    let out = promtool(&["check", "rules", path.to_str().unwrap()]);
    assert!(
        out.contains(&format!("SUCCESS: {} rules found", exprs.len())),
        "{out}\n{yml}"
    );
}

// ---------------------------------------------------------------- PromQL

/// The series a PromQL expression selects, each with the text of its label
/// matchers: identifiers that are not functions, keywords, label lists
/// (`by (...)`, `on (...)`, ...), strings, durations, numbers or Grafana
/// variables.
fn selectors(expr: &str) -> Vec<(String, String)> {
    const LABEL_LISTS: &[&str] = &[
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    const KEYWORDS: &[&str] = &[
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "atan2",
        "inf",
        "nan",
    ];
    let b = expr.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b':';
    // The index just past the bracket that closes the one at `i`, skipping
    // strings inside.
    let close = |mut i: usize, open: u8, shut: u8| -> usize {
        let mut depth = 0;
        while i < b.len() {
            match b[i] {
                q @ (b'"' | b'\'' | b'`') => {
                    i += 1;
                    while i < b.len() && b[i] != q {
                        i += if b[i] == b'\\' { 2 } else { 1 };
                    }
                }
                c if c == open => depth += 1,
                c if c == shut => {
                    depth -= 1;
                    if depth == 0 {
                        return i + 1;
                    }
                }
                _ => {}
            }
            i += 1;
        }
        panic!("unbalanced {} in {expr:?}", open as char);
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if matches!(c, b'"' | b'\'' | b'`') {
            i += 1;
            while i < b.len() && b[i] != c {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c == b'[' {
            i = close(i, b'[', b']');
        } else if c == b'{' {
            panic!("a selector without a metric name in {expr:?}");
        } else if c == b'$' {
            i += 1;
            while i < b.len() && ident(b[i]) {
                i += 1;
            }
        } else if c.is_ascii_digit() || c == b'.' {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == b'_' || c == b':' {
            let start = i;
            while i < b.len() && ident(b[i]) {
                i += 1;
            }
            let word = &expr[start..i];
            let mut j = i;
            while j < b.len() && b[j].is_ascii_whitespace() {
                j += 1;
            }
            let next = b.get(j).copied();
            if LABEL_LISTS.contains(&word) {
                if next == Some(b'(') {
                    i = close(j, b'(', b')');
                }
            } else if next == Some(b'(') || KEYWORDS.contains(&word.to_ascii_lowercase().as_str()) {
                // A function, an aggregation or an operator.
            } else {
                let matchers = if next == Some(b'{') {
                    i = close(j, b'{', b'}');
                    expr[j + 1..i - 1].to_string()
                } else {
                    String::new()
                };
                out.push((word.to_string(), matchers));
            }
        } else {
            i += 1;
        }
    }
    out
}

#[test]
fn selectors_finds_the_series_and_nothing_else() {
    let e = r#"histogram_quantile(0.99, sum by (le, pair) (rate(migscope_checkpoint_downtime_seconds_bucket{pair=~"$pair", kind=~"colo|remus"}[$__rate_interval]))) > 1e-3 and on (pair) count without (le) (up offset 5m) * 2"#;
    assert_eq!(
        selectors(e),
        vec![
            (
                "migscope_checkpoint_downtime_seconds_bucket".to_string(),
                r#"pair=~"$pair", kind=~"colo|remus""#.to_string()
            ),
            ("up".to_string(), String::new()),
        ]
    );
}

// ---------------------------------------------------------------- Grafana

fn dashboard() -> serde_json::Value {
    serde_json::from_str(&read("grafana/migscope-dashboard.json"))
        .expect("the dashboard is valid JSON")
}

/// All panels, those inside rows included.
fn panels(d: &serde_json::Value) -> Vec<&serde_json::Value> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().expect("panels") {
        out.push(p);
        if let Some(inner) = p["panels"].as_array() {
            out.extend(inner);
        }
    }
    out
}

/// (panel title, expr) of every query of every panel.
fn dashboard_exprs(d: &serde_json::Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in panels(d) {
        for t in p["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().expect("a target has an expr");
            out.push((
                p["title"].as_str().unwrap_or("").to_string(),
                expr.to_string(),
            ));
        }
    }
    out
}

#[test]
fn dashboard_is_a_grafana_dashboard_with_a_pair_variable() {
    let d = dashboard();
    let schema = d["schemaVersion"].as_u64().expect("schemaVersion");
    assert!(schema >= 36, "schemaVersion {schema}");
    assert!(d["uid"].is_string() && d["title"].is_string());

    let vars = d["templating"]["list"].as_array().expect("templating.list");
    let pair = vars
        .iter()
        .find(|v| v["name"] == "pair")
        .expect("a `pair` template variable");
    assert_eq!(pair["type"], "query");
    let q = pair["query"]["query"]
        .as_str()
        .or_else(|| pair["query"].as_str())
        .expect("pair's query");
    assert!(
        q.starts_with("label_values(") && q.trim_end().ends_with(", pair)"),
        "{q}"
    );
    assert!(vars
        .iter()
        .any(|v| v["type"] == "datasource" && v["query"] == "prometheus"));

    let mut ids = HashSet::new();
    for p in panels(&d) {
        let title = p["title"].as_str().unwrap_or("");
        assert!(
            ids.insert(p["id"].as_u64().expect("panel id")),
            "id of {title}"
        );
        let g = &p["gridPos"];
        let (x, w) = (g["x"].as_u64().unwrap(), g["w"].as_u64().unwrap());
        assert!(
            x + w <= 24 && g["h"].as_u64().unwrap() > 0,
            "gridPos of {title}"
        );
        if p["type"] != "row" {
            assert_eq!(p["datasource"]["uid"], "${datasource}", "{title}");
            assert!(!p["targets"].as_array().unwrap().is_empty(), "{title}");
            assert!(p["description"].is_string(), "{title} has no description");
        }
    }
}

#[test]
fn dashboard_has_the_phase_heatmap_and_the_asked_panels() {
    let d = dashboard();
    let heatmap = panels(&d)
        .into_iter()
        .find(|p| p["type"] == "heatmap")
        .expect("a heatmap panel");
    let t = &heatmap["targets"][0];
    assert_eq!(t["format"], "heatmap");
    let expr = t["expr"].as_str().unwrap();
    assert!(
        expr.contains("migscope_checkpoint_phase_seconds_bucket") && expr.contains("by (le)"),
        "{expr}"
    );
    assert_eq!(heatmap["options"]["calculate"], false);

    let exprs: Vec<String> = dashboard_exprs(&d).into_iter().map(|(_, e)| e).collect();
    let has = |needle: &str| exprs.iter().any(|e| e.contains(needle));
    assert!(has("histogram_quantile(0.5, sum by (le, pair"));
    assert!(has("histogram_quantile(0.99, sum by (le, pair"));
    assert!(has("sum by (phase, owner) (increase(migscope_stalls_total"));
    assert!(panels(&d).iter().any(|p| p["type"] == "gauge"
        && p["targets"][0]["expr"]
            .as_str()
            .unwrap()
            .contains("migscope_stall_waiting_seconds")));
    for m in [
        "migscope_capture_dropped_packets_total",
        "migscope_tcp_retransmissions_total",
        "migscope_tcp_zero_window_seconds_total",
    ] {
        assert!(has(m), "no panel shows {m}");
    }
}

/// Each query names only series the monitor exports, and filters the
/// per-pair ones by the dashboard's variables.
#[test]
fn dashboard_queries_use_only_exported_metrics() {
    let known = known_series();
    let exprs = dashboard_exprs(&dashboard());
    assert!(exprs.len() > 10);
    for (title, expr) in &exprs {
        let sel = selectors(expr);
        assert!(!sel.is_empty(), "{title}: no metric in {expr}");
        for (series, matchers) in sel {
            assert!(
                known.contains(&series),
                "{title}: {series} is not a metric of migscope monitor ({expr})"
            );
            assert!(
                matchers.contains(r#"instance=~"$instance""#),
                "{title}: {series} is not filtered by $instance"
            );
            if !SENSOR_METRICS.contains(&base_metric(&series)) {
                assert!(
                    matchers.contains(r#"pair=~"$pair""#),
                    "{title}: {series} is not filtered by $pair"
                );
            }
        }
    }
}

// ---------------------------------------------------------------- rules

/// `migscope_*` names in a text (recording rules' `level:metric:op` names
/// excepted).
fn metric_names_in(text: &str) -> BTreeSet<String> {
    let b = text.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b':';
    let mut out = BTreeSet::new();
    let mut from = 0;
    while let Some(k) = text[from..].find("migscope_") {
        let start = from + k;
        let mut end = start;
        while end < b.len() && ident(b[end]) {
            end += 1;
        }
        from = end;
        if start > 0 && ident(b[start - 1]) {
            continue;
        }
        let name = &text[start..end];
        if !name.contains(':') {
            out.insert(name.to_string());
        }
    }
    out
}

#[test]
fn rules_and_their_tests_name_only_exported_metrics() {
    let known = known_series();
    for f in [
        "prometheus/migscope.rules.yml",
        "prometheus/migscope.rules.test.yml",
    ] {
        let names = metric_names_in(&read(f));
        assert!(!names.is_empty(), "{f}");
        for n in names {
            assert!(
                known.contains(&n),
                "{f}: {n} is not a metric of migscope monitor"
            );
        }
    }
}

/// The alerts asked for exist, each with a summary, a description and a
/// `for:`, and the unit tests both fire it and keep it quiet.
#[test]
fn every_alert_is_tested_firing_and_not_firing() {
    let rules = read("prometheus/migscope.rules.yml");
    let tests = read("prometheus/migscope.rules.test.yml");
    let alerts: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert:"))
        .map(str::trim)
        .collect();
    for want in [
        "MigscopeCheckpointStalled",
        "MigscopeDowntimeBudget",
        "MigscopeKernelDrops",
        "MigscopePairStoppedCheckpointing",
    ] {
        assert!(alerts.contains(&want), "no alert {want}");
    }
    // Each alert's block, up to the next rule.
    let blocks: Vec<&str> = rules.split("- alert:").skip(1).collect();
    assert_eq!(blocks.len(), alerts.len());
    for (name, block) in alerts.iter().zip(&blocks) {
        let block = block.split("- record:").next().unwrap();
        for key in ["for:", "summary:", "description:", "severity:"] {
            assert!(block.contains(key), "{name} has no {key}");
        }
    }
    let lines: Vec<&str> = tests.lines().map(str::trim).collect();
    for name in &alerts {
        let (mut quiet, mut fires) = (false, false);
        for (i, l) in lines.iter().enumerate() {
            if *l == format!("alertname: {name}") {
                match lines.get(i + 1) {
                    Some(&"exp_alerts: []") => quiet = true,
                    Some(&"exp_alerts:") => fires = true,
                    other => panic!("{name}: alertname followed by {other:?}"),
                }
            }
        }
        assert!(
            quiet && fires,
            "{name}: fires {fires}, tested quiet {quiet}"
        );
    }
    // The downtime alert is tested on a histogram's buckets.
    assert!(tests.contains("migscope_checkpoint_downtime_seconds_bucket{"));
}

// ---------------------------------------------------------------- the rest

#[test]
fn listen_address_is_the_same_everywhere() {
    let port = LISTEN.rsplit(':').next().unwrap();
    assert!(port.parse::<u16>().is_ok(), "{LISTEN}");

    let unit = read("systemd/migscope-monitor.service");
    assert!(
        unit.lines()
            .any(|l| l.trim() == format!("Environment=MIGSCOPE_LISTEN={LISTEN}")),
        "migscope-monitor.service: Environment=MIGSCOPE_LISTEN={LISTEN}"
    );
    assert!(unit.contains("--listen ${MIGSCOPE_LISTEN}"));

    let prom = read("prometheus/prometheus.yml");
    assert!(
        prom.contains(&format!("replacement: '$1:{port}'")),
        "prometheus.yml's relabelling must add port {port}"
    );
    let readme = read("README.md");
    assert!(readme.contains(&format!("--listen {LISTEN}")), "README.md");
    // Nowhere another port for the sensors.
    for (f, text) in [
        ("prometheus.yml", &prom),
        ("README.md", &readme),
        ("unit", &unit),
    ] {
        for (k, _) in text.match_indices(":99") {
            let digits: String = text[k + 1..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            assert_eq!(digits, port, "{f} mentions port {digits}");
        }
    }
}

#[test]
fn systemd_unit_runs_the_monitor_unprivileged_with_two_capabilities() {
    let unit = read("systemd/migscope-monitor.service");
    let value = |key: &str| -> String {
        unit.lines()
            .filter_map(|l| l.strip_prefix(&format!("{key}=")))
            .next_back()
            .unwrap_or_else(|| panic!("no {key}="))
            .to_string()
    };
    let exec = value("ExecStart");
    for arg in [
        "/migscope monitor ",
        "-i ${MIGSCOPE_IFACE}",
        "-f ${MIGSCOPE_FILTER}",
        "--listen ${MIGSCOPE_LISTEN}",
        "--events /var/log/migscope/events.jsonl",
    ] {
        assert!(exec.contains(arg), "ExecStart has no {arg:?}: {exec}");
    }
    assert!(unit.contains("Environment=MIGSCOPE_FILTER=tcp\n"));
    let user = value("User");
    assert!(!user.is_empty() && user != "root", "User={user}");
    assert_eq!(value("AmbientCapabilities"), "CAP_NET_RAW CAP_NET_ADMIN");
    assert_eq!(value("CapabilityBoundingSet"), "CAP_NET_RAW CAP_NET_ADMIN");
    assert_eq!(value("NoNewPrivileges"), "yes");
    assert_eq!(value("ProtectSystem"), "strict");
    assert_eq!(value("LogsDirectory"), "migscope");
    assert!(!unit
        .lines()
        .any(|l| l.starts_with("PrivateUsers=") || l.starts_with("PrivateNetwork=")));
    assert!(unit.contains("setcap cap_net_raw,cap_net_admin=eip /usr/local/bin/migscope"));

    // systemd's own check, where it is installed (the binary is replaced by
    // one that exists here).
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped systemd-analyze verify: systemd is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("migscope-monitor.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/migscope monitor", "/bin/true monitor"),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "systemd-analyze verify:\n{text}");
}

#[test]
fn readme_describes_every_file() {
    let readme = read("README.md");
    for f in [
        "prometheus/migscope.rules.yml",
        "prometheus/migscope.rules.test.yml",
        "prometheus/prometheus.yml",
        "grafana/migscope-dashboard.json",
        "systemd/migscope-monitor.service",
    ] {
        assert!(contrib(f).exists(), "{f}");
        assert!(readme.contains(f), "README.md does not describe {f}");
    }
}
