"""Scenario scripts: most scenarios are plain sequences of orders, faults and waits, written in
``*.scn`` files of this package rather than as Python functions.

A script file holds scenarios one after another::

    # comment lines and blank lines are ignored
    fault_kill_secondary  nodes=2 tick=1.0
      | kill -9 of a secondary.              (description lines: "|" then text)
      subscribe_all n1                        (steps, one per line)
      primary
      secondary n2
      kill n2
      wait n1:SECONDARY_DIED within=5
      statuses n1

A header line (not indented) names the scenario and gives the options of :func:`scenario`.
A step is a verb and its arguments, split as a POSIX shell would (``""`` is an empty id).
The verb is a set-up step of :mod:`._setup` or a method of
:class:`~conformance.world.World`. ``key=value`` is a keyword argument. Values are read as
``true``/``false``, an integer, a decimal number, ``node:EVENT`` (a pair, as ``wait`` takes),
``c*N`` (the character ``c`` repeated ``N`` times, for long ids), or else text.
"""

from __future__ import annotations

import re
import shlex
from typing import Any, Callable, Dict, List, Tuple

from . import _setup

_REPEAT = re.compile(r"^(.)\*(\d+)$")
_INT = re.compile(r"^-?\d+$")
_DECIMAL = re.compile(r"^-?\d+\.\d+$")
_PAIR = re.compile(r"^([^:]+):([A-Z_]+)$")
_SETUP: Dict[str, Callable[..., None]] = {
    name: getattr(_setup, name)
    for name in ("subscribe_all", "primary", "secondary", "relay", "statuses", "relay_tree")}
_WORLD_VERBS = frozenset((
    "start_phase", "kill", "freeze", "thaw", "stop", "restart", "sleep", "subscribe",
    "close_subscriber", "ack", "wait", "connect", "beprimary", "besecondary", "benone",
    "berelay", "secondary_dead", "status"))


class ScriptError(ValueError):
    """A script that cannot be read: its file, line and what is wrong."""


def value(text: str) -> Any:
    """One argument of a step, as the table in this module's docstring says."""
    if text in ("true", "false"):
        return text == "true"
    if _INT.match(text):
        return int(text)
    if _DECIMAL.match(text):
        return float(text)
    m = _PAIR.match(text) or _REPEAT.match(text)
    if m is None:
        return text
    return (m.group(1), m.group(2)) if m.re is _PAIR else m.group(1) * int(m.group(2))


Step = Tuple[str, Tuple[Any, ...], Dict[str, Any]]


def step(line: str) -> Step:
    verb, *words = shlex.split(line)
    if verb not in _SETUP and verb not in _WORLD_VERBS:
        raise ValueError("unknown step %r" % verb)
    args = tuple(value(w) for w in words if "=" not in w)
    kwargs = {k: value(v) for k, v in (w.split("=", 1) for w in words if "=" in w)}
    return verb, args, kwargs


def play(steps: List[Step]) -> Callable[[Any], None]:
    """The scenario function that runs ``steps`` on a world."""

    def run(w: Any) -> None:
        for verb, args, kwargs in steps:
            if verb in _SETUP:
                _SETUP[verb](w, *args, **kwargs)
            else:
                getattr(w, verb)(*args, **kwargs)

    return run


def parse(text: str, where: str) -> List[Tuple[str, Dict[str, Any], str, List[Step]]]:
    """``(name, options, description, steps)`` of every scenario in ``text``."""
    found: List[Tuple[str, Dict[str, Any], str, List[Step]]] = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            if not raw[0].isspace():
                name, *opts = line.split()
                found.append((name, dict((k, value(v)) for k, v in
                                         (o.split("=", 1) for o in opts)), "", []))
            elif not found:
                raise ValueError("a step before the first scenario header")
            elif line.startswith("|"):
                name, opts, doc, steps = found[-1]
                found[-1] = (name, opts, " ".join((doc + " " + line[1:]).split()), steps)
            else:
                found[-1][3].append(step(line))
        except ValueError as e:
            raise ScriptError("%s:%d: %s" % (where, n, e)) from None
    return found
