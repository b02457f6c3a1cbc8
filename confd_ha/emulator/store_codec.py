"""The datastore's content and its encodings: paths, values, transaction ids, change sets and
snapshots, validated strictly (the bytes of replication come from peers, those of the journal
from a disk), and how a change set is applied to the path → value map.

Both encodings are UTF-8 JSON: a change set ``[["set", path, value] | ["delete", path], …]``,
a snapshot ``{"store": 1, "data": [[path, value], …]}``.
"""

from __future__ import annotations

import json
import re
from typing import Any, Union

__all__ = ["Change", "INITIAL_TXID", "INVALID_TXID", "encode_changes", "decode_changes",
           "dumps", "loads", "check_path", "check_value", "check_txid", "check_commit_txid",
           "check_changes", "check_pairs", "check_counter", "changes_to_json",
           "encode_snapshot", "decode_snapshot", "sort_key", "apply"]

INITIAL_TXID = "initial"
"""Transaction id of a fresh, empty store (B-14): two fresh nodes join without a copy."""

INVALID_TXID = "invalid"
"""Transaction id of a store whose content is in doubt (B-14): it must take a full copy."""

DEFAULT_COMPACT_AFTER = 1000
"""Journal records after which the journal is rewritten as one snapshot record."""

Change = Union[tuple[str, str, str], tuple[str, str]]
"""One operation of a change set: ``("set", path, value)`` or ``("delete", path)``."""

_MAX_PATH = 4096
_MAX_TXID = 1024
_SNAPSHOT_VERSION = 1

# Control characters would make paths ambiguous in logs and CLI output; lone surrogates cannot be
# encoded as UTF-8 and therefore could never be journaled or replicated.
_BAD_PATH_CHARS = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")
_SURROGATES = re.compile("[\ud800-\udfff]")


# --------------------------------------------------------------------------------------------
# Validation (shared by local calls, decoders and journal replay)


def check_path(path: object, *, root_ok: bool = False) -> str:
    if not isinstance(path, str):
        raise ValueError(f"path must be a str, not {type(path).__name__}")
    path = str(path)  # drop str subclasses such as Atom
    if root_ok and path == "/":
        return path
    if not path.startswith("/"):
        raise ValueError(f"path {path!r} must start with '/'")
    if len(path) > _MAX_PATH:
        raise ValueError(f"path is longer than {_MAX_PATH} characters")
    if "" in path[1:].split("/"):
        raise ValueError(f"path {path!r} has an empty component (a '//', a trailing '/' or just '/')")
    if _BAD_PATH_CHARS.search(path):
        raise ValueError(f"path {path!r} contains a control character or a lone surrogate")
    return path


def check_value(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"value must be a str, not {type(value).__name__}")
    if _SURROGATES.search(value):
        raise ValueError("value contains a lone surrogate (not encodable as UTF-8)")
    return str(value)


def check_txid(txid: object) -> str:
    if not isinstance(txid, str):
        raise ValueError(f"transaction id must be a str, not {type(txid).__name__}")
    if not 0 < len(txid) <= _MAX_TXID:
        raise ValueError(f"transaction id must have 1 to {_MAX_TXID} characters")
    if _BAD_PATH_CHARS.search(txid):
        raise ValueError(f"transaction id {txid!r} contains a control character or a lone surrogate")
    return str(txid)


def check_commit_txid(txid: object) -> str:
    txid = check_txid(txid)
    # The special ids describe a store's state, never a commit: committing under "initial" would
    # make a node with data look fresh, and "invalid" is only ever set by invalidate().
    if txid in (INITIAL_TXID, INVALID_TXID):
        raise ValueError(f"transaction id {txid!r} is reserved and cannot be committed")
    return txid


def check_changes(changes: object) -> list[Change]:
    if not isinstance(changes, (list, tuple)):
        raise ValueError(f"a change set must be a list, not {type(changes).__name__}")
    ops: list[Change] = []
    for i, op in enumerate(changes):
        try:
            if not isinstance(op, (list, tuple)) or not op:
                raise ValueError("must be a non-empty tuple or list")
            kind = op[0]
            if not isinstance(kind, str) or kind not in ("set", "delete"):
                raise ValueError(f"unknown operation {kind!r} (expected 'set' or 'delete')")
            if kind == "set":
                if len(op) != 3:
                    raise ValueError("'set' takes exactly a path and a value")
                ops.append(("set", check_path(op[1]), check_value(op[2])))
            else:
                if len(op) != 2:
                    raise ValueError("'delete' takes exactly a path")
                ops.append(("delete", check_path(op[1], root_ok=True)))
        except ValueError as exc:
            raise ValueError(f"change #{i}: {exc}") from None
    return ops


def check_pairs(pairs: object) -> dict[str, str]:
    if not isinstance(pairs, list):
        raise ValueError("snapshot data must be a list of [path, value] pairs")
    data: dict[str, str] = {}
    for i, pair in enumerate(pairs):
        if not isinstance(pair, list) or len(pair) != 2:
            raise ValueError(f"snapshot entry #{i} is not a [path, value] pair")
        try:
            path = check_path(pair[0])
            value = check_value(pair[1])
        except ValueError as exc:
            raise ValueError(f"snapshot entry #{i}: {exc}") from None
        if path in data:
            raise ValueError(f"snapshot entry #{i}: duplicate path {path!r}")
        data[path] = value
    return data


def check_counter(n: object) -> int:
    # bool is an int subclass; JSON true must not pass for a counter.
    if type(n) is not int or n < 0:
        raise ValueError("counter must be a non-negative integer")
    return n


# --------------------------------------------------------------------------------------------
# Encodings


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate key in JSON object")
    return obj


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def loads(raw: object, what: str) -> Any:
    if isinstance(raw, (bytearray, memoryview)):
        raw = bytes(raw)
    if not isinstance(raw, bytes):
        raise ValueError(f"{what} must be bytes, not {type(raw).__name__}")
    try:
        return json.loads(raw.decode("utf-8"), object_pairs_hook=_unique_object, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError(f"{what} is nested too deeply") from None
    except ValueError as exc:  # includes UnicodeDecodeError and JSONDecodeError
        raise ValueError(f"{what} is not valid: {exc}") from None


def changes_to_json(ops: list[Change]) -> list[list[str]]:
    return [list(op) for op in ops]


def encode_changes(changes: list[Change]) -> bytes:
    """Encode a change set for replication (``Changes`` of ``ha_trans``); validates it first."""
    return dumps(changes_to_json(check_changes(changes)))


def decode_changes(raw: bytes) -> list[Change]:
    """Decode :func:`encode_changes` output; any malformed input raises ``ValueError``."""
    obj = loads(raw, "change set")
    if not isinstance(obj, list):
        raise ValueError("change set must be a JSON list")
    return check_changes(obj)


def encode_snapshot(data: dict[str, str]) -> bytes:
    return dumps({"store": _SNAPSHOT_VERSION, "data": sorted(data.items(), key=sort_key)})


def decode_snapshot(raw: bytes) -> dict[str, str]:
    obj = loads(raw, "snapshot")
    if not isinstance(obj, dict) or set(obj) != {"store", "data"}:
        raise ValueError("snapshot must be an object with exactly the keys 'store' and 'data'")
    if type(obj["store"]) is not int or obj["store"] != _SNAPSHOT_VERSION:
        raise ValueError(f"unsupported snapshot version {obj['store']!r}")
    return check_pairs(obj["data"])


def sort_key(item: tuple[str, str] | str) -> list[str]:
    # Sort component-wise so that a subtree stays contiguous: plain string order would put
    # "/a-b" between "/a" and "/a/b" because '-' sorts before '/'.
    path = item if isinstance(item, str) else item[0]
    return path.split("/")


def apply(data: dict[str, str], ops: list[Change]) -> None:
    for op in ops:
        if op[0] == "set":
            data[op[1]] = op[2]  # type: ignore[misc]
        elif op[1] == "/":
            data.clear()
        else:
            path = op[1]
            data.pop(path, None)
            below = path + "/"
            for key in [k for k in data if k.startswith(below)]:
                del data[key]
