//! The `migscope` command: parses the command line, runs one subcommand and
//! maps its outcome to an exit status (0 clean, 1 problems found, 2 input
//! unreadable).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use migscope::report::records;
use migscope::synth::cli::SynthArgs;

#[derive(Parser)]
#[command(
    name = "migscope",
    version,
    about = "Inspect Xen migration traffic: libxl/libxc stream v2, COLO and Remus checkpoints"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the records of a raw stream file (xl save file, libxl or libxc stream, COLO back channel).
    Records {
        /// The stream file ('-' for standard input).
        file: PathBuf,
        /// Show the field tree of every record.
        #[arg(short = 'V', long)]
        verbose: bool,
        /// Write JSON lines instead of text.
        #[arg(long)]
        json: bool,
        /// The file holds a COLO back channel (secondary -> primary).
        #[arg(long)]
        back_channel: bool,
    },
    /// Generate a synthetic migration stream (plain, Remus, COLO) for tests and demos.
    Synth(SynthArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Records {
            file,
            verbose,
            json,
            back_channel,
        } => {
            let opts = records::Options {
                verbose,
                json,
                back_channel,
            };
            records_cmd(&file, opts)
        }
        Command::Synth(args) => match migscope::synth::cli::run(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("migscope: {e:#}");
                ExitCode::from(2)
            }
        },
    }
}

fn records_cmd(file: &PathBuf, opts: records::Options) -> ExitCode {
    let mut input: Box<dyn io::Read> = if file.as_os_str() == "-" {
        Box::new(io::stdin().lock())
    } else {
        match File::open(file) {
            Ok(f) => Box::new(f),
            Err(e) => {
                eprintln!("migscope: cannot open {}: {}", file.display(), describe(&e));
                return ExitCode::from(2);
            }
        }
    };
    let stdout = io::stdout().lock();
    let mut out = BufWriter::with_capacity(1 << 16, stdout);
    let result = records::run(&mut input, opts, &mut out).and_then(|o| out.flush().map(|_| o));
    match result {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "migscope: reading {} failed: {}",
                file.display(),
                describe(&e)
            );
            ExitCode::from(2)
        }
        Ok(o) => {
            if let Some(why) = o.refused {
                eprintln!("migscope: {}: {why}", file.display());
                ExitCode::from(2)
            } else if o.errors + o.warnings > 0 {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
    }
}

fn describe(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no such file; check the path".into(),
        io::ErrorKind::PermissionDenied => "permission denied; check the file's permissions".into(),
        _ => e.to_string(),
    }
}
