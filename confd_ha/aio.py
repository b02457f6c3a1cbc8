"""asyncio versions of the HA control calls and of the HA event stream.

Same arguments, results and exceptions as the blocking API (``confd_ha``,
``confd_ha.events``); the connection is an object instead of a caller-owned socket::

    import asyncio
    from confd_ha import aio, events

    async def main():
        async with await aio.connect("token", "127.0.0.1", 4565) as ha:
            await ha.beprimary("n1")
            print(await ha.status())
        async with await aio.notifications_connect(events.NOTIF_HA_INFO) as stream:
            async for n in stream:
                print(n["hnot"])

    asyncio.run(main())

Timeouts: wrap any call in ``asyncio.wait_for`` (or cancel its task), or give ``timeout=``
(seconds) to :func:`connect` / :func:`notifications_connect` to bound every call of that
connection, raising :class:`confd_ha.error.Timeout` like a socket timeout does. Cancelling is
safe: the connection stays usable. A control call whose reply had not arrived when it was
cancelled has still been sent; its late reply is read and discarded by the next call (the
daemon answers orders in order). A cancelled :meth:`EventStream.read` loses no event.
"""

from __future__ import annotations

import asyncio
import errno
from typing import Any, Awaitable, Dict, Mapping, Optional, Tuple, TypeVar, overload

from . import _args, _handshake, _io, _notifications, _protocol, _settings, error
from .events import notification_dict

__all__ = ["connect", "notifications_connect", "Connection", "EventStream"]

_T = TypeVar("_T")


def _check_timeout(timeout: object) -> Optional[float]:
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise TypeError("timeout argument must be a number or None")
        if not timeout > 0:
            raise ValueError("timeout must be positive")
        return timeout
    return None


async def _bounded(coro: Awaitable[_T], timeout: Optional[float]) -> _T:
    """Await ``coro``, raising :class:`confd_ha.error.Timeout` after ``timeout`` seconds."""
    if timeout is None:
        return await coro
    try:
        return await asyncio.wait_for(coro, timeout)
    except asyncio.TimeoutError as exc:
        if isinstance(exc, error.Error):   # a Timeout raised inside: already ours
            raise
    error.raise_error(error.ERR_OS, "timed out waiting for the daemon", errno.ETIMEDOUT)


async def _open(ctype: int, address: _io.Address, timeout: Optional[float],
                options: Mapping[str, Any]) -> Tuple[_io.Stream, _protocol.Hello]:
    _handshake.check_options(options)
    return await _bounded(_handshake.open_stream(ctype, address, **options), timeout)


# ---------------------------------------------------------------- HA control


async def connect(token: _args.Token, ip: Optional[str] = None, port: Optional[int] = None,
                  path: Optional[_args.PathArg] = None, *, timeout: Optional[float] = None,
                  **options: int) -> "Connection":
    """Open the daemon's HA control connection and hand over ``token``.

    TCP to ``ip``:``port`` (defaults ``confd_ha.ADDR``:``confd_ha.PORT``; in
    ``confd_ha.ncs.aio``, ``confd_ha.ncs.ADDR``:``confd_ha.ncs.PORT``), or AF_UNIX to
    ``path``. As with :func:`confd_ha.connect`, this replaces the daemon's previous HA
    control connection and its token. ``timeout`` bounds each call (seconds); keyword
    ``options``: ``proto_vsn``, ``lib_vsn``, ``access_version``.
    """
    return await _connect(_settings.CONFD, token, ip, port, path, timeout, options)


async def _connect(defaults: _settings.Defaults, token: _args.Token, ip: Optional[str],
                   port: Optional[int], path: Optional[_args.PathArg],
                   timeout: Optional[float], options: Mapping[str, Any]) -> "Connection":
    """:func:`connect` with a flavour's ``defaults`` (``confd_ha.ncs.aio`` passes NSO's)."""
    token = _args.token_bytes(token)
    timeout = _check_timeout(timeout)
    address = _handshake.stream_address(ip, port, path, defaults.addr, defaults.port)
    stream, reply = await _open(_protocol.CT_HA, address, timeout, options)
    try:
        # The token's bytes as one raw frame, no NUL; the daemon does not reply.
        await _bounded(stream.send(_protocol.frame(token)), timeout)
    except BaseException:
        stream.close()
        raise
    return Connection(stream, reply, timeout)


_Self = TypeVar("_Self", bound="_Link")


class _Link:
    """What both kinds of connection have: the stream, a lock that keeps one exchange at a
    time on it, the daemon's accepted hello reply (``daemon_info``, as
    :func:`confd_ha.daemon_info`), the ``timeout``; closing, and ``async with``."""

    def __init__(self, stream: _io.Stream, reply: _protocol.Hello,
                 timeout: Optional[float] = None) -> None:
        self._stream = stream
        self._lock = asyncio.Lock()
        self.daemon_info = reply
        self.timeout = timeout

    def __repr__(self) -> str:
        state = "closed" if self._stream.closed else "open"
        return "<confd_ha.aio.%s %s to %r>" % (type(self).__name__, state,
                                                self._stream.peer_address())

    async def close(self) -> None:
        """Close the connection. The node keeps its HA role; on an ``NOTIF_HA_INFO_SYNC``
        subscription this releases the daemon from waiting for the acknowledgements still
        owed."""
        self._stream.close()
        await self._stream.wait_closed()

    async def __aenter__(self: _Self) -> _Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class Connection(_Link):
    """An HA control connection (from :func:`connect`); an async context manager."""

    def __init__(self, stream: _io.Stream, reply: _protocol.Hello,
                 timeout: Optional[float] = None) -> None:
        super().__init__(stream, reply, timeout)
        self._owed = 0               # replies of cancelled calls still to be read

    async def _call(self, request: bytes) -> bytes:
        return await _bounded(self._exchange(request), self.timeout)

    async def _exchange(self, request: bytes) -> bytes:
        limit = _settings.SETTINGS.max_reply
        async with self._lock:
            # Replies of earlier, cancelled calls come first on this socket: skip them.
            while self._owed:
                await self._stream.read_frame(limit)
                self._owed -= 1
            self._stream.write(request)
            self._owed += 1
            await self._stream.drain()
            payload = await self._stream.read_frame(limit)
            self._owed -= 1
            return payload

    async def _send(self, request: bytes) -> None:
        async def send() -> None:
            async with self._lock:
                await self._stream.send(request)
        await _bounded(send(), self.timeout)

    async def beprimary(self, mynodeid: _args.NodeId) -> None:
        """Make the node primary (``bemaster``) with node id ``mynodeid``."""
        request = _protocol.encode_order(_protocol.BEPRIMARY,
                                         _args.node_term(mynodeid, "mynodeid"))
        _protocol.decode_reply(await self._call(request))

    @overload
    async def besecondary(self, mynodeid: _args.NodeId, primary_id: _args.NodeId,
                          primary_ip: str, waitreply: int) -> None: ...

    @overload   # the old keywords
    async def besecondary(self, mynodeid: _args.NodeId, *, masterid: _args.NodeId,
                          masterip: str, waitreply: int) -> None: ...

    async def besecondary(self, mynodeid: _args.NodeId, primary_id: _args.NodeId = _args.MISSING,
                          primary_ip: str = _args.MISSING, waitreply: int = _args.MISSING, *,
                          masterid: _args.NodeId = _args.MISSING,
                          masterip: str = _args.MISSING) -> None:
        """Make the node a secondary of ``primary_id`` at ``primary_ip`` (``beslave``); with
        ``waitreply`` false only the order is sent and the outcome arrives as
        ``HA_INFO_BESECONDARY_RESULT`` on an event stream."""
        request, wait = _args.besecondary_order(mynodeid, primary_id, primary_ip, waitreply,
                                                masterid, masterip)
        if wait:
            _protocol.decode_reply(await self._call(request))
        else:
            await self._send(request)   # without waitreply the daemon sends nothing back

    async def benone(self) -> None:
        """Make the node leave any HA role (state NONE)."""
        _protocol.decode_reply(await self._call(_protocol.BENONE_FRAME))

    async def berelay(self) -> None:
        """Make a secondary a relay for other secondaries."""
        _protocol.decode_reply(await self._call(_protocol.BERELAY_FRAME))

    async def secondary_dead(self, nodeid: _args.NodeId) -> None:
        """Tell a primary that the secondary ``nodeid`` is dead (``slave_dead``)."""
        request = _protocol.encode_order(_protocol.SECONDARY_DEAD,
                                         _args.node_term(nodeid, "nodeid"))
        _protocol.decode_reply(await self._call(request))

    async def status(self) -> _protocol.Status:
        """``(state, [{'nodeid': str, 'address': str}, ...])`` of the node."""
        return _protocol.decode_status(await self._call(_protocol.GETSTATUS_FRAME))

    bemaster = beprimary
    beslave = besecondary
    slave_dead = secondary_dead


# ---------------------------------------------------------------- events


async def notifications_connect(mask: int, ip: Optional[str] = None, port: Optional[int] = None,
                                path: Optional[_args.PathArg] = None, *,
                                timeout: Optional[float] = None,
                                **options: int) -> "EventStream":
    """Open an event-notification connection subscribed to ``mask`` (see
    :func:`confd_ha.events.notifications_connect`). ``timeout`` bounds the connect, each
    :meth:`EventStream.sync` and each :meth:`EventStream.read` (seconds)."""
    return await _notifications_connect(_settings.CONFD, mask, ip, port, path, timeout, options)


async def _notifications_connect(defaults: _settings.Defaults, mask: int, ip: Optional[str],
                                 port: Optional[int], path: Optional[_args.PathArg],
                                 timeout: Optional[float],
                                 options: Mapping[str, Any]) -> "EventStream":
    """:func:`notifications_connect` with a flavour's ``defaults`` (``confd_ha.ncs.aio``
    passes NSO's)."""
    mask = _args.event_mask(mask)
    timeout = _check_timeout(timeout)
    address = _handshake.stream_address(ip, port, path, defaults.addr, defaults.port)
    _args.check_mask_data(mask)
    stream, reply = await _open(_protocol.CT_EVENT, address, timeout, options)
    try:
        async def subscribe() -> bytes:
            await stream.send(_notifications.encode_subscription(mask))
            return await stream.read_frame(_settings.SETTINGS.max_reply)
        _notifications.decode_subscription_reply(await _bounded(subscribe(), timeout))
    except BaseException:
        stream.close()
        raise
    return EventStream(stream, reply, timeout)


class EventStream(_Link):
    """A subscribed event-notification connection; an async iterator of the same dicts as
    :func:`confd_ha.events.read_notification`, and an async context manager.

    Iteration ends when the stream is closed on this side (:meth:`close`); a connection the
    daemon closes raises :class:`confd_ha.error.EOF`, as a blocking read would.
    """

    async def read(self) -> Dict[str, Any]:
        """The next notification (see :func:`confd_ha.events.read_notification`)."""
        async def read() -> bytes:
            async with self._lock:
                return await self._stream.read_frame(_settings.SETTINGS.max_reply)
        payload = await _bounded(read(), self.timeout)
        return notification_dict(_notifications.decode_notification(payload))

    async def sync(self) -> None:
        """Acknowledge the last HA event (``events.sync_ha_notification``)."""
        await _bounded(self._stream.send(_notifications.HA_SYNCED_FRAME), self.timeout)

    def __aiter__(self) -> "EventStream":
        return self

    async def __anext__(self) -> Dict[str, Any]:
        if self._stream.closed:
            raise StopAsyncIteration
        try:
            return await self.read()
        except error.EOF:
            if self._stream.closed:   # closed by us while waiting
                raise StopAsyncIteration from None
            raise
