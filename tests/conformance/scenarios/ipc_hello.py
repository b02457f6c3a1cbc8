"""IPC level: the 9-byte hello and what the daemon does with it (docs/conformance-ipc.md).

Every scenario runs on one node and talks raw bytes to its IPC port. ConfD serves hellos one
connection at a time (see ipc_hello_stall_quirk), so a scenario without ``quirks`` never leaves
two hellos unfinished at once. Deadlines of fixed seconds are bracketed by two reads ("nothing
within 25s", then "closed" within 10 s more) instead of being timed.
"""

from . import scenario


def _try(w, label, **hello):
    """One connection, one hello, and everything the daemon sends within a second."""
    w.raw("n1", label)
    w.hello(label, **hello)
    w.recv(label, 64, 1.0)
    w.close_raw(label)


@scenario(nodes=1)
def ipc_hello_ha_valid(w):
    """A valid HA hello (11 00 52 08 02 05 00 00 00): status 0 with the daemon's versions and
    MAXDEPTH/MAXKEYLEN 12/4; then the token is awaited for about 2 s before the close."""
    w.raw("n1", "a")
    w.hello("a")
    w.recv("a", 9, 2.0)
    w.recv("a", 1, 1.2)
    w.recv("a", 1, 2.0)


@scenario(nodes=1)
def ipc_hello_newer_library(w):
    """A library newer than the daemon (protocol 85/0x08050600, 83/0x08030000): status 1 and
    a close."""
    _try(w, "a", proto=85, vsn=0x08050600)
    _try(w, "b", proto=83, vsn=0x08030000)


@scenario(nodes=1)
def ipc_hello_older_library(w):
    """Older libraries: protocol 81 is still accepted, 77 (0x07070100), 66 (0x06060000) and 0
    are refused with status 1; the library version (bytes 3-6) is not checked."""
    _try(w, "p81", proto=81, vsn=0x08010000)
    _try(w, "p77", proto=77, vsn=0x07070100)
    _try(w, "p66", proto=66, vsn=0x06060000)
    _try(w, "p0", proto=0, vsn=0)
    _try(w, "old_vsn", proto=82, vsn=0x07070100)
    _try(w, "no_vsn", proto=82, vsn=0)


@scenario(nodes=1)
def ipc_hello_maxdepth_maxkeylen(w):
    """Bytes 7-8 (the client's MAXDEPTH/MAXKEYLEN): 0/0 or at least the daemon's 12/4 are
    accepted; anything else gets status 2 and a close."""
    for depth, keylen in ((0, 0), (12, 4), (60, 18), (255, 255), (12, 3), (11, 4), (0, 4),
                          (1, 1)):
        _try(w, "md%d_%d" % (depth, keylen), maxdepth=depth, maxkeylen=keylen)
    _try(w, "bad_vsn_and_md", proto=77, maxdepth=1, maxkeylen=1)


@scenario(nodes=1)
def ipc_hello_not_a_hello(w):
    """Bytes that are not a hello: an HTTP request is read as a type-7 hello of protocol
    0x4554 (status 1, then a reset for the unread rest); unknown client types are dropped
    after their first byte (a reset when more was sent, a plain close when not)."""
    for label, data in (("http", b"GET / HTTP/1.0\r\n\r\n"), ("ff", b"\xff" * 9),
                        ("zeros", b"\x00" * 9), ("one_byte", b"\x12")):
        w.raw("n1", label)
        w.send(label, data)
        w.recv(label, 64, 1.0)


@scenario(nodes=1)
def ipc_hello_client_types(w):
    """Other client types: CAPI (3), CDB (5), MAAPI (7) and STREAM (8) get status 0 and stay
    open; the event socket (11) waits 5 s for its subscription; the CLI type 4 gets the
    single byte 0x0D; NETCONF (12), NCS (18) and unassigned types are dropped."""
    for ctype in (3, 5, 7, 8):
        _try(w, "t%d" % ctype, byte0=ctype)
    w.raw("n1", "t11")
    w.hello("t11", 11)
    w.recv("t11", 64, 4.0)
    w.recv("t11", 64, 3.0)
    for ctype in (4, 12, 18, 2, 9, 63):
        _try(w, "t%d" % ctype, byte0=ctype)


@scenario(nodes=1)
def ipc_hello_silent_connection(w):
    """A connection that sends nothing is closed about 30 s after it was accepted; the daemon
    sends nothing."""
    w.raw("n1", "a")
    w.recv("a", 1, 25.0)
    w.recv("a", 1, 10.0)
    w.status("n1")


@scenario(nodes=1)
def ipc_hello_partial(w):
    """A hello cut after 4 bytes is dropped like a silent connection, about 30 s after the
    accept."""
    w.raw("n1", "a")
    w.hello("a", cut=4)
    w.recv("a", 1, 25.0)
    w.recv("a", 1, 10.0)
    w.status("n1")


@scenario(nodes=1, quirks=True)
def ipc_hello_stall_quirk(w):
    """ConfD reads hellos one connection at a time: while a partial hello waits for its 30 s
    deadline, a valid hello on another connection is not answered; it is answered right after
    the first connection is dropped. (The emulator does this only with --confd-quirks.)"""
    w.raw("n1", "slow")
    w.hello("slow", cut=4)
    w.raw("n1", "b")
    w.hello("b")
    w.recv("b", 9, 25.0)
    w.recv("b", 9, 10.0)
    w.recv("slow", 1, 1.0)


@scenario(nodes=1, quirks=True)
def ipc_hello_stall_silent_quirk(w):
    """Two silent connections ahead of a valid hello hold it back for two 30 s deadlines, one
    after the other. (Emulator: --confd-quirks only.)"""
    w.raw("n1", "a1")
    w.raw("n1", "a2")
    w.raw("n1", "b")
    w.hello("b")
    w.recv("b", 9, 25.0)
    w.recv("a1", 1, 10.0)
    w.recv("b", 9, 20.0)
    w.recv("b", 9, 15.0)
    w.recv("a2", 1, 1.0)
