"""Test-local helpers for the emulator tests, on top of :mod:`confd_ha.emulator.runner`.

The loop thread, node proxies and port choice are the runner's (``EmulatorThread``,
``SyncNode``, ``PortReservation``); what is kept here is test-specific: nodes added one by one
at 127.0.0.<n> with the tests' short timeouts, client sockets closed with the cluster, raw
event sockets (``EventSock``) and ``wait_until``.
"""

from __future__ import annotations

import socket
import time

import confd_ha as ha
from confd_ha import _handshake, _io, _protocol
from confd_ha.emulator import Node, NodeConfig
from confd_ha.emulator.runner import EmulatorThread, PortReservation, SyncNode, loopback_addresses

HA_INFO = _protocol.NOTIF_HA_INFO
HA_INFO_SYNC = _protocol.NOTIF_HA_INFO_SYNC
TIMEOUT = 5.0


class LoopThread(EmulatorThread):
    """The runner's loop thread, started at once, with a 15 s default call timeout."""

    def __init__(self, timeout: float = 15.0):
        super().__init__(timeout=timeout, name="emulator-tests")
        self.start()

    def close(self) -> None:
        self.stop()


class NodeProxy(SyncNode):
    """The runner's ``SyncNode`` plus test shorthands; client sockets it makes are closed by
    ``Cluster.close()``."""

    def __init__(self, lt: LoopThread, node: Node, sockets: list):
        super().__init__(lt, node)
        self._sockets = sockets

    @property
    def ip(self) -> str:
        return self.ipc_address

    @property
    def port(self) -> int:
        return self.emulator.call(getattr, self.node, "ipc_port")

    def ctl(self, token: str = "tok", timeout: float = TIMEOUT) -> socket.socket:
        """A real HA control socket (confd_ha.connect) to this node."""
        s = self.connect_ha(token, timeout)
        self._sockets.append(s)
        return s

    def events(self, mask: int = HA_INFO) -> "EventSock":
        return EventSock(self.ip, self.port, mask, self._sockets)

    def ha_status(self, token: str = "status"):
        """status() over a fresh control socket (note: replaces the token, B-02)."""
        with self.ctl(token) as s:
            return ha.status(s)


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
    """A TCP port free on every address in ``ips`` right now (not held: some tests bind the
    HA port themselves, without SO_REUSEADDR, to make it unbindable for a node)."""
    with PortReservation(ips) as reservation:
        return reservation.port


class Cluster:
    """Nodes added one by one at 127.0.0.<n>, sharing one HA port, on one loop thread."""

    def __init__(self, tick: float = 0.5, count: int = 8):
        self.lt = LoopThread()
        self.tick = tick
        self.nodes = self.lt.nodes   # the thread's own list: its stop() stops them too
        self.sockets: list = []   # client sockets made through the proxies
        try:
            self.ha_port = free_port(loopback_addresses(count))
        except BaseException:
            self.lt.close()
            raise

    def add(self, name: str, n: int, start: bool = True, **cfg) -> NodeProxy:
        cfg.setdefault("tick_timeout", self.tick)
        cfg.setdefault("ha_port", self.ha_port)
        config = NodeConfig(name=name, ipc_address="127.0.0.%d" % n, ipc_port=0, **cfg)
        proxy = NodeProxy(self.lt, self.lt.call(Node, config), self.sockets)
        self.nodes.append(proxy)
        if start:
            proxy.start()
        return proxy

    def close(self) -> None:
        """Close the client sockets, kill every node (no goodbyes), stop the thread."""
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
