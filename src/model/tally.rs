//! What each direction of a session counted: stream bytes, records, gaps,
//! decoder diagnostics, TCP trouble and data RTT. One tally, fed by the
//! same methods whoever observes the analysis (the model, and the `-r`
//! summary that prints as it goes).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::decode::{Diagnostic, Severity};
use crate::session::DirectionStats;
use crate::tcp::{GapCause, RttKind, TcpEvent, TcpEventKind};

/// Data RTT samples: count, min, max and sum (ns), for a direction or one
/// bin of its series.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Rtt {
    pub count: u32,
    pub min: u64,
    pub max: u64,
    /// Sum of the samples (ns), for the average.
    pub sum: u64,
}

impl crate::model::series::Merge for Rtt {
    fn merge(&mut self, o: &Self) {
        if o.count == 0 {
            return;
        }
        self.min = if self.count == 0 {
            o.min
        } else {
            self.min.min(o.min)
        };
        self.max = self.max.max(o.max);
        self.count = self.count.saturating_add(o.count);
        self.sum = self.sum.saturating_add(o.sum);
    }
}

impl Rtt {
    pub fn add(&mut self, ns: u64) {
        self.min = if self.count == 0 {
            ns
        } else {
            self.min.min(ns)
        };
        self.max = self.max.max(ns);
        self.count = self.count.saturating_add(1);
        self.sum = self.sum.saturating_add(ns);
    }

    /// Average sample (None without samples).
    pub fn avg(&self) -> Option<u64> {
        self.sum.checked_div(u64::from(self.count))
    }
}

/// One direction's tallies.
#[derive(Debug, Clone, Default)]
pub struct DirTally {
    /// Reassembled stream bytes.
    pub bytes: u64,
    pub records: u64,
    pub gaps: u64,
    pub gap_bytes: u64,
    /// Gaps by cause name.
    pub gap_causes: BTreeMap<&'static str, u64>,
    pub errors: u64,
    pub warnings: u64,
    pub notes: u64,
    /// The first decoder error: "at OFFSET: message".
    pub first_error: Option<String>,
    pub retransmissions: u64,
    pub out_of_order: u64,
    pub dup_acks: u64,
    pub zero_windows: u64,
    pub zero_window_max_ns: u64,
    /// Sum of the zero-window episodes that ended (ns).
    pub zero_window_ns: u64,
    /// Silences of `--idle` or more, and the longest.
    pub idle: u64,
    pub idle_max_ns: u64,
    pub fin: bool,
    pub rst: bool,
    pub rtt_handshake_ns: Option<u64>,
    /// Data RTT of this direction's data.
    pub rtt: Rtt,
    /// TCP counters, once the direction ended.
    pub tcp: Option<DirectionStats>,
}

impl DirTally {
    pub fn bytes(&mut self, n: u64) {
        self.bytes = self.bytes.saturating_add(n);
    }

    pub fn gap(&mut self, len: u64, cause: GapCause) {
        self.gaps += 1;
        self.gap_bytes = self.gap_bytes.saturating_add(len);
        *self.gap_causes.entry(cause.name()).or_default() += 1;
    }

    pub fn item(&mut self) {
        self.records += 1;
    }

    pub fn diagnostic(&mut self, d: &Diagnostic) {
        match d.severity {
            Severity::Error => {
                self.errors += 1;
                if self.first_error.is_none() {
                    self.first_error = Some(format!("at {}: {}", d.offset, d.message));
                }
            }
            Severity::Warning => self.warnings += 1,
            Severity::Note => self.notes += 1,
        }
    }

    pub fn tcp(&mut self, ev: &TcpEvent) {
        match ev.kind {
            TcpEventKind::Retransmission { .. } => self.retransmissions += 1,
            TcpEventKind::OutOfOrder { .. } => self.out_of_order += 1,
            TcpEventKind::DupAck { .. } => self.dup_acks += 1,
            TcpEventKind::ZeroWindowStart => self.zero_windows += 1,
            TcpEventKind::ZeroWindowEnd { duration_ns } => {
                self.zero_window_max_ns = self.zero_window_max_ns.max(duration_ns);
                self.zero_window_ns = self.zero_window_ns.saturating_add(duration_ns);
            }
            TcpEventKind::Idle { duration_ns, .. } => {
                self.idle += 1;
                self.idle_max_ns = self.idle_max_ns.max(duration_ns);
            }
            TcpEventKind::Rtt { sample, ns } => match sample {
                RttKind::Handshake => self.rtt_handshake_ns = Some(ns),
                RttKind::Data => self.rtt.add(ns),
            },
            TcpEventKind::Fin => self.fin = true,
            TcpEventKind::Rst => self.rst = true,
            _ => {}
        }
    }

    pub fn ended(&mut self, stats: &DirectionStats) {
        self.tcp = Some(stats.clone());
    }
}
