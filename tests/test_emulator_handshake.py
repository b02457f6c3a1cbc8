"""The daemon side of the IPC handshake (confd_ha.emulator.handshake), without sockets:
driven against the client's own sans-I/O exchange (confd_ha._handshake.exchange), or fed
bytes by hand."""

from __future__ import annotations

from typing import Any, Optional, Tuple

import pytest

from confd_ha import _handshake, _protocol, error
from confd_ha.emulator import handshake, ipcmsg
from confd_ha.emulator.config import NodeConfig

SECRET = b"the shared secret\n"
BLOCKED = "blocked"   # a side waits for bytes the other will never send


def nonce(n: int) -> bytes:
    return bytes(range(1, n + 1))


def plan(secret: Optional[bytes] = None, variant: int = _protocol.ACCESS_V2,
         ctype: int = _protocol.CT_HA, proto_vsn: int = _protocol.DEFAULT_PROTO_VSN
         ) -> _handshake.Plan:
    return _handshake.Plan(ctype, proto_vsn, _protocol.DEFAULT_LIB_VSN, secret, variant)


class _End:
    """One side of the pipe: a generator, its inbox, its result."""

    def __init__(self, gen: Any, daemon: bool) -> None:
        self.gen = gen
        self.daemon = daemon
        self.inbox = bytearray()
        self.want: Optional[int] = None   # bytes the generator waits for
        self.done = False
        self.result: Any = None
        self.sent: list = []              # what it sent, step by step

    def step(self, value: Any) -> Tuple[str, Any]:
        step = self.gen.send(value)
        if self.daemon:
            return step.kind, (step.data if step.kind == handshake.SEND else step.n)
        return step

    def run(self, peer: "_End") -> bool:
        """Advance as far as the bytes allow; True if anything happened."""
        moved = False
        while not self.done:
            value = None
            if self.want is not None:
                if len(self.inbox) < self.want:
                    return moved
                value = bytes(self.inbox[:self.want])
                del self.inbox[:self.want]
                self.want = None
            moved = True
            try:
                kind, arg = self.step(value)
            except StopIteration as stop:
                self.done, self.result = True, stop.value
            except error.Error as exc:
                self.done, self.result = True, exc
            else:
                if kind == "send":
                    peer.inbox += arg
                    self.sent.append(arg)
                else:
                    self.want = arg
        return moved


def pipe(client_plan: _handshake.Plan, config: NodeConfig, secret: Optional[bytes]):
    """Run both sides against each other: (client's result, daemon's outcome, bytes the
    daemon sent); a side left waiting gives BLOCKED."""
    client = _End(_handshake.exchange(client_plan, client_plan.proto_vsn, client_plan.lib_vsn),
                  daemon=False)
    daemon = _End(handshake.accept(config, secret, nonce), daemon=True)
    while client.run(daemon) | daemon.run(client):
        pass
    return (client.result if client.done else BLOCKED,
            daemon.result if daemon.done else BLOCKED, daemon.sent)


def drive(gen: Any, *inputs: bytes):
    """Feed a daemon flow the given byte strings, one per RECV step; returns (sent, outcome)
    -- outcome None while it still waits."""
    sent = []
    value: Optional[bytes] = None
    pending = list(inputs)
    while True:
        try:
            step = gen.send(value)
        except StopIteration as stop:
            return sent, stop.value
        if step.kind == handshake.SEND:
            sent.append(step.data)
            value = None
        else:
            if not pending:
                return sent, None
            value = pending.pop(0)
            assert len(value) == step.n


def test_plain_hello_is_served():
    config = NodeConfig()
    reply, outcome, sent = pipe(plan(), config, None)
    assert outcome.action == handshake.SERVE and outcome.ctype == _protocol.CT_HA
    assert outcome.hello.proto_vsn == _protocol.DEFAULT_PROTO_VSN
    assert (outcome.hello.maxdepth, outcome.hello.maxkeylen) == (
        _protocol.CLIENT_MAXDEPTH, _protocol.CLIENT_MAXKEYLEN)
    assert reply == _protocol.Hello(_protocol.HELLO_ACCEPTED, config.proto_vsn, config.vsn,
                                    config.maxdepth, config.maxkeylen)
    assert sent == [_protocol.build_hello(reply)]


@pytest.mark.parametrize("variant", [_protocol.ACCESS_V1, _protocol.ACCESS_V2])
def test_access_check_passes_with_the_right_secret(variant):
    reply, outcome, sent = pipe(plan(SECRET, variant, _protocol.CT_EVENT), NodeConfig(), SECRET)
    assert outcome.action == handshake.SERVE and outcome.ctype == _protocol.CT_EVENT
    assert reply.byte0 == _protocol.HELLO_ACCEPTED
    size = _protocol.challenge_size(variant)
    assert sent[0] == _protocol.build_challenge(nonce(size - 1))
    assert sent[1] == _protocol.ACCESS_OK
    assert len(sent) == 3


@pytest.mark.parametrize("variant", [_protocol.ACCESS_V1, _protocol.ACCESS_V2])
def test_access_check_wrong_secret_is_rejected(variant):
    reply, outcome, sent = pipe(plan(b"wrong", variant), NodeConfig(), SECRET)
    assert isinstance(reply, error.Error)
    assert reply.confd_errno == error.ERR_ACCESS_DENIED
    assert "rejected" in reply.confd_lasterr
    assert outcome == handshake.Outcome(handshake.CLOSE, _protocol.CT_HA,
                                        "IPC access check failed")
    assert sent[-1] == _protocol.ACCESS_REJECTED


def test_client_without_the_check_is_dropped_when_it_is_on():
    reply, outcome, sent = pipe(plan(), NodeConfig(), SECRET)
    assert reply == BLOCKED and sent == []
    assert outcome.action == handshake.CLOSE
    assert outcome.why == "hello without the access-check flag"


def test_client_asking_for_the_check_is_dropped_when_it_is_off():
    reply, outcome, sent = pipe(plan(SECRET), NodeConfig(), None)
    assert reply == BLOCKED and sent == []
    assert outcome.why == "access-check flag but the check is off"


def test_answer_of_another_kind_closes_without_a_verdict():
    variant = _protocol.ACCESS_V2
    size = _protocol.challenge_size(variant)
    hello = _protocol.build_hello(_protocol.Hello(
        _protocol.CT_HA | _protocol.access_flag(variant), _protocol.DEFAULT_PROTO_VSN,
        _protocol.DEFAULT_LIB_VSN, 20, 9))
    sent, outcome = drive(handshake.accept(NodeConfig(), SECRET, nonce), hello[:1], hello[1:],
                          b"\x0b" + bytes(size - 1))
    assert sent == [_protocol.build_challenge(nonce(size - 1))]
    assert outcome == handshake.Outcome(handshake.CLOSE, _protocol.CT_HA,
                                        "IPC access check: not an answer")


def test_bad_protocol_version_is_refused_after_the_reply():
    config = NodeConfig()
    reply, outcome, sent = pipe(plan(proto_vsn=10), config, None)
    assert reply.byte0 == _protocol.HELLO_BADVSN
    assert (reply.proto_vsn, reply.vsn) == (config.proto_vsn, config.vsn)
    assert outcome.action == handshake.CLOSE
    assert outcome.why.startswith("hello refused with status 1 (protocol 10,")


def test_small_maxdepth_gets_the_warning_status_then_a_close():
    hello = _protocol.build_hello(_protocol.Hello(_protocol.CT_HA, _protocol.DEFAULT_PROTO_VSN,
                                                  _protocol.DEFAULT_LIB_VSN, 1, 1))
    sent, outcome = drive(handshake.accept(NodeConfig(), None), hello[:1], hello[1:])
    assert _protocol.parse_hello(sent[0]).byte0 == _protocol.HELLO_WARNING
    assert outcome.action == handshake.CLOSE
    assert outcome.why.startswith("hello refused with status 2")


def test_first_byte_verdicts():
    cli, outcome = drive(handshake.accept(NodeConfig(), None), bytes([ipcmsg.CT_CLI]))
    assert cli == [ipcmsg.CLI_UNAVAILABLE]
    assert outcome == handshake.Outcome(handshake.CLOSE, ipcmsg.CT_CLI, "CLI socket not served")
    for ctype in sorted(ipcmsg.SILENT_TYPES):
        assert drive(handshake.accept(NodeConfig(), None), bytes([ctype])) == (
            [], handshake.Outcome(handshake.SILENT, ctype))
    sent, outcome = drive(handshake.accept(NodeConfig(), None), b"\x3f")
    assert sent == [] and outcome.action == handshake.CLOSE
    assert outcome.why == "client type 63 not served"


def test_the_hello_is_read_as_its_first_byte_then_the_rest():
    gen = handshake.accept(NodeConfig(), None)
    first = next(gen)
    assert (first.kind, first.n, first.what) == (handshake.RECV, 1, "hello")
    rest = gen.send(bytes([_protocol.CT_HA]))
    assert (rest.kind, rest.n, rest.what) == (handshake.RECV, _protocol.HELLO_LEN - 1, "hello")
