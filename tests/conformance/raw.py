"""Raw IPC bytes for conformance scenarios: plain TCP connections to a node's IPC port,
hand-made hellos, access-check exchanges, terms and frames (mixed into ``World``).

What is sent and what came back is written as hex or as Erlang terms; the random bytes of a
challenge are never written down.
"""

from __future__ import annotations

import socket
import time
from typing import Optional

from confd_ha import _codec, _protocol

from . import render
from .targets import IPC_PORT, TOKEN


class RawIpc:
    """The raw-socket steps of a :class:`~conformance.world.World`."""

    # ------------------------------------------------------------ raw IPC bytes

    def raw(self, node: str, label: str) -> str:
        """A plain TCP connection to ``node``'s IPC port."""
        sock = socket.create_connection((self.ip(node), IPC_PORT), timeout=self.call_timeout)
        self.raws[label] = sock
        self.log("%s tcp-connect %s" % (label, node))
        return label

    def send(self, label: str, data: bytes) -> None:
        try:
            self.raws[label].sendall(data)
            self.log("%s send %s" % (label, render.hexbytes(data)))
        except OSError as exc:
            self.log("%s send -> %s" % (label, type(exc).__name__))

    def send_frame(self, label: str, payload: bytes) -> None:
        self.send(label, _protocol.frame(payload))

    def recv(self, label: str, n: int, within: float, timed: bool = False) -> bytes:
        """Read up to ``n`` bytes, for at most ``within`` seconds; write what came and
        whether the connection was closed."""
        sock = self.raws[label]
        if timed:
            self.mark()
        got = b""
        end = time.monotonic() + within
        how = "nothing more within %gs" % within
        while len(got) < n:
            left = end - time.monotonic()
            if left <= 0:
                break
            sock.settimeout(left)
            try:
                chunk = sock.recv(n - len(got))
            except socket.timeout:
                break
            except OSError as exc:
                how = "reset (%s)" % type(exc).__name__
                break
            if not chunk:
                how = "closed"
                break
            got += chunk
        else:
            how = ""
        self.log("%s recv -> %s%s%s" % (label, render.hexbytes(got), (", " + how) if how else "",
                                        " " + self.since() if timed and how else ""))
        return got

    def recv_frame(self, label: str, within: float) -> None:
        """Read one frame and write its term (or what happened instead)."""
        sock = self.raws[label]
        head = self._recv_exact(sock, 4, within)
        if isinstance(head, str):
            self.log("%s recv-frame -> %s" % (label, head))
            return
        size = int.from_bytes(head, "big")
        body = self._recv_exact(sock, size, within) if size else b""
        if isinstance(body, str):
            self.log("%s recv-frame -> %d bytes announced, %s" % (label, size, body))
            return
        try:
            text = render.term(_codec.decode(body))
        except Exception:
            text = "undecodable " + render.hexbytes(body)
        self.log("%s recv-frame -> %s" % (label, text))

    @staticmethod
    def _recv_exact(sock: socket.socket, n: int, within: float):
        got = b""
        sock.settimeout(within)
        while len(got) < n:
            try:
                chunk = sock.recv(n - len(got))
            except socket.timeout:
                return "nothing within %gs" % within
            except OSError as exc:
                return "reset (%s)" % type(exc).__name__
            if not chunk:
                return "closed"
            got += chunk
        return got

    # ------------------------------------------------------------ raw IPC helpers (ipc_* scenarios)
    #
    # Hand-made hellos, access-check exchanges and HA control / event sockets, for the IPC-level
    # scenarios (scenarios/ipc_*.py). The challenge's random bytes are never written down.

    def hello(self, label: str, byte0: int = 0x11, proto: int = 82, vsn: int = 0x08020500,
              maxdepth: int = 0, maxkeylen: int = 0, cut: Optional[int] = None) -> None:
        """Send a 9-byte client hello (only its first ``cut`` bytes, if given)."""
        data = (bytes([byte0]) + proto.to_bytes(2, "big") + vsn.to_bytes(4, "big")
                + bytes([maxdepth, maxkeylen]))
        self.send(label, data if cut is None else data[:cut])

    def send_term(self, label: str, term, shown: Optional[str] = None) -> None:
        """Send one framed term (encoded by the client's codec), written as the term, or as
        ``shown`` (for terms holding a node's address, which differs between runs)."""
        try:
            self.raws[label].sendall(_codec.encode_frame(term))
            self.log("%s send-term %s" % (label, shown or render.term(term)))
        except OSError as exc:
            self.log("%s send-term -> %s" % (label, type(exc).__name__))

    def challenge(self, label: str, size: int, within: float = 2.0) -> None:
        """Read an access-check challenge of ``size`` bytes (0x0B + nonce); written as its
        first byte and length only. The nonce is kept for :meth:`respond`."""
        got = self._recv_exact(self.raws[label], size, within)
        if isinstance(got, str):
            self.log("%s recv-challenge -> %s" % (label, got))
            return
        self.__dict__.setdefault("_nonces", {})[label] = got[1:]
        self.log("%s recv-challenge -> %02x + %d bytes" % (label, got[0], len(got) - 1))

    def respond(self, label: str, secret: bytes, variant: int = _protocol.ACCESS_V2,
                first: int = 0x0C) -> None:
        """Answer the last challenge: ``first`` + H(secret ‖ nonce), H by ``variant``
        (1 MD5, 2 SHA-256)."""
        nonce = self.__dict__.get("_nonces", {}).get(label, b"")
        data = bytes([first]) + _protocol.access_digest(variant, secret, nonce)
        try:
            self.raws[label].sendall(data)
            self.log("%s send-response %02x + %s(%r + nonce)" % (
                label, first, "md5" if variant == _protocol.ACCESS_V1 else "sha256", secret))
        except OSError as exc:
            self.log("%s send-response -> %s" % (label, type(exc).__name__))

    def control(self, node: str, label: str, token: bytes = TOKEN.encode()) -> str:
        """A hand-made HA control socket: hello, its reply, the raw token frame."""
        self.raw(node, label)
        self.hello(label)
        self.recv(label, 9, 2.0)
        shown = repr(token) if len(token) <= 24 else "%r*%d" % (token[:1], len(token))
        try:
            self.raws[label].sendall(_protocol.frame(token))
            self.log("%s send-token %s" % (label, shown))
        except OSError as exc:
            self.log("%s send-token -> %s" % (label, type(exc).__name__))
        return label

    def event_socket(self, node: str, label: str) -> str:
        """A hand-made event socket up to (not including) its subscription."""
        self.raw(node, label)
        self.hello(label, 0x0B)
        self.recv(label, 9, 2.0)
        return label

    def ip_term(self, node: str) -> tuple:
        """A node's IPv4 address as the 4-tuple term of an HA order."""
        return tuple(int(x) for x in self.ip(node).split("."))

    def close_raw(self, label: str) -> None:
        """Close a raw connection from the client side."""
        sock = self.raws.pop(label)
        sock.close()
        self.log("%s close" % label)
