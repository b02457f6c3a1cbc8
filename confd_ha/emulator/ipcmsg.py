"""What the emulated daemon makes of the bytes on its IPC port, without I/O: the verdict on a
hello's first byte and on the whole hello, HA orders, event subscriptions.

Every rule here is what ConfD 8.2.5 was observed to do (docs/conformance-ipc.md); the
emulator's own choices are marked as such. Terms are decoded only by
:mod:`confd_ha._protocol`; this module decides what a decoded term means.
"""

from __future__ import annotations

import zlib
from typing import NamedTuple, Optional, Tuple

from .. import _address, _codec, _protocol, error
from .._consts import is_int
from .._terms import Atom, Term

# ------------------------------------------------------------------ the hello

SERVED_TYPES = frozenset((3, 5, 7, 8, 11, 17))  # answered with the 9-byte reply
SILENT_TYPES = frozenset((1, 6))                # taken after their first byte, never answered
CT_CLI = 4
CLI_UNAVAILABLE = b"\x0d"                       # sent to a CLI socket, which is then closed
ACCESS_ANSWER = 0x0C                            # the first byte of an access-check answer
FLAG_V1 = 0x80                                  # asks for the access check (MD5)
FLAG_V2 = 0x40                                  # with FLAG_V1: SHA-256 instead

SERVE, CLI, SILENT, DROP = "serve", "cli", "silent", "drop"


class FirstByte(NamedTuple):
    """What to do after the hello's first byte: ``action`` SERVE (read the rest), CLI (send
    CLI_UNAVAILABLE and close), SILENT (keep the connection, answer nothing) or DROP (close);
    ``variant`` is the access check to run (None: none); ``why`` explains a DROP."""

    action: str
    ctype: int
    variant: Optional[int] = None
    why: str = ""


def first_byte(byte0: int, check_on: bool) -> FirstByte:
    """The verdict on a hello's first byte (client type | access flags)."""
    ctype = byte0 & _protocol.CT_MASK
    variant = None
    if check_on:
        if not byte0 & FLAG_V1:
            return FirstByte(DROP, ctype, why="hello without the access-check flag")
        variant = _protocol.ACCESS_V2 if byte0 & FLAG_V2 else _protocol.ACCESS_V1
    elif byte0 & FLAG_V1:
        return FirstByte(DROP, ctype, why="access-check flag but the check is off")
    if ctype == CT_CLI:
        return FirstByte(CLI, ctype)
    if ctype in SILENT_TYPES:
        return FirstByte(SILENT, ctype)
    if ctype not in SERVED_TYPES:
        return FirstByte(DROP, ctype, why="client type %d not served" % ctype)
    return FirstByte(SERVE, ctype, variant)


def hello_status(hello: _protocol.Hello, window: Tuple[int, int], maxdepth: int, maxkeylen: int) -> int:
    """The reply's status byte: 1 for a protocol version outside ``window`` (inclusive), 2
    for a MAXDEPTH/MAXKEYLEN pair that is neither 0/0 nor at least the daemon's, else 0."""
    lo, hi = window
    if not lo <= hello.proto_vsn <= hi:
        return _protocol.HELLO_BADVSN
    if (hello.maxdepth, hello.maxkeylen) != (0, 0) and (
            hello.maxdepth < maxdepth or hello.maxkeylen < maxkeylen):
        return _protocol.HELLO_WARNING
    return _protocol.HELLO_ACCEPTED


# ------------------------------------------------------------------ frames and terms

MAX_ANNOUNCED = 0x7FFFFFFB   # a frame announced longer than this closes the connection at once


class _Undecodable:
    def __repr__(self) -> str:
        return "UNDECODABLE"


UNDECODABLE = _Undecodable()


def decode_lenient(payload: bytes, limit: int) -> Term:
    """The term at the start of ``payload``, as the daemon reads it: bytes after a complete
    term are ignored, a zlib-compressed term (tag 80) is inflated (to at most ``limit``
    bytes); UNDECODABLE if there is no term."""
    payload = bytes(payload)
    if payload[:2] == b"\x83\x50":
        inflated = _inflate(payload, limit)
        if inflated is None:
            return UNDECODABLE
        payload = inflated
    try:
        return _codec.decode(payload)
    except error.Error:
        pass
    end = _term_end(payload)
    if end is None:
        return UNDECODABLE
    try:
        return _codec.decode(payload[:end])
    except error.Error:
        return UNDECODABLE


def _inflate(payload: bytes, limit: int) -> Optional[bytes]:
    if len(payload) < 6:
        return None
    size = int.from_bytes(payload[2:6], "big")
    if size > limit:
        return None
    inflater = zlib.decompressobj()
    try:
        data = inflater.decompress(payload[6:], size + 1)
    except zlib.error:
        return None
    return b"\x83" + data if len(data) == size else None


def _term_end(payload: bytes) -> Optional[int]:
    """The length of the complete term at the start of ``payload`` when more bytes follow it
    (bisection on the C core's verdicts: a shorter prefix is truncated, a longer one has
    extra bytes), else None."""
    if _codec.validate(payload) != _codec.DECODE_EXTRA:
        return None
    lo, hi = 1, len(payload)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        verdict = _codec.validate(payload[:mid])
        if verdict == _codec.DECODE_OK:
            return mid
        if verdict == _codec.DECODE_EXTRA:
            hi = mid
        elif verdict == _codec.DECODE_TRUNCATED:
            lo = mid
        else:
            return None
    return None


# ------------------------------------------------------------------ HA orders

ORDER, REFUSE, CRASH = "order", "refuse", "crash"


class OrderVerdict(NamedTuple):
    """``kind`` ORDER (run ``order``; if ``crash_after``, ConfD closes the socket instead of
    answering), REFUSE (answer {error,21}) or CRASH (ConfD's HA subsystem fails on it: the node
    drops to NONE and the control socket is closed). The emulator fails like ConfD only with
    confd_quirks; without, it refuses both kinds of failure with {error,21} -- or, for an
    ``asynchronous`` besecondary (WaitReply 0), reports PROTOUSAGE as BESECONDARY_RESULT and
    writes nothing (W-17)."""

    kind: str
    order: Optional[_protocol.Order] = None
    crash_after: bool = False
    why: str = ""
    asynchronous: bool = False


def classify_order(term: Term) -> OrderVerdict:
    """What the daemon does with a term received on an HA control socket."""
    if term is UNDECODABLE:
        return OrderVerdict(REFUSE, why="not a term")
    if not isinstance(term, tuple) or not term or not is_int(term[0]):
        return OrderVerdict(REFUSE, why="not an order tuple")
    code, n = term[0], len(term)
    if code in (_protocol.BENONE, _protocol.GETSTATUS, _protocol.BERELAY) and n == 1:
        return OrderVerdict(ORDER, _protocol.Order(code))
    if code in (_protocol.BEPRIMARY, _protocol.SECONDARY_DEAD) and n == 2:
        return OrderVerdict(ORDER, _protocol.Order(code, node=term[1]))
    if code != _protocol.BESECONDARY or n != 4:
        return OrderVerdict(REFUSE, why="unknown order %d/%d" % (code, n))
    target, wait = term[2], term[3]
    if not (isinstance(target, tuple) and len(target) == 2):
        return OrderVerdict(REFUSE, why="besecondary: primary is not {NodeId, Addr}")
    addr = target[1]
    asynchronous = type(wait) is int and wait == 0
    if isinstance(addr, tuple):
        try:
            _address.address_parts(addr)
        except error.Error:
            return OrderVerdict(CRASH, why="besecondary: address tuple is not an IP address",
                                asynchronous=asynchronous)
    else:
        addr = _host_name(addr)
    order = _protocol.Order(code, node=term[1], pnode=target[0], addr=addr,
                            waitreply=not asynchronous)
    crash_after = not (type(wait) is int and wait in (0, 1))
    return OrderVerdict(ORDER, order, crash_after=crash_after,
                        why="besecondary: WaitReply is not 0 or 1" if crash_after else "")


def _host_name(addr: Term) -> bytes:
    """A non-tuple primary address is a host name to resolve: a binary or a byte list as it
    is, an atom by its name; anything else names no host (the join fails with HA_CONNECT)."""
    if isinstance(addr, Atom):
        return str(addr).encode("utf-8")
    if isinstance(addr, bytes):
        return addr
    if isinstance(addr, list) and all(is_int(x) and 0 <= x <= 255 for x in addr):
        return bytes(addr)
    return b""


# ------------------------------------------------------------------ event subscriptions

SUBSCRIBE, BAD, CLOSE = "subscribe", "bad", "close"
BAD_SUBSCRIPTION_FRAME = _codec.encode_frame(
    (Atom("error"), error.ERR_INTERNAL, b"Bad subscription data"))
HA_SYNCED = Atom("ha_synced")
_RAW_MASK_SIZES = (4, 8, 12)


class Subscription(NamedTuple):
    """``kind`` SUBSCRIBE (with ``mask``), BAD (answer BAD_SUBSCRIPTION_FRAME and close),
    CLOSE (close without a reply) or CRASH (ConfD's event manager fails: this socket and, in
    ConfD, every other event socket are closed)."""

    kind: str
    mask: int = 0


def classify_subscription(payload: bytes, limit: int) -> Subscription:
    """What the daemon does with the first frame on an event socket: a 5-tuple whose first
    element is a mask >= 0; or, when the frame is no term, a 4-, 8- or 12-byte frame whose
    first 4 bytes are the mask."""
    term = decode_lenient(payload, limit)
    if term is UNDECODABLE:
        if len(payload) in _RAW_MASK_SIZES:
            return Subscription(SUBSCRIBE, int.from_bytes(payload[:4], "big"))
        return Subscription(CRASH)
    if not (isinstance(term, tuple) and len(term) == 5):
        return Subscription(BAD)
    mask = term[0]
    if not is_int(mask):
        return Subscription(CRASH)
    if mask < 0:
        return Subscription(CLOSE)
    return Subscription(SUBSCRIBE, mask)
