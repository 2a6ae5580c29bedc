//! Packets from a live interface, through libpcap (cargo feature `live`).
//!
//! [`LiveSource::open`] captures whole packets (snap length 262144) in
//! immediate mode with a 64 MiB kernel buffer, not promiscuous unless
//! [`LiveOptions::promisc`] asks for it. Reads are
//! non-blocking; when nothing is waiting, [`LiveSource::next_packet`] returns
//! [`Next::Idle`](super::Next::Idle) (at once when a burst ends, then after
//! waiting up to 100 ms on libpcap's descriptor), so the caller's loop can
//! check for Ctrl-C without spinning. libpcap's own read timeout is not used
//! for this: on Linux it never fires while no packet arrives. With `-w`,
//! every captured packet is also written to a pcap file (flushed whenever the
//! capture is idle, and on drop). [`LiveSource::stats`] reports what the kernel
//! and the interface dropped.
//!
//! Timestamps are libpcap's microseconds, converted to nanoseconds.
//!
//! Opening fails with a sentence that names the fix: missing privileges (run as
//! root or `setcap`), an unknown interface (the available ones are listed), a
//! filter that does not compile (libpcap's message). Built without the `live`
//! feature, [`open`] exists too and returns [`CaptureError::LiveNotBuilt`],
//! which says how to rebuild; [`LiveSource`] then cannot be constructed.

use std::path::Path;

use super::CaptureError;

/// How long `next_packet` waits for a packet before returning
/// [`Next::Idle`](super::Next::Idle); also libpcap's buffer timeout.
pub const READ_TIMEOUT_MS: i32 = 100;
/// Snap length: whole packets, GSO super-segments included.
pub const SNAPLEN: i32 = 262_144;
/// Kernel capture buffer: 64 MiB, to ride out bursts of a migration.
pub const BUFFER_SIZE: i32 = 64 << 20;

/// Capture counters from libpcap (they wrap at 2^32 on some platforms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LiveStats {
    /// Packets the capture received.
    pub received: u32,
    /// Packets dropped because the capture buffer was full.
    pub dropped: u32,
    /// Packets dropped by the interface or its driver.
    pub if_dropped: u32,
}

/// How to open a live capture beyond the interface name.
#[derive(Debug, Clone, Copy, Default)]
pub struct LiveOptions<'a> {
    /// BPF capture filter, as for tcpdump.
    pub filter: Option<&'a str>,
    /// Also write every captured packet to this pcap file (`-w`).
    pub write: Option<&'a Path>,
    /// Put the interface in promiscuous mode (off by default: a migration
    /// between two hosts passes through the capturing host's own interfaces).
    pub promisc: bool,
}

/// Opens a live capture; the same as [`LiveSource::open`].
pub fn open(
    iface: &str,
    filter: Option<&str>,
    write: Option<&Path>,
) -> Result<LiveSource, CaptureError> {
    LiveSource::open(iface, filter, write)
}

#[cfg(feature = "live")]
pub use imp::LiveSource;
#[cfg(not(feature = "live"))]
pub use stub::LiveSource;

#[cfg(feature = "live")]
mod imp {
    use std::path::{Path, PathBuf};

    use pcap::{Active, Capture, Device, Savefile};
    use rustix::event::{poll, PollFd, PollFlags, Timespec};

    use super::{LiveOptions, LiveStats, BUFFER_SIZE, READ_TIMEOUT_MS, SNAPLEN};
    use crate::capture::{CaptureError, LinkType, Next, Packet};

    /// A live capture on one interface.
    pub struct LiveSource {
        iface: String,
        cap: Capture<Active>,
        link: LinkType,
        save: Option<(Savefile, PathBuf)>,
        /// Packets written to the save file since its last flush.
        unflushed: bool,
        /// The last read found no packet: wait on the descriptor first.
        starved: bool,
        number: u64,
        ended: bool,
    }

    impl std::fmt::Debug for LiveSource {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("LiveSource")
                .field("iface", &self.iface)
                .field("link", &self.link)
                .field("packets", &self.number)
                .finish_non_exhaustive()
        }
    }

    impl LiveSource {
        /// Opens `iface` ("any" for all interfaces on Linux), applies the BPF
        /// `filter` if given, and creates the `write` file if given; not
        /// promiscuous.
        pub fn open(
            iface: &str,
            filter: Option<&str>,
            write: Option<&Path>,
        ) -> Result<LiveSource, CaptureError> {
            let opts = LiveOptions {
                filter,
                write,
                promisc: false,
            };
            LiveSource::open_with(iface, &opts)
        }

        /// Opens `iface` with explicit [`LiveOptions`].
        pub fn open_with(iface: &str, opts: &LiveOptions) -> Result<LiveSource, CaptureError> {
            let (filter, write) = (opts.filter, opts.write);
            let open_err = |e: pcap::Error| classify(iface, e);
            let cap = Capture::from_device(iface)
                .map_err(open_err)?
                .immediate_mode(true)
                .snaplen(SNAPLEN)
                .buffer_size(BUFFER_SIZE)
                .promisc(opts.promisc)
                .timeout(READ_TIMEOUT_MS)
                .open()
                .map_err(open_err)?
                .setnonblock()
                .map_err(open_err)?;
            let mut cap = cap;
            if let Some(f) = filter {
                cap.filter(f, true).map_err(|e| CaptureError::BadFilter {
                    filter: f.into(),
                    message: pcap_message(e),
                })?;
            }
            let save = match write {
                Some(path) => {
                    let s = cap.savefile(path).map_err(|e| CaptureError::Write {
                        path: path.into(),
                        message: pcap_message(e),
                    })?;
                    Some((s, path.to_path_buf()))
                }
                None => None,
            };
            let link = LinkType(cap.get_datalink().0 as u32);
            Ok(LiveSource {
                iface: iface.into(),
                cap,
                link,
                save,
                unflushed: false,
                starved: false,
                number: 0,
                ended: false,
            })
        }

        /// The next packet; [`Next::Idle`] when none is waiting (at once when
        /// a burst ends, then after at most [`READ_TIMEOUT_MS`] while the
        /// interface stays quiet); [`Next::End`] once the capture has ended.
        /// Errors end the capture (the next call returns `End`).
        pub fn next_packet(&mut self) -> Result<Next<'_>, CaptureError> {
            if self.ended {
                return Ok(Next::End);
            }
            if self.starved {
                // The last read found nothing: sleep until the descriptor is
                // readable or the timeout passes. (libpcap's own read timeout
                // does not fire while no packet arrives on Linux.)
                let mut fds = [PollFd::new(&self.cap, PollFlags::IN)];
                let timeout = Timespec {
                    tv_sec: 0,
                    tv_nsec: i64::from(READ_TIMEOUT_MS) * 1_000_000,
                };
                match poll(&mut fds, Some(&timeout)) {
                    Ok(0) | Err(rustix::io::Errno::INTR) => {
                        flush(&mut self.save, &mut self.unflushed)?;
                        return Ok(Next::Idle);
                    }
                    Ok(_) => self.starved = false,
                    Err(e) => {
                        self.ended = true;
                        return Err(CaptureError::Live {
                            iface: self.iface.clone(),
                            message: format!("waiting for packets failed: {e}"),
                        });
                    }
                }
            }
            // (Fields only below, not `self` methods: the packet arm's borrow
            // of `self.cap` covers the other arms too.)
            match self.cap.next_packet() {
                Ok(p) => {
                    if let Some((save, _)) = &mut self.save {
                        save.write(&p);
                        self.unflushed = true;
                    }
                    self.number += 1;
                    let ts = p.header.ts;
                    let ts_ns =
                        i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_usec) * 1000;
                    Ok(Next::Packet(Packet {
                        number: self.number,
                        ts_ns: ts_ns.clamp(0, i128::from(u64::MAX)) as u64,
                        link: self.link,
                        data: p.data,
                        orig_len: p.header.len.max(p.header.caplen),
                    }))
                }
                // Non-blocking: nothing is waiting.
                Err(pcap::Error::TimeoutExpired) => {
                    self.starved = true;
                    flush(&mut self.save, &mut self.unflushed)?;
                    Ok(Next::Idle)
                }
                Err(pcap::Error::NoMorePackets) => {
                    self.ended = true;
                    flush(&mut self.save, &mut self.unflushed)?;
                    Ok(Next::End)
                }
                Err(e) => {
                    self.ended = true;
                    // Keep what was written; the capture error matters more.
                    let _ = flush(&mut self.save, &mut self.unflushed);
                    Err(CaptureError::LiveEnded {
                        iface: self.iface.clone(),
                        message: pcap_message(e),
                    })
                }
            }
        }

        /// Flushes the `-w` file, if any, so that it holds every packet so far.
        pub fn flush(&mut self) -> Result<(), CaptureError> {
            flush(&mut self.save, &mut self.unflushed)
        }

        /// Received and dropped counts so far.
        pub fn stats(&mut self) -> Result<LiveStats, CaptureError> {
            let s = self.cap.stats().map_err(|e| CaptureError::Live {
                iface: self.iface.clone(),
                message: pcap_message(e),
            })?;
            Ok(LiveStats {
                received: s.received,
                dropped: s.dropped,
                if_dropped: s.if_dropped,
            })
        }

        /// The interface name.
        pub fn iface(&self) -> &str {
            &self.iface
        }

        /// The interface's link type.
        pub fn link(&self) -> LinkType {
            self.link
        }

        /// Packets handed out so far.
        pub fn packets(&self) -> u64 {
            self.number
        }
    }

    fn flush(
        save: &mut Option<(Savefile, PathBuf)>,
        unflushed: &mut bool,
    ) -> Result<(), CaptureError> {
        if !std::mem::take(unflushed) {
            return Ok(());
        }
        if let Some((save, path)) = save {
            save.flush().map_err(|e| CaptureError::Write {
                path: path.clone(),
                message: pcap_message(e),
            })?;
        }
        Ok(())
    }

    fn pcap_message(e: pcap::Error) -> String {
        match e {
            pcap::Error::PcapError(m) => m,
            e => e.to_string(),
        }
    }

    /// Turns an open/activate error into the sentence that names the fix.
    fn classify(iface: &str, e: pcap::Error) -> CaptureError {
        let message = pcap_message(e);
        let lower = message.to_ascii_lowercase();
        let no_device = lower.contains("no such device") || lower.contains("doesn't exist");
        let denied = lower.contains("permission") || lower.contains("not permitted");
        if no_device || denied {
            // Without privileges libpcap reports a missing interface as a
            // permission problem; listing interfaces needs none, so check.
            let available: Option<Vec<String>> = Device::list()
                .ok()
                .map(|l| l.into_iter().map(|d| d.name).collect());
            let missing = match &available {
                Some(names) => !names.iter().any(|n| n == iface),
                None => no_device,
            };
            if missing {
                return CaptureError::NoSuchInterface {
                    iface: iface.into(),
                    available: available.unwrap_or_default(),
                };
            }
        }
        if denied {
            CaptureError::LivePermission {
                iface: iface.into(),
                message,
            }
        } else {
            CaptureError::Live {
                iface: iface.into(),
                message,
            }
        }
    }
}

#[cfg(not(feature = "live"))]
mod stub {
    use std::convert::Infallible;
    use std::path::Path;

    use super::{LiveOptions, LiveStats};
    use crate::capture::{CaptureError, LinkType, Next};

    /// A live capture; this build has no live capture support, so none can
    /// exist (opening one says how to rebuild).
    #[derive(Debug)]
    pub struct LiveSource {
        never: Infallible,
    }

    impl LiveSource {
        /// Always [`CaptureError::LiveNotBuilt`] in this build.
        pub fn open(
            _iface: &str,
            _filter: Option<&str>,
            _write: Option<&Path>,
        ) -> Result<LiveSource, CaptureError> {
            Err(CaptureError::LiveNotBuilt)
        }
        /// Always [`CaptureError::LiveNotBuilt`] in this build.
        pub fn open_with(_iface: &str, _opts: &LiveOptions) -> Result<LiveSource, CaptureError> {
            Err(CaptureError::LiveNotBuilt)
        }
        pub fn next_packet(&mut self) -> Result<Next<'_>, CaptureError> {
            match self.never {}
        }
        pub fn flush(&mut self) -> Result<(), CaptureError> {
            match self.never {}
        }
        pub fn stats(&mut self) -> Result<LiveStats, CaptureError> {
            match self.never {}
        }
        pub fn iface(&self) -> &str {
            match self.never {}
        }
        pub fn link(&self) -> LinkType {
            match self.never {}
        }
        pub fn packets(&self) -> u64 {
            match self.never {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(not(feature = "live"))]
    #[test]
    fn without_the_feature_open_says_how_to_rebuild() {
        let e = open("lo", None, None).unwrap_err();
        assert_eq!(e, CaptureError::LiveNotBuilt);
        assert!(e.to_string().contains("--features live"));
    }

    /// Opens `lo`, or says why the test is skipped (no privileges).
    #[cfg(feature = "live")]
    fn open_lo(filter: Option<&str>, write: Option<&Path>) -> Option<LiveSource> {
        match open("lo", filter, write) {
            Ok(s) => Some(s),
            Err(e @ CaptureError::LivePermission { .. }) => {
                eprintln!("skipping the live capture test: {e}");
                None
            }
            Err(e) => panic!("{e}"),
        }
    }

    #[cfg(feature = "live")]
    #[test]
    fn unknown_interface_lists_the_real_ones() {
        match open("nonexistent-if0", None, None) {
            Err(CaptureError::NoSuchInterface { iface, available }) => {
                assert_eq!(iface, "nonexistent-if0");
                assert!(available.iter().any(|n| n == "lo"), "{available:?}");
            }
            Err(e @ CaptureError::LivePermission { .. }) => eprintln!("skipping: {e}"),
            other => panic!("{other:?}"),
        }
    }

    #[cfg(feature = "live")]
    #[test]
    fn bad_filter_is_reported() {
        match open("lo", Some("tcp port"), None) {
            Err(CaptureError::BadFilter { filter, message }) => {
                assert_eq!(filter, "tcp port");
                assert!(!message.is_empty());
            }
            Err(e @ CaptureError::LivePermission { .. }) => eprintln!("skipping: {e}"),
            other => panic!("{other:?}"),
        }
    }

    /// Captures a real TCP exchange on loopback, writes it with `-w`, and
    /// reads the file back.
    #[cfg(feature = "live")]
    #[test]
    fn captures_tcp_on_loopback_and_writes_it() {
        use crate::capture::{parse, FileSource, Next, Parsed};
        use std::io::{Read, Write};
        use std::net::{TcpListener, TcpStream};
        use std::time::{Duration, Instant};

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("lo.pcap");
        let filter = format!("tcp port {port}");
        let Some(mut live) = open_lo(Some(&filter), Some(&out)) else {
            return;
        };
        assert!(matches!(live.link().0, 1 | 113 | 276));
        let server = std::thread::spawn(move || {
            let (mut c, _) = listener.accept().unwrap();
            let mut got = Vec::new();
            c.read_to_end(&mut got).unwrap();
            got
        });
        let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
        client.write_all(b"migscope live test").unwrap();
        drop(client);
        assert_eq!(server.join().unwrap(), b"migscope live test");

        let (mut payload, mut syn, mut idle) = (Vec::new(), false, 0);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && !(syn && payload == b"migscope live test") {
            match live.next_packet().unwrap() {
                Next::Packet(p) => {
                    if let Parsed::Tcp(s) = parse(p.link, p.data, p.orig_len) {
                        assert!(s.src_port == port || s.dst_port == port);
                        syn |= s.flags.syn() && s.mss.is_some();
                        if s.dst_port == port {
                            payload.extend_from_slice(s.payload);
                        }
                    }
                }
                Next::Idle => idle += 1,
                Next::End => break,
            }
        }
        assert!(syn, "no SYN with an MSS seen");
        assert_eq!(payload, b"migscope live test");
        // Once everything is read, the capture answers Idle.
        while !matches!(live.next_packet().unwrap(), Next::Idle) {}
        // ... and while the interface stays quiet, after about 100 ms.
        let t = Instant::now();
        assert!(matches!(live.next_packet().unwrap(), Next::Idle));
        let waited = t.elapsed();
        assert!(
            waited >= Duration::from_millis(50) && waited < Duration::from_secs(2),
            "{waited:?}"
        );
        let seen = live.packets();
        let stats = live.stats().unwrap();
        assert!(
            u64::from(stats.received) >= seen,
            "{stats:?}, {seen} packets"
        );
        drop(live);
        let mut file = FileSource::open(&out).unwrap();
        let mut n = 0;
        while file.next_packet().unwrap().is_some() {
            n += 1;
        }
        assert_eq!(n, seen);
        eprintln!("{seen} packets captured on lo, {idle} idle wake-ups, {stats:?}");
    }
}
