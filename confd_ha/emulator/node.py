"""The emulated node: one emulated ConfD/NSO daemon with HA (see the package docstring).

One :class:`Node` runs on the current asyncio loop; all its coroutine methods and properties
must be used from that loop's thread. The HA behaviour is ConfD 8.2.5's, as the conformance
suite observed it (docs/conformance.md): the orders are in :mod:`.orders`, the inter-node
links in :mod:`.tree`, the one-at-a-time HA engine in :mod:`.engine`, the listing order in
:mod:`.roster`, the peer protocol in :mod:`.peer` and :mod:`.link`; the state those layers
share in :mod:`.nodebase`. This module holds the node's lifecycle, its control interface
(B-33) and what its IPC server asks of it.
"""

from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Optional, Tuple

from .. import _protocol, error
from .._terms import Term
from .config import NodeConfig
from .engine import Engine
from .eventhub import EventHub
from .ipc import IpcServer
from .link import PeerConn, normalize_ip
from .nodebase import STATE_NAMES, STATE_NONE, STATE_PRIMARY, STATE_SECONDARY
from .nodebase import STATE_SECONDARY_RELAY, ControlSocket, ReadOnly
from .orders import Orders
from .roster import term_key
from .store import Change, Store, decode_changes, encode_changes
from .tree import Admission

# HA event types (wire-protocol §10.3), defined once in the protocol layer
HA_INFO_NOPRIMARY = _protocol.HA_INFO_NOPRIMARY
HA_INFO_SECONDARY_DIED = _protocol.HA_INFO_SECONDARY_DIED
HA_INFO_SECONDARY_ARRIVED = _protocol.HA_INFO_SECONDARY_ARRIVED
HA_INFO_SECONDARY_INITIALIZED = _protocol.HA_INFO_SECONDARY_INITIALIZED
HA_INFO_IS_PRIMARY = _protocol.HA_INFO_IS_PRIMARY
HA_INFO_IS_NONE = _protocol.HA_INFO_IS_NONE
HA_INFO_BESECONDARY_RESULT = _protocol.HA_INFO_BESECONDARY_RESULT

_TXID_NAME_MAX = 200            # characters of the node id in a transaction id
SECONDARY_WRITE_TEXT = "node is an HA secondary: writes are not allowed"   # B-29


class _Policy:
    """The node as its peer connections see it (a :class:`.link.Policy`: freeze, partitions,
    registry), over the node's public interface."""

    def __init__(self, node: "Node") -> None:
        self._node = node

    @property
    def frozen(self) -> bool:
        return self._node.frozen

    def held(self, peer_ip: str) -> bool:
        return self._node.frozen or peer_ip in self._node.partitions

    def alive(self) -> bool:
        return self._node.running

    def register(self, conn: PeerConn) -> None:
        self._node.peer_conns.add(conn)

    def unregister(self, conn: PeerConn) -> None:
        self._node.peer_conns.discard(conn)


class _View:
    """The node as a joining node's handshake sees it (a :class:`.peer.PrimaryView`; it holds
    the token: never logged), over the node's public interface."""

    def __init__(self, node: "Node") -> None:
        self._node = node
        cfg = node.config
        self.ha_vsn = cfg.ha_vsn
        self.fxs_fp = cfg.fxs_fp
        self.ha_config_fp = cfg.ha_config_fp

    @property
    def token(self) -> bytes:
        return self._node.token

    @property
    def name(self) -> Term:
        return self._node.node_id

    def serving(self) -> bool:
        return self._node.serving()

    async def admit(self, conn: PeerConn, nodeid: Term, their_txid: str) -> Admission:
        return await self._node.admit(conn, nodeid, their_txid)


class Node(Orders):
    """One emulated ConfD/NSO daemon with HA (see the package docstring for the API)."""

    def __init__(self, config: Optional[NodeConfig] = None, **kwargs: Any) -> None:
        if config is None:
            config = NodeConfig(**kwargs)
        elif kwargs:
            raise TypeError("give a NodeConfig or keyword arguments, not both")
        super().__init__(config)
        self._policy = _Policy(self)
        self._view = _View(self)

    # ================================================================ lifecycle

    async def start(self) -> None:
        """Start the daemon: open the datastore, listen on the IPC port; state NONE."""
        if self._running:
            raise RuntimeError("node %s is already running" % self.label)
        self._reset()
        store = self._store
        if store is None or store.closed:
            store = self._store = Store(self.config.data_dir)
        hub = self._hub = EventHub(self.config.event_write_block)
        engine = self._engine = Engine(hub, self.label)
        ipc = self._ipc = IpcServer(self.config, self)
        try:
            # With ipc_port 0 a restarted node keeps the port it got first, like a daemon
            # restarted with the same configuration.
            await ipc.start(self._first_port if self.config.ipc_port == 0 else None)
        except BaseException:
            await ipc.stop(abort=True)
            self._close_store()
            raise
        self._running = True
        self._first_port = ipc.port
        self._tasks.add(engine.start())
        self._decide("started (IPC %s:%s, phase %d, txid %s)" % (
            self.config.ipc_address, ipc.port, self._phase, store.txid))

    async def stop(self) -> None:
        """Stop the daemon in an orderly way: peers get a goodbye (they see HA_CLOSED)."""
        await self._shutdown(abort=False)

    async def kill(self) -> None:
        """Kill the daemon: every socket is closed abruptly, no goodbye (B-23)."""
        await self._shutdown(abort=True)

    async def restart(self, kill: bool = False) -> None:
        """Stop (or kill) and start again: NONE, empty token, configured start phase, and the
        datastore and transaction id as they were (B-23)."""
        await self._shutdown(abort=kill)
        await self.start()

    async def _shutdown(self, abort: bool) -> None:
        if not self._running:
            return
        self._running = False
        self._started_engine().close()
        self._decide("killed" if abort else "stopped")
        if self._ha_server is not None:
            self._ha_server.close()
            self._ha_server = None
        for conn in list(self.peer_conns):
            if abort:
                conn.abort()
            else:
                conn.close(bye=True)
                if conn in self.peer_conns:
                    conn.abort()  # a held connection must not outlive the node either
        self.peer_conns.clear()
        if self._ipc is not None:   # both set while running
            await self._ipc.stop(abort=abort)
        if self._hub is not None:
            self._hub.close_all()
        tasks = [t for t in self._tasks if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self._state = STATE_NONE
        self._upstream = None
        self._children = {}
        self._roster.clear()
        self._fail_asks()
        self._close_store()

    def _close_store(self) -> None:
        # An in-memory store is kept across restarts: it is this node's "disk". A store on
        # disk is closed (releasing its lock) and re-read from the journal on start.
        if self._store is not None and self._store.data_dir is not None:
            self._store.close()

    # ================================================================ control interface (B-33)

    running: ReadOnly[bool] = ReadOnly("_running")
    state: ReadOnly[int] = ReadOnly("_state")
    start_phase: ReadOnly[int] = ReadOnly("_phase")
    upgrade: ReadOnly[bool] = ReadOnly("_upgrade")
    frozen: ReadOnly[bool] = ReadOnly("_frozen")
    # The node-id term given by the last successful beprimary/besecondary (or None).
    node_id: ReadOnly[Term] = ReadOnly("_name")
    # True while a join is in progress (the state is then NONE).
    joining: ReadOnly[bool] = ReadOnly("_joining")

    @property
    def ipc_port(self) -> Optional[int]:
        """The IPC port actually listened on (useful with ``ipc_port=0``)."""
        return self._ipc.port if self._ipc is not None else None

    @property
    def ipc_address(self) -> str:
        return self.config.ipc_address

    @property
    def state_name(self) -> str:
        return STATE_NAMES[self._state]

    @property
    def partitions(self) -> List[str]:
        return sorted(self._partitions)

    @property
    def txid(self) -> str:
        return self._datastore().txid

    @property
    def subscribers(self) -> int:
        """Number of event-notification subscribers currently connected."""
        return len(self._hub.subscribers) if self._hub is not None else 0

    @property
    def decisions(self) -> List[str]:
        """The most recent HA decisions, oldest first (human-readable; never the token)."""
        return list(self._decisions)

    @property
    def peers(self) -> List[Dict[str, Term]]:
        """Direct inter-node peers: the primary (if attached) and the admitted secondaries,
        as dicts with ``role`` ('primary'/'secondary'), ``nodeid`` (term), ``address`` (text)."""
        out: List[Dict[str, Term]] = []
        if self._upstream is not None:
            out.append({"role": "primary", "nodeid": self._upstream.pid,
                        "address": self._upstream.conn.peer_ip})
        for e in self._roster:
            child = self._children.get(term_key(e.nodeid))
            if child is not None:
                out.append({"role": "secondary", "nodeid": e.nodeid, "address": child.conn.peer_ip})
        return out

    def get(self, path: str) -> Optional[str]:
        return self._datastore().get(path)

    def items(self, prefix: str = "/") -> List[Tuple[str, str]]:
        return self._datastore().items(prefix)

    async def set_start_phase(self, phase: int) -> None:
        """Advance the start phase: 0 → 1 → 2, one step at a time (B-31)."""
        if phase not in (0, 1, 2) or phase < self._phase or phase > self._phase + 1:
            raise ValueError("start phase can only advance one step at a time (now %d)" % self._phase)
        if phase != self._phase:
            self._phase = phase
            self._decide("start phase %d" % phase)

    async def set_upgrade(self, flag: bool) -> None:
        """Set or clear "in-service upgrade in progress" (beprimary/besecondary → 47)."""
        self._upgrade = bool(flag)
        self._decide("upgrade in progress" if flag else "upgrade finished")

    async def freeze(self) -> None:
        """Stop all inter-node traffic (reads, writes, ticks, even closes) with sockets kept
        open; peers see HA_NOTICK. IPC, orders and the control interface keep working."""
        self._frozen = True
        self._decide("frozen")
        self._refresh()

    async def thaw(self) -> None:
        """Resume inter-node traffic; whatever was held back flows again."""
        self._frozen = False
        self._decide("thawed")
        self._refresh()

    async def partition(self, peer_ip: str) -> None:
        """Silently hold all inter-node traffic with ``peer_ip``, both ways, sockets open."""
        self._partitions.add(normalize_ip(peer_ip))
        self._decide("partitioned from %s" % peer_ip)
        self._refresh()

    async def heal(self, peer_ip: Optional[str] = None) -> None:
        """End the partition from ``peer_ip`` (all partitions if None)."""
        if peer_ip is None:
            self._partitions.clear()
        else:
            self._partitions.discard(normalize_ip(peer_ip))
        self._decide("healed %s" % ("all partitions" if peer_ip is None else peer_ip))
        self._refresh()

    def _refresh(self) -> None:
        for conn in list(self.peer_conns):
            conn.refresh()

    async def commit(self, changes: List[Change]) -> str:
        """Commit a change set (``[("set", path, value) | ("delete", path), …]``) and return
        its transaction id. On a PRIMARY it returns once every admitted secondary has
        acknowledged it or been declared dead (B-30). SECONDARY/relay → ``Error(17)`` (B-29)."""
        if not self._running:
            raise RuntimeError("node %s is not running" % self.label)
        if self._state in (STATE_SECONDARY, STATE_SECONDARY_RELAY):
            error.raise_error(error.ERR_BADSTATE, SECONDARY_WRITE_TEXT)
        blob = encode_changes(changes)
        store = self._datastore()
        txid = store.new_txid(self._txid_name())
        store.commit(decode_changes(blob), txid)
        waits = self._fan_out(txid, blob) if self._state == STATE_PRIMARY else []
        if waits:
            await asyncio.gather(*waits)
        return txid

    def _txid_name(self) -> str:
        name = self._name
        if isinstance(name, bytes):
            text = name.decode("utf-8", "replace")
        elif name is None:
            text = self.config.name
        else:
            text = str(name)
        # Transaction ids are limited to 1024 characters (B-14): a long node id is cut.
        text = "".join(c if c.isprintable() else "?" for c in text[:_TXID_NAME_MAX])
        return text or self.config.name

    # ================================================================ for the peer links

    @property
    def token(self) -> bytes:
        return self._token

    def serving(self) -> bool:
        return self._serving()

    # ================================================================ IPC interface

    def attach_control(self, conn: ControlSocket, token: bytes) -> None:
        """A new HA control socket: it replaces the old one and the token (B-02, W-16)."""
        old, self._control = self._control, conn
        if old is not None and old is not conn:
            old.close()
        self._token = token
        self._decide("HA control socket from %s; token replaced%s" % (
            conn.label.split(" ", 1)[-1], "" if old is None else ", previous control socket closed"))

    @property
    def hub(self) -> EventHub:
        if self._hub is None:
            raise RuntimeError("node %s has not been started yet" % self.label)
        return self._hub

    def __repr__(self) -> str:
        return "<Node %s %s%s>" % (self.label, STATE_NAMES[self._state],
                                   "" if self._running else " (stopped)")

