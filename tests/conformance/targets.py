"""What a conformance scenario runs on: real ConfD processes, or emulated nodes as processes.

Both targets start one operating-system process per node, with its IPC and HA listeners on
that node's own loopback address (IPC port 4565, HA port 4569, as ConfD's defaults), so that
the faults of a scenario -- kill -9, SIGSTOP/SIGCONT, restart -- are the same signals on both.

* :class:`RealConfD` runs ``bin/confd --foreground`` of a ConfD installation (the user points
  the suite at one: ``--realconfd DIR`` or ``REALCONFD_DIR``). Each node gets its own
  ``confd.conf``, CDB directory and logs under a temporary directory; the developer log is at
  trace level, so ``log/devel.log`` explains every HA step.
* :class:`Emulator` runs ``confd-ha emulate`` with the same addresses and tick timeout and a
  data directory, so that a restart keeps the datastore. Its outgoing HA connections are not
  bound to the node's address (``--no-bind-source``), as ConfD's are not, so that both report
  the same source addresses.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Optional

from confd_ha.testing.process import EmulatorProcess

IPC_PORT = 4565
HA_PORT = 4569
TOKEN = "tok"      # the HA token of every scenario's control sockets, unless it says otherwise


@dataclass
class NodeSpec:
    """How one node of a scenario is configured."""

    name: str
    ip: str
    tick: float
    access_secret: Optional[bytes] = None   # IPC access check on, with this secret
    phase0: bool = False                    # start in start phase 0
    quirks: bool = False                    # emulator only: reproduce ConfD's robustness defects


class TargetError(RuntimeError):
    """A node could not be started or controlled (not a behaviour under test)."""


class Target:
    """One kind of node. Subclasses start processes; the signals are common."""

    name = "?"

    def __init__(self, workdir: str):
        self.workdir = workdir
        self.procs: dict = {}

    def node_dir(self, spec: NodeSpec) -> str:
        path = os.path.join(self.workdir, spec.name)
        os.makedirs(path, exist_ok=True)
        return path

    def access_file(self, spec: NodeSpec) -> Optional[str]:
        if spec.access_secret is None:
            return None
        path = os.path.join(self.node_dir(spec), "ipc_access")
        with open(path, "wb") as f:
            f.write(spec.access_secret)
        return path

    def start(self, spec: NodeSpec) -> None:
        raise NotImplementedError

    def pid(self, spec: NodeSpec) -> int:
        raise NotImplementedError

    def signal(self, spec: NodeSpec, sig: int) -> None:
        try:
            os.kill(self.pid(spec), sig)
        except ProcessLookupError:
            raise TargetError("node %s is not running" % spec.name) from None

    def kill(self, spec: NodeSpec) -> None:
        """kill -9, and wait until the process is gone (its sockets are then closed)."""
        self.signal(spec, signal.SIGKILL)
        self._reap(spec)

    def freeze(self, spec: NodeSpec) -> None:
        self.signal(spec, signal.SIGSTOP)

    def thaw(self, spec: NodeSpec) -> None:
        self.signal(spec, signal.SIGCONT)

    def stop(self, spec: NodeSpec) -> None:
        """An orderly stop (SIGTERM), waited for; SIGKILL if it takes too long."""
        raise NotImplementedError

    def _reap(self, spec: NodeSpec) -> None:
        raise NotImplementedError

    def stop_all(self) -> None:
        for name in list(self.procs):
            proc = self.procs.pop(name)
            try:
                self._terminate(proc)
            except Exception:  # pragma: no cover - best effort at teardown
                pass

    def _terminate(self, proc) -> None:
        raise NotImplementedError

    def version(self) -> str:
        raise NotImplementedError


# ================================================================ real ConfD

_CONF = """<confdConfig xmlns="http://tail-f.com/ns/confd_cfg/1.0">
  <loadPath><dir>{dist}/etc/confd</dir></loadPath>
  <stateDir>{d}/state</stateDir>
  <confdIpcAddress><ip>{ip}</ip><port>{ipc_port}</port></confdIpcAddress>
  {access}
  <cdb><enabled>true</enabled><dbDir>{d}/cdb</dbDir><operational><enabled>false</enabled></operational></cdb>
  <logs>
    <confdLog><enabled>true</enabled><file><enabled>true</enabled><name>{d}/log/confd.log</name></file></confdLog>
    <developerLog><enabled>true</enabled><file><enabled>true</enabled><name>{d}/log/devel.log</name></file></developerLog>
    <developerLogLevel>trace</developerLogLevel>
  </logs>
  <ha><enabled>true</enabled><ip>{ip}</ip><port>{ha_port}</port><tickTimeout>{tick}</tickTimeout></ha>
  <datastores><candidate><enabled>false</enabled></candidate></datastores>
  <netconf><enabled>false</enabled></netconf><cli><enabled>false</enabled></cli><webui><enabled>false</enabled></webui>
</confdConfig>
"""


def _duration(seconds: float) -> str:
    """An xs:duration for ConfD's tickTimeout (fractions of a second allowed)."""
    text = ("%.3f" % seconds).rstrip("0").rstrip(".")
    return "PT%sS" % text


class RealConfD(Target):
    """ConfD processes from an installation directory (``bin/confd``)."""

    name = "confd"

    def __init__(self, workdir: str, dist: str):
        super().__init__(workdir)
        self.dist = os.path.abspath(dist)
        if not os.access(os.path.join(self.dist, "bin", "confd"), os.X_OK):
            raise TargetError("%s has no bin/confd" % self.dist)

    def version(self) -> str:
        try:
            with open(os.path.join(self.dist, "VERSION")) as f:
                found = re.search(r"version (\d[\w.]*)", f.read())
        except OSError:
            found = None
        return found.group(1) if found else "unknown"

    def start(self, spec: NodeSpec) -> None:
        d = self.node_dir(spec)
        for sub in ("state", "cdb", "log"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        access = ""
        path = self.access_file(spec)
        if path is not None:
            access = ("<confdIpcAccessCheck><enabled>true</enabled><filename>%s</filename>"
                      "</confdIpcAccessCheck>" % path)
        conf = os.path.join(d, "confd.conf")
        with open(conf, "w") as f:
            f.write(_CONF.format(dist=self.dist, d=d, ip=spec.ip, ipc_port=IPC_PORT,
                                 ha_port=HA_PORT, tick=_duration(spec.tick), access=access))
        log = os.path.join(d, "log", "confd.log")
        mark = os.path.getsize(log) if os.path.exists(log) else 0
        argv = [os.path.join(self.dist, "bin", "confd"), "-c", conf, "--foreground"]
        if spec.phase0:
            argv.append("--start-phase0")
        env = dict(os.environ, CONFD_DIR=self.dist)
        out = open(os.path.join(d, "stdout.txt"), "ab")
        # bin/confd is a shell script that execs the VM: the PID is the daemon's.
        proc = subprocess.Popen(argv, cwd=d, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, close_fds=True)
        out.close()
        self.procs[spec.name] = proc
        want = "ConfD phase0 started" if spec.phase0 else "ConfD started"
        end = time.monotonic() + 60
        while time.monotonic() < end:
            if proc.poll() is not None:
                raise TargetError("ConfD %s exited with %s at start" % (spec.name, proc.returncode))
            if _log_has(log, mark, want):
                return
            time.sleep(0.05)
        raise TargetError("ConfD %s did not start within 60 s" % spec.name)

    def start_phase(self, spec: NodeSpec, phase: int) -> None:
        """Advance a node started in phase 0 (``confd --start-phase1|2``)."""
        env = dict(os.environ, CONFD_DIR=self.dist, CONFD_IPC_ADDR=spec.ip,
                   CONFD_IPC_PORT=str(IPC_PORT))
        subprocess.run([os.path.join(self.dist, "bin", "confd"), "--start-phase%d" % phase],
                       env=env, check=True, capture_output=True, timeout=60)

    def pid(self, spec: NodeSpec) -> int:
        proc = self.procs.get(spec.name)
        if proc is None or proc.poll() is not None:
            raise TargetError("node %s is not running" % spec.name)
        return proc.pid

    def _reap(self, spec: NodeSpec) -> None:
        proc = self.procs.pop(spec.name)
        proc.wait(30)

    def stop(self, spec: NodeSpec) -> None:
        proc = self.procs.pop(spec.name)
        self._terminate(proc)

    def _terminate(self, proc) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(30)


def _log_has(path: str, offset: int, text: str) -> bool:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return text.encode() in f.read()
    except OSError:
        return False


# ================================================================ the emulator


class Emulator(Target):
    """``confd-ha emulate`` processes."""

    name = "emulator"

    def version(self) -> str:
        import confd_ha

        return "confd_ha " + confd_ha.__version__

    def start(self, spec: NodeSpec) -> None:
        d = self.node_dir(spec)
        args = ["--name", spec.name, "--ipc-address", spec.ip, "--ipc-port", str(IPC_PORT),
                "--ha-port", str(HA_PORT), "--tick-timeout", repr(spec.tick),
                "--data-dir", os.path.join(d, "data"), "--no-bind-source",
                "--log-level", os.environ.get("CONFORMANCE_EMULATOR_LOG", "warning")]
        path = self.access_file(spec)
        if path is not None:
            args += ["--ipc-access-file", path]
        if spec.phase0:
            args += ["--start-phase", "0"]
        if spec.quirks:
            args.append("--confd-quirks")
        proc = EmulatorProcess(*args, ready_timeout=60)
        try:
            proc.start()
        except (RuntimeError, TimeoutError) as exc:
            raise TargetError(str(exc)) from None
        self.procs[spec.name] = proc

    def start_phase(self, spec: NodeSpec, phase: int) -> None:
        self.procs[spec.name].control("phase", phase=phase)

    def pid(self, spec: NodeSpec) -> int:
        proc = self.procs.get(spec.name)
        if proc is None or proc.returncode is not None:
            raise TargetError("node %s is not running" % spec.name)
        return proc.pid

    def _reap(self, spec: NodeSpec) -> None:
        proc = self.procs.pop(spec.name)
        proc.wait(30)
        proc.close()

    def stop(self, spec: NodeSpec) -> None:
        proc = self.procs.pop(spec.name)
        self._terminate(proc)

    def _terminate(self, proc) -> None:
        proc.send_signal(signal.SIGCONT)
        proc.close()


def make_workdir() -> str:
    return tempfile.mkdtemp(prefix="confd-ha-conformance-")


def remove_workdir(path: str, keep: bool = False) -> None:
    if keep:
        sys.stderr.write("conformance: node files kept in %s\n" % path)
        return
    shutil.rmtree(path, ignore_errors=True)
