"""Compile time: compile_spec split into its stages, against constructing the hand-written module.

Stages, as `modelspec.api.compile_spec` runs them:

  parse      read_spec + modelspec.parse.parse   (text -> surface IR)
  elaborate  modelspec.elaborate.elaborate       (names, blocks, shape inference)
  codegen    modelspec.codegen.generate_code     (graph -> source)
  exec       modelspec.build.load_source         (compile + exec of the source; a fresh module each round)
  construct  the generated class's constructor   (weight allocation and initialisation)

The floor is constructing the hand-written class (benchmarks/reference.py),
or, for a spec without one, the generated class itself (already exec'd): the
code a person would write, so the floor is the same weight initialisation.
Times are in-process and warm (parser tables loaded, modules imported); the
first compile in a fresh process is measured separately by `cold_start`.

The stages are an uncached compile. `compile_spec` itself is also timed end
to end twice a round: uncached (its code cache cleared and its module
forgotten, a check on the sum of the stages) and cached (as a program that
compiles the same spec again in one process meets it). Each of those calls
is split where `modelspec.build.construct` begins: before it is the front
end (read, hash, cache look-up or parse to codegen, exec), after it the
construction.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
from dataclasses import dataclass, field

from .measure import Ratio, clock_name, fmt_time, now, slope, table

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STAGES = ["parse", "elaborate", "codegen", "exec", "construct"]


def _torch():
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
        import torch
    return torch


def _forget(model_name: str):
    """Drop the generated modules load_source keeps, so that the next compile execs its code again."""
    import linecache

    for name in [k for k in sys.modules if k.startswith(f"modelspec_generated_{model_name}_")]:
        del sys.modules[name]
    for name in [k for k in linecache.cache if k.startswith(f"<modelspec:{model_name}:")]:
        del linecache.cache[name]


def _fresh_load(code, graph):
    """load_source, forced to exec again (it reuses an already loaded module of the same code)."""
    from modelspec.build import load_source

    _forget(graph.name)
    return load_source(code, graph)


def pipeline(source, *, device=None, seed: int = 0, limits=None) -> dict[str, float]:
    """One compile_spec, stage by stage: seconds per stage (and the module, under "module").

    Under the same conditions as compile_spec: with the garbage collector paused where it pauses it.
    """
    from modelspec import pipeline as stages

    return stages.pausing_gc(_pipeline)(source, device=device, seed=seed, limits=limits)


def _pipeline(source, *, device=None, seed: int = 0, limits=None) -> dict[str, float]:
    torch = _torch()
    from modelspec.pipeline import read_spec
    from modelspec.codegen import generate_code
    from modelspec.elaborate import elaborate
    from modelspec.parse import parse

    t0 = now()
    text, path = read_spec(source)
    spec = parse(text, path)
    t1 = now()
    graph = elaborate(spec, None, text=text, limits=limits)
    t2 = now()
    code = generate_code(graph)
    t3 = now()
    mod = _fresh_load(code, graph)
    t4 = now()
    cls = getattr(mod, graph.name)
    torch.manual_seed(seed)
    if device == "meta":
        with torch.device("meta"):
            model = cls()
    else:
        model = cls()
    t5 = now()
    return {"parse": t1 - t0, "elaborate": t2 - t1, "codegen": t3 - t2, "exec": t4 - t3, "construct": t5 - t4,
            "module": model, "cls": cls}


def timed_compile_spec(path, *, cached: bool) -> tuple[float, float]:
    """(seconds of one real compile_spec call, of which before its construction began): its front end's time.

    Uncached: the code cache cleared and the generated module forgotten first, so every stage runs. The
    split is read off `modelspec.build.construct` as compile_spec calls it, wrapped for the call: what
    follows is the construction.
    """
    from modelspec import api, compile_spec

    if not cached:
        api.code_cache.clear()
        _forget_all()
    hits = api.code_cache.hits
    real = api.construct
    started = []

    def construct(cls, **kwargs):
        started.append(now())
        return real(cls, **kwargs)

    api.construct = construct
    try:
        t = now()
        m = compile_spec(path, seed=0)
        dt = now() - t
    finally:
        api.construct = real
    del m  # its teardown outside the timed region, as for the stages
    if cached and api.code_cache.hits != hits + 1:
        raise RuntimeError(f"compile_spec({path!r}) missed the code cache: the cached figure would be wrong")
    return dt, started[0] - t


def _forget_all():
    import linecache

    for name in [k for k in sys.modules if k.startswith("modelspec_generated_")]:
        del sys.modules[name]
    for name in [k for k in linecache.cache if k.startswith("<modelspec:")]:
        del linecache.cache[name]


@dataclass
class SplitRow:
    label: str
    floor_name: str
    floor: float  # median seconds
    ratios: dict[str, Ratio] = field(default_factory=dict)
    medians: dict[str, float] = field(default_factory=dict)
    share: Ratio | None = None  # (parse + elaborate + codegen + exec) / total, per round: uncached, by stage
    share_uncached: Ratio | None = None  # front end / compile_spec, end to end, cache cleared
    share_cached: Ratio | None = None  # front end / compile_spec, end to end, served from the code cache
    note: str = ""


def split(specs: list[tuple[str, str, object]], rounds: int, log) -> list[SplitRow]:
    """``specs``: (label, path, hand-written factory or None)."""
    torch = _torch()
    rows = []
    for label, path, factory in specs:
        if not os.path.exists(path):
            rows.append(SplitRow(label, "", 0.0, note=f"missing: {os.path.relpath(path, ROOT)}"))
            log(f"  {label}: missing")
            continue
        first = pipeline(path)  # warm: this spec's layers, torch's modules
        floor_name = "hand-written" if factory is not None else "generated class"
        make = factory if factory is not None else first["cls"]
        del first

        def floor():
            torch.manual_seed(0)
            t = now()
            m = make()
            dt = now() - t
            del m  # its teardown outside the timed region, as for the stages
            return dt

        floor()
        timed_compile_spec(path, cached=False)  # fills the code cache for the cached calls
        times: dict[str, list[float]] = {k: [] for k in [*STAGES, "floor", "front", "total", "compile_spec",
                                                         "compile_spec_front", "cached", "cached_front"]}
        rng = random.Random(0)
        for _ in range(rounds):
            order = [0, 1, 2, 3]
            rng.shuffle(order)
            for which in order:
                if which == 0:
                    times["floor"].append(floor())
                elif which == 2:
                    total, front = timed_compile_spec(path, cached=False)
                    times["compile_spec"].append(total)
                    times["compile_spec_front"].append(front)
                elif which == 3:
                    total, front = timed_compile_spec(path, cached=True)
                    times["cached"].append(total)
                    times["cached_front"].append(front)
                else:
                    got = pipeline(path)
                    del got["module"], got["cls"]
                    for k in STAGES:
                        times[k].append(got[k])
                    front = sum(got[k] for k in STAGES[:-1])
                    times["front"].append(front)
                    times["total"].append(front + got["construct"])
        row = SplitRow(label, floor_name, statistics.median(times["floor"]))
        for k in [*STAGES, "total", "compile_spec", "cached", "cached_front"]:
            row.ratios[k] = Ratio.of(times[k], times["floor"])
            row.medians[k] = statistics.median(times[k])
        row.share = Ratio.of(times["front"], times["total"])
        row.share_uncached = Ratio.of(times["compile_spec_front"], times["compile_spec"])
        row.share_cached = Ratio.of(times["cached_front"], times["cached"])
        rows.append(row)
        log(f"  {label}: floor {fmt_time(row.floor)}, compile total {row.ratios['total']}, "
            f"front end {row.share.med:.1%} of it; compile_spec end to end: front end {row.share_uncached.med:.1%} "
            f"uncached, {row.share_cached.med:.1%} cached ({fmt_time(row.medians['cached_front'])})")
    return rows


def _pct(r: Ratio) -> str:
    return f"{r.med:.1%} ({r.lo:.0%}–{r.hi:.0%})" if r.hi >= 0.1 else f"{r.med:.1%} ({r.lo:.1%}–{r.hi:.1%})"


def render_split(rows: list[SplitRow], *, markdown=False) -> str:
    headers = ["spec", "floor (construct hand-written)", *[f"{s} ×" for s in STAGES], "sum ×",
               "compile_spec ×", "front end % of sum", "compile_spec cached ×",
               "compile_spec front-end share (cached)"]
    out = []
    for r in rows:
        if r.note:
            out.append([r.label, r.note] + [""] * (len(headers) - 2))
            continue
        star = "" if r.floor_name == "hand-written" else " *"
        out.append([r.label, fmt_time(r.floor) + star] + [r.ratios[s].short() for s in STAGES]
                   + [r.ratios["total"].short(), r.ratios["compile_spec"].short(), _pct(r.share),
                      r.ratios["cached"].short(), f"{_pct(r.share_cached)}; {fmt_time(r.medians['cached_front'])}"])
    return table(headers, out, markdown=markdown)


def render_end_to_end(rows: list[SplitRow], *, markdown=False) -> str:
    """The front end's share of compile_spec as called, uncached beside cached."""
    headers = ["spec", "front end % of sum (stages, uncached)", "front end % of compile_spec, uncached",
               "front end % of compile_spec, cached", "cached front end"]
    out = [[r.label, _pct(r.share), _pct(r.share_uncached), _pct(r.share_cached), fmt_time(r.medians["cached_front"])]
           for r in rows if not r.note]
    return table(headers, out, markdown=markdown)


# ---------------------------------------------------------------- scaling
@dataclass
class ScaleRow:
    family: str
    layers: int
    lines: int
    medians: dict[str, float]

    @property
    def front(self) -> float:
        return sum(self.medians[k] for k in STAGES[:-1])


def scaling(sizes: list[int], rounds_for, log) -> list[ScaleRow]:
    """Uncached compiles at each size, under the raised limits of benchmarks/scaling.py (10,000 layers in
    residual blocks are ~15,000 modules, over the default bound)."""
    from . import specgen
    from .scaling import _limits

    limits = _limits()

    rows = []
    for family, gen in (("deep MLP", specgen.deep_mlp), ("deep residual", specgen.deep_residual)):
        pipeline(gen(10))  # warm
        for n in sizes:
            text = gen(n)
            rounds = rounds_for(n)
            times: dict[str, list[float]] = {k: [] for k in STAGES}
            for _ in range(rounds):
                got = pipeline(text, limits=limits)
                for k in STAGES:
                    times[k].append(got[k])
                del got
            row = ScaleRow(family, n, text.count("\n"), {k: statistics.median(v) for k, v in times.items()})
            rows.append(row)
            log(f"  {family} {n:,} layers: front end {fmt_time(row.front)} ({row.front / n * 1e6:.0f} µs/layer), "
                f"construct {fmt_time(row.medians['construct'])}  [{rounds} rounds]")
    return rows


def render_scaling(rows: list[ScaleRow], *, markdown=False) -> str:
    headers = ["spec", "layers", *[f"{s} µs/layer" for s in STAGES], "front end", "front end / construct ×"]
    out = []
    for r in rows:
        out.append([r.family, f"{r.layers:,}"] + [f"{r.medians[s] / r.layers * 1e6:.1f}" for s in STAGES]
                   + [fmt_time(r.front), f"{r.front / r.medians['construct']:.2f}"])
    return table(headers, out, markdown=markdown)


def render_slopes(rows: list[ScaleRow], *, markdown=False) -> str:
    """Least-squares slope of each stage's time against the layer count, and the linearity check:
    µs/layer at the largest size over µs/layer at the one before (1.00 = linear)."""
    headers = ["spec", *[f"{s}" for s in STAGES], "front end"]
    out = []
    for family in dict.fromkeys(r.family for r in rows):
        rs = [r for r in rows if r.family == family]
        if len(rs) < 2:
            continue
        xs = [r.layers for r in rs]
        cells = []
        for s in [*STAGES, "front"]:
            ys = [r.front if s == "front" else r.medians[s] for r in rs]
            b, _ = slope(xs, ys)
            growth = (ys[-1] / xs[-1]) / (ys[-2] / xs[-2])
            cells.append(f"{b * 1e6:.1f} µs/layer (×{growth:.2f})")
        out.append([family, *cells])
    return table(headers, out, markdown=markdown)


# ---------------------------------------------------------------- meta device
def meta(rounds: int, log) -> list[list[str]]:
    """compile_spec(device="meta") of a ViT-B-sized spec against compile_spec on CPU."""
    from modelspec import compile_spec

    from . import specgen

    t = now()
    first = pipeline(specgen.VIT_B, device="meta")
    first_total = now() - t
    params = sum(p.numel() for p in first["module"].parameters())
    del first
    times = {"meta": [], "cpu": [], "meta_construct": [], "cpu_construct": []}
    for i in range(rounds):
        for dev in (("meta", "cpu") if i % 2 == 0 else ("cpu", "meta")):
            t = now()
            got = pipeline(specgen.VIT_B, device=dev)
            times[dev].append(now() - t)
            times[dev + "_construct"].append(got["construct"])
            del got
    r = Ratio.of(times["meta"], times["cpu"])
    med = {k: statistics.median(v) for k, v in times.items()}
    log(f"  ViT-B ({params / 1e6:.1f} M params): meta {fmt_time(med['meta'])}, cpu {fmt_time(med['cpu'])}, "
        f"meta/cpu {r}")
    assert compile_spec  # the path measured is compile_spec's own (pipeline mirrors it)
    return [["ViT-B/16-sized", f"{params / 1e6:.1f} M", fmt_time(med["cpu"]), fmt_time(med["meta"]), str(r),
             fmt_time(med["meta"] - med["meta_construct"]), fmt_time(med["meta_construct"]),
             fmt_time(first_total)]]


META_HEADERS = ["spec", "params", "compile_spec cpu", "compile_spec meta", "meta/cpu ×", "meta: front end",
                "meta: construct", "meta, first in process"]


# ---------------------------------------------------------------- cold start
COLD_SCRIPT = r"""
import json, os, sys, time, warnings
warnings.filterwarnings("ignore")
clock = time.process_time if sys.argv[2] == "cpu" else time.perf_counter
t0 = clock()
import modelspec
from modelspec.pipeline import read_spec
from modelspec.parse import parse
from modelspec.elaborate import elaborate
from modelspec.codegen import generate_code
t1 = clock()
import torch
from modelspec.build import load_source
t2 = clock()
text, path = read_spec(sys.argv[1])
spec = parse(text, path)
t3 = clock()
graph = elaborate(spec, None, text=text)
code = generate_code(graph)
t4 = clock()
torch.manual_seed(0)
model = getattr(load_source(code, graph), graph.name)()
t5 = clock()
print(json.dumps({"import modelspec": t1 - t0, "import torch": t2 - t1, "first parse": t3 - t2,
                  "elaborate+codegen": t4 - t3, "exec+construct": t5 - t4}))
"""


def cold_start(path: str, rounds: int, log) -> list[list[str]]:
    """The first compile in a fresh process, stage by stage, uncached (the parser's tables ship with the package
    and are loaded from it; the disk cache of compile_spec is not used here: the stages are called one by one)."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    res = []
    for _ in range(rounds):
        argv = [sys.executable, "-c", COLD_SCRIPT, path, clock_name()]
        out = subprocess.run(argv, capture_output=True, text=True, env=env, check=True)
        res.append(json.loads(out.stdout.strip().splitlines()[-1]))
    med = {k: statistics.median(d[k] for d in res) for k in res[0]}
    parse_r = Ratio.of([d["first parse"] for d in res], [d["exec+construct"] for d in res])
    log(f"  first compile: first parse {fmt_time(med['first parse'])}")
    return [["tables shipped in the package", fmt_time(med["import modelspec"]), fmt_time(med["import torch"]),
             fmt_time(med["first parse"]), fmt_time(med["elaborate+codegen"]), fmt_time(med["exec+construct"]),
             parse_r.short()]]


COLD_HEADERS = ["parser tables", "import modelspec", "import torch", "first parse", "elaborate+codegen",
                "exec+construct", "first parse / construct ×"]
