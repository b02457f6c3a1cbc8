"""The emulated daemon's IPC port: hellos, the access check, HA control and event sockets.

It behaves as ConfD 8.2.5 was observed to behave (docs/conformance-ipc.md); what the bytes
mean is decided in :mod:`.ipcmsg` (sans-I/O), this module does the I/O and the deadlines:
``init_timeout`` for the hello and the access check, ``token_timeout`` for an HA control
socket's token frame, ``subscribe_timeout`` for an event socket's subscription.

Every accepted connection runs in its own task and is served only through
``confd_ha._protocol``. Nothing a client sends can raise out of a connection handler, and
nothing it announces is allocated beyond ``max_frame``: longer frames are read and dropped.
A connection closed while bytes it sent are still unread is reset, as the kernel does for
ConfD. Without ``confd_quirks`` one client never holds up another; with it the node also
reproduces ConfD's robustness defects (hellos one at a time, HA orders held while a new
control socket's token is awaited, a malformed subscription dropping every subscriber). HA
work itself is done by the node (:mod:`confd_ha.emulator.node`) through the small interface
documented on :class:`IpcServer`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import socket
import stat
import struct
from typing import Any, AsyncIterator, Deque, List, Optional, Protocol, Set, Union

from .. import _frames, _protocol, error
from .._terms import Atom
from . import handshake, ipcmsg
from .config import NodeConfig
from .eventhub import EventHub, Subscriber

log = logging.getLogger("confd_ha.emulator")

_BACKLOG = 1024
_MAX_QUEUED_ORDERS = 64   # asynchronous orders of one connection not yet executed
MAX_CONNECTIONS = 2048    # open IPC connections; more are closed at once
_CHUNK = 65536


class Closed(Exception):
    """The connection is to be closed (protocol error, deadline or peer close)."""


class IpcConn:
    """One accepted IPC connection; ``send`` is a no-op once it is closed (B-02)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 label: str) -> None:
        self.reader = reader
        self.writer = writer
        self.label = label
        self.closed = False

    def send(self, data: Optional[bytes]) -> None:
        """Write ``data`` (None or nothing: no-op)."""
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
        """Close; with bytes from the client still unread, reset the connection, as the
        kernel does when ConfD closes a socket it has not read to the end."""
        if self.closed:
            return
        self.closed = True
        transport = self.writer.transport
        try:
            if _unread(self.reader) and not transport.get_write_buffer_size():
                sock = transport.get_extra_info("socket")
                if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    transport.abort()
                    return
            self.writer.close()
        except (RuntimeError, OSError):
            pass

    def abort(self) -> None:
        self.closed = True
        try:
            self.writer.transport.abort()
        except (RuntimeError, OSError):
            pass


def _unread(reader: asyncio.StreamReader) -> bool:
    # StreamReader keeps what the transport has read but nobody consumed in ``_buffer``.
    return bool(getattr(reader, "_buffer", b""))


class Handler(Protocol):
    """What :class:`IpcServer` asks its node (see there)."""

    @property
    def label(self) -> str: ...

    @property
    def hub(self) -> EventHub: ...

    def attach_control(self, conn: IpcConn, token: bytes) -> None: ...

    def submit_order(self, order: _protocol.Order) -> "asyncio.Future[Optional[bytes]]": ...

    def submit_invalid(self, why: str) -> "asyncio.Future[None]": ...


class IpcServer:
    """The IPC listener(s) of one node.

    ``handler`` is the node; it must provide ``label`` (str for logs), ``hub``
    (:class:`~confd_ha.emulator.eventhub.EventHub`), ``attach_control(conn, token)`` and
    ``submit_order(order) -> Future`` whose result is the reply frame or ``None`` for no reply
    (W-17) -- status orders go through it too -- and ``submit_invalid(why) -> Future`` for an
    invalid besecondary with WaitReply 0 (reported as BESECONDARY_RESULT 21, never answered).
    With confd_quirks, if it has
    ``control_crashed(conn, why)`` (a coroutine), that emulates ConfD's HA subsystem failing on
    a malformed besecondary; otherwise this module does it with a benone.

    At most :data:`MAX_CONNECTIONS` connections are served at once; above that a new
    connection is closed at once (logged once per burst).
    """

    def __init__(self, config: NodeConfig, handler: Handler) -> None:
        self.config = config
        self.handler = handler
        self.port: Optional[int] = None
        self._servers: List[asyncio.AbstractServer] = []
        self._conns: Set[IpcConn] = set()
        self._tasks: "Set[asyncio.Task[Any]]" = set()
        self._secret: Optional[bytes] = None
        self._refused = 0          # connections refused in the current burst (above the cap)
        self._hello_gate: Optional[asyncio.Lock] = None   # confd_quirks: one hello at a time
        self._ha_gate: Optional[asyncio.Lock] = None      # confd_quirks: token waits hold HA

    async def start(self, port: Optional[int] = None) -> None:
        """Listen on the configured address and port (``port`` overrides the latter)."""
        cfg = self.config
        if cfg.ipc_access_file is not None:
            with open(cfg.ipc_access_file, "rb") as f:
                self._secret = f.read()  # W-14: raw bytes, nothing stripped
        else:
            self._secret = None
        if cfg.confd_quirks:
            self._hello_gate, self._ha_gate = asyncio.Lock(), asyncio.Lock()
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
        assert task is not None  # a connection is served in a task of its own
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
        async with _gate(self._hello_gate):
            verdict = await self._hello(conn)
        if verdict is None:
            await _hold(conn.reader)  # taken, never answered (as ConfD)
            return
        if verdict == _protocol.CT_HA:
            await self._serve_control(conn)
        elif verdict == _protocol.CT_EVENT:
            await self._serve_events(conn)
        else:
            # CAPI, CDB, MAAPI, STREAM: the handshake only; what they send is dropped.
            await _hold(conn.reader)

    async def _hello(self, conn: IpcConn) -> Optional[int]:
        """Run the daemon's side of the handshake (:func:`.handshake.accept`): the client
        type of a served connection, None for a silent one. The deadline starts here: with
        confd_quirks that is when the connection's turn comes."""
        deadline = asyncio.get_running_loop().time() + self.config.init_timeout
        flow = handshake.accept(self.config, self._secret)
        data: Optional[bytes] = None
        while True:
            try:
                step = flow.send(data)
            except StopIteration as stop:
                outcome: handshake.Outcome = stop.value
                break
            if step.kind == handshake.SEND:
                conn.send(step.data)
                data = None
            else:
                data = await _read(conn.reader, step.n, deadline, step.what)
        if outcome.action == handshake.CLOSE:
            raise Closed(outcome.why)
        return None if outcome.action == handshake.SILENT else outcome.ctype

    # ------------------------------------------------------------ HA control socket

    async def _serve_control(self, conn: IpcConn) -> None:
        async with _gate(self._ha_gate):
            token = await self._read_token(conn)
            self.handler.attach_control(conn, token)  # W-16: the token's bytes as they are
        unanswered: "Deque[asyncio.Future[Any]]" = collections.deque()
        quirks = self.config.confd_quirks
        frames = self._frames()
        while not conn.closed:
            payload = await _frame(conn.reader, frames, None, "frame")
            async with _gate(self._ha_gate):
                pass  # confd_quirks: nothing of HA runs while a token is awaited
            term = ipcmsg.UNDECODABLE if isinstance(payload, _frames.TooLong) else \
                ipcmsg.decode_lenient(payload, self.config.max_frame)
            verdict = ipcmsg.classify_order(term)
            if verdict.kind == ipcmsg.REFUSE:
                log.info("%s: answered with PROTOUSAGE: %s", conn.label, verdict.why)
                conn.send(_protocol.encode_error(error.ERR_PROTOUSAGE))
                await conn.drain()
                continue
            if verdict.kind == ipcmsg.CRASH or (verdict.crash_after and not quirks):
                if quirks:
                    await self._crash_control(conn, verdict.why)
                    return
                # Without the quirks the order is refused instead of failing ConfD-like.
                if verdict.asynchronous:
                    log.info("%s: invalid asynchronous besecondary: %s", conn.label, verdict.why)
                    await self._queue_unanswered(unanswered,
                                                 self.handler.submit_invalid(verdict.why))
                    continue
                log.info("%s: answered with PROTOUSAGE: %s", conn.label, verdict.why)
                conn.send(_protocol.encode_error(error.ERR_PROTOUSAGE))
                await conn.drain()
                continue
            order = verdict.order
            assert order is not None  # every verdict but REFUSE and CRASH carries its order
            # A status too goes through the node's HA engine: it is answered in turn, not
            # while an order runs or an HA_INFO_SYNC acknowledgement is owed (as ConfD).
            reply = self.handler.submit_order(order)
            if order.code == _protocol.BESECONDARY and not order.waitreply:
                # W-17: nothing is ever written for it; the node reports through events.
                await self._queue_unanswered(unanswered, reply)
                continue
            frame = await reply
            if verdict.crash_after:
                raise Closed("%s: closed instead of answered" % verdict.why)
            conn.send(frame)  # a no-op if the socket was closed or replaced meanwhile (B-02)
            await conn.drain()

    async def _read_token(self, conn: IpcConn) -> bytes:
        deadline = asyncio.get_running_loop().time() + self.config.token_timeout
        token = await _frame(conn.reader, self._frames(), deadline, "token frame")
        if isinstance(token, _frames.TooLong):
            raise Closed("token frame of %d bytes refused" % token.size)
        return token

    async def _crash_control(self, conn: IpcConn, why: str) -> None:
        """confd_quirks: ConfD's HA subsystem fails on this order -- the node drops to NONE
        (IS_NONE) and the control socket is closed without a reply."""
        log.warning("%s: order makes ConfD's HA subsystem fail (quirk): %s", conn.label, why)
        hook = getattr(self.handler, "control_crashed", None)
        if hook is not None:
            await hook(conn, why)
        else:
            await self.handler.submit_order(_protocol.Order(_protocol.BENONE))
        raise Closed("HA control socket dropped: %s" % why)

    @staticmethod
    async def _queue_unanswered(unanswered: "Deque[asyncio.Future[Any]]",
                                fut: "asyncio.Future[Any]") -> None:
        """Keep an order that gets no reply. The next orders are read at once (a status must
        not wait for the engine), but only so many may be queued: a flood of them waits here."""
        unanswered.append(fut)
        while len(unanswered) > _MAX_QUEUED_ORDERS:
            await unanswered.popleft()
        while unanswered and unanswered[0].done():
            unanswered.popleft()
        await asyncio.sleep(0)  # fairness, as in IpcConn.drain

    # ------------------------------------------------------------ event socket

    async def _serve_events(self, conn: IpcConn) -> None:
        deadline = asyncio.get_running_loop().time() + self.config.subscribe_timeout
        frames = self._frames()
        payload = await _frame(conn.reader, frames, deadline, "subscription")
        if isinstance(payload, _frames.TooLong):
            verdict = ipcmsg.Subscription(ipcmsg.CRASH)
        else:
            verdict = ipcmsg.classify_subscription(payload, self.config.max_frame)
        hub = self.handler.hub
        if verdict.kind == ipcmsg.BAD:
            conn.send(ipcmsg.BAD_SUBSCRIPTION_FRAME)
            raise Closed("bad subscription data")
        if verdict.kind == ipcmsg.CLOSE:
            raise Closed("negative subscription mask")
        if verdict.kind == ipcmsg.CRASH:
            if self.config.confd_quirks:
                log.warning("%s: malformed subscription: every event socket dropped (quirk)",
                            conn.label)
                hub.close_all()
            raise Closed("malformed subscription")
        conn.send(_protocol.OK_FRAME)
        sub = Subscriber(hub, conn.writer, verdict.mask, conn.label)
        hub.add(sub)
        try:
            while not sub.closed:
                payload = await _frame(conn.reader, frames, None, "frame")
                term = ipcmsg.UNDECODABLE if isinstance(payload, _frames.TooLong) else \
                    ipcmsg.decode_lenient(payload, self.config.max_frame)
                if not (isinstance(term, Atom) and term == ipcmsg.HA_SYNCED):
                    raise Closed("illegal message on event socket")
                sub.ack()  # ignored when nothing is owed (W-32)
                await asyncio.sleep(0)  # a flood of frames must not hold the loop (as drain)
        finally:
            sub.close()

    # ------------------------------------------------------------ frames

    def _frames(self) -> _frames.FrameReader:
        """A connection's frame reader: a frame longer than ``max_frame`` is read and dropped
        (ConfD waits for such a frame too), one announced above MAX_ANNOUNCED closes it."""
        return _frames.FrameReader(ipcmsg.MAX_ANNOUNCED, drop_above=self.config.max_frame)


# ------------------------------------------------------------ reading helpers


@contextlib.asynccontextmanager
async def _gate(lock: Optional[asyncio.Lock]) -> AsyncIterator[None]:
    if lock is None:
        yield
    else:
        async with lock:
            yield


async def _read(reader: asyncio.StreamReader, n: int, deadline: float, what: str) -> bytes:
    """Exactly ``n`` bytes before ``deadline``. What arrived of them counts as read even when
    the deadline passes (so the close that follows is not a reset, as with ConfD)."""
    loop = asyncio.get_running_loop()
    got = b""
    while len(got) < n:
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise Closed("%s not complete within the deadline" % what)
        try:
            chunk = await asyncio.wait_for(reader.read(n - len(got)), remaining)
        except asyncio.TimeoutError:
            raise Closed("%s not complete within the deadline" % what) from None
        if not chunk:
            raise asyncio.IncompleteReadError(got, n)
        got += chunk
    return got


async def _frame(reader: asyncio.StreamReader, frames: _frames.FrameReader,
                 deadline: Optional[float], what: str) -> Union[bytes, _frames.TooLong]:
    """The next frame of ``frames``, reading exactly what it lacks before ``deadline`` (None:
    no deadline). As with :func:`_read`, what arrived counts as read when the deadline
    passes; a frame announced above the reader's limit closes the connection."""
    loop = asyncio.get_running_loop()
    while True:
        try:
            payload = frames.pop()
        except error.Error as exc:
            raise Closed(exc.confd_lasterr) from None
        if payload is not None:
            return payload
        want = min(frames.needed, _CHUNK)
        if deadline is None and not frames.dropping:
            # Taken only once all of them are there: the bytes of an incomplete header or
            # payload count as unread, so a close meanwhile resets (see IpcConn.close).
            chunk = await reader.readexactly(frames.needed)
        elif deadline is None:
            chunk = await reader.read(want)
        else:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise Closed("%s not complete within the deadline" % what)
            try:
                chunk = await asyncio.wait_for(reader.read(want), remaining)
            except asyncio.TimeoutError:
                raise Closed("%s not complete within the deadline" % what) from None
        if not chunk:
            raise asyncio.IncompleteReadError(b"", want)
        frames.feed(chunk)


async def _hold(reader: asyncio.StreamReader) -> None:
    """Keep a connection that is never answered until the client closes it, dropping what it
    sends."""
    while await reader.read(_CHUNK):
        pass


def _peer_text(peer: object) -> str:
    if isinstance(peer, tuple) and len(peer) >= 2:
        return "%s:%s" % (peer[0], peer[1])
    return "unix"


def _is_socket(path: str) -> bool:
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False

