"""Configuration of one emulated node (docs/ha-behaviour.md B-01, B-31, B-28; the IPC deadlines,
version window and ``confd_quirks`` as observed on ConfD 8.2.5, docs/conformance-ipc.md).

A :class:`NodeConfig` is plain data; :class:`confd_ha.emulator.node.Node` reads it at start.
Fields left at ``None`` take the flavour's defaults when the object is created.
:func:`config_from_args` makes one from ``confd-ha emulate``'s options.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
from dataclasses import dataclass
from typing import Optional, Tuple

from .. import _protocol
from .._settings import CONFD_PORT, NCS_PORT
from .._consts import TICKS_TO_DEATH, is_int

FLAVOURS = {
    # flavour: (IPC port, HA port) -- B-01
    "confd": (CONFD_PORT, 4569),
    "nso": (NCS_PORT, 4570),
}
DEFAULT_TICK = 20.0


@dataclass
class NodeConfig:
    """Everything an emulated node is configured with.

    ``ipc_port`` 0 picks a free port (read the real one from ``Node.ipc_port``);
    ``ha_address`` defaults to ``ipc_address`` so that nodes co-hosted on 127.0.0.x get
    distinct HA and source addresses (B-12); ``tick_timeout`` 0 disables ticks and every
    timeout derived from them (B-20, B-16); ``data_dir`` None keeps the datastore in memory
    (it then survives ``restart()`` but not the process); ``ipc_access_file`` names the IPC
    access-check secret (None: check disabled); ``accepted_proto_vsns`` is an inclusive
    ``(lo, hi)`` range of client protocol versions (None: ``proto_vsn`` and the one before,
    as ConfD); ``bind_source`` False leaves the source address of outgoing joins to the
    kernel, as ConfD does.

    IPC deadlines (seconds, as ConfD 8.2.5): ``init_timeout`` for the whole hello including
    the access check, from the accept; ``token_timeout`` for an HA control socket's token
    frame and ``subscribe_timeout`` for an event socket's subscription, from the hello reply.
    ``confd_quirks`` also reproduces ConfD's robustness defects on the IPC port: hellos read
    one connection at a time, HA orders held while a new control socket's token is awaited,
    every event subscriber dropped when one sends a malformed subscription.

    ``join_timeout`` is how long a join may take at the least (ConfD 8.2.5: 10 s; the deadline
    is this or 3 tick timeouts, the longer, docs/conformance.md "Liveness and timings").
    """

    name: str = "node"
    flavour: str = "confd"
    ipc_address: str = "127.0.0.1"
    # These three are typed as they are once the object exists; None given to the constructor
    # means "the flavour's default", which __post_init__ puts in its place.
    ipc_port: int = None  # type: ignore[assignment]
    ipc_path: Optional[str] = None
    ha_address: str = None  # type: ignore[assignment]
    ha_port: int = None  # type: ignore[assignment]
    tick_timeout: float = DEFAULT_TICK
    data_dir: Optional[str] = None
    ipc_access_file: Optional[str] = None
    start_phase: int = 2
    accepted_proto_vsns: Optional[Tuple[int, int]] = None
    proto_vsn: int = _protocol.DEFAULT_PROTO_VSN
    vsn: int = _protocol.DEFAULT_LIB_VSN
    maxdepth: int = _protocol.SERVER_MAXDEPTH
    maxkeylen: int = _protocol.SERVER_MAXKEYLEN
    ha_vsn: int = _protocol.DEFAULT_LIB_VSN
    fxs_fp: bytes = b""
    ha_config_fp: bytes = b""
    init_timeout: float = 30.0
    token_timeout: float = 2.0
    subscribe_timeout: float = 5.0
    confd_quirks: bool = False
    max_frame: int = _protocol.MAX_FRAME
    event_write_block: float = 15.0
    bind_source: bool = True
    join_timeout: float = 10.0

    def __post_init__(self) -> None:
        if self.flavour not in FLAVOURS:
            raise ValueError("flavour must be 'confd' or 'nso', not %r" % (self.flavour,))
        ipc_default, ha_default = FLAVOURS[self.flavour]
        if self.ipc_port is None:
            self.ipc_port = ipc_default
        if self.ha_port is None:
            self.ha_port = ha_default
        if self.ha_address is None:
            self.ha_address = self.ipc_address
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("name must be a non-empty string")
        for field, value in (("ipc_address", self.ipc_address), ("ha_address", self.ha_address)):
            try:
                ipaddress.ip_address(value)
            except ValueError:
                raise ValueError("%s must be an IP address literal, not %r" % (field, value)) from None
        for field, port in (("ipc_port", self.ipc_port), ("ha_port", self.ha_port)):
            if not _int_within(port, 0, 65535):
                raise ValueError("%s must be an integer 0..65535" % field)
        if self.ha_port == 0:
            raise ValueError("ha_port must be a fixed port: secondaries connect to it (B-12)")
        self.tick_timeout = float(self.tick_timeout)
        if not self.tick_timeout >= 0:
            raise ValueError("tick_timeout must be >= 0")
        if self.start_phase not in (0, 2):
            raise ValueError("start_phase must be 0 or 2")
        if self.accepted_proto_vsns is not None:
            lo, hi = self.accepted_proto_vsns
            if not (_int_within(lo, 0, 0xFFFF) and _int_within(hi, lo, 0xFFFF)):
                raise ValueError("accepted_proto_vsns must be (lo, hi) with 0 <= lo <= hi <= 65535")
            self.accepted_proto_vsns = (lo, hi)
        for field, number, top in (("proto_vsn", self.proto_vsn, 0xFFFF), ("vsn", self.vsn, 0xFFFFFFFF),
                                   ("maxdepth", self.maxdepth, 255), ("maxkeylen", self.maxkeylen, 255),
                                   ("ha_vsn", self.ha_vsn, 0xFFFFFFFF)):
            if not _int_within(number, 0, top):
                raise ValueError("%s must be an integer 0..%d" % (field, top))
        for field in ("fxs_fp", "ha_config_fp"):
            value = getattr(self, field)
            if not isinstance(value, (bytes, bytearray)):
                raise ValueError("%s must be bytes" % field)
            setattr(self, field, bytes(value))
        for field in ("init_timeout", "token_timeout", "subscribe_timeout", "join_timeout"):
            if not getattr(self, field) > 0:
                raise ValueError("%s must be > 0" % field)
        self.confd_quirks = bool(self.confd_quirks)
        if not _int_within(self.max_frame, 64, 0xFFFFFFFF):
            raise ValueError("max_frame must be an integer of at least 64")
        if not self.event_write_block > 0:
            raise ValueError("event_write_block must be > 0")

    @property
    def proto_window(self) -> Tuple[int, int]:
        """The inclusive range of client protocol versions the node accepts."""
        if self.accepted_proto_vsns is not None:
            return self.accepted_proto_vsns
        return (max(self.proto_vsn - 1, 0), self.proto_vsn)

    @property
    def join_deadline(self) -> float:
        """Seconds a join may take: ``join_timeout`` or TICKS_TO_DEATH (3) tick timeouts,
        the longer."""
        return max(self.join_timeout, TICKS_TO_DEATH * self.tick_timeout)


def _int_within(value: object, lo: int, hi: int) -> bool:
    """``value`` is an int (not a bool) from ``lo`` to ``hi`` inclusive."""
    return is_int(value) and lo <= value <= hi


def config_from_args(args: argparse.Namespace) -> NodeConfig:
    """A :class:`NodeConfig` from ``confd-ha emulate`` options (defaults per
    B-01 and the flavour; ``--ha-address`` defaults to the IPC address)."""
    from ..cli_errors import usage

    fields = {"flavour": args.flavour,
              "ipc_address": args.ipc_address or "127.0.0.1",
              "start_phase": args.start_phase}
    fields["name"] = args.name or "%s@%s" % (args.flavour, fields["ipc_address"])
    for opt, field in (("ipc_port", "ipc_port"), ("ipc_path", "ipc_path"),
                       ("ha_address", "ha_address"), ("ha_port", "ha_port"),
                       ("tick_timeout", "tick_timeout"), ("data_dir", "data_dir"),
                       ("ipc_access_file", "ipc_access_file"), ("ha_vsn", "ha_vsn"),
                       ("proto_vsn", "proto_vsn"), ("vsn", "vsn")):
        value = getattr(args, opt, None)
        if value is not None:
            fields[field] = value
    if args.accept_proto_vsn is not None:
        try:
            lo, hi = (int(x, 0) for x in args.accept_proto_vsn.split(":"))
        except ValueError:
            raise usage("--accept-proto-vsn must be LO:HI (two integers)") from None
        fields["accepted_proto_vsns"] = (lo, hi)
    if getattr(args, "no_bind_source", False):
        fields["bind_source"] = False
    if getattr(args, "confd_quirks", False):
        fields["confd_quirks"] = True
    if args.fxs_fingerprint is not None:
        fields["fxs_fp"] = args.fxs_fingerprint.encode("utf-8")
    if args.ha_config_fingerprint is not None:
        fields["ha_config_fp"] = args.ha_config_fingerprint.encode("utf-8")
    if args.ipc_access_file is not None and not os.access(args.ipc_access_file, os.R_OK):
        raise usage("--ipc-access-file %s is not readable" % args.ipc_access_file)
    try:
        return NodeConfig(**fields)
    except (ValueError, TypeError) as exc:
        raise usage(str(exc)) from None
