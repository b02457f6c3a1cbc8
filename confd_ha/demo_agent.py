"""``confd-ha demo --agent``: the HA agent at work on three emulated nodes, narrated.

Everything runs in this process but etcd: a three-member etcd cluster
(:class:`confd_ha.testing.etcd.EtcdCluster`, members on 127.0.1.1-3 with free ports), three
emulated ConfD nodes (:class:`confd_ha.testing.cluster.Cluster`, on ``--prefix`` 1-3), and
three agents (:class:`confd_ha.agent.core.Agent`, one asyncio loop in a thread) with their
health endpoints on free ports. The story: the agents elect a leader and form the cluster;
the primary node is killed and the agents fail over on their own (the time from the kill to
the new primary is measured); the killed node comes back and rejoins; a switchover hands the
primary role back to it; every node's state, sampled every 50 ms from the emulator (no HA
socket), never showed two primaries; everything stops, and the agents' keys are gone from
etcd. Each step checks what it shows (:class:`confd_ha.demo.StepFailed`, exit 1). Ctrl-C
(exit 130) and a closed output (exit 141) stop it as cleanly: when :func:`run` returns or
raises, no process, thread, socket or file of it is left.

Without etcd, :func:`run` raises :class:`confd_ha.testing.etcd.EtcdNotFound` before it starts
anything (the command line: one line naming ``apt-get install etcd-server``, exit 2).
"""

from __future__ import annotations

import asyncio
import http.client
import io
import threading
import time
from typing import (TYPE_CHECKING, Any, Callable, Coroutine, Dict, List, Optional, Tuple,
                    TypeVar)

from ._consts import State, state_text
from .demo import Narrator, StepFailed, run_steps

if TYPE_CHECKING:
    from .agent.core import Agent
    from .agent.health import HealthServer
    from .testing.cluster import Cluster
    from .testing.etcd import EtcdCluster

T = TypeVar("T")
TOKEN = "demo-agent-token"   # a demo: every node gets the same, never printed
CLUSTER = "demo"
NAMES = ("n1", "n2", "n3")
TTL, LOOP_WAIT, ORDER_TIMEOUT = 4, 0.5, 1.0
PRIMARY, SECONDARY = State.PRIMARY, State.SECONDARY


class _Sampler:
    """Every node's HA state every 50 ms, read from the emulator (no HA socket); counts the
    samples with more than one primary."""

    def __init__(self, nodes: Any, interval: float = 0.05) -> None:
        self.nodes = nodes
        self.interval = interval
        self.samples = 0
        self.doubles = 0
        self.latest: Dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                states = {node.name: int(node.state) for node in self.nodes}
            except Exception:   # the emulator is stopping
                return
            self.latest = states
            self.samples += 1
            if list(states.values()).count(PRIMARY) > 1:
                self.doubles += 1
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - began)))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


class _AgentDemo(Narrator):
    def __init__(self, out: Any, tick: float, prefix: str, etcd_prefix: str) -> None:
        super().__init__(out, tick, prefix, "starting etcd")
        self.etcd_prefix = etcd_prefix
        self.wait_limit = max(20.0, 8 * tick)
        self.etcd: Optional[EtcdCluster] = None
        self.nodes: Optional[Cluster] = None
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self.thread: Optional[threading.Thread] = None
        self.agents: Dict[str, Agent] = {}
        self.runs: Dict[str, Any] = {}
        self.servers: Dict[str, HealthServer] = {}
        self.sampler: Optional[_Sampler] = None
        self.first_primary = ""

    # ------------------------------------------------------------ helpers

    def on_loop(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def wait_for(self, what: str, cond: Callable[[], Any]) -> Any:
        end = time.monotonic() + self.wait_limit
        while True:
            result = cond()
            if result:
                return result
            for name, run in self.runs.items():
                if run.done() and run.exception() is not None:
                    raise StepFailed("the agent of %s stopped: %s" % (name, run.exception()))
            if time.monotonic() > end:
                raise StepFailed("not within %.0f s: %s" % (self.wait_limit, what))
            time.sleep(0.02)

    def formed(self, members: List[str]) -> Optional[str]:
        """The primary when, among ``members``, exactly one node is primary under the leader
        key and the others are its secondaries, listed by it."""
        assert self.nodes is not None
        by_name = {node.name: node for node in self.nodes}
        states = {n: by_name[n].state for n in members}
        primaries = [n for n, s in states.items() if s == PRIMARY]
        if len(primaries) != 1 or not self.agents[primaries[0]].is_leader:
            return None
        p = primaries[0]
        if any(s != SECONDARY for n, s in states.items() if n != p):
            return None
        listed = {nid.decode() if isinstance(nid, bytes) else str(nid)
                  for nid, _addr in by_name[p].status()[1]}
        return p if listed == set(members) - {p} else None

    def probe(self, name: str, path: str) -> int:
        server = self.servers[name]
        conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
        try:
            conn.request("GET", path)
            status = conn.getresponse().status
        finally:
            conn.close()
        return status

    def ops(self, fn: Callable[..., Coroutine[Any, Any, T]], *args: Any, **kw: Any) -> T:
        from .agent.etcd import EtcdClient

        assert self.etcd is not None
        endpoints = self.etcd.endpoints

        async def go() -> T:
            async with EtcdClient(endpoints, timeout=2.0) as client:
                return await fn(client, CLUSTER, *args, **kw)
        return self.on_loop(go(), timeout=60.0)

    # ------------------------------------------------------------ the story

    def start_etcd(self) -> None:
        from .testing.etcd import EtcdCluster

        self.begin("etcd", "start a three-member etcd cluster on %s1-3 with free ports"
                   % self.etcd_prefix)
        self.etcd = EtcdCluster(3, prefix=self.etcd_prefix)
        self.saw("all three members healthy in %.2f s: %s"
                 % (self.etcd.started_in, ", ".join(self.etcd.endpoints)))

    def start_nodes(self) -> None:
        from .testing.cluster import Cluster

        where = self.prefix + "1-3"
        self.begin("three nodes", "start the emulated ConfD nodes n1, n2, n3 on %s with free "
                   "IPC ports and one shared HA port" % where)
        try:
            self.nodes = Cluster(3, tick_timeout=self.tick, prefix=self.prefix)
        except OSError as exc:
            raise StepFailed("cannot start the nodes on %s: %s (give the prefix of local "
                             "addresses, e.g. --prefix 127.0.5.)" % (where, exc.strerror or exc)
                             ) from None
        self.saw("%s; HA port %d" % (", ".join("%s IPC %s:%d" % (n.name, n.ipc_address,
                                                                 n.ipc_port)
                                               for n in self.nodes), self.nodes.ha_port))
        self.saw("states: %s" % ", ".join("%s %s" % (n.name, state_text(n.state, str(n.state)))
                                          for n in self.nodes))
        self.sampler = _Sampler(list(self.nodes))

    def start_agents(self) -> None:
        from .agent.config import AgentConfig
        from .agent.core import Agent
        from .agent.health import AgentHealthView, HealthServer

        assert self.nodes is not None and self.etcd is not None
        self.begin("three agents", "one `confd-ha agent` per node: cluster %r, lease TTL %d s, "
                   "a loop every %g s, the same secret HA token" % (CLUSTER, TTL, LOOP_WAIT))
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="demo-agents",
                                       daemon=True)
        self.thread.start()
        for node in self.nodes:
            config = AgentConfig(cluster=CLUSTER, node_id=node.name, token=TOKEN,
                                 ipc_address=node.ipc_address, ipc_port=node.ipc_port,
                                 etcd=list(self.etcd.endpoints), ttl=TTL, loop_wait=LOOP_WAIT,
                                 order_timeout=ORDER_TIMEOUT, api_address=node.ipc_address,
                                 api_port=0)

            async def make(config: AgentConfig = config) -> "Tuple[Agent, HealthServer]":
                agent = Agent(config)
                server = await HealthServer(AgentHealthView(agent), config.api_address,
                                            0).start()
                agent.api_url = server.url
                return agent, server
            agent, server = self.on_loop(make())
            self.agents[node.name], self.servers[node.name] = agent, server
        for name, agent in self.agents.items():
            self.runs[name] = asyncio.run_coroutine_threadsafe(agent.run(), self.loop)
        self.saw("health endpoints: %s" % ", ".join(
            "%s %s" % (n, s.url) for n, s in self.servers.items()))

    def election(self) -> None:
        self.begin("election", "the agents race for the leader key in etcd (a create under "
                   "their lease); the winner makes its node primary, the others join it")
        began = time.monotonic()
        p = self.wait_for("one primary and two secondaries", lambda: self.formed(list(NAMES)))
        took = time.monotonic() - began
        self.first_primary = p
        others = [n for n in NAMES if n != p]
        self.saw("%s won: its node is primary, %s and %s joined it as secondaries, %.2f s "
                 "after the agents started" % (p, others[0], others[1], took))
        self.show_health()
        self.show_list()

    def show_health(self) -> None:
        self.saw("health endpoints: GET /primary: %s; GET /secondary: %s" % (
            ", ".join("%s %d" % (n, self.probe(n, "/primary")) for n in NAMES),
            ", ".join("%s %d" % (n, self.probe(n, "/secondary")) for n in NAMES)))

    def show_list(self) -> None:
        from .agent import ops
        from .cli_agent import print_cluster

        table = io.StringIO()
        print_cluster(self.ops(ops.cluster_view), table)
        self.saw("confd-ha agent list:")
        for line in table.getvalue().splitlines():
            self.say("         " + line)

    def kill_primary(self) -> None:
        assert self.nodes is not None and self.sampler is not None
        old = self.first_primary
        node = next(n for n in self.nodes if n.name == old)
        self.begin("the primary dies", "kill %s's node (emulator control interface: all its "
                   "sockets close abruptly); its agent keeps running" % old)
        began = time.monotonic()
        node.kill()
        rest = [n for n in NAMES if n != old]

        def new_primary() -> Optional[str]:
            states = self.sampler.latest if self.sampler else {}
            found = [n for n in rest if states.get(n) == PRIMARY]
            return found[0] if len(found) == 1 else None
        p = self.wait_for("another node becomes primary", new_primary)
        took = time.monotonic() - began
        self.saw("%s's agent saw its node go and gave up the leader key at once (no wait for "
                 "the %d s lease)" % (old, TTL))
        self.saw("automatic failover in %.2f s: %s is primary (from the kill to the first "
                 "50 ms sample showing it)" % (took, p))
        self.wait_for("%s joins %s" % ([n for n in rest if n != p][0], p),
                      lambda: self.formed(rest))
        self.saw("%s is a secondary of %s; nobody ordered anything" % (
            [n for n in rest if n != p][0], p))

    def rejoin(self) -> None:
        assert self.nodes is not None
        old = self.first_primary
        node = next(n for n in self.nodes if n.name == old)
        self.begin("the node returns", "start %s's node again (state none, its data kept)"
                   % old)
        began = time.monotonic()
        node.start()
        leader = self.wait_for("%s rejoins" % old, lambda: self.formed(list(NAMES)))
        self.saw("%s's agent made it a secondary of %s in %.2f s"
                 % (old, leader, time.monotonic() - began))

    def switchover(self) -> None:
        from .agent import ops

        back = self.first_primary
        self.begin("switchover back", "confd-ha agent switchover --to %s (planned: the "
                   "leader waits until %s is in sync, demotes its node, hands over the key)"
                   % (back, back))
        try:
            result = self.ops(ops.switchover, back, timeout=30.0)
        except ops.OpsError as exc:   # refused or not done: the operator's message
            raise StepFailed(str(exc)) from None
        self.saw("done in %.2f s: %s is the leader, was %s" % (result["seconds"],
                                                               result["leader"], result["from"]))
        p = self.wait_for("the others follow %s" % back, lambda: self.formed(list(NAMES)))
        if p != back:
            raise StepFailed("%s is primary after the switchover, not %s" % (p, back))
        self.saw("%s is primary, %s its secondaries" % (
            back, " and ".join(n for n in NAMES if n != back)))
        self.show_health()

    def safety(self) -> None:
        assert self.sampler is not None
        self.begin("never two primaries", "every node's state, read from the emulator every "
                   "50 ms during the demo")
        if self.sampler.doubles:
            raise StepFailed("%d of %d samples showed two primaries"
                             % (self.sampler.doubles, self.sampler.samples))
        self.saw("%d samples, none with more than one primary" % self.sampler.samples)

    def stop_all(self) -> None:
        from .agent.etcd import EtcdClient
        from .agent.keys import Keys

        assert self.etcd is not None
        self.begin("stop", "stop the agents (a leader demotes its node first; each revokes its "
                   "lease), then the nodes and etcd")
        self.stop_agents()
        prefix = Keys(CLUSTER).prefix

        async def keys_left() -> List[str]:
            assert self.etcd is not None
            async with EtcdClient(self.etcd.endpoints, timeout=2.0) as client:
                _rev, kvs = await client.get_prefix(prefix)
            return [kv.key for kv in kvs]
        left = self.on_loop(keys_left())
        if left:
            raise StepFailed("keys left in etcd after the agents stopped: %s" % left)
        self.saw("the agents stopped; their leases revoked, no key is left under %s" % prefix)

    # ------------------------------------------------------------ teardown

    def stop_agents(self) -> None:
        for name in list(self.agents):
            agent = self.agents.pop(name)
            run = self.runs.pop(name, None)
            try:
                self.on_loop(agent.stop(), timeout=20.0)
            except Exception:
                self.on_loop(agent.crash(), timeout=10.0)
            if run is not None:
                try:
                    run.result(5)
                except Exception:
                    pass
        for name in list(self.servers):
            self.on_loop(self.servers.pop(name).close(), timeout=10.0)

    def close(self) -> None:
        try:
            if self.loop is not None and self.thread is not None and self.thread.is_alive():
                try:
                    self.stop_agents()
                finally:
                    try:
                        self.on_loop(_cancel_all(), timeout=15.0)
                    finally:
                        self.loop.call_soon_threadsafe(self.loop.stop)
                        self.thread.join(15)
            if self.loop is not None and not self.loop.is_running():
                self.loop.close()
        finally:
            try:
                if self.sampler is not None:
                    self.sampler.stop()
                if self.nodes is not None:
                    self.nodes.stop()
            finally:
                if self.etcd is not None:
                    self.etcd.close()


async def _cancel_all() -> None:
    """Cancel what is left on the agents' loop and wait for it (bounded)."""
    me = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not me]
    end = time.monotonic() + 5
    while time.monotonic() < end and any(not t.done() for t in tasks):
        for t in tasks:
            t.cancel()
        await asyncio.wait([t for t in tasks if not t.done()], timeout=0.2)
    for t in tasks:
        if t.done() and not t.cancelled():
            t.exception()
    loop = asyncio.get_running_loop()
    await loop.shutdown_asyncgens()
    await loop.shutdown_default_executor()   # its threads (name lookups) are joined


def run(out: Any, tick: float = 0.5, prefix: str = "127.0.0.",
        etcd_prefix: str = "127.0.1.") -> None:
    """Run the demo, narrating on ``out`` (see the module docstring). Raises
    :class:`~confd_ha.testing.etcd.EtcdNotFound` without etcd, :class:`StepFailed` naming the
    step that failed, ``KeyboardInterrupt`` or ``BrokenPipeError``; nothing is left running
    when it returns or raises."""
    from .testing.etcd import find_etcd

    if not 0 < tick <= 60:
        raise ValueError("the tick must be more than 0 and at most 60 seconds")
    find_etcd()    # EtcdNotFound: before anything starts
    demo = _AgentDemo(out, tick, prefix, etcd_prefix)
    started = time.monotonic()
    demo.say("confd-ha demo --agent: three emulated ConfD nodes and their HA agents in this "
             "process, a three-member etcd beside it; tick timeout %g s" % tick)
    run_steps(demo, (demo.start_etcd, demo.start_nodes, demo.start_agents, demo.election,
                     demo.kill_primary, demo.rejoin, demo.switchover, demo.safety,
                     demo.stop_all))
    demo.say("Done in %.2f s; every agent, node and etcd member is stopped." % (
        time.monotonic() - started))
