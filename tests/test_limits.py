"""Limits hold: no spec exhausts the machine, and each refusal is a located SpecError before any tensor exists.

The limits (`modelspec.Limits`, `modelspec.pipeline.MAX_FILE_BYTES`, the parser's
`MAX_NESTING`, forward's `MAX_LOOP_NESTING`) and their defaults:

* max_params = 1,000,000,000 parameters and raw buffer elements (4 GB of
  float32): `--max-params N` on the command line, ``limits=Limits(max_params=N)``
  in Python;
* max_modules = 10,000 modules built; max_depth = 32 blocks inside blocks;
* max_unroll = 10,000 loop passes in all (comprehensions, range(), for loops);
* files of 5,000,000 bytes; expressions 100 levels deep; for loops 16 deep.

A limit is tested by what it refuses (a located `SpecLimitError` with a hint) and by the memory the
refusal takes (tracemalloc's peak, or ru_maxrss in a fresh process), never by the time it takes: a
time limit fails on a loaded machine, and how fast modelspec is lives in benchmarks/.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc

import pytest

from conftest import ROOT
from modelspec import Limits, SpecError, compile_spec, elaborate_spec, generate_code
from modelspec.pipeline import MAX_FILE_BYTES
from modelspec.errors import SpecLimitError
from modelspec.forward import MAX_LOOP_NESTING
from modelspec.parse import MAX_NESTING

BIG = "model Big(x: [B, 4]) {\n    fc = Linear(_, 10 ** 12)\n}\n"


def refused(spec, limits=None) -> SpecLimitError:
    with pytest.raises(SpecLimitError) as info:
        elaborate_spec(spec, limits=limits)
    err = info.value
    assert err.line is not None and err.column is not None and err.hint
    return err


# ------------------------------------------------------------------ parameters
def test_a_trillion_parameters_are_refused_in_flat_memory():
    """Refused before torch is imported, let alone a tensor allocated: a fresh Python shows it."""
    prog = (
        "import json, resource, sys, tracemalloc\n"
        "from modelspec import compile_spec, SpecError\n"
        "tracemalloc.start(); rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "try:\n"
        "    compile_spec(sys.argv[1])\n"
        "except SpecError as err:\n"
        "    message = str(err)\n"
        "print(json.dumps({'peak': tracemalloc.get_traced_memory()[1], 'message': message,\n"
        "                  'rss_growth_kb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss,\n"
        "                  'torch': 'torch' in sys.modules}))\n"
    )
    res = subprocess.run([sys.executable, "-c", prog, BIG], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT)
    r = json.loads(res.stdout)
    assert r["peak"] < 20_000_000 and r["rss_growth_kb"] < 100_000, r  # megabytes, where the weights are 20 TB
    assert not r["torch"], "torch was imported: the refusal came too late"
    assert "5,000,000,000,000 parameters" in r["message"] and "1,000,000,000" in r["message"]
    assert "--max-params" in r["message"] and "Limits(max_params=" in r["message"]
    assert "<spec>:2:10:" in r["message"]


def test_the_default_budget():
    assert Limits().max_params == 1_000_000_000
    under = "model M(x: [B, 1000]) { fc = Linear(_, 999_000) }"  # 999,999,000 parameters: checked, not built
    assert elaborate_spec(under).total_params == 999_999_000
    err = refused("model M(x: [B, 1000]) { fc = Linear(_, 1_000_000) }")
    assert "1,001,000,000 parameters" in err.message


def test_the_budget_is_configurable_in_python():
    roomy = Limits(max_params=10**13, max_activation_bytes=10**13)  # its output alone is 4 TB
    graph = elaborate_spec(BIG, limits=roomy)
    assert graph.total_params == 5 * 10**12
    assert "over the limit of 1,000" in refused(ROOT / "specs" / "cnn.nnspec", Limits(max_params=1000)).message
    with pytest.raises(SpecLimitError):
        compile_spec(ROOT / "specs" / "cnn.nnspec", limits=Limits(max_params=1000))
    with pytest.raises(SpecLimitError):
        generate_code(BIG)
    assert "nn.Linear(4, 10 ** 12)" in generate_code(BIG, limits=roomy)


@pytest.mark.parametrize("command", ["check", "codegen", "summary", "graph", "run"])
def test_the_budget_is_configurable_on_the_command_line(command, tmp_path):
    spec = tmp_path / "big.nnspec"
    spec.write_text(BIG)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "-m", "modelspec", command, str(spec)], capture_output=True, text=True,
                         env=env)
    assert res.returncode == 1, res.stderr
    assert "5,000,000,000,000 parameters, over the limit of 1,000,000,000" in res.stderr
    assert "--max-params" in res.stderr
    if command != "run":  # raised, the budget lets the spec through (run would then really allocate 20 TB)
        res = subprocess.run([sys.executable, "-m", "modelspec", command, "--max-params", "1e13",
                              "--max-activations", "1e13", str(spec)],
                             capture_output=True, text=True, env=env)
        assert res.returncode == 0, res.stderr
    res = subprocess.run([sys.executable, "-m", "modelspec", command, "--max-params", "lots", str(spec)],
                         capture_output=True, text=True, env=env)
    assert res.returncode == 2 and "not a count" in res.stderr


def test_buffers_count_against_the_budget():
    err = refused("model M(x: [B, 4]) { buffer t: [100000, 100000] = zeros\n forward(x) { return x } }")
    assert "10,000,000,000 parameters and buffer elements" in err.message


def test_parameters_and_buffers_are_counted_where_they_are_declared():
    err = refused("model M(x: [B, 4]) { a = Linear(_, 4)\n param W: [40000, 40000] = randn\n"
                  " forward(x) { return a(x) } }")
    assert (err.line, err.column) == (2, 2)


# ------------------------------------------------------------------ modules, depth, unrolling
def test_module_count():
    spec = "model M(x: [B, 4]) { s = Sequential(*[ReLU() for _ in range(20)]) }"
    assert elaborate_spec(spec, limits=Limits(max_modules=30))
    err = refused(spec, Limits(max_modules=10))
    assert "more than 10 modules" in err.message


def test_modules_inside_repeated_blocks_count_too():
    spec = ("block Wide() {\n" + "".join(f"    r{i} = ReLU()\n" for i in range(50)) + "}\n"
            "model M(x: [B, 4]) { s = Sequential(*[Wide() for _ in range(100)]) }")
    err = refused(spec, Limits(max_modules=1000))
    assert "more than 1,000 modules" in err.message


def _chain(n: int) -> str:
    blocks = "block B0() {\n    fc = Linear(_, 4)\n}\n"
    blocks += "".join(f"block B{i}() {{\n    inner = B{i - 1}()\n}}\n" for i in range(1, n))
    return blocks + f"model M(x: [B, 4]) {{\n    net = B{n - 1}()\n}}\n"


def test_block_depth():
    assert Limits().max_depth == 32
    assert elaborate_spec(_chain(32))
    err = refused(_chain(33))
    assert "deeper than 32 levels" in err.message
    assert elaborate_spec(_chain(40), limits=Limits(max_depth=40))


def test_unroll_per_loop_and_in_all():
    assert Limits().max_unroll == 10_000
    more_modules = Limits(max_modules=100_000)  # else the floor refuses them first, for their modules
    assert elaborate_spec("model M(x: [B, 4]) { s = Sequential(*[ReLU() for _ in range(10000)]) }", limits=more_modules)
    assert "unroll limit" in refused("model M(x: [B, 4]) { s = Sequential(*[ReLU() for _ in range(10001)]) }",
                                     more_modules).message
    nested = "model M(x: [B, 4]) { s = Sequential(*[Sequential(*[ReLU() for _ in range(200)]) for _ in range(100)]) }"
    assert "passes in all" in refused(nested, more_modules).message
    assert elaborate_spec(nested, limits=Limits(max_unroll=30_000, max_modules=100_000))
    refused("model M(x: [B, 4]) { s = Sequential(*[ReLU() for _ in range(10 ** 30)]) }")


def test_forward_loops_count_as_unrolled():
    spec = ("model M(x: [B, 4]) { ls = ModuleList([Linear(4, 4) for _ in range(100)])\n"
            " forward(x) { for a in ls { for b in ls { for c in ls { x = c(x) } } }\n return x } }")
    assert "passes in all" in refused(spec).message


def test_sequences_cannot_double_forever():
    lines = ["const A0 = [i for i in range(100)]"] + [f"const A{i} = A{i - 1} + A{i - 1}" for i in range(1, 40)]
    spec = "\n".join(lines) + "\nmodel M(x: [B, 4]) { fc = Linear(_, 2) }"
    assert "items, over the limit" in refused(spec).message


def test_numbers_are_bounded():
    assert "out of range" in refused("model M(x: [B, 4]) { fc = Linear(_, 10 ** 19) }").message
    err = refused("model M(x: [B, 4]) { fc = Linear(_, 2 ** 64 ** 64) }")
    assert "out of range" in err.message


# ------------------------------------------------------------------ nesting: no RecursionError, ever
@pytest.mark.parametrize("shape", ["neg", "sum", "calls", "lists", "attributes", "not", "power"])
def test_deep_nesting_is_a_located_error(shape):
    n = 5000
    expr = {
        "neg": "-" * n + "x",
        "sum": " + ".join(["x"] * n),
        "calls": "F.relu(" * n + "x" + ")" * n,
        "lists": "[" * n + "x" + "]" * n,
        "attributes": "x" + ".relu()" * n,
        "not": "not " * n + "True",
        "power": " ** ".join(["1"] * n),
    }[shape]
    err = refused(f"model M(x: [B, 4]) {{\n    forward(x) {{\n        return {expr}\n    }}\n}}\n")
    assert err.line == 3 and f"more than {MAX_NESTING} levels" in err.message


def test_the_deepest_spec_the_limits_allow_compiles_with_stack_to_spare():
    """32 blocks deep, an expression nearly MAX_NESTING deep at the bottom: compiles in a third of the stack."""
    inner = "block B0() {\n    fc = Linear(_, 4)\n    forward(x) {\n        return fc(" + "-" * 90 + "x)\n    }\n}\n"
    spec = inner + _chain(32).split("\n", 3)[3]
    depth = len(__import__("inspect").stack(0))
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + 600)  # the default is 1000; this leaves room for callers deeper than pytest
    try:
        code = generate_code(spec)
        compile(code, "<deep>", "exec")
    finally:
        sys.setrecursionlimit(old)


def test_for_loop_nesting():
    def loops(n):
        body = "".join(f"for l{i} in ls {{\n" for i in range(n)) + "x = l0(x)\n" + "}\n" * n
        return f"model M(x: [B, 4]) {{ ls = ModuleList([Linear(4, 4)])\n forward(x) {{\n{body} return x }} }}"

    compile(generate_code(loops(MAX_LOOP_NESTING)), "<loops>", "exec")
    assert f"more than {MAX_LOOP_NESTING} deep" in refused(loops(MAX_LOOP_NESTING + 1)).message


# ------------------------------------------------------------------ file size
def test_file_size(tmp_path):
    big = tmp_path / "huge.nnspec"
    with open(big, "wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)  # sparse: the check reads the size, not the bytes
    tracemalloc.start()
    try:
        with pytest.raises(SpecError) as info:
            elaborate_spec(big)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000, f"{peak:,} bytes to refuse a file by its size"
    assert "over the limit of 5,000,000" in info.value.message and info.value.hint
    with pytest.raises(SpecError):
        elaborate_spec("model M(x: [B, 4]) {\n" + "#" * MAX_FILE_BYTES + "\n}")


LIMITED = {  # specs that ask for far more than the limits allow, and what the refusal says
    "parameters": (BIG, "5,000,000,000,000 parameters"),
    "depth": (_chain(40), "deeper than 32 levels"),
    "unroll": ("model M(x: [B, 4]) { s = Sequential(*[ReLU() for _ in range(10 ** 9)]) }", "10,000"),
    "unroll-huge": ("model M(x: [B, 4]) { s = Sequential(*[ReLU() for _ in range(10 ** 30)]) }", "out of range"),
    "unroll-in-all": ("const A = [len([0 for _ in range(200)]) for _ in range(100)]\n"
                      "model M(x: [B, 4]) { fc = Linear(_, 2) }", "passes in all"),
    "forward-loops": ("model M(x: [B, 4]) { ls = ModuleList([Linear(4, 4) for _ in range(100)])\n"
                      " forward(x) { for a in ls { for b in ls { for c in ls { x = c(x) } } }\n return x } }",
                      "passes in all"),
    "doubling": ("\n".join(["const A0 = [i for i in range(100)]"]
                           + [f"const A{i} = A{i - 1} + A{i - 1}" for i in range(1, 40)])
                 + "\nmodel M(x: [B, 4]) { fc = Linear(_, 2) }", "items, over the limit"),
    "nesting": ("model M(x: [B, 4]) { forward(x) { return " + "-" * 50_000 + "x } }",
                f"more than {MAX_NESTING} levels"),
}


@pytest.mark.parametrize("name", LIMITED)
def test_every_limit_error_is_refused_in_bounded_memory(name):
    """What a refusal allocates follows from the spec's text, not from what the spec asks for
    (10**9 modules, 5 * 10**12 parameters, 100 * 2**39 list items would not fit in any machine)."""
    spec, message = LIMITED[name]
    tracemalloc.start()
    try:
        err = refused(spec)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert message in err.message
    assert peak < 20_000_000 + 1_000 * len(spec), f"{peak:,} bytes to refuse a spec of {len(spec):,} characters"
