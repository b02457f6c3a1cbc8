"""The agent's lease and the fence that keeps its node from outliving it as a primary.

The lease arithmetic (docs/agent.md): the agent notes ``sent``, its monotonic clock
just before each keepalive request; when etcd answers with the remaining TTL ``r``, the lease
cannot expire before ``sent + r`` -- the :attr:`LeaseKeeper.deadline`. A node may be primary
only while ``now < deadline - margin`` (``margin`` = loop_wait + order_timeout):
:func:`fence_loop` orders the demotion at that point unless a renewal moved the deadline.
A promotion needs ``now + order_timeout < deadline - margin`` (:meth:`LeaseKeeper.valid`), so
that it ends before the fence could act. Another agent can take ``leader`` only after etcd
deleted it: at or after ``deadline``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Awaitable, Callable

from ._timeout import within
from .config import AgentConfig
from .etcd import EtcdClient, EtcdError

log = logging.getLogger("confd_ha.agent")


class LeaseKeeper:
    """One agent's lease: granted, renewed every ``loop_wait``, revoked on a clean stop."""

    def __init__(self, etcd: EtcdClient, config: AgentConfig,
                 on_lost: Callable[[], None]) -> None:
        self.etcd = etcd
        self.config = config
        self.name = config.node_id
        self.on_lost = on_lost
        self.id = 0
        self.deadline = 0.0                 # monotonic: the lease cannot expire before it
        self.moved = asyncio.Event()        # set whenever the deadline changes

    def _set(self, deadline: float) -> None:
        self.deadline = deadline
        self.moved.set()

    @property
    def fence_at(self) -> float:
        """When a node of this agent must stop being primary."""
        return self.deadline - self.config.margin

    def valid(self) -> bool:
        """Time is left for an order before the fence: ``now + order_timeout < fence_at``."""
        return bool(self.id) and time.monotonic() + self.config.order_timeout < self.fence_at

    async def grant(self) -> None:
        sent = time.monotonic()
        lease = await self.etcd.grant(self.config.ttl)
        self.id = lease.id
        self._set(sent + lease.ttl)
        log.info("agent %s: lease %x granted (ttl %d s)", self.name, lease.id, lease.ttl)

    def lost(self, why: str) -> None:
        if self.id:
            log.warning("agent %s: lost its lease (%s)", self.name, why)
        self.id = 0
        self._set(0.0)
        self.on_lost()

    async def renew(self) -> None:
        """One keepalive now (a lease that is gone is :meth:`lost`)."""
        lease = self.id
        if not lease:
            return
        sent = time.monotonic()
        try:
            ttl = await self.etcd.keepalive(lease)
        except EtcdError as exc:
            if exc.lost and lease == self.id:
                self.lost(str(exc))
            else:
                log.debug("agent %s: keepalive failed: %s", self.name, exc)
            return
        if lease == self.id:
            # Each answer proves the lease lives until its sent + ttl: keep the latest bound
            # (a renewal of ready() and one of the loop may answer in either order).
            self._set(max(self.deadline, sent + ttl))

    async def ready(self) -> bool:
        """:meth:`valid`, after renewing the lease now if it is not. The keepalive and the
        agent's loop both run every ``loop_wait``: when ``ttl`` leaves less than ``loop_wait``
        between a renewal and the point where :meth:`valid` turns false, a loop waiting for
        the keepalive could find it not valid at step after step (both periods being equal),
        and order nothing for as long -- a switchover unserved, a new leader not promoting."""
        if self.id and not self.valid():
            await self.renew()
        return self.valid()

    async def keepalive_loop(self) -> None:
        while True:
            await self.renew()
            await asyncio.sleep(self.config.wait)

    async def revoke(self) -> None:
        """Revoke the lease (its keys go at once); the keeper then holds none."""
        lease, self.id = self.id, 0
        if lease:
            await self.etcd.revoke(lease)


async def fence_loop(keeper: LeaseKeeper, exposed: Callable[[], bool],
                     fence: Callable[[], Awaitable[None]]) -> None:
    """Run ``fence()`` whenever ``fence_at`` passes with no renewal while ``exposed()`` (the
    agent leads, or its node may be primary)."""
    while True:
        keeper.moved.clear()
        left = keeper.fence_at - time.monotonic()
        if left > 0:
            try:
                await within(keeper.moved.wait(), left)
            except asyncio.TimeoutError:
                pass
            continue
        if exposed():
            await fence()
        await keeper.moved.wait()
