//! Replays a generated migration over real TCP sockets, with the pacing of
//! its timing model, so that the real TCP stack frames it: the way to make
//! captures that were not framed by migscope's own packet writer (capture the
//! loopback interface while it runs).
//!
//! The receiver listens on `addr`, the sender connects to it; each side writes
//! its direction's writes at their model times (scaled by `speed`) and drains
//! what the other side sends. A write also waits until its side has received
//! everything the model had the other side send before it, so causality holds
//! as in a real pair (the secondary's SVM_READY never overtakes the
//! CHECKPOINT_END it answers) even when the sockets or the scheduler lag.
//! Both streams are held in memory: meant for scenarios of tens of megabytes,
//! not for gigabytes.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::{generate, Manifest, Scenario, StreamSink};
use crate::decode::Direction;

/// What was sent, for checking a capture of it.
#[derive(Debug, Clone)]
pub struct Replayed {
    pub forward: Vec<u8>,
    pub reverse: Vec<u8>,
    pub manifest: Manifest,
    /// Bytes each side read from the other (equal to the streams when the
    /// replay went through).
    pub received: (u64, u64),
}

struct Timed {
    at_ns: u64,
    end_ns: u64,
    data: Vec<u8>,
    /// Bytes of the other direction the model had sent before this write.
    after: u64,
}

#[derive(Default)]
struct Collect {
    writes: [Vec<Timed>; 2],
}

impl StreamSink for Collect {
    fn write(&mut self, w: &super::Write<'_>) -> io::Result<()> {
        let i = match w.dir {
            Direction::Forward => 0,
            Direction::Reverse => 1,
        };
        self.writes[i].push(Timed {
            at_ns: w.start_ns,
            end_ns: w.end_ns,
            data: w.data.to_vec(),
            after: 0,
        });
        Ok(())
    }
}

/// Longest a write waits for the other side's bytes before going anyway.
const CAUSALITY_WAIT: Duration = Duration::from_secs(10);

/// For each write of `mine`, the bytes of `theirs` whose writes ended by
/// its start.
fn causes(mine: &mut [Timed], theirs: &[Timed]) {
    let mut sent = 0u64;
    let mut j = 0;
    for w in mine.iter_mut() {
        while j < theirs.len() && theirs[j].end_ns <= w.at_ns {
            sent += theirs[j].data.len() as u64;
            j += 1;
        }
        w.after = sent;
    }
}

/// Writes `writes` at their times on `sock` and returns what was read from it.
fn side(mut sock: TcpStream, writes: Vec<Timed>, start: Instant, speed: f64) -> io::Result<u64> {
    let mut reader = sock.try_clone()?;
    let received = Arc::new(AtomicU64::new(0));
    let counter = received.clone();
    let drain = thread::spawn(move || -> io::Result<u64> {
        let mut buf = vec![0u8; 1 << 16];
        let mut n = 0u64;
        loop {
            match reader.read(&mut buf) {
                Ok(0) => return Ok(n),
                Ok(k) => {
                    n += k as u64;
                    counter.store(n, Ordering::Release);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    });
    for w in writes {
        let due = start + Duration::from_nanos((w.at_ns as f64 / speed) as u64);
        let now = Instant::now();
        if due > now {
            thread::sleep(due - now);
        }
        let waited = Instant::now();
        while received.load(Ordering::Acquire) < w.after && waited.elapsed() < CAUSALITY_WAIT {
            thread::sleep(Duration::from_micros(50));
        }
        sock.write_all(&w.data)?;
    }
    sock.shutdown(Shutdown::Write)?;
    drain
        .join()
        .map_err(|_| io::Error::other("the reading thread panicked"))?
}

/// Replays `scenario` from a sender to a receiver listening on `addr`
/// (port 0 picks a free one; `on_listen` is told the address). `speed` > 1
/// replays faster than the model's time.
pub fn replay(
    scenario: &Scenario,
    addr: SocketAddr,
    speed: f64,
    on_listen: impl FnOnce(SocketAddr),
) -> io::Result<Replayed> {
    if scenario.multifd > 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "replay sends the migration connection only, not QEMU multifd channels: drop --multifd, or write a capture",
        ));
    }
    let mut collect = Collect::default();
    let manifest = generate(scenario, &mut collect)?;
    let forward: Vec<u8> = collect.writes[0]
        .iter()
        .flat_map(|w| w.data.clone())
        .collect();
    let reverse: Vec<u8> = collect.writes[1]
        .iter()
        .flat_map(|w| w.data.clone())
        .collect();
    let [mut fwd_writes, mut rev_writes] = collect.writes;
    causes(&mut fwd_writes, &rev_writes);
    causes(&mut rev_writes, &fwd_writes);
    let listener = TcpListener::bind(addr)?;
    let local = listener.local_addr()?;
    on_listen(local);
    let speed = if speed > 0.0 { speed } else { 1.0 };
    let receiver = thread::spawn(move || -> io::Result<u64> {
        let (sock, _) = listener.accept()?;
        sock.set_nodelay(true)?;
        // The receiver's clock starts when it accepts, as xl's does.
        side(sock, rev_writes, Instant::now(), speed)
    });
    let sock = TcpStream::connect(local)?;
    sock.set_nodelay(true)?;
    let sent = side(sock, fwd_writes, Instant::now(), speed)?;
    let got = receiver
        .join()
        .map_err(|_| io::Error::other("the receiver thread panicked"))??;
    Ok(Replayed {
        forward,
        reverse,
        manifest,
        received: (got, sent),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_streams_cross_the_loopback() {
        let s = Scenario::colo()
            .with_memory(1 << 20)
            .with_checkpoints(2)
            .with_xl(true)
            .with_seed(1);
        let r = replay(&s, "127.0.0.1:0".parse().unwrap(), 50.0, |_| {}).unwrap();
        assert_eq!(r.received.0, r.forward.len() as u64);
        assert_eq!(r.received.1, r.reverse.len() as u64);
        assert_eq!(r.forward.len() as u64, r.manifest.forward_bytes);
    }
}
