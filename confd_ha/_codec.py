"""The term codec: Python terms to ETF bytes and back, through the C core.

This is the only place where a whole term is encoded or decoded (``_protocol`` builds the HA
messages on top of it; a pure-Python reference codec exists only in the tests). Malformed
input raises :class:`confd_ha.error.Error` (``ERR_PROTOUSAGE``) through
:func:`confd_ha.error.check`.
"""

from __future__ import annotations

import math
from typing import Any, List, Tuple

from . import error
from ._core import ffi, lib
from ._terms import Atom, SmallAtom, Term

_K_INT = lib.CHD_K_INT
_K_FLOAT = lib.CHD_K_FLOAT
_K_ATOM = lib.CHD_K_ATOM
_K_ATOM_UTF8 = lib.CHD_K_ATOM_UTF8
_K_BINARY = lib.CHD_K_BINARY
_K_TUPLE = lib.CHD_K_TUPLE
_K_LIST = lib.CHD_K_LIST
_K_STRING = lib.CHD_K_STRING
_K_FLOAT_TEXT = lib.CHD_K_FLOAT_TEXT
_K_SMALL_ATOM_UTF8 = lib.CHD_K_SMALL_ATOM_UTF8
_MAX_MAG = 2**64 - 1
_MAX_TERMS = 1 << 20  # nodes of one generically decoded message; bounds the allocation


# The flat form chd_encode reads: one (kind, neg, n, off, mag, f) per node, in pre-order.
FlatNodes = List[Tuple[int, int, int, int, int, float]]


def flatten(term: Term, nodes: FlatNodes, pool: bytearray) -> None:
    """Pre-order nodes (kind, neg, n, off, mag, f) for chd_encode; bytes go to pool."""
    stack = [term]
    while stack:
        t = stack.pop()
        if t is True or t is False:
            t = Atom("true" if t else "false")
        if isinstance(t, int):
            mag = -t if t < 0 else t
            if mag > _MAX_MAG:
                raise ValueError("integer %d does not fit in 64 bits" % t)
            nodes.append((_K_INT, t < 0, 0, 0, mag, 0.0))
        elif isinstance(t, SmallAtom):
            data = t.encode("utf-8")
            nodes.append((_K_SMALL_ATOM_UTF8, 0, len(data), len(pool), 0, 0.0))
            pool += data
        elif isinstance(t, Atom):
            try:
                data, kind = t.encode("latin-1"), _K_ATOM
            except UnicodeEncodeError:
                data, kind = t.encode("utf-8"), _K_ATOM_UTF8
            nodes.append((kind, 0, len(data), len(pool), 0, 0.0))
            pool += data
        elif isinstance(t, (bytes, bytearray, memoryview)):
            data = bytes(t)
            nodes.append((_K_BINARY, 0, len(data), len(pool), 0, 0.0))
            pool += data
        elif isinstance(t, tuple):
            nodes.append((_K_TUPLE, 0, len(t), 0, 0, 0.0))
            stack.extend(reversed(t))
        elif isinstance(t, list):
            nodes.append((_K_LIST, 0, len(t), 0, 0, 0.0))
            stack.extend(reversed(t))
        elif isinstance(t, float):
            nodes.append((_K_FLOAT, 0, 0, 0, 0, t))
        else:
            raise TypeError("cannot encode %s as an Erlang term" % type(t).__name__)


def _flat(term: Term) -> Tuple[Any, int, bytes]:
    nodes: FlatNodes = []
    pool = bytearray()
    flatten(term, nodes, pool)
    return ffi.new("chd_term[]", nodes), len(nodes), bytes(pool)


def _encode(term: Term, framed: int) -> bytes:
    terms, n, pool = _flat(term)
    cap = 64 + 16 * n + len(pool)
    out = ffi.new("unsigned char[]", cap)
    outlen = ffi.new("size_t *")
    error.check(lib.chd_encode(terms, n, pool, len(pool), framed, out, cap, outlen), "encode")
    return ffi.buffer(out, outlen[0])[:]


def encode(term: Term) -> bytes:
    """The canonical ETF payload of ``term`` (version byte included, no frame header)."""
    return _encode(term, 0)


def encode_frame(term: Term) -> bytes:
    """``encode(term)`` preceded by its 4-byte length."""
    return _encode(term, 1)


def _build(terms: Any, i: int, data: bytes) -> Tuple[Term, int]:
    """The Python term for the nodes starting at terms[i]; returns (term, next index)."""
    t = terms[i]
    k = t.kind
    if k == _K_INT:
        return (-t.mag if t.neg else t.mag), i + 1
    if k == _K_BINARY:
        return data[t.off:t.off + t.n], i + 1
    if k == _K_ATOM:
        return Atom(data[t.off:t.off + t.n].decode("latin-1")), i + 1
    if k == _K_TUPLE or k == _K_LIST:
        items: List[Term] = []
        i += 1
        for _ in range(t.n):
            item, i = _build(terms, i, data)
            items.append(item)
        return (tuple(items) if k == _K_TUPLE else items), i
    if k == _K_ATOM_UTF8:
        return Atom(data[t.off:t.off + t.n].decode("utf-8")), i + 1
    if k == _K_STRING:
        return list(data[t.off:t.off + t.n]), i + 1
    if k == _K_FLOAT:
        return t.f, i + 1
    # _K_FLOAT_TEXT: the old float format, "%.20e" text padded with NULs.
    # The C core has checked the text's syntax; only the range is left to check.
    value = float(data[t.off:t.off + t.n].rstrip(b"\x00").decode("ascii"))
    if value in (math.inf, -math.inf):
        error.raise_error(error.ERR_PROTOUSAGE, "bad value in message: old-style float overflows")
    return value, i + 1


def decode(payload: bytes) -> Term:
    """The term of a whole ETF payload; malformed input → ``Error(ERR_PROTOUSAGE)``."""
    payload = bytes(payload)
    count = ffi.new("size_t *")
    # Validate and count first, so the node array is exactly as large as the term needs.
    error.check(lib.chd_decode(payload, len(payload), ffi.NULL, 0, count), "decode")
    if count[0] > _MAX_TERMS:
        error.check(lib.CHD_E_TOOBIG, "decode")
    terms = ffi.new("chd_term[]", count[0])
    error.check(lib.chd_decode(payload, len(payload), terms, count[0], count), "decode")
    term, _ = _build(terms, 0, payload)
    return term


DECODE_OK = lib.CHD_OK                 # verdicts of validate() the emulator's server side
DECODE_EXTRA = lib.CHD_E_EXTRA         # uses to find a term followed by extra bytes
DECODE_TRUNCATED = lib.CHD_E_TRUNCATED


def validate(payload: bytes) -> int:
    """The C core's verdict on a payload (CHD_OK or a negative status), without building it."""
    payload = bytes(payload)
    count = ffi.new("size_t *")
    return int(lib.chd_decode(payload, len(payload), ffi.NULL, 0, count))
