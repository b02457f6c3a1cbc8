"""``confd-ha cdb`` and the control endpoint (B-33) against ``confd-ha emulate`` processes and
in-process nodes: datastore actions, control actions, exit codes and hostile requests."""

from __future__ import annotations

import io
import json
import os
import socket
import time

import pytest

import confd_ha as ha
from confd_ha import error, events
from confd_ha.cli import main
from confd_ha.testing.control import ControlClient, ControlError, Unreachable
from confd_ha.testing.process import EmulatorProcess
from confd_ha.testing.cluster import Cluster
from confd_ha.testing.ports import PortReservation
from ipc_helpers import json_exchange
from waiting import wait_until


def cdb(p, *argv, json_out: bool = False):
    """Run ``confd-ha cdb`` in-process against node ``p``; (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    args = ["cdb", "--ipc-address", p.ipc_address, "--ipc-port", str(p.ipc_port),
            "--timeout", "10"]
    if json_out:
        args.append("--json")
    rc = main(args + list(argv), out, err)
    assert "Traceback" not in err.getvalue()
    return rc, out.getvalue(), err.getvalue()


def client(p, token: str = "tok") -> socket.socket:
    s = socket.socket()
    s.settimeout(5)
    ha.connect(s, token, p.ipc_address, p.ipc_port)
    return s


@pytest.fixture
def pair():
    """Two ``confd-ha emulate`` processes on 127.0.0.101/102 sharing a reserved HA port:
    n1 primary, n2 its secondary (joined through the real client)."""
    addrs = ["127.0.0.101", "127.0.0.102"]
    with PortReservation(addrs) as r:
        procs = []
        try:
            for a in addrs:
                procs.append(EmulatorProcess("--ipc-address", a, "--ipc-port", "0",
                                             "--ha-port", str(r.port), "--tick-timeout", "0.2")
                             .start())
            p1, p2 = procs
            with client(p1) as s:
                ha.beprimary(s, "n1")
            with client(p2) as s:
                ha.besecondary(s, "n2", "n1", p1.ipc_address, 1)
            wait_until(lambda: p1.control("info")["status"])  # p1 processed the arrival (B-24)
            yield p1, p2
        finally:
            for p in procs:
                p.close()
            for p in procs:
                assert p.returncode == 0, p.stderr_text()


def test_datastore_actions_text_and_json():
    with EmulatorProcess("--ipc-address", "127.0.0.103", "--ipc-port", "0",
                         "--ha-port", "1") as p:
        rc, out, _ = cdb(p, "txid")
        assert (rc, out) == (0, "initial\n")
        rc, out, _ = cdb(p, "set", "/sys/host", "alpha beta")
        txid = out.strip()
        assert rc == 0 and txid.startswith("confd@127.0.0.103-1-")
        assert cdb(p, "get", "/sys/host")[:2] == (0, "alpha beta\n")
        cdb(p, "set", "/sys/x", "1")
        cdb(p, "set", "/other", "2")
        assert cdb(p, "show")[:2] == (0, "/other 2\n/sys/host alpha beta\n/sys/x 1\n")
        assert cdb(p, "show", "/sys")[1] == "/sys/host alpha beta\n/sys/x 1\n"
        rc, out, _ = cdb(p, "get", "/sys/x", json_out=True)
        assert rc == 0 and json.loads(out) == {"path": "/sys/x", "value": "1"}
        rc, out, _ = cdb(p, "delete", "/sys", json_out=True)
        new = json.loads(out)["txid"]
        assert rc == 0 and new != txid and cdb(p, "txid")[1].strip() == new
        rc, out, err = cdb(p, "get", "/sys/x")
        assert (rc, out) == (1, "")
        assert err == "confd-ha: no value at '/sys/x' on the emulated node at %s:%d\n" % (
            p.ipc_address, p.ipc_port)
        rc, out, _ = cdb(p, "get", "/sys/x", json_out=True)
        assert rc == 1 and json.loads(out)["error"]["kind"] == "no-value"
        rc, out, _ = cdb(p, "show", json_out=True)
        assert json.loads(out)["items"] == [["/other", "2"]]
        # The datastore seen by the node itself (through a second route: the info snapshot).
        assert p.control("info")["txid"] == new


def test_write_on_secondary_refused_with_exit_1(pair):
    p1, p2 = pair
    rc, out, _ = cdb(p1, "set", "/a", "1")
    assert rc == 0
    assert cdb(p2, "get", "/a")[:2] == (0, "1\n")  # replicated before set returned (B-30)
    rc, out, err = cdb(p2, "set", "/a", "2")
    assert rc == 1 and out == ""
    assert "daemon error 17 ERR_BADSTATE: node is an HA secondary: writes are not allowed" in err
    rc, out, _ = cdb(p2, "delete", "/a", json_out=True)
    reply = json.loads(out)
    assert rc == 1 and set(reply) == {"error"}
    assert reply["error"]["kind"] == "refused" and reply["error"]["confd_errno"] == 17
    assert reply["error"]["confd_name"] == "ERR_BADSTATE" and reply["error"]["exit_code"] == 1


def subscribed(p) -> socket.socket:
    """An HA_INFO event socket to the node of process ``p``."""
    ev = socket.socket()
    ev.settimeout(5)
    events.notifications_connect(ev, events.NOTIF_HA_INFO, p.ipc_address, p.ipc_port)
    return ev


def test_kill_makes_secondary_see_noprimary(pair):
    p1, p2 = pair
    ev = subscribed(p2)
    with ev:
        assert cdb(p1, "kill")[:2] == (0, "ok\n")
        n = events.read_notification(ev)
        assert n["hnot"] == {"type": events.HA_INFO_NOPRIMARY, "noprimary": error.ERR_HA_CLOSED,
                             "nomaster": error.ERR_HA_CLOSED}
    with client(p2) as s:
        assert ha.status(s) == (ha.STATE_NONE, [])
    # The killed node's process keeps its control endpoint; its IPC port is gone.
    info = p1.control("info")
    assert info["running"] is False and info["decisions"][-1].endswith("killed")
    with pytest.raises(OSError):
        socket.create_connection((p1.ipc_address, p1.ipc_port), timeout=2)
    rc, _, err = cdb(p1, "get", "/a")
    assert rc == 3 and "not running" in err
    assert cdb(p1, "start")[0] == 0  # back, same port, NONE (B-23)
    with client(p1) as s:
        assert ha.status(s) == (ha.STATE_NONE, [])
    rc, out, _ = cdb(p2, "info")
    assert rc == 0 and "state: none (1)" in out and "NOPRIMARY 26" in out


def test_freeze_thaw_gives_notick(pair):
    p1, p2 = pair
    ev = subscribed(p2)
    with ev:
        t = time.monotonic()
        assert cdb(p1, "freeze")[0] == 0
        n = events.read_notification(ev)  # 3 × 0.2 s of silence
        assert n["hnot"]["type"] == events.HA_INFO_NOPRIMARY
        assert n["hnot"]["noprimary"] == error.ERR_HA_NOTICK
        assert time.monotonic() - t >= 0.5
    assert json.loads(cdb(p1, "info", json_out=True)[1])["frozen"] is True
    assert cdb(p1, "thaw")[0] == 0
    info = p1.control("info")
    assert info["frozen"] is False and info["state_name"] == "PRIMARY"


def test_partition_heal_upgrade_phase(pair):
    p1, p2 = pair
    assert cdb(p1, "partition", "127.0.0.102")[0] == 0
    assert p1.control("info")["partitions"] == ["127.0.0.102"]
    with client(p2) as s:  # p2 hears nothing from p1 any more: HA_NOTICK, NONE
        wait_until(lambda: ha.status(s)[0] == ha.STATE_NONE, interval=0.05)
    assert cdb(p1, "heal")[0] == 0  # all partitions
    assert p1.control("info")["partitions"] == []
    assert cdb(p2, "upgrade", "on")[0] == 0
    with client(p2) as s:
        with pytest.raises(error.Error) as exc:
            ha.besecondary(s, "n2", "n1", p1.ipc_address, 1)
        assert exc.value.confd_errno == error.ERR_HA_WITH_UPGRADE
    assert cdb(p2, "upgrade", "off")[0] == 0
    with client(p2) as s:
        ha.besecondary(s, "n2", "n1", p1.ipc_address, 1)
        assert ha.status(s)[0] == ha.STATE_SECONDARY
    rc, _, err = cdb(p2, "phase", "1")  # phase 2 already: the node refuses (no ConfD code)
    assert rc == 1 and "one step at a time" in err


def test_unreachable_exit_3():
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.104", 0))
        port = probe.getsockname()[1]
    out, err = io.StringIO(), io.StringIO()
    argv = ["cdb", "--ipc-address", "127.0.0.104", "--ipc-port", str(port)]
    assert main(argv + ["txid"], out, err) == 3
    assert err.getvalue() == ("confd-ha: cannot reach the emulated node at 127.0.0.104:%d: no "
                              "`confd-ha emulate` runs there\n" % port)
    out = io.StringIO()
    assert main(argv + ["info", "--json"], out, io.StringIO()) == 3   # options after ACTION
    assert json.loads(out.getvalue())["error"]["kind"] == "unreachable"
    assert json.loads(out.getvalue())["error"]["target"] == "127.0.0.104:%d" % port
    with pytest.raises(Unreachable):
        ControlClient("127.0.0.104", port).request("info")


@pytest.mark.parametrize("argv", [
    ["phase", "x"], ["upgrade", "maybe"], ["set", "/only-path"], [], ["bogus"],
    ["set", "relative", "v"], ["partition", "not-an-ip"], ["get", "/a//b"],
])
def test_usage_errors_exit_2(argv):
    with Cluster(1, base=105, control=True) as c:
        rc, out, err = cdb(c[0], *argv)
        assert rc == 2 and err


def test_control_path_option(tmp_path):
    path = str(tmp_path / "ctl")
    with EmulatorProcess("--ipc-address", "127.0.0.106", "--ipc-port", "0", "--ha-port", "1",
                         "--control-path", path) as p:
        assert p.control_name == path and oct(os.stat(path).st_mode & 0o777) == "0o600"
        out, err = io.StringIO(), io.StringIO()
        assert main(["cdb", "--control-path", path, "set", "/p", "v"], out, err) == 0
        assert p.control("get", path="/p") == {"path": "/p", "value": "v"}
    assert not os.path.exists(path)


# ---------------------------------------------------------------- the protocol itself


# Request lines the control protocol refuses as "bad-request", keeping the connection.
BAD_REQUESTS = [
    b"not json\n", b"\xff\xfe\n", b"[1, 2]\n", b'{"op": "nope"}\n', b'{"op": 5}\n',
    b'{"op": "get", "path": 7}\n', b'{"op": "phase", "phase": true}\n',
    b'{"op": "upgrade", "on": "yes"}\n', b'{"op": "commit", "changes": [["drop", "/a"]]}\n',
    b'{"op": "commit", "changes": [["set", "/a"]]}\n', b'{"op": "info", "decisions": -1}\n',
]


def test_protocol_rejects_bad_requests_and_keeps_serving():
    with Cluster(1, base=107, control=True) as c:
        n = c[0]
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(5)
        s.connect("\0" + n.control_name[1:])
        with s:
            def err(line: bytes) -> dict:
                reply = json_exchange(s, line)
                assert reply["ok"] is False, reply
                return reply["error"]

            for line in BAD_REQUESTS:
                assert err(line)["kind"] == "bad-request", line
            assert err(b'{"op": "get"}\n')["message"] == "missing argument 'path'"
            assert err(b'{"op": "start"}\n')["kind"] == "refused"  # already running
            # Blank lines are ignored; ids are echoed; several requests on one connection.
            reply = json_exchange(s, b'\n{"op": "commit", "id": 9, "changes": [["set", "/a", "1"], '
                           b'["set", "/b", "2"], ["delete", "/b"]]}\n')
            assert reply["ok"] and reply["id"] == 9
            assert json_exchange(s, b'{"op": "show"}\n')["result"]["items"] == [["/a", "1"]]
            assert json_exchange(s, b'{"op": "info", "decisions": 0}\n')["result"]["decisions"] == []
            # An over-long line gets an error and the connection is closed.
            s.sendall(b'{"op": "get", "path": "/' + b"x" * (1 << 20) + b'"}\n')
            buf = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
            assert json.loads(buf)["error"]["message"].startswith("request longer than")
        # The node and its endpoint are unharmed.
        with ControlClient(n.ipc_address, n.ipc_port) as cl:
            assert cl.request("get", path="/a")["value"] == "1"
            with pytest.raises(ControlError) as exc:
                cl.request("set", path="no-slash", value="v")
            assert exc.value.kind == "bad-request"
        with n.connect_ha("t") as hs:
            assert ha.status(hs) == (ha.STATE_NONE, [])


def _python_for(user: int):
    """An interpreter that ``user`` may run (stdlib only is needed), or None."""
    import subprocess
    import sys

    for exe in (sys.executable, "/usr/bin/python3"):
        try:
            subprocess.run([exe, "-c", "pass"], user=user, cwd="/", check=True, timeout=30,
                           capture_output=True)
            return exe
        except (OSError, subprocess.SubprocessError):
            continue
    return None


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a client as another user")
def test_other_users_are_refused():
    import subprocess

    python = _python_for(65534)
    if python is None:
        pytest.skip("no interpreter runnable as uid 65534")
    with Cluster(1, base=108, control=True) as c:
        name = c[0].control_name
        code = "\n".join([
            "import socket, sys",
            "s = socket.socket(socket.AF_UNIX)",
            "s.settimeout(5)",
            "r = b''",
            "try:",
            "    s.connect('\\0' + sys.argv[1])",
            "    s.sendall(b'{\"op\": \"kill\"}\\n')",
            "    r = s.recv(100)",
            "except (ConnectionResetError, BrokenPipeError):",
            "    pass",
            "sys.stdout.write(repr(r))"])
        for user, expect_reply in ((65534, False), (0, True)):
            out = subprocess.run([python, "-c", code, name[1:]], user=user, cwd="/",
                                 capture_output=True, text=True, timeout=30, check=True).stdout
            assert (out != "b''") == expect_reply, out
            assert c[0].running != expect_reply  # only root's kill went through
