"""The emulated node's IPC port, through the real client and raw sockets: the HA control
socket -- token, orders, frames.

What is checked is what ConfD 8.2.5 was observed to do (docs/conformance-ipc.md; the
conformance scenarios ipc_* hold the recordings), with short deadlines; plus the emulator's
own choices: wire-protocol W-17 (no reply to an asynchronous besecondary), bounded
memory, and the ConfD quirks reproduced only with ``confd_quirks``.
"""

from __future__ import annotations

import os
import socket

import pytest

import confd_ha as ha
from confd_ha import _address, _codec, _io, _protocol, error
from confd_ha._terms import Atom
from emulator_helpers import wait_ipc_connections
from ipc_helpers import HELLO_HA, REPLY_OK, ending, raw, raw_control


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
    wait_ipc_connections(n1, 0)   # the node has seen the close
    assert n1.state == ha.STATE_PRIMARY
    assert n1.ha_status()[0] == ha.STATE_PRIMARY


@pytest.mark.parametrize("token", [b"abc\x00", b"", b"x" * 5000, bytes(range(256))])
def test_token_is_the_frame_bytes_as_they_are(cluster, token):
    """A trailing NUL is part of the token (ConfD refuses a join between "abc" and
    "abc\\0" with HA_BADTOKEN)."""
    n1 = cluster.add("n1", 1)
    c = raw_control(n1, token)
    c.sendall(_protocol.GETSTATUS_FRAME)
    assert _protocol.decode_status(_io.read_frame(c))[0] == 1
    assert cluster.lt.call(lambda: n1.node.token) == token
    c.close()


@pytest.mark.parametrize("size,how", [(0x7FFFFFFC, "closed"), (0xFFFFFFFF, "closed")])
def test_token_frame_announced_too_long_closes_at_once(cluster, size, how):
    n1 = cluster.add("n1", 1)
    s = raw(n1)
    s.sendall(HELLO_HA)
    assert _io.recv_exact(s, 9) == REPLY_OK
    s.sendall(size.to_bytes(4, "big"))
    assert ending(s, 1.0) == how
    s.close()


def test_token_frame_longer_than_max_frame_is_dropped_unread(cluster):
    n1 = cluster.add("n1", 1, max_frame=1024, token_timeout=1.0)
    s = raw(n1)
    s.sendall(HELLO_HA)
    assert _io.recv_exact(s, 9) == REPLY_OK
    s.sendall((5000).to_bytes(4, "big") + b"x" * 5000)
    assert ending(s, 2.0) == "closed"
    s.close()


@pytest.mark.parametrize("term", [
    (99,), (1,), (0,), (-1,), (), (3, b"x"), (4, b"x"), (6, b"x"), (5,), 4, [4], [1, b"n1"],
    Atom("ok"), (Atom("x"), 1), 4.0, (4.0,), (2, b"n2", b"n1", 1),
    (2, b"n2", (b"n1", (127, 0, 0, 1), 1), 1), (2, b"n2", (b"n1", (127, 0, 0, 1))),
    # ConfD's HA subsystem fails on these; without the quirks they are refused:
    (2, b"n2", (b"n1", (1, 2, 3)), 1), (2, b"n2", (b"n1", (127, 0, 0, 1)), 7),
    (2, b"n2", (b"n1", (127, 0, 0, 1)), Atom("true")),
])
def test_invalid_order_answered_protousage_and_connection_kept(cluster, term):
    refused_and_kept(cluster.add("n1", 1), _codec.encode_frame(term))  # W-21


def refused_and_kept(n1, frame: bytes) -> None:
    """``frame`` on a control socket is answered ERR_PROTOUSAGE and the socket still works."""
    c = n1.ctl()
    c.sendall(frame)
    with pytest.raises(error.Error) as exc:
        _protocol.decode_reply(_io.read_frame(c))
    assert exc.value.confd_errno == error.ERR_PROTOUSAGE
    assert ha.status(c) == (1, [])
    c.close()


@pytest.mark.parametrize("payload", [
    b"", b"\x83", b"junk", b"\x83\x68\x01", b"\x83\x50\x00\x00\x00\x01x", b"\x68\x01\x61\x04",
    b"\x83\x50\xff\xff\xff\xff" + b"x" * 20,                 # compressed, absurd size
    b"\x83" + b"\x68\x01" * 100000 + b"\x61\x04",             # nested too deep for the core
])
def test_frame_that_is_no_term_gets_protousage_and_connection_kept(cluster, payload):
    refused_and_kept(cluster.add("n1", 1), _protocol.frame(payload))


def test_term_followed_by_bytes_and_compressed_term_are_taken(cluster):
    import zlib

    n1 = cluster.add("n1", 1)
    c = n1.ctl()
    body = _codec.encode((4,))
    for payload in (body + b"junk", body + body,
                    b"\x83\x50" + (len(body) - 1).to_bytes(4, "big") + zlib.compress(body[1:]),
                    b"\x83\x68\x01\x62\x00\x00\x00\x04"):
        c.sendall(_protocol.frame(payload))
        assert _protocol.decode_status(_io.read_frame(c)) == (1, [])
    c.sendall(_protocol.frame(_codec.encode((1, b"n1")) + b"\x00"))
    _protocol.decode_reply(_io.read_frame(c))
    assert ha.status(c)[0] == ha.STATE_PRIMARY
    c.close()


def test_oversized_frames(cluster):
    """Above max_frame a frame is read and dropped (never allocated) and refused with
    {error,21}; at 0x7FFFFFFC bytes and more the connection is closed at once."""
    n1 = cluster.add("n1", 1, max_frame=1024)
    c = n1.ctl()
    c.sendall((5000).to_bytes(4, "big") + b"\x83" + b"x" * 4999)
    with pytest.raises(error.Error) as exc:
        _protocol.decode_reply(_io.read_frame(c))
    assert exc.value.confd_errno == error.ERR_PROTOUSAGE
    assert ha.status(c) == (1, [])
    c.sendall((0x7FFFFFFB).to_bytes(4, "big"))   # waited for, like ConfD
    assert ending(c, 0.3) == "open"
    c.close()
    c = n1.ctl()
    c.sendall((0x7FFFFFFC).to_bytes(4, "big"))
    assert ending(c, 1.0) == "closed"
    c.close()
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


@pytest.mark.parametrize("wait", [Atom("false"), Atom("true")])
def test_besecondary_waitreply_atoms_are_not_accepted(cluster, wait):
    """Only the integers 0 and 1 are WaitReply values (ConfD fails on the atoms)."""
    n1 = cluster.add("n1", 1)
    c = n1.ctl()
    c.sendall(_codec.encode_frame((2, b"n2", (b"n1", (127, 0, 0, 9)), wait)))
    with pytest.raises(error.Error) as exc:
        _protocol.decode_reply(_io.read_frame(c))
    assert exc.value.confd_errno == error.ERR_PROTOUSAGE
    assert not n1.joining
    c.close()


@pytest.mark.parametrize("term", [
    (2, b"n2", (b"n1", (1, 2, 3)), 1),
    (2, b"n2", (b"n1", (127, 0, 0, 256)), 0),
    (2, b"n2", (b"n1", (127, 0, 0, 9)), 2),
])
def test_quirks_malformed_besecondary_drops_to_none_and_closes(cluster, term):
    """With confd_quirks the node fails as ConfD's HA subsystem does: NONE, IS_NONE, the control
    socket closed without a reply; the next control socket is served."""
    n1 = cluster.add("n1", 1, confd_quirks=True)
    ev = n1.events()
    c = n1.ctl()
    ha.beprimary(c, "n1")
    assert ev.next() == (5, 0)
    c.sendall(_codec.encode_frame(term))
    assert ending(c, 3.0) == "closed"
    assert ev.next() == (6, 0)
    assert n1.ha_status() == (ha.STATE_NONE, [])
    c.close()


@pytest.mark.parametrize("addr", [Atom("nohost"), 5, [], b""])
def test_besecondary_name_addresses_fail_to_connect(cluster, addr):
    n1 = cluster.add("n1", 1)
    c = n1.ctl()
    c.sendall(_codec.encode_frame((2, b"n1", (b"n9", addr), 1)))
    with pytest.raises(error.Error) as exc:
        _protocol.decode_reply(_io.read_frame(c))
    assert exc.value.confd_errno == error.ERR_HA_CONNECT
    assert ha.status(c) == (1, [])
    c.close()


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


def test_flood_of_async_orders_all_reported_and_status_still_answered(cluster):
    n1 = cluster.add("n1", 1, start_phase=0)
    ev = n1.events()
    c = n1.ctl()
    order = _protocol.encode_order(_protocol.BESECONDARY, b"n1", b"n2",
                                   (_address.AF_INET, socket.inet_aton("127.0.0.2")), 0)
    c.sendall(order * 2000)  # pipelined: the node reads them with bounded queueing
    assert ha.status(c) == (1, [])  # and only the status reply comes back (W-17)
    for _ in range(2000):
        assert ev.next() == (7, error.ERR_BADSTATE)
    ev.quiet(0.1)


# ---------------------------------------------------------------- W-17 before W-21


@pytest.mark.parametrize("term", [
    (2, b"n2", (b"n1", (1, 2, 3)), 0),                      # bad address tuple
    (2, b"n2", (b"n1", (127, 0, 0, 256)), 0),                # octet out of range
    (2, b"n2", (b"n1", (0, 0, 0, 0, 0, 0, 0, 65536)), 0),    # IPv6 group out of range
])
def test_async_besecondary_with_invalid_fields_writes_nothing_and_reports_21(cluster, term):
    """Without the quirks, W-17 comes first: WaitReply 0 means nothing is ever written, even
    for an order ConfD would fail on; the PROTOUSAGE outcome is reported as
    BESECONDARY_RESULT (B-15)."""
    n1 = cluster.add("n1", 1)
    ev = n1.events()
    c = n1.ctl()
    c.sendall(_codec.encode_frame(term))
    assert ev.next() == (7, error.ERR_PROTOUSAGE)
    assert ha.status(c) == (1, [])  # the first frame on the socket is the status reply
    ev.quiet(0.1)
    assert not n1.joining
    c.close()


@pytest.mark.parametrize("wait", [1.0, 0.0, 2, -1, Atom("maybe"), Atom("true"), b"false", [0],
                                  (0,)])
def test_besecondary_with_invalid_waitreply_is_protousage(cluster, wait):
    """A WaitReply that is not the integer 0 or 1 (ConfD fails on it) is answered with
    {error, 21} without the quirks; no join starts, no event."""
    n1 = cluster.add("n1", 1)
    ev = n1.events()
    c = n1.ctl(timeout=1.0)
    c.sendall(_codec.encode_frame((2, b"n2", (b"n1", (127, 0, 0, 9)), wait)))
    with pytest.raises(error.Error) as exc:
        _protocol.decode_reply(_io.read_frame(c))
    assert exc.value.confd_errno == error.ERR_PROTOUSAGE
    assert not n1.joining
    ev.quiet(0.1)
    assert ha.status(c) == (1, [])
    c.close()


def test_invalid_async_besecondary_in_phase_zero_is_still_protousage(cluster):
    """The order's validity is checked before the node's state (W-21 before B-03)."""
    n1 = cluster.add("n1", 1, start_phase=0)
    ev = n1.events()
    c = n1.ctl()
    c.sendall(_codec.encode_frame((2, b"n2", (b"n1", (1, 2, 3)), 0)) * 3)
    c.sendall(_protocol.encode_order(_protocol.BESECONDARY, b"n1", b"n2",
                                     (_address.AF_INET, socket.inet_aton("127.0.0.2")), 0))
    assert ev.expect((7, error.ERR_PROTOUSAGE), (7, error.ERR_PROTOUSAGE),
                     (7, error.ERR_PROTOUSAGE), (7, error.ERR_BADSTATE))
    assert ha.status(c) == (1, [])
    c.close()
