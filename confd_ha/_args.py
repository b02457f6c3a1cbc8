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
import os
import socket
from typing import Any, NoReturn, Optional, Tuple, Union

from . import _address, _protocol, error
from ._terms import Term
from .value import Value, ValueLike

# An argument that was not given (None is a value for some). Typed Any so that it can be the
# default of parameters of any type.
MISSING: Any = object()

# What the calls accept as a node id: str, bytes, confd_ha.Value or an object shaped like
# Cisco's _confd.Value / _ncs.Value.
NodeId = Union[str, bytes, bytearray, Value, ValueLike]
# An HA token: str (sent as UTF-8) or bytes.
Token = Union[str, bytes, bytearray]
# An AF_UNIX path argument.
PathArg = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]

_INT_MAX = 2**31 - 1
# The largest token file the command line and the agent read (a longer one is not a token).
MAX_TOKEN_FILE = 64 * 1024
_LONG_MAX = 2**63 - 1
_MASK_RANGE = (-(2**63), 2**63)   # the mask is a C long long, used as 64 unsigned bits
_NEEDS_DATA = (           # mask bits that need notifications_connect2() data, in libconfd's order
    (1 << 13, "Need heartbeat interval"),
    (1 << 18, "Need health check interval"),
    (1 << 19, "Need notification stream info"),
)


def type_name(obj: object) -> str:
    return "None" if obj is None else type(obj).__name__


def check_sock(sock: object) -> socket.socket:
    """The socket argument: a :class:`socket.socket` (``confd_ha`` does its I/O through the
    socket object). An object without ``fileno`` is refused as the original module does."""
    if isinstance(sock, socket.socket):
        return sock
    if not hasattr(sock, "fileno"):
        raise AttributeError("'%s' object has no attribute 'fileno'" % type(sock).__name__)
    raise TypeError("sock argument must be a socket")


def text_arg(value: object, position: int) -> str:
    """A ``str`` argument (the original's ``s`` format)."""
    if not isinstance(value, str):
        raise TypeError("argument %d must be str, not %s" % (position, type_name(value)))
    return value


def c_int(value: Any) -> int:
    """An ``int`` argument as the original's ``i`` format takes it (a C int)."""
    try:
        number: int = operator.index(value)
    except TypeError:
        raise TypeError("'%s' object cannot be interpreted as an integer"
                        % type(value).__name__) from None
    if not -_LONG_MAX - 1 <= number <= _LONG_MAX:
        raise OverflowError("Python int too large to convert to C long")
    if number > _INT_MAX:
        raise OverflowError("signed integer is greater than maximum")
    if number < -_INT_MAX - 1:
        raise OverflowError("signed integer is less than minimum")
    return number


def token_bytes(token: object) -> bytes:
    """The bytes of an HA token (``str`` as UTF-8, or ``bytes``), W-16."""
    if isinstance(token, str):
        return token.encode("utf-8")
    if isinstance(token, (bytes, bytearray)):
        return bytes(token)
    raise TypeError("argument 2 must be str, not %s" % type_name(token))


def address_args(ip: object, port: object, path: object
                 ) -> Tuple[Optional[str], Optional[int], Any]:
    """The types of ``ip`` (argument 3), ``port`` (4) and the AF_UNIX path (5); None (not
    given) is kept for the defaults."""
    ip_text = None if ip is None else text_arg(ip, 3)
    port_number = None if port is None else c_int(port)
    if path is not None and not isinstance(path, (str, bytes)) and not hasattr(path,
                                                                            "__fspath__"):
        text_arg(path, 5)
    return ip_text, port_number, path


def node_term(obj: object, argname: str = "nodeid") -> Term:
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


def primary_address(ip: str, argname: str) -> Tuple[int, bytes]:
    """``(AF, packed)`` of an IP literal; the Python API accepts nothing else (W-22)."""
    parsed = _address.parse_ip(ip)
    if parsed is None:
        raise ValueError("Invalid master address." if argname == "masterip"
                         else "Invalid primary_ip address.")
    return parsed


def _missing(name: str, position: int) -> NoReturn:
    raise TypeError("function missing required argument '%s' (pos %d)" % (name, position))


def besecondary_order(mynodeid: object, primary_id: object, primary_ip: object,
                      waitreply: object, masterid: object, masterip: object
                      ) -> Tuple[bytes, bool]:
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
    ip_text = text_arg(primary_ip, 4)
    wait = bool(c_int(waitreply))
    node, pnode = node_term(mynodeid, "mynodeid"), node_term(primary_id, pid_name)
    request = _protocol.encode_order(_protocol.BESECONDARY, node, pnode,
                                     primary_address(ip_text, ip_name), 1 if wait else 0)
    return request, wait


def event_mask(mask: Any) -> int:
    """A notification mask: an integer of the C library's 64 bits (negative values stand for
    their two's complement, as in C)."""
    try:
        number: int = operator.index(mask)
    except TypeError:
        raise TypeError("'%s' object cannot be interpreted as an integer"
                        % type(mask).__name__) from None
    if not _MASK_RANGE[0] <= number < _MASK_RANGE[1]:
        raise OverflowError("int too big to convert")
    return number & (2**64 - 1)


def check_mask_data(mask: int) -> None:
    """Refuse, before connecting, the mask bits whose subscription needs data that
    ``notifications_connect`` cannot give (libconfd's check, ``ERR_PROTOUSAGE``)."""
    for bit, text in _NEEDS_DATA:
        if mask & bit:
            error.raise_error(error.ERR_PROTOUSAGE, text)
