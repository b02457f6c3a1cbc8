"""Stopping a child process of the test harness: SIGTERM, a grace period, then SIGKILL."""

from __future__ import annotations

import signal
import subprocess
from typing import Any

# How long to wait for a child after SIGKILL: the kernel reaps it at once, this only bounds
# a hang (a process in uninterruptible sleep).
KILL_WAIT = 10.0


def stop_process(proc: subprocess.Popen[Any], grace: float, thaw: bool = False) -> None:
    """Send SIGTERM to ``proc`` (with ``thaw``, SIGCONT first: a stopped process acts on
    SIGTERM only once it runs), wait up to ``grace`` seconds, then SIGKILL. A process that has
    exited already is left alone."""
    if proc.poll() is not None:
        return
    if thaw:
        proc.send_signal(signal.SIGCONT)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(KILL_WAIT)
