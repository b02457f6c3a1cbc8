#!/usr/bin/env python3
"""Speed of the HA client's ``status()`` against the floor of raw Python socket I/O.

Run ``python benchmarks/bench_client.py`` (``--quick`` for a short run, ``--json FILE`` for
machine-readable results, ``--profile`` for cProfile output and a cost breakdown). Works from a
source tree with the C core built in place and from an installed package; see README.md in this
folder for the method and for how to read the figures.

Everything is measured in one run and reported as ratios to a floor measured the same way in
the same run, interleaved batch by batch, because the machines this runs on are shared and
noisy: absolute microseconds move from run to run, ratios much less. status() is measured
twice: with the peer answering every poll with the same reply (the issue's setup, where the
package's last-reply cache hits) and with two different replies in turn (the cache never hits).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import importlib.util
import itertools
import json
import os
import platform
import pstats
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _package import import_confd_ha  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent




def _import_refcodec():
    """tests/refcodec.py (the pure-Python reference codec) by path, or None when this is not a
    source tree."""
    path = ROOT / "tests" / "refcodec.py"
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location("_bench_refcodec", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _optional(name: str):
    try:
        return __import__(name)
    except Exception:  # not installed, or broken: reported as missing
        return None


# Filled in by main() once the package is imported.
confd_ha = _protocol = _io = _handshake = refcodec = None
REQUEST = b""


# ---------------------------------------------------------------- payloads


def status_nodes(count: int):
    """``count`` node entries ``{<<"nNNN">>, {10,0,x,y}}``."""
    return [(b"n%03d" % i, (10, 0, i >> 8, i & 0xFF)) for i in range(count)]


class Reply:
    """One status reply: its frame, its payload, its terms and the result status() must give."""

    def __init__(self, state: int, terms):
        self.state = state
        self.terms = terms
        self.frame = _protocol.encode_status(state, terms)
        self.payload = self.frame[4:]
        self.expected = (state, [{"nodeid": nid.decode(), "address": "%d.%d.%d.%d" % addr}
                                 for nid, addr in terms])
        if refcodec is not None:  # the frame is what the reference encoder writes too
            ref = refcodec.encode((state, list(terms)))
            if len(ref).to_bytes(4, "big") + ref != self.frame:
                raise SystemExit("encode_status and the reference codec disagree")


class Case:
    """A node count and two replies of the same size that differ: ``same`` is what a peer
    answering every poll with the same status sends (the issue's setup); alternating
    ``same`` and ``other`` makes every reply differ from the previous one, so the package's
    last-reply cache never hits (the uncached worst case)."""

    def __init__(self, nodes: int):
        self.nodes = nodes
        terms = status_nodes(nodes)
        if nodes:
            # The last node id differs ("n254" -> "m254"): the cache's equality test has to
            # read the whole payload before it fails, the most it can cost.
            other = terms[:-1] + [(b"m" + terms[-1][0][1:], terms[-1][1])]
            self.same, self.other = Reply(3, terms), Reply(3, other)
        else:
            self.same, self.other = Reply(1, []), Reply(2, [])
        if len(self.same.frame) != len(self.other.frame) or \
                self.same.frame == self.other.frame:
            raise SystemExit("the two replies must differ and have the same size")

    def replies(self, changing: bool):
        """The replies of a row, in the order the peer sends them (cycled)."""
        return (self.same, self.other) if changing else (self.same,)


# ---------------------------------------------------------------- the rows being measured


def floor_call(sock):
    """The floor: the same request/response exchange with prebuilt bytes and the same style
    of socket calls as the client (sendall, recv(4), recv(size)), nothing decoded."""
    sock.sendall(REQUEST)
    header = sock.recv(4)
    size = int.from_bytes(header, "big")
    payload = sock.recv(size) if size else b""
    if len(header) != 4 or len(payload) != size:
        raise RuntimeError("short read in the floor loop")
    return payload


def _naive_address(addr) -> str:
    if len(addr) == 4:
        return "%d.%d.%d.%d" % addr
    if len(addr) == 8:
        return socket.inet_ntop(socket.AF_INET6, b"".join(x.to_bytes(2, "big") for x in addr))
    return bytes(addr).decode("utf-8", "replace")


def naive_call(sock):
    """A naive pure-Python client: the floor's I/O, tests/refcodec.py's decoder, then the
    dicts (reference only: the package never decodes in Python)."""
    state, nodes = refcodec.decode(floor_call(sock))
    return state, [{"nodeid": nid.split(b"\x00", 1)[0].decode("utf-8", "replace"),
                    "address": _naive_address(addr)} for nid, addr in nodes]


def io_call(sock):
    """The package's I/O path alone (``_io.call``, as status() calls it), nothing decoded."""
    return _io.call(sock, _protocol.GETSTATUS_FRAME, _handshake.SETTINGS.max_reply)


def status_call(sock):
    return confd_ha.status(sock)


class Spec:
    """A row to measure over a socket: its name, the function called with the client socket,
    whether the peer alternates two different replies, and whether the function returns the
    raw payload (floor, I/O only) or status()'s result."""

    def __init__(self, name: str, fn, changing: bool = False, raw: bool = False):
        self.name, self.fn, self.changing, self.raw = name, fn, changing, raw

    def want(self, reply: Reply):
        return reply.payload if self.raw else reply.expected


CLIENT = "client"
CLIENT_CHANGING = "client, reply changes every call"


# ---------------------------------------------------------------- measuring

# The CPU time of this thread (user + system, including the socket syscalls): time spent
# waiting while other processes had the CPU is not counted, which is what makes figures
# taken on a busy shared machine usable. The live-peer rows use wall time instead.
CPU_CLOCK = getattr(time, "thread_time", time.process_time)


class Row:
    """One measured row: ``run(n)`` performs n calls and returns the seconds they took."""

    def __init__(self, name: str, run, batch: int = 0):
        self.name = name
        self.run = run
        self.batch = batch     # calls per timed batch, set by calibrate()
        self.samples = []      # seconds per call, one per batch


def calibrate(rows, batch_seconds: float, cap: int) -> None:
    """Give each row the number of calls that takes about ``batch_seconds`` (4..cap), so
    that every row's batches are equally exposed to the machine's noise."""
    for row in rows:
        row.run(min(cap, 8))                       # warm caches and the result cache
        n = min(cap, 16)
        per_call = min(row.run(n) for _ in range(3)) / n
        row.batch = max(4, min(cap, int(batch_seconds / max(per_call, 1e-9))))


def interleaved(rows, rounds: int) -> None:
    """Run ``rounds`` rounds; a round times one batch of every row, starting with a
    different row each round, so that drift and bursts of load from other processes fall on
    all rows alike. Appends one seconds-per-call sample per row and round."""
    for r in range(rounds):
        gc.collect()   # GC stays enabled while timing, as in real use
        k = r % len(rows)
        for row in rows[k:] + rows[:k]:
            row.samples.append(row.run(row.batch) / row.batch)


def summarise(rows):
    """Median and minimum per row, and both as ratios to the first row (the floor)."""
    base = rows[0]
    base_med, base_min = statistics.median(base.samples), min(base.samples)
    out = {}
    for row in rows:
        med, low = statistics.median(row.samples), min(row.samples)
        out[row.name] = {"median_us": med * 1e6, "min_us": low * 1e6,
                         "ratio_median": med / base_med, "ratio_min": low / base_min,
                         "batch": row.batch, "batches": len(row.samples),
                         "calls": row.batch * len(row.samples)}
    return out


# ---------------------------------------------------------------- pre-buffered replies


class Buffered:
    """A connected pair -- ``client`` (blocking, no timeout, as callers use it) and ``peer`` --
    over an AF_UNIX socketpair or loopback TCP, with big socket buffers.

    The replies are written by the peer *before* each timed batch, in the same thread, so
    every recv of the timed loop finds its bytes already queued and nothing waits on the
    network or on another thread; the requests the client sends during the batch are read
    away by the peer after it. The batch size is capped so that a batch of replies and a
    batch of requests both fit in the buffers (nothing can block).
    """

    def __init__(self, transport: str):
        self.transport = transport
        if transport == "unix":
            self.client, self.peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        else:
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            listener.settimeout(10)
            self.client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            for s in (self.client, listener):  # before connecting: sets the TCP window
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
            self.client.connect(listener.getsockname())
            self.peer, _ = listener.accept()
            listener.close()
        for s in (self.client, self.peer):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.peer.settimeout(30)   # a mistake shows up as an error, never as a hang
        self.sink = bytearray(1 << 20)
        self.request_capacity = self._capacity(self.client, self.peer, REQUEST, one_by_one=True)

    def close(self) -> None:
        self.client.close()
        self.peer.close()

    def drain(self, nbytes: int) -> None:
        """Read away ``nbytes`` the client sent."""
        self._read(self.peer, nbytes)

    def _read(self, sock, nbytes: int) -> None:
        view = memoryview(self.sink)
        while nbytes:
            got = sock.recv_into(view[:min(nbytes, len(view))])
            if not got:
                raise RuntimeError("connection closed while draining")
            nbytes -= got

    def _capacity(self, writer, reader, chunk: bytes, one_by_one: bool) -> int:
        """How many copies of ``chunk`` fit in flight from writer to reader (measured by
        writing without blocking until the kernel refuses), then everything is read away."""
        timeout = writer.gettimeout()
        writer.setblocking(False)
        sent = 0
        try:
            if one_by_one:  # each small send costs a whole socket buffer entry
                for _ in range(200_000):
                    sent += writer.send(chunk)
            else:
                blob = chunk * max(1, (64 << 20) // len(chunk))
                while True:
                    n = writer.send(blob)
                    sent += n
                    if n < len(blob):
                        break
        except BlockingIOError:
            pass
        finally:
            writer.settimeout(timeout)
        timeout = reader.gettimeout()
        reader.settimeout(30)
        try:
            self._read(reader, sent)
        finally:
            reader.settimeout(timeout)  # the client goes back to blocking, no timeout
        return sent // len(chunk)

    def max_batch(self, frame: bytes, limit: int = 1024) -> int:
        """The most calls per batch: a quarter of what fits in flight either way."""
        replies = self._capacity(self.peer, self.client, frame, one_by_one=False)
        return max(1, min(limit, replies // 4, self.request_capacity // 4) - 2)

    def runner(self, fn, frames, warm: int = 2):
        """``run(n)`` for a Row: write warm + n replies, make ``warm`` untimed calls (so that
        a row never starts on what the previous row left in a result cache), time n calls
        of ``fn(client)``, read the requests away."""
        client, peer, clock = self.client, self.peer, CPU_CLOCK
        blobs = {}

        def run(n):
            blob = blobs.get(n)
            if blob is None:
                blob = blobs[n] = b"".join(frames[i % len(frames)] for i in range(warm + n))
            peer.sendall(blob)
            for _ in range(warm):
                fn(client)
            t0 = clock()
            for _ in range(n):
                fn(client)
            elapsed = clock() - t0
            self.drain((warm + n) * len(REQUEST))
            return elapsed

        return run


def check_row(spec: Spec, pair: Buffered, case: Case) -> None:
    """Each row must return the right result before it is timed -- including when the reply
    comes again after a change, and when the caller mutated what the previous call returned
    (a result cache must never hand out shared objects)."""
    replies = case.replies(spec.changing)
    order = [replies[i % len(replies)] for i in range(6)] + [case.same] * 3
    pair.peer.sendall(b"".join(r.frame for r in order))
    for reply in order:
        result = spec.fn(pair.client)
        if result != spec.want(reply):
            raise SystemExit("row %r returned a wrong result for %d nodes"
                             % (spec.name, case.nodes))
        if not spec.raw and result[1]:
            result[1][0]["nodeid"] = "mutated by the caller"  # the next call must not see it
            result[1].append({"added": "by the caller"})
    pair.drain(len(order) * len(REQUEST))


def measure_buffered(pair: Buffered, case: Case, specs, args):
    """Check, calibrate and time ``specs`` on ``pair``; the summary of the rows."""
    cap = pair.max_batch(case.same.frame)
    for spec in specs:
        check_row(spec, pair, case)
    rows = [Row(spec.name, pair.runner(spec.fn, [r.frame for r in case.replies(spec.changing)]))
            for spec in specs]
    calibrate(rows, args.batch_ms / 1000, cap)
    interleaved(rows, args.rounds)
    return cap, summarise(rows)


def bench_buffered(transport: str, cases, args, log):
    pair = Buffered(transport)
    results = {"request_capacity": pair.request_capacity}
    try:
        for case in cases:
            specs = [Spec("floor", floor_call, raw=True), Spec(CLIENT, status_call),
                     Spec(CLIENT_CHANGING, status_call, changing=True)]
            if refcodec is not None and transport == "unix":
                specs.append(Spec("naive pure Python", naive_call))
            cap, rows = measure_buffered(pair, case, specs, args)
            results[str(case.nodes)] = {"max_batch": cap, "rows": rows}
            log("  %s, %3d nodes done (batches of up to %d replies)" % (transport, case.nodes, cap))
    finally:
        pair.close()
    return results


# ---------------------------------------------------------------- live peer


RESPONDER = r"""
import socket, sys
reply = sys.stdin.buffer.read()
ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(1)
ls.settimeout(30)
print(ls.getsockname()[1], flush=True)
s, _ = ls.accept()
ls.close()
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
buf = bytearray(1 << 16)
view = memoryview(buf)
def read_exact(n):
    while n:
        got = s.recv_into(view[:n])
        if not got:
            return False
        n -= got
    return True
while read_exact(4):
    if not read_exact(int.from_bytes(buf[:4], "big")):
        break
    s.sendall(reply)
"""


class Live:
    """A responder subprocess on loopback TCP that answers every request frame with one
    canned reply; the client's socket is a plain connected ``socket.socket()``."""

    def __init__(self, frame: bytes):
        self.proc = subprocess.Popen([sys.executable, "-c", RESPONDER], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE)
        self.proc.stdin.write(frame)
        self.proc.stdin.close()
        port = int(self.proc.stdout.readline())
        self.client = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.client.settimeout(None)

    def close(self) -> None:
        self.client.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()

    def runner(self, fn):
        sock, clock = self.client, time.perf_counter

        def run(n):
            t0 = clock()
            for _ in range(n):
                fn(sock)
            return clock() - t0

        return run


def bench_live(cases, args, log):
    results = {}
    for case in cases:
        live = Live(case.same.frame)
        try:
            specs = [Spec("floor", floor_call, raw=True), Spec(CLIENT, status_call)]
            for spec in specs:
                if spec.fn(live.client) != spec.want(case.same):
                    raise SystemExit("live row %r returned a wrong result" % spec.name)
            rows = [Row(spec.name, live.runner(spec.fn)) for spec in specs]
            calibrate(rows, 4 * args.batch_ms / 1000, 10_000)
            interleaved(rows, max(5, args.rounds // 4))
        finally:
            live.close()
        results[str(case.nodes)] = {"rows": summarise(rows)}
        log("  live TCP, %3d nodes done" % case.nodes)
    return results


# ---------------------------------------------------------------- decoders


def _timed(fn):
    clock = CPU_CLOCK

    def run(n):
        t0 = clock()
        for _ in range(n):
            fn()
        return clock() - t0

    return run


def _alternating(decode, payloads):
    """A no-argument function that decodes the payloads in turn, one per call."""
    nxt = itertools.cycle(payloads).__next__
    return lambda: decode(nxt())


DECODE_STATUS = "confd_ha decode_status"


def bench_decoders(case: Case, args, log):
    """Decode time of the 255-node payload: this package's codec against PyPI codecs.

    Every decoder is given the two replies of the case in turn, so that decode_status's
    last-reply cache never hits (the others have none); one extra row shows decode_status
    given the same reply every time."""
    replies = (case.same, case.other)
    specs = [(DECODE_STATUS + " (reply changes)", _protocol.decode_status,
              lambda r, rep: r == rep.expected),
             (DECODE_STATUS + " (same reply, cache hit)", _protocol.decode_status, None),
             ("confd_ha decode (generic)", _protocol.decode,
              lambda r, rep: r == (rep.state, rep.terms))]
    notes = {}
    erlpack = _optional("erlpack")
    if erlpack is None:
        notes["erlpack"] = "not installed (pip install erlpack)"
    elif not hasattr(erlpack, "unpack"):
        notes["erlpack"] = "installed but has no decoder (no erlpack.unpack)"
    else:
        specs.append(("erlpack.unpack (PyPI erlpack)", erlpack.unpack,
                      lambda r, rep: r == (rep.state, rep.terms)))
    erlang = _optional("erlang")
    if erlang is None or not hasattr(erlang, "binary_to_term"):
        notes["erlang-py"] = "not installed (pip install erlang-py)"
    else:
        def erlang_ok(r, rep):
            return r[0] == rep.state and [(bytes(n.value), a) for n, a in r[1]] == rep.terms

        specs.append(("erlang.binary_to_term (PyPI erlang-py)", erlang.binary_to_term,
                      erlang_ok))
    if refcodec is not None:
        specs.append(("tests/refcodec.decode (pure Python)", refcodec.decode,
                      lambda r, rep: r == (rep.state, rep.terms)))
    rows = []
    for name, decode, ok in specs:
        if ok is None:  # the cache row: same decoder as the first row, already checked
            # Equal copies in turn: every call hits, and compares the bytes as a real hit does
            # (an object compared with itself would skip that).
            same = case.same.payload
            rows.append(Row(name, _timed(_alternating(decode, [same, bytes(bytearray(same))]))))
            continue
        try:
            results = [(decode(rep.payload), rep) for rep in replies]
        except Exception as exc:  # a codec that cannot read our ETF: say so and go on
            notes[name] = "cannot decode the payload: %r" % (exc,)
            continue
        bad = [r for r, rep in results if not ok(r, rep)]
        if bad:
            notes[name] = "decodes, but to a different value: %r" % (bad[0][1][:1],)
            continue
        rows.append(Row(name, _timed(_alternating(decode, [r.payload for r in replies]))))
    calibrate(rows, args.batch_ms / 1000, 100_000)
    interleaved(rows, max(5, args.rounds // 4))
    log("  decoders done")
    return {"rows": summarise(rows), "notes": notes, "payload_bytes": len(case.same.payload)}


# ---------------------------------------------------------------- profile and breakdown


def profile_status(case: Case, calls: int, changing: bool) -> str:
    """cProfile of about ``calls`` status() calls with pre-written replies (AF_UNIX), as the
    functions that took the most time of their own, in us per status() call."""
    pair = Buffered("unix")
    try:
        batch = pair.max_batch(case.same.frame)
        replies = case.replies(changing)
        blob = b"".join(replies[i % len(replies)].frame for i in range(batch))
        prof = cProfile.Profile(CPU_CLOCK)  # CPU time: preemption lands in no function
        done = 0
        while done < calls:
            pair.peer.sendall(blob)
            prof.enable()
            for _ in range(batch):
                confd_ha.status(pair.client)
            prof.disable()
            pair.drain(batch * len(REQUEST))
            done += batch
    finally:
        pair.close()
    top = os.path.dirname(os.path.dirname(confd_ha.__file__))
    entries = sorted(pstats.Stats(prof).stats.items(), key=lambda kv: kv[1][2], reverse=True)
    lines = ["%8s %9s %9s  %s" % ("ncalls", "own us", "cum us", "function (us per status())")]
    for (path, line, func), (_, ncalls, own, cum, _) in entries[:10]:
        where = func if path == "~" else "%s:%d(%s)" % (os.path.relpath(path, top), line, func)
        lines.append("%8d %9.3f %9.3f  %s" % (ncalls, own / done * 1e6, cum / done * 1e6, where))
    return "\n".join(lines)


def breakdown(case: Case, args):
    """Where the time of status() goes: the I/O path alone against the floor and status()
    over a socket (CPU us per call, like section 1), then the pieces of the decode timed
    alone without a socket."""
    from confd_ha._core import ffi, lib

    pair = Buffered("unix")
    try:
        _, io_rows = measure_buffered(pair, case, [
            Spec("floor", floor_call, raw=True),
            Spec("_io.call (the I/O path alone)", io_call, raw=True),
            Spec("status(), same reply", status_call),
            Spec("status(), reply changes", status_call, changing=True)], args)
    finally:
        pair.close()

    payload = case.same.payload
    # Equal to payload but another object, as every recv returns: an object compared with
    # itself skips the byte comparison a real cache hit pays.
    twin = bytes(bytearray(payload))
    state, sizes, flags = ffi.new("int64_t *"), ffi.new("size_t[2]"), ffi.new("int *")
    cap = 3 * len(payload) + 64
    text = ffi.new("unsigned char[]", cap)
    decode = lib.chd_status_decode
    rc = decode(payload, len(payload), state, text, cap, sizes, sizes + 1, flags)
    if rc != 0 or flags[0]:
        raise SystemExit("chd_status_decode failed on the benchmark payload")
    fields = ffi.buffer(text, sizes[0])[:-1].decode("utf-8", "replace").split("\x00") \
        if sizes[0] else []
    nodes = tuple(case.same.expected[1])

    def build():
        fi = iter(fields)
        return [{"nodeid": n, "address": a} for n, a in zip(fi, fi)]

    pieces = [
        ("decode_status, same reply (cache hit), whole",
         _alternating(_protocol.decode_status, [payload, twin])),
        ("  payload == last payload (equal bytes)", lambda: payload == twin)]
    if case.nodes:
        pieces.append(("  list(map(dict.copy, kept dicts))", lambda: list(map(dict.copy, nodes))))
    pieces += [
        ("decode_status, reply changes, whole",
         _alternating(_protocol.decode_status, [case.same.payload, case.other.payload])),
        ("  _status_fields (C decode, text fields)",
         lambda: _protocol._status_fields(payload)),
        ("    lib.chd_status_decode (C)",
         lambda: decode(payload, len(payload), state, text, cap, sizes, sizes + 1, flags))]
    if case.nodes:
        pieces += [
            ("    text -> str -> split('\\0')", lambda: ffi.buffer(text, sizes[0])[:-1].decode(
                "utf-8", "replace").split("\x00")),
            ("  build the dicts (comprehension)", build)]
    rows = [Row(label, _timed(fn)) for label, fn in pieces]
    calibrate(rows, args.batch_ms / 1000, 100_000)
    interleaved(rows, max(5, args.rounds // 4))
    return {"io": io_rows,
            "pieces": {row.name: {"median_us": statistics.median(row.samples) * 1e6,
                                  "min_us": min(row.samples) * 1e6} for row in rows}}


# ---------------------------------------------------------------- output

TARGETS = {0: 1.3, 255: 10.0}   # the targets for status() against the floor


def _target_note(name: str, ratio: float, nodes: int) -> str:
    """The target column: the cached client row is the issue's measurement (a peer writing
    the same canned reply every time); the changing-reply row is the uncached worst case."""
    limit = TARGETS.get(nodes)
    if limit is None or name not in (CLIENT, CLIENT_CHANGING):
        return ""
    verdict = "met" if ratio <= limit else "NOT met"
    if name == CLIENT:
        return "  target <= %gx: %s (the issue's measurement)" % (limit, verdict)
    return "  worst case, vs %gx: %s" % (limit, verdict)


def _fmt_rows(rows, nodes=None) -> list:
    lines = []
    for name, r in rows.items():
        target = _target_note(name, r["ratio_median"], nodes) if nodes is not None else ""
        lines.append("    %-34s %9.2f %9.2f %8.2fx %8.2fx%s" % (
            name, r["median_us"], r["min_us"], r["ratio_median"], r["ratio_min"], target))
    return lines


HEADER = "    %-34s %9s %9s %9s %9s" % ("row", "median us", "min us", "x floor", "x (mins)")


def report(results) -> str:
    lines = []
    env = results["environment"]
    lines.append("confd_ha %s from %s" % (env["confd_ha_version"], env["confd_ha_path"]))
    lines.append("Python %s on %s, %d CPUs; %d rounds, batches of ~%g ms (load avg %s)" % (
        env["python"], env["platform"], env["cpus"], env["rounds"], env["batch_ms"],
        env.get("loadavg", "?")))
    for transport in ("unix", "tcp"):
        block = results.get("buffered_" + transport)
        if not block:
            continue
        lines.append("")
        lines.append("1. CPU time per status() call, replies already buffered (%s)" % (
            "AF_UNIX socketpair" if transport == "unix" else "loopback TCP"))
        for nodes in ("0", "255"):
            if nodes not in block:
                continue
            lines.append("  %s nodes:" % nodes)
            lines.append(HEADER)
            lines.extend(_fmt_rows(block[nodes]["rows"],
                                   int(nodes) if transport == "unix" else None))
    live = results.get("live_tcp")
    if live:
        lines.append("")
        lines.append("3. Wall time per call against a live responder (loopback TCP)")
        for nodes in ("0", "255"):
            lines.append("  %s nodes:" % nodes)
            lines.append(HEADER)
            lines.extend(_fmt_rows(live[nodes]["rows"]))
    dec = results.get("decoders")
    if dec:
        lines.append("")
        lines.append("4. CPU time to decode the 255-node payload (%d bytes); ratio to the first row"
                     % dec["payload_bytes"])
        lines.append("    %-48s %9s %9s %9s" % ("decoder", "median us", "min us", "ratio"))
        for name, r in dec["rows"].items():
            lines.append("    %-48s %9.2f %9.2f %8.2fx" % (
                name, r["median_us"], r["min_us"], r["ratio_median"]))
        for name, note in dec["notes"].items():
            lines.append("    note: %s: %s" % (name, note))
    bd = results.get("breakdown")
    if bd:
        lines.append("")
        lines.append("6. Where the time goes")
        for nodes, parts in bd.items():
            lines.append("  %s nodes, over AF_UNIX (CPU us per call):" % nodes)
            lines.append(HEADER)
            lines.extend(_fmt_rows(parts["io"]))
            lines.append("  %s nodes, pieces timed alone without a socket (CPU us per call):"
                         % nodes)
            lines.append("    %-46s %9s %9s" % ("", "median", "min"))
            for label, r in parts["pieces"].items():
                lines.append("    %-46s %9.3f %9.3f" % (label, r["median_us"], r["min_us"]))
    prof = results.get("profile")
    if prof:
        for label, text in prof.items():
            lines.append("")
            lines.append("6. cProfile of status(), %s (sorted by own time)" % label)
            lines.extend("    " + ln for ln in text.splitlines())
    return "\n".join(lines)


def main(argv=None) -> int:
    global confd_ha, _protocol, _io, _handshake, refcodec, REQUEST
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a short run (30 rounds)")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    ap.add_argument("--profile", action="store_true",
                    help="add cProfile output and a per-piece cost breakdown")
    ap.add_argument("--installed", action="store_true",
                    help="use the installed confd_ha even inside a source tree")
    ap.add_argument("--rounds", type=int,
                    help="rounds of interleaved batches (default 200, quick 30)")
    ap.add_argument("--batch-ms", type=float, default=2.0,
                    help="length of one timed batch in milliseconds (default 2)")
    ap.add_argument("--only", choices=("buffered", "live", "decoders"), action="append",
                    help="run only these sections (repeatable)")
    args = ap.parse_args(argv)
    args.rounds = args.rounds or (30 if args.quick else 200)
    sections = set(args.only or ("buffered", "live", "decoders"))

    import faulthandler
    faulthandler.dump_traceback_later(1800, exit=True)  # a bug must never hang a CI job

    confd_ha = import_confd_ha(args.installed)
    from confd_ha import _handshake as hs, _io as io_, _protocol as proto

    _protocol, _io, _handshake = proto, io_, hs
    refcodec = _import_refcodec()
    REQUEST = _protocol.GETSTATUS_FRAME

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    cases = [Case(0), Case(255)]
    results = {"environment": {
        "confd_ha_version": confd_ha.__version__,
        "confd_ha_path": os.path.dirname(confd_ha.__file__),
        "python": platform.python_version(), "implementation": platform.python_implementation(),
        "platform": platform.platform(terse=True), "cpus": os.cpu_count() or 0,
        "rounds": args.rounds, "batch_ms": args.batch_ms,
        "loadavg": "%.2f" % os.getloadavg()[0] if hasattr(os, "getloadavg") else "?",
        "gc": "enabled during timing (as in real use), collected before each round",
        "erlpack": getattr(_optional("erlpack"), "__version__", None) or
        ("installed" if _optional("erlpack") else None),
        "erlang-py": "installed" if _optional("erlang") else None,
        "refcodec": refcodec is not None}}
    if "buffered" in sections:
        log("1. pre-buffered replies ...")
        results["buffered_unix"] = bench_buffered("unix", cases, args, log)
        results["buffered_tcp"] = bench_buffered("tcp", cases, args, log)
    if "live" in sections:
        log("3. live responder ...")
        results["live_tcp"] = bench_live(cases, args, log)
    if "decoders" in sections:
        log("4. decoders ...")
        results["decoders"] = bench_decoders(cases[1], args, log)
    if args.profile:
        log("6. profile ...")
        results["breakdown"] = {str(c.nodes): breakdown(c, args) for c in cases}
        results["profile"] = {
            "%d nodes, %s" % (c.nodes, "reply changes" if changing else "same reply"):
            profile_status(c, 20 * args.rounds, changing)
            for c in cases for changing in (False, True)}
    faulthandler.cancel_dump_traceback_later()
    print(report(results))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)
        log("results written to %s" % args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
