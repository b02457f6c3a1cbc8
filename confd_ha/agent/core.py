"""The agent: one per ConfD/NSO node; elects a leader in etcd and orders the node's HA role.

Tasks of one :class:`Agent` (one asyncio loop):

* the **loop** (:meth:`Agent.run`): every ``loop_wait``, and at once on a change under the
  cluster's prefix or an HA event of the node, it reads the node's status and the cluster
  (one ``get_prefix``), decides, orders, and publishes its member record when it changed;
* the **keepalive**: renews the agent's lease every ``loop_wait``; after each answer the
  lease cannot expire before ``deadline`` = (monotonic time before the request) + (the TTL
  etcd gave); a step that may need the lease renews it at once when the last renewal is too
  old for an order (:meth:`LeaseKeeper.ready`);
* the **fence**: at ``deadline - margin`` (``margin`` = loop_wait + order_timeout) with no
  renewal since, an agent whose node may be primary orders ``benone``, whatever the loop is
  doing. Promotion needs ``now + order_timeout < deadline - margin``, under the same lock;
* the **watch** on the prefix and the node's **HA events**, which only wake the loop.

The rules (docs/agent.md): the leader is whoever holds ``leader`` under its own lease;
a node that is primary without being the leader is demoted first; followers join the leader
synchronously once its record says primary; the leader promotes only when no other member
says primary; with no leader, a node in sync with the former leader competes at once, the
others after one ``ttl``; a leader whose node is down deletes ``leader`` at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Dict, List, Optional, Union

from .. import STATE_NONE, STATE_PRIMARY, STATE_SECONDARY, STATE_SECONDARY_RELAY, error
from .._consts import UNKNOWN, state_text
from . import keys as K
from .config import AgentConfig
from .etcd import Compare, Delete, EtcdClient, EtcdError, Put
from .election import AgentError, compete, follow, may_compete
from .handover import handle_request
from .lease import LeaseKeeper, fence_loop
from ._timeout import within
from .nodelink import NodeDown, NodeLink, NodeTimeout, event_name

log = logging.getLogger("confd_ha.agent")

SECONDARY_STATES = (STATE_SECONDARY, STATE_SECONDARY_RELAY)
CLOSE_WAIT = 2.0   # seconds the background tasks and the etcd client get to close


class Agent:
    """The agent of one node. ``await agent.run()`` until :meth:`stop` (or an AgentError)."""

    def __init__(self, config: AgentConfig, *, client: Optional[EtcdClient] = None) -> None:
        self.config = config.validate()
        self.me = config.node_id
        self.keys = K.Keys(config.cluster)
        self.etcd = client if client is not None else EtcdClient(
            config.etcd, timeout=config.etcd_deadline)
        self._own_client = client is None
        self.link = NodeLink(config, self._on_event)
        self.api_url: Optional[str] = None     # set by the health endpoint when it listens
        self.lease = LeaseKeeper(self.etcd, config, self._lease_lost)
        self._role_lock = asyncio.Lock()
        # what the agent knows
        self.snapshot: Optional[K.Snapshot] = None
        self.is_leader = False
        self.leader_rev = 0
        self.node_state: Optional[int] = None  # None: unknown (node down / not answering)
        self.node_list: List[Dict[str, str]] = []
        self.node_ok = False
        self.health = "starting"
        self.in_sync_with: Optional[str] = None
        self.synced_to: Optional[str] = None  # the leader the node last joined
        self.join_rev: Optional[int] = 0      # its records from before the join are ignored
        self.last_leader: Optional[str] = None
        self.leaderless_since: Optional[float] = None
        self.join_backoff = 0.0
        self.refused_until = 0.0              # the node refused beprimary: no competing
        self._refusal = ""
        self.published: Optional[K.MemberRecord] = None
        self.record: Optional[K.MemberRecord] = None
        self.notes: Dict[str, str] = {}        # log-once warnings (note())
        # running
        self._wake = asyncio.Event()
        self._stopping = False
        self._crashed = False
        self._tasks: List["asyncio.Task[None]"] = []
        self._run_task: Optional["asyncio.Future[Any]"] = None
        self._done = asyncio.Event()

    def __repr__(self) -> str:
        return "<Agent %s of cluster %s%s>" % (self.me, self.config.cluster,
                                              ", leader" if self.is_leader else "")

    # ------------------------------------------------------------ public

    @property
    def is_primary(self) -> bool:
        """This agent holds ``leader`` and its node is primary (``GET /primary``)."""
        return self.is_leader and self.node_ok and self.node_state == STATE_PRIMARY

    @property
    def is_secondary(self) -> bool:
        """The node is a secondary of the current leader (``GET /secondary``)."""
        snap = self.snapshot
        return (snap is not None and snap.leader is not None and snap.leader.node != self.me
                and self.follows(snap.leader.node))

    async def run(self) -> None:
        """Run until :meth:`stop`; raises :class:`AgentError` when the agent cannot go on."""
        self._run_task = asyncio.current_task()
        # Python 3.9 binds these to the loop current at their creation: make them here.
        self._wake, self._done, self._role_lock = asyncio.Event(), asyncio.Event(), asyncio.Lock()
        self.lease.moved = asyncio.Event()
        self._tasks = [asyncio.ensure_future(self.lease.keepalive_loop()),
                       asyncio.ensure_future(fence_loop(self.lease, self._exposed, self._fence)),
                       asyncio.ensure_future(self._watch_loop())]
        log.info("agent %s of cluster %s starts: node at %s, etcd %s, ttl %s s, loop_wait "
                 "%.3g s", self.me, self.config.cluster, self.config.ipc_text,
                 ", ".join(self.config.etcd), self.config.ttl, self.config.wait)
        failure: Optional[AgentError] = None
        try:
            while not self._stopping:
                self._wake.clear()
                try:
                    await self._step()
                except AgentError as exc:
                    failure = exc
                    log.error("agent %s stops: %s", self.me, exc)
                    break
                except EtcdError as exc:
                    self.note("etcd", "agent %s: %s" % (self.me, exc))
                except (NodeDown, NodeTimeout, error.Error, error.EOF) as exc:
                    log.warning("agent %s: %s", self.me, exc)
                else:
                    self.notes.pop("etcd", None)
                if self._stopping:
                    break
                try:
                    await within(self._wake.wait(), self.config.wait)
                except asyncio.TimeoutError:
                    pass
        finally:
            await self._shutdown()
        if failure is not None:
            raise failure

    async def stop(self) -> None:
        """Stop: a leader demotes its node first, then the lease is revoked (``leader`` and
        the member record go at once) and the connections closed. Waits for :meth:`run`."""
        self._stopping = True
        self._wake.set()
        if self._run_task is not None and not self._run_task.done():
            await self._done.wait()

    async def crash(self) -> None:
        """For tests: end like a killed process -- no demotion, no revocation; the lease runs
        out in etcd."""
        self._crashed = self._stopping = True
        if self._run_task is not None and not self._run_task.done():
            self._run_task.cancel()
            await asyncio.gather(self._run_task, return_exceptions=True)

    def view(self) -> Dict[str, Any]:
        """What the health endpoint shows: the member record and the role flags."""
        return {"member": self.record.to_dict() if self.record else None,
                "leader": self.is_leader, "primary": self.is_primary,
                "secondary": self.is_secondary, "node_ok": self.node_ok,
                "paused": bool(self.snapshot and self.snapshot.paused)}

    # ------------------------------------------------------------ tasks

    def _on_event(self, n: Optional[Dict[str, Any]]) -> None:
        if n is not None:
            log.debug("agent %s: node event %s", self.me, event_name(n["hnot"]["type"]))
        self._wake.set()

    @property
    def lease_id(self) -> int:
        return self.lease.id

    def lease_valid(self) -> bool:
        return self.lease.valid()

    def _lease_lost(self) -> None:
        self.is_leader = False
        self._wake.set()

    def _exposed(self) -> bool:
        return self.is_leader or self.node_state == STATE_PRIMARY

    async def _fence(self) -> None:
        async with self._role_lock:
            if self.lease.fence_at > time.monotonic():
                return   # renewed meanwhile
            log.warning("agent %s: the lease could not be renewed in time: demoting node %s "
                        "before it can expire", self.me, self.me)
            self.is_leader = False
            try:
                await self.link.benone()
                self.node_state = STATE_NONE
            except (NodeDown, NodeTimeout, error.Error) as exc:
                log.error("agent %s: benone for fencing failed: %s", self.me, exc)
        self._wake.set()

    async def _watch_loop(self) -> None:
        while not self._stopping:
            try:
                async for _batch in self.etcd.watch_prefix(self.keys.prefix):
                    self._wake.set()
            except Exception as exc:   # EtcdError, or a client closed under it
                log.debug("agent %s: watch ended: %r", self.me, exc)
            self._wake.set()
            await asyncio.sleep(self.config.wait)

    # ------------------------------------------------------------ one step

    async def _step(self) -> None:
        if not self.lease_id:
            try:
                await self.lease.grant()
                self.published = None
            except EtcdError as exc:
                self.note("etcd", "agent %s: cannot get a lease from etcd: %s" % (self.me, exc))
        await self._check_node()
        try:
            rev, kvs = await self.etcd.get_prefix(self.keys.prefix)
        except EtcdError as exc:
            self.note("etcd", "agent %s: cannot read etcd: %s" % (self.me, exc))
            return
        snap = K.Snapshot.parse(self.keys, rev, kvs)
        for problem in snap.problems:
            self.note(problem, "agent %s: ignored %s" % (self.me, problem))
        self._observe(snap)
        await self._act(snap)
        await self.publish(snap)

    async def _check_node(self) -> None:
        try:
            state, nodes = await self.link.status()
        except NodeDown as exc:
            self.node_ok, self.node_state, self.node_list = False, None, []
            self.health = str(exc)
        except NodeTimeout as exc:
            self.node_ok, self.node_state = False, None
            self.health = str(exc)
        else:
            self.node_ok, self.node_state, self.node_list = True, state, nodes
            refused = time.monotonic() < self.refused_until
            self.health = self._refusal if refused else K.HEALTH_OK
        if self.link.restarted:
            self.link.restarted = False
            self.synced_to = self.in_sync_with = None
            log.info("agent %s: node %s restarted; it is not in sync with anyone", self.me,
                     self.me)
        if self.link.replaced:
            self.link.replaced = False
            self.published = None   # republish; the role is re-asserted below as usual

    def _observe(self, snap: K.Snapshot) -> None:
        self.snapshot = snap
        leader = snap.leader
        if leader is not None:
            if leader.node != self.last_leader:
                log.info("agent %s: the leader is %s", self.me, leader.node)
            self.last_leader = leader.node
            self.leaderless_since = None
        elif self.leaderless_since is None:
            self.leaderless_since = time.monotonic()
            log.info("agent %s: there is no leader", self.me)
        self.is_leader = (leader is not None and leader.node == self.me
                          and snap.leader_lease == self.lease_id != 0)
        if self.is_leader:
            self.leader_rev = snap.leader_rev
        # In sync with the leader: joined it, and not left out of its latest list since.
        if self.join_rev is None:
            self.join_rev = snap.revision
        if leader is not None and leader.node != self.me and self.synced_to == leader.node:
            rec = snap.members.get(leader.node)
            if (rec is not None and rec.state == K.PRIMARY
                    and snap.member_revs.get(leader.node, 0) > self.join_rev):
                if self.me in rec.connected:
                    self.in_sync_with = leader.node
                elif not self.follows(leader.node) and self.in_sync_with is not None:
                    # Dropped by the leader while it stays primary: it may commit without us.
                    log.info("agent %s: the leader %s no longer lists node %s: not in sync",
                             self.me, leader.node, self.me)
                    self.in_sync_with = None

    def follows(self, leader: str) -> bool:
        """The node is a secondary of ``leader`` right now (its own status says so)."""
        return (self.node_ok and self.node_state in SECONDARY_STATES
                and any(n["nodeid"] == leader for n in self.node_list[:1]))

    def others_primary(self, snap: K.Snapshot) -> List[str]:
        return [n for n, m in snap.members.items() if n != self.me and m.state == K.PRIMARY]

    async def _act(self, snap: K.Snapshot) -> None:
        leader = snap.leader
        if snap.paused:
            return   # maintenance: order nothing, keep the leader key (the fence still works)
        if not self.node_ok:
            if self.is_leader and not self.link.up:
                await self._release("node %s is down" % self.me)
            return
        if self.is_leader or leader is None or leader.node == self.me:
            await self.lease.ready()   # what follows may need it (LeaseKeeper.ready says why)
        if self.is_leader and not self.lease_valid():
            log.debug("agent %s: its lease is not renewed in time for an order", self.me)
            return   # the lease is about to run out: the fence decides, nothing else
        if leader is not None and leader.node == self.me and not self.is_leader:
            await self._take_back(snap)
            if not self.is_leader:
                # The key still names this node under another lease: neither lead nor
                # follow (following would demote the node to join itself); try again at
                # the next step, or compete once that lease has expired.
                return
        if self.is_leader:
            if await handle_request(self, snap):
                return
            await self.lead(snap)
        elif leader is not None:
            if self.node_state == STATE_PRIMARY:
                await self.demote("node %s is primary but %s leads" % (self.me, leader.node))
            await follow(self, snap, leader)
        else:
            if may_compete(self, snap):
                await compete(self, snap)   # a primary node that wins stays primary
            if not self.is_leader and self.node_state == STATE_PRIMARY:
                await self.demote("node %s is primary but there is no leader" % self.me)

    async def _take_back(self, snap: K.Snapshot) -> None:
        """``leader`` names this node under another lease (this agent's earlier run)."""
        if not self.lease_valid():
            return
        assert snap.leader is not None
        value = K.LeaderRecord(self.me, self.config.ha_ip, snap.leader.since).to_json()
        if await self.etcd.replace(self.keys.leader, value, self.lease_id, snap.leader_rev):
            kv = await self.etcd.get(self.keys.leader)
            if kv is not None and kv.lease == self.lease_id:
                self.is_leader, self.leader_rev = True, kv.mod_revision
                log.info("agent %s: took the leader key back under its new lease", self.me)

    async def lead(self, snap: K.Snapshot) -> None:
        if self.node_state == STATE_PRIMARY:
            return
        others = self.others_primary(snap)
        if others:
            self.note("wait-primary", "agent %s: leader, waiting for %s to stop being "
                       "primary" % (self.me, ", ".join(sorted(others))))
            return
        self.notes.pop("wait-primary", None)
        async with self._role_lock:
            if not (self.is_leader and self.lease_valid()):
                return
            try:
                await self.link.beprimary()
            except error.Error as exc:
                refused = exc
            else:
                self.node_state = STATE_PRIMARY
                self.node_list = []
                self.synced_to = self.in_sync_with = None
                log.info("agent %s: node %s is primary", self.me, self.me)
                return
        self._refusal = "node %s refused beprimary: %s" % (self.me, refused)
        self.refused_until = time.monotonic() + self.config.ttl
        self.health = self._refusal
        await self._release(self._refusal)

    async def _release(self, why: str) -> None:
        """Give up ``leader`` at once: one txn publishes this member's record (so that no one
        tries to join the node) and deletes ``leader`` if it is still ours."""
        log.warning("agent %s: releases the leadership: %s", self.me, why)
        self.is_leader = False
        if self.health == K.HEALTH_OK:
            self.health = why
        rec = self.make_record(self.snapshot)
        ops: List[Union[Put, Delete]] = [Delete(self.keys.leader)]
        if self.lease_id:
            ops.insert(0, Put(self.keys.member(self.me), rec.to_json(), self.lease_id))
        if await self.etcd.txn([Compare.mod(self.keys.leader, self.leader_rev)], ops):
            self.record = self.published = rec

    async def demote(self, why: str) -> None:
        async with self._role_lock:
            log.info("agent %s: benone: %s", self.me, why)
            await self.link.benone()
            self.node_state, self.node_list = STATE_NONE, []

    # ------------------------------------------------------------ publishing

    def make_record(self, snap: Optional[K.Snapshot]) -> K.MemberRecord:
        state = state_text(self.node_state) if self.node_ok else UNKNOWN
        primary = None
        if self.node_state in SECONDARY_STATES and self.node_list:
            primary = self.node_list[0]["nodeid"]
        connected = ([n["nodeid"] for n in self.node_list]
                     if self.node_state == STATE_PRIMARY else [])
        return K.MemberRecord(
            node=self.me, ha_address=self.config.ha_ip, ipc=self.config.ipc_text, state=state,
            primary=primary, connected=connected, health=self.health, api=self.api_url,
            lease=self.lease_id, in_sync_with=self.in_sync_with,
            paused=bool(snap is not None and snap.paused))

    async def publish(self, snap: Optional[K.Snapshot]) -> None:
        rec = self.make_record(snap)
        self.record = rec
        if not self.lease_id or rec.same_content(self.published):
            return
        await self.etcd.put(self.keys.member(self.me), rec.to_json(), self.lease_id)
        self.published = rec

    def note(self, key: str, text: str) -> None:
        """Log a warning once, until the condition ``key`` is cleared (``_noted.pop``)."""
        if key not in self.notes:
            log.warning("%s", text)
        else:
            log.debug("%s", text)
        self.notes[key] = text

    # ------------------------------------------------------------ stopping

    async def _shutdown(self) -> None:
        try:
            if not self._crashed:
                # While the node may be primary, the keepalive and the fence keep running.
                await self._orderly_exit()
        finally:
            try:
                await _cancel(self._tasks)
                for t in self._tasks:
                    if t.done() and not t.cancelled() and t.exception() is not None:
                        log.debug("agent %s: task ended: %r", self.me, t.exception())
                await self.link.close()
                if self._own_client:
                    await within(self.etcd.close(), CLOSE_WAIT)
            except (asyncio.TimeoutError, OSError) as exc:
                log.debug("agent %s: closing: %r", self.me, exc)
            finally:
                self._done.set()

    async def _orderly_exit(self) -> None:
        if self.is_leader or self.node_state == STATE_PRIMARY:
            try:
                await self.demote("agent %s stops" % self.me)
            except NodeDown:
                pass   # a node that is down is no primary
            except (NodeTimeout, error.Error) as exc:
                # Never free the leader key while the node may still be primary: the lease
                # then runs out after ttl as if the agent had died.
                log.warning("agent %s: could not demote its node on stop (%s); leaving the "
                            "lease to expire", self.me, exc)
                return
        try:
            await self.lease.revoke()
        except EtcdError as exc:
            log.warning("agent %s: could not revoke its lease on stop: %s", self.me, exc)
        log.info("agent %s stopped", self.me)


async def _cancel(tasks: List["asyncio.Task[None]"]) -> None:
    """Cancel ``tasks`` and wait until they end (bounded by ``CLOSE_WAIT``: a task that
    outlives it is logged, never waited for). One cancellation ends each of them: every
    timed wait in them uses :func:`._timeout.within`, which never loses it."""
    for t in tasks:
        t.cancel()
    pending = [t for t in tasks if not t.done()]
    if pending:
        _, late = await asyncio.wait(pending, timeout=CLOSE_WAIT)
        for t in late:
            log.error("a task of the agent did not end within %s s of its cancellation: %r",
                      CLOSE_WAIT, t)


__all__ = ["Agent", "AgentError"]
