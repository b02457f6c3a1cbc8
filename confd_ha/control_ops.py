"""The control protocol of an emulated node (B-33): its operations in one table
(:data:`OPERATIONS`), the endpoint's names and limits, the ``info`` snapshot.

Shared by the daemon's control server (:mod:`confd_ha.emulator.control`), the harness's
client (:mod:`confd_ha.testing.control`) and the command line, as :mod:`._protocol` is by
the client and the daemon; it imports neither, so the command line builds its parser
without loading the emulator.

Each :class:`Operation` names its arguments (:class:`Param`: the request's field, its kind,
and how the ``confd-ha cdb`` command line gives it), its help text and the coroutine that
runs it on the node. The control server checks and dispatches requests with it; the
command line (:mod:`confd_ha.cli_parser_emulator`, :mod:`confd_ha.cli_cdb`) builds its ``cdb``
actions and their requests from it. Adding an operation is one entry here.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Dict, List, Optional, Tuple

if TYPE_CHECKING:
    from .emulator.node import Node

__all__ = ["Param", "Operation", "OPERATIONS", "BY_NAME", "OPS", "BadRequest", "NotRunning",
           "parse_args", "node_info", "control_name", "control_address"]

Args = Dict[str, Any]
Handler = Callable[["Node", Args], Awaitable[Any]]

NAME_PREFIX = "confd-ha-ctl:"
MAX_LINE = 1 << 20            # a request line
MAX_REPLY = 256 << 20         # a reply line (a large datastore ``show``)
MAX_CLIENTS = 64             # connections to one endpoint
IDLE_TIMEOUT = 600.0         # seconds a connection may stay silent


def control_name(ipc_address: str, ipc_port: int) -> str:
    """``confd-ha-ctl:<address>:<port>``, the address in canonical form."""
    try:
        address = ipaddress.ip_address(ipc_address.split("%", 1)[0]).compressed
    except ValueError:
        address = ipc_address
    return "%s%s:%d" % (NAME_PREFIX, address, ipc_port)


def control_address(ipc_address: str, ipc_port: int) -> str:
    """The abstract socket address (a leading NUL) for ``socket.connect``/``bind``."""
    return "\0" + control_name(ipc_address, ipc_port)


class BadRequest(Exception):
    """A request that cannot be executed as given."""


class NotRunning(Exception):
    """A datastore request on a node that is not running."""


@dataclass(frozen=True)
class Param:
    """One argument of an operation.

    ``kind`` says what the request carries and how the command line reads it:
    ``text`` (a string; a positional), ``phase`` (0, 1 or 2; a positional), ``switch`` (a
    boolean; the positional ``on``/``off``), ``flag`` (a boolean; the option ``--KEY``),
    ``peer`` (an IP address; a positional, ``all`` meaning none when not ``required``),
    ``count`` (an integer >= 0) and ``changes`` (a change list); the last two are not on the
    command line. ``metavar`` and ``help`` are the command line's.
    """

    key: str
    kind: str
    metavar: str = ""
    help: str = ""
    required: bool = True
    default: Any = None


@dataclass(frozen=True)
class Operation:
    """One control operation: its ``name`` (the request's ``op`` and the ``cdb`` action),
    ``help``, ``params``, whether it only reads (``read``: its outcome is known after a
    timeout), whether the command line offers it (``cli``) and its ``run`` coroutine."""

    name: str
    help: str
    params: Tuple[Param, ...]
    run: Handler
    read: bool = False
    cli: bool = True


# ---------------------------------------------------------------- checking arguments

_TYPES = {"text": (str, "a string"), "switch": (bool, "true or false"),
          "flag": (bool, "true or false"), "peer": (str, "a string"),
          "changes": (list, "a list")}


def _value(req: Args, p: Param) -> Any:
    if p.key not in req or (p.kind == "peer" and not p.required and req[p.key] is None):
        if p.required:
            raise BadRequest("missing argument %r" % p.key)
        return p.default
    value = req[p.key]
    if p.kind in ("phase", "count"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadRequest("argument %r must be an integer" % p.key)
    else:
        kind, name = _TYPES[p.kind]
        if not isinstance(value, kind):
            raise BadRequest("argument %r must be %s" % (p.key, name))
    if p.kind == "phase" and value not in (0, 1, 2):
        raise BadRequest("phase must be 0, 1 or 2")
    if p.kind == "count" and value < 0:
        raise BadRequest("argument %r must be >= 0" % p.key)
    if p.kind == "peer":
        try:
            return ipaddress.ip_address(value).compressed
        except ValueError:
            raise BadRequest("argument %r must be an IP address, not %r"
                             % (p.key, value)) from None
    if p.kind == "changes":
        return _changes(value)
    return value


def _changes(changes: List[Any]) -> List[Tuple[Any, ...]]:
    if len(changes) > 100000:
        raise BadRequest("too many changes in one commit")
    out = []
    for i, ch in enumerate(changes):
        if not isinstance(ch, list) or not ch or ch[0] not in ("set", "delete"):
            raise BadRequest("change #%d must be [\"set\", path, value] or [\"delete\", path]" % i)
        out.append(tuple(ch))
    return out


def parse_args(op: Operation, req: Args) -> Args:
    """The checked arguments of request ``req`` for ``op`` (:class:`BadRequest` otherwise)."""
    return {p.key: _value(req, p) for p in op.params}


# ---------------------------------------------------------------- the operations


def _text(term: Any) -> Optional[str]:
    """A node-id or address term as text for JSON."""
    if term is None:
        return None
    if isinstance(term, bytes):
        return term.decode("utf-8", "replace")
    if isinstance(term, str):
        return str(term)
    from . import _address, error

    try:
        return _address.address_text(term)
    except (error.Error, TypeError, ValueError):
        return repr(term)


def node_info(node: "Node", decisions: Optional[int] = None) -> Dict[str, Any]:
    """A JSON-able snapshot of a node (call on its loop thread): configuration, state,
    peers, subscribers, datastore transaction id and the last ``decisions`` decisions (all
    when None). Never contains the token."""
    cfg = node.config
    state, nodes = node.status()
    try:
        txid = node.txid
    except Exception:  # a store that was never opened
        txid = None
    decided = node.decisions
    if decisions is not None:
        decided = decided[-decisions:] if decisions > 0 else []
    return {
        "name": cfg.name,
        "flavour": cfg.flavour,
        "running": node.running,
        "state": state,
        "state_name": node.state_name,
        "node_id": _text(node.node_id),
        "ipc": {"address": cfg.ipc_address, "port": node.ipc_port or cfg.ipc_port,
                "path": cfg.ipc_path},
        "ha": {"address": cfg.ha_address, "port": cfg.ha_port},
        "tick_timeout": cfg.tick_timeout,
        "data_dir": cfg.data_dir,
        "start_phase": node.start_phase,
        "upgrade": node.upgrade,
        "frozen": node.frozen,
        "partitions": list(node.partitions),
        "joining": node.joining,
        "txid": txid,
        "status": [{"nodeid": _text(n), "address": _text(a)} for n, a in nodes],
        "peers": [{"role": p["role"], "nodeid": _text(p["nodeid"]), "address": p["address"]}
                  for p in node.peers],
        "subscribers": node.subscribers,
        "decisions": decided,
    }



def _running(node: "Node") -> None:
    if not node.running:
        raise NotRunning("node %s is not running" % node.label)


async def _info(node: "Node", a: Args) -> Any:
    return node_info(node, a["decisions"])


async def _get(node: "Node", a: Args) -> Any:
    _running(node)
    return {"path": a["path"], "value": node.get(a["path"])}


async def _show(node: "Node", a: Args) -> Any:
    _running(node)
    return {"items": [[p, v] for p, v in node.items(a["prefix"])]}


async def _txid(node: "Node", a: Args) -> Any:
    _running(node)
    return {"txid": node.txid}


async def _commit(node: "Node", changes: List[Tuple[Any, ...]]) -> Any:
    _running(node)
    return {"txid": await node.commit(changes)}


async def _commit_op(node: "Node", a: Args) -> Any:
    return await _commit(node, a["changes"])


async def _set(node: "Node", a: Args) -> Any:
    return await _commit(node, [("set", a["path"], a["value"])])


async def _delete(node: "Node", a: Args) -> Any:
    return await _commit(node, [("delete", a["path"])])


async def _phase(node: "Node", a: Args) -> Any:
    try:
        await node.set_start_phase(a["phase"])
    except ValueError as exc:  # a step the node refuses (B-31)
        raise RuntimeError(str(exc)) from None
    return {"start_phase": node.start_phase}


async def _then(done: Awaitable[None], report: Callable[[], Any]) -> Any:
    """``report()`` once ``done`` is: what an operation that changes the node answers."""
    await done
    return report()


_PATH = "an absolute path"

OPERATIONS: Tuple[Operation, ...] = (
    Operation("set", "commit PATH = VALUE; prints the new transaction id",
              (Param("path", "text", "PATH", _PATH + ", e.g. /sys/host"),
               Param("value", "text", "VALUE", "the value (text)")), _set),
    Operation("get", "print the value at PATH (exit 1 if there is none)",
              (Param("path", "text", "PATH", _PATH),), _get, read=True),
    Operation("delete", "delete PATH and everything below it; prints the new transaction id",
              (Param("path", "text", "PATH", _PATH),), _delete),
    Operation("show", "print every path and value (below PREFIX)",
              (Param("prefix", "text", "PREFIX", "only paths below this one (default /)",
                     required=False, default="/"),), _show, read=True),
    Operation("txid", "print the datastore's transaction id", (), _txid, read=True),
    Operation("phase", "advance the start phase (0 -> 1 -> 2, one step at a time)",
              (Param("phase", "phase", "N", "the new start phase: 1 or 2"),), _phase),
    Operation("upgrade", "set (on) or clear (off) 'upgrade in progress'",
              (Param("on", "switch", "on|off", "on or off"),),
              lambda n, a: _then(n.set_upgrade(a["on"]), lambda: {"upgrade": n.upgrade})),
    Operation("kill", "kill the node: every socket closed abruptly (the process keeps "
              "running)", (),
              lambda n, a: _then(n.kill(), lambda: {"running": n.running})),
    Operation("stop", "stop the node in an orderly way (peers get a goodbye)", (),
              lambda n, a: _then(n.stop(), lambda: {"running": n.running})),
    Operation("start", "start a stopped or killed node again (state none, data kept)", (),
              lambda n, a: _then(n.start(), lambda: {"running": n.running})),
    Operation("restart", "stop (or --kill) and start the node again",
              (Param("kill", "flag", "", "kill instead of an orderly stop", required=False,
                     default=False),),
              lambda n, a: _then(n.restart(kill=a["kill"]), lambda: {"running": n.running})),
    Operation("freeze", "hold all inter-node traffic, sockets open (peers see HA_NOTICK)", (),
              lambda n, a: _then(n.freeze(), lambda: {"frozen": n.frozen})),
    Operation("thaw", "release a freeze", (),
              lambda n, a: _then(n.thaw(), lambda: {"frozen": n.frozen})),
    Operation("partition", "hold inter-node traffic with IP, both ways",
              (Param("peer", "peer", "IP", "the peer's address"),),
              lambda n, a: _then(n.partition(a["peer"]), lambda: {"partitions": n.partitions})),
    Operation("heal", "end the partition from IP (all partitions without IP)",
              (Param("peer", "peer", "IP", "the peer's address, or all (the default)",
                     required=False),),
              lambda n, a: _then(n.heal(a["peer"]), lambda: {"partitions": n.partitions})),
    Operation("info", "state, node id, addresses, peers, subscribers, transaction id, "
              "decisions", (Param("decisions", "count", required=False),), _info, read=True),
    Operation("commit", "commit a change list", (Param("changes", "changes"),), _commit_op,
              cli=False),
)
BY_NAME: Dict[str, Operation] = {op.name: op for op in OPERATIONS}
OPS: Tuple[str, ...] = tuple(sorted(BY_NAME))

