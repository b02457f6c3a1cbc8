"""What a case is, and the catalogue of every case (``all_cases()``).

A case has a unique ``name`` and a ``kind`` that says what it needs:

``local``
    nothing: constants, ``strerror``, argument checks, connects to an address where nothing
    listens (``worlds.CLOSED_IP``). ``run(ctx, side)`` returns the list of steps.
``peer``
    a :class:`~.peer.ScriptedPeer` playing ``script`` (daemon answers that a real ConfD
    cannot be made to give at will, and the bytes each side sends); ``ctx.peer`` is it.
    Cisco's side runs in a forked child unless ``isolate`` is false: some answers crash
    Cisco's module.
``world``
    the four-node world (real ConfD live, emulated nodes in CI) prepared with ``setup``
    before *each* side runs.
``events``
    the world prepared once with ``setup``; each side subscribes (``run`` returns the
    subscribing steps and the event socket), then ``trigger(ctx)`` runs once (in a thread:
    with ``NOTIF_HA_INFO_SYNC`` it may wait for the acknowledgements), then ``count`` events
    are read from every side in turn (acknowledged when ``sync``).

A step is ``[label, outcome]`` (:mod:`.render`). The outcome of a case is its list of steps.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Callable, Optional

from . import worlds


@dataclass
class Case:
    name: str
    kind: str                               # local | peer | world | events
    run: Callable
    setup: tuple = ()
    script: Optional[list] = None
    trigger: Optional[Callable] = None
    count: int = 0
    sync: bool = False
    isolate: bool = True                    # peer cases: Cisco's side in a forked child
    renew: tuple = ()                       # world nodes the case may crash: fresh after it


@dataclass
class Ctx:
    """What a case's ``run`` gets besides the side: sockets (closed after the case), the
    world or the scripted peer."""

    world: Optional[worlds.World] = None
    peer: Optional[object] = None
    _socks: list = field(default_factory=list)

    def socket(self, family=socket.AF_INET, kind=socket.SOCK_STREAM) -> socket.socket:
        s = socket.socket(family, kind)
        self._socks.append(s)
        return s

    def close(self) -> None:
        for s in self._socks:
            s.close()
        self._socks.clear()


def all_cases() -> dict:
    """Every case by name, in catalogue order."""
    from . import cases_events, cases_local, cases_peer, cases_world

    out: dict = {}
    for group in (cases_local, cases_peer, cases_world, cases_events):
        for case in group.cases():
            if case.name in out:
                raise ValueError("duplicate case name %r" % case.name)
            out[case.name] = case
    return out
