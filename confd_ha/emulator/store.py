"""Configuration datastore of an emulated node: the CDB stand-in (spec B-14, B-23, B-29, B-30).

A :class:`Store` maps hierarchical paths (``/system/hostname``) to string values and carries the
cluster transaction id of its content. Change sets are committed atomically and, when the store
has a data directory, made durable in an append-only journal before :meth:`Store.commit` returns,
so a killed and restarted node comes back with its data and transaction id (B-23).

Replication helpers: :meth:`Store.snapshot` / :meth:`Store.install_snapshot` for full copies and
:func:`encode_changes` / :func:`decode_changes` for per-transaction replication (spec §12.3).
Both encodings are UTF-8 JSON, opaque to the inter-node protocol; decoders validate strictly
because the bytes come from peers.

Journal layout (file ``journal`` in the data directory)::

    magic   b"confd_ha-journal-1\\n"
    record  >I payload length | >I CRC32(payload) | >I CRC32(the 8 bytes before) | payload (JSON)
    kinds   {"t":"snap","txid","n","data"}  {"t":"commit","txid","changes"}
            {"t":"invalidate"}  {"t":"counter","n"}

A journal always begins with one ``snap`` record; compaction rewrites it as a single ``snap``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import struct
import time
import zlib
from typing import Any, Union

try:
    import fcntl
except ImportError:  # pragma: no cover - non-POSIX: run without the directory lock
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "Change",
    "DEFAULT_COMPACT_AFTER",
    "INITIAL_TXID",
    "INVALID_TXID",
    "JournalCorruptError",
    "Store",
    "StoreError",
    "StoreLockedError",
    "decode_changes",
    "encode_changes",
]

_log = logging.getLogger(__name__)

INITIAL_TXID = "initial"
"""Transaction id of a fresh, empty store (B-14): two fresh nodes join without a copy."""

INVALID_TXID = "invalid"
"""Transaction id of a store whose content is in doubt (B-14): it must take a full copy."""

DEFAULT_COMPACT_AFTER = 1000
"""Journal records after which the journal is rewritten as one snapshot record."""

Change = Union[tuple[str, str, str], tuple[str, str]]
"""One operation of a change set: ``("set", path, value)`` or ``("delete", path)``."""

_JOURNAL = "journal"
_JOURNAL_TMP = "journal.tmp"
_LOCK = "lock"
_MAGIC = b"confd_ha-journal-1\n"
_HEADER = struct.Struct(">III")
_MAX_RECORD = 1 << 30
_MAX_PATH = 4096
_MAX_TXID = 1024
_SNAPSHOT_VERSION = 1

# Control characters would make paths ambiguous in logs and CLI output; lone surrogates cannot be
# encoded as UTF-8 and therefore could never be journaled or replicated.
_BAD_PATH_CHARS = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")
_SURROGATES = re.compile("[\ud800-\udfff]")


class StoreError(Exception):
    """Base class of datastore failures that are not bad arguments (those raise ``ValueError``)."""


class JournalCorruptError(StoreError):
    """The journal is damaged somewhere other than a torn last record; it is left untouched."""

    def __init__(self, path: str, offset: int, reason: str) -> None:
        super().__init__(f"journal {path!r} is corrupt at byte offset {offset}: {reason}")
        self.path = path
        self.offset = offset
        self.reason = reason


class StoreLockedError(StoreError):
    """Another open :class:`Store` (in this or another process) already uses the data directory."""


# --------------------------------------------------------------------------------------------
# Validation (shared by local calls, decoders and journal replay)


def _check_path(path: object, *, root_ok: bool = False) -> str:
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


def _check_value(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"value must be a str, not {type(value).__name__}")
    if _SURROGATES.search(value):
        raise ValueError("value contains a lone surrogate (not encodable as UTF-8)")
    return str(value)


def _check_txid(txid: object) -> str:
    if not isinstance(txid, str):
        raise ValueError(f"transaction id must be a str, not {type(txid).__name__}")
    if not 0 < len(txid) <= _MAX_TXID:
        raise ValueError(f"transaction id must have 1 to {_MAX_TXID} characters")
    if _BAD_PATH_CHARS.search(txid):
        raise ValueError(f"transaction id {txid!r} contains a control character or a lone surrogate")
    return str(txid)


def _check_commit_txid(txid: object) -> str:
    txid = _check_txid(txid)
    # The special ids describe a store's state, never a commit: committing under "initial" would
    # make a node with data look fresh, and "invalid" is only ever set by invalidate().
    if txid in (INITIAL_TXID, INVALID_TXID):
        raise ValueError(f"transaction id {txid!r} is reserved and cannot be committed")
    return txid


def _check_changes(changes: object) -> list[Change]:
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
                ops.append(("set", _check_path(op[1]), _check_value(op[2])))
            else:
                if len(op) != 2:
                    raise ValueError("'delete' takes exactly a path")
                ops.append(("delete", _check_path(op[1], root_ok=True)))
        except ValueError as exc:
            raise ValueError(f"change #{i}: {exc}") from None
    return ops


def _check_pairs(pairs: object) -> dict[str, str]:
    if not isinstance(pairs, list):
        raise ValueError("snapshot data must be a list of [path, value] pairs")
    data: dict[str, str] = {}
    for i, pair in enumerate(pairs):
        if not isinstance(pair, list) or len(pair) != 2:
            raise ValueError(f"snapshot entry #{i} is not a [path, value] pair")
        try:
            path = _check_path(pair[0])
            value = _check_value(pair[1])
        except ValueError as exc:
            raise ValueError(f"snapshot entry #{i}: {exc}") from None
        if path in data:
            raise ValueError(f"snapshot entry #{i}: duplicate path {path!r}")
        data[path] = value
    return data


def _check_counter(n: object) -> int:
    # bool is an int subclass; JSON true must not pass for a counter.
    if type(n) is not int or n < 0:
        raise ValueError("counter must be a non-negative integer")
    return n


# --------------------------------------------------------------------------------------------
# Encodings


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate key in JSON object")
    return obj


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _loads(raw: object, what: str) -> Any:
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


def _changes_to_json(ops: list[Change]) -> list[list[str]]:
    return [list(op) for op in ops]


def encode_changes(changes: list[Change]) -> bytes:
    """Encode a change set for replication (``Changes`` of ``ha_trans``); validates it first."""
    return _dumps(_changes_to_json(_check_changes(changes)))


def decode_changes(raw: bytes) -> list[Change]:
    """Decode :func:`encode_changes` output; any malformed input raises ``ValueError``."""
    obj = _loads(raw, "change set")
    if not isinstance(obj, list):
        raise ValueError("change set must be a JSON list")
    return _check_changes(obj)


def _encode_snapshot(data: dict[str, str]) -> bytes:
    return _dumps({"store": _SNAPSHOT_VERSION, "data": sorted(data.items(), key=_sort_key)})


def _decode_snapshot(raw: bytes) -> dict[str, str]:
    obj = _loads(raw, "snapshot")
    if not isinstance(obj, dict) or set(obj) != {"store", "data"}:
        raise ValueError("snapshot must be an object with exactly the keys 'store' and 'data'")
    if type(obj["store"]) is not int or obj["store"] != _SNAPSHOT_VERSION:
        raise ValueError(f"unsupported snapshot version {obj['store']!r}")
    return _check_pairs(obj["data"])


def _frame(payload: bytes) -> bytes:
    head = struct.pack(">II", len(payload), zlib.crc32(payload))
    return head + struct.pack(">I", zlib.crc32(head)) + payload


def _sort_key(item: tuple[str, str] | str) -> list[str]:
    # Sort component-wise so that a subtree stays contiguous: plain string order would put
    # "/a-b" between "/a" and "/a/b" because '-' sorts before '/'.
    path = item if isinstance(item, str) else item[0]
    return path.split("/")


def _apply(data: dict[str, str], ops: list[Change]) -> None:
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


def _write_all(fd: int, buf: bytes) -> None:
    view = memoryview(buf)
    while view:
        view = view[os.write(fd, view) :]


def _fsync_dir(path: str) -> None:
    # The rename of a compacted journal is durable only once its directory entry is.
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms that cannot open directories
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------------------------


class Store:
    """A node's configuration datastore with a transaction id; journaled in ``data_dir``.

    ``Store(None)`` keeps everything in memory. ``Store(path)`` creates the directory if needed,
    takes an exclusive lock on it, replays the journal (dropping a torn last record) and appends
    every change to it. Use as a context manager or call :meth:`close` to release the lock.
    """

    def __init__(self, data_dir: str | os.PathLike[str] | None = None, *,
                 compact_after: int = DEFAULT_COMPACT_AFTER) -> None:
        if type(compact_after) is not int or compact_after < 1:
            raise ValueError("compact_after must be a positive integer")
        self._data: dict[str, str] = {}
        self._txid = INITIAL_TXID
        self._counter = 0
        self._compact_after = compact_after
        self._dir = None if data_dir is None else os.fspath(data_dir)
        self._fd: int | None = None  # O_APPEND descriptor of the journal
        self._lock_fd: int | None = None
        self._size = 0  # journal length in bytes, to cut off a failed append
        self._records = 0  # records in the journal, for compaction
        self._closed = False
        self._broken: str | None = None
        if self._dir is not None:
            self._open_dir(self._dir)

    # ---- reads

    @property
    def txid(self) -> str:
        """Transaction id of the current content (``"initial"``, ``"invalid"`` or a commit's)."""
        return self._txid

    @property
    def counter(self) -> int:
        """Number of ids handed out by :meth:`new_txid` over the store's whole life."""
        return self._counter

    @property
    def data_dir(self) -> str | None:
        """The data directory, or ``None`` for an in-memory store."""
        return self._dir

    @property
    def closed(self) -> bool:
        """True after :meth:`close`; a closed store still answers reads but refuses writes."""
        return self._closed

    def get(self, path: str) -> str | None:
        """The value stored at exactly ``path``, or ``None``."""
        return self._data.get(_check_path(path))

    def exists(self, path: str) -> bool:
        """True if ``path`` holds a value or has anything below it (``"/"``: store not empty)."""
        path = _check_path(path, root_ok=True)
        if path == "/":
            return bool(self._data)
        if path in self._data:
            return True
        below = path + "/"
        return any(k.startswith(below) for k in self._data)

    def items(self, prefix: str = "/") -> list[tuple[str, str]]:
        """``(path, value)`` pairs at or below ``prefix``, sorted component-wise by path."""
        prefix = _check_path(prefix, root_ok=True)
        if prefix == "/":
            found = list(self._data.items())
        else:
            below = prefix + "/"
            found = [(k, v) for k, v in self._data.items() if k == prefix or k.startswith(below)]
        found.sort(key=_sort_key)
        return found

    def __len__(self) -> int:
        return len(self._data)

    def snapshot(self) -> tuple[str, bytes]:
        """``(txid, blob)``: the full content for a copy to a joining secondary (``ha_sync``)."""
        return self._txid, _encode_snapshot(self._data)

    # ---- writes

    def new_txid(self, node_name: str) -> str:
        """A fresh opaque transaction id ``"<node>-<counter>-<time_ns>"`` (B-14)."""
        if not isinstance(node_name, str) or not node_name:
            raise ValueError("node name must be a non-empty str")
        self._check_writable()
        counter = self._counter + 1
        txid = _check_txid(f"{node_name}-{counter}-{time.time_ns()}")
        # Not fsynced on its own: the commit that uses the id fsyncs it, and an id that was never
        # committed is harmless to repeat after a power loss (the timestamp differs anyway).
        self._append({"t": "counter", "n": counter}, sync=False)
        self._counter = counter
        self._maybe_compact()
        return txid

    def commit(self, changes: list[Change], txid: str) -> None:
        """Apply a change set atomically and record ``txid``; durable when it returns.

        Every operation is validated before anything changes, so a bad change set raises
        ``ValueError`` and leaves both the content and the journal untouched.
        """
        ops = _check_changes(changes)
        txid = _check_commit_txid(txid)
        self._check_writable()
        self._append({"t": "commit", "txid": txid, "changes": _changes_to_json(ops)})
        _apply(self._data, ops)
        self._txid = txid
        self._maybe_compact()

    def invalidate(self) -> None:
        """Set the transaction id to ``"invalid"`` (durably), forcing a full copy on next join."""
        self._check_writable()
        if self._txid == INVALID_TXID:
            return
        self._append({"t": "invalidate"})
        self._txid = INVALID_TXID
        self._maybe_compact()

    def install_snapshot(self, txid: str, blob: bytes) -> None:
        """Replace the whole content and transaction id with a primary's :meth:`snapshot`.

        The blob is validated completely first (``ValueError`` on anything malformed); the
        replacement is atomic, also on disk, where it compacts the journal.
        """
        txid = _check_txid(txid)
        data = _decode_snapshot(blob)
        self._check_writable()
        if self._dir is None:
            self._data, self._txid = data, txid
        else:
            self._rewrite(data, txid)

    def compact(self) -> None:
        """Rewrite the journal as a single snapshot record (no-op for an in-memory store)."""
        self._check_writable()
        if self._dir is not None:
            self._rewrite(self._data, self._txid)

    def close(self) -> None:
        """Close the journal and release the directory lock; idempotent."""
        if self._closed:
            return
        self._closed = True
        for fd in (self._fd, self._lock_fd):
            if fd is not None:
                os.close(fd)
        self._fd = self._lock_fd = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = "memory" if self._dir is None else repr(self._dir)
        return f"<Store {where} txid={self._txid!r} paths={len(self._data)}>"

    # ---- journal internals

    def _check_writable(self) -> None:
        if self._closed:
            raise StoreError("store is closed")
        if self._broken is not None:
            raise StoreError(f"store refuses writes after a journal failure: {self._broken}")

    def _open_dir(self, data_dir: str) -> None:
        os.makedirs(data_dir, exist_ok=True)
        self._lock_dir(data_dir)
        try:
            tmp = os.path.join(data_dir, _JOURNAL_TMP)
            if os.path.exists(tmp):
                # A compaction died before its rename; the journal itself is still complete.
                os.unlink(tmp)
            path = os.path.join(data_dir, _JOURNAL)
            try:
                with open(path, "rb") as f:
                    raw = f.read()
            except FileNotFoundError:
                self._rewrite({}, INITIAL_TXID)
                return
            end = self._replay(path, raw)
            if end < len(raw):
                _log.warning("journal %s: dropping a torn last record (%d bytes)", path, len(raw) - end)
                with open(path, "r+b") as f:
                    f.truncate(end)
                    f.flush()
                    os.fsync(f.fileno())
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND)
            self._size = end
        except BaseException:
            self.close()
            raise

    def _lock_dir(self, data_dir: str) -> None:
        if fcntl is None:  # pragma: no cover
            return
        fd = os.open(os.path.join(data_dir, _LOCK), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise StoreLockedError(f"data directory {data_dir!r} is in use by another open Store") from None
        self._lock_fd = fd

    def _replay(self, path: str, raw: bytes) -> int:
        """Rebuild the state from journal bytes; returns where the valid records end."""
        if not raw.startswith(_MAGIC):
            raise JournalCorruptError(path, 0, "missing journal header (not a confd_ha journal?)")
        off = len(_MAGIC)
        size = len(raw)
        hsize = _HEADER.size
        while off < size:
            # Only the last record can be incomplete: each record is fsynced before the next one
            # is written, so anything that ends at EOF is a torn tail, anything else corruption.
            if size - off < hsize:
                break
            length, crc, head_crc = _HEADER.unpack_from(raw, off)
            if zlib.crc32(raw[off : off + 8]) != head_crc:
                if not raw[off:].strip(b"\0"):
                    break  # file extended with zeros by a crash before the data landed
                raise JournalCorruptError(path, off, "record header checksum mismatch")
            if length > _MAX_RECORD:
                raise JournalCorruptError(path, off, f"record length {length} is implausible")
            end = off + hsize + length
            if end > size:
                break
            payload = raw[off + hsize : end]
            if zlib.crc32(payload) != crc:
                if end == size:
                    break
                raise JournalCorruptError(path, off, "record checksum mismatch")
            try:
                self._replay_record(payload)
            except ValueError as exc:
                raise JournalCorruptError(path, off, f"bad record: {exc}") from None
            self._records += 1
            off = end
        return off

    def _replay_record(self, payload: bytes) -> None:
        rec = _loads(payload, "record")
        if not isinstance(rec, dict):
            raise ValueError("record is not an object")
        kind = rec.get("t")
        keys = set(rec)
        if kind == "snap" and keys == {"t", "txid", "n", "data"}:
            txid = _check_txid(rec["txid"])
            counter = _check_counter(rec["n"])
            self._data = _check_pairs(rec["data"])
            self._txid, self._counter = txid, counter
        elif kind == "commit" and keys == {"t", "txid", "changes"}:
            txid = _check_commit_txid(rec["txid"])
            _apply(self._data, _check_changes(rec["changes"]))
            self._txid = txid
        elif kind == "invalidate" and keys == {"t"}:
            self._txid = INVALID_TXID
        elif kind == "counter" and keys == {"t", "n"}:
            self._counter = max(self._counter, _check_counter(rec["n"]))
        else:
            raise ValueError(f"unknown record kind {kind!r} or wrong keys {sorted(keys)}")

    def _append(self, record: dict[str, Any], *, sync: bool = True) -> None:
        if self._fd is None:
            return
        frame = _frame(_dumps(record))
        try:
            _write_all(self._fd, frame)
            if sync:
                os.fsync(self._fd)
        except BaseException as exc:
            # A partial record followed by later appends would read as mid-journal corruption on
            # the next open, so cut it off; if even that fails, stop writing altogether.
            try:
                os.ftruncate(self._fd, self._size)
                os.fsync(self._fd)
            except OSError as cut_exc:
                self._broken = f"could not remove a failed append ({cut_exc}) after: {exc!r}"
            raise
        self._size += len(frame)
        self._records += 1

    def _maybe_compact(self) -> None:
        if self._dir is None or self._records <= self._compact_after:
            return
        try:
            self._rewrite(self._data, self._txid)
        except OSError as exc:
            # The change itself is already durable in the journal; compaction is retried later.
            _log.warning("journal compaction in %s failed: %s", self._dir, exc)

    def _rewrite(self, data: dict[str, str], txid: str) -> None:
        """Atomically replace the journal by one snapshot record and adopt ``data``/``txid``."""
        assert self._dir is not None
        path = os.path.join(self._dir, _JOURNAL)
        tmp = os.path.join(self._dir, _JOURNAL_TMP)
        record = {"t": "snap", "txid": txid, "n": self._counter,
                  "data": sorted(data.items(), key=_sort_key)}
        content = _MAGIC + _frame(_dumps(record))
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            try:
                _write_all(fd, content)
                os.fsync(fd)
            finally:
                os.close(fd)
            new_fd = os.open(tmp, os.O_WRONLY | os.O_APPEND)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        try:
            os.replace(tmp, path)
        except BaseException:
            os.close(new_fd)
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        # From here on the new journal is the one on disk: memory must follow it even if the
        # directory fsync below fails.
        if self._fd is not None:
            os.close(self._fd)
        self._fd = new_fd
        self._size = len(content)
        self._records = 1
        self._data = dict(data)
        self._txid = txid
        _fsync_dir(self._dir)
