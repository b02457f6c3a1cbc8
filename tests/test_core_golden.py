"""The C core and the protocol layer against golden bytes from a real Erlang/OTP term_to_binary.

``tests/golden/vectors.json`` was produced by Erlang; ``tests/golden/terms.py`` holds the same
terms written out by hand. Every encoder of ``confd_ha._protocol`` (generic, order, reply,
status, event, subscription) must produce exactly Erlang's bytes, and every decoder must give
back exactly the term (``refcodec.same_term``: Atom vs bytes, int vs float, tuple vs list all
distinguished). Expected status/reply results are computed here from the *reference codec's*
decoding of the golden bytes, never from ``confd_ha``'s own helpers.
"""

from __future__ import annotations

import socket
import struct

import pytest

import refcodec
from golden.terms import DECODE_ONLY_PREFIX, VECTORS, load
from refcodec import Atom, same_term

import confd_ha
from confd_ha import Value, _address, _codec, _notifications, _protocol as P
from confd_ha.error import Error

GOLDEN = load()
ALL = sorted(VECTORS)
ENCODABLE = sorted(n for n in VECTORS if not n.startswith(DECODE_ONLY_PREFIX))


def framed(payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + payload


def test_golden_set_is_complete():
    assert set(GOLDEN) == set(VECTORS)
    # Every group the brief names is present (a truncated vectors.json must not pass).
    for prefix in ("order_", "order_beprimary_nodeid_", "reply_", "status_", "subscribe_",
                   "event_", "peer_", "int_", "float_", "atom_", "binary_", "tuple_", "list_",
                   DECODE_ONLY_PREFIX):
        assert any(n.startswith(prefix) for n in GOLDEN), prefix


# ------------------------------------------------------------------ generic codec


@pytest.mark.parametrize("name", ENCODABLE)
def test_encode_matches_erlang(name):
    assert _codec.encode(VECTORS[name]).hex() == GOLDEN[name].hex()


@pytest.mark.parametrize("name", ENCODABLE)
def test_encode_frame_matches_erlang(name):
    assert _codec.encode_frame(VECTORS[name]).hex() == framed(GOLDEN[name]).hex()


@pytest.mark.parametrize("name", ALL)
def test_decode_matches_term(name):
    assert same_term(_codec.decode(GOLDEN[name]), VECTORS[name])


@pytest.mark.parametrize("name", ALL)
def test_validate_accepts_golden(name):
    assert _codec.validate(GOLDEN[name]) == 0


@pytest.mark.parametrize("name", sorted(n for n in VECTORS if n.startswith(DECODE_ONLY_PREFIX)))
def test_decode_only_reencodes_canonically(name):
    # Erlang's STRING / SMALL_ATOM_UTF8 forms decode to terms our encoder writes canonically.
    term = _codec.decode(GOLDEN[name])
    assert _codec.encode(term) != GOLDEN[name]
    assert _codec.encode(term) == refcodec.encode(VECTORS[name])


# ------------------------------------------------------------------ HA orders (client side)

IP = {
    "10.0.0.1": _address.parse_ip("10.0.0.1"),
    "::1": _address.parse_ip("::1"),
    "2001:db8::1": _address.parse_ip("2001:db8::1"),
}

ORDER_CALLS = {
    "order_beprimary_n1": lambda: P.encode_order(P.BEPRIMARY, b"n1"),
    "order_besecondary_ipv4_wait1":
        lambda: P.encode_order(P.BESECONDARY, b"n2", b"n1", IP["10.0.0.1"], 1),
    "order_besecondary_ipv4_wait0":
        lambda: P.encode_order(P.BESECONDARY, b"n2", b"n1", IP["10.0.0.1"], 0),
    "order_besecondary_ipv6_wait0":
        lambda: P.encode_order(P.BESECONDARY, b"n2", b"n1", IP["::1"], 0),
    "order_besecondary_ipv6_wait1":
        lambda: P.encode_order(P.BESECONDARY, b"n2", b"n1", IP["2001:db8::1"], 1),
    "order_besecondary_straddr_wait1":
        lambda: P.encode_order(P.BESECONDARY, b"n2", b"n1", (_address.AF_STRING, b"primary.example"), 1),
    "order_benone": lambda: P.encode_order(P.BENONE),
    "order_getstatus": lambda: P.encode_order(P.GETSTATUS),
    "order_secondary_dead_n2": lambda: P.encode_order(P.SECONDARY_DEAD, b"n2"),
    "order_berelay": lambda: P.encode_order(P.BERELAY),
    "order_besecondary_nodeids_int32_ipv4":
        lambda: P.encode_order(P.BESECONDARY, Value(7).to_term(), Value(8).to_term(),
                               IP["10.0.0.1"], 1),
}


def test_every_plain_order_vector_has_a_call():
    plain = {n for n in GOLDEN if n.startswith("order_") and "_nodeid_" not in n}
    assert plain == set(ORDER_CALLS)


@pytest.mark.parametrize("name", sorted(ORDER_CALLS))
def test_encode_order_matches_erlang(name):
    assert ORDER_CALLS[name]().hex() == framed(GOLDEN[name]).hex()


def test_prebuilt_order_frames():
    assert P.BENONE_FRAME == framed(GOLDEN["order_benone"])
    assert P.GETSTATUS_FRAME == framed(GOLDEN["order_getstatus"])
    assert P.BERELAY_FRAME == framed(GOLDEN["order_berelay"])


def test_node_term_of_str_and_bytes():
    # confd_ha.node_term is what the API functions feed into encode_order.
    assert P.encode_order(P.BEPRIMARY, confd_ha.node_term("n1")) == framed(
        GOLDEN["order_beprimary_n1"])
    assert P.encode_order(P.SECONDARY_DEAD, confd_ha.node_term(b"n2")) == framed(
        GOLDEN["order_secondary_dead_n2"])
    # A str is cut at its first NUL (W-25 / original binding).
    assert P.encode_order(P.BEPRIMARY, confd_ha.node_term("n1\x00junk")) == framed(
        GOLDEN["order_beprimary_n1"])


ORDER_DECODED = {
    "order_beprimary_n1": P.Order(1, node=b"n1"),
    "order_besecondary_ipv4_wait1":
        P.Order(2, node=b"n2", pnode=b"n1", addr=(10, 0, 0, 1), waitreply=True),
    "order_besecondary_ipv4_wait0":
        P.Order(2, node=b"n2", pnode=b"n1", addr=(10, 0, 0, 1), waitreply=False),
    "order_besecondary_ipv6_wait0":
        P.Order(2, node=b"n2", pnode=b"n1", addr=(0, 0, 0, 0, 0, 0, 0, 1), waitreply=False),
    "order_besecondary_ipv6_wait1":
        P.Order(2, node=b"n2", pnode=b"n1", addr=(0x2001, 0xDB8, 0, 0, 0, 0, 0, 1),
                waitreply=True),
    "order_besecondary_straddr_wait1":
        P.Order(2, node=b"n2", pnode=b"n1", addr=b"primary.example", waitreply=True),
    "order_benone": P.Order(3),
    "order_getstatus": P.Order(4),
    "order_secondary_dead_n2": P.Order(5, node=b"n2"),
    "order_berelay": P.Order(6),
    "order_besecondary_nodeids_int32_ipv4":
        P.Order(2, node=7, pnode=8, addr=(10, 0, 0, 1), waitreply=True),
}


@pytest.mark.parametrize("name", sorted(ORDER_DECODED))
def test_decode_order_of_golden(name):
    got = P.decode_order(GOLDEN[name])
    want = ORDER_DECODED[name]
    assert got.code == want.code and got.waitreply == want.waitreply
    for field in ("node", "pnode", "addr"):
        assert same_term(getattr(got, field), getattr(want, field)), field


# ------------------------------------------------------------------ node ids of every Value type

# name of an order_beprimary_nodeid_* vector -> the Value a user would build for it (W-26).
NODEID_VALUES = {
    "noexists": lambda: Value(None, confd_ha.C_NOEXISTS),
    "buf": lambda: Value("node-1"),
    "buf_empty": lambda: Value(b"", confd_ha.C_BUF),
    "int8": lambda: Value(-5, confd_ha.C_INT8),
    "int16": lambda: Value(-300, confd_ha.C_INT16),
    "int32": lambda: Value(5),
    "int32_neg": lambda: Value(-100000, confd_ha.C_INT32),
    "int32_max": lambda: Value(2147483647),
    "int64": lambda: Value(5000000000, confd_ha.C_INT64),
    "int64_min": lambda: Value(-(2**63), confd_ha.C_INT64),
    "uint8": lambda: Value(255, confd_ha.C_UINT8),
    "uint16": lambda: Value(65535, confd_ha.C_UINT16),
    "uint32": lambda: Value(4000000000, confd_ha.C_UINT32),
    "uint64_max": lambda: Value(2**64 - 1, confd_ha.C_UINT64),
    "uint64_near_max": lambda: Value(2**64 - 6, confd_ha.C_UINT64),
    "double": lambda: Value(2.5),
    "ipv4": lambda: Value("10.0.0.1", confd_ha.C_IPV4),
    "ipv6": lambda: Value("2001:db8::1", confd_ha.C_IPV6),
    "bool_true": lambda: Value(True),
    "bool_false": lambda: Value(False, confd_ha.C_BOOL),
    "qname": lambda: Value(("p", "n"), confd_ha.C_QNAME),
    "datetime": lambda: Value((2024, 1, 2, 3, 4, 5, 6, 1, 30), confd_ha.C_DATETIME),
    "datetime_notz": lambda: Value((2024, 1, 2, 3, 4, 5, 6, [], 0), confd_ha.C_DATETIME),
    "date": lambda: Value((2024, 12, 31, -5, 30), confd_ha.C_DATE),
    "date_notz": lambda: Value((2024, 12, 31, [], 0), confd_ha.C_DATE),
    "time": lambda: Value((3, 4, 5, 6, [], 0), confd_ha.C_TIME),
    "duration": lambda: Value((1, 2, 3, 4, 5, 6, 7), confd_ha.C_DURATION),
    "enum": lambda: Value(3, confd_ha.C_ENUM_VALUE),
    "bit32": lambda: Value(4294967295, confd_ha.C_BIT32),
    "bit64": lambda: Value(2**63, confd_ha.C_BIT64),
    "list": lambda: Value(["a", "b"]),
    "objectref": lambda: Value([b"servers", b"server"], confd_ha.C_OBJECTREF),
    "oid": lambda: Value(bytes([0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0, 6]), confd_ha.C_OID),
    "binary": lambda: Value(bytes([0, 1, 2, 255]), confd_ha.C_BINARY),
    "ipv4prefix": lambda: Value("10.0.0.0/8", confd_ha.C_IPV4PREFIX),
    "ipv6prefix": lambda: Value("2001:db8::/64", confd_ha.C_IPV6PREFIX),
    "default": lambda: Value(None, confd_ha.C_DEFAULT),
    "decimal64": lambda: Value((12345, 2), confd_ha.C_DECIMAL64),
    "decimal64_neg": lambda: Value((-9223372036854775807, 18), confd_ha.C_DECIMAL64),
    "identityref": lambda: Value((1, 2), confd_ha.C_IDENTITYREF),
    "dquad": lambda: Value(bytes([1, 2, 3, 4]), confd_ha.C_DQUAD),
    "hexstr": lambda: Value(bytes([0xDE, 0xAD, 0xBE, 0xEF]), confd_ha.C_HEXSTR),
    "ipv4_and_plen": lambda: Value("192.168.1.1/24", confd_ha.C_IPV4_AND_PLEN),
    "ipv6_and_plen": lambda: Value("2001:db8::1/64", confd_ha.C_IPV6_AND_PLEN),
    "bitbig": lambda: Value(bytes([1, 0, 0, 0, 0, 0, 0, 0, 128]), confd_ha.C_BITBIG),
}
NODEID_PREFIX = "order_beprimary_nodeid_"


def test_every_nodeid_vector_has_a_value():
    names = {n[len(NODEID_PREFIX):] for n in GOLDEN if n.startswith(NODEID_PREFIX)}
    assert names == set(NODEID_VALUES)


@pytest.mark.parametrize("name", sorted(NODEID_VALUES))
def test_value_to_term_encodes_to_golden(name):
    golden = GOLDEN[NODEID_PREFIX + name]
    term = NODEID_VALUES[name]().to_term()
    assert _codec.encode((1, term)).hex() == golden.hex()
    assert P.encode_order(P.BEPRIMARY, term).hex() == framed(golden).hex()
    # The high-level coercion used by beprimary() & co. gives the same bytes.
    assert P.encode_order(P.BEPRIMARY, confd_ha.node_term(NODEID_VALUES[name]())) == framed(golden)


# Types that decode to another, equivalent Value type: a bare binary is always C_BUF, a bare
# integer C_INT32 / C_INT64 (W-26). None of the golden node ids hits such a case.
@pytest.mark.parametrize("name", sorted(NODEID_VALUES))
def test_value_from_golden_term_round_trips(name):
    want = NODEID_VALUES[name]()
    got = Value.from_term(_codec.decode(GOLDEN[NODEID_PREFIX + name])[1])
    assert got.confd_type() == want.confd_type()
    assert got == want
    assert same_term(got.to_term(), _codec.decode(GOLDEN[NODEID_PREFIX + name])[1])


# ------------------------------------------------------------------ replies

REPLIES_OK = ["reply_ok"]
# name -> (confd_errno, lasterr), lasterr derived from the reference decoding: reason bytes
# with exactly one trailing NUL removed (W-18, W-19).
REPLY_ERRORS = {
    "reply_error_17": (17, ""),
    "reply_error_26": (26, ""),
    "reply_error_21": (21, ""),
    "reply_error_28_reason": (28, "bad token"),
    "reply_error_28_reason_apptag": (28, "x"),
    "decode_only_reply_error_28_string_reason": (28, "bad token"),
}


def test_reply_vectors_covered():
    names = {n for n in GOLDEN if n.startswith("reply_") or "_reply_" in n}
    assert names == set(REPLIES_OK) | set(REPLY_ERRORS)


def test_reply_error_expectations_follow_reference_decoding():
    # The hand-written expectations above agree with the refcodec view of the bytes.
    for name, (code, lasterr) in REPLY_ERRORS.items():
        term = refcodec.decode(GOLDEN[name])
        assert term[0] == Atom("error") and term[1] == code
        if len(term) == 3:
            reason = term[2][0] if isinstance(term[2], tuple) else term[2]
            raw = bytes(reason)
            assert (raw[:-1] if raw.endswith(b"\x00") else raw).decode() == lasterr


@pytest.mark.parametrize("name", REPLIES_OK)
def test_decode_reply_ok(name):
    assert P.decode_reply(GOLDEN[name]) is None


@pytest.mark.parametrize("name", sorted(REPLY_ERRORS))
def test_decode_reply_error(name):
    code, lasterr = REPLY_ERRORS[name]
    with pytest.raises(Error) as info:
        P.decode_reply(GOLDEN[name])
    assert type(info.value) is Error
    assert info.value.confd_errno == code
    assert info.value.confd_lasterr == lasterr
    assert info.value.confd_strerror == confd_ha.error.strerror(code)


def test_reply_encoders_match_golden():
    assert P.OK_FRAME == framed(GOLDEN["reply_ok"])
    for code in (17, 21, 26):
        assert P.encode_error(code) == framed(GOLDEN["reply_error_%d" % code])


# ------------------------------------------------------------------ status


def expected_status(payload: bytes):
    """decode_status's result computed independently: refcodec term + socket.inet_ntop."""
    state, nodes = refcodec.decode(payload)
    out = []
    for nid, addr in nodes:
        assert isinstance(nid, bytes)
        text_id = nid.split(b"\x00", 1)[0].decode("utf-8", "replace")
        if isinstance(addr, tuple) and len(addr) == 4:
            text_addr = socket.inet_ntop(socket.AF_INET, bytes(addr))
        elif isinstance(addr, tuple) and len(addr) == 8:
            text_addr = socket.inet_ntop(socket.AF_INET6, struct.pack(">8H", *addr))
        elif isinstance(addr, bytes):
            text_addr = addr.decode("utf-8", "replace")
        else:
            text_addr = bytes(addr).decode("utf-8", "replace")
        out.append({"nodeid": text_id, "address": text_addr})
    return state, out


STATUS_NAMES = sorted(n for n in GOLDEN if n.startswith("status_") or "_status_" in n)


def test_status_vectors_present():
    assert {"status_none", "status_secondary", "status_primary_ipv4", "status_primary_ipv6",
            "status_relay", "status_primary_255_nodes", "status_primary_straddr",
            "decode_only_status_string_addr"} <= set(STATUS_NAMES)


@pytest.mark.parametrize("name", STATUS_NAMES)
def test_decode_status_of_golden(name):
    assert P.decode_status(GOLDEN[name]) == expected_status(GOLDEN[name])


def test_decode_status_spot_values():
    # A few literal results, so a shared mistake in expected_status() cannot hide.
    assert P.decode_status(GOLDEN["status_none"]) == (1, [])
    assert P.decode_status(GOLDEN["status_primary_ipv6"]) == (
        3, [{"nodeid": "n2", "address": "2001:db8::2"}])
    assert P.decode_status(GOLDEN["status_primary_straddr"]) == (
        3, [{"nodeid": "n2", "address": "secondary.example"}])
    assert P.decode_status(GOLDEN["decode_only_status_string_addr"]) == (
        3, [{"nodeid": "n2", "address": "secondary.example"}])
    state, nodes = P.decode_status(GOLDEN["status_primary_255_nodes"])
    assert state == 3 and len(nodes) == 255
    assert nodes[0] == {"nodeid": "n000", "address": "10.0.0.0"}
    assert nodes[254] == {"nodeid": "n254", "address": "10.0.1.254"}


@pytest.mark.parametrize("name", sorted(n for n in STATUS_NAMES if n.startswith("status_")))
def test_encode_status_matches_golden(name):
    state, nodes = VECTORS[name]
    assert P.encode_status(state, nodes) == framed(GOLDEN[name])


# ------------------------------------------------------------------ event socket

EVENT_CALLS = {
    "subscribe_ha_info": lambda: _notifications.encode_subscription(P.NOTIF_HA_INFO),
    "subscribe_ha_info_sync":
        lambda: _notifications.encode_subscription(P.NOTIF_HA_INFO | P.NOTIF_HA_INFO_SYNC),
    "event_noprimary_closed": lambda: _notifications.encode_event(1, 26),
    "event_noprimary_notick": lambda: _notifications.encode_event(1, 31),
    "event_secondary_died": lambda: _notifications.encode_event(2, (b"n2", _address.address_term("10.0.0.2"))),
    "event_secondary_arrived": lambda: _notifications.encode_event(3, (b"n2", _address.address_term("10.0.0.2"))),
    "event_secondary_arrived_ipv6":
        lambda: _notifications.encode_event(3, (b"n2", _address.address_term("2001:db8::2"))),
    "event_secondary_initialized_copy": lambda: _notifications.encode_event(4, 1),
    "event_secondary_initialized_nocopy": lambda: _notifications.encode_event(4, 0),
    "event_is_primary": lambda: _notifications.encode_event(5, 0),
    "event_is_none": lambda: _notifications.encode_event(6, 0),
    "event_besecondary_result_ok": lambda: _notifications.encode_event(7, 0),
    "event_besecondary_result_badtoken": lambda: _notifications.encode_event(7, 28),
    "event_ack_ha_synced": lambda: _notifications.HA_SYNCED_FRAME,
}


def test_every_event_vector_has_a_call():
    names = {n for n in GOLDEN if n.startswith("event_")} | {
        n for n in GOLDEN if n.startswith("subscribe_") and not n.endswith("4tuple")}
    assert names == set(EVENT_CALLS)


# The frames the client sends carry atoms as libconfd 8.2.5 encodes them, SMALL_ATOM_UTF8
# (observed by tests/differential), where term_to_binary (minor_version 1) writes ATOM: the
# same terms, other bytes.
LIBCONFD_FRAMES = {
    "subscribe_ha_info": "000000168368056140610061007709756e646566696e65646100",
    "subscribe_ha_info_sync": "000000198368056200100040610061007709756e646566696e65646100",
    "event_ack_ha_synced": "0000000c83770968615f73796e636564",
}


@pytest.mark.parametrize("name", sorted(EVENT_CALLS))
def test_event_encoders_match_golden(name):
    ours = EVENT_CALLS[name]()
    if name in LIBCONFD_FRAMES:
        assert ours.hex() == LIBCONFD_FRAMES[name]
        assert same_term(_codec.decode(ours[4:]), _codec.decode(GOLDEN[name]))
    else:
        assert ours.hex() == framed(GOLDEN[name]).hex()


@pytest.mark.parametrize("name, mask", [
    ("subscribe_ha_info", 64),
    ("subscribe_ha_info_sync", 1048640),
    ("subscribe_ha_info_4tuple", 64),
])
def test_decode_subscription_of_golden(name, mask):
    assert _notifications.decode_subscription(GOLDEN[name]) == mask


# ------------------------------------------------------------------ peer protocol


PEER = sorted(n for n in GOLDEN if n.startswith("peer_"))


@pytest.mark.parametrize("name", PEER)
def test_peer_terms_round_trip_golden(name):
    assert _codec.encode_frame(VECTORS[name]) == framed(GOLDEN[name])
    assert same_term(_codec.decode(GOLDEN[name]), VECTORS[name])


# Client side of the event socket: the daemon's event frames decoded (W-24, W-31).
NOTIFICATIONS = {
    "event_noprimary_closed": (1, 26),
    "event_noprimary_notick": (1, 31),
    "event_secondary_died": (2, (b"n2", _address.AF_INET, "10.0.0.2")),
    "event_secondary_arrived": (3, (b"n2", _address.AF_INET, "10.0.0.2")),
    "event_secondary_arrived_ipv6": (3, (b"n2", _address.AF_INET6, "2001:db8::2")),
    "event_secondary_initialized_copy": (4, 1),
    "event_secondary_initialized_nocopy": (4, 0),
    "event_is_primary": (5, None),
    "event_is_none": (6, None),
    "event_besecondary_result_ok": (7, 0),
    "event_besecondary_result_badtoken": (7, 28),
}


def test_every_daemon_event_vector_is_decoded():
    names = {n for n in GOLDEN if n.startswith("event_") and n != "event_ack_ha_synced"}
    assert names == set(NOTIFICATIONS)


@pytest.mark.parametrize("name", sorted(NOTIFICATIONS))
def test_decode_notification_of_golden(name):
    ha_type, data = NOTIFICATIONS[name]
    note = _notifications.decode_notification(GOLDEN[name])
    assert (note.kind, note.ha_type) == (P.NOTIF_HA_INFO, ha_type)
    if isinstance(data, tuple):
        nodeid, af, address = data
        assert note.data.nodeid == Value(nodeid)
        assert note.data.nodeid.confd_type() == confd_ha.C_BUF
        assert (note.data.af, note.data.address) == (af, address)
    else:
        assert note.data == data and type(note.data) is type(data)


def test_decode_subscription_reply_of_golden():
    assert _notifications.decode_subscription_reply(GOLDEN["reply_ok"]) is None
    with pytest.raises(Error) as info:
        _notifications.decode_subscription_reply(GOLDEN["reply_error_21"])
    assert info.value.confd_errno == 21
