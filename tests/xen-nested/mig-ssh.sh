#!/bin/busybox sh
# Stand-in for ssh, used as `xl migrate -s /bin/mig-ssh` (and `xl remus -s`).
# xl runs: mig-ssh <host> xl migrate-receive <args>. This starts a TCP listener
# on 127.0.0.1:$MIGPORT that runs the receiving command, then connects to it, so
# the stream crosses real TCP on lo, where tcpdump captures it. Both directions
# are also tee'd to /out/$MIGTAG-*.bin, the bytes xl wrote, for comparison.
# MIGABORT=N: the receiver is `head -c N` instead of xl, so the sender's stream
# is cut by a peer that goes away after N bytes (a real aborted migration).
host=$1; shift
echo "mig-ssh: host=$host cmd=$*" >&2
if [ -n "$MIGABORT" ]; then
  # xl's sender waits for the receiver's banner before it sends anything
  printf '#!/bin/sh\nprintf "xl migration receiver ready, send binary domain data.\\n"\nexec head -c %s >/dev/null\n' "$MIGABORT" > /tmp/recv-$MIGTAG.sh
else
  printf '#!/bin/sh\nexport PATH=%s\nexec %s 2>>/out/%s-receiver-stderr.txt\n' "$PATH" "$*" "$MIGTAG" > /tmp/recv-$MIGTAG.sh
fi
chmod +x /tmp/recv-$MIGTAG.sh
nc -l -p $MIGPORT -e /tmp/recv-$MIGTAG.sh &
sleep 2
tee /out/$MIGTAG-sender-to-receiver.bin | nc 127.0.0.1 $MIGPORT | tee /out/$MIGTAG-receiver-to-sender.bin
