"""The leader's part of an operator's switchover or failover (the ``request`` key).

* ``switchover`` to N: N's record must be healthy, a secondary of this leader, and N must be
  in this node's ``status()`` list (a synchronous join is complete once listed). The leader
  orders ``benone``, publishes its record (state none), and in one txn -- comparing
  ``leader``'s mod revision -- puts ``leader`` = N under N's lease and deletes ``request``.
* ``failover`` to N: the same without the sync check.
* ``failover`` without a target: ``benone``, then one txn deletes ``leader`` and ``request``;
  this node is not in sync with anyone then, so it competes only after one ``ttl``.

A request that names another leader than this one (``from``) is stale and deleted; one whose
target is this node is done once the node is primary, and deleted then. A request that cannot
be served yet (its target not in sync) waits; the operator's timeout ends it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, List, Optional, Union

from .. import STATE_PRIMARY, error
from . import keys as K
from .etcd import Compare, Delete, EtcdError, Put
from .nodelink import NodeDown, NodeTimeout

if TYPE_CHECKING:  # pragma: no cover
    from .core import Agent

log = logging.getLogger("confd_ha.agent")


def unfit(agent: "Agent", snap: K.Snapshot, req: K.RequestRecord,
          target: Optional[K.MemberRecord]) -> Optional[str]:
    """Why the request's target cannot take over now (None: it can)."""
    if target is None:
        return "%s is no member of the cluster (no agent registered)" % req.to
    if not target.healthy:
        return "%s is not healthy: %s" % (req.to, target.health)
    if not target.lease:
        return "%s has no lease" % req.to
    if req.kind != "switchover":
        return None
    if target.state not in K.SECONDARIES or target.primary != agent.me:
        return "%s is not a secondary of %s (state %s)" % (req.to, agent.me, target.state)
    if agent.node_state != STATE_PRIMARY or req.to not in [
            n["nodeid"] for n in agent.node_list]:
        return "node %s does not list %s among its secondaries (not in sync)" % (agent.me,
                                                                                 req.to)
    return None


async def handle_request(agent: "Agent", snap: K.Snapshot) -> bool:
    """Serve ``request`` if this agent leads; True when the leadership was handed on."""
    req = snap.request
    if req is None:
        return False
    keys, me = agent.keys, agent.me
    if req.to == me:
        if agent.node_state == STATE_PRIMARY:
            await agent.etcd.delete_if(keys.request, snap.request_rev)
            log.info("agent %s: %s %s done", me, req.kind, req.id)
        return False
    if req.from_node is not None and req.from_node != me:
        log.info("agent %s: dropping %s %s meant for leader %s", me, req.kind, req.id,
                 req.from_node)
        await agent.etcd.delete_if(keys.request, snap.request_rev)
        return False
    target = snap.members.get(req.to) if req.to is not None else None
    if req.to is not None:
        why = unfit(agent, snap, req, target)
        if why is not None:
            agent.note("request", "agent %s: %s %s to %s waits: %s" % (me, req.kind, req.id,
                                                                       req.to, why))
            return False
    agent.notes.pop("request", None)
    log.info("agent %s: %s %s requested: %s", me, req.kind, req.id,
             "handing over to %s" % req.to if req.to else "stepping down")
    try:
        await agent.demote("%s requested by an operator" % req.kind)
    except (NodeDown, NodeTimeout, error.Error) as exc:
        log.warning("agent %s: %s %s: benone failed (%s); staying leader", me, req.kind,
                    req.id, exc)
        return False
    agent.is_leader = False
    agent.in_sync_with = agent.synced_to = None
    leader_rev = agent.leader_rev
    try:
        await agent.publish(snap)
    except EtcdError as exc:
        log.warning("agent %s: could not publish its record: %s", me, exc)
    ops: List[Union[Put, Delete]] = [Delete(keys.request)]
    if target is not None:
        value = K.LeaderRecord(target.node, target.ha_address).to_json()
        ops.insert(0, Put(keys.leader, value, target.lease))
    else:
        ops.insert(0, Delete(keys.leader))
    try:
        done = await agent.etcd.txn([Compare.mod(keys.leader, leader_rev)], ops)
    except EtcdError as exc:
        if exc.unavailable:
            raise
        # etcd refused (the target's lease is gone): drop the request rather than retry it.
        log.warning("agent %s: %s %s failed: %s", me, req.kind, req.id, exc)
        await agent.etcd.delete_if(keys.request, snap.request_rev)
        return True
    if done:
        log.info("agent %s: %s %s: %s", me, req.kind, req.id,
                 "the leader is now %s" % target.node if target else "the leader key is free")
    return True


__all__ = ["handle_request", "unfit"]
