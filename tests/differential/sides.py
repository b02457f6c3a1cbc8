"""The two modules under comparison, behind one face: a :class:`Side`.

A side holds the modules a case calls (``ha``, ``events``, the ``error`` classes, the module
holding the ``ERR_*`` codes) and runs every call through :meth:`Side.run`: in a fresh thread
(libconfd keeps ``confd_lasterr()`` per thread and the HA calls do not clear it), with a
deadline (a call still blocked after it is recorded as ``hang`` and unblocked by shutting
the socket down), and renders the outcome canonically (:mod:`.render`).

Cisco's module is imported from a directory holding its built ``_confd`` package
(``--cisco-module DIR`` or ``$CISCO_CONFD_PY``); it is never needed by CI.
"""

from __future__ import annotations

import ctypes
import importlib
import os
import socket
import sys
import threading
from typing import Callable, Optional

from . import render

CALL_DEADLINE = 8.0   # seconds a call may block before it counts as a hang


class Side:
    """One module under comparison (``name`` is ``'cisco'`` or ``'confd_ha'``)."""

    def __init__(self, name, ha, events, error, codes, top, value_cls, strerror):
        self.name = name
        self.ha = ha                # _confd.ha | confd_ha
        self.events = events        # _confd.events | confd_ha.events
        self.error = error          # _confd.error | confd_ha.error (Error, EOF)
        self.codes = codes          # where ERR_* live: _confd | confd_ha.error
        self.top = top              # where PORT, ADDR, LIB_VSN live: _confd | confd_ha
        self.Value = value_cls      # _confd.Value | confd_ha.Value
        self.strerror = strerror    # libconfd's confd_strerror(code) | confd_ha.error.strerror

    def class_name(self, exc: BaseException) -> str:
        """The canonical class name of an exception raised by this side."""
        timeout = getattr(self.error, "Timeout", None)
        if timeout is not None and isinstance(exc, timeout):
            return "Timeout"
        if isinstance(exc, self.error.EOF):
            return "EOF"
        if isinstance(exc, self.error.Error):
            return "Error"
        return type(exc).__name__

    def run(self, label: str, fn: Callable, *args, unblock: Optional[socket.socket] = None,
            deadline: float = CALL_DEADLINE, **kwargs) -> list:
        """``[label, outcome]`` of ``fn(*args, **kwargs)`` called in a fresh thread.

        If the call is still blocked after ``deadline`` seconds, ``unblock`` (a socket) is
        shut down so that the thread ends, and the outcome is ``{'hang': True}``.
        """
        box: dict = {}

        def body():
            try:
                box["result"] = fn(*args, **kwargs)
            except BaseException as exc:  # noqa: B902 -- every outcome is data here
                # Read the details at once, in this thread: Cisco's module keeps them on the
                # class, where the next error overwrites them.
                box["outcome"] = render.exception(exc, self.class_name(exc))
            else:
                box["outcome"] = render.result(box["result"], self.Value)

        t = threading.Thread(target=body, name="differential-%s-%s" % (self.name, label),
                             daemon=True)
        t.start()
        t.join(deadline)
        if t.is_alive():
            if unblock is not None:
                try:
                    unblock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            t.join(deadline)
            return [label, {"hang": True}]
        return [label, box["outcome"]]

    def __repr__(self) -> str:
        return "<Side %s>" % self.name


def confd_ha_side() -> Side:
    import confd_ha
    from confd_ha import error, events

    return Side("confd_ha", confd_ha, events, error, error, confd_ha, confd_ha.Value,
                error.strerror)


CISCO_ENV = "CISCO_CONFD_PY"


def cisco_dir(option: Optional[str]) -> Optional[str]:
    """The directory holding Cisco's built ``_confd`` (option, else ``$CISCO_CONFD_PY``)."""
    return option or os.environ.get(CISCO_ENV) or None


def cisco_side(path: str) -> Side:
    """Cisco's ``_confd`` imported from ``path`` (a directory holding ``_confd/``)."""
    path = os.path.abspath(path)
    if not os.path.isdir(os.path.join(path, "_confd")):
        raise ImportError("%s holds no _confd package (build it with build-confd-py.sh)" % path)
    if path not in sys.path:
        sys.path.insert(0, path)
    top = importlib.import_module("_confd")
    if not os.path.abspath(top.__file__).startswith(path + os.sep):
        raise ImportError("_confd was imported from %s, not from %s" % (top.__file__, path))
    ha = importlib.import_module("_confd.ha")
    events = importlib.import_module("_confd.events")
    error = importlib.import_module("_confd.error")
    return Side("cisco", ha, events, error, top, top, top.Value, _libconfd_strerror(top))


def _libconfd_strerror(top) -> Callable[[int], str]:
    """libconfd's ``confd_strerror()`` as the loaded Cisco extension exports it.

    The Python module offers it only as ``confd_strerror`` of raised errors; calling the C
    function of the already loaded extension observes the same text for every code.
    """
    so = sys.modules["_confd._confd_py3"].__file__
    lib = ctypes.CDLL(so)
    fn = lib.confd_strerror
    fn.restype = ctypes.c_char_p
    fn.argtypes = [ctypes.c_int]

    def strerror(code: int) -> str:
        text = fn(code)
        return None if text is None else text.decode("utf-8", "replace")

    return strerror
