"""Every order in every state (beprimary, besecondary, benone, berelay), with its reply, the
events on the node and the effects on the other nodes, as ConfD 8.2.5 does them
(docs/conformance.md, "Events", "Names", "Listing", "Relays"; the scenarios orders_*.py and
joins.py), plus what only the emulator can provoke: bind failures (HA_BIND). All through the
real client on real sockets. secondary_dead, status, the start phases, the upgrade flag and
orders during a join are in test_emulator_orders.py.
"""

from __future__ import annotations

import socket

import pytest

import confd_ha as ha
from confd_ha import error
from emulator_helpers import (
    A, ARRIVED, DIED, INITIALIZED, IS_NONE, IS_PRIMARY, NOPRIMARY, RESULT, be_primary,
    be_secondary, names, primary_with, relay_chain,
)


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
    n1, n2, _, s2 = primary_with(cluster, 2)
    occupied(2)
    e1, e2 = n1.events(), n2.events()
    with pytest.raises(error.Error) as exc:
        ha.beprimary(s2, "n2")
    assert exc.value.confd_errno == error.ERR_HA_BIND
    assert names(ha.status(s2)) == [("n1", "127.0.0.1")] and ha.status(s2)[0] == ha.STATE_SECONDARY
    e1.quiet()
    e2.quiet(0.01)


def test_beprimary_on_primary_same_name_is_noop(cluster):
    n1, n2, s1, _ = primary_with(cluster, 2)
    e1, e2 = n1.events(), n2.events()
    ha.beprimary(s1, "n1")
    assert names(ha.status(s1)) == [("n2", "127.0.0.2")]
    e1.quiet()
    e2.quiet(0.01)


def test_beprimary_on_primary_new_name_keeps_the_old_name(cluster):
    """docs/conformance.md "Names" (primary_beprimary_rename): ok, and nothing changes -- the
    node keeps its first name (and its secondaries); a join naming the new one fails."""
    n1, n2, n3 = cluster.add("n1", 1), cluster.add("n2", 2), cluster.add("n3", 3)
    s1 = be_primary(n1, "n1")
    s2 = be_secondary(n2, "n2", n1, "n1")
    e1, e2, e3 = n1.events(), n2.events(), n3.events()
    ha.beprimary(s1, "boss")
    e1.quiet()
    e2.quiet(0.01)
    assert n1.node_id == b"n1"
    assert names(ha.status(s1)) == [("n2", "127.0.0.2")]   # secondaries kept
    assert names(ha.status(s2)) == [("n1", "127.0.0.1")]
    s3 = n3.ctl()
    with pytest.raises(error.Error) as exc:
        ha.besecondary(s3, "n3", "boss", n1.ip, 1)
    assert exc.value.confd_errno == error.ERR_HA_BADNAME
    assert e3.next() == (IS_NONE, 0)
    ha.besecondary(s3, "n3", "n1", n1.ip, 1)
    assert e3.next() == (INITIALIZED, 1)
    assert e1.next() == (ARRIVED, (b"n3", A[3]))
    assert n1.commit([("set", "/y", "2")]).startswith("n1-")   # the txid carries the old name


def test_beprimary_on_relay(cluster):
    n1, n2, n3, s2 = relay_chain(cluster)
    e1, e2, e3 = n1.events(), n2.events(), n3.events()
    # docs/conformance.md "Relays" (relay_beprimary): the relay drops the nodes behind it;
    # the primary reports both gone, the relay first.
    ha.beprimary(s2, "n2")
    assert e2.next() == (IS_PRIMARY, 0)
    assert e1.expect((DIED, (b"n2", A[2])), (DIED, (b"n3", A[3])))
    assert e3.expect((NOPRIMARY, error.ERR_HA_CLOSED), (IS_NONE, 0))
    assert ha.status(s2) == (ha.STATE_PRIMARY, [])
    assert n1.ha_status("tok") == (ha.STATE_PRIMARY, [])
    assert n3.ha_status("tok") == (ha.STATE_NONE, [])
    n2.commit([("set", "/from-n2", "v")])  # not replicated: n3 is no longer attached
    assert n3.get("/from-n2") is None
    e2.quiet(0.01)


# ================================================================ besecondary


@pytest.mark.parametrize("wait", [1, 0])
def test_besecondary_from_none(cluster, wait):
    n1, n2 = cluster.add("n1", 1), cluster.add("n2", 2)
    be_primary(n1, "n1")
    e1, e2 = n1.events(), n2.events()
    s2 = n2.ctl()
    ha.besecondary(s2, "n2", "n1", n1.ip, wait)
    # docs/conformance.md "Events": copy=1 on every join, even between two fresh nodes; an
    # asynchronous join reports BESECONDARY_RESULT 0 first.
    if wait:
        assert e2.next() == (INITIALIZED, 1)
    else:
        assert e2.expect((RESULT, 0), (INITIALIZED, 1))
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
    # docs/conformance.md "Events" (join_nothing_listens): a failed join ends with IS_NONE.
    assert e2.next() == (IS_NONE, 0)
    assert ha.status(s2) == (ha.STATE_NONE, [])
    e2.quiet()


@pytest.mark.parametrize("wait", [1, 0])
def test_besecondary_same_parameters_is_noop(cluster, wait):
    n1, n2, _, s2 = primary_with(cluster, 2)
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
    # docs/conformance.md "Events" (secondary_besecondary_other): only what the join gives,
    # no IS_NONE for the implied step; the old primary sees it go.
    ha.besecondary(s2, "n2", "n3", n3.ip, 1)
    assert e2.next() == (INITIALIZED, 1)
    assert e1.next() == (DIED, (b"n2", A[2]))
    assert e3.next() == (ARRIVED, (b"n2", A[2]))
    assert names(ha.status(s2)) == [("n3", "127.0.0.3")]
    e2.quiet()


def test_besecondary_secondary_renamed_same_primary(cluster):
    n1, n2, _, s2 = primary_with(cluster, 2)
    e1, e2 = n1.events(), n2.events()
    # a different mynodeid is a different call: seen leaving and arriving
    # (docs/conformance.md "Names", secondary_besecondary_rename)
    ha.besecondary(s2, "n2-new", "n1", n1.ip, 1)
    assert e2.next() == (INITIALIZED, 1)
    assert e1.expect((DIED, (b"n2", A[2])), (ARRIVED, (b"n2-new", A[2])))
    assert n1.status() == (ha.STATE_PRIMARY, [(b"n2-new", A[2])])
    e2.quiet()


def test_besecondary_on_primary(cluster):
    n1, n2, n3 = cluster.add("n1", 1), cluster.add("n2", 2), cluster.add("n3", 3)
    s1 = be_primary(n1, "n1")
    be_primary(n3, "n3")
    be_secondary(n2, "n2", n1, "n1")
    e1, e2, e3 = n1.events(), n2.events(), n3.events()
    # docs/conformance.md "Events" (primary_besecondary): the primary's own events are only
    # the join's; its secondaries lose their primary.
    ha.besecondary(s1, "n1", "n3", n3.ip, 0)
    assert e1.expect((RESULT, 0), (INITIALIZED, 1))
    assert e2.expect((NOPRIMARY, error.ERR_HA_CLOSED), (IS_NONE, 0))
    assert e3.next() == (ARRIVED, (b"n1", A[1]))
    assert n2.ha_status("tok") == (ha.STATE_NONE, [])
    e1.quiet(0.05)


def test_besecondary_on_primary_join_fails_leaves_none(cluster):
    n1, n2, s1, _ = primary_with(cluster, 2)
    e1, e2 = n1.events(), n2.events()
    with pytest.raises(error.Error) as exc:
        ha.besecondary(s1, "n1", "nobody", "127.0.0.7", 1)
    assert exc.value.confd_errno == error.ERR_HA_CONNECT
    # docs/conformance.md (primary_besecondary_fails): one IS_NONE, the failed join's
    assert e1.next() == (IS_NONE, 0)
    assert e2.expect((NOPRIMARY, error.ERR_HA_CLOSED), (IS_NONE, 0))
    assert ha.status(s1) == (ha.STATE_NONE, [])
    e1.quiet(0.05)


def test_besecondary_relay_same_parameters_stops_relaying(cluster):
    n1, n2, n3, s2 = relay_chain(cluster)
    e1, e2, e3 = n1.events(), n2.events(), n3.events()
    # docs/conformance.md "Relays" (relay_besecondary_same): a plain secondary again, the
    # node behind it dropped and reported dead by the primary; nothing on the relay.
    ha.besecondary(s2, "n2", "n1", n1.ip, 1)
    assert ha.status(s2) == (ha.STATE_SECONDARY, [{"nodeid": "n1", "address": "127.0.0.1"}])
    assert e3.expect((NOPRIMARY, error.ERR_HA_CLOSED), (IS_NONE, 0))
    assert e1.next() == (DIED, (b"n3", A[3]))
    assert n1.status() == (ha.STATE_PRIMARY, [(b"n2", A[2])])
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
    # docs/conformance.md "Events" (relay_besecondary_other)
    ha.besecondary(s2, "n2", "n4", n4.ip, 1)
    assert e2.next() == (INITIALIZED, 1)
    assert e1.expect((DIED, (b"n2", A[2])), (DIED, (b"n3", A[3])))
    assert e3.expect((NOPRIMARY, error.ERR_HA_CLOSED), (IS_NONE, 0))
    assert e4.next() == (ARRIVED, (b"n2", A[2]))
    e2.quiet(0.05)
    assert ha.status(s2) == (ha.STATE_SECONDARY, [{"nodeid": "n4", "address": "127.0.0.4"}])


# ================================================================ benone


def test_benone_on_none_still_reports_is_none(cluster):
    """docs/conformance.md "Events" (none_benone): IS_NONE every time, NONE included."""
    n1 = cluster.add("n1", 1)
    ev = n1.events()
    s = n1.ctl()
    ha.benone(s)
    ha.benone(s)
    assert ev.expect((IS_NONE, 0), (IS_NONE, 0))
    assert ha.status(s) == (ha.STATE_NONE, [])
    ev.quiet()


def test_benone_on_secondary(cluster):
    n1, n2, _, s2 = primary_with(cluster, 2)
    e1, e2 = n1.events(), n2.events()
    ha.benone(s2)
    assert e2.next() == (IS_NONE, 0)
    assert e1.next() == (DIED, (b"n2", A[2]))
    assert ha.status(s2) == (ha.STATE_NONE, [])
    e2.quiet()


def test_benone_on_primary(cluster):
    n1, n2, n3, s1, _, _ = primary_with(cluster, 3)
    e1, e2, e3 = n1.events(), n2.events(), n3.events()
    ha.benone(s1)
    assert e1.next() == (IS_NONE, 0)
    e1.quiet()  # docs/conformance.md (primary_benone): no SECONDARY_DIED for its secondaries
    assert e2.expect((NOPRIMARY, error.ERR_HA_CLOSED), (IS_NONE, 0))
    assert e3.expect((NOPRIMARY, error.ERR_HA_CLOSED), (IS_NONE, 0))
    assert ha.status(s1) == (ha.STATE_NONE, [])
    assert n2.ha_status() == (ha.STATE_NONE, [])
    s2 = n2.ctl()
    with pytest.raises(error.Error) as exc:
        ha.besecondary(s2, "n2", "n1", n1.ip, 1)  # the listener is closed
    assert exc.value.confd_errno == error.ERR_HA_CONNECT


def test_benone_on_relay(cluster):
    n1, n2, n3, s2 = relay_chain(cluster)
    e1, e2, e3 = n1.events(), n2.events(), n3.events()
    ha.benone(s2)
    assert e2.next() == (IS_NONE, 0)
    # docs/conformance.md "Relays" (relay_benone): the relay first, then the nodes behind it
    assert e1.expect((DIED, (b"n2", A[2])), (DIED, (b"n3", A[3])))
    assert e3.expect((NOPRIMARY, error.ERR_HA_CLOSED), (IS_NONE, 0))
    assert ha.status(s2) == (ha.STATE_NONE, [])
    assert n1.status() == (ha.STATE_PRIMARY, [])


# ================================================================ berelay


def test_berelay_on_secondary(cluster):
    n1, n2, _, s2 = primary_with(cluster, 2)
    e1, e2 = n1.events(), n2.events()
    ha.berelay(s2)
    e2.quiet()  # no "is relay" event exists
    e1.quiet(0.01)
    assert ha.status(s2) == (ha.STATE_SECONDARY_RELAY, [{"nodeid": "n1", "address": "127.0.0.1"}])
    ha.berelay(s2)  # idempotent (docs/conformance.md, secondary_berelay)
    assert ha.status(s2)[0] == ha.STATE_SECONDARY_RELAY
    e2.quiet(0.01)


def test_berelay_bind_failure_stays_secondary(cluster, occupied):
    n1, n2, _, s2 = primary_with(cluster, 2)
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
