"""The HA orders a node executes, as ConfD 8.2.5 does them (docs/conformance.md, "Orders").

A layer of :class:`confd_ha.emulator.node.Node` (see :mod:`.nodebase`); each order runs as
one item of the node's HA engine, so a node does one order at a time and a ``status()`` sent
during a join is answered when the join is over.

One :class:`Outcome` per order decides how it answers: a reply frame on the control socket, or
-- for an asynchronous ``besecondary`` -- a BESECONDARY_RESULT event and never a reply.
``benone`` answers after its IS_NONE event has been acknowledged by every HA_INFO_SYNC
subscriber; every other order answers before its events.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Optional

from .. import _address, _protocol, error
from .._terms import Term
from . import peer
from .nodebase import STATE_NONE, STATE_PRIMARY, STATE_SECONDARY, STATE_SECONDARY_RELAY
from .nodebase import ControlSocket, NodeBase, addr_text
from .peer import node_text, same_term
from .tree import Attachment, Tree

log = logging.getLogger("confd_ha.emulator")

HA_INFO_SECONDARY_DIED = _protocol.HA_INFO_SECONDARY_DIED
HA_INFO_SECONDARY_INITIALIZED = _protocol.HA_INFO_SECONDARY_INITIALIZED
HA_INFO_IS_PRIMARY = _protocol.HA_INFO_IS_PRIMARY
HA_INFO_IS_NONE = _protocol.HA_INFO_IS_NONE
HA_INFO_BESECONDARY_RESULT = _protocol.HA_INFO_BESECONDARY_RESULT

ORDER_NAMES = {1: "beprimary", 2: "besecondary", 3: "benone", 4: "status",
               5: "secondary_dead", 6: "berelay"}
COPIED = 1   # ConfD 8.2.5 reports cdb_initialized_by_copy 1 on every join


class Outcome:
    """How one order answers. ``fut`` is what the IPC connection waits for: the reply frame,
    or None for nothing to write."""

    def __init__(self, node: NodeBase, order: _protocol.Order,
                 fut: "asyncio.Future[Optional[bytes]]") -> None:
        self.node = node
        self.fut = fut
        self.asynchronous = order.code == _protocol.BESECONDARY and not order.waitreply

    def frame(self, data: Optional[bytes]) -> None:
        if not self.fut.done():
            self.fut.set_result(data)

    async def answer(self, code: int = 0) -> None:
        """Success (0) or an error code, as a reply or as BESECONDARY_RESULT."""
        if self.asynchronous:
            self.frame(None)
            await self.node._emit(HA_INFO_BESECONDARY_RESULT, code)
        else:
            self.frame(_protocol.OK_FRAME if code == 0 else _protocol.encode_error(code))

    def abandon(self) -> None:
        """No answer at all (the control socket is gone)."""
        self.frame(None)


class Orders(Tree):
    """The orders of a :class:`~confd_ha.emulator.node.Node`."""

    def submit_order(self, order: _protocol.Order) -> "asyncio.Future[Optional[bytes]]":
        """Queue an order for the engine; the future gets the reply frame (None: no reply)."""
        fut: "asyncio.Future[Optional[bytes]]" = asyncio.get_running_loop().create_future()
        self._post(lambda: self._run_order(order, fut))
        return fut

    def submit_invalid(self, why: str) -> "asyncio.Future[None]":
        """An invalid ``besecondary`` with WaitReply 0: nothing is ever written for it (W-17);
        PROTOUSAGE goes out as BESECONDARY_RESULT, in order with the other work."""
        fut: "asyncio.Future[None]" = asyncio.get_running_loop().create_future()

        async def run() -> None:
            try:
                self._decide("besecondary refused with %s: invalid order (%s)" % (
                    error.errname(error.ERR_PROTOUSAGE), why))
                await self._emit(HA_INFO_BESECONDARY_RESULT, error.ERR_PROTOUSAGE)
            finally:
                if not fut.done():
                    fut.set_result(None)

        self._post(run)
        return fut

    async def control_crashed(self, conn: ControlSocket, why: str) -> None:
        """``--confd-quirks``: an order on ``conn`` makes ConfD's HA subsystem crash (the IPC
        server found it malformed); in turn, like any order."""
        done: "asyncio.Future[None]" = asyncio.get_running_loop().create_future()

        async def run() -> None:
            try:
                await self._crash_ha(why)
            finally:
                if not done.done():
                    done.set_result(None)

        self._post(run)
        await done

    async def _run_order(self, order: _protocol.Order,
                         fut: "asyncio.Future[Optional[bytes]]") -> None:
        out = Outcome(self, order, fut)
        try:
            await self._execute(order, out)
        except Exception:
            log.exception("%s: order %s failed", self.label, ORDER_NAMES.get(order.code))
            out.frame(_protocol.encode_error(error.ERR_INTERNAL))
        finally:
            out.frame(None)

    async def _execute(self, order: _protocol.Order, out: Outcome) -> None:
        code = order.code
        if code == _protocol.GETSTATUS:
            out.frame(self.status_frame())
            return
        name = ORDER_NAMES.get(code, str(code))
        # Phase 0 first, then an upgrade, then the per-state rules (B-03); neither emits
        # IS_NONE for a refused besecondary.
        if self._phase == 0:
            return await self._refuse(out, name, error.ERR_BADSTATE, "start phase 0")
        if self._upgrade and code in (_protocol.BEPRIMARY, _protocol.BESECONDARY):
            return await self._refuse(out, name, error.ERR_HA_WITH_UPGRADE, "upgrade in progress")
        if code == _protocol.BEPRIMARY:
            return await self._beprimary(order.node, out)
        if code == _protocol.BESECONDARY:
            return await self._besecondary(order, out)
        if code == _protocol.BENONE:
            return await self._benone(out)
        if code == _protocol.BERELAY:
            return await self._berelay(out)
        if code == _protocol.SECONDARY_DEAD:
            return await self._secondary_dead(order.node, out)
        await out.answer(error.ERR_PROTOUSAGE)  # pragma: no cover - decode_order refuses it

    async def _refuse(self, out: Outcome, name: str, code: int, why: str) -> None:
        self._decide("%s refused with %s: %s" % (name, error.errname(code), why))
        await out.answer(code)

    # ------------------------------------------------------------ beprimary

    async def _beprimary(self, nodeid: Term, out: Outcome) -> None:
        st = self._state
        if st == STATE_PRIMARY:
            # ConfD answers ok and keeps its name (and its secondaries).
            self._decide("beprimary %s: already PRIMARY as %s, no change" % (
                node_text(nodeid), node_text(self._name)))
            return await out.answer(0)
        if st in (STATE_NONE, STATE_SECONDARY) and not await self._listen():
            self._decide("beprimary %s: cannot bind %s:%d, stays %s" % (
                node_text(nodeid), self.config.ha_address, self.config.ha_port,
                self.STATE_NAMES[st]))
            return await out.answer(error.ERR_HA_BIND)
        self._drop_upstream()
        if st == STATE_SECONDARY_RELAY:
            self._drop_children()   # a relay that becomes primary drops what is behind it
        self._state = STATE_PRIMARY
        self._name = nodeid
        self._decide("beprimary %s: %s -> PRIMARY" % (node_text(nodeid), self.STATE_NAMES[st]))
        await out.answer(0)
        await self._emit(HA_INFO_IS_PRIMARY, 0)

    # ------------------------------------------------------------ besecondary

    async def _besecondary(self, order: _protocol.Order, out: Outcome) -> None:
        st = self._state
        att = self._upstream
        text = "besecondary %s -> %s@%s" % (node_text(order.node), node_text(order.pnode),
                                            addr_text(order.addr))
        if st in (STATE_SECONDARY, STATE_SECONDARY_RELAY) and att is not None and \
                same_term(att.me, order.node) and same_term(att.pid, order.pnode) and \
                same_term(att.addr, order.addr):
            if st == STATE_SECONDARY_RELAY:
                self._stop_listening()
                self._report_left(list(self._roster))
                self._drop_children()
                self._state = STATE_SECONDARY
                self._decide("%s: same parameters, relay stops relaying -> SECONDARY" % text)
            else:
                self._decide("%s: same parameters, no change" % text)
            return await out.answer(0)
        if self.config.confd_quirks and not isinstance(order.pnode, bytes):
            self._leave_roles()
            out.abandon()
            return await self._crash_ha("besecondary to a primary id that is not a binary")
        if st != STATE_NONE:
            self._leave_roles()
            self._decide("%s: %s -> NONE to join" % (text, self.STATE_NAMES[st]))
        self._joining = True
        try:
            result = await peer.join(self._join_params(order), order.addr, self._policy)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug in a join must end it as a failed join, not an error reply
            log.exception("%s: join failed unexpectedly", self.label)
            result = error.ERR_HA_CLOSED
        finally:
            self._joining = False
        code = self._joined(order, result) if isinstance(result, peer.JoinOk) else result
        if code:
            self._decide("%s failed: %s, NONE" % (text, error.errname(code)))
            await out.answer(code)
            return await self._emit(HA_INFO_IS_NONE, 0)
        await out.answer(0)
        await self._emit(HA_INFO_SECONDARY_INITIALIZED, COPIED)

    def _join_params(self, order: _protocol.Order) -> peer.JoinParams:
        cfg = self.config
        return peer.JoinParams(
            me=order.node, pid=order.pnode, token=self._token, ha_vsn=cfg.ha_vsn,
            fxs_fp=cfg.fxs_fp, ha_config_fp=cfg.ha_config_fp, txid=self._datastore().txid,
            port=cfg.ha_port, source_ip=cfg.ha_address if cfg.bind_source else "",
            tick=cfg.tick_timeout, max_frame=cfg.max_frame, deadline=cfg.join_deadline,
            label="%s join->%s" % (self.label, addr_text(order.addr)))

    def _joined(self, order: _protocol.Order, result: peer.JoinOk) -> int:
        """Install what the primary sent and become SECONDARY; 0, or the join's error."""
        conn = result.conn
        if not self._running or conn.closed:
            conn.close()
            return error.ERR_HA_CLOSED
        if result.copy and result.snapshot is not None:   # a copy always has its snapshot
            try:
                self._datastore().install_snapshot(result.txid, result.snapshot)
            except (ValueError, OSError, Exception) as exc:  # StoreError included
                log.warning("%s: cannot install the primary's snapshot: %s", self.label, exc)
                conn.close()
                return error.ERR_HA_CLOSED
        conn.send((peer.HA_SYNCED, 1 if result.copy else 0))
        shown = order.addr if not isinstance(order.addr, (bytes, list)) else \
            _address.address_term(conn.peer_ip)
        self._upstream = Attachment(order.node, order.pnode, order.addr, shown, conn)
        self._state = STATE_SECONDARY
        self._name = order.node
        conn.start_watch()
        self._spawn(self._upstream_loop(conn))
        self._decide("joined %s@%s as %s: NONE -> SECONDARY (%s, txid %s)" % (
            node_text(order.pnode), conn.peer_ip, node_text(order.node),
            "full copy" if result.copy else "no copy", self._datastore().txid))
        return 0

    # ------------------------------------------------------------ benone, berelay, dead

    async def _benone(self, out: Outcome) -> None:
        st = self._state
        self._leave_roles()
        self._decide("benone: %s -> NONE" % self.STATE_NAMES[st])
        await self._emit(HA_INFO_IS_NONE, 0)
        await out.answer(0)

    async def _berelay(self, out: Outcome) -> None:
        st = self._state
        if st == STATE_SECONDARY_RELAY:
            self._decide("berelay: already relay, no change")
            return await out.answer(0)
        if st != STATE_SECONDARY:
            self._decide("berelay refused: node is %s" % self.STATE_NAMES[st])
            return await out.answer(error.ERR_BADSTATE)
        if not await self._listen():
            self._decide("berelay: cannot bind %s:%d, stays SECONDARY" % (
                self.config.ha_address, self.config.ha_port))
            return await out.answer(error.ERR_HA_BIND)
        self._state = STATE_SECONDARY_RELAY
        self._decide("berelay: SECONDARY -> SECONDARY_RELAY")
        await out.answer(0)

    async def _secondary_dead(self, nodeid: Term, out: Outcome) -> None:
        st = self._state
        if st == STATE_SECONDARY_RELAY:
            self._decide("secondary_dead %s refused: node is a relay" % node_text(nodeid))
            return await out.answer(error.ERR_BADSTATE)
        if st != STATE_PRIMARY or nodeid not in self._roster:
            self._decide("secondary_dead %s: no such secondary, no change" % node_text(nodeid))
            return await out.answer(0)
        behind = self._cut(nodeid)
        self._decide("secondary_dead %s: cut off, %d behind it" % (node_text(nodeid), len(behind)))
        await out.answer(0)
        # ConfD reports no SECONDARY_DIED for the node named, but does for those behind it.
        for e in behind:
            await self._emit(HA_INFO_SECONDARY_DIED, (e.nodeid, e.addr))
