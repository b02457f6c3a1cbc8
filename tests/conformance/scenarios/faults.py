"""kill -9, freeze (SIGSTOP) and restart of a primary, a secondary and a relay."""

from . import scenario
from ._setup import primary, relay, relay_tree, secondary, statuses, subscribe_all


@scenario(nodes=3)
def fault_kill_primary(w):
    """kill -9 of a primary with two secondaries."""
    subscribe_all(w, "n2", "n3")
    primary(w)
    secondary(w, "n2")
    secondary(w, "n3")
    w.kill("n1")
    w.wait(("n2", "NOPRIMARY"), ("n3", "NOPRIMARY"), within=5)
    statuses(w, "n2", "n3")


@scenario(nodes=2)
def fault_kill_secondary(w):
    """kill -9 of a secondary."""
    subscribe_all(w, "n1")
    primary(w)
    secondary(w, "n2")
    w.kill("n2")
    w.wait(("n1", "SECONDARY_DIED"), within=5)
    statuses(w, "n1")


@scenario(nodes=3)
def fault_freeze_primary(w):
    """SIGSTOP of a primary: the secondaries' NOTICK, and what the primary finds on SIGCONT."""
    subscribe_all(w)
    primary(w)
    secondary(w, "n2")
    secondary(w, "n3")
    w.freeze("n1", after=1.5)
    w.wait(("n3", "NOPRIMARY"), ("n2", "NOPRIMARY"), within=8)
    w.thaw("n1")
    w.sleep(1)
    statuses(w)


@scenario(nodes=2)
def fault_freeze_secondary(w):
    """SIGSTOP of a secondary: the primary's SECONDARY_DIED, and the secondary on SIGCONT."""
    subscribe_all(w)
    primary(w)
    secondary(w, "n2")
    w.freeze("n2", after=1.5)
    w.wait(("n1", "SECONDARY_DIED"), within=8)
    w.thaw("n2")
    w.sleep(1)
    statuses(w)


@scenario(nodes=2)
def fault_freeze_secondary_briefly(w):
    """A secondary frozen for one tick survives."""
    subscribe_all(w)
    primary(w)
    secondary(w, "n2")
    w.freeze("n2", after=1.5)
    w.sleep(1)
    w.thaw("n2")
    w.sleep(4)
    statuses(w)


@scenario(nodes=2)
def fault_restart_primary(w):
    """A primary killed and started again: it comes back NONE; the secondary re-joins."""
    subscribe_all(w, "n2")
    primary(w)
    secondary(w, "n2")
    w.restart("n1")
    w.subscribe("n1")
    statuses(w)
    primary(w)
    secondary(w, "n2")
    statuses(w)


@scenario(nodes=2)
def fault_restart_secondary(w):
    """A secondary killed and started again, then joining anew."""
    subscribe_all(w, "n1")
    primary(w)
    secondary(w, "n2")
    w.restart("n2")
    w.subscribe("n2")
    statuses(w)
    secondary(w, "n2")
    statuses(w)


@scenario(nodes=2)
def fault_stop_primary(w):
    """An orderly stop (SIGTERM) of a primary."""
    subscribe_all(w, "n2")
    primary(w)
    secondary(w, "n2")
    w.stop("n1")
    statuses(w, "n2")


@scenario(nodes=3)
def fault_kill_relay(w):
    """kill -9 of a relay with a secondary behind it."""
    relay_tree(w, "n1", "n3")
    w.kill("n2")
    w.wait(("n3", "NOPRIMARY"), within=5)
    statuses(w, "n1", "n3")


@scenario(nodes=3)
def fault_freeze_relay(w):
    """SIGSTOP of a relay with a secondary behind it."""
    relay_tree(w)
    w.freeze("n2", after=1.5)
    w.wait(("n3", "NOPRIMARY"), ("n1", "SECONDARY_DIED"), within=8)
    w.thaw("n2")
    w.sleep(1)
    statuses(w)


@scenario(nodes=3)
def fault_kill_primary_of_relay(w):
    """A relay losing its primary (kill -9): the relay and the secondary behind it."""
    relay_tree(w, "n2", "n3")
    w.kill("n1")
    w.wait(("n2", "NOPRIMARY"), ("n3", "NOPRIMARY"), within=5)
    statuses(w, "n2", "n3")


@scenario(nodes=3)
def fault_kill_secondary_behind_relay(w):
    """kill -9 of a secondary behind a relay: who reports it dead."""
    relay_tree(w, "n1", "n2")
    w.kill("n3")
    w.wait(("n1", "SECONDARY_DIED"), within=5)
    statuses(w, "n1", "n2")


@scenario(nodes=3)
def fault_restart_relay(w):
    """A relay killed and started again; the secondary behind it and the primary."""
    relay_tree(w, "n1", "n3")
    w.restart("n2")
    w.subscribe("n2")
    statuses(w)
    relay(w, "n2")
    w.besecondary("n3", "n3", "n2", "n2")
    statuses(w)


@scenario(nodes=3)
def fault_freeze_secondary_two(w):
    """Two secondaries frozen together; the primary's SECONDARY_DIED order and timing."""
    subscribe_all(w, "n1")
    primary(w)
    secondary(w, "n2")
    secondary(w, "n3")
    w.freeze("n2", after=1.4)
    w.freeze("n3")
    w.wait(("n1", "SECONDARY_DIED"), ("n1", "SECONDARY_DIED"), within=8)
    w.thaw("n2")
    w.thaw("n3")
    w.sleep(1)
    statuses(w)
