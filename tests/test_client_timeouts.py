"""A socket timeout never leaves the blocking client out of step with the daemon.

The daemon side is a plain socket pair driven by the test; its bytes come from the reference
codec (``refcodec``), not from confd_ha's encoder.
"""

from __future__ import annotations

import socket

import pytest

import confd_ha as ha
import refcodec
from confd_ha import error, events
from confd_ha._terms import Atom


def frame(term) -> bytes:
    payload = refcodec.encode(term)
    return len(payload).to_bytes(4, "big") + payload


STATUS_NONE = frame((1, []))
STATUS_PRIMARY = frame((3, [(b"n2", (10, 0, 0, 2))]))
ERROR_26 = frame((Atom("error"), 26))
OK = frame(Atom("ok"))
EVENT_IS_NONE = frame((64, (6, 0)))
EVENT_NOPRIMARY = frame((64, (1, 26)))


@pytest.fixture
def pair():
    client, daemon = socket.socketpair()
    client.settimeout(0.2)
    daemon.settimeout(2)
    yield client, daemon
    client.close()
    daemon.close()


def drain(daemon: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        data += daemon.recv(n - len(data))
    return data


REQ = len(b"\x00\x00\x00\x05\x83h\x01a\x04")  # getstatus frame length


def test_late_reply_of_a_timed_out_call_is_discarded(pair):
    client, daemon = pair
    with pytest.raises(error.Timeout):
        ha.besecondary(client, "n2", "n1", "10.0.0.1", 1)
    drain(daemon, int.from_bytes(drain(daemon, 4), "big"))
    daemon.sendall(ERROR_26)                      # the join's answer arrives late
    daemon.sendall(STATUS_PRIMARY)                # ... then the answer to status()
    assert ha.status(client) == (3, [{"nodeid": "n2", "address": "10.0.0.2"}])
    assert drain(daemon, REQ)[4:] == refcodec.encode((4,))
    daemon.sendall(OK)
    ha.benone(client)                             # each call reads its own reply again


def test_timeout_between_header_and_payload(pair):
    client, daemon = pair
    daemon.sendall(STATUS_PRIMARY[:6])            # header and two payload bytes, then silence
    with pytest.raises(error.Timeout):
        ha.status(client)
    drain(daemon, REQ)
    daemon.sendall(STATUS_PRIMARY[6:] + STATUS_NONE)
    assert ha.status(client) == (1, [])           # the late status was skipped whole
    drain(daemon, REQ)


def test_two_timeouts_in_a_row_then_recovery(pair):
    client, daemon = pair
    for _ in range(2):
        with pytest.raises(error.Timeout):
            ha.status(client)
    # The second call waited for the first call's reply and timed out before sending.
    assert drain(daemon, REQ) == ha._protocol.GETSTATUS_FRAME
    daemon.sendall(STATUS_NONE)                   # the first reply, late
    with pytest.raises(error.Timeout):            # discarded; a new request; no answer yet
        ha.status(client)
    assert drain(daemon, REQ) == ha._protocol.GETSTATUS_FRAME
    daemon.sendall(STATUS_NONE + STATUS_PRIMARY)  # the late second reply, then the answer
    assert ha.status(client) == (3, [{"nodeid": "n2", "address": "10.0.0.2"}])
    assert drain(daemon, REQ) == ha._protocol.GETSTATUS_FRAME


def test_event_read_resumes_a_frame_cut_by_a_timeout(pair):
    client, daemon = pair
    for cut in (2, 4, 7):
        daemon.sendall(EVENT_NOPRIMARY[:cut])
        with pytest.raises(error.Timeout):
            events.read_notification(client)
        daemon.sendall(EVENT_NOPRIMARY[cut:] + EVENT_IS_NONE)
        assert events.read_notification(client)["hnot"] == {
            "type": 1, "noprimary": 26, "nomaster": 26}
        assert events.read_notification(client)["hnot"] == {"type": 6}


def test_timeout_keeps_the_timeout_class_and_errno(pair):
    client, _ = pair
    with pytest.raises(error.Timeout) as info:
        ha.status(client)
    assert isinstance(info.value, TimeoutError) and isinstance(info.value, error.Error)
    assert info.value.confd_errno == error.ERR_OS
