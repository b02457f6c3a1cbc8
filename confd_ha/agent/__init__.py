"""``confd-ha agent``: a Patroni-like HA framework for ConfD/NSO nodes on etcd
(docs/agent.md).

Public names::

    from confd_ha.agent import Agent, AgentConfig, load_config
    from confd_ha.agent import cluster_view, switchover, failover, pause, resume

:class:`AgentConfig`, :func:`load_config` and :class:`ConfigError` need only the standard
library (and ``tomli`` on Python < 3.11 to read a file); the other names need the agent's
dependencies (``pip install 'confd-ha[agent]'``: httpx) and are imported when first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .config import AgentConfig, ConfigError, load_config

if TYPE_CHECKING:  # pragma: no cover
    from .core import Agent, AgentError
    from .ops import (NoLeader, NoSuchMember, NotInSync, OpsError, OpsTimeout, cluster_view,
                      failover, pause, resume, switchover)

_LAZY = {
    "Agent": "core", "AgentError": "core",
    "cluster_view": "ops", "switchover": "ops", "failover": "ops", "pause": "ops",
    "resume": "ops", "OpsError": "ops", "NoSuchMember": "ops", "NotInSync": "ops",
    "NoLeader": "ops", "OpsTimeout": "ops",
}

__all__ = ["AgentConfig", "ConfigError", "load_config", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError("module %r has no attribute %r" % (__name__, name))
    value = getattr(importlib.import_module("." + module, __name__), name)
    globals()[name] = value
    return value
