"""The HA messages of the IPC protocol without I/O: calls become bytes, bytes become results.

The hello and access check, framing, HA orders and their replies, the status reply and the
address terms. Both ends use this module -- the client (``confd_ha``, ``confd_ha.events``) and
the emulator. Terms go through the one codec, :mod:`confd_ha._codec` (the C core); address
terms are read and made by :mod:`confd_ha._address`; the messages of an event socket are in
:mod:`confd_ha._notifications`. Nothing here touches a
socket (h11's sans-I/O style): byte strings go in, byte strings or Python values come out.
Malformed input raises :class:`confd_ha.error.Error` (``ERR_PROTOUSAGE``) through
:mod:`confd_ha.error`.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any, Callable, Dict, List, NamedTuple, NoReturn, Optional, Tuple

from . import _address, _codec, error
from ._consts import HaInfo, is_int
from ._core import ffi, lib
from ._terms import Atom, Term

log = logging.getLogger("confd_ha")
# ---------------------------------------------------------------- constants

CT_EVENT = 11          # client type of an event-notification socket
CT_HA = 17             # client type of an HA control socket
CT_MASK = 0x3F
FLAG_ACCESS_V1 = 0x80  # WANT_CHALLENGE (MD5)
FLAG_ACCESS_V2 = 0xC0  # WANT_CHALLENGE | WANT_CHALLENGE_V2 (SHA-256)
HELLO_LEN = lib.CHD_HELLO_LEN
FRAME_HDR_LEN = lib.CHD_FRAME_HDR_LEN

HELLO_ACCEPTED = 0
HELLO_BADVSN = 1
HELLO_WARNING = 2

DEFAULT_PROTO_VSN = 82           # ConfD 8.2.5 / NSO 6.2.5 (W-07)
DEFAULT_LIB_VSN = 0x08020500
SERVER_MAXDEPTH = 12             # what ConfD 8.2.5 sends in its hello reply (observed,
SERVER_MAXKEYLEN = 4             # docs/conformance-ipc.md); the emulator sends the same
CLIENT_MAXDEPTH = 20             # the last two bytes of libconfd 8.2.5's hello (observed)
CLIENT_MAXKEYLEN = 9
MAX_FRAME = 16 * 1024 * 1024     # W-15

ACCESS_OK = b"\x00"
ACCESS_REJECTED = b"\x03"        # sent by ConfD 8.2.5 after a wrong answer (observed)
ACCESS_V1 = 1
ACCESS_V2 = 2
# variant: (nonce size, hash, hello flags)
_ACCESS: Dict[int, Tuple[int, Callable[[bytes], Any], int]] = {
    ACCESS_V1: (16, hashlib.md5, FLAG_ACCESS_V1), ACCESS_V2: (32, hashlib.sha256, FLAG_ACCESS_V2)}

BEPRIMARY = lib.CHD_ORDER_BEPRIMARY
BESECONDARY = lib.CHD_ORDER_BESECONDARY
BENONE = lib.CHD_ORDER_BENONE
GETSTATUS = lib.CHD_ORDER_GETSTATUS
SECONDARY_DEAD = lib.CHD_ORDER_SECONDARY_DEAD
BERELAY = lib.CHD_ORDER_BERELAY

NOTIF_HA_INFO = 1 << 6
NOTIF_HA_INFO_SYNC = 1 << 20

# The HA event types ({64, {Type, Data}}; W-31).
HA_INFO_NOPRIMARY = HaInfo.NOPRIMARY
HA_INFO_SECONDARY_DIED = HaInfo.SECONDARY_DIED
HA_INFO_SECONDARY_ARRIVED = HaInfo.SECONDARY_ARRIVED
HA_INFO_SECONDARY_INITIALIZED = HaInfo.SECONDARY_INITIALIZED
HA_INFO_IS_PRIMARY = HaInfo.IS_PRIMARY
HA_INFO_IS_NONE = HaInfo.IS_NONE
HA_INFO_BESECONDARY_RESULT = HaInfo.BESECONDARY_RESULT


# ---------------------------------------------------------------- handshake


class Hello(NamedTuple):
    """The 9-byte hello (``byte0`` = type | flags) or reply (``byte0`` = status)."""

    byte0: int
    proto_vsn: int
    vsn: int
    maxdepth: int = 0
    maxkeylen: int = 0


def build_hello(hello: Hello) -> bytes:
    out = ffi.new("unsigned char[]", HELLO_LEN)
    h = ffi.new("chd_hello *", tuple(hello))
    error.check(lib.chd_hello_build(out, HELLO_LEN, h), "hello")
    return ffi.buffer(out, HELLO_LEN)[:]


def parse_hello(data: bytes) -> Hello:
    h = ffi.new("chd_hello *")
    error.check(lib.chd_hello_parse(data, len(data), h), "hello")
    return Hello(h.byte0, h.proto_vsn, h.vsn, h.maxdepth, h.maxkeylen)


def access_variant(byte0: int) -> Optional[int]:
    """The access-check variant a client hello asks for: ACCESS_V1, ACCESS_V2, None (no
    check) or -1 for a combination no client sends (W-12)."""
    flags = byte0 & ~CT_MASK
    return {0: None, FLAG_ACCESS_V1: ACCESS_V1, FLAG_ACCESS_V2: ACCESS_V2}.get(flags, -1)


def access_flag(variant: int) -> int:
    return _ACCESS[variant][2]


def challenge_size(variant: int) -> int:
    """Bytes of the challenge message (0x0B + nonce) and of the response (0x0C + digest)."""
    return 1 + _ACCESS[variant][0]


def access_digest(variant: int, secret: bytes, nonce: bytes) -> bytes:
    """H(secret ‖ challenge) for the variant (W-14: the secret's raw bytes)."""
    digest: bytes = _ACCESS[variant][1](secret + nonce).digest()
    return digest


def build_challenge(nonce: bytes) -> bytes:
    out = ffi.new("unsigned char[]", len(nonce) + 1)
    error.check(lib.chd_challenge_build(out, len(nonce) + 1, nonce, len(nonce)), "challenge")
    return ffi.buffer(out)[:]


def challenge_nonce(variant: int, data: bytes) -> Optional[bytes]:
    """The nonce of a server challenge, or None when it is not a challenge (W-13)."""
    if lib.chd_challenge_parse(data, len(data), _ACCESS[variant][0]) != lib.CHD_OK:
        return None
    return data[1:]


def build_response(variant: int, secret: bytes, challenge: bytes) -> bytes:
    nonce = challenge_nonce(variant, challenge)
    if nonce is None:
        error.raise_error(error.ERR_ACCESS_DENIED, "IPC access check: bad challenge from daemon")
    digest = access_digest(variant, secret, nonce)
    out = ffi.new("unsigned char[]", len(digest) + 1)
    error.check(lib.chd_response_build(out, len(digest) + 1, digest, len(digest)), "response")
    return ffi.buffer(out)[:]


def verify_response(variant: int, secret: bytes, nonce: bytes, data: bytes) -> bool:
    """Constant-time check of a client's access-check response."""
    expected = b"\x0c" + access_digest(variant, secret, nonce)
    if lib.chd_response_parse(data, len(data), len(expected) - 1) != lib.CHD_OK:
        return False
    return hmac.compare_digest(expected, data)


# ---------------------------------------------------------------- framing


def frame(payload: bytes) -> bytes:
    """A raw frame: 4-byte big-endian length, then the payload (used for the token)."""
    return len(payload).to_bytes(4, "big") + payload


def frame_size(header: bytes, limit: int = MAX_FRAME) -> int:
    """The payload length of a frame header; above ``limit`` → ``ERR_PROTOUSAGE`` (W-15)."""
    size = ffi.new("uint32_t *")
    rc = lib.chd_frame_header_parse(header, len(header), min(limit, 0xFFFFFFFF), size)
    if rc == lib.CHD_E_TOOBIG:
        error.raise_error(error.ERR_PROTOUSAGE,
                          "frame of %d bytes announced, above the limit of %d" % (size[0], limit))
    error.check(rc, "frame header")
    return int(size[0])


# ---------------------------------------------------------------- HA orders (client side)

def encode_order(order: int, node: Term = None, pnode: Term = None,
                 addr: Optional[Tuple[int, bytes]] = None, waitreply: int = 1) -> bytes:
    """One framed HA order. ``node``/``pnode`` are node-id terms; ``addr`` is
    ``(AF_INET | AF_INET6, packed)`` or ``(AF_STRING, bytes)`` (:mod:`confd_ha._address`)."""
    nodes: _codec.FlatNodes = []
    pool = bytearray()
    node_n = pnode_n = 0
    if node is not None:
        _codec.flatten(node, nodes, pool)
        node_n = len(nodes)
    if pnode is not None:
        _codec.flatten(pnode, nodes, pool)
        pnode_n = len(nodes) - node_n
    terms = ffi.new("chd_term[]", nodes) if nodes else ffi.NULL
    a = ffi.NULL
    if addr is not None:
        af, raw = addr
        if af == _address.AF_STRING:
            a = ffi.new("chd_addr *", {"af": af, "off": len(pool), "n": len(raw)})
            pool += raw
        else:
            a = ffi.new("chd_addr *", {"af": af, "ip": list(raw)})
    data = bytes(pool)
    cap = 64 + 16 * len(nodes) + len(data)
    out = ffi.new("unsigned char[]", cap)
    outlen = ffi.new("size_t *")
    rc = lib.chd_order_encode(order, terms, node_n,
                              terms + node_n if pnode is not None else ffi.NULL, pnode_n,
                              a, waitreply, data, len(data), out, cap, outlen)
    error.check(rc, "order")
    return ffi.buffer(out, outlen[0])[:]


# Orders without arguments never change: build them once.
BENONE_FRAME = encode_order(BENONE)
GETSTATUS_FRAME = encode_order(GETSTATUS)
BERELAY_FRAME = encode_order(BERELAY)


# ---------------------------------------------------------------- replies


def _reason_text(raw: bytes) -> str:
    """W-18: one trailing NUL stripped, UTF-8 with invalid sequences replaced."""
    if raw.endswith(b"\x00"):
        raw = raw[:-1]
    return raw.decode("utf-8", "replace")


def _unexpected_reply(core_status: Optional[int] = None) -> NoReturn:
    """A reply the client cannot use: ``ERR_PROTOUSAGE``, one text whatever the cause; the
    C core's status, when the core refused the bytes, is kept on the exception."""
    error.raise_error(error.ERR_PROTOUSAGE, "unexpected reply from daemon",
                      core_status=core_status)


def decode_reply(payload: bytes) -> None:
    """Check an order's reply: success returns None, ``{error, …}`` raises (W-18, W-19)."""
    payload = bytes(payload)
    rep = ffi.new("chd_reply *")
    rc = lib.chd_reply_decode(payload, len(payload), rep)
    if rc != lib.CHD_OK:
        _unexpected_reply(rc)
    kind = rep.kind
    if kind == lib.CHD_REPLY_OK:
        return None
    if kind == lib.CHD_REPLY_ATOM:
        log.info("daemon replied with the atom %r; taken as success (W-18)",
                 payload[rep.atom_off:rep.atom_off + rep.atom_len].decode("latin-1"))
        return None
    code = int(rep.code)
    reason = ""
    if kind == lib.CHD_REPLY_ERROR_REASON:
        if rep.reason_kind == lib.CHD_REASON_BYTES:
            reason = _reason_text(payload[rep.reason_off:rep.reason_off + rep.reason_len])
        else:
            items = _codec.decode(payload)[2]
            if not all(isinstance(x, int) and 0 <= x <= 255 for x in items):
                _unexpected_reply()
            reason = _reason_text(bytes(items))
    error.raise_error(code, reason, daemon=True)


# ---------------------------------------------------------------- status reply

# What status() returns: (state, [{'nodeid': str, 'address': str}, ...]).
Status = Tuple[int, List[Dict[str, str]]]

# The reply of a node without peers, {State, []}, exactly as ConfD and the emulator write it
# (SMALL_INTEGER_EXT state, NIL). Made by the C encoder, so an equal payload is known to be
# valid and is answered without a decode. Why: status() is polled, most often on nodes whose
# list is empty, and there a decode through cffi (~0.5 us) would put status() above 1.15x
# the CPU of Cisco's _confd.ha.status (benchmarks/bench_client.py); this constant table
# costs one dict look-up and holds no state.
_NO_PEERS: Dict[bytes, int] = {_codec.encode((state, [])): state for state in range(256)}


def decode_status(payload: bytes) -> Status:
    """The getstatus reply as ``(state, [{'nodeid': str, 'address': str}, ...])``.

    The caller owns the returned list and dicts (they are never shared between calls).
    """
    if type(payload) is not bytes:
        payload = bytes(payload)
    state = _NO_PEERS.get(payload)
    if state is not None:
        return state, []
    n = len(payload)
    cap = 3 * n + 64  # the most text the C core can write for n bytes of reply
    text = ffi.new("unsigned char[]", cap)
    out = ffi.new("int64_t *")
    sizes = ffi.new("size_t[2]")   # text length, node count
    generic = ffi.new("int *")
    rc = lib.chd_status_decode(payload, n, out, text, cap, sizes, sizes + 1, generic)
    if rc != lib.CHD_OK:
        _unexpected_reply(rc)
    if generic[0]:
        return _status_generic(payload)
    if not sizes[1]:
        return int(out[0]), []
    fields = iter(ffi.buffer(text, sizes[0] - 1)[:].decode("utf-8", "replace").split("\x00"))
    return int(out[0]), [{"nodeid": nid, "address": addr} for nid, addr in zip(fields, fields)]


def _status_generic(payload: bytes) -> Status:
    """The status replies the C core leaves to Python: a node id that is not a binary, a
    list address, a state beyond 64 bits (rare; W-20, W-22, W-25). The node id's text comes
    from :class:`confd_ha.Value`, which only Python has; the common case stays in C because
    the generic decode of 255 nodes costs ~3x Cisco's whole status() (benchmarks/README.md)."""
    from .value import Value

    term = _codec.decode(payload)
    if not (isinstance(term, tuple) and len(term) == 2 and is_int(term[0])
            and isinstance(term[1], list)):
        _unexpected_reply()
    result: List[Dict[str, str]] = []
    for entry in term[1]:
        if not (isinstance(entry, tuple) and len(entry) == 2):
            _unexpected_reply()
        nodeid, addr = node_id_term(entry[0]), entry[1]
        if isinstance(nodeid, bytes):
            nid = nodeid.split(b"\x00", 1)[0].decode("utf-8", "replace")
        else:
            try:
                nid = str(Value.from_term(nodeid))
            except error.Error:
                _unexpected_reply()
        result.append({"nodeid": nid, "address": _address.address_text(addr)})
    return term[0], result


def node_id_term(nodeid: Term) -> Term:
    """A node id as received: an atom stands for the binary of its name (as libconfd
    reads it)."""
    if isinstance(nodeid, Atom):
        return str(nodeid).encode("utf-8")
    return nodeid


# ---------------------------------------------------------------- HA orders (daemon side)


class Order(NamedTuple):
    """A decoded HA order, as the emulator receives it."""

    code: int
    node: Term = None         # node-id term (beprimary, besecondary, secondary_dead)
    pnode: Term = None        # primary node-id term (besecondary)
    addr: Term = None         # primary address term (besecondary)
    waitreply: bool = True    # besecondary only


class BadOrder(Exception):
    """A well-formed term that is not a valid order (W-21). ``reply`` says whether it is
    answered with ``{error, 21}``: False for a besecondary whose WaitReply is 0/false, which
    never gets a reply (W-17) and is reported as BESECONDARY_RESULT 21 instead (B-15)."""

    def __init__(self, message: str, reply: bool = True) -> None:
        super().__init__(message)
        self.reply = reply


_TRUE = Atom("true")
_FALSE = Atom("false")


def _waitreply(wait: Term) -> Optional[bool]:
    """True/False for a valid WaitReply (the integer 1/0 or the atom true/false, W-17),
    None for anything else (a float, another integer, any other term: W-21)."""
    if type(wait) is int:
        return {1: True, 0: False}.get(wait)
    if isinstance(wait, Atom):
        return {_TRUE: True, _FALSE: False}.get(wait)
    return None


def decode_order(payload: bytes) -> Order:
    """Decode an order term; undecodable bytes raise Error, wrong shapes BadOrder."""
    term = _codec.decode(payload)
    if not isinstance(term, tuple) or not term or not is_int(term[0]):
        raise BadOrder("not an order tuple")
    code, n = term[0], len(term)
    if code in (BENONE, GETSTATUS, BERELAY) and n == 1:
        return Order(code)
    if code in (BEPRIMARY, SECONDARY_DEAD) and n == 2:
        return Order(code, node=term[1])
    if code == BESECONDARY and n == 4:
        # WaitReply first: whether anything may be written depends on it (W-17 before W-21).
        waitreply = _waitreply(term[3])
        if waitreply is None:
            raise BadOrder("besecondary: WaitReply must be 0, 1, false or true")
        target = term[2]
        if not (isinstance(target, tuple) and len(target) == 2):
            raise BadOrder("besecondary: primary must be {NodeId, Addr}", reply=waitreply)
        addr = target[1]
        if not _is_address(addr):
            raise BadOrder("besecondary: bad primary address", reply=waitreply)
        return Order(code, node=term[1], pnode=target[0], addr=addr, waitreply=waitreply)
    raise BadOrder("unknown order %r/%d" % (code, n))


def _is_address(addr: Term) -> bool:
    try:
        _address.address_parts(addr)
    except error.Error:
        return False
    return True


OK_FRAME = _codec.encode_frame(Atom("ok"))


def encode_error(code: int) -> bytes:
    """The framed ``{error, Code}`` reply."""
    return _codec.encode_frame((Atom("error"), code))


def encode_status(state: int, nodes: Any) -> bytes:
    """The framed status reply; ``nodes`` holds (node-id term, address term) pairs."""
    return _codec.encode_frame((state, [(nid, addr) for nid, addr in nodes]))
