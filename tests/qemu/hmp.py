#!/usr/bin/env python3
"""Sends one HMP command to a QEMU monitor on a unix socket and prints the
answer without the monitor's echo/escape noise:
    hmp.py SOCKET 'migrate tcp:127.0.0.1:4444' [WAIT_SECONDS]"""
import re
import socket
import sys
import time

s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.settimeout(0.2)


def drain(until_prompt, limit):
    out = b""
    end = time.time() + limit
    while time.time() < end:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            if until_prompt and out.endswith(b"(qemu) "):
                break
            continue
        if not chunk:
            break
        out += chunk
        if until_prompt and out.endswith(b"(qemu) "):
            break
    return out


wait = float(sys.argv[3]) if len(sys.argv) > 3 else 10.0
drain(True, min(5.0, wait))  # the banner and prompt
s.sendall(sys.argv[2].encode() + b"\n")
text = drain(True, wait).decode(errors="replace")
text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text).replace("\r", "")
lines = text.split("\n")
# the first line is the echoed command, the last the next prompt
if lines and lines[-1].startswith("(qemu)"):
    lines = lines[:-1]
sys.stdout.write("\n".join(lines[1:]) + ("\n" if len(lines) > 1 else ""))
