"""The messages of an event-notification socket, without I/O (W-22, W-24, W-30, W-31).

The subscription a client sends and the daemon's reply, the HA events the daemon sends and
the ``ha_synced`` answer; both ends use this module. Malformed input raises
:class:`confd_ha.error.Error` (``ERR_PROTOUSAGE``).
"""

from __future__ import annotations

from typing import Any, NamedTuple, NoReturn, Optional, Union

from . import _address, _codec, _protocol, error
from ._consts import is_int
from ._terms import SmallAtom, Term

# The client's atoms go out as libconfd 8.2.5 sends them (SMALL_ATOM_UTF8, observed).
HA_SYNCED = SmallAtom("ha_synced")
HA_SYNCED_FRAME = _codec.encode_frame(HA_SYNCED)
_UNDEFINED = SmallAtom("undefined")


def encode_subscription(mask: int) -> bytes:
    """The framed 5-tuple subscription term (W-30)."""
    return _codec.encode_frame((mask, 0, 0, _UNDEFINED, 0))


def decode_subscription(payload: bytes) -> int:
    """The mask of a 4- or 5-tuple subscription term (W-30); other shapes → ``BadOrder``."""
    term = _codec.decode(payload)
    if isinstance(term, tuple) and len(term) in (4, 5) and is_int(term[0]) and term[0] >= 0:
        mask: int = term[0]
        return mask
    raise _protocol.BadOrder("not a subscription term")


def encode_event(ha_type: int, data: Term) -> bytes:
    """The framed HA event ``{64, {Type, Data}}``."""
    return _codec.encode_frame((_protocol.NOTIF_HA_INFO, (ha_type, data)))


# Client side: what the daemon sends on an event socket (W-22, W-24, W-30, W-31).

_HA_INT_DATA = (_protocol.HA_INFO_NOPRIMARY, _protocol.HA_INFO_SECONDARY_INITIALIZED,
                _protocol.HA_INFO_BESECONDARY_RESULT)
_HA_NODE_DATA = (_protocol.HA_INFO_SECONDARY_DIED, _protocol.HA_INFO_SECONDARY_ARRIVED)


class HaNode(NamedTuple):
    """The node of a SECONDARY_DIED / SECONDARY_ARRIVED event."""

    nodeid: Any               # confd_ha.Value of the node-id term (W-25)
    af: int                   # AF_INET | AF_INET6 | AF_STRING (this module's values)
    address: str              # dotted quad, compressed IPv6 text, or the string (W-22)


class Notification(NamedTuple):
    """One decoded event frame. ``kind`` is the notification type (NOTIF_HA_INFO for HA
    events); for HA events ``ha_type`` is 1..7 (or an unknown number) and ``data`` is an
    ``int`` (types 1, 4, 7), a :class:`HaNode` (2, 3) or None (5, 6 and unknown types)."""

    kind: int
    ha_type: Optional[int] = None
    data: Union[int, HaNode, None] = None


def _bad_notification(what: str) -> NoReturn:
    error.raise_error(error.ERR_PROTOUSAGE, "unexpected notification from daemon: %s" % what)


def decode_subscription_reply(payload: bytes) -> None:
    """Check the reply to a subscription: any atom is success, ``{error, …}`` raises as an
    order's error would (W-30, W-18)."""
    _protocol.decode_reply(payload)


def decode_notification(payload: bytes) -> Notification:
    """Decode one frame read from an event socket.

    ``{64, {Type, Data}}`` is an HA event; the client is liberal where the spec says so
    (W-31): for types 5 and 6, and for unknown types, everything after ``Type`` is ignored
    (so ``{Type}`` is fine too). A frame whose first element is another integer is a
    notification of another kind, returned with its type only. Anything else raises
    ``ERR_PROTOUSAGE``.
    """
    term = _codec.decode(payload)
    if not isinstance(term, tuple) or not term or not is_int(term[0]):
        _bad_notification("not a notification tuple")
    if term[0] != _protocol.NOTIF_HA_INFO:
        return Notification(term[0])
    body = term[1] if len(term) == 2 else None
    if not isinstance(body, tuple) or not body or not is_int(body[0]):
        _bad_notification("HA event is not {64, {Type, Data}}")
    ha_type = body[0]
    if ha_type in _HA_INT_DATA:
        if len(body) != 2 or not is_int(body[1]):
            _bad_notification("HA event %d needs an integer" % ha_type)
        return Notification(_protocol.NOTIF_HA_INFO, ha_type, body[1])
    if ha_type in _HA_NODE_DATA:
        if len(body) != 2 or not isinstance(body[1], tuple) or len(body[1]) != 2:
            _bad_notification("HA event %d needs {NodeId, Addr}" % ha_type)
        return Notification(_protocol.NOTIF_HA_INFO, ha_type, _ha_node(*body[1]))
    # IS_PRIMARY, IS_NONE and types this client does not know: whatever follows the type
    # is ignored (W-31).
    return Notification(_protocol.NOTIF_HA_INFO, ha_type)


def _ha_node(nodeid: Term, addr: Term) -> HaNode:
    from .value import Value

    try:
        value = Value.from_term(_protocol.node_id_term(nodeid))
    except error.Error:
        _bad_notification("unrecognised node id")
    af, text = _address.address_parts(addr)
    return HaNode(value, af, text)
