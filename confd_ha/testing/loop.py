"""One asyncio loop in a daemon thread hosting emulated nodes: :class:`EmulatorThread`.

The emulator (:class:`confd_ha.emulator.Node`) is asyncio code; this runs it for ordinary
blocking code -- tests, the demo, scripts using the blocking client ``confd_ha``.
``run(coro)`` / ``call(fn)`` execute on the loop and wait (with a timeout);
``add_node(config | **fields)`` creates (and by default starts) a node and returns its
:class:`~confd_ha.testing.node.SyncNode`; ``stop()`` stops every node (orderly, killed after
a grace period), cancels every remaining task, closes the loop and joins the thread. Threads
never stopped explicitly are stopped by an ``atexit`` hook.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import dataclasses
import logging
import signal
import threading
import weakref
from typing import TYPE_CHECKING, Any, Callable, Coroutine, List, Optional, TypeVar

if TYPE_CHECKING:
    from ..emulator.config import NodeConfig
    from ..emulator.node import Node
    from .node import SyncNode

__all__ = ["EmulatorThread", "EmulatorStopped", "DEFAULT_CALL_TIMEOUT", "STOP_GRACE",
           "stop_node"]

log = logging.getLogger("confd_ha.testing")

T = TypeVar("T")

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


def _new_loop() -> asyncio.AbstractEventLoop:
    """A new event loop, built with SIGINT held back in the main thread: a Ctrl-C in the
    middle of the loop's constructor would leave a half-built loop whose finaliser prints an
    "Exception ignored" traceback. The Ctrl-C is delivered as soon as the loop is whole."""
    if threading.current_thread() is not threading.main_thread():
        return asyncio.new_event_loop()
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        return asyncio.new_event_loop()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


class EmulatorStopped(RuntimeError):
    """The emulator thread is not running (never started, or stopped)."""


class EmulatorThread:
    """An asyncio event loop in a daemon thread, hosting emulated nodes.

    ``timeout`` is the default for every synchronous call (None: wait forever). Use as a
    context manager, or call :meth:`start` and :meth:`stop` (idempotent).
    """

    def __init__(self, *, timeout: Optional[float] = DEFAULT_CALL_TIMEOUT,
                 name: str = "confd-ha-emulator") -> None:
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
            loop = _new_loop()
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
                fut = asyncio.run_coroutine_threadsafe(self._shutdown(loop, timeout), loop)
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

    async def _shutdown(self, loop: asyncio.AbstractEventLoop, grace: float) -> None:
        for n in self.nodes:
            await n.close_control()
        await asyncio.gather(*(stop_node(n.node, grace) for n in self.nodes),
                             return_exceptions=True)
        me = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not me]
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=grace)
        await loop.shutdown_asyncgens()
        try:
            await asyncio.wait_for(loop.shutdown_default_executor(), grace)
        except (asyncio.TimeoutError, AttributeError):  # pragma: no cover
            pass

    def add_cleanup(self, fn: Callable[[], None]) -> None:
        """Run ``fn()`` (in the stopping thread) after the loop has stopped."""
        self._cleanups.append(fn)

    def __enter__(self) -> "EmulatorThread":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else ("stopped" if self._stopped else "new")
        return "<EmulatorThread %s, %d nodes>" % (state, len(self.nodes))

    # ------------------------------------------------------------ calling into the loop

    def _check(self) -> asyncio.AbstractEventLoop:
        if self._stopped or self.loop is None:
            raise EmulatorStopped("the emulator thread is not running")
        return self.loop

    def run(self, coro: Coroutine[Any, Any, T], timeout: Optional[float] = None) -> T:
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

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call a plain function on the loop thread and return its result."""
        loop = self._check()
        if threading.current_thread() is self.thread:
            return fn(*args, **kwargs)
        fut: "concurrent.futures.Future[T]" = concurrent.futures.Future()

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

    def add_node(self, config: Optional["NodeConfig"] = None, *, start: bool = True,
                 control: bool = False, timeout: Optional[float] = None,
                 proxy: Optional[Callable[["Node"], "SyncNode"]] = None,
                 **fields: Any) -> "SyncNode":
        """Create a node (a ``NodeConfig`` or its fields), start it unless ``start=False``.
        ``proxy(node)`` makes its synchronous face (default: a :class:`SyncNode`).

        ``control=True`` also opens the node's out-of-process control endpoint
        (:mod:`confd_ha.emulator.control`), so that ``confd-ha cdb`` can reach it. An IPC port
        of 0 is resolved at the first start and kept for restarts.
        """
        from ..emulator.config import NodeConfig
        from ..emulator.node import Node
        from .node import SyncNode

        if config is None:
            config = NodeConfig(**fields)
        elif fields:
            config = dataclasses.replace(config, **fields)
        else:
            config = dataclasses.replace(config)  # our own copy: the port gets pinned in it
        self.start()
        node = self.call(Node, config)
        sync = SyncNode(self, node) if proxy is None else proxy(node)
        self.nodes.append(sync)
        if start:
            sync.start(timeout=timeout)
            if control:
                sync.open_control(timeout=timeout)
        elif control:
            sync.want_control()
        return sync


async def stop_node(node: "Node", grace: float) -> None:
    """Stop ``node`` in an orderly way; kill it if that takes longer than ``grace``."""
    try:
        await asyncio.wait_for(node.stop(), grace)
    except Exception:
        pass
    if node.running:
        await node.kill()


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
