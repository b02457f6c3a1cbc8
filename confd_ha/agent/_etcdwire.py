"""etcd's v3 JSON gateway, the wire format (private to :mod:`confd_ha.agent.etcd`).

Keys and values travel base64-encoded, int64s as decimal strings, fields equal to their zero
value are left out; an error is answered as ``{"error": ..., "code": <gRPC code>}`` (unary
calls) or ``{"error": {"grpc_code": ..., "message": ...}}`` (stream messages). The public
types are re-exported by :mod:`confd_ha.agent.etcd`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple, Union

import httpx

Doc = Dict[str, Any]

DEFAULT_MAX_RESPONSE = 8 << 20
"""Bytes an answer (or one message of a watch stream) may have."""

TRANSIENT = {1, 4, 8, 14}
"""gRPC codes after which another member may well succeed: CANCELLED, DEADLINE_EXCEEDED,
RESOURCE_EXHAUSTED ("too many requests"), UNAVAILABLE (no leader, request timed out, …)."""

_FIELDS = {"MOD": "mod_revision", "CREATE": "create_revision", "VERSION": "version",
           "LEASE": "lease", "VALUE": "value"}
HEADERS = {"content-type": "application/json", "accept-encoding": "identity"}
INT_RE = re.compile(r"-?[0-9]{1,20}")


class EtcdError(Exception):
    """A failed etcd request.

    ``unavailable``: no endpoint gave a usable answer in time (or the outcome of a write is
    unknown); the state in etcd is unknown. ``lost``: etcd says the lease is gone.
    ``code``: etcd's gRPC status code when etcd answered with an error.
    ``compact_revision``: a watch's start revision was compacted (etcd keeps revisions from
    this one on)."""

    def __init__(self, message: str, *, unavailable: bool = False, lost: bool = False,
                 code: Optional[int] = None, compact_revision: int = 0) -> None:
        super().__init__(message)
        self.unavailable = unavailable
        self.lost = lost
        self.code = code
        self.compact_revision = compact_revision


@dataclass(frozen=True)
class Lease:
    """A granted lease: its id and its TTL in seconds."""
    id: int
    ttl: int


@dataclass(frozen=True)
class KV:
    """A key as read: ``lease`` 0 means none."""
    key: str
    value: bytes
    mod_revision: int
    create_revision: int
    lease: int


@dataclass(frozen=True)
class WatchEvent:
    """``type`` is ``"PUT"`` or ``"DELETE"``; for a delete, ``kv`` has the key, an empty
    value and the revision of the delete as ``mod_revision``."""
    type: str
    kv: KV


@dataclass(frozen=True)
class Compare:
    """A txn condition: ``target`` (``"MOD"``, ``"CREATE"``, ``"VERSION"``, ``"LEASE"``:
    an int; ``"VALUE"``: bytes) of ``key`` compared (``"EQUAL"``, ``"NOT_EQUAL"``,
    ``"GREATER"``, ``"LESS"``) with ``value``."""
    key: str
    target: str
    value: Union[int, bytes]
    result: str = "EQUAL"

    def __post_init__(self) -> None:
        if self.target not in _FIELDS or self.result not in ("EQUAL", "NOT_EQUAL", "GREATER",
                                                              "LESS"):
            raise ValueError("bad compare: %s %s" % (self.target, self.result))
        if isinstance(self.value, bytes) != (self.target == "VALUE"):
            raise ValueError("compare %s takes %s" % (
                self.target, "bytes" if self.target == "VALUE" else "an int"))

    @classmethod
    def mod(cls, key: str, revision: int) -> "Compare":
        """The key was last modified at ``revision``."""
        return cls(key, "MOD", revision)

    @classmethod
    def absent(cls, key: str) -> "Compare":
        """The key does not exist."""
        return cls(key, "CREATE", 0)

    def json(self) -> Doc:
        value = self.value
        operand = b64e(value) if isinstance(value, bytes) else str(value)
        return {"key": b64e(kb(self.key)), "target": self.target, "result": self.result,
                _FIELDS[self.target]: operand}


@dataclass(frozen=True)
class Put:
    key: str
    value: bytes
    lease: int = 0

    def json(self) -> Doc:
        return {"request_put": put_body(self.key, self.value, self.lease)}


@dataclass(frozen=True)
class Delete:
    key: str

    def json(self) -> Doc:
        return {"request_delete_range": {"key": b64e(kb(self.key))}}


class Attempt(Exception):
    """One endpoint gave no usable answer. ``sent``: the request may have been applied."""

    def __init__(self, why: str, sent: bool = True) -> None:
        super().__init__(why)
        self.sent = sent


# ---------------------------------------------------------------- JSON helpers


def kb(key: str) -> bytes:
    return key.encode("utf-8", "surrogateescape")


def b64e(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64d(text: Any) -> bytes:
    if not isinstance(text, str):
        raise TypeError("base64 field is %s, not a string" % type(text).__name__)
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        raise ValueError("not base64: %r" % text[:40]) from None


def to_int(value: Any) -> int:
    """An int64 as etcd writes it: a decimal string (or a number); absent = 0."""
    if value is None:
        return 0
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and INT_RE.fullmatch(value):
        return int(value)
    raise ValueError("not an integer: %r" % (value,))


def succeeded(doc: Doc) -> bool:
    """A txn answer's ``succeeded`` (absent: false)."""
    value = doc.get("succeeded", False)
    if not isinstance(value, bool):
        raise TypeError("succeeded is %r" % (value,))
    return value


def as_dict(value: Any) -> Doc:
    if not isinstance(value, dict):
        raise TypeError("expected a JSON object, got %s" % type(value).__name__)
    return value


def revision(doc: Doc) -> int:
    return to_int(as_dict(doc["header"]).get("revision"))


def kv_of(doc: Any) -> KV:
    d = as_dict(doc)
    return KV(key=b64d(d["key"]).decode("utf-8", "surrogateescape"),
              value=b64d(d.get("value", "")), mod_revision=to_int(d.get("mod_revision")),
              create_revision=to_int(d.get("create_revision")), lease=to_int(d.get("lease")))


def kvs_of(doc: Doc) -> List[KV]:
    kvs = doc.get("kvs", [])
    if not isinstance(kvs, list):
        raise TypeError("kvs is not a list")
    return [kv_of(k) for k in kvs]


def put_body(key: str, value: bytes, lease: int) -> Doc:
    body: Doc = {"key": b64e(kb(key)), "value": b64e(value)}
    if lease:
        body["lease"] = str(lease)
    return body


def prefix_range(prefix: str) -> Tuple[str, str]:
    """(key, range_end) in base64 for every key starting with ``prefix``."""
    raw = kb(prefix)
    end = bytearray(raw)
    while end and end[-1] == 0xFF:
        end.pop()
    if not end:  # "" or all 0xff: to the end of the key space
        return b64e(raw or b"\0"), b64e(b"\0")
    end[-1] += 1
    return b64e(raw), b64e(bytes(end))


def decode(raw: bytes, status: int) -> Doc:
    """An answer (or one stream message) as a dict: an etcd error raises EtcdError (definite)
    or Attempt (transient); anything that is not an etcd answer raises Attempt."""
    try:
        parsed = json.loads(raw)
    except (ValueError, RecursionError):
        raise Attempt("answer is not JSON (HTTP %d): %r" % (status, raw[:80])) from None
    if not isinstance(parsed, dict):
        raise Attempt("answer is not a JSON object (HTTP %d): %r" % (status, raw[:80]))
    doc: Doc = parsed
    if isinstance(doc.get("result"), dict):  # a stream message
        doc = doc["result"]
    err = doc.get("error")
    if err:
        if isinstance(err, dict):
            message, code = err.get("message") or err, err.get("grpc_code", err.get("code"))
        else:
            message, code = doc.get("message") or err, doc.get("code")
        code = code if isinstance(code, int) and not isinstance(code, bool) else None
        text = "etcd: %s (code %s)" % (str(message)[:300], code)
        if code in TRANSIENT or code is None and status >= 500:
            raise Attempt(text, sent=code != 8)
        raise EtcdError(text, code=code, lost=code == 5 and "lease" in str(message))
    if status != 200:
        raise Attempt("HTTP %d without an etcd error: %r" % (status, raw[:80]))
    return doc


def transport(exc: BaseException) -> Attempt:
    not_sent = isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))
    why = str(exc) or type(exc).__name__
    return Attempt(("cannot connect: %s" if not_sent else "%s") % why, sent=not not_sent)


async def read_body(resp: httpx.Response, limit: int, first_line: bool) -> bytes:
    """The body (or its first line), at most ``limit`` bytes, not decoded."""
    encoding = resp.headers.get("content-encoding", "identity").lower()
    if encoding != "identity":
        raise Attempt("answer has content-encoding %r" % encoding)
    length = resp.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise Attempt("answer of %s bytes is larger than %d" % (length, limit))
    buf = bytearray()
    async for chunk in resp.aiter_raw():
        buf += chunk
        if first_line and b"\n" in buf:
            return bytes(buf[:buf.index(b"\n")])
        if len(buf) > limit:
            raise Attempt("answer is larger than %d bytes" % limit)
    return bytes(buf)
