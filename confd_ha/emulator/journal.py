"""The journal of a datastore's data directory: an append-only file of checksummed records,
and the directory's lock.

File ``journal`` in the data directory::

    magic   b"confd_ha-journal-1\\n"
    record  >I payload length | >I CRC32(payload) | >I CRC32(the 8 bytes before) | payload (JSON)
    kinds   {"t":"snap","txid","n","data"}  {"t":"commit","txid","changes"}
            {"t":"invalidate"}  {"t":"counter","n"}

A journal always begins with one ``snap`` record; compaction rewrites it as a single ``snap``.
What the records mean is the :class:`~confd_ha.emulator.store.Store`'s; this module only
writes them durably and reads them back, dropping a torn last record.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
import zlib
from typing import Any, Callable, Optional

from .store_codec import dumps

try:
    import fcntl
except ImportError:  # pragma: no cover - non-POSIX: run without the directory lock
    fcntl = None  # type: ignore[assignment]

__all__ = ["Journal", "StoreError", "JournalCorruptError", "StoreLockedError", "MAGIC", "frame"]

_log = logging.getLogger("confd_ha.emulator.store")

_JOURNAL = "journal"
_JOURNAL_TMP = "journal.tmp"
_LOCK = "lock"
MAGIC = b"confd_ha-journal-1\n"
_HEADER = struct.Struct(">III")
_MAX_RECORD = 1 << 30


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


def frame(payload: bytes) -> bytes:
    """One journal record around ``payload``."""
    head = struct.pack(">II", len(payload), zlib.crc32(payload))
    return head + struct.pack(">I", zlib.crc32(head)) + payload


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


class Journal:
    """The journal file and lock of one data directory (created if needed).

    :meth:`open` takes the lock and replays the records; :meth:`append` adds one durably;
    :meth:`rewrite` replaces them all by one, atomically. After a failed append that could
    not be cut off, ``broken`` says why and the owner must refuse further writes.
    """

    def __init__(self, data_dir: str) -> None:
        self.dir = data_dir
        self.records = 0                # records in the file, for compaction
        self.broken: Optional[str] = None
        self._fd: Optional[int] = None  # O_APPEND descriptor of the journal
        self._lock_fd: Optional[int] = None
        self._size = 0                  # file length in bytes, to cut off a failed append

    def open(self, replay: Callable[[bytes], None]) -> bool:
        """Lock the directory and pass every record's payload to ``replay`` (a ``ValueError``
        there makes the journal corrupt). False if there is no journal yet: the owner then
        :meth:`rewrite`\\ s its initial state."""
        os.makedirs(self.dir, exist_ok=True)
        self._lock()
        try:
            tmp = os.path.join(self.dir, _JOURNAL_TMP)
            if os.path.exists(tmp):
                # A compaction died before its rename; the journal itself is still complete.
                os.unlink(tmp)
            path = os.path.join(self.dir, _JOURNAL)
            try:
                with open(path, "rb") as f:
                    raw = f.read()
            except FileNotFoundError:
                return False
            end = self._replay(path, raw, replay)
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
        return True

    def _lock(self) -> None:
        if fcntl is None:  # pragma: no cover
            return
        fd = os.open(os.path.join(self.dir, _LOCK), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise StoreLockedError(f"data directory {self.dir!r} is in use by another open Store") from None
        self._lock_fd = fd

    def _replay(self, path: str, raw: bytes, replay: Callable[[bytes], None]) -> int:
        """Replay journal bytes; returns where the valid records end."""
        if not raw.startswith(MAGIC):
            raise JournalCorruptError(path, 0, "missing journal header (not a confd_ha journal?)")
        off = len(MAGIC)
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
                replay(payload)
            except ValueError as exc:
                raise JournalCorruptError(path, off, f"bad record: {exc}") from None
            self.records += 1
            off = end
        return off

    def append(self, record: dict[str, Any], *, sync: bool = True) -> None:
        """Append one record; durable when it returns if ``sync``."""
        if self._fd is None:
            return
        data = frame(dumps(record))
        try:
            _write_all(self._fd, data)
            if sync:
                os.fsync(self._fd)
        except BaseException as exc:
            # A partial record followed by later appends would read as mid-journal corruption on
            # the next open, so cut it off; if even that fails, stop writing altogether.
            try:
                os.ftruncate(self._fd, self._size)
                os.fsync(self._fd)
            except OSError as cut_exc:
                self.broken = f"could not remove a failed append ({cut_exc}) after: {exc!r}"
            raise
        self._size += len(data)
        self.records += 1

    def rewrite(self, record: dict[str, Any], adopt: Callable[[], None]) -> None:
        """Atomically replace the journal by the one ``record``. ``adopt()`` is called once the
        new journal is the one on disk (the owner's memory must follow it then, even if the
        directory's fsync after it fails)."""
        path = os.path.join(self.dir, _JOURNAL)
        tmp = os.path.join(self.dir, _JOURNAL_TMP)
        content = MAGIC + frame(dumps(record))
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
        if self._fd is not None:
            os.close(self._fd)
        self._fd = new_fd
        self._size = len(content)
        self.records = 1
        adopt()
        _fsync_dir(self.dir)

    def close(self) -> None:
        """Close the file and release the lock; idempotent."""
        for fd in (self._fd, self._lock_fd):
            if fd is not None:
                os.close(fd)
        self._fd = self._lock_fd = None
