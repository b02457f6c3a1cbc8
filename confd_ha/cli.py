"""The ``confd-ha`` command line: look at and order HA nodes, run emulated nodes, the demo.

``main(argv)`` returns the exit code, so it can be tested in-process:
0 ok, 1 the daemon refused (message with code and name), 2 usage, 3 connection failure.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import os
import socket
import sys

EXIT_OK = 0
EXIT_DAEMON = 1
EXIT_USAGE = 2
EXIT_CONNECT = 3

STATE_NAMES = {1: "none", 2: "secondary", 3: "primary", 4: "secondary-relay"}

TOKEN_ENV = "CONFD_HA_TOKEN"


class UsageError(Exception):
    """Bad command-line use (exit 2)."""


class ConnectFailure(Exception):
    """Opening the connection failed (exit 3); wraps the library's exception."""


def _ha():
    import confd_ha

    return confd_ha


# ---------------------------------------------------------------- connection options


def _default_port() -> int:
    try:
        return int(os.environ.get("CONFD_IPC_PORT") or 4565)
    except ValueError:
        return 4565


def _add_connection_options(p: argparse.ArgumentParser, token: bool = True) -> None:
    g = p.add_argument_group("connection")
    g.add_argument("--ipc-address", default=os.environ.get("CONFD_IPC_ADDR") or "127.0.0.1",
                   help="daemon IPC address (default: $CONFD_IPC_ADDR or 127.0.0.1)")
    g.add_argument("--ipc-port", type=int, default=_default_port(),
                   help="daemon IPC port (default: $CONFD_IPC_PORT or 4565)")
    g.add_argument("--path", help="connect over AF_UNIX to this socket path instead of TCP")
    g.add_argument("--timeout", type=float, default=120.0,
                   help="seconds to wait for the daemon on each call (default 120; 0 = forever)")
    if token:
        g.add_argument("--token-file", help="read the HA token from this file")
        g.add_argument("--token", help=argparse.SUPPRESS)


def _read_token(args, err):
    """The token from --token-file, $CONFD_HA_TOKEN, --token (warned about) or a prompt."""
    if args.token_file:
        try:
            with open(args.token_file, "rb") as f:
                # bytes, as the daemon takes them: decoding could fail with a message
                # quoting the token's bytes.
                return f.read().rstrip(b"\r\n")
        except OSError as exc:
            raise UsageError("cannot read --token-file: %s" % exc.strerror)
    if os.environ.get(TOKEN_ENV):
        return os.fsencode(os.environ[TOKEN_ENV])  # its bytes, even if not UTF-8
    if args.token is not None:
        print("warning: --token puts the token in the process list, visible to every local "
              "user; prefer --token-file or $%s" % TOKEN_ENV, file=err)
        return os.fsencode(args.token)
    if sys.stdin is not None and sys.stdin.isatty():
        return getpass.getpass("HA token: ")
    raise UsageError("no HA token: use --token-file, $%s or run interactively" % TOKEN_ENV)


def _open_socket(args) -> socket.socket:
    if args.path:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    else:
        family = socket.AF_INET6 if ":" in args.ipc_address else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(args.timeout or None)
    return s


_warned = False


def _warn_replaces(err) -> None:
    """B-02: any HA connect replaces the node's control socket and token -- say it once."""
    global _warned
    if not _warned:
        _warned = True
        print("note: opening an HA control socket replaces the node's current one and sets "
              "its token (the framework's socket, if any, is closed)", file=err)


def _control_socket(args, err) -> socket.socket:
    ha = _ha()
    token = _read_token(args, err)
    _warn_replaces(err)
    s = _open_socket(args)
    try:
        ha.connect(s, token, args.ipc_address, args.ipc_port, args.path)
    except Exception as exc:
        s.close()
        from . import error

        if isinstance(exc, (error.Error, error.EOF)):
            raise ConnectFailure(exc) from exc
        raise
    return s


# ---------------------------------------------------------------- commands


def print_status(state, nodes, as_json: bool, out) -> None:
    name = STATE_NAMES.get(state, "unknown")
    if as_json:
        print(json.dumps({"state": name, "state_code": state, "nodes": nodes}), file=out)
        return
    print("state: %s (%d)" % (name, state), file=out)
    if nodes:
        width = max(len("NODE ID"), *(len(n["nodeid"]) for n in nodes))
        print("%-*s  %s" % (width, "NODE ID", "ADDRESS"), file=out)
        for n in nodes:
            print("%-*s  %s" % (width, n["nodeid"], n["address"]), file=out)


def cmd_status(args, out, err) -> int:
    s = _control_socket(args, err)
    with s:
        state, nodes = _ha().status(s)
    print_status(state, nodes, args.json, out)
    return EXIT_OK


def _order(fn):
    def run(args, out, err) -> int:
        s = _control_socket(args, err)
        with s:
            fn(_ha(), s, args)
        print("ok", file=out)
        return EXIT_OK

    return run


cmd_be_primary = _order(lambda ha, s, a: ha.beprimary(s, a.node))
cmd_be_secondary = _order(
    lambda ha, s, a: ha.besecondary(s, a.node, a.primary_id, a.primary_ip, 0 if a.async_ else 1))
cmd_be_none = _order(lambda ha, s, a: ha.benone(s))
cmd_be_relay = _order(lambda ha, s, a: ha.berelay(s))
cmd_secondary_dead = _order(lambda ha, s, a: ha.secondary_dead(s, a.node))


def event_line(ev) -> str:
    """One human-readable line for an HA event dict (``events.read_notification``)."""
    hnot = ev.get("hnot", {})
    t = hnot.get("type")
    names = {1: "noprimary", 2: "secondary-died", 3: "secondary-arrived",
             4: "secondary-initialized", 5: "is-primary", 6: "is-none", 7: "besecondary-result"}
    name = names.get(t, "type-%s" % t)
    if t == 1:
        from . import error

        reason = hnot["noprimary"]
        return "%s reason=%s (%d)" % (name, error.errname(reason), reason)
    if t in (2, 3):
        node = hnot["secondary_died" if t == 2 else "secondary_arrived"]
        addr = node.get("ip4") or node.get("ip6") or node.get("str")
        return "%s node=%s address=%s" % (name, node["nodeid"], addr)
    if t == 4:
        return "%s by_copy=%d" % (name, hnot["cdb_initialized_by_copy"])
    if t == 7:
        from . import error

        r = hnot["besecondary_result"]
        return "%s result=%d%s" % (name, r, "" if r == 0 else " (%s)" % error.errname(r))
    return name


def event_json(ev) -> dict:
    """A JSON-able form of an HA event dict (node ids as strings)."""
    def conv(v):
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        if isinstance(v, (int, str, float)) or v is None:
            return v
        return str(v)

    return conv(ev)


def cmd_watch(args, out, err) -> int:
    from . import error, events

    s = _open_socket(args)
    mask = events.NOTIF_HA_INFO | (events.NOTIF_HA_INFO_SYNC if args.sync else 0)
    with s:
        try:
            events.notifications_connect(s, mask, args.ipc_address, args.ipc_port, args.path)
        except (error.Error, error.EOF) as exc:
            raise ConnectFailure(exc) from exc
        s.settimeout(None)  # --timeout bounds the connect; events may be hours apart
        try:
            while True:
                ev = events.read_notification(s)
                if args.json:
                    print(json.dumps(event_json(ev)), file=out, flush=True)
                else:
                    print(event_line(ev), file=out, flush=True)
                if args.sync:
                    events.sync_ha_notification(s)
        except KeyboardInterrupt:
            return EXIT_OK


def cmd_emulate(args, out, err) -> int:
    from .emulator import process

    return process.run_emulate(args, out, err)


def cmd_cdb(args, out, err) -> int:
    from .emulator import process

    return process.run_cdb(args, out, err)


def cmd_demo(args, out, err) -> int:
    from . import demo

    return demo.run(out=out, err=err, tick=args.tick)


# ---------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="confd-ha",
                                description="Look at and order ConfD/NSO HA nodes; run emulated nodes.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    sp = sub.add_parser("status", help="show a node's HA state and connected nodes")
    _add_connection_options(sp)
    sp.add_argument("--json", action="store_true", help="print JSON")
    sp.set_defaults(func=cmd_status)

    sp = sub.add_parser("watch", help="print HA events until Ctrl-C")
    _add_connection_options(sp, token=False)
    sp.add_argument("--json", action="store_true", help="print one JSON object per line")
    sp.add_argument("--sync", action="store_true",
                    help="subscribe with HA_INFO_SYNC and acknowledge each event")
    sp.set_defaults(func=cmd_watch)

    for name, aliases, helptext, func, nodearg in (
            ("be-primary", ["be-master"], "make the node primary", cmd_be_primary, True),
            ("be-none", [], "make the node leave its HA role", cmd_be_none, False),
            ("be-relay", [], "make a secondary a relay", cmd_be_relay, False),
            ("secondary-dead", ["slave-dead"], "tell a primary a secondary is dead",
             cmd_secondary_dead, True)):
        sp = sub.add_parser(name, aliases=aliases, help=helptext)
        if nodearg:
            sp.add_argument("node", help="node id" if name != "be-primary" else "this node's id")
        _add_connection_options(sp)
        sp.set_defaults(func=func)

    sp = sub.add_parser("be-secondary", aliases=["be-slave"], help="make the node a secondary")
    sp.add_argument("node", help="this node's id")
    sp.add_argument("primary_id", metavar="PRIMARY_ID")
    sp.add_argument("primary_ip", metavar="PRIMARY_IP")
    sp.add_argument("--async", dest="async_", action="store_true",
                    help="do not wait: the result arrives as an HA event")
    _add_connection_options(sp)
    sp.set_defaults(func=cmd_be_secondary)

    sp = sub.add_parser("emulate", help="run an emulated ConfD HA node until SIGTERM/SIGINT")
    _add_emulate_options(sp)
    sp.set_defaults(func=cmd_emulate)

    sp = sub.add_parser("cdb", help="read or write an emulated node's datastore")
    _add_cdb_options(sp)
    sp.set_defaults(func=cmd_cdb)

    sp = sub.add_parser("demo", help="a whole HA lifecycle on three embedded emulated nodes")
    sp.add_argument("--tick", type=float, default=0.5, help="tick timeout of the demo nodes (s)")
    sp.set_defaults(func=cmd_demo)
    return p


def _add_emulate_options(sp) -> None:
    sp.add_argument("--flavour", choices=("confd", "nso"), default="confd")
    sp.add_argument("--ipc-address", default=None, help="IPC listen address (default 127.0.0.1)")
    sp.add_argument("--ipc-port", type=int, default=None,
                    help="IPC port (default 4565 for ConfD, 4569 for NSO; 0 = any free port)")
    sp.add_argument("--ipc-path", default=None, help="also listen on this AF_UNIX path")
    sp.add_argument("--ha-address", default=None, help="HA listen/source address (default: the IPC address)")
    sp.add_argument("--ha-port", type=int, default=None, help="HA port (default 4569 ConfD, 4570 NSO)")
    sp.add_argument("--tick-timeout", type=float, default=None, help="tick timeout in seconds (default 20; 0 disables)")
    sp.add_argument("--data-dir", default=None, help="keep the datastore journal here")
    sp.add_argument("--ipc-access-file", default=None, help="enable the IPC access check with this secret file")
    sp.add_argument("--no-bind-source", action="store_true",
                    help="do not bind outgoing HA connections to the HA address (as ConfD)")
    sp.add_argument("--confd-quirks", action="store_true",
                    help="also reproduce ConfD's robustness defects on the IPC port (hellos one "
                         "at a time, orders held during a token wait, a bad subscription "
                         "dropping every subscriber; docs/conformance-ipc.md)")
    sp.add_argument("--start-phase", type=int, choices=(0, 2), default=2)
    sp.add_argument("--name", default=None, help="label for logs")
    sp.add_argument("--accept-proto-vsn", default=None, metavar="LO:HI",
                    help="accept only client protocol versions in this inclusive range")
    sp.add_argument("--ha-vsn", type=lambda s: int(s, 0), default=None, help="HA protocol version")
    sp.add_argument("--proto-vsn", type=lambda s: int(s, 0), default=None,
                    help="protocol version the node reports in its hello reply (default 82)")
    sp.add_argument("--vsn", type=lambda s: int(s, 0), default=None,
                    help="version identity in the hello reply (default 0x08020500)")
    sp.add_argument("--fxs-fingerprint", default=None, help="schema fingerprint (join check)")
    sp.add_argument("--ha-config-fingerprint", default=None, help="HA-config fingerprint (join check)")
    sp.add_argument("--log-level", default="warning", help="python logging level (default warning)")
    sp.add_argument("--control-path", default=None,
                    help="control endpoint on this AF_UNIX path (default: the abstract socket "
                         "@confd-ha-ctl:ADDRESS:PORT)")
    sp.add_argument("--exit-on-stdin-eof", action="store_true",
                    help="also stop when stdin is closed (a supervisor's pipe: the node dies "
                         "with its parent)")


def _add_cdb_options(sp) -> None:
    sp.add_argument("--ipc-address", default=os.environ.get("CONFD_IPC_ADDR") or "127.0.0.1",
                    help="the emulated node's IPC address (default: $CONFD_IPC_ADDR or 127.0.0.1)")
    sp.add_argument("--ipc-port", type=int, default=_default_port(),
                    help="the emulated node's IPC port (default: $CONFD_IPC_PORT or 4565)")
    sp.add_argument("--control-path", default=None,
                    help="the node's control endpoint path, if it was started with one")
    sp.add_argument("--timeout", type=float, default=120.0,
                    help="seconds to wait for the node (default 120; 0 = forever)")
    sp.add_argument("--json", action="store_true", help="print the endpoint's JSON reply")
    cmds = sp.add_subparsers(dest="cdb_command", metavar="ACTION")
    cmds.required = True
    c = cmds.add_parser("set", help="commit PATH=VALUE")
    c.add_argument("path")
    c.add_argument("value")
    c = cmds.add_parser("get", help="print the value at PATH")
    c.add_argument("path")
    c = cmds.add_parser("delete", help="delete PATH and everything below it")
    c.add_argument("path")
    c = cmds.add_parser("show", help="print every path and value (below PREFIX)")
    c.add_argument("prefix", nargs="?", default="/")
    cmds.add_parser("txid", help="print the transaction id")
    helps = {"phase": "advance the start phase (0 -> 1 -> 2)",
             "upgrade": "set (on) or clear (off) 'upgrade in progress'",
             "kill": "kill the node: every socket closed abruptly (the process keeps running)",
             "freeze": "hold all inter-node traffic, sockets open (peers see HA_NOTICK)",
             "thaw": "release a freeze",
             "partition": "hold inter-node traffic with IP, both ways",
             "heal": "end the partition from IP (all partitions without IP)",
             "info": "state, node id, peers, subscribers, transaction id, decisions"}
    for action in ("phase", "upgrade", "kill", "freeze", "thaw", "partition", "heal", "info"):
        c = cmds.add_parser(action, help=helps[action])
        if action in ("phase", "upgrade", "partition"):
            c.add_argument("arg")
        elif action == "heal":
            c.add_argument("arg", nargs="?", default=None)
    cmds.add_parser("stop", help="stop the node in an orderly way (peers get a goodbye)")
    cmds.add_parser("start", help="start a stopped or killed node (NONE, data kept)")
    c = cmds.add_parser("restart", help="stop (or --kill) and start the node again")
    c.add_argument("--kill", action="store_true", help="kill instead of an orderly stop")


def main(argv=None, out=None, err=None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    parser = build_parser()
    try:
        # argparse writes --help and usage errors to sys.stdout/sys.stderr: send them to ours.
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed the usage message
        return EXIT_USAGE if exc.code else EXIT_OK
    from . import error

    try:
        return args.func(args, out, err)
    except UsageError as exc:
        print("confd-ha: %s" % exc, file=err)
        return EXIT_USAGE
    except ConnectFailure as exc:
        print("confd-ha: connection failure: %s" % exc.__cause__, file=err)
        return EXIT_CONNECT
    except error.EOF as exc:
        print("confd-ha: connection failure: %s (%s)" % (exc, exc.confd_lasterr), file=err)
        return EXIT_CONNECT
    except error.Error as exc:
        code = exc.confd_errno
        if code == error.ERR_OS:
            print("confd-ha: connection failure: %s" % exc, file=err)
            return EXIT_CONNECT
        detail = exc.confd_strerror + (": " + exc.confd_lasterr if exc.confd_lasterr else "")
        print("confd-ha: daemon error %d %s: %s" % (code, error.errname(code), detail), file=err)
        return EXIT_DAEMON
    except (ValueError, TypeError) as exc:
        print("confd-ha: %s" % exc, file=err)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`confd-ha watch | head -1`): stop quietly, and keep the
        # interpreter's last flush of stdout from printing a traceback.
        if out is sys.stdout:
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
                os.close(devnull)
            except (OSError, ValueError):
                pass
        return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
