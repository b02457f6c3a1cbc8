"""The client against hostile daemons (wire-protocol W-03, W-15, W-18, W-27, W-29).

A scripted fake daemon (``fakedaemon``) plays every reply the client ever reads -- the hello
reply, the access-check challenge and verdict, an order's ok/error reply, the status reply, the
subscription reply and event frames -- and misbehaves with it:

* cuts it at **every** byte offset, then closes (FIN) or resets (RST): always ``error.EOF``;
* announces a 4 GiB (or just-too-large) frame: ``ERR_PROTOUSAGE`` with a small tracemalloc
  peak, and the socket closed;
* sends terms nested 100 000 deep, compressed or unknown tags, trailing garbage, wrong shapes:
  ``ERR_PROTOUSAGE``, a small memory peak, and the connection still in step afterwards;
* never answers, at every stage, with a socket timeout: ``error.Timeout``;
* drips a whole session one byte every 5 ms: the right results.

Each case runs through the blocking client (``confd_ha``, ``confd_ha.events``) and the asyncio
client (``confd_ha.aio``). Cases already covered one by one in test_client_io.py,
test_events_client.py and test_aio_client.py are not repeated here; this file is the
systematic sweep over all read sites. Every exception is checked for the token
(``assert_no_secret``), and DEBUG logs are checked by the autouse ``token_never_logged``.
"""

from __future__ import annotations

import asyncio
import struct
import time

import pytest

import confd_ha as ha
import refcodec
from confd_ha import _protocol, aio, error, events
from events_helpers import EV, HA_MASK, subscribed
from fakedaemon import (  # noqa: F401 -- fixtures
    SECRET, SPEC, TOKEN, MALFORMED, assert_no_secret, clean_client_env, close, drip, expect,
    expect_frame, frame, ha_connected, peak_during, reset, send, sleep, term_frame,
    token_never_logged, use_access_file,
)

A = refcodec.Atom
STEP = 5.0          # bound on every awaited asyncio step

# ---------------------------------------------------------------- what the client does

# Each action takes the daemon's address and a socket timeout and performs one client
# operation from a fresh connection; ``kind`` tells which prefix of daemon steps precedes the
# reply under test.


def _sync(d, timeout, fn):
    s = d.client_socket(timeout)
    try:
        return fn(s, d)
    finally:
        s.close()


def s_connect(d, timeout=2.0):
    return _sync(d, timeout, lambda s, d: ha.connect(s, TOKEN, **d.where))


def s_order(d, timeout=2.0):
    def run(s, d):
        ha.connect(s, TOKEN, **d.where)
        return ha.beprimary(s, "n1")
    return _sync(d, timeout, run)


def s_status(d, timeout=2.0):
    def run(s, d):
        ha.connect(s, TOKEN, **d.where)
        return ha.status(s)
    return _sync(d, timeout, run)


def s_subscribe(d, timeout=2.0):
    return _sync(d, timeout, lambda s, d: events.notifications_connect(s, HA_MASK, d.host, d.port))


def s_event(d, timeout=2.0):
    def run(s, d):
        events.notifications_connect(s, HA_MASK, d.host, d.port)
        return events.read_notification(s)
    return _sync(d, timeout, run)


async def a_connect(d, timeout=2.0):
    c = await aio.connect(TOKEN, d.host, d.port, timeout=timeout)
    await c.close()


async def _a_control(d, timeout, call):
    c = await aio.connect(TOKEN, d.host, d.port, timeout=timeout)
    try:
        return await call(c)
    finally:
        await c.close()


async def a_order(d, timeout=2.0):
    return await _a_control(d, timeout, lambda c: c.beprimary("n1"))


async def a_status(d, timeout=2.0):
    return await _a_control(d, timeout, lambda c: c.status())


async def a_subscribe(d, timeout=2.0):
    st = await aio.notifications_connect(HA_MASK, d.host, d.port, timeout=timeout)
    await st.close()


async def a_event(d, timeout=2.0):
    st = await aio.notifications_connect(HA_MASK, d.host, d.port, timeout=timeout)
    try:
        return await st.read()
    finally:
        await st.close()


SYNC = {"connect": s_connect, "order": s_order, "status": s_status,
        "subscribe": s_subscribe, "event": s_event}
ASYNC = {"connect": a_connect, "order": a_order, "status": a_status,
         "subscribe": a_subscribe, "event": a_event}


def outcome_of(client: str, action: str, d, timeout=2.0):
    """Run one action; returns ('ok', result) or the exception it raised (token-checked)."""
    try:
        if client == "sync":
            return ("ok", SYNC[action](d, timeout))
        return ("ok", asyncio.run(asyncio.wait_for(ASYNC[action](d, timeout), STEP)))
    except (error.Error, error.EOF) as exc:
        assert_no_secret(exc)
        return exc


# The daemon's steps before the reply under test, per action.
PREFIX = {
    "connect": [expect(9, "hello")],
    "order": ha_connected() + [expect_frame("order")],
    "status": ha_connected() + [expect_frame("order")],
    "subscribe": [expect(9, "hello"), send(SPEC["reply_accepted"]), expect_frame("sub")],
    "event": subscribed(),
}
EVENT_ACTIONS = ("subscribe", "event")


# ---------------------------------------------------------------- 1. cut at every byte offset

# name: (action, the daemon's steps before the reply, the reply, what the daemon does after
# a whole reply for the action to succeed, access-check variant or None). For the access
# check the reply is everything the daemon sends after the hello: challenge, verdict byte,
# hello reply (the client's response stays unread until the fake daemon drains it).
SUB_AFTER_HELLO = [expect_frame("sub"), send(EV["reply_ok"])]
CUT_REPLIES = {
    "hello_reply": ("connect", [expect(9, "hello")], SPEC["reply_accepted"], [], None),
    "event_hello_reply": ("subscribe", [expect(9, "hello")], SPEC["reply_accepted"],
                          SUB_AFTER_HELLO, None),
    "access_v2": ("connect", [expect(9, "hello")],
                  SPEC["challenge_v2"] + SPEC["access_ok"] + SPEC["reply_accepted"], [], 2),
    "access_v1": ("connect", [expect(9, "hello")],
                  SPEC["challenge_v1"] + SPEC["access_ok"] + SPEC["reply_accepted"], [], 1),
    "event_access_v2": ("subscribe", [expect(9, "hello")],
                        SPEC["challenge_v2"] + SPEC["access_ok"] + SPEC["reply_accepted"],
                        [expect(33, "response")] + SUB_AFTER_HELLO, 2),
    "reply_ok": ("order", PREFIX["order"], SPEC["reply_ok"], [], None),
    "reply_error_17": ("order", PREFIX["order"], SPEC["reply_error_17"], [], None),
    "reply_error_reason": ("order", PREFIX["order"], SPEC["reply_error_28_reason"], [], None),
    "status_none": ("status", PREFIX["status"], SPEC["status_none"], [], None),
    "status_relay": ("status", PREFIX["status"], SPEC["status_relay"], [], None),
    "status_primary_v6": ("status", PREFIX["status"], SPEC["status_primary_v6"], [], None),
    "subscription_reply": ("subscribe", PREFIX["subscribe"], EV["reply_ok"], [], None),
    "event_noprimary": ("event", PREFIX["event"], EV["noprimary_closed"], [], None),
    "event_secondary_died": ("event", PREFIX["event"], EV["secondary_died"], [], None),
    "event_is_primary": ("event", PREFIX["event"], EV["is_primary"], [], None),
}


def _access_env(monkeypatch, tmp_path, variant):
    if variant is None:
        monkeypatch.delenv("CONFD_IPC_ACCESS_FILE", raising=False)
        ha.configure(access_version=2)
        return
    use_access_file(monkeypatch, tmp_path)
    ha.configure(access_version=variant)        # restored by clean_client_env


@pytest.mark.parametrize("ending", ["close", "reset"])
@pytest.mark.parametrize("client", ["sync", "aio"])
@pytest.mark.parametrize("name", sorted(CUT_REPLIES))
def test_reply_cut_at_every_offset_is_eof(daemons, monkeypatch, tmp_path, name, client, ending):
    action, prefix, reply, _, variant = CUT_REPLIES[name]
    _access_env(monkeypatch, tmp_path, variant)
    end = close() if ending == "close" else reset()
    d = daemons(*[prefix + [send(reply[:k]), end] for k in range(len(reply))])
    for k in range(len(reply)):
        got = outcome_of(client, action, d)
        assert type(got) is error.EOF, "cut at byte %d of %d: %r" % (k, len(reply), got)
        assert got.confd_errno is None      # an EOF carries no code, as Cisco's
    assert len(d.conns) == len(reply)
    d.finish()


@pytest.mark.parametrize("variant", [1, 2])
def test_aio_send_after_peer_reset_is_eof(daemons, monkeypatch, tmp_path, variant):
    """The daemon sends its challenge and resets: the client's response is written into the
    dead connection, and asyncio reports that as ConnectionResetError('Connection lost')
    without an errno. It must still be EOF (W-29). Ten tries: the race goes this way almost
    every time. (Found by the sweep above; fixed in 9cde2b3.)"""
    _access_env(monkeypatch, tmp_path, variant)
    challenge = SPEC["challenge_v2"] if variant == 2 else SPEC["challenge_v1"]
    d = daemons(*[[expect(9, "hello"), send(challenge), reset()] for _ in range(10)])
    for _ in range(10):
        got = outcome_of("aio", "connect", d)
        assert type(got) is error.EOF, got


def test_whole_replies_are_accepted_by_the_same_scripts(daemons, monkeypatch, tmp_path):
    """The control of the sweep above: uncut, the same replies give results (so the EOFs
    come from the cuts, not from a broken script)."""
    for name in sorted(CUT_REPLIES):
        action, prefix, reply, after, variant = CUT_REPLIES[name]
        _access_env(monkeypatch, tmp_path, variant)
        d = daemons(*[prefix + [send(reply)] + after for _ in range(2)])
        for client in ("sync", "aio"):
            got = outcome_of(client, action, d)
            if name == "reply_error_17":
                assert isinstance(got, error.Error) and got.confd_errno == 17
            elif name == "reply_error_reason":
                assert isinstance(got, error.Error) and got.confd_errno == 28
            else:
                assert isinstance(got, tuple) and got[0] == "ok", (name, client, got)
                if name == "status_relay":
                    assert got[1][0] == ha.STATE_SECONDARY_RELAY
                if action == "event":
                    assert got[1]["type"] == events.NOTIF_HA_INFO
        d.finish()


# ---------------------------------------------------------------- 2. huge frame announcements

HUGE = [0xFFFFFFFF, 0x80000000, _protocol.MAX_FRAME + 1]


@pytest.mark.parametrize("announced", HUGE, ids=["4GiB", "2GiB", "limit+1"])
@pytest.mark.parametrize("client", ["sync", "aio"])
@pytest.mark.parametrize("action", ["order", "status", "subscribe", "event"])
def test_huge_frame_announcement_refused_without_allocating(daemons, action, client, announced):
    d = daemons(PREFIX[action] + [send(struct.pack(">I", announced))])
    got, peak = peak_during(lambda: outcome_of(client, action, d))
    assert isinstance(got, error.Error) and type(got) is error.Error, got
    assert got.confd_errno == error.ERR_PROTOUSAGE
    assert "announced" in got.confd_lasterr
    # Nothing near the announced size; asyncio.run's own bookkeeping is part of the peak.
    assert peak < (256 << 10 if client == "sync" else 1 << 20), peak
    (rec,) = d.finish()
    assert rec.client_closed         # the client closed the connection (W-15)


# ---------------------------------------------------------------- 3. hostile payloads

HOSTILE = {
    **MALFORMED,
    "nested_in_event_100000": frame(b"\x83\x68\x02\x61\x40" + b"\x68\x01" * 100_000 + b"\x61\x05"),
    "unknown_tag_inside": frame(bytes.fromhex("83 68 02 61 40 68 02 61 05 FE")),
    "binary_len_lie": frame(bytes.fromhex("83 6D FF FF FF FF 00")),
    "list_len_lie": frame(bytes.fromhex("83 6C FF FF FF F0 61 01 6A")),
    "integer_not_a_reply": term_frame(42),
    "binary_not_a_reply": term_frame(b"ok"),
}
# Wrong shapes per read site: well-formed terms the site cannot use.
WRONG_SHAPES = {
    "order": {
        "ok_tuple": term_frame((A("ok"), 1)),
        "error_alone": term_frame((A("error"),)),
        "error_atom_code": term_frame((A("error"), A("badstate"))),
        "error_reason_int": term_frame((A("error"), 17, 5)),
        "error_four": term_frame((A("error"), 17, b"x", 1)),
        "list_ok": term_frame([A("ok")]),
    },
    "status": {
        "bare_atom": term_frame(A("ok")),
        "one_tuple": term_frame((1,)),
        "state_atom": term_frame((A("none"), [])),
        "nodes_not_list": term_frame((1, b"")),
        "entry_one_tuple": term_frame((3, [(b"n2",)])),
        "entry_bad_address": term_frame((3, [(b"n2", (10, 0, 0))])),
        "entry_address_out_of_range": term_frame((3, [(b"n2", (10, 0, 0, 300))])),
        "entry_not_tuple": term_frame((3, [b"n2"])),
        "extra_element": term_frame((1, [], 0)),
    },
    "subscribe": {
        "error_alone": term_frame((A("error"),)),
        "tuple_ok": term_frame((A("ok"), 1)),
        "integer": term_frame(0),
    },
    "event": {
        "bare_atom": term_frame(A("ok")),
        "noprimary_binary": term_frame((64, (1, b"26"))),
        "died_bad_address": term_frame((64, (2, (b"n2", (10, 0, 0))))),
    },
}


def _hostile_cases():
    for action in ("order", "status", "subscribe", "event"):
        for name in sorted(HOSTILE):
            yield action, name, HOSTILE[name]
        for name in sorted(WRONG_SHAPES[action]):
            yield action, "shape_" + name, WRONG_SHAPES[action][name]


HOSTILE_CASES = list(_hostile_cases())


@pytest.mark.parametrize("client", ["sync", "aio"])
@pytest.mark.parametrize("action,name,payload", HOSTILE_CASES,
                         ids=["%s-%s" % (a, n) for a, n, _ in HOSTILE_CASES])
def test_hostile_payload_is_protousage(daemons, action, name, payload, client):
    d = daemons(PREFIX[action] + [send(payload)])
    got, peak = peak_during(lambda: outcome_of(client, action, d))
    assert type(got) is error.Error, got
    assert got.confd_errno == error.ERR_PROTOUSAGE
    # A bounded decoder: a few times the frame, never per announced element.
    assert peak < 4 * len(payload) + (1 << 20), peak


# One frame nested 100 000 deep at each site, then a good reply on the same connection: the
# stream stays in step (the frame was read whole) and the connection keeps working.
def _deep_then_good_sync(d):
    s = d.client_socket(2.0)
    try:
        if d.action == "event":
            events.notifications_connect(s, HA_MASK, d.host, d.port)
            with pytest.raises(error.Error) as info:
                events.read_notification(s)
            assert info.value.confd_errno == error.ERR_PROTOUSAGE
            return events.read_notification(s)
        ha.connect(s, TOKEN, **d.where)
        with pytest.raises(error.Error) as info:
            ha.status(s) if d.action == "status" else ha.beprimary(s, "n1")
        assert info.value.confd_errno == error.ERR_PROTOUSAGE
        return ha.status(s)
    finally:
        s.close()


async def _deep_then_good_aio(d):
    if d.action == "event":
        st = await aio.notifications_connect(HA_MASK, d.host, d.port, timeout=2.0)
        try:
            with pytest.raises(error.Error) as info:
                await st.read()
            assert info.value.confd_errno == error.ERR_PROTOUSAGE
            return await st.read()
        finally:
            await st.close()
    c = await aio.connect(TOKEN, d.host, d.port, timeout=2.0)
    try:
        with pytest.raises(error.Error) as info:
            await (c.status() if d.action == "status" else c.beprimary("n1"))
        assert info.value.confd_errno == error.ERR_PROTOUSAGE
        return await c.status()
    finally:
        await c.close()


@pytest.mark.parametrize("client", ["sync", "aio"])
@pytest.mark.parametrize("deep", ["nested_tuple_100000", "nested_list_100000"])
@pytest.mark.parametrize("action", ["order", "status", "event"])
def test_deep_nesting_leaves_connection_in_step(daemons, action, deep, client):
    good = EV["is_primary"] if action == "event" else SPEC["status_secondary"]
    second = [send(good)] if action == "event" else [expect_frame("o2"), send(good)]
    d = daemons(PREFIX[action] + [send(HOSTILE[deep])] + second)
    d.action = action
    if client == "sync":
        result = _deep_then_good_sync(d)
    else:
        result = asyncio.run(asyncio.wait_for(_deep_then_good_aio(d), STEP))
    if action == "event":
        assert result == {"type": 64, "hnot": {"type": 5}}
    else:
        assert result == (2, [{"nodeid": "n1", "address": "10.0.0.1"}])


# ---------------------------------------------------------------- 4. a peer that never answers

# (action, the daemon's steps before it falls silent). The silence lasts longer than the
# client's timeout; the daemon then closes.
SILENT = {
    "before_hello_reply": ("connect", [expect(9, "hello")]),
    "inside_hello_reply": ("connect", [expect(9, "hello"), send(SPEC["reply_accepted"][:4])]),
    "before_challenge": ("connect_access", [expect(9, "hello")]),
    "inside_challenge": ("connect_access", [expect(9, "hello"), send(SPEC["challenge_v2"][:9])]),
    "before_access_verdict": ("connect_access", [expect(9, "hello"), send(SPEC["challenge_v2"]),
                                                 expect(33, "response")]),
    "before_hello_reply_after_access": ("connect_access", [
        expect(9, "hello"), send(SPEC["challenge_v2"]), expect(33, "response"),
        send(SPEC["access_ok"])]),
    "before_order_reply": ("order", PREFIX["order"]),
    "inside_order_reply_header": ("order", PREFIX["order"] + [send(SPEC["reply_ok"][:2])]),
    "inside_order_reply_payload": ("order", PREFIX["order"] + [send(SPEC["reply_ok"][:7])]),
    "before_status_reply": ("status", PREFIX["status"]),
    "inside_status_reply": ("status", PREFIX["status"] + [send(SPEC["status_relay"][:20])]),
    "before_subscription_reply": ("subscribe", PREFIX["subscribe"]),
    "before_event": ("event", PREFIX["event"]),
    "inside_event": ("event", PREFIX["event"] + [send(EV["secondary_died"][:12])]),
}
TIMEOUT = 0.05


@pytest.mark.parametrize("client", ["sync", "aio"])
@pytest.mark.parametrize("name", sorted(SILENT))
def test_silent_peer_times_out(daemons, monkeypatch, tmp_path, name, client):
    action, steps = SILENT[name]
    if action == "connect_access":
        use_access_file(monkeypatch, tmp_path)
        action = "connect"
    d = daemons(steps + [sleep(2.0)])
    t0 = time.monotonic()
    got = outcome_of(client, action, d, timeout=TIMEOUT)
    elapsed = time.monotonic() - t0
    assert isinstance(got, error.Timeout), got
    assert isinstance(got, TimeoutError) and got.confd_errno == error.ERR_OS
    assert TIMEOUT * 0.9 <= elapsed < TIMEOUT + 1.0


# ---------------------------------------------------------------- 5. a drip-fed session

DELAY = 0.005      # one byte every 5 ms


def test_drip_fed_session_sync_and_events(daemons, monkeypatch, tmp_path):
    """Access check, handshake, an error reply with a reason, a status reply, then an event
    socket: every byte the daemon sends arrives alone, 5 ms apart; results are exact."""
    use_access_file(monkeypatch, tmp_path)
    d = daemons(
        [expect(9, "hello"), drip(SPEC["challenge_v2"], DELAY), expect(33, "response"),
         drip(SPEC["access_ok"] + SPEC["reply_accepted"], DELAY), expect_frame("token"),
         expect_frame("o1"), drip(SPEC["reply_error_28_reason"], DELAY),
         expect_frame("o2"), drip(SPEC["status_primary_v6"], DELAY)],
        [expect(9, "hello"), drip(SPEC["challenge_v2"], DELAY), expect(33, "response"),
         drip(SPEC["access_ok"] + SPEC["reply_accepted"], DELAY), expect_frame("sub"),
         drip(EV["reply_ok"] + EV["secondary_died"], DELAY)])
    s = d.client_socket(1.0)
    ha.connect(s, TOKEN, **d.where)
    with pytest.raises(error.Error) as info:
        ha.beprimary(s, "n1")
    assert (info.value.confd_errno, info.value.confd_lasterr) == (28, "bad token")
    assert ha.status(s) == (3, [{"nodeid": "n2", "address": "2001:db8::2"}])
    e = d.client_socket(1.0)
    events.notifications_connect(e, HA_MASK, d.host, d.port)
    got = events.read_notification(e)
    assert got["hnot"]["type"] == events.HA_INFO_SECONDARY_DIED
    assert got["hnot"]["secondary_died"]["ip4"] == "10.0.0.2"
    s.close()
    e.close()
    c0, c1 = d.finish()
    assert c0["response"] == SPEC["response_v2"] and c1["response"] == SPEC["response_v2"]


def test_drip_fed_session_aio(daemons):
    d = daemons(
        ha_connected()[:1] + [drip(SPEC["reply_accepted"], DELAY), expect_frame("token"),
                              expect_frame("o1"), drip(SPEC["reply_error_17"], DELAY),
                              expect_frame("o2"), drip(SPEC["status_relay"], DELAY)],
        [expect(9, "hello"), drip(SPEC["reply_accepted"], DELAY), expect_frame("sub"),
         drip(EV["reply_ok"] + EV["noprimary_closed"], DELAY)])

    async def session():
        c = await aio.connect(TOKEN, d.host, d.port, timeout=1.0)
        with pytest.raises(error.Error) as info:
            await c.benone()
        assert info.value.confd_errno == 17
        st = await c.status()
        await c.close()
        ev = await aio.notifications_connect(HA_MASK, d.host, d.port, timeout=1.0)
        n = await ev.read()
        await ev.close()
        return st, n

    st, n = asyncio.run(asyncio.wait_for(session(), STEP))
    assert st == (4, [{"nodeid": "n1", "address": "10.0.0.1"},
                      {"nodeid": "n3", "address": "10.0.0.3"}])
    assert n["hnot"] == {"type": 1, "noprimary": 26, "nomaster": 26}
    d.finish()
