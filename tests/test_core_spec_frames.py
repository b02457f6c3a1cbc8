"""The worked frames of docs/wire-protocol.md §12 (and the §4.6 access-check vectors), built by
the client's and the emulator's own builders in ``confd_ha._protocol``.

The frames are transcribed below and the transcription is compared with the document, which
must be present (``<repo>/docs/wire-protocol.md``): the two cannot drift apart, and a missing
document fails the tests instead of skipping them.
"""

from __future__ import annotations

import os
import re
import struct

import pytest

import refcodec
from refcodec import Atom, same_term

from confd_ha import _address, _codec, _handshake, _notifications, _protocol as P
from confd_ha.value import C_INT32, Value
from confd_ha.error import Error

HERE = os.path.dirname(os.path.abspath(__file__))
SPEC_PATH = os.path.normpath(os.path.join(HERE, "..", "docs", "wire-protocol.md"))


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# ------------------------------------------------------------------ transcription of §12

# The hello the client sends carries MAXDEPTH/MAXKEYLEN 20/9, as libconfd 8.2.5's does, and
# ConfD 8.2.5 answers with 12/4 (both observed; docs/wire-protocol.md §3.1, §3.2).
CLIENT_HELLO = "HA hello as the client and libconfd 8.2.5 send it, no access check (W-04; observed)"
CLIENT_HELLO_V2 = "the client's HA hello asking for access check v2"
CLIENT_HELLO_V1 = "the client's HA hello asking for access check v1"
CLIENT_EVENT_HELLO = "the client's event-socket hello, no access check (observed)"
ZERO_HELLO = ("HA hello with 0/0 in bytes 7–8, as econfd, Java and the conformance scenarios "
              "send it")
HEADER_HELLO = "a hello carrying the C headers' 60/18 (ConfD 8.2.5 accepts it)"
REPLY_OK = "reply, accepted: ConfD 8.2.5 and the emulator (W-06; observed)"
REPLY_BADVSN = "reply, protocol version refused (observed)"
REPLY_WARNING = "reply, MAXDEPTH/MAXKEYLEN refused (observed)"
REPLY_OK_6018 = "reply, accepted, from a daemon whose data model needs 60/18"

HANDSHAKE = {  # §12.1 table: message -> 9 bytes (no length prefix)
    CLIENT_HELLO: "11 00 52 08 02 05 00 14 09",
    ZERO_HELLO: "11 00 52 08 02 05 00 00 00",
    CLIENT_HELLO_V2: "D1 00 52 08 02 05 00 14 09",
    CLIENT_HELLO_V1: "91 00 52 08 02 05 00 14 09",
    CLIENT_EVENT_HELLO: "0B 00 52 08 02 05 00 14 09",
    HEADER_HELLO: "11 00 52 08 02 05 00 3C 12",
    REPLY_OK: "00 00 52 08 02 05 00 0C 04",
    REPLY_BADVSN: "01 00 52 08 02 05 00 0C 04",
    REPLY_WARNING: "02 00 52 08 02 05 00 0C 04",
    REPLY_OK_6018: "00 00 52 08 02 05 00 3C 12",
}

ACCESS_V2 = {  # §12.1 code block, access check v2 with the §4.6 vector
    "challenge": "0B 00 01 02 03 04 05 06 07 08 09 0A 0B 0C 0D 0E 0F"
                 " 10 11 12 13 14 15 16 17 18 19 1A 1B 1C 1D 1E 1F",
    "response": "0C 0D 79 43 02 8D 06 F7 22 E3 22 33 E6 0F 3A F8 08"
                " 20 7D 30 14 BC 42 FA F5 CD 56 11 9F 10 3E 20 1A",
    "ok": "00",
    "reply": "00 00 52 08 02 05 00 0C 04",
}
ACCESS_V1_RESPONSE = "0C C3 B2 64 5F 7D C0 82 E7 DC 50 F8 39 77 19 81 50"
DIGESTS_4_6 = {  # §4.6 table
    "v2": "0d7943028d06f722e32233e60f3af808207d3014bc42faf5cd56119f103e201a",
    "v1": "c3b2645f7dc082e7dc50f83977198150",
}

TOKEN = "token `abc` (raw bytes, never answered)"
BEPRIMARY = "beprimary `<<\"n1\">>` (observed)"
BEPRIMARY_INT = "beprimary with the node id `Value(5)`, a C_INT32 (observed)"
BESEC_V4_1 = "besecondary n2 → n1 @ 10.0.0.1, wait = 1"
BESEC_V4_0 = "besecondary n2 → n1 @ 10.0.0.1, wait = 0"
BESEC_V6_0 = "besecondary n2 → n1 @ ::1, wait = 0"
BESEC_V6_1 = "besecondary n2 → n1 @ 2001:db8::1, wait = 1 (observed)"
BESEC_STR = ("besecondary n2 → n1 @ the string `primary.example`, wait = 1 (the C API's form, "
             "W-22)")
BENONE = "benone (observed)"
GETSTATUS = "getstatus (observed)"
SECONDARY_DEAD = "secondary_dead `<<\"n2\">>` (observed)"
BERELAY = "berelay (observed)"
OK = "reply `ok`"
ERR17 = "reply `{error, 17}`, BADSTATE"
ERR26 = "reply `{error, 26}`, HA_CLOSED"
ERR21 = "reply `{error, 21}`, PROTOUSAGE (W-21)"
ERR28_REASON = ("reply `{error, 28, <<\"bad token\", 0>>}`: never sent by the emulator, accepted "
                "by the client (W-18)")
ST_NONE = "status `{1, []}`"
ST_SECONDARY = "status `{2, [{<<\"n1\">>, {10,0,0,1}}]}`"
ST_PRIMARY_V4 = "status `{3, [{<<\"n2\">>, {10,0,0,2}}]}`"
ST_PRIMARY_V6 = "status `{3, [{<<\"n2\">>, 2001:db8::2}]}`"
ST_RELAY = "status `{4, [{<<\"n1\">>, {10,0,0,1}}, {<<\"n3\">>, {10,0,0,3}}]}` of a relay"

CONTROL = {  # §12.2 table: message -> frame
    TOKEN: "00 00 00 03 61 62 63",
    BEPRIMARY: "00 00 00 0C 83 68 02 61 01 6D 00 00 00 02 6E 31",
    BEPRIMARY_INT: "00 00 00 07 83 68 02 61 01 61 05",
    BESEC_V4_1:
        "00 00 00 21 83 68 04 61 02 6D 00 00 00 02 6E 32 68 02 6D 00 00 00 02 6E 31 68 04 61 0A"
        " 61 00 61 00 61 01 61 01",
    BESEC_V4_0:
        "00 00 00 21 83 68 04 61 02 6D 00 00 00 02 6E 32 68 02 6D 00 00 00 02 6E 31 68 04 61 0A"
        " 61 00 61 00 61 01 61 00",
    BESEC_V6_0:
        "00 00 00 29 83 68 04 61 02 6D 00 00 00 02 6E 32 68 02 6D 00 00 00 02 6E 31 68 08 61 00"
        " 61 00 61 00 61 00 61 00 61 00 61 00 61 01 61 00",
    BESEC_V6_1:
        "00 00 00 2F 83 68 04 61 02 6D 00 00 00 02 6E 32 68 02 6D 00 00 00 02 6E 31 68 08 62 00"
        " 00 20 01 62 00 00 0D B8 61 00 61 00 61 00 61 00 61 00 61 01 61 01",
    BESEC_STR:
        "00 00 00 2B 83 68 04 61 02 6D 00 00 00 02 6E 32 68 02 6D 00 00 00 02 6E 31 6D 00 00 00"
        " 0F 70 72 69 6D 61 72 79 2E 65 78 61 6D 70 6C 65 61 01",
    BENONE: "00 00 00 05 83 68 01 61 03",
    GETSTATUS: "00 00 00 05 83 68 01 61 04",
    SECONDARY_DEAD: "00 00 00 0C 83 68 02 61 05 6D 00 00 00 02 6E 32",
    BERELAY: "00 00 00 05 83 68 01 61 06",
    OK: "00 00 00 06 83 64 00 02 6F 6B",
    ERR17: "00 00 00 0D 83 68 02 64 00 05 65 72 72 6F 72 61 11",
    ERR26: "00 00 00 0D 83 68 02 64 00 05 65 72 72 6F 72 61 1A",
    ERR21: "00 00 00 0D 83 68 02 64 00 05 65 72 72 6F 72 61 15",
    ERR28_REASON:
        "00 00 00 1C 83 68 03 64 00 05 65 72 72 6F 72 61 1C 6D 00 00 00 0A 62 61 64 20 74 6F 6B"
        " 65 6E 00",
    ST_NONE: "00 00 00 06 83 68 02 61 01 6A",
    ST_SECONDARY:
        "00 00 00 1E 83 68 02 61 02 6C 00 00 00 01 68 02 6D 00 00 00 02 6E 31 68 04 61 0A 61 00"
        " 61 00 61 01 6A",
    ST_PRIMARY_V4:
        "00 00 00 1E 83 68 02 61 03 6C 00 00 00 01 68 02 6D 00 00 00 02 6E 32 68 04 61 0A 61 00"
        " 61 00 61 02 6A",
    ST_PRIMARY_V6:
        "00 00 00 2C 83 68 02 61 03 6C 00 00 00 01 68 02 6D 00 00 00 02 6E 32 68 08 62 00 00 20"
        " 01 62 00 00 0D B8 61 00 61 00 61 00 61 00 61 00 61 02 6A",
    ST_RELAY:
        "00 00 00 31 83 68 02 61 04 6C 00 00 00 02 68 02 6D 00 00 00 02 6E 31 68 04 61 0A 61 00"
        " 61 00 61 01 68 02 6D 00 00 00 02 6E 33 68 04 61 0A 61 00 61 00 61 03 6A",
}

SUB = "subscribe `{64, 0, 0, undefined, 0}`, HA_INFO, canonical encoding"
SUB_SYNC = ("subscribe `{1048640, 0, 0, undefined, 0}`, HA_INFO \\| HA_INFO_SYNC, canonical "
            "encoding")
SYNCED = "acknowledgement `ha_synced`, canonical encoding"
AS_SENT = "the same as the client and libconfd 8.2.5 send it (observed)"
BAD_SUB = "reply to a subscription that is not a 5-tuple, then a close (W-30)"
EV_NOPRIMARY = "NOPRIMARY, reason HA_CLOSED"
EV_DIED = "SECONDARY_DIED n2 @ 10.0.0.2"
EV_ARRIVED = "SECONDARY_ARRIVED n2 @ 10.0.0.2"
EV_INIT = "SECONDARY_INITIALIZED, database copied"
EV_IS_PRIMARY = "IS_PRIMARY (W-31)"
EV_IS_NONE = "IS_NONE (W-31)"
EV_RESULT_OK = "BESECONDARY_RESULT, success"
EV_RESULT_BADTOKEN = "BESECONDARY_RESULT, HA_BADTOKEN"

EVENTS = {  # §12.3 table: message -> frame (the "as sent" rows are in EVENTS_AS_SENT)
    SUB: "00 00 00 17 83 68 05 61 40 61 00 61 00 64 00 09 75 6E 64 65 66 69 6E 65 64 61 00",
    SUB_SYNC:
        "00 00 00 1A 83 68 05 62 00 10 00 40 61 00 61 00 64 00 09 75 6E 64 65 66 69 6E 65 64 61"
        " 00",
    OK: "00 00 00 06 83 64 00 02 6F 6B",
    BAD_SUB:
        "00 00 00 27 83 68 03 64 00 05 65 72 72 6F 72 61 12 6D 00 00 00 15 42 61 64 20 73 75 62"
        " 73 63 72 69 70 74 69 6F 6E 20 64 61 74 61",
    EV_NOPRIMARY: "00 00 00 0B 83 68 02 61 40 68 02 61 01 61 1A",
    EV_DIED:
        "00 00 00 1C 83 68 02 61 40 68 02 61 02 68 02 6D 00 00 00 02 6E 32 68 04 61 0A 61 00 61"
        " 00 61 02",
    EV_ARRIVED:
        "00 00 00 1C 83 68 02 61 40 68 02 61 03 68 02 6D 00 00 00 02 6E 32 68 04 61 0A 61 00 61"
        " 00 61 02",
    EV_INIT: "00 00 00 0B 83 68 02 61 40 68 02 61 04 61 01",
    EV_IS_PRIMARY: "00 00 00 0B 83 68 02 61 40 68 02 61 05 61 00",
    EV_IS_NONE: "00 00 00 0B 83 68 02 61 40 68 02 61 06 61 00",
    EV_RESULT_OK: "00 00 00 0B 83 68 02 61 40 68 02 61 07 61 00",
    EV_RESULT_BADTOKEN: "00 00 00 0B 83 68 02 61 40 68 02 61 07 61 1C",
    SYNCED: "00 00 00 0D 83 64 00 09 68 61 5F 73 79 6E 63 65 64",
}

# The rows "the same as the client and libconfd 8.2.5 send it", each after its canonical row:
# the client's atoms are SMALL_ATOM_UTF8, as libconfd 8.2.5's (observed by tests/differential):
# the same terms, other bytes.
EVENTS_AS_SENT = {
    SUB: "00 00 00 16 83 68 05 61 40 61 00 61 00 77 09 75 6E 64 65 66 69 6E 65 64 61 00",
    SUB_SYNC:
        "00 00 00 19 83 68 05 62 00 10 00 40 61 00 61 00 77 09 75 6E 64 65 66 69 6E 65 64 61 00",
    SYNCED: "00 00 00 0C 83 77 09 68 61 5F 73 79 6E 63 65 64",
}


# ------------------------------------------------------------------ the spec file itself

_ROW = re.compile(r"^\| (.*) \| `([0-9A-Fa-f ]+)` \|$")


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    nxt = text.find("\n### ", start + len(heading))
    nxt2 = text.find("\n## ", start + len(heading))
    ends = [e for e in (nxt, nxt2) if e != -1]
    return text[start:min(ends)] if ends else text[start:]


def _rows(section: str) -> list:
    """The (message, hex) rows of a §12 table, in the document's order."""
    rows = []
    for line in section.splitlines():
        m = _ROW.match(line.strip())
        if m:
            rows.append((m.group(1), " ".join(m.group(2).upper().split())))
    return rows


def _table(rows: list) -> dict:
    table = dict(rows)
    assert len(table) == len(rows), "a message appears twice"
    return table


def _norm(table: dict) -> dict:
    return {k: " ".join(v.upper().split()) for k, v in table.items()}


@pytest.fixture(scope="module")
def spec_text():
    assert os.path.exists(SPEC_PATH), "the wire-protocol document is missing: %s" % SPEC_PATH
    with open(SPEC_PATH, encoding="utf-8") as f:
        return f.read()


def test_transcribed_tables_match_spec(spec_text):
    assert _table(_rows(_section(spec_text, "### 12.1 Handshake"))) == _norm(HANDSHAKE)
    assert _table(_rows(_section(spec_text, "### 12.2 HA control socket"))) == _norm(CONTROL)
    # In §12.3 each "as sent" row follows the canonical row it belongs to.
    canonical, as_sent = [], {}
    for msg, frame in _rows(_section(spec_text, "### 12.3 Event socket")):
        if msg == AS_SENT:
            as_sent[canonical[-1][0]] = frame
        else:
            canonical.append((msg, frame))
    assert _table(canonical) == _norm(EVENTS)
    assert as_sent == _norm(EVENTS_AS_SENT)


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

_VSN = (P.DEFAULT_PROTO_VSN, P.DEFAULT_LIB_VSN)
_CLIENT = (P.CLIENT_MAXDEPTH, P.CLIENT_MAXKEYLEN)
_SERVER = (P.SERVER_MAXDEPTH, P.SERVER_MAXKEYLEN)
HELLOS = {
    CLIENT_HELLO: P.Hello(P.CT_HA, *_VSN, *_CLIENT),
    ZERO_HELLO: P.Hello(P.CT_HA, *_VSN, 0, 0),
    CLIENT_HELLO_V2: P.Hello(P.CT_HA | P.access_flag(P.ACCESS_V2), *_VSN, *_CLIENT),
    CLIENT_HELLO_V1: P.Hello(P.CT_HA | P.access_flag(P.ACCESS_V1), *_VSN, *_CLIENT),
    CLIENT_EVENT_HELLO: P.Hello(P.CT_EVENT, *_VSN, *_CLIENT),
    HEADER_HELLO: P.Hello(P.CT_HA, 82, 0x08020500, 60, 18),
    REPLY_OK: P.Hello(P.HELLO_ACCEPTED, *_VSN, *_SERVER),
    REPLY_BADVSN: P.Hello(P.HELLO_BADVSN, *_VSN, *_SERVER),
    REPLY_WARNING: P.Hello(P.HELLO_WARNING, *_VSN, *_SERVER),
    REPLY_OK_6018: P.Hello(P.HELLO_ACCEPTED, *_VSN, 60, 18),
}


def test_every_handshake_row_is_built():
    assert set(HELLOS) == set(HANDSHAKE)


@pytest.mark.parametrize("msg", sorted(HANDSHAKE))
def test_build_hello_matches_spec(msg):
    assert P.build_hello(HELLOS[msg]) == h(HANDSHAKE[msg])
    assert P.parse_hello(h(HANDSHAKE[msg])) == HELLOS[msg]


@pytest.mark.parametrize("msg, ctype, secret, variant", [
    (CLIENT_HELLO, P.CT_HA, None, P.ACCESS_V2),
    (CLIENT_HELLO_V2, P.CT_HA, b"s3cret", P.ACCESS_V2),
    (CLIENT_HELLO_V1, P.CT_HA, b"s3cret", P.ACCESS_V1),
    (CLIENT_EVENT_HELLO, P.CT_EVENT, None, P.ACCESS_V2),
])
def test_client_sends_the_spec_hellos(msg, ctype, secret, variant):
    """The rows "as the client sends it" are the first bytes of the client's own handshake."""
    plan = _handshake.Plan(ctype, P.DEFAULT_PROTO_VSN, P.DEFAULT_LIB_VSN, secret, variant)
    step, data = next(_handshake.exchange(plan, plan.proto_vsn, plan.lib_vsn))
    assert (step, data) == (_handshake.SEND, h(HANDSHAKE[msg]))


@pytest.mark.parametrize("msg, variant", [
    (CLIENT_HELLO, None),
    (ZERO_HELLO, None),
    (CLIENT_HELLO_V2, P.ACCESS_V2),
    (CLIENT_HELLO_V1, P.ACCESS_V1),
    (CLIENT_EVENT_HELLO, None),
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
    assert P.parse_hello(h(ACCESS_V2["reply"])) == HELLOS[REPLY_OK]


def test_access_check_v1_exchange():
    secret, nonce = b"s3cret", bytes(range(16))
    challenge = P.build_challenge(nonce)
    assert challenge == b"\x0b" + nonce
    assert P.challenge_size(P.ACCESS_V1) == len(challenge) == 17
    response = P.build_response(P.ACCESS_V1, secret, challenge)
    assert response == h(ACCESS_V1_RESPONSE)
    assert response[1:] == h(DIGESTS_4_6["v1"])
    assert P.verify_response(P.ACCESS_V1, secret, nonce, response) is True


def test_wrong_digest_byte():
    """§4.4 / §12.1: ConfD 8.2.5 answers a wrong digest with 03 (W-13)."""
    assert P.ACCESS_REJECTED == b"\x03"


# ------------------------------------------------------------------ §12.2 HA control socket

IP4 = _address.parse_ip("10.0.0.1")
CONTROL_BUILDERS = {
    TOKEN: lambda: P.frame(b"abc"),
    BEPRIMARY: lambda: P.encode_order(P.BEPRIMARY, b"n1"),
    BEPRIMARY_INT: lambda: P.encode_order(P.BEPRIMARY, Value(5, C_INT32).to_term()),
    BESEC_V4_1: lambda: P.encode_order(P.BESECONDARY, b"n2", b"n1", IP4, 1),
    BESEC_V4_0: lambda: P.encode_order(P.BESECONDARY, b"n2", b"n1", IP4, 0),
    BESEC_V6_0: lambda: P.encode_order(P.BESECONDARY, b"n2", b"n1", _address.parse_ip("::1"), 0),
    BESEC_V6_1:
        lambda: P.encode_order(P.BESECONDARY, b"n2", b"n1", _address.parse_ip("2001:db8::1"), 1),
    BESEC_STR:
        lambda: P.encode_order(P.BESECONDARY, b"n2", b"n1", (_address.AF_STRING, b"primary.example"), 1),
    BENONE: lambda: P.BENONE_FRAME,
    GETSTATUS: lambda: P.GETSTATUS_FRAME,
    SECONDARY_DEAD: lambda: P.encode_order(P.SECONDARY_DEAD, b"n2"),
    BERELAY: lambda: P.BERELAY_FRAME,
    OK: lambda: P.OK_FRAME,
    ERR17: lambda: P.encode_error(17),
    ERR26: lambda: P.encode_error(26),
    ERR21: lambda: P.encode_error(21),
    ERR28_REASON: lambda: _codec.encode_frame((Atom("error"), 28, b"bad token\x00")),
    ST_NONE: lambda: P.encode_status(1, []),
    ST_SECONDARY: lambda: P.encode_status(2, [(b"n1", _address.address_term("10.0.0.1"))]),
    ST_PRIMARY_V4: lambda: P.encode_status(3, [(b"n2", _address.address_term("10.0.0.2"))]),
    ST_PRIMARY_V6: lambda: P.encode_status(3, [(b"n2", _address.address_term("2001:db8::2"))]),
    ST_RELAY: lambda: P.encode_status(4, [(b"n1", _address.address_term("10.0.0.1")),
                                          (b"n3", _address.address_term("10.0.0.3"))]),
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
    OK: None,
    ERR17: (17, ""),
    ERR26: (26, ""),
    ERR21: (21, ""),
    ERR28_REASON: (28, "bad token"),
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
    ST_NONE: (1, []),
    ST_SECONDARY: (2, [{"nodeid": "n1", "address": "10.0.0.1"}]),
    ST_PRIMARY_V4: (3, [{"nodeid": "n2", "address": "10.0.0.2"}]),
    ST_PRIMARY_V6: (3, [{"nodeid": "n2", "address": "2001:db8::2"}]),
    ST_RELAY:
        (4, [{"nodeid": "n1", "address": "10.0.0.1"}, {"nodeid": "n3", "address": "10.0.0.3"}]),
}


@pytest.mark.parametrize("msg", sorted(STATUS_RESULTS))
def test_control_status_decodes(msg):
    assert P.decode_status(h(CONTROL[msg])[4:]) == STATUS_RESULTS[msg]


ORDER_RESULTS = {
    BEPRIMARY: P.Order(1, node=b"n1"),
    BEPRIMARY_INT: P.Order(1, node=5),
    BESEC_V6_0: P.Order(2, b"n2", b"n1", (0, 0, 0, 0, 0, 0, 0, 1), False),
    BESEC_V6_1: P.Order(2, b"n2", b"n1", (0x2001, 0xDB8, 0, 0, 0, 0, 0, 1), True),
    BESEC_STR: P.Order(2, b"n2", b"n1", b"primary.example", True),
    GETSTATUS: P.Order(4),
}


@pytest.mark.parametrize("msg", sorted(ORDER_RESULTS))
def test_control_orders_decode(msg):
    got = P.decode_order(h(CONTROL[msg])[4:])
    assert got == ORDER_RESULTS[msg]
    assert all(same_term(a, b) for a, b in zip(got, ORDER_RESULTS[msg]) if a is not None)


# ------------------------------------------------------------------ §12.3 event socket

EVENT_BUILDERS = {
    SUB: lambda: _notifications.encode_subscription(P.NOTIF_HA_INFO),
    SUB_SYNC: lambda: _notifications.encode_subscription(P.NOTIF_HA_INFO | P.NOTIF_HA_INFO_SYNC),
    OK: lambda: P.OK_FRAME,
    BAD_SUB: lambda: _codec.encode_frame((Atom("error"), 18, b"Bad subscription data")),
    EV_NOPRIMARY: lambda: _notifications.encode_event(1, 26),
    EV_DIED: lambda: _notifications.encode_event(2, (b"n2", (10, 0, 0, 2))),
    EV_ARRIVED: lambda: _notifications.encode_event(3, (b"n2", (10, 0, 0, 2))),
    EV_INIT: lambda: _notifications.encode_event(4, 1),
    EV_IS_PRIMARY: lambda: _notifications.encode_event(5, 0),
    EV_IS_NONE: lambda: _notifications.encode_event(6, 0),
    EV_RESULT_OK: lambda: _notifications.encode_event(7, 0),
    EV_RESULT_BADTOKEN: lambda: _notifications.encode_event(7, 28),
    SYNCED: lambda: _notifications.HA_SYNCED_FRAME,
}


def test_every_event_row_is_built():
    assert set(EVENT_BUILDERS) == set(EVENTS)
    assert set(EVENTS_AS_SENT) <= set(EVENTS)


@pytest.mark.parametrize("msg", sorted(EVENTS))
def test_event_frames_match_spec(msg):
    frame = h(EVENTS[msg])
    assert P.frame_size(frame[:4]) == len(frame) - 4
    if msg in EVENTS_AS_SENT:
        # What the client sends is the "as sent" row; the canonical row is the same term.
        ours = h(EVENTS_AS_SENT[msg])
        assert P.frame_size(ours[:4]) == len(ours) - 4
        assert EVENT_BUILDERS[msg]().hex() == ours.hex()
        assert same_term(_codec.decode(ours[4:]), _codec.decode(frame[4:]))
    else:
        assert EVENT_BUILDERS[msg]().hex() == frame.hex()
    # Every frame payload is one canonical term: the C decoder and the reference agree on it.
    assert same_term(_codec.decode(frame[4:]), refcodec.decode(frame[4:]))


def test_subscriptions_decode():
    assert _notifications.decode_subscription(h(EVENTS[SUB])[4:]) == 64
    assert _notifications.decode_subscription(h(EVENTS_AS_SENT[SUB])[4:]) == 64
    assert _notifications.decode_subscription(h(EVENTS[SUB_SYNC])[4:]) == 1048640
    assert _notifications.decode_subscription(h(EVENTS_AS_SENT[SUB_SYNC])[4:]) == 1048640


def test_bad_subscription_reply_fails_the_connect():
    """W-30: the client takes ConfD's refusal of a subscription as an order's error (W-18)."""
    with pytest.raises(Error) as info:
        _notifications.decode_subscription_reply(h(EVENTS[BAD_SUB])[4:])
    assert (info.value.confd_errno, info.value.confd_lasterr) == (18, "Bad subscription data")
    assert _notifications.decode_subscription_reply(h(EVENTS[OK])[4:]) is None
