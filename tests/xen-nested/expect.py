#!/usr/bin/env python3
"""The expected figures of a real Xen capture, computed without migscope.

    expect.py CAPTURE.pcap[.gz] [--xen-python DIR] [--xl-log FILE]  > CAPTURE.expected.json
    expect.py --raw STREAM[.gz] [--xen-python DIR]                  > STREAM.expected.json

Written from Xen's stream specifications (docs/specs/libxc-migration-stream
and libxl-migration-stream) and xl's save header, not from migscope's code:

* The capture is read with its own pcap reader and TCP reassembly (one
  connection, Ethernet or Linux cooked, IPv4). A byte is *delivered* at the
  capture time of the packet that completes the in-order stream up to it
  (the prefix maximum of the arrival times; capture times are first made
  monotone in capture order, as a packet stamped earlier than the one before
  is taken as arriving at the latest time seen).
* Every record of the forward stream gets its offset, its type, its length,
  the delivery time of its first byte (`first`) and of its last (`done`).
  PAGE_DATA gets its pfn entries (`pfns`) and the entries whose type carries
  a page of data (`pages`: NOTAB, L1-L4 and their pinned forms; not BROKEN,
  XALLOC or XTAB), and its first and last pfn.
* Complete streams are also run through Xen's own `verify-stream-v2` code
  (xen.migration, shipped in xen-utils) when --xen-python names its folder;
  the record list it prints must equal the one found here, or this fails.
  Xen's verifier does not take checkpointed (Remus) streams; for those,
  --xl-log names the sender's `xl -vvv remus` output, whose libxc progress
  lines ("Checkpointed save: N/N") give each checkpoint's pfn count: they
  must equal the PAGE_DATA entries found for checkpoints 1 and on.

The derived figures follow migscope's written definitions (docs/FIGURES.md):
rounds (a round begins when the pfns go down or after a batch under 1024),
Remus checkpoints (split after each CHECKPOINT_END; memory from the first
byte of the checkpoint's first record, or of checkpoint 0's final round, to
the completion of CHECKPOINT; device from CHECKPOINT to CHECKPOINT_END, downtime their sum), and
a plain migration's downtime (the first byte of the final round to the
receiver's unpause result: the byte after "my copy unpause results are as
follows", which the receiver sends once it has unpaused the domain).
"""

import gzip
import json
import struct
import sys

XL_MAGIC = b"Xen saved domain, xl format\n \0 \r"
LIBXL_IDENT = b"LibxlFmt"
LIBXC_MARKER = 0xFFFFFFFFFFFFFFFF
LIBXC_IDENT = 0x58454E46  # "XENF"

LIBXL_NAMES = {0: "END", 1: "LIBXC_CONTEXT", 2: "EMULATOR_XENSTORE_DATA",
               3: "EMULATOR_CONTEXT", 4: "CHECKPOINT_END", 5: "CHECKPOINT_STATE"}
LIBXC_NAMES = {0: "END", 1: "PAGE_DATA", 2: "X86_PV_INFO", 3: "X86_PV_P2M_FRAMES",
               4: "X86_PV_VCPU_BASIC", 5: "X86_PV_VCPU_EXTENDED", 6: "X86_PV_VCPU_XSAVE",
               7: "SHARED_INFO", 8: "X86_TSC_INFO", 9: "HVM_CONTEXT", 10: "HVM_PARAMS",
               11: "TOOLSTACK", 12: "X86_PV_VCPU_MSRS", 13: "VERIFY", 14: "CHECKPOINT",
               15: "CHECKPOINT_DIRTY_PFN_LIST", 16: "STATIC_DATA_END",
               17: "X86_CPUID_POLICY", 18: "X86_MSR_POLICY"}
# Xen's verify-stream-v2 names, for the cross-check.
XEN_LIBXL = {0: "End", 1: "Libxc context", 2: "Emulator xenstore data",
             3: "Emulator context", 4: "Checkpoint end", 5: "Checkpoint state"}
MAX_BATCH = 1024


def opener(path):
    f = open(path, "rb")
    if f.read(2) == b"\x1f\x8b":
        f.close()
        return gzip.open(path, "rb")
    f.seek(0)
    return f


# --- pcap and TCP ------------------------------------------------------------

def pcap_packets(path):
    """(capture time ns, frame number, link type, bytes) of a classic pcap."""
    f = opener(path)
    gh = f.read(24)
    magic = struct.unpack("<I", gh[:4])[0]
    if magic in (0xA1B2C3D4, 0xA1B23C4D):
        e = "<"
    else:
        e = ">"
        magic = struct.unpack(">I", gh[:4])[0]
    nano = magic == 0xA1B23C4D
    link = struct.unpack(e + "I", gh[20:24])[0] & 0x0FFFFFFF
    frame = 0
    while True:
        h = f.read(16)
        if len(h) < 16:
            return
        sec, frac, incl, _orig = struct.unpack(e + "IIII", h)
        data = f.read(incl)
        if len(data) < incl:
            return
        frame += 1
        yield sec * 1_000_000_000 + (frac if nano else frac * 1000), frame, link, data


def tcp_segments(path):
    """(time ns monotone, frame, (src, sport, dst, dport), seq, flags, payload)."""
    latest = 0
    for ts, frame, link, d in pcap_packets(path):
        latest = max(latest, ts)
        if link == 1:  # Ethernet
            if struct.unpack(">H", d[12:14])[0] != 0x0800:
                continue
            ip = d[14:]
        elif link == 113:  # Linux cooked
            if struct.unpack(">H", d[14:16])[0] != 0x0800:
                continue
            ip = d[16:]
        else:
            raise SystemExit(f"link type {link} is not handled here")
        ihl = (ip[0] & 15) * 4
        total = struct.unpack(">H", ip[2:4])[0]
        if ip[9] != 6:
            continue
        tcp = ip[ihl:total]
        sport, dport, seq = struct.unpack(">HHI", tcp[:8])
        off = (tcp[12] >> 4) * 4
        key = (ip[12:16], sport, ip[16:20], dport)
        yield latest, frame, key, seq, tcp[13], bytes(tcp[off:])


class Direction:
    """One direction's bytes and their delivery times."""

    def __init__(self):
        self.isn = None
        self.segs = []  # (relative seq, time, payload)
        self.data = bytearray()
        self.runs = []  # (start offset, delivery time): bytes from start on delivered at time

    def build(self):
        got = bytearray()
        have = 0
        pending = {}
        latest = 0
        for rel, ts, payload in self.segs:
            if rel + len(payload) <= have:
                continue  # a retransmission of delivered bytes
            latest = max(latest, ts)
            pending.setdefault(rel, (ts, payload))
            while True:
                nxt = [r for r in pending if r <= have < r + len(pending[r][1])]
                if not nxt:
                    break
                r = min(nxt)
                _, p = pending.pop(r)
                new = p[have - r:]
                if not self.runs or self.runs[-1][1] != latest:
                    self.runs.append((have, latest))
                got += new
                have += len(new)
            for r in [r for r in pending if r + len(pending[r][1]) <= have]:
                pending.pop(r)
        self.data = bytes(got)
        if pending:
            sys.stderr.write(f"warning: {len(pending)} segments beyond a hole were left out\n")

    def time_of(self, offset):
        """Delivery time of byte `offset`."""
        lo, hi = 0, len(self.runs) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.runs[mid][0] <= offset:
                lo = mid
            else:
                hi = mid - 1
        return self.runs[lo][1]


def reassemble(path):
    dirs = {}
    client = None
    first_ts = None
    for ts, _frame, key, seq, flags, payload in tcp_segments(path):
        if first_ts is None:
            first_ts = ts
        d = dirs.setdefault(key, Direction())
        if flags & 0x02:  # SYN
            if not flags & 0x10:
                client = key
            d.isn = (seq + 1) % 2**32
            continue
        if payload:
            if d.isn is None:
                raise SystemExit("the capture does not start with the connection's SYN")
            d.segs.append(((seq - d.isn) % 2**32, ts, payload))
    if len(dirs) != 2 or client is None:
        raise SystemExit(f"expected one TCP connection with its SYN, found {len(dirs)} directions")
    server = next(k for k in dirs if k != client)
    for d in dirs.values():
        d.build()
    return dirs[client], dirs[server], first_ts


# --- stream walking ----------------------------------------------------------

class CleanEnd(Exception):
    """The stream stops at a record boundary without END."""


class Walker:
    """Walks the records of an xl / libxl / libxc stream, from the specs."""

    def __init__(self, data):
        self.data = data
        self.records = []
        self.domain = {}
        self.ended = False
        self.problem = None

    def u32(self, o):
        return struct.unpack_from("<I", self.data, o)[0]

    def walk(self):
        o = 0
        d = self.data
        try:
            if d.startswith(XL_MAGIC):
                _bo, _mand, _opt, optlen = struct.unpack_from("<IIII", d, 32)
                # the optional data: the config's length (u32), then its text
                clen = self.u32(48)
                self.add("xl", "SAVE_HEADER", None, 0, 48 + optlen, 48 + optlen)
                self.config(d[52:52 + min(clen, optlen - 4)])
                o = 48 + optlen
            if d[o:o + 8] == LIBXL_IDENT:
                self.add("libxl", "HEADER", None, o, 16, 16)
                o = self.libxl(o + 16)
            else:
                o = self.libxc(o, top=True)
        except CleanEnd:
            pass  # the stream stops at a record boundary
        except IndexError:
            self.problem = "stream ends inside a record"
        except struct.error:
            self.problem = "stream ends inside a record header"

    def config(self, text):
        text = text.rstrip(b"\0").decode("utf-8", "replace")
        try:
            c = json.loads(text)
            info = c.get("c_info", {})
            b = c.get("b_info", {})
            self.domain = {"name": info.get("name"), "type": info.get("type"),
                           "memory_kib": b.get("max_memkb"), "vcpus": b.get("max_vcpus")}
        except ValueError:
            self.domain = {"unparsed": True}

    def add(self, layer, name, number, offset, wire, length, **extra):
        if offset + wire > len(self.data):
            raise IndexError
        r = {"layer": layer, "type": name, "type_number": number, "offset": offset,
             "length": length, "wire_len": wire}
        r.update(extra)
        self.records.append(r)

    def record(self, layer, o):
        if o == len(self.data):
            raise CleanEnd
        rtype, length = struct.unpack_from("<II", self.data, o)
        wire = 8 + ((length + 7) & ~7)
        names = LIBXL_NAMES if layer == "libxl" else LIBXC_NAMES
        name = names.get(rtype, f"0x{rtype:x}")
        extra = {}
        if layer == "libxc" and rtype == 1:
            count = self.u32(o + 8)
            entries = struct.unpack_from(f"<{count}Q", self.data, o + 16)
            pages = sum(1 for e in entries if (e >> 60) & 7 in (0, 1, 2, 3, 4))
            pfn = [e & ((1 << 52) - 1) for e in entries]
            extra = {"pfns": count, "pages": pages,
                     "first_pfn": pfn[0] if pfn else None, "last_pfn": pfn[-1] if pfn else None}
        self.add(layer, name, rtype, o, wire, length, **extra)
        return rtype, o + wire

    def libxl(self, o):
        while True:
            rtype, o = self.record("libxl", o)
            if rtype == 1:  # LIBXC_CONTEXT: the libxc stream follows
                o = self.libxc(o, top=False)
            elif rtype == 4:  # CHECKPOINT_END: the next checkpoint's libxc records follow
                o = self.libxc_records(o)
            elif rtype == 0:
                self.ended = True
                return o

    def libxc(self, o, top):
        marker, ident, version = struct.unpack_from(">QII", self.data, o)
        if marker != LIBXC_MARKER or ident != LIBXC_IDENT:
            raise SystemExit(f"no libxc image header at offset {o}")
        self.add("libxc", "IMAGE_HEADER", None, o, 24, 24)
        self.add("libxc", "DOMAIN_HEADER", None, o + 24, 16, 16)
        o = self.libxc_records(o + 40)
        if top:
            self.ended = self.records[-1]["type"] == "END"
        return o

    def libxc_records(self, o):
        """libxc records up to END, or CHECKPOINT (libxl's records follow it)."""
        while True:
            rtype, o = self.record("libxc", o)
            if rtype in (0, 14):
                return o


# --- derived figures ----------------------------------------------------------

def rounds_of(records):
    """Rounds of the initial migration: libxc sends a round's pfns ascending,
    in batches of at most 1024, flushed when full and at the end of the round."""
    rounds = []
    last_pfn = None
    flushed = False
    for r in records:
        if r["type"] in ("CHECKPOINT", "END") and r["layer"] == "libxc":
            break
        if r["type"] != "PAGE_DATA":
            continue
        new = last_pfn is None or flushed or (r["first_pfn"] is not None and r["first_pfn"] <= last_pfn)
        flushed = r["pfns"] < MAX_BATCH
        if new:
            rounds.append({"index": len(rounds) + 1, "pages": 0, "pfns": 0, "bytes": 0,
                           "start": r["first"], "end": r["done"]})
        x = rounds[-1]
        x["pages"] += r["pages"]
        x["pfns"] += r["pfns"]
        x["bytes"] += r["wire_len"]
        x["end"] = r["done"]
        if r["last_pfn"] is not None:
            last_pfn = r["last_pfn"]
    return rounds


def remus_checkpoints(records, rounds, fwd=None, t0=0):
    """Checkpoints of a Remus stream. A checkpoint begins with the first byte
    after the previous CHECKPOINT_END: one the stream stops inside, before
    any record of it is complete, is listed too (with no phases)."""
    cps = []
    cur = None
    for r in records:
        if r["layer"] == "xl":
            continue
        if cur is None:
            cur = {"index": len(cps), "first": r["first"], "pages": 0, "pfns": 0,
                   "checkpoint": None, "checkpoint_end": None}
        if r["type"] == "PAGE_DATA":
            cur["pages"] += r["pages"]
            cur["pfns"] += r["pfns"]
        if r["layer"] == "libxc" and r["type"] == "CHECKPOINT":
            cur["checkpoint"] = r["done"]
        if r["layer"] == "libxl" and r["type"] == "CHECKPOINT_END":
            cur["checkpoint_end"] = r["done"]
            # forward bytes after the previous CHECKPOINT_END through this one
            end = r["offset"] + r["wire_len"]
            cur["bytes"] = end - (cps[-1]["end_offset"] if cps else 0)
            cur["end_offset"] = end
            cps.append(cur)
            cur = None
    if cur is not None:
        cps.append(cur)  # the capture ends inside it
    elif cps and fwd is not None and len(fwd.data) > cps[-1]["end_offset"]:
        o = cps[-1]["end_offset"]
        cps.append({"index": len(cps), "first": fwd.time_of(o) - t0, "pages": 0, "pfns": 0,
                    "checkpoint": None, "checkpoint_end": None})
    if cps and rounds:
        cps[0]["first"] = rounds[-1]["start"]  # checkpoint 0: its final round
    for c in cps:
        c["memory"] = c["checkpoint"] - c["first"] if c["checkpoint"] is not None else None
        c["device"] = (c["checkpoint_end"] - c["checkpoint"]
                       if c["checkpoint_end"] is not None and c["checkpoint"] is not None else None)
        # downtime: the memory phase (guest paused) and the device phase (its
        # output held until the checkpoint is committed)
        c["downtime"] = (c["memory"] + c["device"]
                         if c["memory"] is not None and c["device"] is not None else None)
    return cps


def xl_handover(rev, fwd_records, fwd):
    """Times of xl's messages after the stream (xl_migrate.c): the receiver's
    "domain received, ready to unpause", the sender's "domain is yours, you
    are cleared to unpause", then the receiver's "my copy unpause results are
    as follows" and the result byte (0: the domain runs there)."""
    ready = b"domain received, ready to unpause"
    go = b"domain is yours, you are cleared to unpause"
    results = b"my copy unpause results are as follows\0"
    out = {}
    i = rev.data.find(ready)
    if i >= 0:
        out["ready_to_unpause"] = rev.time_of(i + len(ready) - 1)
    end = fwd_records[-1]["offset"] + fwd_records[-1]["wire_len"] if fwd_records else 0
    j = fwd.data.find(go, end)
    if j >= 0:
        out["cleared_to_unpause"] = fwd.time_of(j + len(go) - 1)
    k = rev.data.find(results)
    if k >= 0 and k + len(results) < len(rev.data):
        out["result"] = rev.data[k + len(results)]
        out["unpause_result"] = rev.time_of(k + len(results))
    return out


# --- Xen's own verifier -------------------------------------------------------

def xen_verify(data, xen_python):
    """Runs Xen's VerifyLibxl / VerifyLibxc over the stream; returns the
    record names it printed, in order, with PAGE_DATA runs expanded."""
    sys.path.insert(0, xen_python)
    from xen.migration.libxc import VerifyLibxc
    from xen.migration.libxl import VerifyLibxl
    import xen.migration.libxc as xc

    lines = []
    pos = [0]

    def read(n):
        b = data[pos[0]:pos[0] + n]
        pos[0] += len(b)
        return b

    # count PAGE_DATA one by one instead of Xen's squashed summary
    orig = xc.VerifyLibxc.verify_record_page_data

    def page_data(self, content):
        lines.append("Libxc Record: Page data")
        return orig(self, content)
    xc.record_verifiers[xc.REC_TYPE_page_data] = page_data
    o = 0
    if data.startswith(XL_MAGIC):
        _bo, _mand, _opt, optlen = struct.unpack_from("<IIII", data, 32)
        o = 48 + optlen
    pos[0] = o
    info = lines.append
    if data[o:o + 8] == LIBXL_IDENT:
        VerifyLibxl(info, read).verify()
    else:
        VerifyLibxc(info, read).verify()
    names = []
    for line in lines:
        for prefix in ("Libxl Record: ", "Libxc Record: "):
            if line.startswith(prefix):
                names.append((prefix[:5].lower(), line[len(prefix):].split(",")[0]))
    return names, pos[0]


def cross_check(walker, xen_python):
    names, consumed = xen_verify(walker.data, xen_python)
    mine = []
    for r in walker.records:
        if r["type_number"] is None:
            continue
        table = XEN_LIBXL if r["layer"] == "libxl" else None
        if table is not None:
            mine.append(("libxl", table[r["type_number"]]))
        else:
            from xen.migration.libxc import rec_type_to_str
            mine.append(("libxc", rec_type_to_str[r["type_number"]]))
    if names != mine:
        for i, (a, b) in enumerate(zip(names, mine)):
            if a != b:
                raise SystemExit(f"verify-stream-v2 disagrees at record {i}: {a} against {b}")
        raise SystemExit(f"verify-stream-v2 found {len(names)} records, the walker {len(mine)}")
    return {"accepted": True, "records": len(names), "bytes": consumed}


def xl_cross_check(path, cps):
    """xl's progress lines against the pfn counts of checkpoints 1 and on."""
    import re
    said = [int(n) for n in re.findall(r"Checkpointed save: (\d+)/", open(path).read())]
    found = [c["pfns"] for c in cps[1:] if c["checkpoint"] is not None]
    n = min(len(said), len(found))
    if n == 0 or said[:n] != found[:n]:
        raise SystemExit(f"xl printed {said[:n]} pfns per checkpoint, the stream has {found[:n]}")
    return {"checkpoints": n, "agrees": True}


def main():
    args = sys.argv[1:]
    xen_python = None
    if "--xen-python" in args:
        i = args.index("--xen-python")
        xen_python = args[i + 1]
        del args[i:i + 2]
    xl_log = None
    if "--xl-log" in args:
        i = args.index("--xl-log")
        xl_log = args[i + 1]
        del args[i:i + 2]
    raw = "--raw" in args
    args = [a for a in args if a != "--raw"]
    path = args[0]
    out = {"file": path.rsplit("/", 1)[-1]}
    if raw:
        data = opener(path).read()
        w = Walker(data)
        w.walk()
    else:
        fwd, rev, t0 = reassemble(path)
        if fwd.data.startswith(b"xl migration receiver ready") or not (
                fwd.data.startswith(XL_MAGIC) or fwd.data.startswith(LIBXL_IDENT)):
            fwd, rev = rev, fwd  # the stream goes from the side that sends it
        w = Walker(fwd.data)
        w.walk()
        for r in w.records:
            r["first"] = fwd.time_of(r["offset"]) - t0
            r["done"] = fwd.time_of(r["offset"] + r["wire_len"] - 1) - t0
        out["forward_bytes"] = len(fwd.data)
        out["reverse_bytes"] = len(rev.data)
    out["domain"] = w.domain
    out["ended"] = w.ended
    out["problem"] = w.problem
    out["records"] = w.records
    kinds = {(r["layer"], r["type"]) for r in w.records}
    checkpointed = ("libxl", "CHECKPOINT_END") in kinds or ("libxc", "CHECKPOINT") in kinds
    out["kind"] = "remus" if checkpointed else "plain"
    if xen_python and w.ended and not checkpointed:
        out["verify_stream_v2"] = cross_check(w, xen_python)
    else:
        out["verify_stream_v2"] = None
    if not raw:
        rounds = rounds_of(w.records)
        out["rounds"] = rounds
        if checkpointed:
            out["checkpoints"] = remus_checkpoints(w.records, rounds, fwd, t0)
            if xl_log:
                out["xl_checkpointed_save"] = xl_cross_check(xl_log, out["checkpoints"])
        else:
            h = xl_handover(rev, w.records, fwd)
            for k in ("ready_to_unpause", "cleared_to_unpause", "unpause_result"):
                if k in h:
                    h[k] -= t0
            out["handover"] = h
            if w.ended and rounds and h.get("result") == 0:
                out["downtime"] = h["unpause_result"] - rounds[-1]["start"]
    write_json(out, sys.stdout)


def write_json(obj, f):
    """A key per line, and a line per element of a list: small, and diffs well."""
    f.write("{\n")
    for i, (k, v) in enumerate(obj.items()):
        f.write(f" {json.dumps(k)}: ")
        if isinstance(v, list) and v:
            f.write("[\n")
            f.write(",\n".join("  " + json.dumps(x, separators=(",", ":")) for x in v))
            f.write("\n ]")
        else:
            f.write(json.dumps(v, separators=(",", ":")))
        f.write(",\n" if i + 1 < len(obj) else "\n")
    f.write("}\n")


if __name__ == "__main__":
    main()
