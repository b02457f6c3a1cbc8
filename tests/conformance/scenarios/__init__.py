"""Every conformance scenario, registered by :func:`scenario` in the modules of this package."""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Callable, Optional


@dataclass(frozen=True)
class Scenario:
    name: str
    fn: Callable
    nodes: int
    tick: float
    quirks: bool
    access_secret: Optional[bytes]
    phase0: bool
    doc: str


SCENARIOS: dict = {}


def scenario(nodes: int = 3, tick: float = 1.0, quirks: bool = False,
             access_secret: Optional[bytes] = None, phase0: bool = False) -> Callable:
    """Register a scenario: a function of a :class:`~conformance.world.World` whose nodes
    n1..n``nodes`` have been started (unless it starts them itself: ``nodes`` only sizes the
    world) with tick timeout ``tick`` seconds. ``quirks`` runs the emulator with
    ``--confd-quirks``; ``access_secret`` turns the IPC access check on with that secret;
    ``phase0`` starts the nodes in start phase 0."""

    def register(fn: Callable) -> Callable:
        name = fn.__name__
        if name in SCENARIOS:
            raise ValueError("scenario %s defined twice" % name)
        SCENARIOS[name] = Scenario(name, fn, nodes, tick, quirks, access_secret, phase0,
                                   " ".join((fn.__doc__ or "").split()))
        return fn

    return register


def load() -> dict:
    """Import every scenario module and return the registry, by name."""
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module("%s.%s" % (__name__, info.name))
    return SCENARIOS
