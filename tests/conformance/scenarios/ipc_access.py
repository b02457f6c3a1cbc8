"""IPC level: the IPC access check (ConfD's confdIpcAccessCheck, the emulator's
--ipc-access-file), with the secret ``s3cret`` (docs/conformance-ipc.md).

v2 is asked for with the flags 0xC0 in the hello's first byte (challenge 0x0B + 32 bytes,
answer 0x0C + SHA-256(secret + challenge)), v1 with 0x80 (16 bytes, MD5).
"""

from . import scenario

SECRET = b"s3cret"


def _check(w, label, byte0, variant, size, secret=SECRET, first=0x0C, **hello):
    """Hello with access flags, the challenge, an answer, and what comes back within 1 s."""
    w.raw("n1", label)
    w.hello(label, byte0, **hello)
    w.challenge(label, size)
    w.respond(label, secret, variant, first)
    w.recv(label, 64, 1.0)


@scenario(nodes=1, access_secret=SECRET)
def ipc_access_v2(w):
    """v2 with the right secret: OK byte 0x00, then the normal 9-byte reply; the socket is then
    an ordinary HA control socket. A wrong secret gets the byte 0x03 and a close; a refused
    library version is reported only after a successful check."""
    _check(w, "ok", 0xD1, 2, 33)
    w.send_frame("ok", b"tok")
    w.send_term("ok", (4,))
    w.recv_frame("ok", 2.0)
    w.close_raw("ok")
    _check(w, "wrong", 0xD1, 2, 33, secret=b"wrong")
    _check(w, "newer", 0xD1, 2, 33, proto=85, vsn=0x08050600)
    _check(w, "ev", 0xCB, 2, 33)
    w.send_term("ev", (64, 0, 0, _undefined(), 0))
    w.recv_frame("ev", 2.0)
    w.close_raw("ev")


@scenario(nodes=1, access_secret=SECRET)
def ipc_access_v1(w):
    """v1 (MD5, 16-byte challenge) with the right and a wrong secret; a 33-byte answer to a
    v1 challenge is a wrong answer (and its unread rest makes the close a reset)."""
    _check(w, "ok", 0x91, 1, 17)
    w.close_raw("ok")
    _check(w, "wrong", 0x91, 1, 17, secret=b"wrong")
    _check(w, "long_answer", 0x91, 2, 17)


@scenario(nodes=1, access_secret=SECRET)
def ipc_access_refusals(w):
    """With the check on: a hello without the 0x80 flag (plain, 0x40 alone, an unflagged event
    or CLI hello) is dropped after its first byte without a byte sent; a flagged CLI hello gets
    0x0D; flagged NETCONF and NCS types are dropped; an answer that does not start with 0x0C
    is dropped without a byte."""
    for label, byte0 in (("plain", 0x11), ("v2bit_only", 0x51), ("ev_plain", 0x0B),
                         ("cli_plain", 0x04), ("cli_flagged", 0xC4), ("netconf", 0xCC),
                         ("ncs", 0xD2)):
        w.raw("n1", label)
        w.hello(label, byte0)
        w.recv(label, 64, 1.0)
    _check(w, "bad_first", 0xD1, 2, 33, first=0x0D)


@scenario(nodes=1)
def ipc_access_flags_when_off(w):
    """With the check off: a hello asking for v2 (0xD1) or v1 (0x91) is dropped without a
    byte; the 0x40 bit alone is ignored (the hello is served)."""
    for label, byte0 in (("v2", 0xD1), ("v1", 0x91), ("ev_v2", 0xCB), ("v2bit_only", 0x51)):
        w.raw("n1", label)
        w.hello(label, byte0)
        w.recv(label, 64, 1.0)
        w.close_raw(label)


@scenario(nodes=1, access_secret=SECRET)
def ipc_access_unanswered(w):
    """A challenge never answered, and one answered with too few bytes: dropped without a byte
    about 30 s after the accept (the access check is part of the hello's deadline)."""
    w.raw("n1", "silent")
    w.hello("silent", 0xD1)
    w.challenge("silent", 33)
    w.recv("silent", 1, 25.0)
    w.recv("silent", 1, 10.0)
    w.raw("n1", "short")
    w.hello("short", 0xD1)
    w.challenge("short", 33)
    w.send("short", b"\x0c" + b"\x00" * 10)
    w.recv("short", 1, 25.0)
    w.recv("short", 1, 10.0)


@scenario(nodes=1, access_secret=SECRET, quirks=True)
def ipc_access_stall_quirk(w):
    """An unanswered challenge holds back every other hello until its 30 s deadline: the
    access check runs inside ConfD's one-at-a-time hello reader. (Emulator: --confd-quirks.)"""
    w.raw("n1", "silent")
    w.hello("silent", 0xD1)
    w.challenge("silent", 33)
    w.raw("n1", "b")
    w.hello("b", 0xD1)
    w.recv("b", 33, 25.0)
    w.recv("silent", 1, 10.0)
    w.challenge("b", 33, 10.0)
    w.respond("b", SECRET)
    w.recv("b", 64, 1.0)


def _undefined():
    from confd_ha._terms import Atom

    return Atom("undefined")
