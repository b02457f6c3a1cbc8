"""The emulator as an operating-system process: ``confd-ha emulate`` (the child-process
handle that runs it is :class:`confd_ha.testing.process.EmulatorProcess`).

``confd-ha emulate`` runs one emulated node until SIGTERM or SIGINT. Once its IPC listener
and control endpoint are up it prints exactly one line on stdout (``--json``: its fields as
one JSON object)::

    ready ipc=127.0.0.1:4565 ha=127.0.0.1:4569 control=@confd-ha-ctl:127.0.0.1:4565 flavour=confd phase=2 pid=4242

(IPv6 addresses in brackets; ``ipc-path=…`` is added with ``--ipc-path``). The HA listener is
bound only when the node becomes primary or relay, so ``ha=`` is the configured address.
Logs go to stderr at ``--log-level``. Exit status: 0 after a signal (clean stop), 2 bad
options, 3 a listener could not be opened, 1 any other start failure (e.g. the data
directory is locked by another node): failures are raised as :class:`StartFailed`, which
:func:`confd_ha.cli_errors.classify` turns into the message and the exit code.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, Dict, Optional, TextIO

from ..cli_errors import EXIT_OK, hostport
from ..cli_signals import Signals
from .config import config_from_args

if TYPE_CHECKING:
    from .config import NodeConfig
    from .control import ControlServer
    from .node import Node

log = logging.getLogger("confd_ha.emulator")


class StartFailed(Exception):
    """The node or its control endpoint could not be started: ``message``, and whether the
    cause is an address that cannot be listened on (``unreachable``, at ``target``)."""

    def __init__(self, message: str, unreachable: bool = False,
                 target: Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        self.unreachable = unreachable
        self.target = target


# ================================================================ confd-ha emulate


def ready_line(node: "Node", control: "ControlServer") -> str:
    """The one line ``confd-ha emulate`` prints when it is ready."""
    cfg = node.config
    parts = ["ready", "ipc=" + hostport(cfg.ipc_address, node.ipc_port),
             "ha=" + hostport(cfg.ha_address, cfg.ha_port),
             "control=" + control.display_name, "flavour=" + cfg.flavour,
             "phase=%d" % node.start_phase, "pid=%d" % os.getpid()]
    if cfg.ipc_path:
        parts.append("ipc-path=" + cfg.ipc_path)
    return " ".join(parts)


def ready_object(node: "Node", control: "ControlServer") -> Dict[str, Any]:
    """The ready line's fields as ``confd-ha emulate --json`` prints them."""
    cfg = node.config
    return {"ready": True, "ipc": {"address": cfg.ipc_address, "port": node.ipc_port,
                                   "path": cfg.ipc_path},
            "ha": {"address": cfg.ha_address, "port": cfg.ha_port},
            "control": control.display_name, "flavour": cfg.flavour,
            "phase": node.start_phase, "pid": os.getpid()}


def run_emulate(args: Any, out: TextIO, err: TextIO) -> int:
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
    signals = Signals()
    try:
        with signals.installed():
            return asyncio.run(_emulate(config, args, out, err, signals))
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        logger.propagate = old_propagate


def _log_level(args: Any) -> str:
    """--log-level (checked by the parser), else -q error, -v info, -vv debug, or warning."""
    verbose = getattr(args, "verbose", 0) or 0
    return str(getattr(args, "log_level", None) or (
        "debug" if verbose > 1 or getattr(args, "debug", False) else "info" if verbose
        else "error" if getattr(args, "quiet", False) else "warning")).lower()


async def _emulate(config: "NodeConfig", args: Any, out: TextIO, err: TextIO,
                   signals: Signals) -> int:
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
                raise StartFailed("cannot start the node: %s: %s" % (
                    exc.filename, exc.strerror or exc)) from None
            where = hostport(config.ipc_address, config.ipc_port)
            if config.ipc_path:
                where += " or " + config.ipc_path
            raise StartFailed("cannot listen on %s: %s" % (where, exc.strerror or exc),
                              True, where) from None
        except StoreError as exc:
            raise StartFailed("cannot open the datastore: %s" % exc) from None
        except Exception as exc:  # anything else: a message, not a traceback
            log.debug("start failed", exc_info=True)
            raise StartFailed("cannot start the node: %s" % exc) from None
        config.ipc_port = node.ipc_port or config.ipc_port  # a restart keeps the port
        try:
            await control.start()
        except OSError as exc:
            await node.kill()
            raise StartFailed("cannot open the control endpoint: %s" % (exc.strerror or exc),
                              True) from None
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


def _watch_stdin(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> Optional[int]:
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
