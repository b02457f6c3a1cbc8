"""The worked frames of wire-protocol.md §12 (and the §4.6 access-check vectors), built by the
client's and the emulator's own builders in ``confd_ha._protocol``.

The frames are transcribed below so the tests also run where the spec is not checked out (an
installed package in CI); when the spec file is present next to the repository
(``<repo>/../shared/spec/wire-protocol.md``) the transcription is compared with it, so the two
cannot drift apart.
"""

from __future__ import annotations

import os
import re
import struct

import pytest

import refcodec
from refcodec import Atom, same_term

from confd_ha import _protocol as P
from confd_ha.error import Error

HERE = os.path.dirname(os.path.abspath(__file__))
SPEC_PATH = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "spec", "wire-protocol.md"))


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# ------------------------------------------------------------------ transcription of §12

HANDSHAKE = {  # §12.1 table: message -> 9 bytes (no length prefix)
    "HA hello, 8.2.5 identity, no access check (project default, W-04)":
        "11 00 52 08 02 05 00 00 00",
    "same, access check v2": "D1 00 52 08 02 05 00 00 00",
    "same, access check v1": "91 00 52 08 02 05 00 00 00",
    "event-socket hello, no access check": "0B 00 52 08 02 05 00 00 00",
    "a C client that fills bytes 7–8 with its header values [I]": "11 00 52 08 02 05 00 3C 12",
    "emulator reply, accepted (W-06)": "00 00 52 08 02 05 00 3C 12",
    "emulator reply, version rejected": "01 00 52 08 02 05 00 3C 12",
}

ACCESS_V2 = {  # §12.1 code block, access check v2 with the §4.6 vector
    "challenge": "0B 00 01 02 03 04 05 06 07 08 09 0A 0B 0C 0D 0E 0F"
                 " 10 11 12 13 14 15 16 17 18 19 1A 1B 1C 1D 1E 1F",
    "response": "0C 0D 79 43 02 8D 06 F7 22 E3 22 33 E6 0F 3A F8 08"
                " 20 7D 30 14 BC 42 FA F5 CD 56 11 9F 10 3E 20 1A",
    "ok": "00",
    "reply": "00 00 52 08 02 05 00 3C 12",
}
ACCESS_V1_RESPONSE = "0C C3 B2 64 5F 7D C0 82 E7 DC 50 F8 39 77 19 81 50"
DIGESTS_4_6 = {  # §4.6 table
    "v2": "0d7943028d06f722e32233e60f3af808207d3014bc42faf5cd56119f103e201a",
    "v1": "c3b2645f7dc082e7dc50f83977198150",
}

CONTROL = {  # §12.2 table: message -> frame
    "token `abc` (raw, no reply)": "00 00 00 03 61 62 63",
    "beprimary `<<\"n1\">>`": "00 00 00 0C 83 68 02 61 01 6D 00 00 00 02 6E 31",
    "besecondary n2 → n1 @ 10.0.0.1, wait = 1":
        "00 00 00 21 83 68 04 61 02 6D 00 00 00 02 6E 32 68 02 6D 00 00 00 02 6E 31 68 04 61 0A"
        " 61 00 61 00 61 01 61 01",
    "besecondary n2 → n1 @ 10.0.0.1, wait = 0":
        "00 00 00 21 83 68 04 61 02 6D 00 00 00 02 6E 32 68 02 6D 00 00 00 02 6E 31 68 04 61 0A"
        " 61 00 61 00 61 01 61 00",
    "besecondary n2 → n1 @ ::1, wait = 0":
        "00 00 00 29 83 68 04 61 02 6D 00 00 00 02 6E 32 68 02 6D 00 00 00 02 6E 31 68 08 61 00"
        " 61 00 61 00 61 00 61 00 61 00 61 00 61 01 61 00",
    "besecondary n2 → n1 @ string `primary.example`, wait = 1 (C API only; W-22)":
        "00 00 00 2B 83 68 04 61 02 6D 00 00 00 02 6E 32 68 02 6D 00 00 00 02 6E 31 6D 00 00 00"
        " 0F 70 72 69 6D 61 72 79 2E 65 78 61 6D 70 6C 65 61 01",
    "benone": "00 00 00 05 83 68 01 61 03",
    "getstatus": "00 00 00 05 83 68 01 61 04",
    "secondary_dead `<<\"n2\">>`": "00 00 00 0C 83 68 02 61 05 6D 00 00 00 02 6E 32",
    "berelay": "00 00 00 05 83 68 01 61 06",
    "reply `ok`": "00 00 00 06 83 64 00 02 6F 6B",
    "reply `{error, 17}` (BADSTATE)": "00 00 00 0D 83 68 02 64 00 05 65 72 72 6F 72 61 11",
    "reply `{error, 26}` (HA_CLOSED)": "00 00 00 0D 83 68 02 64 00 05 65 72 72 6F 72 61 1A",
    "reply `{error, 21}` (PROTOUSAGE, W-21)": "00 00 00 0D 83 68 02 64 00 05 65 72 72 6F 72 61 15",
    "reply `{error, 28, <<\"bad token\", 0>>}` — never sent by the emulator; the client must "
    "accept it (W-18)":
        "00 00 00 1C 83 68 03 64 00 05 65 72 72 6F 72 61 1C 6D 00 00 00 0A 62 61 64 20 74 6F 6B"
        " 65 6E 00",
    "status `{1, []}`": "00 00 00 06 83 68 02 61 01 6A",
    "status `{2, [{<<\"n1\">>, {10,0,0,1}}]}`":
        "00 00 00 1E 83 68 02 61 02 6C 00 00 00 01 68 02 6D 00 00 00 02 6E 31 68 04 61 0A 61 00"
        " 61 00 61 01 6A",
    "status `{3, [{<<\"n2\">>, {10,0,0,2}}]}`":
        "00 00 00 1E 83 68 02 61 03 6C 00 00 00 01 68 02 6D 00 00 00 02 6E 32 68 04 61 0A 61 00"
        " 61 00 61 02 6A",
    "status `{3, [{<<\"n2\">>, 2001:db8::2}]}`":
        "00 00 00 2C 83 68 02 61 03 6C 00 00 00 01 68 02 6D 00 00 00 02 6E 32 68 08 62 00 00 20"
        " 01 62 00 00 0D B8 61 00 61 00 61 00 61 00 61 00 61 02 6A",
    "status `{4, [{<<\"n1\">>, {10,0,0,1}}, {<<\"n3\">>, {10,0,0,3}}]}` (relay)":
        "00 00 00 31 83 68 02 61 04 6C 00 00 00 02 68 02 6D 00 00 00 02 6E 31 68 04 61 0A 61 00"
        " 61 00 61 01 68 02 6D 00 00 00 02 6E 33 68 04 61 0A 61 00 61 00 61 03 6A",
}

EVENTS = {  # §12.3 table: message -> frame
    "subscribe `{64, 0, 0, undefined, 0}` (HA_INFO)":
        "00 00 00 17 83 68 05 61 40 61 00 61 00 64 00 09 75 6E 64 65 66 69 6E 65 64 61 00",
    "subscribe `{1048640, 0, 0, undefined, 0}` (HA_INFO \\| HA_INFO_SYNC)":
        "00 00 00 1A 83 68 05 62 00 10 00 40 61 00 61 00 64 00 09 75 6E 64 65 66 69 6E 65 64 61"
        " 00",
    "reply `ok`": "00 00 00 06 83 64 00 02 6F 6B",
    "NOPRIMARY, reason HA_CLOSED": "00 00 00 0B 83 68 02 61 40 68 02 61 01 61 1A",
    "SECONDARY_DIED n2 @ 10.0.0.2":
        "00 00 00 1C 83 68 02 61 40 68 02 61 02 68 02 6D 00 00 00 02 6E 32 68 04 61 0A 61 00 61"
        " 00 61 02",
    "SECONDARY_ARRIVED n2 @ 10.0.0.2":
        "00 00 00 1C 83 68 02 61 40 68 02 61 03 68 02 6D 00 00 00 02 6E 32 68 04 61 0A 61 00 61"
        " 00 61 02",
    "SECONDARY_INITIALIZED, by copy": "00 00 00 0B 83 68 02 61 40 68 02 61 04 61 01",
    "IS_PRIMARY (W-31)": "00 00 00 0B 83 68 02 61 40 68 02 61 05 61 00",
    "IS_NONE (W-31)": "00 00 00 0B 83 68 02 61 40 68 02 61 06 61 00",
    "BESECONDARY_RESULT ok": "00 00 00 0B 83 68 02 61 40 68 02 61 07 61 00",
    "BESECONDARY_RESULT HA_BADTOKEN": "00 00 00 0B 83 68 02 61 40 68 02 61 07 61 1C",
    "acknowledgement `ha_synced`": "00 00 00 0D 83 64 00 09 68 61 5F 73 79 6E 63 65 64",
}


# ------------------------------------------------------------------ the spec file itself

_ROW = re.compile(r"^\| (.*) \| `([0-9A-Fa-f ]+)` \|$")


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    nxt = text.find("\n### ", start + len(heading))
    nxt2 = text.find("\n## ", start + len(heading))
    ends = [e for e in (nxt, nxt2) if e != -1]
    return text[start:min(ends)] if ends else text[start:]


def _rows(section: str) -> dict:
    rows = {}
    for line in section.splitlines():
        m = _ROW.match(line.strip())
        if m:
            rows[m.group(1)] = " ".join(m.group(2).split())
    return rows


def _norm(table: dict) -> dict:
    return {k: " ".join(v.upper().split()) for k, v in table.items()}


@pytest.fixture(scope="module")
def spec_text():
    if not os.path.exists(SPEC_PATH):
        pytest.skip("wire-protocol.md not present at %s" % SPEC_PATH)
    with open(SPEC_PATH, encoding="utf-8") as f:
        return f.read()


def test_transcribed_tables_match_spec(spec_text):
    assert _norm(_rows(_section(spec_text, "### 12.1 Handshake"))) == _norm(HANDSHAKE)
    assert _norm(_rows(_section(spec_text, "### 12.2 HA control socket"))) == _norm(CONTROL)
    assert _norm(_rows(_section(spec_text, "### 12.3 Event socket"))) == _norm(EVENTS)


def test_transcribed_access_check_matches_spec(spec_text):
    sec = _section(spec_text, "### 12.1 Handshake")
    block = sec[sec.index("```") + 3:]
    block = block[:block.index("```")]
    msgs = []
    for line in block.splitlines():
        line = line.split("(")[0]  # drop "(9-byte reply)"
        if "→" in line:
            msgs.append(line.split("→", 1)[1].split())
        elif line.strip():
            msgs[-1].extend(line.split())
    got = [" ".join(m) for m in msgs]
    assert got == [" ".join(ACCESS_V2[k].split()) for k in ("challenge", "response", "ok", "reply")]
    m = re.search(r"client\s+`(0C[0-9A-F ]+)`", sec)
    assert m and " ".join(m.group(1).split()) == ACCESS_V1_RESPONSE
    vec = _section(spec_text, "### 4.6 Test vectors (computed)")
    assert DIGESTS_4_6["v2"] in vec and DIGESTS_4_6["v1"] in vec


# ------------------------------------------------------------------ §12.1 handshake

HELLOS = {
    "HA hello, 8.2.5 identity, no access check (project default, W-04)":
        P.Hello(P.CT_HA, P.DEFAULT_PROTO_VSN, P.DEFAULT_LIB_VSN, 0, 0),
    "same, access check v2":
        P.Hello(P.CT_HA | P.access_flag(P.ACCESS_V2), P.DEFAULT_PROTO_VSN, P.DEFAULT_LIB_VSN),
    "same, access check v1":
        P.Hello(P.CT_HA | P.access_flag(P.ACCESS_V1), P.DEFAULT_PROTO_VSN, P.DEFAULT_LIB_VSN),
    "event-socket hello, no access check":
        P.Hello(P.CT_EVENT, P.DEFAULT_PROTO_VSN, P.DEFAULT_LIB_VSN),
    "a C client that fills bytes 7–8 with its header values [I]":
        P.Hello(P.CT_HA, 82, 0x08020500, 60, 18),
    # The spec's guess of the daemon's MAXDEPTH/MAXKEYLEN (60/18); ConfD 8.2.5 sends 12/4 and
    # so does the emulator now (docs/conformance-ipc.md, test_emulator_ipc.py).
    "emulator reply, accepted (W-06)":
        P.Hello(P.HELLO_ACCEPTED, P.DEFAULT_PROTO_VSN, P.DEFAULT_LIB_VSN, 60, 18),
    "emulator reply, version rejected":
        P.Hello(P.HELLO_BADVSN, P.DEFAULT_PROTO_VSN, P.DEFAULT_LIB_VSN, 60, 18),
}


def test_every_handshake_row_is_built():
    assert set(HELLOS) == set(HANDSHAKE)


@pytest.mark.parametrize("msg", sorted(HANDSHAKE))
def test_build_hello_matches_spec(msg):
    assert P.build_hello(HELLOS[msg]) == h(HANDSHAKE[msg])
    assert P.parse_hello(h(HANDSHAKE[msg])) == HELLOS[msg]


@pytest.mark.parametrize("msg, variant", [
    ("HA hello, 8.2.5 identity, no access check (project default, W-04)", None),
    ("same, access check v2", P.ACCESS_V2),
    ("same, access check v1", P.ACCESS_V1),
    ("event-socket hello, no access check", None),
])
def test_access_variant_of_spec_hellos(msg, variant):
    hello = P.parse_hello(h(HANDSHAKE[msg]))
    assert P.access_variant(hello.byte0) == variant
    assert hello.byte0 & P.CT_MASK in (P.CT_HA, P.CT_EVENT)


def test_access_check_v2_exchange():
    secret, nonce = b"s3cret", bytes(range(32))
    challenge = P.build_challenge(nonce)
    assert challenge == h(ACCESS_V2["challenge"])
    assert P.challenge_size(P.ACCESS_V2) == len(challenge) == 33
    assert P.challenge_nonce(P.ACCESS_V2, challenge) == nonce
    response = P.build_response(P.ACCESS_V2, secret, challenge)
    assert response == h(ACCESS_V2["response"])
    assert response[1:] == h(DIGESTS_4_6["v2"])
    assert P.verify_response(P.ACCESS_V2, secret, nonce, response) is True
    assert P.ACCESS_OK == h(ACCESS_V2["ok"])
    assert P.parse_hello(h(ACCESS_V2["reply"])).byte0 == P.HELLO_ACCEPTED


def test_access_check_v1_exchange():
    secret, nonce = b"s3cret", bytes(range(16))
    challenge = P.build_challenge(nonce)
    assert challenge == b"\x0b" + nonce
    assert P.challenge_size(P.ACCESS_V1) == len(challenge) == 17
    response = P.build_response(P.ACCESS_V1, secret, challenge)
    assert response == h(ACCESS_V1_RESPONSE)
    assert response[1:] == h(DIGESTS_4_6["v1"])
    assert P.verify_response(P.ACCESS_V1, secret, nonce, response) is True


# ------------------------------------------------------------------ §12.2 HA control socket

IP4 = P.parse_ip("10.0.0.1")
CONTROL_BUILDERS = {
    "token `abc` (raw, no reply)": lambda: P.frame(b"abc"),
    "beprimary `<<\"n1\">>`": lambda: P.encode_order(P.BEPRIMARY, b"n1"),
    "besecondary n2 → n1 @ 10.0.0.1, wait = 1":
        lambda: P.encode_order(P.BESECONDARY, b"n2", b"n1", IP4, 1),
    "besecondary n2 → n1 @ 10.0.0.1, wait = 0":
        lambda: P.encode_order(P.BESECONDARY, b"n2", b"n1", IP4, 0),
    "besecondary n2 → n1 @ ::1, wait = 0":
        lambda: P.encode_order(P.BESECONDARY, b"n2", b"n1", P.parse_ip("::1"), 0),
    "besecondary n2 → n1 @ string `primary.example`, wait = 1 (C API only; W-22)":
        lambda: P.encode_order(P.BESECONDARY, b"n2", b"n1", (P.AF_STRING, b"primary.example"), 1),
    "benone": lambda: P.BENONE_FRAME,
    "getstatus": lambda: P.GETSTATUS_FRAME,
    "secondary_dead `<<\"n2\">>`": lambda: P.encode_order(P.SECONDARY_DEAD, b"n2"),
    "berelay": lambda: P.BERELAY_FRAME,
    "reply `ok`": lambda: P.OK_FRAME,
    "reply `{error, 17}` (BADSTATE)": lambda: P.encode_error(17),
    "reply `{error, 26}` (HA_CLOSED)": lambda: P.encode_error(26),
    "reply `{error, 21}` (PROTOUSAGE, W-21)": lambda: P.encode_error(21),
    "reply `{error, 28, <<\"bad token\", 0>>}` — never sent by the emulator; the client must "
    "accept it (W-18)": lambda: P.encode_frame((Atom("error"), 28, b"bad token\x00")),
    "status `{1, []}`": lambda: P.encode_status(1, []),
    "status `{2, [{<<\"n1\">>, {10,0,0,1}}]}`":
        lambda: P.encode_status(2, [(b"n1", P.address_term("10.0.0.1"))]),
    "status `{3, [{<<\"n2\">>, {10,0,0,2}}]}`":
        lambda: P.encode_status(3, [(b"n2", P.address_term("10.0.0.2"))]),
    "status `{3, [{<<\"n2\">>, 2001:db8::2}]}`":
        lambda: P.encode_status(3, [(b"n2", P.address_term("2001:db8::2"))]),
    "status `{4, [{<<\"n1\">>, {10,0,0,1}}, {<<\"n3\">>, {10,0,0,3}}]}` (relay)":
        lambda: P.encode_status(4, [(b"n1", P.address_term("10.0.0.1")),
                                    (b"n3", P.address_term("10.0.0.3"))]),
}


def test_every_control_row_is_built():
    assert set(CONTROL_BUILDERS) == set(CONTROL)


@pytest.mark.parametrize("msg", sorted(CONTROL))
def test_control_frames_match_spec(msg):
    frame = h(CONTROL[msg])
    assert struct.unpack(">I", frame[:4])[0] == len(frame) - 4
    assert P.frame_size(frame[:4]) == len(frame) - 4
    assert CONTROL_BUILDERS[msg]().hex() == frame.hex()


REPLY_RESULTS = {
    "reply `ok`": None,
    "reply `{error, 17}` (BADSTATE)": (17, ""),
    "reply `{error, 26}` (HA_CLOSED)": (26, ""),
    "reply `{error, 21}` (PROTOUSAGE, W-21)": (21, ""),
    "reply `{error, 28, <<\"bad token\", 0>>}` — never sent by the emulator; the client must "
    "accept it (W-18)": (28, "bad token"),
}


@pytest.mark.parametrize("msg", sorted(REPLY_RESULTS))
def test_control_replies_decode(msg):
    payload = h(CONTROL[msg])[4:]
    want = REPLY_RESULTS[msg]
    if want is None:
        assert P.decode_reply(payload) is None
        return
    with pytest.raises(Error) as info:
        P.decode_reply(payload)
    assert (info.value.confd_errno, info.value.confd_lasterr) == want


STATUS_RESULTS = {
    "status `{1, []}`": (1, []),
    "status `{2, [{<<\"n1\">>, {10,0,0,1}}]}`": (2, [{"nodeid": "n1", "address": "10.0.0.1"}]),
    "status `{3, [{<<\"n2\">>, {10,0,0,2}}]}`": (3, [{"nodeid": "n2", "address": "10.0.0.2"}]),
    "status `{3, [{<<\"n2\">>, 2001:db8::2}]}`": (3, [{"nodeid": "n2", "address": "2001:db8::2"}]),
    "status `{4, [{<<\"n1\">>, {10,0,0,1}}, {<<\"n3\">>, {10,0,0,3}}]}` (relay)":
        (4, [{"nodeid": "n1", "address": "10.0.0.1"}, {"nodeid": "n3", "address": "10.0.0.3"}]),
}


@pytest.mark.parametrize("msg", sorted(STATUS_RESULTS))
def test_control_status_decodes(msg):
    assert P.decode_status(h(CONTROL[msg])[4:]) == STATUS_RESULTS[msg]


ORDER_RESULTS = {
    "beprimary `<<\"n1\">>`": P.Order(1, node=b"n1"),
    "besecondary n2 → n1 @ ::1, wait = 0":
        P.Order(2, b"n2", b"n1", (0, 0, 0, 0, 0, 0, 0, 1), False),
    "besecondary n2 → n1 @ string `primary.example`, wait = 1 (C API only; W-22)":
        P.Order(2, b"n2", b"n1", b"primary.example", True),
    "getstatus": P.Order(4),
}


@pytest.mark.parametrize("msg", sorted(ORDER_RESULTS))
def test_control_orders_decode(msg):
    got = P.decode_order(h(CONTROL[msg])[4:])
    assert got == ORDER_RESULTS[msg]
    assert all(same_term(a, b) for a, b in zip(got, ORDER_RESULTS[msg]) if a is not None)


# ------------------------------------------------------------------ §12.3 event socket

EVENT_BUILDERS = {
    "subscribe `{64, 0, 0, undefined, 0}` (HA_INFO)":
        lambda: P.encode_subscription(P.NOTIF_HA_INFO),
    "subscribe `{1048640, 0, 0, undefined, 0}` (HA_INFO \\| HA_INFO_SYNC)":
        lambda: P.encode_subscription(P.NOTIF_HA_INFO | P.NOTIF_HA_INFO_SYNC),
    "reply `ok`": lambda: P.OK_FRAME,
    "NOPRIMARY, reason HA_CLOSED": lambda: P.encode_event(1, 26),
    "SECONDARY_DIED n2 @ 10.0.0.2": lambda: P.encode_event(2, (b"n2", (10, 0, 0, 2))),
    "SECONDARY_ARRIVED n2 @ 10.0.0.2": lambda: P.encode_event(3, (b"n2", (10, 0, 0, 2))),
    "SECONDARY_INITIALIZED, by copy": lambda: P.encode_event(4, 1),
    "IS_PRIMARY (W-31)": lambda: P.encode_event(5, 0),
    "IS_NONE (W-31)": lambda: P.encode_event(6, 0),
    "BESECONDARY_RESULT ok": lambda: P.encode_event(7, 0),
    "BESECONDARY_RESULT HA_BADTOKEN": lambda: P.encode_event(7, 28),
    "acknowledgement `ha_synced`": lambda: P.HA_SYNCED_FRAME,
}


def test_every_event_row_is_built():
    assert set(EVENT_BUILDERS) == set(EVENTS)


# What the client sends carries its atoms as libconfd 8.2.5 encodes them, SMALL_ATOM_UTF8
# (observed by tests/differential): the spec's terms, other bytes.
LIBCONFD_FRAMES = {
    "subscribe `{64, 0, 0, undefined, 0}` (HA_INFO)":
        "00 00 00 16 83 68 05 61 40 61 00 61 00 77 09 75 6E 64 65 66 69 6E 65 64 61 00",
    "subscribe `{1048640, 0, 0, undefined, 0}` (HA_INFO \\| HA_INFO_SYNC)":
        "00 00 00 19 83 68 05 62 00 10 00 40 61 00 61 00 77 09 75 6E 64 65 66 69 6E 65 64 61 00",
    "acknowledgement `ha_synced`": "00 00 00 0C 83 77 09 68 61 5F 73 79 6E 63 65 64",
}


@pytest.mark.parametrize("msg", sorted(EVENTS))
def test_event_frames_match_spec(msg):
    frame = h(EVENTS[msg])
    assert P.frame_size(frame[:4]) == len(frame) - 4
    if msg in LIBCONFD_FRAMES:
        ours = h(LIBCONFD_FRAMES[msg])
        assert EVENT_BUILDERS[msg]().hex() == ours.hex()
        assert same_term(P.decode(ours[4:]), P.decode(frame[4:]))
    else:
        assert EVENT_BUILDERS[msg]().hex() == frame.hex()
    # Every frame payload is one canonical term: the C decoder and the reference agree on it.
    assert same_term(P.decode(frame[4:]), refcodec.decode(frame[4:]))


def test_subscriptions_decode():
    ha_info = EVENTS["subscribe `{64, 0, 0, undefined, 0}` (HA_INFO)"]
    assert P.decode_subscription(h(ha_info)[4:]) == 64
    assert P.decode_subscription(h(EVENTS[
        "subscribe `{1048640, 0, 0, undefined, 0}` (HA_INFO \\| HA_INFO_SYNC)"])[4:]) == 1048640
