"""The world a conformance scenario acts on, and the transcript it writes.

A scenario is a short function of a :class:`World`: HA orders on control sockets, event
subscriptions, raw bytes on IPC sockets, faults (kill -9, SIGSTOP/SIGCONT, restart) and
waits. Every step appends canonical lines to ``World.lines``; the same script gives the same
lines on real ConfD and on a faithful emulator.

Rules that keep transcripts deterministic:

* After each step the world *settles*: it waits until no subscriber has received an event for
  ``QUIET`` seconds, then writes the events each subscriber got, subscribers in the order
  they were made, events in arrival order (``  ev n1 IS_PRIMARY``). Events are never ordered
  across nodes.
* Timings are written only where a scenario asks for them (``wait``, ``timed=True``), in
  tenths of the tick since the last *mark* (every fault sets the mark; so does ``mark()``).
* Nodes are named, never addressed: an address that is a node's is written as its name.
"""

from __future__ import annotations

import queue
import socket
import threading
import time
from typing import Optional

import confd_ha as ha
from confd_ha import events as ev

from . import render
from .raw import RawIpc
from .targets import IPC_PORT, TOKEN, NodeSpec, Target

QUIET = 0.3          # seconds without events that end a settle
SETTLE_MAX = 5.0     # a settle never takes longer than this


class _Subscriber:
    """One event socket read by a thread; events queue up with their arrival times."""

    def __init__(self, label: str, sock: socket.socket, sync: bool, auto_ack: bool):
        self.label = label
        self.sock = sock
        self.sync = sync
        self.auto_ack = auto_ack
        self.events: "queue.Queue" = queue.Queue()
        self.last = time.monotonic()
        self.thread = threading.Thread(target=self._run, daemon=True,
                                       name="conformance-events-" + label)
        self.thread.start()

    def _run(self) -> None:
        while True:
            try:
                note = ev.read_notification(self.sock)
            except Exception as exc:  # EOF, closed by the harness, ...
                self.last = time.monotonic()
                self.events.put((self.last, None, exc))
                return
            self.last = time.monotonic()
            self.events.put((self.last, note.get("hnot", {}), None))
            if self.sync and self.auto_ack:
                try:
                    ev.sync_ha_notification(self.sock)
                except Exception:
                    pass

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


class World(RawIpc):
    """Nodes n1..nK on ``base_ip`` + 1..K of one target, and everything a scenario does."""

    def __init__(self, target: Target, nodes: int, tick: float, base_ip: str,
                 quirks: bool = False, access_secret: Optional[bytes] = None):
        self.target = target
        self.tick = tick
        self.lines: list = []
        self.names = render.Names()
        self.specs: dict = {}
        prefix = base_ip.rsplit(".", 1)[0]
        for i in range(1, nodes + 1):
            name = "n%d" % i
            spec = NodeSpec(name, "%s.%d" % (prefix, i), tick, access_secret=access_secret,
                            quirks=quirks)
            self.specs[name] = spec
            self.names.add(name, spec.ip)
        self.subs: dict = {}
        self.socks: dict = {}
        self.current: dict = {}     # node -> label of its newest control socket
        self.raws: dict = {}
        self.mark_time = time.monotonic()
        self.call_end = time.monotonic()
        self.call_timeout = max(30.0, 25 * tick)

    # ------------------------------------------------------------ bookkeeping

    def log(self, line: str) -> None:
        self.lines.append(line)

    def ip(self, node: str) -> str:
        return self.specs[node].ip

    def mark(self) -> None:
        """Timings written from now on count from here."""
        self.mark_time = time.monotonic()

    def since(self) -> str:
        return render.ticks(time.monotonic() - self.mark_time, self.tick)

    def close(self) -> None:
        for sub in self.subs.values():
            sub.close()
        for sock in list(self.socks.values()) + [r for r in self.raws.values()]:
            try:
                sock.close()
            except OSError:
                pass

    # ------------------------------------------------------------ nodes and faults

    def start(self, *nodes: str, phase0: bool = False) -> None:
        """Start nodes (all of them by default)."""
        for node in nodes or tuple(self.specs):
            spec = self.specs[node]
            spec.phase0 = phase0
            self.target.start(spec)
        self.log("start %s%s" % (" ".join(nodes or self.specs), " phase0" if phase0 else ""))

    def start_phase(self, node: str, phase: int) -> None:
        self.target.start_phase(self.specs[node], phase)
        self.log("%s start-phase %d" % (node, phase))
        self.settle()

    def _at(self, after: Optional[float]) -> None:
        # Faults that silence a node are timed from the end of the last order (normally the
        # join that set up the link), so that they fall at the same phase of the nodes' tick
        # timers on every target and every run.
        if after is not None:
            time.sleep(max(0.0, self.call_end + after * self.tick - time.monotonic()))

    def kill(self, node: str, after: Optional[float] = None) -> None:
        """kill -9 the node's process (``after`` ticks after the end of the last order)."""
        self._at(after)
        self.mark()
        self.target.kill(self.specs[node])
        self._forget(node)
        self.log("kill -9 %s" % node)

    def freeze(self, node: str, after: Optional[float] = None) -> None:
        """SIGSTOP (``after`` ticks after the end of the last order)."""
        self._at(after)
        self.mark()
        self.target.freeze(self.specs[node])
        self.log("freeze %s" % node)

    def thaw(self, node: str) -> None:
        self.mark()
        self.target.thaw(self.specs[node])
        self.log("thaw %s" % node)

    def stop(self, node: str) -> None:
        """An orderly stop (SIGTERM)."""
        self.target.stop(self.specs[node])
        self._forget(node)
        self.mark()
        self.log("stop %s" % node)
        self.settle()

    def restart(self, node: str, kill: bool = True) -> None:
        """kill -9 (or stop) and start again with the same configuration and datastore."""
        spec = self.specs[node]
        if kill:
            self.target.kill(spec)
        else:
            self.target.stop(spec)
        self._forget(node)
        self.target.start(spec)
        self.mark()
        self.log("restart %s%s" % (node, " (kill -9)" if kill else ""))
        self.settle()

    def _forget(self, node: str) -> None:
        # The node's control sockets died with it; the next order opens a new one.
        label = self.current.pop(node, None)
        if label is not None:
            self.socks.pop(label).close()

    def sleep(self, ticks: float) -> None:
        time.sleep(ticks * self.tick)
        self.log("sleep %gt" % ticks)
        self.settle()

    # ------------------------------------------------------------ events

    def subscribe(self, node: str, sync: bool = False, auto_ack: bool = True,
                  label: Optional[str] = None) -> str:
        label = label or node
        mask = ev.NOTIF_HA_INFO | (ev.NOTIF_HA_INFO_SYNC if sync else 0)
        what = "%s subscribe%s" % (label, " sync" if sync else "")
        sock = self._open(what, ev.notifications_connect, mask, self.ip(node), IPC_PORT)
        if sock is None:
            return label
        sock.settimeout(None)
        self.subs[label] = _Subscriber(label, sock, sync, auto_ack)
        self.log("%s subscribe%s" % (label, " sync" if sync else ""))
        return label

    def close_subscriber(self, label: str) -> None:
        """Close an event socket from the client side."""
        sub = self.subs.pop(label)
        sub.close()
        self.log("%s close" % label)
        self.settle()

    def ack(self, label: str) -> None:
        """Acknowledge one HA_INFO_SYNC event by hand."""
        ev.sync_ha_notification(self.subs[label].sock)
        self.log("%s ha_synced" % label)
        self.settle()

    def settle(self) -> None:
        """Wait until events have stopped coming, then write them down."""
        end = time.monotonic() + SETTLE_MAX
        time.sleep(QUIET)
        while time.monotonic() < end:
            newest = max((s.last for s in self.subs.values()), default=0.0)
            idle = time.monotonic() - newest
            if idle >= QUIET:
                break
            time.sleep(QUIET - idle)
        self._flush()

    def _flush(self) -> None:
        for sub in self.subs.values():
            while True:
                try:
                    _, hnot, exc = sub.events.get_nowait()
                except queue.Empty:
                    break
                self._event_line(sub.label, hnot, exc)

    def _event_line(self, label: str, hnot, exc, suffix: str = "") -> None:
        if exc is not None:
            text = "closed: %s" % render.exception(exc)
        else:
            text = render.event(hnot, self.names)
        self.log("  ev %s %s%s" % (label, text, suffix))

    def wait(self, *targets: tuple, within: float, timed: bool = True) -> None:
        """Wait for events: each target is ``(subscriber, EVENT_NAME)``, waited for in turn,
        all within ``within`` ticks of the mark. Each is written with its time since the
        mark; the events a subscriber got before it are written just before it."""
        end = self.mark_time + within * self.tick
        for label, event in targets:
            self._wait_one(label, event, end, within, timed)
        self.settle()

    def _wait_one(self, label: str, event: str, end: float, within: float, timed: bool) -> None:
        sub = self.subs[label]
        want = render.EVENT_TYPES[event]
        while True:
            left = end - time.monotonic()
            try:
                at, hnot, exc = sub.events.get(timeout=max(left, 0.001))
            except queue.Empty:
                self.log("wait %s %s -> none within %gt" % (label, event, within))
                return
            if exc is None and hnot.get("type") == want:
                self.log("wait %s %s -> %s%s" % (
                    label, event, render.event(hnot, self.names),
                    " " + render.ticks(at - self.mark_time, self.tick) if timed else ""))
                return
            self._event_line(label, hnot, exc)
            if exc is not None:
                self.log("wait %s %s -> subscriber closed" % (label, event))
                return

    # ------------------------------------------------------------ the HA control API

    def connect(self, node: str, token: str = TOKEN, label: Optional[str] = None) -> str:
        """A new HA control socket to ``node`` (it replaces any earlier one on the daemon)."""
        label = label or node
        sock = self._open("%s connect" % label, ha.connect, token, self.ip(node), IPC_PORT)
        if sock is None:
            self.settle()
            return label
        old = self.socks.get(label)
        if old is not None:
            old.close()
        self.socks[label] = sock
        self.current[node] = label
        self.log("%s connect" % label)
        self.settle()
        return label

    def _open(self, what: str, connect, *args) -> Optional[socket.socket]:
        """A new socket connected by ``connect(sock, *args)``; None (and ``what`` logged with
        the failure) when that fails."""
        sock = socket.socket()
        sock.settimeout(self.call_timeout)
        try:
            connect(sock, *args)
        except Exception as exc:
            sock.close()
            self.log("%s -> %s" % (what, render.exception(exc)))
            return None
        return sock

    def _sock(self, who: str) -> tuple:
        label = self.current.get(who, who)
        if label not in self.socks:
            self.connect(who) if who in self.specs else None
            label = self.current.get(who, who)
        return label, self.socks[label]

    def _call(self, who: str, text: str, fn, *args, timed: bool = False,
              timeout: Optional[float] = None):
        label, sock = self._sock(who)
        if timed:
            self.mark()
        sock.settimeout(self.call_timeout if timeout is None else timeout * self.tick)
        try:
            result = fn(sock, *args)
        except Exception as exc:
            out = render.exception(exc)
            result = exc
        else:
            out = "ok" if result is None else render.status(result, self.names)
        self.call_end = time.monotonic()
        self.log("%s %s -> %s%s" % (label, text, out, " " + self.since() if timed else ""))
        self.settle()
        return result

    def beprimary(self, who: str, nodeid, timed: bool = False, timeout: Optional[float] = None):
        return self._call(who, "beprimary(%s)" % render.nodeid(nodeid), ha.beprimary, nodeid,
                          timed=timed, timeout=timeout)

    def besecondary(self, who: str, me, pid, primary: str, wait: bool = True,
                    timed: bool = False, timeout: Optional[float] = None):
        """``primary`` is a node name (its address is used) or an address literal."""
        addr = self.ip(primary) if primary in self.specs else primary
        text = "besecondary(%s, %s, %s, %s)" % (render.nodeid(me), render.nodeid(pid),
                                               self.names.addr(addr), "wait" if wait else "async")
        return self._call(who, text, ha.besecondary, me, pid, addr, 1 if wait else 0, timed=timed,
                          timeout=timeout)

    def benone(self, who: str, timed: bool = False, timeout: Optional[float] = None):
        return self._call(who, "benone()", ha.benone, timed=timed, timeout=timeout)

    def berelay(self, who: str, timed: bool = False, timeout: Optional[float] = None):
        return self._call(who, "berelay()", ha.berelay, timed=timed, timeout=timeout)

    def secondary_dead(self, who: str, nodeid, timed: bool = False,
                       timeout: Optional[float] = None):
        return self._call(who, "secondary_dead(%s)" % render.nodeid(nodeid), ha.secondary_dead,
                          nodeid, timed=timed, timeout=timeout)

    def status(self, who: str, timed: bool = False, timeout: Optional[float] = None):
        """``status()``; ``timeout`` (ticks) bounds the wait for the reply."""
        return self._call(who, "status()", ha.status, timed=timed, timeout=timeout)
