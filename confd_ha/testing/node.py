"""The synchronous face of one emulated node running on an
:class:`~confd_ha.testing.loop.EmulatorThread`: :class:`SyncNode`."""

from __future__ import annotations

import socket
import time
from typing import (TYPE_CHECKING, Any, Coroutine, Dict, Generic, Iterable, List, Optional, Tuple,
                    TypeVar, cast, overload)

if TYPE_CHECKING:
    from ..emulator.control import ControlServer
    from ..emulator.node import Node
    from ..emulator.store import Change
    from .loop import EmulatorThread

__all__ = ["SyncNode", "NodeAttribute"]

T = TypeVar("T")


class NodeAttribute(Generic[T]):
    """A read-only attribute of :class:`SyncNode`: the node's attribute of the same name, read
    on the node's loop thread (so it is consistent with the node's own view) -- or with
    ``config=True`` its configuration's field (read from any thread)."""

    def __init__(self, config: bool = False) -> None:
        self.config = config

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type) -> "NodeAttribute[T]": ...

    @overload
    def __get__(self, obj: "SyncNode", owner: type) -> T: ...

    def __get__(self, obj: Optional["SyncNode"], owner: type) -> "T | NodeAttribute[T]":
        if obj is None:
            return self
        if self.config:
            return cast(T, getattr(obj.config, self.name))
        return cast(T, obj.emulator.call(getattr, obj.node, self.name))


class SyncNode:
    """Synchronous proxy of one emulated node running on an :class:`EmulatorThread`.

    Methods block until the loop has done the work; each takes ``timeout=`` (seconds, default:
    the thread's; ``TimeoutError`` on expiry). Properties are read on the loop thread, so they
    are consistent with the node's own view; use :meth:`info` for one snapshot of everything.
    ``node`` is the underlying :class:`~confd_ha.emulator.Node` (loop thread only).
    """

    def __init__(self, emulator: "EmulatorThread", node: "Node") -> None:
        self.emulator = emulator
        self.node = node
        self.config = node.config
        self._control: Optional["ControlServer"] = None
        self._want_control = False

    # ------------------------------------------------------------ addresses

    name = NodeAttribute[str](config=True)
    ipc_address = NodeAttribute[str](config=True)
    ipc_port = NodeAttribute[int](config=True)   # the actual one once started (also port 0)
    ha_address = NodeAttribute[str](config=True)
    ha_port = NodeAttribute[int](config=True)

    @property
    def control_name(self) -> Optional[str]:
        """The control endpoint's abstract socket name (``@confd-ha-ctl:…``), if open."""
        return self._control.display_name if self._control is not None else None

    # ------------------------------------------------------------ the node's view, read on its loop

    running = NodeAttribute[bool]()
    state = NodeAttribute[int]()                 # confd_ha.STATE_*
    state_name = NodeAttribute[str]()
    node_id = NodeAttribute[Any]()               # the last beprimary/besecondary's node-id term
    start_phase = NodeAttribute[int]()
    upgrade = NodeAttribute[bool]()
    frozen = NodeAttribute[bool]()
    partitions = NodeAttribute[List[str]]()
    txid = NodeAttribute[str]()                  # the datastore's transaction id
    subscribers = NodeAttribute[int]()           # event-notification subscribers connected
    joining = NodeAttribute[bool]()              # a join is in progress
    decisions = NodeAttribute[List[str]]()       # the latest HA decisions, oldest first
    peers = NodeAttribute[List[Dict[str, Any]]]()   # the primary, the admitted secondaries

    # ------------------------------------------------------------ lifecycle

    def _run(self, coro: Coroutine[Any, Any, T], timeout: Optional[float]) -> T:
        return self.emulator.run(coro, timeout)

    def start(self, timeout: Optional[float] = None) -> None:
        """Start the node (listen on its IPC port; state NONE)."""
        async def go() -> None:
            await self.node.start()
            port = self.node.ipc_port
            assert port is not None  # listening
            self.config.ipc_port = port  # pin a port-0 choice for restarts
            if self._want_control and self._control is None:
                await self._open_control()
        self._run(go(), timeout)

    def stop(self, timeout: Optional[float] = None) -> None:
        """Orderly stop: peers get a goodbye and see HA_CLOSED."""
        self._run(self.node.stop(), timeout)

    def kill(self, timeout: Optional[float] = None) -> None:
        """Kill: every socket closed abruptly (B-23)."""
        self._run(self.node.kill(), timeout)

    def restart(self, kill: bool = False, timeout: Optional[float] = None) -> None:
        """Stop (or kill) and start again: NONE, empty token, same data (B-23)."""
        self._run(self.node.restart(kill=kill), timeout)

    def want_control(self) -> None:
        """Open the control endpoint at the next :meth:`start`."""
        self._want_control = True

    def open_control(self, timeout: Optional[float] = None) -> Optional[str]:
        """Open the out-of-process control endpoint; returns its display name."""
        self._want_control = True
        if self._control is None:
            self._run(self._open_control(), timeout)
        return self.control_name

    async def _open_control(self) -> None:
        from ..emulator.control import ControlServer

        server = ControlServer(self.node)
        await server.start()
        self._control = server

    async def close_control(self) -> None:
        """Close the control endpoint if it is open (on the loop thread)."""
        server, self._control = self._control, None
        if server is not None:
            await server.stop()

    # ------------------------------------------------------------ control interface (B-33)

    def set_start_phase(self, phase: int, timeout: Optional[float] = None) -> None:
        self._run(self.node.set_start_phase(phase), timeout)

    def set_upgrade(self, flag: bool, timeout: Optional[float] = None) -> None:
        self._run(self.node.set_upgrade(flag), timeout)

    def freeze(self, timeout: Optional[float] = None) -> None:
        self._run(self.node.freeze(), timeout)

    def thaw(self, timeout: Optional[float] = None) -> None:
        self._run(self.node.thaw(), timeout)

    def partition(self, peer_ip: str, timeout: Optional[float] = None) -> None:
        self._run(self.node.partition(peer_ip), timeout)

    def heal(self, peer_ip: Optional[str] = None, timeout: Optional[float] = None) -> None:
        self._run(self.node.heal(peer_ip), timeout)

    def commit(self, changes: Iterable["Change"], timeout: Optional[float] = None) -> str:
        """Commit ``[("set", path, value) | ("delete", path), …]``; returns the transaction id.
        Raises ``confd_ha.error.Error`` (BADSTATE 17) on a secondary (B-29)."""
        return str(self._run(self.node.commit(list(changes)), timeout))

    def set(self, path: str, value: str, timeout: Optional[float] = None) -> str:
        """``commit([("set", path, value)])``."""
        return self.commit([("set", path, value)], timeout=timeout)

    def delete(self, path: str, timeout: Optional[float] = None) -> str:
        """``commit([("delete", path)])``."""
        return self.commit([("delete", path)], timeout=timeout)

    def get(self, path: str) -> Optional[str]:
        return self.emulator.call(self.node.get, path)

    def items(self, prefix: str = "/") -> List[Tuple[str, str]]:
        return list(self.emulator.call(self.node.items, prefix))

    def status(self) -> Tuple[int, List[Tuple[Any, Any]]]:
        """The node's own status: ``(state, [(nodeid term, address term), …])`` (no client)."""
        state, nodes = self.emulator.call(self.node.status)
        return state, nodes

    def info(self) -> Dict[str, Any]:
        """One consistent, JSON-able snapshot of the node (the control ``info`` reply)."""
        from ..control_ops import node_info

        return self.emulator.call(node_info, self.node)

    def wait_state(self, state: int, timeout: float = 10.0, interval: float = 0.01) -> None:
        """Wait until the node's HA state is ``state`` (``TimeoutError`` otherwise)."""
        end = time.monotonic() + timeout
        while self.state != state:
            if time.monotonic() > end:
                raise TimeoutError("node %s: state %s, not %s after %s s"
                                   % (self.name, self.state, state, timeout))
            time.sleep(interval)

    # ------------------------------------------------------------ real client sockets

    def connect_ha(self, token: str, timeout: float = 10.0) -> socket.socket:
        """A new HA control socket to this node, through the real client ``confd_ha.connect``.

        Note B-02: this replaces the node's current control socket and sets its token.
        """
        import confd_ha

        s = _client_socket(self.ipc_address, timeout)
        try:
            confd_ha.connect(s, token, self.ipc_address, self.ipc_port)
        except BaseException:
            s.close()
            raise
        return s

    def subscribe(self, mask: Optional[int] = None, timeout: float = 10.0) -> socket.socket:
        """An event-notification socket (``confd_ha.events``), HA_INFO by default."""
        from confd_ha import events

        s = _client_socket(self.ipc_address, timeout)
        try:
            events.notifications_connect(s, events.NOTIF_HA_INFO if mask is None else mask,
                                         self.ipc_address, self.ipc_port)
        except BaseException:
            s.close()
            raise
        return s

    def __repr__(self) -> str:
        return "<SyncNode %s %s:%s>" % (self.name, self.ipc_address, self.ipc_port)


def _client_socket(address: str, timeout: float) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    return s
