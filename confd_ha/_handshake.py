"""Opening an IPC connection: hello, IPC access check, version negotiation (client side).

Shared by the HA control socket (``confd_ha.connect``) and the event-notification socket
(``confd_ha.events.notifications_connect``).
"""

from __future__ import annotations

import logging
import os
import socket
import weakref
from dataclasses import dataclass

from . import _io, _protocol, error

log = logging.getLogger("confd_ha")

ACCESS_FILE_VARS = ("CONFD_IPC_ACCESS_FILE", "NCS_IPC_ACCESS_FILE")


@dataclass
class Settings:
    """Client-wide settings; change them with :func:`confd_ha.configure`."""

    proto_vsn: int = _protocol.DEFAULT_PROTO_VSN
    lib_vsn: int = _protocol.DEFAULT_LIB_VSN
    access_version: int = _protocol.ACCESS_V2   # W-11: v1 only when asked for
    max_reply: int = _protocol.MAX_FRAME


SETTINGS = Settings()

# The accepted 9-byte reply of each connected socket, for diagnostics (W-05).
_daemon_info: "weakref.WeakKeyDictionary[socket.socket, _protocol.Hello]" = weakref.WeakKeyDictionary()


def daemon_info(sock):
    """The daemon's accepted hello reply on ``sock`` (status, protocol version, version,
    MAXDEPTH, MAXKEYLEN), or None if ``sock`` was not connected by this package."""
    return _daemon_info.get(sock)


def read_access_secret():
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


def target_address(sock, ip, port, pstr, default_addr: str, default_port: int):
    """Where to connect ``sock`` (None if it is connected already)."""
    if _io.peer_address(sock) is not None:
        return None
    if sock.family == socket.AF_UNIX:
        if pstr is None:
            raise ValueError("pstr argument (the socket path) is required for an AF_UNIX socket")
        return pstr
    if ip is None:
        ip = default_addr
    if port is None:
        port = default_port
    if not isinstance(ip, str):
        raise TypeError("ip argument must be a string")
    if not isinstance(port, int) or isinstance(port, bool):
        raise TypeError("port argument must be an integer")
    return (ip, port)


def _exchange(sock, ctype: int, proto_vsn: int, lib_vsn: int, secret, variant) -> _protocol.Hello:
    """Hello, optional access check, reply; returns the daemon's reply."""
    byte0 = ctype | (_protocol.access_flag(variant) if secret is not None else 0)
    _io.send(sock, _protocol.build_hello(_protocol.Hello(byte0, proto_vsn, lib_vsn, 0, 0)))
    if secret is not None:
        challenge = _io.recv_exact(sock, _protocol.challenge_size(variant))
        _io.send(sock, _protocol.build_response(variant, secret, challenge))
        if _io.recv_exact(sock, 1) != _protocol.ACCESS_OK:
            error.raise_error(error.ERR_ACCESS_DENIED, "IPC access check rejected by the daemon")
    return _protocol.parse_hello(_io.recv_exact(sock, _protocol.HELLO_LEN))


def open_connection(sock, ctype: int, address, *, proto_vsn=None, lib_vsn=None,
                    access_version=None) -> _protocol.Hello:
    """Connect ``sock`` (unless address is None) and run the handshake on it.

    On a version rejection the client retries once on a fresh connection with the pair the
    daemon announced and moves that connection onto ``sock`` (W-05).
    """
    proto_vsn = SETTINGS.proto_vsn if proto_vsn is None else proto_vsn
    lib_vsn = SETTINGS.lib_vsn if lib_vsn is None else lib_vsn
    variant = SETTINGS.access_version if access_version is None else access_version
    if variant not in (_protocol.ACCESS_V1, _protocol.ACCESS_V2):
        raise ValueError("access_version must be 1 or 2")
    secret = read_access_secret()
    if address is not None:
        _io.connect(sock, address)
    else:
        address = _io.peer_address(sock)
    reply = _exchange(sock, ctype, proto_vsn, lib_vsn, secret, variant)
    if reply.byte0 == _protocol.HELLO_BADVSN:
        reply = _renegotiate(sock, ctype, address, proto_vsn, reply, secret, variant)
    elif reply.byte0 == _protocol.HELLO_WARNING:
        log.warning("daemon accepted the connection with a MAXDEPTH/MAXKEYLEN warning")
    elif reply.byte0 != _protocol.HELLO_ACCEPTED:
        log.warning("daemon answered the hello with unknown status %d; taken as accepted",
                    reply.byte0)
    _daemon_info[sock] = reply
    return reply


def _renegotiate(sock, ctype, address, proto_vsn, rejected, secret, variant):
    theirs = (rejected.proto_vsn, rejected.vsn)
    hint = ("set the client's pair explicitly with "
            "confd_ha.configure(proto_vsn=..., lib_vsn=...)")
    if rejected.proto_vsn == proto_vsn or address is None:
        error.raise_error(error.ERR_PROTOUSAGE,
                          "daemon (protocol version %d) rejected library protocol version %d; %s"
                          % (rejected.proto_vsn, proto_vsn, hint))
    log.info("daemon rejected protocol version %d; retrying with its version %d",
             proto_vsn, rejected.proto_vsn)
    fresh = _io.open_like(sock, address)
    try:
        reply = _exchange(fresh, ctype, theirs[0], theirs[1], secret, variant)
    except BaseException:
        fresh.close()
        raise
    if reply.byte0 == _protocol.HELLO_BADVSN:
        fresh.close()
        error.raise_error(error.ERR_PROTOUSAGE,
                          "daemon rejected library protocol versions %d and %d (it announced %d); %s"
                          % (proto_vsn, theirs[0], reply.proto_vsn, hint))
    _io.replace_connection(sock, fresh)
    return reply
