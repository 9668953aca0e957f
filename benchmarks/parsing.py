"""Parsing speed and the peak memory of compiling a large generated spec.

Lines per second of modelspec's Lark LALR front end (text -> surface IR,
`modelspec.parse.parse`) against CPython's own parser (`ast.parse`) on the
code generated for the same model, a line count of the same order. Peak
memory is measured in fresh processes (the resident set sampled every
millisecond): the peak RSS that `compile_spec` adds over the imports, against
the peak that constructing the same module from its (already generated)
source adds; and, with tracemalloc, the peak of the front end's Python
allocations alone.
"""

from __future__ import annotations

import ast
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile

from .measure import Ratio, now, table

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def speed(layers: int, rounds: int, log) -> list[list[str]]:
    from modelspec.api import elaborate_spec
    from modelspec.codegen import generate_code
    from modelspec.parse import parse

    from . import specgen
    from .scaling import _limits  # 10,000 layers in residual blocks are over the default bound on modules

    rows = []
    for family, gen in (("deep MLP", specgen.deep_mlp), ("deep residual", specgen.deep_residual)):
        text = gen(layers)
        code = generate_code(elaborate_spec(text, limits=_limits()))
        n_spec, n_code = text.count("\n"), code.count("\n")
        parse(text)
        lark, cpy = [], []
        for i in range(rounds):
            for which in ((0, 1) if i % 2 == 0 else (1, 0)):
                gc.disable()  # both parsers alone, without the cyclic GC's passes over what they build
                t = now()
                if which == 0:
                    parse(text)
                    lark.append(now() - t)
                else:
                    ast.parse(code)
                    cpy.append(now() - t)
                gc.enable()
        # lines per second, each on its own text: ratio = (spec lines / lark time) / (code lines / ast time)
        lark_rate = [n_spec / t for t in lark]
        cpy_rate = [n_code / t for t in cpy]
        r = Ratio.of(lark_rate, cpy_rate)
        rows.append([family, f"{n_spec:,}", f"{len(text) / 1e6:.2f} MB", f"{statistics.median(lark_rate):,.0f}",
                     f"{statistics.median(cpy_rate):,.0f}", r.short()])
        log(f"  {family}, {n_spec:,} lines: Lark {statistics.median(lark_rate):,.0f} lines/s, "
            f"ast.parse {statistics.median(cpy_rate):,.0f} lines/s, ratio {r}")
    return rows


SPEED_HEADERS = ["spec", "lines", "size", "modelspec parse lines/s", "ast.parse lines/s (generated code)",
                 "modelspec / ast ×"]


MEM_SCRIPT = r"""
import json, os, sys, threading, time, warnings
warnings.filterwarnings("ignore")
import torch
from modelspec import Limits, compile_spec
from modelspec.api import elaborate_spec
LIMITS = Limits(max_modules=100_000, max_unroll=100_000, max_steps=10_000_000)  # as benchmarks/scaling.py's
from modelspec.codegen import generate_code
torch.set_num_threads(1)
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


class PeakRSS:
    # samples the resident set every millisecond: the peak above the RSS at the start
    def __enter__(self):
        sys.setswitchinterval(0.0005)
        self.base = self.peak = rss()
        self.done = False
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()
        return self

    def sample(self):
        while not self.done:
            self.peak = max(self.peak, rss())
            time.sleep(0.001)

    def __exit__(self, *exc):
        self.done = True
        self.thread.join()
        self.peak = max(self.peak, rss())
        self.added = self.peak - self.base


compile_spec("model M(x: [B, 4]) { fc = Linear(_, 2) }")  # warm: parser tables, layers
text = open(sys.argv[2]).read()
if sys.argv[1] == "compile_spec":
    with PeakRSS() as m:
        model = compile_spec(text, limits=LIMITS)
elif sys.argv[1] == "construct":
    ns = {}
    exec(compile(open(sys.argv[3]).read(), "gen", "exec"), ns)
    with PeakRSS() as m:
        model = ns[sys.argv[4]]()
else:  # the front end's Python allocations
    import tracemalloc
    tracemalloc.start()
    code = generate_code(elaborate_spec(text, limits=LIMITS))
    print(json.dumps({"peak": tracemalloc.get_traced_memory()[1]}))
    sys.exit()
params = sum(p.numel() * p.element_size() for p in model.parameters())
print(json.dumps({"peak": m.added, "weights": params}))
"""


def memory(layers: int, rounds: int, log) -> list[list[str]]:
    if not os.path.exists("/proc/self/statm"):
        log("  peak memory: not measured (needs Linux /proc)")
        return []
    from modelspec.api import elaborate_spec
    from modelspec.codegen import generate_code

    from . import specgen
    from .scaling import _limits

    rows = []
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with tempfile.TemporaryDirectory() as tmp:
        for family, gen in (("deep MLP", specgen.deep_mlp), ("deep residual", specgen.deep_residual)):
            text = gen(layers)
            graph = elaborate_spec(text, limits=_limits())
            spec_path, code_path = os.path.join(tmp, "big.nnspec"), os.path.join(tmp, "big.py")
            with open(spec_path, "w") as f:
                f.write(text)
            with open(code_path, "w") as f:
                f.write(generate_code(graph))
            got: dict[str, list[dict]] = {"compile_spec": [], "construct": [], "front end (tracemalloc)": []}
            for _ in range(rounds):
                for kind in got:
                    out = subprocess.run([sys.executable, "-c", MEM_SCRIPT, kind, spec_path, code_path, graph.name],
                                         capture_output=True, text=True, env=env, cwd=ROOT)
                    if out.returncode != 0:
                        raise RuntimeError(out.stderr[-800:])
                    got[kind].append(json.loads(out.stdout.strip().splitlines()[-1]))
            med = {k: statistics.median(d["peak"] for d in v) for k, v in got.items()}
            weights = got["construct"][0]["weights"]
            r = Ratio.of([d["peak"] for d in got["compile_spec"]], [max(d["peak"], 1) for d in got["construct"]])
            rows.append([family, f"{layers:,}", f"{weights / 1e6:.1f} MB", f"{med['construct'] / 1e6:.0f} MB",
                         f"{med['compile_spec'] / 1e6:.0f} MB", r.short(),
                         f"{med['front end (tracemalloc)'] / 1e6:.0f} MB"])
            log(f"  {family} {layers:,} layers: peak RSS added by compile_spec {med['compile_spec'] / 1e6:.0f} MB, "
                f"by construction alone {med['construct'] / 1e6:.0f} MB ({r})")
    return rows


MEM_HEADERS = ["spec", "layers", "weights", "peak RSS: construct generated class", "peak RSS: compile_spec",
               "compile_spec / construct ×", "front end, Python peak (tracemalloc)"]


def render(headers, rows, *, markdown=False) -> str:
    return table(headers, rows, markdown=markdown)
