#!/usr/bin/env python3
"""Stalls one COLO checkpoint (run.sh colo-stuck).

    colo_stall.py PIDFILE N SECONDS LOG REPORT  < secondary's stderr

Copies the secondary QEMU's stderr (which carries its -trace colo_* lines)
to LOG; right after the N-th "Send 'checkpoint-reply'" line (checkpoint N,
counted from 1) it sends SIGSTOP to the secondary, sleeps SECONDS and sends
SIGCONT.  The primary has by then received (or is about to receive) that
REPLY, so it stops its VM and sends VMSTATE_SEND, the RAM and the device
state into a receiver that does not read: the checkpoint is stuck after
VMSTATE_SEND until SIGCONT.  Writes what it did, with wall-clock times, to
REPORT."""
import os
import signal
import sys
import time

pidfile, nth, secs, logname, report = sys.argv[1:6]
nth = int(nth)
secs = float(secs)
seen = 0
done = False
with open(logname, "w") as log:
    for raw in sys.stdin.buffer:
        line = raw.decode(errors="replace")
        log.write(line)
        log.flush()
        if done or "Send 'checkpoint-reply'" not in line:
            continue
        seen += 1
        if seen != nth:
            continue
        done = True
        pid = int(open(pidfile).read().strip())
        t_stop = time.time()
        os.kill(pid, signal.SIGSTOP)
        time.sleep(secs)
        t_cont = time.time()
        os.kill(pid, signal.SIGCONT)
        with open(report, "w") as rep:
            rep.write(
                "SIGSTOP secondary (pid %d) right after its CHECKPOINT_REPLY "
                "#%d at %.6f (unix time), SIGCONT at %.6f: stopped %.3f s\n"
                % (pid, nth, t_stop, t_cont, t_cont - t_stop))
