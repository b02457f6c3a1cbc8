"""The parser of ``confd-ha agent`` (part of :func:`confd_ha.cli_parser.build_parser`):
``agent run`` -- the HA agent of one node -- and the operator actions ``list``,
``switchover``, ``failover``, ``pause`` and ``resume``.

Nothing here imports :mod:`confd_ha.agent` (its dependencies are an optional extra): the
values are checked with the standard library, the settings by ``confd_ha.agent.config``
when the command runs (:mod:`confd_ha.cli_agent`).
"""

from __future__ import annotations

import argparse
import re
from typing import Any, Callable, List, Tuple

from .cli_parser import _general, _json, action_command, epilog, ipc_options
from .cli_types import (bad, decimal, file_name, in_range, ip_address, listen_port, node_id, path,
                        shown, utf8)

DEFAULT_ETCD = "http://127.0.0.1:2379"
_URL = re.compile(r"^(https?)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::(\d+))?/?$")
_CLUSTER = re.compile(r"^[A-Za-z0-9._-]+$")


# ---------------------------------------------------------------- value checks (type=)


def etcd_endpoints(value: str) -> List[str]:
    """``URL[,URL...]``: etcd client URLs, ``http://host:port`` (or https), port required."""
    utf8(value)
    urls = [u.strip() for u in value.split(",")]
    if not value.strip() or any(not u for u in urls):
        raise bad("%s is not a list of etcd URLs (http://host:port, comma-separated)"
                   % shown(value))
    for u in urls:
        m = _URL.match(u)
        if m is None:
            raise bad("%s is not an etcd URL (http://host:port, e.g. %s)"
                       % (shown(u), DEFAULT_ETCD))
        if m.group(3) is None:
            raise bad("%s has no port (etcd's client port is usually 2379: %s:2379)"
                       % (shown(u), u.rstrip("/")))
        if not 1 <= int(m.group(3)) <= 65535:
            raise bad("%s: %s is not a port number (1-65535)" % (shown(u), m.group(3)))
    return [u.rstrip("/") for u in urls]


def cluster_name(value: str) -> str:
    utf8(value)
    if not _CLUSTER.match(value):
        raise bad("%s is not a cluster name (letters, digits, '.', '_', '-')" % shown(value))
    return value


def ttl(value: str) -> int:
    return in_range(value, decimal, 2, 10 ** 6,
                     "%s is not a lease TTL (a whole number of seconds, at least 2)")


def seconds(value: str) -> float:
    """A finite number of seconds, more than 0."""
    return in_range(value, float, 0.0, 1e6,
                     "%s is not a number of seconds (more than 0, at most 1000000)", above=True)


# ---------------------------------------------------------------- the parser

_ACTIONS = (
    # name, help, description
    ("run", "run the HA agent of one node until SIGTERM/SIGINT",
     "Run the HA agent of one ConfD/NSO node until SIGTERM or SIGINT: it takes part in the "
     "leader election in etcd, orders its node's HA role (beprimary, besecondary, benone), "
     "demotes its node before its lease can expire when it cannot renew it, and serves the "
     "health endpoint (GET /primary, /secondary, /health, /cluster; on 127.0.0.1:8008 by "
     "default). The settings come from --config FILE (TOML), then the environment, then the "
     "options below, which override both. The HA token comes from the token_file setting "
     "(--token-file) or $CONFD_HA_TOKEN; it is never an option. When it is ready it prints "
     "one line on stdout:\n\n"
     "  ready node=n1 cluster=main api=http://127.0.0.1:8008 etcd=http://127.0.0.1:2379 "
     "pid=4242\n\n"
     "(--json: a JSON object); the log goes to stderr (-q: warnings and errors only, -v: "
     "debug). On SIGTERM or SIGINT a leader demotes its node first, then the agent revokes "
     "its lease (its keys go at once) and exits 0. Needs pip install 'confd-ha[agent]'. See "
     "docs/agent.md."),
    ("list", "show the cluster as etcd and the agents see it",
     "Show the cluster: the leader, the pause, a pending request, and every member as its "
     "agent published it (its node's HA state, its primary, its health, its health "
     "endpoint). Reads etcd only: no HA control socket is opened."),
    ("switchover", "planned handover of the primary role to a secondary in sync",
     "Hand the primary role over to NODE, which must be a healthy secondary of the leader. "
     "The leader's agent waits until its node lists NODE (in sync), demotes its node and "
     "passes the leader key to NODE, whose agent makes it primary. The command waits until "
     "NODE is the primary (--timeout, default 30 s)."),
    ("failover", "force a change of primary, to NODE or to any healthy member",
     "Force a change of the primary role without the in-sync check: to NODE (--to), or "
     "without --to to whichever healthy member wins once the leader stepped down. With no "
     "leader at all, --to NODE makes NODE the leader at once. The command waits until a new "
     "node is the primary (--timeout, default 30 s)."),
    ("pause", "maintenance: the agents order nothing until resume",
     "Put the cluster in maintenance: every agent keeps its lease and goes on publishing, but "
     "orders nothing (no promotion, no demotion, no join) until `confd-ha agent resume`. The "
     "pause stays in etcd until then."),
    ("resume", "end the maintenance pause", "End the maintenance pause: the agents act again."),
)


def _common(p: argparse.ArgumentParser, level: int) -> None:
    """Options of every action, also accepted between ``agent`` and the action (``level``:
    1 there, 2 after the action)."""
    g = p.add_argument_group("cluster")
    g.add_argument("--config", type=file_name, metavar="FILE",
                   help="the agent's TOML file (run: all settings; the other actions read "
                        "its cluster and etcd)")
    g.add_argument("--cluster", type=cluster_name, metavar="NAME",
                   help="the cluster's name: its keys are under /confd-ha/NAME/ (default: "
                        "$CONFD_HA_CLUSTER, else the configuration's)")
    g.add_argument("--etcd", type=etcd_endpoints, metavar="URL[,URL]",
                   help="etcd client URLs (default: $CONFD_HA_ETCD, else the configuration's, "
                        "else %s)" % DEFAULT_ETCD)
    g.add_argument("--timeout", type=seconds, metavar="SECONDS",
                   help="list, pause, resume: the longest wait for etcd (default 5); "
                        "switchover, failover: for the change (default 30); run: for each "
                        "etcd request (default min(1, ttl / 4))")
    _json(g, "print JSON (run: the ready line; the others: the result or the error)")
    _general(p, level)


_TIMING: Tuple[Tuple[str, Callable[[str], float], str], ...] = (
    # option, type, help
    ("--ttl", ttl, "the lease: seconds before a silent agent loses the leadership (default "
                   "10, at least 2)"),
    ("--loop-wait", seconds, "seconds between loops and lease renewals (default ttl / 5)"),
    ("--order-timeout", seconds, "the longest an HA order may take (default 1)"),
    ("--join-timeout", seconds, "the longest a synchronous join may take (default 15)"),
)


def _run_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("node (overrides the configuration)")
    g.add_argument("--node-id", type=node_id, metavar="NODE", help="this node's HA node id")
    ipc_options(g, nso="an NSO node: IPC port 4569 by default (= --flavour nso)",
                flavour="confd (default) or nso",
                ipc_address="the node's IPC address (default 127.0.0.1)",
                ipc_port="the node's IPC port (default 4565; NSO 4569)")
    g.add_argument("--ipc-path", type=path, metavar="PATH",
                   help="the node's IPC port as an AF_UNIX socket instead")
    g.add_argument("--ha-address", type=ip_address, metavar="ADDRESS",
                   help="where the other nodes reach this node's HA port (default: the IPC "
                        "address)")
    g.add_argument("--token-file", type=file_name, metavar="FILE",
                   help="read the HA token from FILE (default: $CONFD_HA_TOKEN)")
    g = p.add_argument_group("timing (overrides the configuration)")
    for flag, kind, text in _TIMING:
        g.add_argument(flag, type=kind, metavar="SECONDS", help=text)
    g = p.add_argument_group("health endpoint (overrides the configuration)")
    g.add_argument("--api-address", type=ip_address, metavar="ADDRESS",
                   help="listen address (default 127.0.0.1: this host only)")
    g.add_argument("--api-port", type=listen_port, metavar="PORT",
                   help="listen port (default 8008; 0 = any free port)")


def add_agent(sub: Any) -> None:
    actions = action_command(
        sub, "agent", "the HA agent on etcd: run it; list, switch over, fail over, pause", """
        A ready HA framework for ConfD/NSO on etcd, Patroni-like: `agent run` on every node
        elects a leader through a leased key in etcd, orders the nodes' HA roles, fails over
        automatically and fences a leader that lost etcd. The other actions are the
        operator's: they read and write etcd only. Options may stand before or after ACTION.
        Needs pip install 'confd-ha[agent]' and an etcd cluster (Debian: apt-get install
        etcd-server). See docs/agent.md.
        """, _common)
    for name, helptext, description in _ACTIONS:
        a = actions.add_parser(name, help=helptext, description=description,
                               epilog=epilog("agent " + name))
        if name == "run":
            _run_options(a)
        elif name in ("switchover", "failover"):
            a.add_argument("--to", type=node_id, metavar="NODE", required=name == "switchover",
                           help="the node to become primary" + (
                               "" if name == "switchover" else " (default: any healthy one)"))
        _common(a, 2)
