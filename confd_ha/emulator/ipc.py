"""The emulated daemon's IPC port: handshake, access check, HA control and event sockets.

Spec: wire-protocol §2.4 (W-02), §3 (W-04, W-06, W-09), §4 (W-12, W-13, W-14), §5 (W-15),
§6 (W-16, W-17, W-21) and §10 (W-30, W-32); ha-behaviour §3 (B-02).

Every accepted connection runs in its own task and is served only through
``confd_ha._protocol``. Nothing a client sends can raise out of a connection handler: bad input
closes that one connection (or, for a well-formed but invalid order, is answered with
``{error, 21}``), so junk, slow or idle clients never stop the node from serving the others.
HA work itself is done by the node (:mod:`confd_ha.emulator.node`) through the small
interface documented on :class:`IpcServer`.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import secrets
import stat
from typing import Optional

from .. import _protocol, error
from .._terms import Atom
from .config import NodeConfig
from .eventhub import Subscriber

log = logging.getLogger("confd_ha.emulator")

_BACKLOG = 1024
_MAX_QUEUED_ORDERS = 64   # asynchronous orders of one connection not yet executed
MAX_CONNECTIONS = 2048    # open IPC connections; more are closed at once


class Closed(Exception):
    """The connection is to be closed (protocol error, deadline or peer close)."""


class IpcConn:
    """One accepted IPC connection; ``send`` is a no-op once it is closed (B-02)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, label: str):
        self.reader = reader
        self.writer = writer
        self.label = label
        self.closed = False

    def send(self, data: bytes) -> None:
        if self.closed or not data:
            return
        try:
            self.writer.write(data)
        except (ConnectionError, RuntimeError, OSError):
            self.close()

    async def drain(self) -> None:
        """Wait while the client does not read its replies (so they cannot pile up), then let
        the rest of the node run."""
        if self.closed:
            return
        try:
            await self.writer.drain()
        except (ConnectionError, RuntimeError, OSError):
            self.close()
        # Neither drain() nor readexactly() suspends while the kernel takes the replies and
        # pipelined requests are buffered: without this yield one pipelining client would hold
        # the loop (ticks, replication, every other client) for a whole read buffer.
        await asyncio.sleep(0)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.writer.close()
        except (RuntimeError, OSError):
            pass

    def abort(self) -> None:
        self.closed = True
        try:
            self.writer.transport.abort()
        except (RuntimeError, OSError):
            pass


class IpcServer:
    """The IPC listener(s) of one node.

    ``handler`` is the node; it must provide ``label`` (str for logs), ``hub``
    (:class:`~confd_ha.emulator.eventhub.EventHub`), ``attach_control(conn, token)``,
    ``status_frame() -> bytes``, ``submit_order(order) -> Future`` whose result is the
    reply frame or ``None`` for no reply (W-17), and ``submit_invalid(why) -> Future`` for an
    invalid besecondary with WaitReply 0 (reported as BESECONDARY_RESULT 21, never answered).

    At most :data:`MAX_CONNECTIONS` connections are served at once; above that a new
    connection is closed at once (logged once per burst).
    """

    def __init__(self, config: NodeConfig, handler):
        self.config = config
        self.handler = handler
        self.port = None
        self._servers: list = []
        self._conns: set = set()
        self._tasks: set = set()
        self._secret = None
        self._refused = 0          # connections refused in the current burst (above the cap)

    async def start(self, port: Optional[int] = None) -> None:
        """Listen on the configured address and port (``port`` overrides the latter)."""
        cfg = self.config
        if cfg.ipc_access_file is not None:
            with open(cfg.ipc_access_file, "rb") as f:
                self._secret = f.read()  # W-14: raw bytes, nothing stripped
        else:
            self._secret = None
        server = await asyncio.start_server(self._accept, cfg.ipc_address,
                                            cfg.ipc_port if port is None else port,
                                            backlog=_BACKLOG, reuse_address=True)
        self._servers.append(server)
        self.port = server.sockets[0].getsockname()[1]
        if cfg.ipc_path is not None:
            if os.path.exists(cfg.ipc_path) and _is_socket(cfg.ipc_path):
                os.unlink(cfg.ipc_path)  # stale socket of an earlier run
            self._servers.append(await asyncio.start_unix_server(self._accept, cfg.ipc_path,
                                                                 backlog=_BACKLOG))

    async def stop(self, abort: bool = False) -> None:
        """Stop listening and close every connection (``abort``: without flushing)."""
        for server in self._servers:
            server.close()
        for conn in list(self._conns):
            conn.abort() if abort else conn.close()
        for task in list(self._tasks):
            task.cancel()
        for server in self._servers:
            try:
                await server.wait_closed()
            except Exception:  # pragma: no cover - defensive
                pass
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._servers.clear()
        if self.config.ipc_path is not None and _is_socket(self.config.ipc_path):
            try:
                os.unlink(self.config.ipc_path)
            except OSError:
                pass

    @property
    def connections(self) -> int:
        return len(self._conns)

    # ------------------------------------------------------------ per connection

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        label = "%s %s" % (self.handler.label, _peer_text(peer))
        if len(self._conns) >= MAX_CONNECTIONS:
            self._refuse(writer, label)
            return
        conn = IpcConn(reader, writer, label)
        task = asyncio.current_task()
        self._conns.add(conn)
        self._tasks.add(task)
        try:
            await self._serve(conn)
        except Closed as exc:
            if str(exc):
                log.info("%s: closing IPC connection: %s", label, exc)
        except asyncio.CancelledError:
            pass
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        except error.Error as exc:
            log.info("%s: closing IPC connection: %s", label, exc)
        except Exception:  # never let a bug in one connection escape into the node
            log.exception("%s: IPC connection failed", label)
        finally:
            conn.close()
            self._conns.discard(conn)
            self._tasks.discard(task)
            if self._refused and len(self._conns) < MAX_CONNECTIONS * 9 // 10:  # burst over
                log.warning("%s: accepting IPC connections again (%d refused above %d)",
                            self.handler.label, self._refused, MAX_CONNECTIONS)
                self._refused = 0

    def _refuse(self, writer: asyncio.StreamWriter, label: str) -> None:
        """Close a connection above the cap at once; said once per burst, not per connection."""
        if not self._refused:
            log.warning("%s: too many IPC connections (%d), closing new ones at once",
                        label, MAX_CONNECTIONS)
        self._refused += 1
        try:
            writer.close()
        except (RuntimeError, OSError):  # pragma: no cover - loop closing
            pass

    async def _serve(self, conn: IpcConn) -> None:
        cfg = self.config
        loop = asyncio.get_running_loop()
        deadline = loop.time() + cfg.init_timeout
        hello = _protocol.parse_hello(await _read(conn.reader, _protocol.HELLO_LEN, deadline))
        ctype = hello.byte0 & _protocol.CT_MASK
        if ctype not in (_protocol.CT_HA, _protocol.CT_EVENT):
            raise Closed("client type %d not served (W-09)" % ctype)
        variant = _protocol.access_variant(hello.byte0)
        if self._secret is None:
            if variant is not None:
                raise Closed("access-check flags in hello but the check is disabled (W-12)")
        else:
            if variant not in (_protocol.ACCESS_V1, _protocol.ACCESS_V2):
                raise Closed("access check enabled but the hello asks for no valid variant (W-12)")
            await self._access_check(conn, variant, deadline)
        window = cfg.accepted_proto_vsns
        accepted = window is None or window[0] <= hello.proto_vsn <= window[1]
        status = _protocol.HELLO_ACCEPTED if accepted else _protocol.HELLO_BADVSN
        conn.send(_protocol.build_hello(_protocol.Hello(status, cfg.proto_vsn, cfg.vsn,
                                                        cfg.maxdepth, cfg.maxkeylen)))
        if not accepted:
            raise Closed("client protocol version %d outside %d..%d (W-06)"
                         % (hello.proto_vsn, window[0], window[1]))
        if ctype == _protocol.CT_HA:
            await self._serve_control(conn, deadline)
        else:
            await self._serve_events(conn)

    async def _access_check(self, conn: IpcConn, variant: int, deadline: float) -> None:
        size = _protocol.challenge_size(variant)
        nonce = secrets.token_bytes(size - 1)
        conn.send(_protocol.build_challenge(nonce))
        response = await _read(conn.reader, size, deadline)
        if not _protocol.verify_response(variant, self._secret, nonce, response):
            conn.send(_protocol.ACCESS_REJECTED)
            raise Closed("IPC access check failed (W-13)")
        conn.send(_protocol.ACCESS_OK)

    async def _serve_control(self, conn: IpcConn, deadline: float) -> None:
        size = _frame_size(await _read(conn.reader, 4, deadline), self.config.max_frame)
        token = await _read(conn.reader, size, deadline) if size else b""
        if token.endswith(b"\x00"):
            token = token[:-1]  # W-16: tolerate a libconfd that sends the C string's NUL
        self.handler.attach_control(conn, token)
        unanswered: collections.deque = collections.deque()
        while not conn.closed:
            payload = await _read_frame(conn.reader, self.config.max_frame)
            try:
                order = _protocol.decode_order(payload)
            except _protocol.BadOrder as exc:
                if not exc.reply:
                    # W-17 before W-21: a besecondary with WaitReply 0 never gets a reply, even
                    # when invalid; PROTOUSAGE is reported as BESECONDARY_RESULT (B-15).
                    log.info("%s: invalid asynchronous besecondary: %s", conn.label, exc)
                    await self._queue_unanswered(unanswered, self.handler.submit_invalid(str(exc)))
                    continue
                log.info("%s: invalid order answered with PROTOUSAGE: %s", conn.label, exc)
                conn.send(_protocol.encode_error(error.ERR_PROTOUSAGE))
                await conn.drain()
                continue
            except error.Error as exc:
                raise Closed("undecodable order (W-15): %s" % exc.confd_lasterr) from None
            if order.code == _protocol.GETSTATUS:
                conn.send(self.handler.status_frame())  # always at once, even when blocked (B-27)
                await conn.drain()
                continue
            reply = self.handler.submit_order(order)
            if order.code == _protocol.BESECONDARY and not order.waitreply:
                # W-17: nothing is ever written for it; the node reports through events.
                await self._queue_unanswered(unanswered, reply)
                continue
            frame = await reply
            conn.send(frame)  # a no-op if the socket was closed or replaced meanwhile (B-02)
            await conn.drain()

    @staticmethod
    async def _queue_unanswered(unanswered: collections.deque, fut: "asyncio.Future") -> None:
        """Keep an order that gets no reply. The next orders are read at once (a status must
        not wait for the engine), but only so many may be queued: a flood of them waits here."""
        unanswered.append(fut)
        while len(unanswered) > _MAX_QUEUED_ORDERS:
            await unanswered.popleft()
        while unanswered and unanswered[0].done():
            unanswered.popleft()
        await asyncio.sleep(0)  # fairness, as in IpcConn.drain

    async def _serve_events(self, conn: IpcConn) -> None:
        payload = await _read_frame(conn.reader, self.config.max_frame)
        try:
            mask = _protocol.decode_subscription(payload)
        except _protocol.BadOrder:
            conn.send(_protocol.encode_error(error.ERR_PROTOUSAGE))
            raise Closed("invalid subscription term") from None
        except error.Error as exc:
            raise Closed("undecodable subscription (W-15): %s" % exc.confd_lasterr) from None
        conn.send(_protocol.OK_FRAME)
        hub = self.handler.hub
        sub = Subscriber(hub, conn.writer, mask, conn.label)
        hub.add(sub)
        try:
            while not sub.closed:
                payload = await _read_frame(conn.reader, self.config.max_frame)
                try:
                    term = _protocol.decode(payload)
                except error.Error as exc:
                    raise Closed("undecodable frame on event socket (W-15): %s"
                                 % exc.confd_lasterr) from None
                if isinstance(term, Atom) and term == "ha_synced":
                    sub.ack()
                else:
                    log.info("%s: unexpected frame on event socket ignored (W-32)", conn.label)
                await asyncio.sleep(0)  # a flood of frames must not hold the loop (as drain)
        finally:
            sub.close()


# ------------------------------------------------------------ reading helpers


async def _read(reader: asyncio.StreamReader, n: int, deadline: float) -> bytes:
    remaining = deadline - asyncio.get_running_loop().time()
    if remaining <= 0:
        raise Closed("initialisation not complete within the deadline (W-02)")
    try:
        return await asyncio.wait_for(reader.readexactly(n), remaining)
    except asyncio.TimeoutError:
        raise Closed("initialisation not complete within the deadline (W-02)") from None


def _frame_size(header: bytes, limit: int) -> int:
    try:
        return _protocol.frame_size(header, limit)
    except error.Error as exc:
        raise Closed("bad frame header (W-15): %s" % exc.confd_lasterr) from None


async def _read_frame(reader: asyncio.StreamReader, limit: int) -> bytes:
    size = _frame_size(await reader.readexactly(4), limit)
    return await reader.readexactly(size) if size else b""


def _peer_text(peer) -> str:
    if isinstance(peer, tuple) and len(peer) >= 2:
        return "%s:%s" % (peer[0], peer[1])
    return "unix"


def _is_socket(path: str) -> bool:
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False

