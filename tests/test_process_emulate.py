"""``confd-ha emulate`` as a real child process: the ready line, the node behind it (through
the real client), signals, options, and failures."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

import confd_ha as ha
from confd_ha import error
from confd_ha.cli import build_parser, main
from confd_ha.emulator.config import config_from_args
from confd_ha.testing.process import EMULATE_CODE, EmulatorProcess, package_env, parse_ready
from confd_ha.testing.ports import PortReservation


def emulate(address: str, *extra, r: PortReservation = None) -> EmulatorProcess:
    args = ["--ipc-address", address, "--ipc-port", "0", "--tick-timeout", "0.5"]
    if r is not None:
        args += ["--ha-port", str(r.port)]
    return EmulatorProcess(*args, *extra).start()


def client(p: EmulatorProcess, token: str = "tok") -> socket.socket:
    s = socket.socket()
    s.settimeout(5)
    ha.connect(s, token, p.ipc_address, p.ipc_port)
    return s


def test_ready_line_status_and_sigterm():
    with PortReservation(["127.0.0.91"]) as r:
        p = emulate("127.0.0.91", "--log-level", "info", r=r)
        try:
            assert p.ipc_address == "127.0.0.91" and p.ipc_port > 0
            assert p.ha_address == "127.0.0.91" and p.ha_port == r.port  # default: IPC address
            assert p.control_name == "@confd-ha-ctl:127.0.0.91:%d" % p.ipc_port
            assert p.pid == p.proc.pid == p.ready["pid"] and p.flavour == "confd"
            assert p.ready["phase"] == 2
            with client(p, token="s3cr3t-91") as s:
                assert ha.status(s) == (ha.STATE_NONE, [])
                ha.beprimary(s, "solo")
                assert ha.status(s) == (ha.STATE_PRIMARY, [])
            # The HA listener is really up on the reserved port.
            socket.create_connection(("127.0.0.91", r.port), timeout=2).close()
            t = time.monotonic()
            p.send_signal(signal.SIGTERM)
            assert p.wait(10) == 0
            assert time.monotonic() - t < 3
            err = p.stderr_text()
            assert "Traceback" not in err and "SIGTERM: stopping" in err
            assert "token replaced" in err and "s3cr3t" not in err  # never the token itself
        finally:
            p.close()


def test_sigint_stops_cleanly():
    with emulate("127.0.0.92") as p:
        with client(p) as s:
            assert ha.status(s)[0] == ha.STATE_NONE
        p.send_signal(signal.SIGINT)
        assert p.wait(10) == 0
        assert "Traceback" not in p.stderr_text()
        # Nothing listens any more: neither IPC nor the control endpoint.
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.92", p.ipc_port), timeout=2)
        c = socket.socket(socket.AF_UNIX)
        with pytest.raises(OSError):
            c.connect("\0" + p.control_name[1:])
        c.close()


def test_stdin_eof_stops_the_node():
    p = emulate("127.0.0.93")
    try:
        p.proc.stdin.close()  # as if the parent died
        assert p.wait(10) == 0
    finally:
        p.close()


def test_flags_are_honoured(tmp_path):
    with PortReservation(["127.0.0.94"]) as r:
        p = emulate("127.0.0.94", "--flavour", "nso", "--start-phase", "0", "--name", "lab-a",
                    "--data-dir", str(tmp_path / "d"), "--ha-vsn", "0x0801",
                    "--vsn", "0x06070100", r=r)
        with p:
            with client(p) as s:  # the version identity in the hello reply
                assert ha.daemon_info(s)[2] == 0x06070100
            info = p.control("info")
            assert info["flavour"] == "nso" and info["name"] == "lab-a"
            assert info["tick_timeout"] == 0.5 and info["start_phase"] == 0
            assert info["ha"] == {"address": "127.0.0.94", "port": r.port}
            assert info["data_dir"] == str(tmp_path / "d")
            with client(p) as s:  # B-31: phase 0 refuses every order but status
                with pytest.raises(error.Error) as exc:
                    ha.beprimary(s, "x")
                assert exc.value.confd_errno == error.ERR_BADSTATE
            p.control("set", path="/a", value="1")
        assert p.returncode == 0
        assert (tmp_path / "d" / "journal").exists()


def test_ipc_path_option(tmp_path):
    path = str(tmp_path / "ipc.sock")
    with emulate("127.0.0.95", "--ipc-path", path) as p:
        assert p.ipc_path == path
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(5)
        ha.connect(s, "tok", pstr=path)
        assert ha.status(s) == (ha.STATE_NONE, [])
        s.close()
    assert not os.path.exists(path)


def _config(*argv):
    args = build_parser().parse_args(["emulate", *argv])
    return config_from_args(args)


def test_defaults_follow_b01_and_the_flavour():
    c = _config()
    assert (c.flavour, c.ipc_address, c.ipc_port, c.ha_port, c.tick_timeout, c.start_phase) == \
        ("confd", "127.0.0.1", 4565, 4569, 20.0, 2)
    assert c.ha_address == "127.0.0.1"
    c = _config("--flavour", "nso", "--ipc-address", "127.0.0.5")
    assert (c.ipc_port, c.ha_port, c.ha_address) == (4569, 4570, "127.0.0.5")
    c = _config("--ipc-port", "0", "--ha-address", "0.0.0.0", "--ha-port", "7000",
                "--accept-proto-vsn", "70:82", "--fxs-fingerprint", "abc",
                "--ha-config-fingerprint", "x", "--tick-timeout", "0", "--proto-vsn", "75",
                "--vsn", "0x07030000", "--ha-vsn", "9", "--ipc-access-file", __file__)
    assert (c.ipc_port, c.ha_address, c.ha_port, c.accepted_proto_vsns, c.fxs_fp,
            c.ha_config_fp, c.tick_timeout) == (0, "0.0.0.0", 7000, (70, 82), b"abc", b"x", 0.0)
    assert (c.proto_vsn, c.vsn, c.ha_vsn, c.ipc_access_file) == (75, 0x07030000, 9, __file__)


def test_confd_quirks_off_by_default_and_ipc_deadlines_as_confd():
    c = _config()
    assert c.confd_quirks is False
    assert (c.init_timeout, c.token_timeout, c.subscribe_timeout) == (30.0, 2.0, 5.0)
    assert (c.maxdepth, c.maxkeylen, c.proto_window) == (12, 4, (81, 82))
    assert _config("--confd-quirks").confd_quirks is True
    assert _config("--proto-vsn", "86").proto_window == (85, 86)


@pytest.mark.parametrize("argv", [
    ["--accept-proto-vsn", "nonsense"],
    ["--ipc-address", "not-an-ip"],
    ["--ha-port", "0"],
    ["--tick-timeout", "-1"],
    ["--log-level", "loud"],
    ["--ipc-access-file", "/nonexistent/secret"],
    ["--start-phase", "1"],
    ["--vsn", "0x1FFFFFFFF"],
    ["--proto-vsn", "x"],
])
def test_bad_options_exit_2(argv):
    out, err = io.StringIO(), io.StringIO()
    assert main(["emulate", *argv], out, err) == 2
    assert out.getvalue() == "" and "Traceback" not in err.getvalue() and err.getvalue()


def test_port_in_use_exits_3():
    blocker = socket.socket()
    blocker.bind(("127.0.0.96", 0))
    blocker.listen()
    port = blocker.getsockname()[1]
    try:
        proc = subprocess.run(
            [sys.executable, "-c", EMULATE_CODE, "emulate", "--ipc-address", "127.0.0.96",
             "--ipc-port", str(port), "--ha-port", str(port)],
            env=package_env(), capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    finally:
        blocker.close()
    assert proc.returncode == 3, proc.stderr
    assert "cannot listen on 127.0.0.96:%d" % port in proc.stderr
    assert "ready" not in proc.stdout and "Traceback" not in proc.stderr


def test_parse_ready():
    f = parse_ready("ready ipc=[::1]:4565 ha=[::1]:4569 control=@confd-ha-ctl:::1:4565 "
                    "flavour=confd phase=0 pid=7")
    assert (f["ipc_address"], f["ipc_port"], f["ha_address"], f["ha_port"], f["phase"]) == \
        ("::1", 4565, "::1", 4569, 0)
    with pytest.raises(ValueError):
        parse_ready("started")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_repeated_signals_still_exit_0(sig):
    """A supervisor repeating its signal: the second one during the stop kills the node at
    once, later ones (while the interpreter exits) are ignored -- still exit status 0."""
    with PortReservation(["127.0.0.97"]) as r:
        with emulate("127.0.0.97", r=r) as p:
            with client(p) as s:
                ha.beprimary(s, "x")
            for _ in range(25):
                p.send_signal(sig)
                time.sleep(0.002)   # what is tested: a signal repeated every 2 ms
            assert p.wait(10) == 0
            assert "Traceback" not in p.stderr_text()


def test_stdin_eof_option_with_a_file_as_stdin(tmp_path):
    """stdin that epoll cannot watch (a regular file) is read by a thread: EOF still stops."""
    f = tmp_path / "input"
    f.write_bytes(b"x" * 100)
    with open(f, "rb") as stdin:
        proc = subprocess.run(
            [sys.executable, "-c", EMULATE_CODE, "emulate", "--ipc-address", "127.0.0.98",
             "--ipc-port", "0", "--exit-on-stdin-eof"],
            env=package_env(), capture_output=True, text=True, timeout=30, stdin=stdin)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ready ipc=127.0.0.98:") and "Traceback" not in proc.stderr


def test_data_dir_failures_exit_1(tmp_path):
    def run(*argv):
        return subprocess.run([sys.executable, "-c", EMULATE_CODE, "emulate", "--ipc-port", "0",
                               "--ipc-address", "127.0.0.99", *argv], env=package_env(),
                              capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)

    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    proc = run("--data-dir", str(blocker / "sub"))
    assert proc.returncode == 1 and "cannot start the node" in proc.stderr
    with emulate("127.0.0.99", "--data-dir", str(tmp_path / "d")):  # holds the lock
        proc = run("--data-dir", str(tmp_path / "d"))
    assert proc.returncode == 1 and "cannot open the datastore" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
