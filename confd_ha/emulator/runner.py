"""Run emulated nodes from synchronous code: a loop thread, per-node proxies, clusters.

The emulator (:class:`confd_ha.emulator.Node`) is asyncio code. This module runs it on an
event loop in a daemon thread so that ordinary blocking code -- tests, the demo, scripts
using the real blocking client ``confd_ha`` -- can drive it::

    import socket
    import confd_ha as ha
    from confd_ha.emulator.runner import Cluster

    with Cluster(3, tick_timeout=0.5) as c:        # 127.0.0.1..3, one shared free HA port
        s = c[0].connect_ha("secret")               # the real client, to node 1's IPC port
        ha.beprimary(s, "n1")
        ...
        c[0].commit([("set", "/sys/host", "a")])    # the control interface, synchronously
        c[1].freeze()
    # every node stopped, every socket closed, the thread joined

* :class:`EmulatorThread` -- one asyncio loop in one daemon thread; a context manager.
  ``run(coro)`` / ``call(fn)`` execute on the loop and wait (with a timeout);
  ``add_node(config | **fields)`` creates (and by default starts) a node and returns its
  :class:`SyncNode`; ``stop()`` stops every node (orderly, killed after a grace period),
  cancels every remaining task, closes the loop and joins the thread.
* :class:`SyncNode` -- the synchronous face of one node: every coroutine method of ``Node``
  as a blocking method taking ``timeout=``; every property read on the loop thread;
  ``info()`` one consistent JSON-able snapshot; ``connect_ha(token)`` / ``subscribe()``
  real client sockets to the node; ``wait_state(state)``.
* :class:`Cluster` -- N nodes on 127.0.0.(base+i) with free IPC ports and one HA port that
  is free, and held, on all their addresses (B-12); ``form(token)`` builds primary +
  secondaries through the real client.
* :class:`PortReservation` -- a port held on several addresses so that nothing else takes it
  before the nodes listen there.

Everything is stopped on exit from the ``with`` block, also on exceptions and Ctrl-C, and by
an ``atexit`` hook for threads never stopped explicitly.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import dataclasses
import errno
import ipaddress
import logging
import random
import socket
import threading
import time
import weakref
from typing import Callable, Iterable, List, Optional, Sequence

log = logging.getLogger("confd_ha.emulator")

DEFAULT_CALL_TIMEOUT = 30.0
"""Seconds a synchronous call waits for the loop by default (a commit on a primary can wait
3 × tick timeout for its secondaries, B-30)."""

STOP_GRACE = 5.0
"""Seconds an orderly stop of one node may take before it is killed instead."""

_live: "weakref.WeakSet[EmulatorThread]" = weakref.WeakSet()


def _stop_all_at_exit() -> None:
    for emu in list(_live):
        try:
            emu.stop(timeout=STOP_GRACE)
        except Exception:  # pragma: no cover - interpreter shutdown, best effort
            pass


atexit.register(_stop_all_at_exit)


class EmulatorStopped(RuntimeError):
    """The emulator thread is not running (never started, or stopped)."""


# ================================================================ the loop thread


class EmulatorThread:
    """An asyncio event loop in a daemon thread, hosting emulated nodes.

    ``timeout`` is the default for every synchronous call (None: wait forever). Use as a
    context manager, or call :meth:`start` and :meth:`stop` (idempotent).
    """

    def __init__(self, *, timeout: Optional[float] = DEFAULT_CALL_TIMEOUT,
                 name: str = "confd-ha-emulator"):
        self.timeout = timeout
        self.name = name
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self.thread: Optional[threading.Thread] = None
        self.nodes: List["SyncNode"] = []
        self._lock = threading.Lock()
        self._stopped = False
        self._cleanups: List[Callable[[], None]] = []   # run in the caller's thread at stop

    # ------------------------------------------------------------ lifecycle

    def start(self) -> "EmulatorThread":
        """Start the loop thread (a no-op if it runs already)."""
        with self._lock:
            if self._stopped:
                raise EmulatorStopped("this EmulatorThread was stopped; create a new one")
            if self.thread is not None:
                return self
            loop = asyncio.new_event_loop()
            started = threading.Event()

            def main() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(started.set)
                loop.run_forever()

            thread = threading.Thread(target=main, name=self.name, daemon=True)
            self.loop, self.thread = loop, thread
            thread.start()
            started.wait()
            _live.add(self)
        return self

    @property
    def running(self) -> bool:
        return self.thread is not None and not self._stopped and self.thread.is_alive()

    def stop(self, timeout: float = STOP_GRACE) -> None:
        """Stop every node, cancel every task, close the loop and join the thread.

        Each node gets an orderly ``stop()`` (peers receive a goodbye) and is killed if that
        takes longer than ``timeout``. Idempotent; safe after a failed start.
        """
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            loop, thread = self.loop, self.thread
        _live.discard(self)
        try:
            if thread is None or loop is None:
                return
            if threading.current_thread() is thread:
                raise RuntimeError("EmulatorThread.stop() called from its own loop thread")
            if thread.is_alive():
                fut = asyncio.run_coroutine_threadsafe(self._shutdown(timeout), loop)
                try:
                    fut.result(timeout * 2 + 5)
                except Exception:
                    log.exception("emulator shutdown failed")
                finally:
                    loop.call_soon_threadsafe(loop.stop)
                    thread.join(timeout * 2 + 5)
            if thread.is_alive():  # pragma: no cover - a node stuck in non-async code
                log.error("emulator loop thread did not stop; leaving it (daemon thread)")
            else:
                _drain(loop)
                loop.close()
        finally:
            cleanups, self._cleanups = self._cleanups, []
            for fn in reversed(cleanups):
                try:
                    fn()
                except Exception:  # pragma: no cover - defensive
                    log.exception("emulator cleanup failed")

    async def _shutdown(self, grace: float) -> None:
        for n in self.nodes:
            if n._control is not None:
                await n._control.stop()
                n._control = None
        await asyncio.gather(*(_stop_node(n.node, grace) for n in self.nodes),
                             return_exceptions=True)
        me = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not me]
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=grace)
        await self.loop.shutdown_asyncgens()
        try:
            await asyncio.wait_for(self.loop.shutdown_default_executor(), grace)
        except (asyncio.TimeoutError, AttributeError):  # pragma: no cover
            pass

    def add_cleanup(self, fn: Callable[[], None]) -> None:
        """Run ``fn()`` (in the stopping thread) after the loop has stopped."""
        self._cleanups.append(fn)

    def __enter__(self) -> "EmulatorThread":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else ("stopped" if self._stopped else "new")
        return "<EmulatorThread %s, %d nodes>" % (state, len(self.nodes))

    # ------------------------------------------------------------ calling into the loop

    def _check(self) -> asyncio.AbstractEventLoop:
        if self._stopped or self.loop is None:
            raise EmulatorStopped("the emulator thread is not running")
        return self.loop

    def run(self, coro, timeout=None):
        """Run a coroutine on the loop and return its result (raise its exception).

        ``timeout`` (None: the thread's default) expires as ``TimeoutError`` and cancels the
        coroutine. Not callable from the loop thread itself (it would deadlock).
        """
        if timeout is None:
            timeout = self.timeout
        try:
            loop = self._check()
            if threading.current_thread() is self.thread:
                raise RuntimeError("EmulatorThread.run() called from the loop thread: await instead")
        except BaseException:
            coro.close()
            raise
        fut = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return fut.result(timeout)
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise TimeoutError("emulator call did not finish within %s s" % timeout) from None
        except BaseException:
            fut.cancel()  # KeyboardInterrupt while waiting: do not leave the coroutine running
            raise

    def call(self, fn: Callable, *args, **kwargs):
        """Call a plain function on the loop thread and return its result."""
        loop = self._check()
        if threading.current_thread() is self.thread:
            return fn(*args, **kwargs)
        fut: concurrent.futures.Future = concurrent.futures.Future()

        def job() -> None:
            if not fut.set_running_or_notify_cancel():
                return
            try:
                fut.set_result(fn(*args, **kwargs))
            except BaseException as exc:
                fut.set_exception(exc)

        loop.call_soon_threadsafe(job)
        timeout = self.timeout
        try:
            return fut.result(timeout)
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise TimeoutError("emulator call did not finish within %s s" % timeout) from None

    # ------------------------------------------------------------ nodes

    def add_node(self, config=None, *, start: bool = True, control: bool = False,
                 timeout=None, **fields) -> "SyncNode":
        """Create a node (a ``NodeConfig`` or its fields), start it unless ``start=False``.

        ``control=True`` also opens the node's out-of-process control endpoint
        (:mod:`confd_ha.emulator.control`), so that ``confd-ha cdb`` can reach it. An IPC port
        of 0 is resolved at the first start and kept for restarts.
        """
        from .config import NodeConfig
        from .node import Node

        if config is None:
            config = NodeConfig(**fields)
        elif fields:
            config = dataclasses.replace(config, **fields)
        else:
            config = dataclasses.replace(config)  # our own copy: the port gets pinned in it
        self.start()
        node = self.call(Node, config)
        proxy = SyncNode(self, node)
        self.nodes.append(proxy)
        if start:
            proxy.start(timeout=timeout)
            if control:
                proxy.open_control(timeout=timeout)
        elif control:
            proxy._want_control = True
        return proxy


async def _stop_node(node, grace: float) -> None:
    try:
        await asyncio.wait_for(node.stop(), grace)
    except Exception:
        pass
    if node.running:
        await node.kill()


# ================================================================ one node, synchronously


_PROPERTIES = ("running", "state", "state_name", "node_id", "start_phase", "upgrade", "frozen",
               "partitions", "txid", "subscribers", "joining", "decisions", "peers")


class SyncNode:
    """Synchronous proxy of one emulated node running on an :class:`EmulatorThread`.

    Methods block until the loop has done the work; each takes ``timeout=`` (seconds, default:
    the thread's; ``TimeoutError`` on expiry). Properties are read on the loop thread, so they
    are consistent with the node's own view; use :meth:`info` for one snapshot of everything.
    ``node`` is the underlying :class:`~confd_ha.emulator.Node` (loop thread only).
    """

    def __init__(self, emulator: EmulatorThread, node):
        self.emulator = emulator
        self.node = node
        self.config = node.config
        self._control = None
        self._want_control = False

    # ------------------------------------------------------------ addresses

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def ipc_address(self) -> str:
        return self.config.ipc_address

    @property
    def ipc_port(self) -> int:
        """The IPC port (the actual one once started, also with ``ipc_port=0``)."""
        return self.config.ipc_port

    @property
    def ha_address(self) -> str:
        return self.config.ha_address

    @property
    def ha_port(self) -> int:
        return self.config.ha_port

    @property
    def control_name(self) -> Optional[str]:
        """The control endpoint's abstract socket name (``@confd-ha-ctl:…``), if open."""
        return self._control.display_name if self._control is not None else None

    # ------------------------------------------------------------ lifecycle

    def _run(self, coro, timeout):
        return self.emulator.run(coro, timeout)

    def start(self, timeout=None) -> None:
        """Start the node (listen on its IPC port; state NONE)."""
        async def go():
            await self.node.start()
            self.config.ipc_port = self.node.ipc_port  # pin a port-0 choice for restarts
            if self._want_control and self._control is None:
                await self._open_control()
        self._run(go(), timeout)

    def stop(self, timeout=None) -> None:
        """Orderly stop: peers get a goodbye and see HA_CLOSED."""
        self._run(self.node.stop(), timeout)

    def kill(self, timeout=None) -> None:
        """Kill: every socket closed abruptly (B-23)."""
        self._run(self.node.kill(), timeout)

    def restart(self, kill: bool = False, timeout=None) -> None:
        """Stop (or kill) and start again: NONE, empty token, same data (B-23)."""
        self._run(self.node.restart(kill=kill), timeout)

    def open_control(self, timeout=None) -> str:
        """Open the out-of-process control endpoint; returns its display name."""
        self._want_control = True
        if self._control is None:
            self._run(self._open_control(), timeout)
        return self.control_name

    async def _open_control(self) -> None:
        from .control import ControlServer

        server = ControlServer(self.node)
        await server.start()
        self._control = server

    # ------------------------------------------------------------ control interface (B-33)

    def set_start_phase(self, phase: int, timeout=None) -> None:
        self._run(self.node.set_start_phase(phase), timeout)

    def set_upgrade(self, flag: bool, timeout=None) -> None:
        self._run(self.node.set_upgrade(flag), timeout)

    def freeze(self, timeout=None) -> None:
        self._run(self.node.freeze(), timeout)

    def thaw(self, timeout=None) -> None:
        self._run(self.node.thaw(), timeout)

    def partition(self, peer_ip: str, timeout=None) -> None:
        self._run(self.node.partition(peer_ip), timeout)

    def heal(self, peer_ip: Optional[str] = None, timeout=None) -> None:
        self._run(self.node.heal(peer_ip), timeout)

    def commit(self, changes, timeout=None) -> str:
        """Commit ``[("set", path, value) | ("delete", path), …]``; returns the transaction id.
        Raises ``confd_ha.error.Error`` (BADSTATE 17) on a secondary (B-29)."""
        return self._run(self.node.commit(list(changes)), timeout)

    def set(self, path: str, value: str, timeout=None) -> str:
        """``commit([("set", path, value)])``."""
        return self.commit([("set", path, value)], timeout=timeout)

    def delete(self, path: str, timeout=None) -> str:
        """``commit([("delete", path)])``."""
        return self.commit([("delete", path)], timeout=timeout)

    def get(self, path: str) -> Optional[str]:
        return self.emulator.call(self.node.get, path)

    def items(self, prefix: str = "/") -> list:
        return self.emulator.call(self.node.items, prefix)

    def status(self):
        """The node's own status: ``(state, [(nodeid term, address term), …])`` (no client)."""
        return self.emulator.call(self.node.status)

    def info(self) -> dict:
        """One consistent, JSON-able snapshot of the node (the control ``info`` reply)."""
        from .control import node_info

        return self.emulator.call(node_info, self.node)

    def wait_state(self, state: int, timeout: float = 10.0, interval: float = 0.01) -> None:
        """Wait until the node's HA state is ``state`` (``TimeoutError`` otherwise)."""
        end = time.monotonic() + timeout
        while self.state != state:
            if time.monotonic() > end:
                raise TimeoutError("node %s: state %s, not %s after %s s"
                                   % (self.name, self.state, state, timeout))
            time.sleep(interval)

    def __getattr__(self, name):
        # Properties of Node are read on the loop thread; any other coroutine method (added to
        # Node later) becomes a blocking call with the default timeout.
        if name.startswith("_"):
            raise AttributeError(name)
        node = self.__dict__.get("node")
        if node is None:
            raise AttributeError(name)
        if name in _PROPERTIES or isinstance(getattr(type(node), name, None), property):
            return self.emulator.call(getattr, node, name)
        attr = getattr(node, name)
        if asyncio.iscoroutinefunction(attr):
            return lambda *a, **k: self.emulator.run(attr(*a, **k))
        if callable(attr):
            return lambda *a, **k: self.emulator.call(attr, *a, **k)
        return attr

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


def _drain(loop: asyncio.AbstractEventLoop) -> None:
    """Run the stopped loop (from the stopping thread) until the tasks that began in its
    last iterations are cancelled and their transports closed. Without this, a connection
    accepted just as the loop stopped keeps its socket open until garbage collection."""
    for _ in range(3):
        tasks = asyncio.all_tasks(loop)
        for t in tasks:
            t.cancel()
        if tasks:
            loop.run_until_complete(asyncio.wait(tasks, timeout=1.0))
        loop.run_until_complete(asyncio.sleep(0))   # callbacks that close sockets
        if not asyncio.all_tasks(loop):
            return


def _client_socket(address: str, timeout: float) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    return s


# ================================================================ ports


def _ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
        return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


class PortReservation:
    """One TCP port held on several addresses until :meth:`close`.

    Each address gets a socket bound to the port (exclusively, so two reservations never
    share a port) and then marked ``SO_REUSEADDR`` without listening. Linux then refuses the
    port to every other bind on those addresses -- and to the kernel's choice of source ports
    -- but still lets an emulated node, which listens with ``SO_REUSEADDR``, bind it (B-12:
    the HA listener is bound only when the node becomes primary or relay). The port is
    chosen below the ephemeral range when possible, so no outgoing connection holds it.
    """

    def __init__(self, addresses: Iterable[str], port: Optional[int] = None,
                 attempts: int = 200):
        addrs = [str(ipaddress.ip_address(a)) for a in addresses]
        if not addrs:
            raise ValueError("PortReservation needs at least one address")
        self.addresses: List[str] = []
        self._socks: List[socket.socket] = []
        self.port = 0
        candidates = [port] if port else self._candidates(attempts)
        last: Optional[OSError] = None
        for cand in candidates:
            socks = []
            try:
                for a in addrs:
                    socks.append(_reserve(a, cand))
            except OSError as exc:
                last = exc
                for s in socks:
                    s.close()
                continue
            self.port, self._socks, self.addresses = socks[0].getsockname()[1], socks, addrs
            return
        raise OSError(errno.EADDRINUSE, "no TCP port free on all of %s (last error: %s)"
                      % (", ".join(addrs), last))

    @staticmethod
    def _candidates(attempts: int):
        lo, _ = _ephemeral_range()
        rng = random.SystemRandom()
        for i in range(attempts):
            if lo > 11000 and i < attempts // 2:
                yield rng.randrange(10000, lo)
            else:
                yield 0  # the kernel's choice (first address), then checked on the others

    def add(self, address: str) -> None:
        """Hold the port on one more address (``OSError`` if it is taken there)."""
        address = str(ipaddress.ip_address(address))
        if address in self.addresses:
            return
        self._socks.append(_reserve(address, self.port))
        self.addresses.append(address)

    def close(self) -> None:
        socks, self._socks = self._socks, []
        for s in socks:
            s.close()

    def __enter__(self) -> "PortReservation":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _reserve(address: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    try:
        s.bind((address, port))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    except BaseException:
        s.close()
        raise
    return s


def free_port(address: str = "127.0.0.1") -> int:
    """A TCP port free on ``address`` right now (not held: prefer :class:`PortReservation`)."""
    with PortReservation([address]) as r:
        return r.port


def loopback_addresses(n: int, base: int = 1, prefix: str = "127.0.0.") -> List[str]:
    """``n`` addresses ``prefix+(base) … prefix+(base+n-1)`` (on Linux 127.0.0.0/8 needs no
    configuration)."""
    if not 1 <= base or base + n - 1 > 254:
        raise ValueError("addresses %s%d..%s%d are out of range" % (prefix, base, prefix, base + n - 1))
    return ["%s%d" % (prefix, base + i) for i in range(n)]


# ================================================================ clusters


class Cluster:
    """``n`` emulated nodes on 127.0.0.(base) … 127.0.0.(base+n-1) sharing one HA port.

    Each node gets a free IPC port; the HA port is reserved on all the addresses for the
    cluster's lifetime (:class:`PortReservation`). ``data_dirs`` gives one directory per node
    (None: in-memory datastores). ``names`` are the nodes' log labels (default n1, n2, …).
    Further ``NodeConfig`` fields apply to every node. Without ``emulator`` the cluster owns
    its own :class:`EmulatorThread`. A context manager; :meth:`stop` is idempotent.
    """

    def __init__(self, n: int = 3, *, tick_timeout: float = 1.0,
                 data_dirs: Optional[Sequence] = None, base: int = 1,
                 prefix: str = "127.0.0.", names: Optional[Sequence[str]] = None,
                 control: bool = False, emulator: Optional[EmulatorThread] = None,
                 start: bool = True, timeout=None, **config):
        if n < 1:
            raise ValueError("a cluster needs at least one node")
        if data_dirs is not None and len(data_dirs) != n:
            raise ValueError("data_dirs must name one directory per node")
        if names is not None and len(names) != n:
            raise ValueError("names must name every node")
        self.addresses = loopback_addresses(n, base, prefix)
        self.names = list(names) if names is not None else ["n%d" % (i + 1) for i in range(n)]
        self.nodes: List[SyncNode] = []
        self._own = emulator is None
        self.emulator = emulator if emulator is not None else EmulatorThread()
        self.reservation: Optional[PortReservation] = None
        self._stopped = False
        try:
            self.reservation = PortReservation(self.addresses, port=config.pop("ha_port", None))
            self.ha_port = self.reservation.port
            for i, address in enumerate(self.addresses):
                fields = dict(config, name=self.names[i], ipc_address=address, ipc_port=0,
                              ha_port=self.ha_port, tick_timeout=tick_timeout,
                              data_dir=None if data_dirs is None else str(data_dirs[i]))
                self.nodes.append(self.emulator.add_node(start=start, control=control,
                                                         timeout=timeout, **fields))
        except BaseException:
            self.stop()
            raise

    def __getitem__(self, i) -> SyncNode:
        return self.nodes[i]

    def __iter__(self):
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    def __enter__(self) -> "Cluster":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop every node (and the thread, if the cluster owns it); release the HA port."""
        if self._stopped:
            return
        self._stopped = True
        try:
            if self._own:
                self.emulator.stop()
            else:
                for node in self.nodes:
                    if not self.emulator.running:
                        break
                    try:
                        if node._control is not None:
                            self.emulator.run(node._control.stop())
                            node._control = None
                        self.emulator.run(_stop_node(node.node, STOP_GRACE),
                                          timeout=STOP_GRACE + 5)
                    except Exception:
                        log.exception("stopping %r failed", node)
        finally:
            if self.reservation is not None:
                self.reservation.close()

    def primary(self) -> Optional[SyncNode]:
        """The node that is PRIMARY right now (None if there is none)."""
        for node in self.nodes:
            if node.state == 3:
                return node
        return None

    def form(self, token: str, primary: int = 0, ids: Optional[Sequence[str]] = None,
             timeout: float = 10.0) -> None:
        """Make node ``primary`` PRIMARY and every other node its SECONDARY, through the real
        client (one short-lived control socket per node, token ``token``); returns once every
        secondary has been listed by the primary. Node ids default to the node names."""
        import confd_ha

        ids = list(ids) if ids is not None else list(self.names)
        p = self.nodes[primary]
        with p.connect_ha(token, timeout) as s:
            confd_ha.beprimary(s, ids[primary])
        for i, node in enumerate(self.nodes):
            if i == primary:
                continue
            with node.connect_ha(token, timeout) as s:
                confd_ha.besecondary(s, ids[i], ids[primary], p.ipc_address if
                                     p.ha_address in ("0.0.0.0", "::") else p.ha_address, 1)
        want = {ids[i].encode() for i in range(len(self.nodes)) if i != primary}
        end = time.monotonic() + timeout
        while {nid for nid, _ in p.status()[1]} != want:
            if time.monotonic() > end:
                raise TimeoutError("secondaries did not all arrive at %s" % p.name)
            time.sleep(0.01)

    def __repr__(self) -> str:
        return "<Cluster %s HA port %s>" % (", ".join(self.addresses), getattr(self, "ha_port", "?"))
