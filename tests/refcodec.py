"""Pure-Python reference codec for the ETF subset of wire-protocol.md §8 (tests only).

This module exists for differential testing against the C core: it is written to be obviously
correct, not fast. Nothing outside ``tests/`` may use it (ARCHITECTURE.md, "One protocol layer").

Term representation (``confd_ha/_terms.py``): ``int``, ``float``, :class:`Atom`, ``bytes``,
``tuple``, ``list``.

Encoder (canonical, wire-protocol.md §8)
========================================

* ``bool`` -> atom ``true`` / ``false`` (checked before ``int``, since ``bool`` is an ``int``).
* ``int`` 0..255 -> SMALL_INTEGER (97); other values in -2**31..2**31-1 -> INTEGER (98);
  larger magnitudes -> SMALL_BIG (110) when the magnitude fits in 255 bytes, else LARGE_BIG (111).
  The encoder itself has no 64-bit limit (so tests can build over-long bigs for the decoder).
* ``float`` -> NEW_FLOAT (70); NaN and infinities raise ``ValueError`` (Erlang has no such floats
  and its ``binary_to_term`` rejects them).
* :class:`Atom` -> ATOM (100) with Latin-1 text when every character is Latin-1, otherwise
  ATOM_UTF8 (118) with UTF-8 text; more than 65535 encoded bytes raises ``ValueError``.
* ``tuple`` -> SMALL_TUPLE (104) up to arity 255, LARGE_TUPLE (105) above.
* ``[]`` -> NIL (106); a non-empty ``list`` -> LIST (108) with a NIL tail (never STRING).
* ``bytes`` / ``bytearray`` / ``memoryview`` -> BINARY (109).
* a plain ``str`` (not an :class:`Atom`) and any other type raise ``TypeError``.
* the encoder applies the same depth limit as the decoder (``ValueError``), unless
  ``max_depth=None`` is passed.

Decoder
=======

Input must start with the version byte 131 and must be consumed completely. Accepted tags:
97, 98, 110, 111, 70, 99, 100, 115, 118, 119, 104, 105, 106, 107, 108, 109. Every error raises
:class:`DecodeError` whose ``kind`` is one of:

``"truncated"``
    the input ends before the term does: empty input, a fixed-size field cut short, or a length /
    arity / count that exceeds the bytes remaining (see "length checks" below).
``"extra"``
    a complete term was decoded but bytes follow it.
``"badtag"``
    the version byte is not 131, or a tag byte is not in the accepted set (this includes
    compressed terms, tag 80, and every other standard tag such as pids, maps, bit binaries).
``"toodeep"``
    more than :data:`MAX_DEPTH` nested containers (definition below).
``"badvalue"``
    a well-framed item with an unacceptable value: a big integer with sign byte other than 0/1 or
    with ``|value| >= 2**64``; a non-finite NEW_FLOAT; an old FLOAT (99) whose text is not a
    finite decimal float; invalid UTF-8 in ATOM_UTF8 / SMALL_ATOM_UTF8; a LIST whose tail is not
    NIL (improper list).

Exact rules, so that the C decoder can match them error-kind for error-kind:

Depth
    Containers are tuples and lists: tags 104, 105, 106 (NIL), 107 (STRING) and 108 -- i.e.
    everything that decodes to a ``tuple`` or a ``list``, including the empty ones. A top-level
    scalar is at depth 0. Decoding a container's tag when the current depth is already
    ``MAX_DEPTH`` (100) is an error (``"toodeep"``); otherwise its elements are decoded at
    depth + 1. Hence at most 100 nested containers: ``{}`` has depth 1, ``{{}}`` depth 2, ``{[]}``
    depth 2, ``[1]`` depth 1; 100 nested tuples are accepted, 101 rejected. The NIL tail of a
    LIST is part of that list, not a nested term, and is not depth-checked. The depth check
    happens as soon as the container's tag byte has been read, before its header (so a
    too-deep ``68`` at the very end of the input is ``"toodeep"``, not ``"truncated"``). The
    encoder computes depth the same way on the Python value: scalar 0; tuple/list (empty or
    not) 1 + the maximum depth of its elements.

Length checks (performed as soon as the length field has been read, before anything else)
    Let ``r`` be the number of bytes remaining after the length/arity field.

    * BINARY n, STRING n, ATOM/SMALL_ATOM/ATOM_UTF8/SMALL_ATOM_UTF8 n: ``n <= r``.
    * SMALL_BIG / LARGE_BIG n: ``n + 1 <= r`` (sign byte plus n magnitude bytes).
    * SMALL_TUPLE / LARGE_TUPLE arity n: ``n <= r`` (every element takes at least one byte).
    * LIST n: ``n + 1 <= r`` (n elements of at least one byte, plus the tail).

    Failing any of these is ``"truncated"`` even if later bytes would also be malformed. Fixed-size
    fields (the tag, u8/u16/u32 lengths, INTEGER's 4 bytes, NEW_FLOAT's 8, FLOAT's 31) that are
    cut short are ``"truncated"`` too.

Order of checks
    tag -> (containers: depth) -> length field -> length vs remaining -> content. For bigs: n,
    ``n + 1 <= r``, sign byte in {0, 1}, then magnitude ``< 2**64``. A magnitude with high zero
    bytes is accepted if its value is in range (``n`` may exceed 8; Erlang accepts this too).
    Negative zero (sign 1, magnitude 0) is the integer 0. For LIST: n, ``n + 1 <= r``, the n
    elements, then the tail byte must be 106 (``"badvalue"`` otherwise). Trailing bytes are
    only looked at after the whole term decoded successfully (``"extra"``).

Values
    * Atom text: Latin-1 for 100/115 (every byte valid), strict UTF-8 for 118/119 (Python's
      ``bytes.decode("utf-8")``: overlong forms, surrogates and code points above U+10FFFF are
      invalid). Atoms decode to :class:`Atom`; ``true``/``false`` stay atoms (not ``bool``).
      No limit on the number of characters other than the length field.
    * NEW_FLOAT: NaN/±inf rejected; -0.0 is kept.
    * Old FLOAT (99): 31 bytes; the text is the bytes before the first NUL and every byte after
      that NUL must be NUL too; the text must match
      ``[+-]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)([eE][+-]?[0-9]+)?`` (ASCII only, no spaces) and convert
      to a finite double (e.g. ``1e999`` is rejected). All 31 bytes non-NUL is also accepted
      (text of 31 bytes).
    * STRING (107) decodes to a ``list`` of ``int`` 0..255 (an empty STRING to ``[]``).
    * LIST with length 0 (and NIL tail) decodes to ``[]``.
"""

from __future__ import annotations

import math
import re
import struct
from typing import Any

try:
    from confd_ha._terms import Atom
except Exception:  # pragma: no cover - only while the package __init__ is being rewritten
    import importlib.util
    import os
    import sys

    _path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                         "confd_ha", "_terms.py")
    _spec = importlib.util.spec_from_file_location("confd_ha._terms", _path)
    assert _spec is not None and _spec.loader is not None
    _mod = importlib.util.module_from_spec(_spec)
    sys.modules.setdefault("confd_ha._terms", _mod)
    _spec.loader.exec_module(_mod)
    Atom = _mod.Atom  # type: ignore[misc]

__all__ = ["MAX_DEPTH", "DecodeError", "encode", "decode", "depth", "same_term"]

VERSION = 131
MAX_DEPTH = 100
BIG_LIMIT = 1 << 64  # decoded big integers must have |value| < BIG_LIMIT

SMALL_INTEGER = 97
INTEGER = 98
SMALL_BIG = 110
LARGE_BIG = 111
NEW_FLOAT = 70
FLOAT = 99
ATOM = 100
SMALL_ATOM = 115
ATOM_UTF8 = 118
SMALL_ATOM_UTF8 = 119
SMALL_TUPLE = 104
LARGE_TUPLE = 105
NIL = 106
STRING = 107
LIST = 108
BINARY = 109

KINDS = ("truncated", "extra", "badtag", "toodeep", "badvalue")

_OLD_FLOAT_RE = re.compile(rb"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")


class DecodeError(ValueError):
    """A payload is not one acceptable ETF term. ``kind`` is one of :data:`KINDS`."""

    def __init__(self, kind: str, msg: str) -> None:
        if kind not in KINDS:
            raise AssertionError(f"unknown DecodeError kind {kind!r}")
        super().__init__(f"{kind}: {msg}")
        self.kind = kind
        self.msg = msg


# --------------------------------------------------------------------------- encoder


def depth(term: Any) -> int:
    """Nesting depth as defined in the module docstring (scalar 0, each tuple/list +1)."""
    if isinstance(term, (tuple, list)):
        return 1 + max((depth(x) for x in term), default=0)
    return 0


def encode(term: Any, max_depth: int | None = MAX_DEPTH) -> bytes:
    """Encode ``term`` canonically, with the leading version byte 131."""
    if max_depth is not None and depth(term) > max_depth:
        raise ValueError(f"term nested deeper than {max_depth} containers")
    out = bytearray([VERSION])
    _encode(term, out)
    return bytes(out)


def _encode(term: Any, out: bytearray) -> None:
    if isinstance(term, bool):
        _encode_atom("true" if term else "false", out)
    elif isinstance(term, int):
        _encode_int(int(term), out)
    elif isinstance(term, float):
        if not math.isfinite(term):
            raise ValueError(f"cannot encode non-finite float {term!r}")
        out.append(NEW_FLOAT)
        out += struct.pack(">d", term)
    elif isinstance(term, Atom):
        _encode_atom(str(term), out)
    elif isinstance(term, str):
        raise TypeError("a plain str is ambiguous: use Atom(...) or bytes")
    elif isinstance(term, (bytes, bytearray, memoryview)):
        data = bytes(term)
        if len(data) > 0xFFFFFFFF:
            raise ValueError("binary too long")
        out.append(BINARY)
        out += struct.pack(">I", len(data))
        out += data
    elif isinstance(term, tuple):
        if len(term) <= 255:
            out.append(SMALL_TUPLE)
            out.append(len(term))
        else:
            out.append(LARGE_TUPLE)
            out += struct.pack(">I", len(term))
        for element in term:
            _encode(element, out)
    elif isinstance(term, list):
        if not term:
            out.append(NIL)
            return
        out.append(LIST)
        out += struct.pack(">I", len(term))
        for element in term:
            _encode(element, out)
        out.append(NIL)
    else:
        raise TypeError(f"cannot encode {type(term).__name__} as an Erlang term")


def _encode_int(value: int, out: bytearray) -> None:
    if 0 <= value <= 255:
        out.append(SMALL_INTEGER)
        out.append(value)
    elif -(2**31) <= value <= 2**31 - 1:
        out.append(INTEGER)
        out += struct.pack(">i", value)
    else:
        magnitude = abs(value)
        size = (magnitude.bit_length() + 7) // 8
        digits = magnitude.to_bytes(size, "little")
        if size <= 255:
            out.append(SMALL_BIG)
            out.append(size)
        else:
            out.append(LARGE_BIG)
            out += struct.pack(">I", size)
        out.append(1 if value < 0 else 0)
        out += digits


def _encode_atom(name: str, out: bytearray) -> None:
    try:
        text = name.encode("latin-1")
        tag = ATOM
    except UnicodeEncodeError:
        try:
            text = name.encode("utf-8")
        except UnicodeEncodeError as exc:  # lone surrogates
            raise ValueError(f"atom {name!r} is not encodable as UTF-8") from exc
        tag = ATOM_UTF8
    if len(text) > 0xFFFF:
        raise ValueError("atom text longer than 65535 bytes")
    out.append(tag)
    out += struct.pack(">H", len(text))
    out += text


# --------------------------------------------------------------------------- decoder


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int, what: str) -> bytes:
        if n > self.remaining():
            raise DecodeError("truncated", f"{what}: need {n} bytes, {self.remaining()} left")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def u8(self, what: str) -> int:
        return self.take(1, what)[0]

    def u16(self, what: str) -> int:
        return int(struct.unpack(">H", self.take(2, what))[0])

    def u32(self, what: str) -> int:
        return int(struct.unpack(">I", self.take(4, what))[0])

    def need(self, n: int, what: str) -> None:
        """Check an announced length against the bytes remaining, without consuming."""
        if n > self.remaining():
            raise DecodeError("truncated",
                              f"{what} announces {n} bytes, only {self.remaining()} left")


def decode(data: bytes | bytearray | memoryview) -> Any:
    """Decode one complete term (with version byte) from ``data``."""
    reader = _Reader(bytes(data))
    version = reader.u8("version byte")
    if version != VERSION:
        raise DecodeError("badtag", f"version byte {version}, expected {VERSION}")
    term = _decode(reader, 0)
    if reader.remaining():
        raise DecodeError("extra", f"{reader.remaining()} bytes after the term")
    return term


def _decode(r: _Reader, level: int) -> Any:
    tag = r.u8("tag")
    if tag in (SMALL_TUPLE, LARGE_TUPLE, NIL, STRING, LIST):
        if level >= MAX_DEPTH:
            raise DecodeError("toodeep", f"more than {MAX_DEPTH} nested containers")
        return _decode_container(r, tag, level + 1)
    if tag == SMALL_INTEGER:
        return r.u8("SMALL_INTEGER")
    if tag == INTEGER:
        return int(struct.unpack(">i", r.take(4, "INTEGER"))[0])
    if tag in (SMALL_BIG, LARGE_BIG):
        n = r.u8("SMALL_BIG length") if tag == SMALL_BIG else r.u32("LARGE_BIG length")
        r.need(n + 1, "big integer")
        sign = r.u8("big sign")
        if sign not in (0, 1):
            raise DecodeError("badvalue", f"big integer sign byte {sign}")
        magnitude = int.from_bytes(r.take(n, "big magnitude"), "little")
        if magnitude >= BIG_LIMIT:
            raise DecodeError("badvalue", "big integer magnitude of 2**64 or more")
        return -magnitude if sign else magnitude
    if tag == NEW_FLOAT:
        value = float(struct.unpack(">d", r.take(8, "NEW_FLOAT"))[0])
        if not math.isfinite(value):
            raise DecodeError("badvalue", "non-finite NEW_FLOAT")
        return value
    if tag == FLOAT:
        return _old_float(r.take(31, "FLOAT"))
    if tag in (ATOM, SMALL_ATOM, ATOM_UTF8, SMALL_ATOM_UTF8):
        n = r.u16("atom length") if tag in (ATOM, ATOM_UTF8) else r.u8("atom length")
        r.need(n, "atom")
        text = r.take(n, "atom text")
        if tag in (ATOM, SMALL_ATOM):
            return Atom(text.decode("latin-1"))
        try:
            return Atom(text.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise DecodeError("badvalue", f"atom text is not valid UTF-8: {exc}") from None
    if tag == BINARY:
        n = r.u32("BINARY length")
        r.need(n, "BINARY")
        return r.take(n, "BINARY data")
    raise DecodeError("badtag", f"unsupported tag {tag}")


def _decode_container(r: _Reader, tag: int, level: int) -> Any:
    if tag == NIL:
        return []
    if tag == STRING:
        n = r.u16("STRING length")
        r.need(n, "STRING")
        return list(r.take(n, "STRING data"))
    if tag in (SMALL_TUPLE, LARGE_TUPLE):
        n = r.u8("SMALL_TUPLE arity") if tag == SMALL_TUPLE else r.u32("LARGE_TUPLE arity")
        r.need(n, "tuple arity")
        return tuple(_decode(r, level) for _ in range(n))
    # LIST
    n = r.u32("LIST length")
    r.need(n + 1, "LIST length")
    items = [_decode(r, level) for _ in range(n)]
    tail = r.u8("LIST tail")
    if tail != NIL:
        raise DecodeError("badvalue", f"improper list (tail tag {tail})")
    return items


def _old_float(raw: bytes) -> float:
    text, _, padding = raw.partition(b"\x00")
    if padding.strip(b"\x00"):
        raise DecodeError("badvalue", "old FLOAT has bytes after its NUL padding")
    if not _OLD_FLOAT_RE.fullmatch(text):
        raise DecodeError("badvalue", f"old FLOAT text {text!r} is not a decimal float")
    value = float(text.decode("ascii"))
    if not math.isfinite(value):
        raise DecodeError("badvalue", f"old FLOAT text {text!r} overflows a double")
    return value


# --------------------------------------------------------------------------- comparison


def same_term(a: Any, b: Any) -> bool:
    """Strict structural equality: types must match exactly where the representation cares.

    ``Atom`` vs ``str`` vs ``bytes`` differ; ``bool`` vs ``int`` differ; ``float`` vs ``int``
    differ; floats compare by value except that -0.0 and 0.0 differ (sign bit); ``tuple`` vs
    ``list`` differ. ``bytearray``/``memoryview`` are never equal to ``bytes`` here.
    """
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, Atom) or isinstance(b, Atom):
        return isinstance(a, Atom) and isinstance(b, Atom) and str(a) == str(b)
    if isinstance(a, float) or isinstance(b, float):
        return (type(a) is float and type(b) is float and a == b
                and math.copysign(1.0, a) == math.copysign(1.0, b))
    if isinstance(a, int) or isinstance(b, int):
        return type(a) is int and type(b) is int and a == b
    if isinstance(a, (tuple, list)) or isinstance(b, (tuple, list)):
        return (type(a) is type(b) and len(a) == len(b)
                and all(same_term(x, y) for x, y in zip(a, b)))
    if isinstance(a, bytes) or isinstance(b, bytes):
        return type(a) is bytes and type(b) is bytes and a == b
    return type(a) is type(b) and a == b
