#!/usr/bin/env python3
"""Speed of the HA client's ``status()`` against the floor of raw Python socket I/O.

Run ``python benchmarks/bench_client.py`` (``--quick`` for a short run, ``--json FILE`` for
machine-readable results, ``--profile`` for cProfile output and a cost breakdown). Works from a
source tree with the C core built in place and from an installed package; see README.md in this
folder for the method and for how to read the figures.

Everything is measured in one run and reported as ratios to a floor measured the same way in
the same run, interleaved batch by batch, because the machines this runs on are shared and
noisy: absolute microseconds move from run to run, ratios much less. status() is measured
twice: with the peer answering every poll with the same reply (the issue's setup) and with
two different replies in turn (so that no result cache could help). With ``--cisco-module DIR``
section 1 also times Cisco's own ``_confd.ha.status`` on the same socket and replies, and
reports the client's CPU per call as a ratio to it.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib.util
import os
import platform
import pstats
import socket
import statistics
import sys
from pathlib import Path

from _output import finish, loadavg, log, watchdog  # noqa: E402
from _package import import_confd_ha  # noqa: E402
from _client_report import CISCO, CLIENT, CLIENT_CHANGING, report  # noqa: E402
from _sockets import Buffered, Live  # noqa: E402
from _timing import (CPU_CLOCK, Row, alternating, calibrate, interleaved,  # noqa: E402
                     summarise, timed)

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
confd_ha = _codec = _protocol = _io = _handshake = refcodec = cisco_ha = None
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
    ``same`` and ``other`` makes every reply differ from the previous one, so that no result
    cache could help (the worst case)."""

    def __init__(self, nodes: int):
        self.nodes = nodes
        terms = status_nodes(nodes)
        if nodes:
            # The last node id differs ("n254" -> "m254"): an equality test of the payloads
            # (a result cache's) has to read the whole payload before it fails.
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


def cisco_call(sock):
    """Cisco's own ``_confd.ha.status`` (built from ConfD 8.2.5's source) on the same socket."""
    return cisco_ha.status(sock)


class Spec:
    """A row to measure over a socket: its name, the function called with the client socket,
    whether the peer alternates two different replies, and whether the function returns the
    raw payload (floor, I/O only) or status()'s result."""

    def __init__(self, name: str, fn, changing: bool = False, raw: bool = False):
        self.name, self.fn, self.changing, self.raw = name, fn, changing, raw

    def want(self, reply: Reply):
        return reply.payload if self.raw else reply.expected




# ---------------------------------------------------------------- Cisco's module


def add_cisco_ratios(rows) -> None:
    """Each row's CPU per call as a ratio to Cisco's ``_confd.ha.status`` (same run, same
    socket, same replies): medians and minima, like the ratios to the floor."""
    ref = rows[CISCO]
    for r in rows.values():
        r["x_cisco_median"] = r["median_us"] / ref["median_us"]
        r["x_cisco_min"] = r["min_us"] / ref["min_us"]


def import_cisco(directory: str):
    """Cisco's ``_confd.ha`` from the directory holding its built ``_confd`` package."""
    sys.path.insert(0, directory)
    try:
        import _confd.ha as ha
    except ImportError as exc:
        raise SystemExit("cannot import Cisco's _confd.ha from %s: %s" % (directory, exc))
    finally:
        sys.path.remove(directory)
    return ha


# ---------------------------------------------------------------- pre-buffered replies


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
    pair = Buffered(transport, REQUEST)
    results = {"request_capacity": pair.request_capacity}
    try:
        for case in cases:
            specs = [Spec("floor", floor_call, raw=True), Spec(CLIENT, status_call),
                     Spec(CLIENT_CHANGING, status_call, changing=True)]
            if cisco_ha is not None:
                specs.append(Spec(CISCO, cisco_call))
            if refcodec is not None and transport == "unix":
                specs.append(Spec("naive pure Python", naive_call))
            cap, rows = measure_buffered(pair, case, specs, args)
            if CISCO in rows:
                add_cisco_ratios(rows)
            results[str(case.nodes)] = {"max_batch": cap, "rows": rows}
            log("  %s, %3d nodes done (batches of up to %d replies)" % (transport, case.nodes, cap))
    finally:
        pair.close()
    return results


# ---------------------------------------------------------------- live peer


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


DECODE_STATUS = "confd_ha decode_status"


def bench_decoders(case: Case, args, log):
    """Decode time of the 255-node payload: this package's codec against PyPI codecs.

    Every decoder is given the two replies of the case in turn; one extra row shows
    decode_status given equal copies of one reply every time."""
    replies = (case.same, case.other)
    specs = [(DECODE_STATUS + " (reply changes)", _protocol.decode_status,
              lambda r, rep: r == rep.expected),
             (DECODE_STATUS + " (same reply)", _protocol.decode_status, None),
             ("confd_ha _codec.decode (generic)", _codec.decode,
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
        if ok is None:  # the same-reply row: same decoder as the first row, already checked
            # Equal copies in turn, as every recv returns a new object.
            same = case.same.payload
            rows.append(Row(name, timed(alternating(decode, [same, bytes(bytearray(same))]))))
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
        rows.append(Row(name, timed(alternating(decode, [r.payload for r in replies]))))
    calibrate(rows, args.batch_ms / 1000, 100_000)
    interleaved(rows, max(5, args.rounds // 4))
    log("  decoders done")
    return {"rows": summarise(rows), "notes": notes, "payload_bytes": len(case.same.payload)}


# ---------------------------------------------------------------- profile and breakdown


def profile_status(case: Case, calls: int, changing: bool) -> str:
    """cProfile of about ``calls`` status() calls with pre-written replies (AF_UNIX), as the
    functions that took the most time of their own, in us per status() call."""
    pair = Buffered("unix", REQUEST)
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

    pair = Buffered("unix", REQUEST)
    try:
        _, io_rows = measure_buffered(pair, case, [
            Spec("floor", floor_call, raw=True),
            Spec("_io.call (the I/O path alone)", io_call, raw=True),
            Spec("status(), same reply", status_call),
            Spec("status(), reply changes", status_call, changing=True)], args)
    finally:
        pair.close()

    payload = case.same.payload
    state, sizes, flags = ffi.new("int64_t *"), ffi.new("size_t[2]"), ffi.new("int *")
    cap = 3 * len(payload) + 64
    text = ffi.new("unsigned char[]", cap)
    decode = lib.chd_status_decode
    rc = decode(payload, len(payload), state, text, cap, sizes, sizes + 1, flags)
    if rc != 0 or flags[0]:
        raise SystemExit("chd_status_decode failed on the benchmark payload")
    fields = ffi.buffer(text, sizes[0])[:-1].decode("utf-8", "replace").split("\x00") \
        if sizes[0] else []

    def build():
        fi = iter(fields)
        return [{"nodeid": n, "address": a} for n, a in zip(fi, fi)]

    def buffers():
        return (ffi.new("unsigned char[]", cap), ffi.new("int64_t *"), ffi.new("size_t[2]"),
                ffi.new("int *"))

    pieces = [
        ("decode_status, same reply, whole",
         alternating(_protocol.decode_status, [payload, bytes(bytearray(payload))])),
        ("decode_status, reply changes, whole",
         alternating(_protocol.decode_status, [case.same.payload, case.other.payload]))]
    if case.nodes:
        pieces += [
            ("  ffi.new of the four output buffers", buffers),
            ("  lib.chd_status_decode (C)",
             lambda: decode(payload, len(payload), state, text, cap, sizes, sizes + 1, flags)),
            ("  text -> str -> split('\\0')", lambda: ffi.buffer(text, sizes[0])[:-1].decode(
                "utf-8", "replace").split("\x00")),
            ("  build the dicts (comprehension)", build)]
    rows = [Row(label, timed(fn)) for label, fn in pieces]
    calibrate(rows, args.batch_ms / 1000, 100_000)
    interleaved(rows, max(5, args.rounds // 4))
    return {"io": io_rows,
            "pieces": {row.name: {"median_us": statistics.median(row.samples) * 1e6,
                                  "min_us": min(row.samples) * 1e6} for row in rows}}


def main(argv=None) -> int:
    global confd_ha, _codec, _protocol, _io, _handshake, refcodec, cisco_ha, REQUEST
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
    ap.add_argument("--cisco-module", metavar="DIR", default=os.environ.get("CISCO_CONFD_PY"),
                    help="directory holding Cisco's built _confd package: adds its "
                    "_confd.ha.status to section 1 (default $CISCO_CONFD_PY)")
    ap.add_argument("--only", choices=("buffered", "live", "decoders"), action="append",
                    help="run only these sections (repeatable)")
    args = ap.parse_args(argv)
    args.rounds = args.rounds or (30 if args.quick else 200)
    sections = set(args.only or ("buffered", "live", "decoders"))

    watchdog(1800)

    confd_ha = import_confd_ha(args.installed)
    from confd_ha import _codec as codec, _handshake as hs, _io as io_, _protocol as proto

    _codec, _protocol, _io, _handshake = codec, proto, io_, hs
    refcodec = _import_refcodec()
    if args.cisco_module:
        cisco_ha = import_cisco(args.cisco_module)
    REQUEST = _protocol.GETSTATUS_FRAME

    cases = [Case(0), Case(255)]
    results = {"environment": {
        "confd_ha_version": confd_ha.__version__,
        "confd_ha_path": os.path.dirname(confd_ha.__file__),
        "python": platform.python_version(), "implementation": platform.python_implementation(),
        "platform": platform.platform(terse=True), "cpus": os.cpu_count() or 0,
        "rounds": args.rounds, "batch_ms": args.batch_ms,
        "loadavg": loadavg(),
        "gc": "enabled during timing (as in real use), collected before each round",
        "erlpack": getattr(_optional("erlpack"), "__version__", None) or
        ("installed" if _optional("erlpack") else None),
        "erlang-py": "installed" if _optional("erlang") else None,
        "refcodec": refcodec is not None, "cisco_module": args.cisco_module}}
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
    finish(results, report(results), args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
