"""The agent's health endpoint on its own: a fake view, a real server on loopback, real sockets.

What each answer means (the design's table), HEAD, the aliases and the query string; and
hostile clients: garbage, an HTTP/2 preface, over-long request lines and header fields, a
slowloris that never finishes its request (cut at the read deadline), pipelining, too many
connections, a client that resets, and a view that fails -- always one JSON answer at most,
never a traceback, and the server keeps serving. Standard library only: no httpx needed.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from types import SimpleNamespace
from typing import Any, Dict, Optional

import pytest

from confd_ha.agent.health import (MAX_HEAD, MAX_REQUEST_LINE, AgentHealthView, HealthServer,
                                   parse_head)
from waiting import wait_until

HOST = "127.0.0.1"


class FakeView:
    """A :class:`HealthView` whose answers the test sets."""

    def __init__(self) -> None:
        self.leader_flag = False
        self.state: Optional[str] = "secondary"
        self.leader_name: Optional[str] = "n1"
        self.record: Optional[Dict[str, Any]] = {"node": "n2", "state": "secondary",
                                                 "primary": "n1", "health": "ok"}
        self.cluster: Any = {"cluster": "main", "leader": {"node": "n1"}, "paused": False,
                             "members": []}
        self.fail: Optional[BaseException] = None

    def is_leader(self) -> bool:
        if self.fail is not None:
            raise self.fail
        return self.leader_flag

    def node_state(self) -> Optional[str]:
        return self.state

    def leader(self) -> Optional[str]:
        return self.leader_name

    def member_record(self) -> Optional[Dict[str, Any]]:
        return self.record

    def cluster_view(self) -> Any:
        return self.cluster() if callable(self.cluster) else self.cluster


class Running:
    """A HealthServer on a loop in a thread of its own."""

    def __init__(self, view: FakeView, **kw: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = self.call(HealthServer(view, HOST, 0, **kw).start())
        self.port = self.server.port

    def call(self, coro: Any, timeout: float = 10) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def tasks(self) -> int:
        async def count() -> int:
            return len([t for t in asyncio.all_tasks() if t is not asyncio.current_task()])
        return int(self.call(count()))

    def connections(self) -> int:
        """The connections the server has accepted and not finished. Nothing public counts
        them (``tasks()`` also counts each one's inner read tasks), so this reads its set."""
        return len(self.server._writers)

    def close(self) -> None:
        try:
            self.call(self.server.close())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


@pytest.fixture
def view() -> FakeView:
    return FakeView()


@pytest.fixture
def server(view):
    r = Running(view, read_timeout=1.0, cluster_timeout=0.5)
    yield r
    r.close()


def connect(port: int, timeout: float = 5.0) -> socket.socket:
    s = socket.create_connection((HOST, port), timeout=timeout)
    return s


def read_all(s: socket.socket, limit: int = 1 << 20) -> bytes:
    data = b""
    while len(data) < limit:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return data


def exchange(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    with connect(port, timeout) as s:
        s.sendall(data)
        return read_all(s)


class Answer:
    def __init__(self, raw: bytes) -> None:
        head, _, self.body = raw.partition(b"\r\n\r\n")
        lines = head.decode("ascii").split("\r\n")
        self.status_line = lines[0]
        self.status = int(lines[0].split()[1])
        self.headers = {k.lower(): v.strip() for k, v in
                        (line.split(":", 1) for line in lines[1:])}

    def json(self) -> Any:
        return json.loads(self.body)


def get(port: int, path: str, method: str = "GET", extra: str = "") -> Answer:
    raw = exchange(port, ("%s %s HTTP/1.1\r\nHost: x\r\n%s\r\n" % (method, path, extra)
                          ).encode())
    return Answer(raw)


# ---------------------------------------------------------------- what the answers mean


def test_primary_only_when_leader_and_primary(server, view):
    view.leader_flag, view.state, view.leader_name = True, "primary", "n2"
    for path in ("/primary", "/leader"):
        a = get(server.port, path)
        assert a.status == 200 and a.status_line == "HTTP/1.1 200 OK"
        assert a.headers["content-type"] == "application/json"
        assert a.headers["connection"] == "close"
        assert int(a.headers["content-length"]) == len(a.body)
        assert a.json() == {"check": "primary", "ok": True, "node": "n2", "state": "primary",
                            "leader": "n2", "is_leader": True}
    view.state = "none"          # the leader whose node is not (yet) primary
    assert get(server.port, "/primary").status == 503
    view.leader_flag, view.state = False, "primary"   # a primary without the leader key
    a = get(server.port, "/primary")
    assert a.status == 503 and a.json()["ok"] is False
    view.state = None            # the node does not answer
    assert get(server.port, "/leader").status == 503


def test_secondary_only_of_the_current_leader(server, view):
    for path in ("/secondary", "/replica"):
        a = get(server.port, path)
        assert a.status == 200 and a.json()["check"] == "secondary" and a.json()["ok"]
    view.state = "secondary-relay"
    assert get(server.port, "/secondary").status == 200
    view.state = "secondary"
    view.record = dict(view.record, primary="n3")    # still following an old leader
    assert get(server.port, "/secondary").status == 503
    view.record = dict(view.record, primary="n1")
    view.leader_name = None                          # no leader at all
    assert get(server.port, "/secondary").status == 503
    view.leader_name, view.state = "n1", "none"
    assert get(server.port, "/replica").status == 503
    view.state, view.leader_flag = "primary", True
    assert get(server.port, "/secondary").status == 503


def test_health_is_the_member_record(server, view):
    a = get(server.port, "/health")
    assert a.status == 200 and a.json() == view.record
    view.state = None
    view.record = dict(view.record, health="node n2 is down: connection refused",
                       state="unknown")
    a = get(server.port, "/health")
    assert a.status == 503 and a.json()["health"].startswith("node n2 is down")
    view.record = None                                # before the first record
    a = get(server.port, "/health")
    assert a.status == 503 and a.json() == {"health": "starting"}


def test_cluster_plain_coroutine_failing_and_slow(server, view):
    a = get(server.port, "/cluster")
    assert a.status == 200 and a.json()["cluster"] == "main"

    async def fresh() -> Dict[str, Any]:
        await asyncio.sleep(0.01)
        return {"cluster": "main", "members": [{"node": "n1"}]}
    view.cluster = fresh
    assert get(server.port, "/cluster").json()["members"] == [{"node": "n1"}]

    async def broken() -> Dict[str, Any]:
        raise RuntimeError("no endpoint answered: http://127.0.0.1:1")
    view.cluster = broken
    a = get(server.port, "/cluster")
    assert a.status == 503
    assert a.json() == {"error": "cannot read the cluster from etcd: no endpoint answered: "
                                 "http://127.0.0.1:1"}

    async def slow() -> Dict[str, Any]:
        await asyncio.sleep(30)
        return {}
    view.cluster = slow
    began = time.monotonic()
    a = get(server.port, "/cluster")
    assert a.status == 503 and "did not answer within" in a.json()["error"]
    assert time.monotonic() - began < 3


def test_head_query_and_methods(server, view):
    view.leader_flag, view.state = True, "primary"
    full = get(server.port, "/primary")
    a = get(server.port, "/primary", "HEAD")
    assert a.status == 200 and a.body == b""
    assert a.headers["content-length"] == full.headers["content-length"]
    assert get(server.port, "/primary?from=haproxy&x=%20").status == 200
    for method in ("POST", "PUT", "DELETE", "OPTIONS", "PATCH"):
        a = get(server.port, "/primary", method, "Content-Length: 0\r\n")
        assert a.status == 405 and a.headers["allow"] == "GET, HEAD"
        assert "use GET or HEAD" in a.json()["error"]
    a = get(server.port, "/nope")
    assert a.status == 404 and a.json()["paths"] == ["/cluster", "/health", "/leader",
                                                      "/primary", "/replica", "/secondary"]
    assert get(server.port, "/").status == 404
    assert get(server.port, "/primary/").status == 404
    assert get(server.port, "/PRIMARY").status == 404
    # HTTP/1.0 and bare LF line ends are accepted
    a = Answer(exchange(server.port, b"GET /primary HTTP/1.0\n\n"))
    assert a.status == 200


def test_a_request_with_a_body_still_gets_its_answer(server, view):
    body = b"x" * 100000
    raw = exchange(server.port, b"POST /primary HTTP/1.1\r\nContent-Length: %d\r\n\r\n"
                   % len(body) + body)
    assert Answer(raw).status == 405


# ---------------------------------------------------------------- hostile clients


@pytest.mark.parametrize("data, status", [
    (b"\x00\x01\x02\x03garbage\r\n\r\n", 400),
    (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400),                 # the HTTP/2 preface
    (b"GET /primary\r\n\r\n", 400),                               # HTTP/0.9
    (b"GET /primary HTTP/1.1 extra\r\n\r\n", 400),
    (b"GET  /primary HTTP/1.1\r\n\r\n", 400),
    (b"GET /primary HTTP/9.9\r\n\r\n", 400),
    (b"GET http://x/primary HTTP/1.1\r\n\r\n", 400),
    (b"GET /pri\xffmary HTTP/1.1\r\n\r\n", 400),
    (b"G\xc3\x89T /primary HTTP/1.1\r\n\r\n", 400),
    (b"GET /primary HTTP/1.1\r\nno colon here\r\n\r\n", 400),
    (b"GET /primary HTTP/1.1\r\nHost: x\r\n folded: value\r\n\r\n", 400),
    (b"GET /primary HTTP/1.1\r\nX: caf\xc3\xa9\r\n\r\n", 400),
    (b"GET /primary HTTP/1.1\r\nX: a\x01b\r\n\r\n", 400),
    (b"GET /primary HTTP/1.1\r\nBad Name: v\r\n\r\n", 400),
    (b"\r\n\r\n", 400),
    (b"GET /" + b"a" * MAX_REQUEST_LINE + b" HTTP/1.1\r\n\r\n", 414),
    (b"GET /" + b"a" * 100000, 414),                              # never ends
    (b"GET /primary HTTP/1.1\r\n" + b"X-A: b\r\n" * 100 + b"\r\n", 431),
    (b"GET /primary HTTP/1.1\r\nX-Big: " + b"b" * MAX_HEAD + b"\r\n\r\n", 431),
    (b"GET /primary HTTP/1.1\r\n" + b"X-A: b\r\n" * 200000, 431),  # 1.4 MB, never ends
])
def test_malformed_requests(server, data, status):
    raw = exchange(server.port, data)
    a = Answer(raw)
    assert a.status == status
    assert "error" in a.json()
    assert b"Traceback" not in raw
    assert get(server.port, "/health").status == 200     # still serving


def test_slowloris_is_cut_at_the_deadline(server):
    """One byte every 0.1 s, never finishing: the server answers 408 and closes at its
    1 s read deadline (the test's setting), however long the client would go on."""
    with connect(server.port, timeout=10) as s:
        began = time.monotonic()
        s.settimeout(0.1)
        got = b""
        for b in b"GET /primary HTTP/1.1\r\nX-Slow: " + b"z" * 1000:
            try:
                s.send(bytes([b]))
            except OSError:     # the server closed: broken pipe or reset
                break
            try:
                chunk = s.recv(4096)
            except socket.timeout:
                continue
            except ConnectionResetError:
                break
            got += chunk
            if not chunk:
                break
            if time.monotonic() - began > 5:
                break
        took = time.monotonic() - began
    assert 0.9 <= took < 2.5, took
    assert Answer(got).status == 408


def test_a_silent_client_is_cut_at_the_deadline(server):
    with connect(server.port, timeout=10) as s:
        began = time.monotonic()
        raw = read_all(s)
        took = time.monotonic() - began
    assert 0.9 <= took < 2.5 and Answer(raw).status == 408


def test_clients_that_vanish_do_not_disturb_it(server):
    for _ in range(20):
        s = connect(server.port)
        s.close()                                   # connect and go
    for _ in range(20):
        s = connect(server.port)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.sendall(b"GET /health HT")
        s.close()                                   # reset half-way through
    s = connect(server.port)
    s.sendall(b"GET /health HTTP/1.1\r\n\r\n")
    s.shutdown(socket.SHUT_WR)                       # half-close after the request: fine
    assert Answer(read_all(s)).status == 200
    s.close()
    assert get(server.port, "/health").status == 200
    wait_until(lambda: server.tasks() == 0, timeout=3.0)


def test_one_request_per_connection(server):
    raw = exchange(server.port, b"GET /health HTTP/1.1\r\n\r\nGET /cluster HTTP/1.1\r\n\r\n")
    assert raw.count(b"HTTP/1.1 ") == 1 and Answer(raw).status == 200


def test_too_many_connections_get_503(view):
    r = Running(view, read_timeout=5.0, max_connections=2)
    try:
        idle = [connect(r.port), connect(r.port)]
        wait_until(lambda: r.connections() == 2)   # both accepted and being served
        began = time.monotonic()
        a = get(r.port, "/health")
        assert a.status == 503 and a.json() == {"error": "too many connections"}
        assert time.monotonic() - began < 1
        for s in idle:
            s.close()
        wait_until(lambda: r.tasks() == 0)   # both served to their end
        assert get(r.port, "/health").status == 200
    finally:
        r.close()


def test_a_failing_view_is_a_500_without_traceback(server, view):
    view.fail = KeyError("secret internals")
    raw = exchange(server.port, b"GET /primary HTTP/1.1\r\n\r\n")
    a = Answer(raw)
    assert a.status == 500 and a.json() == {"error": "internal error: KeyError"}
    assert b"Traceback" not in raw and b"secret internals" not in raw
    view.fail = None
    assert get(server.port, "/secondary").status == 200


def test_close_cuts_open_connections_and_leaves_no_task(view):
    r = Running(view, read_timeout=30.0)
    try:
        idle = connect(r.port, timeout=5)
        idle.sendall(b"GET /health HTTP/1.1\r\n")     # never finished
        wait_until(lambda: r.connections() == 1)     # accepted and being read
        began = time.monotonic()
        r.call(r.server.close())
        assert time.monotonic() - began < 2
        assert read_all(idle) == b""                 # cut, no answer
        idle.close()
        assert r.tasks() == 0
        with pytest.raises(OSError):
            connect(r.port, timeout=1).close()
    finally:
        r.close()


def test_url_and_port_zero(server):
    assert server.server.url == "http://127.0.0.1:%d" % server.port and server.port > 0


def test_listen_error_is_an_oserror(server, view):
    with pytest.raises(OSError):
        Running(view, read_timeout=1.0).call(HealthServer(view, HOST, server.port).start())


def test_parse_head():
    r = parse_head(b"GET /health?x=1 HTTP/1.1\r\nHost: a:1\r\nX-Y:  z \r\n")
    assert (r.method, r.path, r.headers) == ("GET", "/health", {"host": "a:1", "x-y": "z"})


# ---------------------------------------------------------------- the view of an agent


def test_agent_health_view_reads_the_agent():
    record = SimpleNamespace(to_dict=lambda: {"node": "n1", "state": "primary"})
    agent = SimpleNamespace(
        is_leader=True, node_ok=True, node_state=3, record=record,
        snapshot=SimpleNamespace(leader=SimpleNamespace(node="n1")),
        make_record=lambda snap: record)
    v = AgentHealthView(agent)
    assert (v.is_leader(), v.node_state(), v.leader(), v.member_record()) == (
        True, "primary", "n1", {"node": "n1", "state": "primary"})
    agent.node_ok = False
    assert v.node_state() is None
    agent.node_ok, agent.node_state = True, 4
    assert v.node_state() == "secondary-relay"
    agent.snapshot, agent.record = None, None
    assert v.leader() is None and v.member_record() == {"node": "n1", "state": "primary"}
