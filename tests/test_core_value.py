"""``confd_ha.Value``: every C_* type's constructor, term form (wire-protocol.md §7.3 / W-26),
the wire bytes of that term through the C encoder, and the way back (``Value.from_term``).

Expected terms are written out from the spec's table, and their bytes are checked against the
reference codec; the Erlang golden bytes for the same node ids are covered in
test_core_golden.py.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import refcodec
from refcodec import Atom, same_term

import confd_ha
from confd_ha import Value, _codec, _protocol as P
from confd_ha import error
from confd_ha.error import Error

# §7.3: the C_* numbers.
SPEC_NUMBERS = {
    "C_NOEXISTS": 1, "C_XMLTAG": 2, "C_SYMBOL": 3, "C_STR": 4, "C_BUF": 5, "C_INT8": 6,
    "C_INT16": 7, "C_INT32": 8, "C_INT64": 9, "C_UINT8": 10, "C_UINT16": 11, "C_UINT32": 12,
    "C_UINT64": 13, "C_DOUBLE": 14, "C_IPV4": 15, "C_IPV6": 16, "C_BOOL": 17, "C_QNAME": 18,
    "C_DATETIME": 19, "C_DATE": 20, "C_TIME": 23, "C_DURATION": 27, "C_ENUM_VALUE": 28,
    "C_BIT32": 29, "C_BIT64": 30, "C_LIST": 31, "C_XMLBEGIN": 32, "C_XMLEND": 33,
    "C_OBJECTREF": 34, "C_UNION": 35, "C_PTR": 36, "C_CDBBEGIN": 37, "C_OID": 38,
    "C_BINARY": 39, "C_IPV4PREFIX": 40, "C_IPV6PREFIX": 41, "C_DEFAULT": 42, "C_DECIMAL64": 43,
    "C_IDENTITYREF": 44, "C_XMLBEGINDEL": 45, "C_DQUAD": 46, "C_HEXSTR": 47,
    "C_IPV4_AND_PLEN": 48, "C_IPV6_AND_PLEN": 49, "C_BITBIG": 50, "C_XMLMOVEFIRST": 51,
    "C_XMLMOVEAFTER": 52, "C_EMPTY": 53,
}


@pytest.mark.parametrize("name", sorted(SPEC_NUMBERS))
def test_type_numbers(name):
    assert getattr(confd_ha, name) == SPEC_NUMBERS[name]


IP6 = (0x2001, 0xDB8, 0, 0, 0, 0, 0, 1)

# (type, init, expected term) for every type with a term form (W-26).
CASES = [
    (1, None, Atom("not_found")),
    (4, "s", b"s"),
    (5, "node-1", b"node-1"),
    (5, b"\x00\xff", b"\x00\xff"),
    (6, -128, (6, -128)),
    (7, 32767, (7, 32767)),
    (8, -(2**31), -(2**31)),
    (9, 2**63 - 1, (9, 2**63 - 1)),
    (10, 0, (10, 0)),
    (11, 65535, (11, 65535)),
    (12, 2**32 - 1, (12, 2**32 - 1)),
    (13, 2**64 - 1, (13, 2**64 - 1)),
    (14, 2.5, 2.5),
    (14, -0.0, -0.0),
    (15, "192.168.0.1", (192, 168, 0, 1)),
    (16, "2001:db8::1", IP6),
    (17, True, Atom("true")),
    (17, False, Atom("false")),
    (18, ("pfx", "name"), (b"pfx", b"name")),
    (19, (2024, 1, 2, 3, 4, 5, 6, 1, 30), (19, (2024, 1, 2, 3, 4, 5, 6, 1, 30))),
    (19, (2024, 1, 2, 3, 4, 5, 6, [], 0), (19, (2024, 1, 2, 3, 4, 5, 6, [], 0))),
    (20, (2024, 12, 31, -5, 30), (20, (2024, 12, 31, -5, 30))),
    (23, (3, 4, 5, 6, [], 0), (23, (3, 4, 5, 6, [], 0))),
    (27, (1, 2, 3, 4, 5, 6, 7), (27, (1, 2, 3, 4, 5, 6, 7))),
    (28, -3, (28, -3)),
    (29, 2**32 - 1, (29, 2**32 - 1)),
    (30, 2**64 - 1, (30, 2**64 - 1)),
    (31, ["a", 5, True], [b"a", 5, Atom("true")]),
    (31, [], []),
    (34, [b"servers", b"server"], (34, [b"servers", b"server"])),
    (38, bytes([0, 0, 0, 1]), (38, bytes([0, 0, 0, 1]))),
    (39, b"\x00\x01", (39, b"\x00\x01")),
    (40, "10.0.0.0/8", (40, ((10, 0, 0, 0), 8))),
    (40, ("10.0.0.0", 8), (40, ((10, 0, 0, 0), 8))),
    (41, "2001:db8::/64", (41, ((0x2001, 0xDB8, 0, 0, 0, 0, 0, 0), 64))),
    (42, None, Atom("default")),
    (43, (12345, 2), (43, (12345, 2))),
    (44, (1, 2), (44, (1, 2))),
    (46, bytes([1, 2, 3, 4]), (46, bytes([1, 2, 3, 4]))),
    (47, b"\xde\xad", (47, b"\xde\xad")),
    (48, "192.168.1.1/24", (48, ((192, 168, 1, 1), 24))),
    (49, "2001:db8::1/64", (49, (IP6, 64))),
    (50, bytes([1, 0, 128]), (50, bytes([1, 0, 128]))),
]
CASE_IDS = ["%d-%r" % (t, i) for t, i, _ in CASES]


def test_cases_cover_every_supported_type():
    supported = {1, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 23, 27, 28,
                 29, 30, 31, 34, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50}
    assert {t for t, _, _ in CASES} == supported


@pytest.mark.parametrize("t, init, term", CASES, ids=CASE_IDS)
def test_to_term(t, init, term):
    v = Value(init, t)
    assert v.confd_type() == t
    assert same_term(v.to_term(), term)
    # The C encoder writes it canonically, as the reference does.
    assert _codec.encode(v.to_term()) == refcodec.encode(term)
    assert P.encode_order(P.BEPRIMARY, v.to_term())[4:] == refcodec.encode((1, term))


@pytest.mark.parametrize("t, init, term", CASES, ids=CASE_IDS)
def test_from_term_round_trip(t, init, term):
    v = Value(init, t)
    back = Value.from_term(_codec.decode(_codec.encode(v.to_term())))
    if t == confd_ha.C_STR:  # W-26: a bare binary decodes as C_BUF
        assert back.confd_type() == confd_ha.C_BUF and back.as_bytes() == v.as_bytes()
        return
    assert back.confd_type() == t
    assert back == v
    assert same_term(back.to_term(), term)


@pytest.mark.parametrize("init, t", [
    ("x", 5), (b"x", 5), (bytearray(b"x"), 5), (True, 17), (False, 17), (0, 8), (2**31 - 1, 8),
    (-(2**31), 8), (2**31, 9), (-(2**31) - 1, 9), (2**63 - 1, 9), (1.0, 14), ([1], 31), ([], 31),
])
def test_guessed_type(init, t):
    assert Value(init).confd_type() == t


@pytest.mark.parametrize("init", [None, object(), (1, 2), {1: 2}, 1j])
def test_unguessable_type(init):
    with pytest.raises(TypeError):
        Value(init)


def test_type_must_be_int():
    with pytest.raises(TypeError):
        Value(5, "C_INT32")


def test_str_value_keeps_text_and_bytes():
    v = Value("caf\u00e9")
    assert v.as_bytes() == "caf\u00e9".encode()
    assert v.as_pyval() == "caf\u00e9" and str(v) == "caf\u00e9"
    assert v.to_term() == "caf\u00e9".encode()


def test_copy_constructor():
    v = Value(7, confd_ha.C_UINT8)
    assert Value(v) == v and Value(v).confd_type() == confd_ha.C_UINT8


# ------------------------------------------------------------------ integer ranges

INT_RANGES = {
    6: (-(2**7), 2**7 - 1), 7: (-(2**15), 2**15 - 1), 8: (-(2**31), 2**31 - 1),
    9: (-(2**63), 2**63 - 1), 10: (0, 2**8 - 1), 11: (0, 2**16 - 1), 12: (0, 2**32 - 1),
    13: (0, 2**64 - 1), 28: (-(2**31), 2**31 - 1), 29: (0, 2**32 - 1), 30: (0, 2**64 - 1),
}


@pytest.mark.parametrize("t", sorted(INT_RANGES))
def test_integer_range_edges(t):
    lo, hi = INT_RANGES[t]
    for ok in (lo, hi):
        v = Value(ok, t)
        assert Value.from_term(_codec.decode(_codec.encode(v.to_term()))) == v
    for bad in (lo - 1, hi + 1):
        with pytest.raises(ValueError):
            Value(bad, t)


@pytest.mark.parametrize("t", sorted(INT_RANGES))
@pytest.mark.parametrize("init", [True, 1.0, None, (1,)])
def test_integer_types_refuse_non_integers(t, init):
    with pytest.raises(ValueError):
        Value(init, t)


@settings(max_examples=200, deadline=None, database=None)
@given(st.sampled_from(sorted(INT_RANGES)).flatmap(
    lambda t: st.tuples(st.just(t), st.integers(*INT_RANGES[t]))))
def test_integer_values_round_trip(case):
    t, value = case
    v = Value(value, t)
    data = _codec.encode(v.to_term())
    assert data == refcodec.encode(v.to_term())
    back = Value.from_term(_codec.decode(data))
    assert back == v and back.as_pyval() == value


# ------------------------------------------------------------------ other value checks


# Only initialisers that are wrong whatever text parsing a type might support: an address of
# the other family or no address at all, wrong arities, wrong Python types for byte/tuple types.
@pytest.mark.parametrize("t, init", [
    (15, "2001:db8::1"), (15, "10.0.0"), (15, "host.example"), (16, "10.0.0.1"), (16, "::g"),
    (39, 5), (47, None), (50, [1]), (18, ("a",)), (18, ("a", "b", "c")),
    (19, (2024, 1, 2)), (20, (2024, 1, 2, 3)), (23, (1, 2, 3)), (27, (1,)),
    (43, (1.5, 2)), (43, (1,)), (44, ("a", "b")), (48, 5), (5, None),
])
def test_bad_initialisers(t, init):
    with pytest.raises(ValueError):
        Value(init, t)


UNSUPPORTED = [2, 3, 32, 33, 35, 36, 37, 45, 51, 52, 53]


@pytest.mark.parametrize("t", UNSUPPORTED)
def test_unsupported_types_fail_with_badtype(t):
    v = Value(b"x", t)
    assert v.confd_type() == t
    with pytest.raises(Error) as info:
        v.to_term()
    assert info.value.confd_errno == error.ERR_BADTYPE
    # ...before anything is built for the wire.
    with pytest.raises(Error) as info:
        confd_ha.node_term(v)
    assert info.value.confd_errno == error.ERR_BADTYPE


@pytest.mark.parametrize("term", [
    Atom("foo"), Atom("ok"), (1, 2, 3), (99, 5), (8, 5), (5, b"x"), (6, b"x"), (38, 5),
    (40, (1, 2)), (19, 5), (), (b"a", 1), (Atom("x"), 1),
])
def test_from_term_unrecognised(term):
    with pytest.raises(Error) as info:
        Value.from_term(term)
    assert info.value.confd_errno == error.ERR_BADTYPE


def test_from_term_bare_forms():
    assert Value.from_term(b"x").confd_type() == confd_ha.C_BUF
    assert Value.from_term(2**31 - 1).confd_type() == confd_ha.C_INT32
    assert Value.from_term(2**31).confd_type() == confd_ha.C_INT64
    assert Value.from_term(-(2**31) - 1).confd_type() == confd_ha.C_INT64
    assert Value.from_term(Atom("true")).as_pyval() is True
    assert Value.from_term(Atom("false")).as_pyval() is False
    assert Value.from_term(1.5).confd_type() == confd_ha.C_DOUBLE
    assert Value.from_term((10, 0, 0, 1)).confd_type() == confd_ha.C_IPV4
    assert str(Value.from_term((10, 0, 0, 1))) == "10.0.0.1"
    assert str(Value.from_term(IP6)) == "2001:db8::1"
    assert Value.from_term([b"a", 1]) == Value([Value(b"a"), Value(1)])


def test_str_of_values():
    # status() shows a non-binary node id as str() of its Value (W-25).
    assert str(Value(5)) == "5"
    assert str(Value(True)) == "true"
    assert str(Value(None, confd_ha.C_DEFAULT)) == "default"
    assert str(Value(b"\xde\xad", confd_ha.C_BINARY)) == "dead"
    assert str(Value("10.0.0.1", confd_ha.C_IPV4)) == "10.0.0.1"


# ------------------------------------------------------------------ reported bugs


@pytest.mark.parametrize("t, init", [
    (40, ("2001:db8::", 64)), (41, ("10.0.0.0", 8)), (48, "2001:db8::1/64"),
    (49, "10.0.0.1/8"), (40, ("10.0.0.0", 33)), (40, ("10.0.0.0", -1)),
    (41, ("2001:db8::", 129)), (48, ("10.0.0.1", 255)),
])
def test_prefix_family_and_length_checked(t, init):
    with pytest.raises(ValueError):
        Value(init, t)


@pytest.mark.parametrize("init", [(2**63, 2), (-(2**63) - 1, 2)])
def test_decimal64_range_checked(init):
    with pytest.raises(ValueError):
        Value(init, confd_ha.C_DECIMAL64)


@pytest.mark.parametrize("term", [(6, 1000), (10, -1), (10, 256), (12, 2**32), (9, 2**63),
                                  (28, 2**31)])
def test_from_term_checks_integer_ranges(term):
    with pytest.raises(Error):
        Value.from_term(term)
