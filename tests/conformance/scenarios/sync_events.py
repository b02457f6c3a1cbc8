"""HA_INFO_SYNC subscribers and their acknowledgements; several subscribers on one node."""

from . import scenario
from ._setup import primary, secondary, statuses


@scenario(nodes=2)
def sync_acknowledged(w):
    """An HA_INFO_SYNC subscriber that acknowledges every event at once."""
    w.subscribe("n1", sync=True)
    w.subscribe("n2", sync=True)
    primary(w)
    secondary(w, "n2")
    w.benone("n2")
    statuses(w)


@scenario(nodes=2)
def sync_unacknowledged_holds_status(w):
    """An event not yet acknowledged holds back status and the next order."""
    w.subscribe("n1", sync=True, auto_ack=False)
    w.beprimary("n1", "n1")
    w.status("n1", timed=True, timeout=3)
    w.ack("n1")
    w.status("n1")


@scenario(nodes=2)
def sync_unacknowledged_holds_orders(w):
    """Orders on a node with an unacknowledged sync event wait; a secondary's join to it
    waits too."""
    w.subscribe("n1", sync=True, auto_ack=False)
    w.subscribe("n2")
    w.beprimary("n1", "n1")
    w.besecondary("n2", "n2", "n1", "n1", wait=False)
    w.sleep(2)
    w.ack("n1")
    w.sleep(1)
    w.ack("n1")
    statuses(w)


@scenario(nodes=1)
def sync_subscriber_closes(w):
    """A sync subscriber that goes away without acknowledging."""
    w.subscribe("n1", sync=True, auto_ack=False, label="n1sync")
    w.beprimary("n1", "n1")
    w.close_subscriber("n1sync")
    w.status("n1", timed=True)


@scenario(nodes=1)
def sync_two_subscribers(w):
    """Two sync subscribers and a plain one: every one gets every event; both must
    acknowledge."""
    w.subscribe("n1", sync=True, auto_ack=False, label="n1a")
    w.subscribe("n1", sync=True, auto_ack=False, label="n1b")
    w.subscribe("n1", label="n1c")
    w.beprimary("n1", "n1")
    w.ack("n1a")
    w.status("n1", timed=True, timeout=3)
    w.ack("n1b")
    w.status("n1")
    w.benone("n1", timed=True, timeout=3)
    w.ack("n1a")
    w.ack("n1b")
    w.status("n1")


@scenario(nodes=1)
def sync_ack_unsolicited(w):
    """ha_synced sent with no event outstanding."""
    w.subscribe("n1", sync=True, auto_ack=False)
    w.ack("n1")
    w.beprimary("n1", "n1")
    w.status("n1", timed=True, timeout=3)
