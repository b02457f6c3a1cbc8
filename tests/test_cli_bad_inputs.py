"""Bad input, as a user would type it, to the installed ``confd-ha``: every case ends with the
exit code docs/cli.md documents for it (and the command's --help lists), exactly one error
line on stderr that starts with ``confd-ha:`` (besides the B-02 ``note:`` and the ``--token``
``warning:``), and no traceback anywhere. The targets are loopback only: ports where nothing
listens, an HTTP server, servers that never answer or hang up, and emulated nodes."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket

import pytest

from cli_helpers import (TOKEN, Server, environment, hang_up, hello_then_silent, http, run,
                         silent)
from confd_ha.cli_errors import EXIT_CODES
from confd_ha.cli_parser import exit_codes
from net_helpers import dead_port

BASE = 160  # the emulated node: 127.0.0.160 (a block of its own)

# (id, argv, extra environment, exit code, a piece of the error message)
CASES = [
    # -------- the command line itself (2)
    ("no-command", [], {}, 2, "the following arguments are required: COMMAND"),
    ("unknown-command", ["frobnicate"], {}, 2, "unknown command 'frobnicate'"),
    ("misspelt-command", ["stauts"], {}, 2, "did you mean status?"),
    ("unknown-option", ["status", "--bogus"], {}, 2, "unrecognized arguments: --bogus"),
    ("abbreviated-option", ["status", "--ipc-a", "127.0.0.1"], {}, 2, "unrecognized"),
    ("port-too-big", ["status", "--ipc-port", "99999"], {}, 2,
     "--ipc-port: '99999' is not a port number (1-65535)"),
    ("port-negative", ["status", "--ipc-port", "-1"], {}, 2, "'-1' is not a port number"),
    ("port-zero", ["status", "--ipc-port", "0"], {}, 2, "'0' is not a port number"),
    ("port-text", ["status", "--ipc-port", "xx"], {}, 2, "'xx' is not a port number"),
    ("env-port-too-big", ["status"], {"CONFD_IPC_PORT": "70000"}, 2,
     "$CONFD_IPC_PORT: '70000' is not a port number"),
    ("env-port-text", ["be-none"], {"CONFD_IPC_PORT": "abc"}, 2, "$CONFD_IPC_PORT: 'abc'"),
    ("env-address-name", ["status"], {"CONFD_IPC_ADDR": "confd.example"}, 2,
     "$CONFD_IPC_ADDR: 'confd.example' is not an IP address"),
    ("nso-env-port", ["status", "--nso"], {"NCS_IPC_PORT": "0"}, 2, "$NCS_IPC_PORT: '0'"),
    ("timeout-inf", ["status", "--timeout", "inf"], {}, 2,
     "--timeout: 'inf' is not a number of seconds"),
    ("timeout-nan", ["be-none", "--timeout", "nan"], {}, 2, "'nan' is not a number of seconds"),
    ("timeout-negative", ["status", "--timeout", "-5"], {}, 2, "'-5' is not a number"),
    ("address-out-of-range", ["status", "--ipc-address", "999.1.1.1"], {}, 2,
     "'999.1.1.1' is not an IP address (an IPv4 address is four numbers 0-255)"),
    ("address-host-name", ["status", "--ipc-address", "localhost"], {}, 2,
     "host names are not looked up"),
    ("address-brackets", ["status", "--ipc-address", "[::1]"], {}, 2,
     "write IPv6 addresses without brackets: ::1"),
    ("address-empty", ["watch", "--ipc-address", ""], {}, 2, "'' is not an IP address"),
    ("flavour-unknown", ["status", "--flavour", "ncs"], {}, 2, "--flavour: invalid choice"),
    ("node-missing", ["be-primary"], {}, 2, "required: NODE"),
    ("node-empty", ["be-primary", ""], {}, 2, "a node id must not be empty"),
    ("node-not-utf8", ["be-primary", b"n\xff1"], {}, 2, "'n\\xff1' is not valid UTF-8"),
    ("primary-id-empty", ["be-secondary", "n2", "", "127.0.0.1"], {}, 2, "must not be empty"),
    ("primary-ip-bad", ["be-secondary", "n2", "n1", "not-an-ip"], {}, 2,
     "PRIMARY_IP: 'not-an-ip' is not an IP address"),
    ("primary-args-missing", ["be-secondary", "n2"], {}, 2, "PRIMARY_ID, PRIMARY_IP"),
    ("path-empty", ["status", "--path", ""], {}, 2, "--path: the path is empty"),
    ("path-too-long", ["status", "--path", "/tmp/" + "x" * 200], {}, 2,
     "too long for a socket path"),
    ("token-file-missing", ["status", "--token-file", "/nonexistent/token"], {}, 2,
     "cannot read --token-file '/nonexistent/token': No such file or directory"),
    ("token-file-directory", ["status", "--token-file", "/"], {}, 2, "Is a directory"),
    ("token-file-empty", ["status", "--token-file", "{empty}"], {}, 2,
     "the HA token in --token-file '{empty}' is empty"),
    ("token-file-endless", ["status", "--token-file", "/dev/zero"], {}, 2,
     "longer than 64 KiB: not a token file"),
    ("token-argv-empty", ["be-none", "--token", ""], {"CONFD_HA_TOKEN": ""}, 2,
     "the HA token given with --token is empty"),
    ("token-none-no-tty", ["status"], {"CONFD_HA_TOKEN": ""}, 2,
     "no HA token: use --token-file FILE or $CONFD_HA_TOKEN"),
    ("access-file-missing", ["status", "--ipc-port", "{dead}"],
     {"CONFD_IPC_ACCESS_FILE": "/nonexistent/secret"}, 2,
     "cannot read the IPC access file '/nonexistent/secret' named by $CONFD_IPC_ACCESS_FILE"),
    ("watch-takes-no-token", ["watch", "--token-file", "f"], {}, 2,
     "unrecognized arguments: --token-file f (see `confd-ha watch --help`)"),
    ("json-usage-error", ["--debug", "status", "--json", "--ipc-port", "99999"], {}, 2,
     "is not a port number"),
    ("cdb-no-action", ["cdb"], {}, 2, "required: ACTION"),
    ("cdb-unknown-action", ["cdb", "sett", "/a", "1"], {}, 2,
     "unknown cdb action 'sett' (did you mean set?)"),
    ("cdb-phase-text", ["cdb", "phase", "x"], {}, 2, "'x' is not a start phase"),
    ("cdb-upgrade-maybe", ["cdb", "upgrade", "maybe"], {}, 2, "invalid choice: 'maybe'"),
    ("cdb-partition-name", ["cdb", "partition", "peer.example"], {}, 2,
     "'peer.example' is not an IP address"),
    ("cdb-set-no-value", ["cdb", "set", "/only-path"], {}, 2, "required: VALUE"),
    ("cdb-value-not-utf8", ["cdb", "set", "/a", b"\xfe"], {}, 2, "is not valid UTF-8"),
    ("cdb-bad-path", ["cdb", "set", "relative", "v", "--ipc-address", "127.0.0.%d" % BASE,
                      "--ipc-port", "{node_port}"], {}, 2, "path"),
    ("demo-tick-zero", ["demo", "--tick", "0"], {}, 2, "'0' is not a tick timeout"),
    ("demo-prefix-bad", ["demo", "--prefix", "10.0.0"], {}, 2,
     "'10.0.0' is not an address prefix"),
    ("emulate-ha-port-zero", ["emulate", "--ha-port", "0"], {}, 2, "--ha-port: '0'"),
    ("emulate-log-level", ["emulate", "--log-level", "loud"], {}, 2, "--log-level"),
    ("emulate-vsn-text", ["emulate", "--vsn", "v8"], {}, 2, "'v8' is not an integer"),
    ("completion-fish", ["completion", "fish"], {}, 2, "invalid choice: 'fish'"),
    # -------- the HA agent: command line, configuration, environment, installation (2)
    ("agent-no-action", ["agent"], {}, 2, "required: ACTION"),
    ("agent-unknown-action", ["agent", "lst"], {}, 2,
     "unknown agent action 'lst' (did you mean list?)"),
    ("agent-config-missing", ["agent", "run", "--config", "/nonexistent/agent.toml"], {}, 2,
     "cannot read the configuration /nonexistent/agent.toml: No such file or directory"),
    ("agent-config-bad-toml", ["agent", "run", "--config", "{bad_toml}"], {}, 2,
     "{bad_toml} is not valid TOML: "),
    ("agent-config-bad-ttl", ["agent", "run", "--config", "{ttl_toml}"], {}, 2,
     "bad agent configuration: ttl must be an integer number of seconds >= 2"),
    ("agent-config-unknown-setting", ["agent", "run", "--config", "{unknown_toml}"], {}, 2,
     "unknown setting 'colour'"),
    ("agent-config-token-inside", ["agent", "run", "--config", "{token_toml}"], {}, 2,
     "the HA token is not a setting; put it in token_file"),
    ("agent-list-bad-config", ["agent", "list", "--config", "{bad_toml}"], {}, 2,
     "is not valid TOML"),
    ("agent-ttl-option", ["agent", "run", "--ttl", "1"], {}, 2,
     "--ttl: '1' is not a lease TTL (a whole number of seconds, at least 2)"),
    ("agent-ttl-text", ["agent", "run", "--ttl", "ten"], {}, 2, "'ten' is not a lease TTL"),
    ("agent-ttl-vs-loop", ["agent", "run", "--cluster", "c", "--node-id", "n1", "--ttl", "3",
                           "--loop-wait", "1"], {}, 2,
     "ttl must be > 2 * loop_wait + order_timeout"),
    ("agent-loop-wait-zero", ["agent", "run", "--loop-wait", "0"], {}, 2,
     "--loop-wait: '0' is not a number of seconds"),
    ("agent-no-node-id", ["agent", "run", "--cluster", "c"], {}, 2, "node_id must be set"),
    ("agent-no-token", ["agent", "run", "--cluster", "c", "--node-id", "n1"],
     {"CONFD_HA_TOKEN": ""}, 2, "no HA token: set token_file in the configuration or the "
     "environment variable CONFD_HA_TOKEN"),
    ("agent-token-file-missing", ["agent", "run", "--cluster", "c", "--node-id", "n1",
                                  "--token-file", "/nonexistent/token"], {}, 2,
     "cannot read token_file /nonexistent/token"),
    ("agent-token-file-endless", ["agent", "run", "--cluster", "c", "--node-id", "n1",
                                  "--token-file", "/dev/zero"], {}, 2,
     "token_file /dev/zero is longer than 64 KiB: not a token file"),
    ("agent-api-port", ["agent", "run", "--api-port", "70000"], {}, 2,
     "--api-port: '70000' is not a port number"),
    ("agent-no-cluster", ["agent", "list"], {}, 2,
     "no cluster name: give --cluster NAME, $CONFD_HA_CLUSTER or --config FILE"),
    ("agent-cluster-bad", ["agent", "pause", "--cluster", "a b"], {}, 2,
     "--cluster: 'a b' is not a cluster name"),
    ("agent-etcd-no-scheme", ["agent", "list", "--cluster", "c", "--etcd", "127.0.0.1:2379"], {},
     2, "--etcd: '127.0.0.1:2379' is not an etcd URL (http://host:port"),
    ("agent-etcd-no-port", ["agent", "list", "--cluster", "c", "--etcd", "http://127.0.0.1"], {},
     2, "'http://127.0.0.1' has no port"),
    ("agent-etcd-empty-item", ["agent", "resume", "--cluster", "c", "--etcd",
                               "http://127.0.0.1:2379,"], {}, 2, "is not a list of etcd URLs"),
    ("agent-env-etcd", ["agent", "list", "--cluster", "c"], {"CONFD_HA_ETCD": "ftp://x:1"}, 2,
     "$CONFD_HA_ETCD: 'ftp://x:1' is not an etcd URL"),
    ("agent-env-cluster", ["agent", "list"], {"CONFD_HA_CLUSTER": "a/b"}, 2,
     "$CONFD_HA_CLUSTER: 'a/b' is not a cluster name"),
    ("agent-switchover-no-to", ["agent", "switchover", "--cluster", "c"], {}, 2,
     "required: --to"),
    ("agent-to-empty", ["agent", "failover", "--to", ""], {}, 2, "a node id must not be empty"),
    ("agent-timeout-zero", ["agent", "list", "--timeout", "0"], {}, 2,
     "--timeout: '0' is not a number of seconds (more than 0"),
    ("agent-no-httpx", ["agent", "list", "--cluster", "c"], {"PYTHONPATH": "{nohttpx}"}, 2,
     "the agent needs the Python package httpx"),
    ("agent-no-httpx-json", ["agent", "list", "--cluster", "c", "--json"],
     {"PYTHONPATH": "{nohttpx}"}, 2, "pip install 'confd-ha[agent]'"),
    ("demo-agent-no-etcd", ["demo", "--agent"], {"ETCD": "/nonexistent/etcd"}, 2,
     "install it: apt-get install etcd-server"),
    # -------- the target (3)
    ("nothing-listens", ["status", "--ipc-port", "{dead}"], {}, 3,
     "cannot connect to ConfD at 127.0.0.1:{dead}: nothing listens there"),
    ("nothing-listens-watch", ["watch", "--ipc-port", "{dead}"], {}, 3,
     "cannot connect to ConfD at 127.0.0.1:{dead}: nothing listens there"),
    ("nothing-listens-nso", ["be-none", "--nso"], {"NCS_IPC_PORT": "{dead}"}, 3,
     "cannot connect to NSO at 127.0.0.1:{dead}"),
    ("no-unix-socket", ["be-none", "--path", "/nonexistent/confd.sock"], {}, 3,
     "cannot connect to ConfD at /nonexistent/confd.sock: no such socket"),
    ("http-status", ["status", "--ipc-port", "{http}"], {}, 3,
     "127.0.0.1:{http} is not a ConfD IPC port: it answered something else"),
    ("http-watch", ["watch", "--ipc-port", "{http}"], {}, 3,
     "127.0.0.1:{http} is not a ConfD IPC port: it answered something else"),
    ("http-order", ["be-primary", "n1", "--ipc-port", "{http}"], {}, 3,
     "127.0.0.1:{http} is not a ConfD IPC port"),
    ("hangs-up", ["status", "--ipc-port", "{hangup}"], {}, 3,
     "127.0.0.1:{hangup} closed the connection during the handshake"),
    ("never-answers-hello", ["status", "--ipc-port", "{silent}", "--timeout", "0.5"], {}, 3,
     "no answer from 127.0.0.1:{silent} in 0.5 s while connecting: is it a ConfD IPC port?"),
    ("no-tcp-answer", ["status", "--ipc-port", "{full}", "--timeout", "0.5"], {}, 3,
     "no answer from 127.0.0.1:{full} in 0.5 s: the host does not answer"),
    ("cdb-nothing-there", ["cdb", "txid", "--ipc-port", "{dead}"], {}, 3,
     "cannot reach the emulated node at 127.0.0.1:{dead}: no `confd-ha emulate` runs there"),
    ("agent-etcd-unreachable", ["agent", "list", "--cluster", "c", "--etcd",
                                "http://127.0.0.1:{dead},http://127.0.0.2:{dead}",
                                "--timeout", "1"], {}, 3,
     "cannot reach etcd at http://127.0.0.1:{dead}, http://127.0.0.2:{dead}: no usable answer"),
    ("agent-etcd-unreachable-json", ["agent", "pause", "--json", "--cluster", "c", "--etcd",
                                     "http://127.0.0.1:{dead}", "--timeout", "1"], {}, 3,
     "cannot reach etcd at http://127.0.0.1:{dead}"),
    ("agent-etcd-is-http", ["agent", "list", "--cluster", "c", "--etcd",
                            "http://127.0.0.1:{http}", "--timeout", "1"], {}, 3,
     "cannot reach etcd at http://127.0.0.1:{http}"),
    ("agent-run-etcd-unreachable", ["agent", "run", "--cluster", "c", "--node-id", "n1",
                                    "--api-port", "0", "--etcd", "http://127.0.0.1:{dead}"], {},
     3, "cannot reach etcd at http://127.0.0.1:{dead}"),
    ("agent-run-api-port-busy", ["agent", "run", "--cluster", "c", "--node-id", "n1",
                                 "--api-port", "{http}"], {}, 3,
     "cannot listen on 127.0.0.1:{http} for the health endpoint"),
    # -------- the HA agent: etcd answers, the cluster's state refuses (1) or times out (4)
    ("agent-switchover-unknown-member", ["agent", "switchover", "--to", "n9", "--cluster",
                                         "bad", "--etcd", "{etcd}"], {}, 1,
     "no such member: n9 (members: n1, n2, n3)"),
    ("agent-switchover-unknown-json", ["agent", "switchover", "--to", "n9", "--json",
                                       "--cluster", "bad", "--etcd", "{etcd}"], {}, 1,
     "no such member: n9"),
    ("agent-switchover-to-leader", ["agent", "switchover", "--to", "n1", "--cluster", "bad",
                                    "--etcd", "{etcd}"], {}, 1, "n1 is already the leader"),
    ("agent-switchover-not-in-sync", ["agent", "switchover", "--to", "n3", "--cluster", "bad",
                                      "--etcd", "{etcd}"], {}, 1,
     "candidate not in sync: n3 is secondary of n1, health: node n3 does not answer"),
    ("agent-failover-unknown-member", ["agent", "failover", "--to", "n7", "--cluster", "bad",
                                       "--etcd", "{etcd}"], {}, 1, "no such member: n7"),
    ("agent-failover-paused", ["agent", "failover", "--cluster", "paused", "--etcd", "{etcd}"],
     {}, 1, "the cluster is paused: the agents order nothing; resume it first"),
    ("agent-switchover-no-leader", ["agent", "switchover", "--to", "n2", "--cluster", "empty",
                                    "--etcd", "{etcd}"], {}, 1, "no leader"),
    # -------- no answer in time (4)
    ("order-times-out", ["be-primary", "n1", "--ipc-port", "{hello}", "--timeout", "0.5"], {}, 4,
     "no answer from ConfD at 127.0.0.1:{hello} in 0.5 s: the order may still take effect; "
     "check with `confd-ha status`"),
    ("status-times-out", ["status", "--ipc-port", "{hello}", "--timeout", "0.5"], {}, 4,
     "no answer from ConfD at 127.0.0.1:{hello} in 0.5 s"),
    ("agent-switchover-times-out", ["agent", "switchover", "--to", "n2", "--cluster", "bad",
                                    "--etcd", "{etcd}", "--timeout", "1"], {}, 4,
     "switchover to n2 not done within 1 s"),
    # -------- the node refuses (1)
    ("relay-on-none", ["be-relay", "--ipc-address", "127.0.0.%d" % BASE, "--ipc-port",
                       "{node_port}"], {}, 1,
     "ConfD at 127.0.0.%d:{node_port} refused: daemon error 17 ERR_BADSTATE" % BASE),
    ("cdb-no-value", ["cdb", "get", "/missing", "--ipc-address", "127.0.0.%d" % BASE,
                      "--ipc-port", "{node_port}"], {}, 1, "no value at '/missing'"),
    ("cdb-phase-backwards", ["cdb", "phase", "1", "--ipc-address", "127.0.0.%d" % BASE,
                             "--ipc-port", "{node_port}"], {}, 1, "refused"),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The values of the cases' {placeholders}: servers that are not ConfD and one emulated
    node (a NONE node with a control endpoint)."""
    from confd_ha.testing.cluster import Cluster

    files = tmp_path_factory.mktemp("cli-bad")
    empty = files / "empty-token"
    empty.write_bytes(b"\n")
    tomls = {"bad_toml": "cluster = \"c\"\nnode_id = n1\n",
             "ttl_toml": "cluster = \"c\"\nnode_id = \"n1\"\nttl = 1\n",
             "unknown_toml": "cluster = \"c\"\nnode_id = \"n1\"\ncolour = \"blue\"\n",
             "token_toml": "cluster = \"c\"\nnode_id = \"n1\"\ntoken = \"%s\"\n" % TOKEN}
    for name, text in tomls.items():
        (files / (name + ".toml")).write_text(text)
    fake = files / "no-httpx" / "httpx"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError(\"No module named 'httpx'\")\n")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with Server(http) as h, Server(silent) as s, Server(hang_up) as u, \
            Server(hello_then_silent) as hello, full_backlog() as full, \
            Cluster(1, base=BASE, tick_timeout=0.2, control=True) as c:
        yield dict({"dead": dead_port(), "http": h.port, "silent": s.port, "hangup": u.port,
                    "hello": hello.port, "full": full, "node_port": c[0].ipc_port,
                    "empty": str(empty),
                    "nohttpx": os.pathsep.join([str(fake.parent), root])},
                   **{name: str(files / (name + ".toml")) for name in tomls})


@contextlib.contextmanager
def full_backlog():
    """A port whose listen queue is full and never accepted from: a new connection's SYN is
    dropped, as by a host that does not answer."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    held = []
    try:
        for _ in range(2):
            c = socket.socket()
            c.settimeout(0.3)
            try:
                c.connect(("127.0.0.1", port))
                held.append(c)
            except OSError:   # the queue is full now
                c.close()
                break
        yield port
    finally:
        for c in held:
            c.close()
        listener.close()


def _fill(value, world):
    if isinstance(value, bytes):
        return value
    return value.format(**world)


@pytest.fixture(scope="module")
def etcd_world():
    """A one-member etcd (127.0.16.1) holding three clusters written by hand, as agents
    would have: ``bad`` (leader n1; n2 a healthy secondary of n1; n3 a secondary whose node
    does not answer), ``paused`` (a leader and the pause key) and ``empty`` (one member, no
    leader)."""
    from confd_ha.testing.etcd import EtcdCluster, EtcdNotFound, find_etcd

    try:
        find_etcd()
    except EtcdNotFound as exc:
        if os.environ.get("CI"):
            pytest.fail("etcd is missing (CI is set): %s" % exc)
        pytest.skip("etcd is missing: apt-get install etcd-server")
    with EtcdCluster(1, prefix="127.0.16.") as etcd:
        url = etcd.endpoints[0]

        def member(node, state, primary=None, health="ok"):
            return {"node": node, "ha_address": "127.0.0.1", "ipc": "127.0.0.1:4565",
                    "state": state, "primary": primary, "connected": [], "health": health,
                    "api": None, "lease": 0, "in_sync_with": primary, "paused": False,
                    "updated": "2025-01-01T00:00:00.000Z"}
        leader = {"node": "n1", "ha_address": "127.0.0.1", "since": "2025-01-01T00:00:00.000Z"}
        for key, value in (
                ("/confd-ha/bad/leader", leader),
                ("/confd-ha/bad/members/n1", member("n1", "primary")),
                ("/confd-ha/bad/members/n2", member("n2", "secondary", "n1")),
                ("/confd-ha/bad/members/n3", member("n3", "secondary", "n1",
                                                    "node n3 does not answer")),
                ("/confd-ha/paused/leader", leader),
                ("/confd-ha/paused/members/n1", member("n1", "primary")),
                ("/confd-ha/paused/pause", {"since": "2025-01-01T00:00:00.000Z",
                                            "by": "operator"}),
                ("/confd-ha/empty/members/n2", member("n2", "none"))):
            _etcd_put(url, key, json.dumps(value))
        yield {"etcd": url}


def _etcd_put(url: str, key: str, value: str) -> None:
    import base64
    import urllib.request

    body = json.dumps({"key": base64.b64encode(key.encode()).decode(),
                       "value": base64.b64encode(value.encode()).decode()}).encode()
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    opener.open(urllib.request.Request(url + "/v3/kv/put", body), timeout=10).close()


@pytest.mark.parametrize("name, argv, env, code, message", CASES, ids=[c[0] for c in CASES])
def test_bad_input(world, request, name, argv, env, code, message):
    if name.startswith("agent-") and "{nohttpx}" not in str(env) and not os.environ.get("CI"):
        pytest.importorskip("httpx", reason="the agent needs httpx: pip install "
                                            "'confd-ha[agent]'")
    if any("{etcd}" in a for a in argv if isinstance(a, str)):
        world = dict(world, **request.getfixturevalue("etcd_world"))
    argv = [_fill(a, world) for a in argv]
    p = run(argv, env=environment(**{k: _fill(v, world) for k, v in env.items()}))
    assert "Traceback" not in p.stdout + p.stderr
    assert p.returncode == code, (p.stdout, p.stderr)
    # documented: in the exit-code table and in the command's own --help
    assert code in [c for c, _name, _text in EXIT_CODES]
    command = next((a for a in argv if isinstance(a, str) and not a.startswith("-")), "")
    if command in ("status", "watch", "be-primary", "be-secondary", "be-none", "be-relay",
                   "cdb", "emulate", "demo", "completion", "agent"):
        assert code in [c for c, _text in exit_codes(command)]
    errors = [line for line in p.stderr.splitlines() if line.startswith("confd-ha: ")]
    others = [line for line in p.stderr.splitlines() if not line.startswith("confd-ha: ")]
    assert len(errors) == 1, p.stderr
    assert all(line.startswith(("note: ", "warning: ")) for line in others), p.stderr
    assert _fill(message, world) in errors[0]
    if "--json" in argv:
        doc = json.loads(p.stdout)
        assert doc["error"]["exit_code"] == code
        assert doc["error"]["message"] == errors[0][len("confd-ha: "):]
    else:
        assert p.stdout == ""


def test_there_are_at_least_40_cases():
    assert len(CASES) >= 40
    assert {c[3] for c in CASES} == {1, 2, 3, 4}


def test_every_documented_exit_code_is_in_docs_cli_md():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "docs", "cli.md"), encoding="utf-8") as f:
        text = f.read()
    for code, name, _text in EXIT_CODES:
        assert re.search(r"\|\s*%d\s*\|\s*`?%s`?" % (code, re.escape(name)), text), code
