"""The emulator's own inter-node protocol (spec ha-behaviour §12, B-32; docs/peer-protocol.md).

Three parts:

* :class:`PeerConn` -- one inter-node TCP connection carrying framed canonical ETF terms
  (``_protocol.encode_frame`` / ``_protocol.decode``), with keepalive ticks, silence detection
  (3 × own tick timeout, B-20), per-transaction acknowledgement tracking, and the *hold* that
  implements freeze and partition (nothing is read or written while held, not even a close).
* :func:`join` -- the joining side (S) of the join sequence, steps 1-5, checks in the order of
  B-13, under the deadline of B-16.
* :func:`serve_join` -- the listening side (P) of steps 2-6.

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

log = logging.getLogger("confd_ha.emulator")

PEER_VSN = 1
NONCE_LEN = 32
PRIMARY_LABEL = b"confd_ha-peer-v1:primary"
SECONDARY_LABEL = b"confd_ha-peer-v1:secondary"

HA_HELLO = Atom("ha_hello")
HA_CHALLENGE = Atom("ha_challenge")
HA_AUTH = Atom("ha_auth")
HA_REJECT = Atom("ha_reject")
HA_SYNC = Atom("ha_sync")
HA_SYNCED = Atom("ha_synced")
HA_TICK = Atom("ha_tick")
HA_TRANS = Atom("ha_trans")
HA_ACK = Atom("ha_ack")
HA_BYE = Atom("ha_bye")
COPY = Atom("copy")
NOCOPY = Atom("nocopy")

# Join errors (wire-protocol §9.1).
HA_CONNECT = error.ERR_HA_CONNECT        # 25
HA_CLOSED = error.ERR_HA_CLOSED          # 26
HA_BADFXS = error.ERR_HA_BADFXS          # 27
HA_BADTOKEN = error.ERR_HA_BADTOKEN      # 28
HA_BADNAME = error.ERR_HA_BADNAME        # 29
HA_NOTICK = error.ERR_HA_NOTICK          # 31
HA_BADVSN = error.ERR_HA_BADVSN          # 52
HA_BADCONFIG = error.ERR_HA_BADCONFIG    # 69
_REJECT_CODES = (HA_BADFXS, HA_BADTOKEN, HA_BADNAME, HA_BADVSN, HA_BADCONFIG)

# What may wait for a connection's consumer (e.g. while the node's HA engine is blocked, B-27);
# more is a misbehaving peer and costs it the connection. Counted in frames and in payload
# bytes: frames may be up to max_frame (16 MiB) each.
INBOX_LIMIT = 10_000
INBOX_FRAMES_OF_BYTES = 4     # × max_frame


def proof_primary(token: bytes, nonce_s: bytes, nonce_p: bytes) -> bytes:
    return hmac.new(token, PRIMARY_LABEL + nonce_s + nonce_p, hashlib.sha256).digest()


def proof_secondary(token: bytes, nonce_p: bytes, nonce_s: bytes) -> bytes:
    return hmac.new(token, SECONDARY_LABEL + nonce_p + nonce_s, hashlib.sha256).digest()


def same_term(a, b) -> bool:
    """Exact term equality (W-25): ``5`` and ``5.0``, or an atom and a binary, differ."""
    kind = type(a)
    if kind is type(b) and (kind is bytes or kind is Atom):
        return a == b  # the common node ids: equal exactly when their encodings are
    try:
        return _protocol.encode(a) == _protocol.encode(b)
    except (TypeError, ValueError, error.Error):
        return False


def normalize_ip(text: str) -> str:
    """Canonical text of an IP (scope dropped, IPv4-mapped IPv6 as IPv4)."""
    text = text.split("%", 1)[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return text
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.compressed


def node_text(nodeid) -> str:
    """A node-id term for logs and decisions."""
    if isinstance(nodeid, bytes):
        return repr(nodeid.decode("utf-8", "replace"))
    return repr(nodeid)


class PeerClosed(Exception):
    """The connection is gone; ``reason`` is HA_CLOSED (26) or HA_NOTICK (31)."""

    def __init__(self, reason: int):
        super().__init__(reason)
        self.reason = reason


class Policy:
    """What a :class:`PeerConn` asks its node (the node implements this)."""

    frozen = False

    def held(self, peer_ip: str) -> bool:
        """True while traffic with ``peer_ip`` must not flow (freeze or partition)."""
        return False

    def register(self, conn: "PeerConn") -> None:
        pass

    def unregister(self, conn: "PeerConn") -> None:
        pass


class PeerConn:
    """One inter-node connection: framed terms, ticks, silence detection, ack tracking, hold.

    Received terms queue up in order and are taken with :meth:`recv`, which raises
    :class:`PeerClosed` after the last one once the connection has died. A connection closed
    locally with :meth:`close` never reports anything.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                 policy: Policy, tick: float, max_frame: int, label: str):
        loop = asyncio.get_running_loop()
        self._loop = loop
        self.reader = reader
        self.writer = writer
        self.policy = policy
        self.tick = tick
        self.max_frame = max_frame
        self.label = label
        peer = writer.get_extra_info("peername")
        self.peer_ip = normalize_ip(peer[0]) if isinstance(peer, tuple) else ""
        self.closed = False
        self.reason: Optional[int] = None
        self.torn = False             # the stream ended inside a frame (B-14)
        self.nodeid = None            # the joining node's id, once its hello was read (B-10)
        self._inbox: asyncio.Queue = asyncio.Queue()   # (term or PeerClosed, payload bytes)
        self._inbox_bytes = 0
        self._flow = asyncio.Event()
        self._flow.set()
        self._held = False
        self._held_out: list = []
        self._close_on_release = False
        self._last_rx = loop.time()
        self._last_tick = loop.time()
        self._seq = 0
        self._acks: dict = {}         # seq -> (sent at, future)
        self._ticker = None
        policy.register(self)
        self.refresh()
        self._reader_task = asyncio.ensure_future(self._read_loop())

    # ------------------------------------------------------------ hold (freeze, partition)

    def refresh(self) -> None:
        """Re-evaluate the hold after a freeze/thaw/partition/heal of the node."""
        held = self.policy.held(self.peer_ip)
        if held == self._held:
            return
        self._held = held
        if held:
            self._flow.clear()
            return
        # Released: everything held back goes out now, and the silence timer restarts so
        # that the time spent held does not count as silence of the peer.
        now = self._loop.time()
        self._last_rx = self._last_tick = now
        for seq, (_, fut) in list(self._acks.items()):
            self._acks[seq] = (now, fut)
        if self._close_on_release:
            self._write_out()
            self._really_close()
            return
        self._write_out()
        self._flow.set()

    def _write_out(self) -> None:
        frames, self._held_out = self._held_out, []
        for frame in frames:
            self._write(frame)

    # ------------------------------------------------------------ sending

    def send(self, term) -> None:
        """Queue one term (dropped once closed; held back while held, ticks excepted)."""
        if self.closed:
            return
        frame = _protocol.encode_frame(term)
        if self._held:
            if not is_tick(term):
                self._held_out.append(frame)
            return
        self._write(frame)

    def _write(self, frame: bytes) -> None:
        try:
            self.writer.write(frame)
        except (ConnectionError, RuntimeError, OSError):
            pass  # the reader sees the failure as a close

    def replicate(self, txid: str, changes: bytes) -> "asyncio.Future":
        """Send ``{ha_trans, Seq, TxId, Changes}``; the future becomes True on its ack and
        False if the connection dies first."""
        fut = self._loop.create_future()
        if self.closed:
            fut.set_result(False)
            return fut
        self._seq += 1
        self._acks[self._seq] = (self._loop.time(), fut)
        self.send((HA_TRANS, self._seq, txid.encode("utf-8"), changes))
        return fut

    def acked(self, seq) -> None:
        entry = self._acks.pop(seq, None)
        if entry is not None and not entry[1].done():
            entry[1].set_result(True)

    @property
    def unacked(self) -> int:
        return len(self._acks)

    # ------------------------------------------------------------ receiving

    async def recv(self, timeout: Optional[float] = None):
        """The next received term; :class:`PeerClosed` once dead, ``asyncio.TimeoutError``
        after ``timeout`` seconds."""
        if timeout is not None:
            if timeout <= 0:
                raise asyncio.TimeoutError
            item, size = await asyncio.wait_for(self._inbox.get(), timeout)
        else:
            item, size = await self._inbox.get()
        self._inbox_bytes -= size
        if isinstance(item, PeerClosed):
            self._inbox.put_nowait((item, 0))  # every later recv sees the close too
            raise item
        return item

    async def _read_loop(self) -> None:
        reader = self.reader
        try:
            while True:
                await self._flow.wait()
                header = await reader.readexactly(4)
                size = _protocol.frame_size(header, self.max_frame)
                try:
                    payload = await reader.readexactly(size) if size else b""
                except asyncio.IncompleteReadError:
                    self.torn = True
                    raise
                term = _protocol.decode(payload)
                # A frame that was in flight when the hold began is delivered on release.
                await self._flow.wait()
                self._last_rx = self._loop.time()
                # Ticks and acknowledgements are handled here, not by the consumer, so that
                # they keep working while the node's HA engine is blocked (B-20, B-27).
                if is_tick(term):
                    continue
                if is_ack(term):
                    self.acked(term[1])
                    continue
                self._inbox.put_nowait((term, size))
                self._inbox_bytes += size
                if self._inbox.qsize() > INBOX_LIMIT or \
                        self._inbox_bytes > INBOX_FRAMES_OF_BYTES * self.max_frame:
                    log.warning("%s: peer floods its connection (%d frames, %d bytes waiting), "
                                "closing", self.label, self._inbox.qsize(), self._inbox_bytes)
                    break
        except asyncio.CancelledError:
            return
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                self.torn = True
        except (ConnectionError, OSError):
            pass
        except error.Error as exc:
            log.warning("%s: protocol error from peer, closing: %s", self.label, exc.confd_lasterr)
        except Exception:  # never leave a connection half-dead after a bug
            log.exception("%s: reading from peer failed, closing", self.label)
        try:
            await self._flow.wait()  # a held connection reports its death only when released
        except asyncio.CancelledError:
            return
        self.die(HA_CLOSED)

    # ------------------------------------------------------------ ticks and silence

    def start_ticks(self) -> None:
        """Start sending ``ha_tick`` and watching for silence (no-op with tick timeout 0)."""
        if self.tick > 0 and self._ticker is None and not self.closed:
            now = self._loop.time()
            self._last_rx = self._last_tick = now
            self._ticker = asyncio.ensure_future(self._tick_loop())

    async def _tick_loop(self) -> None:
        tick = self.tick
        limit = 3 * tick
        try:
            while not self.closed:
                # Sleep until the next thing due -- a tick to send or a silence deadline -- so
                # death is noticed at 3 x tick whatever the tick (a fixed tick/4 poll would be
                # up to 5 s late with ConfD's default 20 s).
                now = self._loop.time()
                due = min(self._last_tick + tick, self._last_rx + limit)
                if self._acks:
                    due = min(due, min(t for t, _ in self._acks.values()) + limit)
                await asyncio.sleep(min(max(due - now, 0.005), tick / 4))
                if self.policy.frozen:
                    continue  # a frozen node notices nothing; its timers restart on thaw
                now = self._loop.time()
                if now - self._last_tick >= tick:
                    self._last_tick = now
                    self.send(HA_TICK)
                if now - self._last_rx > limit:
                    log.info("%s: nothing received for %.2f s, peer is dead", self.label, limit)
                    self.die(HA_NOTICK)
                    return
                if self._acks and now - min(t for t, _ in self._acks.values()) > limit:
                    log.info("%s: transaction not acknowledged within %.2f s, peer is dead",
                             self.label, limit)
                    self.die(HA_NOTICK)
                    return
        except asyncio.CancelledError:
            return

    # ------------------------------------------------------------ ending

    def die(self, reason: int) -> None:
        """The connection failed by itself: close it and let :meth:`recv` report ``reason``."""
        if self.closed:
            return
        self.reason = reason
        self._shut()
        self._inbox.put_nowait((PeerClosed(reason), 0))
        self._end()

    def close(self, bye: bool = False) -> None:
        """Close from this side (an order, a rejection); the node does not treat it as a
        loss. ``bye`` sends the optional ``{ha_bye, 0}`` first."""
        if self.closed:
            return
        if bye:
            self.send((HA_BYE, 0))
        self.reason = HA_CLOSED
        self._shut()
        self._inbox.put_nowait((PeerClosed(HA_CLOSED), 0))
        self._end()

    def _end(self) -> None:
        # While held even the close waits for the release: across a freeze or a partition
        # the peer sees silence (and so HA_NOTICK), not a close (B-23).
        if self._held:
            self._close_on_release = True
        else:
            self._really_close()

    def abort(self) -> None:
        """Abrupt close without goodbye or flushing (node killed)."""
        if not self.closed:
            self.reason = HA_CLOSED
            self._shut()
            self._inbox.put_nowait((PeerClosed(HA_CLOSED), 0))
        self._held_out.clear()
        try:
            self.writer.transport.abort()
        except (RuntimeError, OSError):
            pass
        self.policy.unregister(self)

    def _shut(self) -> None:
        self.closed = True
        current = asyncio.current_task()
        for task in (self._reader_task, self._ticker):
            if task is not None and task is not current:
                task.cancel()
        acks, self._acks = self._acks, {}
        for _, fut in acks.values():
            if not fut.done():
                fut.set_result(False)

    def _really_close(self) -> None:
        self._close_on_release = False
        try:
            self.writer.close()
        except (RuntimeError, OSError):
            pass
        self.policy.unregister(self)


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
    source_ip: str        # the joiner's HA address (bound when specific, B-12)
    tick: float
    max_frame: int
    label: str

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


async def join(params: JoinParams, addr, policy: Policy):
    """Steps 1-5 of the join sequence. Returns :class:`JoinOk` or an error code; the whole
    attempt is bounded by 3 × the joiner's own tick timeout (B-16)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 3 * params.tick if params.tick > 0 else None

    def remaining():
        return None if deadline is None else deadline - loop.time()

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
        left = remaining()
        if left is not None and left > 0:
            await asyncio.sleep(left)
        return HA_CONNECT
    local = None
    src = params.source_ip
    if src and not ipaddress.ip_address(src).is_unspecified and \
            ipaddress.ip_address(src).version == ipaddress.ip_address(ip).version:
        local = (src, 0)
    try:
        left = remaining()
        if left is not None and left <= 0:
            return HA_CONNECT
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(ip, params.port, local_addr=local), left)
    except (OSError, asyncio.TimeoutError):
        return HA_CONNECT
    conn = PeerConn(reader, writer, policy=policy, tick=params.tick,
                    max_frame=params.max_frame, label=params.label)
    try:
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
    if not (_is_tuple(term, HA_CHALLENGE, 4) and _is_nonce(term[2]) and isinstance(term[3], bytes)):
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
    if _is_tuple(term, HA_SYNC, 3) and term[1] == NOCOPY and isinstance(term[2], bytes):
        txid = _txid(term[2])
        if txid is not None:
            return JoinOk(conn, False, txid, None)
    elif _is_tuple(term, HA_SYNC, 4) and term[1] == COPY and isinstance(term[2], bytes) \
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

    def start_sync(self, conn: PeerConn, nodeid, their_txid: str):
        """Build the ``ha_sync`` term and start forwarding transactions to ``conn``, atomically."""
        raise NotImplementedError


class Joined(NamedTuple):
    nodeid: object
    by_copy: int


async def serve_join(conn: PeerConn, view: PrimaryView, deadline: Optional[float]):
    """Steps 2-6 on the listening side; :class:`Joined` after ``ha_synced``, else None (the
    connection is then closed; a rejected secondary produces only a log line, B-13)."""
    loop = asyncio.get_running_loop()

    def remaining():
        return None if deadline is None else deadline - loop.time()

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
    if not (_is_tuple(term, HA_HELLO, 6) and _is_int(term[1]) and _is_int(term[2])
            and _is_nonce(term[5])):
        log.warning("%s: bad hello from joining node, closing", conn.label)
        conn.close()
        return None
    _, peer_vsn, ha_vsn, snodeid, _expected, nonce_s = term
    conn.nodeid = snodeid  # from now on secondary_dead can name it (B-10)
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
    if not (_is_tuple(term, HA_AUTH, 5) and all(isinstance(x, bytes) for x in term[1:])):
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
    conn.send(view.start_sync(conn, snodeid, txid))
    while True:
        term = await conn.recv(remaining())
        if _is_tuple(term, HA_SYNCED, 2) and term[1] in (0, 1):
            return Joined(snodeid, term[1])
        if _is_tuple(term, HA_ACK, 2):
            conn.acked(term[1])
        elif not is_tick(term):
            log.warning("%s: unexpected message while waiting for ha_synced, closing", conn.label)
            conn.close()
            return None


def _reject(conn: PeerConn, code: int, why: str):
    log.info("%s: join rejected with error %d: %s", conn.label, code, why)
    conn.send((HA_REJECT, code))
    conn.close()
    return None


# ================================================================ term shapes


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_tuple(term, tag: Atom, arity: int) -> bool:
    return (isinstance(term, tuple) and len(term) == arity and isinstance(term[0], Atom)
            and term[0] == tag)


def _is_nonce(x) -> bool:
    return isinstance(x, bytes) and len(x) == NONCE_LEN


def _reject_code(term) -> Optional[int]:
    if is_bye(term):
        return HA_CLOSED  # the listener gave up on us (e.g. secondary_dead, B-10)
    if _is_tuple(term, HA_REJECT, 2) and _is_int(term[1]):
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


def is_tick(term) -> bool:
    return isinstance(term, Atom) and term == HA_TICK


def is_trans(term) -> bool:
    return (_is_tuple(term, HA_TRANS, 4) and _is_int(term[1]) and isinstance(term[2], bytes)
            and isinstance(term[3], bytes))


def is_ack(term) -> bool:
    return _is_tuple(term, HA_ACK, 2) and _is_int(term[1])


def is_bye(term) -> bool:
    return _is_tuple(term, HA_BYE, 2)


def txid_text(raw: bytes) -> Optional[str]:
    return _txid(raw)
