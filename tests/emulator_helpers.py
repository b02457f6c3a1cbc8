"""Test-local helpers for the emulator tests, on top of :mod:`confd_ha.testing`.

The loop thread, node proxies, port choice and the cluster are :mod:`confd_ha.testing`'s
(``EmulatorThread``, ``SyncNode``, ``PortReservation``, ``Cluster``); what is kept here is
test-specific: nodes added one by one at 127.0.0.<n> with the tests' short timeouts, client sockets closed with the cluster, raw
event sockets (``EventSock``) and the shorthands of the HA tests (event
types, ``be_primary``/``be_secondary``/``join_error``, scripted peers of docs/peer-protocol.md).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import socket
from typing import Optional

import confd_ha as ha
from confd_ha import _codec, _handshake, _io, _notifications, _protocol, error
from confd_ha._terms import Atom
from confd_ha.emulator import Node
from confd_ha.testing import cluster
from confd_ha.testing.loop import EmulatorThread
from confd_ha.testing.node import SyncNode
from confd_ha.testing.ports import PortReservation
from waiting import wait_until

HA_INFO = _protocol.NOTIF_HA_INFO
HA_INFO_SYNC = _protocol.NOTIF_HA_INFO_SYNC
TIMEOUT = 5.0

NOPRIMARY, DIED, ARRIVED, INITIALIZED, IS_PRIMARY, IS_NONE, RESULT = range(1, 8)
A = {n: (127, 0, 0, n) for n in range(1, 10)}   # the address term of the node at 127.0.0.n
PEER_VSN = 2        # the peer protocol version (docs/peer-protocol.md)
HA_VSN = 0x08020500


class NodeProxy(SyncNode):
    """The runner's ``SyncNode`` plus test shorthands; client sockets it makes are closed by
    ``Cluster.close()``."""

    def __init__(self, lt: EmulatorThread, node: Node, sockets: list):
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
        _io.send(self.sock, _notifications.encode_subscription(mask))
        assert _codec.decode(_io.read_frame(self.sock)) == "ok"

    def next(self, timeout: float = TIMEOUT):
        """(type, data) of the next HA event."""
        self.sock.settimeout(timeout)
        term = _codec.decode(_io.read_frame(self.sock))
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
        _io.send(self.sock, _notifications.HA_SYNCED_FRAME)

    def close(self) -> None:
        self.sock.close()


def free_port(ips) -> int:
    """A TCP port free on every address in ``ips`` right now (not held: some tests bind the
    HA port themselves, without SO_REUSEADDR, to make it unbindable for a node)."""
    with PortReservation(ips) as reservation:
        return reservation.port


class Cluster(cluster.Cluster):
    """The one cluster of :mod:`confd_ha.testing.cluster`, empty at first: nodes are added one
    by one at 127.0.0.<n> (:class:`NodeProxy`) with the tests' short ticks and a 15 s call
    timeout. The HA port is chosen free on 127.0.0.1-``count`` but not held (some tests bind
    it themselves); client sockets made through the proxies are closed by :meth:`close`."""

    def __init__(self, tick: float = 0.5, count: int = 9, join_timeout: Optional[float] = None):
        # count 9: the HA port is chosen free on 127.0.0.1-9, .9 being the tests' fake peers'.
        self.tick = tick
        self.sockets: list = []   # client sockets made through the proxies
        config = {} if join_timeout is None else {"join_timeout": join_timeout}
        super().__init__(0, reserve=count, hold=False, tick_timeout=tick, call_timeout=15.0,
                         **config)
        self.lt = self.emulator.start()

    def make_proxy(self, node: Node) -> NodeProxy:
        return NodeProxy(self.emulator, node, self.sockets)

    def add(self, name: str, n: int, start: bool = True, **cfg) -> NodeProxy:
        proxy = super().add(name, n, start=start, **cfg)
        assert isinstance(proxy, NodeProxy)
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
            self.stop()


# ================================================================ HA shorthands


def be_primary(node: NodeProxy, name, token: str = "tok") -> socket.socket:
    s = node.ctl(token)
    ha.beprimary(s, name)
    return s


def be_secondary(node: NodeProxy, me: str, primary: NodeProxy, pid: str, token: str = "tok",
                 wait: bool = True) -> socket.socket:
    """Join ``node`` synchronously to ``primary`` (the node it joins: a primary or a relay);
    with ``wait``, until that node lists it too (nothing orders the two nodes' views). The
    listing is read through the control interface: a status() over IPC would replace the
    control socket."""
    s = node.ctl(token)
    ha.besecondary(s, me, pid, primary.ip, 1)
    if wait:
        wait_until(lambda: any(nid == me.encode() for nid, _ in primary.status()[1]))
        wait_synced(primary, me.encode())
    return s


def primary_with(cluster: Cluster, count: int) -> tuple:
    """Nodes n1..n<count> at 127.0.0.1..<count>: n1 primary, the others its secondaries
    (synchronous joins). Returns the nodes, then their control sockets in the same order."""
    nodes = [cluster.add("n%d" % i, i) for i in range(1, count + 1)]
    sockets = [be_primary(nodes[0], "n1")]
    for i, node in enumerate(nodes[1:], 2):
        sockets.append(be_secondary(node, "n%d" % i, nodes[0], "n1"))
    return (*nodes, *sockets)


def relay_chain(cluster: Cluster) -> tuple:
    """n1 primary; n2 its secondary, made a relay; n3 the secondary of n2. Returns
    (n1, n2, n3, n2's control socket)."""
    n1, n2, n3 = cluster.add("n1", 1), cluster.add("n2", 2), cluster.add("n3", 3)
    be_primary(n1, "n1")
    s2 = be_secondary(n2, "n2", n1, "n1")
    ha.berelay(s2)
    be_secondary(n3, "n3", n2, "n2")
    return n1, n2, n3, s2


def wait_synced(node: NodeProxy, nodeid: bytes) -> None:
    """Until ``node`` (a primary or relay) has read the ``ha_synced`` of its direct secondary
    ``nodeid``. A joining node is listed (and announced) when it is admitted, but a commit
    waits for it only from its ``ha_synced`` on (docs/peer-protocol.md, step 7): a test that
    checks that replication is synchronous must wait for that. Nothing public shows it, so
    this reads the node's links."""
    def synced(n: Node) -> bool:
        return any(c.nodeid == nodeid and c.arrived for c in n._children.values())

    wait_until(lambda: node.emulator.call(synced, node.node))


def wait_ipc_connections(node: NodeProxy, count: int) -> None:
    """Until ``node``'s IPC server holds ``count`` accepted connections: a test that orders
    two clients must know the first was accepted before it connects the second. Nothing
    public shows it, so this reads the node's IPC server."""
    wait_until(lambda: node.emulator.call(lambda n: n._ipc.connections, node.node) == count)


def join_error(node: NodeProxy, me, primary_ip: str, pid, token: str = "tok") -> int:
    """The error code of a synchronous join (0: joined)."""
    s = node.ctl(token)
    try:
        ha.besecondary(s, me, pid, primary_ip, 1)
    except error.Error as exc:
        return exc.confd_errno
    finally:
        s.close()
    return 0


def names(status) -> list:
    """(nodeid, address) pairs of a client status() reply."""
    return [(e["nodeid"], e["address"]) for e in status[1]]


def last_join_copied(node: NodeProxy) -> bool:
    """Whether the node's last join installed a full copy of its primary's datastore. ConfD
    reports ``cdb_initialized_by_copy`` 1 on every join (docs/conformance.md "Events"), so the
    event cannot tell; the node's decision log does."""
    joined = [d for d in node.decisions if " joined " in d]
    assert joined, node.decisions
    return "(full copy" in joined[-1]


# ================================================================ scripted peers


def proof(token: bytes, label: bytes, a: bytes, b: bytes) -> bytes:
    """A token proof of the peer protocol: HMAC-SHA256 keyed with the token's SHA-256, over a
    role label and two nonces (docs/peer-protocol.md, "Token proofs")."""
    return hmac.new(hashlib.sha256(token).digest(), label + a + b, hashlib.sha256).digest()


def scripted_hello(ip: str, port: int, me: bytes, pid: bytes, source=None):
    """Connect to a listener and send a hello; returns (socket, NonceS)."""
    c = socket.create_connection((ip, port), timeout=3, source_address=source)
    nonce_s = os.urandom(32)
    c.sendall(_codec.encode_frame((Atom("ha_hello"), PEER_VSN, HA_VSN, me, pid, nonce_s)))
    return c, nonce_s


def scripted_join(ip: str, port: int, token: bytes, me: bytes, pid: bytes, txid=b"initial",
                  synced: bool = True, source=None, read_sync: bool = True):
    """Join a listener by speaking the peer protocol by hand; returns (socket, ha_sync term).
    ``read_sync`` False stops after the auth (the admission may wait for the node's HA
    engine): the term is then None."""
    c, nonce_s = scripted_hello(ip, port, me, pid, source)
    tag, pname, nonce_p, proof_p = _codec.decode(_io.read_frame(c))
    assert tag == "ha_challenge" and pname == pid
    assert proof_p == proof(token, b"confd_ha-peer-v1:primary", nonce_s, nonce_p)
    c.sendall(_codec.encode_frame((Atom("ha_auth"), proof(token, b"confd_ha-peer-v1:secondary",
                                                              nonce_p, nonce_s), b"", b"", txid)))
    if not read_sync:
        return c, None
    sync = _codec.decode(_io.read_frame(c))
    if synced:
        c.sendall(_codec.encode_frame((Atom("ha_synced"), 0 if sync[1] == "nocopy" else 1)))
    return c, sync


def read_until_closed(sock: socket.socket, timeout: float) -> list:
    """Every frame the node sends until it closes ``sock``; fails if it does not within
    ``timeout`` seconds."""
    sock.settimeout(timeout)
    frames = []
    try:
        while True:
            frames.append(_codec.decode(_io.read_frame(sock)))
    except (ha.error.EOF, ConnectionResetError):
        return frames
