#!/usr/bin/env bash
# Takes the README's screenshots from the real TUI on the shipped demo
# capture: runs it in tmux at 120x40, presses the keys a user would, saves
# each screen with `tmux capture-pane -e` and turns it into a PNG
# (assets/ansi2png.py, needs Pillow).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=$PWD/target/release/migscope
s=migscope-shots
tmux kill-session -t $s 2>/dev/null || true
tmux new-session -d -s $s -x 120 -y 40 "$bin captures/colo-demo.pcap"
shot() { sleep 0.8; tmux capture-pane -e -p -t $s > "assets/$1.ansi"; python3 assets/ansi2png.py "assets/$1.ansi" "assets/$1.png"; rm "assets/$1.ansi"; }
shot sessions
tmux send-keys -t $s Enter; shot timeline
tmux send-keys -t $s n; tmux send-keys -t $s Enter; shot ladder
tmux send-keys -t $s Escape; tmux send-keys -t $s 4; tmux send-keys -t $s Up Up; sleep 1; shot records
tmux send-keys -t $s q
sleep 0.5; tmux kill-session -t $s 2>/dev/null || true
tmux new-session -d -s $s -x 120 -y 40 "$bin captures/colo-zero-window.pcap.gz"
sleep 0.8; tmux send-keys -t $s 3; shot tcp
tmux send-keys -t $s q
