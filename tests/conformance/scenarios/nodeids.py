"""Node ids given as ``confd_ha.Value``s: bytes that are not UTF-8, and integers (the other
node-id scenarios are scripts, in nodeids.scn)."""

import confd_ha as ha

from . import scenario
from ._setup import primary, statuses, subscribe_all


@scenario(nodes=2)
def nodeid_binary_value(w):
    """Ids given as C_BUF Values holding bytes that are not UTF-8."""
    subscribe_all(w)
    w.beprimary("n1", ha.Value(b"p\xff\xfe", ha.C_BUF))
    w.besecondary("n2", ha.Value(b"s\xff", ha.C_BUF), ha.Value(b"p\xff\xfe", ha.C_BUF), "n1")
    statuses(w)


@scenario(nodes=2, quirks=True)
def nodeid_integer_secondary(w):
    """A secondary whose id is an integer (C_INT32): ConfD's primary leaves HA."""
    subscribe_all(w)
    primary(w)
    w.besecondary("n2", ha.Value(5, ha.C_INT32), "n1", "n1")
    statuses(w)
    w.connect("n1")
    statuses(w)
    w.beprimary("n1", "n1")
    w.besecondary("n2", "n2", "n1", "n1")
    statuses(w)


@scenario(nodes=2, quirks=True)
def nodeid_integer_primary(w):
    """A primary whose id is an integer (C_INT32)."""
    subscribe_all(w)
    w.beprimary("n1", ha.Value(7, ha.C_INT32))
    w.besecondary("n2", "n2", ha.Value(7, ha.C_INT32), "n1")
    statuses(w)
    w.connect("n2")
    statuses(w)
    w.besecondary("n2", "n2", ha.Value(7, ha.C_INT32), "n1", wait=False)
    statuses(w)
