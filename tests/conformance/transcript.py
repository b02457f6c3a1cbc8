"""Recordings: transcripts of live runs against real ConfD, stored with the ConfD version and
the date of the run, and the comparison of a fresh transcript with one.

Recordings are written only by a live run (``pytest tests/conformance --realconfd DIR
--record``), never by hand: each carries the SHA-256 of its lines, checked on load.
"""

from __future__ import annotations

import datetime
import difflib
import hashlib
import json
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))
RECORDED = os.path.join(HERE, "recorded")
TOLERANCE = 0.5          # ticks: timings match within half a tick
_TIMING = re.compile(r"@(-?\d+(?:\.\d+)?)t\b")


def recording_dir(version: str) -> str:
    return os.path.join(RECORDED, "confd-%s" % version)


def digest(lines: list) -> str:
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def save(path: str, scenario, lines: list, version: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    doc = {
        "scenario": scenario.name,
        "description": scenario.doc,
        "confd_version": version,
        "recorded": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "tick_seconds": scenario.tick,
        "confd_quirks": scenario.quirks,
        "sha256": digest(lines),
        "transcript": lines,
    }
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


class BadRecording(Exception):
    pass


def load(path: str) -> dict:
    with open(path) as f:
        doc = json.load(f)
    for key in ("scenario", "confd_version", "recorded", "sha256", "transcript"):
        if key not in doc:
            raise BadRecording("%s: no %r" % (path, key))
    if digest(doc["transcript"]) != doc["sha256"]:
        raise BadRecording("%s: the transcript does not match its sha256 (edited by hand?)" % path)
    return doc


def _split(line: str):
    times = [float(m) for m in _TIMING.findall(line)]
    return _TIMING.sub("@~t", line), times


def same_line(want: str, got: str, tolerance: float = TOLERANCE) -> bool:
    w_text, w_times = _split(want)
    g_text, g_times = _split(got)
    if w_text != g_text or len(w_times) != len(g_times):
        return False
    return all(abs(a - b) <= tolerance + 1e-9 for a, b in zip(w_times, g_times))


def differences(want: list, got: list, tolerance: float = TOLERANCE) -> list:
    """A unified diff of the two transcripts, empty when they match (timings within
    ``tolerance`` ticks)."""
    if len(want) == len(got) and all(same_line(a, b, tolerance) for a, b in zip(want, got)):
        return []
    return list(difflib.unified_diff(want, got, "recorded", "this run", lineterm="", n=2))
