"""The daemon state a case runs in: four nodes, n1..n4 on 127.78.0.1..4 (IPC port 4565, HA
port 4569), real ConfD processes (live) or emulated nodes as processes (CI).

Before each side of a case the world is *prepared*: every node is ordered to NONE and the
case's setup actions are applied, so both sides meet the same state. Setup is driven with
``confd_ha`` over the world's own sockets (the subject of a case always opens its own); a
setup that does not reach its state raises :class:`SetupError`, which is a harness failure,
not an outcome.

Setup actions: ``("primary", node[, token])``, ``("secondary", node, primary)``,
``("relay", node)``; the nodes' ids are their names.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time

import confd_ha as ha

NODES = {"n1": "127.78.0.1", "n2": "127.78.0.2", "n3": "127.78.0.3", "n4": "127.78.0.4"}
CLOSED_IP = "127.78.0.9"      # no process listens there
IPC_PORT = 4565
HA_PORT = 4569
TOKEN = "differential-token"
OTHER_TOKEN = "another-token"
TICK = 2.0
SETTLE = 10.0                 # seconds a setup step may take to show in status()


class SetupError(RuntimeError):
    """The world could not be brought into a case's state."""


# ---------------------------------------------------------------- launchers


class EmulatorLauncher:
    """``confd-ha emulate`` processes (CI), with ``--confd-quirks``: the cases include ConfD's
    robustness defects (a non-binary node id crashes the primary's HA subsystem), and the
    recording is of the real thing."""

    kind = "emulator"

    def __init__(self):
        from confd_ha.testing.process import EmulatorProcess

        self._cls = EmulatorProcess
        self.workdir = tempfile.mkdtemp(prefix="confd-ha-differential-")
        self.procs: dict = {}

    def start(self, name: str) -> None:
        ip = NODES[name]
        proc = self._cls("--name", name, "--ipc-address", ip, "--ipc-port", str(IPC_PORT),
                         "--ha-port", str(HA_PORT), "--tick-timeout", repr(TICK),
                         "--data-dir", os.path.join(self.workdir, name), "--no-bind-source",
                         "--confd-quirks", "--log-level", "error", ready_timeout=60)
        proc.start()
        self.procs[name] = proc

    def kill(self, name: str) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(9)
        proc.wait(30)
        proc.close()

    def discard(self, name: str) -> None:
        """Stop the node if it still runs (it may have crashed)."""
        self.procs.pop(name).close()

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.procs.pop(name).close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def version(self) -> str:
        return "confd_ha " + ha.__version__


class RealLauncher:
    """``bin/confd`` processes of a ConfD installation (live), through the conformance
    suite's launcher."""

    kind = "confd"

    def __init__(self, dist: str):
        from conformance.targets import NodeSpec, RealConfD, make_workdir

        self._spec = NodeSpec
        self.target = RealConfD(make_workdir(), dist)
        self.specs: dict = {}

    def start(self, name: str) -> None:
        spec = self.specs.setdefault(name, self._spec(name, NODES[name], TICK))
        self.target.start(spec)

    def kill(self, name: str) -> None:
        self.target.kill(self.specs[name])

    def discard(self, name: str) -> None:
        """Stop the node if it still runs (it may have crashed)."""
        proc = self.target.procs.pop(name)
        if proc.poll() is None:
            self.target._terminate(proc)

    def stop_all(self) -> None:
        self.target.stop_all()
        shutil.rmtree(self.target.workdir, ignore_errors=True)

    def version(self) -> str:
        return self.target.version()


# ---------------------------------------------------------------- the world


class World:
    """Four nodes and the sockets a case opens; see the module docstring."""

    def __init__(self, launcher):
        self.launcher = launcher
        self.dead: set = set()
        self._drivers: dict = {}

    def start(self) -> "World":
        try:
            for name in NODES:
                self.launcher.start(name)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for s in self._drivers.values():
            s.close()
        self._drivers.clear()
        self.launcher.stop_all()

    @staticmethod
    def ip(name: str) -> str:
        return NODES[name]

    # -- driving the nodes

    def driver(self, name: str, token: str = TOKEN) -> socket.socket:
        """A fresh HA control socket to ``name`` (replacing the node's previous one)."""
        old = self._drivers.pop(name, None)
        if old is not None:
            old.close()
        s = socket.socket()
        s.settimeout(30)
        ha.connect(s, token, NODES[name], IPC_PORT)
        self._drivers[name] = s
        return s

    def kill(self, name: str) -> None:
        """kill -9 the node; it is started again by the next :meth:`prepare`."""
        self.launcher.kill(name)
        self.dead.add(name)
        s = self._drivers.pop(name, None)
        if s is not None:
            s.close()

    def renew(self, name: str) -> None:
        """Replace the node by a fresh process at the next :meth:`prepare` (after a case
        that may have crashed it)."""
        if name not in self.dead:
            self.launcher.discard(name)
            self.dead.add(name)
        s = self._drivers.pop(name, None)
        if s is not None:
            s.close()

    def prepare(self, setup=()) -> None:
        """Every node to NONE, then the setup actions; raises :class:`SetupError`."""
        for name in sorted(self.dead):
            self.launcher.start(name)
            self.dead.discard(name)
        step = "reset"
        try:
            for name in NODES:
                step = "reset " + name
                s = self.driver(name)
                if ha.status(s)[0] != ha.STATE_NONE:
                    ha.benone(s)
            for name in NODES:
                self._wait(name, lambda st: st[0] == ha.STATE_NONE, "NONE")
            for action in setup:
                step = repr(action)
                self.act(action)
        except (ha.error.Error, ha.error.EOF, OSError) as exc:
            raise SetupError("setup %r at %s: %s: %s" % (setup, step, type(exc).__name__,
                                                         exc)) from exc

    def act(self, action) -> None:
        """One setup action (module docstring), waited for until status() shows it."""
        kind, name = action[0], action[1]
        if kind == "primary":
            token = action[2] if len(action) > 2 else TOKEN
            ha.beprimary(self.driver(name, token), name)
            self._wait(name, lambda st: st[0] == ha.STATE_PRIMARY, "PRIMARY")
        elif kind == "secondary":
            primary = action[2]
            ha.besecondary(self._drivers.get(name) or self.driver(name), name, primary,
                           NODES[primary], 1)
            self._wait(name, lambda st: st[0] == ha.STATE_SECONDARY, "SECONDARY")
            self._wait(primary, lambda st: any(n["nodeid"] == name for n in st[1]),
                       "%s listing %s" % (primary, name))
        elif kind == "relay":
            ha.berelay(self._drivers.get(name) or self.driver(name))
            self._wait(name, lambda st: st[0] == ha.STATE_SECONDARY_RELAY, "RELAY")
        else:
            raise ValueError("unknown setup action %r" % (action,))

    def _wait(self, name: str, pred, what: str) -> None:
        s = self._drivers.get(name) or self.driver(name)
        end = time.monotonic() + SETTLE
        while True:
            st = ha.status(s)
            if pred(st):
                return
            if time.monotonic() > end:
                raise SetupError("%s did not reach %s (status %r)" % (name, what, st))
            time.sleep(0.02)
