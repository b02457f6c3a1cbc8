"""Acknowledged commits survive a SIGKILL of the primary and a restart of every node
(ha-behaviour B-14, B-23, B-30; the datastore journal).

Three ``confd-ha emulate`` processes with data directories form a cluster through the real
client; a commit stream runs on the primary through its control endpoint; the primary process
is killed with SIGKILL in the middle of the stream. Every commit that returned a transaction
id must then be on both secondaries, and -- after the secondaries are stopped (one with
SIGTERM, one with SIGKILL) and all three
nodes are started again from their data directories -- on every node, with each node's
transaction id kept. ``benchmarks/durability.py`` runs the same scenario for many rounds and
reports the counts.
"""

from __future__ import annotations

import os
import signal
import socket
import threading

import confd_ha as ha
from confd_ha.testing.control import ControlClient, ControlError, Unreachable
from waiting import wait_until

TICK = 0.5


def form(nodes, ids, primary=0):
    p = nodes[primary]
    with socket.socket() as s:
        s.settimeout(10)
        ha.connect(s, "tok", p.ipc_address, p.ipc_port)
        ha.beprimary(s, ids[primary])
    for i, n in enumerate(nodes):
        if i != primary:
            with socket.socket() as s:
                s.settimeout(10)
                ha.connect(s, "tok", n.ipc_address, n.ipc_port)
                ha.besecondary(s, ids[i], ids[primary], p.ha_address, 1)
    # besecondary returns when the joiner has synced; the primary counts it as arrived (and
    # waits for it on commits, B-30) just after: wait for that.
    wait_until(lambda: len(p.control("info")["status"]) == len(nodes) - 1, 10.0, 0.01)


def show(node) -> dict:
    return dict(tuple(x) for x in node.control("show", prefix="/d")["items"])


def wait_none(node, timeout=3 * 3 * TICK + 5):
    wait_until(lambda: node.control("info")["state_name"] == "NONE", timeout)


def test_acknowledged_commits_survive_primary_kill_and_restart(ha_node_process_factory,
                                                               tmp_path):
    ids = ["n1", "n2", "n3"]
    dirs = [tmp_path / i for i in ids]
    nodes = [ha_node_process_factory("--name", i, tick_timeout=TICK, data_dir=d)
             for i, d in zip(ids, dirs)]
    addresses = [(n.ipc_address, n.ha_port) for n in nodes]
    form(nodes, ids)
    primary = nodes[0]

    acked, attempted, inflight = [], [0], []
    enough = threading.Event()

    def stream():
        with ControlClient(primary.ipc_address, primary.ipc_port, timeout=10) as cc:
            i = 0
            while True:
                path, value = "/d/%05d" % i, "v%d" % i
                attempted[0] += 1
                try:
                    txid = cc.request("set", path=path, value=value)["txid"]
                except (Unreachable, ControlError):
                    inflight.append((path, value))
                    return
                acked.append((path, value, txid))
                if len(acked) == 30:
                    enough.set()
                i += 1

    t = threading.Thread(target=stream, daemon=True)
    t.start()
    assert enough.wait(10)
    os.kill(primary.pid, signal.SIGKILL)          # in the middle of the stream
    t.join(10)
    assert not t.is_alive()
    assert primary.wait(10) == -signal.SIGKILL
    assert len(acked) >= 30 and attempted[0] == len(acked) + 1

    # Failover: both secondaries lost the primary and hold every acknowledged commit.
    txids = {}
    for n in nodes[1:]:
        wait_none(n)
        data = show(n)
        missing = [(p, v) for p, v, _ in acked if data.get(p) != v]
        assert not missing, missing
        txids[n.ipc_address] = n.control("txid")["txid"]
        assert txids[n.ipc_address] != "invalid"

    # Stop the secondaries -- n2 with SIGTERM, n3 with SIGKILL -- then start all three again
    # from their data directories.
    assert nodes[1].terminate() == 0
    os.kill(nodes[2].pid, signal.SIGKILL)
    assert nodes[2].wait(10) == -signal.SIGKILL
    nodes = [ha_node_process_factory("--name", i, tick_timeout=TICK, data_dir=d,
                                     address=a, ha_port=port)
             for i, d, (a, port) in zip(ids, dirs, addresses)]
    for i, n in enumerate(nodes):
        data = show(n)
        missing = [(p, v) for p, v, _ in acked if data.get(p) != v]
        assert not missing, (ids[i], missing)
        txid = n.control("txid")["txid"]
        if i == 0:
            # The killed primary: its last journaled commit is the last acknowledged one,
            # or the in-flight one when that reached its journal before the kill.
            assert txid == acked[-1][2] or data.get(inflight[0][0]) == inflight[0][1]
        else:
            assert txid == txids[n.ipc_address]      # transaction id kept (B-23)

    # A former secondary becomes primary; everybody converges on its data.
    form(nodes, ids, primary=1)
    reference = show(nodes[1])
    assert all(show(n) == reference for n in nodes)
    assert all(reference.get(p) == v for p, v, _ in acked)
