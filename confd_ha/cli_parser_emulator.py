"""The parsers of the emulator's commands: ``confd-ha cdb``, ``emulate`` and ``demo``
(part of :func:`confd_ha.cli_parser.build_parser`)."""

from __future__ import annotations

import argparse
import math
from typing import Any, Dict, List, Optional, Tuple

from .cli_parser import (_bad, _general, _json, address_prefix, epilog, file_name,
                         ip_address, listen_port, path, phase, port, tick, timeout, utf8)


def integer(value: str) -> int:
    """An integer in decimal or with a 0x/0o/0b prefix."""
    try:
        return int(value, 0)
    except ValueError:
        raise _bad("'%s' is not an integer (decimal, or hexadecimal with 0x)" % value) from None


def seconds_or_zero(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not (math.isfinite(number) and 0 <= number <= 86400):
        raise _bad("'%s' is not a number of seconds (0 to 86400; 0 = no ticks)" % value)
    return number


def heal_peer(value: str) -> str:
    return value if value == "all" else ip_address(value)


_CDB_ACTIONS: Tuple[Tuple[str, str, List[Tuple[str, str, Any, Optional[str], str]]], ...] = (
    # name, help, positionals [(dest, metavar, type, nargs, help)]
    ("set", "commit PATH = VALUE; prints the new transaction id",
     [("path", "PATH", utf8, None, "an absolute path, e.g. /sys/host"),
      ("value", "VALUE", utf8, None, "the value (text)")]),
    ("get", "print the value at PATH (exit 1 if there is none)",
     [("path", "PATH", utf8, None, "an absolute path")]),
    ("delete", "delete PATH and everything below it; prints the new transaction id",
     [("path", "PATH", utf8, None, "an absolute path")]),
    ("show", "print every path and value (below PREFIX)",
     [("prefix", "PREFIX", utf8, "?", "only paths below this one (default /)")]),
    ("txid", "print the datastore's transaction id", []),
    ("phase", "advance the start phase (0 -> 1 -> 2, one step at a time)",
     [("arg", "N", phase, None, "the new start phase: 1 or 2")]),
    ("upgrade", "set (on) or clear (off) 'upgrade in progress'",
     [("arg", "on|off", None, None, "on or off")]),
    ("kill", "kill the node: every socket closed abruptly (the process keeps running)", []),
    ("stop", "stop the node in an orderly way (peers get a goodbye)", []),
    ("start", "start a stopped or killed node again (state none, data kept)", []),
    ("restart", "stop (or --kill) and start the node again", []),
    ("freeze", "hold all inter-node traffic, sockets open (peers see HA_NOTICK)", []),
    ("thaw", "release a freeze", []),
    ("partition", "hold inter-node traffic with IP, both ways",
     [("arg", "IP", ip_address, None, "the peer's address")]),
    ("heal", "end the partition from IP (all partitions without IP)",
     [("arg", "IP", heal_peer, "?", "the peer's address, or all (the default)")]),
    ("info", "state, node id, addresses, peers, subscribers, transaction id, decisions", []),
)


def _cdb_options(p: argparse.ArgumentParser, level: int) -> None:
    g = p.add_argument_group("node options (before or after ACTION)")
    g.add_argument("--nso", action="store_const", const="nso", dest="flavour",
                   help="an NSO-flavoured node: $NCS_IPC_ADDR/$NCS_IPC_PORT, port 4569")
    g.add_argument("--flavour", choices=("confd", "nso"), help="confd (default) or nso")
    g.add_argument("--ipc-address", type=ip_address, metavar="ADDRESS",
                   help="the emulated node's IPC address (default: $CONFD_IPC_ADDR or "
                        "127.0.0.1; NSO: $NCS_IPC_ADDR)")
    g.add_argument("--ipc-port", type=port, metavar="PORT",
                   help="the emulated node's IPC port (default: $CONFD_IPC_PORT or 4565; NSO: "
                        "$NCS_IPC_PORT or 4569)")
    g.add_argument("--control-path", type=path, metavar="PATH",
                   help="the node's control endpoint path, if it was started with one")
    g.add_argument("--timeout", type=timeout, metavar="SECONDS",
                   help="wait at most this long for the node (default 120; 0 = forever)")
    _json(g, "print the result as a JSON object")
    _general(p, level)


def add_cdb(sub) -> None:
    sp = sub.add_parser(
        "cdb", help="read or write an emulated node's datastore; provoke failures",
        description="Reach a running emulated node (`confd-ha emulate`, or a runner node "
        "with a control endpoint) through its control endpoint, named after its IPC address "
        "and port: read and write its datastore, or provoke failures (kill, freeze, "
        "partition, ...). Options may stand before or after ACTION. Real ConfD has no "
        "control endpoint.", epilog=epilog("cdb"))
    sp.set_defaults(cmd="cdb")
    _cdb_options(sp, 1)
    actions = sp.add_subparsers(dest="action", metavar="ACTION", title="actions")
    actions.required = True
    for name, helptext, positionals in _CDB_ACTIONS:
        a = actions.add_parser(name, help=helptext, description=helptext[0].upper()
                               + helptext[1:] + ".", epilog=epilog("cdb"))
        for dest, metavar, kind, nargs, poshelp in positionals:
            kw: Dict[str, Any] = {"metavar": metavar, "help": poshelp}
            if kind is not None:
                kw["type"] = kind
            if nargs:
                kw["nargs"], kw["default"] = nargs, None
            if name == "upgrade":
                kw["choices"] = ("on", "off")
            a.add_argument(dest, **kw)
        if name == "restart":
            a.add_argument("--kill", action="store_true",
                           help="kill instead of an orderly stop")
        _cdb_options(a, 2)


def add_emulate(sub) -> None:
    sp = sub.add_parser(
        "emulate", help="run an emulated ConfD/NSO HA node until SIGTERM/SIGINT",
        description="Run one emulated ConfD (or NSO) HA node until SIGTERM or SIGINT. When its "
        "IPC listener and control endpoint are up it prints one line:\n\n"
        "  ready ipc=127.0.0.1:4565 ha=127.0.0.1:4569 control=@confd-ha-ctl:127.0.0.1:4565 "
        "flavour=confd phase=2 pid=4242\n\n"
        "(--json: the same as a JSON object). Logs go to stderr. The HA token is never an "
        "option: whoever connects an HA control socket sets it. See docs/emulator.md.",
        epilog=epilog("emulate"))
    sp.set_defaults(cmd="emulate")
    g = sp.add_argument_group("node")
    g.add_argument("--flavour", choices=("confd", "nso"), default="confd",
                   help="confd (default) or nso: the default ports follow")
    g.add_argument("--nso", action="store_const", const="nso", dest="flavour",
                   help="= --flavour nso")
    g.add_argument("--ipc-address", type=ip_address, default=None, metavar="ADDRESS",
                   help="IPC listen address (default 127.0.0.1)")
    g.add_argument("--ipc-port", type=listen_port, default=None, metavar="PORT",
                   help="IPC port (default 4565; NSO 4569; 0 = any free port)")
    g.add_argument("--ipc-path", type=path, default=None, metavar="PATH",
                   help="also listen on this AF_UNIX path")
    g.add_argument("--ha-address", type=ip_address, default=None, metavar="ADDRESS",
                   help="HA listen and source address (default: the IPC address)")
    g.add_argument("--ha-port", type=port, default=None, metavar="PORT",
                   help="HA port (default 4569; NSO 4570)")
    g.add_argument("--tick-timeout", type=seconds_or_zero, default=None, metavar="SECONDS",
                   help="tick timeout (default 20; 0 disables ticks)")
    g.add_argument("--data-dir", type=file_name, default=None, metavar="DIR",
                   help="keep the datastore journal in DIR")
    g.add_argument("--ipc-access-file", type=file_name, default=None, metavar="FILE",
                   help="enable the IPC access check with the secret in FILE")
    g.add_argument("--start-phase", type=int, choices=(0, 2), default=2,
                   help="start in phase 0 (orders refused until `cdb phase`) or 2 (default)")
    g.add_argument("--name", type=utf8, default=None, help="label for logs")
    g = sp.add_argument_group("compatibility and behaviour")
    g.add_argument("--no-bind-source", action="store_true", default=False,
                   help="do not bind outgoing HA connections to the HA address (as ConfD)")
    g.add_argument("--confd-quirks", action="store_true", default=False,
                   help="also reproduce ConfD's robustness defects on the IPC port "
                        "(docs/conformance-ipc.md)")
    g.add_argument("--accept-proto-vsn", default=None, metavar="LO:HI",
                   help="accept only client protocol versions in this inclusive range")
    g.add_argument("--ha-vsn", type=integer, default=None, metavar="N",
                   help="HA protocol version (join check)")
    g.add_argument("--proto-vsn", type=integer, default=None, metavar="N",
                   help="protocol version reported in the hello reply (default 82)")
    g.add_argument("--vsn", type=integer, default=None, metavar="N",
                   help="version identity in the hello reply (default 0x08020500)")
    g.add_argument("--fxs-fingerprint", type=utf8, default=None, metavar="TEXT",
                   help="schema fingerprint (join check)")
    g.add_argument("--ha-config-fingerprint", type=utf8, default=None, metavar="TEXT",
                   help="HA-config fingerprint (join check)")
    g = sp.add_argument_group("process")
    g.add_argument("--log-level", type=str.lower, default=None,
                   choices=("debug", "info", "warning", "error", "critical"),
                   help="log level on stderr (default warning; -v: info, -vv: debug)")
    g.add_argument("--control-path", type=path, default=None, metavar="PATH",
                   help="control endpoint on this AF_UNIX path (default: the abstract socket "
                        "@confd-ha-ctl:ADDRESS:PORT)")
    g.add_argument("--exit-on-stdin-eof", action="store_true", default=False,
                   help="also stop when stdin is closed (a supervisor's pipe)")
    _json(g, "print the ready line as a JSON object")
    _general(sp, 1)


def add_demo(sub) -> None:
    sp = sub.add_parser(
        "demo", help="a whole HA lifecycle on three emulated nodes, narrated",
        description="Run three emulated ConfD nodes in this process and drive them through a "
        "whole HA lifecycle, as an HA framework would, narrating each step: a primary, a "
        "synchronous and an asynchronous join, replication, a refused write, the primary's "
        "death, failover and re-pointing. Each step checks what it shows. The nodes listen "
        "on PREFIX1, PREFIX2, PREFIX3 (default 127.0.0.1-3) with free ports.\n\n"
        "With --agent the HA agent does the work instead: a three-member etcd on 127.0.1.1-3 "
        "(free ports), three nodes and one `confd-ha agent` each, in this process; the "
        "election, the primary node killed and the automatic failover (timed), a switchover "
        "back, then everything stopped. It needs etcd (apt-get install etcd-server, or $ETCD) "
        "and httpx (pip install 'confd-ha[agent]').",
        epilog=epilog("demo"))
    sp.set_defaults(cmd="demo")
    sp.add_argument("--tick", type=tick, default=0.5, metavar="SECONDS",
                    help="tick timeout of the demo nodes (default 0.5)")
    sp.add_argument("--prefix", type=address_prefix, default="127.0.0.", metavar="PREFIX",
                    help="address prefix of the nodes (default 127.0.0.: 127.0.0.1-3)")
    sp.add_argument("--agent", action="store_true", default=False,
                    help="let three HA agents on a three-member etcd do the failover and a "
                         "switchover")
    _general(sp, 1)
