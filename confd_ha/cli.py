"""The ``confd-ha`` command line: look at and order HA nodes, run emulated nodes, the HA
agent, the demo.

``main(argv, out=, err=)`` returns the exit code, so it can be tested in-process. The parts:
:mod:`.cli_parser` (every command, option and help text), :mod:`.cli_commands` (status,
watch, orders), :mod:`.cli_cdb`, :mod:`.cli_agent` (the HA agent and its operator actions,
imported only for ``agent``), :mod:`.emulator.emulate` (emulate), :mod:`.demo` and
:mod:`.demo_agent`, :mod:`.cli_docs` (completion scripts and the man page),
:mod:`.cli_output` (tables, events, escaping) and :mod:`.cli_errors` -- the exit codes and
the one mapping of every failure to a one-line message (and, with ``--json``, one error
object on stdout). docs/cli.md is the user's guide.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
import traceback
from types import FrameType
from typing import (Any, Callable, Iterator, Mapping, NoReturn, Optional, Sequence, TextIO,
                    TypeVar, Union)

from . import _settings
from .cli_errors import (EXIT_OK, EXIT_PIPE, EXIT_USAGE, CliError, Context, classify, hostport,
                         usage)
from .cli_output import dumps, print_status, stderr_log  # noqa: F401 -- re-exported
from .cli_parser import build_parser  # noqa: F401 -- re-exported

_CLIENT_COMMANDS = ("status", "watch", "be-primary", "be-secondary", "be-none", "be-relay",
                    "secondary-dead")
_DEFAULTS = {"quiet": False, "debug": False, "json": False, "timeout": 120.0, "path": None,
             "token_file": None, "token": None, "async_": False, "sync": False,
             "control_path": None}

_T = TypeVar("_T")
# what signal.signal returns: the handler it replaced
_Handler = Union[Callable[[int, Optional[FrameType]], Any], int, signal.Handlers, None]


def resolve(args: argparse.Namespace, environ: Optional[Mapping[str, str]] = None) -> None:
    """Fill in the defaults the parser leaves out (from the environment for the address and
    port: ``$CONFD_IPC_*``, or ``$NCS_IPC_*`` with --nso), checking the environment's
    values as strictly as the options'."""
    from . import cli_types

    environ = os.environ if environ is None else environ
    args.verbose = sum(getattr(args, "verbose%d" % i, 0) or 0 for i in range(3))
    if args.cmd == "agent" and not hasattr(args, "timeout"):
        args.timeout = None   # each action has its own default (cli_agent)
    for key, value in _DEFAULTS.items():
        if not hasattr(args, key):
            setattr(args, key, value)
    if args.cmd not in _CLIENT_COMMANDS + ("cdb",):
        return
    args.flavour = getattr(args, "flavour", None) or "confd"
    defaults = _settings.FLAVOURS[args.flavour]
    if not hasattr(args, "ipc_address"):
        args.ipc_address = _from_env(environ, defaults.addr_var, cli_types.ip_address,
                                     _settings.DEFAULT_ADDR)
    if not hasattr(args, "ipc_port"):
        args.ipc_port = _from_env(environ, defaults.port_var, cli_types.port,
                                  defaults.default_port)


def _from_env(environ: Mapping[str, str], name: str, check: Callable[[str], _T],
              default: _T) -> _T:
    """``$name`` checked as the option would be (an empty variable counts as unset)."""
    value = environ.get(name)
    if not value:
        return default
    try:
        return check(value)
    except Exception as exc:  # argparse.ArgumentTypeError: the option's words
        raise usage("$%s: %s" % (name, exc)) from None


def product(args: argparse.Namespace) -> str:
    return _settings.FLAVOURS[getattr(args, "flavour", None) or "confd"].product


# ---------------------------------------------------------------- dispatch


def _run(args: argparse.Namespace, ctx: Context, out: TextIO, err: TextIO) -> int:
    cmd = args.cmd
    if cmd == "status":
        from .cli_commands import cmd_status

        return cmd_status(args, ctx, out, err)
    if cmd == "watch":
        from .cli_commands import cmd_watch

        return cmd_watch(args, ctx, out, err)
    if cmd in _CLIENT_COMMANDS:
        from .cli_commands import cmd_order

        return cmd_order(args, ctx, out, err)
    if cmd == "cdb":
        from .cli_cdb import cmd_cdb

        return cmd_cdb(args, ctx, out, err)
    if cmd == "emulate":
        from .emulator.emulate import run_emulate

        return run_emulate(args, out, err)
    if cmd == "agent":
        from .cli_agent import cmd_agent

        return cmd_agent(args, ctx, out, err)
    if cmd == "demo":
        if args.agent:
            from . import demo_agent
            from .cli_agent import require_agent_dependencies
            from .testing.etcd import find_etcd

            find_etcd()                    # EtcdNotFound: how to install it (exit 2)
            require_agent_dependencies()   # httpx: how to install it (exit 2)

            demo_agent.run(out, tick=args.tick, prefix=args.prefix)
            return EXIT_OK
        from . import demo

        demo.run(out, tick=args.tick, prefix=args.prefix)
        return EXIT_OK
    from . import cli_docs

    if cmd == "completion":
        print(cli_docs.completion(args.shell), file=out, end="")
    else:
        print(cli_docs.man_page(), file=out, end="")
    return EXIT_OK


@contextlib.contextmanager
def _logging(args: argparse.Namespace, err: TextIO) -> Iterator[None]:
    """The package's log on stderr: errors only by default (the library's warnings become
    part of the error message instead), -v info, -vv or --debug everything. ``emulate``
    and ``agent run`` set up their own."""
    if _own_signals_and_log(args):
        yield
        return
    level = (logging.DEBUG if args.verbose > 1 or args.debug else
             logging.INFO if args.verbose else logging.ERROR)
    with stderr_log(err, level, logging.Formatter("confd-ha: %(message)s")):
        yield


def _own_signals_and_log(args: argparse.Namespace) -> bool:
    """The long-running commands handle SIGTERM/SIGINT and set up their log themselves."""
    return bool(args.cmd == "emulate" or (args.cmd == "agent" and args.action == "run"))


def _wants_json(argv: Sequence[str]) -> bool:
    words = list(argv)
    if "--" in words:
        words = words[:words.index("--")]
    return "--json" in words


def _report(failure: CliError, ctx: Context, out: TextIO, err: TextIO) -> None:
    """One line on stderr; with --json also the error object on stdout."""
    if ctx.json and failure.exit_code != EXIT_PIPE:
        with contextlib.suppress(OSError, ValueError):
            print(dumps(failure.as_json()), file=out)
            out.flush()
    with contextlib.suppress(OSError, ValueError):
        print("confd-ha: %s" % failure.message, file=err)
        err.flush()


def _silence_stdout(out: TextIO) -> None:
    """After a broken pipe on stdout, point it at /dev/null: the interpreter's last flush
    must not print a second error."""
    if out is sys.stdout:
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)


def main(argv: Optional[Sequence[str]] = None, out: Optional[TextIO] = None,
         err: Optional[TextIO] = None) -> int:
    """Run ``confd-ha`` with ``argv`` (default: ``sys.argv[1:]``, and then this is the process:
    a Ctrl-C after the work is done is ignored); returns the exit code."""
    out = out or sys.stdout
    err = err or sys.stderr
    ctx = Context()
    process = argv is None
    debug = False
    trap: _Handler = None
    try:
        argv = sys.argv[1:] if argv is None else list(argv)
        debug = "--debug" in argv
        ctx.json = _wants_json(argv)
        parser = build_parser()
        parser.argv = argv  # for the error message's pointer to the command's --help
        try:
            # argparse writes --help and --version to sys.stdout: send them to ours.
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                args = parser.parse_args(argv)
        except SystemExit as exc:  # --help or --version, printed
            out.flush()
            return EXIT_USAGE if exc.code else EXIT_OK
        resolve(args)
        ctx.command, ctx.json, ctx.product, debug = args.cmd, args.json, product(args), args.debug
        if args.cmd in _CLIENT_COMMANDS:
            ctx.target = args.path or hostport(args.ipc_address, args.ipc_port)
        if not _own_signals_and_log(args):  # emulate, agent run: their signals themselves
            trap = _trap_ctrl_c(ctx)
        with _logging(args, err):
            rc = _run(args, ctx, out, err)
        out.flush()
        return rc
    except (Exception, KeyboardInterrupt) as exc:
        failure = classify(exc, ctx)
        if debug and not (exc is failure and failure.exit_code == EXIT_USAGE):
            with contextlib.suppress(OSError, ValueError):
                traceback.print_exception(type(exc), exc, exc.__traceback__, file=err)
        if failure.exit_code == EXIT_PIPE:
            _silence_stdout(out)
        _report(failure, ctx, out, err)
        return failure.exit_code
    finally:
        if trap is not None:
            signal.signal(signal.SIGINT, signal.SIG_IGN if process else trap)


def _trap_ctrl_c(ctx: Context) -> _Handler:
    """Ctrl-C raises KeyboardInterrupt as usual and is also noted in ``ctx``, so that
    whatever exception it turns into on its way out (an import it cut short, a step of the
    demo) is reported as the interruption it is. Returns the handler to restore (None: not
    installed -- another thread, or the caller has its own handler)."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        return None

    def interrupted(signum: int, frame: Optional[FrameType]) -> NoReturn:
        ctx.interrupted = True
        raise KeyboardInterrupt

    return signal.signal(signal.SIGINT, interrupted)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
