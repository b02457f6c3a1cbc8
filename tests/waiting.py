"""Waiting on a condition instead of sleeping for a guessed time: the tests' one poll loop
(and its asyncio twin), and a wait for a socket's peer to have closed (or reset) its end."""

from __future__ import annotations

import asyncio
import inspect
import select
import socket
import time
from typing import Any, Callable, TypeVar

T = TypeVar("T")

TIMEOUT = 5.0       # seconds: the default bound on every wait


def wait_until(predicate: Callable[[], T], timeout: float = TIMEOUT,
               interval: float = 0.02) -> T:
    """Poll ``predicate`` until it returns a true value, and return that value; fail the test
    after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError("condition not met within %.1f s" % timeout)
        time.sleep(interval)


def wait_readable(sock: socket.socket, timeout: float = TIMEOUT) -> None:
    """Until ``sock`` has something to read -- data, or the FIN or RST of a peer that went
    away -- without reading it; fail the test after ``timeout`` seconds."""
    readable, _, _ = select.select([sock], [], [], timeout)
    if not readable:
        raise AssertionError("socket not readable within %.1f s" % timeout)


async def wait_until_async(predicate: Callable[[], Any], timeout: float = TIMEOUT,
                           interval: float = 0.02) -> Any:
    """``wait_until`` inside a running event loop: ``predicate`` may be a plain function or a
    coroutine function; the loop keeps running between the polls."""
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError("condition not met within %.1f s" % timeout)
        await asyncio.sleep(interval)
