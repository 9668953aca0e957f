"""The budgets of work and memory: small specs that asked for unbounded work are refused (or checked) cheaply.

The issue "No way to exhaust" listed specs of a few hundred bytes that made
`check` run for minutes and take gigabytes, and a `run` that allocated
17 GB. Each is rebuilt here (`ISSUE_SPECS`) and run as a user meets it, in a
fresh process under a cap on its address space and a timeout; the test
fails when the process is killed by the cap, runs out of memory, does not
finish, or its peak resident set passes 100 MB — never by comparing a
measured time (a loaded machine would fail that; times live in
benchmarks/budgets.py). The limits behind the refusals are then tested one by
one, in this process, each at both sides of its boundary:

* ``Limits.max_expr_terms``: terms in one symbolic size, a located error at the forward statement;
* ``Limits.max_steps``: elaboration steps, counted as they are taken;
* `modelspec.budget.work_floor`: nested blocks refused before anything is built, when the modules or
  steps they certainly make pass ``max_modules`` or ``max_steps`` (and the floor is never above the
  real count);
* layers' buffers against ``max_params``;
* ``Limits.max_activation_bytes`` at batch 1 (check) and at the batch asked for (`run`, `example_inputs`).
"""

from __future__ import annotations

import dataclasses
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import ROOT, SPECS, spec_ids
from modelspec import Limits, elaborate_spec, example_inputs
from modelspec.budget import Floor, forward_memory, human_bytes, operation_bytes
from modelspec.elaborate import Elaborator
from modelspec.errors import SpecLimitError, SpecShapeError
from modelspec.pipeline import parse_source, symbol_sizes

# ----------------------------------------------------------------------------------------- the issue's specs
# Builders, not files: benchmarks/budgets.py times the same texts (it imports this module's builders).
LETTERS = "abcdefghij"


def cat_then_adds(adds: int = 14, inputs: int = 10) -> str:
    """(a) A cat of ``inputs`` symbolic inputs (a size that is a sum of ten symbols), ``adds`` broadcasting adds
    that each give the tensor one more dim of that size, then a flatten: its size is the sum to the 15th
    power, 1,307,504 terms. The issue's text is not kept; this form, 561 bytes, is the one found slow on the
    code before the fix (over 60 s and 1.3 GB when stopped, against 67 s and 2 GB in the issue). Adds of
    ``x.unsqueeze(-1) + x.unsqueeze(0)`` without the flatten never multiply sizes and were never slow."""
    names = LETTERS[:inputs]
    return ("model M(" + ", ".join(f"{c}: [{c.upper()}]" for c in names) + ") {\n"
            "  forward(" + ", ".join(names) + ") {\n"
            "    x = torch.cat([" + ", ".join(names) + "])\n"
            + "    x = x[..., None] + x\n" * adds
            + "    return x.flatten()\n  }\n}\n")


def slices_and_cats(repeats: int = 20) -> str:
    """(b) ``x[:, ::2]`` then a cat of three, ``repeats`` times: the size nests a floor division per repeat.
    Keys printed afresh at every comparison made each repeat 1.7x slower than the one before."""
    return ("model M(x: [N, T]) {\n    forward(x) {\n"
            + "        x = x[:, ::2]\n        x = torch.cat([x, x, x], dim=1)\n" * repeats
            + "        return x\n    }\n}\n")


def nested_blocks(levels: int = 6, children: int = 9) -> str:
    """(c) ``levels`` blocks, each of ``children`` instances of the one below, the lowest a Linear: six levels
    of nine ask for 9**5 = 59,049 layers and 125,479 modules. 620 bytes (the issue's was 631)."""
    text = "block L0() {\n    fc = Linear(_, 4)\n}\n"
    for i in range(1, levels):
        text += f"block L{i}() {{\n    " + " ".join(f"c{k} = L{i - 1}()" for k in range(children)) + "\n}\n"
    return text + f"model M(x: [N, 4]) {{\n    top = L{levels - 1}()\n}}\n"


def conv_transposes(n: int = 5) -> str:
    """(d) ``n`` ConvTranspose1d(1, 1, 2, stride=100) in a row: each output is ~100x its input, the last
    30,101,010,102 long, and the activations 121.62 GB at batch 1."""
    return ("model M(x: [N, 1, 4]) {\n"
            + "".join(f"    c{i} = ConvTranspose1d(1, 1, 2, stride=100)\n" for i in range(n))
            + "    forward(x) { " + " ".join(f"x = c{i}(x)" for i in range(n)) + " return x }\n}\n")


BIG_T = "model M(x: [N, T=2147483647]) { forward(x) { return x * 2.0 } }\n"  # (e) 8.6 GB an input at batch 1

ISSUE_SPECS = {  # name -> (what it is, its text)
    "a_cat_adds": ("a cat of 10 symbolic inputs, 14 broadcasting adds, a flatten", cat_then_adds()),
    "b_slice_cat": ("20 repeats of x[:, ::2] then a cat of three", slices_and_cats()),
    "c_nested": ("six levels of nested blocks, nine children each", nested_blocks()),
    "d_convt": ("five ConvTranspose1d(1, 1, 2, stride=100) in a row", conv_transposes()),
    "e_big_T": ("x: [N, T=2147483647]", BIG_T),
}

# ----------------------------------------------------------------------------------------- fresh processes
CHECK_CAP = 1 << 30  # address space for `check`: it starts in ~80 MB (fails under 60 MB); a runaway stops here
RUN_CAP = 2 << 30  # run and example_inputs: room for torch's import (~0.6 GB of address space) were it reached
PEAK_RSS = 100_000_000  # the issue's bound; a refusal or a check measures ~55 MB, `import torch` alone ~220 MB
TIMEOUT_S = 60  # "does not finish": far above the ~1 s these take on a loaded machine; no time is compared
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}

EXAMPLE_INPUTS = """
import sys
from modelspec import SpecError, example_inputs
try:
    example_inputs(sys.argv[1], batch=int(sys.argv[2]))
except SpecError as err:
    sys.exit(err.render())  # to stderr, exit status 1, as the command line reports it
print("made the inputs")
"""

# Runs `-m MODULE ARGS` or `-c PROGRAM ARGS` as python would, then writes its own peak RSS (VmHWM, in kB) to
# $PEAK_RSS_FILE at exit. ru_maxrss cannot tell it: Linux carries the forked parent's resident set into the
# child's ru_maxrss at exec (a child of a 400 MB process reports 400 MB; VmHWM, its own, 11 MB), and a test
# session that has imported torch is such a parent. VmHWM belongs to the memory the exec made.
PEAK_WRAPPER = """
import atexit, os, runpy, sys

def _peak():
    try:
        with open("/proc/self/status") as f:
            kb = next(line.split()[1] for line in f if line.startswith("VmHWM:"))
        with open(os.environ["PEAK_RSS_FILE"], "w") as f:
            f.write(kb)
    except (OSError, KeyError, StopIteration):
        pass

atexit.register(_peak)
mode, target, *rest = sys.argv[1:]
if mode == "-m":
    sys.argv = [target, *rest]
    runpy.run_module(target, run_name="__main__", alter_sys=True)
else:
    sys.argv = ["-c", *rest]
    exec(compile(target, "<string>", "exec"), {"__name__": "__main__"})
"""


@dataclasses.dataclass
class Finished:
    rc: int
    out: str
    err: str
    peak_rss: int | None  # bytes: the child's own VmHWM (when killed: as far as it had got); None: unknown
    finished: bool = True  # False: killed at the timeout
    wall: float = 0.0  # seconds, for benchmarks/budgets.py: no test compares a time
    cpu: float = 0.0  # the child's user + system seconds


def run_peak(argv: list[str], env: dict, cwd, cap: int, timeout_s: float) -> Finished:
    """Run ``argv`` (``[python, "-m" | "-c", ...]``) under PEAK_WRAPPER and RLIMIT_AS = ``cap``, killed after
    ``timeout_s``. Output goes to files, so a child that prints a lot cannot block on a full pipe."""
    assert argv[1] in ("-m", "-c"), argv

    def cap_memory():
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    with tempfile.TemporaryDirectory() as tmp:
        peak_file = os.path.join(tmp, "peak")
        with open(os.path.join(tmp, "out"), "w+b") as out, open(os.path.join(tmp, "err"), "w+b") as err:
            started = time.perf_counter()
            p = subprocess.Popen([argv[0], "-c", PEAK_WRAPPER, *argv[1:]], stdout=out, stderr=err, cwd=cwd,
                                 env={**env, "PEAK_RSS_FILE": peak_file}, preexec_fn=cap_memory)
            finished = True
            while True:  # wait4, not wait: the child's own CPU time comes with it
                pid, status, usage = os.wait4(p.pid, os.WNOHANG)
                if pid:
                    break
                if time.perf_counter() - started > timeout_s:
                    stopped_at = _vm_hwm(f"/proc/{p.pid}/status")  # what it had reached; a kill runs no atexit
                    p.kill()
                    _, status, usage = os.wait4(p.pid, 0)
                    finished = False
                    break
                time.sleep(0.005)
            wall = time.perf_counter() - started
            p.returncode = os.waitstatus_to_exitcode(status)
            out.seek(0)
            err.seek(0)
            got = Finished(p.returncode, out.read().decode(errors="replace"), err.read().decode(errors="replace"),
                           None, finished, wall, usage.ru_utime + usage.ru_stime)
        if os.path.exists(peak_file):
            with open(peak_file) as f:
                got.peak_rss = int(f.read()) * 1024
        elif not finished:
            got.peak_rss = stopped_at
    return got


def _vm_hwm(status: str) -> int | None:
    """VmHWM of a live process's /proc/PID/status, in bytes; None where it cannot be read."""
    try:
        with open(status) as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration, ValueError):
        return None


def run_capped(argv: list[str], cap: int, cwd: Path) -> Finished:
    """``argv`` in a fresh process under the cap: fails the test if it does not finish in TIMEOUT_S, runs out
    of memory, dies of a signal, or passes PEAK_RSS."""
    done = run_peak(argv, ENV, cwd, cap, TIMEOUT_S)
    if not done.finished:
        pytest.fail(f"{' '.join(map(str, argv))} did not finish in {TIMEOUT_S} s")
    assert "MemoryError" not in done.err and "can't allocate memory" not in done.err, (
        f"ran out of memory under the {cap / 2**30:.0f} GiB cap:\n{done.err[-2000:]}")
    assert done.rc in (0, 1), f"exit status {done.rc} (a signal, or killed at the cap):\n{done.err[-2000:]}"
    if done.peak_rss is None:
        assert not sys.platform.startswith("linux"), "the child did not report its peak RSS"
    else:
        assert done.peak_rss <= PEAK_RSS, f"peak RSS {done.peak_rss / 1e6:.0f} MB, over {PEAK_RSS / 1e6:.0f} MB"
    return done


def modelspec(*args) -> list[str]:
    return [sys.executable, "-m", "modelspec", *map(str, args)]


def assert_refused(done: Finished, path: Path, line: int, column: int, message: str, knob: str):
    """Exit status 1, one located message (file:line:col, the source line and its carets), a hint naming
    the limit to raise, and no traceback."""
    assert done.rc == 1, done.out + done.err
    assert "Traceback" not in done.err, done.err
    first = done.err.splitlines()[0]
    assert first.startswith(f"{path}:{line}:{column}: "), done.err
    assert message in first, done.err
    assert re.search(r"^ +\^+$", done.err, re.M), f"no carets under the source line:\n{done.err}"
    hint = [h for h in done.err.splitlines() if h.startswith("hint: ")]
    assert len(hint) == 1 and knob in hint[0], done.err


@pytest.fixture
def issue_spec(tmp_path):
    def write(name: str) -> Path:
        path = tmp_path / f"{name}.nnspec"
        path.write_text(ISSUE_SPECS[name][1])
        return path

    return write


def test_the_specs_are_small():
    """The issue's point: a few hundred bytes of spec each."""
    sizes = {name: len(text.encode()) for name, (_, text) in ISSUE_SPECS.items()}
    assert all(n < 1400 for n in sizes.values()), sizes
    assert sizes["a_cat_adds"] < 600 and sizes["c_nested"] < 650, sizes


def test_a_a_product_of_ten_sums_is_refused_at_its_statement(issue_spec, tmp_path):
    path = issue_spec("a_cat_adds")
    done = run_capped(modelspec("check", path), CHECK_CAP, tmp_path)
    # the flatten multiplies the fifteen sums; the fourth product has 715 terms, past the default 256
    assert_refused(done, path, 18, 5, "this statement makes a symbolic size with 715 terms, over the limit of 256",
                   "Limits(max_expr_terms=")


def test_b_slices_and_cats_are_checked(issue_spec, tmp_path):
    path = issue_spec("b_slice_cat")
    done = run_capped(modelspec("check", path), CHECK_CAP, tmp_path)
    assert done.rc == 0, done.err
    assert done.out.startswith(f"{path}: ok (M -> [N, 3 * ((3 * ("), done.out
    assert done.out.count("+ 1) // 2") == 20, done.out  # the whole size, every repeat in it


def test_c_nested_blocks_are_refused_before_any_is_built(issue_spec, tmp_path):
    path = issue_spec("c_nested")
    done = run_capped(modelspec("check", path), CHECK_CAP, tmp_path)
    assert_refused(done, path, 20, 5,
                   f"the model would take more than {Limits().max_modules:,} modules to check: at least 125,479",
                   "Limits(max_modules=")


@pytest.mark.parametrize("name, line, column, message", [
    ("d_convt", 6, 10, "forward activations (121.62 GB"),
    ("e_big_T", 1, 1, "the inputs (8.59 GB)"),
])
@pytest.mark.parametrize("how", ["check", "run", "example_inputs"])
def test_d_e_activations_are_refused_before_anything_is_allocated(issue_spec, tmp_path, name, line, column,
                                                                    message, how):
    """check refuses at batch 1; run and example_inputs (default batch 2) are refused the same way, before
    torch is imported: the peak RSS bound holds for them too."""
    path = issue_spec(name)
    argv = {"check": modelspec("check", path), "run": modelspec("run", path),
            "example_inputs": [sys.executable, "-c", EXAMPLE_INPUTS, str(path), "2"]}[how]
    done = run_capped(argv, CHECK_CAP if how == "check" else RUN_CAP, tmp_path)
    assert_refused(done, path, line, column, message, "--max-activations")
    assert "at batch 1, " in done.err and "over the limit of 8.59 GB" in done.err
    assert "Limits(max_activation_bytes=" in done.err


def test_d_a_raised_activation_budget_lets_check_through(issue_spec, tmp_path):
    """Only check: with the budget raised, run would really allocate the 121 GB."""
    path = issue_spec("d_convt")
    done = run_capped(modelspec("check", "--max-activations", "1.3e11", path), CHECK_CAP, tmp_path)
    assert done.rc == 0 and "ok (M -> [N, 1, 30101010102]" in done.out, done.err
    done = run_capped(modelspec("check", "--max-activations", "1.2e11", path), CHECK_CAP, tmp_path)
    assert done.rc == 1 and "over the limit of 120.00 GB" in done.err, done.err


def test_run_at_a_large_batch_is_refused_before_allocating(tmp_path):
    """check passed cnn at batch 1; at 100,000 its activations are 40 GB."""
    done = run_capped(modelspec("run", ROOT / "specs" / "cnn.nnspec", "--batch", "100000"), RUN_CAP, tmp_path)
    assert done.rc == 1 and "Traceback" not in done.err, done.err
    first = done.err.splitlines()[0]
    assert re.search(r":8:9: at batch 100000, the inputs \(313\.60 MB\) and forward activations \(", first), first
    assert "over the limit of 8.59 GB" in first
    assert re.search(r"^hint: .*--max-activations", done.err, re.M), done.err


def test_the_batch_check_names_the_file():
    with pytest.raises(SpecLimitError) as info:
        example_inputs(ROOT / "specs" / "cnn.nnspec", batch=100_000)
    assert info.value.render().startswith(f"{ROOT / 'specs' / 'cnn.nnspec'}:8:9: "), info.value.render()
    assert re.search(r"^ +\^+$", info.value.render(), re.M), info.value.render()


# ----------------------------------------------------------------------------------------- expression size
def sums(inputs: int, dims: int) -> str:
    """A flatten of ``dims`` dims that are each the sum of ``inputs`` symbols: a product of sums."""
    names = LETTERS[:inputs]
    return ("model M(" + ", ".join(f"{c}: [{c.upper()}]" for c in names) + ") {\n"
            "    forward(" + ", ".join(names) + ") {\n"
            "        x = torch.cat([" + ", ".join(names) + "])\n"
            + "        x = x[..., None] + x\n" * (dims - 1)
            + "        y = x.flatten()\n        return y\n    }\n}\n")


def test_a_symbolic_size_may_have_max_expr_terms_terms():
    """(A + B + C) ** 3 has 10 terms: allowed at 10, refused at 9 where the flatten makes it."""
    assert Limits().max_expr_terms == 256
    spec = sums(3, 3)
    (out,) = elaborate_spec(spec, limits=Limits(max_expr_terms=10)).outputs
    assert len(out.shape) == 1 and len(out.shape[0].value.terms) == 10
    with pytest.raises(SpecLimitError) as info:
        elaborate_spec(spec, limits=Limits(max_expr_terms=9))
    err = info.value
    assert (err.line, err.column) == (6, 9), err  # `y = x.flatten()`, not the statements before it
    assert "a symbolic size with 10 terms, over the limit of 9" in err.message
    assert "Limits(max_expr_terms=" in err.hint


def test_the_expression_budget_holds_the_issues_spec_in_process():
    with pytest.raises(SpecLimitError) as info:
        elaborate_spec(cat_then_adds())
    assert info.value.line == 18 and "715 terms" in info.value.message
    # raised, the same spec goes further before its sizes outgrow the limit again
    with pytest.raises(SpecLimitError) as info:
        elaborate_spec(cat_then_adds(), limits=Limits(max_expr_terms=1000))
    assert info.value.line == 18 and "2,002 terms, over the limit of 1,000" in info.value.message


def test_the_bundled_specs_fit_far_below_the_default_expression_budget():
    for path in SPECS:
        elaborate_spec(path, limits=Limits(max_expr_terms=20))


# ----------------------------------------------------------------------------------------- steps
RESNET = ROOT / "specs" / "resnet18.nnspec"


def test_steps_are_counted_and_bounded():
    steps = elaborate_spec(RESNET).steps
    assert 0 < steps < Limits().max_steps
    assert elaborate_spec(RESNET, limits=Limits(max_steps=steps)).steps == steps
    with pytest.raises(SpecLimitError) as info:
        elaborate_spec(RESNET, limits=Limits(max_steps=steps - 1))
    err = info.value
    assert err.path == str(RESNET) and err.line is not None and err.column is not None
    assert f"checking this spec takes more than {steps - 1:,} steps" in err.message
    assert "Limits(max_steps=" in err.hint
    assert err.built, "refused during the work: what was built so far is kept for a partial summary"


def test_a_small_step_budget_is_refused_by_the_floor_before_any_work():
    with pytest.raises(SpecLimitError) as info:
        elaborate_spec(RESNET, limits=Limits(max_steps=100))
    err = info.value
    assert "the model would take more than 100 steps to check: at least" in err.message
    assert "Limits(max_steps=" in err.hint and err.line is not None
    assert err.built == [], "the floor refuses before the first module is built"


# ----------------------------------------------------------------------------------------- the work floor
def floor_of(text_or_path) -> tuple[Floor, list]:
    spec = parse_source(text_or_path)
    floors = Elaborator(spec).work_floor(spec.models()[0])
    return sum((f for _, f in floors), Floor()), floors


def modules_in(levels: int, children: int = 9) -> int:
    """Modules `nested_blocks` makes: each block, and the Linear at the bottom."""
    n = 2  # L0 and its Linear
    for _ in range(1, levels):
        n = 1 + children * n
    return n


def test_the_floor_refuses_nested_blocks_before_building_any():
    with pytest.raises(SpecLimitError) as info:
        elaborate_spec(nested_blocks())
    err = info.value
    assert f"at least {modules_in(6):,}" in err.message and f"{Limits().max_modules:,} modules" in err.message
    assert (err.line, err.column) == (20, 5) and "Limits(max_modules=" in err.hint
    assert err.built == []


def test_raised_limits_let_the_six_levels_past_the_floor():
    """Not elaborated in full (59,049 layers: minutes); the floor's own check passes, and counts them all."""
    spec = parse_source(nested_blocks())
    total, _ = floor_of(nested_blocks())
    assert total.modules == modules_in(6) == 125_479
    Elaborator(spec, Limits(max_modules=10**7, max_steps=10**8)).check_work_floor(spec.models()[0])
    with pytest.raises(SpecLimitError) as info:  # raised for modules alone, the steps hold it
        Elaborator(spec, Limits(max_modules=10**7, max_steps=total.steps - 1)).check_work_floor(spec.models()[0])
    assert f"steps to check: at least {total.steps:,}" in info.value.message


def test_the_floor_is_sharp_on_four_levels():
    spec = nested_blocks(4)
    need = modules_in(4)
    assert floor_of(spec)[0].modules == need == 1549
    with pytest.raises(SpecLimitError) as info:
        elaborate_spec(spec, limits=Limits(max_modules=need - 1))
    assert f"more than {need - 1:,} modules to check: at least {need:,}" in info.value.message
    assert info.value.built == []
    graph = elaborate_spec(spec, limits=Limits(max_modules=need))
    assert len(list(graph.root.walk())) - 1 == need
    steps = floor_of(spec)[0].steps
    with pytest.raises(SpecLimitError) as info:
        elaborate_spec(spec, limits=Limits(max_steps=steps - 1))
    assert f"at least {steps:,}" in info.value.message and info.value.built == []
    assert elaborate_spec(spec, limits=Limits(max_steps=graph.steps)).steps == graph.steps >= steps


NESTED = {  # beside the bundled specs: forwards, conditional children, repeats, a block called twice
    "pure-3": nested_blocks(3),
    "pure-4-of-3": nested_blocks(4, 3),
    "forwards": ("block L0() {\n    fc = Linear(_, 4)\n    forward(x) { return fc(x) }\n}\n"
                 "block L1() {\n    a = L0()\n    b = L0()\n    forward(x) { x = a(x) x = b(x) return x }\n}\n"
                 "model M(x: [N, 4]) {\n    top = L1()\n    forward(x) { return top(x) }\n}\n"),
    "conditional": ("block B(flag=False) {\n    fc = Linear(4, 4)\n    d = Linear(4, 4) if flag\n"
                    "    forward(x) { return fc(x) }\n}\n"
                    "model M(x: [N, 4]) {\n    a = B()\n    b = B(flag=True)\n    forward(x) { return b(a(x)) }\n}\n"),
    "repeats": ("block L0() {\n    fc = Linear(_, 4)\n}\n"
                "block L1() {\n    s = Sequential(L0(), *[L0() for _ in range(3)], L0())\n"
                "    forward(x) { x = s(x) x = s(x) return x }\n}\n"
                "model M(x: [N, 4]) {\n    top = Sequential(L1(), L1())\n}\n"),
    "called-twice": ("block B() {\n    fc = Linear(_, 4)\n    forward(x) { y = fc(x) y = fc(y) return y }\n}\n"
                     "model M(x: [N, 4]) {\n    a = B()\n    forward(x) { x = a(x) x = a(x) return x }\n}\n"),
    "counted-repeats": ("const D = 3\n"
                        "block L0(w=8) {\n    fc = Linear(_, w)\n}\n"
                        "block L1(n, w=8) {\n    s = Sequential(*[L0(w) for _ in range(n)])\n"
                        "    m = ModuleList([L0() for _ in range(D)])\n"
                        "    forward(x) { x = s(x) for layer in m { x = layer(x) } "
                        "for i in range(2) { x = s(x) } return x }\n}\n"
                        "model M(x: [N, 8]) {\n    a = L1(2)\n    b = L1(n=4, w=8)\n"
                        "    c = Sequential(*[L1(1) for _ in range(D)])\n    d = ModuleList([L0(), L0()])\n"
                        "    forward(x) { x = c(b(a(x))) for layer in d { x = layer(x) } return x }\n}\n"),
    "uncalled-layers": ("block B() {\n    fc = Linear(4, 4)\n    forward(x) { return fc(x) }\n}\n"
                        "model M(x: [N, 4]) {\n    a = B()\n    c = Linear(4, 3)\n"
                        "    s = Sequential(Linear(4, 4), ReLU())\n    forward(x) { return a(x) }\n}\n"),
}


@pytest.mark.parametrize("source", [*SPECS, *NESTED.values()], ids=[*spec_ids(SPECS), *NESTED])
def test_the_floor_is_never_above_the_real_count(source):
    """A floor above the real count would refuse a spec that fits; compared with the counts the limits are
    held to (the state's module_count, which counts modules built aside too, and its steps)."""
    spec = parse_source(source)
    elaborator = Elaborator(spec)
    graph = elaborator.model(None)
    total, _ = floor_of(source)
    assert total.modules <= elaborator.state.module_count, (total, elaborator.state.module_count)
    assert total.modules <= len(list(graph.root.walk())) - 1
    assert total.steps <= graph.steps == elaborator.state.steps, (total, graph.steps)
    assert total.passes <= elaborator.state.unrolled, (total, elaborator.state.unrolled)


def test_the_floor_counts_something_for_nested_blocks():
    """A floor of zero would pass the test above and refuse nothing: for nesting alone it is exact."""
    for levels in (3, 4):
        spec = nested_blocks(levels)
        assert floor_of(spec)[0].modules == len(list(elaborate_spec(spec).root.walk())) - 1 == modules_in(levels)


def test_the_floor_counts_repeats_of_a_known_count():
    """Comprehensions and loops whose count is a literal, a const or a block's argument count every pass: the
    modules exactly, here; a count it cannot know counts nothing (a floor, never above)."""
    source = NESTED["counted-repeats"]
    spec = parse_source(source)
    elaborator = Elaborator(spec)
    graph = elaborator.model(None)
    assert floor_of(source)[0].modules == len(list(graph.root.walk())) - 1 == 69
    # every pass but the model's own loop over `d` (the floor counts the model's children, not its forward)
    assert floor_of(source)[0].passes == elaborator.state.unrolled - 2 == 52
    unknown = source.replace("a = L1(2)", "a = L1(D - 1)")
    assert len(list(elaborate_spec(unknown).root.walk())) - 1 == 69
    assert floor_of(unknown)[0].modules == 69 - 2 * 2


def test_the_floor_refuses_a_comprehension_of_blocks_before_building_any():
    """Repeats multiply as nesting does: 30 copies of 30 copies of 30 copies of a block of 4 modules, whose
    comprehensions run 30 + 900 + 27,000 passes, past max_unroll; with that raised, 109,861 modules."""
    source = ("block A() {\n    fc = Linear(_, 8)\n    ln = LayerNorm(8)\n    act = ReLU()\n}\n"
              "block B(n) {\n    s = Sequential(*[A() for _ in range(n)])\n}\n"
              "block C(n) {\n    s = Sequential(*[B(n) for _ in range(n)])\n}\n"
              "model M(x: [N, 8]) {\n    top = Sequential(*[C(30) for _ in range(30)])\n}\n")
    with pytest.raises(SpecLimitError) as info:
        elaborate_spec(source)
    assert "loops would run more than 10,000 passes in all: at least 27,930" in info.value.message
    assert info.value.built == [] and (info.value.line, info.value.column) == (13, 5)
    with pytest.raises(SpecLimitError) as info:
        elaborate_spec(source, limits=Limits(max_unroll=10 ** 5))
    assert f"more than {Limits().max_modules:,} modules to check: at least 109,861" in info.value.message
    assert info.value.built == []


# ----------------------------------------------------------------------------------------- buffers
def test_buffers_count_against_max_params():
    """BatchNorm1d(100): 200 parameters and 201 buffer elements (running mean, variance, and the count)."""
    spec = "model M(x: [N, 100]) { bn = BatchNorm1d(_) }"
    for budget in (250, 400):
        with pytest.raises(SpecLimitError) as info:
            elaborate_spec(spec, limits=Limits(max_params=budget))
        assert f"401 parameters and buffer elements, over the limit of {budget}" in info.value.message
        assert (info.value.line, info.value.column) == (1, 29) and "Limits(max_params=" in info.value.hint
    graph = elaborate_spec(spec, limits=Limits(max_params=401))
    assert graph.total_params == 200


# ----------------------------------------------------------------------------------------- sizes
WIDE = ("model M(x: [N, 65536]) {\n    forward(x) {\n        y = x.unsqueeze(-1) * x.unsqueeze(-2)\n"
        "        y = y.flatten(1)\n        z = y.unsqueeze(-1) * y.unsqueeze(-2)\n        return z.flatten(1)[:, 1:]\n"
        "    }\n}\n")


def test_a_tensor_torch_cannot_count_is_refused_where_it_is_made():
    """[N, 2**32] times itself is [N, 2**32, 2**32]: 2**64 elements, past torch's int64 count (and a slice of
    its flatten once crashed on a size Python cannot take as an index)."""
    with pytest.raises(SpecShapeError) as info:
        elaborate_spec(WIDE)
    err = info.value
    assert "would make a tensor of at least 2**64 elements" in err.message
    assert (err.line, err.column) == (5, 13) and err.hint
    assert elaborate_spec(WIDE.replace("65536", "16")).outputs[0].shape[1].value == 16 ** 4 - 1


def test_a_slice_of_a_symbolic_size_past_2_63_at_its_example_is_checked():
    """The slice's check at the example sizes once took len(range(n)) of T**4 at T=65536 (budget seed 7000768)."""
    with pytest.raises(SpecLimitError) as info:
        elaborate_spec(WIDE.replace("[N, 65536]", "[N, T=65536]").replace("[:, 1:]", "[..., ::2]"))
    assert "forward activations" in info.value.message


def test_a_layer_whose_output_torch_cannot_count_is_refused():
    with pytest.raises(SpecShapeError) as info:
        elaborate_spec("model M(x: [N, 8]) {\n    fc = Linear(8, 10 ** 9)\n"
                       "    up = ConvTranspose1d(1, 1, 2, stride=10 ** 10)\n"
                       "    forward(x) { return up(fc(x).unsqueeze(1)) }\n}\n", limits=Limits(max_params=10 ** 30))
    assert "elements" in info.value.message and info.value.line == 4


# ----------------------------------------------------------------------------------------- activations
CNN = ROOT / "specs" / "cnn.nnspec"


def batch_bytes(graph, batch: int) -> int:
    """What the activation budget holds against its limit at ``batch``: inputs, layers' and ops' outputs."""
    sizes = symbol_sizes(graph, batch)
    inputs, layers = forward_memory([t for _, t in graph.inputs], list(graph.root.walk()), sizes)
    return inputs + layers + operation_bytes(list(graph.root.walk()), sizes)


def test_example_inputs_at_a_huge_batch_is_refused():
    with pytest.raises(SpecLimitError) as info:
        example_inputs(CNN, batch=10**6)
    assert "at batch 1000000, " in info.value.message and "over the limit of 8.59 GB" in info.value.message
    assert "Limits(max_activation_bytes=" in info.value.hint and info.value.line == 8


def test_example_inputs_holds_the_batch_to_the_limit_given(torch):
    graph = elaborate_spec(CNN)
    at_2 = batch_bytes(graph, 2)
    assert batch_bytes(graph, 3) > at_2
    limits = Limits(max_activation_bytes=at_2)
    (x,) = example_inputs(CNN, batch=2, limits=limits)
    assert tuple(x.shape) == (2, 1, 28, 28)
    with pytest.raises(SpecLimitError) as info:
        example_inputs(CNN, batch=3, limits=limits)
    assert "at batch 3, " in info.value.message and f"over the limit of {human_bytes(at_2)}" in info.value.message
    with pytest.raises(SpecLimitError):  # a limit below batch 1 is refused by the check itself
        example_inputs(CNN, batch=1, limits=Limits(max_activation_bytes=batch_bytes(graph, 1) - 1))
