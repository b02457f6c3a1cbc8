"""Set-up steps shared by scenarios (each still writes its own transcript lines)."""

from __future__ import annotations


def subscribe_all(w, *nodes: str) -> None:
    for node in nodes or tuple(w.specs):
        w.subscribe(node)


def primary(w, node: str = "n1") -> None:
    w.beprimary(node, node)


def secondary(w, node: str, to: str = "n1", wait: bool = True) -> None:
    w.besecondary(node, node, to, to, wait=wait)


def relay(w, node: str, to: str = "n1") -> None:
    secondary(w, node, to)
    w.berelay(node)


def statuses(w, *nodes: str) -> None:
    for node in nodes or tuple(w.specs):
        w.status(node)


def relay_tree(w, *subscribers: str) -> None:
    """Events of ``subscribers`` (all nodes by default); n1 primary, n2 a relay behind it,
    n3 a secondary behind n2."""
    subscribe_all(w, *subscribers)
    primary(w)
    relay(w, "n2")
    w.besecondary("n3", "n3", "n2", "n2")
