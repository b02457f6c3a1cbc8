"""Argument checks and coercions of the public calls, shared by the blocking API
(``confd_ha``, ``confd_ha.events``) and the asyncio API (``confd_ha.aio``), so that both
accept the same arguments and refuse the rest with the same exceptions and texts.
"""

from __future__ import annotations

import socket

from . import _protocol
from .value import Value

_MASK_LIMIT = 1 << 64   # the mask is a 64-bit integer in C (wire-protocol §10.1)


def check_sock(sock):
    if not isinstance(sock, socket.socket):
        raise TypeError("sock argument must be a socket")
    return sock


def token_bytes(token) -> bytes:
    """The bytes of an HA token (``str`` as UTF-8, or ``bytes``), W-16."""
    if isinstance(token, str):
        return token.encode("utf-8")
    if isinstance(token, (bytes, bytearray)):
        return bytes(token)
    raise TypeError("token argument must be a string")


def node_term(obj, argname: str = "nodeid"):
    """The wire term of a node id: ``str`` (C_BUF of its UTF-8 bytes up to the first NUL),
    ``bytes`` (C_BUF), :class:`Value`, or any object shaped like Cisco's ``Value``
    (``confd_type()`` and ``as_pyval()``)."""
    if isinstance(obj, str):
        return obj.encode("utf-8").split(b"\x00", 1)[0]
    if isinstance(obj, (bytes, bytearray)):
        return bytes(obj)
    if isinstance(obj, Value):
        return obj.to_term()
    confd_type = getattr(obj, "confd_type", None)
    as_pyval = getattr(obj, "as_pyval", None)
    if callable(confd_type) and callable(as_pyval):
        return Value(as_pyval(), confd_type()).to_term()
    raise TypeError("%s argument must be a _confd.Value or a string" % argname)


def primary_address(ip, argname: str):
    """``(AF, packed)`` of an IP literal; the Python API accepts nothing else (W-22)."""
    if not isinstance(ip, str):
        raise TypeError("%s argument must be a string" % argname)
    parsed = _protocol.parse_ip(ip)
    if parsed is None:
        raise ValueError("Invalid master address." if argname == "masterip"
                         else "Invalid primary_ip address.")
    return parsed


def besecondary_order(mynodeid, primary_id, primary_ip, waitreply, masterid, masterip):
    """``(frame, wait)`` for ``besecondary``: the framed order and whether a reply follows.
    The old keywords ``masterid``/``masterip`` stand for ``primary_id``/``primary_ip``."""
    pid_name, ip_name = "primary_id", "primary_ip"
    if masterid is not None:
        if primary_id is not None:
            raise TypeError("give primary_id or masterid, not both")
        primary_id, pid_name = masterid, "masterid"
    if masterip is not None:
        if primary_ip is not None:
            raise TypeError("give primary_ip or masterip, not both")
        primary_ip, ip_name = masterip, "masterip"
    for name, val in ((pid_name, primary_id), (ip_name, primary_ip), ("waitreply", waitreply)):
        if val is None:
            raise TypeError("besecondary() missing required argument '%s'" % name)
    if not isinstance(waitreply, int):
        raise TypeError("waitreply argument must be an integer")
    wait = bool(waitreply)
    request = _protocol.encode_order(
        _protocol.BESECONDARY, node_term(mynodeid, "mynodeid"), node_term(primary_id, pid_name),
        primary_address(primary_ip, ip_name), 1 if wait else 0)
    return request, wait


def event_mask(mask) -> int:
    """A notification mask: an integer that fits the C library's 64-bit mask."""
    if not isinstance(mask, int):
        raise TypeError("mask argument must be an integer")
    if not 0 <= mask < _MASK_LIMIT:
        raise ValueError("mask argument must be a 64-bit unsigned value")
    return int(mask)
