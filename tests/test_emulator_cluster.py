"""Clusters of emulated nodes: joins and their errors, failover, ticks, freeze, partitions,
relays, replication, restarts and HA_INFO_SYNC (ha-behaviour §5-§13), through the real client.
Hostile or scripted peers speak the project's peer protocol (docs/peer-protocol.md) with
``confd_ha._protocol`` only.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import socket
import threading
import time

import pytest

import confd_ha as ha
from confd_ha import _handshake, _io, _protocol, error
from confd_ha._terms import Atom
from emulator_helpers import HA_INFO, HA_INFO_SYNC, Cluster, wait_until

NOPRIMARY, DIED, ARRIVED, INITIALIZED, IS_PRIMARY, IS_NONE, RESULT = range(1, 8)
A = {n: (127, 0, 0, n) for n in range(1, 10)}
TICK = 0.2


@pytest.fixture
def cluster():
    c = Cluster()
    yield c
    c.close()


@pytest.fixture
def fast():
    """A cluster with 0.2 s ticks: deaths by silence after 0.6 s."""
    c = Cluster(tick=TICK)
    yield c
    c.close()


def be_primary(node, name, token="tok"):
    s = node.ctl(token)
    ha.beprimary(s, name)
    return s


def be_secondary(node, me, primary, pid, token="tok", wait=True):
    s = node.ctl(token)
    ha.besecondary(s, me, pid, primary.ip, 1)
    if wait:
        wait_until(lambda: any(nid == me.encode() for nid, _ in primary.status()[1]))
    return s


def join_error(node, me, primary_ip, pid, token="tok") -> int:
    s = node.ctl(token)
    try:
        ha.besecondary(s, me, pid, primary_ip, 1)
    except error.Error as exc:
        return exc.confd_errno
    finally:
        s.close()
    return 0


# ================================================================ join errors (B-13)


def test_join_errors_in_check_order(cluster, caplog):
    caplog.set_level(logging.INFO, logger="confd_ha.emulator")
    p = cluster.add("p", 1, fxs_fp=b"schema-1", ha_config_fp=b"cfg-1")
    be_primary(p, "p", token="right-token")
    ev = p.events()
    ok = dict(fxs_fp=b"schema-1", ha_config_fp=b"cfg-1")
    # Each node differs in one check and in every later one: the first failing check decides.
    cases = [
        (dict(ok, ha_vsn=0x08020400, fxs_fp=b"x", ha_config_fp=b"y"), "wrong", "bad", error.ERR_HA_BADVSN),
        (dict(ok, fxs_fp=b"x", ha_config_fp=b"y"), "wrong", "bad", error.ERR_HA_BADTOKEN),
        (dict(ok, fxs_fp=b"x", ha_config_fp=b"y"), "right-token", "bad", error.ERR_HA_BADNAME),
        (dict(ok, fxs_fp=b"x", ha_config_fp=b"y"), "right-token", "p", error.ERR_HA_BADFXS),
        (dict(ok, ha_config_fp=b"y"), "right-token", "p", error.ERR_HA_BADCONFIG),
        (ok, "right-token", "p", 0),
    ]
    for i, (cfg, token, pid, want) in enumerate(cases):
        node = cluster.add("s%d" % i, 2 + i, **cfg)
        assert join_error(node, "s%d" % i, p.ip, pid, token) == want, cfg
        assert node.state == (ha.STATE_SECONDARY if want == 0 else ha.STATE_NONE)
    # B-13: rejected secondaries produce no event on the primary, only a log line.
    assert ev.next() == (ARRIVED, (b"s5", A[7]))
    ev.quiet(0.1)
    assert "rejected" in caplog.text
    assert "right-token" not in caplog.text and "wrong" not in caplog.text  # never the token
    assert not any("right-token" in d for n in cluster.nodes for d in n.decisions)


def test_join_connect_error(cluster):
    n2 = cluster.add("n2", 2)
    assert join_error(n2, "n2", "127.0.0.1", "n1") == error.ERR_HA_CONNECT  # nobody listens
    n1 = cluster.add("n1", 1)
    s1 = be_primary(n1, "n1")
    be_secondary(n2, "n2", n1, "n1")
    n3 = cluster.add("n3", 3)
    assert join_error(n3, "n3", n2.ip, "n2") == error.ERR_HA_CONNECT  # plain secondary: no listener
    ha.benone(s1)
    assert join_error(n3, "n3", n1.ip, "n1") == error.ERR_HA_CONNECT


@pytest.fixture
def fake_listener(cluster):
    """A scripted listener at 127.0.0.9 on the cluster's HA port."""
    srv = socket.create_server(("127.0.0.9", cluster.ha_port))
    srv.settimeout(5)
    yield srv
    srv.close()


def _serve_once(srv, script):
    def run():
        try:
            conn, _ = srv.accept()
        except OSError:
            return
        conn.settimeout(5)
        try:
            script(conn)
        except (OSError, error.Error, error.EOF):
            pass
        finally:
            conn.close()
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_join_closed_by_primary_after_hello(cluster, fake_listener):
    n1 = cluster.add("n1", 1)
    _serve_once(fake_listener, lambda c: _io.read_frame(c))
    assert join_error(n1, "n1", "127.0.0.9", "fake") == error.ERR_HA_CLOSED


def test_join_deadline_after_connect_is_closed(cluster, fake_listener):
    n1 = cluster.add("n1", 1, tick_timeout=0.2)
    _serve_once(fake_listener, lambda c: time.sleep(2))
    t0 = time.monotonic()
    assert join_error(n1, "n1", "127.0.0.9", "fake") == error.ERR_HA_CLOSED
    assert 0.5 < time.monotonic() - t0 < 1.5  # B-16: 3 × own tick


def test_join_unexpected_reply_is_closed(cluster, fake_listener):
    n1 = cluster.add("n1", 1)

    def script(c):
        _io.read_frame(c)
        c.sendall(_protocol.encode_frame((Atom("ha_welcome"), 1)))
        time.sleep(1)
    _serve_once(fake_listener, script)
    assert join_error(n1, "n1", "127.0.0.9", "fake") == error.ERR_HA_CLOSED


def _proof(token, label, a, b):
    return hmac.new(token, label + a + b, hashlib.sha256).digest()


def test_scripted_primary_sees_no_token_and_torn_transaction_invalidates(cluster, fake_listener):
    """A scripted primary speaks the documented peer protocol; a transaction cut off in the
    middle makes the secondary discard its transaction id (B-14)."""
    n1 = cluster.add("n1", 1)
    token = b"sekrit-token"
    seen = []

    def script(c):
        hello = _protocol.decode(_io.read_frame(c))
        seen.append(hello)
        tag, vsn, ha_vsn, sid, expected, nonce_s = hello
        nonce_p = bytes(range(32))
        c.sendall(_protocol.encode_frame((Atom("ha_challenge"), b"fake", nonce_p,
                                          _proof(token, b"confd_ha-peer-v1:primary", nonce_s, nonce_p))))
        auth = _protocol.decode(_io.read_frame(c))
        seen.append(auth)
        assert hmac.compare_digest(auth[1], _proof(token, b"confd_ha-peer-v1:secondary", nonce_p, nonce_s))
        c.sendall(_protocol.encode_frame((Atom("ha_sync"), Atom("nocopy"), b"initial")))
        seen.append(_protocol.decode(_io.read_frame(c)))
        trans = _protocol.encode_frame((Atom("ha_trans"), 1, b"fake-1-1", b'[["set","/a","1"]]'))
        c.sendall(trans)
        seen.append(_protocol.decode(_io.read_frame(c)))
        c.sendall(_protocol.encode_frame((Atom("ha_trans"), 2, b"fake-2-2", b'[["set","/b","2"]]'))[:-3])
        time.sleep(0.1)

    t = _serve_once(fake_listener, script)
    ev = n1.events()
    s = n1.ctl(token.decode())
    ha.besecondary(s, "n1", "fake", "127.0.0.9", 1)
    assert ev.next() == (INITIALIZED, 0)
    assert ev.next() == (NOPRIMARY, error.ERR_HA_CLOSED)
    t.join(3)
    hello, auth, synced, ack = seen
    assert hello[:5] == (Atom("ha_hello"), 1, 0x08020500, b"n1", b"fake") and len(hello[5]) == 32
    assert auth[0] == "ha_auth" and auth[2:] == (b"", b"", b"initial")
    assert synced == (Atom("ha_synced"), 0) and ack == (Atom("ha_ack"), 1)
    assert all(token not in _protocol.encode(term) for term in seen)
    assert n1.get("/a") == "1" and n1.get("/b") is None
    assert n1.txid == "invalid"


def test_listener_rejects_bad_version_and_bad_proof_from_scripted_secondary(cluster):
    p = cluster.add("p", 1)
    be_primary(p, "p", token="t")

    def joiner(vsn, ha_vsn, proof):
        c = socket.create_connection((p.ip, cluster.ha_port), timeout=3)
        c.sendall(_protocol.encode_frame((Atom("ha_hello"), vsn, ha_vsn, b"x", b"p", bytes(32))))
        reply = _protocol.decode(_io.read_frame(c))
        if reply[0] == "ha_challenge":
            c.sendall(_protocol.encode_frame((Atom("ha_auth"), proof(reply[2]), b"", b"", b"initial")))
            reply = _protocol.decode(_io.read_frame(c))
        if reply[0] == "ha_reject":
            with pytest.raises(ha.error.EOF):  # and the listener closes
                _io.read_frame(c)
        c.close()
        return reply

    good = lambda nonce_p: _proof(b"t", b"confd_ha-peer-v1:secondary", nonce_p, bytes(32))
    assert joiner(2, 0x08020500, good) == (Atom("ha_reject"), error.ERR_HA_BADVSN)
    assert joiner(1, 0x08020400, good) == (Atom("ha_reject"), error.ERR_HA_BADVSN)
    assert joiner(1, 0x08020500, lambda n: bytes(32)) == (Atom("ha_reject"), error.ERR_HA_BADTOKEN)
    assert joiner(1, 0x08020500, good)[:2] == (Atom("ha_sync"), Atom("nocopy"))


def test_junk_on_ha_port_does_not_disturb_the_primary(cluster):
    n1, n2 = cluster.add("n1", 1), cluster.add("n2", 2)
    be_primary(n1, "n1")
    junk = [socket.create_connection((n1.ip, cluster.ha_port), timeout=3) for _ in range(3)]
    junk[0].sendall(b"\xff\xff\xff\xffgarbage")
    junk[1].sendall(_protocol.frame(b"not a term"))
    junk[2].sendall(_protocol.encode_frame((Atom("ha_synced"), 1)))  # out of sequence
    for j in junk:
        assert j.recv(10) == b""
        j.close()
    be_secondary(n2, "n2", n1, "n1")


# ================================================================ deaths and failover


def test_kill_primary_then_failover_without_copy(cluster):
    n1, n2, n3 = cluster.add("n1", 1), cluster.add("n2", 2), cluster.add("n3", 3)
    be_primary(n1, "n1")
    n1.commit([("set", "/cfg", "a")])
    be_secondary(n2, "n2", n1, "n1")
    be_secondary(n3, "n3", n1, "n1")
    e2, e3 = n2.events(), n3.events()
    n1.kill()
    assert e2.next() == (NOPRIMARY, error.ERR_HA_CLOSED)
    assert e3.next() == (NOPRIMARY, error.ERR_HA_CLOSED)
    e2.quiet(0.05)  # B-22: no IS_NONE on the automatic drop
    # the framework promotes n2 and re-points n3: same transaction id, no copy (§5.4)
    s2 = be_primary(n2, "n2")
    assert e2.next() == (IS_PRIMARY, 0)
    be_secondary(n3, "n3", n2, "n2")
    assert e3.next() == (INITIALIZED, 0)
    assert n3.get("/cfg") == "a"
    assert e2.next() == (ARRIVED, (b"n3", A[3]))
    assert ha.status(s2)[1] == [{"nodeid": "n3", "address": "127.0.0.3"}]


def test_kill_secondary_primary_sees_died(cluster):
    n1, n2 = cluster.add("n1", 1), cluster.add("n2", 2)
    be_primary(n1, "n1")
    be_secondary(n2, "n2", n1, "n1")
    e1 = n1.events()
    n2.kill()
    assert e1.next() == (DIED, (b"n2", A[2]))
    assert n1.status() == (ha.STATE_PRIMARY, [])


def test_freeze_primary_gives_notick(fast):
    n1, n2, n3 = fast.add("n1", 1), fast.add("n2", 2), fast.add("n3", 3)
    be_primary(n1, "n1")
    be_secondary(n2, "n2", n1, "n1")
    be_secondary(n3, "n3", n1, "n1")
    e1, e2, e3 = n1.events(), n2.events(), n3.events()
    t0 = time.monotonic()
    n1.freeze()
    assert e2.next() == (NOPRIMARY, error.ERR_HA_NOTICK)
    assert time.monotonic() - t0 < 3 * TICK + 0.5
    assert e3.next() == (NOPRIMARY, error.ERR_HA_NOTICK)
    assert n2.status() == (ha.STATE_NONE, [])
    e1.quiet(0.2)  # frozen: it notices nothing
    assert len(n1.status()[1]) == 2
    n1.thaw()  # now it reads the closes the secondaries sent meanwhile
    got = sorted([e1.next(), e1.next()])
    assert got == [(DIED, (b"n2", A[2])), (DIED, (b"n3", A[3]))]


def test_freeze_secondary_primary_declares_it_dead_and_commit_returns(fast):
    n1, n2 = fast.add("n1", 1), fast.add("n2", 2)
    be_primary(n1, "n1")
    be_secondary(n2, "n2", n1, "n1")
    e1, e2 = n1.events(), n2.events()
    n2.freeze()
    t0 = time.monotonic()
    n1.commit([("set", "/during-freeze", "x")])  # never acknowledged: returns when n2 is dead
    assert time.monotonic() - t0 < 3 * TICK + 0.5
    assert e1.next() == (DIED, (b"n2", A[2]))
    e2.quiet(0.1)
    assert n2.state == ha.STATE_SECONDARY
    n2.thaw()
    assert e2.next() == (NOPRIMARY, error.ERR_HA_CLOSED)
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


def test_partition_both_sides_see_notick_then_heal(fast):
    n1, n2, n3 = fast.add("n1", 1), fast.add("n2", 2), fast.add("n3", 3)
    be_primary(n1, "n1")
    be_secondary(n2, "n2", n1, "n1")
    be_secondary(n3, "n3", n1, "n1")
    e1, e2, e3 = n1.events(), n2.events(), n3.events()
    n1.partition("127.0.0.2")
    assert e2.next() == (NOPRIMARY, error.ERR_HA_NOTICK)
    assert e1.next() == (DIED, (b"n2", A[2]))
    e3.quiet(0.1)
    n1.commit([("set", "/p", "1")])
    assert n3.get("/p") == "1" and n2.get("/p") is None
    s2 = n2.ctl()
    with pytest.raises(error.Error) as exc:  # n1 holds everything from 127.0.0.2
        ha.besecondary(s2, "n2", "n1", n1.ip, 1)
    assert exc.value.confd_errno == error.ERR_HA_CLOSED
    n1.heal("127.0.0.2")
    ha.besecondary(s2, "n2", "n1", n1.ip, 1)
    assert e2.next() == (INITIALIZED, 1)  # it missed a transaction: full copy
    assert n2.get("/p") == "1"


def test_partition_on_the_joining_side_gives_connect_error(fast):
    n1, n2 = fast.add("n1", 1), fast.add("n2", 2)
    be_primary(n1, "n1")
    n2.partition("127.0.0.1")
    t0 = time.monotonic()
    assert join_error(n2, "n2", n1.ip, "n1") == error.ERR_HA_CONNECT
    assert time.monotonic() - t0 >= 3 * TICK - 0.05
    n2.heal()
    assert join_error(n2, "n2", n1.ip, "n1") == 0


def test_secondary_dead_node_rejoins_same_name_newer_wins(cluster):
    n1, n2, n3 = cluster.add("n1", 1), cluster.add("n2", 2), cluster.add("n3", 3)
    be_primary(n1, "n1")
    be_secondary(n2, "dup", n1, "n1")
    e1, e2 = n1.events(), n2.events()
    s3 = n3.ctl()
    ha.besecondary(s3, "dup", "n1", n1.ip, 1)  # B-17
    assert e1.expect((DIED, (b"dup", A[2])), (ARRIVED, (b"dup", A[3])))
    assert e2.next() == (NOPRIMARY, error.ERR_HA_CLOSED)
    assert n1.status() == (ha.STATE_PRIMARY, [(b"dup", A[3])])


# ================================================================ relays (§6)


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
    assert e3.next() == (INITIALIZED, 1)  # the copy comes from the relay's store
    assert e4.next() == (INITIALIZED, 1)
    assert n3.get("/before") == "0"
    e1.quiet(0.1)  # B-18: no arrivals for sub-secondaries, neither on the primary ...
    e2.quiet(0.01)  # ... nor on the relay
    assert n1.status() == (ha.STATE_PRIMARY, [(b"n2", A[2])])
    assert n2.status() == (ha.STATE_SECONDARY_RELAY, [(b"n1", A[1]), (b"n3", A[3]), (b"n4", A[4])])
    for i in range(5):
        n1.commit([("set", "/r/%d" % i, str(i))])
    assert n2.get("/r/4") == "4"  # synchronous to direct secondaries (B-19) ...
    wait_until(lambda: n3.get("/r/4") == "4" and n4.get("/r/4") == "4")  # ... sub-secondaries follow
    assert n3.items() == n1.items() and n3.txid == n1.txid
    with pytest.raises(error.Error) as exc:
        n2.commit([("set", "/w", "1")])
    assert exc.value.confd_errno == error.ERR_BADSTATE
    n1.kill()
    assert e2.next() == (NOPRIMARY, error.ERR_HA_CLOSED)
    assert e3.next() == (NOPRIMARY, error.ERR_HA_CLOSED)
    assert e4.next() == (NOPRIMARY, error.ERR_HA_CLOSED)
    assert n3.status() == (ha.STATE_NONE, [])


def test_relay_killed_sub_secondaries_drop(cluster):
    n1, n2, n3 = cluster.add("n1", 1), cluster.add("n2", 2), cluster.add("n3", 3)
    be_primary(n1, "n1")
    s2 = be_secondary(n2, "n2", n1, "n1")
    ha.berelay(s2)
    be_secondary(n3, "n3", n2, "n2")
    e1, e3 = n1.events(), n3.events()
    n2.kill()
    assert e3.next() == (NOPRIMARY, error.ERR_HA_CLOSED)
    assert e1.next() == (DIED, (b"n2", A[2]))


# ================================================================ replication (B-30)


def test_commit_refused_on_secondary(cluster):
    n1, n2 = cluster.add("n1", 1), cluster.add("n2", 2)
    be_primary(n1, "n1")
    be_secondary(n2, "n2", n1, "n1")
    with pytest.raises(error.Error) as exc:
        n2.commit([("set", "/x", "1")])
    assert exc.value.confd_errno == error.ERR_BADSTATE
    assert exc.value.confd_lasterr == "node is an HA secondary: writes are not allowed"
    n2.ha_status()  # any state change makes it writable again
    s2 = n2.ctl()
    ha.benone(s2)
    assert n2.commit([("set", "/x", "1")]).startswith("n2-")


def test_every_acknowledged_commit_is_on_the_secondaries(cluster):
    n1, n2, n3 = cluster.add("n1", 1), cluster.add("n2", 2), cluster.add("n3", 3)
    be_primary(n1, "n1")
    be_secondary(n2, "n2", n1, "n1")
    be_secondary(n3, "n3", n1, "n1")
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
    time.sleep(0.02)
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
    e1 = n1.events()
    n2.kill()
    assert e1.next() == (DIED, (b"n2", A[2]))
    n2.restart()
    assert (n2.state, n2.start_phase, n2.node_id, n2.get("/a")) == (ha.STATE_NONE, 0, None, "1")
    assert n2.txid == n1.txid
    n2.set_start_phase(1)
    e2 = n2.events()
    be_secondary(n2, "n2", n1, "n1")
    assert e2.next() == (INITIALIZED, 0)  # nothing committed meanwhile: no copy
    n2.stop()
    n1.commit([("set", "/b", "2")])
    n2.restart()
    assert n2.get("/b") is None
    n2.set_start_phase(1)
    e2 = n2.events()
    be_secondary(n2, "n2", n1, "n1")
    assert e2.next() == (INITIALIZED, 1)
    assert n2.get("/b") == "2" and n2.txid == n1.txid
    n1.restart(kill=True)  # the primary restarts in NONE with its data
    assert n1.state == ha.STATE_NONE and n1.get("/b") == "2"


def test_split_brain_rejoin_overwrites_divergent_data(cluster):
    n1, n2 = cluster.add("n1", 1), cluster.add("n2", 2)
    s1 = be_primary(n1, "n1")
    be_secondary(n2, "n2", n1, "n1")
    n2.kill()
    n2.restart()
    be_primary(n2, "n2")
    n2.commit([("set", "/mine", "n2")])
    n1.commit([("set", "/mine", "n1")])
    ev = n2.events()
    s2 = n2.ctl()
    ha.besecondary(s2, "n2", "n1", n1.ip, 1)
    assert ev.expect((IS_NONE, 0), (INITIALIZED, 1))
    assert n2.get("/mine") == "n1" and n2.txid == n1.txid
    assert ha.status(s1)[1] == [{"nodeid": "n2", "address": "127.0.0.2"}]


# ================================================================ HA_INFO_SYNC (B-27)


def test_sync_subscriber_blocks_ha_work_but_not_status_ticks_or_replication(fast):
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
    c.sendall(_protocol.BENONE_FRAME)
    c.settimeout(0.2)
    with pytest.raises(socket.timeout):
        c.recv(1)  # the order waits for the acknowledgement
    time.sleep(4 * TICK)  # ticks keep flowing: nobody is declared dead
    assert n2.state == n3.state == ha.STATE_SECONDARY
    n1.commit([("set", "/while-blocked", "1")])  # replication continues
    assert n2.get("/while-blocked") == "1" and n3.get("/while-blocked") == "1"
    s_status = n1.ctl()  # replaces c (B-02): the benone still completes, its reply is lost
    assert ha.status(s_status)[0] == ha.STATE_PRIMARY  # status is answered at once
    plain.quiet(0.05)
    sync.ack()
    assert plain.next() == (IS_NONE, 0)
    assert sync.next() == (IS_NONE, 0)
    assert ha.status(s_status) == (ha.STATE_NONE, [])
    with pytest.raises(ha.error.EOF):
        _io.read_frame(c)
    sync.ack()


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
    sync.close()  # W-32: closing acknowledges everything outstanding
    t.join(3)
    assert done == [None] and n1.state == ha.STATE_NONE


def test_sync_events_of_one_join_go_out_together_and_the_next_item_waits(cluster):
    """B-27: the events of one work item (SECONDARY_INITIALIZED then BESECONDARY_RESULT of a
    join) are emitted together; the engine waits for their acknowledgements before the next
    item (here a benone, whose reply and event wait)."""
    n1, n2 = cluster.add("n1", 1), cluster.add("n2", 2)
    be_primary(n1, "n1")
    sync = n2.events(HA_INFO | HA_INFO_SYNC)
    s2 = n2.ctl()
    ha.besecondary(s2, "n2", "n1", n1.ip, 0)
    assert sync.expect((INITIALIZED, 0), (RESULT, 0))  # nothing acknowledged in between
    s2.sendall(_protocol.BENONE_FRAME)
    sync.ack()
    s2.settimeout(0.2)
    with pytest.raises(socket.timeout):
        s2.recv(1)  # one acknowledgement is not enough
    sync.quiet(0.05)
    sync.ack()
    s2.settimeout(2.0)
    assert _protocol.decode(_io.read_frame(s2)) == "ok"
    assert sync.next() == (IS_NONE, 0)
    sync.ack()


# ================================================================ scripted secondaries


def scripted_join(ip, port, token: bytes, me: bytes, pid: bytes, txid=b"initial", synced=True,
                  source=None):
    """Join a listener by speaking the peer protocol by hand; returns (socket, ha_sync term)."""
    c = socket.create_connection((ip, port), timeout=3, source_address=source)
    nonce_s = os.urandom(32)
    c.sendall(_protocol.encode_frame((Atom("ha_hello"), 1, 0x08020500, me, pid, nonce_s)))
    tag, pname, nonce_p, proof_p = _protocol.decode(_io.read_frame(c))
    assert tag == "ha_challenge" and pname == pid
    assert proof_p == _proof(token, b"confd_ha-peer-v1:primary", nonce_s, nonce_p)
    c.sendall(_protocol.encode_frame((Atom("ha_auth"), _proof(token, b"confd_ha-peer-v1:secondary",
                                                               nonce_p, nonce_s), b"", b"", txid)))
    sync = _protocol.decode(_io.read_frame(c))
    if synced:
        c.sendall(_protocol.encode_frame((Atom("ha_synced"), 0 if sync[1] == "nocopy" else 1)))
    return c, sync


def test_status_lists_at_most_255_secondaries_in_arrival_order():
    c = Cluster(tick=5)  # the scripted secondaries do not tick
    socks = []
    try:
        p = c.add("p", 1)
        be_primary(p, "p", token="t")
        for i in range(256):
            socks.append(scripted_join(p.ip, c.ha_port, b"t", b"s%03d" % i, b"p",
                                       source=("127.0.0.%d" % (2 + i % 5), 0))[0])
        wait_until(lambda: len(p.node._secondaries) == 256)
        state, nodes = p.ha_status("t")
        assert state == ha.STATE_PRIMARY and len(nodes) == 255  # W-20, B-24
        assert [n["nodeid"] for n in nodes] == ["s%03d" % i for i in range(255)]
        assert nodes[7]["address"] == "127.0.0.4"
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
    p.commit([("set", "/during-sync", "1")])  # forwarded after the snapshot, not waited for
    trans = _protocol.decode(_io.read_frame(sock))
    assert trans[:2] == (Atom("ha_trans"), 1) and trans[3] == b'[["set","/during-sync","1"]]'
    ha.secondary_dead(s, "slow")  # B-10: cut off, but it never arrived: no event
    assert _protocol.decode(_io.read_frame(sock)) == (Atom("ha_bye"), 0)
    with pytest.raises(ha.error.EOF):
        _io.read_frame(sock)
    ev.quiet(0.2)
    sock.close()


def test_string_primary_address_is_resolved(cluster):
    n1, n2 = cluster.add("n1", 1), cluster.add("n2", 2)
    be_primary(n1, "n1")
    c = n2.ctl()
    # the C API's AF_UNSPEC form (W-22): a host name as a binary
    c.sendall(_protocol.encode_order(_protocol.BESECONDARY, b"n2", b"n1",
                                     (_protocol.AF_STRING, b"localhost"), 1))
    _protocol.decode_reply(_io.read_frame(c))
    assert n2.status() == (ha.STATE_SECONDARY, [(b"n1", A[1])])  # reported as an IP tuple
    c.sendall(_protocol.encode_order(_protocol.BESECONDARY, b"n2", b"n1",
                                     (_protocol.AF_STRING, b"no-such-host.invalid"), 1))
    with pytest.raises(error.Error) as exc:
        _protocol.decode_reply(_io.read_frame(c))
    assert exc.value.confd_errno == error.ERR_HA_CONNECT


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback")
def test_ipv6_primary(cluster):
    p = cluster.add("p", 1, ha_address="::1")
    n2 = cluster.add("n2", 2)
    be_primary(p, "p")
    e1 = p.events()
    s2 = n2.ctl()
    ha.besecondary(s2, "n2", "p", "::1", 1)
    assert ha.status(s2) == (ha.STATE_SECONDARY, [{"nodeid": "p", "address": "::1"}])
    assert e1.next() == (ARRIVED, (b"n2", (0, 0, 0, 0, 0, 0, 0, 1)))
    assert p.ha_status() == (ha.STATE_PRIMARY, [{"nodeid": "n2", "address": "::1"}])


def test_relay_declares_unresponsive_sub_secondary_dead_silently(fast):
    n1, n2, n3 = fast.add("n1", 1), fast.add("n2", 2), fast.add("n3", 3)
    be_primary(n1, "n1")
    s2 = be_secondary(n2, "n2", n1, "n1")
    ha.berelay(s2)
    be_secondary(n3, "n3", n2, "n2")
    e1, e2 = n1.events(), n2.events()
    n3.freeze()
    t0 = time.monotonic()
    n1.commit([("set", "/k", "v")])
    # the primary waits for its relay only (B-19), not for n3's death (>= 3 ticks)
    assert time.monotonic() - t0 < 3 * TICK
    assert n2.get("/k") == "v"
    wait_until(lambda: n2.status() == (ha.STATE_SECONDARY_RELAY, [(b"n1", A[1])]), timeout=3)
    e2.quiet(0.05)  # B-18: a relay emits no SECONDARY_* events
    e1.quiet(0.01)


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
    assert any("secondary 'n2' arrived from 127.0.0.2" in d for d in decisions)
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
    stuck.sendall(_protocol.encode_subscription(HA_INFO))
    assert _protocol.decode(_io.read_frame(stuck)) == "ok"
    reader = p.events()
    wait_until(lambda: p.subscribers == 2)
    big = b"x" * (1 << 20)  # 1 MiB node ids make 1 MiB events: buffers fill after a few
    for i in range(12):
        sock, _ = scripted_join(p.ip, cluster.ha_port, b"t", big + b"%d" % i, b"p")
        assert reader.next()[0] == ARRIVED
        ha.secondary_dead(s, big + b"%d" % i)
        assert reader.next()[0] == DIED
        sock.close()
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


def read_until_closed(sock: socket.socket, timeout: float) -> list:
    """Every frame the node sends until it closes ``sock``; fails if it does not within
    ``timeout`` seconds."""
    sock.settimeout(timeout)
    frames = []
    try:
        while True:
            frames.append(_protocol.decode(_io.read_frame(sock)))
    except (ha.error.EOF, ConnectionResetError):
        return frames


def test_peer_flooding_a_connection_nobody_consumes_is_closed_by_bytes():
    """The frames queued on an inter-node connection are bounded in bytes (4 × max_frame), not
    only in count: a secondary whose arrival waits for the primary's engine (blocked by an
    unacknowledged HA_INFO_SYNC event, B-27) and that floods its connection meanwhile is cut
    off, and never arrives (B-25)."""
    c = Cluster(tick=5)  # the scripted secondary does not tick
    try:
        p = c.add("p", 1, max_frame=1024)
        ev = p.events()
        sync = p.events(HA_INFO | HA_INFO_SYNC)
        s = be_primary(p, "p", token="t")
        assert sync.next() == (IS_PRIMARY, 0)  # not acknowledged: the engine waits
        sock, _ = scripted_join(p.ip, c.ha_port, b"t", b"flood", b"p")
        junk = _protocol.encode_frame((Atom("ha_junk"), b"x" * 900))
        sock.sendall(junk * 40)  # 37 KiB in 40 frames: nothing near the frame-count limit
        read_until_closed(sock, 2.0)
        sock.close()
        assert p.status() == (ha.STATE_PRIMARY, [])
        sync.ack()
        assert ev.next() == (IS_PRIMARY, 0)
        ev.quiet(0.2)  # no SECONDARY_ARRIVED
        assert p.status() == (ha.STATE_PRIMARY, [])
        s.close()
    finally:
        c.close()


def test_very_long_node_id_still_commits_and_replicates(cluster):
    """The transaction id is built from the node id; a 1200-character id must not make it
    exceed the 1024-character limit (B-14)."""
    n1, n2 = cluster.add("n1", 1), cluster.add("n2", 2)
    long_id = "n" * 1200
    s1 = be_primary(n1, long_id)
    txid = n1.commit([("set", "/before", "1")])
    assert 0 < len(txid) <= 1024
    s2 = n2.ctl()
    ha.besecondary(s2, "n2", long_id, n1.ip, 1)
    assert n2.get("/before") == "1" and n2.txid == txid
    # B-30: a commit waits only for arrived secondaries; the reply to a synchronous join can
    # come before the primary has counted the arrival.
    wait_until(lambda: len(n1.status()[1]) == 1)
    txid2 = n1.commit([("set", "/after", "2")])
    assert n2.get("/after") == "2" and n2.txid == txid2 != txid
    s1.close()
    s2.close()


def test_secondary_dead_cuts_off_a_secondary_still_in_its_handshake():
    """B-10: a joining node between its hello and its auth (steps 2-4) is cut off by
    secondary_dead too, without any event; another joining node is not touched."""
    c = Cluster(tick=5)  # the listener's join deadline (15 s) must not close it first
    try:
        p = c.add("p", 1)
        s = be_primary(p, "p", token="t")
        ev = p.events()
        socks = {}
        for name in (b"slow", b"other"):
            sk = socket.create_connection((p.ip, c.ha_port), timeout=3)
            sk.sendall(_protocol.encode_frame((Atom("ha_hello"), 1, 0x08020500, name, b"p",
                                               os.urandom(32))))
            assert _protocol.decode(_io.read_frame(sk))[0] == "ha_challenge"
            socks[name] = sk
        ha.secondary_dead(s, "slow")
        assert read_until_closed(socks[b"slow"], 1.0) in ([], [(Atom("ha_bye"), 0)])
        socks[b"other"].settimeout(0.3)
        with pytest.raises(socket.timeout):
            socks[b"other"].recv(1, socket.MSG_PEEK)  # still open, nothing sent
        ev.quiet(0.1)
        assert p.status() == (ha.STATE_PRIMARY, [])
        for sk in socks.values():
            sk.close()
        s.close()
    finally:
        c.close()


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
        time.sleep(1.0)
        ev1.quiet(0.01)  # no SECONDARY_DIED
        ev2.quiet(0.01)  # no NOPRIMARY
        assert n2.state == ha.STATE_SECONDARY
        assert [nid for nid, _ in n1.status()[1]] == [b"n2"]
    finally:
        if hog is not None:
            hog.shutdown(socket.SHUT_RDWR)  # wakes the flooding thread
            hog.close()
        c.close()
