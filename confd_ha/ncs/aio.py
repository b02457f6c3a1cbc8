"""The asyncio API (:mod:`confd_ha.aio`) of the NSO flavour: :func:`connect` and
:func:`notifications_connect` go to ``confd_ha.ncs.ADDR``:``confd_ha.ncs.PORT`` (NSO's IPC
port) when ``ip``/``port`` are left out."""

from __future__ import annotations

from typing import Optional

from confd_ha import _settings, aio as _aio
from confd_ha._args import PathArg, Token
from confd_ha.aio import Connection as Connection, EventStream as EventStream

__all__ = list(_aio.__all__)


async def connect(token: Token, ip: Optional[str] = None, port: Optional[int] = None,
                  path: Optional[PathArg] = None, *, timeout: Optional[float] = None,
                  **options: int) -> Connection:
    """:func:`confd_ha.aio.connect` with NSO's defaults."""
    return await _aio._connect(_settings.NSO, token, ip, port, path, timeout, options)


async def notifications_connect(mask: int, ip: Optional[str] = None, port: Optional[int] = None,
                                path: Optional[PathArg] = None, *,
                                timeout: Optional[float] = None,
                                **options: int) -> EventStream:
    """:func:`confd_ha.aio.notifications_connect` with NSO's defaults."""
    return await _aio._notifications_connect(_settings.NSO, mask, ip, port, path, timeout,
                                             options)
