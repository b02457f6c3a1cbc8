"""Running a case on one or both sides (see :mod:`.catalogue` for the kinds)."""

from __future__ import annotations

import faulthandler
import json
import os
import select
import signal
import threading

from . import worlds
from .catalogue import Case, Ctx
from .peer import ScriptedPeer

EVENT_WAIT = 10.0     # seconds an expected event may take
QUIET = 0.3           # seconds without data after the expected events: no extra event


def run_case(case: Case, sides, world=None) -> dict:
    """``{side.name: steps}`` of ``case`` on each of ``sides``."""
    if case.kind in ("world", "events") and world is None:
        raise worlds.SetupError("case %s needs the node world" % case.name)
    if case.kind == "events":
        return _run_events(case, sides, world)
    out = {}
    peer = ScriptedPeer(case.script) if case.kind == "peer" else None
    try:
        for side in sides:
            if case.kind == "world":
                world.prepare(case.setup)
            ctx = Ctx(world=world, peer=peer)
            try:
                if case.kind == "peer" and case.isolate and side.name == "cisco":
                    out[side.name] = _isolated(case, ctx, side)
                else:
                    out[side.name] = case.run(ctx, side)
            finally:
                ctx.close()
                for name in case.renew:
                    world.renew(name)
    finally:
        if peer is not None:
            peer.close()
    return out


def _isolated(case: Case, ctx: Ctx, side) -> list:
    """``case.run`` in a forked child: some daemon answers crash Cisco's module (the
    outcome is then ``[['crash', {'signal': name}]]``)."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 0
        faulthandler.disable()   # a crash is the outcome here, not worth a traceback
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)   # nor is the C library's assertion message
            os.close(rfd)
            data = json.dumps(case.run(ctx, side)).encode()
            with os.fdopen(wfd, "wb") as f:
                f.write(data)
        except BaseException:  # noqa: B902
            code = 1
        os._exit(code)
    os.close(wfd)
    with os.fdopen(rfd, "rb") as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return [["crash", {"signal": signal.Signals(os.WTERMSIG(status)).name}]]
    if os.WEXITSTATUS(status) != 0:
        raise RuntimeError("case %s failed in the isolated child" % case.name)
    return json.loads(data)


def _run_events(case: Case, sides, world) -> dict:
    world.prepare(case.setup)
    ctx = Ctx(world=world)
    out, socks = {}, {}
    try:
        for side in sides:
            steps, sock = case.run(ctx, side)
            out[side.name], socks[side.name] = steps, sock
        failure = []

        def trigger():
            try:
                case.trigger(ctx)
            except BaseException as exc:  # noqa: B902 -- reported below
                failure.append(exc)

        t = threading.Thread(target=trigger, name="differential-trigger", daemon=True)
        t.start()
        for i in range(case.count):
            for side in sides:
                read_event(side, socks[side.name], out[side.name], case.sync, i + 1)
        t.join(EVENT_WAIT * 2)
        if t.is_alive():
            raise worlds.SetupError("the trigger of %s did not finish" % case.name)
        if failure:
            raise worlds.SetupError("the trigger of %s failed: %r" % (case.name, failure[0]))
        for side in sides:
            sock = socks[side.name]
            if sock is not None and _readable(sock, QUIET):
                out[side.name].append(side.run("extra read_notification",
                                                side.events.read_notification, sock,
                                                unblock=sock))
    finally:
        ctx.close()
    return out


def _readable(sock, timeout: float) -> bool:
    try:
        return bool(select.select([sock], [], [], timeout)[0])
    except (OSError, ValueError):
        return True   # a closed socket: let the call say what happens


def read_event(side, sock, steps: list, sync: bool, number: int) -> None:
    """Read the next event from ``sock`` into ``steps`` (``no event`` if none comes within
    ``EVENT_WAIT``), and acknowledge it when ``sync``."""
    if sock is None:
        return
    if not _readable(sock, EVENT_WAIT):
        steps.append(["event %d" % number, {"no event": True}])
        return
    steps.append(side.run("read_notification", side.events.read_notification, sock,
                          unblock=sock))
    if sync:
        steps.append(side.run("sync_ha_notification", side.events.sync_ha_notification, sock,
                              unblock=sock))
