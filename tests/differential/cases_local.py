"""Cases that need no daemon: constants, ``strerror``, argument checking, and connects or
calls that fail before any daemon could answer (nothing listens at ``CLOSED_IP``)."""

from __future__ import annotations

import socket

from .catalogue import Case
from .worlds import CLOSED_IP, IPC_PORT, TOKEN

# ---------------------------------------------------------------- constants
#
# The names of Cisco's modules that confd_ha provides (the interface, observed with dir()):
# where each lives in Cisco's package and in confd_ha. test_differential checks live that
# this list is complete for its scope.

HA_CONSTANTS = ("STATE_MASTER", "STATE_NONE", "STATE_PRIMARY", "STATE_SECONDARY",
                "STATE_SECONDARY_RELAY", "STATE_SLAVE", "STATE_SLAVE_RELAY")
EVENTS_CONSTANTS = (
    "HA_INFO_BESECONDARY_RESULT", "HA_INFO_BESLAVE_RESULT", "HA_INFO_IS_MASTER",
    "HA_INFO_IS_NONE", "HA_INFO_IS_PRIMARY", "HA_INFO_NOMASTER", "HA_INFO_NOPRIMARY",
    "HA_INFO_SECONDARY_ARRIVED", "HA_INFO_SECONDARY_DIED", "HA_INFO_SECONDARY_INITIALIZED",
    "HA_INFO_SLAVE_ARRIVED", "HA_INFO_SLAVE_DIED", "HA_INFO_SLAVE_INITIALIZED",
    "NOTIF_AUDIT", "NOTIF_AUDIT_SYNC", "NOTIF_COMMIT_DIFF", "NOTIF_COMMIT_FAILED",
    "NOTIF_COMMIT_PROGRESS", "NOTIF_COMMIT_SIMPLE", "NOTIF_COMPACTION",
    "NOTIF_CONFIRMED_COMMIT", "NOTIF_DAEMON", "NOTIF_DEVEL", "NOTIF_FORWARD_INFO",
    "NOTIF_HA_INFO", "NOTIF_HA_INFO_SYNC", "NOTIF_HEALTH_CHECK", "NOTIF_HEARTBEAT",
    "NOTIF_JSONRPC", "NOTIF_NETCONF", "NOTIF_PROGRESS", "NOTIF_REOPEN_LOGS", "NOTIF_SNMPA",
    "NOTIF_STREAM_EVENT", "NOTIF_SUBAGENT_INFO", "NOTIF_SYSLOG", "NOTIF_SYSLOG_TAKEOVER",
    "NOTIF_TAKEOVER_SYSLOG", "NOTIF_UPGRADE_EVENT", "NOTIF_USER_SESSION", "NOTIF_WEBUI")
CODE_CONSTANTS = (
    "CONFD_EOF", "CONFD_ERR", "CONFD_OK",
    "ERR_ABORTED", "ERR_ACCESS_DENIED", "ERR_ALREADY_EXISTS", "ERR_APPLICATION_INTERNAL",
    "ERR_BADPATH", "ERR_BADSTATE", "ERR_BADTYPE", "ERR_BAD_CONFIG", "ERR_BAD_KEYREF",
    "ERR_CLI_CMD", "ERR_DATA_MISSING", "ERR_EOF", "ERR_EXTERNAL", "ERR_HA_ABORT",
    "ERR_HA_BADCONFIG", "ERR_HA_BADFXS", "ERR_HA_BADNAME", "ERR_HA_BADTOKEN", "ERR_HA_BADVSN",
    "ERR_HA_BIND", "ERR_HA_CLOSED", "ERR_HA_CONNECT", "ERR_HA_NOTICK", "ERR_HA_WITH_UPGRADE",
    "ERR_INCONSISTENT_VALUE", "ERR_INTERNAL", "ERR_INUSE", "ERR_INVALID_INSTANCE",
    "ERR_LIB_NOT_INITIALIZED", "ERR_LOCKED", "ERR_MALLOC", "ERR_MISSING_INSTANCE",
    "ERR_MUST_FAILED", "ERR_NOEXISTS", "ERR_NON_UNIQUE", "ERR_NOSESSION", "ERR_NOSTACK",
    "ERR_NOTCREATABLE", "ERR_NOTDELETABLE", "ERR_NOTMOVABLE", "ERR_NOTRANS", "ERR_NOTSET",
    "ERR_NOT_IMPLEMENTED", "ERR_NOT_WRITABLE", "ERR_NO_MOUNT_ID", "ERR_OS",
    "ERR_POLICY_COMPILATION_FAILED", "ERR_POLICY_EVALUATION_FAILED", "ERR_POLICY_FAILED",
    "ERR_PROTOUSAGE", "ERR_RESOURCE_DENIED", "ERR_STALE_INSTANCE", "ERR_START_FAILED",
    "ERR_SUBAGENT_DOWN", "ERR_TIMEOUT", "ERR_TOOMANYTRANS", "ERR_TOO_FEW_ELEMS",
    "ERR_TOO_MANY_ELEMS", "ERR_TOO_MANY_SESSIONS", "ERR_TRANSACTION_CONFLICT",
    "ERR_UNAVAILABLE", "ERR_UNSET_CHOICE", "ERR_UPGRADE_IN_PROGRESS", "ERR_VALIDATION_WARNING",
    "ERR_XPATH", "NCS_ERR_CONNECTION_CLOSED", "NCS_ERR_CONNECTION_REFUSED",
    "NCS_ERR_CONNECTION_TIMEOUT", "NCS_ERR_DEVICE", "NCS_ERR_SERVICE_CONFLICT",
    "NCS_ERR_TEMPLATE")
TOP_CONSTANTS = ("ADDR", "CONFD_PORT", "LIB_PROTO_VSN", "LIB_VSN", "PORT")

# Where a group lives: Cisco's _confd.ha / _confd.events / _confd, and confd_ha's module.
CONSTANT_GROUPS = (
    ("_confd.ha", HA_CONSTANTS, lambda side: side.ha),
    ("_confd.events", EVENTS_CONSTANTS, lambda side: side.events),
    ("_confd", CODE_CONSTANTS, lambda side: side.codes),
    ("_confd", TOP_CONSTANTS, lambda side: side.top),
)


def in_scope(module_name: str, name: str) -> bool:
    """Whether a public name of Cisco's module belongs to the HA API this project covers."""
    if module_name == "_confd.ha":
        return name.isupper()
    if module_name == "_confd.events":
        return name.startswith(("HA_INFO_", "NOTIF_")) and not name.startswith("NOTIF_COMMIT_FLAG")
    return name.startswith(("ERR_", "NCS_ERR_", "CONFD_")) or name in TOP_CONSTANTS


def _constant(where, name):
    def run(ctx, side):
        mod = where(side)
        if not hasattr(mod, name):
            return [[name, {"missing": True}]]
        return [[name, {"result": getattr(mod, name)}]]
    return run


def _strerror(code):
    def run(ctx, side):
        return [side.run("strerror(%d)" % code, side.strerror, code)]
    return run


STRERROR_CODES = tuple(range(-3, 121)) + (1000, 2**31 - 1, -(2**31))


# ---------------------------------------------------------------- argument checks

SOCK = object()   # in a keyword-argument dict: the case's socket


def _kw(kwargs, s):
    return {k: (s if v is SOCK else v) for k, v in kwargs.items()}


def _calls(*specs):
    """A run function making the calls ``(label, attr, args_fn, kwargs)``, each on a new
    unconnected socket; ``args_fn(side, sock)`` gives the positional arguments."""
    def run(ctx, side):
        out = []
        for label, attr, args_fn, kwargs in specs:
            s = ctx.socket()
            mod, _, fname = attr.rpartition(".")
            fn = getattr(side.events if mod == "events" else side.ha, fname)
            out.append(side.run(label, fn, *args_fn(side, s), unblock=s, **_kw(kwargs, s)))
        return out
    return run


def _connect(label, args_fn, family=socket.AF_INET, kind=socket.SOCK_STREAM, **kwargs):
    def run(ctx, side):
        s = ctx.socket(family, kind)
        return [side.run(label, side.ha.connect, *args_fn(s), unblock=s, **_kw(kwargs, s))]
    return run


def _notif_connect(label, args_fn, family=socket.AF_INET, **kwargs):
    def run(ctx, side):
        s = ctx.socket(family)
        return [side.run(label, side.events.notifications_connect, *args_fn(s), unblock=s,
                         **_kw(kwargs, s))]
    return run


C = CLOSED_IP
P = IPC_PORT
HA_INFO = 1 << 6


def _connect_cases():
    ip_texts = [("nonsense", "nonsense"), ("hostname", "localhost"), ("empty", ""),
                ("trailing-space", C + " "), ("three-part", "127.78.9"),
                ("out-of-range-octet", "300.1.1.1"), ("ipv6-on-inet", "::ffff:" + C),
                ("ipv6-loopback-on-inet", "::1")]
    for tag, text in ip_texts:
        yield "connect/ip/" + tag, _connect("connect(ip=%r)" % text,
                                            lambda s, t=text: (s, TOKEN, t, P))
    yield "connect/ip/v4-on-inet6", _connect("connect(ip=%r)" % C, lambda s: (s, TOKEN, C, P),
                                             family=socket.AF_INET6)
    yield "connect/ip/v4-mapped-on-inet6", _connect(
        "connect(ip=::ffff:%s)" % C, lambda s: (s, TOKEN, "::ffff:" + C, P),
        family=socket.AF_INET6)
    yield "connect/ip/int", _connect("connect(ip=5)", lambda s: (s, TOKEN, 5, P))
    yield "connect/ip/bytes", _connect("connect(ip=b'..')", lambda s: (s, TOKEN, C.encode(), P))
    yield "connect/ip/none-port-1", _connect("connect(ip=None, port=1)",
                                             lambda s: (s, TOKEN, None, 1))
    yield "connect/refused", _connect("connect", lambda s: (s, TOKEN, C, P))
    for tag, port in (("minus-1", -1), ("minus-2", -2), ("zero", 0), ("65535", 65535),
                      ("65536", 65536), ("2^31", 2**31), ("2^32", 2**32), ("2^64", 2**64)):
        yield "connect/port/" + tag, _connect("connect(port=%d)" % port,
                                              lambda s, p=port: (s, TOKEN, C, p))
    for tag, port in (("str", "4565"), ("float", 4565.0), ("bool", True), ("none", None)):
        yield "connect/port/" + tag, _connect("connect(port=%r)" % (port,),
                                              lambda s, p=port: (s, TOKEN, C, p))
    for tag, tok in (("int", 5), ("none", None), ("bytes", TOKEN.encode()), ("empty", ""),
                     ("bytearray", bytearray(b"t"))):
        yield "connect/token/" + tag, _connect("connect(token=%s)" % tag,
                                               lambda s, t=tok: (s, t, C, P))
    yield "connect/kw/all", _connect("connect(sock=, token=, ip=, port=)", lambda s: (),
                                     sock=SOCK, token=TOKEN, ip=C, port=P)
    yield "connect/kw/unknown", _connect("connect(..., host=)", lambda s: (s, TOKEN),
                                         host=C, port=P)
    yield "connect/kw/pstr-on-inet", _connect("connect(..., pstr=)", lambda s: (s, TOKEN, C, P),
                                              pstr="/nonexistent")
    yield "connect/args/none", _connect("connect()", lambda s: ())
    yield "connect/args/sock-only", _connect("connect(sock)", lambda s: (s,))
    yield "connect/args/too-many", _connect("connect(6 args)",
                                            lambda s: (s, TOKEN, C, P, "/x", 1))
    yield "connect/unix/no-path", _connect("connect(AF_UNIX)", lambda s: (s, TOKEN),
                                           family=socket.AF_UNIX)
    yield "connect/unix/missing-path", _connect(
        "connect(AF_UNIX, pstr=missing)", lambda s: (s, TOKEN), family=socket.AF_UNIX,
        pstr="/nonexistent/x")
    yield "connect/unix/path-int", _connect("connect(AF_UNIX, pstr=5)", lambda s: (s, TOKEN),
                                            family=socket.AF_UNIX, pstr=5)
    yield "connect/unix/ip-int", _connect("connect(AF_UNIX, ip=5, pstr=)",
                                          lambda s: (s, TOKEN, 5), family=socket.AF_UNIX,
                                          pstr="/nonexistent/x")
    yield "connect/sock/udp", _connect("connect(SOCK_DGRAM)", lambda s: (s, TOKEN, C, P),
                                       kind=socket.SOCK_DGRAM)
    for tag, obj in (("none", None), ("int", 1), ("str", "x")):
        yield "connect/sock/" + tag, _connect("connect(sock=%r)" % (obj,),
                                              lambda s, o=obj: (o, TOKEN, C, P))


# Valid arguments after the socket, per function.
_OTHER_ARGS = {"beprimary": ("n1",), "bemaster": ("n1",), "besecondary": ("n2", "n1", C, 1),
               "beslave": ("n2", "n1", C, 1), "secondary_dead": ("n2",),
               "slave_dead": ("n2",), "notifications_connect": (HA_INFO, C, P)}


def _order_cases():
    none = lambda side, s: (s,)  # noqa: E731
    yield "order/unconnected/beprimary", _calls(("beprimary", "beprimary",
                                                 lambda side, s: (s, "n1"), {}))
    yield "order/unconnected/besecondary", _calls(
        ("besecondary", "besecondary", lambda side, s: (s, "n2", "n1", C, 1), {}))
    yield "order/unconnected/besecondary-async", _calls(
        ("besecondary(waitreply=0)", "besecondary", lambda side, s: (s, "n2", "n1", C, 0), {}))
    yield "order/unconnected/benone", _calls(("benone", "benone", none, {}))
    yield "order/unconnected/berelay", _calls(("berelay", "berelay", none, {}))
    yield "order/unconnected/status", _calls(("status", "status", none, {}))
    yield "order/unconnected/secondary_dead", _calls(
        ("secondary_dead", "secondary_dead", lambda side, s: (s, "n2"), {}))
    yield "order/unconnected/read_notification", _calls(
        ("read_notification", "events.read_notification", none, {}))
    yield "order/unconnected/sync_ha_notification", _calls(
        ("sync_ha_notification", "events.sync_ha_notification", none, {}))
    for fname in ("beprimary", "bemaster", "besecondary", "beslave", "benone", "berelay",
                  "status", "secondary_dead", "slave_dead", "events.read_notification",
                  "events.sync_ha_notification", "events.notifications_connect"):
        short = fname.rpartition(".")[2]
        rest = _OTHER_ARGS.get(short, ())
        for tag, obj in (("none", None), ("int", 1)):
            yield "args/%s/sock-%s" % (short, tag), _calls(
                ("%s(sock=%r)" % (short, obj), fname, lambda side, s, o=obj, r=rest: (o,) + r,
                 {}))
        yield "args/%s/none" % short, _calls(("%s()" % short, fname, lambda side, s: (), {}))
    yield "args/status/extra", _calls(("status(s, 1)", "status", lambda side, s: (s, 1), {}))
    yield "args/benone/extra", _calls(("benone(s, 1)", "benone", lambda side, s: (s, 1), {}))
    yield "args/beprimary/missing", _calls(("beprimary(s)", "beprimary", none, {}))
    yield "args/beprimary/extra", _calls(("beprimary(s, n1, x)", "beprimary",
                                          lambda side, s: (s, "n1", "x"), {}))
    for tag, nid in (("int", 5), ("none", None), ("float", 1.5), ("list", ["n1"])):
        yield "args/beprimary/id-" + tag, _calls(("beprimary(%r)" % (nid,), "beprimary",
                                                  lambda side, s, n=nid: (s, n), {}))
        yield "args/secondary_dead/id-" + tag, _calls(
            ("secondary_dead(%r)" % (nid,), "secondary_dead", lambda side, s, n=nid: (s, n), {}))
        yield "args/besecondary/id-" + tag, _calls(
            ("besecondary(mynodeid=%r)" % (nid,), "besecondary",
             lambda side, s, n=nid: (s, n, "n1", C, 1), {}))
        yield "args/besecondary/primary-id-" + tag, _calls(
            ("besecondary(primary_id=%r)" % (nid,), "besecondary",
             lambda side, s, n=nid: (s, "n2", n, C, 1), {}))
    for tag, ip in (("hostname", "localhost"), ("nonsense", "x"), ("empty", ""),
                    ("int", 5), ("none", None), ("bytes", C.encode()), ("ipv6", "::1"),
                    ("three-part", "127.78.9")):
        yield "args/besecondary/ip-" + tag, _calls(
            ("besecondary(primary_ip=%r)" % (ip,), "besecondary",
             lambda side, s, i=ip: (s, "n2", "n1", i, 1), {}))
    for tag, w in (("str", "1"), ("none", None), ("two", 2), ("true", True), ("float", 1.0),
                   ("minus-1", -1)):
        yield "args/besecondary/waitreply-" + tag, _calls(
            ("besecondary(waitreply=%r)" % (w,), "besecondary",
             lambda side, s, w=w: (s, "n2", "n1", C, w), {}))
    yield "args/besecondary/missing-waitreply", _calls(
        ("besecondary(s, n2, n1, ip)", "besecondary", lambda side, s: (s, "n2", "n1", C), {}))
    yield "args/besecondary/kw-new", _calls(
        ("besecondary(mynodeid=, primary_id=, primary_ip=, waitreply=)", "besecondary",
         lambda side, s: (s,), {"mynodeid": "n2", "primary_id": "n1", "primary_ip": C,
                                "waitreply": 1}))
    yield "args/beslave/kw-old", _calls(
        ("beslave(masterid=, masterip=)", "beslave", lambda side, s: (s, "n2"),
         {"masterid": "n1", "masterip": C, "waitreply": 1}))
    yield "args/besecondary/kw-old", _calls(
        ("besecondary(masterid=, masterip=)", "besecondary", lambda side, s: (s, "n2"),
         {"masterid": "n1", "masterip": C, "waitreply": 1}))
    yield "args/beprimary/kw", _calls(("beprimary(sock=, mynodeid=)", "beprimary",
                                       lambda side, s: (), {"mynodeid": "n1", "sock": SOCK}))
    yield "args/secondary_dead/kw", _calls(("secondary_dead(nodeid=)", "secondary_dead",
                                            lambda side, s: (s,), {"nodeid": "n2"}))


def _events_arg_cases():
    for tag, mask in (("minus-1", -1), ("2^64", 2**64), ("2^63", 2**63), ("str", "64"),
                      ("none", None), ("float", 64.0)):
        yield "notif_connect/mask/" + tag, _notif_connect(
            "notifications_connect(mask=%r)" % (mask,), lambda s, m=mask: (s, m, C, P))
    yield "notif_connect/refused", _notif_connect("notifications_connect",
                                                  lambda s: (s, HA_INFO, C, P))
    yield "notif_connect/ip/nonsense", _notif_connect("notifications_connect(ip='x')",
                                                      lambda s: (s, HA_INFO, "x", P))
    yield "notif_connect/ip/hostname", _notif_connect(
        "notifications_connect(ip='localhost')", lambda s: (s, HA_INFO, "localhost", P))
    yield "notif_connect/port/minus-1", _notif_connect(
        "notifications_connect(port=-1)", lambda s: (s, HA_INFO, C, -1))
    yield "notif_connect/port/65536", _notif_connect(
        "notifications_connect(port=65536)", lambda s: (s, HA_INFO, C, 65536))
    yield "notif_connect/unix/no-path", _notif_connect(
        "notifications_connect(AF_UNIX)", lambda s: (s, HA_INFO), family=socket.AF_UNIX)
    yield "notif_connect/unix/missing-path", _notif_connect(
        "notifications_connect(AF_UNIX, path=missing)", lambda s: (s, HA_INFO),
        family=socket.AF_UNIX, path="/nonexistent/x")
    yield "notif_connect/unix/path-int", _notif_connect(
        "notifications_connect(AF_UNIX, path=5)", lambda s: (s, HA_INFO),
        family=socket.AF_UNIX, path=5)
    yield "notif_connect/kw/all", _notif_connect(
        "notifications_connect(sock=, mask=, ip=, port=)", lambda s: (), sock=SOCK,
        mask=HA_INFO, ip=C, port=P)
    yield "notif_connect/kw/pstr", _notif_connect(
        "notifications_connect(..., pstr=)", lambda s: (s, HA_INFO, C, P), pstr="/x")
    yield "notif_connect/args/too-many", _notif_connect(
        "notifications_connect(6 args)", lambda s: (s, HA_INFO, C, P, "/x", 1))


def cases():
    for modname, names, where in CONSTANT_GROUPS:
        for name in names:
            yield Case("const/%s.%s" % (modname, name), "local", _constant(where, name))
    for code in STRERROR_CODES:
        yield Case("strerror/%d" % code, "local", _strerror(code))
    for gen in (_connect_cases, _order_cases, _events_arg_cases):
        for name, run in gen():
            yield Case(name, "local", run)
