"""``confd-ha emulate`` as a child process of this Python: :class:`EmulatorProcess`, and
the reading of the ready line it prints (:func:`parse_ready`)."""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
import tempfile
import time
from typing import IO, Any, Dict, List, Mapping, Optional

from .control import ControlClient
from .stop import stop_process

__all__ = ["EmulatorProcess", "EMULATE_CODE", "package_env", "parse_ready"]


def parse_ready(line: str) -> Dict[str, Any]:
    """The fields of a ready line: ``ipc_address``, ``ipc_port``, ``ha_address``, ``ha_port``,
    ``control``, ``flavour``, ``phase``, ``pid`` (and ``ipc_path``)."""
    words = line.split()
    if not words or words[0] != "ready":
        raise ValueError("not a ready line: %r" % line)
    kv = dict(w.split("=", 1) for w in words[1:] if "=" in w)
    out: Dict[str, Any] = {"control": kv.get("control"), "flavour": kv.get("flavour"),
           "phase": int(kv.get("phase", 2)), "pid": int(kv.get("pid", 0)),
           "ipc_path": kv.get("ipc-path")}
    for key in ("ipc", "ha"):
        host, _, port = kv[key].rpartition(":")
        out[key + "_address"] = host.strip("[]")
        out[key + "_port"] = int(port)
    return out


# The child's ``-c`` code. ``-c`` puts the current directory first on sys.path; it is dropped
# so that a source checkout in the cwd cannot shadow the installed package (whose compiled
# core the checkout may lack): the child imports the same confd_ha as its parent, through
# PYTHONPATH (package_env).
EMULATE_CODE = ("import sys; del sys.path[0]; from confd_ha.cli import main; "
                "sys.exit(main(sys.argv[1:]))")


def package_env(env: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """``env`` (default: ours) with PYTHONPATH leading to the imported ``confd_ha``."""
    import confd_ha

    out = dict(os.environ if env is None else env)
    root = os.path.dirname(os.path.dirname(os.path.abspath(confd_ha.__file__)))
    paths = [p for p in out.get("PYTHONPATH", "").split(os.pathsep) if p]
    if root not in paths:
        out["PYTHONPATH"] = os.pathsep.join([root] + paths)
    return out


class EmulatorProcess:
    """``confd-ha emulate ARGS…`` as a child process of this Python.

    :meth:`start` waits for the ready line (``TimeoutError``/``RuntimeError`` with the
    child's stderr if it does not come) and fills ``ready`` (the parsed ready line), from
    which ``ipc_address``, ``ipc_port``, ``ha_address``, ``ha_port``, ``ipc_path``,
    ``flavour`` and ``control_name`` are read. The child runs with
    ``--exit-on-stdin-eof``, so it stops by itself if this process dies. :meth:`terminate`
    (also on ``with`` exit) sends SIGTERM, waits, and kills if needed. stderr goes to an
    anonymous temporary file: :meth:`stderr_text`.
    """

    def __init__(self, *args: str, env: Optional[Mapping[str, str]] = None,
                 ready_timeout: float = 20.0, python: Optional[str] = None) -> None:
        self.args = [str(a) for a in args]
        self.env = package_env(env)
        self.ready_timeout = ready_timeout
        self.python = python or sys.executable
        self.proc: Optional["subprocess.Popen[bytes]"] = None
        self.ready: Optional[Dict[str, Any]] = None
        self._stderr: Optional[IO[bytes]] = None

    @property
    def argv(self) -> List[str]:
        return [self.python, "-c", EMULATE_CODE, "emulate", "--exit-on-stdin-eof"] + self.args

    def start(self) -> "EmulatorProcess":
        self._stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._stderr, env=self.env, close_fds=True)
        try:
            line = self._read_ready()
            self.ready = parse_ready(line)
        except BaseException:
            self.terminate()
            raise
        return self

    def _read_ready(self) -> str:
        end = time.monotonic() + self.ready_timeout
        buf = b""
        proc = self._child()
        fd = proc.stdout.fileno() if proc.stdout is not None else -1
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in buf:
                left = end - time.monotonic()
                if left <= 0:
                    raise TimeoutError("confd-ha emulate not ready within %ss; stderr:\n%s"
                                       % (self.ready_timeout, self.stderr_text()))
                if sel.select(left):
                    chunk = os.read(fd, 4096)
                    if not chunk:
                        proc.wait(5)
                        raise RuntimeError("confd-ha emulate exited with %s before it was ready;"
                                           " stderr:\n%s" % (proc.returncode, self.stderr_text()))
                    buf += chunk
                    if len(buf) > 65536:
                        raise RuntimeError("confd-ha emulate wrote no ready line: %r" % buf[:200])
        return buf.split(b"\n", 1)[0].decode("utf-8", "replace")

    def _ready(self, key: str) -> Any:
        if self.ready is None:
            raise RuntimeError("the emulator process is not ready (call start())")
        return self.ready[key]

    ipc_address = property(lambda self: self._ready("ipc_address"), doc="IPC address")
    ipc_port = property(lambda self: self._ready("ipc_port"), doc="actual IPC port")
    ha_address = property(lambda self: self._ready("ha_address"), doc="HA address")
    ha_port = property(lambda self: self._ready("ha_port"), doc="HA port")
    ipc_path = property(lambda self: self._ready("ipc_path"), doc="AF_UNIX IPC path or None")
    flavour = property(lambda self: self._ready("flavour"), doc="'confd' or 'nso'")
    control_name = property(lambda self: self._ready("control"),
                            doc="control endpoint as printed (``@name`` or a path)")

    @property
    def pid(self) -> Optional[int]:
        return self.proc.pid if self.proc is not None else None

    @property
    def returncode(self) -> Optional[int]:
        return self.proc.poll() if self.proc is not None else None

    def client(self, timeout: float = 30.0) -> ControlClient:
        """A :class:`~confd_ha.testing.control.ControlClient` to this node."""
        name: str = self._ready("control")
        if name.startswith("@"):
            return ControlClient(self.ipc_address, self.ipc_port, timeout=timeout)
        return ControlClient(path=name, timeout=timeout)

    def control(self, op: str, **args: Any) -> Any:
        """One control request (``info``, ``set``, ``kill``, …); returns its result."""
        with self.client() as c:
            return c.request(op, **args)

    def send_signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def _child(self) -> "subprocess.Popen[bytes]":
        if self.proc is None:
            raise RuntimeError("the emulator process is not started (call start())")
        return self.proc

    def wait(self, timeout: Optional[float] = None) -> int:
        return self._child().wait(timeout)

    def terminate(self, timeout: float = 10.0) -> Optional[int]:
        """SIGTERM, wait up to ``timeout``, then SIGKILL; close the pipes. Returns the exit
        status (negative: killed by that signal)."""
        proc = self.proc
        if proc is None:
            return None
        try:
            stop_process(proc, timeout)
        finally:
            for f in (proc.stdin, proc.stdout):
                if f is not None:
                    try:
                        f.close()
                    except OSError:  # pragma: no cover
                        pass
        return proc.returncode

    def stderr_text(self) -> str:
        if self._stderr is None:
            return ""
        try:
            self._stderr.seek(0)
            return self._stderr.read().decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""

    def close(self) -> None:
        """:meth:`terminate` and drop the stderr file."""
        try:
            self.terminate()
        finally:
            if self._stderr is not None:
                self._stderr.close()
                self._stderr = None

    def __enter__(self) -> "EmulatorProcess":
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = "" if self.ready is None else " %s:%s" % (self.ready["ipc_address"],
                                                          self.ready["ipc_port"])
        return "<EmulatorProcess pid=%s%s>" % (self.pid, where)
