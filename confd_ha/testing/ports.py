"""Free TCP ports and loopback addresses for emulated nodes: :class:`PortReservation` holds
one port on several addresses until the nodes listen there."""

from __future__ import annotations

import errno
import ipaddress
import random
import socket
from typing import Iterable, Iterator, List, Optional, Tuple

__all__ = ["PortReservation", "free_port", "loopback_addresses"]


def _ephemeral_range() -> Tuple[int, int]:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
        return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


class PortReservation:
    """One TCP port held on several addresses until :meth:`close`.

    Each address gets a socket bound to the port (exclusively, so two reservations never
    share a port) and then marked ``SO_REUSEADDR`` without listening. Linux then refuses the
    port to every other bind on those addresses -- and to the kernel's choice of source ports
    -- but still lets an emulated node, which listens with ``SO_REUSEADDR``, bind it (B-12:
    the HA listener is bound only when the node becomes primary or relay). The port is
    chosen below the ephemeral range when possible, so no outgoing connection holds it.
    """

    def __init__(self, addresses: Iterable[str], port: Optional[int] = None,
                 attempts: int = 200) -> None:
        addrs = [str(ipaddress.ip_address(a)) for a in addresses]
        if not addrs:
            raise ValueError("PortReservation needs at least one address")
        self.addresses: List[str] = []
        self._socks: List[socket.socket] = []
        self.port = 0
        candidates = [port] if port else self._candidates(attempts)
        last: Optional[OSError] = None
        for cand in candidates:
            socks: List[socket.socket] = []
            try:
                for a in addrs:
                    socks.append(_reserve(a, cand))
            except OSError as exc:
                last = exc
                for s in socks:
                    s.close()
                continue
            self.port, self._socks, self.addresses = socks[0].getsockname()[1], socks, addrs
            return
        raise OSError(errno.EADDRINUSE, "no TCP port free on all of %s (last error: %s)"
                      % (", ".join(addrs), last))

    @staticmethod
    def _candidates(attempts: int) -> Iterator[int]:
        lo, _ = _ephemeral_range()
        rng = random.SystemRandom()
        for i in range(attempts):
            if lo > 11000 and i < attempts // 2:
                yield rng.randrange(10000, lo)
            else:
                yield 0  # the kernel's choice (first address), then checked on the others

    def add(self, address: str) -> None:
        """Hold the port on one more address (``OSError`` if it is taken there)."""
        address = str(ipaddress.ip_address(address))
        if address in self.addresses:
            return
        self._socks.append(_reserve(address, self.port))
        self.addresses.append(address)

    def close(self) -> None:
        socks, self._socks = self._socks, []
        for s in socks:
            s.close()

    def __enter__(self) -> "PortReservation":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _reserve(address: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    try:
        s.bind((address, port))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    except BaseException:
        s.close()
        raise
    return s


def free_port(address: str = "127.0.0.1") -> int:
    """A TCP port free on ``address`` right now (not held: prefer :class:`PortReservation`)."""
    with PortReservation([address]) as r:
        return r.port


def loopback_addresses(n: int, base: int = 1, prefix: str = "127.0.0.") -> List[str]:
    """``n`` addresses ``prefix+(base) … prefix+(base+n-1)`` (on Linux 127.0.0.0/8 needs no
    configuration)."""
    if not 1 <= base or base + n - 1 > 254:
        raise ValueError("addresses %s%d..%s%d are out of range" % (prefix, base, prefix, base + n - 1))
    return ["%s%d" % (prefix, base + i) for i in range(n)]
