"""Opening an IPC connection, daemon side: hello, IPC access check, hello reply -- without I/O.

The mirror of the client's :func:`confd_ha._handshake.exchange`: :func:`accept` is a
generator of I/O steps that the emulator's IPC server (:mod:`.ipc`) drives under its
``init_timeout`` deadline, and that a test can drive with the client's generator on the
other end. Its outcome says whether the connection is served (and as which client type),
kept without an answer, or closed, and why. What each byte means is decided in
:mod:`.ipcmsg`; everything here is what ConfD 8.2.5 was observed to do
(docs/conformance-ipc.md, "Hello" and "IPC access check").
"""

from __future__ import annotations

import secrets
from typing import Callable, Generator, NamedTuple, Optional

from .. import _protocol
from .._handshake import RECV as RECV, SEND as SEND  # the client's steps, one vocabulary
from . import ipcmsg
from .config import NodeConfig

# Outcomes (Outcome.action): served, kept open without an answer, or closed.
SERVE, SILENT, CLOSE = ipcmsg.SERVE, ipcmsg.SILENT, "close"

HELLO_REST = _protocol.HELLO_LEN - 1   # the hello's bytes after the first one


class Step(NamedTuple):
    """One I/O step: ``SEND`` ``data`` (resume with None), or ``RECV`` exactly ``n`` bytes
    (resume with them) -- ``what`` names them for a deadline's message."""

    kind: str
    data: bytes = b""
    n: int = 0
    what: str = ""


class Outcome(NamedTuple):
    """How the handshake ended: ``action`` SERVE (the client's ``hello`` was accepted; serve
    it as client type ``ctype``), SILENT (keep the connection, answer nothing) or CLOSE
    (``why`` says why)."""

    action: str
    ctype: int
    why: str = ""
    hello: Optional[_protocol.Hello] = None


Flow = Generator[Step, Optional[bytes], Outcome]


def accept(config: NodeConfig, secret: Optional[bytes],
           nonce: Callable[[int], bytes] = secrets.token_bytes) -> Flow:
    """The daemon's side of a new connection, as a generator of :class:`Step`; returns its
    :class:`Outcome`. ``secret`` is the IPC access secret (None: the check is off);
    ``nonce(n)`` makes a challenge's n random bytes. A malformed hello raises
    :class:`confd_ha.error.Error`."""
    first = yield Step(RECV, n=1, what="hello")
    assert first is not None
    verdict = ipcmsg.first_byte(first[0], secret is not None)
    if verdict.action == ipcmsg.DROP:
        return Outcome(CLOSE, verdict.ctype, verdict.why)
    if verdict.action == ipcmsg.CLI:
        yield Step(SEND, ipcmsg.CLI_UNAVAILABLE)
        return Outcome(CLOSE, verdict.ctype, "CLI socket not served")
    if verdict.action == ipcmsg.SILENT:
        return Outcome(SILENT, verdict.ctype)
    rest = yield Step(RECV, n=HELLO_REST, what="hello")
    assert rest is not None
    hello = _protocol.parse_hello(first + rest)
    if verdict.variant is not None:
        assert secret is not None
        why = yield from _access_check(verdict.variant, secret, nonce)
        if why:
            return Outcome(CLOSE, verdict.ctype, why)
    status = ipcmsg.hello_status(hello, config.proto_window, config.maxdepth,
                                 config.maxkeylen)
    yield Step(SEND, _protocol.build_hello(_protocol.Hello(
        status, config.proto_vsn, config.vsn, config.maxdepth, config.maxkeylen)))
    if status != _protocol.HELLO_ACCEPTED:
        return Outcome(CLOSE, verdict.ctype, "hello refused with status %d (protocol %d, %d/%d)"
                       % (status, hello.proto_vsn, hello.maxdepth, hello.maxkeylen), hello)
    return Outcome(SERVE, verdict.ctype, "", hello)


def _access_check(variant: int, secret: bytes,
                  nonce: Callable[[int], bytes]) -> Generator[Step, Optional[bytes], str]:
    """Challenge, answer, verdict; returns why the connection is to be closed ("" if it
    passed)."""
    size = _protocol.challenge_size(variant)
    sent = nonce(size - 1)
    yield Step(SEND, _protocol.build_challenge(sent))
    answer = yield Step(RECV, n=size, what="access check")
    assert answer is not None
    if answer[0] != ipcmsg.ACCESS_ANSWER:
        return "IPC access check: not an answer"
    if not _protocol.verify_response(variant, secret, sent, answer):
        yield Step(SEND, _protocol.ACCESS_REJECTED)
        return "IPC access check failed"
    yield Step(SEND, _protocol.ACCESS_OK)
    return ""
