#!/bin/bash
# Real QEMU 7.2 migration traffic for the QEMU decoder (issue 16), run by hand
# as root (tcpdump):
#
#   tests/qemu/run.sh MODE OUTDIR        MODE is one of
#     plain             precopy over tcp:127.0.0.1:4444            plain.pcap
#     return-path       the same with the return-path capability   return-path.pcap
#     dirty             a guest that keeps dirtying 32 pages, max-bandwidth
#                       256 KiB/s, so several iterations; after ~5 s
#                       downtime-limit 1000 lets it converge        dirty.pcap
#     colo              COLO checkpoints, default 60 of them        colo.pcap
#     colo-stuck        COLO with the secondary SIGSTOPped for 2 s right
#                       after its Nth CHECKPOINT_REPLY (N=10), with a 64 KiB
#                       receive buffer so the window fills         colo-stuck.pcap
#     colo-return-path  COLO plus return-path: fails in 7.2         colo-return-path.pcap
#     multifd           multifd with 2 channels                     multifd.pcap
#     exec              `migrate "exec:cat > OUTDIR/plain.stream"`, then loads
#                       that file into a fresh QEMU                 plain.stream
#     all               every mode above, one after the other
#
# Every mode writes OUTDIR/MODE.txt: the exact commands, the monitors'
# answers (info migrate, info status), both QEMUs' stderr (with -trace
# colo_* and friends) and a ground truth made with tshark (and, for COLO,
# colo_truth.py).  A capture larger than 2 MB is gzipped (MODE.pcap.gz;
# tshark reads that directly).
#
# Two QEMU instances (Debian's qemu-system-x86 1:7.2+dfsg-7+deb12u18, TCG,
# -machine pc, 64 MiB, -nodefaults, no NIC; the guest, when there is one, is
# the boot sector guest.S on a read-only floppy) talk over loopback while
# `tcpdump -i lo 'tcp port 4444'` captures it.  The COLO primary runs with
# LD_PRELOAD=colo-bql-shim.so, without which the stock 7.2 primary deadlocks
# under TCG after a random checkpoint (see colo-bql-shim.c and README.md);
# COLO_SHIM=0 runs it without, to see the deadlock.
#
# Knobs (environment): PORT (4444), COLO_CHECKPOINTS (60; colo-stuck 20;
# it stops at the first poll, every 0.1 s, that has seen at least that many
# REQUESTs, so a few more go out), COLO_DELAY (x-checkpoint-delay, 100 ms;
# colo-stuck 200), COLO_PAGES (guest pages dirtied per tick in COLO modes,
# 2; colo-stuck 48), STALL_AT (10), STALL_SECS (2), COLO_SHIM (1).
# Needs root, qemu-system-x86, tcpdump, tshark (capinfos), gcc, binutils.
set -uo pipefail

mode=${1:?usage: run.sh MODE OUTDIR}
out=${2:?usage: run.sh MODE OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)

if [ "$mode" = all ]; then
  rc=0
  for m in plain return-path dirty colo colo-stuck colo-return-path multifd exec; do
    "$0" "$m" "$out" || rc=1
  done
  exit $rc
fi

case "$mode" in
  plain|return-path|dirty|colo|colo-stuck|colo-return-path|multifd|exec) ;;
  *) echo "unknown mode $mode" >&2; exit 2 ;;
esac

PORT=${PORT:-4444}
if [ "$mode" = colo-stuck ]; then
  # bigger checkpoints (the guest dirties 48 pages per tick and runs ~2
  # ticks between checkpoints: ~200 KB each) and a 64 KiB receive buffer on
  # the secondary (rcvbuf-shim.c), so the stalled one fills the TCP window
  COLO_CHECKPOINTS=${COLO_CHECKPOINTS:-20}
  COLO_DELAY=${COLO_DELAY:-200}
  COLO_PAGES=${COLO_PAGES:-48}
else
  COLO_CHECKPOINTS=${COLO_CHECKPOINTS:-60}
  COLO_DELAY=${COLO_DELAY:-100}
  COLO_PAGES=${COLO_PAGES:-2}
fi
STALL_AT=${STALL_AT:-10}
STALL_SECS=${STALL_SECS:-2}
COLO_SHIM=${COLO_SHIM:-1}

work=$(mktemp -d /tmp/migscope-qemu.XXXXXX)
txt="$out/$mode.txt"
pcap="$out/$mode.pcap"
rm -f "$txt" "$pcap" "$pcap.gz"
pids=()
t0=$(date +%s.%N)

cleanup() {
  local p
  for p in "${pids[@]}"; do kill -CONT "$p" 2> /dev/null; kill -TERM "$p" 2> /dev/null; done
  sleep 0.5
  for p in "${pids[@]}"; do kill -KILL "$p" 2> /dev/null; done
  wait 2> /dev/null
  rm -rf "$work"
}
trap cleanup EXIT

log() { printf '%s\n' "$*" >> "$txt"; }
stamp() { python3 -c "import time; print('%.3f' % (time.time() - $t0))"; }

# mon SIDE 'hmp command' [wait]: runs an HMP command and logs it with its answer
# ([+N s] is when it was sent).  `migrate` is always given -d: without it
# HMP suspends the monitor until the migration leaves the active state.
mon() {
  local side=$1 cmd=$2 ans t
  t=$(stamp)
  ans=$(python3 "$here/hmp.py" "$work/$side.sock" "$cmd" "${3:-10}" 2>&1)
  {
    printf '[+%ss] (%s) %s\n' "$t" "$side" "$cmd"
    [ -n "$ans" ] && printf '%s\n' "$ans" | sed 's/^/    /'
  } >> "$txt"
  printf '%s\n' "$ans"
}

# start_qemu NAME [args...]: starts one QEMU in the background (exec'd, so
# its pid is the background job's); its pid is also in $work/NAME.pid, its
# stderr in $work/NAME.err (or $QEMU_ERR), its monitor on $work/NAME.sock.
# QEMU_ENV="VAR=value ..." is put in its environment.
start_qemu() {
  local name=$1; shift
  local -a cmd envs
  cmd=(qemu-system-x86_64 -machine pc -accel tcg -m 64 -display none -nodefaults
       -name "$name,debug-threads=on" -msg timestamp=on
       -monitor "unix:$work/$name.sock,server=on,wait=off" -pidfile "$work/$name.pid" "$@")
  read -r -a envs <<< "${QEMU_ENV:-}"
  log "\$ ${envs[*]}${envs[*]:+ }$(printf '%q ' "${cmd[@]}")"
  ( exec env "${envs[@]}" "${cmd[@]}" < /dev/null > "$work/$name.out" 2> "${QEMU_ERR:-$work/$name.err}" ) &
  pids+=($!)
  for _ in $(seq 1 50); do [ -S "$work/$name.sock" ] && [ -s "$work/$name.pid" ] && break; sleep 0.1; done
  [ -s "$work/$name.pid" ] && pids+=("$(cat "$work/$name.pid")")
}

start_tcpdump() {
  log "\$ tcpdump -i lo -B 32768 -U -w $pcap 'tcp port $PORT'"
  tcpdump -i lo -B 32768 -U -w "$pcap" "tcp port $PORT" 2> "$work/tcpdump.err" &
  dump=$!
  pids+=($dump)
  for _ in $(seq 1 50); do grep -q listening "$work/tcpdump.err" 2> /dev/null && break; sleep 0.1; done
}

stop_tcpdump() {
  sleep 0.5
  kill -INT "$dump" 2> /dev/null
  wait "$dump" 2> /dev/null
  log ""
  log "tcpdump: $(grep -v '^listening' "$work/tcpdump.err" | tr '\n' ' ')"
}

# wait_status SIDE REGEX SECONDS: polls `info migrate` until it matches or
# SECONDS have passed (a hung monitor costs at most ~7 s per poll)
wait_status() {
  local side=$1 re=$2 end
  end=$(( $(date +%s) + ${3%.*} ))
  while [ "$(date +%s)" -lt "$end" ]; do
    python3 "$here/hmp.py" "$work/$side.sock" "info migrate" 2 2> /dev/null | grep -Eq "$re" && return 0
    sleep 0.25
  done
  return 1
}

# build the guest image: guest_img PAGES
guest_img() {
  as --32 --defsym PAGES="$1" --defsym BUSY=0 -o "$work/guest.o" "$here/guest.S" &&
    ld -m elf_i386 -Ttext 0x7c00 --oformat binary -o "$work/guest.img" "$work/guest.o" &&
    truncate -s 1474560 "$work/guest.img" || { echo "cannot build guest.S" >&2; exit 1; }
  GUEST=(-drive "file=$work/guest.img,format=raw,if=floppy,readonly=on")
  log "guest: guest.S with PAGES=$1 BUSY=0 on a read-only floppy"
}

TRACE=(-trace 'colo_*' -trace migrate_set_state -trace savevm_send_ping
       -trace savevm_send_open_return_path -trace savevm_send_colo_enable
       -trace loadvm_process_command_ping -trace migrate_send_rp_message
       -trace 'multifd_*_thread_start' -trace 'multifd_*_thread_end')

finish_logs() {
  local side
  for side in "$@"; do
    log ""
    log "==== stderr of $side ===="
    [ -f "$work/$side.err" ] && cat "$work/$side.err" >> "$txt"
  done
}

# the tshark ground truth: one line per TCP segment with payload
truth() {
  local f=$1
  {
    echo ""
    echo "==== tshark ground truth ===="
    echo "\$ capinfos -c -d -u $(basename "$f")"
    capinfos -c -d -u "$f" 2> /dev/null | sed 1d
    echo "\$ tshark -r $(basename "$f") -T fields -e frame.number -e frame.time_relative -e tcp.stream -e tcp.srcport -e tcp.dstport -e tcp.flags.str -e tcp.seq -e tcp.ack -e tcp.window_size -e tcp.len -e tcp.payload"
    echo "(payload: up to 48 bytes shown, then ..+N)"
    echo "# frame time stream src dst flags seq ack win len payload"
    tshark -r "$f" -o tcp.relative_sequence_numbers:TRUE -T fields \
      -e frame.number -e frame.time_relative -e tcp.stream -e tcp.srcport \
      -e tcp.dstport -e tcp.flags.str -e tcp.seq -e tcp.ack \
      -e tcp.window_size -e tcp.len -e tcp.payload 2> /dev/null |
      awk -F'\t' 'BEGIN{OFS="\t"} {p=$11; gsub(":","",p); if (length(p) > 96) p = substr(p,1,96) "..+" (length(p)/2-48); $11=p; print}'
  } >> "$txt"
}

maybe_gzip() {
  local size
  size=$(stat -c %s "$pcap")
  if [ "$size" -gt 2000000 ]; then
    gzip -9 -f "$pcap"
    log ""
    log "capture gzipped: $(basename "$pcap").gz ($size bytes before)"
  fi
}

common_start() {
  start_tcpdump
  start_qemu dst "${DST_ARGS[@]}" -incoming "tcp:127.0.0.1:$PORT" "${TRACE[@]}"
  start_qemu src "${SRC_ARGS[@]}" "${TRACE[@]}"
  sleep 1
}

mig_end() {
  mon src "info migrate" > /dev/null
  mon dst "info migrate" > /dev/null
  mon src "info status" > /dev/null
  mon dst "info status" > /dev/null
}

log "# run.sh $mode, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(qemu-system-x86_64 --version | head -1)"
log "# Times in [+N s] are seconds since the script started; capture times in"
log "# the ground truth are seconds since the first captured packet."
log ""
DST_ARGS=()
SRC_ARGS=()

case "$mode" in
plain|return-path|multifd)
  common_start
  if [ "$mode" = return-path ]; then
    mon dst "migrate_set_capability return-path on" > /dev/null
    mon src "migrate_set_capability return-path on" > /dev/null
  elif [ "$mode" = multifd ]; then
    for s in dst src; do
      mon $s "migrate_set_capability multifd on" > /dev/null
      mon $s "migrate_set_parameter multifd-channels 2" > /dev/null
    done
  fi
  mon src "migrate -d tcp:127.0.0.1:$PORT" > /dev/null
  wait_status src "status: (completed|failed)" 30
  sleep 0.5
  mig_end
  stop_tcpdump
  finish_logs src dst
  truth "$pcap"
  maybe_gzip
  ;;

dirty)
  guest_img 32
  DST_ARGS=("${GUEST[@]}")
  SRC_ARGS=("${GUEST[@]}")
  common_start
  mon src "migrate_set_parameter max-bandwidth 256k" > /dev/null
  mon src "info migrate_parameters" > /dev/null
  mon src "migrate -d tcp:127.0.0.1:$PORT" > /dev/null
  for _ in $(seq 1 5); do
    sleep 0.5
    mon src "info migrate" > /dev/null
  done
  # never converges at 256 KiB/s with a 300 ms downtime limit (a pass
  # dirties 128 KiB, the threshold is ~77 KiB); allow 1 s of downtime
  mon src "migrate_set_parameter downtime-limit 1000" > /dev/null
  wait_status src "status: (completed|failed)" 30
  sleep 0.5
  mig_end
  mon dst "xp /1hx 0x7e00" > /dev/null
  stop_tcpdump
  finish_logs src dst
  truth "$pcap"
  maybe_gzip
  ;;

colo|colo-stuck|colo-return-path)
  guest_img "$COLO_PAGES"
  DST_ARGS=("${GUEST[@]}")
  SRC_ARGS=("${GUEST[@]}")
  gcc -shared -fPIC -O2 -o "$work/colo-bql-shim.so" "$here/colo-bql-shim.c" -ldl ||
    { echo "cannot build colo-bql-shim.c" >&2; exit 1; }
  start_tcpdump
  if [ "$mode" = colo-stuck ]; then
    # the secondary's stderr (its colo_* trace) goes through colo_stall.py,
    # which SIGSTOPs it right after its STALL_AT-th CHECKPOINT_REPLY
    gcc -shared -fPIC -O2 -o "$work/rcvbuf-shim.so" "$here/rcvbuf-shim.c" -ldl ||
      { echo "cannot build rcvbuf-shim.c" >&2; exit 1; }
    mkfifo "$work/dst.fifo"
    python3 "$here/colo_stall.py" "$work/dst.pid" "$STALL_AT" "$STALL_SECS" \
      "$work/dst.err" "$work/stall.txt" < "$work/dst.fifo" &
    pids+=($!)
    log "\$ python3 colo_stall.py dst.pid $STALL_AT $STALL_SECS dst.err stall.txt < dst's stderr"
    QEMU_ENV="LD_PRELOAD=$work/rcvbuf-shim.so RCVBUF_SHIM_BYTES=65536" \
      QEMU_ERR="$work/dst.fifo" start_qemu dst "${DST_ARGS[@]}" -incoming "tcp:127.0.0.1:$PORT" "${TRACE[@]}"
  else
    start_qemu dst "${DST_ARGS[@]}" -incoming "tcp:127.0.0.1:$PORT" "${TRACE[@]}"
  fi
  if [ "$COLO_SHIM" = 1 ]; then
    QEMU_ENV="LD_PRELOAD=$work/colo-bql-shim.so COLO_BQL_SHIM_VERBOSE=1" \
      start_qemu src "${SRC_ARGS[@]}" "${TRACE[@]}"
  else
    start_qemu src "${SRC_ARGS[@]}" "${TRACE[@]}"
  fi
  sleep 1
  mon dst "migrate_set_capability x-colo on" > /dev/null
  mon src "migrate_set_capability x-colo on" > /dev/null
  if [ "$mode" = colo-return-path ]; then
    mon dst "migrate_set_capability return-path on" > /dev/null
    mon src "migrate_set_capability return-path on" > /dev/null
  fi
  mon src "migrate_set_parameter x-checkpoint-delay $COLO_DELAY" > /dev/null
  mon src "migrate -d tcp:127.0.0.1:$PORT" > /dev/null
  if [ "$mode" = colo-return-path ]; then
    wait_status src "status: (completed|failed|colo)" 10
    sleep 3
    mig_end
  else
    wait_status src "status: colo" 10
    mon src "info migrate" > /dev/null
    want=$COLO_CHECKPOINTS
    for _ in $(seq 1 $((want * COLO_DELAY / 50 + 100))); do
      n=$(grep -c "Send 'checkpoint-request'" "$work/src.err")
      [ "$n" -ge "$want" ] && break
      sleep 0.1
    done
    # stop checkpointing: the primary fails over (keeps running alone)
    mon src "x_colo_lost_heartbeat" > /dev/null
    sleep 1
    mig_end
    mon dst "x_colo_lost_heartbeat" > /dev/null
    sleep 0.5
    mon dst "info status" > /dev/null
    mon dst "info migrate" > /dev/null
  fi
  stop_tcpdump
  if [ -f "$work/stall.txt" ]; then
    log ""
    log "==== colo_stall.py ===="
    cat "$work/stall.txt" >> "$txt"
  fi
  finish_logs src dst
  {
    echo ""
    echo "==== colo_truth.py (from tshark output) ===="
    echo "\$ python3 tests/qemu/colo_truth.py $(basename "$pcap")"
    python3 "$here/colo_truth.py" "$pcap" 2>&1
  } >> "$txt"
  truth "$pcap"
  maybe_gzip
  ;;

exec)
  stream="$out/plain.stream"
  rm -f "$stream"
  start_qemu src "${TRACE[@]}"
  sleep 1
  mon src "migrate -d \"exec:cat > $stream\"" > /dev/null
  wait_status src "status: (completed|failed)" 30
  sleep 0.5
  mon src "info migrate" > /dev/null
  mon src "info status" > /dev/null
  log ""
  log "stream: $(stat -c %s "$stream") bytes; first 64 bytes:"
  od -A d -t x1 -N 64 "$stream" >> "$txt"
  log "last 16 bytes:"
  tail -c 16 "$stream" | od -A n -t x1 >> "$txt"
  # and load it back into a fresh QEMU
  start_qemu dst -incoming "exec:cat $stream" "${TRACE[@]}"
  sleep 2
  mon dst "info status" > /dev/null
  mon dst "info migrate" > /dev/null
  finish_logs src dst
  ;;
esac

log ""
log "# done at +$(stamp) s"
ls -la "$out"/"$mode".* "$out"/plain.stream 2> /dev/null
grep -E "Migration status|dirty sync count|^downtime|total time|colo_truth|checkpoints:" "$txt" | head -20
