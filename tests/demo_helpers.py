"""Helpers for the demo tests (``confd-ha demo`` and ``demo --agent``): what a process holds
(threads, file descriptors, child processes), the narration split into steps, and an output
that presses Ctrl-C at a given line."""

from __future__ import annotations

import gc
import io
import os
import re
import threading

import pytest


def own_fds() -> dict:
    """This process's open descriptors and what each refers to."""
    fds = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            fds[fd] = os.readlink("/proc/self/fd/" + fd)
        except OSError:      # the listing's own descriptor, closed meanwhile
            pass
    return fds


def child_pids() -> set:
    """Processes whose parent is this one."""
    me, pids = os.getpid(), set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == me:
                pids.add(int(entry))
    return pids


@pytest.fixture
def leaves_nothing(tmp_path, monkeypatch):
    """Runs the test in an empty directory; afterwards no thread, fd, child process or
    file the test did not start with may remain."""
    monkeypatch.chdir(tmp_path)
    gc.collect()   # what earlier tests left for the collector must not close during this one
    threads, fds, children = set(threading.enumerate()), own_fds(), child_pids()
    yield
    assert set(threading.enumerate()) == threads
    now = own_fds()
    assert now == fds, "descriptors opened: %s; closed: %s" % (
        {k: v for k, v in now.items() if fds.get(k) != v},
        {k: v for k, v in fds.items() if now.get(k) != v})
    assert child_pids() == children
    assert os.listdir(tmp_path) == []


def steps(narration: str) -> dict:
    """Step number -> the step's lines (heading first)."""
    result, current = {}, None
    for line in narration.splitlines():
        m = re.match(r"\s*(\d+)\. ", line)
        if m:
            current = int(m.group(1))
            result[current] = []
        if current is not None:
            result[current].append(line.strip())
    return result


class InterruptAt(io.StringIO):
    """Narration output that raises KeyboardInterrupt -- as Ctrl-C would, in the main thread
    -- when the demo writes a line starting with ``prefix``."""

    def __init__(self, prefix: str):
        super().__init__()
        self.prefix = prefix
        self.fired = False

    def write(self, text):
        n = super().write(text)
        if not self.fired and text.lstrip().startswith(self.prefix):
            self.fired = True
            raise KeyboardInterrupt
        return n
