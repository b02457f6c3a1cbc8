"""Argument checks and coercions of the public calls, shared by the blocking API
(``confd_ha``, ``confd_ha.events``) and the asyncio API (``confd_ha.aio``), so that both
accept the same arguments and refuse the rest with the same exceptions and texts.

The checks follow the original module's order and words (observed with Cisco's
``_confd``, ConfD 8.2.5; ``tests/differential`` compares them): the arguments' types in
their order first, then the socket, then their values. Where ``confd_ha`` deliberately
accepts more -- ``bytes`` tokens and node ids, omitted ``ip``/``port`` taking the package
defaults, old keyword names -- README.md ("Compatibility") lists it.
"""

from __future__ import annotations

import operator
import socket

from . import _protocol, error
from .value import Value

MISSING = object()        # an argument that was not given (None is a value for some)

_INT_MAX = 2**31 - 1
_LONG_MAX = 2**63 - 1
_MASK_RANGE = (-(2**63), 2**63)   # the mask is a C long long, used as 64 unsigned bits
_NEEDS_DATA = (           # mask bits that need notifications_connect2() data, in libconfd's order
    (1 << 13, "Need heartbeat interval"),
    (1 << 18, "Need health check interval"),
    (1 << 19, "Need notification stream info"),
)


def type_name(obj) -> str:
    return "None" if obj is None else type(obj).__name__


def check_sock(sock):
    """The socket argument: a :class:`socket.socket` (``confd_ha`` does its I/O through the
    socket object). An object without ``fileno`` is refused as the original module does."""
    if isinstance(sock, socket.socket):
        return sock
    if not hasattr(sock, "fileno"):
        raise AttributeError("'%s' object has no attribute 'fileno'" % type(sock).__name__)
    raise TypeError("sock argument must be a socket")


def text_arg(value, position: int):
    """A ``str`` argument (the original's ``s`` format)."""
    if not isinstance(value, str):
        raise TypeError("argument %d must be str, not %s" % (position, type_name(value)))
    return value


def c_int(value) -> int:
    """An ``int`` argument as the original's ``i`` format takes it (a C int)."""
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError("'%s' object cannot be interpreted as an integer"
                        % type(value).__name__) from None
    if not -_LONG_MAX - 1 <= value <= _LONG_MAX:
        raise OverflowError("Python int too large to convert to C long")
    if value > _INT_MAX:
        raise OverflowError("signed integer is greater than maximum")
    if value < -_INT_MAX - 1:
        raise OverflowError("signed integer is less than minimum")
    return value


def token_bytes(token) -> bytes:
    """The bytes of an HA token (``str`` as UTF-8, or ``bytes``), W-16."""
    if isinstance(token, str):
        return token.encode("utf-8")
    if isinstance(token, (bytes, bytearray)):
        return bytes(token)
    text_arg(token, 2)


def address_args(ip, port, path):
    """The types of ``ip`` (argument 3), ``port`` (4) and the AF_UNIX path (5); None (not
    given) is kept for the defaults."""
    if ip is not None:
        text_arg(ip, 3)
    if port is not None:
        port = c_int(port)
    if path is not None and not isinstance(path, (str, bytes)) and not hasattr(path,
                                                                            "__fspath__"):
        text_arg(path, 5)
    return ip, port, path


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
    parsed = _protocol.parse_ip(ip)
    if parsed is None:
        raise ValueError("Invalid master address." if argname == "masterip"
                         else "Invalid primary_ip address.")
    return parsed


def _missing(name: str, position: int):
    raise TypeError("function missing required argument '%s' (pos %d)" % (name, position))


def besecondary_order(mynodeid, primary_id, primary_ip, waitreply, masterid, masterip):
    """``(frame, wait)`` for ``besecondary``: the framed order and whether a reply follows.
    The old keywords ``masterid``/``masterip`` stand for ``primary_id``/``primary_ip``;
    arguments not given are :data:`MISSING`."""
    pid_name, ip_name = "primary_id", "primary_ip"
    if masterid is not MISSING:
        if primary_id is not MISSING:
            raise TypeError("give primary_id or masterid, not both")
        primary_id, pid_name = masterid, "masterid"
    if masterip is not MISSING:
        if primary_ip is not MISSING:
            raise TypeError("give primary_ip or masterip, not both")
        primary_ip, ip_name = masterip, "masterip"
    for position, (name, val) in enumerate(((pid_name, primary_id), (ip_name, primary_ip),
                                            ("waitreply", waitreply)), 3):
        if val is MISSING:
            _missing(name, position)
    text_arg(primary_ip, 4)
    wait = bool(c_int(waitreply))
    node, pnode = node_term(mynodeid, "mynodeid"), node_term(primary_id, pid_name)
    request = _protocol.encode_order(_protocol.BESECONDARY, node, pnode,
                                     primary_address(primary_ip, ip_name), 1 if wait else 0)
    return request, wait


def event_mask(mask) -> int:
    """A notification mask: an integer of the C library's 64 bits (negative values stand for
    their two's complement, as in C)."""
    try:
        mask = operator.index(mask)
    except TypeError:
        raise TypeError("'%s' object cannot be interpreted as an integer"
                        % type(mask).__name__) from None
    if not _MASK_RANGE[0] <= mask < _MASK_RANGE[1]:
        raise OverflowError("int too big to convert")
    return mask & (2**64 - 1)


def check_mask_data(mask: int) -> None:
    """Refuse, before connecting, the mask bits whose subscription needs data that
    ``notifications_connect`` cannot give (libconfd's check, ``ERR_PROTOUSAGE``)."""
    for bit, text in _NEEDS_DATA:
        if mask & bit:
            error.raise_error(error.ERR_PROTOUSAGE, text)
