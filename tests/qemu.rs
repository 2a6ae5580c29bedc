//! QEMU streams end to end: real QEMU 7.2 captures (tests/qemu/README.md
//! says how they were made) and hand-written COLO traffic whose bytes are
//! spelled out here, independently of the crate's own wire table.

mod common;

#[path = "adversarial/pcap.rs"]
mod pcap;

use std::path::Path;

use serde_json::Value;

use common::migscope;
use pcap::{pcap_file, Flow};

fn json_report(path: &Path) -> Value {
    let out = migscope()
        .args(["report", "--format", "json", "-r"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// As [`json_report`] for a capture whose stream has problems: exit 1.
fn json_report_with_problems(path: &Path) -> Value {
    let out = migscope()
        .args(["report", "--format", "json", "-r"])
        .arg(path)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "problems in the stream are exit status 1"
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn text_report(path: &Path) -> String {
    let out = migscope()
        .args(["report", "-r"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn capture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("captures/qemu-7.2")
        .join(name)
}

/// A real QEMU 7.2 precopy migration with the return path (`info migrate`
/// said: 111 normal pages, 16403 duplicate, 589 kbytes of RAM, downtime
/// 20 ms; captures/qemu-7.2/return-path.info.txt).
#[test]
fn a_real_qemu_migration_with_the_return_path() {
    let v = json_report(&capture("return-path.pcap.gz"));
    let s = &v["sessions"][0];
    assert_eq!(v["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(s["kind"], "qemu");
    assert_eq!(s["forward"]["errors"], 0);
    assert_eq!(s["forward"]["warnings"], 0);
    let q = &s["qemu"];
    assert_eq!(q["machine"], "pc-i440fx-7.2");
    assert_eq!(q["pages"], 111, "QEMU's normal pages");
    assert_eq!(q["zero_pages"], 16403, "QEMU's duplicate pages");
    assert_eq!(q["passes"], 1);
    assert_eq!(q["ram_size"], 67641344);
    assert_eq!(q["device_sections"], 30);
    assert_eq!(q["blocks"][0]["name"], "pc.ram");
    assert_eq!(q["blocks"][0]["pages"], 61);
    assert_eq!(q["return_path"]["shut_status"], 0);
    assert_eq!(q["return_path"]["pong"], 0.000791);
    assert_eq!(q["final_stage"]["ended_by"], "the destination's SHUT");
    let d = s["downtime"].as_f64().unwrap();
    assert!((0.0160..0.0162).contains(&d), "final stage {d}");
    assert!(d < 0.020, "a bound from below of QEMU's 20 ms");
    let text = text_report(&capture("return-path.pcap.gz"));
    assert!(
        text.contains("RAM: 1 pass over memory, 111 pages with data, 16403 zero pages"),
        "{text}"
    );
}

/// The same guest written with `migrate "exec:cat > file"`: a raw stream.
#[test]
fn records_lists_a_raw_qemu_stream() {
    let out = migscope()
        .arg("records")
        .arg(capture("plain.stream.gz"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("37 items in 715152 bytes; 0 errors, 0 warnings, 0 notes"),
        "{text}"
    );
    assert!(text.contains("SECTION_PART"));
    assert!(text.contains("111 pages, 16403 zero"));
    let out = migscope()
        .args(["records", "-V", "--json"])
        .arg(capture("plain.stream.gz"))
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["type"], "QEVM");
    assert_eq!(first["layer"], "qemu");
}

/// be32 value.
fn m(v: u32) -> Vec<u8> {
    v.to_be_bytes().to_vec()
}

/// A RAM END section (id 2) with `pages` PAGE records of pc.ram, EOS,
/// footer, written byte by byte.
fn ram_end(pages: u32) -> Vec<u8> {
    let mut b = vec![0x03, 0, 0, 0, 2];
    for i in 0..pages {
        let addr = u64::from(i) * 4096 * 7;
        if i == 0 {
            b.extend_from_slice(&(addr | 0x08).to_be_bytes());
            b.extend_from_slice(&[6, b'p', b'c', b'.', b'r', b'a', b'm']);
        } else {
            b.extend_from_slice(&(addr | 0x08 | 0x20).to_be_bytes());
        }
        b.extend(std::iter::repeat(0x7e).take(4096));
    }
    b.extend_from_slice(&0x10u64.to_be_bytes());
    b.extend_from_slice(&[0x7e, 0, 0, 0, 2]);
    b
}

/// Device state: FULL "timer" (id 0) and FULL "cpu" (id 5), EOF.
fn devices() -> Vec<u8> {
    let mut b = vec![
        0x04, 0, 0, 0, 0, 5, b't', b'i', b'm', b'e', b'r', 0, 0, 0, 0, 0, 0, 0, 2,
    ];
    b.extend_from_slice(&[0x7e, 0, 0, 0, 5, 0x7e, 1, 2, 3, 4, 5, 6, 7, 8]);
    b.extend_from_slice(&[0x7e, 0, 0, 0, 0]);
    b.extend_from_slice(&[
        0x04, 0, 0, 0, 5, 3, b'c', b'p', b'u', 0, 0, 0, 0, 0, 0, 0, 17,
    ]);
    b.extend_from_slice(&[0x55; 300]);
    b.extend_from_slice(&[0x7e, 0, 0, 0, 5, 0x00]);
    b
}

/// The initial COLO migration: header, ENABLE_COLO, RAM, one device, EOF,
/// an empty description.
fn initial() -> Vec<u8> {
    let mut b = b"QEVM\0\0\0\x03".to_vec();
    b.extend_from_slice(&[0x08, 0, 8, 0, 0]);
    b.extend_from_slice(&[
        0x01, 0, 0, 0, 2, 3, b'r', b'a', b'm', 0, 0, 0, 0, 0, 0, 0, 4,
    ]);
    b.extend_from_slice(&((64u64 << 20) | 0x04).to_be_bytes());
    b.extend_from_slice(&[6, b'p', b'c', b'.', b'r', b'a', b'm']);
    b.extend_from_slice(&(64u64 << 20).to_be_bytes());
    b.extend_from_slice(&0x10u64.to_be_bytes());
    b.extend_from_slice(&[0x7e, 0, 0, 0, 2]);
    b.extend_from_slice(&ram_end(3)[..]);
    b.extend_from_slice(&devices()[..devices().len() - 1]);
    b.push(0x00);
    b.extend_from_slice(&[0x06, 0, 0, 0, 2, b'{', b'}']);
    b
}

/// Three QEMU COLO checkpoints; the second waits 2.3 s for
/// VMSTATE_RECEIVED. Returns the message times by checkpoint.
fn write_colo(path: &Path) -> Vec<[f64; 6]> {
    write_colo_ending(path, None)
}

/// As [`write_colo`]; with `quiet`, the pair does not close: the capture
/// ends with a bare ACK that long after the last checkpoint.
fn write_colo_ending(path: &Path, quiet: Option<f64>) -> Vec<[f64; 6]> {
    let mut p = pcap_file(path);
    let mut f = Flow::new(41000, 8888);
    f.handshake(&mut p, 1.0);
    f.send(&mut p, 0, 1.001, &initial());
    f.send(&mut p, 1, 1.010, &m(0)); // CHECKPOINT_READY
    let dev = devices();
    let mut times = Vec::new();
    let mut t = 1.100;
    for k in 0..3 {
        let stall = if k == 1 { 2.3 } else { 0.0 };
        let ev = [
            t,
            t + 0.001,
            t + 0.003,
            t + 0.020,
            t + 0.021 + stall,
            t + 0.030 + stall,
        ];
        f.send(&mut p, 0, ev[0], &m(1)); // REQUEST
        f.send(&mut p, 1, ev[1], &m(2)); // REPLY
        f.send(&mut p, 0, ev[2], &m(3)); // VMSTATE_SEND
        let mut ram = ram_end(2 + k);
        ram.push(0x00); // EOF of the checkpoint's RAM
        f.send(&mut p, 0, ev[2] + 0.010, &ram);
        let mut size = m(4);
        size.extend_from_slice(&(dev.len() as u64).to_be_bytes());
        f.send(&mut p, 0, ev[3], &size); // VMSTATE_SIZE
        f.send(&mut p, 0, ev[3] + 0.0005, &dev);
        f.send(&mut p, 1, ev[4], &m(5)); // RECEIVED
        f.send(&mut p, 1, ev[5], &m(6)); // LOADED
        times.push(ev);
        t = ev[5] + 0.100;
    }
    match quiet {
        Some(q) => {
            let ack = f.frame_at(1, f.next[1], &[], "A");
            p.packet(t - 0.100 + q, &ack);
        }
        None => f.close(&mut p, t),
    }
    p.finish();
    times
}

fn secs(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

#[test]
fn handwritten_qemu_colo_checkpoints_are_timed_to_the_packet() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("colo.pcap");
    let times = write_colo(&path);
    if let Some(keep) = std::env::var_os("MIGSCOPE_KEEP_CAPTURE") {
        std::fs::copy(&path, keep).unwrap(); // to look at it by hand
    }
    let v = json_report(&path);
    let s = &v["sessions"][0];
    assert_eq!(s["kind"], "qemu-colo");
    assert_eq!(s["forward"]["errors"], 0, "{}", v["diagnostics"]);
    let cps = s["checkpoints"].as_array().unwrap();
    assert_eq!(cps.len(), 3);
    let keys = [
        "request",
        "reply",
        "vmstate_send",
        "vmstate_size",
        "vmstate_received",
        "vmstate_loaded",
    ];
    for (k, c) in cps.iter().enumerate() {
        assert_eq!(c["index"], k as u64 + 1, "REQUESTs count from 1");
        assert_eq!(c["complete"], true);
        assert_eq!(c["pages"], 2 + k as u64);
        assert_eq!(c["vmstate_size"], devices().len() as u64);
        let ev = c["events"].as_object().unwrap();
        assert_eq!(ev.len(), 6, "{ev:?}");
        for (i, key) in keys.iter().enumerate() {
            // the first packet is the SYN at 1.0
            let want = times[k][i] - 1.0;
            assert!(
                (secs(&ev[*key]) - want).abs() < 1e-6,
                "checkpoint {} {key}: {} vs {want}",
                k + 1,
                ev[*key]
            );
        }
        let down = secs(&c["downtime"]);
        let want = times[k][5] - times[k][1];
        assert!((down - want).abs() < 1e-6, "downtime {down} vs {want}");
        assert!((secs(&c["phases"]["reply"]) - 0.001).abs() < 1e-6);
        assert!((secs(&c["phases"]["loaded"]) - 0.009).abs() < 1e-6);
        assert!((secs(&c["device_state_end"]) - (times[k][3] + 0.0005 - 1.0)).abs() < 1e-6);
    }
    assert!((secs(&cps[0]["phases"]["interval"]) - 0.100).abs() < 1e-6);
    let stalls = s["stalls"].as_array().unwrap();
    assert_eq!(stalls.len(), 1, "{stalls:?}");
    assert_eq!(stalls[0]["checkpoint"], 2);
    assert_eq!(stalls[0]["phase"], "received");
    assert_eq!(stalls[0]["owner"], "secondary");
    assert_eq!(stalls[0]["waiting_for"], "vmstate_received");
}

#[test]
fn a_qemu_colo_capture_that_starts_mid_checkpoint_numbers_from_the_next_request() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("colo.pcap");
    write_colo(&path);
    // drop the SYN and everything before the second checkpoint's VMSTATE_SEND
    let bytes = std::fs::read(&path).unwrap();
    let cut = cut_before(&bytes, 2);
    let mid = dir.path().join("mid.pcap");
    std::fs::write(&mid, cut).unwrap();
    let v = json_report(&mid);
    let s = &v["sessions"][0];
    assert_eq!(s["kind"], "qemu-colo", "{v}");
    assert_eq!(s["mid_stream"], true);
    let cps = s["checkpoints"].as_array().unwrap();
    assert_eq!(cps.len(), 2, "{cps:?}");
    assert_eq!(cps[0]["complete"], false, "it began before the capture");
    assert_eq!(cps[1]["complete"], true);
    assert_eq!(cps[1]["pages"], 4);
}

/// The pcap `bytes` without its packets before the `n`th VMSTATE_SEND
/// (counted from 1): the global header, then records from there.
fn cut_before(bytes: &[u8], n: usize) -> Vec<u8> {
    let mut out = bytes[..24].to_vec();
    let mut at = 24;
    let mut seen = 0;
    let mut keep = false;
    while at + 16 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        let rec = &bytes[at..at + 16 + len];
        let payload = &rec[16 + 54..];
        if payload == [0, 0, 0, 3] {
            seen += 1;
            keep |= seen == n;
        }
        if keep {
            out.extend_from_slice(rec);
        }
        at += 16 + len;
    }
    out
}

/// A real multifd migration (2 channels; `info migrate`: 111 normal pages,
/// 16403 duplicate, "multifd bytes: 458 kbytes"): the channels connect and
/// send before the main stream's first bytes, and are joined to it.
#[test]
fn real_multifd_channels_are_joined_to_their_migration() {
    let v = json_report(&capture("multifd.pcap.gz"));
    let sessions = v["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 3);
    let main = sessions.iter().find(|s| s["kind"] == "qemu").unwrap();
    let channels: Vec<_> = sessions
        .iter()
        .filter(|s| s["kind"] == "qemu-multifd")
        .collect();
    assert_eq!(channels.len(), 2);
    for c in &channels {
        assert_eq!(c["multifd_of"], main["id"]);
        assert_eq!(c["forward"]["errors"], 0);
    }
    let q = &main["qemu"];
    assert_eq!(q["zero_pages"], 16403, "zero pages go on the main stream");
    assert_eq!(q["pages"], 0);
    assert_eq!(q["multifd"]["channels"], 2);
    assert_eq!(
        q["multifd"]["pages"], 111,
        "QEMU's normal pages, all on the channels"
    );
    let kib = q["multifd"]["bytes"].as_f64().unwrap() / 1024.0;
    assert!(
        (458.0..459.0).contains(&kib),
        "{kib} KiB; QEMU said 458 kbytes"
    );
}

/// One checkpoint of a `.truth.tsv` (tests/qemu/colo_truth.py: tshark's
/// segments, not migscope): column name to value.
fn truth(name: &str) -> Vec<std::collections::HashMap<String, String>> {
    let text = std::fs::read_to_string(capture(name)).unwrap();
    let mut header: Option<Vec<String>> = None;
    let mut rows = Vec::new();
    for line in text.lines() {
        let cols: Vec<String> = line.split('\t').map(str::to_string).collect();
        if cols[0] == "ckpt" {
            header = Some(cols);
        } else if let Some(h) = &header {
            if cols[0].parse::<u64>().is_ok() && cols.len() == h.len() {
                rows.push(h.iter().cloned().zip(cols).collect());
            }
        }
    }
    rows
}

/// Every COLO message of a real capture at the time of the packet that
/// completed it, every checkpoint's pages and device-state size, as tshark
/// shows them.
fn colo_matches_its_truth(pcap: &str, tsv: &str) -> Value {
    let v = json_report(&capture(pcap));
    let s = v["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "qemu-colo")
        .unwrap()
        .clone();
    assert_eq!(s["forward"]["errors"], 0);
    let rows = truth(tsv);
    let cps = s["checkpoints"].as_array().unwrap();
    assert_eq!(cps.len(), rows.len(), "checkpoints");
    let keys = [
        ("request", "request"),
        ("reply", "reply"),
        ("send", "vmstate_send"),
        ("size_msg", "vmstate_size"),
        ("received", "vmstate_received"),
        ("loaded", "vmstate_loaded"),
    ];
    for (r, c) in rows.iter().zip(cps) {
        let k = &r["ckpt"];
        assert_eq!(c["index"].to_string(), *k);
        for (tk, mk) in keys {
            match r[tk].parse::<f64>() {
                Ok(t) => assert!(
                    (secs(&c["events"][mk]) - t).abs() < 1e-6,
                    "checkpoint {k} {mk}: {} vs tshark {t}",
                    c["events"][mk]
                ),
                Err(_) => assert!(c["events"][mk].is_null(), "checkpoint {k} {mk}"),
            }
        }
        if let Ok(t) = r["state_end"].parse::<f64>() {
            assert!(
                (secs(&c["device_state_end"]) - t).abs() < 1e-6,
                "checkpoint {k}"
            );
        }
        if let Ok(n) = r["size"].parse::<u64>() {
            assert_eq!(c["vmstate_size"], n, "checkpoint {k} size");
        }
        if let Ok(n) = r["pages"].parse::<u64>() {
            assert_eq!(c["pages"], n, "checkpoint {k} pages");
        }
    }
    s
}

/// Real QEMU 7.2 COLO (x-checkpoint-delay 100, a guest dirtying pages):
/// 63 checkpoints, the last cut short by the failover that ended the run.
#[test]
fn real_qemu_colo_checkpoints_match_tshark() {
    let s = colo_matches_its_truth("colo.pcap.gz", "colo.truth.tsv");
    let cps = s["checkpoints"].as_array().unwrap();
    assert_eq!(cps.len(), 63);
    assert_eq!(cps.iter().filter(|c| c["complete"] == true).count(), 62);
    assert_eq!(s["qemu"]["checkpoint_ready"], 0.0663);
    let stalls = s["stalls"].as_array().unwrap();
    assert_eq!(
        stalls.len(),
        1,
        "only the failover's checkpoint: {stalls:?}"
    );
    assert_eq!(stalls[0]["checkpoint"], 63);
    // regression: it read "silent for 2.755 s" although the primary had
    // closed the connection (the failover) right after REPLY
    assert_eq!(stalls[0]["owner"], "primary");
    let why = stalls[0]["why"].as_str().unwrap();
    assert!(
        why.contains("primary closed the connection before sending vmstate_send"),
        "{why}"
    );
}

/// Real QEMU 7.2 COLO whose secondary was stopped (SIGSTOP) for 2 s right
/// after its 10th REPLY: the primary's RAM fills the secondary's window.
#[test]
fn a_real_stuck_qemu_colo_checkpoint_is_found_with_its_owner() {
    let s = colo_matches_its_truth("colo-stuck.pcap.gz", "colo-stuck.truth.tsv");
    let stalls = s["stalls"].as_array().unwrap();
    assert_eq!(stalls.len(), 1, "{stalls:?}");
    let x = &stalls[0];
    assert_eq!(x["checkpoint"], 10);
    assert_eq!(x["phase"], "ram", "stuck after VMSTATE_SEND");
    assert_eq!(x["owner"], "secondary");
    assert!((2.0..2.01).contains(&secs(&x["duration"])));
    assert!(x["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == "zero_window" && e["side"] == "secondary"));
}

/// Real QEMU 7.2 COLO with the return path on: its primary reads the
/// secondary's CHECKPOINT_READY as a return-path message and fails.
#[test]
fn real_qemu_colo_with_the_return_path_is_shown_as_what_it_is() {
    let v = json_report_with_problems(&capture("colo-return-path.pcap.gz"));
    let s = &v["sessions"][0];
    assert_eq!(s["kind"], "qemu-colo");
    assert_eq!(s["checkpoints"].as_array().unwrap().len(), 0);
    assert_eq!(s["qemu"]["ready_misread_as_return_path"], true);
    assert!(s["qemu"]["return_path"]["pong"].is_number());
    let d = v["diagnostics"].as_array().unwrap();
    assert!(d.iter().any(|x| x["message"]
        .as_str()
        .unwrap()
        .contains("return-path message of type 0")));
}

/// Real QEMU 7.2 precopy of a guest that dirties memory (`info migrate`:
/// 288 normal pages, 16370 duplicate, downtime 6 ms).
#[test]
fn a_real_dirtying_guest_takes_several_passes() {
    let v = json_report(&capture("dirty.pcap.gz"));
    let s = &v["sessions"][0];
    assert_eq!(s["kind"], "qemu");
    assert_eq!(s["qemu"]["pages"], 288);
    assert_eq!(s["qemu"]["zero_pages"], 16370);
    assert!(s["qemu"]["passes"].as_u64().unwrap() > 1);
    let d = secs(&s["downtime"]);
    assert!(d > 0.0 && d <= 0.006, "final stage {d}, QEMU said 6 ms");
}

/// Regression (real COLO with segments lost): a lost segment that held a
/// checkpoint's RAM, VMSTATE_SIZE and device state made the hunt skip the
/// next REQUEST, and once REQUEST was an anchor, the REQUEST (found after
/// the secondary's REPLY had opened the checkpoint) opened another one.
/// Numbering must not shift and every complete checkpoint keeps its times.
#[test]
fn real_qemu_colo_with_lost_segments_keeps_its_numbering() {
    use std::io::Read;
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(capture("colo.pcap.gz")).unwrap())
        .read_to_end(&mut raw)
        .unwrap();
    let mut out = raw[..24].to_vec();
    let (mut at, mut n, mut dropped) = (24, 0, 0);
    while at + 16 <= raw.len() {
        let len = u32::from_le_bytes(raw[at + 8..at + 12].try_into().unwrap()) as usize;
        let rec = &raw[at..at + 16 + len];
        at += 16 + len;
        n += 1;
        // segments that carry a checkpoint's RAM and device state
        if n > 40 && len > 200 && n % 23 == 5 {
            dropped += 1;
            continue;
        }
        out.extend_from_slice(rec);
    }
    assert!(dropped >= 3, "{dropped}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("loss.pcap");
    std::fs::write(&path, out).unwrap();
    let v = json_report_with_problems(&path);
    let s = &v["sessions"][0];
    let cps = s["checkpoints"].as_array().unwrap();
    let rows = truth("colo.truth.tsv");
    assert_eq!(cps.len(), rows.len(), "no checkpoint invented or lost");
    let partial = cps.iter().filter(|c| c["complete"] == false).count();
    assert!((2..=10).contains(&partial), "{partial} partial");
    for (r, c) in rows.iter().zip(cps) {
        assert_eq!(c["index"].to_string(), r["ckpt"]);
        // every message seen is at its own time (none shifted to another)
        for (tk, mk) in [
            ("request", "request"),
            ("reply", "reply"),
            ("received", "vmstate_received"),
            ("loaded", "vmstate_loaded"),
        ] {
            if let (Ok(t), Some(m)) = (r[tk].parse::<f64>(), c["events"][mk].as_f64()) {
                assert!(
                    (m - t).abs() < 1e-6,
                    "checkpoint {} {mk}: {m} vs {t}",
                    r["ckpt"]
                );
            }
        }
        if c["complete"] == true {
            assert_eq!(
                c["pages"].to_string(),
                r["pages"],
                "checkpoint {}",
                r["ckpt"]
            );
        }
    }
}

/// The real stuck capture without its first 100 packets (no SYN).
fn real_mid_stream(dir: &Path) -> std::path::PathBuf {
    use std::io::Read;
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(capture("colo-stuck.pcap.gz")).unwrap())
        .read_to_end(&mut raw)
        .unwrap();
    let mut out = raw[..24].to_vec();
    let (mut at, mut n) = (24, 0);
    while at + 16 <= raw.len() {
        let len = u32::from_le_bytes(raw[at + 8..at + 12].try_into().unwrap()) as usize;
        n += 1;
        if n > 100 {
            out.extend_from_slice(&raw[at..at + 16 + len]);
        }
        at += 16 + len;
    }
    let path = dir.join("mid.pcap");
    std::fs::write(&path, out).unwrap();
    path
}

/// A capture that starts mid-stream is recognised by its anchors, with or
/// without `--port`; `--port qemu:N` and `--port xen:N` say which decoder.
#[test]
fn decode_as_a_port_takes_a_family() {
    let dir = tempfile::tempdir().unwrap();
    let mid = real_mid_stream(dir.path());
    for port in [None, Some("4444"), Some("qemu:4444")] {
        let mut cmd = migscope();
        cmd.args(["report", "--format", "json", "-r"]).arg(&mid);
        if let Some(p) = port {
            cmd.args(["--port", p]);
        }
        let out = cmd.output().unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let s = &v["sessions"][0];
        assert_eq!(s["kind"], "qemu-colo", "--port {port:?}");
        assert_eq!(s["mid_stream"], true);
        let cps = s["checkpoints"].as_array().unwrap();
        assert_eq!(cps.last().unwrap()["complete"], true, "--port {port:?}");
    }
    let out = migscope()
        .args(["report", "--format", "json", "--port", "xen:4444", "-r"])
        .arg(&mid)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_ne!(
        v["sessions"][0]["kind"], "qemu-colo",
        "forced to Xen's decoder"
    );
    // with its start, a bare port is QEMU's by its first bytes
    let v = {
        let out = migscope()
            .args(["report", "--format", "json", "--port", "4444", "-r"])
            .arg(capture("colo-stuck.pcap.gz"))
            .output()
            .unwrap();
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    assert_eq!(v["sessions"][0]["kind"], "qemu-colo");
    migscope()
        .args(["report", "--port", "kvm:4444", "-r"])
        .arg(capture("colo-stuck.pcap.gz"))
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "unknown family \"kvm\" (qemu or xen)",
        ));
}

/// A pair that stopped checkpointing (as QEMU 7.2's stock primary does
/// under TCG after a checkpoint) is an Expert Info finding once the quiet
/// passes ten median intervals and a second; not before.
#[test]
fn a_pair_that_stopped_checkpointing_is_a_finding() {
    use migscope::capture::{FileSource, Next, Source};
    use migscope::model::expert::{findings, What};
    use migscope::model::{Model, Thresholds};
    use migscope::session::{Analyzer, Config};
    let dir = tempfile::tempdir().unwrap();
    let analyse = |quiet: f64| {
        let path = dir.path().join(format!("q{quiet}.pcap"));
        write_colo_ending(&path, Some(quiet));
        let mut src = Source::File(FileSource::open(&path).unwrap());
        let mut an = Analyzer::new(Config::default(), Model::default());
        while let Next::Packet(p) = src.next_packet().unwrap() {
            an.packet(&p);
        }
        an.finish();
        let m = an.into_observer();
        findings(&m, 0, &Thresholds::default(), true)
            .into_iter()
            .filter_map(|f| match f.what {
                What::CheckpointsStopped { after, quiet, .. } => Some((after, quiet)),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(analyse(0.5), [], "half a second: not yet");
    let found = analyse(5.0);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, 3, "after the last checkpoint");
    assert_eq!(found[0].1, 5_000_000_000, "from LOADED to the last packet");
}
