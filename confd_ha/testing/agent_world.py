"""A world for the agent's scenarios and its benchmark: three HA nodes, three agents, etcd,
proxies and a checker of the nodes' HA states.

* nodes: a :class:`~confd_ha.testing.ha_nodes.Nodes` (emulated nodes on 127.81.<k>.1-3 by
  default; the live tests give real ConfD nodes);
* etcd: a shared :class:`~confd_ha.testing.etcd.EtcdCluster` (given by the caller);
* one :class:`~confd_ha.testing.etcd.TcpProxy` per (agent, member) on 127.82.<k>.(10+3i+j),
  so that one agent can be cut off from etcd;
* the agents run on one asyncio loop in a thread of their own;
* the :class:`~confd_ha.testing.ha_nodes.Checker` reads every node's state (never through an
  HA socket) every 50 ms and keeps the samples with more than one PRIMARY.

Used by ``tests/agent`` and ``benchmarks/bench_agent.py``; needs the agent's extra (httpx).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from typing import Any, Callable, Coroutine, Dict, List, Optional, Sequence, TypeVar

from .. import STATE_PRIMARY, STATE_SECONDARY
from ..agent.config import AgentConfig
from ..agent.core import Agent
from ..agent.etcd import EtcdClient
from .etcd import EtcdCluster, TcpProxy
from .ha_nodes import NAMES, Checker, EmulatedNodes, Nodes, Sample

__all__ = ["World", "LogCapture", "TOKEN", "NAMES"]

T = TypeVar("T")
TOKEN = "agent-test-secret-5f3a"
"""The HA token of the worlds' agents (a secret: it must never reach a log)."""


class LogCapture(logging.Handler):
    """Keeps every record of a logger (thread-safe)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: List[logging.LogRecord] = []
        self._records_lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self._records_lock:
            self.records.append(record)

    def texts(self, level: int = logging.DEBUG) -> List[str]:
        with self._records_lock:
            return [r.getMessage() for r in self.records if r.levelno >= level]


async def _cancel_all() -> None:
    """Cancel and reap every task left on the agents' loop, so that none is collected later
    (a pending task's finaliser logs a traceback, which in CPython 3.11 may run inside another
    thread's ast.parse and break it)."""
    me = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not me]
    for t in tasks:
        t.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=5)
    for t in tasks:
        if t.done() and not t.cancelled():
            t.exception()
    await asyncio.get_running_loop().shutdown_asyncgens()


class World:
    """Nodes, agents, proxies and the checker of one test; :meth:`close` stops everything.

    ``k`` (1..254) picks the loopback blocks; ``nodes(k)`` makes the nodes (default:
    :class:`EmulatedNodes` with ``tick_timeout``). ``loop_wait``/``order_timeout`` None: the
    agent's defaults."""

    def __init__(self, k: int, etcd: EtcdCluster, *, ttl: int = 2,
                 loop_wait: Optional[float] = 0.25, order_timeout: Optional[float] = 0.5,
                 tick_timeout: float = 0.5, nodes: Optional[Callable[[int], Nodes]] = None,
                 interval: float = 0.05) -> None:
        self.k = k
        self.etcd = etcd
        self.cluster_name = "t%d" % k
        self.settings: Dict[str, Any] = {"ttl": ttl}
        if loop_wait is not None:
            self.settings["loop_wait"] = loop_wait
        if order_timeout is not None:
            self.settings["order_timeout"] = order_timeout
        self.log = LogCapture()
        logger = logging.getLogger("confd_ha.agent")
        logger.addHandler(self.log)
        self._old_level = logger.level
        logger.setLevel(logging.DEBUG)
        self._nodes: Optional[Nodes] = None
        self.checker: Optional[Checker] = None
        self.proxies: List[List[TcpProxy]] = []
        self.agents: List[Optional[Agent]] = [None] * 3
        self.runs: List[Optional["concurrent.futures.Future[None]"]] = [None] * 3
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="agents",
                                        daemon=True)
        self._thread.start()
        try:
            self._nodes = (nodes or (lambda n: EmulatedNodes(n, tick_timeout=tick_timeout)))(k)
            for i in range(3):
                row = []
                for j, url in enumerate(etcd.endpoints):
                    host, port = url[len("http://"):].rsplit(":", 1)
                    row.append(TcpProxy(host, int(port),
                                        listen_host="127.82.%d.%d" % (k, 10 + 3 * i + j)))
                self.proxies.append(row)
            self.checker = Checker(self._nodes, interval)
        except BaseException:
            self.close()
            raise

    @property
    def nodes(self) -> Nodes:
        assert self._nodes is not None
        return self._nodes

    # ------------------------------------------------------------ the agents' loop

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def config(self, i: int, **changes: Any) -> AgentConfig:
        address, port = self.nodes.ipc(i)
        fields: Dict[str, Any] = dict(
            cluster=self.cluster_name, node_id=NAMES[i], token=TOKEN, ipc_address=address,
            ipc_port=port, etcd=[p.address for p in self.proxies[i]], api_port=0,
            **self.settings)
        fields.update(changes)
        return AgentConfig(**fields)

    def start_agent(self, i: int, **changes: Any) -> Agent:
        async def make() -> Agent:
            return Agent(self.config(i, **changes))
        agent = self.run(make())
        self.agents[i] = agent
        self.runs[i] = asyncio.run_coroutine_threadsafe(agent.run(), self.loop)
        return agent

    def start_all(self) -> None:
        for i in range(3):
            self.start_agent(i)

    def stop_agent(self, i: int, timeout: float = 15.0) -> None:
        agent, run = self.agents[i], self.runs[i]
        if agent is None:
            return
        self.run(agent.stop(), timeout)
        if run is not None:
            try:
                run.result(timeout)
            except Exception:
                pass
        self.agents[i] = self.runs[i] = None

    def crash_agent(self, i: int) -> None:
        """End agent ``i`` like a killed process (no demotion, the lease runs out)."""
        agent = self.agents[i]
        if agent is not None:
            self.run(agent.crash())
        self.agents[i] = self.runs[i] = None

    def agent_error(self, i: int, timeout: float) -> BaseException:
        """The exception agent ``i``'s run ended with (waits up to ``timeout``)."""
        run = self.runs[i]
        assert run is not None
        exc = run.exception(timeout)
        assert exc is not None, "agent %d ended without an error" % i
        return exc

    def ops(self, fn: Callable[..., Coroutine[Any, Any, T]], *args: Any, **kw: Any) -> T:
        """Run an operator function with a client of its own (straight to etcd)."""
        async def go() -> T:
            async with EtcdClient(self.etcd.endpoints, timeout=2.0) as client:
                return await fn(client, self.cluster_name, *args, **kw)
        return self.run(go(), timeout=kw.get("timeout", 30.0) + 10)

    def cut(self, i: int) -> None:
        """Cut agent ``i`` off from etcd (every connection closed, new ones refused)."""
        for p in self.proxies[i]:
            p.cut()

    def restore(self, i: int) -> None:
        for p in self.proxies[i]:
            p.restore()

    # ------------------------------------------------------------ observing

    def states(self) -> List[Optional[int]]:
        """The latest sample's states."""
        assert self.checker is not None
        return self.checker.latest()

    def wait(self, what: str, cond: Callable[[], bool], timeout: float = 15.0) -> float:
        """Wait until ``cond()``; returns the seconds it took (AssertionError after timeout)."""
        t0 = time.monotonic()
        end = t0 + timeout
        while not cond():
            if time.monotonic() > end:
                raise AssertionError("not within %s s: %s; node states %s; last agent log:\n%s"
                                     % (timeout, what, self.states(),
                                        "\n".join(self.log.texts(logging.INFO)[-25:])))
            time.sleep(0.02)
        return time.monotonic() - t0

    def observe(self, seconds: float) -> None:
        """Let ``seconds`` pass while the checker samples (an observation window, not a
        synchronisation: the caller then inspects the samples taken meanwhile)."""
        time.sleep(max(0.0, seconds))

    def since(self, t0: float) -> List[Sample]:
        assert self.checker is not None
        return self.checker.since(t0)

    def primary_index(self) -> Optional[int]:
        s = self.states()
        return s.index(STATE_PRIMARY) if s.count(STATE_PRIMARY) == 1 else None

    def formed(self, primary: Optional[int] = None, members: Sequence[int] = (0, 1, 2)) -> bool:
        """Among ``members``: one primary (``primary`` if given), the others its secondaries
        as the primary lists them."""
        s = self.states()
        if s.count(STATE_PRIMARY) != 1:
            return False
        p = s.index(STATE_PRIMARY)
        if p not in members or (primary is not None and p != primary):
            return False
        rest = [j for j in members if j != p]
        if any(s[j] != STATE_SECONDARY for j in rest):
            return False
        try:
            return self.nodes.connected(p) == {NAMES[j] for j in rest}
        except Exception:   # the primary went away meanwhile
            return False

    def wait_formed(self, timeout: float = 15.0, primary: Optional[int] = None,
                    members: Sequence[int] = (0, 1, 2)) -> int:
        """Wait until :meth:`formed`; returns the primary's index."""
        self.formed_after(timeout, primary, members)
        p = self.primary_index()
        assert p is not None
        return p

    def formed_after(self, timeout: float = 15.0, primary: Optional[int] = None,
                     members: Sequence[int] = (0, 1, 2)) -> float:
        """Wait until :meth:`formed`; returns the seconds it took."""
        return self.wait("one primary and the others its secondaries (of %s)" % list(members),
                         lambda: self.formed(primary, members), timeout)

    def failover_time(self, t0: float, old: int, timeout: float) -> float:
        """Seconds from ``t0`` to the (end of the) first sample with a primary other than
        ``old``; waits up to ``timeout`` for it."""
        self.wait("a node other than %s is primary" % NAMES[old],
                  lambda: self.primary_index() not in (None, old), timeout)
        assert self.checker is not None
        took = self.checker.first(
            t0, lambda st: st.count(STATE_PRIMARY) == 1 and st.index(STATE_PRIMARY) != old)
        assert took is not None
        return took

    def doubles(self) -> List[Sample]:
        assert self.checker is not None
        return list(self.checker.doubles)

    def assert_safe(self) -> None:
        """No sample with two primaries, and the token never in the log."""
        assert self.checker is not None
        assert self.checker.samples, "the checker took no samples"
        assert self.doubles() == [], "samples with two primaries: %s" % self.doubles()[:5]
        leaked = [t for t in self.log.texts() if TOKEN in t]
        assert not leaked, "the token appeared in the log: %s" % leaked[:1]

    # ------------------------------------------------------------ teardown

    def close(self) -> None:
        """Stop the agents (the leader last), the checker, the proxies and the nodes."""
        try:
            p = self.primary_index() if self.checker is not None else None
            for i in sorted(range(3), key=lambda j: j == p):
                if self.agents[i] is not None:
                    try:
                        self.stop_agent(i)
                    except Exception:
                        self.crash_agent(i)
        finally:
            if self.checker is not None:
                self.checker.stop()
            for row in self.proxies:
                for proxy in row:
                    proxy.close()
            if self._nodes is not None:
                self._nodes.close()
            try:
                self.run(_cancel_all(), timeout=15)
            except Exception:
                pass
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()
            logger = logging.getLogger("confd_ha.agent")
            logger.removeHandler(self.log)
            logger.setLevel(self._old_level)
