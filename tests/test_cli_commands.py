"""The ``confd-ha`` command line in-process (``confd_ha.cli.main``) against emulated nodes:
status (table and JSON), the orders and their old-name aliases, connection options and their
environment defaults, token sources, the B-02 note (and -q), and the exit codes
(0 ok, 1 daemon error, 2 usage, 3 connection failure; docs/cli.md).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import tempfile

import pytest

import confd_ha as ha
from confd_ha import cli, error, events
from confd_ha.testing.cluster import Cluster
from events_helpers import result
from net_helpers import dead_port
from waiting import wait_until


TOKEN = "cli-t0ken-Zq8"  # distinctive: no output may ever contain it
OTHER_TOKEN = "other-t0ken-Wx3"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """A known environment: the token in $CONFD_HA_TOKEN, no IPC defaults, stdin not a tty."""
    for name in ("CONFD_IPC_ADDR", "CONFD_IPC_PORT", "NCS_IPC_ADDR", "NCS_IPC_PORT",
                 "CONFD_IPC_ACCESS_FILE", "NCS_IPC_ACCESS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CONFD_HA_TOKEN", TOKEN)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))


def run(*argv, node=None):
    """``main(argv)`` with the node's address options appended: (exit code, stdout, stderr)."""
    argv = list(argv)
    if node is not None:
        argv += ["--ipc-address", node.ipc_address, "--ipc-port", str(node.ipc_port)]
    out, err = io.StringIO(), io.StringIO()
    rc = cli.main(argv, out=out, err=err)
    for secret in (TOKEN, OTHER_TOKEN):
        assert secret not in out.getvalue() and secret not in err.getvalue()
    return rc, out.getvalue(), err.getvalue()


def ok(*argv, node=None):
    rc, out, err = run(*argv, node=node)
    assert rc == 0, err
    return out


def primary_with(trio, *secondaries):
    """n1 primary with the given secondary numbers joined (through the CLI itself)."""
    n1 = trio[0]
    assert ok("be-primary", "n1", node=n1) == "ok\n"
    nodes = [n1]
    for n in secondaries:
        node = trio[n - 1]
        assert ok("be-secondary", "n%d" % n, "n1", n1.ipc_address, node=node) == "ok\n"
        nodes.append(node)
    return nodes


def event_socket(node):
    s = socket.socket()
    s.settimeout(5)
    events.notifications_connect(s, events.NOTIF_HA_INFO, node.ipc_address, node.ipc_port)
    return s


def next_hnot(s):
    return events.read_notification(s)["hnot"]


# ---------------------------------------------------------------- status


def test_status_of_a_fresh_node_is_none(trio):
    n1 = trio[0]
    assert ok("status", node=n1) == "state: none (1)\n"
    assert json.loads(ok("status", "--json", node=n1)) == {
        "state": "none", "state_code": 1, "nodes": []}


def test_status_table_on_primary_and_secondary(trio):
    n1, n2, n3 = primary_with(trio, 2, 3)
    table = ok("status", node=n1).splitlines()
    assert table[:2] == ["state: primary (3)", "NODE ID  ADDRESS"]
    assert sorted(table[2:]) == ["n2       127.0.0.2", "n3       127.0.0.3"]
    assert ok("status", node=n2) == "state: secondary (2)\nNODE ID  ADDRESS\nn1       127.0.0.1\n"


def test_status_json_shape(trio):
    n1, n2, n3 = primary_with(trio, 2, 3)
    doc = json.loads(ok("status", "--json", node=n1))
    assert set(doc) == {"state", "state_code", "nodes"}
    assert (doc["state"], doc["state_code"]) == ("primary", 3)
    assert sorted(doc["nodes"], key=lambda n: n["nodeid"]) == [
        {"nodeid": "n2", "address": "127.0.0.2"}, {"nodeid": "n3", "address": "127.0.0.3"}]
    assert json.loads(ok("status", "--json", node=n3)) == {
        "state": "secondary", "state_code": 2,
        "nodes": [{"nodeid": "n1", "address": "127.0.0.1"}]}


def test_status_table_column_follows_the_longest_node_id(trio):
    n1 = trio[0]
    ok("be-primary", "n1", node=n1)
    n2 = trio[1]
    ok("be-secondary", "a-much-longer-node-id", "n1", n1.ipc_address, node=n2)
    assert ok("status", node=n1) == (
        "state: primary (3)\n"
        "NODE ID                ADDRESS\n"
        "a-much-longer-node-id  127.0.0.2\n")


# ---------------------------------------------------------------- orders


def test_be_primary_makes_the_node_primary(trio):
    n1 = trio[0]
    ev = event_socket(n1)
    with ev:
        assert ok("be-primary", "n1", node=n1) == "ok\n"
        assert next_hnot(ev) == {"type": events.HA_INFO_IS_PRIMARY}
    assert n1.state == ha.STATE_PRIMARY


def test_be_secondary_synchronous_has_synced_when_it_returns(trio):
    n1 = trio[0]
    ok("be-primary", "n1", node=n1)
    n1.commit([("set", "/sys/host", "alpha")])
    n2 = trio[1]
    assert ok("be-secondary", "n2", "n1", n1.ipc_address, node=n2) == "ok\n"
    # Synchronous: no waiting needed, the data is already there.
    assert n2.state == ha.STATE_SECONDARY
    assert n2.get("/sys/host") == "alpha"
    assert n2.txid == n1.txid


@pytest.mark.parametrize("primary, code, state", [
    ("n1", 0, ha.STATE_SECONDARY),
    # ha-behaviour.md §14.3: with --async a wrong primary name is only visible as
    # BESECONDARY_RESULT, never in the exit code
    ("wrong-name", error.ERR_HA_BADNAME, ha.STATE_NONE),
])
def test_be_secondary_async_returns_ok_at_once_and_reports_by_event(trio, primary, code, state):
    n1 = trio[0]
    ok("be-primary", "n1", node=n1)
    n2 = trio[1]
    ev = event_socket(n2)
    with ev:
        assert ok("be-secondary", "--async", "n2", primary, n1.ipc_address, node=n2) == "ok\n"
        # BESECONDARY_RESULT first, then SECONDARY_INITIALIZED (docs/conformance.md "Events")
        assert next_hnot(ev) == result(code)
        if code == 0:
            assert next_hnot(ev)["type"] == events.HA_INFO_SECONDARY_INITIALIZED
    assert n2.state == state


def test_be_secondary_synchronous_error_is_exit_1_with_code_and_name(trio):
    n1 = trio[0]
    ok("be-primary", "n1", node=n1)
    n2 = trio[1]
    rc, out, err = run("be-secondary", "n2", "wrong-name", n1.ipc_address, node=n2)
    assert (rc, out) == (1, "")
    assert "daemon error 29 ERR_HA_BADNAME" in err
    assert n2.state == ha.STATE_NONE


def test_be_none_leaves_the_role(trio):
    n1, n2 = primary_with(trio, 2)
    assert ok("be-none", node=n2) == "ok\n"
    assert n2.state == ha.STATE_NONE
    wait_until(lambda: n1.status()[1] == [])
    assert ok("be-none", node=n1) == "ok\n"
    assert ok("status", node=n1) == "state: none (1)\n"


def test_be_relay_on_a_secondary(trio):
    n1, n2 = primary_with(trio, 2)
    assert ok("be-relay", node=n2) == "ok\n"
    assert json.loads(ok("status", "--json", node=n2))["state"] == "secondary-relay"
    assert json.loads(ok("status", "--json", node=n2))["state_code"] == 4
    # A relay serves sub-secondaries: n3 joins n2 (which still calls itself n2).
    n3 = trio[2]
    assert ok("be-secondary", "n3", "n2", n2.ipc_address, node=n3) == "ok\n"
    assert n3.state == ha.STATE_SECONDARY


def test_be_relay_on_none_is_badstate_exit_1(trio):
    n1 = trio[0]
    rc, out, err = run("be-relay", node=n1)
    assert (rc, out) == (1, "")
    assert err.splitlines()[-1] == (
        "confd-ha: ConfD at %s:%d refused: daemon error 17 ERR_BADSTATE: operation in wrong "
        "state" % (n1.ipc_address, n1.ipc_port))
    assert n1.state == ha.STATE_NONE


def test_secondary_dead_cuts_the_secondary_off(trio):
    n1, n2, n3 = primary_with(trio, 2, 3)
    ev = event_socket(n2)
    with ev:
        assert ok("secondary-dead", "n2", node=n1) == "ok\n"
        assert next_hnot(ev) == {"type": events.HA_INFO_NOPRIMARY,
                                 "noprimary": 26, "nomaster": 26}
    assert n2.state == ha.STATE_NONE
    assert json.loads(ok("status", "--json", node=n1))["nodes"] == [
        {"nodeid": "n3", "address": "127.0.0.3"}]
    # Unknown id: an ok no-op (B-10).
    assert ok("secondary-dead", "nobody", node=n1) == "ok\n"
    assert n3.state == ha.STATE_SECONDARY


def test_old_names_are_aliases(trio):
    n1 = trio[0]
    n2 = trio[1]
    assert ok("be-master", "n1", node=n1) == "ok\n"
    assert n1.state == ha.STATE_PRIMARY
    assert ok("be-slave", "n2", "n1", n1.ipc_address, node=n2) == "ok\n"
    assert n2.state == ha.STATE_SECONDARY
    assert ok("slave-dead", "n2", node=n1) == "ok\n"
    wait_until(lambda: n2.state == ha.STATE_NONE)


@pytest.mark.parametrize("old, new", [("be-master", "be-primary"), ("be-slave", "be-secondary"),
                                      ("slave-dead", "secondary-dead")])
def test_alias_takes_the_same_arguments(old, new):
    rc_old, out_old, _ = run(old, "--help")
    rc_new, out_new, _ = run(new, "--help")
    assert rc_old == rc_new == 0
    assert out_old.replace(old, new) == out_new


# ---------------------------------------------------------------- exit codes


def test_nothing_listening_is_exit_3(trio):
    port = dead_port()
    rc, out, err = run("status", "--ipc-address", "127.0.0.1", "--ipc-port", str(port))
    assert (rc, out) == (3, "")
    assert err.splitlines()[-1] == \
        "confd-ha: cannot connect to ConfD at 127.0.0.1:%d: nothing listens there" % port


def test_missing_unix_socket_is_exit_3():
    rc, out, err = run("be-none", "--path", "/nonexistent-dir/confd.sock")
    assert (rc, out) == (3, "")
    assert err.splitlines()[-1] == \
        "confd-ha: cannot connect to ConfD at /nonexistent-dir/confd.sock: no such socket"


@pytest.mark.parametrize("argv", [
    [], ["frobnicate"], ["status", "--bogus"], ["status", "--ipc-port", "xx"],
    ["be-primary"], ["be-secondary", "n2", "n1"], ["secondary-dead"],
    ["watch", "--token-file", "f"],
])
def test_bad_arguments_are_exit_2_with_one_line_on_stderr(argv):
    rc, out, err = run(*argv)
    assert (rc, out) == (2, "")
    assert len(err.splitlines()) == 1
    assert err.startswith("confd-ha: ") and "--help`)" in err


def test_invalid_primary_address_is_exit_2(trio):
    n2 = trio[1]
    rc, out, err = run("be-secondary", "n2", "n1", "not-an-address", node=n2)
    assert (rc, out) == (2, "")
    assert err == ("confd-ha: PRIMARY_IP: 'not-an-address' is not an IP address (host names "
                   "are not looked up: give an IPv4 or IPv6 address) (see `confd-ha "
                   "be-secondary --help`)\n")
    assert n2.state == ha.STATE_NONE


def test_help_is_exit_0_on_stdout():
    rc, out, err = run("--help")
    assert (rc, err) == (0, "")
    for command in ("status", "watch", "be-primary", "be-secondary", "be-none", "be-relay",
                    "secondary-dead", "demo"):
        assert command in out
    assert "--token " not in ok("status", "--help")  # the argv token is not advertised


# ---------------------------------------------------------------- connection options


def test_environment_gives_the_default_address_and_port(trio, monkeypatch):
    n2 = trio[1]
    monkeypatch.setenv("CONFD_IPC_ADDR", n2.ipc_address)
    monkeypatch.setenv("CONFD_IPC_PORT", str(n2.ipc_port))
    assert ok("be-primary", "envnode") == "ok\n"
    assert n2.state == ha.STATE_PRIMARY
    # Options win over the environment.
    n3 = trio[2]
    assert ok("status", "--ipc-address", n3.ipc_address, "--ipc-port", str(n3.ipc_port)) == "state: none (1)\n"
    monkeypatch.setenv("CONFD_IPC_PORT", str(dead_port()))
    assert run("status")[0] == 3


@pytest.fixture
def short_tmp():
    """A directory with a short path (AF_UNIX paths are limited to ~107 bytes)."""
    tmp = tempfile.mkdtemp(prefix="chd", dir="/tmp")
    yield tmp
    shutil.rmtree(tmp)


def test_unix_socket_path(short_tmp):
    path = os.path.join(short_tmp, "ipc.sock")
    with Cluster(1, tick_timeout=0.2, ipc_path=path) as c:
        assert ok("be-primary", "n1", "--path", path) == "ok\n"
        assert c[0].state == ha.STATE_PRIMARY
        assert ok("status", "--json", "--path", path) == \
            '{"state": "primary", "state_code": 3, "nodes": []}\n'


# ---------------------------------------------------------------- tokens


def test_token_from_file_env_and_argv_all_reach_the_daemon(trio, monkeypatch, tmp_path):
    """A join succeeds only if both nodes hold the same token (HA_BADTOKEN otherwise), so
    each source is checked against the daemon, not against the CLI's own parsing."""
    n1 = trio[0]
    token_file = tmp_path / "token"
    token_file.write_bytes(TOKEN.encode() + b"\n")
    monkeypatch.delenv("CONFD_HA_TOKEN")
    assert ok("be-primary", "n1", "--token-file", str(token_file), node=n1) == "ok\n"

    n2 = trio[1]
    monkeypatch.setenv("CONFD_HA_TOKEN", TOKEN)
    assert ok("be-secondary", "n2", "n1", n1.ipc_address, node=n2) == "ok\n"

    n3 = trio[2]
    monkeypatch.delenv("CONFD_HA_TOKEN")
    rc, out, err = run("be-secondary", "n3", "n1", n1.ipc_address, "--token", TOKEN, node=n3)
    assert (rc, out) == (0, "ok\n")
    assert "warning: --token puts the token in the process list" in err
    assert n3.state == ha.STATE_SECONDARY


def test_wrong_token_is_refused_by_the_primary(trio, monkeypatch, tmp_path):
    n1 = trio[0]
    ok("be-primary", "n1", node=n1)
    n2 = trio[1]
    token_file = tmp_path / "token"
    token_file.write_text(OTHER_TOKEN)
    rc, out, err = run("be-secondary", "n2", "n1", n1.ipc_address, "--token-file", str(token_file),
                       node=n2)
    assert rc == 1
    assert "daemon error 28 ERR_HA_BADTOKEN" in err


def test_token_file_wins_over_environment_and_argv(trio, monkeypatch, tmp_path):
    n1 = trio[0]
    ok("be-primary", "n1", node=n1)  # token TOKEN
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    monkeypatch.setenv("CONFD_HA_TOKEN", OTHER_TOKEN)
    n2 = trio[1]
    rc, out, err = run("be-secondary", "n2", "n1", n1.ipc_address, "--token-file", str(token_file),
                       "--token", OTHER_TOKEN, node=n2)
    assert (rc, out) == (0, "ok\n")
    assert "--token puts the token" not in err  # not used, so not warned about


def test_binary_token_file_is_sent_as_bytes(trio, tmp_path):
    """A token that is not UTF-8 is sent unchanged; no error text quotes its bytes."""
    secret = b"\xff\xfe-bin\x80ary"
    token_file = tmp_path / "token"
    token_file.write_bytes(secret)
    n1 = trio[0]
    n2 = trio[1]
    assert ok("be-primary", "n1", "--token-file", str(token_file), node=n1) == "ok\n"
    assert ok("be-secondary", "n2", "n1", n1.ipc_address, "--token-file", str(token_file),
              node=n2) == "ok\n"
    assert n2.state == ha.STATE_SECONDARY


def test_unreadable_token_file_is_exit_2(trio, tmp_path):
    n1 = trio[0]
    rc, out, err = run("status", "--token-file", str(tmp_path / "missing"), node=n1)
    assert (rc, out) == (2, "")
    assert err == "confd-ha: cannot read --token-file '%s': No such file or directory\n" % (
        tmp_path / "missing")


def test_no_token_and_not_interactive_is_exit_2(trio, monkeypatch):
    n1 = trio[0]
    monkeypatch.delenv("CONFD_HA_TOKEN")
    rc, out, err = run("be-primary", "n1", node=n1)
    assert (rc, out) == (2, "")
    assert "no HA token" in err
    assert n1.state == ha.STATE_NONE


def test_replacement_note_is_given_once_and_silenced_by_q(trio):
    """B-02: connecting replaces the node's control socket -- said once per command; -q
    (before or after the command) silences it and the 'ok' line."""
    n1 = trio[0]
    rc, out, err = run("status", node=n1)
    assert err.count("replaces the node's current one") == 1
    for argv in (["-q", "status"], ["status", "-q"], ["status", "--quiet"]):
        rc, out, err = run(*argv, node=n1)
        assert (rc, out, err) == (0, "state: none (1)\n", "")
    rc, out, err = run("be-primary", "n1", "-q", node=n1)
    assert (rc, out, err) == (0, "", "")


def test_replacing_the_control_socket_is_real(trio):
    """The warning is true: a framework's control socket is closed by any CLI order."""
    n1 = trio[0]
    framework = n1.connect_ha(TOKEN)
    with framework:
        ha.beprimary(framework, "n1")
        ok("status", node=n1)
        with pytest.raises(ha.error.EOF):
            ha.status(framework)
