"""status() against a scripted fake daemon: every reply form of wire-protocol §6.6 / §7
(W-20, W-22, W-23, W-25), sent as the spec's worked frames, Erlang golden vectors or
reference-codec frames.
"""

from __future__ import annotations

import pytest

import confd_ha as ha
from confd_ha import error
from fakedaemon import (  # noqa: F401 -- fixtures
    SPEC, TOKEN, A, clean_client_env, expect_frame, golden_frame, ha_connected, raises, send,
    term_frame, token_never_logged,
)


def status_of(daemons, reply: bytes, family: str = "inet"):
    """Run status() against a daemon answering ``reply``; checks the request bytes."""
    d = daemons([ha_connected(), expect_frame("order"), send(reply)], family=family)
    s = d.client_socket()
    ha.connect(s, TOKEN, **d.where)
    try:
        return ha.status(s)
    finally:
        s.close()
        (rec,) = d.finish()
        assert rec["order"] == SPEC["getstatus"]


def node(nodeid, address):
    return {"nodeid": nodeid, "address": address}


def test_status_none(daemons):
    assert status_of(daemons, SPEC["status_none"]) == (1, [])
    assert status_of(daemons, golden_frame("status_none")) == (ha.STATE_NONE, [])


def test_status_secondary(daemons):
    assert status_of(daemons, SPEC["status_secondary"]) == (
        ha.STATE_SECONDARY, [node("n1", "10.0.0.1")])


def test_status_primary_ipv4(daemons):
    assert status_of(daemons, SPEC["status_primary_v4"]) == (
        ha.STATE_PRIMARY, [node("n2", "10.0.0.2")])


@pytest.mark.parametrize("family", ["inet", "inet6", "unix"])
def test_status_primary_ipv6_compressed_text(daemons, family):
    """W-23: IPv6 shown as inet_ntop(AF_INET6) text (a deliberate deviation)."""
    assert status_of(daemons, SPEC["status_primary_v6"], family) == (
        3, [node("n2", "2001:db8::2")])
    assert status_of(daemons, golden_frame("status_primary_ipv6"), family) == (
        3, [node("n2", "2001:db8::2")])


@pytest.mark.parametrize("words,text", [
    ((0, 0, 0, 0, 0, 0, 0, 1), "::1"),
    ((0, 0, 0, 0, 0, 0, 0, 0), "::"),
    ((0xFE80, 0, 0, 0, 0x0202, 0xB3FF, 0xFE1E, 0x8329), "fe80::202:b3ff:fe1e:8329"),
    ((0x2001, 0xDB8, 0, 1, 0, 0, 0, 1), "2001:db8:0:1::1"),
    ((0x2001, 0xDB8, 0, 0, 1, 0, 0, 1), "2001:db8::1:0:0:1"),
    ((1, 0, 1, 0, 1, 0, 1, 0), "1:0:1:0:1:0:1:0"),
    ((0, 0, 0, 0, 0, 0xFFFF, 0x0A00, 0x0001), "::ffff:10.0.0.1"),
    ((0xFFFF,) * 8, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
])
def test_status_ipv6_forms(daemons, words, text):
    assert status_of(daemons, term_frame((3, [(b"n2", words)]))) == (3, [node("n2", text)])


def test_status_relay(daemons):
    assert status_of(daemons, SPEC["status_relay"]) == (
        ha.STATE_SECONDARY_RELAY, [node("n1", "10.0.0.1"), node("n3", "10.0.0.3")])


def test_status_255_nodes(daemons):
    state, nodes = status_of(daemons, golden_frame("status_primary_255_nodes"))
    assert state == 3
    assert nodes == [node("n%03d" % i, "10.0.%d.%d" % (i // 128, i)) for i in range(255)]


def test_status_more_than_255_nodes(daemons):
    """W-20: the client accepts lists of any length."""
    many = [(b"s%d" % i, (10, 1, i // 256, i % 256)) for i in range(1000)]
    state, nodes = status_of(daemons, term_frame((3, many)))
    assert len(nodes) == 1000 and nodes[999] == node("s999", "10.1.3.231")


@pytest.mark.parametrize("reply,addr", [
    (golden_frame("status_primary_straddr"), "secondary.example"),
    (golden_frame("decode_only_status_string_addr"), "secondary.example"),   # STRING, tag 107
    (term_frame((3, [(b"n2", list(b"secondary.example"))])), "secondary.example"),  # LIST
    (term_frame((3, [(b"n2", b"h\xc3\xa5st")])), "h\u00e5st"),
    (term_frame((3, [(b"n2", b"bad\xff")])), "bad\ufffd"),
    (term_frame((3, [(b"n2", b"")])), ""),
])
def test_status_string_addresses(daemons, reply, addr):
    assert status_of(daemons, reply) == (3, [node("n2", addr)])


@pytest.mark.parametrize("term,text", [
    (5, "5"),
    (-100000, "-100000"),
    ((12, 5), "5"),
    ((9, 5000000000), "5000000000"),
    (A("true"), "true"),
    ((10, 0, 0, 9), "10.0.0.9"),
    (2.5, "2.5"),
])
def test_status_non_binary_node_ids(daemons, term, text):
    """W-25: non-binary node ids become str() of the decoded Value."""
    assert status_of(daemons, term_frame((3, [(term, (10, 0, 0, 2))]))) == (
        3, [node(text, "10.0.0.2")])


def test_status_mixed_node_ids(daemons):
    reply = term_frame((4, [(b"n1", (10, 0, 0, 1)), ((12, 7), (10, 0, 0, 3)),
                            (b"n4\x00junk", list(b"relay.example"))]))
    assert status_of(daemons, reply) == (4, [node("n1", "10.0.0.1"), node("7", "10.0.0.3"),
                                             node("n4", "relay.example")])


@pytest.mark.parametrize("raw,text", [
    (b"n1\x00junk", "n1"),
    (b"\x00all-cut", ""),
    (b"n\xff1", "n\ufffd1"),
    (b"\xc3", "\ufffd"),
    ("n\u00f8de-\u03bb".encode(), "n\u00f8de-\u03bb"),
    (b"x" * 300, "x" * 300),
])
def test_status_binary_node_id_text(daemons, raw, text):
    assert status_of(daemons, term_frame((3, [(raw, (10, 0, 0, 2)), (b"n3", (10, 0, 0, 3))]))) == (
        3, [node(text, "10.0.0.2"), node("n3", "10.0.0.3")])


def test_status_cut_node_id_with_generic_path(daemons):
    """The same NUL rule when another node forces the generic decoder."""
    reply = term_frame((3, [(5, (10, 0, 0, 1)), (b"n1\x00junk", (10, 0, 0, 2)),
                            (b"n\xff", (10, 0, 0, 3))]))
    assert status_of(daemons, reply) == (3, [node("5", "10.0.0.1"), node("n1", "10.0.0.2"),
                                             node("n\ufffd", "10.0.0.3")])


@pytest.mark.parametrize("state", [0, 5, 9, 255, 256, 70000, -1, 2**40])
def test_status_unknown_state_returned_unchanged(daemons, state):
    assert status_of(daemons, term_frame((state, []))) == (state, [])
    assert status_of(daemons, term_frame((state, [(b"n1", (10, 0, 0, 1))]))) == (
        state, [node("n1", "10.0.0.1")])


BAD_STATUS = {
    "ok_atom": SPEC["reply_ok"],
    "error_tuple": SPEC["reply_error_17"],
    "state_atom": term_frame((A("x"), [])),
    "one_tuple": term_frame((1,)),
    "three_tuple": term_frame((1, [], 0)),
    "nodes_not_list": term_frame((3, (b"n1", (10, 0, 0, 1)))),
    "node_not_pair": term_frame((3, [42])),
    "node_triple": term_frame((3, [(b"n1", (10, 0, 0, 1), 7)])),
    "addr_5_tuple": term_frame((3, [(b"n1", (10, 0, 0, 1, 1))])),
    "addr_v4_out_of_range": term_frame((3, [(b"n1", (10, 0, 0, 256))])),
    "addr_v6_out_of_range": term_frame((3, [(b"n1", (0, 0, 0, 0, 0, 0, 0, 65536))])),
    "addr_int": term_frame((3, [(b"n1", 167772161)])),
    "addr_list_big_ints": term_frame((3, [(b"n1", [1000])])),
    "addr_atom": term_frame((3, [(b"n1", A("localhost"))])),
    "state_float": term_frame((1.0, [])),
    "nodeid_3tuple": term_frame((3, [((1, 2, 3), (10, 0, 0, 1))])),
    "nodeid_pid_like": term_frame((3, [((A("x"), 1), (10, 0, 0, 1))])),
}


def test_status_atom_node_id_is_its_name(daemons):
    # As libconfd reads it (observed with Cisco's module): an atom node id is its name.
    assert status_of(daemons, term_frame((3, [(A("foo"), (10, 0, 0, 1))]))) == \
        (3, [{"nodeid": "foo", "address": "10.0.0.1"}])


@pytest.mark.parametrize("kind", sorted(BAD_STATUS))
def test_status_bad_shapes(daemons, kind):
    e = raises(error.Error, status_of, daemons, BAD_STATUS[kind])
    assert e.confd_errno == error.ERR_PROTOUSAGE == 21


BAD_STATUS_AFTER_GENERIC = {
    # A first node with a non-binary id sends the decoder down its generic path; the later
    # malformed entries must still give ERR_PROTOUSAGE, not a Python TypeError/ValueError.
    "int_after_generic": term_frame((3, [(5, (10, 0, 0, 1)), 42])),
    "triple_after_generic": term_frame((3, [(5, (10, 0, 0, 1)), (b"a", (1, 2, 3, 4), 7)])),
    "single_after_list_addr": term_frame((3, [(b"x", list(b"h")), (b"y",)])),
    "binary_after_generic": term_frame((3, [(5, (10, 0, 0, 1)), b"n2"])),
}


@pytest.mark.parametrize("kind", sorted(BAD_STATUS_AFTER_GENERIC))
def test_status_bad_shapes_after_generic_node(daemons, kind):
    e = raises(error.Error, status_of, daemons, BAD_STATUS_AFTER_GENERIC[kind])
    assert e.confd_errno == error.ERR_PROTOUSAGE == 21
