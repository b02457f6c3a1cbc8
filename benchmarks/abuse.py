#!/usr/bin/env python3
"""The emulated node under abuse: ``status()`` latency of a legitimate client with and
without abusive clients running.

Three processes, so that no two of them share a GIL:

* the node: ``confd-ha emulate`` (``confd_ha.testing.process.EmulatorProcess``);
* the abusers: this script re-run as ``--abuser KIND`` (threads inside; stops when its stdin
  closes);
* the measuring client: this process, one HA control socket, ``confd_ha.status()`` in a
  loop, every call timed with ``time.perf_counter``; a ``beprimary``/``benone`` pair every
  500 calls so that event subscribers (including deaf ones) get events.

Phases: ``baseline`` (no abuse), then each abuse kind alone, then all of them together
(``all``: every kind but ``flood``), each after a warm-up. Kinds:

* ``random``   -- 4 threads: connect, send 1..4096 random bytes, close, again, at full speed;
* ``halfopen`` -- 200 connections held with a partial hello / a hello and no token / a token
  header and no token, reopened when the node closes them (init deadline, W-02);
* ``idle``     -- 1000 connections that send nothing, reopened when closed;
* ``oversize`` -- 2 threads: connect, announce a 4 GiB frame (as the token, as a
  subscription), wait for the node to close, again;
* ``deaf``     -- 50 event subscribers with a tiny receive buffer that never read;
* ``slowloris``-- 200 connections dripping their hello one byte every 0.4 s, reopened;
* ``flood``    -- one client pipelining status orders (reading the replies): not hostile
  bytes, but a single greedy client (it shows whether the node serves its clients fairly).

Reported per phase: median, p90, p99 and max latency in µs of ``status()`` and of a new event
connection (connect, hello, subscription), calls made, errors, the abusers' own counters, and
the node's RSS. A control connection the node refuses (its IPC connection cap) is retried
every 50 ms and counted. Usage::

    python benchmarks/abuse.py                    # every phase, ~4 s each
    python benchmarks/abuse.py --seconds 2 --only baseline,idle
    python benchmarks/abuse.py --json abuse.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import selectors
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if (ROOT / "confd_ha" / "__init__.py").is_file() and str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from _output import finish  # noqa: E402

HELLO_HA = struct.pack(">BHIBB", 17, 82, 0x08020500, 0, 0)
HELLO_EV = struct.pack(">BHIBB", 11, 82, 0x08020500, 0, 0)
HUGE = struct.pack(">I", 0xFFFFFFFF)
KINDS = ["random", "halfopen", "idle", "oversize", "deaf", "slowloris", "flood"]


# ================================================================ the abusers (child process)


class Abuser:
    def __init__(self, addr: str, port: int):
        self.addr, self.port = addr, port
        self.stop = threading.Event()
        self.counts: dict = {}
        self.lock = threading.Lock()

    def count(self, key: str, n: int = 1) -> None:
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + n

    def sock(self, timeout=5.0) -> socket.socket:
        s = socket.create_connection((self.addr, self.port), timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    # ---------------------------------------------------------------- kinds

    def random(self) -> None:
        rng = random.Random()
        while not self.stop.is_set():
            try:
                with self.sock() as s:
                    s.sendall(os.urandom(rng.randrange(1, 4097)))
                self.count("connections")
            except OSError:
                self.count("errors")

    def _hold(self, n: int, opening: list, drip_delay=None) -> None:
        """Keep ``n`` connections open, each having sent one of ``opening``; reopen those the
        node closes. With ``drip_delay`` the opening goes out one byte per delay."""
        sel = selectors.DefaultSelector()
        progress = {}
        rng = random.Random()

        def open_one():
            try:
                s = self.sock()
            except OSError:
                self.count("errors")
                return
            data = rng.choice(opening)
            s.setblocking(False)
            if drip_delay is None:
                try:
                    s.send(data)
                except OSError:
                    pass
            progress[s] = (data, 0 if drip_delay is not None else len(data))
            sel.register(s, selectors.EVENT_READ)
            self.count("connections")

        for _ in range(n):
            open_one()
        next_drip = time.monotonic()
        while not self.stop.is_set():
            for key, _ in sel.select(0.05):
                s = key.fileobj
                try:
                    data = s.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:           # closed by the node: reopen
                    sel.unregister(s)
                    progress.pop(s, None)
                    s.close()
                    self.count("closed_by_node")
                    open_one()
            if drip_delay is not None and time.monotonic() >= next_drip:
                next_drip += drip_delay
                for s, (data, sent) in list(progress.items()):
                    if sent < len(data):
                        try:
                            s.send(data[sent:sent + 1])
                            progress[s] = (data, sent + 1)
                        except OSError:
                            pass
        for s in list(progress):
            s.close()

    def halfopen(self) -> None:
        openings = [HELLO_HA[:k] for k in range(1, 9)] + [
            HELLO_HA, HELLO_HA + b"\x00\x00", HELLO_HA + struct.pack(">I", 1000) + b"x" * 10,
            HELLO_EV, HELLO_EV + b"\x00\x00\x00"]
        self._hold(200, openings)

    def idle(self) -> None:
        self._hold(1000, [b""])

    def slowloris(self) -> None:
        self._hold(200, [HELLO_HA + struct.pack(">I", 1 << 24)], drip_delay=0.4)

    def oversize(self) -> None:
        sub = bytes.fromhex("00 00 00 17 83 68 05 61 40 61 00 61 00 64 00 09 75 6E 64 65 66"
                            "69 6E 65 64 61 00")
        variants = [HELLO_HA + HUGE, HELLO_EV + HUGE, HELLO_EV + sub + HUGE]
        i = 0
        while not self.stop.is_set():
            try:
                with self.sock() as s:
                    s.sendall(variants[i % len(variants)])
                    i += 1
                    while s.recv(65536):
                        pass
                self.count("closed_by_node")
            except OSError:
                self.count("closed_by_node")

    def deaf(self) -> None:
        from confd_ha import events

        socks = []
        for _ in range(50):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
            s.settimeout(5)
            events.notifications_connect(s, events.NOTIF_HA_INFO, self.addr, self.port)
            socks.append(s)
            self.count("subscribers")
        self.stop.wait()
        for s in socks:
            s.close()

    def flood(self) -> None:
        import confd_ha

        s = socket.socket()
        s.settimeout(10)
        # The node has one HA control socket (B-02): the greedy client takes it, so in this
        # phase the measuring side only times new event connections.
        confd_ha.connect(s, "flood", self.addr, self.port)
        order = confd_ha._protocol.GETSTATUS_FRAME * 1000
        reply_len = 10

        def reader():
            while not self.stop.is_set():
                try:
                    data = s.recv(1 << 20)
                except OSError:
                    return
                if not data:
                    return
                self.count("replies", len(data) // reply_len)

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        while not self.stop.is_set():
            try:
                s.sendall(order)
            except OSError:
                break
        s.close()

    THREADS = {"random": 4, "oversize": 2}


def run_abuser(kinds: list, addr: str, port: int) -> None:
    """Run the abusers until stdin closes; then print their counters as JSON."""
    ab = Abuser(addr, port)
    threads = []
    for kind in kinds:
        for _ in range(Abuser.THREADS.get(kind, 1)):
            t = threading.Thread(target=getattr(ab, kind), daemon=True)
            t.start()
            threads.append(t)
    print("started", flush=True)
    sys.stdin.read()
    ab.stop.set()
    for t in threads:
        t.join(10)
    print(json.dumps(ab.counts), flush=True)


# ================================================================ the measuring side


def rss_kib(pid: int) -> int:
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def _control_socket(node, tries: int = 100):
    """A control socket to the node; a connection the node refuses (its connection cap, or
    a reset) is retried every 50 ms. Returns (socket or None, refusals)."""
    import confd_ha as ha

    refused = 0
    for _ in range(tries):
        s = socket.socket()
        s.settimeout(30)
        try:
            ha.connect(s, "bench", node.ipc_address, node.ipc_port)
            return s, refused
        except (ha.error.Error, ha.error.EOF):
            s.close()
            refused += 1
            time.sleep(0.05)
    return None, refused


def measure_status(node, seconds: float):
    """status() latencies (µs) on a control socket for ``seconds``; a beprimary/benone pair
    every 500 calls (events for the subscribers). Returns (latencies, errors, refusals)."""
    import confd_ha as ha

    s, refused = _control_socket(node)
    lat = []
    errors = 0
    perf = time.perf_counter
    end = time.monotonic() + seconds
    try:
        while s is not None and time.monotonic() < end:
            try:
                for _ in range(500):
                    t0 = perf()
                    try:
                        ha.status(s)
                    except ha.error.Error:
                        errors += 1
                    lat.append((perf() - t0) * 1e6)
                ha.beprimary(s, "n1")
                ha.benone(s)
            except ha.error.EOF:
                errors += 1
                s.close()
                s, more = _control_socket(node)
                refused += more
    finally:
        if s is not None:
            s.close()
    return lat, errors, refused


def measure_connects(node, n: int):
    """Latencies (µs) of ``n`` new event connections: connect, hello, subscription, close."""
    from confd_ha import error, events

    lat = []
    errors = 0
    perf = time.perf_counter
    for _ in range(n):
        s = socket.socket()
        s.settimeout(30)
        t0 = perf()
        try:
            events.notifications_connect(s, events.NOTIF_HA_INFO, node.ipc_address,
                                         node.ipc_port)
        except (error.Error, error.EOF):
            errors += 1
        lat.append((perf() - t0) * 1e6)
        s.close()
    return lat, errors


def summary(lat: list) -> dict:
    lat = sorted(lat)
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]  # noqa: E731
    return {"calls": len(lat), "median_us": round(statistics.median(lat), 1),
            "p90_us": round(q(0.90), 1), "p99_us": round(q(0.99), 1),
            "max_us": round(lat[-1], 1)}


def phase(node, kinds: list, seconds: float, warmup: float, connects: int) -> dict:
    child = None
    if kinds:
        child = subprocess.Popen(
            [sys.executable, __file__, "--abuser", ",".join(kinds), "--addr", node.ipc_address,
             "--port", str(node.ipc_port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True)
        line = child.stdout.readline()
        if line.strip() != "started":
            raise RuntimeError("abuser did not start: %r" % line)
        time.sleep(warmup)
    result = {}
    try:
        if "flood" not in kinds:      # the flood holds the one control socket (B-02)
            lat, errors, refused = measure_status(node, seconds)
            result["status"] = dict(summary(lat) if lat else {"calls": 0}, errors=errors,
                                    refused=refused)
        # Under the flood a connection can take seconds: fewer of them.
        lat, errors = measure_connects(node, min(connects, 20) if "flood" in kinds else connects)
        result["connect"] = dict(summary(lat), errors=errors)
        result["node_rss_kib"] = rss_kib(node.pid)
    finally:
        counts = {}
        if child is not None:
            out, _ = child.communicate("", timeout=30)
            try:
                counts = json.loads(out.strip().splitlines()[-1])
            except (ValueError, IndexError):
                counts = {"output": out[-200:]}
    result["abusers"] = counts
    return result


def _row(r) -> str:
    if r is None or not r.get("calls"):
        return "%7s %8s %8s %8s %9s %4s" % ("-", "-", "-", "-", "-", "-")
    return "%7d %6.0fµs %6.0fµs %6.0fµs %7.0fµs %4d" % (
        r["calls"], r["median_us"], r["p90_us"], r["p99_us"], r["max_us"], r["errors"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=4.0, help="measuring time per phase")
    ap.add_argument("--warmup", type=float, default=1.5, help="abuse before measuring")
    ap.add_argument("--connects", type=int, default=200,
                    help="new event connections timed per phase")
    ap.add_argument("--only", default=None,
                    help="comma-separated phases (baseline, %s, all)" % ", ".join(KINDS))
    ap.add_argument("--json", default=None, help="write the results to this file")
    ap.add_argument("--abuser", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--addr", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.abuser:
        run_abuser(args.abuser.split(","), args.addr, args.port)
        return 0

    import confd_ha
    from confd_ha.testing.process import EmulatorProcess
    from confd_ha.testing.ports import PortReservation

    phases = [("baseline", [])] + [(k, [k]) for k in KINDS] + \
        [("all", [k for k in KINDS if k != "flood"])]
    if args.only:
        wanted = args.only.split(",")
        phases = [p for p in phases if p[0] in wanted]
    print("confd_ha %s from %s; Python %s; %d CPUs; load %s" % (
        confd_ha.__version__, os.path.dirname(confd_ha.__file__), platform.python_version(),
        os.cpu_count(), " ".join("%.2f" % x for x in os.getloadavg())))
    results = {}
    with PortReservation(["127.0.0.1"]) as res:
        node = EmulatorProcess("--ipc-address", "127.0.0.1", "--ipc-port", "0", "--ha-port",
                               str(res.port), "--tick-timeout", "2").start()
        try:
            results["node_rss_kib_start"] = rss_kib(node.pid)
            head = "%7s %8s %8s %8s %9s %4s" % ("calls", "median", "p90", "p99", "max", "err")
            print("%-10s | status(): %s | new event connection: %s | %9s  %s" % (
                "phase", head, head, "node RSS", "abusers"))
            for name, kinds in phases:
                r = phase(node, kinds, args.seconds, args.warmup, args.connects)
                results[name] = r
                refused = (r.get("status") or {}).get("refused")
                print("%-10s | %s%s | %s%s | %5.1f MiB  %s%s" % (
                    name, " " * 11, _row(r.get("status")), " " * 22, _row(r["connect"]),
                    r["node_rss_kib"] / 1024, r["abusers"],
                    "  (control socket refused %d times first)" % refused if refused else ""),
                    flush=True)
            results["node_rss_kib_end"] = rss_kib(node.pid)
            print("node RSS: %.1f MiB at start, %.1f MiB at the end" % (
                results["node_rss_kib_start"] / 1024, results["node_rss_kib_end"] / 1024))
        finally:
            node.terminate()
    finish(results, None, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
