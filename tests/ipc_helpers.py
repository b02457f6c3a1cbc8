"""Raw-socket helpers for the emulated node's IPC-port tests (test_emulator_ipc*.py), and one
exchange of JSON lines with its control endpoint (docs/emulator.md)."""

from __future__ import annotations

import json
import socket

from confd_ha import _io, _protocol

HELLO_HA = _protocol.build_hello(_protocol.Hello(17, 82, 0x08020500, 0, 0))
REPLY_OK = bytes.fromhex("000052080205000c04")   # status 0, 82, 8.2.5, 12/4 (as ConfD)


def raw(node, timeout=2.0) -> socket.socket:
    s = socket.create_connection((node.ip, node.port), timeout=timeout)
    s.settimeout(timeout)
    return s


def raw_control(node, token: bytes = b"tok") -> socket.socket:
    """A hand-made HA control socket: hello, reply, raw token frame."""
    s = raw(node)
    s.sendall(HELLO_HA)
    assert _io.recv_exact(s, 9) == REPLY_OK
    s.sendall(_protocol.frame(token))
    return s


def closed_by_peer(s: socket.socket, timeout: float = 2.0) -> bool:
    """True if the peer closes ``s`` (EOF or reset) before ``timeout``; data is an error."""
    return ending(s, timeout) in ("closed", "reset")


def ending(s: socket.socket, timeout: float = 2.0, expect: bytes = b"") -> str:
    """Read ``expect`` (asserted), then how the connection goes on: "closed" (EOF), "reset" or
    "open" (nothing within ``timeout``)."""
    s.settimeout(timeout)
    got = b""
    try:
        while True:
            data = s.recv(64)
            if not data:
                how = "closed"
                break
            got += data
    except ConnectionResetError:
        how = "reset"
    except socket.timeout:
        how = "open"
    assert got == expect, "expected %r, got %r" % (expect, got)
    return how


def hello(byte0: int = 17, proto: int = 82, vsn: int = 0x08020500, depth: int = 0,
          keylen: int = 0) -> bytes:
    return _protocol.build_hello(_protocol.Hello(byte0, proto, vsn, depth, keylen))


def event_socket(node) -> socket.socket:
    """A raw event socket after its hello, before its subscription."""
    s = socket.create_connection((node.ip, node.port), timeout=3)
    s.sendall(hello(11))
    assert _io.recv_exact(s, 9) == REPLY_OK
    return s


def json_exchange(sock: socket.socket, line: bytes) -> dict:
    """Send ``line`` to a control endpoint and return its decoded one-line reply (fails if the
    endpoint closes the connection instead)."""
    sock.sendall(line)
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = sock.recv(65536)
        assert chunk, "endpoint closed the connection"
        buf += chunk
    return json.loads(buf)
