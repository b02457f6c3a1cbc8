"""Every order on a relay (SECONDARY_RELAY), and relay chains."""

from . import scenario
from ._setup import primary, relay, relay_tree, secondary, statuses, subscribe_all


@scenario(nodes=3)
def relay_chain(w):
    """A primary, a relay and a secondary behind the relay: who lists and announces whom."""
    relay_tree(w)
    statuses(w)


@scenario(nodes=3)
def relay_beprimary(w):
    """beprimary on a relay with a secondary behind it."""
    relay_tree(w)
    w.beprimary("n2", "n2")
    statuses(w)


@scenario(nodes=3)
def relay_besecondary_same(w):
    """besecondary with the original parameters on a relay: it stops relaying."""
    relay_tree(w)
    w.besecondary("n2", "n2", "n1", "n1")
    statuses(w)


@scenario(nodes=4)
def relay_besecondary_other(w):
    """besecondary towards another primary on a relay with a secondary behind it."""
    subscribe_all(w)
    primary(w)
    primary(w, "n4")
    relay(w, "n2")
    w.besecondary("n3", "n3", "n2", "n2")
    w.besecondary("n2", "n2", "n4", "n4")
    statuses(w)


@scenario(nodes=3)
def relay_benone(w):
    """benone on a relay with a secondary behind it."""
    relay_tree(w)
    w.benone("n2")
    statuses(w)


@scenario(nodes=3)
def relay_secondary_dead(w):
    """secondary_dead on a relay naming the secondary behind it, and on the primary naming
    that secondary."""
    relay_tree(w)
    w.secondary_dead("n2", "n3")
    w.secondary_dead("n1", "n3")
    statuses(w)


@scenario(nodes=4)
def relay_chain_two_levels(w):
    """A relay behind a relay: primary n1, relay n2, relay n3 behind n2, secondary n4 behind
    n3."""
    relay_tree(w)
    w.berelay("n3")
    w.besecondary("n4", "n4", "n3", "n3")
    statuses(w)


@scenario(nodes=4)
def relay_secondary_dead_order(w):
    """secondary_dead on the primary for a node behind a relay: the primary's list after it."""
    relay_tree(w)
    w.besecondary("n4", "n4", "n1", "n1")
    w.status("n1")
    w.secondary_dead("n1", "n3")
    statuses(w)


@scenario(nodes=3)
def relay_cut_by_secondary_dead(w):
    """secondary_dead on the primary naming a relay that has a secondary behind it."""
    relay_tree(w)
    w.secondary_dead("n1", "n2")
    statuses(w)


@scenario(nodes=4)
def relay_benone_two_behind(w):
    """benone on a relay with two secondaries behind it: the order of the primary's
    SECONDARY_DIED events."""
    relay_tree(w)
    w.besecondary("n4", "n4", "n2", "n2")
    w.status("n1")
    w.benone("n2")
    statuses(w)


@scenario(nodes=4)
def relay_behind_relay_leaves(w):
    """A relay behind a relay leaves: what the primary and the first relay list."""
    relay_tree(w)
    w.berelay("n3")
    w.besecondary("n4", "n4", "n3", "n3")
    w.benone("n3")
    statuses(w)


@scenario(nodes=4)
def relay_duplicate_id(w):
    """A secondary joining a relay with the id of a node elsewhere in the cluster."""
    subscribe_all(w)
    primary(w)
    relay(w, "n2")
    secondary(w, "n4")
    w.besecondary("n3", "n1", "n2", "n2")
    w.besecondary("n3", "n2", "n2", "n2")
    w.besecondary("n3", "n4", "n2", "n2")
    statuses(w)
