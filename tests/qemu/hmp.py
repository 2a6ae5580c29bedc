#!/usr/bin/env python3
"""Sends one HMP command to a QEMU monitor on a unix socket and prints the
answer: hmp.py SOCKET 'migrate tcp:127.0.0.1:4444'."""
import socket
import sys
import time

s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.settimeout(1.0)


def drain():
    out = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    except socket.timeout:
        pass
    return out


drain()  # the banner and prompt
s.sendall(sys.argv[2].encode() + b"\n")
time.sleep(float(sys.argv[3]) if len(sys.argv) > 3 else 0.3)
sys.stdout.write(drain().decode(errors="replace"))
