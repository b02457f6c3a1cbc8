"""SIGTERM and SIGINT for the long-running commands (``confd-ha emulate``, ``confd-ha agent
run``): :class:`Signals` forwards them to the command's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from types import FrameType
from typing import Any, Callable, Dict, Iterator, List, Optional

__all__ = ["Signals"]


class Signals:
    """Signals received, forwarded to the running loop (``callback(name)``) once it is set."""

    def __init__(self) -> None:
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self.callback: Optional[Callable[[str], None]] = None
        self.pending: List[str] = []
        self.done = False

    def handler(self, signum: int, frame: Optional[FrameType]) -> None:
        name = signal.Signals(signum).name
        if self.callback is None or self.loop is None:
            if not self.done and len(self.pending) < 2:
                self.pending.append(name)  # before the loop runs: stop as soon as it does
            return
        try:
            self.loop.call_soon_threadsafe(self.callback, name)
        except RuntimeError:  # the loop is closing: the command is stopping anyway
            pass

    def attach(self, loop: asyncio.AbstractEventLoop, callback: Callable[[str], None]) -> None:
        self.loop, self.callback = loop, callback
        for name in self.pending:
            callback(name)
        self.pending.clear()

    def detach(self) -> None:
        self.callback = None
        self.done = True

    @contextlib.contextmanager
    def installed(self) -> Iterator["Signals"]:
        """In the main thread, :meth:`handler` handles SIGTERM and SIGINT for the block, and
        afterwards they are *ignored* if they had their default handlers (the process is
        about to exit; an in-process caller that goes on should restore them). In another
        thread nothing is installed."""
        # Python-level handlers for the whole run (not loop.add_signal_handler, which the
        # loop removes when it closes): a second SIGTERM during the final teardown must not
        # turn a clean exit into death by signal.
        previous: Dict[signal.Signals, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[sig] = signal.signal(sig, self.handler)
        try:
            yield self
        finally:
            for sig, old in previous.items():
                # After the stop the process is about to exit: a late signal (a supervisor
                # repeating itself) must not turn the clean exit into death by signal -- and
                # Python resets its own handlers to SIG_DFL early in interpreter
                # finalization, so only SIG_IGN closes that window. Non-default handlers
                # are restored.
                if old in (signal.SIG_DFL, signal.default_int_handler):
                    signal.signal(sig, signal.SIG_IGN)
                else:
                    signal.signal(sig, old)
