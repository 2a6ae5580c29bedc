//! The real binary driven in tmux as a person would: open the demo capture,
//! wait for it to load, go to the timeline, jump to the stall, open its
//! ladder, close, quit. Skipped with a message where tmux is missing.

use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

fn tmux(args: &[&str]) -> Option<String> {
    let out = Command::new("tmux").args(args).output().ok()?;
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn screen(name: &str) -> String {
    tmux(&["capture-pane", "-p", "-t", name]).unwrap_or_default()
}

fn wait_for(name: &str, text: &str) -> String {
    let t0 = Instant::now();
    loop {
        let s = screen(name);
        if s.contains(text) {
            return s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "waited for {text:?}; screen:\n{s}"
        );
        sleep(Duration::from_millis(100));
    }
}

/// Starts `cmd` in a detached 120x40 tmux session; None (with a message)
/// where tmux is missing.
fn start(prefix: &str, cmd: &str) -> Option<String> {
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("skipped: tmux is not installed (apt-get install tmux)");
        return None;
    }
    let name = format!("{prefix}-{}", std::process::id());
    tmux(&["kill-session", "-t", &name]);
    let started = Command::new("tmux")
        .args([
            "new-session",
            "-d",
            "-s",
            &name,
            "-x",
            "120",
            "-y",
            "40",
            cmd,
        ])
        .status()
        .unwrap();
    assert!(started.success());
    Some(name)
}

#[test]
fn open_the_demo_capture_jump_to_the_stall_and_open_its_ladder() {
    let Some(name) = start(
        "migscope-test",
        &format!("{} captures/colo-demo.pcap", env!("CARGO_BIN_EXE_migscope")),
    ) else {
        return;
    };
    let s = wait_for(&name, "Sessions (1)");
    assert!(
        s.contains("10.0.1.1:37902 -> 10.0.1.2:8002") && s.contains("web-fronte"),
        "{s}"
    );
    tmux(&["send-keys", "-t", &name, "Enter"]);
    wait_for(&name, "Session 0 [colo] 40 checkpoints");
    tmux(&["send-keys", "-t", &name, "n"]);
    tmux(&["send-keys", "-t", &name, "Enter"]);
    let s = wait_for(&name, "Checkpoint 23 ladder");
    assert!(s.contains("SVM_READY") && s.contains("+2.300 s"), "{s}");
    tmux(&["send-keys", "-t", &name, "Escape"]);
    tmux(&["send-keys", "-t", &name, "?"]);
    wait_for(&name, "migscope keys");
    tmux(&["send-keys", "-t", &name, "q"]);
    // The program quits and the pane (and the session) closes.
    let t0 = Instant::now();
    while tmux(&["has-session", "-t", &name]).is_some()
        && Command::new("tmux")
            .args(["has-session", "-t", &name])
            .status()
            .is_ok_and(|s| s.success())
    {
        assert!(t0.elapsed() < Duration::from_secs(10), "q did not quit");
        sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_replay_shows_the_stall_banner_while_it_happens_and_pauses() {
    let Some(name) = start(
        "migscope-replay",
        &format!(
            "{} captures/colo-demo.pcap --replay=2",
            env!("CARGO_BIN_EXE_migscope")
        ),
    ) else {
        return;
    };
    wait_for(&name, "REPLAY 2x");
    // Checkpoint 23's apply phase lasts 2.3 s (1.15 s at 2x): the banner
    // appears once it passes its 250 ms threshold, with the awaited event.
    let s = wait_for(&name, "STALLED: session 0 checkpoint 23");
    assert!(
        s.contains("for svm_ready from the secondary (apply)"),
        "{s}"
    );
    tmux(&["send-keys", "-t", &name, "Space"]);
    wait_for(&name, "PAUSED");
    tmux(&["send-keys", "-t", &name, "q"]);
}
