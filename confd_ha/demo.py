"""``confd-ha demo``: a whole HA lifecycle on three emulated nodes, narrated step by step.

Three emulated ConfD nodes run in this process (127.0.0.1-3, or ``--prefix`` 1-3; free IPC
ports, one shared HA port). The demo drives them exactly as an HA framework would -- through
the public client API only: ``confd_ha.connect``/``beprimary``/``besecondary``/``status`` on
one HA control socket per node, and ``confd_ha.events`` on one event socket per node.
Writing to a node's datastore and killing a node are not part of that API; they go through
the emulator's control interface (``confd_ha.testing.cluster``), as with any emulated node.

The story: n1 becomes primary; n2 joins synchronously, n3 asynchronously; a commit on n1
reaches both; a write on n2 is refused; n1 dies; n2 is promoted and n3 re-pointed to it
without a copy; a final status of every node. Each step checks what it shows, so a step
that does not behave as described stops the demo (:class:`StepFailed`, exit 1). Ctrl-C stops
it cleanly (exit 130), as does a closed output (``| head``, exit 141). Either way every
node, thread and socket is gone when :func:`run` returns or raises.
"""

from __future__ import annotations

import contextlib
import io
import signal
import socket
import threading
import time
from typing import (TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Sequence,
                    TextIO)

import confd_ha as ha
from confd_ha import error, events
from confd_ha._consts import HaInfo, event_name, state_text

if TYPE_CHECKING:
    from .testing.cluster import Cluster
    from .testing.node import SyncNode

TOKEN = "demo-token"  # a demo: every node gets the same, never printed
PATH = "/demo/greeting"


class StepFailed(Exception):
    """A step did not observe what it was meant to show (or failed otherwise); its text
    names the step."""


class Narrator:
    """A demo's narration on ``self.out``: numbered steps (``begin``), what each showed
    (``saw``); ``step`` and ``title`` name the step under way (for :func:`run_steps`).
    ``tick`` and ``prefix`` are the emulated nodes' tick timeout and address prefix."""

    def __init__(self, out: Any, tick: float, prefix: str, title: str) -> None:
        self.out = out
        self.tick = tick
        self.prefix = prefix
        self.step = 0
        self.title = title

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def begin(self, title: str, text: str) -> None:
        self.step += 1
        self.title = title
        self.say("%2d. %s: %s" % (self.step, title, text))

    def saw(self, text: str) -> None:
        self.say("    -> " + text)


class _Demo(Narrator):
    """The three nodes, their sockets, and the narration."""

    def __init__(self, out: Any, tick: float, prefix: str):
        super().__init__(out, tick, prefix, "starting the nodes")
        # Events arrive within milliseconds here; the bound only keeps a broken step from
        # hanging (a join may take up to 3 ticks before it fails).
        self.wait = max(5.0, 4 * tick)
        self.cluster: Optional[Cluster] = None
        self.nodes: Dict[str, SyncNode] = {}   # the emulator's control interface
        self.control: Dict[str, socket.socket] = {}  # HA control sockets (the public API)
        self.events: Dict[str, socket.socket] = {}   # HA event sockets
        self.killed: Dict[str, int] = {}             # name -> step in which it was killed

    # ------------------------------------------------------------ helpers

    def addr(self, name: str) -> str:
        return self.nodes[name].ipc_address

    def expect(self, name: str, want: int) -> Dict[str, Any]:
        """The next HA event on node ``name``, which must be of type ``want``."""
        s = self.events[name]
        s.settimeout(self.wait)
        try:
            n = events.read_notification(s)
        except error.Timeout:
            raise StepFailed("no %s event on %s within %.0f s"
                             % (HaInfo(want).name, name, self.wait)) from None
        hnot: Dict[str, Any] = n.get("hnot", {})
        if n.get("type") != events.NOTIF_HA_INFO or hnot.get("type") != want:
            raise StepFailed("expected %s on %s, got %s" % (
                HaInfo(want).name, name, event_name(hnot.get("type")) or n))
        return hnot

    def state_of(self, name: str) -> str:
        state, _nodes = ha.status(self.control[name])
        return _state_name(state)

    # ------------------------------------------------------------ the story

    def start(self) -> None:
        from .testing.cluster import Cluster

        self.say("confd-ha demo: three emulated ConfD nodes in this process, tick timeout %g s"
                 % self.tick)
        where = (self.prefix + "1-3" if self.prefix.endswith((".", ":")) else
                 ", ".join(self.prefix + str(i) for i in (1, 2, 3)))
        self.begin("three nodes", "start n1, n2, n3 on %s with free IPC ports and one shared "
                   "HA port" % where)
        try:
            self.cluster = cluster = Cluster(3, tick_timeout=self.tick, prefix=self.prefix)
        except OSError as exc:
            raise StepFailed("cannot start the nodes on %s: %s (give the prefix of local "
                             "addresses, e.g. --prefix 127.0.5.)" % (where, exc.strerror or exc)
                             ) from None
        for node in cluster:
            self.nodes[node.name] = node
        for name, node in self.nodes.items():
            s = _client_socket(node.ipc_address, self.wait)
            self.control[name] = s
            ha.connect(s, TOKEN, node.ipc_address, node.ipc_port)
            e = _client_socket(node.ipc_address, self.wait)
            self.events[name] = e
            events.notifications_connect(e, events.NOTIF_HA_INFO, node.ipc_address,
                                         node.ipc_port)
        self.saw("%s; HA port %d" % (", ".join(
            "%s IPC %s:%d" % (n, node.ipc_address, node.ipc_port)
            for n, node in self.nodes.items()), cluster.ha_port))
        self.saw("HA control sockets s1, s2, s3 (ha.connect, the same secret token on all) and "
                 "one HA event socket per node (events.notifications_connect)")
        self.saw("states: %s" % ", ".join("%s %s" % (n, self.state_of(n)) for n in self.nodes))

    def n1_primary(self) -> None:
        self.begin("n1 becomes primary", 'ha.beprimary(s1, "n1"), then a first commit on n1 '
                   '(emulator control interface): %s = "first config"' % PATH)
        ha.beprimary(self.control["n1"], "n1")
        self.expect("n1", events.HA_INFO_IS_PRIMARY)
        self.saw("n1 event: IS_PRIMARY; n1 is now %s" % self.state_of("n1"))
        txid = self.nodes["n1"].commit([("set", PATH, "first config")])
        self.saw("n1 committed transaction %s" % txid)

    def _join(self, name: str, primary: str, waitreply: int, title: str) -> None:
        """Step ``title``: node ``name`` joins ``primary`` (``besecondary``, ``waitreply``)."""
        self.begin(title, 'ha.besecondary(s%s, "%s", "%s", "%s", waitreply=%d)'
                   % (name[1:], name, primary, self.addr(primary), waitreply))
        ha.besecondary(self.control[name], name, primary, self.addr(primary), waitreply)

    def n2_joins(self) -> None:
        self._join("n2", "n1", 1, "n2 joins synchronously")
        self.saw("the call returned ok: n2 has finished its initial sync")
        hnot = self.expect("n2", events.HA_INFO_SECONDARY_INITIALIZED)
        self.saw("n2 event: SECONDARY_INITIALIZED cdb_initialized_by_copy=%d (ConfD 8.2.5 "
                 "reports 1 on every join)" % hnot["cdb_initialized_by_copy"])
        self._arrived("n1", "n2")

    def n3_joins_async(self) -> None:
        self._join("n3", "n1", 0, "n3 joins asynchronously")
        self.saw("the call returned at once; the outcome arrives as events")
        hnot = self.expect("n3", events.HA_INFO_BESECONDARY_RESULT)
        result = hnot["besecondary_result"]
        if result != 0:
            raise StepFailed("n3's join failed: BESECONDARY_RESULT %d %s"
                             % (result, error.errname(result)))
        self.saw("n3 event: BESECONDARY_RESULT 0 (ok)")
        hnot = self.expect("n3", events.HA_INFO_SECONDARY_INITIALIZED)
        self.saw("n3 event: SECONDARY_INITIALIZED cdb_initialized_by_copy=%d"
                 % hnot["cdb_initialized_by_copy"])
        self._arrived("n1", "n3")

    def _arrived(self, primary: str, secondary: str) -> None:
        node = self.expect(primary, events.HA_INFO_SECONDARY_ARRIVED)["secondary_arrived"]
        if str(node["nodeid"]) != secondary:
            raise StepFailed("%s saw %s arrive, expected %s" % (primary, node["nodeid"], secondary))
        self.saw("%s event: SECONDARY_ARRIVED %s from %s"
                 % (primary, node["nodeid"], node.get("ip4") or node.get("ip6") or node.get("str")))

    def replicate(self) -> None:
        self.begin("a commit is replicated", 'commit on n1: %s = "hello from n1"' % PATH)
        txid = self.nodes["n1"].commit([("set", PATH, "hello from n1")])
        self.saw("n1 committed transaction %s (the commit returns once every secondary has "
                 "acknowledged it)" % txid)
        for name in ("n2", "n3"):
            value, their = self.nodes[name].get(PATH), self.nodes[name].txid
            if value != "hello from n1" or their != txid:
                raise StepFailed("%s has %s = %r at transaction %s" % (name, PATH, value, their))
            self.saw('%s reads %s = "%s", transaction %s' % (name, PATH, value, their))

    def refused_write(self) -> None:
        self.begin("a secondary refuses writes", 'commit on n2: %s = "from n2"' % PATH)
        try:
            self.nodes["n2"].commit([("set", PATH, "from n2")])
        except error.Error as exc:
            if exc.confd_errno != error.ERR_BADSTATE:
                raise
            self.saw("refused: error %d %s: %s: %s" % (
                exc.confd_errno, error.errname(exc.confd_errno), exc.confd_strerror,
                exc.confd_lasterr))
        else:
            raise StepFailed("the secondary n2 accepted a write")
        self.saw('n2 still reads %s = "%s"' % (PATH, self.nodes["n2"].get(PATH)))

    def kill_n1(self) -> None:
        self.begin("the primary dies", "kill n1 (emulator control interface: all its sockets "
                   "close abruptly)")
        self.events.pop("n1").close()
        self.control.pop("n1").close()
        self.nodes["n1"].kill()
        self.killed["n1"] = self.step
        for name in ("n2", "n3"):
            reason = self.expect(name, events.HA_INFO_NOPRIMARY)["noprimary"]
            self.expect(name, events.HA_INFO_IS_NONE)
            self.saw("%s events: NOPRIMARY reason %s (%d), then IS_NONE; %s is now %s"
                     % (name, error.errname(reason), reason, name, self.state_of(name)))
        self.saw("nothing else happens by itself: choosing a new primary is the framework's job")

    def promote_n2(self) -> None:
        self.begin("failover, n2 is promoted", 'ha.beprimary(s2, "n2")')
        ha.beprimary(self.control["n2"], "n2")
        self.expect("n2", events.HA_INFO_IS_PRIMARY)
        self.saw("n2 event: IS_PRIMARY; n2 is now %s" % self.state_of("n2"))

    def repoint_n3(self) -> None:
        txid2, txid3 = self.nodes["n2"].txid, self.nodes["n3"].txid
        self._join("n3", "n2", 1, "n3 is re-pointed to n2")
        hnot = self.expect("n3", events.HA_INFO_SECONDARY_INITIALIZED)
        self.saw("n3 event: SECONDARY_INITIALIZED cdb_initialized_by_copy=%d"
                 % hnot["cdb_initialized_by_copy"])
        if txid2 != txid3 or self.nodes["n3"].txid != txid2:
            raise StepFailed("n3 and n2 disagree after the join (transactions %s / %s)"
                             % (txid2, self.nodes["n3"].txid))
        self.saw("no data was lost: n2 and n3 were, and are, both at transaction %s" % txid2)
        self._arrived("n2", "n3")

    def final_status(self) -> None:
        from .cli_output import print_status

        self.begin("final status", "ha.status(s) of every node, as `confd-ha status` shows it")
        for name, node in self.nodes.items():
            where = "%s (IPC %s:%d)" % (name, node.ipc_address, node.ipc_port)
            if name in self.killed:
                self.say("    %s: not running (killed in step %d)" % (where, self.killed[name]))
                continue
            state, nodes = ha.status(self.control[name])
            table = io.StringIO()
            print_status(state, nodes, False, table)
            self.say("    %s:" % where)
            for line in table.getvalue().splitlines():
                self.say("        " + line)

    def close(self) -> None:
        for s in list(self.events.values()) + list(self.control.values()):
            s.close()
        self.events.clear()
        self.control.clear()
        if self.cluster is not None:
            self.cluster.stop()


def _state_name(state: int) -> str:
    return state_text(state, "state %d" % state)


def _client_socket(address: str, timeout: float) -> socket.socket:
    s = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    return s


@contextlib.contextmanager
def _ctrl_c_deferred() -> Iterator[List[bool]]:
    """Hold off Ctrl-C while cleaning up (so a second Ctrl-C cannot strand the node thread);
    yields a list that records whether one came."""
    caught: List[bool] = []
    old = None
    if threading.current_thread() is threading.main_thread():
        old = signal.getsignal(signal.SIGINT)
        if old is not None:
            signal.signal(signal.SIGINT, lambda *_: caught.append(True))
    try:
        yield caught
    finally:
        if old is not None:
            signal.signal(signal.SIGINT, old)


def run(out: TextIO, tick: float = 0.5, prefix: str = "127.0.0.") -> None:
    """Run the demo, narrating on ``out``. A failed step raises :class:`StepFailed`
    (naming the step), Ctrl-C ``KeyboardInterrupt``, a closed ``out`` ``BrokenPipeError``;
    nothing is left running when it returns or raises."""
    if not 0 < tick <= 60:
        raise ValueError("the tick must be more than 0 and at most 60 seconds")
    demo = _Demo(out, tick, prefix)
    started = time.monotonic()
    run_steps(demo, (demo.start, demo.n1_primary, demo.n2_joins, demo.n3_joins_async,
                     demo.replicate, demo.refused_write, demo.kill_n1, demo.promote_n2,
                     demo.repoint_n3, demo.final_status))
    demo.say("Done in %.2f s; every node is stopped and every socket closed."
             % (time.monotonic() - started))


def run_steps(demo: Any, steps: Sequence[Callable[[], None]]) -> None:
    """Run a demo's ``steps``, then ``demo.close()`` whatever happened. A failed step raises
    :class:`StepFailed` naming it (``demo.step``, ``demo.title``); Ctrl-C and a closed output
    pass through, and a Ctrl-C during the clean-up is held until it is done."""
    failure = None
    try:
        for step in steps:
            step()
    except (KeyboardInterrupt, BrokenPipeError):
        raise
    except Exception as exc:  # any failure of a step: say which, and what went wrong
        failure = StepFailed("demo step %d (%s) failed: %s" % (
            demo.step, demo.title, exc if isinstance(exc, StepFailed) else
            "%s: %s" % (type(exc).__name__, exc)))
        failure.__cause__ = exc
    finally:
        with _ctrl_c_deferred() as caught:
            try:
                demo.close()
            except KeyboardInterrupt:
                caught.append(True)
        if caught:
            raise KeyboardInterrupt
    if failure is not None:
        raise failure
