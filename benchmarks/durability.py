#!/usr/bin/env python3
"""Durability of acknowledged commits across a primary crash and a full restart.

Each round:

1. three ``confd-ha emulate`` processes on 127.0.0.(B..B+2), one shared HA port, each with
   its own ``--data-dir`` and a short tick timeout, form a cluster through the real client
   (``confd_ha.connect`` + ``beprimary`` / ``besecondary(waitreply=1)``);
2. a commit stream runs on the primary through its control endpoint
   (``confd_ha.testing.control.ControlClient``, op ``set``); every commit that returned a
   transaction id is *acknowledged* and recorded (path, value, txid);
3. in the middle of the stream the primary process is killed with SIGKILL;
4. both secondaries must report NONE (primary lost) and hold every acknowledged commit;
5. the secondaries are stopped (n2 with SIGTERM, n3 with SIGKILL), then all three nodes --
   the killed primary included -- are started again from their data directories: every
   acknowledged commit must be present on each, and each secondary must come back with the
   transaction id it had before the stop (the killed primary with the id of its last
   journaled commit);
6. the cluster is formed again with a former secondary as primary; all three must end up
   with identical data.

Reported per round and in total: commits attempted / acknowledged / present on the
secondaries after the failover / present on each node after the restart, and unacknowledged
commits that survived anyway (an in-flight commit that reached a journal before the crash).

Usage::

    python benchmarks/durability.py                 # 5 rounds
    python benchmarks/durability.py --rounds 20 --tick 0.3 --json durability.json

Exit status 0 when no acknowledged commit was ever lost, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import signal
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if (ROOT / "confd_ha" / "__init__.py").is_file() and str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import confd_ha as ha  # noqa: E402
from confd_ha.testing.control import ControlClient, ControlError, Unreachable  # noqa: E402
from confd_ha.testing.process import EmulatorProcess  # noqa: E402
from confd_ha.testing.ports import PortReservation, loopback_addresses  # noqa: E402
from _output import finish  # noqa: E402

TOKEN = "durability-token"


def start_node(addr: str, ha_port: int, tick: float, data_dir: str, name: str) -> EmulatorProcess:
    return EmulatorProcess("--ipc-address", addr, "--ipc-port", "0", "--ha-port", str(ha_port),
                           "--tick-timeout", repr(tick), "--data-dir", data_dir,
                           "--name", name).start()


def form(nodes, ids, primary: int = 0) -> None:
    """Primary + secondaries through the real client (control sockets closed afterwards:
    the roles stay, B-02)."""
    p = nodes[primary]
    with socket.socket() as s:
        s.settimeout(10)
        ha.connect(s, TOKEN, p.ipc_address, p.ipc_port)
        ha.beprimary(s, ids[primary])
    for i, n in enumerate(nodes):
        if i == primary:
            continue
        with socket.socket() as s:
            s.settimeout(10)
            ha.connect(s, TOKEN, n.ipc_address, n.ipc_port)
            ha.besecondary(s, ids[i], ids[primary], p.ha_address, 1)
    # besecondary returns when the joiner has synced; the primary counts it as arrived (and
    # waits for it on commits, B-30) just after: wait for that.
    end = time.monotonic() + 10
    while len(p.control("info")["status"]) != len(nodes) - 1:
        if time.monotonic() > end:
            raise TimeoutError("secondaries did not arrive")
        time.sleep(0.01)


def wait_state(node: EmulatorProcess, name: str, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while True:
        state = node.control("info")["state_name"]
        if state == name:
            return
        if time.monotonic() > end:
            raise TimeoutError("%s is %s, not %s" % (node.ipc_address, state, name))
        time.sleep(0.02)


def items(node: EmulatorProcess) -> dict:
    return dict(tuple(x) for x in node.control("show", prefix="/d")["items"])


class Stream(threading.Thread):
    """Commits ``set /d/NNNNNN vNNNNNN`` one after the other until the primary dies."""

    def __init__(self, node: EmulatorProcess):
        super().__init__(daemon=True)
        self.client = ControlClient(node.ipc_address, node.ipc_port, timeout=30)
        self.acked: list = []          # (path, value, txid)
        self.attempted = 0
        self.ended_by = None

    def run(self) -> None:
        i = 0
        try:
            while True:
                path, value = "/d/%06d" % i, "v%06d" % i
                self.attempted += 1
                try:
                    result = self.client.request("set", path=path, value=value)
                except (Unreachable, ControlError) as exc:
                    self.ended_by = "%s: %s" % (type(exc).__name__, exc)
                    self.last_unacked = (path, value)
                    return
                self.acked.append((path, value, result["txid"]))
                i += 1
        finally:
            self.client.close()


def one_round(workdir: str, base: int, tick: float, kill_after: float, report) -> dict:
    addrs = loopback_addresses(3, base)
    ids = ["n1", "n2", "n3"]
    dirs = [os.path.join(workdir, i) for i in ids]
    out: dict = {}
    with PortReservation(addrs) as res:
        nodes = [start_node(a, res.port, tick, d, i) for a, d, i in zip(addrs, dirs, ids)]
        try:
            form(nodes, ids)
            stream = Stream(nodes[0])
            t0 = time.monotonic()
            stream.start()
            time.sleep(kill_after)
            os.kill(nodes[0].pid, signal.SIGKILL)       # in the middle of the stream
            stream.join(30)
            elapsed = time.monotonic() - t0
            nodes[0].wait(10)
            acked = stream.acked
            out.update(attempted=stream.attempted, acknowledged=len(acked),
                       commits_per_s=round(len(acked) / elapsed, 1), ended_by=stream.ended_by)
            inflight = getattr(stream, "last_unacked", None)

            # 4. failover: the secondaries lost their primary and hold every ack.
            for n in nodes[1:]:
                wait_state(n, "NONE", 6 * tick + 5)
            out["after_failover"] = {}
            before = {}
            for i, n in enumerate(nodes[1:], 1):
                data = items(n)
                present = sum(1 for p, v, _ in acked if data.get(p) == v)
                out["after_failover"][ids[i]] = {
                    "present": present,
                    "unacknowledged_present": int(inflight is not None
                                                  and data.get(inflight[0]) == inflight[1]),
                    "txid": n.control("txid")["txid"]}
                before[ids[i]] = out["after_failover"][ids[i]]["txid"]
            # 5. stop, restart everything from the data directories.
            nodes[1].terminate()                         # n2: SIGTERM
            os.kill(nodes[2].pid, signal.SIGKILL)        # n3: SIGKILL
            nodes[2].wait(10)
            nodes = [start_node(a, res.port, tick, d, i) for a, d, i in zip(addrs, dirs, ids)]
            out["after_restart"] = {}
            for i, n in enumerate(nodes):
                data = items(n)
                txid = n.control("txid")["txid"]
                present = sum(1 for p, v, _ in acked if data.get(p) == v)
                entry = {"present": present, "txid": txid,
                         "unacknowledged_present": int(inflight is not None
                                                       and data.get(inflight[0]) == inflight[1])}
                if i == 0:
                    # The killed primary: its last journaled commit is the last ack, or the
                    # in-flight one if that reached its journal before the kill.
                    entry["txid_kept"] = (bool(acked) and txid == acked[-1][2]) or \
                        bool(entry["unacknowledged_present"])
                else:
                    entry["txid_kept"] = txid == before[ids[i]]
                out["after_restart"][ids[i]] = entry
            # 6. a former secondary becomes primary; everybody converges.
            form(nodes, ids, primary=1)
            reference = items(nodes[1])
            out["reformed_identical"] = all(items(n) == reference for n in nodes)
            out["reformed_present"] = sum(1 for p, v, _ in acked if reference.get(p) == v)
        finally:
            for n in nodes:
                n.terminate()
    n_ack = out["acknowledged"]
    out["ok"] = (all(v["present"] == n_ack for v in out["after_failover"].values())
                 and all(v["present"] == n_ack and v["txid_kept"]
                         for v in out["after_restart"].values())
                 and out["reformed_identical"] and out["reformed_present"] == n_ack)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--tick", type=float, default=0.5, help="tick timeout of the nodes (s)")
    ap.add_argument("--kill-after", default="0.5:2.0",
                    help="seconds of commit stream before the kill: LO:HI, random per round")
    ap.add_argument("--base", type=int, default=201, help="first address 127.0.0.BASE")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    lo, hi = (float(x) for x in args.kill_after.split(":"))
    print("confd_ha %s from %s; Python %s; %d CPUs; load %s" % (
        ha.__version__, os.path.dirname(ha.__file__), platform.python_version(),
        os.cpu_count(), " ".join("%.2f" % x for x in os.getloadavg())), flush=True)
    rounds = []
    rng = random.Random()
    for r in range(args.rounds):
        kill_after = rng.uniform(lo, hi)
        with tempfile.TemporaryDirectory(prefix="confd-ha-durability-") as workdir:
            res = one_round(workdir, args.base, args.tick, kill_after, print)
        res["kill_after"] = round(kill_after, 2)
        rounds.append(res)
        f, rs = res["after_failover"], res["after_restart"]
        print("round %d: kill after %.2f s: attempted %d, acknowledged %d (%.0f/s); after "
              "failover present n2 %d n3 %d; after restart present n1 %d n2 %d n3 %d, txids "
              "kept %s; unacknowledged in-flight commit kept by %s; re-formed identical %s -> %s"
              % (r + 1, kill_after, res["attempted"], res["acknowledged"], res["commits_per_s"],
                 f["n2"]["present"], f["n3"]["present"], rs["n1"]["present"],
                 rs["n2"]["present"], rs["n3"]["present"],
                 all(v["txid_kept"] for v in rs.values()),
                 [k for k, v in rs.items() if v["unacknowledged_present"]] or "none",
                 res["reformed_identical"], "OK" if res["ok"] else "LOST DATA"), flush=True)
    total = {
        "rounds": len(rounds),
        "attempted": sum(r["attempted"] for r in rounds),
        "acknowledged": sum(r["acknowledged"] for r in rounds),
        "present_after_failover_each_secondary": min(
            sum(r["after_failover"][n]["present"] for r in rounds) for n in ("n2", "n3")),
        "present_after_restart_each_node": min(
            sum(r["after_restart"][n]["present"] for r in rounds) for n in ("n1", "n2", "n3")),
        "txids_kept": all(v["txid_kept"] for r in rounds for v in r["after_restart"].values()),
        "all_ok": all(r["ok"] for r in rounds),
    }
    print("total: %(rounds)d rounds, attempted %(attempted)d, acknowledged %(acknowledged)d, "
          "present after failover (each secondary) %(present_after_failover_each_secondary)d, "
          "present after restart (each node) %(present_after_restart_each_node)d, txids kept "
          "%(txids_kept)s -> " % total + ("OK" if total["all_ok"] else "ACKNOWLEDGED DATA LOST"))
    finish({"rounds": rounds, "total": total}, None, args.json)
    return 0 if total["all_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
