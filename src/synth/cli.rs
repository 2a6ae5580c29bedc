//! `migscope synth`: writes a synthetic migration stream to files.
//!
//! Raw output (the default): the forward stream goes to `-o` (`-` for
//! stdout), the reverse stream to `--reverse` if given. Capture output
//! (`--format pcap|pcapng`, or an `-o` name ending in `.pcap`, `.pcapng`,
//! either optionally followed by `.gz`): both streams of one or more
//! sessions as the packets of TCP connections (see `synth::capture`). The
//! ground truth goes as JSON to `--manifest` if given (for captures, the
//! capture manifest with each session's stream manifest inside). A one-line
//! summary goes to stderr.

use std::fs::File;
use std::io::{self, BufWriter, Write as _};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context as _};

use super::capture::{self, CaptureFormat, CaptureManifest, CaptureOptions, Link};
use crate::cli::units::{parse_bandwidth, parse_duration, parse_rate, parse_size};

use super::{generate, Dirty, Guest, MigrationKind, Phase, Scenario, StreamFiles, Timing};

/// Which stream to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScenarioArg {
    /// Plain live migration of an HVM guest.
    Plain,
    /// Plain live migration of a PV guest.
    PlainPv,
    /// Remus checkpoints of an HVM guest.
    Remus,
    /// COLO checkpoints of an HVM guest, with the back channel.
    Colo,
    /// A QEMU 7.2 precopy migration.
    Qemu,
    /// QEMU 7.2 COLO: the initial migration, then checkpoints (numbered
    /// from 1) of COLO messages, RAM and device state on one connection.
    QemuColo,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    /// The forward stream's bytes (the reverse stream to --reverse).
    Raw,
    /// A pcap capture of the TCP connections.
    Pcap,
    /// A pcapng capture of the TCP connections.
    Pcapng,
}

/// Link layer of a capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LinkArg {
    /// Ethernet II frames.
    Ethernet,
    /// Linux cooked capture v2, as `tcpdump -i any` writes.
    Sll2,
}

/// Arguments of `migscope synth`.
#[derive(Debug, Clone, clap::Args)]
pub struct SynthArgs {
    /// Kind of migration.
    #[arg(long, value_enum, default_value_t = ScenarioArg::Plain)]
    pub scenario: ScenarioArg,
    /// Wrap the stream in the xl preamble (banner, save header, trailer).
    #[arg(long)]
    pub xl: bool,
    /// Guest memory: bytes, or with a KiB, MiB, GiB or TiB suffix.
    #[arg(long, default_value = "1GiB", value_parser = parse_size)]
    pub memory: u64,
    /// Number of vcpus.
    #[arg(long, default_value_t = 2)]
    pub vcpus: u32,
    /// Live rounds of the initial migration, the stop-and-copy included
    /// (QEMU: passes over memory, the END section's included).
    #[arg(long, default_value_t = 5)]
    pub rounds: u32,
    /// Checkpoints of a remus or colo stream, checkpoint 0 included; of a
    /// qemu-colo stream, after the initial migration.
    #[arg(long, default_value_t = 10)]
    pub checkpoints: u32,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// libxc stream version (2 has no STATIC_DATA_END).
    #[arg(long = "libxc-version", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(2..=3))]
    pub libxc_version: u32,
    /// Domain name in the xl config.
    #[arg(long, default_value = "guest")]
    pub name: String,
    /// Link bandwidth per direction, e.g. 10Gbit, 100Mbit, 1.25GB/s, 500MiB/s.
    #[arg(long, default_value = "10Gbit", value_parser = parse_bandwidth)]
    pub bandwidth: u64,
    /// Stall a phase of a checkpoint: K:PHASE=DURATION, e.g. 3:apply=2.3s
    /// (phases: suspend, dirty_sync, memory, device, apply, resume, run;
    /// qemu-colo, whose checkpoints count from 1: reply, stop, ram,
    /// device_state, received, loaded, interval).
    #[arg(long = "stall", value_name = "K:PHASE=DURATION", value_parser = parse_stall)]
    pub stalls: Vec<(u32, Phase, u64)>,
    /// Mean pages the primary dirties per checkpoint (Remus, COLO, QEMU COLO).
    #[arg(long, default_value_t = Dirty::default().primary_mean)]
    pub dirty_pages: u64,
    /// Mean pages on the secondary's dirty list per checkpoint (COLO).
    #[arg(long, default_value_t = Dirty::default().secondary_mean)]
    pub secondary_dirty_pages: u64,
    /// QEMU multifd channels of a qemu scenario (0: off): the pages with
    /// data go over N connections of their own to the same port, as QEMU
    /// 7.2 sends them. Captures only.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub multifd: u32,
    /// Output file (`-` for stdout): the forward stream, or the capture.
    #[arg(
        short = 'o',
        long = "output",
        value_name = "FILE",
        required_unless_present = "replay"
    )]
    pub output: Option<PathBuf>,
    /// Instead of writing files, replay the migration over real TCP on this
    /// address (a receiver listens there, a sender connects), with the pacing
    /// of the timing model: capture it live to get a capture framed by the
    /// real TCP stack.
    #[arg(long, value_name = "ADDR", conflicts_with = "output")]
    pub replay: Option<std::net::SocketAddr>,
    /// With --replay: how many times faster than the model's time.
    #[arg(long, default_value_t = 1.0, requires = "replay")]
    pub speed: f64,
    /// Output format. Default: pcap for an -o name ending in .pcap or
    /// .pcap.gz, pcapng for .pcapng or .pcapng.gz (a .gz name is
    /// gzip-compressed), raw otherwise.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<FormatArg>,
    /// Raw output only: write the reverse stream to this file.
    #[arg(long, value_name = "FILE")]
    pub reverse: Option<PathBuf>,
    /// Write the ground truth (records, rounds, checkpoints; for captures
    /// also connections, sequence numbers, lost byte ranges) as JSON here.
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,

    /// Link layer [default: ethernet].
    #[arg(long, value_enum, help_heading = "Capture options")]
    pub link: Option<LinkArg>,
    /// Tag every frame with this 802.1Q VLAN ID (1-4094).
    #[arg(long, value_name = "ID", help_heading = "Capture options")]
    pub vlan: Option<u16>,
    /// IPv6 addresses (fd00:0:0:N::1 and ::2 for the Nth session) instead
    /// of IPv4 (10.0.N.1 and 10.0.N.2).
    #[arg(long, help_heading = "Capture options")]
    pub ipv6: bool,
    /// N independent sessions (seeds SEED..SEED+N-1, names NAME,
    /// NAME-1..., each between its own two hosts, each starting --stagger
    /// after the previous one), merged in time order [default: 1; at most
    /// 64].
    #[arg(long, value_name = "N", help_heading = "Capture options")]
    pub sessions: Option<usize>,
    /// Start of each session after the previous one, e.g. 20ms
    /// [default: 50ms].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = "Capture options")]
    pub stagger: Option<u64>,
    /// Maximum segment size, payload bytes per segment on the wire
    /// [default: 1448, for an MTU of 1500 with TCP timestamps].
    #[arg(long, value_name = "BYTES", help_heading = "Capture options")]
    pub mss: Option<u32>,
    /// Write GSO/TSO super-segments of up to BYTES payload (at
    /// most 65483), as host captures show them [default: the MSS].
    #[arg(long, value_name = "BYTES", value_parser = parse_size, help_heading = "Capture options")]
    pub gso: Option<u64>,
    /// Round-trip time; a segment to the receiver is acknowledged
    /// this long after it (1us to 100ms) [default: 50us].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = "Capture options")]
    pub rtt: Option<u64>,
    /// Nanosecond timestamps in a pcap file (pcapng always has
    /// them).
    #[arg(long, help_heading = "Capture options")]
    pub nanosecond: bool,
    /// Cut every frame to this many bytes, keeping the original
    /// length [default: 262144].
    #[arg(long, value_name = "BYTES", help_heading = "Capture options")]
    pub snaplen: Option<u32>,
    /// Fraction of data segments lost after the capture point and
    /// retransmitted, e.g. 0.01 or 1% [default: 0].
    #[arg(long, value_name = "RATE", value_parser = parse_rate, help_heading = "Capture options")]
    pub retransmit: Option<f64>,
    /// Fraction of data segments swapped with the next one.
    #[arg(long, value_name = "RATE", value_parser = parse_rate, help_heading = "Capture options")]
    pub reorder: Option<f64>,
    /// Fraction of data segments missing from the capture but
    /// acknowledged (gaps).
    #[arg(long, value_name = "RATE", value_parser = parse_rate, help_heading = "Capture options")]
    pub loss: Option<f64>,
    /// Start the capture mid-stream, at the segment holding this
    /// forward byte offset of the first session (no handshake before it),
    /// e.g. 1000000 or 3MiB.
    #[arg(long = "start-at", value_name = "OFFSET", value_parser = parse_size, help_heading = "Capture options")]
    pub start_at: Option<u64>,
    /// Choose initial sequence numbers so that sequence numbers
    /// wrap past 2^32 early (after 64 KiB forward, a few bytes reverse).
    #[arg(long, help_heading = "Capture options")]
    pub seq_wrap: bool,
    /// The receiver advertises a zero window while the forward
    /// direction is blocked, with the sender's probes and a window update
    /// after. Only a stalled memory phase (--stall K:memory=DURATION), or
    /// a stalled QEMU COLO ram or device_state phase, blocks the forward
    /// direction; other stalls leave it idle.
    #[arg(long, help_heading = "Capture options")]
    pub zero_window: bool,
    /// Carry the reverse stream (xl messages, COLO back channel)
    /// on a second TCP connection to --port + 1 instead of the migration
    /// connection.
    #[arg(long, help_heading = "Capture options")]
    pub back_channel_connection: bool,
    /// The receiver's listening port [default: 8002].
    #[arg(long, value_name = "N", help_heading = "Capture options")]
    pub port: Option<u16>,
}

impl SynthArgs {
    /// The scenario these arguments describe.
    pub fn scenario(&self) -> Scenario {
        let (kind, guest) = match self.scenario {
            ScenarioArg::Plain => (MigrationKind::Plain, Guest::Hvm),
            ScenarioArg::PlainPv => (MigrationKind::Plain, Guest::Pv),
            ScenarioArg::Remus => (MigrationKind::Remus, Guest::Hvm),
            ScenarioArg::Colo => (MigrationKind::Colo, Guest::Hvm),
            ScenarioArg::Qemu => (MigrationKind::Qemu, Guest::Hvm),
            ScenarioArg::QemuColo => (MigrationKind::QemuColo, Guest::Hvm),
        };
        Scenario {
            seed: self.seed,
            kind,
            guest,
            xl: self.xl,
            name: self.name.clone(),
            memory: self.memory,
            vcpus: self.vcpus,
            libxc_version: self.libxc_version,
            rounds: self.rounds,
            checkpoints: self.checkpoints,
            timing: Timing {
                bandwidth: self.bandwidth,
                ..Timing::default()
            },
            stalls: self.stalls.clone(),
            dirty: Dirty {
                primary_mean: self.dirty_pages,
                secondary_mean: self.secondary_dirty_pages,
                ..Dirty::default()
            },
            multifd: self.multifd,
            ..Scenario::default()
        }
    }
}

impl SynthArgs {
    /// The output format and whether to gzip it: `--format`, else from the
    /// output name.
    pub fn output_format(&self) -> (FormatArg, bool) {
        let name = self
            .output
            .as_deref()
            .map(|o| o.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        let gz = name.ends_with(".gz");
        let stem = name.strip_suffix(".gz").unwrap_or(&name);
        let format = self.format.unwrap_or(if stem.ends_with(".pcap") {
            FormatArg::Pcap
        } else if stem.ends_with(".pcapng") {
            FormatArg::Pcapng
        } else {
            FormatArg::Raw
        });
        (format, gz && format != FormatArg::Raw)
    }

    /// The first capture option given, for the error when the output is raw.
    fn capture_flag(&self) -> Option<&'static str> {
        let given = [
            ("--link", self.link.is_some()),
            ("--vlan", self.vlan.is_some()),
            ("--ipv6", self.ipv6),
            ("--sessions", self.sessions.is_some()),
            ("--stagger", self.stagger.is_some()),
            ("--mss", self.mss.is_some()),
            ("--gso", self.gso.is_some()),
            ("--rtt", self.rtt.is_some()),
            ("--nanosecond", self.nanosecond),
            ("--snaplen", self.snaplen.is_some()),
            ("--retransmit", self.retransmit.is_some()),
            ("--reorder", self.reorder.is_some()),
            ("--loss", self.loss.is_some()),
            ("--start-at", self.start_at.is_some()),
            ("--seq-wrap", self.seq_wrap),
            ("--zero-window", self.zero_window),
            ("--back-channel-connection", self.back_channel_connection),
            ("--port", self.port.is_some()),
            ("--multifd", self.multifd > 0),
        ];
        given.into_iter().find(|g| g.1).map(|g| g.0)
    }

    /// The capture options these arguments describe.
    pub fn capture_options(&self, format: CaptureFormat) -> CaptureOptions {
        let d = CaptureOptions::default();
        let mss = self.mss.unwrap_or(d.mss);
        CaptureOptions {
            format,
            link: match self.link {
                Some(LinkArg::Sll2) => Link::Sll2,
                Some(LinkArg::Ethernet) | None => Link::Ethernet,
            },
            vlan: self.vlan,
            ipv6: self.ipv6,
            nanosecond: self.nanosecond,
            snaplen: self.snaplen.unwrap_or(d.snaplen),
            mss,
            segment_size: self
                .gso
                .map_or(mss, |g| u32::try_from(g).unwrap_or(u32::MAX)),
            rtt_ns: self.rtt.unwrap_or(d.rtt_ns),
            stagger_ns: self.stagger.unwrap_or(d.stagger_ns),
            port: self.port.unwrap_or(d.port),
            back_channel_connection: self.back_channel_connection,
            retransmit: self.retransmit.unwrap_or(0.0),
            reorder: self.reorder.unwrap_or(0.0),
            loss: self.loss.unwrap_or(0.0),
            start_at: self.start_at,
            seq_wrap: self.seq_wrap,
            zero_window: self.zero_window,
            ..d
        }
    }

    /// The scenarios of the capture's sessions: the base scenario with
    /// seeds SEED, SEED+1... and names NAME, NAME-1...
    pub fn sessions(&self) -> Vec<Scenario> {
        let base = self.scenario();
        let n = self.sessions.unwrap_or(1);
        (0..n.min(capture::MAX_SESSIONS + 1))
            .map(|i| {
                let name = if i == 0 {
                    base.name.clone()
                } else {
                    format!("{}-{i}", base.name)
                };
                base.clone()
                    .with_seed(base.seed.wrapping_add(i as u64))
                    .with_name(name)
            })
            .collect()
    }
}

fn create(path: &Path) -> anyhow::Result<Box<dyn io::Write>> {
    if path.as_os_str() == "-" {
        return Ok(Box::new(BufWriter::with_capacity(
            1 << 20,
            io::stdout().lock(),
        )));
    }
    if path.is_dir() {
        return Err(anyhow!(
            "cannot create {}: it is a directory; give a file name",
            path.display()
        ));
    }
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    Ok(Box::new(BufWriter::with_capacity(1 << 20, file)))
}

/// Runs `migscope synth`.
pub fn run(args: &SynthArgs) -> anyhow::Result<()> {
    let scenario = args.scenario();
    scenario.validate().map_err(|e| anyhow!("{e}"))?;
    if let Some(addr) = args.replay {
        if !(args.speed.is_finite() && args.speed > 0.0) {
            return Err(anyhow!(
                "--speed must be a positive number, not {}",
                args.speed
            ));
        }
        let r = super::replay::replay(&scenario, addr, args.speed, |a| {
            eprintln!("synth: replaying on {a}");
        })
        .map_err(|e| anyhow!("replaying on {addr} failed: {e}"))?;
        eprintln!(
            "synth: replayed {} forward and {} reverse bytes over TCP",
            r.forward.len(),
            r.reverse.len()
        );
        return Ok(());
    }
    let output = args.output.clone().unwrap_or_else(|| PathBuf::from("-"));
    let (format, gzip) = args.output_format();
    let format = match format {
        FormatArg::Raw => {
            if let Some(flag) = args.capture_flag() {
                return Err(anyhow!(
                    "{flag} applies to packet captures: choose --format pcap or pcapng, or an output name ending in .pcap or .pcapng"
                ));
            }
            return run_raw(args, &scenario);
        }
        FormatArg::Pcap => CaptureFormat::Pcap,
        FormatArg::Pcapng => CaptureFormat::Pcapng,
    };
    if args.reverse.is_some() {
        return Err(anyhow!(
            "--reverse writes a raw reverse stream, but a capture holds both directions already: drop --reverse, or use --format raw"
        ));
    }
    let opts = args.capture_options(format);
    let sessions = args.sessions();
    capture::validate(&sessions, &opts).map_err(|e| anyhow!("{e}"))?;
    let out = create(&output)?;
    let manifest = if gzip {
        let encoder = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
        let (encoder, manifest) = write_capture_to(&sessions, &opts, encoder)?;
        encoder
            .finish()
            .and_then(|mut out| out.flush())
            .map_err(|e| anyhow!("writing the capture failed: {e}"))?;
        manifest
    } else {
        write_capture_to(&sessions, &opts, out)?.1
    };
    if let Some(path) = &args.manifest {
        write_manifest(path, &manifest)?;
    }
    let (mut fwd, mut rev, mut lost) = (0, 0, 0);
    for s in &manifest.sessions {
        fwd += s.stream.forward_bytes;
        rev += s.stream.reverse_bytes;
        lost += s.directions.iter().map(|d| d.lost_bytes).sum::<u64>();
    }
    let seconds = match (manifest.first_packet_ns, manifest.last_packet_ns) {
        (Some(a), Some(b)) => (b - a) as f64 / 1e9,
        _ => 0.0,
    };
    eprintln!(
        "synth: {} {} {} session{}, {} packets, {} forward bytes, {} reverse bytes, {} bytes missing from the capture, {:.3} s of traffic",
        manifest.sessions.len(),
        scenario.kind.name(),
        scenario.guest.name(),
        if manifest.sessions.len() == 1 { "" } else { "s" },
        manifest.packets,
        fwd,
        rev,
        lost,
        seconds
    );
    Ok(())
}

/// Writes the capture through a 1 MiB buffer into `out`; returns `out`
/// flushed.
fn write_capture_to<W: io::Write>(
    sessions: &[Scenario],
    opts: &CaptureOptions,
    out: W,
) -> anyhow::Result<(W, CaptureManifest)> {
    let buffered = BufWriter::with_capacity(1 << 20, out);
    let (buffered, manifest) = capture::write_capture(sessions, opts, buffered)
        .map_err(|e| anyhow!("writing the capture failed: {e}"))?;
    let out = buffered
        .into_inner()
        .map_err(|e| anyhow!("writing the capture failed: {}", e.error()))?;
    Ok((out, manifest))
}

fn write_manifest<T: serde::Serialize>(path: &Path, manifest: &T) -> anyhow::Result<()> {
    let mut out = create(path)?;
    serde_json::to_writer_pretty(&mut out, manifest)
        .map_err(io::Error::from)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
        .map_err(|e| anyhow!("cannot write the manifest to {}: {e}", path.display()))
}

/// Raw output: the streams as bytes.
fn run_raw(args: &SynthArgs, scenario: &Scenario) -> anyhow::Result<()> {
    let forward = create(args.output.as_deref().unwrap_or(Path::new("-")))?;
    let reverse: Box<dyn io::Write> = match &args.reverse {
        Some(path) => create(path)?,
        None => Box::new(io::sink()),
    };
    let mut files = StreamFiles::new(forward, reverse);
    let manifest = generate(scenario, &mut files)
        .and_then(|m| files.flush().map(|()| m))
        .map_err(|e| anyhow!("writing the synthetic stream failed: {e}"))?;
    if let Some(path) = &args.manifest {
        write_manifest(path, &manifest)?;
    }
    // Xen records, or QEMU items
    let records = manifest
        .records
        .iter()
        .filter(|r| r.is_record() || r.layer == crate::decode::wire::Layer::Qemu)
        .count();
    let seconds = manifest.end_ns() as f64 / 1e9;
    eprintln!(
        "synth: {} {} stream, {} forward bytes, {} reverse bytes, {} records, {} checkpoints, {:.3} s of traffic",
        scenario.kind.name(),
        scenario.guest.name(),
        manifest.forward_bytes,
        manifest.reverse_bytes,
        records,
        manifest.checkpoints.len(),
        seconds
    );
    Ok(())
}

/// Parses `K:PHASE=DURATION`, e.g. `3:apply=2.3s`.
pub fn parse_stall(s: &str) -> Result<(u32, Phase, u64), String> {
    let err = || format!("stall {s:?} is not K:PHASE=DURATION (e.g. 3:apply=2.3s)");
    let (k, rest) = s.split_once(':').ok_or_else(err)?;
    let (phase, duration) = rest.split_once('=').ok_or_else(err)?;
    let k = k
        .trim()
        .parse::<u32>()
        .map_err(|_| format!("stall {s:?}: {k:?} is not a checkpoint number"))?;
    let phase = phase.parse::<Phase>()?;
    Ok((k, phase, parse_duration(duration)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        synth: SynthArgs,
    }

    #[test]
    fn durations_and_stalls() {
        assert_eq!(parse_duration("2.3s"), Ok(2_300_000_000));
        assert_eq!(parse_duration("150ms"), Ok(150_000_000));
        assert_eq!(parse_duration("40us"), Ok(40_000));
        assert_eq!(parse_duration("7ns"), Ok(7));
        assert!(parse_duration("3").is_err());
        assert_eq!(
            parse_stall("3:apply=2.3s"),
            Ok((3, Phase::Apply, 2_300_000_000))
        );
        assert_eq!(
            parse_stall("1:dirty_sync=150ms"),
            Ok((1, Phase::DirtySync, 150_000_000))
        );
        assert!(parse_stall("3:naps=1s")
            .unwrap_err()
            .contains("unknown phase"));
        assert!(parse_stall("apply=1s").is_err());
    }

    #[test]
    fn arguments_build_the_scenario() {
        let cli = Cli::try_parse_from([
            "synth",
            "--scenario",
            "colo",
            "--xl",
            "--memory",
            "64MiB",
            "--checkpoints",
            "4",
            "--stall",
            "2:apply=1s",
            "--stall",
            "1:memory=300ms",
            "--bandwidth",
            "1Gbit",
            "-o",
            "out.bin",
        ])
        .unwrap();
        let s = cli.synth.scenario();
        assert_eq!(s.kind, MigrationKind::Colo);
        assert!(s.xl);
        assert_eq!(s.memory, 64 << 20);
        assert_eq!(s.checkpoints, 4);
        assert_eq!(s.timing.bandwidth, 125_000_000);
        assert_eq!(
            s.stalls,
            vec![
                (2, Phase::Apply, 1_000_000_000),
                (1, Phase::Memory, 300_000_000)
            ]
        );
        assert!(s.validate().is_ok());
        assert!(Cli::try_parse_from(["synth", "--libxc-version", "4", "-o", "x"]).is_err());
        assert!(Cli::try_parse_from(["synth", "--scenario", "plain-pv", "-o", "x"]).is_ok());
    }

    #[test]
    fn qemu_scenarios_and_their_stalls() {
        let parse = |args: &[&str]| {
            let mut all = vec!["synth", "-o", "x"];
            all.extend_from_slice(args);
            Cli::try_parse_from(all).unwrap().synth.scenario()
        };
        let s = parse(&[
            "--scenario",
            "qemu-colo",
            "--checkpoints",
            "3",
            "--stall",
            "2:ram=300ms",
            "--stall",
            "3:loaded=1s",
        ]);
        assert_eq!(s.kind, MigrationKind::QemuColo);
        assert_eq!(
            s.stalls,
            vec![
                (2, Phase::Ram, 300_000_000),
                (3, Phase::Loaded, 1_000_000_000)
            ]
        );
        assert!(s.validate().is_ok());
        let err = |args: &[&str]| parse(args).validate().unwrap_err().to_string();
        assert_eq!(
            err(&[
                "--scenario",
                "qemu-colo",
                "--checkpoints",
                "3",
                "--stall",
                "0:reply=1s"
            ]),
            "a stall names checkpoint 0 but QEMU COLO checkpoints count REQUESTs from 1 (1 to 3)"
        );
        assert!(err(&["--scenario", "qemu-colo", "--stall", "2:apply=1s"])
            .contains("has no apply phase"));
        assert!(err(&[
            "--scenario",
            "qemu-colo",
            "--checkpoints",
            "3",
            "--stall",
            "3:interval=1s"
        ])
        .contains("is the last one"));
        assert!(err(&["--scenario", "qemu", "--stall", "1:ram=1s"]).starts_with("stalls apply"));
        assert_eq!(
            err(&["--scenario", "qemu", "--xl"]),
            "QEMU streams are of HVM guests without the xl preamble"
        );
        assert_eq!(parse(&["--scenario", "qemu"]).kind, MigrationKind::Qemu);
    }

    #[test]
    fn run_writes_streams_and_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let fwd = dir.path().join("fwd.bin");
        let rev = dir.path().join("rev.bin");
        let man = dir.path().join("manifest.json");
        let cli = Cli::try_parse_from([
            "synth",
            "--scenario",
            "colo",
            "--xl",
            "--memory",
            "16MiB",
            "--checkpoints",
            "3",
            "--rounds",
            "2",
            "-o",
            fwd.to_str().unwrap(),
            "--reverse",
            rev.to_str().unwrap(),
            "--manifest",
            man.to_str().unwrap(),
        ])
        .unwrap();
        run(&cli.synth).unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&man).unwrap()).unwrap();
        let fwd_len = std::fs::metadata(&fwd).unwrap().len();
        let rev_len = std::fs::metadata(&rev).unwrap().len();
        assert_eq!(json["forward_bytes"], fwd_len);
        assert_eq!(json["reverse_bytes"], rev_len);
        assert_eq!(json["checkpoints"].as_array().unwrap().len(), 3);
        assert_eq!(json["records"][0]["name"], "BANNER");
        assert_eq!(json["records"][0]["dir"], "reverse");
        assert_eq!(
            json["checkpoints"][1]["events"].as_array().unwrap().len(),
            7
        );
    }

    #[test]
    fn the_format_follows_the_output_name() {
        let fmt = |args: &[&str]| {
            let mut all = vec!["synth"];
            all.extend_from_slice(args);
            Cli::try_parse_from(all).unwrap().synth.output_format()
        };
        assert_eq!(fmt(&["-o", "a.bin"]), (FormatArg::Raw, false));
        assert_eq!(fmt(&["-o", "a.bin.gz"]), (FormatArg::Raw, false));
        assert_eq!(fmt(&["-o", "-"]), (FormatArg::Raw, false));
        assert_eq!(fmt(&["-o", "a.pcap"]), (FormatArg::Pcap, false));
        assert_eq!(fmt(&["-o", "A.PCAP.GZ"]), (FormatArg::Pcap, true));
        assert_eq!(fmt(&["-o", "a.pcapng"]), (FormatArg::Pcapng, false));
        assert_eq!(fmt(&["-o", "a.pcapng.gz"]), (FormatArg::Pcapng, true));
        assert_eq!(
            fmt(&["-o", "-", "--format", "pcap"]),
            (FormatArg::Pcap, false)
        );
        assert_eq!(
            fmt(&["-o", "x.gz", "--format", "pcapng"]),
            (FormatArg::Pcapng, true)
        );
        assert_eq!(
            fmt(&["-o", "a.pcap", "--format", "raw"]),
            (FormatArg::Raw, false)
        );
    }

    #[test]
    fn capture_arguments_build_the_options_and_sessions() {
        let cli = Cli::try_parse_from([
            "synth",
            "--scenario",
            "colo",
            "--name",
            "vm",
            "--seed",
            "7",
            "-o",
            "x.pcap",
            "--link",
            "sll2",
            "--vlan",
            "12",
            "--ipv6",
            "--sessions",
            "3",
            "--stagger",
            "2ms",
            "--mss",
            "8948",
            "--gso",
            "64000",
            "--rtt",
            "1ms",
            "--nanosecond",
            "--snaplen",
            "256",
            "--retransmit",
            "1%",
            "--reorder",
            "0.02",
            "--loss",
            "0.03",
            "--start-at",
            "1MiB",
            "--seq-wrap",
            "--back-channel-connection",
            "--port",
            "9000",
        ])
        .unwrap();
        let a = &cli.synth;
        let o = a.capture_options(CaptureFormat::Pcap);
        assert_eq!(o.link, Link::Sll2);
        assert_eq!(o.vlan, Some(12));
        assert!(o.ipv6 && o.nanosecond && o.seq_wrap && o.back_channel_connection);
        assert!(!o.zero_window);
        assert_eq!((o.mss, o.segment_size, o.snaplen), (8948, 64000, 256));
        assert_eq!(
            (o.rtt_ns, o.stagger_ns, o.port),
            (1_000_000, 2_000_000, 9000)
        );
        assert_eq!((o.retransmit, o.reorder, o.loss), (0.01, 0.02, 0.03));
        assert_eq!(o.start_at, Some(1 << 20));
        assert_eq!(o.validate(), Ok(()));
        let s = a.sessions();
        let names: Vec<&str> = s.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["vm", "vm-1", "vm-2"]);
        let seeds: Vec<u64> = s.iter().map(|s| s.seed).collect();
        assert_eq!(seeds, [7, 8, 9]);
        assert_eq!(a.capture_flag(), Some("--link"));

        let plain = Cli::try_parse_from(["synth", "-o", "x.pcap"])
            .unwrap()
            .synth;
        assert_eq!(plain.capture_flag(), None);
        let d = plain.capture_options(CaptureFormat::Pcapng);
        assert_eq!(
            d,
            CaptureOptions {
                format: CaptureFormat::Pcapng,
                ..CaptureOptions::default()
            }
        );
        assert_eq!(plain.sessions().len(), 1);
    }

    #[test]
    fn errors_are_one_sentence() {
        let cli = Cli::try_parse_from([
            "synth",
            "--scenario",
            "plain",
            "--stall",
            "1:apply=1s",
            "-o",
            "/nonexistent-dir/x",
        ])
        .unwrap();
        let e = run(&cli.synth).unwrap_err().to_string();
        assert_eq!(
            e,
            "stalls apply to checkpointed streams (remus, colo or qemu-colo) only"
        );
        let cli = Cli::try_parse_from(["synth", "-o", "/nonexistent-dir/x"]).unwrap();
        let e = format!("{:#}", run(&cli.synth).unwrap_err());
        assert!(e.starts_with("cannot create /nonexistent-dir/x"), "{e}");
    }
}
