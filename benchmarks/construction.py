"""compile_spec against constructing the hand-written module: warm in a process, and the first call in a new one.

Every bundled spec (specs/*.nnspec and specs/tutorials/*.nnspec). The floor
is constructing the module a person would write: the hand-written class of
benchmarks/reference.py where there is one, else the code `modelspec codegen`
prints, saved as a .py file and imported as one (the class a person would
have written, line for line).

Warm: in this process, the spec compiled once before (its code cached, its
file's stat settled): `compile_spec(path)` against the floor's constructor,
each sample as many calls as take ~10 ms, interleaved rounds, with an A/A row
(the floor against itself).

First call in a new process: one ``python -c`` process per sample, which
imports torch and then runs either the floor, ``import <printed module>;
Model()`` (the .py compiled to its .pyc beforehand, as an installed module
is), or ``import modelspec; modelspec.compile_spec(path)`` with the disk
cache filled by an earlier process, and times that part itself; the whole
process (the interpreter's start and ``import torch`` included) is timed
from outside, on the wall clock. A process that finds lark loaded after
compile_spec has parsed, missing the disk cache, and stops the benchmark.
"""

from __future__ import annotations

import compileall
import json
import os
import py_compile
import random
import statistics
import subprocess
import sys
import tempfile
import warnings
from dataclasses import dataclass

from .measure import Ratio, calibrate, clock_name, fmt_time, interleave, now, table

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPECS = os.path.join(ROOT, "specs")


def bundled() -> list[tuple[str, str, object]]:
    """(label, path, hand-written factory or None) for every bundled spec, those with a factory first."""
    from . import reference, runtime

    named = {b.spec: getattr(reference, b.reference, None) for b in runtime.BENCHES if not b.generated}
    labels = {b.spec: b.label for b in runtime.BENCHES if not b.generated}
    out = [(labels[s], os.path.join(SPECS, s), f) for s, f in named.items()]
    for folder, prefix in ((SPECS, ""), (os.path.join(SPECS, "tutorials"), "tutorials/")):
        for name in sorted(os.listdir(folder)):
            if name.endswith(".nnspec") and not (prefix == "" and name in named):
                out.append((prefix + name.removesuffix(".nnspec"), os.path.join(folder, name), None))
    return out


def printed_module(path: str, folder: str, index: int) -> tuple[str, str]:
    """Save the spec's printed code as ``folder/printed_<index>.py``, compiled to its .pyc: (module, class)."""
    from modelspec import elaborate_spec, generate_code

    name = f"printed_{index}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = elaborate_spec(path)
        code = generate_code(graph)
    file = os.path.join(folder, name + ".py")
    with open(file, "w", encoding="utf-8") as f:
        f.write(code)
    py_compile.compile(file, doraise=True)  # what an installed module has; written whatever PYTHONDONTWRITEBYTECODE
    return name, graph.name


@dataclass
class Row:
    label: str
    floor_name: str  # "hand-written" or "printed"
    warm_floor: float = 0.0
    warm: Ratio | None = None
    warm_aa: Ratio | None = None
    fresh_floor: float = 0.0
    fresh_modelspec: float = 0.0
    fresh: Ratio | None = None
    fresh_aa: Ratio | None = None
    whole_floor: float = 0.0
    whole: Ratio | None = None
    whole_aa: Ratio | None = None


# ---------------------------------------------------------------- warm
def warm(rows: list[Row], specs, floors: dict, rounds: int, log) -> None:
    from modelspec import compile_spec

    for row, (label, path, _) in zip(rows, specs):
        make = floors[label]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile_spec(path)
            compile_spec(path)  # its call now settled in the cache
        k = calibrate(make, 10e-3, max_iters=3000)

        def many(fn, k=k):
            def run():
                kept = []
                t = now()
                for _ in range(k):
                    kept.append(fn())
                dt = now() - t
                del kept  # teardown outside the timed region
                return dt / k
            return run

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = interleave({"floor": many(make), "A/A": many(make),
                              "compile_spec": many(lambda: compile_spec(path))}, rounds)
        row.warm_floor = got.median("floor")
        row.warm = got.ratio("compile_spec", "floor")
        row.warm_aa = got.ratio("A/A", "floor")
        log(f"  warm {label}: floor {fmt_time(row.warm_floor)} ({k} per sample), compile_spec {row.warm}, "
            f"A/A {row.warm_aa}")


# ---------------------------------------------------------------- first call in a new process
CHILD = r"""
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import torch
torch.set_num_threads(1)
clock = time.process_time if sys.argv[1] == "cpu" else time.perf_counter
t = clock()
if sys.argv[2] == "modelspec":
    import modelspec
    model = modelspec.compile_spec(sys.argv[3])
else:
    sys.path.insert(0, sys.argv[3])
    model = getattr(__import__(sys.argv[4]), sys.argv[5])()
dt = clock() - t
print(json.dumps({"t": dt, "front_end": [m for m in ("lark", "pydantic") if m in sys.modules]}))
"""


def _child(job: list[str], env: dict) -> tuple[float, dict]:
    """(wall seconds of the whole process, what it reported)."""
    import time

    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CHILD, clock_name(), *job], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if out.returncode != 0:
        raise RuntimeError(f"{job}: {out.stderr.strip().splitlines()[-1:]}")
    return wall, json.loads(out.stdout.strip().splitlines()[-1])


def fresh(rows: list[Row], specs, modules: dict, folder: str, env: dict, rounds: int, log) -> None:
    for row, (label, path, _) in zip(rows, specs):
        module, cls = modules[label]
        _, filled = _child(["modelspec", path], env)  # fills the disk cache
        if "lark" not in filled["front_end"]:
            raise RuntimeError(f"{label}: the first compile in the cache's folder found an entry already")
        jobs = {"floor": ["printed", folder, module, cls], "A/A": ["printed", folder, module, cls],
                "compile_spec": ["modelspec", path]}
        times: dict[str, list[float]] = {k: [] for k in jobs}
        walls: dict[str, list[float]] = {k: [] for k in jobs}
        names = list(jobs)
        rng = random.Random(0)
        for _ in range(rounds):
            rng.shuffle(names)
            for name in names:
                wall, got = _child(jobs[name], env)
                if name == "compile_spec" and "lark" in got["front_end"]:
                    raise RuntimeError(f"{label}: compile_spec in a new process missed the disk cache (it parsed)")
                times[name].append(got["t"])
                walls[name].append(wall)
        row.fresh_floor = statistics.median(times["floor"])
        row.fresh_modelspec = statistics.median(times["compile_spec"])
        row.fresh = Ratio.of(times["compile_spec"], times["floor"])
        row.fresh_aa = Ratio.of(times["A/A"], times["floor"])
        row.whole = Ratio.of(walls["compile_spec"], walls["floor"])
        row.whole_aa = Ratio.of(walls["A/A"], walls["floor"])
        row.whole_floor = statistics.median(walls["floor"])
        log(f"  new process {label}: after import torch: floor {fmt_time(row.fresh_floor)}, compile_spec "
            f"{fmt_time(row.fresh_modelspec)}, {row.fresh}, A/A {row.fresh_aa}; whole process "
            f"{fmt_time(row.whole_floor)}: {row.whole}, A/A {row.whole_aa}")


def run(rounds_warm: int, rounds_fresh: int, log) -> list[Row]:
    compileall.compile_dir(os.path.join(ROOT, "modelspec"), quiet=1)  # as installed: its .pyc written
    specs = bundled()
    rows = [Row(label, "hand-written" if factory is not None else "printed") for label, _, factory in specs]
    with tempfile.TemporaryDirectory() as folder:
        modules, floors = {}, {}
        sys.path.insert(0, folder)
        try:
            for i, (label, path, factory) in enumerate(specs):
                modules[label] = printed_module(path, folder, i)
                if factory is not None:
                    floors[label] = factory
                else:
                    mod = __import__(modules[label][0])
                    floors[label] = getattr(mod, modules[label][1])
            env = {k: v for k, v in os.environ.items() if k != "MODELSPEC_NO_CACHE"}
            env.update(MODELSPEC_CACHE_DIR=os.path.join(folder, "cache"), PYTHONPATH=ROOT)
            log("-- warm, in this process")
            warm(rows, specs, floors, rounds_warm, log)
            log("-- the first call in a new process")
            fresh(rows, specs, modules, folder, env, rounds_fresh, log)
        finally:
            sys.path.remove(folder)
    return rows


HEADERS = ["spec", "floor", "warm: construct", "compile_spec ×", "A/A ×", "new process: floor",
           "new process: compile_spec", "compile_spec ×", "A/A ×", "whole process", "compile_spec ×", "A/A ×"]


def render(rows: list[Row], *, markdown: bool = False) -> str:
    out = []
    for r in rows:
        out.append([r.label, r.floor_name, fmt_time(r.warm_floor), r.warm.short(), r.warm_aa.short(),
                    fmt_time(r.fresh_floor), fmt_time(r.fresh_modelspec), r.fresh.short(), r.fresh_aa.short(),
                    fmt_time(r.whole_floor), r.whole.short(), r.whole_aa.short()])
    return table(HEADERS, out, markdown=markdown)


def summary(rows: list[Row]) -> str:
    def over(ratio) -> list[str]:
        return [r.label for r in rows if ratio(r).med > 1.05]

    parts = []
    for what, ratio in (("warm", lambda r: r.warm), ("new process, after import torch", lambda r: r.fresh),
                        ("whole process", lambda r: r.whole)):
        missed = over(ratio)
        parts.append(f"{what}: {len(rows) - len(missed)} of {len(rows)}"
                     + (f" (over: {', '.join(missed)})" if missed else ""))
    return "Within 1.05 × (median): " + "; ".join(parts) + "."
