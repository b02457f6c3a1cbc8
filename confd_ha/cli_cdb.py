"""``confd-ha cdb``: one request to a running emulated node's control endpoint
(:mod:`confd_ha.emulator.control`; the protocol is in docs/emulator.md).

Prints the result as text, or with ``--json`` as one JSON object (the endpoint's ``result``).
Refusals, bad requests and unreachable nodes are raised (``ControlError``, ``Unreachable``)
and become messages and exit codes in :func:`confd_ha.cli_errors.classify`.
"""

from __future__ import annotations

import logging

from .cli_errors import EXIT_OK, EXIT_REFUSED, CliError, Context, hostport
from .cli_output import dumps, escape
from .cli_parser import shown

log = logging.getLogger("confd_ha.cli")

_READS = ("get", "show", "txid", "info")


def cdb_request(args) -> dict:
    """The control request for a ``confd-ha cdb`` command line."""
    action = args.action
    arg = getattr(args, "arg", None)
    if action == "set":
        return {"op": "set", "path": args.path, "value": args.value}
    if action in ("get", "delete"):
        return {"op": action, "path": args.path}
    if action == "show":
        return {"op": "show", "prefix": getattr(args, "prefix", None) or "/"}
    if action == "phase":
        return {"op": "phase", "phase": arg}
    if action == "upgrade":
        return {"op": "upgrade", "on": arg == "on"}
    if action in ("partition", "heal"):
        req = {"op": action}
        if arg not in (None, "all"):
            req["peer"] = arg
        return req
    if action == "restart":
        return {"op": "restart", "kill": bool(getattr(args, "kill", False))}
    if action == "info":
        return {"op": "info"} if args.json else {"op": "info", "decisions": 10}
    return {"op": action}  # txid, kill, stop, start, freeze, thaw


def cmd_cdb(args, ctx: Context, out, err) -> int:
    from .emulator.control import ControlClient

    req = cdb_request(args)
    ctx.target = args.control_path or hostport(args.ipc_address, args.ipc_port)
    ctx.timeout = args.timeout
    ctx.order = req["op"] not in _READS
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


def print_info(info: dict, out) -> None:
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
