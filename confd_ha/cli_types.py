"""The value checks of the ``confd-ha`` command line: the ``type=`` functions of its options.

Each takes the option's text and returns the value, or raises
:class:`argparse.ArgumentTypeError` with the one-line reason that the parser
(:mod:`confd_ha.cli_parser`) turns into a usage error (exit 2).
"""

from __future__ import annotations

import argparse
import os
import re
import socket
from typing import Callable, TypeVar


def bad(text: str) -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(text)


def shown(value: str) -> str:
    """``value`` quoted for a message, with anything unprintable escaped."""
    from .cli_output import escape

    return "'%s'" % escape(value)


def utf8(value: str) -> str:
    """Command-line text that must be UTF-8 (argv bytes that are not arrive as surrogates)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise bad("%s is not valid UTF-8" % shown(value)) from None
    return value


def node_id(value: str) -> str:
    """A node id: UTF-8 text, not empty (an unset shell variable must not become an id)."""
    utf8(value)
    if not value:
        raise bad("a node id must not be empty")
    return value


def ip_address(value: str) -> str:
    """An IPv4 or IPv6 literal (ConfD's API looks no names up)."""
    utf8(value)
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, value)
            return value
        except (OSError, ValueError):
            pass
    if value.startswith("[") and value.endswith("]"):
        hint = "write IPv6 addresses without brackets: %s" % value[1:-1]
    elif re.fullmatch(r"[0-9.]+", value):
        hint = "an IPv4 address is four numbers 0-255"
    else:
        hint = "host names are not looked up: give an IPv4 or IPv6 address"
    raise bad("%s is not an IP address (%s)" % (shown(value), hint))


_N = TypeVar("_N", int, float)


def in_range(value: str, parse: Callable[[str], _N], lo: _N, hi: _N, text: str,
              above: bool = False) -> _N:
    """``value`` read by ``parse``, from ``lo`` (``above``: more than ``lo``) to ``hi``;
    anything else (not a number, NaN, infinite, out of range) fails with ``text``, whose
    ``%s`` is the value."""
    try:
        number = parse(value)
    except ValueError:
        raise bad(text % shown(value)) from None
    if not (lo < number <= hi if above else lo <= number <= hi):
        raise bad(text % shown(value))
    return number


def decimal(value: str) -> int:
    """A whole number written in decimal (``parse`` for :func:`in_range`)."""
    return int(value, 10)


def port(value: str) -> int:
    """A TCP port to connect to: 1-65535."""
    return in_range(value, decimal, 1, 65535, "%s is not a port number (1-65535)")


def listen_port(value: str) -> int:
    """A TCP port to listen on: 0 (any free port) to 65535."""
    return in_range(value, decimal, 0, 65535,
                     "%s is not a port number (0-65535; 0 = any free port)")


def timeout(value: str) -> float:
    """Seconds to wait: 0 (forever) or a finite positive number up to a million."""
    return in_range(value, float, 0.0, 1e6,
                     "%s is not a number of seconds (0 to 1000000; 0 = wait forever)")


def tick(value: str) -> float:
    return in_range(value, float, 0.0, 60.0,
                     "%s is not a tick timeout (more than 0, at most 60 seconds)", above=True)


def address_prefix(value: str) -> str:
    """A prefix that, followed by 1, 2, 3, … gives IP addresses (``127.0.0.``)."""
    utf8(value)
    for n in (1, 254):
        try:
            ip_address(value + str(n))
        except argparse.ArgumentTypeError:
            raise bad("%s is not an address prefix: %s followed by a number must be an IP "
                       "address (e.g. 127.0.5.)" % (shown(value), shown(value))) from None
    return value


def phase(value: str) -> int:
    return in_range(value, decimal, 0, 2, "%s is not a start phase (0-2)")


def path(value: str) -> str:
    """An AF_UNIX socket path (at most 107 bytes)."""
    if not value:
        raise bad("the path is empty")
    if len(os.fsencode(value)) > 107:
        raise bad("%s is too long for a socket path (107 bytes at most)" % shown(value))
    return value


def file_name(value: str) -> str:
    if not value:
        raise bad("the file name is empty")
    return value
