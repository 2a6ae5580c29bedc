#!/bin/bash
# Turns a run of run.sh into the shipped real captures and their expectations:
#   tests/xen-nested/ship.sh OUTDIR [PREFIX [DEST]]
# For each of save (xl save file), migrate, abort and remus (captures) in OUTDIR:
# captures/xen-4.17/PREFIX-NAME.{pcap,xlsave}.gz (gzip -9, which migscope reads as
# it is), PREFIX-NAME.{pcap,xlsave}.expected.json from expect.py (cross-checked with Xen's own
# verify-stream-v2 on complete streams), and PREFIX-NAME.xl.txt: what xl printed
# (without its debug lines). PREFIX defaults to the guest's name, DEST to
# captures/xen-4.17 (MIGSCOPE_REAL_XEN=DEST cargo test --test real_xen checks another).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: ship.sh OUTDIR [PREFIX]}
WORK=${WORK:-/tmp/xen-nested}
XENPY=$WORK/root/usr/lib/xen-4.17/lib/python
prefix=${2:-$(sed -n 's/^name *= *"\(.*\)"/\1/p' "$out/guest.cfg")}
dest=${3:-$HERE/../../captures/xen-4.17}
mkdir -p "$dest"
for name in save migrate abort remus; do
  case $name in
    save) src=$out/save.xlsave; file=$prefix-save.xlsave; raw=--raw ;;
    *) src=$out/$name.pcap; file=$prefix-$name.pcap; raw= ;;
  esac
  [ -e "$src" ] || { echo "no $src, skipped"; continue; }
  gzip -9 -n -c "$src" > "$dest/$file.gz"
  xllog=()
  [ "$name" = remus ] && xllog=(--xl-log "$out/remus-xl.txt")
  python3 "$HERE/expect.py" $raw "$dest/$file.gz" --xen-python "$XENPY" "${xllog[@]}" > "$dest/$file.expected.json"
  grep -v 'debug:\|detail:' "$out/$name-xl.txt" > "$dest/$prefix-$name.xl.txt" || true
  ls -la "$dest/$file.gz"
done
cp "$out/guest.cfg" "$dest/$prefix.cfg"
