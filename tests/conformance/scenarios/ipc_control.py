"""IPC level: the HA control socket after its hello -- the token frame, orders that are not
valid, frames that are not terms, frame sizes, and the replacement of the control socket
(docs/conformance-ipc.md).

ConfD's HA subsystem reads a new control socket's token while nothing else of HA runs (see
ipc_control_token_stall_quirk), so scenarios without ``quirks`` send the token right after
the hello reply and never have an order outstanding meanwhile.
"""

import zlib

from confd_ha import _codec, _protocol
from confd_ha._terms import Atom

from . import scenario

STATUS = (4,)


def _frame_bytes(w, label, payload: bytes, what: str) -> None:
    """Send a frame holding arbitrary bytes, written as ``what``."""
    w.raws[label].sendall(_protocol.frame(payload))
    w.log("%s send-frame %s" % (label, what))


def _ask(w, label, term, shown=None):
    w.send_term(label, term, shown)
    w.recv_frame(label, 2.0)


@scenario(nodes=1)
def ipc_token_deadline(w):
    """The token frame must be complete about 2 s after the hello reply: no token, a token
    cut short, and announcements of 16 MiB + 1 and 0x7FFFFFFB bytes are dropped at that
    deadline; announcements of 0x7FFFFFFC bytes and more are dropped at once."""
    for label, data in (("none", b""), ("cut", b"\x00\x00\x00\x10abc"),
                        ("16M+1", (16 * 1024 * 1024 + 1).to_bytes(4, "big")),
                        ("max_ok", (0x7FFFFFFB).to_bytes(4, "big"))):
        w.raw("n1", label)
        w.hello(label)
        w.recv(label, 9, 2.0)
        if data:
            w.send(label, data)
        w.recv(label, 1, 1.5)
        w.recv(label, 1, 2.0)
    for label, size in (("too_big", 0x7FFFFFFC), ("huge", 0xFFFFFFFF)):
        w.raw("n1", label)
        w.hello(label)
        w.recv(label, 9, 2.0)
        w.send(label, size.to_bytes(4, "big"))
        w.recv(label, 1, 1.0)
    w.status("n1")


@scenario(nodes=2)
def ipc_token_forms(w):
    """The token frame's bytes are the token as they are: a trailing NUL is part of it, an
    empty token and a 5000-byte token are valid. Seen through a join: the secondary's token
    must equal the primary's."""
    w.subscribe("n1")
    w.control("n1", "c1", b"tok\x00")
    _ask(w, "c1", (1, b"n1"))
    w.connect("n2", token="tok")
    w.besecondary("n2", "n2", "n1", "n1")
    w.connect("n2", token="tok\x00")
    w.besecondary("n2", "n2", "n1", "n1")
    w.benone("n2")
    w.control("n1", "c2", b"")
    w.recv("c1", 1, 1.0)
    _ask(w, "c2", STATUS)
    w.connect("n2", token="")
    w.besecondary("n2", "n2", "n1", "n1")
    w.benone("n2")
    w.control("n1", "c3", b"x" * 5000)
    _ask(w, "c3", STATUS)
    w.connect("n2", token="x" * 5000)
    w.besecondary("n2", "n2", "n1", "n1")


@scenario(nodes=1)
def ipc_control_replacement(w):
    """A new HA control socket replaces the old one as soon as its token frame arrives: the old
    socket is closed at once, with nothing more sent on it."""
    w.control("n1", "a")
    _ask(w, "a", STATUS)
    w.control("n1", "b")
    w.recv("a", 64, 1.0)
    _ask(w, "b", STATUS)
    w.connect("n1", label="api1")
    w.connect("n1", label="api2")
    w.status("api1")
    w.status("api2")
    w.recv("b", 64, 1.0)


@scenario(nodes=1, quirks=True)
def ipc_control_token_stall_quirk(w):
    """While a new HA socket has sent its hello but not its token, ConfD's HA subsystem waits
    for that token (up to 2 s) and answers nothing else: an order on the current control
    socket is answered only after the newcomer is dropped. (Emulator: --confd-quirks.)"""
    w.control("n1", "a")
    _ask(w, "a", STATUS)
    w.raw("n1", "b")
    w.hello("b")
    w.recv("b", 9, 2.0)
    w.send_term("a", STATUS)
    w.recv_frame("a", 1.2)
    w.recv_frame("a", 3.0)
    w.recv("b", 1, 1.0)


@scenario(nodes=1)
def ipc_control_unknown_orders(w):
    """Terms that are not orders -- unknown codes, wrong arities, non-tuples, besecondary
    without a {NodeId, Addr} pair -- are answered with {error,21}; the socket stays usable."""
    w.control("n1", "c")
    for term in ((7,), (0,), (-1,), (1,), (3, b"x"), (4, b"x"), (6, b"x"), (5,), (), 4, [4],
                 Atom("ok"), (Atom("a"),), (2, b"n2", b"n1", 1),
                 (2, b"n2", (b"n1", (127, 79, 255, 9), 1), 1),
                 (2, b"n2", (b"n1", (127, 79, 255, 9)))):
        _ask(w, "c", term)
    _ask(w, "c", STATUS)


@scenario(nodes=1)
def ipc_control_loose_terms(w):
    """What the daemon takes as valid: node ids of any type, a term followed by extra bytes
    (ignored), a compressed term, integers in their longer encodings; floats and lists are
    not order codes."""
    w.subscribe("n1")
    w.control("n1", "c")
    _ask(w, "c", (1, 1))
    _ask(w, "c", STATUS)
    _ask(w, "c", (5, 1))
    _ask(w, "c", (1, Atom("a")))
    _ask(w, "c", (1, []))
    body = _codec.encode(STATUS)
    for payload, what in (
            (body + b"junk", "{4} + 'junk'"),
            (_codec.encode((3,)) + _codec.encode((1, b"n1")), "{3} + {1,<<'n1'>>}"),
            (b"\x83\x50" + (len(body) - 1).to_bytes(4, "big") + zlib.compress(body[1:]),
             "compressed {4}"),
            (b"\x83\x68\x01\x62\x00\x00\x00\x04", "{4} (INTEGER_EXT)"),
            (b"\x83\x68\x01\x6e\x01\x00\x04", "{4} (SMALL_BIG_EXT)"),
            (_codec.encode((4.0,)), "{4.0}"),
            (b"\x83\x6b\x00\x01\x04", "\"\\x04\" (STRING_EXT)"),
            (_codec.encode([4]), "[4]")):
        _frame_bytes(w, "c", payload, what)
        w.recv_frame("c", 2.0)
    _ask(w, "c", STATUS)


@scenario(nodes=1)
def ipc_control_bad_frames(w):
    """Frames that are not terms (junk, a bare version byte, an empty frame, a truncated
    tuple, no version byte, a term nested 100000 deep) get {error,21} and the socket stays
    usable; a frame announced at 0x7FFFFFFB bytes is waited for, one of 0x7FFFFFFC or more
    makes the daemon close the socket at once."""
    w.control("n1", "c")
    deep = b"\x83" + b"\x68\x01" * 100000 + b"\x61\x04"
    for payload, what in ((b"junk", "'junk'"), (b"\x83", "83"), (b"", "(empty)"),
                          (b"\x83\x68\x01", "83 68 01"),
                          (_codec.encode(STATUS)[1:], "68 01 61 04"),
                          (deep, "{{{...{4}...}}} 100000 deep")):
        _frame_bytes(w, "c", payload, what)
        w.recv_frame("c", 2.0)
    _ask(w, "c", STATUS)
    w.send("c", (0x7FFFFFFB).to_bytes(4, "big"))
    w.recv("c", 1, 1.5)
    w.control("n1", "d")
    w.recv("c", 1, 1.0)
    w.send("d", (0x7FFFFFFC).to_bytes(4, "big"))
    w.recv("d", 1, 1.0)
    w.control("n1", "e")
    w.send("e", b"\xff\xff\xff\xff")
    w.recv("e", 1, 1.0)
    w.status("n1")
