"""Canonical, repr-independent renderings of a call's outcome (JSON-able).

* a result: ``None``, ``bool``, ``int``, ``str`` as themselves; ``bytes`` as
  ``{'bytes': hex}``; tuples and lists as lists; dicts with their keys as text, sorted; a
  ``Value`` of either module as ``{'Value': str(v), 'type': v.confd_type()}``; anything else
  as ``{'object': type name, 'str': str(x)}``. Wrapped: ``{'result': ...}``.
* an exception: ``{'raises': class, 'confd_errno': ..., 'errno': ..., 'str': str(e)}``, the
  class by its canonical name (``Error``, ``EOF``, ``Timeout`` for either module's classes,
  else the builtin's name); for ``Error`` also ``confd_strerror`` and ``confd_lasterr``.
* a call that did not return: ``{'hang': True}``.
"""

from __future__ import annotations


def _value_like(x) -> bool:
    return callable(getattr(x, "confd_type", None)) and callable(getattr(x, "as_pyval", None))


def plain(x, value_cls=None):
    """The canonical rendering of a returned object (without the ``result`` wrapper)."""
    if x is None or isinstance(x, (bool, int, str)):
        return x
    if isinstance(x, float):
        return {"float": repr(x)}
    if isinstance(x, (bytes, bytearray)):
        return {"bytes": bytes(x).hex()}
    if isinstance(x, (tuple, list)):
        return [plain(v, value_cls) for v in x]
    if isinstance(x, dict):
        return {str(k): plain(x[k], value_cls) for k in sorted(x, key=str)}
    if (value_cls is not None and isinstance(x, value_cls)) or _value_like(x):
        return {"Value": str(x), "type": x.confd_type()}
    return {"object": type(x).__name__, "str": str(x)}


def result(x, value_cls=None) -> dict:
    return {"result": plain(x, value_cls)}


def exception(exc: BaseException, class_name: str) -> dict:
    errno = getattr(exc, "errno", None)
    out = {"raises": class_name,
           "confd_errno": getattr(exc, "confd_errno", None),
           "errno": errno if isinstance(errno, int) else None,
           "str": str(exc)}
    if class_name in ("Error", "Timeout"):
        out["confd_strerror"] = getattr(exc, "confd_strerror", None)
        out["confd_lasterr"] = getattr(exc, "confd_lasterr", None)
    return out


def line(step) -> str:
    """One step ``[label, outcome]`` as a single readable line."""
    label, outcome = step
    if "hang" in outcome:
        return "%s: HANG" % label
    if "raises" not in outcome and "result" not in outcome:
        return "%s: %s" % (label, outcome)
    if "result" in outcome:
        return "%s -> %r" % (label, outcome["result"])
    extra = []
    if outcome.get("confd_errno") is not None:
        extra.append("confd_errno=%s" % outcome["confd_errno"])
    if outcome.get("errno") is not None:
        extra.append("errno=%s" % outcome["errno"])
    return "%s raises %s(%r)%s" % (label, outcome["raises"], outcome["str"],
                                   (" " + " ".join(extra)) if extra else "")
