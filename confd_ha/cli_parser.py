"""The ``confd-ha`` argument parser: every command, option, help text, environment variable.

The parser is the one description of the command line: ``--help``, the man page and the
shell completions (:mod:`confd_ha.cli_docs`) are generated from it. Options have no argparse
defaults (``argument_default=SUPPRESS``) so that an option may stand before or after a
``cdb`` action, and the general options (``-q``, ``-v``, ``--debug``) anywhere; the defaults
are filled in afterwards by ``confd_ha.cli.resolve``, which also reads the environment.
Values are checked by the ``type=`` functions of :mod:`confd_ha.cli_types`, and every parse error is a one-line
:class:`~confd_ha.cli_errors.CliError` (exit 2).
"""

from __future__ import annotations

import argparse
import inspect
import re
import textwrap
from typing import Any, Callable, List, NoReturn, Sequence, Set, Tuple

from .cli_errors import (EXIT_CODES, EXIT_INTERRUPTED, EXIT_OK, EXIT_PIPE, EXIT_REFUSED,
                         EXIT_TIMEOUT, EXIT_UNREACHABLE, EXIT_USAGE, CliError)
from .cli_types import file_name, ip_address, node_id, path, port, shown, timeout

PROG = "confd-ha"
SUMMARY = "Look at and order ConfD/NSO HA nodes; run emulated nodes and the HA agent."

# (variable, meaning, commands it applies to)
_CLIENT = ("status", "watch", "be-primary", "be-secondary", "be-none", "be-relay",
           "secondary-dead")
_TOKEN = tuple(c for c in _CLIENT if c != "watch")
_AGENT = ("agent",)   # every agent action ("agent run" is only run)
ENVIRONMENT = (
    ("CONFD_IPC_ADDR", "the daemon's IPC address (default 127.0.0.1)", _CLIENT + ("cdb",)),
    ("CONFD_IPC_PORT", "the daemon's IPC port (default 4565)", _CLIENT + ("cdb",)),
    ("NCS_IPC_ADDR", "with --nso: NSO's IPC address (default 127.0.0.1)", _CLIENT + ("cdb",)),
    ("NCS_IPC_PORT", "with --nso: NSO's IPC port (default 4569)", _CLIENT + ("cdb",)),
    ("CONFD_HA_TOKEN", "the HA token, when there is no --token-file (empty = not set)",
     _TOKEN + ("agent run",)),
    ("CONFD_HA_ETCD", "agent: etcd client URLs, comma-separated (default: the configuration's, "
     "else http://127.0.0.1:2379)", _AGENT),
    ("CONFD_HA_CLUSTER", "agent: the cluster's name (default: the configuration's)", _AGENT),
    ("ETCD", "demo --agent: the etcd binary (default: etcd on PATH, else /usr/bin/etcd)",
     ("demo",)),
    ("CONFD_IPC_ACCESS_FILE", "the IPC access secret, if the daemon checks IPC access",
     _CLIENT),
    ("NCS_IPC_ACCESS_FILE", "the same, for NSO", _CLIENT),
)

# Exit codes a command can end with, and what they mean for it where that is more precise.
OK, REFUSED, USAGE, UNREACHABLE, TIMEOUT, INTERRUPTED, PIPE = (
    EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_TIMEOUT, EXIT_INTERRUPTED,
    EXIT_PIPE)
_EXITS = {
    "client": (OK, REFUSED, USAGE, UNREACHABLE, TIMEOUT, INTERRUPTED, PIPE),
    "watch": {OK: "stopped by Ctrl-C or SIGTERM", REFUSED: None, USAGE: None,
              UNREACHABLE: "cannot connect, or the daemon closed the event connection",
              INTERRUPTED: None, PIPE: None},
    "cdb": {OK: None, REFUSED: "the node refused, or `get` found no value", USAGE: None,
            UNREACHABLE: "no emulated node runs there, or (datastore actions) it is not running",
            TIMEOUT: None, INTERRUPTED: None, PIPE: None},
    "emulate": {OK: "stopped by SIGTERM, SIGINT or (--exit-on-stdin-eof) the end of stdin",
                REFUSED: "the node could not start (e.g. its data directory is locked)",
                USAGE: None,
                UNREACHABLE: "a listener could not be opened (e.g. the port is in use)",
                INTERRUPTED: "Ctrl-C before the node started (after that: a clean stop, 0)",
                PIPE: None},
    "demo": {OK: None, REFUSED: "a step did not behave as described (it says which)",
             USAGE: "bad options; --agent: etcd or httpx is not installed (the message says "
                    "how to install it)",
             INTERRUPTED: "interrupted; every node was stopped", PIPE: None},
    "agent": {OK: None, REFUSED: "etcd or the cluster's state refused the request (the message "
                                 "says why); run: the agent cannot go on",
              USAGE: "bad options, configuration or token; httpx is not installed (pip "
                     "install 'confd-ha[agent]')",
              UNREACHABLE: "no etcd endpoint answered (they are named); run: or the health "
                           "endpoint cannot listen",
              TIMEOUT: "switchover, failover: not done within --timeout (it may still "
                       "happen: check with `confd-ha agent list`)",
              INTERRUPTED: None, PIPE: None},
    "agent run": {OK: "stopped by SIGTERM or SIGINT (a primary demoted first, the lease "
                      "revoked)",
                  REFUSED: "the agent cannot go on and says why (e.g. the primary refused "
                           "this node's HA token)",
                  USAGE: "bad options, configuration or token; httpx is not installed (pip "
                         "install 'confd-ha[agent]')",
                  UNREACHABLE: "etcd cannot be reached at start (the endpoints are named), or "
                               "the health endpoint cannot listen",
                  INTERRUPTED: "Ctrl-C before the agent started (after that: a clean stop, "
                               "0)", PIPE: None},
    "agent ops": {OK: None, REFUSED: "etcd or the cluster's state refused the request (no "
                                     "such member, not in sync, paused, no leader, a request "
                                     "pending; the message says which)",
                  USAGE: "bad options or configuration; httpx is not installed (pip install "
                         "'confd-ha[agent]')",
                  UNREACHABLE: "no etcd endpoint answered (they are named)",
                  TIMEOUT: "switchover, failover: not done within --timeout (it may still "
                           "happen: check with `confd-ha agent list`)",
                  INTERRUPTED: None, PIPE: None},
    "docs": (OK, USAGE, INTERRUPTED, PIPE),
}


# ---------------------------------------------------------------- the parser class


class Formatter(argparse.HelpFormatter):
    """Descriptions and epilogs as paragraphs (blank-line separated) filled to the width;
    indented lines kept, and ``  KEY  text`` table rows filled with a hanging indent."""

    def __init__(self, prog: str, **kw: Any) -> None:
        kw.setdefault("max_help_position", 30)
        kw.setdefault("width", 92)
        super().__init__(prog, **kw)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        out = []
        for para in text.split("\n\n"):
            if not para.startswith("  ") and ":\n  " not in para:
                out.append(textwrap.fill(" ".join(para.split()), width,
                                         initial_indent=indent, subsequent_indent=indent,
                                         break_on_hyphens=False))
                continue
            lines = []
            for line in para.split("\n"):
                m = re.match(r"(\s+\S+\s{2,})(\S.*)$", line)
                if m and len(line) > width:
                    lines.append(textwrap.fill(m.group(2), width, initial_indent=m.group(1),
                                               subsequent_indent=" " * len(m.group(1)),
                                               break_on_hyphens=False))
                else:
                    lines.append(line)
            out.append("\n".join(indent + line for line in lines))
        return "\n\n".join(out)

    def _split_lines(self, text: str, width: int) -> List[str]:
        # as argparse's, but never splitting `confd-ha` or an option name at a hyphen
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)


class Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (:class:`CliError`), no abbreviated options and
    no argparse defaults."""

    argv: Sequence[str] = ()      # the command line, for the pointer to a command's --help

    def __init__(self, *args: Any, **kw: Any) -> None:
        kw.setdefault("formatter_class", Formatter)
        kw.setdefault("allow_abbrev", False)
        kw.setdefault("argument_default", argparse.SUPPRESS)
        super().__init__(*args, **kw)

    def error(self, message: str) -> NoReturn:
        m = re.match(r"argument (\S+?)(?:/\S+)?: invalid choice: '(.*?)' \(choose from (.*)\)$",
                     message, re.S)
        if m and m.group(1) in ("COMMAND", "ACTION"):
            import difflib

            choices = re.findall(r"'([^']*)'", m.group(3))
            close = difflib.get_close_matches(m.group(2), choices, 1)
            what = "command" if m.group(1) == "COMMAND" else "%s action" % (
                self.prog.split()[-1])
            message = "unknown %s %s%s" % (what, shown(m.group(2)),
                                           " (did you mean %s?)" % close[0] if close else "")
        else:
            message = re.sub(r"^argument (-[\w-]+)(/[\w-]+)*: ", r"\1: ", message)
            message = re.sub(r"^argument ([A-Z_]+): ", r"\1: ", message)
        prog = self.prog
        if prog == PROG and message.startswith("unrecognized arguments"):
            # raised by the top parser for a command's leftovers: point at that command
            prog = next(("%s %s" % (PROG, w) for w in getattr(self, "argv", ())
                         if w in _command_names()), prog)
        raise CliError("%s (see `%s --help`)" % (message, prog), EXIT_USAGE, "usage")


def _command_names() -> Set[str]:
    return {n for name, aliases, _h, _d in COMMANDS for n in [name] + aliases} | {
        "cdb", "agent", "emulate", "demo", "completion", "man"}


# ---------------------------------------------------------------- help texts


def epilog(command: str) -> str:
    """The environment and exit-status sections of a command's ``--help``."""
    lines = []
    env = [(name, text) for name, text, commands in ENVIRONMENT
           if command in commands or command.split(" ")[0] in commands]
    if env:
        lines.append("environment:")
        lines += ["  %-24s%s" % (name, text) for name, text in env]
        lines.append("")
    lines.append("exit status:")
    for code, text in exit_codes(command):
        lines.append("  %-5d%s" % (code, text))
    lines.append("")
    lines.append("Full manual: man confd-ha (or `confd-ha man`), docs/cli.md.")
    return "\n".join(lines)


def exit_codes(command: str) -> List[Tuple[int, str]]:
    """``[(code, meaning)]`` for a command."""
    key = command if command in _EXITS else (
        "agent ops" if command.startswith("agent ") else
        "docs" if command in ("completion", "man") else "client")
    table: Any = _EXITS[key]
    if not isinstance(table, dict):
        table = dict.fromkeys(table)
    texts = {code: text for code, _name, text in EXIT_CODES}
    return [(code, texts[code] if text is None else text) for code, text in table.items()]


def _general(p: argparse.ArgumentParser, level: int) -> None:
    """-q, -v, --debug: accepted before the command, after it, and after a cdb action."""
    g = p.add_argument_group("general options")
    g.add_argument("-q", "--quiet", action="store_true",
                   help="print no notes and no 'ok' lines (errors and warnings stay)")
    g.add_argument("-v", "--verbose", action="count", dest="verbose%d" % level,
                   help="say what happens (connections, the daemon's version); -vv: debug log")
    g.add_argument("--debug", action="store_true",
                   help="show a Python traceback with errors (for bug reports)")


def ipc_options(g: Any, *, nso: str, flavour: str, ipc_address: str, ipc_port: str) -> None:
    """The options that say which daemon and where its IPC port is (``--nso``, ``--flavour``,
    ``--ipc-address``, ``--ipc-port``) on the group ``g``, with the command's help texts."""
    g.add_argument("--nso", action="store_const", const="nso", dest="flavour", help=nso)
    g.add_argument("--flavour", choices=("confd", "nso"), help=flavour)
    g.add_argument("--ipc-address", type=ip_address, metavar="ADDRESS", help=ipc_address)
    g.add_argument("--ipc-port", type=port, metavar="PORT", help=ipc_port)


def command(sub: Any, name: str, helptext: str, description: str) -> argparse.ArgumentParser:
    """Add command ``name``. ``description`` is prose as written in a triple-quoted string:
    paragraphs separated by blank lines, example lines indented (the formatter fills the
    rest)."""
    sp: argparse.ArgumentParser = sub.add_parser(
        name, help=helptext, description=inspect.cleandoc(description), epilog=epilog(name))
    sp.set_defaults(cmd=name)
    return sp


def action_command(sub: Any, name: str, helptext: str, description: str,
                   options: Callable[[argparse.ArgumentParser, int], None]) -> Any:
    """Add command ``name`` (see :func:`command`) whose first argument is an ACTION (``cdb``,
    ``agent``), with ``options(parser, 1)`` standing before ACTION; returns the actions'
    subparsers."""
    sp = command(sub, name, helptext, description)
    options(sp, 1)
    actions = sp.add_subparsers(dest="action", metavar="ACTION", title="actions")
    actions.required = True
    return actions


def target_options(g: Any, whose: str, path_option: str, path_help: str,
                   waits_for: str) -> None:
    """The options that say how to reach the target (a daemon, an emulated node): which
    flavour, its IPC address and port, an AF_UNIX ``path_option``, and ``--timeout``."""
    ipc_options(g, nso="use NSO's defaults: $NCS_IPC_ADDR/$NCS_IPC_PORT, port 4569 (= --flavour "
                       "nso)",
                flavour="confd (default) or nso: which defaults and variables apply",
                ipc_address="%s IPC address, an IP literal (default: $CONFD_IPC_ADDR or "
                            "127.0.0.1; NSO: $NCS_IPC_ADDR)" % whose,
                ipc_port="%s IPC port (default: $CONFD_IPC_PORT or 4565; NSO: $NCS_IPC_PORT "
                         "or 4569)" % whose)
    g.add_argument(path_option, type=path, metavar="PATH", help=path_help)
    g.add_argument("--timeout", type=timeout, metavar="SECONDS",
                   help="wait at most this long for %s (default 120; 0 = forever)" % waits_for)


def _connection(p: argparse.ArgumentParser, token: bool) -> None:
    g = p.add_argument_group("connection")
    target_options(g, "the daemon's", "--path", "connect to this AF_UNIX socket instead of TCP",
                   "each answer")
    if token:
        g.add_argument("--token-file", type=file_name, metavar="FILE",
                       help="read the HA token from FILE (its bytes, without the final "
                            "newline; default: $CONFD_HA_TOKEN, else a prompt)")
        g.add_argument("--token", help=argparse.SUPPRESS)


def _json(p: Any, text: str) -> None:
    p.add_argument("--json", action="store_true", help=text)


_ORDER_NOTE = ("Any HA control connection -- also this one -- replaces the node's current HA "
               "control socket and sets its token: an HA framework's socket is closed (-q "
               "silences this note).")

COMMANDS: Tuple[Tuple[str, List[str], str, str], ...] = (
    # name, aliases, one-line help, description
    ("status", [], "show a node's HA state and the nodes connected to it",
     "Show the node's HA state (none, secondary, primary, secondary-relay) and the nodes it "
     "sees: a primary lists its secondaries, a secondary its primary.\n\n" + _ORDER_NOTE),
    ("watch", [], "print HA events with their time until Ctrl-C",
     "Subscribe to the node's HA events and print each with its local time (ISO 8601) until "
     "Ctrl-C or SIGTERM. Takes no token: event sockets do not disturb the HA framework."),
    ("be-primary", ["be-master"], "make the node primary",
     "Order the node to become primary with the node id NODE.\n\n" + _ORDER_NOTE),
    ("be-secondary", ["be-slave"], "make the node a secondary of a primary",
     "Order the node, with node id NODE, to join the primary PRIMARY_ID at PRIMARY_IP. "
     "Without --async the command returns when the node has synchronised (or failed); with "
     "--async it returns at once and the outcome is only visible as an HA event "
     "(`confd-ha watch`).\n\n" + _ORDER_NOTE),
    ("be-none", [], "make the node leave its HA role",
     "Order the node to leave any HA role (state none).\n\n" + _ORDER_NOTE),
    ("be-relay", [], "make a secondary a relay",
     "Order a secondary to become a relay that other secondaries can join.\n\n" + _ORDER_NOTE),
    ("secondary-dead", ["slave-dead"], "tell a primary that a secondary is dead",
     "Tell a primary that its secondary NODE is dead (it is dropped at once).\n\n"
     + _ORDER_NOTE),
)


def build_parser() -> Parser:
    p = Parser(prog=PROG, description=SUMMARY + "\n\nRun `confd-ha COMMAND --help` for a "
               "command's options; `confd-ha man` for the manual.",
               epilog="\n".join(["exit status:"] + ["  %-5d%s" % (c, t)
                                                    for c, _n, t in EXIT_CODES]))
    from ._version import __version__

    p.add_argument("--version", action="version", version="%s %s" % (PROG, __version__),
                   help="print the version and exit")
    _general(p, 0)
    sub = p.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    sub.required = True
    for name, aliases, helptext, description in COMMANDS:
        sp = sub.add_parser(name, aliases=aliases, help=helptext, description=description,
                            epilog=epilog(name))
        sp.set_defaults(cmd=name)
        if name in ("be-primary", "secondary-dead", "be-secondary"):
            sp.add_argument("node", type=node_id, metavar="NODE",
                            help="this node's id" if name != "secondary-dead"
                            else "the id of the dead secondary")
        if name == "be-secondary":
            sp.add_argument("primary_id", type=node_id, metavar="PRIMARY_ID",
                            help="the primary's node id")
            sp.add_argument("primary_ip", type=ip_address, metavar="PRIMARY_IP",
                            help="the primary's HA address (an IP literal)")
            sp.add_argument("--async", dest="async_", action="store_true",
                            help="do not wait: the result arrives as an HA event")
        if name == "watch":
            _json(sp, "print one JSON object per event")
            sp.add_argument("--sync", action="store_true",
                            help="subscribe with HA_INFO_SYNC: the node waits for each event "
                                 "to be acknowledged")
        elif name == "status":
            _json(sp, "print a JSON object")
        else:
            _json(sp, "print a JSON object instead of 'ok'")
        _connection(sp, token=name != "watch")
        _general(sp, 1)

    from .cli_parser_agent import add_agent
    from .cli_parser_emulator import add_cdb, add_demo, add_emulate

    add_cdb(sub)
    add_agent(sub)
    add_emulate(sub)
    add_demo(sub)
    _add_docs(sub)
    return p


def _add_docs(sub: argparse._SubParsersAction[Parser]) -> None:
    sp = sub.add_parser("completion", help="print a shell completion script (bash or zsh)",
                        description="Print a completion script for bash or zsh, generated from "
                        "this command line's parser.\n\n"
                        "  bash:  confd-ha completion bash > ~/.local/share/bash-completion/"
                        "completions/confd-ha\n"
                        "         (or: source <(confd-ha completion bash))\n"
                        "  zsh:   confd-ha completion zsh > \"${fpath[1]}/_confd-ha\"",
                        epilog=epilog("completion"))
    sp.set_defaults(cmd="completion")
    sp.add_argument("shell", choices=("bash", "zsh"), metavar="SHELL", help="bash or zsh")
    _general(sp, 1)
    sp = sub.add_parser("man", help="print the manual page (troff)",
                        description="Print the manual page, generated from this command line's "
                        "parser, in troff: `confd-ha man | man -l -`.",
                        epilog=epilog("man"))
    sp.set_defaults(cmd="man")
    _general(sp, 1)
