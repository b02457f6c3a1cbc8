"""Configuration datastore of an emulated node: the CDB stand-in (docs/ha-behaviour.md B-14,
B-23, B-29, B-30).

A :class:`Store` maps hierarchical paths (``/system/hostname``) to string values and carries the
cluster transaction id of its content. Change sets are committed atomically and, when the store
has a data directory, made durable in an append-only journal before :meth:`Store.commit` returns,
so a killed and restarted node comes back with its data and transaction id (B-23).

Replication helpers: :meth:`Store.snapshot` / :meth:`Store.install_snapshot` for full copies and
:func:`encode_changes` / :func:`decode_changes` (:mod:`.store_codec`) for per-transaction
replication (docs/ha-behaviour.md §12.3). Both encodings are UTF-8 JSON, opaque to the inter-node protocol; decoders validate strictly
because the bytes come from peers.

The journal's file format is :mod:`.journal`'s.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from .journal import Journal, JournalCorruptError, StoreError, StoreLockedError
from .store_codec import (
    INITIAL_TXID,
    INVALID_TXID,
    Change,
    apply,
    changes_to_json,
    check_changes,
    check_commit_txid,
    check_counter,
    check_pairs,
    check_path,
    check_txid,
    decode_changes,
    decode_snapshot,
    encode_changes,
    encode_snapshot,
    loads,
    sort_key,
)

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

DEFAULT_COMPACT_AFTER = 1000
"""Journal records after which the journal is rewritten as one snapshot record."""


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
        self._journal = None if self._dir is None else Journal(self._dir)
        self._closed = False
        if self._journal is not None:
            try:
                if not self._journal.open(self._replay_record):
                    self._rewrite({}, INITIAL_TXID)
            except BaseException:
                self.close()
                raise

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
        return self._data.get(check_path(path))

    def exists(self, path: str) -> bool:
        """True if ``path`` holds a value or has anything below it (``"/"``: store not empty)."""
        path = check_path(path, root_ok=True)
        if path == "/":
            return bool(self._data)
        if path in self._data:
            return True
        below = path + "/"
        return any(k.startswith(below) for k in self._data)

    def items(self, prefix: str = "/") -> list[tuple[str, str]]:
        """``(path, value)`` pairs at or below ``prefix``, sorted component-wise by path."""
        prefix = check_path(prefix, root_ok=True)
        if prefix == "/":
            found = list(self._data.items())
        else:
            below = prefix + "/"
            found = [(k, v) for k, v in self._data.items() if k == prefix or k.startswith(below)]
        found.sort(key=sort_key)
        return found

    def __len__(self) -> int:
        return len(self._data)

    def snapshot(self) -> tuple[str, bytes]:
        """``(txid, blob)``: the full content for a copy to a joining secondary (``ha_sync``)."""
        return self._txid, encode_snapshot(self._data)

    # ---- writes

    def new_txid(self, node_name: str) -> str:
        """A fresh opaque transaction id ``"<node>-<counter>-<time_ns>"`` (B-14)."""
        if not isinstance(node_name, str) or not node_name:
            raise ValueError("node name must be a non-empty str")
        self._check_writable()
        counter = self._counter + 1
        txid = check_txid(f"{node_name}-{counter}-{time.time_ns()}")
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
        ops = check_changes(changes)
        txid = check_commit_txid(txid)
        self._check_writable()
        self._append({"t": "commit", "txid": txid, "changes": changes_to_json(ops)})
        apply(self._data, ops)
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
        txid = check_txid(txid)
        data = decode_snapshot(blob)
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
        if self._journal is not None:
            self._journal.close()

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
        broken = self._journal.broken if self._journal is not None else None
        if broken is not None:
            raise StoreError(f"store refuses writes after a journal failure: {broken}")

    def _replay_record(self, payload: bytes) -> None:
        rec = loads(payload, "record")
        if not isinstance(rec, dict):
            raise ValueError("record is not an object")
        kind = rec.get("t")
        keys = set(rec)
        if kind == "snap" and keys == {"t", "txid", "n", "data"}:
            txid = check_txid(rec["txid"])
            counter = check_counter(rec["n"])
            self._data = check_pairs(rec["data"])
            self._txid, self._counter = txid, counter
        elif kind == "commit" and keys == {"t", "txid", "changes"}:
            txid = check_commit_txid(rec["txid"])
            apply(self._data, check_changes(rec["changes"]))
            self._txid = txid
        elif kind == "invalidate" and keys == {"t"}:
            self._txid = INVALID_TXID
        elif kind == "counter" and keys == {"t", "n"}:
            self._counter = max(self._counter, check_counter(rec["n"]))
        else:
            raise ValueError(f"unknown record kind {kind!r} or wrong keys {sorted(keys)}")

    def _append(self, record: dict[str, Any], *, sync: bool = True) -> None:
        if self._journal is not None:
            self._journal.append(record, sync=sync)

    def _maybe_compact(self) -> None:
        if self._journal is None or self._journal.records <= self._compact_after:
            return
        try:
            self._rewrite(self._data, self._txid)
        except OSError as exc:
            # The change itself is already durable in the journal; compaction is retried later.
            _log.warning("journal compaction in %s failed: %s", self._dir, exc)

    def _rewrite(self, data: dict[str, str], txid: str) -> None:
        """Atomically replace the journal by one snapshot record and adopt ``data``/``txid``."""
        assert self._journal is not None
        record = {"t": "snap", "txid": txid, "n": self._counter,
                  "data": sorted(data.items(), key=sort_key)}

        def adopt() -> None:
            self._data = dict(data)
            self._txid = txid

        self._journal.rewrite(record, adopt)
