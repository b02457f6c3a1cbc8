"""Cases against the scripted peer: every ``{error, Code}`` an order may get back, reply
shapes, status replies with every address kind, HA events of every shape, and the peer
closing at each point."""

from __future__ import annotations

from .catalogue import Case
from .peer import A, OK, RESET, addr_v4, addr_v6, error_reply, frame, split_frames, then_close
from .worlds import TOKEN

NOTIF_HA_INFO = 64
NOTIF_HA_INFO_SYNC = 1 << 20
REPLY_CODES = tuple(range(-2, 76)) + (100, 127, 128, 255, 256, 1000, 2**31 - 1)


def _order(label: str, call):
    """connect to the peer, then ``call(side, sock)``."""
    def run(ctx, side):
        s = ctx.socket()
        ip, port = ctx.peer.address
        out = [side.run("connect", side.ha.connect, s, TOKEN, ip, port, unblock=s)]
        out.append(side.run(label, call, side, s, unblock=s))
        return out
    return run


def _beprimary(side, s):
    return side.ha.beprimary(s, "n1")


def _status(side, s):
    return side.ha.status(s)


def _twice(call):
    def run(side, s):
        call(side, s)
        return call(side, s)
    return run


def _events(count: int):
    """subscribe to the peer, then read ``count`` notifications."""
    def run(ctx, side):
        s = ctx.socket()
        ip, port = ctx.peer.address
        out = [side.run("notifications_connect", side.events.notifications_connect, s,
                        NOTIF_HA_INFO, ip, port, unblock=s)]
        for _ in range(count):
            out.append(side.run("read_notification", side.events.read_notification, s,
                                unblock=s))
        return out
    return run


def _wire(*calls, events: bool = False):
    """connect (or subscribe), make the ``calls`` -- ``(label, fn(side, sock))`` -- close,
    and give the bytes the peer received: the hello and each frame in hex (the token frame
    only by its length)."""
    def run(ctx, side):
        s = ctx.socket()
        ip, port = ctx.peer.address
        if events:
            out = [side.run("notifications_connect", side.events.notifications_connect, s,
                            NOTIF_HA_INFO | NOTIF_HA_INFO_SYNC, ip, port, unblock=s)]
        else:
            out = [side.run("connect", side.ha.connect, s, TOKEN, ip, port, unblock=s)]
        for label, fn in calls:
            out.append(side.run(label, fn, side, s, unblock=s))
        s.close()
        data = ctx.peer.received()
        frames = [f.hex() for f in split_frames(data)]
        if not events and frames:
            tok = TOKEN.encode()
            frames[0] = ("token frame, %d bytes" % len(tok)
                         if bytes.fromhex(frames[0]) == len(tok).to_bytes(4, "big") + tok
                         else "token frame differs from the token")
        out.append(["bytes sent", {"result": {"hello": data[:9].hex(), "frames": frames}}])
        return out
    return run


def _node(nodeid, addr):
    return (nodeid, addr)


V4 = addr_v4("127.78.0.2")
V6 = addr_v6("2001:db8::2")
V6_MAPPED = addr_v6("::ffff:127.78.0.2")
NODE_IDS = {"binary": b"n2", "empty": b"", "utf8": "n\u00f82".encode(), "atom": A("n2"),
            "int": 7, "buf-tuple": (5, b"n2"), "int32-tuple": (8, 7)}
ADDRESSES = {"v4": V4, "v6": V6, "v6-mapped": V6_MAPPED, "v6-loopback": addr_v6("::1"),
             "string": b"host.example", "charlist": [104, 111, 115, 116]}


def _status_cases():
    yield "status/none", [frame((1, []))]
    yield "status/primary-empty", [frame((3, []))]
    for tag, addr in ADDRESSES.items():
        yield "status/address-" + tag, [frame((3, [_node(b"n2", addr)]))]
    for tag, nid in NODE_IDS.items():
        yield "status/nodeid-" + tag, [frame((3, [_node(nid, V4)]))]
    yield "status/two-nodes", [frame((3, [_node(b"n2", V4), _node(b"n3", V6)]))]
    yield "status/secondary", [frame((2, [_node(b"n1", V4)]))]
    yield "status/relay", [frame((4, [_node(b"n1", V4), _node(b"n3", V4)]))]
    yield "status/unknown-state", [frame((9, []))]
    yield "status/state-zero", [frame((0, []))]
    yield "status/not-a-tuple", [frame(A("ok"))]
    yield "status/error", [error_reply(17)]
    yield "status/bad-address", [frame((3, [_node(b"n2", (1, 2, 3))]))]


def _event_cases():
    node = lambda addr: (b"n2", addr)  # noqa: E731
    yield "event/noprimary", [frame((NOTIF_HA_INFO, (1, 26)))]
    yield "event/noprimary-notick", [frame((NOTIF_HA_INFO, (1, 31)))]
    for tag, addr in ADDRESSES.items():
        yield "event/secondary-died-" + tag, [frame((NOTIF_HA_INFO, (2, node(addr))))]
        yield "event/secondary-arrived-" + tag, [frame((NOTIF_HA_INFO, (3, node(addr))))]
    for tag, nid in NODE_IDS.items():
        yield "event/secondary-arrived-nodeid-" + tag, [frame((NOTIF_HA_INFO, (3, (nid, V4))))]
    yield "event/secondary-initialized-copy", [frame((NOTIF_HA_INFO, (4, 1)))]
    yield "event/secondary-initialized-nocopy", [frame((NOTIF_HA_INFO, (4, 0)))]
    yield "event/is-primary", [frame((NOTIF_HA_INFO, (5, A("undefined"))))]
    yield "event/is-none", [frame((NOTIF_HA_INFO, (6, A("undefined"))))]
    yield "event/besecondary-result-ok", [frame((NOTIF_HA_INFO, (7, 0)))]
    yield "event/besecondary-result-error", [frame((NOTIF_HA_INFO, (7, 25)))]
    yield "event/unknown-type", [frame((NOTIF_HA_INFO, (99, 0)))]
    yield "event/not-ha", [frame((2, (1, b"x")))]
    yield "event/not-a-tuple", [frame(A("ok"))]


def _wire_cases():
    ha = lambda side: side.ha  # noqa: E731
    yield "beprimary", [OK], (("beprimary", lambda side, s: ha(side).beprimary(s, "n1")),)
    yield "besecondary", [OK], (("besecondary", lambda side, s: ha(side).besecondary(
        s, "n2", "n1", "127.78.0.1", 1)),)
    yield "besecondary-async", [], (("besecondary(waitreply=0)", lambda side, s: ha(
        side).besecondary(s, "n2", "n1", "127.78.0.1", 0)),)
    yield "besecondary-ipv6", [OK], (("besecondary(ipv6)", lambda side, s: ha(
        side).besecondary(s, "n2", "n1", "2001:db8::1", 1)),)
    yield "benone", [OK], (("benone", lambda side, s: ha(side).benone(s)),)
    yield "berelay", [OK], (("berelay", lambda side, s: ha(side).berelay(s)),)
    yield "status", [frame((1, []))], (("status", lambda side, s: ha(side).status(s)),)
    yield "secondary_dead", [OK], (("secondary_dead", lambda side, s: ha(
        side).secondary_dead(s, "n2")),)
    yield "node-id-value-int32", [OK], (("beprimary(Value int32)", lambda side, s: ha(
        side).beprimary(s, side.Value(5, side.top.C_INT32))),)
    yield "node-id-non-ascii", [OK], (("beprimary('nø1')", lambda side, s: ha(
        side).beprimary(s, "n\u00f81")),)


def cases():
    for name, script, calls in _wire_cases():
        yield Case("wire/" + name, "peer", _wire(*calls), script=script, isolate=False)
    yield Case("wire/subscribe-sync", "peer", _wire(
        ("sync_ha_notification", lambda side, s: side.events.sync_ha_notification(s)),
        events=True), script=[], isolate=False)
    for code in REPLY_CODES:
        yield Case("reply/error-%d" % code, "peer", _order("beprimary", _beprimary),
                   script=[error_reply(code)])
    yield Case("reply/ok", "peer", _order("beprimary", _beprimary), script=[OK])
    yield Case("reply/other-atom", "peer", _order("beprimary", _beprimary),
               script=[frame(A("true"))])
    yield Case("reply/integer", "peer", _order("beprimary", _beprimary), script=[frame(5)])
    yield Case("reply/error-with-reason", "peer", _order("beprimary", _beprimary),
               script=[frame((A("error"), 17, b"reason text"))])
    yield Case("reply/error-not-int", "peer", _order("beprimary", _beprimary),
               script=[frame((A("error"), A("badstate")))])
    yield Case("reply/closed", "peer", _order("beprimary", _beprimary), script=[None])
    yield Case("reply/closed-then-again", "peer",
               _order("beprimary twice", _twice(_beprimary)), script=[None])
    yield Case("reply/status-closed", "peer", _order("status", _status), script=[None])
    yield Case("reply/reset", "peer", _order("beprimary twice", _twice(_beprimary)),
               script=[RESET])
    yield Case("reply/status-reset", "peer", _order("status", _status), script=[RESET])
    yield Case("reply/half-frame", "peer", _order("beprimary", _beprimary),
               script=[then_close(OK[:3])])
    for name, script in _status_cases():
        yield Case("reply/" + name, "peer", _order("status", _status), script=script)
    for name, script in _event_cases():
        yield Case("peer-" + name, "peer", _events(1), script=script)
    yield Case("peer-event/closed", "peer", _events(1), script=[None])
    yield Case("peer-event/reset", "peer", _events(2), script=[RESET])
    yield Case("peer-event/two-then-closed", "peer", _events(3),
               script=[frame((NOTIF_HA_INFO, (5, A("undefined")))),
                       frame((NOTIF_HA_INFO, (6, A("undefined")))), None])
