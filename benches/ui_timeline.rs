//! Rendering cost of the timeline and sessions views over a long session:
//! 125,000 COLO checkpoints (1,000,000 records), built through the model's
//! observer interface. A frame must cost the same whatever the session's
//! length (under 5 ms), because only visible rows are built and stalls and
//! histograms are cached.

use criterion::{criterion_group, criterion_main, Criterion};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

use migscope::decode::info::Info;
use migscope::decode::libxc::PfnSummary;
use migscope::decode::libxl::ControlId;
use migscope::decode::{Direction, Event, Item, ItemKind, Layer, LibxcType, LibxlType, RecordType};
use migscope::model::{Model, Thresholds};
use migscope::session::{Observer, Session};
use migscope::tcp::Endpoint;
use migscope::ui::{render, App, Key, Progress, Theme};

fn item(layer: Layer, t: RecordType, info: Info) -> Event {
    Event::Item(Item {
        offset: 0,
        wire_len: 16,
        layer,
        kind: ItemKind::Record(t),
        body_length: 8,
        info,
        lost: 0,
    })
}

fn state(id: ControlId) -> Event {
    item(
        Layer::Libxl,
        RecordType::Libxl(LibxlType::CheckpointState),
        Info::CheckpointState { control_id: id },
    )
}

fn long_session(checkpoints: u64) -> Model {
    let mut m = Model::new();
    let ep = |port| Endpoint {
        ip: "10.0.0.1".parse().unwrap(),
        port,
    };
    m.start(1_000_000_000);
    m.session(&Session {
        family: migscope::decode::Family::Xen,
        id: 0,
        conn: 0,
        primary: ep(1),
        secondary: ep(2),
        recognised_by: "libxl",
        mid_stream: false,
        syn_seen: true,
        first_ts: 1_000_000_000,
        first_frame: 1,
        back_channel: None,
        multifd_of: None,
    });
    let (f, b) = (Direction::Forward, Direction::Reverse);
    let ms = 1_000_000u64;
    let page = || {
        Info::PageData(Box::new(PfnSummary {
            count: 10,
            ..PfnSummary::default()
        }))
    };
    for k in 0..checkpoints {
        let t = 1_000_000_000 + k * 100 * ms;
        let slow = if k % 1000 == 500 { 2000 * ms } else { 0 };
        m.decoded(0, f, t, &[state(ControlId::New)]);
        m.decoded(0, b, t + 8 * ms, &[state(ControlId::SvmSuspended)]);
        m.decoded(
            0,
            b,
            t + 10 * ms,
            &[item(
                Layer::Libxc,
                RecordType::Libxc(LibxcType::CheckpointDirtyPfnList),
                Info::DirtyPfnList(Box::default()),
            )],
        );
        m.decoded(
            0,
            f,
            t + 11 * ms,
            &[item(
                Layer::Libxc,
                RecordType::Libxc(LibxcType::PageData),
                page(),
            )],
        );
        m.decoded(
            0,
            f,
            t + 12 * ms,
            &[item(
                Layer::Libxc,
                RecordType::Libxc(LibxcType::Checkpoint),
                Info::Empty,
            )],
        );
        m.decoded(
            0,
            f,
            t + 27 * ms,
            &[item(
                Layer::Libxl,
                RecordType::Libxl(LibxlType::CheckpointEnd),
                Info::Empty,
            )],
        );
        m.decoded(0, b, t + 47 * ms + slow, &[state(ControlId::SvmReady)]);
        m.decoded(0, b, t + 50 * ms + slow, &[state(ControlId::SvmResumed)]);
    }
    m
}

fn bench(c: &mut Criterion) {
    let m = long_session(125_000);
    let p = Progress {
        source: "bench".into(),
        done: true,
        ..Progress::default()
    };
    let mut term = Terminal::new(TestBackend::new(120, 40)).unwrap();
    let mut app = App::new(Thresholds::default());
    app.key(Key::Enter, &m, true);
    // Somewhere in the middle, on a stall.
    for _ in 0..40 {
        app.key(Key::Char('n'), &m, true);
    }
    let theme = Theme { color: true };
    c.bench_function(
        "timeline frame, 125k checkpoints (1M records), 120x40",
        |bch| {
            bch.iter(|| {
                term.draw(|f| render::draw(f, &mut app, &m, &p, theme))
                    .unwrap();
            })
        },
    );
    app.key(Key::Esc, &m, true);
    c.bench_function("sessions frame, 125k checkpoints, 120x40", |bch| {
        bch.iter(|| {
            term.draw(|f| render::draw(f, &mut app, &m, &p, theme))
                .unwrap();
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
