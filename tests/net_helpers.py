"""Socket plumbing of the tests' own servers and peers (fakedaemon, cli_helpers.Server, the
differential peer, test_secrets' proxy): a port where nothing listens, exact reads of bytes and
frames, and the one accept loop."""

from __future__ import annotations

import socket
import struct
import threading


def dead_port(address: str = "127.0.0.1") -> int:
    """A port on ``address`` where nothing listens."""
    with socket.socket() as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def recv_exact(sock: socket.socket, n: int, record: bytearray | None = None) -> bytes:
    """Exactly ``n`` bytes from ``sock`` (each also appended to ``record``, when given);
    EOFError when the peer closes first."""
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError
        if record is not None:
            record += chunk
        buf += chunk
    return buf


def recv_payload(sock: socket.socket, record: bytearray | None = None) -> bytes:
    """The payload of the next frame on ``sock`` (as :func:`recv_exact`)."""
    (size,) = struct.unpack(">I", recv_exact(sock, 4, record))
    return recv_exact(sock, size, record)


def accept_until(listener: socket.socket, stopped: threading.Event | None, handle) -> None:
    """Accept connections on ``listener`` and call ``handle(sock, peer)`` for each, until
    ``stopped`` is set (seen when the listener's timeout expires) or the listener is closed
    or shut down. The accept loop of every fake server in the tests."""
    while stopped is None or not stopped.is_set():
        try:
            sock, peer = listener.accept()
        except socket.timeout:
            continue
        except OSError:
            return
        handle(sock, peer)
