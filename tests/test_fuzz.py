"""Fuzzing in every CI run: thousands of mutated and generated specs, and not one crash.

Each case (``tests/fuzzing.py``) is a bundled spec or error case mutated
(characters and tokens inserted, deleted, duplicated, swapped; numbers made
extreme; names and strings replaced with hostile ones; bad bytes) or a program
drawn from the grammar. Checking it must raise nothing but `SpecError`, each
with a line and column inside the file and its rendering showing that line;
a spec that compiles must print inert, valid Python.

The seeds are fixed, so a failure here reproduces; set MODELSPEC_FUZZ_SEED to
explore others, MODELSPEC_FUZZ_CASES for more cases. The long run is
``tests/fuzz_long.py`` (see the README).
"""

from __future__ import annotations

import collections
import os
import random

import pytest

import fuzzing
from inert import inert_problem
from modelspec import SpecError
from modelspec.api import elaborate_spec

SEED = int(os.environ.get("MODELSPEC_FUZZ_SEED", "20240601"))
CASES = int(os.environ.get("MODELSPEC_FUZZ_CASES", "5200"))
BATCHES = 8
RUN = {"cases": 0}  # counted in this process: make test runs a file's tests in one xdist worker (--dist loadfile)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return fuzzing.workdir(tmp_path_factory.mktemp("fuzz"))


def _report(failures) -> str:
    lines = [f"{len(failures)} failing cases; the first ones (kind, bytes, problem):"]
    for kind, data, problem in failures[:5]:
        lines += [f"--- {kind}", repr(data[:800]), problem[-1500:]]
    return "\n".join(lines)


@pytest.mark.parametrize("batch", range(BATCHES))
def test_fuzz(batch, workdir):
    n = CASES // BATCHES + (1 if batch < CASES % BATCHES else 0)
    count, failures = fuzzing.run(SEED + batch, n, workdir / f"b{batch}", inert=inert_problem)
    RUN["cases"] += count
    assert not failures, _report(failures)


def test_fuzz_ran_enough_cases():
    if RUN["cases"] == 0:
        pytest.skip("the fuzz batches did not run in this session")
    assert RUN["cases"] >= min(CASES, 5000)


def test_cases_reach_every_stage(workdir):
    """The fuzzer is only as good as its cases: they must get past the parser, and fail in every stage."""
    seen = collections.Counter()
    path = workdir / "stages.nnspec"
    for _, data in fuzzing.cases(SEED, 1500):
        path.write_bytes(data)
        try:
            elaborate_spec(path)
            seen["compiles"] += 1
        except SpecError as err:
            seen[type(err).__name__] += 1
    for kind in ("SpecSyntaxError", "SpecNameError", "SpecArgError", "SpecShapeError", "SpecLimitError",
                 "SpecImportError", "compiles"):
        assert seen[kind] >= 5, f"only {seen[kind]} cases end in {kind}: {dict(seen)}"
    assert seen["SpecSyntaxError"] < 0.8 * sum(seen.values()), dict(seen)


def test_grammar_generator_writes_grammatical_programs():
    gen = fuzzing.GrammarGen()
    rng = random.Random(SEED)
    syntax = 0
    for _ in range(200):
        text = gen.program(rng)
        try:
            fuzzing._parser().parse(text)
        except Exception:
            syntax += 1
    assert syntax <= 20, f"{syntax} of 200 generated programs do not parse"


def test_every_mutation_changes_specs():
    rng = random.Random(SEED)
    for mutation in fuzzing.MUTATIONS:
        name, text, tokens = fuzzing.CORPUS[0]
        changed = sum(mutation(rng, text, tokens) != text for _ in range(20))
        assert changed >= 10, f"{mutation.__name__} changed only {changed} of 20"


# Crashes the fuzzer found, fixed: each must now end in a located SpecError or compile (the ones that are
# errors are also in tests/errors/, as fuzz_* or by what they test).
REGRESSIONS = {
    # an explicitly sized layer that forward never calls: bind() asked the missing input for in_features
    "never_called_explicit": b"model M(x: [B, 4]) {\n fc1 = Linear(4, 8)\n fc2 = Linear(128, 10)\n"
                             b" forward(x) { return fc1(x) }\n}\n",
    # an explicit in_features against a symbolic dim: ArgProblem escaped from bind()
    "explicit_against_symbol": b"model M(x: [B, ]) {\n    fc = Linear(10, 5)\n}\n",
    # a 5000-digit product: the error message itself called str() on it
    "huge_product": b"model M(x: [B, 1, 4]) { forward(x) { return x.squeeze(" + b"9" * 300 + b" * " + b"9" * 300
                    + b") } }",
    # a tuple of modules as a child: AttributeError in child_def
    "tuple_child": b"model M(x: [B, 4]) {\n    mlp = (Linear(_, 32), ReLU())\n}\n",
    # range past 2**63: len() overflowed
    "range_overflow": b"model M(x: [B, 4]) { s = Sequential(*[ReLU() for _ in range(9223372036854775808)]) }",
    # a block called with no tensor: IndexError
    "block_no_input": b"block H(n) { fc = Linear(_, n) }\nmodel M(x: [B, 4]) { h = H(2)\n"
                      b" s = Sequential(h)\n forward(x) { return s() } }",
    # (-8) ** 0.5 is complex: no literal for it
    "complex_power": b"const N = (-8) ** 0.5\nmodel M(x: [B, 4]) { fc = Linear(_, 2) }",
    # line separators, form feeds and CRs: the caret showed another line than the error's
    "line_separator": "model M(x: [B, 4]) {\u2028\n    fc = Linear(5, 2)\n}\n".encode(),
    "form_feed_eof": b"\x0cmodel M(x: [B, 4]) {\n    fc = Linear(4, 2)\n",
    "cr_in_line": b"model M(x: [B, 4]) {\n  \r  fc = Linear(5, 2)\n}\n",
    # two byte-order marks: both were skipped, one in decoding and one in parsing, and the caret slid by one
    "two_boms": "\ufeff\ufeffmodel M(x: [B, 4]) { fc = Linear(5, 2) }".encode(),
    # a ModuleDict key that is an attribute of every ModuleDict: torch refused it when building
    "moduledict_key_keys": b'model M(x: [B, 4]) { d = ModuleDict({"keys": Linear(4, 2)})\n'
                           b' forward(x) { return d["keys"](x) } }',
    # a value in the body that a child's arguments name: it was never printed, so building failed
    "local_value": b"model M(x: [B, 4]) { w = 3\n fc = Linear(_, w) }",
    # a for loop whose body prints nothing: `for l in self.layers:` with no statement under it
    "empty_loop_body": b"model M(x: [B, 4]) { layers = ModuleList([Linear(4, 4)])\n"
                       b" forward(x) { for l in layers { }\n return x } }",
    # int(1e380) is int(inf): OverflowError from the builtin
    "int_of_infinity": b"model M(x: [B, 4], y: [B, int(1e380)]) { forward(x, y) { return x } }",
    # forward(x, y, x): the printed forward repeated a parameter, a SyntaxError in Python
    "forward_input_twice": b"model M(x: [B, 4], y: [B, 3], z: [B, 3, 4]) { forward(x, y, x) { return x } }",
    # a bool as a slice bound: TypeError in the symbolic arithmetic
    "slice_bound_true": b"model M(x: [B, T=16, 8]) { forward(x) { return x[:, -2:True] } }",
    # LSTM(num_layers=10 ** 12): the parameter count looped over every layer (a hang, not a crash)
    "lstm_trillion_layers": b"model M(t: Long[B, T]) { e = Embedding(10, 4)\n l = LSTM(_, 4, num_layers=10 ** 12)\n"
                            b" forward(t) { o, (h, c) = l(e(t))\n return o } }",
    # x.split(1) of a dim of 10 ** 15: a list of 10 ** 15 shapes (a hang)
    "split_into_quadrillion": b"model M(x: [B, 10 ** 15]) { forward(x) { return x.split(1, dim=1)[0] } }",
    # LayerNorm(_) on a 0-d tensor: x[-1] of an empty shape, IndexError in the catalog's inference
    "layernorm_of_scalar": b"model M(x: [B, 8]) { norm = LayerNorm(_)\n forward(x) { return norm(x.mean()) } }",
    # no model at all: the error had no place
    "no_model": b"",
    "only_a_block": b"block H(n) { fc = Linear(_, n) }",
    # deep nesting: RecursionError in the transformer
    "deep_unary": b"model M(x: [B, 4]) { forward(x) { return " + b"-" * 3000 + b"x } }",
    "long_sum": b"model M(x: [B, 4]) { forward(x) { return " + b" + ".join([b"x"] * 3000) + b" } }",
    "deep_calls": b"model M(x: [B, 4]) { s = " + b"Sequential(" * 500 + b"ReLU()" + b")" * 500 + b" }",
    # nested for loops past Python's 20 blocks: the printed code did not compile
    "loops_21_deep": b"model M(x: [B, 4]) { l = ModuleList([Linear(4, 4)])\n forward(x) {\n"
                     + b"".join(b"for a%d in l {\n" % i for i in range(21)) + b"x = a0(x)\n" + b"}\n" * 21
                     + b"return x } }",
    # a file name or import path holding a brace: read as spec text instead of a path
    "import_brace": b'import "no{such.nnspec"\nmodel M(x: [B, 4]) { fc = Linear(_, 2) }',
}


@pytest.mark.parametrize("name", sorted(REGRESSIONS))
def test_regression(name, workdir):
    path = workdir / f"regression_{name}.nnspec"
    data = REGRESSIONS[name]
    path.write_bytes(data)
    assert fuzzing.check_file(path, data, inert=inert_problem) is None
