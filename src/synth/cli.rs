//! `migscope synth`: writes a synthetic migration stream to files.
//!
//! The forward stream goes to `-o` (`-` for stdout), the reverse stream to
//! `--reverse` if given, the ground truth as JSON to `--manifest` if given.
//! A one-line summary goes to stderr.

use std::fs::File;
use std::io::{self, BufWriter, Write as _};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context as _};

use super::{generate, Dirty, Guest, Kind, Phase, Scenario, StreamFiles, Timing};

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
    /// Live rounds of the initial migration, the stop-and-copy included.
    #[arg(long, default_value_t = 5)]
    pub rounds: u32,
    /// Checkpoints of a remus or colo stream, checkpoint 0 included.
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
    /// (phases: suspend, dirty_sync, memory, device, apply, resume, run).
    #[arg(long = "stall", value_name = "K:PHASE=DURATION", value_parser = parse_stall)]
    pub stalls: Vec<(u32, Phase, u64)>,
    /// Mean pages the primary dirties per checkpoint (Remus and COLO).
    #[arg(long, default_value_t = Dirty::default().primary_mean)]
    pub dirty_pages: u64,
    /// Mean pages on the secondary's dirty list per checkpoint (COLO).
    #[arg(long, default_value_t = Dirty::default().secondary_mean)]
    pub secondary_dirty_pages: u64,
    /// Forward stream output file (`-` for stdout).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: PathBuf,
    /// Reverse stream output file.
    #[arg(long, value_name = "FILE")]
    pub reverse: Option<PathBuf>,
    /// Write the ground truth (records, rounds, checkpoints) as JSON here.
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
}

impl SynthArgs {
    /// The scenario these arguments describe.
    pub fn scenario(&self) -> Scenario {
        let (kind, guest) = match self.scenario {
            ScenarioArg::Plain => (Kind::Plain, Guest::Hvm),
            ScenarioArg::PlainPv => (Kind::Plain, Guest::Pv),
            ScenarioArg::Remus => (Kind::Remus, Guest::Hvm),
            ScenarioArg::Colo => (Kind::Colo, Guest::Hvm),
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
            ..Scenario::default()
        }
    }
}

fn create(path: &Path) -> anyhow::Result<Box<dyn io::Write>> {
    if path.as_os_str() == "-" {
        return Ok(Box::new(BufWriter::with_capacity(
            1 << 20,
            io::stdout().lock(),
        )));
    }
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    Ok(Box::new(BufWriter::with_capacity(1 << 20, file)))
}

/// Runs `migscope synth`.
pub fn run(args: &SynthArgs) -> anyhow::Result<()> {
    let scenario = args.scenario();
    scenario.validate().map_err(|e| anyhow!("{e}"))?;
    let forward = create(&args.output)?;
    let reverse: Box<dyn io::Write> = match &args.reverse {
        Some(path) => create(path)?,
        None => Box::new(io::sink()),
    };
    let mut files = StreamFiles::new(forward, reverse);
    let manifest = generate(&scenario, &mut files)
        .and_then(|m| files.flush().map(|()| m))
        .map_err(|e| anyhow!("writing the synthetic stream failed: {e}"))?;
    if let Some(path) = &args.manifest {
        let mut out = create(path)?;
        serde_json::to_writer_pretty(&mut out, &manifest)
            .map_err(io::Error::from)
            .and_then(|()| out.write_all(b"\n"))
            .and_then(|()| out.flush())
            .map_err(|e| anyhow!("cannot write the manifest to {}: {e}", path.display()))?;
    }
    let records = manifest.records.iter().filter(|r| r.is_record()).count();
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

fn split_number(s: &str) -> (&str, &str) {
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    (&s[..end], s[end..].trim())
}

fn number(digits: &str, whole: &str) -> Result<f64, String> {
    digits
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| format!("{whole:?} does not start with a number"))
}

fn to_u64(value: f64, whole: &str) -> Result<u64, String> {
    if value < 0.0 || value >= u64::MAX as f64 {
        return Err(format!("{whole:?} is out of range"));
    }
    Ok(value.round() as u64)
}

/// Parses a size: bytes, or a number with a KiB, MiB, GiB or TiB suffix
/// (K, M, G, T accepted as the same binary units).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let (digits, unit) = split_number(s.trim());
    let value = number(digits, s)?;
    let scale: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        _ => {
            return Err(format!(
                "unknown size unit in {s:?} (use KiB, MiB, GiB or TiB)"
            ))
        }
    };
    to_u64(value * scale as f64, s)
}

/// Parses a bandwidth into bytes per second: bits (`10Gbit`, `100Mbit/s`,
/// `1Gbps`, decimal units) or bytes (`1.25GB/s` decimal, `500MiB/s` binary);
/// a bare number is bytes per second.
pub fn parse_bandwidth(s: &str) -> Result<u64, String> {
    let (digits, unit) = split_number(s.trim());
    let value = number(digits, s)?;
    let unit = unit.trim_end_matches("/s").trim_end_matches("ps");
    let bytes_per_s = match unit {
        "" | "B" => value,
        "bit" | "b" => value / 8.0,
        "Kbit" | "kbit" | "Kb" | "kb" => value * 1e3 / 8.0,
        "Mbit" | "mbit" | "Mb" | "mb" => value * 1e6 / 8.0,
        "Gbit" | "gbit" | "Gb" | "gb" => value * 1e9 / 8.0,
        "KB" | "kB" => value * 1e3,
        "MB" => value * 1e6,
        "GB" => value * 1e9,
        "KiB" => value * 1024.0,
        "MiB" => value * 1024.0 * 1024.0,
        "GiB" => value * 1024.0 * 1024.0 * 1024.0,
        _ => {
            return Err(format!(
                "unknown bandwidth unit in {s:?} (use e.g. 10Gbit, 100Mbit, 1.25GB/s or 500MiB/s)"
            ))
        }
    };
    let v = to_u64(bytes_per_s, s)?;
    if v == 0 {
        return Err(format!("bandwidth {s:?} is zero"));
    }
    Ok(v)
}

/// Parses a duration into nanoseconds: a number with ns, us (or µs), ms or s.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let (digits, unit) = split_number(s.trim());
    let value = number(digits, s)?;
    let scale = match unit {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        _ => {
            return Err(format!(
                "unknown duration unit in {s:?} (use ns, us, ms or s)"
            ))
        }
    };
    to_u64(value * scale, s)
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
    fn sizes() {
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("64 KiB"), Ok(64 << 10));
        assert_eq!(parse_size("1.5g"), Ok(3 << 29));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("1GB").unwrap_err().contains("GiB"));
        assert!(parse_size("lots").is_err());
    }

    #[test]
    fn bandwidths() {
        assert_eq!(parse_bandwidth("10Gbit"), Ok(1_250_000_000));
        assert_eq!(parse_bandwidth("100Mbit/s"), Ok(12_500_000));
        assert_eq!(parse_bandwidth("1Gbps"), Ok(125_000_000));
        assert_eq!(parse_bandwidth("1.25GB/s"), Ok(1_250_000_000));
        assert_eq!(parse_bandwidth("500MiB/s"), Ok(500 << 20));
        assert_eq!(parse_bandwidth("1000"), Ok(1000));
        assert!(parse_bandwidth("0Gbit").is_err());
        assert!(parse_bandwidth("10 furlongs").is_err());
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
        assert_eq!(s.kind, Kind::Colo);
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
            "stalls apply to checkpointed streams (remus or colo) only"
        );
        let cli = Cli::try_parse_from(["synth", "-o", "/nonexistent-dir/x"]).unwrap();
        let e = format!("{:#}", run(&cli.synth).unwrap_err());
        assert!(e.starts_with("cannot create /nonexistent-dir/x"), "{e}");
    }
}
