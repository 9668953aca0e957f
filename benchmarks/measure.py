"""Timing on a noisy machine: interleaved rounds, paired ratios, medians with min–max.

Every figure the benchmarks print is a ratio against a baseline measured in
the same run, round by round: in each round every candidate and the baseline
run once, in a shuffled order, so a burst of noise from another process hits
a whole round rather than one side of the comparison. The ratio of a round is
candidate / baseline of that round; the reported figure is the median of
those ratios, with their min–max.
"""

from __future__ import annotations

import gc
import random
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable

# The clock every in-process figure is read from: wall time (perf_counter) by default, or the process's CPU
# time (process_time), which does not count the time this process waits while others run; with one torch
# thread and nothing else running in the process, that is the latency a quiet machine would show.
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
_clock = ["wall"]


def set_clock(name: str):
    _clock[0] = name


def clock_name() -> str:
    return _clock[0]


def now() -> float:
    return CLOCKS[_clock[0]]()


@dataclass
class Ratio:
    """Median of paired per-round ratios, with min and max."""

    med: float
    lo: float
    hi: float
    n: int

    @classmethod
    def of(cls, cand: list[float], base: list[float]) -> "Ratio":
        rs = [c / b for c, b in zip(cand, base) if b > 0]
        return cls(statistics.median(rs), min(rs), max(rs), len(rs))

    def __str__(self) -> str:
        return f"{self.med:.3f} ({self.lo:.2f}–{self.hi:.2f})"

    def short(self) -> str:
        return f"{self.med:.2f} ({self.lo:.2f}–{self.hi:.2f})"


@dataclass
class Samples:
    """Per-round times (seconds) of each named candidate, rounds aligned."""

    times: dict[str, list[float]] = field(default_factory=dict)

    def add(self, name: str, t: float):
        self.times.setdefault(name, []).append(t)

    def median(self, name: str) -> float:
        return statistics.median(self.times[name])

    def ratio(self, name: str, base: str) -> Ratio:
        return Ratio.of(self.times[name], self.times[base])


def interleave(fns: dict[str, Callable[[], float | None]], rounds: int, *, seed: int = 0,
               warmup: int = 1) -> Samples:
    """Run every fn once per round in a shuffled order; each returns its own time or None (timed here).

    The cyclic GC is disabled during each call, so one candidate does not pay
    for the garbage of another. (No gc.collect() before a call: a full
    collection empties CPython's free lists and caches, and the next 0.3 ms of
    work, compile() or a class statement, runs several times slower.)
    """
    rng = random.Random(seed)
    names = list(fns)
    for _ in range(warmup):
        for n in names:
            fns[n]()
    out = Samples()
    for _ in range(rounds):
        rng.shuffle(names)
        for n in names:
            gc.disable()
            try:
                t0 = now()
                got = fns[n]()
                dt = now() - t0
            finally:
                gc.enable()
            out.add(n, got if got is not None else dt)
    return out


def calibrate(fn: Callable[[], object], target_s: float, max_iters: int = 10_000) -> int:
    """How many calls of ``fn`` take about ``target_s`` (at least 1)."""
    times = []
    for _ in range(3):
        t0 = now()
        fn()
        times.append(now() - t0)
    one = max(statistics.median(times), 1e-7)
    return max(1, min(max_iters, int(target_s / one)))


def fmt_time(s: float) -> str:
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.1f} ms" if s >= 0.01 else f"{s * 1e3:.2f} ms"
    return f"{s * 1e6:.0f} µs"


def table(headers: list[str], rows: list[list[str]], *, markdown: bool = False) -> str:
    """A plain-text (aligned) or Markdown table."""
    rows = [[str(c) for c in r] for r in rows]
    if markdown:
        lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    fmt_row = lambda r: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
    return "\n".join([fmt_row(headers), fmt_row(["-" * w for w in widths])] + [fmt_row(r) for r in rows])


def slope(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares line y = a + b x: (b, a)."""
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    return b, my - b * mx
