#!/bin/bash
# Real QEMU migration traffic for the QEMU decoder (issue 16), run by hand:
#   tests/qemu/run.sh OUTDIR
# Two QEMU 7.2 instances (Debian's qemu-system-x86, TCG, -machine pc, 64 MiB,
# no disks or NICs) migrate over loopback while tcpdump captures it
# (OUTDIR/migrate.pcap); the source's `info migrate` (total time, downtime,
# pages) is kept in OUTDIR/migrate-info.txt. Needs root for tcpdump.
# Not yet: a raw stream file (`migrate "exec:cat > file"` after the TCP
# migration produced none here), COLO, multifd, the return path.
set -euo pipefail
out=${1:?usage: run.sh OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
rm -f "$out"/*.sock
hmp() { python3 "$here/hmp.py" "$@"; }
qemu() {
  exec qemu-system-x86_64 -machine pc -accel tcg -m 64 -display none -nodefaults "$@"
}
tcpdump -i lo -U -w "$out/migrate.pcap" 'tcp port 4444' 2> "$out/tcpdump.txt" &
dump=$!
sleep 1
qemu -monitor "unix:$out/dst.sock,server,nowait" -incoming tcp:127.0.0.1:4444 &
dst=$!
qemu -monitor "unix:$out/src.sock,server,nowait" &
src=$!
sleep 1.5
hmp "$out/src.sock" "migrate tcp:127.0.0.1:4444" > /dev/null
for _ in $(seq 1 60); do
  hmp "$out/src.sock" "info migrate" > "$out/migrate-info.txt"
  grep -q "Migration status: completed\|Migration status: failed" "$out/migrate-info.txt" && break
  sleep 0.5
done
sleep 0.5
kill "$src" "$dst" 2> /dev/null || true
sleep 0.5
kill "$dump" 2> /dev/null || true
wait 2> /dev/null || true
grep -a "Migration status\|total time\|downtime\|transferred ram\|duplicate" "$out/migrate-info.txt" || true
ls -la "$out"
