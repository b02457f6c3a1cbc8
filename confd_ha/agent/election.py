"""Following the leader and competing for the leadership (docs/agent.md).

* **Following**: a node that is not a secondary of the leader joins it synchronously
  (``besecondary`` with ``waitreply=1``), once the leader's record says its node is primary
  (before that the join would fail); after a failed join it waits ``loop_wait``. A primary
  that refuses this node's token ends the agent (:class:`AgentError`).
* **In sync**: a node that joined the leader is in sync with it until the leader publishes a
  list of its secondaries without it while this node is not its secondary any more
  (``Agent._observe``), or until the node restarts.
* **Competing**: only a healthy agent with a valid lease that has published its record
  competes. A node in sync with the former leader competes at once; so does any agent on
  a first start (no leader seen yet) unless another member says it is primary or in sync;
  the others wait one ``ttl`` from when the leader went. A ``failover`` request naming a
  node lets that node alone compete. The winner's ``create`` succeeds; it then leads.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from .. import STATE_PRIMARY, STATE_SECONDARY, error
from . import keys as K
from .nodelink import NodeTimeout

if TYPE_CHECKING:  # pragma: no cover
    from .core import Agent

log = logging.getLogger("confd_ha.agent")


class AgentError(Exception):
    """The agent cannot go on (the reason is the message); :meth:`Agent.run` raises it."""


async def follow(agent: "Agent", snap: K.Snapshot, leader: K.LeaderRecord) -> None:
    if agent.follows(leader.node):
        if agent.synced_to != leader.node:   # joined before this agent knew
            agent.synced_to, agent.join_rev = leader.node, None
            agent.in_sync_with = leader.node
        return
    rec = snap.members.get(leader.node)
    if rec is None or rec.state != K.PRIMARY:
        return   # its node is not primary yet: joining would fail
    if time.monotonic() < agent.join_backoff:
        return
    try:
        await agent.link.besecondary(leader.node, leader.ha_address)
    except error.Error as exc:
        agent.join_backoff = time.monotonic() + agent.config.wait
        if exc.confd_errno == error.ERR_HA_BADTOKEN:
            raise AgentError("the primary refused this node's HA token: node %s could not "
                             "join %s (ConfD error %d %s); give every node of the cluster "
                             "the same token" % (agent.me, leader.node, exc.confd_errno,
                                                 error.errname(exc.confd_errno))) from None
        agent.note("join:" + leader.node, "agent %s: node %s could not join %s at %s: %s" % (
            agent.me, agent.me, leader.node, leader.ha_address, exc))
        return
    except NodeTimeout as exc:
        agent.join_backoff = time.monotonic() + agent.config.wait
        agent.note("join:" + leader.node, "agent %s: %s" % (agent.me, exc))
        return
    agent.notes.pop("join:" + leader.node, None)
    agent.synced_to, agent.join_rev, agent.in_sync_with = leader.node, None, leader.node
    agent.node_state = STATE_SECONDARY
    agent.node_list = [{"nodeid": leader.node, "address": leader.ha_address}]
    log.info("agent %s: node %s is a secondary of %s", agent.me, agent.me, leader.node)


def may_compete(agent: "Agent", snap: K.Snapshot) -> bool:
    if not agent.lease_valid() or agent.published is None:
        return False   # the others first see this member (and its node's state)
    if time.monotonic() < agent.refused_until:
        return False
    req = snap.request
    if req is not None and req.kind == "failover" and req.to is not None:
        return req.to == agent.me
    if agent.in_sync_with is not None and agent.in_sync_with == agent.last_leader:
        return True
    others = [m for n, m in snap.members.items() if n != agent.me]
    if agent.last_leader is None:   # no leader seen since this agent started
        if agent.node_state == STATE_PRIMARY:
            return True
        if not any(m.state == K.PRIMARY or (m.in_sync_with and m.healthy) for m in others):
            return True
    since = agent.leaderless_since or time.monotonic()
    return time.monotonic() >= since + agent.config.ttl


async def compete(agent: "Agent", snap: K.Snapshot) -> None:
    value = K.LeaderRecord(agent.me, agent.config.ha_ip).to_json()
    if not await agent.etcd.create(agent.keys.leader, value, agent.lease_id):
        return
    # leader_rev is learnt from the next read; until then a compare on it fails safely.
    agent.is_leader, agent.leader_rev = True, 0
    log.info("agent %s: won the election", agent.me)
    await agent.lead(snap)


__all__ = ["AgentError", "compete", "follow", "may_compete"]
