"""Every order on a node in state NONE."""

from . import scenario
from ._setup import primary, statuses, subscribe_all


@scenario(nodes=1)
def none_beprimary(w):
    """beprimary from NONE."""
    subscribe_all(w)
    w.status("n1")
    w.beprimary("n1", "n1")
    w.status("n1")


@scenario(nodes=1)
def none_benone(w):
    """benone on a node that is already NONE, twice."""
    subscribe_all(w)
    w.benone("n1")
    w.benone("n1")
    w.status("n1")


@scenario(nodes=1)
def none_berelay(w):
    """berelay on a NONE node."""
    subscribe_all(w)
    w.berelay("n1")
    w.status("n1")


@scenario(nodes=2)
def none_secondary_dead(w):
    """secondary_dead on a NONE node, with an unknown id and with a live node's id."""
    subscribe_all(w)
    w.secondary_dead("n1", "n2")
    w.secondary_dead("n1", "nobody")
    statuses(w)


@scenario(nodes=2)
def none_besecondary_sync(w):
    """besecondary (synchronous) from NONE to a primary."""
    subscribe_all(w)
    primary(w)
    w.besecondary("n2", "n2", "n1", "n1")
    statuses(w)


@scenario(nodes=2)
def none_besecondary_async(w):
    """besecondary (asynchronous) from NONE to a primary."""
    subscribe_all(w)
    primary(w)
    w.besecondary("n2", "n2", "n1", "n1", wait=False)
    statuses(w)
