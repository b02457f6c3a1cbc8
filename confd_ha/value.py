"""``Value``: a typed ConfD value (``confd_value_t``), enough for HA node ids.

Mirrors ``_confd.Value(init, type=0)``: the ``C_*`` type numbers, ``confd_type()`` and
``as_pyval()``, and the conversion to and from the Erlang terms that carry values on the
daemon's IPC protocol.
"""

from __future__ import annotations

import ipaddress
from typing import Any, NoReturn, Protocol, Tuple

from . import error
from ._consts import is_int
from ._terms import Atom, Term

# What ``from confd_ha.value import *`` (and so ``confd_ha``) exports: the class and the C_*
# type numbers, as in Cisco's module.
__all__ = ["Value", "C_NOEXISTS", "C_XMLTAG", "C_SYMBOL", "C_STR", "C_BUF", "C_INT8", "C_INT16",
           "C_INT32", "C_INT64", "C_UINT8", "C_UINT16", "C_UINT32", "C_UINT64", "C_DOUBLE",
           "C_IPV4", "C_IPV6", "C_BOOL", "C_QNAME", "C_DATETIME", "C_DATE", "C_TIME",
           "C_DURATION", "C_ENUM_VALUE", "C_BIT32", "C_BIT64", "C_LIST", "C_XMLBEGIN",
           "C_XMLEND", "C_OBJECTREF", "C_UNION", "C_PTR", "C_CDBBEGIN", "C_OID", "C_BINARY",
           "C_IPV4PREFIX", "C_IPV6PREFIX", "C_DEFAULT", "C_DECIMAL64", "C_IDENTITYREF",
           "C_XMLBEGINDEL", "C_DQUAD", "C_HEXSTR", "C_IPV4_AND_PLEN", "C_IPV6_AND_PLEN",
           "C_BITBIG", "C_XMLMOVEFIRST", "C_XMLMOVEAFTER", "C_EMPTY"]

C_NOEXISTS = 1
C_XMLTAG = 2
C_SYMBOL = 3
C_STR = 4
C_BUF = 5
C_INT8 = 6
C_INT16 = 7
C_INT32 = 8
C_INT64 = 9
C_UINT8 = 10
C_UINT16 = 11
C_UINT32 = 12
C_UINT64 = 13
C_DOUBLE = 14
C_IPV4 = 15
C_IPV6 = 16
C_BOOL = 17
C_QNAME = 18
C_DATETIME = 19
C_DATE = 20
C_TIME = 23
C_DURATION = 27
C_ENUM_VALUE = 28
C_BIT32 = 29
C_BIT64 = 30
C_LIST = 31
C_XMLBEGIN = 32
C_XMLEND = 33
C_OBJECTREF = 34
C_UNION = 35
C_PTR = 36
C_CDBBEGIN = 37
C_OID = 38
C_BINARY = 39
C_IPV4PREFIX = 40
C_IPV6PREFIX = 41
C_DEFAULT = 42
C_DECIMAL64 = 43
C_IDENTITYREF = 44
C_XMLBEGINDEL = 45
C_DQUAD = 46
C_HEXSTR = 47
C_IPV4_AND_PLEN = 48
C_IPV6_AND_PLEN = 49
C_BITBIG = 50
C_XMLMOVEFIRST = 51
C_XMLMOVEAFTER = 52
C_EMPTY = 53

# Integer types: (low, high) and whether the term is the bare integer (C_INT32) or {Type, I}.
_INT_RANGES = {
    C_INT8: (-(2**7), 2**7 - 1),
    C_INT16: (-(2**15), 2**15 - 1),
    C_INT32: (-(2**31), 2**31 - 1),
    C_INT64: (-(2**63), 2**63 - 1),
    C_UINT8: (0, 2**8 - 1),
    C_UINT16: (0, 2**16 - 1),
    C_UINT32: (0, 2**32 - 1),
    C_UINT64: (0, 2**64 - 1),
    C_ENUM_VALUE: (-(2**31), 2**31 - 1),
    C_BIT32: (0, 2**32 - 1),
    C_BIT64: (0, 2**64 - 1),
}
# Types whose term is {Type, Bin}.
_BYTES_TAGGED = (C_OID, C_BINARY, C_DQUAD, C_HEXSTR, C_BITBIG)
# Types whose term is {Type, Tuple} with a fixed arity of integers (or [] as time zone).
_TUPLE_TAGGED = {C_DATETIME: 9, C_DATE: 5, C_TIME: 6, C_DURATION: 7}
_PREFIXES = {C_IPV4PREFIX: 4, C_IPV6PREFIX: 6, C_IPV4_AND_PLEN: 4, C_IPV6_AND_PLEN: 6}
# Marker, internal and term-less types: no term form.
_UNSUPPORTED = (C_XMLTAG, C_SYMBOL, C_XMLBEGIN, C_XMLEND, C_UNION, C_PTR, C_CDBBEGIN,
                C_XMLBEGINDEL, C_XMLMOVEFIRST, C_XMLMOVEAFTER, C_EMPTY)


class ValueLike(Protocol):
    """The shape of Cisco's ``_confd.Value`` / ``_ncs.Value`` that node-id arguments accept
    (besides :class:`Value` itself)."""

    def confd_type(self) -> int: ...

    def as_pyval(self) -> Any: ...


class Value:
    """A ConfD value: ``Value(init, type=0)``; ``type=0`` guesses the type from ``init``
    (``str``/``bytes`` → C_BUF, ``bool`` → C_BOOL, ``int`` → C_INT32 or C_INT64,
    ``float`` → C_DOUBLE, ``list`` → C_LIST)."""

    __slots__ = ("_type", "_val")
    _type: int
    _val: Any

    def __init__(self, init: Any, type: int = 0) -> None:  # noqa: A002 -- the original's keyword
        if isinstance(init, Value):
            init, type = init._val, type or init._type
        if not isinstance(type, int):
            raise TypeError("type argument must be an integer")
        if type == 0:
            type = _guess_type(init)
        self._type = type
        self._val = _normalise(type, init)

    def confd_type(self) -> int:
        """The ``C_*`` type number."""
        return self._type

    def as_pyval(self) -> Any:
        """The value as a Python object (``str`` for C_BUF/C_STR, ``int``, ``bool``…)."""
        if self._type in (C_BUF, C_STR):
            return self._val.decode("utf-8", "replace")
        if self._type == C_LIST:
            return [v.as_pyval() for v in self._val]
        return self._val

    def as_bytes(self) -> bytes:
        """The raw bytes of a C_BUF/C_STR (or other byte-valued) value."""
        if isinstance(self._val, bytes):
            return self._val
        error.raise_error(error.ERR_BADTYPE, "value of type %d has no bytes" % self._type)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Value):
            return self._type == other._type and self._val == other._val
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self._type, repr(self._val)))

    def __str__(self) -> str:
        v = self._val
        text: str
        if self._type in (C_BUF, C_STR):
            text = v.decode("utf-8", "replace")
            return text
        if self._type == C_BOOL:
            return "true" if v else "false"
        if self._type in (C_NOEXISTS, C_DEFAULT):
            return "" if self._type == C_NOEXISTS else "default"
        if self._type in _BYTES_TAGGED:
            text = v.hex()
            return text
        return str(v)

    def __repr__(self) -> str:
        return "<confd_ha.Value type=%d value=%r>" % (self._type, self.as_pyval())

    # ------------------------------------------------------------ term conversion

    def to_term(self) -> Term:
        """The Erlang term of this value; types without a term form (the C_XML* markers,
        C_SYMBOL, C_UNION, C_PTR, C_CDBBEGIN, C_EMPTY) and unknown types raise
        ``ERR_BADTYPE``."""
        t, v = self._type, self._val
        if t in (C_BUF, C_STR):
            return v
        if t == C_INT32:
            return v
        if t in _INT_RANGES:
            return (t, v)
        if t == C_DOUBLE:
            return float(v)
        if t == C_BOOL:
            return Atom("true" if v else "false")
        if t == C_NOEXISTS:
            return Atom("not_found")
        if t == C_DEFAULT:
            return Atom("default")
        if t == C_IPV4:
            return tuple(ipaddress.IPv4Address(v).packed)
        if t == C_IPV6:
            return _ip6_words(ipaddress.IPv6Address(v).packed)
        if t in _BYTES_TAGGED:
            return (t, v)
        if t == C_QNAME:
            return (v[0], v[1])
        if t in _TUPLE_TAGGED:
            return (t, v)
        if t == C_LIST:
            return [x.to_term() for x in v]
        if t == C_OBJECTREF:
            return (t, v)
        if t in _PREFIXES:
            net, plen = v
            packed = ipaddress.ip_address(net).packed
            addr = tuple(packed) if len(packed) == 4 else _ip6_words(packed)
            return (t, (addr, plen))
        if t in (C_DECIMAL64, C_IDENTITYREF):
            return (t, v)
        error.raise_error(error.ERR_BADTYPE, "value type %d cannot be sent" % t)

    @classmethod
    def from_term(cls, term: Term) -> "Value":
        """The value a received term stands for: a bare binary is C_BUF, a bare
        integer C_INT32 or C_INT64, ``true``/``false`` C_BOOL."""
        v = object.__new__(cls)
        try:
            t, val = _decode_term(term)
        except (ValueError, TypeError, OverflowError):
            # A term of a known shape whose parts are out of range (a peer's bytes).
            error.raise_error(error.ERR_BADTYPE, "unrecognised value term")
        v._type, v._val = t, val
        return v


def _ip6_words(packed: bytes) -> Tuple[int, ...]:
    return tuple((packed[i] << 8) | packed[i + 1] for i in range(0, 16, 2))


def _guess_type(init: object) -> int:
    if isinstance(init, (str, bytes, bytearray)):
        return C_BUF
    if isinstance(init, bool):
        return C_BOOL
    if isinstance(init, int):
        return C_INT32 if -(2**31) <= init < 2**31 else C_INT64
    if isinstance(init, float):
        return C_DOUBLE
    if isinstance(init, list):
        return C_LIST
    raise TypeError("cannot guess the type of a %s value; give type=" % type(init).__name__)


def _bad(t: int, init: object) -> NoReturn:
    raise ValueError("invalid value %r for type %d" % (init, t))


def _normalise(t: int, init: Any) -> Any:
    """Checks init against type t and returns the stored form."""
    if t in (C_BUF, C_STR):
        if isinstance(init, str):
            return init.encode("utf-8")
        if isinstance(init, (bytes, bytearray, memoryview)):
            return bytes(init)
        _bad(t, init)
    if t in _INT_RANGES:
        if isinstance(init, bool) or not isinstance(init, int):
            _bad(t, init)
        lo, hi = _INT_RANGES[t]
        if not lo <= init <= hi:
            raise ValueError("value %d out of range for type %d" % (init, t))
        return init
    if t == C_DOUBLE:
        if isinstance(init, (int, float)) and not isinstance(init, bool):
            return float(init)
        _bad(t, init)
    if t == C_BOOL:
        return bool(init)
    if t in (C_NOEXISTS, C_DEFAULT):
        return None
    if t in (C_IPV4, C_IPV6):
        try:
            addr = ipaddress.ip_address(init if not isinstance(init, bytes) else init.decode())
        except ValueError:
            _bad(t, init)
        if addr.version != (4 if t == C_IPV4 else 6):
            _bad(t, init)
        return str(addr)
    if t in _BYTES_TAGGED:
        if isinstance(init, (bytes, bytearray)):
            return bytes(init)
        _bad(t, init)
    if t == C_QNAME:
        if isinstance(init, tuple) and len(init) == 2:
            return tuple(x.encode() if isinstance(x, str) else bytes(x) for x in init)
        _bad(t, init)
    if t in _TUPLE_TAGGED:
        if isinstance(init, tuple) and len(init) == _TUPLE_TAGGED[t]:
            return init
        _bad(t, init)
    if t == C_LIST:
        if isinstance(init, (list, tuple)):
            return [x if isinstance(x, Value) else Value(x) for x in init]
        _bad(t, init)
    if t in _PREFIXES:
        version = _PREFIXES[t]
        try:
            if isinstance(init, str) and "/" in init:
                net = ipaddress.ip_interface(init)
                init = (str(net.ip), net.network.prefixlen)
            if isinstance(init, tuple) and len(init) == 2 and is_int(init[1]):
                addr = ipaddress.ip_address(init[0])
                if addr.version == version and 0 <= init[1] <= (32 if version == 4 else 128):
                    return (str(addr), init[1])
        except ValueError:
            pass
        _bad(t, init)
    if t in (C_DECIMAL64, C_IDENTITYREF):
        if isinstance(init, tuple) and len(init) == 2 and all(is_int(x) for x in init):
            if t == C_IDENTITYREF or -(2**63) <= init[0] < 2**63:
                return init
        _bad(t, init)
    # Objectrefs and the marker types keep what they were given; the markers cannot be
    # sent (to_term raises ERR_BADTYPE).
    return init


def _decode_term(term: Term) -> Tuple[int, Any]:
    """(type, stored value) for a received term."""
    if isinstance(term, bytes):
        return C_BUF, term
    if is_int(term):
        return (C_INT32 if -(2**31) <= term < 2**31 else C_INT64), term
    if isinstance(term, float):
        return C_DOUBLE, term
    if isinstance(term, Atom):
        if term in ("true", "false"):
            return C_BOOL, term == "true"
        if term == "not_found":
            return C_NOEXISTS, None
        if term == "default":
            return C_DEFAULT, None
    if isinstance(term, list):
        return C_LIST, [Value.from_term(x) for x in term]
    if isinstance(term, tuple):
        if len(term) == 4 and all(is_int(x) and 0 <= x <= 255 for x in term):
            return C_IPV4, str(ipaddress.IPv4Address(bytes(term)))
        if len(term) == 8 and all(is_int(x) and 0 <= x <= 0xFFFF for x in term):
            packed = b"".join(x.to_bytes(2, "big") for x in term)
            return C_IPV6, str(ipaddress.IPv6Address(packed))
        if len(term) == 2 and isinstance(term[0], bytes) and isinstance(term[1], bytes):
            return C_QNAME, term
        if len(term) == 2 and is_int(term[0]):
            t, v = term
            if t in _INT_RANGES and t != C_INT32 and is_int(v):
                lo, hi = _INT_RANGES[t]
                if lo <= v <= hi:
                    return t, v
            if t in _BYTES_TAGGED and isinstance(v, bytes):
                return t, v
            if t in _TUPLE_TAGGED and isinstance(v, tuple):
                return t, v
            if t == C_OBJECTREF:
                return t, v
            if t in _PREFIXES and isinstance(v, tuple) and len(v) == 2 and is_int(v[1]):
                addr, plen = v
                if isinstance(addr, tuple) and len(addr) == (4 if _PREFIXES[t] == 4 else 8) \
                        and all(is_int(x) and 0 <= x <= (255 if len(addr) == 4 else 0xFFFF)
                                for x in addr):
                    if len(addr) == 4:
                        text = str(ipaddress.IPv4Address(bytes(addr)))
                    else:
                        text = str(ipaddress.IPv6Address(b"".join(x.to_bytes(2, "big") for x in addr)))
                    return t, (text, plen)
            if t in (C_DECIMAL64, C_IDENTITYREF) and isinstance(v, tuple):
                return t, v
    error.raise_error(error.ERR_BADTYPE, "unrecognised value term")
