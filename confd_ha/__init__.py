"""confd_ha: ConfD/NSO's HA control API (``_confd.ha`` / ``_ncs.ha``) without the SDK.

Existing code runs unchanged with ``import confd_ha as ha``::

    import socket
    import confd_ha as ha

    s = socket.socket()
    ha.connect(s, "secret-token", "127.0.0.1", ha.PORT)
    ha.beprimary(s, "n1")
    state, nodes = ha.status(s)

Both name generations are there (``bemaster``/``beprimary``, ``beslave``/``besecondary``,
``slave_dead``/``secondary_dead``, ``STATE_MASTER``/``STATE_PRIMARY``, …). Errors are
:class:`confd_ha.error.Error` and :class:`confd_ha.error.EOF`.
"""

from __future__ import annotations

import socket as _socket
import sys as _sys
from typing import TYPE_CHECKING as _TYPE_CHECKING, Dict as _Dict, Optional as _Optional
from typing import overload as _overload

from ._findcore import load as _load_core
from ._version import __version__ as __version__

# The compiled core, checked to be of this version (a stale _core left by an earlier editable
# install fails loudly); in a source tree without one, an installed copy's (_findcore.py).
_ffi, _lib = _load_core(__path__, __version__)
_CORE_VERSION: str = _ffi.string(_lib.chd_version()).decode()

from . import _args, _handshake, _io, _protocol, _settings, error  # noqa: E402
from ._consts import State as _State  # noqa: E402
from ._args import NodeId as _NodeId, PathArg as _PathArg, Token as _Token  # noqa: E402
from ._args import node_term as node_term  # noqa: E402 -- re-exported
from .value import *  # noqa: E402,F401,F403 -- the C_* constants, as in _confd
from ._protocol import Status as _Status  # noqa: E402
from .value import Value as Value  # noqa: E402

# ---------------------------------------------------------------- constants

# Each with its name of the old generation beside it.
STATE_NONE = _State.NONE
STATE_SECONDARY = STATE_SLAVE = _State.SECONDARY
STATE_PRIMARY = STATE_MASTER = _State.PRIMARY
STATE_SECONDARY_RELAY = STATE_SLAVE_RELAY = _State.SECONDARY_RELAY

CONFD_PORT = _settings.CONFD_PORT
NCS_PORT = _settings.NCS_PORT
# ADDR, PORT (this flavour's defaults, _settings.CONFD, read from $CONFD_IPC_ADDR/PORT at
# import) and LIB_PROTO_VSN, LIB_VSN (_settings.SETTINGS) are attributes of this module's
# class (_settings.FlavourModule): one value each, which assignments change too.
_DEFAULTS = _settings.CONFD
_DEFAULTS.read_env()
_sys.modules[__name__].__class__ = _settings.FlavourModule
if _TYPE_CHECKING:
    ADDR: str
    PORT: int
    LIB_PROTO_VSN: int
    LIB_VSN: int

daemon_info = _handshake.daemon_info

__all__ = [
    "connect", "beprimary", "bemaster", "besecondary", "beslave", "benone", "berelay",
    "status", "secondary_dead", "slave_dead", "configure", "daemon_info", "Value",
    "STATE_NONE", "STATE_SECONDARY", "STATE_PRIMARY", "STATE_SECONDARY_RELAY",
    "STATE_SLAVE", "STATE_MASTER", "STATE_SLAVE_RELAY", "PORT", "CONFD_PORT", "NCS_PORT",
    "ADDR", "LIB_PROTO_VSN", "LIB_VSN", "error",
]


def configure(*, proto_vsn: int | None = None, lib_vsn: int | None = None,
              access_version: int | None = None, max_reply: int | None = None) -> None:
    """Change client-wide settings.

    ``proto_vsn``/``lib_vsn``: the pair sent in the hello (default 82 / 0x08020500, those of
    ConfD 8.2.5); ``LIB_PROTO_VSN``/``LIB_VSN`` follow. ``access_version``: the IPC access
    check's hash when an access file is configured, 2 (SHA-256, default) or 1 (MD5, for
    daemons older than NSO 5.4). ``max_reply``: largest reply frame accepted (default 16 MiB;
    a larger one fails with ``ERR_PROTOUSAGE`` before it is read, and the socket is closed).
    """
    _settings.SETTINGS.configure(proto_vsn=proto_vsn, lib_vsn=lib_vsn,
                                 access_version=access_version, max_reply=max_reply)


# ---------------------------------------------------------------- the API


def connect(sock: _socket.socket, token: _Token, ip: _Optional[str] = None,
            port: _Optional[int] = None, pstr: _Optional[_PathArg] = None,
            **options: int) -> None:
    """Connect ``sock`` to the daemon as its HA control socket and hand over ``token``.

    TCP sockets go to ``ip``:``port`` (IP literals of the socket's family; left out, the
    defaults ``ADDR``:``PORT``), AF_UNIX sockets to the path ``pstr``. A socket that is
    connected already is refused (``ERR_OS``, ``EISCONN``) and stays as it was. The daemon
    keeps one HA control socket: this replaces the previous one and its token (the node's
    HA state does not change).
    Keyword ``options``: ``proto_vsn``, ``lib_vsn``, ``access_version`` for this connection
    only (see :func:`configure`).
    """
    _connect(_DEFAULTS, sock, token, ip, port, pstr, options)


def _connect(defaults: _settings.Defaults, sock: _socket.socket, token: _Token,
             ip: _Optional[str], port: _Optional[int], pstr: _Optional[_PathArg],
             options: _Dict[str, int]) -> None:
    """:func:`connect` with a flavour's ``defaults`` (``confd_ha.ncs`` passes NSO's)."""
    _handshake.check_options(options)
    token_bytes = _args.token_bytes(token)
    ip, port, pstr = _args.address_args(ip, port, pstr)
    _args.check_sock(sock)
    address = _handshake.target_address(sock, ip, port, pstr, defaults.addr, defaults.port)
    _handshake.open_connection(sock, _protocol.CT_HA, address, **options)
    # The token's bytes as one raw frame, no NUL; the daemon does not reply.
    _io.send(sock, _protocol.frame(token_bytes))


def _call(sock: _socket.socket, request: bytes) -> None:
    _protocol.decode_reply(_io.call(sock, request, _settings.SETTINGS.max_reply))


def beprimary(sock: _socket.socket, mynodeid: _NodeId) -> None:
    """Make the node primary (``bemaster`` in the old API) with node id ``mynodeid``."""
    _args.check_sock(sock)
    _call(sock, _protocol.encode_order(_protocol.BEPRIMARY, node_term(mynodeid, "mynodeid")))


_MISSING = _args.MISSING


@_overload
def besecondary(sock: _socket.socket, mynodeid: _NodeId, primary_id: _NodeId, primary_ip: str,
                waitreply: int) -> None: ...


@_overload   # the old keywords
def besecondary(sock: _socket.socket, mynodeid: _NodeId, *, masterid: _NodeId, masterip: str,
                waitreply: int) -> None: ...


def besecondary(sock: _socket.socket, mynodeid: _NodeId, primary_id: _NodeId = _MISSING,
                primary_ip: str = _MISSING, waitreply: int = _MISSING, *,
                masterid: _NodeId = _MISSING, masterip: str = _MISSING) -> None:
    """Make the node a secondary of ``primary_id`` at ``primary_ip`` (``beslave``).

    With ``waitreply`` true the call returns when the node has synced (or raises the join's
    error); with ``waitreply`` false it only sends the order and the outcome arrives as
    ``HA_INFO_BESECONDARY_RESULT`` on an event socket. The old keywords ``masterid`` and
    ``masterip`` are accepted too.
    """
    _args.check_sock(sock)
    request, wait = _args.besecondary_order(mynodeid, primary_id, primary_ip, waitreply,
                                            masterid, masterip)
    if wait:
        _call(sock, request)
    else:
        _io.send(sock, request)  # without waitreply the daemon sends nothing back


def benone(sock: _socket.socket) -> None:
    """Make the node leave any HA role (state NONE)."""
    _call(_args.check_sock(sock), _protocol.BENONE_FRAME)


def berelay(sock: _socket.socket) -> None:
    """Make a secondary a relay for other secondaries."""
    _call(_args.check_sock(sock), _protocol.BERELAY_FRAME)


def secondary_dead(sock: _socket.socket, nodeid: _NodeId) -> None:
    """Tell a primary that the secondary ``nodeid`` is dead (``slave_dead``)."""
    _args.check_sock(sock)
    _call(sock, _protocol.encode_order(_protocol.SECONDARY_DEAD, node_term(nodeid, "nodeid")))


def status(sock: _socket.socket) -> _Status:
    """``(state, [{'nodeid': str, 'address': str}, ...])`` of the node: its ``STATE_*`` and,
    on a primary or relay, its connected secondaries. Node ids are text; IPv4 addresses are
    dotted quads, IPv6 addresses as ``inet_ntop`` writes them (README: Compatibility)."""
    if not isinstance(sock, _socket.socket):  # checked inline: status() is the hot path
        _args.check_sock(sock)
    return _protocol.decode_status(
        _io.call(sock, _protocol.GETSTATUS_FRAME, _settings.SETTINGS.max_reply))


bemaster = beprimary
beslave = besecondary
slave_dead = secondary_dead

# So that confd_ha.events works after "import confd_ha".
from . import events as events  # noqa: E402
