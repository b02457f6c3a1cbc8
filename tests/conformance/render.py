"""Canonical text for everything a conformance transcript records.

A transcript is a list of lines. The same behaviour must give the same line on every target,
so the renderers name nodes instead of their addresses (``n2`` for the node at the address of
n2), drop what is incidental (Python reprs, socket numbers) and round timings to a tenth of
the tick (``@3.0t``; compared within half a tick, see :mod:`.transcript`).
"""

from __future__ import annotations

import socket

import confd_ha
from confd_ha import error

STATE_NAMES = {1: "NONE", 2: "SECONDARY", 3: "PRIMARY", 4: "RELAY"}
EVENT_NAMES = {1: "NOPRIMARY", 2: "SECONDARY_DIED", 3: "SECONDARY_ARRIVED",
               4: "SECONDARY_INITIALIZED", 5: "IS_PRIMARY", 6: "IS_NONE",
               7: "BESECONDARY_RESULT"}
EVENT_TYPES = {v: k for k, v in EVENT_NAMES.items()}


class Names:
    """Maps node addresses to node names for rendering."""

    def __init__(self):
        self.by_ip: dict = {}

    def add(self, name: str, ip: str) -> None:
        self.by_ip[ip] = name

    def addr(self, text) -> str:
        return self.by_ip.get(text, str(text))


def nodeid(value) -> str:
    """A node id as given to or returned by the API: short strings quoted, long ones summed
    up by their first characters and length, Values by type and value."""
    if isinstance(value, confd_ha.Value):
        inner = value.as_pyval() if hasattr(value, "as_pyval") else str(value)
        if value.confd_type() == confd_ha.C_BUF:
            return nodeid(str(value))
        return "Value(%d,%s)" % (value.confd_type(), _short(repr(inner)))
    if isinstance(value, bytes):
        return "b" + nodeid(value.decode("latin-1"))
    text = str(value)
    if len(text) > 24:
        if text == text[0] * len(text):
            return "%s*%d" % (ascii(text[0]), len(text))
        return "%s..(%d)" % (ascii(text[:12]), len(text))
    return ascii(text)


def _short(text: str) -> str:
    return text if len(text) <= 40 else text[:30] + "..(%d)" % len(text)


def status(result, names: Names) -> str:
    state, nodes = result
    entries = ", ".join("%s@%s" % (nodeid(n["nodeid"]), names.addr(n["address"])) for n in nodes)
    return "%s [%s]" % (STATE_NAMES.get(state, str(state)), entries)


def exception(exc: BaseException) -> str:
    """An exception by class and, for the API's own, its ConfD error code and name."""
    if isinstance(exc, error.EOF):
        return "EOF"
    if isinstance(exc, error.Error):
        code = exc.confd_errno
        text = "Error(%s %s)" % (code, error.errname(code) if code is not None else "")
        if code == error.ERR_OS and getattr(exc, "errno", None):
            text = "Error(%s OS errno=%s)" % (code, _errno_name(exc.errno))
        if isinstance(exc, TimeoutError):
            text = "Timeout"
        return text
    if isinstance(exc, socket.timeout):
        return "Timeout"
    return type(exc).__name__


def _errno_name(num: int) -> str:
    import errno

    return errno.errorcode.get(num, str(num))


def event(hnot: dict, names: Names) -> str:
    kind = hnot.get("type")
    name = EVENT_NAMES.get(kind, "TYPE%s" % kind)
    if kind == 1:
        return "%s %s" % (name, hnot.get("noprimary"))
    if kind in (2, 3):
        node = hnot["secondary_died" if kind == 2 else "secondary_arrived"]
        return "%s %s@%s" % (name, nodeid(node["nodeid"]), names.addr(_event_addr(node)))
    if kind == 4:
        return "%s copy=%s" % (name, hnot.get("cdb_initialized_by_copy"))
    if kind == 7:
        return "%s %s" % (name, hnot.get("besecondary_result"))
    return name


def _event_addr(node: dict) -> str:
    for key in ("ip4", "ip6", "str"):
        if key in node:
            return node[key]
    return "?"


def hexbytes(data: bytes) -> str:
    return " ".join("%02x" % b for b in data) if data else "(none)"


def term(value) -> str:
    """An Erlang term decoded by ``confd_ha._codec.decode``, in Erlang syntax."""
    from confd_ha._terms import Atom

    if isinstance(value, Atom):
        return str(value)
    if isinstance(value, tuple):
        return "{%s}" % ",".join(term(v) for v in value)
    if isinstance(value, list):
        return "[%s]" % ",".join(term(v) for v in value)
    if isinstance(value, bytes):
        return "<<%s>>" % _short(repr(value)[1:])
    return repr(value)


def ticks(seconds: float, tick: float) -> str:
    return "@%.1ft" % max(seconds / tick, 0.0)
