"""The agent's key layout in etcd and its JSON records, in one place.

Every key of a cluster lives under ``/confd-ha/<cluster>/``::

    leader              LeaderRecord    under the leader agent's lease
    members/<node>      MemberRecord    under each agent's lease
    pause               PauseRecord     no lease (stays until ``resume``)
    request             RequestRecord   under an operator's lease

Node ids (and the cluster name) are percent-encoded where they appear in a key name
(:func:`quote`), so any id -- one with ``/`` or spaces in it -- gives exactly one key. Values
are compact UTF-8 JSON. Parsing is tolerant of unknown fields (a newer agent may add some)
and strict about the ones it needs: a malformed value raises :class:`RecordError`.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import urllib.parse
from typing import Any, Dict, List, Optional, Protocol

from .._consts import UNKNOWN, State

ROOT = "/confd-ha/"

PRIMARY = State.PRIMARY.text
SECONDARIES = (State.SECONDARY.text, State.SECONDARY_RELAY.text)
"""The values of :attr:`MemberRecord.state` of a secondary."""
STATE_NAMES = (PRIMARY, *SECONDARIES, State.NONE.text, UNKNOWN)
"""The values of :attr:`MemberRecord.state`."""

HEALTH_OK = "ok"


class RecordError(ValueError):
    """A value in etcd is not the record its key should hold."""


def now_iso() -> str:
    """The current time as ISO 8601 UTC with milliseconds (``2024-05-01T12:00:00.123Z``)."""
    t = datetime.datetime.now(datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)


def quote(name: str) -> str:
    """``name`` as it appears in a key: percent-encoded, ``/`` included."""
    return urllib.parse.quote(name, safe="")


def unquote(part: str) -> str:
    return urllib.parse.unquote(part)


class Keys:
    """The keys of one cluster."""

    def __init__(self, cluster: str) -> None:
        self.cluster = cluster
        self.prefix = ROOT + quote(cluster) + "/"
        self.leader = self.prefix + "leader"
        self.pause = self.prefix + "pause"
        self.request = self.prefix + "request"
        self.members = self.prefix + "members/"

    def member(self, node: str) -> str:
        """The key of ``node``'s member record."""
        return self.members + quote(node)

    def member_node(self, key: str) -> Optional[str]:
        """The node id of a member key (None if ``key`` is not one)."""
        if not key.startswith(self.members) or len(key) == len(self.members):
            return None
        return unquote(key[len(self.members):])

    def __repr__(self) -> str:
        return "Keys(%r)" % self.cluster


# ---------------------------------------------------------------- records


def _load(data: bytes, what: str) -> Dict[str, Any]:
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise RecordError("%s is not JSON: %s" % (what, exc)) from None
    if not isinstance(obj, dict):
        raise RecordError("%s is not a JSON object" % what)
    return obj


def _dump(obj: Dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode("utf-8")


def _text(obj: Dict[str, Any], key: str, what: str, *, optional: bool = False,
          default: Optional[str] = None) -> Optional[str]:
    value = obj.get(key, default)
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise RecordError("%s: %r must be a string" % (what, key))
    return value


def _req(value: Optional[str]) -> str:
    assert value is not None
    return value


@dataclasses.dataclass
class LeaderRecord:
    """The value of ``leader``: who leads and where its node's HA port is."""

    node: str
    ha_address: str
    since: str = dataclasses.field(default_factory=now_iso)

    def to_json(self) -> bytes:
        return _dump({"node": self.node, "ha_address": self.ha_address, "since": self.since})

    @classmethod
    def from_json(cls, data: bytes) -> "LeaderRecord":
        what = "the leader record"
        obj = _load(data, what)
        return cls(node=_req(_text(obj, "node", what)),
                   ha_address=_req(_text(obj, "ha_address", what)),
                   since=_req(_text(obj, "since", what, default="")))

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class MemberRecord:
    """The value of ``members/<node>``: what an agent publishes about itself and its node."""

    node: str
    ha_address: str
    ipc: str = ""
    state: str = "unknown"
    primary: Optional[str] = None
    connected: List[str] = dataclasses.field(default_factory=list)
    health: str = HEALTH_OK
    api: Optional[str] = None
    lease: int = 0
    in_sync_with: Optional[str] = None
    paused: bool = False
    updated: str = dataclasses.field(default_factory=now_iso)

    @property
    def healthy(self) -> bool:
        return self.health == HEALTH_OK

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> bytes:
        return _dump(self.to_dict())

    def same_content(self, other: Optional["MemberRecord"]) -> bool:
        """Equal but for ``updated`` (an agent republishes only when this is false)."""
        if other is None:
            return False
        return dataclasses.replace(self, updated="") == dataclasses.replace(other, updated="")

    @classmethod
    def from_json(cls, data: bytes) -> "MemberRecord":
        what = "a member record"
        obj = _load(data, what)
        state = _req(_text(obj, "state", what, default=UNKNOWN))
        if state not in STATE_NAMES:
            state = UNKNOWN
        connected = obj.get("connected", [])
        if not isinstance(connected, list) or not all(isinstance(c, str) for c in connected):
            raise RecordError("%s: 'connected' must be a list of strings" % what)
        lease = obj.get("lease", 0)
        if isinstance(lease, str) and lease.isdigit():
            lease = int(lease)
        if isinstance(lease, bool) or not isinstance(lease, int):
            raise RecordError("%s: 'lease' must be an integer" % what)
        return cls(node=_req(_text(obj, "node", what)),
                   ha_address=_req(_text(obj, "ha_address", what, default="")),
                   ipc=_req(_text(obj, "ipc", what, default="")),
                   state=state,
                   primary=_text(obj, "primary", what, optional=True),
                   connected=list(connected),
                   health=_req(_text(obj, "health", what, default=HEALTH_OK)),
                   api=_text(obj, "api", what, optional=True),
                   lease=lease,
                   in_sync_with=_text(obj, "in_sync_with", what, optional=True),
                   paused=bool(obj.get("paused", False)),
                   updated=_req(_text(obj, "updated", what, default="")))


@dataclasses.dataclass
class PauseRecord:
    """The value of ``pause``: the cluster is in maintenance (the agents order nothing)."""

    since: str = dataclasses.field(default_factory=now_iso)
    by: str = "operator"

    def to_json(self) -> bytes:
        return _dump({"since": self.since, "by": self.by})

    @classmethod
    def from_json(cls, data: bytes) -> "PauseRecord":
        what = "the pause record"
        try:
            obj = _load(data, what)
        except RecordError:
            return cls(since="", by="?")   # any value at the key pauses the cluster
        return cls(since=str(obj.get("since", "")), by=str(obj.get("by", "")))

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


REQUEST_KINDS = ("switchover", "failover")


@dataclasses.dataclass
class RequestRecord:
    """The value of ``request``: an operator's switchover or failover."""

    kind: str
    from_node: Optional[str]
    to: Optional[str]
    id: str
    requested: str = dataclasses.field(default_factory=now_iso)

    def to_dict(self) -> Dict[str, Any]:
        return {"kind": self.kind, "from": self.from_node, "to": self.to, "id": self.id,
                "requested": self.requested}

    def to_json(self) -> bytes:
        return _dump(self.to_dict())

    @classmethod
    def from_json(cls, data: bytes) -> "RequestRecord":
        what = "the request record"
        obj = _load(data, what)
        kind = _req(_text(obj, "kind", what))
        if kind not in REQUEST_KINDS:
            raise RecordError("%s: unknown kind %r" % (what, kind))
        return cls(kind=kind, from_node=_text(obj, "from", what, optional=True),
                   to=_text(obj, "to", what, optional=True),
                   id=_req(_text(obj, "id", what, default="")),
                   requested=_req(_text(obj, "requested", what, default="")))


# ---------------------------------------------------------------- a snapshot of a cluster


class KVLike(Protocol):
    """What :class:`Snapshot` needs of a key-value (``confd_ha.agent.etcd.KV``)."""

    key: str
    value: bytes
    mod_revision: int
    lease: int


@dataclasses.dataclass
class Snapshot:
    """Everything under a cluster's prefix at one etcd revision."""

    revision: int
    leader: Optional[LeaderRecord] = None
    leader_rev: int = 0
    leader_lease: int = 0
    members: Dict[str, MemberRecord] = dataclasses.field(default_factory=dict)
    member_revs: Dict[str, int] = dataclasses.field(default_factory=dict)
    pause: Optional[PauseRecord] = None
    request: Optional[RequestRecord] = None
    request_rev: int = 0
    problems: List[str] = dataclasses.field(default_factory=list)

    @property
    def paused(self) -> bool:
        return self.pause is not None

    @classmethod
    def parse(cls, keys: Keys, revision: int, kvs: List[Any]) -> "Snapshot":
        """Build a snapshot from ``get_prefix(keys.prefix)``'s result. Unparsable values are
        skipped and described in :attr:`problems` (a malformed ``request`` is ignored; a
        malformed ``leader`` still counts as a leader, named ``"?"``)."""
        snap = cls(revision=revision)
        for kv in kvs:
            key = kv.key if isinstance(kv.key, str) else kv.key.decode("utf-8", "replace")
            try:
                if key == keys.leader:
                    snap.leader_rev, snap.leader_lease = kv.mod_revision, kv.lease
                    try:
                        snap.leader = LeaderRecord.from_json(kv.value)
                    except RecordError:
                        snap.leader = LeaderRecord(node="?", ha_address="", since="")
                        raise
                elif key == keys.pause:
                    snap.pause = PauseRecord.from_json(kv.value)
                elif key == keys.request:
                    snap.request_rev = kv.mod_revision
                    snap.request = RequestRecord.from_json(kv.value)
                else:
                    node = keys.member_node(key)
                    if node is not None:
                        rec = MemberRecord.from_json(kv.value)
                        snap.members[node] = rec
                        snap.member_revs[node] = kv.mod_revision
            except RecordError as exc:
                snap.problems.append("%s: %s" % (key, exc))
        return snap

    def member_list(self) -> List[Dict[str, Any]]:
        return [self.members[n].to_dict() for n in sorted(self.members)]

