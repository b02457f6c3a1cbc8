"""A blocking client of an emulated node's control endpoint (:mod:`confd_ha.emulator.control`;
the protocol is in docs/emulator.md): :class:`ControlClient`, used by ``confd-ha cdb``, the
process fixtures and the tests."""

from __future__ import annotations

import errno
import json
import socket
from typing import Any, Dict, Optional

from .._settings import CONFD_PORT
from ..control_ops import MAX_REPLY, control_address

__all__ = ["ControlClient", "ControlError", "Unreachable"]


class ControlError(Exception):
    """An error reply: ``kind``, ``code`` and ``name`` (ConfD error, may be None), ``message``."""

    def __init__(self, kind: str, message: str, code: Optional[int] = None,
                 name: Optional[str] = None) -> None:
        super().__init__(message)
        self.kind, self.message, self.code, self.name = kind, message, code, name


class Unreachable(OSError):
    """The control endpoint cannot be reached (no such node, connection lost, timeout);
    ``errno`` is the OS error when there is one."""

    def __init__(self, message: str, os_errno: Optional[int] = None) -> None:
        super().__init__(message)
        self.errno = os_errno


class ControlClient:
    """A blocking client of a node's control endpoint (``confd-ha cdb``, process fixtures)."""

    def __init__(self, ipc_address: str = "127.0.0.1", ipc_port: int = CONFD_PORT, *,
                 path: Optional[str] = None, timeout: Optional[float] = 30.0) -> None:
        self.address = path if path is not None else control_address(ipc_address, ipc_port)
        self.timeout = timeout
        self._sock: Optional[socket.socket] = None
        self._buf = bytearray()
        self._scanned = 0

    def _connect(self) -> socket.socket:
        if self._sock is None:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(self.timeout)
            try:
                s.connect(self.address)
            except OSError as exc:
                s.close()
                raise Unreachable("control endpoint %s: %s" % (
                    _shown(self.address), exc.strerror or exc), _errno(exc)) from None
            self._sock = s
        return self._sock

    def request(self, op: str, **args: Any) -> Any:
        """Send one request; return its ``result`` or raise :class:`ControlError` /
        :class:`Unreachable`."""
        reply = self.request_raw(dict(args, op=op))
        if reply.get("ok") is True:
            return reply.get("result")
        err = reply.get("error")
        if not isinstance(err, dict):
            err = {}
        raise ControlError(str(err.get("kind", "internal")), str(err.get("message", "")),
                           err.get("code"), err.get("name"))

    def request_raw(self, req: Dict[str, Any]) -> Dict[str, Any]:
        """Send one request object; return the reply object as received."""
        s = self._connect()
        data = json.dumps(req, separators=(",", ":")).encode("utf-8") + b"\n"
        try:
            s.sendall(data)
            line = self._readline(s)
        except OSError as exc:
            self.close()
            raise Unreachable("control endpoint %s: %s" % (
                _shown(self.address), getattr(exc, "strerror", None) or exc or type(exc).__name__),
                _errno(exc)) from None
        try:
            reply = json.loads(line)
        except ValueError:
            self.close()
            raise Unreachable("control endpoint sent a malformed reply") from None
        if not isinstance(reply, dict):
            raise Unreachable("control endpoint sent a malformed reply")
        return reply

    def _readline(self, s: socket.socket) -> bytes:
        while True:
            i = self._buf.find(b"\n", self._scanned)
            if i >= 0:
                line = bytes(self._buf[:i])
                del self._buf[:i + 1]
                self._scanned = 0
                return line
            self._scanned = len(self._buf)
            if len(self._buf) > MAX_REPLY:
                raise OSError("reply longer than %d bytes" % MAX_REPLY)
            chunk = s.recv(1 << 16)
            if not chunk:
                raise ConnectionResetError("connection closed by the node")
            self._buf += chunk

    def close(self) -> None:
        s, self._sock = self._sock, None
        self._buf = bytearray()
        self._scanned = 0
        if s is not None:
            s.close()

    def __enter__(self) -> "ControlClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _errno(exc: OSError) -> Optional[int]:
    """The errno of a failure; ETIMEDOUT for a socket timeout (which has none)."""
    return errno.ETIMEDOUT if isinstance(exc, socket.timeout) else exc.errno


def _shown(address: str) -> str:
    return "@" + address[1:] if address.startswith("\0") else address
