"""Out-of-process control of an emulated node (B-33): the JSON-lines endpoint.

The operations, names and limits are in :mod:`confd_ha.control_ops`; the client is
:class:`confd_ha.testing.control.ControlClient`.

The endpoint is a listener separate from the IPC and HA ports: by default an abstract
``AF_UNIX`` socket (Linux; nothing on disk) named after the node's IPC address and port,
``\\0confd-ha-ctl:<address>:<port>`` (``@confd-ha-ctl:127.0.0.1:4565`` in ``ss -x``), or a
filesystem ``AF_UNIX`` path. Only processes of the same user (or root) may connect
(``SO_PEERCRED``): the endpoint can kill the node and write its datastore.

Protocol (documented in docs/emulator.md): one JSON object per line each way. A request is
``{"op": OP, ...arguments, "id": ANY?}``; the reply is ``{"ok": true, "result": ...}`` or
``{"ok": false, "error": {"kind": KIND, "code": INT|null, "name": STR|null, "message": STR}}``
with ``id`` echoed when given. ``kind``: ``bad-request`` (malformed JSON, unknown op, bad
argument), ``refused`` (the node refused: ``code``/``name`` are the ConfD error when there is
one, e.g. 17 ``ERR_BADSTATE`` for a write on a secondary), ``not-running`` (datastore access
on a stopped or killed node), ``internal``. A bad request (even one that is not UTF-8 JSON
at all, or nested too deeply to parse) never closes the connection unless the line is too long
(1 MiB).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import struct
from typing import TYPE_CHECKING, Any, Dict, Optional, Set

from ..control_ops import (BY_NAME, MAX_CLIENTS, MAX_LINE, OPS, BadRequest, IDLE_TIMEOUT,
                           NotRunning, control_address, parse_args)

if TYPE_CHECKING:
    from .node import Node

__all__ = ["ControlServer"]

Reply = Dict[str, Any]

log = logging.getLogger("confd_ha.emulator")

class ControlServer:
    """The control endpoint of one node, on the node's loop.

    ``path`` None: the abstract name from the node's IPC address and (actual) port.
    """

    def __init__(self, node: "Node", path: Optional[str] = None) -> None:
        self.node = node
        self.path = path
        self._server: Optional[asyncio.AbstractServer] = None
        self._conns: Set[asyncio.StreamWriter] = set()
        self._tasks: Set["asyncio.Task[Any]"] = set()
        self.address: Optional[str] = None

    @property
    def display_name(self) -> str:
        """``@name`` for the abstract socket (as ``ss -x`` shows it), else the path."""
        if self.address is None:
            return ""
        return "@" + self.address[1:] if self.address.startswith("\0") else self.address

    async def start(self) -> None:
        cfg = self.node.config
        if self.path is not None:
            address = self.path
            if os.path.exists(address):
                import stat

                if not stat.S_ISSOCK(os.stat(address).st_mode):
                    raise OSError("control path %s exists and is not a socket" % address)
                os.unlink(address)  # a stale socket of an earlier run
        else:
            address = control_address(cfg.ipc_address, self.node.ipc_port or cfg.ipc_port)
        self._server = await asyncio.start_unix_server(self._accept, address, limit=MAX_LINE)
        self.address = address
        if self.path is not None:
            os.chmod(address, 0o600)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for w in list(self._conns):
            w.close()
        for t in list(self._tasks):
            t.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            await asyncio.wait_for(server.wait_closed(), 5)
        except Exception:  # pragma: no cover - defensive
            pass
        if self.path is not None:
            try:
                os.unlink(self.path)
            except OSError:
                pass

    def _allowed(self, writer: asyncio.StreamWriter) -> bool:
        sock = writer.get_extra_info("socket")
        if sock is None or not hasattr(socket, "SO_PEERCRED"):  # pragma: no cover - non-Linux
            return True
        try:
            raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        except OSError:  # pragma: no cover
            return False
        _pid, uid, _gid = struct.unpack("3i", raw)
        return uid in (0, os.geteuid())

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None  # a connection handler runs as a task
        self._tasks.add(task)
        self._conns.add(writer)
        try:
            if not self._allowed(writer):
                log.warning("%s: control connection from another user refused", self.node.label)
                return
            if len(self._conns) > MAX_CLIENTS:
                await self._send(writer, _error("internal", "too many control connections"))
                return
            await self._serve(reader, writer)
        except asyncio.CancelledError:
            pass
        except (ConnectionError, OSError):
            pass
        except Exception:  # pragma: no cover - a bug must not stop the node
            log.exception("%s: control connection failed", self.node.label)
        finally:
            self._conns.discard(writer)
            self._tasks.discard(task)
            try:
                writer.close()
            except (RuntimeError, OSError):  # pragma: no cover
                pass

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                line = await asyncio.wait_for(reader.readline(), IDLE_TIMEOUT)
            except asyncio.TimeoutError:
                return
            except (ValueError, asyncio.LimitOverrunError):
                await self._send(writer, _error("bad-request",
                                                "request longer than %d bytes" % MAX_LINE))
                return
            if not line:
                return
            if not line.strip():
                continue
            reply = await self.handle_line(line)
            await self._send(writer, reply)

    @staticmethod
    async def _send(writer: asyncio.StreamWriter, reply: Reply) -> None:
        writer.write(json.dumps(reply, separators=(",", ":")).encode("utf-8") + b"\n")
        await writer.drain()

    async def handle_line(self, line: bytes) -> Reply:
        """One request line → one reply object."""
        try:
            req = json.loads(line)
        except RecursionError:  # nesting deeper than the parser's stack
            return _error("bad-request", "not a JSON object: nested too deeply")
        except Exception as exc:  # whatever the parser raises, it is the request's fault
            return _error("bad-request", "not a JSON object: %s" % exc)
        if not isinstance(req, dict):
            return _error("bad-request", "a request must be a JSON object")
        rid = req.get("id")
        reply = await self.handle(req)
        if "id" in req and isinstance(rid, (str, int, float, bool, type(None))):
            reply["id"] = rid
        return reply

    async def handle(self, req: Reply) -> Reply:
        """Execute one request object."""
        from .. import error

        op = req.get("op")
        operation = BY_NAME.get(op) if isinstance(op, str) else None
        if operation is None:
            return _error("bad-request", "unknown op %r (known: %s)" % (op, ", ".join(OPS)))
        try:
            return {"ok": True, "result": await operation.run(self.node,
                                                              parse_args(operation, req))}
        except BadRequest as exc:
            return _error("bad-request", str(exc))
        except NotRunning as exc:
            return _error("not-running", str(exc))
        except error.Error as exc:
            return _error("refused", exc.confd_lasterr or exc.confd_strerror,
                          code=exc.confd_errno, name=error.errname(exc.confd_errno))
        except ValueError as exc:
            return _error("bad-request", str(exc))
        except RuntimeError as exc:
            return _error("refused", str(exc))
        except Exception as exc:
            log.exception("%s: control op %s failed", self.node.label, op)
            return _error("internal", "%s: %s" % (type(exc).__name__, exc))


def _error(kind: str, message: str, code: Optional[int] = None, name: Optional[str] = None) -> Reply:
    return {"ok": False, "error": {"kind": kind, "code": code, "name": name, "message": message}}
