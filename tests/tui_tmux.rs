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
    wait_for(&name, "FIGURES (docs/FIGURES.md)");
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

/// Regression: at `--replay=4` the banner of checkpoint 23's 2.3 s apply
/// stall was on screen for under 100 ms in three runs of four (with no
/// packets arriving, the screen was redrawn every 500 ms), and its clock
/// froze after a key press. The stall lasts 2.05 s past its 250 ms
/// threshold: about 510 ms at 4x.
#[test]
fn at_replay_4x_the_stall_banner_stays_while_the_stall_lasts_and_its_clock_runs() {
    let Some(name) = start(
        "migscope-replay4",
        &format!(
            "{} captures/colo-demo.pcap --replay=4",
            env!("CARGO_BIN_EXE_migscope")
        ),
    ) else {
        return;
    };
    wait_for(&name, "REPLAY 4x");
    let t0 = Instant::now();
    let mut seen: Vec<(Duration, f64)> = Vec::new();
    let mut pressed = false;
    while t0.elapsed() < Duration::from_secs(8) {
        let s = screen(&name);
        if let Some(i) = s.find("STALLED: session 0 checkpoint 23 waiting ") {
            let rest = &s[i + "STALLED: session 0 checkpoint 23 waiting ".len()..];
            let secs: f64 = rest.split(' ').next().unwrap().parse().unwrap();
            seen.push((t0.elapsed(), secs));
            if !pressed {
                // a key that changes nothing of the replay
                tmux(&["send-keys", "-t", &name, "t"]);
                pressed = true;
            }
        } else if !seen.is_empty() {
            break;
        }
        sleep(Duration::from_millis(25));
    }
    tmux(&["send-keys", "-t", &name, "q"]);
    assert!(!seen.is_empty(), "the banner never showed");
    let shown = seen.last().unwrap().0 - seen[0].0;
    assert!(
        shown >= Duration::from_millis(250),
        "banner on screen for {shown:?} only: {seen:?}"
    );
    let clock: Vec<f64> = seen.iter().map(|x| x.1).collect();
    let rises = clock.windows(2).filter(|w| w[1] > w[0]).count();
    assert!(rises >= 2, "the banner's clock did not run: {seen:?}");
    assert!(
        clock.windows(2).all(|w| w[1] >= w[0]),
        "the clock went back: {seen:?}"
    );
}
