//! The terminal UI rendered into ratatui's `TestBackend` from the shipped
//! captures, compared with `insta` snapshots (glyph theme, as with
//! NO_COLOR), at 80x24 and 120x40; and the keys that move between views.

use insta::assert_snapshot;
use ratatui::backend::TestBackend;
use ratatui::Terminal;

use migscope::capture::{FileSource, Next, Source};
use migscope::model::{Model, Thresholds};
use migscope::present::finding_text;
use migscope::session::{Analyzer, Config};
use migscope::ui::app::checkpoint_at;
use migscope::ui::{render, Action, App, Key, Progress, Theme, View};

fn model(path: &str) -> Model {
    let mut src = Source::File(FileSource::open(std::path::Path::new(path)).unwrap());
    let mut an = Analyzer::new(Config::default(), Model::with_record_index());
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

/// Regression: at 80x24 the ladder could not scroll (Up/Down moved to
/// another checkpoint), so the verdict and the TCP evidence of a stall
/// were below the cut; `n` with the ladder open goes to the next stall.
#[test]
fn ladder_scrolls_to_its_evidence_and_n_goes_to_the_next_stall() {
    let m = model("captures/colo-demo.pcap");
    let p = progress("captures/colo-demo.pcap");
    let mut app = App::new(Thresholds::default());
    keys(&mut app, &m, &[Key::Enter, Key::Char('n'), Key::Enter]);
    let first = screen(&mut app, &m, &p, 80, 24);
    assert!(first.contains("Checkpoint 23 ladder"), "{first}");
    assert!(first.contains("apply 2.300 s"), "the verdict comes first");
    assert!(!first.contains("tcp: "), "evidence is below the cut");
    let row = app.row;
    keys(&mut app, &m, &[Key::Down, Key::Down]);
    assert_eq!(app.row, row, "Down scrolls the ladder, not the timeline");
    assert_eq!(app.ladder_scroll, 2);
    keys(&mut app, &m, &[Key::End]);
    let end = screen(&mut app, &m, &p, 80, 24);
    assert_snapshot!("ladder_end_80x24", end);
    assert!(end.contains("tcp: secondary silent for 2.260 s"), "{end}");
    keys(&mut app, &m, &[Key::Home]);
    assert_eq!(app.ladder_scroll, 0);
    // the wheel scrolls it too
    app.wheel(&m, 3);
    assert_eq!(app.ladder_scroll, 3);
    // n: the next stall, ladder still open, from its top
    keys(&mut app, &m, &[Key::Char('n')]);
    assert!(app.ladder);
    assert_eq!(app.ladder_scroll, 0);
    let next = screen(&mut app, &m, &p, 80, 24);
    assert!(next.contains("Checkpoint 31 ladder"), "{next}");
    assert!(next.contains("memory 1.200 s"), "{next}");
    // r: the Records view filtered to that checkpoint
    keys(&mut app, &m, &[Key::Char('r')]);
    assert_eq!(app.view, View::Records);
    assert!(!app.ladder);
    let rec = screen(&mut app, &m, &p, 80, 24);
    assert!(rec.contains("ckpt:31"), "{rec}");
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
    for (w, h) in [
        (1, 1),
        (10, 3),
        (19, 5),
        (20, 6),
        (40, 8),
        (30, 12),
        (60, 18),
    ] {
        for mm in [&m, &empty] {
            let mut app = App::new(Thresholds::default());
            screen(&mut app, mm, &p, w, h);
            keys(&mut app, mm, &[Key::Enter, Key::Enter]);
            screen(&mut app, mm, &p, w, h);
            keys(&mut app, mm, &[Key::Esc, Key::Char('3')]);
            screen(&mut app, mm, &p, w, h);
            keys(&mut app, mm, &[Key::Down, Key::End, Key::Enter]);
            keys(
                &mut app,
                mm,
                &[Key::Char('4'), Key::Char('/'), Key::Char('x')],
            );
            screen(&mut app, mm, &p, w, h);
        }
    }
    // Reading in progress: the gauge with bytes, packets and time left.
    let mut app = App::new(Thresholds::default());
    let s = screen(&mut app, &empty, &p, 80, 24);
    assert!(s.contains("reading 300 B of 1000 B"), "{s}");
}

#[test]
fn tcp_view_of_the_zero_window_capture() {
    let path = "captures/colo-zero-window.pcap.gz";
    let m = model(path);
    let p = progress(path);
    for (w, h) in [(80, 24), (120, 40)] {
        let mut app = App::new(Thresholds::default());
        keys(&mut app, &m, &[Key::Char('3')]);
        assert_eq!(app.view, View::Tcp);
        assert_snapshot!(
            format!("tcp_zero_window_{w}x{h}"),
            screen(&mut app, &m, &p, w, h)
        );
    }
    // The list has what the issue asks for: the zero-window episode, the
    // gaps and the decoder's diagnostic.
    let mut app = App::new(Thresholds::default());
    app.capture_ended = true;
    let list = app.expert(&m);
    let has = |s: &str| list.iter().any(|e| finding_text(e).contains(s));
    assert!(has("zero window"), "{list:#?}");
    assert!(has("capture gap"), "{list:#?}");
    assert!(has("decoder at offset"), "{list:#?}");
    assert!(list.windows(2).all(|x| x[0].ts <= x[1].ts), "by time");
}

#[test]
fn tab_cycles_the_views_and_enter_on_tcp_goes_to_the_checkpoint() {
    let m = model("captures/colo-zero-window.pcap.gz");
    let mut app = App::new(Thresholds::default());
    let mut seen = Vec::new();
    for _ in 0..4 {
        keys(&mut app, &m, &[Key::Tab]);
        seen.push(app.view);
    }
    assert_eq!(
        seen,
        [View::Timeline, View::Tcp, View::Records, View::Sessions]
    );
    keys(&mut app, &m, &[Key::BackTab, Key::BackTab]);
    assert_eq!(app.view, View::Tcp);
    // Down to the zero-window entry, Enter: the timeline shows the
    // checkpoint that contains its time.
    let list = app.expert(&m);
    let i = list
        .iter()
        .position(|e| finding_text(e).contains("zero window"))
        .unwrap();
    for _ in 0..i {
        keys(&mut app, &m, &[Key::Down]);
    }
    assert_eq!(app.tcp_row, i);
    keys(&mut app, &m, &[Key::Enter]);
    assert_eq!(app.view, View::Timeline);
    let s = &m.sessions[0];
    let pos = app.selected(&m).unwrap();
    assert_eq!(Some(pos), checkpoint_at(s, list[i].ts));
    let c = &App::checkpoints(s)[pos];
    let start = c.events.iter().flatten().chain(&c.first_record).min();
    assert!(*start.unwrap() <= list[i].ts);
    keys(&mut app, &m, &[Key::Char('3'), Key::Up, Key::Esc]);
    assert_eq!(app.view, View::Sessions);
}

/// Start of a checkpoint: its first event or record.
fn start_of(c: &migscope::model::Checkpoint) -> u64 {
    *c.events
        .iter()
        .flatten()
        .chain(&c.first_record)
        .min()
        .unwrap()
}

#[test]
fn checkpoint_at_a_time_is_the_one_whose_span_contains_it() {
    let m = model("captures/colo-demo.pcap");
    let s = &m.sessions[0];
    let cps = App::checkpoints(s);
    assert!(cps.len() > 3);
    for (i, c) in cps.iter().enumerate() {
        let t0 = start_of(c);
        assert_eq!(checkpoint_at(s, t0), Some(i), "its own start");
        // Just before the next checkpoint starts it is still this one.
        if let Some(n) = cps.get(i + 1) {
            assert_eq!(checkpoint_at(s, start_of(n) - 1), Some(i));
        }
        // Its last event is inside its span.
        assert_eq!(checkpoint_at(s, c.last_event().unwrap_or(t0)), Some(i));
    }
    assert_eq!(checkpoint_at(s, 0), Some(0), "before the first: the first");
    assert_eq!(
        checkpoint_at(s, u64::MAX),
        Some(cps.len() - 1),
        "after the latest: the latest"
    );
    let mut none = s.clone();
    none.checkpoints.clear();
    assert_eq!(checkpoint_at(&none, t_mid(s)), None, "no checkpoint");
}

fn t_mid(s: &migscope::model::SessionModel) -> u64 {
    start_of(&App::checkpoints(s)[1])
}

#[test]
fn jump_to_time_selects_the_row_in_the_current_order() {
    let m = model("captures/colo-demo.pcap");
    let s = &m.sessions[0];
    let cps = App::checkpoints(s);
    let target = cps.len() / 2;
    let t = start_of(&cps[target]) + 1;
    // Index order: the row is the checkpoint's position.
    let mut app = App::new(Thresholds::default());
    app.view = View::Tcp;
    assert!(app.jump_to_time(&m, t));
    assert_eq!((app.view, app.row), (View::Timeline, target));
    assert!(app.row >= app.scroll && app.row < app.scroll + app.page);
    // Sorted by downtime: whatever row holds that checkpoint.
    let mut app = App::new(Thresholds::default());
    keys(&mut app, &m, &[Key::Char('2'), Key::Char('s')]);
    assert!(app.jump_to_time(&m, t));
    assert_eq!(app.selected(&m), Some(target));
    assert_ne!(app.row, target, "the sort moved it");
    // No checkpoint (here: no session): a message, and the view stays.
    let mut app = App::new(Thresholds::default());
    app.view = View::Tcp;
    assert!(!app.jump_to_time(&Model::new(), 1));
    assert_eq!(app.view, View::Tcp);
    assert!(app.message.is_some());
}

#[test]
fn a_plain_migration_shows_its_live_rounds() {
    let m = model("captures/plain-xl.pcap");
    let p = progress("captures/plain-xl.pcap");
    let mut app = App::new(Thresholds::default());
    keys(&mut app, &m, &[Key::Enter]);
    assert_snapshot!("plain_rounds_80x24", screen(&mut app, &m, &p, 80, 24));
}

/// Reads the selected record's bytes the way the UI's worker does, but here.
fn load_bytes(app: &mut App, m: &Model, path: &str) {
    let req = app
        .records
        .request(m, app.session)
        .expect("a record to read");
    let rec = app.records.selected(m, app.session).unwrap();
    let f = migscope::ui::refetch::fetch(
        std::path::Path::new(path),
        &Config::default(),
        &req,
        &|| false,
    )
    .unwrap()
    .expect("not cancelled");
    assert_eq!(f.missing, 0, "the demo capture lost nothing");
    app.records.receive(m, app.session, rec, Ok(f));
}

fn type_keys(app: &mut App, m: &Model, text: &str) {
    for c in text.chars() {
        keys(app, m, &[Key::Char(c)]);
    }
}

#[test]
fn records_view_of_the_demo_capture() {
    let path = "captures/colo-demo.pcap";
    let m = model(path);
    let p = progress(path);
    let idx = &m.sessions[0].record_index;
    // The latest of each type: its summary is still kept.
    let last = |name: &str| {
        idx.entries()
            .iter()
            .rposition(|e| e.type_name() == name)
            .unwrap()
    };
    for (w, h) in [(80, 24), (120, 40)] {
        for name in ["PAGE_DATA", "CHECKPOINT_STATE"] {
            let mut app = App::new(Thresholds::default());
            keys(&mut app, &m, &[Key::Char('4')]);
            assert_eq!(app.view, View::Records);
            app.records.row = last(name);
            load_bytes(&mut app, &m, path);
            if name == "PAGE_DATA" {
                // Focus the bytes and scroll to the first page and its pfn.
                keys(&mut app, &m, &[Key::Right, Key::Right]);
                keys(&mut app, &m, &[Key::Down; 7]);
            }
            assert_snapshot!(
                format!("records_{}_{w}x{h}", name.to_lowercase()),
                screen(&mut app, &m, &p, w, h)
            );
        }
        let mut app = App::new(Thresholds::default());
        keys(&mut app, &m, &[Key::Char('4'), Key::Char('/')]);
        type_keys(&mut app, &m, "type:CHECKPOINT_STATE dir:back");
        keys(&mut app, &m, &[Key::Enter]);
        assert!(!app.records.editing());
        let f = app.records.filtered.as_ref().expect("filter applied");
        assert!(!f.matches.is_empty());
        for &i in &f.matches {
            let e = idx.get(i as usize).unwrap();
            assert_eq!(e.type_name(), "CHECKPOINT_STATE");
            assert_eq!(e.dir, migscope::decode::Direction::Reverse);
        }
        keys(&mut app, &m, &[Key::Down, Key::Down]);
        load_bytes(&mut app, &m, path);
        assert_snapshot!(
            format!("records_filtered_{w}x{h}"),
            screen(&mut app, &m, &p, w, h)
        );
    }
}

#[test]
fn records_keys_filter_line_and_panes() {
    let m = model("captures/colo-demo.pcap");
    let mut app = App::new(Thresholds::default());
    keys(&mut app, &m, &[Key::Tab, Key::Tab, Key::Tab]);
    assert_eq!(
        app.view,
        View::Records,
        "Tab: sessions, timeline, tcp, records"
    );
    keys(&mut app, &m, &[Key::Tab]);
    assert_eq!(app.view, View::Sessions);
    keys(&mut app, &m, &[Key::BackTab]);
    assert_eq!(app.view, View::Records);
    let n = m.sessions[0].record_index.len();
    keys(&mut app, &m, &[Key::End]);
    assert_eq!(app.records.selected(&m, 0), Some(n - 1));
    keys(
        &mut app,
        &m,
        &[Key::Home, Key::Down, Key::PageDown, Key::PageUp],
    );
    assert_eq!(app.records.selected(&m, 0), Some(1));
    // In the filter line, q is text and Esc cancels.
    keys(&mut app, &m, &[Key::Char('/')]);
    type_keys(&mut app, &m, "qx");
    keys(&mut app, &m, &[Key::Backspace]);
    assert_eq!(app.records.input.as_deref(), Some("q"));
    keys(&mut app, &m, &[Key::Esc]);
    assert!(!app.records.editing() && app.records.filtered.is_none());
    // Regression: a bad filter kept the line open, and it swallowed the
    // view's keys. It closes, says why, and `/` offers the text again.
    keys(&mut app, &m, &[Key::Char('/')]);
    type_keys(&mut app, &m, "dir:up");
    keys(&mut app, &m, &[Key::Enter]);
    assert!(!app.records.editing());
    assert!(
        app.message.as_deref().unwrap().contains("up"),
        "{:?}",
        app.message
    );
    keys(&mut app, &m, &[Key::Char('1')]);
    assert_eq!(app.view, View::Sessions, "view keys work again");
    keys(&mut app, &m, &[Key::Char('4'), Key::Char('/')]);
    assert_eq!(app.records.input.as_deref(), Some("dir:up"));
    keys(&mut app, &m, &[Key::Esc, Key::Char('/')]);
    type_keys(&mut app, &m, "ckpt:23 layer:libxc");
    keys(&mut app, &m, &[Key::Enter]);
    let f = app.records.filtered.clone().unwrap();
    assert!(!f.matches.is_empty());
    let idx = &m.sessions[0].record_index;
    assert!(f
        .matches
        .iter()
        .all(|&i| idx.get(i as usize).unwrap().checkpoint() == Some(23)));
    // Focus moves between panes; Up/Down then move in that pane (the
    // details pane's cursor).
    keys(&mut app, &m, &[Key::Right, Key::Down]);
    assert_eq!(app.records.focus, migscope::ui::records::Pane::Details);
    assert_eq!(app.records.details_cursor, 1);
    keys(&mut app, &m, &[Key::Right, Key::Left, Key::Left]);
    assert_eq!(app.records.focus, migscope::ui::records::Pane::List);
    // Esc clears the filter, then leaves the view.
    keys(&mut app, &m, &[Key::Esc]);
    assert!(app.records.filtered.is_none());
    assert_eq!(app.view, View::Records);
    keys(&mut app, &m, &[Key::Esc]);
    assert_eq!(app.view, View::Sessions);
}

#[test]
fn records_details_nodes_expand_and_collapse() {
    let path = "captures/colo-demo.pcap";
    let m = model(path);
    let p = progress(path);
    let mut app = App::new(Thresholds::default());
    // The latest PAGE_DATA: its content is kept, its tree has nodes with children.
    keys(&mut app, &m, &[Key::Char('4'), Key::End]);
    while m.sessions[0].record_index.entries()[app.records.selected(&m, 0).unwrap()].type_name()
        != "PAGE_DATA"
    {
        keys(&mut app, &m, &[Key::Up]);
    }
    let count = |s: &str| -> usize {
        let at = s.find("Details (").expect("the details pane") + "Details (".len();
        s[at..].split(' ').next().unwrap().parse().unwrap()
    };
    let before = count(&screen(&mut app, &m, &p, 120, 40));
    keys(&mut app, &m, &[Key::Right]);
    let mut collapsed = None;
    for _ in 0..40 {
        keys(&mut app, &m, &[Key::Enter]);
        let n = count(&screen(&mut app, &m, &p, 120, 40));
        if n < before {
            collapsed = Some(n);
            break;
        }
        keys(&mut app, &m, &[Key::Down]);
    }
    let n = collapsed.expect("a node collapsed");
    let s = screen(&mut app, &m, &p, 120, 40);
    assert!(s.contains("▸ "), "a collapsed node is marked");
    keys(&mut app, &m, &[Key::Enter]);
    assert_eq!(
        count(&screen(&mut app, &m, &p, 120, 40)),
        before,
        "and expands again"
    );
    assert!(n < before);
}

/// A capture where every packet appears twice (`-i any` over a bridge): the
/// TCP view says so, and calls none of them a retransmission.
#[test]
fn tcp_view_counts_packets_captured_twice() {
    let raw = std::fs::read("captures/colo-demo.pcap").unwrap();
    let mut doubled = raw[..24].to_vec();
    let mut at = 24;
    while at + 16 <= raw.len() {
        let caplen = u32::from_le_bytes(raw[at + 8..at + 12].try_into().unwrap()) as usize;
        let rec = &raw[at..at + 16 + caplen];
        doubled.extend_from_slice(rec);
        doubled.extend_from_slice(rec);
        at += 16 + caplen;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("twice.pcap");
    std::fs::write(&path, doubled).unwrap();
    let path = path.to_str().unwrap();
    let m = model(path);
    let p = progress(path);
    let mut app = App::new(Thresholds::default());
    keys(&mut app, &m, &[Key::Char('3')]);
    let text = screen(&mut app, &m, &p, 160, 40);
    let forward = text
        .lines()
        .position(|l| l.contains("forward  retx 13"))
        .expect(&text);
    assert!(
        text.lines()
            .nth(forward + 1)
            .unwrap()
            .contains("captured twice"),
        "{text}"
    );
}

/// Regression: every view said "no migration found yet" after the whole
/// capture had been read.
#[test]
fn a_capture_without_migrations_says_so_once_read() {
    let empty = Model::new();
    let mut app = App::new(Thresholds::default());
    let reading = Progress {
        source: "x".into(),
        ..Progress::default()
    };
    assert!(screen(&mut app, &empty, &reading, 80, 24).contains("no migration found yet"));
    let done = progress("x");
    for view in ['1', '2', '3', '4'] {
        keys(&mut app, &empty, &[Key::Char(view)]);
        let s = screen(&mut app, &empty, &done, 80, 24);
        assert!(s.contains("no migration found in this capture"), "{s}");
        assert!(!s.contains("yet"), "{s}");
    }
}

/// Regression: the records of a plain migration said "checkpoint: #0" in
/// the details pane; a plain migration has no checkpoints.
#[test]
fn plain_migration_records_belong_to_no_checkpoint() {
    let m = model("captures/plain-xl.pcap");
    let p = progress("captures/plain-xl.pcap");
    let mut app = App::new(Thresholds::default());
    keys(&mut app, &m, &[Key::Char('4'), Key::Down, Key::Down]);
    let s = screen(&mut app, &m, &p, 120, 40);
    assert!(s.contains("checkpoint: none"), "{s}");
    assert!(!s.contains("checkpoint: #"), "{s}");
}

/// Regression: a burst of one retransmission read "1 retransmission over
/// 0 ns"; the demo capture's Expert Info lists single ones plainly.
#[test]
fn a_single_retransmission_reads_plainly() {
    let m = model("captures/colo-demo.pcap");
    let list = migscope::model::expert::findings(&m, 0, &Thresholds::default(), true);
    let texts: Vec<String> = list.iter().map(finding_text).collect();
    let retx: Vec<&str> = texts
        .iter()
        .map(String::as_str)
        .filter(|t| t.contains("retransmission"))
        .collect();
    assert!(!retx.is_empty());
    assert!(retx.iter().all(|t| !t.contains("over 0 ns")), "{retx:?}");
    assert!(retx.contains(&"1 retransmission"), "{retx:?}");
}

/// Regression: the replay footer still said "REPLAY 4x (space pauses)"
/// after the replay had ended.
#[test]
fn the_footer_follows_the_end_of_a_replay() {
    let m = model("captures/colo-demo.pcap");
    let mut app = App::new(Thresholds::default());
    app.replay = Some((4.0, false));
    let running = Progress {
        source: "x".into(),
        ..Progress::default()
    };
    assert!(screen(&mut app, &m, &running, 80, 24).contains("REPLAY 4x (space pauses)"));
    let s = screen(&mut app, &m, &progress("x"), 80, 24);
    assert!(s.contains("REPLAY 4x finished"), "{s}");
    assert!(!s.contains("space pauses"), "{s}");
}

/// A real QEMU 7.2 COLO capture: the timeline lists QEMU's phases and the
/// announced device state, and the stuck checkpoint's ladder shows QEMU's
/// messages and the zero window that owes it to the secondary.
#[test]
fn qemu_colo_timeline_and_ladder_of_the_stuck_capture() {
    let path = "captures/qemu-7.2/colo-stuck.pcap.gz";
    let m = model(path);
    let p = progress(path);
    let mut app = App::new(Thresholds::default());
    keys(&mut app, &m, &[Key::Enter]);
    let timeline = screen(&mut app, &m, &p, 120, 40);
    assert!(
        timeline.contains("[qemu-colo] 21 checkpoints"),
        "{timeline}"
    );
    assert!(
        timeline.contains("device_state") && timeline.contains("12.6 KiB"),
        "{timeline}"
    );
    assert_snapshot!("qemu_colo_timeline_120x40", timeline);
    keys(&mut app, &m, &[Key::Char('n'), Key::Enter]);
    let ladder = screen(&mut app, &m, &p, 120, 40);
    assert!(ladder.contains("Checkpoint 10 ladder"), "{ladder}");
    assert!(
        ladder.contains("VMSTATE_SEND") && ladder.contains("zero window"),
        "{ladder}"
    );
    assert_snapshot!("qemu_colo_ladder_120x40", ladder);
}
