"""The reference codec against golden bytes from Erlang's term_to_binary (tests/golden/).

Also checks the worked frames of wire-protocol.md §12.2 / §12.3 against the Erlang bytes.
"""

from __future__ import annotations

import struct

import pytest

import refcodec
from golden.terms import DECODE_ONLY_PREFIX, VECTORS, load, metadata
from refcodec import decode, encode, same_term

GOLDEN = load()
ENCODABLE = sorted(n for n in VECTORS if not n.startswith(DECODE_ONLY_PREFIX))
DECODE_ONLY = sorted(n for n in VECTORS if n.startswith(DECODE_ONLY_PREFIX))


def test_vector_sets_match():
    assert set(GOLDEN) == set(VECTORS)
    assert DECODE_ONLY, "decode_only_* vectors expected"


def test_metadata():
    meta = metadata()
    assert meta["otp_release"]
    # Our canonical encoder emits ATOM (100); the golden set must have been made that way.
    assert meta["atom_tag"] == 100


@pytest.mark.parametrize("name", ENCODABLE)
def test_encode_matches_erlang(name):
    assert encode(VECTORS[name]).hex() == GOLDEN[name].hex()


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_decode_matches_term(name):
    assert same_term(decode(GOLDEN[name]), VECTORS[name])


@pytest.mark.parametrize("name", DECODE_ONLY)
def test_decode_only_vectors_are_not_canonical(name):
    assert encode(VECTORS[name]) != GOLDEN[name]


def test_string_ext_is_really_present():
    assert GOLDEN["decode_only_string_abc"][1] == refcodec.STRING
    assert GOLDEN["decode_only_atom_utf8_small"][1] == refcodec.SMALL_ATOM_UTF8


def test_golden_terms_respect_depth_limit():
    assert refcodec.depth(VECTORS["tuple_nested_100"]) == refcodec.MAX_DEPTH
    with pytest.raises(refcodec.DecodeError) as info:
        decode(b"\x83\x68\x01" + GOLDEN["tuple_nested_100"][1:])
    assert info.value.kind == "toodeep"


# Frames copied from wire-protocol.md §12.2 / §12.3 (4-byte length + payload), keyed by the
# golden vector holding the same term.
SPEC_FRAMES = {
    "order_beprimary_n1": "00 00 00 0C 83 68 02 61 01 6D 00 00 00 02 6E 31",
    "order_besecondary_ipv4_wait1":
        "00 00 00 21 83 68 04 61 02 6D 00 00 00 02 6E 32 68 02 6D 00 00 00 02 6E 31 68 04 61 0A"
        " 61 00 61 00 61 01 61 01",
    "order_besecondary_ipv4_wait0":
        "00 00 00 21 83 68 04 61 02 6D 00 00 00 02 6E 32 68 02 6D 00 00 00 02 6E 31 68 04 61 0A"
        " 61 00 61 00 61 01 61 00",
    "order_besecondary_ipv6_wait0":
        "00 00 00 29 83 68 04 61 02 6D 00 00 00 02 6E 32 68 02 6D 00 00 00 02 6E 31 68 08 61 00"
        " 61 00 61 00 61 00 61 00 61 00 61 00 61 01 61 00",
    "order_besecondary_straddr_wait1":
        "00 00 00 2B 83 68 04 61 02 6D 00 00 00 02 6E 32 68 02 6D 00 00 00 02 6E 31 6D 00 00 00"
        " 0F 70 72 69 6D 61 72 79 2E 65 78 61 6D 70 6C 65 61 01",
    "order_benone": "00 00 00 05 83 68 01 61 03",
    "order_getstatus": "00 00 00 05 83 68 01 61 04",
    "order_secondary_dead_n2": "00 00 00 0C 83 68 02 61 05 6D 00 00 00 02 6E 32",
    "order_berelay": "00 00 00 05 83 68 01 61 06",
    "reply_ok": "00 00 00 06 83 64 00 02 6F 6B",
    "reply_error_17": "00 00 00 0D 83 68 02 64 00 05 65 72 72 6F 72 61 11",
    "reply_error_26": "00 00 00 0D 83 68 02 64 00 05 65 72 72 6F 72 61 1A",
    "reply_error_21": "00 00 00 0D 83 68 02 64 00 05 65 72 72 6F 72 61 15",
    "reply_error_28_reason":
        "00 00 00 1C 83 68 03 64 00 05 65 72 72 6F 72 61 1C 6D 00 00 00 0A 62 61 64 20 74 6F 6B"
        " 65 6E 00",
    "status_none": "00 00 00 06 83 68 02 61 01 6A",
    "status_secondary":
        "00 00 00 1E 83 68 02 61 02 6C 00 00 00 01 68 02 6D 00 00 00 02 6E 31 68 04 61 0A 61 00"
        " 61 00 61 01 6A",
    "status_primary_ipv4":
        "00 00 00 1E 83 68 02 61 03 6C 00 00 00 01 68 02 6D 00 00 00 02 6E 32 68 04 61 0A 61 00"
        " 61 00 61 02 6A",
    "status_primary_ipv6":
        "00 00 00 2C 83 68 02 61 03 6C 00 00 00 01 68 02 6D 00 00 00 02 6E 32 68 08 62 00 00 20"
        " 01 62 00 00 0D B8 61 00 61 00 61 00 61 00 61 00 61 02 6A",
    "status_relay":
        "00 00 00 31 83 68 02 61 04 6C 00 00 00 02 68 02 6D 00 00 00 02 6E 31 68 04 61 0A 61 00"
        " 61 00 61 01 68 02 6D 00 00 00 02 6E 33 68 04 61 0A 61 00 61 00 61 03 6A",
    "subscribe_ha_info":
        "00 00 00 17 83 68 05 61 40 61 00 61 00 64 00 09 75 6E 64 65 66 69 6E 65 64 61 00",
    "subscribe_ha_info_sync":
        "00 00 00 1A 83 68 05 62 00 10 00 40 61 00 61 00 64 00 09 75 6E 64 65 66 69 6E 65 64 61"
        " 00",
    "event_noprimary_closed": "00 00 00 0B 83 68 02 61 40 68 02 61 01 61 1A",
    "event_secondary_died":
        "00 00 00 1C 83 68 02 61 40 68 02 61 02 68 02 6D 00 00 00 02 6E 32 68 04 61 0A 61 00 61"
        " 00 61 02",
    "event_secondary_arrived":
        "00 00 00 1C 83 68 02 61 40 68 02 61 03 68 02 6D 00 00 00 02 6E 32 68 04 61 0A 61 00 61"
        " 00 61 02",
    "event_secondary_initialized_copy": "00 00 00 0B 83 68 02 61 40 68 02 61 04 61 01",
    "event_is_primary": "00 00 00 0B 83 68 02 61 40 68 02 61 05 61 00",
    "event_is_none": "00 00 00 0B 83 68 02 61 40 68 02 61 06 61 00",
    "event_besecondary_result_ok": "00 00 00 0B 83 68 02 61 40 68 02 61 07 61 00",
    "event_besecondary_result_badtoken": "00 00 00 0B 83 68 02 61 40 68 02 61 07 61 1C",
    "event_ack_ha_synced": "00 00 00 0D 83 64 00 09 68 61 5F 73 79 6E 63 65 64",
}


@pytest.mark.parametrize("name", sorted(SPEC_FRAMES))
def test_spec_worked_frames_match_erlang(name):
    frame = bytes.fromhex(SPEC_FRAMES[name])
    (length,) = struct.unpack(">I", frame[:4])
    payload = frame[4:]
    assert length == len(payload), "spec frame length prefix disagrees with its payload"
    assert payload.hex() == GOLDEN[name].hex()
