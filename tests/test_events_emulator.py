"""confd_ha.events end to end: the real client against emulated nodes (real sockets).

Every one of the seven HA event types is produced by a real scenario on an emulated cluster
(confd_ha.testing.cluster.Cluster: nodes on 127.0.0.x, one shared HA port, short ticks) and
read through ``events.read_notification``. Which events a scenario gives, and in which order,
is what ConfD 8.2.5 was observed to do (docs/conformance.md, "Events" and "One order at a
time").
"""

from __future__ import annotations

import socket
import threading
import time

import pytest

import confd_ha as ha
from confd_ha import error, events
from confd_ha.testing.cluster import Cluster
from confd_ha.testing.loop import EmulatorThread
from confd_ha.testing.ports import free_port
from events_helpers import (
    HA_MASK, IS_NONE, IS_PRIMARY, SYNC_MASK, TICK, arrived, died, initialized, noprimary, result,
)

WAIT = 5.0          # bound on every blocking read


def sub(c: Cluster, i: int, mask: int = HA_MASK) -> socket.socket:
    s = c[i].subscribe(mask, timeout=WAIT)
    c.sockets.append(s)
    return s


def ctl(c: Cluster, i: int, token: str = "tok") -> socket.socket:
    s = c[i].connect_ha(token, timeout=WAIT)
    c.sockets.append(s)
    return s


def read(s: socket.socket) -> dict:
    return events.read_notification(s)


def hnot(s: socket.socket) -> dict:
    n = read(s)
    assert n["type"] == events.NOTIF_HA_INFO, n
    return n["hnot"]


def quiet(s: socket.socket, wait: float = 0.3) -> None:
    """No notification arrives within ``wait`` seconds."""
    old = s.gettimeout()
    s.settimeout(wait)
    try:
        with pytest.raises(error.Timeout):
            read(s)
    finally:
        s.settimeout(old)


def make_primary(c: Cluster, i: int = 0, nodeid: str = "n1") -> socket.socket:
    s = ctl(c, i)
    ha.beprimary(s, nodeid)
    return s


def join(c: Cluster, i: int, wait: int, nodeid: str = None, primary: str = "n1",
         p: int = 0, token: str = "tok") -> socket.socket:
    s = ctl(c, i, token)
    ha.besecondary(s, nodeid or "n%d" % (i + 1), primary, c[p].ipc_address, wait)
    return s


# ---------------------------------------------------------------- the seven event types


def test_is_primary(clusters):
    c = clusters(1)
    e = sub(c, 0)
    make_primary(c)
    assert read(e) == {"type": 64, "hnot": IS_PRIMARY}
    quiet(e)


def test_synchronous_join(clusters):
    """waitreply=1: the secondary reports SECONDARY_INITIALIZED with copy=1 -- ConfD's is 1 on
    every join, even between two fresh nodes -- and no BESECONDARY_RESULT; the primary reports
    SECONDARY_ARRIVED with the secondary's node id and source address (none_besecondary_sync)."""
    c = clusters(2)
    e1, e2 = sub(c, 0), sub(c, 1)
    make_primary(c)
    assert hnot(e1) == IS_PRIMARY
    join(c, 1, 1)
    assert hnot(e2) == initialized(1)
    assert hnot(e1) == arrived("n2", c[1].ipc_address)
    quiet(e2)
    quiet(e1, 0.05)


def test_asynchronous_join_with_copy(clusters):
    c = clusters(2)
    c[0].set("/sys/host", "a")          # a commit: the secondary's datastore differs
    e1, e2 = sub(c, 0), sub(c, 1)
    make_primary(c)
    s = join(c, 1, 0)
    assert hnot(e2) == result(0)        # before SECONDARY_INITIALIZED (none_besecondary_async)
    assert hnot(e2) == initialized(1)
    assert hnot(e1) == IS_PRIMARY
    assert hnot(e1) == arrived("n2", c[1].ipc_address)
    assert c[1].get("/sys/host") == "a"
    assert ha.status(s) == (ha.STATE_SECONDARY,
                            [{"nodeid": "n1", "address": c[0].ipc_address}])


@pytest.mark.parametrize("case,code", [("connect", error.ERR_HA_CONNECT),
                                       ("token", error.ERR_HA_BADTOKEN),
                                       ("name", error.ERR_HA_BADNAME)])
def test_failed_asynchronous_join(clusters, case, code):
    """A failed waitreply=0 join: BESECONDARY_RESULT carries the error, then IS_NONE; nothing
    is reported on the primary; the synchronous call fails with the same code, and IS_NONE
    (join_nothing_listens, join_wrong_token, join_wrong_primary_name)."""
    c = clusters(3)
    e1, e2 = sub(c, 0), sub(c, 1)
    if case != "connect":
        make_primary(c)
        assert hnot(e1) == IS_PRIMARY
    kw = {"token": "other"} if case == "token" else {"primary": "nX"} if case == "name" else {}
    join(c, 1, 0, **kw)
    assert hnot(e2) == result(code)
    assert hnot(e2) == IS_NONE
    quiet(e2)
    quiet(e1, 0.05)
    e3 = sub(c, 2)
    with pytest.raises(error.Error) as info:
        join(c, 2, 1, **kw)
    assert info.value.confd_errno == code
    assert hnot(e3) == IS_NONE
    quiet(e3, 0.05)


def test_kill_primary_gives_noprimary_closed(clusters):
    c = clusters(2)
    c.form("tok")
    e2 = sub(c, 1)
    c[0].kill()
    assert hnot(e2) == noprimary(error.ERR_HA_CLOSED)
    assert hnot(e2) == IS_NONE           # then IS_NONE (fault_kill_primary)
    assert c[1].state == ha.STATE_NONE
    quiet(e2)


def test_freeze_primary_gives_noprimary_notick(clusters):
    c = clusters(2)
    c.form("tok")
    e2 = sub(c, 1)
    t0 = time.monotonic()
    c[0].freeze()
    assert hnot(e2) == noprimary(error.ERR_HA_NOTICK)
    assert 2 * TICK <= time.monotonic() - t0 < 3 * TICK + 0.3   # on the grid: 2-3 ticks
    assert hnot(e2) == IS_NONE
    c[0].thaw()


def test_kill_secondary_gives_secondary_died(clusters):
    c = clusters(3)
    c.form("tok")
    e1 = sub(c, 0)
    c[2].kill()
    assert hnot(e1) == died("n3", c[2].ipc_address)
    assert c[0].state == ha.STATE_PRIMARY


def test_secondary_dead_order(clusters):
    """No SECONDARY_DIED on the primary for the node named (primary_secondary_dead)."""
    c = clusters(2)
    c.form("tok")
    e1, e2 = sub(c, 0), sub(c, 1)
    ha.secondary_dead(ctl(c, 0), "n2")
    assert hnot(e2) == noprimary(error.ERR_HA_CLOSED)
    assert hnot(e2) == IS_NONE
    quiet(e1)


def test_benone_on_primary(clusters):
    c = clusters(2)
    c.form("tok")
    e1, e2 = sub(c, 0), sub(c, 1)
    ha.benone(ctl(c, 0))
    assert hnot(e1) == IS_NONE
    assert hnot(e2) == noprimary(error.ERR_HA_CLOSED)
    assert hnot(e2) == IS_NONE
    quiet(e1)                            # no SECONDARY_DIED for its secondaries (primary_benone)


def test_repointing_secondary_reports_only_the_join(clusters):
    """A SECONDARY told to follow another primary reports what the join gives, no IS_NONE for
    the implied step; its old primary sees it go (secondary_besecondary_other_async)."""
    c = clusters(3)
    c.form("tok")
    e1, e3 = sub(c, 0), sub(c, 2)
    make_primary(c, 1, "n2b")           # n2 leaves n1 and becomes a primary itself
    assert hnot(e1) == died("n2", c[1].ipc_address)
    join(c, 2, 0, nodeid="n3", primary="n2b", p=1)
    assert [hnot(e3) for _ in range(2)] == [result(0), initialized(1)]
    assert hnot(e1) == died("n3", c[2].ipc_address)
    quiet(e3)


def test_relay_death_cascades(clusters):
    """The primary announces the node behind its relay, and when the relay dies reports the
    relay, then that node; the node loses its primary (relay_chain, fault_kill_relay)."""
    c = clusters(3)
    e1, e2, e3 = sub(c, 0), sub(c, 1), sub(c, 2)
    make_primary(c)
    join(c, 1, 1)
    ha.berelay(ctl(c, 1))
    join(c, 2, 1, primary="n2", p=1)
    assert [hnot(e1) for _ in range(3)] == [IS_PRIMARY, arrived("n2", c[1].ipc_address),
                                            arrived("n3", c[2].ipc_address)]
    assert hnot(e2) == initialized(1)
    quiet(e2, 0.1)                       # a relay emits no SECONDARY_* events
    assert hnot(e3) == initialized(1)
    c[1].kill()
    assert [hnot(e1) for _ in range(2)] == [died("n2", c[1].ipc_address),
                                            died("n3", c[2].ipc_address)]
    assert [hnot(e3) for _ in range(2)] == [noprimary(error.ERR_HA_CLOSED), IS_NONE]
    quiet(e1, 0.1)


# ---------------------------------------------------------------- HA_INFO_SYNC


def _order_in_thread(fn, *args):
    box: dict = {}

    def run():
        try:
            box["result"] = fn(*args)
        except BaseException as exc:     # reported by the test
            box["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, box


def test_ha_info_sync_holds_back_processing_until_acknowledged(clusters):
    c = clusters(1)
    syncer, plain = sub(c, 0, SYNC_MASK), sub(c, 0)
    s = make_primary(c)                  # its reply before its event (docs/conformance.md)
    assert hnot(syncer) == IS_PRIMARY
    assert hnot(plain) == IS_PRIMARY
    t, box = _order_in_thread(ha.benone, s)
    t.join(0.4)
    assert t.is_alive()                  # the next order waits for the acknowledgement
    assert c[0].state == ha.STATE_PRIMARY
    quiet(plain, 0.05)
    events.sync_ha_notification(syncer)
    assert hnot(syncer) == IS_NONE
    assert hnot(plain) == IS_NONE
    assert c[0].state == ha.STATE_NONE
    t.join(0.3)
    assert t.is_alive()                  # benone answers after its IS_NONE is acknowledged
    events.sync_ha_notification(syncer)
    t.join(WAIT)
    assert not t.is_alive() and box == {"result": None}


def test_ha_info_sync_holds_back_peer_events(clusters):
    """An unacknowledged event on the primary also holds back a secondary's join to it
    (sync_unacknowledged_holds_orders)."""
    c = clusters(2)
    syncer = sub(c, 0, SYNC_MASK)
    make_primary(c)
    assert hnot(syncer) == IS_PRIMARY
    e2 = sub(c, 1)
    join(c, 1, 0)
    time.sleep(0.3)     # what is tested: nothing moves within 0.3 s (3 ticks) of waiting
    assert c[0].status()[1] == []        # not admitted while the primary waits ...
    assert c[1].state == ha.STATE_NONE and c[1].joining
    quiet(e2, 0.01)                      # ... and the joining node waits too
    events.sync_ha_notification(syncer)
    assert hnot(syncer) == arrived("n2", c[1].ipc_address)
    assert [hnot(e2) for _ in range(2)] == [result(0), initialized(1)]
    events.sync_ha_notification(syncer)


def test_closing_a_sync_subscriber_counts_as_acknowledgement(clusters):
    c = clusters(1)
    syncer = sub(c, 0, SYNC_MASK)
    s = make_primary(c)
    assert hnot(syncer) == IS_PRIMARY
    t, box = _order_in_thread(ha.benone, s)
    t.join(0.3)
    assert t.is_alive()
    syncer.close()                       # W-32
    t.join(WAIT)
    assert not t.is_alive() and box == {"result": None}


def test_two_sync_subscribers_both_must_acknowledge(clusters):
    c = clusters(1)
    a, b = sub(c, 0, SYNC_MASK), sub(c, 0, SYNC_MASK)
    s = make_primary(c)
    assert hnot(a) == IS_PRIMARY and hnot(b) == IS_PRIMARY
    t, box = _order_in_thread(ha.benone, s)
    events.sync_ha_notification(a)
    t.join(0.3)
    assert t.is_alive()
    events.sync_ha_notification(b)
    assert hnot(a) == IS_NONE and hnot(b) == IS_NONE
    events.sync_ha_notification(b)       # benone answers once both acknowledged IS_NONE
    t.join(0.3)
    assert t.is_alive()
    events.sync_ha_notification(a)
    t.join(WAIT)
    assert box == {"result": None}


def test_sync_bit_alone_subscribes_to_nothing(clusters):
    """W-30: HA_INFO_SYNC without HA_INFO gets no events and blocks nothing."""
    c = clusters(1)
    only_sync = sub(c, 0, events.NOTIF_HA_INFO_SYNC)
    s = make_primary(c)
    ha.benone(s)
    quiet(only_sync)


# ---------------------------------------------------------------- several subscribers


def test_several_subscribers_see_the_same_events(clusters):
    c = clusters(2)
    subs = [sub(c, 0) for _ in range(4)]
    audit = sub(c, 0, events.NOTIF_AUDIT | events.NOTIF_DAEMON)   # no HA bit: nothing
    make_primary(c)
    join(c, 1, 1)
    ha.benone(ctl(c, 0))
    want = [IS_PRIMARY, arrived("n2", c[1].ipc_address), IS_NONE]
    for e in subs:
        assert [hnot(e) for _ in want] == want
    quiet(audit, 0.1)


def test_subscriber_that_stops_reading(clusters):
    """A subscriber that never reads neither delays orders nor other subscribers; its events
    wait for it in order."""
    c = clusters(1)
    stalled, reader = sub(c, 0), sub(c, 0)
    s = ctl(c, 0)
    rounds = 150
    t0 = time.monotonic()
    for _ in range(rounds):
        ha.beprimary(s, "n1")
        ha.benone(s)
    elapsed = time.monotonic() - t0
    got = [hnot(reader) for _ in range(2 * rounds)]
    assert got == [IS_PRIMARY, IS_NONE] * rounds
    assert elapsed < 10
    assert [hnot(stalled) for _ in range(4)] == [IS_PRIMARY, IS_NONE] * 2
    stalled.close()
    ha.beprimary(s, "n1")                # a closed subscriber is simply dropped
    assert hnot(reader) == IS_PRIMARY


def test_subscriber_over_unix_socket(tmp_path):
    with EmulatorThread(timeout=10) as emu:
        path = str(tmp_path / "ipc.sock")
        n = emu.add_node(name="u", ipc_address="127.0.0.1", ipc_port=0, ha_port=free_port(),
                         ipc_path=path, tick_timeout=TICK)
        with socket.socket(socket.AF_UNIX) as e, socket.socket(socket.AF_UNIX) as s:
            e.settimeout(WAIT)
            s.settimeout(WAIT)
            events.notifications_connect(e, HA_MASK, path=path)
            ha.connect(s, "tok", pstr=path)
            ha.beprimary(s, "u1")
            assert hnot(e) == IS_PRIMARY
        assert n.state == ha.STATE_PRIMARY


def test_daemon_stop_gives_eof(clusters):
    c = clusters(1)
    e = sub(c, 0)
    c[0].stop()
    with pytest.raises(error.EOF):
        read(e)
