"""Every order on a PRIMARY, with and without secondaries attached."""

from . import scenario
from ._setup import primary, secondary, statuses, subscribe_all


@scenario(nodes=2)
def primary_beprimary_same(w):
    """beprimary again with the same id, a secondary attached."""
    subscribe_all(w)
    primary(w)
    secondary(w, "n2")
    w.beprimary("n1", "n1")
    statuses(w)


@scenario(nodes=3)
def primary_beprimary_rename(w):
    """beprimary with a new id: ConfD answers ok but keeps the old name."""
    subscribe_all(w)
    primary(w)
    secondary(w, "n2")
    w.beprimary("n1", "n1new")
    statuses(w)
    w.besecondary("n3", "n3", "n1new", "n1")
    w.besecondary("n3", "n3", "n1", "n1")
    statuses(w)


@scenario(nodes=3)
def primary_benone(w):
    """benone on a primary with two secondaries."""
    subscribe_all(w)
    primary(w)
    secondary(w, "n2")
    secondary(w, "n3")
    w.benone("n1")
    statuses(w)


@scenario(nodes=3)
def primary_berelay(w):
    """berelay on a primary."""
    subscribe_all(w)
    primary(w)
    secondary(w, "n2")
    w.berelay("n1")
    statuses(w)


@scenario(nodes=3)
def primary_besecondary(w):
    """besecondary on a primary with a secondary attached, towards another primary."""
    subscribe_all(w)
    primary(w)
    secondary(w, "n2")
    primary(w, "n3")
    w.besecondary("n1", "n1", "n3", "n3")
    statuses(w)


@scenario(nodes=3)
def primary_besecondary_fails(w):
    """besecondary on a primary towards a node that is not listening."""
    subscribe_all(w)
    primary(w)
    secondary(w, "n2")
    w.besecondary("n1", "n1", "n3", "n3")
    statuses(w)


@scenario(nodes=3)
def primary_secondary_dead(w):
    """secondary_dead for an attached secondary, then for an unknown id."""
    subscribe_all(w)
    primary(w)
    secondary(w, "n2")
    secondary(w, "n3")
    w.secondary_dead("n1", "n2")
    statuses(w)
    w.secondary_dead("n1", "nobody")
    statuses(w)


@scenario(nodes=3)
def primary_status_order(w):
    """A primary lists its secondaries: the order after joins and rejoins."""
    subscribe_all(w)
    primary(w)
    secondary(w, "n2")
    secondary(w, "n3")
    w.status("n1")
    w.benone("n2")
    secondary(w, "n2")
    w.status("n1")
