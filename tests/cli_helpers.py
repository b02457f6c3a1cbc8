"""Helpers for the tests that run ``confd-ha`` as a user would: the installed console script
(or ``python -c`` with the same ``confd_ha``), a clean environment, and small TCP servers on
loopback that are *not* ConfD (an HTTP server, one that never answers, one that hangs up,
one that answers the hello and then nothing)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import threading

import confd_ha
from net_helpers import accept_until

TOKEN = "cli-user-t0ken-Pq2"
HELLO_REPLY = bytes.fromhex("00 00 52 08 02 05 00 3C 12")  # ConfD 8.2.5's "accepted"
_CLEARED = ("CONFD_HA_TOKEN", "CONFD_IPC_ADDR", "CONFD_IPC_PORT", "NCS_IPC_ADDR",
            "NCS_IPC_PORT", "CONFD_IPC_ACCESS_FILE", "NCS_IPC_ACCESS_FILE")


def command() -> list:
    """The console script when it is installed next to this interpreter, else ``python -c``."""
    script = shutil.which("confd-ha", path=os.path.dirname(sys.executable))
    if script:
        return [script]
    return [sys.executable, "-c",
            "import sys; del sys.path[0]; from confd_ha.cli import main; sys.exit(main(sys.argv[1:]))"]


def environment(token=TOKEN, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in _CLEARED}
    root = os.path.dirname(os.path.dirname(confd_ha.__file__))
    env["PYTHONPATH"] = os.pathsep.join([root] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH")
                                                  else []))
    env["LC_ALL"] = "C.UTF-8"
    if token is not None:
        env["CONFD_HA_TOKEN"] = token
    env.update(extra)
    return env


def run(argv, env=None, stdin=subprocess.DEVNULL, timeout=30, cwd=None):
    """Run ``confd-ha ARGV`` to completion: ``CompletedProcess`` with text output (undecodable
    bytes escaped); the token appears in neither stream."""
    p = subprocess.run(command() + argv, stdin=stdin, capture_output=True, env=env or
                       environment(), timeout=timeout, cwd=cwd)
    p.stdout = p.stdout.decode("utf-8", "backslashreplace")
    p.stderr = p.stderr.decode("utf-8", "backslashreplace")
    assert TOKEN not in p.stdout and TOKEN not in p.stderr
    return p


class Server:
    """A TCP server on ``address`` whose connections each run ``handler(conn)`` in a thread;
    a context manager. ``port`` is its port."""

    def __init__(self, handler, address: str = "127.0.0.1"):
        self.handler = handler
        self.sock = socket.socket()
        self.sock.bind((address, 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)     # so that close() ends the accept loop at once
        self.port = self.sock.getsockname()[1]
        self.stopped = threading.Event()
        self.conns: list = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        accept_until(self.sock, self.stopped, self._accepted)

    def _accepted(self, conn: socket.socket, _peer) -> None:
        conn.settimeout(None)
        self.conns.append(conn)
        threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn) -> None:
        try:
            self.handler(conn, self.stopped)
        except OSError:
            pass

    def close(self) -> None:
        self.stopped.set()
        self.sock.close()
        for c in self.conns:
            with contextlib.suppress(OSError):
                c.close()
        self.thread.join(5)

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def blocked(pid: int) -> bool:
    """Whether the process's main thread sleeps in the kernel (state S in /proc): a
    single-threaded command that has connected is then blocked on its server."""
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rpartition(")")[2].split()[0] == "S"


def http(conn, stopped) -> None:
    """An HTTP server's answer to anything: 400 Bad Request, then hang up."""
    conn.settimeout(2)
    try:
        conn.recv(4096)
    except OSError:
        pass
    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    conn.close()


def silent(conn, stopped) -> None:
    """Accept and never answer (nor read)."""
    stopped.wait(60)


def hang_up(conn, stopped) -> None:
    conn.close()


def hello_then_silent(conn, stopped) -> None:
    """Answer the hello as ConfD does, then read whatever comes and never answer."""
    conn.settimeout(1)
    buf = b""
    while len(buf) < 9 and not stopped.is_set():
        try:
            chunk = conn.recv(9 - len(buf))
        except socket.timeout:
            continue
        if not chunk:
            return
        buf += chunk
    conn.sendall(HELLO_REPLY)
    while not stopped.is_set():
        try:
            if not conn.recv(4096):
                return
        except socket.timeout:
            continue
