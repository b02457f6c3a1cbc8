"""Liveness in clusters of emulated nodes: kills, the emulator's freeze and partitions, tick
timeout 0, relays losing nodes, and ticks that keep flowing under load. What ConfD 8.2.5 does
is in docs/conformance.md ("Events", "Relays", "Liveness and timings": a dead peer is found on a
grid of ticks, 2 to 3 tick timeouts after it stopped; a killed one at once). Freeze and
partition are the emulator's own (docs/peer-protocol.md): a frozen node notices nothing and its
timers restart when it is thawed.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest

import confd_ha as ha
from confd_ha import _protocol, error
from emulator_helpers import (
    A, ARRIVED, DIED, INITIALIZED, IS_NONE, IS_PRIMARY, NOPRIMARY, Cluster, be_primary,
    be_secondary, join_error, last_join_copied, primary_with, relay_chain,
)

TICK = 0.2          # seconds: the ``fast`` fixture's tick (conftest.py)
JOIN_TIMEOUT = 1.0   # the nodes' join deadline (ConfD: 10 s), so that failed joins are quick


def dead_after(t0: float) -> None:
    """A peer that went silent at ``t0`` was found dead on the grid: 2-3 ticks later (plus the
    grid's small offset and delivery)."""
    elapsed = time.monotonic() - t0
    assert 2 * TICK <= elapsed < 3 * TICK + 0.3, elapsed


# ================================================================ kills


def test_kill_primary_then_failover_without_copy(cluster):
    n1, n2, n3 = cluster.add("n1", 1), cluster.add("n2", 2), cluster.add("n3", 3)
    be_primary(n1, "n1")
    n1.commit([("set", "/cfg", "a")])
    be_secondary(n2, "n2", n1, "n1")
    be_secondary(n3, "n3", n1, "n1")
    e2, e3 = n2.events(), n3.events()
    n1.kill()
    # docs/conformance.md (fault_kill_primary): NOPRIMARY 26 at once, then IS_NONE
    assert e2.expect((NOPRIMARY, error.ERR_HA_CLOSED), (IS_NONE, 0))
    assert e3.expect((NOPRIMARY, error.ERR_HA_CLOSED), (IS_NONE, 0))
    # the framework promotes n2 and re-points n3: same transaction id, so no copy is made --
    # though the event says copy=1, as ConfD's always does
    s2 = be_primary(n2, "n2")
    assert e2.next() == (IS_PRIMARY, 0)
    be_secondary(n3, "n3", n2, "n2")
    assert e3.next() == (INITIALIZED, 1)
    assert not last_join_copied(n3)
    assert n3.get("/cfg") == "a"
    assert e2.next() == (ARRIVED, (b"n3", A[3]))
    assert ha.status(s2)[1] == [{"nodeid": "n3", "address": "127.0.0.3"}]


def test_kill_secondary_primary_sees_died(cluster):
    n1, n2, _, _ = primary_with(cluster, 2)
    e1 = n1.events()
    n2.kill()
    assert e1.next() == (DIED, (b"n2", A[2]))
    assert n1.status() == (ha.STATE_PRIMARY, [])


def test_relay_killed_sub_secondaries_drop(cluster):
    n1, n2, n3, _ = relay_chain(cluster)
    e1, e3 = n1.events(), n3.events()
    n2.kill()
    # docs/conformance.md "Relays" (fault_kill_relay): the primary reports the relay, then the
    # node behind it; that node loses its primary
    assert e3.expect((NOPRIMARY, error.ERR_HA_CLOSED), (IS_NONE, 0))
    assert e1.expect((DIED, (b"n2", A[2])), (DIED, (b"n3", A[3])))
    assert n1.status() == (ha.STATE_PRIMARY, [])


# ================================================================ freeze and silence


def test_freeze_primary_gives_notick(fast):
    n1, n2, n3, _, _, _ = primary_with(fast, 3)
    e1, e2, e3 = n1.events(), n2.events(), n3.events()
    t0 = time.monotonic()
    n1.freeze()
    assert e2.next() == (NOPRIMARY, error.ERR_HA_NOTICK)
    dead_after(t0)
    assert e3.next() == (NOPRIMARY, error.ERR_HA_NOTICK)
    dead_after(t0)
    assert e2.next() == (IS_NONE, 0) and e3.next() == (IS_NONE, 0)
    assert n2.status() == (ha.STATE_NONE, [])
    e1.quiet(0.2)  # frozen: it notices nothing
    assert len(n1.status()[1]) == 2
    n1.thaw()  # now it reads the closes the secondaries sent meanwhile
    got = sorted([e1.next(), e1.next()])
    assert got == [(DIED, (b"n2", A[2])), (DIED, (b"n3", A[3]))]
    assert n1.status() == (ha.STATE_PRIMARY, [])


def test_freeze_secondary_primary_declares_it_dead_and_commit_returns(fast):
    n1, n2, _, _ = primary_with(fast, 2)
    e1, e2 = n1.events(), n2.events()
    t0 = time.monotonic()
    n2.freeze()
    n1.commit([("set", "/during-freeze", "x")])  # never acknowledged: returns when n2 is dead
    dead_after(t0)
    assert e1.next() == (DIED, (b"n2", A[2]))
    e2.quiet(0.1)
    assert n2.state == ha.STATE_SECONDARY
    n2.thaw()
    # The emulator's freeze, unlike a SIGSTOP: the thawed node's timers restart, so it sees
    # the close its primary sent meanwhile as a close (26), not as a silence (31).
    assert e2.expect((NOPRIMARY, error.ERR_HA_CLOSED), (IS_NONE, 0))
    assert n2.get("/during-freeze") is None


def test_tick_timeout_zero_detects_nothing(cluster):
    n1 = cluster.add("n1", 1, tick_timeout=0)
    n2 = cluster.add("n2", 2, tick_timeout=0)
    be_primary(n1, "n1")
    be_secondary(n2, "n2", n1, "n1")
    e2 = n2.events()
    n1.freeze()
    e2.quiet(0.5)
    assert n2.state == ha.STATE_SECONDARY
    n1.thaw()
    n1.commit([("set", "/still", "here")])
    assert n2.get("/still") == "here"


# ================================================================ partitions


def test_partition_both_sides_see_notick_then_heal(fast):
    n1, n2, n3, _, _, _ = primary_with(fast, 3)
    e1, e2, e3 = n1.events(), n2.events(), n3.events()
    t0 = time.monotonic()
    n1.partition("127.0.0.2")
    assert e2.next() == (NOPRIMARY, error.ERR_HA_NOTICK)
    assert e1.next() == (DIED, (b"n2", A[2]))
    dead_after(t0)
    assert e2.next() == (IS_NONE, 0)
    e3.quiet(0.1)
    n1.commit([("set", "/p", "1")])
    assert n3.get("/p") == "1" and n2.get("/p") is None
    s2 = n2.ctl()
    t0 = time.monotonic()
    with pytest.raises(error.Error) as exc:  # n1 holds everything from 127.0.0.2
        ha.besecondary(s2, "n2", "n1", n1.ip, 1)
    assert exc.value.confd_errno == error.ERR_HA_CLOSED
    assert time.monotonic() - t0 >= JOIN_TIMEOUT - 0.05  # the join's deadline
    assert e2.next() == (IS_NONE, 0)
    n1.heal("127.0.0.2")
    ha.besecondary(s2, "n2", "n1", n1.ip, 1)
    assert e2.next() == (INITIALIZED, 1)
    assert last_join_copied(n2)  # it missed a transaction: full copy
    assert n2.get("/p") == "1"


def test_partition_on_the_joining_side_gives_connect_error(fast):
    n1, n2 = fast.add("n1", 1), fast.add("n2", 2)
    be_primary(n1, "n1")
    n2.partition("127.0.0.1")
    t0 = time.monotonic()
    assert join_error(n2, "n2", n1.ip, "n1") == error.ERR_HA_CONNECT
    assert time.monotonic() - t0 >= JOIN_TIMEOUT - 0.05  # the connect "times out"
    n2.heal()
    assert join_error(n2, "n2", n1.ip, "n1") == 0


# ================================================================ relays losing nodes


def test_relay_reports_an_unresponsive_sub_secondary_dead_to_the_primary(fast):
    """docs/conformance.md "Relays": a relay emits no SECONDARY_* events itself but reports
    its subtree to the primary, which announces the death; a commit on the primary waits
    for its relay only, not for the node behind it."""
    n1, n2, n3, _ = relay_chain(fast)
    e1, e2 = n1.events(), n2.events()
    t0 = time.monotonic()
    n3.freeze()
    n1.commit([("set", "/k", "v")])
    assert time.monotonic() - t0 < 2 * TICK  # not held up by n3
    assert n2.get("/k") == "v"
    assert e1.next() == (DIED, (b"n3", A[3]))
    dead_after(t0)
    assert n2.status() == (ha.STATE_SECONDARY_RELAY, [(b"n1", A[1])])
    assert n1.status() == (ha.STATE_PRIMARY, [(b"n2", A[2])])
    e2.quiet(0.05)
    e1.quiet(0.01)


# ================================================================ load


def test_pipelining_ipc_client_does_not_starve_ticks():
    """A client pipelining status orders without reading the replies must not hold the
    node's loop: with 0.1 s ticks (death after 0.3 s of silence) no link may die."""
    c = Cluster(tick=0.1)
    hog = None
    try:
        n1, n2 = c.add("n1", 1), c.add("n2", 2)
        be_primary(n1, "n1")
        be_secondary(n2, "n2", n1, "n1")
        ev1, ev2 = n1.events(), n2.events()
        hog = n1.ctl()

        def flood():
            try:
                hog.sendall(_protocol.GETSTATUS_FRAME * 200_000)
            except OSError:
                pass  # closed at the end of the test, still blocked
        threading.Thread(target=flood, daemon=True).start()
        time.sleep(1.0)  # what is tested: 10 ticks of flooding, and no link dies meanwhile
        ev1.quiet(0.01)  # no SECONDARY_DIED
        ev2.quiet(0.01)  # no NOPRIMARY
        assert n2.state == ha.STATE_SECONDARY
        assert [nid for nid, _ in n1.status()[1]] == [b"n2"]
    finally:
        if hog is not None:
            hog.shutdown(socket.SHUT_RDWR)  # wakes the flooding thread
            hog.close()
        c.close()
