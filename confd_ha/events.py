"""HA event notifications, shaped like Cisco's ``_confd.events`` / ``_ncs.events``.

Existing code runs unchanged with ``from confd_ha import events``::

    import socket
    import confd_ha as ha
    from confd_ha import events

    s = socket.socket()
    events.notifications_connect(s, events.NOTIF_HA_INFO, "127.0.0.1", ha.PORT)
    while True:
        n = events.read_notification(s)
        if n["type"] == events.NOTIF_HA_INFO and \\
                n["hnot"]["type"] == events.HA_INFO_NOPRIMARY:
            ...

Only HA events are decoded. The daemon sends other notification types only when they are
subscribed to; such a notification is returned as ``{'type': N}`` (its content is
discarded), so a loop over a wider mask keeps working. The socket behaves as the HA control
socket does: ``sock.settimeout`` bounds each wait (:class:`confd_ha.error.Timeout`), Ctrl-C
interrupts a blocked read, and a closed connection raises :class:`confd_ha.error.EOF`.
"""

from __future__ import annotations

import socket as _socket
from typing import Any as _Any, Dict as _Dict, Optional as _Optional, Tuple as _Tuple
from typing import cast as _cast

from . import _address, _args, _handshake, _io, _notifications, _protocol, _settings
from ._consts import HaInfo as _HaInfo

# ---------------------------------------------------------------- constants

# Mask bits (libconfd's CONFD_NOTIF_* values).
NOTIF_AUDIT = 1 << 0
NOTIF_DAEMON = 1 << 1
NOTIF_TAKEOVER_SYSLOG = 1 << 2
NOTIF_COMMIT_SIMPLE = 1 << 3
NOTIF_COMMIT_DIFF = 1 << 4
NOTIF_USER_SESSION = 1 << 5
NOTIF_HA_INFO = 1 << 6
NOTIF_SUBAGENT_INFO = 1 << 7
NOTIF_COMMIT_FAILED = 1 << 8
NOTIF_SNMPA = 1 << 9
NOTIF_FORWARD_INFO = 1 << 10
NOTIF_NETCONF = 1 << 11
NOTIF_DEVEL = 1 << 12
NOTIF_HEARTBEAT = 1 << 13
NOTIF_CONFIRMED_COMMIT = 1 << 14
NOTIF_UPGRADE_EVENT = 1 << 15
NOTIF_COMMIT_PROGRESS = 1 << 16
NOTIF_AUDIT_SYNC = 1 << 17
NOTIF_HEALTH_CHECK = 1 << 18
NOTIF_STREAM_EVENT = 1 << 19
NOTIF_HA_INFO_SYNC = 1 << 20
NOTIF_PACKAGE_RELOAD = 1 << 21        # NSO
NOTIF_CQ_PROGRESS = 1 << 22           # NSO
NOTIF_REOPEN_LOGS = 1 << 23
NOTIF_PROGRESS = 1 << 24
NOTIF_CALL_HOME_INFO = 1 << 25        # NSO
NOTIF_JSONRPC = 1 << 26
NOTIF_WEBUI = 1 << 27
NOTIF_AUDIT_NETWORK = 1 << 28         # NSO
NOTIF_AUDIT_NETWORK_SYNC = 1 << 29    # NSO
NOTIF_COMPACTION = 1 << 30
# Old names kept by the C header.
NOTIF_SYSLOG = NOTIF_DAEMON
NOTIF_SYSLOG_TAKEOVER = NOTIF_DAEMON | NOTIF_TAKEOVER_SYSLOG

# HA event types (hnot['type']), both name generations.
HA_INFO_NOPRIMARY = HA_INFO_NOMASTER = _HaInfo.NOPRIMARY
HA_INFO_SECONDARY_DIED = HA_INFO_SLAVE_DIED = _HaInfo.SECONDARY_DIED
HA_INFO_SECONDARY_ARRIVED = HA_INFO_SLAVE_ARRIVED = _HaInfo.SECONDARY_ARRIVED
HA_INFO_SECONDARY_INITIALIZED = HA_INFO_SLAVE_INITIALIZED = _HaInfo.SECONDARY_INITIALIZED
HA_INFO_IS_PRIMARY = HA_INFO_IS_MASTER = _HaInfo.IS_PRIMARY
HA_INFO_IS_NONE = _HaInfo.IS_NONE
HA_INFO_BESECONDARY_RESULT = HA_INFO_BESLAVE_RESULT = _HaInfo.BESECONDARY_RESULT

__all__ = [
    "notifications_connect", "read_notification", "sync_ha_notification",
    *[name for name in list(globals()) if name.startswith(("NOTIF_", "HA_INFO_"))],
]

# Keys of the hnot dict per type: current name first, then the legacy duplicate.
_INT_KEYS: _Dict[_Optional[int], _Tuple[str, ...]] = {
    HA_INFO_NOPRIMARY: ("noprimary", "nomaster"),
    HA_INFO_SECONDARY_INITIALIZED: ("cdb_initialized_by_copy",),
    HA_INFO_BESECONDARY_RESULT: ("besecondary_result", "beslave_result"),
}
_NODE_KEYS: _Dict[_Optional[int], _Tuple[str, ...]] = {
    HA_INFO_SECONDARY_DIED: ("secondary_died", "slave_died"),
    HA_INFO_SECONDARY_ARRIVED: ("secondary_arrived", "slave_arrived"),
}
# The host's address family and the original binding's key for the address.
# Plain ints, as the original binding gives.
_AF = {
    _address.AF_INET: (int(_socket.AF_INET), "ip4"),
    _address.AF_INET6: (int(_socket.AF_INET6), "ip6"),
    _address.AF_STRING: (int(_socket.AF_UNSPEC), "str"),
}


# ---------------------------------------------------------------- the API


def notifications_connect(sock: _socket.socket, mask: int, ip: _Optional[str] = None,
                          port: _Optional[int] = None, path: _Optional[_args.PathArg] = None,
                          **options: int) -> None:
    """Connect ``sock`` to the daemon as an event-notification socket subscribed to ``mask``.

    TCP sockets go to ``ip``:``port`` (IP literals; left out, the defaults
    ``confd_ha.ADDR``:``confd_ha.PORT``, or ``confd_ha.ncs``'s for
    ``confd_ha.ncs.events``), AF_UNIX sockets to ``path``. ``mask`` is an OR of
    ``NOTIF_*`` bits; for HA events use ``NOTIF_HA_INFO``, plus ``NOTIF_HA_INFO_SYNC`` to make
    the daemon wait for :func:`sync_ha_notification` after each event. The bits that need
    extra subscription data (``NOTIF_HEARTBEAT``, ``NOTIF_HEALTH_CHECK``,
    ``NOTIF_STREAM_EVENT``) are refused with ``ERR_PROTOUSAGE``, as by the original. Keyword
    ``options`` as for :func:`confd_ha.connect` (``proto_vsn``, ``lib_vsn``,
    ``access_version``).
    """
    _connect(_settings.CONFD, sock, mask, ip, port, path, options)


def _connect(defaults: _settings.Defaults, sock: _socket.socket, mask: int, ip: _Optional[str],
             port: _Optional[int], path: _Optional[_args.PathArg],
             options: _Dict[str, int]) -> None:
    """:func:`notifications_connect` with a flavour's ``defaults`` (``confd_ha.ncs.events``
    passes NSO's)."""
    _handshake.check_options(options)
    mask = _args.event_mask(mask)
    ip, port, path = _args.address_args(ip, port, path)
    _args.check_sock(sock)
    address = _handshake.target_address(sock, ip, port, path, defaults.addr, defaults.port)
    _args.check_mask_data(mask)
    _handshake.open_connection(sock, _protocol.CT_EVENT, address, **options)
    _notifications.decode_subscription_reply(
        _io.call(sock, _notifications.encode_subscription(mask), _settings.SETTINGS.max_reply))


def read_notification(sock: _socket.socket) -> _Dict[str, _Any]:
    """Block until the next notification and return it as a dict.

    An HA event is ``{'type': NOTIF_HA_INFO, 'hnot': {'type': HA_INFO_*, ...}}`` with, per
    type, ``'noprimary'``/``'nomaster'`` (the reason code), ``'secondary_died'``/
    ``'slave_died'`` or ``'secondary_arrived'``/``'slave_arrived'`` (a node dict
    ``{'nodeid': Value, 'af': AF_INET | AF_INET6 | AF_UNSPEC, 'ip4' | 'ip6' | 'str': text}``),
    ``'cdb_initialized_by_copy'`` (1 or 0), ``'besecondary_result'``/``'beslave_result'``
    (0 or an error code); IS_PRIMARY, IS_NONE and unknown types carry no other key.
    Notifications of other kinds are returned as ``{'type': N}``.
    """
    payload = _io.read_frame(_args.check_sock(sock), _settings.SETTINGS.max_reply)
    return notification_dict(_notifications.decode_notification(payload))


def sync_ha_notification(sock: _socket.socket) -> None:
    """Acknowledge the last HA event on a ``NOTIF_HA_INFO_SYNC`` subscription, letting the
    daemon resume HA processing."""
    _io.send_ack(_args.check_sock(sock), _notifications.HA_SYNCED_FRAME)


# ---------------------------------------------------------------- shaping


def notification_dict(n: _notifications.Notification) -> _Dict[str, _Any]:
    """The dict the original binding returns for a decoded notification."""
    if n.kind != NOTIF_HA_INFO:
        return {"type": n.kind}
    hnot: _Dict[str, _Any] = {"type": n.ha_type}
    keys = _INT_KEYS.get(n.ha_type)
    if keys is not None:
        for key in keys:
            hnot[key] = n.data
    keys = _NODE_KEYS.get(n.ha_type)
    if keys is not None:
        node = _cast(_notifications.HaNode, n.data)   # decode_notification: a node for these types
        for key in keys:
            hnot[key] = _node_dict(node)
    return {"type": NOTIF_HA_INFO, "hnot": hnot}


def _node_dict(node: _notifications.HaNode) -> _Dict[str, _Any]:
    af, key = _AF[node.af]
    return {"nodeid": node.nodeid, "af": af, key: node.address}
