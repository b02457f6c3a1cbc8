"""The command line's exit codes and the one place where failures become messages.

Every ``confd-ha`` command -- the client commands, ``cdb``, ``emulate``, ``demo`` -- lets its
exceptions reach :func:`classify`, which turns each into a :class:`CliError`: a one-line
message in the user's terms that names the target, an exit code from :data:`EXIT_CODES`, and
a ``kind`` for the ``--json`` error object (:meth:`CliError.as_json`). Nothing else in the
command line maps an exception to an exit code.
"""

from __future__ import annotations

import errno
import os
import re
import sys
from typing import TYPE_CHECKING, Any, Dict, Optional, Tuple

if TYPE_CHECKING:
    from . import error

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_TIMEOUT = 4
EXIT_INTERRUPTED = 130
EXIT_PIPE = 141

# (code, name, meaning): rendered in every --help, the man page and docs/cli.md.
EXIT_CODES: Tuple[Tuple[int, str, str], ...] = (
    (EXIT_OK, "ok", "success"),
    (EXIT_REFUSED, "refused", "the daemon or the emulated node refused (the ConfD error code "
                              "and name are printed), or the command failed"),
    (EXIT_USAGE, "usage", "bad command line, option value, environment variable, token or "
                          "input"),
    (EXIT_UNREACHABLE, "unreachable", "nothing listens at the target, it is not a ConfD/NSO "
                                      "IPC port, or the connection was lost"),
    (EXIT_TIMEOUT, "timeout", "a request was sent and no answer came within --timeout: an "
                              "order may still take effect (check with `confd-ha status`)"),
    (EXIT_INTERRUPTED, "interrupted", "interrupted by Ctrl-C (SIGINT)"),
    (EXIT_PIPE, "closed-output", "the output was closed by its reader (`| head`)"),
)
EXIT_NAMES = {code: name for code, name, _ in EXIT_CODES}


class CliError(Exception):
    """A failure as the user sees it: ``message`` (one line, no ``confd-ha:`` prefix),
    ``exit_code``, ``kind`` and, when there is one, the ``target`` and the ConfD error."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE, kind: Optional[str] = None,
                 target: Optional[str] = None, confd_errno: Optional[int] = None):
        super().__init__(message)
        self.message = " ".join(str(message).split("\n"))
        self.exit_code = exit_code
        self.kind = kind or EXIT_NAMES.get(exit_code, "failed")
        self.target = target
        self.confd_errno = confd_errno

    def as_json(self) -> Dict[str, Any]:
        """The ``--json`` error object, the same for every command."""
        name = None
        if self.confd_errno is not None:
            from . import error

            name = error.errname(self.confd_errno)
        return {"error": {"kind": self.kind, "message": self.message,
                          "exit_code": self.exit_code, "target": self.target,
                          "confd_errno": self.confd_errno, "confd_name": name}}


def usage(message: str) -> CliError:
    return CliError(message, EXIT_USAGE)


class Context:
    """What :func:`classify` needs to know about the command that failed: its ``command``
    name, ``target`` (``127.0.0.1:4565``, ``[::1]:4565`` or a socket path), the ``product``
    (ConfD or NSO), the ``phase`` (``connect``, ``request``, ``events`` or None), whether the
    request is an ``order`` (its outcome is unknown after a timeout), the ``timeout`` and
    the client socket (``sock``) whose hello reply tells a ConfD from something else."""

    def __init__(self, command: str = "", product: str = "ConfD"):
        self.command = command
        self.product = product
        self.target: Optional[str] = None
        self.phase: Optional[str] = None
        self.order = False
        self.timeout: Optional[float] = None
        self.sock: Any = None
        self.json = False
        self.interrupted = False     # a Ctrl-C came (whatever exception it became)

    def where(self) -> str:
        return "%s at %s" % (self.product, self.target) if self.target else self.product


def hostport(address: str, port: object) -> str:
    return ("[%s]:%s" if ":" in address else "%s:%s") % (address, port)


def seconds(value: Optional[float]) -> str:
    return "%g s" % value if value else "time"


# ---------------------------------------------------------------- the mapping

_OS_TEXTS = {
    errno.ECONNREFUSED: "nothing listens there",
    errno.ENOENT: "no such socket",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENETUNREACH: "the network is unreachable",
    errno.EHOSTUNREACH: "the host is unreachable",
    errno.EADDRNOTAVAIL: "that address is not available on this host",
    errno.ECONNRESET: "the connection was reset",
    errno.ENOTSOCK: "that path is not a socket",
}
_MALFORMED = ("frame of", "unexpected reply", "not an Erlang term", "truncated message",
              "extra bytes", "unsupported term", "nested too deep", "bad value", "too large")


def classify(exc: BaseException, ctx: Context) -> CliError:
    """The :class:`CliError` for any exception a command let through."""
    if isinstance(exc, CliError) and not ctx.interrupted:
        return exc
    if isinstance(exc, KeyboardInterrupt) or ctx.interrupted:
        stopped = "; every node stopped" if ctx.command == "demo" else ""
        return CliError("interrupted" + stopped, EXIT_INTERRUPTED)
    if isinstance(exc, BrokenPipeError) or (isinstance(exc, OSError)
                                            and exc.errno == errno.EPIPE):
        return CliError("stopped: the output was closed (broken pipe)", EXIT_PIPE)
    from . import error

    if isinstance(exc, error.Timeout):
        return _timeout(ctx, exc.confd_lasterr)
    if isinstance(exc, error.EOF):
        return _closed(ctx)
    if isinstance(exc, error.Error):
        return _daemon_error(exc, ctx)
    for kind in _OTHER:
        mapped = kind(exc, ctx)
        if mapped is not None:
            return mapped
    return CliError("internal error: %s: %s (run with --debug for a traceback)"
                    % (type(exc).__name__, exc), EXIT_REFUSED, "internal")


def _not_confd(ctx: Context) -> bool:
    """Whether the peer's hello reply (if one came) is something a daemon never sends."""
    if ctx.sock is None:
        return False
    from . import _protocol, daemon_info

    hello = daemon_info(ctx.sock)
    return hello is not None and hello.byte0 not in (
        _protocol.HELLO_ACCEPTED, _protocol.HELLO_BADVSN, _protocol.HELLO_WARNING)


def _not_confd_error(ctx: Context) -> CliError:
    return CliError("%s is not a %s IPC port: it answered something else (check --ipc-port)"
                    % (ctx.target, ctx.product), EXIT_UNREACHABLE, "not-confd", ctx.target)


def _timeout(ctx: Context, lasterr: str = "") -> CliError:
    where, wait = ctx.where(), seconds(ctx.timeout)
    if ctx.phase == "connect":
        if _not_confd(ctx):
            return _not_confd_error(ctx)
        if "connecting" in (lasterr or ""):   # the TCP connect itself (_io's words)
            message = ("no answer from %s in %s: the host does not answer (down, or a "
                       "firewall drops the connection)" % (ctx.target, wait))
        else:
            message = ("no answer from %s in %s while connecting: is it a %s IPC port?"
                       % (ctx.target, wait, ctx.product))
        return CliError(message, EXIT_UNREACHABLE, "unreachable", ctx.target)
    message = "no answer from %s in %s" % (where, wait)
    if ctx.order:
        message += ": the order may still take effect; check with `confd-ha status`"
    return CliError(message, EXIT_TIMEOUT, "timeout", ctx.target)


def _closed(ctx: Context) -> CliError:
    if _not_confd(ctx):
        return _not_confd_error(ctx)
    if ctx.phase == "connect":
        message = ("%s closed the connection during the handshake: it is not a %s IPC port, "
                   "or it refused this client (an IPC access check? set $%s_IPC_ACCESS_FILE)"
                   % (ctx.target, ctx.product, "NCS" if ctx.product == "NSO" else "CONFD"))
    elif ctx.phase == "events":
        message = "%s closed the event connection (the daemon stopped?)" % ctx.where()
    elif ctx.order:
        message = ("%s closed the connection before answering: the order may or may not "
                   "have taken effect; check with `confd-ha status`" % ctx.where())
    else:
        message = ("%s closed the connection before answering (another HA control socket "
                   "may have replaced this one)" % ctx.where())
    return CliError(message, EXIT_UNREACHABLE, "closed", ctx.target)


def _daemon_error(exc: "error.Error", ctx: Context) -> CliError:
    from . import error

    code, lasterr = exc.confd_errno, exc.confd_lasterr or ""
    if code == error.ERR_EOF:   # an acknowledgement to a daemon that is gone (watch --sync)
        return _closed(ctx)
    if code == error.ERR_OS:
        if exc.errno == errno.ETIMEDOUT:
            return _timeout(ctx, lasterr)
        text = _OS_TEXTS.get(exc.errno or 0) or (os.strerror(exc.errno) if exc.errno
                                                 else lasterr)
        if ctx.phase == "connect":
            return CliError("cannot connect to %s: %s" % (ctx.where(), text), EXIT_UNREACHABLE,
                            "unreachable", ctx.target)
        return CliError("lost the connection to %s: %s" % (ctx.where(), text),
                        EXIT_UNREACHABLE, "closed", ctx.target)
    if code == error.ERR_PROTOUSAGE and (_not_confd(ctx) or any(m in lasterr for m in _MALFORMED)):
        return _not_confd_error(ctx)
    if ctx.phase == "connect":
        if code == error.ERR_ACCESS_DENIED:
            what = "refused the IPC access check: check $%s_IPC_ACCESS_FILE" % (
                "NCS" if ctx.product == "NSO" else "CONFD")
        else:
            what = "refused the connection: %s" % (lasterr or exc.confd_strerror)
        return CliError("%s %s" % (ctx.where(), what), EXIT_UNREACHABLE, "unreachable",
                        ctx.target, code)
    return refused(code, exc.confd_strerror + (": " + lasterr if lasterr else ""),
                   ctx.where(), ctx.target)


def refused(code: Optional[int], text: str, where: str, target: Optional[str]) -> CliError:
    """The daemon (or an emulated node) refused: ``daemon error 17 ERR_BADSTATE: ...``."""
    if code is None:
        return CliError("%s refused: %s" % (where, text), EXIT_REFUSED, "refused", target)
    from . import error

    return CliError("%s refused: daemon error %d %s: %s" % (where, code, error.errname(code),
                                                           text),
                    EXIT_REFUSED, "refused", target, code)


def _input_errors(exc: BaseException, ctx: Context) -> Optional[CliError]:
    if isinstance(exc, UnicodeError):
        return CliError("the input is not valid UTF-8: %s" % getattr(exc, "reason", exc),
                        EXIT_USAGE)
    if isinstance(exc, EOFError):
        return CliError("no HA token: end of input at the prompt", EXIT_USAGE)
    if isinstance(exc, (ValueError, TypeError, OverflowError)):
        # The client's own argument checks (the command line checks first; a safety net).
        return CliError(str(exc), EXIT_USAGE)
    return None


def _control_errors(exc: BaseException, ctx: Context) -> Optional[CliError]:
    """The emulated node's control endpoint (``confd-ha cdb``)."""
    from .testing.control import ControlError, Unreachable

    where = "the emulated node at %s" % ctx.target
    if isinstance(exc, Unreachable):
        if exc.errno == errno.ETIMEDOUT:
            message = "no answer from %s in %s" % (where, seconds(ctx.timeout))
            if ctx.order:
                message += ": the request may still take effect"
            return CliError(message, EXIT_TIMEOUT, "timeout", ctx.target)
        reason = _OS_TEXTS.get(exc.errno or 0) or exc.strerror or str(exc)
        if exc.errno in (errno.ECONNREFUSED, errno.ENOENT):
            reason = "no `confd-ha emulate` runs there"
        return CliError("cannot reach %s: %s" % (where, reason), EXIT_UNREACHABLE,
                        "unreachable", ctx.target)
    if isinstance(exc, ControlError):
        if exc.kind == "refused":
            return refused(exc.code if isinstance(exc.code, int) else None, exc.message,
                           where, ctx.target)
        if exc.kind == "bad-request":
            return CliError(exc.message, EXIT_USAGE, "usage", ctx.target)
        if exc.kind == "not-running":
            return CliError("%s: %s" % (where, exc.message), EXIT_UNREACHABLE,
                            "not-running", ctx.target)
        return CliError("%s failed: %s" % (where, exc.message), EXIT_REFUSED, "internal",
                        ctx.target)
    return None


def _os_errors(exc: BaseException, ctx: Context) -> Optional[CliError]:
    if isinstance(exc, OSError):
        text = exc.strerror or str(exc)
        if exc.filename:
            text = "%s: %s" % (exc.filename, text)
        return CliError(text, EXIT_REFUSED, "failed", ctx.target)
    return None


def _emulate_errors(exc: BaseException, ctx: Context) -> Optional[CliError]:
    """``confd-ha emulate`` could not start its node (looked up, not imported: an exception
    of the module means it is loaded)."""
    emulate = sys.modules.get("confd_ha.emulator.emulate")
    if emulate is not None and isinstance(exc, emulate.StartFailed):
        if exc.unreachable:
            return CliError(exc.message, EXIT_UNREACHABLE, "unreachable", exc.target)
        return CliError(exc.message, EXIT_REFUSED, "failed")
    return None


def _demo_errors(exc: BaseException, ctx: Context) -> Optional[CliError]:
    from .demo import StepFailed

    if isinstance(exc, StepFailed):
        return CliError(str(exc), EXIT_REFUSED, "failed")
    return None


def _agent_errors(exc: BaseException, ctx: Context) -> Optional[CliError]:
    """``confd-ha agent`` and ``demo --agent``. The agent's modules are looked up, not
    imported: they need the optional extra, and an exception of theirs means they are
    loaded."""
    modules = sys.modules
    config = modules.get("confd_ha.agent.config")
    if config is not None and isinstance(exc, config.ConfigError):
        problems = [" ".join(p.split()) for p in exc.problems] or [str(exc)]
        if len(problems) == 1 and problems[0].startswith(("cannot read the configuration",
                                                          "reading ")):
            return CliError(problems[0], EXIT_USAGE)
        if len(problems) == 1 and " is not valid TOML: " in problems[0]:
            return CliError(problems[0], EXIT_USAGE)
        return CliError("bad agent configuration: %s" % "; ".join(problems), EXIT_USAGE)
    wire = modules.get("confd_ha.agent._etcdwire")
    if wire is not None and isinstance(exc, wire.EtcdError):
        reason = re.sub(r"^etcd /v3/\S+: ", "", str(exc))
        if exc.unavailable:
            return CliError("cannot reach etcd at %s: %s" % (ctx.target, reason),
                            EXIT_UNREACHABLE, "unreachable", ctx.target)
        return CliError("etcd at %s refused: %s" % (ctx.target, reason), EXIT_REFUSED,
                        "refused", ctx.target)
    ops = modules.get("confd_ha.agent.ops")
    if ops is not None and isinstance(exc, ops.OpsTimeout):
        return CliError("%s; it may still happen: check with `confd-ha agent list`" % exc,
                        EXIT_TIMEOUT, "timeout", ctx.target)
    if ops is not None and isinstance(exc, ops.OpsError):
        return CliError(str(exc), EXIT_REFUSED, "refused", ctx.target)
    core = modules.get("confd_ha.agent.core")
    if core is not None and isinstance(exc, core.AgentError):
        return CliError("the agent stopped: %s" % exc, EXIT_REFUSED, "failed")
    testing = modules.get("confd_ha.testing.etcd")
    if testing is not None and isinstance(exc, testing.EtcdNotFound):
        return CliError(str(exc), EXIT_USAGE, "not-installed")
    return None


_OTHER = (_agent_errors, _emulate_errors, _input_errors, _control_errors, _demo_errors,
          _os_errors)
