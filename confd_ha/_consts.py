"""The HA states and HA event types, the tick rule and what an integer term is -- each
defined once, for the client, the emulator, the CLI, the agent and the demos.

:class:`State` and :class:`HaInfo` are ``IntEnum``: their members are equal to the numbers
the daemon sends and users compare against (``confd_ha.STATE_*`` and
``confd_ha.events.HA_INFO_*`` are these members). Every spelling of a state or an event that
the package prints is derived from a member here:

- ``member.name`` (``SECONDARY_RELAY``): the emulator's log, event names in the agent's log and
  in the demos' narration;
- ``member.text`` (``secondary-relay``): the CLI's output, the agent's member records and
  health answers, states in the demos' narration.

The ``*_text``/``*_name`` functions accept any int (a daemon may send a number this
package does not know) and fall back as their callers document.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:   # typing.TypeGuard is Python 3.10+; annotations only
    from typing_extensions import TypeGuard

__all__ = ["State", "HaInfo", "UNKNOWN", "state_text", "event_text", "event_name",
           "TICKS_TO_DEATH", "is_int"]

UNKNOWN = "unknown"
"""The text of a state that is not a :class:`State` (or not known at all)."""

TICKS_TO_DEATH = 3
"""A peer silent for more than this many tick timeouts is dead (``ERR_HA_NOTICK``); the
same bound limits how long a join may wait for its primary."""


class _Named(enum.IntEnum):
    # Printed as the number, as Python 3.11's IntEnum does, on every supported Python: text
    # that shows a state or an event type reads the same as with a plain int.
    def __str__(self) -> str:
        return int.__repr__(self)

    def __format__(self, spec: str) -> str:
        return int.__format__(self, spec)

    @property
    def text(self) -> str:
        """The lower-case, dash-separated spelling (``SECONDARY_RELAY`` →
        ``secondary-relay``)."""
        return self.name.lower().replace("_", "-")


class State(_Named):
    """A node's HA state, as ``status()`` reports it."""

    NONE = 1
    SECONDARY = 2
    PRIMARY = 3
    SECONDARY_RELAY = 4


class HaInfo(_Named):
    """The type of an HA event (``hnot['type']`` of a notification)."""

    NOPRIMARY = 1
    SECONDARY_DIED = 2
    SECONDARY_ARRIVED = 3
    SECONDARY_INITIALIZED = 4
    IS_PRIMARY = 5
    IS_NONE = 6
    BESECONDARY_RESULT = 7


def _member(cls: type[_Named], value: object) -> Optional[_Named]:
    if not is_int(value):
        return None
    try:
        return cls(value)
    except ValueError:
        return None


def state_text(state: object, default: str = UNKNOWN) -> str:
    """``State(state).text``, or ``default`` for a number that is no state."""
    member = _member(State, state)
    return default if member is None else member.text


def event_text(ha_type: object) -> Optional[str]:
    """``HaInfo(ha_type).text``, or None for an event type this package does not know."""
    member = _member(HaInfo, ha_type)
    return None if member is None else member.text


def event_name(ha_type: object) -> Optional[str]:
    """``HaInfo(ha_type).name``, or None for an event type this package does not know."""
    member = _member(HaInfo, ha_type)
    return None if member is None else member.name


def is_int(x: object) -> TypeGuard[int]:
    """Whether ``x`` is an integer term: an ``int`` that is not a ``bool`` (True/False are
    the atoms ``true``/``false``)."""
    return isinstance(x, int) and not isinstance(x, bool)
