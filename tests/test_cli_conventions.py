"""The installed ``confd-ha`` keeps the conventions users expect of a command line: --version
and ``python -m confd_ha``; options in any position; NSO mode; --json everywhere with one
error shape; -q and -v; hostile node ids escaped; the token prompt (empty answer, Ctrl-D,
Ctrl-C); Ctrl-C during start-up; a closed pipe; the demo and the fixtures on other address
prefixes. Every case runs the command as a process, as a user would."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import termios
import time

import pytest

import confd_ha as ha
from cli_helpers import (TOKEN, Server, blocked, command, environment, hello_then_silent, run,
                         silent)
from confd_ha._version import __version__
from net_helpers import dead_port
from waiting import wait_until


def at(node) -> list:
    return ["--ipc-address", node.ipc_address, "--ipc-port", str(node.ipc_port)]


# ---------------------------------------------------------------- --version, python -m


def test_version_and_python_m(trio):
    for argv in (command() + ["--version"], [sys.executable, "-m", "confd_ha", "--version"]):
        p = subprocess.run(argv, capture_output=True, text=True, env=environment(), timeout=30)
        assert (p.returncode, p.stdout, p.stderr) == (0, "confd-ha %s\n" % __version__, "")
    p = subprocess.run([sys.executable, "-m", "confd_ha", "status", "-q", *at(trio[0])],
                       capture_output=True, text=True, env=environment(), timeout=30)
    assert (p.returncode, p.stdout, p.stderr) == (0, "state: none (1)\n", "")


def test_help_describes_command_environment_and_exit_codes():
    for cmd in ("status", "watch", "be-primary", "be-secondary", "be-none", "be-relay",
                "secondary-dead", "cdb", "emulate", "demo", "completion", "man", "agent",
                "agent run", "agent list", "agent switchover", "agent failover", "agent pause",
                "agent resume"):
        p = run(cmd.split() + ["--help"])
        assert p.returncode == 0 and p.stderr == ""
        text = p.stdout
        assert "exit status:" in text and "\n  0    " in text, cmd
        assert len(text.split("\n\n")[1]) > 30, cmd            # a description paragraph
        if cmd in ("status", "watch", "be-primary", "cdb"):
            assert "environment:" in text and "CONFD_IPC_PORT" in text and "NCS_IPC_PORT" in text
    assert "CONFD_HA_TOKEN" in run(["be-none", "--help"]).stdout
    assert "CONFD_HA_TOKEN" not in run(["watch", "--help"]).stdout
    agent_run = run(["agent", "run", "--help"]).stdout
    assert "CONFD_HA_TOKEN" in agent_run and "CONFD_HA_ETCD" in agent_run
    assert "pip install 'confd-ha[agent]'" in agent_run
    assert "CONFD_HA_TOKEN" not in run(["agent", "list", "--help"]).stdout


# ---------------------------------------------------------------- option positions


def test_options_in_any_position(trio):
    n1, n2 = trio[0], trio[1]
    assert run(["-q", "be-primary", "n1", *at(n1)]).returncode == 0
    assert run(["be-secondary", "--async", "n2", *at(n2), "n1", "-q", n1.ipc_address]
               ).returncode == 0
    n2.wait_state(ha.STATE_SECONDARY, timeout=5)
    p = run(["--verbose", "status", *at(n2), "--json", "-q"])
    assert p.returncode == 0 and json.loads(p.stdout)["state"] == "secondary"


def test_cdb_options_before_or_after_the_action():
    from confd_ha.testing.cluster import Cluster

    with Cluster(1, base=170, tick_timeout=0.2, control=True) as c:
        where = at(c[0])
        assert run(["cdb", *where, "set", "/a", "1"]).returncode == 0
        assert run(["cdb", "set", "/b", "2", *where]).returncode == 0
        assert run(["cdb", "set", where[0], where[1], "/c", where[2], where[3], "3"]
                   ).returncode == 0
        p = run(["cdb", "show", "--json", *where])
        assert json.loads(p.stdout) == {"items": [["/a", "1"], ["/b", "2"], ["/c", "3"]]}
        assert run(["-q", "cdb", "freeze", *where]).stdout == ""
        assert run(["cdb", "thaw", *where]).stdout == "ok\n"


# ---------------------------------------------------------------- NSO mode


@pytest.fixture
def nso_node():
    from confd_ha.testing.cluster import Cluster

    with Cluster(1, base=171, tick_timeout=0.2, flavour="nso", control=True) as c:
        yield c[0]


def test_nso_mode_honours_ncs_variables(nso_node):
    nso = {"NCS_IPC_ADDR": nso_node.ipc_address, "NCS_IPC_PORT": str(nso_node.ipc_port),
           "CONFD_IPC_PORT": str(dead_port())}
    for flag in (["--nso"], ["--flavour", "nso"]):
        p = run(["status", "-q", *flag], env=environment(**nso))
        assert (p.returncode, p.stdout) == (0, "state: none (1)\n"), p.stderr
    assert run(["cdb", "txid", "--nso"], env=environment(**nso)).stdout == "initial\n"
    p = run(["be-none"], env=environment(**nso))        # without --nso: $CONFD_IPC_*
    assert p.returncode == 3 and "ConfD at 127.0.0.1:%s" % nso["CONFD_IPC_PORT"] in p.stderr


def test_nso_mode_defaults_to_port_4569():
    p = run(["status", "--nso", "--ipc-address", "127.0.0.250", "--json"])
    assert p.returncode == 3
    assert json.loads(p.stdout)["error"]["target"] == "127.0.0.250:4569"
    assert "NSO at 127.0.0.250:4569" in p.stderr


# ---------------------------------------------------------------- --json, one error shape


def test_json_everywhere_and_one_error_shape(trio):
    n1 = trio[0]
    p = run(["be-primary", "n1", "--json", *at(n1)])
    assert json.loads(p.stdout) == {"ok": True, "command": "be-primary", "waited": True,
                                    "target": "%s:%d" % (n1.ipc_address, n1.ipc_port)}
    assert json.loads(run(["status", "--json", *at(n1)]).stdout)["state"] == "primary"
    dead = str(dead_port())
    shapes = []
    for argv in (["status"], ["watch"], ["be-none"], ["secondary-dead", "x"], ["cdb", "info"]):
        p = run(argv + ["--json", "--ipc-port", dead])
        doc = json.loads(p.stdout)
        assert p.returncode == doc["error"]["exit_code"] == 3
        assert p.stderr.splitlines()[-1] == "confd-ha: " + doc["error"]["message"]
        shapes.append(sorted(doc["error"]))
    assert all(s == shapes[0] for s in shapes)
    p = run(["be-relay", "--json", *at(trio[1])])
    assert p.returncode == 1
    assert {k: json.loads(p.stdout)["error"][k] for k in ("kind", "confd_errno", "confd_name")} \
        == {"kind": "refused", "confd_errno": 17, "confd_name": "ERR_BADSTATE"}


def test_emulate_json_ready_object():
    p = subprocess.Popen(command() + ["emulate", "--json", "--ipc-address", "127.0.0.172",
                                      "--ipc-port", "0", "--exit-on-stdin-eof"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=environment(), text=True)
    try:
        doc = json.loads(p.stdout.readline())
        assert doc["ready"] is True and doc["ipc"]["address"] == "127.0.0.172"
        assert doc["ipc"]["port"] > 0 and doc["flavour"] == "confd" and doc["pid"] == p.pid
    finally:
        p.stdin.close()
        assert p.wait(10) == 0
        p.stdout.close()
        p.stderr.close()


# ---------------------------------------------------------------- -q, -v


def test_quiet_and_verbose(trio):
    n1 = trio[0]
    p = run(["be-primary", "n1", *at(n1)])
    assert (p.stdout, p.stderr.count("note: ")) == ("ok\n", 1)
    p = run(["be-primary", "n1", "-q", *at(n1)])
    assert (p.returncode, p.stdout, p.stderr) == (0, "", "")
    p = run(["status", "-q", "-v", *at(n1)])
    where = "ConfD at %s:%d" % (n1.ipc_address, n1.ipc_port)
    assert "confd-ha: connecting to %s" % where in p.stderr
    assert "confd-ha: connected to %s: protocol version 82, version 0x08020500" % where in p.stderr


# ---------------------------------------------------------------- values that can do harm


def test_node_ids_that_would_break_output_are_escaped(trio):
    n1, n2 = trio[0], trio[1]
    assert run(["be-primary", "n1", "-q", *at(n1)]).returncode == 0
    hostile = "evil\n1.2.3.4  fake\x1b[31m"
    p = run(["be-secondary", hostile, "n1", n1.ipc_address, "-q", *at(n2)])
    assert p.returncode == 0, p.stderr
    p = run(["status", "-q", *at(n1)])
    shown = "evil\\n1.2.3.4  fake\\x1b[31m"
    assert p.stdout.splitlines() == ["state: primary (3)",
                                     "NODE ID".ljust(len(shown)) + "  ADDRESS",
                                     shown + "  127.0.0.2"]
    assert json.loads(run(["status", "--json", *at(n1)]).stdout)["nodes"][0]["nodeid"] == hostile


# ---------------------------------------------------------------- the token prompt (a terminal)


def on_terminal(argv, keys: bytes, env=None, prompt: bytes = b"HA token: "):
    """Run ``confd-ha ARGV`` on a new pseudo-terminal, type ``keys`` at the prompt; returns
    (exit code, everything the terminal showed)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: exec the command (nothing of pytest may run here)
        try:
            argv_ = command() + argv
            os.execve(argv_[0], argv_, env or environment(token=None))
        finally:
            os._exit(127)
    shown, typed, end = b"", False, time.monotonic() + 30
    try:
        while time.monotonic() < end:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:   # EIO: the child is gone
                    break
                if not chunk:
                    break
                shown += chunk
            if not typed and prompt in shown:
                # keys typed before getpass turned echo off would be flushed with it (on a
                # pty the master's termios are the terminal's)
                wait_until(lambda: not termios.tcgetattr(fd)[3] & termios.ECHO)
                os.write(fd, keys)
                typed = True
    finally:
        os.close(fd)
        _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), shown.decode("utf-8", "replace")


@pytest.mark.parametrize("keys, code, message", [
    (b"\x04", 2, "confd-ha: no HA token: end of input (Ctrl-D) at the prompt"),
    (b"\r", 2, "confd-ha: no HA token: nothing was typed at the prompt"),
    (b"\x03", 130, "confd-ha: interrupted"),
])
def test_token_prompt_refusals(keys, code, message):
    rc, shown = on_terminal(["status", "--ipc-port", str(dead_port())], keys)
    assert rc == code, shown
    assert message in shown and "Traceback" not in shown


def test_token_typed_at_the_prompt_is_used(trio):
    n1 = trio[0]
    rc, shown = on_terminal(["be-primary", "n1", *at(n1)], TOKEN.encode() + b"\r")
    assert rc == 0 and "ok" in shown and TOKEN not in shown
    assert n1.state == ha.STATE_PRIMARY


# ---------------------------------------------------------------- Ctrl-C and closed pipes


@pytest.mark.parametrize("handler, argv", [
    (silent, ["status", "--timeout", "0"]),               # waiting for the hello
    (hello_then_silent, ["be-primary", "n1"]),            # waiting for the order's answer
    (silent, ["watch"]),                                  # still connecting
])
def test_ctrl_c_while_waiting_is_exit_130(handler, argv):
    with Server(handler) as server:
        p = subprocess.Popen(command() + argv + ["--ipc-port", str(server.port)],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=environment(), text=True)

        def waiting() -> bool:   # connected and blocked on the server
            assert p.poll() is None
            return bool(server.conns) and blocked(p.pid)
        wait_until(waiting, timeout=20)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=20)
    assert p.returncode == 130, err
    assert err.splitlines()[-1] == "confd-ha: interrupted" and "Traceback" not in err


@pytest.mark.parametrize("delay", [0.3, 0.5, 0.8])
def test_ctrl_c_during_the_demo_stops_every_node(delay):
    p = subprocess.Popen(command() + ["demo", "--tick", "2"], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environment(),
                         text=True)
    time.sleep(delay)   # what is tested: a Ctrl-C at any of these moments of the demo
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    assert "Traceback" not in out + err
    if p.returncode == 130:   # "; every node stopped" once the demo had started any
        assert err in ("confd-ha: interrupted; every node stopped\n", "confd-ha: interrupted\n")
    else:   # the demo was faster than the signal
        assert p.returncode == 0 and "Done in" in out


def test_demo_into_a_closed_pipe():
    """``confd-ha demo | head -3``. Whether the demo is still writing when head exits is a
    race (it takes a few ms); a reader that is gone before the first line is not: exit 141
    and one line, the nodes stopped (the process ends)."""
    for reader, lines in (("head -n 0", 0), ("head -3", 3)):
        p = subprocess.run(["bash", "-c", 'set -o pipefail; "$@" demo | %s' % reader, "bash",
                            *command()], capture_output=True, text=True, env=environment(),
                           timeout=60)
        assert len(p.stdout.splitlines()) == lines and "Traceback" not in p.stderr
        if reader == "head -n 0" or p.returncode != 0:
            assert p.returncode == 141
            assert p.stderr == "confd-ha: stopped: the output was closed (broken pipe)\n"


# ---------------------------------------------------------------- other addresses


def test_demo_on_another_prefix():
    p = run(["demo", "--prefix", "127.0.7."], timeout=60)
    assert p.returncode == 0, p.stderr
    assert "start n1, n2, n3 on 127.0.7.1-3" in p.stdout
    assert "n3 event: SECONDARY_INITIALIZED" in p.stdout and "127.0.0." not in p.stdout


def test_fixtures_on_another_prefix(tmp_path):
    """A user's test suite with the ini option: every fixture's nodes are on that prefix."""
    (tmp_path / "test_user.py").write_text(
        "def test_nodes(ha_node_factory, ha_cluster, ha_node_process_factory):\n"
        "    assert ha_node_factory().ipc_address == '127.0.11.1'\n"
        "    assert ha_cluster(2).addresses == ['127.0.11.1', '127.0.11.2']\n"
        "    assert ha_cluster(1, prefix='127.0.12.', base=5).addresses == ['127.0.12.5']\n"
        "    assert ha_node_process_factory(tick_timeout=0.5).ipc_address == '127.0.11.1'\n")
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "-o", "confd_ha_address_prefix=127.0.11.", "test_user.py"],
                       cwd=tmp_path, capture_output=True, text=True, env=environment(),
                       timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
