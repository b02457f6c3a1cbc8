"""``confd-ha`` as a real process (the installed console script, or ``python -c`` calling
``confd_ha.cli.main`` with the same ``confd_ha`` on ``PYTHONPATH``) against emulated nodes
running in the test process: output, exit codes, the token kept out of every output, and
``watch`` stopped by SIGINT.
"""

from __future__ import annotations

import datetime
import json
import os
import queue
import signal
import subprocess
import threading

import pytest

import confd_ha as ha

from cli_helpers import TOKEN, command, environment
from net_helpers import dead_port
from waiting import wait_until


def cli(*argv, node=None, env=None, timeout=20):
    """Run the command to completion: (exit code, stdout, stderr); the token is in neither."""
    argv = list(argv)
    if node is not None:
        argv += ["--ipc-address", node.ipc_address, "--ipc-port", str(node.ipc_port)]
    p = subprocess.run(command() + argv, stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, env=env or environment(), timeout=timeout)
    assert TOKEN not in p.stdout and TOKEN not in p.stderr
    return p.returncode, p.stdout, p.stderr


def test_status_and_orders(trio):
    n1, n2, n3 = trio
    rc, out, err = cli("be-primary", "n1", node=n1)
    assert (rc, out) == (0, "ok\n")
    assert err.count("replaces the node's current one") == 1  # B-02, once
    assert cli("be-secondary", "n2", "n1", n1.ipc_address, node=n2)[:2] == (0, "ok\n")
    assert cli("be-slave", "--async", "n3", "n1", n1.ipc_address, node=n3)[:2] == (0, "ok\n")
    n3.wait_state(ha.STATE_SECONDARY, timeout=5)
    rc, out, err = cli("status", "--json", node=n1)
    assert rc == 0
    doc = json.loads(out)
    assert (doc["state"], doc["state_code"]) == ("primary", 3)
    assert sorted(doc["nodes"], key=lambda n: n["nodeid"]) == [
        {"nodeid": "n2", "address": "127.0.0.2"}, {"nodeid": "n3", "address": "127.0.0.3"}]
    assert cli("status", node=n2)[1] == \
        "state: secondary (2)\nNODE ID  ADDRESS\nn1       127.0.0.1\n"
    assert cli("be-relay", node=n2)[:2] == (0, "ok\n")
    assert json.loads(cli("status", "--json", node=n2)[1])["state"] == "secondary-relay"
    assert cli("slave-dead", "n3", node=n1)[:2] == (0, "ok\n")
    n3.wait_state(ha.STATE_NONE, timeout=5)
    assert cli("be-none", node=n1)[:2] == (0, "ok\n")
    assert n1.state == ha.STATE_NONE


def test_exit_codes(trio):
    n1 = trio[0]
    rc, out, err = cli("be-relay", node=n1)
    assert (rc, out) == (1, "")
    assert "daemon error 17 ERR_BADSTATE" in err

    port = dead_port()
    rc, out, err = cli("status", "--ipc-port", str(port))
    assert (rc, out) == (3, "")
    assert err.splitlines()[-1] == \
        "confd-ha: cannot connect to ConfD at 127.0.0.1:%d: nothing listens there" % port

    rc, out, err = cli("be-secondary", "n1")
    assert (rc, out) == (2, "")
    assert err == ("confd-ha: the following arguments are required: PRIMARY_ID, PRIMARY_IP "
                   "(see `confd-ha be-secondary --help`)\n")

    rc, out, err = cli("status", node=n1, env=environment(token=None))  # stdin not a tty
    assert (rc, out) == (2, "")
    assert "no HA token" in err


def test_environment_defaults_and_token_on_argv(trio):
    n2 = trio[1]
    env = environment(token=None, CONFD_IPC_ADDR=n2.ipc_address,
                      CONFD_IPC_PORT=str(n2.ipc_port))
    rc, out, err = cli("be-primary", "n2", "--token", TOKEN, env=env)
    assert (rc, out) == (0, "ok\n")
    assert "--token puts the token in the process list" in err
    assert n2.state == ha.STATE_PRIMARY


def test_token_file(trio, tmp_path):
    n1, n2 = trio[0], trio[1]
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    env = environment(token=None)
    assert cli("be-primary", "n1", "--token-file", str(token_file), node=n1, env=env)[0] == 0
    # The same token from the environment: n1 accepts n2's join.
    assert cli("be-secondary", "n2", "n1", n1.ipc_address, node=n2)[:2] == (0, "ok\n")


def test_token_bytes_that_are_not_utf8(trio, tmp_path):
    """A token is bytes: the same non-UTF-8 bytes from a file and from the environment
    must match on the daemon side (else the join fails with HA_BADTOKEN)."""
    n1, n2 = trio[0], trio[1]
    secret = b"\xff\xfeproc-\x80"
    token_file = tmp_path / "token"
    token_file.write_bytes(secret)
    assert cli("be-primary", "n1", "--token-file", str(token_file), node=n1,
               env=environment(token=None))[:2] == (0, "ok\n")
    env = environment(token=None)
    env = {os.fsencode(k): os.fsencode(v) for k, v in env.items()}
    env[b"CONFD_HA_TOKEN"] = secret
    rc, out, err = cli("be-secondary", "n2", "n1", n1.ipc_address, node=n2, env=env)
    assert (rc, out) == (0, "ok\n"), err
    assert "Traceback" not in err
    assert n2.state == ha.STATE_SECONDARY


class Reader:
    """Lines of a process's stdout, readable with a timeout."""

    def __init__(self, stream):
        self.lines: "queue.Queue[str]" = queue.Queue()
        self.thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self.thread.start()

    def _pump(self, stream):
        for line in stream:
            self.lines.put(line.rstrip("\n"))

    def next(self, timeout=5.0) -> str:
        return self.lines.get(timeout=timeout)


def watching(p: subprocess.Popen, node) -> None:
    """Until the ``watch`` process ``p`` has subscribed to ``node`` (it must not exit)."""
    def subscribed() -> bool:
        assert p.poll() is None
        return node.subscribers >= 1
    wait_until(subscribed, timeout=10.0, interval=0.01)


@pytest.mark.parametrize("as_json", [False, True])
def test_watch_until_sigint(trio, as_json):
    n1, n2 = trio[0], trio[1]
    argv = command() + ["watch", "--ipc-address", n1.ipc_address,
                        "--ipc-port", str(n1.ipc_port)] + (["--json"] if as_json else [])
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=environment())
    try:
        reader = Reader(p.stdout)
        watching(p, n1)
        with n1.connect_ha(TOKEN) as c1, n2.connect_ha(TOKEN) as c2:
            ha.beprimary(c1, "n1")
            ha.besecondary(c2, "n2", "n1", n1.ipc_address, 1)
            lines = [reader.next(), reader.next()]
        if as_json:
            docs = [json.loads(line) for line in lines]
            times = [doc.pop("time") for doc in docs]
            assert docs == [
                {"event": "is-primary", "type": 5},
                {"event": "secondary-arrived", "type": 3, "node": "n2",
                 "address": "127.0.0.2"}]
        else:
            times = [line.split(" ", 1)[0] for line in lines]
            assert [line.split(" ", 1)[1] for line in lines] == \
                ["is-primary", "secondary-arrived node=n2 address=127.0.0.2"]
        for when in times:
            assert datetime.datetime.fromisoformat(when).utcoffset() is not None
        p.send_signal(signal.SIGINT)
        assert p.wait(10) == 0
        assert p.stderr.read() == ""
        reader.thread.join(5)
        assert reader.lines.empty()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(5)
        p.stdout.close()
        p.stderr.close()


def test_watch_stops_when_its_reader_goes_away(trio):
    """``confd-ha watch | head -1``: the next event hits a closed pipe -- exit 141 (as a
    shell reports SIGPIPE) with one line on stderr, no traceback."""
    n1 = trio[0]
    p = subprocess.Popen(command() + ["watch", "--ipc-address", n1.ipc_address,
                                      "--ipc-port", str(n1.ipc_port)],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=environment())
    try:
        watching(p, n1)
        with n1.connect_ha(TOKEN) as c1:
            ha.beprimary(c1, "n1")
            assert p.stdout.readline().endswith(" is-primary\n")
            p.stdout.close()
            ha.benone(c1)
        assert p.wait(10) == 141
        assert p.stderr.read() == "confd-ha: stopped: the output was closed (broken pipe)\n"
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(5)
        p.stderr.close()
