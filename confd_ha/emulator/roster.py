"""The nodes below a primary or relay, in the order ConfD lists them (docs/conformance.md).

A primary (or relay) knows every node of its subtree: its direct secondaries and, through the
relays among them, the nodes behind those. ConfD 8.2.5 keeps them in one list, newest first,
with a twist for what a relay reports: every report from a direct secondary R about a node
behind it (a join request, an arrival, a departure) first moves R to the front of the list.
Observed rules, with L the list before the change:

* a direct secondary X arrives:                      L := [X | L]
* R asks whether X may join behind it:               L := [R | L - R]      (even if refused)
* ... and X is admitted:                             L := [X | L]
* R reports that X (behind it) has left:             L := [R | L - R - X]
* a direct secondary R is lost or dropped:           R and every node behind R leave; the rest
                                                     keeps its order
* ``secondary_dead(X)``:                             X and every node behind X leave, no reorder

The roster is pure data: it only orders and answers; the caller emits the events.
"""

from __future__ import annotations

from typing import Iterator, List, NamedTuple, Optional, Tuple

from .. import _codec, error
from .._terms import Term


def term_key(nodeid: Term) -> bytes:
    """A hashable key with exact term equality (node ids are compared as terms, W-25)."""
    if isinstance(nodeid, bytes):
        return b"b" + nodeid
    try:
        return b"t" + _codec.encode(nodeid)
    except (TypeError, ValueError, error.Error):  # not a term: equal only to itself
        return b"r" + repr(nodeid).encode("utf-8", "replace")


class Entry(NamedTuple):
    nodeid: Term          # the node-id term as the node gave it
    addr: Term            # the address term reported for it
    parent: Optional[bytes]   # key of the node it is attached to; None: attached to us


class Roster:
    """The ordered nodes of a primary's or relay's subtree."""

    def __init__(self) -> None:
        self._entries: List[Entry] = []

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Entry]:
        return iter(list(self._entries))

    def clear(self) -> List[Entry]:
        out, self._entries = self._entries, []
        return out

    def find(self, nodeid: Term) -> Optional[Entry]:
        key = term_key(nodeid)
        for e in self._entries:
            if term_key(e.nodeid) == key:
                return e
        return None

    def __contains__(self, nodeid: object) -> bool:
        return self.find(nodeid) is not None

    # ------------------------------------------------------------ changes

    def add_direct(self, nodeid: Term, addr: Term) -> Entry:
        entry = Entry(nodeid, addr, None)
        self._entries.insert(0, entry)
        return entry

    def touch(self, child: Term) -> None:
        """A report from direct secondary ``child``: move it to the front."""
        entry = self.find(child)
        if entry is not None:
            self._entries.remove(entry)
            self._entries.insert(0, entry)

    def add_behind(self, nodeid: Term, addr: Term, parent: Term) -> Entry:
        entry = Entry(nodeid, addr, term_key(parent))
        self._entries.insert(0, entry)
        return entry

    def remove_one(self, nodeid: Term) -> Optional[Entry]:
        entry = self.find(nodeid)
        if entry is not None:
            self._entries.remove(entry)
        return entry

    def remove_tree(self, nodeid: Term) -> List[Entry]:
        """Remove ``nodeid`` and every node behind it; returns them, ``nodeid`` first, the
        others in list order (empty if ``nodeid`` is not here)."""
        top = self.find(nodeid)
        if top is None:
            return []
        below = self.below(nodeid)
        self._entries.remove(top)
        for e in below:
            self._entries.remove(e)
        return [top] + below

    # ------------------------------------------------------------ questions

    def below(self, nodeid: Term) -> List[Entry]:
        """The nodes behind ``nodeid`` (at any depth), in list order."""
        key = term_key(nodeid)
        parents = {term_key(e.nodeid): e.parent for e in self._entries}
        out = []
        for e in self._entries:
            p = e.parent
            seen = 0
            while p is not None and p != key and seen <= len(parents):
                p = parents.get(p)
                seen += 1
            if p == key:
                out.append(e)
        return out

    def direct_of(self, nodeid: Term) -> Optional[Entry]:
        """The direct secondary through which ``nodeid`` is reached (itself if direct)."""
        by_key = {term_key(e.nodeid): e for e in self._entries}
        entry = by_key.get(term_key(nodeid))
        seen = 0
        while entry is not None and entry.parent is not None and seen <= len(by_key):
            entry = by_key.get(entry.parent)
            seen += 1
        return entry if entry is not None and entry.parent is None else None

    def listing(self) -> List[Tuple[Term, Term]]:
        """``[(nodeid, addr), …]`` as the status reply lists them."""
        return [(e.nodeid, e.addr) for e in self._entries]
