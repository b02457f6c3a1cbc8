"""Operator functions: they read and write etcd only (never a node's HA socket).

Each is a coroutine taking an :class:`~confd_ha.agent.etcd.EtcdClient` and the cluster name and
returning a JSON-able dict::

    async with EtcdClient(["http://127.0.0.1:2379"]) as client:
        print(await cluster_view(client, "main"))
        await switchover(client, "main", to="n2")      # waits until n2 is the primary

``switchover`` and ``failover`` put the ``request`` key under a lease of their own and wait
(``timeout``) until ``leader`` names the new node and that node's record says primary; the
lease is revoked at the end, so a request never outlives its command by long. Failures raise
:class:`OpsError` subclasses with a message meant for the operator.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any, Dict, Optional

from . import keys as K
from .etcd import EtcdClient, EtcdError

POLL = 0.05


class OpsError(Exception):
    """An operator command cannot be done (the message says why)."""


class NoSuchMember(OpsError):
    """The named node has no member record: no agent of it is running."""


class NotInSync(OpsError):
    """The switchover candidate is not a healthy secondary of the leader."""


class NoLeader(OpsError):
    """The cluster has no leader."""


class OpsTimeout(OpsError, TimeoutError):
    """The request was not done in time."""


async def _snapshot(client: EtcdClient, keys: K.Keys) -> K.Snapshot:
    rev, kvs = await client.get_prefix(keys.prefix)
    return K.Snapshot.parse(keys, rev, kvs)


def view_of(keys: K.Keys, snap: K.Snapshot) -> Dict[str, Any]:
    """The cluster as etcd holds it (``cluster_view``'s result)."""
    return {
        "cluster": keys.cluster,
        "revision": snap.revision,
        "leader": snap.leader.to_dict() if snap.leader is not None else None,
        "paused": snap.paused,
        "pause": snap.pause.to_dict() if snap.pause is not None else None,
        "request": snap.request.to_dict() if snap.request is not None else None,
        "members": snap.member_list(),
        "problems": list(snap.problems),
    }


async def cluster_view(client: EtcdClient, cluster: str) -> Dict[str, Any]:
    """``{"cluster", "revision", "leader", "paused", "pause", "request", "members": [...],
    "problems"}``: the leader record, and each agent's record of itself and its node."""
    keys = K.Keys(cluster)
    return view_of(keys, await _snapshot(client, keys))


async def pause(client: EtcdClient, cluster: str, by: str = "operator") -> Dict[str, Any]:
    """Maintenance: the agents order nothing until :func:`resume` (``pause`` key, no lease)."""
    keys = K.Keys(cluster)
    record = K.PauseRecord(by=by)
    await client.put(keys.pause, record.to_json())
    return {"cluster": cluster, "paused": True, "since": record.since, "by": by}


async def resume(client: EtcdClient, cluster: str) -> Dict[str, Any]:
    """End the maintenance pause."""
    keys = K.Keys(cluster)
    was = await client.delete(keys.pause)
    return {"cluster": cluster, "paused": False, "was_paused": was}


def _member(snap: K.Snapshot, node: str) -> K.MemberRecord:
    rec = snap.members.get(node)
    if rec is None:
        known = ", ".join(sorted(snap.members)) or "none"
        raise NoSuchMember("no such member: %s (members: %s)" % (node, known))
    return rec


async def switchover(client: EtcdClient, cluster: str, to: str, *,
                     timeout: float = 30.0) -> Dict[str, Any]:
    """Planned handover to ``to``: it must be a healthy secondary of the leader; the leader's
    agent hands over once its node lists ``to`` (in sync). Waits until ``to`` is primary."""
    keys = K.Keys(cluster)
    snap = await _snapshot(client, keys)
    if snap.leader is None:
        raise NoLeader("no leader: there is nothing to switch over from (the agents elect a "
                       "leader on their own; 'failover --to NODE' chooses one)")
    _check_free(snap)
    rec = _member(snap, to)
    leader = snap.leader.node
    if to == leader:
        raise OpsError("%s is already the leader" % to)
    if (not rec.healthy or rec.state not in K.SECONDARIES
            or rec.primary != leader):
        raise NotInSync("candidate not in sync: %s is %s%s, health: %s; a switchover needs a "
                        "healthy secondary of the leader %s (or use failover)"
                        % (to, rec.state, " of %s" % rec.primary if rec.primary else "",
                           rec.health, leader))
    return await _request(client, keys, "switchover", leader, to, timeout)


async def failover(client: EtcdClient, cluster: str, to: Optional[str] = None, *,
                   timeout: float = 30.0) -> Dict[str, Any]:
    """Unplanned change of leader: to ``to`` (any healthy member, in sync or not), or without
    a target to whichever agent wins once the leader stepped down. With no leader at all,
    ``to`` takes the leadership at once."""
    keys = K.Keys(cluster)
    snap = await _snapshot(client, keys)
    _check_free(snap)
    leader = snap.leader.node if snap.leader is not None else None
    if to is None and leader is None:
        raise NoLeader("no leader: the agents elect one on their own; give a target "
                       "(failover --to NODE) to choose it")
    if to is not None:
        rec = _member(snap, to)
        if to == leader:
            raise OpsError("%s is already the leader" % to)
        if not rec.healthy:
            raise OpsError("candidate %s is not healthy: %s" % (to, rec.health))
    return await _request(client, keys, "failover", leader, to, timeout)


def _check_free(snap: K.Snapshot) -> None:
    if snap.paused:
        raise OpsError("the cluster is paused: the agents order nothing; resume it first")
    if snap.request is not None:
        raise OpsError("another request is pending: %s to %s (id %s)"
                       % (snap.request.kind, snap.request.to or "any node", snap.request.id))


async def _request(client: EtcdClient, keys: K.Keys, kind: str, leader: Optional[str],
                   to: Optional[str], timeout: float) -> Dict[str, Any]:
    req = K.RequestRecord(kind=kind, from_node=leader, to=to, id=str(uuid.uuid4()))
    began = time.monotonic()
    lease = await client.grant(int(max(60, timeout + 10)))
    try:
        if not await client.create(keys.request, req.to_json(), lease.id):
            raise OpsError("another request is pending (written just now)")
        end = began + timeout
        last: Optional[K.Snapshot] = None
        while True:
            try:
                last = await _snapshot(client, keys)
            except EtcdError:
                last = None
            if last is not None and _done(last, leader, to):
                assert last.leader is not None
                return {"cluster": keys.cluster, "kind": kind, "id": req.id, "from": leader,
                        "to": to, "leader": last.leader.node,
                        "seconds": round(time.monotonic() - began, 3)}
            if time.monotonic() >= end:
                raise OpsTimeout("%s %s not done within %.3g s: %s" % (
                    kind, "to %s" % to if to else "away from %s" % leader, timeout,
                    _situation(last)))
            await asyncio.sleep(POLL)
    finally:
        try:
            await client.revoke(lease.id)
        except EtcdError:
            pass   # the request then ends with its lease


def _done(snap: K.Snapshot, old: Optional[str], to: Optional[str]) -> bool:
    if snap.leader is None:
        return False
    new = snap.leader.node
    if (to is not None and new != to) or (to is None and new == old):
        return False
    rec = snap.members.get(new)
    return rec is not None and rec.state == "primary"


def _situation(snap: Optional[K.Snapshot]) -> str:
    if snap is None:
        return "etcd does not answer"
    leader = snap.leader.node if snap.leader is not None else "none"
    states = ", ".join("%s %s" % (n, m.state) for n, m in sorted(snap.members.items()))
    return "the leader is %s; members: %s" % (leader, states or "none")


__all__ = ["OpsError", "NoSuchMember", "NotInSync", "NoLeader", "OpsTimeout", "cluster_view",
           "view_of", "switchover", "failover", "pause", "resume"]
