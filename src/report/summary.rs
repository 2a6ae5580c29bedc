//! The capture summary: what `migscope -r CAPTURE` prints. Each migration is
//! announced as soon as it is recognised (so a live or piped capture shows
//! progress at once); at the end, per session and direction: stream bytes,
//! records, gaps, decoder diagnostics and TCP health.

use std::collections::BTreeMap;

pub use crate::model::tally::{DirTally, Rtt};
use std::io::{self, Write};

use crate::decode::{Direction, Event};
use crate::session::{CaptureStats, DirectionStats, Observer, Session, SessionId};
use crate::tcp::{GapCause, TcpEvent};

/// One session's tallies.
#[derive(Debug, Clone)]
pub struct SessionTally {
    pub session: Session,
    pub dirs: [DirTally; 2],
}

fn idx(d: Direction) -> usize {
    match d {
        Direction::Forward => 0,
        Direction::Reverse => 1,
    }
}

/// An observer that tallies sessions and announces them on `out`.
pub struct Summary<W: Write> {
    out: W,
    pub sessions: Vec<SessionTally>,
    t0: Option<u64>,
    /// The first write error (the analysis goes on; the caller reports it).
    pub error: Option<io::Error>,
}

impl<W: Write> Summary<W> {
    pub fn new(out: W) -> Self {
        Summary {
            out,
            sessions: Vec::new(),
            t0: None,
            error: None,
        }
    }

    /// The capture time shown as 0.
    pub fn set_t0(&mut self, ts: u64) {
        self.t0.get_or_insert(ts);
    }

    fn secs(&self, ts: u64) -> f64 {
        ts.saturating_sub(self.t0.unwrap_or(ts)) as f64 / 1e9
    }

    fn line(&mut self, s: std::fmt::Arguments<'_>) {
        if self.error.is_none() {
            if let Err(e) = self.out.write_fmt(s).and_then(|_| self.out.flush()) {
                self.error = Some(e);
            }
        }
    }

    fn dir(&mut self, s: SessionId, d: Direction) -> Option<&mut DirTally> {
        self.sessions
            .get_mut(s as usize)
            .map(|t| &mut t.dirs[idx(d)])
    }

    /// Writes the end-of-capture report.
    pub fn report(&mut self, stats: &CaptureStats) -> io::Result<()> {
        let out = &mut self.out;
        let dur = stats
            .first_ts
            .map_or(0.0, |f| stats.last_ts.saturating_sub(f) as f64 / 1e9);
        writeln!(out)?;
        writeln!(
            out,
            "Capture: {} packets, {} in {:.3} s; {} TCP connections, {} migration session{}",
            stats.packets,
            human_bytes(stats.bytes),
            dur,
            stats.connections,
            self.sessions.len(),
            if self.sessions.len() == 1 { "" } else { "s" }
        )?;
        if stats.malformed_packets > 0 {
            let first = stats
                .first_malformed
                .as_ref()
                .map(|(f, why)| format!(" (first: frame {f}, {why})"))
                .unwrap_or_default();
            writeln!(
                out,
                "  {} malformed packets{first}",
                stats.malformed_packets
            )?;
        }
        for (link, n) in &stats.unsupported {
            writeln!(
                out,
                "  {n} packets on an unsupported link type ({link}) were skipped"
            )?;
        }
        if stats.ip_fragments > 0 {
            writeln!(
                out,
                "  {} IP fragments were not reassembled",
                stats.ip_fragments
            )?;
        }
        if stats.snapped_bytes > 0 {
            writeln!(
                out,
                "  {} of TCP payload were cut by the snap length (capture with -s 0 to keep them)",
                human_bytes(stats.snapped_bytes)
            )?;
        }
        if stats.ssh_connections > 0 {
            writeln!(out, "  {} SSH connection{} (xl's default transport is ssh: such migrations are encrypted; use xl migrate -s with a plaintext transport to inspect them)",
                stats.ssh_connections, if stats.ssh_connections == 1 { "" } else { "s" })?;
        }
        for t in &self.sessions {
            let s = &t.session;
            writeln!(out)?;
            writeln!(
                out,
                "Session {}: {} -> {}  ({}{}), first packet: frame {}",
                s.id,
                s.primary,
                s.secondary,
                s.recognised_by,
                if s.mid_stream {
                    ", capture starts mid-stream"
                } else {
                    ""
                },
                s.first_frame
            )?;
            if let Some(bc) = &s.back_channel {
                writeln!(
                    out,
                    "  back channel on its own connection: {} -> {}",
                    bc.from, bc.to
                )?;
            }
            for (d, name) in [
                (Direction::Forward, "forward"),
                (Direction::Reverse, "reverse"),
            ] {
                let x = &t.dirs[idx(d)];
                let packets = x.tcp.as_ref().map_or(0, |t| t.packets);
                writeln!(
                    out,
                    "  {name:<8} {} of stream in {} packets, {} records; {} gap{} ({} missing){}",
                    human_bytes(x.bytes),
                    packets,
                    x.records,
                    x.gaps,
                    if x.gaps == 1 { "" } else { "s" },
                    human_bytes(x.gap_bytes),
                    causes(&x.gap_causes)
                )?;
                if x.errors + x.warnings > 0 {
                    writeln!(
                        out,
                        "           decoder: {} errors, {} warnings{}",
                        x.errors,
                        x.warnings,
                        x.first_error
                            .as_ref()
                            .map(|e| format!("; first: {e}"))
                            .unwrap_or_default()
                    )?;
                }
                let mut tcp = Vec::new();
                if let Some(ts) = &x.tcp {
                    let r = &ts.reassembly;
                    if r.retransmitted_segments > 0 {
                        tcp.push(format!(
                            "{} retransmissions ({} bytes{})",
                            r.retransmitted_segments,
                            r.retransmitted_bytes,
                            if r.differing_bytes > 0 {
                                format!(", {} DIFFERING from the first copy", r.differing_bytes)
                            } else {
                                String::new()
                            }
                        ));
                    }
                    if r.overflows > 0 {
                        tcp.push(format!("{} out-of-order buffer overflows", r.overflows));
                    }
                    if ts.duplicates > 0 {
                        tcp.push(format!(
                            "{} packet{} captured twice (ignored)",
                            ts.duplicates,
                            if ts.duplicates == 1 { "" } else { "s" }
                        ));
                    }
                    if r.out_of_window > 0 {
                        tcp.push(format!(
                            "{} segment{} outside any window ignored",
                            r.out_of_window,
                            if r.out_of_window == 1 { "" } else { "s" }
                        ));
                    }
                }
                if x.out_of_order > 0 {
                    tcp.push(format!("{} out-of-order", x.out_of_order));
                }
                if x.dup_acks > 0 {
                    tcp.push(format!("{} duplicate ACKs", x.dup_acks));
                }
                if x.zero_windows > 0 {
                    tcp.push(format!(
                        "advertised a zero window {} time{} (longest {:.3} s)",
                        x.zero_windows,
                        if x.zero_windows == 1 { "" } else { "s" },
                        x.zero_window_max_ns as f64 / 1e9
                    ));
                }
                if x.idle > 0 {
                    tcp.push(format!(
                        "{} idle period{} (longest {:.3} s)",
                        x.idle,
                        if x.idle == 1 { "" } else { "s" },
                        x.idle_max_ns as f64 / 1e9
                    ));
                }
                if let Some(h) = x.rtt_handshake_ns {
                    tcp.push(format!("handshake RTT {}", human_ns(h)));
                }
                if let Some(avg) = x.rtt.avg() {
                    tcp.push(format!(
                        "RTT min/avg/max {}/{}/{}",
                        human_ns(x.rtt.min),
                        human_ns(avg),
                        human_ns(x.rtt.max)
                    ));
                }
                if x.rst {
                    tcp.push("RESET".into());
                } else if x.fin {
                    tcp.push("FIN".into());
                }
                if !tcp.is_empty() {
                    writeln!(out, "           tcp: {}", tcp.join(", "))?;
                }
            }
        }
        out.flush()
    }
}

fn causes(c: &BTreeMap<&'static str, u64>) -> String {
    if c.is_empty() {
        return String::new();
    }
    let v: Vec<String> = c.iter().map(|(k, n)| format!("{n} {k}")).collect();
    format!(": {}", v.join(", "))
}

use crate::present::{human_bytes, human_ns};

impl<W: Write> Observer for Summary<W> {
    fn start(&mut self, ts_ns: u64) {
        self.set_t0(ts_ns);
    }

    fn session(&mut self, s: &Session) {
        self.sessions.push(SessionTally {
            session: s.clone(),
            dirs: Default::default(),
        });
        let t = self.secs(s.first_ts);
        self.line(format_args!(
            "{t:>12.6}  session {}: {} -> {} ({}{})\n",
            s.id,
            s.primary,
            s.secondary,
            s.recognised_by,
            if s.mid_stream { ", mid-stream" } else { "" }
        ));
    }

    fn back_channel(&mut self, s: &Session) {
        if let Some(t) = self.sessions.get_mut(s.id as usize) {
            t.session = s.clone();
        }
        if let Some(bc) = &s.back_channel {
            let (from, to) = (bc.from, bc.to);
            self.line(format_args!(
                "{:>12}  session {}: back channel {} -> {}\n",
                "", s.id, from, to
            ));
        }
    }

    fn gap(
        &mut self,
        s: SessionId,
        d: Direction,
        _ts: u64,
        _offset: u64,
        len: u64,
        cause: GapCause,
    ) {
        if let Some(x) = self.dir(s, d) {
            x.gap(len, cause);
        }
    }

    fn decoded(&mut self, s: SessionId, d: Direction, _ts: u64, events: &[Event]) {
        let Some(x) = self.dir(s, d) else { return };
        for e in events {
            match e {
                Event::Item(_) => x.item(),
                Event::Diagnostic(diag) => x.diagnostic(diag),
                _ => {}
            }
        }
    }

    fn bytes(&mut self, s: SessionId, d: Direction, _offset: u64, data: &[u8]) {
        if let Some(x) = self.dir(s, d) {
            x.bytes(data.len() as u64);
        }
    }

    fn tcp(&mut self, s: SessionId, d: Direction, ev: &TcpEvent) {
        if let Some(x) = self.dir(s, d) {
            x.tcp(ev);
        }
    }

    fn ended(&mut self, s: SessionId, d: Direction, stats: &DirectionStats) {
        if let Some(x) = self.dir(s, d) {
            x.ended(stats);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
        assert_eq!(human_ns(999), "999 ns");
        assert_eq!(human_ns(2_300_000_000), "2.300 s");
        assert_eq!(human_ns(1_500), "1.5 µs");
    }
}
