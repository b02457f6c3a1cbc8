#!/usr/bin/env python3
"""Failover of ``confd-ha agent``: how long a three-node cluster is without a primary after a
failure, and whether two nodes were ever primary at once.

Run ``python benchmarks/bench_agent.py`` (``--quick`` for 3 trials instead of 20, ``--json
FILE`` for machine-readable results). Needs etcd (Debian ``etcd-server``) and the agent's extra
(``pip install '.[agent]'``). See README.md in this folder, section "Agent", for the method.

Each world is the test suite's (``confd_ha.testing.agent_world``): three emulated nodes, three
agents, a three-member etcd on loopback, a proxy per (agent, etcd member), and a checker that
reads every node's HA state through its control endpoint (never an HA socket) every 50 ms.
Three failures, ``--trials`` times each, at every ``--ttls``:

* ``kill``: kill -9 of the primary node, its agent alive;
* ``crash``: the primary node and its agent killed together;
* ``cutoff``: the primary's agent cut off from etcd (its proxies close every connection and
  refuse new ones).

The failover time runs from just before the failure to the end of the first sample that shows
one primary other than the old one.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import time
from typing import Any, Callable, Dict, List, Optional

from _output import finish, loadavg, log, watchdog  # noqa: E402
from _package import import_confd_ha  # noqa: E402

FAILURES = {
    "kill": "primary node kill -9, its agent alive",
    "crash": "primary node and its agent killed together",
    "cutoff": "primary's agent cut off from etcd",
}
STEADY = 0.5        # seconds a formed cluster runs before the failure (plus a random phase)


def p99(values: List[float]) -> float:
    """The 99th percentile, nearest rank (with fewer than 100 values: the maximum)."""
    ordered = sorted(values)
    return ordered[max(0, -(-99 * len(ordered) // 100) - 1)]


class Bench:
    """The trials of one failure at one TTL, on one world (rebuilt after a failed trial)."""

    def __init__(self, mods: Any, etcd: Any, k: int, ttl: int, args: argparse.Namespace,
                 log: Callable[[str], None]) -> None:
        self.m, self.etcd, self.k, self.ttl, self.args, self.log = mods, etcd, k, ttl, args, log
        self.world: Any = None
        self.rng = random.Random(args.seed * 1000 + ttl)
        self.samples = 0
        self.doubles: List[Any] = []
        self.periods: List[Dict[str, float]] = []

    def settings(self) -> Dict[str, Any]:
        """The agents' timings: loop_wait their default (ttl / 5) unless given; order_timeout
        their default (1 s) capped at ttl / 4, as ttl 2 refuses 1 s (ttl must exceed
        2 * (loop_wait + order_timeout))."""
        order = self.args.order_timeout
        return {"ttl": self.ttl, "loop_wait": self.args.loop_wait or self.ttl / 5,
                "order_timeout": order if order is not None else min(1.0, self.ttl / 4),
                "tick_timeout": self.args.tick}

    def open(self) -> None:
        self.close()
        for i in range(3):   # a failed trial may have left a member stopped or frozen
            if not self.etcd.running(i):
                self.etcd.start(i)
            self.etcd.thaw(i)
        self.world = self.m.World(self.k, self.etcd, **self.settings())
        self.k += 1
        self.world.start_all()
        self.world.wait_formed(timeout=30)

    def close(self) -> None:
        w, self.world = self.world, None
        if w is None:
            return
        try:
            self.samples += len(w.checker.samples)
            self.doubles += w.doubles()
            self.periods.append(w.checker.period())
        finally:
            w.close()

    def trial(self, failure: str) -> Dict[str, Any]:
        w = self.world
        p = w.wait_formed(timeout=30)
        time.sleep(STEADY + self.rng.uniform(0, w.config(p).wait))
        out: Dict[str, Any] = {"old": p}
        t0 = time.monotonic()
        if failure == "kill":
            w.nodes.kill(p)
        elif failure == "crash":
            w.crash_agent(p)
            w.nodes.kill(p)
        else:
            w.cut(p)
        out["failover"] = w.failover_time(t0, p, self.ttl + 10)
        if failure == "cutoff":
            out["demoted"] = w.checker.first(t0, lambda st: st[p] != self.m.STATE_PRIMARY)
        # recovery: the old member back, all three formed again
        if failure == "cutoff":
            w.restore(p)
        else:
            w.nodes.start(p)
            if failure == "crash":
                w.start_agent(p)
        w.wait_formed(timeout=30 + self.ttl)
        return out

    def run(self, failure: str) -> Dict[str, Any]:
        trials: List[Dict[str, Any]] = []
        errors: List[str] = []
        self.open()
        try:
            for n in range(self.args.trials):
                try:
                    trials.append(self.trial(failure))
                except Exception as exc:   # counted and reported; a fresh world goes on
                    errors.append("trial %d: %s" % (n + 1, str(exc).splitlines()[0]))
                    self.log("    trial %d failed: %s" % (n + 1, errors[-1]))
                    self.open()
                    continue
                t = trials[-1]
                self.log("    trial %2d: failover %.3f s%s" % (
                    n + 1, t["failover"], "" if "demoted" not in t else
                    ", demoted after %.3f s" % t["demoted"]))
        finally:
            self.close()
        result: Dict[str, Any] = {
            "failure": failure, "ttl": self.ttl, "settings": self.settings(),
            "trials": trials, "errors": errors, "samples": self.samples,
            "two_primary_samples": len(self.doubles),
            "two_primary_examples": [list(s) for s in self.doubles[:5]],
            "sampling": self.periods}
        for key in ("failover", "demoted"):
            values = [t[key] for t in trials if t.get(key) is not None]
            if values:
                result[key] = {"median": statistics.median(values), "p99": p99(values),
                               "max": max(values), "min": min(values), "n": len(values)}
        if failure == "cutoff":
            result["demoted_at_or_after_ttl"] = sum(
                1 for t in trials if t.get("demoted") is None or t["demoted"] >= self.ttl)
        return result


def report(results: Dict[str, Any]) -> str:
    env = results["environment"]
    lines = ["confd-ha agent failover (%s, Python %s, %d CPUs, load %s -> %s)" % (
        env["confd_ha_version"], env["python"], env["cpus"], env["loadavg_start"],
        env["loadavg_end"]), ""]
    lines.append("| failure | TTL | trials | failover median | p99 | max | two-primary samples "
                 "| note |")
    lines.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for r in results["runs"]:
        f = r.get("failover")
        note = []
        if "demoted" in r:
            d = r["demoted"]
            note.append("demoted after %.2f / %.2f / %.2f s (median / p99 / max), %d at or "
                        "after the TTL" % (d["median"], d["p99"], d["max"],
                                           r["demoted_at_or_after_ttl"]))
        if r["errors"]:
            note.append("%d trials failed: %s" % (len(r["errors"]), "; ".join(r["errors"][:2])))
        cells = ("%.3f s" % f["median"], "%.3f s" % f["p99"], "%.3f s" % f["max"]) if f else (
            "-", "-", "-")
        lines.append("| %s | %d s | %d | %s | %s | %s | %d of %d | %s |" % (
            FAILURES[r["failure"]], r["ttl"], len(r["trials"]), cells[0], cells[1], cells[2],
            r["two_primary_samples"], r["samples"], "; ".join(note)))
    periods = [p for r in results["runs"] for p in r["sampling"]]
    if periods:
        lines += ["", "checker: period median %.3f s, p99 %.3f s, max %.3f s over %d worlds" % (
            statistics.median(p["period_median"] for p in periods),
            max(p["period_p99"] for p in periods), max(p["period_max"] for p in periods),
            len(periods))]
    seen = {r["ttl"]: r["settings"] for r in results["runs"]}
    lines.append("agent settings: %s; node tick timeout %s s" % ("; ".join(
        "ttl %d s: loop_wait %.3g s, order_timeout %.3g s" % (
            ttl, s["loop_wait"], s["order_timeout"]) for ttl, s in seen.items()),
        results["runs"][0]["settings"]["tick_timeout"] if results["runs"] else "?"))
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 trials of each failure, not 20")
    ap.add_argument("--trials", type=int, help="trials of each failure at each TTL (default 20)")
    ap.add_argument("--ttls", type=int, nargs="+", default=[2, 10],
                    help="lease TTLs in seconds (default 2 10)")
    ap.add_argument("--only", choices=sorted(FAILURES), action="append",
                    help="run only these failures (repeatable)")
    ap.add_argument("--loop-wait", type=float, default=None,
                    help="the agents' loop_wait (default: theirs, ttl / 5)")
    ap.add_argument("--order-timeout", type=float, default=None,
                    help="the agents' order_timeout (default: theirs, 1 s, at most ttl / 4)")
    ap.add_argument("--tick", type=float, default=0.5, help="the nodes' tick timeout (0.5 s)")
    ap.add_argument("--seed", type=int, default=1, help="seed of the random phase (1)")
    ap.add_argument("--block", type=int, default=200,
                    help="first loopback block: etcd on 127.82.(BLOCK-1).1-3, worlds on "
                         "127.81.k / 127.82.k from k = BLOCK (default 200)")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    ap.add_argument("--installed", action="store_true",
                    help="use the installed confd_ha even inside a source tree")
    args = ap.parse_args(argv)
    args.trials = args.trials or (3 if args.quick else 20)
    failures = [f for f in FAILURES if not args.only or f in args.only]

    watchdog(4 * 3600)

    confd_ha = import_confd_ha(args.installed)
    try:
        from confd_ha.testing import agent_world
        from confd_ha.testing.etcd import EtcdCluster, EtcdNotFound, find_etcd
    except ImportError as exc:
        raise SystemExit("the agent's dependencies are missing (%s): pip install "
                         "'confd-ha[agent]'" % exc)
    try:
        find_etcd()
    except EtcdNotFound as exc:
        raise SystemExit(str(exc))

    class Mods:
        World = agent_world.World
        STATE_PRIMARY = confd_ha.STATE_PRIMARY

    results: Dict[str, Any] = {"environment": {
        "confd_ha_version": confd_ha.__version__, "python": platform.python_version(),
        "platform": platform.platform(terse=True), "cpus": os.cpu_count() or 0,
        "loadavg_start": loadavg(), "trials": args.trials,
        "argv": sys.argv[1:] if argv is None else list(argv)}, "runs": []}
    k = args.block
    with EtcdCluster(3, prefix="127.82.%d." % (args.block - 1)) as etcd:
        for ttl in args.ttls:
            for failure in failures:
                log("%s, ttl %d s: %d trials ..." % (FAILURES[failure], ttl, args.trials))
                bench = Bench(Mods, etcd, k, ttl, args, log)
                results["runs"].append(bench.run(failure))
                k = bench.k
    results["environment"]["loadavg_end"] = loadavg()
    finish(results, report(results), args.json)
    bad = sum(r["two_primary_samples"] + len(r["errors"]) + r.get("demoted_at_or_after_ttl", 0)
              for r in results["runs"])
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
