"""The client's settings: one object per flavour for the connect defaults, one client-wide.

- :data:`CONFD` and :data:`NSO` are the defaults of the two flavours (``confd_ha`` /
  ``confd_ha.ncs``): where a connect goes when ``ip``/``port`` are left out. They are read
  from the flavour's environment variables when the flavour's module is (re)loaded, and the
  module's public ``ADDR``/``PORT`` are views of them (writable, as the module constants
  were), so the flavour's own ``events`` and ``aio`` functions, which are handed the same
  object, see a change.
- :data:`SETTINGS` holds what :func:`confd_ha.configure` changes; ``confd_ha.LIB_PROTO_VSN``
  and ``LIB_VSN`` read it.
"""

from __future__ import annotations

import os
import types
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

from . import _protocol

ACCESS_FILE_VARS = ("CONFD_IPC_ACCESS_FILE", "NCS_IPC_ACCESS_FILE")
"""The variables naming the IPC access file, read in this order (W-10)."""
TOKEN_ENV = "CONFD_HA_TOKEN"
"""The variable that may hold the HA token for the CLI and the agent."""

CONFD_PORT = 4565
NCS_PORT = 4569
DEFAULT_ADDR = "127.0.0.1"


@dataclass
class Defaults:
    """Where a connect of one flavour goes by default."""

    product: str       # "ConfD" or "NSO"
    addr_var: str      # the environment variables that set addr and port
    port_var: str
    default_port: int
    addr: str = DEFAULT_ADDR
    port: int = 0

    def __post_init__(self) -> None:
        self.read_env()

    def read_env(self) -> None:
        """Set ``addr``/``port`` from the environment (unset, empty or, for the port, not a
        number: the built-in default)."""
        self.addr = os.environ.get(self.addr_var) or DEFAULT_ADDR
        try:
            self.port = int(os.environ.get(self.port_var) or self.default_port)
        except ValueError:
            self.port = self.default_port


CONFD = Defaults("ConfD", "CONFD_IPC_ADDR", "CONFD_IPC_PORT", CONFD_PORT)
NSO = Defaults("NSO", "NCS_IPC_ADDR", "NCS_IPC_PORT", NCS_PORT)
FLAVOURS = {"confd": CONFD, "nso": NSO}
"""The flavours by the name the CLI and the agent's configuration use."""


@dataclass
class ClientSettings:
    """Client-wide settings; change them with :func:`confd_ha.configure`."""

    proto_vsn: int = _protocol.DEFAULT_PROTO_VSN
    lib_vsn: int = _protocol.DEFAULT_LIB_VSN
    access_version: int = _protocol.ACCESS_V2   # W-11: v1 only when asked for
    max_reply: int = _protocol.MAX_FRAME

    def configure(self, **changes: Optional[int]) -> None:
        """Check and set the values given (None: unchanged), in order; see
        :func:`confd_ha.configure`."""
        for name, value in changes.items():
            if value is not None:
                setattr(self, name, check(name, value))


def check(name: str, value: int) -> int:
    """``value`` if the setting ``name`` accepts it, else ValueError with the reason."""
    valid, text = _VALID[name]
    if not valid(value):
        raise ValueError(text)
    return value


# What configure() accepts for each setting, and the message when it does not.
_VALID: Dict[str, Tuple[Callable[[int], bool], str]] = {
    "proto_vsn": (lambda v: 0 <= v <= 0xFFFF, "proto_vsn must be 0..65535"),
    "lib_vsn": (lambda v: 0 <= v <= 0xFFFFFFFF, "lib_vsn must be a 32-bit value"),
    "access_version": (lambda v: v in (_protocol.ACCESS_V1, _protocol.ACCESS_V2),
                       "access_version must be 1 or 2"),
    "max_reply": (lambda v: 64 <= v <= 0xFFFFFFFF, "max_reply must be 64 bytes .. 4 GiB - 1"),
}


SETTINGS = ClientSettings()


def _defaults_view(field: str) -> property:
    """A module property for the field of the module's ``_DEFAULTS``."""
    def get(module: "FlavourModule") -> object:
        return getattr(module._DEFAULTS, field)

    def put(module: "FlavourModule", value: object) -> None:
        setattr(module._DEFAULTS, field, value)
    return property(get, put)


def _settings_view(field: str) -> property:
    """A module property for the field of :data:`SETTINGS`; assigning it configures it."""
    def get(module: "FlavourModule") -> object:
        return getattr(SETTINGS, field)

    def put(module: "FlavourModule", value: int) -> None:
        SETTINGS.configure(**{field: value})
    return property(get, put)


class FlavourModule(types.ModuleType):
    """The class of a flavour's front module (``confd_ha``, ``confd_ha.ncs``): ``ADDR`` and
    ``PORT`` read and write the module's ``_DEFAULTS``, ``LIB_PROTO_VSN`` and ``LIB_VSN``
    read :data:`SETTINGS` and, assigned, :meth:`ClientSettings.configure` it. (The modules
    declare the four names with their types for type checkers.)"""

    _DEFAULTS: Defaults

    ADDR = _defaults_view("addr")
    PORT = _defaults_view("port")
    LIB_PROTO_VSN = _settings_view("proto_vsn")
    LIB_VSN = _settings_view("lib_vsn")

    def __dir__(self) -> List[str]:
        return sorted(set(super().__dir__()) | {"ADDR", "PORT", "LIB_PROTO_VSN", "LIB_VSN"})
