"""The agent's hold on its node: the HA control socket and an HA event subscription.

ConfD keeps one HA control socket per node, and a new connection replaces the old one (the
old one is closed). :class:`NodeLink` owns that socket for the agent. When a call ends in EOF
it tells three cases apart:

* the IPC port refuses: the node is down (:class:`NodeDown`);
* the port accepts and the event subscription is still open: another client replaced the
  control socket -- a warning naming the node is logged, the link reconnects (taking the
  socket back, with this agent's token) and :attr:`NodeLink.replaced` is set so that the
  agent re-asserts the node's role;
* the port accepts but the event subscription was closed too: the node restarted
  (:attr:`NodeLink.restarted`).

Every order is bounded (``order_timeout``; a synchronous ``besecondary`` ``join_timeout``);
an order that runs out raises :class:`NodeTimeout` and the connection stays usable (its late
reply is skipped by the next call).
"""

from __future__ import annotations

import asyncio
import errno
import logging
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple, TypeVar, Union

from .. import aio, error, events
from .._consts import event_name as _event_name
from ._timeout import within
from .config import AgentConfig

log = logging.getLogger("confd_ha.agent")

_T = TypeVar("_T")
_C = TypeVar("_C", "aio.Connection", "aio.EventStream")

EventCallback = Callable[[Optional[Dict[str, Any]]], None]
"""Called with each HA event dict, and with None when the subscription ends."""

def event_name(hnot_type: int) -> str:
    """The event type's name for the log (``HA_INFO_<n>`` for a type this package does not
    know)."""
    return _event_name(hnot_type) or "HA_INFO_%d" % hnot_type


class NodeDown(Exception):
    """The node's IPC port cannot be reached (the node is down or not started)."""


class NodeTimeout(Exception):
    """The node did not answer an order in time."""


class NodeLink:
    """The HA control connection and HA event subscription of one node."""

    def __init__(self, config: AgentConfig, on_event: EventCallback) -> None:
        self.config = config
        self.on_event = on_event
        self.name = config.node_id
        self._conn: Optional[aio.Connection] = None
        self._events: Optional[aio.EventStream] = None
        self._event_task: Optional["asyncio.Task[None]"] = None
        self._connect_lock: Optional[asyncio.Lock] = None   # made on the loop (Python 3.9)
        self.up = False               # the last attempt reached the node
        self.ever_up = False
        self.restarted = False        # the node went away and came back: the agent clears it
        self.replaced = False         # another client took the control socket: agent clears it
        self.replacements = 0
        self.last_error = ""

    def __repr__(self) -> str:
        return "<NodeLink %s at %s %s>" % (self.name, self.config.ipc_text,
                                           "up" if self.up else "down")

    # ------------------------------------------------------------ connecting

    def _target(self) -> Dict[str, Any]:
        c = self.config
        if c.ipc_path:
            return {"path": c.ipc_path}
        return {"ip": c.ipc_address, "port": c.port}

    async def _open(self, aw: Awaitable[_C], what: str) -> _C:
        """Connect (and say hello) within ``order_timeout``, through :func:`within` (not the
        ``timeout=`` of :mod:`confd_ha.aio`, which is ``asyncio.wait_for``: it may lose a
        cancellation of the agent's task before Python 3.12)."""
        try:
            return await within(aw, self.config.order_timeout, discard=_close_later)
        except asyncio.TimeoutError:
            raise NodeTimeout("node %s at %s is not reachable: no %s within %.3g s" % (
                self.name, self.config.ipc_text, what, self.config.order_timeout)) from None
        except (error.Error, error.EOF, OSError) as exc:
            raise self._unreachable(exc) from None

    async def _open_control(self) -> aio.Connection:
        conn = await self._open(aio.connect(self.config.token, **self._target()),
                                "HA control connection")
        conn.timeout = None   # each call gets its own bound (_call)
        return conn

    async def _open_events(self) -> aio.EventStream:
        stream = await self._open(
            aio.notifications_connect(events.NOTIF_HA_INFO, **self._target()),
            "event subscription")
        stream.timeout = None  # wait for events as long as it takes
        return stream

    def _unreachable(self, exc: BaseException) -> Exception:
        """NodeDown when nothing listens (the port refuses, the socket file is gone): the
        node is not running. Anything else -- a connect or hello that times out, a close
        during the hello -- may be a hung node, which may still be primary: NodeTimeout."""
        if isinstance(exc, error.Error):
            text = exc.confd_lasterr or exc.confd_strerror
            code = exc.errno
        else:
            text = str(exc) or type(exc).__name__
            code = getattr(exc, "errno", None)
        text = "node %s at %s is not reachable: %s" % (self.name, self.config.ipc_text, text)
        if code in (errno.ECONNREFUSED, errno.ENOENT):
            return NodeDown(text)
        return NodeTimeout(text)

    def _events_open(self) -> bool:
        return self._event_task is not None and not self._event_task.done()

    async def ensure(self) -> None:
        """Connect what is missing (control socket, event subscription); raises
        :class:`NodeDown` when nothing listens at the node's IPC address, and
        :class:`NodeTimeout` when it does not answer there."""
        if self._connect_lock is None:
            self._connect_lock = asyncio.Lock()
        async with self._connect_lock:
            if self._conn is not None and self._events_open():
                return
            reopen = not self._events_open()
            # Our subscription ended: the node went away (and may be back already). Its
            # control socket is then stale too.
            lost = reopen and self.ever_up
            try:
                if reopen:
                    await self._close_events()
                    await self._drop_control()
                    self._events = await self._open_events()
                    self._event_task = asyncio.ensure_future(self._read_events(self._events))
                if self._conn is None:
                    self._conn = await self._open_control()
            except NodeDown as exc:
                if self.up or not self.last_error:
                    log.warning("%s", exc)
                self.up = False
                self.last_error = str(exc)
                raise
            except NodeTimeout as exc:
                if str(exc) != self.last_error:
                    log.warning("%s", exc)
                self.last_error = str(exc)
                raise
            if lost:
                log.info("node %s at %s: connected again after its connections closed "
                         "(the node restarted)", self.name, self.config.ipc_text)
                self.restarted = True
            self.up = self.ever_up = True
            self.last_error = ""

    async def _read_events(self, stream: aio.EventStream) -> None:
        try:
            async for n in stream:
                hnot = n.get("hnot")
                if isinstance(hnot, dict):
                    log.debug("node %s: HA event %s", self.name, event_name(hnot.get("type", 0)))
                    self.on_event(n)
        except asyncio.CancelledError:
            raise
        except Exception as exc:   # EOF or a broken stream: the node went away or restarted
            log.debug("node %s: event subscription ended: %s", self.name, exc)
        self.on_event(None)

    async def _close_events(self) -> None:
        task, self._event_task = self._event_task, None
        stream, self._events = self._events, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if stream is not None:
            await _quietly(stream.close())

    async def _drop_control(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await _quietly(conn.close())

    async def close(self) -> None:
        """Close both connections (the node keeps its HA role)."""
        await self._drop_control()
        await self._close_events()
        self.up = False

    # ------------------------------------------------------------ calls

    async def _lost_control(self) -> None:
        """The control socket ended in EOF: down, replaced, or restarted?"""
        await self._drop_control()
        task = self._event_task
        if task is not None and not task.done():
            # A node that died or restarted closes the subscription too: give it a moment.
            await asyncio.wait([task], timeout=0.05)
        events_alive = self._events_open()
        await self.ensure()
        if events_alive:
            self.replacements += 1
            self.replaced = True
            log.warning("the HA control socket of node %s was replaced by another client; "
                        "the agent took it back and re-asserts the node's role", self.name)

    async def _call(self, fn: Callable[[aio.Connection], Awaitable[_T]], timeout: float,
                    what: str) -> _T:
        for attempt in (1, 2):
            await self.ensure()
            conn = self._conn
            assert conn is not None
            try:
                return await within(fn(conn), timeout)
            except asyncio.TimeoutError:
                raise NodeTimeout("node %s did not answer %s within %.3g s"
                                  % (self.name, what, timeout)) from None
            except error.EOF:
                if attempt == 2:
                    raise NodeDown("node %s closed the HA control socket twice" % self.name
                                   ) from None
                await self._lost_control()
            except error.Error as exc:
                if exc.confd_errno == error.ERR_OS:   # a broken socket, not a refusal
                    await self._drop_control()
                    raise NodeDown("node %s: %s" % (self.name, exc)) from None
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def status(self) -> Tuple[int, List[Dict[str, str]]]:
        """``(state, [{'nodeid', 'address'}, ...])``; raises NodeDown / NodeTimeout."""
        async def go(conn: aio.Connection) -> Tuple[int, List[Dict[str, str]]]:
            state, nodes = await conn.status()
            return state, [{"nodeid": str(n["nodeid"]), "address": str(n["address"])}
                           for n in nodes]
        return await self._call(go, self.config.order_timeout, "status")

    async def beprimary(self) -> None:
        await self._call(lambda c: c.beprimary(self.config.node_id),
                         self.config.order_timeout, "beprimary")

    async def besecondary(self, primary_id: str, primary_ip: str) -> None:
        """A synchronous join (``waitreply=1``), bounded by ``join_timeout``."""
        await self._call(lambda c: c.besecondary(self.config.node_id, primary_id, primary_ip, 1),
                         max(self.config.join_timeout, self.config.order_timeout), "besecondary")

    async def benone(self) -> None:
        await self._call(lambda c: c.benone(), self.config.order_timeout, "benone")


async def _quietly(aw: Awaitable[Any]) -> None:
    try:
        await aw
    except Exception:
        pass


def _close_later(conn: Union[aio.Connection, aio.EventStream]) -> None:
    """Close a connection opened for a caller that was cancelled meanwhile."""
    asyncio.ensure_future(_quietly(conn.close()))
