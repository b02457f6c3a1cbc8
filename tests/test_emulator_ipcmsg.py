"""confd_ha.emulator.ipcmsg: what the emulated daemon makes of IPC bytes, without I/O -- the
rules observed on ConfD 8.2.5 (docs/conformance-ipc.md)."""

from __future__ import annotations

import zlib

import pytest

from confd_ha import _codec, _protocol as P
from confd_ha._terms import Atom
from confd_ha.emulator import ipcmsg as M

U = Atom("undefined")


@pytest.mark.parametrize("byte0,check_on,action,variant", [
    (0x11, False, M.SERVE, None), (0x0B, False, M.SERVE, None), (0x03, False, M.SERVE, None),
    (0x51, False, M.SERVE, None),            # 0x40 alone is ignored when the check is off
    (0xD1, False, M.DROP, None), (0x91, False, M.DROP, None),
    (0x04, False, M.CLI, None), (0x01, False, M.SILENT, None), (0x06, False, M.SILENT, None),
    (0x0C, False, M.DROP, None), (0x12, False, M.DROP, None), (0x00, False, M.DROP, None),
    (0x3F, False, M.DROP, None),
    (0xD1, True, M.SERVE, P.ACCESS_V2), (0x91, True, M.SERVE, P.ACCESS_V1),
    (0xCB, True, M.SERVE, P.ACCESS_V2), (0x11, True, M.DROP, None), (0x51, True, M.DROP, None),
    (0x04, True, M.DROP, None), (0x84, True, M.CLI, None), (0xC4, True, M.CLI, None),
    (0xCC, True, M.DROP, None), (0xD2, True, M.DROP, None),
])
def test_first_byte(byte0, check_on, action, variant):
    verdict = M.first_byte(byte0, check_on)
    assert (verdict.action, verdict.variant) == (action, variant)
    assert verdict.ctype == byte0 & 0x3F


@pytest.mark.parametrize("proto,depth,keylen,status", [
    (82, 0, 0, 0), (81, 0, 0, 0), (83, 0, 0, 1), (77, 0, 0, 1), (0, 0, 0, 1),
    (82, 12, 4, 0), (82, 20, 9, 0), (82, 60, 18, 0), (82, 12, 3, 2), (82, 11, 4, 2),
    (82, 0, 4, 2), (82, 1, 1, 2), (77, 1, 1, 1),
])
def test_hello_status(proto, depth, keylen, status):
    hello = P.Hello(0x11, proto, 0x08020500, depth, keylen)
    assert M.hello_status(hello, (81, 82), 12, 4) == status


def test_decode_lenient():
    body = _codec.encode((4,))
    assert M.decode_lenient(body, 1 << 20) == (4,)
    assert M.decode_lenient(body + b"junk", 1 << 20) == (4,)
    assert M.decode_lenient(_codec.encode((3,)) + _codec.encode((1, b"n1")), 1 << 20) == (3,)
    compressed = b"\x83\x50" + (len(body) - 1).to_bytes(4, "big") + zlib.compress(body[1:])
    assert M.decode_lenient(compressed, 1 << 20) == (4,)
    for bad in (b"", b"\x83", b"junk", b"\x83\x68\x01", body[1:],
                b"\x83\x50\x00\x00\x00\x04" + b"x" * 8,                      # not zlib
                b"\x83\x50" + (3).to_bytes(4, "big") + zlib.compress(body[1:]),  # wrong size
                b"\x83" + b"\x68\x01" * 100000 + b"\x61\x04"):
        assert M.decode_lenient(bad, 1 << 20) is M.UNDECODABLE, bad[:16]


def test_decode_lenient_inflates_no_more_than_the_limit():
    bomb = b"\x83\x50" + (1 << 30).to_bytes(4, "big") + zlib.compress(b"\x6a" * (1 << 20))
    assert M.decode_lenient(bomb, 1 << 20) is M.UNDECODABLE
    # Announced small but inflating to more: only size + 1 bytes are ever inflated.
    liar = b"\x83\x50" + (2).to_bytes(4, "big") + zlib.compress(b"\x68\x01" + b"\x6a" * (1 << 22))
    assert M.decode_lenient(liar, 1 << 20) is M.UNDECODABLE


@pytest.mark.parametrize("term,kind,crash_after", [
    ((4,), M.ORDER, False), ((3,), M.ORDER, False), ((6,), M.ORDER, False),
    ((1, b"n1"), M.ORDER, False), ((1, 1), M.ORDER, False), ((1, []), M.ORDER, False),
    ((5, Atom("a")), M.ORDER, False),
    ((2, b"n2", (b"n1", (127, 0, 0, 1)), 1), M.ORDER, False),
    ((2, b"n2", (b"n1", (0, 0, 0, 0, 0, 0, 0, 1)), 0), M.ORDER, False),
    ((2, b"n2", (b"n1", Atom("host")), 1), M.ORDER, False),
    ((2, b"n2", (b"n1", 5), 1), M.ORDER, False),
    ((2, b"n2", (b"n1", (127, 0, 0, 1)), 2), M.ORDER, True),
    ((2, b"n2", (b"n1", (127, 0, 0, 1)), Atom("true")), M.ORDER, True),
    ((2, b"n2", (b"n1", (1, 2, 3)), 1), M.CRASH, False),
    ((2, b"n2", (b"n1", (1, 2, 3, 256)), 0), M.CRASH, False),
    ((2, b"n2", b"n1", 1), M.REFUSE, False),
    ((2, b"n2", (b"n1", (127, 0, 0, 1), 1), 1), M.REFUSE, False),
    ((2, b"n2", (b"n1", (127, 0, 0, 1))), M.REFUSE, False),
    ((7,), M.REFUSE, False), ((1,), M.REFUSE, False), ((4, b"x"), M.REFUSE, False),
    ((), M.REFUSE, False), (4, M.REFUSE, False), ([4], M.REFUSE, False),
    (Atom("ok"), M.REFUSE, False), ((4.0,), M.REFUSE, False), (M.UNDECODABLE, M.REFUSE, False),
])
def test_classify_order(term, kind, crash_after):
    verdict = M.classify_order(term)
    assert (verdict.kind, verdict.crash_after) == (kind, crash_after)


def test_besecondary_name_addresses():
    for addr, name in ((Atom("host"), b"host"), (b"h", b"h"), ([104], b"h"), (5, b""),
                       ([], b""), ([300], b"")):
        order = M.classify_order((2, b"n2", (b"n1", addr), 0)).order
        assert order.addr == name and order.waitreply is False


@pytest.mark.parametrize("payload,kind,mask", [
    (_codec.encode((64, 0, 0, U, 0)), M.SUBSCRIBE, 64),
    (_codec.encode((0, 0, 0, U, 0)), M.SUBSCRIBE, 0),
    (_codec.encode((64, b"x", b"y", b"z", b"w")), M.SUBSCRIBE, 64),
    (_codec.encode((64 | (1 << 40), 0, 0, U, 0)), M.SUBSCRIBE, 64 | (1 << 40)),
    (b"\x00\x00\x00\x40", M.SUBSCRIBE, 64), (b"junk", M.SUBSCRIBE, 0x6A756E6B),
    (b"\x00\x00\x00\x40" + b"\x00" * 8, M.SUBSCRIBE, 64),
    (_codec.encode((64, 0, 0, U)), M.BAD, 0), (_codec.encode((1, 2)), M.BAD, 0), (_codec.encode(64), M.BAD, 0),
    (_codec.encode((64, 0, 0, U, 0, 0)), M.BAD, 0), (_codec.encode(Atom("ok")), M.BAD, 0),
    (_codec.encode((-1, 0, 0, U, 0)), M.CLOSE, 0),
    (_codec.encode((Atom("x"), 0, 0, U, 0)), M.CRASH, 0), (b"abc", M.CRASH, 0), (b"", M.CRASH, 0),
    (b"\x83", M.CRASH, 0), (b"\x00" * 5, M.CRASH, 0), (b"\x00" * 16, M.CRASH, 0),
])
def test_classify_subscription(payload, kind, mask):
    verdict = M.classify_subscription(payload, 1 << 20)
    assert verdict.kind == kind
    if kind == M.SUBSCRIBE:
        assert verdict.mask == mask


def test_bad_subscription_frame_bytes():
    assert _codec.decode(M.BAD_SUBSCRIPTION_FRAME[4:]) == (Atom("error"), 18, b"Bad subscription data")


def test_random_bytes_never_raise():
    """Whatever arrives, the verdicts are computed without an exception (seeded, so repeatable;
    the bytes are mutations of valid frames as well as plain noise)."""
    import random

    rng = random.Random(1)
    seeds = [_codec.encode((2, b"n2", (b"n1", (127, 0, 0, 1)), 1)), _codec.encode((64, 0, 0, U, 0)),
             _codec.encode((4,)), b"\x83\x50\x00\x00\x00\x05" + zlib.compress(b"\x68\x01\x61\x04")]
    for _ in range(3000):
        if rng.random() < 0.5:
            data = bytearray(rng.choice(seeds))
            for _ in range(rng.randrange(1, 4)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            data = bytes(data[:rng.randrange(1, len(data) + 1)])
        else:
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 40)))
        M.classify_order(M.decode_lenient(data, 1 << 16))
        M.classify_subscription(data, 1 << 16)
        if data:
            M.first_byte(data[0], rng.random() < 0.5)
