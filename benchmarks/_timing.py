"""Timing on a shared, noisy machine: rows of calls timed in interleaved batches, in CPU time,
summarised as medians, minima and ratios (see README.md, "Method")."""

from __future__ import annotations

import gc
import itertools
import statistics
import time

# The CPU time of this thread (user + system, including the socket syscalls): time spent
# waiting while other processes had the CPU is not counted, which is what makes figures
# taken on a busy shared machine usable. The live-peer rows use wall time instead.
CPU_CLOCK = getattr(time, "thread_time", time.process_time)


class Row:
    """One measured row: ``run(n)`` performs n calls and returns the seconds they took."""

    def __init__(self, name: str, run, batch: int = 0):
        self.name = name
        self.run = run
        self.batch = batch     # calls per timed batch, set by calibrate()
        self.samples = []      # seconds per call, one per batch


def calibrate(rows, batch_seconds: float, cap: int) -> None:
    """Give each row the number of calls that takes about ``batch_seconds`` (4..cap), so
    that every row's batches are equally exposed to the machine's noise."""
    for row in rows:
        row.run(min(cap, 8))                       # warm caches and the result cache
        n = min(cap, 16)
        per_call = min(row.run(n) for _ in range(3)) / n
        row.batch = max(4, min(cap, int(batch_seconds / max(per_call, 1e-9))))


def interleaved(rows, rounds: int) -> None:
    """Run ``rounds`` rounds; a round times one batch of every row, starting with a
    different row each round, so that drift and bursts of load from other processes fall on
    all rows alike. Appends one seconds-per-call sample per row and round."""
    for r in range(rounds):
        gc.collect()   # GC stays enabled while timing, as in real use
        k = r % len(rows)
        for row in rows[k:] + rows[:k]:
            row.samples.append(row.run(row.batch) / row.batch)


def summarise(rows):
    """Median and minimum per row, and both as ratios to the first row (the floor)."""
    base = rows[0]
    base_med, base_min = statistics.median(base.samples), min(base.samples)
    out = {}
    for row in rows:
        med, low = statistics.median(row.samples), min(row.samples)
        out[row.name] = {"median_us": med * 1e6, "min_us": low * 1e6,
                         "ratio_median": med / base_med, "ratio_min": low / base_min,
                         "batch": row.batch, "batches": len(row.samples),
                         "calls": row.batch * len(row.samples)}
    return out


def timed(fn):
    """``run(n)`` for a Row: n calls of ``fn()``, in seconds of CPU."""
    clock = CPU_CLOCK

    def run(n):
        t0 = clock()
        for _ in range(n):
            fn()
        return clock() - t0

    return run


def alternating(decode, payloads):
    """A no-argument function that decodes the payloads in turn, one per call."""
    nxt = itertools.cycle(payloads).__next__
    return lambda: decode(nxt())
