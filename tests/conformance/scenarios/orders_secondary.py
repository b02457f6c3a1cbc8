"""Every order on a SECONDARY."""

from . import scenario
from ._setup import primary, secondary, statuses, subscribe_all


@scenario(nodes=3)
def secondary_beprimary(w):
    """beprimary on a secondary: it leaves its primary."""
    subscribe_all(w)
    primary(w)
    secondary(w, "n2")
    secondary(w, "n3")
    w.beprimary("n2", "n2")
    statuses(w)


@scenario(nodes=2)
def secondary_besecondary_same(w):
    """besecondary again with the same parameters, synchronous then asynchronous."""
    subscribe_all(w)
    primary(w)
    secondary(w, "n2")
    w.besecondary("n2", "n2", "n1", "n1")
    w.besecondary("n2", "n2", "n1", "n1", wait=False)
    statuses(w)


@scenario(nodes=3)
def secondary_besecondary_other(w):
    """besecondary towards another primary (re-pointing)."""
    subscribe_all(w)
    primary(w)
    primary(w, "n3")
    secondary(w, "n2")
    w.besecondary("n2", "n2", "n3", "n3")
    statuses(w)


@scenario(nodes=3)
def secondary_besecondary_other_async(w):
    """Asynchronous besecondary towards another primary (re-pointing)."""
    subscribe_all(w)
    primary(w)
    primary(w, "n3")
    secondary(w, "n2")
    w.besecondary("n2", "n2", "n3", "n3", wait=False)
    statuses(w)


@scenario(nodes=2)
def secondary_besecondary_rename(w):
    """besecondary to the same primary under a new own id."""
    subscribe_all(w)
    primary(w)
    secondary(w, "n2")
    w.besecondary("n2", "n2b", "n1", "n1")
    statuses(w)


@scenario(nodes=3)
def secondary_besecondary_fails(w):
    """besecondary on a secondary towards a node that is not listening."""
    subscribe_all(w)
    primary(w)
    secondary(w, "n2")
    w.besecondary("n2", "n2", "n3", "n3")
    statuses(w)
    w.besecondary("n2", "n2", "n3", "n3", wait=False)
    statuses(w)


@scenario(nodes=2)
def secondary_benone(w):
    """benone on a secondary."""
    subscribe_all(w)
    primary(w)
    secondary(w, "n2")
    w.benone("n2")
    statuses(w)


@scenario(nodes=2)
def secondary_berelay(w):
    """berelay on a secondary, twice."""
    subscribe_all(w)
    primary(w)
    secondary(w, "n2")
    w.berelay("n2")
    w.berelay("n2")
    statuses(w)


@scenario(nodes=3)
def secondary_secondary_dead(w):
    """secondary_dead on a secondary, naming its primary and a fellow secondary."""
    subscribe_all(w)
    primary(w)
    secondary(w, "n2")
    secondary(w, "n3")
    w.secondary_dead("n2", "n1")
    w.secondary_dead("n2", "n3")
    statuses(w)
