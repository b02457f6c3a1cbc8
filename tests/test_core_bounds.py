"""Bounds and edge cases of the C core (through ``confd_ha._protocol``): nesting depth, huge
announced lengths, big integers, floats, atoms, improper lists, compressed terms, framing, the
hello and the IPC access check.

Each decode case is checked three ways: ``_codec.validate`` (the core's status code),
``_codec.decode`` (the term, or ``Error`` with confd_errno 21) and the reference codec
(``refcodec``), so the core's error classes are pinned to the rules in refcodec's docstring.

Tests marked ``xfail(strict=True)`` document bugs reported to the lead; the reason names the
bug. When a bug is fixed the test XPASSes, which fails the run until the mark is removed.
"""

from __future__ import annotations

import hashlib
import math
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import refcodec
from refcodec import Atom, DecodeError, same_term
from strategies import nested

from confd_ha import _address, _codec, _protocol as P
from confd_ha import error
from confd_ha._core import lib
from confd_ha.error import Error

OK = lib.CHD_OK
TRUNCATED = lib.CHD_E_TRUNCATED
EXTRA = lib.CHD_E_EXTRA
BADTAG = lib.CHD_E_BADTAG
TOODEEP = lib.CHD_E_TOODEEP
BADVALUE = lib.CHD_E_BADVALUE
VERSION = lib.CHD_E_VERSION
KIND = {TRUNCATED: "truncated", EXTRA: "extra", BADTAG: "badtag", VERSION: "badtag",
        TOODEEP: "toodeep", BADVALUE: "badvalue"}


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


def u32(n: int) -> bytes:
    return struct.pack(">I", n)


def rejects(data: bytes, status: int) -> None:
    """The core says ``status``; decode raises Error(21) naming it; the reference agrees."""
    assert _codec.validate(data) == status
    with pytest.raises(Error) as info:
        _codec.decode(data)
    assert type(info.value) is Error
    assert info.value.confd_errno == error.ERR_PROTOUSAGE
    assert info.value.confd_lasterr == "decode: " + error.core_text(status)
    assert info.value.core_status == status      # kept on the instance, not in the text
    with pytest.raises(DecodeError) as ref:
        refcodec.decode(data)
    assert ref.value.kind == KIND[status]


def accepts(data: bytes, term) -> None:
    assert _codec.validate(data) == OK
    assert same_term(_codec.decode(data), term)
    assert same_term(refcodec.decode(data), term)


# ------------------------------------------------------------------ depth

LEAVES = {  # name -> (bytes, depth it adds)
    "tuple": (b"\x68\x00", 1),
    "nil": (b"\x6a", 1),
    "string": (b"\x6b\x00\x01A", 1),
    "scalar": (b"\x61\x07", 0),
}


def tuples(k: int, leaf: bytes) -> bytes:
    return b"\x83" + b"\x68\x01" * k + leaf


def lists(k: int, leaf: bytes) -> bytes:
    return b"\x83" + b"\x6c\x00\x00\x00\x01" * k + leaf + b"\x6a" * k


def mixed(k: int, leaf: bytes) -> bytes:
    opens = b"".join(b"\x68\x01" if i % 2 else b"\x6c\x00\x00\x00\x01" for i in range(k))
    tails = b"".join(b"" if i % 2 else b"\x6a" for i in reversed(range(k)))
    return b"\x83" + opens + leaf + tails


@pytest.mark.parametrize("wrap", [tuples, lists, mixed])
@pytest.mark.parametrize("leaf", sorted(LEAVES))
def test_depth_100_accepted_101_rejected(wrap, leaf):
    leaf_bytes, leaf_depth = LEAVES[leaf]
    k = 100 - leaf_depth
    ok = wrap(k, leaf_bytes)
    assert _codec.validate(ok) == OK
    term = _codec.decode(ok)
    assert refcodec.depth(term) == 100
    assert same_term(term, refcodec.decode(ok))
    rejects(wrap(k + 1, leaf_bytes), TOODEEP)


def test_depth_checked_on_the_tag_before_the_header():
    # The 101st container tag is the last byte: too deep, not truncated.
    rejects(b"\x83" + b"\x68\x01" * 100 + b"\x68", TOODEEP)
    rejects(b"\x83" + b"\x68\x01" * 100 + b"\x6a", TOODEEP)
    # ...while a scalar tag there is merely truncated.
    rejects(b"\x83" + b"\x68\x01" * 100 + b"\x61", TRUNCATED)


def test_list_tail_is_not_a_nesting_level():
    # 100 nested one-element lists: their NIL tails sit at depth 100 without counting.
    data = lists(99, b"\x68\x00")
    assert _codec.validate(data) == OK


@pytest.mark.parametrize("kind", [tuple, list])
@pytest.mark.parametrize("leaf, leaf_depth", [((), 1), ([], 1), (1, 0), (b"x", 0)])
def test_encoder_depth_limit(kind, leaf, leaf_depth):
    ok = nested(leaf, 100 - leaf_depth, kind)
    assert refcodec.depth(ok) == 100
    assert _codec.encode(ok) == refcodec.encode(ok)
    assert same_term(_codec.decode(_codec.encode_frame(ok)[4:]), ok)
    too_deep = nested(leaf, 101 - leaf_depth, kind)
    for encoder in (_codec.encode, _codec.encode_frame):
        with pytest.raises(Error) as info:
            encoder(too_deep)
        assert info.value.confd_errno == error.ERR_PROTOUSAGE
        assert "nested too deep" in info.value.confd_lasterr


def test_order_encoder_counts_the_order_tuple():
    # beprimary {1, NodeId}: the node id may add 99 levels.
    frame = P.encode_order(P.BEPRIMARY, nested(b"x", 99))
    assert frame[4:] == refcodec.encode((1, nested(b"x", 99)))
    with pytest.raises(Error):
        P.encode_order(P.BEPRIMARY, nested(b"x", 100))
    # besecondary {2, Node, {PNode, Addr}, W}: the primary's id sits two levels down.
    ip = _address.parse_ip("10.0.0.1")
    frame = P.encode_order(P.BESECONDARY, nested(b"x", 99), nested(b"y", 98), ip, 1)
    assert frame[4:] == refcodec.encode(
        (2, nested(b"x", 99), (nested(b"y", 98), (10, 0, 0, 1)), 1))
    with pytest.raises(Error):
        P.encode_order(P.BESECONDARY, b"x", nested(b"y", 99), ip, 1)
    with pytest.raises(Error):
        P.encode_order(P.BESECONDARY, nested(b"x", 100), b"y", ip, 1)


# ------------------------------------------------------------------ huge announced lengths

HUGE = [
    ("list", b"\x83\x6c\xff\xff\xff\xff\x61\x01\x6a\x00"),
    ("large_tuple", b"\x83\x69\xff\xff\xff\xff\x61\x01\x61\x01"),
    ("binary_4gib", b"\x83\x6d\xff\xff\xff\xff\x61\x62\x63\x64"),
    ("binary_2gib", b"\x83\x6d\x80\x00\x00\x00\x61\x62\x63\x64"),
    ("large_big", b"\x83\x6f\xff\xff\xff\xff\x00\x01\x02\x03"),
    ("atom", b"\x83\x64\xff\xff\x61\x62\x63\x64\x65\x66"),
    ("atom_utf8", b"\x83\x76\xff\xff\x61\x62\x63\x64\x65\x66"),
    ("small_atom", b"\x83\x73\xff\x61\x62\x63\x64\x65\x66\x67"),
    ("string", b"\x83\x6b\xff\xff\x01\x02\x03\x04\x05\x06"),
    ("small_big", b"\x83\x6e\xff\x00\x01\x02\x03\x04\x05\x06"),
    ("nested_list", b"\x83\x68\x02\x6c\xff\xff\xff\xff\x6a\x6a"),
    ("nested_tuple", b"\x83\x6c\x00\x00\x00\x01\x69\xff\xff\xff\xff\x6a"),
    ("list_exactly_remaining", b"\x83\x6c\x00\x00\x00\x02\x61\x01\x61\x02"),
    ("tuple_one_too_many", b"\x83\x68\x03\x61\x01\x61\x02"),
]


@pytest.mark.parametrize("name, data", HUGE, ids=[n for n, _ in HUGE])
def test_huge_announced_lengths_are_truncated(name, data):
    rejects(data, TRUNCATED)


def test_huge_counts_do_not_allocate_per_element():
    # A decoder that sized anything by the announced 2**32-1 elements would need hundreds of
    # GiB; a thousand rounds of each must simply fail.
    for _ in range(1000):
        for _name, data in HUGE[:3]:
            with pytest.raises(Error):
                _codec.decode(data)


def test_generic_decoder_node_cap():
    # _codec.decode bounds its node array (_MAX_TERMS = 2**20 nodes); a longer message is
    # refused cleanly, not allocated.
    n = (1 << 20) + 5
    data = b"\x83\x6c" + u32(n) + b"\x61\x01" * n + b"\x6a"
    assert _codec.validate(data) == OK
    with pytest.raises(Error) as info:
        _codec.decode(data)
    assert info.value.confd_errno == error.ERR_PROTOUSAGE
    assert info.value.confd_lasterr == "decode: " + error.core_text(lib.CHD_E_TOOBIG)


# ------------------------------------------------------------------ integers


@pytest.mark.parametrize("data, value", [
    (h("83 6e 08 00 ffffffffffffffff"), 2**64 - 1),
    (h("83 6e 08 01 ffffffffffffffff"), -(2**64 - 1)),
    (h("83 6e 08 00 0000000000000080"), 2**63),
    (h("83 6e 08 01 0000000000000080"), -(2**63)),
    (h("83 6e 09 00 ffffffffffffffff00"), 2**64 - 1),        # high zero byte
    (h("83 6e 0c 00 01") + bytes(11), 1),
    (h("83 6e ff 01 05") + bytes(254), -5),
    (h("83 6e 00 00"), 0),
    (h("83 6e 00 01"), 0),                                   # negative zero
    (h("83 6e 01 01 00"), 0),
    (h("83 6e 01 00 05"), 5),                                # non-canonical small value
    (h("83 6f 00000008 00 ffffffffffffffff"), 2**64 - 1),
    (h("83 6f 00000100 00 07") + bytes(255), 7),
    (h("83 62 ffffffff"), -1),
    (h("83 62 00000005"), 5),                                # non-canonical INTEGER
    (h("83 61 ff"), 255),
])
def test_integer_encodings_accepted(data, value):
    accepts(data, value)


@pytest.mark.parametrize("data", [
    h("83 6e 09 00 000000000000000001"),                     # 2**64
    h("83 6e 09 01 000000000000000001"),                     # -(2**64)
    h("83 6e 0a 00 ffffffffffffffffff00"),
    h("83 6f 00000009 00 000000000000000001"),
    h("83 6e ff 00") + bytes(254) + b"\x01",
])
def test_integers_of_2_64_and_above_rejected(data):
    rejects(data, BADVALUE)


@pytest.mark.parametrize("data", [
    h("83 6e 01 02 05"), h("83 6e 01 ff 05"), h("83 6e 00 02"), h("83 6f 00000001 02 05"),
])
def test_big_sign_byte_above_1_rejected(data):
    rejects(data, BADVALUE)


def test_big_length_checked_before_sign():
    rejects(h("83 6e 05 02 01"), TRUNCATED)


@pytest.mark.parametrize("value", [2**64, -(2**64), 2**100])
def test_encoder_refuses_integers_beyond_64_bits(value):
    with pytest.raises((ValueError, Error)):
        _codec.encode(value)


# ------------------------------------------------------------------ floats


@pytest.mark.parametrize("bits", ["7ff0000000000000", "fff0000000000000", "7ff8000000000000",
                                  "7ff0000000000001", "fff8000000000000", "7fffffffffffffff"])
def test_new_float_nan_and_inf_rejected(bits):
    rejects(b"\x83\x46" + h(bits), BADVALUE)


@pytest.mark.parametrize("bits, value", [
    ("7fefffffffffffff", 1.7976931348623157e308),
    ("0000000000000001", 5e-324),
    ("8000000000000000", -0.0),
    ("3ff8000000000000", 1.5),
])
def test_new_float_finite_accepted(bits, value):
    accepts(b"\x83\x46" + h(bits), value)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_encoder_refuses_nan_and_inf(value):
    with pytest.raises((ValueError, Error)):
        _codec.encode(value)


def old_float(text: bytes, pad: bytes = b"\x00") -> bytes:
    return b"\x83\x63" + (text + pad * 31)[:31]


@pytest.mark.parametrize("text, value", [
    (b"1.50000000000000000000e+00", 1.5),
    (b"-2.50000000000000000000e-03", -0.0025),
    (b"+1", 1.0),
    (b"1.", 1.0),
    (b".5", 0.5),
    (b"1E5", 1e5),
    (b"0", 0.0),
    (b"-0.0", -0.0),
    (b"1e-999", 0.0),
    (b"1234567890123456789012345678901", 1234567890123456789012345678901.0),  # 31 bytes
])
def test_old_float_text_forms_accepted(text, value):
    accepts(old_float(text), value)


@pytest.mark.parametrize("raw", [
    b"", b".", b"+", b"-", b"e5", b"1e", b"1e+", b"nan", b"inf", b"-inf", b" 1", b"1 ", b"0x10",
    b"1.2.3", b"1,5", b"1e5x", b"++1", b"1e1.5", b"\xd9\xa1",
])
def test_old_float_bad_text_rejected(raw):
    rejects(old_float(raw), BADVALUE)


def test_old_float_bytes_after_padding_rejected():
    rejects(b"\x83\x63" + b"1.5\x00" + b"\x00" * 26 + b"1", BADVALUE)
    rejects(b"\x83\x63" + b"1.5\x00x" + b"\x00" * 26, BADVALUE)


def test_old_float_truncated():
    rejects(b"\x83\x63" + b"1.5" + b"\x00" * 20, TRUNCATED)


@pytest.mark.parametrize("text", [b"1e999", b"-1e999", b"1e400", b"-9" + b"9" * 25 + b"e308"])
def test_old_float_overflow_is_checked_by_decode_not_by_the_core(text):
    # Documented split: the core checks the syntax, _codec.decode the range.
    data = old_float(text)
    assert _codec.validate(data) == OK
    with pytest.raises(Error) as info:
        _codec.decode(data)
    assert info.value.confd_errno == error.ERR_PROTOUSAGE
    assert "float" in info.value.confd_lasterr
    with pytest.raises(DecodeError) as ref:
        refcodec.decode(data)
    assert ref.value.kind == "badvalue"


# ------------------------------------------------------------------ atoms


@pytest.mark.parametrize("data, name", [
    (h("83 64 0002 6f6b"), "ok"),
    (h("83 73 02 6f6b"), "ok"),
    (h("83 76 0002 6f6b"), "ok"),
    (h("83 77 02 6f6b"), "ok"),
    (h("83 64 0004 636166e9"), "caf\u00e9"),                 # Latin-1
    (h("83 73 04 636166e9"), "caf\u00e9"),
    (h("83 76 0005 636166c3a9"), "caf\u00e9"),               # UTF-8
    (h("83 77 03 6ecebb"), "n\u03bb"),
    (h("83 76 0004 f09f9880"), "\U0001f600"),
    (h("83 77 04 f48fbfbf"), "\U0010ffff"),
    (h("83 64 0000"), ""),
    (h("83 77 00"), ""),
    (b"\x83\x73\xff" + b"a" * 255, "a" * 255),
    (b"\x83\x64\x01\x00" + b"b" * 256, "b" * 256),
])
def test_atoms_in_all_four_tags(data, name):
    accepts(data, Atom(name))
    assert type(_codec.decode(data)) is Atom


BAD_UTF8 = ["e9", "c080", "c1bf", "eda080", "edbfbf", "f4908080", "e282", "80", "f888808080",
            "e08080", "f0808080", "ff", "6fe9"]


@pytest.mark.parametrize("raw", BAD_UTF8)
@pytest.mark.parametrize("tag", ["76", "77"])
def test_invalid_utf8_atoms_rejected(tag, raw):
    body = h(raw)
    length = struct.pack(">H", len(body)) if tag == "76" else bytes([len(body)])
    rejects(h("83" + tag) + length + body, BADVALUE)
    # The same bytes are fine as Latin-1 atoms.
    latin = h("83 64") + struct.pack(">H", len(body)) + body
    accepts(latin, Atom(body.decode("latin-1")))


def test_atom_encoder_limits():
    big = Atom("a" * 65535)
    assert _codec.encode(big) == refcodec.encode(big)
    with pytest.raises(Error):
        _codec.encode(Atom("a" * 65536))
    assert _codec.encode(Atom("\u03bb" * 10))[1] == 0x76           # beyond Latin-1 -> ATOM_UTF8
    assert _codec.encode(Atom("\u00e9"))[1] == 0x64                # Latin-1 -> ATOM


def test_plain_str_and_unknown_types_refused():
    for bad in ("text", object(), {1: 2}, {1}, None):
        with pytest.raises(TypeError):
            _codec.encode(bad)


# ------------------------------------------------------------------ lists, compressed, tags


@pytest.mark.parametrize("data", [
    h("83 6c 00000001 6101 6102"),                           # [1 | 2]
    h("83 6c 00000001 6101 6800"),                           # [1 | {}]
    h("83 6c 00000001 6101 6b000141"),                       # [1 | "A"]
    h("83 6c 00000001 6101 6c00000001 6101 6a"),             # [1 | [1]]
    h("83 68 02 6c 00000001 6101 6102 6a"),                  # {[1 | 2], []}
])
def test_improper_lists_rejected(data):
    rejects(data, BADVALUE)


def test_list_missing_tail_truncated():
    rejects(h("83 6c 00000001 6101"), TRUNCATED)
    rejects(h("83 6c 00000001 6c 00000001 6101 6a"), TRUNCATED)
    rejects(h("83 6c 00000002 6101 6102"), TRUNCATED)


COMPRESSED = h("50 00000003 789c cb cc 04 00 01 ce 00 d7")


@pytest.mark.parametrize("data", [
    b"\x83" + COMPRESSED,
    b"\x83\x68\x01" + COMPRESSED,
    b"\x83\x68\x02\x61\x01" + COMPRESSED,
    b"\x83\x6c\x00\x00\x00\x01" + COMPRESSED + b"\x6a",
])
def test_compressed_term_rejected(data):
    rejects(data, BADTAG)


def test_compressed_term_as_list_tail_rejected():
    data = h("83 6c 00000001 6101") + COMPRESSED
    assert _codec.validate(data) != OK
    with pytest.raises(Error):
        _codec.decode(data)


def test_compressed_tail_error_class_matches_reference():
    rejects(h("83 6c 00000001 6101 50"), BADVALUE)


@pytest.mark.parametrize("tag", [0x74, 0x4D, 0x58, 0x5A, 0x70, 0x71, 0x65, 0x66, 0x67, 0x75,
                                 0x5B, 0x59, 0x72, 0x52, 0x4E, 0x00, 0xFF, 0x83])
def test_unsupported_tags_rejected(tag):
    rejects(bytes([0x83, tag, 0, 0, 0, 0]), BADTAG)
    rejects(bytes([0x83, 0x68, 0x01, tag, 0, 0, 0, 0]), BADTAG)


def test_version_byte_and_empty_input():
    rejects(b"", TRUNCATED)
    rejects(b"\x83", TRUNCATED)
    rejects(b"\x82\x61\x01", VERSION)
    rejects(b"\x61\x01", VERSION)
    rejects(b"\x83\x61\x01\x00", EXTRA)


@pytest.mark.parametrize("data, term", [
    (h("83 6c 00000000 6a"), []),
    (h("83 68 01 6c 00000000 6a"), ([],)),
    (h("83 68 02 6c 00000000 6a 6101"), ([], 1)),
    (h("83 6c 00000001 6c 00000000 6a 6a"), [[]]),
])
def test_empty_list_ext_decodes_as_nil(data, term):
    accepts(data, term)


def test_empty_list_ext_tail_is_not_an_element():
    rejects(h("83 68 02 6c 00000000 6a"), TRUNCATED)


def test_string_ext_decodes_to_list_of_ints():
    accepts(h("83 6b 0000"), [])
    accepts(h("83 6b 0003 00 7f ff"), [0, 127, 255])


# ------------------------------------------------------------------ framing


def test_frame_size():
    assert P.frame_size(u32(0)) == 0
    assert P.frame_size(u32(5)) == 5
    assert P.frame_size(u32(P.MAX_FRAME)) == P.MAX_FRAME
    assert P.frame_size(u32(100), limit=100) == 100
    assert P.frame_size(u32(0xFFFFFFFF), limit=0xFFFFFFFF) == 0xFFFFFFFF
    assert P.frame_size(u32(0xFFFFFFFF), limit=1 << 40) == 0xFFFFFFFF


@pytest.mark.parametrize("size, limit", [(P.MAX_FRAME + 1, P.MAX_FRAME), (0xFFFFFFFF, P.MAX_FRAME),
                                         (101, 100), (1, 0)])
def test_frame_size_above_limit(size, limit):
    with pytest.raises(Error) as info:
        P.frame_size(u32(size), limit)
    assert info.value.confd_errno == error.ERR_PROTOUSAGE
    assert str(size) in info.value.confd_lasterr and str(limit) in info.value.confd_lasterr


@pytest.mark.parametrize("header", [b"", b"\x00", b"\x00\x00\x00", b"\x00\x00\x00\x00\x00"])
def test_frame_size_header_length(header):
    with pytest.raises(Error) as info:
        P.frame_size(header)
    assert info.value.confd_errno == error.ERR_PROTOUSAGE


def test_frame_helpers():
    assert P.frame(b"") == b"\x00\x00\x00\x00"
    assert P.frame(b"abc") == b"\x00\x00\x00\x03abc"
    payload = _codec.encode((1, b"x"))
    assert _codec.encode_frame((1, b"x")) == P.frame(payload)


# ------------------------------------------------------------------ hello


@settings(max_examples=200, deadline=None, database=None)
@given(st.integers(0, 255), st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF),
       st.integers(0, 255), st.integers(0, 255))
def test_hello_round_trip(byte0, proto, vsn, maxdepth, maxkeylen):
    hello = P.Hello(byte0, proto, vsn, maxdepth, maxkeylen)
    data = P.build_hello(hello)
    assert data == struct.pack(">BHIBB", byte0, proto, vsn, maxdepth, maxkeylen)
    assert P.parse_hello(data) == hello


@pytest.mark.parametrize("n", [0, 1, 8, 10, 33])
def test_parse_hello_wrong_length(n):
    with pytest.raises(Error) as info:
        P.parse_hello(bytes(n))
    assert info.value.confd_errno == error.ERR_PROTOUSAGE
    assert info.value.confd_lasterr.startswith("hello: ")


@pytest.mark.parametrize("hello", [
    P.Hello(256, 82, 0), P.Hello(17, 0x10000, 0), P.Hello(17, 82, 0, 256, 0),
    P.Hello(17, 82, 0, 0, 256),
])
def test_build_hello_out_of_range(hello):
    with pytest.raises(Error) as info:
        P.build_hello(hello)
    assert info.value.confd_errno == error.ERR_PROTOUSAGE


# ------------------------------------------------------------------ access check


@pytest.mark.parametrize("variant, n", [(P.ACCESS_V2, 32), (P.ACCESS_V1, 16)])
def test_challenge_nonce(variant, n):
    nonce = bytes(range(100, 100 + n))
    assert P.challenge_nonce(variant, b"\x0b" + nonce) == nonce
    assert P.challenge_nonce(variant, b"\x0c" + nonce) is None          # wrong lead byte
    assert P.challenge_nonce(variant, b"\x00" + nonce) is None
    assert P.challenge_nonce(variant, b"\x0b" + nonce[:-1]) is None     # short
    assert P.challenge_nonce(variant, b"\x0b" + nonce + b"\x00") is None  # long
    assert P.challenge_nonce(variant, b"") is None
    other = P.ACCESS_V1 if variant == P.ACCESS_V2 else P.ACCESS_V2
    assert P.challenge_nonce(other, b"\x0b" + nonce) is None


@pytest.mark.parametrize("variant, algo, n", [(P.ACCESS_V2, hashlib.sha256, 32),
                                              (P.ACCESS_V1, hashlib.md5, 16)])
def test_verify_response(variant, algo, n):
    secret, nonce = b"s3cret\n", bytes(range(n))
    digest = algo(secret + nonce).digest()
    good = b"\x0c" + digest
    assert P.build_response(variant, secret, b"\x0b" + nonce) == good
    assert P.verify_response(variant, secret, nonce, good) is True
    assert P.verify_response(variant, secret, nonce, b"\x0b" + digest) is False    # lead byte
    assert P.verify_response(variant, secret, nonce, good[:-1]) is False           # length
    assert P.verify_response(variant, secret, nonce, good + b"\x00") is False
    assert P.verify_response(variant, secret, nonce, b"") is False
    for i in (1, n // 2, n):
        bad = bytearray(good)
        bad[i] ^= 0x01
        assert P.verify_response(variant, secret, nonce, bytes(bad)) is False      # digest
    assert P.verify_response(variant, b"s3cret", nonce, good) is False             # secret
    assert P.verify_response(variant, secret, bytes(n), good) is False             # nonce


def test_v1_response_is_not_a_v2_response():
    nonce = bytes(range(16))
    v1 = P.build_response(P.ACCESS_V1, b"k", b"\x0b" + nonce)
    assert P.verify_response(P.ACCESS_V2, b"k", nonce + bytes(16), v1) is False


@pytest.mark.parametrize("challenge", [b"", b"\x00" + bytes(32), b"\x0b" + bytes(31),
                                       b"\x0b" + bytes(33)])
def test_build_response_to_a_bad_challenge(challenge):
    with pytest.raises(Error) as info:
        P.build_response(P.ACCESS_V2, b"s3cret", challenge)
    assert info.value.confd_errno == error.ERR_ACCESS_DENIED


def test_secret_is_hashed_raw():
    # W-14: whole file, trailing newline included.
    nonce = bytes(32)
    a = P.build_response(P.ACCESS_V2, b"s3cret", b"\x0b" + nonce)
    b = P.build_response(P.ACCESS_V2, b"s3cret\n", b"\x0b" + nonce)
    assert a != b and b[1:] == hashlib.sha256(b"s3cret\n" + nonce).digest()


# ------------------------------------------------------------------ protocol-layer bugs


@pytest.mark.parametrize("term", [
    (3, [(5, (10, 0, 0, 1)), 7]),
    (3, [(5, (10, 0, 0, 1)), (b"a", (1, 2, 3, 4), 5)]),
    (3, [(5, (10, 0, 0, 1)), [b"a", (1, 2, 3, 4)]]),
    (3, [(b"n1", [104, 105]), (b"n2", (1, 2, 3, 4), 0)]),
    (3, [(5, (10, 0, 0, 1)), (b"n2", (1, 2, 3))]),
    (3, [(5, (10, 0, 0, 1)), (b"n2", [300])]),
    (Atom("x"), [(5, (10, 0, 0, 1))]),
])
def test_status_generic_path_rejects_bad_entries(term):
    # A non-binary node id (or a list address) hands the reply to the Python path; malformed
    # later entries must still give Error(21), never TypeError/ValueError.
    with pytest.raises(Error) as info:
        P.decode_status(refcodec.encode(term))
    assert info.value.confd_errno == error.ERR_PROTOUSAGE


def test_reply_error_minus_2_is_not_eof():
    with pytest.raises(Error):
        P.decode_reply(refcodec.encode((Atom("error"), -2)))


@pytest.mark.parametrize("state", [2**63, 2**64 - 1, -(2**64 - 1)])
def test_status_state_beyond_int64(state):
    assert P.decode_status(refcodec.encode((state, []))) == (state, [])


def test_chokepoint_keeps_the_core_status():
    # error.check / raise_error keep the core's status on the instance; the text is the same
    # as without it, and a pickled copy keeps it too.
    import pickle

    with pytest.raises(Error) as info:
        error.check(-1, "decode")
    e = info.value
    assert (e.confd_errno, e.core_status) == (error.ERR_PROTOUSAGE, -1)
    assert str(e) == "%s (21): decode: %s" % (error.strerror(21), error.core_text(-1))
    copy = pickle.loads(pickle.dumps(e))
    assert (type(copy), str(copy), copy.core_status) == (Error, str(e), -1)
    with pytest.raises(Error) as info:
        error.raise_error(error.ERR_PROTOUSAGE, "unexpected reply from daemon", core_status=-7)
    assert (str(info.value).endswith(": unexpected reply from daemon"),
            info.value.core_status) == (True, -7)
    with pytest.raises(Error) as info:
        error.raise_error(17, "", daemon=True)
    assert info.value.core_status is None
