"""The emulator as an operating-system process: ``confd-ha emulate``, and a handle to run it
as a child process (:class:`EmulatorProcess`).

``confd-ha emulate`` runs one emulated node until SIGTERM or SIGINT. Once its IPC listener
and control endpoint are up it prints exactly one line on stdout (``--json``: its fields as
one JSON object)::

    ready ipc=127.0.0.1:4565 ha=127.0.0.1:4569 control=@confd-ha-ctl:127.0.0.1:4565 flavour=confd phase=2 pid=4242

(IPv6 addresses in brackets; ``ipc-path=…`` is added with ``--ipc-path``). The HA listener is
bound only when the node becomes primary or relay, so ``ha=`` is the configured address.
Logs go to stderr at ``--log-level``. Exit status: 0 after a signal (clean stop), 2 bad
options, 3 a listener could not be opened, 1 any other start failure (e.g. the data
directory is locked by another node): failures are raised as
:class:`~confd_ha.cli_errors.CliError`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import IO, Optional

from ..cli_errors import EXIT_OK, EXIT_REFUSED, EXIT_UNREACHABLE, CliError, hostport
from .config import config_from_args  # noqa: F401 -- re-exported (emulate's options)

log = logging.getLogger("confd_ha.emulator")


# ================================================================ confd-ha emulate


def ready_line(node, control) -> str:
    """The one line ``confd-ha emulate`` prints when it is ready."""
    cfg = node.config
    parts = ["ready", "ipc=" + hostport(cfg.ipc_address, node.ipc_port),
             "ha=" + hostport(cfg.ha_address, cfg.ha_port),
             "control=" + control.display_name, "flavour=" + cfg.flavour,
             "phase=%d" % node.start_phase, "pid=%d" % os.getpid()]
    if cfg.ipc_path:
        parts.append("ipc-path=" + cfg.ipc_path)
    return " ".join(parts)


def ready_object(node, control) -> dict:
    """The ready line's fields as ``confd-ha emulate --json`` prints them."""
    cfg = node.config
    return {"ready": True, "ipc": {"address": cfg.ipc_address, "port": node.ipc_port,
                                   "path": cfg.ipc_path},
            "ha": {"address": cfg.ha_address, "port": cfg.ha_port},
            "control": control.display_name, "flavour": cfg.flavour,
            "phase": node.start_phase, "pid": os.getpid()}


def parse_ready(line: str) -> dict:
    """The fields of a ready line: ``ipc_address``, ``ipc_port``, ``ha_address``, ``ha_port``,
    ``control``, ``flavour``, ``phase``, ``pid`` (and ``ipc_path``)."""
    words = line.split()
    if not words or words[0] != "ready":
        raise ValueError("not a ready line: %r" % line)
    kv = dict(w.split("=", 1) for w in words[1:] if "=" in w)
    out = {"control": kv.get("control"), "flavour": kv.get("flavour"),
           "phase": int(kv.get("phase", 2)), "pid": int(kv.get("pid", 0)),
           "ipc_path": kv.get("ipc-path")}
    for key in ("ipc", "ha"):
        host, _, port = kv[key].rpartition(":")
        out[key + "_address"] = host.strip("[]")
        out[key + "_port"] = int(port)
    return out


def run_emulate(args, out, err) -> int:
    """``confd-ha emulate``: run one node until SIGTERM/SIGINT (see the module docstring).
    In the main thread it handles SIGTERM and SIGINT itself while it runs and leaves them
    *ignored* afterwards if they had their default handlers (the process is about to exit;
    an in-process caller that goes on should restore them). In another thread it installs
    no handlers: stdin EOF (``--exit-on-stdin-eof``) or the process ending stops it."""
    level = _log_level(args)
    config = config_from_args(args)
    logger = logging.getLogger("confd_ha")
    handler = logging.StreamHandler(err)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    old_level, old_propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(getattr(logging, level.upper()))
    logger.propagate = False
    # Python-level handlers for the whole run (not loop.add_signal_handler, which the loop
    # removes when it closes): a second SIGTERM during the final teardown must not turn a
    # clean exit into death by signal.
    signals = _Signals()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, signals.handler)
    try:
        return asyncio.run(_emulate(config, args, out, err, signals))
    finally:
        for sig, old in previous.items():
            # After the stop the process is about to exit: a late signal (a supervisor
            # repeating itself) must not turn the clean exit into death by signal -- and
            # Python resets its own handlers to SIG_DFL early in interpreter finalization,
            # so only SIG_IGN closes that window. Non-default handlers are restored.
            if old in (signal.SIG_DFL, signal.default_int_handler):
                signal.signal(sig, signal.SIG_IGN)
            else:
                signal.signal(sig, old)
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        logger.propagate = old_propagate


def _log_level(args) -> str:
    """--log-level (checked by the parser), else -q error, -v info, -vv debug, or warning."""
    verbose = getattr(args, "verbose", 0) or 0
    return str(getattr(args, "log_level", None) or (
        "debug" if verbose > 1 or getattr(args, "debug", False) else "info" if verbose
        else "error" if getattr(args, "quiet", False) else "warning")).lower()


class _Signals:
    """Signals received, forwarded to the running loop (``callback(name)``) once it is set."""

    def __init__(self):
        self.loop = None
        self.callback = None
        self.pending = []
        self.done = False

    def handler(self, signum, frame) -> None:
        name = signal.Signals(signum).name
        if self.callback is None:
            if not self.done and len(self.pending) < 2:
                self.pending.append(name)  # before the loop runs: stop as soon as it does
            return
        try:
            self.loop.call_soon_threadsafe(self.callback, name)
        except RuntimeError:  # the loop is closing: the node is being stopped anyway
            pass

    def attach(self, loop, callback) -> None:
        self.loop, self.callback = loop, callback
        for name in self.pending:
            callback(name)
        self.pending.clear()

    def detach(self) -> None:
        self.callback = None
        self.done = True


async def _emulate(config, args, out, err, signals: "_Signals") -> int:
    from .control import ControlServer
    from .node import Node
    from .store import StoreError

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    hard = asyncio.Event()

    def on_signal(signame: str) -> None:
        if stop.is_set():
            log.warning("%s again: killing the node", signame)
            hard.set()
        else:
            log.info("%s: stopping", signame)
        stop.set()

    signals.attach(loop, on_signal)
    stdin_fd = None
    if getattr(args, "exit_on_stdin_eof", False):
        stdin_fd = _watch_stdin(loop, stop)
    node = Node(config)
    control = ControlServer(node, path=getattr(args, "control_path", None))
    try:
        try:
            await node.start()
        except OSError as exc:
            if exc.filename:  # the data directory or the access file, not a listener
                raise CliError("cannot start the node: %s: %s" % (
                    exc.filename, exc.strerror or exc), EXIT_REFUSED, "failed") from None
            where = hostport(config.ipc_address, config.ipc_port)
            if config.ipc_path:
                where += " or " + config.ipc_path
            raise CliError("cannot listen on %s: %s" % (where, exc.strerror or exc),
                           EXIT_UNREACHABLE, "unreachable", where) from None
        except StoreError as exc:
            raise CliError("cannot open the datastore: %s" % exc, EXIT_REFUSED,
                           "failed") from None
        except Exception as exc:  # anything else: a message, not a traceback
            log.debug("start failed", exc_info=True)
            raise CliError("cannot start the node: %s" % exc, EXIT_REFUSED, "failed") from None
        config.ipc_port = node.ipc_port  # a restart through the control endpoint keeps the port
        try:
            await control.start()
        except OSError as exc:
            await node.kill()
            raise CliError("cannot open the control endpoint: %s" % (exc.strerror or exc),
                           EXIT_UNREACHABLE, "unreachable") from None
        if getattr(args, "json", False):
            print(json.dumps(ready_object(node, control)), file=out, flush=True)
        else:
            print(ready_line(node, control), file=out, flush=True)
        log.info("%s ready", config.name)
        await stop.wait()
        await control.stop()
        stopping = asyncio.ensure_future(node.stop())
        hard_wait = asyncio.ensure_future(hard.wait())
        done, _ = await asyncio.wait({stopping, hard_wait}, timeout=10,
                                     return_when=asyncio.FIRST_COMPLETED)
        hard_wait.cancel()
        if stopping not in done:
            stopping.cancel()
            await asyncio.gather(stopping, return_exceptions=True)
        if node.running:
            await node.kill()
        return EXIT_OK
    finally:
        await control.stop()
        if node.running:
            await node.kill()
        if stdin_fd is not None:
            loop.remove_reader(stdin_fd)
        signals.detach()


def _watch_stdin(loop, stop: asyncio.Event) -> Optional[int]:
    """Set ``stop`` when stdin reaches end-of-file. Returns the fd watched by the loop, or
    None when a daemon thread watches instead (stdin a regular file or a device, which
    epoll cannot watch) or there is no stdin."""
    try:
        fd = sys.stdin.fileno()
    except (AttributeError, OSError, ValueError):
        log.warning("--exit-on-stdin-eof: there is no stdin to watch")
        return None

    def eof() -> None:
        log.info("stdin closed: stopping")
        stop.set()

    def on_readable() -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(fd)
            eof()

    try:
        loop.add_reader(fd, on_readable)
        return fd
    except (OSError, ValueError):
        pass

    def reader() -> None:
        while True:
            try:
                if not os.read(fd, 65536):
                    break
            except OSError:
                break
            time.sleep(0.05)  # a source that never ends (/dev/zero) must not burn a core
        try:
            loop.call_soon_threadsafe(eof)
        except RuntimeError:  # the loop is gone already
            pass

    threading.Thread(target=reader, name="confd-ha-stdin", daemon=True).start()
    return None


# ================================================================ a child process


# The child's ``-c`` code. ``-c`` puts the current directory first on sys.path; it is dropped
# so that a source checkout in the cwd cannot shadow the installed package (whose compiled
# core the checkout may lack): the child imports the same confd_ha as its parent, through
# PYTHONPATH (package_env).
EMULATE_CODE = ("import sys; del sys.path[0]; from confd_ha.cli import main; "
                "sys.exit(main(sys.argv[1:]))")


def package_env(env: Optional[dict] = None) -> dict:
    """``env`` (default: ours) with PYTHONPATH leading to the imported ``confd_ha``."""
    import confd_ha

    env = dict(os.environ if env is None else env)
    root = os.path.dirname(os.path.dirname(os.path.abspath(confd_ha.__file__)))
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if root not in paths:
        env["PYTHONPATH"] = os.pathsep.join([root] + paths)
    return env


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

    def __init__(self, *args: str, env: Optional[dict] = None, ready_timeout: float = 20.0,
                 python: Optional[str] = None):
        self.args = [str(a) for a in args]
        self.env = package_env(env)
        self.ready_timeout = ready_timeout
        self.python = python or sys.executable
        self.proc: Optional[subprocess.Popen] = None
        self.ready: Optional[dict] = None
        self._stderr: Optional[IO[bytes]] = None

    @property
    def argv(self) -> list:
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

    def _ready(self, key: str):
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

    def client(self, timeout: float = 30.0):
        """A :class:`~confd_ha.emulator.control.ControlClient` to this node."""
        from .control import ControlClient

        name = self._ready("control")
        if name.startswith("@"):
            return ControlClient(self.ipc_address, self.ipc_port, timeout=timeout)
        return ControlClient(path=name, timeout=timeout)

    def control(self, op: str, **args):
        """One control request (``info``, ``set``, ``kill``, …); returns its result."""
        with self.client() as c:
            return c.request(op, **args)

    def send_signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def _child(self) -> subprocess.Popen:
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
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)
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

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        where = "" if self.ready is None else " %s:%s" % (self.ready["ipc_address"],
                                                          self.ready["ipc_port"])
        return "<EmulatorProcess pid=%s%s>" % (self.pid, where)
