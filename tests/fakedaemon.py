"""A scripted fake ConfD daemon for the client tests (real sockets, tests only).

The daemon listens on TCP v4 (127.0.0.1), TCP v6 (::1) or an AF_UNIX path in a private temp
directory. Every accepted connection runs one *script*: a list of steps such as "expect 9
bytes", "send these bytes", "close", "reset". Whatever the client sends is recorded, so a test
can assert the exact bytes of the hello, of the access-check response, of the token frame and of
every order. After its script a connection keeps reading (and recording) until the client
closes it, so a test can also prove that the client sent nothing more.

The bytes the daemon sends never come from ``confd_ha``'s own codec: they are the worked frames
of wire-protocol.md §12 (``SPEC``), Erlang's golden vectors (``golden.terms.load``) or the
independent reference codec (``refcodec``).

Usage, with the ``daemons`` fixture of conftest.py::

    d = daemons(script(handshake(), expect_frame("token"), expect_frame("order"), send(OK)))
    s = d.client_socket()
    ha.connect(s, TOKEN, **d.where)
    ha.beprimary(s, "n1")
    s.close()
    rec = d.finish()[0]
    assert rec["order"] == SPEC["beprimary_n1"]
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import struct
import tempfile
import threading
import time
import traceback
import tracemalloc
from typing import Callable

import pytest

import refcodec
from golden.terms import load as _load_golden
from net_helpers import accept_until

A = refcodec.Atom
GOLDEN = _load_golden()

# A token that must never leak: its ASCII core is searched for in exception texts and logs.
SECRET_MARK = "ZXQ-secret-7731"
TOKEN = "t\u00f8ken-" + SECRET_MARK          # non-ASCII on purpose: the frame holds UTF-8
TOKEN_BYTES = TOKEN.encode("utf-8")

STEP_TIMEOUT = 2.0   # longest a daemon step waits for the client


def hx(text: str) -> bytes:
    return bytes.fromhex(text)


def frame(payload: bytes) -> bytes:
    """4-byte big-endian length + payload (wire-protocol §5)."""
    return struct.pack(">I", len(payload)) + payload


def term_frame(term) -> bytes:
    """A frame holding ``term`` encoded by the reference codec."""
    return frame(refcodec.encode(term))


def golden_frame(name: str) -> bytes:
    """A frame holding the Erlang-made golden vector ``name``."""
    return frame(GOLDEN[name])


# wire-protocol.md §12, as printed there (hex copied from the document, not computed here),
# except the client hello's last two bytes: 14 09 (MAXDEPTH 20, MAXKEYLEN 9), as libconfd
# 8.2.5 sends them (observed by tests/differential; the spec's W-04 said 00 00).
SPEC = {
    # §12.1 handshake
    "hello": hx("11 00 52 08 02 05 00 14 09"),
    "hello_v2": hx("D1 00 52 08 02 05 00 14 09"),
    "hello_v1": hx("91 00 52 08 02 05 00 14 09"),
    "reply_accepted": hx("00 00 52 08 02 05 00 3C 12"),
    "reply_rejected": hx("01 00 52 08 02 05 00 3C 12"),
    "challenge_v2": hx("0B 00 01 02 03 04 05 06 07 08 09 0A 0B 0C 0D 0E 0F"
                       "10 11 12 13 14 15 16 17 18 19 1A 1B 1C 1D 1E 1F"),
    "response_v2": hx("0C 0D 79 43 02 8D 06 F7 22 E3 22 33 E6 0F 3A F8 08"
                      "20 7D 30 14 BC 42 FA F5 CD 56 11 9F 10 3E 20 1A"),
    "challenge_v1": hx("0B 00 01 02 03 04 05 06 07 08 09 0A 0B 0C 0D 0E 0F"),
    "response_v1": hx("0C C3 B2 64 5F 7D C0 82 E7 DC 50 F8 39 77 19 81 50"),
    "access_ok": hx("00"),
    # §12.2 HA control socket
    "token_abc": hx("00 00 00 03 61 62 63"),
    "beprimary_n1": hx("00 00 00 0C 83 68 02 61 01 6D 00 00 00 02 6E 31"),
    "besecondary_v4_wait1": hx(
        "00 00 00 21 83 68 04 61 02 6D 00 00 00 02 6E 32 68 02 6D 00 00 00 02 6E 31"
        "68 04 61 0A 61 00 61 00 61 01 61 01"),
    "besecondary_v4_wait0": hx(
        "00 00 00 21 83 68 04 61 02 6D 00 00 00 02 6E 32 68 02 6D 00 00 00 02 6E 31"
        "68 04 61 0A 61 00 61 00 61 01 61 00"),
    "besecondary_v6_wait0": hx(
        "00 00 00 29 83 68 04 61 02 6D 00 00 00 02 6E 32 68 02 6D 00 00 00 02 6E 31"
        "68 08 61 00 61 00 61 00 61 00 61 00 61 00 61 00 61 01 61 00"),
    "benone": hx("00 00 00 05 83 68 01 61 03"),
    "getstatus": hx("00 00 00 05 83 68 01 61 04"),
    "secondary_dead_n2": hx("00 00 00 0C 83 68 02 61 05 6D 00 00 00 02 6E 32"),
    "berelay": hx("00 00 00 05 83 68 01 61 06"),
    "reply_ok": hx("00 00 00 06 83 64 00 02 6F 6B"),
    "reply_error_17": hx("00 00 00 0D 83 68 02 64 00 05 65 72 72 6F 72 61 11"),
    "reply_error_26": hx("00 00 00 0D 83 68 02 64 00 05 65 72 72 6F 72 61 1A"),
    "reply_error_21": hx("00 00 00 0D 83 68 02 64 00 05 65 72 72 6F 72 61 15"),
    "reply_error_28_reason": hx(
        "00 00 00 1C 83 68 03 64 00 05 65 72 72 6F 72 61 1C 6D 00 00 00 0A"
        "62 61 64 20 74 6F 6B 65 6E 00"),
    "status_none": hx("00 00 00 06 83 68 02 61 01 6A"),
    "status_secondary": hx(
        "00 00 00 1E 83 68 02 61 02 6C 00 00 00 01 68 02 6D 00 00 00 02 6E 31"
        "68 04 61 0A 61 00 61 00 61 01 6A"),
    "status_primary_v4": hx(
        "00 00 00 1E 83 68 02 61 03 6C 00 00 00 01 68 02 6D 00 00 00 02 6E 32"
        "68 04 61 0A 61 00 61 00 61 02 6A"),
    "status_primary_v6": hx(
        "00 00 00 2C 83 68 02 61 03 6C 00 00 00 01 68 02 6D 00 00 00 02 6E 32"
        "68 08 62 00 00 20 01 62 00 00 0D B8 61 00 61 00 61 00 61 00 61 00 61 02 6A"),
    "status_relay": hx(
        "00 00 00 31 83 68 02 61 04 6C 00 00 00 02 68 02 6D 00 00 00 02 6E 31"
        "68 04 61 0A 61 00 61 00 61 01 68 02 6D 00 00 00 02 6E 33 68 04 61 0A 61 00 61 00"
        "61 03 6A"),
}

# Malformed reply frames (W-27) that every read site of the client refuses with
# ERR_PROTOUSAGE; test_client_io.py and test_hostile_client.py add their own to these.
MALFORMED = {
    "trailing_garbage": frame(hx("83 64 00 02 6F 6B 00")),
    "trailing_term": frame(hx("83 64 00 02 6F 6B 83 64 00 02 6F 6B")),
    "compressed": frame(hx("83 50 00 00 00 06 78 9c cb 4f 02 00 01 4d 00 db")),
    "no_version_byte": frame(hx("64 00 02 6F 6B")),
    "empty_payload": frame(b""),
    "pid": frame(hx("83 58 64 00 03 61 40 62 00 00 00 01 00 00 00 00 00 00 00 00")),
    "map": frame(hx("83 74 00 00 00 00")),
    "unknown_tag_255": frame(hx("83 FF")),
    "nested_tuple_100000": frame(b"\x83" + b"\x68\x01" * 100_000 + b"\x64\x00\x02ok"),
    "nested_list_100000": frame(b"\x83" + b"\x6C\x00\x00\x00\x01" * 100_000 + b"\x6A" * 100_001),
}

SECRET = b"s3cret"   # the §4.6 secret


def hello_reply(status: int = 0, proto: int = 82, vsn: int = 0x08020500,
                maxdepth: int = 60, maxkeylen: int = 18) -> bytes:
    """A 9-byte daemon hello reply (wire-protocol §3.2), laid out by hand."""
    return struct.pack(">BHIBB", status, proto, vsn, maxdepth, maxkeylen)


def hello_bytes(byte0: int = 0x11, proto: int = 82, vsn: int = 0x08020500) -> bytes:
    """The 9-byte client hello the client is expected to send (bytes 7-8: 20 and 9, as
    libconfd 8.2.5)."""
    return struct.pack(">BHIBB", byte0, proto, vsn, 20, 9)


# ---------------------------------------------------------------- steps


class _Stop(Exception):
    """Ends a script early (the client closed, or a step timed out)."""


class Conn:
    """What one accepted connection saw. ``rec[name]`` is the bytes an expect step recorded."""

    def __init__(self, sock: socket.socket, peer):
        self.sock = sock
        self.peer = peer
        self.received: dict[str, bytes] = {}
        self.times: dict[str, float] = {}
        self.all = bytearray()            # every byte the client sent, in order
        self.extra = b""                  # bytes that arrived after the script
        self.client_closed = False        # EOF (or reset) seen from the client
        self.notes: list[str] = []        # script problems (timeouts, short reads)
        self.done = threading.Event()

    def __getitem__(self, name: str) -> bytes:
        if name not in self.received:
            raise AssertionError("daemon never received %r; got %r (notes: %s)"
                                 % (name, bytes(self.all), self.notes))
        return self.received[name]

    def __contains__(self, name: str) -> bool:
        return name in self.received

    def mark(self, name: str) -> None:
        self.times[name] = time.monotonic()

    def _recv(self, n: int) -> bytes:
        try:
            data = self.sock.recv(n)
        except socket.timeout:
            raise
        except OSError:
            data = b""
        if not data:
            self.client_closed = True
        self.all += data
        return data

    def read_exact(self, n: int, name: str) -> bytes:
        buf = bytearray()
        deadline = time.monotonic() + STEP_TIMEOUT
        while len(buf) < n:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self._recv(n - len(buf))
            except socket.timeout:
                self.notes.append("timeout in %s after %d of %d bytes" % (name, len(buf), n))
                self.received[name + ":partial"] = bytes(buf)
                raise _Stop
            if not chunk:
                self.notes.append("EOF in %s after %d of %d bytes" % (name, len(buf), n))
                self.received[name + ":partial"] = bytes(buf)
                raise _Stop
            buf += chunk
        return bytes(buf)


class Step:
    """One thing the daemon does on a connection: ``run(conn, daemon)``."""

    def __init__(self, run: Callable[[Conn, "FakeDaemon"], object]):
        self.run = run


def expect(n: int, name: str) -> Step:
    """Read exactly ``n`` bytes and record them as ``name``."""

    def run(c: Conn, daemon: "FakeDaemon") -> None:
        c.received[name] = c.read_exact(n, name)
        c.mark(name)

    return Step(run)


def expect_frame(name: str) -> Step:
    """Read one frame (4-byte length + payload) and record the whole frame as ``name``."""

    def run(c: Conn, daemon: "FakeDaemon") -> None:
        header = c.read_exact(4, name)
        (size,) = struct.unpack(">I", header)
        if size > 1 << 20:
            c.notes.append("absurd frame size %d in %s" % (size, name))
            raise _Stop
        c.received[name] = header + c.read_exact(size, name)
        c.mark(name)

    return Step(run)


def send(data: bytes) -> Step:
    return Step(lambda c, daemon: c.sock.sendall(data))


def drip(data: bytes, delay: float = 0.005) -> Step:
    """Send ``data`` one byte at a time, ``delay`` seconds apart."""

    def run(c: Conn, daemon: "FakeDaemon") -> None:
        for i in range(len(data)):
            c.sock.sendall(data[i:i + 1])
            time.sleep(delay)

    return Step(run)


def sleep(seconds: float) -> Step:
    """Wait ``seconds`` (less if the daemon stops)."""
    return Step(lambda c, daemon: daemon.stopping.wait(seconds))


def mark(name: str) -> Step:
    """Note the time as ``name`` (the connection's ``times``)."""
    return Step(lambda c, daemon: c.mark(name))


def close() -> Step:
    """A clean close: FIN to the client (it reads EOF), then keep recording until it closes.

    (A plain close() with unread input would send RST instead; ``reset`` does that on purpose.)
    """

    def run(c: Conn, daemon: "FakeDaemon") -> None:
        c.mark("close")
        try:
            c.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    return Step(run)


def reset() -> Step:
    """An abortive close (SO_LINGER 0): the client sees ECONNRESET."""

    def run(c: Conn, daemon: "FakeDaemon") -> None:
        c.mark("reset")
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.sock.close()
        raise _Stop

    return Step(run)


def call(fn: Callable[[Conn], object]) -> Step:
    """Run ``fn(conn)`` inside the script (for tests that need a hook)."""
    return Step(lambda c, daemon: fn(c))


def handshake(reply: bytes = SPEC["reply_accepted"]) -> list:
    """The daemon side of a plain handshake: read the hello, send ``reply``."""
    return [expect(9, "hello"), send(reply)]


def ha_connected(reply: bytes = SPEC["reply_accepted"]) -> list:
    """Handshake plus the token frame."""
    return handshake(reply) + [expect_frame("token")]


def script(*steps) -> list:
    """Flatten steps and lists of steps into one script."""
    out = []
    for s in steps:
        if isinstance(s, (list, tuple)):
            out.extend(script(*s))
        else:
            out.append(s)
    return out


# ---------------------------------------------------------------- the daemon


def ipv6_available() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


FAMILIES = {"inet": socket.AF_INET, "inet6": socket.AF_INET6, "unix": socket.AF_UNIX}


class FakeDaemon:
    """A listening socket plus one thread per accepted connection, each running its script.

    ``scripts[i]`` is the script of the i-th accepted connection; connections beyond the
    scripts only record what they receive.
    """

    def __init__(self, *scripts, family: str = "inet"):
        self.scripts = [script(s) for s in scripts]
        self.family = family
        self.conns: list[Conn] = []
        self.threads: list[threading.Thread] = []
        self.stopping = threading.Event()
        self.errors: list[str] = []
        self._accepted = threading.Condition()
        self._tmpdir = None
        af = FAMILIES[family]
        self.listener = socket.socket(af, socket.SOCK_STREAM)
        if family == "unix":
            self._tmpdir = tempfile.mkdtemp(prefix="cfdha-")
            self.path = os.path.join(self._tmpdir, "ipc.sock")
            self.listener.bind(self.path)
            self.where = {"pstr": self.path}
        else:
            host = "127.0.0.1" if family == "inet" else "::1"
            self.listener.bind((host, 0))
            self.port = self.listener.getsockname()[1]
            self.host = host
            self.where = {"ip": host, "port": self.port}
        self.listener.listen(8)
        self.listener.settimeout(0.05)
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True,
                                          name="fakedaemon-accept")
        self._acceptor.start()

    @property
    def address(self):
        return self.path if self.family == "unix" else (self.host, self.port)

    def client_socket(self, timeout: float | None = 2.0) -> socket.socket:
        """A fresh, unconnected client socket of the daemon's family."""
        s = socket.socket(FAMILIES[self.family], socket.SOCK_STREAM)
        s.settimeout(timeout)
        if self.family != "unix":
            # Without this, Nagle + the daemon's delayed ACK hold back the order sent right
            # after the token frame by ~40 ms; it changes timing only, never the bytes.
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def _accept_loop(self) -> None:
        accept_until(self.listener, self.stopping, self._accepted_one)

    def _accepted_one(self, sock: socket.socket, peer) -> None:
        c = Conn(sock, peer)
        i = len(self.conns)
        steps = self.scripts[i] if i < len(self.scripts) else []
        t = threading.Thread(target=self._serve, args=(c, steps), daemon=True,
                             name="fakedaemon-conn%d" % i)
        with self._accepted:
            self.conns.append(c)
            self.threads.append(t)
            self._accepted.notify_all()
        t.start()

    def _serve(self, c: Conn, steps) -> None:
        try:
            try:
                for step in steps:
                    step.run(c, self)
                self._drain(c)
            except _Stop:
                pass
            except OSError as exc:
                c.notes.append("daemon socket error: %r" % exc)
        except BaseException:  # pragma: no cover - a bug in the fake daemon itself
            self.errors.append(traceback.format_exc())
        finally:
            try:
                c.sock.close()
            except OSError:
                pass
            c.done.set()

    def _drain(self, c: Conn) -> None:
        """Record whatever else the client sends until it closes (or the daemon stops)."""
        start = len(c.all)
        c.sock.settimeout(0.05)
        while not self.stopping.is_set():
            try:
                data = c._recv(65536)
            except socket.timeout:
                continue
            if not data:
                break
        c.extra = bytes(c.all[start:])

    def conn(self, i: int = 0, timeout: float = STEP_TIMEOUT) -> Conn:
        """The i-th accepted connection (waits for it to be accepted)."""
        with self._accepted:
            if not self._accepted.wait_for(lambda: len(self.conns) > i, timeout):
                raise AssertionError("the client never opened connection #%d" % i)
            return self.conns[i]

    def finish(self, timeout: float = STEP_TIMEOUT) -> list:
        """Wait for every connection's script and drain to end (the client must have closed
        its sockets); returns the connection records."""
        deadline = time.monotonic() + timeout
        for c in list(self.conns):
            if not c.done.wait(max(0.0, deadline - time.monotonic())):
                raise AssertionError("a fake-daemon connection did not finish; notes: %s"
                                     % c.notes)
        assert not self.errors, self.errors
        return list(self.conns)

    def stop(self) -> None:
        self.stopping.set()
        try:
            self.listener.shutdown(socket.SHUT_RDWR)   # wakes the blocked accept() on Linux
        except OSError:
            pass
        try:
            self.listener.close()
        except OSError:
            pass
        self._acceptor.join(STEP_TIMEOUT)
        for c in list(self.conns):
            try:
                c.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in list(self.threads):
            t.join(STEP_TIMEOUT)
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
        assert not self.errors, self.errors


# ---------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True)
def clean_client_env(monkeypatch):
    """No IPC access file from the surroundings; client settings restored afterwards."""
    import confd_ha
    from confd_ha import _handshake

    monkeypatch.delenv("CONFD_IPC_ACCESS_FILE", raising=False)
    monkeypatch.delenv("NCS_IPC_ACCESS_FILE", raising=False)
    saved = dict(vars(_handshake.SETTINGS))
    saved_consts = (confd_ha.LIB_PROTO_VSN, confd_ha.LIB_VSN)
    yield
    for key, value in saved.items():
        setattr(_handshake.SETTINGS, key, value)
    confd_ha.LIB_PROTO_VSN, confd_ha.LIB_VSN = saved_consts


@pytest.fixture(autouse=True)
def token_never_logged(caplog):
    """Every test runs with DEBUG logging captured; the token must never show up in it."""
    caplog.set_level(logging.DEBUG)
    yield
    assert SECRET_MARK not in caplog.text
    for rec in caplog.records:
        assert SECRET_MARK not in repr(rec.args) and SECRET_MARK not in str(rec.msg)


def assert_no_secret(exc: BaseException) -> None:
    """The token must appear nowhere in an exception: str, repr, args, traceback text."""
    texts = [str(exc), repr(exc), repr(exc.args), repr(getattr(exc, "__dict__", ""))]
    texts.append("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    for text in texts:
        assert SECRET_MARK not in text, text


def use_access_file(monkeypatch, tmp_path, content: bytes = SECRET) -> None:
    """Make ``content`` the IPC access secret: a file in ``tmp_path`` that
    $CONFD_IPC_ACCESS_FILE names."""
    p = tmp_path / "secret"
    p.write_bytes(content)
    monkeypatch.setenv("CONFD_IPC_ACCESS_FILE", str(p))


def peak_during(fn):
    """(result, tracemalloc peak in bytes) of ``fn()``."""
    tracemalloc.start()
    try:
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


def raises(exc_type, fn, *args, **kwargs):
    """Call ``fn`` and return the exception of type ``exc_type`` it raised (checked for the
    token). The exception must be exactly ``exc_type`` or a subclass."""
    with pytest.raises(exc_type) as info:
        fn(*args, **kwargs)
    assert_no_secret(info.value)
    return info.value
