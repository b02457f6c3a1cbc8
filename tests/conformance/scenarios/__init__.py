"""Every conformance scenario, registered by :func:`scenario` in the modules of this package."""

from __future__ import annotations

import importlib
import os
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
_READ: list = []   # scripts are read once


def scenario(nodes: int = 3, tick: float = 1.0, quirks: bool = False,
             access_secret: Optional[bytes] = None, phase0: bool = False) -> Callable:
    """Register a scenario: a function of a :class:`~conformance.world.World` whose nodes
    n1..n``nodes`` have been started (unless it starts them itself: ``nodes`` only sizes the
    world) with tick timeout ``tick`` seconds. ``quirks`` runs the emulator with
    ``--confd-quirks``; ``access_secret`` turns the IPC access check on with that secret;
    ``phase0`` starts the nodes in start phase 0."""

    def register(fn: Callable) -> Callable:
        _add(Scenario(fn.__name__, fn, nodes, tick, quirks, access_secret, phase0,
                      " ".join((fn.__doc__ or "").split())))
        return fn

    return register


def _add(sc: Scenario) -> None:
    if sc.name in SCENARIOS:
        raise ValueError("scenario %s defined twice" % sc.name)
    SCENARIOS[sc.name] = sc


def load() -> dict:
    """Import every scenario module, read every script (``*.scn``, see :mod:`.script`) and
    return the registry, by name."""
    from . import script

    if _READ:
        return SCENARIOS
    _READ.append(True)
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module("%s.%s" % (__name__, info.name))
    here = os.path.dirname(os.path.abspath(__file__))
    for fname in sorted(f for f in os.listdir(here) if f.endswith(".scn")):
        with open(os.path.join(here, fname), encoding="utf-8") as f:
            found = script.parse(f.read(), fname)
        for name, opts, doc, steps in found:
            options = {"nodes": 3, "tick": 1.0, "quirks": False, "access_secret": None,
                       "phase0": False}
            unknown = set(opts) - set(options)
            if unknown:
                raise script.ScriptError("%s: %s: unknown option %s" % (fname, name, unknown))
            options.update(opts)
            _add(Scenario(name, script.play(steps), doc=doc, **options))
    return SCENARIOS
