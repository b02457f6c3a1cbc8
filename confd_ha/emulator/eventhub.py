"""HA event subscribers of one node (docs/ha-behaviour.md §9, B-26, B-27, B-28, W-30, W-32).

The hub writes each event frame straight into every HA subscriber's transport, in emission
order; when an order's reply goes out relative to its events is the order's business (B-05).
``HA_INFO_SYNC`` subscribers owe one ``ha_synced`` per event; :meth:`EventHub.wait_synced`
lets the node's HA engine wait for them (B-27). A subscriber whose writes stay blocked for
longer than the configured limit is closed (B-28).
"""

from __future__ import annotations

import asyncio
import logging
from typing import List, Optional

from .. import _notifications, _protocol
from .._terms import Term

log = logging.getLogger("confd_ha.emulator")


class Subscriber:
    """One event-notification connection (client type 11) after its subscription."""

    def __init__(self, hub: "EventHub", writer: asyncio.StreamWriter, mask: int, label: str):
        self.hub = hub
        self.writer = writer
        self.mask = mask
        self.label = label
        # W-30: HA_INFO_SYNC without HA_INFO subscribes to nothing.
        self.ha = bool(mask & _protocol.NOTIF_HA_INFO)
        self.sync = self.ha and bool(mask & _protocol.NOTIF_HA_INFO_SYNC)
        self.outstanding = 0
        self.closed = False
        self._watchdog: "Optional[asyncio.Task[None]]" = None

    def send(self, frame: bytes) -> None:
        if self.closed:
            return
        try:
            self.writer.write(frame)
        except (ConnectionError, RuntimeError, OSError):
            self.close()
            return
        if self.sync:
            self.outstanding += 1
        transport = self.writer.transport
        # StreamWriter.drain() only waits while the transport is above its high-water mark,
        # i.e. while the subscriber is not reading: that is a "blocked write" (B-28).
        if self._watchdog is None and transport.get_write_buffer_size() > 0:
            self._watchdog = asyncio.ensure_future(self._watch())

    async def _watch(self) -> None:
        try:
            await asyncio.wait_for(self.writer.drain(), self.hub.write_block)
        except asyncio.TimeoutError:
            log.warning("event subscriber %s: write blocked for more than %.1f s, closing",
                        self.label, self.hub.write_block)
            self.close(abort=True)  # a plain close would wait for the unread data forever
        except (ConnectionError, OSError):
            self.close()
        finally:
            self._watchdog = None

    def ack(self) -> None:
        """One ``ha_synced``: acknowledges the oldest outstanding event (W-32)."""
        if self.outstanding:
            self.outstanding -= 1
            self.hub._update()
        else:
            log.info("event subscriber %s: unsolicited ha_synced ignored", self.label)

    def close(self, abort: bool = False) -> None:
        """Close the connection; its outstanding events count as acknowledged (W-32)."""
        if self.closed:
            return
        self.closed = True
        self.outstanding = 0
        try:
            if abort:
                self.writer.transport.abort()
            else:
                self.writer.close()
        except (RuntimeError, OSError):  # loop already closing
            pass
        if self._watchdog is not None and self._watchdog is not asyncio.current_task():
            self._watchdog.cancel()
        self.hub.remove(self)


class EventHub:
    """The node's subscribers and the acknowledgement state of HA_INFO_SYNC."""

    def __init__(self, write_block: float):
        self.write_block = write_block
        self.subscribers: List[Subscriber] = []
        self._synced = asyncio.Event()
        self._synced.set()

    def add(self, sub: Subscriber) -> None:
        self.subscribers.append(sub)

    def remove(self, sub: Subscriber) -> None:
        if sub in self.subscribers:
            self.subscribers.remove(sub)
        self._update()

    def emit(self, ha_type: int, data: Term) -> None:
        """Queue one HA event to every HA subscriber, in subscription order."""
        frame = _notifications.encode_event(ha_type, data)
        for sub in list(self.subscribers):
            if sub.ha:
                sub.send(frame)
        self._update()

    @property
    def pending(self) -> bool:
        """True while some HA_INFO_SYNC subscriber has not acknowledged every event."""
        return any(s.outstanding for s in self.subscribers)

    def _update(self) -> None:
        if self.pending:
            self._synced.clear()
        else:
            self._synced.set()

    async def wait_synced(self) -> None:
        """Return once every HA_INFO_SYNC subscriber has acknowledged every event (B-27)."""
        while self.pending:
            self._synced.clear()
            await self._synced.wait()

    def close_all(self) -> None:
        for sub in list(self.subscribers):
            sub.close()
