#!/usr/bin/env python3
"""Speed of the emulated ConfD HA cluster: mass joins, and failure detection after a kill or
a freeze of the primary.

Run ``python benchmarks/bench_emulator.py`` (``--quick`` for a short run with fewer nodes,
``--json FILE`` for machine-readable results, ``--profile`` for cProfile output of the
emulator thread during the mass join). Works from a source tree with the C core built in place
and from an installed package; see README.md in this folder, section "Emulator", for the
method and for how to read the figures.

Every HA order goes through the real client (``confd_ha.connect``, ``confd_ha.besecondary``,
``confd_ha.status``) and every event is read from a real ``confd_ha.events`` socket, timestamped
in this process when it arrives: what is measured is what an HA framework driving the nodes
would see.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import cProfile
import io
import ipaddress
import os
import platform
import pstats
import random
import selectors
import signal
import socket
import statistics
import sys
import threading
import time
from pathlib import Path

from _output import finish, loadavg, log, watchdog  # noqa: E402
from _package import import_confd_ha  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

TOKEN = "bench-token"
PRIMARY_ID = "p"
JOIN_TARGET_S = 5.0          # the target for 255 joins
CLOCK = time.perf_counter




# Filled in by main() once the package is imported.
ha = events = ports = loop = process = None


# ---------------------------------------------------------------- addresses and nodes


def addresses(n: int, first: str, offset: int = 0) -> list:
    """``n`` loopback addresses counting up from ``first`` (+ ``offset``), skipping those
    ending in .0 and .255; on Linux all of 127.0.0.0/8 answers without configuration."""
    out, ip = [], ipaddress.IPv4Address(first) + offset
    while len(out) < n:
        if int(ip) & 0xFF not in (0, 255):
            if not ip.is_loopback:
                raise SystemExit("address %s is outside 127.0.0.0/8" % ip)
            out.append(str(ip))
        ip += 1
    return out


def seed_changes(keys: int) -> list:
    """``keys`` set operations: the primary's data, so that every join needs a full copy."""
    return [("set", "/bench/item%04d/value" % i, "value-%04d-%s" % (i, "x" * 24))
            for i in range(keys)]


class InProcess:
    """Nodes on one EmulatorThread, one per address, one HA port reserved on all of them."""

    def __init__(self, addrs, tick: float, names=None):
        self.reservation = ports.PortReservation(addrs)
        self.emu = loop.EmulatorThread(timeout=120)
        try:
            self.emu.start()
            self.nodes = [self.emu.add_node(
                name=names[i] if names else "n%d" % i, ipc_address=a, ipc_port=0,
                ha_port=self.reservation.port, tick_timeout=tick) for i, a in enumerate(addrs)]
        except BaseException:
            self.close()
            raise

    def endpoints(self) -> list:
        return [(n.ipc_address, n.ipc_port) for n in self.nodes]

    def loop_cpu(self) -> float:
        """CPU seconds the loop thread has used so far."""
        return self.emu.call(time.thread_time)

    def close(self) -> float:
        """Stop everything; returns the seconds the stop took."""
        t0 = CLOCK()
        try:
            self.emu.stop()
        finally:
            self.reservation.close()
        return CLOCK() - t0


def start_processes(addrs, ha_port: int, tick: float, workers: int = 8) -> list:
    """``confd-ha emulate`` on each address (started in parallel, each waited for ready)."""
    def one(a):
        return process.EmulatorProcess(
            "--ipc-address", a, "--ipc-port", "0", "--ha-port", str(ha_port),
            "--tick-timeout", repr(float(tick)), "--name", "bench@" + a,
            ready_timeout=60.0).start()

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(one, a) for a in addrs]
        procs, failure = [], None
        for f in futures:
            try:
                procs.append(f.result())
            except Exception as exc:  # keep going so that every started child is closed
                failure = failure or exc
    if failure is not None:
        close_processes(procs)
        raise failure
    return procs


def close_processes(procs) -> None:
    for p in procs:
        try:
            p.close()
        except Exception:  # a benchmark's cleanup must reach every child
            pass


def process_cpu(pids) -> float:
    """User + system CPU seconds of the processes ``pids`` so far (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            return float("nan")
    return total / tick


def process_rss(pids) -> float:
    """Mean resident set size of the processes ``pids`` in MiB (Linux /proc)."""
    sizes = []
    for pid in pids:
        try:
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        sizes.append(int(line.split()[1]) / 1024)
        except (OSError, ValueError):
            pass
    return statistics.mean(sizes) if sizes else float("nan")


# ---------------------------------------------------------------- client sockets and events


class Clients:
    """An HA control socket (``confd_ha.connect``) and an HA_INFO event socket
    (``confd_ha.events``) to each of ``endpoints`` ((ipc address, ipc port) pairs)."""

    def __init__(self, endpoints, timeout: float = 60.0):
        self.ctl, self.ev = [], []
        try:
            for addr, port in endpoints:
                s = _sock(timeout)
                self.ctl.append(s)
                ha.connect(s, TOKEN, addr, port)
                e = _sock(timeout)
                self.ev.append(e)
                events.notifications_connect(e, events.NOTIF_HA_INFO, addr, port)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        for s in self.ctl + self.ev:
            s.close()
        self.ctl, self.ev = [], []


def _sock(timeout: float):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    return s


def read_until(sock, ha_type: int, timeout: float):
    """Read notifications from ``sock`` until one of ``ha_type``; returns (arrival time, hnot)."""
    end = CLOCK() + timeout
    while True:
        left = end - CLOCK()
        if left <= 0:
            raise TimeoutError("no HA event %d within %s s" % (ha_type, timeout))
        sock.settimeout(left)
        n = events.read_notification(sock)
        if n.get("type") == events.NOTIF_HA_INFO and n["hnot"]["type"] == ha_type:
            return CLOCK(), n["hnot"]


def read_each(sock, ha_types, timeout: float) -> dict:
    """Read notifications from ``sock`` until one of each of ``ha_types``, in any order;
    ``{ha_type: hnot}``."""
    end = CLOCK() + timeout
    got: dict = {}
    while len(got) < len(ha_types):
        left = end - CLOCK()
        if left <= 0:
            raise TimeoutError("no HA events %s within %s s" % (
                [t for t in ha_types if t not in got], timeout))
        sock.settimeout(left)
        n = events.read_notification(sock)
        if n.get("type") == events.NOTIF_HA_INFO and n["hnot"]["type"] in ha_types:
            got.setdefault(n["hnot"]["type"], n["hnot"])
    return got


def drain(socks, quiet: float = 0.05) -> None:
    """Read away every notification already sent on ``socks``."""
    with selectors.DefaultSelector() as sel:
        for i, s in enumerate(socks):
            sel.register(s, selectors.EVENT_READ, i)
        while True:
            ready = sel.select(quiet)
            if not ready:
                return
            for key, _ in ready:
                key.fileobj.settimeout(5)
                events.read_notification(key.fileobj)


def collect(socks, ha_type: int, timeout: float) -> dict:
    """Wait for one ``ha_type`` event on every socket; ``{index: (arrival time, hnot)}`` (the
    sockets that got none within ``timeout`` are missing)."""
    got = {}
    end = CLOCK() + timeout
    with selectors.DefaultSelector() as sel:
        for i, s in enumerate(socks):
            sel.register(s, selectors.EVENT_READ, i)
        while len(got) < len(socks):
            left = end - CLOCK()
            if left <= 0:
                break
            for key, _ in sel.select(left):
                now = CLOCK()
                key.fileobj.settimeout(5)
                n = events.read_notification(key.fileobj)
                if n.get("type") == events.NOTIF_HA_INFO and n["hnot"]["type"] == ha_type \
                        and key.data not in got:
                    got[key.data] = (now, n["hnot"])
    return got


class ArrivalWatch(threading.Thread):
    """Reads the primary's event socket in its own thread and timestamps every
    SECONDARY_ARRIVED (by node id) until ``expected`` have arrived."""

    def __init__(self, sock, expected: int, timeout: float):
        super().__init__(name="bench-arrivals", daemon=True)
        self.sock, self.expected, self.timeout = sock, expected, timeout
        self.arrivals = {}
        self.error = None

    def run(self) -> None:
        end = CLOCK() + self.timeout
        try:
            while len(self.arrivals) < self.expected:
                left = end - CLOCK()
                if left <= 0:
                    raise TimeoutError("%d of %d secondaries arrived within %s s" % (
                        len(self.arrivals), self.expected, self.timeout))
                self.sock.settimeout(left)
                n = events.read_notification(self.sock)
                now = CLOCK()
                hnot = n.get("hnot", {})
                if hnot.get("type") == events.HA_INFO_SECONDARY_ARRIVED:
                    self.arrivals[str(hnot["secondary_arrived"]["nodeid"])] = now
        except Exception as exc:  # reported by the caller
            self.error = exc


# ---------------------------------------------------------------- 1. mass join


def _ms(values) -> dict:
    values = sorted(values)
    if not values:
        return {"median_ms": None, "p90_ms": None, "max_ms": None}
    return {"median_ms": statistics.median(values) * 1e3,
            "p90_ms": values[min(len(values) - 1, int(0.9 * len(values)))] * 1e3,
            "max_ms": values[-1] * 1e3}


def run_joins(endpoints, primary_address: str, *, mode: str, pool: int, timeout: float,
              cpu=None, around=None) -> dict:
    """Node 0 becomes primary, every other node its secondary, through the real client.

    ``mode`` "async": ``besecondary(..., waitreply=0)`` on each control socket in turn, from
    this thread; "sync": ``besecondary(..., waitreply=1)`` from a pool of ``pool`` threads.
    Timed from the first besecondary to the last SECONDARY_ARRIVED event on the primary's
    event socket. ``cpu()`` gives the CPU seconds of the nodes so far; ``around`` is a pair of
    callables run right before the first besecondary and right after the last arrival.
    """
    n = len(endpoints) - 1
    ids = ["s%03d" % i for i in range(1, n + 1)]
    cl = Clients(endpoints, timeout)
    try:
        ha.beprimary(cl.ctl[0], PRIMARY_ID)
        read_until(cl.ev[0], events.HA_INFO_IS_PRIMARY, 10)
        watch = ArrivalWatch(cl.ev[0], n, timeout)
        watch.start()
        sent, done, errors = {}, {}, []
        cpu0 = cpu() if cpu else None
        if around:
            around[0]()
        if mode == "async":
            t_first = CLOCK()
            for i, nid in enumerate(ids, 1):
                sent[nid] = CLOCK()
                ha.besecondary(cl.ctl[i], nid, PRIMARY_ID, primary_address, 0)
            t_sent = CLOCK()
        else:
            def job(i, nid):
                t0 = CLOCK()
                try:
                    ha.besecondary(cl.ctl[i], nid, PRIMARY_ID, primary_address, 1)
                except Exception as exc:
                    errors.append("%s: %r" % (nid, exc))
                return nid, t0, CLOCK()

            with concurrent.futures.ThreadPoolExecutor(pool) as ex:
                futures = [ex.submit(job, i, nid) for i, nid in enumerate(ids, 1)]
                for f in futures:
                    nid, t0, t1 = f.result()
                    sent[nid], done[nid] = t0, t1
            t_first = min(sent.values())
            t_sent = max(sent.values())
        watch.join(timeout + 5)
        if around:
            around[1]()
        cpu1 = cpu() if cpu else None
        if watch.error is not None or len(watch.arrivals) < n:
            raise RuntimeError("join run failed: %s; errors: %s" % (watch.error, errors[:5]))
        t_last = max(watch.arrivals.values())
        state, listed = ha.status(cl.ctl[0])
        t_status = CLOCK()
        # Each secondary's own events: how it was initialised, and (async) the order's result.
        copies, results_ok = 0, 0
        wanted = [events.HA_INFO_SECONDARY_INITIALIZED]
        if mode == "async":  # ConfD sends the result first (docs/conformance.md)
            wanted.append(events.HA_INFO_BESECONDARY_RESULT)
        for i in range(1, n + 1):
            got = read_each(cl.ev[i], wanted, 10)
            copies += got[events.HA_INFO_SECONDARY_INITIALIZED]["cdb_initialized_by_copy"] == 1
            if mode == "async":
                results_ok += got[events.HA_INFO_BESECONDARY_RESULT]["besecondary_result"] == 0
            else:
                results_ok += 1
        results_ok -= len(errors)
        latencies = [watch.arrivals[nid] - sent[nid] for nid in ids]
        wall = t_last - t_first
        out = {
            "mode": mode, "secondaries": n, "pool": pool if mode == "sync" else None,
            "wall_s": wall, "per_join_ms": wall / n * 1e3,
            "issue_span_ms": (t_sent - t_first) * 1e3,
            "status_listed": len(listed), "status_state": state,
            "status_after_last_ms": (t_status - t_last) * 1e3,
            "copies": copies, "ok": results_ok,
            "latency": _ms(latencies),
            "call": _ms([done[nid] - sent[nid] for nid in ids]) if done else None,
            "node_cpu_s": None if cpu0 is None else cpu1 - cpu0,
        }
        if len(listed) != n or state != ha.STATE_PRIMARY:
            raise RuntimeError("the primary's status lists %d secondaries (state %d), not %d"
                               % (len(listed), state, n))
        if results_ok != n:
            raise RuntimeError("%d of %d joins reported success; errors: %s"
                               % (results_ok, n, errors[:5]))
        return out
    finally:
        cl.close()


def bench_join(args, log) -> dict:
    """Section 1: ``args.nodes`` in-process nodes; async and sync variants, repeated."""
    addrs = addresses(args.nodes, args.first_address)
    variants = [("async", args.seed_keys), ("sync", args.seed_keys)]
    out = {"nodes": args.nodes, "tick": args.join_tick, "seed_keys": args.seed_keys,
           "pool": args.pool, "runs": []}
    for rep in range(args.repeats):
        for mode, keys in variants + ([("async", 0)] if rep == 0 else []):
            t0 = CLOCK()
            fleet = InProcess(addrs, args.join_tick)
            try:
                setup = CLOCK() - t0
                if keys:
                    fleet.nodes[0].commit(seed_changes(keys))
                r = run_joins(fleet.endpoints(), addrs[0], mode=mode, pool=args.pool,
                              timeout=args.join_timeout, cpu=fleet.loop_cpu)
            finally:
                stop = fleet.close()
            r.update(seed_keys=keys, repeat=rep + 1, setup_s=setup, stop_s=stop)
            out["runs"].append(r)
            log("  in-process %-5s %d keys: %d joins in %.3f s (%d by copy), setup %.2f s, "
                "stop %.2f s" % (mode, keys, r["secondaries"], r["wall_s"], r["copies"], setup,
                                 stop))
    return out


def bench_join_processes(args, log) -> dict:
    """Section 1b: one ``confd-ha emulate`` process per node (``args.processes`` of them)."""
    addrs = addresses(args.processes, args.first_address)
    out = {"processes": args.processes, "tick": args.join_tick, "seed_keys": args.seed_keys,
           "runs": []}
    for mode in ("async", "sync"):
        with ports.PortReservation(addrs) as res:
            t0 = CLOCK()
            procs = start_processes(addrs, res.port, args.join_tick)
            try:
                setup = CLOCK() - t0
                if args.seed_keys:
                    procs[0].control("commit", changes=[list(c) for c in
                                                        seed_changes(args.seed_keys)])
                pids = [p.pid for p in procs]
                primary_cpu = []
                r = run_joins([(p.ipc_address, p.ipc_port) for p in procs], addrs[0], mode=mode,
                              pool=args.pool, timeout=args.join_timeout,
                              cpu=lambda: process_cpu(pids),
                              around=(lambda: primary_cpu.append(process_cpu(pids[:1])),
                                      lambda: primary_cpu.append(process_cpu(pids[:1]))))
                r["primary_cpu_s"] = primary_cpu[1] - primary_cpu[0]
                r["rss_mib"] = process_rss(pids)
            finally:
                close_processes(procs)
        n = r["secondaries"]
        r.update(setup_s=setup, extrapolated_255_s=r["wall_s"] / n * 255)
        out["runs"].append(r)
        log("  processes %-5s: %d joins in %.3f s (%d by copy), start %.1f s" % (
            mode, n, r["wall_s"], r["copies"], setup))
    return out


# ---------------------------------------------------------------- 2a. kill -9 of the primary


def _join_all(ctl_socks, primary_address: str, pool: int) -> None:
    """besecondary(waitreply=1) on each control socket (node ids s001, s002, …), in a pool."""
    def job(i, sock):
        ha.besecondary(sock, "s%03d" % i, PRIMARY_ID, primary_address, 1)

    with concurrent.futures.ThreadPoolExecutor(pool) as ex:
        for f in [ex.submit(job, i, s) for i, s in enumerate(ctl_socks, 1)]:
            f.result()


def _wait_listed(sock, count: int, timeout: float = 20.0) -> None:
    end = CLOCK() + timeout
    while len(ha.status(sock)[1]) != count:
        if CLOCK() > end:
            raise TimeoutError("the primary does not list %d secondaries" % count)
        time.sleep(0.01)


def bench_kill(args, log) -> dict:
    """Section 2a: ``kill -9`` of a ``confd-ha emulate`` primary; in-process secondaries joined
    to it over real sockets; kill → NOPRIMARY on each secondary's event socket."""
    k = args.kill_secondaries
    addrs = addresses(k + 1, args.first_address)
    out = {"secondaries": k, "tick": args.kill_tick, "rounds": []}
    fleet = InProcess(addrs[1:], args.kill_tick, names=["s%03d" % i for i in range(1, k + 1)])
    fleet.reservation.add(addrs[0])
    try:
        sec = Clients(fleet.endpoints())  # kept across rounds
        try:
            for rnd in range(args.rounds):
                p = process.EmulatorProcess(
                    "--ipc-address", addrs[0], "--ipc-port", "0", "--ha-port",
                    str(fleet.reservation.port), "--tick-timeout", repr(float(args.kill_tick)),
                    "--name", "bench-primary", ready_timeout=60.0).start()
                try:
                    pc = Clients([(p.ipc_address, p.ipc_port)])
                    try:
                        ha.beprimary(pc.ctl[0], PRIMARY_ID)
                        _join_all(sec.ctl, addrs[0], args.pool)
                        _wait_listed(pc.ctl[0], k)
                        time.sleep(0.2)
                        drain(sec.ev)
                        t0 = CLOCK()
                        os.kill(p.pid, signal.SIGKILL)
                        got = collect(sec.ev, events.HA_INFO_NOPRIMARY, 10.0)
                    finally:
                        pc.close()
                    p.wait(10)
                finally:
                    p.close()
                delays = [t - t0 for t, _ in got.values()]
                reasons = sorted({h["noprimary"] for _, h in got.values()})
                r = dict(_ms(delays), seen=len(got), reasons=reasons,
                         min_ms=min(delays) * 1e3 if delays else None)
                out["rounds"].append(r)
                log("  kill round %d: %d/%d NOPRIMARY, median %.1f ms, max %.1f ms, reasons %s"
                    % (rnd + 1, len(got), k, r["median_ms"] or -1, r["max_ms"] or -1, reasons))
        finally:
            sec.close()
    finally:
        fleet.close()
    alld = [r["max_ms"] for r in out["rounds"] if r["max_ms"] is not None]
    out["worst_ms"] = max(alld) if alld else None
    return out


# ---------------------------------------------------------------- 2b. freeze of the primary


def bench_freeze(args, log) -> dict:
    """Section 2b: control ``freeze`` of a ``confd-ha emulate`` primary; freeze → NOPRIMARY
    (HA_NOTICK) on each in-process secondary, for each tick timeout."""
    k = args.freeze_secondaries
    out = {"secondaries": k, "ticks": []}
    rng = random.Random(1)
    for tick in args.ticks:
        addrs = addresses(k + 1, args.first_address)
        fleet = InProcess(addrs[1:], tick, names=["s%03d" % i for i in range(1, k + 1)])
        block = {"tick": tick, "bound_ms": (3 * tick + 0.5) * 1e3, "rounds": []}
        try:
            fleet.reservation.add(addrs[0])
            p = process.EmulatorProcess(
                "--ipc-address", addrs[0], "--ipc-port", "0", "--ha-port",
                str(fleet.reservation.port), "--tick-timeout", repr(float(tick)),
                "--name", "bench-primary", ready_timeout=60.0).start()
            sec = pc = None
            try:
                sec = Clients(fleet.endpoints())
                pc = Clients([(p.ipc_address, p.ipc_port)])
                ha.beprimary(pc.ctl[0], PRIMARY_ID)
                ctl = p.client(timeout=30)
                for rnd in range(args.rounds):
                    _join_all(sec.ctl, addrs[0], args.pool)
                    _wait_listed(pc.ctl[0], k)
                    # A random phase against the tick schedule: the last tick before the
                    # freeze may be anything from just sent to one tick old.
                    time.sleep(rng.uniform(tick, 2 * tick))
                    drain(sec.ev)
                    t0 = CLOCK()
                    ctl.request("freeze")
                    t_ack = CLOCK()
                    got = collect(sec.ev, events.HA_INFO_NOPRIMARY, 3 * tick + 10)
                    ctl.request("thaw")
                    _wait_listed(pc.ctl[0], 0)
                    delays = [t - t0 for t, _ in got.values()]
                    reasons = sorted({h["noprimary"] for _, h in got.values()})
                    r = dict(_ms(delays), seen=len(got), reasons=reasons,
                             min_ms=min(delays) * 1e3 if delays else None,
                             freeze_call_ms=(t_ack - t0) * 1e3)
                    block["rounds"].append(r)
                    log("  freeze tick %.1f round %d: %d/%d NOPRIMARY, %.0f..%.0f ms "
                        "(bound %.0f), reasons %s" % (tick, rnd + 1, len(got), k,
                                                      r["min_ms"] or -1, r["max_ms"] or -1,
                                                      block["bound_ms"], reasons))
                ctl.close()
            finally:
                for c in (sec, pc):
                    if c is not None:
                        c.close()
                p.close()
        finally:
            fleet.close()
        mx = [r["max_ms"] for r in block["rounds"] if r["max_ms"] is not None]
        mn = [r["min_ms"] for r in block["rounds"] if r["min_ms"] is not None]
        block["worst_ms"] = max(mx) if mx else None
        block["best_ms"] = min(mn) if mn else None
        block["met"] = bool(mx) and max(mx) <= block["bound_ms"] and all(
            r["seen"] == k and r["reasons"] == [31] for r in block["rounds"])
        out["ticks"].append(block)
    return out


# ---------------------------------------------------------------- 4. profile


def profile_join(args, log) -> dict:
    """cProfile of the emulator's loop thread during one async mass join."""
    addrs = addresses(args.nodes, args.first_address)
    fleet = InProcess(addrs, args.join_tick)
    prof = cProfile.Profile()
    try:
        if args.seed_keys:
            fleet.nodes[0].commit(seed_changes(args.seed_keys))
        r = run_joins(fleet.endpoints(), addrs[0], mode="async", pool=args.pool,
                      timeout=args.join_timeout, cpu=fleet.loop_cpu,
                      around=(lambda: fleet.emu.call(prof.enable),
                              lambda: fleet.emu.call(prof.disable)))
    finally:
        fleet.close()
    texts = {}
    for key, count in (("tottime", 25), ("cumulative", 40)):
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).strip_dirs().sort_stats(key).print_stats(count)
        texts[key] = "\n".join(ln for ln in buf.getvalue().splitlines()
                               if ln.strip() and "Ordered by" not in ln
                               and "List reduced" not in ln)
    log("  profiled: %d joins in %.3f s under cProfile" % (r["secondaries"], r["wall_s"]))
    return {"run": r, "tottime": texts["tottime"], "cumulative": texts["cumulative"]}


# ---------------------------------------------------------------- output


def _f(x, fmt="%.1f"):
    return "-" if x is None else fmt % x


def report(results) -> str:
    lines = []
    env = results["environment"]
    lines.append("confd_ha %s from %s" % (env["confd_ha_version"], env["confd_ha_path"]))
    lines.append("Python %s on %s, %d CPUs (load avg %s at start, %s at end)" % (
        env["python"], env["platform"], env["cpus"], env["loadavg_start"],
        env.get("loadavg_end", "?")))
    join = results.get("join")
    if join:
        lines.append("")
        lines.append("1. %d secondaries join one primary: %d in-process nodes on one "
                     "EmulatorThread," % (join["nodes"] - 1, join["nodes"]))
        lines.append("   primary seeded with %d keys, tick %g s, sync pool %d threads; wall = "
                     "first besecondary -> last SECONDARY_ARRIVED" % (
                         join["seed_keys"], join["tick"], join["pool"]))
        lines.append("   %-22s %7s %8s %7s %7s %7s %8s %8s %6s" % (
            "variant", "wall s", "ms/join", "lat med", "lat p90", "lat max", "copies", "loop CPU",
            "<5 s"))
        for r in join["runs"]:
            name = "%s%s #%d" % (r["mode"], "" if r["seed_keys"] else " nocopy", r["repeat"])
            lines.append("   %-22s %7.3f %8.2f %7.0f %7.0f %7.0f %4d/%-3d %7.2fs %6s" % (
                name, r["wall_s"], r["per_join_ms"], r["latency"]["median_ms"],
                r["latency"]["p90_ms"], r["latency"]["max_ms"], r["copies"], r["secondaries"],
                r["node_cpu_s"], "met" if r["wall_s"] < JOIN_TARGET_S else "NOT met"))
        lines.append("   (lat = besecondary sent -> its SECONDARY_ARRIVED on the primary, ms; "
                     "loop CPU = emulator thread CPU during the run)")
    procs = results.get("join_processes")
    if procs:
        lines.append("")
        lines.append("1b. the same with one `confd-ha emulate` process per node: %d processes "
                     "(%d secondaries)" % (procs["processes"], procs["processes"] - 1))
        lines.append("   %-22s %7s %8s %7s %7s %9s %9s %9s %10s" % (
            "variant", "wall s", "ms/join", "lat med", "lat max", "copies", "all CPU",
            "prim CPU", "x255 est s"))
        for r in procs["runs"]:
            lines.append("   %-22s %7.3f %8.2f %7.0f %7.0f %5d/%-3d %8.2fs %8.2fs %10.2f" % (
                r["mode"], r["wall_s"], r["per_join_ms"], r["latency"]["median_ms"],
                r["latency"]["max_ms"], r["copies"], r["secondaries"], r["node_cpu_s"],
                r["primary_cpu_s"], r["extrapolated_255_s"]))
        lines.append("   (start of the %d processes: %.1f s, %.0f MiB resident each; x255 est ="
                     " linear extrapolation of ms/join; CPU from /proc, 10 ms resolution)" % (
                         procs["processes"], procs["runs"][0]["setup_s"],
                         procs["runs"][0]["rss_mib"]))
    kill = results.get("kill")
    if kill:
        lines.append("")
        lines.append("2a. kill -9 of a `confd-ha emulate` primary -> NOPRIMARY on %d in-process "
                     "secondaries (tick %g s)" % (kill["secondaries"], kill["tick"]))
        lines.append("   %-8s %6s %8s %8s %8s %8s" % ("round", "seen", "min ms", "med ms",
                                                       "max ms", "reason"))
        for i, r in enumerate(kill["rounds"], 1):
            lines.append("   %-8d %3d/%-3d %7s %8s %8s   %s" % (
                i, r["seen"], kill["secondaries"], _f(r["min_ms"]), _f(r["median_ms"]),
                _f(r["max_ms"]), ",".join(map(str, r["reasons"]))))
        lines.append("   worst: %s ms (target: immediate on close)" % _f(kill["worst_ms"]))
    frz = results.get("freeze")
    if frz:
        lines.append("")
        lines.append("2b. freeze of a `confd-ha emulate` primary -> NOPRIMARY (HA_NOTICK 31) on "
                     "%d in-process secondaries" % frz["secondaries"])
        lines.append("   %-6s %6s %8s %8s %8s %9s %7s %8s" % (
            "tick s", "rounds", "best ms", "med ms", "worst ms", "bound ms", "reason", "target"))
        for b in frz["ticks"]:
            meds = [r["median_ms"] for r in b["rounds"] if r["median_ms"] is not None]
            reasons = sorted({x for r in b["rounds"] for x in r["reasons"]})
            lines.append("   %-6g %6d %8s %8s %8s %9.0f %7s %8s" % (
                b["tick"], len(b["rounds"]), _f(b["best_ms"], "%.0f"),
                _f(statistics.median(meds) if meds else None, "%.0f"),
                _f(b["worst_ms"], "%.0f"), b["bound_ms"], ",".join(map(str, reasons)),
                "met" if b["met"] else "NOT met"))
        lines.append("   (bound = 3 x tick + 0.5 s; timed from the freeze request, which "
                     "itself takes ~%s ms)" % _f(statistics.median(
                         [r["freeze_call_ms"] for b in frz["ticks"] for r in b["rounds"]]),
                         "%.1f"))
    prof = results.get("profile")
    if prof:
        r = prof["run"]
        lines.append("")
        lines.append("4. cProfile of the emulator thread, one async join of %d secondaries "
                     "(%.3f s under the profiler, loop CPU %.2f s)" % (
                         r["secondaries"], r["wall_s"], r["node_cpu_s"]))
        lines.append("   sorted by own time:")
        lines.extend("    " + ln for ln in prof["tottime"].splitlines())
        lines.append("   sorted by cumulative time:")
        lines.extend("    " + ln for ln in prof["cumulative"].splitlines())
    return "\n".join(lines)


def main(argv=None) -> int:
    global ha, events, ports, loop, process
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="a short run: 64 nodes, 8 processes, fewer rounds")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    ap.add_argument("--profile", action="store_true",
                    help="add cProfile output of the emulator thread during a mass join")
    ap.add_argument("--installed", action="store_true",
                    help="use the installed confd_ha even inside a source tree")
    ap.add_argument("--only", choices=("join", "processes", "kill", "freeze"), action="append",
                    help="run only these sections (repeatable)")
    ap.add_argument("--nodes", type=int, help="nodes of the mass join (default 256, quick 64)")
    ap.add_argument("--processes", type=int,
                    help="processes of the per-process join (default 32, quick 8)")
    ap.add_argument("--repeats", type=int, help="repeats of the mass join (default 3, quick 1)")
    ap.add_argument("--rounds", type=int, help="rounds of kill and of freeze (default 5, quick 2)")
    ap.add_argument("--pool", type=int, default=32,
                    help="threads of the synchronous join variant (default 32)")
    ap.add_argument("--seed-keys", type=int, default=100,
                    help="keys committed on the primary before the joins (default 100)")
    ap.add_argument("--join-tick", type=float, default=20.0,
                    help="tick timeout of the join benchmarks (default 20 s, ConfD's default)")
    ap.add_argument("--join-timeout", type=float, default=120.0,
                    help="give up a mass join after this many seconds (default 120)")
    ap.add_argument("--kill-secondaries", type=int, help="secondaries of the kill benchmark "
                    "(default 16, quick 4)")
    ap.add_argument("--kill-tick", type=float, default=20.0,
                    help="tick timeout of the kill benchmark (default 20 s: only a close can "
                         "be detected in time)")
    ap.add_argument("--freeze-secondaries", type=int, help="secondaries of the freeze "
                    "benchmark (default 8, quick 4)")
    ap.add_argument("--ticks", type=float, nargs="+", default=[0.2, 0.5, 1.0],
                    help="tick timeouts of the freeze benchmark (default 0.2 0.5 1)")
    ap.add_argument("--first-address", default="127.1.0.1",
                    help="first loopback address used (default 127.1.0.1)")
    args = ap.parse_args(argv)
    q = args.quick
    args.nodes = args.nodes or (64 if q else 256)
    args.processes = args.processes or (8 if q else 32)
    args.repeats = args.repeats or (1 if q else 3)
    args.rounds = args.rounds or (2 if q else 5)
    args.kill_secondaries = args.kill_secondaries or (4 if q else 16)
    args.freeze_secondaries = args.freeze_secondaries or (4 if q else 8)
    if args.nodes < 2 or args.processes < 2:
        raise SystemExit("--nodes and --processes must be at least 2")
    sections = set(args.only or ("join", "processes", "kill", "freeze"))

    watchdog(3600)

    confd_ha = import_confd_ha(args.installed)
    import confd_ha.events as ev_mod
    from confd_ha.testing import loop as loop_mod, ports as ports_mod, process as proc_mod

    ha, events, ports, loop, process = confd_ha, ev_mod, ports_mod, loop_mod, proc_mod
    _raise_fd_limit(4 * args.nodes + 256)

    results = {"environment": {
        "confd_ha_version": confd_ha.__version__,
        "confd_ha_path": os.path.dirname(confd_ha.__file__),
        "python": platform.python_version(), "implementation": platform.python_implementation(),
        "platform": platform.platform(terse=True), "cpus": os.cpu_count() or 0,
        "loadavg_start": loadavg(), "quick": q,
        "argv": sys.argv[1:] if argv is None else list(argv)}}
    if "join" in sections:
        log("1. mass join, %d in-process nodes ..." % args.nodes)
        results["join"] = bench_join(args, log)
    if "processes" in sections:
        log("1b. join, %d processes ..." % args.processes)
        results["join_processes"] = bench_join_processes(args, log)
    if "kill" in sections:
        log("2a. kill -9 of the primary ...")
        results["kill"] = bench_kill(args, log)
    if "freeze" in sections:
        log("2b. freeze of the primary ...")
        results["freeze"] = bench_freeze(args, log)
    if args.profile:
        log("4. profile of the mass join ...")
        results["profile"] = profile_join(args, log)
    results["environment"]["loadavg_end"] = loadavg()
    finish(results, report(results), args.json)
    return 0


def _raise_fd_limit(want: int) -> None:
    """256 nodes with their client sockets need ~7 descriptors each."""
    try:
        import resource
    except ImportError:  # pragma: no cover - non-POSIX
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (
            want if hard == resource.RLIM_INFINITY else min(want, hard), hard))


if __name__ == "__main__":
    sys.exit(main())
