"""``confd-ha cdb``: one request to a running emulated node's control endpoint
(:mod:`confd_ha.emulator.control`; the protocol is in docs/emulator.md). The actions and
their requests come from the table of operations, :mod:`confd_ha.control_ops`.

Prints the result as text, or with ``--json`` as one JSON object (the endpoint's ``result``).
Refusals, bad requests and unreachable nodes are raised (``ControlError``, ``Unreachable``)
and become messages and exit codes in :func:`confd_ha.cli_errors.classify`.
"""

from __future__ import annotations

import logging
from typing import Any, Dict

from .cli_errors import EXIT_OK, EXIT_REFUSED, CliError, Context, hostport
from .cli_output import dumps, escape
from .cli_types import shown
from .control_ops import BY_NAME

log = logging.getLogger("confd_ha.cli")


def cdb_request(args: Any) -> Dict[str, Any]:
    """The control request for a ``confd-ha cdb`` command line, from the operation's
    parameters (:data:`confd_ha.control_ops.OPERATIONS`)."""
    op = BY_NAME[args.action]
    req: Dict[str, Any] = {"op": op.name}
    for param in op.params:
        value = getattr(args, param.key, None)
        if param.kind == "switch":
            value = value == "on"
        elif param.kind == "flag":
            value = bool(value)
        elif param.kind == "peer" and value == "all":
            value = None
        if value is None:
            if param.default is None:
                continue
            value = param.default
        req[param.key] = value
    if op.name == "info" and not args.json:
        req["decisions"] = 10   # the text shows the last ten; --json gives them all
    return req


def cmd_cdb(args: Any, ctx: Context, out: Any, err: Any) -> int:
    from .testing.control import ControlClient

    req = cdb_request(args)
    ctx.target = args.control_path or hostport(args.ipc_address, args.ipc_port)
    ctx.timeout = args.timeout
    ctx.order = not BY_NAME[req["op"]].read
    with ControlClient(args.ipc_address, args.ipc_port, path=args.control_path,
                       timeout=args.timeout or None) as client:
        op = req.pop("op")
        log.info("asking the emulated node at %s (control endpoint %s): %s", ctx.target,
                 client.address.replace("\0", "@"), op)
        result = client.request(op, **req)
    if op == "get" and result.get("value") is None:
        raise CliError("no value at %s on the emulated node at %s" % (shown(req["path"]),
                                                                     ctx.target),
                       EXIT_REFUSED, "no-value", ctx.target)
    if args.json:
        print(dumps(result), file=out)
    elif op in ("set", "delete", "txid"):
        print(result["txid"], file=out)
    elif op == "get":
        print(result["value"], file=out)
    elif op == "show":
        for path, value in result["items"]:
            print("%s %s" % (escape(path), escape(value)), file=out)
    elif op == "info":
        print_info(result, out)
    elif not args.quiet:
        print("ok", file=out)
    return EXIT_OK


def print_info(info: Dict[str, Any], out: Any) -> None:
    yes = {True: "yes", False: "no"}
    print("node %s (%s)%s" % (escape(info["name"]), info["flavour"],
                              "" if info["running"] else " NOT RUNNING"), file=out)
    print("state: %s (%d)  node id: %s" % (info["state_name"].lower(), info["state"],
                                           escape(info["node_id"] or "-")), file=out)
    print("ipc: %s  ha: %s  tick timeout: %gs" % (
        hostport(info["ipc"]["address"], info["ipc"]["port"]),
        hostport(info["ha"]["address"], info["ha"]["port"]), info["tick_timeout"]), file=out)
    print("start phase: %d  upgrade: %s  frozen: %s  partitions: %s  joining: %s" % (
        info["start_phase"], yes[info["upgrade"]], yes[info["frozen"]],
        ",".join(info["partitions"]) or "-", yes[info["joining"]]), file=out)
    print("txid: %s  subscribers: %d" % (info["txid"], info["subscribers"]), file=out)
    for p in info["peers"]:
        print("peer: %s %s %s" % (p["role"], escape(p["nodeid"]), p["address"]), file=out)
    for d in info["decisions"]:
        print("decision: %s" % escape(d), file=out)
