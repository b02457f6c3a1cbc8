"""The join of the emulator's peer protocol, both sides (docs/peer-protocol.md).

* :func:`join` -- the joining side (S): connect, prove the token, check the primary's name,
  be admitted, receive the initial sync. The whole attempt has ConfD's deadline: 10 s, or
  3 tick timeouts if that is longer.
* :func:`serve_join` -- the listening side (P), a primary or a relay: the same steps; the
  admission itself (a duplicate id check, the roster, the sync) is the node's, through
  :class:`PrimaryView`.

The token never crosses the wire: each side proves it with an HMAC-SHA256 over both nonces.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import logging
import secrets
import socket
from typing import Callable, NamedTuple, Optional, Protocol, Union

from .. import _address, _codec, error
from .._terms import Atom, Term
from .link import PeerClosed, PeerConn, Policy, is_int, is_tagged, normalize_ip

log = logging.getLogger("confd_ha.emulator")

__all__ = ["join", "serve_join", "JoinOk", "JoinParams", "Joined", "PrimaryView", "PeerConn",
           "PeerClosed", "Policy", "node_text", "same_term", "normalize_ip"]

PEER_VSN = 2
NONCE_LEN = 32
PRIMARY_LABEL = b"confd_ha-peer-v1:primary"
SECONDARY_LABEL = b"confd_ha-peer-v1:secondary"

HA_HELLO = Atom("ha_hello")
HA_CHALLENGE = Atom("ha_challenge")
HA_AUTH = Atom("ha_auth")
HA_REJECT = Atom("ha_reject")
HA_SYNC = Atom("ha_sync")
HA_SYNCED = Atom("ha_synced")
COPY = Atom("copy")
NOCOPY = Atom("nocopy")

# The join errors a primary may send in ha_reject.
_REJECT_CODES = (error.ERR_HA_BADFXS, error.ERR_HA_BADTOKEN, error.ERR_HA_BADNAME,
                 error.ERR_HA_BADVSN, error.ERR_HA_BADCONFIG, error.ERR_HA_CLOSED)

LONG_ID = 250           # bytes: ConfD 8.2.5 cannot join with ids this long (see join())


def _key(token: bytes) -> bytes:
    # HMAC pads a short key with zero bytes and hashes a long one: keyed by the token itself,
    # "tok" and "tok\0" (or a long token and its digest) would prove each other. ConfD tells
    # them apart, so the key is the token's own digest.
    return hashlib.sha256(token).digest()


def proof_primary(token: bytes, nonce_s: bytes, nonce_p: bytes) -> bytes:
    return hmac.new(_key(token), PRIMARY_LABEL + nonce_s + nonce_p, hashlib.sha256).digest()


def proof_secondary(token: bytes, nonce_p: bytes, nonce_s: bytes) -> bytes:
    return hmac.new(_key(token), SECONDARY_LABEL + nonce_p + nonce_s, hashlib.sha256).digest()


def same_term(a: Term, b: Term) -> bool:
    """Exact term equality (W-25): ``5`` and ``5.0``, or an atom and a binary, differ."""
    kind = type(a)
    if kind is type(b) and (kind is bytes or kind is Atom):
        return bool(a == b)  # the common node ids: equal exactly when their encodings are
    try:
        return _codec.encode(a) == _codec.encode(b)
    except (TypeError, ValueError, error.Error):
        return False


def node_text(nodeid: Term) -> str:
    """A node-id term for logs and decisions."""
    if isinstance(nodeid, bytes):
        text = nodeid.decode("utf-8", "replace")
        return repr(text if len(text) <= 40 else text[:30] + "...(%d)" % len(text))
    return repr(nodeid)


# ================================================================ join, joining side (S)


class JoinOk(NamedTuple):
    conn: PeerConn
    copy: bool
    txid: str
    snapshot: Optional[bytes]


class JoinParams(NamedTuple):
    me: object            # SNodeId term
    pid: object           # ExpectedPNodeId term
    token: bytes
    ha_vsn: int
    fxs_fp: bytes
    ha_config_fp: bytes
    txid: str
    port: int             # the joiner's OWN HA port (B-12)
    source_ip: str        # the joiner's HA address (bound when specific, B-12); "" never
    tick: float
    max_frame: int
    label: str
    deadline: float = 10.0   # s: the whole join (NodeConfig.join_deadline)

    def __repr__(self) -> str:  # the token is a secret: never in a repr
        return "JoinParams(me=%r, pid=%r, label=%r)" % (self.me, self.pid, self.label)


async def resolve(addr: Term) -> Optional[str]:
    """The IP text of a primary address term (W-22: strings are resolved as host names)."""
    try:
        kind, text = _address.address_parts(addr)
    except error.Error:
        return None
    if kind != _address.AF_STRING:
        return text
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(text, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return None
    # IPv4 first, as the Python client tries IPv4 before IPv6 for literals.
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    return str(infos[0][4][0]) if infos else None


def _long(nodeid: Term) -> bool:
    return isinstance(nodeid, bytes) and len(nodeid) >= LONG_ID


async def join(params: JoinParams, addr: Term, policy: Policy) -> Union[JoinOk, int]:
    """Join the node at ``addr``. Returns :class:`JoinOk` (the connection is then S's link
    to its primary, sending ticks already) or an error code."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + params.deadline

    def remaining() -> float:
        return deadline - loop.time()

    try:
        ip = await asyncio.wait_for(resolve(addr), remaining())
    except asyncio.TimeoutError:
        ip = None
    if ip is None:
        return error.ERR_HA_CONNECT
    ip = normalize_ip(ip)
    if policy.held(ip):
        # A partitioned peer (or any peer, from a frozen node) is unreachable: the connect
        # times out.
        await asyncio.sleep(max(remaining(), 0))
        return error.ERR_HA_CONNECT
    local = None
    src = params.source_ip
    if src and not ipaddress.ip_address(src).is_unspecified and \
            ipaddress.ip_address(src).version == ipaddress.ip_address(ip).version:
        local = (src, 0)
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(ip, params.port, local_addr=local), max(remaining(), 0))
    except (OSError, asyncio.TimeoutError):
        return error.ERR_HA_CONNECT
    if not policy.alive():  # the node stopped while connecting
        writer.transport.abort()
        return error.ERR_HA_CONNECT
    conn = PeerConn(reader, writer, policy=policy, tick=params.tick,
                    max_frame=params.max_frame, label=params.label)
    conn.start_ticks()
    try:
        result: Union[JoinOk, int]
        if _long(params.me):
            # ConfD 8.2.5 cannot send an own id of 250 bytes or more: the primary drops the
            # connection ("initial sync failed").
            result = error.ERR_HA_CLOSED
        elif _long(params.pid):
            # ... and with a primary id that long its token proof fails.
            result = error.ERR_HA_BADTOKEN
        else:
            result = await _join_steps(conn, params, remaining)
    except (PeerClosed, asyncio.TimeoutError):
        result = error.ERR_HA_CLOSED
    except BaseException:
        conn.close()
        raise
    if not isinstance(result, JoinOk):
        conn.close()
    return result


async def _join_steps(conn: PeerConn, p: JoinParams,
                      remaining: Callable[[], float]) -> Union[JoinOk, int]:
    nonce_s = secrets.token_bytes(NONCE_LEN)
    conn.send((HA_HELLO, PEER_VSN, p.ha_vsn, p.me, p.pid, nonce_s))
    term = await conn.recv(remaining())
    code = _reject_code(term)
    if code is not None:
        return code
    if not (is_tagged(term, HA_CHALLENGE, 4) and _is_nonce(term[2]) and isinstance(term[3], bytes)):
        log.warning("%s: unexpected reply to hello, closing", p.label)
        return error.ERR_HA_CLOSED
    _, pname, nonce_p, proof_p = term
    if not hmac.compare_digest(proof_p, proof_primary(p.token, nonce_s, nonce_p)):
        conn.send((HA_REJECT, error.ERR_HA_BADTOKEN))
        return error.ERR_HA_BADTOKEN
    if not same_term(pname, p.pid):
        conn.send((HA_REJECT, error.ERR_HA_BADNAME))
        return error.ERR_HA_BADNAME
    conn.send((HA_AUTH, proof_secondary(p.token, nonce_p, nonce_s), p.fxs_fp, p.ha_config_fp,
               p.txid.encode("utf-8")))
    term = await conn.recv(remaining())
    code = _reject_code(term)
    if code is not None:
        return code
    if is_tagged(term, HA_SYNC, 3) and term[1] == NOCOPY and isinstance(term[2], bytes):
        txid = _txid(term[2])
        if txid is not None:
            return JoinOk(conn, False, txid, None)
    elif is_tagged(term, HA_SYNC, 4) and term[1] == COPY and isinstance(term[2], bytes) \
            and isinstance(term[3], bytes):
        txid = _txid(term[2])
        if txid is not None:
            return JoinOk(conn, True, txid, term[3])
    log.warning("%s: unexpected reply to auth, closing", p.label)
    return error.ERR_HA_CLOSED


# ================================================================ join, listening side (P)


class PrimaryView(Protocol):
    """What :func:`serve_join` asks its node."""

    @property
    def token(self) -> bytes:
        """The node's token now (a secret: never logged)."""

    @property
    def name(self) -> Term:
        """The node's own node-id term."""

    @property
    def ha_vsn(self) -> int:
        """The HA version a joining node must have."""

    @property
    def fxs_fp(self) -> bytes:
        """The schema fingerprint a joining node must have."""

    @property
    def ha_config_fp(self) -> bytes:
        """The HA configuration fingerprint a joining node must have."""

    def serving(self) -> bool:
        """Still PRIMARY or RELAY (listening)."""

    async def admit(self, conn: PeerConn, nodeid: Term, their_txid: str) -> Union[bool, int, None]:
        """Admit ``nodeid``: True once the node has listed it, sent it the ``ha_sync`` term
        and forwards transactions to ``conn``; an error code to reject it with (29: a
        duplicate id); None to drop it silently."""


class Joined(NamedTuple):
    nodeid: object
    by_copy: int


async def serve_join(conn: PeerConn, view: PrimaryView, seconds: float) -> Optional[Joined]:
    """The listening side; :class:`Joined` once the node admitted the joining node (it then
    owns the connection), else None (the connection is then closed; a rejected secondary
    produces only a log line)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds

    def remaining() -> float:
        return deadline - loop.time()

    try:
        return await _serve_steps(conn, view, remaining)
    except PeerClosed:
        log.info("%s: joining node went away during the join", conn.label)
    except asyncio.TimeoutError:
        log.info("%s: join not completed in time, closing", conn.label)
    conn.close()
    return None


async def _serve_steps(conn: PeerConn, view: PrimaryView,
                       remaining: Callable[[], float]) -> Optional[Joined]:
    term = await conn.recv(remaining())
    if not (is_tagged(term, HA_HELLO, 6) and is_int(term[1]) and is_int(term[2])
            and _is_nonce(term[5])):
        log.warning("%s: bad hello from joining node, closing", conn.label)
        conn.close()
        return None
    _, peer_vsn, ha_vsn, snodeid, _expected, nonce_s = term
    conn.nodeid = snodeid
    if not view.serving():
        conn.close()
        return None
    if peer_vsn != PEER_VSN or ha_vsn != view.ha_vsn:
        _reject(conn, error.ERR_HA_BADVSN, "peer protocol %r / HA version %r" % (peer_vsn, ha_vsn))
        return None
    token = view.token  # the token when this handshake started (B-02)
    nonce_p = secrets.token_bytes(NONCE_LEN)
    conn.send((HA_CHALLENGE, view.name, nonce_p, proof_primary(token, nonce_s, nonce_p)))
    term = await conn.recv(remaining())
    code = _reject_code(term)
    if code is not None:
        log.info("%s: joining node %s rejected us: error %d", conn.label, node_text(snodeid), code)
        conn.close()
        return None
    if not (is_tagged(term, HA_AUTH, 5) and all(isinstance(x, bytes) for x in term[1:])):
        log.warning("%s: bad auth from joining node, closing", conn.label)
        conn.close()
        return None
    _, proof_s, fxs_fp, cfg_fp, their_txid = term
    if not hmac.compare_digest(proof_s, proof_secondary(token, nonce_p, nonce_s)):
        _reject(conn, error.ERR_HA_BADTOKEN, "token mismatch")
        return None
    if fxs_fp != view.fxs_fp:
        _reject(conn, error.ERR_HA_BADFXS, "schema fingerprint differs")
        return None
    if cfg_fp != view.ha_config_fp:
        _reject(conn, error.ERR_HA_BADCONFIG, "HA configuration fingerprint differs")
        return None
    txid = _txid(their_txid)
    if txid is None or not view.serving():
        conn.close()
        return None
    admitted = await asyncio.wait_for(view.admit(conn, snodeid, txid), max(remaining(), 0.001))
    if admitted is not True:
        if is_int(admitted):
            _reject(conn, admitted, "not admitted")
            return None
        conn.close()
        return None
    # From here on the node's downstream link reads the connection (``ha_synced`` included).
    return Joined(snodeid, 0)


def _reject(conn: PeerConn, code: int, why: str) -> None:
    log.info("%s: join rejected with error %d: %s", conn.label, code, why)
    conn.send((HA_REJECT, code))
    conn.close()
    return None


# ================================================================ term shapes


def _is_nonce(x: Term) -> bool:
    return isinstance(x, bytes) and len(x) == NONCE_LEN


def _reject_code(term: Term) -> Optional[int]:
    if is_tagged(term, Atom("ha_bye"), 2):
        return error.ERR_HA_CLOSED  # the listener gave up on us
    if is_tagged(term, HA_REJECT, 2) and is_int(term[1]):
        code = term[1]
        # Unknown codes from a peer still fail the join, as "initial sync failed".
        return code if code in _REJECT_CODES else error.ERR_HA_CLOSED
    return None


def _txid(raw: bytes) -> Optional[str]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text if 0 < len(text) <= 1024 else None


def txid_text(raw: bytes) -> Optional[str]:
    return _txid(raw)
