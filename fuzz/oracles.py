"""What the decoders must make of arbitrary bytes: the checks shared by the atheris harness
(``fuzz/diff_atheris.py``) and the corpus replay (``tests/test_fuzz_corpus.py``).

Every ``check_*`` function takes one input and raises :class:`Mismatch` when the code under
test disagrees with its oracle or lets anything but ``confd_ha.error.Error`` (or, for the
emulator's order decoder, ``BadOrder``) escape. The oracles are the reference codec
(``tests/refcodec.py``) plus the wire-protocol decisions written out here (W-18, W-20, W-22,
W-25), and glibc's ``inet_ntop`` for IPv6 text.
"""

from __future__ import annotations

import socket

import refcodec
from core_helpers import KIND_OF_STATUS
from confd_ha import _codec, _protocol, error
from confd_ha._core import ffi, lib
from confd_ha._terms import Atom


class Mismatch(AssertionError):
    """The code under test and the oracle disagree (or a stray exception escaped)."""


_UNEXPECTED_REPLY = (error.ERR_PROTOUSAGE, "unexpected reply from daemon")


def _is_int(x) -> bool:
    return type(x) is int


def ref_decode(data: bytes):
    """(True, term) or (False, DecodeError) from the reference codec."""
    try:
        return True, refcodec.decode(data)
    except refcodec.DecodeError as exc:
        return False, exc


# ------------------------------------------------------------------ C core through cffi


def check_core(data: bytes) -> None:
    """The C entry points called directly: the three chd_decode modes agree, the reply and
    status decoders agree with chd_decode on validity, no status outside the CHD_E_* set."""
    count0 = ffi.new("size_t *")
    st0 = lib.chd_decode(data, len(data), ffi.NULL, 0, count0)
    cap = len(data) + 1
    nodes = ffi.new("chd_term[]", cap)
    count1 = ffi.new("size_t *")
    st1 = lib.chd_decode(data, len(data), nodes, cap, count1)
    if (st0, count0[0]) != (st1, count1[0]) or not lib.CHD_E_ARG <= st0 <= lib.CHD_OK:
        raise Mismatch("chd_decode: count-only %d/%d, bounded %d/%d"
                       % (st0, count0[0], st1, count1[0]))
    if st0 == lib.CHD_OK and count0[0] > 1:
        st2 = lib.chd_decode(data, len(data), nodes, count0[0] - 1, count1)
        if st2 != lib.CHD_E_TOOBIG:
            raise Mismatch("chd_decode with one entry too few: %d" % st2)
    rep = ffi.new("chd_reply *")
    st = lib.chd_reply_decode(data, len(data), rep)
    if st != st0 if st0 != lib.CHD_OK else st not in (lib.CHD_OK, lib.CHD_E_SHAPE):
        raise Mismatch("chd_reply_decode %d, chd_decode %d" % (st, st0))
    state = ffi.new("int64_t *")
    sizes = ffi.new("size_t[2]")
    flags = ffi.new("int *")
    for size in (3 * len(data) + 64, 8, 0):
        text = ffi.new("unsigned char[]", max(size, 1))
        st = lib.chd_status_decode(data, len(data), state, text, size, sizes, sizes + 1, flags)
        if size > 64 and st == lib.CHD_E_SPACE:
            raise Mismatch("chd_status_decode: no room in the caller's 3*len+64 buffer")
        if st == lib.CHD_OK and flags[0] == 0 and st0 != lib.CHD_OK:
            raise Mismatch("chd_status_decode accepts what chd_decode refuses (%d)" % st0)
        if st0 == lib.CHD_OK and st not in (lib.CHD_OK, lib.CHD_E_SHAPE, lib.CHD_E_SPACE):
            raise Mismatch("chd_status_decode %d on a valid term" % st)
        if not lib.CHD_E_ARG <= st <= lib.CHD_OK:
            raise Mismatch("chd_status_decode returned %d" % st)


# ------------------------------------------------------------------ _codec.decode


def check_decode(data: bytes) -> None:
    """_codec.decode against refcodec.decode: the same term, or both refuse (and then the C
    status names the refcodec error kind)."""
    ok, ref = ref_decode(data)
    status = _codec.validate(data)
    try:
        got = _codec.decode(data)
    except error.Error as exc:
        if ok:
            raise Mismatch("C refuses (%s), refcodec decodes %r" % (exc, ref))
        if ref.kind == "badvalue" and "overflows" in ref.msg:
            # The C core leaves an old float's range to _protocol, so it may accept the bytes
            # or stop at a later error; refcodec stops at the float. Both refuse.
            return
        if status == lib.CHD_OK:
            raise Mismatch("C core accepts, decode refuses: %s / %s" % (exc, ref))
        kind = KIND_OF_STATUS.get(status)
        if kind != ref.kind:
            raise Mismatch("C status %d (%s), refcodec %s" % (status, kind, ref))
        return
    except Exception as exc:
        raise _stray("decode", exc) from exc
    if not ok:
        raise Mismatch("C decodes %r, refcodec refuses: %s" % (got, ref))
    if status != lib.CHD_OK:
        raise Mismatch("decode succeeded but validate says %d" % status)
    if not refcodec.same_term(got, ref):
        raise Mismatch("C %r != refcodec %r" % (got, ref))


# ------------------------------------------------------------------ decode_reply (W-18, W-19)


class Refused(Exception):
    """The oracle's verdict: the client must raise Error(ERR_PROTOUSAGE) for this payload."""


def _verdict(oracle, data: bytes):
    """What ``oracle(data)`` returns, or the class Refused when the oracle refuses ``data``."""
    try:
        return oracle(data)
    except Refused:
        return Refused


def _stray(name: str, exc: BaseException) -> Mismatch:
    """The mismatch of ``name`` letting ``exc`` (no clean refusal) escape."""
    return Mismatch("%s raised %s: %s" % (name, type(exc).__name__, exc))


def _reason_text(raw: bytes) -> str:
    if raw.endswith(b"\x00"):
        raw = raw[:-1]
    return raw.decode("utf-8", "replace")


def reply_oracle(data: bytes):
    """None for success, (code, lasterr) for an error reply; raises Refused."""
    ok, term = ref_decode(data)
    if not ok:
        raise Refused(term)
    if isinstance(term, Atom):
        return None
    if not (isinstance(term, tuple) and len(term) in (2, 3) and isinstance(term[0], Atom)
            and term[0] == "error" and _is_int(term[1]) and -(2**63) <= term[1] < 2**63):
        raise Refused("not a reply")
    # Any code is the daemon's error, also 0 and negative ones (as libconfd: observed with
    # Cisco's module by tests/differential); -2 is not an EOF here.
    if len(term) == 2:
        return term[1], ""
    reason = term[2]
    if isinstance(reason, tuple) and len(reason) == 2 and isinstance(reason[0], bytes):
        reason = reason[0]
    if isinstance(reason, bytes):
        return term[1], _reason_text(reason)
    if isinstance(reason, list) and all(_is_int(x) and 0 <= x <= 255 for x in reason):
        return term[1], _reason_text(bytes(reason))
    raise Refused("bad reason")


def check_reply(data: bytes) -> None:
    want = _verdict(reply_oracle, data)
    try:
        got = _protocol.decode_reply(data)
    except error.Error as exc:
        got = (exc.confd_errno, exc.confd_lasterr)
        if want is Refused:
            if got != _UNEXPECTED_REPLY:
                raise Mismatch("refused with %r" % (got,))
            return
    except BaseException as exc:
        raise _stray("decode_reply", exc) from exc
    if want is Refused:
        raise Mismatch("oracle refuses, decode_reply gives %r" % (got,))
    if got != want:
        raise Mismatch("decode_reply %r, oracle %r" % (got, want))


# ------------------------------------------------------------------ decode_status (W-20..25)


def address_oracle(addr) -> str:
    if isinstance(addr, tuple) and len(addr) == 4 and all(_is_int(x) and 0 <= x <= 255
                                                          for x in addr):
        return "%d.%d.%d.%d" % addr
    if isinstance(addr, tuple) and len(addr) == 8 and all(_is_int(x) and 0 <= x <= 0xFFFF
                                                          for x in addr):
        return socket.inet_ntop(socket.AF_INET6, b"".join(x.to_bytes(2, "big") for x in addr))
    if isinstance(addr, bytes):
        return addr.decode("utf-8", "replace")
    if isinstance(addr, list) and all(_is_int(x) and 0 <= x <= 255 for x in addr):
        return bytes(addr).decode("utf-8", "replace")
    raise Refused("bad address")


def status_oracle(data: bytes):
    """(state, nodes) as decode_status returns them, except that a non-binary node id is None
    (its text comes from Value; only its type is checked). Raises Refused."""
    ok, term = ref_decode(data)
    if not ok:
        raise Refused(term)
    # W-20: any integer State, returned unchanged (beyond 64 bits the generic path has it).
    if not (isinstance(term, tuple) and len(term) == 2 and _is_int(term[0])
            and isinstance(term[1], list)):
        raise Refused("not a status")
    nodes = []
    for node in term[1]:
        if not (isinstance(node, tuple) and len(node) == 2):
            raise Refused("not a node")
        nid, addr = node
        text = (nid.split(b"\x00", 1)[0].decode("utf-8", "replace")
                if isinstance(nid, bytes) else None)
        nodes.append({"nodeid": text, "address": address_oracle(addr)})
    return term[0], nodes


def check_status(data: bytes) -> None:
    want = _verdict(status_oracle, data)
    try:
        got = _protocol.decode_status(data)
    except error.Error as exc:
        if want is Refused:
            return
        # A node id that is no Value term (W-25) is a clean refusal too.
        if any(n["nodeid"] is None for n in want[1]) and exc.confd_errno in (
                error.ERR_PROTOUSAGE, error.ERR_BADTYPE):
            return
        raise Mismatch("oracle gives %r, decode_status raises %s" % (want, exc))
    except BaseException as exc:
        raise _stray("decode_status", exc) from exc
    if want is Refused:
        raise Mismatch("oracle refuses, decode_status gives %r" % (got,))
    state, nodes = got
    if state != want[0] or len(nodes) != len(want[1]):
        raise Mismatch("decode_status %r, oracle %r" % (got, want))
    for g, w in zip(nodes, want[1]):
        if not isinstance(g["nodeid"], str) or g["address"] != w["address"]:
            raise Mismatch("decode_status %r, oracle %r" % (got, want))
        if w["nodeid"] is not None and g["nodeid"] != w["nodeid"]:
            raise Mismatch("decode_status %r, oracle %r" % (got, want))


# ------------------------------------------------------------------ other message decoders


def check_messages(data: bytes) -> None:
    """The other decoders of received terms: a result or a clean refusal, nothing else."""
    allowed = (error.Error, _protocol.BadOrder)
    for name in ("decode_order", "decode_subscription", "decode_notification",
                 "decode_subscription_reply"):
        func = getattr(_protocol, name, None)
        if func is None:
            continue
        try:
            func(data)
        except allowed:
            pass
        except BaseException as exc:
            raise _stray(name, exc) from exc


# ------------------------------------------------------------------ handshake, framing


def check_handshake(data: bytes) -> None:
    """parse_hello, frame_size, challenge_nonce, verify_response on raw bytes."""
    try:
        hello = _protocol.parse_hello(data)
        if len(data) != 9 or _protocol.build_hello(hello) != data:
            raise Mismatch("parse_hello accepted %r as %r" % (data, hello))
    except error.Error:
        if len(data) == 9:
            raise Mismatch("parse_hello refused 9 bytes")
    try:
        size = _protocol.frame_size(data)
        if len(data) != 4 or size != int.from_bytes(data, "big") or size > _protocol.MAX_FRAME:
            raise Mismatch("frame_size(%r) = %d" % (data, size))
    except error.Error:
        if len(data) == 4 and int.from_bytes(data, "big") <= _protocol.MAX_FRAME:
            raise Mismatch("frame_size refused %r" % (data,))
    for variant, n in ((_protocol.ACCESS_V1, 16), (_protocol.ACCESS_V2, 32)):
        nonce = _protocol.challenge_nonce(variant, data)
        want = data[1:] if len(data) == n + 1 and data[:1] == b"\x0b" else None
        if nonce != want:
            raise Mismatch("challenge_nonce(%d) = %r" % (variant, nonce))
        if _protocol.verify_response(variant, b"s3cret", bytes(n), data) is not False:
            # A response for an all-zero nonce is found by the fuzzer only by breaking SHA-256.
            raise Mismatch("verify_response accepted %r" % (data,))


CHECKS = {
    "core": check_core,
    "decode": check_decode,
    "reply": check_reply,
    "status": check_status,
    "messages": check_messages,
    "handshake": check_handshake,
}
