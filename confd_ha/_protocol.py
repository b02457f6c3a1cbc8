"""The IPC protocol without I/O: calls become bytes and bytes become results.

Both ends use this module -- the client (``confd_ha``, ``confd_ha.events``) and the emulator --
so there is exactly one codec, the C core in ``confd_ha._core``. Nothing here touches a
socket (h11's sans-I/O style): byte strings go in, byte strings or Python values come out.
Malformed input raises :class:`confd_ha.error.Error` (``ERR_PROTOUSAGE``) through
:func:`confd_ha.error.check`.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import socket
import threading
from typing import (Any, Callable, Dict, List, NamedTuple, NoReturn, Optional, Tuple,
                    Union)

from . import error
from ._core import ffi, lib
from ._terms import Atom, SmallAtom, Term

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


# ---------------------------------------------------------------- generic term codec

_K_INT = lib.CHD_K_INT
_K_FLOAT = lib.CHD_K_FLOAT
_K_ATOM = lib.CHD_K_ATOM
_K_ATOM_UTF8 = lib.CHD_K_ATOM_UTF8
_K_BINARY = lib.CHD_K_BINARY
_K_TUPLE = lib.CHD_K_TUPLE
_K_LIST = lib.CHD_K_LIST
_K_STRING = lib.CHD_K_STRING
_K_FLOAT_TEXT = lib.CHD_K_FLOAT_TEXT
_K_SMALL_ATOM_UTF8 = lib.CHD_K_SMALL_ATOM_UTF8
_MAX_MAG = 2**64 - 1
_MAX_TERMS = 1 << 20  # nodes of one generically decoded message; bounds the allocation


def _flatten(term: Term, nodes: List[Tuple[int, int, int, int, int, float]],
             pool: bytearray) -> None:
    """Pre-order nodes (kind, neg, n, off, mag, f) for chd_encode; bytes go to pool."""
    stack = [term]
    while stack:
        t = stack.pop()
        if t is True or t is False:
            t = Atom("true" if t else "false")
        if isinstance(t, int):
            mag = -t if t < 0 else t
            if mag > _MAX_MAG:
                raise ValueError("integer %d does not fit in 64 bits" % t)
            nodes.append((_K_INT, t < 0, 0, 0, mag, 0.0))
        elif isinstance(t, SmallAtom):
            data = t.encode("utf-8")
            nodes.append((_K_SMALL_ATOM_UTF8, 0, len(data), len(pool), 0, 0.0))
            pool += data
        elif isinstance(t, Atom):
            try:
                data, kind = t.encode("latin-1"), _K_ATOM
            except UnicodeEncodeError:
                data, kind = t.encode("utf-8"), _K_ATOM_UTF8
            nodes.append((kind, 0, len(data), len(pool), 0, 0.0))
            pool += data
        elif isinstance(t, (bytes, bytearray, memoryview)):
            data = bytes(t)
            nodes.append((_K_BINARY, 0, len(data), len(pool), 0, 0.0))
            pool += data
        elif isinstance(t, tuple):
            nodes.append((_K_TUPLE, 0, len(t), 0, 0, 0.0))
            stack.extend(reversed(t))
        elif isinstance(t, list):
            nodes.append((_K_LIST, 0, len(t), 0, 0, 0.0))
            stack.extend(reversed(t))
        elif isinstance(t, float):
            nodes.append((_K_FLOAT, 0, 0, 0, 0, t))
        else:
            raise TypeError("cannot encode %s as an Erlang term" % type(t).__name__)


def _flat(term: Term) -> Tuple[Any, int, bytes]:
    nodes: List[Tuple[int, int, int, int, int, float]] = []
    pool = bytearray()
    _flatten(term, nodes, pool)
    return ffi.new("chd_term[]", nodes), len(nodes), bytes(pool)


def _encode(term: Term, framed: int) -> bytes:
    terms, n, pool = _flat(term)
    cap = 64 + 16 * n + len(pool)
    out = ffi.new("unsigned char[]", cap)
    outlen = ffi.new("size_t *")
    error.check(lib.chd_encode(terms, n, pool, len(pool), framed, out, cap, outlen), "encode")
    return ffi.buffer(out, outlen[0])[:]


def encode(term: Term) -> bytes:
    """The canonical ETF payload of ``term`` (version byte included, no frame header)."""
    return _encode(term, 0)


def encode_frame(term: Term) -> bytes:
    """``encode(term)`` preceded by its 4-byte length."""
    return _encode(term, 1)


def _build(terms: Any, i: int, data: bytes) -> Tuple[Term, int]:
    """The Python term for the nodes starting at terms[i]; returns (term, next index)."""
    t = terms[i]
    k = t.kind
    if k == _K_INT:
        return (-t.mag if t.neg else t.mag), i + 1
    if k == _K_BINARY:
        return data[t.off:t.off + t.n], i + 1
    if k == _K_ATOM:
        return Atom(data[t.off:t.off + t.n].decode("latin-1")), i + 1
    if k == _K_TUPLE or k == _K_LIST:
        items: List[Term] = []
        i += 1
        for _ in range(t.n):
            item, i = _build(terms, i, data)
            items.append(item)
        return (tuple(items) if k == _K_TUPLE else items), i
    if k == _K_ATOM_UTF8:
        return Atom(data[t.off:t.off + t.n].decode("utf-8")), i + 1
    if k == _K_STRING:
        return list(data[t.off:t.off + t.n]), i + 1
    if k == _K_FLOAT:
        return t.f, i + 1
    # _K_FLOAT_TEXT: the old float format, "%.20e" text padded with NULs.
    # The C core has checked the text's syntax; only the range is left to check.
    value = float(data[t.off:t.off + t.n].rstrip(b"\x00").decode("ascii"))
    if value in (math.inf, -math.inf):
        error.raise_error(error.ERR_PROTOUSAGE, "bad value in message: old-style float overflows")
    return value, i + 1


def decode(payload: bytes) -> Term:
    """The term of a whole ETF payload; malformed input → ``Error(ERR_PROTOUSAGE)``."""
    payload = bytes(payload)
    count = ffi.new("size_t *")
    # Validate and count first, so the node array is exactly as large as the term needs.
    error.check(lib.chd_decode(payload, len(payload), ffi.NULL, 0, count), "decode")
    if count[0] > _MAX_TERMS:
        error.check(lib.CHD_E_TOOBIG, "decode")
    terms = ffi.new("chd_term[]", count[0])
    error.check(lib.chd_decode(payload, len(payload), terms, count[0], count), "decode")
    term, _ = _build(terms, 0, payload)
    return term


DECODE_OK = lib.CHD_OK                 # verdicts of validate() the emulator's server side
DECODE_EXTRA = lib.CHD_E_EXTRA        # uses to find a term followed by extra bytes
DECODE_TRUNCATED = lib.CHD_E_TRUNCATED


def validate(payload: bytes) -> int:
    """The C core's verdict on a payload (CHD_OK or a negative status), without building it."""
    payload = bytes(payload)
    count = ffi.new("size_t *")
    return int(lib.chd_decode(payload, len(payload), ffi.NULL, 0, count))


# ---------------------------------------------------------------- HA orders (client side)

AF_STRING = lib.CHD_AF_STRING
AF_INET = lib.CHD_AF_INET
AF_INET6 = lib.CHD_AF_INET6


def parse_ip(text: str) -> Optional[Tuple[int, bytes]]:
    """(AF_INET | AF_INET6, packed bytes) of an IP literal, IPv4 tried first; None if not."""
    for fam, af in ((socket.AF_INET, AF_INET), (socket.AF_INET6, AF_INET6)):
        try:
            return af, socket.inet_pton(fam, text)
        except (OSError, ValueError):
            continue
    return None


def encode_order(order: int, node: Term = None, pnode: Term = None,
                 addr: Optional[Tuple[int, bytes]] = None, waitreply: int = 1) -> bytes:
    """One framed HA order. ``node``/``pnode`` are node-id terms; ``addr`` is
    ``(AF_INET | AF_INET6, packed)`` or ``(AF_STRING, bytes)``."""
    nodes: List[Tuple[int, int, int, int, int, float]] = []
    pool = bytearray()
    node_n = pnode_n = 0
    if node is not None:
        _flatten(node, nodes, pool)
        node_n = len(nodes)
    if pnode is not None:
        _flatten(pnode, nodes, pool)
        pnode_n = len(nodes) - node_n
    terms = ffi.new("chd_term[]", nodes) if nodes else ffi.NULL
    a = ffi.NULL
    if addr is not None:
        af, raw = addr
        if af == AF_STRING:
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

_tls = threading.local()


def _reason_text(raw: bytes) -> str:
    """W-18: one trailing NUL stripped, UTF-8 with invalid sequences replaced."""
    if raw.endswith(b"\x00"):
        raw = raw[:-1]
    return raw.decode("utf-8", "replace")


def decode_reply(payload: bytes) -> None:
    """Check an order's reply: success returns None, ``{error, …}`` raises (W-18, W-19)."""
    payload = bytes(payload)
    rep = getattr(_tls, "reply", None)
    if rep is None:
        rep = _tls.reply = ffi.new("chd_reply *")
    rc = lib.chd_reply_decode(payload, len(payload), rep)
    if rc != lib.CHD_OK:
        error.raise_error(error.ERR_PROTOUSAGE, "unexpected reply from daemon")
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
            items = decode(payload)[2]
            if not all(isinstance(x, int) and 0 <= x <= 255 for x in items):
                error.raise_error(error.ERR_PROTOUSAGE, "unexpected reply from daemon")
            reason = _reason_text(bytes(items))
    error.raise_error(code, reason, daemon=True)


class _StatusOut:
    """Per-thread output buffers of chd_status_decode, reused across calls."""

    def __init__(self) -> None:
        self.state = ffi.new("int64_t *")
        self.sizes = ffi.new("size_t[2]")
        self.count = self.sizes + 1
        self.flags = ffi.new("int *")
        self.grow(4096)

    def grow(self, cap: int) -> None:
        self.cap = cap
        self.text = ffi.new("unsigned char[]", cap)
        self.buf = ffi.buffer(self.text)


_status_decode = lib.chd_status_decode
# The last status reply decoded, as (payload, state, kept), replaced as a whole. HA frameworks
# poll status() and the reply rarely changes, so an equal payload is not decoded again.
# ``kept`` is first the list of text fields (cheap to keep); on the first repeat it becomes a
# tuple of private node dicts whose copies answer later repeats. Larger replies are not kept.
_STATUS_KEEP_MAX = 64 * 1024
_status_last: Tuple[Optional[bytes], int, Any] = (None, 0, None)

# What status() returns: (state, [{'nodeid': str, 'address': str}, ...]).
Status = Tuple[int, List[Dict[str, str]]]


def _status_fields(payload: bytes) -> Tuple[int, Optional[List[str]]]:
    """(state, text fields) by the C decoder; fields is None when the generic path is needed."""
    try:
        out = _tls.status
    except AttributeError:
        out = _tls.status = _StatusOut()
    n = len(payload)
    if 3 * n + 64 > out.cap:
        out.grow(3 * n + 64)
    if _status_decode(payload, n, out.state, out.text, out.cap, out.sizes, out.count, out.flags):
        error.raise_error(error.ERR_PROTOUSAGE, "unexpected reply from daemon")
    if out.flags[0]:
        return 0, None
    state: int = out.state[0]
    if not out.count[0]:
        return state, []
    return state, out.buf[:out.sizes[0] - 1].decode("utf-8", "replace").split("\x00")


def decode_status(payload: bytes) -> Status:
    """The getstatus reply as ``(state, [{'nodeid': str, 'address': str}, ...])``.

    The caller owns the returned list and dicts (they are never shared between calls).
    """
    global _status_last
    if type(payload) is not bytes:
        payload = bytes(payload)
    last = _status_last
    if payload == last[0]:
        state, kept = last[1], last[2]
        if kept.__class__ is tuple:
            return state, list(map(dict.copy, kept))
        fields = iter(kept)
        nodes = [{"nodeid": n, "address": a} for n, a in zip(fields, fields)]
        _status_last = (payload, state, tuple(map(dict.copy, nodes)))
        return state, nodes
    state, fields = _status_fields(payload)
    if fields is None:
        return _decode_status_generic(payload)
    if len(payload) <= _STATUS_KEEP_MAX:
        _status_last = (payload, state, fields)
    if not fields:
        return state, []
    it = iter(fields)
    return state, [{"nodeid": n, "address": a} for n, a in zip(it, it)]


def _decode_status_generic(payload: bytes) -> Status:
    """Status replies with non-binary node ids or list addresses (rare; W-22, W-25)."""
    from .value import Value

    term = decode(payload)
    if not (isinstance(term, tuple) and len(term) == 2 and _is_int(term[0])
            and isinstance(term[1], list)):
        error.raise_error(error.ERR_PROTOUSAGE, "unexpected reply from daemon")
    result: List[Dict[str, str]] = []
    for entry in term[1]:
        if not (isinstance(entry, tuple) and len(entry) == 2):
            error.raise_error(error.ERR_PROTOUSAGE, "unexpected reply from daemon")
        nodeid, addr = _node_id_term(entry[0]), entry[1]
        if isinstance(nodeid, bytes):
            nid = nodeid.split(b"\x00", 1)[0].decode("utf-8", "replace")
        else:
            try:
                nid = str(Value.from_term(nodeid))
            except error.Error:
                error.raise_error(error.ERR_PROTOUSAGE, "unexpected reply from daemon")
        result.append({"nodeid": nid, "address": address_text(addr)})
    return term[0], result


def _node_id_term(nodeid: Term) -> Term:
    """A node id as received: an atom stands for the binary of its name (as libconfd
    reads it)."""
    if isinstance(nodeid, Atom):
        return str(nodeid).encode("utf-8")
    return nodeid


def address_text(addr: Term) -> str:
    """Text of an address term (W-22, W-23); anything else → ``ERR_PROTOUSAGE``."""
    kind, text = address_parts(addr)
    return text


def address_parts(addr: Term) -> Tuple[int, str]:
    """(AF_INET | AF_INET6 | AF_STRING, text) of an address term."""
    if isinstance(addr, tuple) and len(addr) == 4 and all(
            isinstance(x, int) and 0 <= x <= 255 for x in addr):
        return AF_INET, "%d.%d.%d.%d" % addr
    if isinstance(addr, tuple) and len(addr) == 8 and all(
            isinstance(x, int) and 0 <= x <= 0xFFFF for x in addr):
        return AF_INET6, ipv6_text(b"".join(x.to_bytes(2, "big") for x in addr))
    if isinstance(addr, bytes):
        return AF_STRING, addr.decode("utf-8", "replace")
    if isinstance(addr, list) and all(isinstance(x, int) and 0 <= x <= 255 for x in addr):
        return AF_STRING, bytes(addr).decode("utf-8", "replace")
    error.raise_error(error.ERR_PROTOUSAGE, "unexpected address in message from daemon")


def ipv6_text(packed: bytes) -> str:
    """IPv6 text as inet_ntop(AF_INET6) writes it, computed by the C core."""
    out = ffi.new("unsigned char[]", 64)
    n = ffi.new("size_t *")
    error.check(lib.chd_ipv6_text(packed, out, 64, n), "ipv6")
    return ffi.buffer(out, n[0])[:].decode("ascii")


def address_term(text: str) -> Tuple[int, ...]:
    """The address term for an IP literal (4-tuple or 8-tuple), as the emulator sends it."""
    parsed = parse_ip(text)
    if parsed is None:
        raise ValueError("not an IP address: %r" % (text,))
    af, raw = parsed
    if af == AF_INET:
        return tuple(raw)
    return tuple((raw[i] << 8) | raw[i + 1] for i in range(0, 16, 2))


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
    term = decode(payload)
    if not isinstance(term, tuple) or not term or not _is_int(term[0]):
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


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_address(addr: Term) -> bool:
    try:
        address_parts(addr)
    except error.Error:
        return False
    return True


OK_FRAME = encode_frame(Atom("ok"))


def encode_error(code: int) -> bytes:
    """The framed ``{error, Code}`` reply."""
    return encode_frame((Atom("error"), code))


def encode_status(state: int, nodes: Any) -> bytes:
    """The framed status reply; ``nodes`` holds (node-id term, address term) pairs."""
    return encode_frame((state, [(nid, addr) for nid, addr in nodes]))


# ---------------------------------------------------------------- event notifications

# The client's atoms go out as libconfd 8.2.5 sends them (SMALL_ATOM_UTF8, observed).
HA_SYNCED = SmallAtom("ha_synced")
HA_SYNCED_FRAME = encode_frame(HA_SYNCED)
_UNDEFINED = SmallAtom("undefined")


def encode_subscription(mask: int) -> bytes:
    """The framed 5-tuple subscription term (W-30)."""
    return encode_frame((mask, 0, 0, _UNDEFINED, 0))


def decode_subscription(payload: bytes) -> int:
    """The mask of a 4- or 5-tuple subscription term (W-30); other shapes → BadOrder."""
    term = decode(payload)
    if isinstance(term, tuple) and len(term) in (4, 5) and _is_int(term[0]) and term[0] >= 0:
        mask: int = term[0]
        return mask
    raise BadOrder("not a subscription term")


def encode_event(ha_type: int, data: Term) -> bytes:
    """The framed HA event ``{64, {Type, Data}}``."""
    return encode_frame((NOTIF_HA_INFO, (ha_type, data)))


# Client side: what the daemon sends on an event socket (W-22, W-24, W-30, W-31).

HA_INFO_NOPRIMARY = 1
HA_INFO_SECONDARY_DIED = 2
HA_INFO_SECONDARY_ARRIVED = 3
HA_INFO_SECONDARY_INITIALIZED = 4
HA_INFO_IS_PRIMARY = 5
HA_INFO_IS_NONE = 6
HA_INFO_BESECONDARY_RESULT = 7
_HA_INT_DATA = (HA_INFO_NOPRIMARY, HA_INFO_SECONDARY_INITIALIZED, HA_INFO_BESECONDARY_RESULT)
_HA_NODE_DATA = (HA_INFO_SECONDARY_DIED, HA_INFO_SECONDARY_ARRIVED)


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
    decode_reply(payload)


def decode_notification(payload: bytes) -> Notification:
    """Decode one frame read from an event socket.

    ``{64, {Type, Data}}`` is an HA event; the client is liberal where the spec says so
    (W-31): for types 5 and 6, and for unknown types, everything after ``Type`` is ignored
    (so ``{Type}`` is fine too). A frame whose first element is another integer is a notification of another
    kind, returned with its type only. Anything else raises ``ERR_PROTOUSAGE``.
    """
    term = decode(payload)
    if not isinstance(term, tuple) or not term or not _is_int(term[0]):
        _bad_notification("not a notification tuple")
    if term[0] != NOTIF_HA_INFO:
        return Notification(term[0])
    if len(term) != 2 or not isinstance(term[1], tuple) or not term[1] or not _is_int(term[1][0]):
        _bad_notification("HA event is not {64, {Type, Data}}")
    body = term[1]
    ha_type = body[0]
    if ha_type in _HA_INT_DATA:
        if len(body) != 2 or not _is_int(body[1]):
            _bad_notification("HA event %d needs an integer" % ha_type)
        return Notification(NOTIF_HA_INFO, ha_type, body[1])
    if ha_type in _HA_NODE_DATA:
        if len(body) != 2 or not isinstance(body[1], tuple) or len(body[1]) != 2:
            _bad_notification("HA event %d needs {NodeId, Addr}" % ha_type)
        return Notification(NOTIF_HA_INFO, ha_type, _ha_node(*body[1]))
    # IS_PRIMARY, IS_NONE and types this client does not know: whatever follows the type
    # is ignored (W-31).
    return Notification(NOTIF_HA_INFO, ha_type)


def _ha_node(nodeid: Term, addr: Term) -> HaNode:
    from .value import Value

    try:
        value = Value.from_term(_node_id_term(nodeid))
    except error.Error:
        _bad_notification("unrecognised node id")
    af, text = address_parts(addr)
    return HaNode(value, af, text)
