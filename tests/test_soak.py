"""Short soak runs: nothing may grow with the number of calls or cycles.

The full-size runs (one million status() calls, 1000 join/leave cycles) are
``benchmarks/soak.py``; these are the same checks at a size that runs in a few seconds:
memory is compared between a warmed-up checkpoint and the end, and must show no trend.
"""

from __future__ import annotations

import asyncio
import gc
import os
import tracemalloc

import confd_ha as ha
from confd_ha import events
from waiting import wait_until


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def traced() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def test_status_calls_on_one_socket_do_not_grow(ha_node):
    """10 000 status() calls on one socket against a live node, the reply changing every 1000
    calls (the role toggles): the traced memory of the process (client and node) at four
    checkpoints after a warm-up shows no growth, and the descriptor count stays put."""
    s = ha_node.connect_ha("soak", timeout=10)
    state = ha.STATE_NONE

    def calls(n, start):
        nonlocal state
        for i in range(start, start + n):
            if i % 1000 == 0 and i:
                if state == ha.STATE_NONE:
                    ha.beprimary(s, "soak")
                    state = ha.STATE_PRIMARY
                else:
                    ha.benone(s)
                    state = ha.STATE_NONE
            assert ha.status(s) == (state, [])
        return start + n

    tracemalloc.start()
    try:
        done = calls(2000, 0)                # warm-up: caches, decision log, buffers
        points, fds = [], []
        for _ in range(4):
            done = calls(2000, done)      # same role at every checkpoint (HA listener fd)
            points.append(traced())
            fds.append(fd_count())
    finally:
        tracemalloc.stop()
        s.close()
    growth = points[-1] - points[0]
    # The node's decision log (bounded, 1000 entries) gains two lines per toggle.
    assert growth < 32 * 1024, points
    assert not all(b > a + 1024 for a, b in zip(points, points[1:])), points   # no trend
    assert len(set(fds)) == 1, fds


def test_join_leave_cycles_leak_nothing(ha_cluster, ha_emulator):
    """100 join/leave cycles (besecondary/benone through kept control sockets, one commit per
    cycle so every join copies, an event subscriber reading every event): descriptors of the
    process and tasks on the emulator loop are the same at cycle 25 and 100, and traced
    memory stays within the bound of the nodes' decision logs."""
    c = ha_cluster(2, tick_timeout=1.0)
    p, sec = c[0], c[1]
    ctl_p = p.connect_ha("soak")
    ha.beprimary(ctl_p, "n1")
    ctl_s = sec.connect_ha("soak")
    ev = p.subscribe()
    points = []
    tracemalloc.start()
    try:
        for i in range(1, 101):
            p.set("/soak/v", str(i))
            ha.besecondary(ctl_s, "n2", "n1", p.ha_address, 1)
            wait_until(lambda: len(p.status()[1]) == 1, timeout=10.0)
            assert sec.get("/soak/v") == str(i)
            ha.benone(ctl_s)
            wait_until(lambda: not p.status()[1], timeout=10.0)
            got = [events.read_notification(ev)["hnot"]["type"] for _ in range(2)]
            assert got == [events.HA_INFO_SECONDARY_ARRIVED, events.HA_INFO_SECONDARY_DIED]
            if i % 25 == 0:
                points.append((fd_count(), ha_emulator.call(lambda: len(asyncio.all_tasks())),
                               traced()))
    finally:
        tracemalloc.stop()
        for s in (ctl_p, ctl_s, ev):
            s.close()
    (fd1, tasks1, mem1), *_, (fd3, tasks3, mem3) = points
    assert fd3 == fd1, points
    assert tasks3 == tasks1, points
    # Bounded growth only: the decision logs (1000 lines per node, ~110 bytes each) fill up.
    assert mem3 - mem1 < 256 * 1024, points
