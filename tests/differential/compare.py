"""Comparing the two sides of a case, and the documented reasons a difference may have.

``DELIBERATE`` lists where ``confd_ha`` deliberately differs from Cisco's module (README.md,
"Compatibility with Cisco's _confd.ha", says the same for users). ``EMULATOR_GAPS`` lists
cases whose ``confd_ha`` outcome in CI differs only because the emulator does not yet behave
as ConfD 8.2.5 does (the client is right; the emulator is being fixed). Each entry names
the cases it covers (``fnmatch`` patterns) and either explains every difference in them
(``normalize`` None) or gives a function that maps one step of either side to the form in
which the deliberate part no longer shows; what is left must be equal.
"""

from __future__ import annotations

import copy
import fnmatch
import re
from dataclasses import dataclass
from typing import Callable, Optional, Tuple


@dataclass(frozen=True)
class Reason:
    key: str
    why: str
    cases: Tuple[str, ...]
    normalize: Optional[Callable] = None     # (side_name, step) -> step

    def covers(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, p) for p in self.cases)


def _drop_notif_handle(side, step):
    label, outcome = step
    res = outcome.get("result")
    if side == "cisco" and isinstance(res, dict) and "_notif" in res:
        outcome = dict(outcome, result={k: v for k, v in res.items() if k != "_notif"})
    return [label, outcome]


_ARITY = re.compile(r"^(function (missing required argument|takes at most)|"
                    r"\w+\(\) (missing \d+ required|takes (from )?\d+))")


def _python_arity(side, step):
    label, outcome = step
    if outcome.get("raises") == "TypeError" and _ARITY.match(outcome.get("str", "")):
        outcome = dict(outcome, str="<wrong number of arguments>")
    return [label, outcome]


def _no_errno(side, step):
    label, outcome = step
    if "errno" in outcome:
        outcome = dict(outcome, errno=None)
    return [label, outcome]


DELIBERATE = (
    Reason("status-address-text",
           "status() writes IPv6 addresses as inet_ntop() does and string addresses as they "
           "are; Cisco's module writes the first four bytes of any address as a dotted quad "
           "(IPv6 2001:db8::2 becomes 32.1.13.184, a string becomes bytes of a pointer).",
           ("reply/status/address-v6*", "reply/status/address-string",
            "reply/status/address-charlist", "reply/status/two-nodes")),
    Reason("notification-handle",
           "read_notification() dicts have no '_notif' key: it holds Cisco's "
           "_confd.events.Notification, a handle for non-HA helpers such as "
           "diff_notification_done() that this package does not have.",
           ("*",), _drop_notif_handle),
    Reason("python-arity-texts",
           "Calls with missing or surplus arguments raise TypeError, as in Cisco's module, "
           "with Python's own words ('connect() missing 1 required positional argument: "
           "'token'') instead of the C argument parser's ('function missing required "
           "argument 'token' (pos 2)'): the functions are Python functions with real "
           "signatures (introspection, keywords); imitating the C parser's texts would put a "
           "hand-written argument parser in front of every call, the hot status() too.",
           ("connect/args/*", "args/*/none", "args/*/extra", "args/beprimary/missing",
            "notif_connect/args/*"), _python_arity),
    Reason("default-address",
           "connect() and notifications_connect() take ip/port left out (or None) from "
           "ADDR/PORT ($CONFD_IPC_ADDR/$CONFD_IPC_PORT), as the README documents; Cisco's "
           "module requires them (TypeError).",
           ("connect/ip/none-port-1", "connect/port/none")),
    Reason("port-range",
           "A port outside 0..65535 raises OverflowError; Cisco's module truncates it to 16 "
           "bits and connects to that other port (4565 + 65536 reaches port 4565).",
           ("connect/port/minus-2", "connect/port/65536", "notif_connect/port/65536",
            "connect/live/port-wrapped")),
    Reason("bytes-arguments",
           "Tokens and node ids may also be bytes (wider node-id types: str, bytes, Value, "
           "Cisco's Value); Cisco's module accepts only str and its Value.",
           ("connect/token/bytes", "connect/token/bytearray", "node-id/*-bytes")),
    Reason("old-keywords",
           "besecondary()/beslave() also take the keywords masterid/masterip of older "
           "releases of the API; Cisco's 8.2.5 module knows only primary_id/primary_ip.",
           ("args/beslave/kw-old", "args/besecondary/kw-old")),
    Reason("daemon-reason-text",
           "An {error, Code, Reason} reply keeps Reason in confd_lasterr (and so in str(e)); "
           "libconfd drops it. ConfD 8.2.5 sends no reason for HA orders.",
           ("reply/error-with-reason",)),
    Reason("errno-only-from-the-os",
           "Error.errno is set only when the operating system reported an error; for an "
           "{error, 24} reply from the daemon Cisco's module shows whatever errno the C "
           "library last had.",
           ("reply/error-24",), _no_errno),
    Reason("malformed-daemon-answers",
           "Answers no daemon sends (an integer as a reply, an error tuple without a code, a "
           "status that is not {State, [{Id, Addr}]}, node ids of no ConfD type, event "
           "tuples of no known shape) are refused with ERR_PROTOUSAGE, or decoded where the "
           "shape is clear. Cisco's module crashes the process (SIGSEGV, SIGABRT) on most of "
           "them, or returns invented values ('badval', code 1, None).",
           ("reply/integer", "reply/error-not-int", "reply/status/not-a-tuple",
            "reply/status/error", "reply/status/bad-address", "reply/status/nodeid-int",
            "reply/status/nodeid-buf-tuple", "reply/status/nodeid-int32-tuple",
            "peer-event/not-ha", "peer-event/not-a-tuple", "peer-event/*-nodeid-buf-tuple",
            "peer-event/*-nodeid-int32-tuple", "peer-event/*-charlist")),
)

EMULATOR_GAPS: Tuple[Reason, ...] = ()


def _apply(reasons, side, steps):
    out = copy.deepcopy(steps)
    for r in reasons:
        if r.normalize is not None:
            out = [r.normalize(side, s) for s in out]
    return out


def explain(name: str, cisco: list, ours: list, reasons=DELIBERATE):
    """``('same' | 'explained' | 'differs', [keys of the reasons used])``."""
    if cisco == ours:
        return "same", []
    covering = [r for r in reasons if r.covers(name)]
    if any(r.normalize is None for r in covering):
        return "explained", [r.key for r in covering if r.normalize is None]
    if covering and _apply(covering, "cisco", cisco) == _apply(covering, "confd_ha", ours):
        used = [r.key for r in covering
                if _apply([r], "cisco", cisco) != cisco or _apply([r], "confd_ha", ours) != ours]
        return "explained", used
    return "differs", []


def diff_lines(cisco: list, ours: list) -> list:
    """Readable lines for the steps that differ."""
    from .render import line

    out = []
    for i in range(max(len(cisco), len(ours))):
        a = cisco[i] if i < len(cisco) else None
        b = ours[i] if i < len(ours) else None
        if a != b:
            out.append("    Cisco:    %s" % (line(a) if a else "(no step)"))
            out.append("    confd_ha: %s" % (line(b) if b else "(no step)"))
    return out
