"""Sanity tests of the pure-Python reference codec (tests/refcodec.py)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import refcodec
from refcodec import MAX_DEPTH, Atom, DecodeError, decode, encode, same_term
from strategies import INT_EDGES, nested, terms


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def kind_of(data: bytes) -> str:
    with pytest.raises(DecodeError) as info:
        decode(data)
    return info.value.kind


# ----------------------------------------------------------------- canonical encoding


@pytest.mark.parametrize("term, expected", [
    (0, "836100"),
    (255, "8361ff"),
    (256, "836200000100"),
    (-1, "8362ffffffff"),
    (2**31 - 1, "83627fffffff"),
    (-(2**31), "836280000000"),
    (2**31, "836e040000000080"),
    (-(2**31) - 1, "836e040101000080"),
    (2**64 - 1, "836e0800ffffffffffffffff"),
    (-(2**64 - 1), "836e0801ffffffffffffffff"),
    (1.5, "83463ff8000000000000"),
    (Atom("ok"), "836400026f6b"),
    (Atom(""), "83640000"),
    (Atom("caf\u00e9"), "83640004636166e9"),
    (Atom("n\u03bb"), "837600036ecebb"),
    (True, "83640004" + b"true".hex()),
    (False, "83640005" + b"false".hex()),
    (b"", "836d00000000"),
    (bytearray(b"ab"), "836d000000026162"),
    ((), "836800"),
    ([], "836a"),
    ([1, 2], "836c00000002610161026a"),
    ((1, [Atom("a")]), "83680261016c00000001640001616a"),
])
def test_encode_canonical(term, expected):
    assert encode(term).hex() == expected


def test_encode_tuple_and_big_boundaries():
    assert encode(tuple(range(255)))[:3] == h("8368ff")
    assert encode(tuple(range(256)))[:6] == h("836900000100")
    assert encode(2**(8 * 255) - 1)[:3] == h("836eff")
    big = encode(2**(8 * 255))
    assert big[:7] == h("836f0000010000") and len(big) == 7 + 256


@pytest.mark.parametrize("term", ["text", {"a": 1}, None, {1}, object()])
def test_encode_type_errors(term):
    with pytest.raises(TypeError):
        encode(term)


@pytest.mark.parametrize("term", [float("nan"), float("inf"), -float("inf"),
                                  Atom("\ud800"), Atom("x" * 65536)])
def test_encode_value_errors(term):
    with pytest.raises(ValueError):
        encode(term)


def test_encode_depth_limit():
    encode(nested((), MAX_DEPTH - 1))  # 100 containers
    with pytest.raises(ValueError):
        encode(nested((), MAX_DEPTH))  # 101
    with pytest.raises(ValueError):
        encode(nested([], MAX_DEPTH))
    assert len(encode(nested((), MAX_DEPTH), max_depth=None)) == 1 + 2 * 101


# ----------------------------------------------------------------- decoding


@pytest.mark.parametrize("data, term", [
    ("8373026f6b", Atom("ok")),
    ("8373016e", Atom("n")),
    ("83770461c3a962", Atom("a\u00e9b")),
    ("837600036ecebb", Atom("n\u03bb")),
    ("8364000163", Atom("c")),
    ("83640004" + b"true".hex(), Atom("true")),
    ("836b0003010203", [1, 2, 3]),
    ("836b0000", []),
    ("836c000000006a", []),
    ("836e0000", 0),
    ("836e0001", 0),  # sign 1, no magnitude: 0
    ("836e090005" + "00" * 8, 5),  # non-minimal magnitude, value in range
    ("836f000000010007", 7),
    ("836200000005", 5),
    ("83460000000000000000", 0.0),
    ("83468000000000000000", -0.0),
    ("8363" + b"1.50000000000000000000e+00".ljust(31, b"\0").hex(), 1.5),
    ("8363" + b"-2".ljust(31, b"\0").hex(), -2.0),
    ("8363" + b"1".ljust(31, b"1").hex(), float("1" * 31)),
    ("83690000000161ff", (255,)),
])
def test_decode_accepts(data, term):
    assert same_term(decode(h(data)), term)


@pytest.mark.parametrize("data, kind", [
    ("", "truncated"),
    ("83", "truncated"),
    ("8361", "truncated"),
    ("836200", "truncated"),
    ("8346000000", "truncated"),
    ("836d00000003aabb", "truncated"),
    ("836d00", "truncated"),
    ("8364000561", "truncated"),
    ("8368026101", "truncated"),
    ("836805ff", "truncated"),         # arity checked before the bad tag is seen
    ("836c00000002610161", "truncated"),  # room for the elements but not for the tail
    ("836c00000001ff", "truncated"),   # n + 1 bytes needed before the element is read
    ("836e0800ff", "truncated"),
    ("836f00000009", "truncated"),
    ("836b0005aa", "truncated"),
    ("8363312e30", "truncated"),
    ("83610100", "extra"),
    ("836a6a", "extra"),
    ("836400026f6b00", "extra"),
    ("826100", "badtag"),
    ("006100", "badtag"),
    ("8350000000027801", "badtag"),   # compressed
    ("837400000000", "badtag"),         # map
    ("835800", "badtag"),
    ("83ff", "badtag"),
    ("8368026101ff00", "badtag"),
    ("836e0102ff", "badvalue"),       # sign byte 2
    ("836e09000000000000000000" + "01", "badvalue"),  # 2**64
    ("836e09010000000000000000" + "01", "badvalue"),  # -2**64
    ("836f0000010000" + "00" * 255 + "01", "badvalue"),  # 2**2040
    ("83467ff0000000000000", "badvalue"),  # +inf
    ("83467ff8000000000000", "badvalue"),  # NaN
    ("8363" + b"nan".ljust(31, b"\0").hex(), "badvalue"),
    ("8363" + b"inf".ljust(31, b"\0").hex(), "badvalue"),
    ("8363" + b"1e999".ljust(31, b"\0").hex(), "badvalue"),
    ("8363" + b" 1.0".ljust(31, b"\0").hex(), "badvalue"),
    ("8363" + b"1_0".ljust(31, b"\0").hex(), "badvalue"),
    ("8363" + (b"1.0\x00x").ljust(31, b"\0").hex(), "badvalue"),
    ("8363" + b"".ljust(31, b"\0").hex(), "badvalue"),
    ("83760002c328", "badvalue"),      # invalid UTF-8
    ("837702eda080", "badvalue"),      # encoded surrogate
    ("837702c0af", "badvalue"),        # overlong
    ("836c000000016101610a", "badvalue"),  # improper list [1 | 10]
    ("836c0000000161016b0000", "badvalue"),  # tail is an empty STRING, still not NIL
])
def test_decode_error_kinds(data, kind):
    assert kind_of(h(data)) == kind


def test_decode_latin1_atoms_take_any_byte():
    assert same_term(decode(h("83640001ff")), Atom("\u00ff"))
    assert same_term(decode(h("837301e9")), Atom("\u00e9"))


def _deep(n: int, opener: bytes, closer: bytes = b"", inner: bytes = b"\x68\x00") -> bytes:
    return b"\x83" + opener * (n - 1) + inner + closer * (n - 1)


@pytest.mark.parametrize("opener, closer, inner", [
    (b"\x68\x01", b"", b"\x68\x00"),                     # tuples, innermost {}
    (b"\x69\x00\x00\x00\x01", b"", b"\x68\x00"),         # LARGE_TUPLE
    (b"\x6c\x00\x00\x00\x01", b"\x6a", b"\x6a"),         # lists, innermost []
    (b"\x6c\x00\x00\x00\x01", b"\x6a", b"\x6b\x00\x01\x07"),  # innermost STRING
    (b"\x68\x01", b"", b"\x6c\x00\x00\x00\x00\x6a"),     # innermost LIST of length 0
])
def test_depth_limit(opener, closer, inner):
    ok = _deep(MAX_DEPTH, opener, closer, inner)
    decoded = decode(ok)
    assert refcodec.depth(decoded) == MAX_DEPTH
    assert kind_of(_deep(MAX_DEPTH + 1, opener, closer, inner)) == "toodeep"


def test_depth_check_precedes_truncation():
    # 100 tuples open, then a 101st container tag with nothing after it.
    assert kind_of(b"\x83" + b"\x68\x01" * MAX_DEPTH + b"\x68") == "toodeep"
    assert kind_of(b"\x83" + b"\x68\x01" * MAX_DEPTH + b"\x6a") == "toodeep"
    # A scalar at depth 100 is fine.
    assert refcodec.depth(decode(b"\x83" + b"\x68\x01" * MAX_DEPTH + b"\x61\x01")) == MAX_DEPTH


def test_decode_returns_exact_types():
    term = decode(encode((Atom("a"), b"b", 1, 1.0, [2], True)))
    assert type(term) is tuple
    assert [type(x) for x in term] == [Atom, bytes, int, float, list, Atom]
    assert term[5] == "true"


def test_same_term_is_strict():
    assert same_term((Atom("a"), [b"x"]), (Atom("a"), [b"x"]))
    assert not same_term(Atom("a"), "a")
    assert not same_term(Atom("a"), b"a")
    assert not same_term(1, True)
    assert not same_term(1, 1.0)
    assert not same_term(0.0, -0.0)
    assert not same_term((1,), [1])
    assert not same_term([1], [1, 2])


# ----------------------------------------------------------------- properties


@settings(max_examples=300)
@given(terms())
def test_roundtrip(term):
    data = encode(term)
    assert same_term(decode(data), term)


@given(st.sampled_from(INT_EDGES))
def test_int_edges_roundtrip(value):
    assert decode(encode(value)) == value


@given(terms(), st.binary(min_size=1, max_size=4))
def test_trailing_bytes_are_extra(term, tail):
    assert kind_of(encode(term) + tail) == "extra"


@given(terms())
def test_every_proper_prefix_is_truncated(term):
    data = encode(term)
    for cut in range(len(data)):
        assert kind_of(data[:cut]) == "truncated"


@settings(max_examples=300)
@given(st.binary(max_size=64))
def test_random_bytes_decode_or_raise_decode_error(data):
    try:
        term = decode(b"\x83" + data)
    except DecodeError as exc:
        assert exc.kind in refcodec.KINDS
    else:
        # Whatever decodes re-encodes to something that decodes to the same term.
        assert same_term(decode(encode(term)), term)


def test_struct_sanity():
    # NEW_FLOAT is big-endian IEEE-754.
    assert encode(-2.25e100) == b"\x83\x46" + struct.pack(">d", -2.25e100)
