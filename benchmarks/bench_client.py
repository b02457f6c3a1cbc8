#!/usr/bin/env python3
"""Speed of the HA client's ``status()`` against the floor of raw Python socket I/O.

Run ``python benchmarks/bench_client.py`` (``--quick`` for a short run, ``--json FILE`` for
machine-readable results, ``--profile`` for cProfile output and a cost breakdown). Works from a
source tree with the C core built in place and from an installed package; see README.md in this
folder for the method and for how to read the figures.

Everything is measured in one run and reported as ratios to a floor measured the same way in
the same run, interleaved batch by batch, because the machines this runs on are shared and
noisy: absolute microseconds move from run to run, ratios much less.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import importlib.util
import io
import json
import os
import platform
import pstats
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _source_tree_has_core() -> bool:
    pkg = ROOT / "confd_ha"
    return (pkg / "__init__.py").is_file() and (
        any(pkg.glob("_core*.so")) or any(pkg.glob("_core*.pyd")))


def _import_confd_ha(installed_only: bool):
    """The package from this source tree when its C core is built in place, else the
    installed one (``--installed`` always takes the installed one)."""
    if not installed_only and _source_tree_has_core() and str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    try:
        import confd_ha  # noqa: F401
    except ImportError as exc:
        raise SystemExit("cannot import confd_ha (%s): install it ('pip install .') or build "
                         "its C core in place ('python build_ffi.py')" % exc)
    return confd_ha


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
confd_ha = _protocol = _io = _handshake = error = refcodec = None
REQUEST = b""


# ---------------------------------------------------------------- payloads


def status_nodes(count: int):
    """``count`` node entries ``{<<"nNNN">>, {10,0,x,y}}`` and the dicts status() must return."""
    terms = [(b"n%03d" % i, (10, 0, i >> 8, i & 0xFF)) for i in range(count)]
    expected = [{"nodeid": "n%03d" % i, "address": "10.0.%d.%d" % (i >> 8, i & 0xFF)}
                for i in range(count)]
    return terms, expected


class Case:
    """One status reply: its frame, its payload and the result status() must give."""

    def __init__(self, nodes: int, state: int = 3):
        terms, expected = status_nodes(nodes)
        self.nodes = nodes
        self.state = state if nodes else 1
        self.frame = _protocol.encode_status(self.state, terms)
        self.payload = self.frame[4:]
        self.expected = (self.state, expected)
        # The same nodes with another state: a reply that differs from the first one, for
        # measuring a result cache when every reply changes.
        self.other_frame = _protocol.encode_status(self.state ^ 1, terms)
        if refcodec is not None:  # the frame is what the reference encoder writes too
            ref = refcodec.encode((self.state, [(i, a) for i, a in terms]))
            if len(ref).to_bytes(4, "big") + ref != self.frame:
                raise SystemExit("encode_status and the reference codec disagree")


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


# ============================================================================================
# PROTOTYPE -- NOT the package's code. An optimised copy of the status() hot path, measured as
# extra rows to show what the changes proposed for confd_ha/__init__.py, _io.py and
# _protocol.py would gain (README.md, "Proposed optimisations"). Decoding still goes through
# the package's C core (confd_ha._core.lib.chd_status_decode); nothing is decoded in Python.
# ============================================================================================


def proto_call(sock, request, limit):
    """Proposed ``_io.call``: the common case in one Python frame -- sendall, one recv for
    the whole header, int.from_bytes for the length (instead of a cffi call and an
    ffi.new), one recv for the whole payload; everything else (short reads, EOF, a frame
    above the limit) goes on in _proto_call_rest with the existing careful functions."""
    try:
        sock.sendall(request)
    except OSError as exc:
        _io._fail(exc, "sending to the daemon")
    payload = None
    try:
        header = sock.recv(4)
        if len(header) == 4:
            size = int.from_bytes(header, "big")
            if size <= limit:
                payload = sock.recv(size) if size else b""
                if len(payload) == size:
                    return payload
    except OSError as exc:
        _io._fail(exc, "waiting for the daemon")
    return _proto_call_rest(sock, header, payload, limit)


def _proto_call_rest(sock, header, payload, limit):
    """The uncommon cases of proto_call."""
    if payload is not None:  # the header was fine, the payload came short
        if not payload:
            error.raise_error(error.CONFD_EOF, "connection closed by the daemon")
        return payload + _io.recv_exact(sock, int.from_bytes(header, "big") - len(payload))
    if not header:
        error.raise_error(error.CONFD_EOF, "connection closed by the daemon")
    if len(header) < 4:
        header += _io.recv_exact(sock, 4 - len(header))
    try:
        size = _protocol.frame_size(header, limit)  # raises for a frame above the limit (W-15)
    except error.Error:
        sock.close()
        raise
    return _io.recv_exact(sock, size) if size else b""


class _ProtoStatusOut:
    """Per-thread output buffers of chd_status_decode, with every derived cdata object
    (``sizes + 1``, the ffi.buffer) made once instead of on every call."""

    def __init__(self, ffi):
        self.state = ffi.new("int64_t *")
        self.sizes = ffi.new("size_t[2]")
        self.count = self.sizes + 1
        self.flags = ffi.new("int *")
        self.grow(ffi, 4096)

    def grow(self, ffi, cap: int) -> None:
        self.cap = cap
        self.text = ffi.new("unsigned char[]", cap)
        self.buf = ffi.buffer(self.text)


_proto_tls = threading.local()
_proto_core = None   # (ffi, lib.chd_status_decode), set by main()


def _proto_status_fields(payload):
    """(state, [nodeid, address, nodeid, address, ...]) from the C core, or (state, None)
    when the reply needs the generic decoder."""
    try:
        out = _proto_tls.status
    except AttributeError:
        out = _proto_tls.status = _ProtoStatusOut(_proto_core[0])
    n = len(payload)
    if 3 * n + 64 > out.cap:
        out.grow(_proto_core[0], 3 * n + 64)
    if _proto_core[1](payload, n, out.state, out.text, out.cap, out.sizes, out.count, out.flags):
        error.raise_error(error.ERR_PROTOUSAGE, "unexpected reply from daemon")
    if out.flags[0]:
        return 0, None
    if not out.count[0]:
        return out.state[0], []
    return out.state[0], out.buf[:out.sizes[0] - 1].decode("utf-8", "replace").split("\x00")


def proto_lean_decode_status(payload):
    """Proposed uncached ``_protocol.decode_status``: the same C call and the same Python
    work, minus the per-call attribute look-ups and cdata objects."""
    state, fields = _proto_status_fields(payload)
    if not fields:  # no nodes (skip the comprehension's own frame), or the generic path
        return (state, []) if fields is not None else _protocol._decode_status_generic(payload)
    fields = iter(fields)
    return state, [{"nodeid": n, "address": a} for n, a in zip(fields, fields)]


_PROTO_KEEP_MAX = 64 * 1024   # replies above this size are not kept
# The last status reply and what was decoded from it: (payload, state, kept), where kept is
# the list of field strings after the first call, and a tuple of private node dicts once the
# same reply came a second time. Replaced as a whole (one assignment: thread-safe).
_proto_last = (None, 0, None)


def proto_decode_status(payload):
    """Proposed cached ``_protocol.decode_status``. A reply equal to the previous one (the
    normal case when polling) skips the C decode and the string building, and from its
    third arrival on gets copies of kept dicts. Every call still returns a new list of new
    dicts, so callers may mutate what they get. A reply that changes costs no more than
    without the cache."""
    global _proto_last
    last = _proto_last
    if payload == last[0]:
        state, kept = last[1], last[2]
        if kept.__class__ is tuple:
            return state, list(map(dict.copy, kept)) if kept else []
        fields = iter(kept)
        nodes = [{"nodeid": n, "address": a} for n, a in zip(fields, fields)]
        _proto_last = (payload, state, tuple(map(dict.copy, nodes)))
        return state, nodes
    state, kept = _proto_status_fields(payload)
    if kept is None:
        return _protocol._decode_status_generic(payload)
    if len(payload) <= _PROTO_KEEP_MAX:
        _proto_last = (payload, state, kept)
    if not kept:
        return state, []
    fields = iter(kept)
    return state, [{"nodeid": n, "address": a} for n, a in zip(fields, fields)]


def proto_io_status(sock):
    """Prototype status(): proposed I/O path, current _protocol.decode_status."""
    if sock.__class__ is not socket.socket and not isinstance(sock, socket.socket):
        raise TypeError("sock argument must be a socket")
    return _protocol.decode_status(
        proto_call(sock, _protocol.GETSTATUS_FRAME, _handshake.SETTINGS.max_reply))


def proto_lean_status(sock):
    """Prototype status(): proposed I/O path and lean decode, no cache."""
    if sock.__class__ is not socket.socket and not isinstance(sock, socket.socket):
        raise TypeError("sock argument must be a socket")
    return proto_lean_decode_status(
        proto_call(sock, _protocol.GETSTATUS_FRAME, _handshake.SETTINGS.max_reply))


def proto_status(sock):
    """Prototype status(): proposed I/O path, lean decode and last-reply cache."""
    if sock.__class__ is not socket.socket and not isinstance(sock, socket.socket):
        raise TypeError("sock argument must be a socket")
    return proto_decode_status(
        proto_call(sock, _protocol.GETSTATUS_FRAME, _handshake.SETTINGS.max_reply))


def proto_reset():
    global _proto_last
    _proto_last = (None, 0, None)


# ============================================================================================
# end of PROTOTYPE
# ============================================================================================


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


def check_row(name, fn, pair: Buffered, case: Case) -> None:
    """Each row must return the right result before it is timed."""
    pair.peer.sendall(case.frame * 3)
    for _ in range(3):
        result = fn(pair.client)
        want = case.payload if fn is floor_call else case.expected
        if result != want:
            raise SystemExit("row %r returned a wrong result for %d nodes" % (name, case.nodes))
        if fn is not floor_call and result[1]:
            result[1][0]["nodeid"] = "mutated by the caller"  # the next call must not see it
    pair.drain(3 * len(REQUEST))


def bench_buffered(transport: str, cases, args, log):
    pair = Buffered(transport)
    results = {"request_capacity": pair.request_capacity}
    try:
        for case in cases:
            cap = pair.max_batch(case.frame)
            specs = [("floor", floor_call), ("client", confd_ha.status),
                     ("proto-io", proto_io_status), ("proto-lean", proto_lean_status),
                     ("proto", proto_status),
                     ("proto, reply changes every call", proto_status)]
            if refcodec is not None and transport == "unix":
                specs.append(("naive pure Python", naive_call))
            for name, fn in specs:
                proto_reset()
                check_row(name, fn, pair, case)
            proto_reset()
            rows = []
            for name, fn in specs:
                frames = [case.frame, case.other_frame] if "changes" in name else [case.frame]
                rows.append(Row(name, pair.runner(fn, frames)))
            calibrate(rows, args.batch_ms / 1000, cap)
            interleaved(rows, args.rounds)
            results[str(case.nodes)] = {"max_batch": cap, "rows": summarise(rows)}
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
        live = Live(case.frame)
        try:
            specs = [("floor", floor_call), ("client", confd_ha.status), ("proto", proto_status)]
            for name, fn in specs:
                proto_reset()
                result = fn(live.client)
                if result != (case.payload if fn is floor_call else case.expected):
                    raise SystemExit("live row %r returned a wrong result" % name)
            rows = [Row(name, live.runner(fn)) for name, fn in specs]
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


def bench_decoders(case: Case, args, log):
    """Decode time of the 255-node payload: this package's codec against PyPI codecs."""
    payload = case.payload
    want_terms = [(b"n%03d" % i, (10, 0, i >> 8, i & 0xFF)) for i in range(case.nodes)]
    specs = [("confd_ha _protocol.decode_status",
              lambda: _protocol.decode_status(payload), lambda r: r == case.expected),
             ("confd_ha _protocol.decode (generic)", lambda: _protocol.decode(payload),
              lambda r: r == (case.state, want_terms))]
    notes = {}
    erlpack = _optional("erlpack")
    if erlpack is None:
        notes["erlpack"] = "not installed (pip install erlpack)"
    elif not hasattr(erlpack, "unpack"):
        notes["erlpack"] = "installed but has no decoder (no erlpack.unpack)"
    else:
        specs.append(("erlpack.unpack (PyPI erlpack)", lambda: erlpack.unpack(payload),
                      lambda r: r == (case.state, want_terms)))
    erlang = _optional("erlang")
    if erlang is None or not hasattr(erlang, "binary_to_term"):
        notes["erlang-py"] = "not installed (pip install erlang-py)"
    else:
        def erlang_ok(r):
            return r[0] == case.state and [(bytes(n.value), a) for n, a in r[1]] == want_terms

        specs.append(("erlang.binary_to_term (PyPI erlang-py)",
                      lambda: erlang.binary_to_term(payload), erlang_ok))
    if refcodec is not None:
        specs.append(("tests/refcodec.decode (pure Python)", lambda: refcodec.decode(payload),
                      lambda r: r == (case.state, want_terms)))
    rows = []
    for name, fn, ok in specs:
        try:
            result = fn()
        except Exception as exc:  # a codec that cannot read our ETF: say so and go on
            notes[name] = "cannot decode the payload: %r" % (exc,)
            continue
        if not ok(result):
            notes[name] = "decodes, but to a different value: %r" % (result[1][:1],)
            continue
        rows.append(Row(name, _timed(fn)))
    calibrate(rows, args.batch_ms / 1000, 100_000)
    interleaved(rows, max(5, args.rounds // 4))
    log("  decoders done")
    return {"rows": summarise(rows), "notes": notes, "payload_bytes": len(payload)}


# ---------------------------------------------------------------- profile and breakdown


def profile_status(case: Case, calls: int) -> str:
    """cProfile of ``calls`` status() calls with pre-written replies (AF_UNIX)."""
    pair = Buffered("unix")
    try:
        batch = pair.max_batch(case.frame)
        prof = cProfile.Profile()
        done = 0
        while done < calls:
            pair.peer.sendall(case.frame * batch)
            prof.enable()
            for _ in range(batch):
                confd_ha.status(pair.client)
            prof.disable()
            pair.drain(batch * len(REQUEST))
            done += batch
        text = io.StringIO()
        stats = pstats.Stats(prof, stream=text)
        stats.sort_stats("tottime").print_stats(12)
        return "\n".join(ln for ln in text.getvalue().splitlines()
                         if ln.strip() and "Ordered by" not in ln and "List reduced" not in ln)
    finally:
        pair.close()


def breakdown(case: Case, args):
    """The pieces of status() timed alone, interleaved like the rows (µs per call)."""
    from confd_ha._core import ffi, lib

    payload, header = case.payload, case.frame[:4]
    state, sizes, flags = ffi.new("int64_t *"), ffi.new("size_t[2]"), ffi.new("int *")
    cap = 3 * len(payload) + 64
    text = ffi.new("unsigned char[]", cap)
    decode = lib.chd_status_decode
    rc = decode(payload, len(payload), state, text, cap, sizes, sizes + 1, flags)
    if rc != 0 or flags[0]:
        raise SystemExit("chd_status_decode failed on the benchmark payload")
    fields = ffi.buffer(text, sizes[0])[:-1].decode("utf-8", "replace").split("\x00") \
        if sizes[0] else []
    nodes = [{"nodeid": n, "address": a} for n, a in zip(fields[0::2], fields[1::2])]

    def build():
        fi = iter(fields)
        return [{"nodeid": n, "address": a} for n, a in zip(fi, fi)]

    pieces = [
        ("_protocol.frame_size(header) (cffi)", lambda: _protocol.frame_size(header)),
        ("int.from_bytes(header, 'big')", lambda: int.from_bytes(header, "big")),
        ("_protocol.decode_status(payload), whole", lambda: _protocol.decode_status(payload)),
        ("  lib.chd_status_decode (C)",
         lambda: decode(payload, len(payload), state, text, cap, sizes, sizes + 1, flags)),
        ("  text -> str -> split('\\0')", lambda: ffi.buffer(text, sizes[0])[:-1].decode(
            "utf-8", "replace").split("\x00")),
        ("  build the dicts (comprehension)", build),
        ("  copy cached dicts: list(map(dict.copy, ..))", lambda: list(map(dict.copy, nodes))),
        ("prototype lean decode (no cache)", lambda: proto_lean_decode_status(payload)),
        ("prototype decode, cache hit", lambda: proto_decode_status(payload)),
    ]
    proto_reset()
    rows = [Row(label, _timed(fn)) for label, fn in pieces]
    calibrate(rows, args.batch_ms / 1000, 100_000)
    interleaved(rows, max(5, args.rounds // 4))
    return {row.name: {"median_us": statistics.median(row.samples) * 1e6,
                       "min_us": min(row.samples) * 1e6} for row in rows}


# ---------------------------------------------------------------- output


def _fmt_rows(rows, targets=None) -> list:
    lines = []
    for name, r in rows.items():
        target = ""
        if targets and name in targets:
            target = "  target <= %gx: %s" % (targets[name], "met" if r["ratio_median"] <=
                                                targets[name] else "NOT met")
        lines.append("    %-34s %9.2f %9.2f %8.2fx %8.2fx%s" % (
            name, r["median_us"], r["min_us"], r["ratio_median"], r["ratio_min"], target))
    return lines


HEADER = "    %-34s %9s %9s %9s %9s" % ("row", "median us", "min us", "x floor", "x (mins)")
TARGETS = {0: 1.3, 255: 10.0}   # the targets for status() against the floor


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
            targets = {"client": TARGETS[int(nodes)]} if transport == "unix" else None
            lines.extend(_fmt_rows(block[nodes]["rows"], targets))
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
        lines.append("4. CPU time to decode the 255-node payload (%d bytes); ratio to decode_status"
                     % dec["payload_bytes"])
        lines.append("    %-40s %9s %9s %9s" % ("decoder", "median us", "min us", "ratio"))
        for name, r in dec["rows"].items():
            lines.append("    %-40s %9.2f %9.2f %8.2fx" % (
                name, r["median_us"], r["min_us"], r["ratio_median"]))
        for name, note in dec["notes"].items():
            lines.append("    note: %s: %s" % (name, note))
    bd = results.get("breakdown")
    if bd:
        lines.append("")
        lines.append("6. Pieces of status() timed alone (CPU us per call)")
        lines.append("    %-46s %9s %9s" % ("", "median", "min"))
        for nodes, pieces in bd.items():
            lines.append("  %s nodes:" % nodes)
            for label, r in pieces.items():
                lines.append("    %-46s %9.3f %9.3f" % (label, r["median_us"], r["min_us"]))
    prof = results.get("profile")
    if prof:
        for nodes, text in prof.items():
            lines.append("")
            lines.append("6. cProfile of status(), %s nodes (sorted by own time)" % nodes)
            lines.extend("    " + ln for ln in text.splitlines())
    return "\n".join(lines)


def main(argv=None) -> int:
    global confd_ha, _protocol, _io, _handshake, error, refcodec, REQUEST, _proto_core
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

    confd_ha = _import_confd_ha(args.installed)
    from confd_ha import _handshake as hs, _io as io_, _protocol as proto, error as err

    _protocol, _io, _handshake, error = proto, io_, hs, err
    from confd_ha._core import ffi, lib

    _proto_core = (ffi, lib.chd_status_decode)
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
        results["profile"] = {str(c.nodes): profile_status(c, 20 * args.rounds)
                              for c in cases}
    faulthandler.cancel_dump_traceback_later()
    print(report(results))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)
        log("results written to %s" % args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
