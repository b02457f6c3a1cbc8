"""The client commands of ``confd-ha``: ``status``, ``watch`` and the orders (``be-primary``,
``be-secondary``, ``be-none``, ``be-relay``, ``secondary-dead``), through the public client
API only (``confd_ha.connect``, ``confd_ha.status``, ``confd_ha.events``...).

Each command records in the :class:`~confd_ha.cli_errors.Context` where it connects and what
it is doing; whatever it raises is turned into a message by
:func:`confd_ha.cli_errors.classify`.
"""

from __future__ import annotations

import contextlib
import getpass
import logging
import os
import signal
import socket
import sys
import threading
from types import FrameType
from typing import Any, Iterator, Optional

from ._args import MAX_TOKEN_FILE
from ._settings import ACCESS_FILE_VARS, TOKEN_ENV
from .cli_errors import EXIT_OK, Context, usage
from .cli_output import dumps, event_line, event_object, now, print_status
from .cli_types import shown

log = logging.getLogger("confd_ha.cli")


# ---------------------------------------------------------------- token


def read_token(args: Any, err: Any) -> bytes:
    """The HA token from --token-file, $CONFD_HA_TOKEN, --token (warned about) or a prompt.
    An empty token is refused: an unset variable or an empty file is a mistake, not a
    secret."""
    if args.token_file is not None:
        name = shown(args.token_file)
        try:
            with open(args.token_file, "rb") as f:
                # bytes, as the daemon takes them; bounded, so /dev/zero cannot fill memory
                data = f.read(MAX_TOKEN_FILE + 1)
        except OSError as exc:
            raise usage("cannot read --token-file %s: %s" % (name, exc.strerror or exc)) from None
        if len(data) > MAX_TOKEN_FILE:
            raise usage("--token-file %s is longer than %d KiB: not a token file"
                        % (name, MAX_TOKEN_FILE // 1024))
        token = data.rstrip(b"\r\n")
        if not token:
            raise usage("the HA token in --token-file %s is empty" % name)
        return token
    if os.environ.get(TOKEN_ENV):
        return os.fsencode(os.environ[TOKEN_ENV])  # its bytes, even if not UTF-8
    if args.token is not None:
        print("warning: --token puts the token in the process list, visible to every local "
              "user; prefer --token-file or $%s" % TOKEN_ENV, file=err)
        if not args.token:
            raise usage("the HA token given with --token is empty")
        return os.fsencode(args.token)
    if sys.stdin is not None and sys.stdin.isatty():
        try:
            typed = getpass.getpass("HA token: ")
        except EOFError:
            raise usage("no HA token: end of input (Ctrl-D) at the prompt") from None
        except UnicodeError:
            raise usage("the token typed at the prompt is not valid UTF-8 (use --token-file "
                        "for a binary token)") from None
        if not typed:
            raise usage("no HA token: nothing was typed at the prompt")
        return typed.encode("utf-8")
    raise usage("no HA token: use --token-file FILE or $%s (stdin is not a terminal, so "
                "there is no prompt)" % TOKEN_ENV)


def check_access_file() -> None:
    """The IPC access secret must be readable before a connection is tried (else the
    library's error would look like a connection failure)."""
    for var in ACCESS_FILE_VARS:
        name = os.environ.get(var)
        if name:
            try:
                with open(name, "rb"):
                    pass
            except OSError as exc:
                raise usage("cannot read the IPC access file %s named by $%s: %s"
                            % (shown(name), var, exc.strerror or exc)) from None
            return


# ---------------------------------------------------------------- connections


def _socket(args: Any, ctx: Context) -> socket.socket:
    if args.path:
        family = socket.AF_UNIX
    else:
        family = socket.AF_INET6 if ":" in args.ipc_address else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(args.timeout or None)
    ctx.sock, ctx.timeout = s, args.timeout
    return s


def _connected(ctx: Context, s: socket.socket) -> None:
    from . import daemon_info

    hello = daemon_info(s)
    if hello is not None:
        log.info("connected to %s: protocol version %d, version %#010x", ctx.where(),
                 hello.proto_vsn, hello.vsn)


def control_socket(args: Any, ctx: Context, err: Any) -> socket.socket:
    """An HA control socket to the daemon (B-02: it replaces the node's current one)."""
    import confd_ha as ha

    token = read_token(args, err)
    check_access_file()
    if not args.quiet:
        print("note: opening an HA control socket replaces the node's current one and sets "
              "its token (the framework's socket, if any, is closed)", file=err)
    s = _socket(args, ctx)
    try:
        ctx.phase = "connect"
        log.info("connecting to %s", ctx.where())
        ha.connect(s, token, args.ipc_address, args.ipc_port, args.path)
        _connected(ctx, s)
        ctx.phase = "request"
    except BaseException:
        s.close()
        raise
    return s


# ---------------------------------------------------------------- commands


def cmd_status(args: Any, ctx: Context, out: Any, err: Any) -> int:
    import confd_ha as ha

    with control_socket(args, ctx, err) as s:
        state, nodes = ha.status(s)
    print_status(state, nodes, args.json, out)
    return EXIT_OK


_ORDERS = {
    "be-primary": lambda ha, s, a: ha.beprimary(s, a.node),
    "be-secondary": lambda ha, s, a: ha.besecondary(s, a.node, a.primary_id, a.primary_ip,
                                                    0 if a.async_ else 1),
    "be-none": lambda ha, s, a: ha.benone(s),
    "be-relay": lambda ha, s, a: ha.berelay(s),
    "secondary-dead": lambda ha, s, a: ha.secondary_dead(s, a.node),
}


def cmd_order(args: Any, ctx: Context, out: Any, err: Any) -> int:
    """One HA order; prints ``ok`` (nothing with -q; an object with --json)."""
    import confd_ha as ha

    with control_socket(args, ctx, err) as s:
        ctx.order = True
        log.info("sending %s", args.cmd)
        _ORDERS[args.cmd](ha, s, args)
    waited = not (args.cmd == "be-secondary" and args.async_)
    if args.json:
        print(dumps({"ok": True, "command": args.cmd, "target": ctx.target,
                     "waited": waited}), file=out)
    elif not args.quiet:
        print("ok", file=out)
    return EXIT_OK


def cmd_watch(args: Any, ctx: Context, out: Any, err: Any) -> int:
    """HA events until Ctrl-C or SIGTERM (exit 0)."""
    from . import events

    mask = events.NOTIF_HA_INFO | (events.NOTIF_HA_INFO_SYNC if args.sync else 0)
    with _socket(args, ctx) as s:
        ctx.phase = "connect"
        check_access_file()
        log.info("subscribing to the HA events of %s", ctx.where())
        events.notifications_connect(s, mask, args.ipc_address, args.ipc_port, args.path)
        _connected(ctx, s)
        ctx.phase = "events"
        s.settimeout(None)  # --timeout bounds the connect; events may be hours apart
        with _sigterm_interrupts():
            try:
                while True:
                    ev = events.read_notification(s)
                    when = now()
                    if args.json:
                        print(dumps(event_object(ev, when)), file=out, flush=True)
                    else:
                        print(event_line(ev, when), file=out, flush=True)
                    if args.sync:
                        events.sync_ha_notification(s)
            except KeyboardInterrupt:
                return EXIT_OK


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM ends ``watch`` as Ctrl-C does (a supervisor's stop is not a failure)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Optional[FrameType]) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)

