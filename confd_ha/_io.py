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

from . import _protocol, error

_CLOSED_ERRNOS = (errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED, errno.ENOTCONN)


def _fail(exc: OSError, what: str):
    """Raise the package's exception for an OSError during ``what``."""
    if isinstance(exc, socket.timeout):
        error.raise_error(error.ERR_OS, "timed out %s" % what, errno.ETIMEDOUT)
    if exc.errno in _CLOSED_ERRNOS:
        error.raise_error(error.CONFD_EOF, "connection closed %s" % what)
    error.raise_error(error.ERR_OS, "%s %s" % (os.strerror(exc.errno) if exc.errno else exc, what),
                      exc.errno)


def connect(sock: socket.socket, address) -> None:
    try:
        sock.connect(address)
    except OSError as exc:
        _fail(exc, "connecting to the daemon")


def send(sock: socket.socket, data: bytes) -> None:
    try:
        sock.sendall(data)
    except OSError as exc:
        _fail(exc, "sending to the daemon")


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
        _fail(exc, "waiting for the daemon")


def read_frame(sock: socket.socket, limit: int = _protocol.MAX_FRAME) -> bytes:
    """The payload of the next frame. A frame announced above ``limit`` is refused before
    anything is allocated for it, and the socket is closed (W-15)."""
    header = recv_exact(sock, 4)
    try:
        size = _protocol.frame_size(header, limit)
    except error.Error:
        sock.close()
        raise
    return recv_exact(sock, size) if size else b""


def call(sock: socket.socket, request: bytes, limit: int = _protocol.MAX_FRAME) -> bytes:
    """Send one request frame and return the payload of the reply frame."""
    send(sock, request)
    return read_frame(sock, limit)


def replace_connection(sock: socket.socket, fresh: socket.socket) -> None:
    """Move ``fresh``'s connection onto ``sock`` (same descriptor number) and close ``fresh``.

    Used by version renegotiation (W-5) so that the caller's socket object ends up on the
    new connection; the caller's timeout is applied again to the new descriptor.
    """
    timeout = sock.gettimeout()
    try:
        os.dup2(fresh.fileno(), sock.fileno())
    except OSError as exc:
        _fail(exc, "replacing the connection")
    finally:
        fresh.close()
    sock.settimeout(timeout)


def open_like(sock: socket.socket, address) -> socket.socket:
    """A new socket of the same family and type as ``sock``, connected to ``address``,
    with the same timeout."""
    fresh = socket.socket(sock.family, sock.type)
    fresh.settimeout(sock.gettimeout())
    try:
        fresh.connect(address)
    except OSError as exc:
        fresh.close()
        _fail(exc, "reconnecting to the daemon")
    return fresh


def peer_address(sock: socket.socket):
    try:
        return sock.getpeername()
    except OSError:
        return None
