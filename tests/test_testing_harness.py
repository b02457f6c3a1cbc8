"""The harness of confd_ha.testing beyond the runner's basics: one Cluster grown node by node,
the explicit SyncNode attributes, the one table of control operations behind the endpoint and
``confd-ha cdb``, and ``confd-ha emulate``'s start failures through the one exit-code mapper."""

from __future__ import annotations

import re
import socket

import pytest

import confd_ha as ha
from confd_ha import cli_errors, control_ops
from confd_ha.cli_parser import build_parser
from confd_ha.emulator.emulate import StartFailed
from confd_ha.testing.cluster import Cluster
from confd_ha.testing.node import NodeAttribute, SyncNode

PREFIX = "127.0.77."


def test_a_cluster_grown_node_by_node_shares_its_held_ha_port():
    with Cluster(0, reserve=2, prefix=PREFIX, tick_timeout=0.3) as c:
        n1 = c.add("a", 1)
        n2 = c.add("b", "127.0.77.5", start=False)   # beyond the reserved block: held there too
        assert (n1.ipc_address, n2.ipc_address) == ("127.0.77.1", "127.0.77.5")
        assert n1.ha_port == n2.ha_port == c.ha_port
        assert "127.0.77.5" in c.reservation.addresses
        assert c.names == ["a", "b"] and len(c) == 2
        n2.start()
        c.form("tok")
        assert c.primary() is n1
        assert n2.state == ha.STATE_SECONDARY


def test_hold_false_releases_the_ha_port():
    with Cluster(0, reserve=1, prefix=PREFIX, hold=False) as c:
        s = socket.socket()
        try:
            s.bind(("127.0.77.1", c.ha_port))   # no SO_REUSEADDR: free only if released
        finally:
            s.close()


def test_sync_node_has_explicit_typed_attributes_only():
    assert not hasattr(SyncNode, "__getattr__")
    for name in ("running", "state", "state_name", "node_id", "start_phase", "upgrade",
                 "frozen", "partitions", "txid", "subscribers", "joining", "decisions", "peers",
                 "name", "ipc_address", "ipc_port", "ha_address", "ha_port"):
        assert isinstance(SyncNode.__dict__[name], NodeAttribute), name
    with Cluster(1, prefix=PREFIX) as c:
        with pytest.raises(AttributeError):
            c[0].serving   # a Node method SyncNode does not offer


def test_the_cdb_actions_are_the_table_of_operations():
    parser = build_parser()
    cli = {op.name for op in control_ops.OPERATIONS if op.cli}
    assert cli == set(control_ops.OPS) - {"commit"}
    for name in cli:
        parser.parse_args(["cdb", name] + {"set": ["/a", "v"], "get": ["/a"], "delete": ["/a"],
                                          "phase": ["1"], "upgrade": ["on"],
                                          "partition": ["10.0.0.1"]}.get(name, []))


@pytest.mark.parametrize("req, message", [
    ({"op": "set", "path": "/a"}, "missing argument 'value'"),
    ({"op": "phase", "phase": True}, "argument 'phase' must be an integer"),
    ({"op": "phase", "phase": 7}, "phase must be 0, 1 or 2"),
    ({"op": "info", "decisions": -1}, "argument 'decisions' must be >= 0"),
    ({"op": "upgrade", "on": "yes"}, "argument 'on' must be true or false"),
    ({"op": "partition", "peer": "nowhere"}, "argument 'peer' must be an IP address, not 'nowhere'"),
    ({"op": "commit", "changes": [["move", "/a"]]},
     'change #0 must be ["set", path, value] or ["delete", path]'),
])
def test_arguments_are_checked_by_the_table(req, message):
    with pytest.raises(control_ops.BadRequest, match="^%s$" % re.escape(message)):
        control_ops.parse_args(control_ops.BY_NAME[req["op"]], req)


def test_heal_without_a_peer_and_show_without_a_prefix_take_the_defaults():
    assert control_ops.parse_args(control_ops.BY_NAME["heal"], {"peer": None}) == {"peer": None}
    assert control_ops.parse_args(control_ops.BY_NAME["show"], {}) == {"prefix": "/"}


def test_emulate_start_failures_go_through_classify():
    ctx = cli_errors.Context("emulate")
    listen = cli_errors.classify(StartFailed("cannot listen on 127.0.0.1:1: no", True,
                                             "127.0.0.1:1"), ctx)
    assert (listen.exit_code, listen.kind, listen.target) == (cli_errors.EXIT_UNREACHABLE,
                                                               "unreachable", "127.0.0.1:1")
    other = cli_errors.classify(StartFailed("cannot open the datastore: locked"), ctx)
    assert (other.exit_code, other.kind, other.message) == (
        cli_errors.EXIT_REFUSED, "failed", "cannot open the datastore: locked")


def test_the_daemon_never_imports_the_harness():
    """confd_ha.emulator is the daemon only: what runs nodes (confd_ha.testing) uses it, never
    the other way round."""
    import ast
    import pathlib

    import confd_ha.emulator

    for path in pathlib.Path(confd_ha.emulator.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                names = [("." * node.level) + (node.module or "")] + [a.name for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                assert "testing" not in name.split("."), (path.name, name)
