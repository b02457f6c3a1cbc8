"""The emulated node: HA state machine, HA engine, replication and control interface.

Spec: ha-behaviour §2-§13 (B-02 … B-33). One :class:`Node` is one emulated ConfD/NSO daemon
running on the current asyncio loop. All its coroutine methods and properties must be used
from that loop's thread.

**The HA engine (B-27).** Every piece of HA work -- orders other than ``status``, and the
transitions driven by peers (arrivals, deaths, tick loss, the end of a join) -- is a work item
on one queue, executed one at a time by one task. The events of one item are emitted together,
without waiting, and the order's reply follows at once; before starting the next item the
engine waits until every ``HA_INFO_SYNC`` subscriber has acknowledged every event sent. (Waiting
between the events of one item would hold back the reply of an order that emits two -- a
``beprimary`` cancelling an asynchronous join -- and deadlock a framework that acknowledges only
after its call returned.) ``status`` is answered at once by the IPC layer; ticks, replication of
commits and the network steps of a join run in their own tasks and never wait for the engine.

**Ordering (B-05).** Inside an item the node first changes its state, then emits the events
(written straight into the subscribers' transports), then resolves the order's reply future,
which the IPC layer writes to the control socket.

**Joins (B-11).** ``besecondary`` starts a join task (:func:`confd_ha.emulator.peer.join`) and
finishes its engine item; the task's outcome comes back as a new item. A later ``beprimary``,
``besecondary`` or ``benone`` cancels the attempt (HA_CLOSED, 26).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import time
from typing import NamedTuple, Optional

from .. import _protocol, error
from .store import INVALID_TXID, Store, StoreError, decode_changes, encode_changes
from . import peer
from .config import NodeConfig
from .eventhub import EventHub
from .ipc import IpcServer
from .peer import PeerClosed, PeerConn, node_text, normalize_ip, same_term

log = logging.getLogger("confd_ha.emulator")

STATE_NONE = 1
STATE_SECONDARY = 2
STATE_PRIMARY = 3
STATE_SECONDARY_RELAY = 4
STATE_NAMES = {1: "NONE", 2: "SECONDARY", 3: "PRIMARY", 4: "SECONDARY_RELAY"}

# HA event types (wire-protocol §10.3), defined once in the protocol layer
HA_INFO_NOPRIMARY = _protocol.HA_INFO_NOPRIMARY
HA_INFO_SECONDARY_DIED = _protocol.HA_INFO_SECONDARY_DIED
HA_INFO_SECONDARY_ARRIVED = _protocol.HA_INFO_SECONDARY_ARRIVED
HA_INFO_SECONDARY_INITIALIZED = _protocol.HA_INFO_SECONDARY_INITIALIZED
HA_INFO_IS_PRIMARY = _protocol.HA_INFO_IS_PRIMARY
HA_INFO_IS_NONE = _protocol.HA_INFO_IS_NONE
HA_INFO_BESECONDARY_RESULT = _protocol.HA_INFO_BESECONDARY_RESULT
EVENT_NAMES = {1: "NOPRIMARY", 2: "SECONDARY_DIED", 3: "SECONDARY_ARRIVED",
               4: "SECONDARY_INITIALIZED", 5: "IS_PRIMARY", 6: "IS_NONE", 7: "BESECONDARY_RESULT"}

MAX_STATUS_NODES = 255          # W-20
_TXID_NAME_MAX = 200            # characters of the node id in a transaction id
DECISIONS_KEPT = 1000
SECONDARY_WRITE_TEXT = "node is an HA secondary: writes are not allowed"   # B-29

_ORDER_NAMES = {1: "beprimary", 2: "besecondary", 3: "benone", 4: "status",
                5: "secondary_dead", 6: "berelay"}


class Attachment(NamedTuple):
    """How this node is attached to its primary (SECONDARY or relay)."""

    me: object        # mynodeid of the besecondary call
    pid: object       # primary_id of the call
    addr: object      # primary address term exactly as given
    shown: object     # address term reported in status (W-22: always an IP tuple)
    conn: PeerConn


class Secondary(NamedTuple):
    """A secondary that completed its initial sync (B-24: listed in arrival order)."""

    conn: PeerConn
    nodeid: object
    addr: object      # source address term of its connection


class _Join:
    """A join attempt in progress (B-11)."""

    def __init__(self, order: _protocol.Order, reply: "asyncio.Future"):
        self.order = order
        self.reply = reply
        self.task: Optional[asyncio.Task] = None
        self.txid = ""


class _Policy(peer.Policy):
    """The node as seen by its peer connections (freeze, partitions, registry)."""

    def __init__(self, node: "Node"):
        self._node = node

    @property
    def frozen(self) -> bool:  # type: ignore[override]
        return self._node._frozen

    def held(self, peer_ip: str) -> bool:
        return self._node._frozen or peer_ip in self._node._partitions

    def register(self, conn: PeerConn) -> None:
        self._node._peer_conns.add(conn)

    def unregister(self, conn: PeerConn) -> None:
        self._node._peer_conns.discard(conn)


class _View(peer.PrimaryView):
    """The node as seen by a joining node's handshake (it holds the token: never logged)."""

    def __init__(self, node: "Node"):
        self._node = node
        cfg = node.config
        self.ha_vsn = cfg.ha_vsn
        self.fxs_fp = cfg.fxs_fp
        self.ha_config_fp = cfg.ha_config_fp

    @property
    def token(self) -> bytes:  # type: ignore[override]
        return self._node._token

    @property
    def name(self):  # type: ignore[override]
        return self._node._name

    def serving(self) -> bool:
        return self._node._running and self._node._state in (STATE_PRIMARY, STATE_SECONDARY_RELAY)

    def start_sync(self, conn: PeerConn, nodeid, their_txid: str):
        return self._node._start_sync(conn, nodeid, their_txid)


class Node:
    """One emulated ConfD/NSO daemon with HA (see the package docstring for the API)."""

    def __init__(self, config: Optional[NodeConfig] = None, **kwargs):
        if config is None:
            config = NodeConfig(**kwargs)
        elif kwargs:
            raise TypeError("give a NodeConfig or keyword arguments, not both")
        self.config = config
        self.label = config.name
        self._store: Optional[Store] = None
        self._running = False
        self._decisions: collections.deque = collections.deque(maxlen=DECISIONS_KEPT)
        self._partitions: set = set()
        self._peer_conns: set = set()
        self._policy = _Policy(self)
        self._view = _View(self)
        self._tasks: set = set()
        self._first_port: Optional[int] = None
        self._reset()

    def _reset(self) -> None:
        """The state a (re)started daemon has (B-23)."""
        self._state = STATE_NONE
        self._name = None
        self._token = b""
        self._phase = self.config.start_phase
        self._upgrade = False
        self._frozen = False
        self._control = None
        self._upstream: Optional[Attachment] = None
        self._secondaries: list = []
        self._syncing: dict = {}       # conn -> node id: sent ha_sync, not arrived yet
        self._handshaking: set = set()
        self._join: Optional[_Join] = None
        self._ha_server = None
        self._ipc: Optional[IpcServer] = None
        self._hub: Optional[EventHub] = None
        self._queue: Optional[asyncio.Queue] = None
        self._engine_task = None

    # ================================================================ lifecycle

    async def start(self) -> None:
        """Start the daemon: open the datastore, listen on the IPC port; state NONE."""
        if self._running:
            raise RuntimeError("node %s is already running" % self.label)
        self._reset()
        if self._store is None or self._store.closed:
            self._store = Store(self.config.data_dir)
        self._hub = EventHub(self.config.event_write_block)
        self._queue = asyncio.Queue()
        self._ipc = IpcServer(self.config, self)
        try:
            # With ipc_port 0 a restarted node keeps the port it got first, like a daemon
            # restarted with the same configuration.
            await self._ipc.start(self._first_port if self.config.ipc_port == 0 else None)
        except BaseException:
            await self._ipc.stop(abort=True)
            self._close_store()
            raise
        self._running = True
        self._first_port = self._ipc.port
        self._engine_task = self._spawn(self._engine())
        self._decide("started (IPC %s:%d, phase %d, txid %s)" % (
            self.config.ipc_address, self._ipc.port, self._phase, self._store.txid))

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
        self._decide("killed" if abort else "stopped")
        if self._join is not None and self._join.task is not None:
            self._join.task.cancel()
        self._join = None
        if self._ha_server is not None:
            self._ha_server.close()
            self._ha_server = None
        for conn in list(self._peer_conns):
            if abort:
                conn.abort()
            else:
                conn.close(bye=True)
                if conn in self._peer_conns:
                    conn.abort()  # a held connection must not outlive the node either
        self._peer_conns.clear()
        await self._ipc.stop(abort=abort)
        self._hub.close_all()
        tasks = [t for t in self._tasks if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self._state = STATE_NONE
        self._upstream = None
        self._secondaries = []
        self._syncing = {}
        self._close_store()

    def _close_store(self) -> None:
        # An in-memory store is kept across restarts: it is this node's "disk". A store on
        # disk is closed (releasing its lock) and re-read from the journal on start.
        if self._store is not None and self._store.data_dir is not None:
            self._store.close()

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ================================================================ control interface (B-33)

    @property
    def running(self) -> bool:
        return self._running

    @property
    def ipc_port(self) -> Optional[int]:
        """The IPC port actually listened on (useful with ``ipc_port=0``)."""
        return self._ipc.port if self._ipc is not None else None

    @property
    def ipc_address(self) -> str:
        return self.config.ipc_address

    @property
    def state(self) -> int:
        return self._state

    @property
    def state_name(self) -> str:
        return STATE_NAMES[self._state]

    @property
    def node_id(self):
        """The node-id term given by the last successful beprimary/besecondary (or None)."""
        return self._name

    @property
    def start_phase(self) -> int:
        return self._phase

    @property
    def upgrade(self) -> bool:
        return self._upgrade

    @property
    def frozen(self) -> bool:
        return self._frozen

    @property
    def partitions(self) -> list:
        return sorted(self._partitions)

    @property
    def txid(self) -> str:
        return self._datastore().txid

    @property
    def subscribers(self) -> int:
        """Number of event-notification subscribers currently connected."""
        return len(self._hub.subscribers) if self._hub is not None else 0

    @property
    def joining(self) -> bool:
        """True while a join attempt is in progress (the state is then NONE, B-11)."""
        return self._join is not None

    @property
    def decisions(self) -> list:
        """The most recent HA decisions, oldest first (human-readable; never the token)."""
        return list(self._decisions)

    @property
    def peers(self) -> list:
        """Direct inter-node peers: the primary (if attached) and the arrived secondaries,
        as dicts with ``role`` ('primary'/'secondary'), ``nodeid`` (term), ``address`` (text)."""
        out = []
        if self._upstream is not None:
            out.append({"role": "primary", "nodeid": self._upstream.pid,
                        "address": self._upstream.conn.peer_ip})
        for sec in self._secondaries:
            out.append({"role": "secondary", "nodeid": sec.nodeid, "address": sec.conn.peer_ip})
        return out

    def status(self):
        """``(state, [(nodeid term, address term), …])`` exactly as the status reply (§8)."""
        st = self._state
        nodes = []
        if st in (STATE_SECONDARY, STATE_SECONDARY_RELAY) and self._upstream is not None:
            nodes.append((self._upstream.pid, self._upstream.shown))
        if st in (STATE_PRIMARY, STATE_SECONDARY_RELAY):
            nodes.extend((s.nodeid, s.addr) for s in self._secondaries)
        return st, nodes[:MAX_STATUS_NODES]

    def get(self, path: str) -> Optional[str]:
        return self._datastore().get(path)

    def items(self, prefix: str = "/") -> list:
        return self._datastore().items(prefix)

    def _datastore(self) -> Store:
        # A stopped node still answers reads (a closed Store does); a never started one cannot.
        if self._store is None:
            raise RuntimeError("node %s has not been started yet" % self.label)
        return self._store

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
        for conn in list(self._peer_conns):
            conn.refresh()

    async def commit(self, changes) -> str:
        """Commit a change set (``[("set", path, value) | ("delete", path), …]``) and return
        its transaction id. On a PRIMARY it returns once every arrived secondary has
        acknowledged it or been declared dead (B-30). SECONDARY/relay → ``Error(17)`` (B-29)."""
        if not self._running:
            raise RuntimeError("node %s is not running" % self.label)
        if self._state in (STATE_SECONDARY, STATE_SECONDARY_RELAY):
            error.raise_error(error.ERR_BADSTATE, SECONDARY_WRITE_TEXT)
        blob = encode_changes(changes)
        store = self._store
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

    def _fan_out(self, txid: str, blob: bytes) -> list:
        """Send one transaction downstream: arrived secondaries (futures returned) and
        secondaries in their initial sync (in order after their snapshot, not waited for)."""
        waits = [s.conn.replicate(txid, blob) for s in list(self._secondaries)]
        for conn in list(self._syncing):
            conn.replicate(txid, blob)
        return waits

    # ================================================================ IPC interface

    def attach_control(self, conn, token: bytes) -> None:
        """A new HA control socket: it replaces the old one and the token (B-02, W-16)."""
        old, self._control = self._control, conn
        if old is not None and old is not conn:
            old.close()
        self._token = token
        self._decide("HA control socket from %s; token replaced%s" % (
            conn.label.split(" ", 1)[-1], "" if old is None else ", previous control socket closed"))

    @property
    def hub(self) -> EventHub:
        return self._hub

    def status_frame(self) -> bytes:
        return _protocol.encode_status(*self.status())

    def submit_order(self, order: _protocol.Order) -> "asyncio.Future":
        """Queue an order for the engine; the future gets the reply frame (None: no reply)."""
        fut = asyncio.get_running_loop().create_future()
        self._post(functools.partial(self._run_order, order, fut))
        return fut

    def submit_invalid(self, why: str) -> "asyncio.Future":
        """Queue the outcome of an invalid ``besecondary`` with WaitReply 0: nothing is ever
        written for it (W-17), so PROTOUSAGE goes out as BESECONDARY_RESULT (B-15), in order
        with the other work. The future is done when the event was emitted."""
        fut = asyncio.get_running_loop().create_future()
        self._post(functools.partial(self._run_invalid, why, fut))
        return fut

    async def _run_invalid(self, why: str, fut: "asyncio.Future") -> None:
        try:
            self._decide("besecondary refused with %s: invalid order (%s)" % (
                error.errname(error.ERR_PROTOUSAGE), why))
            self._emit(HA_INFO_BESECONDARY_RESULT, error.ERR_PROTOUSAGE)
        finally:
            if not fut.done():
                fut.set_result(None)

    # ================================================================ the engine

    def _post(self, item) -> None:
        if self._running and self._queue is not None:
            self._queue.put_nowait(item)

    async def _engine(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                await item()
            except asyncio.CancelledError:
                raise
            except Exception:  # an engine bug must not stop the node
                log.exception("%s: HA engine item failed", self.label)
            await self._hub.wait_synced()

    def _emit(self, ha_type: int, data) -> None:
        """Send one event now. B-27's wait happens between work items (see :meth:`_engine`),
        never inside one, so that an order's events and its reply go out together (B-05)."""
        self._hub.emit(ha_type, data)
        self._decide("event %s %s" % (EVENT_NAMES.get(ha_type, ha_type), _event_text(ha_type, data)))

    def _decide(self, text: str) -> None:
        self._decisions.append("%s %s" % (time.strftime("%H:%M:%S"), text))
        log.info("%s: %s", self.label, text)

    async def _run_order(self, order: _protocol.Order, fut: "asyncio.Future") -> None:
        try:
            reply = await self._execute(order, fut)
        except Exception:
            log.exception("%s: order %s failed", self.label, _ORDER_NAMES.get(order.code))
            reply = _protocol.encode_error(error.ERR_INTERNAL)
        if reply is _DEFERRED and not order.waitreply:
            reply = None  # an asynchronous join reports through events only (W-17)
        if reply is not _DEFERRED and not fut.done():
            fut.set_result(reply)

    async def _execute(self, order: _protocol.Order, fut):
        code = order.code
        name = _ORDER_NAMES.get(code, str(code))
        async_besecondary = code == _protocol.BESECONDARY and not order.waitreply
        # B-03: phase 0, then upgrade, then the per-state rules.
        if self._phase == 0:
            return await self._refuse(name, error.ERR_BADSTATE, async_besecondary, "start phase 0")
        if self._upgrade and code in (_protocol.BEPRIMARY, _protocol.BESECONDARY):
            return await self._refuse(name, error.ERR_HA_WITH_UPGRADE, async_besecondary,
                                      "upgrade in progress")
        if code == _protocol.BEPRIMARY:
            return await self._beprimary(order.node)
        if code == _protocol.BESECONDARY:
            return await self._besecondary(order, fut)
        if code == _protocol.BENONE:
            return await self._benone()
        if code == _protocol.BERELAY:
            return await self._berelay()
        if code == _protocol.SECONDARY_DEAD:
            return await self._secondary_dead(order.node)
        return _protocol.encode_error(error.ERR_PROTOUSAGE)  # pragma: no cover - decode_order

    async def _refuse(self, name: str, code: int, async_besecondary: bool, why: str):
        self._decide("%s refused with %s: %s" % (name, error.errname(code), why))
        if async_besecondary:
            self._emit(HA_INFO_BESECONDARY_RESULT, code)
            return None
        return _protocol.encode_error(code)

    # ---------------------------------------------------------------- beprimary

    async def _beprimary(self, nodeid):
        st = self._state
        if st == STATE_PRIMARY:
            if same_term(nodeid, self._name):
                self._decide("beprimary %s: already PRIMARY with that name, no-op" % node_text(nodeid))
            else:
                self._decide("beprimary %s: renamed from %s, secondaries kept (B-06)"
                             % (node_text(nodeid), node_text(self._name)))
                self._name = nodeid
            return _protocol.OK_FRAME
        if st == STATE_NONE:
            await self._cancel_join()
        if st != STATE_SECONDARY_RELAY and not await self._listen():
            self._decide("beprimary %s: cannot bind %s:%d, stays %s" % (
                node_text(nodeid), self.config.ha_address, self.config.ha_port, STATE_NAMES[st]))
            return _protocol.encode_error(error.ERR_HA_BIND)
        self._drop_upstream()
        self._state = STATE_PRIMARY
        self._name = nodeid
        self._decide("beprimary %s: %s -> PRIMARY%s" % (
            node_text(nodeid), STATE_NAMES[st],
            " keeping %d sub-secondaries (B-07)" % len(self._secondaries)
            if st == STATE_SECONDARY_RELAY else ""))
        self._emit(HA_INFO_IS_PRIMARY, 0)
        return _protocol.OK_FRAME

    # ---------------------------------------------------------------- besecondary

    async def _besecondary(self, order: _protocol.Order, fut):
        st = self._state
        att = self._upstream
        text = "besecondary %s -> %s@%s" % (node_text(order.node), node_text(order.pnode),
                                            _addr_text(order.addr))
        if st in (STATE_SECONDARY, STATE_SECONDARY_RELAY) and att is not None and \
                same_term(att.me, order.node) and same_term(att.pid, order.pnode) and \
                same_term(att.addr, order.addr):
            if st == STATE_SECONDARY_RELAY:
                self._drop_downstream()
                self._state = STATE_SECONDARY
                self._decide("%s: same parameters, relay stops relaying -> SECONDARY" % text)
            else:
                self._decide("%s: same parameters, no-op" % text)
            if order.waitreply:
                return _protocol.OK_FRAME
            self._emit(HA_INFO_BESECONDARY_RESULT, 0)
            return None
        if st != STATE_NONE:
            self._to_none()
            self._decide("%s: %s -> NONE before joining (B-08)" % (text, STATE_NAMES[st]))
            self._emit(HA_INFO_IS_NONE, 0)
        else:
            await self._cancel_join()
        self._start_join(order, fut)
        self._decide("%s: join started (waitreply=%d)" % (text, order.waitreply))
        return _DEFERRED

    def _start_join(self, order: _protocol.Order, fut) -> None:
        cfg = self.config
        join = _Join(order, fut)
        join.txid = self._store.txid
        params = peer.JoinParams(
            me=order.node, pid=order.pnode, token=self._token, ha_vsn=cfg.ha_vsn,
            fxs_fp=cfg.fxs_fp, ha_config_fp=cfg.ha_config_fp, txid=join.txid, port=cfg.ha_port,
            source_ip=cfg.ha_address, tick=cfg.tick_timeout, max_frame=cfg.max_frame,
            label="%s join->%s" % (self.label, _addr_text(order.addr)))
        self._join = join
        join.task = self._spawn(self._join_task(join, params))

    async def _join_task(self, join: _Join, params: peer.JoinParams) -> None:
        try:
            result = await peer.join(params, join.order.addr, self._policy)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug in a join must end the attempt, not leave it pending forever
            log.exception("%s: join attempt failed unexpectedly", self.label)
            result = peer.HA_CLOSED
        self._post(functools.partial(self._finish_join, join, result))
        if not self._running and isinstance(result, peer.JoinOk):
            result.conn.abort()

    async def _finish_join(self, join: _Join, result) -> None:
        if self._join is not join:  # cancelled meanwhile; already reported
            if isinstance(result, peer.JoinOk):
                result.conn.close()
            return
        self._join = None
        if isinstance(result, int):
            await self._join_failed(join, result)
            return
        conn = result.conn
        code = None
        if conn.closed:
            code = peer.HA_CLOSED
        elif result.copy:
            try:
                self._store.install_snapshot(result.txid, result.snapshot)
            except (ValueError, StoreError, OSError) as exc:
                log.warning("%s: cannot install the primary's snapshot: %s", self.label, exc)
                code = peer.HA_CLOSED
        elif self._store.txid != result.txid or self._store.txid != join.txid:
            # Something was committed here while the join ran: the copy decision is stale.
            code = peer.HA_CLOSED
        if code is not None:
            conn.close()
            await self._join_failed(join, code)
            return
        order = join.order
        by_copy = 1 if result.copy else 0
        conn.send((peer.HA_SYNCED, by_copy))
        shown = order.addr if not isinstance(order.addr, (bytes, list)) else \
            _protocol.address_term(conn.peer_ip)
        self._upstream = Attachment(order.node, order.pnode, order.addr, shown, conn)
        self._state = STATE_SECONDARY
        self._name = order.node
        conn.start_ticks()
        self._spawn(self._upstream_loop(conn))
        self._decide("joined %s@%s as %s: NONE -> SECONDARY (%s, txid %s)" % (
            node_text(order.pnode), conn.peer_ip, node_text(order.node),
            "full copy" if by_copy else "no copy", self._store.txid))
        self._emit(HA_INFO_SECONDARY_INITIALIZED, by_copy)
        if order.waitreply:
            if not join.reply.done():
                join.reply.set_result(_protocol.OK_FRAME)
        else:
            self._emit(HA_INFO_BESECONDARY_RESULT, 0)

    async def _join_failed(self, join: _Join, code: int) -> None:
        self._decide("join %s -> %s failed: %s, stays NONE" % (
            node_text(join.order.node), node_text(join.order.pnode), error.errname(code)))
        if join.order.waitreply:
            if not join.reply.done():
                join.reply.set_result(_protocol.encode_error(code))
        else:
            self._emit(HA_INFO_BESECONDARY_RESULT, code)

    async def _cancel_join(self) -> None:
        """B-11: a later beprimary/besecondary/benone cancels the join attempt."""
        join, self._join = self._join, None
        if join is None:
            return
        if join.task is not None:
            join.task.cancel()
        self._decide("pending join of %s cancelled" % node_text(join.order.node))
        await self._join_failed(join, peer.HA_CLOSED)

    # ---------------------------------------------------------------- benone, berelay, dead

    async def _benone(self):
        st = self._state
        if st == STATE_NONE:
            if self._join is not None:
                await self._cancel_join()
            else:
                self._decide("benone: already NONE, no-op")
            return _protocol.OK_FRAME
        self._to_none()
        self._decide("benone: %s -> NONE" % STATE_NAMES[st])
        self._emit(HA_INFO_IS_NONE, 0)
        return _protocol.OK_FRAME

    async def _berelay(self):
        st = self._state
        if st == STATE_SECONDARY_RELAY:
            self._decide("berelay: already relay, no-op (B-09)")
            return _protocol.OK_FRAME
        if st != STATE_SECONDARY:
            self._decide("berelay refused: node is %s" % STATE_NAMES[st])
            return _protocol.encode_error(error.ERR_BADSTATE)
        if not await self._listen():
            self._decide("berelay: cannot bind %s:%d, stays SECONDARY" % (
                self.config.ha_address, self.config.ha_port))
            return _protocol.encode_error(error.ERR_HA_BIND)
        self._state = STATE_SECONDARY_RELAY
        self._decide("berelay: SECONDARY -> SECONDARY_RELAY, listening on %s:%d" % (
            self.config.ha_address, self.config.ha_port))
        return _protocol.OK_FRAME

    async def _secondary_dead(self, nodeid):
        if self._state != STATE_PRIMARY:
            self._decide("secondary_dead %s: not PRIMARY, no-op" % node_text(nodeid))
            return _protocol.OK_FRAME
        # B-10: a node still joining (handshake steps 2-4, or its initial sync) is cut off
        # too; it never arrived, so there is no event (its join fails with HA_CLOSED).
        joining = {c for c in self._handshaking if c.nodeid is not None and same_term(c.nodeid, nodeid)}
        joining.update(c for c, nid in self._syncing.items() if same_term(nid, nodeid))
        for conn in joining:
            self._syncing.pop(conn, None)
            conn.close(bye=True)
            self._decide("secondary_dead %s: cut off during its join from %s" % (
                node_text(nodeid), conn.peer_ip))
        found = [s for s in self._secondaries if same_term(s.nodeid, nodeid)]
        if not found:
            self._decide("secondary_dead %s: no such secondary, no-op" % node_text(nodeid))
        for sec in found:
            self._secondaries.remove(sec)
            sec.conn.close(bye=True)
            self._decide("secondary_dead %s: connection closed" % node_text(nodeid))
            self._emit(HA_INFO_SECONDARY_DIED, (sec.nodeid, sec.addr))
        return _protocol.OK_FRAME

    # ---------------------------------------------------------------- helpers of the orders

    async def _listen(self) -> bool:
        if self._ha_server is not None:
            return True
        cfg = self.config
        try:
            self._ha_server = await asyncio.start_server(
                self._on_peer, cfg.ha_address, cfg.ha_port, reuse_address=True, backlog=256)
        except OSError as exc:
            log.info("%s: cannot bind HA listener %s:%d: %s", self.label, cfg.ha_address,
                     cfg.ha_port, exc)
            return False
        return True

    def _stop_listening(self) -> None:
        if self._ha_server is not None:
            self._ha_server.close()
            self._ha_server = None
        for conn in list(self._handshaking):
            conn.close()

    def _drop_upstream(self) -> None:
        att, self._upstream = self._upstream, None
        if att is not None:
            att.conn.close(bye=True)

    def _drop_downstream(self) -> None:
        """Close the listener and every secondary connection, without events (B-21)."""
        self._stop_listening()
        secs, self._secondaries = self._secondaries, []
        for sec in secs:
            sec.conn.close(bye=True)
        syncing, self._syncing = self._syncing, {}
        for conn in syncing:
            conn.close(bye=True)

    def _to_none(self) -> None:
        self._drop_upstream()
        self._drop_downstream()
        self._state = STATE_NONE

    # ================================================================ upstream (as a secondary)

    async def _upstream_loop(self, conn: PeerConn) -> None:
        try:
            while True:
                term = await conn.recv()
                if peer.is_tick(term):
                    continue
                if peer.is_trans(term):
                    self._apply_trans(conn, term)
                elif peer.is_bye(term):
                    conn.die(peer.HA_CLOSED)
                else:
                    log.warning("%s: unexpected message from primary, closing", self.label)
                    conn.die(peer.HA_CLOSED)
        except PeerClosed as exc:
            self._post(functools.partial(self._primary_lost, conn, exc.reason))
        except Exception:  # a bug here must cost this link, not the node
            log.exception("%s: upstream link failed", self.label)
            conn.die(peer.HA_CLOSED)
            self._post(functools.partial(self._primary_lost, conn, peer.HA_CLOSED))

    def _apply_trans(self, conn: PeerConn, term) -> None:
        att = self._upstream
        if att is None or att.conn is not conn:
            return  # left this primary already
        _, seq, raw_txid, blob = term
        if conn.closed:
            conn.torn = True  # received but can no longer be acknowledged (B-14)
            return
        txid = peer.txid_text(raw_txid)
        try:
            if txid is None:
                raise ValueError("bad transaction id")
            self._store.commit(decode_changes(blob), txid)
        except (ValueError, StoreError, OSError) as exc:
            log.warning("%s: cannot apply replicated transaction: %s", self.label, exc)
            conn.torn = True
            conn.die(peer.HA_CLOSED)
            return
        conn.send((peer.HA_ACK, seq))
        if self._state == STATE_SECONDARY_RELAY:
            self._fan_out(txid, blob)  # B-19: acknowledged upstream at once, then forwarded

    async def _primary_lost(self, conn: PeerConn, reason: int) -> None:
        att = self._upstream
        if att is None or att.conn is not conn:
            return
        st = self._state
        if conn.torn:
            try:
                self._store.invalidate()
            except (StoreError, OSError) as exc:
                log.warning("%s: cannot invalidate the transaction id: %s", self.label, exc)
        self._upstream = None
        self._drop_downstream()
        self._state = STATE_NONE
        self._decide("lost primary %s (%s): %s -> NONE%s" % (
            node_text(att.pid), error.errname(reason), STATE_NAMES[st],
            ", transaction id discarded" if conn.torn else ""))
        self._emit(HA_INFO_NOPRIMARY, reason)

    # ================================================================ downstream (as primary/relay)

    async def _on_peer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self._view.serving():
            writer.close()
            return
        cfg = self.config
        peername = writer.get_extra_info("peername")
        conn = PeerConn(reader, writer, policy=self._policy, tick=cfg.tick_timeout,
                        max_frame=cfg.max_frame,
                        label="%s peer %s" % (self.label, peername[0] if peername else "?"))
        task = asyncio.current_task()
        self._tasks.add(task)
        self._handshaking.add(conn)
        try:
            deadline = None
            if cfg.tick_timeout > 0:
                deadline = asyncio.get_running_loop().time() + 3 * cfg.tick_timeout
            joined = await peer.serve_join(conn, self._view, deadline)
            if joined is None:
                self._syncing.pop(conn, None)
                return
            conn.start_ticks()
            self._post(functools.partial(self._arrived, conn, joined))
        except asyncio.CancelledError:
            conn.abort()
        except Exception:
            log.exception("%s: joining connection failed", self.label)
            conn.close()
        finally:
            self._handshaking.discard(conn)
            self._tasks.discard(task)

    def _start_sync(self, conn: PeerConn, nodeid, their_txid: str):
        """Step 5: decide copy/no-copy (B-14) and start forwarding transactions to ``conn``.
        Synchronous, so that no commit falls between the snapshot and the forwarding."""
        own = self._store.txid
        self._syncing[conn] = nodeid
        if their_txid == own and own != INVALID_TXID:
            return (peer.HA_SYNC, peer.NOCOPY, own.encode("utf-8"))
        txid, blob = self._store.snapshot()
        return (peer.HA_SYNC, peer.COPY, txid.encode("utf-8"), blob)

    async def _arrived(self, conn: PeerConn, joined: peer.Joined) -> None:
        nodeid = self._syncing.pop(conn, None)
        if conn.closed or nodeid is None or self._state not in (STATE_PRIMARY, STATE_SECONDARY_RELAY):
            conn.close()
            return
        primary = self._state == STATE_PRIMARY
        try:
            addr = _protocol.address_term(conn.peer_ip)
        except ValueError:  # not an IP (cannot happen on TCP); report the unspecified address
            addr = (0, 0, 0, 0)
        for old in [s for s in self._secondaries if same_term(s.nodeid, joined.nodeid)]:
            # B-17: the newer connection wins.
            self._secondaries.remove(old)
            old.conn.close(bye=True)
            self._decide("secondary %s rejoined: older connection from %s closed" % (
                node_text(old.nodeid), old.conn.peer_ip))
            if primary:
                self._emit(HA_INFO_SECONDARY_DIED, (old.nodeid, old.addr))
        sec = Secondary(conn, joined.nodeid, addr)
        self._secondaries.append(sec)
        self._spawn(self._downstream_loop(sec))
        self._decide("secondary %s arrived from %s (%s)" % (
            node_text(joined.nodeid), conn.peer_ip, "full copy" if joined.by_copy else "no copy"))
        if primary:  # B-18: a relay emits no SECONDARY_* events
            self._emit(HA_INFO_SECONDARY_ARRIVED, (sec.nodeid, sec.addr))

    async def _downstream_loop(self, sec: Secondary) -> None:
        conn = sec.conn
        try:
            while True:
                term = await conn.recv()
                if peer.is_tick(term):
                    continue
                if peer.is_ack(term):
                    conn.acked(term[1])
                elif peer.is_bye(term):
                    conn.die(peer.HA_CLOSED)
                else:
                    log.warning("%s: unexpected message from secondary, closing", self.label)
                    conn.die(peer.HA_CLOSED)
        except PeerClosed as exc:
            self._post(functools.partial(self._secondary_lost, sec, exc.reason))
        except Exception:
            log.exception("%s: downstream link failed", self.label)
            conn.die(peer.HA_CLOSED)
            self._post(functools.partial(self._secondary_lost, sec, peer.HA_CLOSED))

    async def _secondary_lost(self, sec: Secondary, reason: int) -> None:
        if sec not in self._secondaries:
            return  # dropped by an order already
        self._secondaries.remove(sec)
        self._decide("secondary %s at %s is dead (%s)" % (
            node_text(sec.nodeid), sec.conn.peer_ip, error.errname(reason)))
        if self._state == STATE_PRIMARY:
            self._emit(HA_INFO_SECONDARY_DIED, (sec.nodeid, sec.addr))

    def __repr__(self) -> str:
        return "<Node %s %s%s>" % (self.label, STATE_NAMES[self._state],
                                   "" if self._running else " (stopped)")


_DEFERRED = object()   # the reply comes later (synchronous besecondary)


def _addr_text(addr) -> str:
    try:
        return _protocol.address_text(addr)
    except error.Error:
        return "?"


def _event_text(ha_type: int, data) -> str:
    if isinstance(data, tuple) and len(data) == 2:
        return "%s@%s" % (node_text(data[0]), _addr_text(data[1]))
    if ha_type in (HA_INFO_NOPRIMARY, HA_INFO_BESECONDARY_RESULT) and data:
        return "%d (%s)" % (data, error.errname(data))
    return str(data)
