"""Joins between emulated nodes and their outcomes: the join errors in their check order,
the join deadline, duplicate and long node ids, primary addresses given as host names and
IPv6, and scripted peers speaking the project's peer protocol (docs/peer-protocol.md) by hand
with ``confd_ha._protocol`` only -- all through the real client. What ConfD 8.2.5 does is in
docs/conformance.md ("Events", "Names", "Liveness and timings"); the rest is the emulator's own.
"""

from __future__ import annotations

import logging
import socket
import threading
import time

import pytest

import confd_ha as ha
from confd_ha import _address, _codec, _io, _protocol, error
from confd_ha._terms import Atom
from emulator_helpers import (
    A, ARRIVED, HA_VSN, INITIALIZED, IS_NONE, NOPRIMARY, PEER_VSN, be_primary,
    be_secondary, join_error, proof,
)


# ================================================================ join errors


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
        node_ev = node.events()
        assert join_error(node, "s%d" % i, p.ip, pid, token) == want, cfg
        assert node.state == (ha.STATE_SECONDARY if want == 0 else ha.STATE_NONE)
        assert node_ev.next() == ((INITIALIZED, 1) if want == 0 else (IS_NONE, 0))
    # A rejected join produces no event on the primary, only a log line
    # (docs/peer-protocol.md); the joining node ends it with IS_NONE (docs/conformance.md).
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


@pytest.mark.parametrize("tick,join_timeout,deadline", [(0.2, 1.0, 1.0), (0.5, 0.6, 1.5)])
def test_join_deadline_after_connect_is_closed(cluster, fake_listener, tick, join_timeout,
                                               deadline):
    """docs/conformance.md "Liveness and timings" (join_frozen_primary): a join whose TCP
    connection was made gives up with HA_CLOSED after join_timeout (ConfD: 10 s) or 3 tick
    timeouts, whichever is longer -- not after a number of ticks alone."""
    n1 = cluster.add("n1", 1, tick_timeout=tick, join_timeout=join_timeout)
    # a primary that accepts the connection and then says nothing, past the deadline
    _serve_once(fake_listener, lambda c: time.sleep(deadline + 1.0))
    t0 = time.monotonic()
    assert join_error(n1, "n1", "127.0.0.9", "fake") == error.ERR_HA_CLOSED
    assert deadline - 0.05 < time.monotonic() - t0 < deadline + 0.5


def test_join_unexpected_reply_is_closed(cluster, fake_listener):
    n1 = cluster.add("n1", 1)

    def script(c):
        _io.read_frame(c)
        c.sendall(_codec.encode_frame((Atom("ha_welcome"), 1)))
        time.sleep(1)     # keep the connection open: the node, not this peer, must close it
    _serve_once(fake_listener, script)
    assert join_error(n1, "n1", "127.0.0.9", "fake") == error.ERR_HA_CLOSED


def test_scripted_primary_sees_no_token_and_torn_transaction_invalidates(cluster, fake_listener):
    """A scripted primary speaks the documented peer protocol; a transaction cut off in the
    middle makes the secondary discard its transaction id (B-14)."""
    n1 = cluster.add("n1", 1)
    token = b"sekrit-token"
    seen = []

    def script(c):
        hello = _codec.decode(_io.read_frame(c))
        seen.append(hello)
        tag, vsn, ha_vsn, sid, expected, nonce_s = hello
        nonce_p = bytes(range(32))
        c.sendall(_codec.encode_frame((Atom("ha_challenge"), b"fake", nonce_p, proof(
            token, b"confd_ha-peer-v1:primary", nonce_s, nonce_p))))
        auth = _codec.decode(_io.read_frame(c))
        seen.append(auth)
        assert auth[1] == proof(token, b"confd_ha-peer-v1:secondary", nonce_p, nonce_s)
        c.sendall(_codec.encode_frame((Atom("ha_sync"), Atom("nocopy"), b"initial")))
        seen.append(_codec.decode(_io.read_frame(c)))
        trans = _codec.encode_frame((Atom("ha_trans"), 1, b"fake-1-1", b'[["set","/a","1"]]'))
        c.sendall(trans)
        seen.append(_codec.decode(_io.read_frame(c)))
        c.sendall(_codec.encode_frame((Atom("ha_trans"), 2, b"fake-2-2", b'[["set","/b","2"]]'))[:-3])
        time.sleep(0.1)   # a peer that stalls mid-frame before it dies: not a wait for the node

    t = _serve_once(fake_listener, script)
    ev = n1.events()
    s = n1.ctl(token.decode())
    ha.besecondary(s, "n1", "fake", "127.0.0.9", 1)
    # copy=1 in the event whatever the primary sent (docs/conformance.md "Events"); on the
    # wire the secondary confirms what it got: no copy
    assert ev.expect((INITIALIZED, 1), (NOPRIMARY, error.ERR_HA_CLOSED), (IS_NONE, 0))
    t.join(3)
    hello, auth, synced, ack = seen
    assert hello[:5] == (Atom("ha_hello"), PEER_VSN, HA_VSN, b"n1", b"fake")
    assert len(hello[5]) == 32
    assert auth[0] == "ha_auth" and auth[2:] == (b"", b"", b"initial")
    assert synced == (Atom("ha_synced"), 0) and ack == (Atom("ha_ack"), 1)
    assert all(token not in _codec.encode(term) for term in seen)
    assert n1.get("/a") == "1" and n1.get("/b") is None
    assert n1.txid == "invalid"


def test_listener_rejects_bad_version_and_bad_proof_from_scripted_secondary(cluster):
    p = cluster.add("p", 1)
    be_primary(p, "p", token="t")

    def joiner(vsn, ha_vsn, proof):
        c = socket.create_connection((p.ip, cluster.ha_port), timeout=3)
        c.sendall(_codec.encode_frame((Atom("ha_hello"), vsn, ha_vsn, b"x", b"p", bytes(32))))
        reply = _codec.decode(_io.read_frame(c))
        if reply[0] == "ha_challenge":
            c.sendall(_codec.encode_frame((Atom("ha_auth"), proof(reply[2]), b"", b"", b"initial")))
            reply = _codec.decode(_io.read_frame(c))
        if reply[0] == "ha_reject":
            with pytest.raises(ha.error.EOF):  # and the listener closes
                _io.read_frame(c)
        c.close()
        return reply

    good = lambda nonce_p: proof(b"t", b"confd_ha-peer-v1:secondary", nonce_p, bytes(32))
    assert joiner(PEER_VSN - 1, HA_VSN, good) == (Atom("ha_reject"), error.ERR_HA_BADVSN)
    assert joiner(PEER_VSN + 1, HA_VSN, good) == (Atom("ha_reject"), error.ERR_HA_BADVSN)
    assert joiner(PEER_VSN, 0x08020400, good) == (Atom("ha_reject"), error.ERR_HA_BADVSN)
    assert joiner(PEER_VSN, HA_VSN, lambda n: bytes(32)) == (Atom("ha_reject"),
                                                             error.ERR_HA_BADTOKEN)
    assert joiner(PEER_VSN, HA_VSN, good)[:2] == (Atom("ha_sync"), Atom("nocopy"))


def test_junk_on_ha_port_does_not_disturb_the_primary(cluster):
    n1, n2 = cluster.add("n1", 1), cluster.add("n2", 2)
    be_primary(n1, "n1")
    junk = [socket.create_connection((n1.ip, cluster.ha_port), timeout=3) for _ in range(3)]
    junk[0].sendall(b"\xff\xff\xff\xffgarbage")
    junk[1].sendall(_protocol.frame(b"not a term"))
    junk[2].sendall(_codec.encode_frame((Atom("ha_synced"), 1)))  # out of sequence
    for j in junk:
        assert j.recv(10) == b""
        j.close()
    be_secondary(n2, "n2", n1, "n1")


# ================================================================ node ids


def test_duplicate_node_id_is_refused_and_the_holder_stays(cluster):
    """docs/conformance.md "Names" (join_duplicate_id): an id already in the cluster is
    refused with HA_BADNAME and the node that has it stays; once secondary_dead has removed
    it, the id is free again."""
    n1, n2, n3 = cluster.add("n1", 1), cluster.add("n2", 2), cluster.add("n3", 3)
    s1 = be_primary(n1, "n1")
    be_secondary(n2, "dup", n1, "n1")
    e1, e2, e3 = n1.events(), n2.events(), n3.events()
    assert join_error(n3, "dup", n1.ip, "n1") == error.ERR_HA_BADNAME
    assert join_error(n3, "n1", n1.ip, "n1") == error.ERR_HA_BADNAME   # the primary's own id
    assert e3.expect((IS_NONE, 0), (IS_NONE, 0))
    e1.quiet(0.1)
    e2.quiet(0.01)
    assert n1.status() == (ha.STATE_PRIMARY, [(b"dup", A[2])])
    assert n2.state == ha.STATE_SECONDARY
    ha.secondary_dead(s1, "dup")
    assert e2.expect((NOPRIMARY, error.ERR_HA_CLOSED), (IS_NONE, 0))
    assert join_error(n3, "dup", n1.ip, "n1") == 0
    assert e1.next() == (ARRIVED, (b"dup", A[3]))
    assert n1.status() == (ha.STATE_PRIMARY, [(b"dup", A[3])])


def test_long_node_ids_commit_and_replicate_up_to_their_limit(cluster):
    """The transaction id is built from the node id and must stay within its 1024-character
    limit (B-14) whatever the id's length. ConfD joins ids of up to 249 bytes; a primary id of
    250 bytes or more makes every join to it fail with HA_BADTOKEN (docs/conformance.md
    "Names", nodeid_long_*)."""
    n1, n2 = cluster.add("n1", 1), cluster.add("n2", 2)
    long_id = "n" * 1200
    s1 = be_primary(n1, long_id)
    txid = n1.commit([("set", "/before", "1")])
    assert 0 < len(txid) <= 1024
    assert join_error(n2, "n2", n1.ip, long_id) == error.ERR_HA_BADTOKEN
    ha.benone(s1)
    ha.beprimary(s1, "p" * 249)
    txid = n1.commit([("set", "/before", "2")])
    assert 0 < len(txid) <= 1024
    s2 = be_secondary(n2, "s" * 249, n1, "p" * 249)
    assert n2.get("/before") == "2" and n2.txid == txid
    txid2 = n1.commit([("set", "/after", "3")])
    assert n2.get("/after") == "3" and n2.txid == txid2 != txid
    s1.close()
    s2.close()


# ================================================================ addresses


def test_string_primary_address_is_resolved(cluster):
    n1, n2 = cluster.add("n1", 1), cluster.add("n2", 2)
    be_primary(n1, "n1")
    c = n2.ctl()
    # the C API's AF_UNSPEC form (W-22): a host name as a binary
    c.sendall(_protocol.encode_order(_protocol.BESECONDARY, b"n2", b"n1",
                                     (_address.AF_STRING, b"localhost"), 1))
    _protocol.decode_reply(_io.read_frame(c))
    assert n2.status() == (ha.STATE_SECONDARY, [(b"n1", A[1])])  # reported as an IP tuple
    c.sendall(_protocol.encode_order(_protocol.BESECONDARY, b"n2", b"n1",
                                     (_address.AF_STRING, b"no-such-host.invalid"), 1))
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
