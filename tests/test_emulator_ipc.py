"""The emulated node's IPC port, through the real client and raw sockets.

wire-protocol.md §2.4 (W-02), §3 (W-06, W-09), §4 (W-12, W-13), §5 (W-15), §6 (W-16, W-17,
W-21), §10 (W-30, W-32); ha-behaviour §3 (B-02).
"""

from __future__ import annotations

import logging
import os
import socket
import time

import pytest

import confd_ha as ha
from confd_ha import _io, _protocol, error
from confd_ha._terms import Atom
from emulator_helpers import HA_INFO, Cluster, EventSock, wait_until

HELLO_HA = _protocol.build_hello(_protocol.Hello(17, 82, 0x08020500, 0, 0))
REPLY_OK = bytes.fromhex("000052080205003c12")


@pytest.fixture
def cluster():
    c = Cluster()
    yield c
    c.close()


def raw(node, timeout=2.0) -> socket.socket:
    s = socket.create_connection((node.ip, node.port), timeout=timeout)
    s.settimeout(timeout)
    return s


def raw_control(node, token: bytes = b"tok") -> socket.socket:
    """A hand-made HA control socket: hello, reply, raw token frame."""
    s = raw(node)
    s.sendall(HELLO_HA)
    assert _io.recv_exact(s, 9) == REPLY_OK
    s.sendall(_protocol.frame(token))
    return s


def closed_by_peer(s: socket.socket, timeout: float = 2.0) -> bool:
    """True if the peer closes ``s`` (EOF or reset) before ``timeout``; data is an error."""
    s.settimeout(timeout)
    try:
        data = s.recv(64)
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False
    assert data == b"", "expected a close, got %r" % data
    return True


# ---------------------------------------------------------------- handshake (§3)


def test_hello_reply_bytes_and_status(cluster):
    n1 = cluster.add("n1", 1)
    s = raw(n1)
    s.sendall(HELLO_HA)
    assert _io.recv_exact(s, 9) == REPLY_OK  # W-06: status 0, 82, 8.2.5, 60/18
    s.close()
    c = n1.ctl()
    assert ha.daemon_info(c) == (0, 82, 0x08020500, 60, 18)
    assert ha.status(c) == (ha.STATE_NONE, [])
    c.close()


def test_configured_identity_in_reply(cluster):
    n1 = cluster.add("n1", 1, proto_vsn=86, vsn=0x08060800, maxdepth=20, maxkeylen=9)
    c = n1.ctl()
    assert ha.daemon_info(c) == (0, 86, 0x08060800, 20, 9)
    c.close()


def test_version_window_rejects_then_client_renegotiates(cluster):
    n1 = cluster.add("n1", 1, accepted_proto_vsns=(77, 77), proto_vsn=77, vsn=0x07070100)
    s = raw(n1)
    s.sendall(HELLO_HA)  # protocol 82: outside the window
    assert _io.recv_exact(s, 9) == bytes.fromhex("01004d070701003c12")
    assert closed_by_peer(s)
    s.close()
    c = n1.ctl()  # W-05: the client retries with 77 and succeeds
    assert ha.daemon_info(c)[:3] == (0, 77, 0x07070100)
    ha.beprimary(c, "n1")
    assert ha.status(c)[0] == ha.STATE_PRIMARY
    c.close()


def test_version_window_excluding_everything_fails_connect(cluster):
    n1 = cluster.add("n1", 1, accepted_proto_vsns=(10, 20))
    with pytest.raises(error.Error) as exc:
        n1.ctl()
    assert exc.value.confd_errno == error.ERR_PROTOUSAGE


@pytest.mark.parametrize("ctype", [3, 5, 7, 18])
def test_other_client_types_closed_without_reply(cluster, ctype):
    n1 = cluster.add("n1", 1)
    s = raw(n1)
    s.sendall(_protocol.build_hello(_protocol.Hello(ctype, 82, 0x08020500, 0, 0)))
    assert closed_by_peer(s)  # W-09
    s.close()


def test_init_deadline_closes_silent_and_half_done_connections(cluster):
    n1 = cluster.add("n1", 1, init_timeout=0.3)
    idle = raw(n1)
    half = raw(n1)
    half.sendall(HELLO_HA[:5])
    no_token = raw(n1)
    no_token.sendall(HELLO_HA)
    assert _io.recv_exact(no_token, 9) == REPLY_OK
    t0 = time.monotonic()
    for s in (idle, half, no_token):
        assert closed_by_peer(s, 3.0)  # W-02
        s.close()
    assert time.monotonic() - t0 < 2.0
    c = n1.ctl()  # still serving
    assert ha.status(c) == (1, [])
    c.close()


def test_thousand_idle_connections_do_not_block_service(cluster):
    n1 = cluster.add("n1", 1)
    idle = []
    try:
        for _ in range(1000):
            idle.append(socket.create_connection((n1.ip, n1.port), timeout=2))
        junk = raw(n1)
        junk.sendall(b"\xff" * 9 + b"garbage")
        t0 = time.monotonic()
        c = n1.ctl()
        ha.beprimary(c, "n1")
        assert ha.status(c) == (ha.STATE_PRIMARY, [])
        assert time.monotonic() - t0 < 2.0  # served while the idle ones wait for their deadline
        c.close()
        junk.close()
    finally:
        for s in idle:
            s.close()


# ---------------------------------------------------------------- access check (§4)


@pytest.fixture
def secret_file(tmp_path):
    path = tmp_path / "ipc_secret"
    path.write_bytes(b"s3cret\n")  # W-14: the newline is part of the secret
    return str(path)


@pytest.mark.parametrize("variant", [1, 2])
def test_access_check_accepts_right_secret(cluster, secret_file, monkeypatch, variant):
    n1 = cluster.add("n1", 1, ipc_access_file=secret_file)
    monkeypatch.setenv("CONFD_IPC_ACCESS_FILE", secret_file)
    c = socket.socket()
    c.settimeout(3)
    ha.connect(c, "tok", n1.ip, n1.port, access_version=variant)
    ha.beprimary(c, "n1")
    assert ha.status(c)[0] == ha.STATE_PRIMARY
    e = EventSock(n1.ip, n1.port)  # event sockets go through the same check
    e.close()
    c.close()


@pytest.mark.parametrize("variant", [1, 2])
def test_access_check_wrong_secret_denied(cluster, secret_file, tmp_path, monkeypatch, variant):
    n1 = cluster.add("n1", 1, ipc_access_file=secret_file)
    wrong = tmp_path / "wrong"
    wrong.write_bytes(b"s3cret")  # no newline: a different secret
    monkeypatch.setenv("CONFD_IPC_ACCESS_FILE", str(wrong))
    c = socket.socket()
    c.settimeout(3)
    with pytest.raises(error.Error) as exc:
        ha.connect(c, "tok", n1.ip, n1.port, access_version=variant)
    assert exc.value.confd_errno == error.ERR_ACCESS_DENIED
    c.close()


def test_access_check_raw_rejection_byte(cluster, secret_file):
    n1 = cluster.add("n1", 1, ipc_access_file=secret_file)
    s = raw(n1)
    s.sendall(_protocol.build_hello(_protocol.Hello(17 | 0xC0, 82, 0x08020500, 0, 0)))
    challenge = _io.recv_exact(s, 33)
    assert challenge[0] == 0x0B
    s.sendall(b"\x0c" + b"\x00" * 32)
    assert _io.recv_exact(s, 1) == b"\x01"  # W-13
    assert closed_by_peer(s)
    s.close()


def test_access_check_nonces_are_fresh(cluster, secret_file):
    n1 = cluster.add("n1", 1, ipc_access_file=secret_file)
    seen = set()
    for _ in range(3):
        s = raw(n1)
        s.sendall(_protocol.build_hello(_protocol.Hello(17 | 0x80, 82, 0x08020500, 0, 0)))
        seen.add(_io.recv_exact(s, 17))
        s.close()
    assert len(seen) == 3


@pytest.mark.parametrize("flags", [0x00, 0x40])
def test_access_check_enabled_bad_flags_closed_silently(cluster, secret_file, flags):
    n1 = cluster.add("n1", 1, ipc_access_file=secret_file)
    s = raw(n1)
    s.sendall(_protocol.build_hello(_protocol.Hello(17 | flags, 82, 0x08020500, 0, 0)))
    assert closed_by_peer(s)  # W-12
    s.close()


def test_access_check_disabled_flagged_client_closed(cluster, secret_file, monkeypatch):
    n1 = cluster.add("n1", 1)
    monkeypatch.setenv("CONFD_IPC_ACCESS_FILE", secret_file)
    c = socket.socket()
    c.settimeout(3)
    with pytest.raises(ha.error.EOF):
        ha.connect(c, "tok", n1.ip, n1.port)
    c.close()


# ---------------------------------------------------------------- control socket (§6)


def test_one_control_socket_old_gets_eof_and_token_replaced(cluster):
    n1, n2 = cluster.add("n1", 1), cluster.add("n2", 2)
    old = n1.ctl("first")
    ha.beprimary(old, "n1")
    new = n1.ctl("second")
    # The token frame has no reply; the first answer on the new socket proves it was taken.
    assert ha.status(new)[0] == ha.STATE_PRIMARY  # B-02: the role is kept
    with pytest.raises(ha.error.EOF):
        ha.status(old)
    s2 = n2.ctl("first")
    with pytest.raises(error.Error) as exc:
        ha.besecondary(s2, "n2", "n1", n1.ip, 1)
    assert exc.value.confd_errno == error.ERR_HA_BADTOKEN
    s2 = n2.ctl("second")
    ha.besecondary(s2, "n2", "n1", n1.ip, 1)
    assert ha.status(s2)[0] == ha.STATE_SECONDARY
    for s in (old, new, s2):
        s.close()


def test_closing_control_socket_keeps_role(cluster):
    n1 = cluster.add("n1", 1)
    c = n1.ctl()
    ha.beprimary(c, "n1")
    c.close()
    time.sleep(0.05)
    assert n1.state == ha.STATE_PRIMARY
    assert n1.ha_status()[0] == ha.STATE_PRIMARY


def test_token_trailing_nul_is_stripped(cluster):
    n1, n2 = cluster.add("n1", 1), cluster.add("n2", 2)
    c = raw_control(n1, b"abc\x00")
    c.sendall(_protocol.encode_order(_protocol.BEPRIMARY, b"n1"))
    _protocol.decode_reply(_io.read_frame(c))
    s2 = n2.ctl("abc")
    ha.besecondary(s2, "n2", "n1", n1.ip, 1)  # W-16: the same token
    c.close()
    s2.close()


@pytest.mark.parametrize("term", [
    (99,), (1,), (3, b"x"), (2, b"n2", (b"n1", (1, 2, 3)), 1), (2, b"n2", (b"n1", (127, 0, 0, 1)), 7),
    [1, b"n1"], Atom("ok"), (Atom("x"), 1),
])
def test_invalid_order_answered_protousage_and_connection_kept(cluster, term):
    n1 = cluster.add("n1", 1)
    c = n1.ctl()
    c.sendall(_protocol.encode_frame(term))
    with pytest.raises(error.Error) as exc:
        _protocol.decode_reply(_io.read_frame(c))
    assert exc.value.confd_errno == error.ERR_PROTOUSAGE  # W-21
    assert ha.status(c) == (1, [])
    c.close()


@pytest.mark.parametrize("payload", [b"", b"\x83", b"junk", b"\x83\x68\x01", b"\x83\x50\x00\x00\x00\x01x"])
def test_undecodable_order_closes(cluster, payload):
    n1 = cluster.add("n1", 1)
    c = n1.ctl()
    c.sendall(_protocol.frame(payload))
    assert closed_by_peer(c)  # W-15
    c.close()
    assert n1.ha_status() == (1, [])


def test_oversized_frame_closes_without_reading_it(cluster):
    n1 = cluster.add("n1", 1, max_frame=1024)
    c = n1.ctl()
    c.sendall((1025).to_bytes(4, "big") + b"\x83")
    assert closed_by_peer(c)
    c.close()
    huge = raw(n1)
    huge.sendall(HELLO_HA)
    _io.recv_exact(huge, 9)
    huge.sendall((0xFFFFFFFF).to_bytes(4, "big"))  # as the token frame
    assert closed_by_peer(huge)
    huge.close()
    assert n1.ha_status() == (1, [])


def test_async_besecondary_never_gets_a_reply(cluster):
    n1 = cluster.add("n1", 1, start_phase=0)
    ev = n1.events()
    c = n1.ctl()
    # W-17: even the BADSTATE refusal is reported only as an event ...
    ha.besecondary(c, "n1", "n9", "127.0.0.9", 0)
    assert ev.next() == (7, error.ERR_BADSTATE)
    # ... and the next call reads only its own reply.
    assert ha.status(c) == (1, [])
    with pytest.raises(error.Error) as exc:
        ha.benone(c)
    assert exc.value.confd_errno == error.ERR_BADSTATE
    c.close()


def test_async_besecondary_atom_false_and_sync_atom_true(cluster):
    n1, n2 = cluster.add("n1", 1), cluster.add("n2", 2)
    s1 = n1.ctl()
    ha.beprimary(s1, "n1")
    ev = n2.events()
    c = n2.ctl()
    c.sendall(_protocol.encode_frame((2, b"n2", (b"n1", (127, 0, 0, 1)), Atom("false"))))
    assert ev.expect(4, (7, 0))
    assert ha.status(c)[0] == ha.STATE_SECONDARY  # nothing else was written before this reply
    c.sendall(_protocol.encode_frame((2, b"n2", (b"n1", (127, 0, 0, 1)), Atom("true"))))
    assert _protocol.decode(_io.read_frame(c)) == "ok"
    c.close()
    s1.close()


def test_unix_socket_listener(cluster, tmp_path):
    path = str(tmp_path / "ipc.sock")
    n1 = cluster.add("n1", 1, ipc_path=path)
    c = socket.socket(socket.AF_UNIX)
    c.settimeout(3)
    ha.connect(c, "tok", pstr=path)
    ha.beprimary(c, "n1")
    assert ha.status(c)[0] == ha.STATE_PRIMARY
    c.close()
    n1.stop()
    assert not os.path.exists(path)


# ---------------------------------------------------------------- event socket (§10)


def test_subscription_four_and_five_tuples_and_events(cluster):
    n1 = cluster.add("n1", 1)
    s4 = socket.create_connection((n1.ip, n1.port), timeout=3)
    s4.sendall(_protocol.build_hello(_protocol.Hello(11, 82, 0x08020500, 0, 0)))
    assert _io.recv_exact(s4, 9) == REPLY_OK
    s4.sendall(_protocol.encode_frame((HA_INFO, 0, 0, Atom("undefined"))))
    assert _protocol.decode(_io.read_frame(s4)) == "ok"
    e5 = n1.events()
    other = n1.events(mask=1 | 8)  # other bits: accepted, nothing delivered (W-30)
    only_sync = n1.events(mask=_protocol.NOTIF_HA_INFO_SYNC)
    wait_until(lambda: n1.subscribers == 4)
    c = n1.ctl()
    ha.beprimary(c, "n1")
    frame = _io.read_frame(s4)
    assert frame == _io.read_frame(e5.sock) == bytes.fromhex("8368026140680261056100")
    other.quiet(0.2)
    only_sync.quiet(0.01)
    ha.benone(c)  # not blocked: the HA_INFO_SYNC-only subscriber subscribes to nothing
    assert e5.next() == (6, 0)
    for s in (s4, c):
        s.close()
    for e in (e5, other, only_sync):
        e.close()


def test_bad_subscription_and_junk_on_event_socket(cluster):
    n1 = cluster.add("n1", 1)
    s = socket.create_connection((n1.ip, n1.port), timeout=3)
    s.sendall(_protocol.build_hello(_protocol.Hello(11, 82, 0x08020500, 0, 0)))
    _io.recv_exact(s, 9)
    s.sendall(_protocol.encode_frame((1, 2)))
    with pytest.raises(error.Error):
        _protocol.decode_reply(_io.read_frame(s))
    assert closed_by_peer(s)
    s.close()
    e = n1.events()
    e.ack()  # unsolicited: ignored (W-32)
    _io.send(e.sock, _protocol.encode_frame((1, 2, 3)))  # other frames: ignored
    c = n1.ctl()
    ha.beprimary(c, "n1")
    assert e.next() == (5, 0)
    _io.send(e.sock, _protocol.frame(b"junk"))  # undecodable: closed (W-15)
    assert closed_by_peer(e.sock)
    e.close()
    c.close()


def test_flood_of_async_orders_all_reported_and_status_still_answered(cluster):
    n1 = cluster.add("n1", 1, start_phase=0)
    ev = n1.events()
    c = n1.ctl()
    order = _protocol.encode_order(_protocol.BESECONDARY, b"n1", b"n2",
                                   (_protocol.AF_INET, socket.inet_aton("127.0.0.2")), 0)
    c.sendall(order * 2000)  # pipelined: the node reads them with bounded queueing
    assert ha.status(c) == (1, [])  # and only the status reply comes back (W-17)
    for _ in range(2000):
        assert ev.next() == (7, error.ERR_BADSTATE)
    ev.quiet(0.1)



# ---------------------------------------------------------------- W-17 before W-21


@pytest.mark.parametrize("term", [
    (2, b"n2", (b"n1", (1, 2, 3)), 0),                      # bad address
    (2, b"n2", b"not-a-target", Atom("false")),              # target not {NodeId, Addr}
    (2, b"n2", (b"n1", (127, 0, 0, 1), b"x"), 0),            # target of arity 3
    (2, b"n2", (b"n1", (127, 0, 0, 256)), 0),                # octet out of range
])
def test_async_besecondary_with_invalid_fields_writes_nothing_and_reports_21(cluster, term):
    """W-17 comes first: WaitReply 0 means nothing is ever written, even for an invalid order;
    the PROTOUSAGE outcome is reported as BESECONDARY_RESULT (B-15)."""
    n1 = cluster.add("n1", 1)
    ev = n1.events()
    c = n1.ctl()
    c.sendall(_protocol.encode_frame(term))
    assert ev.next() == (7, error.ERR_PROTOUSAGE)
    assert ha.status(c) == (1, [])  # the first frame on the socket is the status reply
    ev.quiet(0.1)
    assert not n1.joining
    c.close()


@pytest.mark.parametrize("wait", [1.0, 0.0, 2, -1, Atom("maybe"), b"false", [0], (0,)])
def test_besecondary_with_invalid_waitreply_is_protousage(cluster, wait):
    """W-21: a WaitReply that is not the integer 0/1 or the atom false/true (a float is the
    wrong element type) is answered with {error, 21}; no join starts, no event."""
    n1 = cluster.add("n1", 1)
    ev = n1.events()
    c = n1.ctl(timeout=1.0)
    c.sendall(_protocol.encode_frame((2, b"n2", (b"n1", (127, 0, 0, 9)), wait)))
    with pytest.raises(error.Error) as exc:
        _protocol.decode_reply(_io.read_frame(c))
    assert exc.value.confd_errno == error.ERR_PROTOUSAGE
    assert not n1.joining and "join" not in n1.decisions[-1]
    ev.quiet(0.1)
    assert ha.status(c) == (1, [])
    c.close()


def test_invalid_async_besecondary_in_phase_zero_is_still_protousage(cluster):
    """The order's validity is checked before the node's state (W-21 before B-03)."""
    n1 = cluster.add("n1", 1, start_phase=0)
    ev = n1.events()
    c = n1.ctl()
    c.sendall(_protocol.encode_frame((2, b"n2", (b"n1", 5), 0)) * 3)
    c.sendall(_protocol.encode_order(_protocol.BESECONDARY, b"n1", b"n2",
                                     (_protocol.AF_INET, socket.inet_aton("127.0.0.2")), 0))
    assert ev.expect((7, error.ERR_PROTOUSAGE), (7, error.ERR_PROTOUSAGE),
                     (7, error.ERR_PROTOUSAGE), (7, error.ERR_BADSTATE))
    assert ha.status(c) == (1, [])
    c.close()


# ---------------------------------------------------------------- connection cap


def test_connections_above_the_cap_are_closed_at_once(cluster, caplog):
    """Above MAX_CONNECTIONS a new IPC connection is closed at once (logged once per burst);
    once connections go away the node serves new clients again."""
    from confd_ha.emulator import ipc

    caplog.set_level(logging.INFO, logger="confd_ha.emulator")
    limit = ipc.MAX_CONNECTIONS
    n1 = cluster.add("n1", 1, init_timeout=30)  # the idle ones stay until the test closes them
    idle = []
    try:
        for _ in range(limit):
            idle.append(socket.create_connection((n1.ip, n1.port), timeout=2))
        wait_until(lambda: cluster.lt.call(lambda: n1.node._ipc.connections) == limit)
        extra = [raw(n1) for _ in range(5)]
        for s in extra:
            assert closed_by_peer(s, 1.0)
            s.close()
        refusals = [r for r in caplog.records if "too many IPC connections" in r.getMessage()]
        assert len(refusals) == 1, [r.getMessage() for r in refusals]
        for s in idle[:10]:
            s.close()
        wait_until(lambda: cluster.lt.call(lambda: n1.node._ipc.connections) <= limit - 10)
        c = n1.ctl()
        ha.beprimary(c, "n1")
        assert ha.status(c) == (ha.STATE_PRIMARY, [])
        c.close()
    finally:
        for s in idle:
            s.close()
