"""Out-of-process control of an emulated node (B-33): a JSON-lines endpoint and its client.

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
import errno
import ipaddress
import json
import logging
import os
import socket
import struct
from typing import Optional

log = logging.getLogger("confd_ha.emulator")

NAME_PREFIX = "confd-ha-ctl:"
MAX_LINE = 1 << 20            # a request line
MAX_REPLY = 256 << 20         # a reply line (a large datastore ``show``)
MAX_CLIENTS = 64
IDLE_TIMEOUT = 600.0


def control_name(ipc_address: str, ipc_port: int) -> str:
    """``confd-ha-ctl:<address>:<port>``, the address in canonical form."""
    try:
        address = ipaddress.ip_address(ipc_address.split("%", 1)[0]).compressed
    except ValueError:
        address = ipc_address
    return "%s%s:%d" % (NAME_PREFIX, address, ipc_port)


def control_address(ipc_address: str, ipc_port: int) -> str:
    """The abstract socket address (a leading NUL) for ``socket.connect``/``bind``."""
    return "\0" + control_name(ipc_address, ipc_port)


def _text(term) -> Optional[str]:
    """A node-id or address term as text for JSON."""
    if term is None:
        return None
    if isinstance(term, bytes):
        return term.decode("utf-8", "replace")
    if isinstance(term, str):
        return str(term)
    from .. import _protocol, error

    try:
        return _protocol.address_text(term)
    except (error.Error, TypeError, ValueError):
        return repr(term)


def node_info(node, decisions: Optional[int] = None) -> dict:
    """A JSON-able snapshot of a node (call on its loop thread): configuration, state,
    peers, subscribers, datastore transaction id and the last ``decisions`` decisions (all
    when None). Never contains the token."""
    cfg = node.config
    state, nodes = node.status()
    try:
        txid = node.txid
    except Exception:  # a store that was never opened
        txid = None
    decided = node.decisions
    if decisions is not None:
        decided = decided[-decisions:] if decisions > 0 else []
    return {
        "name": cfg.name,
        "flavour": cfg.flavour,
        "running": node.running,
        "state": state,
        "state_name": node.state_name,
        "node_id": _text(node.node_id),
        "ipc": {"address": cfg.ipc_address, "port": node.ipc_port or cfg.ipc_port,
                "path": cfg.ipc_path},
        "ha": {"address": cfg.ha_address, "port": cfg.ha_port},
        "tick_timeout": cfg.tick_timeout,
        "data_dir": cfg.data_dir,
        "start_phase": node.start_phase,
        "upgrade": node.upgrade,
        "frozen": node.frozen,
        "partitions": list(node.partitions),
        "joining": node.joining,
        "txid": txid,
        "status": [{"nodeid": _text(n), "address": _text(a)} for n, a in nodes],
        "peers": [{"role": p["role"], "nodeid": _text(p["nodeid"]), "address": p["address"]}
                  for p in node.peers],
        "subscribers": node.subscribers,
        "decisions": decided,
    }


# ================================================================ server


class BadRequest(Exception):
    """A request that cannot be executed as given."""


class NotRunning(Exception):
    """A datastore request on a node that is not running."""


def _arg(req: dict, key: str, kind, required: bool = True, default=None):
    if key not in req:
        if required:
            raise BadRequest("missing argument %r" % key)
        return default
    value = req[key]
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise BadRequest("argument %r must be an integer" % key)
    if kind is not int and not isinstance(value, kind):
        names = {str: "a string", bool: "true or false", list: "a list"}
        raise BadRequest("argument %r must be %s" % (key, names.get(kind, kind.__name__)))
    return value


def _changes(req: dict) -> list:
    changes = _arg(req, "changes", list)
    if len(changes) > 100000:
        raise BadRequest("too many changes in one commit")
    out = []
    for i, ch in enumerate(changes):
        if not isinstance(ch, list) or not ch or ch[0] not in ("set", "delete"):
            raise BadRequest("change #%d must be [\"set\", path, value] or [\"delete\", path]" % i)
        out.append(tuple(ch))
    return out


class ControlServer:
    """The control endpoint of one node, on the node's loop.

    ``path`` None: the abstract name from the node's IPC address and (actual) port.
    """

    def __init__(self, node, path: Optional[str] = None):
        self.node = node
        self.path = path
        self._server = None
        self._conns: set = set()
        self._tasks: set = set()
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

    def _allowed(self, writer) -> bool:
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

    async def _serve(self, reader, writer) -> None:
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
    async def _send(writer, reply: dict) -> None:
        writer.write(json.dumps(reply, separators=(",", ":")).encode("utf-8") + b"\n")
        await writer.drain()

    async def handle_line(self, line: bytes) -> dict:
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

    async def handle(self, req: dict) -> dict:
        """Execute one request object."""
        from .. import error

        op = req.get("op")
        fn = _OPS.get(op) if isinstance(op, str) else None
        if fn is None:
            return _error("bad-request", "unknown op %r (known: %s)" % (op, ", ".join(sorted(_OPS))))
        try:
            return {"ok": True, "result": await fn(self.node, req)}
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


def _error(kind: str, message: str, code: Optional[int] = None, name: Optional[str] = None) -> dict:
    return {"ok": False, "error": {"kind": kind, "code": code, "name": name, "message": message}}


def _running(node) -> None:
    if not node.running:
        raise NotRunning("node %s is not running" % node.label)


# ---------------------------------------------------------------- operations


async def _op_info(node, req):
    n = _arg(req, "decisions", int, required=False)
    if n is not None and n < 0:
        raise BadRequest("argument 'decisions' must be >= 0")
    return node_info(node, n)


async def _op_get(node, req):
    path = _arg(req, "path", str)
    _running(node)
    return {"path": path, "value": node.get(path)}


async def _op_show(node, req):
    prefix = _arg(req, "prefix", str, required=False, default="/")
    _running(node)
    return {"items": [[p, v] for p, v in node.items(prefix)]}


async def _op_txid(node, req):
    _running(node)
    return {"txid": node.txid}


async def _commit(node, changes):
    _running(node)
    return {"txid": await node.commit(changes)}


async def _op_commit(node, req):
    return await _commit(node, _changes(req))


async def _op_set(node, req):
    return await _commit(node, [("set", _arg(req, "path", str), _arg(req, "value", str))])


async def _op_delete(node, req):
    return await _commit(node, [("delete", _arg(req, "path", str))])


async def _op_phase(node, req):
    phase = _arg(req, "phase", int)
    if phase not in (0, 1, 2):
        raise BadRequest("phase must be 0, 1 or 2")
    try:
        await node.set_start_phase(phase)
    except ValueError as exc:  # a step the node refuses (B-31)
        raise RuntimeError(str(exc)) from None
    return {"start_phase": node.start_phase}


async def _op_upgrade(node, req):
    await node.set_upgrade(_arg(req, "on", bool))
    return {"upgrade": node.upgrade}


async def _op_kill(node, req):
    await node.kill()
    return {"running": node.running}


async def _op_stop(node, req):
    await node.stop()
    return {"running": node.running}


async def _op_start(node, req):
    await node.start()
    return {"running": node.running}


async def _op_restart(node, req):
    await node.restart(kill=_arg(req, "kill", bool, required=False, default=False))
    return {"running": node.running}


async def _op_freeze(node, req):
    await node.freeze()
    return {"frozen": node.frozen}


async def _op_thaw(node, req):
    await node.thaw()
    return {"frozen": node.frozen}


def _ip(req, key: str, required: bool = True) -> Optional[str]:
    value = _arg(req, key, str, required=required)
    if value is None:
        return None
    try:
        return ipaddress.ip_address(value).compressed
    except ValueError:
        raise BadRequest("argument %r must be an IP address, not %r" % (key, value)) from None


async def _op_partition(node, req):
    await node.partition(_ip(req, "peer"))
    return {"partitions": list(node.partitions)}


async def _op_heal(node, req):
    await node.heal(_ip(req, "peer", required=False) if req.get("peer") is not None else None)
    return {"partitions": list(node.partitions)}


_OPS = {
    "info": _op_info, "get": _op_get, "show": _op_show, "txid": _op_txid,
    "commit": _op_commit, "set": _op_set, "delete": _op_delete,
    "phase": _op_phase, "upgrade": _op_upgrade,
    "kill": _op_kill, "stop": _op_stop, "start": _op_start, "restart": _op_restart,
    "freeze": _op_freeze, "thaw": _op_thaw, "partition": _op_partition, "heal": _op_heal,
}
OPS = tuple(sorted(_OPS))


# ================================================================ client


class ControlError(Exception):
    """An error reply: ``kind``, ``code`` and ``name`` (ConfD error, may be None), ``message``."""

    def __init__(self, kind: str, message: str, code: Optional[int] = None,
                 name: Optional[str] = None):
        super().__init__(message)
        self.kind, self.message, self.code, self.name = kind, message, code, name


class Unreachable(OSError):
    """The control endpoint cannot be reached (no such node, connection lost, timeout);
    ``errno`` is the OS error when there is one."""

    def __init__(self, message: str, os_errno: Optional[int] = None):
        super().__init__(message)
        self.errno = os_errno


class ControlClient:
    """A blocking client of a node's control endpoint (``confd-ha cdb``, process fixtures)."""

    def __init__(self, ipc_address: str = "127.0.0.1", ipc_port: int = 4565, *,
                 path: Optional[str] = None, timeout: Optional[float] = 30.0):
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

    def request(self, op: str, **args):
        """Send one request; return its ``result`` or raise :class:`ControlError` /
        :class:`Unreachable`."""
        reply = self.request_raw(dict(args, op=op))
        if reply.get("ok") is True:
            return reply.get("result")
        err = reply.get("error") if isinstance(reply.get("error"), dict) else {}
        raise ControlError(str(err.get("kind", "internal")), str(err.get("message", "")),
                           err.get("code"), err.get("name"))

    def request_raw(self, req: dict) -> dict:
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

    def __exit__(self, *exc) -> None:
        self.close()


def _errno(exc: OSError) -> Optional[int]:
    """The errno of a failure; ETIMEDOUT for a socket timeout (which has none)."""
    return errno.ETIMEDOUT if isinstance(exc, socket.timeout) else exc.errno


def _shown(address: str) -> str:
    return "@" + address[1:] if address.startswith("\0") else address
