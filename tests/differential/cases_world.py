"""Cases on the node world: every HA order in every role, the errors a join can meet
(HA_CONNECT, HA_BADNAME, HA_BADTOKEN, BADSTATE), node-id kinds, connects that succeed, a
second connect on one socket, and the ends of a control socket (replaced by a new HA
connect, closed, daemon killed)."""

from __future__ import annotations

import socket

from waiting import wait_readable

from .catalogue import Case
from .worlds import CLOSED_IP, IPC_PORT, NODES, OTHER_TOKEN, TOKEN

# Every state has n4 as the primary of a cluster of its own, to join from anywhere.
N4 = ("primary", "n4")
STATES = {
    # name: (setup, subject)
    "none": ((N4,), "n1"),
    "primary": ((N4, ("primary", "n1")), "n1"),
    "primary-with-secondary": ((N4, ("primary", "n1"), ("secondary", "n2", "n1")), "n1"),
    "secondary": ((N4, ("primary", "n1"), ("secondary", "n2", "n1")), "n2"),
    "relay": ((N4, ("primary", "n1"), ("secondary", "n2", "n1"), ("relay", "n2"),
               ("secondary", "n3", "n2")), "n2"),
    "secondary-of-relay": ((N4, ("primary", "n1"), ("secondary", "n2", "n1"),
                            ("relay", "n2"), ("secondary", "n3", "n2")), "n3"),
}


def _session(*calls, node=None, token=TOKEN, status_after=True):
    """connect to ``node`` (default: the case's subject, given by ``Case.doc``), make the
    ``calls`` -- ``(label, fn(side, sock, subject))`` -- then status()."""
    def run(ctx, side, subject):
        s = ctx.socket()
        target = node or subject
        out = [side.run("connect", side.ha.connect, s, token, NODES[target], IPC_PORT,
                        unblock=s)]
        for label, fn in calls:
            out.append(side.run(label, fn, side, s, subject, unblock=s))
        if status_after:
            out.append(side.run("status", side.ha.status, s, unblock=s))
        return out
    return run


def _bind(run, subject):
    return lambda ctx, side: run(ctx, side, subject)


def _orders():
    ha = lambda side: side.ha  # noqa: E731
    return {
        "status": ("status", lambda side, s, me: ha(side).status(s)),
        "beprimary-own-id": ("beprimary(own id)", lambda side, s, me: ha(side).beprimary(s, me)),
        "beprimary-other-id": ("beprimary('nX')", lambda side, s, me: ha(side).beprimary(s, "nX")),
        "besecondary-n4": ("besecondary(n4)", lambda side, s, me: ha(side).besecondary(
            s, me, "n4", NODES["n4"], 1)),
        "besecondary-n4-async": ("besecondary(n4, waitreply=0)", lambda side, s, me:
                                 ha(side).besecondary(s, me, "n4", NODES["n4"], 0)),
        "besecondary-badname": ("besecondary(wrong name)", lambda side, s, me:
                                ha(side).besecondary(s, me, "wrong", NODES["n4"], 1)),
        "besecondary-closed": ("besecondary(closed address)", lambda side, s, me:
                               ha(side).besecondary(s, me, "n4", CLOSED_IP, 1)),
        "besecondary-self": ("besecondary(itself)", lambda side, s, me:
                             ha(side).besecondary(s, me, me, NODES[me], 1)),
        "benone": ("benone", lambda side, s, me: ha(side).benone(s)),
        "berelay": ("berelay", lambda side, s, me: ha(side).berelay(s)),
        "secondary_dead-n2": ("secondary_dead('n2')", lambda side, s, me:
                              ha(side).secondary_dead(s, "n2")),
        "secondary_dead-unknown": ("secondary_dead('nX')", lambda side, s, me:
                                   ha(side).secondary_dead(s, "nX")),
    }


def _state_cases():
    for state, (setup, subject) in STATES.items():
        for oname, (label, fn) in _orders().items():
            run = _session((label, fn), status_after=not oname.endswith("async"))
            yield Case("state/%s/%s" % (state, oname), "world", _bind(run, subject),
                       setup=setup)
    for state in ("none", "primary", "secondary"):
        setup, subject = STATES[state]
        setup = tuple(a for a in setup if a != N4) + (("primary", "n4", OTHER_TOKEN),)
        run = _session(("besecondary(n4 with another token)", lambda side, s, me:
                        side.ha.besecondary(s, me, "n4", NODES["n4"], 1)))
        yield Case("state/%s/besecondary-badtoken" % state, "world", _bind(run, subject),
                   setup=setup)


def _node_id_cases():
    ids = {
        "bytes": lambda side: b"n1",
        "non-ascii": lambda side: "n\u00f81",
        "empty": lambda side: "",
        "nul-inside": lambda side: "n1\x00x",
        "long": lambda side: "n" * 255,
        "value-buf": lambda side: side.Value("n1"),
        "value-str": lambda side: side.Value("n1", side.top.C_STR),
        "value-int32": lambda side: side.Value(5, side.top.C_INT32),
        "value-uint64": lambda side: side.Value(2**40, side.top.C_UINT64),
    }
    for tag, make in ids.items():
        run = _session(("beprimary(%s)" % tag, lambda side, s, me, m=make:
                        side.ha.beprimary(s, m(side))))
        yield Case("node-id/beprimary-" + tag, "world", _bind(run, "n1"), setup=())
        run = _session(("besecondary(%s, n4)" % tag, lambda side, s, me, m=make:
                        side.ha.besecondary(s, m(side), "n4", NODES["n4"], 1)))
        # A join with a node id that is not a binary makes ConfD 8.2.5's primary crash
        # ("Internal error: Supervision terminated"): n4 is renewed after each side.
        yield Case("node-id/besecondary-" + tag, "world", _bind(run, "n1"), setup=(N4,),
                   renew=("n4",) if tag.startswith("value-") and "int" in tag else ())


def _connected(ctx, side, node="n1", family=socket.AF_INET, ip=None):
    s = ctx.socket(family)
    step = side.run("connect", side.ha.connect, s, TOKEN, ip or NODES[node], IPC_PORT,
                    unblock=s)
    return s, step


def _connect_twice(ctx, side):
    s, step = _connected(ctx, side)
    out = [step, side.run("connect again", side.ha.connect, s, TOKEN, NODES["n1"], IPC_PORT,
                          unblock=s)]
    out.append(side.run("status", side.ha.status, s, unblock=s))
    out.append(side.run("beprimary", side.ha.beprimary, s, "n1", unblock=s))
    return out


def _connect_v4_mapped(ctx, side):
    s, step = _connected(ctx, side, family=socket.AF_INET6, ip="::ffff:" + NODES["n1"])
    return [step, side.run("status", side.ha.status, s, unblock=s)]


def _connect_port_wrapped(ctx, side):
    s = ctx.socket()
    out = [side.run("connect(port=4565+65536)", side.ha.connect, s, TOKEN, NODES["n1"],
                    IPC_PORT + 65536, unblock=s)]
    out.append(side.run("status", side.ha.status, s, unblock=s))
    return out


def _connect_empty_token(ctx, side):
    s = ctx.socket()
    out = [side.run("connect(token='')", side.ha.connect, s, "", NODES["n1"], IPC_PORT,
                    unblock=s)]
    out.append(side.run("besecondary(n4)", side.ha.besecondary, s, "n1", "n4", NODES["n4"], 1,
                        unblock=s))
    return out


def _replaced(ctx, side):
    s1, step = _connected(ctx, side)
    out = [step]
    s2, step = _connected(ctx, side)
    out.append(["second connect", step[1]])
    # The daemon closes the replaced socket on its own time (connect() gets no reply);
    # ConfD does it at once, the emulator a few milliseconds later.
    wait_readable(s1)
    out.append(side.run("status(first)", side.ha.status, s1, unblock=s1))
    out.append(side.run("status(first) again", side.ha.status, s1, unblock=s1))
    out.append(side.run("beprimary(first)", side.ha.beprimary, s1, "n1", unblock=s1))
    out.append(side.run("benone(first)", side.ha.benone, s1, unblock=s1))
    out.append(side.run("status(second)", side.ha.status, s2, unblock=s2))
    return out


def _closed_socket(ctx, side):
    s, step = _connected(ctx, side)
    s.close()
    return [step, side.run("status(closed socket)", side.ha.status, s),
            side.run("beprimary(closed socket)", side.ha.beprimary, s, "n1")]


def _killed(ctx, side):
    s, step = _connected(ctx, side, node="n4")
    ctx.world.kill("n4")
    return [step, side.run("status", side.ha.status, s, unblock=s),
            side.run("status again", side.ha.status, s, unblock=s),
            side.run("beprimary", side.ha.beprimary, s, "n4", unblock=s)]


def _killed_events(ctx, side):
    s = ctx.socket()
    out = [side.run("notifications_connect", side.events.notifications_connect, s, 1 << 6,
                    NODES["n4"], IPC_PORT, unblock=s)]
    ctx.world.kill("n4")
    out.append(side.run("read_notification", side.events.read_notification, s, unblock=s))
    out.append(side.run("sync_ha_notification", side.events.sync_ha_notification, s,
                        unblock=s))
    return out


def _closed_events(ctx, side):
    s = ctx.socket()
    out = [side.run("notifications_connect", side.events.notifications_connect, s, 1 << 6,
                    NODES["n1"], IPC_PORT, unblock=s)]
    s.close()
    out.append(side.run("read_notification(closed socket)", side.events.read_notification, s))
    out.append(side.run("sync_ha_notification(closed socket)",
                        side.events.sync_ha_notification, s))
    return out


def _events_twice(ctx, side):
    s = ctx.socket()
    out = [side.run("notifications_connect", side.events.notifications_connect, s, 1 << 6,
                    NODES["n1"], IPC_PORT, unblock=s)]
    out.append(side.run("notifications_connect again", side.events.notifications_connect, s,
                        1 << 6, NODES["n1"], IPC_PORT, unblock=s))
    return out


def _status_on_event_socket(ctx, side):
    s = ctx.socket()
    out = [side.run("notifications_connect", side.events.notifications_connect, s, 1 << 6,
                    NODES["n1"], IPC_PORT, unblock=s)]
    out.append(side.run("sync_ha_notification (nothing pending)",
                        side.events.sync_ha_notification, s, unblock=s))
    return out


def cases():
    yield from _state_cases()
    yield from _node_id_cases()
    simple = {
        "connect/live/twice": _connect_twice,
        "connect/live/v4-mapped-on-inet6": _connect_v4_mapped,
        "connect/live/port-wrapped": _connect_port_wrapped,
        "connect/live/empty-token": _connect_empty_token,
        "eof/replaced-by-new-connect": _replaced,
        "eof/socket-closed": _closed_socket,
        "eof/daemon-killed": _killed,
        "eof/events-daemon-killed": _killed_events,
        "eof/events-socket-closed": _closed_events,
        "events/connect-twice": _events_twice,
        "events/sync-nothing-pending": _status_on_event_socket,
    }
    for name, run in simple.items():
        yield Case(name, "world", run, setup=(N4,) if name.endswith("empty-token") else ())
