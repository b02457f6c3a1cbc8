"""The emulated node's IPC port, through the real client and raw sockets: the
event-notification socket.

What is checked is what ConfD 8.2.5 was observed to do (docs/conformance-ipc.md; the
conformance scenarios ipc_* hold the recordings), with short deadlines; plus the emulator's
own choices: the ConfD quirk reproduced only with ``confd_quirks``.
"""

from __future__ import annotations

import pytest

import confd_ha as ha
from confd_ha import _codec, _io, _notifications, _protocol, error
from confd_ha._terms import Atom
from ipc_helpers import closed_by_peer, ending, event_socket
from emulator_helpers import HA_INFO
from waiting import wait_until


# ---------------------------------------------------------------- event socket (§10)


def test_subscriptions_accepted_and_events(cluster):
    n1 = cluster.add("n1", 1)
    raw4 = event_socket(n1)
    raw4.sendall(_protocol.frame(b"\x00\x00\x00\x40"))  # a frame that is no term: a 32-bit mask
    assert _codec.decode(_io.read_frame(raw4)) == "ok"
    bins = event_socket(n1)
    bins.sendall(_codec.encode_frame((HA_INFO, b"x", b"y", b"z", b"w")))
    assert _codec.decode(_io.read_frame(bins)) == "ok"
    e5 = n1.events()
    other = n1.events(mask=1 | 8)  # other bits: accepted, nothing delivered (W-30)
    only_sync = n1.events(mask=_protocol.NOTIF_HA_INFO_SYNC)
    wait_until(lambda: n1.subscribers == 5)
    c = n1.ctl()
    ha.beprimary(c, "n1")
    frame = _io.read_frame(raw4)
    assert frame == _io.read_frame(bins) == \
        _io.read_frame(e5.sock) == bytes.fromhex("8368026140680261056100")
    other.quiet(0.2)
    only_sync.quiet(0.01)
    ha.benone(c)  # not blocked: the HA_INFO_SYNC-only subscriber subscribes to nothing
    assert e5.next() == (6, 0)
    for s in (raw4, bins, c):
        s.close()
    for e in (e5, other, only_sync):
        e.close()


@pytest.mark.parametrize("term", [
    (HA_INFO, 0, 0, Atom("undefined")), (HA_INFO, 0, 0), (HA_INFO, 0, 0, Atom("undefined"), 0, 0),
    (1, 2), HA_INFO, Atom("ok"), (HA_INFO, 1, 2, 3)])
def test_bad_subscription_data(cluster, term):
    n1 = cluster.add("n1", 1)
    s = event_socket(n1)
    s.sendall(_codec.encode_frame(term))
    assert _codec.decode(_io.read_frame(s)) == \
        (Atom("error"), error.ERR_INTERNAL, b"Bad subscription data")
    assert closed_by_peer(s)
    s.close()


@pytest.mark.parametrize("payload,quirk_drops_all", [
    (_codec.encode((-1, 0, 0, Atom("undefined"), 0)), False),   # closed without a reply
    (_codec.encode((Atom("x"), 0, 0, Atom("undefined"), 0)), True),
    (b"abc", True), (b"", True), (b"\x83", True), (b"\x00" * 5, True), (b"\x00" * 16, True),
])
@pytest.mark.parametrize("quirks", [False, True])
def test_malformed_subscriptions(cluster, payload, quirk_drops_all, quirks):
    """Closed without a reply; with confd_quirks a malformed one (not a negative mask) drops
    every other subscriber too, as ConfD's event manager crashes on it."""
    n1 = cluster.add("n1", 1, confd_quirks=quirks)
    bystander = n1.events()
    s = event_socket(n1)
    s.sendall(_protocol.frame(payload))
    assert ending(s, 2.0) == "closed"
    s.close()
    if quirks and quirk_drops_all:
        assert closed_by_peer(bystander.sock)
    else:
        c = n1.ctl()
        ha.beprimary(c, "n1")
        assert bystander.next() == (5, 0)
        c.close()
    bystander.close()


def test_after_the_subscription(cluster):
    """ha_synced without an owed event is ignored (also without HA_INFO_SYNC); any other frame
    closes that socket only."""
    n1 = cluster.add("n1", 1)
    bystander = n1.events()
    e = n1.events()
    sync = n1.events(mask=HA_INFO | _protocol.NOTIF_HA_INFO_SYNC)
    e.ack()
    sync.ack()
    assert ending(e.sock, 0.3) == ending(sync.sock, 0.01) == "open"
    for frame in (_codec.encode_frame((1, 2, 3)), _protocol.frame(b"junk"),
                  _notifications.encode_subscription(HA_INFO), b"\xff\xff\xff\xff"):
        x = n1.events()
        _io.send(x.sock, frame)
        assert closed_by_peer(x.sock)
        x.close()
    sync.close()
    c = n1.ctl()
    ha.beprimary(c, "n1")
    assert bystander.next() == e.next() == (5, 0)
    for x in (bystander, e, c):
        x.close()


def test_subscription_deadline_and_sizes(cluster):
    n1 = cluster.add("n1", 1, subscribe_timeout=0.3, max_frame=1024)
    big = event_socket(n1)
    big.sendall((5000).to_bytes(4, "big"))       # waited for until the deadline
    huge = event_socket(n1)
    huge.sendall(b"\xff\xff\xff\xff")            # closed at once
    assert ending(huge, 0.2) == "closed"
    assert ending(big, 2.0) == "closed"
    big.close()
    huge.close()


def test_status_waits_for_sync_acknowledgements(cluster):
    n1 = cluster.add("n1", 1)
    sync = n1.events(mask=HA_INFO | _protocol.NOTIF_HA_INFO_SYNC)
    c = n1.ctl()
    ha.beprimary(c, "n1")
    assert sync.next() == (5, 0)
    c.sendall(_protocol.GETSTATUS_FRAME)
    assert ending(c, 0.3) == "open"       # no answer while IS_PRIMARY is not acknowledged
    sync.ack()
    assert _protocol.decode_status(_io.read_frame(c)) == (ha.STATE_PRIMARY, [])
    for x in (sync, c):
        x.close()
