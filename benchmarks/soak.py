#!/usr/bin/env python3
"""Soak: long runs against emulated nodes, watching for anything that grows.

1. ``status`` -- one million ``confd_ha.status()`` calls on ONE socket against an emulated node
   running as its own process (``confd-ha emulate``). Every 10 000 calls the node is toggled
   between NONE and PRIMARY (``beprimary``/``benone`` on the same socket), so the client
   decodes changing replies as well as repeated ones. At every checkpoint (each 100 000
   calls): the RSS of this process (the client) and of the node process, and this process's
   open descriptors. Then a second, shorter pass under ``tracemalloc`` (client side) compares
   the traced memory at its first and last checkpoint and prints the biggest differences.
   Pass: RSS growth < 1 MiB between call 100 000 and the last call, for the client and the
   node; traced growth < 64 KiB; descriptors constant.

2. ``cycles`` -- 1000 join/leave cycles on an in-process 3-node cluster
   (``confd_ha.testing.cluster.Cluster``): per cycle the primary commits one value, both
   secondaries ``besecondary`` (waitreply=1) through their kept control sockets, the primary
   lists them, both ``benone``, the primary lists nobody; an event subscriber on the primary
   reads every SECONDARY_ARRIVED / SECONDARY_DIED. At every checkpoint (each 100 cycles): open
   descriptors of the process (``/proc/self/fd``), tasks on the emulator loop
   (``len(asyncio.all_tasks())``), traced memory (``tracemalloc``, whole process: client and
   emulator) and RSS. Pass: descriptors and tasks equal at cycle 100 and 1000, traced growth
   < 1 MiB.

Usage::

    python benchmarks/soak.py                        # both parts, full size (several minutes)
    python benchmarks/soak.py --calls 200000 --cycles 200   # shorter
    python benchmarks/soak.py --only cycles --json soak.json

Exit status 0 when every check passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import platform
import socket
import sys
import time
import tracemalloc
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if (ROOT / "confd_ha" / "__init__.py").is_file() and str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import confd_ha as ha  # noqa: E402
from confd_ha import events  # noqa: E402
from _output import finish  # noqa: E402

MIB = 1 << 20


def rss_kib(pid="self") -> int:
    with open("/proc/%s/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


# ================================================================ 1. status


def status_calls(s, n: int, toggle_every: int, start: int, expected: dict) -> int:
    """``n`` status() calls from call number ``start``; toggles the role every
    ``toggle_every`` calls; checks every reply. Returns the next call number."""
    state = expected["state"]
    for i in range(start, start + n):
        if i % toggle_every == 0 and i:
            if state == ha.STATE_NONE:
                ha.beprimary(s, "soak")
                state = ha.STATE_PRIMARY
            else:
                ha.benone(s)
                state = ha.STATE_NONE
        st, nodes = ha.status(s)
        if st != state or nodes:
            raise AssertionError("call %d: status %r, expected state %d" % (i, (st, nodes), state))
    expected["state"] = state
    return start + n


def soak_status(calls: int, checkpoint: int, traced_calls: int, report) -> dict:
    from confd_ha.testing.process import EmulatorProcess
    from confd_ha.testing.ports import PortReservation

    out = {"calls": calls, "checkpoints": []}
    with PortReservation(["127.0.0.1"]) as res:
        node = EmulatorProcess("--ipc-address", "127.0.0.1", "--ipc-port", "0",
                               "--ha-port", str(res.port), "--tick-timeout", "5").start()
        try:
            s = socket.socket()
            s.settimeout(30)
            ha.connect(s, "soak", node.ipc_address, node.ipc_port)
            expected = {"state": ha.STATE_NONE}
            done = 0
            t0 = time.monotonic()
            while done < calls:
                done = status_calls(s, checkpoint, 10_000, done, expected)
                gc.collect()
                cp = {"call": done, "client_rss_kib": rss_kib(), "node_rss_kib": rss_kib(node.pid),
                      "fds": fd_count(), "seconds": round(time.monotonic() - t0, 1)}
                out["checkpoints"].append(cp)
                report("  status call %8d: client RSS %7.2f MiB, node RSS %7.2f MiB, %d fds, "
                       "%.0f s" % (done, cp["client_rss_kib"] / 1024, cp["node_rss_kib"] / 1024,
                                   cp["fds"], cp["seconds"]))
            elapsed = time.monotonic() - t0
            out["us_per_call"] = round(elapsed / calls * 1e6, 1)
            first, last = out["checkpoints"][0], out["checkpoints"][-1]
            out["client_rss_growth_kib"] = last["client_rss_kib"] - first["client_rss_kib"]
            out["node_rss_growth_kib"] = last["node_rss_kib"] - first["node_rss_kib"]
            out["fds_constant"] = len({c["fds"] for c in out["checkpoints"]}) == 1

            # The traced pass: same socket, same node.
            tracemalloc.start(10)
            step = max(1, traced_calls // 10)
            done = status_calls(s, step, 10_000, done, expected)
            gc.collect()
            snap1 = tracemalloc.take_snapshot()
            size1 = tracemalloc.get_traced_memory()[0]
            done = status_calls(s, traced_calls - step, 10_000, done, expected)
            gc.collect()
            snap2 = tracemalloc.take_snapshot()
            size2 = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
            out["traced_calls"] = traced_calls
            out["traced_growth_bytes"] = size2 - size1
            top = snap2.compare_to(snap1, "lineno")[:5]
            out["traced_top"] = [str(t) for t in top]
            report("  traced pass (%d calls after %d): %+d bytes; biggest differences:"
                   % (traced_calls - step, step, size2 - size1))
            for line in out["traced_top"]:
                report("    " + line)
            s.close()
        finally:
            node.terminate()
    out["pass"] = (out["client_rss_growth_kib"] < 1024 and out["node_rss_growth_kib"] < 1024
                   and out["traced_growth_bytes"] < 64 * 1024 and out["fds_constant"])
    return out


# ================================================================ 2. join/leave cycles


def wait_until(pred, timeout=10.0, what="condition"):
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise TimeoutError("timed out waiting for %s" % what)
        time.sleep(0.002)


def soak_cycles(cycles: int, checkpoint: int, report) -> dict:
    from confd_ha.testing.cluster import Cluster

    out = {"cycles": cycles, "checkpoints": []}
    with Cluster(3, tick_timeout=1.0) as c:
        emu = c.emulator
        p, secs = c[0], [c[1], c[2]]
        ctl_p = p.connect_ha("soak", timeout=10)
        ha.beprimary(ctl_p, "n1")
        ctls = [n.connect_ha("soak", timeout=10) for n in secs]
        ev = p.subscribe(timeout=10)
        tracemalloc.start(10)
        snap_first = None
        t0 = time.monotonic()
        seen = {events.HA_INFO_SECONDARY_ARRIVED: 0, events.HA_INFO_SECONDARY_DIED: 0}
        for i in range(1, cycles + 1):
            p.set("/soak/value", str(i))
            for j, s in enumerate(ctls):
                ha.besecondary(s, "n%d" % (j + 2), "n1", p.ha_address, 1)
            wait_until(lambda: len(p.status()[1]) == 2, what="arrivals")
            for n in secs:
                if n.get("/soak/value") != str(i):
                    raise AssertionError("cycle %d: %s did not get the value" % (i, n.name))
            for s in ctls:
                ha.benone(s)
            wait_until(lambda: not p.status()[1], what="departures")
            for _ in range(4):
                n = events.read_notification(ev)
                seen[n["hnot"]["type"]] += 1
            if i % checkpoint == 0:
                gc.collect()
                cp = {"cycle": i, "fds": fd_count(),
                      "tasks": emu.call(lambda: len(asyncio.all_tasks())),
                      "traced_bytes": tracemalloc.get_traced_memory()[0],
                      "rss_kib": rss_kib(), "seconds": round(time.monotonic() - t0, 1)}
                if snap_first is None:
                    snap_first = tracemalloc.take_snapshot()
                out["checkpoints"].append(cp)
                report("  cycle %5d: %d fds, %d loop tasks, traced %8.1f KiB, RSS %7.2f MiB, "
                       "%.0f s" % (i, cp["fds"], cp["tasks"], cp["traced_bytes"] / 1024,
                                   cp["rss_kib"] / 1024, cp["seconds"]))
        snap_last = tracemalloc.take_snapshot()
        tracemalloc.stop()
        out["events"] = {"arrived": seen[events.HA_INFO_SECONDARY_ARRIVED],
                         "died": seen[events.HA_INFO_SECONDARY_DIED]}
        out["traced_top"] = [str(t) for t in snap_last.compare_to(snap_first, "lineno")[:5]]
        for s in ctls + [ctl_p, ev]:
            s.close()
    first, last = out["checkpoints"][0], out["checkpoints"][-1]
    out["fd_growth"] = last["fds"] - first["fds"]
    out["task_growth"] = last["tasks"] - first["tasks"]
    out["traced_growth_bytes"] = last["traced_bytes"] - first["traced_bytes"]
    out["rss_growth_kib"] = last["rss_kib"] - first["rss_kib"]
    out["ms_per_cycle"] = round(last["seconds"] / cycles * 1000, 1)
    report("  biggest traced differences, cycle %d -> %d:" % (first["cycle"], last["cycle"]))
    for line in out["traced_top"]:
        report("    " + line)
    out["pass"] = (out["fd_growth"] == 0 and out["task_growth"] == 0
                   and out["traced_growth_bytes"] < MIB
                   and out["events"] == {"arrived": 2 * cycles, "died": 2 * cycles})
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=1_000_000)
    ap.add_argument("--traced-calls", type=int, default=200_000,
                    help="status calls of the tracemalloc pass")
    ap.add_argument("--cycles", type=int, default=1000)
    ap.add_argument("--only", choices=("status", "cycles"), default=None)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    def report(line):
        print(line, flush=True)

    report("confd_ha %s from %s; Python %s; %d CPUs; load %s" % (
        ha.__version__, os.path.dirname(ha.__file__), platform.python_version(),
        os.cpu_count(), " ".join("%.2f" % x for x in os.getloadavg())))
    results = {}
    if args.only in (None, "status"):
        report("status(): %d calls on one socket" % args.calls)
        r = soak_status(args.calls, max(1, args.calls // 10), args.traced_calls, report)
        results["status"] = r
        report("status: %.1f µs/call; RSS growth call %d -> %d: client %+d KiB, node %+d KiB; "
               "traced %+d bytes over %d calls; fds constant: %s -> %s" % (
                   r["us_per_call"], r["checkpoints"][0]["call"], r["checkpoints"][-1]["call"],
                   r["client_rss_growth_kib"], r["node_rss_growth_kib"],
                   r["traced_growth_bytes"], r["traced_calls"], r["fds_constant"],
                   "PASS" if r["pass"] else "FAIL"))
    if args.only in (None, "cycles"):
        report("join/leave: %d cycles, 3 nodes" % args.cycles)
        r = soak_cycles(args.cycles, max(1, args.cycles // 10), report)
        results["cycles"] = r
        report("cycles: %.1f ms/cycle; cycle %d -> %d: fds %+d, loop tasks %+d, traced %+d "
               "bytes, RSS %+d KiB; events %s -> %s" % (
                   r["ms_per_cycle"], r["checkpoints"][0]["cycle"], r["checkpoints"][-1]["cycle"],
                   r["fd_growth"], r["task_growth"], r["traced_growth_bytes"],
                   r["rss_growth_kib"], r["events"], "PASS" if r["pass"] else "FAIL"))
    finish(results, None, args.json)
    return 0 if all(r["pass"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
