"""IPC level: the event-notification socket (client type 11) -- its subscription term, what
may follow it, and HA_INFO_SYNC acknowledgements (docs/conformance-ipc.md).

Event sockets here are hand-made (``World.event_socket``); their frames are read with
``recv_frame``. ConfD's event manager stops the whole daemon after about four crashes within
a few seconds, so a scenario crashes it at most once.
"""

from confd_ha._terms import Atom

from . import scenario

HA_INFO = 64
HA_INFO_SYNC = 1 << 20
U = Atom("undefined")


def _sub(w, label, term, shown=None):
    w.event_socket("n1", label)
    w.send_term(label, term, shown)
    w.recv_frame(label, 1.5)


def _raw_sub(w, label, payload: bytes):
    from confd_ha import _protocol

    w.event_socket("n1", label)
    w.send(label, _protocol.frame(payload))
    w.recv_frame(label, 1.5)


@scenario(nodes=1)
def ipc_event_subscriptions(w):
    """The subscription must be a 5-tuple whose first element is a mask >= 0 (the other
    elements are not checked); other tuples and terms get {error,18,<<"Bad subscription
    data">>} and a close; a negative mask is dropped without a reply. A 4-byte (or 8- or
    12-byte) frame that is not a term is taken as a 32-bit mask. Then which sockets get
    IS_PRIMARY."""
    accepted = []
    for label, term in (("five", (HA_INFO, 0, 0, U, 0)), ("mask0", (0, 0, 0, U, 0)),
                        ("big", (HA_INFO | (1 << 40), 0, 0, U, 0)),
                        ("sync_only", (HA_INFO_SYNC, 0, 0, U, 0)),
                        ("binaries", (HA_INFO, b"x", b"y", b"z", b"w"))):
        _sub(w, label, term)
        accepted.append(label)
    for label, term in (("four", (HA_INFO, 0, 0, U)), ("three", (HA_INFO, 0, 0)),
                        ("six", (HA_INFO, 0, 0, U, 0, 0)), ("pair", (1, 2)), ("int", HA_INFO),
                        ("atom", Atom("ok")), ("four_ints", (HA_INFO, 1, 2, 3))):
        _sub(w, label, term)
        w.recv(label, 1, 1.0)
    _sub(w, "negative", (-1, 0, 0, U, 0))
    w.recv("negative", 1, 1.0)
    mask = b"\x00\x00\x00\x40"
    for label, payload in (("raw4", mask), ("raw8", mask + b"\x00" * 4),
                           ("raw12", mask + b"\x00" * 8), ("raw4_zero", b"\x00" * 4)):
        _raw_sub(w, label, payload)
        accepted.append(label)
    w.beprimary("n1", "n1")
    for label in accepted:
        w.recv_frame(label, 0.5)


@scenario(nodes=1)
def ipc_event_after_subscription(w):
    """After the subscription: ha_synced without an event is ignored (also on a socket without
    HA_INFO_SYNC); any other frame -- a term, bytes that are not a term, a second
    subscription, a huge announcement -- closes that socket only."""
    w.subscribe("n1", label="bystander")
    _sub(w, "plain", (HA_INFO, 0, 0, U, 0))
    _sub(w, "sync", (HA_INFO | HA_INFO_SYNC, 0, 0, U, 0))
    for label in ("plain", "sync"):
        w.send_term(label, Atom("ha_synced"))
        w.recv(label, 1, 1.0)
    w.send_term("plain", (1, 2, 3))
    w.recv("plain", 1, 1.0)
    _sub(w, "twice", (HA_INFO, 0, 0, U, 0))
    w.send_term("twice", (HA_INFO, 0, 0, U, 0))
    w.recv("twice", 1, 1.0)
    _sub(w, "junk", (HA_INFO, 0, 0, U, 0))
    w.send("junk", b"\x00\x00\x00\x03abc")
    w.recv("junk", 1, 1.0)
    _sub(w, "huge", (HA_INFO, 0, 0, U, 0))
    w.send("huge", b"\xff\xff\xff\xff")
    w.recv("huge", 1, 1.0)
    w.close_raw("sync")
    w.beprimary("n1", "n1")
    w.status("n1")


@scenario(nodes=1)
def ipc_event_subscription_frames(w):
    """Subscription frames of odd sizes: announced at 16 MiB + 1 it is waited for until the
    5 s subscription deadline; at 0xFFFFFFFF the socket is closed at once."""
    w.event_socket("n1", "big")
    w.send("big", (16 * 1024 * 1024 + 1).to_bytes(4, "big"))
    w.recv("big", 1, 4.0)
    w.recv("big", 1, 3.0)
    w.event_socket("n1", "huge")
    w.send("huge", b"\xff\xff\xff\xff")
    w.recv("huge", 1, 1.0)


@scenario(nodes=1)
def ipc_event_sync_holds_status(w):
    """With an HA_INFO_SYNC subscriber that has not acknowledged IS_PRIMARY, the daemon
    answers no further HA order -- not even a status -- until the ha_synced arrives."""
    _sub(w, "sync", (HA_INFO | HA_INFO_SYNC, 0, 0, U, 0))
    w.control("n1", "c")
    w.send_term("c", (1, b"n1"))
    w.recv_frame("c", 2.0)
    w.recv_frame("sync", 1.0)
    w.send_term("c", (4,))
    w.recv_frame("c", 2.0)
    w.send_term("sync", Atom("ha_synced"))
    w.recv_frame("c", 2.0)
    w.send_term("c", (4,))
    w.recv_frame("c", 2.0)


@scenario(nodes=1, quirks=True)
def ipc_event_bad_subscription_quirk(w):
    """A subscription frame that is not a term (and not a 4/8/12-byte mask) crashes ConfD's
    event manager: that socket and every other subscriber are disconnected. (Emulator:
    --confd-quirks; without it only the offending socket is closed.)"""
    w.subscribe("n1", label="bystander")
    _raw_sub(w, "bad", b"abc")
    w.recv("bad", 1, 1.0)
