"""The agent's health endpoint: a small HTTP/1.1 server on asyncio, standard library only.

Load balancers and keepalived ask it which node is the primary (docs/agent.md, "The health
endpoint")::

    GET /primary    (also /leader)    200 this agent holds ``leader`` and its node is primary
    GET /secondary  (also /replica)   200 the node is a secondary of the current leader
    GET /health                       200 the node answers; the body is the member record
    GET /cluster                      200 the cluster as etcd holds it

Every other answer is 503 (the check failed), 404 (unknown path), 405 (a method other than
GET or HEAD), 400 (not a well-formed HTTP/1.x request), 408 (the request did not arrive in
time), 414/431 (request line or header fields too long), 503 when too many connections are
open. Bodies are small JSON objects; HEAD gets the headers only. One request per connection
(``Connection: close``). The request head must arrive whole within ``read_timeout``
(a client that sends one byte a second is cut off at that deadline), the request line may be
at most :data:`MAX_REQUEST_LINE` bytes and the head :data:`MAX_HEAD` bytes, and the
connection count is bounded. A failure inside the server is a 500 with a JSON body, never a
traceback on the wire.

The server reads what it shows through a :class:`HealthView` -- a read-only view of an agent
-- so that it can run, and be tested, without one (:class:`AgentHealthView` adapts
:class:`confd_ha.agent.core.Agent`).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import re
import time
from typing import (Any, Awaitable, Callable, Dict, List, NamedTuple, Optional, Protocol, Set,
                    Tuple, Union)

from .._consts import State, state_text

log = logging.getLogger("confd_ha.agent")

MAX_REQUEST_LINE = 1024
"""Bytes of the request line at most (the paths served are a few bytes long)."""
MAX_HEAD = 8192
"""Bytes of the whole request head (request line and header fields) at most."""
MAX_HEADERS = 64
"""Header fields at most."""
READ_TIMEOUT = 5.0
"""Seconds the whole request head may take to arrive."""
WRITE_TIMEOUT = 5.0
"""Seconds an answer may take to be written."""
CLUSTER_TIMEOUT = 3.0
"""Seconds ``/cluster`` waits for the view (an etcd read)."""
MAX_CONNECTIONS = 64
"""Connections served at once; further ones get a 503 at once."""
LINGER = 1.0
"""Seconds the server waits, after its answer, for the client to close."""
LINGER_BYTES = 65536
"""Bytes the server reads and drops, after its answer, while it waits for the client to
close."""

SECONDARY_STATES = (State.SECONDARY.text, State.SECONDARY_RELAY.text)
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            408: "Request Timeout", 414: "URI Too Long", 431: "Request Header Fields Too Large",
            500: "Internal Server Error", 503: "Service Unavailable"}
_TOKEN = re.compile(rb"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_TARGET = re.compile(rb"^/[\x21-\x7e]*$")
_VERSION = re.compile(rb"^HTTP/1\.[01]$")

ClusterView = Union[Dict[str, Any], Awaitable[Dict[str, Any]]]


class HealthView(Protocol):
    """What the health endpoint reads; every method returns at once (``cluster_view`` may
    return a coroutine, which is awaited with a deadline)."""

    def is_leader(self) -> bool:
        """This agent holds the ``leader`` key under its own lease."""

    def node_state(self) -> Optional[str]:
        """The node's HA state as last read: ``primary``, ``secondary``, ``secondary-relay``
        or ``none``; None when the node does not answer."""

    def leader(self) -> Optional[str]:
        """The node id in ``leader`` as last read (None: no leader)."""

    def member_record(self) -> Optional[Dict[str, Any]]:
        """This agent's member record as a dict (None before the first one)."""

    def cluster_view(self) -> ClusterView:
        """``{"cluster", "leader", "paused", "members": [...], ...}`` from etcd."""


class _Reject(Exception):
    """The request cannot be served: answer ``status`` with ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Request:
    """A parsed request head: ``method``, ``path`` (without the query), ``headers``."""

    def __init__(self, method: str, path: str, headers: Dict[str, str]) -> None:
        self.method = method
        self.path = path
        self.headers = headers


def parse_head(head: bytes) -> Request:
    """Parse a request head (up to and without the blank line); raises :class:`_Reject`."""
    if head.endswith(b"\n"):
        head = head[:-2] if head.endswith(b"\r\n") else head[:-1]
    lines = re.split(rb"\r?\n", head)
    line = lines[0]
    if len(line) > MAX_REQUEST_LINE:
        raise _Reject(414, "the request line is longer than %d bytes" % MAX_REQUEST_LINE)
    parts = line.split(b" ")
    if len(parts) != 3:
        raise _Reject(400, "malformed request line")
    method, target, version = parts
    if not _TOKEN.match(method):
        raise _Reject(400, "malformed method")
    if not _VERSION.match(version):
        raise _Reject(400, "not an HTTP/1.0 or HTTP/1.1 request")
    if not _TARGET.match(target):
        raise _Reject(400, "malformed request target (an absolute path is expected)")
    headers: Dict[str, str] = {}
    fields = lines[1:]
    if len(fields) > MAX_HEADERS:
        raise _Reject(431, "more than %d header fields" % MAX_HEADERS)
    for field in fields:
        name, sep, value = field.partition(b":")
        if not sep or not _TOKEN.match(name):
            raise _Reject(400, "malformed header field")
        try:
            text = value.strip(b" \t").decode("ascii")
        except UnicodeDecodeError:
            raise _Reject(400, "a header field is not ASCII") from None
        if any(c < " " and c != "\t" for c in text):
            raise _Reject(400, "a control character in a header field")
        headers[name.decode("ascii").lower()] = text
    path = target.split(b"?", 1)[0].decode("ascii")
    return Request(method.decode("ascii"), path, headers)


class Limits(NamedTuple):
    """How long the endpoint waits for a request, an answer's write and etcd, and how many
    connections it holds at once."""

    read_timeout: float
    write_timeout: float
    cluster_timeout: float
    max_connections: int


class HealthServer:
    """The endpoint of one agent on ``host``:``port`` (port 0: any free port).

    ``await start()`` listens (OSError when it cannot); :attr:`url` is then
    ``http://host:port``; ``await close()`` stops listening and cuts every open connection.
    """

    def __init__(self, view: HealthView, host: str = "127.0.0.1", port: int = 8008, *,
                 read_timeout: float = READ_TIMEOUT, write_timeout: float = WRITE_TIMEOUT,
                 cluster_timeout: float = CLUSTER_TIMEOUT,
                 max_connections: int = MAX_CONNECTIONS) -> None:
        self.view = view
        self.host = host
        self.port = port
        self.limits = Limits(read_timeout, write_timeout, cluster_timeout, max_connections)
        self._server: Optional[asyncio.AbstractServer] = None
        self._tasks: Set["asyncio.Task[Any]"] = set()
        self._writers: Set[asyncio.StreamWriter] = set()
        self.served = 0
        self._routes: Dict[str, Callable[[], Awaitable[Tuple[int, Dict[str, Any]]]]] = {
            "/primary": self._primary, "/leader": self._primary,
            "/secondary": self._secondary, "/replica": self._secondary,
            "/health": self._health, "/cluster": self._cluster}

    def __repr__(self) -> str:
        return "<HealthServer %s>" % (self.url if self._server else "not listening")

    @property
    def url(self) -> str:
        """``http://host:port`` (the port actually bound)."""
        host = "[%s]" % self.host if ":" in self.host else self.host
        return "http://%s:%d" % (host, self.port)

    async def start(self) -> "HealthServer":
        self._server = await asyncio.start_server(self._serve, self.host, self.port,
                                                  reuse_address=True)
        sockets = self._server.sockets or ()
        if sockets:
            self.port = sockets[0].getsockname()[1]
        log.debug("health endpoint listening on %s", self.url)
        return self

    async def close(self) -> None:
        """Stop listening, cut the connections being served, and wait for their tasks."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for w in list(self._writers):
            _abort(w)
        tasks = [t for t in self._tasks if not t.done()]
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=2.0)
        if server is not None:
            try:
                await asyncio.wait_for(server.wait_closed(), 2.0)
            except asyncio.TimeoutError:  # pragma: no cover - every connection was aborted
                pass

    async def __aenter__(self) -> "HealthServer":
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------ one connection

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self._writers.add(writer)
        try:
            if len(self._writers) > self.limits.max_connections:
                await self._answer(writer, "GET", 503, {"error": "too many connections"})
                await self._linger(reader, writer)
                return
            status, body, method = await self._respond(reader)
            await self._answer(writer, method, status, body)
            if status not in (408, 414, 431):
                await self._linger(reader, writer)
        except (ConnectionError, OSError, asyncio.IncompleteReadError, asyncio.TimeoutError):
            pass
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # never a traceback to the client
            log.warning("health endpoint: %s: %s", type(exc).__name__, exc)
            log.debug("health endpoint failure", exc_info=True)
        finally:
            self._writers.discard(writer)
            _finish(writer)
            if task is not None:
                self._tasks.discard(task)

    async def _linger(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """After the answer: end the sending side and read what the client still sends (a
        body, say) until it closes, briefly -- closing with unread data would reset the
        connection and could destroy the answer before the client read it."""
        if writer.can_write_eof():
            writer.write_eof()
        end = time.monotonic() + LINGER
        left = LINGER_BYTES
        while left > 0:
            wait = end - time.monotonic()
            if wait <= 0:
                return
            chunk = await asyncio.wait_for(reader.read(min(left, 4096)), wait)
            if not chunk:
                return
            left -= len(chunk)

    async def _respond(self, reader: asyncio.StreamReader) -> Tuple[int, Dict[str, Any], str]:
        """``(status, body, method)`` for the request on ``reader``."""
        try:
            head = await asyncio.wait_for(self._read_head(reader), self.limits.read_timeout)
            request = parse_head(head)
        except asyncio.TimeoutError:
            return 408, {"error": "the request did not arrive within %g s"
                         % self.limits.read_timeout}, "GET"
        except _Reject as rej:
            return rej.status, {"error": rej.message}, "GET"
        self.served += 1
        route = self._routes.get(request.path)
        if route is None:
            return 404, {"error": "no such path: %s" % request.path,
                         "paths": sorted(self._routes)}, request.method
        if request.method not in ("GET", "HEAD"):
            return 405, {"error": "method %s not allowed: use GET or HEAD"
                         % request.method}, request.method
        try:
            status, body = await route()
        except Exception as exc:
            log.warning("health endpoint: %s failed: %s: %s", request.path,
                        type(exc).__name__, exc)
            log.debug("health endpoint failure", exc_info=True)
            status, body = 500, {"error": "internal error: %s" % type(exc).__name__}
        return status, body, request.method

    async def _read_head(self, reader: asyncio.StreamReader) -> bytes:
        """The request head, without the blank line that ends it (bounded, see above)."""
        buf = b""
        while True:
            chunk = await reader.read(4096)
            if not chunk:
                raise _Reject(400, "the connection ended before the request did")
            buf += chunk
            end = _head_end(buf)
            head = buf if end is None else buf[:end]
            if len(head.split(b"\n", 1)[0]) > MAX_REQUEST_LINE:
                raise _Reject(414, "the request line is longer than %d bytes"
                              % MAX_REQUEST_LINE)
            if len(head) > MAX_HEAD:
                raise _Reject(431, "the request head is longer than %d bytes" % MAX_HEAD)
            if end is not None:
                return head

    async def _answer(self, writer: asyncio.StreamWriter, method: str, status: int,
                      body: Dict[str, Any]) -> None:
        data = (json.dumps(body, sort_keys=True) + "\n").encode("utf-8")
        lines = ["HTTP/1.1 %d %s" % (status, _REASONS.get(status, "Unknown")),
                 "Content-Type: application/json",
                 "Content-Length: %d" % len(data),
                 "Cache-Control: no-store",
                 "Connection: close"]
        if status == 405:
            lines.append("Allow: GET, HEAD")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")
        writer.write(head if method == "HEAD" else head + data)
        await asyncio.wait_for(writer.drain(), self.limits.write_timeout)

    # ------------------------------------------------------------ the checks

    def _facts(self) -> Dict[str, Any]:
        record = self.view.member_record() or {}
        return {"node": record.get("node"), "state": self.view.node_state(),
                "leader": self.view.leader(), "is_leader": bool(self.view.is_leader())}

    async def _primary(self) -> Tuple[int, Dict[str, Any]]:
        facts = self._facts()
        ok = facts["is_leader"] and facts["state"] == State.PRIMARY.text
        return (200 if ok else 503), dict(facts, check="primary", ok=ok)

    async def _secondary(self) -> Tuple[int, Dict[str, Any]]:
        facts = self._facts()
        record = self.view.member_record() or {}
        leader = facts["leader"]
        ok = (facts["state"] in SECONDARY_STATES and leader is not None
              and not facts["is_leader"] and record.get("primary") == leader)
        return (200 if ok else 503), dict(facts, check="secondary", ok=ok)

    async def _health(self) -> Tuple[int, Dict[str, Any]]:
        record = self.view.member_record()
        ok = self.view.node_state() is not None
        body = dict(record) if record is not None else {"health": "starting"}
        return (200 if ok else 503), body

    async def _cluster(self) -> Tuple[int, Dict[str, Any]]:
        started = time.monotonic()
        try:
            result = self.view.cluster_view()
            if inspect.isawaitable(result):
                result = await asyncio.wait_for(result, self.limits.cluster_timeout)
        except asyncio.TimeoutError:
            return 503, {"error": "etcd did not answer within %g s"
                         % (time.monotonic() - started)}
        except Exception as exc:
            return 503, {"error": "cannot read the cluster from etcd: %s" % exc}
        if not isinstance(result, dict):
            return 500, {"error": "internal error: the cluster view is not an object"}
        return 200, result


def _head_end(buf: bytes) -> Optional[int]:
    """Where the head in ``buf`` ends (before its blank line), None if not yet."""
    ends = [i for i in (buf.find(b"\r\n\r\n"), buf.find(b"\n\n")) if i >= 0]
    return min(ends) if ends else None


def _abort(writer: asyncio.StreamWriter) -> None:
    transport = writer.transport
    if not transport.is_closing():
        transport.abort()


def _finish(writer: asyncio.StreamWriter) -> None:
    """Close: gracefully when everything was sent, else at once (a client that reads nothing
    must not keep the connection)."""
    transport = writer.transport
    if transport.is_closing():
        return
    if transport.get_write_buffer_size():
        transport.abort()
    else:
        transport.close()


# ---------------------------------------------------------------- the view of an agent


class AgentHealthView:
    """:class:`HealthView` of a running :class:`confd_ha.agent.core.Agent` (duck-typed here,
    so that this module needs nothing but the standard library and the state names)."""

    def __init__(self, agent: Any) -> None:
        self.agent = agent

    def is_leader(self) -> bool:
        return bool(self.agent.is_leader)

    def node_state(self) -> Optional[str]:
        if not self.agent.node_ok or self.agent.node_state is None:
            return None
        return state_text(self.agent.node_state)

    def leader(self) -> Optional[str]:
        snap = self.agent.snapshot
        if snap is None or snap.leader is None:
            return None
        return str(snap.leader.node)

    def member_record(self) -> Optional[Dict[str, Any]]:
        record = self.agent.record
        if record is None:
            record = self.agent.make_record(self.agent.snapshot)
        result: Dict[str, Any] = record.to_dict()
        return result

    async def cluster_view(self) -> Dict[str, Any]:
        from .ops import cluster_view

        return await cluster_view(self.agent.etcd, self.agent.config.cluster)


__all__: List[str] = ["HealthView", "HealthServer", "AgentHealthView", "parse_head",
                      "MAX_REQUEST_LINE", "MAX_HEAD", "MAX_HEADERS", "READ_TIMEOUT"]
