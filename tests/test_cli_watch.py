"""``confd-ha watch`` in-process: it runs in the main thread (where Ctrl-C lands) while
another thread drives emulated nodes through the real client; the printed lines and JSON
objects (names and ISO 8601 times) are compared with what the nodes did, and SIGINT ends it
with exit 0.
"""

from __future__ import annotations

import datetime
import io
import json
import os
import signal
import socket
import threading
import time

import pytest

import confd_ha as ha
from confd_ha import cli
from net_helpers import dead_port
from waiting import wait_until


TOKEN = "watch-t0ken-Qr5"


@pytest.fixture(autouse=True)
def sigint_raises(monkeypatch):
    monkeypatch.delenv("CONFD_IPC_ADDR", raising=False)
    monkeypatch.delenv("CONFD_IPC_PORT", raising=False)
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, old)


class Lines(io.StringIO):
    """An output stream another thread can wait on."""

    def lines(self):
        return self.getvalue().splitlines()

    def wait_for(self, count: int, timeout: float = 5.0):
        wait_until(lambda: len(self.lines()) >= count, timeout)
        return self.lines()


def watch(node, extra, produce):
    """Run ``confd-ha watch`` on ``node`` in this thread while ``produce(out)`` runs in
    another; that thread sends SIGINT when done (or failing). Returns (rc, out, err)."""
    out, err = Lines(), io.StringIO()
    failure = []
    done = threading.Event()

    def producer():
        try:
            wait_until(lambda: node.subscribers == 1)
            produce(out)
        except BaseException as exc:  # reported by the main thread
            failure.append(exc)
        finally:
            if not done.is_set():
                os.kill(os.getpid(), signal.SIGINT)

    t = threading.Thread(target=producer)
    t.start()
    try:
        rc = cli.main(["watch", "--ipc-address", node.ipc_address, "--ipc-port", str(node.ipc_port)] + extra,
                      out=out, err=err)
        done.set()
    finally:
        while t.is_alive():
            try:
                t.join(10)
            except KeyboardInterrupt:  # a SIGINT racing with an early return of main()
                pass
    if failure:
        raise failure[0]
    assert TOKEN not in out.getvalue() + err.getvalue()
    return rc, out.lines(), err.getvalue()


def untimed(lines):
    """Text lines without their leading time, which must be ISO 8601 with a UTC offset."""
    rest = []
    for line in lines:
        when, _, text = line.partition(" ")
        assert datetime.datetime.fromisoformat(when).utcoffset() is not None, line
        rest.append(text)
    return rest


def objects(lines):
    """JSON lines without their "time", which must be ISO 8601 with a UTC offset."""
    docs = [json.loads(line) for line in lines]
    for doc in docs:
        assert datetime.datetime.fromisoformat(doc.pop("time")).utcoffset() is not None
    return docs


def control(node):
    s = socket.socket()
    s.settimeout(5)
    ha.connect(s, TOKEN, node.ipc_address, node.ipc_port)
    return s


def secondary_comes_and_goes(n1, n2, wait_reply: int, primary_ends: bool):
    """A producer for ``watch(n1, ...)``: n1 becomes primary, n2 joins it (``besecondary``
    with ``wait_reply``) and leaves, and, if ``primary_ends``, n1 becomes none; it waits for
    the event of each step."""

    def produce(out):
        with control(n1) as c1, control(n2) as c2:
            ha.beprimary(c1, "n1")
            out.wait_for(1)
            ha.besecondary(c2, "n2", "n1", n1.ipc_address, wait_reply)
            out.wait_for(2)
            ha.benone(c2)  # (secondary_dead reports nothing for the node it names)
            out.wait_for(3)
            if primary_ends:
                ha.benone(c1)
                out.wait_for(4)

    return produce


def primary_dies_under_a_secondary(n1, n2, wrong_name_first: bool):
    """A producer for ``watch(n2, ...)``: n1 becomes primary with a commit n2 lacks, n2
    joins it (after a join naming the wrong primary if ``wrong_name_first``), then n1 dies;
    it waits for the events of each step."""

    def produce(out):
        with control(n1) as c1, control(n2) as c2:
            ha.beprimary(c1, "n1")
            n1.commit([("set", "/sys/host", "a")])  # n2 is behind: a copy
            seen = 0
            if wrong_name_first:
                ha.besecondary(c2, "n2", "wrong", n1.ipc_address, 0)
                seen = 2
                out.wait_for(seen)
            ha.besecondary(c2, "n2", "n1", n1.ipc_address, 0)
            out.wait_for(seen + 2)
            n1.kill()
            out.wait_for(seen + 4)

    return produce


def test_watch_prints_one_line_per_event_and_ctrl_c_exits_0(trio):
    rc, lines, err = watch(trio[0], [], secondary_comes_and_goes(trio[0], trio[1], 1, True))
    assert rc == 0
    assert untimed(lines) == [
        "is-primary",
        "secondary-arrived node=n2 address=127.0.0.2",
        "secondary-died node=n2 address=127.0.0.2",
        "is-none",
    ]
    assert err == ""  # watch takes no token: no token warnings, no B-02 note


def test_watch_on_a_secondary(trio):
    rc, lines, err = watch(trio[1], [], primary_dies_under_a_secondary(trio[0], trio[1], True))
    assert rc == 0
    lines = untimed(lines)
    # the events of ConfD 8.2.5 (docs/conformance.md "Events"): a failed join ends with
    # IS_NONE, an asynchronous one reports its result first, a lost primary ends with IS_NONE
    assert lines == [
        "besecondary-result result=29 (ERR_HA_BADNAME)",
        "is-none",
        "besecondary-result result=0",
        "secondary-initialized by_copy=1",
        "noprimary reason=ERR_HA_CLOSED (26)",
        "is-none",
    ]


def test_watch_json_lines(trio):
    rc, lines, err = watch(trio[0], ["--json"], secondary_comes_and_goes(trio[0], trio[1], 0, False))
    assert rc == 0
    assert objects(lines) == [
        {"event": "is-primary", "type": 5},
        {"event": "secondary-arrived", "type": 3, "node": "n2", "address": "127.0.0.2"},
        {"event": "secondary-died", "type": 2, "node": "n2", "address": "127.0.0.2"},
    ]


def test_watch_json_reasons_and_results(trio):
    rc, lines, err = watch(trio[1], ["--json"], primary_dies_under_a_secondary(trio[0], trio[1], False))
    assert rc == 0
    assert objects(lines) == [
        {"event": "besecondary-result", "type": 7, "result": 0, "error": None},
        {"event": "secondary-initialized", "type": 4, "by_copy": True},
        {"event": "noprimary", "type": 1, "reason": "ERR_HA_CLOSED", "reason_code": 26},
        {"event": "is-none", "type": 6},
    ]


def test_watch_sync_acknowledges_every_event(trio):
    """With --sync the node halts HA work after each event until it is acknowledged
    (docs/conformance.md "One order at a time"):
    a sequence of orders completing shows that watch acknowledges."""
    n1 = trio[0]
    n2 = trio[1]

    def produce(out):
        with control(n1) as c1, control(n2) as c2:
            for i in range(3):
                ha.beprimary(c1, "n1")
                ha.besecondary(c2, "n2", "n1", n1.ipc_address, 1)
                # The arrival on the primary is not ordered with the secondary's reply (B-26).
                out.wait_for(3 * i + 2)
                ha.benone(c1)
                out.wait_for(3 * i + 3)
                wait_until(lambda: n2.state == ha.STATE_NONE)

    rc, lines, err = watch(n1, ["--sync"], produce)
    assert rc == 0
    assert untimed(lines) == ["is-primary", "secondary-arrived node=n2 address=127.0.0.2", "is-none"] * 3


def test_watch_ends_with_exit_3_when_the_node_dies(trio):
    n1 = trio[0]
    out, err = io.StringIO(), io.StringIO()
    t = threading.Thread(target=lambda: (wait_until(lambda: n1.subscribers == 1), n1.kill()))
    t.start()
    rc = cli.main(["watch", "--ipc-address", n1.ipc_address, "--ipc-port", str(n1.ipc_port)],
                  out=out, err=err)
    t.join(5)
    assert (rc, out.getvalue()) == (3, "")
    assert err.getvalue() == "confd-ha: ConfD at %s:%d closed the event connection (the " \
        "daemon stopped?)\n" % (n1.ipc_address, n1.ipc_port)


def test_watch_with_nothing_listening_is_exit_3():
    port = dead_port()
    out, err = io.StringIO(), io.StringIO()
    start = time.monotonic()
    rc = cli.main(["watch", "--ipc-port", str(port)], out=out, err=err)
    assert rc == 3
    assert err.getvalue() == \
        "confd-ha: cannot connect to ConfD at 127.0.0.1:%d: nothing listens there\n" % port
    assert time.monotonic() - start < 5
