"""A check you can trust: every spec that `check` accepts builds, runs, and agrees with its summary and its code.

``tests/validgen.py`` writes valid, nasty specs (random compositions of the
language's features, with every shape tracked); for each, ``check_case``
holds modelspec to its promise:

* a spec ``check`` refuses is a `SpecError` with a line, a column and a hint;
* one it accepts builds with `compile_spec`, gets `example_inputs`, and runs
  a forward (eval and train mode) without raising;
* every module's output shape, seen by forward hooks, is the summary's;
* the summary's parameter total is ``sum(p.numel())``;
* its printed code, executed standalone, builds the same ``state_dict``
  (same keys, shapes and, for the same seed, values) and gives the same
  outputs, in eval and in training mode, each forward from one seed.

CI checks 2,000 cases of fixed seeds (``MODELSPEC_TRUST_CASES`` changes how
many; ``MODELSPEC_TRUST_SEED`` the first seed). A failure lists the first
failing seeds with their messages; ``python tests/trust_long.py --seed S
--cases 1`` (or ``validgen.case_text(seed)``) reproduces one, and
``validgen.shrink`` makes it small. The long run is ``tests/trust_long.py``.
"""

from __future__ import annotations

import os
import random
import time
import warnings

import pytest

import validgen
from conftest import fail_with_cases

CASES = int(os.environ.get("MODELSPEC_TRUST_CASES", "2000"))
FIRST_SEED = int(os.environ.get("MODELSPEC_TRUST_SEED", "20000"))
SHOWN = 5  # failures shown in full


@pytest.fixture
def one_thread():
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: threads only cost time, and CI shares its cores
    yield
    torch.set_num_threads(old)


def test_valid_specs_keep_the_promise(one_thread):
    seeds = range(FIRST_SEED, FIRST_SEED + CASES)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's advice (dropout with one layer, ...) is not the point here
        accepted, rejected, failures = validgen.run_seeds(seeds)
    took = time.perf_counter() - t0
    report = (f"{CASES:,} cases (seeds {FIRST_SEED}..{FIRST_SEED + CASES - 1}) in {took:.0f} s: "
              f"{accepted:,} accepted by check, {rejected:,} rejected with a located error, "
              f"{len(failures):,} broke the promise")
    print(report)
    if failures:
        fail_with_cases(report, failures, "validgen.case_text(seed)", SHOWN)
    # the generator must stay useful: most of what it writes is meant to be valid, and is
    assert accepted >= CASES // 2, report


def test_generator_is_deterministic():
    for seed in (0, 1, 12345):
        assert validgen.generate(random.Random(seed)) == validgen.generate(random.Random(seed))
    assert len({validgen.case_text(s) for s in range(50)}) == 50


def test_the_oracle_catches_a_broken_promise():
    """A spec the oracle must pass, and the kinds of failure it reports, on specs small enough to read."""
    assert validgen.check_case("model M(x: [B, 4]) {\n    fc = Linear(_, 2)\n}\n") == "accepted"
    assert validgen.check_case("model M(x: [B, 4]) {\n    fc = Linear(5, 2)\n}\n") == "rejected"
    with pytest.raises(validgen.TrustFailure) as exc:
        raise validgen.TrustFailure("forward", "RuntimeError: boom", "model M(x: [B, 4]) { }")
    assert exc.value.family == "forward: RuntimeError: boom"
    assert "model M" in str(exc.value)


def test_shrink_keeps_the_predicate():
    """The shrinker only ever keeps what still satisfies the predicate: here, specs that check accepts and run."""
    text = next(t for t in map(validgen.case_text, range(100)) if validgen.failure_of(t) is None
                and validgen.check_case(t) == "accepted" and len(t.splitlines()) > 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        small = validgen.shrink(text, lambda t: validgen.failure_of(t) is None and validgen.check_case(t) == "accepted",
                                max_checks=60)
    assert len(small) < len(text)
    assert validgen.check_case(small) == "accepted"
