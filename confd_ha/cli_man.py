"""The ``confd-ha(1)`` man page in troff (man macros), generated from the argument parser:
every command, cdb action, option, environment variable and exit code, as ``--help`` shows
them, plus the sections only the manual has (NSO mode, JSON output, examples)."""

from __future__ import annotations

import argparse
from typing import List, Tuple

from .cli_docs import commands, options, positionals

_NSO = (
    "Every client command (status, watch, the orders, cdb) takes \\fB\\-\\-nso\\fR (or "
    "\\fB\\-\\-flavour nso\\fR): the address and port then default to \\fB$NCS_IPC_ADDR\\fR "
    "and \\fB$NCS_IPC_PORT\\fR, or 127.0.0.1 and NSO's IPC port 4569, and messages say NSO. "
    "Without it the defaults are \\fB$CONFD_IPC_ADDR\\fR and \\fB$CONFD_IPC_PORT\\fR, or "
    "127.0.0.1 and 4565. \\fBconfd-ha emulate \\-\\-nso\\fR runs an NSO-flavoured node "
    "(IPC port 4569, HA port 4570).")
_JSON = (
    ("status", '{"state": "primary", "state_code": 3, "nodes": [{"nodeid": "n2", '
               '"address": "10.0.0.2"}]}'),
    ("orders", '{"ok": true, "command": "be-primary", "target": "127.0.0.1:4565", '
               '"waited": true}'),
    ("watch", '{"time": "2025-01-31T12:00:00.123+01:00", "event": "secondary-arrived", '
              '"type": 3, "node": "n2", "address": "10.0.0.2"} (one per line; other events '
              'carry reason/reason_code, by_copy or result/error)'),
    ("cdb", "the endpoint's result object, e.g. {\"txid\": \"...\"}"),
    ("emulate", '{"ready": true, "ipc": {...}, "ha": {...}, "control": "...", '
                '"flavour": "confd", "phase": 2, "pid": 4242}'),
    ("agent run", '{"ready": true, "node": "n1", "cluster": "main", "api": '
                  '"http://127.0.0.1:8008", "etcd": ["http://127.0.0.1:2379"], "pid": 4242}'),
    ("agent list", '{"cluster": "main", "revision": 42, "leader": {"node": "n1", '
                   '"ha_address": "10.0.0.1", "since": "..."}, "paused": false, "pause": null, '
                   '"request": null, "members": [{"node": "n1", "state": "primary", ...}], '
                   '"problems": []}'),
    ("agent switchover, failover", '{"cluster": "main", "kind": "switchover", "id": "...", '
                                   '"from": "n1", "to": "n2", "leader": "n2", '
                                   '"seconds": 1.2}'),
    ("errors", '{"error": {"kind": "unreachable", "message": "...", "exit_code": 3, '
               '"target": "127.0.0.1:4565", "confd_errno": null, "confd_name": null}} on '
               'stdout, and the one-line message on stderr as always'),
)
_EXAMPLES = (
    ("confd-ha status \\-\\-ipc\\-address 10.0.0.1 \\-\\-token\\-file ~/.ha-token",
     "the node's state and the nodes it sees"),
    ("confd-ha be-secondary n2 n1 10.0.0.1 \\-\\-token\\-file ~/.ha-token",
     "make node n2 a secondary of n1"),
    ("confd-ha watch \\-\\-json | jq .event", "follow HA events"),
    ("confd-ha status \\-\\-nso", "an NSO node: $NCS_IPC_ADDR/$NCS_IPC_PORT or port 4569"),
    ("confd-ha emulate \\-\\-ipc\\-address 127.0.0.2 \\-\\-ipc\\-port 0",
     "an emulated node on a free port"),
    ("confd-ha cdb set /sys/host a \\-\\-ipc\\-port 4565", "write to an emulated node"),
    ("confd-ha demo \\-\\-prefix 127.0.5.", "the demo on 127.0.5.1-3"),
    ("confd-ha agent run \\-\\-config /etc/confd-ha/agent.toml",
     "the HA agent of this node (docs/agent.md has a systemd unit)"),
    ("confd-ha agent switchover \\-\\-to n2 \\-\\-cluster main \\-\\-etcd "
     "http://10.0.0.11:2379", "make n2 the primary, once it is in sync"),
    ("confd-ha demo \\-\\-agent", "the agent on three nodes and a three-member etcd"),
    ("source <(confd-ha completion bash)", "completion for this shell"),
)


def _t(text: str) -> str:
    """Plain text for troff: backslashes escaped, no line starting with a control
    character."""
    text = text.replace("\\", "\\e")
    return "\n".join("\\&" + line if line[:1] in (".", "'") else line
                     for line in text.split("\n"))


def _opt(name: str) -> str:
    return "\\fB%s\\fR" % name.replace("-", "\\-")


def _paragraphs(text: str) -> List[str]:
    out = []
    for para in (text or "").split("\n\n"):
        if para.startswith("  "):
            out += [".RS", ".nf"] + [_t(line.strip()) for line in para.split("\n")] + \
                   [".fi", ".RE"]
        else:
            out += [".PP", _t(" ".join(para.split()))]
    return out


def _options(parser: argparse.ArgumentParser,
             skip: Tuple[str, ...] = ("-h", "-q", "-v", "--debug")) -> List[str]:
    """Positionals and options, except the general ones (once, in their own section) and
    those in ``skip``."""
    out = []
    for a in positionals(parser):
        out += [".TP", "\\fI%s\\fR" % (a.metavar or a.dest), _t(a.help or "")]
    for o in options(parser):
        if o.names[0] in skip:
            continue
        head = ", ".join(_opt(n) for n in o.names)
        if o.value:
            head += " \\fI%s\\fR" % (o.value if not o.choices else "|".join(o.choices))
        out += [".TP", head, _t(o.help)]
    return out


def _synopsis(prefix: str, parser: argparse.ArgumentParser) -> str:
    words = ["\\fB%s\\fR" % prefix.replace("-", "\\-")]
    if options(parser):
        words.append("[\\fIoptions\\fR]")
    for a in positionals(parser):
        name = "\\fI%s\\fR" % (a.metavar or a.dest)
        words.append("[%s]" % name if a.nargs == "?" else name)
    if commands(parser):
        words.append("\\fIACTION\\fR ...")
    return " ".join(words)


def man_page() -> str:
    from ._version import __version__
    from .cli_errors import EXIT_CODES
    from .cli_parser import ENVIRONMENT, SUMMARY, build_parser

    parser = build_parser()
    top = commands(parser)
    out = ['.TH CONFD\\-HA 1 "" "confd-ha %s" "User Commands"' % __version__,
           ".SH NAME", "confd\\-ha \\- %s" % _t(SUMMARY[0].lower() + SUMMARY[1:].rstrip(".")),
           ".SH SYNOPSIS", "\\fBconfd\\-ha\\fR [\\fIgeneral options\\fR] \\fICOMMAND\\fR "
           "[\\fIoptions\\fR] [\\fIarguments\\fR]", ".br",
           "\\fBconfd\\-ha\\fR \\fB\\-\\-version\\fR | \\fB\\-\\-help\\fR",
           ".SH DESCRIPTION",
           ".PP", "\\fBconfd\\-ha\\fR looks at and orders the HA roles of ConfD and NSO nodes "
           "through their IPC port, as an HA framework does (Cisco's \\fB_confd.ha\\fR API), "
           "and runs emulated ConfD HA nodes for tests. Options may be given in any order "
           "after the command, also after a \\fBcdb\\fR action; the general options also "
           "before the command. \\fBconfd\\-ha agent\\fR runs a ready HA framework on "
           "etcd (one agent per node) and its operator's actions. Errors are one line on "
           "stderr, starting with "
           "\\fBconfd\\-ha:\\fR and naming the target; \\fB\\-\\-debug\\fR adds a traceback.",
           ".SH GENERAL OPTIONS"]
    for o in options(parser):
        out += [".TP", ", ".join(_opt(n) for n in o.names), _t(o.help)]
    out.append(".SH COMMANDS")
    for c in top:
        title = c.name + (" (alias %s)" % ", ".join(c.aliases) if c.aliases else "")
        out += [".SS %s" % title.replace("-", "\\-"), _synopsis("confd-ha " + c.name,
                                                                c.parser)]
        out += _paragraphs(c.parser.description or c.help)
        out += _options(c.parser)
        common = ("-h",) + tuple(o.names[0] for o in options(c.parser))
        for a in commands(c.parser):
            out += [".TP", _synopsis("%s %s" % (c.name, a.name), a.parser), _t(a.help)]
            own = _options(a.parser, skip=common)
            description = a.parser.description or ""
            if len(description) > len(a.help) + 1:   # more than the help line (agent)
                own = _paragraphs(description) + own
            if own:
                out += [".RS"] + own + [".RE"]
    out += [".SH NSO MODE", _NSO, ".SH JSON OUTPUT", ".PP",
            "With \\fB\\-\\-json\\fR a command prints one JSON object (watch: one per line) "
            "on stdout; a failure prints the error object instead, the same for every "
            "command:"]
    for name, shape in _JSON:
        out += [".TP", "\\fB%s\\fR" % name, _t(shape)]
    out.append(".SH ENVIRONMENT")
    for name, text, _commands in ENVIRONMENT:
        out += [".TP", "\\fB%s\\fR" % name, _t(text)]
    out.append(".SH EXIT STATUS")
    for code, name, text in EXIT_CODES:
        out += [".TP", "\\fB%d\\fR" % code, _t("%s: %s" % (name, text))]
    out += [".PP", "watch ends with 0 on Ctrl-C or SIGTERM, its normal end. emulate: 1 the node "
            "could not start, 3 a listener could not be opened. agent run: 0 after SIGTERM "
            "or SIGINT, 1 the agent cannot go on, 3 etcd cannot be reached at start or the "
            "health endpoint cannot listen. agent list, switchover, failover, pause, resume: "
            "1 refused (no such member, not in sync, paused, no leader), 3 no etcd endpoint "
            "answered, 4 not done within \\fB\\-\\-timeout\\fR. demo \\-\\-agent: 2 "
            "etcd or httpx is not installed."]
    out.append(".SH EXAMPLES")
    for command, text in _EXAMPLES:
        out += [".TP", "\\fB%s\\fR" % command, _t(text)]
    out += [".SH FILES", ".TP", "\\fIdocs/cli.md\\fR, \\fIdocs/emulator.md\\fR, "
            "\\fIdocs/agent.md\\fR",
            "the user's guide to the command line, the emulated node and the HA agent, in "
            "the source distribution",
            ".SH SEE ALSO", "\\fBconfd\\fR(1), \\fBncs\\fR(1)", ""]
    return "\n".join(out)
