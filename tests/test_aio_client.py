"""confd_ha.aio against a scripted fake daemon (real sockets).

Most tests run the same script twice -- once through the blocking API, once through the
asyncio API -- and require identical bytes on the wire and identical results or exceptions.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import threading

import pytest

import confd_ha as ha
from confd_ha import _handshake, aio, error, events
from confd_ha.value import C_BUF, C_XMLBEGIN, Value
from events_helpers import (
    CONNECT_EOF_SCRIPTS, EV, EVENT_CASES, HA_MASK, MALFORMED, SYNC_MASK, ha_event, subscribed,
)
from fakedaemon import (  # noqa: F401 -- fixtures
    SECRET, SPEC, TOKEN, TOKEN_BYTES, assert_no_secret, call, clean_client_env, close,
    expect, expect_frame, frame, golden_frame, ha_connected, hello_reply, hx, reset, send, sleep,
    term_frame, token_never_logged, use_access_file,
)
from net_helpers import dead_port
from waiting import wait_until_async

STEP = 5.0   # bound on every awaited test step


def arun(coro):
    return asyncio.run(asyncio.wait_for(coro, STEP))


def outcome(fn):
    """What a call did: ('ok', result) or ('raised', type, confd_errno, lasterr, text)."""
    try:
        return ("ok", fn())
    except (error.Error, error.EOF, TypeError, ValueError, OverflowError) as exc:
        assert_no_secret(exc)
        return ("raised", type(exc), getattr(exc, "confd_errno", None),
                getattr(exc, "confd_lasterr", None), str(exc))


async def aoutcome(coro):
    try:
        return ("ok", await coro)
    except (error.Error, error.EOF, TypeError, ValueError, OverflowError) as exc:
        assert_no_secret(exc)
        return ("raised", type(exc), getattr(exc, "confd_errno", None),
                getattr(exc, "confd_lasterr", None), str(exc))


# ---------------------------------------------------------------- the sans-I/O handshake


def test_exchange_flow_without_access_check():
    plan = _handshake.Plan(17, 82, 0x08020500, None, 2)
    flow = _handshake.exchange(plan, plan.proto_vsn, plan.lib_vsn)
    assert flow.send(None) == ("send", SPEC["hello"])
    assert flow.send(None) == ("recv", 9)
    with pytest.raises(StopIteration) as stop:
        flow.send(SPEC["reply_accepted"])
    assert tuple(stop.value.value) == (0, 82, 0x08020500, 60, 18)


@pytest.mark.parametrize("variant,hello,challenge,response", [
    (2, "hello_v2", "challenge_v2", "response_v2"), (1, "hello_v1", "challenge_v1", "response_v1")])
def test_exchange_flow_with_access_check(variant, hello, challenge, response):
    plan = _handshake.Plan(17, 82, 0x08020500, SECRET, variant)
    flow = _handshake.exchange(plan, 82, 0x08020500)
    assert flow.send(None) == ("send", SPEC[hello])
    assert flow.send(None) == ("recv", 1)
    rest = len(SPEC[challenge]) - 1
    assert flow.send(SPEC[challenge][:1]) == ("recv", rest)
    assert flow.send(SPEC[challenge][1:]) == ("send", SPEC[response])
    assert flow.send(None) == ("recv", 1)
    assert flow.send(b"\x00") == ("recv", 9)
    with pytest.raises(StopIteration):
        flow.send(SPEC["reply_accepted"])


def test_exchange_flow_rejects_a_non_challenge_at_once():
    flow = _handshake.exchange(_handshake.Plan(11, 82, 0x08020500, SECRET, 2), 82, 0x08020500)
    flow.send(None)
    assert flow.send(None) == ("recv", 1)
    with pytest.raises(error.Error) as info:
        flow.send(b"\x0d")
    assert info.value.confd_errno == error.ERR_ACCESS_DENIED


# ---------------------------------------------------------------- control calls: parity

# name -> (list of (method, args, kwargs), daemon steps after the token)
CALLS = {
    "beprimary_ok": ([("beprimary", ("n1",), {})], [expect_frame("o1"), send(SPEC["reply_ok"])]),
    "bemaster_badstate": ([("bemaster", ("n1",), {})],
                          [expect_frame("o1"), send(SPEC["reply_error_17"])]),
    "beprimary_value_nodeid": ([("beprimary", (Value(5),), {})],
                               [expect_frame("o1"), send(SPEC["reply_ok"])]),
    "beprimary_reason": ([("beprimary", (b"n1",), {})],
                         [expect_frame("o1"), send(SPEC["reply_error_28_reason"])]),
    "beprimary_unexpected_reply": ([("beprimary", ("n1",), {})],
                                   [expect_frame("o1"), send(term_frame(42))]),
    "beprimary_other_atom": ([("beprimary", ("n1",), {})],
                             [expect_frame("o1"), send(term_frame(ha._protocol.Atom("yes")))]),
    "besecondary_wait": ([("besecondary", ("n2", "n1", "10.0.0.1", True), {})],
                         [expect_frame("o1"), send(SPEC["reply_ok"])]),
    "besecondary_wait_closed": ([("besecondary", ("n2", "n1", "10.0.0.1", 1), {})],
                                [expect_frame("o1"), send(SPEC["reply_error_26"])]),
    "beslave_old_keywords": ([("beslave", ("n2",), {"masterid": "n1", "masterip": "10.0.0.1",
                                                    "waitreply": 1})],
                             [expect_frame("o1"), send(SPEC["reply_ok"])]),
    "besecondary_nowait_then_status": (
        [("besecondary", ("n2", "n1", "::1", False), {}), ("status", (), {})],
        [expect_frame("o1"), expect_frame("o2"), send(SPEC["status_secondary"])]),
    "benone": ([("benone", (), {})], [expect_frame("o1"), send(SPEC["reply_ok"])]),
    "berelay_badstate": ([("berelay", (), {})], [expect_frame("o1"), send(SPEC["reply_error_17"])]),
    "secondary_dead": ([("secondary_dead", ("n2",), {})],
                       [expect_frame("o1"), send(SPEC["reply_ok"])]),
    "slave_dead": ([("slave_dead", (Value("n2", C_BUF),), {})],
                   [expect_frame("o1"), send(SPEC["reply_ok"])]),
    "status_none": ([("status", (), {})], [expect_frame("o1"), send(SPEC["status_none"])]),
    "status_relay": ([("status", (), {})], [expect_frame("o1"), send(SPEC["status_relay"])]),
    "status_v6": ([("status", (), {})], [expect_frame("o1"), send(SPEC["status_primary_v6"])]),
    "status_255": ([("status", (), {})],
                   [expect_frame("o1"), send(golden_frame("status_primary_255_nodes"))]),
    "status_string_addr": ([("status", (), {})],
                           [expect_frame("o1"), send(golden_frame("status_primary_straddr"))]),
    "status_bad_reply": ([("status", (), {})], [expect_frame("o1"), send(term_frame((1,)))]),
    "reply_too_large": ([("status", (), {})], [expect_frame("o1"), send(hx("7F 00 00 00"))]),
    "eof_before_reply": ([("benone", (), {})], [expect_frame("o1"), close()]),
    "reset_before_reply": ([("berelay", (), {})], [expect_frame("o1"), reset()]),
    "eof_inside_reply": ([("status", (), {})],
                         [expect_frame("o1"), send(SPEC["status_relay"][:20]), close()]),
    "several_calls": (
        [("beprimary", ("n1",), {}), ("status", (), {}), ("secondary_dead", ("n2",), {}),
         ("benone", (), {})],
        [expect_frame("o1"), send(SPEC["reply_ok"]), expect_frame("o2"),
         send(SPEC["status_primary_v4"]), expect_frame("o3"), send(SPEC["reply_ok"]),
         expect_frame("o4"), send(SPEC["reply_ok"])]),
}


def _sync_run(d, calls):
    s = d.client_socket()
    results = [outcome(lambda: ha.connect(s, TOKEN, d.host, d.port))]
    for name, args, kwargs in calls:
        results.append(outcome(lambda: getattr(ha, name)(s, *args, **kwargs)))
    s.close()
    return results


async def _async_run(d, calls):
    results = []
    conn = None
    try:
        conn = await aio.connect(TOKEN, d.host, d.port)
        results.append(("ok", None))
        for name, args, kwargs in calls:
            results.append(await aoutcome(getattr(conn, name)(*args, **kwargs)))
    finally:
        if conn is not None:
            await conn.close()
    return results


@pytest.mark.parametrize("case", sorted(CALLS))
def test_control_call_parity(daemons, case):
    calls, steps = CALLS[case]
    d_sync = daemons(ha_connected() + steps)
    d_async = daemons(ha_connected() + steps)
    sync_results = _sync_run(d_sync, calls)
    async_results = arun(_async_run(d_async, calls))
    assert async_results == sync_results
    rec_sync, rec_async = d_sync.finish()[0], d_async.finish()[0]
    assert bytes(rec_async.all) == bytes(rec_sync.all)
    assert rec_async["token"] == frame(TOKEN_BYTES)


def test_parity_cases_cover_the_spec_frames(daemons):
    """The orders sent are the §12.2 frames (so parity is not parity of two wrong clients)."""
    calls = [("beprimary", ("n1",), {}), ("besecondary", ("n2", "n1", "10.0.0.1", 1), {}),
             ("besecondary", ("n2", "n1", "10.0.0.1", 0), {}),
             ("besecondary", ("n2", "n1", "::1", 0), {}),
             ("benone", (), {}), ("status", (), {}), ("secondary_dead", ("n2",), {}),
             ("berelay", (), {})]
    d = daemons(ha_connected() + [
        expect_frame("beprimary_n1"), send(SPEC["reply_ok"]),
        expect_frame("besecondary_v4_wait1"), send(SPEC["reply_ok"]),
        expect_frame("besecondary_v4_wait0"), expect_frame("besecondary_v6_wait0"),
        expect_frame("benone"), send(SPEC["reply_ok"]),
        expect_frame("getstatus"), send(SPEC["status_none"]),
        expect_frame("secondary_dead_n2"), send(SPEC["reply_ok"]),
        expect_frame("berelay"), send(SPEC["reply_ok"])])
    results = arun(_async_run(d, calls))
    assert results == [("ok", None)] * 6 + [("ok", (1, []))] + [("ok", None)] * 2
    rec = d.finish()[0]
    assert rec["hello"] == SPEC["hello"]
    for name in ("beprimary_n1", "besecondary_v4_wait1", "besecondary_v4_wait0",
                 "besecondary_v6_wait0", "benone", "getstatus", "secondary_dead_n2", "berelay"):
        assert rec[name] == SPEC[name], name
    assert rec.extra == b""


BAD_ARGS = [
    ("beprimary", (5,), {}),
    ("beprimary", (None,), {}),
    ("bemaster", (3.5,), {}),
    ("beprimary", (Value("x", C_XMLBEGIN),), {}),
    ("besecondary", ("n2", "n1", "not-an-ip", True), {}),
    ("besecondary", ("n2", "n1", "10.0.0.1"), {}),
    ("besecondary", ("n2", "n1", "10.0.0.1", "yes"), {}),
    ("besecondary", ("n2", "n1", 10, True), {}),
    ("besecondary", ("n2", 7, "10.0.0.1", True), {}),
    ("besecondary", (None, "n1", "10.0.0.1", True), {}),
    ("besecondary", ("n2",), {"primary_id": "n1", "masterid": "n1", "primary_ip": "10.0.0.1",
                              "waitreply": 1}),
    ("besecondary", ("n2", "n1"), {"primary_ip": "10.0.0.1", "masterip": "10.0.0.1",
                                   "waitreply": 1}),
    ("beslave", ("n2",), {"masterid": "n1", "masterip": "primary.example", "waitreply": 1}),
    ("beslave", ("n2",), {"masterid": 1, "masterip": "10.0.0.1", "waitreply": 1}),
    ("secondary_dead", ([1],), {}),
    ("slave_dead", (object(),), {}),
]


def test_argument_error_parity(daemons):
    """Bad arguments raise the same exception with the same text, and send nothing."""
    sync_results = []
    with socket.socket() as s:
        for name, args, kwargs in BAD_ARGS:
            sync_results.append(outcome(lambda: getattr(ha, name)(s, *args, **kwargs)))

    async def go(d):
        out = []
        async with await aio.connect(TOKEN, d.host, d.port) as conn:
            for name, args, kwargs in BAD_ARGS:
                out.append(await aoutcome(getattr(conn, name)(*args, **kwargs)))
        return out

    d = daemons(ha_connected())
    async_results = arun(go(d))
    assert [r[0] for r in sync_results] == ["raised"] * len(BAD_ARGS)
    assert async_results == sync_results
    assert d.finish()[0].extra == b""


@pytest.mark.parametrize("kwargs,exc", [
    ({"token": 5}, TypeError), ({"token": TOKEN, "ip": 1}, TypeError),
    ({"token": TOKEN, "port": "4565"}, TypeError), ({"token": TOKEN, "bogus": 1}, TypeError),
    ({"token": TOKEN, "access_version": 7}, ValueError),
    ({"token": TOKEN, "ip": "127.0.0.1", "path": "/tmp/x"}, ValueError),
    ({"token": TOKEN, "path": 3}, TypeError),
    ({"token": TOKEN, "timeout": "1"}, TypeError), ({"token": TOKEN, "timeout": 0}, ValueError),
])
def test_connect_argument_errors(kwargs, exc):
    with pytest.raises(exc) as info:
        arun(aio.connect(**kwargs))
    assert_no_secret(info.value)


def test_connect_token_type_error_same_as_sync():
    with socket.socket() as s:
        sync = outcome(lambda: ha.connect(s, 5, "127.0.0.1", 1))
    assert arun(aoutcome(aio.connect(5, "127.0.0.1", 1))) == sync


def test_connect_unix_and_defaults(daemons, monkeypatch):
    d = daemons(ha_connected() + [expect_frame("o1"), send(SPEC["status_none"])], family="unix")

    async def go():
        async with await aio.connect(TOKEN_BYTES, path=d.path) as conn:
            assert tuple(conn.daemon_info) == (0, 82, 0x08020500, 60, 18)
            return await conn.status()

    assert arun(go()) == (1, [])
    d.finish()

    d2 = daemons(ha_connected() + [expect_frame("o1"), send(SPEC["reply_ok"])])
    monkeypatch.setattr(ha, "ADDR", d2.host)
    monkeypatch.setattr(ha, "PORT", d2.port)

    async def go2():
        async with await aio.connect(TOKEN) as conn:
            await conn.benone()

    arun(go2())
    assert d2.finish()[0]["o1"] == SPEC["benone"]


def test_connect_refused_same_as_sync():
    port = dead_port()
    with socket.socket() as s:
        sync = outcome(lambda: ha.connect(s, TOKEN, "127.0.0.1", port))
    got = arun(aoutcome(aio.connect(TOKEN, "127.0.0.1", port)))
    assert got[:3] == sync[:3] == ("raised", error.Error, error.ERR_OS)


@pytest.mark.parametrize("name", sorted(CONNECT_EOF_SCRIPTS))
def test_eof_during_connect(daemons, name):
    steps = [st for st in CONNECT_EOF_SCRIPTS[name]]
    d = daemons(steps)
    with pytest.raises(error.EOF):
        arun(aio.notifications_connect(HA_MASK, d.host, d.port))
    d.finish()


def test_access_check_and_renegotiation(daemons, monkeypatch, tmp_path):
    use_access_file(monkeypatch, tmp_path)
    access = [expect(9, "hello"), send(SPEC["challenge_v2"]), expect(33, "response"),
              send(SPEC["access_ok"])]
    d = daemons(access + [send(hello_reply(status=1, proto=77, vsn=0x07070100)), close()],
                access + [send(hello_reply(proto=77, vsn=0x07070100)), expect_frame("token"),
                          expect_frame("o1"), send(SPEC["reply_ok"])])

    async def go():
        async with await aio.connect(TOKEN, d.host, d.port) as conn:
            assert conn.daemon_info.proto_vsn == 77
            await conn.berelay()

    arun(go())
    first, second = d.finish()
    assert first["hello"] == SPEC["hello_v2"]
    assert second["hello"] == hx("D1 00 4D 07 07 01 00 14 09")
    assert second["response"] == SPEC["response_v2"]
    assert second["token"] == frame(TOKEN_BYTES)
    assert second["o1"] == SPEC["berelay"]


def test_renegotiation_rejected_twice(daemons):
    d = daemons([expect(9, "hello"), send(hello_reply(status=1, proto=77)), close()],
                [expect(9, "hello"), send(hello_reply(status=1, proto=76)), close()])
    with pytest.raises(error.Error) as info:
        arun(aio.connect(TOKEN, d.host, d.port))
    assert info.value.confd_errno == error.ERR_PROTOUSAGE
    d.finish()


# ---------------------------------------------------------------- concurrency, cancellation


def test_concurrent_calls_are_serialised(daemons):
    d = daemons(ha_connected() + [expect_frame("o1"), send(SPEC["status_secondary"]),
                                  expect_frame("o2"), send(SPEC["reply_error_17"]),
                                  expect_frame("o3"), send(SPEC["reply_ok"])])

    async def go():
        async with await aio.connect(TOKEN, d.host, d.port) as conn:
            return await asyncio.gather(conn.status(), aoutcome(conn.berelay()), conn.benone())

    status, relay, none = arun(go())
    assert status == (2, [{"nodeid": "n1", "address": "10.0.0.1"}])
    assert relay[:3] == ("raised", error.Error, error.ERR_BADSTATE)
    assert none is None
    rec = d.finish()[0]
    assert (rec["o1"], rec["o2"], rec["o3"]) == (SPEC["getstatus"], SPEC["berelay"], SPEC["benone"])


@pytest.mark.parametrize("partial", [0, 2, 8])
def test_cancelled_call_reply_is_skipped(daemons, partial):
    """wait_for cancels a besecondary whose reply is late (possibly half-read); the next call
    reads past that reply and gets its own."""
    go_on = threading.Event()
    late = SPEC["reply_error_26"]
    d = daemons(ha_connected() + [expect_frame("o1"), send(late[:partial]),
                                  call(lambda c: go_on.wait(STEP)), send(late[partial:]),
                                  expect_frame("o2"), send(SPEC["status_secondary"])])

    async def go():
        async with await aio.connect(TOKEN, d.host, d.port) as conn:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(conn.besecondary("n2", "n1", "10.0.0.1", 1), 0.2)
            go_on.set()
            return await conn.status()

    assert arun(go()) == (2, [{"nodeid": "n1", "address": "10.0.0.1"}])
    rec = d.finish()[0]
    assert rec["o1"] == SPEC["besecondary_v4_wait1"] and rec["o2"] == SPEC["getstatus"]


def test_timeout_option_raises_confd_timeout(daemons):
    go_on = threading.Event()
    d = daemons(ha_connected() + [expect_frame("o1"), call(lambda c: go_on.wait(STEP)),
                                  send(SPEC["reply_ok"]), expect_frame("o2"),
                                  send(SPEC["status_none"])])

    async def go():
        async with await aio.connect(TOKEN, d.host, d.port, timeout=0.2) as conn:
            with pytest.raises(error.Timeout) as info:
                await conn.beprimary("n1")
            exc = info.value
            assert isinstance(exc, TimeoutError) and isinstance(exc, error.Error)
            assert exc.confd_errno == error.ERR_OS and exc.errno == errno.ETIMEDOUT
            go_on.set()
            return await conn.status()

    assert arun(go()) == (1, [])
    d.finish()


def test_task_cancel_leaves_connection_usable(daemons):
    d = daemons(ha_connected() + [expect_frame("o1"), sleep(0.3), send(SPEC["reply_ok"]),
                                  expect_frame("o2"), send(SPEC["reply_ok"])])

    async def go():
        async with await aio.connect(TOKEN, d.host, d.port) as conn:
            task = asyncio.ensure_future(conn.benone())
            await wait_until_async(lambda: "o1" in d.conn(0))   # sent: waiting for the reply
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await conn.beprimary("n1")

    arun(go())
    rec = d.finish()[0]
    assert rec["o1"] == SPEC["benone"] and rec["o2"] == SPEC["beprimary_n1"]


def test_call_after_close_is_eof(daemons):
    d = daemons(ha_connected())

    async def go():
        conn = await aio.connect(TOKEN, d.host, d.port)
        await conn.close()
        await conn.close()   # idempotent
        assert "closed" in repr(conn)
        with pytest.raises(error.EOF):
            await conn.benone()

    arun(go())
    d.finish()


# ---------------------------------------------------------------- events


def test_event_subscription_bytes(daemons):
    d = daemons(subscribed(), subscribed())

    async def go():
        for mask in (HA_MASK, SYNC_MASK):
            async with await aio.notifications_connect(mask, d.host, d.port):
                pass

    arun(go())
    a, b = d.finish()
    assert a["hello"] == EV["hello"] and a["sub"] == EV["subscribe_ha"]
    assert b["sub"] == EV["subscribe_ha_sync"]


def test_event_argument_errors_same_as_sync():
    cases = [("64",), (-1,), (1 << 64,), (None,)]
    for args in cases:
        with socket.socket() as s:
            sync = outcome(lambda: events.notifications_connect(s, *args, "127.0.0.1", 1))
        assert arun(aoutcome(aio.notifications_connect(*args, "127.0.0.1", 1))) == sync
    with pytest.raises(TypeError):
        arun(aio.notifications_connect(HA_MASK, "127.0.0.1", 1, heartbeat=1))


def test_read_every_event_shape(daemons):
    names = sorted(EVENT_CASES)
    d = daemons(subscribed() + [send(b"".join(EVENT_CASES[n][0] for n in names))])

    async def go():
        async with await aio.notifications_connect(HA_MASK, d.host, d.port) as stream:
            return [await stream.read() for _ in names]

    assert arun(go()) == [EVENT_CASES[n][1] for n in names]
    d.finish()


def test_malformed_events_same_as_sync(daemons):
    names = sorted(MALFORMED)
    data = b"".join(MALFORMED[n] + EV["is_none"] for n in names)
    d_sync = daemons(subscribed() + [send(data)])
    d_async = daemons(subscribed() + [send(data)])
    s = d_sync.client_socket()
    events.notifications_connect(s, HA_MASK, d_sync.host, d_sync.port)
    sync = [outcome(lambda: events.read_notification(s)) for _ in range(2 * len(names))]
    s.close()

    async def go():
        async with await aio.notifications_connect(HA_MASK, d_async.host, d_async.port) as st:
            return [await aoutcome(st.read()) for _ in range(2 * len(names))]

    assert arun(go()) == sync
    assert sync[1] == ("ok", ha_event({"type": 6}))
    assert sync[0][:3] == ("raised", error.Error, error.ERR_PROTOUSAGE)
    d_sync.finish()
    d_async.finish()


def test_async_for_and_sync(daemons):
    d = daemons(subscribed() + [send(EV["is_primary"]), expect_frame("ack1"),
                                send(EV["secondary_arrived"]), expect_frame("ack2"),
                                send(EV["noprimary_closed"]), close()])

    async def go():
        seen = []
        stream = await aio.notifications_connect(SYNC_MASK, d.host, d.port)
        with pytest.raises(error.EOF):
            async for n in stream:
                seen.append(n["hnot"]["type"])
                await stream.sync()
        await stream.close()
        return seen

    assert arun(go()) == [5, 3, 1]
    rec = d.finish()[0]
    assert rec["ack1"] == rec["ack2"] == EV["ha_synced"]
    assert rec.extra == EV["ha_synced"]     # the third event's acknowledgement


def test_local_close_ends_iteration(daemons):
    d = daemons(subscribed() + [send(EV["is_none"])])

    async def go():
        seen = []
        stream = await aio.notifications_connect(HA_MASK, d.host, d.port)

        async def consume():
            async for n in stream:
                seen.append(n)

        task = asyncio.ensure_future(consume())
        await wait_until_async(lambda: seen)   # the event is read: the stream waits for more
        await stream.close()
        await asyncio.wait_for(task, 1.0)
        return seen

    assert arun(go()) == [ha_event({"type": 6})]
    d.finish()


@pytest.mark.parametrize("partial", [0, 3, 9])
def test_cancelled_read_loses_nothing(daemons, partial):
    go_on = threading.Event()
    data = EV["secondary_died"]
    d = daemons(subscribed() + [send(data[:partial]), call(lambda c: go_on.wait(STEP)),
                                send(data[partial:]), send(EV["is_none"])])

    async def go():
        async with await aio.notifications_connect(HA_MASK, d.host, d.port) as stream:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(stream.read(), 0.2)
            go_on.set()
            return [await stream.read(), await stream.read()]

    first, second = arun(go())
    assert first == EVENT_CASES["secondary_died"][1]
    assert second == ha_event({"type": 6})
    d.finish()


def test_event_timeout_option(daemons):
    d = daemons(subscribed() + [sleep(0.4), send(EV["is_primary"])])

    async def go():
        async with await aio.notifications_connect(HA_MASK, d.host, d.port,
                                                   timeout=0.15) as stream:
            with pytest.raises(error.Timeout):
                await stream.read()
            stream.timeout = None
            return await stream.read()

    assert arun(go()) == ha_event({"type": 5})
    d.finish()


@pytest.mark.parametrize("reply,code,lasterr", [
    (SPEC["reply_error_21"], error.ERR_PROTOUSAGE, ""),
    (SPEC["reply_error_28_reason"], error.ERR_HA_BADTOKEN, "bad token"),
    (term_frame(42), error.ERR_PROTOUSAGE, "unexpected reply from daemon"),
])
def test_subscription_error_reply(daemons, reply, code, lasterr):
    d = daemons(subscribed(reply))
    with pytest.raises(error.Error) as info:
        arun(aio.notifications_connect(HA_MASK, d.host, d.port))
    assert (info.value.confd_errno, info.value.confd_lasterr) == (code, lasterr)
    d.finish()


def test_event_frame_too_large_closes(daemons):
    d = daemons(subscribed() + [send(hx("FF FF FF FF"))])

    async def go():
        stream = await aio.notifications_connect(HA_MASK, d.host, d.port)
        with pytest.raises(error.Error) as info:
            await stream.read()
        assert info.value.confd_errno == error.ERR_PROTOUSAGE
        assert "closed" in repr(stream)
        async for _ in stream:      # closed on this side: iteration just ends
            raise AssertionError("no event expected")
        await stream.close()

    arun(go())
    d.finish()


@pytest.mark.parametrize("steps", [[close()], [reset()], [send(EV["is_primary"][:5]), close()]],
                         ids=["close", "reset", "partial"])
def test_eof_while_reading(daemons, steps):
    d = daemons(subscribed() + steps)

    async def go():
        async with await aio.notifications_connect(HA_MASK, d.host, d.port) as stream:
            with pytest.raises(error.EOF):
                await stream.read()

    arun(go())
    d.finish()


def test_unix_event_stream(daemons):
    d = daemons(subscribed() + [send(EV["besecondary_result_badtoken"])], family="unix")

    async def go():
        async with await aio.notifications_connect(HA_MASK, path=d.path) as stream:
            return await stream.read()

    assert arun(go()) == EVENT_CASES["besecondary_result_badtoken"][1]
    d.finish()
