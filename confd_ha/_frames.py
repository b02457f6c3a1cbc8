"""Frames without I/O: a 4-byte big-endian length, then that many bytes of payload.

:class:`FrameReader` is the one frame reader of the package, on both sides: the client's
blocking and asyncio reads (``_io``) and the emulated daemon's IPC and inter-node
connections. It is fed whatever bytes arrived and hands out complete payloads; it never
touches a socket. A header is checked by the C core (:func:`confd_ha._protocol.frame_size`)
as soon as its 4 bytes are in, before anything is kept of the payload it announces.
"""

from __future__ import annotations

from typing import NamedTuple, Optional, Union

from . import _protocol

HEADER_LEN = 4


class TooLong(NamedTuple):
    """What FrameReader.pop() gives for a frame above ``drop_above``: its payload was
    dropped, ``size`` bytes."""

    size: int


Popped = Union[bytes, TooLong, None]


class FrameReader:
    """Turns a byte stream into frame payloads.

    :meth:`feed` bytes in any pieces, then :meth:`pop` payloads until it returns None (no
    complete frame buffered). A header announcing more than ``limit`` bytes makes
    :meth:`pop` raise ``ERR_PROTOUSAGE`` (the stream cannot be resynchronised: close it).
    With ``drop_above``, a frame announcing more than that (but not above ``limit``) is
    consumed without being kept and popped as a :class:`TooLong`.

    After :meth:`pop` returned None, :attr:`needed` is how many more bytes the frame under
    way needs (the header's, then the payload's), so a blocking reader can ask for exactly
    that and never reads past the frame; :attr:`mid_frame` tells whether a stream ending
    now is torn.
    """

    __slots__ = ("limit", "drop_above", "announced", "dropping", "_buf", "_skip")

    def __init__(self, limit: int = _protocol.MAX_FRAME, drop_above: Optional[int] = None,
                 data: bytes = b"") -> None:
        self.limit = limit
        self.drop_above = drop_above
        self._buf = bytearray(data)
        # Read-only for users: the payload size announced by the header of the frame under
        # way (None until its header is in), and whether that payload is being dropped.
        self.announced: Optional[int] = None
        self.dropping = False
        self._skip = 0                     # payload bytes of a TooLong frame still to drop

    def feed(self, data: bytes) -> None:
        """Add bytes received from the stream."""
        if self._skip:
            dropped = min(len(data), self._skip)
            self._skip -= dropped
            data = data[dropped:]
        self._buf += data

    def pop(self) -> Popped:
        """The next complete frame's payload (a TooLong for a dropped one), or None."""
        buf = self._buf
        size = self.announced
        if size is None:
            if len(buf) < HEADER_LEN:
                return None
            size = self.announced = _protocol.frame_size(bytes(buf[:HEADER_LEN]), self.limit)
            if self.drop_above is not None and size > self.drop_above:
                have = min(len(buf) - HEADER_LEN, size)
                del buf[:HEADER_LEN + have]
                self._skip = size - have
                self.dropping = True
        if self.dropping:
            if self._skip:
                return None
            self.dropping = False
            self.announced = None
            return TooLong(size)
        end = HEADER_LEN + size
        if len(buf) < end:
            return None
        with memoryview(buf) as view:
            payload = bytes(view[HEADER_LEN:end])
        del buf[:end]
        self.announced = None
        return payload

    @property
    def needed(self) -> int:
        """Bytes the frame under way still lacks (0 when a frame is complete)."""
        size = self.announced
        if size is None:
            return max(HEADER_LEN - len(self._buf), 0)
        if self.dropping:
            return self._skip
        return max(HEADER_LEN + size - len(self._buf), 0)

    @property
    def mid_frame(self) -> bool:
        """True when a frame was begun and not popped yet (a close now tears it)."""
        return bool(self._buf) or self.announced is not None
