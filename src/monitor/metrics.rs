//! The Prometheus metrics of `migscope monitor` (prometheus-client,
//! OpenMetrics text). Base units, `_total` counters; series are keyed by
//! the pair (primary and secondary hosts), the domain name and the kind,
//! never by port or domid, so a pair that restarts keeps its series and
//! cardinality stays bounded.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use std::sync::atomic::AtomicU64;

/// A session's labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SessionLabels {
    /// "PRIMARY_HOST->SECONDARY_HOST".
    pub pair: String,
    /// The xl domain name ("" when the capture did not show it).
    pub domain: String,
    /// The session's kind ([`crate::model::SessionKind::name`]): colo,
    /// remus, plain, qemu, qemu-colo or unknown.
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    pub pair: String,
    pub domain: String,
    pub kind: String,
    pub phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CompleteLabels {
    pub pair: String,
    pub domain: String,
    pub kind: String,
    /// "true" or "false".
    pub complete: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StallLabels {
    pub pair: String,
    pub domain: String,
    pub kind: String,
    pub phase: String,
    pub owner: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DirLabels {
    pub pair: String,
    pub domain: String,
    pub kind: String,
    /// forward or back.
    pub direction: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: String,
}

/// Buckets of phase durations and downtime: 100 µs to 10 s, 1-2.5-5 steps.
pub const SECONDS_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

fn seconds() -> Histogram {
    Histogram::new(SECONDS_BUCKETS.into_iter())
}

/// Pages per checkpoint: 1 to 4 Mi pages, powers of 4.
fn pages() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        1.0, 4.0, 12,
    ))
}

/// Bytes per checkpoint: 4 KiB to 64 GiB, powers of 4.
fn bytes() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        4096.0, 4.0, 13,
    ))
}

type HistFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Every metric, registered once.
pub struct Metrics {
    pub phase: HistFamily<PhaseLabels>,
    pub downtime: HistFamily<SessionLabels>,
    pub checkpoints: Family<CompleteLabels, Counter>,
    pub stalls: Family<StallLabels, Counter>,
    pub stall_waiting: Family<SessionLabels, Gauge<f64, AtomicU64>>,
    pub pages: HistFamily<SessionLabels>,
    pub bytes: HistFamily<SessionLabels>,
    pub zero_window: Family<DirLabels, Counter<f64, AtomicU64>>,
    pub retransmissions: Family<DirLabels, Counter>,
    pub packets: Counter,
    pub capture_bytes: Counter,
    pub dropped: Counter,
    pub sessions: Gauge,
    pub build: Family<BuildLabels, Gauge>,
}

impl Metrics {
    /// The metrics, registered in `r`.
    pub fn register(r: &mut Registry) -> Metrics {
        let m = Metrics {
            phase: Family::new_with_constructor(seconds as fn() -> Histogram),
            downtime: Family::new_with_constructor(seconds as fn() -> Histogram),
            checkpoints: Family::default(),
            stalls: Family::default(),
            stall_waiting: Family::default(),
            pages: Family::new_with_constructor(pages as fn() -> Histogram),
            bytes: Family::new_with_constructor(bytes as fn() -> Histogram),
            zero_window: Family::default(),
            retransmissions: Family::default(),
            packets: Counter::default(),
            capture_bytes: Counter::default(),
            dropped: Counter::default(),
            sessions: Gauge::default(),
            build: Family::default(),
        };
        r.register(
            "migscope_checkpoint_phase_seconds",
            "Duration of each checkpoint phase (docs/FIGURES.md)",
            m.phase.clone(),
        );
        r.register(
            "migscope_checkpoint_downtime_seconds",
            "Checkpoint downtime: COLO new to svm_resumed, Remus memory + device",
            m.downtime.clone(),
        );
        r.register(
            "migscope_checkpoints",
            "Checkpoints counted, complete or partial",
            m.checkpoints.clone(),
        );
        r.register(
            "migscope_stalls",
            "Slow phases and stalled checkpoints, by phase and owner",
            m.stalls.clone(),
        );
        r.register(
            "migscope_stall_waiting_seconds",
            "How long the open stall has waited (0 when none)",
            m.stall_waiting.clone(),
        );
        r.register(
            "migscope_checkpoint_pages",
            "Pages with data per checkpoint",
            m.pages.clone(),
        );
        r.register(
            "migscope_checkpoint_bytes",
            "Forward bytes per checkpoint",
            m.bytes.clone(),
        );
        r.register(
            "migscope_tcp_zero_window_seconds",
            "Time a side advertised a zero window, by the direction of its packets (back: the secondary could not take the stream)",
            m.zero_window.clone(),
        );
        r.register(
            "migscope_tcp_retransmissions",
            "TCP segments sent again",
            m.retransmissions.clone(),
        );
        r.register(
            "migscope_capture_packets",
            "Packets read",
            m.packets.clone(),
        );
        r.register(
            "migscope_capture_bytes",
            "Bytes of packets read",
            m.capture_bytes.clone(),
        );
        r.register(
            "migscope_capture_dropped_packets",
            "Packets the kernel or the interface dropped before migscope saw them",
            m.dropped.clone(),
        );
        r.register(
            "migscope_sessions",
            "Migration sessions open now",
            m.sessions.clone(),
        );
        r.register("migscope_build_info", "migscope's version", m.build.clone());
        m.build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").into(),
            })
            .set(1);
        m
    }
}
