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

import os
import socket as _socket

from ._version import __version__

try:
    from ._core import ffi as _ffi, lib as _lib
except ImportError as _exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        "confd_ha's compiled core (confd_ha._core) is missing: reinstall with "
        "'pip install .' (or 'python build_ffi.py' in a source tree)") from _exc

_CORE_VERSION = _ffi.string(_lib.chd_version()).decode()
if _CORE_VERSION != __version__:  # a stale _core left by an earlier editable install
    raise ImportError(
        "confd_ha's compiled core is version %s but the package is %s: rebuild it with "
        "'pip install .' (editable installs: 'pip install -e .' again)" % (_CORE_VERSION, __version__))

from . import _args, _handshake, _io, _protocol, error  # noqa: E402
from ._args import node_term  # noqa: E402,F401 -- re-exported
from .value import *  # noqa: E402,F401,F403 -- the C_* constants, as in _confd
from .value import Value  # noqa: E402

# ---------------------------------------------------------------- constants

STATE_NONE = 1
STATE_SECONDARY = 2
STATE_PRIMARY = 3
STATE_SECONDARY_RELAY = 4
STATE_SLAVE = STATE_SECONDARY
STATE_MASTER = STATE_PRIMARY
STATE_SLAVE_RELAY = STATE_SECONDARY_RELAY

CONFD_PORT = 4565
NCS_PORT = 4569
ADDR = os.environ.get("CONFD_IPC_ADDR") or "127.0.0.1"
try:
    PORT = int(os.environ.get("CONFD_IPC_PORT") or CONFD_PORT)
except ValueError:
    PORT = CONFD_PORT

LIB_PROTO_VSN = _handshake.SETTINGS.proto_vsn
LIB_VSN = _handshake.SETTINGS.lib_vsn

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

    ``proto_vsn``/``lib_vsn``: the pair sent in the hello (default 82 / 0x08020500, W-07);
    ``LIB_PROTO_VSN``/``LIB_VSN`` follow. ``access_version``: 2 (SHA-256, default) or 1 (MD5,
    for daemons older than NSO 5.4, W-11). ``max_reply``: largest reply frame accepted
    (default 16 MiB, W-15).
    """
    global LIB_PROTO_VSN, LIB_VSN
    s = _handshake.SETTINGS
    if proto_vsn is not None:
        if not 0 <= proto_vsn <= 0xFFFF:
            raise ValueError("proto_vsn must be 0..65535")
        s.proto_vsn = LIB_PROTO_VSN = proto_vsn
    if lib_vsn is not None:
        if not 0 <= lib_vsn <= 0xFFFFFFFF:
            raise ValueError("lib_vsn must be a 32-bit value")
        s.lib_vsn = LIB_VSN = lib_vsn
    if access_version is not None:
        if access_version not in (1, 2):
            raise ValueError("access_version must be 1 or 2")
        s.access_version = access_version
    if max_reply is not None:
        if not 64 <= max_reply <= 0xFFFFFFFF:
            raise ValueError("max_reply must be 64 bytes .. 4 GiB - 1")
        s.max_reply = max_reply


# ---------------------------------------------------------------- the API


def connect(sock, token, ip=None, port=None, pstr=None, **options) -> None:
    """Connect ``sock`` to the daemon as its HA control socket and hand over ``token``.

    TCP sockets go to ``ip``:``port`` (IP literals of the socket's family; left out, the
    defaults ``ADDR``:``PORT``), AF_UNIX sockets to the path ``pstr``. A socket that is
    connected already is refused (``ERR_OS``, ``EISCONN``) and stays as it was. The daemon
    keeps one HA control socket: this replaces the previous one and its token (B-02).
    Keyword ``options``: ``proto_vsn``, ``lib_vsn``, ``access_version`` for this connection
    only (see :func:`configure`).
    """
    _handshake.check_options(options)
    token_bytes = _args.token_bytes(token)
    ip, port, pstr = _args.address_args(ip, port, pstr)
    _args.check_sock(sock)
    address = _handshake.target_address(sock, ip, port, pstr, ADDR, PORT)
    _handshake.open_connection(sock, _protocol.CT_HA, address, **options)
    # W-16: the token's bytes as one raw frame, no NUL, no reply.
    _io.send(sock, _protocol.frame(token_bytes))


def _call(sock, request: bytes) -> None:
    _protocol.decode_reply(_io.call(sock, request, _handshake.SETTINGS.max_reply))


def beprimary(sock, mynodeid) -> None:
    """Make the node primary (``bemaster`` in the old API) with node id ``mynodeid``."""
    _args.check_sock(sock)
    _call(sock, _protocol.encode_order(_protocol.BEPRIMARY, node_term(mynodeid, "mynodeid")))


_MISSING = _args.MISSING


def besecondary(sock, mynodeid, primary_id=_MISSING, primary_ip=_MISSING, waitreply=_MISSING,
                *, masterid=_MISSING, masterip=_MISSING) -> None:
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
        _io.send(sock, request)  # W-17: the daemon sends nothing back


def benone(sock) -> None:
    """Make the node leave any HA role (state NONE)."""
    _call(_args.check_sock(sock), _protocol.BENONE_FRAME)


def berelay(sock) -> None:
    """Make a secondary a relay for other secondaries."""
    _call(_args.check_sock(sock), _protocol.BERELAY_FRAME)


def secondary_dead(sock, nodeid) -> None:
    """Tell a primary that the secondary ``nodeid`` is dead (``slave_dead``)."""
    _args.check_sock(sock)
    _call(sock, _protocol.encode_order(_protocol.SECONDARY_DEAD, node_term(nodeid, "nodeid")))


def status(sock):
    """``(state, [{'nodeid': str, 'address': str}, ...])`` of the node (W-23, W-25)."""
    if not isinstance(sock, _socket.socket):  # checked inline: status() is the hot path
        _args.check_sock(sock)
    return _protocol.decode_status(
        _io.call(sock, _protocol.GETSTATUS_FRAME, _handshake.SETTINGS.max_reply))


bemaster = beprimary
beslave = besecondary
slave_dead = secondary_dead

from . import events  # noqa: E402,F401 -- so that confd_ha.events works after "import confd_ha"
