"""What every benchmark does around its run: a watchdog, progress lines, the load average, and
at the end the report printed and the results written as JSON."""

from __future__ import annotations

import faulthandler
import json
import os
import sys
from typing import Any, Optional


def watchdog(seconds: float) -> None:
    """Dump every thread's stack and exit after ``seconds``: a bug must never hang a job."""
    faulthandler.dump_traceback_later(seconds, exit=True)


def log(msg: str) -> None:
    """A progress line on stderr (stdout carries the report)."""
    print(msg, file=sys.stderr, flush=True)


def loadavg() -> str:
    """The 1-minute load average, as text ("?" where the OS has none)."""
    return "%.2f" % os.getloadavg()[0] if hasattr(os, "getloadavg") else "?"


def finish(results: Any, text: Optional[str], json_path: Optional[str]) -> None:
    """Stop the watchdog, print ``text`` (the report; None when already printed) and write
    ``results`` to ``json_path`` when one was given."""
    faulthandler.cancel_dump_traceback_later()
    if text is not None:
        print(text)
    if json_path:
        with open(json_path, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)
        log("results written to %s" % json_path)
