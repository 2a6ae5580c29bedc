#!/bin/busybox sh
# dom0 /init: start the Xen toolstack daemons, create the guest of /guest/guest.cfg
# and let Xen's own xl write real streams into /out:
#   save      xl save           (a file)
#   migrate   xl migrate        to localhost, port 8002, captured
#   abort     xl migrate        to a receiver that goes away after 12 MB, port 8004, captured
#             (xl then resumes the domain where it was)
#   remus     xl remus -i 1000  to localhost, port 8003, captured, ended by killing the sender
# Then it writes /out into a tar on the virtual disk, which run.sh unpacks.
/bin/busybox --install -s /bin
export PATH=/usr/lib/xen-4.17/bin:/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm; mount -t devpts devpts /dev/pts; mount -t tmpfs tmpfs /dev/shm
echo "DOM0: init starting"
for m in $(cat /mods/order); do insmod /mods/$m || echo "insmod $m failed"; done
mkdir -p /proc/xen; mount -t xenfs xenfs /proc/xen
ip link set lo up; ip addr add 127.0.0.1/8 dev lo 2>/dev/null
L=/out/dom0-log.txt
G=$(sed -n 's/^name *= *"\(.*\)"/\1/p' /guest/guest.cfg)
REMUS_SECONDS=$(cat /guest/remus-seconds)
run() { echo "+ $*" | tee -a $L; { "$@" 2>&1; echo "rc=$?"; } | tee -a $L; }
stamp() { echo "=== $(date +%T) $*" | tee -a $L; }
capture() { # port tag: tcpdump on lo, in the background, pid in $TP
  tcpdump -Z root -i lo -B 65536 -s 0 -w /out/$2.pcap tcp port $1 > /out/tcpdump-$2.txt 2>&1 &
  TP=$!; sleep 3
}
endcapture() { sleep 3; kill -INT $TP; sleep 2; cat /out/tcpdump-$1.txt | tee -a $L; }
xenstored --pid-file /var/run/xenstored.pid && echo xenstored started
sleep 1
run xen-init-dom0
xenconsoled --pid-file=/var/run/xenconsoled.pid --log=guest --log-dir=/var/log/xen/console && echo xenconsoled started
run xl info
cp /guest/guest.cfg /out/guest.cfg
stamp create
run xl -vvv create /guest/guest.cfg
booted() { # a Linux guest's console log, or the tiny guest's lines on Xen's debug port
  grep -q "GUEST: booted" /var/log/xen/console/guest-$G.log 2>/dev/null || xl dmesg | grep -q "GUEST: booted"
}
i=0; while [ $i -lt 300 ]; do booted && break; sleep 5; i=$((i+5)); done
stamp "guest boot wait ended after ${i}s"; tail -3 /var/log/xen/console/guest-$G.log; run xl list
sleep 3
stamp "save"
xl -vvv save -c $G /out/save.xlsave > /out/save-xl.txt 2>&1; echo "rc=$?" >> /out/save-xl.txt
tail -3 /out/save-xl.txt | tee -a $L
run xl list
stamp "migrate"
capture 8002 migrate
export MIGPORT=8002 MIGTAG=migrate
xl -vvv migrate -s /bin/mig-ssh $G localhost > /out/migrate-xl.txt 2>&1; echo "rc=$?" >> /out/migrate-xl.txt
endcapture migrate
grep -v 'debug:\|detail:' /out/migrate-xl.txt | tail -15 | tee -a $L
run xl list
sleep 3
stamp "abort"
capture 8004 abort
export MIGPORT=8004 MIGTAG=abort MIGABORT=12000000
xl -vvv migrate -s /bin/mig-ssh $G localhost > /out/abort-xl.txt 2>&1; echo "rc=$?" >> /out/abort-xl.txt
unset MIGABORT
endcapture abort
grep -v 'debug:\|detail:' /out/abort-xl.txt | tail -15 | tee -a $L
run xl list
sleep 3
stamp "remus"
capture 8003 remus
export MIGPORT=8003 MIGTAG=remus
xl -vvv remus -F -n -d -i 1000 -e -s /bin/mig-ssh $G localhost > /out/remus-xl.txt 2>&1 &
RP=$!
sleep $REMUS_SECONDS
stamp "killing remus sender $RP"; kill $RP; sleep 10; kill -9 $RP 2>/dev/null
endcapture remus
grep -v 'debug:\|detail:' /out/remus-xl.txt | tail -15 | tee -a $L
run xl list
run xl list
cp -r /var/log/xen /out/var-log-xen
stamp "writing out"
ls -la /out | tee -a $L
tar -cf /dev/vda -C /out . && sync && echo "DOM0: TAR WRITTEN"
echo "DOM0: ALL DONE"
exec /bin/sh
