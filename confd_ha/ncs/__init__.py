"""The NSO flavour of the API, for code written against ``_ncs.ha``::

    import confd_ha.ncs as ha

The same functions and constants as :mod:`confd_ha`; only the defaults differ, as between
``_ncs`` and ``_confd``: ``PORT`` is NSO's IPC port (4569, or ``$NCS_IPC_PORT``) and ``ADDR``
comes from ``$NCS_IPC_ADDR``; :func:`connect` uses them when ``ip``/``port`` are left out, and
so do :mod:`confd_ha.ncs.events` (``_ncs.events``) and :mod:`confd_ha.ncs.aio`.
"""

from __future__ import annotations

import socket as _socket
import sys as _sys
from typing import Optional as _Optional

import confd_ha as _base
from confd_ha import *  # noqa: F401,F403 -- the whole API, re-exported
from confd_ha import error as error
from confd_ha import _settings
from confd_ha._args import PathArg as _PathArg, Token as _Token

# ADDR and PORT are views of _settings.NSO (see confd_ha/__init__.py).
_DEFAULTS = _settings.NSO
_DEFAULTS.read_env()
_sys.modules[__name__].__class__ = _settings.FlavourModule

__all__ = list(_base.__all__)


def connect(  # type: ignore[no-redef]  # replaces the star-imported connect on purpose
        sock: _socket.socket, token: _Token, ip: _Optional[str] = None,
        port: _Optional[int] = None, pstr: _Optional[_PathArg] = None, **options: int) -> None:
    """:func:`confd_ha.connect` with NSO's defaults (``ADDR``:``PORT`` of this module)."""
    _base._connect(_DEFAULTS, sock, token, ip, port, pstr, options)


from . import events as events  # noqa: E402 -- after _DEFAULTS: it uses them
