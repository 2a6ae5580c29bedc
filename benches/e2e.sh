#!/usr/bin/env bash
# End-to-end throughput and memory of the whole pipeline (read, parse,
# reassemble, decode) on a large generated capture, beside `cat FILE >
# /dev/null` on the same file in the same run (and tshark where installed).
#
#   benches/e2e.sh [SIZE] [SCENARIO]     # defaults: 2G colo
#
# Figures are ratios against the reference runs, so they mean the same on a
# faster or slower machine. Each command runs 3 times from the page cache;
# the best wall time counts. Peak RSS comes from GNU time.
set -euo pipefail

size=${1:-2G}
scenario=${2:-colo}
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=target/release/migscope
dir=$(mktemp -d "${TMPDIR:-/tmp}/migscope-e2e.XXXXXX")
trap 'rm -rf "$dir"' EXIT
cap=$dir/big.pcap

case $scenario in
  colo)  gen=(--scenario colo --xl --checkpoints 200 --dirty-pages 2000) ;;
  plain) gen=(--scenario plain --xl --rounds 1) ;;
  *) echo "scenario: colo or plain" >&2; exit 2 ;;
esac
echo "generating a $size $scenario capture (1448-byte segments)..."
"$bin" synth "${gen[@]}" --memory "$size" --mss 1448 -o "$cap" >/dev/null
bytes=$(stat -c %s "$cap")
packets=$("$bin" -r "$cap" | sed -n 's/^Capture: \([0-9]*\) packets.*/\1/p')
echo "capture: $bytes bytes, $packets packets"

# best wall-clock seconds of 3 runs, and the peak RSS (KiB) of the last one
measure() {
  local best=999999 rss=0 t
  for _ in 1 2 3; do
    /usr/bin/time -f '%e %M' -o "$dir/time" "$@" >/dev/null 2>&1 || true
    read -r t rss <"$dir/time"
    best=$(echo "$t $best" | awk '{print ($1 < $2) ? $1 : $2}')
  done
  echo "$best $rss"
}

cat "$cap" >/dev/null # warm the page cache
read -r t_cat rss_cat < <(measure cat "$cap")
read -r t_ms rss_ms < <(measure "$bin" -r "$cap")
read -r t_rep rss_rep < <(measure "$bin" report --format json "$cap")
report() { # name seconds rss
  awk -v n="$1" -v t="$2" -v r="$3" -v b="$bytes" -v p="$packets" -v c="$t_cat" 'BEGIN {
    if (t <= 0) t = 0.001; if (c <= 0) c = 0.001;
    printf "%-22s %7.2f s  %8.0f MB/s  %6.0f ns/packet  %5.1f %% of cat  peak RSS %6.1f MiB\n",
      n, t, b / t / 1e6, t * 1e9 / p, 100 * c / t, r / 1024 }'
}
echo
report "cat > /dev/null" "$t_cat" "$rss_cat"
report "migscope -r" "$t_ms" "$rss_ms"
report "migscope report" "$t_rep" "$rss_rep"
awk -v a="$t_rep" -v b="$t_ms" 'BEGIN { printf "the checkpoint model and report add %.1f %% to the pipeline alone\n", 100 * (a - b) / b }'
if command -v tshark >/dev/null; then
  # tshark dissects every packet and reassembles TCP; -q prints only the statistic.
  read -r t_ts rss_ts < <(measure tshark -r "$cap" -q -z io,stat,0)
  report "tshark -q -z io,stat,0" "$t_ts" "$rss_ts"
  awk -v a="$t_ts" -v b="$t_ms" 'BEGIN { printf "migscope is %.1f times as fast as tshark\n", a / b }'
else
  echo "(tshark is not installed: apt-get install tshark to compare)"
fi

# The terminal UI's first frame on the same capture, through tmux.
if command -v tmux >/dev/null; then
  python3 - "$bin" "$cap" <<'PY'
import subprocess, sys, time
bin_, cap = sys.argv[1], sys.argv[2]
name = "migscope-e2e-first-frame"
subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)
t0 = time.time()
subprocess.run(["tmux", "new-session", "-d", "-s", name, "-x", "120", "-y", "40", f"{bin_} {cap}"])
first = None
while time.time() - t0 < 10:
    s = subprocess.run(["tmux", "capture-pane", "-p", "-t", name], capture_output=True, text=True).stdout
    if "Sessions" in s:
        first = time.time() - t0
        break
    time.sleep(0.005)
subprocess.run(["tmux", "send-keys", "-t", name, "q"])
print("TUI first frame: %s" % ("%.0f ms (including tmux start-up)" % (first * 1000) if first else "not seen in 10 s"))
PY
fi

# A long COLO session: 100,000 checkpoints, for the model's memory.
if [ "${LONG:-1}" = 1 ]; then
  long=$dir/long.pcap
  echo
  echo "generating a COLO session of 100000 checkpoints..."
  "$bin" synth --scenario colo --memory 1M --checkpoints 100000 --dirty-pages 1 \
    --secondary-dirty-pages 1 -o "$long" >/dev/null 2>&1
  rm -f "$cap"
  lbytes=$(stat -c %s "$long")
  read -r t_long rss_long < <(measure "$bin" report --format json "$long")
  awk -v t="$t_long" -v r="$rss_long" -v b="$lbytes" 'BEGIN {
    printf "report on %.0f MB, 100000 checkpoints: %.2f s, peak RSS %.1f MiB\n", b / 1e6, t, r / 1024 }'
fi
