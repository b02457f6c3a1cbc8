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
from typing import NamedTuple, Optional

from .. import _protocol, error
from .._terms import Atom
from .link import (
    HA_CLOSED, HA_NOTICK, PeerClosed, PeerConn, Policy, is_int, is_tagged, normalize_ip,
)

log = logging.getLogger("confd_ha.emulator")

__all__ = ["join", "serve_join", "JoinOk", "JoinParams", "Joined", "PrimaryView", "PeerConn",
           "PeerClosed", "Policy", "HA_CLOSED", "HA_NOTICK", "node_text",
           "same_term", "normalize_ip"]

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

# Join errors.
HA_CONNECT = error.ERR_HA_CONNECT        # 25
HA_BADFXS = error.ERR_HA_BADFXS          # 27
HA_BADTOKEN = error.ERR_HA_BADTOKEN      # 28
HA_BADNAME = error.ERR_HA_BADNAME        # 29
HA_BADVSN = error.ERR_HA_BADVSN          # 52
HA_BADCONFIG = error.ERR_HA_BADCONFIG    # 69
_REJECT_CODES = (HA_BADFXS, HA_BADTOKEN, HA_BADNAME, HA_BADVSN, HA_BADCONFIG, HA_CLOSED)

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


def same_term(a, b) -> bool:
    """Exact term equality (W-25): ``5`` and ``5.0``, or an atom and a binary, differ."""
    kind = type(a)
    if kind is type(b) and (kind is bytes or kind is Atom):
        return a == b  # the common node ids: equal exactly when their encodings are
    try:
        return _protocol.encode(a) == _protocol.encode(b)
    except (TypeError, ValueError, error.Error):
        return False


def node_text(nodeid) -> str:
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


async def resolve(addr) -> Optional[str]:
    """The IP text of a primary address term (W-22: strings are resolved as host names)."""
    try:
        kind, text = _protocol.address_parts(addr)
    except error.Error:
        return None
    if kind != _protocol.AF_STRING:
        return text
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(text, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return None
    # IPv4 first, as the Python client tries IPv4 before IPv6 for literals.
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    return infos[0][4][0] if infos else None


def _long(nodeid) -> bool:
    return isinstance(nodeid, bytes) and len(nodeid) >= LONG_ID


async def join(params: JoinParams, addr, policy: Policy):
    """Join the node at ``addr``. Returns :class:`JoinOk` (the connection is then S's link
    to its primary, sending ticks already) or an error code."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + params.deadline

    def remaining():
        return deadline - loop.time()

    try:
        ip = await asyncio.wait_for(resolve(addr), remaining())
    except asyncio.TimeoutError:
        ip = None
    if ip is None:
        return HA_CONNECT
    ip = normalize_ip(ip)
    if policy.held(ip):
        # A partitioned peer (or any peer, from a frozen node) is unreachable: the connect
        # times out.
        await asyncio.sleep(max(remaining(), 0))
        return HA_CONNECT
    local = None
    src = params.source_ip
    if src and not ipaddress.ip_address(src).is_unspecified and \
            ipaddress.ip_address(src).version == ipaddress.ip_address(ip).version:
        local = (src, 0)
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(ip, params.port, local_addr=local), max(remaining(), 0))
    except (OSError, asyncio.TimeoutError):
        return HA_CONNECT
    if not policy.alive():  # the node stopped while connecting
        writer.transport.abort()
        return HA_CONNECT
    conn = PeerConn(reader, writer, policy=policy, tick=params.tick,
                    max_frame=params.max_frame, label=params.label)
    conn.start_ticks()
    try:
        if _long(params.me):
            # ConfD 8.2.5 cannot send an own id of 250 bytes or more: the primary drops the
            # connection ("initial sync failed").
            result = HA_CLOSED
        elif _long(params.pid):
            # ... and with a primary id that long its token proof fails.
            result = HA_BADTOKEN
        else:
            result = await _join_steps(conn, params, remaining)
    except (PeerClosed, asyncio.TimeoutError):
        result = HA_CLOSED
    except BaseException:
        conn.close()
        raise
    if not isinstance(result, JoinOk):
        conn.close()
    return result


async def _join_steps(conn: PeerConn, p: JoinParams, remaining):
    nonce_s = secrets.token_bytes(NONCE_LEN)
    conn.send((HA_HELLO, PEER_VSN, p.ha_vsn, p.me, p.pid, nonce_s))
    term = await conn.recv(remaining())
    code = _reject_code(term)
    if code is not None:
        return code
    if not (is_tagged(term, HA_CHALLENGE, 4) and _is_nonce(term[2]) and isinstance(term[3], bytes)):
        log.warning("%s: unexpected reply to hello, closing", p.label)
        return HA_CLOSED
    _, pname, nonce_p, proof_p = term
    if not hmac.compare_digest(proof_p, proof_primary(p.token, nonce_s, nonce_p)):
        conn.send((HA_REJECT, HA_BADTOKEN))
        return HA_BADTOKEN
    if not same_term(pname, p.pid):
        conn.send((HA_REJECT, HA_BADNAME))
        return HA_BADNAME
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
    return HA_CLOSED


# ================================================================ join, listening side (P)


class PrimaryView:
    """What :func:`serve_join` asks its node (the node implements this)."""

    token: bytes = b""
    name = None
    ha_vsn: int = 0
    fxs_fp: bytes = b""
    ha_config_fp: bytes = b""

    def serving(self) -> bool:
        """Still PRIMARY or RELAY (listening)."""
        return False

    async def admit(self, conn: PeerConn, nodeid, their_txid: str):
        """Admit ``nodeid``: True once the node has listed it, sent it the ``ha_sync`` term
        and forwards transactions to ``conn``; an error code to reject it with (29: a
        duplicate id); None to drop it silently."""
        raise NotImplementedError


class Joined(NamedTuple):
    nodeid: object
    by_copy: int


async def serve_join(conn: PeerConn, view: PrimaryView, seconds: float):
    """The listening side; :class:`Joined` once the node admitted the joining node (it then
    owns the connection), else None (the connection is then closed; a rejected secondary
    produces only a log line)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds

    def remaining():
        return deadline - loop.time()

    try:
        return await _serve_steps(conn, view, remaining)
    except PeerClosed:
        log.info("%s: joining node went away during the join", conn.label)
    except asyncio.TimeoutError:
        log.info("%s: join not completed in time, closing", conn.label)
    conn.close()
    return None


async def _serve_steps(conn: PeerConn, view: PrimaryView, remaining):
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
        return _reject(conn, HA_BADVSN, "peer protocol %r / HA version %r" % (peer_vsn, ha_vsn))
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
        return _reject(conn, HA_BADTOKEN, "token mismatch")
    if fxs_fp != view.fxs_fp:
        return _reject(conn, HA_BADFXS, "schema fingerprint differs")
    if cfg_fp != view.ha_config_fp:
        return _reject(conn, HA_BADCONFIG, "HA configuration fingerprint differs")
    txid = _txid(their_txid)
    if txid is None or not view.serving():
        conn.close()
        return None
    admitted = await asyncio.wait_for(view.admit(conn, snodeid, txid), max(remaining(), 0.001))
    if admitted is not True:
        if is_int(admitted):
            return _reject(conn, admitted, "not admitted")
        conn.close()
        return None
    # From here on the node's downstream link reads the connection (``ha_synced`` included).
    return Joined(snodeid, 0)


def _reject(conn: PeerConn, code: int, why: str):
    log.info("%s: join rejected with error %d: %s", conn.label, code, why)
    conn.send((HA_REJECT, code))
    conn.close()
    return None


# ================================================================ term shapes


def _is_nonce(x) -> bool:
    return isinstance(x, bytes) and len(x) == NONCE_LEN


def _reject_code(term) -> Optional[int]:
    if is_tagged(term, Atom("ha_bye"), 2):
        return HA_CLOSED  # the listener gave up on us
    if is_tagged(term, HA_REJECT, 2) and is_int(term[1]):
        code = term[1]
        # Unknown codes from a peer still fail the join, as "initial sync failed".
        return code if code in _REJECT_CODES else HA_CLOSED
    return None


def _txid(raw: bytes) -> Optional[str]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text if 0 < len(text) <= 1024 else None


def txid_text(raw: bytes) -> Optional[str]:
    return _txid(raw)
