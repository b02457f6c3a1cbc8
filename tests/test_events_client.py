"""confd_ha.events against a scripted fake daemon (real sockets).

The daemon's bytes are the worked frames of wire-protocol.md §12.3 (hex copied from the document),
Erlang's golden vectors, or terms built by the independent reference codec -- never
confd_ha's own encoder. What the client sends is compared with the §12.3 frames byte for byte.
"""

from __future__ import annotations

import errno
import signal
import socket
import threading
import time

import pytest

import confd_ha
import refcodec
from confd_ha import error, events
from confd_ha.value import Value
from events_helpers import (
    A, CONNECT_EOF_SCRIPTS, EV, EVENT_CASES, HA_MASK, MALFORMED, N2_V4, SYNC_MASK, ha_event,
    subscribed,
)
from fakedaemon import (  # noqa: F401 -- fixtures
    GOLDEN, SECRET, SPEC, call, clean_client_env, close, drip, expect, expect_frame,
    frame, golden_frame, hello_reply, hx, reset, send, sleep, term_frame, use_access_file,
)
from net_helpers import dead_port


def connect_events(d, mask=HA_MASK, timeout=2.0, **kw):
    s = d.client_socket(timeout)
    events.notifications_connect(s, mask, d.host, d.port, **kw)
    return s


# ---------------------------------------------------------------- the spec's frames


def test_spec_event_frames_match_erlang():
    """§12.3's printed frames are what Erlang's term_to_binary makes of the same terms."""
    pairs = {
        "noprimary_closed": "event_noprimary_closed", "secondary_died": "event_secondary_died",
        "secondary_arrived": "event_secondary_arrived",
        "initialized_copy": "event_secondary_initialized_copy", "is_primary": "event_is_primary",
        "is_none": "event_is_none", "besecondary_result_ok": "event_besecondary_result_ok",
        "besecondary_result_badtoken": "event_besecondary_result_badtoken",
        "reply_ok": "reply_ok",
    }
    for spec_name, golden_name in pairs.items():
        assert EV[spec_name] == golden_frame(golden_name), spec_name
    # The client's own frames are libconfd's bytes: the same terms as Erlang's, with the
    # atoms as SMALL_ATOM_UTF8 where term_to_binary (minor_version 1) writes ATOM.
    client = {"subscribe_ha": "subscribe_ha_info", "subscribe_ha_sync": "subscribe_ha_info_sync",
              "ha_synced": "event_ack_ha_synced"}
    for spec_name, golden_name in client.items():
        ours, erlang = EV[spec_name], golden_frame(golden_name)
        assert ours != erlang and b"\x77" in ours, spec_name
        assert refcodec.decode(ours[4:]) == refcodec.decode(erlang[4:]), spec_name


# ---------------------------------------------------------------- connect and subscribe


@pytest.mark.parametrize("mask,expected", [(HA_MASK, "subscribe_ha"),
                                           (SYNC_MASK, "subscribe_ha_sync")])
def test_subscription_bytes(daemons, mask, expected):
    d = daemons(subscribed())
    s = connect_events(d, mask)
    s.close()
    rec = d.finish()[0]
    assert rec["hello"] == EV["hello"]
    assert rec["sub"] == EV[expected]
    assert rec.extra == b""


def test_subscription_with_a_wide_mask(daemons):
    """A mask beyond 32 bits goes out as a big integer (C's 64-bit mask). As in Cisco's
    module the argument is a C long long: bit 63 is given as a negative number."""
    mask = -(1 << 63) | (1 << 40) | HA_MASK
    unsigned = (1 << 63) | (1 << 40) | HA_MASK
    d = daemons(subscribed())
    connect_events(d, mask).close()
    rec = d.finish()[0]
    assert refcodec.decode(rec["sub"][4:]) == (unsigned, 0, 0, A("undefined"), 0)
    assert rec["sub"][4:] == hx("83 68 05 6E 08 00 40 00 00 00 00 01 00 80"
                                "61 00 61 00 77 09 75 6E 64 65 66 69 6E 65 64 61 00")


def test_connect_defaults_to_package_address(daemons, monkeypatch):
    d = daemons(subscribed())
    monkeypatch.setattr(confd_ha, "ADDR", d.host)
    monkeypatch.setattr(confd_ha, "PORT", d.port)
    s = d.client_socket()
    events.notifications_connect(s, HA_MASK)
    s.close()
    assert d.finish()[0]["sub"] == EV["subscribe_ha"]


def test_connect_keywords(daemons):
    d = daemons(subscribed())
    s = d.client_socket()
    events.notifications_connect(sock=s, mask=HA_MASK, ip=d.host, port=d.port)
    s.close()
    assert d.finish()[0]["sub"] == EV["subscribe_ha"]


def test_connect_unix_path(daemons):
    d = daemons(subscribed() + [send(EV["is_primary"])], family="unix")
    s = d.client_socket()
    events.notifications_connect(s, HA_MASK, path=d.path)
    assert events.read_notification(s) == ha_event({"type": 5})
    s.close()
    assert d.finish()[0]["sub"] == EV["subscribe_ha"]


def test_connect_ipv6(daemons):
    d = daemons(subscribed() + [send(EV["is_none"])], family="inet6")
    s = d.client_socket()
    events.notifications_connect(s, HA_MASK, "::1", d.port)
    assert events.read_notification(s) == ha_event({"type": 6})
    s.close()
    d.finish()


def test_connect_already_connected_socket(daemons):
    # As Cisco's module: ERR_OS/EISCONN at once; the socket keeps its subscription.
    d = daemons(subscribed() + [send(EV["is_none"])])
    s = connect_events(d)
    with pytest.raises(error.Error) as info:
        events.notifications_connect(s, HA_MASK, d.host, d.port)
    assert (info.value.confd_errno, info.value.errno) == (error.ERR_OS, errno.EISCONN)
    assert events.read_notification(s) == ha_event({"type": 6})
    s.close()
    assert d.finish()[0]["hello"] == EV["hello"]


def test_daemon_info_recorded(daemons):
    d = daemons(subscribed())
    s = connect_events(d)
    assert tuple(confd_ha.daemon_info(s)) == (0, 82, 0x08020500, 60, 18)
    s.close()
    d.finish()


@pytest.mark.parametrize("mask", ["64", 64.0, None, [64], b"\x40"])
def test_mask_type_error(mask):
    with socket.socket() as s:
        with pytest.raises(TypeError) as info:
            events.notifications_connect(s, mask, "127.0.0.1", 1)
    assert str(info.value) == ("'%s' object cannot be interpreted as an integer"
                               % type(mask).__name__)


@pytest.mark.parametrize("mask", [1 << 63, 1 << 64, -(1 << 63) - 1, -(1 << 70)])
def test_mask_beyond_64_bits(mask):
    with socket.socket() as s:
        with pytest.raises(OverflowError, match="^int too big to convert$"):
            events.notifications_connect(s, mask, "127.0.0.1", 1)


@pytest.mark.parametrize("mask,text", [(1 << 13, "Need heartbeat interval"),
                                       (1 << 18, "Need health check interval"),
                                       (1 << 19, "Need notification stream info"),
                                       (-1, "Need heartbeat interval")])
def test_mask_bits_needing_data_are_refused_before_connecting(mask, text):
    # As libconfd: these subscriptions need notifications_connect2() data.
    with socket.socket() as s:
        with pytest.raises(error.Error) as info:
            events.notifications_connect(s, mask, "127.0.0.1", 1)
        assert s.getsockname()[1] == 0                      # not even connected
    assert info.value.confd_errno == error.ERR_PROTOUSAGE
    assert info.value.confd_lasterr == text


def test_argument_errors():
    # Cisco's words (observed by tests/differential).
    with pytest.raises(AttributeError, match="'str' object has no attribute 'fileno'"):
        events.notifications_connect("not a socket", HA_MASK)
    with pytest.raises(AttributeError, match="fileno"):
        events.read_notification(3)
    with pytest.raises(AttributeError, match="fileno"):
        events.sync_ha_notification(None)
    with socket.socket() as s:
        with pytest.raises(TypeError, match="^argument 3 must be str, not int$"):
            events.notifications_connect(s, HA_MASK, 127, 4565)
        with pytest.raises(TypeError, match="'str' object cannot be interpreted as an integer"):
            events.notifications_connect(s, HA_MASK, "127.0.0.1", "4565")
        with pytest.raises(TypeError, match="'heartbeat' is an invalid keyword argument"):
            events.notifications_connect(s, HA_MASK, "127.0.0.1", 1, heartbeat=5)
        with pytest.raises(ValueError, match="access_version"):
            events.notifications_connect(s, HA_MASK, "127.0.0.1", 1, access_version=3)
        with pytest.raises(ValueError, match="^invalid IP address: localhost$"):
            events.notifications_connect(s, HA_MASK, "localhost", 1)
    with socket.socket(socket.AF_UNIX) as s:
        with pytest.raises(TypeError, match="^path argument must be provided for an AF_UNIX"):
            events.notifications_connect(s, HA_MASK)
        with pytest.raises(TypeError, match="^argument 5 must be str, not int$"):
            events.notifications_connect(s, HA_MASK, path=42)


def test_connection_refused():
    port = dead_port()
    with socket.socket() as s:
        with pytest.raises(error.Error) as info:
            events.notifications_connect(s, HA_MASK, "127.0.0.1", port)
    assert info.value.confd_errno == error.ERR_OS
    assert info.value.errno == errno.ECONNREFUSED


@pytest.mark.parametrize("reply", [term_frame(A("ok")), term_frame(A("yes")),
                                   frame(hx("83 73 02 6F 6B")),            # SMALL_ATOM ok
                                   frame(hx("83 76 00 02 6F 6B"))])        # ATOM_UTF8 ok
def test_subscription_reply_any_atom(daemons, reply):
    d = daemons(subscribed(reply) + [send(EV["is_primary"])])
    s = connect_events(d)
    assert events.read_notification(s) == ha_event({"type": 5})
    s.close()
    d.finish()


@pytest.mark.parametrize("reply,code,lasterr", [
    (SPEC["reply_error_21"], error.ERR_PROTOUSAGE, ""),
    (SPEC["reply_error_17"], error.ERR_BADSTATE, ""),
    (SPEC["reply_error_28_reason"], error.ERR_HA_BADTOKEN, "bad token"),
    (frame(GOLDEN["decode_only_reply_error_28_string_reason"]), error.ERR_HA_BADTOKEN, "bad token"),
    (term_frame(42), error.ERR_PROTOUSAGE, "unexpected reply from daemon"),
    (term_frame((A("error"),)), error.ERR_PROTOUSAGE, "unexpected reply from daemon"),
    (term_frame((64, (5, 0))), error.ERR_PROTOUSAGE, "unexpected reply from daemon"),
    (frame(b"\x83\x68"), error.ERR_PROTOUSAGE, "unexpected reply from daemon"),
])
def test_subscription_error_reply(daemons, reply, code, lasterr):
    d = daemons(subscribed(reply))
    s = d.client_socket()
    with pytest.raises(error.Error) as info:
        events.notifications_connect(s, HA_MASK, d.host, d.port)
    assert info.value.confd_errno == code
    assert info.value.confd_lasterr == lasterr
    s.close()
    d.finish()


def test_subscription_reply_too_large(daemons):
    d = daemons(subscribed(hx("7F FF FF FF")))
    s = d.client_socket()
    with pytest.raises(error.Error) as info:
        events.notifications_connect(s, HA_MASK, d.host, d.port)
    assert info.value.confd_errno == error.ERR_PROTOUSAGE
    assert s.fileno() == -1          # W-15: refused without reading, socket closed
    d.finish()


# ---------------------------------------------------------------- access check and versions


def test_access_check_v2(daemons, monkeypatch, tmp_path):
    use_access_file(monkeypatch, tmp_path)
    d = daemons([expect(9, "hello"), send(SPEC["challenge_v2"]), expect(33, "response"),
                 send(SPEC["access_ok"]), send(SPEC["reply_accepted"]), expect_frame("sub"),
                 send(EV["reply_ok"]), send(EV["is_none"])])
    s = connect_events(d)
    assert events.read_notification(s) == ha_event({"type": 6})
    s.close()
    rec = d.finish()[0]
    assert rec["hello"] == EV["hello_v2"]
    assert rec["response"] == SPEC["response_v2"]
    assert rec["sub"] == EV["subscribe_ha"]


def test_access_check_rejected(daemons, monkeypatch, tmp_path):
    use_access_file(monkeypatch, tmp_path, b"wrong")
    d = daemons([expect(9, "hello"), send(SPEC["challenge_v2"]), expect(33, "response"),
                 send(hx("01")), close()])
    s = d.client_socket()
    with pytest.raises(error.Error) as info:
        events.notifications_connect(s, HA_MASK, d.host, d.port)
    assert info.value.confd_errno == error.ERR_ACCESS_DENIED
    s.close()
    d.finish()


def test_version_renegotiation_moves_connection(daemons):
    """W-05 on the event socket: rejected once, retried with the daemon's pair on a fresh
    connection that ends up under the caller's descriptor."""
    old_pair = hello_reply(status=1, proto=77, vsn=0x07070100)
    d = daemons([expect(9, "hello"), send(old_pair), close()],
                [expect(9, "hello"), send(hello_reply(proto=77, vsn=0x07070100)),
                 expect_frame("sub"), send(EV["reply_ok"]), send(EV["is_primary"])])
    s = d.client_socket()
    fd = s.fileno()
    events.notifications_connect(s, HA_MASK, d.host, d.port)
    assert s.fileno() == fd
    assert s.gettimeout() == 2.0
    assert events.read_notification(s) == ha_event({"type": 5})
    assert confd_ha.daemon_info(s).proto_vsn == 77
    s.close()
    first, second = d.finish()
    assert first["hello"] == EV["hello"]
    assert second["hello"] == hx("0B 00 4D 07 07 01 00 14 09")
    assert second["sub"] == EV["subscribe_ha"]


def test_version_rejected_twice(daemons):
    d = daemons([expect(9, "hello"), send(hello_reply(status=1, proto=77)), close()],
                [expect(9, "hello"), send(hello_reply(status=1, proto=76)), close()])
    s = d.client_socket()
    with pytest.raises(error.Error) as info:
        events.notifications_connect(s, HA_MASK, d.host, d.port)
    assert info.value.confd_errno == error.ERR_PROTOUSAGE
    assert "82" in info.value.confd_lasterr and "77" in info.value.confd_lasterr
    s.close()
    d.finish()


def test_per_connection_version_options(daemons):
    d = daemons(subscribed())
    s = d.client_socket()
    events.notifications_connect(s, HA_MASK, d.host, d.port, proto_vsn=86, lib_vsn=0x08060800)
    s.close()
    assert d.finish()[0]["hello"] == hx("0B 00 56 08 06 08 00 14 09")


# ---------------------------------------------------------------- reading events


@pytest.mark.parametrize("name", sorted(EVENT_CASES))
def test_read_every_event_shape(daemons, name):
    data, expected = EVENT_CASES[name]
    d = daemons(subscribed() + [send(data)])
    s = connect_events(d)
    got = events.read_notification(s)
    assert got == expected
    if "hnot" in got:
        for value in got["hnot"].values():
            if isinstance(value, dict):
                assert type(value["af"]) is int
                assert isinstance(value["nodeid"], Value)
    s.close()
    d.finish()


def test_read_all_events_in_order_on_one_socket(daemons):
    names = sorted(EVENT_CASES)
    d = daemons(subscribed() + [send(b"".join(EVENT_CASES[n][0] for n in names))])
    s = connect_events(d)
    assert [events.read_notification(s) for _ in names] == [EVENT_CASES[n][1] for n in names]
    s.close()
    d.finish()


def test_legacy_keys_are_independent_dicts(daemons):
    d = daemons(subscribed() + [send(EV["secondary_died"])])
    s = connect_events(d)
    hnot = events.read_notification(s)["hnot"]
    assert hnot["secondary_died"] == hnot["slave_died"]
    assert hnot["secondary_died"] is not hnot["slave_died"]
    assert hnot["secondary_died"]["nodeid"].as_pyval() == "n2"
    assert str(hnot["secondary_died"]["nodeid"]) == "n2"
    s.close()
    d.finish()


def test_event_dripped_byte_by_byte(daemons):
    d = daemons(subscribed() + [drip(EV["secondary_arrived"], 0.002)])
    s = connect_events(d)
    assert events.read_notification(s)["hnot"]["secondary_arrived"] == N2_V4
    s.close()
    d.finish()


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_event_is_refused_and_stream_stays_in_step(daemons, name):
    d = daemons(subscribed() + [send(MALFORMED[name] + EV["is_primary"])])
    s = connect_events(d)
    with pytest.raises(error.Error) as info:
        events.read_notification(s)
    assert info.value.confd_errno == error.ERR_PROTOUSAGE
    assert events.read_notification(s) == ha_event({"type": 5})
    s.close()
    d.finish()


def test_event_frame_too_large(daemons):
    d = daemons(subscribed() + [send(hx("01 00 00 01"))])
    s = connect_events(d)
    with pytest.raises(error.Error) as info:
        events.read_notification(s)
    assert info.value.confd_errno == error.ERR_PROTOUSAGE
    assert s.fileno() == -1
    d.finish()


def test_max_reply_setting_applies(daemons):
    confd_ha.configure(max_reply=64)
    big = term_frame((64, (3, (b"x" * 100, (10, 0, 0, 1)))))
    d = daemons(subscribed() + [send(big)])
    s = connect_events(d)
    with pytest.raises(error.Error) as info:
        events.read_notification(s)
    assert info.value.confd_errno == error.ERR_PROTOUSAGE
    d.finish()


# ---------------------------------------------------------------- HA_INFO_SYNC acknowledgement


def test_sync_ha_notification_bytes(daemons):
    d = daemons(subscribed() + [send(EV["is_primary"]), expect_frame("ack1"),
                                send(EV["secondary_arrived"]), expect_frame("ack2")])
    s = connect_events(d, SYNC_MASK)
    assert events.read_notification(s) == ha_event({"type": 5})
    events.sync_ha_notification(s)
    assert events.read_notification(s)["hnot"]["type"] == events.HA_INFO_SECONDARY_ARRIVED
    events.sync_ha_notification(s)
    s.close()
    rec = d.finish()[0]
    assert rec["sub"] == EV["subscribe_ha_sync"]
    assert rec["ack1"] == EV["ha_synced"]
    assert rec["ack2"] == EV["ha_synced"]
    assert rec.extra == b""


def test_sync_after_daemon_closed(daemons):
    d = daemons(subscribed() + [reset()])
    s = connect_events(d, SYNC_MASK)
    with pytest.raises(error.EOF):
        events.read_notification(s)
    # As libconfd (observed with Cisco's module): a gone daemon is Error(ERR_EOF) here.
    with pytest.raises(error.Error) as info:
        for _ in range(3):           # the first send may still be buffered
            events.sync_ha_notification(s)
            time.sleep(0.05)
    assert info.value.confd_errno == error.ERR_EOF
    assert str(info.value) == "Lost connection to ConfD (45): Socket to ConfD is closed"
    s.close()
    d.finish()


# ---------------------------------------------------------------- timeouts, Ctrl-C, EOF


def test_read_timeout_then_event(daemons):
    go = threading.Event()
    d = daemons(subscribed() + [call(lambda c: go.wait(2.0)), send(EV["is_none"])])
    s = connect_events(d, timeout=0.2)
    t0 = time.monotonic()
    with pytest.raises(error.Timeout) as info:
        events.read_notification(s)
    assert time.monotonic() - t0 < 1.5
    exc = info.value
    assert isinstance(exc, TimeoutError) and isinstance(exc, error.Error)
    assert exc.confd_errno == error.ERR_OS and exc.errno == errno.ETIMEDOUT
    go.set()
    s.settimeout(2.0)
    assert events.read_notification(s) == ha_event({"type": 6})
    s.close()
    d.finish()


def test_connect_timeout_waiting_for_hello_reply(daemons):
    d = daemons([expect(9, "hello"), sleep(0.4)])
    s = d.client_socket(0.2)
    with pytest.raises(error.Timeout):
        events.notifications_connect(s, HA_MASK, d.host, d.port)
    s.close()
    d.finish()


def test_connect_timeout_waiting_for_subscription_reply(daemons):
    d = daemons([expect(9, "hello"), send(SPEC["reply_accepted"]), expect_frame("sub"),
                 sleep(0.4)])
    s = d.client_socket(0.2)
    with pytest.raises(error.Timeout):
        events.notifications_connect(s, HA_MASK, d.host, d.port)
    s.close()
    assert d.finish()[0]["sub"] == EV["subscribe_ha"]


def test_ctrl_c_interrupts_a_blocked_read(daemons):
    go = threading.Event()
    d = daemons(subscribed() + [call(lambda c: go.wait(3.0)), send(EV["is_primary"])])
    s = connect_events(d, timeout=None)
    main = threading.main_thread().ident
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(0.2, signal.pthread_kill, (main, signal.SIGINT))
    try:
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            events.read_notification(s)
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, old)
    go.set()
    s.settimeout(2.0)
    assert events.read_notification(s) == ha_event({"type": 5})   # nothing was lost
    s.close()
    d.finish()


def test_signal_handler_runs_and_read_resumes(daemons):
    """PEP 475: a handler that returns does not break the wait."""
    d = daemons(subscribed() + [sleep(0.4), send(EV["is_none"])])
    s = connect_events(d, timeout=None)
    seen = []
    old = signal.signal(signal.SIGUSR1, lambda *a: seen.append(1))
    timer = threading.Timer(0.1, signal.pthread_kill,
                            (threading.main_thread().ident, signal.SIGUSR1))
    try:
        timer.start()
        assert events.read_notification(s) == ha_event({"type": 6})
    finally:
        timer.cancel()
        signal.signal(signal.SIGUSR1, old)
    assert seen == [1]
    s.close()
    d.finish()


@pytest.mark.parametrize("name", sorted(CONNECT_EOF_SCRIPTS))
def test_eof_during_connect(daemons, name):
    d = daemons(CONNECT_EOF_SCRIPTS[name])
    s = d.client_socket()
    with pytest.raises(error.EOF) as info:
        events.notifications_connect(s, HA_MASK, d.host, d.port)
    assert info.value.confd_errno is None and info.value.errno is None   # as Cisco's EOF
    assert str(info.value) == "ConfD closed connection"
    s.close()
    d.finish()


@pytest.mark.parametrize("stage", ["after_challenge", "after_response"])
def test_eof_during_access_check(daemons, monkeypatch, tmp_path, stage):
    secret = tmp_path / "secret"
    secret.write_bytes(SECRET)
    monkeypatch.setenv("NCS_IPC_ACCESS_FILE", str(secret))
    steps = [expect(9, "hello"), send(SPEC["challenge_v2"])]
    if stage == "after_response":
        steps.append(expect(33, "response"))
    d = daemons(steps + [close()])
    s = d.client_socket()
    with pytest.raises(error.EOF):
        events.notifications_connect(s, HA_MASK, d.host, d.port)
    s.close()
    d.finish()


READ_EOF_STEPS = {
    "no_data": [close()],
    "reset": [reset()],
    "inside_header": [send(EV["is_primary"][:3]), close()],
    "inside_payload": [send(EV["secondary_died"][:12]), close()],
    "after_an_event": [send(EV["is_primary"]), close()],
}


@pytest.mark.parametrize("name", sorted(READ_EOF_STEPS))
def test_eof_while_reading(daemons, name):
    d = daemons(subscribed() + READ_EOF_STEPS[name])
    s = connect_events(d)
    if name == "after_an_event":
        assert events.read_notification(s) == ha_event({"type": 5})
    with pytest.raises(error.EOF):
        events.read_notification(s)
    s.close()
    d.finish()


def test_numbers_match_the_spec():
    assert events.NOTIF_HA_INFO == 64 and events.NOTIF_HA_INFO_SYNC == 1048576
    assert [events.HA_INFO_NOPRIMARY, events.HA_INFO_SECONDARY_DIED,
            events.HA_INFO_SECONDARY_ARRIVED, events.HA_INFO_SECONDARY_INITIALIZED,
            events.HA_INFO_IS_PRIMARY, events.HA_INFO_IS_NONE,
            events.HA_INFO_BESECONDARY_RESULT] == list(range(1, 8))
    assert (events.HA_INFO_NOMASTER, events.HA_INFO_SLAVE_DIED, events.HA_INFO_SLAVE_ARRIVED,
            events.HA_INFO_SLAVE_INITIALIZED, events.HA_INFO_IS_MASTER,
            events.HA_INFO_BESLAVE_RESULT) == (1, 2, 3, 4, 5, 7)
    bits = [events.NOTIF_AUDIT, events.NOTIF_DAEMON, events.NOTIF_TAKEOVER_SYSLOG,
            events.NOTIF_COMMIT_SIMPLE, events.NOTIF_COMMIT_DIFF, events.NOTIF_USER_SESSION,
            events.NOTIF_HA_INFO, events.NOTIF_SUBAGENT_INFO, events.NOTIF_COMMIT_FAILED,
            events.NOTIF_SNMPA, events.NOTIF_FORWARD_INFO, events.NOTIF_NETCONF,
            events.NOTIF_DEVEL, events.NOTIF_HEARTBEAT, events.NOTIF_CONFIRMED_COMMIT,
            events.NOTIF_UPGRADE_EVENT, events.NOTIF_COMMIT_PROGRESS, events.NOTIF_AUDIT_SYNC,
            events.NOTIF_HEALTH_CHECK, events.NOTIF_STREAM_EVENT, events.NOTIF_HA_INFO_SYNC,
            events.NOTIF_PACKAGE_RELOAD, events.NOTIF_CQ_PROGRESS, events.NOTIF_REOPEN_LOGS,
            events.NOTIF_PROGRESS, events.NOTIF_CALL_HOME_INFO, events.NOTIF_JSONRPC,
            events.NOTIF_WEBUI, events.NOTIF_AUDIT_NETWORK, events.NOTIF_AUDIT_NETWORK_SYNC,
            events.NOTIF_COMPACTION]
    assert bits == [1 << i for i in range(31)]
    assert events.NOTIF_SYSLOG == 2 and events.NOTIF_SYSLOG_TAKEOVER == 6
    for name in events.__all__:
        assert hasattr(events, name)


# ---------------------------------------------------------------- the README snippet

README_SNIPPET = '''\
import socket
import confd_ha as ha
from confd_ha import events

ev = socket.socket()
events.notifications_connect(ev, events.NOTIF_HA_INFO)    # confd_ha.ADDR:PORT
while True:
    n = events.read_notification(ev)
    if n["type"] == events.NOTIF_HA_INFO and n["hnot"]["type"] == events.HA_INFO_NOPRIMARY:
        with socket.socket() as ctl:                       # our primary is gone: take over
            ha.connect(ctl, "my-token")
            ha.beprimary(ctl, "n2")
'''


def test_readme_snippet(daemons, monkeypatch):
    """The event loop of the README runs as printed: it ignores other events, promotes the
    node on NOPRIMARY and keeps reading (until the daemon closes, here)."""
    d = daemons(subscribed() + [send(EV["is_none"] + EV["noprimary_closed"]),
                                call(lambda c: d.conn(1).done.wait(2.0)), close()],
                [expect(9, "hello"), send(SPEC["reply_accepted"]), expect_frame("token"),
                 expect_frame("order"), send(SPEC["reply_ok"])])
    monkeypatch.setattr(confd_ha, "ADDR", d.host)
    monkeypatch.setattr(confd_ha, "PORT", d.port)
    scope: dict = {}
    with pytest.raises(error.EOF):
        exec(compile(README_SNIPPET, "README", "exec"), scope)
    scope["ev"].close()
    ev_conn, ctl_conn = d.finish()
    assert ev_conn["sub"] == EV["subscribe_ha"]
    assert ctl_conn["hello"] == SPEC["hello"]
    assert ctl_conn["token"] == frame(b"my-token")
    assert ctl_conn["order"] == term_frame((1, b"n2"))
