"""A scripted daemon stand-in for the cases whose daemon answer cannot be provoked from a
real ConfD at will: ``{error, Code}`` for every code, status replies with IPv6 or string
addresses, HA events of every shape.

Every accepted connection gets the same script, so each side of a case meets the same
daemon. The peer answers the 9-byte hello with acceptance (ConfD 8.2.5's reply), reads the
token frame of an HA socket (client type 17) or the subscription frame of an event socket
(client type 11, answered with ``ok``), then plays its script: for an HA socket each entry is
the reply to the next frame read, for an event socket each entry is sent as it is; ``None``
closes the connection, and :func:`then_close` sends its bytes and closes. The bytes come from the independent reference codec
(``tests/refcodec.py``), never from ``confd_ha``.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading

import refcodec
from net_helpers import accept_until, recv_exact, recv_payload

A = refcodec.Atom
PEER_IP = "127.78.0.100"
HELLO_ACCEPTED = bytes.fromhex("00 00 52 08 02 05 00 3C 12")   # status 0, 82, 0x08020500
CT_EVENT, CT_HA = 11, 17
STEP_TIMEOUT = 5.0


def frame(term) -> bytes:
    payload = refcodec.encode(term)
    return struct.pack(">I", len(payload)) + payload


def error_reply(code: int) -> bytes:
    return frame((A("error"), code))


OK = frame(A("ok"))


class then_close(bytes):
    """A script entry: send these bytes, then close the connection."""


RESET = then_close(b"")   # a script entry: close with a TCP reset (SO_LINGER 0)


def addr_v4(text: str):
    return tuple(socket.inet_aton(text))


def addr_v6(text: str):
    raw = socket.inet_pton(socket.AF_INET6, text)
    return tuple(struct.unpack(">8H", raw))


def split_frames(data: bytes) -> list:
    """The frames of a byte stream after the 9-byte hello (a cut frame as it is)."""
    out, i = [], 9
    while i < len(data):
        size = struct.unpack(">I", data[i:i + 4])[0] if i + 4 <= len(data) else 0
        out.append(data[i:i + 4 + size])
        i += 4 + size
    return out


class ScriptedPeer:
    """Listens on ``PEER_IP``:ephemeral until :meth:`close`; ``address`` is ``(ip, port)``.
    Everything a connection sent is kept: :meth:`received`."""

    def __init__(self, script):
        self.script = list(script)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((PEER_IP, 0))
        self.sock.listen(8)
        self.address = self.sock.getsockname()
        self.conns: list = []        # (socket, thread, record)
        self._thread = threading.Thread(target=self._accept, daemon=True,
                                        name="differential-peer")
        self._thread.start()

    def _accept(self) -> None:
        accept_until(self.sock, None, self._accepted)     # until close() shuts it down

    def _accepted(self, conn: socket.socket, _peer) -> None:
        record = bytearray()
        t = threading.Thread(target=self._serve, args=(conn, record), daemon=True,
                             name="differential-peer-conn")
        self.conns.append((conn, t, record))
        t.start()

    def _serve(self, conn: socket.socket, record: bytearray) -> None:
        conn.settimeout(STEP_TIMEOUT)
        try:
            hello = recv_exact(conn, 9, record)
            conn.sendall(HELLO_ACCEPTED)
            ctype = hello[0] & 0x3F
            recv_payload(conn, record)       # the token, or the subscription
            if ctype == CT_EVENT:
                conn.sendall(OK)
            for entry in self.script:
                if ctype == CT_HA:
                    recv_payload(conn, record)
                if entry is None:
                    break
                if entry is RESET:
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    break
                conn.sendall(entry)
                if isinstance(entry, then_close):
                    break
            else:
                while True:                 # keep the connection until the client goes
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    record += chunk
        except (OSError, EOFError):
            pass
        finally:
            conn.close()

    def received(self, index: int = -1) -> bytes:
        """All bytes connection ``index`` sent, once it has ended (the client closed)."""
        _, t, record = self.conns[index]
        t.join(STEP_TIMEOUT * 2)
        return bytes(record)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)   # wakes the accept() (close alone does not)
        self.sock.close()
        for c, _, _ in self.conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
        self._thread.join(5)

    def __enter__(self) -> "ScriptedPeer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
