"""HA events as a scripted fake daemon (``fakedaemon``) sends them and as the client reads
them, shared by the events, asyncio and hostile-daemon tests of the client.

The daemon's bytes are the worked frames of wire-protocol.md §12.3 (hex copied from the document),
Erlang's golden vectors, or terms built by the independent reference codec -- never
confd_ha's own encoder.
"""

from __future__ import annotations

import socket

import refcodec
from confd_ha import events
from confd_ha.value import C_BUF, C_INT32, C_IPV4, Value
from fakedaemon import (
    SPEC, close, expect, expect_frame, frame, golden_frame, hx, reset, send, term_frame,
)

A = refcodec.Atom

# wire-protocol.md §12.1 / §12.3, as printed there.
EV = {
    # The client's bytes are libconfd 8.2.5's (observed by tests/differential): hello bytes
    # 7-8 are 14 09, and its atoms are SMALL_ATOM_UTF8 (77).
    "hello": hx("0B 00 52 08 02 05 00 14 09"),
    "hello_v2": hx("CB 00 52 08 02 05 00 14 09"),   # 11 | 0xC0 (§4.2)
    "subscribe_ha": hx("00 00 00 16 83 68 05 61 40 61 00 61 00 77 09 75 6E 64 65 66 69 6E"
                       "65 64 61 00"),
    "subscribe_ha_sync": hx("00 00 00 19 83 68 05 62 00 10 00 40 61 00 61 00 77 09 75 6E 64"
                            "65 66 69 6E 65 64 61 00"),
    "reply_ok": hx("00 00 00 06 83 64 00 02 6F 6B"),
    "noprimary_closed": hx("00 00 00 0B 83 68 02 61 40 68 02 61 01 61 1A"),
    "secondary_died": hx("00 00 00 1C 83 68 02 61 40 68 02 61 02 68 02 6D 00 00 00 02 6E 32"
                         "68 04 61 0A 61 00 61 00 61 02"),
    "secondary_arrived": hx("00 00 00 1C 83 68 02 61 40 68 02 61 03 68 02 6D 00 00 00 02 6E 32"
                            "68 04 61 0A 61 00 61 00 61 02"),
    "initialized_copy": hx("00 00 00 0B 83 68 02 61 40 68 02 61 04 61 01"),
    "is_primary": hx("00 00 00 0B 83 68 02 61 40 68 02 61 05 61 00"),
    "is_none": hx("00 00 00 0B 83 68 02 61 40 68 02 61 06 61 00"),
    "besecondary_result_ok": hx("00 00 00 0B 83 68 02 61 40 68 02 61 07 61 00"),
    "besecondary_result_badtoken": hx("00 00 00 0B 83 68 02 61 40 68 02 61 07 61 1C"),
    "ha_synced": hx("00 00 00 0C 83 77 09 68 61 5F 73 79 6E 63 65 64"),
}

HA_MASK = events.NOTIF_HA_INFO
SYNC_MASK = events.NOTIF_HA_INFO | events.NOTIF_HA_INFO_SYNC
AF_INET, AF_INET6, AF_UNSPEC = int(socket.AF_INET), int(socket.AF_INET6), int(socket.AF_UNSPEC)


def subscribed(reply: bytes = EV["reply_ok"]) -> list:
    """The daemon side of notifications_connect: hello, reply, subscription, its reply."""
    return [expect(9, "hello"), send(SPEC["reply_accepted"]), expect_frame("sub"), send(reply)]


def node(nodeid, af, key, text):
    """A node as an event names it: its id, address family and address."""
    return {"nodeid": nodeid, "af": af, key: text}


def ha_event(hnot):
    """An HA_INFO notification as read_notification returns it."""
    return {"type": 64, "hnot": hnot}


N2_V4 = node(Value("n2", C_BUF), AF_INET, "ip4", "10.0.0.2")

# (daemon frame, expected dict) for every event type and shape.
EVENT_CASES = {
    "noprimary_closed": (EV["noprimary_closed"],
                         ha_event({"type": 1, "noprimary": 26, "nomaster": 26})),
    "noprimary_notick": (golden_frame("event_noprimary_notick"),
                         ha_event({"type": 1, "noprimary": 31, "nomaster": 31})),
    "secondary_died": (EV["secondary_died"],
                       ha_event({"type": 2, "secondary_died": N2_V4, "slave_died": N2_V4})),
    "secondary_arrived": (EV["secondary_arrived"],
                          ha_event({"type": 3, "secondary_arrived": N2_V4,
                                    "slave_arrived": N2_V4})),
    "secondary_arrived_ipv6": (
        golden_frame("event_secondary_arrived_ipv6"),
        ha_event({"type": 3,
            "secondary_arrived": node(Value("n2", C_BUF), AF_INET6, "ip6", "2001:db8::2"),
            "slave_arrived": node(Value("n2", C_BUF), AF_INET6, "ip6", "2001:db8::2")})),
    "secondary_died_ipv6_loopback": (
        term_frame((64, (2, (b"n3", (0, 0, 0, 0, 0, 0, 0, 1))))),
        ha_event({"type": 2, "secondary_died": node(Value("n3", C_BUF), AF_INET6, "ip6", "::1"),
            "slave_died": node(Value("n3", C_BUF), AF_INET6, "ip6", "::1")})),
    "secondary_arrived_string_binary": (
        term_frame((64, (3, (b"n2", b"secondary.example")))),
        ha_event({"type": 3,
            "secondary_arrived": node(Value("n2", C_BUF), AF_UNSPEC, "str", "secondary.example"),
            "slave_arrived": node(Value("n2", C_BUF), AF_UNSPEC, "str", "secondary.example")})),
    # STRING (tag 107) address, written by hand: the reference encoder never emits it.
    "secondary_died_string_tag107": (
        frame(hx("83 68 02 61 40 68 02 61 02 68 02 6D 00 00 00 02 6E 32 6B 00 03") + b"h.x"),
        ha_event({"type": 2, "secondary_died": node(Value("n2", C_BUF), AF_UNSPEC, "str", "h.x"),
            "slave_died": node(Value("n2", C_BUF), AF_UNSPEC, "str", "h.x")})),
    "secondary_died_string_list": (
        term_frame((64, (2, (b"n2", list(b"ext-ipc:9"))))),
        ha_event({"type": 2,
                  "secondary_died": node(Value("n2", C_BUF), AF_UNSPEC, "str", "ext-ipc:9"),
                  "slave_died": node(Value("n2", C_BUF), AF_UNSPEC, "str", "ext-ipc:9")})),
    "secondary_died_int_nodeid": (
        term_frame((64, (2, (7, (10, 0, 0, 7))))),
        ha_event({"type": 2, "secondary_died": node(Value(7, C_INT32), AF_INET, "ip4", "10.0.0.7"),
            "slave_died": node(Value(7, C_INT32), AF_INET, "ip4", "10.0.0.7")})),
    "secondary_arrived_ipv4_nodeid": (
        term_frame((64, (3, ((192, 168, 0, 1), (192, 168, 0, 1))))),
        ha_event({"type": 3,
            "secondary_arrived": node(Value("192.168.0.1", C_IPV4), AF_INET, "ip4", "192.168.0.1"),
            "slave_arrived": node(Value("192.168.0.1", C_IPV4), AF_INET, "ip4", "192.168.0.1")})),
    "initialized_copy": (EV["initialized_copy"],
                         ha_event({"type": 4, "cdb_initialized_by_copy": 1})),
    "initialized_nocopy": (golden_frame("event_secondary_initialized_nocopy"),
                           ha_event({"type": 4, "cdb_initialized_by_copy": 0})),
    "is_primary": (EV["is_primary"], ha_event({"type": 5})),
    "is_none": (EV["is_none"], ha_event({"type": 6})),
    "is_primary_1tuple": (term_frame((64, (5,))), ha_event({"type": 5})),
    "is_none_1tuple": (term_frame((64, (6,))), ha_event({"type": 6})),
    "is_primary_odd_data": (term_frame((64, (5, (A("x"), b"y")))), ha_event({"type": 5})),
    "is_none_binary_data": (term_frame((64, (6, b"whatever", 3))), ha_event({"type": 6})),
    "besecondary_result_ok": (EV["besecondary_result_ok"],
                              ha_event({"type": 7, "besecondary_result": 0, "beslave_result": 0})),
    "besecondary_result_badtoken": (EV["besecondary_result_badtoken"],
                                    ha_event({"type": 7, "besecondary_result": 28,
                                        "beslave_result": 28})),
    "besecondary_result_badstate": (term_frame((64, (7, 17))),
                                    ha_event({"type": 7, "besecondary_result": 17,
                                        "beslave_result": 17})),
    "unknown_ha_type": (term_frame((64, (9, 1))), ha_event({"type": 9})),
    "unknown_ha_type_1tuple": (term_frame((64, (0,))), ha_event({"type": 0})),
    "unknown_ha_type_big": (term_frame((64, (1 << 40, A("x"), b"y"))), ha_event({"type": 1 << 40})),
    "other_kind_heartbeat": (term_frame((8192,)), {"type": 8192}),
    "other_kind_audit": (term_frame((1, 12, b"admin", 3, b"msg")), {"type": 1}),
    "other_kind_big": (term_frame((1 << 30, [])), {"type": 1 << 30}),
}

# Event frames the client must refuse (ERR_PROTOUSAGE), each one frame long.
MALFORMED = {
    "bare_atom": term_frame(A("ok")),
    "empty_tuple": term_frame(()),
    "binary_kind": term_frame((b"x", 1)),
    "ha_without_body": term_frame((64,)),
    "ha_body_not_tuple": term_frame((64, 1)),
    "ha_body_empty": term_frame((64, ())),
    "ha_type_not_int": term_frame((64, (A("noprimary"), 26))),
    "ha_three_elements": term_frame((64, (1, 26), 0)),
    "noprimary_1tuple": term_frame((64, (1,))),
    "noprimary_binary": term_frame((64, (1, b"26"))),
    "initialized_atom": term_frame((64, (4, A("true")))),
    "result_extra": term_frame((64, (7, 0, 0))),
    "died_no_tuple": term_frame((64, (2, b"n2"))),
    "died_bad_address": term_frame((64, (2, (b"n2", (10, 0, 0))))),
    "died_address_out_of_range": term_frame((64, (2, (b"n2", (10, 0, 0, 256))))),
    "died_address_atom": term_frame((64, (2, (b"n2", A("localhost"))))),
    "arrived_bad_nodeid": term_frame((64, (3, ((99, b"x"), (10, 0, 0, 1))))),
    "arrived_3tuple": term_frame((64, (3, (b"n2", (10, 0, 0, 1), 0)))),
    "not_etf": frame(b"\x00\x01\x02"),
    "empty_frame": frame(b""),
    "truncated_term": frame(hx("83 68 02 61 40 68 02 61 01")),
    "trailing_bytes": frame(hx("83 68 02 61 40 68 02 61 05 61 00 00")),
    "compressed": frame(hx("83 50 00 00 00 05 78 9C CB 60 60 00 00 00 53 00 0C")),
}

# The daemon side of a notifications_connect that ends (EOF or reset) at each step.
ACCEPT = SPEC["reply_accepted"]
CONNECT_EOF_SCRIPTS = {
    "before_hello_reply": [expect(9, "hello"), close()],
    "reset_before_hello_reply": [expect(9, "hello"), reset()],
    "inside_hello_reply": [expect(9, "hello"), send(ACCEPT[:4]), close()],
    "after_hello_reply": [expect(9, "hello"), send(ACCEPT), close()],
    "before_subscription_reply": [expect(9, "hello"), send(ACCEPT), expect_frame("sub"), close()],
    "reset_before_subscription_reply": [expect(9, "hello"), send(ACCEPT), expect_frame("sub"),
                                        reset()],
    "inside_reply_header": [expect(9, "hello"), send(ACCEPT), expect_frame("sub"),
                            send(EV["reply_ok"][:2]), close()],
    "inside_reply_payload": [expect(9, "hello"), send(ACCEPT), expect_frame("sub"),
                             send(EV["reply_ok"][:7]), close()],
}


# ---------------------------------------------------------------- events of emulated nodes

TICK = 0.1          # seconds: the emulated clusters' tick; a dead peer is noticed after 3


def node_dict(nodeid: str, address: str) -> dict:
    """A node with a string id at an IPv4 address, as an event names it."""
    return node(Value(nodeid, C_BUF), AF_INET, "ip4", address)


IS_PRIMARY = {"type": events.HA_INFO_IS_PRIMARY}
IS_NONE = {"type": events.HA_INFO_IS_NONE}


def initialized(copy: int) -> dict:
    return {"type": events.HA_INFO_SECONDARY_INITIALIZED, "cdb_initialized_by_copy": copy}


def result(code: int) -> dict:
    return {"type": events.HA_INFO_BESECONDARY_RESULT, "besecondary_result": code,
            "beslave_result": code}


def noprimary(code: int) -> dict:
    return {"type": events.HA_INFO_NOPRIMARY, "noprimary": code, "nomaster": code}


def arrived(nodeid: str, address: str) -> dict:
    nd = node_dict(nodeid, address)
    return {"type": events.HA_INFO_SECONDARY_ARRIVED, "secondary_arrived": nd,
            "slave_arrived": dict(nd)}


def died(nodeid: str, address: str) -> dict:
    nd = node_dict(nodeid, address)
    return {"type": events.HA_INFO_SECONDARY_DIED, "secondary_died": nd, "slave_died": dict(nd)}
