//! Rendering the Records view over a synthetic session of 1,000,000 records
//! into ratatui's `TestBackend`: the frame must cost the same whatever the
//! record count (only visible rows are built).

use criterion::{criterion_group, criterion_main, Criterion};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

use migscope::decode::info::Info;
use migscope::decode::{Direction, Event, Item, ItemKind, Layer, LibxcType, RecordType};
use migscope::model::{Model, Thresholds};
use migscope::session::{Observer, Session};
use migscope::tcp::Endpoint;
use migscope::ui::{render, App, Key, Progress, Theme};

const RECORDS: u64 = 1_000_000;

fn synthetic() -> Model {
    let mut m = Model::with_record_index();
    let ep = |port| Endpoint {
        ip: "10.0.0.1".parse().unwrap(),
        port,
    };
    m.start(0);
    m.session(&Session {
        family: migscope::decode::Family::Xen,
        id: 0,
        conn: 0,
        primary: ep(1000),
        secondary: ep(2000),
        recognised_by: "libxc",
        mid_stream: false,
        syn_seen: true,
        first_ts: 0,
        first_frame: 0,
        back_channel: None,
        multifd_of: None,
    });
    let mut events = Vec::with_capacity(1);
    for i in 0..RECORDS {
        events.clear();
        events.push(Event::Item(Item {
            offset: i * 4120,
            wire_len: 4120,
            layer: Layer::Libxc,
            kind: ItemKind::Record(RecordType::Libxc(LibxcType::PageData)),
            body_length: 4112,
            info: Info::Opaque { len: 4112 },
            lost: 0,
        }));
        m.decoded(0, Direction::Forward, i * 1000, &events);
    }
    m
}

fn bench(c: &mut Criterion) {
    let m = synthetic();
    assert_eq!(m.sessions[0].record_index.len(), RECORDS as usize);
    let p = Progress {
        source: "synthetic".into(),
        done: true,
        ..Progress::default()
    };
    let mut app = App::new(Thresholds::default());
    for k in [Key::Char('4'), Key::End] {
        app.key(k, &m, true);
    }
    let mut t = Terminal::new(TestBackend::new(120, 40)).unwrap();
    let theme = Theme { color: false };
    c.bench_function("records view frame, 1M records, 120x40", |b| {
        b.iter(|| {
            // Alternate positions: old (no kept Info) and recent records.
            app.key(Key::PageUp, &m, true);
            t.draw(|f| render::draw(f, &mut app, &m, &p, theme))
                .unwrap();
        })
    });
    app.key(Key::Char('/'), &m, true);
    for ch in "type:PAGE_DATA".chars() {
        app.key(Key::Char(ch), &m, true);
    }
    let t0 = std::time::Instant::now();
    app.key(Key::Enter, &m, true);
    eprintln!("applying type:PAGE_DATA to 1M records: {:?}", t0.elapsed());
    c.bench_function("records view frame, 1M records filtered, 120x40", |b| {
        b.iter(|| {
            app.key(Key::PageUp, &m, true);
            t.draw(|f| render::draw(f, &mut app, &m, &p, theme))
                .unwrap();
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
