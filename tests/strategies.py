"""Hypothesis strategies for terms in the project's Python representation (``confd_ha._terms``).

``terms()`` generates values that the canonical encoder accepts and that decode back to an
identical value (compare with ``refcodec.same_term``): no ``bool`` (it decodes as an atom), no
``bytearray``, no NaN/infinity, integers within ``|i| < 2**64``, and nesting depth within
``refcodec.MAX_DEPTH``.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from refcodec import MAX_DEPTH, Atom, depth

# Boundaries of every integer encoding (SMALL_INTEGER / INTEGER / SMALL_BIG, 64-bit limit).
INT_EDGES = [
    0, 1, 127, 128, 255, 256, -1, -255, -256,
    2**31 - 1, 2**31, -(2**31), -(2**31) - 1,
    2**32 - 1, 2**32, -(2**32),
    2**63 - 1, 2**63, -(2**63), -(2**63) - 1,
    2**64 - 1, -(2**64 - 1),
]

MAX_BIG = 2**64 - 1


def integers() -> st.SearchStrategy[int]:
    """Integers across all encodings, up to +-(2**64-1)."""
    return st.one_of(
        st.sampled_from(INT_EDGES),
        st.integers(0, 255),
        st.integers(-(2**31), 2**31 - 1),
        st.integers(-MAX_BIG, MAX_BIG),
    )


def floats() -> st.SearchStrategy[float]:
    """Finite doubles (incl. -0.0, subnormals, extremes)."""
    return st.floats(allow_nan=False, allow_infinity=False)


def atoms(max_size: int = 12) -> st.SearchStrategy[Atom]:
    """Atoms: ASCII (most), Latin-1 (ATOM 100) and beyond Latin-1 (ATOM_UTF8 118)."""
    ascii_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=max_size)
    latin1_text = st.text(st.characters(min_codepoint=0, max_codepoint=0xFF), max_size=max_size)
    # Any code point except surrogates (not encodable as UTF-8).
    unicode_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=max_size)
    special = st.sampled_from(["", "ok", "error", "undefined", "true", "false", "not_found",
                               "ha_synced", "caf\u00e9", "n\u03bb", "\U0001f600"])
    return st.one_of(special, ascii_text, latin1_text, unicode_text).map(Atom)


def binaries(max_size: int = 40) -> st.SearchStrategy[bytes]:
    return st.binary(max_size=max_size)


def scalars() -> st.SearchStrategy[Any]:
    return st.one_of(integers(), floats(), atoms(), binaries())


def terms(max_leaves: int = 30, max_width: int = 8) -> st.SearchStrategy[Any]:
    """Nested terms: scalars inside tuples and lists (empty ones included).

    ``max_leaves`` bounds the total size; the depth is bounded by it as well, so it must stay
    well below ``refcodec.MAX_DEPTH``.
    """
    assert max_leaves < 100
    return st.recursive(
        scalars(),
        lambda children: st.one_of(
            st.lists(children, max_size=max_width).map(tuple),
            st.lists(children, max_size=max_width),
        ),
        max_leaves=max_leaves,
    ).filter(lambda t: depth(t) <= MAX_DEPTH)


def nested(term: Any, levels: int, kind: type = tuple) -> Any:
    """Wrap ``term`` in ``levels`` one-element tuples (or lists)."""
    for _ in range(levels):
        term = kind([term])
    return term
