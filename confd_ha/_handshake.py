"""Opening an IPC connection: hello, IPC access check, version negotiation (client side).

Shared by the HA control socket (``confd_ha.connect``), the event-notification socket
(``confd_ha.events.notifications_connect``) and their asyncio versions (``confd_ha.aio``).

The exchange itself is sans-I/O: :func:`exchange` is a generator that yields the steps
``(SEND, bytes)`` and ``(RECV, n)`` and returns the daemon's accepted 9-byte reply. Two small
drivers run it: :func:`run` over a blocking socket (``_io``) and :func:`run_async` over an
``_io.Stream``. The decisions around it -- what a reply's status byte means, when to retry
with the daemon's version pair -- are plain functions used by both drivers, so the sync and
the asyncio client cannot drift apart. Only the way a retry connection replaces the first one
differs: the sync client moves it onto the caller's socket object (``dup2``, W-05), the
asyncio client simply keeps the new stream.
"""

from __future__ import annotations

import logging
import os
import socket
import weakref
from typing import Any, Generator, Mapping, NamedTuple, Optional, Tuple, Union

from . import _address, _args, _io, _protocol, _settings, error
from ._settings import ACCESS_FILE_VARS, SETTINGS as SETTINGS  # SETTINGS: what configure() sets

log = logging.getLogger("confd_ha")

# Steps yielded by exchange().
SEND = "send"
RECV = "recv"
# exchange()'s generator: yields (SEND, bytes) or (RECV, n), is sent None or the bytes read,
# returns the daemon's reply.
Flow = Generator[Tuple[str, Any], Any, _protocol.Hello]


# The accepted 9-byte reply of each connected socket, for diagnostics (W-05).
_daemon_info: "weakref.WeakKeyDictionary[socket.socket, _protocol.Hello]" = weakref.WeakKeyDictionary()

CONNECT_OPTIONS = frozenset(("proto_vsn", "lib_vsn", "access_version"))


def daemon_info(sock: socket.socket) -> Optional[_protocol.Hello]:
    """The daemon's accepted hello reply on ``sock`` (status, protocol version, version,
    MAXDEPTH, MAXKEYLEN), or None if ``sock`` was not connected by this package."""
    return _daemon_info.get(sock)


def read_access_secret() -> Optional[bytes]:
    """The IPC access secret from the environment (W-10), or None when no check is wanted."""
    for var in ACCESS_FILE_VARS:
        path = os.environ.get(var)
        if path:
            try:
                with open(path, "rb") as f:
                    return f.read()
            except OSError as exc:
                error.raise_error(error.ERR_OS, "cannot read the IPC access file named by %s: %s"
                                  % (var, os.strerror(exc.errno or 0)), exc.errno)
    return None


def _check_path(path: object, path_name: str) -> Union[str, bytes]:
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError("%s argument must be a string" % path_name)
    return os.fspath(path)


_FAMILIES = {socket.AF_INET: (socket.AF_INET, "AF_INET", "invalid IP address: %s"),
             socket.AF_INET6: (socket.AF_INET6, "AF_INET6", "invalid IPv6 address: %s")}


def _check_port(port: int, family_name: str) -> int:
    if port == -1:   # the original's "not given"
        raise TypeError("port argument must be provided for an %s socket" % family_name)
    if not 0 <= port <= 0xFFFF:
        # The original truncates the port to 16 bits and connects to that other port.
        raise OverflowError("port must be 0-65535, not %d" % port)
    return port


def target_address(sock: socket.socket, ip: Optional[str], port: Optional[int],
                   path: Optional[_args.PathArg], default_addr: str,
                   default_port: int) -> _io.Address:
    """Where to connect ``sock``: its AF_UNIX ``path`` or the ``(ip, port)`` of an IP
    literal of the socket's family (no name lookup, as the original). ``ip``/``port`` None
    take the flavour's defaults (``default_addr``, ``default_port``). Argument types are
    checked before (``_args.address_args``)."""
    if sock.family == socket.AF_UNIX:
        if path is None:
            raise TypeError("path argument must be provided for an AF_UNIX socket")
        return os.fspath(path)
    ip = default_addr if ip is None else ip
    port = default_port if port is None else port
    family = _FAMILIES.get(sock.family)
    if family is None:
        return (ip, port)   # connect() itself reports what the family makes of it
    af, family_name, bad_ip = family
    try:
        socket.inet_pton(af, ip)
    except (OSError, ValueError):
        raise ValueError(bad_ip % ip) from None
    return (ip, _check_port(port, family_name))


def stream_address(ip: object, port: object, path: object, default_addr: str,
                   default_port: int) -> _io.Address:
    """Where an asyncio client connects: the AF_UNIX ``path`` (a ``str``), else the TCP
    ``(ip, port)`` pair (an IP literal) with the flavour's defaults filled in."""
    if path is not None:
        if ip is not None or port is not None:
            raise ValueError("give ip/port or path, not both")
        return _check_path(path, "path")
    ip = default_addr if ip is None else ip
    port = default_port if port is None else port
    if not isinstance(ip, str):
        raise TypeError("ip argument must be a string")
    if not isinstance(port, int) or isinstance(port, bool):
        raise TypeError("port argument must be an integer")
    if _address.parse_ip(ip) is None:
        raise ValueError("invalid IP address: %s" % ip)
    return (ip, _check_port(port, "AF_INET"))


def check_options(options: Mapping[str, object]) -> None:
    """Refuse keyword options a connect function does not know (with the words of the
    original's argument parser)."""
    unknown = set(options) - CONNECT_OPTIONS
    if unknown:
        raise TypeError("'%s' is an invalid keyword argument for this function"
                        % sorted(unknown)[0])


# ---------------------------------------------------------------- the exchange (sans-I/O)


class Plan(NamedTuple):
    """What one connect needs, resolved once from its options, the settings and the
    environment."""

    ctype: int
    proto_vsn: int
    lib_vsn: int
    secret: Optional[bytes]
    variant: int

    def __repr__(self) -> str:  # the IPC access secret never appears in a repr
        return "Plan(ctype=%d, proto_vsn=%d, lib_vsn=%#x, secret=%s, variant=%d)" % (
            self.ctype, self.proto_vsn, self.lib_vsn,
            "<set>" if self.secret is not None else None, self.variant)


def make_plan(ctype: int, *, proto_vsn: Optional[int] = None, lib_vsn: Optional[int] = None,
              access_version: Optional[int] = None) -> Plan:
    variant = SETTINGS.access_version if access_version is None else access_version
    _settings.check("access_version", variant)
    return Plan(ctype,
                SETTINGS.proto_vsn if proto_vsn is None else proto_vsn,
                SETTINGS.lib_vsn if lib_vsn is None else lib_vsn,
                read_access_secret(), variant)


def exchange(plan: Plan, proto_vsn: int, lib_vsn: int) -> Flow:
    """Hello, optional access check, reply -- as a generator of I/O steps.

    Yields ``(SEND, data)`` (send it, then resume with None) and ``(RECV, n)`` (resume with
    exactly n bytes); returns the daemon's 9-byte reply as a :class:`_protocol.Hello`.
    """
    secret, variant = plan.secret, plan.variant
    byte0 = plan.ctype | (_protocol.access_flag(variant) if secret is not None else 0)
    yield SEND, _protocol.build_hello(_protocol.Hello(byte0, proto_vsn, lib_vsn,
                                                      _protocol.CLIENT_MAXDEPTH,
                                                      _protocol.CLIENT_MAXKEYLEN))
    if secret is not None:
        # The first byte decides (W-13): a daemon that answers with anything but a challenge
        # may send nothing more, so do not wait for the nonce before looking at it.
        size = _protocol.challenge_size(variant)
        first = yield RECV, 1
        if _protocol.challenge_nonce(variant, first + bytes(size - 1)) is None:
            error.raise_error(error.ERR_ACCESS_DENIED,
                              "IPC access check: bad challenge from daemon")
        challenge = first + (yield RECV, size - 1)
        yield SEND, _protocol.build_response(variant, secret, challenge)
        if (yield RECV, 1) != _protocol.ACCESS_OK:
            error.raise_error(error.ERR_ACCESS_DENIED, "IPC access check rejected by the daemon")
    return _protocol.parse_hello((yield RECV, _protocol.HELLO_LEN))


_HINT = "set the client's pair explicitly with confd_ha.configure(proto_vsn=..., lib_vsn=...)"


def judge(reply: _protocol.Hello, proto_vsn: int, can_retry: bool) -> Optional[Tuple[int, int]]:
    """The verdict on the first reply: None = accepted (W-05: status 0, 2 and unknown
    values), or the daemon's ``(proto_vsn, vsn)`` pair to retry with after a rejection.
    A rejection that cannot be retried raises ``ERR_PROTOUSAGE``."""
    if reply.byte0 == _protocol.HELLO_BADVSN:
        if reply.proto_vsn == proto_vsn or not can_retry:
            error.raise_error(error.ERR_PROTOUSAGE,
                              "daemon (protocol version %d) rejected library protocol version "
                              "%d; %s" % (reply.proto_vsn, proto_vsn, _HINT))
        log.info("daemon rejected protocol version %d; retrying with its version %d",
                 proto_vsn, reply.proto_vsn)
        return (reply.proto_vsn, reply.vsn)
    _accepted(reply)
    return None


def judge_retry(reply: _protocol.Hello, proto_vsn: int, theirs: Tuple[int, int]) -> None:
    """The verdict on the reply to the retried hello: a second rejection is final."""
    if reply.byte0 == _protocol.HELLO_BADVSN:
        error.raise_error(error.ERR_PROTOUSAGE,
                          "daemon rejected library protocol versions %d and %d (it announced "
                          "%d); %s" % (proto_vsn, theirs[0], reply.proto_vsn, _HINT))
    _accepted(reply)


def _accepted(reply: _protocol.Hello) -> None:
    if reply.byte0 == _protocol.HELLO_WARNING:
        log.warning("daemon accepted the connection with a MAXDEPTH/MAXKEYLEN warning")
    elif reply.byte0 != _protocol.HELLO_ACCEPTED:
        log.warning("daemon answered the hello with unknown status %d; taken as accepted",
                    reply.byte0)


# ---------------------------------------------------------------- drivers


def _resume(flow: Flow, data: Optional[bytes]) -> Union[Tuple[str, Any], _protocol.Hello]:
    """The flow's next step after ``data`` (None after a send), or its result once done."""
    try:
        return flow.send(data)
    except StopIteration as stop:
        result: _protocol.Hello = stop.value
        return result


def run(sock: socket.socket, flow: Flow) -> _protocol.Hello:
    """Drive a sans-I/O flow over a blocking socket; returns the flow's result."""
    step = _resume(flow, None)
    while not isinstance(step, _protocol.Hello):
        kind, arg = step
        if kind == SEND:
            _io.send(sock, arg)
        step = _resume(flow, None if kind == SEND else _io.recv_exact(sock, arg))
    return step


async def run_async(stream: _io.Stream, flow: Flow) -> _protocol.Hello:
    """Drive a sans-I/O flow over an :class:`_io.Stream`; returns the flow's result."""
    step = _resume(flow, None)
    while not isinstance(step, _protocol.Hello):
        kind, arg = step
        step = _resume(flow, await (stream.send(arg) if kind == SEND else stream.recv_exact(arg)))
    return step


# ---------------------------------------------------------------- blocking client


def open_connection(sock: socket.socket, ctype: int, address: _io.Address, *,
                    proto_vsn: Optional[int] = None, lib_vsn: Optional[int] = None,
                    access_version: Optional[int] = None) -> _protocol.Hello:
    """Connect ``sock`` and run the handshake on it. A socket that is connected already
    fails with ``ERR_OS``/``EISCONN`` and stays as it was, as with the original.

    On a version rejection the client retries once on a fresh connection with the pair the
    daemon announced and moves that connection onto ``sock`` (W-05).
    """
    plan = make_plan(ctype, proto_vsn=proto_vsn, lib_vsn=lib_vsn, access_version=access_version)
    _io.connect(sock, address)
    reply = run(sock, exchange(plan, plan.proto_vsn, plan.lib_vsn))
    theirs = judge(reply, plan.proto_vsn, True)
    if theirs is not None:
        fresh = _io.open_like(sock, address)
        try:
            reply = run(fresh, exchange(plan, *theirs))
            judge_retry(reply, plan.proto_vsn, theirs)
        except BaseException:
            fresh.close()
            raise
        _io.replace_connection(sock, fresh)
    _daemon_info[sock] = reply
    return reply


# ---------------------------------------------------------------- asyncio client


async def open_stream(ctype: int, address: _io.Address, *, proto_vsn: Optional[int] = None,
                      lib_vsn: Optional[int] = None, access_version: Optional[int] = None
                      ) -> Tuple[_io.Stream, _protocol.Hello]:
    """Open an :class:`_io.Stream` to ``address`` (``(ip, port)`` or an AF_UNIX path) and run
    the handshake on it; returns ``(stream, reply)``. On a version rejection it reconnects
    once with the daemon's pair (W-05) -- there is no caller-owned descriptor to keep."""
    plan = make_plan(ctype, proto_vsn=proto_vsn, lib_vsn=lib_vsn, access_version=access_version)
    stream = await _io.open_stream(address)
    try:
        reply = await run_async(stream, exchange(plan, plan.proto_vsn, plan.lib_vsn))
        theirs = judge(reply, plan.proto_vsn, True)
        if theirs is not None:
            stream.close()
            stream = await _io.open_stream(address)
            reply = await run_async(stream, exchange(plan, *theirs))
            judge_retry(reply, plan.proto_vsn, theirs)
    except BaseException:
        stream.close()
        raise
    return stream, reply
