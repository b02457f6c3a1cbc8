"""Every HA order against a scripted fake daemon: exact request bytes (wire-protocol §12.2 and
Erlang golden vectors), reply handling (§6.5, W-18, W-19), node-id coercion (§7.2, W-26) and
argument checking.
"""

from __future__ import annotations

import threading
import time

import pytest

import confd_ha as ha
from confd_ha import Value, error
from fakedaemon import (  # noqa: F401 -- fixtures
    SPEC, TOKEN, A, clean_client_env, expect_frame, golden_frame, ha_connected, mark, raises,
    send, sleep, term_frame, token_never_logged,
)


def session(daemons, *steps, family="inet", timeout=2.0):
    """A daemon that completes the HA connect then runs ``steps``; returns (daemon, socket)."""
    d = daemons([ha_connected(), list(steps)], family=family)
    s = d.client_socket(timeout=timeout)
    ha.connect(s, TOKEN, **d.where)
    return d, s


def finish(d, s):
    s.close()
    (rec,) = d.finish()
    return rec


def order_reply(name="order", reply=SPEC["reply_ok"]):
    return [expect_frame(name), send(reply)]


# ---------------------------------------------------------------- request bytes


@pytest.mark.parametrize("fn", [ha.beprimary, ha.bemaster])
@pytest.mark.parametrize("family", ["inet", "inet6", "unix"])
def test_beprimary(daemons, fn, family):
    d, s = session(daemons, order_reply(), family=family)
    assert fn(s, "n1") is None
    rec = finish(d, s)
    assert rec["order"] == SPEC["beprimary_n1"] == golden_frame("order_beprimary_n1")
    assert rec.extra == b""


BESECONDARY_CALLS = {
    "positional": lambda s: ha.besecondary(s, "n2", "n1", "10.0.0.1", 1),
    "positional_true": lambda s: ha.besecondary(s, "n2", "n1", "10.0.0.1", True),
    "new_keywords": lambda s: ha.besecondary(s, "n2", primary_id="n1", primary_ip="10.0.0.1",
                                             waitreply=1),
    "old_keywords": lambda s: ha.besecondary(s, "n2", masterid="n1", masterip="10.0.0.1",
                                             waitreply=True),
    "beslave_positional": lambda s: ha.beslave(s, "n2", "n1", "10.0.0.1", 1),
    "beslave_old_keywords": lambda s: ha.beslave(s, mynodeid="n2", masterid="n1",
                                                 masterip="10.0.0.1", waitreply=7),
}


@pytest.mark.parametrize("how", sorted(BESECONDARY_CALLS))
def test_besecondary_ipv4_wait(daemons, how):
    d, s = session(daemons, order_reply())
    assert BESECONDARY_CALLS[how](s) is None
    rec = finish(d, s)
    assert rec["order"] == SPEC["besecondary_v4_wait1"]
    assert rec["order"] == golden_frame("order_besecondary_ipv4_wait1")


def test_besecondary_ipv6_wait1(daemons):
    d, s = session(daemons, order_reply())
    ha.besecondary(s, "n2", "n1", "2001:db8::1", 1)
    assert finish(d, s)["order"] == golden_frame("order_besecondary_ipv6_wait1")


def test_besecondary_wait1_error_reply(daemons):
    d, s = session(daemons, order_reply(reply=SPEC["reply_error_26"]))
    e = raises(error.Error, ha.besecondary, s, "n2", "n1", "10.0.0.1", 1)
    assert e.confd_errno == error.ERR_HA_CLOSED == 26
    finish(d, s)


@pytest.mark.parametrize("wait", [0, False])
@pytest.mark.parametrize("ip,frame", [("10.0.0.1", "besecondary_v4_wait0"),
                                      ("::1", "besecondary_v6_wait0")])
def test_besecondary_nowait_reads_nothing(daemons, wait, ip, frame):
    """waitreply false: the frame is sent and nothing is read. The daemon answers nothing;
    with a 1 s socket timeout any read would raise Timeout, so a prompt normal return proves
    no read happened. The following status() then gets exactly its own reply."""
    d, s = session(daemons, expect_frame("order"), sleep(0.3), mark("quiet"),
                   expect_frame("status"), send(SPEC["status_secondary"]), timeout=1.0)
    assert ha.besecondary(s, "n2", "n1", ip, wait) is None
    returned = time.monotonic()
    assert ha.status(s) == (2, [{"nodeid": "n1", "address": "10.0.0.1"}])
    rec = finish(d, s)
    assert rec["order"] == SPEC[frame]
    assert rec["status"] == SPEC["getstatus"]
    # The call returned while the daemon was still sitting quiet (it never answered it).
    assert returned < rec.times["quiet"] < rec.times["status"]


def test_besecondary_nowait_then_beprimary_reply_not_confused(daemons):
    d, s = session(daemons, expect_frame("order"), expect_frame("order2"),
                   send(SPEC["reply_error_17"]))
    ha.besecondary(s, "n2", "n1", "10.0.0.1", 0)
    e = raises(error.Error, ha.beprimary, s, "n1")
    assert e.confd_errno == 17
    rec = finish(d, s)
    assert rec["order2"] == SPEC["beprimary_n1"]


def test_benone(daemons):
    d, s = session(daemons, order_reply())
    assert ha.benone(s) is None
    assert finish(d, s)["order"] == SPEC["benone"] == golden_frame("order_benone")


def test_berelay(daemons):
    d, s = session(daemons, order_reply())
    assert ha.berelay(s) is None
    assert finish(d, s)["order"] == SPEC["berelay"] == golden_frame("order_berelay")


@pytest.mark.parametrize("fn", [ha.secondary_dead, ha.slave_dead])
def test_secondary_dead(daemons, fn):
    d, s = session(daemons, order_reply())
    assert fn(s, "n2") is None
    rec = finish(d, s)
    assert rec["order"] == SPEC["secondary_dead_n2"] == golden_frame("order_secondary_dead_n2")


def test_status_request(daemons):
    d, s = session(daemons, order_reply(reply=SPEC["status_none"]))
    assert ha.status(s) == (1, [])
    assert finish(d, s)["order"] == SPEC["getstatus"] == golden_frame("order_getstatus")


def test_many_orders_on_one_connection(daemons):
    steps = [order_reply("o%d" % i) for i in range(5)]
    d, s = session(daemons, *steps, order_reply("o5", SPEC["status_none"]))
    ha.beprimary(s, "n1")
    ha.besecondary(s, "n2", "n1", "10.0.0.1", 1)
    ha.berelay(s)
    ha.secondary_dead(s, "n2")
    ha.benone(s)
    ha.status(s)
    rec = finish(d, s)
    assert [rec["o%d" % i] for i in range(6)] == [
        SPEC["beprimary_n1"], SPEC["besecondary_v4_wait1"], SPEC["berelay"],
        SPEC["secondary_dead_n2"], SPEC["benone"], SPEC["getstatus"]]


# ---------------------------------------------------------------- replies


def test_reply_other_atom_is_success(daemons):
    d, s = session(daemons, order_reply(reply=term_frame(A("done"))))
    assert ha.beprimary(s, "n1") is None
    finish(d, s)


def test_reply_error_17(daemons):
    d, s = session(daemons, order_reply(reply=SPEC["reply_error_17"]))
    e = raises(error.Error, ha.beprimary, s, "n1")
    assert type(e) is error.Error
    assert e.confd_errno == error.ERR_BADSTATE == 17
    assert e.confd_strerror == "operation in wrong state"
    assert e.confd_lasterr == ""
    assert str(e) == "operation in wrong state (17): "
    finish(d, s)


@pytest.mark.parametrize("code", [0, -1, -2, 72, 1000])
def test_reply_error_any_code_is_an_error(daemons, code):
    # As libconfd (observed with Cisco's module): whatever the code, {error, Code} is an
    # Error with that code -- also -2, which is not EOF here -- and "Unknown error" text.
    d, s = session(daemons, order_reply(reply=term_frame((A("error"), code))))
    e = raises(error.Error, ha.beprimary, s, "n1")
    assert type(e) is error.Error
    assert (e.confd_errno, str(e)) == (code, "Unknown error (%d): " % code)
    finish(d, s)


@pytest.mark.parametrize("fn,args", [(ha.benone, ()), (ha.berelay, ()),
                                     (ha.secondary_dead, ("n2",))])
def test_reply_error_on_other_orders(daemons, fn, args):
    d, s = session(daemons, order_reply(reply=SPEC["reply_error_21"]))
    e = raises(error.Error, fn, s, *args)
    assert e.confd_errno == 21 and e.confd_lasterr == ""
    finish(d, s)


REASON_REPLIES = {
    "binary": (SPEC["reply_error_28_reason"], "bad token"),
    "binary_golden": (golden_frame("reply_error_28_reason"), "bad token"),
    "string_tag107": (golden_frame("decode_only_reply_error_28_string_reason"), "bad token"),
    "list_of_ints": (term_frame((A("error"), 28, list(b"bad token\x00"))), "bad token"),
    "binary_apptag": (golden_frame("reply_error_28_reason_apptag"), "x"),
    "no_trailing_nul": (term_frame((A("error"), 28, b"plain")), "plain"),
    "only_one_nul_stripped": (term_frame((A("error"), 28, b"ab\x00\x00")), "ab\x00"),
    "invalid_utf8": (term_frame((A("error"), 28, b"bad \xff\xfe\x00")), "bad \ufffd\ufffd"),
    "utf8": (term_frame((A("error"), 28, "n\u00e6\u03bb\x00".encode())), "n\u00e6\u03bb"),
    "empty": (term_frame((A("error"), 28, b"")), ""),
}


@pytest.mark.parametrize("kind", sorted(REASON_REPLIES))
def test_reply_error_with_reason(daemons, kind):
    reply, text = REASON_REPLIES[kind]
    d, s = session(daemons, order_reply(reply=reply))
    e = raises(error.Error, ha.beprimary, s, "n1")
    assert e.confd_errno == error.ERR_HA_BADTOKEN == 28
    assert e.confd_lasterr == text
    assert str(e) == "Remote HA node has bad credentials (28): " + text
    finish(d, s)


UNEXPECTED = {
    "tuple_ok": term_frame((A("ok"),)),
    "error_notanint": term_frame((A("error"), A("notanint"))),
    "int_42": term_frame(42),
    "list_ok": term_frame([A("ok")]),
    "binary_ok": term_frame(b"ok"),
    "error_alone": term_frame((A("error"),)),
    "error_reason_int": term_frame((A("error"), 28, 42)),
    "error_reason_big_ints": term_frame((A("error"), 28, [1000])),
    "error_4tuple": term_frame((A("error"), 28, b"r", 4)),
    "other_tag_tuple": term_frame((A("oops"), 17)),
    "error_code_too_big": term_frame((A("error"), 2**64 - 1)),
    "empty_list": term_frame([]),
    "status_shape": SPEC["status_none"],
}


@pytest.mark.parametrize("kind", sorted(UNEXPECTED))
def test_reply_unexpected_shape(daemons, kind):
    d, s = session(daemons, order_reply(reply=UNEXPECTED[kind]))
    e = raises(error.Error, ha.beprimary, s, "n1")
    assert e.confd_errno == error.ERR_PROTOUSAGE == 21
    assert e.confd_lasterr == "unexpected reply from daemon"
    finish(d, s)


def test_error_details_are_per_instance(daemons):
    """Two threads raising different errors at the same moment each see their own details."""
    d1, s1 = session(daemons, expect_frame("order"), sleep(0.1), send(SPEC["reply_error_17"]))
    d2, s2 = session(daemons, expect_frame("order"), sleep(0.1),
                     send(SPEC["reply_error_28_reason"]))
    barrier = threading.Barrier(2, timeout=2)
    got = {}

    def run(name, sock):
        barrier.wait()
        try:
            ha.beprimary(sock, "n1")
        except error.Error as exc:
            barrier.wait()          # both have raised before either looks at its exception
            got[name] = (exc.confd_errno, exc.confd_strerror, exc.confd_lasterr, str(exc))

    threads = [threading.Thread(target=run, args=("a", s1)),
               threading.Thread(target=run, args=("b", s2))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(3)
    assert got["a"] == (17, "operation in wrong state", "", "operation in wrong state (17): ")
    assert got["b"] == (28, "Remote HA node has bad credentials", "bad token",
                        "Remote HA node has bad credentials (28): bad token")
    finish(d1, s1)
    finish(d2, s2)


# ---------------------------------------------------------------- node ids


class DuckValue:
    """Shaped like Cisco's _confd.Value: confd_type() and as_pyval()."""

    def __init__(self, val, ctype):
        self._val, self._type = val, ctype

    def confd_type(self):
        return self._type

    def as_pyval(self):
        return self._val


NODE_IDS = {
    "str": "n1",
    "str_with_nul": "n1\x00ignored",
    "bytes": b"n1",
    "bytearray": bytearray(b"n1"),
    "value_buf": Value("n1"),
    "value_buf_typed": Value("n1", ha.C_BUF),
    "duck_buf_str": DuckValue("n1", ha.C_BUF),
    "duck_buf_bytes": DuckValue(b"n1", ha.C_BUF),
}


@pytest.mark.parametrize("kind", sorted(NODE_IDS))
def test_node_id_forms(daemons, kind):
    d, s = session(daemons, order_reply(), order_reply("dead"))
    ha.beprimary(s, NODE_IDS[kind])
    ha.secondary_dead(s, NODE_IDS[kind])
    rec = finish(d, s)
    assert rec["order"] == SPEC["beprimary_n1"]
    assert rec["dead"] == golden_frame("order_secondary_dead_n2").replace(b"n2", b"n1")


def test_node_id_non_ascii_str(daemons):
    d, s = session(daemons, order_reply())
    ha.beprimary(s, "n\u00f8de")
    raw = "n\u00f8de".encode()
    assert finish(d, s)["order"] == term_frame((1, raw))


VALUE_NODE_IDS = {
    "int32": Value(5),
    "int32_neg": Value(-100000),
    "int64": Value(5000000000, ha.C_INT64),
    "int8": Value(-5, ha.C_INT8),
    "uint32": Value(4000000000, ha.C_UINT32),
    "uint64_max": Value(2**64 - 1, ha.C_UINT64),
    "double": Value(2.5),
    "bool_true": Value(True),
    "ipv4": Value("10.0.0.1", ha.C_IPV4),
    "ipv6": Value("2001:db8::1", ha.C_IPV6),
    "enum": Value(3, ha.C_ENUM_VALUE),
    "list": Value(["a", "b"]),
    "buf_empty": Value(""),
    "noexists": Value(None, ha.C_NOEXISTS),
    "default": Value(None, ha.C_DEFAULT),
    "decimal64": Value((12345, 2), ha.C_DECIMAL64),
    "binary": Value(bytes([0, 1, 2, 255]), ha.C_BINARY),
}


@pytest.mark.parametrize("name", sorted(VALUE_NODE_IDS))
def test_value_node_ids_match_erlang(daemons, name):
    d, s = session(daemons, order_reply())
    ha.beprimary(s, VALUE_NODE_IDS[name])
    assert finish(d, s)["order"] == golden_frame("order_beprimary_nodeid_" + name)


def test_value_node_ids_in_besecondary(daemons):
    d, s = session(daemons, order_reply())
    ha.besecondary(s, Value(7), DuckValue(8, ha.C_INT32), "10.0.0.1", 1)
    assert finish(d, s)["order"] == golden_frame("order_besecondary_nodeids_int32_ipv4")


BAD_NODE_IDS = [5, 1.5, None, ["n1"], ("n1",), {"n": 1}, object()]


@pytest.mark.parametrize("bad", BAD_NODE_IDS, ids=lambda v: type(v).__name__)
def test_node_id_wrong_type(daemons, bad):
    d, s = session(daemons)
    msg = "mynodeid argument must be a _confd.Value or a string"
    with pytest.raises(TypeError, match=msg):
        ha.beprimary(s, bad)
    with pytest.raises(TypeError, match=msg):
        ha.besecondary(s, bad, "n1", "10.0.0.1", 1)
    # None is a value like any other (as in Cisco's module), not "argument not given".
    with pytest.raises(TypeError, match="primary_id argument must be"):
        ha.besecondary(s, "n2", bad, "10.0.0.1", 1)
    with pytest.raises(TypeError, match="masterid argument must be"):
        ha.besecondary(s, "n2", masterid=bad, masterip="10.0.0.1", waitreply=1)
    with pytest.raises(TypeError, match="nodeid argument must be a _confd.Value or a string"):
        ha.secondary_dead(s, bad)
    assert finish(d, s).extra == b""


MARKER_TYPES = [ha.C_XMLTAG, ha.C_SYMBOL, ha.C_XMLBEGIN, ha.C_XMLEND, ha.C_UNION, ha.C_PTR,
                ha.C_CDBBEGIN, ha.C_XMLBEGINDEL, ha.C_XMLMOVEFIRST, ha.C_XMLMOVEAFTER,
                ha.C_EMPTY]


@pytest.mark.parametrize("ctype", MARKER_TYPES)
def test_marker_value_is_badtype_before_sending(daemons, ctype):
    d, s = session(daemons)
    for node in (Value(1, ctype), DuckValue(1, ctype)):
        for fn, args in ((ha.beprimary, (node,)),
                         (ha.besecondary, (node, "n1", "10.0.0.1", 1)),
                         (ha.besecondary, ("n2", node, "10.0.0.1", 0)),
                         (ha.secondary_dead, (node,))):
            e = raises(error.Error, fn, s, *args)
            assert e.confd_errno == error.ERR_BADTYPE == 5
    rec = finish(d, s)
    assert rec.extra == b""           # nothing at all was sent after the token


# ---------------------------------------------------------------- other arguments


@pytest.mark.parametrize("ip", ["not-an-ip", "primary.example", "10.0.0.256", "1.2.3", "",
                                "::g", "10.0.0.1 "])
def test_invalid_primary_ip(daemons, ip):
    d, s = session(daemons)
    with pytest.raises(ValueError, match=r"^Invalid primary_ip address\.$"):
        ha.besecondary(s, "n2", "n1", ip, 1)
    with pytest.raises(ValueError, match=r"^Invalid primary_ip address\.$"):
        ha.besecondary(s, "n2", primary_id="n1", primary_ip=ip, waitreply=0)
    with pytest.raises(ValueError, match=r"^Invalid master address\.$"):
        ha.besecondary(s, "n2", masterid="n1", masterip=ip, waitreply=1)
    assert finish(d, s).extra == b""


@pytest.mark.parametrize("bad", ["1", 1.0, b"1", [1]], ids=repr)
def test_waitreply_must_be_int(daemons, bad):
    d, s = session(daemons)
    with pytest.raises(TypeError):
        ha.besecondary(s, "n2", "n1", "10.0.0.1", bad)
    assert finish(d, s).extra == b""


def test_besecondary_missing_and_duplicate_arguments(daemons):
    d, s = session(daemons)
    with pytest.raises(TypeError):
        ha.besecondary(s, "n2", "n1", "10.0.0.1")
    with pytest.raises(TypeError):
        ha.besecondary(s, "n2", "n1", waitreply=1)
    with pytest.raises(TypeError):
        ha.besecondary(s, "n2", "n1", "10.0.0.1", 1, masterid="n1")
    with pytest.raises(TypeError):
        ha.besecondary(s, "n2", "n1", 167772161, 1)      # an int is not an address
    assert finish(d, s).extra == b""


NOT_SOCKETS = [None, 3, "sock", object()]


class _HasFileno:
    def fileno(self):
        return 0


@pytest.mark.parametrize("bad", NOT_SOCKETS, ids=repr)
def test_non_socket_sock(bad):
    # As Cisco's module: an object without fileno() is an AttributeError naming it.
    for fn, args in ((ha.beprimary, ("n1",)), (ha.bemaster, ("n1",)),
                     (ha.besecondary, ("n2", "n1", "10.0.0.1", 1)),
                     (ha.besecondary, ("n2", "n1", "10.0.0.1", 0)),
                     (ha.benone, ()), (ha.berelay, ()), (ha.secondary_dead, ("n2",)),
                     (ha.status, ()), (ha.connect, (TOKEN, "127.0.0.1", 1))):
        with pytest.raises(AttributeError) as info:
            fn(bad, *args)
        assert str(info.value) == "'%s' object has no attribute 'fileno'" % type(bad).__name__


def test_object_with_fileno_is_not_a_socket():
    # confd_ha does its I/O through the socket object: anything else is a TypeError.
    for fn, args in ((ha.beprimary, ("n1",)), (ha.status, ()),
                     (ha.connect, (TOKEN, "127.0.0.1", 1))):
        with pytest.raises(TypeError, match="sock argument must be a socket"):
            fn(_HasFileno(), *args)
