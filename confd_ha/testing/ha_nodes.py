"""HA nodes for the agent's scenarios and benchmark, and the checker that samples their states.

A :class:`Nodes` is a set of HA nodes that a :class:`~confd_ha.testing.agent_world.World`
drives by index: where each listens, its HA state read **without an HA socket**, the node ids a
primary lists as its secondaries, and the faults (kill -9, start, restart, partition).
:class:`EmulatedNodes` are emulated nodes of this process (``confd_ha.testing.cluster``), read
through their control endpoints. (The live variant's real ConfD nodes are in
``tests/agent/real_nodes.py``: they need the conformance suite's ``RealConfD`` target.)

:class:`Checker` reads every node's state every ``interval`` (50 ms) -- the nodes in parallel
threads, so that one sample shows them at nearly the same moment -- and keeps every sample and
those with more than one PRIMARY.
"""

from __future__ import annotations

import concurrent.futures
import socket
import statistics
import threading
import time
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Set, Tuple

from .. import STATE_PRIMARY

__all__ = ["Nodes", "EmulatedNodes", "Sample", "Checker", "NAMES"]

NAMES = ["n1", "n2", "n3"]
States = List[Optional[int]]


class Nodes:
    """HA nodes driven by index (0..n-1). Subclasses implement every method."""

    kind = "?"
    no_partition = ""
    """Why :meth:`partition` is not possible (empty: it is)."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)

    def __len__(self) -> int:
        return len(self.names)

    def ipc(self, i: int) -> Tuple[str, int]:
        """(address, port) of node ``i``'s IPC listener."""
        raise NotImplementedError

    def state(self, i: int) -> Optional[int]:
        """Node ``i``'s HA state (``confd_ha.STATE_*``), read without an HA socket; None when
        it does not answer. Called from the checker's threads, one thread per node."""
        raise NotImplementedError

    def connected(self, i: int) -> Set[str]:
        """The node ids that node ``i`` (a primary) lists as its connected secondaries."""
        raise NotImplementedError

    def kill(self, i: int) -> None:
        """kill -9 (or its emulation): gone at once, its sockets closed."""
        raise NotImplementedError

    def start(self, i: int) -> None:
        """Start a killed or stopped node again (it keeps its datastore)."""
        raise NotImplementedError

    def restart(self, i: int) -> None:
        """An orderly stop, then a start."""
        raise NotImplementedError

    def partition(self, i: int, peers: Sequence[int]) -> None:
        """Cut node ``i``'s HA traffic from ``peers``."""
        raise NotImplementedError(self.no_partition or "no partition on these nodes")

    def heal(self, i: int) -> None:
        raise NotImplementedError(self.no_partition or "no partition on these nodes")

    def connect_ha(self, i: int, token: str) -> socket.socket:
        """A new HA control socket to node ``i`` (it replaces the agent's)."""
        raise NotImplementedError

    def close(self) -> None:
        """Stop every node (and process) this set started."""
        raise NotImplementedError


class EmulatedNodes(Nodes):
    """Emulated nodes on 127.81.<k>.1-n of this process, with control endpoints."""

    kind = "emulator"

    def __init__(self, k: int, *, tick_timeout: float = 0.5, names: Sequence[str] = NAMES
                 ) -> None:
        from .cluster import Cluster
        from .control import ControlClient

        super().__init__(names)
        self.cluster = Cluster(len(self.names), prefix="127.81.%d." % k, control=True,
                               tick_timeout=tick_timeout, names=self.names)
        self._clients = [ControlClient(n.ipc_address, n.ipc_port, timeout=2.0)
                         for n in self.cluster]

    def ipc(self, i: int) -> Tuple[str, int]:
        node = self.cluster[i]
        return node.ipc_address, node.ipc_port

    def state(self, i: int) -> Optional[int]:
        try:
            return int(self._clients[i].request("info", decisions=0)["state"])
        except Exception:   # not running, or not answering: unknown
            self._clients[i].close()
            return None

    def connected(self, i: int) -> Set[str]:
        return {str(n["nodeid"]) for n in self.cluster[i].info()["status"]}

    def kill(self, i: int) -> None:
        self.cluster[i].kill()

    def start(self, i: int) -> None:
        self.cluster[i].start()

    def restart(self, i: int) -> None:
        self.cluster[i].restart()

    def partition(self, i: int, peers: Sequence[int]) -> None:
        for j in peers:
            self.cluster[i].partition(self.cluster[j].ipc_address)

    def heal(self, i: int) -> None:
        self.cluster[i].heal()

    def connect_ha(self, i: int, token: str) -> socket.socket:
        return self.cluster[i].connect_ha(token)

    def close(self) -> None:
        for c in self._clients:
            c.close()
        self.cluster.stop()


class Sample(NamedTuple):
    """One reading of every node: begun at ``t``, all answers in at ``done`` (monotonic)."""
    t: float
    states: States
    done: float


class Checker:
    """Samples every node's HA state every ``interval`` seconds (see the module docstring)."""

    def __init__(self, nodes: Nodes, interval: float = 0.05) -> None:
        self.nodes = nodes
        self.interval = interval
        self.samples: List[Sample] = []
        self.doubles: List[Sample] = []      # samples with more than one PRIMARY
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pool = concurrent.futures.ThreadPoolExecutor(len(nodes),
                                                           thread_name_prefix="ha-read")
        self._thread = threading.Thread(target=self._run, name="ha-checker", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        n = len(self.nodes)
        while not self._stop.is_set():
            t = time.monotonic()
            states = list(self._pool.map(self.nodes.state, range(n)))
            sample = Sample(t, states, time.monotonic())
            with self._lock:
                self.samples.append(sample)
                if states.count(STATE_PRIMARY) > 1:
                    self.doubles.append(sample)
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - t)))

    def latest(self) -> States:
        with self._lock:
            return list(self.samples[-1].states) if self.samples else [None] * len(self.nodes)

    def since(self, t0: float) -> List[Sample]:
        with self._lock:
            return [s for s in self.samples if s.t >= t0]

    def first(self, t0: float, pred: Callable[[States], bool]) -> Optional[float]:
        """Seconds from ``t0`` to the end of the first sample begun after it that satisfies
        ``pred`` (the end: an upper bound, as the node was read somewhere in the sample)."""
        for s in self.since(t0):
            if pred(s.states):
                return s.done - t0
        return None

    def period(self) -> Dict[str, float]:
        """The sampling as it was: median, p99 and max of the period and of one sample's
        duration, in seconds, and the number of samples."""
        with self._lock:
            starts = [s.t for s in self.samples]
            spans = [s.done - s.t for s in self.samples]
        gaps = [b - a for a, b in zip(starts, starts[1:])] or [0.0]
        spans = spans or [0.0]
        return {"samples": float(len(starts)),
                "period_median": statistics.median(gaps), "period_p99": _p99(gaps),
                "period_max": max(gaps), "read_median": statistics.median(spans),
                "read_max": max(spans)}

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._pool.shutdown(wait=True)


def _p99(values: List[float]) -> float:
    """The 99th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[max(0, -(-99 * len(ordered) // 100) - 1)]
