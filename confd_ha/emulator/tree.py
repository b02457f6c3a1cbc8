"""A node's inter-node links: to its primary (upstream) and to its secondaries (downstream).

A layer of :class:`confd_ha.emulator.node.Node` (see :mod:`.nodebase`); every method here
runs on the node's loop, and every change of HA state runs as an item of the node's HA engine.

What ConfD 8.2.5 does, and so what this does (docs/conformance.md):

* A primary knows its whole subtree. A relay asks its primary before it admits a node (the
  duplicate-id check is cluster wide), and reports every node of its subtree that leaves.
  Only the cluster primary emits SECONDARY_ARRIVED / SECONDARY_DIED -- for every node of the
  cluster; relays emit none. The order of the primary's list is :mod:`.roster`'s.
* A lost primary: NOPRIMARY (26 closed, 31 no ticks), then IS_NONE; everything below is dropped.
* A lost secondary: SECONDARY_DIED for it, then for every node behind it, in list order.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
from typing import Any, Callable, ClassVar, Coroutine, Dict, Iterable, Iterator, List, NamedTuple
from typing import Optional, Set, Tuple, Union

from .. import _address, _protocol, error
from .._terms import Atom, Term
from .link import PeerClosed, PeerConn, Policy, is_bye, is_int, is_tagged
from .nodebase import STATE_NONE, STATE_PRIMARY, STATE_SECONDARY, STATE_SECONDARY_RELAY, NodeBase
from .peer import HA_SYNC, HA_SYNCED, COPY, NOCOPY, PrimaryView, node_text, same_term, txid_text
from .roster import Entry, term_key
from .store import INVALID_TXID, StoreError, decode_changes

log = logging.getLogger("confd_ha.emulator")

HA_INFO_NOPRIMARY = _protocol.HA_INFO_NOPRIMARY
HA_INFO_SECONDARY_DIED = _protocol.HA_INFO_SECONDARY_DIED
HA_INFO_SECONDARY_ARRIVED = _protocol.HA_INFO_SECONDARY_ARRIVED
HA_INFO_IS_NONE = _protocol.HA_INFO_IS_NONE

HA_SUB_JOIN = Atom("ha_sub_join")       # child -> parent: may X join behind me?
HA_SUB_ANSWER = Atom("ha_sub_answer")   # parent -> child: 0 or an error code
HA_SUB_LEFT = Atom("ha_sub_left")       # child -> parent: X (behind me) has left
HA_CUT = Atom("ha_cut")                 # parent -> child: drop X (secondary_dead)
HA_TRANS = Atom("ha_trans")
HA_ACK = Atom("ha_ack")

MAX_SUBTREE = 4096   # nodes a primary or relay keeps track of; more is a misbehaving peer
MAX_STATUS_NODES = 255          # W-20


def _is_address(term: Term) -> bool:
    """An IPv4 or IPv6 address tuple, as relays report the nodes behind them."""
    if not isinstance(term, tuple) or len(term) not in (4, 8):
        return False
    top = 255 if len(term) == 4 else 0xFFFF
    return all(is_int(x) and 0 <= x <= top for x in term)


class Attachment(NamedTuple):
    """How this node is attached to its primary (SECONDARY or relay)."""

    me: Term          # mynodeid of the besecondary call
    pid: Term         # primary_id of the call
    addr: Term        # primary address term exactly as given
    shown: Term       # address term reported in status (always an IP tuple)
    conn: PeerConn


Admission = Union[bool, int, None]   # PrimaryView.admit: True, an error code, or None


class Child:
    """A directly attached secondary (admitted; ``arrived`` once it confirmed its sync)."""
    # ``arrived`` is only information: a commit waits for every admitted secondary.

    def __init__(self, conn: PeerConn, nodeid: Term, addr: Term) -> None:
        self.conn = conn
        self.nodeid = nodeid
        self.addr = addr
        self.arrived = False


class Tree(NodeBase):
    """Upstream and downstream links of a :class:`~confd_ha.emulator.node.Node`."""

    _refs: ClassVar[Iterator[int]] = itertools.count(1)
    # Set by Node before this layer runs: how its peer connections and a joining node's
    # handshake see the node (link.Policy, peer.PrimaryView).
    _policy: Policy
    _view: PrimaryView

    def _reset(self) -> None:
        super()._reset()
        self._upstream: Optional[Attachment] = None
        self._children: Dict[bytes, Child] = {}     # term_key -> the direct secondaries
        self._asks: "Dict[int, asyncio.Future[int]]" = {}   # a relay's questions to its primary
        self._handshaking: Set[PeerConn] = set()
        self._ha_server: Optional[asyncio.AbstractServer] = None

    def status(self) -> Tuple[int, List[Tuple[Term, Term]]]:
        """``(state, [(nodeid term, address term), …])`` exactly as the status reply: a
        secondary's primary first, then (primary, relay) every node below, newest first
        (:mod:`.roster`)."""
        st = self._state
        nodes: List[Tuple[Term, Term]] = []
        if st in (STATE_SECONDARY, STATE_SECONDARY_RELAY) and self._upstream is not None:
            nodes.append((self._upstream.pid, self._upstream.shown))
        if st in (STATE_PRIMARY, STATE_SECONDARY_RELAY):
            nodes.extend(self._roster.listing())
        return st, nodes[:MAX_STATUS_NODES]

    def status_frame(self) -> bytes:
        return _protocol.encode_status(*self.status())

    def _leave_roles(self) -> None:
        """Whatever the node was, it is NONE now: its primary and secondaries see it go."""
        self._drop_upstream()
        self._drop_downstream()
        self._state = STATE_NONE

    async def _crash_ha(self, why: str) -> None:
        """``--confd-quirks``: ConfD's HA subsystem crashes and restarts: the control socket
        is closed, the node is NONE with everything dropped, and IS_NONE is sent."""
        log.warning("%s: HA subsystem crash (ConfD quirk): %s", self.label, why)
        self._decide("HA subsystem crashed (ConfD quirk): %s" % why)
        self._leave_roles()
        control, self._control = self._control, None
        if control is not None:
            control.close()
        await self._emit(HA_INFO_IS_NONE, 0)

    # ------------------------------------------------------------ as a secondary

    async def _serve_link(self, conn: PeerConn, handle: Callable[[Term], bool],
                          lost: Callable[[int], Coroutine[Any, Any, None]], whom: str) -> None:
        """Read ``conn`` until it dies: ``handle(term)`` takes each message (False: not one
        for this link, which then closes); ``lost(reason)`` runs as an engine item after."""
        try:
            while True:
                term = await conn.recv()
                if is_bye(term) or not handle(term):
                    if not is_bye(term):
                        log.warning("%s: unexpected message from %s, closing", self.label, whom)
                    conn.die(error.ERR_HA_CLOSED)
        except PeerClosed as exc:
            self._post(functools.partial(lost, exc.reason))
        except Exception:  # a bug here must cost this link, not the node
            log.exception("%s: link to %s failed", self.label, whom)
            conn.die(error.ERR_HA_CLOSED)
            self._post(functools.partial(lost, error.ERR_HA_CLOSED))

    def _upstream_loop(self, conn: PeerConn) -> Coroutine[Any, Any, None]:
        return self._serve_link(conn, functools.partial(self._from_primary, conn),
                                functools.partial(self._primary_lost, conn), "primary")

    def _from_primary(self, conn: PeerConn, term: Term) -> bool:
        if is_tagged(term, HA_TRANS, 4) and is_int(term[1]):
            self._apply_trans(conn, term)
        elif is_tagged(term, HA_SUB_ANSWER, 3) and is_int(term[2]):
            fut = self._asks.pop(term[1], None)
            if fut is not None and not fut.done():
                fut.set_result(term[2])
        elif is_tagged(term, HA_CUT, 2):
            self._post(functools.partial(self._cut_below, term[1]))
        else:
            return False
        return True

    def _apply_trans(self, conn: PeerConn, term: Term) -> None:
        att = self._upstream
        if att is None or att.conn is not conn:
            return  # left this primary already
        _, seq, raw_txid, blob = term
        if conn.closed:
            conn.torn = True  # received but can no longer be acknowledged (B-14)
            return
        txid = txid_text(raw_txid) if isinstance(raw_txid, bytes) else None
        try:
            if txid is None or not isinstance(blob, bytes):
                raise ValueError("bad transaction")
            self._datastore().commit(decode_changes(blob), txid)
        except (ValueError, StoreError, OSError) as exc:
            log.warning("%s: cannot apply replicated transaction: %s", self.label, exc)
            conn.torn = True
            conn.die(error.ERR_HA_CLOSED)
            return
        conn.send((HA_ACK, seq))
        if self._state == STATE_SECONDARY_RELAY:
            self._fan_out(txid, blob)  # acknowledged upstream at once, then forwarded

    async def _primary_lost(self, conn: PeerConn, reason: int) -> None:
        att = self._upstream
        if att is None or att.conn is not conn:
            return
        st = self._state
        if conn.torn:
            try:
                self._datastore().invalidate()
            except (StoreError, OSError) as exc:
                log.warning("%s: cannot invalidate the transaction id: %s", self.label, exc)
        self._upstream = None
        self._drop_downstream()
        self._state = STATE_NONE
        self._decide("lost primary %s (%s): %s -> NONE%s" % (
            node_text(att.pid), error.errname(reason), self.STATE_NAMES[st],
            ", transaction id discarded" if conn.torn else ""))
        await self._emit(HA_INFO_NOPRIMARY, reason)
        await self._emit(HA_INFO_IS_NONE, 0)

    def _drop_upstream(self) -> None:
        att, self._upstream = self._upstream, None
        if att is not None:
            att.conn.close(bye=True)
        self._fail_asks()

    def _fail_asks(self) -> None:
        asks, self._asks = self._asks, {}
        for fut in asks.values():
            if not fut.done():
                fut.set_result(error.ERR_HA_CLOSED)

    async def _ask_upstream(self, nodeid: Term, addr: Term, parent: Term) -> int:
        """A relay asks its primary whether ``nodeid`` may join behind it."""
        att = self._upstream
        if att is None or att.conn.closed:
            return error.ERR_HA_CLOSED
        ref = next(self._refs)
        fut: "asyncio.Future[int]" = asyncio.get_running_loop().create_future()
        self._asks[ref] = fut
        att.conn.send((HA_SUB_JOIN, ref, nodeid, addr, parent))
        return await fut

    def _report_left(self, entries: Iterable[Entry]) -> None:
        """A relay tells its primary that these nodes of its subtree have left."""
        att = self._upstream
        if att is None:
            return
        for e in entries:
            att.conn.send((HA_SUB_LEFT, e.nodeid))

    # ------------------------------------------------------------ as a primary or relay

    def _serving(self) -> bool:
        return self._running and self._state in (STATE_PRIMARY, STATE_SECONDARY_RELAY)

    def _on_peer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """A connection to the HA listener (called at once by the server, not as a task: a
        task cancelled before it ever ran would leave the socket open)."""
        if not self._serving():
            writer.transport.abort()
            return
        cfg = self.config
        peername = writer.get_extra_info("peername")
        conn = PeerConn(reader, writer, policy=self._policy, tick=cfg.tick_timeout,
                        max_frame=cfg.max_frame,
                        label="%s peer %s" % (self.label, peername[0] if peername else "?"))
        self._handshaking.add(conn)   # closed with the node, or when it stops listening
        self._spawn(self._serve_peer(conn))

    async def _listen(self) -> bool:
        """Listen on the HA port (a primary or relay); False if it cannot be bound."""
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

    async def _serve_peer(self, conn: PeerConn) -> None:
        from .peer import serve_join

        try:
            await serve_join(conn, self._view, self.config.join_deadline)
        except asyncio.CancelledError:
            conn.abort()
        except Exception:
            log.exception("%s: joining connection failed", self.label)
            conn.close()
        finally:
            self._handshaking.discard(conn)

    async def admit(self, conn: PeerConn, nodeid: Term, their_txid: str) -> Admission:
        """The last step of a join, as an engine item (see ``PrimaryView.admit``)."""
        fut: "asyncio.Future[Admission]" = asyncio.get_running_loop().create_future()
        self._post(functools.partial(self._admit, conn, nodeid, their_txid, fut))
        return await fut

    async def _admit(self, conn: PeerConn, nodeid: Term, their_txid: str,
                     fut: "asyncio.Future[Admission]") -> None:
        def answer(value: Admission) -> None:
            if not fut.done():
                fut.set_result(value)

        if conn.closed or fut.done() or not self._serving():
            answer(None)
            return
        if self.config.confd_quirks and not isinstance(nodeid, bytes):
            answer(None)
            await self._crash_ha("a secondary joined with a node id that is not a binary")
            return
        addr = _address.address_term(conn.peer_ip)
        if self._state == STATE_PRIMARY:
            if same_term(nodeid, self._name) or nodeid in self._roster:
                self._decide("join of %s refused: the id is taken" % node_text(nodeid))
                answer(error.ERR_HA_BADNAME)
                return
        else:
            code = await self._ask_upstream(nodeid, addr, self._upstream.me
                                            if self._upstream else None)
            if code or conn.closed or fut.done() or not self._serving():
                self._decide("join of %s behind this relay refused (%s)" % (
                    node_text(nodeid), error.errname(code) if code else "gone"))
                answer(code or None)
                return
        self._roster.add_direct(nodeid, addr)
        child = Child(conn, nodeid, addr)
        self._children[term_key(nodeid)] = child
        conn.send(self._sync_term(their_txid))
        conn.start_ticks()
        conn.start_watch()
        self._spawn(self._downstream_loop(child))
        answer(True)
        self._decide("secondary %s admitted from %s" % (node_text(nodeid), conn.peer_ip))
        if self._state == STATE_PRIMARY:
            await self._emit(HA_INFO_SECONDARY_ARRIVED, (nodeid, addr))

    def _sync_term(self, their_txid: str) -> Tuple[Any, ...]:
        """Decide copy or no copy (B-14); synchronous, so that no commit falls between the
        snapshot and the forwarding to the new secondary."""
        store = self._datastore()
        own = store.txid
        if their_txid == own and own != INVALID_TXID:
            return (HA_SYNC, NOCOPY, own.encode("utf-8"))
        txid, blob = store.snapshot()
        return (HA_SYNC, COPY, txid.encode("utf-8"), blob)

    def _downstream_loop(self, child: Child) -> Coroutine[Any, Any, None]:
        return self._serve_link(child.conn, functools.partial(self._from_secondary, child),
                                functools.partial(self._child_lost, child), "secondary")

    def _from_secondary(self, child: Child, term: Term) -> bool:
        if is_tagged(term, HA_SYNCED, 2):
            child.arrived = True
        elif is_tagged(term, HA_SUB_JOIN, 5) and is_int(term[1]) and _is_address(term[3]):
            _, ref, nodeid, addr, parent = term
            self._post(functools.partial(self._sub_join, child, ref, nodeid, addr, parent))
        elif is_tagged(term, HA_SUB_LEFT, 2):
            self._post(functools.partial(self._sub_left, child, term[1]))
        else:
            return False
        return True

    def _is_child(self, child: Child) -> bool:
        return self._children.get(term_key(child.nodeid)) is child

    async def _sub_join(self, child: Child, ref: Term, nodeid: Term, addr: Term,
                        parent: Term) -> None:
        if not self._is_child(child):
            return
        self._roster.touch(child.nodeid)
        if len(self._roster) >= MAX_SUBTREE:
            log.warning("%s: %s reports more than %d nodes behind it, refused", self.label,
                        node_text(child.nodeid), MAX_SUBTREE)
            code = error.ERR_HA_CLOSED
        elif self._state == STATE_PRIMARY:
            code = error.ERR_HA_BADNAME if (same_term(nodeid, self._name) or
                                            nodeid in self._roster) else 0
        elif self._state == STATE_SECONDARY_RELAY:
            code = await self._ask_upstream(nodeid, addr, parent)
        else:
            code = error.ERR_HA_CLOSED
        if code == 0 and self._is_child(child):
            self._roster.add_behind(nodeid, addr, parent)
        child.conn.send((HA_SUB_ANSWER, ref, code))
        self._decide("%s asks to admit %s behind it: %s" % (
            node_text(child.nodeid), node_text(nodeid), error.errname(code) if code else "ok"))
        if code == 0 and self._state == STATE_PRIMARY:
            await self._emit(HA_INFO_SECONDARY_ARRIVED, (nodeid, addr))

    async def _sub_left(self, child: Child, nodeid: Term) -> None:
        if not self._is_child(child):
            return
        entry = self._roster.find(nodeid)
        if entry is None or entry.parent is None:
            return
        self._roster.remove_one(nodeid)
        self._roster.touch(child.nodeid)
        self._decide("%s reports %s gone" % (node_text(child.nodeid), node_text(nodeid)))
        if self._state == STATE_PRIMARY:
            await self._emit(HA_INFO_SECONDARY_DIED, (entry.nodeid, entry.addr))
        else:
            self._report_left([entry])

    async def _child_lost(self, child: Child, reason: int) -> None:
        if not self._is_child(child):
            return  # dropped by an order already
        del self._children[term_key(child.nodeid)]
        gone = self._roster.remove_tree(child.nodeid)
        self._decide("secondary %s at %s is dead (%s)%s" % (
            node_text(child.nodeid), child.conn.peer_ip, error.errname(reason),
            ", with %d behind it" % (len(gone) - 1) if len(gone) > 1 else ""))
        await self._report_gone(gone)

    async def _report_gone(self, entries: List[Entry]) -> None:
        if self._state == STATE_PRIMARY:
            for e in entries:
                await self._emit(HA_INFO_SECONDARY_DIED, (e.nodeid, e.addr))
        elif self._state == STATE_SECONDARY_RELAY:
            self._report_left(entries)

    def _cut(self, nodeid: Term) -> List[Entry]:
        """Drop ``nodeid`` and everything behind it, without a word upstream; the nodes behind
        it are returned (``secondary_dead``)."""
        via: Optional[Entry] = self._roster.direct_of(nodeid)
        gone = self._roster.remove_tree(nodeid)
        if via is None or not gone:
            return []
        if same_term(via.nodeid, nodeid):
            child = self._children.pop(term_key(nodeid), None)
            if child is not None:
                child.conn.close(bye=True)
        else:
            child = self._children.get(term_key(via.nodeid))
            if child is not None:
                child.conn.send((HA_CUT, nodeid))
        return gone[1:]

    async def _cut_below(self, nodeid: Term) -> None:
        if self._state != STATE_SECONDARY_RELAY:
            return
        gone = self._cut(nodeid)
        self._decide("primary cut %s (and %d behind it)" % (node_text(nodeid), len(gone)))

    def _drop_downstream(self) -> None:
        """Stop listening and close every secondary connection, without events."""
        self._stop_listening()
        self._drop_children()

    def _drop_children(self) -> None:
        children, self._children = self._children, {}
        for child in children.values():
            child.conn.close(bye=True)
        self._roster.clear()

    def _stop_listening(self) -> None:
        if self._ha_server is not None:
            self._ha_server.close()
            self._ha_server = None
        for conn in list(self._handshaking):
            conn.close()

    def _fan_out(self, txid: str, blob: bytes) -> "List[asyncio.Future[Any]]":
        """Send one transaction to every direct secondary; a commit waits for the returned
        futures (each True on the acknowledgement, False once its secondary is dead).
        Secondaries still installing their initial copy are included: they are listed
        already, and a commit that returned must be on every listed secondary."""
        return [child.conn.replicate(txid, blob) for child in list(self._children.values())]
