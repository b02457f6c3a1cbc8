"""Every row of the transition table (ha-behaviour §4.2), with its reply, the events on the node
and the effects on the other nodes; plus B-03 (phase 0, upgrade), B-11 (joins in progress) and
B-02 (control socket vs. orders in progress). All through the real client on real sockets.
"""

from __future__ import annotations

import socket
import threading

import pytest

import confd_ha as ha
from confd_ha import _io, _protocol, error
from confd_ha.emulator import peer
from emulator_helpers import HA_INFO, HA_INFO_SYNC, Cluster, wait_until

NOPRIMARY, DIED, ARRIVED, INITIALIZED, IS_PRIMARY, IS_NONE, RESULT = range(1, 8)
A = {n: (127, 0, 0, n) for n in range(1, 10)}


@pytest.fixture
def cluster():
    c = Cluster()
    yield c
    c.close()


def be_primary(node, name):
    s = node.ctl()
    ha.beprimary(s, name)
    return s


def be_secondary(node, me, primary, pid, wait=1):
    """Join ``node`` to ``primary`` and wait until the primary lists it (B-26)."""
    s = node.ctl()
    ha.besecondary(s, me, pid, primary.ip, wait)
    if wait:
        # through the control interface: a status() over IPC would replace the control socket
        wait_until(lambda: any(nid == me.encode() for nid, _ in primary.status()[1]))
    return s


def names(status):
    return [(e["nodeid"], e["address"]) for e in status[1]]


@pytest.fixture
def occupied(cluster):
    """Make (ip, ha_port) unbindable for a node by listening there first."""
    socks = []

    def occupy(n):
        s = socket.socket()
        s.bind(("127.0.0.%d" % n, cluster.ha_port))
        s.listen(1)
        socks.append(s)

    yield occupy
    for s in socks:
        s.close()


# ================================================================ beprimary


def test_beprimary_from_none(cluster):
    n1 = cluster.add("n1", 1)
    ev = n1.events()
    s = n1.ctl()
    ha.beprimary(s, "n1")
    assert ev.next() == (IS_PRIMARY, 0)
    assert ha.status(s) == (ha.STATE_PRIMARY, [])
    assert n1.node_id == b"n1"


def test_beprimary_bind_failure_stays_none(cluster, occupied):
    n1 = cluster.add("n1", 1)
    occupied(1)
    ev = n1.events()
    s = n1.ctl()
    with pytest.raises(error.Error) as exc:
        ha.beprimary(s, "n1")
    assert exc.value.confd_errno == error.ERR_HA_BIND
    assert ha.status(s) == (ha.STATE_NONE, [])
    ev.quiet()


def test_beprimary_from_secondary(cluster):
    n1, n2 = cluster.add("n1", 1), cluster.add("n2", 2)
    be_primary(n1, "n1")
    txid = n1.commit([("set", "/x", "1")])
    s2 = be_secondary(n2, "n2", n1, "n1")
    e1, e2 = n1.events(), n2.events()
    ha.beprimary(s2, "n2")
    assert e2.next() == (IS_PRIMARY, 0)
    assert e1.next() == (DIED, (b"n2", A[2]))
    assert ha.status(s2) == (ha.STATE_PRIMARY, [])
    assert n2.get("/x") == "1" and n2.txid == txid  # keeps its data, no copy
    assert n1.ha_status("tok") == (ha.STATE_PRIMARY, [])
    e2.quiet()


def test_beprimary_from_secondary_bind_failure_stays_secondary(cluster, occupied):
    n1, n2 = cluster.add("n1", 1), cluster.add("n2", 2)
    be_primary(n1, "n1")
    s2 = be_secondary(n2, "n2", n1, "n1")
    occupied(2)
    e1, e2 = n1.events(), n2.events()
    with pytest.raises(error.Error) as exc:
        ha.beprimary(s2, "n2")
    assert exc.value.confd_errno == error.ERR_HA_BIND
    assert names(ha.status(s2)) == [("n1", "127.0.0.1")] and ha.status(s2)[0] == ha.STATE_SECONDARY
    e1.quiet()
    e2.quiet(0.01)


def test_beprimary_on_primary_same_name_is_noop(cluster):
    n1, n2 = cluster.add("n1", 1), cluster.add("n2", 2)
    s1 = be_primary(n1, "n1")
    be_secondary(n2, "n2", n1, "n1")
    e1, e2 = n1.events(), n2.events()
    ha.beprimary(s1, "n1")
    assert names(ha.status(s1)) == [("n2", "127.0.0.2")]
    e1.quiet()
    e2.quiet(0.01)


def test_beprimary_on_primary_new_name_renames(cluster):
    n1, n2, n3 = cluster.add("n1", 1), cluster.add("n2", 2), cluster.add("n3", 3)
    s1 = be_primary(n1, "n1")
    s2 = be_secondary(n2, "n2", n1, "n1")
    e1, e2 = n1.events(), n2.events()
    ha.beprimary(s1, "boss")  # B-06
    e1.quiet()
    e2.quiet(0.01)
    assert n1.node_id == b"boss"
    assert names(ha.status(s1)) == [("n2", "127.0.0.2")]   # secondaries kept
    assert names(ha.status(s2)) == [("n1", "127.0.0.1")]   # still the name it was given
    s3 = n3.ctl()
    with pytest.raises(error.Error) as exc:
        ha.besecondary(s3, "n3", "n1", n1.ip, 1)
    assert exc.value.confd_errno == error.ERR_HA_BADNAME
    ha.besecondary(s3, "n3", "boss", n1.ip, 1)
    assert n1.commit([("set", "/y", "2")]).startswith("boss-")


def test_beprimary_on_relay(cluster):
    n1, n2, n3 = cluster.add("n1", 1), cluster.add("n2", 2), cluster.add("n3", 3)
    be_primary(n1, "n1")
    s2 = be_secondary(n2, "n2", n1, "n1")
    ha.berelay(s2)
    be_secondary(n3, "n3", n2, "n2")
    e1, e2, e3 = n1.events(), n2.events(), n3.events()
    ha.beprimary(s2, "n2")  # B-07
    assert e2.next() == (IS_PRIMARY, 0)
    assert e1.next() == (DIED, (b"n2", A[2]))
    assert ha.status(s2) == (ha.STATE_PRIMARY, [{"nodeid": "n3", "address": "127.0.0.3"}])
    e3.quiet()
    assert names(n3.ha_status("tok")) == [("n2", "127.0.0.2")]
    n2.commit([("set", "/from-n2", "v")])  # n3 is now its direct secondary: synchronous
    assert n3.get("/from-n2") == "v"
    e2.quiet(0.01)


# ================================================================ besecondary


@pytest.mark.parametrize("wait", [1, 0])
def test_besecondary_from_none(cluster, wait):
    n1, n2 = cluster.add("n1", 1), cluster.add("n2", 2)
    be_primary(n1, "n1")
    e1, e2 = n1.events(), n2.events()
    s2 = n2.ctl()
    ha.besecondary(s2, "n2", "n1", n1.ip, wait)
    if wait:
        assert e2.next() == (INITIALIZED, 0)  # two fresh nodes: no copy (B-14)
    else:
        assert e2.expect((INITIALIZED, 0), (RESULT, 0))  # B-15, B-26
    assert e1.next() == (ARRIVED, (b"n2", A[2]))
    assert ha.status(s2) == (ha.STATE_SECONDARY, [{"nodeid": "n1", "address": "127.0.0.1"}])
    assert ha.status(n1.ctl())[1] == [{"nodeid": "n2", "address": "127.0.0.2"}]
    e2.quiet()


@pytest.mark.parametrize("wait", [1, 0])
def test_besecondary_failure_stays_none(cluster, wait):
    n1, n2 = cluster.add("n1", 1), cluster.add("n2", 2)
    e2 = n2.events()
    s2 = n2.ctl()
    if wait:
        with pytest.raises(error.Error) as exc:
            ha.besecondary(s2, "n2", "n1", n1.ip, 1)  # n1 is NONE: not listening
        assert exc.value.confd_errno == error.ERR_HA_CONNECT
    else:
        ha.besecondary(s2, "n2", "n1", n1.ip, 0)
        assert e2.next() == (RESULT, error.ERR_HA_CONNECT)
    assert ha.status(s2) == (ha.STATE_NONE, [])
    e2.quiet()


@pytest.mark.parametrize("wait", [1, 0])
def test_besecondary_same_parameters_is_noop(cluster, wait):
    n1, n2 = cluster.add("n1", 1), cluster.add("n2", 2)
    be_primary(n1, "n1")
    s2 = be_secondary(n2, "n2", n1, "n1")
    e1, e2 = n1.events(), n2.events()
    ha.besecondary(s2, "n2", "n1", n1.ip, wait)
    if not wait:
        assert e2.next() == (RESULT, 0)
    e2.quiet()
    e1.quiet(0.01)
    assert ha.status(s2)[0] == ha.STATE_SECONDARY


def test_besecondary_secondary_different_parameters(cluster):
    n1, n2, n3 = cluster.add("n1", 1), cluster.add("n2", 2), cluster.add("n3", 3)
    be_primary(n1, "n1")
    be_primary(n3, "n3")
    s2 = be_secondary(n2, "n2", n1, "n1")
    e1, e2, e3 = n1.events(), n2.events(), n3.events()
    ha.besecondary(s2, "n2", "n3", n3.ip, 1)  # B-08
    assert e2.expect((IS_NONE, 0), (INITIALIZED, 0))
    assert e1.next() == (DIED, (b"n2", A[2]))
    assert e3.next() == (ARRIVED, (b"n2", A[2]))
    assert names(ha.status(s2)) == [("n3", "127.0.0.3")]


def test_besecondary_secondary_renamed_same_primary(cluster):
    n1, n2 = cluster.add("n1", 1), cluster.add("n2", 2)
    be_primary(n1, "n1")
    s2 = be_secondary(n2, "n2", n1, "n1")
    e1, e2 = n1.events(), n2.events()
    ha.besecondary(s2, "n2-new", "n1", n1.ip, 1)  # a different mynodeid is a different call
    assert e2.expect((IS_NONE, 0), (INITIALIZED, 0))
    assert e1.expect((DIED, (b"n2", A[2])), (ARRIVED, (b"n2-new", A[2])))


def test_besecondary_on_primary(cluster):
    n1, n2, n3 = cluster.add("n1", 1), cluster.add("n2", 2), cluster.add("n3", 3)
    s1 = be_primary(n1, "n1")
    be_primary(n3, "n3")
    be_secondary(n2, "n2", n1, "n1")
    e1, e2, e3 = n1.events(), n2.events(), n3.events()
    ha.besecondary(s1, "n1", "n3", n3.ip, 0)
    assert e1.expect((IS_NONE, 0), (INITIALIZED, 0), (RESULT, 0))
    assert e2.next() == (NOPRIMARY, error.ERR_HA_CLOSED)
    assert e3.next() == (ARRIVED, (b"n1", A[1]))
    assert n2.ha_status("tok") == (ha.STATE_NONE, [])
    e1.quiet(0.01)


def test_besecondary_on_primary_join_fails_leaves_none(cluster):
    n1, n2 = cluster.add("n1", 1), cluster.add("n2", 2)
    s1 = be_primary(n1, "n1")
    be_secondary(n2, "n2", n1, "n1")
    e1, e2 = n1.events(), n2.events()
    with pytest.raises(error.Error) as exc:
        ha.besecondary(s1, "n1", "nobody", "127.0.0.7", 1)
    assert exc.value.confd_errno == error.ERR_HA_CONNECT
    assert e1.next() == (IS_NONE, 0)  # B-08: the benone step happened
    assert e2.next() == (NOPRIMARY, error.ERR_HA_CLOSED)
    assert ha.status(s1) == (ha.STATE_NONE, [])


def test_besecondary_relay_same_parameters_stops_relaying(cluster):
    n1, n2, n3 = cluster.add("n1", 1), cluster.add("n2", 2), cluster.add("n3", 3)
    be_primary(n1, "n1")
    s2 = be_secondary(n2, "n2", n1, "n1")
    ha.berelay(s2)
    be_secondary(n3, "n3", n2, "n2")
    e1, e2, e3 = n1.events(), n2.events(), n3.events()
    ha.besecondary(s2, "n2", "n1", n1.ip, 1)
    assert ha.status(s2) == (ha.STATE_SECONDARY, [{"nodeid": "n1", "address": "127.0.0.1"}])
    assert e3.next() == (NOPRIMARY, error.ERR_HA_CLOSED)
    e2.quiet()
    e1.quiet(0.01)
    s3 = n3.ctl()
    with pytest.raises(error.Error) as exc:  # n2 no longer listens
        ha.besecondary(s3, "n3", "n2", n2.ip, 1)
    assert exc.value.confd_errno == error.ERR_HA_CONNECT


def test_besecondary_relay_different_parameters(cluster):
    n1, n2, n3, n4 = (cluster.add("n%d" % i, i) for i in range(1, 5))
    be_primary(n1, "n1")
    be_primary(n4, "n4")
    s2 = be_secondary(n2, "n2", n1, "n1")
    ha.berelay(s2)
    be_secondary(n3, "n3", n2, "n2")
    e1, e2, e3, e4 = n1.events(), n2.events(), n3.events(), n4.events()
    ha.besecondary(s2, "n2", "n4", n4.ip, 1)
    assert e2.expect((IS_NONE, 0), (INITIALIZED, 0))
    assert e1.next() == (DIED, (b"n2", A[2]))
    assert e3.next() == (NOPRIMARY, error.ERR_HA_CLOSED)
    assert e4.next() == (ARRIVED, (b"n2", A[2]))
    assert ha.status(s2) == (ha.STATE_SECONDARY, [{"nodeid": "n4", "address": "127.0.0.4"}])


# ================================================================ benone


def test_benone_on_none_is_noop(cluster):
    n1 = cluster.add("n1", 1)
    ev = n1.events()
    s = n1.ctl()
    ha.benone(s)
    assert ha.status(s) == (ha.STATE_NONE, [])
    ev.quiet()


def test_benone_on_secondary(cluster):
    n1, n2 = cluster.add("n1", 1), cluster.add("n2", 2)
    be_primary(n1, "n1")
    s2 = be_secondary(n2, "n2", n1, "n1")
    e1, e2 = n1.events(), n2.events()
    ha.benone(s2)
    assert e2.next() == (IS_NONE, 0)
    assert e1.next() == (DIED, (b"n2", A[2]))
    assert ha.status(s2) == (ha.STATE_NONE, [])
    e2.quiet()


def test_benone_on_primary(cluster):
    n1, n2, n3 = cluster.add("n1", 1), cluster.add("n2", 2), cluster.add("n3", 3)
    s1 = be_primary(n1, "n1")
    be_secondary(n2, "n2", n1, "n1")
    be_secondary(n3, "n3", n1, "n1")
    e1, e2, e3 = n1.events(), n2.events(), n3.events()
    ha.benone(s1)
    assert e1.next() == (IS_NONE, 0)
    e1.quiet()  # B-21: no SECONDARY_DIED for the dropped secondaries
    assert e2.next() == (NOPRIMARY, error.ERR_HA_CLOSED)
    assert e3.next() == (NOPRIMARY, error.ERR_HA_CLOSED)
    assert ha.status(s1) == (ha.STATE_NONE, [])
    assert n2.ha_status() == (ha.STATE_NONE, [])
    s2 = n2.ctl()
    with pytest.raises(error.Error) as exc:
        ha.besecondary(s2, "n2", "n1", n1.ip, 1)  # the listener is closed
    assert exc.value.confd_errno == error.ERR_HA_CONNECT


def test_benone_on_relay(cluster):
    n1, n2, n3 = cluster.add("n1", 1), cluster.add("n2", 2), cluster.add("n3", 3)
    be_primary(n1, "n1")
    s2 = be_secondary(n2, "n2", n1, "n1")
    ha.berelay(s2)
    be_secondary(n3, "n3", n2, "n2")
    e1, e2, e3 = n1.events(), n2.events(), n3.events()
    ha.benone(s2)
    assert e2.next() == (IS_NONE, 0)
    assert e1.next() == (DIED, (b"n2", A[2]))
    assert e3.next() == (NOPRIMARY, error.ERR_HA_CLOSED)
    assert ha.status(s2) == (ha.STATE_NONE, [])


# ================================================================ berelay


def test_berelay_on_secondary(cluster):
    n1, n2 = cluster.add("n1", 1), cluster.add("n2", 2)
    be_primary(n1, "n1")
    s2 = be_secondary(n2, "n2", n1, "n1")
    e1, e2 = n1.events(), n2.events()
    ha.berelay(s2)
    e2.quiet()  # no "is relay" event exists
    e1.quiet(0.01)
    assert ha.status(s2) == (ha.STATE_SECONDARY_RELAY, [{"nodeid": "n1", "address": "127.0.0.1"}])
    ha.berelay(s2)  # B-09: idempotent
    assert ha.status(s2)[0] == ha.STATE_SECONDARY_RELAY
    e2.quiet(0.01)


def test_berelay_bind_failure_stays_secondary(cluster, occupied):
    n1, n2 = cluster.add("n1", 1), cluster.add("n2", 2)
    be_primary(n1, "n1")
    s2 = be_secondary(n2, "n2", n1, "n1")
    occupied(2)
    with pytest.raises(error.Error) as exc:
        ha.berelay(s2)
    assert exc.value.confd_errno == error.ERR_HA_BIND
    assert ha.status(s2)[0] == ha.STATE_SECONDARY


def test_berelay_on_none_and_primary_refused(cluster):
    n1 = cluster.add("n1", 1)
    s1 = n1.ctl()
    for _ in range(2):
        with pytest.raises(error.Error) as exc:
            ha.berelay(s1)
        assert exc.value.confd_errno == error.ERR_BADSTATE
        ha.beprimary(s1, "n1")
    assert ha.status(s1)[0] == ha.STATE_PRIMARY


# ================================================================ secondary_dead


def test_secondary_dead_known(cluster):
    n1, n2, n3 = cluster.add("n1", 1), cluster.add("n2", 2), cluster.add("n3", 3)
    s1 = be_primary(n1, "n1")
    be_secondary(n2, "n2", n1, "n1")
    be_secondary(n3, "n3", n1, "n1")
    e1, e2, e3 = n1.events(), n2.events(), n3.events()
    ha.secondary_dead(s1, "n2")
    assert e1.next() == (DIED, (b"n2", A[2]))
    assert e2.next() == (NOPRIMARY, error.ERR_HA_CLOSED)
    assert names(ha.status(s1)) == [("n3", "127.0.0.3")]
    e3.quiet()


def test_secondary_dead_unknown_or_not_primary_is_noop(cluster):
    n1, n2, n3 = cluster.add("n1", 1), cluster.add("n2", 2), cluster.add("n3", 3)
    s1 = be_primary(n1, "n1")
    s2 = be_secondary(n2, "n2", n1, "n1")
    ha.berelay(s2)
    be_secondary(n3, "n3", n2, "n2")
    e1, e2, e3 = n1.events(), n2.events(), n3.events()
    ha.secondary_dead(s1, "ghost")
    ha.secondary_dead(s1, ha.Value(5))  # exact term equality: not the binary "5"
    ha.secondary_dead(s2, "n3")  # B-10: a relay naming its sub-secondary
    s_none = cluster.add("n4", 4).ctl()
    ha.secondary_dead(s_none, "n2")
    for e in (e1, e2, e3):
        e.quiet(0.1)
    assert names(ha.status(s1)) == [("n2", "127.0.0.2")]
    assert ha.status(s2)[0] == ha.STATE_SECONDARY_RELAY


# ================================================================ status in every state


def test_status_lists_per_state(cluster):
    n1, n2, n3, n4 = (cluster.add("n%d" % i, i) for i in range(1, 5))
    assert n1.ha_status("tok") == (ha.STATE_NONE, [])
    be_primary(n1, "n1")
    s2 = be_secondary(n2, "n2", n1, "n1")
    be_secondary(n4, "n4", n1, "n1")
    ha.berelay(s2)
    be_secondary(n3, "n3", n2, "n2")
    assert names(n1.ha_status("tok")) == [("n2", "127.0.0.2"), ("n4", "127.0.0.4")]
    assert ha.status(s2)[0] == ha.STATE_SECONDARY_RELAY
    assert names(ha.status(s2)) == [("n1", "127.0.0.1"), ("n3", "127.0.0.3")]
    assert n3.ha_status("tok") == (ha.STATE_SECONDARY, [{"nodeid": "n2", "address": "127.0.0.2"}])
    assert n1.status() == (3, [(b"n2", A[2]), (b"n4", A[4])])


# ================================================================ B-03: phase 0, upgrade


def test_start_phase_zero_refuses_everything_but_status(cluster):
    n1 = cluster.add("n1", 1, start_phase=0)
    ev = n1.events()
    s = n1.ctl()
    assert ha.status(s) == (ha.STATE_NONE, [])
    for call in (lambda: ha.beprimary(s, "n1"), lambda: ha.benone(s), lambda: ha.berelay(s),
                 lambda: ha.secondary_dead(s, "x"),
                 lambda: ha.besecondary(s, "n1", "n2", "127.0.0.2", 1)):
        with pytest.raises(error.Error) as exc:
            call()
        assert exc.value.confd_errno == error.ERR_BADSTATE
    ha.besecondary(s, "n1", "n2", "127.0.0.2", 0)
    assert ev.next() == (RESULT, error.ERR_BADSTATE)
    with pytest.raises(ValueError):
        n1.set_start_phase(2)  # one step at a time
    n1.set_start_phase(1)
    ha.beprimary(s, "n1")
    assert ev.next() == (IS_PRIMARY, 0)
    n1.set_start_phase(2)
    with pytest.raises(ValueError):
        n1.set_start_phase(1)
    assert n1.start_phase == 2


def test_upgrade_flag(cluster):
    n1 = cluster.add("n1", 1)
    ev = n1.events()
    s = n1.ctl()
    n1.set_upgrade(True)
    with pytest.raises(error.Error) as exc:
        ha.beprimary(s, "n1")
    assert exc.value.confd_errno == error.ERR_HA_WITH_UPGRADE
    with pytest.raises(error.Error) as exc:
        ha.besecondary(s, "n1", "n2", "127.0.0.2", 1)
    assert exc.value.confd_errno == error.ERR_HA_WITH_UPGRADE
    ha.besecondary(s, "n1", "n2", "127.0.0.2", 0)
    assert ev.next() == (RESULT, error.ERR_HA_WITH_UPGRADE)
    ha.benone(s)  # not affected
    n1.set_upgrade(False)
    ha.beprimary(s, "n1")
    assert ev.next() == (IS_PRIMARY, 0)


def test_phase_zero_checked_before_upgrade(cluster):
    n1 = cluster.add("n1", 1, start_phase=0)
    n1.set_upgrade(True)
    s = n1.ctl()
    with pytest.raises(error.Error) as exc:
        ha.beprimary(s, "n1")
    assert exc.value.confd_errno == error.ERR_BADSTATE


# ================================================================ B-11: a join in progress


@pytest.fixture
def mute_primary(cluster):
    """A fake primary at 127.0.0.9 that accepts joins and never answers."""
    srv = socket.create_server(("127.0.0.9", cluster.ha_port))
    accepted = []

    def loop():
        while True:
            try:
                accepted.append(srv.accept()[0])
            except OSError:
                return

    threading.Thread(target=loop, daemon=True).start()
    yield "127.0.0.9"
    srv.close()
    for s in accepted:
        s.close()


@pytest.mark.parametrize("canceller", ["benone", "beprimary", "besecondary"])
def test_pending_async_join_cancelled_by_later_order(cluster, mute_primary, canceller):
    n1 = cluster.add("n1", 1, tick_timeout=5)
    n2 = cluster.add("n2", 2)
    be_primary(n2, "n2")
    ev = n1.events()
    s = n1.ctl()
    ha.besecondary(s, "n1", "mute", mute_primary, 0)
    wait_until(lambda: n1.joining)
    assert ha.status(s) == (ha.STATE_NONE, [])  # B-11: NONE while joining
    with pytest.raises(error.Error):
        ha.berelay(s)  # BADSTATE, and it does not cancel the join
    ha.secondary_dead(s, "x")  # does not cancel either
    assert n1.joining
    if canceller == "benone":
        ha.benone(s)
        assert ev.next() == (RESULT, error.ERR_HA_CLOSED)
        assert ha.status(s) == (ha.STATE_NONE, [])
    elif canceller == "beprimary":
        ha.beprimary(s, "n1")
        assert ev.expect((RESULT, error.ERR_HA_CLOSED), (IS_PRIMARY, 0))
    else:
        ha.besecondary(s, "n1", "n2", n2.ip, 1)
        assert ev.expect((RESULT, error.ERR_HA_CLOSED), (INITIALIZED, 0))
    assert not n1.joining
    ev.quiet()


def test_join_survives_control_socket_replacement(cluster, mute_primary):
    n1 = cluster.add("n1", 1, tick_timeout=0.4)
    ev = n1.events()
    s = n1.ctl()
    s.sendall(_protocol.encode_order(_protocol.BESECONDARY, b"n1", b"mute",
                                     (_protocol.AF_INET, socket.inet_aton(mute_primary)), 1))
    wait_until(lambda: n1.joining)
    s_new = n1.ctl()  # B-02 / B-11: replacing the socket does not cancel the join
    assert ha.status(s_new) == (ha.STATE_NONE, [])
    assert n1.joining
    # the attempt ends by its own deadline (3 × 0.4 s), reply discarded: the old socket is closed
    with pytest.raises(ha.error.EOF):
        _io.read_frame(s)
    wait_until(lambda: not n1.joining, timeout=3)
    assert "HA_CLOSED" in n1.decisions[-1]
    ev.quiet(0.05)  # synchronous call: no BESECONDARY_RESULT


def test_events_of_one_order_go_out_together_then_its_reply(cluster, mute_primary):
    """B-05 / B-27: a beprimary that cancels an async join emits BESECONDARY_RESULT 26 and
    IS_PRIMARY together and replies at once, so a single-threaded framework that acknowledges
    HA_INFO_SYNC events only after the call returns does not deadlock. The engine waits for
    both acknowledgements before its next work item."""
    n1 = cluster.add("n1", 1, tick_timeout=5)
    sync = n1.events(HA_INFO | HA_INFO_SYNC)
    s = n1.ctl(timeout=1.0)
    ha.besecondary(s, "n1", "mute", mute_primary, 0)
    wait_until(lambda: n1.joining)
    ha.beprimary(s, "n1")  # nothing acknowledged yet: the reply must not wait
    assert sync.expect((RESULT, error.ERR_HA_CLOSED), (IS_PRIMARY, 0))
    assert not n1.joining and n1.state == ha.STATE_PRIMARY
    s.sendall(_protocol.BENONE_FRAME)  # the next work item waits for both acknowledgements
    s.settimeout(0.2)
    with pytest.raises(socket.timeout):
        s.recv(1)
    sync.ack()
    with pytest.raises(socket.timeout):
        s.recv(1)
    sync.ack()
    s.settimeout(2.0)
    assert _protocol.decode(_io.read_frame(s)) == "ok"
    assert sync.next() == (IS_NONE, 0)
    sync.ack()
    s.close()


def _join_steps_crash(*args, **kwargs):
    raise RuntimeError("injected fault in the join sequence")


@pytest.mark.parametrize("wait", [1, 0])
def test_join_task_that_fails_unexpectedly_ends_as_ha_closed(cluster, monkeypatch, caplog, wait):
    """Fault injection: an unexpected exception inside a join is logged and ends the attempt
    with HA_CLOSED (26) -- a reply for a synchronous call, BESECONDARY_RESULT otherwise."""
    n1, n2 = cluster.add("n1", 1), cluster.add("n2", 2)
    s1 = be_primary(n1, "n1")
    ev = n2.events()
    monkeypatch.setattr(peer, "_join_steps", _join_steps_crash)
    s2 = n2.ctl(timeout=2.0)
    if wait:
        with pytest.raises(error.Error) as exc:
            ha.besecondary(s2, "n2", "n1", n1.ip, 1)
        assert exc.value.confd_errno == error.ERR_HA_CLOSED
    else:
        ha.besecondary(s2, "n2", "n1", n1.ip, 0)
        assert ev.next(timeout=2.0) == (RESULT, error.ERR_HA_CLOSED)
    assert not n2.joining and n2.state == ha.STATE_NONE
    assert "injected fault" in caplog.text
    monkeypatch.undo()
    ha.besecondary(s2, "n2", "n1", n1.ip, 1)  # the node is fine afterwards
    assert n2.state == ha.STATE_SECONDARY
    s1.close()
    s2.close()
