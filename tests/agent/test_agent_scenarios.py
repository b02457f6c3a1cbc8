"""The agent's scenarios (issue 12): three HA nodes, three agents, three etcd members.

Each scenario runs on emulated nodes (``[emulator]``) and, when the user points the suite at a
ConfD installation (``--realconfd DIR`` or ``REALCONFD_DIR``), on real ConfD nodes too
(``[confd]``, tests/agent/real_nodes.py); without one the live variants skip.

Every test asserts that the checker (each node's HA state read without an HA socket -- the
emulator's control endpoint, ConfD's ``/confd-state/ha/mode`` -- every 50 ms) never saw two
primaries at once, and that the token never reached the log.
Timings: ttl 2 s, loop_wait 0.25 s, order_timeout 0.5 s, tick timeout 0.5 s.
"""

from __future__ import annotations

import functools
import itertools
import logging
import os
import time

import pytest

from confd_ha import STATE_NONE, STATE_PRIMARY

if os.environ.get("CI"):
    import httpx  # noqa: F401 -- in CI the agent's dependencies must be installed
else:
    pytest.importorskip("httpx", reason="the agent needs httpx: pip install 'confd-ha[agent]'")

from confd_ha.agent import ops  # noqa: E402
from confd_ha.agent.core import AgentError  # noqa: E402
from confd_ha.testing.agent_world import NAMES, TOKEN, World  # noqa: E402

ETCD_PREFIX = "127.82.0."   # the etcd fixture's addresses (conftest.py)
TTL = 2
TICK = 0.5
_k = itertools.count(1)


def emulator_only(reason_attr: str):
    """The scenario needs what only the emulator has (the ``Nodes`` attribute naming why not
    is ``reason_attr``): the live variant skips, saying why."""
    def mark(fn):
        fn.emulator_only = reason_attr
        return fn
    return mark


@pytest.fixture(params=["emulator", "confd"])
def world(request, etcd):
    make_nodes = None
    if request.param == "confd":
        if not (request.config.getoption("--realconfd") or os.environ.get("REALCONFD_DIR")):
            pytest.skip("live variant on real ConfD nodes: none given (--realconfd DIR or "
                        "REALCONFD_DIR=DIR, a ConfD 8.2.5 installation; CI has none)")
        dist = request.getfixturevalue("realconfd")
        from .real_nodes import RealNodes

        why = getattr(request.function, "emulator_only", None)
        if why:
            pytest.skip("live: " + getattr(RealNodes, why))
        make_nodes = functools.partial(RealNodes, dist=dist, tick_timeout=TICK)
    for i in range(3):   # a test that stopped or froze a member leaves it running again
        if not etcd.running(i):
            etcd.start(i)
        etcd.thaw(i)
    w = World(next(_k), etcd, tick_timeout=TICK, nodes=make_nodes)
    try:
        yield w
        w.assert_safe()
    finally:
        if request.param == "confd" and w.checker is not None:
            period = w.checker.period()
            print("\n  live sampling: %d samples, period median %.3f s, p99 %.3f s, max %.3f s;"
                  " one sample took median %.3f s, max %.3f s" % (
                      period["samples"], period["period_median"], period["period_p99"],
                      period["period_max"], period["read_median"], period["read_max"]))
        w.close()


def formed_world(world: World) -> int:
    world.start_all()
    return world.wait_formed(timeout=15)


def others(p: int) -> list:
    return [i for i in range(3) if i != p]


def report(what: str, seconds: float) -> None:
    print("\n  %s: %.3f s" % (what, seconds))


# ---------------------------------------------------------------- scenarios


def test_first_start(world):
    world.start_all()
    took = world.wait("the cluster forms", world.formed, 15)
    report("first start: formed in", took)
    p = world.primary_index()
    view = world.ops(ops.cluster_view)
    assert view["leader"]["node"] == NAMES[p]
    assert {m["node"]: m["state"] for m in view["members"]}[NAMES[p]] == "primary"


def test_primary_node_killed_agent_alive(world):
    p = formed_world(world)
    t0 = time.monotonic()
    world.nodes.kill(p)
    took = world.failover_time(t0, p, 5)
    report("node kill -9, agent alive: failover", took)
    assert took < 1.0
    world.wait_formed(members=others(p))
    view = world.ops(ops.cluster_view)
    dead = {m["node"]: m for m in view["members"]}[NAMES[p]]
    assert dead["state"] == "unknown" and "not reachable" in dead["health"]


def test_primary_node_and_agent_killed(world):
    p = formed_world(world)
    t0 = time.monotonic()
    world.crash_agent(p)
    world.nodes.kill(p)
    took = world.failover_time(t0, p, TTL + 3)
    report("node and agent killed: failover", took)
    assert took < TTL + 1.0
    world.wait_formed(members=others(p))


@emulator_only("no_partition")
def test_primary_partitioned_from_secondaries(world):
    p = formed_world(world)
    world.nodes.partition(p, others(p))
    # The secondaries lose their primary (no ticks); the leader keeps its key and its node.
    world.wait("both secondaries lost the primary",
               lambda: all(world.states()[j] == STATE_NONE for j in others(p)), 10)
    t0 = time.monotonic()
    world.observe(TTL + 0.5)
    assert all(s.states[p] == STATE_PRIMARY and s.states.count(STATE_PRIMARY) == 1
               for s in world.since(t0))
    world.nodes.heal(p)
    took = world.formed_after(timeout=20, primary=p)
    report("partition healed: secondaries back in", took)


def test_primary_agent_cut_off_from_etcd(world):
    p = formed_world(world)
    t0 = time.monotonic()
    world.cut(p)
    demoted = world.wait("node %s demoted" % NAMES[p],
                         lambda: world.states()[p] != STATE_PRIMARY, TTL + 2)
    report("agent cut off: demoted after", demoted)
    assert demoted < TTL
    took = world.failover_time(t0, p, TTL + 5)
    report("agent cut off: failover", took)
    world.restore(p)
    world.wait_formed(timeout=15)
    assert world.primary_index() != p


def _etcd_leader(world) -> int:
    import json
    import urllib.request

    ids = []
    for url in world.etcd.endpoints:
        req = urllib.request.Request(url + "/v3/maintenance/status", data=b"{}",
                                     headers={"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=2) as r:
            doc = json.load(r)
        ids.append((doc["header"]["member_id"], doc["leader"]))
    return [m for m, _ in ids].index(ids[0][1])


def test_loss_of_one_etcd_member(world):
    p = formed_world(world)
    before = world.states()
    lost = _etcd_leader(world)
    t0 = time.monotonic()
    world.etcd.stop(lost)
    world.observe(2 * TTL)
    changed = [s for s in world.since(t0) if s.states != before]
    assert not changed, "roles changed: %s" % changed[:3]
    assert world.formed(primary=p)
    world.etcd.start(lost)


def test_loss_of_etcd_quorum(world):
    formed_world(world)
    frozen = [i for i in range(3) if i != _etcd_leader(world)]
    for i in frozen:
        world.etcd.freeze(i)
    try:
        demoted = world.wait("the primary demoted",
                             lambda: STATE_PRIMARY not in world.states(), TTL + 2)
        report("quorum lost: primary demoted after", demoted)
        # The etcd leader renews leases until it steps down (no quorum for an election
        # timeout, 0.5 s here); the agent demotes its node margin (0.75 s) before ttl after
        # the last renewal.
        assert demoted < TTL + 1
        t1 = time.monotonic()
        world.observe(2 * TTL)
        promoted = [s for s in world.since(t1) if STATE_PRIMARY in s.states]
        assert not promoted, "promoted without quorum: %s" % promoted[:3]
    finally:
        for i in frozen:
            world.etcd.thaw(i)
    took = world.formed_after(timeout=20)
    report("quorum back: cluster formed again after", took)


def test_switchover(world):
    with pytest.raises(ops.NoLeader):
        world.ops(ops.switchover, "n2", timeout=5)
    p = formed_world(world)
    to = others(p)[0]
    with pytest.raises(ops.NoSuchMember):
        world.ops(ops.switchover, "n9", timeout=5)
    with pytest.raises(ops.OpsError, match="already the leader"):
        world.ops(ops.switchover, NAMES[p], timeout=5)
    t0 = time.monotonic()
    result = world.ops(ops.switchover, NAMES[to], timeout=15)
    report("switchover: done after", time.monotonic() - t0)
    assert result["leader"] == NAMES[to] and result["from"] == NAMES[p]
    world.wait_formed(primary=to)
    view = world.ops(ops.cluster_view)
    assert view["request"] is None and view["leader"]["node"] == NAMES[to]


def test_switchover_refuses_a_candidate_not_in_sync(world):
    p = formed_world(world)
    to = others(p)[0]
    world.nodes.kill(to)
    world.wait("its agent saw it", lambda: {m["node"]: m["state"] for m in world.ops(
        ops.cluster_view)["members"]}[NAMES[to]] == "unknown", 5)
    with pytest.raises(ops.NotInSync, match="candidate not in sync"):
        world.ops(ops.switchover, NAMES[to], timeout=5)


def test_failover(world):
    p = formed_world(world)
    t0 = time.monotonic()
    result = world.ops(ops.failover, timeout=15)
    report("failover (no target): done after", time.monotonic() - t0)
    assert result["leader"] != NAMES[p]
    q = world.wait_formed()
    assert q != p
    to = p   # back to the first one, by name
    result = world.ops(ops.failover, NAMES[to], timeout=15)
    assert result["leader"] == NAMES[to]
    world.wait_formed(primary=to)


def test_pause_and_resume(world):
    p = formed_world(world)
    world.ops(ops.pause)
    world.wait("every agent publishes paused", lambda: all(
        m["paused"] for m in world.ops(ops.cluster_view)["members"]), 5)
    world.nodes.kill(p)
    t0 = time.monotonic()
    world.observe(TTL + 1)
    assert not any(STATE_PRIMARY in s.states for s in world.since(t0)), \
        "an agent promoted during the pause"
    assert world.ops(ops.cluster_view)["leader"]["node"] == NAMES[p]
    t1 = time.monotonic()
    world.ops(ops.resume)
    took = world.failover_time(t1, p, TTL + 5)
    report("resume after the primary died in a pause: failover", took)
    world.wait_formed(members=others(p))


def test_node_rejoins_after_restart(world):
    p = formed_world(world)
    world.nodes.kill(p)
    q = world.wait_formed(members=others(p))
    world.nodes.start(p)
    took = world.formed_after(primary=q)
    report("restarted node rejoined after", took)
    s = [j for j in range(3) if j not in (p, q)][0]
    world.nodes.restart(s)
    world.wait_formed(primary=q)


def test_wrong_token(world):
    world.start_agent(0)
    world.start_agent(1)
    world.wait_formed(members=(0, 1))
    world.start_agent(2, token="not-the-cluster-token")
    exc = world.agent_error(2, timeout=15)
    assert isinstance(exc, AgentError)
    assert "the primary refused this node's HA token" in str(exc)
    assert "not-the-cluster-token" not in str(exc)
    world.agents[2] = world.runs[2] = None
    errors = world.log.texts(logging.ERROR)
    assert any("refused this node's HA token" in t for t in errors), errors
    assert not any("not-the-cluster-token" in t for t in world.log.texts())
    assert NAMES[2] not in {m["node"] for m in world.ops(ops.cluster_view)["members"]}
    assert world.formed(members=(0, 1))


def test_control_socket_taken_by_another_client(world):
    p = formed_world(world)
    with world.nodes.connect_ha(p, TOKEN):
        world.wait("the agent noticed", lambda: any(
            "was replaced by another client" in t for t in world.log.texts(logging.WARNING)), 5)
    assert world.formed(primary=p)


def test_leader_agent_stops_cleanly(world):
    p = formed_world(world)
    t0 = time.monotonic()
    world.stop_agent(p)    # demotes its node, then revokes its lease
    took = world.failover_time(t0, p, 5)
    report("leader agent stopped: failover", took)
    assert took < 1.0
    assert NAMES[p] not in {m["node"] for m in world.ops(ops.cluster_view)["members"]}
    world.start_agent(p)
    world.wait_formed()


def test_agent_restart_keeps_the_primary(world):
    p = formed_world(world)
    t0 = time.monotonic()
    world.crash_agent(p)   # the node stays primary; the lease is left to run out
    # The new run takes the leader key back under its own lease. It must get that lease
    # first: without one it demotes its node, as it must (the old key may vanish any moment).
    # A lease grant is a raft write; on a loaded host it can miss the default etcd deadline at
    # ttl 2 (0.5 s): 1 s (the default from ttl 4 on) keeps this about the take-over.
    world.start_agent(p, etcd_timeout=1.0)
    world.wait("the leader key is under the new lease", lambda: world.ops(
        ops.cluster_view)["leader"]["node"] == NAMES[p] and world.agents[p].is_primary, 5)
    world.observe(TTL + 0.5)   # past the old lease's expiry
    lapses = [s for s in world.since(t0) if s.states[p] != STATE_PRIMARY]
    assert not lapses, "node %s was not primary at %d samples (first %s); agent warnings: %s" % (
        NAMES[p], len(lapses), lapses[0], world.log.texts(logging.WARNING)[-5:])
    assert world.formed(primary=p)


def test_failover_to_a_dead_agent_times_out_and_recovers(world):
    p = formed_world(world)
    dead = others(p)[0]
    world.crash_agent(dead)   # its record stays until its lease runs out
    with pytest.raises(ops.OpsTimeout, match="not done within"):
        world.ops(ops.failover, NAMES[dead], timeout=1)
    # The key went to a lease nobody renews: after it expires the others elect a leader.
    took = world.formed_after(timeout=4 * TTL + 5, members=others(dead))
    report("failover to a dead agent: cluster back after", took)
