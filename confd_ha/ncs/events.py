"""HA event notifications of the NSO flavour, for code written against ``_ncs.events``.

The same as :mod:`confd_ha.events`, except that :func:`notifications_connect` goes to
``confd_ha.ncs.ADDR``:``confd_ha.ncs.PORT`` (NSO's IPC port) when ``ip``/``port`` are left out.
"""

from __future__ import annotations

import socket as _socket
from typing import Optional as _Optional

from confd_ha import _settings, events as _events
from confd_ha._args import PathArg as _PathArg
from confd_ha.events import *  # noqa: F401,F403 -- the whole events API, re-exported
from confd_ha.events import notification_dict as notification_dict

__all__ = list(_events.__all__)


def notifications_connect(  # type: ignore[no-redef]  # replaces the star-imported one
        sock: _socket.socket, mask: int, ip: _Optional[str] = None,
        port: _Optional[int] = None, path: _Optional[_PathArg] = None,
        **options: int) -> None:
    """:func:`confd_ha.events.notifications_connect` with NSO's defaults."""
    _events._connect(_settings.NSO, sock, mask, ip, port, path, options)
