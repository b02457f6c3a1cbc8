"""Addresses as the IPC protocol carries them, without I/O (W-22, W-23).

IP literals to the packed form an order carries, and the address terms of status replies,
orders and events to their families and text. Anything that is not an address raises
:class:`confd_ha.error.Error` (``ERR_PROTOUSAGE``).
"""

from __future__ import annotations

import socket
from typing import Optional, Tuple

from . import error
from ._core import ffi, lib
from ._terms import Term

AF_STRING = lib.CHD_AF_STRING
AF_INET = lib.CHD_AF_INET
AF_INET6 = lib.CHD_AF_INET6


def parse_ip(text: str) -> Optional[Tuple[int, bytes]]:
    """(AF_INET | AF_INET6, packed bytes) of an IP literal, IPv4 tried first; None if not."""
    for fam, af in ((socket.AF_INET, AF_INET), (socket.AF_INET6, AF_INET6)):
        try:
            return af, socket.inet_pton(fam, text)
        except (OSError, ValueError):
            continue
    return None


def address_text(addr: Term) -> str:
    """Text of an address term (W-22, W-23); anything else → ``ERR_PROTOUSAGE``."""
    kind, text = address_parts(addr)
    return text


def address_parts(addr: Term) -> Tuple[int, str]:
    """(AF_INET | AF_INET6 | AF_STRING, text) of an address term."""
    if isinstance(addr, tuple) and len(addr) == 4 and all(
            isinstance(x, int) and 0 <= x <= 255 for x in addr):
        return AF_INET, "%d.%d.%d.%d" % addr
    if isinstance(addr, tuple) and len(addr) == 8 and all(
            isinstance(x, int) and 0 <= x <= 0xFFFF for x in addr):
        return AF_INET6, ipv6_text(b"".join(x.to_bytes(2, "big") for x in addr))
    if isinstance(addr, bytes):
        return AF_STRING, addr.decode("utf-8", "replace")
    if isinstance(addr, list) and all(isinstance(x, int) and 0 <= x <= 255 for x in addr):
        return AF_STRING, bytes(addr).decode("utf-8", "replace")
    error.raise_error(error.ERR_PROTOUSAGE, "unexpected address in message from daemon")


def ipv6_text(packed: bytes) -> str:
    """IPv6 text as inet_ntop(AF_INET6) writes it, computed by the C core."""
    out = ffi.new("unsigned char[]", 64)
    n = ffi.new("size_t *")
    error.check(lib.chd_ipv6_text(packed, out, 64, n), "ipv6")
    return ffi.buffer(out, n[0])[:].decode("ascii")


def address_term(text: str) -> Tuple[int, ...]:
    """The address term for an IP literal (4-tuple or 8-tuple), as the emulator sends it."""
    parsed = parse_ip(text)
    if parsed is None:
        raise ValueError("not an IP address: %r" % (text,))
    af, raw = parsed
    if af == AF_INET:
        return tuple(raw)
    return tuple((raw[i] << 8) | raw[i + 1] for i in range(0, 16, 2))
