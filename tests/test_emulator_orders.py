"""secondary_dead, status in every state, the start phases and the upgrade flag, and the
node's one-at-a-time HA engine: orders during a join wait for it, HA_INFO_SYNC
acknowledgements hold the next event and order (docs/conformance.md "One order at a time",
"Events", "Listing"; the scenarios orders_*.py, phases.py, joins.py, sync_events.py); plus
B-02 (control socket vs. a join in progress), the upgrade flag and fault injection into a join,
which only the emulator has. All through the real client on real sockets.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest

import confd_ha as ha
from confd_ha import _address, _codec, _io, _protocol, error
from confd_ha.emulator import peer
from emulator_helpers import (
    A, HA_INFO, HA_INFO_SYNC, INITIALIZED, IS_NONE, IS_PRIMARY, NOPRIMARY, RESULT, be_primary,
    be_secondary, names, primary_with,
)
from waiting import wait_until


# ================================================================ secondary_dead


def test_secondary_dead_known(cluster):
    n1, n2, n3, s1, _, _ = primary_with(cluster, 3)
    e1, e2, e3 = n1.events(), n2.events(), n3.events()
    ha.secondary_dead(s1, "n2")
    # docs/conformance.md "Events" (primary_secondary_dead): nothing on the primary for the
    # node named; that node loses its primary.
    assert e2.expect((NOPRIMARY, error.ERR_HA_CLOSED), (IS_NONE, 0))
    assert names(ha.status(s1)) == [("n3", "127.0.0.3")]
    assert n2.status() == (ha.STATE_NONE, [])
    e1.quiet()
    e3.quiet(0.01)


def test_secondary_dead_unknown_or_not_primary_is_noop(cluster):
    """docs/conformance.md (primary_secondary_dead, none_secondary_dead,
    secondary_secondary_dead, relay_secondary_dead): an unknown id, a NONE node and a plain
    secondary answer ok and change nothing; a relay refuses with BADSTATE."""
    n1, n2, n3, n4 = (cluster.add("n%d" % i, i) for i in range(1, 5))
    s1 = be_primary(n1, "n1")
    s2 = be_secondary(n2, "n2", n1, "n1")
    ha.berelay(s2)
    be_secondary(n3, "n3", n2, "n2")
    s4 = be_secondary(n4, "n4", n1, "n1")
    e1, e2, e3, e4 = n1.events(), n2.events(), n3.events(), n4.events()
    ha.secondary_dead(s1, "ghost")
    ha.secondary_dead(s1, ha.Value(5))  # exact term equality: not the binary "5"
    with pytest.raises(error.Error) as exc:
        ha.secondary_dead(s2, "n3")  # a relay naming the node behind it
    assert exc.value.confd_errno == error.ERR_BADSTATE
    ha.secondary_dead(s4, "n1")  # a secondary naming its primary ...
    ha.secondary_dead(s4, "n2")  # ... and a fellow node
    s_none = cluster.add("n5", 5).ctl()
    ha.secondary_dead(s_none, "n2")
    for e in (e1, e2, e3, e4):
        e.quiet(0.1)
    assert names(ha.status(s1)) == [("n4", "127.0.0.4"), ("n3", "127.0.0.3"), ("n2", "127.0.0.2")]
    assert names(ha.status(s2)) == [("n1", "127.0.0.1"), ("n3", "127.0.0.3")]
    assert ha.status(s2)[0] == ha.STATE_SECONDARY_RELAY
    assert ha.status(s4) == (ha.STATE_SECONDARY, [{"nodeid": "n1", "address": "127.0.0.1"}])


# ================================================================ status in every state


def test_status_lists_per_state(cluster):
    """docs/conformance.md "Listing": a primary lists its whole cluster newest first, the
    nodes behind relays included; a relay's report about a node behind it first moves the
    relay to the front; a relay lists its primary, then its own subtree."""
    n1, n2, n3, n4 = (cluster.add("n%d" % i, i) for i in range(1, 5))
    assert n1.ha_status("tok") == (ha.STATE_NONE, [])
    be_primary(n1, "n1")
    s2 = be_secondary(n2, "n2", n1, "n1")
    be_secondary(n4, "n4", n1, "n1")
    assert names(n1.ha_status("tok")) == [("n4", "127.0.0.4"), ("n2", "127.0.0.2")]
    ha.berelay(s2)
    be_secondary(n3, "n3", n2, "n2")
    assert names(n1.ha_status("tok")) == [("n3", "127.0.0.3"), ("n2", "127.0.0.2"),
                                          ("n4", "127.0.0.4")]
    assert ha.status(s2)[0] == ha.STATE_SECONDARY_RELAY
    assert names(ha.status(s2)) == [("n1", "127.0.0.1"), ("n3", "127.0.0.3")]
    assert n3.ha_status("tok") == (ha.STATE_SECONDARY, [{"nodeid": "n2", "address": "127.0.0.2"}])
    assert n1.status() == (3, [(b"n3", A[3]), (b"n2", A[2]), (b"n4", A[4])])


# ================================================================ start phases, upgrade


def test_start_phase_zero_refuses_everything_but_status(cluster):
    """docs/conformance.md "Events" (phase0_orders, phase1_orders): in phase 0 every order
    but status is BADSTATE, with no event but an asynchronous besecondary's
    BESECONDARY_RESULT 17; phase 1 already works. The phases advance one step at a time
    through the control interface (the emulator's stand-in for ``confd --start-phase``)."""
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
    ev.quiet(0.1)
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
    assert ev.next() == (RESULT, error.ERR_HA_WITH_UPGRADE)  # refused: no IS_NONE after it
    ha.benone(s)  # not affected
    assert ev.next() == (IS_NONE, 0)
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


# ================================================================ a join in progress


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


JOIN_TIMEOUT = 1.0   # the joining node's join deadline (ConfD: 10 s), so that it fails fast


def joining_node(cluster):
    """n1, whose joins give up after JOIN_TIMEOUT (its 3 ticks are shorter)."""
    return cluster.add("n1", 1, tick_timeout=0.2, join_timeout=JOIN_TIMEOUT)


@pytest.mark.parametrize("later", ["status", "benone", "beprimary", "besecondary"])
def test_orders_wait_for_an_async_join(cluster, mute_primary, later):
    """docs/conformance.md "One order at a time" (join_frozen_primary_async,
    join_cancelled_by_benone, join_then_beprimary): nothing cancels a join; an order sent
    during it -- status included -- runs when the join is over, after the join's own events."""
    n1 = joining_node(cluster)
    n2 = cluster.add("n2", 2)
    be_primary(n2, "n2")
    ev = n1.events()
    s = n1.ctl()
    t0 = time.monotonic()
    ha.besecondary(s, "n1", "mute", mute_primary, 0)
    wait_until(lambda: n1.joining)
    assert n1.state == ha.STATE_NONE  # NONE while joining
    if later == "status":
        assert ha.status(s) == (ha.STATE_NONE, [])
        tail = []
    elif later == "benone":
        ha.benone(s)
        tail = [(IS_NONE, 0)]
    elif later == "beprimary":
        ha.beprimary(s, "n1")
        tail = [(IS_PRIMARY, 0)]
    else:
        ha.besecondary(s, "n1", "n2", n2.ip, 1)
        tail = [(INITIALIZED, 1)]
    assert time.monotonic() - t0 >= JOIN_TIMEOUT - 0.05  # answered only after the join
    assert not n1.joining
    assert ev.expect((RESULT, error.ERR_HA_CLOSED), (IS_NONE, 0), *tail)
    ev.quiet()


def test_orders_queued_behind_a_join_run_in_order(cluster, mute_primary):
    """Orders pipelined behind an asynchronous join are answered in order once it is over,
    each in the state the previous ones left (docs/conformance.md "One order at a time")."""
    n1 = joining_node(cluster)
    ev = n1.events()
    s = n1.ctl()
    t0 = time.monotonic()
    s.sendall(_protocol.encode_order(_protocol.BESECONDARY, b"n1", b"mute",
                                     (_address.AF_INET, socket.inet_aton(mute_primary)), 0)
              + _protocol.GETSTATUS_FRAME + _protocol.BERELAY_FRAME
              + _protocol.encode_order(_protocol.SECONDARY_DEAD, b"x")
              + _protocol.encode_order(_protocol.BEPRIMARY, b"n1"))
    s.settimeout(JOIN_TIMEOUT + 3)
    assert _protocol.decode_status(_io.read_frame(s)) == (ha.STATE_NONE, [])
    assert time.monotonic() - t0 >= JOIN_TIMEOUT - 0.05
    with pytest.raises(error.Error) as exc:
        _protocol.decode_reply(_io.read_frame(s))  # berelay: NONE after the failed join
    assert exc.value.confd_errno == error.ERR_BADSTATE
    assert _protocol.decode_reply(_io.read_frame(s)) is None  # secondary_dead on NONE: ok
    assert _protocol.decode_reply(_io.read_frame(s)) is None  # beprimary
    assert ev.expect((RESULT, error.ERR_HA_CLOSED), (IS_NONE, 0), (IS_PRIMARY, 0))
    assert n1.state == ha.STATE_PRIMARY


def test_join_survives_control_socket_replacement(cluster, mute_primary):
    n1 = joining_node(cluster)
    ev = n1.events()
    s = n1.ctl()
    s.sendall(_protocol.encode_order(_protocol.BESECONDARY, b"n1", b"mute",
                                     (_address.AF_INET, socket.inet_aton(mute_primary)), 1))
    wait_until(lambda: n1.joining)
    s_new = n1.ctl()  # B-02: replacing the socket does not cancel the join ...
    assert n1.joining
    # ... the old socket is closed at once, so the join's reply (when it gives up after
    # JOIN_TIMEOUT) is discarded; a status on the new one is answered after the join.
    with pytest.raises(ha.error.EOF):
        _io.read_frame(s)
    assert n1.joining
    assert ha.status(s_new) == (ha.STATE_NONE, [])
    assert not n1.joining
    assert any("failed: ERR_HA_CLOSED" in d for d in n1.decisions)
    assert ev.next() == (IS_NONE, 0)  # synchronous call: no BESECONDARY_RESULT
    ev.quiet(0.05)


def test_every_event_waits_for_its_acknowledgement_and_benone_answers_after_is_none(
        cluster, mute_primary):
    """docs/conformance.md "One order at a time": with an HA_INFO_SYNC subscriber the node
    waits for the acknowledgement of every event before anything else -- the next event of the
    same order included; a beprimary waiting behind a join answers before its own event;
    benone answers only after its IS_NONE was acknowledged."""
    n1 = joining_node(cluster)
    sync = n1.events(HA_INFO | HA_INFO_SYNC)
    s = n1.ctl(timeout=JOIN_TIMEOUT + 3)
    ha.besecondary(s, "n1", "mute", mute_primary, 0)
    wait_until(lambda: n1.joining)
    s.sendall(_protocol.encode_order(_protocol.BEPRIMARY, b"n1"))
    assert sync.next(timeout=JOIN_TIMEOUT + 3) == (RESULT, error.ERR_HA_CLOSED)
    sync.quiet(0.2)                # IS_NONE waits for the acknowledgement ...
    s.settimeout(0.01)
    with pytest.raises(socket.timeout):
        s.recv(1)                  # ... and so does the beprimary
    sync.ack()
    assert sync.next() == (IS_NONE, 0)
    s.settimeout(0.2)
    with pytest.raises(socket.timeout):
        s.recv(1)
    sync.ack()
    s.settimeout(2.0)
    assert _codec.decode(_io.read_frame(s)) == "ok"  # the reply, then its event
    assert sync.next() == (IS_PRIMARY, 0)
    assert n1.state == ha.STATE_PRIMARY
    s.sendall(_protocol.BENONE_FRAME)  # waits for IS_PRIMARY's acknowledgement
    sync.quiet(0.2)
    sync.ack()
    assert sync.next() == (IS_NONE, 0)
    s.settimeout(0.2)
    with pytest.raises(socket.timeout):
        s.recv(1)                  # benone: no reply before IS_NONE is acknowledged
    sync.ack()
    s.settimeout(2.0)
    assert _codec.decode(_io.read_frame(s)) == "ok"
    s.close()


def _join_steps_crash(*args, **kwargs):
    raise RuntimeError("injected fault in the join sequence")


@pytest.mark.parametrize("wait", [1, 0])
def test_join_task_that_fails_unexpectedly_ends_as_ha_closed(cluster, monkeypatch, caplog, wait):
    """Fault injection: an unexpected exception inside a join is logged and ends the attempt
    with HA_CLOSED (26) -- a reply for a synchronous call, BESECONDARY_RESULT otherwise --
    and IS_NONE."""
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
    assert ev.next(timeout=2.0) == (IS_NONE, 0)  # as any failed join
    assert not n2.joining and n2.state == ha.STATE_NONE
    assert "injected fault" in caplog.text
    monkeypatch.undo()
    ha.besecondary(s2, "n2", "n1", n1.ip, 1)  # the node is fine afterwards
    assert n2.state == ha.STATE_SECONDARY
    s1.close()
    s2.close()
