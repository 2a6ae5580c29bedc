#!/usr/bin/env python3
"""Ground truth for a QEMU 7.2 COLO capture, independent of migscope:

    colo_truth.py PCAP[.gz]

Uses only tshark (fields frame.number, frame.time_relative, tcp.stream,
tcp.srcport, tcp.dstport, tcp.seq, tcp.len, tcp.payload) and then works on
the two reassembled TCP byte streams of the migration connection (the first
TCP stream whose client sends "QEVM"):

* forward (primary -> secondary) and reverse (secondary -> primary) are
  rebuilt from tcp.seq/tcp.len; a retransmitted or overlapping segment only
  adds bytes not seen yet.  Every message is dated by the frame that carried
  its LAST byte (the packet that completed it), in seconds since the first
  packet of the capture.
* reverse: a sequence of bare be32 COLOMessage values: CHECKPOINT_READY (0)
  once, then REPLY (2), VMSTATE_RECEIVED (5), VMSTATE_LOADED (6) for each
  checkpoint.  Anything else there is reported and ends the reverse parse
  (with the return-path capability the reverse stream also carries
  return-path messages: be16 type, be16 len, data).
* forward: the precopy stream ends before CHECKPOINT_READY is sent (the
  secondary only sends READY after loading all of it), so the first forward
  segment captured after READY starts at checkpoint 1's REQUEST.  From there
  each checkpoint is parsed in order:
      be32 1 REQUEST
      be32 3 VMSTATE_SEND
      live state: SECTION_END sections (0x03, be32 section id), each a list
        of RAM records up to RAM_SAVE_FLAG_EOS, then the footer 0x7e + be32
        section id; then QEMU_VM_EOF 0x00
      be32 4 VMSTATE_SIZE, be64 size
      size bytes of device state (FULL sections 0x04 ... up to EOF 0x00)
  The RAM records are parsed minimally: be64 offset|flags (flags = low 12
  bits), then unless RAM_SAVE_FLAG_CONTINUE (0x20) a u8 length + RAMBlock
  idstr, then ZERO (0x02) 1 byte, PAGE (0x08) 4096 bytes, XBZRLE (0x40) u8 +
  be16 len + data, COMPRESS_PAGE (0x100) be32 len + data; EOS (0x10) ends
  the section.  This gives "pages" (PAGE records, i.e. RAM pages sent with
  their data) and "zero" (ZERO records) per checkpoint.
  Cross-check (and fallback if the RAM parse fails): VMSTATE_SIZE must be
  the be32 4 + be64 N that sits right after a 0x00 (EOF of the live state)
  and is followed by exactly N bytes that end where the next REQUEST (be32
  1) begins or where the stream ends.  The fallback searches for the first
  such place after VMSTATE_SEND; "framing" says which method was used and
  whether both agreed.

Columns: ckpt (REQUEST count from 1), request, reply, send (VMSTATE_SEND),
size_msg (VMSTATE_SIZE incl. its be64), state_end (last device-state byte),
received, loaded, dur (loaded - request), size (the VMSTATE_SIZE value),
ram_bytes (bytes from after VMSTATE_SEND to before VMSTATE_SIZE), pages,
zero.  '-' means not in the capture.
"""
import bisect
import struct
import subprocess
import sys

MSG = {0: "CHECKPOINT_READY", 1: "CHECKPOINT_REQUEST", 2: "CHECKPOINT_REPLY",
       3: "VMSTATE_SEND", 4: "VMSTATE_SIZE", 5: "VMSTATE_RECEIVED",
       6: "VMSTATE_LOADED"}
PAGE_SIZE = 4096
F_ZERO, F_MEM_SIZE, F_PAGE, F_EOS, F_CONTINUE, F_XBZRLE, F_HOOK, F_COMPRESS = (
    0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0x100)


class Stream:
    """One direction of a TCP connection, reassembled."""

    def __init__(self):
        self.data = bytearray()
        self.ends = []      # end offset of each segment that added bytes
        self.frames = []    # (frame number, time) of that segment
        self.starts = []    # start offset of that segment's new bytes
        self.gaps = 0

    def add(self, seq, payload, frame, time):
        have = len(self.data)
        if seq + len(payload) <= have:
            return          # retransmission
        if seq > have:
            self.gaps += 1  # bytes missing from the capture: pad
            self.data.extend(b"\0" * (seq - have))
            have = seq
        self.starts.append(have)
        self.data.extend(payload[have - seq:])
        self.ends.append(len(self.data))
        self.frames.append((frame, time))

    def at(self, end):
        """(frame, time) of the segment that delivered byte end-1."""
        i = bisect.bisect_left(self.ends, end)
        return self.frames[i] if i < len(self.frames) else (None, None)

    def is_boundary(self, off):
        i = bisect.bisect_left(self.ends, off)
        return off == len(self.data) or (i < len(self.ends) and self.ends[i] == off)


def load(pcap):
    cmd = ["tshark", "-r", pcap, "-o", "tcp.relative_sequence_numbers:TRUE",
           "-Y", "tcp.len > 0", "-T", "fields",
           "-e", "frame.number", "-e", "frame.time_relative", "-e", "tcp.stream",
           "-e", "tcp.srcport", "-e", "tcp.dstport", "-e", "tcp.seq",
           "-e", "tcp.len", "-e", "tcp.payload"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    streams = {}
    for line in out.splitlines():
        f = line.split("\t")
        if len(f) < 8 or not f[7]:
            continue
        frame, t, st = int(f[0]), float(f[1]), int(f[2])
        sport, dport, seq, ln = int(f[3]), int(f[4]), int(f[5]), int(f[6])
        payload = bytes.fromhex(f[7].replace(":", ""))
        assert len(payload) == ln, (frame, len(payload), ln)
        streams.setdefault(st, []).append((frame, t, sport, dport, seq, payload))
    return streams


def pick(streams):
    for st in sorted(streams):
        segs = streams[st]
        first = min(segs, key=lambda s: s[0])
        if first[4] == 1 or first[4] == 0:
            if first[5][:4] == b"QEVM":
                client = (first[2], first[3])
                fwd, rev = Stream(), Stream()
                for frame, t, sport, dport, seq, payload in sorted(segs):
                    # relative seq numbers start at 1 after the SYN
                    (fwd if (sport, dport) == client else rev).add(
                        seq - 1, payload, frame, t)
                return st, client, fwd, rev
    return None


def be32(b, o):
    return struct.unpack_from(">I", b, o)[0]


def be64(b, o):
    return struct.unpack_from(">Q", b, o)[0]


def parse_live_state(d, off):
    """Parses SECTION_END sections of RAM records + EOF from off.  Returns
    (offset after EOF, pages, zero) or raises ValueError."""
    pages = zero = 0
    while True:
        if off >= len(d):
            raise ValueError("stream ends inside the live state")
        kind = d[off]
        if kind == 0x00:
            return off + 1, pages, zero
        if kind != 0x03:
            raise ValueError("section type 0x%02x in the live state" % kind)
        sid = be32(d, off + 1)
        off += 5
        while True:
            word = be64(d, off)
            off += 8
            flags = word & 0xfff
            if flags & F_EOS:
                break
            if flags & (F_MEM_SIZE | F_HOOK):
                raise ValueError("RAM flag 0x%x in a checkpoint" % flags)
            if not flags & (F_ZERO | F_PAGE | F_XBZRLE | F_COMPRESS):
                raise ValueError("unknown RAM flags 0x%x" % flags)
            if not flags & F_CONTINUE:
                off += 1 + d[off]
            if flags & F_ZERO:
                zero += 1
                off += 1
            elif flags & F_PAGE:
                pages += 1
                off += PAGE_SIZE
            elif flags & F_XBZRLE:
                pages += 1
                off += 3 + struct.unpack_from(">H", d, off + 1)[0]
            elif flags & F_COMPRESS:
                pages += 1
                off += 4 + be32(d, off)
            if off > len(d):
                raise ValueError("stream ends inside a RAM record")
        if d[off] != 0x7e or be32(d, off + 1) != sid:
            raise ValueError("no section footer for section %d" % sid)
        off += 5


def find_size(s, off):
    """Fallback: the first VMSTATE_SIZE after off whose payload ends at the
    next REQUEST or at the end of the stream."""
    d = s.data
    pat = b"\x00\x00\x00\x04"
    i = d.find(pat, off)
    while i >= 0:
        if i + 12 <= len(d) and i > 0 and d[i - 1] == 0:
            n = be64(d, i + 4)
            e = i + 12 + n
            if e == len(d) or (e + 4 <= len(d) and be32(d, e) == 1):
                return i
        i = d.find(pat, i + 1)
    return None


RP = {0: "INVALID", 1: "SHUT", 2: "PONG", 3: "REQ_PAGES_ID", 4: "REQ_PAGES",
      5: "RECV_BITMAP", 6: "RESUME_ACK"}


def return_path(rev, fwd):
    """The reverse stream read with return-path framing (be16 type, be16
    len, data), as the primary's return-path thread reads it."""
    r = rev.data
    o = 0
    print("reverse stream read as return-path messages (be16 type, be16 len, data):")
    while o + 4 <= len(r):
        typ, ln = struct.unpack_from(">HH", r, o)
        frame, t = rev.at(min(o + 4 + ln, len(r)))
        data = r[o + 4:o + 4 + ln]
        note = ""
        if typ == 0 and ln == 0:
            note = (" <- these 4 bytes are the secondary's CHECKPOINT_READY (be32 0);"
                    " QEMU 7.2's primary reports 'RP: Received invalid message"
                    " 0x0000 length 0x0000' and fails the migration")
        print("  frame %s at %s: type %d %s len %d data %s%s" % (
            frame, fmt(t), typ, RP.get(typ, "?"), ln, data.hex(), note))
        o += 4 + ln
    if o < len(r):
        print("  %d trailing bytes: %s" % (len(r) - o, r[o:].hex()))
    last = fwd.frames[-1] if fwd.frames else (None, None)
    print("forward stream: %d bytes, last data in frame %s at %s" % (
        len(fwd.data), last[0], fmt(last[1])))


def fmt(t):
    return "-" if t is None else "%.6f" % t


def main():
    pcap = sys.argv[1]
    streams = load(pcap)
    got = pick(streams)
    if not got:
        print("no TCP stream starting with QEVM")
        return 1
    st, client, fwd, rev = got
    print("capture: %s; migration connection: tcp.stream %d, primary port %d "
          "-> secondary port %d; forward %d bytes in %d segments, reverse %d "
          "bytes in %d segments%s" % (
              pcap, st, client[0], client[1], len(fwd.data), len(fwd.ends),
              len(rev.data), len(rev.ends),
              "; GAPS: %d/%d" % (fwd.gaps, rev.gaps) if fwd.gaps or rev.gaps else ""))
    r = rev.data
    if len(r) < 4 or be32(r, 0) != 0:
        print("reverse stream does not start with CHECKPOINT_READY: %s" % r[:32].hex())
        return_path(rev, fwd)
        return 1
    ready_frame, ready_t = rev.at(4)
    print("CHECKPOINT_READY: frame %d at %.6f" % (ready_frame, ready_t))

    # reverse messages, in order
    rmsgs = []
    o = 4
    while o + 4 <= len(r):
        v = be32(r, o)
        if v not in (2, 5, 6):
            print("reverse: unexpected be32 0x%08x at offset %d (%s); rest: %s"
                  % (v, o, MSG.get(v, "not a COLO message"), r[o:o + 32].hex()))
            break
        rmsgs.append((v, rev.at(o + 4)[1], rev.at(o + 4)[0]))
        o += 4
    if o < len(r) and o + 4 > len(r):
        print("reverse: %d trailing bytes" % (len(r) - o))

    # forward: first segment after READY
    off = None
    for start, (frame, _t) in zip(fwd.starts, fwd.frames):
        if frame > ready_frame:
            off = start
            break
    d = fwd.data
    rows = []
    if off is None:
        print("no forward data after CHECKPOINT_READY")
    else:
        print("precopy part of the forward stream: %d bytes; checkpoints start "
              "at forward offset %d" % (off, off))
    k = 0
    end_note = "stream ends after the last checkpoint"
    while off is not None and off < len(d):
        if off + 4 > len(d) or be32(d, off) != 1:
            end_note = "unexpected forward bytes at offset %d: %s" % (off, d[off:off + 16].hex())
            break
        k += 1
        row = {"ckpt": k, "request": fwd.at(off + 4)[1], "frame": fwd.at(off + 4)[0]}
        rows.append(row)
        off += 4
        if off + 4 > len(d):
            end_note = "checkpoint %d: stream ends after REQUEST" % k
            break
        if be32(d, off) != 3:
            end_note = "checkpoint %d: 0x%08x instead of VMSTATE_SEND" % (k, be32(d, off))
            break
        row["send"] = fwd.at(off + 4)[1]
        off += 4
        ram_start = off
        method = "ram-parse"
        try:
            after, pages, zero = parse_live_state(d, off)
            row["pages"], row["zero"] = pages, zero
            if after + 12 > len(d) or be32(d, after) != 4:
                raise ValueError("no VMSTATE_SIZE after the live state")
            size_at = after
        except (ValueError, struct.error, IndexError) as e:
            method = "scan (%s)" % e
            size_at = find_size(fwd, off)
        if size_at is None or size_at + 12 > len(d):
            end_note = "checkpoint %d: stream ends before VMSTATE_SIZE" % k
            break
        if method == "ram-parse":
            alt = find_size(fwd, off)
            method += ", scan agrees" if alt == size_at else ", scan found %s" % alt
        row["framing"] = method
        row["ram_bytes"] = size_at - ram_start
        size = be64(d, size_at + 4)
        row["size"] = size
        row["size_msg"] = fwd.at(size_at + 12)[1]
        off = size_at + 12
        if off + size > len(d):
            end_note = "checkpoint %d: stream ends inside the device state (%d of %d bytes)" % (
                k, len(d) - off, size)
            off = len(d)
            break
        row["state_first"] = d[off]
        row["state_last"] = d[off + size - 1]
        row["state_end"] = fwd.at(off + size)[1]
        row["state_end_at_boundary"] = fwd.is_boundary(off + size)
        off += size
    # attach reverse messages: REPLY/RECEIVED/LOADED in order
    ri = 0
    for row in rows:
        for name, want in (("reply", 2), ("received", 5), ("loaded", 6)):
            if ri < len(rmsgs) and rmsgs[ri][0] == want:
                row[name] = rmsgs[ri][1]
                ri += 1
            else:
                break
    if ri < len(rmsgs):
        print("reverse: %d messages not matched to a checkpoint" % (len(rmsgs) - ri))

    print()
    hdr = ("ckpt", "request", "reply", "send", "size_msg", "state_end",
           "received", "loaded", "dur", "size", "ram_bytes", "pages", "zero")
    print("\t".join(hdr))
    for row in rows:
        dur = (row["loaded"] - row["request"]) if "loaded" in row else None
        print("\t".join([
            str(row["ckpt"]), fmt(row.get("request")), fmt(row.get("reply")),
            fmt(row.get("send")), fmt(row.get("size_msg")), fmt(row.get("state_end")),
            fmt(row.get("received")), fmt(row.get("loaded")),
            "-" if dur is None else "%.3f" % dur,
            str(row.get("size", "-")), str(row.get("ram_bytes", "-")),
            str(row.get("pages", "-")), str(row.get("zero", "-"))]))
    complete = [r_ for r_ in rows if "loaded" in r_]
    print()
    print("checkpoints: %d REQUESTs, %d complete (LOADED seen)" % (len(rows), len(complete)))
    print("end: %s" % end_note)
    frames = sorted(set(r_.get("framing", "-") for r_ in rows))
    print("framing: %s" % "; ".join(frames))
    bad = [r_["ckpt"] for r_ in rows if "state_end" in r_ and
           (r_["state_first"] != 0x04 or r_["state_last"] != 0x00)]
    if bad:
        print("device state not FULL...EOF in checkpoints %s" % bad)
    nb = [r_["ckpt"] for r_ in rows if "state_end" in r_ and not r_["state_end_at_boundary"]]
    print("device state ends at a segment boundary: %s" % (
        "all" if not nb else "not in checkpoints %s" % nb))
    if complete:
        durs = sorted(((r_["loaded"] - r_["request"]), r_["ckpt"]) for r_ in complete)
        print("dur: min %.3f s, median %.3f s, max %.3f s (checkpoint %d)" % (
            durs[0][0], durs[len(durs) // 2][0], durs[-1][0], durs[-1][1]))
        gaps = []
        for r_ in complete:
            pts = [("request", r_["request"]), ("reply", r_.get("reply")),
                   ("send", r_.get("send")), ("size_msg", r_.get("size_msg")),
                   ("state_end", r_.get("state_end")), ("received", r_.get("received")),
                   ("loaded", r_.get("loaded"))]
            for (a, ta), (b, tb) in zip(pts, pts[1:]):
                if ta is not None and tb is not None:
                    gaps.append((tb - ta, r_["ckpt"], a, b))
        g = max(gaps)
        print("longest step: %.3f s in checkpoint %d, between %s and %s" % g)
    return 0


if __name__ == "__main__":
    sys.exit(main())
