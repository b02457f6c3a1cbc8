"""``within``: a deadline on an await that never loses the caller's cancellation.

Before Python 3.12, ``asyncio.wait_for`` loses a cancellation of its caller that arrives as
the awaited task finishes: it catches the ``CancelledError``, sees the task done and returns
its result, and the caller goes on as if it had never been cancelled. A task that iterates a
watch (a loop of short awaits under ``wait_for``) then often survives ``task.cancel()``.
:func:`within` runs the awaitable as a task of its own and waits for it with ``asyncio.wait``,
which lets the caller's cancellation through in every case (Python 3.9 and later).
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable, Optional, TypeVar

__all__ = ["within"]

T = TypeVar("T")

REAP_WAIT = 1.0
"""Seconds a cancelled caller waits for the inner task to end before it goes on anyway."""


def _reaper(discard: Optional[Callable[[Any], object]]) -> Callable[["asyncio.Future[Any]"],
                                                                      None]:
    """A done callback for a task nobody awaits any more: retrieves its outcome (no "never
    retrieved" log) and hands a result to ``discard``."""
    def reap(task: "asyncio.Future[Any]") -> None:
        if task.cancelled() or task.exception() is not None:
            return
        if discard is not None:
            discard(task.result())
    return reap


async def within(aw: Awaitable[T], timeout: float, *,
                 discard: Optional[Callable[[T], object]] = None) -> T:
    """``await aw``, at most ``timeout`` seconds: then it is cancelled (and has ended) and
    :class:`asyncio.TimeoutError` is raised. A cancellation of the caller always propagates:
    the inner task is cancelled too (and waited for, at most :data:`REAP_WAIT`), and a result
    it produced all the same (it finished at that moment) goes to ``discard`` (to close what
    it opened)."""
    task = asyncio.ensure_future(aw)
    try:
        done, _ = await asyncio.wait((task,), timeout=max(0.0, timeout))
        if not done:
            task.cancel()
            await asyncio.wait((task,))   # its clean-up runs before the caller goes on
    except BaseException:
        task.cancel()
        task.add_done_callback(_reaper(discard))
        if not task.done():
            try:   # let it end before the caller does (bounded: never held by the task)
                await asyncio.wait((task,), timeout=REAP_WAIT)
            except BaseException:   # a second cancellation: the first one goes on anyway
                pass
        raise
    if not done and task.cancelled():
        raise asyncio.TimeoutError()
    return task.result()   # also when it finished (or failed) while being cancelled
