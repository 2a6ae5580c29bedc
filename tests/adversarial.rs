//! Adversarial captures, run through the `migscope` binary as a user runs it.
//!
//! Every case writes a hostile capture by hand: pcap and pcapng framing byte
//! by byte, Ethernet/IPv4/TCP frames from etherparse, stream bytes from the
//! wire reference (`PROTOCOL.md`), none of it from migscope's own `synth`.
//! It then runs `migscope report --format json` (or another command) on it
//! in a child process and checks three things: the run ends with the right
//! exit status, the output names what is wrong, and the child's peak resident
//! set stays under the case's bound. The figures are printed as a table.
//!
//! This test has its own `main` (`harness = false` in `Cargo.toml`): peak RSS
//! is per process, so each run goes through `adversarial --measure CMD...`,
//! which runs CMD as its only child and prints the child's peak RSS as
//! `getrusage(RUSAGE_CHILDREN)` reports it. `cargo test --test adversarial
//! NAME` runs the cases whose name contains NAME.

mod common;
#[path = "adversarial/pcap.rs"]
mod pcap;

use common::rec;
use pcap::*;
use std::io::{self, Write};
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Instant;

use etherparse::PacketBuilder;
use serde_json::Value;

const MIGSCOPE: &str = env!("CARGO_BIN_EXE_migscope");
const MIB: u64 = 1024 * 1024;

// ---------------------------------------------------------------------------
// The harness: a child wrapper that measures, a runner, a table.

/// `adversarial --measure CMD ARGS...`: runs CMD with inherited standard
/// streams, then appends its peak RSS to standard error and exits as it did.
fn measure(cmd: &[String]) -> ExitCode {
    use nix::sys::resource::{getrusage, UsageWho};
    let status = match Command::new(&cmd[0]).args(&cmd[1..]).status() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot run {}: {e}", cmd[0]);
            return ExitCode::from(120);
        }
    };
    let rss = getrusage(UsageWho::RUSAGE_CHILDREN)
        .map(|u| u.max_rss())
        .unwrap_or(-1);
    eprintln!("\nadversarial-peak-rss-kib {rss}");
    match status.code() {
        Some(c) => ExitCode::from(c as u8),
        None => {
            eprintln!("adversarial-killed-by-signal {status}");
            ExitCode::from(121)
        }
    }
}

/// What one run of migscope gave.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    rss_kib: u64,
    secs: f64,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON document ({e}); stderr: {}",
                self.stderr
            )
        })
    }

    /// The `diagnostics` messages of a JSON report, joined by newlines.
    fn diagnostics(&self) -> String {
        let j = self.json();
        j["diagnostics"]
            .as_array()
            .map(|d| {
                d.iter()
                    .map(|x| x["message"].as_str().unwrap_or("").to_string())
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default()
    }
}

/// Runs migscope with `args` under the measuring wrapper.
fn migscope(args: &[&str]) -> Run {
    let me = std::env::current_exe().expect("own path");
    let t = Instant::now();
    let out = Command::new(me)
        .arg("--measure")
        .arg(MIGSCOPE)
        .args(args)
        .output()
        .expect("run the wrapper");
    let secs = t.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !stderr.contains("adversarial-killed-by-signal"),
        "migscope was killed by a signal: {stderr}"
    );
    let (stderr, rss) = stderr
        .rsplit_once("\nadversarial-peak-rss-kib ")
        .expect("the wrapper's figure");
    let rss_kib = rss.trim().parse().expect("a number of KiB");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!stderr.contains("panicked"), "migscope panicked:\n{stderr}");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout,
        stderr: stderr.to_string(),
        rss_kib,
        secs,
    }
}

/// One line of the table.
struct Row {
    case: &'static str,
    input: u64,
    rss_kib: u64,
    bound: u64,
    secs: f64,
    code: i32,
}

/// Checks the run's peak RSS against `bound` and makes its table row.
fn row(case: &'static str, input: &Path, run: &Run, bound: u64) -> Row {
    let rss = run.rss_kib * 1024;
    assert!(
        rss <= bound,
        "{case}: peak RSS {} MiB is over the bound of {} MiB",
        rss / MIB,
        bound / MIB
    );
    Row {
        case,
        input: std::fs::metadata(input).map(|m| m.len()).unwrap_or(0),
        rss_kib: run.rss_kib,
        bound,
        secs: run.secs,
        code: run.code,
    }
}

fn assert_has(haystack: &str, needle: &str, what: &str) {
    assert!(
        haystack.contains(needle),
        "{what} does not mention {needle:?}:\n{haystack}"
    );
}

// ---------------------------------------------------------------------------
// Stream bytes, from PROTOCOL.md sections 3 and 4.

/// A record header claiming `len` body bytes, with no body.
fn header(t: u32, len: u32) -> Vec<u8> {
    let mut v = t.to_le_bytes().to_vec();
    v.extend_from_slice(&len.to_le_bytes());
    v
}

/// libxl header, LIBXC_CONTEXT, libxc image and domain headers (HVM),
/// and the static records of a version 3 stream.
fn stream_start() -> Vec<u8> {
    let mut s = b"LibxlFmt".to_vec();
    s.extend_from_slice(&2u32.to_be_bytes());
    s.extend_from_slice(&0u32.to_be_bytes());
    s.extend(rec(1, &[])); // LIBXC_CONTEXT
    s.extend_from_slice(&[0xff; 8]);
    s.extend_from_slice(b"XENF");
    s.extend_from_slice(&3u32.to_be_bytes());
    s.extend_from_slice(&[0; 8]); // options, reserved
    for v in [2u32, 12, 4, 19] {
        // type HVM, page_shift 12 (u16) + reserved (u16) as one u32, Xen 4.19
        s.extend_from_slice(&v.to_le_bytes());
    }
    s.extend(rec(0x11, &[0; 24])); // X86_CPUID_POLICY, one leaf
    s.extend(rec(0x12, &[0; 16])); // X86_MSR_POLICY, one MSR
    s.extend(rec(0x10, &[])); // STATIC_DATA_END
    s
}

/// PAGE_DATA for `pfns`, one page each, the page filled with `fill`.
fn page_data(pfns: &[u64], fill: u8) -> Vec<u8> {
    common::page_data(pfns, |_| fill)
}

/// The CPU state of a checkpoint: X86_TSC_INFO, HVM_CONTEXT, HVM_PARAMS.
fn cpu_state() -> Vec<u8> {
    let mut s = rec(8, &[0; 24]);
    let mut hvm = Vec::new();
    for (code, len) in [(1u16, 16u32), (2, 64), (0, 0)] {
        hvm.extend_from_slice(&code.to_le_bytes());
        hvm.extend_from_slice(&0u16.to_le_bytes());
        hvm.extend_from_slice(&len.to_le_bytes());
        hvm.resize(hvm.len() + len as usize, 0x11);
    }
    s.extend(rec(9, &hvm));
    let mut params = 1u32.to_le_bytes().to_vec();
    params.extend_from_slice(&[0; 4]);
    params.extend_from_slice(&1u64.to_le_bytes());
    params.extend_from_slice(&0xfeffeu64.to_le_bytes());
    s.extend(rec(0x0a, &params));
    s
}

/// EMULATOR_CONTEXT (qemu-upstream) with a small device blob.
fn emulator_context() -> Vec<u8> {
    let mut body = 2u32.to_le_bytes().to_vec();
    body.extend_from_slice(&0u32.to_le_bytes());
    body.extend_from_slice(b"QEVM\0\0\0\x03");
    body.resize(body.len() + 300, 0x5a);
    rec(3, &body)
}

/// CHECKPOINT_STATE with `control` (0 NEW, 1 SVM_SUSPENDED, 2 SVM_READY,
/// 3 SVM_RESUMED): body_length 4, 16 bytes on the wire.
fn checkpoint_state(control: u32) -> Vec<u8> {
    rec(5, &control.to_le_bytes())
}

fn dirty_pfn_list(pfns: &[u64]) -> Vec<u8> {
    let body: Vec<u8> = pfns.iter().flat_map(|p| p.to_le_bytes()).collect();
    rec(0x0f, &body)
}

const LIBXC_CHECKPOINT: u32 = 0x0e;
const CHECKPOINT_END: u32 = 4;

// ---------------------------------------------------------------------------
// A COLO session written by hand with known event times.

/// The event times of one checkpoint as written, in the order of PROTOCOL.md
/// section 6 (checkpoint 0 has no new, svm_suspended or dirty list).
#[derive(Debug, Clone, Copy, Default)]
struct Written {
    new: Option<f64>,
    svm_suspended: Option<f64>,
    dirty_pfn_list: Option<f64>,
    libxc_checkpoint: f64,
    checkpoint_end: f64,
    svm_ready: f64,
    svm_resumed: f64,
    /// Pfn entries of its PAGE_DATA.
    pages: usize,
}

/// Writes a COLO session with `n` checkpoints (0..n) on `flow`, starting at
/// `t0`, each record in packets of its own stamped with its event time.
/// `memory_hook(k, pcap, flow, t, bytes)` sends the forward bytes of
/// checkpoint k's memory phase (and may damage them; [`intact`] sends them).
fn colo_session<W: Write>(
    p: &mut Pcap<W>,
    flow: &mut Flow,
    t0: f64,
    n: usize,
    memory_hook: impl FnMut(usize, &mut Pcap<W>, &mut Flow, f64, Vec<u8>),
) -> Vec<Written> {
    colo_session_with(p, flow, t0, n, memory_hook, intact_back)
}

/// Sends a back-channel record as written.
fn intact_back<W: Write>(_: usize, p: &mut Pcap<W>, f: &mut Flow, t: f64, bytes: Vec<u8>) {
    f.send(p, 1, t, &bytes);
}

/// As [`colo_session`], with `back_hook(k, ...)` sending every back-channel
/// record of checkpoint k (the bytes start with the record's type).
fn colo_session_with<W: Write>(
    p: &mut Pcap<W>,
    flow: &mut Flow,
    t0: f64,
    n: usize,
    mut memory_hook: impl FnMut(usize, &mut Pcap<W>, &mut Flow, f64, Vec<u8>),
    mut back_hook: impl FnMut(usize, &mut Pcap<W>, &mut Flow, f64, Vec<u8>),
) -> Vec<Written> {
    let mut out = Vec::new();
    let mut t = t0;
    flow.handshake(p, t);
    t += 0.001;
    flow.send(p, 0, t, &stream_start());
    for k in 0..n {
        let mut w = Written::default();
        if k > 0 {
            t += 0.100; // run
            flow.send(p, 0, t, &checkpoint_state(0));
            w.new = Some(t);
            t += 0.004;
            back_hook(k, p, flow, t, checkpoint_state(1));
            w.svm_suspended = Some(t);
            t += 0.002;
            back_hook(k, p, flow, t, dirty_pfn_list(&[3, 9, 17]));
            w.dirty_pfn_list = Some(t);
        }
        let pfns: Vec<u64> = if k == 0 {
            (0..64).collect()
        } else {
            (0..(4 + k as u64 % 5)).map(|i| i * 7 + k as u64).collect()
        };
        t += 0.003;
        w.pages = pfns.len();
        let mut memory = page_data(&pfns, k as u8);
        memory.extend(cpu_state());
        memory_hook(k, p, flow, t, memory);
        t += 0.001;
        flow.send(p, 0, t, &rec(LIBXC_CHECKPOINT, &[]));
        w.libxc_checkpoint = t;
        t += 0.001;
        flow.send(p, 0, t, &emulator_context());
        t += 0.001;
        flow.send(p, 0, t, &rec(CHECKPOINT_END, &[]));
        w.checkpoint_end = t;
        t += 0.010;
        back_hook(k, p, flow, t, checkpoint_state(2));
        w.svm_ready = t;
        t += 0.002;
        back_hook(k, p, flow, t, checkpoint_state(3));
        w.svm_resumed = t;
        out.push(w);
    }
    out
}

/// Sends the memory phase as written.
fn intact<W: Write>(_: usize, p: &mut Pcap<W>, f: &mut Flow, t: f64, bytes: Vec<u8>) {
    f.send(p, 0, t, &bytes);
}

/// Compares a report's checkpoint with what was written: every event time
/// exact to the microsecond of the pcap timestamps, relative to `origin`.
fn assert_checkpoint_exact(c: &Value, w: &Written, origin: f64, what: &str) {
    let ev = &c["events"];
    let near = |key: &str, want: Option<f64>| {
        let got = ev[key].as_f64();
        match (got, want) {
            (Some(g), Some(x)) => assert!(
                (g - (x - origin)).abs() < 2e-6,
                "{what}: {key} at {g}, written at {}",
                x - origin
            ),
            (None, None) => {}
            _ => panic!("{what}: {key} is {got:?}, written {want:?}"),
        }
    };
    near("new", w.new);
    near("svm_suspended", w.svm_suspended);
    near("dirty_pfn_list", w.dirty_pfn_list);
    near("libxc_checkpoint", Some(w.libxc_checkpoint));
    near("checkpoint_end", Some(w.checkpoint_end));
    near("svm_ready", Some(w.svm_ready));
    near("svm_resumed", Some(w.svm_resumed));
    assert_eq!(c["complete"], Value::Bool(true), "{what}: complete");
    assert_eq!(c["pages"], w.pages, "{what}: pages");
}

fn report(file: &Path, extra: &[&str]) -> Run {
    let f = file.to_str().unwrap();
    let mut args = vec!["report", f, "--format", "json"];
    args.extend_from_slice(extra);
    migscope(&args)
}

// ---------------------------------------------------------------------------
// The cases.

type Case = fn(&Path) -> Row;

const CASES: &[(&str, Case)] = &[
    ("clean_handmade_colo", clean_handmade_colo),
    ("corrupted_handmade_colo", corrupted_handmade_colo),
    ("record_lengths_at_and_over_the_limit", record_lengths),
    ("endless_zero_length_records", zero_length_records),
    ("page_data_counts_that_lie", page_data_lies),
    ("thousands_of_flows_out_of_order", thousands_of_flows),
    (
        "overlapping_retransmissions_differ",
        overlapping_retransmissions,
    ),
    ("time_going_backwards", time_backwards),
    ("bogus_pcapng_block_lengths", bogus_pcapng),
    ("a_million_tiny_packets", million_tiny_packets),
    ("truncated_file", truncated_file),
    ("every_packet_captured_twice", captured_twice),
    ("corrupted_back_channel", corrupted_back_channel),
    ("random_damage_never_lies", random_damage),
];

/// The reference: a COLO session written by hand, no damage. Every
/// checkpoint is reported complete with the event times written.
fn clean_handmade_colo(file: &Path) -> Row {
    let mut p = pcap_file(file);
    let mut flow = Flow::new(40001, 8002);
    let written = colo_session(&mut p, &mut flow, 1000.0, 20, intact);
    flow.close(&mut p, 1010.0);
    p.finish();
    let run = report(file, &[]);
    assert_eq!(run.code, 0, "exit status; stderr: {}", run.stderr);
    let j = run.json();
    let s = &j["sessions"][0];
    assert_eq!(s["kind"], "colo");
    let cps = s["checkpoints"].as_array().unwrap();
    assert_eq!(cps.len(), written.len(), "checkpoints");
    for (k, (c, w)) in cps.iter().zip(&written).enumerate() {
        assert_eq!(c["index"], k);
        assert_checkpoint_exact(c, w, 1000.0, &format!("checkpoint {k}"));
    }
    assert_eq!(run.diagnostics(), "");
    row("clean_handmade_colo", file, &run, 32 * MIB)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--measure") {
        return measure(&args[2..]);
    }
    // libtest-style flags (--nocapture, --test-threads ...) are accepted and
    // ignored; a plain word selects cases by name.
    let filter: Vec<&String> = args[1..].iter().filter(|a| !a.starts_with('-')).collect();
    if args[1..].iter().any(|a| a == "--list") {
        for (name, _) in CASES {
            println!("{name}: test");
        }
        return ExitCode::SUCCESS;
    }
    // ADVERSARIAL_KEEP=DIR keeps the captures in DIR, to look at them.
    let keep = std::env::var_os("ADVERSARIAL_KEEP").map(std::path::PathBuf::from);
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let dir = keep.as_deref().unwrap_or(tmp.path());
    let mut rows = Vec::new();
    let mut failed = Vec::new();
    for (name, case) in CASES {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        let file = dir.join(format!("{name}.pcap"));
        match panic::catch_unwind(AssertUnwindSafe(|| case(&file))) {
            Ok(r) => rows.push(r),
            Err(_) => failed.push(*name),
        }
        if keep.is_none() {
            let _ = std::fs::remove_file(&file);
        }
    }
    let mut out = io::stdout().lock();
    let _ = writeln!(
        out,
        "\nadversarial captures: peak RSS of `migscope` per case (bound = the case's limit)\n{:<34} {:>10} {:>10} {:>10} {:>8} {:>5}",
        "case", "input", "peak RSS", "bound", "time", "exit"
    );
    for r in &rows {
        let _ = writeln!(
            out,
            "{:<34} {:>10} {:>10} {:>10} {:>7.2}s {:>5}",
            r.case,
            size(r.input),
            size(r.rss_kib * 1024),
            size(r.bound),
            r.secs,
            r.code
        );
    }
    if failed.is_empty() {
        let _ = writeln!(out, "test result: ok. {} cases passed", rows.len());
        ExitCode::SUCCESS
    } else {
        let _ = writeln!(out, "test result: FAILED. failed cases: {failed:?}");
        ExitCode::FAILURE
    }
}

fn size(b: u64) -> String {
    if b >= 10 * MIB {
        format!("{} MiB", b / MIB)
    } else if b >= MIB {
        format!("{:.1} MiB", b as f64 / MIB as f64)
    } else {
        format!("{} KiB", b.div_ceil(1024))
    }
}

/// Checkpoints whose memory phase `corrupted_handmade_colo` damages.
const DAMAGED: [usize; 8] = [4, 7, 10, 13, 16, 19, 22, 25];

/// A hand-made COLO capture damaged where nothing announces it: a PAGE_DATA
/// whose count lies, a record type flipped, a record length blown up
/// (framing lost), a segment missing, a retransmission with other bytes, a
/// packet cut by the snap length, a stray segment far outside the window,
/// and between them packets that are not TCP or not even IPv4.
/// Every checkpoint not damaged is reported complete and exact; a damaged one
/// is either exact too or not complete, never wrong.
fn corrupted_handmade_colo(file: &Path) -> Row {
    let mut p = pcap_file(file);
    let mut flow = Flow::new(40002, 8002);
    let hook = |k: usize, p: &mut Pcap<_>, f: &mut Flow, t: f64, mut bytes: Vec<u8>| {
        // An ARP request and a UDP datagram between every checkpoint.
        let mut arp = vec![0xff; 6];
        arp.extend_from_slice(&[2, 0, 1, 2, 3, 4, 0x08, 0x06]);
        arp.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
        arp.resize(60, 0);
        p.packet(t, &arp);
        let udp = PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(5353, 5353);
        let mut d = Vec::new();
        udp.write(&mut d, b"\x1b[31mnot migration").unwrap();
        p.packet(t, &d);
        match k {
            4 => bytes[8..12].copy_from_slice(&1000u32.to_le_bytes()), // PAGE_DATA count
            7 => {
                // HVM_CONTEXT's type: 9 -> 0x0109, an unknown mandatory record
                let at = bytes.len() - 32 - 112; // before HVM_PARAMS (32) and itself (112)
                assert_eq!(bytes[at], 9, "HVM_CONTEXT type where expected");
                bytes[at + 1] = 1;
            }
            10 => bytes[4..8].copy_from_slice(&0x7fff_fff8u32.to_le_bytes()), // body length
            13 => {
                // the third segment never reaches the capture (the ACK for
                // the rest covers it)
                let (a, b) = (2 * 1448, 3 * 1448);
                f.send(p, 0, t, &bytes[..a]);
                f.next[0] = f.next[0].wrapping_add((b - a) as u32);
                f.send(p, 0, t, &bytes[b..]);
                return;
            }
            16 => {
                // the second segment, sent, then retransmitted with other bytes
                f.send(p, 0, t, &bytes[..2 * 1448]);
                let other = vec![0xee; 1448];
                let fr = f.frame_at(0, f.next[0].wrapping_sub(1448), &other, "PA");
                p.packet(t + 0.0005, &fr);
                f.send(p, 0, t + 0.0005, &bytes[2 * 1448..]);
                return;
            }
            19 => {
                // the second segment cut by a snap length of 100
                f.send(p, 0, t, &bytes[..1448]);
                let fr = f.frame_at(0, f.next[0], &bytes[1448..2 * 1448], "PA");
                p.record(t, &fr[..100], 100, fr.len() as u32);
                f.next[0] = f.next[0].wrapping_add(1448);
                f.send(p, 0, t, &bytes[2 * 1448..]);
                return;
            }
            22 => {
                // a stray segment 100 MB past the stream, with a malformed
                // IPv4 packet (header length 3) after it
                let fr = f.frame_at(0, f.next[0].wrapping_add(100_000_000), b"LibxlFmt", "PA");
                p.packet(t, &fr);
                let mut bad = d.clone();
                bad[14] = 0x43;
                p.packet(t, &bad);
            }
            25 => {
                // the pfn list says page type 0xF (no data) for every entry,
                // so body_length no longer matches
                let count = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
                for i in 0..count {
                    bytes[16 + 8 * i + 7] |= 0xf0;
                }
            }
            _ => {}
        }
        f.send(p, 0, t, &bytes);
    };
    let written = colo_session(&mut p, &mut flow, 500.0, 30, hook);
    flow.close(&mut p, 520.0);
    p.finish();
    let run = report(file, &[]);
    let j = run.json();
    let s = &j["sessions"][0];
    assert_eq!(s["kind"], "colo");
    let cps = s["checkpoints"].as_array().unwrap();
    for (k, w) in written.iter().enumerate() {
        let c = cps.iter().find(|c| c["index"] == k);
        let what = format!("checkpoint {k}");
        match c {
            Some(c) if !DAMAGED.contains(&k) || c["complete"] == true => {
                assert_checkpoint_exact(c, w, 500.0, &what)
            }
            Some(_) => {}
            None => assert!(DAMAGED.contains(&k), "{what} is missing"),
        }
    }
    assert_eq!(run.code, 1, "exit status; stderr: {}", run.stderr);
    let d = run.diagnostics();
    for said in [
        "PAGE_DATA body is 32840 bytes but its 1000 pfn entries",
        "unknown mandatory libxc record type 0x00000109",
        "claims a 2147483640-byte body, over the 128 MiB limit",
        "PAGE_DATA body is 16424 bytes but its 4 pfn entries (0 with data) need 40",
    ] {
        assert_has(&d, said, "the diagnostics");
    }
    // A PAGE_DATA whose count lies, a length over the limit, pfn types that
    // contradict the length: those checkpoints cannot be trusted.
    for k in [4, 10, 25] {
        assert_eq!(cps[k]["complete"], false, "checkpoint {k}: {}", cps[k]);
    }
    let fwd = &s["forward"];
    // One segment lost by the capture, one cut by the snap length; the stray
    // segment far ahead is not a 100 MB gap.
    assert_eq!(fwd["gaps"], 2, "{fwd}");
    assert_eq!(fwd["gap_bytes"], 1448 + (1448 - 46), "{fwd}");
    assert_eq!(fwd["tcp"]["differing_bytes"], 1448, "{fwd}");
    row("corrupted_handmade_colo", file, &run, 32 * MIB)
}

/// A libxc record of exactly 128 MiB (the limit libxc accepts), sent whole;
/// one claiming 8 bytes more (corruption: the decoder looks for the next
/// record); one claiming 100 MiB of which 1 KiB arrives before the FIN.
fn record_lengths(file: &Path) -> Row {
    let mut p = pcap_file(file);
    let mut f = Flow::new(40003, 8002);
    f.handshake(&mut p, 1.0);
    f.send(&mut p, 0, 1.001, &stream_start());
    let mut big = header(0x8000_0123, 0x0800_0000); // optional, unknown
    big.resize(8 + (1 << 20), 0x42);
    f.send(&mut p, 0, 1.01, &big);
    let mib = vec![0x42; 1 << 20];
    for i in 1..128 {
        f.send(&mut p, 0, 1.01 + f64::from(i) * 0.001, &mib);
    }
    f.send(&mut p, 0, 1.2, &rec(0x10, &[])); // a record to find again
    f.send(&mut p, 0, 1.3, &header(1, 0x0800_0008));
    f.send(&mut p, 0, 1.3, &[0x42; 4096]);
    let mut after = checkpoint_state(0);
    after.extend(rec(0x08, &[0; 24]));
    f.send(&mut p, 0, 1.4, &after);
    let mut cut = header(0x0b, 100 << 20); // TOOLSTACK, opaque
    cut.extend_from_slice(&[7; 1024]);
    f.send(&mut p, 0, 1.5, &cut);
    f.close(&mut p, 1.6);
    p.finish();
    let run = report(file, &[]);
    assert_eq!(run.code, 1, "stderr: {}", run.stderr);
    let d = run.diagnostics();
    assert_has(
        &d,
        "claims a 134217736-byte body, over the 128 MiB limit",
        "diagnostics",
    );
    assert!(
        !d.contains("134217728-byte body"),
        "128 MiB is allowed:\n{d}"
    );
    assert_has(&d, "ends inside", "diagnostics");
    let j = run.json();
    let types: Vec<String> = j["sessions"][0]["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["type"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(
        types.iter().any(|t| t == "X86_TSC_INFO"),
        "found again: {types:?}"
    );
    // Record bodies are never buffered whole.
    row("record_lengths_at_and_over_the_limit", file, &run, 40 * MIB)
}

/// A million zero-length records (an unknown optional type), then a thousand
/// PAGE_DATA records with empty bodies.
fn zero_length_records(file: &Path) -> Row {
    let mut p = pcap_file(file);
    let mut f = Flow::new(40004, 8002);
    f.handshake(&mut p, 1.0);
    f.send(&mut p, 0, 1.001, &stream_start());
    let zero = rec(0x8000_0077, &[]);
    let chunk: Vec<u8> = zero.iter().copied().cycle().take(8 * 10_000).collect();
    for i in 0..100 {
        f.send(&mut p, 0, 1.01 + f64::from(i) * 0.001, &chunk);
    }
    let empty: Vec<u8> = rec(1, &[]).repeat(1000);
    f.send(&mut p, 0, 1.2, &empty);
    f.close(&mut p, 1.3);
    p.finish();
    let run = report(file, &[]);
    assert_eq!(run.code, 1, "stderr: {}", run.stderr);
    let j = run.json();
    let s = &j["sessions"][0];
    let records = s["forward"]["records"].as_u64().unwrap();
    assert!(records > 1_000_000, "{}", s["forward"]);
    // The first empty PAGE_DATA is a corrupt header; the decoder then hunts
    // through the rest, which hold no record boundary it can trust.
    assert!(
        s["forward"]["errors"].as_u64().unwrap() >= 1,
        "{}",
        s["forward"]
    );
    let diags = j["diagnostics"].as_array().unwrap();
    assert!(
        diags.len() <= 1001,
        "diagnostics are capped: {}",
        diags.len()
    );
    assert_has(
        &run.diagnostics(),
        "PAGE_DATA claims a 0-byte body",
        "diagnostics",
    );
    row("endless_zero_length_records", file, &run, 32 * MIB)
}

/// PAGE_DATA whose count says 2^32 - 1, 0, or more entries than the body
/// holds, in checkpoints 2, 4 and 6 of a COLO session. Their neighbours
/// stay exact.
fn page_data_lies(file: &Path) -> Row {
    let mut p = pcap_file(file);
    let mut flow = Flow::new(40005, 8002);
    let hook = |k: usize, p: &mut Pcap<_>, f: &mut Flow, t: f64, mut bytes: Vec<u8>| {
        let count = match k {
            2 => Some(u32::MAX),
            4 => Some(0),
            6 => Some(40),
            _ => None,
        };
        if let Some(c) = count {
            bytes[8..12].copy_from_slice(&c.to_le_bytes());
        }
        f.send(p, 0, t, &bytes);
    };
    let written = colo_session(&mut p, &mut flow, 10.0, 8, hook);
    flow.close(&mut p, 12.0);
    p.finish();
    let run = report(file, &[]);
    assert_eq!(run.code, 1, "stderr: {}", run.stderr);
    let d = run.diagnostics();
    assert_has(&d, "4294967295", "diagnostics");
    assert!(d.matches("PAGE_DATA").count() >= 3, "{d}");
    let j = run.json();
    let cps = j["sessions"][0]["checkpoints"].as_array().unwrap().clone();
    for k in [0, 1, 3, 5, 7] {
        assert_checkpoint_exact(&cps[k], &written[k], 10.0, &format!("checkpoint {k}"));
    }
    row("page_data_counts_that_lie", file, &run, 32 * MIB)
}

/// 3000 migrations at once, each holding 24 KiB out of order behind a lost
/// segment: 70 MiB wanted, over the 64 MiB cap on held bytes. Bound: that
/// cap, the 64 MiB cap on retransmission history rings, and 32 MiB more.
fn thousands_of_flows(file: &Path) -> Row {
    let mut p = pcap_file(file);
    let n = 3000u16;
    let mut flows: Vec<Flow> = (0..n)
        .map(|i| Flow::between(PRIMARY, [10, 9, (i >> 8) as u8, i as u8], 20000 + i, 8002))
        .collect();
    for (i, f) in flows.iter_mut().enumerate() {
        f.handshake(&mut p, 1.0 + i as f64 * 1e-5);
        f.send(&mut p, 0, 1.1, &stream_start());
        f.next[0] = f.next[0].wrapping_add(1448); // lost
    }
    let held = vec![0x33; 1448];
    for round in 0..17 {
        for f in flows.iter_mut() {
            f.send(&mut p, 0, 1.2 + f64::from(round) * 0.01, &held);
        }
    }
    p.finish();
    let f = file.to_str().unwrap();
    let run = migscope(&["-r", f]);
    assert_eq!(run.code, 1, "stderr: {}", run.stderr);
    assert_has(&run.stdout, "3000 migration sessions", "the summary");
    assert_has(&run.stdout, "out-of-order buffer overflows", "the summary");
    row(
        "thousands_of_flows_out_of_order",
        file,
        &run,
        (64 + 64 + 32) * MIB,
    )
}

/// Every memory phase sent twice: then again from 700 bytes in, with other
/// bytes, overlapping segment boundaries. The first copy is kept.
fn overlapping_retransmissions(file: &Path) -> Row {
    let mut p = pcap_file(file);
    let mut flow = Flow::new(40006, 8002);
    let mut differing = 0u64;
    // Checkpoint 0's memory is longer than the 256 KiB kept to compare
    // retransmissions with, so it is sent once.
    let hook = |k: usize, p: &mut Pcap<_>, f: &mut Flow, t: f64, bytes: Vec<u8>| {
        let start = f.next[0];
        f.send(p, 0, t, &bytes);
        if k == 0 {
            return;
        }
        let again: Vec<u8> = bytes[700..].iter().map(|b| b ^ 0x5a).collect();
        differing += again.len() as u64;
        for (i, c) in again.chunks(1000).enumerate() {
            let fr = f.frame_at(0, start.wrapping_add(700 + 1000 * i as u32), c, "PA");
            p.packet(t, &fr);
        }
    };
    let written = colo_session(&mut p, &mut flow, 20.0, 10, hook);
    flow.close(&mut p, 22.0);
    p.finish();
    let run = report(file, &[]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let j = run.json();
    let s = &j["sessions"][0];
    assert_eq!(s["forward"]["tcp"]["differing_bytes"], differing);
    assert_eq!(s["forward"]["gaps"], 0);
    let cps = s["checkpoints"].as_array().unwrap();
    for (k, w) in written.iter().enumerate() {
        assert_checkpoint_exact(&cps[k], w, 20.0, &format!("checkpoint {k}"));
    }
    row("overlapping_retransmissions_differ", file, &run, 32 * MIB)
}

/// Timestamps that go backwards: from checkpoint 5 on the clock is an hour
/// behind, and single packets in between are a day early. Nothing is
/// negative, and it is said.
fn time_backwards(file: &Path) -> Row {
    let mut raw = Vec::new();
    {
        let mut p = Pcap::new(&mut raw);
        let mut flow = Flow::new(40007, 8002);
        colo_session(&mut p, &mut flow, 500_000.0, 10, intact);
        flow.close(&mut p, 500_005.0);
        p.finish();
    }
    // The same packets again with their timestamps moved back.
    let mut p = pcap_file(file);
    for (n, (us, frame, len)) in pcap_records(&raw).into_iter().enumerate() {
        let back = if n % 97 == 50 {
            86_400.0
        } else if n > 300 {
            3600.0
        } else {
            0.0
        };
        p.record(us as f64 / 1e6 - back, &frame, frame.len() as u32, len);
    }
    p.finish();
    let run = report(file, &[]);
    let j = run.json();
    assert_has(&run.stderr, "earlier than the packet before", "stderr");
    for c in j["sessions"][0]["checkpoints"].as_array().unwrap() {
        for (name, v) in c["phases"].as_object().unwrap() {
            if let Some(x) = v.as_f64() {
                assert!(x >= 0.0, "phase {name} of {} is {x}", c["index"]);
            }
        }
        if let Some(x) = c["downtime"].as_f64() {
            assert!(x >= 0.0, "downtime {x}");
        }
    }
    assert!(j["capture"]["duration"].as_f64().unwrap() >= 0.0);
    row("time_going_backwards", file, &run, 32 * MIB)
}

/// The records of a pcap written by [`Pcap`]: (microseconds, frame, orig len).
fn pcap_records(raw: &[u8]) -> Vec<(u64, Vec<u8>, u32)> {
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= raw.len() {
        let w = |i: usize| u32::from_le_bytes(raw[at + i..at + i + 4].try_into().unwrap());
        let (sec, usec, caplen, len) = (w(0), w(4), w(8) as usize, w(12));
        let us = u64::from(sec) * 1_000_000 + u64::from(usec);
        out.push((us, raw[at + 16..at + 16 + caplen].to_vec(), len));
        at += 16 + caplen;
    }
    out
}

/// A pcapng block: type, total length, body (padded), total length again.
fn block(kind: u32, body: &[u8]) -> Vec<u8> {
    let mut b = body.to_vec();
    b.resize(b.len().div_ceil(4) * 4, 0);
    let len = (b.len() + 12) as u32;
    let mut v = kind.to_le_bytes().to_vec();
    v.extend_from_slice(&len.to_le_bytes());
    v.extend(b);
    v.extend_from_slice(&len.to_le_bytes());
    v
}

fn epb(interface: u32, us: u64, frame: &[u8], len: u32) -> Vec<u8> {
    let mut b = interface.to_le_bytes().to_vec();
    b.extend_from_slice(&((us >> 32) as u32).to_le_bytes());
    b.extend_from_slice(&(us as u32).to_le_bytes());
    b.extend_from_slice(&(frame.len() as u32).to_le_bytes());
    b.extend_from_slice(&len.to_le_bytes());
    b.extend_from_slice(frame);
    block(6, &b)
}

/// A pcapng of a COLO session with bogus blocks: an enhanced packet block
/// claiming more captured bytes than it holds, one naming an interface that
/// does not exist, a block of an unknown type (all three skipped), and at
/// checkpoint 6 a block whose length is not a multiple of 4 (framing lost:
/// reading stops there). The checkpoints before it are exact.
fn bogus_pcapng(file: &Path) -> Row {
    let mut raw = Vec::new();
    let written = {
        let mut p = Pcap::new(&mut raw);
        let mut flow = Flow::new(40008, 8002);
        let w = colo_session(&mut p, &mut flow, 100.0, 10, intact);
        flow.close(&mut p, 102.0);
        p.finish();
        w
    };
    let stop_us = ((100.0 + written[6].new.unwrap()) / 2.0 * 1e6) as u64; // mid-run of 6
    let stop_us = stop_us.max((written[5].svm_resumed * 1e6) as u64 + 1);
    let mut out = Vec::new();
    let mut shb = 0x1a2b_3c4du32.to_le_bytes().to_vec();
    shb.extend_from_slice(&[1, 0, 0, 0]); // version 1.0
    shb.extend_from_slice(&u64::MAX.to_le_bytes()); // section length unknown
    out.extend(block(0x0a0d_0d0a, &shb));
    let mut idb = 1u16.to_le_bytes().to_vec(); // Ethernet
    idb.extend_from_slice(&[0, 0]);
    idb.extend_from_slice(&262_144u32.to_le_bytes());
    out.extend(block(1, &idb));
    let mut stopped = false;
    for (i, (us, frame, len)) in pcap_records(&raw).into_iter().enumerate() {
        if i == 20 {
            let mut e = epb(0, us, &frame[..40], 40);
            e[20..24].copy_from_slice(&5000u32.to_le_bytes()); // caplen 5000
            out.extend(e);
            out.extend(epb(7, us, &frame, len)); // no interface 7
            out.extend(block(0x0bad_0bad, b"not a block anyone knows"));
        }
        if us >= stop_us && !stopped {
            stopped = true;
            let mut b = block(6, &[0; 16]);
            b[4..8].copy_from_slice(&13u32.to_le_bytes());
            out.extend(b);
        }
        out.extend(epb(0, us, &frame, len));
    }
    std::fs::write(file, &out).unwrap();
    let run = report(file, &[]);
    assert_eq!(run.code, 1, "stderr: {}", run.stderr);
    assert_has(&run.stderr, "says it captured 5000 bytes", "stderr");
    assert_has(&run.stderr, "names interface 7", "stderr");
    assert_has(&run.stderr, "claims a length of 13 bytes", "stderr");
    let j = run.json();
    let cps = j["sessions"][0]["checkpoints"].as_array().unwrap().clone();
    assert_eq!(cps.len(), 6, "checkpoints 0-5 and no more");
    for (k, w) in written.iter().take(6).enumerate() {
        assert_checkpoint_exact(&cps[k], w, 100.0, &format!("checkpoint {k}"));
    }
    row("bogus_pcapng_block_lengths", file, &run, 32 * MIB)
}

/// A million packets of one payload byte each: a COLO session sent byte by
/// byte, each record's bytes stamped with its event time.
fn million_tiny_packets(file: &Path) -> Row {
    let mut p = pcap_file(file);
    let mut flow = Flow::new(40009, 8002);
    let hook = |_: usize, p: &mut Pcap<_>, f: &mut Flow, t: f64, bytes: Vec<u8>| {
        for b in bytes.chunks(1) {
            f.send(p, 0, t, b);
        }
    };
    let written = colo_session(&mut p, &mut flow, 300.0, 32, hook);
    flow.close(&mut p, 310.0);
    p.finish();
    let run = report(file, &[]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let j = run.json();
    let pk = j["capture"]["packets"].as_u64().unwrap();
    assert!(pk >= 1_000_000, "{pk} packets");
    let cps = j["sessions"][0]["checkpoints"].as_array().unwrap().clone();
    assert_eq!(cps.len(), written.len());
    for (k, w) in written.iter().enumerate() {
        assert_checkpoint_exact(&cps[k], w, 300.0, &format!("checkpoint {k}"));
    }
    row("a_million_tiny_packets", file, &run, 32 * MIB)
}

/// A capture cut in the middle of a packet, as a killed tcpdump leaves it.
fn truncated_file(file: &Path) -> Row {
    let mut raw = Vec::new();
    let written = {
        let mut p = Pcap::new(&mut raw);
        let mut flow = Flow::new(40010, 8002);
        let w = colo_session(&mut p, &mut flow, 200.0, 12, intact);
        flow.close(&mut p, 202.0);
        p.finish();
        w
    };
    // Cut 30 bytes into the record of the first packet after checkpoint 8's
    // CHECKPOINT_END.
    let cut_us = (written[8].checkpoint_end * 1e6) as u64 + 1;
    let at = 24
        + pcap_records(&raw)
            .iter()
            .take_while(|(us, _, _)| *us < cut_us)
            .map(|(_, frame, _)| 16 + frame.len())
            .sum::<usize>();
    raw.truncate(at + 30);
    std::fs::write(file, &raw).unwrap();
    let run = report(file, &[]);
    assert_eq!(run.code, 1, "stderr: {}", run.stderr);
    assert_has(&run.stderr, "ends inside packet", "stderr");
    let j = run.json();
    let cps = j["sessions"][0]["checkpoints"].as_array().unwrap().clone();
    for (k, w) in written.iter().take(8).enumerate() {
        assert_checkpoint_exact(&cps[k], w, 200.0, &format!("checkpoint {k}"));
    }
    assert_eq!(cps[8]["complete"], false, "{}", cps[8]);
    assert_eq!(cps[8]["events"]["svm_ready"], Value::Null);
    assert_eq!(cps.len(), 9);
    row("truncated_file", file, &run, 32 * MIB)
}

/// Every packet twice, back to back (`-i any` over a bridge): the same
/// checkpoints, and no retransmission, duplicate ACK or gap is made up.
fn captured_twice(file: &Path) -> Row {
    let mut raw = Vec::new();
    let written = {
        let mut p = Pcap::new(&mut raw);
        let mut flow = Flow::new(40011, 8002);
        let w = colo_session(&mut p, &mut flow, 700.0, 10, intact);
        flow.close(&mut p, 702.0);
        p.finish();
        w
    };
    let mut p = pcap_file(file);
    let records = pcap_records(&raw);
    for (us, frame, _) in &records {
        p.packet(*us as f64 / 1e6, frame);
        p.packet(*us as f64 / 1e6, frame);
    }
    p.finish();
    let run = report(file, &[]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let j = run.json();
    let s = &j["sessions"][0];
    for d in ["forward", "back"] {
        let tcp = &s[d]["tcp"];
        assert_eq!(tcp["retransmissions"], 0, "{d}: {tcp}");
        assert_eq!(tcp["dup_acks"], 0, "{d}: {tcp}");
        assert!(tcp["duplicates"].as_u64().unwrap() > 0, "{d}: {tcp}");
        assert_eq!(s[d]["gaps"], 0);
    }
    let total: u64 = ["forward", "back"]
        .iter()
        .map(|d| s[*d]["tcp"]["duplicates"].as_u64().unwrap())
        .sum();
    // Copies of segments with data, SYN or FIN are told apart; pure ACKs
    // are not judged (a burst of identical duplicate ACKs is normal TCP).
    let judged = records
        .iter()
        .filter(|(_, frame, _)| {
            let p = etherparse::SlicedPacket::from_ethernet(frame).unwrap();
            match p.transport {
                Some(etherparse::TransportSlice::Tcp(t)) => {
                    !t.payload().is_empty() || t.syn() || t.fin()
                }
                _ => false,
            }
        })
        .count();
    assert_eq!(total as usize, judged, "every copy is a duplicate");
    let cps = s["checkpoints"].as_array().unwrap();
    for (k, w) in written.iter().enumerate() {
        assert_checkpoint_exact(&cps[k], w, 700.0, &format!("checkpoint {k}"));
    }
    row("every_packet_captured_twice", file, &run, 32 * MIB)
}

/// The back channel damaged: an unknown CHECKPOINT_STATE control id in
/// checkpoint 3, a dirty pfn list whose length is blown up (framing lost) in
/// checkpoint 6, an SVM_READY the capture lost (the primary's ACK covers it)
/// in checkpoint 9, and an SVM_RESUMED split over two segments, the first
/// retransmitted with other bytes, in checkpoint 12. Every other checkpoint
/// is exact; a damaged one is exact or partial, never wrong.
fn corrupted_back_channel(file: &Path) -> Row {
    let mut p = pcap_file(file);
    let mut flow = Flow::new(40012, 8002);
    let mut seen = [0usize; 16];
    let back = |k: usize, p: &mut Pcap<_>, f: &mut Flow, t: f64, mut bytes: Vec<u8>| {
        let kind = bytes[0] as usize;
        let control = if kind == 5 { bytes[8] } else { 0xf };
        seen[k % 16] += 1;
        match (k, control) {
            (3, 1) => bytes[8] = 9, // SVM_SUSPENDED -> control id 9
            (6, 0xf) => bytes[4..8].copy_from_slice(&0x00ff_fff8u32.to_le_bytes()),
            (9, 2) => {
                // Lost by the capture; the next packet from the primary ACKs it.
                f.next[1] = f.next[1].wrapping_add(bytes.len() as u32);
                let ack = f.frame_at(0, f.next[0], &[], "A");
                p.packet(t + 0.0001, &ack);
                return;
            }
            (12, 3) => {
                let other: Vec<u8> = bytes[..8].iter().map(|b| b ^ 0xff).collect();
                f.send(p, 1, t, &bytes[..8]);
                let fr = f.frame_at(1, f.next[1].wrapping_sub(8), &other, "PA");
                p.packet(t, &fr);
                f.send(p, 1, t, &bytes[8..]);
                return;
            }
            _ => {}
        }
        f.send(p, 1, t, &bytes);
    };
    let written = colo_session_with(&mut p, &mut flow, 800.0, 16, intact, back);
    flow.close(&mut p, 803.0);
    p.finish();
    let run = report(file, &[]);
    assert_eq!(run.code, 1, "stderr: {}", run.stderr);
    let j = run.json();
    let s = &j["sessions"][0];
    let cps = s["checkpoints"].as_array().unwrap();
    let damaged = [3, 6, 9, 12];
    for (k, w) in written.iter().enumerate() {
        let what = format!("checkpoint {k}");
        let c = cps.iter().find(|c| c["index"] == k);
        match c {
            Some(c) if !damaged.contains(&k) || c["complete"] == true => {
                assert_checkpoint_exact(c, w, 800.0, &what)
            }
            Some(c) => {
                // Partial: the events it has are the ones written.
                for (key, want) in [
                    ("new", w.new),
                    ("libxc_checkpoint", Some(w.libxc_checkpoint)),
                    ("checkpoint_end", Some(w.checkpoint_end)),
                ] {
                    let got = c["events"][key].as_f64();
                    if let (Some(g), Some(x)) = (got, want) {
                        assert!((g - (x - 800.0)).abs() < 2e-6, "{what}: {key} {g}");
                    }
                }
            }
            None => panic!("{what} is missing"),
        }
    }
    assert_eq!(
        cps[9]["events"]["svm_ready"],
        Value::Null,
        "lost, not invented"
    );
    assert_eq!(cps[9]["complete"], false);
    assert_eq!(s["back"]["gaps"], 1, "{}", s["back"]);
    assert_eq!(s["back"]["tcp"]["differing_bytes"], 8, "{}", s["back"]);
    row("corrupted_back_channel", file, &run, 32 * MIB)
}

/// Forty captures of a COLO session, each damaged at random in a few places
/// nobody announces: a byte of a segment's payload changed, a segment
/// missing, a segment delivered again later, two packets of the same
/// instant swapped. Whatever
/// migscope calls complete must be exactly what was written (events and
/// pages), and every checkpoint two or more away from any damage must be
/// there and complete.
fn random_damage(file: &Path) -> Row {
    use rand::{Rng, SeedableRng};
    let mut raw = Vec::new();
    let written = {
        let mut p = Pcap::new(&mut raw);
        let mut flow = Flow::new(40013, 8002);
        let w = colo_session(&mut p, &mut flow, 900.0, 24, intact);
        flow.close(&mut p, 904.0);
        p.finish();
        w
    };
    let records = pcap_records(&raw);
    // The checkpoint a packet belongs to: the last whose NEW (or start) is
    // not after it.
    let starts: Vec<f64> = written
        .iter()
        .map(|w| w.new.unwrap_or(900.0) - 900.0)
        .collect();
    let ckpt_of = |us: u64| {
        let t = us as f64 / 1e6 - 900.0;
        starts.iter().rposition(|&s| s <= t + 1e-9).unwrap_or(0)
    };
    let mut worst = None::<Run>;
    // ADVERSARIAL_SEEDS=N runs N captures instead of 40.
    let seeds = std::env::var("ADVERSARIAL_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40u64);
    // ADVERSARIAL_DAMAGES=N damages each capture in up to N places (4).
    let damages = std::env::var("ADVERSARIAL_DAMAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4usize);
    for seed in 0..seeds {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        // Each packet with its original number: a packet is damaged once at
        // most (dropping the original of a copy would move the truth).
        let mut pk: Vec<(u64, Vec<u8>, u32, usize)> = records
            .iter()
            .enumerate()
            .map(|(n, (t, f, l))| (*t, f.clone(), *l, n))
            .collect();
        let mut used = std::collections::HashSet::new();
        let mut touched = Vec::new();
        for _ in 0..rng.gen_range(1..=damages) {
            // A data packet (TCP payload beyond 54 bytes of headers) after
            // the handshake.
            let i = loop {
                let i = rng.gen_range(3..pk.len() - 3);
                if pk[i].1.len() > 54 && !used.contains(&pk[i].3) {
                    break i;
                }
            };
            used.insert(pk[i].3);
            touched.push(ckpt_of(pk[i].0));
            match rng.gen_range(0..4) {
                0 => {
                    let at = rng.gen_range(54..pk[i].1.len());
                    pk[i].1[at] ^= rng.gen_range(1..=255u8);
                }
                1 => {
                    pk.remove(i);
                }
                2 => {
                    let j = (i + rng.gen_range(1..20)).min(pk.len() - 1);
                    let mut copy = pk[i].clone();
                    copy.0 = pk[j].0;
                    touched.push(ckpt_of(copy.0));
                    pk.insert(j + 1, copy);
                }
                _ => {
                    // Reordered: two packets of the same instant swapped
                    // (moving a packet in time would change the truth).
                    if pk[i].0 == pk[i + 1].0 && !used.contains(&pk[i + 1].3) {
                        used.insert(pk[i + 1].3);
                        pk.swap(i, i + 1);
                    }
                }
            }
        }
        let mut p = pcap_file(file);
        for (us, frame, len, _) in &pk {
            p.record(*us as f64 / 1e6, frame, frame.len() as u32, *len);
        }
        p.finish();
        let run = report(file, &[]);
        assert!(run.code <= 1, "seed {seed}: {}", run.stderr);
        let j = run.json();
        let cps = j["sessions"][0]["checkpoints"].as_array().unwrap().clone();
        for c in &cps {
            let k = c["index"].as_u64().unwrap() as usize;
            if c["complete"] == true {
                let w = written
                    .get(k)
                    .unwrap_or_else(|| panic!("seed {seed}: no checkpoint {k} was written"));
                assert_checkpoint_exact(
                    c,
                    w,
                    900.0,
                    &format!("seed {seed} damaged {touched:?}: complete checkpoint {k}"),
                );
            }
        }
        for (k, w) in written.iter().enumerate() {
            let near = touched.iter().any(|&t| k + 1 >= t && k <= t + 1);
            if !near {
                let c = cps.iter().find(|c| c["index"] == k);
                let c = c.unwrap_or_else(|| {
                    panic!("seed {seed} damaged {touched:?}: checkpoint {k} missing")
                });
                assert_checkpoint_exact(
                    c,
                    w,
                    900.0,
                    &format!("seed {seed} damaged {touched:?}: checkpoint {k}"),
                );
            }
        }
        if worst.as_ref().map_or(true, |r| run.rss_kib > r.rss_kib) {
            worst = Some(run);
        }
    }
    row("random_damage_never_lies", file, &worst.unwrap(), 32 * MIB)
}
