"""The NSO flavour of the API, for code written against ``_ncs.ha``::

    import confd_ha.ncs as ha

The same functions and constants as :mod:`confd_ha`; only the defaults differ, as between
``_ncs`` and ``_confd``: ``PORT`` is NSO's IPC port (4569, or ``$NCS_IPC_PORT``) and ``ADDR``
comes from ``$NCS_IPC_ADDR``; :func:`connect` uses them when ``ip``/``port`` are left out.
"""

from __future__ import annotations

import os
import socket as _socket
from typing import Optional as _Optional

import confd_ha as _base
from confd_ha import *  # noqa: F401,F403 -- the whole API, re-exported
from confd_ha import error as error, events as events  # noqa: F401
from confd_ha._args import PathArg as _PathArg, Token as _Token

ADDR = os.environ.get("NCS_IPC_ADDR") or "127.0.0.1"
try:
    PORT = int(os.environ.get("NCS_IPC_PORT") or _base.NCS_PORT)
except ValueError:
    PORT = _base.NCS_PORT

__all__ = list(_base.__all__)


def connect(  # type: ignore[no-redef]  # replaces the star-imported connect on purpose
        sock: _socket.socket, token: _Token, ip: _Optional[str] = None,
        port: _Optional[int] = None, pstr: _Optional[_PathArg] = None, **options: int) -> None:
    """:func:`confd_ha.connect` with NSO's defaults (``ADDR``:``PORT`` of this module)."""
    _base.connect(sock, token, ADDR if ip is None else ip, PORT if port is None else port,
                  pstr, **options)
