"""Event cases on the node world: subscriptions with various masks, and every HA event type
provoked for real, read by both modules from the same daemon at the same time (with and
without ``NOTIF_HA_INFO_SYNC``)."""

from __future__ import annotations

import confd_ha as ha

from .catalogue import Case
from .worlds import CLOSED_IP, IPC_PORT, NODES

HA_INFO = 1 << 6
HA_INFO_SYNC = 1 << 20
# Every mask bit ConfD 8.2.5's library knows, without the three that need extra data
# (heartbeat, health check, stream events).
ALL_PLAIN = ((1 << 31) - 1) & ~((1 << 13) | (1 << 18) | (1 << 19))

MASKS = {
    "zero": 0, "ha-info": HA_INFO, "ha-info-sync": HA_INFO | HA_INFO_SYNC,
    "sync-only": HA_INFO_SYNC, "all-plain": ALL_PLAIN, "bit-30": 1 << 30,
    "bit-40": 1 << 40, "bit-62": 1 << 62, "minus-2^63": -(2**63), "heartbeat": 1 << 13,
    "health-check": 1 << 18, "stream": 1 << 19, "minus-1": -1,
}


def _subscribe(node: str, mask: int):
    def run(ctx, side):
        s = ctx.socket()
        step = side.run("notifications_connect", side.events.notifications_connect, s, mask,
                        NODES[node], IPC_PORT, unblock=s)
        return [step], (s if "result" in step[1] else None)
    return run


def _drive(name):
    """The world's HA socket to ``name`` (a new connection)."""
    return lambda ctx: ctx.world.driver(name)


def _beprimary(node):
    return lambda ctx: ha.beprimary(ctx.world.driver(node), node)


def _benone(node):
    return lambda ctx: ha.benone(ctx.world.driver(node))


def _besecondary(node, primary, ip=None, wait=1):
    return lambda ctx: ha.besecondary(ctx.world.driver(node), node, primary,
                                      ip or NODES[primary], wait)


def _secondary_dead(node, dead):
    return lambda ctx: ha.secondary_dead(ctx.world.driver(node), dead)


def _kill(node):
    return lambda ctx: ctx.world.kill(node)


def _nothing(ctx):
    return None


P1 = (("primary", "n1"),)
P1S2 = P1 + (("secondary", "n2", "n1"),)


def cases():
    for tag, mask in MASKS.items():
        yield Case("events/mask/" + tag, "events", _subscribe("n1", mask), trigger=_nothing)
    provoked = [
        # name, setup, subscriber, trigger, events expected
        ("is-primary", (), "n1", _beprimary("n1"), 1),
        ("is-none", P1, "n1", _benone("n1"), 1),
        ("secondary-arrived", P1, "n1", _besecondary("n2", "n1"), 1),
        ("secondary-initialized", P1, "n2", _besecondary("n2", "n1"), 1),
        ("secondary-died-benone", P1S2, "n1", _benone("n2"), 1),
        ("secondary-died-killed", P1S2, "n1", _kill("n2"), 1),
        ("secondary-died-order", P1S2, "n1", _secondary_dead("n1", "n2"), 0),
        ("noprimary-benone", P1S2, "n2", _benone("n1"), 2),
        ("noprimary-killed", P1S2, "n2", _kill("n1"), 2),
        ("besecondary-result-ok", P1, "n2", _besecondary("n2", "n1", wait=0), 2),
        ("besecondary-result-closed", (), "n2", _besecondary("n2", "n1", CLOSED_IP, 0), 2),
        ("besecondary-result-badname", P1, "n2", _besecondary("n2", "nX", NODES["n1"], 0), 2),
        ("relay", P1S2, "n2", lambda ctx: ha.berelay(ctx.world.driver("n2")), 0),
    ]
    for name, setup, node, trigger, count in provoked:
        yield Case("events/%s" % name, "events", _subscribe(node, HA_INFO), setup=setup,
                   trigger=trigger, count=count)
        yield Case("events/%s-sync" % name, "events", _subscribe(node, HA_INFO | HA_INFO_SYNC),
                   setup=setup, trigger=trigger, count=count, sync=True)
