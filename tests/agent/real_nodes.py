"""Real ConfD nodes for the agent's scenarios (the live variant, issue 12 item 5).

One ConfD process per node, started by the conformance suite's
:class:`conformance.targets.RealConfD` target (its own ``confd.conf``, CDB and logs in a
temporary directory; IPC port 4565 and HA port 4569 on the node's own loopback address
127.84.<k>.1-3). The user points the suite at a ConfD installation (``--realconfd DIR`` or
``REALCONFD_DIR``); without one the live tests skip.

A node's HA state is read without an HA socket (which would replace the agent's): ConfD's own
``confd_cmd`` reads ``/confd-state/ha/mode`` (operational data, ``enum<N>`` in the YANG order
of tailf-common-monitoring2: 0 none, 1 secondary, 2 primary, 3 relay-secondary) in a
read-only MAAPI transaction (``mrtrans``: a read-write one is refused on a secondary, which is
in read-only mode), without loading the schemas (``-m``: ~4 ms a read instead of ~17 ms; the
value still comes as ``enum<N>``). Each read is a process of its own: the checker runs the
three nodes' reads in parallel threads, and the live tests print the sampling period achieved.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import threading
from typing import Callable, Iterable, List, Optional, Sequence, Set, Tuple

import confd_ha
from confd_ha import STATE_NONE, STATE_PRIMARY, STATE_SECONDARY, STATE_SECONDARY_RELAY
from confd_ha.testing.ha_nodes import NAMES, Nodes

from conformance.targets import IPC_PORT, NodeSpec, RealConfD, make_workdir

MODES = [STATE_NONE, STATE_SECONDARY, STATE_PRIMARY, STATE_SECONDARY_RELAY]
READ_TIMEOUT = 1.0   # a frozen node does not answer: its state is unknown (None)
_ENUM = re.compile(r"^enum<(\d+)>$")


class RealNodes(Nodes):
    """Three real ConfD nodes on 127.84.<k>.1-3 (see the module docstring)."""

    kind = "confd"
    no_partition = ("a partition between real ConfD nodes is not possible here: ConfD has no "
                    "fault injection (the emulator's partition), and these tests may not "
                    "change the host's firewall")

    def __init__(self, k: int, dist: str, *, tick_timeout: float = 0.5,
                 names: Sequence[str] = NAMES) -> None:
        super().__init__(names)
        self.dist = os.path.abspath(dist)
        self.confd_cmd = os.path.join(self.dist, "bin", "confd_cmd")
        self.workdir = make_workdir()
        self.target = RealConfD(self.workdir, self.dist)
        self.specs = [NodeSpec(name, "127.84.%d.%d" % (k, i + 1), tick_timeout)
                      for i, name in enumerate(self.names)]
        self._env = dict(os.environ, CONFD_DIR=self.dist)
        self._lock = threading.Lock()    # RealConfD's process table
        try:
            self._parallel(self.start, range(len(self.specs)))
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _parallel(fn: Callable[[int], None], items: Iterable[int]) -> None:
        errors: List[BaseException] = []

        def one(i: int) -> None:
            try:
                fn(i)
            except BaseException as exc:   # re-raised below, in the caller's thread
                errors.append(exc)
        threads = [threading.Thread(target=one, args=(i,)) for i in items]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]

    def version(self) -> str:
        return self.target.version()

    def ip(self, i: int) -> str:
        return self.specs[i].ip

    def ipc(self, i: int) -> Tuple[str, int]:
        return self.specs[i].ip, IPC_PORT

    def pids(self) -> List[int]:
        """The PIDs of the running nodes."""
        with self._lock:
            return [p.pid for p in self.target.procs.values() if p.poll() is None]

    def _cmd(self, i: int, script: str) -> Optional[subprocess.CompletedProcess]:
        try:
            return subprocess.run(
                [self.confd_cmd, "-a", self.specs[i].ip, "-p", str(IPC_PORT), "-m", "-c",
                 script],
                env=self._env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                timeout=READ_TIMEOUT)
        except subprocess.TimeoutExpired:   # (the child is killed and reaped by run())
            return None

    def state(self, i: int) -> Optional[int]:
        done = self._cmd(i, "mrtrans; mget /confd-state/ha/mode")
        if done is None or done.returncode != 0:
            return None
        found = _ENUM.match(done.stdout.strip())
        if not found or int(found.group(1)) >= len(MODES):
            return None
        return MODES[int(found.group(1))]

    def connected(self, i: int) -> Set[str]:
        done = self._cmd(i, "mrtrans; mget /confd-state/ha/connected-secondary")
        if done is None or done.returncode != 0:
            return set()
        return set(done.stdout.split())

    def kill(self, i: int) -> None:
        with self._lock:
            proc = self.target.procs.pop(self.specs[i].name)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)

    def start(self, i: int) -> None:
        spec = self.specs[i]
        with self._lock:
            proc = self.target.procs.get(spec.name)
        if proc is not None and proc.poll() is None:
            raise RuntimeError("node %s is running" % spec.name)
        self.target.start(spec)

    def restart(self, i: int) -> None:
        with self._lock:
            proc = self.target.procs.pop(self.specs[i].name)
        self.target._terminate(proc)
        self.start(i)

    def freeze(self, i: int) -> None:
        self.target.freeze(self.specs[i])

    def thaw(self, i: int) -> None:
        self.target.thaw(self.specs[i])

    def connect_ha(self, i: int, token: str) -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(10)
        try:
            confd_ha.connect(s, token, self.specs[i].ip, IPC_PORT)
        except BaseException:
            s.close()
            raise
        return s

    def log(self, i: int, name: str = "devel.log", limit: int = 4000) -> str:
        path = os.path.join(self.workdir, self.specs[i].name, "log", name)
        try:
            with open(path, "rb") as f:
                f.seek(max(0, os.path.getsize(path) - limit))
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def close(self) -> None:
        self.target.stop_all()
        if os.environ.get("REALCONFD_KEEP"):
            print("real ConfD node files kept in %s" % self.workdir)
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)
