"""All client socket I/O, through the caller's own socket object (W-03).

Python's socket module already does the hard parts right: blocking calls release the GIL,
``EINTR`` is retried after signal handlers ran (PEP 475) so Ctrl-C raises
``KeyboardInterrupt``, and ``sock.settimeout`` bounds every wait. This module only maps the
outcomes: a timeout → :class:`confd_ha.error.Timeout`, a peer close at any point →
:class:`confd_ha.error.EOF` (W-29), any other OS error → ``Error(ERR_OS)`` with its errno.
"""

from __future__ import annotations

import errno
import os
import socket
import weakref
from typing import TYPE_CHECKING, Any, Callable, NoReturn, Optional, Tuple, Union

from . import _frames, _protocol, error

if TYPE_CHECKING:  # asyncio is imported only when the asyncio client is used
    import asyncio

# A peer that is gone: on a write EPIPE (also for a socket that was never connected) or
# ECONNRESET, on a read ECONNRESET (or 0 bytes) -- EOF, as libconfd reports it. Any other
# OS error is ERR_OS with libconfd's texts below (observed through Cisco's _confd, ConfD
# 8.2.5): a read on a never-connected socket (ENOTCONN) is ERR_OS, not EOF.
_WRITE_CLOSED = (errno.EPIPE, errno.ECONNRESET, errno.ECONNABORTED)
_READ_CLOSED = (errno.ECONNRESET, errno.ECONNABORTED)
CONNECT, READ, WRITE = "connect", "read", "write"
# Where a client connects: an AF_UNIX path, or (host, port) for TCP.
Address = Union[str, bytes, Tuple[str, int]]
_TEXTS = {CONNECT: "Failed to connect to ConfD: %s",
          READ: "Failed to read %d bytes from ConfD: %s",
          WRITE: "Failed to write %d bytes to ConfD: %s"}
_TIMEOUT_TEXTS = {CONNECT: "timed out connecting to the daemon",
                  READ: "timed out waiting for the daemon",
                  WRITE: "timed out sending to the daemon"}


def _fail(exc: OSError, op: str, n: int = 0, note: str = "") -> NoReturn:
    """Raise the package's exception for an OSError during ``op`` (CONNECT, READ or WRITE
    of ``n`` bytes)."""
    if isinstance(exc, socket.timeout):
        error.raise_error(error.ERR_OS, _TIMEOUT_TEXTS[op] + note, errno.ETIMEDOUT)
    code = exc.errno
    if code is None and isinstance(exc, (ConnectionError, BrokenPipeError)):
        # asyncio reports a lost connection as ConnectionResetError without an errno.
        error.raise_error(error.CONFD_EOF, "connection closed")
    if op != CONNECT and code in (_WRITE_CLOSED if op == WRITE else _READ_CLOSED):
        error.raise_error(error.CONFD_EOF, "connection closed by the daemon")
    text = os.strerror(code) if code else str(exc)
    args = (text,) if op == CONNECT else (n, text)
    error.raise_error(error.ERR_OS, _TEXTS[op] % args + note, code)


def _nodelay(sock: socket.socket) -> None:
    # Requests are small writes that each wait for a reply: without TCP_NODELAY the first
    # order after the token frame waits ~40 ms for the daemon's delayed ACK (Nagle).
    if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def connect(sock: socket.socket, address: Address) -> None:
    """Connect ``sock`` (which this package then owns the options of: TCP_NODELAY is set).
    A socket that is connected already fails with EISCONN and is left as it is."""
    try:
        if peer_address(sock) is not None:
            # Python's connect() hides EISCONN on a socket with a timeout: ask first.
            raise OSError(errno.EISCONN, os.strerror(errno.EISCONN))
        sock.connect(address)
        _nodelay(sock)
    except OSError as exc:
        _fail(exc, CONNECT)


def send(sock: socket.socket, data: bytes) -> None:
    try:
        sock.sendall(data)
    except OSError as exc:
        _fail(exc, WRITE, len(data))


def send_ack(sock: socket.socket, data: bytes) -> None:
    """:func:`send` for an event acknowledgement: libconfd reports a peer that is gone as
    ``Error(ERR_EOF)``, not as ``EOF``."""
    try:
        sock.sendall(data)
    except OSError as exc:
        if exc.errno in _WRITE_CLOSED:
            error.raise_error(error.ERR_EOF, "Socket to ConfD is closed")
        _fail(exc, WRITE, len(data))


def recv_exact(sock: socket.socket, n: int) -> bytes:
    """Exactly n bytes; a peer close before that raises EOF."""
    try:
        data = sock.recv(n)
        if len(data) == n:
            return data
        if not data:
            error.raise_error(error.CONFD_EOF, "connection closed by the daemon")
        buf = bytearray(data)
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                error.raise_error(error.CONFD_EOF, "connection closed by the daemon")
            buf += chunk
        return bytes(buf)
    except OSError as exc:
        _fail(exc, READ, n)


# ---------------------------------------------------------------- frames that survive timeouts
#
# A socket timeout can strike in the middle of a frame, or before the reply to a request that
# was sent. Python leaves the stream wherever it stopped, so without care every later call
# would read the previous call's answer (or a payload as a header). What a timeout left
# unread is therefore remembered per socket: the FrameReader holding the bytes already read
# of the frame on the wire, and how many replies are still owed to requests whose callers
# gave up. The next call first reads and discards the owed replies, then proceeds; the next
# read_frame() continues the frame it was reading.

_CHUNK = 1 << 20   # the most one recv asks for: a frame's payload may be up to the limit


class _Backlog:
    __slots__ = ("owed", "reader")

    def __init__(self) -> None:
        self.owed = 0               # replies of timed-out requests still to be discarded
        self.reader: Optional[_frames.FrameReader] = None  # the frame on the wire, begun


# Keyed by the socket object because the Cisco-compatible API hands us the caller's bare
# socket, which cannot carry attributes of ours (socket.socket has no __dict__).
_backlogs: "weakref.WeakKeyDictionary[socket.socket, _Backlog]" = weakref.WeakKeyDictionary()
_backlog_used = False  # a cheap test on the hot path: no timeout has ever left anything


def _remember(sock: socket.socket, reader: _frames.FrameReader, owed: int) -> None:
    global _backlog_used
    bl = _backlogs.get(sock)
    if bl is None:
        bl = _backlogs[sock] = _Backlog()
        _backlog_used = True
    bl.reader = reader
    bl.owed += owed


def _resume(sock: socket.socket, limit: int) -> _frames.FrameReader:
    """The reader of the frame a timeout interrupted on ``sock`` (forgetting it), or a new
    one."""
    reader = None
    if _backlog_used:
        bl = _backlogs.get(sock)
        if bl is not None:
            reader, bl.reader = bl.reader, None
            if not bl.owed:
                del _backlogs[sock]
    return _ready(reader, limit)


def _ready(reader: Optional[_frames.FrameReader], limit: int) -> _frames.FrameReader:
    """``reader`` (a frame begun earlier) reading up to ``limit`` now, or a new reader."""
    if reader is None:
        return _frames.FrameReader(limit)
    reader.limit = limit
    return reader


def _popped(frames: _frames.FrameReader, close: Callable[[], None]) -> Optional[bytes]:
    """The next payload of ``frames``, or None. A frame announced above the limit is refused
    before anything is allocated for it, and the connection closed (W-15)."""
    try:
        payload = frames.pop()
    except error.Error:
        close()
        raise
    return payload if isinstance(payload, bytes) else None


def _fill(sock: socket.socket, reader: _frames.FrameReader) -> bytes:
    """Receive until ``reader`` has a frame; returns its payload."""
    while True:
        payload = _popped(reader, sock.close)
        if payload is not None:
            return payload
        chunk = sock.recv(min(reader.needed, _CHUNK))
        if not chunk:
            error.raise_error(error.CONFD_EOF, "connection closed by the daemon")
        reader.feed(chunk)


def _reading(reader: _frames.FrameReader) -> int:
    """How many bytes the read that failed asked for, as libconfd counts: the 4-byte
    header, or the payload."""
    size = reader.announced
    return _frames.HEADER_LEN if size is None else size


def _read(sock: socket.socket, reader: _frames.FrameReader, owed: int) -> bytes:
    """_fill with the outcome mapping; a timeout remembers what was read (and that the
    frame is a reply still ``owed``)."""
    try:
        return _fill(sock, reader)
    except socket.timeout as exc:
        _remember(sock, reader, owed)
        _fail(exc, READ)
    except OSError as exc:
        _fail(exc, READ, _reading(reader))


def _settle(sock: socket.socket, limit: int) -> None:
    """Read and discard the replies owed to earlier requests that timed out."""
    bl = _backlogs.get(sock)
    if bl is None:
        return
    while bl.owed:
        reader, bl.reader = bl.reader, None
        bl.owed -= 1
        _read(sock, _ready(reader, limit), 1)
    if bl.reader is None:
        del _backlogs[sock]


def read_frame(sock: socket.socket, limit: int = _protocol.MAX_FRAME) -> bytes:
    """The payload of the next frame (event sockets); after a timeout the next call
    continues the frame where the timeout interrupted it."""
    if _backlog_used:
        _settle(sock, limit)
    return _read(sock, _resume(sock, limit), 0)


def call(sock: socket.socket, request: bytes, limit: int = _protocol.MAX_FRAME) -> bytes:
    """Send one request frame and return the payload of the reply frame.

    The common case -- header and payload each arriving whole, within the limit -- takes two
    recv calls and nothing else (this is the hot path of status()); every other case
    continues in a FrameReader with the bytes read so far, which checks the header.
    """
    if _backlog_used:
        _settle(sock, limit)
    try:
        sock.sendall(request)
    except socket.timeout as exc:
        # Part of the request may be on the wire: it cannot be taken back or resumed.
        sock.close()
        _fail(exc, WRITE, len(request),
              " (socket closed: a request cut short cannot be resumed)")
    except OSError as exc:
        _fail(exc, WRITE, len(request))
    header = payload = b""
    asked = _frames.HEADER_LEN
    try:
        header = sock.recv(4)
        if len(header) == 4:
            # Only a test for the easy case, not the check: a header above the limit goes
            # to the FrameReader below, whose C-core check refuses it. Calling that check
            # here too would cost ~0.9 us per call (measured: ~25% of this function).
            asked = int.from_bytes(header, "big")
            if asked <= limit:
                payload = sock.recv(asked) if asked else b""
                if len(payload) == asked:
                    return payload
                if not payload:
                    error.raise_error(error.CONFD_EOF, "connection closed by the daemon")
        elif not header:
            error.raise_error(error.CONFD_EOF, "connection closed by the daemon")
    except socket.timeout as exc:
        _remember(sock, _frames.FrameReader(limit, data=header), 1)
        _fail(exc, READ)
    except OSError as exc:
        _fail(exc, READ, asked)
    # Outside the try: error.Timeout is itself a TimeoutError (socket.timeout).
    return _read(sock, _frames.FrameReader(limit, data=header + payload), 1)


def replace_connection(sock: socket.socket, fresh: socket.socket) -> None:
    """Move ``fresh``'s connection onto ``sock`` (same descriptor number) and close ``fresh``.

    Used by version renegotiation (W-5) so that the caller's socket object ends up on the
    new connection; the caller's timeout is applied again to the new descriptor.
    """
    timeout = sock.gettimeout()
    try:
        os.dup2(fresh.fileno(), sock.fileno())
    except OSError as exc:
        _fail(exc, CONNECT)
    finally:
        fresh.close()
    sock.settimeout(timeout)


def open_like(sock: socket.socket, address: Address) -> socket.socket:
    """A new socket of the same family and type as ``sock``, connected to ``address``,
    with the same timeout."""
    fresh = socket.socket(sock.family, sock.type)
    fresh.settimeout(sock.gettimeout())
    try:
        fresh.connect(address)
        _nodelay(fresh)
    except OSError as exc:
        fresh.close()
        _fail(exc, CONNECT)
    return fresh


def peer_address(sock: socket.socket) -> Any:
    try:
        return sock.getpeername()
    except OSError:
        return None


# ---------------------------------------------------------------- asyncio (confd_ha.aio)
#
# The same outcome mapping for asyncio streams. A Stream reads frames in a way that survives
# cancellation (asyncio.wait_for, task.cancel()): a cancelled StreamReader.read consumes
# nothing, and what was read of a frame stays in the Stream's FrameReader, so a cancelled read
# loses nothing and the next one continues where it stopped.


async def open_stream(address: Address) -> "Stream":
    """A :class:`Stream` connected to ``(host, port)`` or to an AF_UNIX path (``str``)."""
    import asyncio

    try:
        if isinstance(address, (str, bytes)):
            # A bytes path works too (it goes to socket.connect), whatever typeshed says.
            reader, writer = await asyncio.open_unix_connection(
                address)  # type: ignore[arg-type]
        else:
            reader, writer = await asyncio.open_connection(address[0], address[1])
    except OSError as exc:
        _fail(exc, CONNECT)
    return Stream(reader, writer)


class Stream:
    """An asyncio connection to the daemon (a StreamReader/StreamWriter pair)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.closed = False          # closed by this side
        self._frames = _frames.FrameReader()   # the frame being read, kept across cancels
        self._queued = 0             # bytes of the last write, for error texts

    def write(self, data: bytes) -> None:
        """Queue ``data`` for sending; once this returns the bytes will go out even if the
        caller is cancelled before :meth:`drain`."""
        if self.closed:
            error.raise_error(error.CONFD_EOF, "connection closed")
        self._queued = len(data)
        self.writer.write(data)

    async def drain(self) -> None:
        try:
            await self.writer.drain()
        except OSError as exc:
            _fail(exc, WRITE, self._queued)

    async def send(self, data: bytes) -> None:
        self.write(data)
        await self.drain()

    async def recv_exact(self, n: int) -> bytes:
        """Exactly n bytes; a peer close before that raises EOF."""
        import asyncio

        if self.closed:
            error.raise_error(error.CONFD_EOF, "connection closed")
        try:
            return await self.reader.readexactly(n)
        except asyncio.IncompleteReadError:
            error.raise_error(error.CONFD_EOF, "connection closed by the daemon")
        except OSError as exc:
            _fail(exc, READ, n)

    async def read_frame(self, limit: int = _protocol.MAX_FRAME) -> bytes:
        """The payload of the next frame; a frame announced above ``limit`` is refused
        before anything is allocated for it, and the stream is closed (W-15)."""
        frames = self._frames
        frames.limit = limit
        while True:
            payload = _popped(frames, self.close)
            if payload is not None:
                return payload
            if self.closed:
                error.raise_error(error.CONFD_EOF, "connection closed")
            # read() takes what is there, up to the frame's end; cancelled, it took nothing.
            try:
                chunk = await self.reader.read(min(frames.needed, _CHUNK))
            except OSError as exc:
                _fail(exc, READ, _reading(frames))
            if not chunk:
                error.raise_error(error.CONFD_EOF, "connection closed by the daemon")
            frames.feed(chunk)

    def peer_address(self) -> Any:
        return self.writer.get_extra_info("peername")

    def close(self) -> None:
        """Close the connection (idempotent; does not wait)."""
        if not self.closed:
            self.closed = True
            self.writer.close()

    async def wait_closed(self) -> None:
        """Wait until the transport is gone; errors of a dead connection are irrelevant."""
        try:
            await self.writer.wait_closed()
        except (OSError, RuntimeError):
            pass
