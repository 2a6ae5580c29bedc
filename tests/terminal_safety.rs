//! Text from a capture never reaches the terminal unescaped: a domain name
//! with ANSI escape sequences and control characters (carried in the xl
//! config of a synthesized migration) is shown escaped by the text report,
//! the summary, the record listing and the terminal UI.
#![cfg(feature = "synth")]

use std::io::Cursor;

use assert_cmd::Command;
use ratatui::backend::TestBackend;
use ratatui::Terminal;

use migscope::capture::{FileSource, Next, Source};
use migscope::model::{Model, Thresholds};
use migscope::session::{Analyzer, Config};
use migscope::synth::capture::{write_capture, CaptureOptions};
use migscope::synth::Scenario;
use migscope::ui::{render, App, Key, Progress, Theme};

/// Clears the screen, sets the window title, rings the bell, and moves the
/// text direction: all of it must arrive as visible escapes.
const EVIL: &str = "web\u{1b}[2J\u{1b}]0;owned\u{7}\u{202e}x\rz";

fn capture() -> Vec<u8> {
    let s = Scenario::colo()
        .with_xl(true)
        .with_memory(1 << 20)
        .with_checkpoints(2)
        .with_name(EVIL);
    write_capture(&[s], &CaptureOptions::default(), Vec::new())
        .unwrap()
        .0
}

fn assert_clean(what: &str, text: &str) {
    for c in text.chars() {
        assert!(
            !(('\u{202a}'..='\u{202e}').contains(&c) || c.is_control() && c != '\n'),
            "{what} printed the raw character {c:?}"
        );
    }
}

#[test]
fn reports_and_listings_escape_capture_text() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("evil.pcap");
    std::fs::write(&path, capture()).unwrap();
    let p = path.to_str().unwrap();
    for args in [
        vec!["report", p],
        vec!["report", "--format", "csv", p],
        vec!["-r", p],
        vec!["records", "-V", p],
    ] {
        let out = Command::cargo_bin("migscope")
            .unwrap()
            .args(&args)
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        assert_clean(&args.join(" "), &text);
        if args[0] == "report" && args.len() == 2 {
            assert!(text.contains("domain web\\x1b[2J"), "{text}");
        }
    }
    // JSON keeps the escaped form too (and is valid JSON).
    let out = Command::cargo_bin("migscope")
        .unwrap()
        .args(["report", "--format", "json", p])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let name = v["sessions"][0]["domain"]["name"].as_str().unwrap();
    assert_clean("json domain name", name);
}

#[test]
fn the_terminal_ui_escapes_capture_text() {
    let src = FileSource::from_reader(Box::new(Cursor::new(capture())), "evil").unwrap();
    let mut src = Source::File(src);
    let mut an = Analyzer::new(Config::default(), Model::with_record_index());
    while let Next::Packet(pk) = src.next_packet().unwrap() {
        an.packet(&pk);
    }
    an.finish();
    let m = an.into_observer();
    let p = Progress {
        source: "evil".into(),
        done: true,
        ..Progress::default()
    };
    let mut app = App::new(Thresholds::default());
    for keys in [vec![], vec![Key::Char('4')], vec![Key::Home]] {
        for k in keys {
            app.key(k, &m, true);
        }
        let mut t = Terminal::new(TestBackend::new(160, 40)).unwrap();
        t.draw(|f| render::draw(f, &mut app, &m, &p, Theme { color: true }))
            .unwrap();
        let screen = t.backend().to_string();
        assert_clean("the TUI", &screen);
    }
}
