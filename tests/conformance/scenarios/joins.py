"""Every way a join (besecondary) can fail, synchronous and asynchronous."""

from . import scenario
from ._setup import primary, secondary, statuses, subscribe_all


@scenario(nodes=2)
def join_nothing_listens(w):
    """besecondary towards a node that is NONE (nothing listens on its HA port)."""
    subscribe_all(w)
    w.besecondary("n2", "n2", "n1", "n1")
    w.besecondary("n2", "n2", "n1", "n1", wait=False)
    statuses(w)


@scenario(nodes=3)
def join_to_a_secondary(w):
    """besecondary towards a plain secondary (not listening) and towards a relay under the
    primary's name."""
    subscribe_all(w)
    primary(w)
    secondary(w, "n2")
    w.besecondary("n3", "n3", "n2", "n2")
    w.berelay("n2")
    w.besecondary("n3", "n3", "n1", "n2")
    statuses(w)


@scenario(nodes=2)
def join_wrong_primary_name(w):
    """besecondary naming the wrong primary id, synchronous and asynchronous."""
    subscribe_all(w)
    primary(w)
    w.besecondary("n2", "n2", "nX", "n1")
    w.besecondary("n2", "n2", "nX", "n1", wait=False)
    statuses(w)


@scenario(nodes=2)
def join_wrong_token(w):
    """The joining node's control socket was opened with another token."""
    subscribe_all(w)
    primary(w)
    w.connect("n2", token="other")
    w.besecondary("n2", "n2", "n1", "n1")
    w.besecondary("n2", "n2", "n1", "n1", wait=False)
    statuses(w)
    w.connect("n2", token="tok")
    w.besecondary("n2", "n2", "n1", "n1")
    statuses(w)


@scenario(nodes=2)
def join_token_changed_on_primary(w):
    """A new control connection with another token on the primary: later joins see it."""
    subscribe_all(w)
    primary(w)
    secondary(w, "n2")
    w.connect("n1", token="other")
    w.status("n1")
    w.benone("n2")
    w.besecondary("n2", "n2", "n1", "n1")
    statuses(w)


@scenario(nodes=3)
def join_duplicate_id(w):
    """A second secondary with an id already connected, and one with the primary's id."""
    subscribe_all(w)
    primary(w)
    secondary(w, "n2")
    w.besecondary("n3", "n2", "n1", "n1")
    w.besecondary("n3", "n1", "n1", "n1")
    w.besecondary("n3", "n2", "n1", "n1", wait=False)
    statuses(w)


@scenario(nodes=2)
def join_self(w):
    """A primary told to be a secondary of itself."""
    subscribe_all(w)
    primary(w)
    w.besecondary("n1", "n1", "n1", "n1")
    statuses(w)


@scenario(nodes=2, tick=1.0)
def join_frozen_primary(w):
    """besecondary towards a frozen primary: the TCP connect succeeds, the join times out."""
    subscribe_all(w)
    primary(w)
    w.freeze("n1")
    w.besecondary("n2", "n2", "n1", "n1", timed=True)
    w.thaw("n1")
    statuses(w)


@scenario(nodes=2, tick=1.0)
def join_frozen_primary_async(w):
    """Asynchronous besecondary towards a frozen primary; status during the join waits for
    its end."""
    subscribe_all(w)
    primary(w)
    w.freeze("n1")
    w.besecondary("n2", "n2", "n1", "n1", wait=False)
    w.status("n2", timed=True)
    w.thaw("n1")
    statuses(w)


@scenario(nodes=3, tick=1.0)
def join_cancelled_by_benone(w):
    """An asynchronous join to a frozen primary, then benone: when does benone answer?"""
    subscribe_all(w)
    primary(w)
    w.freeze("n1")
    w.besecondary("n2", "n2", "n1", "n1", wait=False)
    w.benone("n2", timed=True)
    w.thaw("n1")
    statuses(w)


@scenario(nodes=3, tick=1.0)
def join_then_beprimary(w):
    """An asynchronous join to a frozen primary, then beprimary on the joining node."""
    subscribe_all(w)
    primary(w)
    w.freeze("n1")
    w.besecondary("n2", "n2", "n1", "n1", wait=False)
    w.beprimary("n2", "n2", timed=True)
    w.thaw("n1")
    statuses(w)


@scenario(nodes=2, tick=4.0)
def join_frozen_primary_long_tick(w):
    """With a tick timeout of 4 s a join to a frozen primary gives up after 3 ticks (12 s),
    not after 10 s."""
    subscribe_all(w)
    primary(w)
    w.freeze("n1")
    w.besecondary("n2", "n2", "n1", "n1", timed=True)
    w.thaw("n1")
