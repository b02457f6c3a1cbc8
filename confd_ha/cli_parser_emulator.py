"""The parsers of the emulator's commands: ``confd-ha cdb``, ``emulate`` and ``demo``
(part of :func:`confd_ha.cli_parser.build_parser`)."""

from __future__ import annotations

import argparse
import math
from typing import Any, Callable, Dict, Optional, Tuple

from .cli_parser import _general, _json, action_command, command, epilog, target_options
from .cli_types import (address_prefix, bad, file_name, ip_address, listen_port, path, phase, port,
                        tick, utf8)
from .control_ops import OPERATIONS


def integer(value: str) -> int:
    """An integer in decimal or with a 0x/0o/0b prefix."""
    try:
        return int(value, 0)
    except ValueError:
        raise bad("'%s' is not an integer (decimal, or hexadecimal with 0x)" % value) from None


def seconds_or_zero(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not (math.isfinite(number) and 0 <= number <= 86400):
        raise bad("'%s' is not a number of seconds (0 to 86400; 0 = no ticks)" % value)
    return number


def heal_peer(value: str) -> str:
    return value if value == "all" else ip_address(value)


# How the command line reads each kind of control-operation argument (the table is
# confd_ha.emulator.control_ops.OPERATIONS): (argparse type, choices).
_KINDS: Dict[str, Tuple[Optional[Callable[[str], Any]], Optional[Tuple[str, ...]]]] = {
    "text": (utf8, None), "phase": (phase, None), "switch": (None, ("on", "off")),
}


def _peer_kind(required: bool) -> Callable[[str], str]:
    return ip_address if required else heal_peer


def _cdb_options(p: argparse.ArgumentParser, level: int) -> None:
    g = p.add_argument_group("node options (before or after ACTION)")
    target_options(g, "the emulated node's", "--control-path",
                   "the node's control endpoint path, if it was started with one", "the node")
    _json(g, "print the result as a JSON object")
    _general(p, level)


def add_cdb(sub: Any) -> None:
    actions = action_command(
        sub, "cdb", "read or write an emulated node's datastore; provoke failures", """
        Reach a running emulated node (`confd-ha emulate`, or a runner node with a control
        endpoint) through its control endpoint, named after its IPC address and port: read
        and write its datastore, or provoke failures (kill, freeze, partition, ...). Options
        may stand before or after ACTION. Real ConfD has no control endpoint.
        """, _cdb_options)
    for op in OPERATIONS:
        if not op.cli:
            continue
        a = actions.add_parser(op.name, help=op.help, description=op.help[0].upper()
                               + op.help[1:] + ".", epilog=epilog("cdb"))
        for param in op.params:
            if param.kind == "flag":
                a.add_argument("--" + param.key, action="store_true", help=param.help)
                continue
            if not param.metavar:
                continue
            kw: Dict[str, Any] = {"metavar": param.metavar, "help": param.help}
            kind, choices = (_peer_kind(param.required), None) if param.kind == "peer" \
                else _KINDS[param.kind]
            if kind is not None:
                kw["type"] = kind
            if choices is not None:
                kw["choices"] = choices
            if not param.required:
                kw["nargs"], kw["default"] = "?", None
            a.add_argument(param.key, **kw)
        _cdb_options(a, 2)


def add_emulate(sub: Any) -> None:
    sp = command(sub, "emulate", "run an emulated ConfD/NSO HA node until SIGTERM/SIGINT", """
        Run one emulated ConfD (or NSO) HA node until SIGTERM or SIGINT. When its IPC
        listener and control endpoint are up it prints one line:

          ready ipc=127.0.0.1:4565 ha=127.0.0.1:4569 control=@confd-ha-ctl:127.0.0.1:4565 flavour=confd phase=2 pid=4242

        (--json: the same as a JSON object). Logs go to stderr. The HA token is never an
        option: whoever connects an HA control socket sets it. See docs/emulator.md.
        """)
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


def add_demo(sub: Any) -> None:
    sp = command(sub, "demo", "a whole HA lifecycle on three emulated nodes, narrated", """
        Run three emulated ConfD nodes in this process and drive them through a whole HA
        lifecycle, as an HA framework would, narrating each step: a primary, a synchronous
        and an asynchronous join, replication, a refused write, the primary's death,
        failover and re-pointing. Each step checks what it shows. The nodes listen on
        PREFIX1, PREFIX2, PREFIX3 (default 127.0.0.1-3) with free ports.

        With --agent the HA agent does the work instead: a three-member etcd on 127.0.1.1-3
        (free ports), three nodes and one `confd-ha agent` each, in this process; the
        election, the primary node killed and the automatic failover (timed), a switchover
        back, then everything stopped. It needs etcd (apt-get install etcd-server, or $ETCD)
        and httpx (pip install 'confd-ha[agent]').
        """)
    sp.add_argument("--tick", type=tick, default=0.5, metavar="SECONDS",
                    help="tick timeout of the demo nodes (default 0.5)")
    sp.add_argument("--prefix", type=address_prefix, default="127.0.0.", metavar="PREFIX",
                    help="address prefix of the nodes (default 127.0.0.: 127.0.0.1-3)")
    sp.add_argument("--agent", action="store_true", default=False,
                    help="let three HA agents on a three-member etcd do the failover and a "
                         "switchover")
    _general(sp, 1)
