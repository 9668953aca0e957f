"""Scaling: check, summary and compile against the number of layers, up to 10,000.

Each kind of generated spec (benchmarks/specgen.py) is written at 100, 1,000
and 10,000 layers (catalog layers: the leaves of ``print(model)``), and three
operations are timed on it, in-process and warm:

  check    modelspec.pipeline.check_source          what `modelspec check` runs: parse, elaborate every model
  summary  modelspec.summarize(...).table()         what `modelspec summary` prints
  compile  modelspec.compile_spec                   parse to the constructed module, its code cache cleared and
                                                    its generated module forgotten first, so that every stage runs

The kinds: the deep MLP and deep residual stacks of the compile-time table,
and three that use the language's newer constructs: a GPT-like stack (a
ModuleList comprehension of blocks with parameters, a `for` loop over it in
forward, a 0-dim `param` in each block, a `param` and a `buffer` in the model,
weight tying), a DenseNet-like stack (a ModuleDict comprehension, a forward
that grows a list and joins it with torch.cat, a Sequential comprehension of
stages) and a stack of gated residual blocks (conditional children, on
``in_shape`` and on a block parameter, and an `if` in forward).

Every size of one kind runs in the same interleaved rounds, so each round
gives the ratio of the time per layer at 10,000 layers to that at 1,000:
1.00 is linear. The least-squares slope over the three sizes is the time
each further layer costs. The A/A control: the check at 1,000 layers timed a
second time in every round, against the first: the noise of a ratio that is
1 by construction. At 100 and 1,000 layers each timing is the mean of
several calls (`REPS`), closer to the length of one at 10,000.

The default `Limits` refuse a model of more than 10,000 modules, and blocks
and containers count, so every spec here is checked, summarised and compiled
under `_limits()`, which only raise the bounds on modules, loop passes and steps.
"""

from __future__ import annotations

import gc
import statistics
from dataclasses import dataclass, field
from typing import Callable

from .measure import Ratio, fmt_time, interleave, now, slope, table

SIZES = (100, 1_000, 10_000)
OPS = ("check", "summary", "compile")
AA = "check again"  # the A/A control: the check at CONTROL_SIZE layers, a second candidate of its own
CONTROL_SIZE = 1_000


def _limits():
    from modelspec import Limits

    # 10,000 layers in blocks make 12,000-16,000 modules and up to ~180,000 elaboration steps
    return Limits(max_modules=100_000, max_unroll=100_000, max_steps=10_000_000)


@dataclass
class Kind:
    label: str
    make: Callable[[int], str]  # layers -> spec text


def kinds() -> list[Kind]:
    from . import specgen

    return [Kind("deep MLP", specgen.deep_mlp), Kind("deep residual", specgen.deep_residual),
            Kind("GPT-like stack", specgen.gpt_stack), Kind("DenseNet-like stack", specgen.dense_stack),
            Kind("gated residual blocks", specgen.gated_stack)]


@dataclass
class Result:
    label: str
    layers: dict[int, int] = field(default_factory=dict)  # size asked -> catalog layers built
    modules: dict[int, int] = field(default_factory=dict)  # size asked -> modules built, blocks and containers too
    lines: dict[int, int] = field(default_factory=dict)
    times: dict[str, list[float]] = field(default_factory=dict)  # "check 1000" -> seconds per call, per round

    def per_layer(self, op: str, size: int) -> list[float]:
        return [t / self.layers[size] for t in self.times[f"{op} {size}"]]

    def growth(self, op: str, small: int, large: int) -> Ratio:
        """Time per layer at ``large`` over that at ``small``, round by round (1.00: linear)."""
        return Ratio.of(self.per_layer(op, large), self.per_layer(op, small))

    def slope(self, op: str, sizes) -> float:
        """Seconds per further layer: the least-squares slope of the median times over ``sizes``."""
        return slope([self.layers[n] for n in sizes], [statistics.median(self.times[f"{op} {n}"]) for n in sizes])[0]


def _count(text: str, limits) -> tuple[int, int]:
    """(catalog layers, modules) of the model a spec builds, read off its graph."""
    from modelspec.pipeline import check_source

    nodes = list(check_source(text, limits=limits)[0].graph.root.walk())
    return sum(1 for n in nodes if n.kind == "layer" and n.shared is None), len(nodes)


def _forget_generated():
    from . import compile_time

    compile_time._forget_all()


def operations(text: str, limits, reps: int) -> dict[str, Callable[[], float]]:
    """The timed operations on one spec text: each runs ``reps`` times and returns its mean seconds per call.

    What a call made is dropped and collected after its clock stops: interleave keeps the cyclic collector off
    during each call, and compile_spec's own collection only runs where it is on, so the graphs of a
    10,000-layer spec (tens of MB, in cycles) would otherwise pile up, and the calls after them run in a heap
    that earlier rounds grew.
    """
    from modelspec import api, summarize
    from modelspec.pipeline import check_source

    def timed(run: Callable[[], object], before: Callable[[], None] = lambda: None) -> Callable[[], float]:
        def call():
            total, made = 0.0, []
            for _ in range(reps):
                before()
                t = now()
                made.append(run())
                total += now() - t
            del made  # its teardown outside the timed region
            gc.collect()
            return total / reps
        return call

    def uncached():
        api.code_cache.clear()  # a 10,000-layer spec is too large to be kept; a 100-layer one would be served
        _forget_generated()

    return {"check": timed(lambda: check_source(text, limits=limits)),
            "summary": timed(lambda: summarize(text, limits=limits).table()),
            "compile": timed(lambda: api.compile_spec(text, seed=0, limits=limits), before=uncached)}


# calls averaged in one timing, by size (1 where not named): one call of 100 layers takes ~40 ms and one of 1,000
# ~0.4 s, and on a quiet 2-core VM the CPU time of the same call varies by ±20% from one call to the next
REPS = {100: 10, 1_000: 2}


def measure(rounds: int, log, sizes=SIZES) -> list[Result]:
    """For each kind, ``rounds`` interleaved rounds of every operation at every size, and the A/A check."""
    limits = _limits()
    out = []
    for kind in kinds():
        res = Result(kind.label)
        fns: dict[str, Callable[[], float]] = {}
        for n in sizes:
            text = kind.make(n)
            res.layers[n], res.modules[n] = _count(text, limits)
            res.lines[n] = text.count("\n")
            ops = operations(text, limits, REPS.get(n, 1))
            fns.update({f"{op} {n}": ops[op] for op in OPS})
            if n == CONTROL_SIZE:  # the A/A control: the same check again, a candidate of its own
                fns[AA] = operations(text, limits, REPS.get(n, 1))["check"]
        for fn in operations(kind.make(sizes[0]), limits, 1).values():
            fn()  # warm: this kind's layers and code paths, on the smallest size (a larger one costs a round)
        t0 = now()
        gc.freeze()  # what lives on (torch, the parser tables) out of the collections each call ends with
        try:
            s = interleave(fns, rounds, seed=len(out), warmup=0)
        finally:
            gc.unfreeze()
        res.times = s.times
        out.append(res)
        small, big = sizes[-2], sizes[-1]
        aa = f"; A/A {Ratio.of(res.times[AA], res.times[f'check {CONTROL_SIZE}'])}" if AA in res.times else ""
        log(f"  {kind.label}: {res.layers[big]:,} layers, {res.modules[big]:,} modules; per layer at {big:,} over "
            f"{small:,}: " + ", ".join(f"{op} {res.growth(op, small, big)}" for op in OPS)
            + f"{aa}  [{rounds} rounds, {fmt_time(now() - t0)}]")
    return out


def render_per_layer(results: list[Result], *, markdown: bool = False) -> str:
    """µs per layer of each operation at each size (medians), beside the time of the whole call."""
    headers = ["spec", "layers", "modules", "spec lines", *[f"{op} µs/layer" for op in OPS],
               *[f"{op}, whole" for op in OPS]]
    rows = []
    for r in results:
        for n in r.layers:
            rows.append([r.label, f"{r.layers[n]:,}", f"{r.modules[n]:,}", f"{r.lines[n]:,}"]
                        + [f"{statistics.median(r.per_layer(op, n)) * 1e6:.1f}" for op in OPS]
                        + [fmt_time(statistics.median(r.times[f"{op} {n}"])) for op in OPS])
    return table(headers, rows, markdown=markdown)


def render_linearity(results: list[Result], *, markdown: bool = False) -> str:
    """Per layer at the largest size over the one before, round by round; the slopes; the A/A control."""
    if not results:
        return ""
    sizes = list(results[0].layers)
    small, large = sizes[-2], sizes[-1]
    headers = ["spec", *[f"{op} × ({large:,} / {small:,})" for op in OPS], f"A/A × (check {CONTROL_SIZE:,})",
               *[f"{op} slope" for op in OPS]]
    rows = []
    for r in results:
        rows.append([r.label] + [r.growth(op, small, large).short() for op in OPS]
                    + [Ratio.of(r.times[AA], r.times[f"check {CONTROL_SIZE}"]).short()]
                    + [f"{r.slope(op, sizes) * 1e6:.1f} µs/layer" for op in OPS])
    return table(headers, rows, markdown=markdown)
