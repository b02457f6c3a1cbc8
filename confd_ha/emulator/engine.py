"""A node's HA engine: all HA work, one item at a time (docs/conformance.md, "One order at a
time").

ConfD handles a node's HA work in one process: orders -- ``status`` included -- and the
transitions its peers cause (a lost primary, a secondary that died, a join to admit) are done
one after the other. A ``status()`` sent during a join is answered when the join ends. After
every HA event sent to an ``HA_INFO_SYNC`` subscriber the engine waits until every such
subscriber has acknowledged it, before it does anything else -- the next event of the same
item included. Ticks, replication and the network steps of a join run beside it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable, Optional

from .._terms import Term
from .eventhub import EventHub

log = logging.getLogger("confd_ha.emulator")

Item = Callable[[], Awaitable[None]]


class Engine:
    """The queue of HA work items of one node, and the task that runs them."""

    def __init__(self, hub: EventHub, label: str):
        self.hub = hub
        self.label = label
        self._queue: "asyncio.Queue[Optional[Item]]" = asyncio.Queue()
        self._task: "Optional[asyncio.Task[None]]" = None
        self._closed = False

    def start(self) -> "asyncio.Task[None]":
        self._task = asyncio.ensure_future(self._run())
        return self._task

    def post(self, item: Item) -> None:
        """Queue one item; it runs after everything queued before it."""
        if not self._closed:
            self._queue.put_nowait(item)

    def close(self) -> None:
        """Run no further item. (A cancellation can be lost when it meets a finishing
        ``wait_for``; the flag ends the loop all the same.)"""
        self._closed = True
        self._queue.put_nowait(None)

    async def _run(self) -> None:
        while not self._closed:
            item = await self._queue.get()
            if item is None or self._closed:
                return
            try:
                await item()
            except asyncio.CancelledError:
                raise
            except Exception:  # an engine bug costs one item, never the node
                log.exception("%s: HA engine item failed", self.label)

    async def emit(self, ha_type: int, data: Term) -> None:
        """Send one HA event, then wait until the HA_INFO_SYNC subscribers acknowledged it."""
        self.hub.emit(ha_type, data)
        await self.hub.wait_synced()
