"""Smoke test of an installed confd_ha (run by tools/build_wheel.sh in each fresh venv).

Run it from a directory outside the source tree, with the interpreter to test:

    python tools/wheel_smoke.py

It checks that the package imports with its compiled core (the abi3 module, of the package's
version), then makes real calls through the core over loopback TCP: a tiny scripted daemon
answers the hello and a status request, and the client's connect() and status() must give
the expected result. Finally it runs the installed ``confd-ha demo`` (a whole HA lifecycle on
an embedded emulated cluster). Prints one line per check; exits non-zero on a failure.
"""

import os
import socket
import subprocess
import sys
import sysconfig
import threading

import confd_ha as ha
import confd_ha._core as core
from confd_ha import _codec, _protocol

HERE = os.path.dirname(os.path.abspath(__file__))


def check_import() -> None:
    if os.path.dirname(os.path.dirname(os.path.abspath(ha.__file__))) == os.path.dirname(HERE):
        sys.exit("smoke: confd_ha was imported from the source tree; run from elsewhere")
    version = core.ffi.string(core.lib.chd_version()).decode()
    assert version == ha.__version__, (version, ha.__version__)
    assert core.__file__.endswith(".abi3.so"), core.__file__
    print("import ok: confd_ha %s from %s, core %s" % (ha.__version__, ha.__file__,
                                                      os.path.basename(core.__file__)))


def fake_daemon(listener: socket.socket, seen: list) -> None:
    """Accept one HA control connection: hello, token, then answer one status request."""
    conn, _ = listener.accept()
    with conn:
        f = conn.makefile("rb")
        seen.append(_protocol.parse_hello(f.read(_protocol.HELLO_LEN)))
        conn.sendall(_protocol.build_hello(_protocol.Hello(0, 82, 0x08020500, 12, 4)))
        size = int.from_bytes(f.read(4), "big")
        seen.append(f.read(size))                       # the token frame
        size = int.from_bytes(f.read(4), "big")
        seen.append(_codec.decode(f.read(size)))      # the status request
        conn.sendall(_protocol.encode_status(3, [(b"n2", (10, 0, 0, 2)),
                                                 (b"n3", (0x2001, 0xDB8, 0, 0, 0, 0, 0, 2))]))


def check_calls() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    seen: list = []
    thread = threading.Thread(target=fake_daemon, args=(listener, seen), daemon=True)
    thread.start()
    with socket.socket() as s:
        s.settimeout(10)
        ha.connect(s, "smoke-token", "127.0.0.1", listener.getsockname()[1])
        result = ha.status(s)
    thread.join(10)
    listener.close()
    expected = (3, [{"nodeid": "n2", "address": "10.0.0.2"},
                    {"nodeid": "n3", "address": "2001:db8::2"}])
    assert result == expected, result
    assert seen[0].byte0 == 17 and seen[1] == b"smoke-token", seen
    print("calls ok: connect() and status() over loopback gave %r" % (result,))


def check_demo() -> None:
    scripts = sysconfig.get_path("scripts")
    command = os.path.join(scripts, "confd-ha")
    run = subprocess.run([command, "demo"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         universal_newlines=True, timeout=120)
    if run.returncode != 0:
        sys.exit("smoke: 'confd-ha demo' failed (exit %d):\n%s" % (run.returncode, run.stdout))
    print("demo ok: 'confd-ha demo' exited 0 (%d lines of output)" % len(run.stdout.splitlines()))


if __name__ == "__main__":
    check_import()
    check_calls()
    check_demo()
    print("smoke test ok on Python %d.%d.%d" % sys.version_info[:3])
