"""What ``confd-ha`` prints: the status table and object, event lines and objects, and the
escaping that keeps a hostile node id from breaking a table or a terminal."""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
from typing import Any, Dict, Iterator, List, Optional, TextIO

from ._consts import HaInfo, event_text, state_text

_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape(text: object) -> str:
    """``text`` with backslashes, control characters, other unprintable characters and
    undecodable bytes (surrogates) escaped, Python-style: one line, and what it shows is
    what the node id is. Printable text (also non-ASCII) is unchanged."""
    text = str(text)
    if text.isprintable() and "\\" not in text:
        return text
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif "\udc80" <= ch <= "\udcff":          # an undecodable byte (surrogateescape)
            out.append("\\x%02x" % (ord(ch) - 0xDC00))
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x100:
            out.append("\\x%02x" % ord(ch))
        elif ord(ch) < 0x10000:
            out.append("\\u%04x" % ord(ch))
        else:
            out.append("\\U%08x" % ord(ch))
    return "".join(out)


def json_text(value: Any) -> str:
    """Text safe for JSON: undecodable bytes (lone surrogates) become U+FFFD."""
    text = str(value)
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return "".join("\ufffd" if "\ud800" <= ch <= "\udfff" else ch for ch in text)


def dumps(obj: Any) -> str:
    return json.dumps(obj)


# ---------------------------------------------------------------- status


def status_object(state: int, nodes: List[Dict[str, str]]) -> Dict[str, Any]:
    return {"state": state_text(state), "state_code": state,
            "nodes": [{"nodeid": json_text(n["nodeid"]), "address": json_text(n["address"])}
                      for n in nodes]}


def print_status(state: int, nodes: List[Dict[str, str]], as_json: bool, out: TextIO) -> None:
    """The node's state and its nodes: a table (node ids escaped) or one JSON object."""
    if as_json:
        print(dumps(status_object(state, nodes)), file=out)
        return
    print("state: %s (%d)" % (state_text(state), state), file=out)
    if nodes:
        rows = [(escape(n["nodeid"]), escape(n["address"])) for n in nodes]
        width = max(len("NODE ID"), *(len(r[0]) for r in rows))
        print("%-*s  %s" % (width, "NODE ID", "ADDRESS"), file=out)
        for nodeid, address in rows:
            print("%-*s  %s" % (width, nodeid, address), file=out)


# ---------------------------------------------------------------- events


def now() -> str:
    """The local time, ISO 8601 with milliseconds and the UTC offset."""
    return datetime.datetime.now().astimezone().isoformat(timespec="milliseconds")


def _node(hnot: Dict[str, Any], key: str) -> Dict[str, Any]:
    node = hnot[key]
    address = node.get("ip4") or node.get("ip6") or node.get("str")
    return {"node": str(node["nodeid"]), "address": address}


def event_fields(ev: Dict[str, Any]) -> Dict[str, Any]:
    """An event as named fields: ``event`` (its name), ``type`` (HA_INFO_* number) and per
    type ``reason``/``reason_code``, ``node``/``address``, ``by_copy``, ``result``/
    ``error``. A notification that is not an HA event is ``{"event": "notification",
    "type": N}``."""
    from . import error

    hnot = ev.get("hnot")
    if hnot is None:
        return {"event": "notification", "type": ev.get("type")}
    t = hnot.get("type")
    fields: Dict[str, Any] = {"event": event_text(t) or "type-%s" % t, "type": t}
    if t == HaInfo.NOPRIMARY:
        fields.update(reason=error.errname(hnot["noprimary"]), reason_code=hnot["noprimary"])
    elif t == HaInfo.SECONDARY_DIED:
        fields.update(_node(hnot, "secondary_died"))
    elif t == HaInfo.SECONDARY_ARRIVED:
        fields.update(_node(hnot, "secondary_arrived"))
    elif t == HaInfo.SECONDARY_INITIALIZED:
        fields["by_copy"] = bool(hnot["cdb_initialized_by_copy"])
    elif t == HaInfo.BESECONDARY_RESULT:
        r = hnot["besecondary_result"]
        fields.update(result=r, error=None if r == 0 else error.errname(r))
    return fields


def event_line(ev: Dict[str, Any], when: Optional[str] = None) -> str:
    """One line for an event: ``TIME NAME key=value ...`` (values escaped)."""
    f = event_fields(ev)
    words = [f["event"]]
    if f["event"] == HaInfo.NOPRIMARY.text:
        words.append("reason=%s (%d)" % (f["reason"], f["reason_code"]))
    elif "node" in f:
        words += ["node=%s" % escape(f["node"]), "address=%s" % escape(f["address"])]
    elif "by_copy" in f:
        words.append("by_copy=%d" % f["by_copy"])
    elif "result" in f:
        words.append("result=%d%s" % (f["result"], " (%s)" % f["error"] if f["error"] else ""))
    elif f["event"] == "notification" or f["event"].startswith("type-"):
        words.append("type=%s" % f["type"])
    return " ".join(([when] if when else []) + words)


def event_object(ev: Dict[str, Any], when: str) -> Dict[str, Any]:
    obj: Dict[str, Any] = {"time": when}
    for key, value in event_fields(ev).items():
        obj[key] = json_text(value) if isinstance(value, str) else value
    return obj


@contextlib.contextmanager
def stderr_log(err: TextIO, level: int, formatter: logging.Formatter) -> Iterator[None]:
    """The package's log (logger ``confd_ha``) on ``err`` at ``level`` while the block runs,
    not passed on to the root logger; the logger's level and propagation are restored after."""
    logger = logging.getLogger("confd_ha")
    handler = logging.StreamHandler(err)
    handler.setLevel(level)
    handler.setFormatter(formatter)
    old = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old[0])
        logger.propagate = old[1]
