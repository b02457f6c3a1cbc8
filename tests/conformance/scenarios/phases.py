"""Orders in start phase 0 and after the phases advance."""

from . import scenario
from ._setup import statuses, subscribe_all


@scenario(nodes=2, phase0=True)
def phase0_orders(w):
    """Every order on a node in start phase 0."""
    subscribe_all(w)
    w.status("n1")
    w.beprimary("n1", "n1")
    w.besecondary("n1", "n1", "n2", "n2")
    w.besecondary("n1", "n1", "n2", "n2", wait=False)
    w.benone("n1")
    w.berelay("n1")
    w.secondary_dead("n1", "n2")
    w.status("n1")


@scenario(nodes=2, phase0=True)
def phase1_orders(w):
    """beprimary and a join in start phase 1, then in phase 2."""
    subscribe_all(w)
    w.start_phase("n1", 1)
    w.start_phase("n2", 1)
    w.beprimary("n1", "n1")
    w.besecondary("n2", "n2", "n1", "n1")
    statuses(w)
    w.start_phase("n1", 2)
    w.start_phase("n2", 2)
    statuses(w)
