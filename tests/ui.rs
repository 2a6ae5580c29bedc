//! The terminal UI rendered into ratatui's `TestBackend` from the shipped
//! captures, compared with `insta` snapshots (glyph theme, as with
//! NO_COLOR), at 80x24 and 120x40; and the keys that move between views.

use insta::assert_snapshot;
use ratatui::backend::TestBackend;
use ratatui::Terminal;

use migscope::capture::{FileSource, Next, Source};
use migscope::model::{Model, Thresholds};
use migscope::pipeline::{Analyzer, Config};
use migscope::ui::{render, Action, App, Key, Progress, Theme, View};

fn model(path: &str) -> Model {
    let mut src = Source::File(FileSource::open(std::path::Path::new(path)).unwrap());
    let mut an = Analyzer::new(Config::default(), Model::new());
    while let Next::Packet(p) = src.next_packet().unwrap() {
        an.packet(&p);
    }
    an.finish();
    an.into_observer()
}

fn progress(source: &str) -> Progress {
    Progress {
        source: source.into(),
        done: true,
        ..Progress::default()
    }
}

fn screen(app: &mut App, m: &Model, p: &Progress, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| render::draw(f, app, m, p, Theme { color: false }))
        .unwrap();
    t.backend().to_string()
}

fn keys(app: &mut App, m: &Model, ks: &[Key]) {
    for &k in ks {
        assert_ne!(app.key(k, m, true), Action::Quit);
    }
}

#[test]
fn sessions_timeline_ladder_and_help_of_the_demo_capture() {
    let m = model("captures/colo-demo.pcap");
    let p = progress("captures/colo-demo.pcap");
    for (w, h) in [(80, 24), (120, 40)] {
        let mut app = App::new(Thresholds::default());
        assert_snapshot!(format!("sessions_{w}x{h}"), screen(&mut app, &m, &p, w, h));
        keys(&mut app, &m, &[Key::Enter]);
        assert_eq!(app.view, View::Timeline);
        assert_snapshot!(format!("timeline_{w}x{h}"), screen(&mut app, &m, &p, w, h));
        // The stall is one key away, and its ladder one more.
        keys(&mut app, &m, &[Key::Char('n'), Key::Enter]);
        assert!(app.ladder);
        assert_snapshot!(format!("ladder_{w}x{h}"), screen(&mut app, &m, &p, w, h));
        keys(&mut app, &m, &[Key::Esc, Key::Char('?')]);
        assert!(app.help && !app.ladder);
        assert_snapshot!(format!("help_{w}x{h}"), screen(&mut app, &m, &p, w, h));
    }
}

#[test]
fn remus_timeline_sorted_by_device_with_time_of_day() {
    let m = model("captures/remus.pcapng");
    let p = progress("captures/remus.pcapng");
    let mut app = App::new(Thresholds::default());
    keys(&mut app, &m, &[Key::Enter, Key::Char('t')]);
    // s cycles index, downtime, suspend, dirty_sync, memory, device
    for _ in 0..5 {
        keys(&mut app, &m, &[Key::Char('s')]);
    }
    assert_snapshot!("remus_by_device_120x40", screen(&mut app, &m, &p, 120, 40));
}

#[test]
fn stall_jumps_sorting_and_quitting() {
    let m = model("captures/colo-demo.pcap");
    let mut app = App::new(Thresholds::default());
    keys(&mut app, &m, &[Key::Enter, Key::Char('n')]);
    let cps = App::checkpoints(&m.sessions[0]);
    let at = |app: &mut App| cps[app.selected(&m).unwrap()].index;
    assert_eq!(at(&mut app), 23, "n goes to the first stall");
    keys(&mut app, &m, &[Key::Char('n')]);
    assert_eq!(at(&mut app), 31);
    keys(&mut app, &m, &[Key::Char('n')]);
    assert_eq!(at(&mut app), 23, "and wraps");
    keys(&mut app, &m, &[Key::Char('N')]);
    assert_eq!(at(&mut app), 31);
    keys(&mut app, &m, &[Key::Char('s'), Key::Home]);
    assert_eq!(
        at(&mut app),
        23,
        "sorted by downtime, the worst comes first"
    );
    keys(&mut app, &m, &[Key::End]);
    assert_eq!(app.row, cps.len() - 1);
    keys(&mut app, &m, &[Key::Esc]);
    assert_eq!(app.view, View::Sessions);
    assert_eq!(app.key(Key::Char('q'), &m, true), Action::Quit);
    assert_eq!(app.key(Key::CtrlC, &m, true), Action::Quit);
    assert_eq!(app.key(Key::Char('e'), &m, true), Action::Export);
}

#[test]
fn tiny_and_empty_screens_do_not_panic() {
    let m = model("captures/colo-demo.pcap");
    let empty = Model::new();
    let p = Progress {
        source: "x".into(),
        total: Some(1000),
        bytes: 300,
        packets: 10,
        ..Progress::default()
    };
    for (w, h) in [(1, 1), (10, 3), (19, 5), (20, 6), (40, 8)] {
        for mm in [&m, &empty] {
            let mut app = App::new(Thresholds::default());
            screen(&mut app, mm, &p, w, h);
            keys(&mut app, mm, &[Key::Enter, Key::Enter]);
            screen(&mut app, mm, &p, w, h);
        }
    }
    // Reading in progress: the gauge with bytes, packets and time left.
    let mut app = App::new(Thresholds::default());
    let s = screen(&mut app, &empty, &p, 80, 24);
    assert!(s.contains("reading 300 B of 1000 B"), "{s}");
}
