"""One inter-node connection of the emulator's peer protocol (docs/peer-protocol.md).

A :class:`PeerConn` carries framed canonical ETF terms (``_codec.encode_frame`` /
``_codec.decode``, read with ``_frames.FrameReader``) and does, beside its node's HA engine:

* **ticks and liveness, as ConfD does them** (docs/conformance.md, "Liveness"): each side sends
  ``ha_tick`` every tick timeout, and checks its peer on a grid of its own -- every tick
  timeout from the moment its side of the join completed. At a grid point where nothing has
  been received for more than 3 tick timeouts, the peer is dead (``HA_NOTICK``). A node that
  notices a close only after such a silence (it was stopped, say) also reports ``HA_NOTICK``.
* acknowledgement tracking of replicated transactions;
* the *hold* that implements the emulator's freeze and partitions: nothing is read or written
  while held, not even a close.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from typing import Dict, List, Optional, Protocol, Tuple, Union

from .. import _codec, _frames, error
from .._consts import TICKS_TO_DEATH, is_int as is_int  # tree, peer import is_int from here
from .._terms import Atom, Term

log = logging.getLogger("confd_ha.emulator")

HA_TICK = Atom("ha_tick")
HA_TRANS = Atom("ha_trans")
HA_ACK = Atom("ha_ack")
HA_BYE = Atom("ha_bye")

WATCH_OFFSET = 0.05     # s: a checker's grid trails the peer's ticks by this much (see above)

# What may wait for a connection's consumer (e.g. while the node's HA engine is blocked);
# more is a misbehaving peer and costs it the connection. Counted in frames and in payload
# bytes: frames may be up to max_frame (16 MiB) each.
INBOX_LIMIT = 10_000
INBOX_FRAMES_OF_BYTES = 4     # × max_frame


def normalize_ip(text: str) -> str:
    """Canonical text of an IP (scope dropped, IPv4-mapped IPv6 as IPv4)."""
    text = text.split("%", 1)[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return text
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.compressed


class PeerClosed(Exception):
    """The connection is gone; ``reason`` is HA_CLOSED (26) or HA_NOTICK (31)."""

    def __init__(self, reason: int):
        super().__init__(reason)
        self.reason = reason


class Policy(Protocol):
    """What a :class:`PeerConn` asks its node."""

    @property
    def frozen(self) -> bool:
        """True while all inter-node traffic is held (sockets kept open)."""

    def held(self, peer_ip: str) -> bool:
        """True while traffic with ``peer_ip`` must not flow (freeze or partition)."""

    def alive(self) -> bool:
        """False once the node is stopping: no new connection may start."""

    def register(self, conn: "PeerConn") -> None:
        """``conn`` is open: the node closes it when it stops."""

    def unregister(self, conn: "PeerConn") -> None:
        """``conn`` is closed."""


def is_tick(term: Term) -> bool:
    return isinstance(term, Atom) and term == HA_TICK


def is_tagged(term: Term, tag: Atom, arity: int) -> bool:
    return (isinstance(term, tuple) and len(term) == arity and isinstance(term[0], Atom)
            and term[0] == tag)


def is_ack(term: Term) -> bool:
    return is_tagged(term, HA_ACK, 2) and is_int(term[1])


def is_bye(term: Term) -> bool:
    return is_tagged(term, HA_BYE, 2)


class PeerConn:
    """One inter-node connection: framed terms, ticks, liveness, ack tracking, hold.

    Received terms queue up in order and are taken with :meth:`recv`, which raises
    :class:`PeerClosed` after the last one once the connection has died. A connection closed
    locally with :meth:`close` reports HA_CLOSED to its own reader only.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                 policy: Policy, tick: float, max_frame: int, label: str):
        loop = asyncio.get_running_loop()
        self._loop = loop
        self.reader = reader
        self.writer = writer
        self.policy = policy
        self.tick = tick
        self.max_frame = max_frame
        self.label = label
        peer = writer.get_extra_info("peername")
        self.peer_ip = normalize_ip(peer[0]) if isinstance(peer, tuple) else ""
        self.closed = False
        self.reason: Optional[int] = None
        self.torn = False             # the stream ended inside a frame (B-14)
        self.nodeid: Term = None      # the joining node's id, once its hello was read
        # (term or PeerClosed, payload bytes)
        self._inbox: "asyncio.Queue[Tuple[Union[Term, PeerClosed], int]]" = asyncio.Queue()
        self._inbox_bytes = 0
        self._flow = asyncio.Event()
        self._flow.set()
        self._held = False
        self._held_out: List[bytes] = []
        self._close_on_release = False
        self._last_rx = loop.time()
        self._seq = 0
        self._acks: "Dict[int, Tuple[float, asyncio.Future[bool]]]" = {}  # seq -> (sent at, ack)
        self._sender: "Optional[asyncio.Task[None]]" = None
        self._watcher: "Optional[asyncio.Task[None]]" = None
        policy.register(self)
        self.refresh()
        self._reader_task = asyncio.ensure_future(self._read_loop())

    # ------------------------------------------------------------ hold (freeze, partition)

    def refresh(self) -> None:
        """Re-evaluate the hold after a freeze/thaw/partition/heal of the node."""
        held = self.policy.held(self.peer_ip)
        if held == self._held:
            return
        self._held = held
        if held:
            self._flow.clear()
            return
        # Released: everything held back goes out now, and the silence timer restarts so
        # that the time spent held does not count as silence of the peer.
        now = self._loop.time()
        self._last_rx = now
        for seq, (_, fut) in list(self._acks.items()):
            self._acks[seq] = (now, fut)
        self._write_out()
        if self._close_on_release:
            self._really_close()
            return
        self._flow.set()

    def _write_out(self) -> None:
        frames, self._held_out = self._held_out, []
        for frame in frames:
            self._write(frame)

    # ------------------------------------------------------------ sending

    def send(self, term: Term) -> None:
        """Queue one term (dropped once closed; held back while held, ticks excepted)."""
        if self.closed:
            return
        frame = _codec.encode_frame(term)
        if self._held:
            if not is_tick(term):
                self._held_out.append(frame)
            return
        self._write(frame)

    def _write(self, frame: bytes) -> None:
        try:
            self.writer.write(frame)
        except (ConnectionError, RuntimeError, OSError):
            pass  # the reader sees the failure as a close

    def replicate(self, txid: str, changes: bytes) -> "asyncio.Future[bool]":
        """Send ``{ha_trans, Seq, TxId, Changes}``; the future becomes True on its ack and
        False if the connection dies first."""
        fut: "asyncio.Future[bool]" = self._loop.create_future()
        if self.closed:
            fut.set_result(False)
            return fut
        self._seq += 1
        self._acks[self._seq] = (self._loop.time(), fut)
        self.send((HA_TRANS, self._seq, txid.encode("utf-8"), changes))
        return fut

    def acked(self, seq: int) -> None:
        entry = self._acks.pop(seq, None)
        if entry is not None and not entry[1].done():
            entry[1].set_result(True)

    @property
    def unacked(self) -> int:
        return len(self._acks)

    # ------------------------------------------------------------ receiving

    async def recv(self, timeout: Optional[float] = None) -> Term:
        """The next received term; :class:`PeerClosed` once dead, ``asyncio.TimeoutError``
        after ``timeout`` seconds."""
        if timeout is not None:
            if timeout <= 0:
                raise asyncio.TimeoutError
            item, size = await asyncio.wait_for(self._inbox.get(), timeout)
        else:
            item, size = await self._inbox.get()
        self._inbox_bytes -= size
        if isinstance(item, PeerClosed):
            self._inbox.put_nowait((item, 0))  # every later recv sees the close too
            raise item
        return item

    async def _next_frame(self, frames: _frames.FrameReader) -> Optional[bytes]:
        """The next frame's payload, None once the peer closed (marking a torn frame)."""
        while True:
            payload = frames.pop()
            if isinstance(payload, bytes):
                return payload
            # Exactly what the frame lacks: what is not read stays unread (see IpcConn.close).
            chunk = await self.reader.read(frames.needed)
            if not chunk:
                if frames.mid_frame:
                    self.torn = True
                return None
            frames.feed(chunk)

    async def _read_loop(self) -> None:
        frames = _frames.FrameReader(self.max_frame)
        try:
            while True:
                await self._flow.wait()
                payload = await self._next_frame(frames)
                if payload is None:
                    break
                size = len(payload)
                term = _codec.decode(payload)
                # A frame that was in flight when the hold began is delivered on release.
                await self._flow.wait()
                if self._silent_too_long():
                    break  # stopped for longer than the death timeout: the peer is dead
                self._last_rx = self._loop.time()
                # Ticks and acknowledgements are handled here, not by the consumer, so that
                # they keep working while the node's HA engine is blocked.
                if is_tick(term):
                    continue
                if is_ack(term):
                    self.acked(term[1])
                    continue
                self._inbox.put_nowait((term, size))
                self._inbox_bytes += size
                if self._inbox.qsize() > INBOX_LIMIT or \
                        self._inbox_bytes > INBOX_FRAMES_OF_BYTES * self.max_frame:
                    log.warning("%s: peer floods its connection (%d frames, %d bytes waiting), "
                                "closing", self.label, self._inbox.qsize(), self._inbox_bytes)
                    break
        except asyncio.CancelledError:
            return
        except (ConnectionError, OSError):
            pass
        except error.Error as exc:
            log.warning("%s: protocol error from peer, closing: %s", self.label, exc.confd_lasterr)
        except Exception:  # never leave a connection half-dead after a bug
            log.exception("%s: reading from peer failed, closing", self.label)
        try:
            await self._flow.wait()  # a held connection reports its death only when released
        except asyncio.CancelledError:
            return
        self.die(error.ERR_HA_NOTICK if self._silent_too_long() else error.ERR_HA_CLOSED)

    def _silent_too_long(self) -> bool:
        # Only once the peer is watched (the join is done): before that, the join's own
        # deadline applies.
        return (self._watcher is not None and self.tick > 0 and not self.policy.frozen and
                self._loop.time() - self._last_rx > TICKS_TO_DEATH * self.tick)

    # ------------------------------------------------------------ ticks and liveness

    def start_ticks(self) -> None:
        """Send ``ha_tick`` every tick timeout from now (no-op with tick timeout 0)."""
        if self.tick > 0 and self._sender is None and not self.closed:
            self._sender = asyncio.ensure_future(self._tick_loop())

    def start_watch(self) -> None:
        """Start checking the peer on a grid of tick timeouts from now (plus a small offset
        that keeps the grid after the peer's ticks, whose timers started a little earlier)."""
        if self.tick > 0 and self._watcher is None and not self.closed:
            self._last_rx = max(self._last_rx, self._loop.time() - WATCH_OFFSET)
            self._watcher = asyncio.ensure_future(self._watch_loop())

    async def _tick_loop(self) -> None:
        tick = self.tick
        due = self._loop.time()
        try:
            while not self.closed:
                due += tick
                await asyncio.sleep(max(due - self._loop.time(), 0))
                if not self.policy.frozen:
                    self.send(HA_TICK)
                due = max(due, self._loop.time() - tick)  # after a stop: no burst of ticks
        except asyncio.CancelledError:
            return

    async def _watch_loop(self) -> None:
        tick = self.tick
        limit = TICKS_TO_DEATH * tick
        due = self._loop.time() + WATCH_OFFSET
        try:
            while not self.closed:
                due += tick
                await asyncio.sleep(max(due - self._loop.time(), 0))
                if self.policy.frozen:
                    continue  # a frozen node notices nothing; its clock restarts on thaw
                now = self._loop.time()
                if now - self._last_rx > limit:
                    log.info("%s: nothing received for %.2f s, peer is dead", self.label,
                             now - self._last_rx)
                    self.die(error.ERR_HA_NOTICK)
                    return
                if self._acks and now - min(t for t, _ in self._acks.values()) > limit:
                    log.info("%s: transaction not acknowledged within %.2f s, peer is dead",
                             self.label, limit)
                    self.die(error.ERR_HA_NOTICK)
                    return
                due = max(due, now - tick)
        except asyncio.CancelledError:
            return

    # ------------------------------------------------------------ ending

    def die(self, reason: int) -> None:
        """The connection failed by itself: close it and let :meth:`recv` report ``reason``."""
        if self.closed:
            return
        self.reason = reason
        self._shut()
        self._inbox.put_nowait((PeerClosed(reason), 0))
        self._end()

    def close(self, bye: bool = False) -> None:
        """Close from this side (an order, a rejection); the node does not treat it as a
        loss. ``bye`` sends the optional ``{ha_bye, 0}`` first."""
        if self.closed:
            return
        if bye:
            self.send((HA_BYE, 0))
        self.reason = error.ERR_HA_CLOSED
        self._shut()
        self._inbox.put_nowait((PeerClosed(error.ERR_HA_CLOSED), 0))
        self._end()

    def _end(self) -> None:
        # While held even the close waits for the release: across a freeze or a partition
        # the peer sees silence (and so HA_NOTICK), not a close.
        if self._held:
            self._close_on_release = True
        else:
            self._really_close()

    def abort(self) -> None:
        """Abrupt close without goodbye or flushing (node killed)."""
        if not self.closed:
            self.reason = error.ERR_HA_CLOSED
            self._shut()
            self._inbox.put_nowait((PeerClosed(error.ERR_HA_CLOSED), 0))
        self._held_out.clear()
        try:
            self.writer.transport.abort()
        except (RuntimeError, OSError):
            pass
        self.policy.unregister(self)

    def _shut(self) -> None:
        self.closed = True
        current = asyncio.current_task()
        for task in (self._reader_task, self._sender, self._watcher):
            if task is not None and task is not current:
                task.cancel()
        acks, self._acks = self._acks, {}
        for _, fut in acks.values():
            if not fut.done():
                fut.set_result(False)

    def _really_close(self) -> None:
        self._close_on_release = False
        try:
            self.writer.close()
        except (RuntimeError, OSError):
            pass
        self.policy.unregister(self)
