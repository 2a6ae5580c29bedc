#!/bin/bash
# Real Xen 4.17 migration captures on one machine, no hardware virtualisation needed.
#   tests/xen-nested/run.sh OUTDIR          (GUEST=tiny-hvm by default; see build-initrd.sh)
# Boots Debian's Xen 4.17 and a Debian dom0 under qemu-system-x86_64 -accel tcg, creates
# the guest, and lets xl write a save file, a live migration, an aborted migration and a
# Remus run to localhost, captured with tcpdump on dom0's loopback (dom0-init.sh). Everything
# the dom0 wrote (pcaps, the bytes xl wrote, xl -vvv logs) is unpacked into OUTDIR.
# WORK (default /tmp/xen-nested) holds the unpacked packages and images.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: run.sh OUTDIR}
export WORK=${WORK:-/tmp/xen-nested}; mkdir -p "$WORK" "$out"
[ -e "$WORK/xen" ] || bash "$HERE/fetch-packages.sh"
bash "$HERE/build-initrd.sh"
# +npt: without hardware-assisted paging Xen runs no PVH or HVM guest (and Debian's
# hypervisor has no shadow paging to fall back on).
CPU=${CPU:-qemu64,+svm,+npt}
rm -f "$WORK/serial.log" "$WORK/out.img"; truncate -s 2G "$WORK/out.img"
qemu-system-x86_64 -accel tcg -cpu "$CPU" -m 4096 -smp 2 -display none -monitor none \
  -serial file:"$WORK/serial.log" -no-reboot \
  -kernel "$WORK/xen" \
  -append "dom0_mem=2048M,max:2048M dom0_max_vcpus=2 console=com1 com1=115200,8n1 loglvl=all guest_loglvl=all console_timestamps=boot noreboot" \
  -initrd "$(ls "$WORK"/root/boot/vmlinuz-* | head -1) console=hvc0 earlyprintk=xen rdinit=/init,$WORK/dom0-initrd.gz" \
  -drive file="$WORK/out.img",format=raw,if=virtio &
qemu=$!
trap 'kill $qemu 2>/dev/null || true' EXIT
for _ in $(seq 1 2400); do
  grep -q "DOM0: ALL DONE" "$WORK/serial.log" 2>/dev/null && break
  kill -0 $qemu 2>/dev/null || break
  sleep 1
done
grep -q "DOM0: TAR WRITTEN" "$WORK/serial.log" || { echo "dom0 did not finish; see $WORK/serial.log" >&2; exit 1; }
kill $qemu 2>/dev/null || true; wait $qemu 2>/dev/null || true
tar -xf "$WORK/out.img" -C "$out"
cp "$WORK/serial.log" "$out/serial.log"
echo "results in $out:"; ls -la "$out"
