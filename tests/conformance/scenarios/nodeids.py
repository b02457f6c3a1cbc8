"""Node ids that are empty, long, not UTF-8, or not binaries."""

import confd_ha as ha

from . import scenario
from ._setup import primary, statuses, subscribe_all


@scenario(nodes=2)
def nodeid_empty(w):
    """An empty secondary id, then an empty primary id."""
    subscribe_all(w)
    w.beprimary("n1", "n1")
    w.besecondary("n2", "", "n1", "n1")
    statuses(w)
    w.benone("n2")
    w.beprimary("n1", "")
    w.benone("n1")
    w.beprimary("n1", "")
    w.besecondary("n2", "n2", "", "n1")
    w.besecondary("n2", "", "", "n1")
    statuses(w)


@scenario(nodes=2)
def nodeid_long_249(w):
    """Ids of 249 bytes, the longest that join."""
    subscribe_all(w)
    w.beprimary("n1", "p" * 249)
    w.besecondary("n2", "s" * 249, "p" * 249, "n1")
    statuses(w)


@scenario(nodes=2)
def nodeid_long_primary_250(w):
    """A primary id of 250 bytes: joins to it fail."""
    subscribe_all(w)
    w.beprimary("n1", "p" * 250)
    w.besecondary("n2", "n2", "p" * 250, "n1")
    w.besecondary("n2", "n2", "p" * 250, "n1", wait=False)
    statuses(w)


@scenario(nodes=2)
def nodeid_long_secondary_250(w):
    """A secondary id of 250 bytes: its join fails."""
    subscribe_all(w)
    primary(w)
    w.besecondary("n2", "s" * 250, "n1", "n1")
    statuses(w)


@scenario(nodes=2)
def nodeid_very_long(w):
    """Ids of 4000 bytes."""
    subscribe_all(w)
    w.beprimary("n1", "p" * 4000)
    w.besecondary("n2", "s" * 4000, "p" * 4000, "n1")
    statuses(w)


@scenario(nodes=2)
def nodeid_utf8(w):
    """Non-ASCII ids."""
    subscribe_all(w)
    w.beprimary("n1", "prim\u00e4r-\u4e3b")
    w.besecondary("n2", "sek\u00fcnd\u00e4r", "prim\u00e4r-\u4e3b", "n1")
    statuses(w)


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
