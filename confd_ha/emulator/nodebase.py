"""What the layers of a node share: its HA state, and the services every layer uses.

:class:`confd_ha.emulator.node.Node` is built in layers, each a class that the next one
extends: :class:`NodeBase` (this module: the state, the decision log, the HA engine's queue,
task spawning), :class:`.tree.Tree` (the inter-node links), :class:`.orders.Orders` (the HA
orders) and ``Node`` (lifecycle, control interface, what the IPC server asks). Every attribute
a layer uses is declared by a layer below it, so a type checker sees each layer whole.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from typing import (Any, Coroutine, Deque, Dict, Generic, Optional, Protocol, Set, TypeVar,
                    Union, cast, overload)

from .. import _address, _protocol, error
from .._consts import HaInfo, State
from .._terms import Term
from .config import NodeConfig
from .engine import Engine, Item
from .eventhub import EventHub
from .ipc import IpcServer
from .link import PeerConn
from .peer import node_text
from .roster import Roster
from .store import Store

log = logging.getLogger("confd_ha.emulator")

STATE_NONE, STATE_SECONDARY, STATE_PRIMARY, STATE_SECONDARY_RELAY = (
    State.NONE, State.SECONDARY, State.PRIMARY, State.SECONDARY_RELAY)
STATE_NAMES: Dict[int, str] = {s: s.name for s in State}
EVENT_NAMES: Dict[int, str] = {t: t.name for t in HaInfo}
DECISIONS_KEPT = 1000

T = TypeVar("T")


class ReadOnly(Generic[T]):
    """A read-only public view of a private attribute: in a class body,
    ``running: ReadOnly[bool] = ReadOnly("_running")`` reads ``self._running``."""

    def __init__(self, attr: str) -> None:
        self.attr = attr

    @overload
    def __get__(self, obj: None, owner: type) -> "ReadOnly[T]": ...

    @overload
    def __get__(self, obj: object, owner: type) -> T: ...

    def __get__(self, obj: Optional[object], owner: type) -> "Union[T, ReadOnly[T]]":
        return self if obj is None else cast(T, getattr(obj, self.attr))


class ControlSocket(Protocol):
    """The node's HA control socket, as the IPC server hands it over."""

    label: str

    def close(self) -> None:
        """Close the socket (its client sees EOF)."""


class NodeBase:
    """The state and services shared by the layers of a node (see the module docstring)."""

    STATE_NAMES = STATE_NAMES

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.label = config.name
        self._store: Optional[Store] = None
        self._running = False
        self._decisions: Deque[str] = collections.deque(maxlen=DECISIONS_KEPT)
        self._partitions: Set[str] = set()
        self.peer_conns: Set[PeerConn] = set()
        self._tasks: "Set[asyncio.Task[Any]]" = set()
        self._first_port: Optional[int] = None
        self._roster = Roster()
        self._reset()

    def _reset(self) -> None:
        """The state a (re)started daemon has (B-23)."""
        self._state = STATE_NONE
        self._name: Term = None
        self._token = b""
        self._phase = self.config.start_phase
        self._upgrade = False
        self._frozen = False
        self._control: Optional[ControlSocket] = None
        self._roster.clear()
        self._joining = False
        self._ipc: Optional[IpcServer] = None
        self._hub: Optional[EventHub] = None
        self._engine: Optional[Engine] = None

    def _datastore(self) -> Store:
        # A stopped node still answers reads (a closed Store does); a never started one cannot.
        if self._store is None:
            raise RuntimeError("node %s has not been started yet" % self.label)
        return self._store

    def _started_engine(self) -> Engine:
        # The engine of the current (or last) run; there is none before the first start.
        if self._engine is None:
            raise RuntimeError("node %s has not been started yet" % self.label)
        return self._engine

    def _post(self, item: Item) -> None:
        """Queue one item of HA work for the engine (see :mod:`.engine`)."""
        self._started_engine().post(item)

    def _spawn(self, coro: "Coroutine[Any, Any, Any]") -> "asyncio.Task[Any]":
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _emit(self, ha_type: int, data: Term) -> None:
        """Send one event and wait for the HA_INFO_SYNC acknowledgements (see .engine)."""
        self._decide("event %s %s" % (EVENT_NAMES.get(ha_type, ha_type),
                                      _event_text(ha_type, data)))
        await self._started_engine().emit(ha_type, data)

    def _decide(self, text: str) -> None:
        self._decisions.append("%s %s" % (time.strftime("%H:%M:%S"), text))
        log.info("%s: %s", self.label, text)


def addr_text(addr: Term) -> str:
    """An address term for logs and decisions ("?" if it is none)."""
    try:
        return _address.address_text(addr)
    except error.Error:
        return "?"


def _event_text(ha_type: int, data: Term) -> str:
    if isinstance(data, tuple) and len(data) == 2:
        return "%s@%s" % (node_text(data[0]), addr_text(data[1]))
    if ha_type in (_protocol.HA_INFO_NOPRIMARY, _protocol.HA_INFO_BESECONDARY_RESULT) and data:
        return "%d (%s)" % (data, error.errname(data))
    return str(data)

