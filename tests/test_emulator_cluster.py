"""Clusters of emulated nodes: replication through primaries and relays, restarts and
split brain, HA_INFO_SYNC subscribers, the 255-entry status cap, secondary_dead of a node
still joining, the control interface, and subscribers and peers that misbehave -- through the
real client. What ConfD 8.2.5 does is in docs/conformance.md; replication, the datastore and
the control interface are the emulator's own (docs/emulator.md). Joins are in
test_emulator_joins.py, deaths, freezes and partitions in test_emulator_liveness.py.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest

import confd_ha as ha
from confd_ha import _codec, _handshake, _io, _notifications, _protocol, error
from confd_ha._terms import Atom
from emulator_helpers import (
    A, ARRIVED, DIED, HA_INFO, HA_INFO_SYNC, INITIALIZED, IS_NONE, IS_PRIMARY, NOPRIMARY,
    RESULT, Cluster, be_primary, be_secondary, last_join_copied, primary_with, proof,
    read_until_closed, scripted_hello, scripted_join,
)
from waiting import wait_until

TICK = 0.2          # seconds: the ``fast`` fixture's tick (conftest.py)


# ================================================================ relays


def test_relay_chain_replicates_and_cascades(cluster):
    n1, n2, n3, n4 = (cluster.add("n%d" % i, i) for i in range(1, 5))
    be_primary(n1, "n1")
    n1.commit([("set", "/before", "0")])
    s2 = be_secondary(n2, "n2", n1, "n1")
    ha.berelay(s2)
    e1, e2 = n1.events(), n2.events()
    e3, e4 = n3.events(), n4.events()
    be_secondary(n3, "n3", n2, "n2")
    be_secondary(n4, "n4", n2, "n2")
    assert e3.next() == (INITIALIZED, 1)
    assert e4.next() == (INITIALIZED, 1)
    assert last_join_copied(n3) and last_join_copied(n4)  # the copy from the relay's store
    assert n3.get("/before") == "0"
    # the primary announces and lists the nodes behind the relay (newest first, the relay
    # moved to the front by each of its reports); the relay emits nothing
    assert e1.expect((ARRIVED, (b"n3", A[3])), (ARRIVED, (b"n4", A[4])))
    e2.quiet(0.1)
    assert n1.status() == (ha.STATE_PRIMARY, [(b"n4", A[4]), (b"n2", A[2]), (b"n3", A[3])])
    assert n2.status() == (ha.STATE_SECONDARY_RELAY, [(b"n1", A[1]), (b"n4", A[4]), (b"n3", A[3])])
    for i in range(5):
        n1.commit([("set", "/r/%d" % i, str(i))])
    assert n2.get("/r/4") == "4"  # synchronous to direct secondaries (B-19) ...
    wait_until(lambda: n3.get("/r/4") == "4" and n4.get("/r/4") == "4")  # ... the others follow
    assert n3.items() == n1.items() and n3.txid == n1.txid
    with pytest.raises(error.Error) as exc:
        n2.commit([("set", "/w", "1")])
    assert exc.value.confd_errno == error.ERR_BADSTATE
    n1.kill()
    assert e2.expect((NOPRIMARY, error.ERR_HA_CLOSED), (IS_NONE, 0))
    assert e3.expect((NOPRIMARY, error.ERR_HA_CLOSED), (IS_NONE, 0))
    assert e4.expect((NOPRIMARY, error.ERR_HA_CLOSED), (IS_NONE, 0))
    assert n3.status() == (ha.STATE_NONE, [])


# ================================================================ replication (B-30)


def test_commit_refused_on_secondary(cluster):
    n1, n2, _, _ = primary_with(cluster, 2)
    with pytest.raises(error.Error) as exc:
        n2.commit([("set", "/x", "1")])
    assert exc.value.confd_errno == error.ERR_BADSTATE
    assert exc.value.confd_lasterr == "node is an HA secondary: writes are not allowed"
    n2.ha_status()  # any state change makes it writable again
    s2 = n2.ctl()
    ha.benone(s2)
    assert n2.commit([("set", "/x", "1")]).startswith("n2-")


def test_every_acknowledged_commit_is_on_the_secondaries(cluster):
    n1, n2, n3, _, _, _ = primary_with(cluster, 3)
    for i in range(30):
        txid = n1.commit([("set", "/seq/%d" % i, "v%d" % i)])
        assert n2.get("/seq/%d" % i) == "v%d" % i and n3.txid == txid

    async def burst():
        node = n1.node
        return await asyncio.gather(*[node.commit([("set", "/par/%d" % i, str(i))]) for i in range(200)])

    txids = cluster.lt.run(burst())
    assert len(set(txids)) == 200
    assert n2.items("/par") == n1.items("/par") == n3.items("/par")
    assert len(n1.items("/par")) == 200 and n2.txid == n3.txid == n1.txid


def test_join_during_commit_stream_gets_everything(cluster):
    n1, n2 = cluster.add("n1", 1), cluster.add("n2", 2)
    be_primary(n1, "n1")

    async def stream():
        for i in range(300):
            await n1.node.commit([("set", "/stream/%d" % i, str(i))])
            if i % 10 == 0:
                await asyncio.sleep(0.001)

    fut = asyncio.run_coroutine_threadsafe(stream(), cluster.lt.loop)
    wait_until(lambda: n1.items("/stream"))   # the stream has begun
    be_secondary(n2, "n2", n1, "n1")
    fut.result(10)
    wait_until(lambda: n2.txid == n1.txid)
    assert n2.items() == n1.items() and len(n2.items()) == 300


def test_restart_keeps_data_copy_only_when_txid_differs(cluster, tmp_path):
    n1 = cluster.add("n1", 1, data_dir=str(tmp_path / "n1"))
    n2 = cluster.add("n2", 2, data_dir=str(tmp_path / "n2"), start_phase=0)
    be_primary(n1, "n1")
    n1.commit([("set", "/a", "1")])
    n2.set_start_phase(1)
    e2 = n2.events()
    be_secondary(n2, "n2", n1, "n1")
    assert e2.next() == (INITIALIZED, 1)
    assert last_join_copied(n2)
    e1 = n1.events()
    n2.kill()
    assert e1.next() == (DIED, (b"n2", A[2]))
    n2.restart()
    assert (n2.state, n2.start_phase, n2.node_id, n2.get("/a")) == (ha.STATE_NONE, 0, None, "1")
    assert n2.txid == n1.txid
    n2.set_start_phase(1)
    e2 = n2.events()
    be_secondary(n2, "n2", n1, "n1")
    assert e2.next() == (INITIALIZED, 1)  # copy=1 on every join, as ConfD's ...
    assert not last_join_copied(n2)      # ... but nothing committed meanwhile: no copy
    n2.stop()
    n1.commit([("set", "/b", "2")])
    n2.restart()
    assert n2.get("/b") is None
    n2.set_start_phase(1)
    e2 = n2.events()
    be_secondary(n2, "n2", n1, "n1")
    assert e2.next() == (INITIALIZED, 1)
    assert last_join_copied(n2)
    assert n2.get("/b") == "2" and n2.txid == n1.txid
    n1.restart(kill=True)  # the primary restarts in NONE with its data
    assert n1.state == ha.STATE_NONE and n1.get("/b") == "2"


def test_split_brain_rejoin_overwrites_divergent_data(cluster):
    n1, n2, s1, _ = primary_with(cluster, 2)
    n2.kill()
    n2.restart()
    be_primary(n2, "n2")
    n2.commit([("set", "/mine", "n2")])
    n1.commit([("set", "/mine", "n1")])
    ev = n2.events()
    s2 = n2.ctl()
    ha.besecondary(s2, "n2", "n1", n1.ip, 1)
    assert ev.next() == (INITIALIZED, 1)  # no IS_NONE for leaving PRIMARY (docs/conformance.md)
    assert last_join_copied(n2)
    assert n2.get("/mine") == "n1" and n2.txid == n1.txid
    assert ha.status(s1)[1] == [{"nodeid": "n2", "address": "127.0.0.2"}]


# ================================================================ HA_INFO_SYNC


def test_sync_subscriber_blocks_ha_work_and_status_but_not_ticks_or_replication(fast):
    """An unacknowledged event holds the next order and status (sync_unacknowledged_holds_*),
    but not the ticks -- nobody is declared dead -- nor replication (the emulator's own)."""
    n1, n2, n3 = fast.add("n1", 1), fast.add("n2", 2), fast.add("n3", 3)
    be_primary(n1, "n1")
    be_secondary(n2, "n2", n1, "n1")
    sync = n1.events(HA_INFO | HA_INFO_SYNC)
    plain = n1.events()
    s3 = n3.ctl()
    ha.besecondary(s3, "n3", "n1", n1.ip, 1)
    assert sync.next() == (ARRIVED, (b"n3", A[3]))  # not acknowledged yet
    assert plain.next() == (ARRIVED, (b"n3", A[3]))
    c = n1.ctl()
    assert n3.state == ha.STATE_SECONDARY  # its join was over before the event
    c.sendall(_protocol.BENONE_FRAME)
    c.settimeout(0.2)
    with pytest.raises(socket.timeout):
        c.recv(1)  # the order waits for the acknowledgement
    time.sleep(4 * TICK)  # ticks keep flowing: nobody is declared dead
    assert n2.state == n3.state == ha.STATE_SECONDARY
    n1.commit([("set", "/while-blocked", "1")])  # replication continues
    assert n2.get("/while-blocked") == "1" and n3.get("/while-blocked") == "1"
    s_status = n1.ctl()  # replaces c (B-02): the benone still completes, its reply is lost
    s_status.sendall(_protocol.GETSTATUS_FRAME)
    s_status.settimeout(0.2)
    with pytest.raises(socket.timeout):
        s_status.recv(1)  # a status waits too, as ConfD's does (docs/conformance-ipc.md §5)
    plain.quiet(0.05)
    sync.ack()
    assert plain.next() == (IS_NONE, 0)
    assert sync.next() == (IS_NONE, 0)
    sync.ack()
    s_status.settimeout(5)
    assert _protocol.decode_status(_io.read_frame(s_status)) == (ha.STATE_NONE, [])
    with pytest.raises(ha.error.EOF):
        _io.read_frame(c)


def test_sync_event_reply_not_delayed_and_close_counts_as_ack(cluster):
    n1 = cluster.add("n1", 1)
    sync = n1.events(HA_INFO | HA_INFO_SYNC)
    s = n1.ctl()
    ha.beprimary(s, "n1")  # the reply of the order that produced the event is not delayed
    assert sync.next() == (IS_PRIMARY, 0)
    done = []
    t = threading.Thread(target=lambda: done.append(ha.benone(s)), daemon=True)
    t.start()
    t.join(0.3)
    assert not done and n1.state == ha.STATE_PRIMARY
    sync.close()  # closing releases the node (sync_subscriber_closes)
    t.join(3)
    assert done == [None] and n1.state == ha.STATE_NONE


def test_async_join_events_each_wait_for_their_acknowledgement(cluster):
    """Every event of a join waits for the acknowledgement of the one before it:
    BESECONDARY_RESULT 0, then SECONDARY_INITIALIZED copy=1 (none_besecondary_async); the next
    order waits for both, and benone answers after its IS_NONE was acknowledged."""
    n1, n2 = cluster.add("n1", 1), cluster.add("n2", 2)
    be_primary(n1, "n1")
    sync = n2.events(HA_INFO | HA_INFO_SYNC)
    s2 = n2.ctl()
    ha.besecondary(s2, "n2", "n1", n1.ip, 0)
    assert sync.next() == (RESULT, 0)
    sync.quiet(0.2)                      # SECONDARY_INITIALIZED waits for the acknowledgement
    assert n2.state == ha.STATE_SECONDARY
    s2.sendall(_protocol.BENONE_FRAME)
    sync.ack()
    assert sync.next() == (INITIALIZED, 1)
    s2.settimeout(0.2)
    with pytest.raises(socket.timeout):
        s2.recv(1)                       # the benone waits for this acknowledgement too
    sync.quiet(0.05)
    assert n2.state == ha.STATE_SECONDARY
    sync.ack()
    assert sync.next() == (IS_NONE, 0)
    with pytest.raises(socket.timeout):
        s2.recv(1)                       # ... and answers only after IS_NONE's
    sync.ack()
    s2.settimeout(2.0)
    assert _codec.decode(_io.read_frame(s2)) == "ok"


# ================================================================ scripted secondaries


def test_status_lists_at_most_255_secondaries_newest_first():
    """W-20: a status reply lists at most 255 nodes -- here the 255 newest of 256, newest
    first (docs/conformance.md "Listing")."""
    c = Cluster(tick=5)  # the scripted secondaries do not tick
    socks = []
    try:
        p = c.add("p", 1)
        be_primary(p, "p", token="t")
        for i in range(256):
            socks.append(scripted_join(p.ip, c.ha_port, b"t", b"s%03d" % i, b"p",
                                       source=("127.0.0.%d" % (2 + i % 5), 0))[0])
        wait_until(lambda: len(p.peers) == 256)
        state, nodes = p.ha_status("t")
        assert state == ha.STATE_PRIMARY and len(nodes) == 255
        assert [n["nodeid"] for n in nodes] == ["s%03d" % i for i in range(255, 0, -1)]
        assert nodes[7]["address"] == "127.0.0.5"   # s248, from 127.0.0.(2 + 248 % 5)
        assert len(p.status()[1]) == 255
    finally:
        for s in socks:
            s.close()
        c.close()


def test_secondary_dead_cuts_off_a_secondary_in_its_initial_sync(cluster):
    p = cluster.add("p", 1)
    s = be_primary(p, "p", token="t")
    ev = p.events()
    sock, sync = scripted_join(p.ip, cluster.ha_port, b"t", b"slow", b"p", synced=False)
    assert sync[:2] == (Atom("ha_sync"), Atom("nocopy"))
    # admitted, listed and announced before it confirmed its sync (docs/peer-protocol.md)
    assert ev.next() == (ARRIVED, (b"slow", A[1]))
    # A commit is forwarded after the snapshot, and waits for the admitted secondary too:
    # a commit that returned is on every secondary the primary lists.
    done = []
    t = threading.Thread(target=lambda: done.append(p.commit([("set", "/during-sync", "1")])))
    t.start()
    trans = _codec.decode(_io.read_frame(sock))
    assert trans[:2] == (Atom("ha_trans"), 1) and trans[3] == b'[["set","/during-sync","1"]]'
    t.join(0.3)
    assert not done
    sock.sendall(_codec.encode_frame((Atom("ha_ack"), 1)))
    t.join(5)
    assert done and done[0] == p.txid
    ha.secondary_dead(s, "slow")  # cut off; nothing on the primary for the node named
    assert _codec.decode(_io.read_frame(sock)) == (Atom("ha_bye"), 0)
    with pytest.raises(ha.error.EOF):
        _io.read_frame(sock)
    ev.quiet(0.2)
    assert p.status() == (ha.STATE_PRIMARY, [])
    sock.close()


def test_secondary_dead_leaves_a_node_still_in_its_handshake_alone():
    """A node between its hello and its auth is not in the cluster yet: secondary_dead naming
    it changes nothing (the id is checked when the node is admitted), and its join then
    completes."""
    c = Cluster(tick=5)  # the listener's join deadline (15 s) must not close it first
    try:
        p = c.add("p", 1)
        s = be_primary(p, "p", token="t")
        ev = p.events()
        sk, nonce_s = scripted_hello(p.ip, c.ha_port, b"slow", b"p")
        tag, _, nonce_p, _ = _codec.decode(_io.read_frame(sk))
        assert tag == "ha_challenge"
        ha.secondary_dead(s, "slow")
        sk.settimeout(0.3)
        with pytest.raises(socket.timeout):
            sk.recv(1, socket.MSG_PEEK)  # still open, nothing sent
        ev.quiet(0.01)
        sk.settimeout(3)
        sk.sendall(_codec.encode_frame((Atom("ha_auth"), proof(
            b"t", b"confd_ha-peer-v1:secondary", nonce_p, nonce_s), b"", b"", b"initial")))
        assert _codec.decode(_io.read_frame(sk))[:2] == (Atom("ha_sync"), Atom("nocopy"))
        assert ev.next() == (ARRIVED, (b"slow", A[1]))
        assert p.status() == (ha.STATE_PRIMARY, [(b"slow", A[1])])
        sk.close()
        s.close()
    finally:
        c.close()


# ================================================================ control interface


def test_control_interface_inspection(cluster):
    n1, n2 = cluster.add("n1", 1), cluster.add("n2", 2)
    assert (n1.state_name, n1.node_id, n1.peers, n1.subscribers) == ("NONE", None, [], 0)
    be_primary(n1, "n1", token="do-not-log-me")
    be_secondary(n2, "n2", n1, "n1", token="do-not-log-me")
    e = n1.events()
    wait_until(lambda: n1.subscribers == 1)
    assert n1.peers == [{"role": "secondary", "nodeid": b"n2", "address": "127.0.0.2"}]
    assert n2.peers == [{"role": "primary", "nodeid": b"n1", "address": "127.0.0.1"}]
    decisions = n1.decisions
    assert any("beprimary 'n1': NONE -> PRIMARY" in d for d in decisions)
    assert any("secondary 'n2' admitted from 127.0.0.2" in d for d in decisions)
    assert not any("do-not-log-me" in d for d in decisions + n2.decisions)
    n1.partition("127.0.0.9")
    assert n1.partitions == ["127.0.0.9"]
    n1.heal()
    assert n1.partitions == [] and not n1.frozen
    e.close()
    wait_until(lambda: n1.subscribers == 0)


def test_restart_keeps_ipc_port_and_resets_the_rest(cluster):
    n1 = cluster.add("n1", 1, start_phase=0)
    port = n1.port
    n1.set_start_phase(1)
    s = n1.ctl()
    ha.beprimary(s, "n1")
    n1.set_upgrade(True)
    n1.freeze()
    n1.restart()
    with pytest.raises(ha.error.EOF):
        ha.status(s)  # the daemon went away under the old socket
    assert n1.port == port
    assert (n1.state, n1.node_id, n1.start_phase, n1.upgrade, n1.frozen) == (1, None, 0, False, False)
    assert n1.ha_status() == (ha.STATE_NONE, [])


def test_event_subscriber_that_stops_reading_is_closed(cluster):
    p = cluster.add("p", 1, event_write_block=0.3)
    s = be_primary(p, "p", token="t")
    stuck = socket.socket()
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.settimeout(3)
    _handshake.open_connection(stuck, _protocol.CT_EVENT, (p.ip, p.port))
    stuck.sendall(_notifications.encode_subscription(HA_INFO))
    assert _codec.decode(_io.read_frame(stuck)) == "ok"
    reader = p.events()
    wait_until(lambda: p.subscribers == 2)
    big = b"x" * (1 << 20)  # 1 MiB node ids make 1 MiB events: buffers fill after a few
    for i in range(12):
        sock, _ = scripted_join(p.ip, cluster.ha_port, b"t", big + b"%d" % i, b"p")
        assert reader.next()[0] == ARRIVED
        sock.close()  # a lost secondary: SECONDARY_DIED, with its id
        assert reader.next()[0] == DIED
        if p.subscribers == 1:
            break
    wait_until(lambda: p.subscribers == 1, timeout=3)  # B-28: the blocked one was closed
    with pytest.raises((ConnectionResetError, ha.error.EOF)):
        while True:  # what was sent before the close, then the reset
            if not stuck.recv(1 << 16):
                raise ha.error.EOF()
    stuck.close()
    ha.benone(s)
    assert reader.next() == (IS_NONE, 0)  # the reading subscriber is still served


# ================================================================ bounds and robustness


def test_peer_flooding_a_connection_nobody_consumes_is_closed_by_bytes():
    """The frames queued on an inter-node connection are bounded in bytes (4 × max_frame), not
    only in count: a joining node whose admission waits for the primary's engine (held by an
    unacknowledged HA_INFO_SYNC event, docs/conformance.md "One order at a time") and that
    floods its connection meanwhile is cut off, and never arrives (B-25)."""
    c = Cluster(tick=5)  # the scripted secondary does not tick
    try:
        p = c.add("p", 1, max_frame=1024)
        ev = p.events()
        sync = p.events(HA_INFO | HA_INFO_SYNC)
        s = be_primary(p, "p", token="t")
        assert sync.next() == (IS_PRIMARY, 0)  # not acknowledged: the engine waits
        assert ev.next() == (IS_PRIMARY, 0)
        sock, _ = scripted_join(p.ip, c.ha_port, b"t", b"flood", b"p", read_sync=False)
        junk = _codec.encode_frame((Atom("ha_junk"), b"x" * 900))
        sock.sendall(junk * 40)  # 37 KiB in 40 frames: nothing near the frame-count limit
        assert read_until_closed(sock, 2.0) == []  # never admitted: no ha_sync
        sock.close()
        assert p.status() == (ha.STATE_PRIMARY, [])
        sync.ack()
        ev.quiet(0.2)  # no SECONDARY_ARRIVED
        assert p.status() == (ha.STATE_PRIMARY, [])
        assert p.ha_status("t") == (ha.STATE_PRIMARY, [])
        s.close()
    finally:
        c.close()
