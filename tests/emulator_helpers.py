"""Test-local helpers for the emulator tests: nodes on a background asyncio loop, real
client sockets, raw event sockets.

(To be replaced by the official pytest plugin; kept deliberately small.)
"""

from __future__ import annotations

import asyncio
import inspect
import socket
import threading
import time

import confd_ha as ha
from confd_ha import _handshake, _io, _protocol
from confd_ha.emulator import Node, NodeConfig

HA_INFO = _protocol.NOTIF_HA_INFO
HA_INFO_SYNC = _protocol.NOTIF_HA_INFO_SYNC
TIMEOUT = 5.0


class LoopThread:
    """An asyncio loop running in a daemon thread."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro, timeout: float = 15.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn, *args, **kwargs):
        async def wrapper():
            return fn(*args, **kwargs)
        return self.run(wrapper())

    def close(self):
        async def drain():
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        try:
            self.run(drain(), 5)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
            self.loop.close()


class NodeProxy:
    """Synchronous view of a Node for test code in the main thread."""

    def __init__(self, lt: LoopThread, node: Node, sockets: list):
        object.__setattr__(self, "_lt", lt)
        object.__setattr__(self, "node", node)
        object.__setattr__(self, "_sockets", sockets)  # closed by Cluster.close()

    def __getattr__(self, name):
        lt, node = self._lt, self.node
        if isinstance(getattr(type(node), name, None), property):
            return lt.call(getattr, node, name)
        value = getattr(node, name)
        if inspect.iscoroutinefunction(value):
            return lambda *a, **k: lt.run(value(*a, **k))
        if callable(value):
            return lambda *a, **k: lt.call(value, *a, **k)
        return value

    @property
    def ip(self) -> str:
        return self.node.config.ipc_address

    @property
    def port(self) -> int:
        return self._lt.call(getattr, self.node, "ipc_port")

    def ctl(self, token: str = "tok", timeout: float = TIMEOUT) -> socket.socket:
        """A real HA control socket (confd_ha.connect) to this node."""
        s = socket.socket()
        self._sockets.append(s)
        s.settimeout(timeout)
        ha.connect(s, token, self.ip, self.port)
        return s

    def events(self, mask: int = HA_INFO) -> "EventSock":
        e = EventSock(self.ip, self.port, mask, self._sockets)
        return e

    def ha_status(self, token: str = "status"):
        """status() over a fresh control socket (note: replaces the token, B-02)."""
        s = self.ctl(token)
        try:
            return ha.status(s)
        finally:
            s.close()


class EventSock:
    """A raw event-notification socket (the events client is written elsewhere)."""

    def __init__(self, ip: str, port: int, mask: int = HA_INFO, sockets=None):
        self.sock = socket.socket()
        if sockets is not None:
            sockets.append(self.sock)
        self.sock.settimeout(TIMEOUT)
        _handshake.open_connection(self.sock, _protocol.CT_EVENT, (ip, port))
        _io.send(self.sock, _protocol.encode_subscription(mask))
        assert _protocol.decode(_io.read_frame(self.sock)) == "ok"

    def next(self, timeout: float = TIMEOUT):
        """(type, data) of the next HA event."""
        self.sock.settimeout(timeout)
        term = _protocol.decode(_io.read_frame(self.sock))
        assert isinstance(term, tuple) and term[0] == HA_INFO, term
        return term[1]

    def expect(self, *expected, timeout: float = TIMEOUT):
        """Read len(expected) events; each expected item is a type or a (type, data) pair."""
        got = [self.next(timeout) for _ in expected]
        for want, have in zip(expected, got):
            if isinstance(want, tuple):
                assert have == want, (got, expected)
            else:
                assert have[0] == want, (got, expected)
        return got

    def quiet(self, wait: float = 0.3) -> None:
        """Assert that no event arrives within ``wait`` seconds."""
        self.sock.settimeout(wait)
        try:
            data = self.sock.recv(1, socket.MSG_PEEK)
        except socket.timeout:
            return
        raise AssertionError("unexpected event data: %r" % (data,))

    def ack(self) -> None:
        _io.send(self.sock, _protocol.HA_SYNCED_FRAME)

    def close(self) -> None:
        self.sock.close()


def free_port(ips) -> int:
    """A TCP port that is free on every address in ``ips``."""
    for _ in range(200):
        probe = socket.socket()
        probe.bind((ips[0], 0))
        port = probe.getsockname()[1]
        socks = [probe]
        try:
            for ip in ips[1:]:
                s = socket.socket()
                socks.append(s)
                s.bind((ip, port))
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        return port
    raise RuntimeError("no common free port")


class Cluster:
    """Nodes on 127.0.0.<n> sharing one HA port, on one background loop."""

    def __init__(self, tick: float = 0.5, count: int = 8):
        self.lt = LoopThread()
        self.tick = tick
        self.ha_port = free_port(["127.0.0.%d" % (i + 1) for i in range(count)])
        self.nodes: list = []
        self.sockets: list = []   # client sockets made through the proxies

    def add(self, name: str, n: int, start: bool = True, **cfg) -> NodeProxy:
        cfg.setdefault("tick_timeout", self.tick)
        cfg.setdefault("ha_port", self.ha_port)
        config = NodeConfig(name=name, ipc_address="127.0.0.%d" % n, ipc_port=0, **cfg)
        node = self.lt.call(Node, config)
        proxy = NodeProxy(self.lt, node, self.sockets)
        self.nodes.append(proxy)
        if start:
            proxy.start()
        return proxy

    def close(self) -> None:
        for s in self.sockets:
            s.close()
        try:
            for p in self.nodes:
                try:
                    p.kill()
                except Exception:
                    pass
        finally:
            self.lt.close()


def wait_until(predicate, timeout: float = TIMEOUT, interval: float = 0.02):
    """Poll ``predicate`` until it returns a true value; fail after ``timeout``."""
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError("condition not met within %.1f s" % timeout)
        time.sleep(interval)
