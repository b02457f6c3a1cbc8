"""The emulated node's IPC port, through the real client and raw sockets: the hello, the
deadlines, the access check, the connection cap.

What is checked is what ConfD 8.2.5 was observed to do (docs/conformance-ipc.md; the
conformance scenarios ipc_* hold the recordings), with short deadlines; plus the emulator's
own choices: the connection cap, and the ConfD quirks that are reproduced only with
``confd_quirks``.
"""

from __future__ import annotations

import logging
import socket
import time

import pytest

import confd_ha as ha
from confd_ha import _io, _protocol, error
from ipc_helpers import (HELLO_HA, REPLY_OK, closed_by_peer, ending, hello, raw,
                         raw_control)
from emulator_helpers import EventSock, wait_ipc_connections
from waiting import wait_until


# ---------------------------------------------------------------- handshake (§3)


def test_hello_reply_bytes_and_status(cluster):
    n1 = cluster.add("n1", 1)
    s = raw(n1)
    s.sendall(HELLO_HA)
    assert _io.recv_exact(s, 9) == REPLY_OK
    s.close()
    c = n1.ctl()
    assert ha.daemon_info(c) == (0, 82, 0x08020500, 12, 4)
    assert ha.status(c) == (ha.STATE_NONE, [])
    c.close()


def test_configured_identity_in_reply(cluster):
    n1 = cluster.add("n1", 1, proto_vsn=86, vsn=0x08060800, maxdepth=20, maxkeylen=9)
    c = n1.ctl()  # the client's 82 is refused, it renegotiates with 86 (W-05)
    assert ha.daemon_info(c) == (0, 86, 0x08060800, 20, 9)
    c.close()


@pytest.mark.parametrize("proto,status", [(82, 0), (81, 0), (83, 1), (85, 1), (77, 1), (66, 1),
                                          (0, 1)])
def test_default_version_window_is_own_and_previous(cluster, proto, status):
    n1 = cluster.add("n1", 1)
    s = raw(n1)
    s.sendall(hello(proto=proto, vsn=0x07070100))  # the library version is not looked at
    reply = bytes([status]) + REPLY_OK[1:]
    assert ending(s, 0.3, reply) == ("open" if status == 0 else "closed")
    s.close()


def test_version_window_rejects_then_client_renegotiates(cluster):
    n1 = cluster.add("n1", 1, accepted_proto_vsns=(77, 77), proto_vsn=77, vsn=0x07070100)
    s = raw(n1)
    s.sendall(HELLO_HA)  # protocol 82: outside the window
    assert _io.recv_exact(s, 9) == bytes.fromhex("01004d070701000c04")
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


@pytest.mark.parametrize("depth,keylen,status", [
    (0, 0, 0), (12, 4, 0), (60, 18, 0), (255, 255, 0), (12, 3, 2), (11, 4, 2), (0, 4, 2),
    (1, 1, 2)])
def test_maxdepth_maxkeylen_status(cluster, depth, keylen, status):
    n1 = cluster.add("n1", 1)
    s = raw(n1)
    s.sendall(hello(depth=depth, keylen=keylen))
    reply = bytes([status]) + REPLY_OK[1:]
    assert ending(s, 0.3, reply) == ("open" if status == 0 else "closed")
    s.close()


@pytest.mark.parametrize("ctype", [3, 5, 7, 8])
def test_other_served_client_types_get_the_handshake_only(cluster, ctype):
    n1 = cluster.add("n1", 1)
    s = raw(n1)
    s.sendall(hello(ctype))
    assert ending(s, 0.3, REPLY_OK) == "open"
    s.sendall(_protocol.GETSTATUS_FRAME * 100)  # read and dropped, never answered
    assert ending(s, 0.3) == "open"
    s.close()


@pytest.mark.parametrize("ctype", [1, 6])
def test_silent_client_types_get_nothing_and_stay(cluster, ctype):
    n1 = cluster.add("n1", 1, init_timeout=0.2)
    s = raw(n1)
    s.sendall(hello(ctype))
    assert ending(s, 0.5) == "open"
    s.close()


@pytest.mark.parametrize("data,sent,how", [
    (hello(4), b"\x0d", "reset"),           # CLI: "unavailable", the rest of the hello unread
    (bytes([4]), b"\x0d", "closed"),
    (hello(12), b"", "reset"),                # NETCONF, NCS, unassigned: dropped after one byte
    (hello(18), b"", "reset"),
    (hello(0x3F), b"", "reset"),
    (bytes([0x12]), b"", "closed"),           # nothing unread: a plain close
    (b"GET / HTTP/1.0\r\n\r\n", bytes.fromhex("010052080205000c04"), "reset"),
])
def test_not_served_first_bytes(cluster, data, sent, how):
    n1 = cluster.add("n1", 1)
    s = raw(n1)
    s.sendall(data)
    assert ending(s, 1.0, sent) == how
    s.close()


def test_deadlines_close_silent_and_half_done_connections(cluster):
    n1 = cluster.add("n1", 1, init_timeout=0.3, token_timeout=0.3, subscribe_timeout=0.3)
    idle = raw(n1)
    half = raw(n1)
    half.sendall(HELLO_HA[:5])
    no_token = raw(n1)
    no_token.sendall(HELLO_HA)
    half_token = raw(n1)
    half_token.sendall(HELLO_HA + b"\x00\x00\x00\x10abc")
    no_sub = raw(n1)
    no_sub.sendall(hello(11))
    t0 = time.monotonic()
    assert ending(idle, 3.0) == "closed"
    assert ending(half, 3.0) == "closed"   # what came of the hello counts as read: no reset
    for s in (no_token, half_token, no_sub):
        assert ending(s, 3.0, REPLY_OK) == "closed"
    assert time.monotonic() - t0 < 2.0
    for s in (idle, half, no_token, half_token, no_sub):
        s.close()
    c = n1.ctl()  # still serving
    assert ha.status(c) == (1, [])
    c.close()


def test_hellos_do_not_wait_for_each_other(cluster):
    n1 = cluster.add("n1", 1, init_timeout=5.0)
    silent = raw(n1)
    half = raw(n1)
    half.sendall(HELLO_HA[:4])
    t0 = time.monotonic()
    c = n1.ctl()
    assert ha.status(c) == (1, [])
    assert time.monotonic() - t0 < 1.0
    for s in (silent, half, c):
        s.close()


def test_quirks_serve_hellos_one_at_a_time(cluster):
    n1 = cluster.add("n1", 1, init_timeout=0.6, confd_quirks=True)
    half = raw(n1)
    half.sendall(HELLO_HA[:4])
    wait_ipc_connections(n1, 1)
    t0 = time.monotonic()
    b = raw(n1)
    b.sendall(HELLO_HA)
    assert _io.recv_exact(b, 9) == REPLY_OK
    assert time.monotonic() - t0 > 0.3  # only once the half hello has been dropped
    assert ending(half, 0.2) == "closed"
    for s in (half, b):
        s.close()


def status_while_a_token_is_awaited(n1, a):
    """A second client ``b`` says hello and then sends no token; meanwhile the control socket
    ``a`` asks for the status. Returns ``b`` and the seconds the status took."""
    b = raw(n1)
    b.sendall(HELLO_HA)
    assert _io.recv_exact(b, 9) == REPLY_OK
    t0 = time.monotonic()
    a.sendall(_protocol.GETSTATUS_FRAME)
    assert _protocol.decode_status(_io.read_frame(a))[0] == 1
    return b, time.monotonic() - t0


def test_quirks_token_wait_holds_orders(cluster):
    n1 = cluster.add("n1", 1, token_timeout=0.6, confd_quirks=True)
    a = raw_control(n1)
    a.sendall(_protocol.GETSTATUS_FRAME)
    assert _protocol.decode_status(_io.read_frame(a))[0] == 1
    b, took = status_while_a_token_is_awaited(n1, a)
    assert took > 0.3  # answered once b is dropped for its missing token
    assert ending(b, 0.2) == "closed"
    for s in (a, b):
        s.close()


def test_token_wait_holds_nothing_without_quirks(cluster):
    n1 = cluster.add("n1", 1, token_timeout=2.0)
    a = raw_control(n1)
    b, took = status_while_a_token_is_awaited(n1, a)
    assert took < 0.5
    for s in (a, b):
        s.close()


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
    assert ending(s, 2.0, b"\x03") == "closed"  # as ConfD: 0x03, then the close
    s.close()


def test_access_check_answer_of_another_kind_dropped_silently(cluster, secret_file):
    n1 = cluster.add("n1", 1, ipc_access_file=secret_file)
    s = raw(n1)
    s.sendall(_protocol.build_hello(_protocol.Hello(17 | 0xC0, 82, 0x08020500, 0, 0)))
    _io.recv_exact(s, 33)
    s.sendall(b"\x0d" + b"\x00" * 32)
    assert ending(s, 2.0) == "closed"
    s.close()


def test_access_check_refused_version_after_the_check(cluster, secret_file):
    n1 = cluster.add("n1", 1, ipc_access_file=secret_file)
    s = raw(n1)
    s.sendall(hello(17 | 0xC0, proto=85))
    nonce = _io.recv_exact(s, 33)[1:]
    s.sendall(b"\x0c" + _protocol.access_digest(_protocol.ACCESS_V2, b"s3cret\n", nonce))
    assert ending(s, 2.0, b"\x00\x01" + REPLY_OK[1:]) == "closed"
    s.close()


@pytest.mark.parametrize("byte0,sent", [(0x04, b""), (0x84, b"\x0d"), (0xC4, b"\x0d"),
                                        (0xCC, b""), (0xD2, b"")])
def test_access_check_enabled_other_types(cluster, secret_file, byte0, sent):
    n1 = cluster.add("n1", 1, ipc_access_file=secret_file)
    s = raw(n1)
    s.sendall(hello(byte0))
    assert ending(s, 2.0, sent) == "reset"   # dropped after the first byte, the rest unread
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
    assert ending(s, 2.0) == "reset"  # nothing sent; dropped after the first byte
    s.close()


@pytest.mark.parametrize("byte0,served", [(0xD1, False), (0x91, False), (0xCB, False),
                                          (0x51, True)])
def test_access_check_disabled_flags(cluster, byte0, served):
    n1 = cluster.add("n1", 1)
    s = raw(n1)
    s.sendall(hello(byte0))
    if served:  # the 0x40 bit alone is ignored
        assert ending(s, 0.3, REPLY_OK) == "open"
    else:
        assert ending(s, 2.0) == "reset"
    s.close()


def test_access_check_disabled_flagged_client_closed(cluster, secret_file, monkeypatch):
    n1 = cluster.add("n1", 1)
    monkeypatch.setenv("CONFD_IPC_ACCESS_FILE", secret_file)
    c = socket.socket()
    c.settimeout(3)
    with pytest.raises(ha.error.EOF):
        ha.connect(c, "tok", n1.ip, n1.port)
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
