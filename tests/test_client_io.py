"""Client I/O semantics against a scripted fake daemon (wire-protocol W-03, W-15, W-27, W-29):
timeouts, slow peers, peer close and reset at every stage, signals, the GIL, oversized and
hostile reply frames, the exception classes, and secrecy of the token.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import signal
import struct
import threading
import time

import pytest

import confd_ha as ha
from confd_ha import error
from fakedaemon import (  # noqa: F401 -- fixtures
    MALFORMED, SECRET, SECRET_MARK, SPEC, TOKEN, assert_no_secret, clean_client_env, close, drip,
    expect, expect_frame, frame, ha_connected, hello_reply, mark, peak_during, raises, reset,
    send, sleep, token_never_logged, use_access_file,
)
from waiting import wait_readable


def session(daemons, *steps, timeout=2.0, family="inet"):
    d = daemons([ha_connected(), list(steps)], family=family)
    s = d.client_socket(timeout=timeout)
    ha.connect(s, TOKEN, **d.where)
    return d, s


# ---------------------------------------------------------------- exception classes


def test_eof_and_error_are_sibling_exceptions():
    assert issubclass(error.EOF, Exception) and issubclass(error.Error, Exception)
    assert not issubclass(error.EOF, error.Error)
    assert not issubclass(error.Error, error.EOF)
    assert issubclass(error.Timeout, error.Error) and issubclass(error.Timeout, TimeoutError)
    assert not issubclass(error.EOF, OSError)
    assert str(error.EOF()) == "ConfD closed connection"


# ---------------------------------------------------------------- timeouts


def test_timeout_waiting_for_reply(daemons):
    d, s = session(daemons, expect_frame("order"), timeout=0.2)   # then never answers
    t0 = time.monotonic()
    e = raises(error.Timeout, ha.status, s)
    elapsed = time.monotonic() - t0
    assert 0.15 < elapsed < 1.5
    assert isinstance(e, error.Error) and isinstance(e, TimeoutError)
    assert e.confd_errno == error.ERR_OS == 24
    assert e.confd_strerror == "system call failed"
    assert str(e).startswith("system call failed (24): ")
    assert e.errno == errno.ETIMEDOUT


def test_timeout_is_caught_as_builtin_timeout_error(daemons):
    d, s = session(daemons, expect_frame("order"), timeout=0.2)
    with pytest.raises(TimeoutError):
        ha.benone(s)


def test_timeout_waiting_for_hello_reply(daemons):
    d = daemons([expect(9, "hello")])                 # reads the hello, never replies
    s = d.client_socket(timeout=0.2)
    e = raises(error.Timeout, ha.connect, s, TOKEN, **d.where)
    assert e.confd_errno == error.ERR_OS


def test_timeout_during_access_check(daemons, monkeypatch, tmp_path):
    use_access_file(monkeypatch, tmp_path)
    d = daemons([expect(9, "hello"), send(SPEC["challenge_v2"][:5])])   # challenge cut short
    s = d.client_socket(timeout=0.2)
    e = raises(error.Timeout, ha.connect, s, TOKEN, **d.where)
    assert e.confd_errno == error.ERR_OS


def test_timeout_bounds_each_wait_not_the_whole_call(daemons):
    """A slow but steady daemon (one byte per 50 ms) beats a 0.2 s socket timeout."""
    d, s = session(daemons, expect_frame("order"), drip(SPEC["reply_ok"], 0.05), timeout=0.2)
    ha.benone(s)


# ---------------------------------------------------------------- slow peers


def test_drip_fed_status_reply(daemons):
    d, s = session(daemons, expect_frame("order"), drip(SPEC["status_relay"], 0.005))
    assert ha.status(s) == (4, [{"nodeid": "n1", "address": "10.0.0.1"},
                                {"nodeid": "n3", "address": "10.0.0.3"}])


def test_drip_fed_handshake_and_error_reply(daemons):
    d = daemons([expect(9, "hello"), drip(SPEC["reply_accepted"], 0.005),
                 expect_frame("token"), expect_frame("order"),
                 drip(SPEC["reply_error_28_reason"], 0.005)])
    s = d.client_socket()
    ha.connect(s, TOKEN, **d.where)
    e = raises(error.Error, ha.beprimary, s, "n1")
    assert (e.confd_errno, e.confd_lasterr) == (28, "bad token")


def test_drip_fed_access_check(daemons, monkeypatch, tmp_path):
    use_access_file(monkeypatch, tmp_path)
    d = daemons([expect(9, "hello"), drip(SPEC["challenge_v2"], 0.002), expect(33, "response"),
                 drip(SPEC["access_ok"] + SPEC["reply_accepted"], 0.002), expect_frame("token")])
    s = d.client_socket()
    ha.connect(s, TOKEN, **d.where)
    s.close()
    assert d.finish()[0]["response"] == SPEC["response_v2"]


def test_two_frames_in_one_segment(daemons):
    """Two replies arriving together: each call takes exactly its own frame."""
    d, s = session(daemons, expect_frame("o1"),
                   send(SPEC["reply_error_17"] + SPEC["status_secondary"]), expect_frame("o2"))
    e = raises(error.Error, ha.beprimary, s, "n1")
    assert e.confd_errno == 17
    assert ha.status(s) == (2, [{"nodeid": "n1", "address": "10.0.0.1"}])
    s.close()
    (rec,) = d.finish()
    assert rec["o2"] == SPEC["getstatus"]


# ---------------------------------------------------------------- peer close / reset (W-29)

EOF_STAGES = {
    "before_hello_reply": [expect(9, "hello"), close()],
    "mid_hello_reply": [expect(9, "hello"), send(SPEC["reply_accepted"][:5]), close()],
    "reset_before_hello_reply": [expect(9, "hello"), reset()],
    "reset_mid_hello_reply": [expect(9, "hello"), send(SPEC["reply_accepted"][:3]), reset()],
}


@pytest.mark.parametrize("stage", sorted(EOF_STAGES))
@pytest.mark.parametrize("family", ["inet", "unix"])
def test_eof_during_connect(daemons, stage, family):
    d = daemons(EOF_STAGES[stage], family=family)
    s = d.client_socket()
    e = raises(error.EOF, ha.connect, s, TOKEN, **d.where)
    assert not isinstance(e, error.Error)
    assert str(e) == "ConfD closed connection"


def test_eof_before_anything(daemons):
    d = daemons([close()])
    s = d.client_socket()
    raises(error.EOF, ha.connect, s, TOKEN, **d.where)


CALL_STAGES = {
    "after_request": [expect_frame("order"), close()],
    "mid_frame_header": [expect_frame("order"), send(SPEC["reply_ok"][:2]), close()],
    "after_frame_header": [expect_frame("order"), send(SPEC["reply_ok"][:4]), close()],
    "mid_payload": [expect_frame("order"), send(SPEC["reply_ok"][:7]), close()],
    "reset_after_request": [expect_frame("order"), reset()],
    "reset_mid_header": [expect_frame("order"), send(SPEC["reply_ok"][:3]), reset()],
    "reset_mid_payload": [expect_frame("order"), send(SPEC["reply_ok"][:8]), reset()],
    "close_after_delay": [expect_frame("order"), sleep(0.1), close()],
}


@pytest.mark.parametrize("stage", sorted(CALL_STAGES))
@pytest.mark.parametrize("family", ["inet", "unix"])
@pytest.mark.parametrize("fn,args", [(ha.beprimary, ("n1",)), (ha.status, ()),
                                     (ha.besecondary, ("n2", "n1", "10.0.0.1", 1))],
                         ids=["beprimary", "status", "besecondary"])
def test_eof_during_call(daemons, stage, family, fn, args):
    d, s = session(daemons, CALL_STAGES[stage], family=family)
    e = raises(error.EOF, fn, s, *args)
    assert str(e) == "ConfD closed connection"


@pytest.mark.parametrize("how", ["close", "reset"])
def test_send_to_closed_peer_is_eof(daemons, how):
    """The daemon went away between calls: sending (EPIPE/ECONNRESET) or the read that
    follows gives EOF, never an OS error."""
    d, s = session(daemons, close() if how == "close" else reset(), mark("gone"))
    wait_readable(s)    # the FIN / RST has arrived before the next call
    for _ in range(3):
        raises(error.EOF, ha.benone, s)


def test_nowait_besecondary_to_reset_peer_is_eof(daemons):
    d, s = session(daemons, reset())
    d.conn(0).done.wait(2)
    wait_readable(s)    # the RST has arrived
    raises(error.EOF, ha.besecondary, s, "n2", "n1", "10.0.0.1", 0)


# ---------------------------------------------------------------- blocking behaviour


def test_gil_released_while_waiting(daemons):
    d, s = session(daemons, expect_frame("order"), sleep(0.3), send(SPEC["status_none"]))
    count = [0]
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            count[0] += 1

    t = threading.Thread(target=spin)
    t.start()
    try:
        time.sleep(0.02)
        before = count[0]
        assert ha.status(s) == (1, [])
        during = count[0] - before
    finally:
        stop.set()
        t.join(2)
    # A held GIL would leave the spinner at (almost) zero for 0.3 s.
    assert during > 10000


def test_other_thread_runs_calls_while_one_blocks(daemons):
    d1, s1 = session(daemons, expect_frame("order"), sleep(0.6),
                     send(SPEC["reply_ok"]), mark("replied"))
    d2, s2 = session(daemons, *[[expect_frame("o%d" % i), send(SPEC["status_none"])]
                                for i in range(20)])
    done = []
    t = threading.Thread(target=lambda: done.append(ha.beprimary(s1, "n1") or "ok"))
    t.start()
    d1.conn(0)
    for _ in range(20):
        assert ha.status(s2) == (1, [])
    finished = time.monotonic()
    t.join(2)
    assert done == ["ok"]
    s1.close()
    d1.finish()
    # All 20 calls completed before the first call's reply was even sent.
    assert finished < d1.conn(0).times["replied"]


@contextlib.contextmanager
def alarm(handler, delay: float, interval: float = 0.0):
    """SIGALRM runs ``handler`` after ``delay`` seconds (then every ``interval``) inside the
    block; the timer and the old handler are restored after it."""
    old = signal.signal(signal.SIGALRM, handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, delay, interval)
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def interrupt(signum, frame):
    """A Ctrl-C-like signal handler."""
    raise KeyboardInterrupt


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs setitimer")
def test_signal_interrupts_blocked_call(daemons):
    """Ctrl-C: a handler raising KeyboardInterrupt ends a call blocked in recv (W-03)."""
    d, s = session(daemons, expect_frame("order"), timeout=3.0)   # never answers
    # (Without the interrupt the call would end in a Timeout after 3 s.)
    with alarm(interrupt, 0.1), pytest.raises(KeyboardInterrupt):
        ha.status(s)


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs setitimer")
def test_signal_without_exception_is_retried(daemons):
    """PEP 475: a signal whose handler returns does not disturb the call."""
    d, s = session(daemons, expect_frame("order"), sleep(0.3), send(SPEC["reply_ok"]))
    hits = []
    with alarm(lambda *a: hits.append(1), 0.05, 0.05):
        ha.beprimary(s, "n1")
    assert hits


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs setitimer")
def test_signal_interrupts_blocked_connect(daemons):
    d = daemons([expect(9, "hello")])
    s = d.client_socket(timeout=3.0)
    with alarm(interrupt, 0.1), pytest.raises(KeyboardInterrupt):
        ha.connect(s, TOKEN, **d.where)


# ---------------------------------------------------------------- oversized frames (W-15)


@pytest.mark.parametrize("announced", [1025, 2048, 0x7FFFFFFF, 0xFFFFFFFF])
def test_oversized_reply_refused_without_allocation(daemons, announced):
    ha.configure(max_reply=1024)     # restored by clean_client_env
    d, s = session(daemons, expect_frame("order"), send(struct.pack(">I", announced)))
    e, peak = peak_during(lambda: raises(error.Error, ha.status, s))
    assert e.confd_errno == error.ERR_PROTOUSAGE
    assert peak < 256 * 1024
    assert s.fileno() == -1          # the client closed the socket
    (rec,) = d.finish()
    assert rec.client_closed
    assert rec.extra == b""


def test_default_limit_refuses_4gib(daemons):
    d, s = session(daemons, expect_frame("order"), send(b"\xff\xff\xff\xff"))
    e, peak = peak_during(lambda: raises(error.Error, ha.beprimary, s, "n1"))
    assert e.confd_errno == error.ERR_PROTOUSAGE
    assert peak < 256 * 1024
    assert s.fileno() == -1


def test_reply_at_the_limit_is_accepted(daemons):
    """max_reply=1024: a 1024-byte payload is read, a 1025-byte announcement is refused."""
    ha.configure(max_reply=1024)
    head = bytes.fromhex("83 68 03 64 00 05 65 72 72 6F 72 61 1C 6D")   # {error, 28, <<...
    reason = b"r" * (1024 - len(head) - 4 - 1) + b"\x00"
    payload = head + struct.pack(">I", len(reason)) + reason
    assert len(payload) == 1024
    d, s = session(daemons, expect_frame("o1"), send(frame(payload)), expect_frame("o2"),
                   send(struct.pack(">I", 1025)))
    e = raises(error.Error, ha.beprimary, s, "n1")
    assert e.confd_errno == 28 and e.confd_lasterr == "r" * (len(reason) - 1)
    e = raises(error.Error, ha.beprimary, s, "n1")
    assert e.confd_errno == error.ERR_PROTOUSAGE and s.fileno() == -1


# ---------------------------------------------------------------- hostile payloads (W-27)

ERR28 = bytes.fromhex("83 68 03 64 00 05 65 72 72 6F 72 61 1C")   # {error, 28, ...

HOSTILE = {
    **MALFORMED,
    "wrong_version_byte": frame(bytes.fromhex("82 64 00 02 6F 6B")),
    "only_version": frame(b"\x83"),
    "new_ref_90": frame(bytes.fromhex("83 5A 00 01 64 00 01 61 00 00 00 00 00 00 00 00")),
    "bit_binary_77": frame(bytes.fromhex("83 4D 00 00 00 01 03 C0")),
    "export_113": frame(bytes.fromhex("83 71 64 00 01 6D 64 00 01 66 61 01")),
    "truncated_atom": frame(bytes.fromhex("83 64 00 09 6F 6B")),
    "truncated_binary_len": frame(ERR28 + bytes.fromhex("6D FF FF FF FF 00")),
    "tuple_arity_lie": frame(bytes.fromhex("83 69 FF FF FF FF 61 01")),
    "list_len_lie": frame(ERR28 + bytes.fromhex("6C FF FF FF FF 61 01 6A")),
    "improper_list_reason": frame(ERR28 + bytes.fromhex("6C 00 00 00 01 61 41 61 42")),
    "big_code_too_large": frame(bytes.fromhex("83 68 02 64 00 05 65 72 72 6F 72")
                                + bytes.fromhex("6E 09 00 01 02 03 04 05 06 07 08 09")),
    "nested_101": frame(b"\x83" + b"\x68\x01" * 101 + b"\x6A"),
    "bad_utf8_atom": frame(bytes.fromhex("83 76 00 02 C3 28")),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
@pytest.mark.parametrize("fn,args", [(ha.beprimary, ("n1",)), (ha.status, ())],
                         ids=["beprimary", "status"])
def test_hostile_reply_is_protousage(daemons, kind, fn, args):
    d, s = session(daemons, expect_frame("order"), send(HOSTILE[kind]))
    e = raises(error.Error, fn, s, *args)
    assert type(e) is error.Error
    assert e.confd_errno == error.ERR_PROTOUSAGE == 21


def test_connection_usable_after_hostile_reply(daemons):
    """A malformed but complete frame leaves the stream in step: the next call works."""
    d, s = session(daemons, expect_frame("o1"), send(HOSTILE["nested_tuple_100000"]),
                   expect_frame("o2"), send(SPEC["status_none"]))
    raises(error.Error, ha.status, s)
    assert ha.status(s) == (1, [])


def test_atom_encodings_accepted_as_ok(daemons):
    """W-18 + §8: 'ok' as SMALL_ATOM (115), ATOM_UTF8 (118), SMALL_ATOM_UTF8 (119)."""
    replies = [frame(bytes.fromhex(h)) for h in
               ("83 73 02 6F 6B", "83 76 00 02 6F 6B", "83 77 02 6F 6B")]
    d, s = session(daemons, *[[expect_frame("o%d" % i), send(r)] for i, r in enumerate(replies)])
    for _ in replies:
        ha.benone(s)


def test_error_code_in_other_integer_encodings(daemons):
    replies = [frame(bytes.fromhex(h)) for h in (
        "83 68 02 64 00 05 65 72 72 6F 72 62 00 00 00 11",        # INTEGER 17
        "83 68 02 64 00 05 65 72 72 6F 72 6E 01 00 11",           # SMALL_BIG 17
        "83 68 02 73 05 65 72 72 6F 72 61 11",                    # SMALL_ATOM error
    )]
    d, s = session(daemons, *[[expect_frame("o%d" % i), send(r)] for i, r in enumerate(replies)])
    for _ in replies:
        e = raises(error.Error, ha.benone, s)
        assert e.confd_errno == 17


# ---------------------------------------------------------------- the token stays secret


def test_token_absent_from_errors_and_logs(daemons, caplog, monkeypatch, tmp_path):
    """Drive many failure paths with the token set; no exception text, repr, traceback or
    log record may contain it."""
    caplog.set_level(logging.DEBUG)
    failures = []
    scripts = [
        [expect(9, "hello"), close()],
        [ha_connected(), expect_frame("o"), send(SPEC["reply_error_28_reason"])],
        [ha_connected(), expect_frame("o"), send(HOSTILE["nested_tuple_100000"])],
        [ha_connected(), expect_frame("o"), reset()],
        [ha_connected(hello_reply(7)), expect_frame("o"), close()],
        [ha_connected(), expect_frame("o"), send(b"\xff\xff\xff\xff")],
    ]
    for sc in scripts:
        d = daemons(sc)
        s = d.client_socket(timeout=0.5)
        try:
            ha.connect(s, TOKEN, **d.where)
            ha.beprimary(s, "n1")
        except (error.Error, error.EOF) as exc:
            failures.append(exc)
        s.close()
    # Version rejected twice, and an unreadable access file.
    d = daemons([expect(9, "hello"), send(bytes.fromhex("01 00 4D 07 07 01 00 3C 12")), close()],
                [expect(9, "hello"), send(bytes.fromhex("01 00 42 06 06 00 00 3C 12")), close()])
    try:
        ha.connect(d.client_socket(), TOKEN, **d.where)
    except error.Error as exc:
        failures.append(exc)
    monkeypatch.setenv("CONFD_IPC_ACCESS_FILE", str(tmp_path / "missing"))
    d = daemons([])
    try:
        ha.connect(d.client_socket(), TOKEN, **d.where)
    except error.Error as exc:
        failures.append(exc)
    assert len(failures) == 8
    for exc in failures:
        assert_no_secret(exc)
    assert SECRET_MARK not in caplog.text
